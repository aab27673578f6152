/* The 8-bit GEMM micro-kernels and their contract: what the driver
 * (qgemm.c) hands to a kernel of one ISA (qgemm.c for the portable C one,
 * qgemm_avx2.c, qgemm_avx512vnni.c). Internal to the runtime.
 *
 * A kernel multiplies a packed left operand (rows, "A") with a right
 * operand (columns, "B") in groups of 4 consecutive k (the c4 of the names):
 *
 *   acc[i][j] = sum over kk < k4, t < 4 of A(i, 4kk+t) * B(4kk+t, j)
 *
 * exactly in int32 (wrapping), then turns acc into outputs (oq_qout). One
 * of the operands is uint8 and the other int8 (the product instruction of
 * VNNI, vpdpbusd, multiplies unsigned with signed bytes); the drivers bring
 * other combinations there by flipping the top bit of one operand (x ^ 0x80
 * is x + 128 as uint8 for an int8 x, x - 128 as int8 for a uint8 x) and
 * moving its zero point by 128 the same way: sum (x - zx)(w - zw) is then
 * unchanged, and so are the outputs.
 *
 * Two arrangements, one per operator family:
 *   conv   (vec_signed false): B is uint8 activations, A int8 weights; the
 *          output channel is the row i, the position (pixel) the column j.
 *   matmul (vec_signed true): B is int8 weights, A uint8 activations; the
 *          output channel is the column j, the row i a row of the product.
 *
 * Memory layouts:
 *   A, packed (oq_qpack_left): tiles of kern->mr rows; tile T, group kk, row
 *     r at ((T * k4 + kk) * mr + r) * kern->a_group_bytes. A group is the
 *     4 bytes A(i, 4kk..4kk+3) (a_group_bytes 4), or for kernels that widen
 *     to 16 bits (AVX2, a_group_bytes 8) the int16 values of k 0, 2, 1, 3.
 *     Rows past the matrix and k past K are zero.
 *   B: 4 bytes per (group, column): B(4kk+t, j) at b + boff[kk] + 4j + t.
 *     Kernels read whole vectors of 16 columns: the bytes up to the next
 *     multiple of 16 columns must be readable (their values do not matter
 *     where A is zero and the columns are not stored). */
#ifndef ONNXQ_QKERN_H
#define ONNXQ_QKERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/runtime.h"
#include "requant.h"

/* What a kernel writes. */
enum { OQ_QOUT_I32, OQ_QOUT_Q8, OQ_QOUT_F32 };

/* The output stage: v = acc + bias[ch] - zch[ch] * sums[other], then
 *   I32  v as int32;
 *   Q8   v requantized with mult[ch] (float mode, oq_requant_float1) or
 *        fixed[ch] (fixed mode), zero point zp, range [qmin, qmax], one byte;
 *   F32  (float)v * mult[ch].
 * ch is the row (chan_cols false) or the column (true); other the other
 * index. Element (i, j) goes to c + i * ldc + j (elements of the kind). */
typedef struct oq_qout {
    int kind;               /* OQ_QOUT_... */
    int mode;               /* OQ_REQUANT_FLOAT or OQ_REQUANT_FIXED (Q8) */
    bool chan_cols;
    const int32_t *bias;    /* per channel, or NULL */
    const int32_t *zch;     /* per channel, or NULL (then sums unused) */
    const int32_t *sums;    /* per other index */
    const float *mult;      /* per channel (Q8 float mode, F32) */
    const oq_qfixed *fixed; /* per channel (Q8 fixed mode) */
    int32_t zp, qmin, qmax;
    void *c;
    size_t ldc;
} oq_qout;

/* One call of a kernel: rows i0..i0+mr, columns j0..j0+nr. */
typedef struct oq_qtile {
    size_t k4;
    const void *a;         /* the packed tile of rows i0.. */
    const uint8_t *b;      /* column j0 of B */
    const ptrdiff_t *boff; /* k4 offsets */
    size_t mr, nr;         /* 1..kern->mr, 1..kern->nr */
    size_t i0, j0;
    bool vec_signed;       /* matmul arrangement (see above) */
    const oq_qout *o;
} oq_qtile;

/* Direct depthwise convolution of one channel (2-D; 1-D as one row).
 * planes: sw column phases of the padded image as uint8 (an int8 image has
 * its top bit flipped), padded with the (flipped) zero point zx: phase p,
 * row r, column X at planes[(p * ph + r) * pw + X] holds padded image
 * column X * sw + p. With w = w - zw of the kernel taps (int32,
 * |w| < 2^15) and bias = B - zx * sum(w):
 *   acc(oy, ox) = bias + sum over ky, kx of w[ky * kw + kx] *
 *       planes[((kx*dw % sw) * ph + oy*sh + ky*dh) * pw + ox + kx*dw / sw]
 * which is B + sum (x - zx)(w - zw). Output row oy, column ox through out
 * (rows ldc apart; chan is the channel index into the output stage's
 * arrays). Kernels read whole vectors: 64 bytes past the planes' end must be
 * readable. */
typedef struct oq_qdw {
    const uint8_t *planes;
    size_t ph, pw;
    const int32_t *w;
    int32_t bias;
    size_t oh, ow, kh, kw, sh, sw, dh, dw;
    size_t chan;
    const oq_qout *o; /* c: this channel's output plane; zch NULL */
} oq_qdw;

/* Direct depthwise convolution of nch channels straight from their images
 * (no planes) with taps that fit int8 and at most 4 kernel columns: each
 * kernel row is one group of 4 bytes, so one vpdpbusd per kernel row and
 * 16 outputs (the 4 input bytes of each output gathered by shuffles). The
 * padded image of channel k: column X of row Y is x[k][Y - pt][X - pl] ^
 * flip inside the image (h x w bytes, images h * w apart), pad (the flipped
 * zero point zx) outside. With w4[k][ky * 4 + kx] = w - zw of tap (ky, kx)
 * (kx < kw; the rest zero; channels kh * 4 apart) and bias[k] = B - zx *
 * sum(w - zw):
 *   acc(k, oy, ox) = bias[k] + sum over ky, kx of w4[k][ky * 4 + kx] *
 *       padded(k)[oy*sh + ky*dh][ox*sw + kx*dw]
 * through out: channel k is chan + k in the output stage's arrays, its
 * plane oh * ow elements after the previous one (rows ow apart: ldc = ow).
 * Reads nothing outside the images. oq_qdw8_fits tells which geometries the
 * kernels take. */
typedef struct oq_qdw8 {
    const uint8_t *x;
    size_t h, w;
    bool flip;
    uint8_t pad;
    const int8_t *w4;
    const int32_t *bias;
    size_t nch;
    size_t oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
    size_t chan;
    const oq_qout *o; /* c: the first channel's output plane; zch NULL */
} oq_qdw8;

/* The 4 outputs of a 128-bit lane read at most 16 consecutive bytes, 16
 * outputs at most 64. */
static inline bool oq_qdw8_fits(size_t kh, size_t kw, size_t sw, size_t dw)
{
    return kh >= 1 && kh <= 16 && kw >= 1 && kw <= 4 && sw <= 4 && 3 * sw + (kw - 1) * dw <= 15;
}

typedef struct oq_qkern {
    const char *name;      /* tile shape and ISA, e.g. "8x48c4-avx512vnni" */
    int isa;               /* oq_isa */
    size_t mr, nr;         /* rows per tile; most columns per call (x16) */
    size_t a_group_bytes;  /* 4 or 8 (see above) */
    void (*tile)(const oq_qtile *t);
    void (*dw)(const oq_qdw *d);
    void (*dw8)(const oq_qdw8 *d); /* NULL: this ISA has none (use dw) */
} oq_qkern;

extern const oq_qkern oq_qkern_ref;
#ifdef OQ_HAVE_AVX2
extern const oq_qkern oq_qkern_avx2;
#endif
#ifdef OQ_HAVE_AVX512VNNI
extern const oq_qkern oq_qkern_avx512vnni;
#endif

/* The scalar output stage (shared by every kernel for tails and the fixed
 * mode): v already has bias and zero-point terms; writes element (i, j). */
static inline void oq_qout_store1(const oq_qout *o, size_t i, size_t j, int32_t v)
{
    size_t ch = o->chan_cols ? j : i, at = i * o->ldc + j;
    switch (o->kind) {
    case OQ_QOUT_I32:
        ((int32_t *)o->c)[at] = v;
        break;
    case OQ_QOUT_F32:
        ((float *)o->c)[at] = (float)v * o->mult[ch];
        break;
    default:
        ((uint8_t *)o->c)[at] =
            (uint8_t)(o->mode == OQ_REQUANT_FIXED
                          ? oq_requant_fixed1(v, o->fixed[ch], o->zp, o->qmin, o->qmax)
                          : oq_requant_float1(v, o->mult[ch], o->zp, o->qmin, o->qmax));
    }
}

/* v = acc + bias[ch] - zch[ch] * sums[other] (wrapping). */
static inline int32_t oq_qout_fix1(const oq_qout *o, size_t i, size_t j, int32_t acc)
{
    size_t ch = o->chan_cols ? j : i, other = o->chan_cols ? i : j;
    uint32_t v = (uint32_t)acc;
    if (o->bias)
        v += (uint32_t)o->bias[ch];
    if (o->zch)
        v -= (uint32_t)o->zch[ch] * (uint32_t)o->sums[other];
    return (int32_t)v;
}

#endif
