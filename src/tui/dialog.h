/* dialog.h: the modal dialog on top of every screen: a message (errors in
   red: a bad model folder, a failed write; the program goes on), a yes/no
   question, or a one-line input (a file name, a value). State is app.h's
   qn_dialog; here it is drawn and fed keys. */
#ifndef QN_TUI_DIALOG_H
#define QN_TUI_DIALOG_H
#include "tui/app.h"

void qn_dialog_draw(qn_app *app, qn_box screen);
void qn_dialog_key(qn_app *app, int key);

#endif
