// Portable kernels: the fallback on CPUs without AVX2 and the path WB_CPU_ISA=scalar forces in tests. They follow
// the same numerics as the SIMD paths (f32 accumulation; Q8_0, Q4_0, Q5_0, Q4_K, Q6_K and I8 against int8-quantized
// activations in blocks of 32).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/int8_act_quant.h"

namespace wb::cpu::detail {
namespace {

float dotScalar(const float* a, const float* b, int64_t n) {
    // Eight partial sums: shorter dependency chains, and the compiler can keep them in vector registers.
    float s[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; ++i) total += a[i] * b[i];
    return total;
}

void axpyScalar(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

std::vector<float>& rowScratch(int64_t n) {
    thread_local std::vector<float> buf;
    if (int64_t(buf.size()) < n) buf.resize(size_t(n));
    return buf;
}

// Every float-weight dtype: decode one row, then dot it with each token.
void matmulPanelScalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    std::vector<float>& row = rowScratch(w.cols);
    for (int64_t r = r0; r < r1; ++r) {
        dequantizeRow(w.dtype, w.data + r * w.rowBytes(), row.data(), w.cols);
        const float scale = (w.dtype == DType::I8 && w.rowScales) ? w.rowScales[r] : 1.0f;
        for (int64_t t = 0; t < job.m; ++t)
            job.y[t * w.rows + r] = scale * dotScalar(row.data(), job.x + t * w.cols, w.cols);
    }
}

void matmulQ8_0Scalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t nb = w.cols / 32;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w.data + r * w.rowBytes();
        for (int64_t t = 0; t < job.m; ++t) {
            const int8_t* xq = job.qa.q + t * job.qa.ldq;
            const float* xd = job.qa.d + t * job.qa.ldb;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; ++b) {
                const uint8_t* blk = row + b * 34;
                const float d = fp16ToFp32(uint16_t(blk[0] | (blk[1] << 8)));
                const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
                int32_t s = 0;
                for (int i = 0; i < 32; ++i) s += int32_t(q[i]) * int32_t(xq[b * 32 + i]);
                acc += float(s) * (d * xd[b]);
            }
            job.y[t * w.rows + r] = acc;
        }
    }
}

inline uint16_t u16At(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

// Q4_0 / Q5_0: a 32-value block against one activation block; the weight's offset (8 or 16) comes out of the
// integer sum through the activations' block sum (bias = -16·Σq).
template <int kBits>
void matmulQ4Q5Scalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t nb = w.cols / 32, bb = kBits == 4 ? 18 : 22;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w.data + r * w.rowBytes();
        for (int64_t t = 0; t < job.m; ++t) {
            const int8_t* xq = job.qa.q + t * job.qa.ldq;
            const float* xd = job.qa.d + t * job.qa.ldb;
            const int32_t* xb = job.qa.bias + t * job.qa.ldb;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; ++b) {
                const uint8_t* blk = row + b * bb;
                const uint8_t* qs = blk + (kBits == 4 ? 2 : 6);
                uint32_t qh = 0;
                if constexpr (kBits == 5) qh = uint32_t(blk[2]) | uint32_t(blk[3]) << 8 | uint32_t(blk[4]) << 16 | uint32_t(blk[5]) << 24;
                const int8_t* x = xq + b * 32;
                int32_t s = 0;
                for (int i = 0; i < 16; ++i) {
                    const int lo = (qs[i] & 0xF) | int(((qh >> i) & 1u) << 4);
                    const int hi = (qs[i] >> 4) | int(((qh >> (i + 16)) & 1u) << 4);
                    s += lo * x[i] + hi * x[i + 16];
                }
                // Σ(q - off)·x = Σq·x - off·Σx, and Σx = -bias/16.
                s += (kBits == 4 ? 8 : 16) * xb[b] / 16;
                acc += float(s) * (fp16ToFp32(u16At(blk)) * xd[b]);
            }
            job.y[t * w.rows + r] = acc;
        }
    }
}

// Q4_K: per 32-value sub-block, d·scale·Σq·x against the activation block, minus dmin·min·(the block's sum).
void matmulQ4KScalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t nsb = w.cols / 256;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w.data + r * w.rowBytes();
        for (int64_t t = 0; t < job.m; ++t) {
            const int8_t* xq = job.qa.q + t * job.qa.ldq;
            const float* xd = job.qa.d + t * job.qa.ldb;
            const float* xs = job.qa.xsum + t * job.qa.ldb;
            float acc = 0.0f;
            for (int64_t sb = 0; sb < nsb; ++sb) {
                const uint8_t* blk = row + sb * 144;
                const float d = fp16ToFp32(u16At(blk)), dmin = fp16ToFp32(u16At(blk + 2));
                const uint8_t* sc = blk + 4;
                const uint8_t* qs = blk + 16;
                for (int j = 0; j < 8; ++j) {
                    const int scale = j < 4 ? (sc[j] & 63) : ((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4));
                    const int mn = j < 4 ? (sc[j + 4] & 63) : ((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
                    const uint8_t* q = qs + (j / 2) * 32;
                    const int shift = (j & 1) * 4;
                    const int8_t* x = xq + sb * 256 + j * 32;
                    int32_t s = 0;
                    for (int l = 0; l < 32; ++l) s += int((q[l] >> shift) & 0xF) * x[l];
                    const int64_t b = sb * 8 + j;
                    acc += d * float(scale) * xd[b] * float(s) - dmin * float(mn) * xs[b];
                }
            }
            job.y[t * w.rows + r] = acc;
        }
    }
}

// Q6_K: per 16-value group, d·scale·Σ(q - 32)·x with the activation block's scale.
void matmulQ6KScalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t nsb = w.cols / 256;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w.data + r * w.rowBytes();
        for (int64_t t = 0; t < job.m; ++t) {
            const int8_t* xq = job.qa.q + t * job.qa.ldq;
            const float* xd = job.qa.d + t * job.qa.ldb;
            float acc = 0.0f;
            for (int64_t sb = 0; sb < nsb; ++sb) {
                const uint8_t* blk = row + sb * 210;
                const float d = fp16ToFp32(u16At(blk + 208));
                const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
                int v[256];
                for (int half = 0; half < 2; ++half) {
                    const uint8_t* ql = blk + half * 64;
                    const uint8_t* qh = blk + 128 + half * 32;
                    for (int l = 0; l < 32; ++l) {
                        v[half * 128 + l] = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                        v[half * 128 + l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        v[half * 128 + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        v[half * 128 + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    }
                }
                const int8_t* x = xq + sb * 256;
                for (int g = 0; g < 16; ++g) {
                    int32_t s = 0;
                    for (int l = 0; l < 16; ++l) s += v[g * 16 + l] * x[g * 16 + l];
                    acc += d * float(scales[g]) * xd[sb * 8 + g / 2] * float(s);
                }
            }
            job.y[t * w.rows + r] = acc;
        }
    }
}

void matmulI8Scalar(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    for (int64_t r = r0; r < r1; ++r) {
        const auto* row = reinterpret_cast<const int8_t*>(w.data + r * w.rowBytes());
        for (int64_t t = 0; t < job.m; ++t) {
            const int8_t* xq = job.qa.q + t * job.qa.ldq;
            const float* xd = job.qa.d + t * job.qa.ldb;
            float acc = 0.0f;
            for (int64_t k0 = 0; k0 < w.cols; k0 += 32) {
                int32_t s = 0;
                const int64_t k1 = std::min(w.cols, k0 + 32);
                for (int64_t k = k0; k < k1; ++k) s += int32_t(row[k]) * int32_t(xq[k]);
                acc += float(s) * xd[k0 / 32];
            }
            job.y[t * w.rows + r] = acc * w.rowScales[r];
        }
    }
}

float expShiftSumScalar(float* x, float shift, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
    return float(sum);
}

void groupScoresScalar(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd, float scale,
                       float* s, int64_t ls) {
    for (int64_t g = 0; g < G; ++g)
        for (int64_t p = 0; p < n; ++p) s[g * ls + p] = dotScalar(q + g * hd, k + p * kStride, hd) * scale;
}

void groupAccumScalar(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n, int64_t hd,
                      float* out) {
    for (int64_t g = 0; g < G; ++g)
        for (int64_t p = 0; p < n; ++p) axpyScalar(s[g * ls + p], v + p * vStride, out + g * hd, hd);
}

}  // namespace

const KernelTable& scalarKernels() {
    static const KernelTable table = [] {
        KernelTable t;
        t.matmulF32 = matmulPanelScalar;
        t.matmulF16 = matmulPanelScalar;
        t.matmulBF16 = matmulPanelScalar;
        t.matmulQ8_0 = matmulQ8_0Scalar;
        t.matmulI8 = matmulI8Scalar;
        t.matmulQ4_0 = matmulQ4Q5Scalar<4>;
        t.matmulQ5_0 = matmulQ4Q5Scalar<5>;
        t.matmulQ4_K = matmulQ4KScalar;
        t.matmulQ6_K = matmulQ6KScalar;
        t.matmulPanel = matmulPanelScalar;
        t.quantizeActs = quantizeActs;
        t.dot = dotScalar;
        t.axpy = axpyScalar;
        t.expShiftSum = expShiftSumScalar;
        t.groupScores = groupScoresScalar;
        t.groupAccum = groupAccumScalar;
        return t;
    }();
    return table;
}

void quantizeActs(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, int32_t* bias, int64_t ldq,
                  int64_t ldb) {
    // The rule shared with the CUDA backend (backend/int8_act_quant.h): blocks past `cols` are zeros, scale 0.
    for (int64_t t = 0; t < m; ++t) {
        const float* xr = x + t * cols;
        int8_t* qr = q + t * ldq;
        for (int64_t b = 0; b < ldb; ++b) {
            const int64_t k0 = b * kActBlock;
            const int n = int(std::clamp<int64_t>(cols - k0, 0, kActBlock));
            int32_t s = 0;
            d[t * ldb + b] = quantizeActBlock(xr + k0, n, qr + k0, &s);
            bias[t * ldb + b] = -16 * s;
        }
    }
}

}  // namespace wb::cpu::detail
