/* Calibration statistics (calibrators/): the histogram against a direct
 * computation of its definition, merges of shards against one pass (bit for
 * bit), re-binning, NaN/Inf rejection, constant tensors, ranges derived by
 * hand, option errors, memory that does not grow with updates (malloc and
 * friends are wrapped at link time and counted), and the table (save, load,
 * merge, bad files). The numpy cross-checks are in test_calib_numpy.py. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x243F6A8885A308D3ull
#include "testrng.h"

/* ---- allocation counting (-Wl,--wrap=malloc,...) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
static long n_alloc, n_free;
void *__wrap_malloc(size_t n)
{
    n_alloc++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
    n_alloc++;
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
    n_alloc++;
    return __real_realloc(p, n);
}
void __wrap_free(void *p)
{
    if (p)
        n_free++;
    __real_free(p);
}

/* ---- data ---- */


static const oq_calib_method methods[] = {OQ_CALIB_MINMAX, OQ_CALIB_PERCENTILE,
                                          OQ_CALIB_ENTROPY, OQ_CALIB_MSE};

static oq_calib_options opts(oq_calib_method m, int bins, bool sym)
{
    oq_calib_options o;
    oq_calib_options_default(&o);
    o.method = m;
    o.bins = bins;
    o.symmetric = sym;
    return o;
}

static oq_calib_stats *stats_of(const oq_calib_options *o, const float *x, size_t n,
                                size_t batch)
{
    oq_calib_stats *s = NULL;
    CHECK_OK(oq_calib_stats_new(o, true, &s));
    for (size_t i = 0; s && i < n; i += batch)
        CHECK_OK(oq_calib_stats_update(s, x + i, n - i < batch ? n - i : batch));
    return s;
}

/* True when both histograms (and extremes and counts) are identical. */
static bool same_stats(const oq_calib_stats *a, const oq_calib_stats *b)
{
    float amin, amax, bmin, bmax;
    uint64_t an, bn;
    oq_calib_stats_minmax(a, &amin, &amax, &an);
    oq_calib_stats_minmax(b, &bmin, &bmax, &bn);
    size_t na, nb;
    int ea, eb;
    int64_t fa, fb;
    const uint64_t *ca, *cb;
    if (!oq_calib_stats_histogram(a, &na, &ea, &fa, &ca) ||
        !oq_calib_stats_histogram(b, &nb, &eb, &fb, &cb))
        return false;
    return amin == bmin && amax == bmax && an == bn && na == nb && ea == eb && fa == fb &&
           memcmp(ca, cb, na * sizeof *ca) == 0;
}

/* ---- the histogram against its definition ---- */

/* The definition in calib.h / calib_internal.h, computed directly: the
 * least e (with |x| / 2^e < 2^52) such that [min, max] spans at most bins
 * bins of width 2^e, first = floor(min / 2^e). */
static bool hist_matches_definition(const oq_calib_stats *s, const float *x, size_t n,
                                    size_t bins)
{
    double mn = x[0], mx = x[0];
    for (size_t i = 0; i < n; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    double maxabs = fabs(mn) > fabs(mx) ? fabs(mn) : fabs(mx);
    int e = -300;
    while (!(maxabs < ldexp(1.0, 52 + e) && ldexp(1.0, -149) < ldexp(1.0, 52 + e) &&
             floor(ldexp(mx, -e)) - floor(ldexp(mn, -e)) + 1 <= (double)bins))
        e++;
    int64_t first = (int64_t)floor(ldexp(mn, -e));
    uint64_t *c = calloc(bins, sizeof *c);
    for (size_t i = 0; i < n; i++)
        c[(int64_t)floor(ldexp(x[i], -e)) - first]++;
    size_t nb;
    int se;
    int64_t sf;
    const uint64_t *sc;
    bool ok = oq_calib_stats_histogram(s, &nb, &se, &sf, &sc) && nb == bins && se == e &&
              sf == first && memcmp(sc, c, bins * sizeof *c) == 0;
    if (!ok)
        fprintf(stderr, "histogram: exp2 %d (expected %d), first %lld (expected %lld)\n", se, e,
                (long long)sf, (long long)first);
    free(c);
    return ok;
}

static void test_definition(void)
{
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    const double scales[] = {1.0, 1e-30, 3e25, 1e-40 /* denormals */, 7.0};
    const double shifts[] = {0.0, 0.0, 0.0, 0.0, 1000.0};
    const int bins[] = {2048, 16, 2, 100, 2048};
    for (int t = 0; t < 5; t++) {
        for (size_t i = 0; i < N; i++)
            x[i] = (float)(shifts[t] + scales[t] * gauss());
        oq_calib_options o = opts(OQ_CALIB_PERCENTILE, bins[t], false);
        oq_calib_stats *s = stats_of(&o, x, N, 777);
        CHECK(hist_matches_definition(s, x, N, (size_t)bins[t]));
        oq_calib_stats_free(s);
    }
    /* exact powers of two and bin edges land in the bin they start */
    float edges[] = {-2.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f, 0.25f, -0.25f, 4.0f};
    oq_calib_options o = opts(OQ_CALIB_PERCENTILE, 64, false);
    oq_calib_stats *s = stats_of(&o, edges, 10, 3);
    CHECK(hist_matches_definition(s, edges, 10, 64));
    oq_calib_stats_free(s);
    free(x);
}

/* ---- merges and re-binning ---- */

static void test_merge_one_pass(void)
{
    enum { N = 60000 };
    float *x = malloc(N * sizeof *x);
    /* growing magnitude: early shards are narrow, so merges and updates re-bin */
    for (size_t i = 0; i < N; i++)
        x[i] = gauss() * (float)(1e-3 + 1e-4 * (double)i) + (i % 7 == 0 ? 3.0f : 0.0f);
    oq_calib_options o = opts(OQ_CALIB_ENTROPY, 2048, false);
    oq_calib_stats *one = stats_of(&o, x, N, N);
    CHECK(hist_matches_definition(one, x, N, 2048));
    /* one value at a time: a re-binning on nearly every update */
    oq_calib_stats *single = stats_of(&o, x, 3000, 1);
    oq_calib_stats *ref3000 = stats_of(&o, x, 3000, 3000);
    CHECK(same_stats(single, ref3000));
    oq_calib_stats_free(single);
    oq_calib_stats_free(ref3000);
    for (int trial = 0; trial < 6; trial++) {
        size_t cut[6] = {0, 0, 0, 0, 0, N};
        for (int k = 1; k < 5; k++)
            cut[k] = (size_t)(next_u64() % N);
        for (int a = 1; a < 5; a++) /* sort the cuts */
            for (int b = a; b > 0 && cut[b] < cut[b - 1]; b--) {
                size_t tmp = cut[b];
                cut[b] = cut[b - 1];
                cut[b - 1] = tmp;
            }
        oq_calib_stats *shard[5];
        for (int k = 0; k < 5; k++)
            shard[k] = stats_of(&o, x + cut[k], cut[k + 1] - cut[k], 1 + next_u64() % 5000);
        /* merge in a shuffled order, into a fresh (empty) statistics */
        oq_calib_stats *m;
        CHECK_OK(oq_calib_stats_new(&o, true, &m));
        int order[5] = {0, 1, 2, 3, 4};
        for (int k = 4; k > 0; k--) {
            int j = (int)(next_u64() % (uint64_t)(k + 1)), tmp = order[k];
            order[k] = order[j];
            order[j] = tmp;
        }
        for (int k = 0; k < 5; k++)
            CHECK_OK(oq_calib_stats_merge(m, shard[order[k]]));
        CHECK(same_stats(m, one));
        /* a tree of merges gives the same */
        CHECK_OK(oq_calib_stats_merge(shard[3], shard[4]));
        CHECK_OK(oq_calib_stats_merge(shard[1], shard[0]));
        CHECK_OK(oq_calib_stats_merge(shard[3], shard[1]));
        CHECK_OK(oq_calib_stats_merge(shard[2], shard[3]));
        CHECK(same_stats(shard[2], one));
        for (int r = 0; r < 4; r++) { /* and so do the ranges */
            oq_calib_options ro = opts(methods[r], 2048, r % 2 == 1);
            float l1, h1, l2, h2;
            CHECK_OK(oq_calib_stats_range(m, &ro, &l1, &h1));
            CHECK_OK(oq_calib_stats_range(one, &ro, &l2, &h2));
            CHECK(l1 == l2 && h1 == h2);
        }
        oq_calib_stats_free(m);
        for (int k = 0; k < 5; k++)
            oq_calib_stats_free(shard[k]);
    }
    oq_calib_stats_free(one);
    free(x);
}

/* Re-binning by itself: each update widens the range on one side or the
 * other, by factors from 1.01 to 2^40. */
static void test_rebin(void)
{
    enum { N = 400 };
    float x[N];
    double m = 1e-20;
    for (size_t i = 0; i < N; i++) {
        m *= 1.0 + (double)(next_u64() % 1000) / 100.0;
        if (i % 50 == 49)
            m *= 1099511627776.0; /* 2^40 */
        if (m > 1e30)
            m = 1e-20;
        x[i] = (float)((i % 3 == 0 ? -m : m) + (i % 5 == 0 ? 0.25 : 0.0));
    }
    for (int bins = 2; bins <= 4096; bins *= 4) {
        oq_calib_options o = opts(OQ_CALIB_MSE, bins, false);
        oq_calib_stats *step = stats_of(&o, x, N, 1);
        oq_calib_stats *all = stats_of(&o, x, N, N);
        CHECK(same_stats(step, all));
        CHECK(hist_matches_definition(step, x, N, (size_t)bins));
        oq_calib_stats_free(step);
        oq_calib_stats_free(all);
    }
}

/* ---- NaN / infinity ---- */

static void test_nonfinite(void)
{
    oq_calib_options o = opts(OQ_CALIB_PERCENTILE, 256, false);
    float good[8] = {1, -2, 3, 0.5f, 0, 0, 7, -1};
    oq_calib_stats *s = stats_of(&o, good, 8, 8);
    oq_calib_stats *ref = stats_of(&o, good, 8, 8);
    float bad[10] = {100, -100, 5, 5, 5, 0, 0, 0, 0, 0};
    bad[5] = NAN;
    CHECK_ERR(oq_calib_stats_update(s, bad, 10), OQ_E_INVALID, "value 5 of 10 is NaN");
    bad[5] = 0;
    bad[9] = INFINITY;
    CHECK_ERR(oq_calib_stats_update(s, bad, 10), OQ_E_INVALID, "value 9 of 10 is +inf");
    bad[9] = -INFINITY;
    CHECK_ERR(oq_calib_stats_update(s, bad, 10), OQ_E_INVALID, "value 9 of 10 is -inf");
    CHECK(same_stats(s, ref)); /* left as it was, though 100 and -100 came first */
    float l, h;
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(isfinite(l) && isfinite(h) && h <= 7.0f && l >= -2.0f);
    oq_calib_stats_free(s);
    oq_calib_stats_free(ref);
}

/* ---- constant tensors and ranges derived by hand ---- */

static void check_valid_range(float l, float h, bool sym, float c)
{
    CHECK(isfinite(l) && isfinite(h) && l <= 0.0f && h >= 0.0f && h > l);
    CHECK((h - l) / 255.0f >= FLT_MIN);
    CHECK(!sym || l == -h);
    CHECK(l <= c && c <= h);
}

static void test_constant(void)
{
    const float values[] = {0.0f, 3.5f, -2.0f, 1e-40f, -1e30f, 1e-30f};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        float x[1000];
        for (int i = 0; i < 1000; i++)
            x[i] = values[v];
        for (int m = 0; m < 4; m++) {
            for (int sym = 0; sym < 2; sym++) {
                oq_calib_options o = opts(methods[m], 2048, sym);
                oq_calib_stats *s = stats_of(&o, x, 1000, 100);
                float l = NAN, h = NAN;
                CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
                check_valid_range(l, h, sym, values[v]);
                float c = values[v], a = fabsf(c);
                if (c == 0.0f || a == 1e-40f) /* zero range: [-1, 1] */
                    CHECK(l == -1.0f && h == 1.0f);
                else if (sym)
                    CHECK(l == -a && h == a);
                else
                    CHECK(l == (c < 0 ? c : 0.0f) && h == (c > 0 ? c : 0.0f));
                oq_calib_stats_free(s);
            }
        }
    }
}

static void test_hand_ranges(void)
{
    /* 1, 2, ..., 1000: width 2^-1 (2^-2 would need 3997 bins), one value per
     * bin [k, k + 0.5). p = 75 reaches 750 values in 750's bin: 750 + 0.5;
     * 100 - p reaches 250 values: 250.5, widened to 0. */
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)(1000 - i);
    oq_calib_options o = opts(OQ_CALIB_PERCENTILE, 2048, false);
    o.percentile = 75.0;
    oq_calib_stats *s = stats_of(&o, x, 1000, 64);
    float l, h;
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == 0.0f && h == 750.5f);
    o.symmetric = true;
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == -750.5f && h == 750.5f);
    o.percentile = 100.0; /* the largest value, not the bin's edge */
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == -1000.0f && h == 1000.0f);
    o.symmetric = false;
    o.percentile = 50.0; /* 500 values: 500 + 0.5 */
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == 0.0f && h == 500.5f);
    o.method = OQ_CALIB_MINMAX;
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == 0.0f && h == 1000.0f);
    /* mse on values spread evenly over [0, 1): rounding costs s (s/255)^2 / 12
     * over [0, s], clipping (1 - s)^3 / 3 above s; the derivative vanishes at
     * 1 - s = s / 510, s = 510/511 = 0.998043, nearest candidate 2044/2048 */
    oq_calib_stats_free(s);
    enum { M = 1 << 16 };
    float *u = malloc(M * sizeof *u);
    for (int i = 0; i < M; i++)
        u[i] = ((float)i + 0.5f) / (float)M;
    o.method = OQ_CALIB_MSE;
    o.symmetric = false;
    s = stats_of(&o, u, M, 4096);
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == 0.0f && h == (float)(2044.0 / 2048.0 * (double)u[M - 1]));
    free(u);
    oq_calib_stats_free(s);
}

/* ---- moving average ---- */

static void test_moving_average(void)
{
    oq_calib_options o = opts(OQ_CALIB_MINMAX, 2048, false);
    o.moving_average = 0.25;
    oq_calib_stats *s;
    CHECK_OK(oq_calib_stats_new(&o, false, &s));
    float b1[2] = {-4, 8}, b2[2] = {0, 4}, b3[1] = {-8};
    CHECK_OK(oq_calib_stats_update(s, b1, 2));
    CHECK_OK(oq_calib_stats_update(s, b2, 2));
    CHECK_OK(oq_calib_stats_update(s, b3, 1));
    float emin, emax, l, h;
    oq_calib_stats_ema(s, &emin, &emax);
    /* min: -4, then -4 + 0.25 (0 + 4) = -3, then -3 + 0.25 (-8 + 3) = -4.25;
     * max: 8, then 8 + 0.25 (4 - 8) = 7, then 7 + 0.25 (-8 - 7) = 3.25 */
    CHECK(emin == -4.25f && emax == 3.25f);
    CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
    CHECK(l == -4.25f && h == 3.25f);
    /* two non-empty moving averages cannot be merged; an empty one can */
    oq_calib_stats *t, *e;
    CHECK_OK(oq_calib_stats_new(&o, false, &t));
    CHECK_OK(oq_calib_stats_new(&o, false, &e));
    CHECK_OK(oq_calib_stats_update(t, b1, 2));
    CHECK_ERR(oq_calib_stats_merge(s, t), OQ_E_UNSUPPORTED, "moving averages");
    CHECK_OK(oq_calib_stats_merge(e, s));
    oq_calib_stats_ema(e, &emin, &emax);
    CHECK(emin == -4.25f && emax == 3.25f);
    oq_calib_stats_free(s);
    oq_calib_stats_free(t);
    oq_calib_stats_free(e);
}

/* ---- options and arguments ---- */

static void test_options(void)
{
    oq_calib_method m;
    for (int i = 0; i < 4; i++) {
        const char *name = oq_calib_method_name(methods[i]);
        CHECK(name && oq_calib_method_parse(name, &m) && m == methods[i]);
    }
    CHECK(!oq_calib_method_parse("kl", &m) && !oq_calib_method_parse(NULL, &m));
    CHECK(oq_calib_method_name((oq_calib_method)42) == NULL);
    oq_calib_stats *s = NULL;
    oq_calib_options o = opts(OQ_CALIB_PERCENTILE, 1, false);
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "bins");
    o = opts(OQ_CALIB_PERCENTILE, 2048, false);
    o.levels = 1;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "levels");
    o.levels = 256;
    o.percentile = 0.0;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "percentile");
    o.percentile = NAN;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "percentile");
    o.percentile = 100.5;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "percentile");
    o.percentile = 99.0;
    o.moving_average = 1.5;
    CHECK_ERR(oq_calib_stats_new(&o, true, &s), OQ_E_INVALID, "moving average");
    CHECK(s == NULL);
    /* no values; a histogram method on min/max statistics; mismatched merges */
    o = opts(OQ_CALIB_ENTROPY, 2048, false);
    oq_calib_stats *a, *b, *c;
    CHECK_OK(oq_calib_stats_new(&o, false, &a));
    CHECK_OK(oq_calib_stats_new(&o, true, &b));
    o.bins = 1024;
    CHECK_OK(oq_calib_stats_new(&o, true, &c));
    float l, h, one = 1.0f;
    CHECK_ERR(oq_calib_stats_range(b, &o, &l, &h), OQ_E_INVALID, "no values");
    CHECK_OK(oq_calib_stats_update(a, &one, 1));
    CHECK_ERR(oq_calib_stats_range(a, &o, &l, &h), OQ_E_INVALID, "needs a histogram");
    CHECK_ERR(oq_calib_stats_merge(a, b), OQ_E_INVALID, "with and without");
    CHECK_ERR(oq_calib_stats_merge(b, c), OQ_E_INVALID, "2048 and 1024 bins");
    oq_calib_stats_free(a);
    oq_calib_stats_free(b);
    oq_calib_stats_free(c);
}

/* ---- memory ---- */

static void test_memory(void)
{
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x);
    oq_calib_options o = opts(OQ_CALIB_ENTROPY, 2048, false);
    oq_calib_stats *s, *t;
    CHECK_OK(oq_calib_stats_new(&o, true, &s));
    CHECK_OK(oq_calib_stats_new(&o, true, &t));
    size_t bins0;
    const uint64_t *counts0;
    oq_calib_stats_histogram(s, &bins0, NULL, NULL, &counts0);
    long a0 = n_alloc, f0 = n_free;
    double scale = 1e-6;
    for (int it = 0; it < 2000; it++) { /* 8 million values, ranges growing */
        for (size_t i = 0; i < N; i++)
            x[i] = (float)(scale * gauss());
        scale *= 1.01;
        CHECK_OK(oq_calib_stats_update(it % 2 ? s : t, x, N));
        if (it % 100 == 99)
            CHECK_OK(oq_calib_stats_merge(s, t));
    }
    CHECK(n_alloc == a0 && n_free == f0); /* updates and merges never allocate */
    size_t bins1;
    const uint64_t *counts1;
    oq_calib_stats_histogram(s, &bins1, NULL, NULL, &counts1);
    CHECK(bins1 == bins0 && counts1 == counts0);
    uint64_t count;
    oq_calib_stats_minmax(s, NULL, NULL, &count);
    CHECK(count > 4000000);
    for (int m = 0; m < 4; m++) { /* range computations free what they take */
        float l, h;
        o.method = methods[m];
        long a1 = n_alloc, f1 = n_free;
        CHECK_OK(oq_calib_stats_range(s, &o, &l, &h));
        CHECK(n_alloc - a1 == n_free - f1);
    }
    oq_calib_stats_free(s);
    oq_calib_stats_free(t);
    free(x);
}

/* ---- the table ---- */

static const char *tmpdir;

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A table over three tensors of x[0, n) with options o. */
static void make_table(oq_calib_table *t, const oq_calib_options *o, const float *x, size_t n)
{
    oq_calib_table_init(t, o);
    t->samples = n;
    const char *names[] = {"conv1.out", "relu", "logits"};
    for (int k = 0; k < 3; k++) {
        oq_calib_stats *s;
        CHECK_OK(oq_calib_stats_new(o, true, &s));
        for (size_t i = 0; i < n; i += 100) {
            float buf[100];
            size_t m = n - i < 100 ? n - i : 100;
            for (size_t j = 0; j < m; j++)
                buf[j] = k == 1 ? fmaxf(x[i + j], 0.0f) : x[i + j] * (float)(k + 1);
            CHECK_OK(oq_calib_stats_update(s, buf, m));
        }
        CHECK_OK(oq_calib_table_add(t, names[k], s));
    }
    CHECK_OK(oq_calib_table_compute(t));
}

static bool same_tables(const oq_calib_table *a, const oq_calib_table *b, bool hist)
{
    const oq_calib_options *p = &a->options, *q = &b->options;
    if (a->n != b->n || a->samples != b->samples || p->method != q->method ||
        p->percentile != q->percentile || p->moving_average != q->moving_average ||
        p->symmetric != q->symmetric || p->bins != q->bins || p->levels != q->levels)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const oq_calib_entry *e = &a->entries[i], *f = oq_calib_table_find(b, e->tensor);
        float m1, m2, x1, x2, em1, em2, ex1, ex2;
        uint64_t c1, c2;
        if (!f || e->lo != f->lo || e->hi != f->hi || (hist && !same_stats(e->stats, f->stats)))
            return false;
        oq_calib_stats_minmax(e->stats, &m1, &x1, &c1);
        oq_calib_stats_minmax(f->stats, &m2, &x2, &c2);
        oq_calib_stats_ema(e->stats, &em1, &ex1);
        oq_calib_stats_ema(f->stats, &em2, &ex2);
        if (m1 != m2 || x1 != x2 || c1 != c2 || em1 != em2 || ex1 != ex2)
            return false;
    }
    return true;
}

static void test_table_roundtrip(const float *x, size_t n)
{
    for (int m = 0; m < 4; m++) {
        oq_calib_options o = opts(methods[m], 512, m % 2 == 0);
        oq_calib_table t, u, all, b;
        make_table(&t, &o, x, n / 3);
        t.model = strdup("model.onnx");
        CHECK_OK(oq_calib_table_save(&t, tmp_path("t.json"), true));
        CHECK_OK(oq_calib_table_load(tmp_path("t.json"), &u));
        CHECK(same_tables(&t, &u, true));
        CHECK(u.model && strcmp(u.model, "model.onnx") == 0);
        /* the shards' tables merged equal the table of all the data */
        make_table(&b, &o, x + n / 3, n - n / 3);
        CHECK_OK(oq_calib_table_save(&b, tmp_path("b.json"), true));
        oq_calib_table_clear(&b);
        CHECK_OK(oq_calib_table_load(tmp_path("b.json"), &b));
        CHECK_OK(oq_calib_table_merge(&u, &b));
        make_table(&all, &o, x, n);
        CHECK(same_tables(&u, &all, true));
        /* without histograms only minmax merges */
        CHECK_OK(oq_calib_table_save(&t, tmp_path("nohist.json"), false));
        oq_calib_table_clear(&u);
        CHECK_OK(oq_calib_table_load(tmp_path("nohist.json"), &u));
        CHECK(same_tables(&t, &u, false));
        if (methods[m] == OQ_CALIB_MINMAX)
            CHECK_OK(oq_calib_table_merge(&u, &b));
        else
            CHECK_ERR(oq_calib_table_merge(&u, &b), OQ_E_INVALID, "tensor 'conv1.out'");
        /* tables made with other options do not merge */
        b.options.levels = 16;
        CHECK_ERR(oq_calib_table_merge(&t, &b), OQ_E_INVALID, "differ in method or options");
        oq_calib_table_clear(&t);
        oq_calib_table_clear(&u);
        oq_calib_table_clear(&b);
        oq_calib_table_clear(&all);
    }
}

static void test_table_errors(void)
{
    oq_calib_table t;
    oq_calib_table_init(&t, NULL);
    oq_calib_stats *s;
    CHECK_OK(oq_calib_stats_new(&t.options, false, &s));
    CHECK_OK(oq_calib_table_add(&t, "x", s));
    CHECK_ERR(oq_calib_table_add(&t, "x", s), OQ_E_INVALID, "already");
    CHECK_ERR(oq_calib_table_compute(&t), OQ_E_INVALID, "tensor 'x'");
    oq_calib_table_clear(&t);
    CHECK_ERR(oq_calib_table_load(tmp_path("missing.json"), &t), OQ_E_IO, "missing.json");
    const char *head = "{\"format\": \"onnxq-calibration\", \"version\": 1, \"method\": "
                       "\"percentile\", \"options\": {\"percentile\": 99.9, \"moving_average\": "
                       "0, \"symmetric\": false, \"bins\": 8, \"levels\": 256}, \"samples\": 3, "
                       "\"model\": null, \"tensors\": {\"t\": {\"min\": -1, \"max\": 1, ";
    static const struct {
        const char *tail, *msg;
        oq_status st;
    } cases[] = {
        {"\"lo\": -1, \"hi\": 1, \"count\": 3}}}", NULL, OQ_OK},
        {"\"lo\": 0.5, \"hi\": 1, \"count\": 3}}}", "does not contain zero", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1}}}", "count", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1e39, \"count\": 3}}}", "finite", OQ_E_INVALID},
        /* [-1, 1] in 8 bins: width 2^-2, first -4; -1 and 1 in bins 0 and 8 */
        {"\"lo\": -1, \"hi\": 1, \"count\": 3, \"histogram\": {\"exp2\": -2, \"first\": -4, "
         "\"counts\": [1, 0, 0, 0, 1, 0, 0, 1]}}}}",
         "bin width 2^-2, but", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1, \"count\": 3, \"histogram\": {\"exp2\": -1, \"first\": -2, "
         "\"counts\": [1, 0, 1, 0, 1]}}}}",
         NULL, OQ_OK},
        {"\"lo\": -1, \"hi\": 1, \"count\": 4, \"histogram\": {\"exp2\": -1, \"first\": -2, "
         "\"counts\": [1, 0, 1, 0, 1]}}}}",
         "add up to 3, not to the count 4", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1, \"count\": 3, \"histogram\": {\"exp2\": -1, \"first\": -3, "
         "\"counts\": [1, 0, 1, 0, 1]}}}}",
         "first bin -3", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1, \"count\": 3, \"histogram\": {\"exp2\": -1, \"first\": -2, "
         "\"counts\": [1, 0, 1, -1, 2]}}}}",
         "count 3 is not", OQ_E_INVALID},
        {"\"lo\": -1, \"hi\": 1, \"count\": 3}, \"t\": {}}}", "duplicate", OQ_E_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s", head, cases[i].tail);
        write_text(tmp_path("bad.json"), text);
        if (cases[i].st == OQ_OK) {
            CHECK_OK(oq_calib_table_load(tmp_path("bad.json"), &t));
            CHECK(t.n == 1 && t.options.bins == 8 && t.entries[0].hi == 1.0f);
            oq_calib_table_clear(&t);
        } else {
            CHECK_ERR(oq_calib_table_load(tmp_path("bad.json"), &t), cases[i].st,
                      cases[i].msg);
            CHECK(t.n == 0 && t.entries == NULL);
        }
    }
    write_text(tmp_path("bad.json"), "{\"format\": \"onnxq-calibration\", \"version\": 2}");
    CHECK_ERR(oq_calib_table_load(tmp_path("bad.json"), &t), OQ_E_UNSUPPORTED, "version 2");
    write_text(tmp_path("bad.json"), "{\"format\": \"other\"}");
    CHECK_ERR(oq_calib_table_load(tmp_path("bad.json"), &t), OQ_E_INVALID, "not a calibration");
    write_text(tmp_path("bad.json"), "{\"format\": ");
    CHECK_ERR(oq_calib_table_load(tmp_path("bad.json"), &t), OQ_E_INVALID, "not valid JSON");
}

int main(void)
{
    char dir[] = "/tmp/onnxq-test-calib-XXXXXX";
    tmpdir = mkdtemp(dir);
    if (!tmpdir) {
        perror("mkdtemp");
        return 1;
    }
    test_definition();
    test_merge_one_pass();
    test_rebin();
    test_nonfinite();
    test_constant();
    test_hand_ranges();
    test_moving_average();
    test_options();
    test_memory();
    enum { N = 30000 };
    float *x = malloc(N * sizeof *x);
    for (size_t i = 0; i < N; i++)
        x[i] = gauss() + (i % 1000 == 0 ? 20.0f : 0.0f);
    test_table_roundtrip(x, N);
    free(x);
    test_table_errors();
    const char *files[] = {"t.json", "b.json", "nohist.json", "bad.json"};
    for (int i = 0; i < 4; i++)
        unlink(tmp_path(files[i]));
    rmdir(tmpdir);
    return TEST_SUMMARY();
}
