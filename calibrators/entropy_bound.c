/* Which windows of the entropy search can win (entropy.c).
 *
 * entropy.c evaluates each candidate window's divergence by TensorRT's
 * recipe, O(window) per window and so O(bins^2) in all (~20 ms per tensor
 * at 2048 bins). This file gives every window at once, in O(1) per window
 * after O(bins) of prefix sums per group width, an estimate of that
 * divergence and a bound on its distance to what window_kl computes. A
 * window whose estimate minus its bound exceeds the least estimate plus
 * bound cannot be the first window of least divergence; entropy.c skips it
 * and evaluates the rest exactly as before, so it chooses the same window.
 *
 * The estimate. In a window of len bins with outliers L, R added to its
 * edge bins, p_j the counts, nq groups of m = len / nq bins (the last takes
 * the rest) with totals T_k (no outliers) and Z_k non-zero p's, smoothing
 * gives p'_j = p_j - ep (p_j != 0) or 1e-4, q'_j = T_k / Z_k - eq (T_k > 0
 * and p_j != 0) or 1e-4, with ep, eq the smoothing constants. The sums of
 * p' and q' are exactly W (the window's count with outliers) and W0 (without)
 * in exact arithmetic, and the zero bins' terms vanish, so
 *   KL = X / W + log(W0 / W),  X = sum p'_j log p'_j - sum_k log q'_k P'_k
 * over the non-zero p_j, P'_k = P_k - Z_k ep (P_k: the group's p total).
 * With ep, eq < 1/2 and counts >= 1 both logs expand in series:
 *   (h - e) log(h - e) = h log h - e (log h + 1) + e^2/2h + e^3/6h^2
 *                        + e^4/12h^3 + R,   |R| <= e^5 / (20 (1 - e)),
 *   log(T/Z - e) = log(T/Z) - t - t^2/2 - t^3/3 + R',  t = e Z/T <= e,
 *                  |R'| <= t^4 / (4 (1 - t)),
 * so the inner bins of a window take prefix sums of h log h, log h, 1/h,
 * 1/h^2, 1/h^3 over the bins, and its inner groups (whole groups of m bins
 * that start at s = start + k m) take prefix sums with stride m over s of
 * T log(T/Z), Z log(T/Z), Z, Z^2/T, Z^3/T^2, Z^4/T^3 (for the starts
 * that windows of that width use). The edge bins and edge groups are
 * computed directly.
 *
 * The bound: the series remainders, plus rounding: every prefix sum and
 * every term is a sum of non-negative magnitudes whose totals are kept, and
 * both this computation and window_kl's round within a small multiple of
 * (bins + window) u times those magnitudes (and times the largest log
 * window_kl can take, for its own sums). The factor kept is generous; it
 * only decides how many windows are evaluated exactly. Windows whose
 * smoothing constants reach 1/2 (nearly empty windows) get no estimate and
 * are always evaluated. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "calib_internal.h"

/* Prefix sums over the view's bins: entry j covers bins [0, j). */
typedef struct kl_bins {
    const uint64_t *h, *cum;
    size_t n;
    uint32_t *nz;                 /* non-zero bins */
    double *a, *b, *r1, *r2, *r3; /* over non-zero bins: h log h, log h, 1/h, 1/h^2, 1/h^3 */
    double mag;                   /* the sum of their totals (all terms are >= 0) */
} kl_bins;

/* Whole groups of m bins starting at s, for s in [0, n - m]: chains with
 * stride m, f[i][s] = F_i(s) + f[i][s - m]. */
typedef struct kl_groups {
    size_t m; /* 0 until built */
    double *f[6];
    double mag; /* the sum of every F_i(s) (all >= 0): bounds every chain */
} kl_groups;

enum { KL_NONE, KL_ESTIMATE, KL_INFINITE };

static void bins_build(kl_bins *B)
{
    double mag = 0.0;
    B->nz[0] = 0;
    B->a[0] = B->b[0] = B->r1[0] = B->r2[0] = B->r3[0] = 0.0;
    for (size_t j = 0; j < B->n; j++) {
        double h = (double)B->h[j], lh = h > 0.0 ? log(h) : 0.0, ih = h > 0.0 ? 1.0 / h : 0.0;
        B->nz[j + 1] = B->nz[j] + (B->h[j] != 0);
        B->a[j + 1] = B->a[j] + h * lh;
        B->b[j + 1] = B->b[j] + lh;
        B->r1[j + 1] = B->r1[j] + ih;
        B->r2[j + 1] = B->r2[j] + ih * ih;
        B->r3[j + 1] = B->r3[j] + ih * ih * ih;
    }
    size_t n = B->n;
    mag = B->a[n] + B->b[n] + (double)B->nz[n] + B->r1[n] + B->r2[n] + B->r3[n];
    B->mag = mag;
}

/* The chains of groups of m bins starting at s in [s0, s1], every step-th
 * (the windows' inner groups start there; see span_of). */
static void groups_build(kl_groups *G, const kl_bins *B, size_t m, size_t s0, size_t s1,
                         size_t step)
{
    double mag = 0.0;
    for (size_t s = s0; s <= s1; s += step) {
        uint64_t t = B->cum[s + m] - B->cum[s];
        double T = (double)t, Z = (double)(B->nz[s + m] - B->nz[s]);
        double F[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        if (t > 0) {
            double l = log(T / Z), r = Z / T;
            F[0] = T * l;
            F[1] = Z * l;
            F[2] = Z;
            F[3] = Z * r;
            F[4] = Z * r * r;
            F[5] = Z * r * r * r;
        }
        for (int i = 0; i < 6; i++) {
            G->f[i][s] = F[i] + (s >= s0 + m ? G->f[i][s - m] : 0.0);
            mag += F[i];
        }
    }
    G->m = m;
    G->mag = mag;
}

/* One window: [start, stop), outliers L (left), R (right). */
typedef struct kl_window {
    size_t start, stop, len, nq, m;
    uint64_t L, R;
    double p_first, p_last; /* the edge bins' p (the same bin when len == 1) */
} kl_window;

/* Z and (if P is set) P of the group [a, b) of window w (T is its count):
 * the edge bins count with their outliers. */
static void group_zp(const kl_bins *B, const kl_window *w, size_t a, size_t b, double *Z,
                     double *P)
{
    double z = (double)(B->nz[b] - B->nz[a]), p = (double)(B->cum[b] - B->cum[a]);
    if (a == w->start) {
        z += (double)(w->p_first != 0.0) - (double)(B->h[a] != 0);
        p += (double)w->L;
    }
    if (b == w->stop && w->len > 1) {
        z += (double)(w->p_last != 0.0) - (double)(B->h[b - 1] != 0);
        p += (double)w->R;
    } else if (b == w->stop) {
        p += (double)w->R;
    }
    *Z = z;
    if (P)
        *P = p;
}

/* An edge group's term log q' P' of X (adding its magnitude to *mag). */
static double edge_group(const kl_bins *B, const kl_window *w, size_t a, size_t b, double ep,
                         double eq, double *mag)
{
    double Z, P, T = (double)(B->cum[b] - B->cum[a]);
    group_zp(B, w, a, b, &Z, &P);
    if (Z == 0.0)
        return 0.0;
    double lq = T > 0.0 ? log(T / Z - eq) : log(CALIB_KL_EPS), wp = P - Z * ep;
    *mag += fabs(lq) * (P + Z * ep);
    return lq * wp;
}

/* sum of p' log p' over the window's non-zero bins (remainder bound added
 * to *trunc, magnitudes to *mag). */
static double window_plogp(const kl_bins *B, const kl_window *w, double ep, double *trunc,
                           double *mag)
{
    double x = 0.0;
    if (w->p_first != 0.0) {
        double v = w->p_first - ep;
        x += v * log(v);
        *mag += fabs(v * log(v));
    }
    if (w->len > 1 && w->p_last != 0.0) {
        double v = w->p_last - ep;
        x += v * log(v);
        *mag += fabs(v * log(v));
    }
    if (w->len >= 3) {
        size_t a = w->start + 1, b = w->stop - 1;
        double nz = (double)(B->nz[b] - B->nz[a]), e2 = ep * ep;
        x += (B->a[b] - B->a[a]) - ep * ((B->b[b] - B->b[a]) + nz) +
             e2 / 2.0 * (B->r1[b] - B->r1[a]) + e2 * ep / 6.0 * (B->r2[b] - B->r2[a]) +
             e2 * e2 / 12.0 * (B->r3[b] - B->r3[a]);
        *trunc += nz * e2 * e2 * ep / (20.0 * (1.0 - ep));
    }
    return x;
}

/* The inner groups (k = 1 .. nq - 2) start at s = start + k m: their sum
 * of F_i is a difference of two entries of a chain. */
static double inner_sum(const kl_groups *G, const kl_window *w, int i)
{
    if (w->nq < 3)
        return 0.0;
    return G->f[i][w->start + (w->nq - 2) * w->m] - G->f[i][w->start];
}

/* sum over the inner groups of log q'_k P'_k. */
static double inner_groups(const kl_groups *G, const kl_window *w, double ep, double eq)
{
    double F[6];
    for (int i = 0; i < 6; i++)
        F[i] = inner_sum(G, w, i);
    double e2 = eq * eq, e3 = e2 * eq;
    double tlq = F[0] - eq * F[2] - e2 / 2.0 * F[3] - e3 / 3.0 * F[4];
    double zlq = F[1] - eq * F[3] - e2 / 2.0 * F[4] - e3 / 3.0 * F[5];
    return tlq - ep * zlq;
}

static double smooth_eps(size_t len, double nz) { return CALIB_KL_EPS * ((double)len - nz) / nz; }

/* The estimate and bound of one window's divergence (KL_ESTIMATE), or
 * KL_INFINITE when window_kl gives infinity, or KL_NONE. */
static int window_estimate(const kl_bins *B, const kl_groups *G, const kl_window *w,
                           double *kl, double *err)
{
    double W0 = (double)(B->cum[w->stop] - B->cum[w->start]);
    double W = W0 + (double)w->L + (double)w->R, nzp;
    group_zp(B, w, w->start, w->stop, &nzp, NULL);
    if (nzp == 0.0)
        return KL_INFINITE;
    size_t g0 = w->start + (w->nq == 1 ? w->len : w->m), gl = w->start + (w->nq - 1) * w->m;
    double Z0, Zl = 0.0, T0 = (double)(B->cum[g0] - B->cum[w->start]), Tl = 0.0;
    group_zp(B, w, w->start, g0, &Z0, NULL);
    if (w->nq > 1) {
        Tl = (double)(B->cum[w->stop] - B->cum[gl]);
        group_zp(B, w, gl, w->stop, &Zl, NULL);
    }
    double ep = smooth_eps(w->len, nzp);
    double nzq = inner_sum(G, w, 2) + (T0 > 0.0 ? Z0 : 0.0) + (Tl > 0.0 ? Zl : 0.0);
    if (nzq == 0.0)
        return KL_INFINITE;
    double eq = smooth_eps(w->len, nzq);
    if (ep >= 0.5 || eq >= 0.5)
        return KL_NONE;
    double trunc = 0.0, mag = 0.0;
    double xp = window_plogp(B, w, ep, &trunc, &mag);
    double xq = inner_groups(G, w, ep, eq) + edge_group(B, w, w->start, g0, ep, eq, &mag);
    if (w->nq > 1)
        xq += edge_group(B, w, gl, w->stop, ep, eq, &mag);
    trunc += W0 * eq * eq * eq * eq / (4.0 * (1.0 - eq));
    int ex;
    (void)frexp((W + (double)w->len) / CALIB_KL_EPS, &ex); /* below 2^ex */
    double lw = log(W0 / W), big = 0.7 * (double)ex;          /* > log of it */
    *kl = (xp - xq) / W + lw;
    double gamma = (double)(B->n + w->len + 64) * DBL_EPSILON;
    *err = trunc / W + 32.0 * gamma * ((B->mag + G->mag + mag) / W + fabs(lw) + 2.0 * big + 8.0);
    return KL_ESTIMATE;
}

static kl_window window_of(const kl_bins *B, bool folded, size_t nq, size_t i)
{
    kl_window w;
    size_t centre = folded ? 0 : B->n / 2;
    w.start = folded ? 0 : centre - i;
    w.stop = centre + i;
    w.len = w.stop - w.start;
    w.nq = nq;
    w.m = w.len / nq;
    w.L = B->cum[w.start];
    w.R = B->cum[B->n] - B->cum[w.stop];
    w.p_first = (double)B->h[w.start] + (double)w.L + (w.len == 1 ? (double)w.R : 0.0);
    w.p_last = w.len == 1 ? w.p_first : (double)B->h[w.stop - 1] + (double)w.R;
    return w;
}

/* Builds the chains for the windows from i on that share i's group width
 * (the width grows with i): their inner groups start in [s0, s1], at
 * multiples of m when every window starts at 0. */
static void groups_for(kl_groups *G, const kl_bins *B, bool folded, size_t nq, size_t i,
                       size_t imax)
{
    kl_window w = window_of(B, folded, nq, i);
    size_t m = w.m, s0 = w.start, s1 = w.start;
    for (size_t j = i + 1; j <= imax; j++) {
        kl_window v = window_of(B, folded, nq, j);
        if (v.m != m)
            break;
        s0 = v.start < s0 ? v.start : s0;
        s1 = v.start > s1 ? v.start : s1;
    }
    if (nq >= 3)
        groups_build(G, B, m, s0, s1 + (nq - 2) * m, folded ? m : 1);
    else
        G->m = m; /* no inner groups */
}

/* The estimates of windows imin..imax. */
static void estimate_all(const kl_bins *B, kl_groups *G, bool folded, size_t nq, size_t imin,
                         size_t imax, double *est, double *err)
{
    for (size_t i = imin; i <= imax; i++) {
        kl_window w = window_of(B, folded, nq, i);
        if (G->m != w.m)
            groups_for(G, B, folded, nq, i, imax);
        double e = 0.0, d = 0.0;
        int k = window_estimate(B, G, &w, &e, &d);
        est[i - imin] = k == KL_ESTIMATE ? e : k == KL_INFINITE ? INFINITY : NAN;
        err[i - imin] = d;
    }
}

oq_status calib_kl_estimates(const calib_hview *v, const uint64_t *cum, bool folded, size_t nq,
                             size_t imin, size_t imax, double *est, double *err)
{
    if (imin > imax)
        return OQ_OK;
    size_t n = v->n;
    double *mem = malloc((5 + 6) * (n + 1) * sizeof *mem);
    uint32_t *nz = malloc((n + 1) * sizeof *nz);
    if (!mem || !nz) {
        free(mem);
        free(nz);
        return oq_error(OQ_E_NOMEM, "out of memory (%zu bins)", n);
    }
    kl_bins B = {v->counts, cum, n, nz, mem, mem + (n + 1), mem + 2 * (n + 1),
                 mem + 3 * (n + 1), mem + 4 * (n + 1), 0.0};
    kl_groups G = {0, {NULL}, 0.0};
    for (int i = 0; i < 6; i++)
        G.f[i] = mem + (5 + (size_t)i) * (n + 1);
    bins_build(&B);
    estimate_all(&B, &G, folded, nq, imin, imax, est, err);
    free(mem);
    free(nz);
    return OQ_OK;
}

oq_status calib_kl_candidates(const calib_hview *v, const uint64_t *cum, bool folded, size_t nq,
                              size_t imin, size_t imax, bool *keep)
{
    if (imin > imax)
        return OQ_OK;
    size_t nw = imax - imin + 1;
    double *est = malloc(2 * nw * sizeof *est), *err = est + nw;
    if (!est)
        return oq_error(OQ_E_NOMEM, "out of memory (%zu windows)", nw);
    oq_status st = calib_kl_estimates(v, cum, folded, nq, imin, imax, est, err);
    double least = INFINITY;
    for (size_t i = 0; st == OQ_OK && i < nw; i++)
        if (isfinite(est[i]) && est[i] + err[i] < least)
            least = est[i] + err[i];
    for (size_t i = 0; st == OQ_OK && i < nw; i++)
        keep[i] = isnan(est[i]) || (isfinite(est[i]) && est[i] - err[i] <= least);
    free(est);
    return st;
}
