/* screen_run.c: the Run screen, live while the worker quantizes. On top the
   run's state (method, model, output folder), its progress over all linears
   with elapsed time and ETA, and the current stage's progress. Below, the
   table of finished layers (block, sublayer, relative error as a number and a
   log-scale bar, bits, outliers, seconds) filling in as LAYER_DONE events
   arrive; beside it the selected layer's picture: its Hessian diagonal as a
   column chart and, when kept, its quantized weights as a heatmap; AQLM runs
   add the convergence of the current layer. At the bottom, the log. */
#include "tui/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/speed.h"
#include "tui/picture.h"
#include "tui/text.h"

typedef enum { PANE_TABLE = 0, PANE_LOG, PANE_COUNT } pane;

typedef struct {
    size_t      sel, top;
    bool        follow;          /* the cursor stays on the newest layer */
    pane        focus;
    size_t      log_back;        /* lines scrolled back in the log */
    qn_box      table;           /* rows of the table as last drawn */
    qn_cellgrid grid;            /* cached weight heatmap */
    size_t      grid_layer;
    int         grid_w, grid_h;
    const void *grid_src;
} run_view;

static const char *phase_name(const qn_app *app)
{
    const qn_run *r = &app->run;
    switch (r->phase) {
    case QN_RUN_IDLE: return "no run yet";
    case QN_RUN_RUNNING:
        return r->cancelling ? "cancelling" : r->worker && qn_worker_paused(r->worker) ? "paused" : "running";
    case QN_RUN_DONE: return "done";
    case QN_RUN_FAILED: return "failed";
    default: return "cancelled";
    }
}

static qn_theme_role err_role(double e)
{
    return e < 0.01 ? QN_TH_GOOD : e < 0.05 ? QN_TH_WARN : QN_TH_BAD;
}

static void draw_header(const qn_app *app, qn_box a)
{
    const qn_theme *t = &app->theme;
    const qn_run *r = &app->run;
    if (r->phase == QN_RUN_IDLE) {
        qn_w_text(t, a.y, a.x + 1, a.w - 2, QN_TH_NORMAL, "No run yet. Choose a method on the Budget screen (2), then s.");
        qn_w_text(t, a.y + 1, a.x + 1, a.w - 2, QN_TH_DIM, "S starts paused (. runs one layer at a time); o opens a run folder.");
        return;
    }
    qn_theme_role pr = r->phase == QN_RUN_DONE ? QN_TH_GOOD : r->phase == QN_RUN_FAILED ? QN_TH_BAD
                     : r->phase == QN_RUN_CANCELLED ? QN_TH_WARN : QN_TH_TAB;
    char buf[QN_PATH_CAP + 256];
    int x = a.x + 1;
    snprintf(buf, sizeof buf, " %s ", phase_name(app));
    x += qn_w_text(t, a.y, x, a.w - 2, pr, buf);
    snprintf(buf, sizeof buf, " %s on %s %s %s", r->label, qn_app_basename(r->model), t->g.right, r->out_dir);
    qn_w_text(t, a.y, x, a.x + a.w - 1 - x, QN_TH_NORMAL, buf);

    size_t total = (size_t)(r->n_blocks > 0 ? r->n_blocks : 0) * 7, done = r->n_layers + (size_t)r->first_block * 7;
    double now = r->phase == QN_RUN_RUNNING ? qn_now() : r->t_end;
    /* working time only (pauses excluded); the ETA counts down between layers */
    double elapsed = r->t_start > 0 ? qn_app_run_active(r, now) : now - r->t_start;
    char el[24], eta[24] = "-";
    qn_text_duration(elapsed, el, sizeof el);
    if (r->n_layers > 0 && total > done && r->phase == QN_RUN_RUNNING) {
        double at_last = qn_app_run_active(r, r->t_last_layer), per = at_last / (double)r->n_layers;
        double left = per * (double)(total - done) - (elapsed - at_last);
        qn_text_duration(left > 0 ? left : 0, eta, sizeof eta);
    }
    double bits = 0, params = 0;
    for (size_t i = 0; i < r->n_layers; i++) {
        double p = (double)(r->layers[i]->d_out * r->layers[i]->d_in);
        bits += r->layers[i]->bits * p;
        params += p;
    }
    int n = snprintf(buf, sizeof buf, "%zu/%zu layers  elapsed %s  ETA %s  bits %.3f", done, total, el, eta,
                     params > 0 ? bits / params : 0.0);
    if (r->projected_bits > 0 && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, " (projected %.3f)", r->projected_bits);
    qn_w_text(t, a.y + 1, a.x + 1, a.w - 2, QN_TH_NORMAL, buf);
    char label[32];
    snprintf(label, sizeof label, "%.0f%%", total ? 100.0 * (double)done / (double)total : 0.0);
    qn_w_meter(t, a.y + 2, a.x + 1, a.w - 2, total ? (double)done / (double)total : 0, label);
    if (r->phase == QN_RUN_RUNNING) {
        if (r->block >= 0) snprintf(buf, sizeof buf, "block %d  %s", r->block, r->stage[0] ? r->stage : "starting");
        else snprintf(buf, sizeof buf, "%s", r->stage[0] ? r->stage : "starting");
        int used = qn_w_text(t, a.y + 3, a.x + 1, 30, QN_TH_DIM, buf);
        label[0] = 0;
        if (r->total > 0) snprintf(label, sizeof label, "%lld/%lld", (long long)r->done, (long long)r->total);
        int mx = a.x + 2 + (used > 24 ? used : 24);
        if (a.x + a.w - 1 - mx > 8)
            qn_w_meter(t, a.y + 3, mx, a.x + a.w - 1 - mx, r->total > 0 ? (double)r->done / (double)r->total : 0, label);
    } else if (r->phase == QN_RUN_FAILED) {
        qn_w_text(t, a.y + 3, a.x + 1, a.w - 2, QN_TH_BAD, r->errmsg);
    } else if (r->phase == QN_RUN_CANCELLED) {
        qn_w_text(t, a.y + 3, a.x + 1, a.w - 2, QN_TH_WARN, "cancelled: r resumes from the last finished block, s starts anew");
    } else if (r->phase == QN_RUN_DONE) {
        qn_w_text(t, a.y + 3, a.x + 1, a.w - 2, QN_TH_GOOD, "finished: 4 inspects the layers, 5 evaluates the model");
    }
}

static void draw_table(run_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_run *r = &app->run;
    int bar_w = in.w - 48;
    char head[160];
    snprintf(head, sizeof head, "%-3s %-9s %9s %-*s %6s %7s %6s", "blk", "sublayer", "rel.err", bar_w > 0 ? bar_w : 0, "",
             "bits", "outl", "sec");
    qn_w_fill(t, in.y, in.x, in.w, QN_TH_HEADER);
    qn_w_text(t, in.y, in.x, in.w, QN_TH_HEADER, head);
    int rows = in.h - 1;
    v->table = (qn_box){ in.y + 1, in.x, rows, in.w };
    if (v->follow && r->n_layers) v->sel = r->n_layers - 1;
    qn_w_scroll(&v->top, v->sel, r->n_layers, rows);
    for (int i = 0; i < rows && v->top + (size_t)i < r->n_layers; i++) {
        size_t k = v->top + (size_t)i;
        const qn_ui_layer *l = r->layers[k];
        int y = in.y + 1 + i;
        bool sel = k == v->sel;
        qn_theme_role role = sel ? (v->focus == PANE_TABLE ? QN_TH_SELECTED : QN_TH_SELECTED_DIM) : QN_TH_NORMAL;
        if (sel) qn_w_fill(t, y, in.x, in.w, role);
        char left[64], right[64];
        snprintf(left, sizeof left, "%3d %-9.9s %9.3e", l->block, l->sublayer, l->rel_err);
        qn_w_text(t, y, in.x, 24, role, left);
        if (bar_w > 0) {
            double frac = l->rel_err > 0 ? (log10(l->rel_err) + 4) / 4 : 0;
            qn_w_bar(t, y, in.x + 24, bar_w, frac, err_role(l->rel_err));
        }
        snprintf(right, sizeof right, " %6.3f %7zu %6.2f", l->bits, l->n_outliers, l->seconds);
        qn_w_text(t, y, in.x + 24 + (bar_w > 0 ? bar_w : 0), in.w - 24 - (bar_w > 0 ? bar_w : 0), role, right);
    }
    if (!r->n_layers && r->phase == QN_RUN_RUNNING)
        qn_w_text(t, in.y + 1, in.x + 1, in.w - 2, QN_TH_DIM, "calibrating: the first layer appears when it is done");
}

static void draw_picture(run_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_run *r = &app->run;
    if (!r->n_layers || in.h < 3 || in.w < 8) {
        qn_w_text(t, in.y, in.x, in.w, QN_TH_DIM, "(no layer yet)");
        return;
    }
    size_t k = v->sel < r->n_layers ? v->sel : r->n_layers - 1;
    const qn_ui_layer *l = r->layers[k];
    int y = in.y, h = in.h;
    qn_w_textf(t, y++, in.x, in.w, QN_TH_HEADER, "%d.%s %zux%zu", l->block, l->sublayer, l->d_out, l->d_in);
    h--;
    if (r->n_conv > 0 && h > 4) {
        qn_w_textf(t, y++, in.x, in.w, QN_TH_DIM, "AQLM now %.3g", r->conv[r->n_conv - 1]);
        qn_w_sparkline(t, y++, in.x, in.w, r->conv, r->n_conv, true);
        h -= 2;
    }
    int hh = l->W_hat ? (h - 2) / 3 : h - 1;
    if (hh < 1) hh = 1;
    if (l->hessian_diag) {
        qn_w_text(t, y++, in.x, in.w, QN_TH_DIM, "hessian diag (log)");
        qn_picture_columns(t, y, in.x, hh, in.w, l->hessian_diag, l->d_in, true);
        y += hh;
        h -= hh + 1;
    }
    if (l->W_hat && h > 2) {
        qn_w_text(t, y++, in.x, in.w, QN_TH_DIM, "quantized weights");
        h--;
        if (v->grid_src != l->W_hat || v->grid_w != in.w || v->grid_h != h) {
            qn_err e;
            if (qn_picture_cells(&v->grid, l->W_hat, l->d_out, l->d_in, QN_PIC_WEIGHTS, in.w, h, t, &e) == QN_OK) {
                v->grid_src = l->W_hat;
                v->grid_w = in.w;
                v->grid_h = h;
            } else {
                v->grid_src = NULL;
            }
        }
        if (v->grid_src) qn_w_cells(t, &v->grid, y, in.x, h, in.w);
    }
}

static void draw_log(const run_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_log *log = &app->log;
    size_t kept = log->n < QN_LOG_LINES ? log->n : QN_LOG_LINES;
    size_t back = v->log_back < kept ? v->log_back : kept;
    for (int r = 0; r < in.h; r++) {
        long idx = (long)log->n - (long)back - in.h + r;
        if (idx < 0 || idx < (long)log->n - (long)kept) continue;
        size_t i = (size_t)idx % QN_LOG_LINES;
        static const qn_theme_role roles[] = { QN_TH_NORMAL, QN_TH_GOOD, QN_TH_WARN, QN_TH_BAD };
        qn_w_text(t, in.y + r, in.x, in.w, roles[log->level[i]], log->line[i]);
    }
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    run_view *v = s->priv;
    const qn_theme *t = &app->theme;
    draw_header(app, (qn_box){ area.y, area.x, 4, area.w });
    int log_h = area.h >= 40 ? 10 : area.h >= 30 ? 7 : 5;
    int mid_y = area.y + 4, mid_h = area.h - 4 - log_h;
    if (mid_h < 3) { mid_h = area.h - 4; log_h = 0; }
    int pic_w = area.w >= 120 ? area.w - 76 : area.w >= 80 ? 24 : 0;
    qn_box tb = qn_w_frame(t, (qn_box){ mid_y, area.x, mid_h, area.w - pic_w }, "Layers", v->focus == PANE_TABLE);
    draw_table(v, app, tb);
    if (pic_w) {
        qn_box pb = qn_w_frame(t, (qn_box){ mid_y, area.x + area.w - pic_w, mid_h, pic_w }, "Picture", false);
        draw_picture(v, app, pb);
    }
    if (log_h) {
        qn_box lb = qn_w_frame(t, (qn_box){ mid_y + mid_h, area.x, log_h, area.w }, "Log", v->focus == PANE_LOG);
        draw_log(v, app, lb);
    }
}

static qn_ui_result move_cursor(run_view *v, const qn_app *app, long delta)
{
    if (v->focus == PANE_LOG) {
        long b = (long)v->log_back - delta;
        size_t kept = app->log.n < QN_LOG_LINES ? app->log.n : QN_LOG_LINES;
        v->log_back = b < 0 ? 0 : (size_t)b > kept ? kept : (size_t)b;
        return QN_UI_REDRAW;
    }
    v->follow = false;
    qn_w_move(&v->sel, delta, app->run.n_layers);
    if (app->run.n_layers && v->sel == app->run.n_layers - 1 && delta > 0) v->follow = true;
    return QN_UI_REDRAW;
}

enum { CMD_OPEN_RUN = QN_CMD_SCREEN_BASE };

static void on_dialog(qn_screen *s, qn_app *app, int cmd, const char *input)
{
    run_view *v = s->priv;
    if (cmd == CMD_OPEN_RUN && input[0]) {
        v->follow = false;
        v->sel = v->top = 0;
        qn_app_open_run(app, input);
    }
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    (void)key;
    run_view *v = s->priv;
    int page = v->table.h > 1 ? v->table.h - 1 : 1;
    switch (act) {
    case QN_ACT_START: qn_app_start_run(app, false); v->follow = true; return QN_UI_REDRAW;
    case QN_ACT_START_PAUSED: qn_app_start_run(app, true); v->follow = true; return QN_UI_REDRAW;
    case QN_ACT_PAUSE: qn_app_pause_run(app); return QN_UI_REDRAW;
    case QN_ACT_STEP: qn_app_step_run(app); return QN_UI_REDRAW;
    case QN_ACT_CANCEL:
        if (app->run.worker)
            qn_app_confirm(app, -1, QN_CMD_CANCEL_RUN, "Cancel the run?",
                           "Stop quantizing? Finished blocks stay checkpointed in the output folder.");
        return QN_UI_REDRAW;
    case QN_ACT_FOLLOW: v->follow = true; return QN_UI_REDRAW;
    case QN_ACT_RESUME: qn_app_resume_run(app); v->follow = true; return QN_UI_REDRAW;
    case QN_ACT_OPEN_RUN:
        qn_app_input(app, QN_SCR_RUN, CMD_OPEN_RUN, "Open a run", "Run folder (holding run.jsonl):", app->run.out_dir);
        return QN_UI_REDRAW;
    case QN_ACT_UP: return move_cursor(v, app, -1);
    case QN_ACT_DOWN: return move_cursor(v, app, 1);
    case QN_ACT_PAGE_UP: return move_cursor(v, app, -page);
    case QN_ACT_PAGE_DOWN: return move_cursor(v, app, page);
    case QN_ACT_HOME: return move_cursor(v, app, -(long)app->run.n_layers - (long)QN_LOG_LINES);
    case QN_ACT_END: v->follow = v->focus == PANE_TABLE; return move_cursor(v, app, (long)app->run.n_layers + QN_LOG_LINES);
    case QN_ACT_NEXT_PANE: case QN_ACT_PREV_PANE: v->focus = (pane)((v->focus + 1) % PANE_COUNT); return QN_UI_REDRAW;
    case QN_ACT_OPEN:
        if (!app->run.n_layers) return QN_UI_HANDLED;
        qn_app_inspect_layer(app, v->sel);
        qn_app_switch(app, QN_SCR_INSPECT);
        return QN_UI_REDRAW;
    default: return QN_UI_IGNORED;
    }
}

static qn_ui_result on_click(qn_screen *s, qn_app *app, int y, int x)
{
    run_view *v = s->priv;
    qn_box b = v->table;
    if (y < b.y || y >= b.y + b.h || x < b.x || x >= b.x + b.w) return QN_UI_IGNORED;
    size_t row = v->top + (size_t)(y - b.y);
    if (row < app->run.n_layers) { v->sel = row; v->follow = false; v->focus = PANE_TABLE; }
    return QN_UI_REDRAW;
}

static void screen_free(qn_screen *s)
{
    run_view *v = s->priv;
    qn_cellgrid_done(&v->grid);
    free(v);
    free(s);
}

qn_screen *qn_screen_run_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    run_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    v->follow = true;
    *s = (qn_screen){ .title = "Run", .draw = draw, .on_action = on_action, .on_click = on_click,
                      .on_dialog = on_dialog, .free = screen_free, .priv = v };
    return s;
}
