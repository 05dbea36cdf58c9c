/* lowbit_cpu.h: the dense low-bit core of the integer and SpQR kernels:
   codes packed LSB-first per row (1 to 8 bits), dequantized as s * (q - z)
   with one (s, z) per group of columns, in blocks of up to eight rows whose
   dot products share each load of x. AVX2 decodes eight codes with one
   broadcast and a variable shift, then looks them up in a register of
   weights (up to 3 bits) or converts them (4 and 8 bits); see lowbit_cpu.c.
   Formats own their statistics: callers decode them to f32 per block.
   Nothing here allocates, threads or validates. */
#ifndef QN_LOWBIT_CPU_H
#define QN_LOWBIT_CPU_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/cpu_features.h"
#include "kernels/layouts.h"

#define QN_LOWBIT_MAX_ROWS 8   /* rows one call handles, sharing the loads of x */

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
