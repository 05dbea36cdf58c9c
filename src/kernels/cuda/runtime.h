/* runtime.h: the C entry points of the CUDA code (linear.cu, bench.cu) that
   the rest of src/kernels calls: probing the device, uploading a packed
   matrix once, multiplying host activations by it (the qn_linear backend),
   and the kernel benchmark against cuBLAS. In a build without nvcc, absent.c
   answers each with "built without CUDA". */
#ifndef QN_CU_RUNTIME_H
#define QN_CU_RUNTIME_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"
#include "kernels/cuda/layout.h"
#include "kernels/linear.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the CUDA code is linked in. */
bool      qn_cu_built(void);
/* Selects device 0 after checking one answers; name receives its name. */
qn_status qn_cu_probe(char *name, size_t cap, qn_err *err);

/* A device copy of a host-packed matrix (pack.h); *out is a heap struct
   whose array pointers are device memory. */
qn_status qn_cu_matrix_upload(const qn_cu_matrix *host, qn_cu_matrix **out, qn_err *err);
void      qn_cu_matrix_free(qn_cu_matrix *dev);   /* NULL is fine */

/* The device matrix of a linear whose plan the CUDA backend built
   (backend_cuda.c), NULL for any other: the forward pass reuses it. */
const qn_cu_matrix *qn_cu_linear_plan(const qn_linear *w);

/* Y = X W^T on the device for host X (n_tok, d_in) and Y (n_tok, d_out), f32:
   X is rounded to fp16 on the device, products accumulate in f32. One token
   runs the format's GEMV kernel, more dequantize W to fp16 and call cuBLAS. */
qn_status qn_cu_matmul_host(const qn_cu_matrix *dev, const float *X, size_t n_tok, float *Y, qn_err *err);

/* One kernel benchmark: the packed matrix through our kernels against cuBLAS
   fp16 GEMM (GEMV for one token) on its fp16 dequantization W16 (d_out, d_in),
   same random fp16 input, L2 flushed before each call unless warm; medians
   and fastest of reps. y_ours, y_blas: (batch, d_out) of the last call. */
typedef struct {
    double ours_s, blas_s, ours_min_s, blas_min_s;
    char   device[128];
} qn_cu_kbench_times;

qn_status qn_cu_kbench(const qn_cu_matrix *host, const uint16_t *W16, const uint16_t *X16, size_t batch, size_t reps,
                       bool warm, float *y_ours, float *y_blas, qn_cu_kbench_times *out, qn_err *err);

#ifdef __cplusplus
}
#endif
#endif
