/* test_font.c: finding the font (default folders, QN_FONT, clear failures),
   measuring, drawing upright and turned text. */
#include "viz/font.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static const qn_rgb white = { 255, 255, 255 }, black = { 0, 0, 0 };

static qn_font *open_default(void)
{
    qn_font *f = NULL;
    qn_err err = { 0 };
    unsetenv("QN_FONT");
    cr_assert_eq(qn_font_open(&f, NULL, &err), QN_OK, "%s", err.msg);
    return f;
}

/* bounding box of the non-white pixels; false when there are none */
static int ink_box(const qn_raster *r, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = r->w; *y0 = r->h; *x1 = -1; *y1 = -1;
    for (int y = 0; y < r->h; y++)
        for (int x = 0; x < r->w; x++) {
            qn_rgb c = qn_raster_get(r, x, y);
            if (c.r == 255 && c.g == 255 && c.b == 255) continue;
            if (x < *x0) *x0 = x;
            if (x > *x1) *x1 = x;
            if (y < *y0) *y0 = y;
            if (y > *y1) *y1 = y;
        }
    return *x1 >= 0;
}

Test(font, finds_dejavu_and_measures)
{
    qn_font *f = open_default();
    cr_assert_not_null(strstr(qn_font_path(f), "DejaVuSans"), "%s", qn_font_path(f));
    qn_text_size a = qn_font_measure(f, 16, "ab"), b = qn_font_measure(f, 16, "abab");
    qn_text_size c = qn_font_measure(f, 32, "ab"), e = qn_font_measure(f, 16, "");
    cr_assert(a.width > 8 && b.width > a.width * 3 / 2, "widths %d, %d", a.width, b.width);
    cr_assert(c.width > a.width * 3 / 2, "size doubles the width: %d vs %d", c.width, a.width);
    cr_assert(a.ascent >= 12 && a.ascent <= 17 && a.descent >= 2 && a.descent <= 6,
              "DejaVu at 16 px: ascent %d, descent %d", a.ascent, a.descent);
    cr_assert_eq(e.width, 0);
    cr_assert_eq(qn_font_check(f, NULL), QN_OK);
    qn_font_close(f);
    qn_font_close(NULL);
}

Test(font, draws_upright_and_turned_where_asked)
{
    qn_font *f = open_default();
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 200, 200, white, NULL), QN_OK);
    qn_font_draw(f, &r, 20, 50, 20, "Hello", black);
    int x0, y0, x1, y1;
    cr_assert(ink_box(&r, &x0, &y0, &x1, &y1), "nothing drawn");
    int w = qn_font_measure(f, 20, "Hello").width;
    cr_assert(x0 >= 19 && x0 <= 23 && x1 <= 20 + w + 1, "x range %d..%d, advance %d", x0, x1, w);
    cr_assert(y1 <= 50 && y0 >= 50 - 17, "cap height above the baseline: rows %d..%d", y0, y1);

    qn_raster_fill(&r, (qn_rect){ 0, 0, 200, 200 }, white);
    qn_font_draw_up(f, &r, 100, 150, 20, "Hello", black);
    cr_assert(ink_box(&r, &x0, &y0, &x1, &y1));
    cr_assert(y1 - y0 > 2 * (x1 - x0), "turned text is tall: %dx%d", x1 - x0, y1 - y0);
    cr_assert(y1 <= 151 && y0 >= 150 - w - 1 && x1 <= 100, "turned box (%d,%d)-(%d,%d)", x0, y0,
              x1, y1);
    qn_raster_done(&r);
    qn_font_close(f);
}

Test(font, utf8_text_and_clipping_are_safe)
{
    qn_font *f = open_default();
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 30, 10, white, NULL), QN_OK);
    qn_font_draw(f, &r, -15, 5, 30, "10\xe2\x81\xbb\xc2\xb3 \xe2\x88\x92 \xff\xfe broken", black);
    qn_font_draw_up(f, &r, 2, 100, 30, "\xc3\x97\xe2\x80\x96", black);
    cr_assert_eq(qn_font_check(f, NULL), QN_OK);
    qn_raster_done(&r);
    qn_font_close(f);
}

Test(font, missing_or_bad_font_file_is_a_clear_error)
{
    char dir[256], path[512];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/nope.ttf", dir);
    qn_font *f = (qn_font *)1;
    qn_err err = { 0 };
    cr_assert_eq(qn_font_open(&f, path, &err), QN_ERR_IO);
    cr_assert_null(f);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);

    setenv("QN_FONT", path, 1);
    cr_assert_eq(qn_font_open(&f, NULL, &err), QN_ERR_IO, "QN_FONT is honoured");
    cr_assert_not_null(strstr(err.msg, "nope.ttf"), "%s", err.msg);

    snprintf(path, sizeof path, "%s/text.ttf", dir);
    ts_write_file(path, "not a font at all", 17);
    setenv("QN_FONT", path, 1);
    cr_assert_eq(qn_font_open(&f, NULL, &err), QN_ERR_FORMAT);
    cr_assert_not_null(strstr(err.msg, "text.ttf"), "%s", err.msg);
    unsetenv("QN_FONT");
    ts_rmtree(dir);
}
