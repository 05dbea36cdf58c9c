/* spqr_cpu.h: CPU kernels for SpQR weights [Dettmers et al. 2023,
   arXiv:2306.03078] in the layout of qn_spqr_weights: a dense low-bit part
   (codes with 3-bit scales and zeros per group of beta1 columns, themselves
   dequantized by fp16 statistics shared by beta2 rows) plus a sparse fp16
   correction in CSR. matvec = the low-bit core of int_cpu on the permuted
   input, eight rows at a time, with each row's statistics decoded just before
   its dot product, then the row's outliers added. qn_spqr_to_dense_ref is the
   definition the quantizer side can check its own storage against.
   This module does not quantize (engine/spqr does) and trusts a matrix that
   passed qn_spqr_validate. */
#ifndef QN_SPQR_CPU_H
#define QN_SPQR_CPU_H
#include <stddef.h>
#include "status.h"
#include "kernels/cpu_features.h"
#include "kernels/layouts.h"

/* Byte sizes against the declared shape; CSR row pointers start at 0, never
   decrease and end at nnz; column indices below d_in; perm a permutation;
   fp16 statistics and outlier values finite. Messages start with `name`. */
qn_status qn_spqr_validate(const qn_spqr_weights *w, const char *name, qn_err *err);
/* Bits of storage per weight, every array counted. */
double    qn_spqr_bits_per_weight(const qn_spqr_weights *w);

/* W (d_out, d_in): dense part, un-permuted, plus the outliers. Plain scalar. */
void      qn_spqr_to_dense_ref(const qn_spqr_weights *w, float *W);
/* y = W x, plain scalar, one thread. */
void      qn_spqr_matvec_ref(const qn_spqr_weights *w, const float *x, float *y);

/* y = W x over OpenMP threads.  x: (d_in), y: (d_out). */
qn_status qn_spqr_matvec(const qn_spqr_weights *w, const float *x, float *y, qn_simd simd, qn_err *err);
/* Y = X W^T.  X: (n_tok, d_in), Y: (n_tok, d_out). */
qn_status qn_spqr_matmul(const qn_spqr_weights *w, const float *X, size_t n_tok, float *Y, qn_simd simd,
                         qn_err *err);

#endif
