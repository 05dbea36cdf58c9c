/* test_raster.c: raster drawing clips to the image, lines and discs cover what
   they should, blits land where asked. */
#include "viz/raster.h"

#include <criterion/criterion.h>

static const qn_rgb white = { 255, 255, 255 }, red = { 255, 0, 0 }, blue = { 0, 0, 255 };

static int is(qn_rgb a, qn_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

Test(raster, init_fills_and_rejects_bad_sizes)
{
    qn_raster r;
    qn_err err = { 0 };
    cr_assert_eq(qn_raster_init(&r, 7, 5, red, &err), QN_OK, "%s", err.msg);
    cr_assert(r.w == 7 && r.h == 5);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++) cr_assert(is(qn_raster_get(&r, x, y), red));
    qn_raster_done(&r);
    cr_assert_null(r.px);
    cr_assert_eq(qn_raster_init(&r, 0, 5, red, &err), QN_ERR_ARG);
    cr_assert_null(r.px);
    qn_raster_done(&r);
}

Test(raster, drawing_outside_is_clipped)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 10, 10, white, NULL), QN_OK);
    qn_raster_set(&r, -1, 3, red);
    qn_raster_set(&r, 10, 3, red);
    qn_raster_fill(&r, (qn_rect){ -5, -5, 7, 7 }, red);   /* covers (0..1, 0..1) */
    qn_raster_line(&r, -20, -20, -10, -30, 3, blue);
    qn_raster_disc(&r, 100, 100, 5, blue);
    int n_red = 0;
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++) {
            n_red += is(qn_raster_get(&r, x, y), red);
            cr_assert(!is(qn_raster_get(&r, x, y), blue), "(%d,%d) painted from far away", x, y);
        }
    cr_assert_eq(n_red, 4);
    cr_assert(is(qn_raster_get(&r, -1, 0), (qn_rgb){ 0, 0, 0 }), "outside reads black");
    qn_raster_done(&r);
}

Test(raster, frame_line_disc_and_blit)
{
    qn_raster r, s;
    cr_assert_eq(qn_raster_init(&r, 40, 30, white, NULL), QN_OK);
    qn_raster_frame(&r, (qn_rect){ 2, 3, 10, 8 }, red);
    cr_assert(is(qn_raster_get(&r, 2, 3), red) && is(qn_raster_get(&r, 11, 10), red));
    cr_assert(is(qn_raster_get(&r, 5, 6), white), "a frame leaves its inside alone");

    qn_raster_line(&r, 20, 5, 35, 5, 1, blue);
    cr_assert(is(qn_raster_get(&r, 20, 5), blue) && is(qn_raster_get(&r, 35, 5), blue) &&
              is(qn_raster_get(&r, 27, 5), blue), "a 1-px horizontal line covers its pixels");
    cr_assert(is(qn_raster_get(&r, 27, 7), white));

    qn_raster_disc(&r, 25, 20, 3, red);
    cr_assert(is(qn_raster_get(&r, 25, 20), red) && is(qn_raster_get(&r, 27, 20), red));
    cr_assert(is(qn_raster_get(&r, 25, 25), white));

    cr_assert_eq(qn_raster_init(&s, 4, 4, blue, NULL), QN_OK);
    qn_raster_blit(&r, &s, 38, 28);   /* only 2 x 2 land */
    cr_assert(is(qn_raster_get(&r, 39, 29), blue) && is(qn_raster_get(&r, 38, 28), blue));
    cr_assert(is(qn_raster_get(&r, 37, 27), white));
    qn_raster_blend(&r, 0, 0, (qn_rgb){ 0, 0, 0 }, 0.5);
    qn_rgb half = qn_raster_get(&r, 0, 0);
    cr_assert(half.r >= 127 && half.r <= 128, "50%% black over white: %d", half.r);
    qn_raster_done(&s);
    qn_raster_done(&r);
}
