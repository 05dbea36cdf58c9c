/* llama_layout.c: Hugging Face names and shapes of Llama tensors. */
#include "engine/llama_layout.h"

#include <stdio.h>
#include <string.h>

static const char *const k_layer_suffix[] = {
    [QN_T_ATTN_NORM] = "input_layernorm.weight",
    [QN_T_WQ] = "self_attn.q_proj.weight",
    [QN_T_WK] = "self_attn.k_proj.weight",
    [QN_T_WV] = "self_attn.v_proj.weight",
    [QN_T_WO] = "self_attn.o_proj.weight",
    [QN_T_FFN_NORM] = "post_attention_layernorm.weight",
    [QN_T_GATE] = "mlp.gate_proj.weight",
    [QN_T_UP] = "mlp.up_proj.weight",
    [QN_T_DOWN] = "mlp.down_proj.weight",
};
enum { PER_LAYER = 9 };

void qn_llama_tensor_name(qn_tensor_role role, int layer, char *buf, size_t cap)
{
    switch (role) {
    case QN_T_EMBED: snprintf(buf, cap, "model.embed_tokens.weight"); break;
    case QN_T_FINAL_NORM: snprintf(buf, cap, "model.norm.weight"); break;
    case QN_T_LM_HEAD: snprintf(buf, cap, "lm_head.weight"); break;
    default: snprintf(buf, cap, "model.layers.%d.%s", layer, k_layer_suffix[role]); break;
    }
}

size_t qn_llama_n_tensors(const qn_config *c)
{
    return 2 + (size_t)c->n_layers * PER_LAYER + (c->tie_embeddings ? 0 : 1);
}

static void set_shape(qn_tensor_desc *d, int64_t rows, int64_t cols)
{
    d->ndim = cols ? 2 : 1;
    d->shape[0] = rows;
    d->shape[1] = cols;
}

qn_tensor_desc qn_llama_tensor(const qn_config *c, size_t i)
{
    qn_tensor_desc d;
    memset(&d, 0, sizeof d);
    int64_t dim = c->dim, hid = c->hidden_dim, q = (int64_t)c->n_heads * c->head_dim,
            kv = (int64_t)c->n_kv_heads * c->head_dim;
    size_t n_layer_tensors = (size_t)c->n_layers * PER_LAYER;
    d.layer = -1;
    if (i == 0) {
        d.role = QN_T_EMBED;
        set_shape(&d, c->vocab_size, dim);
    } else if (i <= n_layer_tensors) {
        d.layer = (int)((i - 1) / PER_LAYER);
        d.role = (qn_tensor_role)(QN_T_ATTN_NORM + (i - 1) % PER_LAYER);
        switch (d.role) {
        case QN_T_ATTN_NORM: case QN_T_FFN_NORM: set_shape(&d, dim, 0); break;
        case QN_T_WQ: set_shape(&d, q, dim); break;
        case QN_T_WK: case QN_T_WV: set_shape(&d, kv, dim); break;
        case QN_T_WO: set_shape(&d, dim, q); break;
        case QN_T_GATE: case QN_T_UP: set_shape(&d, hid, dim); break;
        case QN_T_DOWN: set_shape(&d, dim, hid); break;
        default: break;
        }
    } else if (i == n_layer_tensors + 1) {
        d.role = QN_T_FINAL_NORM;
        set_shape(&d, dim, 0);
    } else {
        d.role = QN_T_LM_HEAD;
        set_shape(&d, c->vocab_size, dim);
    }
    qn_llama_tensor_name(d.role, d.layer, d.name, sizeof d.name);
    return d;
}
