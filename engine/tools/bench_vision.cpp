// wb-bench-vision: the GLM-4.1V vision tower at real shapes on this CPU.
//
// 1. GEMM rates at the tower's and the text prefill's shapes (tokens × features × inputs), each path in the same
//    run: f32 weights (AVX-512 f32), BF16 weights on the AVX-512 kernel (f32 activations, weights widened), BF16
//    on AMX tiles where the CPU has them, per-row int8 weights on the VNNI kernel (int8 activations per 32-block)
//    and on AMX tiles (BF16 activations). The best of these is "the GEMM peak here" that the tower is held to.
// 2. With -m: a GLM-4.1V folder (any text depth; the vision config is what counts) loaded at --precision, and a
//    procedural 1080×2400 screenshot encoded at each --pixels budget (the processor's max_pixels): seconds, the
//    tower's arithmetic (GEMM + attention FLOPs, counted from the shapes) and achieved GFLOP/s, and the seconds of
//    each part (blocks' linear layers and attention together, measured per block through the progress callback).
//
// Usage: wb-bench-vision [--threads N] [--gemm-only] [-m DIR] [--precision bf16|fp32|fp16|int8|native]
//                        [--pixels 1000000,5000000] [--repeat N] [--no-amx-compare] [--no-gemm]
// (--no-gemm skips part 1: no share of the peak is printed then)
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "core/thread_pool.h"
#include "media/glm4v_image_processor.h"
#include "models/glm/glm_model.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// CPU seconds this process has used: on a machine shared with other work, GFLOP per CPU second divided by the
// threads is what each core achieved while it ran (spin-waiting in the pool counts as use, so it is a lower bound).
double cpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

std::vector<int64_t> list(const std::string& s) {
    std::vector<int64_t> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
    return v;
}

struct Shape {
    const char* name;
    int64_t m, n, k;
};

// Best of `reps` timed runs after one warm-up: GFLOP/s.
// Best of `reps` timed runs after one warm-up: wall GFLOP/s, and in perCore GFLOP per CPU second per thread.
double gemmRate(const wb::WeightMatrix& w, const std::vector<float>& x, int64_t m, std::vector<float>& y,
                wb::ThreadPool& pool, int reps, double& perCore) {
    wb::cpu::matmul(w, x.data(), m, y.data(), pool);
    double best = 1e30, bestCpu = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        const double c0 = cpuSeconds();
        wb::cpu::matmul(w, x.data(), m, y.data(), pool);
        best = std::min(best, seconds(t0, Clock::now()));
        bestCpu = std::min(bestCpu, cpuSeconds() - c0);
    }
    const double flops = 2.0 * double(m) * double(w.rows) * double(w.cols);
    perCore = flops / bestCpu / 1e9;
    return flops / best / 1e9;
}

double gemmTable(wb::ThreadPool& pool) {
    const Shape shapes[] = {
            {"vision qkv      2048 x 4608 x 1536", 2048, 4608, 1536},
            {"vision mlp up   2048 x 4096 x 1536", 2048, 4096, 1536},
            {"vision mlp down 2048 x 1536 x 4096", 2048, 1536, 4096},
            {"text gate_up     512 x 27392 x 4096", 512, 27392, 4096},
            {"text down        512 x 4096 x 13696", 512, 4096, 13696},
    };
    std::printf("GEMM GFLOP/s, %d threads (best of 3)\n", pool.size());
    std::printf("  %-38s %9s %9s %9s %9s %9s   (per core, GFLOP per CPU second: f32 / bf16 avx / bf16 amx / i8 "
                "vnni / i8 amx)\n",
                "shape (tokens x out x in)", "f32", "bf16 avx", "bf16 amx", "i8 vnni", "i8 amx");
    double peak = 0;
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const Shape& s : shapes) {
        std::vector<float> x(size_t(s.m * s.k)), y(size_t(s.m * s.n)), wf(size_t(s.n * s.k));
        for (float& v : x) v = dist(rng);
        for (float& v : wf) v = dist(rng) * 0.02f;
        wb::WeightMatrix f32;
        f32.dtype = wb::DType::F32;
        f32.rows = s.n;
        f32.cols = s.k;
        f32.data = reinterpret_cast<const uint8_t*>(wf.data());
        auto bf = wb::convertWeight(f32, wb::DType::BF16);
        if (!bf) return 0;
        auto i8 = wb::convertWeight(f32, wb::DType::I8);
        if (!i8) return 0;
        double cF32 = 0, cAvx = 0, cAmx = 0, cVnni = 0, cI8Amx = 0;
        const double rF32 = gemmRate(f32, x, s.m, y, pool, 3, cF32);
        const bool had = wb::cpu::amx::enabled();
        wb::cpu::amx::setEnabled(false);
        const double rAvx = gemmRate(*bf, x, s.m, y, pool, 3, cAvx);
        const double rVnni = gemmRate(*i8, x, s.m, y, pool, 3, cVnni);
        wb::cpu::amx::setEnabled(had);
        double rAmx = 0, rI8Amx = 0;
        if (wb::cpu::amx::suits(*bf, s.m)) rAmx = gemmRate(*bf, x, s.m, y, pool, 3, cAmx);
        if (wb::cpu::amx::suits(*i8, s.m)) rI8Amx = gemmRate(*i8, x, s.m, y, pool, 3, cI8Amx);
        peak = std::max({peak, rF32, rAvx, rAmx, rVnni, rI8Amx});
        std::printf("  %-38s %9.1f %9.1f %9.1f %9.1f %9.1f   (%.0f / %.0f / %.0f / %.0f / %.0f)\n", s.name, rF32, rAvx,
                    rAmx, rVnni, rI8Amx, cF32, cAvx, cAmx, cVnni, cI8Amx);
        std::fflush(stdout);
    }
    std::printf("  GEMM peak here: %.1f GFLOP/s\n", peak);
    return peak;
}

// A procedural screenshot: bands of flat colour with text-like noise, deterministic.
wb::Image screenshot(int w, int h) {
    wb::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * size_t(h) * 3);
    uint32_t s = 12345;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            s = s * 1664525u + 1013904223u;
            uint8_t* p = img.rgb.data() + (size_t(y) * size_t(w) + size_t(x)) * 3;
            const uint8_t base = uint8_t((y / 120) * 37);
            const bool ink = (s >> 24) < 40 && (y % 120) > 30 && (y % 120) < 70;
            p[0] = ink ? 20 : base;
            p[1] = ink ? 20 : uint8_t(255 - base);
            p[2] = ink ? 20 : uint8_t(base / 2 + 60);
        }
    return img;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 0, repeat = 1;
    bool gemmOnly = false, compare = true, noGemm = false;
    std::string model, precision = "bf16";
    std::vector<int64_t> budgets = {1'000'000, 5'000'000};
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "wb-bench-vision: %s needs a value\n", k.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (k == "--threads" || k == "-t") threads = std::stoi(value());
        else if (k == "-m" || k == "--model") model = value();
        else if (k == "--precision") precision = value();
        else if (k == "--pixels") budgets = list(value());
        else if (k == "--repeat") repeat = std::max(1, std::stoi(value()));
        else if (k == "--gemm-only") gemmOnly = true;
        else if (k == "--no-amx-compare") compare = false;
        else if (k == "--no-gemm") noGemm = true;
        else {
            std::fprintf(stderr,
                         "usage: wb-bench-vision [--threads N] [--gemm-only] [-m DIR] [--precision P] "
                         "[--pixels 1000000,5000000] [--repeat N] [--no-amx-compare] [--no-gemm]\n");
            return 2;
        }
    }
    wb::ThreadPool pool(threads);
    std::printf("CPU kernels: %s, AMX tiles: %s\n", wb::cpu::isaName(wb::cpu::activeIsa()),
                wb::cpu::amx::available() ? (wb::cpu::amx::enabled() ? "yes" : "present, switched off") : "no");
    const double peak = noGemm ? 0.0 : gemmTable(pool);
    if (gemmOnly || model.empty()) return 0;

    wb::GlmLoadOptions lo;
    lo.numThreads = threads;
    lo.loadTokenizer = false;
    if (precision == "bf16") lo.weightType = wb::DType::BF16;
    else if (precision == "fp32") lo.weightType = wb::DType::F32;
    else if (precision == "fp16") lo.weightType = wb::DType::F16;
    else if (precision == "int8") lo.weightType = wb::DType::I8;
    else if (precision != "native") {
        std::fprintf(stderr, "wb-bench-vision: unknown --precision %s\n", precision.c_str());
        return 2;
    }
    const auto l0 = Clock::now();
    auto m = wb::GlmModel::load(model, lo);
    if (!m) {
        std::fprintf(stderr, "wb-bench-vision: %s\n", m.error().message.c_str());
        return 1;
    }
    std::printf("\nloaded %s at %s in %.1f s\n", model.c_str(), precision.c_str(), seconds(l0, Clock::now()));
    const wb::GlmVisionConfig& v = (*m)->config().vision;
    const wb::Image img = screenshot(1080, 2400);
    std::printf("vision tower: %lld blocks x %lld wide, %lld heads, MLP %lld, out %lld\n", (long long)v.depth,
                (long long)v.hiddenSize, (long long)v.numHeads, (long long)v.outHiddenSize, (long long)v.outHiddenSize);
    for (int64_t budget : budgets) {
        wb::Glm4vProcessorConfig pc = (*m)->processorConfig();
        pc.maxPixels = budget;
        auto in = wb::glm4vPreprocess(img, pc);
        if (!in) {
            std::fprintf(stderr, "wb-bench-vision: %s\n", in.error().message.c_str());
            return 1;
        }
        const double N = double(in->numPatches()), hid = double(v.hiddenSize), out = double(v.outHiddenSize);
        const double frame = double(in->gridH * in->gridW);
        const double M = N / double(v.spatialMergeSize * v.spatialMergeSize);
        const double linear = double(v.depth) * 2.0 * N * hid * (3 * hid + hid + 3 * out) +
                              2.0 * N * double(in->patchDim) * hid +                      // patch embedding
                              2.0 * M * (4 * hid) * out + 2.0 * M * out * out +          // downsample, proj
                              3.0 * 2.0 * M * out * double(v.intermediateSize);          // merger MLP
        const double attention = double(v.depth) * 4.0 * N * frame * hid;               // QKᵀ and PV, all heads
        const double flops = linear + attention;
        for (int pass = 0; pass < (compare && wb::cpu::amx::available() ? 2 : 1); ++pass) {
            const bool amxOn = pass == 0 && wb::cpu::amx::available();
            wb::cpu::amx::setEnabled(amxOn);
            double best = 1e30, bestCpu = 1e30;
            for (int r = 0; r < repeat; ++r) {
                const auto t0 = Clock::now();
                const double c0 = cpuSeconds();
                auto f = (*m)->encodeImage(*in, &pool);
                const double s = seconds(t0, Clock::now());
                bestCpu = std::min(bestCpu, cpuSeconds() - c0);
                if (!f) {
                    std::fprintf(stderr, "wb-bench-vision: %s\n", f.error().message.c_str());
                    return 1;
                }
                best = std::min(best, s);
            }
            std::printf("  %7lld max pixels: %5.0f patches (%lldx%lld), %4.0f image tokens, %s: %7.2f s, "
                        "%.0f GFLOP (%.0f linear + %.0f attention): %6.1f GFLOP/s = %3.0f%% of the GEMM peak; "
                        "%.1f CPU s (%.0f GFLOP per CPU second)\n",
                        (long long)budget, N, (long long)in->gridH, (long long)in->gridW, M,
                        amxOn ? "AMX" : "no AMX", best, flops / 1e9, linear / 1e9, attention / 1e9,
                        flops / best / 1e9, peak > 0 ? 100.0 * flops / best / 1e9 / peak : 0.0, bestCpu,
                        flops / bestCpu / 1e9);
            std::fflush(stdout);
        }
        wb::cpu::amx::setEnabled(true);
    }
    return 0;
}
