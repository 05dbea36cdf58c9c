/* layouts.h: the packed layouts of compressed weight matrices, declared once
   for every backend (as ggml-common.h declares its blocks). Each is a plain
   struct of shapes and pointers to arrays the caller owns (a safetensors
   mapping, a quantizer's buffers): kernels read them in place and never free
   them; a backend's plan may hold a repacked copy. Every array comes with its
   size in bytes so the validators (qn_aqlm_validate, qn_int_validate,
   qn_spqr_validate, reached through qn_linear_init) can check it against the
   declared shape before any kernel reads it. fp16 values are IEEE binary16
   bit patterns in uint16_t. This header does not quantize anything and holds
   no kernel: only layouts and two short fp16/bit helpers. */
#ifndef QN_LAYOUTS_H
#define QN_LAYOUTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* AQLM [Egiazarian et al. 2024, arXiv:2401.06118], the Hugging Face layout of
   aqlm.QuantizedLinear, so the arrays can point straight at the stored tensors:
     codes      (d_out / out_group_size, d_in / G, M)   int8 when B <= 8, int16 when B <= 16
                (aqlm.utils.get_int_dtype); stored two's complement, the code is
                value mod 2^B (aqlm.utils.unpack_int_data), so both the signed
                packing of pack_int_data and plain unsigned values read right
     codebooks  (M, 2^B, out_group_size, G)             fp16
     scales     (d_out / out_group_size, 1, 1, 1)       fp16, one per output row
   W[r][g*G + j] = scales[r] * sum_m codebooks[m][codes[r][g][m]][0][j].
   Effectively M*B/G bits per weight (2x8 g8 and 1x16 g8: 2.0; 1x8 g8: 1.0;
   4x8 g8: 4.0; 2x12 g8: 3.0, but int16 storage makes it 4.0 in memory) plus
   16*M*2^B*G bits of codebooks per matrix and 16 bits per row. The CPU kernels take out_group_size 1 (every HF LLM
   checkpoint); the validator answers QN_ERR_UNSUPPORTED for others. */
typedef struct {
    int             n_codebooks;       /* M, 1..8 */
    int             nbits;             /* B, 1..16: 2^B codewords per codebook */
    int             in_group_size;     /* G, input columns per code */
    int             out_group_size;    /* rows per code; 1 */
    size_t          d_out, d_in;
    const void     *codes;             /* (d_out, d_in / G, M) int8 or int16, see above */
    const uint16_t *codebooks;         /* (M, 2^B, 1, G) fp16 */
    const uint16_t *scales;            /* (d_out) fp16 */
    size_t          codes_nbytes, codebooks_nbytes, scales_nbytes;
} qn_aqlm_weights;

/* Round-to-nearest integers with a fp16 scale and zero per group of
   group_size consecutive input columns of a row:
     W[r][c] = scales[r][c / group_size] * (q[r][c] - zeros[r][c / group_size]).
   Row r's d_in codes are packed LSB-first, bits each, into
   qn_bits_row_bytes(d_in, bits) bytes; rows follow each other. Effectively
   bits + 32 / group_size bits per weight (int4 g128: 4.25). */
typedef struct {
    int             bits;              /* 2, 3, 4 or 8 */
    size_t          group_size;        /* input columns per scale/zero */
    size_t          d_out, d_in;
    const uint8_t  *codes;             /* (d_out, qn_bits_row_bytes(d_in, bits)) */
    const uint16_t *scales;            /* (d_out, ceil(d_in / group_size)) fp16 */
    const uint16_t *zeros;             /* (d_out, ceil(d_in / group_size)) fp16 */
    size_t          codes_nbytes, scales_nbytes, zeros_nbytes;
} qn_int_weights;

/* SpQR [Dettmers et al. 2023, arXiv:2306.03078]: a dense low-bit part with
   bilevel statistics plus a sparse fp16 correction (the outliers).
   Columns may be permuted (act-order): code column j multiplies x[perm[j]].
   Groups are beta1 consecutive code columns of a row; group g of row r has
     s(r, g) = ss * (qs(r, g) - zs),   z(r, g) = sz * (qz(r, g) - zz)
   where qs, qz are stat_bits-bit codes and (ss, zs), (sz, zz) the fp16
   second-level statistics shared by the beta2 rows r / beta2 of group g. Then
     W[r][perm[j]] = s(r, g) * (q[r][j] - z(r, g))          (j in group g)
     W[r][col_idx[k]] += values[k]   for k in row_ptr[r] .. row_ptr[r+1]-1
   so a quantizer that keeps an outlier w exactly stores w - dense(r, col).
   Codes, scale codes and zero codes are packed LSB-first per row like
   qn_int_weights. Effectively bits + 2*stat_bits/beta1 + 64/(beta1*beta2)
   bits per weight, plus 32 per outlier and 32 per row (w3, 16x16, 1%
   outliers: 3 + 0.375 + 0.25 + 0.32 = 3.95). */
typedef struct {
    int             bits;              /* code bits, 1..8 */
    int             stat_bits;         /* bits of the scale and zero codes, 1..8 (3 in the paper) */
    size_t          beta1;             /* code columns per group */
    size_t          beta2;             /* rows per second-level group */
    size_t          d_out, d_in;       /* d_in <= 65536 (col_idx is uint16) */
    const uint8_t  *codes;             /* (d_out, qn_bits_row_bytes(d_in, bits)) */
    const uint8_t  *scale_codes;       /* (d_out, qn_bits_row_bytes(n_groups, stat_bits)) */
    const uint8_t  *zero_codes;        /* (d_out, qn_bits_row_bytes(n_groups, stat_bits)) */
    const uint16_t *scale_stats;       /* (ceil(d_out / beta2), n_groups, 2) fp16 {ss, zs} */
    const uint16_t *zero_stats;        /* (ceil(d_out / beta2), n_groups, 2) fp16 {sz, zz} */
    size_t          nnz;               /* outliers */
    const int32_t  *row_ptr;           /* (d_out + 1) CSR offsets into col_idx/values */
    const uint16_t *col_idx;           /* (nnz) input column, original order */
    const uint16_t *values;            /* (nnz) fp16 */
    const int32_t  *perm;              /* (d_in) or NULL for the identity */
    size_t          codes_nbytes, scale_codes_nbytes, zero_codes_nbytes;
    size_t          scale_stats_nbytes, zero_stats_nbytes;
    size_t          row_ptr_nbytes, col_idx_nbytes, values_nbytes, perm_nbytes;
} qn_spqr_weights;

_Static_assert(sizeof(float) == 4, "kernels read f32 and fp16 bit patterns as binary32/binary16");

/* Bytes of one row of n codes packed LSB-first with `bits` bits each. */
static inline size_t qn_bits_row_bytes(size_t n, int bits)
{
    return (n * (size_t)bits + 7) / 8;
}

/* Code i of such a row (bits <= 8: a code spans at most two bytes). */
static inline unsigned qn_bits_get(const uint8_t *row, size_t i, int bits)
{
    size_t bit = i * (size_t)bits;
    unsigned v = (unsigned)row[bit >> 3] >> (bit & 7);
    if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)row[(bit >> 3) + 1] << (8 - (bit & 7));
    return v & ((1u << bits) - 1u);
}

/* IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included). */
static inline float qn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {                                   /* subnormal: normalise */
        exp = 113;
        while (!(man & 0x400u)) { man <<= 1; exp--; }
        bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Whether a binary16 is finite (its exponent is not all ones). */
static inline bool qn_half_is_finite(uint16_t h)
{
    return (h & 0x7c00u) != 0x7c00u;
}

#endif
