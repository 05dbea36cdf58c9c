/* plot.h: the pictures, one function per kind, each taking plain arrays and
   returning an RGB raster in the style of the AQLM and SpQR papers' figures:
   a title (what, layer, model, method, bits), labelled axes with ticks, a
   colorbar with ticks, DejaVu text. Matrices larger than their panel are block-
   reduced (reduce.h: mean for weights, max for errors and masks), so nothing is
   ever subsampled away. qn_viz_heatmap is the bare panel (no text, no font) for
   terminal cells. Writing files is png.h's; nothing here prints or reads files
   other than the font. */
#ifndef QN_PLOT_H
#define QN_PLOT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "viz/colormap.h"
#include "viz/font.h"
#include "viz/raster.h"
#include "viz/reduce.h"

typedef enum { QN_SCALE_AUTO = 0, QN_SCALE_LINEAR, QN_SCALE_LOG } qn_scale;

/* What the title says; NULL/empty strings and bits <= 0 are left out. */
typedef struct {
    const char *model;      /* "stories260K" */
    const char *layer;      /* "block 3 self_attn.q_proj" */
    const char *method;     /* "SpQR w3 g16 + outliers", "AQLM 1x16 g8" */
    double      bits;       /* bits per parameter */
} qn_viz_title;

/* Zero-initialised is the default for every field. */
typedef struct {
    qn_viz_title title;
    int         width, height;  /* pixels; 0: the kind's default (height from the data) */
    double      font_px;        /* base text size; 0: from the width */
    bool        no_color;       /* greys only (NO_COLOR, print) */
    const qn_colormap *colormap;  /* the map of value-coloured panels; NULL: the kind's own */
    qn_scale    scale;          /* colour (or y) scale; AUTO: the kind's choice */
    double      lo, hi;         /* colour (or y) range; lo == hi: from the data */
    const char *value_label;    /* colorbar or y-axis label; NULL: the kind's */
} qn_viz_opts;

typedef struct {
    qn_raster image;
    qn_rect   map;          /* the main panel: heatmap pixels or plot area */
    double    lo, hi;       /* the colour (or y) range used */
    bool      log;          /* whether that range is on a log scale */
} qn_picture;

void qn_picture_done(qn_picture *p);   /* zeroed is fine */

/* Bare heatmap, w x h pixels: v (rows, cols) reduced with op where larger than
   the panel, replicated (nearest) where smaller. lo == hi: range from the data
   (symmetric around 0 for QN_CMAP_COOLWARM). NaN cells are light grey. */
typedef struct {
    qn_colormap  cmap;
    qn_scale     scale;       /* AUTO is LINEAR here */
    qn_reduce_op op;
    double       lo, hi;
} qn_heat_style;
qn_status qn_viz_heatmap(qn_picture *out, const float *v, size_t rows, size_t cols,
                         int w, int h, const qn_heat_style *style, qn_err *err);

/* A layer's weights W (rows = output channels, cols = input channels), signed,
   on the diverging map, symmetric range, mean-reduced. */
qn_status qn_viz_weights(qn_picture *out, qn_font *font, const float *W, size_t rows,
                         size_t cols, const qn_viz_opts *opts, qn_err *err);
/* Per-weight calibration-weighted squared error, e.g. (W - Q)_ij^2 * H_jj,
   E (rows, cols) >= 0, max-reduced, log scale unless the range is narrow. */
qn_status qn_viz_error(qn_picture *out, qn_font *font, const float *E, size_t rows,
                       size_t cols, const qn_viz_opts *opts, qn_err *err);
/* SpQR outlier positions, mask (rows, cols) non-zero at an outlier, any-reduced,
   with marginals: outliers per output row (right) and per input column (top),
   each bar the largest count among the rows or columns its pixel covers. */
qn_status qn_viz_outliers(qn_picture *out, qn_font *font, const uint8_t *mask,
                          size_t rows, size_t cols, const qn_viz_opts *opts, qn_err *err);
/* Hessian diagonal per layer: diag[l] (d[l]) for l < n_layers, one row per layer,
   max-reduced along the channels, log scale. names (n_layers) or NULL. */
qn_status qn_viz_hessian(qn_picture *out, qn_font *font, const float *const *diag,
                         const size_t *d, size_t n_layers, const char *const *names,
                         const qn_viz_opts *opts, qn_err *err);

/* Llama's seven linear layers per block, in the overview's column order. */
#define QN_VIZ_SUBLAYERS 7
extern const char *const qn_viz_sublayer_names[QN_VIZ_SUBLAYERS]; /* q k v o gate up down */

/* All layers: rel_err (n_blocks, 7) relative error per block and sublayer (NaN:
   not quantized), bits (n_blocks, 7) bits per parameter or NULL. Each cell is
   coloured by its error and carries its value (and bits) where the text fits. */
qn_status qn_viz_overview(qn_picture *out, qn_font *font, const double *rel_err,
                          const double *bits, size_t n_blocks, const qn_viz_opts *opts,
                          qn_err *err);
/* Loss per round for each layer of an AQLM run: loss (n_layers, n_rounds), NaN
   after a layer's last round; names (n_layers) or NULL. A legend up to 10 layers,
   else lines coloured by layer index with a colorbar. */
qn_status qn_viz_convergence(qn_picture *out, qn_font *font, const double *loss,
                             size_t n_layers, size_t n_rounds, const char *const *names,
                             const qn_viz_opts *opts, qn_err *err);
/* An AQLM layer's codebooks: codewords (M, K, g), usage (M, K) counts. Per
   codebook a row of three panels: usage sorted from most to least used (log),
   codeword norms in the same order, and a PCA projection of the codewords
   coloured by usage. */
qn_status qn_viz_codebook(qn_picture *out, qn_font *font, const float *codewords,
                          const uint32_t *usage, size_t M, size_t K, size_t g,
                          const qn_viz_opts *opts, qn_err *err);

#endif
