/* The inner loops of the calibrators: the streaming statistics' (stats.c)
 * and the mse search's (mse_bound.c), one set per instruction-set level: portable C (stats_kern.c, also the reference the
 * tests compare the others against), AVX2 (stats_avx2.c) and AVX-512
 * (stats_avx512.c), each compiled with its own flags and picked at run time
 * under the ONNXQ_ISA ceiling (runtime/kernels/isa.h). Internal to
 * calibrators/. */
#ifndef ONNXQ_CALIB_STATS_KERN_H
#define ONNXQ_CALIB_STATS_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/isa.h"
#include "onnxq/status.h"

/* The most values one call of calib_bins_fn converts, and the room its
 * output needs (a kernel may store a whole vector past the last index). */
#define CALIB_BIN_CHUNK 512
#define CALIB_BIN_IDX (CALIB_BIN_CHUNK + 16)

/* The extremes of x[0, n), n > 0: true with *lo, *hi set when every value is
 * finite; false (with *lo, *hi unspecified) when one is NaN or infinite. A
 * zero extreme may come back as +0 or -0 whatever the data's first zero is
 * (stats.c settles the sign). */
typedef bool (*calib_scan_fn)(const float *x, size_t n, float *lo, float *hi);

/* The histogram bins of the non-zero values of x[0, n), n <= CALIB_BIN_CHUNK:
 * floor(x * inv) - first for each, in order, written to idx (room for
 * CALIB_BIN_IDX entries); returns how many were written and adds the number
 * of zeros (+0 and -0) to *zeros. inv is a power of two and first an integer
 * such that every index lands in [0, 2^31) and |x * inv| < 2^52 (the
 * histogram invariants guarantee both), so x * inv is exact in double and so
 * is the floor.
 * bins_f32 computes the same in float, twice as many values a step, and
 * needs more: 1 <= inv <= 2^126 and |x * inv| < 2^24 for every x, so that
 * x * inv (a float scaled up, never underflowing) and its floor are exact in
 * float and the indices in int32. */
typedef size_t (*calib_bins_fn)(const float *x, size_t n, double inv, double first,
                                int32_t *idx, uint64_t *zeros);

/* sum over i < n of phi(s_i) dc_i, where u_i = (x_i - l) * id,
 * s_i = u_i - (u_i rounded to the nearest integer, ties to even) and
 * phi(s) = s (s^2/3 - 1/12); |u_i| < 2^51. The levels differ in rounding
 * only (the order of the sum, fused multiply-adds): each term is within a
 * few units in the last place of |u_i| |dc_i| and the sum within n units of
 * the sum of |phi(s_i) dc_i|. */
typedef double (*calib_phi_fn)(const double *x, const double *dc, size_t n, double l, double id);

/* scan and bins_f32 over one chunk (n <= CALIB_BIN_CHUNK) in one loop:
 * returns scan's result with *lo, *hi, and writes bins_f32's indices, their
 * number to *k and adds the zeros to *zeros. The indices mean something only
 * when the extremes meet bins_f32's conditions, which the caller checks
 * afterwards; otherwise they are arbitrary (but computing them is defined
 * behaviour whatever the values). */
typedef bool (*calib_scan_bins_fn)(const float *x, size_t n, double inv, double first,
                                   int32_t *idx, size_t *k, uint64_t *zeros, float *lo,
                                   float *hi);

typedef struct calib_kern {
    const char *name;
    calib_scan_fn scan;
    calib_bins_fn bins;
    calib_bins_fn bins_f32;
    calib_scan_bins_fn scan_bins_f32;
    calib_phi_fn phi_sum;
} calib_kern;

/* The kernels of one level: NULL when they were not built or this CPU lacks
 * the level. */
const calib_kern *calib_kern_for(oq_isa_level level);
/* The fastest kernels at or below the ONNXQ_ISA ceiling; an error when
 * ONNXQ_ISA is set to something this CPU cannot run. */
oq_status calib_kern_select(const calib_kern **out);

#ifdef OQ_HAVE_CALIB_AVX2
extern const calib_kern calib_kern_avx2;
#endif
#ifdef OQ_HAVE_CALIB_AVX512
extern const calib_kern calib_kern_avx512;
#endif

#endif
