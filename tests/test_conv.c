/* Conv and ConvTranspose against a naive direct convolution written here
 * (double accumulation), through a session so that each of the operator's
 * paths runs: 1x1 product, im2col folded into the product's packing, batches
 * of small images in one product, the direct depthwise kernel (stride 1 and
 * 2, odd sizes, padding, dilation, channel multiplier, 1-D), groups, 1-D and
 * 3-D, auto_pad. The depthwise kernel's variants (portable C and AVX-512) are
 * also compared with the reference directly. Relu and Clip fused into Conv
 * and Gemm by the plan: the results, and when the fusion must not happen.
 *
 * Tolerance: |y - ref| <= 1e-5 * (sum of |w*x| terms + |bias|) + 1e-6 for
 * each output, a bound well above float rounding for these sums (at most a
 * few hundred terms) and far below any indexing mistake (one wrong term
 * changes an output by about the size of a term). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 88172645463325252ull
#include "testrng.h"


static void fill_rand(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
}

/* ---- building a one-node model ---- */

static oq_attr *new_attr(oq_node *n, const char *name, oq_attr_type type)
{
    n->attrs = realloc(n->attrs, (n->n_attrs + 1) * sizeof *n->attrs);
    oq_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = type;
    return a;
}

static void attr_ints(oq_node *n, const char *name, int count, const int64_t *v)
{
    oq_attr *a = new_attr(n, name, OQ_ATTR_INTS);
    a->n = (size_t)count;
    a->ints = malloc((size_t)count * sizeof *a->ints + 1);
    memcpy(a->ints, v, (size_t)count * sizeof *a->ints);
}

static void attr_int(oq_node *n, const char *name, int64_t v)
{
    new_attr(n, name, OQ_ATTR_INT)->i = v;
}

static void attr_str(oq_node *n, const char *name, const char *s)
{
    oq_attr *a = new_attr(n, name, OQ_ATTR_STRING);
    a->s.len = strlen(s);
    a->s.data = strdup(s);
}

static oq_type *float_type(void)
{
    oq_type *t = calloc(1, sizeof *t);
    t->kind = OQ_TYPE_TENSOR;
    t->elem = OQ_FLOAT;
    return t;
}

/* A model with one node of op_type: input "x" (graph input), initializers
 * "w" and (when b) "b", output "y". The caller adds attributes. */
static oq_model *one_node_model(const char *op_type, const oq_tensor *w, const oq_tensor *b,
                                oq_node **node)
{
    oq_model *m;
    oq_model_new(&m);
    m->ir_version = 8;
    m->n_opsets = 1;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].version = 13;
    oq_graph_new(&m->graph);
    oq_graph *g = m->graph;
    g->n_inputs = 1;
    g->inputs = calloc(1, sizeof *g->inputs);
    g->inputs[0].name = strdup("x");
    g->inputs[0].type = float_type();
    g->n_outputs = 1;
    g->outputs = calloc(1, sizeof *g->outputs);
    g->outputs[0].name = strdup("y");
    oq_tensor *t;
    oq_tensor_clone(w, &t);
    t->name = strdup("w");
    oq_graph_add_init(g, t);
    if (b) {
        oq_tensor_clone(b, &t);
        t->name = strdup("b");
        oq_graph_add_init(g, t);
    }
    oq_node_new(op_type, "n", node);
    oq_node *n = *node;
    n->n_inputs = b ? 3 : 2;
    n->n_outputs = 1;
    n->inputs = calloc(4, sizeof(char *));
    n->outputs = calloc(1, sizeof(char *));
    n->inputs[0] = strdup("x");
    n->inputs[1] = strdup("w");
    if (b)
        n->inputs[2] = strdup("b");
    n->outputs[0] = strdup("y");
    oq_graph_add_node(g, n);
    return m;
}

/* Runs the model on x; returns a copy of the output (NULL on failure). */
static oq_tensor *run_model(const oq_model *m, const oq_tensor *x, int threads)
{
    oq_session_options opts = {.threads = threads};
    oq_session *s = NULL;
    oq_tensor *y = NULL;
    CHECK_OK(oq_session_new(m, &opts, &s));
    if (!s)
        return NULL;
    const oq_tensor *out[1];
    oq_status st = oq_session_run(s, &x, out);
    CHECK_OK(st);
    if (st == OQ_OK)
        oq_tensor_clone(out[0], &y);
    oq_session_free(s);
    return y;
}

/* ---- a convolution case and its reference ---- */

typedef struct conv_case {
    const char *what;
    int nd;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad; /* NULL: pads */
    bool bias;
} conv_case;

/* Output size and leading pad of axis i, from the ONNX formulas. */
static void ref_axis(const conv_case *cc, int i, int64_t *out, int64_t *pb)
{
    int64_t dk = (cc->k[i] - 1) * cc->d[i] + 1;
    if (cc->auto_pad && strncmp(cc->auto_pad, "SAME", 4) == 0) {
        *out = (cc->in[i] + cc->s[i] - 1) / cc->s[i];
        int64_t total = (*out - 1) * cc->s[i] + dk - cc->in[i];
        if (total < 0)
            total = 0;
        *pb = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
    } else if (cc->auto_pad) { /* VALID */
        *out = (cc->in[i] - dk) / cc->s[i] + 1;
        *pb = 0;
    } else {
        *out = (cc->in[i] + cc->pads[i] + cc->pads[i + cc->nd] - dk) / cc->s[i] + 1;
        *pb = cc->pads[i];
    }
}

/* Value of x[n][c] at spatial position pos[], or 0 outside. */
static double x_at(const conv_case *cc, const float *x, int64_t n, int64_t c, const int64_t *pos)
{
    size_t off = (size_t)(n * cc->c + c);
    for (int i = 0; i < cc->nd; i++) {
        if (pos[i] < 0 || pos[i] >= cc->in[i])
            return 0.0;
        off = off * (size_t)cc->in[i] + (size_t)pos[i];
    }
    return x[off];
}

/* ref[n][m][o...] and the sum of |terms| per output, by the definition. */
static void ref_conv(const conv_case *cc, const float *x, const float *w, const float *b,
                     const int64_t *out, const int64_t *pb, double *ref, double *mag)
{
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    int64_t osz = 1, ksz = 1;
    for (int i = 0; i < cc->nd; i++) {
        osz *= out[i];
        ksz *= cc->k[i];
    }
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++)
            for (int64_t o = 0; o < osz; o++) {
                int64_t oi[3], rest = o;
                for (int i = cc->nd - 1; i >= 0; i--) {
                    oi[i] = rest % out[i];
                    rest /= out[i];
                }
                double acc = b ? b[m] : 0.0, sum = b ? fabs(b[m]) : 0.0;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t pos[3], kr = kk;
                        for (int i = cc->nd - 1; i >= 0; i--) {
                            pos[i] = oi[i] * cc->s[i] - pb[i] + (kr % cc->k[i]) * cc->d[i];
                            kr /= cc->k[i];
                        }
                        double t = w[(m * cg + ci) * ksz + kk] *
                                   x_at(cc, x, n, (m / mg) * cg + ci, pos);
                        acc += t;
                        sum += fabs(t);
                    }
                ref[(n * cc->m + m) * osz + o] = acc;
                mag[(n * cc->m + m) * osz + o] = sum;
            }
}

/* Counts the outputs outside the tolerance (printing the first). */
static int compare(const char *what, const float *y, const double *ref, const double *mag,
                   size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = 1e-5 * mag[i] + 1e-6;
        if (fabs((double)y[i] - ref[i]) <= tol)
            continue;
        if (!bad++)
            fprintf(stderr, "%s: output %zu is %.7g, reference %.7g (tolerance %.3g)\n", what,
                    i, (double)y[i], ref[i], tol);
    }
    return bad;
}

static oq_tensor *rand_tensor(int rank, const int64_t *dims)
{
    oq_tensor *t;
    oq_tensor_new(NULL, OQ_FLOAT, rank, dims, &t);
    fill_rand(t->data, t->count);
    return t;
}

static void add_conv_attrs(oq_node *nd, const conv_case *cc, bool kshape)
{
    if (kshape)
        attr_ints(nd, "kernel_shape", cc->nd, cc->k);
    attr_ints(nd, "strides", cc->nd, cc->s);
    attr_ints(nd, "dilations", cc->nd, cc->d);
    attr_int(nd, "group", cc->group);
    if (cc->auto_pad)
        attr_str(nd, "auto_pad", cc->auto_pad);
    else
        attr_ints(nd, "pads", 2 * cc->nd, cc->pads);
}

static void check_conv(const conv_case *cc, int threads)
{
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group}, out[3], pb[3];
    size_t osz = 1;
    for (int i = 0; i < cc->nd; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        ref_axis(cc, i, &out[i], &pb[i]);
        osz *= (size_t)out[i];
    }
    oq_tensor *x = rand_tensor(cc->nd + 2, xd), *w = rand_tensor(cc->nd + 2, wd);
    oq_tensor *b = cc->bias ? rand_tensor(1, &cc->m) : NULL;
    oq_node *node;
    oq_model *m = one_node_model("Conv", w, b, &node);
    add_conv_attrs(node, cc, cc->nd != 1); /* 1-D cases infer the kernel from W */
    oq_tensor *y = run_model(m, x, threads);
    size_t total = (size_t)(cc->n * cc->m) * osz;
    bool shape_ok = y && y->rank == cc->nd + 2 && y->dims[0] == cc->n && y->dims[1] == cc->m;
    for (int i = 0; shape_ok && i < cc->nd; i++)
        shape_ok = y->dims[2 + i] == out[i];
    if (!shape_ok)
        fprintf(stderr, "%s: wrong output shape\n", cc->what);
    CHECK(shape_ok);
    if (shape_ok) {
        double *ref = malloc(total * sizeof *ref), *mag = malloc(total * sizeof *mag);
        ref_conv(cc, x->data, w->data, b ? b->data : NULL, out, pb, ref, mag);
        CHECK(compare(cc->what, y->data, ref, mag, total) == 0);
        free(ref);
        free(mag);
    }
    oq_tensor_free(y);
    oq_tensor_free(x);
    oq_tensor_free(w);
    oq_tensor_free(b);
    oq_model_free(m);
}

/* clang-format off */
static const conv_case conv_cases[] = {
    /* 1x1, stride 1, no padding: the direct sgemm path */
    {"1x1", 2, 2, 8, 6, 1, {5, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL, true},
    {"1x1 groups", 2, 1, 8, 6, 2, {5, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL, false},
    /* im2col + sgemm; batches of small images (under 256 outputs) share one
     * sgemm, larger ones go image by image */
    {"3x3 batch of large images", 2, 3, 3, 4, 1, {20, 21}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, NULL, true},
    {"1x1 batch of large images", 2, 2, 5, 3, 1, {17, 16}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL,
     true},
    {"1x1 stride 2", 2, 2, 8, 6, 1, {9, 7}, {1, 1}, {2, 2}, {1, 1}, {0}, NULL, true},
    {"3x3 pad 1", 2, 2, 3, 4, 1, {7, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"3x3 stride 2 asym pads", 2, 1, 3, 5, 1, {8, 11}, {3, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0},
     NULL, true},
    {"3x2 dilated", 2, 1, 4, 3, 1, {10, 9}, {3, 2}, {1, 2}, {2, 3}, {2, 1, 2, 0}, NULL, false},
    {"5x5 stride 3", 2, 2, 2, 3, 1, {13, 12}, {5, 5}, {3, 3}, {1, 1}, {2, 2, 2, 2}, NULL, true},
    {"3x3 groups 2", 2, 2, 4, 6, 2, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    /* im2col in blocks of output slices (column matrices over 4 MB) */
    {"3x3 64 channels 48x44 (im2col blocks)", 2, 1, 64, 8, 1, {48, 44}, {3, 3}, {1, 1},
     {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"1-D 256 channels (im2col blocks)", 1, 1, 256, 4, 1, {604}, {9}, {1}, {1}, {2, 2}, NULL,
     true},
    {"3-D 32 channels (im2col blocks)", 3, 1, 32, 4, 1, {13, 12, 14}, {3, 3, 3}, {1, 1, 1},
     {1, 1, 1}, {1, 1, 1, 1, 1, 0}, NULL, true},
    {"7x7 large (parallel im2col)", 2, 1, 16, 8, 1, {30, 31}, {7, 7}, {2, 2}, {1, 1},
     {3, 3, 3, 3}, NULL, true},
    {"SAME_UPPER stride 2", 2, 1, 3, 4, 1, {8, 7}, {4, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER",
     true},
    {"SAME_LOWER stride 2", 2, 1, 3, 4, 1, {8, 7}, {4, 3}, {2, 2}, {1, 1}, {0}, "SAME_LOWER",
     true},
    {"VALID", 2, 1, 3, 4, 1, {8, 7}, {3, 3}, {2, 1}, {1, 1}, {0}, "VALID", false},
    /* 7x7 outputs, channels a multiple of 16: the product transposed */
    {"7x7 output 3x3 (transposed product)", 2, 1, 24, 32, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, NULL, true},
    {"7x7 output 1x1 (transposed product)", 2, 1, 70, 48, 1, {7, 7}, {1, 1}, {1, 1}, {1, 1},
     {0}, NULL, true},
    {"7x7 output groups (transposed product)", 2, 1, 64, 64, 2, {13, 14}, {3, 3}, {2, 2},
     {1, 1}, {1, 1, 1, 0}, NULL, false},
    /* depthwise: the direct kernel */
    {"dw 3x3 s1", 2, 2, 5, 5, 5, {13, 17}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"dw 3x3 s1 wide", 2, 1, 3, 3, 3, {6, 40}, {3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, true},
    {"dw 3x3 s2", 2, 2, 6, 6, 6, {14, 15}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"dw 3x3 s2 asym", 2, 1, 4, 4, 4, {15, 34}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 1, 1}, NULL,
     false},
    {"dw 3x3 dilated", 2, 1, 4, 4, 4, {12, 19}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL,
     true},
    {"dw 5x5 s2", 2, 1, 3, 3, 3, {17, 23}, {5, 5}, {2, 2}, {1, 1}, {2, 2, 2, 2}, NULL, true},
    {"dw 3x5 mixed strides", 2, 1, 3, 3, 3, {11, 21}, {3, 5}, {2, 3}, {1, 2}, {1, 0, 0, 3},
     NULL, true},
    {"dw multiplier 2", 2, 2, 3, 6, 3, {9, 10}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL,
     true},
    {"dw SAME_UPPER s2", 2, 1, 8, 8, 8, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", true},
    {"dw many planes (parallel)", 2, 2, 48, 48, 48, {20, 20}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, NULL, true},
    {"single channel, 8 filters", 2, 1, 1, 8, 1, {10, 11}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, NULL, true},
    /* 1-D and 3-D */
    {"1-D", 1, 2, 3, 4, 1, {19}, {3}, {2}, {1}, {1, 2}, NULL, true},
    {"1-D dilated groups", 1, 1, 4, 6, 2, {16}, {3}, {1}, {2}, {0, 0}, NULL, true},
    {"1-D depthwise", 1, 2, 5, 5, 5, {21}, {3}, {2}, {1}, {1, 1}, NULL, true},
    {"3-D", 3, 1, 2, 3, 1, {5, 6, 7}, {3, 2, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 2, 1, 1, 0},
     NULL, true},
    {"3-D groups", 3, 2, 4, 4, 2, {4, 5, 4}, {2, 2, 2}, {2, 1, 1}, {1, 1, 1},
     {0, 0, 0, 1, 1, 1}, NULL, false},
    {"3-D depthwise (im2col)", 3, 1, 3, 3, 3, {4, 5, 6}, {3, 3, 3}, {1, 1, 2}, {1, 1, 1},
     {1, 1, 1, 1, 1, 1}, NULL, true},
};
/* clang-format on */

static void test_conv_cases(void)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        check_conv(&conv_cases[i], 1);
        check_conv(&conv_cases[i], 2);
    }
}

/* ---- ConvTranspose ---- */

typedef struct convt_case {
    const char *what;
    int nd;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pads[6], out_pad[3], out_shape[3];
    const char *auto_pad;
    bool bias;
} convt_case;

static int64_t floor_half(int64_t t) { return t >= 0 ? t / 2 : -((1 - t) / 2); }

static void convt_ref_axis(const convt_case *cc, int i, int64_t *out, int64_t *pb)
{
    int64_t dk = (cc->k[i] - 1) * cc->d[i] + 1;
    int64_t full = cc->s[i] * (cc->in[i] - 1) + cc->out_pad[i] + dk;
    bool upper = cc->auto_pad && strcmp(cc->auto_pad, "SAME_UPPER") == 0;
    if (cc->out_shape[0] || cc->auto_pad) {
        *out = cc->out_shape[0] ? cc->out_shape[i] : cc->in[i] * cc->s[i];
        int64_t total = full - *out;
        *pb = upper ? floor_half(total) : total - floor_half(total);
    } else {
        *out = full - cc->pads[i] - cc->pads[i + cc->nd];
        *pb = cc->pads[i];
    }
}

/* Scatters every x * w term into ref (and |term| into mag), by the
 * definition: y[n][g*mg + j][i*s - pb + k*d] += x[n][c][i] * w[c][j][k]. */
static void ref_convt(const convt_case *cc, const float *x, const float *w, const float *b,
                      const int64_t *out, const int64_t *pb, double *ref, double *mag)
{
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group, isz = 1, osz = 1, ksz = 1;
    for (int i = 0; i < cc->nd; i++) {
        isz *= cc->in[i];
        osz *= out[i];
        ksz *= cc->k[i];
    }
    for (int64_t i = 0; i < cc->n * cc->m * osz; i++) {
        ref[i] = b ? b[i / osz % cc->m] : 0.0;
        mag[i] = fabs(ref[i]);
    }
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t c = 0; c < cc->c; c++)
            for (int64_t j = 0; j < mg; j++)
                for (int64_t xi = 0; xi < isz; xi++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t xr = xi, kr = kk, off = 0, stride = 1;
                        bool inside = true;
                        for (int i = cc->nd - 1; i >= 0; i--) {
                            int64_t p = (xr % cc->in[i]) * cc->s[i] - pb[i] +
                                        (kr % cc->k[i]) * cc->d[i];
                            inside = inside && p >= 0 && p < out[i];
                            off += p * stride;
                            stride *= out[i];
                            xr /= cc->in[i];
                            kr /= cc->k[i];
                        }
                        if (!inside)
                            continue;
                        double t = (double)x[(n * cc->c + c) * isz + xi] *
                                   w[(c * mg + j) * ksz + kk];
                        size_t at = (size_t)((n * cc->m + c / cg * mg + j) * osz + off);
                        ref[at] += t;
                        mag[at] += fabs(t);
                    }
}

static void check_convt(const convt_case *cc)
{
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->c, cc->m / cc->group}, out[3], pb[3];
    size_t osz = 1;
    for (int i = 0; i < cc->nd; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        convt_ref_axis(cc, i, &out[i], &pb[i]);
        osz *= (size_t)out[i];
    }
    oq_tensor *x = rand_tensor(cc->nd + 2, xd), *w = rand_tensor(cc->nd + 2, wd);
    oq_tensor *b = cc->bias ? rand_tensor(1, &cc->m) : NULL;
    oq_node *node;
    oq_model *m = one_node_model("ConvTranspose", w, b, &node);
    attr_ints(node, "strides", cc->nd, cc->s);
    attr_ints(node, "dilations", cc->nd, cc->d);
    attr_ints(node, "output_padding", cc->nd, cc->out_pad);
    attr_int(node, "group", cc->group);
    if (cc->out_shape[0])
        attr_ints(node, "output_shape", cc->nd, cc->out_shape);
    if (cc->auto_pad)
        attr_str(node, "auto_pad", cc->auto_pad);
    else if (!cc->out_shape[0])
        attr_ints(node, "pads", 2 * cc->nd, cc->pads);
    oq_tensor *y = run_model(m, x, 2);
    size_t total = (size_t)(cc->n * cc->m) * osz;
    bool shape_ok = y && y->rank == cc->nd + 2 && y->count == total && y->dims[1] == cc->m;
    for (int i = 0; shape_ok && i < cc->nd; i++)
        shape_ok = y->dims[2 + i] == out[i];
    if (!shape_ok)
        fprintf(stderr, "%s: wrong output shape\n", cc->what);
    CHECK(shape_ok);
    if (shape_ok) {
        double *ref = malloc(total * sizeof *ref), *mag = malloc(total * sizeof *mag);
        ref_convt(cc, x->data, w->data, b ? b->data : NULL, out, pb, ref, mag);
        CHECK(compare(cc->what, y->data, ref, mag, total) == 0);
        free(ref);
        free(mag);
    }
    oq_tensor_free(y);
    oq_tensor_free(x);
    oq_tensor_free(w);
    oq_tensor_free(b);
    oq_model_free(m);
}

/* clang-format off */
static const convt_case convt_cases[] = {
    {"convT 3x3", 2, 1, 2, 3, 1, {4, 5}, {3, 3}, {1, 1}, {1, 1}, {0}, {0}, {0}, NULL, true},
    {"convT stride 2 pads", 2, 2, 3, 2, 1, {5, 4}, {3, 3}, {2, 2}, {1, 1}, {1, 0, 1, 1},
     {0, 0}, {0}, NULL, true},
    {"convT output_padding dilation", 2, 1, 2, 4, 1, {4, 3}, {3, 2}, {3, 2}, {2, 1},
     {1, 1, 0, 0}, {1, 1}, {0}, NULL, false},
    {"convT groups", 2, 2, 4, 6, 2, {3, 4}, {2, 3}, {2, 1}, {1, 1}, {0, 1, 0, 1}, {1, 0}, {0},
     NULL, true},
    {"convT output_shape", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0}, {0}, {10, 8},
     NULL, true},
    {"convT SAME_UPPER", 2, 1, 2, 2, 1, {3, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {0},
     "SAME_UPPER", true},
    {"convT SAME_LOWER", 2, 1, 2, 2, 1, {3, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {0},
     "SAME_LOWER", false},
    {"convT 1-D", 1, 2, 3, 2, 1, {7}, {4}, {3}, {1}, {1, 2}, {2}, {0}, NULL, true},
    {"convT 3-D", 3, 1, 2, 2, 1, {3, 4, 2}, {2, 3, 2}, {2, 1, 2}, {1, 2, 1},
     {0, 1, 0, 1, 0, 0}, {1, 0, 0}, {0}, NULL, true},
};
/* clang-format on */

static void test_convt_cases(void)
{
    for (size_t i = 0; i < sizeof convt_cases / sizeof convt_cases[0]; i++)
        check_convt(&convt_cases[i]);
}

/* ---- the depthwise kernel's variants, directly ---- */

static void ref_dw(const oq_dw2d *p, const float *x, const float *w, float bias, double *ref,
                   double *mag)
{
    for (int64_t oy = 0; oy < p->oh; oy++)
        for (int64_t ox = 0; ox < p->ow; ox++) {
            double acc = bias, sum = fabs(bias);
            for (int64_t ky = 0; ky < p->kh; ky++)
                for (int64_t kx = 0; kx < p->kw; kx++) {
                    int64_t iy = oy * p->sh - p->ph + ky * p->dh;
                    int64_t ix = ox * p->sw - p->pw + kx * p->dw;
                    if (iy < 0 || iy >= p->ih || ix < 0 || ix >= p->iw)
                        continue;
                    double t = (double)w[ky * p->kw + kx] * x[iy * p->iw + ix];
                    acc += t;
                    sum += fabs(t);
                }
            ref[oy * p->ow + ox] = acc;
            mag[oy * p->ow + ox] = sum;
        }
}

static void check_dw_kernel(int64_t ih, int64_t iw, int64_t k, int64_t s, int64_t d, int64_t pad)
{
    oq_dw2d p = {ih, iw, 0, 0, k, k, s, s, d, d, pad, pad};
    p.oh = (ih + 2 * pad - (k - 1) * d - 1) / s + 1;
    p.ow = (iw + 2 * pad - (k - 1) * d - 1) / s + 1;
    size_t on = (size_t)(p.oh * p.ow);
    float *x = malloc((size_t)(ih * iw) * sizeof *x), *w = malloc((size_t)(k * k) * sizeof *w);
    float *y = malloc(on * sizeof *y);
    float *scr = malloc(oq_dw2d_scratch_floats(&p) * sizeof *scr + 64);
    double *ref = malloc(on * sizeof *ref), *mag = malloc(on * sizeof *mag);
    fill_rand(x, (size_t)(ih * iw));
    fill_rand(w, (size_t)(k * k));
    float bias = frand();
    ref_dw(&p, x, w, bias, ref, mag);
    char what[96];
    snprintf(what, sizeof what, "dw kernel %lldx%lld k%lld s%lld d%lld p%lld", (long long)ih,
             (long long)iw, (long long)k, (long long)s, (long long)d, (long long)pad);
    oq_dw2d_plane_generic(&p, x, w, bias, y, scr);
    CHECK(compare(what, y, ref, mag, on) == 0);
    if (oq_cpu_has_avx512()) {
        oq_dw2d_plane_avx512(&p, x, w, bias, y, scr);
        CHECK(compare(what, y, ref, mag, on) == 0);
    }
    free(x);
    free(w);
    free(y);
    free(scr);
    free(ref);
    free(mag);
}

static void test_dw_kernels(void)
{
    static const int64_t sizes[][2] = {{1, 1}, {3, 3}, {7, 5}, {14, 14}, {15, 33}, {28, 16}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int64_t k = 1; k <= 5; k += 2)
            for (int64_t s = 1; s <= 2; s++)
                for (int64_t d = 1; d <= 2; d++)
                    for (int64_t pad = 0; pad <= (k - 1) * d; pad++)
                        if (sizes[i][0] + 2 * pad >= (k - 1) * d + 1 &&
                            sizes[i][1] + 2 * pad >= (k - 1) * d + 1)
                            check_dw_kernel(sizes[i][0], sizes[i][1], k, s, d, pad);
}

/* ---- Relu and Clip fused into the Conv or Gemm before them ----
 *
 * The plan fuses an activation that is the only reader of a Conv's (Gemm's)
 * output into it (runtime/plan.c). Each case runs the pair and compares with
 * the reference followed by the activation; the intermediate value "t" then
 * shows whether the fusion happened (its buffer holds the activated values)
 * and that it did not where it must not: t is also a graph output, Clip's
 * bound is not constant, or a hook watches the nodes' outputs (and sees t
 * before the activation). */

typedef struct fuse_case {
    const char *what;
    const char *op;   /* "Conv" or "Gemm" */
    conv_case cc;     /* Conv: the convolution; Gemm: n = M, c = K, m = N */
    const char *act;  /* "Relu", "Clip", "Clip6 input" (bounds from a graph input) */
    float lo, hi;
    bool t_output;    /* t is also a graph output */
    bool hook;
    bool fused;       /* expected */
    bool late_hook;   /* the hook is set after a first run without it */
} fuse_case;

static float hook_min;
static void min_hook(void *ctx, const oq_node *node, size_t i, const oq_tensor *const *out,
                     size_t n_out)
{
    (void)ctx;
    (void)i;
    (void)n_out;
    if (strcmp(node->op_type, "Relu") != 0 && strcmp(node->op_type, "Clip") != 0)
        for (size_t k = 0; k < out[0]->count; k++)
            if (((const float *)out[0]->data)[k] < hook_min)
                hook_min = ((const float *)out[0]->data)[k];
}

static void add_init(oq_graph *g, const char *name, float v)
{
    oq_tensor *t;
    oq_tensor_new(name, OQ_FLOAT, 0, NULL, &t);
    *(float *)t->data = v;
    oq_graph_add_init(g, t);
}

static void check_fused(const fuse_case *fc)
{
    const conv_case *cc = &fc->cc;
    bool conv = strcmp(fc->op, "Conv") == 0;
    int64_t xd[4] = {cc->n, cc->c, cc->in[0], cc->in[1]}, wd[4] = {cc->m, cc->c / cc->group,
                                                                    cc->k[0], cc->k[1]};
    int64_t out[3] = {1, 1, 1}, pb[3] = {0};
    size_t osz = 1;
    if (conv)
        for (int i = 0; i < cc->nd; i++) {
            ref_axis(cc, i, &out[i], &pb[i]);
            osz *= (size_t)out[i];
        }
    int64_t gx[2] = {cc->n, cc->c}, gw[2] = {cc->c, cc->m};
    oq_tensor *x = conv ? rand_tensor(4, xd) : rand_tensor(2, gx);
    oq_tensor *w = conv ? rand_tensor(4, wd) : rand_tensor(2, gw);
    oq_tensor *b = rand_tensor(1, &cc->m);
    oq_node *node, *act;
    oq_model *m = one_node_model(fc->op, w, b, &node);
    if (conv)
        add_conv_attrs(node, cc, true);
    oq_graph *g = m->graph;
    free(node->outputs[0]);
    node->outputs[0] = strdup("t");
    bool clip = strncmp(fc->act, "Clip", 4) == 0;
    oq_node_new(clip ? "Clip" : "Relu", "act", &act);
    act->n_inputs = clip ? 3 : 1;
    act->n_outputs = 1;
    act->inputs = calloc(3, sizeof(char *));
    act->outputs = calloc(1, sizeof(char *));
    act->inputs[0] = strdup("t");
    act->outputs[0] = strdup("y");
    if (clip) {
        act->inputs[1] = strdup("lo");
        act->inputs[2] = strdup("hi");
        add_init(g, "hi", fc->hi);
        if (strcmp(fc->act, "Clip") == 0) {
            add_init(g, "lo", fc->lo);
        } else { /* the lower bound is a graph input */
            g->inputs = realloc(g->inputs, 2 * sizeof *g->inputs);
            memset(&g->inputs[1], 0, sizeof g->inputs[1]);
            g->inputs[1].name = strdup("lo");
            g->inputs[1].type = float_type();
            g->n_inputs = 2;
        }
    }
    oq_graph_add_node(g, act);
    if (fc->t_output) {
        g->outputs = realloc(g->outputs, 2 * sizeof *g->outputs);
        memset(&g->outputs[1], 0, sizeof g->outputs[1]);
        g->outputs[1].name = strdup("t");
        g->n_outputs = 2;
    }
    oq_session *s = NULL;
    oq_session_options opts = {.threads = 2};
    CHECK_OK(oq_session_new(m, &opts, &s));
    oq_tensor *lo_in;
    oq_tensor_new("lo", OQ_FLOAT, 0, NULL, &lo_in);
    *(float *)lo_in->data = fc->lo;
    const oq_tensor *ins[2] = {x, lo_in}, *outs[2] = {NULL, NULL};
    hook_min = INFINITY;
    if (fc->hook)
        oq_session_set_hook(s, min_hook, NULL);
    for (int run = 0; s && run < 2; run++) { /* the plan is built once, then reused */
        bool hooked = fc->hook || (fc->late_hook && run == 1);
        if (fc->late_hook && run == 1)
            oq_session_set_hook(s, min_hook, NULL);
        CHECK_OK(oq_session_run(s, ins, outs));
        size_t total = conv ? (size_t)(cc->n * cc->m) * osz : (size_t)(cc->n * cc->m);
        double *ref = malloc(total * sizeof *ref), *mag = malloc(total * sizeof *mag);
        if (conv) {
            ref_conv(cc, x->data, w->data, b->data, out, pb, ref, mag);
        } else {
            const float *xp = x->data, *wp = w->data, *bp = b->data;
            for (int64_t i = 0; i < cc->n; i++)
                for (int64_t j = 0; j < cc->m; j++) {
                    double acc = bp[j], sum = fabs(bp[j]);
                    for (int64_t p = 0; p < cc->c; p++) {
                        double t = (double)xp[i * cc->c + p] * wp[p * cc->m + j];
                        acc += t;
                        sum += fabs(t);
                    }
                    ref[i * cc->m + j] = acc;
                    mag[i * cc->m + j] = sum;
                }
        }
        bool negatives = false;
        for (size_t i = 0; i < total; i++) {
            negatives = negatives || ref[i] < 0;
            ref[i] = ref[i] < fc->lo ? fc->lo : ref[i] > fc->hi ? fc->hi : ref[i];
        }
        CHECK(negatives); /* else the case shows nothing */
        CHECK(outs[0] && outs[0]->count == total);
        if (outs[0] && outs[0]->count == total)
            CHECK(compare(fc->what, outs[0]->data, ref, mag, total) == 0);
        const oq_tensor *t = oq_session_value(s, "t", NULL);
        float tmin = INFINITY;
        for (size_t i = 0; t && i < t->count; i++)
            tmin = ((const float *)t->data)[i] < tmin ? ((const float *)t->data)[i] : tmin;
        bool fused = t && tmin >= fc->lo, want = fc->fused && !hooked;
        if (fused != want)
            fprintf(stderr, "%s (run %d): the activation was%s fused\n", fc->what, run,
                    fused ? "" : " not");
        CHECK(fused == want);
        if (hooked)
            CHECK(hook_min < 0); /* the hook saw the product before the activation */
        free(ref);
        free(mag);
    }
    oq_session_free(s);
    oq_tensor_free(lo_in);
    oq_tensor_free(x);
    oq_tensor_free(w);
    oq_tensor_free(b);
    oq_model_free(m);
}

/* clang-format off */
static const fuse_case fuse_cases[] = {
    {"Conv 3x3 + Relu", "Conv", {"", 2, 1, 6, 20, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
     "Relu", 0.0f, INFINITY, false, false, true, false},
    {"Conv 1x1 + Clip 0..6", "Conv", {"", 2, 2, 8, 7, 1, {6, 5}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL, true},
     "Clip", 0.0f, 0.25f, false, false, true, false},
    {"Conv batch of small images + Clip", "Conv", {"", 2, 3, 5, 9, 1, {5, 6}, {3, 3}, {2, 1}, {1, 1}, {1, 0, 1, 1}, NULL, true},
     "Clip", -0.3f, 0.4f, false, false, true, false},
    {"Conv depthwise + Clip", "Conv", {"", 2, 2, 6, 6, 6, {12, 13}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
     "Clip", 0.0f, 0.5f, false, false, true, false},
    {"Gemm + Relu", "Gemm", {"", 2, 5, 40, 33, 1, {0}, {0}, {0}, {0}, {0}, NULL, true},
     "Relu", 0.0f, INFINITY, false, false, true, false},
    {"t is a graph output: not fused", "Conv", {"", 2, 1, 6, 20, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
     "Relu", 0.0f, INFINITY, true, false, false, false},
    {"Clip bound from a graph input: not fused", "Conv", {"", 2, 1, 6, 20, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
     "Clip6 input", 0.0f, 6.0f, false, false, false, false},
    {"a hook watches: not fused", "Conv", {"", 2, 1, 6, 20, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
     "Relu", 0.0f, INFINITY, false, true, false, false},
};
/* clang-format on */

static void test_fused_activations(void)
{
    for (size_t i = 0; i < sizeof fuse_cases / sizeof fuse_cases[0]; i++)
        check_fused(&fuse_cases[i]);
    /* a hook set after a fused plan ran: the plan is rebuilt without fusion */
    fuse_case late = fuse_cases[0];
    late.what = "hook set after the first run";
    late.late_hook = true;
    check_fused(&late);
}

int main(void)
{
    test_dw_kernels();
    test_conv_cases();
    test_convt_cases();
    test_fused_activations();
    return TEST_SUMMARY();
}
