/* model_gguf.h: a Llama-architecture GGUF file (general.architecture "llama",
   which also covers Mistral, TinyLlama, Llama 3 and SmolLM conversions) as a
   quench model: qn_config from the llama.* keys, a tokenizer from the
   tokenizer.ggml.* keys, and a qn_weight_source that answers Hugging Face
   tensor names with dequantized f32 in Hugging Face layout. GGUF names
   (llama.cpp's convert_hf_to_gguf.py / llama-arch.cpp) map one to one:
   token_embd <-> model.embed_tokens, blk.N.attn_q <-> model.layers.N.
   self_attn.q_proj, and so on. GGUF keeps q/k rows in Meta's interleaved RoPE
   order and ne[0] as the row length, so get() returns [ne[1], ne[0]] and
   permutes q_proj/k_proj into HF's rotate-half order. Llama 3.1 RoPE scaling
   is recognised from the rope_freqs.weight tensor; YaRN and partial rotary
   embeddings are refused as unsupported. */
#ifndef QN_MODEL_GGUF_H
#define QN_MODEL_GGUF_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"
#include "engine/config.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

/* Opens path, checks the architecture (QN_ERR_UNSUPPORTED naming the file and
   the architecture otherwise), fills and validates *cfg, builds *tok (skipped
   when tok is NULL) and sets up *src; src->close releases the file. On failure
   nothing is left open and *tok is NULL. */
qn_status qn_gguf_model_open(const char *path, qn_config *cfg, qn_weight_source *src,
                             qn_tokenizer **tok, qn_err *err);

/* The steps of qn_gguf_model_open, for callers holding an open file (inspect). */
qn_status qn_gguf_llama_config(const qn_gguf_file *f, qn_config *cfg, qn_err *err);
qn_status qn_gguf_llama_tokenizer(const qn_gguf_file *f, qn_tokenizer **tok, qn_err *err);

/* GGUF name of a Hugging Face Llama tensor name ("model.layers.3.mlp.up_proj.weight"
   -> "blk.3.ffn_up.weight"); false when the name has no counterpart or does not fit. */
bool qn_gguf_llama_name(const char *hf_name, char *buf, size_t cap);

#endif
