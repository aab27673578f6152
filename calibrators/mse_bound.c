/* Which candidates of the mse search can win (mse.c).
 *
 * mse.c evaluates each candidate range's error over every non-empty bin,
 * C x bins evaluations (~20 ms a tensor at 2048 bins). This file gives every
 * candidate, in O(1) each after O(bins) of prefix sums, an estimate of that
 * error and a bound on its distance to what mse.c computes; a candidate
 * whose estimate minus bound exceeds the least estimate plus bound cannot be
 * the first of least error, and mse.c skips it.
 *
 * The estimate, for a candidate [l, h] of step d. The histogram's bins 1 ..
 * last-1 (last: the maximum's bin) are whole, of width w; bins 0 and last
 * are cut to [min, max] and are evaluated directly (mse.c's per-bin error,
 * written with phi below), as are the bins that hold l and h. The other
 * whole bins are
 *   - below l: mean of (l - x)^2 over [a, a + w] = y^2 - y w + w^2/3 with
 *     y = l - a = delta + K w (K >= 1 whole bins from l's bin), so their sum
 *     comes from prefix sums of c, c i, c i^2 over the bin index i;
 *   - above h: the same with z = b - h;
 *   - inside [l, h]: the grid's rounding error. With u = (x - l)/d and
 *     s = u - round(u), the integral of the squared error is
 *     d^3 (u/12 + phi(s)), phi(s) = s^3/3 - s/12, |phi| <= 1/(36 sqrt 3),
 *     so a bin's mean is d^2/12 + d^3 (phi(s_b) - phi(s_a)) / w. The first
 *     term sums to d^2/12 times the count inside; the second, summed over
 *     the run of bins, is a sum over the bin edges of phi times the change
 *     of count across the edge, so its size is at most
 *     d^3/w |phi|max (c_first + c_last + sum |c_i - c_{i-1}|), and that
 *     total variation comes from one more prefix sum. This term is the
 *     estimate's real uncertainty: a few percent of the error on noisy
 *     histograms, much less on smooth ones.
 * The bound adds rounding, generously: every prefix difference, and every
 * per-bin term of mse.c (whose clipped terms are differences of cubes), is
 * charged a small multiple of (bins) u times its magnitude. Every 16th
 * candidate is estimated first, for an upper bound on the least error; the
 * others first get the estimate without the directly evaluated bins, a
 * lower bound (those bins only add), and the full one only if that does not
 * rule them out.
 *
 * The candidates that survive (50-200 of 2048 on mobilenet_v2) get, in order
 * of their lower bounds and until those exceed the least upper bound found,
 * a second, exact estimate: the same decomposition summed bin by bin, the
 * clipped bins' means in closed form and the inner bins' phi terms at every
 * edge (a kernel, stats_kern.h), in a few operations a bin without
 * divisions or library calls. Its bound is rounding alone, so one or two
 * candidates survive it for mse.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "calib_internal.h"
#include "stats_kern.h"

#define PHI_MAX 0.016038 /* > 1 / (36 sqrt 3) */
/* 1.5 2^52: (u + M) - M is u rounded to the nearest integer, ties to even,
 * for |u| < 2^51 (nearbyint without a library call). */
#define ROUND_MAGIC 6755399441055744.0

typedef struct mse_prefix {
    const oq_calib_stats *s;
    size_t last;          /* the maximum's bin */
    double w, first;      /* bin i starts at (first + i) w */
    double *p0, *p1, *p2; /* over bins [0, i): c, c i, c i^2 */
    double *tv;           /* tv[i] = sum over 1 <= j < i of |c_j - c_{j-1}| */
    double *edge, *dc;    /* edge[i] = (first + i) w; dc[i] = c_{i-1} - c_i (i >= 1) */
    double *cd;           /* the counts as doubles */
    double t0, t1, t2;    /* totals of p0, p1, p2 */
    double iw;            /* 1/w (exact) */
    calib_mse_bin q0, ql; /* bins 0 and last, cut to [min, max] */
    double iq0, iql;      /* 1 / their widths (0 for a point) */
} mse_prefix;

/* What an estimate's bound is made of: unc, a bound on a term left out;
 * sum, magnitudes behind long sums (prefix sums, sums over the bins), whose
 * rounding grows with the number of bins; term, magnitudes behind the
 * cancellation inside single terms (in this file's formulas and in mse.c's
 * per-bin ones), whose rounding does not. */
typedef struct mse_mag {
    double unc, sum, term;
} mse_mag;

static double bound_of(const mse_prefix *P, const mse_mag *m, double e)
{
    double u = DBL_EPSILON / 2.0, gamma = (double)(P->last + 64) * DBL_EPSILON;
    return m->unc + 16.0 * gamma * (m->sum + 2.0 * fabs(e)) + 64.0 * u * m->term;
}

static void prefix_build(mse_prefix *P)
{
    const uint64_t *c = P->s->counts;
    P->p0[0] = P->p1[0] = P->p2[0] = P->tv[0] = 0.0;
    for (size_t i = 0; i <= P->last; i++) {
        double ci = (double)c[i], x = (double)i;
        P->p0[i + 1] = P->p0[i] + ci;
        P->p1[i + 1] = P->p1[i] + ci * x;
        P->p2[i + 1] = P->p2[i] + ci * x * x;
        P->tv[i + 1] = P->tv[i] + (i >= 1 ? fabs(ci - (double)c[i - 1]) : 0.0);
        P->edge[i] = (P->first + x) * P->w;
        P->dc[i] = i >= 1 ? (double)c[i - 1] - ci : 0.0;
        P->cd[i] = ci;
    }
    P->edge[P->last + 1] = (P->first + (double)(P->last + 1)) * P->w;
    P->t0 = P->p0[P->last + 1];
    P->t1 = P->p1[P->last + 1];
    P->t2 = P->p2[P->last + 1];
}

/* The bin holding x, clamped to [0, last] (x / w is exact; its floor by
 * truncation and a correction, after clamping). */
static size_t bin_at(const mse_prefix *P, double x)
{
    double j = x * P->iw - P->first;
    if (!(j > 0.0))
        return 0;
    if (j >= (double)P->last)
        return P->last;
    size_t t = (size_t)j;
    return t - ((double)t > j);
}

/* A candidate [l, h] of step d (id = 1/d); jl, jh: the bins holding l and
 * h (clamped to [0, last]). Whole bins below jl are clipped to l, above jh
 * to h, between them inside. */
typedef struct mse_cand {
    double l, h, d, id;
    size_t jl, jh;
} mse_cand;

static mse_cand cand_of(const mse_prefix *P, double l, double h, int levels)
{
    double d = (h - l) / (double)(levels - 1);
    mse_cand c = {l, h, d, 1.0 / d, bin_at(P, l), bin_at(P, h)};
    return c;
}

/* mse.c's rounding in the clipped bins: each is a difference of cubes of
 * distances up to `far`, divided by the width, relative to the mean square:
 * at most 12 (far / w + 1) times the value v of the bins. */
static double cubes(double far, double w, double v) { return 12.0 * (far / w + 1.0) * fabs(v); }

static double phi(double s) { return s * (s * s * (1.0 / 3.0) - 1.0 / 12.0); }

/* x - round(x), ties to even (|x| < 2^51). */
static double frac_near(double x) { return x - ((x + ROUND_MAGIC) - ROUND_MAGIC); }

/* What mse.c's per-bin function computes (count times the mean squared
 * error over [a, b], or at a point), written with phi: the inner part's
 * integral is d^2 (x2 - x1)/12 + d^3 (phi(s2) - phi(s1)). iwidth is
 * 1/(b - a). No divisions, no library calls; rounding aside, the same
 * value. */
static double bin_error(const calib_mse_bin *q, double iwidth, const mse_cand *c)
{
    const double third = 1.0 / 3.0;
    double l = c->l, h = c->h, d = c->d, a = q->a, b = q->b, id = c->id;
    if (!(b > a)) {
        double r = a < l ? l - a : a > h ? a - h : d * frac_near((a - l) * id);
        return q->c * r * r;
    }
    double e = 0.0;
    if (a < l) {
        double x2 = b < l ? b : l;
        e += ((l - a) * (l - a) * (l - a) - (l - x2) * (l - x2) * (l - x2)) * third;
    }
    if (b > h) {
        double x1 = a > h ? a : h;
        e += ((b - h) * (b - h) * (b - h) - (x1 - h) * (x1 - h) * (x1 - h)) * third;
    }
    double i1 = a > l ? a : l, i2 = b < h ? b : h;
    if (i2 > i1)
        e += d * d * (i2 - i1) * (1.0 / 12.0) +
             d * d * d * (phi(frac_near((i2 - l) * id)) - phi(frac_near((i1 - l) * id)));
    return q->c * e * iwidth;
}

/* One bin computed directly (empty bins add nothing). */
static double direct(const mse_prefix *P, const mse_cand *c, size_t i, int levels, mse_mag *m)
{
    if (P->s->counts[i] == 0)
        return 0.0;
    calib_mse_bin q = {P->edge[i], P->edge[i + 1], P->cd[i]};
    double iwidth = P->iw;
    if (i == 0 || i == P->last) {
        q = i == 0 ? P->q0 : P->ql;
        iwidth = i == 0 ? P->iq0 : P->iql;
    }
    double e = bin_error(&q, iwidth, c), width = q.b - q.a;
    double far = fmax(fabs(q.a - c->l), fabs(q.b - c->h)) + width + c->d;
    double grid = q.c * c->d * c->d * ((double)levels / 6.0 + 2.0);
    m->term += fabs(e) + (width > 0.0 ? (q.c * far * far * far + grid * c->d) * iwidth : grid);
    return e;
}

/* The bins mse.c's function evaluates here: the cut bins 0 and last, and
 * the whole bins holding l and h. */
static double direct_bins(const mse_prefix *P, const mse_cand *c, int levels, mse_mag *m)
{
    size_t last = P->last;
    double e = direct(P, c, 0, levels, m);
    if (last > 0)
        e += direct(P, c, last, levels, m);
    if (last >= 2 && c->jl >= 1 && c->jl <= last - 1)
        e += direct(P, c, c->jl, levels, m);
    if (last >= 2 && c->jh != c->jl && c->jh >= 1 && c->jh <= last - 1)
        e += direct(P, c, c->jh, levels, m);
    return e;
}

/* The inner whole bins [*i0, *i1] (empty when *i0 > *i1). */
static void inner_run(const mse_prefix *P, const mse_cand *c, size_t *i0, size_t *i1)
{
    *i0 = c->jl + 1 > 1 ? c->jl + 1 : 1;
    *i1 = c->jh >= 1 ? (c->jh - 1 < P->last - 1 ? c->jh - 1 : P->last - 1) : 0;
}

/* Sum over whole bins i in [i0, i1] of c (y^2 - y w + w^2/3), y = delta + K w,
 * K = |i - anchor|, from the prefix sums. */
static double clip_sum(const mse_prefix *P, size_t i0, size_t i1, size_t anchor, bool below,
                       double delta, mse_mag *m)
{
    if (i0 > i1)
        return 0.0;
    double s0 = P->p0[i1 + 1] - P->p0[i0], s1 = P->p1[i1 + 1] - P->p1[i0];
    double s2 = P->p2[i1 + 1] - P->p2[i0], a = (double)anchor, w = P->w;
    double sk = below ? a * s0 - s1 : s1 - a * s0;
    double sk2 = s2 - 2.0 * a * s1 + a * a * s0;
    double c0 = delta * delta - delta * w + w * w / 3.0, c1 = 2.0 * delta * w - w * w;
    double v = s0 * c0 + sk * c1 + sk2 * w * w;
    double far = fabs(delta) + w * ((double)(below ? anchor - i0 : i1 - anchor) + 1.0);
    m->sum += fabs(c1) * (a * P->t0 + P->t1) + w * w * (P->t2 + 2.0 * a * P->t1 + a * a * P->t0) +
              P->t0 * (delta * delta + fabs(delta) * w + w * w);
    m->term += cubes(far, w, v);
    return v;
}

/* mse.c's rounding in the inner bins: differences of its G, which reaches
 * levels/12, over a bin's share of a step. */
static double grid_terms(double n, double d, double w, int levels)
{
    return 4.0 * n * ((double)levels / 6.0 + 2.0) * d * d * d / w;
}

/* The whole bins inside [l, h], [i0, i1]: d^2/12 per value; the phi terms
 * left out are bounded by their total variation. */
static double inside(const mse_prefix *P, const mse_cand *c, size_t i0, size_t i1, int levels,
                     mse_mag *m)
{
    if (i0 > i1)
        return 0.0;
    const uint64_t *cnt = P->s->counts;
    double n = P->p0[i1 + 1] - P->p0[i0], d = c->d, d3w = d * d * d / P->w;
    double tv = (double)cnt[i0] + (double)cnt[i1] + (P->tv[i1 + 1] - P->tv[i0 + 1]);
    m->unc += d3w * PHI_MAX * tv;
    m->sum += P->t0 * d * d + d3w * tv;
    m->term += grid_terms(n, d, P->w, levels);
    return n * d * d / 12.0;
}

/* First estimate: O(1) from the prefix sums. Without the directly evaluated
 * bins (direct false) the rest is a sum of non-negative terms without them,
 * so est - err is still a lower bound, at a fraction of the cost. */
static void estimate_coarse(const mse_prefix *P, const mse_cand *c, int levels, bool direct,
                            double *est, double *err)
{
    mse_mag m = {0.0, 0.0, 0.0};
    double e = direct ? direct_bins(P, c, levels, &m) : 0.0;
    size_t last = P->last, i0, i1;
    if (last >= 2) {
        double dl = c->l - (P->first + (double)c->jl) * P->w;
        double dh = (P->first + (double)c->jh + 1.0) * P->w - c->h;
        if (c->jl >= 2)
            e += clip_sum(P, 1, (c->jl < last ? c->jl : last) - 1, c->jl, true, dl, &m);
        if (c->jh + 1 <= last - 1)
            e += clip_sum(P, c->jh + 1, last - 1, c->jh, false, dh, &m);
        inner_run(P, c, &i0, &i1);
        e += inside(P, c, i0, i1, levels, &m);
    }
    *est = e;
    *err = bound_of(P, &m, e);
}

/* Whole bins [i0, i1] clipped to the point g (below: bins under l, else
 * above h), one by one: c (y^2 - y w + w^2/3), y the distance of the bin's
 * far edge to g, y = sign (edge - g) + (below ? 0 : w); four partial sums,
 * which the compiler can keep in vectors. */
static double clip_exact(const mse_prefix *P, size_t i0, size_t i1, double g, bool below,
                         mse_mag *m)
{
    if (i0 > i1)
        return 0.0;
    double w = P->w, w3 = w * w * (1.0 / 3.0), sg = below ? -1.0 : 1.0, o = below ? 0.0 : w;
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = i0;
    for (; i + 4 <= i1 + 1; i += 4)
        for (size_t j = 0; j < 4; j++) {
            double y = sg * (P->edge[i + j] - g) + o;
            acc[j] += P->cd[i + j] * (y * y - y * w + w3);
        }
    for (; i <= i1; i++) {
        double y = sg * (P->edge[i] - g) + o;
        acc[0] += P->cd[i] * (y * y - y * w + w3);
    }
    double v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    double far = below ? g - P->edge[i0] : P->edge[i1 + 1] - g;
    m->term += cubes(far, w, v);
    return v;
}

/* phi(s) times dc, s = u - round(u), for the edge at x. */
static double phi_term(double x, double l, double id, double dc)
{
    double u = (x - l) * id, s = u - ((u + ROUND_MAGIC) - ROUND_MAGIC);
    return s * (s * s * (1.0 / 3.0) - 1.0 / 12.0) * dc;
}

/* Whole bins [i0, i1] inside: d^2/12 per value plus d^3/w times the sum
 * over the run's edges of phi(s) times the change of count across the edge
 * (the counts beyond the run taken as 0; the inner edges by the kernel's
 * phi_sum); s carries an error up to levels u, phi' is at most 1/6. */
static double inside_exact(const mse_prefix *P, const mse_cand *c, size_t i0, size_t i1,
                           int levels, mse_mag *m)
{
    if (i0 > i1)
        return 0.0;
    const uint64_t *cnt = P->s->counts;
    double id = 1.0 / c->d, l = c->l;
    double acc = P->s->kern->phi_sum(P->edge + i0 + 1, P->dc + i0 + 1, i1 - i0, l, id);
    acc += phi_term(P->edge[i0], l, id, -(double)cnt[i0]);
    acc += phi_term(P->edge[i1 + 1], l, id, (double)cnt[i1]);
    double n = P->p0[i1 + 1] - P->p0[i0], d = c->d, d3w = d * d * d / P->w;
    double tv = (double)cnt[i0] + (double)cnt[i1] + (P->tv[i1 + 1] - P->tv[i0 + 1]);
    m->sum += P->t0 * d * d + d3w * tv;
    m->term += d3w * tv * ((double)levels + 1.0) + grid_terms(n, d, P->w, levels);
    return n * d * d / 12.0 + d3w * acc;
}

/* Second estimate: the whole bins one by one; its bound is rounding. */
static void estimate_fine(const mse_prefix *P, const mse_cand *c, int levels, double *est,
                          double *err)
{
    mse_mag m = {0.0, 0.0, 0.0};
    double e = direct_bins(P, c, levels, &m);
    size_t last = P->last, i0, i1;
    if (last >= 2) {
        if (c->jl >= 2)
            e += clip_exact(P, 1, (c->jl < last ? c->jl : last) - 1, c->l, true, &m);
        if (c->jh + 1 <= last - 1)
            e += clip_exact(P, c->jh + 1, last - 1, c->h, false, &m);
        inner_run(P, c, &i0, &i1);
        e += inside_exact(P, c, i0, i1, levels, &m);
    }
    *est = e;
    *err = bound_of(P, &m, e);
}

/* The prefix sums of s's histogram (mem: 7 (last + 2) doubles). */
static mse_prefix prefix_of(const oq_calib_stats *s, double *mem)
{
    mse_prefix P;
    P.s = s;
    P.w = ldexp(1.0, s->exp2);
    P.first = (double)s->first;
    double lastd = floor((double)s->max / P.w) - P.first;
    P.last = lastd < (double)s->nbins ? (size_t)lastd : s->nbins - 1;
    size_t m = P.last + 2;
    P.p0 = mem;
    P.p1 = mem + m;
    P.p2 = mem + 2 * m;
    P.tv = mem + 3 * m;
    P.edge = mem + 4 * m;
    P.dc = mem + 5 * m;
    P.cd = mem + 6 * m;
    P.iw = ldexp(1.0, -s->exp2);
    prefix_build(&P);
    P.q0 = calib_mse_bin_of(s, 0);
    P.ql = calib_mse_bin_of(s, P.last);
    P.iq0 = P.q0.b > P.q0.a ? 1.0 / (P.q0.b - P.q0.a) : 0.0;
    P.iql = P.ql.b > P.ql.a ? 1.0 / (P.ql.b - P.ql.a) : 0.0;
    return P;
}

static size_t prefix_size(const oq_calib_stats *s) { return 7 * (s->nbins + 2); }

oq_status calib_mse_estimates(const oq_calib_stats *s, double lo0, double hi0, int nc,
                              int levels, bool fine, double *est, double *err)
{
    double *mem = malloc(prefix_size(s) * sizeof *mem);
    if (!mem)
        return oq_error(OQ_E_NOMEM, "out of memory (%zu bins)", s->nbins);
    mse_prefix P = prefix_of(s, mem);
    for (int k = 1; k <= nc; k++) {
        double f = (double)k / (double)nc;
        mse_cand c = cand_of(&P, f * lo0, f * hi0, levels);
        if (fine)
            estimate_fine(&P, &c, levels, &est[k - 1], &err[k - 1]);
        else
            estimate_coarse(&P, &c, levels, true, &est[k - 1], &err[k - 1]);
    }
    free(mem);
    return OQ_OK;
}

/* keep[k] when it is set and est[k] - err[k] is at most the least
 * est + err among the kept (NaN estimates keep). */
static void prune(const double *est, const double *err, int nc, bool *keep)
{
    double least = INFINITY;
    for (int k = 0; k < nc; k++)
        if (keep[k] && est[k] + err[k] < least)
            least = est[k] + err[k];
    for (int k = 0; k < nc; k++)
        keep[k] = keep[k] && !(est[k] - err[k] > least);
}

/* A candidate's lower bound from the first estimate. */
typedef struct mse_lower {
    double lb;
    int k;
} mse_lower;

static int lower_cmp(const void *a, const void *b)
{
    double x = ((const mse_lower *)a)->lb, y = ((const mse_lower *)b)->lb;
    return x < y ? -1 : x > y;
}

/* The second estimate for the kept candidates, in order of their first
 * lower bound, until that bound exceeds the least second upper bound found
 * (the rest cannot win: they are dropped); then the second pruning. */
static oq_status refine(const mse_prefix *P, double lo0, double hi0, int nc, int levels,
                        double *est, double *err, bool *keep)
{
    int n = 0;
    for (int k = 0; k < nc; k++)
        n += keep[k];
    mse_lower *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order)
        return oq_error(OQ_E_NOMEM, "out of memory (%d candidates)", nc);
    for (int k = 0, j = 0; k < nc; k++)
        if (keep[k])
            order[j++] = (mse_lower){est[k] - err[k], k};
    qsort(order, (size_t)n, sizeof *order, lower_cmp);
    double least = INFINITY;
    for (int j = 0; j < n; j++) {
        int k = order[j].k;
        if (order[j].lb > least) {
            keep[k] = false;
            continue;
        }
        double f = (double)(k + 1) / (double)nc;
        mse_cand c = cand_of(P, f * lo0, f * hi0, levels);
        estimate_fine(P, &c, levels, &est[k], &err[k]);
        least = est[k] + err[k] < least ? est[k] + err[k] : least;
    }
    free(order);
    prune(est, err, nc, keep);
    return OQ_OK;
}

/* The first estimates: every SAMPLE-th candidate in full, which gives an
 * upper bound on the least error; then, for every candidate, the lower
 * bound without the direct bins, and the full estimate only where that
 * bound does not exceed the upper bound (elsewhere keep is false). */
#define SAMPLE 16

static void estimate_first(const mse_prefix *P, double lo0, double hi0, int nc, int levels,
                           double *est, double *err, bool *keep)
{
    double upper = INFINITY;
    for (int k = 1; k <= nc; k++) {
        keep[k - 1] = k % SAMPLE == 0 || k == nc;
        if (!keep[k - 1])
            continue;
        double f = (double)k / (double)nc;
        mse_cand c = cand_of(P, f * lo0, f * hi0, levels);
        estimate_coarse(P, &c, levels, true, &est[k - 1], &err[k - 1]);
        upper = est[k - 1] + err[k - 1] < upper ? est[k - 1] + err[k - 1] : upper;
    }
    for (int k = 1; k <= nc; k++) {
        if (keep[k - 1])
            continue;
        double f = (double)k / (double)nc, e, d;
        mse_cand c = cand_of(P, f * lo0, f * hi0, levels);
        estimate_coarse(P, &c, levels, false, &e, &d);
        if (e - d > upper)
            continue;
        estimate_coarse(P, &c, levels, true, &est[k - 1], &err[k - 1]);
        keep[k - 1] = true;
    }
}

oq_status calib_mse_candidates(const oq_calib_stats *s, double lo0, double hi0, int nc,
                               int levels, bool *keep)
{
    double *mem = malloc((prefix_size(s) + 2 * (size_t)nc) * sizeof *mem);
    if (!mem)
        return oq_error(OQ_E_NOMEM, "out of memory (%zu bins)", s->nbins);
    double *est = mem + prefix_size(s), *err = est + nc;
    mse_prefix P = prefix_of(s, mem);
    estimate_first(&P, lo0, hi0, nc, levels, est, err, keep);
    prune(est, err, nc, keep);
    oq_status st = refine(&P, lo0, hi0, nc, levels, est, err, keep);
    free(mem);
    return st;
}
