/* llama2c.h: karpathy's llama2.c checkpoints (version 0: a header of 7 int32
   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, then
   f32 tensors in llama2.c order; a negative vocab_size means the classifier is
   stored separately at the end instead of shared with the embedding).
   Exposed as a qn_weight_source with Hugging Face names; q/k rows are permuted
   from Meta's interleaved RoPE order into HF's rotate-half order on the way. */
#ifndef QN_LLAMA2C_H
#define QN_LLAMA2C_H
#include "status.h"
#include "engine/config.h"
#include "engine/weights.h"

/* True when the file starts like a llama2.c checkpoint and has a plausible size. */
int qn_llama2c_sniff(const char *path);

qn_status qn_llama2c_open(const char *path, qn_config *cfg, qn_weight_source *src, qn_err *err);

#endif
