/* Calibration internals shared by the files of calibrators/: the layout of
 * the streaming statistics, views of their histogram, and one range function
 * per method. Internal to calibrators/. */
#ifndef ONNXQ_CALIB_INTERNAL_H
#define ONNXQ_CALIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/calib.h"

/* Histogram invariants (when hist is set and count > 0):
 *   - bin width w = 2^exp2; bin i covers [(first + i) w, (first + i + 1) w);
 *   - exp2 is canonical for the observed [min, max]: the smallest e with
 *     floor(max/2^e) - floor(min/2^e) + 1 <= nbins, and never below
 *     calib_exp2_floor(max |x|), which keeps |x| / 2^e below 2^52 so that
 *     bin indices and edges are exact in a double;
 *   - first = floor(min / w): the histogram is left-aligned on the minimum.
 * Both follow from the data alone, so any order of updates and merges of
 * the same values gives the same counts bit for bit. */
struct oq_calib_stats {
    float min, max;          /* observed extremes (meaningful when count > 0) */
    float ema_min, ema_max;  /* moving averages of the per-batch extremes */
    double ema_c;            /* moving-average constant; 0 = none */
    uint64_t count;          /* values seen */
    bool hist;               /* a histogram is kept */
    int exp2;                /* bin width 2^exp2 */
    int64_t first;           /* absolute index of bin 0 */
    size_t nbins;
    uint64_t *counts;        /* nbins counts (NULL without a histogram) */
    uint32_t *aux;           /* 2 nbins more counts, used within an update and zero
                              * between updates (NULL without a histogram) */
    const struct calib_kern *kern; /* the inner loops (stats_kern.h) */
};

/* A histogram laid out for a range function: n bins of width w, bin i
 * covering [(first + i) w, (first + i + 1) w). counts is malloc'd. */
typedef struct calib_hview {
    double w;
    int64_t first;
    size_t n;
    uint64_t *counts;
} calib_hview;

/* The histogram of |x| at the stats' own width, no coarsening: signed bin a
 * (a >= 0) lands in |x| bin a, signed bin a < 0 in |x| bin -a-1 (so |x| bin
 * k holds x in [k w, (k+1) w) and x in (-(k+1) w, -k w]). Never more than
 * nbins bins. */
oq_status calib_view_abs(const oq_calib_stats *s, calib_hview *v);
/* Zero-based views for the entropy method, coarsened exactly (merging 2^d
 * neighbours) until they fit in maxbins bins: with fold, |x| bins [0, n);
 * without, signed bins [-n/2, n/2) symmetric around zero. */
oq_status calib_view_zero(const oq_calib_stats *s, bool fold, size_t maxbins, calib_hview *v);
void calib_view_free(calib_hview *v);

/* Floor of a / 2^d for any int64 a and d >= 0. */
int64_t calib_floor_shift(int64_t a, int d);

/* Range functions, one per method (the table in calibrate.c). Each returns a
 * raw range; calibrate.c then makes it contain zero, symmetric when asked,
 * and non-empty. s->count > 0; histogram methods are called only when
 * s->hist is set. */
typedef oq_status (*calib_range_fn)(const oq_calib_stats *s, const oq_calib_options *o,
                                    double *lo, double *hi);
oq_status calib_range_minmax(const oq_calib_stats *s, const oq_calib_options *o, double *lo,
                             double *hi);
oq_status calib_range_percentile(const oq_calib_stats *s, const oq_calib_options *o,
                                 double *lo, double *hi);
oq_status calib_range_entropy(const oq_calib_stats *s, const oq_calib_options *o, double *lo,
                              double *hi);
oq_status calib_range_mse(const oq_calib_stats *s, const oq_calib_options *o, double *lo,
                          double *hi);

/* The entropy method's search (entropy.c): the half-width (in bins) of the
 * window of least divergence in view v (folded: the |x| view, windows
 * [0, i); else windows centred in the view), nq quantization levels. With
 * prune, only the windows calib_kl_candidates keeps are evaluated: the
 * result is the same. */
oq_status calib_entropy_choose(const calib_hview *v, bool folded, size_t nq, bool prune,
                               size_t *best);
/* The mass smoothing gives each empty bin in the entropy method
 * (MXNet's _smooth_distribution). */
#define CALIB_KL_EPS 1e-4
/* The divergence of one window h[0, len) of the entropy search with
 * outlier counts beside it, as TensorRT defines it (entropy.c); p and q
 * are scratch arrays of len doubles. INFINITY when smoothing fails. */
double calib_kl_window(const uint64_t *h, size_t len, uint64_t left_out, uint64_t right_out,
                       size_t nq, double *p, double *q);
/* For each window i in [imin, imax] of that search (entropy_bound.c):
 * est[i - imin] within err[i - imin] of calib_kl_window's result, INFINITY
 * when that is infinite, NaN when no estimate is made; cum[j] counts bins
 * [0, j). calib_kl_candidates marks keep[i - imin] for each window whose
 * divergence may be the first least. */
oq_status calib_kl_estimates(const calib_hview *v, const uint64_t *cum, bool folded, size_t nq,
                             size_t imin, size_t imax, double *est, double *err);
oq_status calib_kl_candidates(const calib_hview *v, const uint64_t *cum, bool folded, size_t nq,
                              size_t imin, size_t imax, bool *keep);

/* The mse method (mse.c). One bin's values: count c spread evenly over
 * [a, b] (a point mass when a == b). */
typedef struct calib_mse_bin {
    double a, b;
    double c;
} calib_mse_bin;
/* Bin i of the histogram, cut to the observed [min, max]. */
calib_mse_bin calib_mse_bin_of(const oq_calib_stats *s, size_t i);
/* The bin's count times its mean squared quantization error for the grid
 * of step d over [lo, hi] (clipping outside). */
double calib_mse_bin_error(const calib_mse_bin *q, double lo, double hi, double d);
/* The observed range the candidates scale ([lo0, hi0]) and their number:
 * candidate k (1..nc) is [k/nc lo0, k/nc hi0]. */
void calib_mse_span(const oq_calib_stats *s, const oq_calib_options *o, double *lo0,
                    double *hi0, int *nc);
/* The range of least error; with prune, only the candidates
 * calib_mse_candidates keeps are evaluated: the result is the same. */
oq_status calib_mse_choose(const oq_calib_stats *s, const oq_calib_options *o, bool prune,
                           double *lo, double *hi);
/* For each candidate k (mse_bound.c): est[k - 1] within err[k - 1] of the
 * error mse.c computes, by the O(1) estimate or (fine) the O(bins) one;
 * calib_mse_candidates marks keep[k - 1] for each candidate whose error may
 * be the first least. */
oq_status calib_mse_estimates(const oq_calib_stats *s, double lo0, double hi0, int nc,
                              int levels, bool fine, double *est, double *err);
oq_status calib_mse_candidates(const oq_calib_stats *s, double lo0, double hi0, int nc,
                               int levels, bool *keep);

/* The passes over a batch's values (stats_count.c). calib_scan_batch: the
 * batch's extremes (between +0 and -0 the data's first zero), an error
 * naming the first NaN or infinity. calib_hist_add: counts the batch, whose
 * extremes are bmin, bmax, into a histogram already wide enough for it.
 * calib_hist_add_in_range: both in one pass for a histogram that already
 * holds values, when every value of the batch falls in its bins (so that
 * neither its width nor its first bin changes); false, with nothing
 * changed, otherwise (and for NaN or infinities) or when the batch is too
 * small for it to pay. */
oq_status calib_scan_batch(const struct calib_kern *k, const float *data, size_t n, float *bmin,
                           float *bmax);
void calib_hist_add(oq_calib_stats *s, const float *data, size_t n, float bmin, float bmax);
bool calib_hist_add_in_range(oq_calib_stats *s, const float *data, size_t n, float *bmin,
                             float *bmax);

/* Checks the options (bins, levels, percentile, moving average). */
oq_status calib_options_check(const oq_calib_options *o);
/* A deep copy; without keep_hist, the copy has no histogram. */
oq_status calib_stats_clone(const oq_calib_stats *s, bool keep_hist, oq_calib_stats **out);
/* Frees the histogram: min/max statistics remain. */
void calib_stats_drop_histogram(oq_calib_stats *s);
/* True when the method needs a histogram. */
bool calib_method_needs_histogram(oq_calib_method m);

#endif
