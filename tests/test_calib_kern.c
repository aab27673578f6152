/* The inner loops of the calibration statistics (calibrators/stats_kern.h):
 * every kernel level this build and CPU have (portable C, AVX2, AVX-512)
 * against direct computations — extremes against a scalar loop, bin
 * indices against libm's floor — on bin edges, denormals, huge and tiny
 * values, signed zeros and every tail length; the mse search's sums of
 * phi terms against a direct sum; NaN and infinities at every
 * position; and whole statistics updated under each ONNXQ_ISA level against
 * the portable level, bit for bit (counts, extremes, the sign of a zero
 * extreme, error messages). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../calibrators/stats_kern.h"
#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#include "testrng.h"


static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- extremes ---- */

static void scan_direct(const float *x, size_t n, float *lo, float *hi)
{
    *lo = *hi = x[0];
    for (size_t i = 1; i < n; i++) {
        *lo = x[i] < *lo ? x[i] : *lo;
        *hi = x[i] > *hi ? x[i] : *hi;
    }
}

static void test_scan(const calib_kern *k)
{
    enum { N = 4200 };
    float *x = malloc(N * sizeof *x);
    const size_t lens[] = {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4097, N};
    int bad = 0;
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        size_t n = lens[t];
        for (int kind = 0; kind < 4; kind++) {
            for (size_t i = 0; i < n; i++) {
                float g = gauss();
                x[i] = kind == 0 ? g : kind == 1 ? (g > 0 ? g : 0.0f) /* ReLU */
                       : kind == 2 ? g * 1e-41f                      /* denormals */
                                   : (i % 3 ? FLT_MAX : -FLT_MAX) * (float)urand();
            }
            if (kind == 3 && n > 2) {
                x[n / 2] = FLT_MAX; /* the largest finite values are no infinity */
                x[n - 1] = -FLT_MAX;
            }
            float lo, hi, rlo, rhi;
            scan_direct(x, n, &rlo, &rhi);
            if (!k->scan(x, n, &lo, &hi) || lo != rlo || hi != rhi) {
                if (bad++ < 5)
                    fprintf(stderr, "%s scan n=%zu kind %d: [%g, %g] vs [%g, %g]\n", k->name,
                            n, kind, lo, hi, rlo, rhi);
            }
        }
    }
    CHECK(bad == 0);
    /* a NaN or an infinity anywhere, in every length up to 70 */
    const float nonfinite[] = {NAN, -NAN, INFINITY, -INFINITY};
    bad = 0;
    for (size_t n = 1; n <= 70; n++)
        for (size_t pos = 0; pos < n; pos++)
            for (int v = 0; v < 4; v++) {
                for (size_t i = 0; i < n; i++)
                    x[i] = gauss();
                x[pos] = nonfinite[v];
                float lo, hi;
                if (k->scan(x, n, &lo, &hi) && bad++ < 5)
                    fprintf(stderr, "%s scan: missed %g at %zu of %zu\n", k->name,
                            nonfinite[v], pos, n);
            }
    CHECK(bad == 0);
    free(x);
}

/* ---- bin indices ---- */

/* Checks the kernel's indices and zero count for x[0, n) at width 2^e
 * against libm's floor; first is the least bin. With f32, bins_f32 (whose
 * conditions the caller meets). */
static bool bins_match(const calib_kern *k, bool f32, const float *x, size_t n, int e)
{
    double inv = ldexp(1.0, -e);
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t b = (int64_t)floor((double)x[i] * inv);
        first = b < first ? b : first;
    }
    int32_t idx[CALIB_BIN_CHUNK + 16];
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++)
        idx[i] = -7;
    uint64_t zeros = 5;
    calib_bins_fn bins = f32 ? k->bins_f32 : k->bins;
    size_t got = bins(x, n, inv, (double)first, idx, &zeros), m = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (x[i] == 0.0f)
            continue;
        int64_t want = (int64_t)floor((double)x[i] * inv) - first;
        if (m >= got || idx[m] != want) {
            if (ok)
                fprintf(stderr, "%s bins%s: value %zu (%a) at 2^%d: %d, expected %lld\n",
                        k->name, f32 ? "_f32" : "", i, (double)x[i], e, m < got ? idx[m] : -1,
                        (long long)want);
            ok = false;
        }
        m++;
    }
    if (got != m || zeros != 5 + (n - m)) {
        fprintf(stderr, "%s bins: %zu indices (expected %zu), %llu zeros (expected %zu)\n",
                k->name, got, m, (unsigned long long)(zeros - 5), n - m);
        ok = false;
    }
    return ok;
}

static void test_bins(const calib_kern *k)
{
    float x[CALIB_BIN_CHUNK] = {0};
    int bad = 0;
    for (size_t n = 0; n <= CALIB_BIN_CHUNK; n += n < 40 ? 1 : 37) {
        /* Gaussian data at 2048 bins over [-4, 4], a third of them zeros */
        for (size_t i = 0; i < n; i++)
            x[i] = i % 3 == 1 ? (i % 2 ? 0.0f : -0.0f) : gauss();
        bad += !bins_match(k, false, x, n, -8) + !bins_match(k, true, x, n, -8);
        /* exact bin edges and their neighbours, both signs */
        for (size_t i = 0; i < n; i++) {
            float edge = (float)ldexp((double)(int)(next_u64() % 64) - 32.0, -5);
            int side = (int)(i % 3);
            x[i] = side == 0 ? edge : side == 1 ? nextafterf(edge, -1e9f) : nextafterf(edge, 1e9f);
        }
        bad += !bins_match(k, false, x, n, -5) + !bins_match(k, true, x, n, -5);
        /* scaled values just below 2^24, the float kernel's limit */
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(16383.999 * (i % 2 ? 1.0 : -1.0) * (1.0 - 1e-6 * urand()));
        bad += !bins_match(k, false, x, n, -10) + !bins_match(k, true, x, n, -10);
        /* denormals at 2^-126 (the float kernel's finest), 2^-149 (the finest) */
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(ldexp(1.0, -149) * (double)((int)(next_u64() % 2000) - 1000));
        bad += !bins_match(k, false, x, n, -149) + !bins_match(k, true, x, n, -126);
        /* tiny negative values in wide bins: floor is -1, never -0 */
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(i % 2 ? -1e-30 * urand() - 1e-45 : 300.0 * urand());
        bad += !bins_match(k, false, x, n, 2);
        /* the largest floats at 2^76: |x / 2^e| just below 2^52, bins 2^28 apart */
        for (int sign = -1; sign <= 1; sign += 2) {
            for (size_t i = 0; i < n; i++) {
                x[i] = FLT_MAX * (float)sign;
                for (int u = (int)(next_u64() % 8); u > 0; u--)
                    x[i] = nextafterf(x[i], 0.0f);
            }
            bad += !bins_match(k, false, x, n, 128 - 52);
        }
    }
    CHECK(bad == 0);
}

/* scan_bins_f32 against scan and bins_f32 run one after the other. */
static void test_scan_bins(const calib_kern *k)
{
    float x[CALIB_BIN_CHUNK] = {0};
    int32_t a[CALIB_BIN_IDX], b[CALIB_BIN_IDX];
    int bad = 0;
    for (size_t n = 1; n <= CALIB_BIN_CHUNK; n += n < 40 ? 1 : 29) {
        for (int kind = 0; kind < 3; kind++) {
            for (size_t i = 0; i < n; i++) /* ReLU-like, edges, far out of range */
                x[i] = kind == 0   ? (i % 3 ? fabsf(gauss()) : 0.0f)
                       : kind == 1 ? (float)ldexp((double)(int)(next_u64() % 64) - 32.0, -5)
                                   : gauss() * 1e30f;
            double inv = 256.0, first = -4096.0;
            uint64_t za = 0, zb = 0;
            size_t ka = 0;
            float lo, hi, rlo, rhi;
            bool ok = k->scan_bins_f32(x, n, inv, first, a, &ka, &za, &lo, &hi);
            bool rok = k->scan(x, n, &rlo, &rhi);
            if (ok != rok || lo != rlo || hi != rhi) {
                if (bad++ < 5)
                    fprintf(stderr, "%s scan_bins_f32 n=%zu: extremes differ\n", k->name, n);
                continue;
            }
            if (kind == 2)
                continue; /* indices out of the float kernel's range: anything goes */
            size_t kb = k->bins_f32(x, n, inv, first, b, &zb);
            if (ka != kb || za != zb || memcmp(a, b, ka * sizeof *a) != 0) {
                if (bad++ < 5)
                    fprintf(stderr, "%s scan_bins_f32 n=%zu: indices differ\n", k->name, n);
            }
        }
    }
    for (size_t n = 1; n <= 40; n++) /* NaN or infinity anywhere */
        for (size_t pos = 0; pos < n; pos++) {
            for (size_t i = 0; i < n; i++)
                x[i] = gauss();
            x[pos] = pos % 2 ? NAN : (pos % 4 ? INFINITY : -INFINITY);
            uint64_t z = 0;
            size_t kk;
            float lo, hi;
            if (k->scan_bins_f32(x, n, 256.0, -4096.0, a, &kk, &z, &lo, &hi) && bad++ < 5)
                fprintf(stderr, "%s scan_bins_f32: missed %g at %zu of %zu\n", k->name, x[pos],
                        pos, n);
        }
    CHECK(bad == 0);
}

/* ---- the mse search's phi sums ---- */

static void test_phi(const calib_kern *k)
{
    enum { N = 2100 };
    double *x = malloc(N * sizeof *x), *dc = malloc(N * sizeof *dc);
    int bad = 0;
    for (size_t n = 0; n <= N; n += n < 70 ? 1 : 677) {
        double w = ldexp(1.0, -(int)(next_u64() % 20)), l = -w * 37.25, id = 2.6 / w;
        for (size_t i = 0; i < n; i++) {
            x[i] = (-40.0 + (double)i) * w;
            dc[i] = (double)(int64_t)(next_u64() % 20001) - 10000.0;
        }
        if (n > 3)
            x[3] = l + 2.5 / id; /* a tie: u = 2.5 */
        double sum = 0.0, mag = 0.0, umax = 0.0, dmag = 0.0;
        for (size_t i = 0; i < n; i++) {
            double u = (x[i] - l) * id, s = u - nearbyint(u);
            double t = (s * s * s / 3.0 - s / 12.0) * dc[i];
            sum += t;
            mag += fabs(t);
            umax = fabs(u) > umax ? fabs(u) : umax;
            dmag += fabs(dc[i]);
        }
        double got = k->phi_sum(x, dc, n, l, id);
        double tol = 8.0 * (double)(n + 16) * DBL_EPSILON * mag + 8.0 * DBL_EPSILON * umax * dmag;
        if (!(fabs(got - sum) <= tol) && bad++ < 5)
            fprintf(stderr, "%s phi_sum n=%zu: %.17g, expected %.17g (tolerance %.3g)\n",
                    k->name, n, got, sum, tol);
    }
    CHECK(bad == 0);
    free(x);
    free(dc);
}

/* ---- whole statistics under each ONNXQ_ISA level ---- */

static const char *const level_env[] = {"ref", "avx2", "avx512"};

static oq_calib_stats *stats_under(const char *isa, bool hist, const float *x, size_t n,
                                   size_t batch)
{
    setenv("ONNXQ_ISA", isa, 1);
    oq_calib_options o;
    oq_calib_options_default(&o);
    o.method = hist ? OQ_CALIB_PERCENTILE : OQ_CALIB_MINMAX;
    oq_calib_stats *s = NULL;
    CHECK_OK(oq_calib_stats_new(&o, hist, &s));
    for (size_t i = 0; s && i < n; i += batch)
        CHECK_OK(oq_calib_stats_update(s, x + i, n - i < batch ? n - i : batch));
    unsetenv("ONNXQ_ISA");
    return s;
}

static bool same_stats(const oq_calib_stats *a, const oq_calib_stats *b)
{
    float amin, amax, bmin, bmax;
    uint64_t an, bn;
    oq_calib_stats_minmax(a, &amin, &amax, &an);
    oq_calib_stats_minmax(b, &bmin, &bmax, &bn);
    if (!same_bits(amin, bmin) || !same_bits(amax, bmax) || an != bn)
        return false;
    size_t na, nb;
    int ea, eb;
    int64_t fa, fb;
    const uint64_t *ca, *cb;
    bool ha = oq_calib_stats_histogram(a, &na, &ea, &fa, &ca);
    bool hb = oq_calib_stats_histogram(b, &nb, &eb, &fb, &cb);
    if (ha != hb)
        return false;
    return !ha || (na == nb && ea == eb && fa == fb && memcmp(ca, cb, na * sizeof *ca) == 0);
}

static void test_levels(void)
{
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x);
    /* bins of width 2^-8 and so on (float indices), 2^10 and 2^-140 (double) */
    const float scale[] = {1.0f, 1.0f, 1.0f, 1e6f, 1e-40f};
    for (int data = 0; data < 5; data++) {
        for (size_t i = 0; i < N; i++) {
            float g = gauss() * (float)(1.0 + (double)i / 5000.0); /* growing: re-binning */
            x[i] = data == 1   ? (g > 0 ? g : (i % 5 ? 0.0f : -0.0f))
                   : data == 2 ? (float)(int)(g * 4.0f) /* runs of equal bins */
                               : g * scale[data];
        }
        const size_t batches[] = {1, 37, 4096, N};
        /* batches of 4096 after the first go through the one-pass update
         * while they fit the bins; batches of 37 never do */
        oq_calib_stats *small = stats_under("ref", true, x, N, 37);
        oq_calib_stats *large = stats_under("ref", true, x, N, 4096);
        CHECK(small && large && same_stats(small, large));
        oq_calib_stats_free(small);
        oq_calib_stats_free(large);
        for (size_t b = 0; b < 4; b++)
            for (int hist = 0; hist < 2; hist++) {
                oq_calib_stats *ref = stats_under("ref", hist, x, N, batches[b]);
                for (int l = OQ_LEVEL_AVX2; l <= OQ_LEVEL_AVX512; l++) {
                    if (!calib_kern_for((oq_isa_level)l))
                        continue;
                    oq_calib_stats *s = stats_under(level_env[l], hist, x, N, batches[b]);
                    CHECK(s && ref && same_stats(s, ref));
                    oq_calib_stats_free(s);
                }
                oq_calib_stats_free(ref);
            }
    }
    free(x);
}

/* The sign of a zero extreme is the data's first zero's, on every level. */
static void test_signed_zero(void)
{
    float x[100];
    for (int l = OQ_LEVEL_REF; l <= OQ_LEVEL_AVX512; l++) {
        if (!calib_kern_for((oq_isa_level)l))
            continue;
        for (size_t first = 0; first < 100; first += 7) {
            for (int neg = 0; neg < 2; neg++) {
                for (size_t i = 0; i < 100; i++) /* zeros of the other sign after the first */
                    x[i] = i < first ? 1.0f + (float)i : i % 2 ? 2.0f : (neg ? 0.0f : -0.0f);
                x[first] = neg ? -0.0f : 0.0f;
                oq_calib_stats *s = stats_under(level_env[l], true, x, 100, 100);
                float mn, mx;
                oq_calib_stats_minmax(s, &mn, &mx, NULL);
                CHECK(same_bits(mn, x[first]));
                oq_calib_stats_free(s);
                for (size_t i = 0; i < 100; i++)
                    x[i] = -x[i];
                x[first] = neg ? -0.0f : 0.0f;
                s = stats_under(level_env[l], false, x, 100, 100);
                oq_calib_stats_minmax(s, &mn, &mx, NULL);
                CHECK(same_bits(mx, x[first]));
                oq_calib_stats_free(s);
            }
        }
    }
}

/* The first NaN or infinity is named the same way on every level. */
static void test_errors(void)
{
    float x[300];
    for (int l = OQ_LEVEL_REF; l <= OQ_LEVEL_AVX512; l++) {
        if (!calib_kern_for((oq_isa_level)l))
            continue;
        const size_t pos[] = {0, 5, 31, 32, 200, 299};
        for (size_t p = 0; p < 6; p++) {
            for (size_t i = 0; i < 300; i++)
                x[i] = gauss();
            x[pos[p]] = p % 2 ? NAN : -INFINITY;
            if (pos[p] < 299)
                x[299] = INFINITY; /* only the first is named */
            char want[64];
            snprintf(want, sizeof want, "value %zu of 300 is %s", pos[p], p % 2 ? "NaN" : "-inf");
            oq_calib_stats *s = stats_under(level_env[l], true, x, 0, 1);
            setenv("ONNXQ_ISA", level_env[l], 1);
            CHECK_ERR(oq_calib_stats_update(s, x, 300), OQ_E_INVALID, want);
            unsetenv("ONNXQ_ISA");
            oq_calib_stats_free(s);
        }
    }
    /* a NaN late in a large batch that fits the bins: the one-pass update
     * has counted the chunks before it, and must leave nothing behind */
    enum { M = 10000 };
    float *y = malloc(M * sizeof *y);
    for (int l = OQ_LEVEL_REF; l <= OQ_LEVEL_AVX512; l++) {
        if (!calib_kern_for((oq_isa_level)l))
            continue;
        for (size_t i = 0; i < M; i++)
            y[i] = i < M / 2 ? gauss() * 2.0f : gauss();
        oq_calib_stats *s = stats_under(level_env[l], true, y, M / 2, M / 2);
        oq_calib_stats *ref = stats_under(level_env[l], true, y, M / 2, M / 2);
        y[M / 2 + 4700] = NAN;
        setenv("ONNXQ_ISA", level_env[l], 1);
        CHECK_ERR(oq_calib_stats_update(s, y + M / 2, M / 2), OQ_E_INVALID,
                  "value 4700 of 5000 is NaN");
        CHECK(same_stats(s, ref));
        y[M / 2 + 4700] = 0.5f;
        CHECK_OK(oq_calib_stats_update(s, y + M / 2, M / 2));
        CHECK_OK(oq_calib_stats_update(ref, y + M / 2, 1000));
        CHECK_OK(oq_calib_stats_update(ref, y + M / 2 + 1000, M / 2 - 1000));
        unsetenv("ONNXQ_ISA");
        CHECK(same_stats(s, ref));
        oq_calib_stats_free(s);
        oq_calib_stats_free(ref);
    }
    free(y);
    setenv("ONNXQ_ISA", "sse9", 1);
    oq_calib_options o;
    oq_calib_options_default(&o);
    oq_calib_stats *s = NULL;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "ONNXQ_ISA");
    CHECK(s == NULL);
    unsetenv("ONNXQ_ISA");
}

int main(void)
{
    unsetenv("ONNXQ_ISA");
    int levels = 0;
    for (int l = OQ_LEVEL_REF; l < OQ_LEVEL_COUNT; l++) {
        const calib_kern *k = calib_kern_for((oq_isa_level)l);
        if (!k)
            continue;
        printf("kernels: %s\n", k->name);
        levels++;
        test_scan(k);
        test_bins(k);
        test_scan_bins(k);
        test_phi(k);
    }
    CHECK(levels >= 1);
    test_levels();
    test_signed_zero();
    test_errors();
    return TEST_SUMMARY();
}
