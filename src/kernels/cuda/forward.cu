/* forward.cu: the Llama forward pass on the GPU (model.h). The same steps as
   engine/forward.c (llama2.c's run.c, batched) with one kernel each:
   embedding rows, RMSNorm (writing the fp16 input of the next linears),
   rotate-half RoPE from the engine's tables, the KV cache append, causal
   grouped-query attention (one block per token and head, an online softmax
   over chunks of 128 positions, so no score buffer grows with the context),
   SwiGLU and residual adds in f32. Linears go through qn_cu_linear_run.
   Calibration's block-by-block path (qn_forward_block) stays on the CPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

extern "C" {
#include "kernels/cuda/model.h"
}

#define NORM_THREADS 256
#define ATT_THREADS 128
#define MAX_HEAD_DIM (2 * ATT_THREADS)
#define ELT_THREADS 256

typedef struct {
    const qn_cu_matrix *m;       /* what the kernels read */
    qn_cu_matrix       *owned;   /* uploaded here (f32 linears); NULL when m is a backend plan */
} dev_linear;

typedef struct {
    float     *attn_norm, *ffn_norm;                        /* (dim) */
    dev_linear wq, wk, wv, wo, w_gate, w_up, w_down;
} dev_layer;

struct qn_cu_model {
    int        dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size;
    float      rms_eps;
    float     *embed;        /* (vocab, dim) f32 */
    float     *final_norm;   /* (dim) */
    dev_linear lm_head;
    dev_layer *layers;       /* (n_layers), host array of device pointers */
    size_t     bytes;
};

struct qn_cu_state {
    size_t    max_ctx, max_batch, q_dim, kv_dim;
    qn_cu_ws  ws;
    float    *x;                      /* (B, D) residual stream */
    __half   *xh;                     /* (B, max(D, q_dim, H)) fp16 input of the next linear */
    float    *q, *k, *v;              /* (B, q_dim) (B, kv_dim) (B, kv_dim) */
    float    *xb2;                    /* (B, D) */
    float    *hb, *hb2;               /* (B, H) */
    float    *key_cache, *val_cache;  /* (L, max_ctx, kv_dim) */
    float    *rope_cos, *rope_sin;    /* (max_ctx, hd / 2) */
    float    *logits;                 /* (B, vocab) */
    int32_t  *tokens;                 /* (B) */
};

/* ---- kernels ---- */

__global__ void embed_rows(const float *E, const int32_t *tokens, float *x, uint32_t D)
{
    const float *src = E + (size_t)tokens[blockIdx.x] * D;
    for (uint32_t i = threadIdx.x; i < D; i += blockDim.x) x[(size_t)blockIdx.x * D + i] = src[i];
}

/* o = w * x / sqrt(mean(x^2) + eps) per row, as fp16. */
__global__ void rmsnorm_half(const float *x, const float *w, __half *o, uint32_t D, float eps)
{
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float ss = 0.0f;
    for (uint32_t i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    ss = qn_block_reduce(ss, red, false);
    float inv = 1.0f / sqrtf(ss / (float)D + eps);
    for (uint32_t i = threadIdx.x; i < D; i += blockDim.x) o[(size_t)blockIdx.x * D + i] = __float2half(w[i] * (inv * xr[i]));
}

/* Rotate-half RoPE on the query and key heads of token blockIdx.x at position pos + blockIdx.x. */
__global__ void rope(float *q, float *k, const float *cos_t, const float *sin_t, size_t pos, uint32_t nh, uint32_t nkv,
                     uint32_t hd, uint32_t q_dim, uint32_t kv_dim)
{
    uint32_t t = blockIdx.x, half = hd / 2;
    const float *cp = cos_t + (pos + t) * half, *sp = sin_t + (pos + t) * half;
    for (uint32_t i = threadIdx.x; i < (nh + nkv) * half; i += blockDim.x) {
        uint32_t head = i / half, j = i % half;
        float *v = head < nh ? q + (size_t)t * q_dim + head * hd : k + (size_t)t * kv_dim + (head - nh) * hd;
        float x1 = v[j], x2 = v[j + half];
        v[j] = x1 * cp[j] - x2 * sp[j];
        v[j + half] = x2 * cp[j] + x1 * sp[j];
    }
}

/* Head blockIdx.x of token blockIdx.y over cache positions 0..pos+t; out: fp16 (n, q_dim). */
__global__ void attention(const float *q, const float *K, const float *V, __half *out, size_t pos, uint32_t q_dim,
                          uint32_t kv_dim, uint32_t hd, uint32_t group)
{
    __shared__ float qs[MAX_HEAD_DIM], probs[ATT_THREADS], red[32];
    uint32_t h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    size_t last = pos + t, koff = (size_t)(h / group) * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (uint32_t j = tid; j < hd; j += blockDim.x) qs[j] = q[(size_t)t * q_dim + h * hd + j];
    __syncthreads();
    float run_max = -INFINITY, run_sum = 0.0f, acc0 = 0.0f, acc1 = 0.0f;
    for (size_t base = 0; base <= last; base += ATT_THREADS) {
        size_t i = base + tid;
        float s = -INFINITY;
        if (i <= last) {
            const float *kr = K + i * kv_dim + koff;
            float dot = 0.0f;
            for (uint32_t j = 0; j < hd; j++) dot += qs[j] * kr[j];
            s = dot * scale;
        }
        float new_max = fmaxf(run_max, qn_block_reduce(s, red, true));
        float p = i <= last ? expf(s - new_max) : 0.0f, corr = expf(run_max - new_max);
        probs[tid] = p;
        run_sum = run_sum * corr + qn_block_reduce(p, red, false);   /* its barriers publish probs */
        acc0 *= corr;
        acc1 *= corr;
        size_t count = last + 1 - base < ATT_THREADS ? last + 1 - base : ATT_THREADS;
        for (size_t ii = 0; ii < count; ii++) {
            const float *vr = V + (base + ii) * kv_dim + koff;
            if (tid < hd) acc0 += probs[ii] * vr[tid];
            if (tid + ATT_THREADS < hd) acc1 += probs[ii] * vr[tid + ATT_THREADS];
        }
        run_max = new_max;
        __syncthreads();   /* probs is rewritten next chunk */
    }
    __half *o = out + (size_t)t * q_dim + h * hd;
    if (tid < hd) o[tid] = __float2half(acc0 / run_sum);
    if (tid + ATT_THREADS < hd) o[tid + ATT_THREADS] = __float2half(acc1 / run_sum);
}

/* o = silu(g) * u as fp16. */
__global__ void swiglu(const float *g, const float *u, __half *o, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        o[i] = __float2half(g[i] / (1.0f + expf(-g[i])) * u[i]);
}

__global__ void add_into(float *x, const float *y, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] += y[i];
}

static unsigned elt_blocks(size_t n)
{
    size_t b = (n + ELT_THREADS - 1) / ELT_THREADS;
    return (unsigned)(b < 4096 ? b : 4096);
}

/* ---- the model's weights ---- */

static qn_status upload_f32(float **dst, const float *src, size_t n, size_t *bytes, qn_err *err)
{
    QN_CU_TRY(cudaMalloc(dst, n * sizeof(float)), err);
    QN_CU_TRY(cudaMemcpy(*dst, src, n * sizeof(float), cudaMemcpyHostToDevice), err);
    *bytes += n * sizeof(float);
    return QN_OK;
}

static qn_status upload_linear(dev_linear *d, const qn_linear *w, size_t *bytes, qn_err *err)
{
    if ((d->m = qn_cu_linear_plan(w))) {
        *bytes += qn_cu_matrix_bytes(d->m);
        return QN_OK;
    }
    qn_cu_matrix host;
    qn_status s = qn_cu_pack(w, &host, err);
    if (s) return s;
    s = qn_cu_matrix_upload(&host, &d->owned, err);
    qn_cu_pack_free(&host);
    if (s) return s;
    d->m = d->owned;
    *bytes += qn_cu_matrix_bytes(d->m);
    return QN_OK;
}

extern "C" void qn_cu_model_free(qn_cu_model *m)
{
    if (!m) return;
    for (int l = 0; m->layers && l < m->n_layers; l++) {
        dev_layer *y = &m->layers[l];
        cudaFree(y->attn_norm);
        cudaFree(y->ffn_norm);
        dev_linear *lins[] = { &y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down };
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) qn_cu_matrix_free(lins[i]->owned);
    }
    free(m->layers);
    qn_cu_matrix_free(m->lm_head.owned);
    cudaFree(m->embed);
    cudaFree(m->final_norm);
    free(m);
}

static qn_status upload_layer(dev_layer *y, const qn_cu_layer_desc *d, size_t D, size_t *bytes, qn_err *err)
{
    qn_status s;
    if ((s = upload_f32(&y->attn_norm, d->attn_norm, D, bytes, err)) ||
        (s = upload_f32(&y->ffn_norm, d->ffn_norm, D, bytes, err)))
        return s;
    const qn_linear *src[] = { d->wq, d->wk, d->wv, d->wo, d->w_gate, d->w_up, d->w_down };
    dev_linear *dst[] = { &y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down };
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
        if ((s = upload_linear(dst[i], src[i], bytes, err))) return s;
    return QN_OK;
}

extern "C" qn_status qn_cu_model_upload(qn_cu_model **out, const qn_cu_model_desc *d, qn_err *err)
{
    *out = NULL;
    if (d->head_dim > MAX_HEAD_DIM || d->head_dim % 2)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "CUDA forward: head_dim %d (even, at most %d)", d->head_dim,
                          MAX_HEAD_DIM);
    qn_cu_model *m = (qn_cu_model *)calloc(1, sizeof *m);
    if (!m) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    m->dim = d->dim;
    m->hidden_dim = d->hidden_dim;
    m->n_layers = d->n_layers;
    m->n_heads = d->n_heads;
    m->n_kv_heads = d->n_kv_heads;
    m->head_dim = d->head_dim;
    m->vocab_size = d->vocab_size;
    m->rms_eps = d->rms_eps;
    size_t D = (size_t)d->dim;
    qn_status s;
    if (!(m->layers = (dev_layer *)calloc((size_t)d->n_layers, sizeof *m->layers))) {
        s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = upload_f32(&m->embed, d->embed, (size_t)d->vocab_size * D, &m->bytes, err)) ||
        (s = upload_f32(&m->final_norm, d->final_norm, D, &m->bytes, err)))
        goto fail;
    for (int l = 0; l < d->n_layers; l++)
        if ((s = upload_layer(&m->layers[l], &d->layers[l], D, &m->bytes, err))) {
            qn_err_prefix(err, "layer %d: ", l);
            goto fail;
        }
    if ((s = upload_linear(&m->lm_head, d->lm_head, &m->bytes, err))) {
        qn_err_prefix(err, "lm_head: ");
        goto fail;
    }
    *out = m;
    return QN_OK;
fail:
    qn_cu_model_free(m);
    return s;
}

extern "C" size_t qn_cu_model_bytes(const qn_cu_model *m)
{
    return m ? m->bytes : 0;
}

/* ---- states ---- */

extern "C" void qn_cu_state_free(qn_cu_state *s)
{
    if (!s) return;
    void *bufs[] = { s->x, s->xh, s->q, s->k, s->v, s->xb2, s->hb, s->hb2, s->key_cache, s->val_cache,
                     s->rope_cos, s->rope_sin, s->logits, s->tokens };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cudaFree(bufs[i]);
    qn_cu_ws_done(&s->ws);
    free(s);
}

extern "C" qn_status qn_cu_state_create(qn_cu_state **out, const qn_cu_model *m, size_t max_ctx, size_t max_batch,
                                        const float *rope_cos, const float *rope_sin, qn_err *err)
{
    *out = NULL;
    qn_cu_state *s = (qn_cu_state *)calloc(1, sizeof *s);
    if (!s) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    s->max_ctx = max_ctx;
    s->max_batch = max_batch;
    s->q_dim = (size_t)m->n_heads * m->head_dim;
    s->kv_dim = (size_t)m->n_kv_heads * m->head_dim;
    size_t B = max_batch, D = (size_t)m->dim, H = (size_t)m->hidden_dim, L = (size_t)m->n_layers;
    size_t half = (size_t)m->head_dim / 2, widest = D > s->q_dim ? D : s->q_dim;
    if (H > widest) widest = H;
    struct { void **p; size_t bytes; } bufs[] = {
        { (void **)&s->x, B * D * 4 }, { (void **)&s->xh, B * widest * 2 }, { (void **)&s->q, B * s->q_dim * 4 },
        { (void **)&s->k, B * s->kv_dim * 4 }, { (void **)&s->v, B * s->kv_dim * 4 }, { (void **)&s->xb2, B * D * 4 },
        { (void **)&s->hb, B * H * 4 }, { (void **)&s->hb2, B * H * 4 },
        { (void **)&s->key_cache, L * max_ctx * s->kv_dim * 4 }, { (void **)&s->val_cache, L * max_ctx * s->kv_dim * 4 },
        { (void **)&s->rope_cos, max_ctx * half * 4 }, { (void **)&s->rope_sin, max_ctx * half * 4 },
        { (void **)&s->logits, B * (size_t)m->vocab_size * 4 }, { (void **)&s->tokens, B * 4 },
    };
    qn_status st = qn_cu_ws_init(&s->ws, err);
    for (size_t i = 0; !st && i < sizeof bufs / sizeof bufs[0]; i++) {
        cudaError_t e = cudaMalloc(bufs[i].p, bufs[i].bytes);
        if (e != cudaSuccess)
            st = qn_err_set(err, QN_ERR_DEVICE, "CUDA: KV cache and activations (context %zu, batch %zu): %s", max_ctx,
                            max_batch, cudaGetErrorString(e));
    }
    if (!st) {
        cudaError_t e = cudaMemcpy(s->rope_cos, rope_cos, max_ctx * half * 4, cudaMemcpyHostToDevice);
        if (e == cudaSuccess) e = cudaMemcpy(s->rope_sin, rope_sin, max_ctx * half * 4, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) st = qn_err_set(err, QN_ERR_DEVICE, "CUDA: RoPE tables: %s", cudaGetErrorString(e));
    }
    if (st) {
        qn_cu_state_free(s);
        return st;
    }
    *out = s;
    return QN_OK;
}

/* ---- the pass ---- */

static qn_status attention_block(const qn_cu_model *m, qn_cu_state *s, const dev_layer *w, size_t l, size_t n,
                                 size_t pos, qn_err *err)
{
    size_t D = (size_t)m->dim, hd = (size_t)m->head_dim;
    cudaStream_t st = s->ws.stream;
    qn_status r;
    rmsnorm_half<<<(unsigned)n, NORM_THREADS, 0, st>>>(s->x, w->attn_norm, s->xh, (uint32_t)D, m->rms_eps);
    QN_CU_LAUNCHED(err);
    if ((r = qn_cu_linear_run(w->wq.m, s->xh, n, s->q, &s->ws, err)) ||
        (r = qn_cu_linear_run(w->wk.m, s->xh, n, s->k, &s->ws, err)) ||
        (r = qn_cu_linear_run(w->wv.m, s->xh, n, s->v, &s->ws, err)))
        return r;
    rope<<<(unsigned)n, 128, 0, st>>>(s->q, s->k, s->rope_cos, s->rope_sin, pos, (uint32_t)m->n_heads,
                                      (uint32_t)m->n_kv_heads, (uint32_t)hd, (uint32_t)s->q_dim, (uint32_t)s->kv_dim);
    QN_CU_LAUNCHED(err);
    float *Kc = s->key_cache + l * s->max_ctx * s->kv_dim, *Vc = s->val_cache + l * s->max_ctx * s->kv_dim;
    size_t kv_bytes = n * s->kv_dim * sizeof(float);
    QN_CU_TRY(cudaMemcpyAsync(Kc + pos * s->kv_dim, s->k, kv_bytes, cudaMemcpyDeviceToDevice, st), err);
    QN_CU_TRY(cudaMemcpyAsync(Vc + pos * s->kv_dim, s->v, kv_bytes, cudaMemcpyDeviceToDevice, st), err);
    attention<<<dim3((unsigned)m->n_heads, (unsigned)n), ATT_THREADS, 0, st>>>(
        s->q, Kc, Vc, s->xh, pos, (uint32_t)s->q_dim, (uint32_t)s->kv_dim, (uint32_t)hd,
        (uint32_t)(m->n_heads / m->n_kv_heads));
    QN_CU_LAUNCHED(err);
    if ((r = qn_cu_linear_run(w->wo.m, s->xh, n, s->xb2, &s->ws, err))) return r;
    add_into<<<elt_blocks(n * D), ELT_THREADS, 0, st>>>(s->x, s->xb2, n * D);
    QN_CU_LAUNCHED(err);
    return QN_OK;
}

static qn_status mlp_block(const qn_cu_model *m, qn_cu_state *s, const dev_layer *w, size_t n, qn_err *err)
{
    size_t D = (size_t)m->dim, H = (size_t)m->hidden_dim;
    cudaStream_t st = s->ws.stream;
    qn_status r;
    rmsnorm_half<<<(unsigned)n, NORM_THREADS, 0, st>>>(s->x, w->ffn_norm, s->xh, (uint32_t)D, m->rms_eps);
    QN_CU_LAUNCHED(err);
    if ((r = qn_cu_linear_run(w->w_gate.m, s->xh, n, s->hb, &s->ws, err)) ||
        (r = qn_cu_linear_run(w->w_up.m, s->xh, n, s->hb2, &s->ws, err)))
        return r;
    swiglu<<<elt_blocks(n * H), ELT_THREADS, 0, st>>>(s->hb, s->hb2, s->xh, n * H);
    QN_CU_LAUNCHED(err);
    if ((r = qn_cu_linear_run(w->w_down.m, s->xh, n, s->xb2, &s->ws, err))) return r;
    add_into<<<elt_blocks(n * D), ELT_THREADS, 0, st>>>(s->x, s->xb2, n * D);
    QN_CU_LAUNCHED(err);
    return QN_OK;
}

extern "C" qn_status qn_cu_forward(const qn_cu_model *m, qn_cu_state *s, const int32_t *tokens, size_t n, size_t pos,
                                   bool all_logits, float *logits, qn_err *err)
{
    size_t D = (size_t)m->dim, vocab = (size_t)m->vocab_size;
    cudaStream_t st = s->ws.stream;
    QN_CU_TRY(cudaMemcpyAsync(s->tokens, tokens, n * sizeof *tokens, cudaMemcpyHostToDevice, st), err);
    embed_rows<<<(unsigned)n, NORM_THREADS, 0, st>>>(m->embed, s->tokens, s->x, (uint32_t)D);
    QN_CU_LAUNCHED(err);
    for (size_t l = 0; l < (size_t)m->n_layers; l++) {
        if (attention_block(m, s, &m->layers[l], l, n, pos, err)) return qn_err_prefix(err, "layer %zu attention: ", l);
        if (mlp_block(m, s, &m->layers[l], n, err)) return qn_err_prefix(err, "layer %zu mlp: ", l);
    }
    size_t n_out = all_logits ? n : 1;
    const float *x = all_logits ? s->x : s->x + (n - 1) * D;
    rmsnorm_half<<<(unsigned)n_out, NORM_THREADS, 0, st>>>(x, m->final_norm, s->xh, (uint32_t)D, m->rms_eps);
    QN_CU_LAUNCHED(err);
    if (qn_cu_linear_run(m->lm_head.m, s->xh, n_out, s->logits, &s->ws, err)) return qn_err_prefix(err, "lm_head: ");
    QN_CU_TRY(cudaMemcpyAsync(logits, s->logits, n_out * vocab * sizeof(float), cudaMemcpyDeviceToHost, st), err);
    QN_CU_TRY(cudaStreamSynchronize(st), err);
    return QN_OK;
}
