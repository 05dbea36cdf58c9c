/* finetune.c: Adam over a block's codebooks, scales and norms (see finetune.h). */
#include "engine/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calib.h"
#include "engine/dtype.h"
#include "engine/llama_layout.h"
#include "engine/speed.h"
#include "kernels/linear.h"

qn_finetune_opts qn_finetune_opts_default(void)
{
    return (qn_finetune_opts){ .max_epochs = 10, .lr = 1e-4, .beta1 = 0.9, .beta2 = 0.95, .batch_size = 8,
                               .rel_tol = 0.01, .seed = 0 };
}

qn_status qn_finetune_opts_check(const qn_finetune_opts *o, qn_err *err)
{
    if (o->max_epochs < 0) return qn_err_set(err, QN_ERR_ARG, "--finetune-max-epochs %d: expected >= 0", o->max_epochs);
    if (!(o->lr > 0) || !isfinite(o->lr)) return qn_err_set(err, QN_ERR_ARG, "--finetune-lr %g: expected > 0", o->lr);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return qn_err_set(err, QN_ERR_ARG, "Adam betas %g, %g: expected in [0, 1)", o->beta1, o->beta2);
    if (o->batch_size < 1) return qn_err_set(err, QN_ERR_ARG, "--finetune-batch-size: expected >= 1");
    if (!(o->rel_tol >= 0) || !isfinite(o->rel_tol))
        return qn_err_set(err, QN_ERR_ARG, "--finetune-relative-mse-tolerance %g: expected >= 0", o->rel_tol);
    return QN_OK;
}

/* splitmix64, for the epoch order. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sum of squared errors of the block over every sequence (no gradients). */
static double total_sse(qn_bg *w, const qn_bg_block *b, const float *X, const float *Y, size_t n_seq, size_t len,
                        size_t D)
{
    qn_bg_load(w, b);
    double sse = 0.0;
    for (size_t s = 0; s < n_seq; s++) sse += qn_bg_step(w, b, X + s * len * D, Y + s * len * D, len, 0.0f, NULL);
    return sse;
}

/* Codebooks and scales as fp16 stores them; norms stay f32. */
static void round_f16(qn_bg_block *b)
{
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        qn_bg_linear *L = &b->lin[l];
        size_t ncb = (size_t)L->M * L->K * L->g;
        for (size_t i = 0; i < ncb; i++) L->codebooks[i] = qn_f16_to_f32(qn_f32_to_f16(L->codebooks[i]));
        for (size_t i = 0; i < L->d_out; i++) L->scales[i] = qn_f16_to_f32(qn_f32_to_f16(L->scales[i]));
    }
}

/* One Adam update (Kingma & Ba, bias-corrected) of p from g at step t. */
static void adam(const qn_finetune_opts *o, float *p, const float *g, float *m1, float *m2, size_t n, long t)
{
    double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, step = (float)(o->lr / c1), ic2 = (float)(1.0 / c2);
    for (size_t i = 0; i < n; i++) {
        m1[i] = b1 * m1[i] + (1.0f - b1) * g[i];
        m2[i] = b2 * m2[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m1[i] / (sqrtf(m2[i] * ic2) + 1e-8f);
    }
}

/* Adam's buffers and the workspace of one tuning run. */
typedef struct {
    qn_bg *w;
    float *grad, *m1, *m2, *best;   /* (n_params) */
    size_t *order;                  /* (n_seq) this epoch's order of the sequences */
} tuner;

/* The epochs (see finetune.h); b's parameters end as the best seen, rounded. */
static qn_status train(tuner *tu, qn_bg_block *b, const qn_config *c, const float *X, const float *Y, size_t n_seq,
                       size_t len, const qn_finetune_opts *o, qn_event_sink sink, const atomic_bool *cancel,
                       qn_finetune_result *res, qn_err *err)
{
    size_t D = (size_t)c->dim, n_el = n_seq * len * D, np = qn_bg_n_params(c, b->lin);
    float *p = b->attn_norm;   /* the flat vector starts there (qn_bg_bind) */
    double yy = 0.0;
    for (size_t i = 0; i < n_el; i++) yy += (double)Y[i] * Y[i];
    if (yy <= 0) yy = 1.0;
    memcpy(tu->best, p, np * sizeof *p);
    double best_sse = total_sse(tu->w, b, X, Y, n_seq, len, D), prev = best_sse;
    res->mse_before = best_sse / (double)n_el;
    res->rel_before = best_sse / yy;
    uint64_t rng = o->seed ^ 0x66696e6574756e65ull;
    long t = 0;
    float weight = (float)(1.0 / ((double)o->batch_size * (double)len * (double)D));
    for (size_t i = 0; i < n_seq; i++) tu->order[i] = i;
    for (int epoch = 1; epoch <= o->max_epochs; epoch++) {
        for (size_t i = n_seq; i > 1; i--) {
            size_t j = (size_t)(next_random(&rng) % i), tmp = tu->order[i - 1];
            tu->order[i - 1] = tu->order[j];
            tu->order[j] = tmp;
        }
        for (size_t first = 0; first < n_seq; first += o->batch_size) {
            if (cancel && atomic_load(cancel)) return qn_err_set(err, QN_ERR_CANCELLED, "fine-tuning cancelled");
            size_t end = first + o->batch_size < n_seq ? first + o->batch_size : n_seq;
            qn_bg_load(tu->w, b);
            for (size_t k = first; k < end; k++)
                qn_bg_step(tu->w, b, X + tu->order[k] * len * D, Y + tu->order[k] * len * D, len, weight, NULL);
            qn_bg_gradient(tu->w, b, tu->grad);
            adam(o, p, tu->grad, tu->m1, tu->m2, np, ++t);
        }
        double sse = total_sse(tu->w, b, X, Y, n_seq, len, D);
        if (!isfinite(sse))
            return qn_err_set(err, QN_ERR_ARG, "fine-tuning diverged (loss %g): lower --finetune-lr", sse);
        res->epochs = epoch;
        if (sse < best_sse) { best_sse = sse; res->best_epoch = epoch; memcpy(tu->best, p, np * sizeof *p); }
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "finetune", .done = epoch,
                                   .total = o->max_epochs, .value = sse / yy });
        bool slow = sse > prev * (1.0 - o->rel_tol);
        prev = sse;
        if (slow) break;
    }
    memcpy(p, tu->best, np * sizeof *p);
    round_f16(b);
    double after = total_sse(tu->w, b, X, Y, n_seq, len, D);
    res->mse_after = after / (double)n_el;
    res->rel_after = after / yy;
    return QN_OK;
}

qn_status qn_finetune_block(qn_bg_block *b, const qn_config *c, const float *X, const float *Y, size_t n_seq,
                            size_t len, const qn_finetune_opts *o, qn_event_sink sink, const atomic_bool *cancel,
                            qn_finetune_result *res, qn_err *err)
{
    double t0 = qn_now();
    memset(res, 0, sizeof *res);
    qn_status s = qn_finetune_opts_check(o, err);
    if (s) return s;
    size_t np = qn_bg_n_params(c, b->lin);
    tuner tu = { .grad = malloc(np * sizeof(float)), .m1 = calloc(np, sizeof(float)), .m2 = calloc(np, sizeof(float)),
                 .best = malloc(np * sizeof(float)), .order = malloc(n_seq * sizeof(size_t)) };
    if (!tu.grad || !tu.m1 || !tu.m2 || !tu.best || !tu.order) s = qn_err_set(err, QN_ERR_NOMEM, "out of memory for fine-tuning");
    if (!s) s = qn_bg_create(&tu.w, c, len, err);
    if (!s) {
        /* Many small matmuls (one sequence, one head): a threaded BLAS spends more
           time waking its threads than computing. Measured on a stories260K block
           with both cores busy: one thread 0.44 s, two 8.3 s. */
        int threads = qn_kernels_threads();
        qn_kernels_set_threads(1);
        s = train(&tu, b, c, X, Y, n_seq, len, o, sink, cancel, res, err);
        qn_kernels_set_threads(threads);
    }
    qn_bg_free(tu.w);
    free(tu.grad); free(tu.m1); free(tu.m2); free(tu.best); free(tu.order);
    res->seconds = qn_now() - t0;
    return s;
}

/* ---- the AQLM checkpoint of one block ---- */

static const qn_tensor_role k_roles[QN_BG_N_LINEARS] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };

static void base_name(qn_tensor_role role, int layer, char *buf, size_t cap)
{
    qn_llama_tensor_name(role, layer, buf, cap);
    buf[strlen(buf) - strlen(".weight")] = 0;
}

/* The store's entry "<base>.<part>"; the set owns its buffer (quantize_aqlm added it with take). */
static qn_st_entry *entry(qn_tensor_set *store, const char *base, const char *part, qn_dtype dt, size_t n,
                          qn_err *err)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", base, part);
    qn_st_entry *e = (qn_st_entry *)qn_tensor_set_find(store, name);
    size_t count = 1;
    for (int d = 0; e && d < e->ndim; d++) count *= (size_t)e->shape[d];
    if (!e || e->dtype != dt || count != n) {
        qn_err_set(err, QN_ERR_FORMAT, "%s: not stored as AQLM with the configured shape", name);
        return NULL;
    }
    return e;
}

/* m's norm of this role now reads a copy of v that m owns. */
static qn_status replace_norm(qn_model *m, qn_tensor_role role, int layer, const float *v, qn_err *err)
{
    size_t D = (size_t)m->cfg.dim;
    float *copy = malloc(D * sizeof *copy);
    float **grown = copy ? realloc(m->owned, (m->n_owned + 1) * sizeof *grown) : NULL;
    if (!grown) { free(copy); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
    memcpy(copy, v, D * sizeof *copy);
    m->owned = grown;
    m->owned[m->n_owned++] = copy;
    if (role == QN_T_ATTN_NORM) m->layers[layer].attn_norm = copy;
    else m->layers[layer].ffn_norm = copy;
    return QN_OK;
}

qn_status qn_finetune_restore_norms(qn_model *m, int layer, const qn_st_file *f, qn_err *err)
{
    static const qn_tensor_role roles[2] = { QN_T_ATTN_NORM, QN_T_FFN_NORM };
    for (int i = 0; i < 2; i++) {
        char name[96];
        qn_llama_tensor_name(roles[i], layer, name, sizeof name);
        const qn_st_tensor *t = qn_st_find(f, name);
        if (!t) continue;
        if (t->dtype != QN_DTYPE_F32 || t->ndim != 1 || t->shape[0] != m->cfg.dim)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: expected F32 (%d)", name, m->cfg.dim);
        qn_status s = replace_norm(m, roles[i], layer, t->data, err);
        if (s) return s;
    }
    return QN_OK;
}

/* Writes the tuned parameters where they belong: fp16 into the store, dense into m, norms into both. */
static qn_status commit(qn_model *m, int layer, qn_tensor_set *store, const qn_bg_block *b, qn_st_entry **cb,
                        qn_st_entry **sc, qn_err *err)
{
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        const qn_bg_linear *L = &b->lin[l];
        uint16_t *c16 = (uint16_t *)cb[l]->data, *s16 = (uint16_t *)sc[l]->data;
        for (size_t i = 0; i < (size_t)L->M * L->K * L->g; i++) c16[i] = qn_f32_to_f16(L->codebooks[i]);
        for (size_t i = 0; i < L->d_out; i++) s16[i] = qn_f32_to_f16(L->scales[i]);
        float *W = malloc(L->d_out * L->d_in * sizeof *W);
        if (!W) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        qn_bg_dequantize(L, W);
        qn_status s = qn_model_replace_linear(m, k_roles[l], layer, W, err);
        if (s) { free(W); return s; }
    }
    static const qn_tensor_role norms[2] = { QN_T_ATTN_NORM, QN_T_FFN_NORM };
    for (int i = 0; i < 2; i++) {
        const float *v = i == 0 ? b->attn_norm : b->ffn_norm;
        char name[96];
        qn_llama_tensor_name(norms[i], layer, name, sizeof name);
        int64_t shape[1] = { m->cfg.dim };
        qn_status s = qn_tensor_set_copy(store, name, QN_DTYPE_F32, 1, shape, v, (size_t)m->cfg.dim * sizeof *v, err);
        if (!s) s = replace_norm(m, norms[i], layer, v, err);
        if (s) return s;
    }
    return QN_OK;
}

/* Progress events of a block's tuning carry the block's index. */
typedef struct { qn_event_sink to; int layer; } layer_stamp;

static void stamp_layer(void *ctx, const qn_event *ev)
{
    const layer_stamp *st = ctx;
    qn_event e = *ev;
    e.layer = st->layer;
    qn_emit(st->to, &e);
}

qn_status qn_finetune_aqlm_block(qn_model *m, int layer, const qn_quant_config *q, qn_tensor_set *store,
                                 const float *X, const float *Y, size_t n_seq, size_t len,
                                 const qn_finetune_opts *o, qn_event_sink sink, const atomic_bool *cancel,
                                 qn_finetune_result *res, qn_err *err)
{
    layer_stamp stamp = { sink, layer };
    const qn_config *c = &m->cfg;
    size_t K = (size_t)1 << q->codebook_bits, M = (size_t)q->codebooks, g = q->group;
    qn_bg_linear lin[QN_BG_N_LINEARS];
    qn_st_entry *cb[QN_BG_N_LINEARS], *sc[QN_BG_N_LINEARS];
    uint16_t *codes[QN_BG_N_LINEARS] = {0};
    float *flat = NULL;
    qn_status s = QN_OK;
    for (int l = 0; l < QN_BG_N_LINEARS && !s; l++) {
        const qn_linear *ml = qn_model_linear(m, k_roles[l], layer);
        char base[96];
        base_name(k_roles[l], layer, base, sizeof base);
        size_t G = ml->d_in / g, n_codes = ml->d_out * G * M;
        qn_st_entry *ce = entry(store, base, "codes", q->codebook_bits <= 8 ? QN_DTYPE_I8 : QN_DTYPE_I16, n_codes, err);
        if (!ce || !(cb[l] = entry(store, base, "codebooks", QN_DTYPE_F16, M * K * g, err)) ||
            !(sc[l] = entry(store, base, "scales", QN_DTYPE_F16, ml->d_out, err))) { s = QN_ERR_FORMAT; break; }
        if (!(codes[l] = malloc(n_codes * sizeof *codes[l]))) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); break; }
        /* stored signed (aqlm.utils.pack_int_data); the code is the value mod 2^B */
        for (size_t i = 0; i < n_codes; i++)
            codes[l][i] = (uint16_t)((q->codebook_bits <= 8 ? (int)((const int8_t *)ce->data)[i]
                                                            : (int)((const int16_t *)ce->data)[i]) & (int)(K - 1));
        lin[l] = (qn_bg_linear){ .d_out = ml->d_out, .d_in = ml->d_in, .g = g, .M = (int)M, .K = K, .codes = codes[l] };
    }
    qn_bg_block b;
    if (!s && !(flat = malloc(qn_bg_n_params(c, lin) * sizeof *flat))) s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    if (!s) {
        qn_bg_bind(&b, c, lin, flat);
        memcpy(b.attn_norm, m->layers[layer].attn_norm, (size_t)c->dim * sizeof(float));
        memcpy(b.ffn_norm, m->layers[layer].ffn_norm, (size_t)c->dim * sizeof(float));
        for (int l = 0; l < QN_BG_N_LINEARS; l++) {
            const uint16_t *c16 = cb[l]->data, *s16 = sc[l]->data;
            for (size_t i = 0; i < M * K * g; i++) b.lin[l].codebooks[i] = qn_f16_to_f32(c16[i]);
            for (size_t i = 0; i < lin[l].d_out; i++) b.lin[l].scales[i] = qn_f16_to_f32(s16[i]);
        }
        s = qn_finetune_block(&b, c, X, Y, n_seq, len, o, (qn_event_sink){ stamp_layer, &stamp }, cancel, res, err);
    }
    if (!s) s = commit(m, layer, store, &b, cb, sc, err);
    if (!s)
        qn_emit(sink, &(qn_event){ .kind = QN_EV_BLOCK_TUNED, .stage = "finetune", .layer = layer,
                                   .n_layers = c->n_layers, .value = res->rel_after, .payload = res });
    for (int l = 0; l < QN_BG_N_LINEARS; l++) free(codes[l]);
    free(flat);
    if (s) qn_err_prefix(err, "fine-tuning block %d: ", layer);
    return s;
}
