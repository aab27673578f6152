/* The AVX2 kernels of the streaming statistics (compiled with -mavx2 -mfma;
 * chosen at run time, see stats_kern.c). The portable kernels in
 * stats_kern.c define what they compute. */
#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "stats_kern.h"

/* Min and max over 16 floats a step, in two pairs of accumulators; NaN is
 * caught by an unordered compare of the two vectors of a step (min/max
 * never let it through), infinities by the extremes themselves. */
static bool scan_avx2(const float *x, size_t n, float *lo, float *hi)
{
    __m256 lo0 = _mm256_set1_ps(x[0]), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    __m256 nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
        lo0 = _mm256_min_ps(a, lo0);
        hi0 = _mm256_max_ps(a, hi0);
        lo1 = _mm256_min_ps(b, lo1);
        hi1 = _mm256_max_ps(b, hi1);
    }
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, _mm256_min_ps(lo0, lo1));
    _mm256_storeu_ps(hv, _mm256_max_ps(hi0, hi1));
    float l = lv[0], h = hv[0];
    for (int j = 1; j < 8; j++) {
        l = lv[j] < l ? lv[j] : l;
        h = hv[j] > h ? hv[j] : h;
    }
    bool ok = _mm256_movemask_ps(nan) == 0;
    for (; i < n; i++) {
        float v = x[i];
        ok &= v == v;
        l = v < l ? v : l;
        h = v > h ? v : h;
    }
    if (!ok || l < -FLT_MAX || h > FLT_MAX)
        return false;
    *lo = l;
    *hi = h;
    return true;
}

/* Four doubles' bins: scaled, floored, shifted by first (all exact). */
static __m128i bins4(__m128 a, __m256d vinv, __m256d vfirst)
{
    __m256d p = _mm256_mul_pd(_mm256_cvtps_pd(a), vinv);
    return _mm256_cvttpd_epi32(_mm256_sub_pd(_mm256_floor_pd(p), vfirst));
}

/* 8 values a step; the non-zero ones' indices kept in order (a zero's slot
 * is overwritten by the next value). */
static size_t bins_avx2(const float *x, size_t n, double inv, double first, int32_t *idx,
                        uint64_t *zeros)
{
    const __m256d vinv = _mm256_set1_pd(inv), vfirst = _mm256_set1_pd(first);
    int64_t f = (int64_t)first;
    size_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        int nz = ~_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ));
        int32_t b[8];
        _mm_storeu_si128((__m128i *)b, bins4(_mm256_castps256_ps128(a), vinv, vfirst));
        _mm_storeu_si128((__m128i *)(b + 4), bins4(_mm256_extractf128_ps(a, 1), vinv, vfirst));
        for (int j = 0; j < 8; j++) {
            idx[k] = b[j];
            k += (size_t)((nz >> j) & 1);
        }
    }
    for (; i < n; i++) {
        double p = (double)x[i] * inv;
        int64_t b = (int64_t)p;
        b -= p < (double)b;
        idx[k] = (int32_t)(b - f);
        k += x[i] != 0.0f;
    }
    *zeros += n - k;
    return k;
}

/* The same in float (bins_f32's conditions): 8 values a step. */
static size_t bins_f32_avx2(const float *x, size_t n, double inv, double first, int32_t *idx,
                            uint64_t *zeros)
{
    const __m256 vinv = _mm256_set1_ps((float)inv);
    const __m256i vfirst = _mm256_set1_epi32((int32_t)first);
    size_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        int nz = ~_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ));
        __m256 p = _mm256_floor_ps(_mm256_mul_ps(a, vinv));
        int32_t b[8];
        _mm256_storeu_si256((__m256i *)b, _mm256_sub_epi32(_mm256_cvttps_epi32(p), vfirst));
        for (int j = 0; j < 8; j++) {
            idx[k] = b[j];
            k += (size_t)((nz >> j) & 1);
        }
    }
    float finv = (float)inv;
    for (; i < n; i++) {
        float p = x[i] * finv;
        int32_t b = (int32_t)p;
        b -= p < (float)b;
        idx[k] = b - (int32_t)first;
        k += x[i] != 0.0f;
    }
    *zeros += n - k;
    return k;
}

/* Both at once, 8 values a step; the tail as the portable kernel does it. */
static bool scan_bins_f32_avx2(const float *x, size_t n, double inv, double first, int32_t *idx,
                               size_t *kout, uint64_t *zeros, float *lo, float *hi)
{
    const __m256 vinv = _mm256_set1_ps((float)inv);
    const __m256i vfirst = _mm256_set1_epi32((int32_t)first);
    __m256 vlo = _mm256_set1_ps(x[0]), vhi = vlo, nan = _mm256_setzero_ps();
    size_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        vlo = _mm256_min_ps(a, vlo);
        vhi = _mm256_max_ps(a, vhi);
        int nz = ~_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ));
        __m256 p = _mm256_floor_ps(_mm256_mul_ps(a, vinv));
        int32_t b[8];
        _mm256_storeu_si256((__m256i *)b, _mm256_sub_epi32(_mm256_cvttps_epi32(p), vfirst));
        for (int j = 0; j < 8; j++) {
            idx[k] = b[j];
            k += (size_t)((nz >> j) & 1);
        }
    }
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, vlo);
    _mm256_storeu_ps(hv, vhi);
    float l = lv[0], h = hv[0], finv = (float)inv;
    for (int j = 1; j < 8; j++) {
        l = lv[j] < l ? lv[j] : l;
        h = hv[j] > h ? hv[j] : h;
    }
    bool ok = _mm256_movemask_ps(nan) == 0;
    for (; i < n; i++) {
        float v = x[i], p = v * finv;
        ok &= v == v;
        l = v < l ? v : l;
        h = v > h ? v : h;
        int32_t b = p > -2147483520.0f && p < 2147483520.0f ? (int32_t)p : 0;
        b -= p < (float)b;
        idx[k] = (int32_t)((uint32_t)b - (uint32_t)(int32_t)first);
        k += v != 0.0f;
    }
    *zeros += n - k;
    *kout = k;
    *lo = l;
    *hi = h;
    return ok && l >= -FLT_MAX && h <= FLT_MAX;
}

static __m256d phi_avx2(__m256d x, __m256d dc, __m256d vl, __m256d vid)
{
    const __m256d third = _mm256_set1_pd(1.0 / 3.0), twelfth = _mm256_set1_pd(1.0 / 12.0);
    __m256d u = _mm256_mul_pd(_mm256_sub_pd(x, vl), vid);
    __m256d s = _mm256_sub_pd(u, _mm256_round_pd(u, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256d p = _mm256_fmsub_pd(_mm256_mul_pd(s, s), third, twelfth);
    return _mm256_mul_pd(_mm256_mul_pd(s, p), dc);
}

/* 8 terms a step in two accumulators, the tail one by one. */
static double phi_sum_avx2(const double *x, const double *dc, size_t n, double l, double id)
{
    const __m256d vl = _mm256_set1_pd(l), vid = _mm256_set1_pd(id);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = _mm256_add_pd(a0, phi_avx2(_mm256_loadu_pd(x + i), _mm256_loadu_pd(dc + i), vl, vid));
        a1 = _mm256_add_pd(a1, phi_avx2(_mm256_loadu_pd(x + i + 4), _mm256_loadu_pd(dc + i + 4),
                                        vl, vid));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
    double acc = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) {
        double u = (x[i] - l) * id, s = u - nearbyint(u);
        acc += s * (s * s * (1.0 / 3.0) - 1.0 / 12.0) * dc[i];
    }
    return acc;
}

const calib_kern calib_kern_avx2 = {"avx2",        scan_avx2,          bins_avx2,
                                    bins_f32_avx2, scan_bins_f32_avx2, phi_sum_avx2};
