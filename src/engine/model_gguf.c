/* model_gguf.c: Llama GGUF files as config, tokenizer and weight source (see
   model_gguf.h). Key names follow llama.cpp's llama-arch.cpp (LLM_KV_*) and
   gguf-py's constants.py; defaults for absent keys are llama.cpp's. */
#include "engine/model_gguf.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HF name stems inside model.layers.N. and their GGUF blk.N. stems. */
static const struct { const char *hf, *gguf; } k_layer_names[] = {
    { "input_layernorm",          "attn_norm" },
    { "self_attn.q_proj",         "attn_q" },
    { "self_attn.k_proj",         "attn_k" },
    { "self_attn.v_proj",         "attn_v" },
    { "self_attn.o_proj",         "attn_output" },
    { "post_attention_layernorm", "ffn_norm" },
    { "mlp.gate_proj",            "ffn_gate" },
    { "mlp.up_proj",              "ffn_up" },
    { "mlp.down_proj",            "ffn_down" },
};

static const struct { const char *hf, *gguf; } k_global_names[] = {
    { "model.embed_tokens", "token_embd" },
    { "model.norm",         "output_norm" },
    { "lm_head",            "output" },
};

/* "x.weight" / "x.bias": splits off the suffix; false for anything else. */
static bool split_suffix(const char *name, size_t *stem_len, const char **suffix)
{
    const char *dot = strrchr(name, '.');
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0)) return false;
    *stem_len = (size_t)(dot - name);
    *suffix = dot;
    return true;
}

/* Maps the name and says how many RoPE heads its rows hold: 'q', 'k' or 0. */
static bool map_name(const char *hf, char *buf, size_t cap, char *rope)
{
    size_t stem_len;
    const char *suffix;
    *rope = 0;
    if (!split_suffix(hf, &stem_len, &suffix)) return false;
    for (size_t i = 0; i < sizeof k_global_names / sizeof k_global_names[0]; i++)
        if (strlen(k_global_names[i].hf) == stem_len && strncmp(hf, k_global_names[i].hf, stem_len) == 0) {
            int n = snprintf(buf, cap, "%s%s", k_global_names[i].gguf, suffix);
            return n >= 0 && (size_t)n < cap;
        }
    static const char prefix[] = "model.layers.";
    if (strncmp(hf, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = hf + sizeof prefix - 1;
    long layer = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 7; p++, digits++) layer = layer * 10 + (*p - '0');
    if (digits == 0 || *p != '.' || (digits > 1 && hf[sizeof prefix - 1] == '0')) return false;
    p++;
    size_t rest_len = (size_t)(suffix - p);
    for (size_t i = 0; i < sizeof k_layer_names / sizeof k_layer_names[0]; i++)
        if (strlen(k_layer_names[i].hf) == rest_len && strncmp(p, k_layer_names[i].hf, rest_len) == 0) {
            if (i == 1) *rope = 'q';
            if (i == 2) *rope = 'k';
            int n = snprintf(buf, cap, "blk.%ld.%s%s", layer, k_layer_names[i].gguf, suffix);
            return n >= 0 && (size_t)n < cap;
        }
    return false;
}

bool qn_gguf_llama_name(const char *hf_name, char *buf, size_t cap)
{
    char rope;
    return map_name(hf_name, buf, cap, &rope);
}

/* ---- config ---- */

/* An optional positive-int key: left alone when absent. */
static qn_status opt_int(const qn_gguf_file *f, const char *key, int *dst, qn_err *err)
{
    if (!qn_gguf_find(f, key)) return QN_OK;
    uint32_t v;
    qn_status s = qn_gguf_get_u32(f, key, &v, err);
    if (s) return s;
    if (v > INT_MAX)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: %s = %u is out of range", qn_gguf_path(f), key, v);
    *dst = (int)v;
    return QN_OK;
}

static qn_status req_int(const qn_gguf_file *f, const char *key, int *dst, qn_err *err)
{
    if (!qn_gguf_find(f, key)) return qn_err_set(err, QN_ERR_FORMAT, "%s: missing key '%s'", qn_gguf_path(f), key);
    return opt_int(f, key, dst, err);
}

static qn_status opt_f32(const qn_gguf_file *f, const char *key, float *dst, qn_err *err)
{
    return qn_gguf_find(f, key) ? qn_gguf_get_f32(f, key, dst, err) : QN_OK;
}

/* A token id key: absent or UINT32_MAX (llama.cpp's "none") gives -1. */
static qn_status token_id(const qn_gguf_file *f, const char *key, int *dst, qn_err *err)
{
    *dst = -1;
    if (!qn_gguf_find(f, key)) return QN_OK;
    uint32_t v;
    qn_status s = qn_gguf_get_u32(f, key, &v, err);
    if (s) return s;
    if (v != UINT32_MAX) {
        if (v > INT_MAX) return qn_err_set(err, QN_ERR_FORMAT, "%s: %s = %u is out of range", qn_gguf_path(f), key, v);
        *dst = (int)v;
    }
    return QN_OK;
}

/* Llama 3.1 scaling reaches GGUF only as precomputed per-frequency divisors in
   rope_freqs.weight (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors).
   Every Llama 3.x release uses low_freq_factor 1, high_freq_factor 4 and an
   original context of 8192, and the largest divisor is the factor itself, so
   recompute the table from those and accept it only if it matches. */
static qn_status llama3_rope_from_freqs(const qn_gguf_file *f, qn_config *c, qn_err *err)
{
    const qn_gguf_tensor *t = qn_gguf_tensor_find(f, "rope_freqs.weight");
    if (!t) return QN_OK;
    const char *path = qn_gguf_path(f);
    size_t half = (size_t)c->head_dim / 2;
    if (t->nelements != half)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: rope_freqs.weight has %zu values, expected head_dim / 2 = %zu",
                          path, t->nelements, half);
    float *fac = malloc((half + 1) * sizeof *fac);
    if (!fac) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    qn_status s = qn_gguf_tensor_to_f32(f, t, fac, err);
    if (s) goto done;
    float factor = 1.0f;
    for (size_t i = 0; i < half; i++) if (fac[i] > factor) factor = fac[i];
    int orig = 8192;
    if ((s = opt_int(f, "llama.rope.scaling.original_context_length", &orig, err))) goto done;
    const double low = 1.0, high = 4.0, pi = 3.14159265358979323846;
    const double low_wavelen = orig / low, high_wavelen = orig / high;
    for (size_t i = 0; i < half; i++) {
        double freq = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->head_dim);
        double wavelen = 2 * pi / freq, want;
        if (wavelen < high_wavelen) want = 1.0;
        else if (wavelen > low_wavelen) want = factor;
        else {
            double smooth = (orig / wavelen - low) / (high - low);
            want = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        if (!(fabs(fac[i] - want) <= 1e-3 * want)) {
            s = qn_err_set(err, QN_ERR_UNSUPPORTED,
                           "%s: rope_freqs.weight[%zu] = %g does not match Llama 3 RoPE scaling (factor %g, "
                           "low 1, high 4, original context %d): expected %g", path, i, fac[i], factor, orig, want);
            goto done;
        }
    }
    c->rope_scaling = QN_ROPE_SCALING_LLAMA3;
    c->rope_factor = factor;
    c->rope_low_freq_factor = (float)low;
    c->rope_high_freq_factor = (float)high;
    c->rope_orig_max_pos = orig;
done:
    free(fac);
    return s;
}

static qn_status rope_scaling(const qn_gguf_file *f, qn_config *c, qn_err *err)
{
    const char *path = qn_gguf_path(f);
    qn_status s;
    const char *type = NULL;
    if (qn_gguf_find(f, "llama.rope.scaling.type") &&
        (s = qn_gguf_get_str(f, "llama.rope.scaling.type", &type, err)))
        return s;
    float factor = 0;
    if ((s = opt_f32(f, "llama.rope.scaling.factor", &factor, err))) return s;
    if (!type) {
        /* files from before rope.scaling.type carry only a linear scale */
        float lin = 1.0f;
        if ((s = opt_f32(f, "llama.rope.scale_linear", &lin, err))) return s;
        if (lin != 1.0f) type = "linear", factor = lin;
    }
    if (type && strcmp(type, "linear") == 0) {
        if (!(factor > 0))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: linear RoPE scaling needs llama.rope.scaling.factor > 0", path);
        if (factor != 1.0f) {
            c->rope_scaling = QN_ROPE_SCALING_LINEAR;
            c->rope_factor = factor;
        }
    } else if (type && strcmp(type, "none") != 0) {
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: RoPE scaling '%s' is not supported (none, linear, llama3 are)",
                          path, type);
    }
    if (c->rope_scaling == QN_ROPE_SCALING_NONE) return llama3_rope_from_freqs(f, c, err);
    return QN_OK;
}

qn_status qn_gguf_llama_config(const qn_gguf_file *f, qn_config *c, qn_err *err)
{
    const char *path = qn_gguf_path(f);
    qn_status s;
    const char *arch;
    if ((s = qn_gguf_get_str(f, "general.architecture", &arch, err))) return s;
    if (strcmp(arch, "llama") != 0)
        return qn_err_set(err, QN_ERR_UNSUPPORTED,
                          "%s: architecture '%s' is not supported: quench reads 'llama' GGUF files", path, arch);
    qn_config_init(c);
    if ((s = req_int(f, "llama.embedding_length", &c->dim, err)) ||
        (s = req_int(f, "llama.feed_forward_length", &c->hidden_dim, err)) ||
        (s = req_int(f, "llama.block_count", &c->n_layers, err)) ||
        (s = req_int(f, "llama.attention.head_count", &c->n_heads, err)))
        return s;
    c->n_kv_heads = c->n_heads;
    if ((s = opt_int(f, "llama.attention.head_count_kv", &c->n_kv_heads, err))) return s;
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    if ((s = opt_int(f, "llama.attention.key_length", &c->head_dim, err))) return s;
    int v_len = c->head_dim, rope_dims = c->head_dim;
    if ((s = opt_int(f, "llama.attention.value_length", &v_len, err)) ||
        (s = opt_int(f, "llama.rope.dimension_count", &rope_dims, err)))
        return s;
    if (v_len != c->head_dim)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: value head size %d differs from key head size %d",
                          path, v_len, c->head_dim);
    if (rope_dims != c->head_dim)
        return qn_err_set(err, QN_ERR_UNSUPPORTED,
                          "%s: partial rotary embeddings (llama.rope.dimension_count %d of head size %d) are not supported",
                          path, rope_dims, c->head_dim);
    /* llama.cpp requires the epsilon for this architecture; a guessed one would skew every norm */
    if (!qn_gguf_find(f, "llama.attention.layer_norm_rms_epsilon"))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: missing key 'llama.attention.layer_norm_rms_epsilon'", path);
    if ((s = qn_gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &c->rms_eps, err)) ||
        (s = opt_f32(f, "llama.rope.freq_base", &c->rope_theta, err)) ||
        (s = opt_int(f, "llama.context_length", &c->max_seq_len, err)))
        return s;

    /* vocabulary: the explicit key, else the token list, else the embedding rows */
    c->vocab_size = 0;
    if ((s = opt_int(f, "llama.vocab_size", &c->vocab_size, err))) return s;
    const qn_gguf_value *tokens = qn_gguf_find(f, "tokenizer.ggml.tokens");
    const qn_gguf_tensor *embd = qn_gguf_tensor_find(f, "token_embd.weight");
    if (c->vocab_size == 0 && tokens && tokens->type == QN_GGUF_ARRAY && tokens->arr.n <= INT_MAX)
        c->vocab_size = (int)tokens->arr.n;
    if (c->vocab_size == 0 && embd && embd->ndim == 2 && embd->ne[1] <= INT_MAX)
        c->vocab_size = (int)embd->ne[1];
    c->tie_embeddings = qn_gguf_tensor_find(f, "output.weight") == NULL;
    if ((s = token_id(f, "tokenizer.ggml.bos_token_id", &c->bos_id, err)) ||
        (s = token_id(f, "tokenizer.ggml.eos_token_id", &c->eos_id, err)))
        return s;
    if ((s = qn_config_validate(c, path, err))) return s;
    if ((s = rope_scaling(f, c, err))) return s;
    return qn_config_validate(c, path, err);
}

/* ---- tokenizer ---- */

/* Byte-level pre-tokenizers by tokenizer.ggml.pre (llama.cpp llama-vocab.cpp);
   NULL selects the tokenizer's built-in Llama 3 split. llama.cpp runs SmolLM's
   two patterns one after the other (single digits, then GPT-2's); the one
   pattern here gives the same pieces because a digit ends a whitespace run's
   lookahead exactly as the end of a fragment would. */
static const struct { const char *pre, *regex; } k_pretokenizers[] = {
    { "llama-bpe", NULL },
    { "llama3",    NULL },
    { "gpt2",      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" },
    { "smollm",    "\\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?![^\\s\\p{N}])|\\s+" },
};

/* Absent tokenizer.ggml.pre (files from before it existed) is taken as Llama 3's. */
static qn_status pretokenizer(const qn_gguf_file *f, const char **regex, qn_err *err)
{
    *regex = NULL;
    if (!qn_gguf_find(f, "tokenizer.ggml.pre")) return QN_OK;
    const char *pre;
    qn_status s = qn_gguf_get_str(f, "tokenizer.ggml.pre", &pre, err);
    if (s) return s;
    for (size_t i = 0; i < sizeof k_pretokenizers / sizeof k_pretokenizers[0]; i++)
        if (strcmp(pre, k_pretokenizers[i].pre) == 0) {
            *regex = k_pretokenizers[i].regex;
            return QN_OK;
        }
    return qn_err_set(err, QN_ERR_UNSUPPORTED,
                      "%s: pre-tokenizer '%s' is not supported (llama-bpe, gpt2, smollm are)", qn_gguf_path(f), pre);
}

static qn_status opt_bool(const qn_gguf_file *f, const char *key, bool *dst, qn_err *err)
{
    return qn_gguf_find(f, key) ? qn_gguf_get_bool(f, key, dst, err) : QN_OK;
}

qn_status qn_gguf_llama_tokenizer(const qn_gguf_file *f, qn_tokenizer **tok, qn_err *err)
{
    const char *path = qn_gguf_path(f);
    qn_status s;
    float *scores = NULL;
    int32_t *types = NULL;
    *tok = NULL;
    const char *model;
    if ((s = qn_gguf_get_str(f, "tokenizer.ggml.model", &model, err))) return s;
    qn_tok_spec spec;
    memset(&spec, 0, sizeof spec);
    if (strcmp(model, "llama") == 0) spec.kind = QN_TOK_SPM;
    else if (strcmp(model, "gpt2") == 0) spec.kind = QN_TOK_BYTE_BPE;
    else
        return qn_err_set(err, QN_ERR_UNSUPPORTED,
                          "%s: tokenizer.ggml.model '%s' is not supported (llama and gpt2 are)", path, model);
    if ((s = qn_gguf_get_str_arr(f, "tokenizer.ggml.tokens", &spec.pieces, &spec.n_vocab, err))) return s;
    size_t n;
    if (qn_gguf_find(f, "tokenizer.ggml.scores")) {
        if ((s = qn_gguf_get_f32_arr(f, "tokenizer.ggml.scores", &scores, &n, err))) goto done;
        if (n != spec.n_vocab) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tokenizer.ggml.scores has %zu entries for %zu tokens",
                           path, n, spec.n_vocab);
            goto done;
        }
    }
    if (qn_gguf_find(f, "tokenizer.ggml.token_type")) {
        if ((s = qn_gguf_get_i32_arr(f, "tokenizer.ggml.token_type", &types, &n, err))) goto done;
        if (n != spec.n_vocab) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tokenizer.ggml.token_type has %zu entries for %zu tokens",
                           path, n, spec.n_vocab);
            goto done;
        }
    }
    if (spec.kind == QN_TOK_BYTE_BPE || qn_gguf_find(f, "tokenizer.ggml.merges"))
        if ((s = qn_gguf_get_str_arr(f, "tokenizer.ggml.merges", &spec.merges, &spec.n_merges, err))) goto done;
    if (spec.kind == QN_TOK_BYTE_BPE && (s = pretokenizer(f, &spec.split_regex, err))) goto done;
    spec.scores = scores;
    spec.types = types;
    spec.add_bos = true;
    spec.add_eos = false;
    spec.add_dummy_prefix = spec.kind == QN_TOK_SPM;
    if ((s = token_id(f, "tokenizer.ggml.bos_token_id", &spec.bos_id, err)) ||
        (s = token_id(f, "tokenizer.ggml.eos_token_id", &spec.eos_id, err)) ||
        (s = token_id(f, "tokenizer.ggml.unknown_token_id", &spec.unk_id, err)) ||
        (s = opt_bool(f, "tokenizer.ggml.add_bos_token", &spec.add_bos, err)) ||
        (s = opt_bool(f, "tokenizer.ggml.add_eos_token", &spec.add_eos, err)) ||
        (s = opt_bool(f, "tokenizer.ggml.add_space_prefix", &spec.add_dummy_prefix, err)))
        goto done;
    const int ids[3] = { spec.bos_id, spec.eos_id, spec.unk_id };
    for (int i = 0; i < 3; i++)
        if (ids[i] >= 0 && (size_t)ids[i] >= spec.n_vocab) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: special token id %d is outside the %zu-token vocabulary",
                           path, ids[i], spec.n_vocab);
            goto done;
        }
    if ((s = qn_tok_create(tok, &spec, err))) {
        qn_err_prefix(err, "%s: ", path);
        goto done;
    }
done:
    free(scores);
    free(types);
    return s;
}

/* ---- weight source ---- */

typedef struct {
    qn_gguf_file *file;
    qn_config cfg;
} gguf_source;

static void source_close(void *ctx)
{
    gguf_source *g = ctx;
    if (!g) return;
    qn_gguf_close(g->file);
    free(g);
}

static bool source_has(void *ctx, const char *hf_name)
{
    gguf_source *g = ctx;
    char name[160], rope;
    return map_name(hf_name, name, sizeof name, &rope) && qn_gguf_tensor_find(g->file, name) != NULL;
}

static qn_status source_get(void *ctx, const char *hf_name, qn_f32_tensor *out, qn_err *err)
{
    gguf_source *g = ctx;
    const char *path = qn_gguf_path(g->file);
    char name[160], rope;
    memset(out, 0, sizeof *out);
    if (!map_name(hf_name, name, sizeof name, &rope))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: no GGUF tensor corresponds to '%s'", path, hf_name);
    const qn_gguf_tensor *t = qn_gguf_tensor_find(g->file, name);
    if (!t) return qn_err_set(err, QN_ERR_FORMAT, "%s: missing tensor '%s' (for '%s')", path, name, hf_name);
    if (t->ndim > 2 && (t->ne[2] != 1 || t->ne[3] != 1))
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected 1 or 2", path, name, t->ndim);
    float *w = malloc((t->nelements + 1) * sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for tensor '%s' (%zu values)", path, name, t->nelements);
    qn_status s = qn_gguf_tensor_to_f32(g->file, t, w, err);
    if (s) { free(w); return s; }
    size_t rows = t->ndim == 1 ? (size_t)t->ne[0] : (size_t)t->ne[1], cols = t->ndim == 1 ? 1 : (size_t)t->ne[0];
    if (rope) {
        size_t heads = (size_t)(rope == 'q' ? g->cfg.n_heads : g->cfg.n_kv_heads), hd = (size_t)g->cfg.head_dim;
        if (rows != heads * hd) {
            free(w);
            return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %zu rows, expected %zu heads x %zu",
                              path, name, rows, heads, hd);
        }
        if ((s = qn_rope_meta_to_hf(w, heads, hd, cols))) {
            free(w);
            return qn_err_set(err, s, "%s: tensor '%s': cannot reorder RoPE rows (%s)", path, name,
                              qn_status_name(s));
        }
    }
    out->data = w;
    out->owned = true;
    out->ndim = t->ndim == 1 ? 1 : 2;
    out->shape[0] = (int64_t)rows;
    out->shape[1] = t->ndim == 1 ? 1 : (int64_t)cols;
    return QN_OK;
}

qn_status qn_gguf_model_open(const char *path, qn_config *cfg, qn_weight_source *src,
                             qn_tokenizer **tok, qn_err *err)
{
    qn_status s;
    qn_tokenizer *t = NULL;
    memset(src, 0, sizeof *src);
    if (tok) *tok = NULL;
    gguf_source *g = calloc(1, sizeof *g);
    if (!g) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    if ((s = qn_gguf_open(&g->file, path, err)) ||
        (s = qn_gguf_llama_config(g->file, &g->cfg, err)))
        goto fail;
    if (tok && (s = qn_gguf_llama_tokenizer(g->file, &t, err))) goto fail;
    *cfg = g->cfg;
    *src = (qn_weight_source){ .get = source_get, .has = source_has, .close = source_close,
                               .ctx = g, .path = qn_gguf_path(g->file) };
    if (tok) *tok = t;
    return QN_OK;
fail:
    qn_tok_free(t);
    source_close(g);
    return s;
}
