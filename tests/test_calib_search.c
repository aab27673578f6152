/* The range searches of the entropy method (calibrators/entropy.c with
 * entropy_bound.c): on histograms of many shapes (smooth, noisy, sparse,
 * spiky, nearly empty, with far outliers, huge counts; several view sizes
 * and level counts, folded or not), every window's estimate must lie within
 * its bound of the exact divergence (calib_kl_window, the definition), and
 * the search that evaluates only the windows the bounds keep must choose
 * the window the search over all windows chooses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../calibrators/calib_internal.h"
#include "onnxq/onnxq.h"
#include "testutil.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double urand(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

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

int main(void)
{
    test_entropy();
    return TEST_SUMMARY();
}
