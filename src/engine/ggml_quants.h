/* ggml_quants.h: the tensor element types of ggml (and so of GGUF files), one
   descriptor row per type: ggml's name, how many elements a block holds, how
   many bytes it takes, and a reference dequantizer to f32 where quench has one.
   Numbers and block layouts follow ggml-org/llama.cpp ggml/include/ggml.h
   (enum ggml_type) and ggml/src/ggml-common.h. Dequantizers exist for the
   float types and the classic and k-quant block types (q4_0 .. q8_0, q2_K ..
   q8_K); the i-quants, ternary and fp4 types are known by size only, so a file
   holding them opens and lists, and converting them is a clear
   QN_ERR_UNSUPPORTED. Blocks are read little-endian (the only byte order GGUF
   files use in practice) and may sit at any address. There are no quantizers. */
#ifndef QN_GGML_QUANTS_H
#define QN_GGML_QUANTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* ggml's numbering; gaps are types ggml removed (4, 5, 31-33, 36-38). */
typedef enum {
    QN_GGML_F32 = 0, QN_GGML_F16 = 1, QN_GGML_Q4_0 = 2, QN_GGML_Q4_1 = 3,
    QN_GGML_Q5_0 = 6, QN_GGML_Q5_1 = 7, QN_GGML_Q8_0 = 8, QN_GGML_Q8_1 = 9,
    QN_GGML_Q2_K = 10, QN_GGML_Q3_K = 11, QN_GGML_Q4_K = 12, QN_GGML_Q5_K = 13,
    QN_GGML_Q6_K = 14, QN_GGML_Q8_K = 15,
    QN_GGML_IQ2_XXS = 16, QN_GGML_IQ2_XS = 17, QN_GGML_IQ3_XXS = 18, QN_GGML_IQ1_S = 19,
    QN_GGML_IQ4_NL = 20, QN_GGML_IQ3_S = 21, QN_GGML_IQ2_S = 22, QN_GGML_IQ4_XS = 23,
    QN_GGML_I8 = 24, QN_GGML_I16 = 25, QN_GGML_I32 = 26, QN_GGML_I64 = 27,
    QN_GGML_F64 = 28, QN_GGML_IQ1_M = 29, QN_GGML_BF16 = 30,
    QN_GGML_TQ1_0 = 34, QN_GGML_TQ2_0 = 35, QN_GGML_MXFP4 = 39, QN_GGML_NVFP4 = 40,
    QN_GGML_Q1_0 = 41,
    QN_GGML_TYPE_COUNT = 42
} qn_ggml_type;

/* Converts n elements (a whole number of blocks) starting at src to f32. */
typedef void (*qn_ggml_to_f32_fn)(const void *src, float *dst, size_t n);

typedef struct {
    const char       *name;        /* ggml's spelling: "f16", "q4_K", "iq2_xxs" */
    uint32_t          block_size;  /* elements per block; 0 for a removed type */
    uint32_t          block_bytes; /* bytes per block */
    qn_ggml_to_f32_fn to_f32;      /* NULL when quench cannot dequantize it */
} qn_ggml_type_desc;

/* The row for a type number, or NULL when ggml defines no such type (never, or
   no longer: see qn_ggml_type_name for the removed ones). */
const qn_ggml_type_desc *qn_ggml_type_info(uint32_t type);
/* ggml's name, "removed q4_2" style for retired numbers, "unknown" otherwise. */
const char *qn_ggml_type_name(uint32_t type);
/* Dequantizes n elements; n must be a multiple of the block size. Unknown or
   unsupported types and a ragged n give an error naming the type. */
qn_status qn_ggml_to_f32(uint32_t type, const void *src, float *dst, size_t n, qn_err *err);

#endif
