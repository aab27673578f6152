/* Instruction-set levels shared by the kernel families (fp32 GEMM, int8
 * GEMM): each family picks the fastest kernel it has at or below a ceiling,
 * which is the CPU's best level, or the level the environment variable
 * ONNXQ_ISA names (ref, avx2, avx512, avx512vnni) to force slower kernels. */
#ifndef OQ_KERNELS_ISA_H
#define OQ_KERNELS_ISA_H

#include <stdbool.h>

typedef enum oq_isa_level {
    OQ_LEVEL_REF,        /* portable C */
    OQ_LEVEL_AVX2,       /* AVX2 + FMA */
    OQ_LEVEL_AVX512,     /* AVX-512 F, BW, VL */
    OQ_LEVEL_AVX512VNNI, /* the above + AVX-512 VNNI */
    OQ_LEVEL_COUNT
} oq_isa_level;

/* "ref", "avx2", "avx512", "avx512vnni". */
const char *oq_isa_level_name(oq_isa_level l);
/* Whether this CPU runs level l. */
bool oq_cpu_has_level(oq_isa_level l);
/* The ceiling: ONNXQ_ISA's level when it is set, else the CPU's best.
 * False, with *err saying why, when ONNXQ_ISA names an unknown level or one
 * this CPU lacks. */
bool oq_isa_ceiling(oq_isa_level *ceiling, const char **err);

#endif
