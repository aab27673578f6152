/* The portable kernels of the streaming statistics (see stats_kern.h), and
 * the choice among the levels that were built. */
#include <math.h>

#include "stats_kern.h"

static bool scan_ref(const float *x, size_t n, float *lo, float *hi)
{
    float l = x[0], h = x[0];
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            return false;
        l = v < l ? v : l;
        h = v > h ? v : h;
    }
    *lo = l;
    *hi = h;
    return true;
}

/* floor(p) by truncation and a correction (no libm call): exact for
 * |p| < 2^63, and the caller keeps |p| < 2^52. */
static size_t bins_ref(const float *x, size_t n, double inv, double first, int32_t *idx,
                       uint64_t *zeros)
{
    int64_t f = (int64_t)first;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double p = (double)x[i] * inv;
        int64_t b = (int64_t)p;
        b -= p < (double)b;
        idx[k] = (int32_t)(b - f);
        k += x[i] != 0.0f; /* a zero's slot is overwritten by the next value */
    }
    *zeros += n - k;
    return k;
}

/* The same in float, under bins_f32's conditions: |p| < 2^24. */
static size_t bins_f32_ref(const float *x, size_t n, double inv, double first, int32_t *idx,
                           uint64_t *zeros)
{
    float finv = (float)inv;
    int32_t f = (int32_t)first;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        float p = x[i] * finv;
        int32_t b = (int32_t)p;
        b -= p < (float)b;
        idx[k] = b - f;
        k += x[i] != 0.0f;
    }
    *zeros += n - k;
    return k;
}

/* Both at once; a value whose scaled value is out of int32's range (or
 * NaN) gets index 0 rather than an undefined conversion. */
static bool scan_bins_f32_ref(const float *x, size_t n, double inv, double first, int32_t *idx,
                              size_t *k, uint64_t *zeros, float *lo, float *hi)
{
    float finv = (float)inv, l = x[0], h = x[0];
    int32_t f = (int32_t)first;
    bool finite = true;
    size_t kk = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i], p = v * finv;
        finite &= isfinite(v) != 0;
        l = v < l ? v : l;
        h = v > h ? v : h;
        int32_t b = p > -2147483520.0f && p < 2147483520.0f ? (int32_t)p : 0;
        b -= p < (float)b;
        idx[kk] = (int32_t)((uint32_t)b - (uint32_t)f);
        kk += v != 0.0f;
    }
    *zeros += n - kk;
    *k = kk;
    *lo = l;
    *hi = h;
    return finite;
}

/* 1.5 2^52: (u + M) - M is u rounded to the nearest integer, ties to even,
 * for |u| < 2^51 (nearbyint without a library call). */
#define ROUND_MAGIC 6755399441055744.0

static double phi_term(double x, double dc, double l, double id)
{
    double u = (x - l) * id, s = u - ((u + ROUND_MAGIC) - ROUND_MAGIC);
    return s * (s * s * (1.0 / 3.0) - 1.0 / 12.0) * dc;
}

/* Four partial sums, which the compiler can keep in vectors. */
static double phi_sum_ref(const double *x, const double *dc, size_t n, double l, double id)
{
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (size_t j = 0; j < 4; j++)
            acc[j] += phi_term(x[i + j], dc[i + j], l, id);
    for (; i < n; i++)
        acc[0] += phi_term(x[i], dc[i], l, id);
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static const calib_kern calib_kern_ref = {"ref",        scan_ref,          bins_ref,
                                          bins_f32_ref, scan_bins_f32_ref, phi_sum_ref};

const calib_kern *calib_kern_for(oq_isa_level level)
{
    if (!oq_cpu_has_level(level))
        return NULL;
    switch (level) {
    case OQ_LEVEL_REF:
        return &calib_kern_ref;
#ifdef OQ_HAVE_CALIB_AVX2
    case OQ_LEVEL_AVX2:
        return &calib_kern_avx2;
#endif
#ifdef OQ_HAVE_CALIB_AVX512
    case OQ_LEVEL_AVX512:
        return &calib_kern_avx512;
#endif
    default:
        return NULL;
    }
}

oq_status calib_kern_select(const calib_kern **out)
{
    oq_isa_level ceiling;
    const char *err = NULL;
    if (!oq_isa_ceiling(&ceiling, &err))
        return oq_error(OQ_E_INVALID, "calibration statistics: %s", err);
    for (int l = (int)ceiling; l > (int)OQ_LEVEL_REF; l--) {
        const calib_kern *k = calib_kern_for((oq_isa_level)l);
        if (k) {
            *out = k;
            return OQ_OK;
        }
    }
    *out = &calib_kern_ref;
    return OQ_OK;
}
