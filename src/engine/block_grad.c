/* block_grad.c: one AQLM-coded Llama block, forward and backward (see block_grad.h).
   Legend as forward.c: L = tokens of the sequence, D = dim, H = hidden_dim,
   hd = head_dim, nh/nkv = query/key-value heads, qd = nh*hd, kvd = nkv*hd.
   Shapes in comments are row-major. */
#include "engine/block_grad.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"

struct qn_bg {
    size_t max_len, D, H, qd, kvd, hd, nh, nkv;
    float  eps;
    size_t d_out[QN_BG_N_LINEARS], d_in[QN_BG_N_LINEARS];
    float *W[QN_BG_N_LINEARS], *dW[QN_BG_N_LINEARS];   /* (d_out, d_in) each */
    float *d_attn_norm, *d_ffn_norm;                   /* (D) */
    float *rope_cos, *rope_sin;                        /* (max_len, hd/2) */
    /* one sequence's activations */
    float *inv1, *inv2;                  /* (L) 1/rms of x and x1 */
    float *xn1, *x1, *xn2, *out;         /* (L, D) */
    float *q, *att;                      /* (L, qd) q after RoPE; attention output */
    float *k, *v;                        /* (L, kvd) k after RoPE */
    float *P;                            /* (nh, L, L) attention probabilities */
    float *a, *b, *h;                    /* (L, H) gate, up, silu(gate) * up */
    /* backward scratch */
    float *dout, *dx1, *dxn;             /* (L, D) */
    float *dh, *da, *db;                 /* (L, H) */
    float *datt, *dq;                    /* (L, qd) */
    float *dk, *dv;                      /* (L, kvd) */
    float *dP;                           /* (L, L) */
};

static void linear_shapes(const qn_config *c, size_t *d_out, size_t *d_in)
{
    size_t D = (size_t)c->dim, H = (size_t)c->hidden_dim;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t o[QN_BG_N_LINEARS] = { qd, kvd, kvd, D, H, H, D }, i[QN_BG_N_LINEARS] = { D, D, D, qd, D, D, H };
    memcpy(d_out, o, sizeof o);
    memcpy(d_in, i, sizeof i);
}

size_t qn_bg_n_params(const qn_config *c, const qn_bg_linear *lin)
{
    size_t n = 2 * (size_t)c->dim;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) n += (size_t)lin[l].M * lin[l].K * lin[l].g + lin[l].d_out;
    return n;
}

void qn_bg_bind(qn_bg_block *b, const qn_config *c, const qn_bg_linear *lin, float *flat)
{
    size_t D = (size_t)c->dim;
    b->attn_norm = flat;
    b->ffn_norm = flat + D;
    flat += 2 * D;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        b->lin[l] = lin[l];
        b->lin[l].codebooks = flat;
        flat += (size_t)lin[l].M * lin[l].K * lin[l].g;
        b->lin[l].scales = flat;
        flat += lin[l].d_out;
    }
}

void qn_bg_dequantize(const qn_bg_linear *l, float *W)
{
    size_t G = l->d_in / l->g, g = l->g;
    for (size_t i = 0; i < l->d_out; i++)
        for (size_t j = 0; j < G; j++) {
            float *w = W + i * l->d_in + j * g;
            const uint16_t *code = l->codes + (i * G + j) * (size_t)l->M;
            for (size_t e = 0; e < g; e++) w[e] = 0.0f;
            for (int m = 0; m < l->M; m++) {
                const float *cw = l->codebooks + ((size_t)m * l->K + code[m]) * g;
                for (size_t e = 0; e < g; e++) w[e] += cw[e];
            }
            for (size_t e = 0; e < g; e++) w[e] *= l->scales[i];
        }
}

void qn_bg_free(qn_bg *w)
{
    if (!w) return;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) { free(w->W[l]); free(w->dW[l]); }
    float *bufs[] = { w->d_attn_norm, w->d_ffn_norm, w->rope_cos, w->rope_sin, w->inv1, w->inv2, w->xn1, w->x1,
                      w->xn2, w->out, w->q, w->att, w->k, w->v, w->P, w->a, w->b, w->h, w->dout, w->dx1, w->dxn,
                      w->dh, w->da, w->db, w->datt, w->dq, w->dk, w->dv, w->dP };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(w);
}

qn_status qn_bg_create(qn_bg **out, const qn_config *c, size_t max_len, qn_err *err)
{
    *out = NULL;
    if (max_len == 0 || c->head_dim % 2 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads)
        return qn_err_set(err, QN_ERR_ARG, "block gradients: sequence length %zu, heads %d/%d, head_dim %d unsupported",
                          max_len, c->n_heads, c->n_kv_heads, c->head_dim);
    qn_bg *w = calloc(1, sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    size_t L = max_len, D = (size_t)c->dim, H = (size_t)c->hidden_dim, hd = (size_t)c->head_dim;
    *w = (qn_bg){ .max_len = L, .D = D, .H = H, .hd = hd, .nh = (size_t)c->n_heads, .nkv = (size_t)c->n_kv_heads,
                  .qd = (size_t)c->n_heads * hd, .kvd = (size_t)c->n_kv_heads * hd, .eps = c->rms_eps };
    linear_shapes(c, w->d_out, w->d_in);
    bool ok = true;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        w->W[l] = malloc(w->d_out[l] * w->d_in[l] * sizeof(float));
        w->dW[l] = malloc(w->d_out[l] * w->d_in[l] * sizeof(float));
        ok = ok && w->W[l] && w->dW[l];
    }
    struct { float **p; size_t n; } bufs[] = {
        { &w->d_attn_norm, D }, { &w->d_ffn_norm, D }, { &w->rope_cos, L * hd / 2 }, { &w->rope_sin, L * hd / 2 },
        { &w->inv1, L }, { &w->inv2, L }, { &w->xn1, L * D }, { &w->x1, L * D }, { &w->xn2, L * D },
        { &w->out, L * D }, { &w->q, L * w->qd }, { &w->att, L * w->qd }, { &w->k, L * w->kvd },
        { &w->v, L * w->kvd }, { &w->P, w->nh * L * L }, { &w->a, L * H }, { &w->b, L * H }, { &w->h, L * H },
        { &w->dout, L * D }, { &w->dx1, L * D }, { &w->dxn, L * D }, { &w->dh, L * H }, { &w->da, L * H },
        { &w->db, L * H }, { &w->datt, L * w->qd }, { &w->dq, L * w->qd }, { &w->dk, L * w->kvd },
        { &w->dv, L * w->kvd }, { &w->dP, L * L },
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i].p = malloc(bufs[i].n * sizeof(float));
        ok = ok && *bufs[i].p;
    }
    double *inv = malloc(hd / 2 * sizeof *inv);
    if (!ok || !inv) {
        free(inv);
        qn_bg_free(w);
        return qn_err_set(err, QN_ERR_NOMEM, "out of memory for block gradients (sequence length %zu)", max_len);
    }
    /* the tables forward.c builds, so both passes rotate by the same floats */
    qn_rope_inv_freq(c, inv);
    for (size_t p = 0; p < L; p++)
        for (size_t j = 0; j < hd / 2; j++) {
            w->rope_cos[p * hd / 2 + j] = (float)cos((double)p * inv[j]);
            w->rope_sin[p * hd / 2 + j] = (float)sin((double)p * inv[j]);
        }
    free(inv);
    *out = w;
    return QN_OK;
}

void qn_bg_load(qn_bg *w, const qn_bg_block *b)
{
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        qn_bg_dequantize(&b->lin[l], w->W[l]);
        memset(w->dW[l], 0, w->d_out[l] * w->d_in[l] * sizeof(float));
    }
    memset(w->d_attn_norm, 0, w->D * sizeof(float));
    memset(w->d_ffn_norm, 0, w->D * sizeof(float));
}

/* o = wn * x * inv per row, inv = 1/sqrt(mean(x^2) + eps) kept for the backward. */
static void rmsnorm(float *o, float *inv, const float *x, const float *wn, size_t n, size_t D, float eps)
{
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * D;
        float ss = 0.0f;
        for (size_t i = 0; i < D; i++) ss += xr[i] * xr[i];
        inv[t] = 1.0f / sqrtf(ss / (float)D + eps);
        for (size_t i = 0; i < D; i++) o[t * D + i] = wn[i] * (inv[t] * xr[i]);
    }
}

/* dx += d(rmsnorm)/dx^T do; dwn += sum_t do * x * inv. */
static void rmsnorm_back(float *dx, float *dwn, const float *dout, const float *x, const float *inv, const float *wn,
                         size_t n, size_t D)
{
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * D, *dr = dout + t * D;
        double dot = 0.0;
        for (size_t i = 0; i < D; i++) {
            dwn[i] += dr[i] * xr[i] * inv[t];
            dot += (double)(wn[i] * dr[i]) * xr[i];
        }
        if (!dx) continue;
        float c = (float)dot * inv[t] * inv[t] * inv[t] / (float)D;
        for (size_t i = 0; i < D; i++) dx[t * D + i] += inv[t] * wn[i] * dr[i] - c * xr[i];
    }
}

/* Rotate-half RoPE of n_heads heads per token, forward (sign 1) or its transpose (sign -1). v: (n, n_heads*hd). */
static void rope(const qn_bg *w, float *v, size_t n, size_t n_heads, float sign)
{
    size_t hd = w->hd, half = hd / 2;
    for (size_t t = 0; t < n; t++)
        for (size_t h = 0; h < n_heads; h++) {
            float *x = v + (t * n_heads + h) * hd;
            const float *cp = w->rope_cos + t * half, *sp = w->rope_sin + t * half;
            for (size_t j = 0; j < half; j++) {
                float x1 = x[j], x2 = x[j + half], s = sign * sp[j];
                x[j] = x1 * cp[j] - x2 * s;
                x[j + half] = x2 * cp[j] + x1 * s;
            }
        }
}

/* Y (n, d_out) = X (n, d_in) W^T. */
static void matmul(const qn_bg *w, int l, const float *X, size_t n, float *Y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)w->d_out[l], (int)w->d_in[l], 1.0f, X,
                (int)w->d_in[l], w->W[l], (int)w->d_in[l], 0.0f, Y, (int)w->d_out[l]);
}

/* dW += dY^T X; dX = dY W + beta dX. */
static void matmul_back(qn_bg *w, int l, const float *X, const float *dY, size_t n, float *dX, float beta)
{
    int o = (int)w->d_out[l], i = (int)w->d_in[l];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, i, (int)n, 1.0f, dY, o, X, i, 1.0f, w->dW[l], i);
    if (dX) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, i, o, 1.0f, dY, o, w->W[l], i, beta, dX, i);
}

/* Causal softmax attention per head: P_h = softmax(q_h k^T / sqrt(hd)), att_h = P_h v. */
static void attention(qn_bg *w, size_t n)
{
    size_t hd = w->hd, group = w->nh / w->nkv;
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t h = 0; h < w->nh; h++) {
        float *P = w->P + h * w->max_len * w->max_len;
        size_t kvo = (h / group) * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)hd, scale, w->q + h * hd,
                    (int)w->qd, w->k + kvo, (int)w->kvd, 0.0f, P, (int)n);
        for (size_t t = 0; t < n; t++) {
            float *row = P + t * n, max = -INFINITY, sum = 0.0f;
            for (size_t s = 0; s <= t; s++) if (row[s] > max) max = row[s];
            for (size_t s = 0; s <= t; s++) { row[s] = expf(row[s] - max); sum += row[s]; }
            for (size_t s = 0; s <= t; s++) row[s] /= sum;
            for (size_t s = t + 1; s < n; s++) row[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, P, (int)n, w->v + kvo,
                    (int)w->kvd, 0.0f, w->att + h * hd, (int)w->qd);
    }
}

/* From datt: dq (after RoPE), dk (after RoPE), dv. */
static void attention_back(qn_bg *w, size_t n)
{
    size_t hd = w->hd, group = w->nh / w->nkv;
    float scale = 1.0f / sqrtf((float)hd);
    memset(w->dk, 0, n * w->kvd * sizeof(float));
    memset(w->dv, 0, n * w->kvd * sizeof(float));
    for (size_t h = 0; h < w->nh; h++) {
        const float *P = w->P + h * w->max_len * w->max_len;
        size_t kvo = (h / group) * hd;
        const float *datt = w->datt + h * hd;
        /* dv += P^T datt_h; dP = datt_h v^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, P, (int)n, datt,
                    (int)w->qd, 1.0f, w->dv + kvo, (int)w->kvd);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)hd, 1.0f, datt, (int)w->qd,
                    w->v + kvo, (int)w->kvd, 0.0f, w->dP, (int)n);
        /* softmax: dS = P * (dP - sum_s P dP), then the 1/sqrt(hd) of the scores */
        for (size_t t = 0; t < n; t++) {
            float *d = w->dP + t * n;
            const float *p = P + t * n;
            float dot = 0.0f;
            for (size_t s = 0; s <= t; s++) dot += p[s] * d[s];
            for (size_t s = 0; s <= t; s++) d[s] = p[s] * (d[s] - dot) * scale;
            for (size_t s = t + 1; s < n; s++) d[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, w->dP, (int)n,
                    w->k + kvo, (int)w->kvd, 0.0f, w->dq + h * hd, (int)w->qd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, w->dP, (int)n,
                    w->q + h * hd, (int)w->qd, 1.0f, w->dk + kvo, (int)w->kvd);
    }
}

static void forward(qn_bg *w, const qn_bg_block *b, const float *x, size_t n)
{
    size_t D = w->D, H = w->H;
    rmsnorm(w->xn1, w->inv1, x, b->attn_norm, n, D, w->eps);
    matmul(w, QN_BG_Q, w->xn1, n, w->q);
    matmul(w, QN_BG_K, w->xn1, n, w->k);
    matmul(w, QN_BG_V, w->xn1, n, w->v);
    rope(w, w->q, n, w->nh, 1.0f);
    rope(w, w->k, n, w->nkv, 1.0f);
    attention(w, n);
    matmul(w, QN_BG_O, w->att, n, w->x1);
    for (size_t i = 0; i < n * D; i++) w->x1[i] += x[i];
    rmsnorm(w->xn2, w->inv2, w->x1, b->ffn_norm, n, D, w->eps);
    matmul(w, QN_BG_GATE, w->xn2, n, w->a);
    matmul(w, QN_BG_UP, w->xn2, n, w->b);
    for (size_t i = 0; i < n * H; i++) w->h[i] = w->a[i] / (1.0f + expf(-w->a[i])) * w->b[i];
    matmul(w, QN_BG_DOWN, w->h, n, w->out);
    for (size_t i = 0; i < n * D; i++) w->out[i] += w->x1[i];
}

static void backward(qn_bg *w, const qn_bg_block *b, const float *x, size_t n)
{
    size_t D = w->D, H = w->H;
    /* MLP: out = x1 + W_down (silu(a) * b) */
    matmul_back(w, QN_BG_DOWN, w->h, w->dout, n, w->dh, 0.0f);
    for (size_t i = 0; i < n * H; i++) {
        float sg = 1.0f / (1.0f + expf(-w->a[i]));
        w->db[i] = w->dh[i] * w->a[i] * sg;
        w->da[i] = w->dh[i] * w->b[i] * sg * (1.0f + w->a[i] * (1.0f - sg));
    }
    matmul_back(w, QN_BG_GATE, w->xn2, w->da, n, w->dxn, 0.0f);
    matmul_back(w, QN_BG_UP, w->xn2, w->db, n, w->dxn, 1.0f);
    memcpy(w->dx1, w->dout, n * D * sizeof(float));
    rmsnorm_back(w->dx1, w->d_ffn_norm, w->dxn, w->x1, w->inv2, b->ffn_norm, n, D);
    /* attention: x1 = x + W_o att */
    matmul_back(w, QN_BG_O, w->att, w->dx1, n, w->datt, 0.0f);
    attention_back(w, n);
    rope(w, w->dq, n, w->nh, -1.0f);
    rope(w, w->dk, n, w->nkv, -1.0f);
    matmul_back(w, QN_BG_Q, w->xn1, w->dq, n, w->dxn, 0.0f);
    matmul_back(w, QN_BG_K, w->xn1, w->dk, n, w->dxn, 1.0f);
    matmul_back(w, QN_BG_V, w->xn1, w->dv, n, w->dxn, 1.0f);
    rmsnorm_back(NULL, w->d_attn_norm, w->dxn, x, w->inv1, b->attn_norm, n, D);
}

double qn_bg_step(qn_bg *w, const qn_bg_block *b, const float *x, const float *y, size_t n, float weight,
                  float *out)
{
    forward(w, b, x, n);
    if (out) memcpy(out, w->out, n * w->D * sizeof(float));
    if (!y) return 0.0;
    double sse = 0.0;
    for (size_t i = 0; i < n * w->D; i++) {
        float r = w->out[i] - y[i];
        sse += (double)r * r;
        w->dout[i] = 2.0f * weight * r;
    }
    if (weight != 0.0f) backward(w, b, x, n);
    return sse;
}

/* dC[m, k] += s_i dW[i, J] over the groups coded k; ds_i = <dW_i, U_i>, U = W / s unscaled. */
static void linear_gradient(const qn_bg_linear *l, const float *dW, float *dC, float *ds)
{
    size_t G = l->d_in / l->g, g = l->g;
    memset(dC, 0, (size_t)l->M * l->K * g * sizeof(float));
    for (size_t i = 0; i < l->d_out; i++) {
        double acc = 0.0;
        for (size_t j = 0; j < G; j++) {
            const float *d = dW + i * l->d_in + j * g;
            const uint16_t *code = l->codes + (i * G + j) * (size_t)l->M;
            for (int m = 0; m < l->M; m++) {
                float *dc = dC + ((size_t)m * l->K + code[m]) * g;
                const float *cw = l->codebooks + ((size_t)m * l->K + code[m]) * g;
                for (size_t e = 0; e < g; e++) {
                    dc[e] += l->scales[i] * d[e];
                    acc += (double)d[e] * cw[e];
                }
            }
        }
        ds[i] = (float)acc;
    }
}

void qn_bg_gradient(const qn_bg *w, const qn_bg_block *b, float *grad)
{
    size_t D = w->D;
    memcpy(grad, w->d_attn_norm, D * sizeof(float));
    memcpy(grad + D, w->d_ffn_norm, D * sizeof(float));
    float *p = grad + 2 * D;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        const qn_bg_linear *lin = &b->lin[l];
        size_t ncb = (size_t)lin->M * lin->K * lin->g;
        linear_gradient(lin, w->dW[l], p, p + ncb);
        p += ncb + lin->d_out;
    }
}
