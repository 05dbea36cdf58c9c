/* aqlm_cpu.h: CPU kernels for AQLM weights [Egiazarian et al. 2024,
   arXiv:2401.06118] in the Hugging Face layout (qn_aqlm_weights: M codebooks
   of 2^B codewords of G input columns, output groups of 1).
   With B = 8 the matvec takes the look-up-table route of the paper's CPU
   kernel: for the input x it computes every codeword's dot product with every
   input group once (M x 256 per group, shared by all rows), then each row costs
   M table reads and adds per group; tables are visited in tiles that fit in L1
   while each thread streams its rows' codes. Other B (1x16, 2x12) decode
   codewords straight from the fp16 codebooks (F16C) and FMA them with x.
   The plan holds what is built once per matrix: for B = 8 the f32 codebooks
   transposed for the table build and the codes interleaved for streaming
   (eight rows per word, tile by tile), after which the kernels never read the
   caller's codes again (the loader may release them; only the reference
   functions and validation read them); for other B nothing, and the kernels
   read the caller's codes in place.
   This module does not quantize (engine/aqlm does) and trusts a matrix that
   passed qn_aqlm_validate. */
#ifndef QN_AQLM_CPU_H
#define QN_AQLM_CPU_H
#include <stddef.h>
#include "status.h"
#include "kernels/cpu_features.h"
#include "kernels/layouts.h"

typedef struct qn_aqlm_plan qn_aqlm_plan;   /* opaque: per-matrix tables built at load */

/* Shapes, byte sizes, codes within 2^B (as stored: -2^(B-1) .. 2^B - 1),
   finite codebooks and scales. Messages start with `name`. */
qn_status qn_aqlm_validate(const qn_aqlm_weights *w, const char *name, qn_err *err);
/* Bits of storage per weight: codes as stored (int8/int16), codebooks, scales. */
double    qn_aqlm_bits_per_weight(const qn_aqlm_weights *w);

/* W (d_out, d_in) = scale_r * sum_m codebook_m[code], plain scalar. */
void      qn_aqlm_to_dense_ref(const qn_aqlm_weights *w, float *W);
/* y = W x, plain scalar, one thread, codeword by codeword. */
void      qn_aqlm_matvec_ref(const qn_aqlm_weights *w, const float *x, float *y);

qn_status qn_aqlm_plan_create(qn_aqlm_plan **out, const qn_aqlm_weights *w, qn_simd simd, qn_err *err);
void      qn_aqlm_plan_free(qn_aqlm_plan *p);

/* y = W x over OpenMP threads.  x: (d_in), y: (d_out). */
qn_status qn_aqlm_matvec(const qn_aqlm_weights *w, const qn_aqlm_plan *p, const float *x, float *y,
                         qn_simd simd, qn_err *err);
/* Y = X W^T.  X: (n_tok, d_in), Y: (n_tok, d_out). */
qn_status qn_aqlm_matmul(const qn_aqlm_weights *w, const qn_aqlm_plan *p, const float *X, size_t n_tok,
                         float *Y, qn_simd simd, qn_err *err);

#endif
