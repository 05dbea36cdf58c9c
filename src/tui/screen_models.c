/* screen_models.c: the Models screen. Left, the models to choose from: the
   default model shipped in assets/, the recent ones ($XDG_STATE_HOME/quench/
   recent.json) and a row that opens the file browser; `/` filters them.
   Right, the current model as read from its files before anything runs:
   format, architecture, parameter count, storage type, size on disk, shape,
   and what it would weigh in fp16 (the Budget screen's reference). */
#include "tui/app.h"

#include <stdlib.h>
#include <string.h>

#include "tui/browser.h"
#include "tui/text.h"

typedef struct {
    size_t      sel, top;
    bool        filtering;
    qn_lineedit filter;
    qn_box      list;          /* where the rows were drawn */
    const char *rows[QN_RECENT_MAX + 2];   /* paths; NULL: the browse row */
    size_t      n_rows;
} models_view;

static void build_rows(models_view *v, const qn_app *app)
{
    v->n_rows = 0;
    const char *f = v->filter.len ? v->filter.buf : NULL;
    if (app->default_model[0] && (!f || strstr(app->default_model, f))) v->rows[v->n_rows++] = app->default_model;
    for (size_t i = 0; i < app->recent.n; i++) {
        if (!strcmp(app->recent.path[i], app->default_model)) continue;
        if (f && !strstr(app->recent.path[i], f)) continue;
        v->rows[v->n_rows++] = app->recent.path[i];
    }
    v->rows[v->n_rows++] = NULL;
    if (v->sel >= v->n_rows) v->sel = v->n_rows - 1;
}

static void kv(const qn_theme *t, int y, int x, int w, const char *k, const char *val)
{
    qn_w_text(t, y, x, 12, QN_TH_DIM, k);
    qn_w_text(t, y, x + 12, w - 12, QN_TH_NORMAL, val);
}

static void draw_info(const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_model_info *i = app->info;
    if (app->info_worker) qn_w_text(t, in.y + in.h - 1, in.x + 1, in.w - 2, QN_TH_WARN, "reading the model...");
    if (!i) {
        qn_w_text(t, in.y, in.x + 1, in.w - 2, QN_TH_DIM, "No model yet: Enter on a row, or o to browse.");
        return;
    }
    const qn_config *c = &i->cfg;
    char buf[256], a[32], b[32];
    int y = in.y, x = in.x + 1, w = in.w - 2;
    qn_w_text(t, y++, x, w, QN_TH_GOOD, qn_app_basename(i->path));
    kv(t, y++, x, w, "path", i->path);
    kv(t, y++, x, w, "format", i->format);
    kv(t, y++, x, w, "arch", c->arch);
    qn_text_count(i->n_params, a, sizeof a);
    kv(t, y++, x, w, "parameters", a);
    snprintf(buf, sizeof buf, "%s%s%s", i->dtype, i->quantized ? "  quantized: " : "", i->quantized ? i->quant_method : "");
    kv(t, y++, x, w, "dtype", buf);
    qn_text_bytes(i->bytes, a, sizeof a);
    snprintf(buf, sizeof buf, "%s in %zu file%s, %zu tensors", a, i->n_files, i->n_files == 1 ? "" : "s", i->n_tensors);
    kv(t, y++, x, w, "on disk", buf);
    qn_text_bytes((uint64_t)i->n_params * 2, b, sizeof b);
    kv(t, y++, x, w, "fp16", b);
    y++;
    snprintf(buf, sizeof buf, "%d layers, hidden %d, ffn %d", c->n_layers, c->dim, c->hidden_dim);
    kv(t, y++, x, w, "shape", buf);
    snprintf(buf, sizeof buf, "%d query / %d kv heads of %d", c->n_heads, c->n_kv_heads, c->head_dim);
    kv(t, y++, x, w, "attention", buf);
    snprintf(buf, sizeof buf, "vocab %d, context %d, rope theta %g, tied %s", c->vocab_size, c->max_seq_len,
             (double)c->rope_theta, c->tie_embeddings ? "yes" : "no");
    kv(t, y++, x, w, "", buf);
    y++;
    if (y < in.y + in.h - 1)
        qn_w_text(t, y, x, w, QN_TH_DIM, "2 or Enter: choose a method and budget for it");
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    models_view *v = s->priv;
    const qn_theme *t = &app->theme;
    build_rows(v, app);
    int lw = area.w * 2 / 5;
    if (lw < 28) lw = area.w < 60 ? area.w : 28;
    qn_box left = qn_w_frame(t, (qn_box){ area.y, area.x, area.h, lw }, "Models", true);
    int rows = left.h - (v->filtering || v->filter.len ? 1 : 0);
    v->list = (qn_box){ left.y, left.x, rows, left.w };
    qn_w_scroll(&v->top, v->sel, v->n_rows, rows);
    for (int r = 0; r < rows && v->top + (size_t)r < v->n_rows; r++) {
        size_t i = v->top + (size_t)r;
        const char *p = v->rows[i];
        bool sel = i == v->sel, current = p && app->info && !strcmp(p, app->info->path);
        qn_theme_role role = sel ? QN_TH_SELECTED : p ? QN_TH_NORMAL : QN_TH_BORDER_FOCUS;
        if (sel) qn_w_fill(t, left.y + r, left.x, left.w, role);
        char line[300];
        if (!p) snprintf(line, sizeof line, "%s Browse for a model%s", t->g.right, t->g.ellipsis);
        else snprintf(line, sizeof line, "%s %s%s", current ? t->g.bullet : " ", qn_app_basename(p),
                      p == app->default_model ? "  (default)" : "");
        qn_w_text(t, left.y + r, left.x, left.w, role, line);
    }
    if (v->filtering || v->filter.len) {
        qn_w_text(t, left.y + left.h - 1, left.x, 2, QN_TH_HEADER, "/");
        qn_w_lineedit(t, left.y + left.h - 1, left.x + 1, left.w - 1, &v->filter, v->filtering);
    }
    if (area.w - lw >= 20) {
        qn_box right = qn_w_frame(t, (qn_box){ area.y, area.x + lw, area.h, area.w - lw }, "Current model", false);
        draw_info(app, right);
    }
}

static void open_row(models_view *v, qn_app *app)
{
    if (v->sel >= v->n_rows) return;
    const char *p = v->rows[v->sel];
    if (!p) { app->browser = qn_browser_create(app->info ? app->info->path : "."); return; }
    if (app->info && !strcmp(p, app->info->path)) { qn_app_switch(app, QN_SCR_BUDGET); return; }
    qn_app_open_model(app, p, true);
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    models_view *v = s->priv;
    build_rows(v, app);
    int page = v->list.h > 1 ? v->list.h - 1 : 1;
    switch (act) {
    case QN_ACT_TEXT: {
        qn_le_result r = qn_lineedit_key(&v->filter, key);
        if (r == QN_LE_CANCEL) qn_lineedit_set(&v->filter, "");
        if (r == QN_LE_DONE || r == QN_LE_CANCEL) v->filtering = false;
        v->sel = 0;
        return QN_UI_REDRAW;
    }
    case QN_ACT_FILTER: v->filtering = true; return QN_UI_REDRAW;
    case QN_ACT_BACK:
        if (!v->filter.len) return QN_UI_IGNORED;
        qn_lineedit_set(&v->filter, "");
        return QN_UI_REDRAW;
    case QN_ACT_UP: qn_w_move(&v->sel, -1, v->n_rows); return QN_UI_REDRAW;
    case QN_ACT_DOWN: qn_w_move(&v->sel, 1, v->n_rows); return QN_UI_REDRAW;
    case QN_ACT_PAGE_UP: qn_w_move(&v->sel, -page, v->n_rows); return QN_UI_REDRAW;
    case QN_ACT_PAGE_DOWN: qn_w_move(&v->sel, page, v->n_rows); return QN_UI_REDRAW;
    case QN_ACT_HOME: v->sel = 0; return QN_UI_REDRAW;
    case QN_ACT_END: v->sel = v->n_rows - 1; return QN_UI_REDRAW;
    case QN_ACT_OPEN: case QN_ACT_RIGHT: open_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_BROWSE: app->browser = qn_browser_create(app->info ? app->info->path : "."); return QN_UI_REDRAW;
    case QN_ACT_FORGET: {
        const char *p = v->sel < v->n_rows ? v->rows[v->sel] : NULL;
        for (size_t i = 0; p && i < app->recent.n; i++)
            if (app->recent.path[i] == p) {
                qn_err e = { 0 };
                if (qn_recent_remove(&app->recent, i, &e)) qn_app_message(app, true, "Cannot save", "%s", e.msg);
                break;
            }
        return QN_UI_REDRAW;
    }
    default: return QN_UI_IGNORED;
    }
}

static qn_ui_result on_click(qn_screen *s, qn_app *app, int y, int x)
{
    models_view *v = s->priv;
    (void)app;
    return qn_w_list_click(v->list, v->top, v->n_rows, y, x, &v->sel) ? QN_UI_REDRAW : QN_UI_IGNORED;
}

static bool editing(qn_screen *s)
{
    return ((models_view *)s->priv)->filtering;
}

static void screen_free(qn_screen *s)
{
    free(s->priv);
    free(s);
}

qn_screen *qn_screen_models_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    models_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    *s = (qn_screen){ .title = "Models", .draw = draw, .on_action = on_action, .on_click = on_click,
                      .editing = editing, .free = screen_free, .priv = v };
    return s;
}
