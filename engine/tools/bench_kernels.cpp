// wb-bench-kernels: times cpu::matmul on the projection shapes of a 1B-class Llama (dim 2048, FFN 5632, vocab
// 32000) for each weight dtype, at m = 1 (generation: reports GB/s of weight bytes streamed) and m = 128 / 512
// (prompt: reports GFLOP/s), with 1 and 2 threads, next to a plain memory-read bandwidth for comparison.
//
// Usage: wb-bench-kernels [--dtypes F16,Q8_0,...] [--m 1,128,512] [--threads 1,2] [--reps N] [--isa avx512|avx2|scalar]
//                         [--shapes 4096x4096,13696x4096,4096x13696]   (rows x cols, replacing the 1B shapes)
//                         [--amx on|off|both]   (both: each m >= 16 line timed with the AMX tiles and without,
//                                               back to back, so the ratio sees one machine load; path column)
#include <algorithm>
#include <chrono>
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

// Read bandwidth over a buffer far larger than L3, summed with wide loads split over the pool's threads.
double readBandwidth(ThreadPool& pool, int reps) {
    const size_t n = size_t(256) << 20;
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

}  // namespace

int main(int argc, char** argv) {
    std::vector<DType> dtypes = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::I8, DType::Q4_0};
    std::vector<int64_t> ms = {1, 128, 512};
    std::vector<int> threadCounts = {1, 2};
    int reps = 5;
    std::vector<std::pair<int64_t, int64_t>> customShapes;
    std::vector<bool> amxModes = {true};
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
            // Generation streams a 2 GB model from DRAM, so at m = 1 cycle through enough copies of the weight to
            // overflow the 32 MB L3; otherwise the small shapes would be timed from cache.
            std::vector<WeightMatrix> copies;
            const int64_t numCopies = std::max<int64_t>(1, (int64_t(96) << 20) / w.numBytes() + 1);
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
