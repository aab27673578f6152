/* MatMul and Gemm against naive products written here (double
 * accumulation): numpy matmul broadcasting of batch axes (including B with
 * batch axes and a 2-D A, which takes the per-batch path, and the small-matrix
 * loop), 1-D promotion, and Gemm's transposes, alpha/beta and C broadcasts.
 * Tolerance as in test_conv.c: 1e-5 * (sum of |terms|) + 1e-6. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "onnxq/onnxq.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#include "testrng.h"


static oq_tensor *rand_tensor(int rank, const int64_t *dims)
{
    oq_tensor *t;
    oq_tensor_new(NULL, OQ_FLOAT, rank, dims, &t);
    for (size_t i = 0; i < t->count; i++)
        ((float *)t->data)[i] = frand();
    return t;
}

static oq_type *float_type(void)
{
    oq_type *t = calloc(1, sizeof *t);
    t->kind = OQ_TYPE_TENSOR;
    t->elem = OQ_FLOAT;
    return t;
}

/* One node of op_type on graph inputs "a", "b" and (when c) initializer "c";
 * output "y"; opset given. */
static oq_model *model(const char *op_type, const oq_tensor *c, int64_t opset, oq_node **node)
{
    oq_model *m;
    oq_model_new(&m);
    m->ir_version = 8;
    m->n_opsets = 1;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].version = opset;
    oq_graph_new(&m->graph);
    oq_graph *g = m->graph;
    g->n_inputs = 2;
    g->inputs = calloc(2, sizeof *g->inputs);
    g->inputs[0].name = strdup("a");
    g->inputs[0].type = float_type();
    g->inputs[1].name = strdup("b");
    g->inputs[1].type = float_type();
    g->n_outputs = 1;
    g->outputs = calloc(1, sizeof *g->outputs);
    g->outputs[0].name = strdup("y");
    if (c) {
        oq_tensor *t;
        oq_tensor_clone(c, &t);
        t->name = strdup("c");
        oq_graph_add_init(g, t);
    }
    oq_node_new(op_type, "n", node);
    oq_node *n = *node;
    n->n_inputs = c ? 3 : 2;
    n->n_outputs = 1;
    n->inputs = calloc(3, sizeof(char *));
    n->outputs = calloc(1, sizeof(char *));
    n->inputs[0] = strdup("a");
    n->inputs[1] = strdup("b");
    if (c)
        n->inputs[2] = strdup("c");
    n->outputs[0] = strdup("y");
    oq_graph_add_node(g, n);
    return m;
}

static oq_tensor *run(const oq_model *m, const oq_tensor *a, const oq_tensor *b)
{
    oq_session_options opts = {.threads = 2};
    oq_session *s = NULL;
    oq_tensor *y = NULL;
    CHECK_OK(oq_session_new(m, &opts, &s));
    if (!s)
        return NULL;
    const oq_tensor *in[2] = {a, b}, *out[1];
    oq_status st = oq_session_run(s, in, out);
    CHECK_OK(st);
    if (st == OQ_OK)
        oq_tensor_clone(out[0], &y);
    oq_session_free(s);
    return y;
}

static bool close_to(const char *what, size_t i, float y, double ref, double mag)
{
    double tol = 1e-5 * mag + 1e-6;
    if (fabs((double)y - ref) <= tol)
        return true;
    fprintf(stderr, "%s: output %zu is %.7g, reference %.7g\n", what, i, (double)y, ref);
    return false;
}

/* ---- MatMul ---- */

/* Index of broadcast batch entry idx (over out[0..r)) in a tensor whose batch
 * axes are d[0..rd), right-aligned. */
static size_t bidx(const int64_t *out, int r, const int64_t *d, int rd, size_t idx)
{
    size_t off = 0, stride = 1;
    for (int i = r - 1; i >= 0; i--) {
        size_t coord = idx % (size_t)out[i];
        idx /= (size_t)out[i];
        int j = i - (r - rd);
        if (j < 0)
            continue;
        if (d[j] != 1)
            off += coord * stride;
        stride *= (size_t)d[j];
    }
    return off;
}

static void check_matmul(const char *what, int ra, const int64_t *da, int rb, const int64_t *db,
                         int ry, const int64_t *dy)
{
    oq_tensor *a = rand_tensor(ra, da), *b = rand_tensor(rb, db);
    oq_node *n;
    oq_model *m = model("MatMul", NULL, 13, &n);
    oq_tensor *y = run(m, a, b);
    bool ok = y && y->rank == ry && memcmp(y->dims, dy, (size_t)ry * sizeof *dy) == 0;
    CHECK(ok);
    int64_t M = ra == 1 ? 1 : da[ra - 2], K = da[ra - 1], N = rb == 1 ? 1 : db[rb - 1];
    int nb = ry - (ra > 1) - (rb > 1); /* batch axes of y */
    size_t batches = 1;
    for (int i = 0; i < nb; i++)
        batches *= (size_t)dy[i];
    const float *pa = a->data, *pb = b->data;
    for (size_t t = 0; ok && t < batches; t++) {
        size_t oa = bidx(dy, nb, da, ra > 2 ? ra - 2 : 0, t) * (size_t)(M * K);
        size_t ob = bidx(dy, nb, db, rb > 2 ? rb - 2 : 0, t) * (size_t)(K * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0, mag = 0;
                for (int64_t k = 0; k < K; k++) {
                    double v = (double)pa[oa + (size_t)(i * K + k)] * pb[ob + (size_t)(k * N + j)];
                    acc += v;
                    mag += fabs(v);
                }
                size_t at = t * (size_t)(M * N) + (size_t)(i * N + j);
                ok = close_to(what, at, ((float *)y->data)[at], acc, mag);
                CHECK(ok);
                if (!ok)
                    break;
            }
    }
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(y);
    oq_model_free(m);
}

static void test_matmul(void)
{
    check_matmul("2-D", 2, (int64_t[]){5, 7}, 2, (int64_t[]){7, 3}, 2, (int64_t[]){5, 3});
    check_matmul("batched A, 2-D B (one sgemm)", 3, (int64_t[]){4, 5, 70}, 2,
                 (int64_t[]){70, 80}, 3, (int64_t[]){4, 5, 80});
    check_matmul("2-D A, batched B", 2, (int64_t[]){3, 4}, 3, (int64_t[]){6, 4, 2}, 3,
                 (int64_t[]){6, 3, 2});
    check_matmul("broadcast batches", 4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){5, 4, 2}, 4,
                 (int64_t[]){2, 5, 3, 2});
    check_matmul("large batched (sgemm per batch)", 3, (int64_t[]){3, 70, 65}, 3,
                 (int64_t[]){1, 65, 66}, 3, (int64_t[]){3, 70, 66});
    check_matmul("1-D A", 1, (int64_t[]){4}, 3, (int64_t[]){2, 4, 3}, 2, (int64_t[]){2, 3});
    check_matmul("1-D B", 3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 2, (int64_t[]){2, 3});
    check_matmul("1-D both", 1, (int64_t[]){6}, 1, (int64_t[]){6}, 0, (int64_t[]){0});
    check_matmul("many small (parallel loop)", 3, (int64_t[]){300, 4, 5}, 3,
                 (int64_t[]){300, 5, 6}, 3, (int64_t[]){300, 4, 6});
}

/* ---- Gemm ---- */

static void check_gemm(const char *what, int64_t M, int64_t N, int64_t K, int ta, int tb,
                       float alpha, float beta, int rc, const int64_t *dc, int64_t opset)
{
    int64_t da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
    oq_tensor *a = rand_tensor(2, da), *b = rand_tensor(2, db);
    oq_tensor *c = rc >= 0 ? rand_tensor(rc, dc) : NULL;
    oq_node *n;
    oq_model *m = model("Gemm", c, opset, &n);
    n->n_attrs = opset < 7 ? 5 : 4; /* broadcast only before opset 7 */
    n->attrs = calloc(5, sizeof *n->attrs);
    const char *names[5] = {"alpha", "beta", "transA", "transB", "broadcast"};
    for (size_t i = 0; i < n->n_attrs; i++) {
        n->attrs[i].name = strdup(names[i]);
        n->attrs[i].type = i < 2 ? OQ_ATTR_FLOAT : OQ_ATTR_INT;
    }
    n->attrs[0].f = alpha;
    n->attrs[1].f = beta;
    n->attrs[2].i = ta;
    n->attrs[3].i = tb;
    n->attrs[4].i = 1;
    oq_tensor *y = run(m, a, b);
    bool ok = y && y->rank == 2 && y->dims[0] == M && y->dims[1] == N;
    CHECK(ok);
    const float *pa = a->data, *pb = b->data, *pc = c ? c->data : NULL;
    for (int64_t i = 0; ok && i < M; i++)
        for (int64_t j = 0; ok && j < N; j++) {
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                double v = (double)pa[ta ? k * M + i : i * K + k] * pb[tb ? j * K + k : k * N + j];
                acc += v;
                mag += fabs(v);
            }
            double cv = 0;
            if (pc) {
                int64_t ci = rc == 2 && dc[0] != 1 ? i : 0;
                int64_t cj = rc >= 1 && dc[rc - 1] != 1 ? j : 0;
                cv = pc[ci * (rc >= 1 ? dc[rc - 1] : 1) + cj];
            }
            ok = close_to(what, (size_t)(i * N + j), ((float *)y->data)[i * N + j],
                          alpha * acc + beta * cv, fabs(alpha) * mag + fabs(beta * cv));
            CHECK(ok);
        }
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(c);
    oq_tensor_free(y);
    oq_model_free(m);
}

static void test_gemm(void)
{
    check_gemm("plain, C [M,N]", 5, 6, 7, 0, 0, 1.0f, 1.0f, 2, (int64_t[]){5, 6}, 13);
    check_gemm("transA transB, C [N]", 4, 9, 3, 1, 1, 0.5f, 2.0f, 1, (int64_t[]){9}, 13);
    check_gemm("transB, C [M,1]", 7, 5, 8, 0, 1, -1.5f, 0.25f, 2, (int64_t[]){7, 1}, 13);
    check_gemm("transA, scalar C", 3, 4, 5, 1, 0, 1.0f, -1.0f, 0, NULL, 13);
    check_gemm("no C (opset 11+)", 6, 2, 4, 0, 0, 2.0f, 1.0f, -1, NULL, 13);
    check_gemm("beta 0 ignores C", 2, 3, 4, 0, 0, 1.0f, 0.0f, 2, (int64_t[]){1, 3}, 13);
    check_gemm("opset 6 broadcast=1, C [N]", 3, 8, 5, 0, 1, 1.0f, 1.0f, 1, (int64_t[]){8}, 6);
}

/* ---- oq_sgemm (both operands packed per call) split over threads ---- */

static void check_split(int64_t m, int64_t n, int64_t k, bool ta, bool tb, int threads)
{
    int64_t da[2] = {ta ? k : m, ta ? m : k}, db[2] = {tb ? n : k, tb ? k : n};
    int64_t dc[2] = {m, n};
    oq_tensor *a = rand_tensor(2, da), *b = rand_tensor(2, db), *c = rand_tensor(2, dc);
    const float *pa = a->data, *pb = b->data;
    float *pc = c->data;
    double *want = malloc((size_t)(m * n) * sizeof *want), *mag = malloc((size_t)(m * n) * sizeof *mag);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0, sum = 0;
            for (int64_t p = 0; p < k; p++) {
                double v = (double)pa[ta ? p * m + i : i * k + p] * pb[tb ? j * k + p : p * n + j];
                acc += v;
                sum += fabs(v);
            }
            want[i * n + j] = 0.5 * acc - 2.0 * pc[i * n + j];
            mag[i * n + j] = 0.5 * sum + 2.0 * fabs(pc[i * n + j]);
        }
    CHECK(oq_sgemm(ta, tb, m, n, k, 0.5f, pa, ta ? m : k, pb, tb ? k : n, -2.0f, pc, n, threads));
    bool ok = true;
    for (int64_t i = 0; ok && i < m * n; i++)
        ok = close_to("oq_sgemm split", (size_t)i, pc[i], want[i], mag[i]);
    CHECK(ok);
    free(want);
    free(mag);
    oq_tensor_free(a);
    oq_tensor_free(b);
    oq_tensor_free(c);
}

static void test_split(void)
{
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        check_split(40, 531, 77, ta, tb, 3);  /* split by columns, ragged last block */
        check_split(301, 45, 90, ta, tb, 2);  /* split by rows */
        check_split(7, 9, 5, ta, tb, 2);      /* too small to split */
    }
}

int main(void)
{
    test_matmul();
    test_gemm();
    test_split();
    return TEST_SUMMARY();
}
