/* plot_impl.h: the figure parts the picture kinds share (plot.c): axes that map
   data to pixels, tick choice and labels, titles, colorbars, heatmap panels,
   frames. Only src/viz uses it. Pixel y grows downwards; axes flip it. */
#ifndef QN_PLOT_IMPL_H
#define QN_PLOT_IMPL_H
#include "viz/plot.h"

#define QN_FIG_MAX_TICKS 24

typedef struct {
    qn_raster *r;
    qn_font   *font;
    double     fs;          /* base text size, px */
    bool       no_color;
} qn_fig;

typedef struct {
    double lo, hi;          /* data range; log: both > 0 */
    bool   log;
    bool   integer;         /* ticks only at whole numbers (indices, rounds) */
    bool   down;            /* values grow downwards on a y axis (matrix rows) */
} qn_axis;

/* Fixed colours of every figure. */
extern const qn_rgb qn_fig_ink;      /* text, frames, ticks */
extern const qn_rgb qn_fig_paper;    /* background */
extern const qn_rgb qn_fig_muted;    /* secondary text */
extern const qn_rgb qn_fig_nodata;   /* NaN cells */
extern const qn_rgb qn_fig_gridline;

/* Position of v along the axis in [0, 1] (outside when v is out of range); NaN for
   NaN, and for v <= 0 on a log axis. */
double qn_axis_frac(const qn_axis *a, double v);
/* Up to `max` tick values inside [lo, hi], ascending; returns the count. */
int  qn_axis_ticks(const qn_axis *a, int max, double *ticks);
/* A tick label for v on an axis whose ticks are `step` apart ("0.25", "−3",
   "10⁻⁴", "2×10⁻⁵"); on a log axis step is the ratio of neighbouring ticks, and
   powers of ten a decade or more apart are all written 10ⁿ. */
void qn_axis_label(char *buf, size_t cap, const qn_axis *a, double v, double step);
/* The range of v (n values, NaN skipped): log when the options ask for it or, with
   QN_SCALE_AUTO, when log_default; lo/hi from the options when they set them, else
   the finite values' (positive ones on a log axis, at most 6 decades below the
   top), widened so that lo < hi. symmetric: [-m, m], m the largest magnitude. */
qn_axis qn_axis_choose(const float *v, size_t n, bool log_default, bool symmetric,
                       const qn_viz_opts *o);

/* Figure: raster of w x h with the base text size from opts (or from w). */
qn_status qn_fig_init(qn_fig *f, qn_picture *out, qn_font *font, int w, int h,
                      const qn_viz_opts *o, qn_err *err);
/* Base text size for a figure w pixels wide. */
double qn_fig_font_px(int w, const qn_viz_opts *o);
/* Two centred lines at the top ("Weights: block 3 q_proj" and "model · method ·
   3.02 bits/param · extra"); returns the height they take. */
int  qn_fig_title(qn_fig *f, const char *kind, const qn_viz_title *t, const char *extra);
/* Height the title takes at this text size. */
int  qn_fig_title_height(double fs);

/* Text anchored by its horizontal position: align -1 left, 0 centre, 1 right at x;
   y is the baseline. */
void qn_fig_text(qn_fig *f, int x, int y, double px, int align, const char *s, qn_rgb c);
/* Vertical text centred on (x, y) (x the baseline column), reading upwards. */
void qn_fig_text_up(qn_fig *f, int x, int y, double px, const char *s, qn_rgb c);
int  qn_fig_text_width(qn_fig *f, double px, const char *s);

/* Ticks, tick labels and the axis label along the bottom / left edge of area. */
void qn_fig_xaxis(qn_fig *f, qn_rect area, const qn_axis *a, const char *label);
void qn_fig_yaxis(qn_fig *f, qn_rect area, const qn_axis *a, const char *label);
/* Widest y tick label of the axis, pixels (to size the left margin). */
int  qn_fig_ytick_width(qn_fig *f, const qn_axis *a);
/* Vertical colorbar filling bar, ticks and label on its right; the colormap runs
   from 0 at the bottom to t_top (1 but where only part of the map is used). */
void qn_fig_colorbar(qn_fig *f, qn_rect bar, qn_colormap cm, double t_top, const qn_axis *a,
                     const char *label);
/* Width a colorbar of this axis takes with its ticks and label, bar included. */
int  qn_fig_colorbar_width(qn_fig *f, const qn_axis *a);

/* Colour of v on the axis. */
qn_rgb qn_axis_color(const qn_axis *a, qn_colormap cm, double v);
/* A matrix reduced for a panel of w x h pixels (reduce.h). */
typedef struct {
    float *v;               /* (rows, cols) */
    size_t rows, cols;
} qn_fig_grid;
qn_status qn_fig_reduce(qn_fig_grid *g, const float *v, size_t rows, size_t cols,
                        qn_reduce_op op, int w, int h, qn_err *err);
void      qn_fig_grid_free(qn_fig_grid *g);
/* Paints the grid over area, each cell replicated over the pixels it covers. */
void      qn_fig_grid_draw(qn_raster *r, qn_rect area, const qn_fig_grid *g, qn_colormap cm,
                           const qn_axis *a);
/* A panel for a (rows, cols) matrix inside a box of max_w x max_h: the display
   aspect follows the matrix (clamped to 1:4..4:1), whole pixels per cell where
   the matrix is smaller than the box. */
void qn_fig_fit_panel(size_t rows, size_t cols, int max_w, int max_h, int *w, int *h);

#endif
