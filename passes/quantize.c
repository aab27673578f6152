/* The quantizer: chooses which nodes to quantize, gives every activation it
 * touches one scale and zero point, quantizes weights and biases, and
 * rewrites the graph in QDQ form (one QuantizeLinear/DequantizeLinear pair
 * per tensor, so consecutive quantized nodes share it), optionally turned
 * into QOperator form. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/quantize.h"
#include "pass_util.h"
#include "quant_internal.h"
#include "strmap.h"

void oq_quant_options_default(oq_quant_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = OQ_FORMAT_QDQ;
    o->per_channel = true;
    o->act_type = OQ_UINT8;
    o->weight_type = OQ_INT8;
}

/* Operators that only move or select data: their outputs share the input's
 * scale and zero point. */
static bool moves_data(const oq_node *n)
{
    static const char *const ops[] = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze",
                                      "Unsqueeze", "Slice", "Gather", "Split", "Resize", "Pad"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(n->op_type, ops[i]) == 0)
            return true;
    return false;
}

static bool has_weight(const oq_node *n)
{
    return !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") ||
           !strcmp(n->op_type, "Gemm");
}

typedef struct qz {
    oq_model *m;
    oq_graph *g;
    const oq_fusion_list *f;
    const oq_calib_table *t;
    const oq_quant_options *o;
    size_t n0;
    bool *quant;          /* per original node */
    const char **why;     /* per original node: why it stays float (NULL: quantized/other) */
    char **why_owned;
    oq_strmap pidx;       /* tensor -> index into params */
    qz_param *params;
    size_t n_params, cap_params;
    char *text;
    size_t text_len, text_cap;
} qz;

static void out(qz *q, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    if (q->text_len + len + 1 > q->text_cap) {
        size_t cap = (q->text_cap + len + 1) * 2;
        char *p = realloc(q->text, cap);
        if (!p)
            return;
        q->text = p;
        q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, line, len + 1);
    q->text_len += len;
}

static bool in_list(const char *list, const char *name)
{
    if (!list || !name || !*name)
        return false;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0)
            return true;
        p += k + (p[k] == ',');
    }
    return false;
}

static const oq_fusion *unit_of_anchor(const qz *q, const oq_node *n)
{
    for (size_t i = 0; n->n_outputs && i < q->f->n; i++)
        if (strcmp(q->f->items[i].anchor_output, n->outputs[0]) == 0)
            return &q->f->items[i];
    return NULL;
}

static const oq_fusion *unit_of_act(const qz *q, const oq_node *n)
{
    for (size_t i = 0; n->n_outputs && i < q->f->n; i++)
        if (strcmp(q->f->items[i].act_output, n->outputs[0]) == 0)
            return &q->f->items[i];
    return NULL;
}

/* ---- phase 1: which nodes ---- */

static const char *has_range(qz *q, const char *tensor, char *buf, size_t len)
{
    const oq_calib_entry *e = oq_calib_table_find(q->t, tensor);
    if (e)
        return NULL;
    snprintf(buf, len, "no calibration range for '%s' (not float, or not calibrated)", tensor);
    return buf;
}

/* Why node n cannot be quantized (NULL when it can); buf holds the text. */
static const char *check_node(qz *q, const oq_node *n, char *buf, size_t len)
{
    unsigned mask;
    if (!oq_op_quantizable(n, &mask))
        return "onnxq does not quantize this operator";
    if (in_list(q->o->exclude_nodes, n->name))
        return "excluded by --exclude-nodes";
    if (in_list(q->o->exclude_op_types, n->op_type))
        return "excluded by --exclude-op-types";
    if (q->o->include_op_types && !in_list(q->o->include_op_types, n->op_type))
        return "not in --include-op-types";
    if (has_weight(n) || (!strcmp(n->op_type, "MatMul") && pu_init(q->g, n->inputs[1], NULL))) {
        const oq_tensor *w = pu_init(q->g, n->inputs[1], NULL);
        if (!w || w->dtype != OQ_FLOAT || pu_is_graph_input(q->g, n->inputs[1]))
            return "its weight is not a constant float tensor";
        mask = 1u; /* only input 0 is an activation */
    }
    /* A data-movement node's outputs take its input's parameters: a constant
     * input (e.g. Gather's embedding table) has none. */
    if (moves_data(n) && (!n->n_inputs || !*n->inputs[0] || pu_init(q->g, n->inputs[0], NULL)))
        return "its data input is a constant, not an activation";
    for (size_t k = 0; k < n->n_inputs && k < 32; k++)
        if ((mask >> k & 1u) && *n->inputs[k] && !pu_init(q->g, n->inputs[k], NULL)) {
            const char *w = has_range(q, n->inputs[k], buf, len);
            if (w)
                return w;
        }
    if (moves_data(n))
        return NULL;
    const oq_fusion *u = unit_of_anchor(q, n);
    const char *y = u ? u->act_output : n->outputs[0];
    return has_range(q, y, buf, len);
}

/* Add and Mul (QLinearAdd, QLinearMul) and the data-movement operators
 * work on 8-bit data only where their operands already are 8-bit: a graph
 * input, or the output of a node that is quantized. A float operand (a
 * constant, or the output of a node left in float) would have to be
 * rounded to 8 bits just for them, which costs accuracy and saves no work:
 * they then stay float, and their output is quantized only where a
 * quantized reader needs it. Nodes are in topological order, so every
 * producer is decided before its readers. */
static const char *float_operand(qz *q, size_t i, char *buf, size_t len)
{
    const oq_node *n = q->g->nodes[i];
    bool combines = !strcmp(n->op_type, "Add") || !strcmp(n->op_type, "Mul");
    size_t n_in = combines ? n->n_inputs : moves_data(n) ? 1 : 0;
    for (size_t k = 0; k < n_in; k++) {
        const char *in = n->inputs[k];
        if (!*in || (!pu_init(q->g, in, NULL) && pu_is_graph_input(q->g, in)))
            continue;
        if (pu_init(q->g, in, NULL)) {
            snprintf(buf, len, "operand '%s' is a float constant (no 8-bit %s on it)", in,
                     n->op_type);
            return buf;
        }
        long p = pu_producer(q->g, in);
        const oq_fusion *u = p >= 0 ? unit_of_act(q, q->g->nodes[p]) : NULL;
        long a = u ? pu_producer(q->g, u->anchor_output) : p;
        if (a < 0 || (size_t)a >= i || !q->quant[a]) {
            const oq_node *pn = p >= 0 ? q->g->nodes[p] : NULL;
            snprintf(buf, len, "operand '%s' comes from %s '%s', which stays float", in,
                     pn ? pn->op_type : "no node", pn ? oq_str(pn->name) : "");
            return buf;
        }
    }
    return NULL;
}

static oq_status decide(qz *q)
{
    oq_status st = oq_graph_toposort(q->g);
    for (size_t i = 0; st == OQ_OK && i < q->n0; i++) {
        const oq_node *n = q->g->nodes[i];
        if (unit_of_act(q, n))
            continue; /* decided with its anchor */
        char buf[600];
        const char *why = check_node(q, n, buf, sizeof buf);
        if (!why)
            why = float_operand(q, i, buf, sizeof buf);
        q->quant[i] = why == NULL;
        if (why && !(q->why_owned[i] = strdup(why)))
            return oq_error(OQ_E_NOMEM, "out of memory");
        q->why[i] = q->why_owned[i];
    }
    for (size_t i = 0; st == OQ_OK && i < q->n0; i++) { /* a unit's act follows its anchor */
        const oq_fusion *u = unit_of_act(q, q->g->nodes[i]);
        long a = u ? pu_producer(q->g, u->anchor_output) : -1;
        if (a >= 0)
            q->quant[i] = q->quant[a];
    }
    return st;
}

/* ---- phase 2: one scale and zero point per tensor ---- */

static qz_param *param_of(qz *q, const char *tensor)
{
    size_t i;
    return oq_strmap_get(&q->pidx, tensor, &i) ? &q->params[i] : NULL;
}

static oq_status set_param(qz *q, const char *tensor, qz_param p)
{
    qz_param *have = param_of(q, tensor);
    if (have) {
        *have = p;
        return OQ_OK;
    }
    if (q->n_params == q->cap_params) {
        size_t cap = q->cap_params ? q->cap_params * 2 : 64;
        qz_param *np = realloc(q->params, cap * sizeof *np);
        if (!np)
            return oq_error(OQ_E_NOMEM, "out of memory");
        q->params = np;
        q->cap_params = cap;
    }
    q->params[q->n_params] = p;
    return oq_strmap_put(&q->pidx, tensor, q->n_params++);
}

static oq_status param_from_table(qz *q, const char *tensor)
{
    if (param_of(q, tensor))
        return OQ_OK;
    const oq_calib_entry *e = oq_calib_table_find(q->t, tensor);
    if (!e)
        return oq_error(OQ_E_INTERNAL, "tensor '%s' has no range", tensor);
    return set_param(q, tensor, qz_activation_param(e->lo, e->hi, q->o->act_type,
                                                    q->o->symmetric_act));
}

static oq_status assign_params(qz *q)
{
    oq_status st = OQ_OK;
    for (size_t i = 0; i < q->n0 && st == OQ_OK; i++) {
        const oq_node *n = q->g->nodes[i];
        unsigned mask;
        if (!q->quant[i] || unit_of_act(q, n) || !oq_op_quantizable(n, &mask))
            continue;
        if (has_weight(n) || (!strcmp(n->op_type, "MatMul") && pu_init(q->g, n->inputs[1], NULL)))
            mask = 1u;
        for (size_t k = 0; k < n->n_inputs && k < 32 && st == OQ_OK; k++)
            if ((mask >> k & 1u) && *n->inputs[k] && !pu_init(q->g, n->inputs[k], NULL))
                st = param_from_table(q, n->inputs[k]);
        if (st != OQ_OK)
            break;
        if (moves_data(n)) { /* outputs share the input's parameters */
            qz_param p = *param_of(q, n->inputs[0]);
            /* Split's outputs are all data; MaxPool's second is int64 Indices */
            size_t n_data = strcmp(n->op_type, "Split") ? 1 : n->n_outputs;
            for (size_t k = 0; k < n->n_outputs && k < n_data && st == OQ_OK; k++)
                if (*n->outputs[k])
                    st = set_param(q, n->outputs[k], p);
            continue;
        }
        const oq_fusion *u = unit_of_anchor(q, n);
        st = param_from_table(q, u ? u->act_output : n->outputs[0]);
    }
    return st;
}

/* ---- phase 3: rewriting ---- */

static oq_status new_init(qz *q, const char *base, const char *suffix, oq_tensor *t, char **name)
{
    char buf[600];
    snprintf(buf, sizeof buf, "%s%s", base, suffix);
    *name = pu_fresh_name(q->g, buf);
    free(t->name);
    t->name = *name ? strdup(*name) : NULL;
    if (!*name || !t->name) {
        oq_tensor_free(t);
        return oq_error(OQ_E_NOMEM, "out of memory");
    }
    oq_status st = pu_add_init(q->m, t);
    if (st != OQ_OK)
        oq_tensor_free(t);
    return st;
}

static oq_status scalar_init(qz *q, const char *base, const char *suffix, oq_dtype dt,
                             size_t n, const void *vals, char **name)
{
    oq_tensor *t;
    int64_t d = (int64_t)n;
    oq_status st = oq_tensor_new(NULL, dt, n == 1 ? 0 : 1, &d, &t);
    if (st != OQ_OK)
        return st;
    memcpy(t->data, vals, n * oq_dtype_size(dt));
    return new_init(q, base, suffix, t, name);
}

static oq_status zp_init(qz *q, const char *base, oq_dtype dt, const int32_t *zps, size_t n,
                         char **name)
{
    uint8_t buf[4096];
    if (n > sizeof buf)
        return oq_error(OQ_E_UNSUPPORTED, "'%s': more than %zu channels", base, sizeof buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(dt == OQ_INT8 ? (uint8_t)(int8_t)zps[i] : (uint8_t)zps[i]);
    return scalar_init(q, base, "_zero_point", dt, n, buf, name);
}

/* Appends op(inputs) -> output with an optional int attribute. */
static oq_status add_node(qz *q, const char *op, const char *const *in, size_t n_in,
                          const char *output, const char *attr, int64_t attr_val)
{
    /* Inserted Q/DQ nodes stay unnamed (names are optional in ONNX): they
     * are found by their output, and names would be a few percent of a
     * small model's file. */
    oq_node *n;
    oq_status st = oq_node_new(op, NULL, &n);
    if (st != OQ_OK)
        return st;
    bool ok = (n->inputs = calloc(n_in, sizeof *n->inputs)) &&
              (n->outputs = calloc(1, sizeof *n->outputs));
    for (size_t i = 0; ok && i < n_in; i++, n->n_inputs++)
        ok = (n->inputs[i] = strdup(in[i] ? in[i] : "")) != NULL;
    ok = ok && (n->outputs[0] = strdup(output)) != NULL;
    n->n_outputs = ok;
    if (ok && attr) {
        ok = (n->attrs = calloc(1, sizeof *n->attrs)) && (n->attrs[0].name = strdup(attr));
        if (ok) {
            n->attrs[0].type = OQ_ATTR_INT;
            n->attrs[0].i = attr_val;
            n->n_attrs = 1;
        }
    }
    if (ok && (st = oq_graph_add_node(q->g, n)) == OQ_OK)
        return OQ_OK;
    oq_node_free(n);
    return st != OQ_OK ? st : oq_error(OQ_E_NOMEM, "out of memory");
}

/* Initializer name -> DequantizeLinear of its quantized copy; the node's
 * input idx then reads the dequantized value. */
static oq_status dequantized_const(qz *q, oq_node *n, size_t idx, oq_tensor *qt,
                                   const float *scales, const int32_t *zps, size_t channels,
                                   int axis)
{
    char *base = strdup(n->inputs[idx]), *qn = NULL, *sn = NULL, *zn = NULL, *dn = NULL;
    if (!base)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = new_init(q, base, "_quantized", qt, &qn);
    if (st == OQ_OK)
        st = scalar_init(q, base, "_scale", OQ_FLOAT, channels, scales, &sn);
    if (st == OQ_OK && zps)
        st = zp_init(q, base, qt->dtype, zps, channels, &zn);
    if (st == OQ_OK && !(dn = pu_fresh_name(q->g, base)))
        st = oq_error(OQ_E_NOMEM, "out of memory");
    char dq_name[600];
    snprintf(dq_name, sizeof dq_name, "%s_dequantized", base);
    free(dn);
    dn = st == OQ_OK ? pu_fresh_name(q->g, dq_name) : NULL;
    if (st == OQ_OK) {
        const char *in[3] = {qn, sn, zn};
        st = add_node(q, "DequantizeLinear", in, zn ? 3 : 2, dn, channels > 1 ? "axis" : NULL,
                      axis);
    }
    if (st == OQ_OK) {
        free(n->inputs[idx]);
        n->inputs[idx] = dn;
        dn = NULL;
    }
    free(base);
    free(qn);
    free(sn);
    free(zn);
    free(dn);
    return st;
}

static int64_t attr_int(const oq_node *n, const char *name, int64_t def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_INT ? a->i : def;
}

/* The axis of a node's weight that holds output channels, or -1 (per
 * tensor only). */
static int weight_axis(const oq_node *n, const oq_tensor *w)
{
    if (!strcmp(n->op_type, "Conv"))
        return 0;
    if (!strcmp(n->op_type, "ConvTranspose"))
        return attr_int(n, "group", 1) == 1 ? 1 : -1;
    if (!strcmp(n->op_type, "Gemm"))
        return attr_int(n, "transB", 0) ? 0 : 1;
    return w->rank == 2 ? 1 : -1; /* MatMul */
}

/* A float bias the integer operator can take: Conv/ConvTranspose B, or Gemm
 * C of N values with beta 1. */
static const oq_tensor *bias_of(qz *q, const oq_node *n, size_t channels_out)
{
    if (n->n_inputs < 3 || !*n->inputs[2] || !strcmp(n->op_type, "MatMul"))
        return NULL;
    const oq_tensor *b = pu_init(q->g, n->inputs[2], NULL);
    if (!b || b->dtype != OQ_FLOAT || b->count != channels_out || b->rank > 2 ||
        (b->rank == 2 && b->dims[0] != 1))
        return NULL;
    const oq_attr *beta = oq_node_attr(n, "beta");
    return beta && beta->type == OQ_ATTR_FLOAT && beta->f != 1.0f ? NULL : b;
}

static oq_status quantize_weights(qz *q, oq_node *n)
{
    const oq_tensor *w = pu_init(q->g, n->inputs[1], NULL);
    int axis = weight_axis(n, w);
    size_t out_ch = (size_t)w->dims[axis < 0 ? 0 : axis];
    if (!strcmp(n->op_type, "ConvTranspose"))
        out_ch = (size_t)(w->dims[1] * attr_int(n, "group", 1));
    size_t ch = q->o->per_channel && axis >= 0 ? (size_t)w->dims[axis] : 1;
    float *ws = malloc(out_ch * sizeof *ws + ch * sizeof *ws), *bs = ws + ch;
    int32_t *zps = malloc(ch * sizeof *zps);
    oq_tensor *qw = NULL, *qb = NULL;
    const oq_tensor *b = bias_of(q, n, out_ch);
    oq_status st = ws && zps ? qz_quantize_weight(w, axis < 0 ? 0 : axis, ch, q->o->weight_type,
                                                  q->o->reduce_range, &qw, ws, zps)
                             : oq_error(OQ_E_NOMEM, "out of memory");
    if (st == OQ_OK && b)
        st = qz_quantize_bias(b, param_of(q, n->inputs[0])->scale, ws, ch, &qb, bs);
    if (st == OQ_OK) {
        /* int8 weights are symmetric: all zero points are 0, the default of a
         * DequantizeLinear without one, so none is stored for convolutions
         * (onnxruntime runs Gemm/MatMul groups without a weight zero point in
         * float, one LSB away at ties, so those keep theirs) */
        bool zero = q->o->weight_type == OQ_INT8 && strncmp(n->op_type, "Conv", 4) == 0;
        for (size_t c = 0; zero && c < ch; c++)
            zero = zps[c] == 0;
        st = dequantized_const(q, n, 1, qw, ws, zero ? NULL : zps, ch, axis);
        qw = NULL;
    }
    if (st == OQ_OK && qb) {
        st = dequantized_const(q, n, 2, qb, bs, NULL, ch, 0);
        qb = NULL;
    }
    oq_tensor_free(qw);
    oq_tensor_free(qb);
    free(ws);
    free(zps);
    return st;
}

/* Renames the output T of its producer to to. */
static oq_status rename_output(qz *q, const char *t, const char *to)
{
    long pi = pu_producer(q->g, t);
    if (pi < 0)
        return oq_error(OQ_E_INTERNAL, "graph output '%s' has no producer", t);
    oq_node *p = q->g->nodes[pi];
    for (size_t k = 0; k < p->n_outputs; k++)
        if (!strcmp(p->outputs[k], t)) {
            char *c = strdup(to);
            if (!c)
                return oq_error(OQ_E_NOMEM, "out of memory");
            free(p->outputs[k]);
            p->outputs[k] = c;
        }
    return OQ_OK;
}

static char *suffixed(qz *q, const char *t, const char *suffix)
{
    char buf[600];
    snprintf(buf, sizeof buf, "%s%s", t, suffix);
    return pu_fresh_name(q->g, buf);
}

/* Graph outputs stay float: the model's result (a classifier's scores) is
 * not rounded to 256 levels, where near-equal scores would tie. Their
 * producer writes float (a Gemm runs as QGemm with float output, other
 * operators dequantize); nodes inside the graph that read a graph output
 * still read it quantized. */
static bool stays_float(const qz *q, const char *tensor)
{
    return !q->o->quantize_outputs && pu_is_graph_output(q->g, tensor);
}

/* How many node inputs read tensor (graph outputs not counted). */
static size_t node_reads(const qz *q, const char *tensor)
{
    size_t c = pu_count_uses(q->g, tensor);
    for (size_t i = 0; i < q->g->n_outputs; i++)
        c -= strcmp(q->g->outputs[i].name, tensor) == 0;
    return c;
}

/* T -> QuantizeLinear -> DequantizeLinear; the nodes reading T read the
 * result. A graph output T stays float (see stays_float) unless
 * --quantize-outputs: then it keeps its name, its producer writes T_float
 * and the DequantizeLinear writes T. */
static oq_status insert_qdq(qz *q, const char *tensor, const qz_param *p)
{
    char *t = strdup(tensor), *sn = NULL, *zn = NULL, *src = NULL, *qn = NULL, *dn = NULL;
    oq_status st = t ? scalar_init(q, t, "_scale", OQ_FLOAT, 1, &p->scale, &sn)
                     : oq_error(OQ_E_NOMEM, "out of memory");
    if (st == OQ_OK)
        st = zp_init(q, t, p->dtype, &p->zp, 1, &zn);
    if (st == OQ_OK && !stays_float(q, t) && pu_is_graph_output(q->g, t)) {
        src = suffixed(q, t, "_float");
        dn = strdup(t);
        st = src && dn ? rename_output(q, t, src) : oq_error(OQ_E_NOMEM, "out of memory");
    } else if (st == OQ_OK) {
        src = strdup(t);
        dn = suffixed(q, t, "_dequantized");
        st = src && dn ? pu_rename_uses(q->g, t, dn) : oq_error(OQ_E_NOMEM, "out of memory");
    }
    if (st == OQ_OK && !(qn = suffixed(q, t, "_quantized")))
        st = oq_error(OQ_E_NOMEM, "out of memory");
    const char *qin[3] = {src, sn, zn}, *din[3] = {qn, sn, zn};
    if (st == OQ_OK)
        st = add_node(q, "QuantizeLinear", qin, 3, qn, NULL, 0);
    if (st == OQ_OK)
        st = add_node(q, "DequantizeLinear", din, 3, dn, NULL, 0);
    free(t);
    free(sn);
    free(zn);
    free(src);
    free(qn);
    free(dn);
    return st;
}

/* A unit's Relu or Clip is dropped when the output quantization already
 * clamps to its bounds: every representable value lies inside them. */
static bool act_redundant(const oq_fusion *u, const qz_param *p)
{
    if (u->act != OQ_ACT_RELU && u->act != OQ_ACT_CLIP)
        return false;
    int32_t qmin = p->dtype == OQ_INT8 ? -128 : 0, qmax = p->dtype == OQ_INT8 ? 127 : 255;
    float lo = ((float)qmin - (float)p->zp) * p->scale, hi = ((float)qmax - (float)p->zp) * p->scale;
    return lo >= u->min && hi <= u->max;
}

static oq_status drop_redundant_acts(qz *q, bool *rm, size_t *dropped)
{
    for (size_t i = 0; i < q->n0; i++) {
        const oq_node *a = q->g->nodes[i];
        const oq_fusion *u = unit_of_act(q, a);
        const qz_param *p = u ? param_of(q, u->act_output) : NULL;
        long ai = u ? pu_producer(q->g, u->anchor_output) : -1;
        if (!q->quant[i] || !p || ai < 0 || stays_float(q, u->act_output) ||
            !act_redundant(u, p))
            continue;
        oq_status st = rename_output(q, u->anchor_output, u->act_output);
        if (st != OQ_OK)
            return st;
        rm[i] = true;
        (*dropped)++;
    }
    return OQ_OK;
}

/* ---- the summary ---- */

static void summarise(qz *q, size_t dropped)
{
    const char *ops[256];
    size_t counts[256], n_ops = 0, n_q = 0, n_f = 0;
    for (size_t i = 0; i < q->n0; i++) {
        if (!q->quant[i])
            continue;
        const char *op = q->g->nodes[i]->op_type;
        size_t k = 0;
        while (k < n_ops && strcmp(ops[k], op))
            k++;
        if (k == n_ops && n_ops < 256)
            ops[n_ops] = op, counts[n_ops++] = 0;
        if (k < n_ops)
            counts[k]++;
        n_q++;
    }
    out(q, "quantized: %zu nodes (", n_q);
    for (size_t k = 0; k < n_ops; k++)
        out(q, "%s%s %zu", k ? ", " : "", ops[k], counts[k]);
    out(q, ")\n");
    (void)dropped;
    for (size_t i = 0; i < q->n0; i++)
        n_f += !q->quant[i] && q->why[i];
    out(q, "left in float: %zu nodes\n", n_f);
    for (size_t i = 0; i < q->n0; i++)
        if (!q->quant[i] && q->why[i])
            out(q, "  %s '%s': %s\n", q->g->nodes[i]->op_type, oq_str(q->g->nodes[i]->name),
                q->why[i]);
}

/* ---- opsets ---- */

/* Whether a node with a weight will be quantized (per-channel scales need
 * DequantizeLinear's axis, opset 13). */
static bool any_weight_quantized(const qz *q)
{
    for (size_t i = 0; i < q->n0; i++) {
        const oq_node *n = q->g->nodes[i];
        if (q->quant[i] && (has_weight(n) || (!strcmp(n->op_type, "MatMul") &&
                                              pu_init(q->g, n->inputs[1], NULL))))
            return true;
    }
    return false;
}

static oq_status check_opset(qz *q)
{
    int64_t have = oq_model_opset(q->m, "");
    bool per_channel = q->o->per_channel && any_weight_quantized(q);
    int64_t need = per_channel ? 13 : 10;
    int64_t want = q->o->opset ? q->o->opset : have;
    if (q->o->opset && q->o->opset < have)
        return oq_error(OQ_E_INVALID, "--opset %lld is below the model's opset %lld",
                        (long long)q->o->opset, (long long)have);
    if (want < need)
        return oq_error(OQ_E_INVALID,
                        "the output needs opset >= %lld for %s (the model has %lld): pass "
                        "--opset %lld%s", (long long)need,
                        per_channel ? "per-channel weights" : "QuantizeLinear",
                        (long long)have, (long long)need,
                        per_channel ? ", or --per-tensor for opset 10-12" : "");
    if (want == have)
        return OQ_OK;
    /* Raising the opset must not change what any operator of the model means. */
    for (size_t i = 0; i < q->g->n_nodes; i++) {
        const oq_node *n = q->g->nodes[i];
        if (oq_domain_is_onnx(n->domain) && !oq_op_same_semantics(n->op_type, have, want))
            return oq_error(OQ_E_UNSUPPORTED,
                            "--opset %lld: %s changes meaning between opset %lld and %lld; "
                            "convert the model's opset first", (long long)want, n->op_type,
                            (long long)have, (long long)want);
    }
    for (size_t i = 0; i < q->m->n_opsets; i++)
        if (oq_domain_is_onnx(q->m->opsets[i].domain))
            q->m->opsets[i].version = want;
    return OQ_OK;
}

/* ---- the driver ---- */

/* No node can be quantized: say why, naming up to three nodes. */
static oq_status no_node_error(const qz *q)
{
    char why[1536] = "";
    size_t len = 0, shown = 0, more = 0;
    for (size_t i = 0; i < q->n0; i++) {
        const oq_node *n = q->g->nodes[i];
        if (!q->why[i])
            continue;
        if (shown == 3) {
            more++;
            continue;
        }
        int k = snprintf(why + len, sizeof why - len, "%s%s '%s': %s", shown ? "; " : "",
                         n->op_type, oq_str(n->name), q->why[i]);
        if (k < 0 || (size_t)k >= sizeof why - len)
            break;
        len += (size_t)k;
        shown++;
    }
    if (more)
        snprintf(why + len, sizeof why - len, "; and %zu more", more);
    return oq_error(OQ_E_INVALID, "%s: no node can be quantized: %s",
                    q->m->path ? q->m->path : "model", shown ? why : "the graph has no nodes");
}

/* Removes the original nodes flagged in rm (appended nodes stay). */
static oq_status remove_flagged(qz *q, const bool *rm)
{
    bool *all = calloc(q->g->n_nodes + 1, sizeof *all);
    if (!all)
        return oq_error(OQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < q->n0; i++)
        all[i] = rm[i];
    pu_remove_nodes(q->g, all);
    free(all);
    return OQ_OK;
}

static oq_status rewrite(qz *q, size_t *dropped)
{
    bool *rm = calloc(q->n0 + 1, sizeof *rm);
    oq_status st = rm ? drop_redundant_acts(q, rm, dropped) : oq_error(OQ_E_NOMEM, "no memory");
    for (size_t i = 0; st == OQ_OK && i < q->n0; i++) {
        oq_node *n = q->g->nodes[i];
        bool weighted = has_weight(n) || (!strcmp(n->op_type, "MatMul") &&
                                          pu_init(q->g, n->inputs[1], NULL));
        if (q->quant[i] && !rm[i] && weighted)
            st = quantize_weights(q, n);
    }
    if (st == OQ_OK) /* before the pairs: a dropped Relu must not look like a producer */
        st = remove_flagged(q, rm);
    free(rm);
    for (size_t k = 0; st == OQ_OK && k < q->n_params; k++) {
        /* the map gives names in no particular order: find each index's name */
        for (size_t j = 0; j < q->pidx.cap; j++)
            if (q->pidx.keys[j] && q->pidx.vals[j] == k) {
                const char *t = q->pidx.keys[j];
                /* a graph output read by no node needs no pair */
                if (!stays_float(q, t) || node_reads(q, t) > 0)
                    st = insert_qdq(q, t, &q->params[k]);
                break;
            }
    }
    return st;
}

static oq_status to_qop(oq_model *m)
{
    oq_model *qop = NULL;
    char *explain = NULL;
    oq_status st = oq_qdq_to_qop(m, &qop, &explain);
    free(explain);
    if (st != OQ_OK || !qop)
        return st;
    oq_graph *g = m->graph; /* keep m itself (its path), take the new graph and opsets */
    m->graph = qop->graph;
    qop->graph = g;
    oq_opset *o = m->opsets;
    size_t n = m->n_opsets;
    m->opsets = qop->opsets;
    m->n_opsets = qop->n_opsets;
    qop->opsets = o;
    qop->n_opsets = n;
    oq_model_free(qop);
    return OQ_OK;
}

static void qz_free(qz *q)
{
    for (size_t i = 0; q->why_owned && i < q->n0; i++)
        free(q->why_owned[i]);
    free(q->why_owned);
    free(q->why);
    free(q->quant);
    free(q->params);
    oq_strmap_free(&q->pidx);
}

oq_status oq_quantize(oq_model *m, const oq_fusion_list *fusions, const oq_calib_table *table,
                      const oq_quant_options *o, char **summary)
{
    static const oq_fusion_list none = {0, NULL};
    qz q = {.m = m, .g = m->graph, .f = fusions ? fusions : &none, .t = table, .o = o,
            .n0 = m->graph->n_nodes};
    oq_strmap_init(&q.pidx);
    q.quant = calloc(q.n0 + 1, sizeof *q.quant);
    q.why = calloc(q.n0 + 1, sizeof *q.why);
    q.why_owned = calloc(q.n0 + 1, sizeof *q.why_owned);
    oq_status st = q.quant && q.why && q.why_owned ? decide(&q)
                                                   : oq_error(OQ_E_NOMEM, "out of memory");
    size_t n_q = 0, dropped = 0;
    for (size_t i = 0; st == OQ_OK && i < q.n0; i++)
        n_q += q.quant[i];
    if (st == OQ_OK && n_q == 0)
        st = no_node_error(&q);
    if (st == OQ_OK) /* after decide: only quantized weights need per-channel opset 13 */
        st = check_opset(&q);
    if (st == OQ_OK)
        st = assign_params(&q);
    if (st == OQ_OK)
        summarise(&q, 0);
    if (st == OQ_OK)
        st = rewrite(&q, &dropped);
    if (st == OQ_OK && dropped)
        out(&q, "activations folded into the output quantization: %zu\n", dropped);
    size_t unused = 0; /* the float weights that were quantized */
    if (st == OQ_OK)
        st = pu_remove_unused_inits(m->graph, &unused);
    if (st == OQ_OK)
        st = oq_graph_toposort(m->graph);
    if (st == OQ_OK && o->format == OQ_FORMAT_QOP)
        st = to_qop(m);
    if (st == OQ_OK && o->format == OQ_FORMAT_QOP)
        st = pu_remove_unused_inits(m->graph, &unused);
    if (st == OQ_OK)
        st = oq_model_validate(m);
    if (st == OQ_OK && summary) {
        *summary = q.text ? q.text : strdup("");
        q.text = NULL;
    }
    free(q.text);
    qz_free(&q);
    return st;
}
