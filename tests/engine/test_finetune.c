/* test_finetune.c: block forward/backward (block_grad.h) against quench's
   forward pass and against central finite differences of a float64 reference
   of the same block written here with plain loops; the Adam loop (finetune.h)
   lowers the block's error and is deterministic. Blocks: stories260K and one
   SmolLM2-135M block (its Q4_1 GGUF, dequantized on load). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/block_grad.h"
#include "engine/calib.h"
#include "engine/finetune.h"
#include "engine/forward.h"
#include "engine/llama_layout.h"
#include "engine/model.h"
#include "support.h"

#define SMOLLM2 "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"

/* f32 (sgemm, another summation order) vs forward.c's f32: observed ~1e-6 of
   the outputs' magnitude; 1e-4 catches any wrong RoPE, mask or GQA mapping. */
#define FORWARD_TOL 1e-4
/* f32 analytic gradient vs f64 central differences (h = 1e-4), per coordinate:
   |g - fd| <= GRAD_REL |fd| + GRAD_ABS max|fd| over the checked coordinates
   of that parameter; observed errors are below 1/100 of this (f32 rounding). A wrong sign,
   transpose or missing term is off by O(|fd|). */
#define GRAD_REL 1e-3
#define GRAD_ABS 1e-4

static const qn_tensor_role k_roles[QN_BG_N_LINEARS] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static float rng_uniform(uint64_t *s)
{
    return (float)rng_next(s) / (float)(1ull << 31) * 2.0f - 1.0f;
}

/* A block of m's layer coded with random codes, random codebooks and the rows'
   RMS as scales, so the weights have the real rows' magnitudes. */
typedef struct {
    qn_bg_linear lin[QN_BG_N_LINEARS];
    uint16_t    *codes[QN_BG_N_LINEARS];
    float       *flat;
    size_t       np;
    qn_bg_block  b;
} test_block;

static void make_block(test_block *tb, const qn_model *m, int layer, int M, size_t K, size_t g, uint64_t seed)
{
    const qn_config *c = &m->cfg;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        const qn_linear *ml = qn_model_linear((qn_model *)m, k_roles[l], layer);
        size_t n = ml->d_out * (ml->d_in / g) * (size_t)M;
        tb->codes[l] = malloc(n * sizeof *tb->codes[l]);
        for (size_t i = 0; i < n; i++) tb->codes[l][i] = (uint16_t)(rng_next(&seed) % K);
        tb->lin[l] = (qn_bg_linear){ .d_out = ml->d_out, .d_in = ml->d_in, .g = g, .M = M, .K = K, .codes = tb->codes[l] };
    }
    tb->np = qn_bg_n_params(c, tb->lin);
    tb->flat = malloc(tb->np * sizeof *tb->flat);
    qn_bg_bind(&tb->b, c, tb->lin, tb->flat);
    memcpy(tb->b.attn_norm, m->layers[layer].attn_norm, (size_t)c->dim * sizeof(float));
    memcpy(tb->b.ffn_norm, m->layers[layer].ffn_norm, (size_t)c->dim * sizeof(float));
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        const qn_linear *ml = qn_model_linear((qn_model *)m, k_roles[l], layer);
        qn_bg_linear *L = &tb->b.lin[l];
        for (size_t i = 0; i < (size_t)M * K * g; i++) L->codebooks[i] = rng_uniform(&seed) / sqrtf((float)M);
        for (size_t i = 0; i < L->d_out; i++) {
            double ss = 0;
            for (size_t j = 0; j < L->d_in; j++) ss += (double)ml->w[i * L->d_in + j] * ml->w[i * L->d_in + j];
            L->scales[i] = (float)sqrt(ss / (double)L->d_in) * 1.7f;
        }
    }
}

static void free_block(test_block *tb)
{
    for (int l = 0; l < QN_BG_N_LINEARS; l++) free(tb->codes[l]);
    free(tb->flat);
}

/* n_seq sequences of len random tokens, embedded and run through the blocks
   before `layer`; Y = the original block's outputs. X, Y: (n_seq, len, dim). */
static void make_data(qn_model *m, int layer, size_t n_seq, size_t len, uint64_t seed, float **X, float **Y)
{
    size_t D = (size_t)m->cfg.dim;
    qn_err err = {0};
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, len, len, &err), QN_OK, "%s", err.msg);
    *X = malloc(n_seq * len * D * sizeof **X);
    *Y = malloc(n_seq * len * D * sizeof **Y);
    for (size_t s = 0; s < n_seq; s++) {
        float *x = *X + s * len * D;
        for (size_t t = 0; t < len; t++)
            memcpy(x + t * D, m->embed + (rng_next(&seed) % (uint64_t)m->cfg.vocab_size) * D, D * sizeof *x);
        for (int l = 0; l < layer; l++) cr_assert_eq(qn_forward_block(m, st, (size_t)l, x, len, (qn_tap){0}, &err), QN_OK);
        memcpy(*Y + s * len * D, x, len * D * sizeof **Y);
        cr_assert_eq(qn_forward_block(m, st, (size_t)layer, *Y + s * len * D, len, (qn_tap){0}, &err), QN_OK);
    }
    qn_state_free(st);
}

/* ---- the float64 reference: weight * sum((block(x) - y)^2), plain loops ---- */

static void ref_rmsnorm(double *o, const double *x, const double *w, size_t n, size_t D, double eps)
{
    for (size_t t = 0; t < n; t++) {
        double ss = 0;
        for (size_t i = 0; i < D; i++) ss += x[t * D + i] * x[t * D + i];
        double inv = 1.0 / sqrt(ss / (double)D + eps);
        for (size_t i = 0; i < D; i++) o[t * D + i] = w[i] * x[t * D + i] * inv;
    }
}

static void ref_linear(double *y, const double *x, const double *W, size_t n, size_t d_out, size_t d_in)
{
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < d_out; i++) {
            double acc = 0;
            for (size_t j = 0; j < d_in; j++) acc += W[i * d_in + j] * x[t * d_in + j];
            y[t * d_out + i] = acc;
        }
}

static void ref_rope(double *v, size_t n, size_t heads, size_t hd, const double *inv)
{
    for (size_t t = 0; t < n; t++)
        for (size_t h = 0; h < heads; h++) {
            double *x = v + (t * heads + h) * hd;
            for (size_t j = 0; j < hd / 2; j++) {
                double c = cos((double)t * inv[j]), s = sin((double)t * inv[j]), a = x[j], b = x[j + hd / 2];
                x[j] = a * c - b * s;
                x[j + hd / 2] = b * c + a * s;
            }
        }
}

/* params: the flat vector (qn_bg_bind's layout) in f64. */
static double ref_loss(const qn_config *c, const qn_bg_linear *lin, const double *params, const float *x32,
                       const float *y32, size_t n, double weight)
{
    size_t D = (size_t)c->dim, H = (size_t)c->hidden_dim, hd = (size_t)c->head_dim, nh = (size_t)c->n_heads;
    size_t nkv = (size_t)c->n_kv_heads, qd = nh * hd, kvd = nkv * hd;
    double *W[QN_BG_N_LINEARS];
    const double *p = params + 2 * D;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        const qn_bg_linear *L = &lin[l];
        const double *C = p, *s = p + (size_t)L->M * L->K * L->g;
        size_t G = L->d_in / L->g;
        W[l] = calloc(L->d_out * L->d_in, sizeof(double));
        for (size_t i = 0; i < L->d_out; i++)
            for (size_t j = 0; j < G; j++)
                for (int m = 0; m < L->M; m++)
                    for (size_t e = 0; e < L->g; e++)
                        W[l][i * L->d_in + j * L->g + e] +=
                            s[i] * C[((size_t)m * L->K + L->codes[(i * G + j) * L->M + m]) * L->g + e];
        p += (size_t)L->M * L->K * L->g + L->d_out;
    }
    double *x = malloc(n * D * sizeof *x), *xn = malloc(n * D * sizeof *xn), *q = malloc(n * qd * sizeof *q);
    double *k = malloc(n * kvd * sizeof *k), *v = malloc(n * kvd * sizeof *v), *att = malloc(n * qd * sizeof *att);
    double *o = malloc(n * D * sizeof *o), *a = malloc(n * H * sizeof *a), *b = malloc(n * H * sizeof *b);
    double *sc = malloc(n * sizeof *sc), *inv = malloc(hd / 2 * sizeof *inv);
    for (size_t i = 0; i < n * D; i++) x[i] = x32[i];
    qn_rope_inv_freq(c, inv);
    ref_rmsnorm(xn, x, params, n, D, c->rms_eps);
    ref_linear(q, xn, W[0], n, qd, D);
    ref_linear(k, xn, W[1], n, kvd, D);
    ref_linear(v, xn, W[2], n, kvd, D);
    ref_rope(q, n, nh, hd, inv);
    ref_rope(k, n, nkv, hd, inv);
    for (size_t t = 0; t < n; t++)
        for (size_t h = 0; h < nh; h++) {
            size_t kv = h / (nh / nkv);
            double max = -INFINITY, sum = 0;
            for (size_t s = 0; s <= t; s++) {
                double d = 0;
                for (size_t j = 0; j < hd; j++) d += q[t * qd + h * hd + j] * k[s * kvd + kv * hd + j];
                sc[s] = d / sqrt((double)hd);
                if (sc[s] > max) max = sc[s];
            }
            for (size_t s = 0; s <= t; s++) { sc[s] = exp(sc[s] - max); sum += sc[s]; }
            for (size_t j = 0; j < hd; j++) {
                double acc = 0;
                for (size_t s = 0; s <= t; s++) acc += sc[s] / sum * v[s * kvd + kv * hd + j];
                att[t * qd + h * hd + j] = acc;
            }
        }
    ref_linear(o, att, W[3], n, D, qd);
    for (size_t i = 0; i < n * D; i++) x[i] += o[i];
    ref_rmsnorm(xn, x, params + D, n, D, c->rms_eps);
    ref_linear(a, xn, W[4], n, H, D);
    ref_linear(b, xn, W[5], n, H, D);
    for (size_t i = 0; i < n * H; i++) a[i] = a[i] / (1.0 + exp(-a[i])) * b[i];
    ref_linear(o, a, W[6], n, D, H);
    double sse = 0;
    for (size_t i = 0; i < n * D; i++) {
        double r = x[i] + o[i] - y32[i];
        sse += r * r;
    }
    for (int l = 0; l < QN_BG_N_LINEARS; l++) free(W[l]);
    free(x); free(xn); free(q); free(k); free(v); free(att); free(o); free(a); free(b); free(sc); free(inv);
    return weight * sse;
}

/* ---- checks ---- */

/* qn_bg_step's outputs = qn_forward_block's with the same dense weights. */
static void check_forward(qn_model *m, int layer, test_block *tb, const float *X, size_t len)
{
    size_t D = (size_t)m->cfg.dim;
    qn_err err = {0};
    qn_bg *w = NULL;
    cr_assert_eq(qn_bg_create(&w, &m->cfg, len, &err), QN_OK, "%s", err.msg);
    qn_bg_load(w, &tb->b);
    float *out = malloc(len * D * sizeof *out), *ref = malloc(len * D * sizeof *ref);
    qn_bg_step(w, &tb->b, X, NULL, len, 0.0f, out);
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        float *W = malloc(tb->lin[l].d_out * tb->lin[l].d_in * sizeof *W);
        qn_bg_dequantize(&tb->b.lin[l], W);
        cr_assert_eq(qn_model_replace_linear(m, k_roles[l], layer, W, &err), QN_OK);
    }
    m->layers[layer].attn_norm = tb->b.attn_norm;
    m->layers[layer].ffn_norm = tb->b.ffn_norm;
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, len, len, &err), QN_OK);
    memcpy(ref, X, len * D * sizeof *ref);
    cr_assert_eq(qn_forward_block(m, st, (size_t)layer, ref, len, (qn_tap){0}, &err), QN_OK, "%s", err.msg);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < len * D; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < len * D; i++) worst = fmax(worst, fabs((double)out[i] - ref[i]));
    cr_expect(worst <= FORWARD_TOL * scale, "block forward differs from forward.c by %.3g (outputs up to %.3g)",
              worst, scale);
    qn_state_free(st);
    qn_bg_free(w);
    free(out);
    free(ref);
}

/* Indices of the n largest |g| in [lo, hi) plus n spread over the range. */
static size_t pick(const float *g, size_t lo, size_t hi, size_t n, size_t *out)
{
    size_t k = 0;
    for (size_t r = 0; r < n && lo + r < hi; r++) {
        size_t best = lo;
        float bv = -1;
        for (size_t i = lo; i < hi; i++) {
            bool taken = false;
            for (size_t j = 0; j < k; j++) taken |= out[j] == i;
            if (!taken && fabsf(g[i]) > bv) { bv = fabsf(g[i]); best = i; }
        }
        out[k++] = best;
    }
    for (size_t r = 0; r < n && hi > lo; r++) out[k++] = lo + (hi - lo) * (2 * r + 1) / (2 * n);
    return k;
}

static void check_gradient(const qn_model *m, test_block *tb, const float *X, const float *Y, size_t len)
{
    const qn_config *c = &m->cfg;
    size_t D = (size_t)c->dim;
    qn_err err = {0};
    qn_bg *w = NULL;
    cr_assert_eq(qn_bg_create(&w, c, len, &err), QN_OK, "%s", err.msg);
    float weight = 1.0f / (float)(len * D);
    qn_bg_load(w, &tb->b);
    double sse = qn_bg_step(w, &tb->b, X, Y, len, weight, NULL);
    float *g = malloc(tb->np * sizeof *g);
    qn_bg_gradient(w, &tb->b, g);
    double *p = malloc(tb->np * sizeof *p);
    for (size_t i = 0; i < tb->np; i++) p[i] = tb->flat[i];
    double l0 = ref_loss(c, tb->lin, p, X, Y, len, weight);
    cr_expect(fabs(l0 - weight * sse) <= 1e-4 * l0, "f32 loss %.8g vs f64 %.8g", weight * sse, l0);
    /* the parameter ranges: two norms, then codebooks and scales of each linear */
    size_t bounds[2 + 2 * QN_BG_N_LINEARS + 1], nb = 0, off = 0;
    bounds[nb++] = 0; off = D;
    bounds[nb++] = off; off += D;
    for (int l = 0; l < QN_BG_N_LINEARS; l++) {
        bounds[nb++] = off; off += (size_t)tb->lin[l].M * tb->lin[l].K * tb->lin[l].g;
        bounds[nb++] = off; off += tb->lin[l].d_out;
    }
    bounds[nb] = off;
    cr_assert_eq(off, tb->np);
    const double h = 1e-4;
    double worst_ratio = 0;
    for (size_t r = 0; r < nb; r++) {
        size_t idx[8];
        size_t k = pick(g, bounds[r], bounds[r + 1], 3, idx);
        double fd[8], fd_max = 0;
        for (size_t j = 0; j < k; j++) {
            double keep = p[idx[j]];
            p[idx[j]] = keep + h;
            double up = ref_loss(c, tb->lin, p, X, Y, len, weight);
            p[idx[j]] = keep - h;
            double down = ref_loss(c, tb->lin, p, X, Y, len, weight);
            p[idx[j]] = keep;
            fd[j] = (up - down) / (2 * h);
            fd_max = fmax(fd_max, fabs(fd[j]));
        }
        cr_expect(fd_max > 0, "parameter range %zu: every checked gradient is zero", r);
        for (size_t j = 0; j < k; j++) {
            double tol = GRAD_REL * fabs(fd[j]) + GRAD_ABS * fd_max, e = fabs(g[idx[j]] - fd[j]);
            worst_ratio = fmax(worst_ratio, e / tol);
            cr_expect(e <= tol, "range %zu, parameter %zu: gradient %.6g, finite differences %.6g", r, idx[j],
                      g[idx[j]], fd[j]);
        }
    }
    cr_log_info("worst gradient error / tolerance: %.3g", worst_ratio);
    free(g);
    free(p);
    qn_bg_free(w);
}

static void check_model(const char *path, int layer, int M, size_t K, size_t g, size_t len)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, path, &(qn_model_opts){ .dequantize = true }, &err), QN_OK, "%s", err.msg);
    float *X, *Y;
    make_data(m, layer, 1, len, 7, &X, &Y);
    test_block tb;
    make_block(&tb, m, layer, M, K, g, 11);
    check_gradient(m, &tb, X, Y, len);
    check_forward(m, layer, &tb, X, len);
    free_block(&tb);
    free(X);
    free(Y);
    qn_model_close(m);
}

Test(finetune, stories260K_block_forward_and_gradients)
{
    check_model(TS_STORIES_HF, 1, 2, 16, 4, 24);
}

Test(finetune, smollm2_block_forward_and_gradients, .timeout = 300)
{
    check_model(ts_shared(SMOLLM2), 2, 2, 16, 8, 8);
}

/* Adam lowers the block's error, never raises it (best kept), and the same seed gives the same bits. */
Test(finetune, adam_lowers_block_error_deterministically)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, &(qn_model_opts){ .dequantize = true }, &err), QN_OK, "%s", err.msg);
    float *X, *Y;
    make_data(m, 2, 6, 32, 3, &X, &Y);
    test_block a, b;
    make_block(&a, m, 2, 2, 16, 4, 5);
    make_block(&b, m, 2, 2, 16, 4, 5);
    qn_finetune_opts o = qn_finetune_opts_default();
    o.batch_size = 2;
    o.max_epochs = 4;
    o.rel_tol = 0;
    o.lr = 1e-3;
    qn_finetune_result ra, rb;
    cr_assert_eq(qn_finetune_block(&a.b, &m->cfg, X, Y, 6, 32, &o, (qn_event_sink){0}, NULL, &ra, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_finetune_block(&b.b, &m->cfg, X, Y, 6, 32, &o, (qn_event_sink){0}, NULL, &rb, &err), QN_OK);
    cr_expect_eq(ra.epochs, 4);
    cr_expect(ra.mse_after < 0.9 * ra.mse_before, "MSE %.4g -> %.4g: less than 10%% lower", ra.mse_before, ra.mse_after);
    cr_expect(ra.rel_after < ra.rel_before);
    cr_expect(memcmp(a.flat, b.flat, a.np * sizeof *a.flat) == 0, "two runs with one seed differ");
    o.seed = 1;
    qn_finetune_result rc;
    free_block(&b);
    make_block(&b, m, 2, 2, 16, 4, 5);
    cr_assert_eq(qn_finetune_block(&b.b, &m->cfg, X, Y, 6, 32, &o, (qn_event_sink){0}, NULL, &rc, &err), QN_OK);
    cr_expect(memcmp(a.flat, b.flat, a.np * sizeof *a.flat) != 0, "another seed, another order, same result");
    free_block(&a);
    free_block(&b);
    free(X);
    free(Y);
    qn_model_close(m);
}

Test(finetune, rejects_bad_options)
{
    qn_err err = {0};
    qn_finetune_opts o = qn_finetune_opts_default();
    o.lr = -1;
    cr_expect_eq(qn_finetune_opts_check(&o, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "--finetune-lr"), "%s", err.msg);
    o = qn_finetune_opts_default();
    o.batch_size = 0;
    cr_expect_eq(qn_finetune_opts_check(&o, &err), QN_ERR_ARG);
}
