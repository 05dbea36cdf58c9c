/* plot_matrix.c: the pictures of one matrix per panel (plot.h): weights, weighted
   squared error, SpQR outlier positions with row and column marginals (the view of
   SpQR, Dettmers et al. 2023, Fig. 2/3: outliers gather in rows and columns), and
   the Hessian diagonal of every layer. Each is a heatmap figure: title, panel with
   row/column index axes, colorbar; the data reduced to the panel (reduce.h). */
#include "viz/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz/plot_impl.h"

#define DEFAULT_WIDTH 900

typedef struct {
    const char  *kind;            /* first title word(s) */
    const char  *x_label, *y_label, *value_label;
    qn_colormap  cm;
    qn_reduce_op op;
    bool         log_default, symmetric;
    const char *const *row_names; /* one per row, drawn instead of index ticks; or NULL */
} heat_spec;

/* Matrix indices as imshow has them: tick k at the centre of row or column k. */
static qn_axis index_axis(size_t n, bool down)
{
    return (qn_axis){ -0.5, (double)n - 0.5, false, true, down };
}

static const char *op_words(qn_reduce_op op)
{
    return op == QN_REDUCE_MEAN ? "block means" : "block maxima";
}

static void shape_note(char *buf, size_t cap, size_t rows, size_t cols, const qn_fig_grid *g,
                       qn_reduce_op op)
{
    if (g->rows < rows || g->cols < cols)
        snprintf(buf, cap, "%zu \xc3\x97 %zu, %s", rows, cols, op_words(op));
    else
        snprintf(buf, cap, "%zu \xc3\x97 %zu", rows, cols);
}

/* Row names at the rows' centres when they fit one per text line, else nothing. */
static int draw_row_names(qn_fig *f, qn_rect area, const char *const *names, size_t rows,
                          bool draw)
{
    double tfs = f->fs * 0.8;
    if (!names || rows == 0 || (double)area.h / (double)rows < tfs * 1.15) return -1;
    int widest = 0, tick = (int)lround(f->fs * 0.35);
    for (size_t i = 0; i < rows; i++) {
        const char *s = names[i] ? names[i] : "";
        int w = qn_fig_text_width(f, tfs, s);
        if (w > widest) widest = w;
        if (!draw) continue;
        int y = area.y + (int)(((double)i + 0.5) * area.h / (double)rows);
        qn_raster_hline(f->r, area.x - 1 - tick, area.x - 1, y, qn_fig_ink);
        qn_fig_text(f, area.x - tick - (int)lround(f->fs * 0.3), y + (int)lround(tfs * 0.36),
                    tfs, 1, s, qn_fig_ink);
    }
    return widest;
}

static qn_status heat_figure(qn_picture *out, qn_font *font, const float *v, size_t rows,
                             size_t cols, const heat_spec *sp, const qn_viz_opts *o,
                             qn_err *err)
{
    qn_status s;
    qn_fig_grid g = { 0 };
    memset(out, 0, sizeof *out);
    if (!rows || !cols) {
        s = qn_err_set(err, QN_ERR_SHAPE, "%s: empty matrix (%zu x %zu)", sp->kind, rows, cols);
        goto fail;
    }
    int W = o->width > 0 ? o->width : DEFAULT_WIDTH;
    qn_fig f = { NULL, font, qn_fig_font_px(W, o), o->no_color };
    double fs = f.fs;
    qn_colormap cm = qn_colormap_pick(o->colormap ? *o->colormap : sp->cm, o->no_color);

    /* margins from the labels they will hold; the colour axis estimated on the raw data */
    qn_axis xa = index_axis(cols, false), ya = index_axis(rows, true);
    qn_axis raw = qn_axis_choose(v, rows * cols, sp->log_default, sp->symmetric, o);
    int row_w = draw_row_names(&f, (qn_rect){ 0, 0, 1, 1 << 20 }, sp->row_names, rows, false);
    int ylab_w = row_w >= 0 ? row_w : qn_fig_ytick_width(&f, &ya);
    int left = (int)lround(fs * 0.6 + (row_w >= 0 ? 0 : fs * 1.4) + fs * 1.0) + ylab_w;
    int right = (int)lround(fs * 1.2) + qn_fig_colorbar_width(&f, &raw) + (int)lround(fs * 0.6);
    int top = qn_fig_title_height(fs) + (int)lround(fs * 0.4);
    int bottom = (int)lround(fs * 4.0);
    int max_w = W - left - right;
    int max_h = o->height > 0 ? o->height - top - bottom : (int)lround(W * 0.8);
    if (max_w < 8 || max_h < 8) {
        s = qn_err_set(err, QN_ERR_ARG, "%s: a %dx%d picture leaves no room for the panel",
                       sp->kind, W, o->height);
        goto fail;
    }
    int pw, ph;
    qn_fig_fit_panel(rows, cols, max_w, max_h, &pw, &ph);
    int H = o->height > 0 ? o->height : top + ph + bottom;
    if ((s = qn_fig_init(&f, out, font, W, H, o, err)) != QN_OK) goto fail;
    qn_rect map = { left + (max_w - pw) / 2, top + (max_h - ph) / 2, pw, ph };
    if (o->height <= 0) map.y = top;

    if ((s = qn_fig_reduce(&g, v, rows, cols, sp->op, pw, ph, err)) != QN_OK) goto fail;
    qn_axis ca = qn_axis_choose(g.v, g.rows * g.cols, sp->log_default, sp->symmetric, o);
    qn_fig_grid_draw(f.r, map, &g, cm, &ca);
    qn_raster_frame(f.r, (qn_rect){ map.x - 1, map.y - 1, map.w + 2, map.h + 2 }, qn_fig_ink);

    char note[128];
    shape_note(note, sizeof note, rows, cols, &g, sp->op);
    qn_fig_title(&f, sp->kind, &o->title, note);
    qn_fig_xaxis(&f, (qn_rect){ map.x, map.y, map.w, map.h + 1 }, &xa, sp->x_label);
    if (draw_row_names(&f, map, sp->row_names, rows, true) < 0)
        qn_fig_yaxis(&f, map, &ya, sp->y_label);
    qn_rect bar = { map.x + map.w + 1 + (int)lround(fs * 1.2), map.y,
                    (int)lround(fs * 1.1), map.h };
    qn_fig_colorbar(&f, bar, cm, 1, &ca,
                    o->value_label ? o->value_label : sp->value_label);

    out->map = map;
    out->lo = ca.lo;
    out->hi = ca.hi;
    out->log = ca.log;
    qn_fig_grid_free(&g);
    if ((s = qn_font_check(font, err)) != QN_OK) goto fail;
    return QN_OK;
fail:
    qn_fig_grid_free(&g);
    qn_picture_done(out);
    return s;
}

qn_status qn_viz_weights(qn_picture *out, qn_font *font, const float *W, size_t rows,
                         size_t cols, const qn_viz_opts *opts, qn_err *err)
{
    heat_spec sp = { "Weights", "input channel (column)", "output channel (row)", "weight",
                     QN_CMAP_COOLWARM, QN_REDUCE_MEAN, false, true, NULL };
    return heat_figure(out, font, W, rows, cols, &sp, opts, err);
}

qn_status qn_viz_error(qn_picture *out, qn_font *font, const float *E, size_t rows,
                       size_t cols, const qn_viz_opts *opts, qn_err *err)
{
    /* squared errors spread over decades: log unless they span less than 100x */
    qn_viz_opts lin = *opts;
    lin.scale = QN_SCALE_LINEAR;
    qn_axis a = qn_axis_choose(E, rows * cols, false, false, &lin);
    qn_axis l = qn_axis_choose(E, rows * cols, true, false, &lin);
    bool wide = l.hi > 0 && a.hi / fmax(l.lo, 1e-300) > 100;
    heat_spec sp = { "Weighted squared error", "input channel (column)",
                     "output channel (row)", "(w \xe2\x88\x92 q)\xc2\xb2 \xc2\xb7 diag(H)",
                     QN_CMAP_MAGMA, QN_REDUCE_MAX, wide, false, NULL };
    return heat_figure(out, font, E, rows, cols, &sp, opts, err);
}

qn_status qn_viz_hessian(qn_picture *out, qn_font *font, const float *const *diag,
                         const size_t *d, size_t n_layers, const char *const *names,
                         const qn_viz_opts *opts, qn_err *err)
{
    size_t width = 0;
    for (size_t l = 0; l < n_layers; l++)
        if (d[l] > width) width = d[l];
    if (!n_layers || !width) {
        memset(out, 0, sizeof *out);
        return qn_err_set(err, QN_ERR_SHAPE, "Hessian diagonal: no layers or no channels");
    }
    /* (n_layers, widest d), NaN past each layer's own d: drawn as "no data" */
    float *m = malloc(n_layers * width * sizeof *m);
    if (!m) {
        memset(out, 0, sizeof *out);
        return qn_err_set(err, QN_ERR_NOMEM, "Hessian diagonal: out of memory for %zu x %zu",
                          n_layers, width);
    }
    for (size_t l = 0; l < n_layers; l++)
        for (size_t j = 0; j < width; j++)
            m[l * width + j] = j < d[l] ? diag[l][j] : NAN;
    heat_spec sp = { "Hessian diagonal", "input channel", "layer",
                     "diag(H) = mean x\xc2\xb2", QN_CMAP_MAGMA,
                     QN_REDUCE_MAX, true, false, names };
    qn_status s = heat_figure(out, font, m, n_layers, width, &sp, opts, err);
    free(m);
    return s;
}

/* counts (n) reduced to m bins by max, as floats */
static float *count_bins(const float *counts, size_t n, size_t m, size_t *m_out, qn_err *err)
{
    *m_out = qn_reduce_dim(n, m);
    float *b = malloc(*m_out * sizeof *b);
    if (!b) {
        qn_err_set(err, QN_ERR_NOMEM, "outliers: out of memory");
        return NULL;
    }
    qn_reduce(counts, 1, n, QN_REDUCE_MAX, b, 1, *m_out);
    return b;
}

static float max_of(const float *v, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > m) m = v[i];
    return m;
}

qn_status qn_viz_outliers(qn_picture *out, qn_font *font, const uint8_t *mask,
                          size_t rows, size_t cols, const qn_viz_opts *o, qn_err *err)
{
    qn_status s;
    float *row_n = NULL, *col_n = NULL, *row_b = NULL, *col_b = NULL;
    uint8_t *red = NULL;
    memset(out, 0, sizeof *out);
    if (!rows || !cols)
        return qn_err_set(err, QN_ERR_SHAPE, "outliers: empty mask (%zu x %zu)", rows, cols);
    row_n = calloc(rows, sizeof *row_n);
    col_n = calloc(cols, sizeof *col_n);
    if (!row_n || !col_n) {
        s = qn_err_set(err, QN_ERR_NOMEM, "outliers: out of memory");
        goto fail;
    }
    size_t total = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            if (mask[r * cols + c]) { row_n[r] += 1; col_n[c] += 1; total++; }

    int W = o->width > 0 ? o->width : DEFAULT_WIDTH;
    qn_fig f = { NULL, font, qn_fig_font_px(W, o), o->no_color };
    double fs = f.fs;
    qn_axis xa = index_axis(cols, false), ya = index_axis(rows, true);
    qn_axis col_axis = { 0, fmax(1, max_of(col_n, cols)), false, true, false };
    qn_axis row_axis = { 0, fmax(1, max_of(row_n, rows)), false, true, false };
    int tick_w = qn_fig_ytick_width(&f, &ya), cw = qn_fig_ytick_width(&f, &col_axis);
    int left = (int)lround(fs * 3.0) + (tick_w > cw ? tick_w : cw);
    int marg = (int)lround(fs * 5.5), gap = (int)lround(fs * 0.6);
    int right = gap + marg + (int)lround(fs * 1.5);
    int top = qn_fig_title_height(fs) + marg + gap;
    int bottom = (int)lround(fs * 4.0);
    int max_w = W - left - right;
    int max_h = o->height > 0 ? o->height - top - bottom : (int)lround(W * 0.75);
    if (max_w < 8 || max_h < 8) {
        s = qn_err_set(err, QN_ERR_ARG, "outliers: a %dx%d picture leaves no room for the "
                       "panel", W, o->height);
        goto fail;
    }
    int pw, ph;
    qn_fig_fit_panel(rows, cols, max_w, max_h, &pw, &ph);
    int H = o->height > 0 ? o->height : top + ph + bottom;
    if ((s = qn_fig_init(&f, out, font, W, H, o, err)) != QN_OK) goto fail;
    qn_rect map = { left + (max_w - pw) / 2, top, pw, ph };

    /* the map: any outlier in a pixel's block marks the pixel */
    size_t mr = qn_reduce_dim(rows, (size_t)ph), mc = qn_reduce_dim(cols, (size_t)pw);
    red = malloc(mr * mc);
    size_t n_rb, n_cb;
    row_b = count_bins(row_n, rows, (size_t)ph, &n_rb, err);
    col_b = count_bins(col_n, cols, (size_t)pw, &n_cb, err);
    if (!red || !row_b || !col_b) {
        s = qn_err_set(err, QN_ERR_NOMEM, "outliers: out of memory");
        goto fail;
    }
    qn_reduce_mask(mask, rows, cols, red, mr, mc);
    qn_rgb dot = o->no_color ? qn_fig_ink : (qn_rgb){ 180, 4, 38 };
    qn_rgb bar = o->no_color ? qn_fig_muted : (qn_rgb){ 59, 76, 192 };
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++)
            if (red[(size_t)y * mr / (size_t)ph * mc + (size_t)x * mc / (size_t)pw])
                qn_raster_set(f.r, map.x + x, map.y + y, dot);
    qn_raster_frame(f.r, (qn_rect){ map.x - 1, map.y - 1, map.w + 2, map.h + 2 }, qn_fig_ink);

    /* top marginal: outliers per input column; right marginal: per output row */
    qn_rect tm = { map.x, map.y - 1 - gap - marg, map.w, marg };
    for (int x = 0; x < pw; x++) {
        double v = col_b[(size_t)x * n_cb / (size_t)pw] / col_axis.hi;
        int hgt = (int)lround(v * marg);
        if (v > 0 && hgt < 1) hgt = 1;
        qn_raster_fill(f.r, (qn_rect){ tm.x + x, tm.y + marg - hgt, 1, hgt }, bar);
    }
    qn_rect rm = { map.x + map.w + 1 + gap, map.y, marg, map.h };
    for (int y = 0; y < ph; y++) {
        double v = row_b[(size_t)y * n_rb / (size_t)ph] / row_axis.hi;
        int len = (int)lround(v * marg);
        if (v > 0 && len < 1) len = 1;
        qn_raster_fill(f.r, (qn_rect){ rm.x, rm.y + y, len, 1 }, bar);
    }
    qn_raster_hline(f.r, tm.x, tm.x + tm.w - 1, tm.y + tm.h, qn_fig_ink);
    qn_raster_vline(f.r, tm.x - 1, tm.y, tm.y + tm.h, qn_fig_ink);
    qn_raster_vline(f.r, rm.x - 1, rm.y, rm.y + rm.h - 1, qn_fig_ink);
    qn_raster_hline(f.r, rm.x - 1, rm.x + rm.w - 1, rm.y + rm.h, qn_fig_ink);
    qn_fig_yaxis(&f, tm, &col_axis, NULL);
    qn_fig_xaxis(&f, (qn_rect){ rm.x, rm.y, rm.w, rm.h + 1 }, &row_axis, "per row");
    /* the corner above the row marginal names the column marginal */
    qn_fig_text(&f, rm.x + marg / 2, tm.y + marg - (int)lround(fs * 0.2), fs, 0, "per column",
                qn_fig_ink);
    qn_fig_text(&f, rm.x + marg / 2, tm.y + marg - (int)lround(fs * 1.5), fs * 0.85, 0,
                "outliers", qn_fig_muted);

    char note[160];
    snprintf(note, sizeof note, "%zu \xc3\x97 %zu, %zu outliers (%.3g%%)", rows, cols, total,
             100.0 * (double)total / ((double)rows * (double)cols));
    qn_fig_title(&f, "Outliers", &o->title, note);
    qn_fig_xaxis(&f, (qn_rect){ map.x, map.y, map.w, map.h + 1 }, &xa, "input channel (column)");
    qn_fig_yaxis(&f, map, &ya, "output channel (row)");
    out->map = map;
    out->lo = 0;
    out->hi = 1;
    if ((s = qn_font_check(font, err)) != QN_OK) goto fail;
    free(row_n); free(col_n); free(row_b); free(col_b); free(red);
    return QN_OK;
fail:
    free(row_n); free(col_n); free(row_b); free(col_b); free(red);
    qn_picture_done(out);
    return s;
}
