/* Pooling: MaxPool and AveragePool over the spatial axes of N x C x D1..Dk
 * tensors (k = 1, 2 or 3), and the global pools.
 *
 * Every pool runs as a 3-D pool: a 1-D or 2-D pool gets leading spatial
 * axes of size 1. Each (n, c) plane is independent (OpenMP over planes);
 * the windows along each axis are computed once per run into scratch. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_pool.h"

#define POOL_DIMS 3

enum { AUTO_NOTSET, AUTO_SAME_UPPER, AUTO_SAME_LOWER, AUTO_VALID };

typedef struct pool_state {
    bool is_max;
    int nd; /* spatial axes: the length of kernel_shape */
    int64_t kernel[POOL_DIMS], strides[POOL_DIMS], dil[POOL_DIMS], pads[2 * POOL_DIMS];
    int auto_pad;
    bool ceil_mode, count_include_pad;
    int64_t storage_order;
} pool_state;

/* The pool for one input shape over 3 spatial axes (leading axes of size 1
 * when the pool has fewer): sizes, kernel, strides, dilations, pads. */
typedef struct pool_geom {
    size_t planes;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
} pool_geom;

/* One output position's window along one axis: the first input index it
 * reads, how many taps fall inside the input, and how many fall inside the
 * input and its pads (the divisor with count_include_pad). */
typedef struct pool_win {
    int64_t first;
    int64_t n, n_pad;
} pool_win;

/* ---- attributes ---- */

static oq_status parse_auto_pad(const oq_node *n, const char *where, int *out)
{
    char buf[32];
    oq_status e = oq_attr_get_string(n, where, "auto_pad", "NOTSET", buf, sizeof buf);
    if (e != OQ_OK)
        return e;
    if (strcmp(buf, "NOTSET") == 0 || buf[0] == 0)
        *out = AUTO_NOTSET;
    else if (strcmp(buf, "SAME_UPPER") == 0)
        *out = AUTO_SAME_UPPER;
    else if (strcmp(buf, "SAME_LOWER") == 0)
        *out = AUTO_SAME_LOWER;
    else if (strcmp(buf, "VALID") == 0)
        *out = AUTO_VALID;
    else
        return oq_error(OQ_E_INVALID, "%s: attribute 'auto_pad' has an unknown value '%s'",
                        where, buf);
    return OQ_OK;
}

/* An optional list of nd positive ints (def when absent). */
static oq_status parse_positive(const oq_node *n, const char *where, const char *name, int nd,
                                int64_t *out)
{
    size_t cnt;
    bool present;
    oq_status e = oq_attr_get_ints(n, where, name, out, POOL_DIMS, &cnt, &present);
    if (e != OQ_OK)
        return e;
    if (!present) {
        for (int i = 0; i < nd; i++)
            out[i] = 1;
        return OQ_OK;
    }
    if ((int)cnt != nd)
        return oq_error(OQ_E_INVALID, "%s: attribute '%s' has %zu values; kernel_shape has %d",
                        where, name, cnt, nd);
    for (int i = 0; i < nd; i++)
        if (out[i] < 1)
            return oq_error(OQ_E_INVALID, "%s: attribute '%s' has a value below 1 (%lld)",
                            where, name, (long long)out[i]);
    return OQ_OK;
}

static oq_status parse_kernel_pads(const oq_node *n, const char *where, pool_state *s)
{
    size_t cnt;
    bool present;
    oq_status e = oq_attr_get_ints(n, where, "kernel_shape", s->kernel, POOL_DIMS, &cnt,
                                   &present);
    if (e != OQ_OK)
        return e;
    if (!present || cnt == 0)
        return oq_error(OQ_E_INVALID, "%s: attribute 'kernel_shape' is required", where);
    s->nd = (int)cnt;
    for (int i = 0; i < s->nd; i++)
        if (s->kernel[i] < 1)
            return oq_error(OQ_E_INVALID, "%s: kernel_shape has a value below 1 (%lld)", where,
                            (long long)s->kernel[i]);
    e = oq_attr_get_ints(n, where, "pads", s->pads, 2 * POOL_DIMS, &cnt, &present);
    if (e != OQ_OK)
        return e;
    if (present && (int)cnt != 2 * s->nd)
        return oq_error(OQ_E_INVALID, "%s: attribute 'pads' has %zu values; %d expected", where,
                        cnt, 2 * s->nd);
    for (int i = 0; i < 2 * s->nd; i++)
        if (s->pads[i] < 0)
            return oq_error(OQ_E_INVALID, "%s: attribute 'pads' has a negative value", where);
    return OQ_OK;
}

static oq_status pool_init(const oq_node *n, int64_t opset, const char *where, bool is_max,
                           void **state)
{
    pool_state *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    s->is_max = is_max;
    int64_t ceil_mode = 0, cip = 0;
    oq_status e = parse_kernel_pads(n, where, s);
    if (e == OQ_OK)
        e = parse_positive(n, where, "strides", s->nd, s->strides);
    /* dilations: MaxPool from opset 10, AveragePool from opset 19 */
    if (e == OQ_OK && ((is_max && opset >= 10) || opset >= 19))
        e = parse_positive(n, where, "dilations", s->nd, s->dil);
    else
        for (int i = 0; i < s->nd; i++)
            s->dil[i] = 1;
    if (e == OQ_OK)
        e = parse_auto_pad(n, where, &s->auto_pad);
    if (e == OQ_OK && opset >= 10)
        e = oq_attr_get_int(n, where, "ceil_mode", 0, &ceil_mode);
    if (e == OQ_OK && !is_max && opset >= 7)
        e = oq_attr_get_int(n, where, "count_include_pad", 0, &cip);
    if (e == OQ_OK && is_max && opset >= 8)
        e = oq_attr_get_int(n, where, "storage_order", 0, &s->storage_order);
    if (e == OQ_OK && (s->storage_order < 0 || s->storage_order > 1))
        e = oq_error(OQ_E_INVALID, "%s: attribute 'storage_order' must be 0 or 1, not %lld",
                     where, (long long)s->storage_order);
    s->ceil_mode = ceil_mode != 0;
    s->count_include_pad = cip != 0;
    if (e != OQ_OK) {
        free(s);
        return e;
    }
    *state = s;
    return OQ_OK;
}

static oq_status maxpool_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    return pool_init(n, opset, where, true, state);
}

static oq_status avgpool_init(const oq_node *n, int64_t opset, const char *where, void **state)
{
    return pool_init(n, opset, where, false, state);
}

/* ---- geometry ---- */

/* Output size and leading pad of one spatial axis (spec formulas; with
 * ceil_mode the last window must start inside the input or its left pad). */
static oq_status axis_out(const oq_kctx *ctx, const pool_state *s, int i, int64_t in,
                          int64_t *out, int64_t *pb)
{
    int64_t st = s->strides[i], dk = (s->kernel[i] - 1) * s->dil[i] + 1;
    if (s->auto_pad == AUTO_SAME_UPPER || s->auto_pad == AUTO_SAME_LOWER) {
        *out = (in + st - 1) / st;
        int64_t total = (*out - 1) * st + dk - in;
        total = total < 0 ? 0 : total;
        *pb = s->auto_pad == AUTO_SAME_UPPER ? total / 2 : total - total / 2;
        return OQ_OK;
    }
    int64_t p0 = 0, p1 = 0;
    if (s->auto_pad == AUTO_NOTSET) {
        p0 = s->pads[i];
        p1 = s->pads[i + s->nd];
    }
    int64_t span = in + p0 + p1 - dk;
    if (span < 0)
        return oq_kerr(ctx, OQ_E_INVALID,
                       "the window along spatial axis %d (%lld with dilation) is larger than "
                       "the padded input (%lld)",
                       i, (long long)dk, (long long)(in + p0 + p1));
    *out = (s->ceil_mode ? (span + st - 1) / st : span / st) + 1;
    if (s->ceil_mode && (*out - 1) * st >= in + p0)
        (*out)--;
    *pb = p0;
    return OQ_OK;
}

static oq_status pool_geometry(const oq_kctx *ctx, const pool_state *s, pool_geom *g)
{
    const oq_tensor *x = ctx->in[0];
    if (x->rank != s->nd + 2)
        return oq_kerr(ctx, OQ_E_INVALID,
                       "input has rank %d; kernel_shape has %d values, so rank %d is expected",
                       x->rank, s->nd, s->nd + 2);
    g->planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    int off = POOL_DIMS - s->nd;
    for (int a = 0; a < POOL_DIMS; a++) {
        g->in[a] = g->out[a] = g->k[a] = g->s[a] = g->d[a] = 1;
        g->pb[a] = 0;
    }
    for (int i = 0; i < s->nd; i++) {
        int a = off + i;
        g->in[a] = x->dims[2 + i];
        g->k[a] = s->kernel[i];
        g->s[a] = s->strides[i];
        g->d[a] = s->dil[i];
        oq_status e = axis_out(ctx, s, i, g->in[a], &g->out[a], &g->pb[a]);
        if (e != OQ_OK)
            return e;
    }
    return OQ_OK;
}

/* The window of output position o along axis a. */
static pool_win axis_window(const pool_geom *g, int a, int64_t o, int64_t pe)
{
    int64_t in = g->in[a], k = g->k[a], d = g->d[a];
    int64_t start = o * g->s[a] - g->pb[a];
    int64_t lo = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t hi = in - 1 - start < 0 ? -1 : (in - 1 - start) / d;
    hi = hi > k - 1 ? k - 1 : hi;
    int64_t hp = in + pe - 1 - start < 0 ? -1 : (in + pe - 1 - start) / d;
    hp = hp > k - 1 ? k - 1 : hp;
    pool_win w = {start + lo * d, hi >= lo ? hi - lo + 1 : 0, hp + 1};
    return w;
}

/* Fills the windows of the three axes (w[a] points into buf). */
static void pool_windows(const pool_state *s, const pool_geom *g, pool_win *buf,
                         pool_win *w[POOL_DIMS])
{
    int off = POOL_DIMS - s->nd;
    for (int a = 0; a < POOL_DIMS; a++) {
        w[a] = buf;
        /* the trailing pad: whatever lies past the input in the last window */
        int64_t pe = 0;
        if (a >= off) {
            int64_t dk = (g->k[a] - 1) * g->d[a] + 1;
            pe = (g->out[a] - 1) * g->s[a] + dk - g->pb[a] - g->in[a];
            if (s->auto_pad == AUTO_NOTSET && pe > s->pads[a - off + s->nd])
                pe = s->pads[a - off + s->nd];
            pe = pe < 0 ? 0 : pe;
        }
        for (int64_t o = 0; o < g->out[a]; o++)
            buf[o] = axis_window(g, a, o, pe);
        buf += g->out[a];
    }
}

static size_t geom_out_count(const pool_geom *g)
{
    return g->planes * (size_t)(g->out[0] * g->out[1] * g->out[2]);
}

/* ---- MaxPool ---- */

static oq_status pool_infer(oq_kctx *ctx)
{
    const pool_state *s = ctx->state;
    oq_dtype dt = ctx->in[0]->dtype;
    bool ok = dt == OQ_FLOAT || (s->is_max && (dt == OQ_UINT8 || dt == OQ_INT8));
    if (!ok)
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "%s input is not supported", oq_dtype_name(dt));
    pool_geom g;
    oq_status e = pool_geometry(ctx, s, &g);
    if (e != OQ_OK)
        return e;
    int64_t dims[2 + POOL_DIMS];
    dims[0] = ctx->in[0]->dims[0];
    dims[1] = ctx->in[0]->dims[1];
    for (int i = 0; i < s->nd; i++)
        dims[2 + i] = g.out[POOL_DIMS - s->nd + i];
    e = oq_set_out(ctx, 0, dt, s->nd + 2, dims);
    if (e == OQ_OK && ctx->n_out > 1)
        e = oq_set_out(ctx, 1, OQ_INT64, s->nd + 2, dims);
    return e;
}

static oq_status pool_prepare(oq_kctx *ctx)
{
    pool_geom g;
    oq_status e = pool_geometry(ctx, ctx->state, &g);
    if (e == OQ_OK)
        ctx->scratch_bytes = (size_t)(g.out[0] + g.out[1] + g.out[2]) * sizeof(pool_win);
    return e;
}

typedef void (*pool_plane_fn)(const pool_geom *g, pool_win *const *w, const void *x, void *y,
                              int64_t *ind, size_t p, int order);

/* Max over each window without indices; DW: the step along the last axis
 * (a constant 1 lets the compiler use contiguous loads). */
#define MAXPOOL_PLANE(NAME, T, LOWEST, DW)                                                 \
    static void NAME(const pool_geom *g, pool_win *const *w, const void *xv, void *yv,     \
                     int64_t *ind, size_t p, int order)                                    \
    {                                                                                      \
        (void)ind;                                                                         \
        (void)order;                                                                       \
        const int64_t H = g->in[1], W = g->in[2];                                          \
        const T *x = (const T *)xv + p * (size_t)(g->in[0] * H * W);                       \
        T *y = (T *)yv + p * (size_t)(g->out[0] * g->out[1] * g->out[2]);                 \
        for (int64_t od = 0; od < g->out[0]; od++)                                         \
            for (int64_t oh = 0; oh < g->out[1]; oh++) {                                   \
                const pool_win *a = &w[0][od], *b = &w[1][oh];                             \
                for (int64_t ow = 0; ow < g->out[2]; ow++) {                               \
                    const pool_win *c = &w[2][ow];                                         \
                    T best = LOWEST;                                                       \
                    for (int64_t i = 0; i < a->n; i++)                                     \
                        for (int64_t j = 0; j < b->n; j++) {                               \
                            const T *row = x + ((a->first + i * g->d[0]) * H + b->first +  \
                                                j * g->d[1]) * W + c->first;               \
                            for (int64_t k = 0; k < c->n; k++) {                           \
                                T v = row[k * (DW)];                                       \
                                best = v > best ? v : best;                                \
                            }                                                              \
                        }                                                                  \
                    *y++ = best;                                                           \
                }                                                                          \
            }                                                                              \
    }

MAXPOOL_PLANE(maxpool_plane_f32, float, -FLT_MAX, g->d[2])
MAXPOOL_PLANE(maxpool_plane_u8, uint8_t, 0, g->d[2])
MAXPOOL_PLANE(maxpool_plane_i8, int8_t, INT8_MIN, g->d[2])
MAXPOOL_PLANE(maxpool_plane_f32_d1, float, -FLT_MAX, 1)
MAXPOOL_PLANE(maxpool_plane_u8_d1, uint8_t, 0, 1)
MAXPOOL_PLANE(maxpool_plane_i8_d1, int8_t, INT8_MIN, 1)

/* Max over each window without indices and without dilation, separably: the
 * window's rows are reduced into one row first (an elementwise max over
 * contiguous rows, which vectorises), then each output takes the max of its
 * columns of that row. Both steps start from LOWEST and take a value only
 * when it is greater, as the direct loop does, so the result is the same
 * (a NaN is never taken). Rows of at most MAXPOOL_ROW elements. */
#define MAXPOOL_ROW 4096
#define MAXPOOL_PLANE_ROWS(NAME, T, LOWEST)                                                \
    static void NAME(const pool_geom *g, pool_win *const *w, const void *xv, void *yv,     \
                     int64_t *ind, size_t p, int order)                                    \
    {                                                                                      \
        (void)ind;                                                                         \
        (void)order;                                                                       \
        const int64_t H = g->in[1], W = g->in[2];                                          \
        const T *x = (const T *)xv + p * (size_t)(g->in[0] * H * W);                       \
        T *y = (T *)yv + p * (size_t)(g->out[0] * g->out[1] * g->out[2]);                 \
        T row[MAXPOOL_ROW];                                                                \
        for (int64_t od = 0; od < g->out[0]; od++)                                         \
            for (int64_t oh = 0; oh < g->out[1]; oh++) {                                   \
                const pool_win *a = &w[0][od], *b = &w[1][oh];                             \
                for (int64_t k = 0; k < W; k++)                                            \
                    row[k] = LOWEST;                                                       \
                for (int64_t i = 0; i < a->n; i++)                                         \
                    for (int64_t j = 0; j < b->n; j++) {                                   \
                        const T *src = x + ((a->first + i) * H + b->first + j) * W;        \
                        for (int64_t k = 0; k < W; k++)                                    \
                            row[k] = src[k] > row[k] ? src[k] : row[k];                    \
                    }                                                                      \
                for (int64_t ow = 0; ow < g->out[2]; ow++) {                               \
                    const pool_win *c = &w[2][ow];                                         \
                    T best = LOWEST;                                                       \
                    for (int64_t k = 0; k < c->n; k++)                                     \
                        best = row[c->first + k] > best ? row[c->first + k] : best;        \
                    *y++ = best;                                                           \
                }                                                                          \
            }                                                                              \
    }

MAXPOOL_PLANE_ROWS(maxpool_rows_f32, float, -FLT_MAX)
MAXPOOL_PLANE_ROWS(maxpool_rows_u8, uint8_t, 0)
MAXPOOL_PLANE_ROWS(maxpool_rows_i8, int8_t, INT8_MIN)

/* The flat index (over the whole tensor, row- or column-major spatial
 * order) of input element (id, ih, iw) of plane p. */
static int64_t pool_index(const pool_geom *g, size_t p, int64_t id, int64_t ih, int64_t iw,
                          int order)
{
    int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    int64_t base = (int64_t)p * D * H * W;
    return base + (order ? id + ih * D + iw * D * H : (id * H + ih) * W + iw);
}

/* Max over each window with the index of the first maximum. */
#define MAXPOOL_PLANE_IDX(NAME, T, LOWEST)                                                 \
    static void NAME(const pool_geom *g, pool_win *const *w, const void *xv, void *yv,     \
                     int64_t *ind, size_t p, int order)                                    \
    {                                                                                      \
        const int64_t H = g->in[1], W = g->in[2];                                          \
        const size_t osz = (size_t)(g->out[0] * g->out[1] * g->out[2]);                    \
        const T *x = (const T *)xv + p * (size_t)(g->in[0] * H * W);                       \
        T *y = (T *)yv + p * osz;                                                          \
        int64_t *yi = ind + p * osz;                                                       \
        for (int64_t od = 0; od < g->out[0]; od++)                                         \
            for (int64_t oh = 0; oh < g->out[1]; oh++)                                     \
                for (int64_t ow = 0; ow < g->out[2]; ow++) {                               \
                    const pool_win *a = &w[0][od], *b = &w[1][oh], *c = &w[2][ow];         \
                    T best = LOWEST;                                                       \
                    int64_t bd = -1, bh = 0, bw = 0;                                       \
                    for (int64_t i = 0; i < a->n; i++)                                     \
                        for (int64_t j = 0; j < b->n; j++)                                 \
                            for (int64_t k = 0; k < c->n; k++) {                           \
                                int64_t id = a->first + i * g->d[0];                       \
                                int64_t ih = b->first + j * g->d[1];                       \
                                int64_t iw = c->first + k * g->d[2];                       \
                                T v = x[(id * H + ih) * W + iw];                           \
                                if (bd < 0 || v > best) {                                  \
                                    best = v;                                              \
                                    bd = id, bh = ih, bw = iw;                             \
                                }                                                          \
                            }                                                              \
                    *y++ = best;                                                           \
                    *yi++ = bd < 0 ? -1 : pool_index(g, p, bd, bh, bw, order);             \
                }                                                                          \
    }

MAXPOOL_PLANE_IDX(maxpool_plane_idx_f32, float, -FLT_MAX)
MAXPOOL_PLANE_IDX(maxpool_plane_idx_u8, uint8_t, 0)
MAXPOOL_PLANE_IDX(maxpool_plane_idx_i8, int8_t, INT8_MIN)

/* ---- AveragePool (float) ---- */

static void avgpool_plane_f32(const pool_geom *g, pool_win *const *w, const void *xv, void *yv,
                              int64_t *ind, size_t p, int include_pad)
{
    (void)ind;
    const int64_t H = g->in[1], W = g->in[2];
    const float *x = (const float *)xv + p * (size_t)(g->in[0] * H * W);
    float *y = (float *)yv + p * (size_t)(g->out[0] * g->out[1] * g->out[2]);
    for (int64_t od = 0; od < g->out[0]; od++)
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            const pool_win *a = &w[0][od], *b = &w[1][oh];
            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                const pool_win *c = &w[2][ow];
                float sum = 0.0f;
                for (int64_t i = 0; i < a->n; i++)
                    for (int64_t j = 0; j < b->n; j++) {
                        const float *row =
                            x + ((a->first + i * g->d[0]) * H + b->first + j * g->d[1]) * W +
                            c->first;
                        if (g->d[2] == 1)
                            for (int64_t k = 0; k < c->n; k++)
                                sum += row[k];
                        else
                            for (int64_t k = 0; k < c->n; k++)
                                sum += row[k * g->d[2]];
                    }
                int64_t cnt = include_pad ? a->n_pad * b->n_pad * c->n_pad : a->n * b->n * c->n;
                *y++ = sum / (float)cnt;
            }
        }
}

/* Runs f over every plane, in parallel when worth it. */
static void pool_planes(pool_plane_fn f, const pool_geom *g, pool_win *const *w, const void *x,
                        void *y, int64_t *ind, int flag)
{
    ptrdiff_t np = (ptrdiff_t)g->planes;
    size_t cost = (size_t)(g->out[0] * g->out[1] * g->out[2] * g->k[0] * g->k[1] * g->k[2]);
#pragma omp parallel for if (oq_parallel_worth(g->planes, cost))
    for (ptrdiff_t p = 0; p < np; p++)
        f(g, w, x, y, ind, (size_t)p, flag);
}

static oq_status pool_run(oq_kctx *ctx)
{
    const pool_state *s = ctx->state;
    pool_geom g;
    oq_status e = pool_geometry(ctx, s, &g);
    if (e != OQ_OK)
        return e;
    if (geom_out_count(&g) == 0)
        return OQ_OK;
    pool_win *w[POOL_DIMS];
    pool_windows(s, &g, ctx->scratch, w);
    oq_dtype dt = ctx->in[0]->dtype;
    int64_t *ind = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
    pool_plane_fn f;
    if (!s->is_max)
        f = avgpool_plane_f32;
    else if (ind)
        f = dt == OQ_FLOAT ? maxpool_plane_idx_f32
            : dt == OQ_UINT8 ? maxpool_plane_idx_u8 : maxpool_plane_idx_i8;
    else if (g.d[0] == 1 && g.d[1] == 1 && g.d[2] == 1 && g.in[2] <= MAXPOOL_ROW)
        f = dt == OQ_FLOAT ? maxpool_rows_f32 : dt == OQ_UINT8 ? maxpool_rows_u8 : maxpool_rows_i8;
    else if (g.d[2] == 1)
        f = dt == OQ_FLOAT ? maxpool_plane_f32_d1
            : dt == OQ_UINT8 ? maxpool_plane_u8_d1 : maxpool_plane_i8_d1;
    else
        f = dt == OQ_FLOAT ? maxpool_plane_f32
            : dt == OQ_UINT8 ? maxpool_plane_u8 : maxpool_plane_i8;
    int flag = s->is_max ? (int)s->storage_order : s->count_include_pad;
    pool_planes(f, &g, w, ctx->in[0]->data, ctx->out[0]->data, ind, flag);
    return OQ_OK;
}

const oq_op_impl oq_impl_maxpool = {maxpool_init, NULL, pool_infer, pool_prepare, pool_run};
const oq_op_impl oq_impl_averagepool = {avgpool_init, NULL, pool_infer, pool_prepare, pool_run};

/* ---- GlobalAveragePool, GlobalMaxPool (float) ---- */

static oq_status global_infer(oq_kctx *ctx)
{
    const oq_tensor *x = ctx->in[0];
    if (x->dtype != OQ_FLOAT)
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "%s input is not supported",
                       oq_dtype_name(x->dtype));
    if (x->rank < 2)
        return oq_kerr(ctx, OQ_E_INVALID, "input has rank %d; at least 2 (N, C) expected",
                       x->rank);
    int64_t dims[OQ_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    return oq_set_out(ctx, 0, OQ_FLOAT, x->rank, dims);
}

static oq_status global_run(oq_kctx *ctx, bool is_max)
{
    const oq_tensor *x = ctx->in[0];
    size_t planes = oq_dims_prod(x->dims, 0, 2), n = oq_dims_prod(x->dims, 2, x->rank);
    const float *xd = x->data;
    float *y = ctx->out[0]->data;
    ptrdiff_t np = (ptrdiff_t)planes;
    if (n == 0) /* an empty window: no maximum, a mean of nothing */
        return planes ? oq_kerr(ctx, OQ_E_INVALID, "the spatial size is 0") : OQ_OK;
#pragma omp parallel for if (oq_parallel_worth(planes, n))
    for (ptrdiff_t p = 0; p < np; p++) {
        const float *v = xd + (size_t)p * n;
        if (is_max) {
            float m = v[0];
            for (size_t i = 1; i < n; i++)
                m = v[i] > m ? v[i] : m;
            y[p] = m;
        } else {
            double sum = 0.0;
            for (size_t i = 0; i < n; i++)
                sum += v[i];
            y[p] = (float)(sum / (double)n);
        }
    }
    return OQ_OK;
}

static oq_status global_avg_run(oq_kctx *ctx) { return global_run(ctx, false); }
static oq_status global_max_run(oq_kctx *ctx) { return global_run(ctx, true); }

const oq_op_impl oq_impl_globalaveragepool = {NULL, NULL, global_infer, NULL, global_avg_run};
const oq_op_impl oq_impl_globalmaxpool = {NULL, NULL, global_infer, NULL, global_max_run};
