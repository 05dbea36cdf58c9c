/* font.c: FreeType text rendering (see font.h). A string is rendered once into a
   coverage buffer (one byte per pixel, the baseline at row `ascent`), then
   composited upright or turned; so both directions share one layout loop. */
#include "viz/font.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct qn_font {
    FT_Library lib;
    FT_Face    face;
    long       size_26_6;     /* the char size set on face, 0 when none yet */
    qn_status  failed;        /* first failure since the last qn_font_check */
    char       failure[256];
    char       path[4096];
};

/* Where distributions put DejaVu Sans: Debian/Ubuntu, Fedora, Arch, Alpine, macOS (Homebrew). */
static const char *const k_font_paths[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/opt/homebrew/share/fonts/DejaVuSans.ttf",
};

static void note_failure(qn_font *f, const char *what, FT_Error e)
{
    if (f->failed != QN_OK) return;
    f->failed = QN_ERR_FORMAT;
    snprintf(f->failure, sizeof f->failure, "%.180s: %s failed (FreeType error %d)",
             f->path, what, (int)e);
}

qn_status qn_font_open(qn_font **out, const char *path, qn_err *err)
{
    qn_status s;
    *out = NULL;
    qn_font *f = calloc(1, sizeof *f);
    if (!f) return qn_err_set(err, QN_ERR_NOMEM, "font: out of memory");
    if (!path) path = getenv("QN_FONT");
    if (path && path[0]) {
        if (access(path, R_OK) != 0) {
            s = qn_err_set(err, QN_ERR_IO, "%s: cannot read font file: %s", path,
                           strerror(errno));
            goto fail;
        }
    } else {
        path = NULL;
        for (size_t i = 0; i < sizeof k_font_paths / sizeof k_font_paths[0] && !path; i++)
            if (access(k_font_paths[i], R_OK) == 0) path = k_font_paths[i];
        if (!path) {
            s = qn_err_set(err, QN_ERR_IO,
                           "DejaVuSans.ttf: font not found (looked in %s and %zu other "
                           "folders); install fonts-dejavu-core or set QN_FONT to a .ttf file",
                           k_font_paths[0],
                           sizeof k_font_paths / sizeof k_font_paths[0] - 1);
            goto fail;
        }
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    FT_Error e = FT_Init_FreeType(&f->lib);
    if (e) {
        f->lib = NULL;
        s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: FreeType init failed (error %d)",
                       f->path, (int)e);
        goto fail;
    }
    e = FT_New_Face(f->lib, f->path, 0, &f->face);
    if (e) {
        f->face = NULL;
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: not a font FreeType can read (error %d)",
                       f->path, (int)e);
        goto fail;
    }
    if (!FT_IS_SCALABLE(f->face)) {
        s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: a bitmap-only font; need an outline "
                       "font such as DejaVuSans.ttf", f->path);
        goto fail;
    }
    *out = f;
    return QN_OK;
fail:
    qn_font_close(f);
    return s;
}

void qn_font_close(qn_font *f)
{
    if (!f) return;
    if (f->face) FT_Done_Face(f->face);
    if (f->lib) FT_Done_FreeType(f->lib);
    free(f);
}

const char *qn_font_path(const qn_font *f) { return f->path; }

qn_status qn_font_check(qn_font *f, qn_err *err)
{
    qn_status s = f->failed;
    if (s != QN_OK) qn_err_set(err, s, "%s", f->failure);
    f->failed = QN_OK;
    f->failure[0] = 0;
    return s;
}

static int set_size(qn_font *f, double px)
{
    long sz = lround((px > 1 ? px : 1) * 64);
    if (sz == f->size_26_6) return 1;
    FT_Error e = FT_Set_Char_Size(f->face, 0, sz, 72, 72);
    if (e) { note_failure(f, "setting the text size", e); return 0; }
    f->size_26_6 = sz;
    return 1;
}

/* Next code point of a UTF-8 string; malformed bytes give U+FFFD and advance one. */
static unsigned long next_cp(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    unsigned long cp;
    int n;
    if (p[0] < 0x80) { cp = p[0]; n = 1; }
    else if ((p[0] & 0xE0) == 0xC0) { cp = p[0] & 0x1F; n = 2; }
    else if ((p[0] & 0xF0) == 0xE0) { cp = p[0] & 0x0F; n = 3; }
    else if ((p[0] & 0xF8) == 0xF0) { cp = p[0] & 0x07; n = 4; }
    else { *s += 1; return 0xFFFD; }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) { *s += 1; return 0xFFFD; }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    *s += n;
    return cp;
}

typedef struct {
    uint8_t *cov;         /* (h, w) coverage, NULL while measuring */
    int      w, h;
    int      baseline;    /* row of the baseline */
    int      left;        /* column where the pen starts */
} coverage;

/* Lays out the string; with c->cov set, renders into it. Returns the advance in 26.6. */
static long layout(qn_font *f, const char *utf8, coverage *c)
{
    FT_Face face = f->face;
    long pen = 0;
    FT_UInt prev = 0;
    const char *s = utf8;
    while (*s) {
        FT_UInt gi = FT_Get_Char_Index(face, next_cp(&s));
        if (prev && gi && FT_HAS_KERNING(face)) {
            FT_Vector k;
            if (!FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k)) pen += k.x;
        }
        FT_Error e = FT_Load_Glyph(face, gi, c->cov ? FT_LOAD_RENDER | FT_LOAD_TARGET_LIGHT
                                                    : FT_LOAD_TARGET_LIGHT);
        if (e) { note_failure(f, "loading a glyph", e); prev = 0; continue; }
        FT_GlyphSlot g = face->glyph;
        if (c->cov && g->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY) {
            int x0 = c->left + (int)((pen + 32) >> 6) + g->bitmap_left, y0 = c->baseline - g->bitmap_top;
            for (unsigned row = 0; row < g->bitmap.rows; row++) {
                int y = y0 + (int)row;
                if (y < 0 || y >= c->h) continue;
                const unsigned char *src = g->bitmap.buffer + (long)row * g->bitmap.pitch;
                for (unsigned col = 0; col < g->bitmap.width; col++) {
                    int x = x0 + (int)col;
                    if (x < 0 || x >= c->w) continue;
                    uint8_t *d = &c->cov[(size_t)y * (size_t)c->w + (size_t)x];
                    if (src[col] > *d) *d = src[col];
                }
            }
        }
        pen += g->advance.x;
        prev = gi;
    }
    return pen;
}

qn_text_size qn_font_measure(qn_font *f, double px, const char *utf8)
{
    qn_text_size ts = { 0, 0, 0 };
    if (!set_size(f, px)) return ts;
    coverage none = { NULL, 0, 0, 0, 0 };
    ts.width = (int)((layout(f, utf8, &none) + 32) >> 6);
    ts.ascent = (int)((f->face->size->metrics.ascender + 63) >> 6);
    ts.descent = (int)((-f->face->size->metrics.descender + 63) >> 6);
    return ts;
}

/* Renders the string into a fresh coverage buffer; false (nothing to free) when empty
   or on failure. */
static int render(qn_font *f, double px, const char *utf8, coverage *c)
{
    qn_text_size ts = qn_font_measure(f, px, utf8);
    if (ts.width <= 0) return 0;
    c->left = (int)ceil(px / 2) + 2;          /* glyphs may overhang their advance */
    c->w = ts.width + 2 * c->left;
    c->h = ts.ascent + ts.descent + 2;
    c->baseline = ts.ascent + 1;
    c->cov = calloc((size_t)c->w * (size_t)c->h, 1);
    if (!c->cov) {
        if (f->failed == QN_OK) {
            f->failed = QN_ERR_NOMEM;
            snprintf(f->failure, sizeof f->failure, "%.200s: out of memory rendering text",
                     f->path);
        }
        return 0;
    }
    layout(f, utf8, c);
    return 1;
}

void qn_font_draw(qn_font *f, qn_raster *r, int x, int y, double px, const char *utf8,
                  qn_rgb color)
{
    coverage c;
    if (!render(f, px, utf8, &c)) return;
    for (int v = 0; v < c.h; v++)
        for (int u = 0; u < c.w; u++) {
            uint8_t a = c.cov[(size_t)v * (size_t)c.w + (size_t)u];
            if (a) qn_raster_blend(r, x - c.left + u, y - c.baseline + v, color, a / 255.0);
        }
    free(c.cov);
}

void qn_font_draw_up(qn_font *f, qn_raster *r, int x, int y, double px, const char *utf8,
                     qn_rgb color)
{
    coverage c;
    if (!render(f, px, utf8, &c)) return;
    /* turned counter-clockwise: along the text (u) goes up, the glyph tops (v = 0) go left */
    for (int v = 0; v < c.h; v++)
        for (int u = 0; u < c.w; u++) {
            uint8_t a = c.cov[(size_t)v * (size_t)c.w + (size_t)u];
            if (a) qn_raster_blend(r, x - c.baseline + v, y + c.left - u, color, a / 255.0);
        }
    free(c.cov);
}
