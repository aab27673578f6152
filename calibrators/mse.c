/* mse: the range minimising the expected squared quantization error
 *   sum over bins of count * E[(x - Q(x))^2]
 * where Q is the uniform quantizer with `levels` levels lo + m D,
 * D = (hi - lo) / (levels - 1), m = 0 .. levels - 1: rounding to the
 * nearest level inside [lo, hi], saturation to lo or hi outside (so a value
 * beyond the range costs its squared distance to the range: clipping).
 *
 * Model: the values of a bin are spread evenly over the part of the bin
 * inside the observed [min, max] (the bins of min and max are cut there; a
 * bin cut down to a point is a point mass), and E[(x - Q(x))^2] is the exact
 * integral of the squared error over that interval divided by its length:
 *   clipped parts: integral of (x - hi)^2 or (lo - x)^2, closed form;
 *   inside: D^3 (G(u2) - G(u1)), u = (x - lo) / D, where
 *           G(u) = integral from 0 to u of (v - round(v))^2 dv = m/12 + s^3/3
 *           with m = round(u), s = u - m.
 * The zero point's rounding to an integer is not modelled.
 *
 * Candidates: the observed range ([-max|x|, max|x|] when symmetric, else
 * [min(min, 0), max(max, 0)]) scaled by k / C, k = 1 .. C, C = min(bins,
 * MSE_CANDIDATES). The first candidate with the least error wins.
 *
 * Evaluating every candidate costs C x (non-empty bins) error evaluations
 * (~20 ms a tensor at 2048 bins): mse_bound.c first bounds every
 * candidate's error in O(1) each, and only the candidates those bounds
 * cannot rule out are evaluated here. The candidate chosen is the one the
 * loop over all candidates chooses. */
#include <math.h>
#include <stdlib.h>

#include "calib_internal.h"

#define MSE_CANDIDATES 2048

static double grid_integral(double u)
{
    double m = nearbyint(u), s = u - m;
    return m / 12.0 + s * s * s / 3.0;
}

/* Squared error of one value at x (a point mass). */
static double point_error(double x, double lo, double hi, double d)
{
    if (x < lo)
        return (lo - x) * (lo - x);
    if (x > hi)
        return (x - hi) * (x - hi);
    double u = (x - lo) / d, r = u - nearbyint(u);
    return d * d * r * r;
}

/* Mean squared error over [a, b] (a < b), values spread evenly. */
static double interval_error(double a, double b, double lo, double hi, double d)
{
    double e = 0.0;
    if (a < lo) {
        double x2 = b < lo ? b : lo;
        e += ((lo - a) * (lo - a) * (lo - a) - (lo - x2) * (lo - x2) * (lo - x2)) / 3.0;
    }
    if (b > hi) {
        double x1 = a > hi ? a : hi;
        e += ((b - hi) * (b - hi) * (b - hi) - (x1 - hi) * (x1 - hi) * (x1 - hi)) / 3.0;
    }
    double i1 = a > lo ? a : lo, i2 = b < hi ? b : hi;
    if (i2 > i1)
        e += d * d * d * (grid_integral((i2 - lo) / d) - grid_integral((i1 - lo) / d));
    return e / (b - a);
}

double calib_mse_bin_error(const calib_mse_bin *q, double lo, double hi, double d)
{
    return q->c * (q->b > q->a ? interval_error(q->a, q->b, lo, hi, d)
                               : point_error(q->a, lo, hi, d));
}

static double total_error(const calib_mse_bin *bins, size_t n, double lo, double hi, int levels)
{
    double d = (hi - lo) / (double)(levels - 1), e = 0.0;
    for (size_t i = 0; i < n; i++)
        e += calib_mse_bin_error(&bins[i], lo, hi, d);
    return e;
}

calib_mse_bin calib_mse_bin_of(const oq_calib_stats *s, size_t i)
{
    double w = ldexp(1.0, s->exp2);
    double a = (double)(s->first + (int64_t)i) * w, b = a + w;
    calib_mse_bin q;
    q.a = a > (double)s->min ? a : (double)s->min;
    q.b = b < (double)s->max ? b : (double)s->max;
    q.c = (double)s->counts[i];
    return q;
}

/* The non-empty bins, cut to [min, max]. */
static calib_mse_bin *collect_bins(const oq_calib_stats *s, size_t *n)
{
    calib_mse_bin *out = malloc(s->nbins * sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->nbins; i++)
        if (s->counts[i] != 0)
            out[k++] = calib_mse_bin_of(s, i);
    *n = k;
    return out;
}

void calib_mse_span(const oq_calib_stats *s, const oq_calib_options *o, double *lo0,
                    double *hi0, int *nc)
{
    double l = s->min < 0.0f ? s->min : 0.0, h = s->max > 0.0f ? s->max : 0.0;
    if (o->symmetric) {
        h = -l > h ? -l : h;
        l = -h;
    }
    *lo0 = l;
    *hi0 = h;
    *nc = o->bins < MSE_CANDIDATES ? o->bins : MSE_CANDIDATES;
}

oq_status calib_mse_choose(const oq_calib_stats *s, const oq_calib_options *o, bool prune,
                           double *lo, double *hi)
{
    double lo0, hi0;
    int nc;
    calib_mse_span(s, o, &lo0, &hi0, &nc);
    *lo = lo0;
    *hi = hi0;
    if (hi0 - lo0 <= 0.0)
        return OQ_OK; /* all zero: calibrate.c gives the range */
    size_t n = 0;
    calib_mse_bin *bins = collect_bins(s, &n);
    bool *keep = malloc((size_t)nc * sizeof *keep);
    oq_status st = bins && keep ? OQ_OK : oq_error(OQ_E_NOMEM, "out of memory (%zu bins)", s->nbins);
    if (st == OQ_OK && prune)
        st = calib_mse_candidates(s, lo0, hi0, nc, o->levels, keep);
    double best = INFINITY;
    for (int k = 1; st == OQ_OK && k <= nc; k++) {
        if (prune && !keep[k - 1])
            continue;
        double f = (double)k / (double)nc, l = f * lo0, h = f * hi0;
        double e = total_error(bins, n, l, h, o->levels);
        if (e < best) {
            best = e;
            *lo = l;
            *hi = h;
        }
    }
    free(bins);
    free(keep);
    return st;
}

oq_status calib_range_mse(const oq_calib_stats *s, const oq_calib_options *o, double *lo,
                          double *hi)
{
    return calib_mse_choose(s, o, true, lo, hi);
}
