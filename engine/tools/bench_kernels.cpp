// wb-bench-kernels: times cpu::matmul on the projection shapes of a 1B-class Llama (dim 2048, FFN 5632, vocab
// 32000) for each weight dtype, at m = 1 (generation: reports GB/s of weight bytes streamed) and m = 128 / 512
// (prompt: reports GFLOP/s), with 1 and 2 threads, next to a plain memory-read bandwidth for comparison.
//
// Usage: wb-bench-kernels [--dtypes F16,Q8_0,...] [--m 1,128,512] [--threads 1,2] [--reps N] [--isa avx512|avx2|scalar]
//                         [--shapes 4096x4096,13696x4096,4096x13696]   (rows x cols, replacing the 1B shapes)
//                         [--amx on|off|both]   (both: each m >= 16 line timed with the AMX tiles and without,
//                                               back to back, so the ratio sees one machine load; path column)
//                         [--amx-int8-probe]   (times BF16 tiles against per-32-block int8 tiles + f32 rescale)
// At m = 1 the weight is cycled through copies totalling 4x the L3 (WB_BENCH_STREAM_MB=N to set the size).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "core/thread_pool.h"

using namespace wb;

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(item);
    return out;
}

bool parseDType(const std::string& s, DType& t) {
    for (DType d : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K,
                    DType::I8})
        if (s == dtypeName(d) || (s == "I8" && d == DType::I8)) {
            t = d;
            return true;
        }
    return false;
}

// Bytes a generation-step measurement streams through: four times the last-level cache (this VM reports a
// 300 MiB L3, where a fixed 96 MB set was timed from cache), at least 256 MiB. WB_BENCH_STREAM_MB overrides.
int64_t streamBytes() {
    if (const char* e = std::getenv("WB_BENCH_STREAM_MB")) return std::max<int64_t>(1, std::atoll(e)) << 20;
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return std::max<int64_t>(int64_t(256) << 20, 4 * int64_t(std::max(0L, l3)));
}

// Read bandwidth over a buffer far larger than L3, summed with wide loads split over the pool's threads.
double readBandwidth(ThreadPool& pool, int reps) {
    const size_t n = size_t(streamBytes());
    std::vector<float> buf(n / 4, 1.0f);
    std::vector<double> sums(size_t(pool.size()) * 8, 0.0);
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const double t0 = now();
        pool.runOnAll([&](int t, int nt) {
            const size_t begin = buf.size() * size_t(t) / size_t(nt), end = buf.size() * size_t(t + 1) / size_t(nt);
            sums[size_t(t) * 8] = cpu::dot(buf.data() + begin, buf.data() + begin, int64_t(end - begin));
        });
        best = std::min(best, now() - t0);
    }
    return double(n) / best / 1e9;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WB_BENCH_AMX_PROBE 1
#include <immintrin.h>
#pragma GCC push_options
// GCC 12 flags the deliberately undefined lanes of some AVX-512 intrinsics as uninitialized (as in amx_gemm.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16,amx-int8")

struct alignas(64) ProbeTileConfig {
    uint8_t palette = 1, startRow = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// --amx-int8-probe: why the block types go to the BF16 tiles. One 32-k step of a 32-row × 32-token block (L1
// data, one thread): `tdpbf16ps` with the scales already folded into the weights, against `tdpbssd` on one
// 32-value block of int8 weights and activations, whose int32 products must then be stored and added into f32
// with the block's weight scale × activation scale (each block has its own), with and without that rescale.
// Requires available() (the tile state is granted by it).
void amxInt8Probe() {
    static uint16_t wa[16 * 1024] __attribute__((aligned(64))), xb[16 * 1024] __attribute__((aligned(64)));
    static int8_t wq[16 * 1024] __attribute__((aligned(64))), xq[16 * 1024] __attribute__((aligned(64)));
    static float dw[32 * 32], dx[32 * 32];
    static int32_t cbuf[4][256] __attribute__((aligned(64)));
    static float acc[4][256] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 1024; ++i) {
        wa[i] = uint16_t(0x3f80 + i % 7);
        xb[i] = uint16_t(0x3f00 + i % 5);
        wq[i] = int8_t(i * 37);
        xq[i] = int8_t(i * 91);
    }
    for (int i = 0; i < 32 * 32; ++i) {
        dw[i] = 0.01f * float(i % 13 + 1);
        dx[i] = 0.02f * float(i % 11 + 1);
    }
    constexpr int kSteps = 64, kOuter = 1000;
    auto timeIt = [](auto&& body) {
        double best = 1e30;
        for (int r = 0; r < 5; ++r) {
            const double t0 = now();
            body();
            best = std::min(best, now() - t0);
        }
        return best / (kOuter * kSteps) * 1e9;
    };
    ProbeTileConfig bf;
    for (int t = 0; t < 8; ++t) {
        bf.colsb[t] = 64;
        bf.rows[t] = 16;
    }
    _tile_loadconfig(&bf);
    const double nsBf16 = timeIt([&] {
        for (int o = 0; o < kOuter; ++o) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            for (int s = 0; s < kSteps; ++s) {
                const uint16_t* a = wa + (s % 16) * 1024;
                const uint16_t* b = xb + (s % 16) * 1024;
                _tile_loadd(4, a, 64); _tile_loadd(5, a + 512, 64); _tile_loadd(6, b, 64); _tile_loadd(7, b + 512, 64);
                _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, acc[0], 64); _tile_stored(1, acc[1], 64); _tile_stored(2, acc[2], 64); _tile_stored(3, acc[3], 64);
        }
    });
    ProbeTileConfig i8;
    for (int t = 0; t < 4; ++t) {
        i8.colsb[t] = 64;
        i8.rows[t] = 16;
    }
    for (int t = 4; t < 6; ++t) {  // A: 16 weight rows × 32 int8 (one block)
        i8.colsb[t] = 32;
        i8.rows[t] = 16;
    }
    for (int t = 6; t < 8; ++t) {  // B: 8 rows of 4-value groups × 16 tokens
        i8.colsb[t] = 64;
        i8.rows[t] = 8;
    }
    _tile_loadconfig(&i8);
    auto int8Steps = [&](bool rescale) {
        for (int o = 0; o < kOuter; ++o)
            for (int s = 0; s < kSteps; ++s) {
                const int8_t* a = wq + (s % 16) * 1024;
                const int8_t* b = xq + (s % 16) * 1024;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                _tile_loadd(4, a, 32); _tile_loadd(5, a + 512, 32); _tile_loadd(6, b, 64); _tile_loadd(7, b + 512, 64);
                _tile_dpbssd(0, 4, 6); _tile_dpbssd(1, 4, 7); _tile_dpbssd(2, 5, 6); _tile_dpbssd(3, 5, 7);
                _tile_stored(0, cbuf[0], 64); _tile_stored(1, cbuf[1], 64); _tile_stored(2, cbuf[2], 64); _tile_stored(3, cbuf[3], 64);
                if (!rescale) continue;
                const float* dws = dw + (s % 32) * 32;
                const float* dxs = dx + (s % 32) * 32;
                for (int t = 0; t < 4; ++t) {
                    const __m512 vx = _mm512_loadu_ps(dxs + 16 * (t & 1));
                    for (int i = 0; i < 16; ++i) {
                        const __m512 sc = _mm512_mul_ps(vx, _mm512_set1_ps(dws[16 * (t >> 1) + i]));
                        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(cbuf[t] + 16 * i));
                        _mm512_store_ps(acc[t] + 16 * i, _mm512_fmadd_ps(v, sc, _mm512_load_ps(acc[t] + 16 * i)));
                    }
                }
            }
    };
    const double nsInt8 = timeIt([&] { int8Steps(false); });
    const double nsInt8Rescale = timeIt([&] { int8Steps(true); });
    _tile_release();
    const double flops = 2.0 * 32 * 32 * 32;
    std::printf("AMX probe, one thread, ns per 32-k step of 32 rows x 32 tokens (GFLOP/s):\n"
                "  tdpbf16ps, scales folded into the weights   %8.1f ns (%6.0f)\n"
                "  tdpbssd per 32-block, no rescale            %8.1f ns (%6.0f)\n"
                "  tdpbssd per 32-block + f32 rescale          %8.1f ns (%6.0f)\n",
                nsBf16, flops / nsBf16, nsInt8, flops / nsInt8, nsInt8Rescale, flops / nsInt8Rescale);
    std::printf("  (checksum %g)\n", double(acc[1][5]));
}
#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
#define WB_BENCH_AMX_PROBE 0
#endif

}  // namespace

int main(int argc, char** argv) {
    std::vector<DType> dtypes = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::I8, DType::Q4_0};
    std::vector<int64_t> ms = {1, 128, 512};
    std::vector<int> threadCounts = {1, 2};
    int reps = 5;
    std::vector<std::pair<int64_t, int64_t>> customShapes;
    std::vector<bool> amxModes = {true};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--amx-int8-probe") != 0) continue;
#if WB_BENCH_AMX_PROBE
        if (cpu::amx::available()) {
            amxInt8Probe();
            return 0;
        }
#endif
        std::fprintf(stderr, "no AMX tiles on this CPU (or build)\n");
        return 1;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--dtypes") {
            dtypes.clear();
            for (const auto& s : split(v)) {
                DType t;
                if (!parseDType(s, t)) {
                    std::fprintf(stderr, "unknown dtype %s\n", s.c_str());
                    return 2;
                }
                dtypes.push_back(t);
            }
        } else if (a == "--m") {
            ms.clear();
            for (const auto& s : split(v)) ms.push_back(std::stoll(s));
        } else if (a == "--threads") {
            threadCounts.clear();
            for (const auto& s : split(v)) threadCounts.push_back(std::stoi(s));
        } else if (a == "--shapes") {
            for (const auto& sh : split(v)) {
                const size_t x = sh.find('x');
                if (x == std::string::npos) {
                    std::fprintf(stderr, "--shapes takes ROWSxCOLS,...\n");
                    return 2;
                }
                customShapes.emplace_back(std::stoll(sh.substr(0, x)), std::stoll(sh.substr(x + 1)));
            }
        } else if (a == "--reps") {
            reps = std::stoi(v);
        } else if (a == "--amx") {
            amxModes.clear();
            if (v == "on" || v == "both") amxModes.push_back(true);
            if (v == "off" || v == "both") amxModes.push_back(false);
            if (amxModes.empty()) {
                std::fprintf(stderr, "--amx takes on, off or both\n");
                return 2;
            }
        } else if (a == "--isa") {
            cpu::setIsa(v == "scalar" ? cpu::Isa::Scalar : v == "avx2" ? cpu::Isa::Avx2 : cpu::Isa::Avx512);
        }
    }
    std::printf("isa %s, AMX tiles %s\n", cpu::isaName(cpu::activeIsa()),
                cpu::amx::available() ? (cpu::amx::enabled() ? "on" : "present, switched off") : "absent");

    struct Shape {
        int64_t rows, cols;
        const char* what;
    };
    std::vector<Shape> shapes = {{2048, 2048, "attn q/o"}, {5632, 2048, "ffn gate/up"}, {2048, 5632, "ffn down"},
                                 {32000, 2048, "lm head"}};
    if (!customShapes.empty()) {
        shapes.clear();
        for (const auto& [rows, cols] : customShapes) shapes.push_back({rows, cols, "custom"});
    }

    for (int nt : threadCounts) {
        ThreadPool pool(nt);
        std::printf("threads %d: memory read %.1f GB/s\n", nt, readBandwidth(pool, 3));
    }
    std::printf("%-6s %-12s %6s %6s %4s %3s %-6s %10s %9s %8s\n", "dtype", "shape", "rows", "cols", "m", "thr",
                "path", "ms", "GFLOP/s", "GB/s");
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 0.05f);
    for (const Shape& s : shapes) {
        std::vector<float> wf(static_cast<size_t>(s.rows * s.cols));
        for (float& v : wf) v = dist(rng);
        WeightMatrix f32;
        f32.name = "bench";
        f32.rows = s.rows;
        f32.cols = s.cols;
        f32.data = reinterpret_cast<const uint8_t*>(wf.data());
        const int64_t maxM = *std::max_element(ms.begin(), ms.end());
        std::vector<float> x(static_cast<size_t>(maxM * s.cols)), y(size_t(maxM * s.rows));
        for (float& v : x) v = dist(rng) * 20.0f;
        for (DType t : dtypes) {
            auto c = convertWeight(f32, t);
            if (!c.ok()) continue;
            WeightMatrix w = std::move(c.value());
            // Generation streams the model from DRAM, so at m = 1 cycle through enough copies of the weight to
            // overflow the last-level cache (streamBytes); otherwise the shapes would be timed from cache.
            std::vector<WeightMatrix> copies;
            // Only when m = 1 is asked for: the copies are 4x the L3 (1.2 GB on this VM) per dtype and shape.
            const bool generation = std::find(ms.begin(), ms.end(), int64_t(1)) != ms.end();
            const int64_t numCopies = generation ? std::max<int64_t>(1, streamBytes() / w.numBytes() + 1) : 0;
            for (int64_t c = 0; c < numCopies; ++c) {
                WeightMatrix cw;
                cw.name = w.name;
                cw.dtype = w.dtype;
                cw.rows = w.rows;
                cw.cols = w.cols;
                auto store = std::make_shared<std::vector<uint8_t>>(w.data, w.data + w.rows * w.rowBytes());
                cw.data = store->data();
                cw.keepAlive = store;
                if (w.rowScales) {
                    auto sc = std::make_shared<std::vector<float>>(w.rowScales, w.rowScales + w.rows);
                    cw.rowScales = sc->data();
                    cw.keepAlive = std::make_shared<std::pair<decltype(store), decltype(sc)>>(store, sc);
                }
                copies.push_back(std::move(cw));
            }
            for (int64_t m : ms) {
                for (int nt : threadCounts) {
                    ThreadPool pool(nt);
                    cpu::matmul(w, x.data(), m, y.data(), pool);  // warm up: scratch, page faults
                    if (m == 1) {
                        for (auto& c : copies) cpu::matmul(c, x.data(), m, y.data(), pool);
                        double best = 1e30;
                        const int inner = int(std::max<int64_t>(int64_t(copies.size()), 8));
                        for (int r = 0; r < reps; ++r) {
                            const double t0 = now();
                            for (int i = 0; i < inner; ++i)
                                cpu::matmul(copies[size_t(i) % copies.size()], x.data(), m, y.data(), pool);
                            best = std::min(best, (now() - t0) / inner);
                        }
                        const double flops = 2.0 * double(s.rows) * double(s.cols);
                        std::printf("%-6s %-12s %6lld %6lld %4lld %3d %-6s %10.3f %9.1f %8.1f\n",
                                    std::string(dtypeName(t)).c_str(), s.what, (long long)s.rows, (long long)s.cols,
                                    (long long)m, nt, "vector", best * 1e3, flops / best / 1e9,
                                    double(w.numBytes()) / best / 1e9);
                        continue;
                    }
                    // Enough repetitions for ~0.3 s of work; best-of, since the machine is shared. With both
                    // paths the repetitions alternate between them.
                    const double flops = 2.0 * double(m) * double(s.rows) * double(s.cols);
                    const int inner = std::max(1, int(2e9 / flops / 8));
                    std::vector<double> best(amxModes.size(), 1e30);
                    for (int r = 0; r < reps; ++r)
                        for (size_t p = 0; p < amxModes.size(); ++p) {
                            cpu::amx::setEnabled(amxModes[p]);
                            const double t0 = now();
                            for (int i = 0; i < inner; ++i) cpu::matmul(w, x.data(), m, y.data(), pool);
                            best[p] = std::min(best[p], (now() - t0) / inner);
                        }
                    cpu::amx::setEnabled(true);
                    for (size_t p = 0; p < amxModes.size(); ++p) {
                        cpu::amx::setEnabled(amxModes[p]);
                        const char* path = cpu::amx::suits(w, m) ? "amx" : "vector";
                        cpu::amx::setEnabled(true);
                        std::printf("%-6s %-12s %6lld %6lld %4lld %3d %-6s %10.3f %9.1f %8.1f\n",
                                    std::string(dtypeName(t)).c_str(), s.what, (long long)s.rows, (long long)s.cols,
                                    (long long)m, nt, path, best[p] * 1e3, flops / best[p] / 1e9,
                                    double(w.numBytes()) / best[p] / 1e9);
                    }
                    std::fflush(stdout);
                }
            }
        }
    }
    return 0;
}
