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

/* A = J (H[perm][:, perm] + damp * mean|diag H| * I) J, J the exchange matrix (rows
   and columns reversed, for inverse_cholesky_upper); dead diagonal entries are set
   to 1 (research code order: damp first, then dead := 1). A: (n, n) symmetric. */
static void damped_hessian_reversed(const float *H, const uint32_t *perm, size_t n, double percdamp,
                                    double mean_diag, float *A)
{
    #pragma omp parallel for schedule(static) if (n * n >= QN_QUANT_PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) A[i * n + j] = H[(size_t)perm[n - 1 - i] * n + perm[n - 1 - j]];
    float damp = (float)(percdamp * mean_diag);
    for (size_t j = 0; j < n; j++) {
        bool dead = A[j * n + j] == 0.0f;
        A[j * n + j] = dead ? 1.0f : A[j * n + j] + damp;
    }
}

/* U = chol(H^-1) upper [GPTQ, Sec. 3 "Cholesky Reformulation"] without forming
   H^-1: given A = J H J = L L^T (lower Cholesky), H = M M^T with M = J L J upper,
   so H^-1 = U^T U with U = M^-1 = J L^-1 J: one potrf and one trtri instead of
   potrf, potri, potrf (half the flops). A is symmetric, so column-major LAPACK
   sees the same matrix; its column-major lower triangle is our row-major upper
   one, and U[a][b] = L^-1[n-1-a][n-1-b] is an involution on that triangle,
   swapped in place. Returns false when A is not numerically positive definite. */
static bool inverse_cholesky_upper(float *A, size_t n)
{
    lapack_int ln = (lapack_int)n;
    if (LAPACKE_spotrf(LAPACK_COL_MAJOR, 'L', ln, A, ln) != 0) return false;
    if (LAPACKE_strtri(LAPACK_COL_MAJOR, 'L', 'N', ln, A, ln) != 0) return false;
    bool parallel = n * n >= QN_QUANT_PARALLEL_MIN_WORK;
    #pragma omp parallel for schedule(dynamic, 16) if (parallel)
    for (size_t a = 0; a < n; a++)
        for (size_t b = a; b < n; b++) {
            size_t p = a * n + b, q = (n - 1 - b) * n + (n - 1 - a);
            if (p < q) { float t = A[p]; A[p] = A[q]; A[q] = t; }
        }
    #pragma omp parallel for schedule(dynamic, 16) if (parallel)
    for (size_t a = 1; a < n; a++) memset(A + a * n, 0, a * sizeof *A);
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
    for (size_t j = 0; j < n; j++) st->n_dead += p->H[j * n + j] == 0.0f;
    #pragma omp parallel for schedule(static) if (m * n >= QN_QUANT_PARALLEL_MIN_WORK)
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < n; j++) {
            size_t col = st->perm[j];
            st->W[r * n + j] = p->H[col * n + col] == 0.0f ? 0.0f : p->W[r * n + col];
        }

    double damp = percdamp;
    char tried[128] = "";
    for (int attempt = 0;; attempt++) {
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%g", attempt ? ", " : "", damp);
        damped_hessian_reversed(p->H, st->perm, n, damp, mean_diag, st->U);
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
    #pragma omp parallel for schedule(static) if (st->d_out * n >= QN_QUANT_PARALLEL_MIN_WORK)
    for (size_t r = 0; r < st->d_out; r++)
        for (size_t j = 0; j < n; j++) W_hat[r * n + st->perm[j]] = st->W[r * n + j];
}

/* Columns [s0, s1) of block [b0, b1) for rows [r0, r1) [GPTQ, Alg. 1, inner loop]:
   q = round(w_c); E[:, c - b0] = (w_c - q) / U_cc; w_k -= E_c U_ck for c < k < b1. */
static void sweep_columns(qn_gptq_state *st, const qn_gptq_quantizer *q, size_t r0, size_t r1, size_t s0, size_t s1,
                          size_t b0, size_t b1, float *E, size_t ldE)
{
    size_t n = st->d_in;
    const float *U = st->U;
    for (size_t r = r0; r < r1; r++) {
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

/* One block for the rows [r0, r1) of one panel: fit statistics where a group starts
   (c % groupsize == 0), sweep up to the next group start or the block end. Panels
   are independent inside a block, so a block costs one parallel region. */
static void sweep_panel(qn_gptq_state *st, const qn_gptq_quantizer *q, size_t g, const float *u_diag, size_t r0,
                        size_t r1, size_t b0, size_t b1, float *E, size_t ldE)
{
    size_t n = st->d_in;
    for (size_t c = b0; c < b1;) {
        if (c % g == 0) q->fit(q->ctx, st->W, n, r0, r1, c, n - c < g ? n - c : g, u_diag + c);
        size_t s1 = (c / g + 1) * g < b1 ? (c / g + 1) * g : b1;
        sweep_columns(st, q, r0, r1, c, s1, b0, b1, E, ldE);
        c = s1;
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
    size_t panel = q->panel_rows ? q->panel_rows : QN_GPTQ_PANEL_ROWS;
    size_t n_panels = (st->d_out + panel - 1) / panel;
    if (!blocksize) blocksize = QN_GPTQ_BLOCKSIZE;
    float *E = malloc(st->d_out * blocksize * sizeof *E);
    float *u_diag = malloc(n * sizeof *u_diag);
    if (!E || !u_diag) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t j = 0; j < n; j++) u_diag[j] = st->U[j * n + j];
    for (size_t b0 = 0; b0 < n; b0 += blocksize) {
        if (cancel && atomic_load(cancel)) { s = qn_err_set(err, QN_ERR_CANCELLED, "cancelled"); goto done; }
        size_t b1 = b0 + blocksize < n ? b0 + blocksize : n;
        size_t work = st->d_out * (b1 - b0) * (b1 - b0) / 2;   /* the in-block updates */
        #pragma omp parallel for schedule(dynamic, 1) if (work >= QN_QUANT_PARALLEL_MIN_WORK)
        for (size_t i = 0; i < n_panels; i++) {
            size_t r0 = i * panel, r1 = r0 + panel < st->d_out ? r0 + panel : st->d_out;
            sweep_panel(st, q, g, u_diag, r0, r1, b0, b1, E, blocksize);
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
} minmax_ctx;

/* Fits one min-max grid per row of [r0, r1) on the group's current weights [GPTQ,
   Alg. 1, "if j mod B = 0"], storing them in fp16 and rounding with the stored values. */
static void minmax_fit(void *vctx, const float *W, size_t ld, size_t r0, size_t r1, size_t c0, size_t width,
                       const float *u_diag)
{
    (void)u_diag;
    minmax_ctx *ctx = vctx;
    qn_rtn_layer *L = ctx->L;
    size_t group = c0 / L->groupsize;
    for (size_t r = r0; r < r1; r++) {
        float s, z;
        qn_rtn_fit(W + r * ld + c0, width, L->bits, &s, &z);
        size_t at = r * L->n_groups + group;
        L->scale[at] = qn_f32_to_f16(s);
        L->zero[at] = qn_f32_to_f16(z);
        ctx->scale[r] = qn_f16_to_f32(L->scale[at]);
        ctx->zero[r] = qn_f16_to_f32(L->zero[at]);
    }
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
    qn_gptq_quantizer q = { .groupsize = L.groupsize, .panel_rows = 0, .fit = minmax_fit, .round = minmax_round,
                            .ctx = &ctx };
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
