/* gptq.c: the GPTQ sweep and GPTQ with min-max groups (see gptq.h).
   Shapes: W (d_out, d_in) row-major; H, U (d_in, d_in); n = d_in. */
#include "engine/gptq.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dtype.h"

qn_gptq_opts qn_gptq_opts_default(void)
{
    return (qn_gptq_opts){ .bits = 4, .groupsize = 0, .percdamp = 0.01, .act_order = false,
                           .blocksize = QN_GPTQ_BLOCKSIZE };
}

typedef struct { float key; uint32_t idx; } diag_entry;

static int by_decreasing_key(const void *a, const void *b)
{
    const diag_entry *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* act_order [GPTQ, Sec. 4 "Additional Tricks"]: columns by decreasing H_jj, ties in
   index order; identity otherwise. perm: (n). */
static qn_status column_order(const float *H, size_t n, bool act_order, uint32_t *perm, qn_err *err)
{
    for (size_t j = 0; j < n; j++) perm[j] = (uint32_t)j;
    if (!act_order) return QN_OK;
    diag_entry *d = malloc(n * sizeof *d);
    if (!d) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < n; j++) d[j] = (diag_entry){ H[j * n + j], (uint32_t)j };
    qsort(d, n, sizeof *d, by_decreasing_key);
    for (size_t j = 0; j < n; j++) perm[j] = d[j].idx;
    free(d);
    return QN_OK;
}

static qn_status check_finite(const float *X, size_t rows, size_t cols, const char *name, const char *what,
                              qn_err *err)
{
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(X[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: %s has a non-finite value (%g) at [%zu, %zu]", name, what,
                              (double)X[i], i / cols, i % cols);
    return QN_OK;
}

/* A = H[perm][:, perm] + damp * mean|diag H| * I, dead diagonal entries set to 1
   (research code order: damp first, then dead := 1). A: (n, n) symmetric. */
static void damped_hessian(const float *H, const uint32_t *perm, size_t n, double percdamp, double mean_diag,
                           float *A)
{
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) A[i * n + j] = H[(size_t)perm[i] * n + perm[j]];
    float damp = (float)(percdamp * mean_diag);
    for (size_t j = 0; j < n; j++) {
        bool dead = A[j * n + j] == 0.0f;
        A[j * n + j] = dead ? 1.0f : A[j * n + j] + damp;
    }
}

/* U = chol((A)^-1) upper, in place [GPTQ, Sec. 3 "Cholesky Reformulation"]:
   A = R^T R, A^-1 from R, then A^-1 = U^T U. A is symmetric, so the column-major
   LAPACK calls see the same matrix; their upper triangle (column-major) is our
   lower one, transposed into place at the end. Returns false when A is not
   numerically positive definite. */
static bool inverse_cholesky_upper(float *A, size_t n)
{
    lapack_int ln = (lapack_int)n;
    if (LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', ln, A, ln) != 0) return false;
    if (LAPACKE_spotri(LAPACK_COL_MAJOR, 'U', ln, A, ln) != 0) return false;
    if (LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', ln, A, ln) != 0) return false;
    #pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            A[i * n + j] = A[j * n + i];
            A[j * n + i] = 0.0f;
        }
    return true;
}

qn_status qn_gptq_state_init(qn_gptq_state *st, const qn_layer_problem *p, bool act_order, double percdamp,
                             qn_event_sink sink, qn_err *err)
{
    qn_status s;
    size_t n = p->d_in, m = p->d_out;
    memset(st, 0, sizeof *st);
    st->d_out = m;
    st->d_in = n;
    if (!(percdamp >= 0) || !isfinite(percdamp))
        return qn_err_set(err, QN_ERR_ARG, "%s: damping must be a finite number >= 0, found %g", p->name, percdamp);
    if ((s = check_finite(p->W, m, n, p->name, "weight", err)) != QN_OK) return s;
    if ((s = check_finite(p->H, n, n, p->name, "hessian", err)) != QN_OK) return s;
    st->perm = malloc(n * sizeof *st->perm);
    st->W = malloc(m * n * sizeof *st->W);
    st->U = malloc(n * n * sizeof *st->U);
    if (!st->perm || !st->W || !st->U) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name); goto fail; }
    if ((s = column_order(p->H, n, act_order, st->perm, err)) != QN_OK) goto fail;

    double mean_diag = 0;
    for (size_t j = 0; j < n; j++) mean_diag += fabs((double)p->H[j * n + j]);
    mean_diag /= (double)n;
    for (size_t j = 0; j < n; j++) {
        bool dead = p->H[(size_t)st->perm[j] * n + st->perm[j]] == 0.0f;
        st->n_dead += dead;
        for (size_t r = 0; r < m; r++) st->W[r * n + j] = dead ? 0.0f : p->W[r * n + st->perm[j]];
    }

    double damp = percdamp;
    char tried[128] = "";
    for (int attempt = 0;; attempt++) {
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%g", attempt ? ", " : "", damp);
        damped_hessian(p->H, st->perm, n, damp, mean_diag, st->U);
        if (inverse_cholesky_upper(st->U, n)) break;
        if (attempt == QN_GPTQ_DAMP_RETRIES) {
            s = qn_err_set(err, QN_ERR_FORMAT,
                           "%s: hessian is not positive definite even with damping %g x mean(diag H) (tried %s)",
                           p->name, damp, tried);
            goto fail;
        }
        damp = damp > 0 ? damp * QN_GPTQ_DAMP_GROWTH : QN_GPTQ_DAMP_FIRST;
    }
    st->percdamp = damp;
    if (damp != percdamp) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: hessian not positive definite with damping %g; used %g x mean(diag H)",
                 p->name, percdamp, damp);
        qn_event ev = { .kind = QN_EV_WARNING, .stage = "gptq", .value = damp, .text = msg,
                        .text_len = (int64_t)strlen(msg) };
        qn_emit(sink, &ev);
    }
    return QN_OK;
fail:
    qn_gptq_state_done(st);
    return s;
}

void qn_gptq_state_done(qn_gptq_state *st)
{
    if (!st) return;
    free(st->perm);
    free(st->W);
    free(st->U);
    memset(st, 0, sizeof *st);
}

void qn_gptq_state_unpermute(const qn_gptq_state *st, float *W_hat)
{
    size_t n = st->d_in;
    #pragma omp parallel for schedule(static)
    for (size_t r = 0; r < st->d_out; r++)
        for (size_t j = 0; j < n; j++) W_hat[r * n + st->perm[j]] = st->W[r * n + j];
}

/* Columns [s0, s1) of block [b0, b1), every row independently [GPTQ, Alg. 1, inner
   loop]: q = round(w_c); E[:, c - b0] = (w_c - q) / U_cc; w_k -= E_c U_ck for
   c < k < b1. The rows are the parallel dimension (wide layers have thousands). */
static void sweep_columns(qn_gptq_state *st, const qn_gptq_quantizer *q, size_t s0, size_t s1, size_t b0,
                          size_t b1, float *E, size_t ldE)
{
    size_t n = st->d_in;
    const float *U = st->U;
    #pragma omp parallel for schedule(static)
    for (size_t r = 0; r < st->d_out; r++) {
        float *restrict w = st->W + r * n;
        float *restrict e_row = E + r * ldE;
        for (size_t c = s0; c < s1; c++) {
            float u = U[c * n + c], wc = w[c];
            float qc = q->round(q->ctx, r, c, wc, u);
            float e = (wc - qc) / u;
            w[c] = qc;
            e_row[c - b0] = e;
            const float *restrict u_row = U + c * n;
            for (size_t k = c + 1; k < b1; k++) w[k] -= e * u_row[k];
        }
    }
}

/* The lazy batch update [GPTQ, Sec. 3 "Lazy Batch-Updates"]:
   W[:, b1:] -= E[:, 0:b1-b0] U[b0:b1, b1:]. */
static void update_trailing(qn_gptq_state *st, const float *E, size_t ldE, size_t b0, size_t b1)
{
    size_t n = st->d_in;
    if (b1 >= n) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)st->d_out, (int)(n - b1), (int)(b1 - b0), -1.0f,
                E, (int)ldE, st->U + b0 * n + b1, (int)n, 1.0f, st->W + b1, (int)n);
}

qn_status qn_gptq_sweep(qn_gptq_state *st, size_t blocksize, const qn_gptq_quantizer *q, const char *stage,
                        qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    qn_status s = QN_OK;
    size_t n = st->d_in, g = q->groupsize ? q->groupsize : n;
    if (!blocksize) blocksize = QN_GPTQ_BLOCKSIZE;
    float *E = malloc(st->d_out * blocksize * sizeof *E);
    float *u_diag = malloc(n * sizeof *u_diag);
    if (!E || !u_diag) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t j = 0; j < n; j++) u_diag[j] = st->U[j * n + j];
    for (size_t b0 = 0; b0 < n; b0 += blocksize) {
        if (cancel && atomic_load(cancel)) { s = qn_err_set(err, QN_ERR_CANCELLED, "cancelled"); goto done; }
        size_t b1 = b0 + blocksize < n ? b0 + blocksize : n;
        for (size_t c = b0; c < b1;) {
            if (c % g == 0) {
                size_t width = n - c < g ? n - c : g;
                if ((s = q->fit(q->ctx, st->W, n, c, width, u_diag + c, err)) != QN_OK) goto done;
            }
            size_t s1 = (c / g + 1) * g < b1 ? (c / g + 1) * g : b1;
            sweep_columns(st, q, c, s1, b0, b1, E, blocksize);
            c = s1;
        }
        update_trailing(st, E, blocksize, b0, b1);
        qn_event ev = { .kind = QN_EV_PROGRESS, .stage = stage, .done = (int64_t)b1, .total = (int64_t)n,
                        .value = NAN };
        qn_emit(sink, &ev);
    }
done:
    free(E);
    free(u_diag);
    return s;
}

/* ---- GPTQ with min-max groups ---- */

typedef struct {
    qn_rtn_layer *L;
    float        *scale, *zero;   /* (d_out) the current group's statistics, fp16-exact */
    size_t        group;          /* index of the current group */
} minmax_ctx;

/* Fits one min-max grid per row on the group's current weights [GPTQ, Alg. 1,
   "if j mod B = 0"], storing them in fp16 and rounding with the stored values. */
static qn_status minmax_fit(void *vctx, const float *W, size_t ld, size_t c0, size_t width, const float *u_diag,
                            qn_err *err)
{
    (void)u_diag;
    (void)err;
    minmax_ctx *ctx = vctx;
    qn_rtn_layer *L = ctx->L;
    ctx->group = c0 / L->groupsize;
    #pragma omp parallel for schedule(static)
    for (size_t r = 0; r < L->d_out; r++) {
        float s, z;
        qn_rtn_fit(W + r * ld + c0, width, L->bits, &s, &z);
        size_t at = r * L->n_groups + ctx->group;
        L->scale[at] = qn_f32_to_f16(s);
        L->zero[at] = qn_f32_to_f16(z);
        ctx->scale[r] = qn_f16_to_f32(L->scale[at]);
        ctx->zero[r] = qn_f16_to_f32(L->zero[at]);
    }
    return QN_OK;
}

static float minmax_round(void *vctx, size_t r, size_t c, float w, float u_jj)
{
    (void)u_jj;
    minmax_ctx *ctx = vctx;
    uint8_t code = qn_rtn_code(w, ctx->scale[r], ctx->zero[r], (1 << ctx->L->bits) - 1);
    ctx->L->codes[r * ctx->L->d_in + c] = code;
    return qn_rtn_dequant(code, ctx->scale[r], ctx->zero[r]);
}

qn_status qn_gptq_quantize_layer(const qn_layer_problem *p, const qn_gptq_opts *opts, qn_event_sink sink,
                                 const atomic_bool *cancel, qn_layer_result *res, qn_rtn_layer *out, qn_err *err)
{
    qn_status s;
    qn_gptq_state st = {0};
    qn_rtn_layer L = {0};
    minmax_ctx ctx = {0};
    memset(res, 0, sizeof *res);
    double t0 = omp_get_wtime();
    if (opts->bits < 1 || opts->bits > QN_RTN_MAX_BITS)
        return qn_err_set(err, QN_ERR_ARG, "%s: weight bits must be 1..%d, found %d", p->name, QN_RTN_MAX_BITS,
                          opts->bits);
    if (opts->groupsize > p->d_in)
        return qn_err_set(err, QN_ERR_ARG, "%s: group size %zu is larger than the %zu input columns", p->name,
                          opts->groupsize, p->d_in);
    if ((s = qn_gptq_state_init(&st, p, opts->act_order, opts->percdamp, sink, err)) != QN_OK) return s;
    if ((s = qn_rtn_layer_init(&L, p->d_out, p->d_in, opts->bits, opts->groupsize, opts->act_order, err)) != QN_OK) {
        qn_err_prefix(err, "%s: ", p->name);
        goto fail;
    }
    ctx.L = &L;
    ctx.scale = malloc(p->d_out * sizeof *ctx.scale);
    ctx.zero = malloc(p->d_out * sizeof *ctx.zero);
    res->W_hat = malloc(p->d_out * p->d_in * sizeof *res->W_hat);
    if (!ctx.scale || !ctx.zero || !res->W_hat) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name);
        goto fail;
    }
    qn_gptq_quantizer q = { .groupsize = L.groupsize, .fit = minmax_fit, .round = minmax_round, .ctx = &ctx };
    if ((s = qn_gptq_sweep(&st, opts->blocksize, &q, "gptq", sink, cancel, err)) != QN_OK) {
        qn_err_prefix(err, "%s: ", p->name);
        goto fail;
    }
    qn_gptq_state_unpermute(&st, res->W_hat);
    if (L.perm) memcpy(L.perm, st.perm, p->d_in * sizeof *L.perm);
    res->seconds = omp_get_wtime() - t0;
    res->bits = qn_rtn_bits(opts->bits, opts->groupsize, p->d_in);
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    if (res->relative_error < 0) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name); goto fail; }
    free(ctx.scale);
    free(ctx.zero);
    qn_gptq_state_done(&st);
    if (out) *out = L;
    else qn_rtn_layer_done(&L);
    return QN_OK;
fail:
    free(ctx.scale);
    free(ctx.zero);
    qn_gptq_state_done(&st);
    qn_rtn_layer_done(&L);
    qn_layer_result_done(res);
    return s;
}
