/* export_hf.h: write a model as a Hugging Face folder (config.json,
   model.safetensors in f32, f16 or bf16, tokenizer.json, tokenizer_config.json,
   generation_config.json) that transformers' LlamaForCausalLM loads and that
   quench reads back. Tensors come from any qn_weight_source, so the same code
   converts llama2.c checkpoints and GGUF files. Each file is written to a
   temporary name and renamed. */
#ifndef QN_EXPORT_HF_H
#define QN_EXPORT_HF_H
#include "status.h"
#include "engine/config.h"
#include "engine/dtype.h"
#include "engine/events.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

/* dtype: QN_DTYPE_F32, F16 or BF16 for every tensor (config.json's torch_dtype says which). */
qn_status qn_hf_export_as(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                          const qn_tokenizer *tok, qn_dtype dtype, qn_event_sink sink, qn_err *err);
/* qn_hf_export_as in f32. */
qn_status qn_hf_export(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                       const qn_tokenizer *tok, qn_event_sink sink, qn_err *err);

#endif
