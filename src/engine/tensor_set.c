/* tensor_set.c: named tensors gathered for a write (see tensor_set.h). */
#include "engine/tensor_set.h"

#include <stdlib.h>
#include <string.h>

qn_status qn_tensor_set_add(qn_tensor_set *s, const char *name, qn_dtype dtype, int ndim, const int64_t *shape,
                            void *data, int take, qn_err *err)
{
    if (ndim < 0 || ndim > QN_ST_MAX_DIMS) return qn_err_set(err, QN_ERR_SHAPE, "tensor '%s': %d dimensions", name, ndim);
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        qn_st_entry *e = realloc(s->entries, cap * sizeof *e);
        if (e) s->entries = e;
        void **o = realloc(s->owned, cap * sizeof *o);
        if (o) s->owned = o;
        if (!e || !o) { if (take) free(data); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) { if (take) free(data); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
    qn_st_entry *e = &s->entries[s->n];
    memset(e, 0, sizeof *e);
    e->name = copy;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    s->owned[s->n] = take ? data : NULL;
    s->n++;
    return QN_OK;
}

qn_status qn_tensor_set_copy(qn_tensor_set *s, const char *name, qn_dtype dtype, int ndim, const int64_t *shape,
                             const void *data, size_t nbytes, qn_err *err)
{
    void *buf = malloc(nbytes ? nbytes : 1);
    if (!buf) return qn_err_set(err, QN_ERR_NOMEM, "out of memory for tensor '%s'", name);
    if (nbytes) memcpy(buf, data, nbytes);
    return qn_tensor_set_add(s, name, dtype, ndim, shape, buf, 1, err);
}

const qn_st_entry *qn_tensor_set_find(const qn_tensor_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->entries[i].name, name) == 0) return &s->entries[i];
    return NULL;
}

qn_status qn_tensor_set_write(const qn_tensor_set *s, const char *path, const char *const *meta, qn_err *err)
{
    return qn_st_write(path, s->entries, s->n, meta, err);
}

void qn_tensor_set_clear(qn_tensor_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((void *)s->entries[i].name);
        free(s->owned[i]);
    }
    free(s->entries);
    free(s->owned);
    memset(s, 0, sizeof *s);
}

void qn_tensor_set_order_for_alignment(qn_tensor_set *s)
{
    /* stable insertion sort: a few hundred tensors, and equal sizes keep their order */
    for (size_t i = 1; i < s->n; i++) {
        qn_st_entry e = s->entries[i];
        void *o = s->owned[i];
        size_t size = qn_dtype_size(e.dtype), j = i;
        for (; j > 0 && qn_dtype_size(s->entries[j - 1].dtype) < size; j--) {
            s->entries[j] = s->entries[j - 1];
            s->owned[j] = s->owned[j - 1];
        }
        s->entries[j] = e;
        s->owned[j] = o;
    }
}
