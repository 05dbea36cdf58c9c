/* test_colormap.c: the built-in colormap tables: their published endpoints,
   lightness that rises monotonically (sequential maps) or peaks in the middle
   (the diverging one), clamping, and the NO_COLOR switch to greys. */
#include "viz/colormap.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static void expect_rgb(qn_rgb c, int r, int g, int b, const char *what)
{
    cr_assert(c.r == r && c.g == g && c.b == b, "%s: expected (%d,%d,%d), found (%d,%d,%d)",
              what, r, g, b, c.r, c.g, c.b);
}

Test(colormap, endpoints_match_the_published_tables)
{
    /* matplotlib's viridis #440154 .. #fde725, magma #000004 .. #fcfdbf;
       colorcet CET-D1 #2050da .. #bf0205 (rounded from its float table) */
    expect_rgb(qn_colormap_entry(QN_CMAP_VIRIDIS, 0), 68, 1, 84, "viridis[0]");
    expect_rgb(qn_colormap_entry(QN_CMAP_VIRIDIS, 255), 253, 231, 37, "viridis[255]");
    expect_rgb(qn_colormap_entry(QN_CMAP_MAGMA, 0), 0, 0, 4, "magma[0]");
    expect_rgb(qn_colormap_entry(QN_CMAP_MAGMA, 255), 252, 253, 191, "magma[255]");
    expect_rgb(qn_colormap_entry(QN_CMAP_GREYS, 0), 0, 0, 0, "greys[0]");
    expect_rgb(qn_colormap_entry(QN_CMAP_GREYS, 255), 255, 255, 255, "greys[255]");
    qn_rgb lo = qn_colormap_entry(QN_CMAP_COOLWARM, 0), hi = qn_colormap_entry(QN_CMAP_COOLWARM, 255);
    cr_assert(lo.b > lo.r && hi.r > hi.b, "coolwarm runs blue to red");
}

Test(colormap, lookup_clamps_and_hits_both_ends)
{
    for (int cm = 0; cm < QN_CMAP_COUNT; cm++) {
        qn_rgb e0 = qn_colormap_entry(cm, 0), e255 = qn_colormap_entry(cm, 255);
        qn_rgb a = qn_colormap_at(cm, 0), b = qn_colormap_at(cm, 1);
        qn_rgb c = qn_colormap_at(cm, -3), d = qn_colormap_at(cm, 7), n = qn_colormap_at(cm, NAN);
        cr_assert(a.r == e0.r && a.g == e0.g && a.b == e0.b, "%s: t=0", qn_colormap_name(cm));
        cr_assert(b.r == e255.r && b.g == e255.g && b.b == e255.b, "%s: t=1",
                  qn_colormap_name(cm));
        cr_assert(c.r == e0.r && d.r == e255.r && n.r == e0.r, "%s: clamping",
                  qn_colormap_name(cm));
        qn_rgb m = qn_colormap_at(cm, 0.5), m128 = qn_colormap_entry(cm, 128);
        cr_assert(m.r == m128.r && m.g == m128.g && m.b == m128.b, "%s: t=0.5 is entry 128",
                  qn_colormap_name(cm));
    }
}

Test(colormap, sequential_maps_grow_lighter)
{
    const qn_colormap seq[] = { QN_CMAP_VIRIDIS, QN_CMAP_MAGMA, QN_CMAP_GREYS };
    for (size_t k = 0; k < 3; k++)
        /* 8-bit rounding can tie neighbours: compare entries 4 apart */
        for (int i = 0; i + 4 < QN_CMAP_LEVELS; i++) {
            double a = qn_rgb_luminance(qn_colormap_entry(seq[k], i));
            double b = qn_rgb_luminance(qn_colormap_entry(seq[k], i + 4));
            cr_assert(b > a, "%s: luminance falls from entry %d (%.4f) to %d (%.4f)",
                      qn_colormap_name(seq[k]), i, a, i + 4, b);
        }
}

Test(colormap, diverging_map_is_lightest_in_the_middle_and_balanced)
{
    double mid = qn_rgb_luminance(qn_colormap_entry(QN_CMAP_COOLWARM, 128));
    for (int i = 0; i < 120; i++) {
        double lo = qn_rgb_luminance(qn_colormap_entry(QN_CMAP_COOLWARM, i));
        double hi = qn_rgb_luminance(qn_colormap_entry(QN_CMAP_COOLWARM, 255 - i));
        cr_assert(lo < mid && hi < mid, "entries %d and %d must be darker than the middle", i,
                  255 - i);
        /* perceptually balanced: the two sides' lightness agree within 0.05 */
        cr_assert(fabs(lo - hi) < 0.05, "entries %d and %d: luminance %.3f vs %.3f", i, 255 - i,
                  lo, hi);
    }
    cr_assert(mid > 0.75, "the middle is near white (luminance %.3f)", mid);
}

Test(colormap, no_color_picks_greys)
{
    cr_assert_eq(qn_colormap_pick(QN_CMAP_MAGMA, true), QN_CMAP_GREYS);
    cr_assert_eq(qn_colormap_pick(QN_CMAP_MAGMA, false), QN_CMAP_MAGMA);
    unsetenv("NO_COLOR");
    cr_assert(!qn_colormap_no_color_env());
    setenv("NO_COLOR", "", 1);
    cr_assert(!qn_colormap_no_color_env(), "an empty NO_COLOR does not count (no-color.org)");
    setenv("NO_COLOR", "1", 1);
    cr_assert(qn_colormap_no_color_env());
    cr_assert_str_eq(qn_colormap_name(QN_CMAP_VIRIDIS), "viridis");
}
