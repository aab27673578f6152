/* Instruction-set levels and the ONNXQ_ISA ceiling (see isa.h). */
#include <stdlib.h>
#include <string.h>

#include "isa.h"

static const char *const level_names[OQ_LEVEL_COUNT] = {"ref", "avx2", "avx512", "avx512vnni"};

const char *oq_isa_level_name(oq_isa_level l)
{
    return l >= 0 && l < OQ_LEVEL_COUNT ? level_names[l] : "?";
}

bool oq_cpu_has_level(oq_isa_level l)
{
    switch (l) {
    case OQ_LEVEL_REF:
        return true;
    case OQ_LEVEL_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case OQ_LEVEL_AVX512:
        return oq_cpu_has_level(OQ_LEVEL_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    case OQ_LEVEL_AVX512VNNI:
        return oq_cpu_has_level(OQ_LEVEL_AVX512) && __builtin_cpu_supports("avx512vnni");
    default:
        return false;
    }
}

bool oq_isa_ceiling(oq_isa_level *ceiling, const char **err)
{
    const char *env = getenv("ONNXQ_ISA");
    if (env && *env) {
        for (int i = 0; i < OQ_LEVEL_COUNT; i++)
            if (strcmp(env, level_names[i]) == 0) {
                if (!oq_cpu_has_level((oq_isa_level)i)) {
                    *err = "ONNXQ_ISA names an instruction set this CPU lacks";
                    return false;
                }
                *ceiling = (oq_isa_level)i;
                return true;
            }
        *err = "ONNXQ_ISA is not one of ref, avx2, avx512, avx512vnni";
        return false;
    }
    int best = OQ_LEVEL_REF;
    for (int i = OQ_LEVEL_REF; i < OQ_LEVEL_COUNT; i++)
        if (oq_cpu_has_level((oq_isa_level)i))
            best = i;
    *ceiling = (oq_isa_level)best;
    return true;
}
