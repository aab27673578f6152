/* The tests' pseudo-random numbers: xorshift64 (13, 7, 17), seeded by the
 * including file with TEST_RNG_SEED, so that every test program draws its
 * own fixed sequence. Header-only, like testutil.h. */
#ifndef ONNXQ_TESTRNG_H
#define ONNXQ_TESTRNG_H

#include <math.h>
#include <stdint.h>

#ifndef TEST_RNG_SEED
#error "define TEST_RNG_SEED before including testrng.h"
#endif

static uint64_t rng = TEST_RNG_SEED;

/* The next 64-bit state. */
static inline uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Uniform in [0, 1), 53 bits. */
static inline double urand(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

/* Uniform in [-1, 1). */
static inline float frand(void) { return (float)(urand() * 2.0 - 1.0); }

/* Standard normal (Box-Muller). */
static inline float gauss(void)
{
    double u = urand(), v = urand();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

#endif
