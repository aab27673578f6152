/* The passes over a batch's values (see calib_internal.h): its extremes,
 * and its bin counts, in two passes or, when the histogram's bins already
 * cover the batch, in one. The loops themselves are kernels
 * (stats_kern.h). */
#include <math.h>
#include <string.h>

#include "calib_internal.h"
#include "stats_kern.h"

/* The bin (index from the histogram's first) of a value in its range. */
static size_t bin_index(const oq_calib_stats *s, float x)
{
    return (size_t)((int64_t)floor((double)x * ldexp(1.0, -s->exp2)) - s->first);
}

/* The error for a batch that holds a NaN or an infinity: the first one. */
static oq_status nonfinite_error(const float *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = data[i];
        if (!isfinite(x))
            return oq_error(OQ_E_INVALID,
                            "calibration data: value %zu of %zu is %s (NaN and infinities "
                            "cannot be calibrated)",
                            i, n, isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf");
    }
    return oq_error(OQ_E_INTERNAL, "calibration data: a non-finite value was reported, and "
                                   "none was found");
}

/* The batch's extremes; the first NaN or infinity is an error. Between +0
 * and -0 the data's first zero wins, whichever kernel ran: an extreme that
 * is zero is the first value equal to zero, as a scan from the front that
 * replaces the extreme only by a strictly smaller (larger) value leaves it. */
/* The zero extremes' sign: the first zero's. */
static void zero_sign(const float *data, float *bmin, float *bmax)
{
    if (*bmin == 0.0f || *bmax == 0.0f) {
        size_t i = 0;
        while (data[i] != 0.0f)
            i++;
        if (*bmin == 0.0f)
            *bmin = data[i];
        if (*bmax == 0.0f)
            *bmax = data[i];
    }
}

oq_status calib_scan_batch(const calib_kern *k, const float *data, size_t n, float *bmin,
                           float *bmax)
{
    if (!k->scan(data, n, bmin, bmax))
        return nonfinite_error(data, n);
    zero_sign(data, bmin, bmax);
    return OQ_OK;
}

/* The bin-index kernel for values up to maxabs in magnitude: in float when
 * the scaled values stay below 2^24 and the width is at most 1 (exact). */
static calib_bins_fn bins_for(const oq_calib_stats *s, double maxabs)
{
    double inv = ldexp(1.0, -s->exp2);
    bool f32 = s->exp2 <= 0 && s->exp2 >= -126 && maxabs * inv < 16777216.0;
    return f32 ? s->kern->bins_f32 : s->kern->bins;
}

/* Adds n values to counts (and alternately to aux when aux is set),
 * through the kernel's bin indices; zeros are only counted. maxabs bounds
 * |data|. */
static void hist_count(const oq_calib_stats *s, const float *data, size_t n, double maxabs,
                       uint32_t *aux, uint64_t *zeros)
{
    double inv = ldexp(1.0, -s->exp2), first = (double)s->first;
    calib_bins_fn bins = bins_for(s, maxabs);
    uint64_t *c = s->counts;
    int32_t idx[CALIB_BIN_IDX];
    for (size_t i = 0; i < n; i += CALIB_BIN_CHUNK) {
        size_t m = n - i < CALIB_BIN_CHUNK ? n - i : CALIB_BIN_CHUNK;
        size_t k = bins(data + i, m, inv, first, idx, zeros), j = 0;
        if (aux)
            for (; j + 1 < k; j += 2) {
                c[idx[j]]++;
                aux[idx[j + 1]]++;
            }
        for (; j < k; j++)
            c[idx[j]]++;
    }
}

/* Adds the batch to the histogram (already wide enough for it); its values
 * lie in [bmin, bmax], bins [b0, b1]. Large batches count through two
 * arrays, which breaks the chains of increments of one bin (runs of equal
 * values); the second (uint32) is flushed into the first after at most
 * UINT32_MAX values, one pass over [b0, b1]. Zeros are added at once. */
void calib_hist_add(oq_calib_stats *s, const float *data, size_t n, float bmin, float bmax)
{
    size_t b0 = bin_index(s, bmin), b1 = bin_index(s, bmax);
    double maxabs = fmax(fabs((double)bmin), fabs((double)bmax));
    uint32_t *aux = n / 4 >= b1 - b0 + 1 ? s->aux : NULL;
    uint64_t zeros = 0;
    for (size_t done = 0; done < n;) {
        size_t part = n - done < (size_t)UINT32_MAX ? n - done : (size_t)UINT32_MAX;
        hist_count(s, data + done, part, maxabs, aux, &zeros);
        for (size_t b = b0; aux && b <= b1; b++) {
            s->counts[b] += aux[b];
            aux[b] = 0;
        }
        done += part;
    }
    if (zeros)
        s->counts[-s->first] += zeros;
}

/* Counts k bin indices into the two halves of aux. */
static void count_idx(const oq_calib_stats *s, const int32_t *idx, size_t k)
{
    uint32_t *a0 = s->aux, *a1 = s->aux + s->nbins;
    size_t j = 0;
    for (; j + 1 < k; j += 2) {
        a0[idx[j]]++;
        a1[idx[j + 1]]++;
    }
    if (j < k)
        a0[idx[j]]++;
}

/* One chunk's extremes and bin indices: in one loop when the indices are
 * computed in float, else a scan and then (from L1) the indices, if the
 * extremes lie in [lo, hi). False for NaN or infinities. */
static bool chunk_pass(const oq_calib_stats *s, calib_bins_fn bins, const float *data, size_t n,
                       double lo, double hi, int32_t *idx, size_t *k, uint64_t *zeros,
                       float *cl, float *ch)
{
    double inv = ldexp(1.0, -s->exp2), first = (double)s->first;
    if (bins == s->kern->bins_f32)
        return s->kern->scan_bins_f32(data, n, inv, first, idx, k, zeros, cl, ch);
    if (!s->kern->scan(data, n, cl, ch))
        return false;
    *k = (double)*cl < lo || (double)*ch >= hi ? 0 : bins(data, n, inv, first, idx, zeros);
    return true;
}

/* One pass: each chunk's extremes and indices (chunk_pass, from memory),
 * counted, if the extremes lie in the bins, into aux, which is flushed into
 * counts at the end, or cleared if a chunk does not fit. The
 * bins [first, first + nbins) cover [lo, hi) below; a value there leaves the
 * canonical width and first bin as they are (the width cannot shrink, the
 * minimum's bin stays first, and |first| + nbins <= 2^52 keeps the width
 * above the floor the invariants set). */
bool calib_hist_add_in_range(oq_calib_stats *s, const float *data, size_t n, float *bmin,
                             float *bmax)
{
    double w = ldexp(1.0, s->exp2), lo = (double)s->first * w;
    double hi = ((double)s->first + (double)s->nbins) * w;
    if (n < 2 * s->nbins || n / 2 >= (size_t)UINT32_MAX ||
        fabs((double)s->first) + (double)s->nbins > 4503599627370496.0)
        return false;
    calib_bins_fn bins = bins_for(s, fmax(fabs(lo), fabs(hi)));
    float mn = data[0], mx = data[0];
    uint64_t zeros = 0;
    int32_t idx[CALIB_BIN_IDX];
    for (size_t i = 0; i < n; i += CALIB_BIN_CHUNK) {
        size_t m = n - i < CALIB_BIN_CHUNK ? n - i : CALIB_BIN_CHUNK, k = 0;
        float cl, ch;
        if (!chunk_pass(s, bins, data + i, m, lo, hi, idx, &k, &zeros, &cl, &ch) ||
            (double)cl < lo || (double)ch >= hi) {
            memset(s->aux, 0, 2 * s->nbins * sizeof *s->aux);
            return false;
        }
        mn = cl < mn ? cl : mn;
        mx = ch > mx ? ch : mx;
        count_idx(s, idx, k);
    }
    zero_sign(data, &mn, &mx);
    uint32_t *a0 = s->aux, *a1 = s->aux + s->nbins;
    for (size_t b = bin_index(s, mn), b1 = bin_index(s, mx); b <= b1; b++) {
        s->counts[b] += (uint64_t)a0[b] + a1[b];
        a0[b] = a1[b] = 0;
    }
    if (zeros)
        s->counts[-s->first] += zeros;
    *bmin = mn;
    *bmax = mx;
    return true;
}
