/* raster.c: RGB images and drawing primitives (see raster.h). Antialiasing is
   coverage = clamp(half width + 0.5 - distance), a one-pixel linear ramp at the
   edge of the shape; blending is in sRGB values, as most plotting libraries do. */
#include "viz/raster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

qn_status qn_raster_init(qn_raster *r, int w, int h, qn_rgb bg, qn_err *err)
{
    r->w = r->h = 0;
    r->px = NULL;
    if (w < 1 || h < 1 || w > 1 << 15 || h > 1 << 15)
        return qn_err_set(err, QN_ERR_ARG, "raster: size %dx%d outside 1..32768", w, h);
    r->px = malloc((size_t)w * (size_t)h * 3);
    if (!r->px)
        return qn_err_set(err, QN_ERR_NOMEM, "raster: out of memory for %dx%d pixels", w, h);
    r->w = w;
    r->h = h;
    qn_raster_fill(r, (qn_rect){ 0, 0, w, h }, bg);
    return QN_OK;
}

void qn_raster_done(qn_raster *r)
{
    if (!r) return;
    free(r->px);
    r->px = NULL;
    r->w = r->h = 0;
}

static int inside(const qn_raster *r, int x, int y)
{
    return x >= 0 && y >= 0 && x < r->w && y < r->h;
}

static uint8_t *at(const qn_raster *r, int x, int y)
{
    return r->px + ((size_t)y * (size_t)r->w + (size_t)x) * 3;
}

qn_rgb qn_raster_get(const qn_raster *r, int x, int y)
{
    if (!inside(r, x, y)) return (qn_rgb){ 0, 0, 0 };
    const uint8_t *p = at(r, x, y);
    return (qn_rgb){ p[0], p[1], p[2] };
}

void qn_raster_set(qn_raster *r, int x, int y, qn_rgb c)
{
    if (!inside(r, x, y)) return;
    uint8_t *p = at(r, x, y);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

static uint8_t mix(uint8_t under, uint8_t over, double a)
{
    return (uint8_t)lround(under + (over - under) * a);
}

void qn_raster_blend(qn_raster *r, int x, int y, qn_rgb c, double a)
{
    if (!inside(r, x, y) || !(a > 0)) return;
    if (a >= 1) { qn_raster_set(r, x, y, c); return; }
    uint8_t *p = at(r, x, y);
    p[0] = mix(p[0], c.r, a);
    p[1] = mix(p[1], c.g, a);
    p[2] = mix(p[2], c.b, a);
}

/* box clipped to the image; false when nothing is left */
static int clip(const qn_raster *r, qn_rect *b)
{
    int x0 = b->x < 0 ? 0 : b->x, y0 = b->y < 0 ? 0 : b->y;
    long x1 = (long)b->x + b->w, y1 = (long)b->y + b->h;
    if (x1 > r->w) x1 = r->w;
    if (y1 > r->h) y1 = r->h;
    if (x1 <= x0 || y1 <= y0) return 0;
    *b = (qn_rect){ x0, y0, (int)(x1 - x0), (int)(y1 - y0) };
    return 1;
}

void qn_raster_fill(qn_raster *r, qn_rect box, qn_rgb c)
{
    if (!clip(r, &box)) return;
    for (int y = box.y; y < box.y + box.h; y++) {
        uint8_t *p = at(r, box.x, y);
        for (int x = 0; x < box.w; x++, p += 3) {
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    }
}

void qn_raster_hline(qn_raster *r, int x0, int x1, int y, qn_rgb c)
{
    if (x1 < x0) { int t = x0; x0 = x1; x1 = t; }
    qn_raster_fill(r, (qn_rect){ x0, y, x1 - x0 + 1, 1 }, c);
}

void qn_raster_vline(qn_raster *r, int x, int y0, int y1, qn_rgb c)
{
    if (y1 < y0) { int t = y0; y0 = y1; y1 = t; }
    qn_raster_fill(r, (qn_rect){ x, y0, 1, y1 - y0 + 1 }, c);
}

void qn_raster_frame(qn_raster *r, qn_rect b, qn_rgb c)
{
    if (b.w < 1 || b.h < 1) return;
    qn_raster_hline(r, b.x, b.x + b.w - 1, b.y, c);
    qn_raster_hline(r, b.x, b.x + b.w - 1, b.y + b.h - 1, c);
    qn_raster_vline(r, b.x, b.y, b.y + b.h - 1, c);
    qn_raster_vline(r, b.x + b.w - 1, b.y, b.y + b.h - 1, c);
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void qn_raster_line(qn_raster *r, double x0, double y0, double x1, double y1,
                    double width, qn_rgb c)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return;
    double hw = width / 2, dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int bx0 = (int)floor(fmin(x0, x1) - hw - 1), bx1 = (int)ceil(fmax(x0, x1) + hw + 1);
    int by0 = (int)floor(fmin(y0, y1) - hw - 1), by1 = (int)ceil(fmax(y0, y1) + hw + 1);
    if (bx0 < 0) bx0 = 0;
    if (by0 < 0) by0 = 0;
    if (bx1 > r->w - 1) bx1 = r->w - 1;
    if (by1 > r->h - 1) by1 = r->h - 1;
    for (int y = by0; y <= by1; y++)
        for (int x = bx0; x <= bx1; x++) {
            /* distance from the pixel centre to the segment */
            double t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
            t = clamp01(t);
            double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
            double a = clamp01(hw + 0.5 - sqrt(ex * ex + ey * ey));
            qn_raster_blend(r, x, y, c, a);
        }
}

void qn_raster_disc(qn_raster *r, double cx, double cy, double radius, qn_rgb c)
{
    if (!isfinite(cx) || !isfinite(cy) || !(radius > 0)) return;
    int x0 = (int)floor(cx - radius - 1), x1 = (int)ceil(cx + radius + 1);
    int y0 = (int)floor(cy - radius - 1), y1 = (int)ceil(cy + radius + 1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double d = hypot(x - cx, y - cy);
            qn_raster_blend(r, x, y, c, clamp01(radius + 0.5 - d));
        }
}

void qn_raster_blit(qn_raster *dst, const qn_raster *src, int x, int y)
{
    qn_rect b = { x, y, src->w, src->h };
    if (!clip(dst, &b)) return;
    for (int row = b.y; row < b.y + b.h; row++)
        memcpy(at(dst, b.x, row), at(src, b.x - x, row - y), (size_t)b.w * 3);
}
