/* Round trip over the ONNX backend test data: for every model.onnx,
 * load -> validate -> save -> load must give an equal model, and a second
 * save must give the same bytes. Every .pb tensor of the test data sets is
 * loaded, saved and loaded again too. Saved models are written to OUTDIR
 * (as SUITE__CASE.onnx) for the independent checks of check_roundtrip.py.
 *
 * usage: test_roundtrip TESTDATA_DIR OUTDIR */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnxq/onnxq.h"
#include "testdirs.h"
#include "testutil.h"


static int models_ok, models_failed, tensors_ok, tensors_not_tensor;

static void fail_model(const char *path, const char *what)
{
    models_failed++;
    fprintf(stderr, "FAIL %s: %s\n", path, what);
}


static void roundtrip_tensor(const char *path, const char *tmp)
{
    oq_tensor *a = NULL, *b = NULL;
    CHECK_OK(oq_tensor_load_pb(path, &a));
    if (!a)
        return;
    CHECK_OK(oq_tensor_save_pb(a, tmp));
    CHECK_OK(oq_tensor_load_pb(tmp, &b));
    bool eq = b && oq_tensor_equal(a, b);
    CHECK(eq);
    if (!eq)
        fprintf(stderr, "FAIL tensor round trip %s\n", path);
    tensors_ok += eq;
    oq_tensor_free(a);
    oq_tensor_free(b);
}

/* The type of the value that a test data file (input_K.pb / output_K.pb)
 * holds: the K-th graph input that is not an initializer, or the K-th output. */
static const oq_type *data_file_type(const oq_graph *g, const char *file)
{
    int k;
    if (sscanf(file, "output_%d.pb", &k) == 1)
        return k >= 0 && (size_t)k < g->n_outputs ? g->outputs[k].type : NULL;
    if (sscanf(file, "input_%d.pb", &k) != 1)
        return NULL;
    for (size_t i = 0; i < g->n_inputs; i++) {
        bool is_init = false;
        for (size_t j = 0; j < g->n_inits && !is_init; j++)
            is_init = strcmp(oq_str(g->inits[j]->name), g->inputs[i].name) == 0;
        if (!is_init && k-- == 0)
            return g->inputs[i].type;
    }
    return NULL;
}

static void roundtrip_data_sets(const char *case_dir, const oq_graph *g, const char *tmp)
{
    char **sets;
    size_t n = td_list_dir(case_dir, &sets);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(sets[i], "test_data_set_", 14) != 0)
            continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", case_dir, sets[i]);
        char **files;
        size_t nf = td_list_dir(dir, &files);
        for (size_t j = 0; j < nf; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, files[j]);
            const oq_type *t = data_file_type(g, files[j]);
            /* Sequence and optional values are stored as SequenceProto or
             * OptionalProto, which are not tensor files. */
            if (t && t->kind == OQ_TYPE_TENSOR)
                roundtrip_tensor(path, tmp);
            else
                tensors_not_tensor++;
        }
        td_free_list(files, nf);
    }
    td_free_list(sets, n);
}

static void roundtrip_model(const char *path, const char *out_path, const char *case_dir,
                            const char *tmp_pb)
{
    oq_model *a = NULL, *b = NULL;
    void *buf1 = NULL, *buf2 = NULL;
    size_t len1 = 0, len2 = 0;
    char why[256] = "";
    if (oq_model_load(path, &a) != OQ_OK) {
        fail_model(path, oq_errmsg());
        return;
    }
    if (oq_model_validate(a) != OQ_OK)
        fail_model(path, oq_errmsg());
    else if (oq_model_save(a, out_path) != OQ_OK || oq_model_load(out_path, &b) != OQ_OK)
        fail_model(path, oq_errmsg());
    else if (!oq_model_equal(a, b, why, sizeof why))
        fail_model(path, why);
    else if (oq_model_serialize(a, &buf1, &len1) != OQ_OK ||
             oq_model_serialize(b, &buf2, &len2) != OQ_OK)
        fail_model(path, oq_errmsg());
    else if (len1 != len2 || memcmp(buf1, buf2, len1) != 0)
        fail_model(path, "second save gives different bytes");
    else
        models_ok++;
    roundtrip_data_sets(case_dir, a->graph, tmp_pb);
    free(buf1);
    free(buf2);
    oq_model_free(a);
    oq_model_free(b);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s TESTDATA_DIR OUTDIR\n", argv[0]);
        return 2;
    }
    mkdir(argv[2], 0777);
    char tmp_pb[4096];
    snprintf(tmp_pb, sizeof tmp_pb, "%s/tensor.pb", argv[2]);
    for (size_t s = 0; s < TD_N_SUITES; s++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], td_suites[s]);
        char **cases;
        size_t n = td_list_dir(dir, &cases);
        CHECK(n > 0);
        for (size_t i = 0; i < n; i++) {
            char path[4096], out[4096], case_dir[4096];
            snprintf(case_dir, sizeof case_dir, "%s/%s", dir, cases[i]);
            snprintf(path, sizeof path, "%s/model.onnx", case_dir);
            snprintf(out, sizeof out, "%s/%s__%s.onnx", argv[2], td_suites[s], cases[i]);
            struct stat sb;
            if (stat(path, &sb) != 0)
                continue;
            roundtrip_model(path, out, case_dir, tmp_pb);
        }
        td_free_list(cases, n);
    }
    printf("models: %d round-tripped, %d failed; tensor files: %d round-tripped, %d not "
           "tensors (sequence/optional data)\n", models_ok, models_failed, tensors_ok,
           tensors_not_tensor);
    CHECK(models_failed == 0);
    CHECK(models_ok > 1000);
    return TEST_SUMMARY();
}
