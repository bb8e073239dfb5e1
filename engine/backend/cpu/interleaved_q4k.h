// Interleaved Q4_K (weight_matrix.h, interleaveBlocks): the 8 sub-blocks' scales and mins of one super-block for
// the group's 16 rows, as f32 vectors (d·sc and dmin·mn, each product rounded as dequantizeRow rounds it). Shared
// by the AVX-512 VNNI kernel and the AMX-INT8 one; include it only below an AVX-512 target pragma (the function
// is compiled for the including file's ISA, and internal to it).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace wb::cpu::detail {
namespace {

// sb: the super-block's bytes (d of the 16 rows, dmin, then byte b of every row's 12 scale bytes at 64 + 16·b).
// sc[s][i] and mn[s][i]: sub-block s of row i (ggml's get_scale_min_k4, 16 rows at a time on bytes).
inline void q4kScales16(const uint8_t* sb, float (*sc)[16], float (*mn)[16]) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 32)));
    __m128i B[12];
    for (int b = 0; b < 12; ++b) B[b] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 64 + 16 * b));
    const __m128i m63 = _mm_set1_epi8(63), m15 = _mm_set1_epi8(15), m3 = _mm_set1_epi8(3);
    for (int s = 0; s < 8; ++s) {
        __m128i vs, vm;
        if (s < 4) {
            vs = _mm_and_si128(B[s], m63);
            vm = _mm_and_si128(B[s + 4], m63);
        } else {  // 16-bit shifts, masked back to each byte's own bits
            vs = _mm_or_si128(_mm_and_si128(B[s + 4], m15),
                              _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(B[s - 4], 6), m3), 4));
            vm = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(B[s + 4], 4), m15),
                              _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(B[s], 6), m3), 4));
        }
        _mm512_store_ps(sc[s], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(vs))));
        _mm512_store_ps(mn[s], _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(vm))));
    }
}

}  // namespace
}  // namespace wb::cpu::detail
