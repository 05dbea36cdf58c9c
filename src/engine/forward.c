/* forward.c: Llama forward pass (see forward.h). A model uploaded for the
   GPU (m->gpu) runs the same pass through kernels/cuda/model.h; this file
   then only keeps the RoPE tables and the logits on the host.
   Legend: n = tokens in the batch, T = positions in the cache, D = dim,
   H = hidden_dim, hd = head_dim, nh/nkv = query/key-value heads. */
#include "engine/forward.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ggml_numerics.h"
#include "engine/llama_layout.h"
#include "kernels/cuda/model.h"

struct qn_state {
    size_t max_ctx, max_batch;
    size_t q_dim, kv_dim;
    float *x;          /* (max_batch, D) residual stream */
    float *xb;         /* (max_batch, D) normalised input */
    float *q;          /* (max_batch, q_dim) */
    float *k, *v;      /* (max_batch, kv_dim) */
    float *att;        /* (max_batch, q_dim) attention output */
    float *xb2;        /* (max_batch, D) projection output */
    float *hb, *hb2;   /* (max_batch, H) */
    float *scores;     /* (threads, max_ctx) */
    float *key_cache;  /* (n_layers, max_ctx, kv_dim) */
    float *val_cache;  /* (n_layers, max_ctx, kv_dim) */
    float *rope_cos;   /* (max_ctx, hd/2) */
    float *rope_sin;   /* (max_ctx, hd/2) */
    float *logits;     /* (max_batch, vocab) */
    float *ggml_x;     /* (max_batch, max(D, H, q_dim)) a linear's input as llama.cpp rounds it; NULL when f32 */
    float *ggml_corr;  /* (max_batch, max(D, H, q_dim) / 32) Q8_1 block-sum corrections */
    int    n_threads;
    qn_cu_state *gpu;  /* the KV cache and activations on the GPU when m->gpu */
};

/* HF transformers' _compute_default/linear/llama3_rope_parameters. */
void qn_rope_inv_freq(const qn_config *c, double *inv_freq)
{
    size_t half = (size_t)c->head_dim / 2;
    for (size_t j = 0; j < half; j++) {
        double f = 1.0 / pow((double)c->rope_theta, (double)(2 * j) / (double)c->head_dim);
        if (c->rope_scaling == QN_ROPE_SCALING_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_scaling == QN_ROPE_SCALING_LLAMA3) {
            double low_wavelen = c->rope_orig_max_pos / c->rope_low_freq_factor;
            double high_wavelen = c->rope_orig_max_pos / c->rope_high_freq_factor;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f /= c->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (c->rope_orig_max_pos / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[j] = f;
    }
}

static qn_status rope_tables(qn_state *s, const qn_config *c, qn_err *err)
{
    size_t half = (size_t)c->head_dim / 2;
    double *inv = malloc(half * sizeof *inv);
    if (!inv) return qn_err_set(err, QN_ERR_NOMEM, "out of memory for RoPE tables");
    qn_rope_inv_freq(c, inv);
    for (size_t p = 0; p < s->max_ctx; p++)
        for (size_t j = 0; j < half; j++) {
            double a = (double)p * inv[j];
            s->rope_cos[p * half + j] = (float)cos(a);
            s->rope_sin[p * half + j] = (float)sin(a);
        }
    free(inv);
    return QN_OK;
}

qn_status qn_state_create(qn_state **out, const qn_model *m, size_t max_ctx, size_t max_batch, qn_err *err)
{
    const qn_config *c = &m->cfg;
    *out = NULL;
    if (max_ctx == 0 || max_ctx > m->ctx_limit)
        return qn_err_set(err, QN_ERR_ARG, "%s: context %zu is outside 1..%zu (max_position_embeddings %d%s)",
                          m->path, max_ctx, m->ctx_limit, c->max_seq_len,
                          m->ctx_limit > (size_t)c->max_seq_len ? ", extended" : "");
    if (max_batch == 0) max_batch = 1;
    if (max_batch > max_ctx) max_batch = max_ctx;
    qn_state *s = calloc(1, sizeof *s);
    if (!s) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    s->max_ctx = max_ctx;
    s->max_batch = max_batch;
    s->q_dim = (size_t)c->n_heads * c->head_dim;
    s->kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    s->n_threads = omp_get_max_threads();
    size_t B = max_batch, D = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t half = (size_t)c->head_dim / 2;
    if (m->gpu) B = L = 0;   /* on the GPU: only RoPE tables and logits live here */
    struct { float **p; size_t n; } bufs[] = {
        { &s->x, B * D }, { &s->xb, B * D }, { &s->q, B * s->q_dim }, { &s->k, B * s->kv_dim },
        { &s->v, B * s->kv_dim }, { &s->att, B * s->q_dim }, { &s->xb2, B * D }, { &s->hb, B * H },
        { &s->hb2, B * H }, { &s->scores, (size_t)s->n_threads * max_ctx },
        { &s->key_cache, L * max_ctx * s->kv_dim }, { &s->val_cache, L * max_ctx * s->kv_dim },
        { &s->rope_cos, max_ctx * half }, { &s->rope_sin, max_ctx * half },
        { &s->logits, max_batch * (size_t)c->vocab_size },
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i].p = malloc((bufs[i].n ? bufs[i].n : 1) * sizeof(float));
        if (!*bufs[i].p) {
            qn_state_free(s);
            return qn_err_set(err, QN_ERR_NOMEM, "out of memory for the KV cache and scratch (context %zu, batch %zu)",
                              max_ctx, max_batch);
        }
    }
    if (m->ggml) {
        size_t widest = D > H ? D : H;
        if (s->q_dim > widest) widest = s->q_dim;
        s->ggml_x = malloc(B * widest * sizeof(float));
        s->ggml_corr = malloc(B * (widest / 32 + 1) * sizeof(float));
        if (!s->ggml_x || !s->ggml_corr) {
            qn_state_free(s);
            return qn_err_set(err, QN_ERR_NOMEM, "out of memory for scratch (batch %zu)", max_batch);
        }
    }
    qn_status st = rope_tables(s, c, err);
    if (!st && m->gpu) st = qn_cu_state_create(&s->gpu, m->gpu, max_ctx, max_batch, s->rope_cos, s->rope_sin, err);
    if (st) { qn_state_free(s); return st; }
    *out = s;
    return QN_OK;
}

void qn_state_free(qn_state *s)
{
    if (!s) return;
    float *bufs[] = { s->x, s->xb, s->q, s->k, s->v, s->att, s->xb2, s->hb, s->hb2, s->scores,
                      s->key_cache, s->val_cache, s->rope_cos, s->rope_sin, s->logits, s->ggml_x, s->ggml_corr };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    qn_cu_state_free(s->gpu);
    free(s);
}

/* o = w * x / sqrt(mean(x^2) + eps), row by row.  x, o: (n, D). */
static void rmsnorm(float *o, const float *x, const float *w, size_t n, size_t D, float eps)
{
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * D;
        float *orow = o + t * D;
        float ss = 0.0f;
        for (size_t i = 0; i < D; i++) ss += xr[i] * xr[i];
        float inv = 1.0f / sqrtf(ss / (float)D + eps);
        for (size_t i = 0; i < D; i++) orow[i] = w[i] * (inv * xr[i]);
    }
}

/* Rotate-half RoPE on n_heads heads of one token at position pos. v: (n_heads * hd). */
static void rope(float *v, size_t n_heads, size_t hd, const float *cos_p, const float *sin_p)
{
    size_t half = hd / 2;
    for (size_t h = 0; h < n_heads; h++) {
        float *x = v + h * hd;
        for (size_t j = 0; j < half; j++) {
            float x1 = x[j], x2 = x[j + half];
            x[j] = x1 * cos_p[j] - x2 * sin_p[j];
            x[j + half] = x2 * cos_p[j] + x1 * sin_p[j];
        }
    }
}

/* <x, y> over n floats in 8 independent partial sums, which the compiler
   vectorises (a single running sum it may not reorder, and stays scalar). */
static float dot8(const float *x, const float *y, size_t n)
{
    float acc[8] = { 0 };
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (size_t u = 0; u < 8; u++) acc[u] += x[j + u] * y[j + u];
    float d = 0.0f;
    for (; j < n; j++) d += x[j] * y[j];
    for (size_t u = 0; u < 8; u++) d += acc[u];
    return d;
}

/* <x, y> summed left to right: the order the llama.cpp comparison mode was
   matched with (its greedy tokens depend on the last bits). */
static float dot_in_order(const float *x, const float *y, size_t n)
{
    float d = 0.0f;
    for (size_t j = 0; j < n; j++) d += x[j] * y[j];
    return d;
}

/* Causal attention of one query head of one token over cache positions 0..p.
   q: (hd); K, V: cache of this layer, (T, kv_dim), read at offset kvh*hd; out: (hd).
   The scalar dot products here took half of a ctx-512 perplexity run; BLAS
   gemv was no answer: outside the parallel loop it starts threads per call. */
static void attend(float *out, const float *q, const float *K, const float *V, size_t p, size_t kv_dim,
                   size_t kv_off, size_t hd, float *scores, bool f16_weights)
{
    float scale = 1.0f / sqrtf((float)hd);
    float max = -INFINITY;
    for (size_t i = 0; i <= p; i++) {
        float dot = (f16_weights ? dot_in_order(q, K + i * kv_dim + kv_off, hd) : dot8(q, K + i * kv_dim + kv_off, hd))
                    * scale;
        scores[i] = dot;
        if (dot > max) max = dot;
    }
    float sum = 0.0f;
    for (size_t i = 0; i <= p; i++) { scores[i] = expf(scores[i] - max); sum += scores[i]; }
    float inv = 1.0f / sum;
    for (size_t j = 0; j < hd; j++) out[j] = 0.0f;
    for (size_t i = 0; i <= p; i++) {
        const float *v = V + i * kv_dim + kv_off;
        float a = scores[i] * inv;
        if (f16_weights) a = qn_ggml_f16(a); /* llama.cpp: softmax converted to f16 for the f16 V */
        for (size_t j = 0; j < hd; j++) out[j] += a * v[j];
    }
}

/* All heads of all tokens of the batch; work split over (token, head) pairs. */
static void attention(qn_state *s, const qn_config *c, size_t layer, size_t n, size_t pos, bool f16_weights)
{
    size_t hd = (size_t)c->head_dim, nh = (size_t)c->n_heads, group = nh / (size_t)c->n_kv_heads;
    const float *K = s->key_cache + layer * s->max_ctx * s->kv_dim;
    const float *V = s->val_cache + layer * s->max_ctx * s->kv_dim;
    size_t work = n * nh * (pos + n) * hd;
    #pragma omp parallel for schedule(dynamic, 4) if (work > 200000)
    for (size_t th = 0; th < n * nh; th++) {
        size_t t = th / nh, h = th % nh;
        float *scores = s->scores + (size_t)omp_get_thread_num() * s->max_ctx;
        attend(s->att + t * s->q_dim + h * hd, s->q + t * s->q_dim + h * hd, K, V, pos + t, s->kv_dim,
               (h / group) * hd, hd, scores, f16_weights);
    }
}

/* Y = X W^T for the linear of role in layer; with llama.cpp's arithmetic, X is
   first rounded as ggml rounds it for the weight's type. */
static qn_status linear(const qn_model *m, qn_state *s, int role, size_t layer, const qn_linear *w, const float *X,
                        size_t n, float *Y, qn_err *err)
{
    const qn_ggml_numerics *g = m->ggml;
    size_t i = g ? qn_ggml_index(&m->cfg, role, layer) : 0;
    if (g && g->act[i] != QN_ACT_F32) {
        qn_ggml_round((qn_act_round)g->act[i], X, n, w->d_in, s->ggml_x, s->ggml_corr);
        X = s->ggml_x;
    }
    qn_status st = n == 1 ? qn_linear_matvec(w, X, Y, err) : qn_linear_matmul(w, X, n, Y, err);
    if (!st && g && g->mins[i]) qn_ggml_min_term(g->mins[i], s->ggml_corr, n, w->d_out, w->d_in / 32, Y);
    return st;
}

/* Reports X to the tap; true when the tap wants the block to stop here. */
static bool tap_input(qn_tap tap, qn_tap_point where, const float *X, size_t n, size_t d)
{
    if (tap.on_input) tap.on_input(tap.ctx, where, X, n, d);
    return tap.stop_after == (int)where + 1;
}

/* Status of a block that stopped at its tap point: no error, x untouched. */
#define QN_TAP_STOPPED ((qn_status)-1)

static qn_status attention_block(const qn_model *m, qn_state *s, size_t l, size_t n, size_t pos, qn_tap tap,
                                 qn_err *err)
{
    const qn_config *c = &m->cfg;
    const qn_layer *w = &m->layers[l];
    size_t D = (size_t)c->dim, hd = (size_t)c->head_dim, half = hd / 2;
    qn_status st;
    rmsnorm(s->xb, s->x, w->attn_norm, n, D, c->rms_eps);
    if (tap_input(tap, QN_TAP_QKV, s->xb, n, D)) return QN_TAP_STOPPED;
    if ((st = linear(m, s, QN_T_WQ, l, &w->wq, s->xb, n, s->q, err))) return st;
    if ((st = linear(m, s, QN_T_WK, l, &w->wk, s->xb, n, s->k, err))) return st;
    if ((st = linear(m, s, QN_T_WV, l, &w->wv, s->xb, n, s->v, err))) return st;
    float *Kc = s->key_cache + l * s->max_ctx * s->kv_dim;
    float *Vc = s->val_cache + l * s->max_ctx * s->kv_dim;
    for (size_t t = 0; t < n; t++) {
        const float *cp = s->rope_cos + (pos + t) * half, *sp = s->rope_sin + (pos + t) * half;
        rope(s->q + t * s->q_dim, (size_t)c->n_heads, hd, cp, sp);
        rope(s->k + t * s->kv_dim, (size_t)c->n_kv_heads, hd, cp, sp);
    }
    if (m->ggml) { /* llama.cpp: f16 KV cache, Q converted to f16 for the K.Q product */
        for (size_t i = 0; i < n * s->kv_dim; i++) { s->k[i] = qn_ggml_f16(s->k[i]); s->v[i] = qn_ggml_f16(s->v[i]); }
        for (size_t i = 0; i < n * s->q_dim; i++) s->q[i] = qn_ggml_f16(s->q[i]);
    }
    memcpy(Kc + pos * s->kv_dim, s->k, n * s->kv_dim * sizeof(float));
    memcpy(Vc + pos * s->kv_dim, s->v, n * s->kv_dim * sizeof(float));
    attention(s, c, l, n, pos, m->ggml != NULL);
    if (tap_input(tap, QN_TAP_O, s->att, n, s->q_dim)) return QN_TAP_STOPPED;
    if ((st = linear(m, s, QN_T_WO, l, &w->wo, s->att, n, s->xb2, err))) return st;
    for (size_t i = 0; i < n * D; i++) s->x[i] += s->xb2[i];
    return QN_OK;
}

/* SwiGLU: x += W_down (silu(W_gate xb) * (W_up xb)). */
static qn_status mlp_block(const qn_model *m, qn_state *s, size_t l, size_t n, qn_tap tap, qn_err *err)
{
    const qn_config *c = &m->cfg;
    const qn_layer *w = &m->layers[l];
    size_t D = (size_t)c->dim, H = (size_t)c->hidden_dim;
    qn_status st;
    rmsnorm(s->xb, s->x, w->ffn_norm, n, D, c->rms_eps);
    if (tap_input(tap, QN_TAP_GATE_UP, s->xb, n, D)) return QN_TAP_STOPPED;
    if ((st = linear(m, s, QN_T_GATE, l, &w->w_gate, s->xb, n, s->hb, err))) return st;
    if ((st = linear(m, s, QN_T_UP, l, &w->w_up, s->xb, n, s->hb2, err))) return st;
    for (size_t i = 0; i < n * H; i++) {
        float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
    }
    if (tap_input(tap, QN_TAP_DOWN, s->hb, n, H)) return QN_TAP_STOPPED;
    if ((st = linear(m, s, QN_T_DOWN, l, &w->w_down, s->hb, n, s->xb2, err))) return st;
    for (size_t i = 0; i < n * D; i++) s->x[i] += s->xb2[i];
    return QN_OK;
}

/* Finite weights can still overflow f32 on the way (a norm weight of 3e38):
   the first non-finite output is named rather than sampled from or scored. */
static qn_status check_finite(const float *v, size_t n, size_t width, const char *what, size_t layer, qn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            char where[48] = "";
            if (layer != (size_t)-1) snprintf(where, sizeof where, "layer %zu ", layer);
            return qn_err_set(err, QN_ERR_FORMAT, "non-finite activations: the %s%s output is %s at token %zu, "
                              "element %zu (the model's weights overflow f32)", where, what,
                              isnan(v[i]) ? "NaN" : "Inf", i / width, i % width);
        }
    return QN_OK;
}

qn_status qn_forward(const qn_model *m, qn_state *s, const int32_t *tokens, size_t n, size_t pos,
                     bool all_logits, const float **logits, qn_err *err)
{
    const qn_config *c = &m->cfg;
    size_t D = (size_t)c->dim;
    if (n == 0 || n > s->max_batch)
        return qn_err_set(err, QN_ERR_ARG, "forward: batch of %zu tokens outside 1..%zu", n, s->max_batch);
    if (pos + n > s->max_ctx)
        return qn_err_set(err, QN_ERR_ARG, "forward: positions %zu..%zu exceed the context of %zu",
                          pos, pos + n - 1, s->max_ctx);
    for (size_t t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return qn_err_set(err, QN_ERR_ARG, "forward: token id %d outside the vocabulary (%d)", tokens[t], c->vocab_size);
    qn_status st;
    if (s->gpu) {
        if ((st = qn_cu_forward(m->gpu, s->gpu, tokens, n, pos, all_logits, s->logits, err))) return st;
        *logits = s->logits;
        return QN_OK;
    }
    for (size_t t = 0; t < n; t++) memcpy(s->x + t * D, m->embed + (size_t)tokens[t] * D, D * sizeof(float));
    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        if ((st = attention_block(m, s, l, n, pos, (qn_tap){0}, err))) return qn_err_prefix(err, "layer %zu attention: ", l);
        if ((st = check_finite(s->x, n * D, D, "attention", l, err))) return st;
        if ((st = mlp_block(m, s, l, n, (qn_tap){0}, err))) return qn_err_prefix(err, "layer %zu mlp: ", l);
        if ((st = check_finite(s->x, n * D, D, "mlp", l, err))) return st;
    }
    const float *x = all_logits ? s->x : s->x + (n - 1) * D;
    size_t n_out = all_logits ? n : 1;
    rmsnorm(s->xb, x, m->final_norm, n_out, D, c->rms_eps);
    if ((st = linear(m, s, QN_T_LM_HEAD, 0, &m->lm_head, s->xb, n_out, s->logits, err))) return qn_err_prefix(err, "lm_head: ");
    if ((st = check_finite(s->xb, n_out * D, D, "final norm", (size_t)-1, err)) ||
        (st = check_finite(s->logits, n_out * (size_t)c->vocab_size, (size_t)c->vocab_size, "lm_head (logits)",
                           (size_t)-1, err)))
        return st;
    *logits = s->logits;
    return QN_OK;
}

qn_status qn_forward_block(const qn_model *m, qn_state *s, size_t layer, float *x, size_t n, qn_tap tap,
                           qn_err *err)
{
    size_t D = (size_t)m->cfg.dim;
    if (layer >= (size_t)m->cfg.n_layers)
        return qn_err_set(err, QN_ERR_ARG, "forward: layer %zu of %d", layer, m->cfg.n_layers);
    if (n == 0 || n > s->max_batch)
        return qn_err_set(err, QN_ERR_ARG, "forward: block input of %zu tokens outside 1..%zu", n, s->max_batch);
    if (s->gpu)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "forward: block-by-block runs (calibration) are CPU only; "
                          "open the model with --device cpu");
    memcpy(s->x, x, n * D * sizeof(float));
    qn_status st;
    if ((st = attention_block(m, s, layer, n, 0, tap, err)))
        return st == QN_TAP_STOPPED ? QN_OK : qn_err_prefix(err, "layer %zu attention: ", layer);
    if ((st = mlp_block(m, s, layer, n, tap, err)))
        return st == QN_TAP_STOPPED ? QN_OK : qn_err_prefix(err, "layer %zu mlp: ", layer);
    memcpy(x, s->x, n * D * sizeof(float));
    return QN_OK;
}

qn_status qn_forward_upload(qn_model *m, qn_err *err)
{
    const qn_config *c = &m->cfg;
    qn_cu_layer_desc *ld = calloc((size_t)c->n_layers, sizeof *ld);
    if (!ld) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path);
    for (int l = 0; l < c->n_layers; l++) {
        const qn_layer *w = &m->layers[l];
        ld[l] = (qn_cu_layer_desc){ .attn_norm = w->attn_norm, .ffn_norm = w->ffn_norm, .wq = &w->wq, .wk = &w->wk,
                                    .wv = &w->wv, .wo = &w->wo, .w_gate = &w->w_gate, .w_up = &w->w_up,
                                    .w_down = &w->w_down };
    }
    qn_cu_model_desc d = { .dim = c->dim, .hidden_dim = c->hidden_dim, .n_layers = c->n_layers,
                           .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                           .vocab_size = c->vocab_size, .rms_eps = c->rms_eps, .embed = m->embed,
                           .final_norm = m->final_norm, .lm_head = &m->lm_head, .layers = ld };
    qn_status s = qn_cu_model_upload(&m->gpu, &d, err);
    free(ld);
    return s ? qn_err_prefix(err, "%s: ", m->path) : QN_OK;
}

void qn_forward_release(qn_model *m)
{
    if (!m) return;
    qn_cu_model_free(m->gpu);
    m->gpu = NULL;
}
