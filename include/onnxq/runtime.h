/* onnxq: the interpreter. A session binds a model to the operator registry;
 * running it builds an execution plan for the given input shapes (shapes
 * inferred, constant parts evaluated once, intermediate buffers placed in
 * one arena and reused after their last consumer) and executes it. A run
 * with the same input shapes reuses the plan and allocates nothing; a new
 * shape re-plans. */
#ifndef ONNXQ_RUNTIME_H
#define ONNXQ_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/graph.h"
#include "onnxq/status.h"
#include "onnxq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct oq_session oq_session;

/* How int8 operators turn int32 accumulators into 8-bit outputs. */
typedef enum oq_requant_mode {
    /* multiply by the float scale (x_scale * w_scale / y_scale), round half to
     * even, add the zero point, saturate: what onnxruntime does, bit for bit */
    OQ_REQUANT_FLOAT = 0,
    /* integer only: a 32-bit fixed-point multiplier and a rounding right
     * shift (gemmlowp style), for targets without a float unit */
    OQ_REQUANT_FIXED = 1
} oq_requant_mode;

typedef struct oq_session_options {
    int threads;                 /* worker threads for kernels and BLAS; 0: all cores */
    oq_requant_mode requant;     /* int8 requantization (default float) */
    /* Run QDQ groups as written (dequantize, float operator, quantize)
     * instead of recognising them as integer operators. */
    bool qdq_as_float;
} oq_session_options;

/* Called after each node ran, with its outputs (node_index indexes
 * m->graph->nodes). Nodes whose inputs are all constant are evaluated once
 * when the plan is built; the hook sees them then. */
typedef void (*oq_node_hook)(void *ctx, const oq_node *node, size_t node_index,
                             const oq_tensor *const *outputs, size_t n_outputs);

/* Binds the model (which must outlive the session) to the registry: every
 * node's operator is resolved for the model's opset and its attributes are
 * checked. Fails naming the node for an unregistered operator (domain, op
 * type, opset) or a bad attribute. */
oq_status oq_session_new(const oq_model *m, const oq_session_options *opts, oq_session **out);
void oq_session_free(oq_session *s);

/* The inputs a run takes (graph inputs that are not initializers) and the
 * outputs it produces, in graph order. */
size_t oq_session_n_inputs(const oq_session *s);
const oq_value_info *oq_session_input(const oq_session *s, size_t i);
size_t oq_session_n_outputs(const oq_session *s);
const oq_value_info *oq_session_output(const oq_session *s, size_t i);
/* Index of the input named name, or -1. */
int oq_session_input_index(const oq_session *s, const char *name);

/* Runs the model. inputs[i] is the i-th session input; its dtype, rank and
 * fixed dimensions must match the model's declaration (symbolic dimensions
 * must agree across inputs). On success outputs[i] points to the i-th output,
 * owned by the session and valid until the next run or oq_session_free.
 * The inputs are read, never written, and must stay valid during the run. */
oq_status oq_session_run(oq_session *s, const oq_tensor *const *inputs, const oq_tensor **outputs);

/* The tensor behind a value of the graph (input, initializer or node output)
 * in the current plan: dtype and shape after the first run; data of
 * constants (initializers and values folded at plan time) stays valid, data
 * of other values only until the next run. NULL for unknown names or before
 * the first run. is_const (may be NULL) tells whether the value is constant
 * for the plan. */
const oq_tensor *oq_session_value(const oq_session *s, const char *name, bool *is_const);

/* Builds the plan for the shapes (and dtypes) of inputs without running it:
 * shapes are inferred and constant nodes folded; the inputs' data is not
 * read. Used by passes for shapes and constant values. */
oq_status oq_session_prepare(oq_session *s, const oq_tensor *const *inputs);

/* Observers: an Observe node (domain ai.onnxq, see the observe pass) passes
 * its input through without a copy and hands it to this function with the
 * node's "id" and "tensor" attributes. A status other than OQ_OK stops the
 * run with that error. */
typedef oq_status (*oq_observe_fn)(void *ctx, int64_t id, const char *tensor,
                                   const oq_tensor *value);
void oq_session_set_observer(oq_session *s, oq_observe_fn fn, void *ctx);

/* Sets the per-node hook (NULL to remove). */
void oq_session_set_hook(oq_session *s, oq_node_hook hook, void *ctx);

/* What the session made of the model's QDQ groups, one line each:
 * "integer  Conv 'c1' -> QLinearConv", "direct   MaxPool 'p' on uint8" or
 * "float    Conv 'c2': <why>"; "" when the model has none. */
const char *oq_session_explain(const oq_session *s);

/* Statistics of the current plan (after a run). */
typedef struct oq_plan_stats {
    size_t n_steps;       /* nodes executed per run */
    size_t n_folded;      /* nodes evaluated once at plan time (constant inputs) */
    size_t arena_bytes;   /* the arena holding every intermediate tensor */
    size_t naive_bytes;   /* the sum of all intermediate tensor sizes (no reuse) */
    size_t scratch_bytes; /* kernel scratch space, shared by all nodes */
    size_t n_plans;       /* plans built so far (1 + re-plans) */
} oq_plan_stats;
void oq_session_stats(const oq_session *s, oq_plan_stats *st);

/* Whether the default-domain operator op_type means the same at opsets a
 * and b (one registry row covers both; false when onnxq implements it at
 * neither). */
bool oq_op_same_semantics(const char *op_type, int64_t a, int64_t b);

/* The name of the BLAS core OpenBLAS chose (openblas_get_corename). onnxq's
 * fp32 products do not go through OpenBLAS (see oq_kernel_names). */
const char *oq_blas_core(void);
/* The GEMM micro-kernels products run on, e.g.
 * "fp32 14x32-avx512, int8 8x48c4-avx512vnni" (a static string). */
const char *oq_kernel_names(void);

#ifdef __cplusplus
}
#endif
#endif
