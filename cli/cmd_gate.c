/* onnxq gate: an int8 model against its fp32 original under accuracy bounds,
 * for CI: exit 0 when every bound holds, 1 when one fails; JUnit XML, JSON
 * and Markdown reports. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "gate"

void cmd_gate_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq gate --fp32 MODEL --int8 MODEL --data PATH [--labels FILE]\n"
            "                  [--max-drop PP] [--min-agreement PCT] [--min-sqnr DB]\n"
            "                  [--junit FILE] [--json FILE] [--markdown FILE] [options]\n"
            "\n"
            "Evaluates the int8 model against the fp32 model on the data (as `onnxq eval\n"
            "FP32 INT8` does), checks every bound given, prints the results and a table of\n"
            "the bounds, and exits 0 when every bound holds, 1 when any fails. At least\n"
            "one bound is needed.\n"
            "\n"
            "Bounds:\n"
            "   --max-drop PP           top-1 accuracy drop (fp32 minus int8) at most PP\n"
            "                           percentage points (0.5: 91.92%% -> 91.42%% passes);\n"
            "                           needs --labels\n"
            "   --min-agreement PCT     at least PCT percent of samples predict the same\n"
            "                           class in both models\n"
            "   --min-sqnr DB           SQNR of the score output at least DB decibels\n"
            "\n"
            "Reports (each written to a temporary name and renamed):\n"
            "   --junit FILE            JUnit XML: one test case per bound, a <failure> in\n"
            "                           each that does not hold (for CI test reports)\n"
            "   --json FILE             every number, the bounds and the verdict as JSON\n"
            "   --markdown FILE         a summary with the bounds table (for a CI job\n"
            "                           summary page, e.g. $GITHUB_STEP_SUMMARY)\n"
            "\n"
            "Options:\n"
            "   --fp32 MODEL            the reference model\n"
            "   --int8 MODEL            the quantized model\n"
            "   --data PATH             the data (see `onnxq eval --help`)\n"
            "   --labels FILE           class indices: .npy (int64/int32) or text, one per\n"
            "                           line\n"
            "   --output NAME           the class-score output (default: the only output)\n"
            "   --per-layer             also list per-layer SQNR (see `onnxq eval --help`)\n"
            "                           in the printed results and the reports\n"
            "   --max-layers N          list at most N layers (default: all)\n"
            "   --qdq-float             run the int8 model's QDQ groups as written\n"
            "   --requant float|fixed   int8 requantization (see `onnxq run --help`)\n"
            "   --samples N, --batch-size N, --resize, --crop, --mean, --std, --scale,\n"
            "   --layout, --color       data options (see `onnxq eval --help`)\n"
            "   --threads N             worker threads (default: all cores)\n"
            "   -h, --help              show this help and exit\n"
            "\n"
            "Exit status:\n"
            "   0  every bound holds (reports written)\n"
            "   1  a bound does not hold (reports written), or the job failed (out of\n"
            "      memory, internal error, a report not written)\n"
            "   2  usage error or bad input (as for `onnxq eval`)\n");
}

static int set_bound(cli_eval_job *j, oq_bound_kind k, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    const char *opt = oq_bound_option(k);
    bool ok = *v && !*end && !errno && isfinite(x);
    if (ok && k == OQ_BOUND_MAX_DROP)
        ok = x >= 0 && x <= 100;
    if (ok && k == OQ_BOUND_MIN_AGREEMENT)
        ok = x >= 0 && x <= 100;
    if (!ok)
        return cli_usage_error(CMD, "--%s takes %s, not '%s'", opt,
                               k == OQ_BOUND_MIN_SQNR ? "a number of decibels"
                                                      : "a number from 0 to 100",
                               v);
    for (size_t i = 0; i < j->gate.n; i++)
        if (j->gate.bounds[i].kind == k)
            return cli_usage_error(CMD, "--%s is given twice", opt);
    j->gate.bounds[j->gate.n++] = (oq_bound){.kind = k, .limit = x};
    return -1;
}

int cmd_gate(int argc, char **argv)
{
    enum { G_FP32 = 256, G_INT8, G_DROP, G_AGREE, G_SQNR, G_JUNIT };
    static const struct option own[] = {
        {"fp32", required_argument, NULL, G_FP32},
        {"int8", required_argument, NULL, G_INT8},
        {"max-drop", required_argument, NULL, G_DROP},
        {"min-agreement", required_argument, NULL, G_AGREE},
        {"min-sqnr", required_argument, NULL, G_SQNR},
        {"junit", required_argument, NULL, G_JUNIT},
        {"help", no_argument, NULL, 'h'},
    };
    struct option lo[CLI_MAX_LONGOPTS];
    cli_join_longopts(lo, own, sizeof own / sizeof own[0], cli_eval_longopts, cli_n_eval_longopts);
    cli_eval_job j;
    cli_eval_job_init(&j, CMD);
    j.gating = true;
    cli_getopt_reset();
    int c, idx = 0, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
        switch (c) {
        case 'h': cmd_gate_usage(stdout); return CLI_EXIT_OK;
        case G_FP32: j.fp32 = optarg; break;
        case G_INT8: j.int8 = optarg; break;
        case G_DROP: rc = set_bound(&j, OQ_BOUND_MAX_DROP, optarg); break;
        case G_AGREE: rc = set_bound(&j, OQ_BOUND_MIN_AGREEMENT, optarg); break;
        case G_SQNR: rc = set_bound(&j, OQ_BOUND_MIN_SQNR, optarg); break;
        case G_JUNIT: j.junit = optarg; break;
        case CLI_OPT_EVAL:
        case CLI_OPT_CALIB: rc = cli_eval_option(&j, lo[idx].name, optarg); break;
        default: return cli_bad_option(CMD);
        }
    }
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s' (models are given with --fp32 "
                                    "and --int8)", argv[optind]);
    if (!j.fp32 || !j.int8)
        return cli_usage_error(CMD, "both models are needed (--fp32 MODEL --int8 MODEL)");
    if (j.gate.n == 0)
        return cli_usage_error(CMD, "no bound given (--max-drop, --min-agreement or --min-sqnr)");
    return cli_eval_run(&j);
}
