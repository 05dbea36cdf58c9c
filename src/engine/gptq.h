/* gptq.h: GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
   Generative Pre-trained Transformers", ICLR 2023, Algorithm 1), the sweep SpQR
   builds on. Columns are quantized one at a time in a fixed order; the error of
   column j, e = (w_j - q_j) / U_jj with U = chol(H^-1) upper, is spread over the
   columns not yet quantized (OBS update). Columns go in blocks of 128: inside a
   block the update is applied row by row as each column is done, the rest of
   the matrix gets one lazy sgemm per block. H is damped by a fraction of
   mean(diag H) (more, by factors of 10, when the factorization fails), dead
   inputs (H_jj = 0) are zeroed, and act_order sorts columns by decreasing H_jj.
   The per-group statistics and the rounding are pluggable (qn_gptq_quantizer):
   plain GPTQ uses rtn.h's min-max grid, spqr.c its bilevel grid with outliers.
   Not here: static groups, symmetric grids, Hessian accumulation from inputs. */
#ifndef QN_GPTQ_H
#define QN_GPTQ_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/layer_quant.h"
#include "engine/rtn.h"

#define QN_GPTQ_BLOCKSIZE 128     /* columns per lazy batch update (GPTQ paper, Sec. 3) */
#define QN_GPTQ_DAMP_RETRIES 3    /* after a failed factorization, retry this often ... */
#define QN_GPTQ_DAMP_GROWTH 10.0  /* ... multiplying the damping by this each time */
#define QN_GPTQ_DAMP_FIRST 0.01   /* the damping tried when percdamp 0 fails */
#define QN_GPTQ_PANEL_ROWS 16     /* rows per parallel work item when statistics are per row */

typedef struct {
    int    bits;        /* 1..8 */
    size_t groupsize;   /* 0 = one scale and zero per row */
    double percdamp;    /* damping as a fraction of mean(diag H); research default 0.01 */
    bool   act_order;   /* columns by decreasing diag H */
    size_t blocksize;   /* QN_GPTQ_BLOCKSIZE */
} qn_gptq_opts;

qn_gptq_opts qn_gptq_opts_default(void);   /* 4 bits per row, 0.01, identity order, 128 */

/* What the sweep works on, in sweep (permuted) column order. */
typedef struct {
    size_t    d_out, d_in;
    uint32_t *perm;       /* (d_in) sweep column j is input feature perm[j] */
    float    *W;          /* (d_out, d_in) permuted weights, dead columns zeroed; the sweep
                             leaves the dequantized weights here */
    float    *U;          /* (d_in, d_in) row-major upper factor: U^T U = (H_perm + damp I)^-1 */
    double    percdamp;   /* the damping fraction actually used */
    size_t    n_dead;     /* inputs with H_jj = 0 */
} qn_gptq_state;

/* Permutes, damps and factors H (retrying with more damping; a QN_EV_WARNING says
   so); a Hessian that stays indefinite or holds NaN/Inf fails naming p->name. */
qn_status qn_gptq_state_init(qn_gptq_state *st, const qn_layer_problem *p, bool act_order, double percdamp,
                             qn_event_sink sink, qn_err *err);
void      qn_gptq_state_done(qn_gptq_state *st);            /* zeroed is fine */
/* W_hat: (d_out, d_in) original column order, from st->W after the sweep. */
void      qn_gptq_state_unpermute(const qn_gptq_state *st, float *W_hat);

/* The statistics and rounding a sweep drives. Rows go in panels of panel_rows
   (the rows whose statistics are fitted together), panels in parallel. fit() is
   called for a panel when the sweep reaches a column c with c % groupsize == 0,
   with the panel's current (error-corrected) weights; round() is called once per
   weight and returns the dequantized value the error is taken against. Calls for
   different panels run concurrently: each may touch only its own rows' state. */
typedef struct {
    size_t groupsize;    /* columns per group in sweep order; d_in for one group per row */
    size_t panel_rows;   /* 0 = QN_GPTQ_PANEL_ROWS */
    /* W: (d_out, ld) current weights; the panel is rows [r0, r1), the group columns
       [c0, c0 + width); u_diag: (width) U_jj of those columns. */
    void  (*fit)(void *ctx, const float *W, size_t ld, size_t r0, size_t r1, size_t c0, size_t width,
                 const float *u_diag);
    float (*round)(void *ctx, size_t r, size_t c, float w, float u_jj);
    void *ctx;
} qn_gptq_quantizer;

/* Algorithm 1 over st->W, block by block: reports QN_EV_PROGRESS (stage, done/total
   columns) after each block and checks cancel between blocks (QN_ERR_CANCELLED). */
qn_status qn_gptq_sweep(qn_gptq_state *st, size_t blocksize, const qn_gptq_quantizer *q, const char *stage,
                        qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

/* GPTQ with the min-max grid of rtn.h. out (may be NULL) receives codes and statistics. */
qn_status qn_gptq_quantize_layer(const qn_layer_problem *p, const qn_gptq_opts *opts, qn_event_sink sink,
                                 const atomic_bool *cancel, qn_layer_result *res, qn_rtn_layer *out, qn_err *err);

#endif
