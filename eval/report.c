/* Gate verdicts and the reports: text tables, JSON, JUnit XML, Markdown. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval_internal.h"
#include "onnxq/onnxq.h"

/* ---- gates ---- */

const char *oq_bound_option(oq_bound_kind k)
{
    switch (k) {
    case OQ_BOUND_MAX_DROP: return "max-drop";
    case OQ_BOUND_MIN_AGREEMENT: return "min-agreement";
    case OQ_BOUND_MIN_SQNR: return "min-sqnr";
    }
    return "?";
}

const char *oq_bound_metric(oq_bound_kind k)
{
    switch (k) {
    case OQ_BOUND_MAX_DROP: return "accuracy drop";
    case OQ_BOUND_MIN_AGREEMENT: return "agreement";
    case OQ_BOUND_MIN_SQNR: return "output SQNR";
    }
    return "?";
}

const char *oq_bound_unit(oq_bound_kind k)
{
    switch (k) {
    case OQ_BOUND_MAX_DROP: return "pp";
    case OQ_BOUND_MIN_AGREEMENT: return "%";
    case OQ_BOUND_MIN_SQNR: return "dB";
    }
    return "";
}

static bool is_max(oq_bound_kind k) { return k == OQ_BOUND_MAX_DROP; }

oq_status oq_gate_check(const oq_eval_result *r, oq_gate *g)
{
    g->passed = true;
    for (size_t i = 0; i < g->n; i++) {
        oq_bound *b = &g->bounds[i];
        if (r->n_models != 2)
            return oq_error(OQ_E_INVALID, "--%s compares two models", oq_bound_option(b->kind));
        switch (b->kind) {
        case OQ_BOUND_MAX_DROP:
            if (!r->has_labels)
                return oq_error(OQ_E_INVALID, "--max-drop needs labels");
            b->measured = r->drop_pp;
            break;
        case OQ_BOUND_MIN_AGREEMENT: b->measured = r->agreement * 100.0; break;
        case OQ_BOUND_MIN_SQNR: b->measured = r->sqnr_db; break;
        }
        b->passed = !isnan(b->measured) &&
                    (is_max(b->kind) ? b->measured <= b->limit : b->measured >= b->limit);
        g->passed = g->passed && b->passed;
    }
    return OQ_OK;
}

/* ---- a growable string ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

static oq_status sb_done(sbuf *b, char **out)
{
    if (!b->failed && !b->s)
        sb_add(b, "", 0);
    if (b->failed) {
        free(b->s);
        return oq_error(OQ_E_NOMEM, "out of memory");
    }
    *out = b->s;
    return OQ_OK;
}

/* ---- number formatting ---- */

static const char *kind_name(oq_layer_kind k)
{
    return k == OQ_LAYER_WEIGHT ? "weight" : k == OQ_LAYER_BIAS ? "bias" : "activation";
}

/* A percentage of a fraction ("91.92%"), "-" when not measured. */
static void fmt_pct(char *buf, size_t len, double frac)
{
    if (isnan(frac))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f%%", frac * 100.0);
}

static void fmt_db(char *buf, size_t len, double db)
{
    if (isnan(db))
        snprintf(buf, len, "nan");
    else if (isinf(db))
        snprintf(buf, len, "%sinf", db < 0 ? "-" : "");
    else
        snprintf(buf, len, "%.2f", db);
}

/* A measurement against its limit: two decimals, more when two would make
 * them look equal although the verdict depends on the difference. */
static void fmt_measured(char *buf, size_t len, double v, double limit, oq_bound_kind k)
{
    if (k == OQ_BOUND_MIN_SQNR && (isinf(v) || isnan(v))) {
        fmt_db(buf, len, v);
        return;
    }
    if (isnan(v)) {
        snprintf(buf, len, "nan");
        return;
    }
    char a[64], b[64];
    snprintf(a, sizeof a, "%.2f", v);
    snprintf(b, sizeof b, "%.2f", limit);
    if (strcmp(a, b) == 0 && v != limit)
        snprintf(buf, len, "%.6f", v);
    else
        snprintf(buf, len, "%s", a);
}

static void fmt_bound(char *buf, size_t len, const oq_bound *b)
{
    snprintf(buf, len, "%s %g %s", is_max(b->kind) ? "<=" : ">=", b->limit,
             oq_bound_unit(b->kind));
}

static const char *role(size_t k) { return k == 0 ? "fp32" : "int8"; }

static const char *model_path(const oq_eval_report *rep, size_t k)
{
    const char *p = k == 0 ? rep->fp32 : rep->int8;
    return p ? p : "-";
}

static size_t shown_layers(const oq_eval_report *rep)
{
    size_t n = rep->result->n_layers;
    return rep->max_layers && rep->max_layers < n ? rep->max_layers : n;
}

/* ---- text ---- */

/* int8 over fp32 of two positive figures; NaN when either is unknown. */
static double ratio(double int8, double fp32)
{
    return int8 > 0 && fp32 > 0 && isfinite(int8) && isfinite(fp32) ? int8 / fp32 : NAN;
}

static void fmt_bytes(char *buf, size_t len, uint64_t n)
{
    if (n)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "-");
}

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (isnan(ms))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.3f ms", ms);
}

/* The models table: top-1 (and top-5) with labels, file size, latency. */
static void text_models(sbuf *b, const oq_eval_report *rep)
{
    const oq_eval_result *r = rep->result;
    char x[64];
    size_t w = 5;
    for (size_t k = 0; k < r->n_models; k++)
        if (strlen(model_path(rep, k)) > w)
            w = strlen(model_path(rep, k));
    sb_printf(b, "\n%-4s  %-*s", "", (int)w, "model");
    if (r->has_labels)
        sb_printf(b, "  %8s", "top-1");
    if (r->has_top5)
        sb_printf(b, "  %8s", "top-5");
    sb_printf(b, "  %12s  %12s\n", "size", "latency");
    for (size_t k = 0; k < r->n_models; k++) {
        const oq_eval_model_stats *m = &r->model[k];
        sb_printf(b, "%-4s  %-*s", r->n_models == 2 ? role(k) : "", (int)w, model_path(rep, k));
        if (r->has_labels) {
            fmt_pct(x, sizeof x, m->top1);
            sb_printf(b, "  %8s", x);
        }
        if (r->has_top5) {
            fmt_pct(x, sizeof x, m->top5);
            sb_printf(b, "  %8s", x);
        }
        fmt_bytes(x, sizeof x, rep->bytes[k]);
        sb_printf(b, "  %12s", x);
        fmt_ms(x, sizeof x, m->batch_ms);
        sb_printf(b, "  %12s", x);
        if (r->has_labels)
            sb_printf(b, "   (%llu of %llu correct)", (unsigned long long)m->correct1,
                      (unsigned long long)r->samples);
        sb_puts(b, "\n");
    }
    sb_printf(b, "latency: mean time of one run on a batch of %zu sample%s, over %llu batch%s%s\n",
              r->batch_size, r->batch_size == 1 ? "" : "s",
              (unsigned long long)r->model[0].timed_batches,
              r->model[0].timed_batches == 1 ? "" : "es",
              r->model[0].timed_batches > 1 ? " (not the first one, nor a partial last one)" : "");
}

/* Two models: drop, agreement, output SQNR, size and latency ratios. */
static void text_comparison(sbuf *b, const oq_eval_result *r, const oq_eval_report *rep)
{
    char x[64];
    sb_puts(b, "\n");
    if (r->has_labels)
        sb_printf(b, "accuracy drop (top-1): %.2f pp\n", r->drop_pp);
    fmt_pct(x, sizeof x, r->agreement);
    sb_printf(b, "agreement:             %s (%llu of %llu samples predict the same class)\n", x,
              (unsigned long long)r->agree, (unsigned long long)r->samples);
    fmt_db(x, sizeof x, r->sqnr_db);
    sb_printf(b, "output SQNR:           %s dB\n", x);
    double sz = ratio((double)rep->bytes[1], (double)rep->bytes[0]);
    double lt = ratio(r->model[1].batch_ms, r->model[0].batch_ms);
    if (!isnan(sz))
        sb_printf(b, "size (int8 / fp32):    %.3fx\n", sz);
    if (!isnan(lt))
        sb_printf(b, "latency (int8 / fp32): %.2fx\n", lt);
}

oq_status oq_eval_report_text(const oq_eval_report *rep, char **out)
{
    const oq_eval_result *r = rep->result;
    sbuf b = {0};
    char x[64];
    sb_printf(&b, "data:    %s (%s): %llu samples, %zu classes, score output '%s'\n",
              rep->data ? rep->data : "-", r->source ? r->source : "",
              (unsigned long long)r->samples, r->classes, r->output ? r->output : "");
    if (rep->labels)
        sb_printf(&b, "labels:  %s\n", rep->labels);
    text_models(&b, rep);
    if (r->n_models == 2)
        text_comparison(&b, r, rep);
    if (r->n_layers || r->n_skipped) {
        size_t n = shown_layers(rep), w = 11, wn = 4;
        for (size_t i = 0; i < n; i++) {
            if (strlen(r->layers[i].tensor) > w)
                w = strlen(r->layers[i].tensor);
            if (strlen(r->layers[i].node) > wn)
                wn = strlen(r->layers[i].node);
        }
        sb_printf(&b, "\nper-layer SQNR, worst first (%zu quantized tensors", r->n_layers);
        if (n < r->n_layers)
            sb_printf(&b, ", %zu shown", n);
        sb_puts(&b, "):\n");
        sb_printf(&b, "  %8s  %-10s  %-*s  %-*s  %s\n", "SQNR dB", "kind", (int)w, "fp32 tensor",
                  (int)wn, "node", "int8 tensor");
        for (size_t i = 0; i < n; i++) {
            const oq_eval_layer *l = &r->layers[i];
            fmt_db(x, sizeof x, l->sqnr_db);
            sb_printf(&b, "  %8s  %-10s  %-*s  %-*s  %s\n", x, kind_name(l->kind), (int)w,
                      l->tensor, (int)wn, *l->node ? l->node : "-", l->quantized);
        }
        if (r->n_skipped) {
            sb_printf(&b, "not compared (%zu):\n", r->n_skipped);
            for (size_t i = 0; i < r->n_skipped; i++)
                sb_printf(&b, "  %s: %s\n", r->skipped[i].quantized, r->skipped[i].why);
        }
    }
    const oq_gate *g = rep->gate;
    if (g) {
        sb_printf(&b, "\n%-17s %-14s %-13s %-13s %s\n", "bound", "metric", "limit", "measured",
                  "result");
        size_t held = 0;
        for (size_t i = 0; i < g->n; i++) {
            const oq_bound *bd = &g->bounds[i];
            char lim[64], m[64], mu[80];
            fmt_bound(lim, sizeof lim, bd);
            fmt_measured(m, sizeof m, bd->measured, bd->limit, bd->kind);
            snprintf(mu, sizeof mu, "%s %s", m, oq_bound_unit(bd->kind));
            sb_printf(&b, "--%-15s %-14s %-13s %-13s %s\n", oq_bound_option(bd->kind),
                      oq_bound_metric(bd->kind), lim, mu, bd->passed ? "pass" : "FAIL");
            held += bd->passed;
        }
        sb_printf(&b, "\ngate: %s (%zu of %zu bounds hold)\n", g->passed ? "PASSED" : "FAILED",
                  held, g->n);
    }
    return sb_done(&b, out);
}

/* ---- JSON ---- */

static json_t *jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* not UTF-8: replace the offending bytes */
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        c[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(c);
    free(c);
    return j;
}

static bool jset(json_t *o, const char *k, json_t *v)
{
    return v && json_object_set_new(o, k, v) == 0;
}

/* One entry of "models": role, path, accuracy, file size, latency. */
static json_t *json_model(const oq_eval_report *rep, size_t k)
{
    const oq_eval_result *r = rep->result;
    const oq_eval_model_stats *st = &r->model[k];
    json_t *m = json_object();
    bool ok = m && jset(m, "role", json_string(r->n_models == 2 ? role(k) : "model")) &&
              jset(m, "path", jstr(model_path(rep, k))) &&
              jset(m, "top1", r->has_labels ? jreal(st->top1) : json_null()) &&
              jset(m, "top5", r->has_top5 ? jreal(st->top5) : json_null()) &&
              jset(m, "correct_top1", r->has_labels ? json_integer((json_int_t)st->correct1)
                                                    : json_null()) &&
              jset(m, "correct_top5", r->has_top5 ? json_integer((json_int_t)st->correct5)
                                                  : json_null()) &&
              jset(m, "bytes", rep->bytes[k] ? json_integer((json_int_t)rep->bytes[k])
                                             : json_null()) &&
              jset(m, "batch_ms", jreal(st->batch_ms)) &&
              jset(m, "sample_ms", jreal(r->batch_size ? st->batch_ms / (double)r->batch_size
                                                       : NAN)) &&
              jset(m, "timed_batches", json_integer((json_int_t)st->timed_batches));
    if (!ok) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static json_t *json_report(const oq_eval_report *rep)
{
    const oq_eval_result *r = rep->result;
    json_t *root = json_object();
    if (!root)
        return NULL;
    /* Containers are attached as soon as they exist (root owns them), then
     * filled through borrowed references. */
    json_t *models = json_array(), *layers = NULL, *skipped = NULL;
    bool ok = jset(root, "onnxq_version", json_string(oq_version())) &&
              jset(root, "kind", json_string(rep->gate ? "gate" : "eval")) &&
              jset(root, "data", jstr(rep->data)) && jset(root, "source", jstr(r->source)) &&
              jset(root, "labels", jstr(rep->labels)) && jset(root, "output", jstr(r->output)) &&
              jset(root, "samples", json_integer((json_int_t)r->samples)) &&
              jset(root, "classes", json_integer((json_int_t)r->classes)) &&
              jset(root, "seconds", jreal(rep->seconds)) && jset(root, "models", models);
    for (size_t k = 0; ok && k < r->n_models; k++) {
        json_t *m = json_model(rep, k);
        ok = m && json_array_append_new(models, m) == 0;
    }
    ok = ok && jset(root, "batch_size", json_integer((json_int_t)r->batch_size));
    if (ok && r->n_models == 2)
        ok = jset(root, "accuracy_drop_pp", r->has_labels ? jreal(r->drop_pp) : json_null()) &&
             jset(root, "agreement", jreal(r->agreement)) &&
             jset(root, "agreement_count", json_integer((json_int_t)r->agree)) &&
             jset(root, "output_sqnr_db", jreal(r->sqnr_db)) &&
             jset(root, "output_identical", json_boolean(r->noise == 0)) &&
             jset(root, "size_ratio", jreal(ratio((double)rep->bytes[1], (double)rep->bytes[0]))) &&
             jset(root, "latency_ratio", jreal(ratio(r->model[1].batch_ms, r->model[0].batch_ms)));
    if (ok && (r->n_layers || r->n_skipped))
        ok = jset(root, "layers", layers = json_array()) &&
             jset(root, "not_compared", skipped = json_array());
    for (size_t i = 0; ok && i < r->n_layers; i++) {
        const oq_eval_layer *l = &r->layers[i];
        json_t *o = json_object();
        ok = o && json_array_append_new(layers, o) == 0 && jset(o, "tensor", jstr(l->tensor)) &&
             jset(o, "quantized", jstr(l->quantized)) && jset(o, "node", jstr(l->node)) &&
             jset(o, "kind", json_string(kind_name(l->kind))) &&
             jset(o, "sqnr_db", jreal(l->sqnr_db)) &&
             jset(o, "elements", json_integer((json_int_t)l->elements)) &&
             jset(o, "signal", jreal(l->signal)) && jset(o, "noise", jreal(l->noise));
    }
    for (size_t i = 0; ok && i < r->n_skipped; i++) {
        json_t *o = json_object();
        ok = o && json_array_append_new(skipped, o) == 0 &&
             jset(o, "quantized", jstr(r->skipped[i].quantized)) &&
             jset(o, "why", jstr(r->skipped[i].why));
    }
    const oq_gate *g = rep->gate;
    if (ok && g) {
        json_t *go = json_object(), *bounds = json_array();
        if (!go || !bounds) {
            json_decref(go);
            json_decref(bounds);
            ok = false;
        } else if (!jset(go, "bounds", bounds)) {
            json_decref(go);
            ok = false;
        } else {
            ok = jset(root, "gate", go) && jset(go, "passed", json_boolean(g->passed));
        }
        for (size_t i = 0; ok && i < g->n; i++) {
            const oq_bound *bd = &g->bounds[i];
            json_t *o = json_object();
            ok = o && json_array_append_new(bounds, o) == 0 &&
                 jset(o, "option", json_string(oq_bound_option(bd->kind))) &&
                 jset(o, "metric", json_string(oq_bound_metric(bd->kind))) &&
                 jset(o, "unit", json_string(oq_bound_unit(bd->kind))) &&
                 jset(o, "comparison", json_string(is_max(bd->kind) ? "<=" : ">=")) &&
                 jset(o, "limit", jreal(bd->limit)) &&
                 jset(o, "measured", jreal(bd->measured)) &&
                 jset(o, "passed", json_boolean(bd->passed));
        }
        ok = ok && jset(root, "passed", json_boolean(g->passed));
    }
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

oq_status oq_eval_report_json(const oq_eval_report *rep, char **out)
{
    json_t *root = json_report(rep);
    char *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!s)
        return oq_error(OQ_E_NOMEM, "out of memory");
    sbuf b = {0};
    sb_puts(&b, s);
    sb_puts(&b, "\n");
    free(s);
    return sb_done(&b, out);
}

/* ---- JUnit XML ---- */

/* Length of the valid UTF-8 sequence at s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                          : (c & 0xF8) == 0xF0   ? 4
                                                 : 0;
    if (n == 0 || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Text or attribute content: markup characters escaped, control characters
 * that XML 1.0 forbids and invalid UTF-8 replaced by '?'. */
static void xml_esc(sbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned c = *p;
        size_t n = utf8_len(p);
        if (c == '&')
            sb_puts(b, "&amp;");
        else if (c == '<')
            sb_puts(b, "&lt;");
        else if (c == '>')
            sb_puts(b, "&gt;");
        else if (c == '"')
            sb_puts(b, "&quot;");
        else if (c == '\'')
            sb_puts(b, "&apos;");
        else if (c == '\n' || c == '\t')
            sb_add(b, (const char *)p, 1);
        else if (c < 0x20 || c == 0x7f || n == 0)
            sb_puts(b, "?");
        else {
            sb_add(b, (const char *)p, n);
            p += n;
            continue;
        }
        p++;
    }
}

static void xml_attr(sbuf *b, const char *name, const char *value)
{
    sb_printf(b, " %s=\"", name);
    xml_esc(b, value);
    sb_puts(b, "\"");
}

static void xml_prop(sbuf *b, const char *name, const char *value)
{
    sb_puts(b, "      <property");
    xml_attr(b, "name", name);
    xml_attr(b, "value", value ? value : "");
    sb_puts(b, "/>\n");
}

/* One sentence on a bound's measurement, for failure messages. */
static void bound_detail(char *buf, size_t len, const oq_eval_result *r, const oq_bound *bd)
{
    char a[64], c[64];
    switch (bd->kind) {
    case OQ_BOUND_MAX_DROP:
        fmt_pct(a, sizeof a, r->model[0].top1);
        fmt_pct(c, sizeof c, r->model[1].top1);
        snprintf(buf, len, "top-1 accuracy: fp32 %s, int8 %s over %llu samples", a, c,
                 (unsigned long long)r->samples);
        break;
    case OQ_BOUND_MIN_AGREEMENT:
        snprintf(buf, len, "%llu of %llu samples predict the same class in both models",
                 (unsigned long long)r->agree, (unsigned long long)r->samples);
        break;
    case OQ_BOUND_MIN_SQNR:
        fmt_db(a, sizeof a, r->sqnr_db);
        snprintf(buf, len, "SQNR of output '%s' over %llu samples: %s dB",
                 r->output ? r->output : "", (unsigned long long)r->samples, a);
        break;
    }
}

oq_status oq_eval_report_junit(const oq_eval_report *rep, char **out)
{
    const oq_gate *g = rep->gate;
    if (!g)
        return oq_error(OQ_E_INVALID, "a JUnit report needs a gate");
    const oq_eval_result *r = rep->result;
    size_t failures = 0;
    for (size_t i = 0; i < g->n; i++)
        failures += !g->bounds[i].passed;
    sbuf b = {0};
    char t[64], num[64];
    snprintf(t, sizeof t, "%.3f", rep->seconds);
    sb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(&b, "<testsuites name=\"onnxq gate\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
                  "time=\"%s\">\n", g->n, failures, t);
    sb_puts(&b, "  <testsuite");
    char name[1024];
    snprintf(name, sizeof name, "onnxq gate: %s vs %s", model_path(rep, 1), model_path(rep, 0));
    xml_attr(&b, "name", name);
    sb_printf(&b, " tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%s\">\n",
              g->n, failures, t);
    sb_puts(&b, "    <properties>\n");
    xml_prop(&b, "fp32", rep->fp32);
    xml_prop(&b, "int8", rep->int8);
    xml_prop(&b, "data", rep->data);
    xml_prop(&b, "labels", rep->labels);
    xml_prop(&b, "output", r->output);
    snprintf(num, sizeof num, "%llu", (unsigned long long)r->samples);
    xml_prop(&b, "samples", num);
    snprintf(num, sizeof num, "%zu", r->classes);
    xml_prop(&b, "classes", num);
    for (size_t k = 0; k < r->n_models && r->has_labels; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_top1", role(k));
        snprintf(num, sizeof num, "%.6f", r->model[k].top1);
        xml_prop(&b, key, num);
    }
    sb_puts(&b, "    </properties>\n");
    for (size_t i = 0; i < g->n; i++) {
        const oq_bound *bd = &g->bounds[i];
        char lim[64], m[64], tc[256], msg[512], detail[512];
        fmt_bound(lim, sizeof lim, bd);
        fmt_measured(m, sizeof m, bd->measured, bd->limit, bd->kind);
        snprintf(tc, sizeof tc, "%s: %s %s", oq_bound_option(bd->kind), oq_bound_metric(bd->kind),
                 lim);
        sb_puts(&b, "    <testcase classname=\"onnxq.gate\"");
        xml_attr(&b, "name", tc);
        sb_puts(&b, " time=\"0\"");
        bound_detail(detail, sizeof detail, r, bd);
        if (bd->passed) {
            sb_puts(&b, ">\n      <system-out>");
            snprintf(msg, sizeof msg, "%s %s %s holds (%s %s); %s", oq_bound_metric(bd->kind), m,
                     oq_bound_unit(bd->kind), oq_bound_metric(bd->kind), lim, detail);
            xml_esc(&b, msg);
            sb_puts(&b, "</system-out>\n    </testcase>\n");
        } else {
            snprintf(msg, sizeof msg, "%s %s %s does not satisfy %s", oq_bound_metric(bd->kind), m,
                     oq_bound_unit(bd->kind), lim);
            sb_puts(&b, ">\n      <failure type=\"BoundNotMet\"");
            xml_attr(&b, "message", msg);
            sb_puts(&b, ">");
            xml_esc(&b, detail);
            sb_puts(&b, "</failure>\n    </testcase>\n");
        }
    }
    char *text = NULL;
    if (oq_eval_report_text(rep, &text) == OQ_OK) {
        sb_puts(&b, "    <system-out>");
        xml_esc(&b, text);
        sb_puts(&b, "</system-out>\n");
        free(text);
    } else {
        b.failed = true;
    }
    sb_puts(&b, "  </testsuite>\n</testsuites>\n");
    return sb_done(&b, out);
}

/* ---- Markdown ---- */

/* Inline code for a table cell: backticks and pipes cannot appear inside,
 * so they (and control characters) are replaced. */
static void md_code(sbuf *b, const char *s)
{
    sb_puts(b, "`");
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '|')
            sb_puts(b, "\\|");
        else if (*p == '`')
            sb_puts(b, "'");
        else if ((unsigned char)*p < 0x20)
            sb_puts(b, " ");
        else
            sb_add(b, p, 1);
    }
    sb_puts(b, "`");
}

/* The models table (top-1, top-5, size, latency) and, for two models, the
 * comparison. */
static void md_models(sbuf *b, const oq_eval_report *rep)
{
    const oq_eval_result *r = rep->result;
    char x[64], y[64];
    sb_printf(b, "| model | file | top-1 |%s size | latency (batch of %zu) |\n|---|---|---:|%s"
                 "---:|---:|\n", r->has_top5 ? " top-5 |" : "", r->batch_size,
              r->has_top5 ? "---:|" : "");
    for (size_t k = 0; k < r->n_models; k++) {
        fmt_pct(x, sizeof x, r->has_labels ? r->model[k].top1 : NAN);
        sb_printf(b, "| %s | ", r->n_models == 2 ? role(k) : "model");
        md_code(b, model_path(rep, k));
        sb_printf(b, " | %s |", x);
        if (r->has_top5) {
            fmt_pct(y, sizeof y, r->model[k].top5);
            sb_printf(b, " %s |", y);
        }
        fmt_bytes(x, sizeof x, rep->bytes[k]);
        fmt_ms(y, sizeof y, r->model[k].batch_ms);
        sb_printf(b, " %s | %s |\n", x, y);
    }
    if (r->n_models != 2)
        return;
    sb_puts(b, "\n");
    if (r->has_labels)
        sb_printf(b, "Accuracy drop (top-1): **%.2f pp** · ", r->drop_pp);
    fmt_pct(x, sizeof x, r->agreement);
    fmt_db(y, sizeof y, r->sqnr_db);
    sb_printf(b, "agreement: **%s** · output SQNR: **%s dB**", x, y);
    double sz = ratio((double)rep->bytes[1], (double)rep->bytes[0]);
    double lt = ratio(r->model[1].batch_ms, r->model[0].batch_ms);
    if (!isnan(sz))
        sb_printf(b, " · size int8/fp32: **%.3f×**", sz);
    if (!isnan(lt))
        sb_printf(b, " · latency int8/fp32: **%.2f×**", lt);
    sb_puts(b, "\n");
}

oq_status oq_eval_report_markdown(const oq_eval_report *rep, char **out)
{
    const oq_eval_result *r = rep->result;
    const oq_gate *g = rep->gate;
    sbuf b = {0};
    char x[64];
    if (g)
        sb_printf(&b, "## onnxq gate: %s\n\n", g->passed ? "✅ passed" : "❌ failed");
    else
        sb_puts(&b, "## onnxq eval\n\n");
    sb_printf(&b, "%llu samples of ", (unsigned long long)r->samples);
    md_code(&b, rep->data);
    sb_printf(&b, " (%zu classes, score output ", r->classes);
    md_code(&b, r->output);
    sb_puts(&b, ")");
    if (rep->labels) {
        sb_puts(&b, ", labels ");
        md_code(&b, rep->labels);
    }
    sb_puts(&b, ".\n\n");
    if (g) {
        sb_puts(&b, "| bound | metric | limit | measured | result |\n"
                    "|---|---|---:|---:|:---:|\n");
        for (size_t i = 0; i < g->n; i++) {
            const oq_bound *bd = &g->bounds[i];
            char lim[64], m[64];
            snprintf(lim, sizeof lim, "%s %g %s", is_max(bd->kind) ? "≤" : "≥", bd->limit,
                     oq_bound_unit(bd->kind));
            fmt_measured(m, sizeof m, bd->measured, bd->limit, bd->kind);
            sb_printf(&b, "| `--%s` | %s | %s | %s %s | %s |\n", oq_bound_option(bd->kind),
                      oq_bound_metric(bd->kind), lim, m, oq_bound_unit(bd->kind),
                      bd->passed ? "✅ pass" : "❌ FAIL");
        }
        sb_puts(&b, "\n");
    }
    md_models(&b, rep);
    if (r->n_layers) {
        size_t n = shown_layers(rep);
        sb_printf(&b, "\n### Per-layer SQNR, worst first (%zu of %zu quantized tensors)\n\n"
                      "| SQNR (dB) | kind | fp32 tensor | node | int8 tensor |\n"
                      "|---:|---|---|---|---|\n",
                  n, r->n_layers);
        for (size_t i = 0; i < n; i++) {
            const oq_eval_layer *l = &r->layers[i];
            fmt_db(x, sizeof x, l->sqnr_db);
            sb_printf(&b, "| %s | %s | ", x, kind_name(l->kind));
            md_code(&b, l->tensor);
            sb_puts(&b, " | ");
            if (*l->node)
                md_code(&b, l->node);
            else
                sb_puts(&b, "-");
            sb_puts(&b, " | ");
            md_code(&b, l->quantized);
            sb_puts(&b, " |\n");
        }
    }
    return sb_done(&b, out);
}
