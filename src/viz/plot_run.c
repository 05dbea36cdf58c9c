/* plot_run.c: the pictures of a whole run (plot.h): the overview table of every
   layer's relative error (blocks down, Llama's seven linear layers across, as
   the per-layer error tables of the AQLM paper, Egiazarian et al. 2024) and the
   convergence of AQLM's alternating rounds per layer (its Alg. 1: beam search
   over codes, then codebook updates, repeated until the loss stops falling). */
#include "viz/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz/plot_impl.h"

const char *const qn_viz_sublayer_names[QN_VIZ_SUBLAYERS] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
};

/* "0.0123", "1.23e-05" style compact numbers, U+2212 for the sign */
static void compact(char *buf, size_t cap, double v)
{
    char num[32];
    if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e4)) snprintf(num, sizeof num, "%.2e", v);
    else snprintf(num, sizeof num, "%.3g", v);
    if (num[0] == '-') snprintf(buf, cap, "\xe2\x88\x92%s", num + 1);
    else snprintf(buf, cap, "%s", num);
}

static qn_rgb text_on(qn_rgb bg)
{
    return qn_rgb_luminance(bg) > 0.36 ? qn_fig_ink : qn_fig_paper;
}

qn_status qn_viz_overview(qn_picture *out, qn_font *font, const double *rel_err,
                          const double *bits, size_t n_blocks, const qn_viz_opts *o,
                          qn_err *err)
{
    qn_status s;
    float *vals = NULL;
    memset(out, 0, sizeof *out);
    if (!n_blocks) return qn_err_set(err, QN_ERR_SHAPE, "overview: no blocks");
    size_t n = n_blocks * QN_VIZ_SUBLAYERS;
    vals = malloc(n * sizeof *vals);
    if (!vals) return qn_err_set(err, QN_ERR_NOMEM, "overview: out of memory");
    for (size_t i = 0; i < n; i++) vals[i] = (float)rel_err[i];

    int W = o->width > 0 ? o->width : 900;
    qn_fig f = { NULL, font, qn_fig_font_px(W, o), o->no_color };
    double fs = f.fs, cfs = fs * 0.8;
    qn_viz_opts lin = *o;
    lin.scale = QN_SCALE_LINEAR;
    qn_axis l = qn_axis_choose(vals, n, true, false, &lin);
    qn_axis ca = qn_axis_choose(vals, n, l.hi / l.lo > 10, false, o);
    qn_axis ya = { -0.5, (double)n_blocks - 0.5, false, true, true };
    qn_colormap cm = qn_colormap_pick(o->colormap ? *o->colormap : QN_CMAP_MAGMA, o->no_color);

    char label[32];
    snprintf(label, sizeof label, "%zu", n_blocks - 1);
    int left = (int)lround(fs * 3.2) + qn_fig_text_width(&f, fs * 0.9, label);
    int right = (int)lround(fs * 1.2) + qn_fig_colorbar_width(&f, &ca) + (int)lround(fs * 0.6);
    int top = qn_fig_title_height(fs) + (int)lround(fs * 1.8);
    int bottom = (int)lround(fs * 1.2);
    int cell_w = (W - left - right) / QN_VIZ_SUBLAYERS;
    int cell_h = (int)lround(bits ? cfs * 2.7 : cfs * 1.9);
    if (o->height > 0) cell_h = (o->height - top - bottom) / (int)n_blocks;
    if (cell_w < 4 || cell_h < 2) {
        s = qn_err_set(err, QN_ERR_ARG, "overview: %zu blocks do not fit a %dx%d picture",
                       n_blocks, W, o->height);
        goto fail;
    }
    int H = o->height > 0 ? o->height : top + cell_h * (int)n_blocks + bottom;
    if ((s = qn_fig_init(&f, out, font, W, H, o, err)) != QN_OK) goto fail;
    qn_rect map = { left, top, cell_w * QN_VIZ_SUBLAYERS, cell_h * (int)n_blocks };

    char buf[64];
    for (size_t b = 0; b < n_blocks; b++)
        for (int j = 0; j < QN_VIZ_SUBLAYERS; j++) {
            size_t k = b * QN_VIZ_SUBLAYERS + (size_t)j;
            qn_rect c = { map.x + j * cell_w, map.y + (int)b * cell_h, cell_w, cell_h };
            qn_rgb bg = qn_axis_color(&ca, cm, rel_err[k]);
            qn_raster_fill(f.r, c, bg);
            qn_raster_frame(f.r, c, qn_fig_paper);   /* thin white grid, as seaborn */
            if (isnan(rel_err[k])) {
                qn_fig_text(&f, c.x + c.w / 2, c.y + (c.h + (int)(cfs * 0.7)) / 2, cfs, 0,
                            "\xe2\x80\x94", qn_fig_muted);
                continue;
            }
            compact(buf, sizeof buf, rel_err[k]);
            bool two = bits && !isnan(bits[k]) && c.h >= cfs * 2.4;
            if (qn_fig_text_width(&f, cfs, buf) > c.w - 4 || c.h < cfs * 1.1) continue;
            int base = two ? c.y + (int)lround(c.h / 2.0 - cfs * 0.15)
                           : c.y + (c.h + (int)lround(cfs * 0.72)) / 2;
            qn_fig_text(&f, c.x + c.w / 2, base, cfs, 0, buf, text_on(bg));
            if (two) {
                snprintf(buf, sizeof buf, "%.3g b", bits[k]);
                if (qn_fig_text_width(&f, cfs * 0.85, buf) <= c.w - 4)
                    qn_fig_text(&f, c.x + c.w / 2, base + (int)lround(cfs * 1.1), cfs * 0.85, 0,
                                buf, text_on(bg));
            }
        }
    qn_raster_frame(f.r, (qn_rect){ map.x - 1, map.y - 1, map.w + 2, map.h + 2 }, qn_fig_ink);
    for (int j = 0; j < QN_VIZ_SUBLAYERS; j++)
        qn_fig_text(&f, map.x + j * cell_w + cell_w / 2, map.y - (int)lround(fs * 0.5), fs * 0.9,
                    0, qn_viz_sublayer_names[j], qn_fig_ink);

    /* block numbers at the rows' centres when they fit, else nice ticks */
    int tick = (int)lround(fs * 0.35);
    if (cell_h >= fs * 0.95) {
        for (size_t b = 0; b < n_blocks; b++) {
            int y = map.y + (int)b * cell_h + cell_h / 2;
            snprintf(buf, sizeof buf, "%zu", b);
            qn_raster_hline(f.r, map.x - 1 - tick, map.x - 2, y, qn_fig_ink);
            qn_fig_text(&f, map.x - tick - (int)lround(fs * 0.3), y + (int)lround(fs * 0.32),
                        fs * 0.9, 1, buf, qn_fig_ink);
        }
        qn_fig_text_up(&f, map.x - tick - (int)lround(fs * 1.0) -
                       qn_fig_text_width(&f, fs * 0.9, label), map.y + map.h / 2, fs, "block",
                       qn_fig_ink);
    } else {
        qn_fig_yaxis(&f, map, &ya, "block");
    }
    char note[64] = "";
    if (bits) snprintf(note, sizeof note, "cells: relative error, bits per parameter");
    qn_fig_title(&f, "Relative error per layer", &o->title, note);
    qn_rect bar = { map.x + map.w + 1 + (int)lround(fs * 1.2), map.y, (int)lround(fs * 1.1),
                    map.h };
    qn_fig_colorbar(&f, bar, cm, 1, &ca, o->value_label ? o->value_label : "relative error");
    out->map = map;
    out->lo = ca.lo;
    out->hi = ca.hi;
    out->log = ca.log;
    if ((s = qn_font_check(font, err)) != QN_OK) goto fail;
    free(vals);
    return QN_OK;
fail:
    free(vals);
    qn_picture_done(out);
    return s;
}

/* ---- convergence ---------------------------------------------------------- */

/* line colours stop short of the maps' light ends, which vanish on white paper */
#define LAYER_T_GREYS   0.75
#define LAYER_T_VIRIDIS 0.92

static qn_rgb layer_color(size_t l, size_t n, bool no_color)
{
    double t = n > 1 ? (double)l / (double)(n - 1) : 0;
    return no_color ? qn_colormap_at(QN_CMAP_GREYS, t * LAYER_T_GREYS)
                    : qn_colormap_at(QN_CMAP_VIRIDIS, t * LAYER_T_VIRIDIS);
}

static void legend(qn_fig *f, qn_rect area, const char *const *names, size_t n)
{
    double fs = f->fs, lfs = fs * 0.85;
    char buf[64];
    int widest = 0, line = (int)lround(lfs * 1.45), sw = (int)lround(fs * 1.8);
    for (size_t l = 0; l < n; l++) {
        snprintf(buf, sizeof buf, "%s", names && names[l] ? names[l] : "");
        if (!buf[0]) snprintf(buf, sizeof buf, "layer %zu", l);
        int w = qn_fig_text_width(f, lfs, buf);
        if (w > widest) widest = w;
    }
    int pad = (int)lround(fs * 0.5);
    qn_rect box = { 0, area.y + pad, sw + widest + 3 * pad, (int)n * line + pad };
    box.x = area.x + area.w - pad - box.w;
    qn_raster_fill(f->r, box, qn_fig_paper);
    qn_raster_frame(f->r, box, (qn_rgb){ 204, 204, 204 });
    for (size_t l = 0; l < n; l++) {
        snprintf(buf, sizeof buf, "%s", names && names[l] ? names[l] : "");
        if (!buf[0]) snprintf(buf, sizeof buf, "layer %zu", l);
        int y = box.y + pad / 2 + (int)l * line + line / 2;
        qn_rgb c = layer_color(l, n, f->no_color);
        qn_raster_line(f->r, box.x + pad, y, box.x + pad + sw, y, fs * 0.14, c);
        qn_raster_disc(f->r, box.x + pad + sw / 2.0, y, fs * 0.22, c);
        qn_fig_text(f, box.x + 2 * pad + sw, y + (int)lround(lfs * 0.36), lfs, -1, buf,
                    qn_fig_ink);
    }
}

qn_status qn_viz_convergence(qn_picture *out, qn_font *font, const double *loss,
                             size_t n_layers, size_t n_rounds, const char *const *names,
                             const qn_viz_opts *o, qn_err *err)
{
    qn_status s;
    memset(out, 0, sizeof *out);
    if (!n_layers || !n_rounds)
        return qn_err_set(err, QN_ERR_SHAPE, "convergence: no layers or no rounds");
    size_t n = n_layers * n_rounds;
    float *vals = malloc(n * sizeof *vals);
    if (!vals) return qn_err_set(err, QN_ERR_NOMEM, "convergence: out of memory");
    for (size_t i = 0; i < n; i++) vals[i] = (float)loss[i];

    int W = o->width > 0 ? o->width : 900;
    int H = o->height > 0 ? o->height : (int)lround(W * 0.62);
    qn_fig f = { NULL, font, qn_fig_font_px(W, o), o->no_color };
    double fs = f.fs;
    qn_viz_opts lin = *o;
    lin.scale = QN_SCALE_LINEAR;
    qn_axis l = qn_axis_choose(vals, n, true, false, &lin);
    qn_axis ya = qn_axis_choose(vals, n, l.hi / l.lo > 20, false, o);
    if (o->lo == o->hi) {   /* 4% room above and below, as matplotlib's margins */
        if (ya.log) { ya.lo /= pow(ya.hi / ya.lo, 0.04); ya.hi *= pow(ya.hi / ya.lo, 0.04 / 1.04); }
        else { double m = (ya.hi - ya.lo) * 0.04; ya.lo -= m; ya.hi += m; }
    }
    double span = n_rounds > 1 ? (double)(n_rounds - 1) : 1;
    qn_axis xa = { -span * 0.03, span * 1.03, false, true, false };
    if (n_rounds == 1) { xa.lo = -0.5; xa.hi = 0.5; }
    bool bar = n_layers > 10;
    qn_axis la = { 0, (double)(n_layers - 1), false, true, false };
    if (n_layers == 1) la.hi = 1;

    int left = (int)lround(fs * 3.0) + qn_fig_ytick_width(&f, &ya);
    int right = bar ? (int)lround(fs * 1.2) + qn_fig_colorbar_width(&f, &la) + (int)lround(fs * 0.6)
                    : (int)lround(fs * 1.5);
    int top = qn_fig_title_height(fs) + (int)lround(fs * 0.4);
    qn_rect area = { left, top, W - left - right, H - top - (int)lround(fs * 4.0) };
    if (area.w < 16 || area.h < 16) {
        s = qn_err_set(err, QN_ERR_ARG, "convergence: a %dx%d picture leaves no room for the "
                       "plot", W, H);
        goto fail;
    }
    if ((s = qn_fig_init(&f, out, font, W, H, o, err)) != QN_OK) goto fail;

    double ticks[QN_FIG_MAX_TICKS];
    int nt = qn_axis_ticks(&ya, (int)(area.h / (fs * 2.5)), ticks);
    for (int i = 0; i < nt; i++) {
        int y = area.y + (int)lround((1 - qn_axis_frac(&ya, ticks[i])) * area.h);
        qn_raster_hline(f.r, area.x, area.x + area.w - 1, y, qn_fig_gridline);
    }
    bool markers = n_rounds <= 40;
    for (size_t li = 0; li < n_layers; li++) {
        qn_rgb c = layer_color(li, n_layers, o->no_color);
        double px = NAN, py = NAN;
        for (size_t r = 0; r < n_rounds; r++) {
            double v = loss[li * n_rounds + r];
            double x = area.x + qn_axis_frac(&xa, (double)r) * area.w;
            double y = area.y + (1 - qn_axis_frac(&ya, v)) * area.h;
            if (isnan(y)) { px = py = NAN; continue; }
            if (!isnan(px)) qn_raster_line(f.r, px, py, x, y, fmax(1.2, fs * 0.13), c);
            if (markers) qn_raster_disc(f.r, x, y, fmax(1.5, fs * 0.2), c);
            px = x;
            py = y;
        }
    }
    /* lines may run past the range the caller set: repaint the margins */
    qn_raster_fill(f.r, (qn_rect){ 0, 0, W, area.y - 1 }, qn_fig_paper);
    qn_raster_fill(f.r, (qn_rect){ 0, area.y + area.h + 1, W, H }, qn_fig_paper);
    qn_raster_fill(f.r, (qn_rect){ 0, 0, area.x - 1, H }, qn_fig_paper);
    qn_raster_fill(f.r, (qn_rect){ area.x + area.w + 1, 0, W, H }, qn_fig_paper);
    qn_raster_frame(f.r, (qn_rect){ area.x - 1, area.y - 1, area.w + 2, area.h + 2 }, qn_fig_ink);
    qn_fig_xaxis(&f, (qn_rect){ area.x, area.y, area.w, area.h + 1 }, &xa, "round");
    qn_fig_yaxis(&f, area, &ya, o->value_label ? o->value_label : "loss");
    if (bar) {
        qn_rect cb = { area.x + area.w + 1 + (int)lround(fs * 1.2), area.y, (int)lround(fs * 1.1),
                       area.h };
        qn_fig_colorbar(&f, cb, o->no_color ? QN_CMAP_GREYS : QN_CMAP_VIRIDIS,
                        o->no_color ? LAYER_T_GREYS : LAYER_T_VIRIDIS, &la, "layer");
    } else {
        legend(&f, area, names, n_layers);
    }
    char note[64];
    snprintf(note, sizeof note, "%zu layer%s, %zu round%s", n_layers, n_layers == 1 ? "" : "s",
             n_rounds, n_rounds == 1 ? "" : "s");
    qn_fig_title(&f, "Convergence", &o->title, note);
    out->map = area;
    out->lo = ya.lo;
    out->hi = ya.hi;
    out->log = ya.log;
    if ((s = qn_font_check(font, err)) != QN_OK) goto fail;
    free(vals);
    return QN_OK;
fail:
    free(vals);
    qn_picture_done(out);
    return s;
}
