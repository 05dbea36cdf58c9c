/* linear.h: the one interface through which the model multiplies by a weight
   matrix. A qn_linear is a (d_out, d_in) matrix in some storage format; the
   model calls qn_linear_matvec for one token and qn_linear_matmul for a batch,
   and the registry in linear.c picks the first backend that supports the
   format (CPU last, supporting everything). Compressed formats (AQLM, SpQR,
   integer) and CUDA add a format row and a backend, not model code.
   Kernels include nothing above this folder (status.h excepted). */
#ifndef QN_LINEAR_H
#define QN_LINEAR_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"

typedef enum {
    QN_FMT_F32 = 0,     /* dense row-major f32 */
    QN_FMT_COUNT
} qn_format;

typedef struct {
    qn_format    fmt;
    size_t       d_out, d_in;
    const float *w;          /* QN_FMT_F32: (d_out, d_in) row-major */
    const void  *packed;     /* compressed formats: their layout (layouts.h) */
} qn_linear;

typedef struct {
    const char *name;          /* "f32" */
    double (*bits_per_weight)(const qn_linear *w);
} qn_format_desc;

const qn_format_desc *qn_format_info(qn_format fmt);

/* y = W x.  x: (d_in), y: (d_out). */
qn_status qn_linear_matvec(const qn_linear *w, const float *x, float *y, qn_err *err);
/* Y = X W^T.  X: (n_tok, d_in) row-major, Y: (n_tok, d_out) row-major. */
qn_status qn_linear_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err);

/* A dense f32 linear over caller-owned data. */
qn_linear qn_linear_f32(const float *w, size_t d_out, size_t d_in);

/* Threads the kernels may use (0 = all cores); applies to BLAS and OpenMP. */
void qn_kernels_set_threads(int n);
int  qn_kernels_threads(void);

#endif
