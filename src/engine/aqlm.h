/* aqlm.h: Additive Quantization of one linear layer (AQLM: Egiazarian et al.,
   "Extreme Compression of Large Language Models via Additive Quantization",
   ICML 2024). Each group of g consecutive input weights of output row i is
   w_hat = s_i * sum_m C_m[b_m], one codeword from each of M codebooks of 2^B
   vectors of length g, times a per-row scale s_i. Codes, codebooks and scales
   minimise the calibration loss trace((W - W_hat) H (W - W_hat)^T) [AQLM eq. 2]:
   residual k-means initialisation, then rounds of (a) code search, a beam search
   over the codes of each group with the H-weighted objective, the other groups
   held fixed [AQLM §3.2, eq. 4-6], and (b) an exact codebook update, the
   quadratic least-squares problem solved by preconditioned conjugate gradients
   where the research code takes Adam steps [AQLM §3.2, eq. 7], with closed-form
   per-row scales; until a round improves the loss by less than `tol`. A round's
   code search also runs a GPTQ-ordered pass (error feedback through H^-1, as
   GPTVQ does) before the descent pass, each pass followed by the update; the
   result is the best state seen.
   The result follows the Hugging Face AQLM layout (codes, codebooks, scales)
   and its error counts the fp16 rounding of codebooks and scales as stored.
   Not here: out_group_size > 1, grouped scales, codebook-value quantization,
   the fine-tuning of the whole model that follows in the paper. */
#ifndef QN_AQLM_H
#define QN_AQLM_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/layer_quant.h"
#include "kernels/cpu_features.h"

#define QN_AQLM_MAX_BITS 16      /* codes are stored as uint16 */

typedef struct {
    int      M;             /* codebooks (num_codebooks), >= 1 */
    int      B;             /* bits per code (nbits_per_codebook): 2^B codewords, 1..16 */
    size_t   g;             /* in_group_size: consecutive input weights per code group; divides d_in */
    size_t   out_group;     /* out_group_size; only 1 */
    int      beam;          /* hypotheses kept per step of the code search, >= 1: over the codebooks
                               of a group, or with one codebook over the groups of a block */
    double   tol;           /* stop when a round improves the loss by less than this fraction */
    int      max_rounds;    /* code-search + codebook-update rounds at most */
    uint64_t seed;          /* k-means initial centroids; same seed, same result */
    int      kmeans_iters;  /* Lloyd iterations per codebook of the initialisation, at most */
    int      cg_iters;      /* conjugate-gradient steps per codebook update, at most */
    int      feedback;      /* 1: each round starts with a GPTQ-ordered pass and an update */
    qn_simd  simd;          /* the fastest kernels allowed (clamped to the CPU's) */
} qn_aqlm_opts;

/* 2 codebooks of 8 bits, groups of 8 (2 bits per weight before codebooks and
   scales), beam 1, tol 0.01, 100 rounds at most, 100 k-means iterations, 10 CG
   steps per update at most, the GPTQ-ordered pass on, seed 0. */
qn_aqlm_opts qn_aqlm_opts_default(void);

/* Checks o against a d_out x d_in layer (B in 1..16, M >= 1, g divides d_in, ...);
   QN_ERR_ARG or QN_ERR_UNSUPPORTED with a message naming the option. */
qn_status qn_aqlm_opts_check(const qn_aqlm_opts *o, size_t d_out, size_t d_in, qn_err *err);

typedef struct {
    qn_layer_result layer;   /* W_hat, relative_error (after fp16 rounding), bits, seconds */
    size_t    d_out, d_in;
    int       M, B;
    size_t    g;             /* in_group_size */
    size_t    n_groups;      /* d_in / g */
    size_t    codebook_size; /* 2^B */
    uint16_t *codes;         /* (d_out, n_groups, M): W_hat[i, j*g + a] = scales[i] *
                                sum_m codebooks[m, codes[i, j, m], 0, a] */
    float    *codebooks;     /* (M, 2^B, 1, g) values exactly representable in fp16 */
    float    *scales;        /* (d_out) the (d_out, 1, 1, 1) scales, fp16-representable */
    uint32_t *usage;         /* (M, 2^B) how many groups use each codeword */
    double   *loss_history;  /* (n_rounds + 1) relative loss after initialisation and
                                after each round, before fp16 rounding */
    int       n_rounds;
} qn_aqlm_result;

void qn_aqlm_result_done(qn_aqlm_result *r);   /* frees everything; zeroed is fine */

/* Bits per weight as stored: M*B bits of codes per g weights, M * 2^B * g fp16
   codebook entries and one fp16 scale per output row over the layer. */
double qn_aqlm_bits(size_t d_out, size_t d_in, int M, int B, size_t g);

/* W_hat from codes, codebooks and scales (the plain reference decoder).
   W: (d_out, d_in). */
void qn_aqlm_dequantize(const qn_aqlm_result *r, float *W);

/* Quantizes p->W. Emits QN_EV_PROGRESS events (stages "aqlm.kmeans", "aqlm.beam",
   "aqlm.codebooks"; value = relative loss so far, NAN when not known) and checks
   cancel between steps (QN_ERR_CANCELLED, out untouched). On success out owns its
   arrays: free with qn_aqlm_result_done. */
qn_status qn_aqlm_quantize(const qn_layer_problem *p, const qn_aqlm_opts *o, qn_event_sink sink,
                           const atomic_bool *cancel, qn_aqlm_result *out, qn_err *err);

#endif
