/* widgets.c: text, frames, bars, cells and the line editor (see widgets.h).
   Everything clips to the screen: a widget given too little room draws what
   fits and nothing outside its rectangle, which is what keeps 80x24 and
   resizes correct. */
#include "tui/widgets.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tui/text.h"

static void put(const qn_theme *t, qn_theme_role role)
{
    attrset(qn_theme_attr(t, role));
}

int qn_w_text(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *s)
{
    if (w <= 0 || y < 0 || y >= LINES || x >= COLS) return 0;
    if (x + w > COLS) w = COLS - x;
    bool clipped;
    size_t n = qn_text_fit(s, w, true, &clipped);
    put(t, role);
    mvaddnstr(y, x, s, (int)n);
    if (clipped) addstr(t->g.ellipsis);
    attrset(A_NORMAL);
    return clipped ? w : qn_text_width(s);
}

int qn_w_textf(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return qn_w_text(t, y, x, w, role, buf);
}

void qn_w_text_right(const qn_theme *t, int y, int x, int w, qn_theme_role role, const char *s)
{
    int tw = qn_text_width(s);
    if (tw > w) tw = w;
    qn_w_text(t, y, x + w - tw, tw, role, s);
}

void qn_w_fill(const qn_theme *t, int y, int x, int w, qn_theme_role role)
{
    if (y < 0 || y >= LINES) return;
    if (x < 0) { w += x; x = 0; }
    if (x + w > COLS) w = COLS - x;
    if (w <= 0) return;
    put(t, role);
    mvhline(y, x, ' ', w);
    attrset(A_NORMAL);
}

void qn_w_clear(const qn_theme *t, qn_box b, qn_theme_role role)
{
    for (int r = 0; r < b.h; r++) qn_w_fill(t, b.y + r, b.x, b.w, role);
}

static void repeat(int y, int x, int n, const char *g)
{
    if (y < 0 || y >= LINES) return;
    for (int i = 0; i < n && x + i < COLS; i++)
        if (x + i >= 0) mvaddstr(y, x + i, g);
}

qn_box qn_w_frame(const qn_theme *t, qn_box b, const char *title, bool focus)
{
    if (b.w < 2 || b.h < 2) return (qn_box){ b.y, b.x, 0, 0 };
    const qn_glyphs *g = &t->g;
    put(t, focus ? QN_TH_BORDER_FOCUS : QN_TH_BORDER);
    mvaddstr(b.y, b.x, g->tl);
    repeat(b.y, b.x + 1, b.w - 2, g->hline);
    if (b.x + b.w - 1 < COLS) mvaddstr(b.y, b.x + b.w - 1, g->tr);
    for (int r = 1; r < b.h - 1; r++) {
        repeat(b.y + r, b.x, 1, g->vline);
        repeat(b.y + r, b.x + b.w - 1, 1, g->vline);
    }
    if (b.y + b.h - 1 < LINES) {
        mvaddstr(b.y + b.h - 1, b.x, g->bl);
        repeat(b.y + b.h - 1, b.x + 1, b.w - 2, g->hline);
        if (b.x + b.w - 1 < COLS) mvaddstr(b.y + b.h - 1, b.x + b.w - 1, g->br);
    }
    attrset(A_NORMAL);
    if (title && *title && b.w > 6) {
        char buf[256];
        snprintf(buf, sizeof buf, " %s ", title);
        qn_w_text(t, b.y, b.x + 2, b.w - 4, focus ? QN_TH_BORDER_FOCUS : QN_TH_HEADER, buf);
    }
    return (qn_box){ b.y + 1, b.x + 1, b.h - 2, b.w - 2 };
}

void qn_w_bar(const qn_theme *t, int y, int x, int w, double frac, qn_theme_role fill)
{
    if (w <= 0 || y < 0 || y >= LINES) return;
    if (!(frac >= 0)) frac = 0;
    if (frac > 1) frac = 1;
    int eighths = (int)lround(frac * w * 8);
    int full = eighths / 8, part = eighths % 8;
    put(t, fill);
    for (int i = 0; i < full && x + i < COLS; i++) mvaddstr(y, x + i, t->g.bar_eighths[8]);
    if (part && x + full < COLS) mvaddstr(y, x + full, t->g.bar_eighths[part]);
    put(t, QN_TH_BAR_EMPTY);
    for (int i = full + (part ? 1 : 0); i < w && x + i < COLS; i++) mvaddstr(y, x + i, t->color ? " " : ".");
    attrset(A_NORMAL);
}

void qn_w_meter(const qn_theme *t, int y, int x, int w, double frac, const char *label)
{
    if (w < 4) return;
    qn_w_text(t, y, x, 1, QN_TH_NORMAL, "[");
    qn_w_bar(t, y, x + 1, w - 2, frac, QN_TH_BAR);
    qn_w_text(t, y, x + w - 1, 1, QN_TH_NORMAL, "]");
    if (label && *label) {
        int lw = qn_text_width(label);
        if (lw <= w - 4) qn_w_text(t, y, x + w - 2 - lw, lw, QN_TH_NORMAL, label);
    }
}

static int cell_color(const qn_color *c)
{
    return c->kind == QN_COLOR_DEFAULT ? -1 : c->index;
}

void qn_w_cells(const qn_theme *t, const qn_cellgrid *g, int y, int x, int h, int w)
{
    for (int r = 0; r < g->h && r < h && y + r < LINES; r++)
        for (int c = 0; c < g->w && c < w && x + c < COLS; c++) {
            const qn_cell *cell = &g->cells[(size_t)r * g->w + c];
            int pair = qn_theme_cell_pair(t, cell_color(&cell->fg), cell_color(&cell->bg));
            attr_set(A_NORMAL, 0, &pair);
            mvaddstr(y + r, x + c, cell->glyph[0] ? cell->glyph : " ");
        }
    attrset(A_NORMAL);
}

void qn_w_sparkline(const qn_theme *t, int y, int x, int w, const double *v, size_t n, bool log_scale)
{
    static const char *const ascii[] = { "_", ".", "-", "=", "^" };
    static const char *const blocks[] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
    if (n == 0 || w <= 0) return;
    size_t first = n > (size_t)w ? n - (size_t)w : 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = first; i < n; i++) {
        double a = log_scale ? log10(fmax(v[i], 1e-12)) : v[i];
        if (isfinite(a)) { lo = fmin(lo, a); hi = fmax(hi, a); }
    }
    put(t, QN_TH_BAR);
    for (size_t i = first; i < n; i++) {
        double a = log_scale ? log10(fmax(v[i], 1e-12)) : v[i];
        double f = hi > lo && isfinite(a) ? (a - lo) / (hi - lo) : 0.5;
        int levels = t->utf8 ? 8 : 5;
        int k = (int)lround(f * (levels - 1));
        mvaddstr(y, x + (int)(i - first), t->utf8 ? blocks[k] : ascii[k]);
    }
    attrset(A_NORMAL);
}

void qn_w_scroll(size_t *top, size_t sel, size_t n, int h)
{
    if (h <= 0) return;
    size_t hh = (size_t)h;
    if (sel < *top) *top = sel;
    if (sel >= *top + hh) *top = sel - hh + 1;
    if (n <= hh) *top = 0;
    else if (*top > n - hh) *top = n - hh;
}

bool qn_w_move(size_t *sel, long delta, size_t n)
{
    if (n == 0) { *sel = 0; return false; }
    long s = (long)*sel + delta;
    if (s < 0) s = 0;
    if (s > (long)n - 1) s = (long)n - 1;
    bool changed = (size_t)s != *sel;
    *sel = (size_t)s;
    return changed;
}

void qn_lineedit_set(qn_lineedit *e, const char *s)
{
    snprintf(e->buf, sizeof e->buf, "%s", s ? s : "");
    e->len = e->cur = strlen(e->buf);
}

static size_t prev_char(const qn_lineedit *e, size_t i)
{
    while (i > 0 && ((unsigned char)e->buf[--i] & 0xC0) == 0x80) {}
    return i;
}

static size_t next_char(const qn_lineedit *e, size_t i)
{
    if (i < e->len) i++;
    while (i < e->len && ((unsigned char)e->buf[i] & 0xC0) == 0x80) i++;
    return i;
}

static void erase_range(qn_lineedit *e, size_t a, size_t b)
{
    memmove(e->buf + a, e->buf + b, e->len - b + 1);
    e->len -= b - a;
    e->cur = a;
}

qn_le_result qn_lineedit_key(qn_lineedit *e, int key)
{
    switch (key) {
    case '\n': case '\r': case KEY_ENTER: return QN_LE_DONE;
    case 27: return QN_LE_CANCEL;
    case KEY_BACKSPACE: case 127: case 8:
        if (e->cur > 0) erase_range(e, prev_char(e, e->cur), e->cur);
        return QN_LE_CHANGED;
    case KEY_DC:
        if (e->cur < e->len) erase_range(e, e->cur, next_char(e, e->cur));
        return QN_LE_CHANGED;
    case KEY_LEFT: e->cur = prev_char(e, e->cur); return QN_LE_CHANGED;
    case KEY_RIGHT: e->cur = next_char(e, e->cur); return QN_LE_CHANGED;
    case KEY_HOME: case 1: e->cur = 0; return QN_LE_CHANGED;
    case KEY_END: case 5: e->cur = e->len; return QN_LE_CHANGED;
    case 21: erase_range(e, 0, e->cur); return QN_LE_CHANGED;
    case 23: {
        size_t a = e->cur;
        while (a > 0 && e->buf[a - 1] == ' ') a--;
        while (a > 0 && e->buf[a - 1] != ' ' && e->buf[a - 1] != '/') a--;
        erase_range(e, a, e->cur);
        return QN_LE_CHANGED;
    }
    default:
        if (key < 0x20 || key > 0xff || key == 0x7f) return QN_LE_IGNORED;
        if (e->len + 1 >= sizeof e->buf) return QN_LE_CHANGED;
        memmove(e->buf + e->cur + 1, e->buf + e->cur, e->len - e->cur + 1);
        e->buf[e->cur++] = (char)key;
        e->len++;
        return QN_LE_CHANGED;
    }
}

void qn_w_lineedit(const qn_theme *t, int y, int x, int w, const qn_lineedit *e, bool active)
{
    if (w <= 1) return;
    qn_w_fill(t, y, x, w, active ? QN_TH_INPUT : QN_TH_NORMAL);
    /* Scroll so the cursor stays visible: drop characters from the left. */
    size_t start = 0;
    char head[sizeof e->buf];
    for (;;) {
        memcpy(head, e->buf + start, e->cur - start);
        head[e->cur - start] = 0;
        if (qn_text_width(head) < w - 1 || start >= e->cur) break;
        start = next_char(e, start);
    }
    qn_w_text(t, y, x, w, active ? QN_TH_INPUT : QN_TH_NORMAL, e->buf + start);
    if (active) {
        int cx = x + qn_text_width(head);
        if (cx < x + w && cx < COLS) {
            char ch[8] = " ";
            if (e->cur < e->len) {
                size_t n = next_char(e, e->cur) - e->cur;
                memcpy(ch, e->buf + e->cur, n);
                ch[n] = 0;
            }
            attrset(qn_theme_attr(t, QN_TH_INPUT) | A_REVERSE);
            mvaddstr(y, cx, ch);
            attrset(A_NORMAL);
        }
    }
}

bool qn_w_list_click(qn_box box, size_t top, size_t n, int y, int x, size_t *sel)
{
    if (y < box.y || y >= box.y + box.h || x < box.x || x >= box.x + box.w) return false;
    size_t row = top + (size_t)(y - box.y);
    if (row < n) *sel = row;
    return true;
}
