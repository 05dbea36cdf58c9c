/* int_cpu.h: CPU kernels for round-to-nearest integer weights (qn_int_weights:
   2, 3, 4 or 8 bits, fp16 scale and zero per group of input columns). matvec
   splits blocks of eight rows over OpenMP threads and runs them through the
   low-bit core it shares with SpQR (lowbit_cpu.h); matmul dequantizes blocks
   of rows for sgemm. Each product has a plain scalar _ref twin, the oracle of
   the tests.
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

#endif
