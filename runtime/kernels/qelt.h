/* Vectorised versions of the elementwise com.microsoft QLinearAdd and
 * QLinearMul kernels (ops/ops_qlinear_ms_kern.h gives the formulas and the
 * portable reference). Each gives the reference's bytes exactly: the same
 * IEEE single-precision operations (fused where the reference uses fmaf),
 * the same round-half-to-even conversion and the same saturation. */
#ifndef ONNXQ_KERNELS_QELT_H
#define ONNXQ_KERNELS_QELT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The signature of oq_qlms_add_ref and oq_qlms_mul_ref. */
typedef void (*oq_qelt_fn)(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                           int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar);

enum oq_qelt_op { OQ_QELT_ADD, OQ_QELT_MUL };

/* The kernel of op for exactly this instruction-set level (an oq_isa_level of
 * kernels/isa.h: ref is the portable reference), or NULL when this build or
 * this CPU has none for it. */
oq_qelt_fn oq_qelt_for(enum oq_qelt_op op, int level);
/* The fastest kernel of op at or below the ONNXQ_ISA ceiling; NULL, with
 * *err saying why, when ONNXQ_ISA is bad. */
oq_qelt_fn oq_qelt_select(enum oq_qelt_op op, const char **err);

#ifdef OQ_HAVE_QELT_AVX2
/* AVX2 + FMA (kernels/qelt_avx2.c). */
void oq_qelt_add_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar);
void oq_qelt_mul_avx2(bool s8, const void *a, float sa, int32_t za, const void *b, float sb,
                      int32_t zb, float sc, int32_t zc, void *y, size_t n, bool b_scalar);
#endif

#endif
