/* weights.h: where a model's tensors come from, behind one small interface.
   Every model source (Hugging Face folder, GGUF file, llama2.c checkpoint)
   answers "give me tensor <Hugging Face name> as f32 in Hugging Face layout", so
   the model builder has one code path. q_proj/k_proj rows are in the HF
   rotate-half order; sources stored in Meta's interleaved order (GGUF,
   llama2.c) permute with qn_rope_meta_to_hf. */
#ifndef QN_WEIGHTS_H
#define QN_WEIGHTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/safetensors.h"

typedef struct {
    float  *data;      /* (shape[0], shape[1]) row-major; 1-D tensors use shape[0] */
    int     ndim;
    int64_t shape[2];
    bool    owned;     /* malloc'd by the source: the receiver frees it */
} qn_f32_tensor;

typedef struct {
    /* The tensor named hf_name ("model.layers.0.self_attn.q_proj.weight"), as f32.
       Absent: QN_ERR_FORMAT with a message naming the file and the tensor. */
    qn_status (*get)(void *ctx, const char *hf_name, qn_f32_tensor *out, qn_err *err);
    bool      (*has)(void *ctx, const char *hf_name);
    void      (*close)(void *ctx);        /* releases ctx; tensors not owned die with it */
    /* Optional (NULL when the source has no typed storage): the tensor as stored,
       for compressed formats (codes, fp16 statistics). *file names its file. */
    qn_status (*raw)(void *ctx, const char *name, const qn_st_tensor **out, const char **file, qn_err *err);
    void       *ctx;
    const char *path;                     /* for messages */
} qn_weight_source;

/* Meta/GGUF interleaved RoPE rows -> HF rotate-half rows, in place.
   W: (n_heads * head_dim, cols). Within each head, row 2i (the real part of
   pair i) goes to row i and row 2i+1 to row i + head_dim/2, as Hugging Face's
   convert_llama_weights_to_hf permute() does. */
qn_status qn_rope_meta_to_hf(float *W, size_t n_heads, size_t head_dim, size_t cols);
/* The inverse, for writers of Meta-order formats. */
qn_status qn_rope_hf_to_meta(float *W, size_t n_heads, size_t head_dim, size_t cols);

void qn_f32_tensor_done(qn_f32_tensor *t);   /* frees data when owned */

#endif
