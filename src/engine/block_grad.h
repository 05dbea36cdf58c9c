/* block_grad.h: forward and backward of one Llama block whose seven linears are
   AQLM-coded (W = diag(s) sum_m C_m[codes]), for the block-wise fine-tuning of
   the AQLM paper [Egiazarian et al. 2024, §3.4]: the loss is the squared error
   between the block's outputs and target outputs on calibration sequences, and
   the gradients are those of the continuous parameters (codebooks, per-row
   scales, the two RMSNorm weights); the discrete codes stay fixed. The block is
   the one forward.c runs: RMSNorm, rotate-half RoPE, grouped-query attention
   with a causal mask, SwiGLU MLP, residuals. Matmuls go through sgemm.
   One sequence is processed at a time (its activations, including the
   attention probabilities (heads, L, L), live only during the call), so a
   calibration set of any size streams through; gradients accumulate in dense
   weight space and are turned into codebook/scale gradients once per step.
   Not here: the gradient with respect to the block's input (end-to-end tuning). */
#ifndef QN_BLOCK_GRAD_H
#define QN_BLOCK_GRAD_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/config.h"

/* The linears of a block, in llama order. */
enum { QN_BG_Q = 0, QN_BG_K, QN_BG_V, QN_BG_O, QN_BG_GATE, QN_BG_UP, QN_BG_DOWN, QN_BG_N_LINEARS };

typedef struct {
    size_t d_out, d_in, g;    /* g: in_group_size, divides d_in */
    int    M;                 /* codebooks */
    size_t K;                 /* codewords per codebook, 2^B */
    const uint16_t *codes;    /* (d_out, d_in/g, M), fixed */
    float *codebooks;         /* (M, K, g) */
    float *scales;            /* (d_out) */
} qn_bg_linear;

/* The trainable state of one block. All float arrays point into one flat
   vector laid out as qn_bg_bind describes, so an optimizer sees one array. */
typedef struct {
    float *attn_norm, *ffn_norm;          /* (dim) each */
    qn_bg_linear lin[QN_BG_N_LINEARS];
} qn_bg_block;

/* Number of floats of the flat parameter vector of a block with these linears
   (shapes, codes and K, M, g filled in lin). */
size_t qn_bg_n_params(const qn_config *c, const qn_bg_linear *lin);
/* Points b's float arrays into flat: attn_norm, ffn_norm, then per linear its
   codebooks and scales. lin gives the shapes and codes. */
void   qn_bg_bind(qn_bg_block *b, const qn_config *c, const qn_bg_linear *lin, float *flat);

/* W (d_out, d_in) of one linear from its codes, codebooks and scales. */
void qn_bg_dequantize(const qn_bg_linear *l, float *W);

typedef struct qn_bg qn_bg;   /* opaque: dense weights, their gradients, one sequence's activations */

/* A workspace for blocks of config c on sequences of at most max_len tokens. */
qn_status qn_bg_create(qn_bg **out, const qn_config *c, size_t max_len, qn_err *err);
void      qn_bg_free(qn_bg *w);   /* NULL is fine */

/* Makes the dense weights from b's current parameters and clears the
   accumulated gradients; call after every parameter change. */
void   qn_bg_load(qn_bg *w, const qn_bg_block *b);

/* Runs the block on x (n, dim), n <= max_len, at positions 0..n-1. out
   (n, dim) may be NULL. Returns sum((out - y)^2) when y (n, dim) is given, else 0.
   With weight != 0 (y needed) also accumulates the gradient of
   weight * sum((out - y)^2) in dense weight space and norm space. */
double qn_bg_step(qn_bg *w, const qn_bg_block *b, const float *x, const float *y, size_t n, float weight,
                  float *out);

/* The accumulated gradient as a flat vector laid out like b's parameters
   (qn_bg_bind): norm gradients as accumulated, codebook and scale gradients by
   the chain rule through W = diag(s) sum_m C_m[codes]. grad: (qn_bg_n_params). */
void   qn_bg_gradient(const qn_bg *w, const qn_bg_block *b, float *grad);

#endif
