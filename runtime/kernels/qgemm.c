/* The fast 8-bit product (see qgemm.h, qkern.h): choosing the ISA, packing
 * operands, the driver that spreads tiles over threads, and the portable C
 * micro-kernels ("8x16c4-ref"), the reference the SIMD ones are tested
 * against. */
#include <stdlib.h>
#include <string.h>

#include "isa.h"
#include "qgemm.h"
#include "qkern.h"

/* ---- choosing the ISA ---- */

static const char *const isa_names[OQ_ISA_COUNT] = {"ref", "avx2", "avx512vnni"};

const char *oq_isa_name(oq_isa isa)
{
    return isa >= 0 && isa < OQ_ISA_COUNT ? isa_names[isa] : "?";
}

const oq_qkern *oq_qkern_for(oq_isa isa)
{
    switch (isa) {
    case OQ_ISA_REF:
        return &oq_qkern_ref;
    case OQ_ISA_AVX2:
#ifdef OQ_HAVE_AVX2
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return &oq_qkern_avx2;
#endif
        return NULL;
    case OQ_ISA_AVX512VNNI:
#ifdef OQ_HAVE_AVX512VNNI
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
            return &oq_qkern_avx512vnni;
#endif
        return NULL;
    default:
        return NULL;
    }
}

/* The instruction-set level each kernel family member needs. */
static const oq_isa_level isa_levels[OQ_ISA_COUNT] = {OQ_LEVEL_REF, OQ_LEVEL_AVX2,
                                                      OQ_LEVEL_AVX512VNNI};

const oq_qkern *oq_qkern_select(const char **err)
{
    oq_isa_level ceiling;
    if (!oq_isa_ceiling(&ceiling, err))
        return NULL;
    for (int i = OQ_ISA_COUNT - 1; i >= 0; i--) {
        const oq_qkern *k = isa_levels[i] <= ceiling ? oq_qkern_for((oq_isa)i) : NULL;
        if (k)
            return k;
    }
    return &oq_qkern_ref;
}

/* ---- packing ---- */

size_t oq_qpack_left_bytes(const oq_qkern *kern, size_t m, size_t k4)
{
    size_t tiles = (m + kern->mr - 1) / kern->mr;
    return tiles * k4 * kern->mr * kern->a_group_bytes;
}

void oq_qpack_left(const oq_qkern *kern, size_t m, size_t k, const uint8_t *a, size_t rs,
                   size_t cs, bool flip, bool to_signed, void *dst, int32_t *rowsum)
{
    static const int pos16[4] = {0, 2, 1, 3}; /* int16 groups hold k 0, 2, 1, 3 */
    size_t mr = kern->mr, k4 = (k + 3) / 4, gb = kern->a_group_bytes;
    uint8_t fl = flip ? 0x80 : 0;
    memset(dst, 0, oq_qpack_left_bytes(kern, m, k4));
    if (gb == 4 && cs == 1) { /* rows contiguous: whole groups of 4 bytes */
        uint32_t fl32 = flip ? 0x80808080u : 0;
        for (size_t i = 0; i < m; i++) {
            const uint8_t *row = a + i * rs;
            uint8_t *tile = (uint8_t *)dst + (i / mr) * k4 * mr * 4 + (i % mr) * 4;
            size_t g = 0;
            for (; g + 1 <= k / 4; g++) {
                uint32_t w;
                memcpy(&w, row + 4 * g, 4);
                w ^= fl32;
                memcpy(tile + g * mr * 4, &w, 4);
            }
            for (size_t kk = 4 * g; kk < k; kk++)
                tile[g * mr * 4 + kk % 4] = row[kk] ^ fl;
            if (rowsum) {
                uint32_t sum = 0;
                if (to_signed)
                    for (size_t kk = 0; kk < k; kk++)
                        sum += (uint32_t)(int32_t)(int8_t)(row[kk] ^ fl);
                else
                    for (size_t kk = 0; kk < k; kk++)
                        sum += (uint32_t)(uint8_t)(row[kk] ^ fl);
                rowsum[i] = (int32_t)sum;
            }
        }
        return;
    }
    for (size_t i = 0; i < m; i++) {
        uint8_t *tile = (uint8_t *)dst + (i / mr) * k4 * mr * gb + (i % mr) * gb;
        uint32_t sum = 0;
        for (size_t kk = 0; kk < k; kk++) {
            uint8_t v = a[i * rs + kk * cs] ^ fl;
            int32_t val = to_signed ? (int32_t)(int8_t)v : (int32_t)v;
            sum += (uint32_t)val;
            uint8_t *g = tile + (kk / 4) * mr * gb;
            if (gb == 4) {
                g[kk % 4] = v;
            } else {
                int16_t s16 = (int16_t)val;
                memcpy(g + 2 * pos16[kk % 4], &s16, 2);
            }
        }
        if (rowsum)
            rowsum[i] = (int32_t)sum;
    }
}

void oq_qpack_right(size_t k, size_t n, const uint8_t *b, size_t rs, size_t cs, bool flip,
                    bool to_signed, uint8_t *dst, size_t ldn, int32_t *colsum)
{
    size_t k4 = (k + 3) / 4;
    uint8_t fl = flip ? 0x80 : 0;
    memset(dst, 0, k4 * ldn * 4);
    uint32_t *cs32 = (uint32_t *)colsum;
    if (colsum)
        memset(colsum, 0, n * sizeof *colsum);
    for (size_t kk = 0; kk < k; kk++) {
        uint8_t *d = dst + (kk / 4) * ldn * 4 + kk % 4;
        const uint8_t *src = b + kk * rs;
        for (size_t j = 0; j < n; j++) {
            uint8_t v = src[j * cs] ^ fl;
            d[4 * j] = v;
            if (colsum)
                cs32[j] += to_signed ? (uint32_t)(int32_t)(int8_t)v : (uint32_t)v;
        }
    }
}

/* ---- the driver ---- */

void oq_qgemm_run(const oq_qkern *kern, size_t m, size_t n, size_t k4, const void *apack,
                  const uint8_t *b, const ptrdiff_t *boff, bool vec_signed, const oq_qout *o,
                  int threads)
{
    size_t mr = kern->mr, nr = kern->nr;
    size_t nti = (m + mr - 1) / mr, ntj = (n + nr - 1) / nr, tasks = nti * ntj;
    size_t tile_bytes = k4 * mr * kern->a_group_bytes;
    /* The larger operand is read once: column-major over tiles (one
     * thread's consecutive tiles share columns of b) when b is the larger,
     * else row-major (they share a packed tile of a, e.g. the many weights
     * of a layer with few positions, which would not stay in cache). */
    bool by_cols = n >= m;
    /* worth a parallel region: enough products, or enough bytes to stream
     * (a classifier at batch 1: one row, a megabyte of weights) */
    bool par = threads > 1 && tasks > 1 && m * n * k4 + (m + n) * k4 * 4 >= ((size_t)1 << 18);
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (size_t t = 0; t < tasks; t++) {
        size_t it = by_cols ? t % nti : t / ntj, jt = by_cols ? t / nti : t % ntj;
        oq_qtile tl = {
            .k4 = k4,
            .a = (const uint8_t *)apack + it * tile_bytes,
            .b = b + jt * nr * 4,
            .boff = boff,
            .mr = m - it * mr < mr ? m - it * mr : mr,
            .nr = n - jt * nr < nr ? n - jt * nr : nr,
            .i0 = it * mr,
            .j0 = jt * nr,
            .vec_signed = vec_signed,
            .o = o,
        };
        kern->tile(&tl);
    }
}

/* ---- the portable C kernels ---- */

enum { REF_MR = 8, REF_NR = 16 };

static void ref_tile(const oq_qtile *t)
{
    uint32_t acc[REF_MR][REF_NR];
    memset(acc, 0, sizeof acc);
    const uint8_t *a = t->a;
    for (size_t kk = 0; kk < t->k4; kk++) {
        const uint8_t *bk = t->b + t->boff[kk];
        const uint8_t *ak = a + kk * REF_MR * 4;
        for (size_t r = 0; r < t->mr; r++)
            for (size_t q = 0; q < 4; q++) {
                uint8_t araw = ak[r * 4 + q];
                int32_t av = t->vec_signed ? (int32_t)araw : (int32_t)(int8_t)araw;
                if (av == 0)
                    continue;
                for (size_t j = 0; j < t->nr; j++) {
                    uint8_t braw = bk[4 * j + q];
                    int32_t bv = t->vec_signed ? (int32_t)(int8_t)braw : (int32_t)braw;
                    acc[r][j] += (uint32_t)(av * bv);
                }
            }
    }
    for (size_t r = 0; r < t->mr; r++)
        for (size_t j = 0; j < t->nr; j++) {
            size_t i = t->i0 + r, jj = t->j0 + j;
            oq_qout_store1(t->o, i, jj, oq_qout_fix1(t->o, i, jj, (int32_t)acc[r][j]));
        }
}

/* Element at of a depthwise output plane, channel chan. */
static void dw_store1(const oq_qout *o, size_t chan, size_t at, int32_t v)
{
    switch (o->kind) {
    case OQ_QOUT_I32:
        ((int32_t *)o->c)[at] = v;
        break;
    case OQ_QOUT_F32:
        ((float *)o->c)[at] = (float)v * o->mult[chan];
        break;
    default:
        ((uint8_t *)o->c)[at] =
            (uint8_t)(o->mode == OQ_REQUANT_FIXED
                          ? oq_requant_fixed1(v, o->fixed[chan], o->zp, o->qmin, o->qmax)
                          : oq_requant_float1(v, o->mult[chan], o->zp, o->qmin, o->qmax));
    }
}

static void ref_dw(const oq_qdw *d)
{
    const oq_qout *o = d->o;
    for (size_t oy = 0; oy < d->oh; oy++)
        for (size_t ox = 0; ox < d->ow; ox++) {
            uint32_t acc = (uint32_t)d->bias;
            for (size_t ky = 0; ky < d->kh; ky++)
                for (size_t kx = 0; kx < d->kw; kx++) {
                    size_t cx = kx * d->dw, ph = cx % d->sw;
                    const uint8_t *row =
                        d->planes + (ph * d->ph + oy * d->sh + ky * d->dh) * d->pw;
                    acc += (uint32_t)(row[ox + cx / d->sw] * d->w[ky * d->kw + kx]);
                }
            dw_store1(o, d->chan, oy * o->ldc + ox, (int32_t)acc);
        }
}

static void ref_dw8(const oq_qdw8 *d)
{
    uint8_t fl = d->flip ? 0x80 : 0;
    size_t esz = d->o->kind == OQ_QOUT_Q8 ? 1 : 4;
    for (size_t k = 0; k < d->nch; k++) {
        const uint8_t *x = d->x + k * d->h * d->w;
        const int8_t *w4 = d->w4 + k * d->kh * 4;
        oq_qout o = *d->o;
        o.c = (char *)o.c + k * d->oh * d->ow * esz;
        for (size_t oy = 0; oy < d->oh; oy++)
            for (size_t ox = 0; ox < d->ow; ox++) {
                uint32_t acc = (uint32_t)d->bias[k];
                for (size_t ky = 0; ky < d->kh; ky++)
                    for (size_t kx = 0; kx < d->kw; kx++) {
                        size_t Y = oy * d->sh + ky * d->dh, X = ox * d->sw + kx * d->dw;
                        bool in = Y >= d->pt && Y - d->pt < d->h && X >= d->pl && X - d->pl < d->w;
                        uint8_t v = in ? x[(Y - d->pt) * d->w + X - d->pl] ^ fl : d->pad;
                        acc += (uint32_t)(v * (int32_t)w4[ky * 4 + kx]);
                    }
                dw_store1(&o, d->chan + k, oy * o.ldc + ox, (int32_t)acc);
            }
    }
}

const oq_qkern oq_qkern_ref = {
    .name = "8x16c4-ref",
    .isa = OQ_ISA_REF,
    .mr = REF_MR,
    .nr = REF_NR,
    .a_group_bytes = 4,
    .tile = ref_tile,
    .dw = ref_dw,
    .dw8 = ref_dw8,
};
