/* raster.h: an 8-bit RGB image and the few drawing operations the pictures need:
   fills, one-pixel lines and frames, antialiased thick lines and discs (coverage
   from the distance to the shape, as Agg does), alpha blending and blits.
   Every operation clips to the image; coordinates may lie outside it. No text
   (font.h), no file formats (png.h). */
#ifndef QN_RASTER_H
#define QN_RASTER_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "viz/colormap.h"

typedef struct {
    int      w, h;
    uint8_t *px;          /* (h, w, 3) RGB, row-major, top row first */
} qn_raster;

typedef struct { int x, y, w, h; } qn_rect;   /* pixels; x, y the top-left corner */

/* Allocates w x h pixels filled with bg; w, h >= 1. done frees (zeroed is fine). */
qn_status qn_raster_init(qn_raster *r, int w, int h, qn_rgb bg, qn_err *err);
void      qn_raster_done(qn_raster *r);

/* Outside the image get returns black and set does nothing. */
qn_rgb qn_raster_get(const qn_raster *r, int x, int y);
void   qn_raster_set(qn_raster *r, int x, int y, qn_rgb c);
/* c over the pixel with coverage a in [0, 1]. */
void   qn_raster_blend(qn_raster *r, int x, int y, qn_rgb c, double a);

void qn_raster_fill(qn_raster *r, qn_rect box, qn_rgb c);
/* One-pixel outline just inside box. */
void qn_raster_frame(qn_raster *r, qn_rect box, qn_rgb c);
void qn_raster_hline(qn_raster *r, int x0, int x1, int y, qn_rgb c);   /* x0..x1 inclusive */
void qn_raster_vline(qn_raster *r, int x, int y0, int y1, qn_rgb c);   /* y0..y1 inclusive */
/* Antialiased segment of the given width (pixels) between pixel-centre coordinates. */
void qn_raster_line(qn_raster *r, double x0, double y0, double x1, double y1,
                    double width, qn_rgb c);
/* Antialiased filled disc. */
void qn_raster_disc(qn_raster *r, double cx, double cy, double radius, qn_rgb c);
/* Copies src with its top-left corner at (x, y). */
void qn_raster_blit(qn_raster *dst, const qn_raster *src, int x, int y);

#endif
