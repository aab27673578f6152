/* 8-bit integer kernels of the quantized operators (QLinearConv,
 * QLinearMatMul, MatMulInteger, ConvInteger, QGemm): products accumulated
 * in int32, the sums the zero-point terms need, and im2col for 8-bit
 * images. The first part holds the portable reference versions
 * (straightforward loops, qgemm_ref.c); the tests compare the fast path
 * (second part: packed operands and per-ISA micro-kernels) with them.
 *
 * The zero points are not part of the product: with weights w (zero point
 * zw) and activations x (zero point zx) over K terms,
 *   sum (x - zx)(w - zw) = sum x*w - zw*sum x - zx*sum w + K*zx*zw,
 * so the operators fold -zx*sum w + K*zx*zw (+ bias) into one int32 per
 * output channel once, and add -zw*sum x from the activation sums only
 * where zw != 0 (oq_qfixup_*). All int32 arithmetic wraps modulo 2^32 (as
 * onnxruntime's does), never undefined behaviour. */
#ifndef ONNXQ_QGEMM_H
#define ONNXQ_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* A matrix of 8-bit values: rows ld elements apart. */
typedef struct oq_qmat {
    const void *data;
    size_t ld;
    bool is_signed; /* int8 (true) or uint8 */
} oq_qmat;

/* c[i][j] = sum over k of a[i][k] * b[k][j], for an M x K a and a K x N b;
 * rows of c ldc apart. */
void oq_qgemm_ref(size_t M, size_t N, size_t K, oq_qmat a, oq_qmat b, int32_t *c, size_t ldc);

/* sum[i] = sum over k of a[i][k] (M x K). */
void oq_qrowsum_ref(size_t M, size_t K, oq_qmat a, int32_t *sum);
/* sum[j] = sum over k of b[k][j] (K x N). */
void oq_qcolsum_ref(size_t K, size_t N, oq_qmat b, int32_t *sum);

/* Weights on the left (convolution, one output channel per row):
 *   c[i][j] += bias[i] - zrow[i] * colsum[j]
 * bias NULL: no bias; zrow NULL: no zero-point term (colsum unused). */
void oq_qfixup_rows_ref(size_t M, size_t N, int32_t *c, size_t ldc, const int32_t *bias,
                        const int32_t *zrow, const int32_t *colsum);

/* Weights on the right (matrix products, one output channel per column):
 *   c[i][j] += bias[j] - zcol[j] * rowsum[i] - zrow[i] * colsum[j]
 *              + K * zrow[i] * zcol[j]
 * Each of bias, zcol (with rowsum), zrow (with colsum) may be NULL when the
 * term is absent (zrow is a per-row zero point of the left operand; a
 * per-tensor one is better folded into bias). */
void oq_qfixup_cols_ref(size_t M, size_t N, size_t K, int32_t *c, size_t ldc,
                        const int32_t *bias, const int32_t *zcol, const int32_t *rowsum,
                        const int32_t *zrow, const int32_t *colsum);

/* im2col of an 8-bit image x ([channels][in...]): row (c, k...) of col, ld
 * apart, holds x[c][o*stride - pad + k*dil] for every output position o,
 * and pad (the input zero point) outside the image. */
void oq_qim2col_ref(const oq_conv_geom *g, int64_t channels, const uint8_t *x, uint8_t pad,
                    uint8_t *col, size_t ld);

/* dst[j][i] = src[i][j] for a rows x cols matrix of bytes. */
void oq_qtranspose_ref(size_t rows, size_t cols, const uint8_t *src, size_t lds, uint8_t *dst,
                       size_t ldd);

/* ---- the fast path: packed operands and ISA micro-kernels (qgemm.c) ----
 *
 * The contract of the micro-kernels and the memory layouts are in qkern.h.
 * Each ISA's kernels are in a file of their own compiled with that ISA's
 * flags; oq_qkern_select picks one at run time. Every kernel gives the same
 * outputs as the reference loops above, bit for bit (tests/test_qgemm_simd.c). */

typedef enum oq_isa { OQ_ISA_REF, OQ_ISA_AVX2, OQ_ISA_AVX512VNNI, OQ_ISA_COUNT } oq_isa;

struct oq_qkern;
struct oq_qout;

/* "ref", "avx2", "avx512vnni". */
const char *oq_isa_name(oq_isa isa);
/* The kernels of isa, or NULL when this build or this CPU lacks them. */
const struct oq_qkern *oq_qkern_for(oq_isa isa);
/* The kernels to use: the fastest this CPU runs at or below the ceiling
 * ONNXQ_ISA sets (isa.h: ref, avx2, avx512, avx512vnni; avx512 gives the
 * avx2 kernels, there being no int8 kernel for AVX-512 without VNNI). NULL,
 * with *err describing why, when ONNXQ_ISA names an unknown level or one this
 * CPU lacks. */
const struct oq_qkern *oq_qkern_select(const char **err);

/* Bytes of a packed left operand of m rows and k4 groups of 4 k. */
size_t oq_qpack_left_bytes(const struct oq_qkern *kern, size_t m, size_t k4);
/* Packs the left operand: element (i, kk) of an m x k matrix at
 * a[i * rs + kk * cs], int8 (a_signed) or uint8; flip: xor 0x80 (see
 * qkern.h), giving int8 values when to_signed, else uint8 (the kernel's
 * domain for the left operand: int8 for the conv arrangement, uint8 for
 * the matmul one). rowsum (may be NULL): the sum of each row in that domain. */
void oq_qpack_left(const struct oq_qkern *kern, size_t m, size_t k, const uint8_t *a,
                   size_t rs, size_t cs, bool flip, bool to_signed, void *dst,
                   int32_t *rowsum);
/* Packs a right operand of k x n (element (kk, j) at b[kk * rs + j * cs]) as
 * groups of 4 k: dst[((kk / 4) * ldn + j) * 4 + kk % 4], ldn >= n columns
 * (a multiple of 16), zeros elsewhere; flip as above, giving int8 values when
 * to_signed. colsum (may be NULL): the column sums in that domain. */
void oq_qpack_right(size_t k, size_t n, const uint8_t *b, size_t rs, size_t cs, bool flip,
                    bool to_signed, uint8_t *dst, size_t ldn, int32_t *colsum);

/* The product of a packed left operand (m rows, k4 groups) with the right
 * operand b (boff: k4 offsets; see qkern.h) over n columns through the
 * output stage o, on up to threads OpenMP threads (not from inside a
 * parallel region). */
void oq_qgemm_run(const struct oq_qkern *kern, size_t m, size_t n, size_t k4, const void *apack,
                  const uint8_t *b, const ptrdiff_t *boff, bool vec_signed,
                  const struct oq_qout *o, int threads);

/* ---- convolution helpers (qconv.c) ---- */

/* A 2-D convolution (1-D: h = kh = sh = 1) as an implicit product: the
 * image is split by phase of the stride into planes of uint8 values in
 * groups of 4 channels, padded with the zero point, so that every kernel
 * offset and channel group reads the product's columns (output positions
 * oy * ws + ox, ox < ws, of which ox >= ow are discarded) at a fixed
 * offset: no im2col. K is ordered (ky, kx, channel), channels padded to a
 * multiple of 4. */
typedef struct oq_qconv_plan {
    size_t c, c4, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow;
    size_t hs, ws;          /* rows and columns of a phase plane */
    size_t plane;           /* elements (of 4 bytes) per (phase, channel group) */
    size_t nphase;          /* phases used */
    int phase_of[16 * 16];  /* index of phase (ry, rx) among the used, or -1 */
    size_t k4;              /* kh * kw * c4 */
    size_t q;               /* columns of the product: oh * ws */
} oq_qconv_plan;

/* Sets up the plan; false when the strides are above 16 (not handled). */
bool oq_qconv_plan_init(oq_qconv_plan *p, size_t c, size_t h, size_t w, size_t kh, size_t kw,
                        size_t sh, size_t sw, size_t dh, size_t dw, size_t pt, size_t pl,
                        size_t oh, size_t ow);
/* Bytes of the phase planes. */
size_t oq_qconv_image_bytes(const oq_qconv_plan *p);
/* boff[k4] for the planes (see qkern.h). */
void oq_qconv_offsets(const oq_qconv_plan *p, ptrdiff_t *boff);
/* Bytes of row buffers one thread of oq_qconv_image needs. */
size_t oq_qconv_row_bytes(const oq_qconv_plan *p);
/* Fills the planes from x ([c][h][w] bytes); flip: xor 0x80 (int8 input);
 * pad: the (flipped) zero point. rows: threads * oq_qconv_row_bytes bytes;
 * at most threads OpenMP threads (not from inside a parallel region). */
void oq_qconv_image(const oq_qconv_plan *p, const uint8_t *x, bool flip, uint8_t pad,
                    uint8_t *img, uint8_t *rows, int threads);
/* The product's columns without those past each output row (ox >= ow):
 * row kk of dst (oh * ow positions of 4 bytes, rows oh * ow * 4 bytes
 * apart) holds the 4 bytes of position oy * ws + ox at img + boff[kk]
 * (the kernels read 64 bytes past the end of dst: they must be readable); at most
 * threads OpenMP threads (not from inside a parallel region). Worth it where
 * the discarded columns are a large share (small rows, many channels). */
void oq_qconv_compact(const oq_qconv_plan *p, const uint8_t *img, const ptrdiff_t *boff,
                      uint8_t *dst, int threads);
/* Reorders weights w ([m][c][kh][kw] bytes) to the plan's K order:
 * dst[i][((ky * kw + kx) * c4 + c)] for c < c4 * 4 (zero past c), rows
 * k4 * 4 apart; flip: xor 0x80 (the zeros past c stay zeros). ones: instead
 * of w, 1 at every real (ky, kx, c) (the row whose product is the column
 * sums). */
void oq_qconv_reorder(const oq_qconv_plan *p, size_t m, const uint8_t *w, bool ones, bool flip,
                      uint8_t *dst);

/* Depthwise: the planes of one channel (see qkern.h, oq_qdw). */
typedef struct oq_qdw_plan {
    size_t h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow;
    size_t ph, pw; /* rows and row length of a phase plane */
} oq_qdw_plan;
void oq_qdw_plan_init(oq_qdw_plan *p, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                      size_t sw, size_t dh, size_t dw, size_t pt, size_t pl, size_t oh,
                      size_t ow);
/* Bytes of the planes of one channel (with the 64 readable past the end). */
size_t oq_qdw_plane_bytes(const oq_qdw_plan *p);
/* Fills the planes from one channel x ([h][w] bytes); flip: xor 0x80 (int8
 * input); pad: the (flipped) zero point. */
void oq_qdw_planes(const oq_qdw_plan *p, const uint8_t *x, bool flip, uint8_t pad,
                   uint8_t *planes);

#endif
