/* plot.c: the figure parts every picture shares (plot_impl.h) and the bare
   heatmap panel (plot.h). Layout follows matplotlib's defaults, the look of the
   AQLM and SpQR papers' figures: white paper, black frame, ticks outside, tick
   labels at ~0.9 of the base size, titles at ~1.3, a proper minus sign and
   superscript exponents. Tick choice is Heckbert's "nice numbers" (Graphics Gems
   I, 1990): steps of 1, 2, 2.5 or 5 times a power of ten. */
#include "viz/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz/plot_impl.h"

const qn_rgb qn_fig_ink = { 0, 0, 0 };
const qn_rgb qn_fig_paper = { 255, 255, 255 };
const qn_rgb qn_fig_muted = { 90, 90, 90 };
const qn_rgb qn_fig_nodata = { 224, 224, 224 };
const qn_rgb qn_fig_gridline = { 228, 228, 228 };

#define MINUS "\xe2\x88\x92"     /* U+2212 */

void qn_picture_done(qn_picture *p)
{
    if (!p) return;
    qn_raster_done(&p->image);
    memset(p, 0, sizeof *p);
}

/* ---- axes and ticks ---------------------------------------------------- */

double qn_axis_frac(const qn_axis *a, double v)
{
    if (isnan(v)) return NAN;
    if (a->log) {
        if (v <= 0) return NAN;
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    }
    return a->hi > a->lo ? (v - a->lo) / (a->hi - a->lo) : 0.5;
}

qn_rgb qn_axis_color(const qn_axis *a, qn_colormap cm, double v)
{
    if (isnan(v)) return qn_fig_nodata;
    double t = qn_axis_frac(a, v);
    return qn_colormap_at(cm, isnan(t) ? 0 : t);   /* v <= 0 on a log axis: the bottom */
}

static int linear_ticks(const qn_axis *a, int max, double *ticks, double *step_out)
{
    static const double k_mult[] = { 1, 2, 2.5, 5 };
    double span = a->hi - a->lo;
    if (!(span > 0) || max < 1) return 0;
    double mag = pow(10, floor(log10(span / max))) / 10;
    for (int tries = 0; tries < 40; tries++, mag *= 10)
        for (size_t m = 0; m < sizeof k_mult / sizeof k_mult[0]; m++) {
            double step = k_mult[m] * mag;
            if (a->integer && (step < 1 || k_mult[m] == 2.5)) continue;
            double first = ceil(a->lo / step - 1e-9) * step;
            int n = (int)floor((a->hi - first) / step + 1e-9) + 1;
            if (n > max) continue;
            for (int i = 0; i < n; i++) {
                double v = first + i * step;
                ticks[i] = fabs(v) < step * 1e-9 ? 0 : v;
            }
            *step_out = step;
            return n;
        }
    return 0;
}

int qn_axis_ticks(const qn_axis *a, int max, double *ticks)
{
    if (max > QN_FIG_MAX_TICKS) max = QN_FIG_MAX_TICKS;
    double step;
    if (!a->log) return linear_ticks(a, max, ticks, &step);
    int k0 = (int)ceil(log10(a->lo) - 1e-9), k1 = (int)floor(log10(a->hi) + 1e-9);
    int decades = k1 - k0 + 1;
    if (decades >= 2) {
        int stride = (decades + max - 1) / max, n = 0;
        for (int k = k0; k <= k1 && n < max; k += stride) ticks[n++] = pow(10, k);
        return n;
    }
    /* less than two powers of ten inside: 1, 2, 5 times them */
    static const double k_125[] = { 1, 2, 5 };
    int n = 0;
    for (int k = k0 - 1; k <= k1; k++)
        for (int m = 0; m < 3 && n < max; m++) {
            double v = k_125[m] * pow(10, k);
            if (v >= a->lo * (1 - 1e-9) && v <= a->hi * (1 + 1e-9)) ticks[n++] = v;
        }
    if (n >= 2) return n;
    qn_axis lin = *a;
    lin.log = false;
    return linear_ticks(&lin, max, ticks, &step);
}

/* "⁻¹²" for k = -12 */
static void superscript(char *buf, size_t cap, int k)
{
    static const char *const k_sup[] = { "\xe2\x81\xb0", "\xc2\xb9", "\xc2\xb2", "\xc2\xb3",
                                         "\xe2\x81\xb4", "\xe2\x81\xb5", "\xe2\x81\xb6",
                                         "\xe2\x81\xb7", "\xe2\x81\xb8", "\xe2\x81\xb9" };
    char digits[16];
    snprintf(digits, sizeof digits, "%d", k < 0 ? -k : k);
    size_t len = 0;
    buf[0] = 0;
    if (k < 0) len += (size_t)snprintf(buf, cap, "\xe2\x81\xbb");
    for (const char *d = digits; *d && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s", k_sup[*d - '0']);
}

/* decimals needed to write multiples of step exactly (at most 6) */
static int decimals_for(double step)
{
    int d = 0;
    while (d < 6) {
        double s = step * pow(10, d);
        if (fabs(s - round(s)) < 1e-6 * fmax(1, s)) break;
        d++;
    }
    return d;
}

static void with_minus(char *buf, size_t cap, const char *num)
{
    if (num[0] == '-') snprintf(buf, cap, MINUS "%.40s", num + 1);
    else snprintf(buf, cap, "%.40s", num);
}

void qn_axis_label(char *buf, size_t cap, const qn_axis *a, double v, double step)
{
    char num[64], sup[48];
    if (v == 0) { snprintf(buf, cap, "0"); return; }
    int k = (int)floor(log10(fabs(v)) + 1e-9);
    double m = v / pow(10, k);
    if (a->log) {
        /* ticks a decade or more apart: all as powers of ten, as matplotlib */
        if (fabs(m - 1) < 1e-6 && (step >= 9.99 || k < -2 || k > 3)) {
            superscript(sup, sizeof sup, k);
            snprintf(buf, cap, "10%s", sup);
            return;
        }
        step = pow(10, k);
    }
    if (!(step > 0)) step = fabs(v);
    if ((step >= 1e-3 || fabs(v) >= 1e-3) && fabs(v) < 1e5 && step >= 1e-4) {
        snprintf(num, sizeof num, "%.*f", decimals_for(step), v);
        with_minus(buf, cap, num);
        return;
    }
    /* m × 10^k, m with the decimals the step needs at that magnitude */
    superscript(sup, sizeof sup, k);
    if (fabs(fabs(m) - 1) < 1e-6) {
        snprintf(buf, cap, "%s10%s", m < 0 ? MINUS : "", sup);
        return;
    }
    snprintf(num, sizeof num, "%.*f", decimals_for(step / pow(10, k)), m);
    char mant[64];
    with_minus(mant, sizeof mant, num);
    snprintf(buf, cap, "%s\xc3\x97" "10%s", mant, sup);   /* U+00D7 multiplication sign */
}

qn_axis qn_axis_choose(const float *v, size_t n, bool log_default, bool symmetric,
                       const qn_viz_opts *o)
{
    qn_axis a = { 0, 1, log_default, false, false };
    if (o->scale != QN_SCALE_AUTO) a.log = o->scale == QN_SCALE_LOG;
    if (symmetric) a.log = false;
    double lo = INFINITY, hi = -INFINITY, m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x) || (a.log && x <= 0)) continue;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        if (fabs(x) > m) m = fabs(x);
    }
    if (o->lo != o->hi && (!a.log || (o->lo > 0 && o->hi > 0))) {
        lo = fmin(o->lo, o->hi);
        hi = fmax(o->lo, o->hi);
        m = fmax(fabs(lo), fabs(hi));
    }
    if (symmetric) {
        if (!(m > 0)) m = 1;
        a.lo = -m;
        a.hi = m;
    } else if (a.log) {
        if (!(hi > 0)) { lo = 1e-3; hi = 1; }
        if (lo < hi * 1e-6 && o->lo == o->hi) lo = hi * 1e-6;
        if (!(lo < hi)) lo = hi / 10;
        a.lo = lo;
        a.hi = hi;
    } else {
        if (!(lo <= hi)) { lo = 0; hi = 1; }
        if (lo == hi) { double w = lo != 0 ? fabs(lo) / 2 : 0.5; lo -= w; hi += w; }
        a.lo = lo;
        a.hi = hi;
    }
    return a;
}

/* ---- figure, text, title ------------------------------------------------ */

double qn_fig_font_px(int w, const qn_viz_opts *o)
{
    if (o->font_px > 0) return o->font_px;
    double fs = w / 60.0;   /* 15 px at 900 wide, matplotlib's 10 pt at 100 dpi on 6.4 in */
    return fs < 11 ? 11 : fs > 17 ? 17 : fs;
}

qn_status qn_fig_init(qn_fig *f, qn_picture *out, qn_font *font, int w, int h,
                      const qn_viz_opts *o, qn_err *err)
{
    qn_status s = qn_raster_init(&out->image, w, h, qn_fig_paper, err);
    if (s != QN_OK) return s;
    *f = (qn_fig){ &out->image, font, qn_fig_font_px(w, o), o->no_color };
    return QN_OK;
}

int qn_fig_text_width(qn_fig *f, double px, const char *s)
{
    return qn_font_measure(f->font, px, s).width;
}

void qn_fig_text(qn_fig *f, int x, int y, double px, int align, const char *s, qn_rgb c)
{
    if (align >= 0) {
        int w = qn_fig_text_width(f, px, s);
        x -= align > 0 ? w : w / 2;
    }
    qn_font_draw(f->font, f->r, x, y, px, s, c);
}

void qn_fig_text_up(qn_fig *f, int x, int y, double px, const char *s, qn_rgb c)
{
    qn_font_draw_up(f->font, f->r, x, y + qn_fig_text_width(f, px, s) / 2, px, s, c);
}

/* px, made smaller when the text would be longer than len (down to 70%) */
static double fit_px(qn_fig *f, double px, const char *s, int len)
{
    int w = qn_fig_text_width(f, px, s);
    return w > len && w > 0 ? fmax(px * 0.7, px * len / w) : px;
}

int qn_fig_title_height(double fs)
{
    return (int)lround(fs * 4.1);
}

static int nonempty(const char *s) { return s && s[0]; }

int qn_fig_title(qn_fig *f, const char *kind, const qn_viz_title *t, const char *extra)
{
    double fs = f->fs;
    char line[512], bits[64];
    if (nonempty(t->layer)) snprintf(line, sizeof line, "%s: %s", kind, t->layer);
    else snprintf(line, sizeof line, "%s", kind);
    qn_fig_text(f, f->r->w / 2, (int)lround(fs * 1.9), fs * 1.3, 0, line, qn_fig_ink);

    const char *parts[4] = { t->model, t->method, NULL, extra };
    if (t->bits > 0) {
        snprintf(bits, sizeof bits, "%.3g bits/param", t->bits);
        parts[2] = bits;
    }
    size_t len = 0;
    line[0] = 0;
    for (int i = 0; i < 4; i++) {
        if (!nonempty(parts[i]) || len >= sizeof line) continue;
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s",
                                len ? "  \xc2\xb7  " : "", parts[i]);   /* middle dot */
    }
    if (len) qn_fig_text(f, f->r->w / 2, (int)lround(fs * 3.3), fs, 0, line, qn_fig_muted);
    return qn_fig_title_height(fs);
}

/* ---- axes ---------------------------------------------------------------- */

/* linear: the difference of neighbouring ticks; log: their ratio */
static double tick_step(const qn_axis *a, const double *ticks, int n)
{
    if (n < 2) return 0;
    return a->log ? ticks[1] / ticks[0] : ticks[1] - ticks[0];
}

static int max_ticks_for(int len, double spacing)
{
    int m = (int)(len / spacing);
    return m < 2 ? 2 : m;
}

static int x_of(qn_rect area, const qn_axis *a, double v)
{
    double t = qn_axis_frac(a, v);
    int x = area.x + (int)lround(t * area.w);
    return x > area.x + area.w - 1 ? area.x + area.w - 1 : x;
}

static int y_of(qn_rect area, const qn_axis *a, double v)
{
    double t = qn_axis_frac(a, v);
    if (!a->down) t = 1 - t;
    int y = area.y + (int)lround(t * area.h);
    return y > area.y + area.h - 1 ? area.y + area.h - 1 : y;
}

void qn_fig_xaxis(qn_fig *f, qn_rect area, const qn_axis *a, const char *label)
{
    double fs = f->fs, tfs = fs * 0.9;
    int tick = (int)lround(fs * 0.35), y0 = area.y + area.h;
    double ticks[QN_FIG_MAX_TICKS];
    char buf[64];
    int n = qn_axis_ticks(a, max_ticks_for(area.w, fs * 5), ticks);
    for (int i = 0; i < n; i++) {
        int x = x_of(area, a, ticks[i]);
        qn_raster_vline(f->r, x, y0, y0 + tick, qn_fig_ink);
        qn_axis_label(buf, sizeof buf, a, ticks[i], tick_step(a, ticks, n));
        qn_fig_text(f, x, y0 + tick + (int)lround(tfs * 1.1), tfs, 0, buf, qn_fig_ink);
    }
    if (nonempty(label))
        qn_fig_text(f, area.x + area.w / 2, y0 + tick + (int)lround(fs * 2.45), fs, 0, label,
                    qn_fig_ink);
}

int qn_fig_ytick_width(qn_fig *f, const qn_axis *a)
{
    double ticks[QN_FIG_MAX_TICKS];
    char buf[64];
    int n = qn_axis_ticks(a, QN_FIG_MAX_TICKS, ticks), w = 0;
    for (int i = 0; i < n; i++) {
        qn_axis_label(buf, sizeof buf, a, ticks[i], tick_step(a, ticks, n));
        int tw = qn_fig_text_width(f, f->fs * 0.9, buf);
        if (tw > w) w = tw;
    }
    return w;
}

void qn_fig_yaxis(qn_fig *f, qn_rect area, const qn_axis *a, const char *label)
{
    double fs = f->fs, tfs = fs * 0.9;
    int tick = (int)lround(fs * 0.35), gap = (int)lround(fs * 0.3);
    double ticks[QN_FIG_MAX_TICKS];
    char buf[64];
    int n = qn_axis_ticks(a, max_ticks_for(area.h, fs * 2.5), ticks), widest = 0;
    for (int i = 0; i < n; i++) {
        int y = y_of(area, a, ticks[i]);
        qn_raster_hline(f->r, area.x - 1 - tick, area.x - 1, y, qn_fig_ink);
        qn_axis_label(buf, sizeof buf, a, ticks[i], tick_step(a, ticks, n));
        int tw = qn_fig_text_width(f, tfs, buf);
        if (tw > widest) widest = tw;
        qn_fig_text(f, area.x - 1 - tick - gap, y + (int)lround(tfs * 0.36), tfs, 1, buf,
                    qn_fig_ink);
    }
    if (nonempty(label)) {
        /* turned text lies left of its baseline but descenders reach right of it */
        double px = fit_px(f, fs, label, area.h + (int)(fs * 2));
        int descent = qn_font_measure(f->font, px, label).descent;
        qn_fig_text_up(f, area.x - 1 - tick - 2 * gap - widest - descent, area.y + area.h / 2,
                       px, label, qn_fig_ink);
    }
}

int qn_fig_colorbar_width(qn_fig *f, const qn_axis *a)
{
    double fs = f->fs;
    return (int)lround(fs * 1.1 + fs * 0.35 + fs * 0.3 + fs * 0.5 + fs * 1.3) +
           qn_fig_ytick_width(f, a);
}

void qn_fig_colorbar(qn_fig *f, qn_rect bar, qn_colormap cm, double t_top, const qn_axis *a,
                     const char *label)
{
    double fs = f->fs, tfs = fs * 0.9;
    int tick = (int)lround(fs * 0.35), gap = (int)lround(fs * 0.3);
    for (int y = 0; y < bar.h; y++) {
        double t = (1 - (y + 0.5) / bar.h) * t_top;
        qn_raster_fill(f->r, (qn_rect){ bar.x, bar.y + y, bar.w, 1 }, qn_colormap_at(cm, t));
    }
    qn_raster_frame(f->r, bar, qn_fig_ink);
    double ticks[QN_FIG_MAX_TICKS];
    char buf[64];
    int n = qn_axis_ticks(a, max_ticks_for(bar.h, fs * 2.5), ticks), widest = 0;
    int x0 = bar.x + bar.w;
    for (int i = 0; i < n; i++) {
        int y = y_of(bar, a, ticks[i]);
        qn_raster_hline(f->r, x0, x0 + tick - 1, y, qn_fig_ink);
        qn_axis_label(buf, sizeof buf, a, ticks[i], tick_step(a, ticks, n));
        int tw = qn_fig_text_width(f, tfs, buf);
        if (tw > widest) widest = tw;
        qn_fig_text(f, x0 + tick + gap, y + (int)lround(tfs * 0.36), tfs, -1, buf, qn_fig_ink);
    }
    if (nonempty(label)) {
        double px = fit_px(f, fs, label, bar.h + (int)(fs * 2));
        qn_text_size ts = qn_font_measure(f->font, px, label);
        qn_fig_text_up(f, x0 + tick + 2 * gap + widest + (int)lround(fs * 0.2) + ts.ascent,
                       bar.y + bar.h / 2, px, label, qn_fig_ink);
    }
}

/* ---- heatmap panels ----------------------------------------------------- */

void qn_fig_fit_panel(size_t rows, size_t cols, int max_w, int max_h, int *w, int *h)
{
    double aspect = rows && cols ? (double)cols / (double)rows : 1;   /* width / height */
    if (aspect > 4) aspect = 4;
    if (aspect < 0.25) aspect = 0.25;
    double pw = max_w, ph = max_w / aspect;
    if (ph > max_h) { ph = max_h; pw = max_h * aspect; }
    int iw = (int)pw, ih = (int)ph;
    if (cols && cols <= (size_t)iw) iw = (int)(cols * (size_t)(iw / (int)cols));
    if (rows && rows <= (size_t)ih) ih = (int)(rows * (size_t)(ih / (int)rows));
    *w = iw < 1 ? 1 : iw;
    *h = ih < 1 ? 1 : ih;
}

qn_status qn_fig_reduce(qn_fig_grid *g, const float *v, size_t rows, size_t cols,
                        qn_reduce_op op, int w, int h, qn_err *err)
{
    g->rows = qn_reduce_dim(rows, (size_t)h);
    g->cols = qn_reduce_dim(cols, (size_t)w);
    size_t n = g->rows * g->cols;
    g->v = malloc((n ? n : 1) * sizeof *g->v);
    if (!g->v)
        return qn_err_set(err, QN_ERR_NOMEM, "plot: out of memory reducing %zux%zu to %zux%zu",
                          rows, cols, g->rows, g->cols);
    qn_reduce(v, rows, cols, op, g->v, g->rows, g->cols);
    return QN_OK;
}

void qn_fig_grid_free(qn_fig_grid *g)
{
    free(g->v);
    g->v = NULL;
}

void qn_fig_grid_draw(qn_raster *r, qn_rect area, const qn_fig_grid *g, qn_colormap cm,
                      const qn_axis *a)
{
    if (!g->rows || !g->cols) { qn_raster_fill(r, area, qn_fig_nodata); return; }
    for (int y = 0; y < area.h; y++) {
        size_t i = (size_t)y * g->rows / (size_t)area.h;
        for (int x = 0; x < area.w; x++) {
            size_t j = (size_t)x * g->cols / (size_t)area.w;
            qn_raster_set(r, area.x + x, area.y + y, qn_axis_color(a, cm, g->v[i * g->cols + j]));
        }
    }
}

qn_status qn_viz_heatmap(qn_picture *out, const float *v, size_t rows, size_t cols,
                         int w, int h, const qn_heat_style *style, qn_err *err)
{
    memset(out, 0, sizeof *out);
    qn_fig_grid g = { 0 };
    qn_status s = qn_raster_init(&out->image, w, h, qn_fig_paper, err);
    if (s != QN_OK) goto fail;
    if ((s = qn_fig_reduce(&g, v, rows, cols, style->op, w, h, err)) != QN_OK) goto fail;
    qn_viz_opts o = { .scale = style->scale, .lo = style->lo, .hi = style->hi };
    qn_axis a = qn_axis_choose(g.v, g.rows * g.cols, false,
                               style->cmap == QN_CMAP_COOLWARM, &o);
    qn_fig_grid_draw(&out->image, (qn_rect){ 0, 0, w, h }, &g, style->cmap, &a);
    out->map = (qn_rect){ 0, 0, w, h };
    out->lo = a.lo;
    out->hi = a.hi;
    out->log = a.log;
    qn_fig_grid_free(&g);
    return QN_OK;
fail:
    qn_fig_grid_free(&g);
    qn_picture_done(out);
    return s;
}
