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

/* The constants of one call. */
typedef struct qelt_args {
    bool s8, b_scalar;
    __m256 ra, rb, f;  /* add */
    __m256i za, zb;    /* mul */
    __m256 r, fzc;     /* mul */
} qelt_args;

typedef void (*block_fn)(const qelt_args *p, const uint8_t *a, const uint8_t *b, uint8_t *y);

/* Runs block over n elements, STEP at a time; the tail goes through 16-byte
 * buffers, so nothing is read or written past the ends. b advances unless
 * b_scalar (then it points at STEP copies of the value, or the value is in
 * the constants). */
static inline void run_blocks(block_fn block, const qelt_args *p, const uint8_t *a,
                              const uint8_t *b, uint8_t *y, size_t n)
{
    size_t i = 0, bs = p->b_scalar ? 0 : 1;
    for (; i + STEP <= n; i += STEP)
        block(p, a + i, b + i * bs, y + i);
    if (i < n) {
        uint8_t ta[STEP] = {0}, tb[STEP] = {0}, ty[STEP];
        memcpy(ta, a + i, n - i);
        memcpy(tb, b + i * bs, p->b_scalar ? STEP : n - i);
        block(p, ta, tb, ty);
        memcpy(y + i, ty, n - i);
    }
}

/* y = cvt(fma(a, ra, t)), t = fma(b, rb, f) or f (see the reference). */
static inline __m256i add8(const qelt_args *p, const uint8_t *a, const uint8_t *b)
{
    __m256 t = p->b_scalar ? p->f : _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8(b, p->s8)), p->rb, p->f);
    return _mm256_cvtps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(load8(a, p->s8)), p->ra, t));
}

static void add_block(const qelt_args *p, const uint8_t *a, const uint8_t *b, uint8_t *y)
{
    store16(y, add8(p, a, b), add8(p, a + 8, b + 8), p->s8);
}

void oq_qelt_add_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar)
{
    const float ra = sa / sc, rb = sb / sc;
    float fixed = (float)zc - fmaf(ra, (float)za, rb * (float)zb);
    uint8_t bb[STEP] = {0};
    if (b_scalar) { /* the one value of b is folded into the constant */
        float b0 = s8 ? (float)*(const int8_t *)b : (float)*(const uint8_t *)b;
        fixed = fmaf(b0, rb, fixed);
        b = bb;
    }
    qelt_args p = {.s8 = s8, .b_scalar = b_scalar, .ra = _mm256_set1_ps(ra),
                   .rb = _mm256_set1_ps(rb), .f = _mm256_set1_ps(fixed)};
    run_blocks(add_block, &p, a, b, y, n);
}

/* y = cvt((float)((a - za) * (b - zb)) * r + zc): a product, then a sum. */
static inline __m256i mul8(const qelt_args *p, const uint8_t *a, const uint8_t *b)
{
    __m256i q = _mm256_mullo_epi32(_mm256_sub_epi32(load8(a, p->s8), p->za),
                                   _mm256_sub_epi32(load8(b, p->s8), p->zb));
    return _mm256_cvtps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), p->r), p->fzc));
}

static void mul_block(const qelt_args *p, const uint8_t *a, const uint8_t *b, uint8_t *y)
{
    store16(y, mul8(p, a, b), mul8(p, a + 8, b + 8), p->s8);
}

void oq_qelt_mul_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar)
{
    uint8_t bb[STEP];
    if (b_scalar) { /* the one value of b, repeated: every lane reads it */
        memset(bb, *(const uint8_t *)b, STEP);
        b = bb;
    }
    qelt_args p = {.s8 = s8, .b_scalar = b_scalar, .za = _mm256_set1_epi32(za),
                   .zb = _mm256_set1_epi32(zb), .r = _mm256_set1_ps(sa * sb / sc),
                   .fzc = _mm256_set1_ps((float)zc)};
    run_blocks(mul_block, &p, a, b, y, n);
}
