/* model.h: a loaded Llama-family model: config, tokenizer and weights, from a
   Hugging Face folder, a GGUF file or a llama2.c checkpoint (detected from the
   path). Weights are f32 in Hugging Face layout; F32 tensors of mapped files are
   used in place (no copy), the rest are converted once on load. The linear
   layers are qn_linear so compressed formats plug in without touching the
   forward pass. */
#ifndef QN_MODEL_H
#define QN_MODEL_H
#include <stddef.h>
#include "status.h"
#include "engine/config.h"
#include "engine/events.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "kernels/linear.h"

typedef enum { QN_SRC_HF = 0, QN_SRC_GGUF, QN_SRC_LLAMA2C } qn_source_kind;

typedef struct {
    const float *attn_norm;                 /* (dim) */
    qn_linear    wq, wk, wv, wo;            /* (q_dim, dim) (kv_dim, dim) (kv_dim, dim) (dim, q_dim) */
    const float *ffn_norm;                  /* (dim) */
    qn_linear    w_gate, w_up, w_down;      /* (hidden, dim) (hidden, dim) (dim, hidden) */
} qn_layer;

typedef struct qn_model {
    qn_config      cfg;
    qn_source_kind source;
    char           path[4096];
    const float   *embed;                   /* (vocab, dim) */
    qn_layer      *layers;                  /* (n_layers) */
    const float   *final_norm;              /* (dim) */
    qn_linear      lm_head;                 /* (vocab, dim); the embedding when tied */
    qn_tokenizer  *tok;
    bool           quantized;               /* config.json has a quantization_config */
    char           quant_method[32];        /* its quant_method */
    struct qn_ggml_numerics *ggml;          /* NULL: f32 arithmetic; else llama.cpp's (ggml_numerics.h) */
    size_t         ctx_limit;               /* positions a state may hold: max_seq_len unless
                                               qn_model_extend_ctx was called */
    /* ownership: the source (mappings) and the buffers converted on load */
    qn_weight_source src;
    float        **owned;
    size_t         n_owned;
    void         **packed;                  /* layouts of linears on compressed kernels */
    size_t         n_packed;
    struct qn_cu_model *gpu;                /* weights on the GPU when opened under --device cuda
                                               (qn_forward_upload); NULL on the CPU */
} qn_model;

typedef struct {
    const char   *tokenizer;   /* tokenizer.json or tokenizer.bin; NULL: the model's own */
    qn_event_sink sink;        /* QN_EV_PROGRESS per tensor, stage "load" */
    bool          dequantize;  /* compressed linears to f32 on load (the reference path) */
} qn_model_opts;

qn_status qn_model_open(qn_model **out, const char *path, const qn_model_opts *opts, qn_err *err);
void      qn_model_close(qn_model *m);   /* NULL is fine */

/* The linear a role names in a block (lm_head for QN_T_LM_HEAD, layer ignored);
   NULL for roles that are not linears. Role values are llama_layout.h's. */
qn_linear *qn_model_linear(qn_model *m, int role, int layer);

/* Lets states hold up to n positions, past max_position_embeddings (RoPE
   extrapolates; quality past the trained length is the user's risk, as in
   llama.cpp, which only warns). Some converters write a context_length smaller
   than the model was trained with (llama.cpp's llama2.c converter writes 128). */
void qn_model_extend_ctx(qn_model *m, size_t n);

/* Opens only the weight source and config, for inspection and conversion. */
qn_status qn_model_source_open(const char *path, qn_config *cfg, qn_weight_source *src,
                               qn_tokenizer **tok, qn_source_kind *kind, qn_err *err);

#endif
