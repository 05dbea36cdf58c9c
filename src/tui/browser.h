/* browser.h: the file browser the Models screen opens over the workbench to
   find a model: a Hugging Face folder (one holding config.json, marked as a
   model), a .gguf file or a llama2.c .bin checkpoint. Folders first, then
   files, each with its size; `/` filters, `:` takes a typed path. Reading a
   folder is one readdir of names and stats (no model is opened here). */
#ifndef QN_TUI_BROWSER_H
#define QN_TUI_BROWSER_H
#include <stddef.h>
#include "tui/theme.h"
#include "tui/widgets.h"

typedef struct qn_browser qn_browser;

typedef enum { QN_BR_NONE = 0, QN_BR_REDRAW, QN_BR_CHOSEN, QN_BR_CLOSED } qn_br_result;

/* Opens at start: a folder, or the folder holding start (a file or a model
   folder) with it selected. NULL: out of memory. */
qn_browser  *qn_browser_create(const char *start);
void         qn_browser_free(qn_browser *b);              /* NULL is fine */
/* A key; on QN_BR_CHOSEN the path is in chosen. */
qn_br_result qn_browser_key(qn_browser *b, int key, char *chosen, size_t cap);
qn_br_result qn_browser_click(qn_browser *b, int y, int x, bool twice, char *chosen, size_t cap);
void         qn_browser_draw(qn_browser *b, const qn_theme *t, qn_box screen);
/* The folder shown. */
const char  *qn_browser_dir(const qn_browser *b);

#endif
