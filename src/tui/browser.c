/* browser.c: the model file browser (see browser.h). The entries of a folder
   are read once when it is entered and kept sorted (folders, then files, by
   name); the filter only hides rows. */
#include "tui/browser.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "tui/keys.h"
#include "tui/text.h"

typedef struct {
    char     name[256];
    bool     dir, model;    /* model: a folder with config.json */
    uint64_t size;
} entry;

struct qn_browser {
    char        dir[PATH_MAX];
    entry      *e;
    size_t      n, cap;
    size_t     *shown;          /* (n_shown) indexes of entries passing the filter */
    size_t      n_shown;
    size_t      sel, top;
    bool        hidden;
    bool        filtering, going;
    qn_lineedit filter, path;
    char        error[256];
    qn_box      list;           /* where the rows were drawn */
};

static int by_kind_then_name(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->dir != y->dir) return x->dir ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void refilter(qn_browser *b)
{
    b->n_shown = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!b->filter.len || strstr(b->e[i].name, b->filter.buf)) b->shown[b->n_shown++] = i;
    if (b->sel >= b->n_shown) b->sel = b->n_shown ? b->n_shown - 1 : 0;
}

static bool add(qn_browser *b, const entry *en)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        entry *e = realloc(b->e, cap * sizeof *e);
        size_t *s = realloc(b->shown, cap * sizeof *s);
        if (e) b->e = e;
        if (s) b->shown = s;
        if (!e || !s) return false;
        b->cap = cap;
    }
    b->e[b->n++] = *en;
    return true;
}

static void load(qn_browser *b, const char *dir, const char *select)
{
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        snprintf(b->error, sizeof b->error, "%.200s: cannot open", dir);
        return;
    }
    DIR *d = opendir(real);
    if (!d) {
        snprintf(b->error, sizeof b->error, "%.200s: cannot read this folder", real);
        return;
    }
    b->error[0] = 0;
    snprintf(b->dir, sizeof b->dir, "%s", real);
    b->n = 0;
    b->sel = b->top = 0;
    qn_lineedit_set(&b->filter, "");
    b->filtering = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (de->d_name[0] == '.' && !b->hidden) continue;
        entry en = { 0 };
        snprintf(en.name, sizeof en.name, "%s", de->d_name);
        char full[PATH_MAX + 300];
        snprintf(full, sizeof full, "%s/%s", b->dir, de->d_name);
        struct stat st;
        if (stat(full, &st) != 0) continue;
        en.dir = S_ISDIR(st.st_mode);
        en.size = (uint64_t)st.st_size;
        if (en.dir) {
            char cfg[PATH_MAX + 320];
            snprintf(cfg, sizeof cfg, "%s/config.json", full);
            en.model = qn_path_exists(cfg);
        }
        if (!add(b, &en)) break;
    }
    closedir(d);
    if (b->n) qsort(b->e, b->n, sizeof *b->e, by_kind_then_name);
    refilter(b);
    for (size_t i = 0; select && i < b->n_shown; i++)
        if (!strcmp(b->e[b->shown[i]].name, select)) b->sel = i;
}

qn_browser *qn_browser_create(const char *start)
{
    qn_browser *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    if (!start || !*start) start = ".";
    char cfg[PATH_MAX + 16];
    snprintf(cfg, sizeof cfg, "%s/config.json", start);
    if (!qn_path_is_dir(start) || qn_path_exists(cfg)) {
        /* a model: show the folder holding it, with it selected */
        char parent_dir[PATH_MAX];
        snprintf(parent_dir, sizeof parent_dir, "%s", start);
        char *slash = strrchr(parent_dir, '/');
        const char *name = strrchr(start, '/') ? strrchr(start, '/') + 1 : start;
        if (slash && slash != parent_dir) *slash = 0;
        else snprintf(parent_dir, sizeof parent_dir, "%s", slash ? "/" : ".");
        load(b, parent_dir, name);
    } else {
        load(b, start, NULL);
    }
    if (!b->dir[0]) load(b, "/", NULL);
    return b;
}

void qn_browser_free(qn_browser *b)
{
    if (!b) return;
    free(b->e);
    free(b->shown);
    free(b);
}

const char *qn_browser_dir(const qn_browser *b)
{
    return b->dir;
}

static void parent(qn_browser *b)
{
    char here[PATH_MAX], up[PATH_MAX + 4];
    snprintf(here, sizeof here, "%s", b->dir);
    const char *base = strrchr(here, '/');
    snprintf(up, sizeof up, "%s/..", b->dir);
    load(b, up, base ? base + 1 : NULL);
}

static qn_br_result choose(const char *path, char *chosen, size_t cap)
{
    snprintf(chosen, cap, "%s", path);
    return QN_BR_CHOSEN;
}

/* Enter on a row: a model folder or a file is chosen, another folder entered. */
static qn_br_result open_row(qn_browser *b, bool enter_only, char *chosen, size_t cap)
{
    if (!b->n_shown) return QN_BR_NONE;
    const entry *en = &b->e[b->shown[b->sel]];
    char full[PATH_MAX + 300];
    snprintf(full, sizeof full, "%s/%s", strcmp(b->dir, "/") ? b->dir : "", en->name);
    if (en->dir && (enter_only || !en->model)) { load(b, full, NULL); return QN_BR_REDRAW; }
    if (enter_only) return QN_BR_NONE;
    return choose(full, chosen, cap);
}

/* A typed path: a folder with config.json or a file is chosen, another folder browsed. */
static qn_br_result go(qn_browser *b, char *chosen, size_t cap)
{
    char path[PATH_MAX];
    const char *home = getenv("HOME");
    if (b->path.buf[0] == '~' && home) snprintf(path, sizeof path, "%s%s", home, b->path.buf + 1);
    else snprintf(path, sizeof path, "%s", b->path.buf);
    if (!path[0]) return QN_BR_REDRAW;
    char cfg[PATH_MAX + 16];
    snprintf(cfg, sizeof cfg, "%s/config.json", path);
    if (qn_path_is_dir(path) && !qn_path_exists(cfg)) { load(b, path, NULL); return QN_BR_REDRAW; }
    return choose(path, chosen, cap);
}

qn_br_result qn_browser_key(qn_browser *b, int key, char *chosen, size_t cap)
{
    if (b->going || b->filtering) {
        qn_lineedit *e = b->going ? &b->path : &b->filter;
        qn_le_result r = qn_lineedit_key(e, key);
        if (r == QN_LE_CANCEL) {
            if (b->filtering) qn_lineedit_set(&b->filter, "");
            b->going = b->filtering = false;
        } else if (r == QN_LE_DONE) {
            bool was_going = b->going;
            b->going = b->filtering = false;
            if (was_going) return go(b, chosen, cap);
        }
        if (b->filtering || r == QN_LE_CANCEL) refilter(b);
        return QN_BR_REDRAW;
    }
    int page = b->list.h > 1 ? b->list.h - 1 : 1;
    switch (qn_keys_action(QN_KEYS_BROWSER, key)) {
    case QN_ACT_UP: qn_w_move(&b->sel, -1, b->n_shown); return QN_BR_REDRAW;
    case QN_ACT_DOWN: qn_w_move(&b->sel, 1, b->n_shown); return QN_BR_REDRAW;
    case QN_ACT_PAGE_UP: qn_w_move(&b->sel, -page, b->n_shown); return QN_BR_REDRAW;
    case QN_ACT_PAGE_DOWN: qn_w_move(&b->sel, page, b->n_shown); return QN_BR_REDRAW;
    case QN_ACT_HOME: b->sel = 0; return QN_BR_REDRAW;
    case QN_ACT_END: qn_w_move(&b->sel, (long)b->n_shown, b->n_shown); return QN_BR_REDRAW;
    case QN_ACT_OPEN: return open_row(b, false, chosen, cap);
    case QN_ACT_RIGHT: return open_row(b, true, chosen, cap);
    case QN_ACT_PARENT: parent(b); return QN_BR_REDRAW;
    case QN_ACT_CHOOSE_HERE: return choose(b->dir, chosen, cap);
    case QN_ACT_GOTO: b->going = true; qn_lineedit_set(&b->path, b->dir); return QN_BR_REDRAW;
    case QN_ACT_HOME_DIR: load(b, getenv("HOME") ? getenv("HOME") : "/", NULL); return QN_BR_REDRAW;
    case QN_ACT_HIDDEN: {
        char here[PATH_MAX];
        snprintf(here, sizeof here, "%s", b->dir);
        b->hidden = !b->hidden;
        load(b, here, NULL);
        return QN_BR_REDRAW;
    }
    case QN_ACT_FILTER: b->filtering = true; return QN_BR_REDRAW;
    case QN_ACT_BACK: return QN_BR_CLOSED;
    default: return QN_BR_NONE;
    }
}

qn_br_result qn_browser_click(qn_browser *b, int y, int x, bool twice, char *chosen, size_t cap)
{
    if (y < b->list.y || y >= b->list.y + b->list.h || x < b->list.x || x >= b->list.x + b->list.w)
        return QN_BR_NONE;
    size_t row = b->top + (size_t)(y - b->list.y);
    if (row >= b->n_shown) return QN_BR_NONE;
    b->sel = row;
    return twice ? open_row(b, false, chosen, cap) : QN_BR_REDRAW;
}

void qn_browser_draw(qn_browser *b, const qn_theme *t, qn_box screen)
{
    int w = screen.w - 4 < 100 ? screen.w - 4 : 100, h = screen.h - 2;
    if (w < 20 || h < 6) { w = screen.w; h = screen.h; }
    qn_box box = { screen.y + (screen.h - h) / 2, screen.x + (screen.w - w) / 2, h, w };
    qn_w_clear(t, box, QN_TH_NORMAL);
    qn_box in = qn_w_frame(t, box, "Open a model: folder, .gguf or llama2.c .bin", true);
    qn_w_text(t, in.y, in.x, in.w, QN_TH_DIM, b->dir);
    int list_y = in.y + 1, list_h = in.h - 2;
    if (b->error[0]) { qn_w_text(t, list_y, in.x, in.w, QN_TH_BAD, b->error); list_y++; list_h--; }
    b->list = (qn_box){ list_y, in.x, list_h > 0 ? list_h : 0, in.w };
    qn_w_scroll(&b->top, b->sel, b->n_shown, list_h);
    for (int r = 0; r < list_h; r++) {
        size_t i = b->top + (size_t)r;
        if (i >= b->n_shown) break;
        const entry *en = &b->e[b->shown[i]];
        qn_theme_role role = i == b->sel ? QN_TH_SELECTED : en->model ? QN_TH_GOOD : en->dir ? QN_TH_BORDER_FOCUS
                           : QN_TH_NORMAL;
        if (i == b->sel) qn_w_fill(t, list_y + r, in.x, in.w, role);
        char name[300], size[32];
        qn_text_sanitize(en->name, strlen(en->name), name, sizeof name);
        if (en->dir) strncat(name, "/", sizeof name - strlen(name) - 1);
        if (en->model) snprintf(size, sizeof size, "model");
        else if (en->dir) size[0] = 0;
        else qn_text_bytes(en->size, size, sizeof size);
        qn_w_text(t, list_y + r, in.x + 1, in.w - 12, role, name);
        qn_w_text_right(t, list_y + r, in.x + in.w - 11, 10, role, size);
    }
    if (!b->n_shown) qn_w_text(t, list_y, in.x + 1, in.w - 2, QN_TH_DIM, b->filter.len ? "(no match)" : "(empty)");
    int ly = in.y + in.h - 1;
    if (b->going) {
        qn_w_text(t, ly, in.x, 6, QN_TH_HEADER, "Path:");
        qn_w_lineedit(t, ly, in.x + 6, in.w - 6, &b->path, true);
    } else if (b->filtering || b->filter.len) {
        qn_w_text(t, ly, in.x, 8, QN_TH_HEADER, "Filter:");
        qn_w_lineedit(t, ly, in.x + 8, in.w - 8, &b->filter, b->filtering);
    }
}
