/* Float32 matrix product with packed operands (sgemm.c), the engine behind
 * Conv, ConvTranspose, Gemm and MatMul.
 *
 * C[M][N] (row-major, ldc) = alpha * A B + beta * C + bias[row], then
 * optionally clamped (a fused Relu or Clip), where A is M x K and B is K x N;
 * or the same stored transposed (C^T). The work is cut into
 * tiles of MR rows by NR columns computed by an ISA micro-kernel from packed
 * operands:
 *   - A packed: panels of MR rows; panel p holds K steps of MR floats,
 *     element (i, kk) of the panel at [kk * MR + i] (rows past M are zero);
 *     panel p starts at p * MR * K, so any range of K is one contiguous slice;
 *   - B packed: panels of NR columns; panel q holds K steps of NR floats,
 *     element (kk, j) at [kk * NR + j] (columns past N are zero).
 * Either operand can be packed once (the constant weights: Conv's A, or B
 * in its transposed product; Gemm's and MatMul's B) and reused by every run;
 * the other is packed per call by the driver, B one cache block at a time
 * (K x N blocks of at most KC x NC) straight from its source: a matrix
 * (either orientation) or the images of a convolution, the im2col gather
 * folded into the packing (A: whole, from a matrix or, transposed, from the
 * images of a convolution).
 *
 * Micro-kernels (one file per ISA, each compiled with its own flags):
 *   "4x16-ref"     portable C loops (sgemm_ref.c), the reference;
 *   "6x16-avx2"    AVX2 + FMA, ymm (sgemm_avx2.c);
 *   "14x32-avx512" AVX-512F, zmm (sgemm_avx512.c).
 * Picked at run time by cpuid, under the ceiling ONNXQ_ISA sets (isa.h).
 * Results differ from the reference only by the order of float additions. */
#ifndef ONNXQ_SGEMM_H
#define ONNXQ_SGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

typedef enum oq_sgemm_isa {
    OQ_SGEMM_REF,
    OQ_SGEMM_AVX2,
    OQ_SGEMM_AVX512,
    OQ_SGEMM_ISA_COUNT
} oq_sgemm_isa;

/* An activation fused into the product's store: min(max(C, lo), hi) (Relu:
 * lo 0, hi +inf; Clip: its bounds). */
typedef struct oq_sgemm_act {
    float lo, hi;
} oq_sgemm_act;

/* What a tile does after the product: C = alpha * acc + (load_c ? C : 0) +
 * (bias ? bias[i] : 0) for row i of the tile, then min(max(C, lo), hi) when
 * clamp. trans: the tile is stored transposed, element (i, j) at
 * c[j * ldc + i], and the bias is per column (bias[j]). */
typedef struct oq_sgemm_epi {
    float alpha;
    bool load_c;
    bool clamp;
    bool trans;
    float lo, hi;
    const float *bias; /* the tile's first row's (trans: column's) bias, or NULL */
} oq_sgemm_epi;

/* One tile: rows [0, m) and columns [0, n) of C (m <= MR, n <= NR, both >= 1)
 * from k steps of packed A (a: MR floats a step, the first m read) and packed
 * B (b: NR floats a step, 64-byte aligned). k may be 0 (then acc is 0). */
typedef void (*oq_sgemm_tile_fn)(size_t k, const float *a, const float *b, float *c,
                                 size_t ldc, size_t m, size_t n, const oq_sgemm_epi *ep);

/* The right operand of a convolution (see oq_sgemm_b below). */
typedef struct oq_sgemm_conv {
    const oq_conv_geom *g;
    int64_t channels, n_img, img_stride;
} oq_sgemm_conv;

/* Packers of a block of B: rows [k0, k0 + kc) and columns [j0, j0 + n) into
 * ceil(n / nr) panels of kc steps of nr floats, panel q at dst + q * ps
 * (ps >= kc * nr; dst and ps * 4 bytes 64-byte aligned when nr is a multiple
 * of 16), zeros past column n. The conv packer also takes nr below 16 (a
 * column matrix packed as the left operand: nr = MR, ps = MR * K).
 * From a row-major matrix b (row kk at b + kk * ldb): */
typedef void (*oq_sgemm_pack_rows_fn)(int nr, const float *b, int64_t ldb, int64_t k0,
                                      int64_t kc, int64_t j0, int64_t n, float *dst,
                                      size_t ps);
/* The images of a 1-D or 2-D convolution copied with their zero padding made
 * explicit (by the driver, once per call): every position a column reads is
 * inside. Channel c of image i at x + (i * channels + c) * plane, row r at
 * + r * w: padded row r is image row r - pad[0], padded column q is image
 * column q - pad[last]. The geometry is seen as 2-D (1-D: height 1). */
typedef struct oq_sgemm_padded {
    const float *x;
    int64_t channels, plane, h, w;
    int64_t oh, ow, kh, kw, sh, sw, dh, dw;
} oq_sgemm_padded;

/* Floats of the padded images of a 1-D or 2-D convolution, and the copy
 * (spread over up to threads OpenMP threads) of x's images into buf. */
size_t oq_sgemm_padded_floats(const oq_sgemm_conv *cv);
void oq_sgemm_pad(const oq_sgemm_conv *cv, const float *x, float *buf, oq_sgemm_padded *pd,
                  int threads);

/* From the column matrix of a convolution (im2col), read from its padded
 * images: */
typedef void (*oq_sgemm_pack_conv_fn)(int nr, const oq_sgemm_padded *pd, int64_t k0,
                                      int64_t kc, int64_t j0, int64_t n, float *dst, size_t ps);

/* The portable packers (the reference for the ISA ones). */
void oq_sgemm_pack_rows_ref(int nr, const float *b, int64_t ldb, int64_t k0, int64_t kc,
                            int64_t j0, int64_t n, float *dst, size_t ps);
void oq_sgemm_pack_conv_ref(int nr, const oq_sgemm_conv *cv, const float *x, int64_t k0,
                            int64_t kc, int64_t j0, int64_t n, float *dst, size_t ps);

typedef struct oq_sgemm_kern {
    const char *name; /* "14x32-avx512" */
    oq_sgemm_isa isa;
    int mr, nr;
    int kc;           /* K block: MR x KC of A stays in L1 */
    int nc;           /* N block: KC x NC of packed B stays in L2 */
    oq_sgemm_tile_fn tile;
    /* the ISA's packers (NULL: the portable ones, whose results they match) */
    oq_sgemm_pack_rows_fn pack_rows;
    oq_sgemm_pack_conv_fn pack_conv; /* 1-D and 2-D convolutions */
} oq_sgemm_kern;

extern const oq_sgemm_kern oq_sgemm_kern_ref;
#ifdef OQ_HAVE_SGEMM_AVX2
extern const oq_sgemm_kern oq_sgemm_kern_avx2;
#endif
#ifdef OQ_HAVE_SGEMM_AVX512
extern const oq_sgemm_kern oq_sgemm_kern_avx512;
#endif

/* "ref", "avx2", "avx512". */
const char *oq_sgemm_isa_name(oq_sgemm_isa isa);
/* The kernel of isa, or NULL when this build or this CPU lacks it. */
const oq_sgemm_kern *oq_sgemm_kern_for(oq_sgemm_isa isa);
/* The kernel to use: the fastest this CPU runs at or below the ceiling
 * ONNXQ_ISA sets (isa.h). NULL, with *err saying why, when ONNXQ_ISA names
 * something unknown or this CPU lacks it. */
const oq_sgemm_kern *oq_sgemm_kern_select(const char **err);
/* oq_sgemm_kern_select, or the fastest kernel when ONNXQ_ISA is bad (for
 * callers that cannot fail; operators check oq_sgemm_kern_select in prepare). */
const oq_sgemm_kern *oq_sgemm_kern_default(void);

/* ---- packing ---- */

/* Floats of A packed for m rows (B packed for n columns) and depth k. */
size_t oq_sgemm_packed_a_floats(const oq_sgemm_kern *kern, int64_t m, int64_t k);
size_t oq_sgemm_packed_b_floats(const oq_sgemm_kern *kern, int64_t n, int64_t k);
/* Packs A (m x k; element (i, kk) at a[ta ? kk * lda + i : i * lda + kk])
 * into dst (oq_sgemm_packed_a_floats floats, 64-byte aligned). */
void oq_sgemm_pack_a(const oq_sgemm_kern *kern, bool ta, int64_t m, int64_t k, const float *a,
                     int64_t lda, float *dst);
/* Packs B (k x n; element (kk, j) at b[tb ? j * ldb + kk : kk * ldb + j]). */
void oq_sgemm_pack_b(const oq_sgemm_kern *kern, bool tb, int64_t n, int64_t k, const float *b,
                     int64_t ldb, float *dst);

/* A 64-byte aligned allocation of n floats (free with free()); NULL when out
 * of memory. */
float *oq_sgemm_alloc(size_t n);

/* ---- operands ---- */

/* The left operand, M x K: packed (by oq_sgemm_pack_a for this kernel, with
 * the same M and K), a matrix, or the transposed column matrix of a
 * convolution (conv set, images at p; see oq_sgemm_b): row i is output
 * position i, column kk is row kk of the column matrix. */
typedef struct oq_sgemm_a {
    const float *packed;
    const float *p;
    int64_t ld;
    bool trans;
    const oq_sgemm_conv *conv;
} oq_sgemm_a;

/* The right operand, K x N: packed, a matrix, or the column matrix of a
 * convolution: with conv set, B = im2col of images of conv->channels
 * channels (K = channels * k_size) side by side (N = n_img * out_size):
 * image i starts at p + i * img_stride. */
typedef struct oq_sgemm_b {
    const float *packed;
    const float *p;
    int64_t ld;
    bool trans;
    const oq_sgemm_conv *conv;
} oq_sgemm_b;

/* C = act(alpha * A B + beta * C + bias) (act may be NULL), with C [m][n]
 * rows ldc apart, or with trans_c C^T = act(alpha * A B + beta * C^T + bias),
 * C [n][m] (the product stored transposed: a convolution's output, computed
 * with its output positions as rows); the bias (may be NULL) is per row of C
 * either way. Split over up to threads OpenMP threads; not to be called from
 * inside a parallel region. beta 0 does not read C. At most one operand may
 * be a convolution. False when out of memory (for the per-thread packing
 * buffers, kept from call to call). */
bool oq_sgemm_run(const oq_sgemm_kern *kern, int64_t m, int64_t n, int64_t k, float alpha,
                  const oq_sgemm_a *a, const oq_sgemm_b *b, float beta, float *c, int64_t ldc,
                  bool trans_c, const float *bias, const oq_sgemm_act *act, int threads);

/* The plain reference: C = act(alpha * op(A) op(B) + beta * C (+ bias))
 * with one float accumulator per element, in order (used by tests). */
void oq_sgemm_naive(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc, const float *bias, const oq_sgemm_act *act);

#endif
