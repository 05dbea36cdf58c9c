/* picture.h: a layer's matrix as terminal cells for the Run and Inspect
   screens: the values go through viz's bare heatmap (block-reduced, never
   subsampled: one outlier survives any zoom level) and viz's cell conversion
   with the colours and glyphs the terminal has (theme.h). Also a column chart
   of a vector (the Hessian diagonal) in bar eighths. UI thread only. */
#ifndef QN_TUI_PICTURE_H
#define QN_TUI_PICTURE_H
#include <stddef.h>
#include "status.h"
#include "tui/jobs.h"
#include "tui/theme.h"
#include "viz/cells.h"

/* v (rows, cols) as w x h cells in the style of kind (weights: diverging,
   mean-reduced; error, hessian, codebook: magma, log, max-reduced; outliers:
   any-reduced). Replaces what out held. */
qn_status qn_picture_cells(qn_cellgrid *out, const float *v, size_t rows, size_t cols, qn_pic_kind kind, int w,
                           int h, const qn_theme *t, qn_err *err);
/* v (n) as h rows of vertical bars in w columns, each the max of the values it
   covers, on a log scale when log_scale (values <= 0 as empty). */
void qn_picture_columns(const qn_theme *t, int y, int x, int h, int w, const float *v, size_t n, bool log_scale);

#endif
