/* finetune.h: block-wise fine-tuning of AQLM blocks [Egiazarian et al. 2024,
   §3.4; the research code's finetune_groupwise]. After a block's linears are
   quantized, Adam tunes the continuous parameters (codebooks, per-row scales,
   the two RMSNorm weights; codes fixed) so that the block's outputs on the
   calibration inputs X match the original block's outputs Y, minimising the
   mean squared error. Epochs go over the sequences in a seeded order, in
   batches of batch_size sequences, one sequence in memory at a time
   (block_grad.h). After every epoch the MSE over all sequences is measured;
   the run stops after max_epochs or when an epoch improves it by less than
   rel_tol (the research code's finetune_relative_mse_tolerance), and the best
   parameters seen are kept (its finetune_keep_best), so tuning never makes
   the block worse on the calibration set. Codebooks and scales are rounded to
   fp16 at the end, as stored, and the reported loss is the rounded one.
   Not here: code-search rounds between Adam epochs (PV-tuning), end-to-end
   tuning of the whole model. */
#ifndef QN_FINETUNE_H
#define QN_FINETUNE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/block_grad.h"
#include "engine/events.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/safetensors.h"
#include "engine/tensor_set.h"

typedef struct {
    int      max_epochs;    /* passes over the calibration sequences, at most (0: none) */
    double   lr;            /* Adam learning rate */
    double   beta1, beta2;  /* Adam moment decays */
    size_t   batch_size;    /* sequences per Adam step */
    double   rel_tol;       /* stop when an epoch lowers the MSE by less than this fraction */
    uint64_t seed;          /* order of the sequences in each epoch */
} qn_finetune_opts;

/* The research code's betas (0.9, 0.95); lr 1e-4, batch 8, 10 epochs, rel_tol 0.01. */
qn_finetune_opts qn_finetune_opts_default(void);
qn_status        qn_finetune_opts_check(const qn_finetune_opts *o, qn_err *err);

typedef struct {
    double mse_before, mse_after;   /* mean squared error per output element */
    double rel_before, rel_after;   /* the same over the mean square of the target outputs */
    int    epochs;                  /* epochs run */
    int    best_epoch;              /* 0: the starting parameters were kept */
    double seconds;
} qn_finetune_result;

/* Tunes b (parameters in place) on n_seq sequences of len tokens: X, Y
   (n_seq, len, dim) inputs and target outputs. Emits QN_EV_PROGRESS (stage
   "finetune", done/total = epochs, value = relative MSE) per epoch and checks
   cancel between batches. */
qn_status qn_finetune_block(qn_bg_block *b, const qn_config *c, const float *X, const float *Y, size_t n_seq,
                            size_t len, const qn_finetune_opts *o, qn_event_sink sink, const atomic_bool *cancel,
                            qn_finetune_result *res, qn_err *err);

/* Tunes block `layer` of m, whose seven linears were just stored into store
   as AQLM (q's shapes): reads codes, codebooks and scales from store, tunes,
   writes the fp16 codebooks and scales back into store, adds the tuned norms
   to store as F32 under their model names, and puts the tuned dense weights
   and norms into m, so the next block calibrates on the tuned one. */
qn_status qn_finetune_aqlm_block(qn_model *m, int layer, const qn_quant_config *q, qn_tensor_set *store,
                                 const float *X, const float *Y, size_t n_seq, size_t len,
                                 const qn_finetune_opts *o, qn_event_sink sink, const atomic_bool *cancel,
                                 qn_finetune_result *res, qn_err *err);

/* Resume: the tuned norms of block `layer` from its checkpoint f into m, when f has them. */
qn_status qn_finetune_restore_norms(qn_model *m, int layer, const qn_st_file *f, qn_err *err);

#endif
