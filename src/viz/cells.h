/* cells.h: rasters as terminal cells. With UTF-8 each cell is an upper half
   block "▀" showing two pixels (top: foreground, bottom: background), in 24-bit
   colour, the xterm 256-colour palette or the 8 ANSI colours; without colour or
   without UTF-8 each cell is one character of an ASCII brightness ramp (coloured
   when colour is there). The grid is plain data for the TUI to place; ANSI text
   is for `quench show` over plain SSH. No curses, no terminal queries: callers
   say what the terminal can do. */
#ifndef QN_CELLS_H
#define QN_CELLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "viz/raster.h"

typedef enum { QN_COLOR_DEFAULT = 0, QN_COLOR_INDEX, QN_COLOR_RGB } qn_color_kind;

typedef struct {
    uint8_t kind;         /* qn_color_kind */
    uint8_t index;        /* palette index: 0..255, or 0..7 for the 8 colours */
    qn_rgb  rgb;          /* QN_COLOR_RGB; for INDEX the palette's colour, for reference */
} qn_color;

typedef struct {
    char     glyph[8];    /* UTF-8, NUL-terminated: "▀" or one ASCII ramp character */
    qn_color fg, bg;
} qn_cell;

typedef struct {
    int      w, h;        /* cells */
    qn_cell *cells;       /* (h, w) row-major */
} qn_cellgrid;

typedef enum {
    QN_CELLS_TRUECOLOR,   /* 24-bit: COLORTERM=truecolor */
    QN_CELLS_256,         /* xterm-256color */
    QN_CELLS_8,           /* the 8 ANSI colours */
    QN_CELLS_MONO         /* no colour (NO_COLOR, dumb terminals) */
} qn_cell_colors;

/* The ramp, darkest first; a brightness maps to one of its characters. */
#define QN_CELLS_RAMP " .:-=+*#%@"

qn_status qn_cellgrid_init(qn_cellgrid *g, int w, int h, qn_err *err);
void      qn_cellgrid_done(qn_cellgrid *g);    /* zeroed is fine */

/* r resampled to w x h cells: w x 2h pixels for half blocks, w x h for the ramp;
   each target pixel is the mean of the source pixels it covers (nearest when the
   raster is smaller). Replaces what out held. */
qn_status qn_cells_from_raster(qn_cellgrid *out, const qn_raster *r, int w, int h,
                               qn_cell_colors colors, bool utf8, qn_err *err);
/* The grid as text with SGR escape codes, one line per row, colours reset at the
   end of each line; *out is malloc'd and NUL-terminated, *len excludes the NUL. */
qn_status qn_cells_to_ansi(const qn_cellgrid *g, char **out, size_t *len, qn_err *err);

/* Nearest colours: xterm 256-colour index (16..255, the cube and the grey ramp),
   and ANSI colour 0..7. */
int qn_rgb_to_xterm256(qn_rgb c);
int qn_rgb_to_ansi8(qn_rgb c);

#endif
