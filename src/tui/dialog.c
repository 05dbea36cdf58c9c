/* dialog.c: drawing and keys of the modal dialog (see dialog.h). Long
   messages are wrapped at spaces (and at '/' for paths) to the box width. */
#include "tui/dialog.h"

#include <string.h>

#include "tui/text.h"

/* Splits text into lines of at most w columns; returns the count. */
static int wrap(const char *text, int w, char lines[][256], int cap)
{
    int n = 0;
    for (const char *p = text; *p && n < cap;) {
        size_t next, len = qn_text_wrap(p, w, &next);
        snprintf(lines[n++], 256, "%.*s", (int)(len < 255 ? len : 255), p);
        p += next;
    }
    return n;
}

void qn_dialog_draw(qn_app *app, qn_box screen)
{
    const qn_theme *t = &app->theme;
    const qn_dialog *d = &app->dialog;
    int w = screen.w - 4 < 72 ? screen.w - 4 : 72;
    if (w < 20) w = screen.w;
    char lines[16][256];
    int n = wrap(d->text, w - 4, lines, 16);
    int h = n + 4 + (d->kind == QN_DLG_INPUT ? 1 : 0);
    if (h > screen.h) h = screen.h;
    qn_box box = { screen.y + (screen.h - h) / 2, screen.x + (screen.w - w) / 2, h, w };
    qn_theme_role role = d->error ? QN_TH_BAD : QN_TH_DIALOG;
    qn_w_clear(t, box, QN_TH_DIALOG);
    qn_box in = qn_w_frame(t, box, d->title, true);
    for (int i = 0; i < n && i < in.h; i++) qn_w_text(t, in.y + i, in.x + 1, in.w - 2, i == 0 ? role : QN_TH_DIALOG, lines[i]);
    if (d->kind == QN_DLG_INPUT) qn_w_lineedit(t, in.y + n, in.x + 1, in.w - 2, &d->input, true);
    const char *keys = d->kind == QN_DLG_MESSAGE ? "[Enter] OK" : d->kind == QN_DLG_CONFIRM ? "[y] Yes   [n] No"
                                                                                        : "[Enter] OK   [Esc] Cancel";
    qn_w_text(t, in.y + in.h - 1, in.x + (in.w - qn_text_width(keys)) / 2, in.w, QN_TH_KEYDESC, keys);
}

void qn_dialog_key(qn_app *app, int key)
{
    qn_dialog *d = &app->dialog;
    app->dirty = true;
    if (d->kind == QN_DLG_INPUT) {
        qn_le_result r = qn_lineedit_key(&d->input, key);
        if (r == QN_LE_DONE) qn_app_dialog_done(app, true);
        else if (r == QN_LE_CANCEL) qn_app_dialog_done(app, false);
        return;
    }
    qn_action a = qn_keys_action(QN_KEYS_DIALOG, key);
    if (d->kind == QN_DLG_MESSAGE && (a == QN_ACT_YES || a == QN_ACT_NO || key == ' ')) qn_app_dialog_done(app, false);
    else if (a == QN_ACT_YES) qn_app_dialog_done(app, true);
    else if (a == QN_ACT_NO) qn_app_dialog_done(app, false);
}
