/* Sessions: binding a model to the operator registry, checking inputs, and
 * running the current plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/qgemm.h"
#include "kernels/qkern.h"
#include "kernels/sgemm.h"
#include "qdq_fuse.h"
#include "session_impl.h"

const char *oq_blas_core(void) { return openblas_get_corename(); }

const char *oq_kernel_names(void)
{
    static char buf[160];
    const char *err = NULL;
    const oq_sgemm_kern *f = oq_sgemm_kern_select(&err);
    const oq_qkern *q = oq_qkern_select(&err);
    snprintf(buf, sizeof buf, "fp32 %s, int8 %s", f ? f->name : "none (ONNXQ_ISA)",
             q ? q->name : "none (ONNXQ_ISA)");
    return buf;
}

/* ---- binding ---- */

static oq_status add_value(oq_session *s, const char *name, enum value_kind kind, int *id)
{
    size_t existing;
    if (oq_strmap_get(&s->names, name, &existing)) {
        *id = (int)existing;
        return OQ_OK;
    }
    value *v = &s->vals[s->n_values];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->kind = kind;
    v->producer = -1;
    *id = (int)s->n_values;
    s->n_values++;
    return oq_strmap_put(&s->names, name, (size_t)*id);
}

static char *node_where(const oq_node *n, size_t idx)
{
    char buf[512];
    if (n->name && *n->name)
        snprintf(buf, sizeof buf, "node '%s' (%s)", n->name, n->op_type);
    else
        snprintf(buf, sizeof buf, "node #%zu (%s)", idx, n->op_type);
    return strdup(buf);
}

static oq_status resolve_op(const oq_session *s, step *st)
{
    const oq_node *n = st->node;
    const char *domain = oq_domain_is_onnx(n->domain) ? "" : n->domain;
    int64_t opset = oq_model_opset(s->m, domain);
    st->op = oq_registry_find(domain, n->op_type, opset);
    if (!st->op)
        return oq_error(OQ_E_UNSUPPORTED,
                        "%s: operator %s (domain '%s', opset %lld) is not supported%s", st->where,
                        n->op_type, *domain ? domain : "ai.onnx", (long long)opset,
                        oq_registry_has(domain, n->op_type) ? " at this opset version" : "");
    const oq_op *op = st->op;
    if ((int)n->n_inputs < op->min_in || (int)n->n_inputs > op->max_in)
        return oq_error(OQ_E_INVALID, "%s: has %zu inputs; %s takes %d to %d", st->where,
                        n->n_inputs, n->op_type, op->min_in, op->max_in);
    if ((int)n->n_outputs < op->min_out || (int)n->n_outputs > op->max_out)
        return oq_error(OQ_E_INVALID, "%s: has %zu outputs; %s gives %d to %d", st->where,
                        n->n_outputs, n->op_type, op->min_out, op->max_out);
    if (op->impl->init)
        return op->impl->init(n, opset, st->where, &st->state);
    return OQ_OK;
}

static oq_status bind_step(oq_session *s, step *st, size_t idx)
{
    const oq_node *n = s->m->graph->nodes[idx];
    st->node_index = idx;
    st->node = n;
    st->n_in = n->n_inputs;
    st->n_out = n->n_outputs;
    st->where = node_where(n, idx);
    st->in_ids = calloc(n->n_inputs + 1, sizeof *st->in_ids);
    st->out_ids = calloc(n->n_outputs + 1, sizeof *st->out_ids);
    st->in_ptrs = calloc(n->n_inputs + 1, sizeof *st->in_ptrs);
    st->out_ptrs = calloc(n->n_outputs + 1, sizeof *st->out_ptrs);
    st->in_const = calloc(n->n_inputs + 1, sizeof *st->in_const);
    if (!st->where || !st->in_ids || !st->out_ids || !st->in_ptrs || !st->out_ptrs ||
        !st->in_const)
        return oq_error(OQ_E_NOMEM, "out of memory binding the model");
    for (size_t i = 0; i < n->n_inputs; i++) {
        size_t id;
        st->in_ids[i] = -1;
        if (*n->inputs[i] && oq_strmap_get(&s->names, n->inputs[i], &id))
            st->in_ids[i] = (int)id;
    }
    return resolve_op(s, st);
}

static oq_status bind_outputs(oq_session *s, step *st, int step_idx)
{
    for (size_t i = 0; i < st->n_out; i++) {
        st->out_ids[i] = -1;
        if (!*st->node->outputs[i])
            continue;
        oq_status e = add_value(s, st->node->outputs[i], VAL_NODE, &st->out_ids[i]);
        if (e != OQ_OK)
            return e;
        s->vals[st->out_ids[i]].producer = step_idx;
    }
    return OQ_OK;
}

/* The interpreter computes tensors only: sequence, map and optional values
 * at the graph's edges are refused when the session is made. */
static oq_status check_tensor_value(const oq_value_info *vi, const char *kind)
{
    static const char *const kinds[] = {"an untyped value", "a tensor", "a sequence", "a map",
                                        "an optional", "a sparse tensor"};
    if (!vi->type || vi->type->kind == OQ_TYPE_TENSOR)
        return OQ_OK;
    return oq_error(OQ_E_UNSUPPORTED, "graph %s '%s' is %s; only tensors are supported", kind,
                    vi->name, kinds[vi->type->kind]);
}

static oq_status bind_graph_values(oq_session *s)
{
    const oq_graph *g = s->m->graph;
    oq_status e = OQ_OK;
    for (size_t i = 0; i < g->n_inits && e == OQ_OK; i++) {
        int id;
        if ((e = add_value(s, oq_str(g->inits[i]->name), VAL_CONST, &id)) == OQ_OK)
            s->vals[id].init = g->inits[i];
    }
    s->input_ids = calloc(g->n_inputs + 1, sizeof *s->input_ids);
    s->input_vi = calloc(g->n_inputs + 1, sizeof *s->input_vi);
    if (!s->input_ids || !s->input_vi)
        return oq_error(OQ_E_NOMEM, "out of memory binding the model");
    for (size_t i = 0; i < g->n_inputs && e == OQ_OK; i++) {
        if (oq_strmap_get(&s->names, g->inputs[i].name, NULL))
            continue; /* an input with an initializer: a constant here */
        if ((e = check_tensor_value(&g->inputs[i], "input")) != OQ_OK)
            return e;
        int id;
        if ((e = add_value(s, g->inputs[i].name, VAL_INPUT, &id)) == OQ_OK) {
            s->input_vi[s->n_inputs] = &g->inputs[i];
            s->input_ids[s->n_inputs++] = id;
        }
    }
    return e;
}

static oq_status bind_steps(oq_session *s)
{
    const oq_graph *g = s->m->graph;
    size_t *order = malloc((g->n_nodes + 1) * sizeof *order);
    s->steps = calloc(g->n_nodes + 1, sizeof *s->steps);
    if (!order || !s->steps) {
        free(order);
        return oq_error(OQ_E_NOMEM, "out of memory binding the model");
    }
    oq_status e = oq_graph_topo_order(g, order);
    for (size_t k = 0; k < g->n_nodes && e == OQ_OK; k++) {
        step *st = &s->steps[k];
        s->n_steps = k + 1;
        if ((e = bind_step(s, st, order[k])) == OQ_OK)
            e = bind_outputs(s, st, (int)k);
    }
    free(order);
    return e;
}

static oq_status bind_graph_outputs(oq_session *s)
{
    const oq_graph *g = s->m->graph;
    s->output_ids = calloc(g->n_outputs + 1, sizeof *s->output_ids);
    s->output_vi = calloc(g->n_outputs + 1, sizeof *s->output_vi);
    if (!s->output_ids || !s->output_vi)
        return oq_error(OQ_E_NOMEM, "out of memory binding the model");
    for (size_t i = 0; i < g->n_outputs; i++) {
        size_t id;
        oq_status e = check_tensor_value(&g->outputs[i], "output");
        if (e != OQ_OK)
            return e;
        if (!oq_strmap_get(&s->names, g->outputs[i].name, &id))
            return oq_error(OQ_E_INVALID, "graph output '%s' is not produced by any node",
                            g->outputs[i].name);
        s->output_ids[i] = (int)id;
        s->output_vi[i] = &g->outputs[i];
    }
    s->n_outputs = g->n_outputs;
    return OQ_OK;
}

static void set_threads(int threads)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    openblas_set_num_threads(threads);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

oq_status oq_session_new(const oq_model *m, const oq_session_options *opts, oq_session **out)
{
    oq_status e = oq_model_validate(m);
    if (e != OQ_OK)
        return e;
    oq_session *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "out of memory creating a session");
    const char *path = m->path;
    const oq_graph *g = m->graph;
    size_t max_values = g->n_inits + g->n_inputs + 1;
    for (size_t i = 0; i < g->n_nodes; i++)
        max_values += g->nodes[i]->n_outputs;
    s->m = m;
    if (opts && opts->qdq_as_float)
        e = (s->explain = strdup("")) ? OQ_OK : oq_error(OQ_E_NOMEM, "out of memory");
    else
        e = oq_qdq_fuse(m, &s->owned_model, &s->explain);
    if (e == OQ_OK && s->owned_model) {
        m = s->owned_model;
        g = m->graph;
        s->m = m;
        max_values = g->n_inits + g->n_inputs + 1;
        for (size_t i = 0; i < g->n_nodes; i++)
            max_values += g->nodes[i]->n_outputs;
    }
    s->threads = opts ? opts->threads : 0;
    s->requant = opts ? (int)opts->requant : OQ_REQUANT_FLOAT;
    oq_strmap_init(&s->names);
    s->vals = e == OQ_OK ? calloc(max_values, sizeof *s->vals) : NULL;
    if (e == OQ_OK && !s->vals)
        e = oq_error(OQ_E_NOMEM, "out of memory creating a session");
    if (e == OQ_OK)
        e = bind_graph_values(s);
    if (e == OQ_OK)
        e = bind_steps(s);
    if (e == OQ_OK)
        e = bind_graph_outputs(s);
    if (e != OQ_OK) {
        if (path)
            oq_error_prefix(e, "%s: ", path);
        oq_session_free(s);
        return e;
    }
    set_threads(s->threads);
    *out = s;
    return OQ_OK;
}

void oq_session_free(oq_session *s)
{
    if (!s)
        return;
    oq_plan_release(s);
    for (size_t i = 0; i < s->n_steps; i++) {
        step *st = &s->steps[i];
        if (st->state)
            (st->op && st->op->impl->free_state ? st->op->impl->free_state : free)(st->state);
        free(st->where);
        free(st->in_ids);
        free(st->out_ids);
        free(st->in_ptrs);
        free(st->out_ptrs);
        free(st->in_const);
    }
    for (size_t i = 0; i < s->n_values; i++)
        free(s->vals[i].owned);
    free(s->steps);
    free(s->vals);
    oq_strmap_free(&s->names);
    free(s->input_ids);
    free(s->input_vi);
    free(s->output_ids);
    free(s->output_vi);
    free(s->explain);
    oq_model_free(s->owned_model);
    free(s);
}

const char *oq_session_explain(const oq_session *s) { return s->explain ? s->explain : ""; }

size_t oq_session_n_inputs(const oq_session *s) { return s->n_inputs; }
const oq_value_info *oq_session_input(const oq_session *s, size_t i) { return s->input_vi[i]; }
size_t oq_session_n_outputs(const oq_session *s) { return s->n_outputs; }
const oq_value_info *oq_session_output(const oq_session *s, size_t i) { return s->output_vi[i]; }

int oq_session_input_index(const oq_session *s, const char *name)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        if (strcmp(s->input_vi[i]->name, name) == 0)
            return (int)i;
    return -1;
}

const oq_tensor *oq_session_value(const oq_session *s, const char *name, bool *is_const)
{
    size_t id;
    if (!s->planned || !oq_strmap_get(&s->names, name, &id))
        return NULL;
    const value *v = &s->vals[id];
    if (v->dynamic && !v->t.data)
        return NULL;
    if (is_const)
        *is_const = v->is_const;
    return &v->t;
}

void oq_session_set_observer(oq_session *s, oq_observe_fn fn, void *ctx)
{
    s->observe = fn;
    s->observe_ctx = ctx;
}

void oq_session_set_hook(oq_session *s, oq_node_hook hook, void *ctx)
{
    s->hook = hook;
    s->hook_ctx = ctx;
    /* A hook sees every node's own output: a plan that fused activations
     * into their producers is rebuilt without (plan.c) at the next run. */
    bool fused = false;
    for (size_t i = 0; hook && s->planned && i < s->n_steps; i++)
        fused = fused || s->steps[i].fused;
    if (fused)
        oq_plan_release(s);
}

void oq_session_stats(const oq_session *s, oq_plan_stats *st)
{
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < s->n_steps; i++) {
        st->n_folded += s->steps[i].folded;
        st->n_steps += !s->steps[i].folded;
    }
    st->arena_bytes = s->arena_bytes;
    st->naive_bytes = s->naive_bytes;
    st->scratch_bytes = s->scratch_bytes;
    st->n_plans = s->n_plans;
}

/* ---- checking inputs ---- */

static void format_shape(char *buf, size_t len, int rank, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 (long long)dims[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* Checks one input against its declared type; symbolic dims are checked for
 * agreement against earlier inputs' bindings in sym/symv (n_sym entries). */
static oq_status check_input(const oq_value_info *vi, const oq_tensor *t, const char **sym,
                             int64_t *symv, size_t *n_sym)
{
    char shape[256];
    format_shape(shape, sizeof shape, t->rank, t->dims);
    const oq_type *ty = vi->type;
    if (!ty || ty->kind != OQ_TYPE_TENSOR)
        return oq_error(OQ_E_UNSUPPORTED, "input '%s': only tensor inputs are supported",
                        vi->name);
    if (ty->elem && t->dtype != (oq_dtype)ty->elem)
        return oq_error(OQ_E_INVALID, "input '%s': the model expects %s data, got %s",
                        vi->name, oq_dtype_name(ty->elem), oq_dtype_name(t->dtype));
    if (!ty->has_shape)
        return OQ_OK;
    if (ty->rank != t->rank)
        return oq_error(OQ_E_INVALID, "input '%s': the model expects rank %d, got shape %s",
                        vi->name, ty->rank, shape);
    for (int i = 0; i < ty->rank; i++) {
        const oq_dim *d = &ty->dims[i];
        if (d->kind == OQ_DIM_VALUE && d->value != t->dims[i])
            return oq_error(OQ_E_INVALID,
                            "input '%s': dimension %d is %lld in shape %s; the model expects %lld",
                            vi->name, i, (long long)t->dims[i], shape, (long long)d->value);
        if (d->kind != OQ_DIM_PARAM || !*d->param)
            continue;
        size_t k = 0;
        while (k < *n_sym && strcmp(sym[k], d->param) != 0)
            k++;
        if (k < *n_sym && symv[k] != t->dims[i])
            return oq_error(OQ_E_INVALID,
                            "input '%s': dimension '%s' is %lld here but %lld in an earlier "
                            "input", vi->name, d->param, (long long)t->dims[i],
                            (long long)symv[k]);
        if (k == *n_sym && k < 64) {
            sym[k] = d->param;
            symv[k] = t->dims[i];
            (*n_sym)++;
        }
    }
    return OQ_OK;
}

static oq_status check_inputs(const oq_session *s, const oq_tensor *const *inputs)
{
    const char *sym[64];
    int64_t symv[64];
    size_t n_sym = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (!inputs[i])
            return oq_error(OQ_E_INVALID, "input '%s' was not given", s->input_vi[i]->name);
        oq_status e = check_input(s->input_vi[i], inputs[i], sym, symv, &n_sym);
        if (e != OQ_OK)
            return e;
    }
    return OQ_OK;
}

static bool plan_matches(const oq_session *s, const oq_tensor *const *inputs)
{
    if (!s->planned)
        return false;
    for (size_t i = 0; i < s->n_inputs; i++) {
        const oq_tensor *a = &s->plan_inputs[i], *b = inputs[i];
        if (a->dtype != b->dtype || a->rank != b->rank ||
            memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]) != 0)
            return false;
    }
    return true;
}

/* ---- running ---- */

void oq_step_ctx(oq_session *s, step *st, oq_kctx *ctx)
{
    for (size_t i = 0; i < st->n_in; i++) {
        int id = st->in_ids[i];
        st->in_ptrs[i] = id >= 0 ? &s->vals[id].t : NULL;
        st->in_const[i] = id >= 0 && s->vals[id].is_const;
    }
    for (size_t i = 0; i < st->n_out; i++)
        st->out_ptrs[i] = st->out_ids[i] >= 0 ? &s->vals[st->out_ids[i]].t : NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->node = st->node;
    ctx->where = st->where;
    ctx->opset = oq_model_opset(s->m, st->node->domain);
    ctx->state = st->state;
    ctx->n_in = st->n_in;
    ctx->n_out = st->n_out;
    ctx->in = st->in_ptrs;
    ctx->out = st->out_ptrs;
    ctx->in_const = st->in_const;
    ctx->threads = s->threads;
    ctx->requant = s->requant;
    ctx->observe = s->observe;
    ctx->observe_ctx = s->observe_ctx;
    ctx->act = st->act;
    ctx->act_lo = st->act_lo;
    ctx->act_hi = st->act_hi;
}

void oq_step_hook(oq_session *s, const step *st)
{
    if (s->hook)
        s->hook(s->hook_ctx, st->node, st->node_index, (const oq_tensor *const *)st->out_ptrs,
                st->n_out);
}

oq_status oq_value_reserve(value *v, const char *where)
{
    size_t need = oq_tensor_nbytes(&v->t);
    if (need > v->owned_cap || !v->owned) {
        size_t cap = (need + 63) & ~(size_t)63;
        void *p = aligned_alloc(64, cap ? cap : 64);
        if (!p)
            return oq_error(OQ_E_NOMEM, "%s: out of memory for an output of %zu bytes", where,
                            need);
        free(v->owned);
        v->owned = p;
        v->owned_cap = cap;
    }
    v->t.data = v->owned;
    return OQ_OK;
}

/* A step whose output shapes are known only now: infer, buffers, prepare. */
static oq_status run_dynamic_setup(oq_session *s, step *st, oq_kctx *ctx)
{
    oq_status e = st->op->impl->infer(ctx);
    if (e != OQ_OK || (st->op->flags & OQ_OP_ALIAS))
        return e;
    for (size_t i = 0; i < st->n_out && e == OQ_OK; i++)
        if (st->out_ids[i] >= 0)
            e = oq_value_reserve(&s->vals[st->out_ids[i]], st->where);
    if (e == OQ_OK && st->op->impl->prepare)
        e = st->op->impl->prepare(ctx);
    if (e == OQ_OK && ctx->scratch_bytes > s->scratch_bytes) {
        void *p = aligned_alloc(64, (ctx->scratch_bytes + 63) & ~(size_t)63);
        if (!p)
            return oq_error(OQ_E_NOMEM, "%s: out of memory for scratch space", st->where);
        free(s->scratch);
        s->scratch = p;
        s->scratch_bytes = ctx->scratch_bytes;
    }
    return e;
}

static oq_status run_step(oq_session *s, step *st)
{
    oq_kctx ctx;
    oq_step_ctx(s, st, &ctx);
    oq_status e = OQ_OK;
    if (st->dynamic)
        e = run_dynamic_setup(s, st, &ctx);
    if (e != OQ_OK)
        return e;
    if (st->fused) { /* applied by the producer of its input */
        st->out_ptrs[0]->data = ctx.in[0]->data;
    } else if (st->op->flags & OQ_OP_ALIAS) {
        st->out_ptrs[0]->data = ctx.in[0]->data;
        if (st->op->impl->run)
            e = st->op->impl->run(&ctx);
    } else {
        ctx.scratch = s->scratch;
        e = st->op->impl->run(&ctx);
    }
    if (e == OQ_OK)
        oq_step_hook(s, st);
    return e;
}

oq_status oq_session_prepare(oq_session *s, const oq_tensor *const *inputs)
{
    oq_status e = check_inputs(s, inputs);
    if (e == OQ_OK && !plan_matches(s, inputs))
        e = oq_plan_build(s, inputs);
    return e;
}

oq_status oq_session_run(oq_session *s, const oq_tensor *const *inputs, const oq_tensor **outputs)
{
    oq_status e = check_inputs(s, inputs);
    if (e == OQ_OK && !plan_matches(s, inputs))
        e = oq_plan_build(s, inputs);
    if (e != OQ_OK)
        return e;
    for (size_t i = 0; i < s->n_inputs; i++)
        s->vals[s->input_ids[i]].t.data = inputs[i]->data;
    for (size_t k = 0; k < s->n_steps && e == OQ_OK; k++)
        if (!s->steps[k].folded)
            e = run_step(s, &s->steps[k]);
    if (e != OQ_OK)
        return e;
    for (size_t i = 0; i < s->n_outputs; i++)
        outputs[i] = &s->vals[s->output_ids[i]].t;
    return OQ_OK;
}
