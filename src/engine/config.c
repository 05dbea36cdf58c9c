/* config.c: Llama-family hyperparameters from and to Hugging Face config.json
   (transformers' LlamaConfig / MistralConfig defaults for absent keys). */
#include "engine/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/json_file.h"

void qn_config_init(qn_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->arch, "LlamaForCausalLM");
    c->max_seq_len = 2048;
    c->rms_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->rope_factor = 1.0f;
    c->bos_id = 1;
    c->eos_id = 2;
}

/* Reads an integer key; a present key of the wrong type is an error. */
static qn_status get_int(json_t *root, const char *key, int *dst, bool required,
                         const char *path, qn_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return qn_err_set(err, QN_ERR_FORMAT, "%s: missing key '%s'", path, key);
        return QN_OK;
    }
    double x = json_number_value(v);
    if (!json_is_number(v) || x != floor(x))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s' must be an integer", path, key);
    if (x < -1 || x > 0x7fffffff)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s' = %g is out of range", path, key, x);
    *dst = (int)x;
    return QN_OK;
}

static qn_status get_float(json_t *root, const char *key, float *dst, const char *path, qn_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return QN_OK;
    if (!json_is_number(v))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s' must be a number", path, key);
    *dst = (float)json_number_value(v);
    return QN_OK;
}

/* eos_token_id may be a list (Llama 3.1); the first entry is the one we stop on. */
static qn_status get_token_id(json_t *root, const char *key, int *dst, const char *path, qn_err *err)
{
    json_t *v = json_object_get(root, key);
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    if (!v || json_is_null(v)) return QN_OK;
    double x = json_number_value(v);
    if (!json_is_number(v) || x != floor(x) || x < -1 || x > 0x7fffffff)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s' must be a token id", path, key);
    *dst = (int)x;
    return QN_OK;
}

static qn_status parse_rope_scaling(json_t *rs, qn_config *c, const char *path, qn_err *err)
{
    if (!rs || json_is_null(rs)) return QN_OK;
    if (!json_is_object(rs)) return qn_err_set(err, QN_ERR_FORMAT, "%s: 'rope_scaling' must be an object", path);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    const char *type = json_string_value(t);
    if (!type) return qn_err_set(err, QN_ERR_FORMAT, "%s: 'rope_scaling' has no 'rope_type'", path);
    qn_status s;
    if ((s = get_float(rs, "factor", &c->rope_factor, path, err))) return s;
    if (strcmp(type, "default") == 0) {
        c->rope_scaling = QN_ROPE_SCALING_NONE;
    } else if (strcmp(type, "linear") == 0) {
        c->rope_scaling = QN_ROPE_SCALING_LINEAR;
    } else if (strcmp(type, "llama3") == 0) {
        c->rope_scaling = QN_ROPE_SCALING_LLAMA3;
        c->rope_low_freq_factor = 1.0f;
        c->rope_high_freq_factor = 4.0f;
        c->rope_orig_max_pos = 8192;
        if ((s = get_float(rs, "low_freq_factor", &c->rope_low_freq_factor, path, err))) return s;
        if ((s = get_float(rs, "high_freq_factor", &c->rope_high_freq_factor, path, err))) return s;
        if ((s = get_int(rs, "original_max_position_embeddings", &c->rope_orig_max_pos, false, path, err))) return s;
    } else {
        return qn_err_set(err, QN_ERR_UNSUPPORTED,
                          "%s: rope_scaling type '%s' is not supported (linear and llama3 are)", path, type);
    }
    return QN_OK;
}

static qn_status parse_config(json_t *root, qn_config *c, const char *path, qn_err *err)
{
    if (!json_is_object(root)) return qn_err_set(err, QN_ERR_FORMAT, "%s: expected a JSON object", path);
    json_t *archs = json_object_get(root, "architectures");
    const char *arch = json_string_value(json_array_get(archs, 0));
    const char *model_type = json_string_value(json_object_get(root, "model_type"));
    if (!arch && model_type && strcmp(model_type, "llama") == 0) arch = "LlamaForCausalLM";
    if (!arch && model_type && strcmp(model_type, "mistral") == 0) arch = "MistralForCausalLM";
    if (!arch) return qn_err_set(err, QN_ERR_FORMAT, "%s: no 'architectures' list and no known 'model_type'", path);
    if (strcmp(arch, "LlamaForCausalLM") != 0 && strcmp(arch, "MistralForCausalLM") != 0)
        return qn_err_set(err, QN_ERR_UNSUPPORTED,
                          "%s: architecture '%s' is not supported (LlamaForCausalLM, MistralForCausalLM are)",
                          path, arch);
    snprintf(c->arch, sizeof c->arch, "%s", arch);

    qn_status s;
    if ((s = get_int(root, "hidden_size", &c->dim, true, path, err))) return s;
    if ((s = get_int(root, "intermediate_size", &c->hidden_dim, true, path, err))) return s;
    if ((s = get_int(root, "num_hidden_layers", &c->n_layers, true, path, err))) return s;
    if ((s = get_int(root, "num_attention_heads", &c->n_heads, true, path, err))) return s;
    c->n_kv_heads = c->n_heads;
    if ((s = get_int(root, "num_key_value_heads", &c->n_kv_heads, false, path, err))) return s;
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    if ((s = get_int(root, "head_dim", &c->head_dim, false, path, err))) return s;
    if ((s = get_int(root, "vocab_size", &c->vocab_size, true, path, err))) return s;
    if ((s = get_int(root, "max_position_embeddings", &c->max_seq_len, false, path, err))) return s;
    if ((s = get_float(root, "rms_norm_eps", &c->rms_eps, path, err))) return s;
    if ((s = get_float(root, "rope_theta", &c->rope_theta, path, err))) return s;
    if ((s = parse_rope_scaling(json_object_get(root, "rope_scaling"), c, path, err))) return s;
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_embeddings = tie ? json_is_true(tie) : false;
    if ((s = get_token_id(root, "bos_token_id", &c->bos_id, path, err))) return s;
    if ((s = get_token_id(root, "eos_token_id", &c->eos_id, path, err))) return s;
    return qn_config_validate(c, path, err);
}

qn_status qn_config_load_hf(qn_config *c, const char *path, qn_err *err)
{
    qn_config_init(c);
    json_t *root = NULL;
    qn_status s = qn_json_load(path, &root, err);
    if (s) return s;
    s = parse_config(root, c, path, err);
    json_decref(root);
    return s;
}

qn_status qn_config_validate(const qn_config *c, const char *src, qn_err *err)
{
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0)
        return qn_err_set(err, QN_ERR_FORMAT,
                          "%s: sizes must be positive (hidden %d, intermediate %d, layers %d, heads %d, "
                          "kv heads %d, head_dim %d, vocab %d)", src, c->dim, c->hidden_dim, c->n_layers,
                          c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size);
    if (c->dim > (1 << 20) || c->hidden_dim > (1 << 22) || c->n_layers > 4096 || c->n_heads > 4096 ||
        c->vocab_size > (1 << 24) || c->head_dim > 8192)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: implausibly large dimensions", src);
    if (c->n_heads % c->n_kv_heads != 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                          src, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 != 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: head_dim %d must be even for RoPE", src, c->head_dim);
    if (c->max_seq_len <= 0)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: max_position_embeddings must be positive, found %d", src, c->max_seq_len);
    if (!(c->rms_eps > 0 && c->rms_eps < 1))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: rms_norm_eps %g out of range", src, c->rms_eps);
    if (!(c->rope_theta > 0 && isfinite(c->rope_theta)))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: rope_theta %g out of range", src, c->rope_theta);
    if (c->rope_scaling != QN_ROPE_SCALING_NONE && !(c->rope_factor > 0 && isfinite(c->rope_factor)))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: rope_scaling factor %g out of range", src, c->rope_factor);
    if (c->rope_scaling == QN_ROPE_SCALING_LLAMA3 &&
        !(c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_orig_max_pos > 0))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: llama3 rope_scaling needs high_freq_factor > low_freq_factor", src);
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: bos/eos id (%d/%d) outside the vocabulary (%d)",
                          src, c->bos_id, c->eos_id, c->vocab_size);
    return QN_OK;
}

long long qn_config_n_params(const qn_config *c)
{
    long long d = c->dim, h = c->hidden_dim, v = c->vocab_size;
    long long q = (long long)c->n_heads * c->head_dim, kv = (long long)c->n_kv_heads * c->head_dim;
    long long per_layer = d * q + 2 * d * kv + q * d + 3 * d * h + 2 * d;
    return v * d * (c->tie_embeddings ? 1 : 2) + c->n_layers * per_layer + d;
}

json_t *qn_config_json(const qn_config *c)
{
    json_t *root = json_object();
    json_object_set_new(root, "architectures", json_pack("[s]", c->arch));
    json_object_set_new(root, "model_type", json_string(strcmp(c->arch, "MistralForCausalLM") == 0 ? "mistral" : "llama"));
    json_object_set_new(root, "hidden_size", json_integer(c->dim));
    json_object_set_new(root, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(root, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(root, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(root, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(root, "head_dim", json_integer(c->head_dim));
    json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(root, "max_position_embeddings", json_integer(c->max_seq_len));
    json_object_set_new(root, "rms_norm_eps", json_real(c->rms_eps));
    json_object_set_new(root, "rope_theta", json_real(c->rope_theta));
    if (c->rope_scaling == QN_ROPE_SCALING_LINEAR) {
        json_object_set_new(root, "rope_scaling", json_pack("{s:s, s:f}", "rope_type", "linear", "factor", (double)c->rope_factor));
    } else if (c->rope_scaling == QN_ROPE_SCALING_LLAMA3) {
        json_object_set_new(root, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", (double)c->rope_factor,
                                      "low_freq_factor", (double)c->rope_low_freq_factor,
                                      "high_freq_factor", (double)c->rope_high_freq_factor,
                                      "original_max_position_embeddings", c->rope_orig_max_pos));
    } else {
        json_object_set_new(root, "rope_scaling", json_null());
    }
    json_object_set_new(root, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    json_object_set_new(root, "bos_token_id", c->bos_id >= 0 ? json_integer(c->bos_id) : json_null());
    json_object_set_new(root, "eos_token_id", c->eos_id >= 0 ? json_integer(c->eos_id) : json_null());
    json_object_set_new(root, "hidden_act", json_string("silu"));
    json_object_set_new(root, "attention_bias", json_false());
    json_object_set_new(root, "mlp_bias", json_false());
    json_object_set_new(root, "torch_dtype", json_string("float32"));
    json_object_set_new(root, "initializer_range", json_real(0.02));
    json_object_set_new(root, "use_cache", json_true());
    return root;
}

qn_status qn_config_save_hf(const qn_config *c, const char *path, qn_err *err)
{
    json_t *root = qn_config_json(c);
    qn_status s = qn_json_save(root, path, err);
    json_decref(root);
    return s;
}
