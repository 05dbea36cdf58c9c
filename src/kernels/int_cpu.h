/* int_cpu.h: CPU kernels for round-to-nearest integer weights (qn_int_weights:
   2, 3, 4 or 8 bits, fp16 scale and zero per group of input columns), and the
   dense low-bit core they share with SpQR (qn_lowbit_*): codes packed LSB-first
   per row, dequantized as s * (q - z) with one (s, z) per group of columns.
   matvec splits rows over OpenMP threads, four rows at a time so they share
   each load of x; AVX2 decodes eight codes with one broadcast and a variable
   shift, then looks them up in a register of weights (up to 3 bits) or
   converts them (4 and 8 bits; see int_cpu.c). Each product has a plain
   scalar _ref twin, the oracle of the tests.
   This module does not quantize (that is the engine's RTN), and trusts a
   matrix that passed qn_int_validate. */
#ifndef QN_INT_CPU_H
#define QN_INT_CPU_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "kernels/cpu_features.h"
#include "kernels/layouts.h"

/* Sizes, bits and group size against the declared shape; fp16 scales and
   zeros finite. Messages start with `name`. */
qn_status qn_int_validate(const qn_int_weights *w, const char *name, qn_err *err);
double    qn_int_bits_per_weight(const qn_int_weights *w);

/* W (d_out, d_in) = s * (q - z), plain scalar. */
void      qn_int_to_dense_ref(const qn_int_weights *w, float *W);
/* y = W x, plain scalar, one thread.  x: (d_in), y: (d_out). */
void      qn_int_matvec_ref(const qn_int_weights *w, const float *x, float *y);
/* y = W x over OpenMP threads, SIMD as allowed by simd (clamped to the CPU). */
qn_status qn_int_matvec(const qn_int_weights *w, const float *x, float *y, qn_simd simd, qn_err *err);
/* Y = X W^T.  X: (n_tok, d_in), Y: (n_tok, d_out). */
qn_status qn_int_matmul(const qn_int_weights *w, const float *X, size_t n_tok, float *Y, qn_simd simd,
                        qn_err *err);

/* ---- the low-bit core, shared with spqr_cpu ---- */

#define QN_LOWBIT_MAX_ROWS 4   /* rows one call handles, sharing the loads of x */

typedef struct {
    int            bits;        /* 1..8 */
    size_t         n;           /* codes per row (d_in) */
    size_t         group;       /* columns per (s, z) */
    size_t         nr;          /* rows in this block, 1..QN_LOWBIT_MAX_ROWS */
    const uint8_t *codes;       /* (nr, qn_bits_row_bytes(n, bits)) */
    const uint8_t *codes_end;   /* end of the caller's codes buffer: no load passes it */
    const float   *s, *z;       /* (nr, stat_stride): scale and zero of each group */
    size_t         stat_stride;
    const float   *xsum;        /* (ceil(n / group)) sums of x over each group (qn_lowbit_group_sums);
                                   the SIMD dot needs them, NULL keeps the plain path */
    const float   *xsplit;      /* (n) x with each 16 columns as 8 even then 8 odd (qn_lowbit_split16),
                                   for 4-bit codes two to a byte; optional */
} qn_lowbit_rows;

/* xsum[g] = sum of x over group g.  x: (n), xsum: (ceil(n / group)). */
void qn_lowbit_group_sums(const float *x, size_t n, size_t group, float *xsum);
/* out: x with the columns of each whole block of 16 reordered as the 8 even
   then the 8 odd ones (the rest copied).  x, out: (n). */
void qn_lowbit_split16(const float *x, size_t n, float *out);
/* y[i] = sum_g s[i][g] * sum_{j in group g} (q[i][j] - z[i][g]) * x[j].  x: (n), y: (nr). */
void qn_lowbit_dot(const qn_lowbit_rows *b, const float *x, float *y, qn_simd simd);
void qn_lowbit_dot_ref(const qn_lowbit_rows *b, const float *x, float *y);
/* out (nr, n) = s * (q - z). */
void qn_lowbit_dequant(const qn_lowbit_rows *b, float *out, qn_simd simd);
/* out[i] = scale[i] * (q_i - zero[i]) for the first n codes q of a row packed
   LSB-first (bits each); end: end of the buffer the row lies in. */
void qn_lowbit_affine(const uint8_t *row, const uint8_t *end, int bits, size_t n, const float *scale,
                      const float *zero, float *out, qn_simd simd);

#endif
