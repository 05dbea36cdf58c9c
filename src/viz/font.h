/* font.h: text drawn into a raster with FreeType (greyscale antialiasing, light
   hinting, kerning from the font's kern table). The font file is found at run
   time: $QN_FONT when set, else DejaVu Sans in the usual Debian and other
   distribution folders (Debian: fonts-dejavu-core). Text is UTF-8; a character
   the font lacks draws as the font's missing-glyph box.
   Drawing does not return a status on every call: the first FreeType failure is
   kept in the font and qn_font_check reports it (as ferror does for a FILE).
   A qn_font is used by one thread at a time (FreeType faces are not shared). */
#ifndef QN_FONT_H
#define QN_FONT_H
#include "status.h"
#include "viz/raster.h"

typedef struct qn_font qn_font;   /* opaque: owns the FreeType library and face */

typedef struct {
    int width;            /* advance of the whole string, pixels */
    int ascent, descent;  /* of the font at this size (not of the string); both >= 0 */
} qn_text_size;

/* path NULL: $QN_FONT, else the first DejaVuSans.ttf found in the known folders. */
qn_status qn_font_open(qn_font **out, const char *path, qn_err *err);
void      qn_font_close(qn_font *f);                  /* NULL is fine */
const char *qn_font_path(const qn_font *f);

/* px: the em size in pixels (DejaVu's capitals are about 0.73 em tall). */
qn_text_size qn_font_measure(qn_font *f, double px, const char *utf8);
/* Draws with the baseline at y, starting at x. */
void qn_font_draw(qn_font *f, qn_raster *r, int x, int y, double px, const char *utf8,
                  qn_rgb color);
/* Draws turned 90 degrees counter-clockwise (reads bottom to top), the baseline at
   column x and the text starting at row y and going up. */
void qn_font_draw_up(qn_font *f, qn_raster *r, int x, int y, double px, const char *utf8,
                     qn_rgb color);
/* The first failure since the last check (QN_OK when none), cleared by the call. */
qn_status qn_font_check(qn_font *f, qn_err *err);

#endif
