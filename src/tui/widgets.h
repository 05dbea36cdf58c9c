/* widgets.h: the drawing pieces every screen uses, htop-style: clipped text,
   boxes with a title, bars in eighths of a cell, table headers and rows, a
   picture made of viz cells (viz/cells.h), a one-line text editor, and the
   scrolling arithmetic of lists. All draw on stdscr at absolute positions;
   callers give the rectangle. UI thread only. */
#ifndef QN_TUI_WIDGETS_H
#define QN_TUI_WIDGETS_H
#include <stdbool.h>
#include <stddef.h>
#include "tui/curses.h"
#include "tui/theme.h"
#include "viz/cells.h"

typedef struct { int y, x, h, w; } qn_box;

/* Text clipped to w columns (an ellipsis when it did not fit); returns columns used. */
int  qn_w_text(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *s);
int  qn_w_textf(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Text right-aligned to end at column x + w. */
void qn_w_text_right(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *s);
void qn_w_fill(const qn_theme *t, int y, int x, int w, qn_theme_role role);
void qn_w_clear(const qn_theme *t, qn_box b, qn_theme_role role);
/* A frame around b with title in its top line; returns the inside. */
qn_box qn_w_frame(const qn_theme *t, qn_box b, const char *title, bool focus);
/* A bar of w cells, frac in [0, 1] filled (NaN: empty). */
void qn_w_bar(const qn_theme *t, int y, int x, int w, double frac, qn_theme_role fill);
/* A bar with a right-aligned label inside: "[|||||     42%]". */
void qn_w_meter(const qn_theme *t, int y, int x, int w, double frac, const char *label);
/* Picture cells at (y, x), clipped to w x h. */
void qn_w_cells(const qn_theme *t, const qn_cellgrid *g, int y, int x, int h, int w);
/* A small sparkline of v (n values) in w cells (log when log_scale). */
void qn_w_sparkline(const qn_theme *t, int y, int x, int w, const double *v, size_t n, bool log_scale);

/* Keeps sel visible in a list of n rows shown h at a time; updates *top. */
void qn_w_scroll(size_t *top, size_t sel, size_t n, int h);
/* Moves sel by delta (clamped to 0..n-1); returns true when it changed. */
bool qn_w_move(size_t *sel, long delta, size_t n);
/* A click at (y, x) on a list of n rows drawn in box from row top: selects
   the row under it; false when the click is outside the list. */
bool qn_w_list_click(qn_box box, size_t top, size_t n, int y, int x, size_t *sel);

/* A one-line editor (dialog inputs, filters, the prompt box). */
typedef struct {
    char   buf[1024];
    size_t len, cur;    /* bytes; cur on a character boundary */
} qn_lineedit;

typedef enum { QN_LE_IGNORED = 0, QN_LE_CHANGED, QN_LE_DONE, QN_LE_CANCEL } qn_le_result;

void         qn_lineedit_set(qn_lineedit *e, const char *s);
/* Printable characters (UTF-8 bytes as they arrive) insert; Backspace, Delete,
   Left, Right, Home, End, C-a, C-e, C-u, C-w edit; Enter: DONE; Esc: CANCEL. */
qn_le_result qn_lineedit_key(qn_lineedit *e, int key);
void         qn_w_lineedit(const qn_theme *t, int y, int x, int w, const qn_lineedit *e, bool active);

#endif
