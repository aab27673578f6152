/* onnxq calibrate: runs a model over calibration data and writes the
 * calibration table; or merges tables from separate data shards. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "onnxq/calibrate.h"

#define CMD "calibrate"
#define MAX_MERGE 64

void cmd_calibrate_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq calibrate [options] MODEL --data PATH -o TABLE.json\n"
            "       onnxq calibrate --merge A.json B.json [...] -o TABLE.json\n"
            "\n"
            "Prepares MODEL as `onnxq quantize` does (cleanup, fold-bn, fuse), inserts an\n"
            "Observe node on every tensor the quantizer needs, runs the model over the\n"
            "calibration data in onnxq's interpreter, and writes per tensor the observed\n"
            "min/max, the chosen range and the method. Statistics are streamed: memory\n"
            "does not grow with the number of samples. --merge combines tables made on\n"
            "separate shards of the data (exact for minmax, and for the other methods\n"
            "when the tables were written with --keep-histograms).\n"
            "\n"
            "Options:\n"
            "   --data PATH             calibration data: a .npy (leading batch axis), a\n"
            "                           folder of .npy/.pb files, per-input sub-folders,\n"
            "                           test_data_set_* folders, or a folder of PNG/JPEG\n"
            "   -o, --output FILE       the table to write (JSON)\n"
            "   --method M              minmax (default), percentile, entropy or mse\n"
            "   --percentile P          percentile kept by 'percentile' (default 99.999)\n"
            "   --moving-average C      minmax: average batch min/max with constant C\n"
            "   --symmetric             ranges symmetric around zero (int8 activations)\n"
            "   --bins N                histogram bins (default 2048)\n"
            "   --keep-histograms       store histograms in the table (for --merge)\n"
            "   --save-instrumented F   also write the model with its Observe nodes\n"
            "   --merge                 merge the tables given as arguments\n"
            "   --samples N             use at most N samples\n"
            "   --batch-size N          samples per run (default: the model's, else 1)\n"
            CLI_HELP_IMAGE_OPTIONS
            "   -h, --help              show this help and exit\n"
            "\n"
            "A progress line (samples, samples/s, ETA) goes to stderr when it is a terminal.\n"
            "\n"
            "Exit status:\n"
            "   0  the table was written\n"
            "   1  the job failed (out of memory, internal error, TABLE not written)\n"
            "   2  usage error, or bad model, data or table (wrong shape or type, NaN\n"
            "      or Inf in the data, an empty folder, an unreadable image, ...)\n");
}

typedef struct cal_opts {
    const char *model, *data, *out, *instrumented;
    const char *merge[MAX_MERGE];
    size_t n_merge;
    bool merging;
    oq_calibrate_config cfg;
} cal_opts;

/* Options shared by calibrate and quantize, by long name. */
int cli_calib_option(const char *cmd, oq_calibrate_config *cfg, const char *name, const char *v)
{
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    bool num = v && *v && end && !*end;
    if (!strcmp(name, "method")) {
        if (!oq_calib_method_parse(v, &cfg->calib.method))
            return cli_usage_error(cmd, "--method is minmax, percentile, entropy or mse, not '%s'", v);
    } else if (!strcmp(name, "percentile")) {
        if (!num || !(x > 0 && x <= 100))
            return cli_usage_error(cmd, "--percentile takes a number in (0, 100], not '%s'", v);
        cfg->calib.percentile = x;
    } else if (!strcmp(name, "moving-average")) {
        if (!num || !(x > 0 && x <= 1))
            return cli_usage_error(cmd, "--moving-average takes a number in (0, 1], not '%s'", v);
        cfg->calib.moving_average = x;
    } else if (!strcmp(name, "bins")) {
        if (!num || x < 16 || x > 1 << 20 || x != (int)x)
            return cli_usage_error(cmd, "--bins takes a whole number from 16 to 1048576, not '%s'", v);
        cfg->calib.bins = (int)x;
    } else if (!strcmp(name, "threads")) {
        if (!num || x < 1 || x > 1024 || x != (int)x)
            return cli_usage_error(cmd, "--threads takes a whole number >= 1, not '%s'", v);
        cfg->threads = (int)x;
    } else if (oq_data_options_set(&cfg->data, name, v) != OQ_OK) {
        return cli_usage_error(cmd, "%s", oq_errmsg());
    }
    return -1;
}

const struct option cli_calib_longopts[] = {
    {"method", required_argument, NULL, CLI_OPT_CALIB}, {"percentile", required_argument, NULL, CLI_OPT_CALIB},
    {"moving-average", required_argument, NULL, CLI_OPT_CALIB}, {"bins", required_argument, NULL, CLI_OPT_CALIB},
    {"threads", required_argument, NULL, CLI_OPT_CALIB}, {"samples", required_argument, NULL, CLI_OPT_CALIB},
    {"batch-size", required_argument, NULL, CLI_OPT_CALIB}, {"resize", required_argument, NULL, CLI_OPT_CALIB},
    {"crop", required_argument, NULL, CLI_OPT_CALIB}, {"mean", required_argument, NULL, CLI_OPT_CALIB},
    {"std", required_argument, NULL, CLI_OPT_CALIB}, {"scale", required_argument, NULL, CLI_OPT_CALIB},
    {"layout", required_argument, NULL, CLI_OPT_CALIB}, {"color", required_argument, NULL, CLI_OPT_CALIB},
};
const size_t cli_n_calib_longopts = sizeof cli_calib_longopts / sizeof cli_calib_longopts[0];

static int parse_args(int argc, char **argv, cal_opts *o)
{
    enum { O_DATA = 256, O_SYM, O_KEEP, O_INST, O_MERGE };
    static const struct option own[] = {
        {"data", required_argument, NULL, O_DATA}, {"output", required_argument, NULL, 'o'},
        {"symmetric", no_argument, NULL, O_SYM}, {"keep-histograms", no_argument, NULL, O_KEEP},
        {"save-instrumented", required_argument, NULL, O_INST}, {"merge", no_argument, NULL, O_MERGE},
        {"help", no_argument, NULL, 'h'},
    };
    struct option lo[CLI_MAX_LONGOPTS];
    cli_join_longopts(lo, own, sizeof own / sizeof own[0], cli_calib_longopts, cli_n_calib_longopts);
    memset(o, 0, sizeof *o);
    oq_calibrate_config_default(&o->cfg);
    cli_getopt_reset();
    int c, idx = 0, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "o:h", lo, &idx)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_SYM: o->cfg.calib.symmetric = true; break;
        case O_KEEP: o->cfg.keep_histograms = true; break;
        case O_INST: o->instrumented = optarg; break;
        case O_MERGE: o->merging = true; break;
        case CLI_OPT_CALIB: rc = cli_calib_option(CMD, &o->cfg, lo[idx].name, optarg); break;
        case 'h': cmd_calibrate_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(CMD);
        }
    }
    return rc;
}

/* ---- the two jobs ---- */

static int merge_tables(const cal_opts *o)
{
    oq_calib_table a, b;
    oq_status st = oq_calib_table_load(o->merge[0], &a);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        return cli_exit_for_input(st);
    }
    for (size_t i = 1; i < o->n_merge && st == OQ_OK; i++) {
        if ((st = oq_calib_table_load(o->merge[i], &b)) != OQ_OK)
            break;
        st = oq_calib_table_merge(&a, &b);
        if (st != OQ_OK)
            oq_error_prefix(st, "%s: ", o->merge[i]);
        oq_calib_table_clear(&b);
    }
    bool keep = true; /* histograms survive a merge when every input had them */
    if (st == OQ_OK && (st = oq_calib_table_save(&a, o->out, keep)) == OQ_OK)
        printf("merged %zu tables: %zu tensors, %llu samples -> %s\n", o->n_merge, a.n,
               (unsigned long long)a.samples, o->out);
    oq_calib_table_clear(&a);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        return st == OQ_E_NOMEM || st == OQ_E_IO ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    }
    return cli_finish_output(CMD);
}

/* Loads and prepares the model (the passes of `onnxq quantize`) and lists
 * the tensors to calibrate. */
static oq_status prepare(const char *path, oq_model **m, char ***targets, size_t *n)
{
    oq_status st = oq_model_load(path, m);
    oq_pass_report rep[8];
    size_t n_rep;
    oq_fusion_list fusions = {0};
    if (st == OQ_OK)
        st = oq_passes_run(*m, NULL, rep, 8, &n_rep, &fusions);
    if (st == OQ_OK)
        st = oq_quant_targets(*m, &fusions, targets, n);
    oq_fusion_list_free(&fusions);
    return st;
}

static oq_status save_instrumented(const oq_model *m, char **targets, size_t n, const char *path)
{
    oq_model *inst;
    oq_status st = oq_calibrate_instrument(m, targets, n, &inst);
    if (st == OQ_OK) {
        free(inst->path);
        inst->path = m->path ? strdup(m->path) : NULL; /* never overwrite the input */
        st = oq_model_save(inst, path);
        oq_model_free(inst);
    }
    return st;
}

static int calibrate(cal_opts *o)
{
    oq_model *m = NULL;
    char **targets = NULL;
    size_t n = 0;
    oq_calib_table table = {0};
    cli_progress p = {0};
    cli_progress_start(&p, "calibrating");
    o->cfg.progress = cli_progress_show;
    o->cfg.progress_ctx = &p;
    oq_status st = prepare(o->model, &m, &targets, &n);
    if (st == OQ_OK && o->instrumented)
        st = save_instrumented(m, targets, n, o->instrumented);
    if (st == OQ_OK)
        st = oq_calibrate(m, targets, n, o->data, &o->cfg, &table);
    cli_progress_end(&p);
    if (st == OQ_OK && !(table.model = strdup(o->model)))
        st = oq_error(OQ_E_NOMEM, "out of memory");
    if (st == OQ_OK && (st = oq_calib_table_save(&table, o->out, o->cfg.keep_histograms)) == OQ_OK)
        printf("calibrated %zu tensors with %s over %llu samples in %.1f s -> %s\n", table.n,
               oq_calib_method_name(o->cfg.calib.method), (unsigned long long)table.samples,
               cli_seconds_since(&p.start), o->out);
    for (size_t i = 0; i < n; i++)
        free(targets[i]);
    free(targets);
    oq_calib_table_clear(&table);
    oq_model_free(m);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        return st == OQ_E_NOMEM || st == OQ_E_INTERNAL ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    }
    return cli_finish_output(CMD);
}

int cmd_calibrate(int argc, char **argv)
{
    cal_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (!o.out)
        return cli_usage_error(CMD, "no output table given (-o TABLE.json)");
    if (o.merging) {
        for (int i = optind; i < argc && o.n_merge < MAX_MERGE; i++)
            o.merge[o.n_merge++] = argv[i];
        if (o.n_merge < 2)
            return cli_usage_error(CMD, "--merge takes two or more tables");
        return merge_tables(&o);
    }
    if (optind >= argc)
        return cli_usage_error(CMD, "no model given");
    if (argc - optind > 1)
        return cli_usage_error(CMD, "one model at a time ('%s' is extra)", argv[optind + 1]);
    o.model = argv[optind];
    if (!o.data)
        return cli_usage_error(CMD, "no calibration data given (--data PATH)");
    return calibrate(&o);
}
