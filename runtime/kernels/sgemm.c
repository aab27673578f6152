/* The float32 product (see sgemm.h): choosing the micro-kernel, packing the
 * operands (the im2col gather of a convolution folded into packing, read
 * from a zero-padded copy of the images so that the ISA packers test no
 * bounds), and the driver: blocks of K x N of B packed into a per-thread
 * buffer that stays in L2 while every MR-row panel of A runs over it (one A
 * panel, MR x KC, stays in L1 across the block's tiles). The work is cut into
 * units (ranges of columns, or of rows when columns are few) that OpenMP
 * threads take as they come free. The bias and a fused activation are
 * applied by the tile as it stores its last K block; a product may be stored
 * transposed (C^T, for convolutions with few output positions).
 *
 * oq_sgemm, the plain row-major interface of kernels.h, packs both operands
 * per call on top of the same driver. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "isa.h"
#include "sgemm.h"

/* ---- choosing the micro-kernel ---- */

static const char *const isa_names[OQ_SGEMM_ISA_COUNT] = {"ref", "avx2", "avx512"};

const char *oq_sgemm_isa_name(oq_sgemm_isa isa)
{
    return isa >= 0 && isa < OQ_SGEMM_ISA_COUNT ? isa_names[isa] : "?";
}

const oq_sgemm_kern *oq_sgemm_kern_for(oq_sgemm_isa isa)
{
    switch (isa) {
    case OQ_SGEMM_REF:
        return &oq_sgemm_kern_ref;
    case OQ_SGEMM_AVX2:
#ifdef OQ_HAVE_SGEMM_AVX2
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return &oq_sgemm_kern_avx2;
#endif
        return NULL;
    case OQ_SGEMM_AVX512:
#ifdef OQ_HAVE_SGEMM_AVX512
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
            return &oq_sgemm_kern_avx512;
#endif
        return NULL;
    default:
        return NULL;
    }
}

/* The instruction-set level each micro-kernel needs. */
static const oq_isa_level isa_levels[OQ_SGEMM_ISA_COUNT] = {OQ_LEVEL_REF, OQ_LEVEL_AVX2,
                                                           OQ_LEVEL_AVX512};

const oq_sgemm_kern *oq_sgemm_kern_select(const char **err)
{
    oq_isa_level ceiling;
    if (!oq_isa_ceiling(&ceiling, err))
        return NULL;
    for (int i = OQ_SGEMM_ISA_COUNT - 1; i >= 0; i--) {
        const oq_sgemm_kern *k =
            isa_levels[i] <= ceiling ? oq_sgemm_kern_for((oq_sgemm_isa)i) : NULL;
        if (k)
            return k;
    }
    return &oq_sgemm_kern_ref;
}

const oq_sgemm_kern *oq_sgemm_kern_default(void)
{
    const char *err = NULL;
    const oq_sgemm_kern *k = oq_sgemm_kern_select(&err);
    for (int i = OQ_SGEMM_ISA_COUNT - 1; !k && i >= 0; i--)
        k = oq_sgemm_kern_for((oq_sgemm_isa)i);
    return k ? k : &oq_sgemm_kern_ref;
}

/* ---- memory ---- */

float *oq_sgemm_alloc(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* Buffers that grow as needed and are kept for the next call, so that
 * steady-state runs allocate nothing: one set per calling thread (the OpenMP
 * workers use slices of their caller's), freed when that thread exits. */
typedef struct grow_buf {
    float *p;
    size_t cap;
} grow_buf;

typedef struct scratch {
    grow_buf a;   /* packed A */
    grow_buf b;   /* packed blocks of B, one slice per thread */
    grow_buf pad; /* padded images of a convolution */
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *p)
{
    scratch *sc = p;
    if (sc) {
        free(sc->a.p);
        free(sc->b.p);
        free(sc->pad.p);
    }
    free(sc);
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* The calling thread's buffers; NULL when out of memory. */
static scratch *get_scratch(void)
{
    pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok)
        return NULL;
    scratch *sc = pthread_getspecific(scratch_key);
    if (sc)
        return sc;
    sc = calloc(1, sizeof *sc);
    if (sc && pthread_setspecific(scratch_key, sc) != 0) {
        free(sc);
        sc = NULL;
    }
    return sc;
}

static float *grow(grow_buf *b, size_t n)
{
    if (b->cap >= n)
        return b->p;
    float *p = oq_sgemm_alloc(n);
    if (!p)
        return NULL;
    free(b->p);
    b->p = p;
    b->cap = n;
    return p;
}

/* ---- packing ---- */

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

size_t oq_sgemm_packed_a_floats(const oq_sgemm_kern *kern, int64_t m, int64_t k)
{
    return ceil_div((size_t)m, (size_t)kern->mr) * (size_t)kern->mr * (size_t)k;
}

size_t oq_sgemm_packed_b_floats(const oq_sgemm_kern *kern, int64_t n, int64_t k)
{
    return ceil_div((size_t)n, (size_t)kern->nr) * (size_t)kern->nr * (size_t)k;
}

/* Panels [p0, p1) of A (rows p*mr...), all of K. */
static void pack_a_panels(const oq_sgemm_kern *kern, bool ta, int64_t m, int64_t k,
                          const float *a, int64_t lda, float *dst, int64_t p0, int64_t p1)
{
    int64_t mr = kern->mr;
    for (int64_t p = p0; p < p1; p++) {
        float *d = dst + (size_t)p * (size_t)(mr * k);
        int64_t i0 = p * mr, rows = m - i0 < mr ? m - i0 : mr;
        if (ta) {
            /* rows of the source are K steps: mr contiguous floats each */
            for (int64_t kk = 0; kk < k; kk++, d += mr) {
                const float *s = a + kk * lda + i0;
                int64_t i = 0;
                for (; i < rows; i++)
                    d[i] = s[i];
                for (; i < mr; i++)
                    d[i] = 0.0f;
            }
            continue;
        }
        for (int64_t i = 0; i < mr; i++) {
            if (i >= rows) {
                for (int64_t kk = 0; kk < k; kk++)
                    d[kk * mr + i] = 0.0f;
                continue;
            }
            const float *s = a + (i0 + i) * lda;
            for (int64_t kk = 0; kk < k; kk++)
                d[kk * mr + i] = s[kk];
        }
    }
}

void oq_sgemm_pack_a(const oq_sgemm_kern *kern, bool ta, int64_t m, int64_t k, const float *a,
                     int64_t lda, float *dst)
{
    pack_a_panels(kern, ta, m, k, a, lda, dst, 0, (int64_t)ceil_div((size_t)m, (size_t)kern->mr));
}

/* Columns [j0, j0 + n) and rows [k0, k0 + kc) of a matrix B into panels of
 * nr columns, kc steps each (dst: ceil(n / nr) panels of kc * nr floats). */
void oq_sgemm_pack_rows_ref(int nr, const float *b, int64_t ldb, int64_t k0, int64_t kc,
                            int64_t j0, int64_t n, float *dst, size_t ps)
{
    int64_t panels = (int64_t)ceil_div((size_t)n, (size_t)nr);
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *s = b + (k0 + kk) * ldb + j0;
        for (int64_t q = 0; q < panels; q++) {
            float *d = dst + (size_t)q * ps + (size_t)(kk * nr);
            int64_t cols = n - q * nr < nr ? n - q * nr : nr, j = 0;
            for (; j < cols; j++)
                d[j] = s[q * nr + j];
            for (; j < nr; j++)
                d[j] = 0.0f;
        }
    }
}

static void pack_b_matrix(int nr, bool tb, const float *b, int64_t ldb, int64_t k0, int64_t kc,
                          int64_t j0, int64_t n, float *dst, size_t ps)
{
    if (!tb) {
        oq_sgemm_pack_rows_ref(nr, b, ldb, k0, kc, j0, n, dst, ps);
        return;
    }
    int64_t panels = (int64_t)ceil_div((size_t)n, (size_t)nr);
    for (int64_t q = 0; q < panels; q++) {
        float *d = dst + (size_t)q * ps;
        int64_t cols = n - q * nr < nr ? n - q * nr : nr;
        for (int64_t j = 0; j < nr; j++) {
            if (j >= cols) {
                for (int64_t kk = 0; kk < kc; kk++)
                    d[kk * nr + j] = 0.0f;
                continue;
            }
            const float *s = b + (j0 + q * nr + j) * ldb + k0;
            for (int64_t kk = 0; kk < kc; kk++)
                d[kk * nr + j] = s[kk];
        }
    }
}

void oq_sgemm_pack_b(const oq_sgemm_kern *kern, bool tb, int64_t n, int64_t k, const float *b,
                     int64_t ldb, float *dst)
{
    pack_b_matrix(kern->nr, tb, b, ldb, 0, k, 0, n, dst, (size_t)(kern->nr * k));
}

/* -- B from the image of a convolution (im2col folded into packing) --
 *
 * Row kk of the column matrix is (channel c, kernel offset (k...)), column j
 * is (image, output position o...); the value is
 *   x[image][c][o * stride - pad + k * dil]   (0 outside the image).
 * Along the last spatial axis the positions o inside the image form one
 * range [lo, hi) per row; each output line (all axes but the last fixed) is
 * copied in pieces that do not cross a panel. */

typedef struct conv_row {
    const float *xc;     /* channel c of image 0 */
    int64_t kk[OQ_CONV_MAX_ND];
    int64_t off, lo, hi; /* last axis: input index of o is o * s + off */
} conv_row;

static void conv_row_init(const oq_sgemm_conv *cv, const float *x, int64_t row, conv_row *r)
{
    const oq_conv_geom *g = cv->g;
    int64_t ks = (int64_t)oq_geom_k_size(g), kidx = row % ks;
    r->xc = x + (size_t)(row / ks) * oq_geom_in_size(g);
    for (int i = g->nd - 1; i >= 0; i--) {
        r->kk[i] = kidx % g->k[i];
        kidx /= g->k[i];
    }
    int last = g->nd - 1;
    int64_t s = g->stride[last], in = g->in[last], ow = g->out[last];
    r->off = r->kk[last] * g->dil[last] - g->pad[last];
    int64_t lo = r->off >= 0 ? 0 : (-r->off + s - 1) / s;
    int64_t hi = in - r->off <= 0 ? 0 : (in - r->off - 1) / s + 1;
    hi = hi > ow ? ow : hi;
    r->lo = lo > hi ? hi : lo;
    r->hi = hi;
}

/* Whether line o[] (outer axes) of row r lies inside the image; *base: the
 * index into the channel of its output position 0 (the last axis' offset
 * included, so it may be negative). */
static bool conv_line_base(const oq_conv_geom *g, const conv_row *r, const int64_t *o,
                           int64_t *base)
{
    int64_t b = 0;
    for (int i = 0; i < g->nd - 1; i++) {
        int64_t p = o[i] * g->stride[i] - g->pad[i] + r->kk[i] * g->dil[i];
        if (p < 0 || p >= g->in[i])
            return false;
        b = b * g->in[i] + p;
    }
    *base = b * g->in[g->nd - 1] + r->off;
    return true;
}

/* Rows [k0, k0 + kc), columns [j0, j0 + n) of the column matrix into panels
 * (as pack_b_matrix). */
void oq_sgemm_pack_conv_ref(int nr, const oq_sgemm_conv *cv, const float *x, int64_t k0,
                            int64_t kc, int64_t j0, int64_t n, float *dst, size_t ps)
{
    const oq_conv_geom *g = cv->g;
    int last = g->nd - 1;
    int64_t ow = g->out[last], s = g->stride[last];
    int64_t out_size = (int64_t)oq_geom_out_size(g);
    for (int64_t kk = 0; kk < kc; kk++) {
        conv_row r;
        conv_row_init(cv, x, k0 + kk, &r);
        /* position of column j0: image, outer odometer, last axis */
        int64_t img = j0 / out_size, pos = j0 % out_size;
        int64_t o[OQ_CONV_MAX_ND];
        int64_t ox = pos % ow, rest = pos / ow;
        for (int i = last - 1; i >= 0; i--) {
            o[i] = rest % g->out[i];
            rest /= g->out[i];
        }
        int64_t j = 0; /* column relative to j0 */
        while (j < n) {
            int64_t base = 0;
            bool inside = conv_line_base(g, &r, o, &base);
            const float *xl = r.xc + img * cv->img_stride;
            /* the rest of this line, cut at panel ends */
            int64_t line_end = j + (ow - ox) < n ? j + (ow - ox) : n;
            while (j < line_end) {
                int64_t q = j / nr, jj = j % nr;
                int64_t len = nr - jj < line_end - j ? nr - jj : line_end - j;
                float *d = dst + (size_t)q * ps + (size_t)(kk * nr + jj);
                int64_t a = ox, e = ox + len; /* positions [a, e) of the line */
                if (!inside) {
                    for (int64_t t = 0; t < len; t++)
                        d[t] = 0.0f;
                } else {
                    int64_t vlo = r.lo > a ? r.lo : a, vhi = r.hi < e ? r.hi : e;
                    if (vhi < vlo)
                        vhi = vlo;
                    int64_t t = a;
                    for (; t < vlo; t++)
                        d[t - a] = 0.0f;
                    const float *src = xl + base;
                    if (s == 1)
                        for (; t < vhi; t++)
                            d[t - a] = src[t];
                    else
                        for (; t < vhi; t++)
                            d[t - a] = src[t * s];
                    for (; t < e; t++)
                        d[t - a] = 0.0f;
                }
                j += len;
                ox += len;
            }
            if (ox == ow) {
                ox = 0;
                int i = last - 1;
                for (; i >= 0; i--) {
                    if (++o[i] < g->out[i])
                        break;
                    o[i] = 0;
                }
                if (i < 0)
                    img++;
            }
        }
        /* zero the rest of the last panel */
        if (n % nr) {
            float *d = dst + (size_t)(n / nr) * ps + (size_t)(kk * nr);
            for (int64_t t = n % nr; t < nr; t++)
                d[t] = 0.0f;
        }
    }
}

/* -- the padded images for the ISA packers (see oq_sgemm_padded) -- */


/* Padded row r of a plane from image plane xc (rows of iw). */
static void pad_row(const float *xc, int64_t ih, int64_t iw, int64_t ph, int64_t pw, int64_t w,
                    int64_t r, float *row)
{
    int64_t iy = r - ph;
    if (iy < 0 || iy >= ih) {
        memset(row, 0, (size_t)w * sizeof *row);
        return;
    }
    /* padded columns [lo, hi) come from the image */
    int64_t lo = pw < 0 ? 0 : (pw < w ? pw : w);
    int64_t hi = pw + iw < w ? pw + iw : w;
    if (hi < lo)
        hi = lo;
    memset(row, 0, (size_t)lo * sizeof *row);
    if (hi > lo)
        memcpy(row + lo, xc + iy * iw + (lo - pw), (size_t)(hi - lo) * sizeof *row);
    memset(row + hi, 0, (size_t)(w - hi) * sizeof *row);
}

/* The padded geometry (no data) of cv. */
static void padded_geom(const oq_sgemm_conv *cv, oq_sgemm_padded *pd)
{
    const oq_conv_geom *g = cv->g;
    int a = g->nd - 1;
    *pd = (oq_sgemm_padded){NULL, cv->channels, 0, 1, 0, 1, g->out[a], 1, g->k[a], 1,
                            g->stride[a], 1, g->dil[a]};
    if (g->nd == 2) {
        pd->oh = g->out[0], pd->kh = g->k[0], pd->sh = g->stride[0], pd->dh = g->dil[0];
    }
    pd->h = (pd->oh - 1) * pd->sh + (pd->kh - 1) * pd->dh + 1;
    pd->w = (pd->ow - 1) * pd->sw + (pd->kw - 1) * pd->dw + 1;
    pd->plane = pd->h * pd->w;
}

size_t oq_sgemm_padded_floats(const oq_sgemm_conv *cv)
{
    oq_sgemm_padded pd;
    padded_geom(cv, &pd);
    return (size_t)(cv->n_img * cv->channels * pd.plane);
}

void oq_sgemm_pad(const oq_sgemm_conv *cv, const float *x, float *buf, oq_sgemm_padded *pd,
                  int threads)
{
    const oq_conv_geom *g = cv->g;
    int a = g->nd - 1;
    int64_t ih = g->nd == 2 ? g->in[0] : 1, ph = g->nd == 2 ? g->pad[0] : 0;
    int64_t iw = g->in[a], pw = g->pad[a], in_size = ih * iw;
    padded_geom(cv, pd);
    pd->x = buf;
    int64_t rows = cv->n_img * cv->channels * pd->h, h = pd->h, w = pd->w;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows * w >= 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t p = r / h, img = p / cv->channels, c = p % cv->channels;
        pad_row(x + img * cv->img_stride + c * in_size, ih, iw, ph, pw, w, r % h, buf + r * w);
    }
}

/* ---- the driver ---- */

typedef struct job {
    const oq_sgemm_kern *kern;
    int64_t m, n, k, kc;
    float alpha;
    bool load_c;
    const oq_sgemm_act *act;
    bool trans_c;
    const float *a;    /* packed A */
    const oq_sgemm_b *b;
    float *bbufs;       /* B not packed: thread t packs its blocks at bbufs + t * bbuf_floats */
    size_t bbuf_floats;
    const oq_sgemm_padded *pd; /* B's padded images, for kern->pack_conv */
    float *c;
    int64_t ldc;
    const float *bias;
} job;

/* Columns of a block of B (whole panels). */
static int64_t n_block(const oq_sgemm_kern *kern)
{
    return kern->nc / kern->nr > 0 ? kern->nc / kern->nr * kern->nr : kern->nr;
}

/* Floats between the panels of a packed block of B: one cache line more
 * than kc steps, so that the packers' stores to every panel do not share a
 * few L1 sets. */
static size_t block_panel_stride(const oq_sgemm_kern *kern, int64_t kc)
{
    return (size_t)(kc * kern->nr + 16);
}

/* Rows [m0, m1) (whole panels) by columns [n0, n1) (whole panels) of C;
 * bbuf: where this thread packs blocks of B (when B is not packed). */
static void run_part(const job *J, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *bbuf)
{
    const oq_sgemm_kern *kern = J->kern;
    int64_t mr = kern->mr, nr = kern->nr, K = J->k, nc_max = n_block(kern);
    const oq_sgemm_b *B = J->b;
    size_t ps = block_panel_stride(kern, J->kc);
    for (int64_t jc = n0; jc < n1; jc += nc_max) {
        int64_t nc = n1 - jc < nc_max ? n1 - jc : nc_max;
        int64_t pc = 0;
        do {
            int64_t kc = K - pc < J->kc ? K - pc : J->kc;
            const float *blk;
            size_t bstride;
            if (B->packed) {
                blk = B->packed + (size_t)(jc / nr) * (size_t)(nr * K) + (size_t)(pc * nr);
                bstride = (size_t)(nr * K);
            } else {
                if (J->pd)
                    kern->pack_conv((int)nr, J->pd, pc, kc, jc, nc, bbuf, ps);
                else if (B->conv)
                    oq_sgemm_pack_conv_ref((int)nr, B->conv, B->p, pc, kc, jc, nc, bbuf, ps);
                else if (!B->trans && kern->pack_rows)
                    kern->pack_rows((int)nr, B->p, B->ld, pc, kc, jc, nc, bbuf, ps);
                else
                    pack_b_matrix((int)nr, B->trans, B->p, B->ld, pc, kc, jc, nc, bbuf, ps);
                blk = bbuf;
                bstride = ps;
            }
            oq_sgemm_epi ep = {J->alpha, J->load_c || pc > 0, J->act && pc + kc >= K, J->trans_c,
                               J->act ? J->act->lo : 0.0f, J->act ? J->act->hi : 0.0f, NULL};
            const float *bias = J->bias && pc == 0 ? J->bias : NULL;
            for (int64_t i = m0; i < m1; i += mr) {
                const float *ap = J->a + (size_t)(i / mr) * (size_t)(mr * K) + (size_t)(pc * mr);
                size_t rows = (size_t)(J->m - i < mr ? J->m - i : mr);
                if (!J->trans_c)
                    ep.bias = bias ? bias + i : NULL;
                for (int64_t j = 0; j < nc; j += nr) {
                    /* tile (i, jc + j) of the product; stored transposed: C^T */
                    float *ct = J->trans_c ? J->c + (jc + j) * J->ldc + i
                                           : J->c + i * J->ldc + jc + j;
                    if (J->trans_c)
                        ep.bias = bias ? bias + jc + j : NULL;
                    kern->tile((size_t)kc, ap, blk + (size_t)(j / nr) * bstride, ct,
                               (size_t)J->ldc, rows, (size_t)(nc - j < nr ? nc - j : nr), &ep);
                }
            }
            pc += kc;
        } while (pc < K);
    }
}

/* Below this many multiply-adds a product runs on one thread. */
#define SPLIT_MIN (1 << 17)

static void run_job(const job *J, int threads)
{
    int64_t mr = J->kern->mr, nr = J->kern->nr;
    int64_t mp = (int64_t)ceil_div((size_t)J->m, (size_t)mr);
    int64_t np = (int64_t)ceil_div((size_t)J->n, (size_t)nr);
    if (threads <= 1 || mp * np < 2 || (double)J->m * (double)J->n * (double)J->k < SPLIT_MIN) {
        run_part(J, 0, J->m, 0, J->n, J->bbufs);
        return;
    }
    /* Units of work that threads take as they come free, so that a thread
     * the OS preempts holds up only its current unit: ranges of columns over
     * all rows when there are enough columns (each unit packs its own part
     * of B), else ranges of rows over all columns (each unit packs all of B,
     * so there are fewer of them). */
    bool by_cols = np >= 2 * threads;
    int64_t len = by_cols ? np : mp, units = (by_cols ? 4 : 2) * (int64_t)threads;
    units = units < len ? units : len;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t u = 0; u < units; u++) {
#ifdef _OPENMP
        float *bbuf = J->bbufs ? J->bbufs + (size_t)omp_get_thread_num() * J->bbuf_floats : NULL;
#else
        float *bbuf = J->bbufs;
#endif
        int64_t p0 = len * u / units, p1 = len * (u + 1) / units;
        if (by_cols)
            run_part(J, 0, J->m, p0 * nr, p1 * nr < J->n ? p1 * nr : J->n, bbuf);
        else
            run_part(J, p0 * mr, p1 * mr < J->m ? p1 * mr : J->m, 0, J->n, bbuf);
    }
}

/* K block: at most the kernel's kc, evenly cut. */
static int64_t k_block(const oq_sgemm_kern *kern, int64_t k)
{
    int64_t blocks = (int64_t)ceil_div((size_t)(k ? k : 1), (size_t)kern->kc);
    int64_t kc = (int64_t)ceil_div((size_t)(k ? k : 1), (size_t)blocks);
    return (kc + 3) & ~(int64_t)3;
}

static void scale_c(float *c, int64_t ldc, int64_t m, int64_t n, float beta, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && m * n >= 65536)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            c[i * ldc + j] *= beta;
}

bool oq_sgemm_run(const oq_sgemm_kern *kern, int64_t m, int64_t n, int64_t k, float alpha,
                  const oq_sgemm_a *a, const oq_sgemm_b *b, float beta, float *c, int64_t ldc,
                  bool trans_c, const float *bias, const oq_sgemm_act *act, int threads)
{
    if (m <= 0 || n <= 0)
        return true;
    if (threads < 1)
        threads = 1;
    if (beta != 0.0f && beta != 1.0f) {
        if (trans_c)
            scale_c(c, ldc, n, m, beta, threads);
        else
            scale_c(c, ldc, m, n, beta, threads);
    }
    job J = {kern, m, n,    k, k_block(kern, k), alpha, beta != 0.0f, act, trans_c, a->packed,
             b,    NULL, 0, NULL, c, ldc, bias};
    scratch *sc = get_scratch();
    if (!sc)
        return false;
    if (!b->packed) { /* a slice per thread */
        J.bbuf_floats = (size_t)(n_block(kern) / kern->nr) * block_panel_stride(kern, J.kc);
        J.bbufs = grow(&sc->b, (size_t)threads * J.bbuf_floats);
        if (!J.bbufs)
            return false;
    }
    oq_sgemm_padded pd;
    const oq_sgemm_conv *cv = b->conv ? b->conv : !a->packed ? a->conv : NULL;
    bool padded = cv && kern->pack_conv && cv->g->nd <= 2;
    if (padded) {
        float *buf = grow(&sc->pad, oq_sgemm_padded_floats(cv));
        if (!buf)
            return false;
        oq_sgemm_pad(cv, b->conv ? b->p : a->p, buf, &pd, threads);
        if (b->conv)
            J.pd = &pd;
    }
    if (!J.a) {
        float *pa = grow(&sc->a, oq_sgemm_packed_a_floats(kern, m, k));
        if (!pa)
            return false;
        int64_t panels = (int64_t)ceil_div((size_t)m, (size_t)kern->mr);
        if (a->conv) { /* the column matrix of a convolution, transposed */
            size_t ps = (size_t)(kern->mr * k);
            if (padded)
                kern->pack_conv(kern->mr, &pd, 0, k, 0, m, pa, ps);
            else
                oq_sgemm_pack_conv_ref(kern->mr, a->conv, a->p, 0, k, 0, m, pa, ps);
            J.a = pa;
            run_job(&J, threads);
            return true;
        }
        bool par = threads > 1 && panels > 1 && (double)m * (double)k >= 65536;
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
        for (int64_t p = 0; p < panels; p++)
            pack_a_panels(kern, a->trans, m, k, a->p, a->ld, pa, p, p + 1);
        J.a = pa;
    }
    run_job(&J, threads);
    return true;
}

bool oq_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              int threads)
{
    oq_sgemm_a A = {NULL, a, lda, ta, NULL};
    oq_sgemm_b B = {NULL, b, ldb, tb, NULL};
    return oq_sgemm_run(oq_sgemm_kern_default(), m, n, k, alpha, &A, &B, beta, c, ldc, false,
                        NULL, NULL, threads);
}

void oq_sgemm_naive(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc, const float *bias, const oq_sgemm_act *act)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < k; p++)
                acc += a[ta ? p * lda + i : i * lda + p] * b[tb ? j * ldb + p : p * ldb + j];
            float v = alpha * acc + (bias ? bias[i] : 0.0f);
            if (beta != 0.0f)
                v += beta * c[i * ldc + j];
            if (act) {
                v = v < act->lo ? act->lo : v;
                v = v > act->hi ? act->hi : v;
            }
            c[i * ldc + j] = v;
        }
}
