/* weights.c: RoPE row-order permutations between Meta's interleaved layout
   (llama2.c, GGUF) and Hugging Face's rotate-half layout. */
#include "engine/weights.h"

#include <stdlib.h>
#include <string.h>

/* One head's rows: src row perm_src(i) -> dst row i. */
static qn_status permute_heads(float *W, size_t n_heads, size_t head_dim, size_t cols, int to_hf)
{
    if (head_dim % 2) return QN_ERR_SHAPE;
    size_t half = head_dim / 2, block = head_dim * cols;
    float *tmp = malloc(block * sizeof *tmp);
    if (!tmp) return QN_ERR_NOMEM;
    for (size_t h = 0; h < n_heads; h++) {
        float *head = W + h * block;
        memcpy(tmp, head, block * sizeof *tmp);
        for (size_t i = 0; i < half; i++)
            for (size_t part = 0; part < 2; part++) {
                size_t meta = 2 * i + part, hf = i + part * half;
                size_t dst = to_hf ? hf : meta, src = to_hf ? meta : hf;
                memcpy(head + dst * cols, tmp + src * cols, cols * sizeof *tmp);
            }
    }
    free(tmp);
    return QN_OK;
}

qn_status qn_rope_meta_to_hf(float *W, size_t n_heads, size_t head_dim, size_t cols)
{
    return permute_heads(W, n_heads, head_dim, cols, 1);
}

qn_status qn_rope_hf_to_meta(float *W, size_t n_heads, size_t head_dim, size_t cols)
{
    return permute_heads(W, n_heads, head_dim, cols, 0);
}

void qn_f32_tensor_done(qn_f32_tensor *t)
{
    if (t && t->owned) free(t->data);
    if (t) { t->data = NULL; t->owned = false; }
}
