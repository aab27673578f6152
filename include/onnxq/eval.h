/* onnxq: accuracy measurement and CI gating.
 *
 * oq_eval streams a data set (an oq_data_reader) through one model, or
 * through an fp32 model and its int8 version side by side, batch by batch,
 * and accumulates counts and sums: memory does not grow with the number of
 * samples (no output is kept beyond its batch).
 *
 * Measured:
 *  - top-1 accuracy of each model (and top-5 when there are >= 10 classes)
 *    against integer labels. A sample counts for top-k when fewer than k
 *    classes rank above its label; classes rank by score, equal scores by
 *    index (what a stable descending sort gives, so top-1 is numpy's argmax).
 *    A NaN score ranks below every number.
 *  - with two models: the accuracy drop (fp32 top-1 minus int8 top-1, in
 *    percentage points), the agreement rate (samples whose argmax is the same
 *    in both), and the output SQNR over every element of the score output:
 *    10 log10(sum ref^2 / sum (ref - test)^2), sums in double (+inf when the
 *    outputs are identical).
 *  - per layer (optional): the SQNR of every quantized tensor of the int8
 *    model against the fp32 tensor it replaces, over the whole data set,
 *    sorted worst first. See oq_eval_layer for how tensors are paired.
 *
 * Gates (oq_gate_check) turn the numbers into a verdict against bounds, and
 * the report functions write it as text, JSON, JUnit XML or Markdown. */
#ifndef ONNXQ_EVAL_H
#define ONNXQ_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/data.h"
#include "onnxq/graph.h"
#include "onnxq/runtime.h"
#include "onnxq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- labels ---- */

/* One class index per sample, in data order. */
typedef struct oq_labels {
    int64_t *v;
    size_t n;
    char *path; /* the file (for messages) */
} oq_labels;

/* Loads labels from a .npy file (any integer dtype, normally int64 or int32;
 * shape [N] or [N, 1]) or, for any other extension, a text file with one
 * non-negative integer per line (surrounding blanks and a final newline
 * allowed; an empty line or anything else is an error naming the line).
 * Negative labels are errors. */
oq_status oq_labels_load(const char *path, oq_labels *out);
void oq_labels_clear(oq_labels *l);

/* ---- evaluation ---- */

/* Called after each batch with the samples done so far and the total (0 when
 * unknown). */
typedef void (*oq_eval_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct oq_eval_options {
    oq_data_options data;       /* how the data is read (images: resize, mean, ...) */
    int threads;                /* 0: all cores */
    oq_requant_mode requant;    /* the int8 model's requantization */
    /* Run the int8 model's QDQ groups as written (dequantize, float operator,
     * quantize) instead of as integer operators (the default). */
    bool qdq_as_float;
    /* The class-score output (in both models); NULL: the model's only output
     * (an error when it has several). It must be float [N, C] or
     * [N, C, 1, 1] with C >= 2. */
    const char *output;
    bool per_layer;             /* also compare every quantized tensor */
    /* Per layer: a model whose initializers give the fp32 value of quantized
     * weights and biases (may be NULL: the fp32 model's). BatchNormalization
     * folding changes weights and may keep their names, so the fp32 model
     * after the quantizer's own preparation passes is the right reference. */
    const oq_model *weights_ref;
    oq_eval_progress_fn progress;
    void *progress_ctx;
} oq_eval_options;

void oq_eval_options_default(oq_eval_options *o);

typedef enum oq_layer_kind {
    OQ_LAYER_ACTIVATION = 0,
    OQ_LAYER_WEIGHT,  /* a constant 8-bit tensor */
    OQ_LAYER_BIAS     /* a constant int32 tensor */
} oq_layer_kind;

/* One quantized tensor of the int8 model against the fp32 tensor it
 * replaces.
 *
 * Quantized tensors are the 8-bit (or int32 bias) values of the int8 model
 * with a known scale and zero point: outputs of QuantizeLinear, inputs of
 * DequantizeLinear, outputs of QLinearConv, QLinearMatMul and the
 * com.microsoft QGemm, QLinearAdd, QLinearMul, QLinearLeakyRelu,
 * QLinearSigmoid, QLinearConcat, QLinear(Global)AveragePool and
 * QLinearSoftmax, the weights and biases of QLinearConv, QLinearMatMul and
 * QGemm, and outputs of data-movement operators (MaxPool, Reshape, Flatten,
 * Transpose, ...) on such values (same scale). Each is dequantized,
 * (float)(q - zero_point) * scale, as DequantizeLinear computes it (or the
 * DequantizeLinear output itself is read when the 8-bit value does not
 * appear in the run).
 *
 * The fp32 tensor is found by name: the DequantizeLinear output D when the
 * fp32 model has a value D (a graph output keeps its name), else the input T
 * of the QuantizeLinear that produced the value, else D without a
 * "_dequantized" suffix, else the quantized name without a "_quantized"
 * suffix (the naming of onnxq quantize: T -> T_quantized -> T_dequantized).
 * Constants are compared with initializers (of weights_ref when given). */
typedef struct oq_eval_layer {
    char *tensor;         /* the fp32 tensor */
    char *quantized;      /* the int8 model's tensor compared with it */
    /* The int8 model's node that computes it (activations) or reads it
     * (weights, biases): the name `onnxq quantize --exclude-nodes` takes to
     * keep that layer in float; "" when unnamed or not found. */
    char *node;
    oq_layer_kind kind;
    double signal, noise; /* sum ref^2, sum (ref - test)^2 */
    uint64_t elements;    /* elements compared (over every batch) */
    double sqnr_db;       /* +inf when identical, -inf when ref is all zero */
} oq_eval_layer;

/* A quantized tensor that could not be compared, and why. */
typedef struct oq_eval_skip {
    char *quantized;
    char *why;
} oq_eval_skip;

typedef struct oq_eval_model_stats {
    uint64_t correct1, correct5;
    double top1, top5;    /* fractions in [0, 1]; top5 only when has_top5 */
    /* Latency: the mean wall time of one oq_session_run on a batch of
     * batch_size samples, in milliseconds, over timed_batches batches. The
     * first batch (which pays the first run's allocations) and a final
     * partial batch are not counted unless there is no other batch. With
     * per_layer the time includes the layer hooks. */
    double batch_ms;
    uint64_t timed_batches;
} oq_eval_model_stats;

typedef struct oq_eval_result {
    size_t n_models;      /* 1 or 2 */
    uint64_t samples;
    size_t classes;
    size_t batch_size;    /* samples per timed batch (see oq_eval_model_stats) */
    char *output;         /* the score output's name */
    char *source;         /* what the data reader found ("folder of 10000 images") */
    bool has_labels;
    bool has_top5;        /* classes >= 10 */
    oq_eval_model_stats model[2]; /* [0] fp32 (or the only model), [1] int8 */
    /* two models only */
    double drop_pp;       /* (top1[0] - top1[1]) * 100, labels only */
    uint64_t agree;
    double agreement;     /* agree / samples */
    double signal, noise; /* over the score output */
    double sqnr_db;
    /* per layer, worst (lowest SQNR) first */
    size_t n_layers;
    oq_eval_layer *layers;
    size_t n_skipped;
    oq_eval_skip *skipped;
} oq_eval_result;

/* Evaluates fp32 (and int8 when not NULL) over the data at data_path.
 * labels may be NULL (then only agreement and SQNR are measured, which needs
 * two models). Errors (each OQ_E_INVALID unless noted, with a message naming
 * the file, model, output or line): labels whose count differs from the data's
 * number of samples (with a samples limit, fewer labels than samples used); a
 * label outside [0, C); a score output that is missing, not float, or not
 * [N, C] / [N, C, 1, 1]; several outputs and none chosen; models whose
 * inputs or score shapes differ; data of the wrong dtype or shape (the data
 * reader's messages); per_layer without an int8 model. */
oq_status oq_eval(const oq_model *fp32, const oq_model *int8, const char *data_path,
                  const oq_labels *labels, const oq_eval_options *o, oq_eval_result *out);
void oq_eval_result_clear(oq_eval_result *r);

/* 10 log10(signal / noise), +inf for noise 0 (and signal >= 0), -inf for
 * signal 0 < noise. */
double oq_sqnr_db(double signal, double noise);

/* ---- gates ---- */

typedef enum oq_bound_kind {
    OQ_BOUND_MAX_DROP = 0, /* top-1 accuracy drop <= limit (percentage points) */
    OQ_BOUND_MIN_AGREEMENT, /* agreement >= limit (percent) */
    OQ_BOUND_MIN_SQNR       /* output SQNR >= limit (dB) */
} oq_bound_kind;

typedef struct oq_bound {
    oq_bound_kind kind;
    double limit;
    double measured;      /* filled by oq_gate_check */
    bool passed;
} oq_bound;

typedef struct oq_gate {
    size_t n;
    oq_bound bounds[3];
    bool passed;          /* every bound holds */
} oq_gate;

/* The option name ("max-drop"), what it measures ("accuracy drop") and its
 * unit ("pp", "%", "dB"). */
const char *oq_bound_option(oq_bound_kind k);
const char *oq_bound_metric(oq_bound_kind k);
const char *oq_bound_unit(oq_bound_kind k);

/* Fills in measured and passed for every bound (a NaN measurement fails).
 * OQ_E_INVALID when a bound needs what r lacks (max-drop without labels; any
 * bound with one model). */
oq_status oq_gate_check(const oq_eval_result *r, oq_gate *g);

/* ---- reports ---- */

/* What the reports describe: the result, the gate (NULL for a plain
 * evaluation) and the files involved (for the record; int8 and labels may be
 * NULL). */
typedef struct oq_eval_report {
    const oq_eval_result *result;
    const oq_gate *gate;
    const char *fp32, *int8, *data, *labels;
    uint64_t bytes[2];    /* file sizes of fp32 and int8 (0: unknown) */
    double seconds;       /* wall time of the evaluation */
    size_t max_layers;    /* layers listed in text and Markdown (0: all) */
} oq_eval_report;

/* Each writes a malloc'd NUL-terminated string into *out.
 *  - text: the tables onnxq eval and onnxq gate print (accuracy, file size
 *    and latency per model; drop, agreement, SQNR, size and latency ratios).
 *  - JSON: one object: "onnxq_version", "kind" ("eval" or "gate"), "data",
 *    "source", "labels", "output", "samples", "classes", "seconds", "models"
 *    (each {"role": "fp32"|"int8"|"model", "path", "top1", "top5",
 *    "correct_top1", "correct_top5", "bytes", "batch_ms", "sample_ms",
 *    "timed_batches"}; null where not measured), "batch_size"; with two
 *    models "accuracy_drop_pp", "agreement" (a fraction), "agreement_count",
 *    "output_sqnr_db", "output_identical", "size_ratio" and
 *    "latency_ratio" (int8 / fp32); per layer "layers" (each
 *    {"tensor", "quantized", "node", "kind", "sqnr_db", "elements", "signal",
 *    "noise"}, worst first) and "not_compared" ({"quantized", "why"}); with a
 *    gate "passed" and "gate": {"passed", "bounds": [{"option", "metric",
 *    "unit", "comparison", "limit", "measured", "passed"}]}. Infinite or NaN
 *    numbers (the SQNR of identical outputs) are written as null.
 *  - JUnit XML: one <testsuite> with one <testcase> per bound, a <failure>
 *    in each bound that does not hold (needs a gate).
 *  - Markdown: a heading with the verdict, the bounds table, the models
 *    table and the worst layers. */
oq_status oq_eval_report_text(const oq_eval_report *rep, char **out);
oq_status oq_eval_report_json(const oq_eval_report *rep, char **out);
oq_status oq_eval_report_junit(const oq_eval_report *rep, char **out);
oq_status oq_eval_report_markdown(const oq_eval_report *rep, char **out);

#ifdef __cplusplus
}
#endif
#endif
