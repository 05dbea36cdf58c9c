/* model.h: the Llama forward pass on the GPU (forward.cu), the device half
   of engine/forward: the engine describes its model with plain pointers
   (kernels know nothing above them), the weights go up once, and a state
   holds the KV cache and activations of one sequence. Embedding, RMSNorm,
   RoPE (the engine's cos/sin tables), grouped-query attention over an f32
   KV cache, SwiGLU and the head run as kernels; the residual stream stays
   f32 and each linear reads fp16 activations and accumulates in f32.
   Dense f32 linears go up as fp16, compressed ones in their GPU layouts
   (layout.h). In a build without nvcc, absent.c answers every call with
   "built without CUDA". */
#ifndef QN_CU_MODEL_H
#define QN_CU_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "kernels/linear.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const float     *attn_norm, *ffn_norm;            /* (dim) */
    const qn_linear *wq, *wk, *wv, *wo;               /* (q_dim, dim) (kv_dim, dim) (kv_dim, dim) (dim, q_dim) */
    const qn_linear *w_gate, *w_up, *w_down;          /* (hidden, dim) (hidden, dim) (dim, hidden) */
} qn_cu_layer_desc;

typedef struct {
    int   dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size;
    float rms_eps;
    const float            *embed;        /* (vocab, dim) */
    const float            *final_norm;   /* (dim) */
    const qn_linear        *lm_head;      /* (vocab, dim) */
    const qn_cu_layer_desc *layers;       /* (n_layers) */
} qn_cu_model_desc;

typedef struct qn_cu_model qn_cu_model;   /* opaque: device weights, cuBLAS handle */
typedef struct qn_cu_state qn_cu_state;   /* opaque: KV cache and activations */

qn_status qn_cu_model_upload(qn_cu_model **out, const qn_cu_model_desc *d, qn_err *err);
void      qn_cu_model_free(qn_cu_model *m);          /* NULL is fine */
size_t    qn_cu_model_bytes(const qn_cu_model *m);   /* device memory of the weights */

/* rope_cos, rope_sin: (max_ctx, head_dim / 2), the engine's tables. */
qn_status qn_cu_state_create(qn_cu_state **out, const qn_cu_model *m, size_t max_ctx, size_t max_batch,
                             const float *rope_cos, const float *rope_sin, qn_err *err);
void      qn_cu_state_free(qn_cu_state *s);          /* NULL is fine */

/* tokens[0..n) at positions pos..pos+n-1 (checked by the caller); logits
   (host): (n, vocab) when all_logits, else (1, vocab) of the last token. */
qn_status qn_cu_forward(const qn_cu_model *m, qn_cu_state *s, const int32_t *tokens, size_t n, size_t pos,
                        bool all_logits, float *logits, qn_err *err);

#ifdef __cplusplus
}
#endif
#endif
