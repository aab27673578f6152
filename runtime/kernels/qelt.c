/* Choosing the QLinearAdd/QLinearMul kernel (see qelt.h). */
#include <stddef.h>

#include "isa.h"
#include "qelt.h"
#include "../ops/ops_qlinear_ms_kern.h"

oq_qelt_fn oq_qelt_for(enum oq_qelt_op op, int level)
{
    switch (level) {
    case OQ_LEVEL_REF:
        return op == OQ_QELT_ADD ? oq_qlms_add_ref : oq_qlms_mul_ref;
    case OQ_LEVEL_AVX2:
#ifdef OQ_HAVE_QELT_AVX2
        if (oq_cpu_has_level(OQ_LEVEL_AVX2))
            return op == OQ_QELT_ADD ? oq_qelt_add_avx2 : oq_qelt_mul_avx2;
#endif
        return NULL;
    default:
        return NULL;
    }
}

oq_qelt_fn oq_qelt_select(enum oq_qelt_op op, const char **err)
{
    oq_isa_level ceiling;
    if (!oq_isa_ceiling(&ceiling, err))
        return NULL;
    for (int l = (int)ceiling; l >= OQ_LEVEL_REF; l--) {
        oq_qelt_fn f = oq_qelt_for(op, l);
        if (f)
            return f;
    }
    return oq_qelt_for(op, OQ_LEVEL_REF);
}
