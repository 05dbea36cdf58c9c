/* quantize.h: whole-model compression, the job behind `quench quantize` and the
   workbench's Run screen. Opens a model, calibrates it block by block on a
   text (calib.h), quantizes every linear with the chosen method, and writes an
   output folder that quench (and, for AQLM, transformers) loads back:
     DIR/config.json            with a quantization_config block
     DIR/model.safetensors      compressed linears + the unquantized tensors
     DIR/tokenizer.json ...     copied from the source model
     DIR/run.jsonl              the run record, one event per line (runlog.h)
     DIR/stats.safetensors      what the pictures need, per linear
   Finished blocks are checkpointed under DIR/blocks/ as they complete, so a
   cancelled or killed run resumes (resume = true) from the last finished block
   with the same result as an uninterrupted run; the final files appear only at
   the end, each renamed from a temporary. Progress goes to the event sink:
   QN_EV_RUN_START, QN_EV_STAGE, QN_EV_PROGRESS, QN_EV_LAYER_DONE (payload:
   const qn_calib_layer_event *, see calib.h), QN_EV_WARNING, QN_EV_RUN_END. */
#ifndef QN_QUANTIZE_H
#define QN_QUANTIZE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/model.h"

typedef enum { QN_METHOD_RTN = 0, QN_METHOD_GPTQ, QN_METHOD_SPQR, QN_METHOD_AQLM, QN_METHOD_COUNT } qn_method;

/* Every knob of every method; a preset fills them, options override. */
typedef struct {
    qn_method method;
    /* rtn, gptq, spqr */
    int    wbits;
    size_t groupsize;          /* rtn/gptq: 0 = per row; spqr: beta1 */
    double percdamp;
    bool   act_order;
    size_t qq_groupsize;       /* spqr: beta2 */
    int    qq_scale_bits, qq_zero_bits;
    double outlier_threshold;  /* spqr: tau; INFINITY = none */
    bool   plain_stats;        /* spqr: the research code's statistics, without quench's refinement (spqr.h) */
    bool   hf_spqr_layout;     /* spqr: stored in the Hugging Face SpQR tiles (spqr_hf.h), not quench-spqr */
    /* aqlm */
    int    codebooks, codebook_bits;
    size_t group;              /* in_group_size */
    int    beam;
    double tol;
    /* calibration */
    size_t nsamples, seqlen;
    uint64_t seed;
    size_t eval_ctx;           /* windows avoid what llama.cpp's ppl at this ctx scores; 0 = anywhere */
    /* aqlm block fine-tuning after each block (finetune.h) */
    int    finetune_epochs;    /* Adam epochs at most; 0 = no fine-tuning */
    double finetune_lr;
    size_t finetune_batch;     /* sequences per Adam step */
    double finetune_tol;       /* stop when an epoch lowers the block's MSE by less than this fraction */
} qn_quant_config;

typedef struct {
    const char *name;          /* "spqr-3.6" */
    const char *summary;
    qn_quant_config config;
} qn_preset;

/* The presets, in display order; *n receives their count. */
const qn_preset *qn_presets(size_t *n);
const qn_preset *qn_preset_find(const char *name);
const char      *qn_method_name(qn_method m);
int              qn_method_from_name(const char *name);   /* -1 when unknown */

/* Bits per parameter of the quantized linears of a model of this shape, with
   everything stored counted (SpQR outliers excluded: they depend on the data),
   after fitting the configuration to the model as a run would (AQLM groups);
   *bytes the projected size of the whole model. */
double qn_quant_projected_bits(const qn_quant_config *q, const qn_model *m, double *bytes);

typedef struct {
    const char *model;         /* source model path */
    const char *calib;         /* calibration text */
    const char *out_dir;
    bool force;                /* replace an existing out_dir */
    bool resume;               /* continue the run in out_dir */
    qn_quant_config config;
} qn_quantize_job;

/* The job a run in dir was started with (from its run.jsonl), set to resume;
   model and calib receive the paths the job points at. */
qn_status qn_quantize_job_from_log(const char *dir, qn_quantize_job *job, char *model, size_t model_cap,
                                   char *calib, size_t calib_cap, qn_err *err);

qn_status qn_quantize_run(const qn_quantize_job *job, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

#endif
