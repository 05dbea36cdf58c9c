/* aqlm_beam.c: passes of the code search over a layer [AQLM, Egiazarian et al.
   2024, §3.2 "Phase 1"]. Rows are independent (they share out over threads);
   within a row the groups are visited left to right and each is re-coded by
   qn_aqlm_search_group (aqlm_search.c) for a metric A and target t:
   - descent pass, the exact loss with every other group fixed [eq. 4-6]:
       A = H_JJ,  t = P[i, J] / s_i + H_JJ v_old,  P = (W - W_hat) H,
     after a change by d = s_i (v_new - v_old), P[i, :] -= d^T H[J, :];
     a group changes only if the loss strictly drops, so the pass never raises it.
   - feedback pass, GPTQ's order (Frantar et al., ICLR 2023; for vector codes
     GPTVQ, van Baalen et al. 2024): with U = chol((H + damping)^-1) upper,
     each group is coded for the compensated weights T (T = W at the start) under
     the metric Q_J = (U_JJ^T U_JJ)^-1 that prices the later columns' best
     response, t = Q_J T[i, J] / s_i, and its error e = T[i, J] - s_i v is carried
     on: T[i, later] -= (e^T U_JJ^-1) U[J, later]. This looks ahead where the
     descent pass cannot; it may raise the loss, so rounds follow it with a
     descent pass (aqlm.c).
   Both passes keep their row buffer exact inside a block of columns by rank-g
   row updates and carry the block's updates to the later columns with one GEMM
   (GPTQ's lazy batch updates). With one codebook and beam > 1 the beam runs
   across the groups of a block (search_row_block_beam), the research code's
   beam across a row cut at block ends; with several codebooks it runs within
   each group (aqlm_search.c). */
#include "engine/aqlm_impl.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Columns per block of groups: the row buffer is updated row by row inside a
   block and by a GEMM after it; wider blocks move work from the GEMM to the
   row updates. */
#define BLOCK_COLS 128
/* GPTQ's damping: H + FEEDBACK_DAMP * mean(diag H) I before inverting. */
#define FEEDBACK_DAMP 0.01

typedef enum { PASS_DESCENT, PASS_FEEDBACK } pass_kind;

typedef struct {
    pass_kind    kind;
    float       *T;       /* (d_out, d_in) P for descent, the compensated weights for feedback */
    const float *R;       /* (d_in, d_in) carries a group's update to later columns: H or U */
    const float *A;       /* (G, g, g) metric per group: H_JJ or Q_J */
} pass_def;

static void matvec(size_t g, const float *A, const float *x, float *y)
{
    for (size_t a = 0; a < g; a++) {
        float acc = 0.0f;
        for (size_t b = 0; b < g; b++) acc += A[a * g + b] * x[b];
        y[a] = acc;
    }
}

/* Re-codes groups [j0, j1) of row i. T: row i of the pass's buffer, exact for
   these columns on entry and kept exact for them; dRow: (c1 - c0) the block's
   updates to carry to later columns (d for descent, e^T U_JJ^-1 for feedback;
   zero where nothing is carried). Returns the groups whose codes changed. */
static size_t search_row_block(qn_aqlm_state *st, const pass_def *pd, size_t i, size_t j0, size_t j1,
                               const float *nrm, float *dRow, qn_aqlm_scratch *w)
{
    const size_t g = st->g, G = st->G, K = st->K, M = (size_t)st->M, d_in = st->d_in;
    const size_t c0 = j0 * g, c1 = j1 * g;
    float *T = pd->T + i * d_in;
    const float s = st->s[i];
    memset(dRow, 0, (c1 - c0) * sizeof *dRow);
    if (!(fabsf(s) > 0.0f) || !isfinite(s)) return 0;   /* a dead row: every code is as good */
    size_t changed = 0;
    for (size_t j = j0; j < j1; j++) {
        const size_t J = j * g;
        const float *A = pd->A + j * g * g, *n = nrm + (j - j0) * M * K;
        uint16_t *b = st->codes + (i * G + j) * M;
        memcpy(w->v, st->C + (size_t)b[0] * g, g * sizeof *w->v);
        for (size_t m = 1; m < M; m++)
            for (size_t a = 0; a < g; a++) w->v[a] += st->C[(m * K + b[m]) * g + a];
        memcpy(w->v_old, w->v, g * sizeof *w->v);
        if (pd->kind == PASS_DESCENT) {                  /* t = P/s + H_JJ v_old */
            matvec(g, A, w->v, w->t);
            for (size_t a = 0; a < g; a++) w->t[a] += T[J + a] / s;
        } else {                                         /* t = Q_J T / s */
            for (size_t a = 0; a < g; a++) w->e[a] = T[J + a] / s;
            matvec(g, A, w->e, w->t);
        }
        memcpy(w->cur, b, M * sizeof *b);
        qn_aqlm_search_group(st, A, n, w->cur, w);
        int differs = memcmp(w->cur, b, M * sizeof *b) != 0;
        if (differs) {
            memcpy(b, w->cur, M * sizeof *b);
            changed++;
        }
        float *d = dRow + (J - c0);
        if (pd->kind == PASS_DESCENT) {
            if (!differs) continue;
            for (size_t a = 0; a < g; a++) d[a] = s * (w->v[a] - w->v_old[a]);
        } else {
            const float *Ui = st->UJinv + j * g * g;     /* d = e^T U_JJ^-1 */
            for (size_t a = 0; a < g; a++) w->e[a] = T[J + a] - s * w->v[a];
            for (size_t c = 0; c < g; c++) {
                float acc = 0.0f;
                for (size_t a = 0; a < g; a++) acc += w->e[a] * Ui[a * g + c];
                d[c] = acc;
            }
        }
        for (size_t a = 0; a < g; a++)                   /* T[i, J+g:c1] -= d^T R[J, J+g:c1] */
            if (d[a] != 0.0f)
                qn_aqlm_axpy_neg(st->simd, c1 - J - g, d[a], pd->R + (J + a) * d_in + J + g, T + J + g);
    }
    return changed;
}

/* One thread's buffers for the beam across groups (one codebook). */
typedef struct {
    float    *T[2], *D[2];   /* (beam, bw) hypotheses' buffer segment and carried updates, current and next */
    float    *val[2];        /* (beam) loss change (descent) or summed error (feedback) so far */
    uint16_t *codes[2];      /* (beam, nb) codes of the block's groups */
    float    *scores;        /* (K) */
    float    *top;           /* (beam) */
    int32_t  *top_par;       /* (beam) */
    uint32_t *top_k;         /* (beam) */
    float    *t, *v;         /* (g) */
} block_beam;

static size_t block_beam_bytes(size_t B, size_t nb, size_t bw, size_t K, size_t g)
{
    return (4 * B * bw + 2 * B + K + B + 2 * g) * sizeof(float) + 2 * B * sizeof(uint32_t) +
           2 * B * nb * sizeof(uint16_t);
}

static void block_beam_bind(void *mem, size_t B, size_t nb, size_t bw, size_t K, size_t g, block_beam *bb)
{
    float *f = mem;
    for (int sd = 0; sd < 2; sd++) {
        bb->T[sd] = f; f += B * bw;
        bb->D[sd] = f; f += B * bw;
        bb->val[sd] = f; f += B;
    }
    bb->scores = f; f += K;
    bb->top = f; f += B;
    bb->t = f; f += g;
    bb->v = f; f += g;
    bb->top_par = (int32_t *)f;
    bb->top_k = (uint32_t *)(bb->top_par + B);
    bb->codes[0] = (uint16_t *)(bb->top_k + B);
    bb->codes[1] = bb->codes[0] + B * nb;
}

static void top_insert(block_beam *bb, int *cnt, int cap, float val, int32_t par, uint32_t k)
{
    int c = *cnt;
    if (c == cap && !(val < bb->top[c - 1])) return;
    int at = c < cap ? c : cap - 1;
    while (at > 0 && val < bb->top[at - 1]) {
        bb->top[at] = bb->top[at - 1];
        bb->top_par[at] = bb->top_par[at - 1];
        bb->top_k[at] = bb->top_k[at - 1];
        at--;
    }
    bb->top[at] = val;
    bb->top_par[at] = par;
    bb->top_k[at] = k;
    if (c < cap) *cnt = c + 1;
}

/* With one codebook the search of a group is exact, so a beam inside a group is
   moot; beam > 1 then runs across the groups of a block, as the research code's
   beam runs across a row: hypotheses are the block's codes with their own copy
   of the row buffer, each extended by every codeword of the next group, the
   `beam` best by the row's loss change (descent) or summed GPTQ error (feedback)
   kept. The best at the block's end is written back. The same contract as
   search_row_block. */
static size_t search_row_block_beam(qn_aqlm_state *st, const pass_def *pd, size_t i, size_t j0, size_t j1,
                                    const float *nrm, float *dRow, block_beam *bb)
{
    const size_t g = st->g, G = st->G, K = st->K, d_in = st->d_in, c0 = j0 * g, c1 = j1 * g, bw = c1 - c0;
    const size_t nb = j1 - j0;
    const int B = st->beam;
    float *T = pd->T + i * d_in;
    const float s = st->s[i];
    memset(dRow, 0, bw * sizeof *dRow);
    if (!(fabsf(s) > 0.0f) || !isfinite(s)) return 0;
    int nh = 1, side = 0;
    memcpy(bb->T[0], T + c0, bw * sizeof *T);
    memset(bb->D[0], 0, bw * sizeof *T);
    bb->val[0][0] = 0.0f;
    for (size_t jj = 0; jj < nb; jj++) bb->codes[0][jj] = st->codes[i * G + j0 + jj];
    for (size_t jj = 0; jj < nb; jj++) {
        const size_t j = j0 + jj, off = jj * g, J = j * g;
        const float *A = pd->A + j * g * g, *n = nrm + jj * K;
        int cnt = 0;
        for (int h = 0; h < nh; h++) {
            const float *Th = bb->T[side] + (size_t)h * bw + off;
            const float *v_old = st->C + (size_t)bb->codes[side][(size_t)h * nb + jj] * g;
            float base = bb->val[side][h];
            if (pd->kind == PASS_DESCENT) {              /* t = P/s + A v_old; base - s^2 f(v_old) */
                matvec(g, A, v_old, bb->t);
                for (size_t a = 0; a < g; a++) bb->t[a] += Th[a] / s;
                matvec(g, A, v_old, bb->v);
                float f_old = 0.0f;
                for (size_t a = 0; a < g; a++) f_old += v_old[a] * (bb->v[a] - 2.0f * bb->t[a]);
                base -= s * s * f_old;
            } else {                                     /* t = Q T/s; base + T^T Q T */
                for (size_t a = 0; a < g; a++) bb->v[a] = Th[a] / s;
                matvec(g, A, bb->v, bb->t);
                float tqt = 0.0f;
                for (size_t a = 0; a < g; a++) tqt += Th[a] * bb->t[a];
                base += s * tqt;
            }
            qn_aqlm_scores(st->simd, st->CT, n, K, g, bb->t, bb->scores);
            float worst = cnt < B ? INFINITY : bb->top[cnt - 1], s2 = s * s, val;
            for (size_t k = qn_aqlm_next_below(st->simd, bb->scores, K, 0, base, s2, worst, &val); k < K;
                 k = qn_aqlm_next_below(st->simd, bb->scores, K, k + 1, base, s2, worst, &val)) {
                top_insert(bb, &cnt, B, val, h, (uint32_t)k);
                worst = cnt < B ? INFINITY : bb->top[cnt - 1];
            }
        }
        for (int q = 0; q < cnt; q++) {                  /* the next beam */
            int h = bb->top_par[q];
            uint32_t k = bb->top_k[q];
            float *Tn = bb->T[!side] + (size_t)q * bw, *Dn = bb->D[!side] + (size_t)q * bw;
            uint16_t *cn = bb->codes[!side] + (size_t)q * nb;
            memcpy(Tn, bb->T[side] + (size_t)h * bw, bw * sizeof *Tn);
            memcpy(Dn, bb->D[side] + (size_t)h * bw, bw * sizeof *Dn);
            memcpy(cn, bb->codes[side] + (size_t)h * nb, nb * sizeof *cn);
            const float *c_new = st->C + (size_t)k * g, *c_old = st->C + (size_t)cn[jj] * g;
            float *d = Dn + off;
            if (pd->kind == PASS_DESCENT) {
                if (k == cn[jj]) { bb->val[!side][q] = bb->top[q]; continue; }
                for (size_t a = 0; a < g; a++) d[a] = s * (c_new[a] - c_old[a]);
            } else {
                const float *Ui = st->UJinv + j * g * g;
                for (size_t a = 0; a < g; a++) bb->v[a] = Tn[off + a] - s * c_new[a];
                for (size_t c = 0; c < g; c++) {
                    float acc = 0.0f;
                    for (size_t a = 0; a < g; a++) acc += bb->v[a] * Ui[a * g + c];
                    d[c] = acc;
                }
            }
            cn[jj] = (uint16_t)k;
            for (size_t a = 0; a < g; a++)
                if (d[a] != 0.0f)
                    qn_aqlm_axpy_neg(st->simd, bw - off - g, d[a], pd->R + (J + a) * d_in + J + g, Tn + off + g);
            bb->val[!side][q] = bb->top[q];
        }
        nh = cnt;
        side = !side;
    }
    size_t changed = 0;                                  /* hypotheses are sorted: 0 is the best */
    for (size_t jj = 0; jj < nb; jj++) {
        uint16_t *b = st->codes + i * G + j0 + jj;
        changed += *b != bb->codes[side][jj];
        *b = bb->codes[side][jj];
    }
    memcpy(T + c0, bb->T[side], bw * sizeof *T);
    memcpy(dRow, bb->D[side], bw * sizeof *dRow);
    return changed;
}

static qn_status run_pass(qn_aqlm_state *st, const pass_def *pd, size_t *n_changed, qn_err *err)
{
    const size_t g = st->g, G = st->G, K = st->K, M = (size_t)st->M, d_in = st->d_in, d_out = st->d_out;
    const size_t nb = BLOCK_COLS / g > 1 ? BLOCK_COLS / g : 1, bw_max = nb * g;
    const int across = st->M == 1 && st->beam > 1;       /* the beam runs across groups */
    const size_t n_threads = (size_t)omp_get_max_threads();
    size_t per = across ? block_beam_bytes((size_t)st->beam, nb, bw_max, K, g) : qn_aqlm_scratch_bytes(st);
    per = (per + 63) / 64 * 64;                          /* each thread's part aligned, on its own cache lines */
    qn_status s = QN_OK;
    float *nrm = malloc(nb * M * K * sizeof *nrm), *dW = malloc(d_out * bw_max * sizeof *dW);
    unsigned char *scratch = malloc(n_threads * per);
    if (!nrm || !dW || !scratch) {
        s = qn_err_set(err, QN_ERR_NOMEM, "aqlm code search: out of memory for %zu rows", d_out);
        goto fail;
    }
    size_t total = 0;
    for (size_t j0 = 0; j0 < G; j0 += nb) {
        const size_t j1 = j0 + nb < G ? j0 + nb : G, c0 = j0 * g, c1 = j1 * g, bw = c1 - c0;
        #pragma omp parallel for schedule(static) if ((j1 - j0) * M * K * g * g > QN_AQLM_PAR_MIN_WORK)
        for (size_t jm = 0; jm < (j1 - j0) * M; jm++) {   /* n_jmk = C_m[k]^T A_j C_m[k] */
            size_t j = j0 + jm / M, m = jm % M;
            qn_aqlm_gram(st->simd, st->CT + m * g * K, K, g, pd->A + j * g * g, nrm + jm * K);
        }
        size_t block_changed = 0;
        #pragma omp parallel reduction(+ : block_changed) if (d_out * (j1 - j0) * M * K * g > QN_AQLM_PAR_MIN_WORK)
        {
            unsigned char *mine = scratch + (size_t)omp_get_thread_num() * per;
            qn_aqlm_scratch w = {0};
            block_beam bb = {0};
            if (across) block_beam_bind(mine, (size_t)st->beam, nb, bw_max, K, g, &bb);
            else qn_aqlm_scratch_bind(st, mine, &w);
            #pragma omp for schedule(dynamic, 16)
            for (size_t i = 0; i < d_out; i++)
                block_changed += across ? search_row_block_beam(st, pd, i, j0, j1, nrm, dW + i * bw, &bb)
                                        : search_row_block(st, pd, i, j0, j1, nrm, dW + i * bw, &w);
        }
        total += block_changed;
        if ((block_changed || pd->kind == PASS_FEEDBACK) && c1 < d_in)   /* T[:, c1:] -= dW R[c0:c1, c1:] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d_out, (int)(d_in - c1), (int)bw,
                        -1.0f, dW, (int)bw, pd->R + c0 * d_in + c1, (int)d_in, 1.0f, pd->T + c1, (int)d_in);
    }
    qn_aqlm_refresh(st);
    *n_changed = total;
fail:
    free(nrm);
    free(dW);
    free(scratch);
    return s;
}

qn_status qn_aqlm_beam_pass(qn_aqlm_state *st, size_t *n_changed, qn_err *err)
{
    const size_t D = st->d_out * st->d_in;
    pass_def pd = { PASS_DESCENT, st->Y, st->H, st->HJJ };
    #pragma omp parallel for schedule(static) if (D > QN_AQLM_PAR_MIN_WORK)   /* P = W H - diag(s) U H */
    for (size_t e = 0; e < D; e++) st->Y[e] = st->WH[e] - st->s[e / st->d_in] * st->Y[e];
    return run_pass(st, &pd, n_changed, err);
}

/* HU = chol((H + damping)^-1) upper (GPTQ's H^-1 factor), then per group
   UJinv = U_JJ^-1 and QJ = U_JJ^-1 U_JJ^-T = (U_JJ^T U_JJ)^-1. Returns -1 when H
   cannot be factored. */
static int feedback_prepare(qn_aqlm_state *st)
{
    const size_t d = st->d_in, g = st->g;
    float *U = st->HU;
    double mean = 0.0;
    for (size_t a = 0; a < d; a++) mean += st->H[a * d + a];
    mean /= (double)d;
    if (!(mean > 0.0)) return -1;
    memcpy(U, st->H, d * d * sizeof *U);
    for (size_t a = 0; a < d; a++) U[a * d + a] += (float)(FEEDBACK_DAMP * mean);
    if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', (int)d, U, (int)d) ||
        LAPACKE_spotri(LAPACK_ROW_MAJOR, 'U', (int)d, U, (int)d))
        return -1;
    for (size_t a = 0; a < d; a++)
        for (size_t b = 0; b < a; b++) U[a * d + b] = U[b * d + a];
    if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', (int)d, U, (int)d)) return -1;
    for (size_t a = 0; a < d; a++)
        for (size_t b = 0; b < a; b++) U[a * d + b] = 0.0f;
    for (size_t j = 0; j < st->G; j++) {
        const float *Ujj = U + j * g * d + j * g;
        float *Ui = st->UJinv + j * g * g, *Q = st->QJ + j * g * g;
        for (size_t c = 0; c < g; c++)                   /* U_JJ^-1 column by column, back substitution */
            for (size_t a = g; a-- > 0;) {
                double v = a == c;
                for (size_t b = a + 1; b < g; b++) v -= (double)Ujj[a * d + b] * Ui[b * g + c];
                Ui[a * g + c] = (float)(v / Ujj[a * d + a]);
            }
        for (size_t a = 0; a < g; a++)
            for (size_t b = 0; b < g; b++) {
                double v = 0.0;
                for (size_t c = 0; c < g; c++) v += (double)Ui[a * g + c] * Ui[b * g + c];
                Q[a * g + b] = (float)v;
            }
    }
    return 0;
}

qn_status qn_aqlm_feedback_pass(qn_aqlm_state *st, int *usable, qn_err *err)
{
    const size_t d = st->d_in, G = st->G, g = st->g;
    *usable = 0;
    if (!st->HU) {
        st->HU = malloc(d * d * sizeof *st->HU);
        st->QJ = malloc(G * g * g * sizeof *st->QJ);
        st->UJinv = malloc(G * g * g * sizeof *st->UJinv);
        if (!st->HU || !st->QJ || !st->UJinv)
            return qn_err_set(err, QN_ERR_NOMEM, "aqlm code search: out of memory for a %zux%zu factor", d, d);
        if (feedback_prepare(st)) {
            free(st->QJ);                                /* HU stays allocated: not retried */
            st->QJ = NULL;
            return QN_OK;
        }
    }
    if (!st->QJ) return QN_OK;
    *usable = 1;
    memcpy(st->Yp, st->W, st->d_out * d * sizeof *st->Yp);
    pass_def pd = { PASS_FEEDBACK, st->Yp, st->HU, st->QJ };
    size_t changed;
    return run_pass(st, &pd, &changed, err);
}
