/* calib.c: block-by-block calibration and true-sequential quantization (see calib.h). */
#include "engine/calib.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "kernels/timing.h"

/* splitmix64: a seeded stream for window positions. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

qn_status qn_calib_windows(size_t n_tokens, size_t n, size_t len, uint64_t seed, size_t eval_ctx,
                           size_t *starts, qn_err *err)
{
    uint64_t state = seed;
    if (len == 0 || n == 0) return qn_err_set(err, QN_ERR_ARG, "calibration needs at least one window of one token");
    if (eval_ctx) {
        size_t chunks = n_tokens / eval_ctx;
        if (len > eval_ctx / 2)
            return qn_err_set(err, QN_ERR_ARG, "--seqlen %zu is longer than the unscored half (%zu) of the evaluation's "
                              "%zu-token chunks", len, eval_ctx / 2, eval_ctx);
        if (chunks < n)
            return qn_err_set(err, QN_ERR_ARG, "the calibration text has %zu tokens: %zu chunks of %zu, fewer than "
                              "--nsamples %zu (need %zu tokens)", n_tokens, chunks, eval_ctx, n, n * eval_ctx);
        /* A window at the start of an eval_ctx chunk is also at the start of
           chunks of eval_ctx/2, /4, ...: it stays unscored at each of those
           contexts that holds two windows (e.g. 512 and 256 for len 128). */
        size_t unscored = eval_ctx / 2;
        while (unscored / 2 >= len) unscored /= 2;
        size_t slack = unscored - len;
        /* distinct chunks, chosen by a partial Fisher-Yates shuffle */
        size_t *order = malloc(chunks * sizeof *order);
        if (!order) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < chunks; i++) order[i] = i;
        for (size_t i = 0; i < n; i++) {
            size_t j = i + (size_t)(next_random(&state) % (chunks - i));
            size_t t = order[i]; order[i] = order[j]; order[j] = t;
            starts[i] = order[i] * eval_ctx + (slack ? (size_t)(next_random(&state) % (slack + 1)) : 0);
        }
        free(order);
        return QN_OK;
    }
    if (n_tokens < n * len)
        return qn_err_set(err, QN_ERR_ARG, "the calibration text has %zu tokens, fewer than --nsamples %zu x --seqlen %zu",
                          n_tokens, n, len);
    for (size_t i = 0; i < n; i++) starts[i] = (size_t)(next_random(&state) % (n_tokens - len + 1));
    return QN_OK;
}

qn_status qn_model_replace_linear(qn_model *m, qn_tensor_role role, int layer, float *W, qn_err *err)
{
    qn_linear *lin = role == QN_T_LM_HEAD ? NULL : qn_model_linear(m, role, layer);
    if (!lin) return qn_err_set(err, QN_ERR_ARG, "role %d is not a block linear", (int)role);
    float **grown = realloc(m->owned, (m->n_owned + 1) * sizeof *grown);
    if (!grown) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    m->owned = grown;
    m->owned[m->n_owned++] = W;
    *lin = qn_linear_f32(W, lin->d_out, lin->d_in);
    return QN_OK;
}

typedef struct {
    qn_tap_point want;
    float *H;        /* (d, d), upper triangle accumulated */
    size_t d, rows;
} hessian_acc;

static void accumulate(void *ctx, qn_tap_point where, const float *X, size_t n, size_t d)
{
    hessian_acc *a = ctx;
    if (where != a->want) return;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0f, X, (int)d, 1.0f, a->H, (int)d);
    a->rows += n;
}

/* H = (2/rows) X^T X over every window, with the block's current weights. */
static qn_status collect_hessian(const qn_model *m, qn_state *st, int layer, const qn_calib_plan *plan,
                                 const float *X, float *scratch, hessian_acc *acc, qn_err *err)
{
    size_t D = (size_t)m->cfg.dim, L = plan->len;
    memset(acc->H, 0, acc->d * acc->d * sizeof *acc->H);
    acc->rows = 0;
    /* the block stops at the tap: later groups' inputs are not needed yet */
    qn_tap tap = { accumulate, acc, (int)acc->want + 1 };
    for (size_t w = 0; w < plan->n_windows; w++) {
        memcpy(scratch, X + w * L * D, L * D * sizeof *scratch);
        qn_status s = qn_forward_block(m, st, (size_t)layer, scratch, L, tap, err);
        if (s) return s;
    }
    float scale = 2.0f / (float)acc->rows;
    for (size_t i = 0; i < acc->d; i++)
        for (size_t j = i; j < acc->d; j++) {
            float v = acc->H[i * acc->d + j] * scale;
            acc->H[i * acc->d + j] = v;
            acc->H[j * acc->d + i] = v;
        }
    return QN_OK;
}

static const qn_tensor_role k_groups[QN_TAP_COUNT][3] = {
    [QN_TAP_QKV] = { QN_T_WQ, QN_T_WK, QN_T_WV },
    [QN_TAP_O] = { QN_T_WO, 0, 0 },
    [QN_TAP_GATE_UP] = { QN_T_GATE, QN_T_UP, 0 },
    [QN_TAP_DOWN] = { QN_T_DOWN, 0, 0 },
};
static const int k_group_size[QN_TAP_COUNT] = { 3, 1, 2, 1 };

static qn_status quantize_group(qn_model *m, int layer, qn_tap_point g, const hessian_acc *acc,
                                const qn_calib_plan *plan, qn_event_sink sink, qn_err *err)
{
    float *diag = malloc(acc->d * sizeof *diag);
    if (!diag) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < acc->d; i++) diag[i] = acc->H[i * acc->d + i];
    qn_status s = QN_OK;
    for (int k = 0; k < k_group_size[g] && !s; k++) {
        qn_tensor_role role = k_groups[g][k];
        const qn_linear *lin = qn_model_linear(m, role, layer);
        char name[96];
        qn_llama_tensor_name(role, layer, name, sizeof name);
        name[strlen(name) - strlen(".weight")] = 0;
        qn_layer_problem p = { .name = name, .d_out = lin->d_out, .d_in = lin->d_in, .W = lin->w, .H = acc->H };
        qn_layer_result res = {0};
        if ((s = plan->quantize(plan->quantize_ctx, role, layer, &p, &res, err))) {   /* names p.name */
            qn_layer_result_done(&res);
            break;
        }
        qn_calib_layer_event le = { .name = name, .role = role, .block = layer, .result = &res,
                                    .hessian_diag = diag, .d_out = lin->d_out, .d_in = lin->d_in };
        qn_emit(sink, &(qn_event){ .kind = QN_EV_LAYER_DONE, .stage = "quantize", .layer = layer,
                                   .n_layers = m->cfg.n_layers, .value = res.relative_error, .payload = &le });
        s = qn_model_replace_linear(m, role, layer, res.W_hat, err);
        if (!s) res.W_hat = NULL;
        qn_layer_result_done(&res);
    }
    free(diag);
    return s;
}

/* Weights of the linears of one block, and of its first group (q, k, v). */
static double block_weights(const qn_model *m, int layer, double *first_group)
{
    double all = 0;
    for (int g = 0; g < QN_TAP_COUNT; g++)
        for (int k = 0; k < k_group_size[g]; k++) {
            const qn_linear *lin = qn_model_linear((qn_model *)m, k_groups[g][k], layer);
            all += (double)lin->d_out * (double)lin->d_in;
            if (g == 0 && first_group) *first_group = all;
        }
    return all;
}

/* QN_EV_STAGE "quantize.projected": the run's total seconds projected from the
   seconds per weight so far (calibration forwards included). */
static void project(const qn_model *m, const qn_calib_plan *plan, qn_event_sink sink, double t0, double done_weights,
                    int layer)
{
    double total = 0;
    for (int l = plan->first_block; l < m->cfg.n_layers; l++) total += block_weights(m, l, NULL);
    double elapsed = qn_now() - t0;
    qn_emit(sink, &(qn_event){ .kind = QN_EV_STAGE, .stage = "quantize.projected", .layer = layer,
                               .n_layers = m->cfg.n_layers, .done = (int64_t)elapsed,
                               .total = (int64_t)(elapsed * total / done_weights), .value = elapsed * total / done_weights });
}

qn_status qn_calib_run(qn_model *m, const qn_calib_plan *plan, qn_event_sink sink, const atomic_bool *cancel,
                       qn_err *err)
{
    const double t0 = qn_now();
    double done_weights = 0;
    const qn_config *c = &m->cfg;
    size_t D = (size_t)c->dim, L = plan->len, N = plan->n_windows;
    size_t dmax = (size_t)(c->hidden_dim > c->n_heads * c->head_dim ? c->hidden_dim : c->n_heads * c->head_dim);
    if (dmax < D) dmax = D;
    qn_state *st = NULL;
    qn_status s = qn_state_create(&st, m, L, L, err);
    if (s) return s;
    float *X = malloc(N * L * D * sizeof *X), *scratch = malloc(L * D * sizeof *scratch);
    float *Y = plan->tune_block ? malloc(N * L * D * sizeof *Y) : NULL;
    hessian_acc acc = { .H = malloc(dmax * dmax * sizeof(float)) };
    if (!X || !scratch || !acc.H || (plan->tune_block && !Y)) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory for calibration activations"); goto done; }
    for (size_t w = 0; w < N; w++)
        for (size_t t = 0; t < L; t++) {
            int32_t tok = plan->tokens[w * L + t];
            if (tok < 0 || tok >= c->vocab_size) { s = qn_err_set(err, QN_ERR_ARG, "calibration token %d outside the vocabulary", tok); goto done; }
            memcpy(X + (w * L + t) * D, m->embed + (size_t)tok * D, D * sizeof *X);
        }
    for (int layer = 0; layer < c->n_layers; layer++) {
        if (layer >= plan->first_block) {
            /* fine-tuning targets: the block's outputs before it is quantized */
            for (size_t w = 0; Y && w < N; w++) {
                memcpy(Y + w * L * D, X + w * L * D, L * D * sizeof *Y);
                if ((s = qn_forward_block(m, st, (size_t)layer, Y + w * L * D, L, (qn_tap){0}, err))) goto done;
            }
            for (int g = 0; g < QN_TAP_COUNT; g++) {
                if (cancel && atomic_load(cancel)) { s = qn_err_set(err, QN_ERR_CANCELLED, "quantization cancelled"); goto done; }
                acc.want = (qn_tap_point)g;
                acc.d = qn_model_linear(m, k_groups[g][0], layer)->d_in;
                qn_emit(sink, &(qn_event){ .kind = QN_EV_STAGE, .stage = "calibrate", .layer = layer,
                                           .n_layers = c->n_layers, .done = g, .total = QN_TAP_COUNT });
                if ((s = collect_hessian(m, st, layer, plan, X, scratch, &acc, err))) goto done;
                if ((s = quantize_group(m, layer, (qn_tap_point)g, &acc, plan, sink, err))) goto done;
                if (layer == plan->first_block && g == QN_TAP_QKV) {   /* an early estimate */
                    double first = 0;
                    block_weights(m, layer, &first);
                    project(m, plan, sink, t0, first, layer);
                }
            }
            if (Y && (s = plan->tune_block(plan->tune_ctx, layer, X, Y, err))) goto done;
        }
        /* the quantized block's outputs feed the next block */
        for (size_t w = 0; w < N; w++)
            if ((s = qn_forward_block(m, st, (size_t)layer, X + w * L * D, L, (qn_tap){0}, err))) goto done;
        if (layer >= plan->first_block && plan->block_done && (s = plan->block_done(plan->block_ctx, layer, err)))
            goto done;
        if (layer >= plan->first_block) {
            done_weights += block_weights(m, layer, NULL);
            project(m, plan, sink, t0, done_weights, layer);
        }
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "quantize", .layer = layer, .n_layers = c->n_layers,
                                   .done = layer + 1, .total = c->n_layers });
    }
done:
    free(X);
    free(Y);
    free(scratch);
    free(acc.H);
    qn_state_free(st);
    return s;
}
