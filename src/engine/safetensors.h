/* safetensors.h: read and write .safetensors files (spec: huggingface/safetensors:
   8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape,
   data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data).
   The reader validates everything before handing out a pointer: header length
   bounds, JSON (jansson), known dtypes, offsets inside the file, no overlap,
   shape product x dtype size = byte span, no integer overflow. Gaps between
   tensors are tolerated. The writer lays tensors out back to back in the order
   given, writes to a temporary name and renames at the end. */
#ifndef QN_SAFETENSORS_H
#define QN_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/dtype.h"

#define QN_ST_MAX_DIMS 8

typedef struct qn_st_file qn_st_file;   /* opaque: owns the mapping */

typedef struct {
    const char *name;
    qn_dtype    dtype;
    int         ndim;
    int64_t     shape[QN_ST_MAX_DIMS];
    const void *data;                   /* inside the mapping, or a copy when the file has it misaligned:
                                           always aligned for the dtype */
    size_t      nbytes;
} qn_st_tensor;

qn_status           qn_st_open(qn_st_file **out, const char *path, qn_err *err);
void                qn_st_close(qn_st_file *f);              /* NULL is fine */
const char         *qn_st_path(const qn_st_file *f);
size_t              qn_st_count(const qn_st_file *f);
const qn_st_tensor *qn_st_at(const qn_st_file *f, size_t i);  /* by data offset; NULL past the end */
const qn_st_tensor *qn_st_find(const qn_st_file *f, const char *name);
const char         *qn_st_meta(const qn_st_file *f, const char *key); /* __metadata__ value or NULL */

typedef struct {
    const char *name;
    qn_dtype    dtype;
    int         ndim;
    int64_t     shape[QN_ST_MAX_DIMS];
    const void *data;                   /* product(shape) * dtype size bytes */
} qn_st_entry;

/* meta: NULL or key, value, key, value, ..., NULL. */
qn_status qn_st_write(const char *path, const qn_st_entry *tensors, size_t n,
                      const char *const *meta, qn_err *err);

#endif
