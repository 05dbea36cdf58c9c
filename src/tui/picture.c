/* picture.c: heatmaps as cells and column charts (see picture.h). */
#include "tui/picture.h"

#include <math.h>
#include <stdlib.h>

#include "tui/widgets.h"
#include "viz/plot.h"

qn_status qn_picture_cells(qn_cellgrid *out, const float *v, size_t rows, size_t cols, qn_pic_kind kind, int w,
                           int h, const qn_theme *t, qn_err *err)
{
    if (w < 1 || h < 1) return qn_err_set(err, QN_ERR_ARG, "picture: no room");
    qn_heat_style st = { .cmap = QN_CMAP_MAGMA, .scale = QN_SCALE_LOG, .op = QN_REDUCE_MAX };
    if (kind == QN_PIC_WEIGHTS) st = (qn_heat_style){ .cmap = QN_CMAP_COOLWARM, .scale = QN_SCALE_LINEAR,
                                                      .op = QN_REDUCE_MEAN };
    else if (kind == QN_PIC_OUTLIERS) st = (qn_heat_style){ .cmap = QN_CMAP_VIRIDIS, .scale = QN_SCALE_LINEAR,
                                                            .op = QN_REDUCE_MAX, .lo = 0, .hi = 1 };
    st.cmap = qn_colormap_pick(st.cmap, !t->color);
    int ph = t->half_blocks ? 2 * h : h;
    qn_picture pic = { 0 };
    qn_status s = qn_viz_heatmap(&pic, v, rows, cols, w, ph, &st, err);
    if (!s) s = qn_cells_from_raster(out, &pic.image, w, h, t->cells, t->half_blocks, err);
    qn_picture_done(&pic);
    return s;
}

void qn_picture_columns(const qn_theme *t, int y, int x, int h, int w, const float *v, size_t n, bool log_scale)
{
    if (w < 1 || h < 1 || n == 0) return;
    double *col = malloc((size_t)w * sizeof *col);
    if (!col) return;
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < w; c++) {
        size_t a = (size_t)c * n / (size_t)w, b = (size_t)(c + 1) * n / (size_t)w;
        if (b <= a) b = a + 1;
        double m = -INFINITY;
        for (size_t i = a; i < b && i < n; i++) m = fmax(m, v[i]);
        col[c] = log_scale ? (m > 0 ? log10(m) : NAN) : m;
        if (isfinite(col[c])) { lo = fmin(lo, col[c]); hi = fmax(hi, col[c]); }
    }
    if (log_scale && isfinite(lo)) lo -= hi > lo ? 0.08 * (hi - lo) : 1.0;   /* the smallest still shows */
    else if (!log_scale) lo = fmin(lo, 0);
    attrset(qn_theme_attr(t, QN_TH_BAR));
    for (int c = 0; c < w; c++) {
        if (!isfinite(col[c]) || !(hi > lo)) continue;
        int eighths = (int)lround((col[c] - lo) / (hi - lo) * h * 8);
        for (int r = 0; r < h; r++) {
            int e = eighths - r * 8;
            if (e <= 0) break;
            const char *g;
            if (!t->utf8) g = e >= 8 ? "#" : e >= 4 ? "=" : "_";
            else {
                static const char *const up[] = { " ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
                g = up[e > 8 ? 8 : e];
            }
            if (!t->color) {              /* reverse video: a space is a solid cell */
                if (e < 4) break;
                g = " ";
            }
            mvaddstr(y + h - 1 - r, x + c, g);
        }
    }
    attrset(A_NORMAL);
    free(col);
}
