/* Helpers shared by the onnxq commands: errors and exit codes, option
 * parsing, a growable string, printing types as text and JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* ---- errors and exit codes ---- */

void cli_errorf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onnxq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_report(const char *cmd, oq_status st)
{
    const char *msg = oq_errmsg();
    cli_errorf(cmd, "%s", msg[0] ? msg : oq_status_name(st));
}

int cli_exit_for_input(oq_status st)
{
    switch (st) {
    case OQ_OK: return CLI_EXIT_OK;
    case OQ_E_INVALID:
    case OQ_E_IO:
    case OQ_E_UNSUPPORTED: return CLI_EXIT_USAGE;
    case OQ_E_NOMEM:
    case OQ_E_INTERNAL: return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onnxq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nSee 'onnxq %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_finish_output(const char *cmd)
{
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_errorf(cmd, "writing to standard output failed: %s",
                   errno ? strerror(errno) : "write error");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* ---- option parsing ---- */

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises getopt_long completely */
    opterr = 1;
}

void cli_join_longopts(struct option *lo, const struct option *a, size_t na,
                       const struct option *b, size_t nb)
{
    /* the tables are the program's own: more than fit is a programming error */
    if (na + nb + 1 > CLI_MAX_LONGOPTS) {
        fprintf(stderr, "onnxq: internal error: %zu long options\n", na + nb);
        abort();
    }
    memcpy(lo, a, na * sizeof *lo);
    memcpy(lo + na, b, nb * sizeof *lo);
    memset(lo + na + nb, 0, sizeof *lo);
}

int cli_bad_option(const char *cmd)
{
    fprintf(stderr, "See 'onnxq %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

/* ---- a growable string ---- */

void cli_buf_free(cli_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

static bool buf_reserve(cli_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void cli_buf_printf(cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cli_buf_puts_safe(cli_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    s = oq_str(s);
    if (!buf_reserve(b, 4 * strlen(s)))
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            b->s[b->len++] = '\\';
            b->s[b->len++] = 'x';
            b->s[b->len++] = hex[*p >> 4];
            b->s[b->len++] = hex[*p & 15];
        } else {
            b->s[b->len++] = (char)*p;
        }
    }
    b->s[b->len] = '\0';
}

const char *cli_buf_str(const cli_buf *b) { return b->s ? b->s : ""; }

/* ---- types as text ---- */

static void format_shape(cli_buf *b, const oq_type *t)
{
    cli_buf_puts_safe(b, oq_dtype_name(t->elem));
    if (!t->has_shape)
        return;
    cli_buf_printf(b, "[");
    for (int i = 0; i < t->rank; i++) {
        const oq_dim *d = &t->dims[i];
        if (i)
            cli_buf_printf(b, ",");
        if (d->kind == OQ_DIM_VALUE)
            cli_buf_printf(b, "%lld", (long long)d->value);
        else if (d->kind == OQ_DIM_PARAM && d->param && d->param[0])
            cli_buf_puts_safe(b, d->param);
        else
            cli_buf_printf(b, "?");
    }
    cli_buf_printf(b, "]");
}

void cli_format_type(cli_buf *b, const oq_type *t)
{
    if (!t) {
        cli_buf_printf(b, "?");
        return;
    }
    switch (t->kind) {
    case OQ_TYPE_TENSOR: format_shape(b, t); return;
    case OQ_TYPE_SPARSE_TENSOR:
        cli_buf_printf(b, "sparse(");
        format_shape(b, t);
        cli_buf_printf(b, ")");
        return;
    case OQ_TYPE_SEQUENCE:
    case OQ_TYPE_OPTIONAL:
        cli_buf_printf(b, "%s(", t->kind == OQ_TYPE_SEQUENCE ? "seq" : "optional");
        cli_format_type(b, t->inner);
        cli_buf_printf(b, ")");
        return;
    case OQ_TYPE_MAP:
        cli_buf_printf(b, "map(%s,", oq_dtype_name(t->elem));
        cli_format_type(b, t->inner);
        cli_buf_printf(b, ")");
        return;
    case OQ_TYPE_NONE: break;
    }
    cli_buf_printf(b, "?");
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not valid. */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A malloc'd copy of s with invalid UTF-8 bytes replaced by U+FFFD. */
static char *utf8_sanitize(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(3 * len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
    return out;
}

json_t *cli_json_string(const char *s)
{
    s = oq_str(s);
    json_t *j = json_string(s);
    if (j)
        return j;
    char *clean = utf8_sanitize(s);
    if (!clean)
        return NULL;
    j = json_string(clean);
    free(clean);
    return j;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

bool cli_json_set(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return false;
    key = oq_str(key);
    if (utf8_valid(key))
        return json_object_set_new(obj, key, value) == 0;
    char *clean = utf8_sanitize(key);
    if (!clean) {
        json_decref(value);
        return false;
    }
    bool ok = json_object_set_new(obj, clean, value) == 0;
    free(clean);
    return ok;
}

static json_t *json_shape(const oq_type *t)
{
    if (!t->has_shape)
        return json_null();
    json_t *a = json_array();
    for (int i = 0; a && i < t->rank; i++) {
        const oq_dim *d = &t->dims[i];
        json_t *v;
        if (d->kind == OQ_DIM_VALUE)
            v = json_integer((json_int_t)d->value);
        else if (d->kind == OQ_DIM_PARAM && d->param && d->param[0])
            v = cli_json_string(d->param);
        else
            v = json_null();
        if (json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static const char *kind_name(oq_type_kind k)
{
    switch (k) {
    case OQ_TYPE_TENSOR: return "tensor";
    case OQ_TYPE_SEQUENCE: return "sequence";
    case OQ_TYPE_MAP: return "map";
    case OQ_TYPE_OPTIONAL: return "optional";
    case OQ_TYPE_SPARSE_TENSOR: return "sparse_tensor";
    case OQ_TYPE_NONE: break;
    }
    return "none";
}

json_t *cli_json_type(const oq_type *t)
{
    if (!t)
        return json_null();
    json_t *o = json_object();
    if (!o || !cli_json_set(o, "kind", json_string(kind_name(t->kind))))
        goto fail;
    switch (t->kind) {
    case OQ_TYPE_TENSOR:
    case OQ_TYPE_SPARSE_TENSOR:
        if (!cli_json_set(o, "dtype", json_string(oq_dtype_name(t->elem))) ||
            !cli_json_set(o, "shape", json_shape(t)))
            goto fail;
        break;
    case OQ_TYPE_SEQUENCE:
    case OQ_TYPE_OPTIONAL:
        if (!cli_json_set(o, "elem", cli_json_type(t->inner)))
            goto fail;
        break;
    case OQ_TYPE_MAP:
        if (!cli_json_set(o, "key", json_string(oq_dtype_name(t->elem))) ||
            !cli_json_set(o, "value", cli_json_type(t->inner)))
            goto fail;
        break;
    case OQ_TYPE_NONE: break;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- files and progress ---- */

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

double cli_seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void cli_progress_start(cli_progress *p, const char *what)
{
    p->what = what;
    p->tty = isatty(STDERR_FILENO) != 0;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
}

void cli_progress_show(void *ctx, size_t done, size_t total)
{
    const cli_progress *p = ctx;
    if (!p->tty)
        return;
    double t = cli_seconds_since(&p->start), rate = t > 0 ? (double)done / t : 0;
    if (total)
        fprintf(stderr, "\r%s: %zu/%zu samples, %.1f samples/s, ETA %.0f s   ", p->what, done,
                total, rate, rate > 0 ? (double)(total - done) / rate : 0.0);
    else
        fprintf(stderr, "\r%s: %zu samples, %.1f samples/s   ", p->what, done, rate);
}

void cli_progress_end(const cli_progress *p)
{
    if (p->tty)
        fprintf(stderr, "\n");
}
