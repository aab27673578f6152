/* onnxq optimize: runs graph passes (cleanup, fold-bn, fuse) and saves the
 * rewritten model. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "optimize"

void cmd_optimize_usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq optimize [options] IN -o OUT\n"
            "\n"
            "Rewrites the model IN for quantization and saves it as OUT (written to a\n"
            "temporary file and renamed; OUT may not be IN). The passes:\n"
            "   cleanup   remove Identity and inference Dropout; fold nodes whose inputs are\n"
            "             constant (and Shape-derived values when every input dimension is\n"
            "             fixed) by running them; remove dead nodes and unused or duplicate\n"
            "             initializers; in an IR < 4 model, take the initializers out of\n"
            "             the graph inputs (runtimes treat them as constants) and raise the\n"
            "             IR version to 4\n"
            "   fold-bn   fold BatchNormalization into a preceding Conv, ConvTranspose, Gemm\n"
            "             or MatMul with constant weights\n"
            "   fuse      find Conv/ConvTranspose/Gemm/MatMul/Add + Relu/Clip/LeakyRelu/\n"
            "             HardSwish units (quantized as one; the fp32 graph is unchanged)\n"
            "\n"
            "Options:\n"
            "   -o, --output OUT      the file to write (required)\n"
            "   --passes a,b,c        the passes to run, in order (default %s)\n"
            "   --report              print what each pass changed, and the fused units\n"
            "   -h, --help            show this help and exit\n"
            "\n"
            "Exit status:\n"
            "   0  the optimized model was written\n"
            "   1  the job failed (out of memory, internal error, OUT not written)\n"
            "   2  usage error, or a missing, malformed or invalid model\n",
            OQ_DEFAULT_PASSES);
}

typedef struct opt_opts {
    const char *in, *out, *passes;
    bool report;
} opt_opts;

static int parse_args(int argc, char **argv, opt_opts *o)
{
    enum { OPT_PASSES = 256, OPT_REPORT };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"passes", required_argument, NULL, OPT_PASSES},
        {"report", no_argument, NULL, OPT_REPORT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case OPT_PASSES: o->passes = optarg; break;
        case OPT_REPORT: o->report = true; break;
        case 'h': cmd_optimize_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(CMD);
        }
    }
    if (optind >= argc)
        return cli_usage_error(CMD, "no model given");
    if (argc - optind > 1)
        return cli_usage_error(CMD, "one model at a time ('%s' is extra)", argv[optind + 1]);
    o->in = argv[optind];
    if (!o->out)
        return cli_usage_error(CMD, "no output file given (-o OUT)");
    return -1;
}

static void print_report(const oq_pass_report *r, size_t n, const oq_fusion_list *f)
{
    for (size_t i = 0; i < n; i++) {
        printf("%s:", r[i].pass);
        if (strcmp(r[i].pass, "fuse") == 0)
            printf(" %zu units", r[i].fused);
        else
            printf(" %zu nodes removed (%zu folded), %zu added; initializers: %zu removed, "
                   "%zu added", r[i].nodes_removed, r[i].folded, r[i].nodes_added,
                   r[i].inits_removed, r[i].inits_added);
        if (r[i].inputs_untied)
            printf("; %zu initializers taken out of the graph inputs (IR version < 4, now 4)",
                   r[i].inputs_untied);
        printf("\n");
    }
    for (size_t i = 0; f && i < f->n; i++)
        printf("  unit: %s '%s' + %s '%s' -> %s\n", f->items[i].anchor_op,
               f->items[i].anchor_node, oq_act_name(f->items[i].act), f->items[i].act_node,
               f->items[i].act_output);
}

int cmd_optimize(int argc, char **argv)
{
    opt_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    oq_model *m = NULL;
    oq_status st = oq_model_load(o.in, &m);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        return cli_exit_for_input(st);
    }
    size_t before = m->graph->n_nodes, n = 0;
    oq_pass_report reports[16];
    oq_fusion_list fusions = {0};
    st = oq_passes_run(m, o.passes, reports, 16, &n, &fusions);
    if (st != OQ_OK) {
        cli_report(CMD, st);
        rc = st == OQ_E_NOMEM || st == OQ_E_INTERNAL ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    } else if ((st = oq_model_save(m, o.out)) != OQ_OK) {
        cli_report(CMD, st);
        rc = st == OQ_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    } else {
        if (o.report)
            print_report(reports, n, &fusions);
        printf("%s: %zu nodes -> %s: %zu nodes\n", o.in, before, o.out, m->graph->n_nodes);
        rc = cli_finish_output(CMD);
    }
    oq_fusion_list_free(&fusions);
    oq_model_free(m);
    return rc;
}
