/* onnxq: the quantizer. Rewrites a prepared fp32 model (cleanup, fold-bn and
 * fuse already run) into an int8 model in QDQ form (QuantizeLinear /
 * DequantizeLinear around the quantized nodes) or QOperator form
 * (QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, QGemm, ...), from
 * the ranges of a calibration table. */
#ifndef ONNXQ_QUANTIZE_H
#define ONNXQ_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/calib.h"
#include "onnxq/graph.h"
#include "onnxq/passes.h"
#include "onnxq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum oq_quant_format { OQ_FORMAT_QDQ = 0, OQ_FORMAT_QOP } oq_quant_format;

typedef struct oq_quant_options {
    oq_quant_format format;
    bool per_channel;       /* weights per output channel (default) or per tensor */
    oq_dtype act_type;      /* OQ_UINT8 (default) or OQ_INT8 */
    oq_dtype weight_type;   /* OQ_INT8 (default) or OQ_UINT8 */
    bool symmetric_act;     /* activations symmetric around zero */
    bool reduce_range;      /* 7-bit weights (for CPUs whose int8 kernels saturate) */
    /* Comma-separated lists (may be NULL): node names to keep in float, op
     * types to keep in float, and op types to quantize (NULL: all that
     * onnxq can). */
    const char *exclude_nodes;
    const char *exclude_op_types;
    const char *include_op_types;
    int64_t opset;          /* default-domain opset of the output (0: keep) */
    /* Graph outputs quantized too (the output is then the dequantized 8-bit
     * value). Default false: the nodes that write graph outputs write float. */
    bool quantize_outputs;
} oq_quant_options;

void oq_quant_options_default(oq_quant_options *o);

/* Quantizes m in place. fusions come from the fuse pass on m; every
 * activation needs a range in table. summary (may be NULL) receives a text
 * report (malloc'd): quantized nodes per op type and the nodes left in float
 * with the reason. A model with no quantizable node is OQ_E_INVALID with a
 * message saying so (nothing is changed then). */
oq_status oq_quantize(oq_model *m, const oq_fusion_list *fusions, const oq_calib_table *table,
                      const oq_quant_options *o, char **summary);

/* Rewrites QDQ groups of m into QOperator form (QLinearConv, QLinearMatMul,
 * QGemm, QLinearAdd/Mul, QLinear(Global)AveragePool, QLinearConcat) and lets
 * data-movement operators run on 8-bit data, as the interpreter does when it
 * plans a QDQ model. *out is a new model (NULL if m has no QDQ groups);
 * explain as oq_session_explain. */
oq_status oq_qdq_to_qop(const oq_model *m, oq_model **out, char **explain);

#ifdef __cplusplus
}
#endif
#endif
