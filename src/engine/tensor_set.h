/* tensor_set.h: a list of named tensors being assembled for one safetensors
   write. The set owns copies of the names and the buffers handed to it. */
#ifndef QN_TENSOR_SET_H
#define QN_TENSOR_SET_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/safetensors.h"

typedef struct {
    qn_st_entry *entries;   /* (n) what qn_st_write takes */
    void       **owned;     /* (n) buffer of entry i, or NULL when borrowed */
    size_t       n, cap;
} qn_tensor_set;

/* Adds a tensor; `data` is taken over (freed by the set) when take is true. */
qn_status qn_tensor_set_add(qn_tensor_set *s, const char *name, qn_dtype dtype, int ndim, const int64_t *shape,
                            void *data, int take, qn_err *err);
/* Adds a copy of nbytes of data. */
qn_status qn_tensor_set_copy(qn_tensor_set *s, const char *name, qn_dtype dtype, int ndim, const int64_t *shape,
                             const void *data, size_t nbytes, qn_err *err);
/* Orders the tensors by element size, largest first, keeping their order otherwise, so that
   every tensor of the written file is aligned for its type (as the reference writer does). */
void qn_tensor_set_order_for_alignment(qn_tensor_set *s);
const qn_st_entry *qn_tensor_set_find(const qn_tensor_set *s, const char *name);
qn_status qn_tensor_set_write(const qn_tensor_set *s, const char *path, const char *const *meta, qn_err *err);
void      qn_tensor_set_clear(qn_tensor_set *s);   /* frees everything; the set stays usable */

#endif
