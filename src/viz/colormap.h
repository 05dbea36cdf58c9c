/* colormap.h: perceptually uniform colormaps as built-in 256-entry tables.
   viridis and magma are matplotlib's (van der Walt & Smith, CC0); the diverging
   map is Kovesi's CET-D1 blue-white-red ("coolwarm" in colorcet, lightness 40 to
   95 and back), the greys are CET-L1 (lightness linear from black to white), the
   map a NO_COLOR terminal or print gets in place of any other. Lookup only: no
   interpolation between entries (256 levels is finer than the eye sees here). */
#ifndef QN_COLORMAP_H
#define QN_COLORMAP_H
#include <stdbool.h>
#include <stdint.h>

typedef struct { uint8_t r, g, b; } qn_rgb;

typedef enum {
    QN_CMAP_VIRIDIS,      /* sequential, dark blue to yellow: values, usage */
    QN_CMAP_MAGMA,        /* sequential, black to pale yellow: errors, sensitivities */
    QN_CMAP_COOLWARM,     /* diverging, blue - near white - red: signed weights */
    QN_CMAP_GREYS,        /* sequential, black to white: NO_COLOR */
    QN_CMAP_COUNT
} qn_colormap;

#define QN_CMAP_LEVELS 256

/* t in [0, 1] (clamped) to a colour; NaN gives the map's entry 0. */
qn_rgb      qn_colormap_at(qn_colormap cm, double t);
/* Entry i (clamped to 0..255) of the table. */
qn_rgb      qn_colormap_entry(qn_colormap cm, int i);
const char *qn_colormap_name(qn_colormap cm);
/* The map to draw with: cm itself, or QN_CMAP_GREYS when no_color. */
qn_colormap qn_colormap_pick(qn_colormap cm, bool no_color);
/* True when the NO_COLOR environment variable is set and not empty (no-color.org). */
bool        qn_colormap_no_color_env(void);
/* Relative luminance in [0, 1] (Rec. 709 weights on linearised sRGB). */
double      qn_rgb_luminance(qn_rgb c);

#endif
