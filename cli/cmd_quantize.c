/* onnxq quantize: the whole job — load, prepare (cleanup, fold-bn, fuse),
 * calibrate (or read a table), quantize weights, rewrite to QDQ or QOperator
 * form, save, and summarise. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CMD "quantize"

void cmd_quantize_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq quantize [options] MODEL -o OUT (--data PATH | --table TABLE.json)\n"
            "\n"
            "Writes an int8 version of MODEL: cleans it up, folds BatchNormalization,\n"
            "finds Conv/Gemm/MatMul/Add + activation units, calibrates activation\n"
            "ranges on the data (as `onnxq calibrate`, or takes them from a table),\n"
            "quantizes weights (int8 symmetric, per output channel by default) and\n"
            "biases (int32, scale x_scale * w_scale), and rewrites the graph. Graph\n"
            "outputs stay float (a final Gemm writes float scores) unless\n"
            "--quantize-outputs. Add, Mul and the data-movement operators run on 8-bit\n"
            "data only where their inputs already are 8-bit (outputs of quantized\n"
            "nodes, graph inputs): a float operand (a constant, the output of a node\n"
            "left in float) keeps them in float. Prints the nodes quantized per op\n"
            "type, the nodes left in float and why, and the model size before and\n"
            "after. OUT is written to a temporary file and renamed; it may not be\n"
            "MODEL.\n"
            "\n"
            "Options:\n"
            "   -o, --output OUT            the int8 model to write\n"
            "   --data PATH                 calibration data (see `onnxq calibrate --help`)\n"
            "   --table TABLE.json          ranges from `onnxq calibrate` instead of data\n"
            "   --format qdq|qop            QuantizeLinear/DequantizeLinear pairs (default)\n"
            "                               or QLinearConv, QLinearMatMul, QGemm, ...\n"
            "   --per-channel, --per-tensor weight scales per output channel (default)\n"
            "                               or one per tensor\n"
            "   --activation-type uint8|int8  (default uint8, asymmetric)\n"
            "   --weight-type int8|uint8    (default int8, symmetric)\n"
            "   --symmetric-activations     activation ranges symmetric around zero\n"
            "   --reduce-range              7-bit weights\n"
            "   --method minmax|percentile|entropy|mse, --percentile P,\n"
            "   --moving-average C, --bins N      calibration method and parameters\n"
            "   --exclude-nodes A,B         nodes to keep in float (by name)\n"
            "   --exclude-op-types T,U      op types to keep in float\n"
            "   --include-op-types T,U      quantize only these op types\n"
            "   --opset N                   the output's default-domain opset (QDQ needs\n"
            "                               >= 10, per-channel weights >= 13)\n"
            "   --quantize-outputs          graph outputs 8-bit too (dequantized), for a\n"
            "                               consumer that takes the 8-bit values\n"
            "   --samples N, --batch-size N, --resize, --crop, --mean, --std, --scale,\n"
            "   --layout, --color           calibration data options\n"
            "   --threads N                 worker threads (default: all cores)\n"
            "   -h, --help                  show this help and exit\n"
            "\n"
            "Exit status:\n"
            "   0  the int8 model was written\n"
            "   1  the job failed: no node could be quantized, out of memory, OUT not\n"
            "      written\n"
            "   2  usage error, or a bad model, data or table\n");
}

typedef struct q_opts {
    const char *model, *out, *data, *table;
    oq_quant_options q;
    oq_calibrate_config cfg;
} q_opts;

static int set_type(const char *opt, const char *v, oq_dtype a, oq_dtype b, oq_dtype *out)
{
    if (!strcmp(v, oq_dtype_name(a)) || !strcmp(v, oq_dtype_name(b))) {
        *out = oq_dtype_from_name(v);
        return -1;
    }
    return cli_usage_error(CMD, "%s is %s or %s, not '%s'", opt, oq_dtype_name(a),
                           oq_dtype_name(b), v);
}

static int set_opset(const char *v, int64_t *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 10 || x > 1000)
        return cli_usage_error(CMD, "--opset takes a whole number >= 10, not '%s'", v);
    *out = x;
    return -1;
}

static int own_option(q_opts *o, int c, const char *v)
{
    enum { O_DATA = 256, O_TABLE, O_FORMAT, O_PC, O_PT, O_AT, O_WT, O_SYM, O_RR, O_XN, O_XO,
           O_IO, O_OPSET, O_QOUT };
    switch (c) {
    case O_DATA: o->data = v; return -1;
    case O_TABLE: o->table = v; return -1;
    case O_FORMAT:
        if (strcmp(v, "qdq") && strcmp(v, "qop"))
            return cli_usage_error(CMD, "--format is qdq or qop, not '%s'", v);
        o->q.format = strcmp(v, "qop") ? OQ_FORMAT_QDQ : OQ_FORMAT_QOP;
        return -1;
    case O_PC: o->q.per_channel = true; return -1;
    case O_PT: o->q.per_channel = false; return -1;
    case O_AT: return set_type("--activation-type", v, OQ_UINT8, OQ_INT8, &o->q.act_type);
    case O_WT: return set_type("--weight-type", v, OQ_INT8, OQ_UINT8, &o->q.weight_type);
    case O_SYM: o->q.symmetric_act = o->cfg.calib.symmetric = true; return -1;
    case O_RR: o->q.reduce_range = true; return -1;
    case O_XN: o->q.exclude_nodes = v; return -1;
    case O_XO: o->q.exclude_op_types = v; return -1;
    case O_IO: o->q.include_op_types = v; return -1;
    case O_OPSET: return set_opset(v, &o->q.opset);
    case O_QOUT: o->q.quantize_outputs = true; return -1;
    default: return cli_bad_option(CMD);
    }
}

static int parse_args(int argc, char **argv, q_opts *o)
{
    static const struct option own[] = {
        {"output", required_argument, NULL, 'o'}, {"data", required_argument, NULL, 256},
        {"table", required_argument, NULL, 257}, {"format", required_argument, NULL, 258},
        {"per-channel", no_argument, NULL, 259}, {"per-tensor", no_argument, NULL, 260},
        {"activation-type", required_argument, NULL, 261},
        {"weight-type", required_argument, NULL, 262},
        {"symmetric-activations", no_argument, NULL, 263}, {"reduce-range", no_argument, NULL, 264},
        {"exclude-nodes", required_argument, NULL, 265},
        {"exclude-op-types", required_argument, NULL, 266},
        {"include-op-types", required_argument, NULL, 267}, {"opset", required_argument, NULL, 268},
        {"quantize-outputs", no_argument, NULL, 269},
        {"help", no_argument, NULL, 'h'},
    };
    struct option lo[CLI_MAX_LONGOPTS];
    cli_join_longopts(lo, own, sizeof own / sizeof own[0], cli_calib_longopts, cli_n_calib_longopts);
    memset(o, 0, sizeof *o);
    oq_quant_options_default(&o->q);
    oq_calibrate_config_default(&o->cfg);
    cli_getopt_reset();
    int c, idx = 0, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "o:h", lo, &idx)) != -1) {
        if (c == 'o')
            o->out = optarg;
        else if (c == 'h') {
            cmd_quantize_usage(stdout);
            return CLI_EXIT_OK;
        } else if (c == CLI_OPT_CALIB)
            rc = cli_calib_option(CMD, &o->cfg, lo[idx].name, optarg);
        else
            rc = c == '?' ? cli_bad_option(CMD) : own_option(o, c, optarg);
    }
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error(CMD, "no model given");
    if (argc - optind > 1)
        return cli_usage_error(CMD, "one model at a time ('%s' is extra)", argv[optind + 1]);
    o->model = argv[optind];
    if (!o->out)
        return cli_usage_error(CMD, "no output file given (-o OUT)");
    if (!o->data == !o->table)
        return cli_usage_error(CMD, "give calibration data (--data PATH) or a table "
                                    "(--table FILE), one of the two");
    const char *inputs[3] = {o->model, o->data, o->table};
    for (size_t i = 0; i < 3; i++)
        if (cli_same_file(o->out, inputs[i]))
            return cli_usage_error(CMD, "%s: refusing to overwrite an input file", o->out);
    return -1;
}

/* ---- the job ---- */

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static oq_status get_table(q_opts *o, const oq_model *m, char **targets, size_t n,
                           oq_calib_table *t)
{
    if (o->table)
        return oq_calib_table_load(o->table, t);
    return oq_calibrate(m, targets, n, o->data, &o->cfg, t);
}

static int finish(const q_opts *o, oq_status st, const char *summary)
{
    if (st != OQ_OK) {
        cli_report(CMD, st);
        if (st == OQ_E_NOMEM || st == OQ_E_INTERNAL || st == OQ_E_IO)
            return CLI_EXIT_FAIL;
        return strstr(oq_errmsg(), "no node can be quantized") ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    }
    printf("%s", summary);
    long a = file_size(o->model), b = file_size(o->out);
    printf("size: %s %ld bytes -> %s %ld bytes (%.3fx)\n", o->model, a, o->out, b,
           a > 0 ? (double)b / (double)a : 0.0);
    return cli_finish_output(CMD);
}

int cmd_quantize(int argc, char **argv)
{
    q_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    oq_model *m = NULL;
    char **targets = NULL, *summary = NULL;
    size_t n = 0, n_rep = 0;
    oq_pass_report rep[8];
    oq_fusion_list fusions = {0};
    oq_calib_table table = {0};
    oq_status st = oq_model_load(o.model, &m);
    if (st == OQ_OK)
        st = oq_passes_run(m, NULL, rep, 8, &n_rep, &fusions);
    if (st == OQ_OK)
        st = oq_quant_targets(m, &fusions, &targets, &n);
    if (st == OQ_OK)
        st = get_table(&o, m, targets, n, &table);
    if (st == OQ_OK)
        st = oq_quantize(m, &fusions, &table, &o.q, &summary);
    if (st == OQ_OK)
        st = oq_model_save(m, o.out);
    if (st == OQ_OK) { /* the output is in place: an interrupt now must not make the
                        * finished job look failed */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }
    rc = finish(&o, st, summary);
    for (size_t i = 0; i < n; i++)
        free(targets[i]);
    free(targets);
    free(summary);
    oq_calib_table_clear(&table);
    oq_fusion_list_free(&fusions);
    oq_model_free(m);
    return rc;
}
