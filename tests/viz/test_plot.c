/* test_plot.c: the pictures, checked on matrices built to test them: a ramp maps
   to the colormap's two ends, a single outlier (weight error or SpQR outlier) stays
   visible at every picture size, whole outlier rows show in map and marginal,
   NaN cells are "no data", NO_COLOR pictures hold only greys, bad shapes and
   sizes are errors naming the picture. Positions come from qn_picture.map. */
#include "viz/plot.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static qn_font *g_font;

static void open_font(void)
{
    qn_err err = { 0 };
    unsetenv("QN_FONT");
    cr_assert_eq(qn_font_open(&g_font, NULL, &err), QN_OK, "%s", err.msg);
}

static void close_font(void) { qn_font_close(g_font); }

TestSuite(plot, .init = open_font, .fini = close_font);

static int same(qn_rgb a, qn_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

static size_t count_color(const qn_raster *r, qn_rect box, qn_rgb c)
{
    size_t n = 0;
    for (int y = box.y; y < box.y + box.h; y++)
        for (int x = box.x; x < box.x + box.w; x++) n += same(qn_raster_get(r, x, y), c);
    return n;
}

static void expect_color(const qn_picture *p, int x, int y, qn_rgb want, const char *what)
{
    qn_rgb c = qn_raster_get(&p->image, x, y);
    cr_assert(same(c, want), "%s: pixel (%d,%d) is (%d,%d,%d), expected (%d,%d,%d)", what, x, y,
              c.r, c.g, c.b, want.r, want.g, want.b);
}

/* rows x cols, value running from lo at column 0 to hi at the last column */
static float *ramp(size_t rows, size_t cols, float lo, float hi)
{
    float *m = malloc(rows * cols * sizeof *m);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            m[r * cols + c] = lo + (hi - lo) * (float)c / (float)(cols - 1);
    return m;
}

Test(plot, weights_ramp_maps_to_the_diverging_ends)
{
    const size_t sizes[][2] = { { 16, 33 }, { 300, 700 }, { 2000, 5001 } };
    for (size_t i = 0; i < 3; i++) {
        size_t rows = sizes[i][0], cols = sizes[i][1];
        float *W = ramp(rows, cols, -0.3f, 0.3f);
        qn_picture p;
        qn_err err = { 0 };
        qn_viz_opts o = { .title = { "m", "block 0 q_proj", "SpQR", 3.1 } };
        cr_assert_eq(qn_viz_weights(&p, g_font, W, rows, cols, &o, &err), QN_OK, "%s", err.msg);
        qn_rect m = p.map;
        cr_assert(p.lo < 0 && p.hi == -p.lo, "symmetric range, found %g..%g", p.lo, p.hi);
        for (int y = m.y; y < m.y + m.h; y += m.h / 7 + 1) {
            expect_color(&p, m.x, y, qn_colormap_entry(QN_CMAP_COOLWARM, 0), "left edge");
            expect_color(&p, m.x + m.w - 1, y, qn_colormap_entry(QN_CMAP_COOLWARM, 255),
                         "right edge");
        }
        qn_picture_done(&p);
        free(W);
    }
}

Test(plot, error_ramp_maps_to_the_sequential_ends)
{
    float *E = ramp(50, 400, 0, 2);
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { .scale = QN_SCALE_LINEAR };
    cr_assert_eq(qn_viz_error(&p, g_font, E, 50, 400, &o, &err), QN_OK, "%s", err.msg);
    cr_assert(!p.log && p.lo == 0 && p.hi == 2, "range %g..%g", p.lo, p.hi);
    expect_color(&p, p.map.x, p.map.y + 3, qn_colormap_entry(QN_CMAP_MAGMA, 0), "zero");
    expect_color(&p, p.map.x + p.map.w - 1, p.map.y + 3, qn_colormap_entry(QN_CMAP_MAGMA, 255),
                 "max");
    qn_picture_done(&p);
    /* by default squared errors over many decades get a log scale */
    for (size_t i = 0; i < 50 * 400; i++) E[i] = powf(10, -8 + 8 * (float)(i % 400) / 399);
    o.scale = QN_SCALE_AUTO;
    cr_assert_eq(qn_viz_error(&p, g_font, E, 50, 400, &o, &err), QN_OK, "%s", err.msg);
    cr_assert(p.log, "log scale expected for 8 decades");
    expect_color(&p, p.map.x + p.map.w - 1, p.map.y, qn_colormap_entry(QN_CMAP_MAGMA, 255), "max");
    qn_picture_done(&p);
    free(E);
}

Test(plot, single_error_outlier_survives_every_picture_size)
{
    const size_t rows = 3000, cols = 4000;
    float *E = calloc(rows * cols, sizeof *E);
    for (size_t i = 0; i < rows * cols; i++) E[i] = 1e-6f * (float)(i % 7 + 1);
    E[1234 * cols + 3210] = 1;
    qn_rgb top = qn_colormap_entry(QN_CMAP_MAGMA, 255);
    for (int w = 200; w <= 1800; w += 229) {
        qn_picture p;
        qn_err err = { 0 };
        qn_viz_opts o = { .width = w };
        cr_assert_eq(qn_viz_error(&p, g_font, E, rows, cols, &o, &err), QN_OK, "%s", err.msg);
        size_t n = count_color(&p.image, p.map, top);
        cr_assert(n >= 1, "width %d: the outlier vanished from a %dx%d map", w, p.map.w, p.map.h);
        qn_picture_done(&p);
    }
    free(E);
}

Test(plot, single_spqr_outlier_visible_at_every_size)
{
    const size_t rows = 4096, cols = 4096, r0 = 4000, c0 = 77;
    uint8_t *mask = calloc(rows * cols, 1);
    mask[r0 * cols + c0] = 1;
    for (int w = 180; w <= 2000; w += 163) {
        qn_picture p;
        qn_err err = { 0 };
        qn_viz_opts o = { .width = w, .no_color = true };
        cr_assert_eq(qn_viz_outliers(&p, g_font, mask, rows, cols, &o, &err), QN_OK, "%s",
                     err.msg);
        qn_rect m = p.map;
        size_t n = count_color(&p.image, (qn_rect){ m.x, m.y, m.w, m.h }, (qn_rgb){ 0, 0, 0 });
        cr_assert(n >= 1, "width %d: the outlier vanished from a %dx%d map", w, m.w, m.h);
        /* and it is where it belongs, within a pixel */
        int ex = m.x + (int)(c0 * (size_t)m.w / cols), ey = m.y + (int)(r0 * (size_t)m.h / rows);
        size_t near = count_color(&p.image, (qn_rect){ ex - 1, ey - 1, 3, 3 }, (qn_rgb){ 0, 0, 0 });
        cr_assert(near >= 1, "width %d: outlier not near (%d,%d)", w, ex, ey);
        qn_picture_done(&p);
    }
    free(mask);
}

Test(plot, whole_outlier_rows_and_columns_show_in_map_and_marginals)
{
    const size_t rows = 1500, cols = 2500, r0 = 700, c0 = 1999;
    uint8_t *mask = calloc(rows * cols, 1);
    for (size_t c = 0; c < cols; c++) mask[r0 * cols + c] = 1;
    for (size_t r = 0; r < rows; r++) mask[r * cols + c0] = 1;
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { .width = 700 };
    cr_assert_eq(qn_viz_outliers(&p, g_font, mask, rows, cols, &o, &err), QN_OK, "%s", err.msg);
    qn_rect m = p.map;
    qn_rgb dot = qn_raster_get(&p.image, m.x + (int)(c0 * (size_t)m.w / cols), m.y);
    cr_assert(!same(dot, (qn_rgb){ 255, 255, 255 }), "the outlier column is marked");
    int ry = m.y + (int)(r0 * (size_t)m.h / rows);
    cr_assert_eq(count_color(&p.image, (qn_rect){ m.x, ry, m.w, 1 }, dot), (size_t)m.w,
                 "the whole outlier row is marked");
    int cx = m.x + (int)(c0 * (size_t)m.w / cols);
    cr_assert_eq(count_color(&p.image, (qn_rect){ cx, m.y, 1, m.h }, dot), (size_t)m.h,
                 "the whole outlier column is marked");
    /* the row marginal's longest bar is on the outlier row, the column marginal's
       tallest on the outlier column: the far ends of the marginals are marked there */
    int right_x = -1;
    for (int x = p.image.w - 1; x > m.x + m.w; x--) {
        qn_rgb c = qn_raster_get(&p.image, x, ry);
        if (!same(c, (qn_rgb){ 255, 255, 255 })) { right_x = x; break; }
    }
    cr_assert(right_x > m.x + m.w + 20, "row marginal bar reaches x=%d", right_x);
    cr_assert(same(qn_raster_get(&p.image, right_x, ry + 5), (qn_rgb){ 255, 255, 255 }),
              "only the outlier row has a long bar");
    /* above the map: a white gap, then the column marginal's bar, full height */
    int y = m.y - 2, bar = 0;
    while (y > 0 && same(qn_raster_get(&p.image, cx, y), (qn_rgb){ 255, 255, 255 })) y--;
    y--;   /* the marginal's baseline */
    qn_rgb bar_color = qn_raster_get(&p.image, cx, y);
    while (y > 0 && same(qn_raster_get(&p.image, cx, y), bar_color)) y--, bar++;
    cr_assert(bar > 20, "column marginal bar over the outlier column is %d px tall", bar);
    qn_picture_done(&p);
    free(mask);
}

static void expect_only_greys(const qn_picture *p, const char *what)
{
    for (int y = 0; y < p->image.h; y++)
        for (int x = 0; x < p->image.w; x++) {
            qn_rgb c = qn_raster_get(&p->image, x, y);
            cr_assert(c.r == c.g && c.g == c.b, "%s: (%d,%d) is (%d,%d,%d) under NO_COLOR", what,
                      x, y, c.r, c.g, c.b);
        }
}

Test(plot, no_color_pictures_are_grey)
{
    float *W = ramp(40, 60, -1, 1);
    uint8_t mask[40 * 60] = { 0 };
    mask[5] = mask[400] = 1;
    double rel[2 * 7], loss[3 * 4];
    for (int i = 0; i < 14; i++) rel[i] = 0.01 * (i + 1);
    rel[3] = NAN;
    for (int i = 0; i < 12; i++) loss[i] = 1.0 / (i % 4 + 1) + i / 4;
    const float *diag[2] = { W, W + 60 };
    size_t d[2] = { 60, 30 };
    qn_viz_opts o = { .no_color = true, .title = { "m", "l", "x", 2 } };
    qn_picture p;
    qn_err err = { 0 };
    cr_assert_eq(qn_viz_weights(&p, g_font, W, 40, 60, &o, &err), QN_OK, "%s", err.msg);
    expect_only_greys(&p, "weights");
    qn_picture_done(&p);
    cr_assert_eq(qn_viz_outliers(&p, g_font, mask, 40, 60, &o, &err), QN_OK, "%s", err.msg);
    expect_only_greys(&p, "outliers");
    qn_picture_done(&p);
    cr_assert_eq(qn_viz_overview(&p, g_font, rel, rel, 2, &o, &err), QN_OK, "%s", err.msg);
    expect_only_greys(&p, "overview");
    qn_picture_done(&p);
    cr_assert_eq(qn_viz_convergence(&p, g_font, loss, 3, 4, NULL, &o, &err), QN_OK, "%s", err.msg);
    expect_only_greys(&p, "convergence");
    qn_picture_done(&p);
    cr_assert_eq(qn_viz_hessian(&p, g_font, diag, d, 2, NULL, &o, &err), QN_OK, "%s", err.msg);
    expect_only_greys(&p, "hessian");
    qn_picture_done(&p);
    free(W);
}

Test(plot, overview_cells_follow_the_error_and_carry_text)
{
    double rel[3 * 7];
    for (int i = 0; i < 21; i++) rel[i] = 0.05;
    rel[0] = 0.01;   /* lowest: the colormap's bottom */
    rel[20] = 0.2;   /* highest: its top */
    rel[10] = NAN;
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { .scale = QN_SCALE_LINEAR };
    cr_assert_eq(qn_viz_overview(&p, g_font, rel, NULL, 3, &o, &err), QN_OK, "%s", err.msg);
    qn_rect m = p.map;
    int cw = m.w / 7, ch = m.h / 3;
    expect_color(&p, m.x + 2, m.y + 2, qn_colormap_entry(QN_CMAP_MAGMA, 0), "lowest error");
    expect_color(&p, m.x + 6 * cw + 2, m.y + 2 * ch + 2, qn_colormap_entry(QN_CMAP_MAGMA, 255),
                 "highest error");
    expect_color(&p, m.x + 3 * cw + 2, m.y + ch + 2, (qn_rgb){ 224, 224, 224 }, "not quantized");
    /* the value is written in the cell: light text pixels on the dark lowest cell */
    size_t text = 0;
    for (int y = m.y + 3; y < m.y + ch - 3; y++)
        for (int x = m.x + 3; x < m.x + cw - 3; x++) text += qn_raster_get(&p.image, x, y).r > 128;
    cr_assert(text > 20, "no text in the first cell (%zu light pixels)", text);
    qn_picture_done(&p);
}

Test(plot, hessian_marks_missing_channels_and_uses_a_log_scale)
{
    float a[100], b[40];
    for (int i = 0; i < 100; i++) a[i] = powf(10, (float)(i % 5) - 2);
    for (int i = 0; i < 40; i++) b[i] = 1;
    const float *diag[2] = { a, b };
    size_t d[2] = { 100, 40 };
    const char *names[2] = { "q_proj", "down_proj" };
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { 0 };
    cr_assert_eq(qn_viz_hessian(&p, g_font, diag, d, 2, names, &o, &err), QN_OK, "%s", err.msg);
    cr_assert(p.log && fabs(p.hi - 100) < 1e-3 && fabs(p.lo - 0.01) < 1e-6, "%g..%g", p.lo, p.hi);
    qn_rect m = p.map;
    expect_color(&p, m.x + m.w - 2, m.y + m.h - 2, (qn_rgb){ 224, 224, 224 },
                 "channels past the second layer's 40");
    qn_picture_done(&p);
}

Test(plot, convergence_and_codebook_render)
{
    double loss[2 * 5] = { 1, 0.5, 0.3, 0.2, NAN, 2, 1, 0.8, 0.7, 0.65 };
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { .width = 640, .height = 400 };
    cr_assert_eq(qn_viz_convergence(&p, g_font, loss, 2, 5, NULL, &o, &err), QN_OK, "%s", err.msg);
    cr_assert(p.image.w == 640 && p.image.h == 400);
    size_t plain = count_color(&p.image, p.map, (qn_rgb){ 255, 255, 255 });
    cr_assert(plain < (size_t)p.map.w * (size_t)p.map.h, "lines drawn in the plot area");
    qn_picture_done(&p);

    const size_t M = 2, K = 64, g = 4;
    float cw[2 * 64 * 4];
    uint32_t use[2 * 64];
    for (size_t i = 0; i < M * K; i++) {
        for (size_t j = 0; j < g; j++) cw[i * g + j] = (float)((i * 7 + j * 3) % 11) - 5;
        use[i] = (uint32_t)(i % 9 == 0 ? 0 : 1000 / (i % K + 1));
    }
    qn_viz_opts oc = { .title = { "m", "block 1 o_proj", "AQLM 2x6", 2.0 } };
    cr_assert_eq(qn_viz_codebook(&p, g_font, cw, use, M, K, g, &oc, &err), QN_OK, "%s", err.msg);
    cr_assert(p.log && p.hi > 1000);
    qn_picture_done(&p);
}

Test(plot, bare_heatmap_needs_no_font_and_fills_its_size)
{
    float *W = ramp(30, 90, -2, 2);
    qn_picture p;
    qn_err err = { 0 };
    qn_heat_style st = { QN_CMAP_COOLWARM, QN_SCALE_AUTO, QN_REDUCE_MEAN, 0, 0 };
    cr_assert_eq(qn_viz_heatmap(&p, W, 30, 90, 45, 20, &st, &err), QN_OK, "%s", err.msg);
    cr_assert(p.image.w == 45 && p.image.h == 20);
    expect_color(&p, 0, 10, qn_colormap_entry(QN_CMAP_COOLWARM, 0), "left");
    expect_color(&p, 44, 10, qn_colormap_entry(QN_CMAP_COOLWARM, 255), "right");
    qn_picture_done(&p);
    free(W);
}

Test(plot, bad_shapes_and_sizes_are_errors)
{
    float w[4] = { 0 };
    qn_picture p;
    qn_err err = { 0 };
    qn_viz_opts o = { 0 };
    cr_assert_eq(qn_viz_weights(&p, g_font, w, 0, 4, &o, &err), QN_ERR_SHAPE);
    cr_assert_not_null(strstr(err.msg, "Weights"), "%s", err.msg);
    cr_assert_null(p.image.px);
    qn_viz_opts tiny = { .width = 60 };
    cr_assert_eq(qn_viz_weights(&p, g_font, w, 2, 2, &tiny, &err), QN_ERR_ARG);
    cr_assert_null(p.image.px);
    cr_assert_eq(qn_viz_convergence(&p, g_font, NULL, 0, 3, NULL, &o, &err), QN_ERR_SHAPE);
    cr_assert_eq(qn_viz_codebook(&p, g_font, NULL, NULL, 1, 0, 8, &o, &err), QN_ERR_SHAPE);
    cr_assert_eq(qn_viz_overview(&p, g_font, NULL, NULL, 0, &o, &err), QN_ERR_SHAPE);
    qn_picture_done(&p);
}
