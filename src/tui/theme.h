/* theme.h: how the workbench looks on the terminal it runs in: colour pairs
   for each role (htop's scheme: cyan key labels, a blue title bar), a readable
   monochrome scheme made of bold, reverse and underline for 8-colour-less
   terminals and NO_COLOR (no-color.org), and the glyphs (box lines, bar
   eighths, arrows) in UTF-8, or plain ASCII when the locale is not UTF-8 or
   TERM names a pre-Unicode terminal (vt100, ansi, dumb; QN_ASCII=1 forces it).
   Decides from what ncurses and the environment say after initscr; never
   queries the terminal itself. UI thread only. */
#ifndef QN_TUI_THEME_H
#define QN_TUI_THEME_H
#include <stdbool.h>
#include "tui/curses.h"
#include "viz/cells.h"

typedef enum {
    QN_TH_NORMAL = 0,
    QN_TH_TITLE,          /* the top bar */
    QN_TH_TAB,            /* the current screen's tab */
    QN_TH_KEY,            /* a key in the bottom bar: "F1" */
    QN_TH_KEYDESC,        /* its label: "Help" */
    QN_TH_SELECTED,       /* the cursor row of the focused pane */
    QN_TH_SELECTED_DIM,   /* the cursor row of a pane without focus */
    QN_TH_HEADER,         /* table headers */
    QN_TH_BORDER,
    QN_TH_BORDER_FOCUS,
    QN_TH_DIM,
    QN_TH_GOOD,
    QN_TH_WARN,
    QN_TH_BAD,
    QN_TH_BAR,            /* the filled part of a bar */
    QN_TH_BAR_EMPTY,
    QN_TH_DIALOG,
    QN_TH_INPUT,          /* an input box being edited */
    QN_TH_COUNT
} qn_theme_role;

typedef struct {
    const char *hline, *vline, *tl, *tr, *bl, *br, *tee_l, *tee_r;
    const char *bar_eighths[9];   /* 0/8 .. 8/8 of a cell; [0] is the empty cell */
    const char *ellipsis, *up, *down, *right, *bullet, *pause, *play;
} qn_glyphs;

typedef struct {
    bool            color;        /* colour pairs in use */
    bool            utf8;         /* UTF-8 glyphs */
    qn_cell_colors  cells;        /* what pictures may use */
    bool            half_blocks;  /* pictures in half blocks (two colours a cell): UTF-8 and enough
                                     colour pairs that a picture never recycles one on screen */
    qn_glyphs       g;
    attr_t          attr[QN_TH_COUNT];
} qn_theme;

/* After initscr: picks colour or monochrome (NO_COLOR, fewer than 8 colours),
   UTF-8 or ASCII. */
void   qn_theme_init(qn_theme *t);
static inline attr_t qn_theme_attr(const qn_theme *t, qn_theme_role r) { return t->attr[r]; }
/* The attribute of a pair (fg, bg) of terminal colours for picture cells;
   pairs are allocated on demand (ncurses' alloc_pair). *pair receives the pair. */
int    qn_theme_cell_pair(const qn_theme *t, int fg, int bg);

#endif
