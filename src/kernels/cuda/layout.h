/* layout.h: how a weight matrix lies in GPU memory, and the per-weight
   decoders both sides share. pack.c builds a qn_cu_matrix in host memory from
   any validated qn_linear; the CUDA code copies its arrays to the device and
   its kernels decode with the same inline functions, so the CPU tests of
   pack.c check the very arithmetic the kernels run. The layouts follow
   layouts.h with two changes made for coalesced 32-bit loads: low-bit codes
   (int and SpQR codes, SpQR statistic codes) are repacked into 32-bit words
   of 32/bits codes each (int3: 10 codes, 2 bits unused), rows starting on a
   word; AQLM codes are stored unsigned (value mod 2^B) in 8 or 16 bits.
   Dense matrices are fp16. Nothing here allocates device memory. */
#ifndef QN_CU_LAYOUT_H
#define QN_CU_LAYOUT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define QN_CU_FN __host__ __device__ static inline
#else
#include "kernels/layouts.h"
#define QN_CU_FN static inline
#endif

typedef enum { QN_CU_F16 = 0, QN_CU_INT, QN_CU_AQLM, QN_CU_SPQR } qn_cu_kind;

/* One matrix (d_out, d_in). The pointers are host or device memory depending
   on who holds the struct; only the fields of `kind` are set. */
typedef struct {
    qn_cu_kind kind;
    uint32_t   d_out, d_in;
    /* F16 */
    uint16_t  *w;               /* (d_out, d_in) fp16 */
    /* INT and SPQR: the low-bit codes */
    int        bits;
    uint32_t   words_per_row;
    uint32_t  *qwords;          /* (d_out, words_per_row) */
    uint32_t   n_groups;        /* INT: ceil(d_in / group_size); SPQR: ceil(d_in / beta1) */
    /* INT */
    uint32_t   group_size;
    uint16_t  *scales;          /* INT: (d_out, n_groups) fp16; AQLM: (d_out) fp16 */
    uint16_t  *zeros;           /* INT: (d_out, n_groups) fp16 */
    /* AQLM (out_group_size 1) */
    int        n_codebooks, nbits, in_group_size;   /* M, B, G */
    uint8_t   *codes8;          /* B <= 8: (d_out, d_in / G, M) */
    uint16_t  *codes16;         /* B > 8:  (d_out, d_in / G, M) */
    uint16_t  *codebooks;       /* (M, 2^B, G) fp16 */
    /* SPQR */
    int        stat_bits;
    uint32_t   beta1, beta2, stat_words_per_row;
    uint32_t  *scale_qwords, *zero_qwords;   /* (d_out, stat_words_per_row) */
    uint16_t  *scale_stats, *zero_stats;     /* (ceil(d_out / beta2), n_groups, 2) fp16 */
    uint32_t   nnz;
    int32_t   *row_ptr;         /* (d_out + 1) */
    uint16_t  *col_idx;         /* (nnz) */
    uint16_t  *values;          /* (nnz) fp16 */
    int32_t   *perm;            /* (d_in), NULL for the identity */
} qn_cu_matrix;

/* Every array of m with its size: slots point at m's fields so a copier can
   replace host pointers by device ones. Returns the count (at most 12). */
#define QN_CU_MAX_ARRAYS 12
typedef struct {
    void  **slot;
    size_t  nbytes;
} qn_cu_array;

QN_CU_FN uint32_t qn_cu_words(uint32_t n, int bits)
{
    uint32_t per = 32u / (uint32_t)bits;
    return (n + per - 1) / per;
}

/* Code i of a row of words. */
QN_CU_FN unsigned qn_cu_code(const uint32_t *row, uint32_t i, int bits)
{
    uint32_t per = 32u / (uint32_t)bits;
    return (row[i / per] >> ((i % per) * (uint32_t)bits)) & ((1u << bits) - 1u);
}

QN_CU_FN float qn_cu_half(uint16_t h)
{
#ifdef __CUDACC__
    __half_raw raw;
    raw.x = h;
    return __half2float(__half(raw));
#else
    return qn_half_to_float(h);
#endif
}

/* INT: W[r][c], in the CPU reference's order of operations. */
QN_CU_FN float qn_cu_int_weight(const qn_cu_matrix *m, uint32_t r, uint32_t c)
{
    size_t g = (size_t)r * m->n_groups + c / m->group_size;
    float s = qn_cu_half(m->scales[g]), z = qn_cu_half(m->zeros[g]);
    return s * ((float)qn_cu_code(m->qwords + (size_t)r * m->words_per_row, c, m->bits) - z);
}

QN_CU_FN unsigned qn_cu_aqlm_code(const qn_cu_matrix *m, uint32_t r, uint32_t g, int k)
{
    size_t i = ((size_t)r * (m->d_in / (uint32_t)m->in_group_size) + g) * (size_t)m->n_codebooks + (size_t)k;
    return m->nbits <= 8 ? m->codes8[i] : m->codes16[i];
}

/* AQLM: W[r][c] = scale[r] * sum_m codebooks[m][code(r, c / G, m)][c % G]. */
QN_CU_FN float qn_cu_aqlm_weight(const qn_cu_matrix *m, uint32_t r, uint32_t c)
{
    uint32_t G = (uint32_t)m->in_group_size, g = c / G, j = c % G;
    float v = 0.0f;
    for (int k = 0; k < m->n_codebooks; k++) {
        size_t e = ((size_t)k << m->nbits) + qn_cu_aqlm_code(m, r, g, k);
        v += qn_cu_half(m->codebooks[e * G + j]);
    }
    return qn_cu_half(m->scales[r]) * v;
}

/* SPQR: scale s and zero z of group g of row r from the bilevel statistics. */
QN_CU_FN void qn_cu_spqr_stats(const qn_cu_matrix *m, uint32_t r, uint32_t g, float *s, float *z)
{
    size_t st = ((size_t)(r / m->beta2) * m->n_groups + g) * 2;
    const uint32_t *sc = m->scale_qwords + (size_t)r * m->stat_words_per_row;
    const uint32_t *zc = m->zero_qwords + (size_t)r * m->stat_words_per_row;
    *s = qn_cu_half(m->scale_stats[st]) * ((float)qn_cu_code(sc, g, m->stat_bits) - qn_cu_half(m->scale_stats[st + 1]));
    *z = qn_cu_half(m->zero_stats[st]) * ((float)qn_cu_code(zc, g, m->stat_bits) - qn_cu_half(m->zero_stats[st + 1]));
}

/* SPQR: the dense part in code column j (it multiplies x[perm[j]]); outliers excluded. */
QN_CU_FN float qn_cu_spqr_dense(const qn_cu_matrix *m, uint32_t r, uint32_t j)
{
    float s, z;
    qn_cu_spqr_stats(m, r, j / m->beta1, &s, &z);
    return s * ((float)qn_cu_code(m->qwords + (size_t)r * m->words_per_row, j, m->bits) - z);
}

#endif
