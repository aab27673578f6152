/* entropy: the clipping threshold that minimises the KL divergence between
 * the histogram and its quantized version, as TensorRT's entropy calibrator
 * chooses it (Migacz, "8-bit Inference with TensorRT", GTC 2017; the same
 * loop as MXNet's and onnxruntime's _get_optimal_threshold, in double):
 *
 *   for each candidate window of i bins (i from nq up to the whole view):
 *     P = the window's counts, the outliers beyond it added to its edge
 *         bin(s);
 *     Q = the window's counts without outliers, merged into nq groups of
 *         i / nq bins (the last group takes the remainder), each group's
 *         total spread evenly over the bins where P is non-zero;
 *     P and Q are smoothed (zeros get 1e-4, the non-zeros give that mass
 *         back evenly) and normalised; KL(P || Q) = sum p log(p / q);
 *   the first window with the least divergence wins; its threshold is its
 *   outer edge i * w (the right edge of its last bin, as MXNet and
 *   onnxruntime take it).
 *
 * Symmetric: the histogram of |x| (calib_view_zero, folded, at most `bins`
 * bins from zero), windows [0, i w), nq = levels / 2 (128 for 8 bits, as
 * TensorRT uses); the range is [-T, T] with T = min(i w, max |x|).
 * Asymmetric: as onnxruntime's HistogramCalibrater does it for entropy, a
 * histogram symmetric around zero (at most `bins` bins over [-H w, H w)),
 * windows [-i w, i w) with outliers on both sides, nq = levels (the window
 * spans the full signed range); the range is the window clamped to the
 * observed [min, max]. When the view has fewer bins than nq, no window is
 * tried and the whole view is the range.
 *
 * Evaluating every window costs O(bins^2) (~20 ms a tensor at 2048 bins):
 * entropy_bound.c first bounds every window's divergence in O(1) each, and
 * only the windows those bounds cannot rule out (one or two of ~1000 on
 * mobilenet_v2's activations) are evaluated here. The window chosen is the
 * one the loop over all windows chooses. */
#include <math.h>
#include <stdlib.h>

#include "calib_internal.h"

/* MXNet's _smooth_distribution: false when every entry is zero or the
 * smoothing would make one non-positive (the divergence is then infinite). */
static bool smooth(double *x, size_t n)
{
    size_t nz = 0;
    for (size_t j = 0; j < n; j++)
        nz += x[j] != 0.0;
    if (nz == 0)
        return false;
    double eps1 = CALIB_KL_EPS * (double)(n - nz) / (double)nz;
    for (size_t j = 0; j < n; j++) {
        x[j] += x[j] == 0.0 ? CALIB_KL_EPS : -eps1;
        if (!(x[j] > 0.0))
            return false;
    }
    return true;
}

/* KL divergence of one window h[0, len) (outlier counts beside it) against
 * its nq-level quantization. p and q are scratch arrays of len doubles. */
double calib_kl_window(const uint64_t *h, size_t len, uint64_t left_out, uint64_t right_out,
                       size_t nq, double *p, double *q)
{
    for (size_t j = 0; j < len; j++)
        p[j] = (double)h[j];
    p[0] += (double)left_out;
    p[len - 1] += (double)right_out;
    size_t merged = len / nq;
    for (size_t k = 0; k < nq; k++) {
        size_t start = k * merged, stop = k == nq - 1 ? len : start + merged;
        double total = 0.0;
        size_t nz = 0;
        for (size_t j = start; j < stop; j++) {
            total += (double)h[j];
            nz += p[j] != 0.0;
        }
        for (size_t j = start; j < stop; j++)
            q[j] = p[j] != 0.0 ? total / (double)nz : 0.0;
    }
    if (!smooth(p, len) || !smooth(q, len))
        return INFINITY;
    double sp = 0.0, sq = 0.0, kl = 0.0;
    for (size_t j = 0; j < len; j++) {
        sp += p[j];
        sq += q[j];
    }
    for (size_t j = 0; j < len; j++) {
        double pn = p[j] / sp, qn = q[j] / sq;
        kl += pn * log(pn / qn);
    }
    return kl;
}

/* The half-widths of the candidate windows: [imin, imax] (empty when the
 * view has fewer bins than nq). */
static void window_range(const calib_hview *v, bool folded, size_t nq, size_t *imin,
                         size_t *imax)
{
    *imax = folded ? v->n : v->n / 2;
    *imin = folded ? nq : (nq + 1) / 2;
}

/* The best half-width i (in bins) of windows centred in the view: for the
 * |x| view (centre 0) windows [0, i), else [centre - i, centre + i).
 * cum[j] is the count of bins [0, j). With keep, only the windows it marks
 * are evaluated (keep[i - imin]). */
static size_t best_window(const calib_hview *v, const uint64_t *cum, bool folded, size_t nq,
                          const bool *keep, double *p, double *q)
{
    size_t centre = folded ? 0 : v->n / 2, imin, imax;
    window_range(v, folded, nq, &imin, &imax);
    size_t best = imax;
    double best_kl = INFINITY;
    for (size_t i = imin; i <= imax; i++) {
        if (keep && !keep[i - imin])
            continue;
        size_t start = folded ? 0 : centre - i, stop = centre + i;
        uint64_t left = cum[start], right = cum[v->n] - cum[stop];
        double kl = calib_kl_window(v->counts + start, stop - start, left, right, nq, p, q);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    return best;
}

oq_status calib_entropy_choose(const calib_hview *v, bool folded, size_t nq, bool prune,
                               size_t *best)
{
    double *p = malloc(2 * v->n * sizeof *p + 1);
    uint64_t *cum = malloc((v->n + 1) * sizeof *cum);
    bool *keep = malloc((v->n + 1) * sizeof *keep);
    oq_status st = p && cum && keep ? OQ_OK : oq_error(OQ_E_NOMEM, "out of memory (%zu bins)", v->n);
    if (st == OQ_OK) {
        cum[0] = 0;
        for (size_t j = 0; j < v->n; j++)
            cum[j + 1] = cum[j] + v->counts[j];
        size_t imin, imax;
        window_range(v, folded, nq, &imin, &imax);
        if (prune)
            st = calib_kl_candidates(v, cum, folded, nq, imin, imax, keep);
        if (st == OQ_OK)
            *best = best_window(v, cum, folded, nq, prune ? keep : NULL, p, p + v->n);
    }
    free(p);
    free(cum);
    free(keep);
    return st;
}

oq_status calib_range_entropy(const oq_calib_stats *s, const oq_calib_options *o, double *lo,
                              double *hi)
{
    calib_hview v;
    oq_status st = calib_view_zero(s, o->symmetric, (size_t)o->bins, &v);
    if (st != OQ_OK)
        return st;
    size_t nq = o->symmetric ? (size_t)o->levels / 2 : (size_t)o->levels, i = 0;
    st = calib_entropy_choose(&v, o->symmetric, nq, true, &i);
    double t = (double)i * v.w;
    calib_view_free(&v);
    if (st != OQ_OK)
        return st;
    if (o->symmetric) {
        double maxabs = -(double)s->min > (double)s->max ? -(double)s->min : (double)s->max;
        t = t < maxabs ? t : maxabs;
        *lo = -t;
        *hi = t;
    } else {
        *lo = -t > (double)s->min ? -t : (double)s->min;
        *hi = t < (double)s->max ? t : (double)s->max;
    }
    return OQ_OK;
}
