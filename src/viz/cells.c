/* cells.c: rasters to terminal cells and cells to ANSI text (see cells.h).
   Colour matching is nearest by the "redmean" weighted RGB distance (a cheap
   approximation of perceived difference); the ramp is indexed by CIE L*. */
#include "viz/cells.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPPER_HALF "\xe2\x96\x80"   /* U+2580 */

/* xterm's default 8 colours */
static const qn_rgb k_ansi8[8] = {
    { 0, 0, 0 }, { 205, 0, 0 }, { 0, 205, 0 }, { 205, 205, 0 },
    { 0, 0, 238 }, { 205, 0, 205 }, { 0, 205, 205 }, { 229, 229, 229 },
};
static const uint8_t k_cube[6] = { 0, 95, 135, 175, 215, 255 };

static double dist2(qn_rgb a, qn_rgb b)
{
    double rm = (a.r + b.r) / 2.0, dr = a.r - b.r, dg = a.g - b.g, db = a.b - b.b;
    return (2 + rm / 256) * dr * dr + 4 * dg * dg + (2 + (255 - rm) / 256) * db * db;
}

static int cube_level(uint8_t v)
{
    int best = 0;
    for (int i = 1; i < 6; i++)
        if (abs(k_cube[i] - v) < abs(k_cube[best] - v)) best = i;
    return best;
}

static qn_rgb xterm256_rgb(int i)
{
    if (i >= 232) { uint8_t v = (uint8_t)(8 + 10 * (i - 232)); return (qn_rgb){ v, v, v }; }
    if (i >= 16) {
        i -= 16;
        return (qn_rgb){ k_cube[i / 36], k_cube[i / 6 % 6], k_cube[i % 6] };
    }
    return k_ansi8[i & 7];
}

int qn_rgb_to_xterm256(qn_rgb c)
{
    int cube = 16 + 36 * cube_level(c.r) + 6 * cube_level(c.g) + cube_level(c.b);
    int grey = 232 + (int)lround(((c.r + c.g + c.b) / 3.0 - 8) / 10);
    if (grey < 232) grey = 232;
    if (grey > 255) grey = 255;
    return dist2(c, xterm256_rgb(grey)) < dist2(c, xterm256_rgb(cube)) ? grey : cube;
}

int qn_rgb_to_ansi8(qn_rgb c)
{
    int best = 0;
    for (int i = 1; i < 8; i++)
        if (dist2(c, k_ansi8[i]) < dist2(c, k_ansi8[best])) best = i;
    return best;
}

static qn_color color_for(qn_rgb c, qn_cell_colors mode)
{
    switch (mode) {
    case QN_CELLS_TRUECOLOR: return (qn_color){ QN_COLOR_RGB, 0, c };
    case QN_CELLS_256: {
        int i = qn_rgb_to_xterm256(c);
        return (qn_color){ QN_COLOR_INDEX, (uint8_t)i, xterm256_rgb(i) };
    }
    case QN_CELLS_8: {
        int i = qn_rgb_to_ansi8(c);
        return (qn_color){ QN_COLOR_INDEX, (uint8_t)i, k_ansi8[i] };
    }
    case QN_CELLS_MONO: break;
    }
    return (qn_color){ QN_COLOR_DEFAULT, 0, { 0, 0, 0 } };
}

qn_status qn_cellgrid_init(qn_cellgrid *g, int w, int h, qn_err *err)
{
    g->w = g->h = 0;
    g->cells = NULL;
    if (w < 1 || h < 1 || w > 4096 || h > 4096)
        return qn_err_set(err, QN_ERR_ARG, "cells: grid %dx%d outside 1..4096", w, h);
    g->cells = calloc((size_t)w * (size_t)h, sizeof *g->cells);
    if (!g->cells) return qn_err_set(err, QN_ERR_NOMEM, "cells: out of memory for %dx%d", w, h);
    g->w = w;
    g->h = h;
    return QN_OK;
}

void qn_cellgrid_done(qn_cellgrid *g)
{
    if (!g) return;
    free(g->cells);
    g->cells = NULL;
    g->w = g->h = 0;
}

/* Mean colour of the source pixels under target pixel (x, y) of a tw x th grid. */
static qn_rgb sample(const qn_raster *r, int x, int y, int tw, int th)
{
    int x0 = (int)((long)x * r->w / tw), x1 = (int)((long)(x + 1) * r->w / tw);
    int y0 = (int)((long)y * r->h / th), y1 = (int)((long)(y + 1) * r->h / th);
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    double s[3] = { 0, 0, 0 };
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) {
            qn_rgb c = qn_raster_get(r, xx, yy);
            s[0] += c.r;
            s[1] += c.g;
            s[2] += c.b;
        }
    double n = (double)(x1 - x0) * (y1 - y0);
    return (qn_rgb){ (uint8_t)lround(s[0] / n), (uint8_t)lround(s[1] / n),
                     (uint8_t)lround(s[2] / n) };
}

static char ramp_char(qn_rgb c)
{
    static const char k_ramp[] = QN_CELLS_RAMP;
    double Y = qn_rgb_luminance(c);
    double L = Y > 0.008856 ? 116 * cbrt(Y) - 16 : 903.3 * Y;   /* CIE L*, 0..100 */
    int n = (int)sizeof k_ramp - 1, i = (int)(L / 100 * n);
    return k_ramp[i < 0 ? 0 : i >= n ? n - 1 : i];
}

qn_status qn_cells_from_raster(qn_cellgrid *out, const qn_raster *r, int w, int h,
                               qn_cell_colors colors, bool utf8, qn_err *err)
{
    qn_cellgrid_done(out);
    qn_status s = qn_cellgrid_init(out, w, h, err);
    if (s != QN_OK) return s;
    bool blocks = utf8 && colors != QN_CELLS_MONO;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            qn_cell *c = &out->cells[(size_t)y * (size_t)w + (size_t)x];
            if (blocks) {
                snprintf(c->glyph, sizeof c->glyph, UPPER_HALF);
                c->fg = color_for(sample(r, x, 2 * y, w, 2 * h), colors);
                c->bg = color_for(sample(r, x, 2 * y + 1, w, 2 * h), colors);
            } else {
                qn_rgb px = sample(r, x, y, w, h);
                c->glyph[0] = ramp_char(px);
                c->glyph[1] = 0;
                c->fg = color_for(px, colors);
                c->bg = (qn_color){ QN_COLOR_DEFAULT, 0, { 0, 0, 0 } };
            }
        }
    return QN_OK;
}

/* growable text buffer; on allocation failure `failed` is set and appends stop */
typedef struct { char *p; size_t len, cap; int failed; } sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static int same(qn_color a, qn_color b)
{
    if (a.kind != b.kind) return 0;
    if (a.kind == QN_COLOR_INDEX) return a.index == b.index;
    if (a.kind == QN_COLOR_RGB) return a.rgb.r == b.rgb.r && a.rgb.g == b.rgb.g && a.rgb.b == b.rgb.b;
    return 1;
}

/* SGR parameters for one colour: base 30 for foreground, 40 for background */
static int sgr(char *buf, size_t cap, qn_color c, int base)
{
    if (c.kind == QN_COLOR_RGB)
        return snprintf(buf, cap, "%d;2;%d;%d;%d", base + 8, c.rgb.r, c.rgb.g, c.rgb.b);
    if (c.kind == QN_COLOR_INDEX && c.index < 8) return snprintf(buf, cap, "%d", base + c.index);
    if (c.kind == QN_COLOR_INDEX) return snprintf(buf, cap, "%d;5;%d", base + 8, c.index);
    return snprintf(buf, cap, "%d", base + 9);
}

qn_status qn_cells_to_ansi(const qn_cellgrid *g, char **out, size_t *len, qn_err *err)
{
    sbuf b = { NULL, 0, 0, 0 };
    char seq[96], fgs[40], bgs[40];
    for (int y = 0; y < g->h; y++) {
        qn_color fg = { QN_COLOR_DEFAULT, 0, { 0, 0, 0 } }, bg = fg;
        int styled = 0;
        for (int x = 0; x < g->w; x++) {
            const qn_cell *c = &g->cells[(size_t)y * (size_t)g->w + (size_t)x];
            if (!same(c->fg, fg) || !same(c->bg, bg)) {
                sgr(fgs, sizeof fgs, c->fg, 30);
                sgr(bgs, sizeof bgs, c->bg, 40);
                int n = snprintf(seq, sizeof seq, "\x1b[%s;%sm", fgs, bgs);
                put(&b, seq, (size_t)n);
                fg = c->fg;
                bg = c->bg;
                styled = 1;
            }
            put(&b, c->glyph[0] ? c->glyph : " ", c->glyph[0] ? strlen(c->glyph) : 1);
        }
        if (styled) put(&b, "\x1b[0m", 4);
        put(&b, "\n", 1);
    }
    if (!b.p && !b.failed) put(&b, "", 0);
    if (b.failed) {
        free(b.p);
        return qn_err_set(err, QN_ERR_NOMEM, "cells: out of memory for ANSI text");
    }
    *out = b.p;
    *len = b.len;
    return QN_OK;
}
