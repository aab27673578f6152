/* onnxq eval: accuracy of a model on labelled data, or an int8 model against
 * its fp32 original (accuracy drop, agreement, output SQNR, per-layer SQNR).
 * Also the evaluation job shared with onnxq gate. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CMD "eval"

void cmd_eval_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq eval [options] MODEL --data PATH --labels FILE\n"
            "       onnxq eval [options] FP32_MODEL INT8_MODEL --data PATH [--labels FILE]\n"
            "\n"
            "Runs MODEL over the data in onnxq's interpreter and prints its top-1 accuracy\n"
            "(and top-5 when there are 10 classes or more). With two models (an fp32\n"
            "model and its int8 version) both run on every batch and it also prints the\n"
            "accuracy drop (fp32 top-1 minus int8 top-1, in percentage points), the\n"
            "agreement rate (samples whose top class is the same in both) and the SQNR of\n"
            "the score output, 10 log10(sum fp32^2 / sum (fp32 - int8)^2) over all its\n"
            "elements. Agreement and SQNR need no labels. It also prints each model's\n"
            "file size and latency: the mean time of one run on a batch (--batch-size,\n"
            "--threads), over every batch but the first (which pays the first run's\n"
            "allocations) and a partial last one; with two models, the int8/fp32 ratios\n"
            "of both. Evaluation is streamed: memory does not grow with the number of\n"
            "samples.\n"
            "\n"
            "A sample counts for top-k when fewer than k classes score above its label\n"
            "(equal scores ranked by class index, as numpy's argmax does).\n");
    fprintf(out,
            "\n"
            "Options:\n"
            "   --data PATH             the data: a .npy (leading batch axis), a folder of\n"
            "                           .npy/.pb files, per-input sub-folders,\n"
            "                           test_data_set_* folders, or a folder of PNG/JPEG\n"
            "                           (taken in name order)\n"
            "   --labels FILE           class indices in data order: a .npy of integers\n"
            "                           (int64 or int32, shape [N]) or a text file with one\n"
            "                           integer per line; one label per sample\n"
            "   --output NAME           the class-score output, float [N, C] or\n"
            "                           [N, C, 1, 1] (default: the model's only output)\n"
            "   --per-layer             also compare every quantized tensor of the int8\n"
            "                           model with the fp32 tensor it replaces and list\n"
            "                           their SQNR, worst first: the layers to keep in\n"
            "                           float (quantize --exclude-nodes). Activations are\n"
            "                           the 8-bit values the int8 model computes,\n"
            "                           dequantized with their scale and zero point (in\n"
            "                           the execution mode chosen: integer operators, or\n"
            "                           as written with --qdq-float); weights and biases\n"
            "                           are compared with the fp32 model's after the\n"
            "                           preparation `onnxq quantize` applies (BatchNorm\n"
            "                           folded)\n"
            "   --max-layers N          list at most N layers (default: all)\n"
            "   --json FILE             also write the results as JSON\n"
            "   --markdown FILE         also write them as Markdown\n"
            "   --qdq-float             run the int8 model's QDQ groups as written\n"
            "                           (dequantize, float operator, quantize) instead of\n"
            "                           as integer operators\n"
            "   --requant float|fixed   int8 requantization (see `onnxq run --help`)\n"
            "   --samples N             use the first N samples\n"
            "   --batch-size N          samples per run (default: the model's fixed batch\n"
            "                           size, else 32)\n"
            CLI_HELP_IMAGE_OPTIONS
            "   -h, --help              show this help and exit\n"
            "\n"
            "A progress line goes to stderr when it is a terminal. Report files are\n"
            "written to a temporary name and renamed; they may not be an input.\n"
            "\n"
            "Exit status:\n"
            "   0  the evaluation ran and its results were printed (and written)\n"
            "   1  the job failed (out of memory, internal error, a report not written)\n"
            "   2  usage error or bad input: a missing or malformed model, data or labels\n"
            "      file, labels whose count differs from the data's, a label outside the\n"
            "      classes, a score output that is not [N, C] float, data of the wrong\n"
            "      shape or type\n");
}

/* ---- options shared with gate ---- */

enum { E_DATA, E_LABELS, E_OUTPUT, E_PER_LAYER, E_MAX_LAYERS, E_JSON, E_MARKDOWN, E_QDQ_FLOAT,
       E_REQUANT };

const struct option cli_eval_longopts[] = {
    {"data", required_argument, NULL, CLI_OPT_EVAL},
    {"labels", required_argument, NULL, CLI_OPT_EVAL},
    {"output", required_argument, NULL, CLI_OPT_EVAL},
    {"per-layer", no_argument, NULL, CLI_OPT_EVAL},
    {"max-layers", required_argument, NULL, CLI_OPT_EVAL},
    {"json", required_argument, NULL, CLI_OPT_EVAL},
    {"markdown", required_argument, NULL, CLI_OPT_EVAL},
    {"qdq-float", no_argument, NULL, CLI_OPT_EVAL},
    {"requant", required_argument, NULL, CLI_OPT_EVAL},
    /* the data options of calibrate (cli_calib_option applies them) */
    {"samples", required_argument, NULL, CLI_OPT_CALIB},
    {"batch-size", required_argument, NULL, CLI_OPT_CALIB},
    {"resize", required_argument, NULL, CLI_OPT_CALIB},
    {"crop", required_argument, NULL, CLI_OPT_CALIB},
    {"mean", required_argument, NULL, CLI_OPT_CALIB},
    {"std", required_argument, NULL, CLI_OPT_CALIB},
    {"scale", required_argument, NULL, CLI_OPT_CALIB},
    {"layout", required_argument, NULL, CLI_OPT_CALIB},
    {"color", required_argument, NULL, CLI_OPT_CALIB},
    {"threads", required_argument, NULL, CLI_OPT_CALIB},
};
const size_t cli_n_eval_longopts = sizeof cli_eval_longopts / sizeof cli_eval_longopts[0];

void cli_eval_job_init(cli_eval_job *j, const char *cmd)
{
    memset(j, 0, sizeof *j);
    j->cmd = cmd;
    oq_calibrate_config_default(&j->cfg);
}

int cli_eval_option(cli_eval_job *j, const char *name, const char *v)
{
    static const char *const names[] = {"data", "labels", "output", "per-layer", "max-layers",
                                        "json", "markdown", "qdq-float", "requant"};
    int k = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(names[i], name))
            k = i;
    char *end;
    switch (k) {
    case E_DATA: j->data = v; break;
    case E_LABELS: j->labels = v; break;
    case E_OUTPUT: j->output = v; break;
    case E_PER_LAYER: j->per_layer = true; break;
    case E_MAX_LAYERS:
        errno = 0;
        j->max_layers = strtol(v, &end, 10);
        if (!*v || *end || errno || j->max_layers < 1)
            return cli_usage_error(j->cmd, "--max-layers takes a whole number >= 1, not '%s'", v);
        break;
    case E_JSON: j->json = v; break;
    case E_MARKDOWN: j->markdown = v; break;
    case E_QDQ_FLOAT: j->qdq_float = true; break;
    case E_REQUANT:
        if (strcmp(v, "float") != 0 && strcmp(v, "fixed") != 0)
            return cli_usage_error(j->cmd, "--requant is float or fixed, not '%s'", v);
        j->fixed = strcmp(v, "fixed") == 0;
        break;
    default:
        if (!strcmp(name, "batch-size"))
            j->batch_given = true;
        return cli_calib_option(j->cmd, &j->cfg, name, v);
    }
    return -1;
}

/* ---- the job ---- */

/* Report files may not be inputs, nor each other. */
static int check_report_paths(const cli_eval_job *j)
{
    const char *outs[3] = {j->json, j->markdown, j->junit};
    const char *opt[3] = {"--json", "--markdown", "--junit"};
    const char *ins[4] = {j->fp32, j->int8, j->labels, j->data};
    for (int i = 0; i < 3; i++) {
        if (!outs[i])
            continue;
        for (int k = 0; k < 4; k++)
            if (cli_same_file(outs[i], ins[k]) || (ins[k] && !strcmp(outs[i], ins[k])))
                return cli_usage_error(j->cmd, "%s %s: refusing to overwrite an input file",
                                       opt[i], outs[i]);
        for (int k = 0; k < i; k++)
            if (outs[k] && (!strcmp(outs[i], outs[k]) || cli_same_file(outs[i], outs[k])))
                return cli_usage_error(j->cmd, "%s and %s name the same file '%s'", opt[k],
                                       opt[i], outs[i]);
    }
    return -1;
}

/* Without --batch-size: the model's fixed batch size, else 32 (when the
 * batch axis of every input is symbolic). */
static void default_batch(cli_eval_job *j, const oq_model *m)
{
    if (j->batch_given)
        return;
    const oq_graph *g = m->graph;
    bool any = false;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const oq_type *t = g->inputs[i].type;
        bool init = false;
        for (size_t k = 0; k < g->n_inits && !init; k++)
            init = g->inits[k]->name && !strcmp(g->inits[k]->name, g->inputs[i].name);
        if (init)
            continue;
        if (!t || t->kind != OQ_TYPE_TENSOR || !t->has_shape || t->rank < 1 ||
            t->dims[0].kind == OQ_DIM_VALUE)
            return;
        any = true;
    }
    if (any)
        j->cfg.data.batch_size = 32;
}

static int write_report(const cli_eval_job *j, const char *path,
                        oq_status (*fn)(const oq_eval_report *, char **),
                        const oq_eval_report *rep)
{
    char *s = NULL;
    oq_status st = fn(rep, &s);
    if (st == OQ_OK)
        st = oq_write_file_atomic(path, s, strlen(s), j->fp32);
    free(s);
    if (st != OQ_OK) {
        cli_report(j->cmd, st);
        return CLI_EXIT_FAIL;
    }
    return -1;
}

static int load_model(const cli_eval_job *j, const char *path, oq_model **m)
{
    oq_status st = oq_model_load(path, m);
    if (st != OQ_OK) {
        cli_report(j->cmd, st);
        return cli_exit_for_input(st);
    }
    return -1;
}

/* The fp32 model as `onnxq quantize` prepares it: the reference for
 * weights (BatchNorm folding changes them, sometimes under the same name). */
static int load_weights_ref(const cli_eval_job *j, oq_model **m)
{
    int rc = load_model(j, j->fp32, m);
    if (rc >= 0)
        return rc;
    oq_pass_report rep[8];
    size_t n_rep;
    oq_status st = oq_passes_run(*m, NULL, rep, 8, &n_rep, NULL);
    if (st != OQ_OK) {
        oq_error_prefix(st, "%s: preparing the fp32 weights for --per-layer: ", j->fp32);
        cli_report(j->cmd, st);
        return cli_exit_for_input(st);
    }
    return -1;
}

int cli_eval_run(cli_eval_job *j)
{
    if (!j->data)
        return cli_usage_error(j->cmd, "no data given (--data PATH)");
    if (!j->labels && !j->int8)
        return cli_usage_error(j->cmd, "one model needs labels (--labels FILE)");
    if (j->per_layer && !j->int8)
        return cli_usage_error(j->cmd, "--per-layer compares two models (fp32 and int8)");
    for (size_t i = 0; j->gating && i < j->gate.n; i++)
        if (j->gate.bounds[i].kind == OQ_BOUND_MAX_DROP && !j->labels)
            return cli_usage_error(j->cmd, "--max-drop needs labels (--labels FILE)");
    int rc = check_report_paths(j);
    if (rc >= 0)
        return rc;

    oq_labels labels = {0};
    oq_model *m32 = NULL, *m8 = NULL, *wref = NULL;
    oq_eval_result res = {0};
    cli_progress p = {0};
    if (j->labels) {
        oq_status st = oq_labels_load(j->labels, &labels);
        if (st != OQ_OK) {
            cli_report(j->cmd, st);
            return cli_exit_for_input(st);
        }
    }
    rc = load_model(j, j->fp32, &m32);
    if (rc < 0 && j->int8)
        rc = load_model(j, j->int8, &m8);
    if (rc < 0 && j->per_layer)
        rc = load_weights_ref(j, &wref);
    if (rc < 0) {
        default_batch(j, m32);
        oq_eval_options o;
        oq_eval_options_default(&o);
        o.data = j->cfg.data;
        o.threads = j->cfg.threads;
        o.requant = j->fixed ? OQ_REQUANT_FIXED : OQ_REQUANT_FLOAT;
        o.qdq_as_float = j->qdq_float;
        o.output = j->output;
        o.per_layer = j->per_layer;
        o.weights_ref = wref;
        o.progress = cli_progress_show;
        o.progress_ctx = &p;
        cli_progress_start(&p, "evaluating");
        oq_status st = oq_eval(m32, m8, j->data, j->labels ? &labels : NULL, &o, &res);
        cli_progress_end(&p);
        if (st == OQ_OK && j->gating)
            st = oq_gate_check(&res, &j->gate);
        if (st != OQ_OK) {
            cli_report(j->cmd, st);
            rc = cli_exit_for_input(st);
        }
    }
    if (rc < 0) {
        struct stat sb;
        oq_eval_report rep = {.result = &res,
                              .gate = j->gating ? &j->gate : NULL,
                              .fp32 = j->fp32,
                              .int8 = j->int8,
                              .data = j->data,
                              .labels = j->labels,
                              .seconds = cli_seconds_since(&p.start),
                              .max_layers = (size_t)j->max_layers};
        for (int k = 0; k < 2; k++) { /* file sizes (0: unknown) */
            const char *path = k ? j->int8 : j->fp32;
            rep.bytes[k] = path && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        }
        char *text = NULL;
        oq_status st = oq_eval_report_text(&rep, &text);
        if (st != OQ_OK) {
            cli_report(j->cmd, st);
            rc = CLI_EXIT_FAIL;
        } else {
            fputs(text, stdout);
            free(text);
        }
        if (rc < 0 && j->json)
            rc = write_report(j, j->json, oq_eval_report_json, &rep);
        if (rc < 0 && j->markdown)
            rc = write_report(j, j->markdown, oq_eval_report_markdown, &rep);
        if (rc < 0 && j->junit)
            rc = write_report(j, j->junit, oq_eval_report_junit, &rep);
        if (rc < 0)
            rc = cli_finish_output(j->cmd);
        if (rc == CLI_EXIT_OK && j->gating && !j->gate.passed)
            rc = CLI_EXIT_FAIL;
    }
    oq_eval_result_clear(&res);
    oq_labels_clear(&labels);
    oq_model_free(m32);
    oq_model_free(m8);
    oq_model_free(wref);
    return rc;
}

/* ---- onnxq eval ---- */

int cmd_eval(int argc, char **argv)
{
    static const struct option help[] = {{"help", no_argument, NULL, 'h'}};
    struct option lo[CLI_MAX_LONGOPTS];
    cli_join_longopts(lo, cli_eval_longopts, cli_n_eval_longopts, help, 1);
    cli_eval_job j;
    cli_eval_job_init(&j, CMD);
    cli_getopt_reset();
    int c, idx = 0, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
        if (c == 'h') {
            cmd_eval_usage(stdout);
            return CLI_EXIT_OK;
        } else if (c == CLI_OPT_EVAL || c == CLI_OPT_CALIB) {
            rc = cli_eval_option(&j, lo[idx].name, optarg);
        } else {
            return cli_bad_option(CMD);
        }
    }
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error(CMD, "no model given");
    if (argc - optind > 2)
        return cli_usage_error(CMD, "at most two models (fp32 and int8); '%s' is extra",
                               argv[optind + 2]);
    j.fp32 = argv[optind];
    j.int8 = argc - optind == 2 ? argv[optind + 1] : NULL;
    return cli_eval_run(&j);
}
