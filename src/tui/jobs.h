/* jobs.h: the work the workbench hands to worker threads, one function per
   kind, each with the plain context it reads and fills: model information,
   the quantization run, perplexity of two models side by side, generation,
   loading one layer's data for the pictures, and writing a picture as PNG.
   These are the only tui files that call the engine's long operations; they
   run on a worker (worker.h) and report through its sink. No ncurses here. */
#ifndef QN_TUI_JOBS_H
#define QN_TUI_JOBS_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/config.h"
#include "engine/events.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "tui/evq.h"

#define QN_PATH_CAP 4096

/* What the Models screen shows before anything runs. */
typedef struct {
    char      path[QN_PATH_CAP];
    char      format[16];       /* "huggingface", "gguf", "llama2c" */
    qn_config cfg;
    long long n_params;
    char      dtype[24];        /* of the linear weights: "F32", "BF16", "Q4_K", "F16+Q6_K" */
    uint64_t  bytes;            /* weight files on disk */
    size_t    n_tensors, n_files;
    bool      quantized;        /* config.json has a quantization_config */
    char      quant_method[32];
    /* The model's shape only (no weights): qn_quant_projected_bits needs the
       linears' sizes, and loading the weights for that would be slow. */
    qn_model  shape;
} qn_model_info;

void qn_model_info_free(qn_model_info *info);   /* NULL is fine */

typedef struct {
    char           path[QN_PATH_CAP];
    qn_model_info *info;        /* out: malloc'd, taken by the receiver */
} qn_job_info;
qn_status qn_job_info_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

typedef struct {
    char            model[QN_PATH_CAP], calib[QN_PATH_CAP], out_dir[QN_PATH_CAP];
    qn_quantize_job job;        /* its strings point at the arrays above */
} qn_job_quantize;
qn_status qn_job_quantize_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

/* Perplexity of up to two models on one text, one after the other. Before each
   model a QN_EV_STAGE "ppl.model" with layer = its index; after it a QN_EV_STAGE
   "ppl.result" with layer = index and value = ppl (NAN when it failed). */
typedef struct {
    char          model[2][QN_PATH_CAP];   /* [1] empty: only one */
    char          text[QN_PATH_CAP];
    qn_ppl_opts   opts;
    qn_ppl_result result[2];
    qn_status     status[2];
    char          errmsg[2][512];
} qn_job_ppl;
qn_status qn_job_ppl_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

typedef struct {
    char          model[QN_PATH_CAP];
    char          prompt[1024];
    qn_gen_opts   opts;
    qn_gen_result result;       /* tokens freed by the job */
} qn_job_gen;
qn_status qn_job_gen_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

/* The data behind one linear's pictures; any array may be NULL (note says why). */
typedef struct {
    char      name[128];        /* "model.layers.0.self_attn.q_proj" */
    char      title[96];        /* "block 0 self_attn.q_proj" */
    int       role, block;
    size_t    d_out, d_in;
    float    *W;                /* (d_out, d_in) original weights */
    float    *W_hat;            /* (d_out, d_in) quantized, dequantized */
    float    *hdiag;            /* (d_in) diagonal of the Hessian */
    uint8_t  *mask;             /* (d_out, d_in) 1 at an SpQR outlier */
    float    *codewords;        /* (M, K, g) AQLM */
    uint32_t *usage;            /* (M, K) */
    size_t    M, K, g;
    double    rel_err, bits;
    char      note[256];
    int       refs;             /* UI thread: holders (screen, export job) */
} qn_layer_data;

void qn_layer_data_unref(qn_layer_data *d);   /* frees at zero; NULL is fine */

typedef struct {
    char           model[QN_PATH_CAP];     /* the original model */
    char           run_dir[QN_PATH_CAP];   /* the run's output folder; may be unfinished */
    char           name[128];
    int            role, block;
    size_t         d_out, d_in;
    float         *hdiag, *W_hat;          /* copies from the run's events, taken over; may be NULL */
    uint8_t       *mask;                   /* the same: (d_out, d_in) SpQR outliers */
    float         *codewords;              /* the same: (M, K, g) AQLM codebooks */
    uint32_t      *usage;                  /* (M, K) */
    size_t         M, K, g;
    double         rel_err, bits;
    int            run_gen;                /* the UI's run number when asked (stale answers are dropped) */
    qn_layer_data *out;                    /* out: refs = 1 */
} qn_job_layer;
qn_status qn_job_layer_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);
void      qn_job_layer_free(qn_job_layer *j);

/* A run folder from disk (run_folder.h), for Run, Inspect and Evaluate. */
typedef struct {
    char          dir[QN_PATH_CAP];
    /* out */
    qn_ui_layer **layers;       /* (n_layers) malloc'd */
    size_t        n_layers;
    char          model[QN_PATH_CAP], label[96];
    int           n_blocks;
    bool          finished, has_model;
    double        seconds;
} qn_job_openrun;
qn_status qn_job_openrun_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);
void      qn_job_openrun_free(qn_job_openrun *j);   /* with the layers it still holds */

typedef enum { QN_PIC_WEIGHTS = 0, QN_PIC_ERROR, QN_PIC_OUTLIERS, QN_PIC_CODEBOOK, QN_PIC_HESSIAN, QN_PIC_COUNT } qn_pic_kind;
const char *qn_pic_name(qn_pic_kind k);

/* A matrix region of a layer's picture: rows [r0, r0+nr), columns [c0, c0+nc). */
typedef struct { size_t r0, c0, nr, nc; } qn_region;

typedef struct {
    char           path[QN_PATH_CAP];
    qn_layer_data *data;        /* a reference held for the job */
    qn_pic_kind    kind;
    qn_region      region;
    char           model_name[128], method[64];
    bool           no_color;
} qn_job_export;
qn_status qn_job_export_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

/* The values a picture of kind shows in region, (nr, nc) row-major, malloc'd;
   NULL when the layer lacks what the kind needs. Hessian: nr = 1. Outliers:
   0/1. Error: (W - W_hat)^2 * diag(H). */
float *qn_layer_data_values(const qn_layer_data *d, qn_pic_kind kind, qn_region region, size_t *rows,
                            size_t *cols);
/* The whole matrix of a kind (codebook: (M, K) usage; hessian: (1, d_in)). */
qn_region qn_layer_data_extent(const qn_layer_data *d, qn_pic_kind kind);

#endif
