/* linear.cu: products with packed matrices on the GPU (runtime.h, common.cuh).
   One token: a GEMV kernel per format, one warp per output row (a block of
   8 warps covers 32 rows), the input vector staged in shared memory as fp16
   (SpQR: gathered through the permutation, so the dense part reads it in code
   order), products accumulated in f32 and summed across the warp. AQLM
   codebooks of 8-bit codes (Kx8: M * 256 * G fp16) sit in shared memory
   beside the input; 1x16 codebooks (1 MiB at G 8) are read from global memory
   through L2. A batch: the matrix is dequantized to fp16 (the same decoders
   as the CPU tests check, layout.h) and multiplied by cuBLAS GemmEx with f32
   accumulation and output. Dense fp16 goes to cuBLAS either way. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

#define WARPS_PER_BLOCK 8
#define ROWS_PER_WARP 4
#define ROWS_PER_BLOCK (WARPS_PER_BLOCK * ROWS_PER_WARP)
/* Shared memory a block may use without opting in. */
#define SMEM_DEFAULT (48u << 10)

extern "C" bool qn_cu_built(void) { return true; }

extern "C" qn_status qn_cu_probe(char *name, size_t cap, qn_err *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return qn_err_set(err, QN_ERR_DEVICE, "no usable CUDA device: %s", cudaGetErrorString(e));
    if (n == 0) return qn_err_set(err, QN_ERR_DEVICE, "no CUDA device found");
    QN_CU_TRY(cudaSetDevice(0), err);
    cudaDeviceProp p;
    QN_CU_TRY(cudaGetDeviceProperties(&p, 0), err);
    if (p.major < 9)   /* the build carries sm_90 code and compute_90 PTX, which older GPUs cannot run */
        return qn_err_set(err, QN_ERR_DEVICE, "CUDA device 0 (%s) is sm_%d%d; this build has kernels for sm_90 and later",
                          p.name, p.major, p.minor);
    if (name) snprintf(name, cap, "%s (sm_%d%d, %.0f GiB)", p.name, p.major, p.minor, (double)p.totalGlobalMem / (1 << 30));
    return QN_OK;
}

/* ---- device copies of packed matrices ---- */

extern "C" void qn_cu_matrix_free(qn_cu_matrix *dev)
{
    if (!dev) return;
    qn_cu_array a[QN_CU_MAX_ARRAYS];
    for (int i = 0, n = qn_cu_matrix_arrays(dev, a); i < n; i++) cudaFree(*a[i].slot);
    free(dev);
}

extern "C" qn_status qn_cu_matrix_upload(const qn_cu_matrix *host, qn_cu_matrix **out, qn_err *err)
{
    *out = NULL;
    qn_cu_matrix h = *host, *d = (qn_cu_matrix *)malloc(sizeof *d);
    if (!d) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    *d = *host;
    qn_cu_array ha[QN_CU_MAX_ARRAYS], da[QN_CU_MAX_ARRAYS];
    int n = qn_cu_matrix_arrays(&h, ha);
    qn_cu_matrix_arrays(d, da);   /* same fields, same order */
    for (int i = 0; i < n; i++) *da[i].slot = NULL;
    for (int i = 0; i < n; i++) {
        cudaError_t e = cudaMalloc(da[i].slot, da[i].nbytes);
        if (e == cudaSuccess) e = cudaMemcpy(*da[i].slot, *ha[i].slot, da[i].nbytes, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            qn_cu_matrix_free(d);
            return qn_err_set(err, QN_ERR_DEVICE, "CUDA: uploading a %u x %u matrix (%zu bytes): %s", host->d_out,
                              host->d_in, qn_cu_matrix_bytes(host), cudaGetErrorString(e));
        }
    }
    *out = d;
    return QN_OK;
}

/* ---- GEMV kernels (one token) ---- */

/* The input vector into shared memory, gathered through perm when given. */
__device__ __forceinline__ void stage_x(__half *xs, const __half *x, uint32_t n, const int32_t *perm)
{
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) xs[i] = perm ? x[perm[i]] : x[i];
}

/* Rows a warp owns: row k of this warp, or d_out when past the end. */
__device__ __forceinline__ uint32_t warp_row(int k)
{
    return blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5) * ROWS_PER_WARP + (uint32_t)k;
}

/* Scale and zero of group g of row r: INT reads them, SpQR decodes its bilevel statistics. */
template <bool SPQR>
__device__ __forceinline__ void group_stats(const qn_cu_matrix *m, uint32_t r, uint32_t g, float *s, float *z)
{
    if (SPQR) {
        qn_cu_spqr_stats(m, r, g, s, z);
    } else {
        size_t i = (size_t)r * m->n_groups + g;
        *s = qn_cu_half(m->scales[i]);
        *z = qn_cu_half(m->zeros[i]);
    }
}

/* INT and SpQR share the dense low-bit part: each lane takes whole words of
   32 / BITS codes, so a warp reads 128 consecutive bytes of a row at a time.
   SpQR stages x through its permutation and adds the row's CSR outliers. */
template <int BITS, bool SPQR>
__global__ void gemv_lowbit(qn_cu_matrix m, const __half *x, float *y)
{
    extern __shared__ __align__(16) unsigned char smem[];
    __half *xs = (__half *)smem;
    stage_x(xs, x, m.d_in, SPQR ? m.perm : nullptr);
    __syncthreads();
    const uint32_t per = 32 / BITS, mask = (1u << BITS) - 1u, lane = threadIdx.x & 31;
    const uint32_t gs = SPQR ? m.beta1 : m.group_size;
    for (int k = 0; k < ROWS_PER_WARP; k++) {
        uint32_t r = warp_row(k);
        if (r >= m.d_out) break;
        const uint32_t *row = m.qwords + (size_t)r * m.words_per_row;
        float acc = 0.0f, s, z;
        for (uint32_t wi = lane; wi < m.words_per_row; wi += 32) {
            uint32_t word = row[wi], c = wi * per, g = c / gs, g_end = (g + 1) * gs;
            group_stats<SPQR>(&m, r, g, &s, &z);
#pragma unroll
            for (uint32_t i = 0; i < per; i++, c++) {
                if (c >= m.d_in) break;
                if (c == g_end) {
                    g++;
                    g_end += gs;
                    group_stats<SPQR>(&m, r, g, &s, &z);
                }
                float q = (float)((word >> (i * BITS)) & mask);
                acc += s * (q - z) * __half2float(xs[c]);
            }
        }
        if (SPQR)   /* outliers index original columns: read x itself (about 1% of the row) */
            for (int32_t e = m.row_ptr[r] + (int32_t)lane; e < m.row_ptr[r + 1]; e += 32)
                acc += qn_cu_half(m.values[e]) * __half2float(x[m.col_idx[e]]);
        acc = qn_warp_sum(acc);
        if (lane == 0) y[r] = acc;
    }
}

/* G 8 (every Hugging Face AQLM checkpoint) reads a codeword and 8 inputs as
   one 16-byte load each; G 0 is the general loop. cb_shared: codebooks are
   copied into shared memory after the input. */
template <int G8>
__global__ void gemv_aqlm(qn_cu_matrix m, const __half *x, float *y, int cb_shared)
{
    extern __shared__ __align__(16) unsigned char smem[];
    __half *xs = (__half *)smem;
    const uint32_t G = G8 ? 8u : (uint32_t)m.in_group_size, n_groups = m.d_in / G, lane = threadIdx.x & 31;
    const int M = m.n_codebooks;
    const size_t cb_elems = ((size_t)M << m.nbits) * G;
    const __half *cb = (const __half *)m.codebooks;
    stage_x(xs, x, m.d_in, nullptr);
    if (cb_shared) {
        __half *cbs = xs + ((m.d_in + 7u) & ~7u);   /* 16-byte aligned after the input */
        for (size_t i = threadIdx.x; i < cb_elems; i += blockDim.x) cbs[i] = cb[i];
        cb = cbs;
    }
    __syncthreads();
    for (int k = 0; k < ROWS_PER_WARP; k++) {
        uint32_t r = warp_row(k);
        if (r >= m.d_out) break;
        float acc = 0.0f;
        for (uint32_t g = lane; g < n_groups; g += 32) {
            size_t ci = ((size_t)r * n_groups + g) * (size_t)M;
            if (G8) {
                float w[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
                for (int c = 0; c < M; c++) {
                    unsigned code = m.nbits <= 8 ? m.codes8[ci + c] : m.codes16[ci + c];
                    uint4 raw = *(const uint4 *)(cb + (((size_t)c << m.nbits) + code) * 8);
                    const __half2 *h2 = (const __half2 *)&raw;
#pragma unroll
                    for (int p = 0; p < 4; p++) {
                        float2 f = __half22float2(h2[p]);
                        w[2 * p] += f.x;
                        w[2 * p + 1] += f.y;
                    }
                }
                uint4 xraw = *(const uint4 *)(xs + (size_t)g * 8);
                const __half2 *x2 = (const __half2 *)&xraw;
#pragma unroll
                for (int p = 0; p < 4; p++) {
                    float2 f = __half22float2(x2[p]);
                    acc += w[2 * p] * f.x + w[2 * p + 1] * f.y;
                }
            } else {
                for (uint32_t j = 0; j < G; j++) {
                    float v = 0.0f;
                    for (int c = 0; c < M; c++) {
                        unsigned code = m.nbits <= 8 ? m.codes8[ci + c] : m.codes16[ci + c];
                        v += __half2float(cb[(((size_t)c << m.nbits) + code) * G + j]);
                    }
                    acc += v * __half2float(xs[(size_t)g * G + j]);
                }
            }
        }
        acc = qn_warp_sum(acc);
        if (lane == 0) y[r] = acc * qn_cu_half(m.scales[r]);
    }
}

/* Launches kernel with smem bytes of dynamic shared memory, opting in past 48 KiB. */
template <typename K, typename... A>
static qn_status launch_gemv(K kernel, size_t smem, uint32_t d_out, cudaStream_t st, qn_err *err, A... args)
{
    if (smem > SMEM_DEFAULT)
        QN_CU_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), err);
    unsigned blocks = (d_out + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    kernel<<<blocks, WARPS_PER_BLOCK * 32, smem, st>>>(args...);
    QN_CU_LAUNCHED(err);
    return QN_OK;
}

static size_t smem_optin(void)
{
    static int limit = -1;
    if (limit < 0) {
        int dev = 0;
        cudaGetDevice(&dev);
        if (cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) limit = (int)SMEM_DEFAULT;
    }
    return (size_t)limit;
}

static qn_status gemv(const qn_cu_matrix *w, const __half *x, float *y, cudaStream_t st, qn_err *err)
{
    size_t xs = ((size_t)(w->d_in + 7u) & ~(size_t)7u) * sizeof(__half);
    if (xs > smem_optin())
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "GEMV: %u input columns do not fit in shared memory", w->d_in);
    switch (w->kind) {
    case QN_CU_INT:
        switch (w->bits) {
        case 2: return launch_gemv(gemv_lowbit<2, false>, xs, w->d_out, st, err, *w, x, y);
        case 3: return launch_gemv(gemv_lowbit<3, false>, xs, w->d_out, st, err, *w, x, y);
        case 4: return launch_gemv(gemv_lowbit<4, false>, xs, w->d_out, st, err, *w, x, y);
        case 8: return launch_gemv(gemv_lowbit<8, false>, xs, w->d_out, st, err, *w, x, y);
        }
        break;   /* other widths: the batch path */
    case QN_CU_SPQR:
        switch (w->bits) {
        case 2: return launch_gemv(gemv_lowbit<2, true>, xs, w->d_out, st, err, *w, x, y);
        case 3: return launch_gemv(gemv_lowbit<3, true>, xs, w->d_out, st, err, *w, x, y);
        case 4: return launch_gemv(gemv_lowbit<4, true>, xs, w->d_out, st, err, *w, x, y);
        }
        break;
    case QN_CU_AQLM: {
        size_t cb = ((size_t)w->n_codebooks << w->nbits) * (size_t)w->in_group_size * sizeof(__half);
        int shared = w->nbits <= 8 && xs + cb <= smem_optin();
        size_t smem = xs + (shared ? cb : 0);
        if (w->in_group_size == 8) return launch_gemv(gemv_aqlm<1>, smem, w->d_out, st, err, *w, x, y, shared);
        return launch_gemv(gemv_aqlm<0>, smem, w->d_out, st, err, *w, x, y, shared);
    }
    case QN_CU_F16:
        break;
    }
    return QN_ERR_UNSUPPORTED;   /* the batch path takes the rest */
}

/* ---- dequantize, then cuBLAS (a batch) ---- */

__global__ void dequant(qn_cu_matrix m, __half *W)
{
    size_t total = (size_t)m.d_out * m.d_in;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t r = (uint32_t)(i / m.d_in), c = (uint32_t)(i % m.d_in);
        switch (m.kind) {
        case QN_CU_INT: W[i] = __float2half(qn_cu_int_weight(&m, r, c)); break;
        case QN_CU_AQLM: W[i] = __float2half(qn_cu_aqlm_weight(&m, r, c)); break;
        case QN_CU_SPQR:
            W[(size_t)r * m.d_in + (m.perm ? (uint32_t)m.perm[c] : c)] = __float2half(qn_cu_spqr_dense(&m, r, c));
            break;
        case QN_CU_F16: W[i] = __ushort_as_half(m.w[i]); break;
        }
    }
}

/* SpQR outliers added to the dequantized rows, one thread per row. */
__global__ void add_outliers(qn_cu_matrix m, __half *W)
{
    uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= m.d_out) return;
    for (int32_t e = m.row_ptr[r]; e < m.row_ptr[r + 1]; e++) {
        __half *p = W + (size_t)r * m.d_in + m.col_idx[e];
        *p = __float2half(__half2float(*p) + qn_cu_half(m.values[e]));
    }
}

static qn_status gemm(const __half *W, uint32_t d_out, uint32_t d_in, const __half *X, size_t n, float *Y,
                      qn_cu_ws *ws, qn_err *err)
{
    const float one = 1.0f, zero = 0.0f;
    /* column-major view: Y^T (d_out, n) = W (d_in, d_out)^T X^T (d_in, n) */
    QN_CUBLAS_TRY(cublasGemmEx(ws->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)d_out, (int)n, (int)d_in, &one, W, CUDA_R_16F,
                               (int)d_in, X, CUDA_R_16F, (int)d_in, &zero, Y, CUDA_R_32F, (int)d_out,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  err);
    return QN_OK;
}

qn_status qn_cu_linear_run(const qn_cu_matrix *w, const __half *X, size_t n, float *Y, qn_cu_ws *ws,
                           qn_err *err)
{
    if (w->kind == QN_CU_F16) return gemm((const __half *)w->w, w->d_out, w->d_in, X, n, Y, ws, err);
    if (n == 1) {
        qn_status s = gemv(w, X, Y, ws->stream, err);
        if (s != QN_ERR_UNSUPPORTED) return s;
    }
    size_t elems = (size_t)w->d_out * w->d_in;
    if (elems > ws->wbuf_elems) {
        cudaFree(ws->wbuf);
        ws->wbuf = NULL;
        ws->wbuf_elems = 0;
        QN_CU_TRY(cudaMalloc(&ws->wbuf, elems * sizeof(__half)), err);
        ws->wbuf_elems = elems;
    }
    dequant<<<(unsigned)((elems + 255) / 256 < 65535 * 4 ? (elems + 255) / 256 : 65535 * 4), 256, 0, ws->stream>>>(
        *w, ws->wbuf);
    QN_CU_LAUNCHED(err);
    if (w->kind == QN_CU_SPQR) {
        add_outliers<<<(w->d_out + 127) / 128, 128, 0, ws->stream>>>(*w, ws->wbuf);
        QN_CU_LAUNCHED(err);
    }
    return gemm(ws->wbuf, w->d_out, w->d_in, X, n, Y, ws, err);
}

qn_status qn_cu_ws_init(qn_cu_ws *ws, qn_err *err)
{
    memset(ws, 0, sizeof *ws);
    QN_CU_TRY(cudaStreamCreate(&ws->stream), err);
    QN_CUBLAS_TRY(cublasCreate(&ws->blas), err);
    QN_CUBLAS_TRY(cublasSetStream(ws->blas, ws->stream), err);
    return QN_OK;
}

void qn_cu_ws_done(qn_cu_ws *ws)
{
    if (ws->blas) cublasDestroy(ws->blas);
    if (ws->stream) cudaStreamDestroy(ws->stream);
    cudaFree(ws->wbuf);
    memset(ws, 0, sizeof *ws);
}

__global__ void to_half(const float *x, __half *out, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2half(x[i]);
}

qn_status qn_cu_to_half(const float *x, __half *out, size_t n, cudaStream_t stream, qn_err *err)
{
    size_t blocks = (n + 255) / 256;
    to_half<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(x, out, n);
    QN_CU_LAUNCHED(err);
    return QN_OK;
}

/* ---- host activations (the qn_linear backend) ---- */

/* One workspace for every host-side call, created on first use; the lock
   keeps concurrent callers (OpenMP regions in quantizers) in turn. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static qn_cu_ws g_ws;
static bool g_ws_ready;

static qn_status host_product(const qn_cu_matrix *w, const float *X, size_t n, float *Y, qn_err *err)
{
    if (!g_ws_ready) {
        qn_status s = qn_cu_ws_init(&g_ws, err);
        if (s) { qn_cu_ws_done(&g_ws); return s; }
        g_ws_ready = true;
    }
    size_t nx = n * w->d_in, ny = n * w->d_out;
    float *dx = NULL, *dy = NULL;
    __half *dxh = NULL;
    qn_status s = QN_OK;
    cudaError_t e = cudaMalloc(&dx, nx * sizeof *dx);
    if (e == cudaSuccess) e = cudaMalloc(&dxh, nx * sizeof *dxh);
    if (e == cudaSuccess) e = cudaMalloc(&dy, ny * sizeof *dy);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dx, X, nx * sizeof *dx, cudaMemcpyHostToDevice, g_ws.stream);
    if (e != cudaSuccess) {
        s = qn_err_set(err, QN_ERR_DEVICE, "CUDA: staging a %zu x %u input: %s", n, w->d_in, cudaGetErrorString(e));
        goto done;
    }
    if ((s = qn_cu_to_half(dx, dxh, nx, g_ws.stream, err)) || (s = qn_cu_linear_run(w, dxh, n, dy, &g_ws, err)))
        goto done;
    e = cudaMemcpyAsync(Y, dy, ny * sizeof *dy, cudaMemcpyDeviceToHost, g_ws.stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(g_ws.stream);
    if (e != cudaSuccess) s = qn_err_set(err, QN_ERR_DEVICE, "CUDA: product of a %u x %u matrix: %s", w->d_out, w->d_in,
                                         cudaGetErrorString(e));
done:
    cudaFree(dx);
    cudaFree(dxh);
    cudaFree(dy);
    return s;
}

extern "C" qn_status qn_cu_matmul_host(const qn_cu_matrix *dev, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    if (n_tok == 0) return QN_OK;
    pthread_mutex_lock(&g_lock);
    qn_status s = host_product(dev, X, n_tok, Y, err);
    pthread_mutex_unlock(&g_lock);
    return s;
}
