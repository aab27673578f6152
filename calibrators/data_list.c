/* Calibration data readers: what a path holds, and its files in order
 * (the layouts are described in onnxq/data.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

typedef enum ent_type { ENT_OTHER = 0, ENT_DIR, ENT_TENSOR, ENT_IMAGE } ent_type;

typedef struct entry {
    char *name;
    ent_type type;
} entry;

typedef struct dir_list {
    size_t n, cap;
    entry *e;
    size_t count[4]; /* by ent_type */
} dir_list;

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] == '/';
    char *s = malloc(la + lb + 2);
    if (s)
        snprintf(s, la + lb + 2, "%s%s%s", a, slash ? "" : "/", b);
    return s;
}

/* The extension after the last '.', lower-cased into ext (empty if none). */
static void lower_ext(const char *name, char ext[8])
{
    const char *dot = strrchr(name, '.');
    size_t n = dot ? strlen(dot + 1) : 0;
    ext[0] = 0;
    if (!dot || n >= 8)
        return;
    for (size_t i = 0; i < n && i < 7; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    ext[n < 7 ? n : 7] = 0;
}

static ent_type file_type(const char *name)
{
    char ext[8];
    lower_ext(name, ext);
    if (!strcmp(ext, "npy") || !strcmp(ext, "pb"))
        return ENT_TENSOR;
    return data_img_has_ext(name) ? ENT_IMAGE : ENT_OTHER;
}

static void dir_list_free(dir_list *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].name);
    free(d->e);
    memset(d, 0, sizeof *d);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static oq_status dir_list_add(dir_list *d, const char *dir, const char *name)
{
    char *full = path_join(dir, name);
    if (!full)
        return oq_error(OQ_E_NOMEM, "%s: out of memory listing the folder", dir);
    struct stat sb;
    bool ok = stat(full, &sb) == 0;
    int e = errno;
    free(full);
    if (!ok)
        return oq_error(OQ_E_IO, "%s/%s: %s", dir, name, strerror(e));
    ent_type t = S_ISDIR(sb.st_mode) ? ENT_DIR : S_ISREG(sb.st_mode) ? file_type(name) : ENT_OTHER;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        entry *ne = realloc(d->e, cap * sizeof *ne);
        if (!ne)
            return oq_error(OQ_E_NOMEM, "%s: out of memory listing the folder", dir);
        d->e = ne;
        d->cap = cap;
    }
    if (!(d->e[d->n].name = strdup(name)))
        return oq_error(OQ_E_NOMEM, "%s: out of memory listing the folder", dir);
    d->e[d->n++].type = t;
    d->count[t]++;
    return OQ_OK;
}

/* The entries of dir not starting with '.', sorted by name (byte order). */
static oq_status dir_list_read(const char *dir, dir_list *d)
{
    memset(d, 0, sizeof *d);
    DIR *dp = opendir(dir);
    if (!dp)
        return oq_error(OQ_E_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    oq_status st = OQ_OK;
    struct dirent *de;
    errno = 0;
    while (st == OQ_OK && (de = readdir(dp)) != NULL) {
        if (de->d_name[0] != '.')
            st = dir_list_add(d, dir, de->d_name);
        errno = 0;
    }
    if (st == OQ_OK && errno != 0)
        st = oq_error(OQ_E_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    closedir(dp);
    if (st != OQ_OK)
        dir_list_free(d);
    else if (d->n > 1)
        qsort(d->e, d->n, sizeof *d->e, entry_cmp);
    return st;
}

static data_file_kind dfile_kind(const char *name)
{
    char ext[8];
    lower_ext(name, ext);
    return !strcmp(ext, "npy") ? DATA_FILE_NPY : !strcmp(ext, "pb") ? DATA_FILE_PB : DATA_FILE_IMAGE;
}

/* Appends dir/name (or dir itself when name is NULL) to the list. */
static oq_status dlist_push(data_list *l, const char *dir, const char *name)
{
    if (l->n_files == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        data_file *nf = realloc(l->files, cap * sizeof *nf);
        if (!nf)
            return oq_error(OQ_E_NOMEM, "out of memory listing the data files");
        l->files = nf;
        l->cap = cap;
    }
    char *path = name ? path_join(dir, name) : strdup(dir);
    if (!path)
        return oq_error(OQ_E_NOMEM, "out of memory listing the data files");
    l->files[l->n_files++] = (data_file){path, dfile_kind(path)};
    return OQ_OK;
}

void data_list_free(data_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_files; i++)
        free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

/* "a, b, c" (at most 8 names) for messages. */
static void input_names(const oq_value_info *const *inputs, size_t n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && i < 8 && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "",
                                oq_str(inputs[i]->name));
    if (n > 8 && len < cap)
        snprintf(buf + len, cap - len, ", ...");
}

static oq_status need_one_input(const char *path, const char *what,
                                const oq_value_info *const *inputs, size_t n)
{
    if (n == 1)
        return OQ_OK;
    char names[512];
    input_names(inputs, n, names, sizeof names);
    return oq_error(OQ_E_INVALID,
                    "%s: %s feeds one model input, but the model has %zu (%s); give a folder "
                    "with a sub-folder per input (NAME/) or per sample (NAME.npy or input_K.pb)",
                    path, what, n, names);
}

/* The files of one kind (tensors or images) of a flat folder. */
static oq_status flat_files(const char *dir, const dir_list *d, ent_type t, data_list *l)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->e[i].type != t)
            continue;
        oq_status st = dlist_push(l, dir, d->e[i].name);
        if (st != OQ_OK)
            return st;
    }
    return OQ_OK;
}

/* A folder's data files (tensors or images, not both) for one input. */
static oq_status input_folder(const char *dir, data_list *l, size_t *count)
{
    dir_list d;
    oq_status st = dir_list_read(dir, &d);
    if (st != OQ_OK)
        return st;
    size_t nt = d.count[ENT_TENSOR], ni = d.count[ENT_IMAGE];
    if (nt && ni)
        st = oq_error(OQ_E_INVALID, "%s: the folder mixes images (%zu) and .npy/.pb files (%zu)",
                      dir, ni, nt);
    else if (nt + ni == 0)
        st = oq_error(OQ_E_INVALID, "%s: no .npy, .pb, .png, .jpg or .jpeg files in the folder%s",
                      dir, d.n ? "" : " (it is empty)");
    else
        st = flat_files(dir, &d, nt ? ENT_TENSOR : ENT_IMAGE, l);
    *count = nt + ni;
    dir_list_free(&d);
    return st;
}

static oq_status dlist_take(data_list *l, data_file f)
{
    if (l->n_files == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        data_file *nf = realloc(l->files, cap * sizeof *nf);
        if (!nf) {
            free(f.path);
            return oq_error(OQ_E_NOMEM, "out of memory listing the data files");
        }
        l->files = nf;
        l->cap = cap;
    }
    l->files[l->n_files++] = f;
    return OQ_OK;
}

static const entry *find_dir(const dir_list *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].type == ENT_DIR && !strcmp(d->e[i].name, name))
            return &d->e[i];
    return NULL;
}

static bool names_input(const char *name, const oq_value_info *const *inputs, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(name, oq_str(inputs[k]->name)))
            return true;
    return false;
}

/* Sub-folders named after the inputs; the K-th files of each belong together. */
static oq_status per_input_files(const char *path, const dir_list *d,
                                 const oq_value_info *const *inputs, size_t n, data_list *tmp)
{
    size_t count0 = 0;
    for (size_t k = 0; k < n; k++) {
        const char *name = oq_str(inputs[k]->name);
        if (!find_dir(d, name))
            return oq_error(OQ_E_INVALID, "%s: no sub-folder for input '%s' (the folder has "
                                          "sub-folders named after other inputs)", path, name);
        char *sub = path_join(path, name);
        if (!sub)
            return oq_error(OQ_E_NOMEM, "out of memory");
        size_t cnt = 0;
        oq_status st = input_folder(sub, &tmp[k], &cnt);
        free(sub);
        if (st != OQ_OK)
            return st;
        if (k > 0 && cnt != count0)
            return oq_error(OQ_E_INVALID,
                            "%s: sub-folder '%s' has %zu files but '%s' has %zu; the K-th "
                            "files of all inputs belong together",
                            path, oq_str(inputs[0]->name), count0, name, cnt);
        count0 = cnt;
    }
    return OQ_OK;
}

static oq_status per_input_layout(const char *path, const dir_list *d,
                                  const oq_value_info *const *inputs, size_t n, data_list *l)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].type == ENT_DIR && !names_input(d->e[i].name, inputs, n))
            return oq_error(OQ_E_INVALID, "%s/%s: the sub-folder names no model input",
                            path, d->e[i].name);
    data_list *tmp = calloc(n, sizeof *tmp);
    if (!tmp)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = per_input_files(path, d, inputs, n, tmp);
    size_t count = tmp[0].n_files;
    for (size_t g = 0; st == OQ_OK && g < count; g++)
        for (size_t k = 0; st == OQ_OK && k < n; k++) {
            st = dlist_take(l, tmp[k].files[g]);
            tmp[k].files[g].path = NULL;
        }
    for (size_t k = 0; k < n; k++)
        data_list_free(&tmp[k]);
    free(tmp);
    snprintf(l->desc, sizeof l->desc, "folder with a sub-folder per input (%zu files each)",
             count);
    return st;
}

/* Which input a file of a per-sample folder feeds: its name without the
 * extension is the input's name or input_K. Returns false when it names none;
 * *k is the first match and *k2 a second one (or n). */
static bool match_input(const char *file, const oq_value_info *const *inputs, size_t n,
                        size_t *k, size_t *k2)
{
    const char *dot = strrchr(file, '.');
    size_t stem = dot ? (size_t)(dot - file) : strlen(file);
    *k = *k2 = n;
    for (size_t i = 0; i < n; i++) {
        char pos[32];
        const char *name = oq_str(inputs[i]->name);
        snprintf(pos, sizeof pos, "input_%zu", i);
        bool by_name = strlen(name) == stem && !strncmp(file, name, stem);
        bool by_pos = strlen(pos) == stem && !strncmp(file, pos, stem);
        if (!by_name && !by_pos)
            continue;
        if (*k == n)
            *k = i;
        else if (*k2 == n)
            *k2 = i;
    }
    return *k < n;
}

static oq_status sample_match(const char *dir, const dir_list *d,
                              const oq_value_info *const *inputs, size_t n, size_t *match)
{
    for (size_t k = 0; k < n; k++)
        match[k] = SIZE_MAX;
    for (size_t i = 0; i < d->n; i++) {
        size_t k, k2;
        const char *f = d->e[i].name;
        if (d->e[i].type != ENT_TENSOR && d->e[i].type != ENT_IMAGE)
            continue;
        if (!match_input(f, inputs, n, &k, &k2)) {
            if (!strncmp(f, "output_", 7))
                continue;
            return oq_error(OQ_E_INVALID, "%s/%s: the file names no model input (a sample "
                            "folder holds NAME.npy, NAME.pb or input_K.pb per input)", dir, f);
        }
        if (k2 < n)
            return oq_error(OQ_E_INVALID, "%s/%s: the name fits inputs '%s' and '%s'", dir, f,
                            oq_str(inputs[k]->name), oq_str(inputs[k2]->name));
        if (match[k] != SIZE_MAX)
            return oq_error(OQ_E_INVALID, "%s: both %s and %s are files for input '%s'", dir,
                            d->e[match[k]].name, f, oq_str(inputs[k]->name));
        match[k] = i;
    }
    for (size_t k = 0; k < n; k++)
        if (match[k] == SIZE_MAX)
            return oq_error(OQ_E_INVALID,
                            "%s: no file for input '%s' (%s.npy, %s.pb or input_%zu.pb)", dir,
                            oq_str(inputs[k]->name), oq_str(inputs[k]->name),
                            oq_str(inputs[k]->name), k);
    return OQ_OK;
}

/* One sub-folder per sample, with a file per input. */
static oq_status per_sample_layout(const char *path, const dir_list *d,
                                   const oq_value_info *const *inputs, size_t n, data_list *l)
{
    size_t *match = malloc(n * sizeof *match), folders = 0;
    if (!match)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (size_t i = 0; st == OQ_OK && i < d->n; i++) {
        if (d->e[i].type != ENT_DIR)
            continue;
        char *sub = path_join(path, d->e[i].name);
        dir_list sd;
        st = sub ? dir_list_read(sub, &sd) : oq_error(OQ_E_NOMEM, "out of memory");
        if (st == OQ_OK) {
            st = sample_match(sub, &sd, inputs, n, match);
            for (size_t k = 0; st == OQ_OK && k < n; k++)
                st = dlist_push(l, sub, sd.e[match[k]].name);
            dir_list_free(&sd);
        }
        free(sub);
        folders++;
    }
    free(match);
    snprintf(l->desc, sizeof l->desc, "folder of %zu per-sample sub-folders", folders);
    return st;
}

/* True when every .npy/.pb file of d is named input_K or output_K (K digits)
 * and one is an input: a single sample in the ONNX test data layout (a
 * test_data_set_N folder given directly). */
static bool is_test_data_set(const dir_list *d)
{
    bool any_input = false;
    for (size_t i = 0; i < d->n; i++) {
        if (d->e[i].type != ENT_TENSOR)
            continue;
        const char *f = d->e[i].name, *digits;
        if (!strncmp(f, "input_", 6))
            digits = f + 6, any_input = true;
        else if (!strncmp(f, "output_", 7))
            digits = f + 7;
        else
            return false;
        const char *p = digits;
        while (isdigit((unsigned char)*p))
            p++;
        if (p == digits || *p != '.')
            return false;
    }
    return any_input;
}

/* The folder itself is one sample (is_test_data_set). */
static oq_status one_sample_folder(const char *path, const dir_list *d,
                                   const oq_value_info *const *inputs, size_t n, data_list *l)
{
    size_t *match = malloc(n * sizeof *match);
    if (!match)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = sample_match(path, d, inputs, n, match);
    for (size_t k = 0; st == OQ_OK && k < n; k++)
        st = dlist_push(l, path, d->e[match[k]].name);
    free(match);
    snprintf(l->desc, sizeof l->desc, "one sample folder (input_K.pb)");
    return st;
}

static oq_status single_file(const char *path, const oq_value_info *const *inputs, size_t n,
                             data_list *l)
{
    ent_type t = file_type(path);
    if (t == ENT_OTHER)
        return oq_error(OQ_E_INVALID,
                        "%s: not a .npy, .pb, .png, .jpg or .jpeg file, nor a folder", path);
    oq_status st = need_one_input(path, "a single file", inputs, n);
    if (st == OQ_OK)
        st = dlist_push(l, path, NULL);
    snprintf(l->desc, sizeof l->desc, "%s file",
             t == ENT_IMAGE ? "image" : dfile_kind(path) == DATA_FILE_NPY ? ".npy" : ".pb");
    return st;
}

static oq_status folder_layout(const char *path, const dir_list *d,
                               const oq_value_info *const *inputs, size_t n, data_list *l)
{
    size_t nt = d->count[ENT_TENSOR], ni = d->count[ENT_IMAGE], nd = d->count[ENT_DIR];
    oq_status st;
    if (d->n == 0)
        return oq_error(OQ_E_INVALID, "%s: the folder is empty", path);
    if (nt && ni)
        return oq_error(OQ_E_INVALID, "%s: the folder mixes images (%zu) and .npy/.pb files "
                                      "(%zu)", path, ni, nt);
    if (nt && nd)
        return oq_error(OQ_E_INVALID, "%s: the folder holds both .npy/.pb files (%zu) and "
                                      "sub-folders (%zu); which are the data is ambiguous",
                        path, nt, nd);
    if (nt && is_test_data_set(d))
        return one_sample_folder(path, d, inputs, n, l);
    if (nt || ni) {
        if ((st = need_one_input(path, ni ? "a folder of images" : "a folder of files",
                                 inputs, n)) != OQ_OK)
            return st;
        snprintf(l->desc, sizeof l->desc, "folder of %zu %s", nt + ni,
                 ni ? "images" : ".npy/.pb files");
        return flat_files(path, d, ni ? ENT_IMAGE : ENT_TENSOR, l);
    }
    if (nd == 0)
        return oq_error(OQ_E_INVALID, "%s: no .npy, .pb, .png, .jpg or .jpeg files and no "
                                      "sub-folders in the folder (%zu other entr%s)",
                        path, d->n, d->n == 1 ? "y" : "ies");
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].type == ENT_DIR && names_input(d->e[i].name, inputs, n))
            return per_input_layout(path, d, inputs, n, l);
    return per_sample_layout(path, d, inputs, n, l);
}

oq_status data_list_build(const char *path, const oq_value_info *const *inputs,
                         size_t n_inputs, data_list *out)
{
    memset(out, 0, sizeof *out);
    out->n_inputs = n_inputs;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return oq_error(OQ_E_IO, "%s: %s", path, strerror(errno));
    oq_status st;
    if (!S_ISDIR(sb.st_mode)) {
        st = single_file(path, inputs, n_inputs, out);
    } else {
        dir_list d;
        if ((st = dir_list_read(path, &d)) != OQ_OK)
            return st;
        st = folder_layout(path, &d, inputs, n_inputs, out);
        dir_list_free(&d);
    }
    if (st != OQ_OK) {
        data_list_free(out);
        return st;
    }
    out->n_inputs = n_inputs;
    out->n_groups = out->n_files / n_inputs;
    return OQ_OK;
}
