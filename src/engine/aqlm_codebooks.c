/* aqlm_codebooks.c: the codebook and scale update of AQLM [Egiazarian et al.
   2024, §3.2 "Phase 2", eq. 7]. With codes and scales fixed the reconstruction
   W_hat = diag(s) U(C) is linear in the codebook entries C, so the loss
   trace((W - W_hat) H (W - W_hat)^T) is quadratic in C: its minimum solves the
   normal equations A C = b with
       A C = sum_i s_i^2 U_i^*((U(C) H)_i)      b = sum_i s_i U_i^*((W H)_i),
   where U_i^* scatters the columns J of row i back onto the codewords b_ijm used
   there. The research code takes 100 Adam steps on this loss per round; we solve
   it by conjugate gradients (each step one GEMM U(p) H), warm-started from the
   current codebooks and preconditioned by the codeword-diagonal blocks
   D_mk = sum_{(i,j): b_ijm = k} s_i^2 H_JJ (Cholesky per codeword). CG lowers the
   quadratic monotonically, so a round never loses ground. Then each row's scale
   has the closed form s_i = <(W H)_i, U_i> / <U_i, (U H)_i>.
   Y = U H is carried along (Y += alpha U(p) H) so the scales and the loss cost no
   extra GEMM. Not here: Adam, codebook-value quantization. */
#include "engine/aqlm_impl.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* CG stops early once r^T D^-1 r falls below this fraction of its start (a
   relative residual of 1e-4): the loss is then within ~1e-8 of the quadratic's
   minimum and the entries within ~1e-4 of theirs, below fp16's resolution.
   With this preconditioner that takes 5 to 7 steps. */
#define CG_RESIDUAL_DROP 1e-8
/* Ridge added to each preconditioner block, relative to its mean diagonal, so a
   codeword seen in a direction H never excites still factors (the preconditioner
   only; A itself is untouched). */
#define PRECOND_RIDGE 1e-6
/* Past this many floats (M 2^B g^2: 128 MiB) the preconditioner keeps only the
   diagonal of each block (large g with 16-bit codebooks). */
#define PRECOND_MAX_FLOATS ((size_t)1 << 25)

void qn_aqlm_transpose_codebooks(qn_aqlm_state *st)
{
    const size_t K = st->K, g = st->g;
    for (int m = 0; m < st->M; m++)
        for (size_t k = 0; k < K; k++)
            for (size_t a = 0; a < g; a++)
                st->CT[((size_t)m * g + a) * K + k] = st->C[((size_t)m * K + k) * g + a];
}

/* U[i, J] = sum_m C_m[b_ijm] [AQLM eq. 2 without the scale]. */
void qn_aqlm_dequant(const qn_aqlm_state *st, const float *C, float *U)
{
    const size_t G = st->G, g = st->g, K = st->K, M = (size_t)st->M;
    #pragma omp parallel for schedule(static) if (st->d_out * st->d_in * M > QN_AQLM_PAR_MIN_WORK)
    for (size_t i = 0; i < st->d_out; i++)
        for (size_t j = 0; j < G; j++) {
            const uint16_t *b = st->codes + (i * G + j) * M;
            float *u = U + i * st->d_in + j * g;
            memcpy(u, C + (size_t)b[0] * g, g * sizeof *u);
            for (size_t m = 1; m < M; m++) {
                const float *c = C + (m * K + b[m]) * g;
                for (size_t a = 0; a < g; a++) u[a] += c[a];
            }
        }
}

/* wu_i = <(W H)_i, U_i>, uy_i = <U_i, (U H)_i>, the pieces of the loss
   trace(W H W^T) - 2 sum_i s_i wu_i + sum_i s_i^2 uy_i. */
static void row_dots(qn_aqlm_state *st)
{
    const size_t n = st->d_in;
    #pragma omp parallel for schedule(static) if (2 * st->d_out * n > QN_AQLM_PAR_MIN_WORK)
    for (size_t i = 0; i < st->d_out; i++) {
        const float *wh = st->WH + i * n, *u = st->U + i * n, *y = st->Y + i * n;
        double wu = 0.0, uy = 0.0;
        for (size_t c = 0; c < n; c++) {
            wu += (double)wh[c] * u[c];
            uy += (double)u[c] * y[c];
        }
        st->wu[i] = wu;
        st->uy[i] = uy;
    }
}

static double loss_from_dots(const qn_aqlm_state *st)
{
    double L = st->trWHW;
    for (size_t i = 0; i < st->d_out; i++) {
        double s = st->s[i];
        L += s * (s * st->uy[i] - 2.0 * st->wu[i]);
    }
    return L > 0.0 ? L : 0.0;
}

static void gemm_times_H(const qn_aqlm_state *st, const float *U, float *Y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)st->d_out, (int)st->d_in, (int)st->d_in,
                1.0f, U, (int)st->d_in, st->H, (int)st->d_in, 0.0f, Y, (int)st->d_in);
}

void qn_aqlm_refresh(qn_aqlm_state *st)
{
    qn_aqlm_dequant(st, st->C, st->U);
    gemm_times_H(st, st->U, st->Y);
    row_dots(st);
    st->loss = loss_from_dots(st);
}

/* argmin_s (W_i - s U_i) H (W_i - s U_i)^T = wu_i / uy_i [the scale half of eq. 7]. */
void qn_aqlm_fit_scales(qn_aqlm_state *st)
{
    row_dots(st);
    for (size_t i = 0; i < st->d_out; i++)
        if (st->uy[i] > 0.0) st->s[i] = (float)(st->wu[i] / st->uy[i]);
    st->loss = loss_from_dots(st);
}

/* Occurrence lists: for codeword (m, k), the groups i*G + j coded with it, in
   increasing order, so every sum over them runs in one fixed order. */
typedef struct {
    uint32_t *off;   /* (M, K + 1) */
    uint32_t *at;    /* (M, d_out * G) */
} occurrences;

static void build_occurrences(const qn_aqlm_state *st, occurrences *oc)
{
    const size_t N = st->d_out * st->G, K = st->K, M = (size_t)st->M;
    for (size_t m = 0; m < M; m++) {
        uint32_t *off = oc->off + m * (K + 1), *at = oc->at + m * N;
        memset(off, 0, (K + 1) * sizeof *off);
        for (size_t q = 0; q < N; q++) off[st->codes[q * M + m] + 1]++;
        for (size_t k = 0; k < K; k++) off[k + 1] += off[k];
        for (size_t q = 0; q < N; q++) at[off[st->codes[q * M + m]]++] = (uint32_t)q;
        for (size_t k = K; k > 0; k--) off[k] = off[k - 1];
        off[0] = 0;
    }
}

/* out[m, k] = sum over the groups (i, j) coded with (m, k) of w_i X[i, J]:
   the adjoint U^* of the reconstruction, row-weighted. w = s gives b from W H,
   w = s^2 gives A p from U(p) H. */
static void scatter_back(const qn_aqlm_state *st, const occurrences *oc, const float *X, const float *w,
                         float *out)
{
    const size_t N = st->d_out * st->G, K = st->K, G = st->G, g = st->g, MK = (size_t)st->M * K;
    #pragma omp parallel for schedule(dynamic, 64) if (N * (size_t)st->M * g > QN_AQLM_PAR_MIN_WORK)
    for (size_t mk = 0; mk < MK; mk++) {
        size_t m = mk / K, k = mk % K;
        const uint32_t *off = oc->off + m * (K + 1), *at = oc->at + m * N;
        float *o = out + mk * g;
        memset(o, 0, g * sizeof *o);
        for (uint32_t t = off[k]; t < off[k + 1]; t++) {
            size_t q = at[t], i = q / G, j = q % G;
            const float *x = X + i * st->d_in + j * g;
            float wi = w[i];
            for (size_t a = 0; a < g; a++) o[a] += wi * x[a];
        }
    }
}

/* D_mk = sum_{(i,j) coded (m,k)} s_i^2 H_JJ, factored D = L L^T (lower, row-major,
   g^2 floats per codeword), or with diag only 1 / D_aa (g floats per codeword).
   ok[mk] = 0 for a codeword no group uses: its row of A is zero and it stays put. */
static void build_preconditioner(const qn_aqlm_state *st, const occurrences *oc, const float *s2, int diag,
                                 double *scratch, float *L, uint8_t *ok)
{
    const size_t N = st->d_out * st->G, K = st->K, G = st->G, g = st->g, MK = (size_t)st->M * K;
    #pragma omp parallel for schedule(dynamic, 64) if (N * (size_t)st->M * g * g > QN_AQLM_PAR_MIN_WORK)
    for (size_t mk = 0; mk < MK; mk++) {
        size_t m = mk / K, k = mk % K;
        const uint32_t *off = oc->off + m * (K + 1), *at = oc->at + m * N;
        double *D = scratch + (size_t)omp_get_thread_num() * g * g;
        memset(D, 0, g * g * sizeof *D);
        for (uint32_t t = off[k]; t < off[k + 1]; t++) {
            size_t q = at[t];
            const float *A = st->HJJ + (q % G) * g * g;
            double w = s2[q / G];
            for (size_t e = 0; e < g * g; e++) D[e] += w * A[e];
        }
        double tr = 0.0;
        for (size_t a = 0; a < g; a++) tr += D[a * g + a];
        ok[mk] = tr > 0.0;
        if (!ok[mk]) continue;
        for (size_t a = 0; a < g; a++) D[a * g + a] += PRECOND_RIDGE * tr / (double)g;
        if (diag) {
            for (size_t a = 0; a < g; a++) L[mk * g + a] = D[a * g + a] > 0.0 ? (float)(1.0 / D[a * g + a]) : 0.0f;
            continue;
        }
        for (size_t a = 0; a < g && ok[mk]; a++) {        /* Cholesky, D <- L */
            for (size_t b = 0; b <= a; b++) {
                double v = D[a * g + b];
                for (size_t c = 0; c < b; c++) v -= D[a * g + c] * D[b * g + c];
                if (a == b) {
                    if (!(v > 0.0)) { ok[mk] = 0; break; }
                    D[a * g + a] = sqrt(v);
                } else {
                    D[a * g + b] = v / D[b * g + b];
                }
            }
        }
        for (size_t e = 0; e < g * g; e++) L[mk * g * g + e] = (float)D[e];
    }
}

/* z = D^-1 r per codeword (forward then backward substitution). */
static void apply_preconditioner(size_t MK, size_t g, int diag, const float *L, const uint8_t *ok,
                                 const float *r, float *z)
{
    #pragma omp parallel for schedule(static) if (MK * g * g > QN_AQLM_PAR_MIN_WORK)
    for (size_t mk = 0; mk < MK; mk++) {
        const float *l = L + mk * (diag ? g : g * g);
        float *zz = z + mk * g;
        const float *rr = r + mk * g;
        if (!ok[mk]) { memset(zz, 0, g * sizeof *zz); continue; }
        if (diag) {
            for (size_t a = 0; a < g; a++) zz[a] = l[a] * rr[a];
            continue;
        }
        for (size_t a = 0; a < g; a++) {
            double v = rr[a];
            for (size_t c = 0; c < a; c++) v -= (double)l[a * g + c] * zz[c];
            zz[a] = (float)(v / l[a * g + a]);
        }
        for (size_t a = g; a-- > 0;) {
            double v = zz[a];
            for (size_t c = a + 1; c < g; c++) v -= (double)l[c * g + a] * zz[c];
            zz[a] = (float)(v / l[a * g + a]);
        }
    }
}

static double dot(size_t n, const float *x, const float *y)
{
    double acc = 0.0;
    for (size_t q = 0; q < n; q++) acc += (double)x[q] * y[q];
    return acc;
}

qn_status qn_aqlm_update_codebooks(qn_aqlm_state *st, int iters, qn_err *err)
{
    const size_t K = st->K, g = st->g, MK = (size_t)st->M * K, n = MK * g;
    const size_t N = st->d_out * st->G, D = st->d_out * st->d_in;
    qn_status s = QN_OK;
    occurrences oc = { malloc((size_t)st->M * (K + 1) * sizeof *oc.off),
                       malloc((size_t)st->M * N * sizeof *oc.at) };
    const int diag = MK * g * g > PRECOND_MAX_FLOATS;
    float *vec = malloc(4 * n * sizeof *vec), *L = malloc(MK * g * (diag ? 1 : g) * sizeof *L);
    float *s2 = malloc(st->d_out * sizeof *s2);
    uint8_t *ok = malloc(MK);
    double *scratch = malloc((size_t)omp_get_max_threads() * g * g * sizeof *scratch);
    if (!oc.off || !oc.at || !vec || !L || !s2 || !ok || !scratch) {
        s = qn_err_set(err, QN_ERR_NOMEM, "aqlm codebook update: out of memory for %zu codewords", MK);
        goto fail;
    }
    float *r = vec, *z = vec + n, *p = vec + 2 * n, *q = vec + 3 * n, *x = st->C;
    for (size_t i = 0; i < st->d_out; i++) s2[i] = st->s[i] * st->s[i];
    build_occurrences(st, &oc);
    build_preconditioner(st, &oc, s2, diag, scratch, L, ok);

    /* r = b - A x = sum_i s_i U_i^*((W H - s_i U H)_i), the residual P = R H scattered back */
    #pragma omp parallel for schedule(static) if (D > QN_AQLM_PAR_MIN_WORK)
    for (size_t i = 0; i < st->d_out; i++)
        for (size_t c = 0; c < st->d_in; c++)
            st->Yp[i * st->d_in + c] = st->WH[i * st->d_in + c] - st->s[i] * st->Y[i * st->d_in + c];
    scatter_back(st, &oc, st->Yp, st->s, r);
    apply_preconditioner(MK, g, diag, L, ok, r, z);
    memcpy(p, z, n * sizeof *p);
    double rz = dot(n, r, z), rz0 = rz;

    for (int it = 0; it < iters && rz > CG_RESIDUAL_DROP * rz0 && rz > 0.0; it++) {
        qn_aqlm_dequant(st, p, st->U);                 /* q = A p */
        gemm_times_H(st, st->U, st->Yp);
        scatter_back(st, &oc, st->Yp, s2, q);
        double pq = dot(n, p, q);
        if (!(pq > 0.0)) break;
        float alpha = (float)(rz / pq);
        for (size_t e = 0; e < n; e++) {
            x[e] += alpha * p[e];
            r[e] -= alpha * q[e];
        }
        #pragma omp parallel for schedule(static) if (D > QN_AQLM_PAR_MIN_WORK)
        for (size_t e = 0; e < D; e++) st->Y[e] += alpha * st->Yp[e];
        apply_preconditioner(MK, g, diag, L, ok, r, z);
        double rz_new = dot(n, r, z);
        float beta = (float)(rz_new / rz);
        rz = rz_new;
        for (size_t e = 0; e < n; e++) p[e] = z[e] + beta * p[e];
    }
    qn_aqlm_transpose_codebooks(st);
    qn_aqlm_dequant(st, st->C, st->U);
    qn_aqlm_fit_scales(st);
fail:
    free(oc.off);
    free(oc.at);
    free(vec);
    free(L);
    free(s2);
    free(ok);
    free(scratch);
    return s;
}
