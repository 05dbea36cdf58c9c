/* spqr.h: SpQR, Algorithm 1 of Dettmers et al., "SpQR: A Sparse-Quantized
   Representation for Near-Lossless LLM Weight Compression" (ICLR 2024), for one
   linear layer, matching the research code (github Vahe1994/SpQR,
   spqr_engine.py and quant_groups.py): a GPTQ sweep (gptq.h) in act_order with
   damping 1.0 x mean(diag H), where every group of beta1 columns gets, per row,
   a min-max scale and zero fitted while the sweep goes; those statistics are
   themselves min-max quantized to 3 bits in groups of beta2 rows (bilevel
   quantization); weights whose leave-one-out loss reduction exceeds tau are
   left out of the fit, and weights whose GPTQ error (w - q)^2 / U_jj^2 exceeds
   tau are kept as fp16 outliers (CSR) instead of their code.
   Beyond the research code (refine_stats, on by default): each row's first-level
   range may be clipped (up to 30% of it, whichever cut rounds the group with the
   least H-weighted loss), and with quantized statistics each row's scale and zero
   codes are chosen together on the tile's second-level grids for that loss,
   instead of each rounded to its nearest code. Same bits, lower error.
   Not here: the "simplified" outlier criterion, permutations other than
   identity and act_order, symmetric or rounded zeros, kernel layouts (the CPU
   kernels convert from qn_spqr_layer). */
#ifndef QN_SPQR_H
#define QN_SPQR_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/layer_quant.h"

#define QN_SPQR_FP16_STATS 16   /* qq_*_bits value meaning "statistics kept in fp16, not quantized" */

typedef struct {
    int    bits;               /* B: bits per weight code, 1..8 (research --wbits) */
    size_t beta1;              /* columns per group of first-level statistics (--groupsize) */
    size_t beta2;              /* rows per group of second-level statistics (--qq_groupsize) */
    int    qq_scale_bits;      /* bits of a first-level scale, 1..8, or QN_SPQR_FP16_STATS */
    int    qq_zero_bits;       /* bits of a first-level zero, 1..8, or QN_SPQR_FP16_STATS */
    double outlier_threshold;  /* tau, relative (see below); INFINITY for no outliers */
    bool   act_order;          /* columns by decreasing diag H (--permutation_order act_order) */
    double percdamp;           /* damping, fraction of mean(diag H) */
    size_t blocksize;          /* GPTQ block, QN_GPTQ_BLOCKSIZE */
    bool   refine_stats;       /* quench's refinement of the statistics (below); false = the research code exactly */
} qn_spqr_opts;

/* w3, beta1 = beta2 = 16, 3-bit statistics, tau = 0.2, act_order, damping 1.0,
   blocks of 128: the research code's LLaMA recipe (its README), with refine_stats. */
qn_spqr_opts qn_spqr_opts_default(void);

/* The compressed layer. Everything is in sweep column order: sweep column j is
   input feature perm[j] (perm NULL = identity). With g = j / beta1 (column group,
   n_col_groups of them) and h = r / beta2 (row group, n_row_groups):

     scale(r, g) = qq_scale_bits == 16 ? f16(scale_f16[g, r])
                 : f16(scale_scale[g, h]) * (scale_codes[g, r] - f16(scale_zero[g, h]))
     zero(r, g)  = the same with zero_* arrays
     W_hat[r, perm[j]] = scale(r, g) * (codes[r, j] - zero(r, g))

   in float32, in that order, except at outliers: for k in row_ptr[r] .. row_ptr[r+1] - 1,
   W_hat[r, perm[col_idx[k]]] = f16(values[k]) REPLACES the dense value (whose code is
   the code of 0, as in the research code's saved format). qn_spqr_dequantize is the
   executable definition and reproduces the quantizer's W_hat bit for bit.
   The last column group and the last row group may be partial. */
typedef struct {
    size_t    d_out, d_in;
    int       bits;
    size_t    beta1, beta2;
    int       qq_scale_bits, qq_zero_bits;
    size_t    n_col_groups;   /* ceil(d_in / beta1) */
    size_t    n_row_groups;   /* ceil(d_out / beta2) */
    uint8_t  *codes;          /* (d_out, d_in) weight codes 0 .. 2^bits - 1 */
    uint8_t  *scale_codes;    /* (n_col_groups, d_out) 0 .. 2^qq_scale_bits - 1; NULL when fp16 */
    uint8_t  *zero_codes;     /* (n_col_groups, d_out) 0 .. 2^qq_zero_bits - 1; NULL when fp16 */
    uint16_t *scale_scale;    /* (n_col_groups, n_row_groups) fp16; NULL when fp16 */
    uint16_t *scale_zero;     /* (n_col_groups, n_row_groups) fp16, continuous; NULL when fp16 */
    uint16_t *zero_scale;     /* (n_col_groups, n_row_groups) fp16; NULL when fp16 */
    uint16_t *zero_zero;      /* (n_col_groups, n_row_groups) fp16, continuous; NULL when fp16 */
    uint16_t *scale_f16;      /* (n_col_groups, d_out) when qq_scale_bits == 16, else NULL */
    uint16_t *zero_f16;       /* (n_col_groups, d_out) when qq_zero_bits == 16, else NULL */
    uint32_t *perm;           /* (d_in) or NULL for the identity order */
    size_t    n_outliers;
    uint32_t *row_ptr;        /* (d_out + 1) CSR over rows; NULL when tau is infinite */
    uint16_t *col_idx;        /* (n_outliers) sweep column, increasing within a row */
    uint16_t *values;         /* (n_outliers) fp16 weight */
} qn_spqr_layer;

/* Sizes L from o (bits, beta1, beta2, qq bits; 0 for beta1/beta2 = whole dimension) and
   allocates codes, statistics and, when o->act_order, perm; the CSR arrays stay NULL. */
qn_status qn_spqr_layer_init(qn_spqr_layer *L, const qn_spqr_opts *o, size_t d_out, size_t d_in, qn_err *err);
void      qn_spqr_layer_done(qn_spqr_layer *L);   /* frees the arrays; zeroed is fine */
/* W: (d_out, d_in) in the original column order. */
void   qn_spqr_dequantize(const qn_spqr_layer *L, float *W);
/* Bits per weight as the research code counts them (get_average_number_of_bits,
   unrounded): codes, first-level statistics, the fp16 second-level scale and zero
   of both, 32 bits per outlier (fp16 value + 16-bit column). */
double qn_spqr_bits(const qn_spqr_layer *L);
/* The same plus what the research count leaves out: the CSR row pointers (32 bits
   each, d_out + 1) and the permutation (16 bits per column). */
double qn_spqr_bits_stored(const qn_spqr_layer *L);

/* Quantizes p. Outliers: tau is relative to mean_j(var_r(W[r, j]) / U_jj^2) over the
   permuted, damped problem (research code's outlier_scale). res->W_hat is malloc'd;
   out (may be NULL) receives the compressed layer. Progress: stage "spqr". */
qn_status qn_spqr_quantize_layer(const qn_layer_problem *p, const qn_spqr_opts *opts, qn_event_sink sink,
                                 const atomic_bool *cancel, qn_layer_result *res, qn_spqr_layer *out,
                                 qn_err *err);

#endif
