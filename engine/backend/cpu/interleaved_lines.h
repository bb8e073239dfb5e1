// Interleaved Q5_0, Q4_K and Q6_K (weight_matrix.h, interleaveBlocks): a K-quant super-block's scales for the
// group's 16 rows as f32 vectors (each product rounded as dequantizeRow rounds it), and the 5- and 6-bit lines. Shared
// by the AVX-512 VNNI kernels and the AMX ones; include it only below an AVX-512 target pragma (the functions are
// compiled for the including file's ISA, and internal to it).
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

// Q6_K: sc[g][i] = d·scale of 16-value group g of row i (sb: the super-block's bytes).
inline void q6kScales16(const uint8_t* sb, float (*sc)[16]) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
    for (int g = 0; g < 16; ++g) {
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 32 + 16 * g));
        _mm512_store_ps(sc[g], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s))));
    }
}

// Q6_K: line l (values 4l..4l+3 of the 16 rows) of sub-block k (0-3) of a 128-value half (its 1,536 bytes): the
// low nibbles (k < 2) or high nibbles of chunk k % 2 with bits 2k..2k+1 of the high pairs above them, unsigned
// (value q - 32).
inline __m512i q6kLine(const uint8_t* half, int k, int l) {
    const __m512i ql = _mm512_loadu_si512(half + 512 * (k % 2) + 64 * l);
    const __m512i qh = _mm512_loadu_si512(half + 1024 + 64 * l);
    const __m512i lo = _mm512_and_si512(k < 2 ? ql : _mm512_srli_epi16(ql, 4), _mm512_set1_epi8(0x0F));
    __m512i hi;
    switch (k) {
        case 0: hi = _mm512_slli_epi16(qh, 4); break;
        case 1: hi = _mm512_slli_epi16(qh, 2); break;
        case 2: hi = qh; break;
        default: hi = _mm512_srli_epi16(qh, 2); break;
    }
    return _mm512_or_si512(lo, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
}

// Q5_0: B line l (0-7) of a block (`b`: its 64 bytes of high bits, 4 a row, then its 4 nibble lines): values
// v0..v0+3 of the 16 rows, v0 = 4l (low nibbles of line l) or 16 + 4(l - 4) (high nibbles of line l - 4), each
// with its fifth bit (bit v0 + j of the row's high-bit dword) as 16, unsigned (value q - 16).
inline __m512i q5Line(const uint8_t* b, int l) {
    const __m512i v = _mm512_loadu_si512(b + 64 + 64 * (l % 4));
    const __m512i nib = _mm512_and_si512(l < 4 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
    const int v0 = l < 4 ? 4 * l : 16 + 4 * (l - 4);
    // The 4 bits each dword needs, its low byte copied to all 4 bytes, byte j tested against bit j.
    const __m512i bits = _mm512_srli_epi32(_mm512_loadu_si512(b), unsigned(v0));
    const __m512i spread = _mm512_shuffle_epi8(bits, _mm512_set4_epi32(0x0C0C0C0C, 0x08080808, 0x04040404, 0));
    const __mmask64 high = _mm512_test_epi8_mask(spread, _mm512_set1_epi32(0x08040201));
    return _mm512_mask_add_epi8(nib, high, nib, _mm512_set1_epi8(16));
}

}  // namespace
}  // namespace wb::cpu::detail
