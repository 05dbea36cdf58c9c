/* safetensors.c: the .safetensors reader and writer (spec: huggingface/safetensors,
   format described in safetensors.h). The reader maps the file read-only, parses
   the header with jansson and checks every entry before any pointer is handed
   out; tensors are kept sorted by data offset (the order of their bytes in the
   file), with a second array sorted by name for lookups. Gaps between tensors are
   tolerated (the reference reader rejects them; they are harmless to us), overlaps
   are not. The writer lays tensors out contiguously in the order given, pads the
   header with spaces to a multiple of 8 bytes as the reference writer does, and
   goes through qn_atomic_* so a failure never leaves a file under the final name. */
#include "engine/safetensors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"

/* The reference implementation refuses headers above 100 MB; a header that big
   would describe millions of tensors, so anything larger is a lying length. */
#define MAX_HEADER_BYTES (100u << 20)

struct qn_st_file {
    char               *path;
    qn_mapping          map;
    json_t             *header;   /* owns the strings that names and meta point to */
    qn_st_tensor       *tensors;  /* (n) sorted by data offset */
    const qn_st_tensor **by_name; /* (n) sorted by name, for bsearch */
    size_t              n;
    const char        **meta;     /* (2 * n_meta) key, value, key, value ... */
    size_t              n_meta;
    void               *aligned;  /* copies of the tensors the file holds misaligned, or NULL */
};

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void write_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

static int cmp_by_offset(const void *a, const void *b)
{
    const qn_st_tensor *x = a, *y = b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    /* equal starts (empty tensors): by name, so the order does not depend on qsort */
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b)
{
    const qn_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static qn_status parse_metadata(qn_st_file *f, json_t *meta, qn_err *err)
{
    if (!json_is_object(meta))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
    size_t n = json_object_size(meta);
    f->meta = calloc(2 * n + 1, sizeof *f->meta);
    if (!f->meta) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val) {
        if (!json_is_string(val))
            return qn_err_set(err, QN_ERR_FORMAT,
                              "%s: __metadata__ value of '%s' is not a string", f->path, key);
        f->meta[2 * f->n_meta] = key;
        f->meta[2 * f->n_meta + 1] = json_string_value(val);
        f->n_meta++;
    }
    return QN_OK;
}

/* Fills t from one header entry; data_size is the byte count after the header. */
static qn_status parse_tensor(const qn_st_file *f, const char *name, json_t *entry,
                              const unsigned char *data, size_t data_size,
                              qn_st_tensor *t, qn_err *err)
{
    const char *path = f->path;
    if (!json_is_object(entry))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", path, name);
    t->name = name;

    json_t *jdt = json_object_get(entry, "dtype");
    if (!json_is_string(jdt))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' has no string \"dtype\"", path, name);
    int dt = qn_dtype_from_name(json_string_value(jdt));
    if (dt < 0)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype '%s'",
                          path, name, json_string_value(jdt));
    t->dtype = (qn_dtype)dt;

    json_t *jshape = json_object_get(entry, "shape");
    if (!json_is_array(jshape))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' has no array \"shape\"", path, name);
    size_t ndim = json_array_size(jshape);
    if (ndim > QN_ST_MAX_DIMS)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions, at most %d supported",
                          path, name, ndim, QN_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    int64_t count = 1;
    bool overflow = false;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(jshape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return qn_err_set(err, QN_ERR_FORMAT,
                              "%s: tensor '%s' shape entry %zu is not a non-negative integer", path, name, i);
        t->shape[i] = (int64_t)json_integer_value(d);
        overflow |= __builtin_mul_overflow(count, t->shape[i], &count);
    }

    json_t *joff = json_object_get(entry, "data_offsets");
    if (!json_is_array(joff) || json_array_size(joff) != 2 ||
        !json_is_integer(json_array_get(joff, 0)) || !json_is_integer(json_array_get(joff, 1)))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' \"data_offsets\" is not [begin, end]",
                          path, name);
    json_int_t begin = json_integer_value(json_array_get(joff, 0));
    json_int_t end = json_integer_value(json_array_get(joff, 1));
    if (begin < 0 || end < 0)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' has a negative data offset", path, name);
    if (begin > end)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' begins at byte %lld, after its end %lld",
                          path, name, (long long)begin, (long long)end);
    if ((unsigned long long)end > data_size)
        return qn_err_set(err, QN_ERR_FORMAT,
                          "%s: tensor '%s' ends at data byte %lld, past the end of the data (%zu)",
                          path, name, (long long)end, data_size);

    int64_t nbytes;
    if (overflow || __builtin_mul_overflow(count, (int64_t)qn_dtype_size(t->dtype), &nbytes))
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' shape product overflows 64 bits", path, name);
    if (nbytes != (int64_t)(end - begin))
        return qn_err_set(err, QN_ERR_SHAPE,
                          "%s: tensor '%s' byte span does not match its shape and dtype: expected %lld bytes, found %lld",
                          path, name, (long long)nbytes, (long long)(end - begin));
    t->nbytes = (size_t)nbytes;
    t->data = data + begin;
    return QN_OK;
}

static bool misaligned(const qn_st_tensor *t)
{
    return t->nbytes && (uintptr_t)t->data % qn_dtype_size(t->dtype) != 0;
}

/* Readers load elements through typed pointers (qstore, the kernels): a tensor
   whose offset is not a multiple of its element size (a file from another
   writer, or a broken one) is copied once into an aligned block owned here. */
static qn_status align_tensors(qn_st_file *f, qn_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++)
        if (misaligned(&f->tensors[i])) total += (f->tensors[i].nbytes + 15) & ~(size_t)15;
    if (!total) return QN_OK;
    unsigned char *block = malloc(total);   /* malloc's alignment covers every dtype (8 bytes at most) */
    if (!block) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory aligning %zu bytes of tensors", f->path, total);
    f->aligned = block;
    for (size_t i = 0; i < f->n; i++) {
        qn_st_tensor *t = &f->tensors[i];
        if (!misaligned(t)) continue;
        memcpy(block, t->data, t->nbytes);
        t->data = block;
        block += (t->nbytes + 15) & ~(size_t)15;
    }
    return QN_OK;
}

static qn_status parse_header(qn_st_file *f, qn_err *err)
{
    const char *path = f->path;
    size_t size = f->map.size;
    if (size < 8)
        return qn_err_set(err, QN_ERR_FORMAT,
                          "%s: too short for a safetensors file: expected at least 8 bytes, found %zu", path, size);
    uint64_t hlen = read_le64(f->map.data);
    if (hlen < 2)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: header length %llu is too small for a JSON object",
                          path, (unsigned long long)hlen);
    if (hlen > MAX_HEADER_BYTES)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u bytes",
                          path, (unsigned long long)hlen, MAX_HEADER_BYTES);
    if (hlen > size - 8)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                          path, (unsigned long long)hlen, size);

    json_error_t jerr;
    f->header = json_loadb((const char *)f->map.data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!f->header)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d)",
                          path, jerr.text, jerr.position);
    if (!json_is_object(f->header))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: header is not a JSON object", path);

    const unsigned char *data = f->map.data + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    size_t cap = json_object_size(f->header);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->by_name = calloc(cap ? cap : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);

    const char *key;
    json_t *val;
    qn_status s;
    json_object_foreach(f->header, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((s = parse_metadata(f, val, err)) != QN_OK) return s;
            continue;
        }
        if ((s = parse_tensor(f, key, val, data, data_size, &f->tensors[f->n], err)) != QN_OK) return s;
        f->n++;
    }

    qsort(f->tensors, f->n, sizeof *f->tensors, cmp_by_offset);
    /* sorted by start, a tensor overlaps iff it starts before the end of the
       previous non-empty one; empty tensors occupy no bytes and are skipped */
    const qn_st_tensor *prev = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const qn_st_tensor *t = &f->tensors[i];
        if (!t->nbytes) continue;
        if (prev && (const unsigned char *)prev->data + prev->nbytes > (const unsigned char *)t->data)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap at data byte %td",
                              path, prev->name, t->name, (const unsigned char *)t->data - data);
        prev = t;
    }
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_by_name);
    return align_tensors(f, err);
}

qn_status qn_st_open(qn_st_file **out, const char *path, qn_err *err)
{
    qn_status s;
    *out = NULL;
    qn_st_file *f = calloc(1, sizeof *f);
    if (!f) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if ((s = qn_file_map(&f->map, path, err)) != QN_OK) goto fail;
    if ((s = parse_header(f, err)) != QN_OK) goto fail;
    *out = f;
    return QN_OK;
fail:
    qn_st_close(f);
    return s;
}

void qn_st_close(qn_st_file *f)
{
    if (!f) return;
    qn_file_unmap(&f->map);
    json_decref(f->header);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->aligned);
    free(f->path);
    free(f);
}

const char *qn_st_path(const qn_st_file *f) { return f->path; }
size_t qn_st_count(const qn_st_file *f) { return f->n; }

const qn_st_tensor *qn_st_at(const qn_st_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i] : NULL;
}

const qn_st_tensor *qn_st_find(const qn_st_file *f, const char *name)
{
    qn_st_tensor key = { .name = name };
    const qn_st_tensor *kp = &key;
    const qn_st_tensor *const *hit = bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, cmp_by_name);
    return hit ? *hit : NULL;
}

const char *qn_st_meta(const qn_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* ---- writer ---- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the caller's entries and fills nbytes[i]; duplicate names or a shape
   that overflows are caller bugs or bad user input, reported before any byte is written. */
static qn_status check_entries(const char *path, const qn_st_entry *tensors, size_t n,
                               size_t *nbytes, qn_err *err)
{
    qn_status s = QN_OK;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const qn_st_entry *e = &tensors[i];
        if (!e->name || strcmp(e->name, "__metadata__") == 0) {
            s = qn_err_set(err, QN_ERR_ARG, "%s: tensor %zu has no name or the reserved name __metadata__", path, i);
            goto fail;
        }
        if ((unsigned)e->dtype >= QN_DTYPE_COUNT || e->ndim < 0 || e->ndim > QN_ST_MAX_DIMS) {
            s = qn_err_set(err, QN_ERR_ARG, "%s: tensor '%s' has an invalid dtype or %d dimensions",
                           path, e->name, e->ndim);
            goto fail;
        }
        int64_t count = 1;
        bool overflow = false;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] < 0) {
                s = qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has negative dimension %lld",
                               path, e->name, (long long)e->shape[d]);
                goto fail;
            }
            overflow |= __builtin_mul_overflow(count, e->shape[d], &count);
        }
        int64_t bytes;
        if (overflow || __builtin_mul_overflow(count, (int64_t)qn_dtype_size(e->dtype), &bytes)) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' shape product overflows 64 bits", path, e->name);
            goto fail;
        }
        if (bytes > 0 && !e->data) {
            s = qn_err_set(err, QN_ERR_ARG, "%s: tensor '%s' has no data", path, e->name);
            goto fail;
        }
        nbytes[i] = (size_t)bytes;
        names[i] = e->name;
    }
    qsort(names, n, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            s = qn_err_set(err, QN_ERR_ARG, "%s: tensor name '%s' appears twice", path, names[i]);
            goto fail;
        }
fail:
    free(names);
    return s;
}

/* Builds {"__metadata__": {...}, name: {dtype, shape, data_offsets}, ...} with
   the tensors in the caller's order and their bytes laid out back to back.
   json_*_set_new steal their value even on failure, so a NULL from a constructor
   shows up as a failed set and nothing leaks. */
static qn_status build_header(json_t **out, const qn_st_entry *tensors, size_t n, const size_t *nbytes,
                              const char *const *meta, const char *path, qn_err *err)
{
    qn_status s = QN_ERR_NOMEM;
    json_t *root = json_object();
    if (!root) goto nomem;
    if (meta && meta[0]) {
        json_t *jm = json_object();
        if (json_object_set_new(root, "__metadata__", jm) != 0) goto nomem;
        for (size_t i = 0; meta[i]; i += 2) {
            if (!meta[i + 1]) {
                s = qn_err_set(err, QN_ERR_ARG, "%s: metadata key '%s' has no value", path, meta[i]);
                goto fail;
            }
            if (json_object_get(jm, meta[i])) {
                s = qn_err_set(err, QN_ERR_ARG, "%s: metadata key '%s' appears twice", path, meta[i]);
                goto fail;
            }
            if (json_object_set_new(jm, meta[i], json_string(meta[i + 1])) != 0) {
                s = qn_err_set(err, QN_ERR_ARG, "%s: metadata '%s' is not valid UTF-8", path, meta[i]);
                goto fail;
            }
        }
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const qn_st_entry *e = &tensors[i];
        size_t end;
        if (__builtin_add_overflow(offset, nbytes[i], &end) || end > (size_t)INT64_MAX) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tensors add up to more than 2^63 bytes", path);
            goto fail;
        }
        json_t *entry = json_object();
        if (json_object_set_new(root, e->name, entry) != 0) {
            if (!entry) goto nomem;
            s = qn_err_set(err, QN_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, e->name);
            goto fail;
        }
        json_t *shape = json_array(), *offsets = json_array();
        if (json_object_set_new(entry, "dtype", json_string(qn_dtype_name(e->dtype))) != 0 ||
            json_object_set_new(entry, "shape", shape) != 0 ||
            json_object_set_new(entry, "data_offsets", offsets) != 0)
            goto nomem;
        for (int d = 0; d < e->ndim; d++)
            if (json_array_append_new(shape, json_integer(e->shape[d])) != 0) goto nomem;
        if (json_array_append_new(offsets, json_integer((json_int_t)offset)) != 0 ||
            json_array_append_new(offsets, json_integer((json_int_t)end)) != 0)
            goto nomem;
        offset = end;
    }
    *out = root;
    return QN_OK;
nomem:
    s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory building the header", path);
fail:
    json_decref(root);
    return s;
}

qn_status qn_st_write(const char *path, const qn_st_entry *tensors, size_t n,
                      const char *const *meta, qn_err *err)
{
    qn_status s;
    size_t *nbytes = calloc(n ? n : 1, sizeof *nbytes);
    json_t *root = NULL;
    char *text = NULL;
    qn_atomic_file af = { 0 };
    bool opened = false;
    if (!nbytes) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    if ((s = check_entries(path, tensors, n, nbytes, err)) != QN_OK) goto fail;
    if ((s = build_header(&root, tensors, n, nbytes, meta, path, err)) != QN_OK) goto fail;
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory serializing the header", path); goto fail; }

    size_t len = strlen(text), pad = (8 - len % 8) % 8;
    unsigned char prefix[8];
    write_le64(prefix, len + pad);
    static const char spaces[8] = "        ";
    if ((s = qn_atomic_open(&af, path, err)) != QN_OK) goto fail;
    opened = true;
    if ((s = qn_atomic_write(&af, prefix, 8, err)) != QN_OK) goto fail;
    if ((s = qn_atomic_write(&af, text, len, err)) != QN_OK) goto fail;
    if ((s = qn_atomic_write(&af, spaces, pad, err)) != QN_OK) goto fail;
    for (size_t i = 0; i < n; i++)
        if ((s = qn_atomic_write(&af, tensors[i].data, nbytes[i], err)) != QN_OK) goto fail;
    opened = false;   /* commit closes and, on failure, removes the temporary itself */
    if ((s = qn_atomic_commit(&af, err)) != QN_OK) goto fail;
    free(text);
    json_decref(root);
    free(nbytes);
    return QN_OK;
fail:
    if (opened) qn_atomic_abort(&af);
    free(text);
    json_decref(root);
    free(nbytes);
    return s;
}
