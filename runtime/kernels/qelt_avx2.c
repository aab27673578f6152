/* QLinearAdd and QLinearMul with AVX2 + FMA (see qelt.h): 16 elements per
 * step, the tail through a 16-byte buffer. Compiled with -mavx2 -mfma. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "qelt.h"

#define STEP 16

/* Eight 8-bit values at p as int32. */
static inline __m256i load8(const uint8_t *p, bool s8)
{
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return s8 ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

/* Sixteen int32 (lo: elements 0-7, hi: 8-15) saturated to 8 bits and stored:
 * int32 -> int16 saturates, and int16 -> 8 bits saturates again, which is
 * the reference's clamp (INT32_MIN, the conversion's out-of-range value,
 * ends at the low bound as there). */
static inline void store16(uint8_t *y, __m256i lo, __m256i hi, bool s8)
{
    __m128i a = _mm_packs_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
    __m128i b = _mm_packs_epi32(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1));
    __m128i r = s8 ? _mm_packs_epi16(a, b) : _mm_packus_epi16(a, b);
    _mm_storeu_si128((__m128i *)y, r);
}

/* y = cvt(fma(a, ra, t)), t = fma(b, rb, f) or f (see the reference). */
static inline __m256i add8(const uint8_t *a, const uint8_t *b, bool s8, bool b_scalar, __m256 ra,
                           __m256 rb, __m256 f)
{
    __m256 t = b_scalar ? f : _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8(b, s8)), rb, f);
    return _mm256_cvtps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(load8(a, s8)), ra, t));
}

static void add_block(bool s8, const uint8_t *a, const uint8_t *b, bool b_scalar, __m256 ra,
                      __m256 rb, __m256 f, uint8_t *y)
{
    store16(y, add8(a, b, s8, b_scalar, ra, rb, f), add8(a + 8, b + 8, s8, b_scalar, ra, rb, f),
            s8);
}

void oq_qelt_add_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar)
{
    const float ra = sa / sc, rb = sb / sc;
    float fixed = (float)zc - fmaf(ra, (float)za, rb * (float)zb);
    if (b_scalar) {
        float b0 = s8 ? (float)*(const int8_t *)b : (float)*(const uint8_t *)b;
        fixed = fmaf(b0, rb, fixed);
    }
    const __m256 vra = _mm256_set1_ps(ra), vrb = _mm256_set1_ps(rb), vf = _mm256_set1_ps(fixed);
    const uint8_t *pa = a, *pb = b;
    uint8_t *py = y;
    size_t i = 0;
    for (; i + STEP <= n; i += STEP)
        add_block(s8, pa + i, b_scalar ? pb : pb + i, b_scalar, vra, vrb, vf, py + i);
    if (i < n) {
        uint8_t ta[STEP] = {0}, tb[STEP] = {0}, ty[STEP];
        memcpy(ta, pa + i, n - i);
        if (!b_scalar)
            memcpy(tb, pb + i, n - i);
        add_block(s8, ta, tb, b_scalar, vra, vrb, vf, ty);
        memcpy(py + i, ty, n - i);
    }
}

/* y = cvt((float)((a - za) * (b - zb)) * r + zc): a product, then a sum. */
static inline __m256i mul8(const uint8_t *a, const uint8_t *b, bool s8, __m256i za, __m256i zb,
                           __m256 r, __m256 fzc)
{
    __m256i p = _mm256_mullo_epi32(_mm256_sub_epi32(load8(a, s8), za),
                                   _mm256_sub_epi32(load8(b, s8), zb));
    return _mm256_cvtps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), r), fzc));
}

static void mul_block(bool s8, const uint8_t *a, const uint8_t *b, __m256i za, __m256i zb,
                      __m256 r, __m256 fzc, uint8_t *y)
{
    store16(y, mul8(a, b, s8, za, zb, r, fzc), mul8(a + 8, b + 8, s8, za, zb, r, fzc), s8);
}

void oq_qelt_mul_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar)
{
    const float r = sa * sb / sc;
    const __m256 vr = _mm256_set1_ps(r), vzc = _mm256_set1_ps((float)zc);
    const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
    const uint8_t *pa = a, *pb = b;
    uint8_t *py = y, bb[STEP];
    if (b_scalar) { /* the one value of b, repeated: every lane reads it */
        memset(bb, *pb, STEP);
        pb = bb;
    }
    size_t i = 0;
    for (; i + STEP <= n; i += STEP)
        mul_block(s8, pa + i, b_scalar ? pb : pb + i, vza, vzb, vr, vzc, py + i);
    if (i < n) {
        uint8_t ta[STEP] = {0}, tb[STEP] = {0}, ty[STEP];
        memcpy(ta, pa + i, n - i);
        memcpy(tb, b_scalar ? pb : pb + i, b_scalar ? STEP : n - i);
        mul_block(s8, ta, tb, vza, vzb, vr, vzc, ty);
        memcpy(py + i, ty, n - i);
    }
}
