/* screen_inspect.c: the Inspect screen. Left, the run's layers (filter with
   `/`); right, the selected layer's picture: original weights, the error
   (W - W_hat)^2 diag(H) the quantizer minimised [GPTQ, SpQR], SpQR's outliers,
   AQLM codebook usage or the Hessian diagonal, from the data a worker loads
   (jobs.h). Enter shows the picture full screen; in the picture, arrows move a
   cursor that reads the value under it, + and - zoom on it (the heatmap is
   block-reduced, so nothing is lost at any zoom), x writes it as a titled PNG. */
#include "engine/fileio.h"
#include "tui/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/picture.h"
#include "tui/text.h"

typedef struct {
    size_t      top;
    bool        pic_focus, full;
    bool        filtering;
    qn_lineedit filter;
    size_t     *rows;            /* (n_rows) run.layers indexes passing the filter */
    size_t      n_rows, cap_rows;
    size_t      row;             /* cursor in rows */
    qn_pic_kind kind;
    qn_region   region;
    const qn_layer_data *region_of;  /* the data region belongs to */
    int         cx, cy;          /* cursor cell in the picture */
    qn_box      list, pic;
    qn_cellgrid grid;            /* cache */
    struct { const qn_layer_data *d; qn_pic_kind kind; qn_region g; int w, h; bool ok; } cached;
} inspect_view;

static void build_rows(inspect_view *v, const qn_app *app)
{
    const qn_run *r = &app->run;
    if (v->cap_rows < r->n_layers) {
        size_t *p = realloc(v->rows, r->n_layers * sizeof *p);
        if (!p) return;
        v->rows = p;
        v->cap_rows = r->n_layers;
    }
    v->n_rows = 0;
    for (size_t i = 0; i < r->n_layers; i++)
        if (!v->filter.len || strstr(r->layers[i]->name, v->filter.buf)) v->rows[v->n_rows++] = i;
    if (v->row >= v->n_rows) v->row = v->n_rows ? v->n_rows - 1 : 0;
}

/* Keeps the list cursor on the layer the app has selected (Enter on Run). */
static void sync_row(inspect_view *v, const qn_app *app)
{
    for (size_t i = 0; i < v->n_rows; i++)
        if (v->rows[i] == app->insp.sel) { v->row = i; return; }
}

static bool has_kind(const qn_layer_data *d, qn_pic_kind k)
{
    switch (k) {
    case QN_PIC_WEIGHTS: return d->W;
    case QN_PIC_ERROR: return d->W && d->W_hat;
    case QN_PIC_OUTLIERS: return d->mask;
    case QN_PIC_CODEBOOK: return d->usage;
    default: return d->hdiag;
    }
}

static void reset_region(inspect_view *v, const qn_layer_data *d)
{
    v->region = qn_layer_data_extent(d, v->kind);
    v->region_of = d;
}

static void draw_list(inspect_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    int rows = in.h - (v->filtering || v->filter.len ? 1 : 0);
    v->list = (qn_box){ in.y, in.x, rows, in.w };
    qn_w_scroll(&v->top, v->row, v->n_rows, rows);
    for (int r = 0; r < rows && v->top + (size_t)r < v->n_rows; r++) {
        size_t k = v->top + (size_t)r;
        const qn_ui_layer *l = app->run.layers[v->rows[k]];
        bool sel = k == v->row;
        qn_theme_role role = sel ? (v->pic_focus ? QN_TH_SELECTED_DIM : QN_TH_SELECTED) : QN_TH_NORMAL;
        if (sel) qn_w_fill(t, in.y + r, in.x, in.w, role);
        char line[64];
        snprintf(line, sizeof line, "%2d %-9.9s %8.2e", l->block, l->sublayer, l->rel_err);
        qn_w_text(t, in.y + r, in.x, in.w, role, line);
    }
    if (!v->n_rows)
        qn_w_text(t, in.y, in.x, in.w, QN_TH_DIM, app->run.n_layers ? "(no match)" : "(no layers: run first)");
    if (v->filtering || v->filter.len) {
        qn_w_text(t, in.y + in.h - 1, in.x, 1, QN_TH_HEADER, "/");
        qn_w_lineedit(t, in.y + in.h - 1, in.x + 1, in.w - 1, &v->filter, v->filtering);
    }
}

/* The matrix position under a picture cell. */
static void cell_to_matrix(const inspect_view *v, int cy, int cx, size_t *r, size_t *c)
{
    int w = v->pic.w > 0 ? v->pic.w : 1, h = v->pic.h > 0 ? v->pic.h : 1;
    *r = v->region.r0 + (size_t)cy * v->region.nr / (size_t)h;
    *c = v->region.c0 + (size_t)cx * v->region.nc / (size_t)w;
}

static int by_count_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Each codebook's usage, most used first (log), as the papers plot it. */
static void draw_codebooks(const qn_theme *t, const qn_layer_data *d, qn_box b)
{
    float *u = malloc(d->K * sizeof *u);
    if (!u || !d->M) { free(u); return; }
    int h = b.h / (int)d->M;
    for (size_t m = 0; m < d->M && h >= 2; m++) {
        size_t unused = 0;
        for (size_t k = 0; k < d->K; k++) {
            u[k] = (float)d->usage[m * d->K + k];
            unused += d->usage[m * d->K + k] == 0;
        }
        qsort(u, d->K, sizeof *u, by_count_desc);
        int y = b.y + (int)m * h;
        qn_w_textf(t, y, b.x, b.w, QN_TH_DIM, "codebook %zu: usage of %zu codewords, most used first (log); %zu unused", m,
                   d->K, unused);
        qn_picture_columns(t, y + 1, b.x, h - 1, b.w, u, d->K, true);
    }
    free(u);
}

static void draw_picture(inspect_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_layer_data *d = app->insp.data;
    if (!app->run.n_layers) {
        qn_w_text(t, in.y, in.x + 1, in.w - 2, QN_TH_DIM, "Nothing to inspect yet: start a run (Budget, s).");
        return;
    }
    bool stale = !d || (v->n_rows && strcmp(d->name, app->run.layers[v->rows[v->row]]->name) != 0);
    if (!d || (stale && app->insp.loader)) {
        qn_w_text(t, in.y, in.x + 1, in.w - 2, QN_TH_WARN, app->insp.loader ? "loading the layer..." : "Enter on a layer loads it");
        return;
    }
    if (v->region_of != d) reset_region(v, d);
    char head[256];
    int x = in.x;
    snprintf(head, sizeof head, "%s  %zux%zu  err %.3g  %.3f bits  ", d->title, d->d_out, d->d_in, d->rel_err, d->bits);
    qn_w_text(t, in.y, x, in.w, QN_TH_HEADER, head);
    for (int k = 0; k < QN_PIC_COUNT && x < in.x + in.w; k++) {
        char tab[24];
        snprintf(tab, sizeof tab, " %s ", qn_pic_name((qn_pic_kind)k));
        x += qn_w_text(t, in.y + 1, x, in.x + in.w - x, k == (int)v->kind ? QN_TH_TAB : has_kind(d, k) ? QN_TH_NORMAL : QN_TH_DIM, tab);
    }
    int ph = in.h - 4, pw = in.w;
    v->pic = (qn_box){ in.y + 2, in.x, ph > 0 ? ph : 0, pw };
    if (ph < 1) return;
    if (!has_kind(d, v->kind)) {
        qn_w_textf(t, in.y + 3, in.x + 1, in.w - 2, QN_TH_DIM, "no %s data for this layer%s", qn_pic_name(v->kind),
                   v->kind == QN_PIC_OUTLIERS ? " (SpQR runs have outliers)" : v->kind == QN_PIC_CODEBOOK ? " (AQLM runs have codebooks)" : "");
        if (d->note[0]) qn_w_text(t, in.y + 4, in.x + 1, in.w - 2, QN_TH_DIM, d->note);
        return;
    }
    if (v->kind == QN_PIC_HESSIAN) {
        float *vals = d->hdiag + v->region.c0;
        qn_picture_columns(t, v->pic.y, v->pic.x, ph, pw, vals, v->region.nc, true);
    } else if (v->kind == QN_PIC_CODEBOOK) {
        draw_codebooks(t, d, v->pic);
    } else {
        bool hit = v->cached.ok && v->cached.d == d && v->cached.kind == v->kind && v->cached.w == pw &&
                   v->cached.h == ph && !memcmp(&v->cached.g, &v->region, sizeof v->region);
        if (!hit) {
            size_t rows, cols;
            float *vals = qn_layer_data_values(d, v->kind, v->region, &rows, &cols);
            qn_err e;
            v->cached.ok = vals && qn_picture_cells(&v->grid, vals, rows, cols, v->kind, pw, ph, t, &e) == QN_OK;
            free(vals);
            v->cached.d = d;
            v->cached.kind = v->kind;
            v->cached.g = v->region;
            v->cached.w = pw;
            v->cached.h = ph;
        }
        if (v->cached.ok) qn_w_cells(t, &v->grid, v->pic.y, v->pic.x, ph, pw);
    }
    if (v->cx >= pw) v->cx = pw - 1;
    if (v->cy >= ph) v->cy = ph - 1;
    size_t r, c;
    cell_to_matrix(v, v->cy, v->cx, &r, &c);
    if (v->pic_focus) {
        attrset(A_REVERSE | A_BOLD);
        mvaddstr(v->pic.y + v->cy, v->pic.x + v->cx, "+");
        attrset(A_NORMAL);
    }
    qn_region at = { v->kind == QN_PIC_HESSIAN ? 0 : r, c, 1, 1 };
    size_t one_r, one_c;
    float *val = qn_layer_data_values(d, v->kind, at, &one_r, &one_c);
    qn_region ext = qn_layer_data_extent(d, v->kind);
    qn_w_textf(t, in.y + in.h - 2, in.x, in.w, QN_TH_NORMAL, "rows %zu-%zu cols %zu-%zu of %zux%zu  zoom %.0fx  at (%zu,%zu) = %.4g",
               v->region.r0, v->region.r0 + v->region.nr - 1, v->region.c0, v->region.c0 + v->region.nc - 1, ext.nr,
               ext.nc, (double)ext.nc / (double)v->region.nc, at.r0, c, val ? (double)*val : NAN);
    free(val);
    qn_w_text(t, in.y + in.h - 1, in.x, in.w, QN_TH_DIM,
              d->note[0] ? d->note : "Tab: cursor in the picture  +/-: zoom  0: whole  x: PNG  v w e o b H: kind");
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    inspect_view *v = s->priv;
    const qn_theme *t = &app->theme;
    build_rows(v, app);
    if (!v->full) {
        int lw = area.w >= 100 ? 30 : 26;
        qn_box lb = qn_w_frame(t, (qn_box){ area.y, area.x, area.h, lw }, "Layers", !v->pic_focus);
        draw_list(v, app, lb);
        qn_box pb = qn_w_frame(t, (qn_box){ area.y, area.x + lw, area.h, area.w - lw }, "Picture", v->pic_focus);
        draw_picture(v, app, pb);
    } else {
        v->list = (qn_box){ 0, 0, 0, 0 };
        draw_picture(v, app, area);
    }
}

static void select_row(inspect_view *v, qn_app *app)
{
    if (v->row < v->n_rows && v->rows[v->row] != app->insp.sel) qn_app_inspect_layer(app, v->rows[v->row]);
    else if (v->row < v->n_rows && !app->insp.data && !app->insp.loader) qn_app_inspect_layer(app, v->rows[v->row]);
}

static void zoom(inspect_view *v, const qn_layer_data *d, double f)
{
    if (!d) return;
    qn_region ext = qn_layer_data_extent(d, v->kind);
    size_t r, c;
    cell_to_matrix(v, v->cy, v->cx, &r, &c);
    size_t nr = (size_t)fmax(1, fmin((double)ext.nr, round((double)v->region.nr * f)));
    size_t nc = (size_t)fmax(1, fmin((double)ext.nc, round((double)v->region.nc * f)));
    long r0 = (long)r - (long)nr / 2, c0 = (long)c - (long)nc / 2;
    if (r0 + (long)nr > (long)ext.nr) r0 = (long)ext.nr - (long)nr;
    if (c0 + (long)nc > (long)ext.nc) c0 = (long)ext.nc - (long)nc;
    v->region = (qn_region){ r0 < 0 ? 0 : (size_t)r0, c0 < 0 ? 0 : (size_t)c0, nr, nc };
    v->cx = v->pic.w / 2;
    v->cy = v->pic.h / 2;
}

static void set_kind(inspect_view *v, const qn_app *app, qn_pic_kind k)
{
    v->kind = k;
    if (app->insp.data) reset_region(v, app->insp.data);
}

enum { CMD_EXPORT = QN_CMD_SCREEN_BASE };

static void ask_export(inspect_view *v, qn_app *app)
{
    const qn_layer_data *d = app->insp.data;
    if (!d || !has_kind(d, v->kind)) { qn_app_message(app, false, "Nothing to export", "This layer has no such picture."); return; }
    char name[1024], sub[64];
    const char *dot = strrchr(d->name, '.');
    snprintf(sub, sizeof sub, "%.40s", dot ? dot + 1 : d->name);
    /* into the run folder by default, beside the run it shows */
    bool in_run = app->run.out_dir[0] && qn_path_is_dir(app->run.out_dir);
    snprintf(name, sizeof name, "%.800s%s%.120s-b%d-%s-%s.png", in_run ? app->run.out_dir : "", in_run ? "/" : "",
             qn_app_basename(app->run.model), d->block, sub, qn_pic_name(v->kind));
    qn_app_input(app, QN_SCR_INSPECT, CMD_EXPORT, "Export PNG", "File name (Enter writes it):", name);
}

static void on_dialog(qn_screen *s, qn_app *app, int cmd, const char *input)
{
    inspect_view *v = s->priv;
    if (cmd == CMD_EXPORT && input[0]) qn_app_export_picture(app, input, v->kind, v->region);
}

static qn_ui_result pic_move(inspect_view *v, int dy, int dx)
{
    v->cy += dy;
    v->cx += dx;
    if (v->cy < 0) v->cy = 0;
    if (v->cx < 0) v->cx = 0;
    if (v->cy >= v->pic.h) v->cy = v->pic.h - 1;
    if (v->cx >= v->pic.w) v->cx = v->pic.w - 1;
    return QN_UI_REDRAW;
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    inspect_view *v = s->priv;
    build_rows(v, app);
    const qn_layer_data *d = app->insp.data;
    int page = v->list.h > 1 ? v->list.h - 1 : 1;
    if (act == QN_ACT_TEXT) {
        qn_le_result r = qn_lineedit_key(&v->filter, key);
        if (r == QN_LE_CANCEL) qn_lineedit_set(&v->filter, "");
        if (r == QN_LE_DONE || r == QN_LE_CANCEL) v->filtering = false;
        v->row = 0;
        return QN_UI_REDRAW;
    }
    bool pic = v->pic_focus || v->full;
    switch (act) {
    case QN_ACT_FILTER: v->filtering = true; v->pic_focus = false; v->full = false; return QN_UI_REDRAW;
    case QN_ACT_NEXT_PANE: case QN_ACT_PREV_PANE: v->pic_focus = !v->pic_focus; return QN_UI_REDRAW;
    case QN_ACT_FULLSCREEN: case QN_ACT_OPEN:
        if (!v->full && !v->pic_focus) select_row(v, app);
        v->full = !v->full;
        if (v->full) v->pic_focus = true;
        return QN_UI_REDRAW;
    case QN_ACT_BACK:
        if (v->full) { v->full = false; return QN_UI_REDRAW; }
        if (v->filter.len) { qn_lineedit_set(&v->filter, ""); return QN_UI_REDRAW; }
        if (v->pic_focus) { v->pic_focus = false; return QN_UI_REDRAW; }
        return QN_UI_IGNORED;
    case QN_ACT_UP: if (pic) return pic_move(v, -1, 0); qn_w_move(&v->row, -1, v->n_rows); select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_DOWN: if (pic) return pic_move(v, 1, 0); qn_w_move(&v->row, 1, v->n_rows); select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_LEFT: if (pic) return pic_move(v, 0, -1); return QN_UI_HANDLED;
    case QN_ACT_RIGHT: if (pic) return pic_move(v, 0, 1); v->pic_focus = true; select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_PAGE_UP: if (pic) return pic_move(v, -v->pic.h / 4, 0); qn_w_move(&v->row, -page, v->n_rows); select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_PAGE_DOWN: if (pic) return pic_move(v, v->pic.h / 4, 0); qn_w_move(&v->row, page, v->n_rows); select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_HOME: if (pic) return pic_move(v, -v->pic.h, -v->pic.w); v->row = 0; select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_END: if (pic) return pic_move(v, v->pic.h, v->pic.w); qn_w_move(&v->row, (long)v->n_rows, v->n_rows); select_row(v, app); return QN_UI_REDRAW;
    case QN_ACT_PIC_NEXT: set_kind(v, app, (qn_pic_kind)((v->kind + 1) % QN_PIC_COUNT)); return QN_UI_REDRAW;
    case QN_ACT_PIC_WEIGHTS: set_kind(v, app, QN_PIC_WEIGHTS); return QN_UI_REDRAW;
    case QN_ACT_PIC_ERROR: set_kind(v, app, QN_PIC_ERROR); return QN_UI_REDRAW;
    case QN_ACT_PIC_OUTLIERS: set_kind(v, app, QN_PIC_OUTLIERS); return QN_UI_REDRAW;
    case QN_ACT_PIC_CODEBOOK: set_kind(v, app, QN_PIC_CODEBOOK); return QN_UI_REDRAW;
    case QN_ACT_PIC_HESSIAN: set_kind(v, app, QN_PIC_HESSIAN); return QN_UI_REDRAW;
    case QN_ACT_ZOOM_IN: zoom(v, d, 0.5); return QN_UI_REDRAW;
    case QN_ACT_ZOOM_OUT: zoom(v, d, 2.0); return QN_UI_REDRAW;
    case QN_ACT_ZOOM_RESET: if (d) reset_region(v, d); return QN_UI_REDRAW;
    case QN_ACT_EXPORT: ask_export(v, app); return QN_UI_REDRAW;
    default: return QN_UI_IGNORED;
    }
}

static qn_ui_result on_click(qn_screen *s, qn_app *app, int y, int x)
{
    inspect_view *v = s->priv;
    qn_box b = v->list;
    if (y >= b.y && y < b.y + b.h && x >= b.x && x < b.x + b.w) {
        size_t row = v->top + (size_t)(y - b.y);
        if (row < v->n_rows) { v->row = row; v->pic_focus = false; select_row(v, app); }
        return QN_UI_REDRAW;
    }
    b = v->pic;
    if (y >= b.y && y < b.y + b.h && x >= b.x && x < b.x + b.w) {
        v->pic_focus = true;
        v->cy = y - b.y;
        v->cx = x - b.x;
        return QN_UI_REDRAW;
    }
    return QN_UI_IGNORED;
}

static bool editing(qn_screen *s)
{
    return ((inspect_view *)s->priv)->filtering;
}

static void screen_free(qn_screen *s)
{
    inspect_view *v = s->priv;
    qn_cellgrid_done(&v->grid);
    free(v->rows);
    free(v);
    free(s);
}

/* Drawing starts from the layer the app selected (Run's Enter): sync first. */
static void draw_synced(qn_screen *s, qn_app *app, qn_box area)
{
    inspect_view *v = s->priv;
    build_rows(v, app);
    if (!v->filter.len) sync_row(v, app);
    if (!app->insp.data && !app->insp.loader && app->run.n_layers) qn_app_inspect_layer(app, v->n_rows ? v->rows[v->row] : 0);
    draw(s, app, area);
}

qn_screen *qn_screen_inspect_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    inspect_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    *s = (qn_screen){ .title = "Inspect", .draw = draw_synced, .on_action = on_action, .on_click = on_click,
                      .on_dialog = on_dialog, .editing = editing, .free = screen_free, .priv = v };
    return s;
}
