/* keys.h: every key of the workbench, in one table (keys.c), in htop's habits:
   arrows and hjkl move, Tab changes pane, Enter opens, Esc goes back, `/`
   filters, F1 or `?` helps, F10 or `q` quits. A key maps to an action; screens
   handle actions, never raw keys (text boxes excepted). The help overlay and
   the bottom bar are made from the same table, so they cannot disagree with
   what the keys do. */
#ifndef QN_TUI_KEYS_H
#define QN_TUI_KEYS_H
#include <stddef.h>

typedef enum {
    QN_ACT_NONE = 0,
    QN_ACT_TEXT,           /* a raw key for a text box being edited */
    /* global */
    QN_ACT_QUIT, QN_ACT_INTERRUPT, QN_ACT_HELP, QN_ACT_REDRAW,
    QN_ACT_SCREEN_MODELS, QN_ACT_SCREEN_BUDGET, QN_ACT_SCREEN_RUN, QN_ACT_SCREEN_INSPECT, QN_ACT_SCREEN_EVAL, QN_ACT_SCREEN_RUNS,
    QN_ACT_NEXT_SCREEN, QN_ACT_PREV_SCREEN,
    /* moving */
    QN_ACT_UP, QN_ACT_DOWN, QN_ACT_LEFT, QN_ACT_RIGHT, QN_ACT_PAGE_UP, QN_ACT_PAGE_DOWN, QN_ACT_HOME, QN_ACT_END,
    QN_ACT_NEXT_PANE, QN_ACT_PREV_PANE, QN_ACT_OPEN, QN_ACT_BACK, QN_ACT_FILTER,
    /* models */
    QN_ACT_BROWSE, QN_ACT_FORGET,
    /* budget and run */
    QN_ACT_EDIT, QN_ACT_DEC, QN_ACT_INC, QN_ACT_START, QN_ACT_START_PAUSED, QN_ACT_PAUSE, QN_ACT_STEP,
    QN_ACT_CANCEL, QN_ACT_FOLLOW, QN_ACT_RESUME, QN_ACT_OPEN_RUN,
    /* inspect */
    QN_ACT_PIC_NEXT, QN_ACT_PIC_WEIGHTS, QN_ACT_PIC_ERROR, QN_ACT_PIC_OUTLIERS, QN_ACT_PIC_CODEBOOK,
    QN_ACT_PIC_HESSIAN, QN_ACT_ZOOM_IN, QN_ACT_ZOOM_OUT, QN_ACT_ZOOM_RESET, QN_ACT_FULLSCREEN, QN_ACT_EXPORT,
    /* evaluate */
    QN_ACT_PPL, QN_ACT_GENERATE, QN_ACT_PROMPT, QN_ACT_TEMP_UP, QN_ACT_TEMP_DOWN, QN_ACT_LEN_UP, QN_ACT_LEN_DOWN,
    QN_ACT_TOGGLE_MODEL, QN_ACT_TEXT_FILE,
    /* runs */
    QN_ACT_MARK, QN_ACT_RESCAN,
    /* file browser */
    QN_ACT_PARENT, QN_ACT_CHOOSE_HERE, QN_ACT_GOTO, QN_ACT_HOME_DIR, QN_ACT_HIDDEN,
    /* dialogs */
    QN_ACT_YES, QN_ACT_NO,
    QN_ACT_COUNT
} qn_action;

#define QN_KEYS_GLOBAL (-1)
#define QN_KEYS_BROWSER 100   /* the file browser, over any screen */
#define QN_KEYS_DIALOG  101   /* a confirmation or message dialog */

typedef struct {
    int         screen;   /* qn_screen_id, or QN_KEYS_GLOBAL */
    int         key;      /* ncurses key code or character */
    const char *label;    /* as the help and the bar name it: "F10", "Enter", "q" */
    qn_action   act;
    const char *help;     /* what it does; NULL: an alias of the previous row, not listed again */
    int         bar;      /* position in the bottom bar (1 = first); 0: not in the bar */
    const char *bar_text; /* the bar's short label: "Quit" */
} qn_key_binding;

/* The context's own binding first, then the global one (not for dialogs);
   QN_ACT_NONE when unbound. context: a qn_screen_id or QN_KEYS_BROWSER/DIALOG. */
qn_action qn_keys_action(int context, int key);
const qn_key_binding *qn_keys_table(size_t *n);
/* Bottom-bar entries of a screen in bar order (globals included); returns the count. */
size_t qn_keys_bar(int screen, const qn_key_binding **out, size_t cap);

#endif
