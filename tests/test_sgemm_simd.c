/* The float32 product (runtime/kernels/sgemm.h) with every micro-kernel this
 * build and CPU run (portable C, AVX2, AVX-512), against products computed
 * here in double precision:
 *   - sizes 1..~100 including primes and the kernels' tile edges, K above the
 *     K block and N above the N block, K = 0;
 *   - both orientations of each operand, A and B prepacked or packed per call,
 *     alpha, beta (0 must not read C: it holds NaN), bias per row, Relu;
 *   - B as the column matrix of a convolution (1-D, 2-D, 3-D; strides 1-3,
 *     dilation, padding on either side, several images side by side),
 *     checked against oq_im2col;
 *   - 1 and 3 threads (splits by rows, columns and both);
 *   - each ISA kernel against the portable one, and the ISA packers against
 *     the portable packers bit for bit (they only move floats).
 * Tolerance: |y - ref| <= 1e-5 * (sum of |terms|) + 1e-6, the rule of
 * test_conv.c and test_gemm.c; the terms are alpha*a*b for every k, beta*c
 * and the bias (the activation is applied to the reference before comparing). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/isa.h"
#include "kernels/sgemm.h"
#include "testutil.h"
#define TEST_RNG_SEED 0x2545F4914F6CDD1Dull
#include "testrng.h"

static int irand(int n) { return (int)((frand() * 0.5f + 0.5f) * (float)n) % n; }

static float *rand_floats(size_t n)
{
    float *p = oq_sgemm_alloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static const char *kname;
static int failures_shown;

static bool close_to(const char *what, size_t i, float y, double ref, double mag)
{
    double tol = 1e-5 * mag + 1e-6;
    if (fabs((double)y - ref) <= tol)
        return true;
    if (failures_shown++ < 10)
        fprintf(stderr, "%s [%s]: output %zu is %.7g, reference %.7g (tolerance %.3g)\n", what,
                kname, i, (double)y, ref, tol);
    return false;
}

/* ---- plain products ---- */

typedef struct gcase {
    int64_t m, n, k;
    bool ta, tb, pack_a, pack_b, act, bias;
    float alpha, beta;
    int threads;
    bool trans_c; /* C stored transposed: [n][m], bias per column of the product */
} gcase;

static void check_gemm(const oq_sgemm_kern *kern, const gcase *g)
{
    int64_t m = g->m, n = g->n, k = g->k;
    /* C: cr rows of cc columns, ldc apart */
    int64_t cr = g->trans_c ? n : m, cc = g->trans_c ? m : n;
    int64_t lda = (g->ta ? m : k) + 3, ldb = (g->tb ? k : n) + 5, ldc = cc + 2;
    float *a = rand_floats((size_t)((g->ta ? k : m) * lda));
    float *b = rand_floats((size_t)((g->tb ? n : k) * ldb));
    float *c = rand_floats((size_t)(cr * ldc));
    float *bias = g->bias ? rand_floats((size_t)cr) : NULL;
    if (g->beta == 0.0f)
        for (int64_t i = 0; i < cr * ldc; i++)
            c[i] = NAN;
    float *c0 = malloc((size_t)(cr * ldc) * sizeof *c0);
    memcpy(c0, c, (size_t)(cr * ldc) * sizeof *c0);
    float *pa = NULL, *pb = NULL;
    oq_sgemm_a A = {NULL, a, lda, g->ta, NULL};
    oq_sgemm_b B = {NULL, b, ldb, g->tb, NULL};
    if (g->pack_a) {
        pa = oq_sgemm_alloc(oq_sgemm_packed_a_floats(kern, m, k));
        oq_sgemm_pack_a(kern, g->ta, m, k, a, lda, pa);
        A.packed = pa;
    }
    if (g->pack_b) {
        pb = oq_sgemm_alloc(oq_sgemm_packed_b_floats(kern, n, k));
        oq_sgemm_pack_b(kern, g->tb, n, k, b, ldb, pb);
        B.packed = pb;
    }
    /* the activation: Relu or a Clip (ReLU6-like, or bounds inside the data) */
    oq_sgemm_act act = {0.0f, INFINITY};
    if (g->act && (m + n) % 3 == 1)
        act = (oq_sgemm_act){0.0f, 6.0f};
    else if (g->act && (m + n) % 3 == 2)
        act = (oq_sgemm_act){-0.25f, 0.5f};
    CHECK(oq_sgemm_run(kern, m, n, k, g->alpha, &A, &B, g->beta, c, ldc, g->trans_c, bias,
                       g->act ? &act : NULL, g->threads));
    bool ok = true;
    for (int64_t i = 0; i < m && ok; i++) {
        for (int64_t j = 0; j < n && ok; j++) {
            size_t at = (size_t)(g->trans_c ? j * ldc + i : i * ldc + j); /* C's element */
            float bv = bias ? bias[g->trans_c ? j : i] : 0.0f;
            double acc = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double t = (double)a[g->ta ? p * lda + i : i * lda + p] *
                           b[g->tb ? j * ldb + p : p * ldb + j];
                acc += t;
                mag += fabs(t);
            }
            double ref = g->alpha * acc, rmag = fabs(g->alpha) * mag;
            if (g->beta != 0.0f) {
                ref += (double)g->beta * c0[at];
                rmag += fabs((double)g->beta * c0[at]);
            }
            ref += bv;
            rmag += fabs(bv);
            if (g->act) {
                ref = ref < act.lo ? act.lo : ref;
                ref = ref > act.hi ? act.hi : ref;
            }
            ok = close_to("gemm", at, c[at], ref, rmag);
        }
    }
    /* the columns of C past its width are not touched */
    for (int64_t i = 0; i < cr && ok; i++)
        for (int64_t j = cc; j < ldc && ok; j++)
            ok = memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c) == 0;
    if (!ok)
        fprintf(stderr, "  case m=%lld n=%lld k=%lld ta=%d tb=%d packA=%d packB=%d alpha=%g "
                        "beta=%g bias=%d act=%d threads=%d trans_c=%d\n",
                (long long)m, (long long)n, (long long)k, g->ta, g->tb, g->pack_a, g->pack_b,
                (double)g->alpha, (double)g->beta, g->bias, g->act, g->threads, g->trans_c);
    CHECK(ok);
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    free(pa);
    free(pb);
}

static void test_gemm_sizes(const oq_sgemm_kern *kern)
{
    static const int64_t sizes[] = {1, 2, 3, 5, 7, 13, 14, 15, 16, 17, 29, 31, 32, 33, 47, 61, 64, 97, 100};
    const int ns = (int)(sizeof sizes / sizeof *sizes);
    /* every M against a few N and K, and the reverse */
    for (int i = 0; i < ns; i++)
        for (int r = 0; r < 3; r++) {
            gcase g = {sizes[i], sizes[irand(ns)], sizes[irand(ns)], irand(2), irand(2),
                       irand(2), irand(2), irand(3) == 0, irand(2), 1.0f, 0.0f, 1, irand(3) == 0};
            static const float alphas[] = {1.0f, 0.5f, -2.0f}, betas[] = {0.0f, 1.0f, -0.75f};
            g.alpha = alphas[irand(3)];
            g.beta = betas[irand(3)];
            check_gemm(kern, &g);
            int64_t t = g.m;
            g.m = g.n;
            g.n = t;
            g.threads = 3;
            check_gemm(kern, &g);
        }
    /* K = 0: C = beta C + bias */
    check_gemm(kern, &(gcase){5, 7, 0, false, false, false, false, false, true, 1.0f, -0.75f, 1, false});
    check_gemm(kern, &(gcase){5, 7, 0, true, true, true, true, true, true, 2.0f, 0.0f, 3, true});
    /* K above the K block (several blocks: accumulation, bias once, Relu last) */
    check_gemm(kern, &(gcase){19, 45, 600, false, false, true, false, true, true, 1.0f, 1.0f, 1, false});
    check_gemm(kern, &(gcase){33, 70, 1031, true, true, false, true, true, true, -0.5f, 0.0f, 3, true});
    /* N above the N block, with splits */
    check_gemm(kern, &(gcase){9, 2100, 37, false, false, true, false, false, true, 1.0f, 0.0f, 1, false});
    check_gemm(kern, &(gcase){40, 2100, 37, false, true, false, false, true, false, 1.0f, 1.0f, 3, true});
    check_gemm(kern, &(gcase){301, 45, 90, true, false, false, false, true, true, 1.0f, 0.0f, 2, false});
}

/* ---- convolutions ---- */

typedef struct ccase {
    int nd;
    int64_t c, m, n_img, in[3], k[3], s[3], d[3], p0[3], p1[3];
    int threads;
    int trans; /* the product transposed (col^T W^T): 1 W^T packed, 2 W^T a matrix */
} ccase;

static void check_conv(const oq_sgemm_kern *kern, const ccase *cc)
{
    oq_conv_geom g = {0};
    g.nd = cc->nd;
    for (int i = 0; i < g.nd; i++) {
        g.in[i] = cc->in[i], g.k[i] = cc->k[i], g.stride[i] = cc->s[i], g.dil[i] = cc->d[i];
        g.pad[i] = cc->p0[i];
        g.out[i] = (cc->in[i] + cc->p0[i] + cc->p1[i] - (cc->k[i] - 1) * cc->d[i] - 1) / cc->s[i] + 1;
    }
    int64_t in_size = (int64_t)oq_geom_in_size(&g), out_size = (int64_t)oq_geom_out_size(&g);
    int64_t kdim = cc->c * (int64_t)oq_geom_k_size(&g), n = cc->n_img * out_size;
    /* the images have 2 more channels than the product reads (img_stride) */
    int64_t img_stride = (cc->c + 2) * in_size;
    float *x = rand_floats((size_t)(cc->n_img * img_stride));
    float *w = rand_floats((size_t)(cc->m * kdim)), *bias = rand_floats((size_t)cc->m);
    float *col = malloc((size_t)(kdim * n) * sizeof *col);
    for (int64_t i = 0; i < cc->n_img; i++)
        oq_im2col(&g, cc->c, x + i * img_stride, col + i * out_size, (size_t)n, false);
    float *y = rand_floats((size_t)(cc->m * n));
    float *wp = oq_sgemm_alloc(oq_sgemm_packed_a_floats(kern, cc->m, kdim));
    float *wt = oq_sgemm_alloc(oq_sgemm_packed_b_floats(kern, cc->m, kdim));
    oq_sgemm_pack_a(kern, false, cc->m, kdim, w, kdim, wp);
    oq_sgemm_pack_b(kern, true, cc->m, kdim, w, kdim, wt);
    oq_sgemm_conv cv = {&g, cc->c, cc->n_img, img_stride};
    if (!cc->trans) { /* y = W col */
        oq_sgemm_a A = {wp, NULL, 0, false, NULL};
        oq_sgemm_b B = {NULL, x, 0, false, &cv};
        CHECK(oq_sgemm_run(kern, cc->m, n, kdim, 1.0f, &A, &B, 0.0f, y, n, false, bias, NULL,
                           cc->threads));
    } else { /* y^T = col^T W^T, W^T packed or not, stored transposed */
        oq_sgemm_a A = {NULL, x, 0, false, &cv};
        oq_sgemm_b B = {cc->trans == 1 ? wt : NULL, w, kdim, true, NULL};
        CHECK(oq_sgemm_run(kern, n, cc->m, kdim, 1.0f, &A, &B, 0.0f, y, n, true, bias, NULL,
                           cc->threads));
    }
    bool ok = true;
    for (int64_t i = 0; i < cc->m && ok; i++)
        for (int64_t j = 0; j < n && ok; j++) {
            double acc = bias[i], mag = fabs(bias[i]);
            for (int64_t p = 0; p < kdim; p++) {
                double t = (double)w[i * kdim + p] * col[p * n + j];
                acc += t;
                mag += fabs(t);
            }
            ok = close_to("conv", (size_t)(i * n + j), y[i * n + j], acc, mag);
        }
    if (!ok)
        fprintf(stderr, "  conv case nd=%d c=%lld m=%lld images=%lld in0=%lld k0=%lld s0=%lld "
                        "trans=%d\n",
                cc->nd, (long long)cc->c, (long long)cc->m, (long long)cc->n_img,
                (long long)cc->in[0], (long long)cc->k[0], (long long)cc->s[0], cc->trans);
    CHECK(ok);
    free(x);
    free(w);
    free(bias);
    free(col);
    free(y);
    free(wp);
    free(wt);
}

static void test_conv_sources(const oq_sgemm_kern *kern)
{
    /* 2-D: 3x3 pad 1 stride 1 and 2, 7x7 stem-like, 1x1, dilated, asymmetric
     * pads, odd widths below and above 16, several images */
    check_conv(kern, &(ccase){2, 5, 17, 1, {13, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 0});
    check_conv(kern, &(ccase){2, 4, 9, 3, {9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 3, 0});
    check_conv(kern, &(ccase){2, 3, 16, 1, {40, 37}, {7, 7}, {2, 2}, {1, 1}, {3, 3}, {3, 3}, 3, 0});
    check_conv(kern, &(ccase){2, 7, 30, 2, {5, 23}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, 0});
    check_conv(kern, &(ccase){2, 6, 8, 1, {20, 19}, {3, 2}, {1, 3}, {2, 3}, {2, 0}, {0, 4}, 1, 0});
    check_conv(kern, &(ccase){2, 3, 5, 4, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 3, 0});
    check_conv(kern, &(ccase){2, 2, 3, 1, {6, 33}, {5, 4}, {3, 2}, {1, 1}, {0, 3}, {2, 1}, 1, 0});
    check_conv(kern, &(ccase){2, 1, 4, 2, {1, 1}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 0});
    /* kernel extent beyond the image with padding only on one side */
    check_conv(kern, &(ccase){2, 2, 3, 1, {4, 5}, {3, 4}, {1, 1}, {1, 1}, {2, 3}, {0, 0}, 1, 0});
    /* 1-D and 3-D */
    check_conv(kern, &(ccase){1, 4, 15, 2, {50}, {5}, {3}, {2}, {4}, {1}, 3, 0});
    check_conv(kern, &(ccase){3, 3, 6, 2, {5, 6, 7}, {3, 2, 3}, {2, 1, 1}, {1, 2, 1}, {1, 0, 1}, {1, 1, 0}, 1, 0});
    /* large enough to need several K and N blocks, split over threads */
    check_conv(kern, &(ccase){2, 40, 20, 1, {40, 36}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 3, 0});
    /* transposed: 7x7 images (as resnet's last layers), 1x1 and 3x3, 1-D */
    check_conv(kern, &(ccase){2, 20, 40, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1});
    check_conv(kern, &(ccase){2, 33, 35, 1, {7, 7}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 3, 1});
    check_conv(kern, &(ccase){2, 9, 19, 2, {14, 13}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {0, 1}, 3, 2});
    check_conv(kern, &(ccase){1, 6, 17, 1, {30}, {3}, {1}, {1}, {1}, {1}, 1, 2});
    check_conv(kern, &(ccase){3, 3, 6, 1, {5, 6, 7}, {3, 2, 3}, {2, 1, 1}, {1, 2, 1}, {1, 0, 1}, {1, 1, 0}, 1, 1});
    for (int r = 0; r < 25; r++) {
        ccase cc = {2, 1 + irand(9), 1 + irand(33), 1 + irand(3), {1 + irand(20), 1 + irand(40)},
                    {1 + irand(4), 1 + irand(4)}, {1 + irand(3), 1 + irand(3)},
                    {1 + irand(2), 1 + irand(2)}, {irand(3), irand(3)}, {irand(3), irand(3)},
                    1 + irand(3), irand(3)};
        for (int i = 0; i < 2; i++) { /* the dilated kernel must fit the padded image */
            int64_t ext = (cc.k[i] - 1) * cc.d[i] + 1;
            if (cc.in[i] + cc.p0[i] + cc.p1[i] < ext)
                cc.in[i] = ext;
        }
        check_conv(kern, &cc);
    }
}

/* ---- the ISA packers against the portable ones ---- */

static void check_packers(const oq_sgemm_kern *kern)
{
    int nr = kern->nr;
    /* rows */
    if (kern->pack_rows) {
        int64_t k = 23, n = 77, ld = 90, kc = 11, k0 = 5;
        float *b = rand_floats((size_t)(k * ld));
        for (int64_t j0 = 0; j0 < 13; j0 += 6) {
            int64_t panels = (n - j0 + nr - 1) / nr;
            size_t ps = (size_t)(kc * nr + 16), sz = (size_t)panels * ps;
            float *p1 = oq_sgemm_alloc(sz), *p2 = oq_sgemm_alloc(sz);
            memset(p1, 0, sz * sizeof *p1);
            memset(p2, 0, sz * sizeof *p2);
            kern->pack_rows(nr, b, ld, k0, kc, j0, n - j0, p1, ps);
            oq_sgemm_pack_rows_ref(nr, b, ld, k0, kc, j0, n - j0, p2, ps);
            CHECK(memcmp(p1, p2, sz * sizeof *p1) == 0);
            free(p1);
            free(p2);
        }
        free(b);
    }
    /* convolutions: both packers on blocks of random 1-D and 2-D geometries */
    if (!kern->pack_conv)
        return;
    for (int r = 0; r < 60; r++) {
        oq_conv_geom g = {0};
        g.nd = 1 + irand(2);
        for (int i = 0; i < g.nd; i++) {
            g.k[i] = 1 + irand(5), g.stride[i] = 1 + irand(3), g.dil[i] = 1 + irand(2);
            int64_t ext = (g.k[i] - 1) * g.dil[i] + 1, p0 = irand(3), p1 = irand(3);
            g.in[i] = ext + irand(i == g.nd - 1 ? 40 : 12);
            g.pad[i] = p0;
            g.out[i] = (g.in[i] + p0 + p1 - ext) / g.stride[i] + 1;
        }
        int64_t ch = 1 + irand(4), imgs = 1 + irand(3);
        int64_t in_size = (int64_t)oq_geom_in_size(&g), out_size = (int64_t)oq_geom_out_size(&g);
        int64_t kdim = ch * (int64_t)oq_geom_k_size(&g), n = imgs * out_size;
        oq_sgemm_conv cv = {&g, ch, imgs, (ch + 1) * in_size};
        float *x = rand_floats((size_t)(imgs * (ch + 1) * in_size));
        float *pad = oq_sgemm_alloc(oq_sgemm_padded_floats(&cv));
        oq_sgemm_padded pd;
        oq_sgemm_pad(&cv, x, pad, &pd, 1 + irand(2));
        int64_t k0 = irand((int)kdim), kc = 1 + irand((int)(kdim - k0));
        int64_t j0 = irand((int)n), nn = 1 + irand((int)(n - j0));
        /* panels of nr columns (B), or of mr (the transposed product's A:
         * unaligned, narrower than a vector) */
        int pw = r % 3 == 2 ? kern->mr : nr;
        int64_t panels = (nn + pw - 1) / pw;
        size_t ps = pw == nr ? (size_t)(kc * nr + 16) : (size_t)(kc * pw);
        size_t sz = (size_t)panels * ps + 16;
        float *p1 = oq_sgemm_alloc(sz), *p2 = oq_sgemm_alloc(sz);
        memset(p1, 0, sz * sizeof *p1);
        memset(p2, 0, sz * sizeof *p2);
        kern->pack_conv(pw, &pd, k0, kc, j0, nn, p1, ps);
        oq_sgemm_pack_conv_ref(pw, &cv, x, k0, kc, j0, nn, p2, ps);
        bool same = memcmp(p1, p2, sz * sizeof *p1) == 0;
        if (!same)
            fprintf(stderr, "pack_conv [%s]: panels of %d, nd %d k %lld s %lld d %lld rows [%lld, +%lld) "
                            "columns [%lld, +%lld) differ from the portable packer\n",
                    kern->name, pw, g.nd, (long long)g.k[g.nd - 1], (long long)g.stride[g.nd - 1],
                    (long long)g.dil[g.nd - 1], (long long)k0, (long long)kc, (long long)j0,
                    (long long)nn);
        CHECK(same);
        free(x);
        free(pad);
        free(p1);
        free(p2);
    }
}

/* ---- one kernel ---- */

static void test_kernel(const oq_sgemm_kern *kern)
{
    kname = kern->name;
    failures_shown = 0;
    int before = tu_fail;
    test_gemm_sizes(kern);
    test_conv_sources(kern);
    check_packers(kern);
    printf("%s: %s\n", kern->name, tu_fail == before ? "ok" : "FAILED");
}

/* The fp32 kernel ONNXQ_ISA=level gives: the best at or below it (VNNI adds
 * nothing to float products). */
static const char *expected_isa(const char *level)
{
    return strcmp(level, "avx512vnni") == 0 ? "avx512" : level;
}

int main(void)
{
    int tested = 0;
    for (int i = 0; i < OQ_SGEMM_ISA_COUNT; i++) {
        const oq_sgemm_kern *k = oq_sgemm_kern_for((oq_sgemm_isa)i);
        if (!k) {
            printf("%s: not available on this build or CPU\n", oq_sgemm_isa_name((oq_sgemm_isa)i));
            continue;
        }
        test_kernel(k);
        tested++;
    }
    CHECK(tested >= 1);
    /* the selection follows ONNXQ_ISA */
    const char *err = NULL;
    const oq_sgemm_kern *sel = oq_sgemm_kern_select(&err);
    const char *env = getenv("ONNXQ_ISA");
    if (env && *env && sel)
        CHECK(strcmp(oq_sgemm_isa_name(sel->isa), expected_isa(env)) == 0);
    if (!env || !*env)
        CHECK(sel != NULL);
    /* every level the CPU runs is a ceiling; a bad ONNXQ_ISA is an error,
     * not a silent fallback */
    char *saved = env ? strdup(env) : NULL;
    for (int l = 0; l < OQ_LEVEL_COUNT; l++) {
        const char *name = oq_isa_level_name((oq_isa_level)l);
        setenv("ONNXQ_ISA", name, 1);
        err = NULL;
        const oq_sgemm_kern *k = oq_sgemm_kern_select(&err);
        if (oq_cpu_has_level((oq_isa_level)l))
            CHECK(k && strcmp(oq_sgemm_isa_name(k->isa), expected_isa(name)) == 0);
        else
            CHECK(!k && err && strstr(err, "ONNXQ_ISA"));
    }
    setenv("ONNXQ_ISA", "sse9", 1);
    err = NULL;
    CHECK(oq_sgemm_kern_select(&err) == NULL && err && strstr(err, "ONNXQ_ISA"));
    if (saved)
        setenv("ONNXQ_ISA", saved, 1);
    else
        unsetenv("ONNXQ_ISA");
    free(saved);
    return TEST_SUMMARY();
}
