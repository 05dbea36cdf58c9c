/* run_folder.h: a `quench quantize` output folder (quantize.h) read back for the
   pictures and the workbench's Inspect screen: run.jsonl (runlog.h) for the run
   and one record per quantized linear, config.json's quantization_config,
   stats.safetensors for the per-linear statistics (Hessian diagonal, SpQR
   outlier mask, AQLM codebooks and their usage), and on demand one linear's
   weights from the original model (named by the start event) or from the run's
   own model, dequantized. Model sources are opened on first use and kept open;
   only the linear asked for is read or dequantized, never a whole model. A run
   still going (no config.json or stats yet) opens too: what it lacks is refused
   when asked for, naming the missing file. No drawing and no words for the user
   beyond error messages: pictures are viz's, presentation the CLI's and TUI's.
   A qn_run_folder is used by one thread at a time. */
#ifndef QN_RUN_FOLDER_H
#define QN_RUN_FOLDER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef struct qn_run_folder qn_run_folder;   /* opaque: owns the parsed log, stats mapping, model sources */

/* Llama's seven linears per block, in the order pictures and tables use. */
#define QN_RUN_SUBLAYERS 7
extern const char *const qn_run_sublayer_names[QN_RUN_SUBLAYERS];   /* "q_proj" .. "down_proj" */

/* One quantized linear, from its last "layer" event (a resumed run may log a
   block twice) and its "round" events. */
typedef struct {
    char    name[96];          /* base name: "model.layers.3.mlp.up_proj" */
    char    short_name[32];    /* "3.up_proj" */
    char    part[48];          /* the name after the block: "mlp.up_proj" */
    int     block;
    int     sublayer;          /* index into qn_run_sublayer_names */
    size_t  d_out, d_in;
    double  relative_error;    /* ||(W - W_hat) X|| / ||W X|| on the calibration inputs */
    double  bits;              /* bits per parameter, everything stored counted */
    size_t  outliers;
    double  outlier_fraction;
    double  seconds;
    size_t  n_rounds;          /* AQLM rounds logged; 0 for other methods */
    const double *round_loss;  /* (n_rounds) loss after each round, in round order */
} qn_run_layer;

typedef struct {
    const char *dir;
    const char *method;        /* the start event's: "spqr", "aqlm", "gptq", "rtn" */
    const char *method_label;  /* "SpQR w3 g16 tau 0.2", "AQLM 2x8 g8", "GPTQ w4 g128 act-order" */
    const char *model;         /* the original model as the run names it */
    const char *model_name;    /* its last path component: "stories260K" */
    const char *calib;
    const char *options;       /* the start event's options, compact JSON */
    bool        finished;      /* the log has its "end" event */
    double      bits;          /* the end event's; while running, the layers' so far; NaN: none */
    double      seconds;       /* the end event's; NaN while running */
    int         n_blocks;      /* highest block logged + 1 */
    size_t      n_layers;
    const qn_run_layer *layers;   /* (n_layers) by block, then sublayer */
    /* what the folder can give */
    bool has_model;            /* config.json and model.safetensors: the quantized weights */
    bool has_hessian;          /* stats.safetensors with Hessian diagonals */
    bool has_outlier_masks;    /* SpQR outlier masks in the stats */
    bool has_codebooks;        /* AQLM codebooks and usage in the stats */
    bool has_rounds;           /* AQLM round events in the log */
} qn_run_info;

/* Reads dir/run.jsonl (required), dir/config.json and dir/stats.safetensors
   (when present). Errors name the file and what is wrong with it. */
qn_status qn_run_open(qn_run_folder **out, const char *dir, qn_err *err);
void      qn_run_close(qn_run_folder *run);   /* NULL is fine */

const qn_run_info *qn_run_get_info(const qn_run_folder *run);

/* The index in info->layers of a linear named in any of these forms: the base
   name (with or without ".weight"), "layers.3.mlp.up_proj", "3.mlp.up_proj",
   "3.up_proj", "3.up", GGUF's "blk.3.ffn_up". Unknown: QN_ERR_ARG with a
   message saying which names the run has. */
qn_status qn_run_find_layer(const qn_run_folder *run, const char *name, size_t *index, qn_err *err);
/* The layer with the largest relative error; (size_t)-1 when the run has none. */
size_t    qn_run_worst_layer(const qn_run_folder *run);

/* The following take a layer in any form qn_run_find_layer accepts. Pointers
   they hand out belong to the run and stay valid until qn_run_close. */

/* diag(H) = mean of x_j^2 over the calibration tokens.  *diag: (d_in). */
qn_status qn_run_hessian_diag(qn_run_folder *run, const char *layer, const float **diag, size_t *n,
                              qn_err *err);
/* SpQR's outliers, unpacked: *mask (d_out, d_in), 1 where a weight is kept in
   full precision, else 0. */
qn_status qn_run_outlier_mask(qn_run_folder *run, const char *layer, const uint8_t **mask, size_t *rows,
                              size_t *cols, qn_err *err);
/* AQLM's codebooks: *codewords (M, K, g), *usage (M, K) how many groups use each code. */
qn_status qn_run_codebooks(qn_run_folder *run, const char *layer, const float **codewords,
                           const uint32_t **usage, size_t *M, size_t *K, size_t *g, qn_err *err);

/* The linear's dense weights, *W (d_out, d_in) malloc'd for the caller: the
   original model's (original) or the run's, dequantized. */
qn_status qn_run_weights(qn_run_folder *run, const char *layer, bool original, float **W, size_t *rows,
                         size_t *cols, qn_err *err);
/* Per-weight calibration-weighted squared error [GPTQ/SpQR objective, diagonal
   part]: E_ij = (W_ij - W_hat_ij)^2 * H_jj.  *E (d_out, d_in) malloc'd for the caller. */
qn_status qn_run_error_map(qn_run_folder *run, const char *layer, float **E, size_t *rows, size_t *cols,
                           qn_err *err);

#endif
