/* The AVX-512 kernels of the streaming statistics (compiled with -mavx512f
 * -mavx512bw -mavx512vl; chosen at run time, see stats_kern.c). The
 * portable kernels in stats_kern.c define what they compute. */
#include <float.h>
#include <immintrin.h>

#include "stats_kern.h"

/* Min and max over 32 floats a step, in two pairs of accumulators; NaN is
 * caught by an unordered compare of the two vectors of a step (min/max
 * never let it through), infinities by the extremes themselves. The tail is
 * loaded through a mask, its missing lanes filled with x[0]. */
static bool scan_avx512(const float *x, size_t n, float *lo, float *hi)
{
    __m512 first = _mm512_set1_ps(x[0]);
    __m512 lo0 = first, hi0 = first, lo1 = first, hi1 = first;
    __mmask16 nan = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
        lo0 = _mm512_min_ps(a, lo0);
        hi0 = _mm512_max_ps(a, hi0);
        lo1 = _mm512_min_ps(b, lo1);
        hi1 = _mm512_max_ps(b, hi1);
    }
    for (; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m512 a = _mm512_mask_loadu_ps(first, m, x + i);
        nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        lo0 = _mm512_min_ps(a, lo0);
        hi0 = _mm512_max_ps(a, hi0);
    }
    float l = _mm512_reduce_min_ps(_mm512_min_ps(lo0, lo1));
    float h = _mm512_reduce_max_ps(_mm512_max_ps(hi0, hi1));
    if (nan || l < -FLT_MAX || h > FLT_MAX)
        return false;
    *lo = l;
    *hi = h;
    return true;
}

/* The rounding immediate of roundscale and of the conversions: toward
 * -inf, no exceptions (a macro: the instruction takes it as an immediate,
 * which a const variable is not at every optimisation level). */
#define ROUND_DOWN (_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)

/* 16 values a step: widened to double, scaled, floored, shifted by first
 * (all exact) and narrowed to int32; the non-zero ones compressed into idx. */
static size_t bins_avx512(const float *x, size_t n, double inv, double first, int32_t *idx,
                          uint64_t *zeros)
{
    const __m512d vinv = _mm512_set1_pd(inv), vfirst = _mm512_set1_pd(first);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m512 a = _mm512_maskz_loadu_ps(m, x + i);
        __mmask16 nz = _mm512_mask_cmp_ps_mask(m, a, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        __m256 a_lo = _mm512_castps512_ps256(a);
        __m256 a_hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
        __m512d p0 = _mm512_mul_pd(_mm512_cvtps_pd(a_lo), vinv);
        __m512d p1 = _mm512_mul_pd(_mm512_cvtps_pd(a_hi), vinv);
        __m256i b0 =
            _mm512_cvttpd_epi32(_mm512_sub_pd(_mm512_roundscale_pd(p0, ROUND_DOWN), vfirst));
        __m256i b1 =
            _mm512_cvttpd_epi32(_mm512_sub_pd(_mm512_roundscale_pd(p1, ROUND_DOWN), vfirst));
        __m512i b = _mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1);
        _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(nz, b));
        unsigned c = (unsigned)__builtin_popcount(nz);
        k += c;
        *zeros += left - c;
    }
    return k;
}

/* The same in float (bins_f32's conditions): 16 values a step, one vector
 * each of multiply, conversion (rounding down: the floor) and subtraction. */
static size_t bins_f32_avx512(const float *x, size_t n, double inv, double first,
                              int32_t *idx, uint64_t *zeros)
{
    const __m512 vinv = _mm512_set1_ps((float)inv);
    const __m512i vfirst = _mm512_set1_epi32((int32_t)first);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << left) - 1u);
        __m512 a = _mm512_maskz_loadu_ps(m, x + i);
        __mmask16 nz = _mm512_mask_cmp_ps_mask(m, a, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        __m512i b = _mm512_cvt_roundps_epi32(_mm512_mul_ps(a, vinv), ROUND_DOWN);
        b = _mm512_sub_epi32(b, vfirst);
        _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(nz, b));
        unsigned c = (unsigned)__builtin_popcount(nz);
        k += c;
        *zeros += left - c;
    }
    return k;
}

/* One vector of scan_bins_f32: extremes and NaN into the accumulators, the
 * non-zero lanes' indices (floor by the conversion's rounding) stored at
 * idx; returns how many. */
static inline unsigned scan_bins_step(__m512 a, __mmask16 m, __m512 vinv, __m512i vfirst,
                                      __m512 *vlo, __m512 *vhi, __mmask16 *nan, int32_t *idx)
{
    *nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    *vlo = _mm512_min_ps(a, *vlo);
    *vhi = _mm512_max_ps(a, *vhi);
    __mmask16 nz = _mm512_mask_cmp_ps_mask(m, a, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    __m512i b = _mm512_cvt_roundps_epi32(_mm512_mul_ps(a, vinv), ROUND_DOWN);
    _mm512_storeu_si512(idx, _mm512_maskz_compress_epi32(nz, _mm512_sub_epi32(b, vfirst)));
    return (unsigned)__builtin_popcount(nz);
}

/* Both at once, 16 values a step: the tail's missing lanes hold x[0] for
 * the extremes and are left out of the indices. */
static bool scan_bins_f32_avx512(const float *x, size_t n, double inv, double first,
                                 int32_t *idx, size_t *kout, uint64_t *zeros, float *lo,
                                 float *hi)
{
    const __m512 vinv = _mm512_set1_ps((float)inv), fill = _mm512_set1_ps(x[0]);
    const __m512i vfirst = _mm512_set1_epi32((int32_t)first);
    __m512 vlo = fill, vhi = fill;
    __mmask16 nan = 0;
    size_t k = 0, i = 0;
    for (; i + 16 <= n; i += 16)
        k += scan_bins_step(_mm512_loadu_ps(x + i), 0xFFFF, vinv, vfirst, &vlo, &vhi, &nan,
                            idx + k);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        k += scan_bins_step(_mm512_mask_loadu_ps(fill, m, x + i), m, vinv, vfirst, &vlo, &vhi,
                            &nan, idx + k);
    }
    float l = _mm512_reduce_min_ps(vlo), h = _mm512_reduce_max_ps(vhi);
    *zeros += n - k;
    *kout = k;
    *lo = l;
    *hi = h;
    return !nan && l >= -FLT_MAX && h <= FLT_MAX;
}

#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static __m512d phi_avx512(__m512d x, __m512d dc, __m512d vl, __m512d vid)
{
    const __m512d third = _mm512_set1_pd(1.0 / 3.0), twelfth = _mm512_set1_pd(1.0 / 12.0);
    __m512d u = _mm512_mul_pd(_mm512_sub_pd(x, vl), vid);
    __m512d s = _mm512_sub_pd(u, _mm512_roundscale_pd(u, ROUND_NEAREST));
    __m512d p = _mm512_fmsub_pd(_mm512_mul_pd(s, s), third, twelfth);
    return _mm512_mul_pd(_mm512_mul_pd(s, p), dc);
}

/* 16 terms a step in two accumulators; the tail through a mask (dc = 0). */
static double phi_sum_avx512(const double *x, const double *dc, size_t n, double l, double id)
{
    const __m512d vl = _mm512_set1_pd(l), vid = _mm512_set1_pd(id);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm512_add_pd(a0, phi_avx512(_mm512_loadu_pd(x + i), _mm512_loadu_pd(dc + i), vl, vid));
        a1 = _mm512_add_pd(a1, phi_avx512(_mm512_loadu_pd(x + i + 8), _mm512_loadu_pd(dc + i + 8),
                                          vl, vid));
    }
    for (; i < n; i += 8) {
        __mmask8 m = (__mmask8)((1u << (n - i < 8 ? n - i : 8)) - 1u);
        __m512d xv = _mm512_mask_loadu_pd(vl, m, x + i), dv = _mm512_maskz_loadu_pd(m, dc + i);
        a0 = _mm512_add_pd(a0, phi_avx512(xv, dv, vl, vid));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

const calib_kern calib_kern_avx512 = {"avx512",        scan_avx512,          bins_avx512,
                                      bins_f32_avx512, scan_bins_f32_avx512, phi_sum_avx512};
