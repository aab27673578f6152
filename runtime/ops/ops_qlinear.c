/* QLinearConv and ConvInteger: integer convolution (NCHW, any number of
 * spatial axes, groups, strides, pads, dilations, auto_pad), on the packed
 * 8-bit kernels of kernels/qgemm.h (the ISA chosen at run time).
 *
 * Three paths, chosen per plan:
 *   depthwise (one input channel per group, 1-D or 2-D): a direct kernel
 *     vectorised along output rows; straight from the image where every tap
 *     w - zw fits int8 and the kernel has at most 4 columns (symmetric
 *     weights, 3x3: kernels/qkern.h, oq_qdw8), else per channel over the
 *     zero-point-padded image split by phase of the horizontal stride;
 *     channels spread over threads;
 *   gemm (other 1-D and 2-D): an implicit product, no im2col: the image is
 *     laid out once per run in groups of 4 channels and phases of the stride
 *     (kernels/qconv.c), so that each kernel offset reads the product's
 *     columns at a fixed offset; 1x1 stride-1 convolutions are the plain
 *     product over the image. Weights packed once per plan;
 *   im2col (3-D and more): im2col, then the product over its rows.
 * Products accumulate in int32. The zero-point terms and the bias are folded
 * once per output channel (bias - zx*sum(w) + K*zx*zw, see kernels/qgemm.h);
 * the -zw*sum(x) term needs the column sums (a product with a row of ones)
 * and is added only where zw != 0. QLinearConv requantizes in the kernels'
 * output stage with m = (x_scale * w_scale[c]) / y_scale, computed in float
 * in that order as onnxruntime does (kernels/requant.h); ConvInteger writes
 * the int32 sums. When the weights, scales, zero points and bias are
 * constant, the folding and packing are done once per plan in prepare;
 * otherwise at every run. */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../kernels/qgemm.h"
#include "../kernels/qkern.h"
#include "ops_qlinear.h"
#include "ops_quant_impl.h"

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

/* Input positions of the operator (-1: the operator has no such input). */
typedef struct qconv_io {
    int x, xs, xz, w, ws, wz, ys, yz, b;
} qconv_io;

static const qconv_io io_qlinear = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const qconv_io io_integer = {0, -1, 2, 1, -1, 3, -1, -1, -1};

typedef struct qconv_state {
    bool qlinear; /* QLinearConv (requantized) or ConvInteger (int32) */
    qconv_io io;
    int auto_pad;
    int64_t group;
    size_t nk, ns, nd, np;
    int64_t k[OQ_CONV_MAX_ND], s[OQ_CONV_MAX_ND], d[OQ_CONV_MAX_ND];
    int64_t pads[2 * OQ_CONV_MAX_ND];
    /* per plan (prepare) */
    oq_conv_geom g;
    size_t m, kdim;    /* output channels, terms per output (Cg * kernel size) */
    const oq_qkern *kern;
    int path;          /* PATH_... */
    bool xflip, wflip; /* int8 x, uint8 w: top bit flipped (kernels/qkern.h) */
    oq_qconv_plan plan; /* PATH_GEMM, PATH_IM2COL (1x1 over the im2col rows) */
    oq_qdw_plan dwp;    /* PATH_DW */
    int threads;        /* threads the scratch was sized for */
    bool folded;       /* the per-channel arrays hold constant values */
    size_t cap;        /* capacity of the per-channel arrays */
    int32_t *bias, *zw; /* folded bias and weight zero point per output channel */
    float *mult;
    oq_qfixed *fixed;
    void *wpack;        /* packed weights, one block of gsz bytes per group */
    size_t gsz, wpack_cap;
    void *ones;         /* packed row of ones (column sums) */
    ptrdiff_t *boff;    /* plan.k4 offsets */
    bool compact;       /* the product over the columns without junk (coff) */
    ptrdiff_t *coff;    /* plan.k4 offsets of the compacted columns */
    int32_t *dww;       /* PATH_DW: w - zw per output channel and tap */
    int8_t *dw8w;       /* PATH_DW: the same as int8, 4 per kernel row (oq_qdw8) */
    bool dw8_geom;      /* PATH_DW: the kernels' dw8 takes this geometry */
    bool use_dw8;       /* ... and every tap fits int8 (set by fold) */
    size_t col_off, img_off, cmp_off, qbuf_off, sum_off, rows_off, dw_per_thread; /* scratch */
} qconv_state;

enum { PATH_GEMM, PATH_IM2COL, PATH_DW };

static void qconv_free(void *p)
{
    qconv_state *s = p;
    if (!s)
        return;
    free(s->bias);
    free(s->zw);
    free(s->mult);
    free(s->fixed);
    free(s->wpack);
    free(s->ones);
    free(s->boff);
    free(s->coff);
    free(s->dww);
    free(s->dw8w);
    free(s);
}

static const oq_tensor *qin(const oq_kctx *ctx, int idx)
{
    return idx >= 0 ? oq_qp_in(ctx, (size_t)idx) : NULL;
}

/* ---- attributes ---- */

static oq_status parse_auto_pad(const oq_node *n, const char *where, int *out)
{
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    char buf[32];
    oq_status e = oq_attr_get_string(n, where, "auto_pad", "NOTSET", buf, sizeof buf);
    for (int i = 0; e == OQ_OK && i < 4; i++)
        if (strcmp(buf, names[i]) == 0) {
            *out = i;
            return OQ_OK;
        }
    return e != OQ_OK ? e
                      : oq_error(OQ_E_INVALID, "%s: auto_pad '%s' is not NOTSET, SAME_UPPER, "
                                               "SAME_LOWER or VALID", where, buf);
}

static oq_status check_min(const char *where, const char *name, const int64_t *v, size_t n,
                           int64_t min)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < min)
            return oq_error(OQ_E_INVALID, "%s: attribute '%s' has value %lld (must be >= %lld)",
                            where, name, (long long)v[i], (long long)min);
    return OQ_OK;
}

static oq_status qconv_attrs(const oq_node *n, const char *where, qconv_state *s)
{
    const size_t max = OQ_CONV_MAX_ND;
    oq_status e = parse_auto_pad(n, where, &s->auto_pad);
    if (e == OQ_OK)
        e = oq_attr_get_int(n, where, "group", 1, &s->group);
    if (e == OQ_OK)
        e = oq_attr_get_ints(n, where, "kernel_shape", s->k, max, &s->nk, NULL);
    if (e == OQ_OK)
        e = oq_attr_get_ints(n, where, "strides", s->s, max, &s->ns, NULL);
    if (e == OQ_OK)
        e = oq_attr_get_ints(n, where, "dilations", s->d, max, &s->nd, NULL);
    if (e == OQ_OK)
        e = oq_attr_get_ints(n, where, "pads", s->pads, 2 * max, &s->np, NULL);
    if (e == OQ_OK && s->group < 1)
        e = oq_error(OQ_E_INVALID, "%s: group is %lld (must be >= 1)", where,
                     (long long)s->group);
    if (e == OQ_OK)
        e = check_min(where, "kernel_shape", s->k, s->nk, 1);
    if (e == OQ_OK)
        e = check_min(where, "strides", s->s, s->ns, 1);
    if (e == OQ_OK)
        e = check_min(where, "dilations", s->d, s->nd, 1);
    if (e == OQ_OK)
        e = check_min(where, "pads", s->pads, s->np, 0);
    return e;
}

static oq_status qconv_init_as(const oq_node *n, const char *where, void **state, bool qlinear)
{
    qconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return oq_error(OQ_E_NOMEM, "%s: out of memory", where);
    s->qlinear = qlinear;
    s->io = qlinear ? io_qlinear : io_integer;
    oq_status e = qconv_attrs(n, where, s);
    if (e != OQ_OK) {
        free(s);
        return e;
    }
    *state = s;
    return OQ_OK;
}

static oq_status qlinearconv_init(const oq_node *n, int64_t opset, const char *where,
                                  void **state)
{
    (void)opset;
    return qconv_init_as(n, where, state, true);
}

static oq_status convinteger_init(const oq_node *n, int64_t opset, const char *where,
                                  void **state)
{
    (void)opset;
    return qconv_init_as(n, where, state, false);
}

/* ---- geometry ---- */

/* Output size and leading padding of spatial axis i. */
static oq_status qconv_axis(const oq_kctx *ctx, const qconv_state *s, int i, oq_conv_geom *g)
{
    int64_t in = g->in[i], st = g->stride[i], dk = (g->k[i] - 1) * g->dil[i] + 1;
    if (s->auto_pad == PAD_SAME_UPPER || s->auto_pad == PAD_SAME_LOWER) {
        g->out[i] = (in + st - 1) / st;
        int64_t total = (g->out[i] - 1) * st + dk - in;
        total = total < 0 ? 0 : total;
        g->pad[i] = s->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        return OQ_OK;
    }
    int64_t p0 = 0, p1 = 0;
    if (s->auto_pad == PAD_NOTSET && s->np) {
        p0 = s->pads[i];
        p1 = s->pads[i + g->nd];
    }
    if (in + p0 + p1 < dk)
        return oq_kerr(ctx, OQ_E_INVALID,
                       "spatial axis %d: the kernel (extent %lld) is larger than the padded "
                       "input (%lld)", i, (long long)dk, (long long)(in + p0 + p1));
    g->out[i] = (in + p0 + p1 - dk) / st + 1;
    g->pad[i] = p0;
    return OQ_OK;
}

/* Checks X and W against the attributes and computes the geometry. */
static oq_status qconv_geometry(const oq_kctx *ctx, const qconv_state *s, oq_conv_geom *g)
{
    const oq_tensor *x = qin(ctx, s->io.x), *w = qin(ctx, s->io.w);
    if (x->rank < 3 || x->rank - 2 > OQ_CONV_MAX_ND)
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "input x has rank %d (3 to %d supported)",
                       x->rank, OQ_CONV_MAX_ND + 2);
    if (w->rank != x->rank)
        return oq_kerr(ctx, OQ_E_INVALID, "w has rank %d but x has rank %d", w->rank, x->rank);
    g->nd = x->rank - 2;
    size_t nd = (size_t)g->nd;
    if ((s->nk && s->nk != nd) || (s->ns && s->ns != nd) || (s->nd && s->nd != nd) ||
        (s->np && s->np != 2 * nd))
        return oq_kerr(ctx, OQ_E_INVALID, "kernel_shape, strides and dilations need %d values "
                       "and pads %d for %d spatial axes", g->nd, 2 * g->nd, g->nd);
    int64_t c = x->dims[1], m = w->dims[0];
    if (w->dims[1] * s->group != c || m % s->group)
        return oq_kerr(ctx, OQ_E_INVALID, "x has %lld channels and w is [%lld, %lld, ...] with "
                       "group %lld", (long long)c, (long long)m, (long long)w->dims[1],
                       (long long)s->group);
    for (int i = 0; i < g->nd; i++) {
        g->k[i] = w->dims[2 + i];
        if (s->nk && s->k[i] != g->k[i])
            return oq_kerr(ctx, OQ_E_INVALID, "kernel_shape[%d] is %lld but w has %lld", i,
                           (long long)s->k[i], (long long)g->k[i]);
        g->in[i] = x->dims[2 + i];
        g->stride[i] = s->ns ? s->s[i] : 1;
        g->dil[i] = s->nd ? s->d[i] : 1;
        oq_status e = qconv_axis(ctx, s, i, g);
        if (e != OQ_OK)
            return e;
    }
    return OQ_OK;
}

/* ---- infer ---- */

static oq_status qconv_check_types(const oq_kctx *ctx, const qconv_state *s)
{
    const oq_tensor *x = qin(ctx, s->io.x), *w = qin(ctx, s->io.w), *b = qin(ctx, s->io.b);
    if (!oq_qp_is8(x->dtype) || !oq_qp_is8(w->dtype))
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "x is %s and w is %s (int8 or uint8 supported)",
                       oq_dtype_name(x->dtype), oq_dtype_name(w->dtype));
    oq_status e = oq_qp_check_dtype(ctx, (size_t)s->io.xz, "x_zero_point", x->dtype);
    if (e == OQ_OK)
        e = oq_qp_check_dtype(ctx, (size_t)s->io.wz, "w_zero_point", w->dtype);
    if (e == OQ_OK && b && b->dtype != OQ_INT32)
        e = oq_kerr(ctx, OQ_E_INVALID, "bias B is %s; it must be int32",
                    oq_dtype_name(b->dtype));
    if (e != OQ_OK || !s->qlinear)
        return e;
    static const char *const req[] = {"x_zero_point", "w_zero_point", "y_zero_point"};
    const int ri[] = {s->io.xz, s->io.wz, s->io.yz};
    for (int i = 0; i < 3; i++)
        if (!qin(ctx, ri[i]))
            return oq_kerr(ctx, OQ_E_INVALID, "input '%s' is required", req[i]);
    const oq_tensor *yz = qin(ctx, s->io.yz);
    if (!oq_qp_is8(yz->dtype))
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "y_zero_point is %s (int8 or uint8 supported)",
                       oq_dtype_name(yz->dtype));
    return OQ_OK;
}

/* Shapes of the scales and zero points and (when constant) scale values. */
static oq_status qconv_check_params(const oq_kctx *ctx, const qconv_state *s, int64_t m,
                                    bool values)
{
    const qconv_io *io = &s->io;
    const oq_tensor *b = qin(ctx, io->b);
    oq_status e = oq_qp_check_shape(ctx, (size_t)io->xz, "x_zero_point", 0, NULL);
    if (e == OQ_OK)
        e = oq_qp_check_shape(ctx, (size_t)io->wz, "w_zero_point", m, "output channel");
    if (e == OQ_OK && b && (b->rank != 1 || b->dims[0] != m))
        e = oq_kerr(ctx, OQ_E_INVALID, "bias B must be 1-D with %lld values (one per output "
                    "channel)", (long long)m);
    if (e != OQ_OK || !s->qlinear)
        return e;
    e = oq_qp_check_scale(ctx, (size_t)io->xs, "x_scale", false, values);
    if (e == OQ_OK)
        e = oq_qp_check_scale(ctx, (size_t)io->ws, "w_scale", false, values);
    if (e == OQ_OK)
        e = oq_qp_check_scale(ctx, (size_t)io->ys, "y_scale", false, values);
    if (e == OQ_OK)
        e = oq_qp_check_shape(ctx, (size_t)io->xs, "x_scale", 0, NULL);
    if (e == OQ_OK)
        e = oq_qp_check_shape(ctx, (size_t)io->ws, "w_scale", m, "output channel");
    if (e == OQ_OK)
        e = oq_qp_check_shape(ctx, (size_t)io->ys, "y_scale", 0, NULL);
    if (e == OQ_OK)
        e = oq_qp_check_shape(ctx, (size_t)io->yz, "y_zero_point", 0, NULL);
    return e;
}

static oq_status qconv_infer(oq_kctx *ctx)
{
    const qconv_state *s = ctx->state;
    oq_conv_geom g;
    oq_status e = qconv_check_types(ctx, s);
    if (e == OQ_OK)
        e = qconv_geometry(ctx, s, &g);
    const oq_tensor *x = qin(ctx, s->io.x), *w = qin(ctx, s->io.w);
    if (e == OQ_OK)
        e = qconv_check_params(ctx, s, w->dims[0], false);
    if (e != OQ_OK)
        return e;
    int64_t dims[OQ_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = w->dims[0];
    memcpy(dims + 2, g.out, (size_t)g.nd * sizeof *dims);
    oq_dtype dt = s->qlinear ? qin(ctx, s->io.yz)->dtype : OQ_INT32;
    return oq_set_out(ctx, 0, dt, g.nd + 2, dims);
}

/* ---- folding the per-channel constants ---- */

static bool params_const(const oq_kctx *ctx, const qconv_io *io)
{
    const int idx[] = {io->xs, io->xz, io->w, io->ws, io->wz, io->ys, io->yz, io->b};
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++)
        if (idx[i] >= 0 && !oq_qp_const(ctx, (size_t)idx[i]))
            return false;
    return true;
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static oq_status qconv_reserve(const oq_kctx *ctx, qconv_state *s, size_t m)
{
    if (m <= s->cap)
        return OQ_OK;
    free(s->bias);
    free(s->zw);
    free(s->mult);
    free(s->fixed);
    s->bias = malloc(m * sizeof *s->bias);
    s->zw = malloc(m * sizeof *s->zw);
    s->mult = malloc(m * sizeof *s->mult);
    s->fixed = malloc(m * sizeof *s->fixed);
    s->cap = s->bias && s->zw && s->mult && s->fixed ? m : 0;
    if (!s->cap)
        return oq_kerr(ctx, OQ_E_NOMEM, "out of memory for %zu output channels", m);
    return OQ_OK;
}

/* The depthwise taps as oq_qdw8 takes them: kernel row ky of channel c at
 * dw8w[(c * kh + ky) * 4], zeros past kw. */
static void dw8_pack(qconv_state *s)
{
    size_t kh = s->dwp.kh, kw = s->dwp.kw;
    memset(s->dw8w, 0, s->m * kh * 4);
    for (size_t c = 0; c < s->m; c++)
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++)
                s->dw8w[(c * kh + ky) * 4 + kx] = (int8_t)s->dww[(c * kh + ky) * kw + kx];
}

/* The per-channel constants and the packed weights. The product runs on
 * uint8 x and int8 w (kernels/qkern.h): an int8 x and a uint8 w have their
 * top bit flipped, their zero points moved by 128, which leaves
 * sum (x - zx)(w - zw) unchanged. Then per output channel c, with K terms:
 *   bias[c] = B[c] - zx * sum(w[c]) + K * zx * zw[c],   zw[c] as is
 * (the -zw * sum(x) term is added per position where zw != 0). The
 * depthwise path multiplies x (uint8 after the flip) with w - zw:
 * bias[c] = B[c] - zx * sum(w[c] - zw[c]).
 * Multipliers: (x_scale * w_scale[c]) / y_scale, onnxruntime's float order. */
static oq_status qconv_fold(const oq_kctx *ctx, qconv_state *s)
{
    const qconv_io *io = &s->io;
    oq_status e = qconv_check_params(ctx, s, (int64_t)s->m, true);
    if (e != OQ_OK)
        return e;
    const oq_tensor *w = qin(ctx, io->w), *xz = qin(ctx, io->xz), *wz = qin(ctx, io->wz);
    const oq_tensor *b = qin(ctx, io->b);
    const int32_t *bd = b ? (const int32_t *)b->data : NULL;
    if (s->path == PATH_DW) {
        size_t taps = s->kdim;
        int32_t zx0 = xz ? oq_qp_int(xz, 0) : 0;
        uint32_t zx = (uint32_t)(s->xflip ? zx0 + 128 : zx0);
        bool fits8 = s->dw8_geom;
        for (size_t c = 0; c < s->m; c++) {
            int32_t z = wz ? oq_qp_int(wz, wz->count == 1 ? 0 : c) : 0;
            uint32_t sum = 0;
            for (size_t t = 0; t < taps; t++) {
                int32_t v = oq_qp_int(w, c * taps + t) - z;
                s->dww[c * taps + t] = v;
                sum += (uint32_t)v;
                fits8 = fits8 && v >= -128 && v <= 127;
            }
            s->zw[c] = z;
            s->bias[c] = (int32_t)((bd ? (uint32_t)bd[c] : 0) - zx * sum);
        }
        s->use_dw8 = fits8;
        if (fits8)
            dw8_pack(s);
    } else {
        size_t groups = (size_t)s->group, mg = s->m / groups, kp = s->plan.k4 * 4;
        uint8_t *tmp = malloc(mg * kp + 1);
        if (!tmp)
            return oq_kerr(ctx, OQ_E_NOMEM, "out of memory packing the weights");
        for (size_t g = 0; g < groups; g++) {
            oq_qconv_reorder(&s->plan, mg, (const uint8_t *)w->data + g * mg * s->kdim, false,
                             s->wflip, tmp);
            /* bias[c] = sum(w[c]) in the kernels' domain, for now */
            oq_qpack_left(s->kern, mg, kp, tmp, kp, 1, false, true,
                          (uint8_t *)s->wpack + g * s->gsz, s->bias + g * mg);
        }
        free(tmp);
        int32_t zx0 = xz ? oq_qp_int(xz, 0) : 0;
        uint32_t zx = (uint32_t)(s->xflip ? zx0 + 128 : zx0), kd = (uint32_t)s->kdim;
        for (size_t c = 0; c < s->m; c++) {
            int32_t z = wz ? oq_qp_int(wz, wz->count == 1 ? 0 : c) : 0;
            z = s->wflip ? z - 128 : z;
            uint32_t v = (bd ? (uint32_t)bd[c] : 0) - zx * (uint32_t)s->bias[c];
            s->bias[c] = (int32_t)(v + kd * zx * (uint32_t)z);
            s->zw[c] = z;
        }
    }
    if (!s->qlinear)
        return OQ_OK;
    const oq_tensor *xs = qin(ctx, io->xs), *ws = qin(ctx, io->ws), *ys = qin(ctx, io->ys);
    float sx = oq_qp_float(xs, 0), sy = oq_qp_float(ys, 0);
    for (size_t c = 0; c < s->m; c++) {
        s->mult[c] = sx * oq_qp_float(ws, ws->count == 1 ? 0 : c) / sy;
        s->fixed[c] = oq_qfixed_from_float(s->mult[c]);
    }
    return OQ_OK;
}

/* ---- prepare and run ---- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The geometry as 2-D (1-D: one row): h, w, kh, kw, sh, sw, dh, dw, pt, pl,
 * oh, ow. */
static void geom2(const oq_conv_geom *g, size_t v[12])
{
    int y = g->nd == 2 ? 0 : -1, x = g->nd - 1;
    v[0] = y < 0 ? 1 : (size_t)g->in[y];
    v[1] = (size_t)g->in[x];
    v[2] = y < 0 ? 1 : (size_t)g->k[y];
    v[3] = (size_t)g->k[x];
    v[4] = y < 0 ? 1 : (size_t)g->stride[y];
    v[5] = (size_t)g->stride[x];
    v[6] = y < 0 ? 1 : (size_t)g->dil[y];
    v[7] = (size_t)g->dil[x];
    v[8] = y < 0 ? 0 : (size_t)g->pad[y];
    v[9] = (size_t)g->pad[x];
    v[10] = y < 0 ? 1 : (size_t)g->out[y];
    v[11] = (size_t)g->out[x];
}

static void free_packed(qconv_state *s)
{
    free(s->wpack);
    free(s->ones);
    free(s->boff);
    free(s->coff);
    free(s->dww);
    free(s->dw8w);
    s->wpack = s->ones = NULL;
    s->boff = s->coff = NULL;
    s->dww = NULL;
    s->dw8w = NULL;
    s->dw8_geom = s->use_dw8 = false;
}

/* Path, plan, packed-weight buffers and scratch layout. */
static oq_status qconv_plan(oq_kctx *ctx, qconv_state *s)
{
    const oq_tensor *x = qin(ctx, s->io.x);
    size_t groups = (size_t)s->group, cg = (size_t)x->dims[1] / groups, mg = s->m / groups;
    size_t p = oq_geom_out_size(&s->g), ks = oq_geom_k_size(&s->g);
    size_t ysz = s->qlinear ? 1 : 4, v[12];
    bool nd12 = s->g.nd <= 2;
    if (nd12)
        geom2(&s->g, v);
    free_packed(s);
    if (nd12 && cg == 1) {
        s->path = PATH_DW;
        oq_qdw_plan_init(&s->dwp, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                         v[10], v[11]);
        s->threads = max_threads();
        s->dw_per_thread = align64(oq_qdw_plane_bytes(&s->dwp));
        ctx->scratch_bytes = (size_t)s->threads * s->dw_per_thread;
        s->dww = malloc((s->m * ks + 1) * sizeof *s->dww);
        s->dw8_geom = s->kern->dw8 && oq_qdw8_fits(v[2], v[3], v[5], v[7]);
        s->dw8w = s->dw8_geom ? malloc(s->m * v[2] * 4 + 1) : NULL;
        return s->dww && (s->dw8w || !s->dw8_geom) ? OQ_OK : oq_kerr(ctx, OQ_E_NOMEM,
                                                                     "out of memory");
    }
    if (nd12 && oq_qconv_plan_init(&s->plan, cg, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                   v[8], v[9], v[10], v[11])) {
        s->path = PATH_GEMM;
    } else { /* im2col, then a 1x1 product over its rows */
        s->path = PATH_IM2COL;
        oq_qconv_plan_init(&s->plan, s->kdim, 1, p, 1, 1, 1, 1, 1, 1, 0, 0, 1, p);
    }
    const oq_qconv_plan *pl = &s->plan;
    /* Compacting the columns copies k4 * p * 4 bytes (about k4 * p / 4
     * cycles) and saves the product its vectors of 16 columns that hold
     * only junk, mg / 2 cycles per vector and k4 (resnet's 14x14 and 28x28
     * layers: 1 of 14 and 4 of 53 vectors; 7x7: none, 63 and 49 columns
     * being 4 vectors either way). */
    size_t vq = (pl->q + 15) / 16, vp = (p + 15) / 16;
    s->compact = pl->ws != pl->ow && (vq - vp) * mg * 2 > p;
    bool junk = pl->ws != pl->ow && !s->compact;
    s->col_off = 0;
    s->img_off = s->path == PATH_IM2COL ? align64(s->kdim * p) : 0;
    s->cmp_off = s->img_off + align64(oq_qconv_image_bytes(pl));
    s->qbuf_off = s->cmp_off + (s->compact ? align64(pl->k4 * p * 4 + 64) : 0);
    s->sum_off = s->qbuf_off + (junk ? align64(mg * pl->q * ysz) : 0);
    s->rows_off = s->sum_off + align64((pl->q + 16) * sizeof(int32_t));
    s->threads = max_threads();
    ctx->scratch_bytes = s->rows_off + (size_t)s->threads * oq_qconv_row_bytes(pl);
    s->gsz = oq_qpack_left_bytes(s->kern, mg, pl->k4);
    s->wpack = malloc(groups * s->gsz + 1);
    s->ones = malloc(oq_qpack_left_bytes(s->kern, 1, pl->k4) + 1);
    s->boff = malloc((pl->k4 + 1) * sizeof *s->boff);
    s->coff = s->compact ? malloc((pl->k4 + 1) * sizeof *s->coff) : NULL;
    uint8_t *tmp = malloc(pl->k4 * 4 + 1);
    if (!s->wpack || !s->ones || !s->boff || !tmp || (s->compact && !s->coff)) {
        free(tmp);
        return oq_kerr(ctx, OQ_E_NOMEM, "out of memory for the packed weights");
    }
    oq_qconv_offsets(pl, s->boff);
    for (size_t kk = 0; s->compact && kk < pl->k4; kk++)
        s->coff[kk] = (ptrdiff_t)(kk * p * 4);
    oq_qconv_reorder(pl, 1, NULL, true, false, tmp);
    oq_qpack_left(s->kern, 1, pl->k4 * 4, tmp, pl->k4 * 4, 1, false, true, s->ones, NULL);
    free(tmp);
    return OQ_OK;
}

static oq_status qconv_prepare(oq_kctx *ctx)
{
    qconv_state *s = ctx->state;
    oq_status e = qconv_geometry(ctx, s, &s->g);
    if (e != OQ_OK)
        return e;
    const oq_tensor *x = qin(ctx, s->io.x), *w = qin(ctx, s->io.w);
    const char *why = "";
    s->kern = oq_qkern_select(&why);
    if (!s->kern)
        return oq_kerr(ctx, OQ_E_UNSUPPORTED, "%s", why);
    s->xflip = x->dtype == OQ_INT8;
    s->wflip = w->dtype == OQ_UINT8;
    s->m = (size_t)w->dims[0];
    s->kdim = (size_t)w->dims[1] * oq_geom_k_size(&s->g);
    s->folded = false;
    e = qconv_plan(ctx, s);
    if (e == OQ_OK)
        e = qconv_reserve(ctx, s, s->m ? s->m : 1);
    if (e == OQ_OK && params_const(ctx, &s->io)) {
        e = qconv_fold(ctx, s);
        s->folded = e == OQ_OK;
        if (s->folded && s->use_dw8)
            ctx->scratch_bytes = 0; /* no planes */
    }
    return e;
}

/* The output stage's fixed part (kernels/qkern.h). */
static oq_qout qconv_out(const oq_kctx *ctx, const qconv_state *s)
{
    oq_qout o = {.kind = s->qlinear ? OQ_QOUT_Q8 : OQ_QOUT_I32, .mode = ctx->requant};
    if (s->qlinear) {
        const oq_tensor *yz = qin(ctx, s->io.yz);
        o.zp = oq_qp_int(yz, 0);
        oq_qrange(yz->dtype, &o.qmin, &o.qmax);
    }
    return o;
}

/* Depthwise over planes: output channels c * mg .. from the input channel
 * xc. */
static void dw_task(const qconv_state *s, const oq_qout *base, const uint8_t *xc, uint8_t pad,
                    uint8_t *planes, char *yc, size_t mg, size_t c, size_t ysz)
{
    const oq_qdw_plan *pl = &s->dwp;
    oq_qdw_planes(pl, xc, s->xflip, pad, planes);
    for (size_t mm = 0; mm < mg; mm++) {
        size_t m = c * mg + mm;
        oq_qout o = *base;
        o.c = yc + mm * pl->oh * pl->ow * ysz;
        oq_qdw d = {planes, pl->ph, pl->pw, s->dww + m * s->kdim, s->bias[m], pl->oh, pl->ow,
                    pl->kh, pl->kw, pl->sh, pl->sw, pl->dh, pl->dw, m, &o};
        s->kern->dw(&d);
    }
}

/* Depthwise straight from the image (oq_qdw8): output channels m0..m1 of
 * image i (input channel m / mg each). */
static void dw8_task(const qconv_state *s, const oq_qout *base, const uint8_t *x, uint8_t pad,
                     char *y, size_t i, size_t m0, size_t m1, size_t mg, size_t ysz)
{
    const oq_qdw_plan *pl = &s->dwp;
    size_t in = pl->h * pl->w, p = pl->oh * pl->ow, groups = s->m / mg;
    /* one call for a run of channels when each output channel has its own
     * input channel; else one per output channel */
    size_t step = mg == 1 && m1 > m0 ? m1 - m0 : 1;
    for (size_t m = m0; m < m1; m += step) {
        oq_qout o = *base;
        o.c = y + (i * s->m + m) * p * ysz;
        oq_qdw8 d = {x + (i * groups + m / mg) * in, pl->h, pl->w, s->xflip, pad,
                     s->dw8w + m * pl->kh * 4, s->bias + m, step, pl->oh, pl->ow, pl->kh,
                     pl->kw, pl->sh, pl->sw, pl->dh, pl->dw, pl->pt, pl->pl, m, &o};
        s->kern->dw8(&d);
    }
}

/* Depthwise: straight from the image in nt runs of channels per image, or
 * over planes one input channel per task. */
static void qconv_run_dw(const oq_kctx *ctx, const qconv_state *s)
{
    const oq_tensor *x = qin(ctx, s->io.x), *xz = qin(ctx, s->io.xz);
    oq_tensor *y = ctx->out[0];
    size_t n = (size_t)x->dims[0], groups = (size_t)s->group, mg = s->m / groups;
    size_t in = oq_geom_in_size(&s->g), p = oq_geom_out_size(&s->g), ks = s->kdim;
    size_t ysz = oq_dtype_size(y->dtype), tasks = n * groups;
    uint8_t pad = (xz ? ((const uint8_t *)xz->data)[0] : 0) ^ (s->xflip ? 0x80 : 0);
    oq_qout base = qconv_out(ctx, s);
    base.mult = s->mult;
    base.fixed = s->fixed;
    base.ldc = s->dwp.ow;
    int nt = max_threads() < s->threads ? max_threads() : s->threads;
    bool par = nt > 1 && tasks > 1 && oq_parallel_worth(tasks, p * ks * mg);
    if (s->use_dw8) {
        size_t runs = par ? (size_t)nt : 1;
        runs = runs < groups ? runs : groups;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
        for (size_t t = 0; t < n * runs; t++) {
            size_t i = t / runs, r = t % runs;
            dw8_task(s, &base, x->data, pad, y->data, i, s->m * r / runs, s->m * (r + 1) / runs,
                     mg, ysz);
        }
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (size_t t = 0; t < tasks; t++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        uint8_t *planes = (uint8_t *)ctx->scratch + (size_t)tid * s->dw_per_thread;
        size_t i = t / groups, c = t % groups;
        dw_task(s, &base, (const uint8_t *)x->data + t * in, pad, planes,
                (char *)y->data + (i * s->m + c * mg) * p * ysz, mg, c, ysz);
    }
}

/* The product of group g's weights with the image in scratch, through the
 * output stage o, into yg: over the compacted columns, or over the planes'
 * columns (those past each output row dropped after). */
static void qconv_product(const qconv_state *s, uint8_t *scr, size_t g, oq_qout *o, char *yg,
                          size_t p, size_t ysz, int threads)
{
    const oq_qconv_plan *pl = &s->plan;
    size_t mg = s->m / (size_t)s->group, c0 = g * mg;
    const uint8_t *b = scr + s->img_off;
    const ptrdiff_t *boff = s->boff;
    size_t q = pl->q;
    if (s->compact) {
        oq_qconv_compact(pl, b, s->boff, scr + s->cmp_off, threads);
        b = scr + s->cmp_off;
        boff = s->coff;
        q = p;
    }
    bool junk = q != p;
    int32_t *sums = (int32_t *)(scr + s->sum_off);
    bool any_zw = false;
    for (size_t c = 0; c < mg; c++)
        any_zw |= s->zw[c0 + c] != 0;
    if (any_zw) {
        oq_qout os = {.kind = OQ_QOUT_I32, .c = sums, .ldc = q};
        oq_qgemm_run(s->kern, 1, q, pl->k4, s->ones, b, boff, false, &os, threads);
    }
    o->bias = s->bias + c0;
    o->zch = any_zw ? s->zw + c0 : NULL;
    o->sums = sums;
    o->mult = s->mult + c0;
    o->fixed = s->fixed + c0;
    o->c = junk ? (void *)(scr + s->qbuf_off) : (void *)yg;
    o->ldc = q;
    oq_qgemm_run(s->kern, mg, q, pl->k4, (const uint8_t *)s->wpack + g * s->gsz, b, boff, false,
                 o, threads);
    if (junk) /* drop the columns past each output row */
        for (size_t r = 0; r < mg * pl->oh; r++)
            memcpy(yg + r * pl->ow * ysz, scr + s->qbuf_off + r * pl->ws * ysz, pl->ow * ysz);
}

static oq_status qconv_run(oq_kctx *ctx)
{
    qconv_state *s = ctx->state;
    if (!s->folded) {
        oq_status e = qconv_fold(ctx, s);
        if (e != OQ_OK)
            return e;
    }
    if (s->path == PATH_DW) {
        qconv_run_dw(ctx, s);
        return OQ_OK;
    }
    const oq_tensor *x = qin(ctx, s->io.x), *xz = qin(ctx, s->io.xz);
    oq_tensor *y = ctx->out[0];
    size_t n = (size_t)x->dims[0], groups = (size_t)s->group, mg = s->m / groups;
    size_t cg = (size_t)x->dims[1] / groups, in = oq_geom_in_size(&s->g);
    size_t p = oq_geom_out_size(&s->g), ysz = oq_dtype_size(y->dtype);
    int threads = max_threads() < s->threads ? max_threads() : s->threads;
    uint8_t *scr = ctx->scratch, *img = scr + s->img_off;
    uint8_t padx = xz ? ((const uint8_t *)xz->data)[0] : 0;
    uint8_t pad = padx ^ (s->xflip ? 0x80 : 0);
    oq_qout o = qconv_out(ctx, s);
    for (size_t i = 0; i < n; i++)
        for (size_t g = 0; g < groups; g++) {
            const uint8_t *src = (const uint8_t *)x->data + (i * groups + g) * cg * in;
            if (s->path == PATH_IM2COL) {
                oq_qim2col_ref(&s->g, (int64_t)cg, src, padx, scr + s->col_off, p);
                src = scr + s->col_off;
            }
            oq_qconv_image(&s->plan, src, s->xflip, pad, img, scr + s->rows_off, threads);
            qconv_product(s, scr, g, &o, (char *)y->data + (i * groups + g) * mg * p * ysz, p,
                          ysz, threads);
        }
    return OQ_OK;
}

const oq_op_impl oq_impl_qlinearconv = {qlinearconv_init, qconv_free, qconv_infer,
                                        qconv_prepare, qconv_run};
const oq_op_impl oq_impl_convinteger = {convinteger_init, qconv_free, qconv_infer,
                                        qconv_prepare, qconv_run};
