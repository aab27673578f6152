/* AVX-512 VNNI micro-kernels of the 8-bit product ("8x48c4-avx512vnni"):
 * tiles of up to 8 rows by 48 columns (3 zmm vectors of 16 int32 columns),
 * one vpdpbusd per row, vector and group of 4 k (exact: no intermediate
 * saturation), the output stage fused (zero-point terms, onnxruntime's
 * float requantization vectorised, or int32/float stores); and the direct
 * depthwise kernel (vpdpwssd on int32 lanes holding 16-bit values).
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; called only
 * when the CPU has them (qgemm.c). See qkern.h for the contract. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qgemm.h"
#include "qkern.h"

#define AI static inline __attribute__((always_inline))

enum { MR = 8, NV_MAX = 3 };

/* How far ahead (bytes, 64 groups of k) the packed left operand is
 * prefetched: a layer's weights come from L3 (resnet18's 7x7 layers: 2.4
 * MB each), at a pace the hardware prefetchers do not keep up with; 17%
 * faster there (512 x 63 x 4608, weights cold), no change on hot operands. */
enum { PF_A = 2048 };

/* The output stage's constants, in locals (stores through the output may
 * alias the oq_qout; the compiler would reload it after each). */
typedef struct outc {
    int kind;
    bool fixed, need_mult;
    __m512 lo, hi;
    __m512i zp;
    void *c;
    size_t ldc;
    int32_t zpi, qmin, qmax;
} outc;

AI outc outc_of(const oq_qout *o)
{
    outc q;
    q.kind = o->kind;
    q.fixed = o->kind == OQ_QOUT_Q8 && o->mode == OQ_REQUANT_FIXED;
    q.need_mult = o->kind == OQ_QOUT_F32 || (o->kind == OQ_QOUT_Q8 && !q.fixed);
    q.lo = _mm512_set1_ps((float)(o->qmin - o->zp));
    q.hi = _mm512_set1_ps((float)(o->qmax - o->zp));
    q.zp = _mm512_set1_epi32(o->zp);
    q.c = o->c;
    q.ldc = o->ldc;
    q.zpi = o->zp;
    q.qmin = o->qmin;
    q.qmax = o->qmax;
    return q;
}

static __attribute__((noinline)) void store_fixed(const outc *q, __m512i v, size_t at,
                                                  const oq_qfixed *fx, size_t fx_step, unsigned n)
{
    int32_t tmp[16];
    _mm512_storeu_si512(tmp, v);
    uint8_t *y = (uint8_t *)q->c + at;
    for (unsigned l = 0; l < n; l++)
        y[l] = (uint8_t)oq_requant_fixed1(tmp[l], fx[l * fx_step], q->zpi, q->qmin, q->qmax);
}

/* Writes 16 (n <= 16, mask k) values v at element offset at of the output,
 * with multipliers mult (float mode, F32) or fx[l * fx_step] (fixed mode). */
AI void store16(const outc *q, __m512i v, size_t at, __m512 mult, const oq_qfixed *fx,
                size_t fx_step, __mmask16 k, unsigned n)
{
    switch (q->kind) {
    case OQ_QOUT_I32:
        _mm512_mask_storeu_epi32((int32_t *)q->c + at, k, v);
        break;
    case OQ_QOUT_F32:
        _mm512_mask_storeu_ps((float *)q->c + at, k, _mm512_mul_ps(_mm512_cvtepi32_ps(v), mult));
        break;
    default:
        if (q->fixed) {
            store_fixed(q, v, at, fx, fx_step, n);
        } else {
            /* requant.h's float mode: multiply, clamp (MAXPS: a NaN gives the
             * low end), round half to even, add the zero point */
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), mult);
            f = _mm512_min_ps(_mm512_max_ps(f, q->lo), q->hi);
            __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(f), q->zp);
            _mm_mask_storeu_epi8((uint8_t *)q->c + at, k, _mm512_cvtepi32_epi8(r));
        }
    }
}

static inline __mmask16 lanes(size_t n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* The output stage of a tile whose sums are acc[r][v] (rows i0.., columns
 * j0..j0+nr): the channel's constants loaded once per row (conv) or per
 * vector of columns (matmul). */
AI void tile_out(const oq_qtile *t, const __m512i (*acc)[NV_MAX], const int MRV, const int NV)
{
    const oq_qout *o = t->o;
    const outc q = outc_of(o);
    size_t mr = t->mr < (size_t)MRV ? t->mr : (size_t)MRV;
    if (!o->chan_cols) {
        for (size_t r = 0; r < mr; r++) {
            size_t i = t->i0 + r;
            __m512i b = _mm512_set1_epi32(o->bias ? o->bias[i] : 0);
            int32_t z = o->zch ? o->zch[i] : 0;
            __m512 m = q.need_mult ? _mm512_set1_ps(o->mult[i]) : _mm512_setzero_ps();
            const oq_qfixed *fx = q.fixed ? o->fixed + i : NULL;
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) {
                size_t jv = (size_t)v * 16;
                if (jv >= t->nr)
                    break;
                size_t j = t->j0 + jv, n = t->nr - jv;
                __mmask16 k = lanes(n);
                __m512i a = _mm512_add_epi32(acc[r][v], b);
                if (z)
                    a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(z),
                                                               _mm512_maskz_loadu_epi32(k, o->sums + j)));
                store16(&q, a, i * q.ldc + j, m, fx, 0, k, n > 16 ? 16 : (unsigned)n);
            }
        }
    } else {
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            size_t jv = (size_t)v * 16;
            if (jv >= t->nr)
                break;
            size_t j = t->j0 + jv, n = t->nr - jv;
            __mmask16 k = lanes(n);
            __m512i b = o->bias ? _mm512_maskz_loadu_epi32(k, o->bias + j) : _mm512_setzero_si512();
            __m512i z = o->zch ? _mm512_maskz_loadu_epi32(k, o->zch + j) : _mm512_setzero_si512();
            __m512 m = q.need_mult ? _mm512_maskz_loadu_ps(k, o->mult + j) : _mm512_setzero_ps();
            const oq_qfixed *fx = q.fixed ? o->fixed + j : NULL;
            for (size_t r = 0; r < mr; r++) {
                size_t i = t->i0 + r;
                __m512i a = _mm512_add_epi32(acc[r][v], b);
                if (o->zch)
                    a = _mm512_sub_epi32(a, _mm512_mullo_epi32(z, _mm512_set1_epi32(o->sums[i])));
                store16(&q, a, i * q.ldc + j, m, fx, 1, k, n > 16 ? 16 : (unsigned)n);
            }
        }
    }
}

AI void tile_impl(const oq_qtile *t, const int MRV, const int NV, const bool VS)
{
    __m512i acc[MR][NV_MAX];
#pragma GCC unroll 8
    for (int r = 0; r < MRV; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_setzero_si512();
    const uint8_t *a = t->a, *b = t->b;
    const ptrdiff_t *off = t->boff;
    for (size_t kk = 0; kk < t->k4; kk++) {
        const uint8_t *bk = b + off[kk];
        const uint8_t *ak = a + kk * MR * 4;
        _mm_prefetch((const char *)(ak + PF_A), _MM_HINT_T0); /* a hint: never faults */
        if (kk + 16 < t->k4) { /* b, 16 groups ahead (weights, compacted columns) */
            const uint8_t *bp = b + off[kk + 16];
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(bp + 64 * v), _MM_HINT_T0);
        }
        __m512i bv[NV_MAX];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_loadu_si512(bk + 64 * v);
#pragma GCC unroll 8
        for (int r = 0; r < MRV; r++) {
            int32_t w;
            memcpy(&w, ak + 4 * r, 4);
            __m512i av = _mm512_set1_epi32(w);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[r][v] = VS ? _mm512_dpbusd_epi32(acc[r][v], av, bv[v])
                               : _mm512_dpbusd_epi32(acc[r][v], bv[v], av);
        }
    }
    /* through memory: the output stage then has every register */
    __m512i done[MR][NV_MAX];
#pragma GCC unroll 8
    for (int r = 0; r < MRV; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            _mm512_store_si512(&done[r][v], acc[r][v]);
    tile_out(t, (const __m512i(*)[NV_MAX])done, MRV, NV);
}

#define TILE_FN(MRV, NV, VS)                                                                \
    static __attribute__((noinline)) void tile_##MRV##_##NV##_##VS(const oq_qtile *t)       \
    {                                                                                       \
        tile_impl(t, MRV, NV, VS);                                                          \
    }
#define TILE_FNS_NV(MRV, VS) TILE_FN(MRV, 1, VS) TILE_FN(MRV, 2, VS) TILE_FN(MRV, 3, VS)
#define TILE_FNS(VS) TILE_FNS_NV(8, VS) TILE_FNS_NV(4, VS) TILE_FNS_NV(2, VS) TILE_FNS_NV(1, VS)
TILE_FNS(0)
TILE_FNS(1)

typedef void (*tile_fn)(const oq_qtile *);
#define ROW(MRV, VS) {tile_##MRV##_1_##VS, tile_##MRV##_2_##VS, tile_##MRV##_3_##VS}
static const tile_fn tiles[2][4][3] = {
    {ROW(1, 0), ROW(2, 0), ROW(4, 0), ROW(8, 0)},
    {ROW(1, 1), ROW(2, 1), ROW(4, 1), ROW(8, 1)},
};

static void vnni_tile(const oq_qtile *t)
{
    int mi = t->mr > 4 ? 3 : t->mr > 2 ? 2 : t->mr > 1 ? 1 : 0;
    int nv = (int)((t->nr + 15) / 16);
    tiles[t->vec_signed][mi][nv - 1](t);
}

/* ---- depthwise ---- */

/* 16 bytes as int32 lanes (high halves zero: vpdpwssd multiplies the low
 * halves, each product exact). */
AI __m512i ld16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* Stores 16 lanes (n of them valid) of output row oy from column ox. */
AI void dw_store(const outc *q, __m512i acc, size_t oy, size_t ox, size_t ow, __m512 mult,
                 const oq_qfixed *fx)
{
    if (ox >= ow)
        return;
    unsigned n = ow - ox >= 16 ? 16 : (unsigned)(ow - ox);
    store16(q, acc, oy * q->ldc + ox, mult, fx, 0, lanes(n), n);
}

/* R output rows from oy by NV vectors of 16 columns from ox: R * NV
 * independent chains of vpdpwssd (one per tap each). */
AI void dw_block(const oq_qdw *d, const outc *q, size_t oy, size_t ox, const __m512i *wv,
                 const size_t *toff, size_t taps, __m512 mult, const oq_qfixed *fx, const int R,
                 const int NV)
{
    const uint8_t *base[4];
    __m512i acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        size_t y = oy + (size_t)r < d->oh ? oy + (size_t)r : d->oh - 1;
        base[r] = d->planes + y * d->sh * d->pw + ox;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_set1_epi32(d->bias);
    }
    for (size_t tp = 0; tp < taps; tp++) {
        __m512i w = wv[tp];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_dpwssd_epi32(acc[r][v], ld16(base[r] + toff[tp] + 16 * v), w);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        if (oy + (size_t)r >= d->oh)
            break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            dw_store(q, acc[r][v], oy + (size_t)r, ox + 16 * (size_t)v, d->ow, mult, fx);
    }
}

static void vnni_dw(const oq_qdw *d)
{
    const oq_qout *o = d->o;
    const outc q = outc_of(o);
    __m512 mult = q.need_mult ? _mm512_set1_ps(o->mult[d->chan]) : _mm512_setzero_ps();
    const oq_qfixed *fx = q.fixed ? o->fixed + d->chan : NULL;
    size_t taps = d->kh * d->kw;
    if (taps <= 64) {
        __m512i wv[64];
        size_t toff[64];
        for (size_t ky = 0, tp = 0; ky < d->kh; ky++)
            for (size_t kx = 0; kx < d->kw; kx++, tp++) {
                size_t cx = kx * d->dw;
                wv[tp] = _mm512_set1_epi32(d->w[tp] & 0xffff);
                toff[tp] = ((cx % d->sw) * d->ph + ky * d->dh) * d->pw + cx / d->sw;
            }
        /* four chains per block, whatever the row width */
        if (d->ow > 32) {
            for (size_t oy = 0; oy < d->oh; oy++)
                for (size_t ox = 0; ox < d->ow; ox += 64)
                    dw_block(d, &q, oy, ox, wv, toff, taps, mult, fx, 1, 4);
        } else if (d->ow > 16) {
            for (size_t oy = 0; oy < d->oh; oy += 2)
                dw_block(d, &q, oy, 0, wv, toff, taps, mult, fx, 2, 2);
        } else {
            for (size_t oy = 0; oy < d->oh; oy += 4)
                dw_block(d, &q, oy, 0, wv, toff, taps, mult, fx, 4, 1);
        }
        return;
    }
    for (size_t oy = 0; oy < d->oh; oy++) {
        const uint8_t *base = d->planes + oy * d->sh * d->pw;
        for (size_t ox = 0; ox < d->ow; ox += 32) {
            __m512i acc0 = _mm512_set1_epi32(d->bias), acc1 = acc0;
            for (size_t ky = 0; ky < d->kh; ky++)
                for (size_t kx = 0; kx < d->kw; kx++) {
                    size_t cx = kx * d->dw;
                    const uint8_t *p =
                        base + ((cx % d->sw) * d->ph + ky * d->dh) * d->pw + cx / d->sw + ox;
                    __m512i w = _mm512_set1_epi32(d->w[ky * d->kw + kx] & 0xffff);
                    acc0 = _mm512_dpwssd_epi32(acc0, ld16(p), w);
                    acc1 = _mm512_dpwssd_epi32(acc1, ld16(p + 16), w);
                }
            dw_store(&q, acc0, oy, ox, d->ow, mult, fx);
            dw_store(&q, acc1, oy, ox + 16, d->ow, mult, fx);
        }
    }
}

/* ---- depthwise straight from the image, int8 taps (oq_qdw8) ---- */

/* What a call shares, then what one channel has. */
typedef struct dw8c {
    __m512i idx, ctl, pad, flip;
    __m512i wq[16];     /* kernel row ky's 4 taps, broadcast */
    const uint8_t *x;   /* the channel's image */
    __m512i bias;
    __m512 mult;
    const oq_qfixed *fx;
} dw8c;

/* The 4 input bytes of each of 16 outputs (output ox0 + l in lane l): the
 * 64 bytes of padded row from column c0 (mask: the bytes inside the image
 * row; full: all of them), dwords moved so that each 128-bit lane starts at
 * its first output's bytes (vpermd), then the bytes of each output picked
 * within the lane (vpshufb). */
AI __m512i dw8_window(const dw8c *k, const uint8_t *row, ptrdiff_t c0, __mmask64 m, bool full,
                      const bool FLIP)
{
    const void *at = (const void *)((uintptr_t)row + (uintptr_t)c0);
    __m512i v = full ? _mm512_loadu_si512(at)
                     : _mm512_mask_loadu_epi8(FLIP ? _mm512_xor_si512(k->pad, k->flip) : k->pad,
                                              m, at);
    if (FLIP)
        v = _mm512_xor_si512(v, k->flip);
    return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(k->idx, v), k->ctl);
}

/* R output rows from oy (those below oh stored), 16 columns from ox0 (n of
 * them stored): input rows shared between output rows (R > 1 needs dh ==
 * 1). KH, SH: kh and sh when known at compile time (0: read from d). */
AI void dw8_rows(const oq_qdw8 *d, const dw8c *k, const outc *q, size_t oy, size_t ox0,
                 unsigned n, __mmask64 m, bool full, const int R, const int KH, const int SH,
                 const bool FLIP)
{
    const size_t kh = KH ? (size_t)KH : d->kh, sh = SH ? (size_t)SH : d->sh;
    __m512i acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r] = k->bias;
    size_t rows = R == 1 ? kh : (size_t)(R - 1) * sh + kh;
    size_t step = R == 1 ? d->dh : 1;
    ptrdiff_t c0 = (ptrdiff_t)(ox0 * d->sw) - (ptrdiff_t)d->pl;
#pragma GCC unroll 9
    for (size_t j = 0; j < rows; j++) {
        size_t Y = oy * sh + j * step; /* padded row */
        __m512i v = k->pad;
        if (Y >= d->pt && Y - d->pt < d->h)
            v = dw8_window(k, k->x + (Y - d->pt) * d->w, c0, m, full, FLIP);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            size_t ky = R == 1 ? j : j - (size_t)r * sh; /* wraps when negative */
            if (ky < kh)
                acc[r] = _mm512_dpbusd_epi32(acc[r], v, k->wq[ky]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        if (oy + (size_t)r < d->oh)
            store16(q, acc[r], (oy + (size_t)r) * q->ldc + ox0, k->mult, k->fx, 0, lanes(n), n);
}

/* The loads of the block of 16 outputs from ox0: mask of the bytes inside
 * the row (0 when none) and whether all 64 are. */
static __mmask64 dw8_mask(const oq_qdw8 *d, size_t ox0, bool *full)
{
    ptrdiff_t c0 = (ptrdiff_t)(ox0 * d->sw) - (ptrdiff_t)d->pl, w = (ptrdiff_t)d->w;
    ptrdiff_t lo = c0 < 0 ? -c0 : 0, hi = w - c0 < 64 ? w - c0 : 64;
    *full = lo == 0 && hi == 64;
    if (hi <= lo)
        return 0;
    __mmask64 top = hi == 64 ? ~(__mmask64)0 : ((__mmask64)1 << hi) - 1;
    return top & ~(((__mmask64)1 << lo) - 1);
}

AI void dw8_plane(const oq_qdw8 *d, const dw8c *k, const outc *q, const bool FLIP)
{
    for (size_t ox0 = 0; ox0 < d->ow; ox0 += 16) {
        unsigned n = d->ow - ox0 >= 16 ? 16 : (unsigned)(d->ow - ox0);
        bool full;
        __mmask64 m = dw8_mask(d, ox0, &full);
        bool k3 = d->kh == 3 && d->dh == 1; /* 3x3: unrolled for strides 1 and 2 */
        if (k3 && d->sh == 1)
            for (size_t oy = 0; oy < d->oh; oy += 4)
                dw8_rows(d, k, q, oy, ox0, n, m, full, 4, 3, 1, FLIP);
        else if (k3 && d->sh == 2)
            for (size_t oy = 0; oy < d->oh; oy += 4)
                dw8_rows(d, k, q, oy, ox0, n, m, full, 4, 3, 2, FLIP);
        else if (d->dh == 1)
            for (size_t oy = 0; oy < d->oh; oy += 4)
                dw8_rows(d, k, q, oy, ox0, n, m, full, 4, 0, 0, FLIP);
        else
            for (size_t oy = 0; oy < d->oh; oy++)
                dw8_rows(d, k, q, oy, ox0, n, m, full, 1, 0, 0, FLIP);
    }
}

/* The shuffles: lane group g (outputs 4g..4g+3) starts at dword g * sw;
 * byte 4j + kx of the group is output j's tap kx (zero past kw). */
static void dw8_setup(const oq_qdw8 *d, dw8c *k)
{
    int32_t idx[16];
    int8_t ctl[64];
    for (int l = 0; l < 16; l++)
        idx[l] = (int32_t)((size_t)(l / 4) * d->sw + (size_t)(l % 4));
    for (int b = 0; b < 64; b++) {
        size_t j = (size_t)(b % 16) / 4, kx = (size_t)b % 4;
        ctl[b] = kx < d->kw ? (int8_t)(j * d->sw + kx * d->dw) : (int8_t)-128;
    }
    k->idx = _mm512_loadu_si512(idx);
    k->ctl = _mm512_loadu_si512(ctl);
    k->pad = _mm512_set1_epi8((char)d->pad);
    k->flip = _mm512_set1_epi8((char)0x80);
}

static void vnni_dw8(const oq_qdw8 *d)
{
    const oq_qout *o = d->o;
    outc q = outc_of(o);
    size_t esz = o->kind == OQ_QOUT_Q8 ? 1 : 4, plane = d->oh * d->ow;
    dw8c k;
    dw8_setup(d, &k);
    for (size_t c = 0; c < d->nch; c++) {
        size_t ch = d->chan + c;
        for (size_t ky = 0; ky < d->kh; ky++) {
            int32_t w;
            memcpy(&w, d->w4 + (c * d->kh + ky) * 4, 4);
            k.wq[ky] = _mm512_set1_epi32(w);
        }
        k.x = d->x + c * d->h * d->w;
        k.bias = _mm512_set1_epi32(d->bias[c]);
        k.mult = q.need_mult ? _mm512_set1_ps(o->mult[ch]) : _mm512_setzero_ps();
        k.fx = q.fixed ? o->fixed + ch : NULL;
        q.c = (char *)o->c + c * plane * esz;
        if (d->flip)
            dw8_plane(d, &k, &q, true);
        else
            dw8_plane(d, &k, &q, false);
    }
}

const oq_qkern oq_qkern_avx512vnni = {
    .name = "8x48c4-avx512vnni",
    .isa = OQ_ISA_AVX512VNNI,
    .mr = MR,
    .nr = 16 * NV_MAX,
    .a_group_bytes = 4,
    .tile = vnni_tile,
    .dw = vnni_dw,
    .dw8 = vnni_dw8,
};
