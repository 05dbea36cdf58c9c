/* help.h: the help overlay (F1 or `?`): every key of the current screen, or
   of the browser or dialog on top, then the global keys, all read from the key
   table (keys.h) so it lists exactly what the keys do. */
#ifndef QN_TUI_HELP_H
#define QN_TUI_HELP_H
#include "tui/app.h"

void qn_help_draw(qn_app *app, qn_box screen);
/* A key while help is open: scrolls, or closes it (returns false when closed). */
bool qn_help_key(qn_app *app, int key);

#endif
