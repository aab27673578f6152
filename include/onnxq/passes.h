/* onnxq: graph-to-graph rewrites that prepare a model for quantization.
 * Each pass is idempotent (a second run changes nothing), keeps the graph
 * valid, and keeps graph input and output names. */
#ifndef ONNXQ_PASSES_H
#define ONNXQ_PASSES_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/graph.h"
#include "onnxq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a pass changed. */
typedef struct oq_pass_report {
    const char *pass;        /* the pass's name */
    size_t nodes_removed;    /* nodes taken out (Identity, Dropout, dead, folded, BN) */
    size_t nodes_added;      /* nodes put in (e.g. an Add carrying a folded bias) */
    size_t folded;           /* constant nodes or BatchNormalizations folded */
    size_t fused;            /* activation units marked */
    size_t inits_removed;    /* unused or duplicate initializers removed */
    size_t inits_added;      /* initializers created (folded values, new weights) */
    size_t inputs_untied;    /* IR < 4: initializers taken out of the graph inputs */
} oq_pass_report;

/* Removes Identity and inference-mode Dropout, folds nodes whose inputs are
 * constant (and Shape-derived values when the graph's input shapes are
 * static) by running them in the interpreter, removes dead nodes and unused
 * or duplicate initializers. In a model of IR version < 4, where every
 * initializer had to be listed as a graph input too and runtimes take those
 * as constants, it first takes the initializers out of the graph inputs and
 * raises the IR version to 4 (the inputs a caller feeds stay the same). */
oq_status oq_pass_cleanup(oq_model *m, oq_pass_report *r);

/* Folds BatchNormalization into a preceding Conv, ConvTranspose, Gemm or
 * MatMul with a constant weight when the intermediate value has no other
 * reader; a BatchNormalization that cannot be folded stays. */
oq_status oq_pass_fold_bn(oq_model *m, oq_pass_report *r);

/* ---- activation fusion ---- */

typedef enum oq_act_kind {
    OQ_ACT_RELU,
    OQ_ACT_CLIP,
    OQ_ACT_LEAKY_RELU,
    OQ_ACT_HARD_SWISH
} oq_act_kind;

/* An anchor (Conv, ConvTranspose, Gemm, MatMul or Add) whose only reader is
 * an activation: the two form one quantization unit, quantized once at the
 * activation's output. Values are names in the graph. */
typedef struct oq_fusion {
    char *anchor_node;   /* node names (may be "" for unnamed nodes) */
    char *act_node;
    char *anchor_output; /* the intermediate value (not quantized) */
    char *act_output;    /* the unit's output */
    char *anchor_op;
    oq_act_kind act;
    float min, max;      /* Relu: [0, inf); Clip: its bounds; others: -inf, inf */
    float alpha;         /* LeakyRelu */
} oq_fusion;

typedef struct oq_fusion_list {
    size_t n;
    oq_fusion *items;
} oq_fusion_list;

/* Finds the fusable units. The graph is not changed: fusion shows in a saved
 * model only through how it is quantized. */
oq_status oq_pass_fuse_activations(const oq_model *m, oq_fusion_list *out, oq_pass_report *r);
void oq_fusion_list_free(oq_fusion_list *l);
const char *oq_act_name(oq_act_kind k);

/* ---- what to quantize, and observers for calibration ---- */

/* Whether onnxq quantizes this node's operator; act_inputs (may be NULL)
 * receives a bit mask of the inputs that carry activations. */
bool oq_op_quantizable(const oq_node *n, unsigned *act_inputs);

/* The tensors the quantizer needs ranges for: activation inputs and outputs
 * of quantizable nodes (not initializers; not the inner value of a fused
 * unit). *names is malloc'd, each name too. */
oq_status oq_quant_targets(const oq_model *m, const oq_fusion_list *fusions, char ***names,
                           size_t *n);

/* Inserts an Observe node (domain ai.onnxq) after each tensor; observer i has
 * "id" i. Readers of a tensor read the Observe's output instead; graph
 * outputs keep their names. */
oq_status oq_pass_insert_observers(oq_model *m, char *const *tensors, size_t n);
/* Removes every Observe node and restores the readers. */
oq_status oq_pass_remove_observers(oq_model *m);

/* ---- running passes by name ---- */

/* The passes in their default order ("cleanup,fold-bn,fuse"), and all names. */
#define OQ_DEFAULT_PASSES "cleanup,fold-bn,fuse"
/* Runs the comma-separated passes in order (NULL: the default list). reports
 * receives one entry per pass run (room for max entries); fusions (may be
 * NULL) receives the units found by "fuse". Unknown names are OQ_E_INVALID. */
oq_status oq_passes_run(oq_model *m, const char *names, oq_pass_report *reports, size_t max,
                        size_t *n_reports, oq_fusion_list *fusions);

#ifdef __cplusplus
}
#endif
#endif
