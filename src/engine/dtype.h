/* dtype.h: element types of stored tensors and their conversion to f32.
   Covers the plain types of safetensors; GGUF block types live in ggml_quants.h. */
#ifndef QN_DTYPE_H
#define QN_DTYPE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    QN_DTYPE_F32 = 0, QN_DTYPE_F16, QN_DTYPE_BF16, QN_DTYPE_F64,
    QN_DTYPE_I8, QN_DTYPE_U8, QN_DTYPE_I16, QN_DTYPE_U16,
    QN_DTYPE_I32, QN_DTYPE_U32, QN_DTYPE_I64, QN_DTYPE_U64, QN_DTYPE_BOOL,
    QN_DTYPE_COUNT
} qn_dtype;

size_t      qn_dtype_size(qn_dtype t);
const char *qn_dtype_name(qn_dtype t);          /* safetensors spelling: "F32", "BF16" */
int         qn_dtype_from_name(const char *name); /* -1 when unknown */
int         qn_dtype_is_float(qn_dtype t);

float    qn_f16_to_f32(uint16_t h);
uint16_t qn_f32_to_f16(float f);                /* round to nearest even */
float    qn_bf16_to_f32(uint16_t h);
uint16_t qn_f32_to_bf16(float f);               /* round to nearest even */

/* Converts n elements of a float dtype (F32, F16, BF16, F64) to f32. */
void qn_dtype_to_f32(qn_dtype t, const void *src, float *dst, size_t n);

#endif
