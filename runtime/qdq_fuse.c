/* Plan-time recognition of QDQ groups (see qdq_fuse.h). Each candidate
 * node (an operator with a dequantized input) is either rewritten into an
 * integer operator or left in float with the reason written to the report. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/onnxq.h"
#include "onnxq/quantize.h"
#include "op.h"
#include "qdq_fuse.h"
#include "strmap.h"

typedef struct fctx {
    oq_model *m;
    oq_graph *g;
    oq_graph_index *ix;
    size_t n_orig;    /* nodes before the rewrite; new ones are appended */
    bool *remove;     /* per original node */
    oq_strmap names;  /* every name in use, for fresh ones */
    char *report;
    size_t report_len, report_cap;
    bool uses_ms;     /* a com.microsoft operator was introduced */
} fctx;

/* ---- small helpers ---- */

static void say(fctx *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (c->report_len + len + 2 > c->report_cap) {
        size_t cap = (c->report_cap + len + 2) * 2;
        char *p = realloc(c->report, cap);
        if (!p)
            return;
        c->report = p;
        c->report_cap = cap;
    }
    memcpy(c->report + c->report_len, line, len);
    c->report_len += len;
    c->report[c->report_len++] = '\n';
    c->report[c->report_len] = 0;
}

static bool is_op(const oq_node *n, const char *op)
{
    return n && oq_domain_is_onnx(n->domain) && strcmp(n->op_type, op) == 0;
}

static const char *node_label(const oq_node *n) { return n->name && *n->name ? n->name : ""; }

static const oq_tensor *init_of(const fctx *c, const char *name)
{
    for (size_t i = 0; name && *name && i < c->g->n_inits; i++)
        if (strcmp(oq_str(c->g->inits[i]->name), name) == 0)
            return c->g->inits[i];
    return NULL;
}

/* The node producing value, or NULL (graph input, initializer, undefined). */
static oq_node *producer(const fctx *c, const char *value)
{
    size_t k;
    if (!value || !*value ||
        oq_graph_index_source(c->ix, value, &k) != OQ_VALUE_NODE_OUTPUT)
        return NULL;
    return c->g->nodes[k];
}

/* The single reader of value (none other, not a graph output), or NULL. */
static oq_node *sole_reader(const fctx *c, const char *value)
{
    const size_t *nodes;
    if (oq_graph_index_is_output(c->ix, value) ||
        oq_graph_index_consumers(c->ix, value, &nodes) != 1)
        return NULL;
    return c->g->nodes[nodes[0]];
}

static size_t node_index(const fctx *c, const oq_node *n)
{
    for (size_t i = 0; i < c->n_orig; i++)
        if (c->g->nodes[i] == n)
            return i;
    return SIZE_MAX;
}

/* The 8-bit type of a quantized value, or 0 when it cannot be told. */
static int value_dtype(const fctx *c, const char *name)
{
    const oq_tensor *t = init_of(c, name);
    if (t)
        return t->dtype;
    const oq_node *p = producer(c, name);
    if (is_op(p, "QuantizeLinear")) {
        const oq_tensor *zp = p->n_inputs > 2 ? init_of(c, p->inputs[2]) : NULL;
        return zp ? (int)zp->dtype : OQ_UINT8;
    }
    if (is_op(p, "DynamicQuantizeLinear"))
        return OQ_UINT8;
    for (size_t i = 0; i < c->g->n_inputs; i++)
        if (strcmp(c->g->inputs[i].name, name) == 0 && c->g->inputs[i].type)
            return c->g->inputs[i].type->elem;
    for (size_t i = 0; i < c->g->n_value_info; i++)
        if (strcmp(c->g->value_info[i].name, name) == 0 && c->g->value_info[i].type)
            return c->g->value_info[i].type->elem;
    return 0;
}

static char *fresh_name(fctx *c, const char *base)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", base);
    for (unsigned k = 1; oq_strmap_get(&c->names, buf, NULL); k++)
        snprintf(buf, sizeof buf, "%s_%u", base, k);
    if (oq_strmap_put(&c->names, buf, 0) != OQ_OK)
        return NULL;
    return strdup(buf);
}

/* A new zero-point initializer of dtype with count zeros (rank 0 for 1). */
static char *zero_point(fctx *c, const char *base, oq_dtype dt, size_t count)
{
    char nb[512];
    snprintf(nb, sizeof nb, "%s_zero_point", base);
    char *name = fresh_name(c, nb);
    int64_t d = (int64_t)count;
    oq_tensor *t = NULL;
    oq_status st = name ? oq_tensor_new(name, dt, count == 1 ? 0 : 1, &d, &t) : OQ_E_NOMEM;
    free(name);
    if (st != OQ_OK)
        return NULL;
    if (oq_graph_add_init(c->g, t) != OQ_OK) {
        oq_tensor_free(t);
        return NULL;
    }
    return t->name; /* owned by the initializer */
}

/* ---- quantization parameters of a DequantizeLinear or QuantizeLinear ---- */

typedef struct qparam {
    const char *data;      /* DQ: the quantized input; Q: the node's output */
    const char *scale, *zp;
    const oq_tensor *scale_t, *zp_t;
    int dtype;             /* of the quantized data */
    int64_t axis;
    const oq_node *node;   /* the DQ or Q */
} qparam;

static bool scale_ok(const oq_tensor *s)
{
    if (!s || s->dtype != OQ_FLOAT || s->rank > 1 || s->count == 0)
        return false;
    for (size_t i = 0; i < s->count; i++) {
        float v = ((const float *)s->data)[i];
        if (!(v > 0) || isinf(v))
            return false;
    }
    return true;
}

/* Reads the DQ or Q node n; why receives the reason when it does not fit. */
static bool read_qparams(const fctx *c, const oq_node *n, qparam *q, const char **why)
{
    memset(q, 0, sizeof *q);
    q->node = n;
    q->scale = n->inputs[1];
    q->zp = n->n_inputs > 2 && *n->inputs[2] ? n->inputs[2] : NULL;
    q->scale_t = init_of(c, q->scale);
    q->zp_t = q->zp ? init_of(c, q->zp) : NULL;
    const oq_attr *a = oq_node_attr(n, "axis");
    q->axis = a && a->type == OQ_ATTR_INT ? a->i : 1;
    if (!scale_ok(q->scale_t)) {
        *why = "a scale is not a constant positive float";
        return false;
    }
    if (q->zp && (!q->zp_t || q->zp_t->count != q->scale_t->count)) {
        *why = "a zero point is not a constant matching its scale";
        return false;
    }
    return true;
}

/* The DequantizeLinear producing value, with its parameters. */
static bool read_dq(const fctx *c, const char *value, qparam *q, const char **why)
{
    const oq_node *dq = producer(c, value);
    if (!is_op(dq, "DequantizeLinear")) {
        *why = "an input is not dequantized";
        return false;
    }
    if (!read_qparams(c, dq, q, why))
        return false;
    q->data = dq->inputs[0];
    q->dtype = q->zp_t ? (int)q->zp_t->dtype : value_dtype(c, q->data);
    if (q->dtype != OQ_UINT8 && q->dtype != OQ_INT8 && q->dtype != OQ_INT32) {
        *why = "a dequantized input is not int8, uint8 or int32";
        return false;
    }
    return true;
}

/* The QuantizeLinear that alone reads value, per tensor. */
static bool read_q(const fctx *c, const char *value, qparam *q, const char **why)
{
    const oq_node *qn = sole_reader(c, value);
    if (!is_op(qn, "QuantizeLinear")) {
        *why = "the output is not read by one QuantizeLinear alone";
        return false;
    }
    if (!read_qparams(c, qn, q, why))
        return false;
    if (q->scale_t->count != 1) {
        *why = "the output is quantized per axis";
        return false;
    }
    const oq_attr *od = oq_node_attr(qn, "output_dtype");
    q->dtype = q->zp_t ? (int)q->zp_t->dtype
                       : (od && od->type == OQ_ATTR_INT && od->i ? (int)od->i : OQ_UINT8);
    if (q->dtype != OQ_UINT8 && q->dtype != OQ_INT8) {
        *why = "the output is not quantized to int8 or uint8";
        return false;
    }
    q->data = qn->outputs[0];
    return true;
}

static bool is_8bit(int dt) { return dt == OQ_UINT8 || dt == OQ_INT8; }

/* The zero-point name of q, creating a zero constant when q has none. */
static const char *zp_name(fctx *c, qparam *q)
{
    if (q->zp)
        return q->zp;
    q->zp = zero_point(c, q->data, (oq_dtype)q->dtype, q->scale_t->count);
    return q->zp;
}

/* ---- building the integer node ---- */

static bool copy_attr(oq_attr *dst, const oq_attr *src)
{
    memset(dst, 0, sizeof *dst);
    dst->name = strdup(src->name);
    dst->type = src->type;
    dst->f = src->f;
    dst->i = src->i;
    dst->n = src->n;
    bool ok = dst->name != NULL;
    switch (src->type) {
    case OQ_ATTR_FLOAT:
    case OQ_ATTR_INT: break;
    case OQ_ATTR_STRING:
        dst->s.len = src->s.len;
        if (src->s.len && (dst->s.data = malloc(src->s.len)))
            memcpy(dst->s.data, src->s.data, src->s.len);
        ok = ok && (!src->s.len || dst->s.data);
        break;
    case OQ_ATTR_INTS:
        if (src->n && (dst->ints = malloc(src->n * sizeof *dst->ints)))
            memcpy(dst->ints, src->ints, src->n * sizeof *dst->ints);
        ok = ok && (!src->n || dst->ints);
        break;
    case OQ_ATTR_FLOATS:
        if (src->n && (dst->floats = malloc(src->n * sizeof *dst->floats)))
            memcpy(dst->floats, src->floats, src->n * sizeof *dst->floats);
        ok = ok && (!src->n || dst->floats);
        break;
    default: ok = false;
    }
    return ok;
}

static bool add_int_attr(oq_node *n, const char *name, int64_t v)
{
    oq_attr *a = realloc(n->attrs, (n->n_attrs + 1) * sizeof *a);
    if (!a)
        return false;
    n->attrs = a;
    memset(&a[n->n_attrs], 0, sizeof *a);
    a[n->n_attrs].name = strdup(name);
    a[n->n_attrs].type = OQ_ATTR_INT;
    a[n->n_attrs].i = v;
    return a[n->n_attrs++].name != NULL;
}

/* Appends op (domain) reading inputs (NULL entries: omitted) and writing
 * output, with like's attributes named in keep (NULL-terminated). */
static oq_status emit(fctx *c, const char *op, const char *domain, const oq_node *like,
                      const char *const *inputs, size_t n_in, const char *output,
                      const char *const *keep, oq_node **out)
{
    oq_node *n;
    oq_status st = oq_node_new(op, like->name, &n);
    if (st != OQ_OK)
        return st;
    bool ok = (!domain || (n->domain = strdup(domain))) &&
              (n->inputs = calloc(n_in + 1, sizeof *n->inputs)) &&
              (n->outputs = calloc(2, sizeof *n->outputs));
    for (size_t i = 0; ok && i < n_in; i++, n->n_inputs++)
        ok = (n->inputs[i] = strdup(inputs[i] ? inputs[i] : "")) != NULL;
    ok = ok && (n->outputs[0] = strdup(output)) != NULL;
    n->n_outputs = ok ? 1 : 0;
    for (size_t a = 0; ok && a < like->n_attrs; a++) {
        bool wanted = false;
        for (size_t k = 0; keep[k] && !wanted; k++)
            wanted = strcmp(keep[k], like->attrs[a].name) == 0;
        if (!wanted)
            continue;
        oq_attr *na = realloc(n->attrs, (n->n_attrs + 1) * sizeof *na);
        ok = na != NULL;
        if (ok) {
            n->attrs = na;
            ok = copy_attr(&n->attrs[n->n_attrs], &like->attrs[a]);
            n->n_attrs++;
        }
    }
    if (ok && (st = oq_graph_add_node(c->g, n)) == OQ_OK) {
        *out = n;
        return OQ_OK;
    }
    oq_node_free(n);
    return st != OQ_OK ? st : oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
}

static void drop(fctx *c, const oq_node *n)
{
    size_t i = node_index(c, n);
    if (i != SIZE_MAX)
        c->remove[i] = true;
}

/* ---- the groups ---- */

static int64_t zp_value(const qparam *q, size_t i)
{
    if (!q->zp_t)
        return 0;
    switch (q->zp_t->dtype) {
    case OQ_UINT8: return ((const uint8_t *)q->zp_t->data)[i];
    case OQ_INT8: return ((const int8_t *)q->zp_t->data)[i];
    case OQ_INT32: return ((const int32_t *)q->zp_t->data)[i];
    default: return 0;
    }
}

/* The QuantizeLinear after value, possibly through a Relu that the output
 * quantization already enforces (its zero point is the type's minimum). */
static bool read_q_after(const fctx *c, const char *value, qparam *q, const oq_node **relu,
                         const char **why)
{
    *relu = NULL;
    const oq_node *r = sole_reader(c, value);
    if (!is_op(r, "Relu"))
        return read_q(c, value, q, why);
    if (!read_q(c, r->outputs[0], q, why))
        return false;
    if (zp_value(q, 0) != (q->dtype == OQ_UINT8 ? 0 : -128)) {
        *why = "a Relu before the QuantizeLinear is not implied by its zero point";
        return false;
    }
    *relu = r;
    return true;
}

static bool per_tensor_8bit(const qparam *q)
{
    return is_8bit(q->dtype) && q->scale_t->count == 1;
}

/* Weights per tensor, or per channel along axis (of a constant weight). */
static bool weight_fits(const fctx *c, const qparam *w, int axis, const char **why)
{
    if (!is_8bit(w->dtype)) {
        *why = "the weight is not int8 or uint8";
        return false;
    }
    if (w->scale_t->count == 1)
        return true;
    const oq_tensor *t = init_of(c, w->data);
    int64_t ax = w->axis < 0 && t ? w->axis + t->rank : w->axis;
    if (!t || ax != axis || (size_t)t->dims[axis] != w->scale_t->count) {
        *why = "the weight is dequantized per axis, but not along its output channels";
        return false;
    }
    return true;
}

/* An int32 bias dequantized with scale x_scale * w_scale (per channel). */
static bool bias_fits(const fctx *c, const char *value, const qparam *x, const qparam *w,
                      qparam *b, const char **why)
{
    if (!read_dq(c, value, b, why) || b->dtype != OQ_INT32) {
        *why = "the bias is not an int32 dequantized value";
        return false;
    }
    for (size_t i = 0; i < b->scale_t->count; i++) {
        float ws = ((const float *)w->scale_t->data)[w->scale_t->count == 1 ? 0 : i];
        float want = ((const float *)x->scale_t->data)[0] * ws;
        float got = ((const float *)b->scale_t->data)[i];
        if (fabsf(got - want) > 1e-5f * want || zp_value(b, i) != 0) {
            *why = "the bias scale is not x_scale * w_scale";
            return false;
        }
    }
    return true;
}

static void drop_group(fctx *c, const oq_node *n, const qparam *q, const oq_node *relu)
{
    drop(c, n);
    drop(c, q->node);
    if (relu)
        drop(c, relu);
}

static oq_status try_conv(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                       "pads", "strides", NULL};
    qparam x, w, b, y;
    const oq_node *relu;
    bool has_b = n->n_inputs > 2 && *n->inputs[2];
    if (!read_dq(c, n->inputs[0], &x, why) || !read_dq(c, n->inputs[1], &w, why))
        return OQ_OK;
    if (!per_tensor_8bit(&x)) {
        *why = "the input is not int8/uint8 quantized per tensor";
        return OQ_OK;
    }
    if (!weight_fits(c, &w, 0, why) || (has_b && !bias_fits(c, n->inputs[2], &x, &w, &b, why)) ||
        !read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    const char *in[9] = {x.data, x.scale, zp_name(c, &x), w.data, w.scale, zp_name(c, &w),
                         y.scale, zp_name(c, &y), has_b ? b.data : NULL};
    oq_node *out;
    oq_status st = emit(c, "QLinearConv", NULL, n, in, has_b ? 9 : 8, y.data, keep, &out);
    if (st == OQ_OK)
        drop_group(c, n, &y, relu);
    return st;
}

static oq_status try_matmul(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {NULL};
    qparam a, b, y;
    const oq_node *relu;
    if (!read_dq(c, n->inputs[0], &a, why) || !read_dq(c, n->inputs[1], &b, why))
        return OQ_OK;
    if (!per_tensor_8bit(&a)) {
        *why = "input A is not int8/uint8 quantized per tensor";
        return OQ_OK;
    }
    const oq_tensor *bt = init_of(c, b.data);
    if (!weight_fits(c, &b, bt && bt->rank == 2 ? 1 : -1, why) ||
        !read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    const char *in[8] = {a.data, a.scale, zp_name(c, &a), b.data, b.scale, zp_name(c, &b),
                         y.scale, zp_name(c, &y)};
    oq_node *out;
    oq_status st = emit(c, "QLinearMatMul", NULL, n, in, 8, y.data, keep, &out);
    if (st == OQ_OK)
        drop_group(c, n, &y, relu);
    return st;
}

static float attr_f(const oq_node *n, const char *name, float def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_FLOAT ? a->f : def;
}

static int64_t attr_i(const oq_node *n, const char *name, int64_t def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_INT ? a->i : def;
}

/* Gemm -> com.microsoft QGemm; without a QuantizeLinear after it, QGemm
 * gives float output (the last layer of a classifier). */
static oq_status try_gemm(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {"transA", "transB", NULL};
    qparam a, b, bias, y;
    const oq_node *relu = NULL;
    bool has_c = n->n_inputs > 2 && *n->inputs[2];
    if (!read_dq(c, n->inputs[0], &a, why) || !read_dq(c, n->inputs[1], &b, why))
        return OQ_OK;
    if (attr_f(n, "alpha", 1.0f) != 1.0f || (has_c && attr_f(n, "beta", 1.0f) != 1.0f)) {
        *why = "alpha or beta is not 1";
        return OQ_OK;
    }
    if (!per_tensor_8bit(&a)) {
        *why = "input A is not int8/uint8 quantized per tensor";
        return OQ_OK;
    }
    if (!weight_fits(c, &b, attr_i(n, "transB", 0) ? 0 : 1, why) ||
        (has_c && !bias_fits(c, n->inputs[2], &a, &b, &bias, why)))
        return OQ_OK;
    const oq_node *qn = sole_reader(c, n->outputs[0]);
    bool quantized = is_op(qn, "QuantizeLinear") || is_op(qn, "Relu");
    if (quantized && !read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    const char *in[9] = {a.data, a.scale, zp_name(c, &a), b.data, b.scale, zp_name(c, &b),
                         has_c ? bias.data : NULL, quantized ? y.scale : NULL,
                         quantized ? zp_name(c, &y) : NULL};
    oq_node *out;
    oq_status st = emit(c, "QGemm", "com.microsoft", n, in, quantized ? 9 : (has_c ? 7 : 6),
                        quantized ? y.data : n->outputs[0], keep, &out);
    if (st == OQ_OK) {
        c->uses_ms = true;
        if (quantized)
            drop_group(c, n, &y, relu);
        else
            drop(c, n);
    }
    return st;
}

/* Add, Mul -> com.microsoft QLinearAdd, QLinearMul. */
static oq_status try_binary(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {NULL};
    qparam a, b, y;
    const oq_node *relu;
    if (!read_dq(c, n->inputs[0], &a, why) || !read_dq(c, n->inputs[1], &b, why))
        return OQ_OK;
    if (!per_tensor_8bit(&a) || !per_tensor_8bit(&b) || a.dtype != b.dtype) {
        *why = "the inputs are not quantized per tensor to the same 8-bit type";
        return OQ_OK;
    }
    if (!read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    if (y.dtype != a.dtype) {
        *why = "the output type differs from the inputs'";
        return OQ_OK;
    }
    const char *in[8] = {a.data, a.scale, zp_name(c, &a), b.data, b.scale, zp_name(c, &b),
                         y.scale, zp_name(c, &y)};
    oq_node *out;
    const char *op = strcmp(n->op_type, "Add") == 0 ? "QLinearAdd" : "QLinearMul";
    oq_status st = emit(c, op, "com.microsoft", n, in, 8, y.data, keep, &out);
    if (st == OQ_OK) {
        c->uses_ms = true;
        drop_group(c, n, &y, relu);
    }
    return st;
}

/* A one-input operator between a per-tensor 8-bit DequantizeLinear and a
 * QuantizeLinear to the same type with no activation between: x and y are
 * their parameters. False, with *why, when the node is not such a group. */
static bool read_unary_8bit(fctx *c, const oq_node *n, qparam *x, qparam *y, const char **why)
{
    const oq_node *relu;
    if (!read_dq(c, n->inputs[0], x, why))
        return false;
    if (!per_tensor_8bit(x) || !read_q_after(c, n->outputs[0], y, &relu, why))
        return false;
    if (relu || y->dtype != x->dtype) {
        *why = "the output is not quantized to the input's type";
        return false;
    }
    return true;
}

/* AveragePool, GlobalAveragePool -> com.microsoft QLinear... (NCHW). */
static oq_status try_pool(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {"auto_pad", "ceil_mode", "count_include_pad",
                                       "kernel_shape", "pads", "strides", NULL};
    qparam x, y;
    if (!read_unary_8bit(c, n, &x, &y, why))
        return OQ_OK;
    bool global = strcmp(n->op_type, "GlobalAveragePool") == 0;
    const char *in[5] = {x.data, x.scale, zp_name(c, &x), y.scale, zp_name(c, &y)};
    oq_node *out;
    oq_status st = emit(c, global ? "QLinearGlobalAveragePool" : "QLinearAveragePool",
                        "com.microsoft", n, in, 5, y.data, keep, &out);
    if (st == OQ_OK && !add_int_attr(out, "channels_last", 0))
        st = oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
    if (st == OQ_OK) {
        c->uses_ms = true;
        drop_group(c, n, &y, NULL);
    }
    return st;
}

/* Concat -> com.microsoft QLinearConcat(Y_scale, Y_zp, (X, scale, zp)...). */
static oq_status try_concat(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {"axis", NULL};
    qparam y;
    const oq_node *relu;
    if (!read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    if (relu) {
        *why = "a Relu follows the Concat";
        return OQ_OK;
    }
    size_t n_in = 2 + 3 * n->n_inputs;
    const char **in = calloc(n_in, sizeof *in);
    if (!in)
        return oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
    for (size_t i = 0; i < n->n_inputs && !*why; i++) {
        qparam x;
        if (!read_dq(c, n->inputs[i], &x, why))
            break;
        if (!per_tensor_8bit(&x) || x.dtype != y.dtype) {
            *why = "an input is not quantized per tensor to the output's type";
            break;
        }
        in[2 + 3 * i] = x.data;
        in[3 + 3 * i] = x.scale;
        in[4 + 3 * i] = zp_name(c, &x);
    }
    oq_status st = OQ_OK;
    if (!*why) {
        in[0] = y.scale;
        in[1] = zp_name(c, &y);
        oq_node *out;
        st = emit(c, "QLinearConcat", "com.microsoft", n, in, n_in, y.data, keep, &out);
        if (st == OQ_OK) {
            c->uses_ms = true;
            drop_group(c, n, &y, NULL);
        }
    }
    free(in);
    return st;
}

/* Sigmoid, LeakyRelu, Softmax -> com.microsoft QLinearSigmoid,
 * QLinearLeakyRelu, QLinearSoftmax (table lookups on the 8-bit input). */
static oq_status try_lut(fctx *c, oq_node *n, const char **why)
{
    static const char *const keep[] = {"alpha", "axis", NULL};
    qparam x, y;
    if (!read_unary_8bit(c, n, &x, &y, why))
        return OQ_OK;
    bool softmax = strcmp(n->op_type, "Softmax") == 0;
    const char *op = softmax ? "QLinearSoftmax"
                     : strcmp(n->op_type, "Sigmoid") == 0 ? "QLinearSigmoid" : "QLinearLeakyRelu";
    const char *in[5] = {x.data, x.scale, zp_name(c, &x), y.scale, zp_name(c, &y)};
    oq_node *out;
    oq_status st = emit(c, op, "com.microsoft", n, in, 5, y.data, keep, &out);
    if (st == OQ_OK && softmax && !add_int_attr(out, "opset", oq_model_opset(c->m, "")))
        st = oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
    if (st == OQ_OK) {
        c->uses_ms = true;
        drop_group(c, n, &y, NULL);
    }
    return st;
}

/* Operators that only move or select data: with the same scale and zero
 * point on both sides they run on the 8-bit data directly. */
static oq_status try_direct(fctx *c, oq_node *n, const char **why)
{
    qparam x, y;
    const oq_node *relu;
    if (!read_dq(c, n->inputs[0], &x, why) || !per_tensor_8bit(&x))
        return OQ_OK;
    if (n->n_outputs != 1 || !read_q_after(c, n->outputs[0], &y, &relu, why))
        return OQ_OK;
    bool same = !relu && y.dtype == x.dtype && zp_value(&x, 0) == zp_value(&y, 0) &&
                memcmp(x.scale_t->data, y.scale_t->data, sizeof(float)) == 0;
    if (!same) {
        *why = "the QuantizeLinear after it has another scale or zero point";
        return OQ_OK;
    }
    char *in0 = strdup(x.data), *out0 = strdup(y.data);
    if (!in0 || !out0) {
        free(in0);
        free(out0);
        return oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
    }
    free(n->inputs[0]);
    n->inputs[0] = in0;
    free(n->outputs[0]);
    n->outputs[0] = out0;
    drop(c, y.node);
    return OQ_OK;
}

/* ---- driving the rewrite ---- */

typedef oq_status (*try_fn)(fctx *, oq_node *, const char **);

static const struct {
    const char *op;
    try_fn fn;
    const char *as; /* the integer operator, or NULL for direct ops */
} groups[] = {
    {"Conv", try_conv, "QLinearConv"},
    {"MatMul", try_matmul, "QLinearMatMul"},
    {"Gemm", try_gemm, "QGemm"},
    {"Add", try_binary, "QLinearAdd"},
    {"Mul", try_binary, "QLinearMul"},
    {"AveragePool", try_pool, "QLinearAveragePool"},
    {"GlobalAveragePool", try_pool, "QLinearGlobalAveragePool"},
    {"Concat", try_concat, "QLinearConcat"},
    {"Sigmoid", try_lut, "QLinearSigmoid"},
    {"LeakyRelu", try_lut, "QLinearLeakyRelu"},
    {"Softmax", try_lut, "QLinearSoftmax"},
    {"MaxPool", try_direct, NULL},
    {"Reshape", try_direct, NULL},
    {"Transpose", try_direct, NULL},
    {"Squeeze", try_direct, NULL},
    {"Unsqueeze", try_direct, NULL},
    {"Flatten", try_direct, NULL},
    {"Slice", try_direct, NULL},
    {"Gather", try_direct, NULL},
    {"Resize", try_direct, NULL},
};

static bool reads_dq(const fctx *c, const oq_node *n)
{
    for (size_t i = 0; i < n->n_inputs; i++)
        if (is_op(producer(c, n->inputs[i]), "DequantizeLinear"))
            return true;
    return false;
}

static oq_status visit(fctx *c, oq_node *n, int *n_int)
{
    for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++) {
        if (!is_op(n, groups[k].op) || !reads_dq(c, n))
            continue;
        const char *why = NULL;
        if (strcmp(n->op_type, "Resize") == 0) {
            const oq_attr *mode = oq_node_attr(n, "mode");
            if (mode && mode->type == OQ_ATTR_STRING &&
                !(mode->s.len == 7 && memcmp(mode->s.data, "nearest", 7) == 0))
                why = "only nearest Resize runs on 8-bit data";
        }
        if (!why && strcmp(n->op_type, "MaxPool") == 0 && n->n_outputs > 1)
            why = "MaxPool with an Indices output";
        if (!why && groups[k].as) {
            bool ms = strncmp(groups[k].as, "QLinearMatMul", 13) != 0 &&
                      strcmp(groups[k].as, "QLinearConv") != 0;
            int64_t opset = ms ? 1 : oq_model_opset(c->m, "");
            if (!oq_registry_find(ms ? "com.microsoft" : "", groups[k].as, opset))
                why = "its integer operator is not available at this opset";
        }
        char name[256];
        snprintf(name, sizeof name, "%s", node_label(n));
        oq_status st = why ? OQ_OK : groups[k].fn(c, n, &why);
        if (st != OQ_OK)
            return st;
        if (why)
            say(c, "float    %s '%s': %s", groups[k].op, name, why);
        else if (groups[k].as)
            say(c, "integer  %s '%s' -> %s", groups[k].op, name, groups[k].as);
        else
            say(c, "direct   %s '%s' on %s", groups[k].op, name,
                oq_dtype_name(value_dtype(c, n->inputs[0])));
        *n_int += !why;
        return OQ_OK;
    }
    return OQ_OK;
}

/* Whether any node left (not removed; appended ones included) reads value. */
static bool still_read(const fctx *c, const char *value)
{
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        if (i < c->n_orig && c->remove[i])
            continue;
        const oq_node *n = c->g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (strcmp(n->inputs[k], value) == 0)
                return true;
    }
    return false;
}

/* A DequantizeLinear none of whose readers is left goes too (readers may
 * have been removed, or rewired to its input). */
static void drop_unread_dq(fctx *c)
{
    for (size_t i = 0; i < c->n_orig; i++) {
        const oq_node *n = c->g->nodes[i];
        if (c->remove[i] || !is_op(n, "DequantizeLinear") ||
            oq_graph_index_is_output(c->ix, n->outputs[0]))
            continue;
        c->remove[i] = !still_read(c, n->outputs[0]);
    }
}

static oq_status finish(fctx *c)
{
    drop_unread_dq(c);
    size_t j = 0;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        if (i < c->n_orig && c->remove[i])
            oq_node_free(c->g->nodes[i]);
        else
            c->g->nodes[j++] = c->g->nodes[i];
    }
    c->g->n_nodes = j;
    oq_model *m = c->m;
    if (c->uses_ms && oq_model_opset(m, "com.microsoft") == 0) {
        oq_opset *o = realloc(m->opsets, (m->n_opsets + 1) * sizeof *o);
        if (!o)
            return oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
        m->opsets = o;
        o[m->n_opsets].domain = strdup("com.microsoft");
        o[m->n_opsets].version = 1;
        if (!o[m->n_opsets++].domain)
            return oq_error(OQ_E_NOMEM, "out of memory rewriting QDQ groups");
    }
    oq_status st = oq_graph_toposort(c->g);
    return st == OQ_OK ? oq_model_validate(m) : st;
}

static oq_status collect_names(fctx *c)
{
    oq_status st = OQ_OK;
    const oq_graph *g = c->g;
    for (size_t i = 0; i < g->n_inits && st == OQ_OK; i++)
        st = oq_strmap_put(&c->names, oq_str(g->inits[i]->name), 0);
    for (size_t i = 0; i < g->n_inputs && st == OQ_OK; i++)
        st = oq_strmap_put(&c->names, g->inputs[i].name, 0);
    for (size_t i = 0; i < g->n_nodes && st == OQ_OK; i++)
        for (size_t k = 0; k < g->nodes[i]->n_outputs && st == OQ_OK; k++)
            st = oq_strmap_put(&c->names, g->nodes[i]->outputs[k], 0);
    return st;
}

static bool has_dq(const oq_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (is_op(g->nodes[i], "DequantizeLinear"))
            return true;
    return false;
}

static oq_status copy_model(const oq_model *m, oq_model **out)
{
    void *buf;
    size_t len;
    oq_status st = oq_model_serialize(m, &buf, &len);
    if (st != OQ_OK)
        return st;
    st = oq_model_load_buffer(buf, len, m->path, NULL, out);
    free(buf);
    return st;
}

oq_status oq_qdq_fuse(const oq_model *m, oq_model **out, char **explain)
{
    *out = NULL;
    *explain = NULL;
    if (!m->graph || !has_dq(m->graph))
        return (*explain = strdup("")) ? OQ_OK : oq_error(OQ_E_NOMEM, "out of memory");
    fctx c;
    memset(&c, 0, sizeof c);
    oq_strmap_init(&c.names);
    oq_status st = copy_model(m, &c.m);
    if (st == OQ_OK) {
        c.g = c.m->graph;
        c.n_orig = c.g->n_nodes;
        c.remove = calloc(c.n_orig + 1, sizeof *c.remove);
        st = c.remove ? oq_graph_index_build(c.g, &c.ix) : oq_error(OQ_E_NOMEM, "out of memory");
    }
    if (st == OQ_OK)
        st = collect_names(&c);
    int n_int = 0;
    for (size_t i = 0; st == OQ_OK && i < c.n_orig; i++)
        st = visit(&c, c.g->nodes[i], &n_int);
    if (st == OQ_OK)
        st = finish(&c);
    oq_graph_index_free(c.ix);
    oq_strmap_free(&c.names);
    free(c.remove);
    if (st != OQ_OK || !c.report) {
        if (st == OQ_OK && !(c.report = strdup("")))
            st = oq_error(OQ_E_NOMEM, "out of memory");
        if (st != OQ_OK) {
            oq_model_free(c.m);
            free(c.report);
            return st;
        }
    }
    *out = c.m;
    *explain = c.report;
    return OQ_OK;
}

oq_status oq_qdq_to_qop(const oq_model *m, oq_model **out, char **explain)
{
    return oq_qdq_fuse(m, out, explain);
}
