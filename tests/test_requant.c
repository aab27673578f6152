/* Requantization (runtime/kernels/requant.c), in the spirit of QNNPACK's
 * requantization testers:
 *   - gemmlowp's fixed-point primitives on hand-derived values;
 *   - the fixed-point multiplier is exactly the float multiplier;
 *   - float mode: exact ties round half to even, power-of-two scales,
 *     saturation at both ends for zero points 0/128/255 (uint8) and
 *     -128/0/127 (int8);
 *   - float mode against an independent double-precision computation of
 *     the same formula, for scales from 1e-6 to 1e3, wherever the float
 *     rounding cannot matter (the exact product is not within 2^-22
 *     relative of a .5 boundary);
 *   - fixed mode against float mode on random layers (uint8 activations,
 *     int8 per-channel weights, multipliers below and above 1): never more
 *     than 1 LSB apart, and both equal to the exact rounding wherever the
 *     exact value is not near a tie. The number of 1-LSB differences is
 *     printed. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/requant.h"
#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#include "testrng.h"

/* Uniform in [lo, hi]. */
static int32_t irand(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(next_u64() % (uint64_t)((int64_t)hi - lo + 1));
}
/* Log-uniform in [lo, hi], rounded to float. */
static float lograndf(double lo, double hi)
{
    double u = (double)(next_u64() >> 11) / 9007199254740992.0;
    return (float)exp(log(lo) + u * (log(hi) - log(lo)));
}

static int32_t clampi(double v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* ---- fixed-point primitives ---- */

static void test_primitives(void)
{
    const int32_t h = 1 << 30; /* 0.5 in Q31 */
    CHECK(oq_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX);
    CHECK(oq_srdhm(h, h) == 1 << 29);        /* 2^60 / 2^31 */
    /* gemmlowp's nudge rounds ties upward: 0.5 -> 1, -0.5 -> 0 */
    CHECK(oq_srdhm(1, h) == 1);
    CHECK(oq_srdhm(-1, h) == 0);
    CHECK(oq_srdhm(3, h) == 2);              /* 1.5 */
    CHECK(oq_srdhm(-3, h) == -1);
    CHECK(oq_srdhm(-5, h / 2) == -1);        /* -1.25 */
    CHECK(oq_srdhm(-7, h / 2) == -2);        /* -1.75 */
    CHECK(oq_srdhm(5, h / 2) == 1);          /* 1.25 */
    CHECK(oq_srdhm(INT32_MAX, INT32_MAX) == INT32_MAX - 1);
    CHECK(oq_rdbpot(5, 1) == 3);             /* 2.5 */
    CHECK(oq_rdbpot(-5, 1) == -3);
    CHECK(oq_rdbpot(4, 1) == 2);
    CHECK(oq_rdbpot(6, 2) == 2);             /* 1.5 */
    CHECK(oq_rdbpot(-6, 2) == -2);
    CHECK(oq_rdbpot(5, 2) == 1);             /* 1.25 */
    CHECK(oq_rdbpot(7, 2) == 2);             /* 1.75 */
    CHECK(oq_rdbpot(-7, 2) == -2);
    CHECK(oq_rdbpot(123, 0) == 123);
    CHECK(oq_rdbpot(INT32_MAX, 31) == 1);
    CHECK(oq_rdbpot(INT32_MIN, 31) == -1);
}

static void test_multiplier(void)
{
    oq_qfixed f = oq_qfixed_from_float(1.0f);
    CHECK(f.mult == 1 << 30 && f.shift == 1);
    f = oq_qfixed_from_float(0.5f);
    CHECK(f.mult == 1 << 30 && f.shift == 0);
    f = oq_qfixed_from_float(0.75f);
    CHECK(f.mult == 1610612736 && f.shift == 0);
    f = oq_qfixed_from_float(ldexpf(1.0f, -10));
    CHECK(f.mult == 1 << 30 && f.shift == -9);
    f = oq_qfixed_from_float(3.0f);
    CHECK(f.mult == 1610612736 && f.shift == 2);
    CHECK(oq_qfixed_from_float(0.0f).mult == 0);
    CHECK(oq_qfixed_from_float(-1.0f).mult == 0);
    CHECK(oq_qfixed_from_float(NAN).mult == 0);
    CHECK(oq_qfixed_from_float(INFINITY).mult == 0);
    int exact = 0;
    for (int i = 0; i < 100000; i++) {
        float m = lograndf(1e-12, 1e6);
        f = oq_qfixed_from_float(m);
        exact += f.mult >= 1 << 30 && ldexp((double)f.mult, f.shift - 31) == (double)m;
    }
    CHECK(exact == 100000);
    /* a multiplier far below any accumulator's reach rounds everything to 0 */
    f = oq_qfixed_from_float(1e-12f);
    CHECK(oq_requant_fixed_round(INT32_MAX, f) == 0 && oq_requant_fixed_round(INT32_MIN, f) == 0);
    /* and one far above saturates anything but 0 */
    f = oq_qfixed_from_float(1e12f);
    CHECK(oq_requant_fixed1(1, f, 0, -128, 127) == 127);
    CHECK(oq_requant_fixed1(-1, f, 0, -128, 127) == -128);
    CHECK(oq_requant_fixed1(0, f, 3, -128, 127) == 3);
}

/* ---- float mode ---- */

static const int32_t zp_u8[] = {0, 128, 255}, zp_s8[] = {-128, 0, 127};

static void test_ties(void)
{
    /* acc * 0.5 is exactly x.5 for odd acc: half to even in float mode; in
     * fixed mode (no right shift after the high multiply) ties go upward */
    static const int32_t acc[] = {1, 3, 5, 7, -1, -3, -5, -7, 2, -2};
    static const int32_t even[] = {0, 2, 2, 4, 0, -2, -2, -4, 1, -1};
    static const int32_t away[] = {1, 2, 3, 4, 0, -1, -2, -3, 1, -1};
    oq_qfixed half = oq_qfixed_from_float(0.5f);
    for (int i = 0; i < 10; i++) {
        CHECK(oq_requant_float1(acc[i], 0.5f, 0, -128, 127) == even[i]);
        CHECK(oq_requant_float1(acc[i], 0.5f, 128, 0, 255) == even[i] + 128);
        CHECK(oq_requant_fixed1(acc[i], half, 0, -128, 127) == away[i]);
        CHECK(oq_requant_fixed1(acc[i], half, 128, 0, 255) == away[i] + 128);
    }
    /* 2.5 with a scale of 1/4: 10 * 0.25 */
    CHECK(oq_requant_float1(10, 0.25f, 0, -128, 127) == 2);
    CHECK(oq_requant_float1(-10, 0.25f, 0, -128, 127) == -2);
    CHECK(oq_requant_float1(14, 0.25f, 0, -128, 127) == 4);
}

/* Whether the exact value d is within rel (relative) or abs (absolute) of a
 * .5 boundary. */
static bool near_tie2(double d, double rel, double abs_tol)
{
    double f = d - floor(d);
    return fabs(f - 0.5) <= rel * fabs(d) + abs_tol;
}

static bool near_tie(double d, double rel) { return near_tie2(d, rel, 1e-300); }

static void test_pow2(void)
{
    int bad = 0, n = 0;
    for (int k = -8; k <= 24; k++) {
        float m = ldexpf(1.0f, -k);
        oq_qfixed f = oq_qfixed_from_float(m);
        for (int i = 0; i < 2000; i++) {
            int32_t acc = irand(-(1 << 24), 1 << 24);
            for (int z = 0; z < 3; z++) {
                /* exact in double: ldexp and nearbyint (half to even) */
                double d = nearbyint(ldexp((double)acc, -k));
                int32_t ref8 = clampi(d + zp_s8[z], -128, 127);
                int32_t refu = clampi(d + zp_u8[z], 0, 255);
                bad += oq_requant_float1(acc, m, zp_s8[z], -128, 127) != ref8;
                bad += oq_requant_float1(acc, m, zp_u8[z], 0, 255) != refu;
                /* the fixed mode rounds twice (high multiply, then the shift):
                 * compared wherever that cannot matter */
                double ex = ldexp((double)acc, -k);
                if (!near_tie2(ex, 0, ldexp(1.0, -(k > 0 ? k : 0) - 1) * 1.01))
                    bad += oq_requant_fixed1(acc, f, zp_u8[z], 0, 255) != refu;
                n += 3;
            }
        }
    }
    CHECK(bad == 0);
    printf("powers of two: %d values, %d mismatches\n", n, bad);
}

static void test_saturation(void)
{
    static const float ms[] = {1e-6f, 1e-3f, 0.5f, 1.0f, 7.0f, 1e3f};
    for (int s = 0; s < 6; s++) {
        oq_qfixed f = oq_qfixed_from_float(ms[s]);
        for (int z = 0; z < 3; z++) {
            CHECK(oq_requant_float1(INT32_MAX, ms[s], zp_u8[z], 0, 255) == 255);
            CHECK(oq_requant_float1(INT32_MIN, ms[s], zp_u8[z], 0, 255) == 0);
            CHECK(oq_requant_float1(INT32_MAX, ms[s], zp_s8[z], -128, 127) == 127);
            CHECK(oq_requant_float1(INT32_MIN, ms[s], zp_s8[z], -128, 127) == -128);
            CHECK(oq_requant_fixed1(INT32_MAX, f, zp_u8[z], 0, 255) == 255);
            CHECK(oq_requant_fixed1(INT32_MIN, f, zp_u8[z], 0, 255) == 0);
            CHECK(oq_requant_fixed1(INT32_MAX, f, zp_s8[z], -128, 127) == 127);
            CHECK(oq_requant_fixed1(INT32_MIN, f, zp_s8[z], -128, 127) == -128);
        }
    }
    /* the exact edges with a scale of 1 */
    oq_qfixed one = oq_qfixed_from_float(1.0f);
    static const struct { int32_t acc, zp, lo, hi, want; } e[] = {
        {255, 0, 0, 255, 255}, {256, 0, 0, 255, 255}, {-1, 0, 0, 255, 0},
        {0, 255, 0, 255, 255}, {-255, 255, 0, 255, 0}, {-256, 255, 0, 255, 0},
        {1, 255, 0, 255, 255}, {127, 128, 0, 255, 255}, {128, 128, 0, 255, 255},
        {-128, 128, 0, 255, 0}, {-129, 128, 0, 255, 0}, {255, -128, -128, 127, 127},
        {256, -128, -128, 127, 127}, {-1, -128, -128, 127, -128}, {0, 127, -128, 127, 127},
        {-255, 127, -128, 127, -128}, {-256, 127, -128, 127, -128}, {127, 0, -128, 127, 127},
        {128, 0, -128, 127, 127}, {-128, 0, -128, 127, -128}, {-129, 0, -128, 127, -128},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        CHECK(oq_requant_float1(e[i].acc, 1.0f, e[i].zp, e[i].lo, e[i].hi) == e[i].want);
        CHECK(oq_requant_fixed1(e[i].acc, one, e[i].zp, e[i].lo, e[i].hi) == e[i].want);
    }
    /* a NaN product (never from valid scales) clamps to the low end, as MAXPS */
    CHECK(oq_requant_float1(1, NAN, 10, 0, 255) == 0);
}

static void test_float_vs_double(void)
{
    int n = 0, skipped = 0, bad = 0;
    for (int i = 0; i < 400000; i++) {
        float m = lograndf(1e-6, 1e3);
        /* accumulators whose product lands in and around the output range */
        double span = 600.0 / m;
        int32_t lim = span > (1 << 24) ? 1 << 24 : (int32_t)span + 1;
        int32_t acc = irand(-lim, lim);
        double d = (double)acc * (double)m; /* exact to 2^-53 relative */
        if (near_tie(d, ldexp(1.0, -22))) {
            skipped++;
            continue;
        }
        int z = (int)(next_u64() % 3);
        double r = nearbyint(d);
        bad += oq_requant_float1(acc, m, zp_u8[z], 0, 255) != clampi(r + zp_u8[z], 0, 255);
        bad += oq_requant_float1(acc, m, zp_s8[z], -128, 127) != clampi(r + zp_s8[z], -128, 127);
        n += 2;
    }
    CHECK(bad == 0);
    CHECK(skipped < 4000); /* near-ties are rare: the comparison covers almost all */
    printf("float mode vs double: %d values, %d mismatches, %d near-ties skipped\n", n, bad,
           skipped);
}

/* ---- fixed mode against float mode on random layers ---- */

typedef struct layer_stats {
    long n, diff1, diff_more, off_exact;
} layer_stats;

/* One layer: uint8 x (zero point zx), int8 symmetric per-channel weights,
 * int32 bias; per output channel c the multiplier (xs * ws[c]) / ys. */
static void random_layer(int k, int channels, int outputs, float ys_factor, layer_stats *st)
{
    float xs = lograndf(1e-3, 0.1);
    int32_t zx = irand(0, 255), zy = irand(0, 255);
    int8_t *w = malloc((size_t)k);
    uint8_t *x = malloc((size_t)k);
    for (int c = 0; c < channels; c++) {
        float ws = lograndf(1e-4, 1e-2);
        /* an output scale giving outputs over a few hundred LSB, times the factor */
        float ys = (float)(xs * ws * 127.0 * 128.0 * sqrt((double)k) / 400.0) * ys_factor;
        float m = xs * ws / ys;
        oq_qfixed f = oq_qfixed_from_float(m);
        int right = f.shift < 0 ? -f.shift : 0;
        for (int i = 0; i < k; i++)
            w[i] = (int8_t)irand(-127, 127);
        int32_t bias = irand(-20000, 20000);
        for (int o = 0; o < outputs; o++) {
            int64_t acc = bias;
            for (int i = 0; i < k; i++) {
                x[i] = (uint8_t)irand(0, 255);
                acc += (int64_t)(x[i] - zx) * w[i];
            }
            int32_t a = (int32_t)acc;
            int32_t yf = oq_requant_float1(a, m, zy, 0, 255);
            int32_t yx = oq_requant_fixed1(a, f, zy, 0, 255);
            double d = (double)a * (double)m;
            int32_t ex = clampi(nearbyint(d) + zy, 0, 255);
            st->n++;
            st->diff1 += abs(yf - yx) == 1;
            st->diff_more += abs(yf - yx) > 1;
            /* float: one rounding of the product (2^-24 relative); fixed: the
             * high multiply rounds to 2^-(right+1) of an output unit */
            if (!near_tie(d, ldexp(1.0, -21)))
                st->off_exact += yf != ex;
            if (!near_tie2(d, ldexp(1.0, -21), ldexp(1.0, -right - 1) * 1.01))
                st->off_exact += yx != ex;
        }
    }
    free(w);
    free(x);
}

static void test_fixed_vs_float(void)
{
    static const int ks[] = {1, 9, 27, 64, 147, 576, 1152, 2304, 4608};
    static const float factors[] = {1.0f, 0.05f, 0.002f, 20.0f};
    layer_stats st = {0, 0, 0, 0};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++)
            random_layer(ks[i], 16, 400, factors[f], &st);
    /* multipliers of 1 and above (a left shift before the high multiply),
     * accumulators small enough to stay in range */
    layer_stats big = {0, 0, 0, 0};
    for (int r = 0; r < 50000; r++) {
        float m = lograndf(1.0, 100.0);
        oq_qfixed f = oq_qfixed_from_float(m);
        int32_t lim = (int32_t)(300.0f / m) + 1, acc = irand(-lim, lim);
        int32_t zy = zp_u8[r % 3];
        int32_t yf = oq_requant_float1(acc, m, zy, 0, 255);
        int32_t yx = oq_requant_fixed1(acc, f, zy, 0, 255);
        double d = (double)acc * (double)m;
        int32_t ex = clampi(nearbyint(d) + zy, 0, 255);
        big.n++;
        big.diff1 += abs(yf - yx) == 1;
        big.diff_more += abs(yf - yx) > 1;
        big.off_exact += !near_tie(d, ldexp(1.0, -21)) && (yf != ex || yx != ex);
    }
    CHECK(st.diff_more == 0 && big.diff_more == 0);
    CHECK(st.off_exact == 0 && big.off_exact == 0);
    CHECK(st.diff1 * 100 < st.n); /* differences only near ties */
    printf("fixed vs float on random layers: %ld outputs, %ld differ by 1 LSB, %ld by more; "
           "multipliers >= 1: %ld outputs, %ld differ by 1 LSB\n",
           st.n, st.diff1, st.diff_more, big.n, big.diff1);
}

static void test_vector(void)
{
    /* oq_requant_ref: per-element and shared multipliers, 1- and 2-byte outputs */
    int32_t acc[4] = {10, -10, 1000, 3};
    float m[4] = {0.5f, 0.5f, 0.25f, 1.0f};
    oq_qfixed fm[4];
    for (int i = 0; i < 4; i++)
        fm[i] = oq_qfixed_from_float(m[i]);
    uint8_t y8[4];
    oq_requant_out o = {OQ_REQUANT_FLOAT, 1, 0, 255, 100};
    oq_requant_ref(acc, 4, m, fm, 1, &o, y8);
    CHECK(y8[0] == 105 && y8[1] == 95 && y8[2] == 255 && y8[3] == 103);
    oq_requant_ref(acc, 4, m, fm, 0, &o, y8); /* all with 0.5 */
    CHECK(y8[0] == 105 && y8[1] == 95 && y8[2] == 255 && y8[3] == 102);
    o.mode = OQ_REQUANT_FIXED;
    oq_requant_ref(acc, 4, m, fm, 0, &o, y8); /* 1.5 rounds away from zero */
    CHECK(y8[0] == 105 && y8[1] == 95 && y8[2] == 255 && y8[3] == 102);
    int16_t y16[4];
    oq_requant_out o16 = {OQ_REQUANT_FLOAT, 2, INT16_MIN, INT16_MAX, -5};
    oq_requant_ref(acc, 4, m, fm, 1, &o16, y16);
    CHECK(y16[0] == 0 && y16[1] == -10 && y16[2] == 245 && y16[3] == -2);
    int32_t lo, hi;
    CHECK(oq_qrange(OQ_UINT16, &lo, &hi) && lo == 0 && hi == 65535);
    CHECK(!oq_qrange(OQ_INT32, &lo, &hi));
}

int main(void)
{
    test_primitives();
    test_multiplier();
    test_ties();
    test_pow2();
    test_saturation();
    test_float_vs_double();
    test_fixed_vs_float();
    test_vector();
    return TEST_SUMMARY();
}
