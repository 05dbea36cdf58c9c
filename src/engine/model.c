/* model.c: detect a model's format, read its config, tokenizer and weights,
   check every shape against the config, and wire the layers up. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/ggml_numerics.h"
#include "engine/forward.h"
#include "engine/llama2c.h"
#include "engine/llama_layout.h"
#include "engine/model_gguf.h"
#include "engine/model_hf.h"
#include "engine/qmethod.h"
#include "kernels/device.h"

static bool is_gguf(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

/* A llama2.c checkpoint keeps its tokenizer beside it: tokenizer.bin or tok<vocab>.bin. */
static qn_status find_llama2c_tokenizer(const char *model_path, int vocab, char *out, size_t cap, qn_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    char name[64];
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    const char *candidates[] = { name, "tokenizer.bin" };
    for (size_t i = 0; i < 2; i++)
        if (qn_path_join(out, cap, dir, candidates[i]) && qn_path_exists(out)) return QN_OK;
    return qn_err_set(err, QN_ERR_IO, "%s: no tokenizer given and neither %s nor tokenizer.bin beside it",
                      model_path, name);
}

static qn_status open_tokenizer(const char *path, int vocab, qn_tokenizer **tok, qn_err *err)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return qn_tok_load_hf(tok, path, err);
    return qn_tok_load_llama2c(tok, path, vocab, err);
}

qn_status qn_model_source_open(const char *path, qn_config *cfg, qn_weight_source *src,
                               qn_tokenizer **tok, qn_source_kind *kind, qn_err *err)
{
    memset(src, 0, sizeof *src);
    if (tok) *tok = NULL;
    if (!qn_path_exists(path)) return qn_err_set(err, QN_ERR_IO, "%s: no such file or directory", path);
    qn_status s;
    if (qn_path_is_dir(path)) {
        *kind = QN_SRC_HF;
        if ((s = qn_hf_model_open(path, cfg, src, err))) return s;
        if (tok) {
            char tj[4200];
            qn_path_join(tj, sizeof tj, path, "tokenizer.json");
            if (qn_path_exists(tj)) s = qn_tok_load_hf(tok, tj, err);
        }
    } else if (is_gguf(path)) {
        *kind = QN_SRC_GGUF;
        qn_tokenizer *t = NULL;
        if ((s = qn_gguf_model_open(path, cfg, src, &t, err))) return s;
        if (tok) *tok = t; else qn_tok_free(t);
    } else if (qn_llama2c_sniff(path)) {
        *kind = QN_SRC_LLAMA2C;
        if ((s = qn_llama2c_open(path, cfg, src, err))) return s;
    } else {
        return qn_err_set(err, QN_ERR_FORMAT,
                          "%s: not a Hugging Face model folder, a GGUF file or a llama2.c checkpoint", path);
    }
    if (s && src->close) { src->close(src->ctx); memset(src, 0, sizeof *src); }
    return s;
}

static qn_status keep(qn_model *m, qn_f32_tensor *t, qn_err *err)
{
    if (!t->owned) return QN_OK;
    float **grown = realloc(m->owned, (m->n_owned + 1) * sizeof *grown);
    if (!grown) { qn_f32_tensor_done(t); return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path); }
    m->owned = grown;
    m->owned[m->n_owned++] = t->data;
    t->owned = false;
    return QN_OK;
}

static qn_status check_finite(const qn_model *m, const char *name, const float *x, size_t n, qn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != x[i] || x[i] - x[i] != 0.0f)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' holds a NaN or infinity at element %zu",
                              m->path, name, i);
    return QN_OK;
}

/* Fetches one tensor, checks its shape against the config and stores the pointer. */
static qn_status load_tensor(qn_model *m, const qn_tensor_desc *d, const float **dst, qn_err *err)
{
    qn_f32_tensor t = {0};
    qn_status s = m->src.get(m->src.ctx, d->name, &t, err);
    if (s) return s;
    int64_t want1 = d->ndim == 2 ? d->shape[1] : 1, got1 = t.ndim == 2 ? t.shape[1] : 1;
    if (t.ndim != d->ndim || t.shape[0] != d->shape[0] || got1 != want1) {
        qn_f32_tensor_done(&t);
        if (d->ndim == 2)
            return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld], config.json implies [%lld, %lld]",
                              m->path, d->name, (long long)t.shape[0], (long long)got1,
                              (long long)d->shape[0], (long long)d->shape[1]);
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %d dims and %lld rows, config.json implies [%lld]",
                          m->path, d->name, t.ndim, (long long)t.shape[0], (long long)d->shape[0]);
    }
    size_t numel = (size_t)t.shape[0] * (size_t)got1;
    if ((s = check_finite(m, d->name, t.data, numel, err))) { qn_f32_tensor_done(&t); return s; }
    *dst = t.data;
    return keep(m, &t, err);
}

qn_linear *qn_model_linear(qn_model *m, int role, int layer)
{
    if (role == QN_T_LM_HEAD) return &m->lm_head;
    if (layer < 0 || layer >= m->cfg.n_layers) return NULL;
    qn_layer *l = &m->layers[layer];
    switch (role) {
    case QN_T_WQ: return &l->wq;
    case QN_T_WK: return &l->wk;
    case QN_T_WV: return &l->wv;
    case QN_T_WO: return &l->wo;
    case QN_T_GATE: return &l->w_gate;
    case QN_T_UP: return &l->w_up;
    case QN_T_DOWN: return &l->w_down;
    default: return NULL;
    }
}

/* config.json's quantization_config, when the folder holds a quantized model. */
static qn_status read_quant_config(qn_model *m, qn_quant_config *q, qn_err *err)
{
    if (m->source != QN_SRC_HF) return QN_OK;
    return qn_qmethod_config_read(m->path, &m->quantized, m->quant_method, sizeof m->quant_method, q, err);
}

static qn_status raw_find(void *ctx, const char *name, const qn_st_tensor **t, const char **file, qn_err *err)
{
    const qn_weight_source *src = ctx;
    return src->raw(src->ctx, name, t, file, err);
}

static bool raw_has(void *ctx, const char *name)
{
    const qn_weight_source *src = ctx;
    return src->has(src->ctx, name);
}

/* A linear on the compressed kernels, reading the mapped tensors in place. */
static qn_status load_packed(qn_model *m, const qn_quant_config *q, const qn_tensor_desc *d, const char *base,
                             qn_raw_lookup lk, qn_err *err)
{
    void **grown = realloc(m->packed, (m->n_packed + 1) * sizeof *grown);
    if (!grown) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path);
    m->packed = grown;
    qn_linear *lin = qn_model_linear(m, d->role, d->layer);
    void *keep = NULL;
    qn_status s = qn_qmethod_packed(q, lk, base, (size_t)d->shape[0], (size_t)d->shape[1], lin, &keep, err);
    if (s == QN_OK) m->packed[m->n_packed++] = keep;
    return s;
}

/* A linear stored quantized: on its kernel when there is one, else dequantized once here. */
static qn_status load_quantized(qn_model *m, const qn_quant_config *q, const qn_tensor_desc *d, const float **dst,
                                bool dequantize, qn_err *err)
{
    char base[96];
    snprintf(base, sizeof base, "%s", d->name);
    base[strlen(base) - strlen(".weight")] = 0;
    qn_raw_lookup lk = { .find = raw_find, .has = raw_has, .ctx = &m->src };
    if (!m->src.raw || !qn_qstore_has(lk, base))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' is missing (neither dense nor quantized)", m->path, d->name);
    if (!dequantize && d->role != QN_T_LM_HEAD) {
        qn_status s = load_packed(m, q, d, base, lk, err);
        if (s == QN_OK) { *dst = NULL; return QN_OK; }
        if (s != QN_ERR_UNSUPPORTED) return qn_err_prefix_path(err, m->path);
    }
    size_t n = (size_t)d->shape[0] * (size_t)d->shape[1];
    float *W = malloc(n * sizeof *W);
    if (!W) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path);
    qn_status s = qn_qmethod_dequantize(q, lk, base, (size_t)d->shape[0], (size_t)d->shape[1], W, err);
    if (!s) s = check_finite(m, d->name, W, n, err);
    qn_f32_tensor t = { .data = W, .owned = true };
    if (s) { free(W); return qn_err_prefix_path(err, m->path); }
    *dst = W;
    return keep(m, &t, err);
}

static qn_status load_weights(qn_model *m, qn_event_sink sink, bool dequantize, qn_err *err)
{
    const qn_config *c = &m->cfg;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path);
    if (!c->tie_embeddings && !m->src.has(m->src.ctx, "lm_head.weight"))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor 'lm_head.weight' is missing and tie_word_embeddings is false",
                          m->path);
    qn_quant_config q;
    qn_status s = read_quant_config(m, &q, err);
    if (s) return s;
    size_t n = qn_llama_n_tensors(c);
    for (size_t i = 0; i < n; i++) {
        qn_tensor_desc d = qn_llama_tensor(c, i);
        const float *data = NULL;
        bool dense = !m->quantized || m->src.has(m->src.ctx, d.name);
        s = dense ? load_tensor(m, &d, &data, err) : load_quantized(m, &q, &d, &data, dequantize, err);
        if (s) return s;
        qn_linear *lin = qn_model_linear(m, d.role, d.layer);
        if (lin && !data) {
            /* already a compressed linear */
        } else if (lin) {
            *lin = qn_linear_f32(data, (size_t)d.shape[0], (size_t)d.shape[1]);
        } else if (d.role == QN_T_EMBED) {
            m->embed = data;
        } else if (d.role == QN_T_FINAL_NORM) {
            m->final_norm = data;
        } else if (d.role == QN_T_ATTN_NORM) {
            m->layers[d.layer].attn_norm = data;
        } else if (d.role == QN_T_FFN_NORM) {
            m->layers[d.layer].ffn_norm = data;
        }
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "load", .layer = d.layer,
                                   .n_layers = c->n_layers, .done = (int64_t)i + 1, .total = (int64_t)n });
    }
    if (c->tie_embeddings) m->lm_head = qn_linear_f32(m->embed, (size_t)c->vocab_size, (size_t)c->dim);
    return QN_OK;
}

qn_status qn_model_open(qn_model **out, const char *path, const qn_model_opts *opts, qn_err *err)
{
    *out = NULL;
    qn_model_opts none = {0};
    if (!opts) opts = &none;
    qn_model *m = calloc(1, sizeof *m);
    if (!m) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(m->path, sizeof m->path, "%s", path);
    qn_status s = qn_model_source_open(path, &m->cfg, &m->src, &m->tok, &m->source, err);
    if (s) goto fail;
    if (opts->tokenizer) {
        qn_tok_free(m->tok);
        m->tok = NULL;
        if ((s = open_tokenizer(opts->tokenizer, m->cfg.vocab_size, &m->tok, err))) goto fail;
    } else if (!m->tok && m->source == QN_SRC_LLAMA2C) {
        char tp[4200];
        if ((s = find_llama2c_tokenizer(path, m->cfg.vocab_size, tp, sizeof tp, err))) goto fail;
        if ((s = qn_tok_load_llama2c(&m->tok, tp, m->cfg.vocab_size, err))) goto fail;
    } else if (!m->tok) {
        s = qn_err_set(err, QN_ERR_IO, "%s: no tokenizer.json in the model folder", path);
        goto fail;
    }
    if (qn_tok_vocab_size(m->tok) > (size_t)m->cfg.vocab_size) {
        s = qn_err_set(err, QN_ERR_SHAPE, "%s: the tokenizer has %zu tokens but the model's vocabulary is %d",
                       path, qn_tok_vocab_size(m->tok), m->cfg.vocab_size);
        goto fail;
    }
    if ((s = load_weights(m, opts->sink, opts->dequantize, err))) goto fail;
    if (qn_kernels_device() == QN_DEVICE_CUDA && (s = qn_forward_upload(m, err))) goto fail;
    m->ctx_limit = (size_t)m->cfg.max_seq_len;
    *out = m;
    return QN_OK;
fail:
    qn_model_close(m);
    return s;
}

void qn_model_extend_ctx(qn_model *m, size_t n)
{
    if (n > m->ctx_limit) m->ctx_limit = n;
}

void qn_model_close(qn_model *m)
{
    if (!m) return;
    qn_forward_release(m);   /* before the linears: it may share their GPU plans */
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++)
        for (int role = QN_T_WQ; role <= QN_T_DOWN; role++) {
            qn_linear *lin = qn_model_linear(m, role, l);
            if (lin) qn_linear_done(lin);
        }
    qn_ggml_numerics_free(m->ggml);
    for (size_t i = 0; i < m->n_packed; i++) free(m->packed[i]);
    free(m->packed);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    qn_tok_free(m->tok);
    if (m->src.close) m->src.close(m->src.ctx);
    free(m);
}
