/* gguf.c: the GGUF container reader (see gguf.h; spec: ggml-org/ggml
   docs/gguf.md, checks modelled on llama.cpp ggml/src/gguf.cpp). Parsing is
   one forward pass over the mapping with a bounds-checked cursor; every string
   and array is copied into an arena the file owns, so a lookup never touches
   unvalidated bytes. Tensor data stays in the mapping. */
#include "engine/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/ggml_quants.h"

/* llama.cpp writes arrays one level deep; deeper nesting is allowed by the spec
   but capped so a hostile file cannot recurse the stack away. */
enum { MAX_ARRAY_DEPTH = 8 };

/* Bump allocator for the copied strings and values: freed all at once. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    unsigned char data[];            /* offset 24: 8-byte aligned, as every allocation size is */
} arena_chunk;

struct qn_gguf_file {
    qn_mapping map;
    char *path;
    uint32_t version;
    size_t alignment;
    size_t n_kv;
    qn_gguf_kv *kv;                  /* (n_kv) file order */
    const qn_gguf_kv **kv_sorted;    /* (n_kv) by key, for bsearch */
    size_t n_tensors;
    qn_gguf_tensor *tensors;         /* (n_tensors) file order */
    const qn_gguf_tensor **by_name;  /* (n_tensors) by name, for bsearch */
    arena_chunk *arena;
};

typedef struct {
    const unsigned char *p;
    size_t size, pos;
    qn_gguf_file *f;
    qn_err *err;
} reader;

static const size_t k_scalar_size[QN_GGUF_TYPE_COUNT] = {
    [QN_GGUF_UINT8] = 1, [QN_GGUF_INT8] = 1, [QN_GGUF_UINT16] = 2, [QN_GGUF_INT16] = 2,
    [QN_GGUF_UINT32] = 4, [QN_GGUF_INT32] = 4, [QN_GGUF_FLOAT32] = 4, [QN_GGUF_BOOL] = 1,
    [QN_GGUF_UINT64] = 8, [QN_GGUF_INT64] = 8, [QN_GGUF_FLOAT64] = 8,
};

static const char *const k_type_names[QN_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
    "string", "array", "uint64", "int64", "float64",
};

const char *qn_gguf_type_name(qn_gguf_type t)
{
    return (unsigned)t < QN_GGUF_TYPE_COUNT ? k_type_names[t] : "unknown";
}

static bool is_unsigned(qn_gguf_type t)
{
    return t == QN_GGUF_UINT8 || t == QN_GGUF_UINT16 || t == QN_GGUF_UINT32 || t == QN_GGUF_UINT64;
}
static bool is_signed(qn_gguf_type t)
{
    return t == QN_GGUF_INT8 || t == QN_GGUF_INT16 || t == QN_GGUF_INT32 || t == QN_GGUF_INT64;
}
static bool is_float(qn_gguf_type t) { return t == QN_GGUF_FLOAT32 || t == QN_GGUF_FLOAT64; }

static void *arena_alloc(qn_gguf_file *f, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    arena_chunk *c = f->arena;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = f->arena;
        c->used = 0;
        c->cap = cap;
        f->arena = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static qn_status nomem(reader *r, const char *what)
{
    return qn_err_set(r->err, QN_ERR_NOMEM, "%s: out of memory reading %s", r->f->path, what);
}

/* The cursor may move n bytes further; else the file is truncated. */
static qn_status need(reader *r, size_t n, const char *what)
{
    if (n <= r->size - r->pos) return QN_OK;
    return qn_err_set(r->err, QN_ERR_FORMAT,
                      "%s: truncated: %s needs %zu bytes at byte %zu, past the end of the file (%zu bytes)",
                      r->f->path, what, n, r->pos, r->size);
}

static qn_status rd_u32(reader *r, uint32_t *v, const char *what)
{
    qn_status s = need(r, 4, what);
    if (s) return s;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return QN_OK;
}

static qn_status rd_u64(reader *r, uint64_t *v, const char *what)
{
    qn_status s = need(r, 8, what);
    if (s) return s;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return QN_OK;
}

/* u64 length + bytes, copied with a terminating NUL. */
static qn_status rd_str(reader *r, const char **out, size_t *len_out, const char *what)
{
    uint64_t len;
    qn_status s = rd_u64(r, &len, what);
    if (s) return s;
    if (len > r->size - r->pos)
        return qn_err_set(r->err, QN_ERR_FORMAT,
                          "%s: %s: string of %llu bytes at byte %zu runs past the end of the file (%zu bytes)",
                          r->f->path, what, (unsigned long long)len, r->pos, r->size);
    char *str = arena_alloc(r->f, (size_t)len + 1);
    if (!str) return nomem(r, what);
    memcpy(str, r->p + r->pos, (size_t)len);
    str[len] = 0;
    r->pos += (size_t)len;
    *out = str;
    if (len_out) *len_out = (size_t)len;
    return QN_OK;
}

/* Widens one little-endian scalar of type t at p into v. */
static void decode_scalar(qn_gguf_type t, const unsigned char *p, qn_gguf_value *v)
{
    v->type = t;
    switch (t) {
    case QN_GGUF_UINT8:  v->u64 = p[0]; break;
    case QN_GGUF_INT8:   v->i64 = (int8_t)p[0]; break;
    case QN_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->u64 = x; break; }
    case QN_GGUF_INT16:  { int16_t x;  memcpy(&x, p, 2); v->i64 = x; break; }
    case QN_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->u64 = x; break; }
    case QN_GGUF_INT32:  { int32_t x;  memcpy(&x, p, 4); v->i64 = x; break; }
    case QN_GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); v->u64 = x; break; }
    case QN_GGUF_INT64:  { int64_t x;  memcpy(&x, p, 8); v->i64 = x; break; }
    case QN_GGUF_FLOAT32: { float x;   memcpy(&x, p, 4); v->f64 = x; break; }
    case QN_GGUF_FLOAT64: { double x;  memcpy(&x, p, 8); v->f64 = x; break; }
    case QN_GGUF_BOOL:   v->b = p[0] != 0; break;
    default: break;
    }
}

static qn_status parse_value(reader *r, qn_gguf_type t, int depth, const char *what, qn_gguf_value *v)
{
    qn_status s;
    v->type = t;
    if (t == QN_GGUF_STRING) return rd_str(r, &v->str.s, &v->str.len, what);
    if (t != QN_GGUF_ARRAY) {
        if ((s = need(r, k_scalar_size[t], what))) return s;
        decode_scalar(t, r->p + r->pos, v);
        r->pos += k_scalar_size[t];
        return QN_OK;
    }
    uint32_t elem;
    uint64_t n;
    if ((s = rd_u32(r, &elem, what)) || (s = rd_u64(r, &n, what))) return s;
    if (elem >= QN_GGUF_TYPE_COUNT)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: unknown array element type %u",
                          r->f->path, what, elem);
    if (elem == QN_GGUF_ARRAY && depth + 1 >= MAX_ARRAY_DEPTH)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: arrays nested more than %d deep",
                          r->f->path, what, MAX_ARRAY_DEPTH);
    /* the smallest an element can be: its bytes, a string's length, an array's type and count */
    size_t min_size = elem == QN_GGUF_STRING ? 8 : elem == QN_GGUF_ARRAY ? 12 : k_scalar_size[elem];
    size_t left = r->size - r->pos;
    if (n > left / min_size)
        return qn_err_set(r->err, QN_ERR_FORMAT,
                          "%s: %s: array of %llu %s elements cannot fit in the %zu bytes left after byte %zu",
                          r->f->path, what, (unsigned long long)n, qn_gguf_type_name(elem), left, r->pos);
    v->arr.elem = elem;
    v->arr.n = (size_t)n;
    v->arr.raw = NULL;
    v->arr.strs = NULL;
    v->arr.items = NULL;
    if (elem == QN_GGUF_STRING) {
        const char **strs = arena_alloc(r->f, v->arr.n * sizeof *strs + 1);
        if (!strs) return nomem(r, what);
        for (size_t i = 0; i < v->arr.n; i++)
            if ((s = rd_str(r, &strs[i], NULL, what))) return s;
        v->arr.strs = strs;
    } else if (elem == QN_GGUF_ARRAY) {
        qn_gguf_value *items = arena_alloc(r->f, v->arr.n * sizeof *items + 1);
        if (!items) return nomem(r, what);
        for (size_t i = 0; i < v->arr.n; i++)
            if ((s = parse_value(r, QN_GGUF_ARRAY, depth + 1, what, &items[i]))) return s;
        v->arr.items = items;
    } else {
        v->arr.raw = r->p + r->pos;
        r->pos += v->arr.n * min_size;
    }
    return QN_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const qn_gguf_kv *const *)a)->key, (*(const qn_gguf_kv *const *)b)->key);
}
static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const qn_gguf_tensor *const *)a)->name, (*(const qn_gguf_tensor *const *)b)->name);
}
static int cmp_tensor_offset(const void *a, const void *b)
{
    uint64_t x = (*(const qn_gguf_tensor *const *)a)->offset, y = (*(const qn_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static qn_status parse_header(reader *r, uint64_t *n_tensors, uint64_t *n_kv)
{
    const char *path = r->f->path;
    qn_status s;
    if (r->size < 4 || memcmp(r->p, "GGUF", 4) != 0) {
        unsigned char m[4] = {0};
        if (r->size) memcpy(m, r->p, r->size < 4 ? r->size : 4);
        return qn_err_set(r->err, QN_ERR_FORMAT,
                          "%s: not a GGUF file: expected magic 'GGUF', found %02x %02x %02x %02x",
                          path, m[0], m[1], m[2], m[3]);
    }
    r->pos = 4;
    uint32_t v;
    if ((s = rd_u32(r, &v, "the version"))) return s;
    r->f->version = v;
    if (v == 1)
        return qn_err_set(r->err, QN_ERR_UNSUPPORTED,
                          "%s: GGUF version 1 (llama.cpp before August 2023) is not supported; "
                          "re-convert it with a current llama.cpp", path);
    if (v != 2 && v != 3) {
        if (__builtin_bswap32(v) == 2 || __builtin_bswap32(v) == 3)
            return qn_err_set(r->err, QN_ERR_UNSUPPORTED, "%s: big-endian GGUF files are not supported", path);
        return qn_err_set(r->err, QN_ERR_UNSUPPORTED,
                          "%s: GGUF version %u is not supported: expected 2 or 3", path, v);
    }
    if ((s = rd_u64(r, n_tensors, "the tensor count")) || (s = rd_u64(r, n_kv, "the key/value count")))
        return s;
    /* smallest key/value: 8-byte key length, 4-byte type, 1-byte value; smallest
       tensor info: 8-byte name length, n_dims, one dim, type, offset */
    size_t left = r->size - r->pos;
    if (*n_kv > left / 13 || *n_tensors > left / 32)
        return qn_err_set(r->err, QN_ERR_FORMAT,
                          "%s: header claims %llu tensors and %llu key/values, more than the %zu bytes after it can hold",
                          path, (unsigned long long)*n_tensors, (unsigned long long)*n_kv, left);
    return QN_OK;
}

static qn_status parse_kvs(reader *r)
{
    qn_gguf_file *f = r->f;
    qn_status s;
    char what[192];
    for (size_t i = 0; i < f->n_kv; i++) {
        qn_gguf_kv *kv = &f->kv[i];
        snprintf(what, sizeof what, "key #%zu", i);
        if ((s = rd_str(r, &kv->key, NULL, what))) return s;
        snprintf(what, sizeof what, "key '%.120s'", kv->key);
        uint32_t t;
        if ((s = rd_u32(r, &t, what))) return s;
        if (t >= QN_GGUF_TYPE_COUNT)
            return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s has unknown value type %u", f->path, what, t);
        if ((s = parse_value(r, (qn_gguf_type)t, 0, what, &kv->value))) return s;
        f->kv_sorted[i] = kv;
    }
    qsort(f->kv_sorted, f->n_kv, sizeof *f->kv_sorted, cmp_kv);
    for (size_t i = 1; i < f->n_kv; i++)
        if (strcmp(f->kv_sorted[i - 1]->key, f->kv_sorted[i]->key) == 0)
            return qn_err_set(r->err, QN_ERR_FORMAT, "%s: duplicate key '%s'", f->path, f->kv_sorted[i]->key);

    f->alignment = QN_GGUF_DEFAULT_ALIGNMENT;
    const qn_gguf_value *a = qn_gguf_find(f, "general.alignment");
    if (a) {
        if (a->type != QN_GGUF_UINT32)
            return qn_err_set(r->err, QN_ERR_FORMAT, "%s: general.alignment is %s, expected uint32",
                              f->path, qn_gguf_type_name(a->type));
        if (a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0)
            return qn_err_set(r->err, QN_ERR_FORMAT, "%s: general.alignment %llu is not a power of two",
                              f->path, (unsigned long long)a->u64);
        f->alignment = (size_t)a->u64;
    }
    return QN_OK;
}

static qn_status parse_tensor_info(reader *r, size_t i, qn_gguf_tensor *t)
{
    const char *path = r->f->path;
    qn_status s;
    char what[192];
    snprintf(what, sizeof what, "tensor info #%zu", i);
    if ((s = rd_str(r, &t->name, NULL, what))) return s;
    snprintf(what, sizeof what, "tensor '%.120s'", t->name);
    uint32_t nd;
    if ((s = rd_u32(r, &nd, what))) return s;
    if (nd < 1 || nd > QN_GGUF_MAX_DIMS)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s has %u dimensions: expected 1 to %d",
                          path, what, nd, QN_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (int d = 0; d < QN_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->ndim && (s = rd_u64(r, &ne, what))) return s;
        if (ne > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, ne, &numel) || numel > (uint64_t)INT64_MAX)
            return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: dimension %d = %llu makes the element count overflow",
                              path, what, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((s = rd_u32(r, &t->type, what)) || (s = rd_u64(r, &t->offset, what))) return s;
    const qn_ggml_type_desc *td = qn_ggml_type_info(t->type);
    if (!td) {
        if (t->type < QN_GGML_TYPE_COUNT)
            return qn_err_set(r->err, QN_ERR_UNSUPPORTED, "%s: %s has ggml type %u (%s), which ggml has removed",
                              path, what, t->type, qn_ggml_type_name(t->type));
        return qn_err_set(r->err, QN_ERR_UNSUPPORTED,
                          "%s: %s has unknown ggml type %u (this reader knows types up to %d)",
                          path, what, t->type, QN_GGML_TYPE_COUNT - 1);
    }
    if ((uint64_t)t->ne[0] % td->block_size != 0)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: row length %lld is not a multiple of the %s block size %u",
                          path, what, (long long)t->ne[0], td->name, td->block_size);
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel / td->block_size, (uint64_t)td->block_bytes, &nbytes) || nbytes > SIZE_MAX)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: byte size overflows", path, what);
    t->nelements = (size_t)numel;
    t->nbytes = (size_t)nbytes;
    if (t->offset % r->f->alignment != 0)
        return qn_err_set(r->err, QN_ERR_FORMAT, "%s: %s: offset %llu is not a multiple of the alignment %zu",
                          path, what, (unsigned long long)t->offset, r->f->alignment);
    return QN_OK;
}

/* Places the data section and checks every tensor lies inside it, apart from the others. */
static qn_status place_tensors(reader *r)
{
    qn_gguf_file *f = r->f;
    const char *path = f->path;
    size_t data_start = r->pos;
    size_t rem = data_start % f->alignment;
    if (rem) data_start += f->alignment - rem;     /* pos <= size, alignment < 2^32: no overflow */
    if (f->n_tensors > 0 && data_start > r->size)
        return qn_err_set(r->err, QN_ERR_FORMAT,
                          "%s: truncated: the tensor data would start at byte %zu, past the end of the file (%zu bytes)",
                          path, data_start, r->size);
    size_t avail = f->n_tensors > 0 ? r->size - data_start : 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        qn_gguf_tensor *t = &f->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return qn_err_set(r->err, QN_ERR_FORMAT,
                              "%s: tensor '%s' (%zu bytes at data offset %llu) ends past the end of the file "
                              "(%zu bytes of tensor data from byte %zu)",
                              path, t->name, t->nbytes, (unsigned long long)t->offset, avail, data_start);
        t->data = r->p + data_start + t->offset;
    }
    const qn_gguf_tensor **by_off = malloc((f->n_tensors + 1) * sizeof *by_off);
    if (!by_off) return nomem(r, "the tensor table");
    for (size_t i = 0; i < f->n_tensors; i++) by_off[i] = &f->tensors[i];
    qsort(by_off, f->n_tensors, sizeof *by_off, cmp_tensor_offset);
    qn_status s = QN_OK;
    const qn_gguf_tensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors && !s; i++) {
        const qn_gguf_tensor *t = by_off[i];
        if (t->nbytes == 0) continue;
        if (prev && prev->offset + prev->nbytes > t->offset)
            s = qn_err_set(r->err, QN_ERR_FORMAT,
                           "%s: tensors '%s' (data bytes %llu..%llu) and '%s' (from %llu) overlap",
                           path, prev->name, (unsigned long long)prev->offset,
                           (unsigned long long)(prev->offset + prev->nbytes), t->name,
                           (unsigned long long)t->offset);
        prev = t;
    }
    free(by_off);
    return s;
}

qn_status qn_gguf_open(qn_gguf_file **out, const char *path, qn_err *err)
{
    qn_status s;
    *out = NULL;
    qn_gguf_file *f = calloc(1, sizeof *f);
    if (!f) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if ((s = qn_file_map(&f->map, path, err))) goto fail;
    reader r = { .p = f->map.data, .size = f->map.size, .pos = 0, .f = f, .err = err };
    uint64_t n_tensors, n_kv;
    if ((s = parse_header(&r, &n_tensors, &n_kv))) goto fail;
    f->n_kv = (size_t)n_kv;
    f->n_tensors = (size_t)n_tensors;
    f->kv = calloc(f->n_kv + 1, sizeof *f->kv);
    f->kv_sorted = calloc(f->n_kv + 1, sizeof *f->kv_sorted);
    f->tensors = calloc(f->n_tensors + 1, sizeof *f->tensors);
    f->by_name = calloc(f->n_tensors + 1, sizeof *f->by_name);
    if (!f->kv || !f->kv_sorted || !f->tensors || !f->by_name) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu tensors and %zu keys", path,
                       f->n_tensors, f->n_kv);
        goto fail;
    }
    if ((s = parse_kvs(&r))) goto fail;
    for (size_t i = 0; i < f->n_tensors; i++) {
        if ((s = parse_tensor_info(&r, i, &f->tensors[i]))) goto fail;
        f->by_name[i] = &f->tensors[i];
    }
    qsort(f->by_name, f->n_tensors, sizeof *f->by_name, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, f->by_name[i]->name);
            goto fail;
        }
    if ((s = place_tensors(&r))) goto fail;
    *out = f;
    return QN_OK;
fail:
    qn_gguf_close(f);
    return s;
}

void qn_gguf_close(qn_gguf_file *f)
{
    if (!f) return;
    qn_file_unmap(&f->map);
    while (f->arena) {
        arena_chunk *next = f->arena->next;
        free(f->arena);
        f->arena = next;
    }
    free(f->kv);
    free(f->kv_sorted);
    free(f->tensors);
    free(f->by_name);
    free(f->path);
    free(f);
}

const char *qn_gguf_path(const qn_gguf_file *f) { return f->path; }
uint32_t qn_gguf_version(const qn_gguf_file *f) { return f->version; }
size_t qn_gguf_alignment(const qn_gguf_file *f) { return f->alignment; }
size_t qn_gguf_kv_count(const qn_gguf_file *f) { return f->n_kv; }
const qn_gguf_kv *qn_gguf_kv_at(const qn_gguf_file *f, size_t i) { return i < f->n_kv ? &f->kv[i] : NULL; }
size_t qn_gguf_tensor_count(const qn_gguf_file *f) { return f->n_tensors; }

const qn_gguf_tensor *qn_gguf_tensor_at(const qn_gguf_file *f, size_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

static int cmp_key_kv(const void *key, const void *elem)
{
    return strcmp(key, (*(const qn_gguf_kv *const *)elem)->key);
}
static int cmp_key_tensor(const void *key, const void *elem)
{
    return strcmp(key, (*(const qn_gguf_tensor *const *)elem)->name);
}

const qn_gguf_value *qn_gguf_find(const qn_gguf_file *f, const char *key)
{
    if (f->n_kv == 0) return NULL;
    const qn_gguf_kv *const *hit = bsearch(key, f->kv_sorted, f->n_kv, sizeof *f->kv_sorted, cmp_key_kv);
    return hit ? &(*hit)->value : NULL;
}

const qn_gguf_tensor *qn_gguf_tensor_find(const qn_gguf_file *f, const char *name)
{
    if (f->n_tensors == 0) return NULL;
    const qn_gguf_tensor *const *hit = bsearch(name, f->by_name, f->n_tensors, sizeof *f->by_name, cmp_key_tensor);
    return hit ? *hit : NULL;
}

qn_status qn_gguf_tensor_to_f32(const qn_gguf_file *f, const qn_gguf_tensor *t, float *dst, qn_err *err)
{
    qn_status s = qn_ggml_to_f32(t->type, t->data, dst, t->nelements, err);
    if (s) qn_err_prefix(err, "%s: tensor '%s': ", f->path, t->name);
    return s;
}

/* ---- typed getters ---- */

static const qn_gguf_value *lookup(const qn_gguf_file *f, const char *key, qn_err *err)
{
    const qn_gguf_value *v = qn_gguf_find(f, key);
    if (!v) qn_err_set(err, QN_ERR_FORMAT, "%s: missing key '%s'", f->path, key);
    return v;
}

static qn_status wrong_kind(const qn_gguf_file *f, const char *key, const qn_gguf_value *v,
                            const char *expected, qn_err *err)
{
    if (v->type == QN_GGUF_ARRAY)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: key '%s' is an array of %s, expected %s", f->path, key,
                          qn_gguf_type_name(v->arr.elem), expected);
    return qn_err_set(err, QN_ERR_FORMAT, "%s: key '%s' is %s, expected %s", f->path, key,
                      qn_gguf_type_name(v->type), expected);
}

/* An integer value inside [lo, hi], as int64 (hi <= INT64_MAX). */
static bool int_in_range(const qn_gguf_value *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (is_unsigned(v->type)) {
        if (v->u64 > (uint64_t)hi || (lo > 0 && v->u64 < (uint64_t)lo)) return false;
        *out = (int64_t)v->u64;
        return true;
    }
    if (is_signed(v->type)) {
        if (v->i64 < lo || v->i64 > hi) return false;
        *out = v->i64;
        return true;
    }
    return false;
}

qn_status qn_gguf_get_u32(const qn_gguf_file *f, const char *key, uint32_t *out, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    int64_t x;
    if (!is_unsigned(v->type) && !is_signed(v->type)) return wrong_kind(f, key, v, "an unsigned integer", err);
    if (!int_in_range(v, 0, UINT32_MAX, &x))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: key '%s' = %lld is out of range for uint32", f->path, key,
                          is_signed(v->type) ? (long long)v->i64 : (long long)v->u64);
    *out = (uint32_t)x;
    return QN_OK;
}

qn_status qn_gguf_get_i64(const qn_gguf_file *f, const char *key, int64_t *out, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    if (!is_unsigned(v->type) && !is_signed(v->type)) return wrong_kind(f, key, v, "an integer", err);
    if (!int_in_range(v, INT64_MIN, INT64_MAX, out))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: key '%s' = %llu is out of range for int64", f->path, key,
                          (unsigned long long)v->u64);
    return QN_OK;
}

qn_status qn_gguf_get_f32(const qn_gguf_file *f, const char *key, float *out, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    if (is_float(v->type)) *out = (float)v->f64;
    else if (is_unsigned(v->type)) *out = (float)v->u64;
    else if (is_signed(v->type)) *out = (float)v->i64;
    else return wrong_kind(f, key, v, "a number", err);
    return QN_OK;
}

qn_status qn_gguf_get_bool(const qn_gguf_file *f, const char *key, bool *out, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    if (v->type != QN_GGUF_BOOL) return wrong_kind(f, key, v, "bool", err);
    *out = v->b;
    return QN_OK;
}

qn_status qn_gguf_get_str(const qn_gguf_file *f, const char *key, const char **out, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    if (v->type != QN_GGUF_STRING) return wrong_kind(f, key, v, "string", err);
    *out = v->str.s;
    return QN_OK;
}

qn_status qn_gguf_get_str_arr(const qn_gguf_file *f, const char *key, const char *const **out,
                              size_t *n, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return QN_ERR_FORMAT;
    if (v->type != QN_GGUF_ARRAY || v->arr.elem != QN_GGUF_STRING)
        return wrong_kind(f, key, v, "an array of string", err);
    *out = v->arr.strs;
    *n = v->arr.n;
    return QN_OK;
}

/* A numeric array's elements, widened one by one; NULL (error set) otherwise. */
static const qn_gguf_value *numeric_array(const qn_gguf_file *f, const char *key, bool integers_only, qn_err *err)
{
    const qn_gguf_value *v = lookup(f, key, err);
    if (!v) return NULL;
    qn_gguf_type e = v->type == QN_GGUF_ARRAY ? v->arr.elem : QN_GGUF_TYPE_COUNT;
    bool ok = is_unsigned(e) || is_signed(e) || (!integers_only && is_float(e));
    if (!ok) {
        wrong_kind(f, key, v, integers_only ? "an array of integers" : "an array of numbers", err);
        return NULL;
    }
    return v;
}

qn_status qn_gguf_get_f32_arr(const qn_gguf_file *f, const char *key, float **out, size_t *n, qn_err *err)
{
    *out = NULL;
    const qn_gguf_value *v = numeric_array(f, key, false, err);
    if (!v) return QN_ERR_FORMAT;
    float *dst = malloc((v->arr.n + 1) * sizeof *dst);
    if (!dst) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for key '%s'", f->path, key);
    size_t sz = k_scalar_size[v->arr.elem];
    const unsigned char *p = v->arr.raw;
    for (size_t i = 0; i < v->arr.n; i++) {
        qn_gguf_value x;
        decode_scalar(v->arr.elem, p + i * sz, &x);
        dst[i] = is_float(x.type) ? (float)x.f64 : is_signed(x.type) ? (float)x.i64 : (float)x.u64;
    }
    *out = dst;
    *n = v->arr.n;
    return QN_OK;
}

qn_status qn_gguf_get_i32_arr(const qn_gguf_file *f, const char *key, int32_t **out, size_t *n, qn_err *err)
{
    *out = NULL;
    const qn_gguf_value *v = numeric_array(f, key, true, err);
    if (!v) return QN_ERR_FORMAT;
    int32_t *dst = malloc((v->arr.n + 1) * sizeof *dst);
    if (!dst) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for key '%s'", f->path, key);
    size_t sz = k_scalar_size[v->arr.elem];
    const unsigned char *p = v->arr.raw;
    for (size_t i = 0; i < v->arr.n; i++) {
        qn_gguf_value x;
        int64_t y;
        decode_scalar(v->arr.elem, p + i * sz, &x);
        if (!int_in_range(&x, INT32_MIN, INT32_MAX, &y)) {
            free(dst);
            return qn_err_set(err, QN_ERR_FORMAT, "%s: key '%s': element %zu is out of range for int32",
                              f->path, key, i);
        }
        dst[i] = (int32_t)y;
    }
    *out = dst;
    *n = v->arr.n;
    return QN_OK;
}
