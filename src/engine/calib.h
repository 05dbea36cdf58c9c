/* calib.h: calibration for layer-wise quantization (GPTQ, SpQR, AQLM papers).
   N windows of L tokens are run through the model block by block. Within a
   block the linears are quantized in the research code's "true sequential"
   order: q,k,v (one Hessian), then o, then gate,up (one Hessian), then down;
   each group's Hessian H = (2/rows) X^T X is collected from inputs computed
   with the earlier groups already quantized. The quantized block's outputs
   are the next block's inputs. Memory: one block's activations (N x L x dim)
   and one Hessian at a time. The quantizer is a callback, so one pipeline
   serves every method. */
#ifndef QN_CALIB_H
#define QN_CALIB_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/layer_quant.h"
#include "engine/llama_layout.h"
#include "engine/model.h"

/* Picks n windows of len tokens from tokens[0..n_tokens), seeded. When
   eval_ctx > 0, windows lie inside the first halves of distinct eval_ctx
   chunks, which llama.cpp's perplexity protocol never scores (needs
   len <= eval_ctx / 2), and also inside the first halves of the chunks at
   eval_ctx/2, eval_ctx/4, ... down to 2*len: with the presets' eval_ctx 512
   and len 128 they are unscored at ctx 512 (WikiText-2) and 256
   (TinyStories) alike. starts: (n). */
qn_status qn_calib_windows(size_t n_tokens, size_t n, size_t len, uint64_t seed, size_t eval_ctx,
                           size_t *starts, qn_err *err);

/* The quantizer for one linear: fill res (W_hat at least). role/layer say which. */
typedef qn_status (*qn_quantize_linear_fn)(void *ctx, qn_tensor_role role, int layer, const qn_layer_problem *p,
                                           qn_layer_result *res, qn_err *err);

typedef struct {
    const int32_t *tokens;   /* (n_windows, len): each window's tokens */
    size_t n_windows, len;
    int first_block;         /* blocks before it are already quantized (resume) */
    qn_quantize_linear_fn quantize;
    void *quantize_ctx;
    /* Called after each block with the block's quantized weights in place;
       a non-OK status stops the run (e.g. a failed checkpoint write). */
    qn_status (*block_done)(void *ctx, int layer, qn_err *err);
    void *block_ctx;
    /* Optional block fine-tuning, called after a block's linears are quantized
       and before its outputs feed the next block: X the block's inputs, Y the
       unquantized block's outputs on them, both (n_windows, len, dim). When
       set, Y is computed before the block is quantized (one more activation
       buffer of N x L x dim). */
    qn_status (*tune_block)(void *ctx, int layer, const float *X, const float *Y, qn_err *err);
    void *tune_ctx;
} qn_calib_plan;

/* Quantizes every linear of every block in place: m's linears then point at
   W_hat buffers the model owns. Emits QN_EV_LAYER_DONE per linear (payload:
   const qn_calib_layer_event *), and QN_EV_STAGE "quantize.projected" once
   the first block's q, k, v are done and after every block: value (and total)
   the projected seconds of the whole run, done the seconds so far. */
typedef struct {
    const char *name;                /* "model.layers.3.self_attn.q_proj" */
    qn_tensor_role role;
    int block;
    const qn_layer_result *result;
    const float *hessian_diag;       /* (d_in) */
    size_t d_out, d_in;
    /* Filled by quantize.h's runs, for live views of the newest layer; NULL otherwise. */
    const uint8_t *outlier_mask;     /* SpQR: (d_out, ceil(d_in / 8)) bits, bit c % 8 of byte c / 8 */
    const float   *codebooks;        /* AQLM: (M, K, g) */
    const int32_t *codebook_usage;   /* AQLM: (M, K) groups per code */
    size_t M, K, g;
} qn_calib_layer_event;

qn_status qn_calib_run(qn_model *m, const qn_calib_plan *plan, qn_event_sink sink, const atomic_bool *cancel,
                       qn_err *err);

/* Replaces one linear's dense weights by W (taken over by the model). */
qn_status qn_model_replace_linear(qn_model *m, qn_tensor_role role, int layer, float *W, qn_err *err);

#endif
