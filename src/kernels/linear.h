/* linear.h: the one interface through which the model multiplies by a weight
   matrix. A qn_linear is a (d_out, d_in) matrix in some storage format; the
   model calls qn_linear_matvec for one token and qn_linear_matmul for a batch,
   and the registry in linear.c picks the first backend that supports the
   format (CPU last, supporting everything). Compressed formats (the layouts
   of layouts.h: integers, AQLM, SpQR) go through qn_linear_init, which
   validates the arrays against the declared shape, naming the tensor, and
   lets the backend build its plan (repacked codes, f32 codebooks, the SIMD
   path); a compressed linear that did not pass qn_linear_init is refused.
   Kernels include nothing above this folder (status.h excepted). */
#ifndef QN_LINEAR_H
#define QN_LINEAR_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"

typedef enum {
    QN_FMT_F32 = 0,     /* dense row-major f32 */
    QN_FMT_INT,         /* round-to-nearest 2/3/4/8-bit integers: qn_int_weights */
    QN_FMT_AQLM,        /* additive codebooks (Hugging Face layout): qn_aqlm_weights */
    QN_FMT_SPQR,        /* low-bit + bilevel stats + CSR outliers: qn_spqr_weights */
    QN_FMT_COUNT
} qn_format;

typedef struct {
    qn_format    fmt;
    size_t       d_out, d_in;
    const float *w;          /* QN_FMT_F32: (d_out, d_in) row-major */
    const void  *packed;     /* compressed formats: their layout (layouts.h), caller-owned */
    void        *plan;       /* backend-owned, from qn_linear_init; freed by qn_linear_done.
                                Copies of the struct share it: call qn_linear_done once. */
    const struct qn_backend *backend;   /* the backend that built plan (device.h can change
                                           the registry's choice later); NULL: the registry picks */
} qn_linear;

typedef struct {
    const char *name;          /* "f32", "int", "aqlm", "spqr" */
    double (*bits_per_weight)(const qn_linear *w);
    /* Checks w->packed against w->d_out, w->d_in: sizes, codes in range, CSR
       arrays; messages start with `name`. Never reads past a declared size. */
    qn_status (*validate)(const qn_linear *w, const char *name, qn_err *err);
    /* Reference dequantizer of a validated matrix: W (d_out, d_in) row-major. */
    void (*to_dense)(const qn_linear *w, float *W);
} qn_format_desc;

const qn_format_desc *qn_format_info(qn_format fmt);

/* y = W x.  x: (d_in), y: (d_out). */
qn_status qn_linear_matvec(const qn_linear *w, const float *x, float *y, qn_err *err);
/* Y = X W^T.  X: (n_tok, d_in) row-major, Y: (n_tok, d_out) row-major. */
qn_status qn_linear_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err);

/* A dense f32 linear over caller-owned data (needs no qn_linear_init). */
qn_linear qn_linear_f32(const float *w, size_t d_out, size_t d_in);

/* A linear over `packed` (the layout of fmt, caller-owned, kept alive while w
   is used): validates it against (d_out, d_in), naming the tensor `name` in
   errors, then builds the backend's plan. On failure w is left empty. */
qn_status qn_linear_init(qn_linear *w, qn_format fmt, size_t d_out, size_t d_in, const void *packed,
                         const char *name, qn_err *err);
/* Frees the plan; NULL and plan-less linears are fine. */
void      qn_linear_done(qn_linear *w);

/* Threads the kernels may use (0 = all cores); applies to BLAS and OpenMP. */
void qn_kernels_set_threads(int n);
int  qn_kernels_threads(void);

#endif
