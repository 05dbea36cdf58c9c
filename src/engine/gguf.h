/* gguf.h: read GGUF files, llama.cpp's single-file model format (spec:
   ggml-org/ggml docs/gguf.md), versions 2 and 3. Layout: "GGUF", u32 version,
   u64 tensor count, u64 key/value count; the key/values (u64-length strings,
   u32 value type, value; arrays are u32 element type, u64 count, elements);
   the tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64
   offset); padding to general.alignment (default 32); the tensor data.
   The file is mapped, and the reader validates everything before handing out
   a pointer: each count and length against the bytes left (so nothing is
   allocated on a lying header), strings inside the file, no overflow in
   element counts or byte sizes, known ggml types, rows a whole number of
   blocks, offsets aligned and inside the file, no two tensors overlapping, no
   duplicate keys or names. Version 1 files (32-bit counts) and big-endian files
   are refused as unsupported. There is no writer. */
#ifndef QN_GGUF_H
#define QN_GGUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define QN_GGUF_MAX_DIMS 4
#define QN_GGUF_DEFAULT_ALIGNMENT 32

typedef enum {
    QN_GGUF_UINT8 = 0, QN_GGUF_INT8 = 1, QN_GGUF_UINT16 = 2, QN_GGUF_INT16 = 3,
    QN_GGUF_UINT32 = 4, QN_GGUF_INT32 = 5, QN_GGUF_FLOAT32 = 6, QN_GGUF_BOOL = 7,
    QN_GGUF_STRING = 8, QN_GGUF_ARRAY = 9, QN_GGUF_UINT64 = 10, QN_GGUF_INT64 = 11,
    QN_GGUF_FLOAT64 = 12,
    QN_GGUF_TYPE_COUNT
} qn_gguf_type;

typedef struct qn_gguf_file qn_gguf_file;  /* opaque: owns the mapping and the parsed metadata */

/* One metadata value. Scalars are widened; strings and string arrays are
   NUL-terminated copies (a string holding a NUL byte reads as cut there). */
typedef struct qn_gguf_value {
    qn_gguf_type type;
    union {
        uint64_t u64;                     /* UINT8, UINT16, UINT32, UINT64 */
        int64_t  i64;                     /* INT8, INT16, INT32, INT64 */
        double   f64;                     /* FLOAT32, FLOAT64 */
        bool     b;                       /* BOOL: any non-zero byte is true */
        struct { const char *s; size_t len; } str;
        struct {
            qn_gguf_type elem;
            size_t       n;
            const void  *raw;             /* numbers and bools: n little-endian items in the mapping, unaligned */
            const char *const *strs;      /* (n) when elem is STRING */
            const struct qn_gguf_value *items; /* (n) when elem is ARRAY */
        } arr;
    };
} qn_gguf_value;

typedef struct {
    const char   *key;
    qn_gguf_value value;
} qn_gguf_kv;

typedef struct {
    const char *name;
    uint32_t    type;                     /* qn_ggml_type (ggml_quants.h) */
    int         ndim;
    int64_t     ne[QN_GGUF_MAX_DIMS];     /* ne[0] varies fastest (the row); unused dims are 1 */
    uint64_t    offset;                   /* from the start of the data section */
    const void *data;                     /* inside the mapping */
    size_t      nbytes;
    size_t      nelements;
} qn_gguf_tensor;

qn_status   qn_gguf_open(qn_gguf_file **out, const char *path, qn_err *err);
void        qn_gguf_close(qn_gguf_file *f);                     /* NULL is fine */
const char *qn_gguf_path(const qn_gguf_file *f);
uint32_t    qn_gguf_version(const qn_gguf_file *f);
size_t      qn_gguf_alignment(const qn_gguf_file *f);
const char *qn_gguf_type_name(qn_gguf_type t);                  /* "uint32", "string", ... */

/* Metadata, in file order; find is NULL when the key is absent. */
size_t               qn_gguf_kv_count(const qn_gguf_file *f);
const qn_gguf_kv    *qn_gguf_kv_at(const qn_gguf_file *f, size_t i);
const qn_gguf_value *qn_gguf_find(const qn_gguf_file *f, const char *key);

/* Typed getters. An absent key or a value of another kind is QN_ERR_FORMAT
   naming the file and the key. Integer getters take any integer type whose
   value fits; the float getter takes any number. */
qn_status qn_gguf_get_u32(const qn_gguf_file *f, const char *key, uint32_t *out, qn_err *err);
qn_status qn_gguf_get_i64(const qn_gguf_file *f, const char *key, int64_t *out, qn_err *err);
qn_status qn_gguf_get_f32(const qn_gguf_file *f, const char *key, float *out, qn_err *err);
qn_status qn_gguf_get_bool(const qn_gguf_file *f, const char *key, bool *out, qn_err *err);
qn_status qn_gguf_get_str(const qn_gguf_file *f, const char *key, const char **out, qn_err *err);
/* Array of strings: *out points into f and lives as long as f. */
qn_status qn_gguf_get_str_arr(const qn_gguf_file *f, const char *key, const char *const **out,
                              size_t *n, qn_err *err);
/* Numeric arrays, converted into a malloc'd buffer the caller frees. f32 takes
   any numeric element type; i32 takes integer elements that fit. */
qn_status qn_gguf_get_f32_arr(const qn_gguf_file *f, const char *key, float **out, size_t *n, qn_err *err);
qn_status qn_gguf_get_i32_arr(const qn_gguf_file *f, const char *key, int32_t **out, size_t *n, qn_err *err);

/* Tensors: at() in file order, find() by exact name (NULL when absent). */
size_t                qn_gguf_tensor_count(const qn_gguf_file *f);
const qn_gguf_tensor *qn_gguf_tensor_at(const qn_gguf_file *f, size_t i);
const qn_gguf_tensor *qn_gguf_tensor_find(const qn_gguf_file *f, const char *name);
/* Dequantizes all t->nelements values into dst (nelements floats, GGUF order:
   ne[0] fastest). A type quench cannot dequantize is QN_ERR_UNSUPPORTED naming
   the file, the tensor and the type. */
qn_status qn_gguf_tensor_to_f32(const qn_gguf_file *f, const qn_gguf_tensor *t, float *dst, qn_err *err);

#endif
