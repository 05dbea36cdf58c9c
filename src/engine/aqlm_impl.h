/* aqlm_impl.h: what the files of the AQLM quantizer share. Not a public header:
   only src/engine/aqlm*.c and the AQLM tests include it.
   Legend (the paper's letters): d_out rows i, d_in columns, G = d_in / g groups j
   per row, J = the g columns of group j, M codebooks m of K = 2^B codewords
   C_m[k] (length g), codes b_ijm, per-row scales s_i. U is the unscaled
   reconstruction (U[i, J] = sum_m C_m[b_ijm]), W_hat = diag(s) U.
   Files: aqlm.c drives the rounds; aqlm_kmeans.c initialises; aqlm_search.c
   searches one group's codes; aqlm_beam.c runs passes of that search over the
   layer; aqlm_codebooks.c fits codebooks and scales; aqlm_kernels.c holds the
   inner loops. */
#ifndef QN_AQLM_IMPL_H
#define QN_AQLM_IMPL_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/aqlm.h"

/* Loops with less work than this (in multiply-adds, ~0.3 ms on one core) run
   on one thread: a parallel region ends in a barrier, and a barrier costs a
   scheduler tick when another process holds the other core. */
#define QN_AQLM_PAR_MIN_WORK ((size_t)1 << 22)

typedef struct {
    size_t       d_out, d_in, g, G, K;
    int          M, beam;
    qn_simd      simd;
    const float *W;       /* (d_out, d_in) */
    const float *H;       /* (d_in, d_in) */
    float       *HJJ;     /* (G, g, g) the diagonal blocks H[J, J] */
    float       *WH;      /* (d_out, d_in) W H */
    double       trWHW;   /* trace(W H W^T): relative losses divide by it */
    uint16_t    *codes;   /* (d_out, G, M) b_ijm */
    float       *C;       /* (M, K, g) codebooks */
    float       *CT;      /* (M, g, K) the same, transposed for the search kernels */
    float       *s;       /* (d_out) scales */
    float       *Y;       /* (d_out, d_in) U H for the current codes and codebooks */
    float       *U;       /* (d_out, d_in) scratch: a reconstruction, the k-means residual */
    float       *Yp;      /* (d_out, d_in) scratch: the conjugate-gradient direction times H */
    float       *HU;      /* (d_in, d_in) upper Cholesky factor of (H + damping)^-1, or NULL */
    float       *QJ;      /* (G, g, g) GPTQ's metric per group, (U_JJ^T U_JJ)^-1 */
    float       *UJinv;   /* (G, g, g) U_JJ^-1 */
    double      *wu;      /* (d_out) <(W H)_i, U_i> */
    double      *uy;      /* (d_out) <U_i, (U H)_i> */
    double       loss;    /* trace((W - W_hat) H (W - W_hat)^T) of the current state */
} qn_aqlm_state;

/* ---- aqlm_kernels.c: inner loops, each with a plain _ref twin ---- */

/* score_k = n_k - 2 <C[k], e> for k < K, the change of an H-weighted squared error
   when codeword k joins (see aqlm_search.c). CT: (g, K) codewords by column; n: (K). */
void     qn_aqlm_scores_ref(const float *CT, const float *n, size_t K, size_t g, const float *e,
                            float *out);
void     qn_aqlm_scores(qn_simd simd, const float *CT, const float *n, size_t K, size_t g,
                        const float *e, float *out);
/* argmin_k of the scores above (the first on ties); *best receives the score. */
uint32_t qn_aqlm_argmin_ref(const float *CT, const float *n, size_t K, size_t g, const float *e,
                            float *best);
uint32_t qn_aqlm_argmin(qn_simd simd, const float *CT, const float *n, size_t K, size_t g,
                        const float *e, float *best);
/* The same with the second smallest score in *second (+inf when K = 1). */
uint32_t qn_aqlm_argmin2_ref(const float *CT, const float *n, size_t K, size_t g, const float *e,
                             float *best, float *second);
uint32_t qn_aqlm_argmin2(qn_simd simd, const float *CT, const float *n, size_t K, size_t g,
                         const float *e, float *best, float *second);
/* The first k >= k0 with v = base + scale * sc[k] < thr (K when none), v in *val:
   the beam's scan for candidates that enter its list. */
size_t   qn_aqlm_next_below_ref(const float *sc, size_t K, size_t k0, float base, float scale, float thr,
                                float *val);
size_t   qn_aqlm_next_below(qn_simd simd, const float *sc, size_t K, size_t k0, float base, float scale,
                            float thr, float *val);
/* n_k = C[k]^T A C[k], the codeword Gram terms under one g x g block A of H. */
void     qn_aqlm_gram_ref(const float *CT, size_t K, size_t g, const float *A, float *n);
void     qn_aqlm_gram(qn_simd simd, const float *CT, size_t K, size_t g, const float *A, float *n);
/* y[0..n) -= a * x[0..n) */
void     qn_aqlm_axpy_neg(qn_simd simd, size_t n, float a, const float *x, float *y);

/* ---- aqlm_codebooks.c ---- */

/* CT from C. */
void      qn_aqlm_transpose_codebooks(qn_aqlm_state *st);
/* U = the unscaled reconstruction of the current codes and codebooks C. */
void      qn_aqlm_dequant(const qn_aqlm_state *st, const float *C, float *U);
/* Y = U H for the current state (U left holding the reconstruction) and st->loss. */
void      qn_aqlm_refresh(qn_aqlm_state *st);
/* Closed-form per-row scales for the current U (in st->U) and Y, then st->loss. */
void      qn_aqlm_fit_scales(qn_aqlm_state *st);
/* Codebook update [AQLM eq. 7]: at most `iters` preconditioned CG steps on the
   normal equations of the codebooks (codes and scales fixed), then the scales.
   Needs Y valid; leaves Y, U and loss valid. */
qn_status qn_aqlm_update_codebooks(qn_aqlm_state *st, int iters, qn_err *err);

/* ---- aqlm_search.c ---- */

typedef struct {            /* one thread's buffers for the search of a group */
    float    *scores;       /* (K) */
    float    *v, *t;        /* (g) the group's current sum of codewords; the target (caller fills both) */
    float    *o, *e, *ho;   /* (g) */
    float    *v_old, *v_alt, *v_alt2;   /* (g) */
    float    *hv[2];        /* (beam, g) hypotheses' sums of codewords, current and next */
    float    *hf[2];        /* (beam) f of each hypothesis */
    float    *top;          /* (beam) the best candidates so far, increasing */
    int32_t  *top_par;      /* (beam) their parent hypothesis */
    uint32_t *top_k;        /* (beam) their codeword */
    uint16_t *hc[2];        /* (beam, M) hypotheses' codes */
    uint16_t *cur, *alt, *alt2;   /* (M) */
} qn_aqlm_scratch;

size_t qn_aqlm_scratch_bytes(const qn_aqlm_state *st);
void   qn_aqlm_scratch_bind(const qn_aqlm_state *st, void *mem, qn_aqlm_scratch *w);
/* Re-chooses the M codes of one group to lower f(v) = v^T A v - 2 <v, w->t>
   (see aqlm_search.c). A: (g, g); n: (M, K) the Gram terms C_m[k]^T A C_m[k].
   cur: (M) codes in and out; w->v: their sum in and out. */
void   qn_aqlm_search_group(const qn_aqlm_state *st, const float *A, const float *n, uint16_t *cur,
                            qn_aqlm_scratch *w);

/* ---- aqlm_beam.c ---- */

/* Code search [AQLM §3.2, "Phase 1"]: one pass over the groups of every row, each
   group re-coded with the others fixed under the exact loss (H_JJ), so the loss
   never rises. Needs Y valid; leaves Y, U and loss valid. *n_changed: groups
   whose codes changed. */
qn_status qn_aqlm_beam_pass(qn_aqlm_state *st, size_t *n_changed, qn_err *err);
/* GPTQ-ordered code search (GPTQ, Frantar et al. 2023; for vectors GPTVQ, van
   Baalen et al. 2024): groups left to right, each coded under the look-ahead
   metric (U_JJ^T U_JJ)^-1 and its error carried to the columns not yet coded
   through U = chol((H + damping)^-1). Not monotone by itself: the caller follows
   it with qn_aqlm_beam_pass. Prepares HU, QJ, UJinv on first use; *usable = 0
   (and nothing changed) when H cannot be factored. Leaves Y, U and loss valid. */
qn_status qn_aqlm_feedback_pass(qn_aqlm_state *st, int *usable, qn_err *err);

/* ---- aqlm_kmeans.c ---- */

/* Initialisation [AQLM §3.2]: scales s_i = ||W_i||, then M rounds of k-means on
   the residual of the scaled groups W[i, J] / s_i. Sets codes, C, CT and s. */
qn_status qn_aqlm_kmeans_init(qn_aqlm_state *st, int iters, uint64_t seed, qn_event_sink sink,
                              const atomic_bool *cancel, qn_err *err);

#endif
