/* backend.h: the table each kernel backend fills (ggml-backend style), and
   the batch path the CPU formats share. Private to src/kernels/: the model
   sees only linear.h. */
#ifndef QN_BACKEND_H
#define QN_BACKEND_H
#include <omp.h>

#include "kernels/linear.h"

/* Below this many weights a product runs on one thread: starting a parallel
   region (a few microseconds) costs more than the rows it would share. */
#define QN_CPU_PAR_MIN_WEIGHTS ((size_t)1 << 16)

/* Threads for a (d_out, d_in) product: 1 for small ones, else the kernels' setting. */
static inline int qn_cpu_team(size_t d_out, size_t d_in)
{
    return d_out * d_in < QN_CPU_PAR_MIN_WEIGHTS ? 1 : omp_get_max_threads();
}

/* Validators' check that a layout array exists and has the byte size its shape implies. */
static inline qn_status qn_check_bytes(const char *name, const char *what, const void *p, size_t have, size_t want,
                                       qn_err *err)
{
    if (!p) return qn_err_set(err, QN_ERR_FORMAT, "%s: %s missing", name, what);
    if (have != want)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: %s hold %zu bytes, expected %zu for the declared shape", name,
                          what, have, want);
    return QN_OK;
}

/* Backends' check that a compressed linear went through qn_linear_init. */
static inline qn_status qn_check_planned(const qn_linear *w, qn_err *err)
{
    if (w->fmt != QN_FMT_F32 && !w->plan)
        return qn_err_set(err, QN_ERR_ARG, "%zu x %zu linear: compressed weights used before qn_linear_init",
                          w->d_out, w->d_in);
    return QN_OK;
}

typedef struct qn_backend {
    const char *name;                                            /* "cpu", "cuda" */
    bool      (*supports)(const qn_linear *w);
    /* After validation: builds what the kernels need into *plan (may stay NULL for f32). */
    qn_status (*prepare)(const qn_linear *w, void **plan, qn_err *err);
    void      (*release)(const qn_linear *w, void *plan);       /* NULL plan is fine */
    qn_status (*matvec)(const qn_linear *w, const float *x, float *y, qn_err *err);
    qn_status (*matmul)(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err);
} qn_backend;

extern const qn_backend qn_backend_cpu;
#ifdef QN_HAVE_CUDA
extern const qn_backend qn_backend_cuda;   /* backend_cuda.c, built with nvcc only */
#endif

/* Dequantizes rows r0 .. r1-1 of a matrix into out ((r1 - r0), d_in) row-major;
   scratch: the scratch_floats the caller asked qn_cpu_matmul_dequant for, per thread. */
typedef void (*qn_cpu_dequant_rows_fn)(const void *ctx, size_t r0, size_t r1, float *out, float *scratch);

/* Y = X W^T for a compressed W given by its row dequantizer: each thread
   decodes a block of rows that fits in its L2 and multiplies it with a
   single-threaded sgemm (OpenBLAS runs one thread inside an OpenMP region).
   X: (n_tok, d_in), Y: (n_tok, d_out). */
qn_status qn_cpu_matmul_dequant(size_t d_out, size_t d_in, qn_cpu_dequant_rows_fn dequant, const void *ctx,
                                size_t scratch_floats, const float *X, size_t n_tok, float *Y, qn_err *err);

#endif
