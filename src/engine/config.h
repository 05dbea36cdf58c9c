/* config.h: the hyperparameters of a Llama-family model, read from a Hugging
   Face config.json (LlamaForCausalLM, MistralForCausalLM) or filled by the GGUF
   and llama2.c readers, then validated once in one place. */
#ifndef QN_CONFIG_H
#define QN_CONFIG_H
#include <stdbool.h>
#include "status.h"

typedef enum { QN_ROPE_SCALING_NONE = 0, QN_ROPE_SCALING_LINEAR, QN_ROPE_SCALING_LLAMA3 } qn_rope_scaling;

typedef struct {
    char  arch[64];            /* "LlamaForCausalLM", "MistralForCausalLM" */
    int   dim;                 /* hidden_size */
    int   hidden_dim;          /* intermediate_size */
    int   n_layers;            /* num_hidden_layers */
    int   n_heads;             /* num_attention_heads */
    int   n_kv_heads;          /* num_key_value_heads (GQA); = n_heads when absent */
    int   head_dim;            /* head_dim; = dim / n_heads when absent */
    int   vocab_size;
    int   max_seq_len;         /* max_position_embeddings */
    float rms_eps;             /* rms_norm_eps */
    float rope_theta;
    qn_rope_scaling rope_scaling;
    float rope_factor;         /* linear and llama3 */
    float rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int   rope_orig_max_pos;   /* llama3: original_max_position_embeddings */
    bool  tie_embeddings;      /* tie_word_embeddings */
    int   bos_id, eos_id;      /* -1 when absent */
} qn_config;

/* Defaults Hugging Face applies when a key is absent. */
void      qn_config_init(qn_config *c);
qn_status qn_config_load_hf(qn_config *c, const char *config_json_path, qn_err *err);
/* Checks every field for sanity; `source` names the file in the message. */
qn_status qn_config_validate(const qn_config *c, const char *source, qn_err *err);
/* The config.json object for c (a new reference). */
struct json_t;
struct json_t *qn_config_json(const qn_config *c);
/* Writes a config.json that transformers loads as LlamaForCausalLM (atomically). */
qn_status qn_config_save_hf(const qn_config *c, const char *path, qn_err *err);
/* Total parameter count implied by the config (embeddings and head included). */
long long qn_config_n_params(const qn_config *c);

#endif
