/* onnxq: the command dispatcher, shaped like git: `onnxq <command> [options]`. */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cli.h"

/* The one table of commands: `onnxq --help` lists it, dispatch searches it. */
const cli_command cli_commands[] = {
    {"calibrate", "Run a model over calibration data and write ranges per tensor",
     cmd_calibrate, cmd_calibrate_usage},
    {"eval", "Measure accuracy; compare an int8 model with its fp32 original", cmd_eval,
     cmd_eval_usage},
    {"gate", "Check an int8 model against accuracy bounds (for CI)", cmd_gate, cmd_gate_usage},
    {"inspect", "Print a model's inputs, outputs, operators and parameters", cmd_inspect,
     cmd_inspect_usage},
    {"optimize", "Clean up a model, fold BatchNorm, find activation units", cmd_optimize,
     cmd_optimize_usage},
    {"quantize", "Write an int8 model (QDQ or QOperator form) from calibration data",
     cmd_quantize, cmd_quantize_usage},
    {"run", "Run a model in onnxq's interpreter on .npy/.pb inputs", cmd_run, cmd_run_usage},
};
const size_t cli_n_commands = sizeof cli_commands / sizeof cli_commands[0];

const cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < cli_n_commands; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: onnxq <command> [options]\n"
            "       onnxq help [<command>]\n"
            "       onnxq --version\n"
            "\n"
            "Post-training int8 quantization of ONNX models.\n"
            "\n"
            "Commands:\n");
    size_t width = 0;
    for (size_t i = 0; i < cli_n_commands; i++)
        if (strlen(cli_commands[i].name) > width)
            width = strlen(cli_commands[i].name);
    for (size_t i = 0; i < cli_n_commands; i++)
        fprintf(out, "   %-*s  %s\n", (int)width, cli_commands[i].name,
                cli_commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "   -h, --help     show this help and exit\n"
            "   --version      print the version and exit\n"
            "\n"
            "'onnxq help <command>' or 'onnxq <command> --help' describes a command.\n"
            "\n"
            "Exit status: 0 success, 1 the job failed, 2 usage error or bad input.\n");
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "onnxq: '%s' is not an onnxq command. See 'onnxq --help'.\n", name);
    return CLI_EXIT_USAGE;
}

/* `onnxq help [COMMAND]` */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
    } else if (argc > 2) {
        fprintf(stderr, "onnxq help: too many arguments. See 'onnxq --help'.\n");
        return CLI_EXIT_USAGE;
    } else {
        const cli_command *c = cli_find_command(argv[1]);
        if (!c)
            return unknown_command(argv[1]);
        c->usage(stdout);
    }
    return cli_finish_output("help");
}

/* Runs a command with argv[0] replaced by "onnxq NAME" for getopt's messages. */
static int run_command(const cli_command *c, int argc, char **argv)
{
    size_t len = strlen("onnxq ") + strlen(c->name) + 1;
    char *argv0 = malloc(len);
    if (!argv0) {
        fprintf(stderr, "onnxq: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    snprintf(argv0, len, "onnxq %s", c->name);
    char *saved = argv[0];
    argv[0] = argv0;
    int rc = c->run(argc, argv);
    argv[0] = saved;
    free(argv0);
    if (rc == CLI_EXIT_OK)
        rc = cli_finish_output(c->name);
    return rc;
}

/* OpenMP's threads spin while they wait for work. libgomp's default spin
 * (300,000 rounds, "active" spins for ever) makes a spinning thread steal the
 * time its siblings need when other processes compete for the cores: two
 * threads ran many times slower than one. Sleeping at once ("passive") pays a
 * wake-up per parallel region: two threads were 1.6-2.1x slower than
 * onnxruntime on a quiet machine. A short spin keeps the cheap hand-over of
 * back-to-back regions and still yields the core soon (bench/README.md).
 * libgomp reads its variables before main runs, so when the user has chosen
 * neither a policy nor a spin count, onnxq starts itself again with one. */
static void choose_wait_policy(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("GOMP_SPINCOUNT", "10000", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: go on with the default policy (nothing else changes) */
}

int main(int argc, char **argv)
{
    choose_wait_policy(argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        usage(stdout);
        return cli_finish_output("help");
    }
    if (strcmp(arg, "--version") == 0) {
        printf("onnxq %s\n", oq_version());
        return cli_finish_output("--version");
    }
    if (strcmp(arg, "help") == 0)
        return help(argc - 1, argv + 1);
    if (arg[0] == '-') {
        fprintf(stderr, "onnxq: unknown option '%s'. See 'onnxq --help'.\n", arg);
        return CLI_EXIT_USAGE;
    }
    const cli_command *c = cli_find_command(arg);
    if (!c)
        return unknown_command(arg);
    return run_command(c, argc - 1, argv + 1);
}
