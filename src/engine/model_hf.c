/* model_hf.c: Hugging Face model folders (see model_hf.h). Follows transformers'
   loading rules: model.safetensors wins over model.safetensors.index.json; with an
   index, only the tensors its weight_map lists exist, each distinct shard is opened
   once, and every listed tensor must be in its shard. PyTorch .bin checkpoints are
   deliberately not read (pickle). Lookups by name go through one array of entries
   sorted by name; the mapped shards stay open until close. */
#include "engine/model_hf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/safetensors.h"

/* safetensors data is little-endian; the no-copy F32 path hands the bytes out as floats */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the no-copy F32 path needs a little-endian host");

#define SINGLE_NAME "model.safetensors"
#define INDEX_NAME  "model.safetensors.index.json"

typedef struct {
    const char         *name;    /* the shard's own copy of the tensor name */
    const qn_st_tensor *t;
    size_t              shard;   /* index into hf_model.shards */
} hf_entry;

typedef struct {
    char        *dir;
    char        *listing;       /* the file that says which tensors exist: shard or index */
    char       **shard_names;   /* (n_shards) relative to dir, sorted */
    qn_st_file **shards;        /* (n_shards) */
    size_t       n_shards;
    hf_entry    *entries;       /* (n) sorted by name */
    size_t       n;
} hf_model;

static void hf_free(hf_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_shards; i++) {
        if (m->shards) qn_st_close(m->shards[i]);
        if (m->shard_names) free(m->shard_names[i]);
    }
    free(m->shards);
    free(m->shard_names);
    free(m->entries);
    free(m->listing);
    free(m->dir);
    free(m);
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const hf_entry *)a)->name, ((const hf_entry *)b)->name);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const hf_entry *hf_find(const hf_model *m, const char *name)
{
    hf_entry key = { .name = name };
    return bsearch(&key, m->entries, m->n, sizeof *m->entries, cmp_entry_name);
}

static qn_status join(char *dst, size_t cap, const char *dir, const char *name, qn_err *err)
{
    if (!qn_path_join(dst, cap, dir, name))
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long for '%s'", dir, name);
    return QN_OK;
}

/* A shard name from an index must stay inside the folder: no absolute path, no "..". */
static bool shard_name_ok(const char *s)
{
    if (!*s || s[0] == '/') return false;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        p += len;
        if (*p == '/') p++;
    }
    return true;
}

static qn_status open_shard(hf_model *m, size_t i, const char *index_path, qn_err *err)
{
    char path[4352];
    qn_status s = join(path, sizeof path, m->dir, m->shard_names[i], err);
    if (s) return s;
    if (index_path && !qn_path_exists(path))
        return qn_err_set(err, QN_ERR_IO, "%s: shard '%s' listed in the index is missing (%s)",
                          index_path, m->shard_names[i], path);
    return qn_st_open(&m->shards[i], path, err);
}

static qn_status load_single(hf_model *m, const char *path, qn_err *err)
{
    m->shard_names = calloc(1, sizeof *m->shard_names);
    m->shards = calloc(1, sizeof *m->shards);
    if (!m->shard_names || !m->shards) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    m->n_shards = 1;
    if (!(m->shard_names[0] = strdup(SINGLE_NAME)) || !(m->listing = strdup(path)))
        return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    qn_status s = open_shard(m, 0, NULL, err);
    if (s) return s;
    size_t n = qn_st_count(m->shards[0]);
    m->entries = calloc(n ? n : 1, sizeof *m->entries);
    if (!m->entries) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const qn_st_tensor *t = qn_st_at(m->shards[0], i);
        m->entries[i] = (hf_entry){ .name = t->name, .t = t, .shard = 0 };
    }
    m->n = n;
    qsort(m->entries, n, sizeof *m->entries, cmp_entry_name);
    return QN_OK;
}

/* The distinct shard names of a weight_map, sorted, into m->shard_names. */
static qn_status collect_shards(hf_model *m, json_t *wmap, const char *path, qn_err *err)
{
    size_t n = json_object_size(wmap);
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    qn_status s = QN_OK;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(wmap, key, val) {
        const char *shard = json_string_value(val);
        if (!shard) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name", path, key);
            goto fail;
        }
        if (!shard_name_ok(shard)) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: weight_map entry '%s' points outside the folder: '%s'",
                           path, key, shard);
            goto fail;
        }
        names[k++] = shard;
    }
    qsort(names, k, sizeof *names, cmp_str_ptr);
    m->shard_names = calloc(k ? k : 1, sizeof *m->shard_names);
    m->shards = calloc(k ? k : 1, sizeof *m->shards);
    if (!m->shard_names || !m->shards) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    for (size_t i = 0; i < k; i++) {
        if (m->n_shards && strcmp(m->shard_names[m->n_shards - 1], names[i]) == 0) continue;
        if (!(m->shard_names[m->n_shards] = strdup(names[i]))) {
            s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        m->n_shards++;
    }
fail:
    free(names);
    return s;
}

static qn_status load_index(hf_model *m, const char *path, qn_err *err)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    qn_status s;
    if (!(m->listing = strdup(path))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    if ((s = qn_file_read_all(path, &text, &len, err))) goto fail;
    if (!(root = qn_json_parse(text, len, JSON_REJECT_DUPLICATES, path, err))) {
        s = QN_ERR_FORMAT;
        goto fail;
    }
    json_t *wmap = json_object_get(root, "weight_map");
    if (!json_is_object(wmap)) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: no \"weight_map\" object", path);
        goto fail;
    }
    if ((s = collect_shards(m, wmap, path, err))) goto fail;
    for (size_t i = 0; i < m->n_shards; i++)
        if ((s = open_shard(m, i, path, err))) goto fail;

    size_t n = json_object_size(wmap);
    m->entries = calloc(n ? n : 1, sizeof *m->entries);
    if (!m->entries) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    const char *key;
    json_t *val;
    json_object_foreach(wmap, key, val) {
        const char *shard = json_string_value(val);
        const char **hit = bsearch(&shard, m->shard_names, m->n_shards, sizeof *m->shard_names, cmp_str_ptr);
        size_t si = (size_t)(hit - (const char **)m->shard_names);
        const qn_st_tensor *t = qn_st_find(m->shards[si], key);
        if (!t) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' is listed in shard '%s', which does not contain it",
                           path, key, shard);
            goto fail;
        }
        m->entries[m->n++] = (hf_entry){ .name = t->name, .t = t, .shard = si };
    }
    qsort(m->entries, m->n, sizeof *m->entries, cmp_entry_name);
fail:
    json_decref(root);
    free(text);
    return s;
}

static qn_status hf_load(hf_model **out, const char *dir, qn_err *err)
{
    *out = NULL;
    if (!qn_path_is_dir(dir)) return qn_err_set(err, QN_ERR_IO, "%s: not a directory", dir);
    hf_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) { free(m); return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", dir); }
    char single[4352], index[4352];
    qn_status s;
    if ((s = join(single, sizeof single, dir, SINGLE_NAME, err)) ||
        (s = join(index, sizeof index, dir, INDEX_NAME, err)))
        goto fail;
    if (qn_path_exists(single)) s = load_single(m, single, err);
    else if (qn_path_exists(index)) s = load_index(m, index, err);
    else s = qn_err_set(err, QN_ERR_IO, "%s: neither %s nor %s found", dir, SINGLE_NAME, INDEX_NAME);
    if (s) goto fail;
    *out = m;
    return QN_OK;
fail:
    hf_free(m);
    return s;
}

/* ---- qn_weight_source ---- */

static qn_status hf_get(void *ctx, const char *name, qn_f32_tensor *out, qn_err *err)
{
    const hf_model *m = ctx;
    memset(out, 0, sizeof *out);
    const hf_entry *e = hf_find(m, name);
    if (!e) return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s'", m->listing, name);
    const qn_st_tensor *t = e->t;
    const char *file = qn_st_path(m->shards[e->shard]);
    if (t->dtype != QN_DTYPE_F32 && t->dtype != QN_DTYPE_F16 && t->dtype != QN_DTYPE_BF16)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s: expected F32, F16 or BF16",
                          file, name, qn_dtype_name(t->dtype));
    if (t->ndim != 1 && t->ndim != 2)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %d dimensions: expected 1 or 2",
                          file, name, t->ndim);
    out->ndim = t->ndim;
    out->shape[0] = t->shape[0];
    out->shape[1] = t->ndim == 2 ? t->shape[1] : 1;
    size_t count = t->nbytes / qn_dtype_size(t->dtype);
    if (t->dtype == QN_DTYPE_F32 && (uintptr_t)t->data % _Alignof(float) == 0) {
        out->data = (float *)t->data;   /* read-only mapping; weights.h: not owned */
        return QN_OK;
    }
    out->data = malloc(count ? count * sizeof(float) : 1);
    if (!out->data)
        return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory converting tensor '%s' (%zu values)",
                          file, name, count);
    qn_dtype_to_f32(t->dtype, t->data, out->data, count);
    out->owned = true;
    return QN_OK;
}

static qn_status hf_raw(void *ctx, const char *name, const qn_st_tensor **out, const char **file, qn_err *err)
{
    const hf_model *m = ctx;
    const hf_entry *e = hf_find(m, name);
    if (!e) return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s'", m->listing, name);
    *out = e->t;
    if (file) *file = qn_st_path(m->shards[e->shard]);
    return QN_OK;
}

static bool hf_has(void *ctx, const char *name) { return hf_find(ctx, name) != NULL; }
static void hf_close(void *ctx) { hf_free(ctx); }

qn_status qn_hf_model_open(const char *dir, qn_config *cfg, qn_weight_source *src, qn_err *err)
{
    memset(src, 0, sizeof *src);
    char path[4352];
    qn_status s = join(path, sizeof path, dir, "config.json", err);
    if (s) return s;
    if ((s = qn_config_load_hf(cfg, path, err))) return s;
    hf_model *m = NULL;
    if ((s = hf_load(&m, dir, err))) return s;
    *src = (qn_weight_source){ .get = hf_get, .has = hf_has, .close = hf_close, .raw = hf_raw, .ctx = m,
                               .path = m->dir };
    return QN_OK;
}

/* ---- listing ---- */

void qn_tensor_list_init(qn_tensor_list *l) { memset(l, 0, sizeof *l); }

void qn_tensor_list_done(qn_tensor_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->tensors[i].name);
        free((char *)l->tensors[i].file);
    }
    free(l->tensors);
    memset(l, 0, sizeof *l);
}

qn_status qn_tensor_list_add(qn_tensor_list *l, const char *name, const char *dtype, int ndim,
                             const int64_t *shape, size_t nbytes, const char *file, qn_err *err)
{
    if (ndim < 0 || ndim > QN_TENSOR_INFO_MAX_DIMS)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, at most %d listed",
                          file, name, ndim, QN_TENSOR_INFO_MAX_DIMS);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        qn_tensor_info *grown = realloc(l->tensors, cap * sizeof *grown);
        if (!grown) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", file);
        l->tensors = grown;
        l->cap = cap;
    }
    qn_tensor_info *ti = &l->tensors[l->n];
    memset(ti, 0, sizeof *ti);
    ti->name = strdup(name);
    ti->file = strdup(file);
    if (!ti->name || !ti->file) {
        free((char *)ti->name);
        free((char *)ti->file);
        return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", file);
    }
    ti->dtype = dtype;
    ti->ndim = ndim;
    for (int d = 0; d < ndim; d++) ti->shape[d] = shape[d];
    ti->nbytes = nbytes;
    l->tensor_bytes += nbytes;
    l->n++;
    return QN_OK;
}

static int cmp_entry_place(const void *a, const void *b)
{
    const hf_entry *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    const unsigned char *px = x->t->data, *py = y->t->data;
    if (px != py) return px < py ? -1 : 1;
    return strcmp(x->name, y->name);
}

qn_status qn_hf_model_tensors(const char *dir, qn_tensor_list *out, qn_err *err)
{
    qn_tensor_list_init(out);
    hf_model *m = NULL;
    qn_status s = hf_load(&m, dir, err);
    if (s) return s;
    for (size_t i = 0; i < m->n_shards; i++) {
        struct stat st;
        if (stat(qn_st_path(m->shards[i]), &st) == 0) out->file_bytes += (uint64_t)st.st_size;
    }
    out->n_files = m->n_shards;
    qsort(m->entries, m->n, sizeof *m->entries, cmp_entry_place);   /* m is discarded below */
    for (size_t i = 0; i < m->n && s == QN_OK; i++) {
        const hf_entry *e = &m->entries[i];
        s = qn_tensor_list_add(out, e->name, qn_dtype_name(e->t->dtype), e->t->ndim, e->t->shape,
                               e->t->nbytes, m->shard_names[e->shard], err);
    }
    hf_free(m);
    if (s) qn_tensor_list_done(out);
    return s;
}
