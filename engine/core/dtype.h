// Element types of weights and activations, with their block layouts (GGUF's quantized blocks) and the
// scalar conversions every backend shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace wb {

enum class DType : uint8_t {
    F32,
    F16,
    BF16,
    Q8_0,  // GGUF block: f16 scale + 32 int8, 34 bytes per 32 values
    Q4_0,  // GGUF block: f16 scale + 16 bytes of nibbles, 18 bytes per 32 values
    Q4_K,  // GGUF super-block of 256 values, 144 bytes
    Q6_K,  // GGUF super-block of 256 values, 210 bytes
    I8,    // weight-only INT8: int8 values, one f32 scale per output row (kept beside the data)
    I32,
    Q5_0,  // GGUF block: f16 scale + 32 high bits + 16 bytes of nibbles, 22 bytes per 32 values (Q4_K_M's
           // fallback for rows that are not a multiple of 256)
};

std::string_view dtypeName(DType t);
/// Values per block (1 for plain types).
int64_t dtypeBlockSize(DType t);
/// Bytes per block (element size for plain types).
int64_t dtypeBlockBytes(DType t);
/// Bytes taken by n values (n must be a multiple of the block size).
inline int64_t dtypeRowBytes(DType t, int64_t n) { return n / dtypeBlockSize(t) * dtypeBlockBytes(t); }

inline float fp16ToFp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

/// Round to nearest even.
inline uint16_t fp32ToFp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // overflow to inf
    if (absx < 0x38800000u) {                                 // subnormal or zero in fp16
        if (absx < 0x33000000u) return uint16_t(sign);
        const uint32_t e = absx >> 23;
        const uint32_t m = (absx & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // value = m * 2^(e-150); fp16 subnormal unit is 2^-24
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) ++r;
        return uint16_t(sign | r);
    }
    uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
    const uint32_t rem = r & 0x1fff;
    r >>= 13;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
    return uint16_t(sign | r);
}

inline float bf16ToFp32(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

/// Round to nearest even; NaN stays NaN.
inline uint16_t fp32ToBf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return uint16_t(x >> 16);
}

}  // namespace wb
