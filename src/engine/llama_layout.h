/* llama_layout.h: the tensors of a Llama-family model, by Hugging Face name and
   shape, in the order transformers' LlamaForCausalLM lists them. The model
   builder, the exporters and `inspect` enumerate this one list. */
#ifndef QN_LLAMA_LAYOUT_H
#define QN_LLAMA_LAYOUT_H
#include <stddef.h>
#include <stdint.h>
#include "engine/config.h"

typedef enum {
    QN_T_EMBED = 0, QN_T_ATTN_NORM, QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_FFN_NORM,
    QN_T_GATE, QN_T_UP, QN_T_DOWN, QN_T_FINAL_NORM, QN_T_LM_HEAD
} qn_tensor_role;

typedef struct {
    char           name[96];   /* "model.layers.3.mlp.up_proj.weight" */
    qn_tensor_role role;
    int            layer;      /* -1 for embeddings, final norm and head */
    int            ndim;
    int64_t        shape[2];   /* (d_out, d_in) for linears */
} qn_tensor_desc;

/* Number of tensors (lm_head only when not tied). */
size_t qn_llama_n_tensors(const qn_config *c);
/* The i-th tensor, 0 <= i < qn_llama_n_tensors(c). */
qn_tensor_desc qn_llama_tensor(const qn_config *c, size_t i);
/* Hugging Face name of a role in a layer (layer ignored for global tensors). */
void qn_llama_tensor_name(qn_tensor_role role, int layer, char *buf, size_t cap);

#endif
