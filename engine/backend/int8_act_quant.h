// How an INT8 (W8A8) matmul quantizes its activations and what its result may differ by: one rule, compiled into
// the CPU kernels (kernels_scalar.cpp, the AVX-512 fast path's edge cases), the CUDA quantize kernel and the
// checks, so that the int8 activations and their scales are the same bits on every backend.
//
// The rule (ggml's Q8_0 layout with round-to-nearest-even): a token's row is cut into blocks of 32 values, the last
// one possibly partial (the rest of it reads as zeros). Per block, scale = max|x| / 127 in f32, inv = 1 / scale,
// q = rint(x * inv), clamped to [-127, 127] (never reached on finite input: |x * inv| <= 127 * (1 + 3 ulp)).
// The edges, where the old CPU code was undefined and its ISAs disagreed:
//   - max|x| == 0, or a scale that underflows to 0 (max|x| < ~1.8e-43): scale 0, every q 0;
//   - a subnormal scale whose inverse overflows (max|x| < ~3.7e-37): q = rint(x / scale) instead of x * inv;
//   - a block holding NaN or ±inf: scale NaN, every q 0, so the block's product is NaN and the output row of that
//     token is NaN on every backend (it shows up in the checks instead of turning into finite garbage).
//
// The matmul itself: per output y[t, r] = wScale[r] * Σ_b float(Σ_{k in b} w[r, k] * q[t, k]) * scale[t, b]. The
// inner integer sums are exact (|Σ| <= 32 * 127 * 127 < 2^24, so also exact as a float); only the f32 sum over
// blocks rounds, and its order is each backend's own (see w8a8Reference and w8a8ErrorBound below).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define WB_HOST_DEVICE __host__ __device__
#else
#define WB_HOST_DEVICE
#endif

#if !defined(__CUDA_ARCH__)
#include <algorithm>
#include <cmath>
#include <limits>
#endif

namespace wb {

/// Values per activation block (one scale each).
constexpr int kActBlock = 32;
/// The CUDA W8A8 kernel sums each output's blocks in this many contiguous runs (one warp each), then adds the
/// runs pairwise: ((run0 + run1) + (run2 + run3)). A function of K only, never of the number of tokens.
constexpr int kW8a8KSplits = 4;

/// Blocks per row of `cols` values.
WB_HOST_DEVICE constexpr int64_t actBlocks(int64_t cols) { return (cols + kActBlock - 1) / kActBlock; }

/// Workspace of the CUDA W8A8 matmul for m tokens of `cols` values: their block scales, then their int8 values
/// (actBlocks(cols) · 32 per token, zero padded), each part 256-byte aligned. Activations only: the weight is never
/// expanded (the old path reserved rows · cols · 2 bytes, 1.24 GB for a 151,552 x 4,096 LM head).
WB_HOST_DEVICE constexpr int64_t w8a8WorkspaceBytes(int64_t m, int64_t cols) {
    return (m * actBlocks(cols) * 4 + 255) / 256 * 256 + (m * actBlocks(cols) * kActBlock + 255) / 256 * 256;
}

/// What a block's quantization needs, from its max |x| and whether it holds a NaN or an infinity.
struct ActQuantParams {
    float scale = 0.0f;  // the stored block scale: max|x| / 127, 0, or NaN
    float inv = 0.0f;    // 1 / scale where that is finite
    bool byDivision = false;  // a subnormal scale whose inverse overflows: x / scale
    bool nonFinite = false;   // every q is 0, the scale NaN
};

WB_HOST_DEVICE inline float actQuantNaN() {
#if defined(__CUDA_ARCH__)
    return __int_as_float(0x7fc00000);
#else
    return std::numeric_limits<float>::quiet_NaN();
#endif
}

/// True for NaN and ±inf (|x| > FLT_MAX, or unordered).
WB_HOST_DEVICE inline bool actNonFinite(float x) {
#if defined(__CUDA_ARCH__)
    return !(fabsf(x) <= 3.40282347e+38f);
#else
    return !(std::fabs(x) <= 3.40282347e+38f);
#endif
}

WB_HOST_DEVICE inline ActQuantParams actQuantParams(float amax, bool nonFinite) {
    ActQuantParams p;
    if (nonFinite) {
        p.scale = actQuantNaN();
        p.nonFinite = true;
        return p;
    }
    p.scale = amax / 127.0f;
    if (p.scale == 0.0f) return p;
    p.inv = 1.0f / p.scale;
    p.byDivision = !(p.inv <= 3.40282347e+38f);
    return p;
}

/// One value of a block quantized with its block's parameters.
WB_HOST_DEVICE inline int8_t quantizeActValue(float x, const ActQuantParams& p) {
    if (p.nonFinite || p.scale == 0.0f) return 0;
    const float v = p.byDivision ? x / p.scale : x * p.inv;
#if defined(__CUDA_ARCH__)
    float r = rintf(v);
#else
    float r = std::nearbyint(v);  // the default rounding mode: to nearest, ties to even (as rintf on the GPU)
#endif
    r = r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r);
    return int8_t(int(r));
}

/// Quantizes one block of n (1..32) values into q[0, 32) (zeros past n). Returns the scale; *sum gets Σq.
WB_HOST_DEVICE inline float quantizeActBlock(const float* x, int n, int8_t* q, int32_t* sum) {
    float amax = 0.0f;
    bool nonFinite = false;
    for (int i = 0; i < n; ++i) {
        nonFinite = nonFinite || actNonFinite(x[i]);
#if defined(__CUDA_ARCH__)
        amax = fmaxf(amax, fabsf(x[i]));
#else
        amax = std::max(amax, std::fabs(x[i]));
#endif
    }
    const ActQuantParams p = actQuantParams(amax, nonFinite);
    int32_t s = 0;
    for (int i = 0; i < kActBlock; ++i) {
        const int8_t v = i < n ? quantizeActValue(x[i], p) : int8_t(0);
        q[i] = v;
        s += v;
    }
    if (sum) *sum = s;
    return p.scale;
}

#if !defined(__CUDA_ARCH__)
/// The CUDA W8A8 kernel's arithmetic for one output, replayed on the host in the same order with the same f32
/// operations (fma per block, kW8a8KSplits runs added pairwise, times the weight row's scale): the GPU's result
/// must equal it bit for bit. w: the weight row (cols values); q, d: the token's quantized row (actBlocks(cols) * 32
/// values, zero padded) and its block scales.
inline float w8a8Reference(const int8_t* w, int64_t cols, const int8_t* q, const float* d, float wScale) {
    const int64_t nb = actBlocks(cols);
    const int64_t run = (nb + kW8a8KSplits - 1) / kW8a8KSplits;
    float part[kW8a8KSplits];
    for (int s = 0; s < kW8a8KSplits; ++s) {
        float acc = 0.0f;
        for (int64_t b = s * run; b < std::min(nb, (s + 1) * run); ++b) {
            int32_t dot = 0;
            for (int64_t k = b * kActBlock; k < std::min(cols, (b + 1) * kActBlock); ++k)
                dot += int32_t(w[k]) * int32_t(q[k]);
            acc = std::fma(float(dot), d[b], acc);
        }
        part[s] = acc;
    }
    static_assert(kW8a8KSplits == 4, "the pairwise sum below is written for four runs");
    return ((part[0] + part[1]) + (part[2] + part[3])) * wScale;
}

/// Where values fall below 2^-126 the relative model fails: each rounding may then be off by up to 2^-150
/// absolute, scaled at most by the final multiply. Both orders together take fewer than 3·nb + 24 roundings.
inline double w8a8UnderflowSlack(int64_t nb, double absWScale) {
    return (3.0 * double(nb) + 24.0) * std::ldexp(1.0, -150) * std::max(1.0, absWScale) + std::ldexp(1.0, -149);
}

/// A bound on |a - b| for two W8A8 results of the same output computed in different f32 orders, from the same
/// int8 activations (the shared rule above): the CUDA kernel's (w8a8Reference) against any CPU kernel (scalar:
/// one rounded product and one add per block; AVX2/AVX-512: per-lane partial sums of 4-8 products offset by the
/// unsigned-weight trick, |lane| <= Σ(|w| + 256)|q| over a block, fma-accumulated over at most cols/32 steps,
/// then a horizontal sum). Each path lies within γ_n · Σ|terms| of the exact value wScale · Σ_b dot_b · d_b
/// (γ_n = n·u / (1 - n·u), u = 2^-24), so their difference lies within the sum of both bounds:
///   γ_{2·nb + 16} · |wScale| · Σ_b d_b · Σ_{k in b} (|w_k| + 256)·|q_k|  (any CPU order)
/// + γ_{nb/4 + 4}  · |wScale| · Σ_b d_b · |dot_b|                        (the GPU's order).
/// (+ w8a8UnderflowSlack). Valid while no product or sum overflows f32: a block scale near FLT_MAX / 127 can give
/// inf on one side and NaN (inf - inf across lanes) on the other, and a NaN block makes the bound NaN, so compare
/// non-finite outputs by class, not by this.
inline double w8a8ErrorBound(const int8_t* w, int64_t cols, const int8_t* q, const float* d, float wScale) {
    const int64_t nb = actBlocks(cols);
    const double u = std::ldexp(1.0, -24);
    auto gamma = [u](double n) { return n * u / (1.0 - n * u); };
    double cpuTerms = 0, gpuTerms = 0;
    for (int64_t b = 0; b < nb; ++b) {
        double absLanes = 0;
        int64_t dot = 0;
        for (int64_t k = b * kActBlock; k < std::min(cols, (b + 1) * kActBlock); ++k) {
            absLanes += (std::abs(double(w[k])) + 256.0) * std::abs(double(q[k]));
            dot += int64_t(w[k]) * int64_t(q[k]);
        }
        cpuTerms += double(d[b]) * absLanes;
        gpuTerms += double(d[b]) * std::abs(double(dot));
    }
    const double ws = std::fabs(double(wScale));
    return gamma(2.0 * double(nb) + 16.0) * ws * cpuTerms +
           gamma(double((nb + kW8a8KSplits - 1) / kW8a8KSplits) + 4.0) * ws * gpuTerms + w8a8UnderflowSlack(nb, ws);
}

/// The same bound without the weights (|w| <= 128): |wScale| · (γ_cpu · 384 + γ_gpu · 128) · Σ_b d_b · Σ|q|, at
/// least w8a8ErrorBound for every row, and O(cols) per token instead of O(cols) per output (the checks at the real
/// shapes use it for all 151,552 x 128 outputs of the LM head).
inline double w8a8TokenErrorBound(int64_t cols, const int8_t* q, const float* d, float wScale) {
    const int64_t nb = actBlocks(cols);
    const double u = std::ldexp(1.0, -24);
    auto gamma = [u](double n) { return n * u / (1.0 - n * u); };
    double terms = 0;
    for (int64_t b = 0; b < nb; ++b) {
        int64_t absQ = 0;
        for (int64_t k = b * kActBlock; k < std::min(cols, (b + 1) * kActBlock); ++k) absQ += std::abs(int(q[k]));
        terms += double(d[b]) * double(absQ);
    }
    const double g = gamma(2.0 * double(nb) + 16.0) * 384.0 +
                     gamma(double((nb + kW8a8KSplits - 1) / kW8a8KSplits) + 4.0) * 128.0;
    return g * std::fabs(double(wScale)) * terms + w8a8UnderflowSlack(nb, std::fabs(double(wScale)));
}
#endif

}  // namespace wb
