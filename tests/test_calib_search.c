/* The range searches of the entropy and mse methods (calibrators/entropy.c
 * with entropy_bound.c, mse.c with mse_bound.c): on histograms of many
 * shapes (smooth, noisy, sparse, spiky, nearly empty, with far outliers,
 * huge counts, away from zero; several sizes and level counts, symmetric or
 * not), every candidate's estimate must lie within its bound of the exact
 * value (calib_kl_window; the sum of mse.c's per-bin errors), and the search
 * that evaluates only the candidates the bounds keep must choose what the
 * search over all candidates chooses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../calibrators/calib_internal.h"
#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x2545F4914F6CDD1Dull
#include "testrng.h"


/* Poisson-like noise around a mean (normal approximation, never negative). */
static uint64_t noisy(double mean)
{
    if (mean <= 0.0)
        return 0;
    double u = urand(), v = urand();
    double g = sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
    double c = floor(mean + sqrt(mean) * g + 0.5);
    return c > 0.0 ? (uint64_t)c : 0;
}

enum { SHAPES = 9 };

/* Histogram shape k over n bins (centre n/2 for the signed views). */
static void fill(uint64_t *h, size_t n, int k, double scale)
{
    for (size_t j = 0; j < n; j++) {
        double x = ((double)j - (double)n / 2.0) / ((double)n / 8.0); /* about [-4, 4) */
        double a = fabs(x), mean;
        switch (k) {
        case 0: mean = exp(-x * x / 2.0); break;                      /* gaussian */
        case 1: mean = x >= 0.0 ? exp(-x) + (j == n / 2 ? 20.0 : 0.0) : 0.0; /* ReLU */
            break;
        case 2: mean = exp(-2.0 * a); break;                          /* laplace */
        case 3: mean = 1.0; break;                                    /* uniform */
        case 4: mean = urand() < 0.05 ? urand() : 0.0; break;         /* sparse spikes */
        case 5: mean = a < 1.0 ? 1.0 : 0.0; break;                    /* a plateau */
        case 6: mean = exp(-x * x * 8.0) + (j % 97 == 0 ? 1e-3 : 0.0); /* narrow + outliers */
            break;
        case 7: mean = j == n - 1 || j == 0 ? 1.0 : 0.0; break;       /* two lone bins */
        default: mean = exp(-a) * (1.0 + 0.5 * sin((double)j)); break; /* ragged */
        }
        h[j] = noisy(mean * scale);
    }
}

static void test_entropy_case(uint64_t *h, size_t n, bool folded, size_t nq, int *bad,
                              double *worst)
{
    calib_hview v = {1.0, folded ? 0 : -(int64_t)(n / 2), n, h};
    uint64_t *cum = malloc((n + 1) * sizeof *cum);
    cum[0] = 0;
    for (size_t j = 0; j < n; j++)
        cum[j + 1] = cum[j] + h[j];
    size_t imax = folded ? n : n / 2, imin = folded ? nq : (nq + 1) / 2;
    if (imin <= imax) {
        size_t nw = imax - imin + 1;
        double *est = malloc(2 * nw * sizeof *est), *err = est + nw;
        double *p = malloc(2 * n * sizeof *p);
        CHECK_OK(calib_kl_estimates(&v, cum, folded, nq, imin, imax, est, err));
        for (size_t i = imin; i <= imax; i++) {
            size_t start = folded ? 0 : n / 2 - i, stop = folded ? i : n / 2 + i;
            double kl = calib_kl_window(h + start, stop - start, cum[start], cum[n] - cum[stop],
                                        nq, p, p + n);
            double e = est[i - imin], d = err[i - imin];
            bool ok = isnan(e) || (isinf(e) ? isinf(kl) : isfinite(kl) && fabs(e - kl) <= d);
            if (isfinite(e) && isfinite(kl) && d > 0.0 && fabs(e - kl) / d > *worst)
                *worst = fabs(e - kl) / d; /* near 1 only where the series' remainder dominates */
            if (!ok && (*bad)++ < 5)
                fprintf(stderr, "window %zu (n %zu, nq %zu, folded %d): estimate %.17g +- %.3g, "
                                "exact %.17g\n", i, n, nq, folded, e, d, kl);
        }
        free(est);
        free(p);
    }
    size_t a = 0, b = 0;
    CHECK_OK(calib_entropy_choose(&v, folded, nq, false, &a));
    CHECK_OK(calib_entropy_choose(&v, folded, nq, true, &b));
    if (a != b && (*bad)++ < 5)
        fprintf(stderr, "n %zu nq %zu folded %d: pruned search chose %zu, full search %zu\n", n,
                nq, folded, b, a);
    free(cum);
}

static void test_entropy(void)
{
    const size_t sizes[] = {2048, 1000, 301, 130, 64, 7};
    const size_t nqs[] = {256, 128, 16, 3, 2, 1};
    const double scales[] = {1e6, 3e3, 20.0, 0.3, 1e12};
    uint64_t *h = malloc(2048 * sizeof *h);
    int bad = 0;
    double worst = 0.0;
    for (size_t si = 0; si < 6; si++)
        for (int k = 0; k < SHAPES; k++)
            for (size_t qi = 0; qi < 6; qi++)
                for (int folded = 0; folded < 2; folded++) {
                    double scale = scales[(si + (size_t)k + qi) % 5];
                    if (sizes[si] >= 1000 && nqs[qi] < 16 && k % 3) /* keep the run short */
                        continue;
                    fill(h, sizes[si], k, scale);
                    if (folded) /* |x|: fold the signed histogram's halves */
                        for (size_t j = 0; j < sizes[si] / 2; j++) {
                            h[j] = h[sizes[si] / 2 + j] + h[sizes[si] / 2 - 1 - j];
                            h[sizes[si] / 2 + j] = 0;
                        }
                    test_entropy_case(h, folded ? sizes[si] / 2 + (sizes[si] % 2) : sizes[si],
                                      folded, nqs[qi], &bad, &worst);
                }
    printf("entropy: largest |estimate - exact| / bound %.3g\n", worst);
    CHECK(bad == 0);
    free(h);
}

/* ---- mse ---- */

static float gaussf(void)
{
    double u = urand(), v = urand();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Data set k of n values. */
static void mse_data(float *x, size_t n, int k)
{
    for (size_t i = 0; i < n; i++) {
        float g = gaussf();
        switch (k) {
        case 0: x[i] = g; break;
        case 1: x[i] = g > 0.0f ? g : 0.0f; break;                                /* ReLU */
        case 2: x[i] = (float)(log(urand() + 1e-300) * (i % 2 ? 1 : -1));         /* laplace */
            if (i % 1000 == 0)
                x[i] *= 30.0f;                                                    /* outliers */
            break;
        case 3: x[i] = (float)urand() * 6.0f; break;                              /* uniform */
        case 4: x[i] = -3.0f - (float)urand(); break;                             /* all negative */
        case 5: x[i] = 1000.0f + g * 0.01f; break;                                /* away from 0 */
        case 6: x[i] = (float)(int)(g * 3.0f); break;                             /* few values */
        case 7: x[i] = i % 2 ? 0.5f : -0.25f; break;                              /* two values */
        default: x[i] = g * (float)(1.0 + 1e3 * (i % 97 == 0)); break;            /* spikes */
        }
    }
}

/* The error of [lo, hi] as mse.c sums it: every non-empty bin in order. */
static double mse_exact(const oq_calib_stats *s, double lo, double hi, int levels)
{
    size_t nb;
    const uint64_t *counts;
    oq_calib_stats_histogram(s, &nb, NULL, NULL, &counts);
    double d = (hi - lo) / (double)(levels - 1), e = 0.0;
    for (size_t i = 0; i < nb; i++) {
        if (counts[i] == 0)
            continue;
        calib_mse_bin q = calib_mse_bin_of(s, i);
        e += calib_mse_bin_error(&q, lo, hi, d);
    }
    return e;
}

static void test_mse_case(const oq_calib_stats *s, const oq_calib_options *o, int *bad,
                          double *worst)
{
    double lo0, hi0;
    int nc;
    calib_mse_span(s, o, &lo0, &hi0, &nc);
    if (hi0 - lo0 > 0.0) {
        double *est = malloc(2 * (size_t)nc * sizeof *est), *err = est + nc;
        for (int fine = 0; fine < 2; fine++) {
            CHECK_OK(calib_mse_estimates(s, lo0, hi0, nc, o->levels, fine, est, err));
            for (int k = 1; k <= nc; k++) {
                double f = (double)k / (double)nc;
                double e = mse_exact(s, f * lo0, f * hi0, o->levels);
                double dev = fabs(est[k - 1] - e);
                if (err[k - 1] > 0.0 && dev / err[k - 1] > worst[fine])
                    worst[fine] = dev / err[k - 1];
                if (!(dev <= err[k - 1]) && (*bad)++ < 5)
                    fprintf(stderr, "mse (%s, bins %d, levels %d, sym %d) candidate %d: estimate "
                                    "%.17g +- %.3g, exact %.17g\n", fine ? "fine" : "coarse",
                            o->bins, o->levels, o->symmetric, k, est[k - 1], err[k - 1], e);
            }
        }
        free(est);
    }
    double l1, h1, l2, h2;
    CHECK_OK(calib_mse_choose(s, o, false, &l1, &h1));
    CHECK_OK(calib_mse_choose(s, o, true, &l2, &h2));
    if ((l1 != l2 || h1 != h2) && (*bad)++ < 5)
        fprintf(stderr, "mse (bins %d, levels %d, sym %d): pruned search chose [%g, %g], full "
                        "search [%g, %g]\n", o->bins, o->levels, o->symmetric, l2, h2, l1, h1);
}

static void test_mse(void)
{
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    const int bins[] = {2048, 256, 4096, 16, 3};
    const int levels[] = {256, 16, 2};
    int bad = 0;
    double worst[2] = {0.0, 0.0};
    for (int k = 0; k < 9; k++) {
        mse_data(x, N, k);
        for (int b = 0; b < 5; b++)
            for (int lv = 0; lv < 3; lv++)
                for (int sym = 0; sym < 2; sym++) {
                    if ((b >= 2 || lv >= 1) && (k + b + lv + sym) % 3) /* keep the run short */
                        continue;
                    oq_calib_options o;
                    oq_calib_options_default(&o);
                    o.method = OQ_CALIB_MSE;
                    o.bins = bins[b];
                    o.levels = levels[lv];
                    o.symmetric = sym;
                    oq_calib_stats *s = NULL;
                    CHECK_OK(oq_calib_stats_new(&o, true, &s));
                    size_t n = k == 8 && b == 1 ? 7 : N; /* and a nearly empty histogram */
                    CHECK_OK(oq_calib_stats_update(s, x, n));
                    test_mse_case(s, &o, &bad, worst);
                    oq_calib_stats_free(s);
                }
    }
    printf("mse: largest |estimate - exact| / bound %.3g (coarse), %.3g (fine)\n", worst[0],
           worst[1]);
    CHECK(bad == 0);
    free(x);
}

int main(void)
{
    test_entropy();
    test_mse();
    return TEST_SUMMARY();
}
