/* forward.h: the Llama forward pass in f32 (llama2.c's run.c, batched):
   RMSNorm, RoPE (HF rotate-half, with linear or llama3 frequency scaling),
   grouped-query attention over a KV cache, SwiGLU MLP, tied or untied head.
   A batch of tokens goes through qn_linear_matmul (sgemm), one token through
   qn_linear_matvec (sgemv). When m->ggml is set (ggml_numerics.h), linear
   inputs, Q/K/V and attention weights are rounded as llama.cpp rounds them. */
#ifndef QN_FORWARD_H
#define QN_FORWARD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/model.h"

typedef struct qn_state qn_state;  /* opaque: KV cache and scratch for one sequence */

/* max_ctx: positions the cache holds (<= the model's max_position_embeddings).
   max_batch: tokens one qn_forward call may process. */
qn_status qn_state_create(qn_state **out, const qn_model *m, size_t max_ctx, size_t max_batch, qn_err *err);
void      qn_state_free(qn_state *s);

/* Runs tokens[0..n) at positions pos..pos+n-1, appending to the KV cache.
   all_logits: logits for every token, (n, vocab); else only the last, (1, vocab).
   *logits points into the state and stays valid until the next call. */
qn_status qn_forward(const qn_model *m, qn_state *s, const int32_t *tokens, size_t n, size_t pos,
                     bool all_logits, const float **logits, qn_err *err);

/* Where a block's linears read their input (q, k, v share one; gate and up share one). */
typedef enum { QN_TAP_QKV = 0, QN_TAP_O, QN_TAP_GATE_UP, QN_TAP_DOWN, QN_TAP_COUNT } qn_tap_point;

/* Called with the input of each group of linears as the block computes it.
   X: (n, d) row-major, valid only during the call. */
typedef struct {
    void (*on_input)(void *ctx, qn_tap_point where, const float *X, size_t n, size_t d);
    void  *ctx;
    int    stop_after;   /* 0: the whole block; k: return once point k-1 was reported */
} qn_tap;

/* One transformer block on one sequence of n tokens at positions 0..n-1 (the
   KV cache of that layer is overwritten): x (n, dim) is the block's input and
   receives its output. For calibration, which runs the model block by block.
   A tap with stop_after ends the block early and leaves x as it was: a
   calibration that only wants one point's inputs skips the rest. */
qn_status qn_forward_block(const qn_model *m, qn_state *s, size_t layer, float *x, size_t n, qn_tap tap,
                           qn_err *err);

/* Uploads m's weights for the GPU pass (once, at qn_model_open under
   --device cuda): states of a model with m->gpu run qn_forward on the GPU
   (kernels/cuda/model.h); qn_forward_block stays on the CPU. */
qn_status qn_forward_upload(qn_model *m, qn_err *err);
void      qn_forward_release(qn_model *m);   /* frees m->gpu; NULL is fine */

/* Inverse frequencies of RoPE after scaling, (head_dim/2); exposed for tests. */
void qn_rope_inv_freq(const qn_config *c, double *inv_freq);

#endif
