/* test_cells.c: rasters to terminal cells (half blocks in three colour depths,
   the ASCII ramp) and cells to ANSI text. */
#include "viz/cells.h"

#include <criterion/criterion.h>
#include <string.h>

static const qn_rgb red = { 255, 0, 0 }, blue = { 0, 0, 255 }, black = { 0, 0, 0 },
                    white = { 255, 255, 255 };

/* w x 2h raster: top half of each cell red, bottom blue */
static qn_raster stripes(int w, int h)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, w, 2 * h, blue, NULL), QN_OK);
    for (int y = 0; y < 2 * h; y += 2) qn_raster_fill(&r, (qn_rect){ 0, y, w, 1 }, red);
    return r;
}

Test(cells, truecolor_half_blocks_carry_two_pixels)
{
    qn_raster r = stripes(6, 3);
    qn_cellgrid g = { 0 };
    qn_err err = { 0 };
    cr_assert_eq(qn_cells_from_raster(&g, &r, 6, 3, QN_CELLS_TRUECOLOR, true, &err), QN_OK,
                 "%s", err.msg);
    cr_assert(g.w == 6 && g.h == 3);
    for (int i = 0; i < 18; i++) {
        const qn_cell *c = &g.cells[i];
        cr_assert_str_eq(c->glyph, "\xe2\x96\x80");
        cr_assert(c->fg.kind == QN_COLOR_RGB && c->fg.rgb.r == 255 && c->fg.rgb.b == 0);
        cr_assert(c->bg.kind == QN_COLOR_RGB && c->bg.rgb.b == 255 && c->bg.rgb.r == 0);
    }
    char *txt = NULL;
    size_t len = 0;
    cr_assert_eq(qn_cells_to_ansi(&g, &txt, &len, &err), QN_OK);
    cr_assert_eq(strlen(txt), len);
    cr_assert_not_null(strstr(txt, "\x1b[38;2;255;0;0;48;2;0;0;255m\xe2\x96\x80"), "%s", txt);
    int lines = 0;
    for (const char *p = txt; (p = strstr(p, "\x1b[0m\n")); p++) lines++;
    cr_assert_eq(lines, 3, "each row ends with a reset and a newline");
    /* colours are set once per run of equal cells */
    int sgrs = 0;
    for (const char *p = txt; (p = strstr(p, "38;2;")); p++) sgrs++;
    cr_assert_eq(sgrs, 3);
    free(txt);
    qn_cellgrid_done(&g);
    qn_raster_done(&r);
}

Test(cells, palettes_256_and_8)
{
    cr_assert_eq(qn_rgb_to_xterm256(red), 196);
    cr_assert_eq(qn_rgb_to_xterm256(black), 16);
    cr_assert_eq(qn_rgb_to_xterm256((qn_rgb){ 128, 128, 128 }), 244);
    cr_assert_eq(qn_rgb_to_xterm256((qn_rgb){ 0, 95, 135 }), 16 + 0 * 36 + 1 * 6 + 2);
    cr_assert_eq(qn_rgb_to_ansi8(red), 1);
    cr_assert_eq(qn_rgb_to_ansi8(blue), 4);
    cr_assert_eq(qn_rgb_to_ansi8(white), 7);
    cr_assert_eq(qn_rgb_to_ansi8((qn_rgb){ 20, 10, 10 }), 0);

    qn_raster r = stripes(2, 1);
    qn_cellgrid g = { 0 };
    char *txt = NULL;
    size_t len;
    cr_assert_eq(qn_cells_from_raster(&g, &r, 2, 1, QN_CELLS_256, true, NULL), QN_OK);
    cr_assert(g.cells[0].fg.kind == QN_COLOR_INDEX && g.cells[0].fg.index == 196);
    cr_assert_eq(qn_cells_to_ansi(&g, &txt, &len, NULL), QN_OK);
    cr_assert_not_null(strstr(txt, "\x1b[38;5;196;48;5;21m"), "%s", txt);
    free(txt);
    cr_assert_eq(qn_cells_from_raster(&g, &r, 2, 1, QN_CELLS_8, true, NULL), QN_OK);
    cr_assert(g.cells[1].fg.index == 1 && g.cells[1].bg.index == 4);
    cr_assert_eq(qn_cells_to_ansi(&g, &txt, &len, NULL), QN_OK);
    cr_assert_not_null(strstr(txt, "\x1b[31;44m"), "%s", txt);
    free(txt);
    qn_cellgrid_done(&g);
    qn_raster_done(&r);
}

Test(cells, ascii_ramp_without_colour_or_utf8)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 10, 4, black, NULL), QN_OK);
    qn_raster_fill(&r, (qn_rect){ 5, 0, 5, 4 }, white);
    qn_cellgrid g = { 0 };
    cr_assert_eq(qn_cells_from_raster(&g, &r, 2, 1, QN_CELLS_MONO, true, NULL), QN_OK);
    cr_assert_str_eq(g.cells[0].glyph, " ");
    cr_assert_str_eq(g.cells[1].glyph, "@");
    char *txt = NULL;
    size_t len;
    cr_assert_eq(qn_cells_to_ansi(&g, &txt, &len, NULL), QN_OK);
    cr_assert_str_eq(txt, " @\n", "mono text has no escape codes");
    free(txt);
    /* colour but no UTF-8: ramp characters, coloured */
    cr_assert_eq(qn_cells_from_raster(&g, &r, 2, 1, QN_CELLS_256, false, NULL), QN_OK);
    cr_assert_str_eq(g.cells[1].glyph, "@");
    cr_assert(g.cells[1].fg.kind == QN_COLOR_INDEX && g.cells[1].fg.index == 231);
    /* downscale averages: a 2x2 checkerboard per cell is mid grey */
    qn_raster_fill(&r, (qn_rect){ 0, 0, 10, 4 }, black);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 10; x++)
            if ((x + y) % 2) qn_raster_set(&r, x, y, white);
    cr_assert_eq(qn_cells_from_raster(&g, &r, 5, 1, QN_CELLS_TRUECOLOR, true, NULL), QN_OK);
    cr_assert(g.cells[0].fg.rgb.r >= 127 && g.cells[0].fg.rgb.r <= 128, "%d",
              g.cells[0].fg.rgb.r);
    qn_cellgrid_done(&g);
    qn_raster_done(&r);
}
