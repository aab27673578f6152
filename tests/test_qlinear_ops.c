/* ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul and QGemm through
 * sessions, against naive references written here (int64 sums by the
 * definition of each operator; requantization by oq_requant_float1, which
 * test_requant checks on its own), with constant and non-constant weights
 * and parameters, per-tensor and per-channel parameters, groups, padding,
 * strides, dilations, batches and broadcasting; and QLinearConv in the
 * fixed-point mode: within 1 LSB of the float mode (the count printed). */
#include <math.h>

#include "kernels/qgemm.h"
#include "kernels/requant.h"
#include "qtest_model.h"

/* ---- convolutions against a naive reference ---- */

typedef struct qconv_case {
    int64_t n, c, h, w, m, g, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} qconv_case;

/* acc[n][m][oy][ox] = bias[m] + sum over the group's channels and the kernel
 * of (x - zx)(w - zw[m]), with x = zx outside the image. */
static void naive_conv(const qconv_case *q, const oq_tensor *x, const oq_tensor *w, int32_t zx,
                       const int32_t *zw, const int32_t *bias, int64_t oh, int64_t ow,
                       int64_t *acc)
{
    int64_t cg = q->c / q->g, mg = q->m / q->g;
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t m = 0; m < q->m; m++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t s = bias ? bias[m] : 0, g = m / mg;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ky = 0; ky < q->kh; ky++)
                            for (int64_t kx = 0; kx < q->kw; kx++) {
                                int64_t iy = oy * q->sh - q->pt + ky * q->dh;
                                int64_t ix = ox * q->sw - q->pl + kx * q->dw;
                                int64_t c = g * cg + ci;
                                size_t xi = (size_t)(((n * q->c + c) * q->h + iy) * q->w + ix);
                                size_t wi = (size_t)(((m * cg + ci) * q->kh + ky) * q->kw + kx);
                                bool inside = iy >= 0 && iy < q->h && ix >= 0 && ix < q->w;
                                int32_t xv = inside ? at8(x, xi) : zx;
                                s += (int64_t)(xv - zx) * (at8(w, wi) - zw[m]);
                            }
                    acc[((n * q->m + m) * oh + oy) * ow + ox] = s;
                }
}

static void conv_attrs(oq_node *node, const qconv_case *q, bool with_kernel_shape)
{
    int64_t st[] = {q->sh, q->sw}, dl[] = {q->dh, q->dw}, pads[] = {q->pt, q->pl, q->pb, q->pr};
    int64_t ks[] = {q->kh, q->kw};
    add_attr_ints(node, "strides", 2, st);
    add_attr_ints(node, "dilations", 2, dl);
    add_attr_ints(node, "pads", 4, pads);
    add_attr_int(node, "group", q->g);
    if (with_kernel_shape)
        add_attr_ints(node, "kernel_shape", 2, ks);
}

typedef struct fixed_stats {
    long n, diff1, more;
} fixed_stats;

/* The random data and parameters of one convolution case. */
typedef struct conv_data {
    oq_tensor *x, *w;
    int32_t zx, zy, zw[64], bias[64];
    uint8_t zxb, zwb[64];
    float xs, ys, ws[64];
    int64_t oh, ow;
    size_t ny;
    int64_t *acc; /* the naive accumulators, bias included */
} conv_data;

/* sym: symmetric weights (zero point 0 for int8, 128 for uint8), so that
 * w - zw fits int8 (the depthwise kernels that read the image directly). */
static void conv_data_new(const qconv_case *q, oq_dtype xdt, oq_dtype wdt, bool per_channel,
                          bool sym, conv_data *cd)
{
    int64_t dx[] = {q->n, q->c, q->h, q->w}, dw[] = {q->m, q->c / q->g, q->kh, q->kw};
    cd->oh = (q->h + q->pt + q->pb - (q->kh - 1) * q->dh - 1) / q->sh + 1;
    cd->ow = (q->w + q->pl + q->pr - (q->kw - 1) * q->dw - 1) / q->sw + 1;
    cd->ny = (size_t)(q->n * q->m * cd->oh * cd->ow);
    cd->x = rand8(xdt, 4, dx);
    cd->w = rand8(wdt, 4, dw);
    int32_t lo8 = xdt == OQ_INT8 ? -128 : 0, wlo = wdt == OQ_INT8 ? -128 : 0;
    cd->zx = irand(lo8, lo8 + 255);
    cd->zxb = (uint8_t)cd->zx;
    cd->xs = frand(0.01f, 0.05f);
    for (int64_t m = 0; m < q->m; m++) {
        cd->zw[m] = per_channel || m == 0 ? irand(wlo, wlo + 255) : cd->zw[0];
        if (sym)
            cd->zw[m] = wlo + 128;
        cd->zwb[m] = (uint8_t)cd->zw[m];
        cd->bias[m] = irand(-5000, 5000);
        cd->ws[m] = per_channel || m == 0 ? frand(0.001f, 0.01f) : cd->ws[0];
    }
    int64_t kdim = q->c / q->g * q->kh * q->kw;
    cd->ys = cd->xs * 0.005f * sqrtf((float)kdim) * 15.0f;
    cd->zy = irand(0, 255);
    cd->acc = malloc(cd->ny * sizeof *cd->acc);
    naive_conv(q, cd->x, cd->w, cd->zx, cd->zw, cd->bias, cd->oh, cd->ow, cd->acc);
}

static void conv_data_free(conv_data *cd)
{
    free(cd->acc);
    oq_tensor_free(cd->x);
    oq_tensor_free(cd->w);
}

/* QLinearConv in both modes: float mode equal to the reference, fixed mode
 * within 1 LSB of it. consts: every input but x constant, else x, w,
 * w_scale, w_zp and B are graph inputs. */
static void qlinearconv_case(const qconv_case *q, const conv_data *cd, bool consts,
                             bool per_channel, fixed_stats *fs)
{
    oq_dtype xdt = cd->x->dtype, wdt = cd->w->dtype;
    oq_tensor *ts[9]; /* x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B */
    oq_tensor_clone(cd->x, &ts[0]);
    ts[1] = scalar_f(cd->xs);
    ts[2] = tens(xdt, 0, NULL, &cd->zxb);
    oq_tensor_clone(cd->w, &ts[3]);
    ts[4] = per_channel ? vec(OQ_FLOAT, q->m, cd->ws) : scalar_f(cd->ws[0]);
    ts[5] = per_channel ? vec(wdt, q->m, cd->zwb) : tens(wdt, 0, NULL, cd->zwb);
    ts[6] = scalar_f(cd->ys);
    ts[7] = scalar_u8((uint8_t)cd->zy);
    ts[8] = vec(OQ_INT32, q->m, cd->bias);
    model md;
    set_args(&md, 9, ts, consts ? ~1u : 0xc6);
    make_model(&md, NULL, "QLinearConv", 10, 1);
    conv_attrs(md.node, q, consts);
    oq_tensor *yf = NULL, *yx = NULL;
    CHECK_OK(run_model(&md, OQ_REQUANT_FLOAT, &yf, 1));
    CHECK_OK(run_model(&md, OQ_REQUANT_FIXED, &yx, 1));
    int bad = 0;
    for (size_t i = 0; yf && yx && yf->count == cd->ny && i < cd->ny; i++) {
        size_t m = i / (size_t)(cd->oh * cd->ow) % (size_t)q->m;
        float mult = cd->xs * cd->ws[m] / cd->ys;
        int32_t want = oq_requant_float1((int32_t)cd->acc[i], mult, cd->zy, 0, 255);
        int32_t a = ((uint8_t *)yf->data)[i], b = ((uint8_t *)yx->data)[i];
        bad += a != want;
        fs->n++;
        fs->diff1 += abs(a - b) == 1;
        fs->more += abs(a - b) > 1;
    }
    CHECK(yf && yf->count == cd->ny && bad == 0);
    oq_tensor_free(yf);
    oq_tensor_free(yx);
    free_model(&md);
}

/* ConvInteger (x, w, x_zp, w_zp; no bias): the reference minus the bias. */
static void convinteger_case(const qconv_case *q, const conv_data *cd, bool consts,
                             bool per_channel)
{
    oq_tensor *ci[4];
    oq_tensor_clone(cd->x, &ci[0]);
    oq_tensor_clone(cd->w, &ci[1]);
    ci[2] = tens(cd->x->dtype, 0, NULL, &cd->zxb);
    ci[3] = per_channel ? vec(cd->w->dtype, q->m, cd->zwb) : tens(cd->w->dtype, 0, NULL, cd->zwb);
    model md;
    set_args(&md, 4, ci, consts ? 0xe : 0x4);
    make_model(&md, NULL, "ConvInteger", 10, 1);
    conv_attrs(md.node, q, !consts);
    oq_tensor *yi = NULL;
    CHECK_OK(run_model(&md, OQ_REQUANT_FLOAT, &yi, 1));
    int bad = 0;
    for (size_t i = 0; yi && yi->count == cd->ny && i < cd->ny; i++) {
        size_t m = i / (size_t)(cd->oh * cd->ow) % (size_t)q->m;
        bad += ((int32_t *)yi->data)[i] != (int32_t)(cd->acc[i] - cd->bias[m]);
    }
    CHECK(yi && yi->dtype == OQ_INT32 && yi->count == cd->ny && bad == 0);
    oq_tensor_free(yi);
    free_model(&md);
}

static void conv_case(const qconv_case *q, oq_dtype xdt, oq_dtype wdt, bool consts,
                      bool per_channel, bool sym, fixed_stats *fs)
{
    conv_data cd;
    conv_data_new(q, xdt, wdt, per_channel, sym, &cd);
    qlinearconv_case(q, &cd, consts, per_channel, fs);
    convinteger_case(q, &cd, consts, per_channel);
    conv_data_free(&cd);
}

static void test_convs(void)
{
    static const qconv_case cases[] = {
        /* n c  h  w  m  g kh kw sh sw dh dw pt pl pb pr */
        {2, 4, 7, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 3, 9, 9, 4, 1, 3, 2, 2, 1, 1, 2, 0, 1, 2, 0},
        {1, 8, 5, 5, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* depthwise */
        {1, 4, 6, 7, 8, 4, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1},  /* channel multiplier 2 */
        {2, 5, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* 1x1: the image itself */
        {1, 5, 5, 5, 3, 1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0},  /* 1x1 strided */
        {1, 2, 4, 4, 3, 1, 4, 4, 1, 1, 1, 1, 0, 0, 0, 0},  /* one output */
        {1, 16, 12, 10, 24, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 12, 15, 37, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* depthwise, 3 vectors */
        {2, 6, 17, 35, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},   /* depthwise, strided */
        {1, 5, 9, 8, 10, 5, 3, 4, 1, 2, 2, 1, 0, 2, 2, 1},    /* multiplier 2, dilated */
        {2, 8, 5, 6, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* compacted columns */
        {1, 4, 4, 4, 48, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* the same, 2 groups */
        {2, 4, 6, 40, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* long rows, junk dropped */
    };
    static const oq_dtype xt[] = {OQ_UINT8, OQ_UINT8, OQ_INT8, OQ_INT8};
    static const oq_dtype wt[] = {OQ_INT8, OQ_UINT8, OQ_INT8, OQ_UINT8};
    fixed_stats fs = {0, 0, 0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 4; v++)
                conv_case(&cases[c], xt[t], wt[t], v % 2 == 0,
                          (c + (size_t)t + (size_t)v) % 2 == 0, v >= 2, &fs);
    CHECK(fs.more == 0);
    printf("QLinearConv fixed vs float mode: %ld outputs, %ld differ by 1 LSB, %ld by more\n",
           fs.n, fs.diff1, fs.more);
}

/* ---- matrix products against a naive reference ---- */

/* Batch dims of up to 2 axes (padded with 1 on the left) and the matrix. */
typedef struct mm_dims {
    int64_t b[2], r, c;
} mm_dims;

/* acc[ob][i][j] = sum over k of (a - za[ab][i])(b - zb[bb][j]) for the
 * broadcast batches; za is [a batches][M], zb [b batches][N]. */
static void naive_mm(const mm_dims *ad, const mm_dims *bd, const oq_tensor *a,
                     const oq_tensor *b, const int32_t *za, const int32_t *zb, int64_t *acc)
{
    int64_t ob0 = ad->b[0] > bd->b[0] ? ad->b[0] : bd->b[0];
    int64_t ob1 = ad->b[1] > bd->b[1] ? ad->b[1] : bd->b[1];
    int64_t M = ad->r, K = ad->c, N = bd->c;
    for (int64_t i0 = 0; i0 < ob0; i0++)
        for (int64_t i1 = 0; i1 < ob1; i1++) {
            int64_t ab = (ad->b[0] == 1 ? 0 : i0) * ad->b[1] + (ad->b[1] == 1 ? 0 : i1);
            int64_t bb = (bd->b[0] == 1 ? 0 : i0) * bd->b[1] + (bd->b[1] == 1 ? 0 : i1);
            int64_t ob = i0 * ob1 + i1;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (int64_t)(at8(a, (size_t)((ab * M + i) * K + k)) - za[ab * M + i]) *
                             (at8(b, (size_t)((bb * K + k) * N + j)) - zb[bb * N + j]);
                    acc[(ob * M + i) * N + j] = s;
                }
        }
}

static void test_matmulinteger(void)
{
    /* a [2,1,3,4] uint8 with a per-row zero point [2,1,3,1]; b [3,4,5] int8
     * with a per-column zero point [5]; out [2,3,3,5] */
    int64_t da[] = {2, 1, 3, 4}, db[] = {3, 4, 5}, dza[] = {2, 1, 3, 1};
    oq_tensor *a = rand8(OQ_UINT8, 4, da), *b = rand8(OQ_INT8, 3, db);
    oq_tensor *za = rand8(OQ_UINT8, 4, dza), *zb = rand8(OQ_INT8, 1, (int64_t[]){5});
    int32_t zaf[6], zbf[15];
    for (int i = 0; i < 6; i++)
        zaf[i] = at8(za, (size_t)i);
    for (int i = 0; i < 15; i++)
        zbf[i] = at8(zb, (size_t)(i % 5));
    mm_dims ad = {{2, 1}, 3, 4}, bd = {{1, 3}, 4, 5};
    int64_t acc[90];
    naive_mm(&ad, &bd, a, b, zaf, zbf, acc);
    for (int v = 0; v < 2; v++) {
        model md;
        oq_tensor *ts[4];
        oq_tensor_clone(a, &ts[0]);
        oq_tensor_clone(b, &ts[1]);
        oq_tensor_clone(za, &ts[2]);
        oq_tensor_clone(zb, &ts[3]);
        set_args(&md, 4, ts, v ? 0xe : 0x0);
        oq_tensor *y = run_op(NULL, "MatMulInteger", 10, &md, NULL);
        CHECK(y && y->dtype == OQ_INT32 && y->rank == 4 && y->count == 90);
        int bad = 0;
        for (int i = 0; y && y->count == 90 && i < 90; i++)
            bad += ((int32_t *)y->data)[i] != (int32_t)acc[i];
        CHECK(bad == 0);
        oq_tensor_free(y);
        free_model(&md);
    }
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(za);
    oq_tensor_free(zb);

    /* 1-D a (int8, zero point 3) times b [4,5] uint8 without zero point: [5] */
    int8_t a1[4] = {1, -2, 3, -4};
    int64_t d45[] = {4, 5};
    oq_tensor *b1 = rand8(OQ_UINT8, 2, d45);
    int64_t want[5];
    for (int j = 0; j < 5; j++) {
        want[j] = 0;
        for (int k = 0; k < 4; k++)
            want[j] += (a1[k] - 3) * at8(b1, (size_t)(k * 5 + j));
    }
    model md;
    oq_tensor *ts[] = {vec(OQ_INT8, 4, a1), b1, scalar_i8(3)};
    set_args(&md, 3, ts, 0x6);
    oq_tensor *y = run_op(NULL, "MatMulInteger", 10, &md, NULL);
    CHECK(y && y->rank == 1 && y->dims[0] == 5);
    for (int j = 0; y && j < 5; j++)
        CHECK(((int32_t *)y->data)[j] == want[j]);
    oq_tensor_free(y);
    free_model(&md);
}

static void test_qlinearmatmul(void)
{
    /* a [2,3,4] uint8; b [2,4,5] int8 with scale and zero point [2,1,5] */
    int64_t da[] = {2, 3, 4}, db[] = {2, 4, 5}, dp[] = {2, 1, 5};
    oq_tensor *a = rand8(OQ_UINT8, 3, da), *b = rand8(OQ_INT8, 3, db);
    oq_tensor *zb = rand8(OQ_INT8, 3, dp), *sb = tens(OQ_FLOAT, 3, dp, NULL);
    float as = 0.02f, ys = 0.9f;
    int32_t zaf[6], zbf[10], za = 77, zy = 120;
    for (int i = 0; i < 10; i++) {
        ((float *)sb->data)[i] = frand(0.002f, 0.02f);
        zbf[i] = at8(zb, (size_t)i);
    }
    for (int i = 0; i < 6; i++)
        zaf[i] = za;
    mm_dims ad = {{1, 2}, 3, 4}, bd = {{1, 2}, 4, 5};
    int64_t acc[30];
    naive_mm(&ad, &bd, a, b, zaf, zbf, acc);
    for (int v = 0; v < 2; v++) {
        model md;
        oq_tensor *ts[8];
        oq_tensor_clone(a, &ts[0]);
        ts[1] = scalar_f(as);
        ts[2] = scalar_u8((uint8_t)za);
        oq_tensor_clone(b, &ts[3]);
        oq_tensor_clone(sb, &ts[4]);
        oq_tensor_clone(zb, &ts[5]);
        ts[6] = scalar_f(ys);
        ts[7] = scalar_u8((uint8_t)zy);
        set_args(&md, 8, ts, v ? 0xfe : 0xc6);
        oq_tensor *y = run_op(NULL, "QLinearMatMul", 10, &md, NULL);
        CHECK(y && y->dtype == OQ_UINT8 && y->count == 30);
        int bad = 0;
        for (int i = 0; y && y->count == 30 && i < 30; i++) {
            int bb = i / 15, j = i % 5;
            float m = as * ((float *)sb->data)[bb * 5 + j] / ys;
            bad += ((uint8_t *)y->data)[i] != oq_requant_float1((int32_t)acc[i], m, zy, 0, 255);
        }
        CHECK(bad == 0);
        oq_tensor_free(y);
        free_model(&md);
    }
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(zb);
    oq_tensor_free(sb);
}

/* QGemm: transposed A [K, M] and B [N, K], alpha, C; float output without
 * y_scale, int8 output with it. */
static void test_qgemm(void)
{
    enum { M = 4, K = 6, N = 5 };
    int64_t dat[] = {K, M}, dbt[] = {N, K}, dc[] = {M, 1};
    oq_tensor *a = rand8(OQ_UINT8, 2, dat), *b = rand8(OQ_INT8, 2, dbt);
    oq_tensor *zb = rand8(OQ_INT8, 1, (int64_t[]){N});
    float sb[N], as = 0.03f, alpha = 0.5f, ys = 0.7f;
    int32_t c[M], za = 100, zy = -20;
    for (int j = 0; j < N; j++)
        sb[j] = frand(0.001f, 0.01f);
    for (int i = 0; i < M; i++)
        c[i] = irand(-3000, 3000);
    int32_t acc[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int64_t s = c[i];
            for (int k = 0; k < K; k++)
                s += (int64_t)(at8(a, (size_t)(k * M + i)) - za) *
                     (at8(b, (size_t)(j * K + k)) - at8(zb, (size_t)j));
            acc[i * N + j] = (int32_t)s;
        }
    for (int q = 0; q < 2; q++) {
        model md;
        oq_tensor *ts[9];
        oq_tensor_clone(a, &ts[0]);
        ts[1] = scalar_f(as);
        ts[2] = scalar_u8((uint8_t)za);
        oq_tensor_clone(b, &ts[3]);
        ts[4] = vec(OQ_FLOAT, N, sb);
        oq_tensor_clone(zb, &ts[5]);
        ts[6] = tens(OQ_INT32, 2, dc, c);
        ts[7] = q ? scalar_f(ys) : NULL;
        ts[8] = q ? scalar_i8((int8_t)zy) : NULL;
        set_args(&md, q ? 9 : 7, ts, q ? 0x1fe : 0x38);
        make_model(&md, "com.microsoft", "QGemm", 1, 1);
        add_attr_int(md.node, "transA", 1);
        add_attr_int(md.node, "transB", 1);
        add_attr_float(md.node, "alpha", alpha);
        oq_tensor *y = NULL;
        CHECK_OK(run_model(&md, OQ_REQUANT_FLOAT, &y, 1));
        CHECK(y && y->dtype == (q ? OQ_INT8 : OQ_FLOAT) && y->rank == 2 && y->dims[0] == M &&
              y->dims[1] == N);
        int bad = 0;
        for (int i = 0; y && i < M * N; i++) {
            float m = alpha * as * sb[i % N];
            if (q)
                bad += ((int8_t *)y->data)[i] != oq_requant_float1(acc[i], m / ys, zy, -128, 127);
            else
                bad += ((float *)y->data)[i] != (float)acc[i] * m;
        }
        CHECK(bad == 0);
        oq_tensor_free(y);
        free_model(&md);
    }
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(zb);
}

int main(void)
{
    /* run under ONNXQ_ISA=...: skipped where this CPU or build lacks that ISA */
    const char *why = NULL;
    if (!oq_qkern_select(&why)) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    test_convs();
    test_matmulinteger();
    test_qlinearmatmul();
    test_qgemm();
    return TEST_SUMMARY();
}
