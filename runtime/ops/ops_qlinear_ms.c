/* The com.microsoft QLinear* operators that onnxruntime's QOperator format
 * emits (domain com.microsoft, version 1), except the pools
 * (ops_qlinear_ms_pool.c): QLinearAdd, QLinearMul, QLinearLeakyRelu,
 * QLinearSigmoid, QLinearConcat and QLinearSoftmax, for int8 and uint8.
 *
 * The point of these operators is to give the bytes onnxruntime gives, so
 * the glue here follows onnxruntime's structure where it decides the
 * arithmetic: the binary operators split the output into the spans
 * onnxruntime's broadcaster produces and, within a span where one input is
 * a single value, call the kernel with the advancing input in the first
 * role, as onnxruntime does (that decides the rounding of QLinearAdd). The
 * lookup-table operators build the same 256-entry tables. The kernels are in
 * ops_qlinear_ms_kern.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_qlinear_ms.h"
#include "ops_qlinear_ms_kern.h"
#include "../kernels/qelt.h"

/* ---- helpers shared with ops_qlinear_ms_pool.c ---- */

static const oq_tensor *input(const oq_kctx *ctx, size_t i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

/* onnxruntime's IsScalarOr1ElementVector */
static bool one_value(const oq_tensor *t)
{
    return t->rank == 0 || (t->rank == 1 && t->dims[0] == 1);
}

oq_status oq_qlms_check_data(const oq_kctx *ctx, size_t i, bool *s8)
{
    const oq_tensor *t = input(ctx, i);
    if (!t)
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (8-bit data) is missing", i);
    if (t->dtype != OQ_INT8 && t->dtype != OQ_UINT8)
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "input %zu has dtype %s (int8 and uint8 are "
                       "supported)", i, oq_dtype_name(t->dtype));
    *s8 = t->dtype == OQ_INT8;
    return OQ_OK;
}

oq_status oq_qlms_check_scale(const oq_kctx *ctx, size_t i)
{
    const oq_tensor *t = input(ctx, i);
    if (!t)
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (a scale) is missing", i);
    if (t->dtype != OQ_FLOAT)
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (a scale) must be float, not %s", i,
                       oq_dtype_name(t->dtype));
    if (!one_value(t))
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (a scale) must be a scalar or a 1-D "
                       "tensor of one element", i);
    return OQ_OK;
}

oq_status oq_qlms_check_zp(const oq_kctx *ctx, size_t i, bool s8)
{
    const oq_tensor *t = input(ctx, i);
    if (!t)
        return OQ_OK;
    if (t->dtype != (s8 ? OQ_INT8 : OQ_UINT8))
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (a zero point) is %s, the data is %s", i,
                       oq_dtype_name(t->dtype), s8 ? "int8" : "uint8");
    if (!one_value(t))
        return oq_kerr(ctx, OQ_E_INVALID, "input %zu (a zero point) must be a scalar or a 1-D "
                       "tensor of one element", i);
    return OQ_OK;
}

float oq_qlms_scale(const oq_kctx *ctx, size_t i)
{
    return *(const float *)ctx->in[i]->data;
}

int32_t oq_qlms_zp(const oq_kctx *ctx, size_t i, bool s8)
{
    const oq_tensor *t = input(ctx, i);
    return t ? oq_qlms_load(t->data, 0, s8) : 0;
}

/* ---- QLinearAdd, QLinearMul ---- */

typedef void (*qbin_kernel)(bool s8, const void *a, float sa, int32_t za, const void *b,
                            float sb, int32_t zb, float sc, int32_t zc, void *y, size_t n,
                            bool b_scalar);

static oq_status qbin_infer(oq_kctx *ctx)
{
    bool s8, s8b;
    oq_status e = oq_qlms_check_data(ctx, 0, &s8);
    if (e == OQ_OK)
        e = oq_qlms_check_data(ctx, 3, &s8b);
    if (e == OQ_OK && s8 != s8b)
        return oq_kerr(ctx, OQ_E_INVALID, "A is %s and B is %s", s8 ? "int8" : "uint8",
                       s8b ? "int8" : "uint8");
    static const size_t scales[3] = {1, 4, 6}, zps[3] = {2, 5, 7};
    for (int i = 0; e == OQ_OK && i < 3; i++) {
        e = oq_qlms_check_scale(ctx, scales[i]);
        if (e == OQ_OK)
            e = oq_qlms_check_zp(ctx, zps[i], s8);
    }
    if (e != OQ_OK)
        return e;
    const oq_tensor *a = ctx->in[0], *b = ctx->in[3];
    int64_t dims[OQ_MAX_RANK];
    int r;
    e = oq_broadcast_shape(ctx, a->rank, a->dims, b->rank, b->dims, &r, dims);
    return e == OQ_OK ? oq_set_out(ctx, 0, a->dtype, r, dims) : e;
}

/* onnxruntime's broadcasting iterator, reduced to what decides the
 * arithmetic: runs of dims (innermost first) where the input advances
 * (delta > 0) or stays (delta <= 0), and the element count of each run. */
typedef struct bc_iter {
    int n;
    int64_t delta[OQ_MAX_RANK + 1], count[OQ_MAX_RANK + 1];
    int64_t total;
} bc_iter;

static void bc_init(bc_iter *it, int64_t axis, int64_t largest)
{
    it->delta[it->n] = axis > 1;
    it->count[it->n++] = largest;
    it->total *= axis;
}

static void bc_append(bc_iter *it, int64_t axis, int64_t largest)
{
    if (axis > 1 ? it->delta[it->n - 1] <= 0 : it->delta[it->n - 1] > 0) {
        it->delta[it->n] = axis > 1 ? it->total : -it->total;
        it->count[it->n++] = 1;
    }
    it->count[it->n - 1] *= largest;
    it->total *= axis;
}

/* The span size onnxruntime processes per kernel call and which input (if
 * any) is a single value within a span, for A (ra, da) and B (rb, db). The
 * output has at least one element. */
static void bc_plan(int ra, const int64_t *da, int rb, const int64_t *db, size_t *span,
                    bool *a_scalar, bool *b_scalar)
{
    bc_iter i1 = {0, {0}, {0}, 1}, i2 = {0, {0}, {0}, 1};
    int mx = ra > rb ? ra : rb, mn = ra < rb ? ra : rb, k = 0;
    if (mn == 0) {
        if (ra == 0 && rb == 0) {
            bc_init(&i1, 1, 1);
            bc_init(&i2, 1, 1);
        } else if (ra == 0) {
            bc_init(&i1, 1, db[rb - 1]);
            bc_init(&i2, db[rb - 1], db[rb - 1]);
        } else {
            bc_init(&i1, da[ra - 1], da[ra - 1]);
            bc_init(&i2, 1, da[ra - 1]);
        }
        k = 1;
    } else {
        for (; k < mn; k++) {
            int64_t x = da[ra - 1 - k], y = db[rb - 1 - k], l = x > y ? x : y;
            if (l <= 1 && k + 1 < mn)
                continue;
            bc_init(&i1, x, l);
            bc_init(&i2, y, l);
            k++;
            break;
        }
    }
    for (; k < mn; k++) {
        int64_t x = da[ra - 1 - k], y = db[rb - 1 - k], l = x > y ? x : y;
        if (l == 1)
            continue;
        bc_append(&i1, x, l);
        bc_append(&i2, y, l);
    }
    for (; k < mx; k++) {
        int64_t d = rb == mx ? db[rb - 1 - k] : da[ra - 1 - k];
        bc_append(&i1, rb == mx ? 1 : d, d);
        bc_append(&i2, rb == mx ? d : 1, d);
    }
    *span = (size_t)(i1.count[0] < i2.count[0] ? i1.count[0] : i2.count[0]);
    *a_scalar = i1.delta[0] == 0;
    *b_scalar = !*a_scalar && i2.delta[0] == 0;
}

/* Element strides of t along the r output dims (0 where t broadcasts). */
static void bcast_strides(const oq_tensor *t, int r, const int64_t *y, size_t *st)
{
    size_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        int j = i - (r - t->rank);
        bool b = j < 0 || (t->dims[j] == 1 && y[i] != 1);
        st[i] = b ? 0 : acc;
        if (j >= 0)
            acc *= (size_t)t->dims[j];
    }
}

static size_t offset_of(size_t o, int r, const int64_t *y, const size_t *st)
{
    size_t off = 0;
    for (int i = r - 1; i >= 0; i--) {
        off += (o % (size_t)y[i]) * st[i];
        o /= (size_t)y[i];
    }
    return off;
}

#define QBIN_BLOCK 16384 /* elements per unit of parallel work */

static oq_status qbin_run(oq_kctx *ctx)
{
    const oq_tensor *a = ctx->in[0], *b = ctx->in[3];
    oq_tensor *y = ctx->out[0];
    if (y->count == 0)
        return OQ_OK;
    const bool s8 = a->dtype == OQ_INT8;
    const float sa = oq_qlms_scale(ctx, 1), sb = oq_qlms_scale(ctx, 4), sc = oq_qlms_scale(ctx, 6);
    const int32_t za = oq_qlms_zp(ctx, 2, s8), zb = oq_qlms_zp(ctx, 5, s8),
                  zc = oq_qlms_zp(ctx, 7, s8);
    qbin_kernel k = *(const qbin_kernel *)ctx->state;
    size_t span, sta[OQ_MAX_RANK], stb[OQ_MAX_RANK];
    bool a_scalar, b_scalar;
    bc_plan(a->rank, a->dims, b->rank, b->dims, &span, &a_scalar, &b_scalar);
    bcast_strides(a, y->rank, y->dims, sta);
    bcast_strides(b, y->rank, y->dims, stb);
    const size_t spans = y->count / span, pieces = (span + QBIN_BLOCK - 1) / QBIN_BLOCK;
    const size_t piece = span < QBIN_BLOCK ? span : QBIN_BLOCK;
    const uint8_t *pa = a->data, *pb = b->data;
    uint8_t *py = y->data;
#pragma omp parallel for if (oq_parallel_worth(spans * pieces, piece * 4))
    for (size_t w = 0; w < spans * pieces; w++) {
        size_t o = w / pieces * span, lo = w % pieces * QBIN_BLOCK;
        size_t n = span - lo < QBIN_BLOCK ? span - lo : QBIN_BLOCK;
        size_t oa = offset_of(o, y->rank, y->dims, sta), ob = offset_of(o, y->rank, y->dims, stb);
        if (a_scalar) /* B advances, A is its span's one value: B takes the first role */
            k(s8, pb + ob + lo, sb, zb, pa + oa, sa, za, sc, zc, py + o + lo, n, true);
        else if (b_scalar)
            k(s8, pa + oa + lo, sa, za, pb + ob, sb, zb, sc, zc, py + o + lo, n, true);
        else
            k(s8, pa + oa + lo, sa, za, pb + ob + lo, sb, zb, sc, zc, py + o + lo, n, false);
    }
    return OQ_OK;
}

static oq_status qbin_init(const oq_node *n, const char *where, qbin_kernel k, void **state)
{
    (void)n;
    qbin_kernel *s = malloc(sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    *s = k;
    *state = s;
    return OQ_OK;
}

static oq_status qbin_pick(const char *where, enum oq_qelt_op op, const oq_node *n,
                          void **state)
{
    const char *err = NULL;
    qbin_kernel k = oq_qelt_select(op, &err);
    if (!k)
        return oq_error(OQ_E_INVALID, "%s: %s", where, err);
    return qbin_init(n, where, k, state);
}

static oq_status qadd_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    (void)opset;
    return qbin_pick(where, OQ_QELT_ADD, n, state);
}

static oq_status qmul_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    (void)opset;
    return qbin_pick(where, OQ_QELT_MUL, n, state);
}

const oq_op_impl oq_impl_qlinear_add = {qadd_init, NULL, qbin_infer, NULL, qbin_run};
const oq_op_impl oq_impl_qlinear_mul = {qmul_init, NULL, qbin_infer, NULL, qbin_run};

/* ---- QLinearLeakyRelu, QLinearSigmoid: 256-entry tables ---- */

typedef struct qlut {
    enum oq_qlms_fn fn;
    float alpha;
} qlut;

static oq_status qlut_init(const oq_node *n, const char *where, enum oq_qlms_fn fn,
                           void **state)
{
    qlut *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    s->fn = fn;
    oq_status e = fn == OQ_QLMS_LEAKYRELU ? oq_attr_get_float(n, where, "alpha", 0.01f, &s->alpha)
                                          : OQ_OK;
    if (e != OQ_OK) {
        free(s);
        return e;
    }
    *state = s;
    return OQ_OK;
}

static oq_status qleaky_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    (void)opset;
    return qlut_init(n, where, OQ_QLMS_LEAKYRELU, state);
}

static oq_status qsigmoid_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    (void)opset;
    return qlut_init(n, where, OQ_QLMS_SIGMOID, state);
}

/* X, X_scale, X_zero_point, Y_scale, Y_zero_point: Y has X's shape. */
static oq_status qunary_infer(oq_kctx *ctx)
{
    bool s8;
    oq_status e = oq_qlms_check_data(ctx, 0, &s8);
    if (e == OQ_OK)
        e = oq_qlms_check_scale(ctx, 1);
    if (e == OQ_OK)
        e = oq_qlms_check_zp(ctx, 2, s8);
    if (e == OQ_OK)
        e = oq_qlms_check_scale(ctx, 3);
    if (e == OQ_OK)
        e = oq_qlms_check_zp(ctx, 4, s8);
    const oq_tensor *x = ctx->in[0];
    return e == OQ_OK ? oq_set_out(ctx, 0, x->dtype, x->rank, x->dims) : e;
}

#define LUT_BLOCK 65536

static void lookup_parallel(const uint8_t table[256], const uint8_t *x, uint8_t *y, size_t n)
{
    size_t blocks = (n + LUT_BLOCK - 1) / LUT_BLOCK;
#pragma omp parallel for if (oq_parallel_worth(blocks, LUT_BLOCK))
    for (size_t i = 0; i < blocks; i++) {
        size_t lo = i * LUT_BLOCK;
        oq_qlms_lookup_ref(table, x + lo, y + lo, n - lo < LUT_BLOCK ? n - lo : LUT_BLOCK);
    }
}

static oq_status qlut_run(oq_kctx *ctx)
{
    const qlut *s = ctx->state;
    const bool s8 = ctx->in[0]->dtype == OQ_INT8;
    uint8_t table[256];
    oq_qlms_table_ref(s8, s->fn, s->alpha, oq_qlms_scale(ctx, 1), oq_qlms_zp(ctx, 2, s8),
                      oq_qlms_scale(ctx, 3), oq_qlms_zp(ctx, 4, s8), table);
    lookup_parallel(table, ctx->in[0]->data, ctx->out[0]->data, ctx->in[0]->count);
    return OQ_OK;
}

const oq_op_impl oq_impl_qlinear_leaky_relu = {qleaky_init, NULL, qunary_infer, NULL, qlut_run};
const oq_op_impl oq_impl_qlinear_sigmoid = {qsigmoid_init, NULL, qunary_infer, NULL, qlut_run};

/* ---- QLinearConcat: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point)... ---- */

static oq_status qconcat_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    (void)opset;
    int64_t *axis = malloc(sizeof *axis);
    if (!axis)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    oq_status e = oq_node_attr(n, "axis")
                      ? oq_attr_get_int(n, where, "axis", 0, axis)
                      : oq_error(OQ_E_INVALID, "%s: attribute 'axis' is required", where);
    if (e != OQ_OK) {
        free(axis);
        return e;
    }
    *state = axis;
    return OQ_OK;
}

/* The inputs' dtypes and scales. Y_zero_point decides the type; the zero
 * points are required (onnxruntime reads them unconditionally). */
static oq_status qconcat_check(oq_kctx *ctx, bool *s8)
{
    if (ctx->n_in < 5 || (ctx->n_in - 2) % 3)
        return oq_kerr(ctx, OQ_E_INVALID, "inputs must be Y_scale, Y_zero_point and (tensor, "
                       "scale, zero point) triples; there are %zu", ctx->n_in);
    for (size_t i = 1; i < ctx->n_in; i += 3)
        if (!ctx->in[i])
            return oq_kerr(ctx, OQ_E_INVALID, "zero point input %zu is missing", i);
    oq_status e = oq_qlms_check_scale(ctx, 0);
    if (e == OQ_OK)
        e = oq_qlms_check_data(ctx, 1, s8);
    if (e == OQ_OK)
        e = oq_qlms_check_zp(ctx, 1, *s8);
    for (size_t i = 2; e == OQ_OK && i < ctx->n_in; i += 3) {
        bool t8;
        e = oq_qlms_check_data(ctx, i, &t8);
        if (e == OQ_OK && t8 != *s8)
            return oq_kerr(ctx, OQ_E_INVALID, "input %zu is %s, Y_zero_point is %s", i,
                           t8 ? "int8" : "uint8", *s8 ? "int8" : "uint8");
        if (e == OQ_OK)
            e = oq_qlms_check_scale(ctx, i + 1);
        if (e == OQ_OK)
            e = oq_qlms_check_zp(ctx, i + 2, *s8);
    }
    return e;
}

static oq_status qconcat_infer(oq_kctx *ctx)
{
    bool s8 = false;
    oq_status e = qconcat_check(ctx, &s8);
    if (e != OQ_OK)
        return e;
    const oq_tensor *f = ctx->in[2];
    int axis;
    e = oq_norm_axis(ctx, *(const int64_t *)ctx->state, f->rank, &axis);
    if (e != OQ_OK)
        return e;
    int64_t dims[OQ_MAX_RANK];
    memcpy(dims, f->dims, (size_t)f->rank * sizeof *dims);
    for (size_t i = 5; i < ctx->n_in; i += 3) {
        const oq_tensor *t = ctx->in[i];
        if (t->rank != f->rank)
            return oq_kerr(ctx, OQ_E_INVALID, "input %zu has rank %d, input 2 rank %d", i,
                           t->rank, f->rank);
        for (int d = 0; d < f->rank; d++)
            if (d != axis && t->dims[d] != f->dims[d])
                return oq_kerr(ctx, OQ_E_INVALID, "input %zu has dimension %lld at axis %d, "
                               "input 2 has %lld", i, (long long)t->dims[d], d,
                               (long long)f->dims[d]);
        dims[axis] += t->dims[axis];
    }
    return oq_set_out(ctx, 0, f->dtype, f->rank, dims);
}

static oq_status qconcat_run(oq_kctx *ctx)
{
    oq_tensor *y = ctx->out[0];
    if (y->count == 0)
        return OQ_OK;
    const bool s8 = y->dtype == OQ_INT8;
    int axis;
    oq_norm_axis(ctx, *(const int64_t *)ctx->state, y->rank, &axis);
    const size_t outer = oq_dims_prod(y->dims, 0, axis), ypitch = y->count / outer;
    const float ys = oq_qlms_scale(ctx, 0);
    const int32_t yzp = oq_qlms_zp(ctx, 1, s8);
    size_t at = 0; /* offset of this input's block within an output row */
    for (size_t i = 2; i < ctx->n_in; i += 3) {
        const oq_tensor *t = ctx->in[i];
        const size_t pitch = t->count / outer;
        const float xs = oq_qlms_scale(ctx, i + 1);
        const int32_t xzp = oq_qlms_zp(ctx, i + 2, s8);
        const bool copy = xs == ys && xzp == yzp;
        uint8_t table[256];
        if (!copy)
            oq_qlms_table_ref(s8, OQ_QLMS_IDENTITY, 0.0f, xs, xzp, ys, yzp, table);
        const uint8_t *src = t->data;
        uint8_t *dst = (uint8_t *)y->data + at;
#pragma omp parallel for if (oq_parallel_worth(outer, pitch))
        for (size_t o = 0; o < outer; o++) {
            if (copy)
                memcpy(dst + o * ypitch, src + o * pitch, pitch);
            else
                oq_qlms_lookup_ref(table, src + o * pitch, dst + o * ypitch, pitch);
        }
        at += pitch;
    }
    return OQ_OK;
}

const oq_op_impl oq_impl_qlinear_concat = {qconcat_init, NULL, qconcat_infer, NULL, qconcat_run};

/* ---- QLinearSoftmax: X, X_scale, x_zero_point (unused), y_scale, y_zero_point ---- */

typedef struct qsoftmax {
    int64_t axis, opset; /* opset: the Softmax whose axis semantics apply */
} qsoftmax;

static oq_status qsoftmax_init(const oq_node *n, int64_t opset, const char *where,
                               void **state)
{
    (void)opset;
    qsoftmax *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    oq_status e = oq_node_attr(n, "opset")
                      ? oq_attr_get_int(n, where, "opset", 0, &s->opset)
                      : oq_error(OQ_E_INVALID, "%s: attribute 'opset' is required", where);
    if (e == OQ_OK)
        e = oq_attr_get_int(n, where, "axis", -1, &s->axis);
    if (e != OQ_OK) {
        free(s);
        return e;
    }
    *state = s;
    return OQ_OK;
}

static oq_status qsoftmax_infer(oq_kctx *ctx)
{
    oq_status e = qunary_infer(ctx);
    int axis;
    return e == OQ_OK ? oq_norm_axis(ctx, ((const qsoftmax *)ctx->state)->axis,
                                     ctx->in[0]->rank, &axis)
                      : e;
}

static oq_status qsoftmax_run(oq_kctx *ctx)
{
    const qsoftmax *s = ctx->state;
    const oq_tensor *x = ctx->in[0];
    if (x->count == 0)
        return OQ_OK;
    const bool s8 = x->dtype == OQ_INT8;
    int axis;
    oq_norm_axis(ctx, s->axis, x->rank, &axis);
    /* before opset 13 the rows are the dims from axis on, flattened */
    const size_t outer = oq_dims_prod(x->dims, 0, axis);
    const size_t d = s->opset < 13 ? x->count / outer : (size_t)x->dims[axis];
    const size_t inner = x->count / outer / d;
    float table[256];
    oq_qlms_softmax_table_ref(oq_qlms_scale(ctx, 1), d, table);
    const float y_inv = floorf(1.0f / oq_qlms_scale(ctx, 3));
    const int32_t yzp = oq_qlms_zp(ctx, 4, s8);
    const uint8_t *px = x->data;
    uint8_t *py = ctx->out[0]->data;
#pragma omp parallel for if (oq_parallel_worth(outer * inner, d * 8))
    for (size_t r = 0; r < outer * inner; r++) {
        size_t base = r / inner * d * inner + r % inner;
        oq_qlms_softmax_row_ref(s8, table, px + base, d, inner, y_inv, yzp, py + base);
    }
    return OQ_OK;
}

const oq_op_impl oq_impl_qlinear_softmax = {qsoftmax_init, NULL, qsoftmax_infer, NULL,
                                            qsoftmax_run};
