/* onnxq run: runs a model in the interpreter on inputs from .npy or .pb
 * files, writes every output to a folder, and optionally times repeated
 * runs. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

#define CMD "run"
#define MAX_INPUTS 256

void cmd_run_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq run [options] MODEL -i [NAME=]FILE [-i ...] [-o OUTDIR]\n"
            "\n"
            "Runs MODEL (.onnx) in onnxq's interpreter. Each input comes from a .npy or a\n"
            "TensorProto .pb file (chosen by the file's extension); a model with a single\n"
            "input takes -i FILE without the name. Each output is written to\n"
            "OUTDIR/NAME.npy (or .pb), where characters of NAME outside [A-Za-z0-9._-]\n"
            "become '_'. Files are written to a temporary name and renamed; an output\n"
            "path that is one of the inputs or the model is refused.\n"
            "\n"
            "Options:\n"
            "   -i, --input [NAME=]FILE   an input (repeat for each model input)\n"
            "   -o, --output-dir OUTDIR   where to write the outputs (created if missing);\n"
            "                             may be left out with --time\n"
            "   --output-format npy|pb    the format of the output files (default npy)\n"
            "   --time N                  run N more times after the first run and print\n"
            "                             the median and minimum latency, and the\n"
            "                             GEMM kernels in use\n"
            "   --threads N               worker threads (default: all cores)\n"
            "   --requant float|fixed     int8 requantization: float multiplier, rounding\n"
            "                             half to even (default; what onnxruntime does) or\n"
            "                             integer-only fixed point (differs by <= 1 LSB)\n"
            "   --qdq-float               run QDQ groups as written (dequantize, float op,\n"
            "                             quantize) instead of as integer operators\n"
            "   --explain                 print, for each QDQ group of the model, whether it\n"
            "                             runs as an integer operator, on 8-bit data\n"
            "                             directly, or in float, and why\n"
            "   -h, --help                show this help and exit\n"
            "\n"
            "Exit status:\n"
            "   0  the model ran and its outputs were written\n"
            "   1  the job failed (out of memory, internal error, an output not written)\n"
            "   2  usage error, or a missing, malformed or unsupported model or input\n");
}

typedef struct run_opts {
    const char *model;
    const char *in_spec[MAX_INPUTS];
    size_t n_in;
    const char *out_dir;
    bool pb;
    long time_runs;
    long threads;
    bool fixed, qdq_float, explain;
} run_opts;

static int parse_count(const char *opt, const char *v, long min, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < min)
        return cli_usage_error(CMD, "%s takes a whole number >= %ld, not '%s'", opt, min, v);
    *out = x;
    return -1;
}

static int parse_args(int argc, char **argv, run_opts *o)
{
    enum { OPT_FORMAT = 256, OPT_TIME, OPT_THREADS, OPT_REQUANT, OPT_QDQ_FLOAT, OPT_EXPLAIN };
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"output-dir", required_argument, NULL, 'o'},
        {"output-format", required_argument, NULL, OPT_FORMAT},
        {"time", required_argument, NULL, OPT_TIME},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"requant", required_argument, NULL, OPT_REQUANT},
        {"qdq-float", no_argument, NULL, OPT_QDQ_FLOAT},
        {"explain", no_argument, NULL, OPT_EXPLAIN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_getopt_reset();
    int c, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "i:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (o->n_in == MAX_INPUTS)
                return cli_usage_error(CMD, "too many inputs (at most %d)", MAX_INPUTS);
            o->in_spec[o->n_in++] = optarg;
            break;
        case 'o': o->out_dir = optarg; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "npy") != 0 && strcmp(optarg, "pb") != 0)
                return cli_usage_error(CMD, "--output-format is npy or pb, not '%s'", optarg);
            o->pb = strcmp(optarg, "pb") == 0;
            break;
        case OPT_TIME: rc = parse_count("--time", optarg, 1, &o->time_runs); break;
        case OPT_THREADS: rc = parse_count("--threads", optarg, 1, &o->threads); break;
        case OPT_REQUANT:
            if (strcmp(optarg, "float") != 0 && strcmp(optarg, "fixed") != 0)
                return cli_usage_error(CMD, "--requant is float or fixed, not '%s'", optarg);
            o->fixed = strcmp(optarg, "fixed") == 0;
            break;
        case OPT_QDQ_FLOAT: o->qdq_float = true; break;
        case OPT_EXPLAIN: o->explain = true; break;
        case 'h': cmd_run_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(CMD);
        }
    }
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error(CMD, "no model given");
    if (argc - optind > 1)
        return cli_usage_error(CMD, "one model at a time ('%s' is extra)", argv[optind + 1]);
    o->model = argv[optind];
    if (!o->out_dir && !o->time_runs)
        return cli_usage_error(CMD, "no output folder given (-o OUTDIR)");
    return -1;
}

/* ---- inputs ---- */

/* Loads every -i into inputs[] (indexed like the session's inputs). */
static int load_inputs(const run_opts *o, const oq_session *s, oq_tensor **inputs,
                       const char **paths)
{
    size_t n = oq_session_n_inputs(s);
    for (size_t k = 0; k < o->n_in; k++) {
        const char *spec = o->in_spec[k], *eq = strchr(spec, '='), *file = spec;
        int idx = 0;
        if (eq) {
            char name[1024];
            snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
            file = eq + 1;
            if ((idx = oq_session_input_index(s, name)) < 0)
                return cli_usage_error(CMD, "%s: the model has no input named '%s'", o->model,
                                       name);
        } else if (n != 1) {
            return cli_usage_error(CMD, "the model has %zu inputs: name each one (-i NAME=FILE)",
                                   n);
        }
        if (inputs[idx])
            return cli_usage_error(CMD, "input '%s' is given twice", oq_session_input(s, idx)->name);
        oq_status st = oq_tensor_load_file(file, &inputs[idx]);
        if (st != OQ_OK) {
            cli_report(CMD, st);
            return cli_exit_for_input(st);
        }
        paths[idx] = file;
    }
    for (size_t i = 0; i < n; i++)
        if (!inputs[i])
            return cli_usage_error(CMD, "input '%s' was not given (-i %s=FILE)",
                                   oq_session_input(s, i)->name, oq_session_input(s, i)->name);
    return -1;
}

/* ---- outputs ---- */

static void sanitize(const char *name, char *out, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[i] = 0;
    /* "." and ".." would name folders. */
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0 || !out[0])
        snprintf(out, len, "_%s", name[0] ? out : "output");
}

static int write_outputs(const run_opts *o, const oq_session *s, const oq_tensor **outs,
                         const char **in_paths)
{
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
        cli_errorf(CMD, "%s: cannot create the output folder: %s", o->out_dir, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < oq_session_n_outputs(s); i++) {
        char name[512], path[4096];
        sanitize(oq_session_output(s, i)->name, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s.%s", o->out_dir, name, o->pb ? "pb" : "npy");
        bool clash = cli_same_file(path, o->model);
        for (size_t k = 0; k < oq_session_n_inputs(s) && !clash; k++)
            clash = cli_same_file(path, in_paths[k]);
        if (clash) {
            cli_errorf(CMD, "%s: refusing to overwrite an input file", path);
            return CLI_EXIT_USAGE;
        }
        oq_status st = o->pb ? oq_tensor_save_pb(outs[i], path) : oq_npy_save(outs[i], path);
        if (st != OQ_OK) {
            cli_report(CMD, st);
            return st == OQ_E_UNSUPPORTED ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        }
    }
    return CLI_EXIT_OK;
}

/* ---- timing ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static oq_status time_runs(oq_session *s, const oq_tensor *const *in, const oq_tensor **outs,
                           long n)
{
    double *t = malloc((size_t)n * sizeof *t);
    if (!t)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (long i = 0; i < n && st == OQ_OK; i++) {
        double t0 = now_ms();
        st = oq_session_run(s, in, outs);
        t[i] = now_ms() - t0;
    }
    if (st == OQ_OK) {
        qsort(t, (size_t)n, sizeof *t, cmp_double);
        double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
        printf("latency over %ld runs: median %.3f ms, min %.3f ms\n", n, median, t[0]);
        printf("kernels: %s (OpenBLAS core: %s, not used for products)\n", oq_kernel_names(),
               oq_blas_core());
    }
    free(t);
    return st;
}

/* ---- the command ---- */

static int run_model(const run_opts *o, oq_session *s)
{
    size_t n_in = oq_session_n_inputs(s), n_out = oq_session_n_outputs(s);
    oq_tensor **inputs = calloc(n_in + 1, sizeof *inputs);
    const char **paths = calloc(n_in + 1, sizeof *paths);
    const oq_tensor **outs = calloc(n_out + 1, sizeof *outs);
    int rc = -1;
    if (!inputs || !paths || !outs) {
        cli_errorf(CMD, "out of memory");
        rc = CLI_EXIT_FAIL;
    }
    if (rc < 0)
        rc = load_inputs(o, s, inputs, paths);
    if (rc < 0) {
        oq_status st = oq_session_run(s, (const oq_tensor *const *)inputs, outs);
        if (st == OQ_OK && o->time_runs)
            st = time_runs(s, (const oq_tensor *const *)inputs, outs, o->time_runs);
        if (st != OQ_OK) {
            cli_report(CMD, st);
            rc = cli_exit_for_input(st);
        }
    }
    if (rc < 0)
        rc = o->out_dir ? write_outputs(o, s, outs, paths) : CLI_EXIT_OK;
    for (size_t i = 0; inputs && i < n_in; i++)
        oq_tensor_free(inputs[i]);
    free(inputs);
    free(paths);
    free(outs);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    oq_model *m = NULL;
    oq_status st = oq_model_load(o.model, &m);
    oq_session *s = NULL;
    oq_session_options opts = {.threads = (int)o.threads,
                               .requant = o.fixed ? OQ_REQUANT_FIXED : OQ_REQUANT_FLOAT,
                               .qdq_as_float = o.qdq_float};
    if (st == OQ_OK)
        st = oq_session_new(m, &opts, &s);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        oq_model_free(m);
        return cli_exit_for_input(st);
    }
    if (o.explain) {
        const char *ex = oq_session_explain(s);
        printf("%s", *ex ? ex : "no QDQ groups\n");
    }
    rc = run_model(&o, s);
    oq_session_free(s);
    oq_model_free(m);
    return rc == CLI_EXIT_OK ? cli_finish_output(CMD) : rc;
}
