/* The ONNX conformance runner: runs the backend test cases of Debian's
 * libonnx-testdata (node/, pytorch-converted/, pytorch-operator/, simple/)
 * through onnxq's interpreter and compares with the expected outputs.
 *
 *   integers and bools: exactly;
 *   floats (float, double, float16): |a - b| <= 1e-5 + 1e-4 * |b|, NaN == NaN.
 *
 * A case is "unsupported" only when onnxq reports OQ_E_UNSUPPORTED (an
 * unregistered operator, or a dtype or feature an operator does not
 * implement); it never counts as a pass. Every other problem is a failure.
 *
 * usage: conformance DATA_DIR [--filter SUBSTR] [-v] [--must-pass FILE]
 *                             [--write-passed FILE] [--per-op]
 * With --must-pass, exits 1 when a case listed in FILE does not pass. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnxq/onnxq.h"
#include "testdirs.h"

#define ATOL 1e-5
#define RTOL 1e-4


enum result { R_PASS, R_FAIL, R_UNSUPPORTED };
static const char *const result_names[] = {"pass", "FAIL", "unsupported"};

typedef struct op_count {
    char name[64];
    int n[3];
} op_count;

static struct {
    const char *filter;
    bool verbose, per_op;
    op_count ops[512];
    size_t n_ops;
    int totals[3];
    char **passed;
    size_t n_passed, cap_passed;
} g;


/* ---- comparing tensors ---- */

static double elem_as_double(const oq_tensor *t, size_t i)
{
    switch (t->dtype) {
    case OQ_FLOAT: return ((const float *)t->data)[i];
    case OQ_DOUBLE: return ((const double *)t->data)[i];
    case OQ_FLOAT16: return oq_half_to_float(((const uint16_t *)t->data)[i]);
    case OQ_BFLOAT16: return oq_bfloat16_to_float(((const uint16_t *)t->data)[i]);
    default: return 0;
    }
}

static bool is_float(oq_dtype d)
{
    return d == OQ_FLOAT || d == OQ_DOUBLE || d == OQ_FLOAT16 || d == OQ_BFLOAT16;
}

/* Returns true when equal; otherwise describes the first difference. */
static bool compare(const oq_tensor *got, const oq_tensor *want, char *why, size_t len)
{
    /* bfloat16 expected values are stored as uint16 bit patterns (see above):
     * compare the bits exactly. */
    if (got->dtype == OQ_BFLOAT16 && want->dtype == OQ_UINT16 && got->count == want->count &&
        got->rank == want->rank)
        return memcmp(got->data, want->data, got->count * 2) == 0 ||
               (snprintf(why, len, "bfloat16 bits differ"), false);
    if (got->dtype != want->dtype) {
        snprintf(why, len, "dtype %s, expected %s", oq_dtype_name(got->dtype),
                 oq_dtype_name(want->dtype));
        return false;
    }
    if (got->rank != want->rank ||
        memcmp(got->dims, want->dims, (size_t)got->rank * sizeof got->dims[0]) != 0) {
        snprintf(why, len, "shape differs (rank %d vs %d, count %zu vs %zu)", got->rank,
                 want->rank, got->count, want->count);
        return false;
    }
    if (!is_float(got->dtype)) {
        if (oq_tensor_same_value(got, want))
            return true;
        snprintf(why, len, "integer/bool/string values differ");
        return false;
    }
    for (size_t i = 0; i < got->count; i++) {
        double a = elem_as_double(got, i), b = elem_as_double(want, i);
        if (isnan(a) && isnan(b))
            continue;
        if (a == b)
            continue;
        if (!(fabs(a - b) <= ATOL + RTOL * fabs(b))) {
            snprintf(why, len, "element %zu is %.9g, expected %.9g", i, a, b);
            return false;
        }
    }
    return true;
}

/* ---- running one case ---- */

static enum result status_result(oq_status st)
{
    return st == OQ_E_UNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
}

/* Loads input_K.pb files of a data set, placing each at the session input
 * with the tensor's name (or the K-th input when it has none). */
static enum result load_inputs(oq_session *s, const char *set_dir, oq_tensor **in, char *why,
                               size_t len)
{
    size_t n = oq_session_n_inputs(s);
    for (size_t k = 0; k < n; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/input_%zu.pb", set_dir, k);
        oq_tensor *t;
        oq_status st = oq_tensor_load_pb(path, &t);
        if (st != OQ_OK) {
            snprintf(why, len, "%s", oq_errmsg());
            return R_FAIL;
        }
        int idx = t->name ? oq_session_input_index(s, t->name) : -1;
        if (idx < 0)
            idx = (int)k;
        /* The test data of onnx 1.12 stores bfloat16 values as uint16 (the
         * bit patterns): read them as the bfloat16 the model declares. */
        const oq_type *ty = oq_session_input(s, (size_t)idx)->type;
        if (t->dtype == OQ_UINT16 && ty && ty->elem == OQ_BFLOAT16)
            t->dtype = OQ_BFLOAT16;
        if (in[idx]) {
            oq_tensor_free(t);
            snprintf(why, len, "input %zu: two data files for one input", k);
            return R_FAIL;
        }
        in[idx] = t;
    }
    return R_PASS;
}

static enum result run_data_set(oq_session *s, const char *set_dir, char *why, size_t len)
{
    size_t n_in = oq_session_n_inputs(s), n_out = oq_session_n_outputs(s);
    oq_tensor **in = calloc(n_in + 1, sizeof *in);
    const oq_tensor **out = calloc(n_out + 1, sizeof *out);
    enum result r = load_inputs(s, set_dir, in, why, len);
    if (r == R_PASS) {
        oq_status st = oq_session_run(s, (const oq_tensor *const *)in, out);
        if (st != OQ_OK) {
            snprintf(why, len, "%s", oq_errmsg());
            r = status_result(st);
        }
    }
    for (size_t k = 0; r == R_PASS && k < n_out; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/output_%zu.pb", set_dir, k);
        oq_tensor *want;
        if (oq_tensor_load_pb(path, &want) != OQ_OK) {
            snprintf(why, len, "%s", oq_errmsg());
            r = R_FAIL;
            break;
        }
        char diff[512];
        if (!compare(out[k], want, diff, sizeof diff)) {
            snprintf(why, len, "output %zu (%s): %s", k, oq_session_output(s, k)->name, diff);
            r = R_FAIL;
        }
        oq_tensor_free(want);
    }
    for (size_t i = 0; i < n_in; i++)
        oq_tensor_free(in[i]);
    free(in);
    free(out);
    return r;
}

static enum result run_case(const char *case_dir, oq_model **model, char *why, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", case_dir);
    oq_status st = oq_model_load(path, model);
    if (st != OQ_OK) {
        snprintf(why, len, "%s", oq_errmsg());
        return status_result(st);
    }
    oq_session *s;
    oq_session_options opts = {.threads = 1};
    if ((st = oq_session_new(*model, &opts, &s)) != OQ_OK) {
        snprintf(why, len, "%s", oq_errmsg());
        return status_result(st);
    }
    char **sets;
    size_t n = td_list_dir(case_dir, &sets);
    enum result r = R_PASS;
    int n_sets = 0;
    for (size_t i = 0; i < n && r == R_PASS; i++) {
        if (strncmp(sets[i], "test_data_set_", 14) != 0)
            continue;
        char set_dir[4096];
        snprintf(set_dir, sizeof set_dir, "%s/%s", case_dir, sets[i]);
        r = run_data_set(s, set_dir, why, len);
        n_sets++;
    }
    if (r == R_PASS && n_sets == 0) {
        snprintf(why, len, "no test data sets");
        r = R_FAIL;
    }
    td_free_list(sets, n);
    oq_session_free(s);
    return r;
}

/* ---- bookkeeping ---- */

static void count_ops(const oq_model *m, enum result r)
{
    if (!m || !m->graph)
        return;
    const oq_graph *gr = m->graph;
    for (size_t i = 0; i < gr->n_nodes; i++) {
        const char *op = gr->nodes[i]->op_type;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(gr->nodes[j]->op_type, op) == 0;
        if (seen)
            continue;
        size_t k = 0;
        while (k < g.n_ops && strcmp(g.ops[k].name, op) != 0)
            k++;
        if (k == g.n_ops && g.n_ops < sizeof g.ops / sizeof g.ops[0])
            snprintf(g.ops[g.n_ops++].name, sizeof g.ops[0].name, "%s", op);
        if (k < g.n_ops)
            g.ops[k].n[r]++;
    }
}

static void record(const char *id, enum result r, const oq_model *m, const char *why)
{
    g.totals[r]++;
    count_ops(m, r);
    if (r == R_PASS) {
        if (g.n_passed == g.cap_passed) {
            g.cap_passed = g.cap_passed ? 2 * g.cap_passed : 256;
            g.passed = realloc(g.passed, g.cap_passed * sizeof *g.passed);
        }
        g.passed[g.n_passed++] = strdup(id);
    }
    if (g.verbose || r == R_FAIL)
        printf("%-11s %s%s%s\n", result_names[r], id, r == R_PASS ? "" : ": ",
               r == R_PASS ? "" : why);
}

static bool was_passed(const char *id)
{
    for (size_t i = 0; i < g.n_passed; i++)
        if (strcmp(g.passed[i], id) == 0)
            return true;
    return false;
}

/* Checks every case listed in file passed; returns the number that did not. */
static int check_must_pass(const char *file, int *listed)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        printf("cannot read the must-pass list %s\n", file);
        return 1;
    }
    char line[1024];
    int missing = 0;
    *listed = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        if (g.filter && !strstr(line, g.filter))
            continue;
        (*listed)++;
        if (!was_passed(line)) {
            printf("must-pass case did not pass: %s\n", line);
            missing++;
        }
    }
    fclose(f);
    return missing;
}

static void print_per_op(void)
{
    printf("\n%-28s %6s %6s %12s\n", "operator", "pass", "fail", "unsupported");
    for (size_t i = 0; i < g.n_ops; i++)
        printf("%-28s %6d %6d %12d\n", g.ops[i].name, g.ops[i].n[R_PASS], g.ops[i].n[R_FAIL],
               g.ops[i].n[R_UNSUPPORTED]);
}

static void run_suite(const char *data_dir, const char *suite)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, suite);
    char **cases;
    size_t n = td_list_dir(dir, &cases);
    for (size_t i = 0; i < n; i++) {
        char id[1024], case_dir[4096], model_path[4200];
        snprintf(id, sizeof id, "%s/%s", suite, cases[i]);
        if (g.filter && !strstr(id, g.filter))
            continue;
        snprintf(case_dir, sizeof case_dir, "%s/%s", dir, cases[i]);
        snprintf(model_path, sizeof model_path, "%s/model.onnx", case_dir);
        struct stat sb;
        if (stat(model_path, &sb) != 0)
            continue;
        oq_model *m = NULL;
        char why[2048] = "";
        enum result r = run_case(case_dir, &m, why, sizeof why);
        record(id, r, m, why);
        oq_model_free(m);
    }
    td_free_list(cases, n);
}

int main(int argc, char **argv)
{
    const char *data_dir = NULL, *must_pass = NULL, *write_passed = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            g.filter = argv[++i];
        else if (strcmp(argv[i], "-v") == 0)
            g.verbose = true;
        else if (strcmp(argv[i], "--per-op") == 0)
            g.per_op = true;
        else if (strcmp(argv[i], "--must-pass") == 0 && i + 1 < argc)
            must_pass = argv[++i];
        else if (strcmp(argv[i], "--write-passed") == 0 && i + 1 < argc)
            write_passed = argv[++i];
        else if (!data_dir && argv[i][0] != '-')
            data_dir = argv[i];
        else {
            fprintf(stderr, "usage: %s DATA_DIR [--filter S] [-v] [--per-op] "
                            "[--must-pass FILE] [--write-passed FILE]\n", argv[0]);
            return 2;
        }
    }
    if (!data_dir) {
        fprintf(stderr, "usage: %s DATA_DIR [options]\n", argv[0]);
        return 2;
    }
    for (size_t s = 0; s < TD_N_SUITES; s++)
        run_suite(data_dir, td_suites[s]);
    if (g.per_op)
        print_per_op();
    printf("\ncases: %d passed, %d failed, %d unsupported (of %d)\n", g.totals[R_PASS],
           g.totals[R_FAIL], g.totals[R_UNSUPPORTED],
           g.totals[R_PASS] + g.totals[R_FAIL] + g.totals[R_UNSUPPORTED]);
    if (write_passed) {
        FILE *f = fopen(write_passed, "w");
        for (size_t i = 0; f && i < g.n_passed; i++)
            fprintf(f, "%s\n", g.passed[i]);
        if (f)
            fclose(f);
    }
    int bad = 0;
    if (must_pass) {
        int listed = 0;
        bad = check_must_pass(must_pass, &listed);
        printf("must-pass list: %d passed, %d failed\n", listed - bad, bad);
    }
    td_free_list(g.passed, g.n_passed);
    return bad ? 1 : 0;
}
