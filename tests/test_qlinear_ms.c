/* The com.microsoft QLinear* operators on hand-derived cases, each through a
 * one-node model and a session: ties (round half to even at .5 steps made
 * exact by power-of-two scales), saturation, zero points 0/128/255 and
 * -128/0/127, broadcasting (and the operand order onnxruntime uses for a
 * broadcast operand), attributes, and the error paths. Expected values are
 * worked out in the comments; tests/test_qlinear_ms_ort.py compares against
 * onnxruntime itself on random cases. The kernels' building blocks
 * (conversion, logistic) are checked directly too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/onnxq.h"
#include "kernels/isa.h"
#include "kernels/qelt.h"
#include "ops/ops_qlinear_ms_kern.h"
#include "testutil.h"

/* ---- tensors and attributes ---- */

static oq_tensor *tnew(oq_dtype dt, int rank, const int64_t *dims, const void *v)
{
    oq_tensor *t;
    if (oq_tensor_new(NULL, dt, rank, dims, &t) != OQ_OK)
        return NULL;
    memcpy(t->data, v, oq_tensor_nbytes(t));
    return t;
}

static oq_tensor *sf(float v) { return tnew(OQ_FLOAT, 0, NULL, &v); }
static oq_tensor *su8(uint8_t v) { return tnew(OQ_UINT8, 0, NULL, &v); }
static oq_tensor *ss8(int8_t v) { return tnew(OQ_INT8, 0, NULL, &v); }
static oq_tensor *tu8(int rank, const int64_t *dims, const uint8_t *v)
{
    return tnew(OQ_UINT8, rank, dims, v);
}
static oq_tensor *ts8(int rank, const int64_t *dims, const int8_t *v)
{
    return tnew(OQ_INT8, rank, dims, v);
}

typedef struct attrs {
    size_t n;
    oq_attr a[8];
} attrs;

static oq_attr *at_new(attrs *A, const char *name, oq_attr_type type)
{
    oq_attr *a = &A->a[A->n++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = type;
    return a;
}

static void at_int(attrs *A, const char *name, int64_t v) { at_new(A, name, OQ_ATTR_INT)->i = v; }
static void at_float(attrs *A, const char *name, float v)
{
    at_new(A, name, OQ_ATTR_FLOAT)->f = v;
}
static void at_ints(attrs *A, const char *name, size_t n, const int64_t *v)
{
    oq_attr *a = at_new(A, name, OQ_ATTR_INTS);
    a->n = n;
    a->ints = malloc(n * sizeof *v);
    memcpy(a->ints, v, n * sizeof *v);
}
static void at_str(attrs *A, const char *name, const char *s)
{
    oq_attr *a = at_new(A, name, OQ_ATTR_STRING);
    a->s.len = strlen(s);
    a->s.data = strdup(s);
}

/* ---- a one-node model ---- */

static oq_type *type_of(const oq_tensor *t)
{
    oq_type *ty = calloc(1, sizeof *ty);
    ty->kind = OQ_TYPE_TENSOR;
    ty->elem = t->dtype;
    ty->has_shape = true;
    ty->rank = t->rank;
    ty->dims = calloc((size_t)t->rank + 1, sizeof *ty->dims);
    for (int i = 0; i < t->rank; i++) {
        ty->dims[i].kind = OQ_DIM_VALUE;
        ty->dims[i].value = t->dims[i];
    }
    return ty;
}

static oq_model *one_node(const char *op, attrs *A, size_t n_in, oq_tensor **in)
{
    oq_model *m;
    oq_graph *g;
    oq_node *n;
    oq_model_new(&m);
    m->ir_version = 8;
    m->n_opsets = 2;
    m->opsets = calloc(2, sizeof *m->opsets);
    m->opsets[0].version = 13;
    m->opsets[1].domain = strdup("com.microsoft");
    m->opsets[1].version = 1;
    oq_graph_new(&m->graph);
    g = m->graph;
    g->inputs = calloc(n_in + 1, sizeof *g->inputs);
    g->outputs = calloc(1, sizeof *g->outputs);
    g->n_outputs = 1;
    g->outputs[0].name = strdup("y");
    oq_node_new(op, "n", &n);
    n->domain = strdup("com.microsoft");
    n->n_inputs = n_in;
    n->inputs = calloc(n_in + 1, sizeof *n->inputs);
    for (size_t i = 0; i < n_in; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%zu", i);
        n->inputs[i] = strdup(in[i] ? nm : "");
        if (in[i]) {
            g->inputs[g->n_inputs].name = strdup(nm);
            g->inputs[g->n_inputs++].type = type_of(in[i]);
        }
    }
    n->n_outputs = 1;
    n->outputs = calloc(2, sizeof *n->outputs);
    n->outputs[0] = strdup("y");
    if (A && A->n) {
        n->n_attrs = A->n;
        n->attrs = calloc(A->n, sizeof *n->attrs);
        memcpy(n->attrs, A->a, A->n * sizeof *A->a);
        A->n = 0; /* the node owns them now */
    }
    oq_graph_add_node(g, n);
    return m;
}

static oq_session_options g_opts; /* the session options run_op uses */

/* Runs op on the inputs (NULL entries: omitted inputs); frees the inputs.
 * On success *out is a copy of the output. */
static oq_status run_op(const char *op, attrs *A, size_t n_in, oq_tensor **in, oq_tensor **out)
{
    oq_model *m = one_node(op, A, n_in, in);
    const oq_tensor *feeds[16];
    size_t nf = 0;
    for (size_t i = 0; i < n_in; i++)
        if (in[i])
            feeds[nf++] = in[i];
    oq_session *s = NULL;
    *out = NULL;
    oq_status st = oq_session_new(m, &g_opts, &s);
    if (st == OQ_OK) {
        const oq_tensor *y;
        st = oq_session_run(s, feeds, &y);
        if (st == OQ_OK)
            st = oq_tensor_clone(y, out);
    }
    oq_session_free(s);
    oq_model_free(m);
    for (size_t i = 0; i < n_in; i++)
        oq_tensor_free(in[i]);
    return st;
}

/* Checks status OK, the output's dtype and shape, and its bytes. */
static void expect(const char *what, oq_status st, oq_tensor *y, oq_dtype dt, int rank,
                   const int64_t *dims, const void *want)
{
    if (st != OQ_OK) {
        tu_fail++;
        fprintf(stderr, "%s: failed: %s\n", what, oq_errmsg());
        return;
    }
    bool ok = y->dtype == dt && y->rank == rank &&
              (rank == 0 || memcmp(y->dims, dims, (size_t)rank * sizeof *dims) == 0);
    if (!ok) {
        tu_fail++;
        fprintf(stderr, "%s: dtype %d rank %d, expected dtype %d rank %d (or other dims)\n", what,
                y->dtype, y->rank, dt, rank);
    } else {
        for (size_t i = 0; i < y->count; i++) {
            int got = dt == OQ_INT8 ? ((int8_t *)y->data)[i] : ((uint8_t *)y->data)[i];
            int exp = dt == OQ_INT8 ? ((const int8_t *)want)[i] : ((const uint8_t *)want)[i];
            if (got != exp) {
                fprintf(stderr, "%s: element %zu is %d, expected %d\n", what, i, got, exp);
                ok = false;
            }
        }
        if (ok)
            tu_pass++;
        else
            tu_fail++;
    }
    oq_tensor_free(y);
}

#define IN(...) ((oq_tensor *[]){__VA_ARGS__})
#define NIN(...) (sizeof((oq_tensor *[]){__VA_ARGS__}) / sizeof(oq_tensor *))
#define RUN(op, A, y, ...) run_op(op, A, NIN(__VA_ARGS__), IN(__VA_ARGS__), y)
#define D(...) ((const int64_t[]){__VA_ARGS__})
#define U(...) ((const uint8_t[]){__VA_ARGS__})
#define S(...) ((const int8_t[]){__VA_ARGS__})

/* ---- kernels' building blocks ---- */

static void test_cvt(void)
{
    /* CVTPS2DQ: half to even; NaN and out of range give INT32_MIN */
    CHECK(oq_qlms_cvt(0.5f) == 0 && oq_qlms_cvt(1.5f) == 2 && oq_qlms_cvt(2.5f) == 2);
    CHECK(oq_qlms_cvt(-0.5f) == 0 && oq_qlms_cvt(-1.5f) == -2 && oq_qlms_cvt(-2.5f) == -2);
    CHECK(oq_qlms_cvt(2.4999998f) == 2 && oq_qlms_cvt(-3.5000002f) == -4);
    CHECK(oq_qlms_cvt(NAN) == INT32_MIN && oq_qlms_cvt(3e9f) == INT32_MIN);
    CHECK(oq_qlms_cvt(-2147483648.0f) == INT32_MIN && oq_qlms_cvt(2147483520.0f) == 2147483520);
    /* logistic: exactly 0.5 at 0 (p = 0); inputs clamped to +-18 */
    float x[4] = {0.0f, 100.0f, -100.0f, 18.0f}, y[4];
    oq_qlms_logistic_ref(x, y, 4);
    CHECK(y[0] == 0.5f && y[1] == y[3] && y[1] > 0.9999f && y[2] >= 0.0f && y[2] < 1e-7f);
}

/* ---- QLinearAdd, QLinearMul ---- */

static void test_add(void)
{
    oq_tensor *y;
    /* uint8, A: scale 0.5 zp 128, B (a scalar) 128 -> 0, C: scale 1 zp 128.
     * a = 0.5, 1.5, -0.5, -1.5, 63.5, -64: half to even 0, 2, 0, -2, 64, -64;
     * + 128 */
    oq_status st = RUN("QLinearAdd", NULL, &y, tu8(1, D(6), U(129, 131, 127, 125, 255, 0)),
                       sf(0.5f), su8(128), su8(128), sf(0.5f), su8(128), sf(1.0f), su8(128));
    expect("add ties", st, y, OQ_UINT8, 1, D(6), U(128, 130, 128, 126, 192, 64));
    /* the same with B first: the scalar A is given the second role */
    st = RUN("QLinearAdd", NULL, &y, su8(128), sf(0.5f), su8(128),
             tu8(1, D(6), U(129, 131, 127, 125, 255, 0)), sf(0.5f), su8(128), sf(1.0f), su8(128));
    expect("add ties, scalar A", st, y, OQ_UINT8, 1, D(6), U(128, 130, 128, 126, 192, 64));
    /* C scale 0.25: 63.5 / 0.25 + 128 = 382 -> 255; -64 / 0.25 + 128 = -128 -> 0 */
    st = RUN("QLinearAdd", NULL, &y, tu8(1, D(2), U(255, 0)), sf(0.5f), su8(128), su8(128),
             sf(0.5f), su8(128), sf(0.25f), su8(128));
    expect("add saturation", st, y, OQ_UINT8, 1, D(2), U(255, 0));
    /* zero points 0 and 255, C zero point omitted (0): 10-5, 200+0, 0-255 -> 5, 200, 0 */
    st = RUN("QLinearAdd", NULL, &y, tu8(1, D(3), U(10, 200, 0)), sf(1.0f), su8(0),
             tu8(1, D(3), U(250, 255, 0)), sf(1.0f), su8(255), sf(1.0f));
    expect("add zp 0/255", st, y, OQ_UINT8, 1, D(3), U(5, 200, 0));
    /* int8, A zp -128, B zp 127, C scale 2 zp 0: a = 0, 255, 128, 3; b = 0, -255, -1, 0;
     * (a + b) / 2 = 0, 0, 63.5 -> 64, 1.5 -> 2 */
    st = RUN("QLinearAdd", NULL, &y, ts8(1, D(4), S(-128, 127, 0, -125)), sf(1.0f), ss8(-128),
             ts8(1, D(4), S(127, -128, 126, 127)), sf(1.0f), ss8(127), sf(2.0f), ss8(0));
    expect("add int8 zp -128/127", st, y, OQ_INT8, 1, D(4), S(0, 0, 64, 2));
    /* int8 saturation with C zp 127: 3 + 127 = 130 -> 127; -3 + 127 = 124 */
    st = RUN("QLinearAdd", NULL, &y, ts8(1, D(2), S(1, -1)), sf(1.0f), ss8(0),
             ts8(1, D(2), S(2, -2)), sf(1.0f), ss8(0), sf(1.0f), ss8(127));
    expect("add int8 saturation", st, y, OQ_INT8, 1, D(2), S(127, 124));
}

static void test_add_broadcast(void)
{
    oq_tensor *y;
    /* scales 1, zero points 0: plain sums */
    oq_status st = RUN("QLinearAdd", NULL, &y, tu8(2, D(2, 3), U(1, 2, 3, 4, 5, 6)), sf(1.0f),
                       su8(0), tu8(1, D(3), U(10, 20, 30)), sf(1.0f), su8(0), sf(1.0f), su8(0));
    expect("add [2,3]+[3]", st, y, OQ_UINT8, 2, D(2, 3), U(11, 22, 33, 14, 25, 36));
    st = RUN("QLinearAdd", NULL, &y, tu8(2, D(2, 1), U(1, 2)), sf(1.0f), su8(0),
             tu8(2, D(1, 3), U(10, 20, 30)), sf(1.0f), su8(0), sf(1.0f), su8(0));
    expect("add [2,1]+[1,3]", st, y, OQ_UINT8, 2, D(2, 3), U(11, 21, 31, 12, 22, 32));
    st = RUN("QLinearAdd", NULL, &y, su8(5), sf(1.0f), su8(0),
             tu8(2, D(2, 2), U(1, 2, 3, 4)), sf(1.0f), su8(0), sf(1.0f), su8(0));
    expect("add []+[2,2]", st, y, OQ_UINT8, 2, D(2, 2), U(6, 7, 8, 9));
    /* per channel: [1,2,2,1] + [1,2,1,1] adds 100 to channel 0, 200 to channel 1 */
    st = RUN("QLinearAdd", NULL, &y, tu8(4, D(1, 2, 2, 1), U(1, 2, 3, 4)), sf(1.0f), su8(0),
             tu8(4, D(1, 2, 1, 1), U(100, 200)), sf(1.0f), su8(0), sf(1.0f), su8(0));
    expect("add per channel", st, y, OQ_UINT8, 4, D(1, 2, 2, 1), U(101, 102, 203, 204));
    /* [1] against [] : a one-element output */
    st = RUN("QLinearAdd", NULL, &y, tu8(1, D(1), U(7)), sf(1.0f), su8(0), su8(8), sf(1.0f),
             su8(0), sf(1.0f), su8(0));
    expect("add [1]+[]", st, y, OQ_UINT8, 1, D(1), U(15));
}

static void test_mul(void)
{
    oq_tensor *y;
    /* uint8, scales 0.5 zp 128 for A and B, C scale 0.5 zp 128: (A-128)(B-128) * 0.5 =
     * 2*1*0.5 = 1, 3*1*0.5 = 1.5 -> 2, (-3)(-1)*0.5 = 1.5 -> 2, 1*5*0.5 = 2.5 -> 2; + 128 */
    oq_status st = RUN("QLinearMul", NULL, &y, tu8(1, D(4), U(130, 131, 125, 129)), sf(0.5f),
                       su8(128), tu8(1, D(4), U(129, 129, 127, 133)), sf(0.5f), su8(128),
                       sf(0.5f), su8(128));
    expect("mul ties", st, y, OQ_UINT8, 1, D(4), U(129, 130, 130, 130));
    /* int8 C zp 127: 2*3 + 127 = 133 -> 127; -3*5 + 127 = 112 */
    st = RUN("QLinearMul", NULL, &y, ts8(1, D(2), S(2, -3)), sf(1.0f), ss8(0),
             ts8(1, D(2), S(3, 5)), sf(1.0f), ss8(0), sf(1.0f), ss8(127));
    expect("mul int8 saturation", st, y, OQ_INT8, 1, D(2), S(127, 112));
    /* broadcast scalar B = 3 (zp 0) over [2,2] with A zp 255: (A - 255) * 3 / 2, C zp 200:
     * A = 255 -> 200; 254 -> -1.5 -> -2 -> 198; 253 -> -3 -> 197; 0 -> -382.5 -> 0 */
    st = RUN("QLinearMul", NULL, &y, tu8(2, D(2, 2), U(255, 254, 253, 0)), sf(1.0f), su8(255),
             su8(3), sf(1.0f), su8(0), sf(2.0f), su8(200));
    expect("mul broadcast", st, y, OQ_UINT8, 2, D(2, 2), U(200, 198, 197, 0));
}

/* ---- QLinearLeakyRelu, QLinearSigmoid ---- */

static void test_lut(void)
{
    oq_tensor *y;
    attrs A = {0};
    /* X scale 0.5 zp 128, Y scale 0.25 zp 64, alpha 0.5: x = 0, 0.5, 1, -0.5, -1, -64, 63.5;
     * f = 0, 0.5, 1, -0.25, -0.5, -32, 63.5; /0.25 = 0, 2, 4, -1, -2, -128, 254; + 64 */
    at_float(&A, "alpha", 0.5f);
    oq_status st = RUN("QLinearLeakyRelu", &A, &y, tu8(1, D(7), U(128, 129, 130, 127, 126, 0, 255)),
                       sf(0.5f), su8(128), sf(0.25f), su8(64));
    expect("leakyrelu", st, y, OQ_UINT8, 1, D(7), U(64, 66, 68, 63, 62, 0, 255));
    /* alpha 0.25: x = -0.5 -> -0.125 / 0.25 = -0.5 -> 0; x = -1.5 -> -1.5 -> -2 (ties) */
    at_float(&A, "alpha", 0.25f);
    st = RUN("QLinearLeakyRelu", &A, &y, tu8(1, D(2), U(127, 125)), sf(0.5f), su8(128),
             sf(0.25f), su8(64));
    expect("leakyrelu ties", st, y, OQ_UINT8, 1, D(2), U(64, 62));
    /* default alpha 0.01, int8, zero points omitted: x = -100 -> -1 ; 50 -> 50 */
    st = RUN("QLinearLeakyRelu", NULL, &y, ts8(1, D(2), S(-100, 50)), sf(1.0f), NULL, sf(1.0f));
    expect("leakyrelu default alpha", st, y, OQ_INT8, 1, D(2), S(-1, 50));
    /* sigmoid(0) = 0.5 exactly -> 0.5 * 256 = 128; +-127 saturate to 255 and 0 */
    st = RUN("QLinearSigmoid", NULL, &y, tu8(1, D(3), U(128, 255, 0)), sf(1.0f), su8(128),
             sf(1.0f / 256), su8(0));
    expect("sigmoid uint8", st, y, OQ_UINT8, 1, D(3), U(128, 255, 0));
    st = RUN("QLinearSigmoid", NULL, &y, ts8(1, D(3), S(0, 127, -128)), sf(1.0f), ss8(0),
             sf(1.0f / 256), ss8(-128));
    expect("sigmoid int8", st, y, OQ_INT8, 1, D(3), S(0, 127, -128));
}

/* ---- QLinearConcat ---- */

static void test_concat(void)
{
    oq_tensor *y;
    attrs A = {0};
    /* axis 1, Y scale 1 zp 0. [2,1] with Y's quantization: copied. [2,2] scale 2 zp 10:
     * 2 * (x - 10) = 0, 2, 4, 380 -> 255. [2,1] scale 0.5 zp 0: 1.5 -> 2, 2.5 -> 2. */
    at_int(&A, "axis", 1);
    oq_status st = RUN("QLinearConcat", &A, &y, sf(1.0f), su8(0), tu8(2, D(2, 1), U(7, 8)),
                       sf(1.0f), su8(0), tu8(2, D(2, 2), U(10, 11, 12, 200)), sf(2.0f), su8(10),
                       tu8(2, D(2, 1), U(3, 5)), sf(0.5f), su8(0));
    expect("concat axis 1", st, y, OQ_UINT8, 2, D(2, 4), U(7, 0, 2, 2, 8, 4, 255, 2));
    /* int8, axis -2 (0), Y zp -128: a copy, then x - 128 = -129 -> -128 and 100 - 128 */
    at_int(&A, "axis", -2);
    st = RUN("QLinearConcat", &A, &y, sf(1.0f), ss8(-128), ts8(2, D(1, 2), S(-128, 127)),
             sf(1.0f), ss8(-128), ts8(2, D(1, 2), S(-1, 100)), sf(1.0f), ss8(0));
    expect("concat int8", st, y, OQ_INT8, 2, D(2, 2), S(-128, 127, -128, -28));
}

/* ---- QLinearGlobalAveragePool, QLinearAveragePool ---- */

static void test_gap(void)
{
    oq_tensor *y;
    attrs A = {0};
    /* scale 1 / (1 * 4): channel sums 10 -> 2.5 -> 2, 11 -> 2.75 -> 3 */
    oq_status st = RUN("QLinearGlobalAveragePool", NULL, &y,
                       tu8(4, D(1, 2, 2, 2), U(1, 2, 3, 4, 1, 2, 3, 5)), sf(1.0f), su8(0),
                       sf(1.0f), su8(0));
    expect("gap", st, y, OQ_UINT8, 4, D(1, 2, 1, 1), U(2, 3));
    at_int(&A, "channels_last", 1);
    st = RUN("QLinearGlobalAveragePool", &A, &y, tu8(4, D(1, 2, 2, 2), U(1, 1, 2, 2, 3, 3, 4, 5)),
             sf(1.0f), su8(0), sf(1.0f), su8(0));
    expect("gap channels_last", st, y, OQ_UINT8, 4, D(1, 1, 1, 2), U(2, 3));
    /* zero points 128 (x) and 128 (y): (521 - 4*128) / 4 = 2.25 -> 2 -> 130; and y zp 255
     * saturates: 257 -> 255 */
    st = RUN("QLinearGlobalAveragePool", NULL, &y, tu8(3, D(1, 1, 4), U(130, 130, 130, 131)),
             sf(1.0f), su8(128), sf(1.0f), su8(128));
    expect("gap zp 128", st, y, OQ_UINT8, 3, D(1, 1, 1), U(130));
    st = RUN("QLinearGlobalAveragePool", NULL, &y, tu8(3, D(1, 1, 4), U(130, 130, 130, 131)),
             sf(1.0f), su8(128), sf(1.0f), su8(255));
    expect("gap zp 255", st, y, OQ_UINT8, 3, D(1, 1, 1), U(255));
    /* int8, x scale 2 zp -128: sum 7 * 2 / 4 = 3.5 -> 4; + 127 saturates */
    st = RUN("QLinearGlobalAveragePool", NULL, &y, ts8(3, D(1, 1, 4), S(-128, -127, -126, -124)),
             sf(2.0f), ss8(-128), sf(1.0f), ss8(0));
    expect("gap int8", st, y, OQ_INT8, 3, D(1, 1, 1), S(4));
    st = RUN("QLinearGlobalAveragePool", NULL, &y, ts8(3, D(1, 1, 4), S(-128, -127, -126, -124)),
             sf(2.0f), ss8(-128), sf(1.0f), ss8(127));
    expect("gap int8 saturation", st, y, OQ_INT8, 3, D(1, 1, 1), S(127));
}

/* The integer-only requantization (the session's fixed mode) of the same
 * sums: ties go away from zero (10 / 4 = 2.5 gives 3, where the float mode
 * gives 2), and over random cases it stays within 1 of the float mode. */
static void test_gap_fixed(void)
{
    oq_tensor *y, *yf;
    g_opts.requant = OQ_REQUANT_FIXED;
    oq_status st = RUN("QLinearGlobalAveragePool", NULL, &y,
                       tu8(4, D(1, 2, 2, 2), U(1, 2, 3, 4, 1, 2, 3, 5)), sf(1.0f), su8(0),
                       sf(1.0f), su8(0));
    expect("gap fixed", st, y, OQ_UINT8, 4, D(1, 2, 1, 1), U(3, 3));
    uint8_t x[4 * 32 * 7];
    uint32_t r = 12345;
    int worst = 0, differ = 0;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof x; i++)
            x[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 23);
        float xs = 0.01f + (float)(r % 1000) / 997.0f, ys = xs * (0.3f + (float)(r % 77) / 50);
        uint8_t xz = (uint8_t)(r >> 8), yz = (uint8_t)(r >> 16);
        g_opts.requant = OQ_REQUANT_FIXED;
        st = RUN("QLinearGlobalAveragePool", NULL, &y, tu8(3, D(4, 32, 7), x), sf(xs), su8(xz),
                 sf(ys), su8(yz));
        g_opts.requant = OQ_REQUANT_FLOAT;
        oq_status st2 = RUN("QLinearGlobalAveragePool", NULL, &yf, tu8(3, D(4, 32, 7), x),
                            sf(xs), su8(xz), sf(ys), su8(yz));
        CHECK(st == OQ_OK && st2 == OQ_OK);
        for (size_t i = 0; st == OQ_OK && st2 == OQ_OK && i < y->count; i++) {
            int d = abs(((uint8_t *)y->data)[i] - ((uint8_t *)yf->data)[i]);
            worst = d > worst ? d : worst;
            differ += d != 0;
        }
        oq_tensor_free(y);
        oq_tensor_free(yf);
    }
    CHECK(worst <= 1);
    printf("gap fixed vs float: %d of %d outputs differ (by 1)\n", differ, 20 * 128);
    g_opts.requant = OQ_REQUANT_FLOAT;
}

static const uint8_t img9[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}; /* a 3x3 image */

static oq_status avgpool(attrs *A, oq_tensor *x, float ys, uint8_t yzp, oq_tensor **y)
{
    return RUN("QLinearAveragePool", A, y, x, sf(1.0f), su8(0), sf(ys), su8(yzp));
}

static void test_avgpool(void)
{
    oq_tensor *y;
    attrs A = {0};
    /* 2x2 windows, stride 1: (0+1+3+4)/4 = 2, 12/4 = 3, 20/4 = 5, 24/4 = 6 */
    at_ints(&A, "kernel_shape", 2, D(2, 2));
    oq_status st = avgpool(&A, tu8(4, D(1, 1, 3, 3), img9), 1.0f, 0, &y);
    expect("avgpool 2x2", st, y, OQ_UINT8, 4, D(1, 1, 2, 2), U(2, 3, 5, 6));
    /* pads 1, stride 2: windows clipped to {0}, {1,2}, {3,6}, {4,5,7,8}: 0, 1.5 -> 2,
     * 4.5 -> 4, 6 (without the pads in the count) */
    at_ints(&A, "kernel_shape", 2, D(2, 2));
    at_ints(&A, "strides", 2, D(2, 2));
    at_ints(&A, "pads", 4, D(1, 1, 1, 1));
    st = avgpool(&A, tu8(4, D(1, 1, 3, 3), img9), 1.0f, 0, &y);
    expect("avgpool pads", st, y, OQ_UINT8, 4, D(1, 1, 2, 2), U(0, 2, 4, 6));
    /* count_include_pad: 0/4, 3/4 -> 1, 9/4 -> 2, 24/4 = 6 */
    at_ints(&A, "kernel_shape", 2, D(2, 2));
    at_ints(&A, "strides", 2, D(2, 2));
    at_ints(&A, "pads", 4, D(1, 1, 1, 1));
    at_int(&A, "count_include_pad", 1);
    st = avgpool(&A, tu8(4, D(1, 1, 3, 3), img9), 1.0f, 0, &y);
    expect("avgpool count_include_pad", st, y, OQ_UINT8, 4, D(1, 1, 2, 2), U(0, 1, 2, 6));
    /* 1-D, kernel 2 stride 2 over 5: floor gives 2 windows (1, 5); ceil_mode adds [4,6)
     * clipped to {8}: 8 / 1, or 8 / 2 with count_include_pad */
    at_ints(&A, "kernel_shape", 1, D(2));
    at_ints(&A, "strides", 1, D(2));
    st = avgpool(&A, tu8(3, D(1, 1, 5), U(0, 2, 4, 6, 8)), 1.0f, 0, &y);
    expect("avgpool 1-D", st, y, OQ_UINT8, 3, D(1, 1, 2), U(1, 5));
    at_ints(&A, "kernel_shape", 1, D(2));
    at_ints(&A, "strides", 1, D(2));
    at_int(&A, "ceil_mode", 1);
    st = avgpool(&A, tu8(3, D(1, 1, 5), U(0, 2, 4, 6, 8)), 1.0f, 0, &y);
    expect("avgpool ceil_mode", st, y, OQ_UINT8, 3, D(1, 1, 3), U(1, 5, 8));
    /* ceil_mode drops a last window that would start past the image: kernel 1 stride 3 over
     * 3 gives ceil(2/3) + 1 = 2 windows, the second starting at 3: one window */
    at_ints(&A, "kernel_shape", 1, D(1));
    at_ints(&A, "strides", 1, D(3));
    at_int(&A, "ceil_mode", 1);
    st = avgpool(&A, tu8(3, D(1, 1, 3), U(9, 8, 7)), 1.0f, 0, &y);
    expect("avgpool ceil_mode last window", st, y, OQ_UINT8, 3, D(1, 1, 1), U(9));
    /* SAME_UPPER, kernel 2 over 3: pad 0 before, 1 after: (0+2)/2, (2+4)/2, 4/1 */
    at_ints(&A, "kernel_shape", 1, D(2));
    at_str(&A, "auto_pad", "SAME_UPPER");
    st = avgpool(&A, tu8(3, D(1, 1, 3), U(0, 2, 4)), 1.0f, 0, &y);
    expect("avgpool SAME_UPPER", st, y, OQ_UINT8, 3, D(1, 1, 3), U(1, 3, 4));
    /* channels_last [1,3,1,2]: channel 0 = 0, 2, 4, channel 1 = 10, 20, 30; kernel [2,1] */
    at_ints(&A, "kernel_shape", 2, D(2, 1));
    at_int(&A, "channels_last", 1);
    st = avgpool(&A, tu8(4, D(1, 3, 1, 2), U(0, 10, 2, 20, 4, 30)), 1.0f, 0, &y);
    expect("avgpool channels_last", st, y, OQ_UINT8, 4, D(1, 2, 1, 2), U(1, 15, 3, 25));
    /* a window over the whole image with no padding takes the global average's path,
     * which adds the zero point after rounding: 9 / 9 / 2 = 0.5 -> 0, + 1 = 1 (the
     * windowed path would round 0.5 + 1 = 1.5 to 2) */
    at_ints(&A, "kernel_shape", 2, D(3, 3));
    st = avgpool(&A, tu8(4, D(1, 1, 3, 3), U(0, 0, 0, 0, 0, 0, 0, 0, 9)), 2.0f, 1, &y);
    expect("avgpool whole image", st, y, OQ_UINT8, 4, D(1, 1, 1, 1), U(1));
    /* with padding it stays windowed: pads 1 at the end of H, 4 windows in H */
    at_ints(&A, "kernel_shape", 2, D(3, 3));
    at_ints(&A, "pads", 4, D(0, 0, 1, 0));
    at_ints(&A, "strides", 2, D(1, 1));
    st = avgpool(&A, tu8(4, D(1, 1, 3, 3), U(0, 0, 0, 0, 0, 0, 0, 0, 9)), 2.0f, 1, &y);
    /* first window: 9/9/2 + 1 = 1.5 -> 2; second: rows 1..2 = 9/6/2 + 1 = 1.75 -> 2 */
    expect("avgpool whole image padded", st, y, OQ_UINT8, 4, D(1, 1, 2, 1), U(2, 2));
}

/* ---- QLinearSoftmax ---- */

static void test_softmax(void)
{
    oq_tensor *y;
    attrs A = {0};
    /* equal values: each 1/4 -> 64 (y scale 1/256) */
    at_int(&A, "opset", 13);
    oq_status st = RUN("QLinearSoftmax", &A, &y, tu8(2, D(1, 4), U(5, 5, 5, 5)), sf(0.1f), NULL,
                       sf(1.0f / 256), su8(0));
    expect("softmax equal", st, y, OQ_UINT8, 2, D(1, 4), U(64, 64, 64, 64));
    /* one value dominates (the others' exponentials underflow): 256 -> 255, others 0 */
    at_int(&A, "opset", 13);
    st = RUN("QLinearSoftmax", &A, &y, tu8(2, D(1, 4), U(0, 0, 0, 255)), sf(1.0f), NULL,
             sf(1.0f / 256), su8(0));
    expect("softmax saturation", st, y, OQ_UINT8, 2, D(1, 4), U(0, 0, 0, 255));
    /* int8, zp -128: 256 - 128 saturates to 127 */
    at_int(&A, "opset", 13);
    st = RUN("QLinearSoftmax", &A, &y, ts8(2, D(1, 4), S(-128, -128, -128, 127)), sf(1.0f),
             NULL, sf(1.0f / 256), ss8(-128));
    expect("softmax int8", st, y, OQ_INT8, 2, D(1, 4), S(-128, -128, -128, 127));
    /* opset 12 flattens from the axis: axis 0 of [2,2] is one row of 4 -> 64 each;
     * opset 13 reduces along axis 0 only: rows of 2 -> 128 each */
    at_int(&A, "opset", 12);
    at_int(&A, "axis", 0);
    st = RUN("QLinearSoftmax", &A, &y, tu8(2, D(2, 2), U(1, 1, 1, 1)), sf(0.5f), su8(3),
             sf(1.0f / 256), su8(0));
    expect("softmax opset 12", st, y, OQ_UINT8, 2, D(2, 2), U(64, 64, 64, 64));
    at_int(&A, "opset", 13);
    at_int(&A, "axis", 0);
    st = RUN("QLinearSoftmax", &A, &y, tu8(2, D(2, 2), U(1, 1, 1, 1)), sf(0.5f), su8(3),
             sf(1.0f / 256), su8(0));
    expect("softmax opset 13 axis 0", st, y, OQ_UINT8, 2, D(2, 2), U(128, 128, 128, 128));
}

/* ---- errors ---- */

static void test_errors(void)
{
    oq_tensor *y;
    attrs A = {0};
    float f[2] = {1.0f, 2.0f};
    /* float data is not a quantized operator's input */
    CHECK_ERR(RUN("QLinearAdd", NULL, &y, tnew(OQ_FLOAT, 1, D(2), f), sf(1.0f), su8(0),
                  tu8(1, D(2), U(1, 2)), sf(1.0f), su8(0), sf(1.0f), su8(0)),
              OQ_E_UNSUPPORTED, "dtype float");
    CHECK_ERR(RUN("QLinearAdd", NULL, &y, tu8(1, D(2), U(1, 2)), sf(1.0f), su8(0),
                  ts8(1, D(2), S(1, 2)), sf(1.0f), ss8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "A is uint8 and B is int8");
    CHECK_ERR(RUN("QLinearAdd", NULL, &y, tu8(1, D(2), U(1, 2)), sf(1.0f), ss8(0),
                  tu8(1, D(2), U(1, 2)), sf(1.0f), su8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "input 2 (a zero point) is int8");
    CHECK_ERR(RUN("QLinearAdd", NULL, &y, tu8(1, D(2), U(1, 2)), tnew(OQ_FLOAT, 1, D(2), f),
                  su8(0), tu8(1, D(2), U(1, 2)), sf(1.0f), su8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "one element");
    CHECK_ERR(RUN("QLinearAdd", NULL, &y, tu8(1, D(2), U(1, 2)), sf(1.0f), su8(0),
                  tu8(1, D(3), U(1, 2, 3)), sf(1.0f), su8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "cannot be broadcast");
    CHECK_ERR(RUN("QLinearSoftmax", NULL, &y, tu8(1, D(2), U(1, 2)), sf(1.0f), NULL, sf(1.0f),
                  su8(0)),
              OQ_E_INVALID, "attribute 'opset' is required");
    CHECK_ERR(RUN("QLinearConcat", NULL, &y, sf(1.0f), su8(0), tu8(1, D(2), U(1, 2)), sf(1.0f),
                  su8(0)),
              OQ_E_INVALID, "attribute 'axis' is required");
    at_int(&A, "axis", 0);
    CHECK_ERR(RUN("QLinearConcat", &A, &y, sf(1.0f), su8(0), tu8(1, D(2), U(1, 2)), sf(1.0f),
                  NULL),
              OQ_E_INVALID, "zero point input 4 is missing");
    at_ints(&A, "kernel_shape", 1, D(2));
    at_ints(&A, "pads", 2, D(2, 0));
    CHECK_ERR(avgpool(&A, tu8(3, D(1, 1, 5), U(0, 2, 4, 6, 8)), 1.0f, 0, &y), OQ_E_INVALID,
              "pads must be in [0, kernel size)");
    at_ints(&A, "kernel_shape", 2, D(2, 2));
    CHECK_ERR(avgpool(&A, tu8(3, D(1, 1, 5), U(0, 2, 4, 6, 8)), 1.0f, 0, &y), OQ_E_INVALID,
              "X has rank 3 for a kernel of 2 axes");
    /* onnxruntime refuses a global average whose scale is 256 or more */
    CHECK_ERR(RUN("QLinearGlobalAveragePool", NULL, &y, tu8(3, D(1, 1, 2), U(1, 2)), sf(1024.0f),
                  su8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "outside the range onnxruntime computes");
    CHECK_ERR(RUN("QLinearGlobalAveragePool", NULL, &y, tu8(2, D(1, 2), U(1, 2)), sf(1.0f),
                  su8(0), sf(1.0f), su8(0)),
              OQ_E_INVALID, "X has rank 2");
}

/* ---- the vectorised QLinearAdd/QLinearMul kernels against the reference ---- */

static uint32_t lcg = 12345u;
static uint32_t rnd(void) { return lcg = lcg * 1664525u + 1013904223u; }

/* A scale: a power of two (exact ties) or a random one in [1e-3, 1). */
static float rnd_scale(void)
{
    return rnd() % 3 == 0 ? ldexpf(1.0f, -(int)(rnd() % 8)) : 1e-3f + (float)(rnd() % 100000) / 1e5f;
}

static int32_t rnd_zp(bool s8)
{
    static const int32_t u[] = {0, 128, 255}, s[] = {-128, 0, 127};
    if (rnd() % 2)
        return s8 ? s[rnd() % 3] : u[rnd() % 3];
    return s8 ? (int32_t)(rnd() % 256) - 128 : (int32_t)(rnd() % 256);
}

static void qelt_case(enum oq_qelt_op op, oq_qelt_fn f, oq_qelt_fn ref, size_t n, bool s8,
                      bool b_scalar, uint8_t *a, uint8_t *b, uint8_t *y0, uint8_t *y1)
{
    for (size_t i = 0; i < n; i++) {
        a[i] = (uint8_t)rnd();
        b[i] = (uint8_t)rnd();
    }
    float sa = rnd_scale(), sb = rnd_scale(), sc = rnd_scale();
    int32_t za = rnd_zp(s8), zb = rnd_zp(s8), zc = rnd_zp(s8);
    memset(y0, 0xAA, n + 1);
    memset(y1, 0xAA, n + 1);
    ref(s8, a, sa, za, b, sb, zb, sc, zc, y0, n, b_scalar);
    f(s8, a, sa, za, b, sb, zb, sc, zc, y1, n, b_scalar);
    if (memcmp(y0, y1, n + 1) != 0) { /* the byte past the end too: nothing written there */
        printf("FAIL: %s n=%zu s8=%d scalar=%d sa=%g sb=%g sc=%g za=%d zb=%d zc=%d\n",
               op == OQ_QELT_ADD ? "add" : "mul", n, s8, b_scalar, sa, sb, sc, za, zb, zc);
        tu_fail++;
    } else {
        tu_pass++;
    }
}

static void test_qelt_simd(void)
{
    enum { MAXN = 1100 };
    static uint8_t a[MAXN], b[MAXN], y0[MAXN + 1], y1[MAXN + 1];
    for (int l = OQ_LEVEL_REF + 1; l < OQ_LEVEL_COUNT; l++)
        for (int op = OQ_QELT_ADD; op <= OQ_QELT_MUL; op++) {
            oq_qelt_fn f = oq_qelt_for((enum oq_qelt_op)op, l);
            if (!f)
                continue;
            oq_qelt_fn ref = oq_qelt_for((enum oq_qelt_op)op, OQ_LEVEL_REF);
            for (int r = 0; r < 400; r++) {
                size_t n = r < 100 ? (size_t)r : (size_t)(rnd() % MAXN);
                qelt_case((enum oq_qelt_op)op, f, ref, n, rnd() % 2, rnd() % 2, a, b, y0, y1);
            }
        }
}

int main(void)
{
    test_qelt_simd();
    test_cvt();
    test_add();
    test_add_broadcast();
    test_mul();
    test_lut();
    test_concat();
    test_gap();
    test_gap_fixed();
    test_avgpool();
    test_softmax();
    test_errors();
    return TEST_SUMMARY();
}
