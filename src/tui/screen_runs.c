/* screen_runs.c: the Runs screen, a browser of quantization run folders: those
   under quench-runs/ and runs/ (where the workbench and the README put them),
   the recent ones that are runs, and the run on the Run screen. Left, the
   runs (name, method, bits, layers); Enter opens one straight into Inspect,
   Space marks up to two for comparison. Right, the selected run, or the two
   marked ones side by side: model, method, bits, mean and worst relative
   error, seconds, and a small chart of the relative error of every layer
   (one sparkline per run, log scale, then the layers as rows with a bar for
   each run). Folders are read when the screen is entered and with `r`. */
#include "tui/app.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/run_folder.h"
#include "tui/text.h"

#define MAX_RUNS 64

typedef struct {
    char    dir[QN_PATH_CAP];
    char    name[64], model[64], method[96];
    double  bits, seconds, mean_err, worst_err;
    char    worst[32];
    bool    finished;
    size_t  n_layers;
    double *err;          /* (n_layers) relative error by block, then sublayer */
    char    (*short_names)[32];
} run_entry;

typedef struct {
    run_entry runs[MAX_RUNS];
    size_t    n, sel, top;
    int       mark[2];    /* indices into runs, -1: none */
    bool      scanned;
    qn_box    list;
} runs_view;

static void entry_free(run_entry *e)
{
    free(e->err);
    free(e->short_names);
    e->err = NULL;
    e->short_names = NULL;
}

/* Reads a run folder's summary; false when dir is not a readable run. */
static bool read_entry(const char *dir, run_entry *e)
{
    qn_run_folder *run = NULL;
    qn_err err = { 0 };
    if (qn_run_open(&run, dir, &err)) return false;
    const qn_run_info *in = qn_run_get_info(run);
    memset(e, 0, sizeof *e);
    qn_text_copy(e->dir, sizeof e->dir, dir);
    qn_text_copy(e->name, sizeof e->name, qn_app_basename(dir));
    qn_text_copy(e->model, sizeof e->model, in->model_name ? in->model_name : "?");
    qn_text_copy(e->method, sizeof e->method, in->method_label ? in->method_label : in->method);
    e->bits = in->bits;
    e->seconds = in->seconds;
    e->finished = in->finished;
    e->n_layers = in->n_layers;
    e->err = calloc(in->n_layers ? in->n_layers : 1, sizeof *e->err);
    e->short_names = calloc(in->n_layers ? in->n_layers : 1, sizeof *e->short_names);
    double sum = 0;
    size_t n = 0;
    e->worst_err = NAN;
    for (size_t i = 0; e->err && e->short_names && i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        e->err[i] = L->relative_error;
        qn_text_copy(e->short_names[i], sizeof e->short_names[i], L->short_name);
        if (!isfinite(L->relative_error)) continue;
        sum += L->relative_error;
        n++;
        if (!(L->relative_error <= e->worst_err)) {
            e->worst_err = L->relative_error;
            qn_text_copy(e->worst, sizeof e->worst, L->short_name);
        }
    }
    e->mean_err = n ? sum / (double)n : NAN;
    qn_run_close(run);
    return true;
}

static void add_run(runs_view *v, const char *dir)
{
    char real[PATH_MAX], other[PATH_MAX];
    if (v->n == MAX_RUNS || !realpath(dir, real)) return;
    for (size_t i = 0; i < v->n; i++)
        if (realpath(v->runs[i].dir, other) && strcmp(real, other) == 0) return;
    if (read_entry(dir, &v->runs[v->n])) v->n++;
}

static void add_children(runs_view *v, const char *parent)
{
    DIR *d = opendir(parent);
    if (!d) return;
    char *names[MAX_RUNS];
    size_t n = 0;
    struct dirent *de;
    while (n < MAX_RUNS && (de = readdir(d)))
        if (de->d_name[0] != '.') names[n++] = strdup(de->d_name);
    closedir(d);
    for (size_t i = 0; i < n; i++)   /* newest name last: folder names end with a time stamp */
        for (size_t j = i + 1; j < n; j++)
            if (names[i] && names[j] && strcmp(names[i], names[j]) > 0) { char *t = names[i]; names[i] = names[j]; names[j] = t; }
    for (size_t i = 0; i < n; i++) {
        char path[QN_PATH_CAP + 256], log[QN_PATH_CAP + 300];
        if (names[i] && snprintf(path, sizeof path, "%s/%s", parent, names[i]) < (int)sizeof path) {
            snprintf(log, sizeof log, "%s/run.jsonl", path);
            if (qn_path_exists(log)) add_run(v, path);
        }
        free(names[i]);
    }
}

static void scan(runs_view *v, const qn_app *app)
{
    for (size_t i = 0; i < v->n; i++) entry_free(&v->runs[i]);
    v->n = 0;
    v->mark[0] = v->mark[1] = -1;
    if (app->run.out_dir[0]) add_run(v, app->run.out_dir);
    add_children(v, "quench-runs");
    add_children(v, "runs");
    for (size_t i = 0; i < app->recent.n; i++) {
        char log[QN_PATH_CAP + 16];
        snprintf(log, sizeof log, "%s/run.jsonl", app->recent.path[i]);
        if (qn_path_exists(log)) add_run(v, app->recent.path[i]);
    }
    if (v->sel >= v->n) v->sel = v->n ? v->n - 1 : 0;
    v->scanned = true;
}

static void fmt_num(char *buf, size_t cap, double x, const char *fmt)
{
    if (isfinite(x)) snprintf(buf, cap, fmt, x);
    else snprintf(buf, cap, "-");
}

/* One table line: a label, then a value per run. */
static void row(const qn_theme *t, int y, int x, int w, const char *k, const char *a, const char *b)
{
    int col = (w - 12) / 2;
    qn_w_text(t, y, x, 12, QN_TH_DIM, k);
    qn_w_text(t, y, x + 12, col - 1, QN_TH_NORMAL, a);
    if (b) qn_w_text(t, y, x + 12 + col, col, QN_TH_NORMAL, b);
}

static void draw_runs(const qn_app *app, const run_entry *a, const run_entry *b, qn_box in)
{
    const qn_theme *t = &app->theme;
    int y = in.y, x = in.x + 1, w = in.w - 2, bottom = in.y + in.h;
    char sa[64], sb[64];
    row(t, y++, x, w, b ? "run" : "", a->name, b ? b->name : NULL);
    row(t, y++, x, w, "model", a->model, b ? b->model : NULL);
    row(t, y++, x, w, "method", a->method, b ? b->method : NULL);
    fmt_num(sa, sizeof sa, a->bits, "%.3f bits/param");
    if (b) fmt_num(sb, sizeof sb, b->bits, "%.3f bits/param");
    row(t, y++, x, w, "bits", sa, b ? sb : NULL);
    fmt_num(sa, sizeof sa, a->mean_err, "%.3e");
    if (b) fmt_num(sb, sizeof sb, b->mean_err, "%.3e");
    row(t, y++, x, w, "mean error", sa, b ? sb : NULL);
    snprintf(sa, sizeof sa, "%.3e %s", a->worst_err, a->worst);
    if (b) snprintf(sb, sizeof sb, "%.3e %s", b->worst_err, b->worst);
    row(t, y++, x, w, "worst error", sa, b ? sb : NULL);
    snprintf(sa, sizeof sa, "%zu%s", a->n_layers, a->finished ? "" : " (unfinished)");
    if (b) snprintf(sb, sizeof sb, "%zu%s", b->n_layers, b->finished ? "" : " (unfinished)");
    row(t, y++, x, w, "layers", sa, b ? sb : NULL);
    fmt_num(sa, sizeof sa, a->seconds, "%.1f s");
    if (b) fmt_num(sb, sizeof sb, b->seconds, "%.1f s");
    row(t, y++, x, w, "time", sa, b ? sb : NULL);
    row(t, y++, x, w, "ppl", "Eval screen (5)", b ? "Eval screen (5)" : NULL);
    y++;
    if (y >= bottom) return;
    qn_w_text(t, y++, x, w, QN_TH_HEADER, "relative error per layer (log scale)");
    const run_entry *rs[2] = { a, b };
    for (int k = 0; k < (b ? 2 : 1) && y < bottom; k++) {
        qn_w_text(t, y, x, 3, QN_TH_DIM, k ? "B" : b ? "A" : "");
        qn_w_sparkline(t, y++, x + 3, w - 3, rs[k]->err, rs[k]->n_layers, true);
    }
    /* the layers as rows: a bar per run against the largest error of the two */
    double hi = 0;
    for (int k = 0; k < (b ? 2 : 1); k++)
        for (size_t i = 0; i < rs[k]->n_layers; i++)
            if (isfinite(rs[k]->err[i])) hi = fmax(hi, rs[k]->err[i]);
    size_t n = a->n_layers > (b ? b->n_layers : 0) ? a->n_layers : b->n_layers;
    int col = b ? (w - 12) / 2 : w - 12;   /* per run: the value, then its bar */
    for (size_t i = 0; i < n && y < bottom && col > 13 && hi > 0; i++, y++) {
        const char *name = i < a->n_layers ? a->short_names[i] : b->short_names[i];
        qn_w_text(t, y, x, 12, QN_TH_DIM, name);
        double ea = i < a->n_layers ? a->err[i] : NAN, eb = b && i < b->n_layers ? b->err[i] : NAN;
        fmt_num(sa, sizeof sa, ea, "%.2e");
        qn_w_text(t, y, x + 12, 10, QN_TH_NORMAL, sa);
        qn_w_bar(t, y, x + 22, col - 11, ea / hi, QN_TH_BAR);
        if (b) {
            fmt_num(sb, sizeof sb, eb, "%.2e");
            qn_w_text(t, y, x + 12 + col, 10, QN_TH_NORMAL, sb);
            qn_w_bar(t, y, x + 22 + col, col - 11, eb / hi, QN_TH_BAR);
        }
    }
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    runs_view *v = s->priv;
    const qn_theme *t = &app->theme;
    if (!v->scanned) scan(v, app);
    int lw = area.w * 2 / 5;
    if (lw < 30) lw = area.w < 60 ? area.w : 30;
    qn_box left = qn_w_frame(t, (qn_box){ area.y, area.x, area.h, lw }, "Runs", true);
    v->list = left;
    qn_w_scroll(&v->top, v->sel, v->n, left.h);
    if (!v->n) qn_w_text(t, left.y, left.x + 1, left.w - 1, QN_TH_DIM, "No run folders in quench-runs/ or runs/.");
    for (int r = 0; r < left.h && v->top + (size_t)r < v->n; r++) {
        size_t i = v->top + (size_t)r;
        const run_entry *e = &v->runs[i];
        bool sel = i == v->sel, marked = v->mark[0] == (int)i || v->mark[1] == (int)i;
        qn_theme_role role = sel ? QN_TH_SELECTED : QN_TH_NORMAL;
        if (sel) qn_w_fill(t, left.y + r, left.x, left.w, role);
        char line[256], bits[16];
        fmt_num(bits, sizeof bits, e->bits, "%.2f");
        snprintf(line, sizeof line, "%s %s  %s b  %s", marked ? (v->mark[0] == (int)i ? "A" : "B") : " ", e->name,
                 bits, e->finished ? "" : "unfinished");
        qn_w_text(t, left.y + r, left.x, left.w, role, line);
    }
    if (area.w - lw < 24) return;
    bool compare = v->mark[0] >= 0 && v->mark[1] >= 0;
    qn_box right = qn_w_frame(t, (qn_box){ area.y, area.x + lw, area.h, area.w - lw },
                              compare ? "Compare A and B" : "Run", false);
    if (compare) draw_runs(app, &v->runs[v->mark[0]], &v->runs[v->mark[1]], right);
    else if (v->sel < v->n) draw_runs(app, &v->runs[v->sel], NULL, right);
    if (right.h > 2)
        qn_w_text(t, right.y + right.h - 1, right.x + 1, right.w - 2, QN_TH_DIM,
                  "Enter: inspect  Space: mark A/B to compare  r: read the folders again");
}

static void toggle_mark(runs_view *v)
{
    int i = (int)v->sel;
    if (v->sel >= v->n) return;
    if (v->mark[0] == i) { v->mark[0] = v->mark[1]; v->mark[1] = -1; return; }
    if (v->mark[1] == i) { v->mark[1] = -1; return; }
    if (v->mark[0] < 0) v->mark[0] = i;
    else if (v->mark[1] < 0) v->mark[1] = i;
    else { v->mark[0] = v->mark[1]; v->mark[1] = i; }
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    (void)key;
    runs_view *v = s->priv;
    int page = v->list.h > 1 ? v->list.h - 1 : 1;
    switch (act) {
    case QN_ACT_UP: qn_w_move(&v->sel, -1, v->n); return QN_UI_REDRAW;
    case QN_ACT_DOWN: qn_w_move(&v->sel, 1, v->n); return QN_UI_REDRAW;
    case QN_ACT_PAGE_UP: qn_w_move(&v->sel, -page, v->n); return QN_UI_REDRAW;
    case QN_ACT_PAGE_DOWN: qn_w_move(&v->sel, page, v->n); return QN_UI_REDRAW;
    case QN_ACT_HOME: v->sel = 0; return QN_UI_REDRAW;
    case QN_ACT_END: v->sel = v->n ? v->n - 1 : 0; return QN_UI_REDRAW;
    case QN_ACT_MARK: toggle_mark(v); return QN_UI_REDRAW;
    case QN_ACT_RESCAN: scan(v, app); return QN_UI_REDRAW;
    case QN_ACT_OPEN: case QN_ACT_RIGHT:
        if (v->sel < v->n) {
            app->open_then_inspect = true;
            qn_app_open_run(app, v->runs[v->sel].dir);
        }
        return QN_UI_REDRAW;
    default: return QN_UI_IGNORED;
    }
}

static qn_ui_result on_click(qn_screen *s, qn_app *app, int y, int x)
{
    runs_view *v = s->priv;
    (void)app;
    return qn_w_list_click(v->list, v->top, v->n, y, x, &v->sel) ? QN_UI_REDRAW : QN_UI_IGNORED;
}

static void screen_free(qn_screen *s)
{
    runs_view *v = s->priv;
    for (size_t i = 0; i < v->n; i++) entry_free(&v->runs[i]);
    free(v);
    free(s);
}

/* Entering the screen reads the folders again (a run may have finished since). */
void qn_screen_runs_rescan(qn_screen *s)
{
    ((runs_view *)s->priv)->scanned = false;
}

qn_screen *qn_screen_runs_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    runs_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    v->mark[0] = v->mark[1] = -1;
    *s = (qn_screen){ .title = "Runs", .draw = draw, .on_action = on_action, .on_click = on_click,
                      .free = screen_free, .priv = v };
    return s;
}
