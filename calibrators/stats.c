/* Streaming calibration statistics: running min/max, the moving averages of
 * the per-batch extremes, and the power-of-two-width aligned histogram (see
 * calib_internal.h for its invariants). Memory is fixed when the statistics
 * are created: updates and merges never allocate. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "stats_kern.h"

int64_t calib_floor_shift(int64_t a, int d)
{
    if (d <= 0)
        return a;
    if (d > 62)
        d = 62; /* |a| < 2^53 here, so the result is already 0 or -1 */
    return a >= 0 ? a >> d : -(((-(a + 1)) >> d)) - 1;
}

/* The smallest exponent allowed for a histogram holding values up to maxabs
 * in magnitude: keeps |x| / 2^e below 2^52. Non-decreasing in maxabs. */
static int exp2_floor(float maxabs)
{
    int k = -149; /* below every non-zero float: 2^-149 is the least */
    if (maxabs > 0.0f) {
        int kk;
        (void)frexpf(maxabs, &kk); /* maxabs < 2^kk */
        if (kk > k)
            k = kk;
    }
    return k - 52;
}

static int64_t bin_of(double x, int e) { return (int64_t)floor(x * ldexp(1.0, -e)); }

static bool fits(float min, float max, int e, size_t nbins)
{
    return (uint64_t)(bin_of(max, e) - bin_of(min, e)) + 1 <= (uint64_t)nbins;
}

/* The canonical exponent for [min, max], given that it is at least start
 * (fits() is monotone in e, so the search from below finds the least). */
static int canonical_exp2(float min, float max, size_t nbins, int start)
{
    float maxabs = fmaxf(fabsf(min), fabsf(max));
    int e = exp2_floor(maxabs);
    if (start > e)
        e = start;
    while (!fits(min, max, e, nbins))
        e++;
    return e;
}

/* Re-bins to width 2^e (e >= s->exp2) and first bin `first`
 * (<= floor(s->first / 2^(e - s->exp2))): groups of 2^d neighbours merge,
 * which is exact, then the counts shift right. */
static oq_status rebin(oq_calib_stats *s, int e, int64_t first)
{
    size_t n = s->nbins;
    int d = e - s->exp2;
    int64_t base = calib_floor_shift(s->first, d);
    if (d < 0 || first > base)
        return oq_error(OQ_E_INTERNAL, "calibration histogram: bad re-binning");
    if (d > 0) {
        for (size_t i = 0; i < n; i++) {
            uint64_t c = s->counts[i];
            s->counts[i] = 0;
            s->counts[calib_floor_shift(s->first + (int64_t)i, d) - base] += c;
        }
    }
    uint64_t shift = (uint64_t)(base - first);
    if (shift > 0) {
        if (shift >= n)
            return oq_error(OQ_E_INTERNAL, "calibration histogram: bad re-binning");
        memmove(s->counts + shift, s->counts, (n - (size_t)shift) * sizeof *s->counts);
        memset(s->counts, 0, (size_t)shift * sizeof *s->counts);
    }
    s->exp2 = e;
    s->first = first;
    return OQ_OK;
}

/* Makes the (non-empty or empty) histogram ready for values in [min, max]
 * (the new overall extremes). */
static oq_status hist_reserve(oq_calib_stats *s, float min, float max, int start)
{
    if (s->count == 0) {
        s->exp2 = canonical_exp2(min, max, s->nbins, INT_MIN);
        s->first = bin_of(min, s->exp2);
        memset(s->counts, 0, s->nbins * sizeof *s->counts);
        return OQ_OK;
    }
    int e = canonical_exp2(min, max, s->nbins, start > s->exp2 ? start : s->exp2);
    return rebin(s, e, bin_of(min, e));
}

oq_status calib_options_check(const oq_calib_options *o)
{
    if (!o)
        return oq_error(OQ_E_INVALID, "calibration options: NULL");
    if (!oq_calib_method_name(o->method))
        return oq_error(OQ_E_INVALID, "calibration options: unknown method %d", (int)o->method);
    if (o->bins < 2 || o->bins > (1 << 16))
        return oq_error(OQ_E_INVALID,
                        "calibration options: bins must be in [2, 65536], got %d", o->bins);
    if (o->levels < 2 || o->levels > (1 << 24))
        return oq_error(OQ_E_INVALID,
                        "calibration options: levels must be in [2, 2^24], got %d", o->levels);
    if (!(o->percentile > 0.0 && o->percentile <= 100.0))
        return oq_error(OQ_E_INVALID,
                        "calibration options: percentile must be in (0, 100], got %g",
                        o->percentile);
    if (!(o->moving_average >= 0.0 && o->moving_average <= 1.0))
        return oq_error(OQ_E_INVALID,
                        "calibration options: moving average must be in [0, 1], got %g",
                        o->moving_average);
    return OQ_OK;
}

oq_status oq_calib_stats_new(const oq_calib_options *o, bool with_histogram,
                             oq_calib_stats **out)
{
    if (!out)
        return oq_error(OQ_E_INVALID, "calibration statistics: NULL output");
    *out = NULL;
    oq_status st = calib_options_check(o);
    if (st != OQ_OK)
        return st;
    oq_calib_stats *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "calibration statistics: out of memory");
    st = calib_kern_select(&s->kern);
    if (st != OQ_OK) {
        free(s);
        return st;
    }
    s->ema_c = o->moving_average;
    s->hist = with_histogram;
    s->nbins = (size_t)o->bins;
    if (with_histogram) {
        s->counts = calloc(s->nbins, sizeof *s->counts);
        s->aux = calloc(2 * s->nbins, sizeof *s->aux);
        if (!s->counts || !s->aux) {
            oq_calib_stats_free(s);
            return oq_error(OQ_E_NOMEM, "calibration histogram (%d bins): out of memory",
                            o->bins);
        }
    }
    *out = s;
    return OQ_OK;
}

void oq_calib_stats_free(oq_calib_stats *s)
{
    if (!s)
        return;
    free(s->counts);
    free(s->aux);
    free(s);
}

void calib_stats_drop_histogram(oq_calib_stats *s)
{
    free(s->counts);
    free(s->aux);
    s->counts = NULL;
    s->aux = NULL;
    s->hist = false;
}

oq_status calib_stats_clone(const oq_calib_stats *s, bool keep_hist, oq_calib_stats **out)
{
    oq_calib_stats *c = malloc(sizeof *c);
    if (!c)
        return oq_error(OQ_E_NOMEM, "calibration statistics: out of memory");
    *c = *s;
    c->hist = s->hist && keep_hist;
    c->counts = NULL;
    c->aux = NULL;
    if (c->hist) {
        c->counts = malloc(s->nbins * sizeof *c->counts);
        c->aux = calloc(2 * s->nbins, sizeof *c->aux);
        if (!c->counts || !c->aux) {
            oq_calib_stats_free(c);
            return oq_error(OQ_E_NOMEM, "calibration histogram: out of memory");
        }
        memcpy(c->counts, s->counts, s->nbins * sizeof *c->counts);
    }
    *out = c;
    return OQ_OK;
}

static float ema_step(float ema, float v, double c)
{
    return (float)((double)ema + c * ((double)v - (double)ema));
}

oq_status oq_calib_stats_update(oq_calib_stats *s, const float *data, size_t n)
{
    if (!s || (!data && n > 0))
        return oq_error(OQ_E_INVALID, "calibration statistics: NULL argument");
    if (n == 0)
        return OQ_OK;
    float bmin = 0.0f, bmax = 0.0f;
    oq_status st = OQ_OK;
    bool counted = s->hist && s->count > 0 && calib_hist_add_in_range(s, data, n, &bmin, &bmax);
    if (!counted && (st = calib_scan_batch(s->kern, data, n, &bmin, &bmax)) != OQ_OK)
        return st;
    float nmin = s->count ? fminf(s->min, bmin) : bmin;
    float nmax = s->count ? fmaxf(s->max, bmax) : bmax;
    if (s->hist && !counted) {
        st = hist_reserve(s, nmin, nmax, INT_MIN);
        if (st != OQ_OK)
            return st;
        calib_hist_add(s, data, n, bmin, bmax);
    }
    if (s->ema_c > 0.0 && s->count > 0) {
        s->ema_min = ema_step(s->ema_min, bmin, s->ema_c);
        s->ema_max = ema_step(s->ema_max, bmax, s->ema_c);
    } else if (s->ema_c > 0.0) {
        s->ema_min = bmin;
        s->ema_max = bmax;
    } else {
        s->ema_min = nmin;
        s->ema_max = nmax;
    }
    s->min = nmin;
    s->max = nmax;
    s->count += n;
    return OQ_OK;
}

static oq_status merge_check(const oq_calib_stats *dst, const oq_calib_stats *src)
{
    if (!dst || !src)
        return oq_error(OQ_E_INVALID, "calibration statistics: NULL argument");
    if (dst->hist != src->hist)
        return oq_error(OQ_E_INVALID,
                        "calibration statistics: cannot merge statistics with and without "
                        "a histogram");
    if (dst->hist && dst->nbins != src->nbins)
        return oq_error(OQ_E_INVALID,
                        "calibration statistics: cannot merge histograms of %zu and %zu bins",
                        dst->nbins, src->nbins);
    if (dst->ema_c != src->ema_c)
        return oq_error(OQ_E_INVALID,
                        "calibration statistics: different moving-average constants (%g, %g)",
                        dst->ema_c, src->ema_c);
    if (dst->ema_c > 0.0 && dst->count > 0 && src->count > 0)
        return oq_error(OQ_E_UNSUPPORTED,
                        "calibration statistics: moving averages depend on the order of the "
                        "batches; two non-empty ones cannot be merged");
    return OQ_OK;
}

oq_status oq_calib_stats_merge(oq_calib_stats *dst, const oq_calib_stats *src)
{
    oq_status st = merge_check(dst, src);
    if (st != OQ_OK || src->count == 0)
        return st;
    if (dst->count == 0) {
        uint64_t *keep = dst->counts;
        uint32_t *keep_aux = dst->aux;
        const struct calib_kern *keep_kern = dst->kern;
        *dst = *src;
        dst->counts = keep;
        dst->aux = keep_aux;
        dst->kern = keep_kern;
        if (src->hist)
            memcpy(dst->counts, src->counts, src->nbins * sizeof *src->counts);
        return OQ_OK;
    }
    float nmin = fminf(dst->min, src->min), nmax = fmaxf(dst->max, src->max);
    if (dst->hist) {
        st = hist_reserve(dst, nmin, nmax, src->exp2);
        if (st != OQ_OK)
            return st;
        int d = dst->exp2 - src->exp2;
        for (size_t i = 0; i < src->nbins; i++) {
            if (src->counts[i] == 0)
                continue;
            int64_t j = calib_floor_shift(src->first + (int64_t)i, d) - dst->first;
            if (j < 0 || (uint64_t)j >= dst->nbins)
                return oq_error(OQ_E_INTERNAL, "calibration histogram: merge out of range");
            dst->counts[j] += src->counts[i];
        }
    }
    dst->min = dst->ema_min = nmin;
    dst->max = dst->ema_max = nmax;
    dst->count += src->count;
    return OQ_OK;
}

void oq_calib_stats_minmax(const oq_calib_stats *s, float *min, float *max, uint64_t *count)
{
    bool any = s && s->count > 0;
    if (min)
        *min = any ? s->min : 0.0f;
    if (max)
        *max = any ? s->max : 0.0f;
    if (count)
        *count = s ? s->count : 0;
}

void oq_calib_stats_ema(const oq_calib_stats *s, float *ema_min, float *ema_max)
{
    bool any = s && s->count > 0;
    if (ema_min)
        *ema_min = any ? s->ema_min : 0.0f;
    if (ema_max)
        *ema_max = any ? s->ema_max : 0.0f;
}

bool oq_calib_stats_histogram(const oq_calib_stats *s, size_t *bins, int *exp2, int64_t *first,
                              const uint64_t **counts)
{
    if (!s || !s->hist)
        return false;
    if (bins)
        *bins = s->nbins;
    if (exp2)
        *exp2 = s->count ? s->exp2 : 0;
    if (first)
        *first = s->count ? s->first : 0;
    if (counts)
        *counts = s->counts;
    return true;
}

/* Checks a saved histogram against the invariants. */
static oq_status hist_check(const oq_calib_options *o, float min, float max, uint64_t count,
                            size_t bins, int exp2, int64_t first, const uint64_t *counts)
{
    if (bins > (size_t)o->bins || (bins > 0 && !counts))
        return oq_error(OQ_E_INVALID, "calibration histogram: %zu counts for %d bins", bins,
                        o->bins);
    uint64_t sum = 0;
    for (size_t i = 0; i < bins; i++) {
        if (counts[i] > UINT64_MAX - sum)
            return oq_error(OQ_E_INVALID, "calibration histogram: counts overflow");
        sum += counts[i];
    }
    if (sum != count)
        return oq_error(OQ_E_INVALID,
                        "calibration histogram: counts add up to %llu, not to the count %llu",
                        (unsigned long long)sum, (unsigned long long)count);
    if (count == 0)
        return OQ_OK;
    if (!isfinite(min) || !isfinite(max) || min > max)
        return oq_error(OQ_E_INVALID, "calibration histogram: bad min/max %g, %g", min, max);
    int e = canonical_exp2(min, max, (size_t)o->bins, INT_MIN);
    if (exp2 != e)
        return oq_error(OQ_E_INVALID,
                        "calibration histogram: bin width 2^%d, but min/max and %d bins "
                        "give 2^%d",
                        exp2, o->bins, e);
    if (first != bin_of(min, e))
        return oq_error(OQ_E_INVALID,
                        "calibration histogram: first bin %lld, but the minimum is in bin %lld",
                        (long long)first, (long long)bin_of(min, e));
    uint64_t last = (uint64_t)(bin_of(max, e) - first);
    if (last >= bins || counts[0] == 0 || counts[last] == 0)
        return oq_error(OQ_E_INVALID,
                        "calibration histogram: the bins of the minimum and the maximum must "
                        "be non-empty");
    for (size_t i = (size_t)last + 1; i < bins; i++)
        if (counts[i] != 0)
            return oq_error(OQ_E_INVALID,
                            "calibration histogram: counts beyond the maximum's bin");
    return OQ_OK;
}

oq_status oq_calib_stats_from_histogram(const oq_calib_options *o, float min, float max,
                                        uint64_t count, size_t bins, int exp2, int64_t first,
                                        const uint64_t *counts, oq_calib_stats **out)
{
    oq_status st = oq_calib_stats_new(o, true, out);
    if (st != OQ_OK)
        return st;
    st = hist_check(o, min, max, count, bins, exp2, first, counts);
    if (st != OQ_OK) {
        oq_calib_stats_free(*out);
        *out = NULL;
        return st;
    }
    oq_calib_stats *s = *out;
    if (count > 0) {
        memcpy(s->counts, counts, bins * sizeof *counts);
        s->exp2 = exp2;
        s->first = first;
        s->min = s->ema_min = min;
        s->max = s->ema_max = max;
        s->count = count;
    }
    return OQ_OK;
}

oq_status oq_calib_stats_from_minmax(const oq_calib_options *o, float min, float max,
                                     float ema_min, float ema_max, uint64_t count,
                                     oq_calib_stats **out)
{
    oq_status st = oq_calib_stats_new(o, false, out);
    if (st != OQ_OK || count == 0)
        return st;
    if (o->moving_average == 0.0) {
        ema_min = min;
        ema_max = max;
    }
    if (!isfinite(min) || !isfinite(max) || min > max || !isfinite(ema_min) ||
        !isfinite(ema_max)) {
        oq_calib_stats_free(*out);
        *out = NULL;
        return oq_error(OQ_E_INVALID,
                        "calibration statistics: inconsistent min %g, max %g, moving "
                        "averages %g, %g",
                        min, max, ema_min, ema_max);
    }
    oq_calib_stats *s = *out;
    s->min = min;
    s->max = max;
    s->ema_min = ema_min;
    s->ema_max = ema_max;
    s->count = count;
    return OQ_OK;
}
