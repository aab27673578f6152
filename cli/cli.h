/* onnxq command-line front end: the command table and shared helpers.
 * Internal to cli/. */
#ifndef ONNXQ_CLI_H
#define ONNXQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <getopt.h>
#include <jansson.h>

#include "onnxq/onnxq.h"

/* Exit codes of every command. */
enum {
    CLI_EXIT_OK = 0,    /* success */
    CLI_EXIT_FAIL = 1,  /* the job failed (out of memory, internal error, output error) */
    CLI_EXIT_USAGE = 2  /* usage error or bad input (missing, unreadable, malformed file) */
};

/* One subcommand. run receives the arguments after the command's name with
 * argv[0] = "onnxq NAME" (getopt_long's messages start with it); usage prints
 * the command's help (synopsis, every option, exit codes). */
typedef struct cli_command {
    const char *name;
    const char *summary; /* one line, shown by `onnxq --help` */
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *out);
} cli_command;

/* The command table (main.c) and lookup by name (NULL if unknown). */
extern const cli_command cli_commands[];
extern const size_t cli_n_commands;
const cli_command *cli_find_command(const char *name);

/* The command implementations. */
int cmd_inspect(int argc, char **argv);
void cmd_inspect_usage(FILE *out);
int cmd_run(int argc, char **argv);
void cmd_run_usage(FILE *out);
int cmd_optimize(int argc, char **argv);
void cmd_optimize_usage(FILE *out);
int cmd_calibrate(int argc, char **argv);
void cmd_calibrate_usage(FILE *out);
int cmd_quantize(int argc, char **argv);
void cmd_quantize_usage(FILE *out);
int cmd_eval(int argc, char **argv);
void cmd_eval_usage(FILE *out);
int cmd_gate(int argc, char **argv);
void cmd_gate_usage(FILE *out);

/* ---- calibration and data options (calibrate, quantize) ---- */

/* getopt value of the options in cli_calib_longopts. */
#define CLI_OPT_CALIB 1000
/* --method, --percentile, --moving-average, --bins, --threads and the data
 * options (--samples, --batch-size, --resize, --crop, --mean, --std, --scale,
 * --layout, --color), each taking an argument. */
/* Help lines of the image preprocessing options and --threads, as calibrate
 * and eval print them (a string literal). */
#define CLI_HELP_IMAGE_OPTIONS                                                      \
    "   --resize R|WxH          images: shorter side to R, or exactly WxH\n"          \
    "   --crop S|WxH            images: center crop\n"                                \
    "   --mean M|M,M,M|imagenet images: per-channel mean, in [0,1] units\n"          \
    "   --std S|S,S,S|imagenet  images: per-channel std\n"                            \
    "   --scale S               images: pixel scale (default 1/255)\n"                \
    "   --layout auto|nchw|nhwc images: tensor layout\n"                              \
    "   --color auto|rgb|bgr|gray images: channel order\n"                            \
    "   --threads N             worker threads (default: all cores)\n"
extern const struct option cli_calib_longopts[];
extern const size_t cli_n_calib_longopts;
/* Applies one of them by long name; returns -1, or the exit code of a usage
 * error. */
int cli_calib_option(const char *cmd, oq_calibrate_config *cfg, const char *name, const char *v);

/* ---- evaluation (eval, gate; cmd_eval.c) ---- */

/* getopt value of the options in cli_eval_longopts. */
#define CLI_OPT_EVAL 1100
/* --data, --labels, --output, --per-layer, --max-layers, --json, --markdown,
 * --qdq-float, --requant and the data options of cli_calib_longopts
 * (--samples, --batch-size, --resize, --crop, --mean, --std, --scale,
 * --layout, --color, --threads). */
extern const struct option cli_eval_longopts[];
extern const size_t cli_n_eval_longopts;

typedef struct cli_eval_job {
    const char *cmd;
    const char *fp32, *int8, *data, *labels;
    const char *json, *markdown, *junit; /* report files (may be NULL) */
    const char *output;                  /* --output NAME */
    bool per_layer, qdq_float, fixed, batch_given;
    long max_layers;
    oq_calibrate_config cfg;             /* data options and threads */
    oq_gate gate;                        /* gate only: the bounds */
    bool gating;
} cli_eval_job;

void cli_eval_job_init(cli_eval_job *j, const char *cmd);
/* Applies one of cli_eval_longopts by long name; returns -1, or the exit
 * code of a usage error. */
int cli_eval_option(cli_eval_job *j, const char *name, const char *v);
/* Runs the evaluation (and the gate's verdict), prints the tables, writes
 * the reports; returns the exit code (gate: 1 when a bound fails). */
int cli_eval_run(cli_eval_job *j);

/* ---- errors and exit codes ---- */

/* Prints "onnxq CMD: message" on stderr (printf-style). */
void cli_errorf(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints "onnxq CMD: <oq_errmsg()>" on stderr (the status name if the message is empty). */
void cli_report(const char *cmd, oq_status st);
/* The exit code for a status of reading or checking input: 2 for invalid,
 * unreadable or unsupported input, 1 for out of memory and internal errors. */
int cli_exit_for_input(oq_status st);
/* Prints a usage error and the hint "See 'onnxq CMD --help'."; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Flushes stdout; on a write error reports it and returns 1, else 0. */
int cli_finish_output(const char *cmd);

/* ---- files and progress ---- */

/* True when a and b name the same existing file. */
bool cli_same_file(const char *a, const char *b);

/* A progress line on stderr (samples, samples/s, ETA) when it is a terminal. */
typedef struct cli_progress {
    const char *what; /* "calibrating", "evaluating" */
    struct timespec start;
    bool tty;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *what);
/* An oq_progress_fn: ctx is a cli_progress. */
void cli_progress_show(void *ctx, size_t done, size_t total);
/* Ends the line (if one was shown). */
void cli_progress_end(const cli_progress *p);
double cli_seconds_since(const struct timespec *t0);

/* ---- option parsing ---- */

/* Prepares getopt_long for parsing a command's arguments (resets its state;
 * getopt_long reports a bad option itself, prefixed with argv[0]). */
/* The long options of a command: a's na entries then b's nb, ended by a zero
 * entry, into lo (CLI_MAX_LONGOPTS entries). */
#define CLI_MAX_LONGOPTS 64
void cli_join_longopts(struct option *lo, const struct option *a, size_t na,
                       const struct option *b, size_t nb);
void cli_getopt_reset(void);
/* After getopt_long returned '?' (and printed why): prints the hint
 * "See 'onnxq CMD --help'." and returns 2. */
int cli_bad_option(const char *cmd);

/* ---- a growable string ---- */

typedef struct cli_buf {
    char *s;    /* NUL-terminated; NULL until something is appended */
    size_t len, cap;
    bool failed; /* an allocation failed: the contents are incomplete */
} cli_buf;

void cli_buf_free(cli_buf *b);
void cli_buf_printf(cli_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s with control characters and DEL escaped as \xNN. */
void cli_buf_puts_safe(cli_buf *b, const char *s);
/* The contents ("" when empty). */
const char *cli_buf_str(const cli_buf *b);

/* ---- printing values ---- */

/* Appends a type: "float[N,3,?]", "float" (rank unknown), "float[]" (scalar),
 * "seq(float[?])", "optional(int64)", "map(int64,float)", "sparse(float[4,4])";
 * "?" for a missing type. */
void cli_format_type(cli_buf *b, const oq_type *t);

/* ---- JSON (jansson) ---- */

/* A JSON string for s (NULL: ""); bytes that are not valid UTF-8 are replaced
 * by U+FFFD. NULL only when out of memory. */
json_t *cli_json_string(const char *s);
/* Sets obj[key] = value (value's reference is stolen); key is sanitised like
 * cli_json_string. Returns false when out of memory. */
bool cli_json_set(json_t *obj, const char *key, json_t *value);
/* A type as JSON: {"kind": "tensor", "dtype": "float", "shape": [1, "N", null]}
 * (shape null when the rank is unknown); sequence and optional have "elem",
 * map has "key" (a dtype name) and "value"; JSON null for a missing type. */
json_t *cli_json_type(const oq_type *t);

#endif
