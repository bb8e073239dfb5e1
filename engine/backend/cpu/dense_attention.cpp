#include "backend/cpu/dense_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"

namespace wb::cpu {

namespace {

__attribute__((target("avx2,f16c"))) void storeF16C(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i) dst[i] = fp32ToFp16(src[i]);
}

__attribute__((target("avx2,f16c"))) void loadF16C(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = fp16ToFp32(src[i]);
}

}  // namespace

void storeKvRow(const float* src, void* dst, DType t, int64_t n) {
    if (t != DType::F16) {
        std::memcpy(dst, src, size_t(n) * sizeof(float));
        return;
    }
    auto* d = static_cast<uint16_t*>(dst);
    if (activeIsa() >= Isa::Avx2) {
        storeF16C(src, d, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) d[i] = fp32ToFp16(src[i]);
}

void loadKvRow(const void* src, DType t, float* dst, int64_t n) {
    if (t != DType::F16) {
        std::memcpy(dst, src, size_t(n) * sizeof(float));
        return;
    }
    const auto* s = static_cast<const uint16_t*>(src);
    if (activeIsa() >= Isa::Avx2) {
        loadF16C(s, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16ToFp32(s[i]);
}

namespace {

WeightMatrix f32View(const float* data, int64_t rows, int64_t cols) {
    WeightMatrix w;
    w.dtype = DType::F32;
    w.rows = rows;
    w.cols = cols;
    w.data = reinterpret_cast<const uint8_t*>(data);
    return w;
}

}  // namespace

void denseAttention(const DenseAttentionArgs& a, ThreadPool& pool) {
    const int64_t n = a.n, d = a.headDim;
    if (n <= 0 || d <= 0) return;
    if (a.bf16 && d % 32 == 0 && d <= 256 && n >= amx::kMinTokens && amx::enabled()) {
        amx::attentionBf16(a.q, a.qStride, a.k, a.kStride, a.v, a.vStride, n, d, a.scale, a.out, a.outStride, pool);
        return;
    }
    // Pack keys [n, d] and values transposed [d, n]: the GEMMs' weight operands.
    std::vector<float> keys(size_t(n * d)), valuesT(size_t(d * n));
    pool.parallelFor(n, 64, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) std::copy(a.k + i * a.kStride, a.k + i * a.kStride + d, keys.data() + i * d);
    });
    pool.parallelFor(d, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t c = b; c < e; ++c)
            for (int64_t i = 0; i < n; ++i) valuesT[size_t(c * n + i)] = a.v[i * a.vStride + c];
    });
    const WeightMatrix K = f32View(keys.data(), n, d), VT = f32View(valuesT.data(), d, n);
    // Tiles of queries: big enough that each GEMM streams the keys from cache for many rows, small enough that
    // the scores stay a few MB.
    const int64_t tile = std::clamp<int64_t>((int64_t(4) << 20) / (4 * n), 16, 256);
    std::vector<float> qt(size_t(tile * d)), scores(size_t(tile * n)), ot(size_t(tile * d));
    for (int64_t t0 = 0; t0 < n; t0 += tile) {
        const int64_t m = std::min(tile, n - t0);
        for (int64_t i = 0; i < m; ++i) {
            const float* src = a.q + (t0 + i) * a.qStride;
            for (int64_t c = 0; c < d; ++c) qt[size_t(i * d + c)] = src[c] * a.scale;
        }
        matmul(K, qt.data(), m, scores.data(), pool);
        pool.parallelFor(m, 1, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) softmax(scores.data() + i * n, n);
        });
        matmul(VT, scores.data(), m, ot.data(), pool);
        for (int64_t i = 0; i < m; ++i) std::copy(ot.data() + i * d, ot.data() + (i + 1) * d, a.out + (t0 + i) * a.outStride);
    }
}

void causalAttentionTiled(const CausalRunArgs& a, ThreadPool& pool) {
    const int64_t d = a.headDim, L = a.firstPos + a.numTokens;
    if (a.numTokens <= 0 || d <= 0 || a.numKvHeads <= 0) return;
    const int group = a.numHeads / a.numKvHeads;
    const DType t = a.kvType;
    if (a.bf16 && d % 32 == 0 && d <= 256 && a.numTokens >= amx::kMinTokens && amx::enabled()) {
        amx::PackedKv kv;
        for (int kvh = 0; kvh < a.numKvHeads; ++kvh) {
            if (t == DType::F32) {
                amx::packKv(L, d, [&](int64_t p) { return static_cast<const float*>(a.keyRow(p)) + kvh * d; },
                            [&](int64_t p) { return static_cast<const float*>(a.valueRow(p)) + kvh * d; }, kv, pool);
            } else {
                // F16 rows widened into a per-thread row each (packKv reads a key and a value row, then the next).
                amx::packKv(
                        L, d,
                        [&](int64_t p) {
                            thread_local std::vector<float> row;
                            row.resize(size_t(d));
                            loadKvRow(kvElement(a.keyRow(p), t, kvh * d), t, row.data(), d);
                            return static_cast<const float*>(row.data());
                        },
                        [&](int64_t p) {
                            thread_local std::vector<float> row;
                            row.resize(size_t(d));
                            loadKvRow(kvElement(a.valueRow(p), t, kvh * d), t, row.data(), d);
                            return static_cast<const float*>(row.data());
                        },
                        kv, pool);
            }
            for (int g = 0; g < group; ++g) {
                const int64_t h = int64_t(kvh) * group + g;
                amx::attendBf16(a.q + h * d, a.qStride, a.numTokens, a.scale, kv, a.firstPos, a.out + h * d,
                                a.outStride, pool);
            }
        }
        return;
    }
    std::vector<float> keys(size_t(L * d)), values(size_t(L * d)), valuesT(size_t(d * L));
    const int64_t tile = std::clamp<int64_t>((int64_t(4) << 20) / (4 * L), 16, 256);
    std::vector<float> qt(size_t(tile * d)), scores(size_t(tile * L)), ot(size_t(tile * d));
    for (int kvh = 0; kvh < a.numKvHeads; ++kvh) {
        pool.parallelFor(L, 64, [&](int64_t b, int64_t e, int) {
            for (int64_t p = b; p < e; ++p) {
                loadKvRow(kvElement(a.keyRow(p), t, kvh * d), t, keys.data() + p * d, d);
                loadKvRow(kvElement(a.valueRow(p), t, kvh * d), t, values.data() + p * d, d);
            }
        });
        pool.parallelFor(d, 1, [&](int64_t b, int64_t e, int) {
            for (int64_t c = b; c < e; ++c)
                for (int64_t p = 0; p < L; ++p) valuesT[size_t(c * L + p)] = values[size_t(p * d + c)];
        });
        const WeightMatrix VT = f32View(valuesT.data(), d, L);
        for (int g = 0; g < group; ++g) {
            const int64_t h = int64_t(kvh) * group + g;
            for (int64_t t0 = 0; t0 < a.numTokens; t0 += tile) {
                const int64_t m = std::min(tile, a.numTokens - t0);
                // No row of this tile sees past the tile's last position: the key GEMM stops there.
                const int64_t visible = a.firstPos + t0 + m;
                const WeightMatrix K = f32View(keys.data(), visible, d);
                for (int64_t i = 0; i < m; ++i) {
                    const float* src = a.q + (t0 + i) * a.qStride + h * d;
                    for (int64_t c = 0; c < d; ++c) qt[size_t(i * d + c)] = src[c] * a.scale;
                }
                matmul(K, qt.data(), m, scores.data(), pool);  // m x visible, rows packed at stride `visible`
                // Softmax over each row's own prefix, zeros after it; rows re-laid at stride L for the value GEMM
                // (from the last row back, since the stride grows).
                for (int64_t i = m - 1; i >= 0; --i) {
                    float* src = scores.data() + i * visible;
                    float* dst = scores.data() + i * L;
                    const int64_t len = a.firstPos + t0 + i + 1;
                    softmax(src, len);
                    if (dst != src) std::memmove(dst, src, size_t(len) * sizeof(float));
                    std::fill(dst + len, dst + L, 0.0f);
                }
                matmul(VT, scores.data(), m, ot.data(), pool);
                for (int64_t i = 0; i < m; ++i)
                    std::copy(ot.data() + i * d, ot.data() + (i + 1) * d, a.out + (t0 + i) * a.outStride + h * d);
            }
        }
    }
}

void pagedDecodeAttention(const PagedDecodeArgs& a, ThreadPool& pool) {
    if (a.numRows <= 0 || a.numKvHeads <= 0) return;
    const int64_t hd = a.headDim, bs = a.blockSize, group = a.numHeads / a.numKvHeads;
    const int64_t pairs = a.numRows * a.numKvHeads;
    const int64_t slices = std::min<int64_t>(group, (int64_t(pool.size()) + pairs - 1) / pairs);
    const int64_t sliceHeads = (group + slices - 1) / slices;
    const int64_t perPair = (group + sliceHeads - 1) / sliceHeads;
    pool.parallelFor(pairs * perPair, 1, [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> scores, inv, rows;
        const DType t = a.kvType;
        const bool wide = t != DType::F32;
        if (wide) rows.resize(size_t(16 * hd));
        // A run of n rows of one KV head, at its stride in the cache, or widened to f32 (stride hd) first.
        auto run = [&](const void* first, int64_t kvh, int64_t n, int64_t& stride) -> const float* {
            if (!wide) {
                stride = a.rowStride;
                return static_cast<const float*>(first) + kvh * hd;
            }
            for (int64_t r = 0; r < n; ++r)
                loadKvRow(kvElement(first, t, r * a.rowStride + kvh * hd), t, rows.data() + r * hd, hd);
            stride = hd;
            return rows.data();
        };
        for (int64_t item = begin; item < end; ++item) {
            const int64_t k = item / (a.numKvHeads * perPair);
            const int64_t kvh = item / perPair % a.numKvHeads, g0 = item % perPair * sliceHeads;
            const int64_t gn = std::min(sliceHeads, group - g0), len = a.length(k), row = a.rows[k];
            if (int64_t(scores.size()) < gn * len) scores.resize(size_t(gn * len));
            inv.resize(size_t(gn));
            const float* q = a.q + row * a.qStride + (kvh * group + g0) * hd;
            float* out = a.out + row * a.outStride + (kvh * group + g0) * hd;
            // Runs of <= 16 positions that never cross a KV block.
            for (int64_t p0 = 0, n = 0; p0 < len; p0 += n) {
                n = std::min<int64_t>({16, len - p0, bs - p0 % bs});
                int64_t stride = 0;
                const float* keys = run(a.keyRow(k, p0), kvh, n, stride);
                groupScores(q, gn, keys, stride, n, hd, a.scale, scores.data() + p0, len);
            }
            for (int64_t g = 0; g < gn; ++g) {
                float* r = scores.data() + g * len;
                inv[size_t(g)] = 1.0f / expShiftSum(r, *std::max_element(r, r + len), len);
            }
            std::fill(out, out + gn * hd, 0.0f);
            for (int64_t p0 = 0, n = 0; p0 < len; p0 += n) {
                n = std::min<int64_t>({16, len - p0, bs - p0 % bs});
                int64_t stride = 0;
                const float* values = run(a.valueRow(k, p0), kvh, n, stride);
                groupAccum(scores.data() + p0, len, gn, values, stride, n, hd, out);
            }
            for (int64_t g = 0; g < gn; ++g)
                for (int64_t d = 0; d < hd; ++d) out[g * hd + d] *= inv[size_t(g)];
        }
    });
}

void denseAttentionReference(const DenseAttentionArgs& a) {
    std::vector<float> sc(static_cast<size_t>(std::max<int64_t>(a.n, 1)));
    for (int64_t i = 0; i < a.n; ++i) {
        const float* q = a.q + i * a.qStride;
        float mx = -INFINITY;
        for (int64_t j = 0; j < a.n; ++j) {
            double s = 0;
            for (int64_t c = 0; c < a.headDim; ++c) s += double(q[c]) * a.k[j * a.kStride + c];
            sc[size_t(j)] = float(s) * a.scale;
            mx = std::max(mx, sc[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < a.n; ++j) sum += (sc[size_t(j)] = std::exp(sc[size_t(j)] - mx));
        float* o = a.out + i * a.outStride;
        for (int64_t c = 0; c < a.headDim; ++c) {
            double acc = 0;
            for (int64_t j = 0; j < a.n; ++j) acc += double(sc[size_t(j)]) * a.v[j * a.vStride + c];
            o[c] = float(acc / sum);
        }
    }
}

}  // namespace wb::cpu
