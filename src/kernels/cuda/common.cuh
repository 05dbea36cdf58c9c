/* common.cuh: what the .cu files share and nothing else includes: the C
   headers they implement, error checks that name the call, warp and block
   sums, and the linear product on device buffers (linear.cu) that the
   forward pass and the benchmark run. */
#ifndef QN_CU_COMMON_CUH
#define QN_CU_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "status.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/pack.h"
#include "kernels/cuda/runtime.h"
}

/* Returns QN_ERR_DEVICE naming the call when a CUDA runtime call fails. */
#define QN_CU_TRY(call, err)                                                                            \
    do {                                                                                                \
        cudaError_t e_ = (call);                                                                        \
        if (e_ != cudaSuccess)                                                                          \
            return qn_err_set((err), QN_ERR_DEVICE, "CUDA: %s: %s", #call, cudaGetErrorString(e_));     \
    } while (0)

#define QN_CUBLAS_TRY(call, err)                                                                        \
    do {                                                                                                \
        cublasStatus_t e_ = (call);                                                                     \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                                \
            return qn_err_set((err), QN_ERR_DEVICE, "cuBLAS: %s: %s", #call, cublasGetStatusString(e_)); \
    } while (0)

/* The error of the last kernel launch, if any. */
#define QN_CU_LAUNCHED(err) QN_CU_TRY(cudaGetLastError(), err)

__device__ __forceinline__ float qn_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float qn_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (or max) over a block of at most 1024 threads; scratch: 32 floats of
   shared memory. Every thread gets the result. */
__device__ __forceinline__ float qn_block_reduce(float v, float *scratch, bool is_max)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    v = is_max ? qn_warp_max(v) : qn_warp_sum(v);
    __syncthreads();   /* scratch may still be read by a previous call */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float r = lane < n_warps ? scratch[lane] : (is_max ? -INFINITY : 0.0f);
    return is_max ? qn_warp_max(r) : qn_warp_sum(r);
}

/* What a product needs besides its operands: the cuBLAS handle and a
   growable fp16 buffer for dequantized weights, on one stream. */
typedef struct {
    cublasHandle_t blas;
    cudaStream_t   stream;
    __half        *wbuf;
    size_t         wbuf_elems;
} qn_cu_ws;

qn_status qn_cu_ws_init(qn_cu_ws *ws, qn_err *err);
void      qn_cu_ws_done(qn_cu_ws *ws);

/* Y = X W^T on device buffers: X (n, d_in) fp16, Y (n, d_out) f32. */
qn_status qn_cu_linear_run(const qn_cu_matrix *w, const __half *X, size_t n, float *Y, qn_cu_ws *ws, qn_err *err);

/* f32 -> fp16 of n values on ws's stream. */
qn_status qn_cu_to_half(const float *x, __half *out, size_t n, cudaStream_t stream, qn_err *err);

#endif
