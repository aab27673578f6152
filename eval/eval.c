/* Streaming evaluation: accuracy, agreement, output SQNR and per-layer SQNR
 * (see onnxq/eval.h). Nothing is kept beyond a batch but counts and sums
 * (and, per layer, the fp32 values of the current batch). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_internal.h"
#include "strmap.h"

void oq_eval_options_default(oq_eval_options *o)
{
    memset(o, 0, sizeof *o);
    oq_data_options_default(&o->data);
}

double oq_sqnr_db(double signal, double noise)
{
    if (isnan(signal) || isnan(noise))
        return NAN;
    if (noise == 0)
        return INFINITY;
    if (signal == 0)
        return -INFINITY;
    return 10.0 * log10(signal / noise);
}

char *oq_eval_strdupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void oq_eval_result_clear(oq_eval_result *r)
{
    free(r->output);
    free(r->source);
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].tensor);
        free(r->layers[i].quantized);
        free(r->layers[i].node);
    }
    free(r->layers);
    for (size_t i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].quantized);
        free(r->skipped[i].why);
    }
    free(r->skipped);
    memset(r, 0, sizeof *r);
}

/* ---- the score output ---- */

static void format_declared(const oq_type *t, char *buf, size_t len)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "%s[", oq_dtype_name(t->elem));
    for (int i = 0; i < t->rank && k < len; i++) {
        const oq_dim *d = &t->dims[i];
        if (d->kind == OQ_DIM_VALUE)
            k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)d->value);
        else
            k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? "," : "",
                                  d->kind == OQ_DIM_PARAM && d->param ? d->param : "?");
    }
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

static void format_shape(const oq_tensor *t, char *buf, size_t len)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "%s[", oq_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

static bool dim_may_be_one(const oq_dim *d)
{
    return d->kind != OQ_DIM_VALUE || d->value == 1;
}

#define NOT_SCORES "not class scores ([N, C] or [N, C, 1, 1] float)"

/* The index of the score output of s: want, or the only output. */
static oq_status pick_output(const oq_session *s, const char *want, const char *what, int *idx)
{
    size_t n = oq_session_n_outputs(s);
    char names[512] = "";
    for (size_t i = 0, k = 0; i < n && k < sizeof names; i++)
        k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", i ? ", " : "",
                              oq_session_output(s, i)->name);
    if (want) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(oq_session_output(s, i)->name, want) == 0) {
                *idx = (int)i;
                return OQ_OK;
            }
        return oq_error(OQ_E_INVALID, "%s has no output named '%s' (its outputs: %s)", what, want,
                        names);
    }
    if (n != 1)
        return oq_error(OQ_E_INVALID,
                        "%s has %zu outputs (%s): choose the class scores with --output NAME",
                        what, n, names);
    *idx = 0;
    return OQ_OK;
}

/* What the model declares for the score output, when it declares it. */
static oq_status check_declared(const oq_value_info *vi, const char *what)
{
    const oq_type *t = vi->type;
    if (!t)
        return OQ_OK;
    if (t->kind != OQ_TYPE_TENSOR)
        return oq_error(OQ_E_INVALID, "%s: output '%s' is not a tensor: " NOT_SCORES, what,
                        vi->name);
    char shape[256];
    format_declared(t, shape, sizeof shape);
    if (t->elem != OQ_FLOAT)
        return oq_error(OQ_E_INVALID, "%s: output '%s' is %s: " NOT_SCORES
                        "; --output NAME selects another output", what, vi->name,
                        t->has_shape ? shape : oq_dtype_name(t->elem));
    if (t->has_shape &&
        !(t->rank == 2 || (t->rank == 4 && dim_may_be_one(&t->dims[2]) &&
                           dim_may_be_one(&t->dims[3]))))
        return oq_error(OQ_E_INVALID, "%s: output '%s' is %s: " NOT_SCORES
                        "; --output NAME selects another output", what, vi->name, shape);
    return OQ_OK;
}

/* The score tensor of a batch of n samples; sets *classes. */
static oq_status check_scores(const oq_tensor *t, size_t n, const char *name, const char *what,
                              size_t *classes)
{
    char shape[256];
    format_shape(t, shape, sizeof shape);
    if (t->dtype != OQ_FLOAT ||
        !(t->rank == 2 || (t->rank == 4 && t->dims[2] == 1 && t->dims[3] == 1)))
        return oq_error(OQ_E_INVALID, "%s: output '%s' is %s: " NOT_SCORES
                        "; --output NAME selects another output", what, name, shape);
    if (t->dims[0] != (int64_t)n)
        return oq_error(OQ_E_INVALID, "%s: output '%s' is %s for a batch of %zu samples: "
                        "axis 0 must be the batch", what, name, shape, n);
    if (t->dims[1] < 2)
        return oq_error(OQ_E_INVALID, "%s: output '%s' is %s: fewer than 2 classes", what, name,
                        shape);
    *classes = (size_t)t->dims[1];
    return OQ_OK;
}

/* ---- ranking ---- */

/* Whether class i with score a ranks above class j with score b: higher
 * score first, equal scores by index, NaN below every number. */
static bool above(float a, size_t i, float b, size_t j)
{
    if (isnan(a))
        return isnan(b) && i < j;
    if (isnan(b))
        return true;
    return a > b || (a == b && i < j);
}

/* How many classes rank above label, counting up to limit. */
static size_t rank_of(const float *s, size_t c, size_t label, size_t limit)
{
    size_t r = 0;
    for (size_t j = 0; j < c && r < limit; j++)
        r += j != label && above(s[j], j, s[label], label);
    return r;
}

static size_t argmax(const float *s, size_t c)
{
    size_t best = 0;
    for (size_t j = 1; j < c; j++)
        if (above(s[j], j, s[best], best))
            best = j;
    return best;
}

/* ---- the evaluation ---- */

typedef struct run_state {
    const oq_eval_options *o;
    const oq_labels *labels;
    oq_session *s[2];
    int out_idx[2];
    int *in_map;          /* int8 input index of each fp32 input */
    const oq_tensor **outs[2];
    oq_tensor **in8;      /* the batch reordered for the int8 session */
    const char *what[2];
    oq_eval_result *r;
    oq_eval_layers *layers;
    oq_data_reader *rd;
    /* latency: the first batch's time, and the later full batches' */
    uint64_t batches;
    double first_s[2], rest_s[2];
    size_t first_n;
    uint64_t n_rest;
} run_state;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Records the run times of one batch of n samples (t[k]: model k). */
static void time_batch(run_state *rs, size_t n, const double *t)
{
    if (rs->batches++ == 0) {
        rs->first_n = n;
        rs->first_s[0] = t[0];
        rs->first_s[1] = t[1];
    } else if (n == rs->r->batch_size) {
        rs->rest_s[0] += t[0];
        rs->rest_s[1] += t[1];
        rs->n_rest++;
    }
}

/* Mean batch latency per model (see oq_eval_model_stats). */
static void finish_latency(const run_state *rs, oq_eval_result *r)
{
    if (!rs->n_rest)
        r->batch_size = rs->first_n;
    for (size_t k = 0; k < r->n_models; k++) {
        r->model[k].timed_batches = rs->n_rest ? rs->n_rest : rs->batches ? 1 : 0;
        r->model[k].batch_ms = rs->n_rest    ? rs->rest_s[k] * 1e3 / (double)rs->n_rest
                               : rs->batches ? rs->first_s[k] * 1e3
                                             : NAN;
    }
}

static oq_status open_sessions(run_state *rs, const oq_model *m32, const oq_model *m8)
{
    const oq_eval_options *o = rs->o;
    oq_session_options so = {.threads = o->threads, .requant = o->requant};
    oq_status st = oq_session_new(m32, &so, &rs->s[0]);
    if (st != OQ_OK)
        return oq_error_prefix(st, "%s: ", rs->what[0]);
    so.qdq_as_float = o->qdq_as_float;
    if (m8 && (st = oq_session_new(m8, &so, &rs->s[1])) != OQ_OK)
        return oq_error_prefix(st, "%s: ", rs->what[1]);
    for (int k = 0; k < (m8 ? 2 : 1); k++) {
        size_t n = oq_session_n_outputs(rs->s[k]);
        if (!(rs->outs[k] = calloc(n + 1, sizeof *rs->outs[k])))
            return oq_error(OQ_E_NOMEM, "out of memory");
    }
    /* The score output: the one asked for, else the only one; the int8
     * model's is the fp32 one's name when it has several outputs. */
    if ((st = pick_output(rs->s[0], o->output, rs->what[0], &rs->out_idx[0])) != OQ_OK)
        return st;
    const oq_value_info *vi = oq_session_output(rs->s[0], (size_t)rs->out_idx[0]);
    if ((st = check_declared(vi, rs->what[0])) != OQ_OK)
        return st;
    if (!m8)
        return OQ_OK;
    const char *want = o->output ? o->output
                       : oq_session_n_outputs(rs->s[1]) == 1 ? NULL
                                                             : vi->name;
    if ((st = pick_output(rs->s[1], want, rs->what[1], &rs->out_idx[1])) != OQ_OK)
        return st;
    if ((st = check_declared(oq_session_output(rs->s[1], (size_t)rs->out_idx[1]), rs->what[1])) !=
        OQ_OK)
        return st;
    /* The int8 model takes the same inputs (found by name). */
    size_t n0 = oq_session_n_inputs(rs->s[0]), n1 = oq_session_n_inputs(rs->s[1]);
    if (n0 != n1)
        return oq_error(OQ_E_INVALID, "%s has %zu inputs and %s %zu: the models must take the "
                        "same inputs", rs->what[0], n0, rs->what[1], n1);
    rs->in_map = calloc(n0 + 1, sizeof *rs->in_map);
    rs->in8 = calloc(n0 + 1, sizeof *rs->in8);
    if (!rs->in_map || !rs->in8)
        return oq_error(OQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n0; i++) {
        const char *name = oq_session_input(rs->s[0], i)->name;
        int j = oq_session_input_index(rs->s[1], name);
        if (j < 0)
            return oq_error(OQ_E_INVALID, "%s has no input named '%s' (an input of %s)",
                            rs->what[1], name, rs->what[0]);
        rs->in_map[i] = j;
    }
    return OQ_OK;
}

/* The labels against the number of samples, when the reader knows it. */
static oq_status check_label_count(const oq_labels *l, size_t total, size_t limit,
                                   const char *data)
{
    if (!l || !total)
        return OQ_OK;
    if (limit && total == limit) {
        if (l->n < total)
            return oq_error(OQ_E_INVALID, "%s: %zu labels for the %zu samples used from %s",
                            l->path ? l->path : "labels", l->n, total, data);
        return OQ_OK;
    }
    if (l->n != total)
        return oq_error(OQ_E_INVALID, "%s: %zu labels, but %s holds %zu samples: one label per "
                        "sample is needed", l->path ? l->path : "labels", l->n, data, total);
    return OQ_OK;
}

/* Counts for one batch: top-1/top-5 per model, agreement and the SQNR
 * sums. */
static oq_status score_batch(run_state *rs, const oq_tensor *const *sc, size_t n, uint64_t done)
{
    oq_eval_result *r = rs->r;
    size_t c = r->classes;
    const oq_labels *l = rs->labels;
    int nm = (int)r->n_models;
    for (size_t i = 0; i < n; i++) {
        size_t label = 0;
        if (l) {
            int64_t v = l->v[done + i];
            if (v >= (int64_t)c)
                return oq_error(OQ_E_INVALID, "%s: the label of sample %llu (counting from 0) is "
                                "%lld, outside the model's %zu classes (0..%zu)",
                                l->path ? l->path : "labels", (unsigned long long)(done + i),
                                (long long)v, c, c - 1);
            label = (size_t)v;
        }
        size_t am[2] = {0, 0};
        for (int k = 0; k < nm; k++) {
            const float *s = (const float *)sc[k]->data + i * c;
            am[k] = argmax(s, c);
            if (l) {
                size_t rk = rank_of(s, c, label, 5);
                r->model[k].correct1 += rk < 1;
                r->model[k].correct5 += rk < 5;
            }
        }
        if (nm == 2)
            r->agree += am[0] == am[1];
    }
    if (nm == 2) {
        const float *a = sc[0]->data, *b = sc[1]->data;
        double sig = 0, noi = 0;
        for (size_t i = 0; i < n * c; i++) {
            double x = a[i], d = x - (double)b[i];
            sig += x * x;
            noi += d * d;
        }
        r->signal += sig;
        r->noise += noi;
    }
    return OQ_OK;
}

static oq_status run_batch(run_state *rs, oq_tensor **batch, size_t n, uint64_t done)
{
    oq_eval_result *r = rs->r;
    int nm = (int)r->n_models;
    if (rs->labels && done + n > rs->labels->n)
        return oq_error(OQ_E_INVALID, "%s: %zu labels, but the data has more samples",
                        rs->labels->path ? rs->labels->path : "labels", rs->labels->n);
    if (rs->layers)
        oq_eval_layers_batch(rs->layers, (const oq_tensor *const *)batch);
    double t[2] = {0, 0}, t0 = now_s();
    oq_status st = oq_session_run(rs->s[0], (const oq_tensor *const *)batch, rs->outs[0]);
    if (st != OQ_OK)
        return oq_error_prefix(st, "%s: %s: ", oq_data_current_file(rs->rd), rs->what[0]);
    t[0] = now_s() - t0;
    if (nm == 2) {
        for (size_t i = 0; i < oq_session_n_inputs(rs->s[0]); i++)
            rs->in8[rs->in_map[i]] = batch[i];
        t0 = now_s();
        if ((st = oq_session_run(rs->s[1], (const oq_tensor *const *)rs->in8, rs->outs[1])) !=
            OQ_OK)
            return oq_error_prefix(st, "%s: %s: ", oq_data_current_file(rs->rd), rs->what[1]);
        t[1] = now_s() - t0;
    }
    time_batch(rs, n, t);
    if (rs->layers && (st = oq_eval_layers_status(rs->layers)) != OQ_OK)
        return st;
    const oq_tensor *sc[2] = {NULL, NULL};
    size_t classes[2] = {0, 0};
    for (int k = 0; k < nm; k++) {
        const char *name = oq_session_output(rs->s[k], (size_t)rs->out_idx[k])->name;
        sc[k] = rs->outs[k][rs->out_idx[k]];
        if ((st = check_scores(sc[k], n, name, rs->what[k], &classes[k])) != OQ_OK)
            return st;
    }
    if (nm == 2 && classes[0] != classes[1])
        return oq_error(OQ_E_INVALID, "the score outputs differ: %zu classes in %s, %zu in %s",
                        classes[0], rs->what[0], classes[1], rs->what[1]);
    if (!r->classes) {
        r->classes = classes[0];
        r->has_top5 = rs->labels && r->classes >= 10;
    } else if (r->classes != classes[0]) {
        return oq_error(OQ_E_INVALID, "%s: the score output changed from %zu to %zu classes",
                        rs->what[0], r->classes, classes[0]);
    }
    return score_batch(rs, sc, n, done);
}

static void finish(oq_eval_result *r)
{
    double n = (double)r->samples;
    for (size_t k = 0; k < r->n_models; k++) {
        r->model[k].top1 = r->has_labels && n ? (double)r->model[k].correct1 / n : NAN;
        r->model[k].top5 = r->has_top5 && n ? (double)r->model[k].correct5 / n : NAN;
    }
    if (r->n_models == 2) {
        r->drop_pp = r->has_labels && n
                         ? (double)((int64_t)r->model[0].correct1 - (int64_t)r->model[1].correct1) *
                               100.0 / n
                         : NAN;
        r->agreement = n ? (double)r->agree / n : NAN;
        r->sqnr_db = oq_sqnr_db(r->signal, r->noise);
    } else {
        r->drop_pp = r->agreement = r->sqnr_db = NAN;
    }
}

oq_status oq_eval(const oq_model *fp32, const oq_model *int8, const char *data_path,
                  const oq_labels *labels, const oq_eval_options *o, oq_eval_result *out)
{
    memset(out, 0, sizeof *out);
    oq_eval_options defaults;
    if (!o) {
        oq_eval_options_default(&defaults);
        o = &defaults;
    }
    if (!labels && !int8)
        return oq_error(OQ_E_INVALID, "nothing to measure: one model needs labels");
    if (o->per_layer && !int8)
        return oq_error(OQ_E_INVALID, "per-layer SQNR needs two models (fp32 and int8)");
    run_state rs = {.o = o, .labels = labels, .r = out};
    rs.what[0] = fp32->path ? fp32->path : "the fp32 model";
    rs.what[1] = int8 && int8->path ? int8->path : "the int8 model";
    out->n_models = int8 ? 2 : 1;
    out->has_labels = labels != NULL;
    oq_data_reader *rd = NULL;
    const oq_value_info **ins = NULL;
    oq_status st = open_sessions(&rs, fp32, int8);
    if (st == OQ_OK) {
        size_t n_in = oq_session_n_inputs(rs.s[0]);
        if (!(ins = calloc(n_in + 1, sizeof *ins)))
            st = oq_error(OQ_E_NOMEM, "out of memory");
        for (size_t i = 0; ins && i < n_in; i++)
            ins[i] = oq_session_input(rs.s[0], i);
        if (st == OQ_OK)
            st = oq_data_open(data_path, &o->data, ins, n_in, &rd);
    }
    if (st == OQ_OK && !(out->source = strdup(oq_data_describe(rd))))
        st = oq_error(OQ_E_NOMEM, "out of memory");
    if (st == OQ_OK)
        out->batch_size = oq_data_batch_size(rd);
    if (st == OQ_OK)
        st = check_label_count(labels, oq_data_total(rd), o->data.samples, data_path);
    if (st == OQ_OK && o->per_layer)
        st = oq_eval_layers_new(fp32, int8, o->weights_ref ? o->weights_ref : fp32, rs.s[0],
                                rs.s[1], &rs.layers);
    size_t total = rd ? oq_data_total(rd) : 0;
    while (st == OQ_OK) {
        oq_tensor **batch;
        size_t n;
        if ((st = oq_data_next(rd, &batch, &n)) != OQ_OK || n == 0)
            break;
        rs.rd = rd;
        st = run_batch(&rs, batch, n, out->samples);
        out->samples += n;
        if (st == OQ_OK && o->progress)
            o->progress(o->progress_ctx, (size_t)out->samples, total);
    }
    if (st == OQ_OK && out->samples == 0)
        st = oq_error(OQ_E_INVALID, "%s: no samples", data_path);
    if (st == OQ_OK && labels && (!o->data.samples || out->samples < o->data.samples) &&
        out->samples != labels->n)
        st = oq_error(OQ_E_INVALID, "%s: %zu labels, but %s holds %llu samples: one label per "
                      "sample is needed", labels->path ? labels->path : "labels", labels->n,
                      data_path, (unsigned long long)out->samples);
    if (st == OQ_OK && (!(out->output = strdup(
                            oq_session_output(rs.s[0], (size_t)rs.out_idx[0])->name))))
        st = oq_error(OQ_E_NOMEM, "out of memory");
    if (st == OQ_OK && rs.layers)
        st = oq_eval_layers_finish(rs.layers, out);
    if (st == OQ_OK) {
        finish(out);
        finish_latency(&rs, out);
    }
    oq_eval_layers_free(rs.layers);
    oq_data_close(rd);
    free(ins);
    for (int k = 0; k < 2; k++) {
        oq_session_free(rs.s[k]);
        free(rs.outs[k]);
    }
    free(rs.in_map);
    free(rs.in8);
    if (st != OQ_OK)
        oq_eval_result_clear(out);
    return st;
}
