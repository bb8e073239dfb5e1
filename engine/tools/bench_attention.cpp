// wb-bench-attention: the vision tower's non-causal attention (one head over one frame of n patches), the
// per-query loop the GLM-4.1V encoder first used (each query streams every key and value: SIMD dot/axpy)
// against cpu::denseAttention (query tiles, two f32 GEMMs). A 1080x2400 screenshot at the 5 MP budget is
// n = 12432 patches; GLM-4.1V's vision heads are 128 wide, 12 per layer, 24 layers.
//
// The third column: the BF16 path (DenseAttentionArgs::bf16: keys, values and probabilities in BF16 through the
// AMX tile GEMM) where the CPU has AMX.
//
// Then decode: one token over a paged cache of L positions at GLM-4-9B's attention shape (32 query heads, 2 KV
// heads of 128), cpu::pagedDecodeAttention from f32 rows against f16 rows (the FP16 KV cache): microseconds per
// token and layer, and the cache bytes streamed per second.
//
// Usage: wb-bench-attention [--n 1024,4096,12432] [--d 128] [--threads N] [--context 4096,25480]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/dense_attention.h"
#include "core/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

void perQuery(const wb::cpu::DenseAttentionArgs& a, wb::ThreadPool& pool) {
    std::vector<float> scores(size_t(pool.size()) * size_t(a.n));
    pool.parallelFor(a.n, 1, [&](int64_t b, int64_t e, int tid) {
        float* sc = scores.data() + int64_t(tid) * a.n;
        for (int64_t r = b; r < e; ++r) {
            const float* q = a.q + r * a.qStride;
            float mx = -INFINITY;
            for (int64_t k = 0; k < a.n; ++k) {
                sc[k] = wb::cpu::dot(q, a.k + k * a.kStride, a.headDim) * a.scale;
                mx = std::max(mx, sc[k]);
            }
            float sum = 0;
            for (int64_t k = 0; k < a.n; ++k) sum += (sc[k] = std::exp(sc[k] - mx));
            float* o = a.out + r * a.outStride;
            std::fill(o, o + a.headDim, 0.0f);
            for (int64_t k = 0; k < a.n; ++k) wb::cpu::axpy(sc[k] / sum, a.v + k * a.vStride, o, a.headDim);
        }
    });
}

std::vector<int64_t> list(const std::string& s) {
    std::vector<int64_t> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
    return v;
}

// One decode token per layer over L cached positions, GLM-4-9B's shape, from f32 and from f16 rows.
void decodeTable(const std::vector<int64_t>& contexts, wb::ThreadPool& pool) {
    const int heads = 32, kvHeads = 2;
    const int64_t hd = 128, kvDim = kvHeads * hd, bs = 16;
    std::printf("\ndecode, one token over L cached positions (%d heads, %d KV heads of %lld, blocks of %lld):\n", heads,
                kvHeads, (long long)hd, (long long)bs);
    std::printf("%-8s %-8s %14s %14s %14s %14s %9s\n", "L", "threads", "f32 us", "f32 GB/s", "f16 us", "f16 GB/s",
                "speedup");
    for (int64_t L : contexts) {
        const int64_t blocks = (L + bs - 1) / bs;
        std::mt19937 rng(3);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> k32(size_t(blocks * bs * kvDim)), v32(k32.size()), q(size_t(heads * hd)), out(q.size());
        for (float& x : k32) x = dist(rng);
        for (float& x : v32) x = dist(rng);
        for (float& x : q) x = dist(rng);
        std::vector<uint16_t> k16(k32.size()), v16(v32.size());
        wb::cpu::storeKvRow(k32.data(), k16.data(), wb::DType::F16, int64_t(k32.size()));
        wb::cpu::storeKvRow(v32.data(), v16.data(), wb::DType::F16, int64_t(v32.size()));
        // Blocks in a shuffled order, as a long-lived pool hands them out.
        std::vector<int32_t> table(static_cast<size_t>(blocks));
        for (int64_t i = 0; i < blocks; ++i) table[size_t(i)] = int32_t(i);
        std::shuffle(table.begin(), table.end(), rng);
        const int64_t row0 = 0;
        auto run = [&](wb::DType t, const void* keys, const void* values) {
            wb::cpu::PagedDecodeArgs a;
            a.q = q.data();
            a.qStride = heads * hd;
            a.out = out.data();
            a.outStride = heads * hd;
            a.rows = &row0;
            a.numRows = 1;
            a.numHeads = heads;
            a.numKvHeads = kvHeads;
            a.headDim = hd;
            a.scale = 1.0f / std::sqrt(float(hd));
            a.blockSize = bs;
            a.rowStride = kvDim;
            a.kvType = t;
            a.length = [L](int64_t) { return L; };
            auto row = [&](const void* base, int64_t p) {
                return wb::cpu::kvElement(base, t, (int64_t(table[size_t(p / bs)]) * bs + p % bs) * kvDim);
            };
            a.keyRow = [&](int64_t, int64_t p) { return row(keys, p); };
            a.valueRow = [&](int64_t, int64_t p) { return row(values, p); };
            wb::cpu::pagedDecodeAttention(a, pool);  // warm
            const int reps = 20;
            const auto t0 = Clock::now();
            for (int r = 0; r < reps; ++r) wb::cpu::pagedDecodeAttention(a, pool);
            return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / reps;
        };
        const double f32 = run(wb::DType::F32, k32.data(), v32.data());
        const double f16 = run(wb::DType::F16, k16.data(), v16.data());
        const double bytes32 = 2.0 * double(L) * double(kvDim) * 4, bytes16 = bytes32 / 2;
        std::printf("%-8lld %-8d %14.1f %14.2f %14.1f %14.2f %8.2fx\n", (long long)L, pool.size(), f32,
                    bytes32 / f32 / 1e3, f16, bytes16 / f16 / 1e3, f32 / f16);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int64_t> ns = {1024, 4096, 12432};
    int64_t d = 128;
    int threads = 0;
    std::vector<int64_t> contexts = {4096, 25480};
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--n") ns = list(v);
        else if (k == "--context") contexts = list(v);
        else if (k == "--d") d = std::stoll(v);
        else if (k == "--threads") threads = std::stoi(v);
        else {
            std::fprintf(stderr, "usage: wb-bench-attention [--n 1024,4096,12432] [--d 128] [--threads N] "
                                 "[--context 4096,25480]\n");
            return 2;
        }
    }
    wb::ThreadPool pool(threads);
    std::printf("%-8s %-5s %-8s %14s %14s %9s %12s %12s %12s\n", "n", "d", "threads", "per-query ms", "tiled ms",
                "speedup", "tiled GFLOP/s", "bf16 ms", "bf16 GFLOP/s");
    for (int64_t n : ns) {
        std::mt19937 rng(1);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        const int64_t stride = 3 * d;  // q, k, v interleaved per row, as the encoder's qkv buffer
        std::vector<float> qkv(size_t(n * stride)), o1(size_t(n * d)), o2(size_t(n * d));
        for (float& x : qkv) x = dist(rng);
        wb::cpu::DenseAttentionArgs a;
        a.q = qkv.data();
        a.k = qkv.data() + d;
        a.v = qkv.data() + 2 * d;
        a.qStride = a.kStride = a.vStride = stride;
        a.n = n;
        a.headDim = d;
        a.scale = 1.0f / std::sqrt(float(d));
        a.outStride = d;
        auto time = [&](auto&& fn, float* out) {
            a.out = out;
            fn();  // warm
            const auto t0 = Clock::now();
            fn();
            return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        };
        const double slow = time([&] { perQuery(a, pool); }, o1.data());
        const double fast = time([&] { wb::cpu::denseAttention(a, pool); }, o2.data());
        float maxDiff = 0;
        for (size_t i = 0; i < o1.size(); ++i) maxDiff = std::max(maxDiff, std::fabs(o1[i] - o2[i]));
        const double flops = 4.0 * double(n) * double(n) * double(d);
        double bf = 0;
        float bfDiff = 0;
        if (wb::cpu::amx::enabled()) {
            std::vector<float> o3(size_t(n * d));
            a.bf16 = true;
            bf = time([&] { wb::cpu::denseAttention(a, pool); }, o3.data());
            a.bf16 = false;
            for (size_t i = 0; i < o1.size(); ++i) bfDiff = std::max(bfDiff, std::fabs(o1[i] - o3[i]));
        }
        std::printf("%-8lld %-5lld %-8d %14.1f %14.1f %8.2fx %12.1f %12.1f %12.1f   (max |diff| %.2g, bf16 %.2g)\n",
                    (long long)n, (long long)d, pool.size(), slow, fast, slow / fast, flops / fast / 1e6, bf,
                    bf > 0 ? flops / bf / 1e6 : 0.0, maxDiff, bfDiff);
    }
    decodeTable(contexts, pool);
    return 0;
}
