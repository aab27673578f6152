/* The 8-bit product's micro-kernels of every ISA this CPU runs (portable C,
 * AVX2, AVX-512 VNNI) against the plain reference loops of qgemm_ref.c and
 * requant.c, output for output, bit for bit:
 *   - both arrangements (conv: int8 weights on the left, uint8 on the
 *     right; matmul: uint8 left, int8 right), M, N, K from 1 to 70 with
 *     primes, every output kind (int32, requantized uint8/int8 in the float
 *     and fixed modes, float), with and without bias and zero-point terms,
 *     per-tensor and per-channel parameters;
 *   - the full flip (kernels/qkern.h) for uint8 x uint8, int8 x int8,
 *     int8 x uint8 with zero points, against sum (a - za)(b - zb);
 *   - saturation extremes (every operand at its limit, K large,
 *     multipliers that saturate, an infinite one), ties in the
 *     requantization (multipliers that are powers of two);
 *   - the implicit convolution (phase planes, offsets) against im2col and
 *     the reference product, strides, dilations, pads;
 *   - the direct depthwise kernels (over planes, and straight from the
 *     image with int8 taps) against a naive convolution.
 * With ONNXQ_ISA set, only that ISA (exit 77, skipped, when this CPU or
 * build lacks it); otherwise every ISA available. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/isa.h"
#include "kernels/qgemm.h"
#include "kernels/qkern.h"
#include "kernels/requant.h"
#include "onnxq/runtime.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "testrng.h"

static uint32_t rnd(void) { return (uint32_t)(next_u64() >> 16); }
static int32_t rnd_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static const oq_qkern *kerns[OQ_ISA_COUNT];
static int nkerns;

/* Multipliers of several kinds: random, powers of two (ties), tiny, huge. */
static float pick_mult(int kind)
{
    switch (kind % 5) {
    case 0: return ldexpf(1.0f, -rnd_in(1, 12)); /* ties: acc * 2^-e exactly .5 */
    case 1: return (float)rnd_in(1, 1 << 20) * 1e-9f;
    case 2: return (float)rnd_in(1, 1000) * 1e-4f;
    case 3: return 3e38f; /* saturates (0 * m = 0) */
    default: return (float)rnd_in(1, 100) * 0.01f;
    }
}

static void fill(uint8_t *p, size_t n, int extreme, bool is_signed)
{
    for (size_t i = 0; i < n; i++) {
        if (extreme == 1)
            p[i] = is_signed ? 0x80 : 0xff; /* -128 or 255 */
        else if (extreme == 2)
            p[i] = is_signed ? 0x7f : 0xff;
        else
            p[i] = (uint8_t)rnd();
    }
}

/* The expected output of element (i, j) from an int32 v (already with every
 * term), through the scalar reference of each kind. */
static bool same_out(const oq_qout *o, size_t i, size_t j, int32_t v, const void *got)
{
    size_t ch = o->chan_cols ? j : i, at = i * o->ldc + j;
    switch (o->kind) {
    case OQ_QOUT_I32:
        return ((const int32_t *)got)[at] == v;
    case OQ_QOUT_F32: {
        float want = (float)v * o->mult[ch], g = ((const float *)got)[at];
        return memcmp(&want, &g, sizeof g) == 0;
    }
    default: {
        oq_requant_out ro = {o->mode, 1, o->qmin, o->qmax, o->zp};
        uint8_t want;
        oq_requant_ref(&v, 1, o->mult + ch, o->fixed + ch, 0, &ro, &want);
        return ((const uint8_t *)got)[at] == want;
    }
    }
}

static size_t elem_size(int kind) { return kind == OQ_QOUT_Q8 ? 1 : 4; }

/* ---- the kernels' contract, both arrangements ---- */

typedef struct gcase {
    size_t m, n, k;
    bool vec_signed;
    int kind, mode;
    bool bias, zch, yz_signed;
    int extreme, mult_kind;
} gcase;

/* Runs one case on every kernel; the reference: oq_qgemm_ref on the same
 * values, then the fixup loops of qgemm_ref.c, then requant.c. */
static void gemm_case(const gcase *c)
{
    size_t m = c->m, n = c->n, k = c->k, k4 = (k + 3) / 4, ldn = (n + 15) & ~(size_t)15;
    bool a_signed = !c->vec_signed, b_signed = c->vec_signed;
    uint8_t *a = malloc(m * k + 1), *b = malloc(k * n + 1);
    fill(a, m * k, c->extreme, a_signed);
    fill(b, k * n, c->extreme == 1 ? 2 : c->extreme, b_signed);
    size_t chans = c->vec_signed ? n : m, others = c->vec_signed ? m : n;
    int32_t *bias = malloc(chans * 4 + 4), *zch = malloc(chans * 4 + 4);
    int32_t *sums = malloc(others * 4 + 4);
    float *mult = malloc(chans * sizeof(float) + 4);
    oq_qfixed *fixed = malloc(chans * sizeof(oq_qfixed) + 8);
    bool per_channel = rnd() % 2;
    for (size_t i = 0; i < chans; i++) {
        bias[i] = (int32_t)rnd() >> (rnd() % 32);
        zch[i] = rnd() % 3 == 0 ? 0 : rnd_in(-255, 255);
        mult[i] = per_channel || i == 0 ? pick_mult(c->mult_kind) : mult[0];
        fixed[i] = oq_qfixed_from_float(mult[i]);
    }
    for (size_t i = 0; i < others; i++)
        sums[i] = (int32_t)rnd() >> (rnd() % 32);
    /* reference int32 */
    int32_t *ref = malloc(m * n * 4 + 4);
    oq_qmat am = {a, k, a_signed}, bm = {b, n, b_signed};
    oq_qgemm_ref(m, n, k, am, bm, ref, n);
    if (c->vec_signed)
        oq_qfixup_cols_ref(m, n, k, ref, n, c->bias ? bias : NULL, c->zch ? zch : NULL, sums,
                           NULL, NULL);
    else
        oq_qfixup_rows_ref(m, n, ref, n, c->bias ? bias : NULL, c->zch ? zch : NULL, sums);
    oq_qout o = {
        .kind = c->kind, .mode = c->mode, .chan_cols = c->vec_signed,
        .bias = c->bias ? bias : NULL, .zch = c->zch ? zch : NULL, .sums = sums,
        .mult = mult, .fixed = fixed, .zp = c->yz_signed ? rnd_in(-128, 127) : rnd_in(0, 255),
        .qmin = c->yz_signed ? -128 : 0, .qmax = c->yz_signed ? 127 : 255, .ldc = n,
    };
    uint8_t *bp = malloc(k4 * ldn * 4 + 64);
    oq_qpack_right(k, n, b, n, 1, false, b_signed, bp, ldn, NULL);
    ptrdiff_t *boff = malloc((k4 + 1) * sizeof *boff);
    for (size_t kk = 0; kk < k4; kk++)
        boff[kk] = (ptrdiff_t)(kk * ldn * 4);
    void *out = malloc(m * n * 4 + 4);
    for (int ki = 0; ki < nkerns; ki++) {
        const oq_qkern *kern = kerns[ki];
        void *ap = malloc(oq_qpack_left_bytes(kern, m, k4) + 1);
        oq_qpack_left(kern, m, k, a, k, 1, false, a_signed, ap, NULL);
        memset(out, 0xa5, m * n * elem_size(c->kind));
        o.c = out;
        oq_qgemm_run(kern, m, n, k4, ap, bp, boff, c->vec_signed, &o, 1 + (int)(rnd() % 2));
        size_t bad = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                bad += !same_out(&o, i, j, ref[i * n + j], out);
        if (bad)
            fprintf(stderr, "%s: %zux%zux%zu %s kind %d mode %d bias %d zch %d extreme %d: "
                    "%zu outputs differ\n", kern->name, m, n, k,
                    c->vec_signed ? "matmul" : "conv", c->kind, c->mode, c->bias, c->zch,
                    c->extreme, bad);
        CHECK(bad == 0);
        free(ap);
    }
    free(a), free(b), free(bias), free(zch), free(sums), free(mult), free(fixed), free(ref);
    free(bp), free(boff), free(out);
}

static void test_gemm(void)
{
    static const size_t dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 47, 48,
                                  49, 53, 61, 64, 67, 70};
    const size_t nd = sizeof dims / sizeof dims[0];
    int cases = 0;
    for (int t = 0; t < 900; t++) {
        gcase c = {
            .m = dims[rnd() % nd], .n = dims[rnd() % nd], .k = dims[rnd() % nd],
            .vec_signed = rnd() % 2, .kind = (int)(rnd() % 3),
            .mode = rnd() % 3 == 0 ? OQ_REQUANT_FIXED : OQ_REQUANT_FLOAT,
            .bias = rnd() % 4 != 0, .zch = rnd() % 2, .yz_signed = rnd() % 2,
            .extreme = rnd() % 8 == 0 ? (int)(1 + rnd() % 2) : 0, .mult_kind = (int)(rnd() % 5),
        };
        gemm_case(&c);
        cases++;
    }
    /* saturation: every operand at its limit over a long K */
    for (int vs = 0; vs < 2; vs++)
        for (int ex = 1; ex <= 2; ex++)
            for (int kind = 0; kind < 3; kind++) {
                gcase c = {67, 53, 1031, vs, kind, OQ_REQUANT_FLOAT, true, true, vs, ex, 4};
                gemm_case(&c);
                c.mode = OQ_REQUANT_FIXED;
                c.mult_kind = 3;
                gemm_case(&c);
                cases += 2;
            }
    printf("gemm: %d cases on %d kernels\n", cases, nkerns);
}

/* ---- operand flips: sum (a - za)(b - zb) for every dtype pair ---- */

static void flip_case(bool a_s8, bool b_s8, size_t m, size_t n, size_t k)
{
    uint8_t *a = malloc(m * k + 1), *b = malloc(k * n + 1);
    fill(a, m * k, 0, a_s8);
    fill(b, k * n, 0, b_s8);
    int32_t za = a_s8 ? rnd_in(-128, 127) : rnd_in(0, 255);
    int32_t *zb = malloc(n * 4), *ref = malloc(m * n * 4), *colsum = malloc(n * 4);
    int32_t *rowsum = malloc(m * 4), *bias = malloc(n * 4);
    for (size_t j = 0; j < n; j++)
        zb[j] = b_s8 ? rnd_in(-128, 127) : rnd_in(0, 255);
    /* reference: the plain product with the terms of qgemm.h, original values */
    oq_qmat am = {a, k, a_s8}, bm = {b, n, b_s8};
    oq_qgemm_ref(m, n, k, am, bm, ref, n);
    oq_qrowsum_ref(m, k, am, rowsum);
    oq_qcolsum_ref(k, n, bm, colsum);
    int32_t *zrow = malloc(m * 4);
    for (size_t i = 0; i < m; i++)
        zrow[i] = za;
    oq_qfixup_cols_ref(m, n, k, ref, n, NULL, zb, rowsum, zrow, colsum);
    /* the kernels: uint8 a, int8 b after flips, zero points moved by 128 */
    bool fa = a_s8, fb = !b_s8;
    uint32_t za2 = (uint32_t)(za + (fa ? 128 : 0));
    size_t k4 = (k + 3) / 4, ldn = (n + 15) & ~(size_t)15;
    uint8_t *bp = malloc(k4 * ldn * 4 + 64);
    oq_qpack_right(k, n, b, n, 1, fb, true, bp, ldn, colsum);
    int32_t *zb2 = malloc(n * 4);
    for (size_t j = 0; j < n; j++) {
        zb2[j] = zb[j] - (fb ? 128 : 0);
        bias[j] = (int32_t)((uint32_t)k * za2 * (uint32_t)zb2[j] - za2 * (uint32_t)colsum[j]);
    }
    ptrdiff_t *boff = malloc((k4 + 1) * sizeof *boff);
    for (size_t kk = 0; kk < k4; kk++)
        boff[kk] = (ptrdiff_t)(kk * ldn * 4);
    int32_t *out = malloc(m * n * 4);
    for (int ki = 0; ki < nkerns; ki++) {
        const oq_qkern *kern = kerns[ki];
        void *ap = malloc(oq_qpack_left_bytes(kern, m, k4) + 1);
        oq_qpack_left(kern, m, k, a, k, 1, fa, false, ap, rowsum);
        oq_qout o = {.kind = OQ_QOUT_I32, .chan_cols = true, .bias = bias, .zch = zb2,
                     .sums = rowsum, .c = out, .ldc = n};
        oq_qgemm_run(kern, m, n, k4, ap, bp, boff, true, &o, 1);
        CHECK(memcmp(out, ref, m * n * 4) == 0);
        free(ap);
    }
    free(a), free(b), free(zb), free(ref), free(colsum), free(rowsum), free(bias), free(zrow);
    free(bp), free(zb2), free(boff), free(out);
}

static void test_flips(void)
{
    for (int t = 0; t < 4; t++)
        for (int as = 0; as < 2; as++)
            for (int bs = 0; bs < 2; bs++)
                flip_case(as, bs, (size_t)rnd_in(1, 40), (size_t)rnd_in(1, 40),
                          (size_t)rnd_in(1, 70));
}

/* ---- the implicit convolution ---- */

static void conv_case(size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                      size_t dh, size_t dw, size_t pt, size_t pl, size_t pb, size_t pr,
                      size_t m)
{
    size_t oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1;
    size_t ow = (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1;
    oq_conv_geom g = {.nd = 2};
    int64_t in[2] = {(int64_t)h, (int64_t)w}, od[2] = {(int64_t)oh, (int64_t)ow};
    int64_t kk[2] = {(int64_t)kh, (int64_t)kw}, st[2] = {(int64_t)sh, (int64_t)sw};
    int64_t dl[2] = {(int64_t)dh, (int64_t)dw}, pd[2] = {(int64_t)pt, (int64_t)pl};
    memcpy(g.in, in, sizeof in), memcpy(g.out, od, sizeof od), memcpy(g.k, kk, sizeof kk);
    memcpy(g.stride, st, sizeof st), memcpy(g.dil, dl, sizeof dl), memcpy(g.pad, pd, sizeof pd);
    size_t kd = c * kh * kw, p = oh * ow;
    uint8_t *x = malloc(c * h * w), *wt = malloc(m * kd), zx = (uint8_t)rnd();
    fill(x, c * h * w, 0, false);
    fill(wt, m * kd, 0, true);
    /* reference: im2col, the plain product; flip: the image of x with its
     * top bit flipped is that of xf = x ^ 0x80 */
    bool flip = rnd() % 2;
    uint8_t *xf = malloc(c * h * w);
    for (size_t i = 0; i < c * h * w; i++)
        xf[i] = x[i] ^ (flip ? 0x80 : 0);
    uint8_t *col = malloc(kd * p);
    int32_t *ref = malloc(m * p * 4);
    oq_qim2col_ref(&g, (int64_t)c, xf, zx, col, p);
    oq_qmat wm = {wt, kd, true}, cm = {col, p, false};
    oq_qgemm_ref(m, p, kd, wm, cm, ref, p);
    oq_qconv_plan pl_;
    CHECK(oq_qconv_plan_init(&pl_, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow));
    uint8_t *img = malloc(oq_qconv_image_bytes(&pl_) + 64);
    uint8_t *rows = malloc(2 * oq_qconv_row_bytes(&pl_));
    oq_qconv_image(&pl_, x, flip, zx, img, rows, 2);
    free(rows);
    ptrdiff_t *boff = malloc(pl_.k4 * sizeof *boff);
    oq_qconv_offsets(&pl_, boff);
    uint8_t *wr = malloc(m * pl_.k4 * 4);
    oq_qconv_reorder(&pl_, m, wt, false, false, wr);
    int32_t *out = malloc(m * pl_.q * 4);
    /* the same columns without those past each row (oq_qconv_compact) */
    uint8_t *cmp = malloc(pl_.k4 * p * 4 + 64);
    ptrdiff_t *coff = malloc(pl_.k4 * sizeof *coff);
    memset(cmp + pl_.k4 * p * 4, 0, 64);
    oq_qconv_compact(&pl_, img, boff, cmp, 2);
    for (size_t kk = 0; kk < pl_.k4; kk++)
        coff[kk] = (ptrdiff_t)(kk * p * 4);
    for (int ki = 0; ki < nkerns; ki++) {
        const oq_qkern *kern = kerns[ki];
        void *ap = malloc(oq_qpack_left_bytes(kern, m, pl_.k4));
        oq_qpack_left(kern, m, pl_.k4 * 4, wr, pl_.k4 * 4, 1, false, true, ap, NULL);
        oq_qout o = {.kind = OQ_QOUT_I32, .c = out, .ldc = pl_.q};
        oq_qgemm_run(kern, m, pl_.q, pl_.k4, ap, img, boff, false, &o, 2);
        size_t bad = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t y = 0; y < oh; y++)
                for (size_t xx = 0; xx < ow; xx++)
                    bad += out[i * pl_.q + y * pl_.ws + xx] != ref[i * p + y * ow + xx];
        if (bad)
            fprintf(stderr, "%s: conv c%zu %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu,%zu,%zu "
                    "m%zu: %zu differ\n", kern->name, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl,
                    pb, pr, m, bad);
        CHECK(bad == 0);
        oq_qgemm_run(kern, m, p, pl_.k4, ap, cmp, coff, false, &o, 2);
        bad = 0;
        for (size_t i = 0; i < m * p; i++)
            bad += out[i / p * pl_.q + i % p] != ref[i];
        if (bad)
            fprintf(stderr, "%s: compact conv c%zu %zux%zu k%zux%zu s%zu,%zu: %zu differ\n",
                    kern->name, c, h, w, kh, kw, sh, sw, bad);
        CHECK(bad == 0);
        free(ap);
    }
    free(cmp), free(coff);
    free(x), free(xf), free(wt), free(col), free(ref), free(img), free(boff), free(wr), free(out);
}

static void test_conv(void)
{
    conv_case(64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16);
    conv_case(5, 9, 11, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 7);
    conv_case(3, 17, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 9);
    conv_case(6, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 5);
    conv_case(7, 9, 12, 5, 2, 3, 2, 1, 3, 0, 2, 1, 0, 11);
    conv_case(8, 23, 3, 7, 1, 1, 1, 1, 1, 3, 0, 3, 0, 3);
    conv_case(6, 21, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 9); /* rows of vectors, padded */
    conv_case(7, 19, 41, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5); /* the image itself */
    conv_case(5, 20, 33, 3, 3, 2, 1, 1, 1, 1, 2, 0, 1, 4);
    /* one channel group, built in bands of rows by 2 threads */
    conv_case(3, 60, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 8);
    conv_case(4, 64, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5);
    conv_case(2, 70, 61, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3);
    for (int t = 0; t < 40; t++) {
        size_t kh = (size_t)rnd_in(1, 4), kw = (size_t)rnd_in(1, 4);
        size_t dh = (size_t)rnd_in(1, 2), dw = (size_t)rnd_in(1, 2);
        size_t h = (kh - 1) * dh + (size_t)rnd_in(1, 12), w = (kw - 1) * dw + (size_t)rnd_in(1, 12);
        conv_case((size_t)rnd_in(1, 13), h, w, kh, kw, (size_t)rnd_in(1, 3),
                  (size_t)rnd_in(1, 3), dh, dw, (size_t)rnd_in(0, 2), (size_t)rnd_in(0, 2),
                  (size_t)rnd_in(0, 2), (size_t)rnd_in(0, 2), (size_t)rnd_in(1, 19));
    }
}

/* ---- depthwise ---- */

static void dw_case(size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw, size_t dh,
                    size_t dw, size_t pt, size_t pl, size_t pb, size_t pr, bool xs8, int kind,
                    int mode, bool yzs)
{
    size_t oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1;
    size_t ow = (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1;
    uint8_t *x = malloc(h * w);
    fill(x, h * w, rnd() % 6 == 0 ? 1 : 0, xs8);
    int32_t zx = xs8 ? rnd_in(-128, 127) : rnd_in(0, 255);
    int32_t *wt = malloc(kh * kw * 4), bias = (int32_t)rnd() >> (rnd() % 32);
    for (size_t t = 0; t < kh * kw; t++)
        wt[t] = rnd() % 5 == 0 ? (rnd() % 2 ? -255 : 255) : rnd_in(-255, 255);
    float mult = pick_mult((int)(rnd() % 5));
    oq_qfixed fx = oq_qfixed_from_float(mult);
    oq_qout o = {.kind = kind, .mode = mode, .mult = &mult, .fixed = &fx, .ldc = ow,
                 .zp = yzs ? rnd_in(-128, 127) : rnd_in(0, 255), .qmin = yzs ? -128 : 0,
                 .qmax = yzs ? 127 : 255};
    oq_qdw_plan p;
    oq_qdw_plan_init(&p, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow);
    uint8_t *planes = malloc(oq_qdw_plane_bytes(&p));
    oq_qdw_planes(&p, x, xs8, (uint8_t)(zx ^ (xs8 ? 0x80 : 0)), planes);
    /* the kernels take uint8 x (flipped) and fold zx into the bias */
    uint32_t wsum = 0;
    for (size_t t = 0; t < kh * kw; t++)
        wsum += (uint32_t)wt[t];
    int32_t bias_k = (int32_t)((uint32_t)bias - (uint32_t)(zx + (xs8 ? 128 : 0)) * wsum);
    void *out = malloc(oh * ow * 4);
    for (int ki = 0; ki < nkerns; ki++) {
        const oq_qkern *kern = kerns[ki];
        o.c = out;
        oq_qdw d = {planes, p.ph, p.pw, wt, bias_k, oh, ow, kh, kw, sh, sw, dh, dw, 0, &o};
        kern->dw(&d);
        size_t bad = 0;
        for (size_t y = 0; y < oh; y++)
            for (size_t xx = 0; xx < ow; xx++) {
                uint32_t acc = (uint32_t)bias;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++) {
                        int64_t iy = (int64_t)(y * sh + ky * dh) - (int64_t)pt;
                        int64_t ix = (int64_t)(xx * sw + kx * dw) - (int64_t)pl;
                        if (iy < 0 || ix < 0 || iy >= (int64_t)h || ix >= (int64_t)w)
                            continue;
                        uint8_t v = x[(size_t)iy * w + (size_t)ix];
                        int32_t xv = xs8 ? (int8_t)v : v;
                        acc += (uint32_t)((xv - zx) * wt[ky * kw + kx]);
                    }
                bad += !same_out(&o, 0, y * ow + xx, (int32_t)acc, out);
            }
        if (bad)
            fprintf(stderr, "%s: dw %zux%zu k%zux%zu s%zu,%zu d%zu,%zu kind %d: %zu differ\n",
                    kern->name, h, w, kh, kw, sh, sw, dh, dw, kind, bad);
        CHECK(bad == 0);
    }
    free(x), free(wt), free(planes), free(out);
}

static void test_dw(void)
{
    dw_case(56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, OQ_QOUT_Q8, OQ_REQUANT_FLOAT, false);
    dw_case(56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, OQ_QOUT_Q8, OQ_REQUANT_FLOAT, true);
    dw_case(7, 7, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, false, OQ_QOUT_I32, OQ_REQUANT_FLOAT, false);
    for (int t = 0; t < 300; t++) {
        size_t kh = (size_t)rnd_in(1, 5), kw = (size_t)rnd_in(1, 5);
        size_t dh = (size_t)rnd_in(1, 2), dw = (size_t)rnd_in(1, 2);
        size_t h = (kh - 1) * dh + (size_t)rnd_in(1, 40), w = (kw - 1) * dw + (size_t)rnd_in(1, 70);
        dw_case(h, w, kh, kw, (size_t)rnd_in(1, 3), (size_t)rnd_in(1, 3), dh, dw,
                (size_t)rnd_in(0, 2), (size_t)rnd_in(0, 2), (size_t)rnd_in(0, 2),
                (size_t)rnd_in(0, 2), rnd() % 2, (int)(rnd() % 3),
                rnd() % 3 ? OQ_REQUANT_FLOAT : OQ_REQUANT_FIXED, rnd() % 2);
    }
}

/* The kernels reading the images directly with int8 taps (oq_qdw8), nch
 * channels from channel 2 of the output stage, the images at the very end
 * of an allocation (a read past it would be caught by the sanitizer
 * build), against a naive convolution. */
static void dw8_case(size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw, size_t dh,
                     size_t dw, size_t pt, size_t pl, size_t pb, size_t pr, bool xs8, int kind,
                     int mode, bool yzs)
{
    enum { NCH = 3 };
    size_t oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1;
    size_t ow = (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1, nch = (size_t)rnd_in(1, NCH);
    uint8_t *x = malloc(nch * h * w);
    fill(x, nch * h * w, rnd() % 6 == 0 ? 1 : 0, xs8);
    int32_t zx = xs8 ? rnd_in(-128, 127) : rnd_in(0, 255), bias[NCH], bias_k[NCH];
    int8_t w4[NCH * 16 * 4] = {0}; /* channels kh * 4 apart */
    float mult[2 + NCH] = {0};
    oq_qfixed fx[2 + NCH] = {{0}};
    for (size_t c = 0; c < nch; c++) {
        uint32_t wsum = 0;
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
                int8_t v = (int8_t)(rnd() % 5 == 0 ? (rnd() % 2 ? -128 : 127) : rnd_in(-128, 127));
                w4[(c * kh + ky) * 4 + kx] = v;
                wsum += (uint32_t)v;
            }
        bias[c] = (int32_t)rnd() >> (rnd() % 32);
        bias_k[c] = (int32_t)((uint32_t)bias[c] - (uint32_t)(zx + (xs8 ? 128 : 0)) * wsum);
        mult[2 + c] = pick_mult((int)(rnd() % 5));
        fx[2 + c] = oq_qfixed_from_float(mult[2 + c]);
    }
    oq_qout o = {.kind = kind, .mode = mode, .mult = mult, .fixed = fx, .ldc = ow,
                 .zp = yzs ? rnd_in(-128, 127) : rnd_in(0, 255), .qmin = yzs ? -128 : 0,
                 .qmax = yzs ? 127 : 255};
    size_t esz = elem_size(kind), plane = oh * ow;
    uint8_t *out = malloc(nch * plane * 4);
    for (int ki = 0; ki < nkerns; ki++) {
        const oq_qkern *kern = kerns[ki];
        if (!kern->dw8)
            continue;
        o.c = out;
        oq_qdw8 d = {x, h, w, xs8, (uint8_t)(zx ^ (xs8 ? 0x80 : 0)), w4, bias_k, nch,
                     oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, 2, &o};
        kern->dw8(&d);
        size_t bad = 0;
        for (size_t c = 0; c < nch; c++)
            for (size_t y = 0; y < oh; y++)
                for (size_t xx = 0; xx < ow; xx++) {
                    uint32_t acc = (uint32_t)bias[c];
                    for (size_t ky = 0; ky < kh; ky++)
                        for (size_t kx = 0; kx < kw; kx++) {
                            int64_t iy = (int64_t)(y * sh + ky * dh) - (int64_t)pt;
                            int64_t ix = (int64_t)(xx * sw + kx * dw) - (int64_t)pl;
                            if (iy < 0 || ix < 0 || iy >= (int64_t)h || ix >= (int64_t)w)
                                continue;
                            uint8_t v = x[(c * h + (size_t)iy) * w + (size_t)ix];
                            int32_t xv = xs8 ? (int8_t)v : v;
                            acc += (uint32_t)((xv - zx) * w4[(c * kh + ky) * 4 + kx]);
                        }
                    oq_qout oc = o;
                    oc.mult = mult + 2 + c;
                    oc.fixed = fx + 2 + c;
                    bad += !same_out(&oc, 0, y * ow + xx, (int32_t)acc, out + c * plane * esz);
                }
        if (bad)
            fprintf(stderr, "%s: dw8 %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu kind %d nch "
                    "%zu: %zu differ\n", kern->name, h, w, kh, kw, sh, sw, dh, dw, pt, pl, kind,
                    nch, bad);
        CHECK(bad == 0);
    }
    free(x), free(out);
}

static void test_dw8(void)
{
    CHECK(oq_qdw8_fits(3, 3, 1, 1) && oq_qdw8_fits(3, 3, 2, 1) && oq_qdw8_fits(3, 4, 4, 1));
    CHECK(!oq_qdw8_fits(3, 5, 1, 1) && !oq_qdw8_fits(3, 3, 5, 1) && !oq_qdw8_fits(3, 4, 4, 2));
    dw8_case(112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, OQ_QOUT_Q8, OQ_REQUANT_FLOAT, false);
    dw8_case(112, 112, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, true, OQ_QOUT_Q8, OQ_REQUANT_FLOAT, true);
    dw8_case(14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, OQ_QOUT_Q8, OQ_REQUANT_FIXED, false);
    dw8_case(7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, OQ_QOUT_I32, OQ_REQUANT_FLOAT, false);
    dw8_case(1, 200, 1, 4, 1, 4, 1, 1, 0, 3, 0, 3, false, OQ_QOUT_F32, OQ_REQUANT_FLOAT, false);
    for (int t = 0; t < 400; t++) {
        size_t kh = (size_t)rnd_in(1, 5), kw = (size_t)rnd_in(1, 4);
        size_t sw = (size_t)rnd_in(1, 4), dw = (size_t)rnd_in(1, 3);
        if (!oq_qdw8_fits(kh, kw, sw, dw))
            continue;
        size_t dh = (size_t)rnd_in(1, 2);
        size_t h = (kh - 1) * dh + (size_t)rnd_in(1, 40), w = (kw - 1) * dw + (size_t)rnd_in(1, 90);
        dw8_case(h, w, kh, kw, (size_t)rnd_in(1, 3), sw, dh, dw, (size_t)rnd_in(0, 3),
                 (size_t)rnd_in(0, 3), (size_t)rnd_in(0, 3), (size_t)rnd_in(0, 3), rnd() % 2,
                 (int)(rnd() % 3), rnd() % 3 ? OQ_REQUANT_FLOAT : OQ_REQUANT_FIXED, rnd() % 2);
    }
}

/* The int8 kernels ONNXQ_ISA=level gives: the best at or below it (there is
 * no int8 kernel for AVX-512 without VNNI). */
static const char *expected_isa(const char *level)
{
    return strcmp(level, "avx512") == 0 ? "avx2" : level;
}

int main(void)
{
    const char *env = getenv("ONNXQ_ISA");
    if (env && *env) {
        const char *why = NULL;
        const oq_qkern *k = oq_qkern_select(&why);
        if (!k) {
            bool known = false;
            for (int i = 0; i < OQ_LEVEL_COUNT; i++)
                known |= strcmp(env, oq_isa_level_name((oq_isa_level)i)) == 0;
            if (known) {
                printf("SKIP: ONNXQ_ISA=%s: %s\n", env, why);
                return 77;
            }
            CHECK(k != NULL);
            return TEST_SUMMARY();
        }
        CHECK(strcmp(oq_isa_name((oq_isa)k->isa), expected_isa(env)) == 0);
        kerns[nkerns++] = k;
        if (k->isa != OQ_ISA_REF)
            kerns[nkerns++] = &oq_qkern_ref;
    } else {
        for (int i = 0; i < OQ_ISA_COUNT; i++)
            if (oq_qkern_for((oq_isa)i))
                kerns[nkerns++] = oq_qkern_for((oq_isa)i);
        CHECK(nkerns >= 1 && kerns[0] == &oq_qkern_ref);
    }
    for (int i = 0; i < nkerns; i++)
        printf("kernel %s\n", kerns[i]->name);
    /* every level the CPU runs is a ceiling; an unknown name is refused */
    for (int l = 0; l < OQ_LEVEL_COUNT; l++) {
        const char *name = oq_isa_level_name((oq_isa_level)l), *why = NULL;
        setenv("ONNXQ_ISA", name, 1);
        const oq_qkern *k = oq_qkern_select(&why);
        if (oq_cpu_has_level((oq_isa_level)l))
            CHECK(k && strcmp(oq_isa_name((oq_isa)k->isa), expected_isa(name)) == 0);
        else
            CHECK(!k && why && strstr(why, "ONNXQ_ISA"));
    }
    setenv("ONNXQ_ISA", "sse9", 1);
    const char *why = NULL;
    CHECK(oq_qkern_select(&why) == NULL && why && strstr(why, "ONNXQ_ISA"));
    if (env)
        setenv("ONNXQ_ISA", env, 1);
    else
        unsetenv("ONNXQ_ISA");
    test_gemm();
    test_flips();
    test_conv();
    test_dw();
    test_dw8();
    return TEST_SUMMARY();
}
