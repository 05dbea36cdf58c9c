/* ggml_numerics.c: llama.cpp's CPU arithmetic (see ggml_numerics.h). */
#include "engine/ggml_numerics.h"

#include <math.h>
#include <stdlib.h>

#include "engine/dtype.h"
#include "engine/ggml_quants.h"
#include "engine/gguf.h"
#include "engine/llama_layout.h"
#include "engine/model_gguf.h"

#define QK8 32
#define QK_K 256

float qn_ggml_f16(float x) { return qn_f16_to_f32(qn_f32_to_f16(x)); }

static const int k_roles[7] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };

size_t qn_ggml_index(const qn_config *c, int role, size_t layer)
{
    size_t k = 0;
    while (k < 6 && k_roles[k] != role) k++;
    return role == QN_T_LM_HEAD ? (size_t)c->n_layers * 7 : layer * 7 + k;
}

static int act_of_type(uint32_t type)
{
    switch (type) {
    case QN_GGML_F32: return QN_ACT_F32;
    case QN_GGML_F16: return QN_ACT_F16;
    case QN_GGML_BF16: return QN_ACT_BF16;
    case QN_GGML_Q4_0: case QN_GGML_Q5_0: case QN_GGML_Q8_0: case QN_GGML_IQ4_NL: return QN_ACT_Q8_0;
    case QN_GGML_Q4_1: case QN_GGML_Q5_1: return QN_ACT_Q8_1;
    case QN_GGML_Q2_K: case QN_GGML_Q3_K: case QN_GGML_Q4_K: case QN_GGML_Q5_K: case QN_GGML_Q6_K:
    case QN_GGML_IQ2_XXS: case QN_GGML_IQ2_XS: case QN_GGML_IQ3_XXS: case QN_GGML_IQ1_S: case QN_GGML_IQ3_S:
    case QN_GGML_IQ2_S: case QN_GGML_IQ4_XS: case QN_GGML_IQ1_M: return QN_ACT_Q8_K;
    default: return -1;
    }
}

/* Q4_1/Q5_1 store a block's minimum m and give q = 0 to its smallest weight, so
   the dequantized block's minimum is m exactly. W: (rows, cols). */
static float *block_minimums(const float *W, size_t rows, size_t cols)
{
    size_t nb = cols / QK8;
    float *m = malloc(rows * nb * sizeof *m);
    if (!m) return NULL;
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            const float *w = W + r * cols + b * QK8;
            float lo = w[0];
            for (size_t i = 1; i < QK8; i++) lo = fminf(lo, w[i]);
            m[r * nb + b] = lo;
        }
    return m;
}

void qn_ggml_numerics_free(qn_ggml_numerics *g)
{
    if (!g) return;
    for (size_t i = 0; g->mins && i < g->n; i++) free(g->mins[i]);
    free(g->mins);
    free(g->act);
    free(g);
}

qn_status qn_ggml_numerics_enable(qn_model *m, qn_err *err)
{
    if (m->source != QN_SRC_GGUF)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: llama.cpp's arithmetic follows a GGUF file's tensor types; "
                          "this is not a GGUF file", m->path);
    const qn_config *c = &m->cfg;
    qn_gguf_file *f = NULL;
    qn_status s = qn_gguf_open(&f, m->path, err);
    if (s) return s;
    qn_ggml_numerics *g = calloc(1, sizeof *g);
    size_t n = (size_t)c->n_layers * 7 + 1;
    if (g) { g->n = n; g->act = calloc(n, 1); g->mins = calloc(n, sizeof *g->mins); }
    if (!g || !g->act || !g->mins) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path); goto done; }
    for (size_t i = 0; i < n; i++) {
        int role = i == n - 1 ? QN_T_LM_HEAD : k_roles[i % 7];
        size_t layer = i == n - 1 ? 0 : i / 7;
        char hf[128], name[160];
        if (role == QN_T_LM_HEAD && c->tie_embeddings) qn_llama_tensor_name(QN_T_EMBED, 0, hf, sizeof hf);
        else qn_llama_tensor_name(role, (int)layer, hf, sizeof hf);
        const qn_gguf_tensor *t = qn_gguf_llama_name(hf, name, sizeof name) ? qn_gguf_tensor_find(f, name) : NULL;
        if (!t) { s = qn_err_set(err, QN_ERR_FORMAT, "%s: no GGUF tensor for '%s'", m->path, hf); goto done; }
        int act = act_of_type(t->type);
        const qn_linear *lin = qn_model_linear(m, role, (int)layer);
        if (act < 0 || lin->fmt != QN_FMT_F32) {
            s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no llama.cpp arithmetic for tensor '%s' (%s)", m->path, name,
                           qn_ggml_type_info(t->type) ? qn_ggml_type_info(t->type)->name : "unknown type");
            goto done;
        }
        size_t block = act == QN_ACT_Q8_K ? QK_K : act >= QN_ACT_Q8_0 ? QK8 : 1;
        if (lin->d_in % block) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' rows of %zu are not whole blocks of %zu", m->path, name,
                           lin->d_in, block);
            goto done;
        }
        g->act[i] = (uint8_t)act;
        if (act == QN_ACT_Q8_1 && !(g->mins[i] = block_minimums(lin->w, lin->d_out, lin->d_in))) {
            s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", m->path);
            goto done;
        }
    }
    qn_ggml_numerics_free(m->ggml);
    m->ggml = g;
    g = NULL;
done:
    qn_ggml_numerics_free(g);
    qn_gguf_close(f);
    return s;
}

/* One block of k values to 8 bits with an f16 scale (Q8_0/Q8_1); returns the quant sum. */
static int round_q8(const float *x, float *r, size_t k, float *scale_f32)
{
    float amax = 0.0f;
    for (size_t i = 0; i < k; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f, dh = qn_ggml_f16(d);
    int sum = 0;
    for (size_t i = 0; i < k; i++) {
        float q = nearbyintf(x[i] * id);
        sum += (int)q;
        r[i] = dh * q;
    }
    *scale_f32 = d;
    return sum;
}

/* quantize_row_q8_K_ref: the scale follows the signed extreme, stored in f32. */
static void round_q8_k(const float *x, float *r)
{
    float amax = 0.0f, max = 0.0f;
    for (size_t i = 0; i < QK_K; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax == 0.0f) { for (size_t i = 0; i < QK_K; i++) r[i] = 0.0f; return; }
    float iscale = -127.f / max, d = 1.0f / iscale;
    for (size_t i = 0; i < QK_K; i++) r[i] = d * fminf(127.f, nearbyintf(iscale * x[i]));
}

void qn_ggml_round(qn_act_round act, const float *X, size_t n, size_t d, float *R, float *corr)
{
    size_t total = n * d;
    switch (act) {
    case QN_ACT_F32:
        for (size_t i = 0; i < total; i++) R[i] = X[i];
        break;
    case QN_ACT_F16:
        for (size_t i = 0; i < total; i++) R[i] = qn_ggml_f16(X[i]);
        break;
    case QN_ACT_BF16:
        for (size_t i = 0; i < total; i++) R[i] = qn_bf16_to_f32(qn_f32_to_bf16(X[i]));
        break;
    case QN_ACT_Q8_0:
    case QN_ACT_Q8_1:
        for (size_t b = 0; b < total / QK8; b++) {
            float df;
            int sum = round_q8(X + b * QK8, R + b * QK8, QK8, &df);
            if (act == QN_ACT_Q8_1) corr[b] = qn_ggml_f16(df * (float)sum) - qn_ggml_f16(df) * (float)sum;
        }
        break;
    case QN_ACT_Q8_K:
        for (size_t b = 0; b < total / QK_K; b++) round_q8_k(X + b * QK_K, R + b * QK_K);
        break;
    }
}

void qn_ggml_min_term(const float *mins, const float *corr, size_t n, size_t d_out, size_t nb, float *Y)
{
    for (size_t t = 0; t < n; t++)
        for (size_t r = 0; r < d_out; r++) {
            float acc = 0.0f;
            for (size_t b = 0; b < nb; b++) acc += mins[r * nb + b] * corr[t * nb + b];
            Y[t * d_out + r] += acc;
        }
}
