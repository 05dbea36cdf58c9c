/* run_pictures.h: which picture comes from which data of a run folder, in one
   place for `quench export-png` and `quench show`: the kinds and their names,
   what a run must hold to draw each, gathering the arrays and the title
   (model, layer, method, bits) from run_folder.h, the titled figure viz draws
   from them, its bare-heatmap form for terminal cells, and the PNG with the
   run's model, method, layer and options in text chunks. */
#ifndef QN_CLI_RUN_PICTURES_H
#define QN_CLI_RUN_PICTURES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/run_folder.h"
#include "viz/plot.h"

typedef enum {
    QN_RUNPIC_WEIGHTS,        /* per layer: the original W, signed, diverging map */
    QN_RUNPIC_ERROR,          /* per layer: (W - W_hat)^2 * H_jj */
    QN_RUNPIC_OUTLIERS,       /* per layer, SpQR: outlier positions with marginals */
    QN_RUNPIC_CODEBOOK,       /* per layer, AQLM: usage, norms, PCA of the codewords */
    QN_RUNPIC_OVERVIEW,       /* the run: relative error and bits per block and linear */
    QN_RUNPIC_HESSIAN,        /* the run: the Hessian diagonal of every layer */
    QN_RUNPIC_CONVERGENCE,    /* the run, AQLM: loss per round of every layer */
    QN_RUNPIC_COUNT
} qn_runpic_kind;

const char *qn_runpic_name(qn_runpic_kind k);          /* "weights", ... */
int         qn_runpic_from_name(const char *name);     /* -1 when unknown */
bool        qn_runpic_per_layer(qn_runpic_kind k);
/* The kinds' names joined by '|' for usage lines and errors. */
const char *qn_runpic_names(void);

/* --what NAME: *kind receives the kind, or -1 for "all" when all_ok. */
qn_status qn_runpic_parse_kind(const char *name, bool all_ok, int *kind, qn_err *err);
/* --colormap NAME: viridis, magma, coolwarm, greys. */
qn_status qn_runpic_parse_colormap(const char *name, qn_colormap *cm, qn_err *err);
/* QN_OK when the run holds what kind needs, else QN_ERR_UNSUPPORTED saying what
   is missing ("codebook: the run is SpQR ...: codebooks are AQLM's"). */
qn_status qn_runpic_check(const qn_run_folder *run, qn_runpic_kind k, qn_err *err);

/* The data of one picture. Arrays marked "run's" belong to the run folder. */
typedef struct {
    qn_runpic_kind      kind;
    const qn_run_info  *info;
    const qn_run_layer *layer;        /* per-layer kinds, else NULL */
    char                layer_label[96];   /* "block 3 mlp.up_proj", "all 35 linears" */
    qn_viz_title        title;
    float              *v;            /* weights, error: (rows, cols) owned */
    size_t              rows, cols;
    const uint8_t      *mask;         /* outliers: (rows, cols) run's */
    const float        *codewords;    /* codebook: (M, K, g) run's */
    const uint32_t     *usage;        /* codebook: (M, K) run's */
    size_t              M, K, g;
    double             *rel_err, *bits;    /* overview: (n_blocks, QN_RUN_SUBLAYERS) owned, NaN: absent */
    size_t              n_blocks;
    const float       **diag;         /* hessian: (n_series) run's rows */
    size_t             *d;            /* hessian: (n_series) */
    double             *loss;         /* convergence: (n_series, n_rounds) owned, NaN past a layer's end */
    size_t              n_rounds;
    const char        **names;        /* hessian, convergence: (n_series) short names, run's */
    size_t              n_series;
} qn_runpic;

/* Gathers kind's data; layer is an index into info->layers (ignored for run-wide kinds). */
qn_status qn_runpic_load(qn_runpic *p, qn_run_folder *run, qn_runpic_kind kind, size_t layer, qn_err *err);
void      qn_runpic_done(qn_runpic *p);   /* zeroed is fine */
/* What both commands do for one picture: check that the run can make kind,
   resolve --layer for a per-layer kind (any form run_folder.h accepts; NULL:
   the layer of largest relative error), and load. */
qn_status qn_runpic_prepare(qn_runpic *p, qn_run_folder *run, qn_runpic_kind kind, const char *layer,
                            qn_err *err);

/* The titled figure (opts->title is filled from p). */
qn_status qn_runpic_figure(const qn_runpic *p, qn_font *font, const qn_viz_opts *opts, qn_picture *out,
                           qn_err *err);
/* The figure as a PNG at path, with text chunks quench.run, quench.model,
   quench.method, quench.layer, quench.kind, quench.bits, quench.options. */
qn_status qn_runpic_write_png(const qn_runpic *p, qn_font *font, const qn_viz_opts *opts, const char *path,
                              qn_err *err);

/* The matrix a bare heatmap of p shows and its style (the figure's colormap,
   reduction and scale): *v (rows, cols) malloc'd for the caller. Overview,
   codebook and convergence have none: QN_ERR_UNSUPPORTED. */
qn_status qn_runpic_heat(const qn_runpic *p, float **v, size_t *rows, size_t *cols, qn_heat_style *style,
                         qn_err *err);

/* The first title line as the figure writes it: "Weights: block 3 mlp.up_proj". */
void qn_runpic_heading(const qn_runpic *p, char *buf, size_t cap);

/* --what and --layer in the help of export-png and show. */
#define QN_RUNPIC_HELP \
    "  --what KIND          weights: the layer's original weights,\n" \
    "                       error: (w - q)^2 * diag(H) per weight, outliers: SpQR's kept weights,\n" \
    "                       codebook: AQLM's codebooks and their usage, overview: relative error of\n" \
    "                       every layer, hessian: diag(H) of every layer, convergence: AQLM's loss per round\n" \
    "  --layer NAME         3.up_proj, 3.mlp.up_proj, model.layers.3.mlp.up_proj, blk.3.ffn_up\n" \
    "                                                                            default the worst layer\n"

#endif
