/* bench.cu: one compressed kernel against cuBLAS on the same GPU in the same
   run (runtime.h: qn_cu_kbench). The baseline is cuBLAS GemmEx on the fp16
   dequantization (with one token cuBLAS runs its GEMV), fp16 inputs, f32
   accumulation and output, exactly what our kernels produce. Before each
   timed call a buffer of twice the L2 is written, so both sides read their
   weights from HBM as in a decode step over a whole model; CUDA events time
   each call; the two sides alternate so clock drift hits both alike. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

extern "C" {
#include "kernels/timing.h"
}

typedef struct {
    qn_cu_matrix *w;
    __half       *W16, *X;
    float        *y_ours, *y_blas;
    void         *flush;
    size_t        flush_bytes;
    cudaEvent_t   t0, t1;
    double       *t_ours, *t_blas;
    qn_cu_ws      ws;
} bench;

static void bench_done(bench *b)
{
    qn_cu_matrix_free(b->w);
    cudaFree(b->W16);
    cudaFree(b->X);
    cudaFree(b->y_ours);
    cudaFree(b->y_blas);
    cudaFree(b->flush);
    if (b->t0) cudaEventDestroy(b->t0);
    if (b->t1) cudaEventDestroy(b->t1);
    free(b->t_ours);
    free(b->t_blas);
    qn_cu_ws_done(&b->ws);
}

/* The baseline: cuBLAS on the fp16 matrix. */
static qn_status blas_call(bench *b, uint32_t d_out, uint32_t d_in, size_t batch, qn_err *err)
{
    const float one = 1.0f, zero = 0.0f;
    QN_CUBLAS_TRY(cublasGemmEx(b->ws.blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)d_out, (int)batch, (int)d_in, &one, b->W16,
                               CUDA_R_16F, (int)d_in, b->X, CUDA_R_16F, (int)d_in, &zero, b->y_blas, CUDA_R_32F,
                               (int)d_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  err);
    return QN_OK;
}

/* Times one call of side `ours` (else the baseline) in seconds. */
static qn_status timed(bench *b, bool ours, uint32_t d_out, uint32_t d_in, size_t batch, bool warm, double *sec,
                       qn_err *err)
{
    if (!warm) QN_CU_TRY(cudaMemsetAsync(b->flush, 0, b->flush_bytes, b->ws.stream), err);
    QN_CU_TRY(cudaEventRecord(b->t0, b->ws.stream), err);
    qn_status s = ours ? qn_cu_linear_run(b->w, b->X, batch, b->y_ours, &b->ws, err)
                       : blas_call(b, d_out, d_in, batch, err);
    if (s) return s;
    QN_CU_TRY(cudaEventRecord(b->t1, b->ws.stream), err);
    QN_CU_TRY(cudaEventSynchronize(b->t1), err);
    float ms = 0;
    QN_CU_TRY(cudaEventElapsedTime(&ms, b->t0, b->t1), err);
    *sec = ms * 1e-3;
    return QN_OK;
}

static qn_status run(bench *b, const qn_cu_matrix *host, const uint16_t *W16, const uint16_t *X16, size_t batch,
                     size_t reps, bool warm, float *y_ours, float *y_blas, qn_cu_kbench_times *out, qn_err *err)
{
    uint32_t R = host->d_out, C = host->d_in;
    qn_status s;
    if ((s = qn_cu_probe(out->device, sizeof out->device, err))) return s;
    if ((s = qn_cu_ws_init(&b->ws, err))) return s;
    if ((s = qn_cu_matrix_upload(host, &b->w, err))) return s;
    int dev = 0, l2 = 0;
    QN_CU_TRY(cudaGetDevice(&dev), err);
    QN_CU_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), err);
    b->flush_bytes = 2 * (size_t)l2;
    QN_CU_TRY(cudaMalloc(&b->W16, (size_t)R * C * 2), err);
    QN_CU_TRY(cudaMalloc(&b->X, batch * C * 2), err);
    QN_CU_TRY(cudaMalloc(&b->y_ours, batch * R * 4), err);
    QN_CU_TRY(cudaMalloc(&b->y_blas, batch * R * 4), err);
    QN_CU_TRY(cudaMalloc(&b->flush, b->flush_bytes), err);
    QN_CU_TRY(cudaMemcpy(b->W16, W16, (size_t)R * C * 2, cudaMemcpyHostToDevice), err);
    QN_CU_TRY(cudaMemcpy(b->X, X16, batch * C * 2, cudaMemcpyHostToDevice), err);
    QN_CU_TRY(cudaEventCreate(&b->t0), err);
    QN_CU_TRY(cudaEventCreate(&b->t1), err);
    b->t_ours = (double *)malloc(reps * sizeof(double));
    b->t_blas = (double *)malloc(reps * sizeof(double));
    if (!b->t_ours || !b->t_blas) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    double warmup = 0;
    /* warm-up: module load, cuBLAS heuristics, shared-memory opt-in */
    if ((s = timed(b, true, R, C, batch, warm, &warmup, err)) || (s = timed(b, false, R, C, batch, warm, &warmup, err)))
        return s;
    for (size_t r = 0; r < reps; r++)
        if ((s = timed(b, true, R, C, batch, warm, &b->t_ours[r], err)) ||
            (s = timed(b, false, R, C, batch, warm, &b->t_blas[r], err)))
            return s;
    out->ours_s = qn_median(b->t_ours, reps);
    out->blas_s = qn_median(b->t_blas, reps);
    out->ours_min_s = b->t_ours[0];
    out->blas_min_s = b->t_blas[0];
    QN_CU_TRY(cudaMemcpy(y_ours, b->y_ours, batch * R * 4, cudaMemcpyDeviceToHost), err);
    QN_CU_TRY(cudaMemcpy(y_blas, b->y_blas, batch * R * 4, cudaMemcpyDeviceToHost), err);
    return QN_OK;
}

extern "C" qn_status qn_cu_kbench(const qn_cu_matrix *host, const uint16_t *W16, const uint16_t *X16, size_t batch,
                                  size_t reps, bool warm, float *y_ours, float *y_blas, qn_cu_kbench_times *out,
                                  qn_err *err)
{
    bench b;
    memset(&b, 0, sizeof b);
    memset(out, 0, sizeof *out);
    qn_status s = run(&b, host, W16, X16, batch, reps ? reps : 1, warm, y_ours, y_blas, out, err);
    bench_done(&b);
    return s;
}
