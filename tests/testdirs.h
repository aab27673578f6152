/* Walking the ONNX backend test data (tests/conformance.c, test_roundtrip.c):
 * its suites and sorted directory listings. Header-only, like testutil.h. */
#ifndef ONNXQ_TESTDIRS_H
#define ONNXQ_TESTDIRS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The folders of libonnx-testdata's data/ that hold test cases. */
static const char *const td_suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
#define TD_N_SUITES (sizeof td_suites / sizeof td_suites[0])

static int td_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir, leaving out those starting with '.';
 * 0 entries when dir cannot be read. Exits on out of memory. */
static size_t td_list_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                fprintf(stderr, "out of memory listing %s\n", dir);
                exit(1);
            }
            names = grown;
        }
        if (!(names[n++] = strdup(e->d_name))) {
            fprintf(stderr, "out of memory listing %s\n", dir);
            exit(1);
        }
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof *names, td_cmp_names);
    *out = names;
    return n;
}

static void td_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

#endif
