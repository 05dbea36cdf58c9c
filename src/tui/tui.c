/* tui.c: the workbench's main loop, terminal setup and teardown, and signals
   (STYLE.md section 6, after htop's ScreenManager and nvtop's interface loop).
   The loop waits on getch() at most 50 ms, drains the worker queue into the
   state, handles the key, and redraws when something changed: at once after a
   key, at most ten times a second for worker events. endwin() is called in one
   place, restore_terminal(), reached from quit, from an error and from the
   crash handler (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL), which then
   re-raises the signal. Other handlers only set flags. */
#include "tui/tui.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/map_guard.h"
#include "engine/speed.h"
#include "tui/app.h"
#include "tui/browser.h"
#include "tui/curses.h"
#include "tui/dialog.h"
#include "tui/help.h"
#include "tui/text.h"

#define REDRAW_INTERVAL_S 0.1
#define TICK_MS 50
#define MIN_COLS 40
#define MIN_LINES 10

static volatile sig_atomic_t g_curses_on;
static volatile sig_atomic_t g_sigint, g_sigterm;

/* The one endwin of the workbench. */
static void restore_terminal(void)
{
    if (!g_curses_on) return;
    g_curses_on = 0;
    endwin();
}

static void on_crash(int sig)
{
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_int(int sig) { (void)sig; g_sigint = 1; }
static void on_term(int sig) { (void)sig; g_sigterm = 1; }

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    int crash[] = { SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL };
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) sigaction(crash[i], &sa, NULL);
    qn_map_guard_set_restore(restore_terminal);   /* a truncated mapped model: terminal back, then the message */
    sa.sa_flags = 0;
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static void default_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

/* Where the last frame put its clickable things. */
typedef struct {
    int tab_x0[QN_SCR_COUNT], tab_x1[QN_SCR_COUNT];
    int bar_x0[12], bar_x1[12], bar_key[12];
    int n_bar;
    bool force;          /* redraw now: the user did something */
    double drawn;
} frame;

static const char *const k_tab_names[QN_SCR_COUNT] = { "Models", "Budget", "Run", "Inspect", "Eval", "Runs" };

static void draw_top(qn_app *app, frame *f)
{
    const qn_theme *t = &app->theme;
    qn_w_fill(t, 0, 0, COLS, QN_TH_TITLE);
    int x = qn_w_text(t, 0, 0, COLS, QN_TH_TITLE, " quench ");
    for (int i = 0; i < QN_SCR_COUNT; i++) {
        char tab[24];
        snprintf(tab, sizeof tab, " %d %s ", i + 1, k_tab_names[i]);
        f->tab_x0[i] = x;
        x += qn_w_text(t, 0, x, COLS - x, i == app->screen ? QN_TH_TAB : QN_TH_TITLE, tab);
        f->tab_x1[i] = x;
    }
    char right[160] = "";
    const qn_run *r = &app->run;
    if (r->phase == QN_RUN_RUNNING) {
        bool paused = r->worker && qn_worker_paused(r->worker);
        snprintf(right, sizeof right, "%s %s %zu/%d layers ", paused ? t->g.pause : t->g.bullet,
                 r->cancelling ? "cancelling" : paused ? "paused" : "running",
                 r->n_layers + (size_t)r->first_block * 7, r->n_blocks * 7);
    } else if (app->info) {
        snprintf(right, sizeof right, "%s ", qn_app_basename(app->info->path));
    }
    int rw = qn_text_width(right);
    if (x + rw + 1 < COLS) qn_w_text(t, 0, COLS - rw, rw, QN_TH_TITLE, right);
}

static void draw_bar(qn_app *app, frame *f)
{
    const qn_theme *t = &app->theme;
    int ctx = app->browser ? QN_KEYS_BROWSER : app->screen;
    const qn_key_binding *b[12];
    size_t n = qn_keys_bar(ctx, b, 12);
    int y = LINES - 1, x = 0;
    qn_w_fill(t, y, 0, COLS, QN_TH_KEYDESC);
    f->n_bar = 0;
    for (size_t i = 0; i < n && x < COLS; i++) {
        char key[16], desc[24];
        snprintf(key, sizeof key, "%s", b[i]->label);
        char *slash = strchr(key, '/');   /* "F10/q" shows as "F10", "Right/l/+" as "Right" */
        if (slash && slash != key) *slash = 0;
        /* the pause key says what it will do: resume a paused run */
        bool resume = b[i]->act == QN_ACT_PAUSE && app->run.worker && qn_worker_paused(app->run.worker);
        snprintf(desc, sizeof desc, "%-6s ", resume ? "Resume" : b[i]->bar_text);
        int need = qn_text_width(key) + qn_text_width(desc);
        if (x + need > COLS) break;
        f->bar_x0[f->n_bar] = x;
        x += qn_w_text(t, y, x, COLS - x, QN_TH_KEY, key);
        x += qn_w_text(t, y, x, COLS - x, QN_TH_KEYDESC, desc);
        f->bar_x1[f->n_bar] = x;
        f->bar_key[f->n_bar++] = b[i]->key;
    }
}

static void draw(qn_app *app, frame *f)
{
    erase();
    if (COLS < MIN_COLS || LINES < MIN_LINES) {
        mvaddstr(0, 0, "quench: the terminal is too small");
        mvaddstr(1, 0, "(80x24 or more; q quits)");
    } else {
        draw_top(app, f);
        app->area = (qn_box){ 1, 0, LINES - 2, COLS };
        qn_screen *s = app->screens[app->screen];
        s->draw(s, app, app->area);
        qn_box whole = { 1, 0, LINES - 2, COLS };
        if (app->browser) qn_browser_draw(app->browser, &app->theme, whole);
        if (app->help) qn_help_draw(app, whole);
        if (app->dialog.kind) qn_dialog_draw(app, whole);
        draw_bar(app, f);
    }
    wnoutrefresh(stdscr);
    doupdate();
    app->dirty = false;
    f->drawn = qn_now();
    f->force = false;
}

static void screen_action(qn_app *app, qn_action act, int key)
{
    qn_screen *s = app->screens[app->screen];
    if (s->on_action) s->on_action(s, app, act, key);
}

static void browser_key(qn_app *app, int key)
{
    char chosen[QN_PATH_CAP];
    qn_br_result r = qn_browser_key(app->browser, key, chosen, sizeof chosen);
    if (r == QN_BR_CLOSED || r == QN_BR_CHOSEN) {
        qn_browser_free(app->browser);
        app->browser = NULL;
    }
    if (r == QN_BR_CHOSEN) qn_app_open_model(app, chosen, true);
}

static void handle_key(qn_app *app, int key)
{
    if (key == KEY_RESIZE) { clearok(stdscr, TRUE); return; }
    qn_action global = qn_keys_action(QN_KEYS_GLOBAL, key);
    if (global == QN_ACT_REDRAW) { clearok(stdscr, TRUE); return; }
    if (global == QN_ACT_INTERRUPT && !app->dialog.kind) { qn_app_request_quit(app); return; }
    if (app->dialog.kind) { qn_dialog_key(app, key); return; }
    if (app->help) { qn_help_key(app, key); return; }
    if (key == KEY_F(1)) { app->help = true; return; }
    if (app->browser) { browser_key(app, key); return; }
    qn_screen *s = app->screens[app->screen];
    if (s->editing && s->editing(s)) { screen_action(app, QN_ACT_TEXT, key); return; }
    qn_action act = qn_keys_action(app->screen, key);
    switch (act) {
    case QN_ACT_HELP: app->help = true; return;
    case QN_ACT_QUIT: qn_app_request_quit(app); return;
    case QN_ACT_SCREEN_MODELS: case QN_ACT_SCREEN_BUDGET: case QN_ACT_SCREEN_RUN: case QN_ACT_SCREEN_INSPECT:
    case QN_ACT_SCREEN_EVAL: case QN_ACT_SCREEN_RUNS:
        qn_app_switch(app, (int)(act - QN_ACT_SCREEN_MODELS));
        return;
    default: break;
    }
    if (s->on_action && s->on_action(s, app, act, key) != QN_UI_IGNORED) return;
    if (act == QN_ACT_BACK) qn_app_switch(app, app->prev_screen);
}

static void handle_mouse(qn_app *app, frame *f)
{
    MEVENT me;
    if (getmouse(&me) != OK) return;
    if (me.bstate & BUTTON4_PRESSED) { for (int i = 0; i < 3; i++) screen_action(app, QN_ACT_UP, 0); return; }
    if (me.bstate & BUTTON5_PRESSED) { for (int i = 0; i < 3; i++) screen_action(app, QN_ACT_DOWN, 0); return; }
    if (!(me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_DOUBLE_CLICKED))) return;
    bool twice = me.bstate & BUTTON1_DOUBLE_CLICKED;
    if (app->dialog.kind || app->help) return;
    if (me.y == LINES - 1) {
        for (int i = 0; i < f->n_bar; i++)
            if (me.x >= f->bar_x0[i] && me.x < f->bar_x1[i]) { handle_key(app, f->bar_key[i]); return; }
        return;
    }
    if (app->browser) {
        char chosen[QN_PATH_CAP];
        if (qn_browser_click(app->browser, me.y, me.x, twice, chosen, sizeof chosen) == QN_BR_CHOSEN) {
            qn_browser_free(app->browser);
            app->browser = NULL;
            qn_app_open_model(app, chosen, true);
        }
        return;
    }
    if (me.y == 0) {
        for (int i = 0; i < QN_SCR_COUNT; i++)
            if (me.x >= f->tab_x0[i] && me.x < f->tab_x1[i]) qn_app_switch(app, i);
        return;
    }
    qn_screen *s = app->screens[app->screen];
    if (s->on_click) {
        s->on_click(s, app, me.y, me.x);
        if (twice) screen_action(app, QN_ACT_OPEN, '\n');
    }
}

static void loop(qn_app *app)
{
    frame f = { .force = true };
    double last_tick = qn_now();
    while (!app->quit) {
        if (g_sigterm) break;
        if (g_sigint) { g_sigint = 0; if (!app->dialog.kind) qn_app_request_quit(app); f.force = true; }
        qn_msg m;
        for (int n = 0; n < 4096 && qn_evq_try_pop(app->queue, &m); n++) qn_app_apply(app, &m);
        int ch = getch();
        while (ch != ERR) {
            if (ch == KEY_MOUSE) handle_mouse(app, &f);
            else handle_key(app, ch);
            f.force = true;
            app->dirty = true;
            if (app->quit) break;
            nodelay(stdscr, TRUE);   /* take what is already typed before drawing */
            ch = getch();
        }
        timeout(TICK_MS);
        double now = qn_now();
        if (qn_app_busy(app) && now - last_tick >= 1.0) { app->dirty = true; last_tick = now; }
        if (f.force || (app->dirty && now - f.drawn >= REDRAW_INTERVAL_S)) draw(app, &f);
    }
}

int qn_tui_main(int argc, char **argv)
{
    (void)argc;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "quench: the workbench needs a terminal; `quench help` lists the subcommands\n");
        return 2;
    }
    setlocale(LC_ALL, "");
    qn_app *app = calloc(1, sizeof *app);
    if (!app) { fprintf(stderr, "quench: out of memory\n"); return 1; }
    install_signals();
    if (!initscr()) { fprintf(stderr, "quench: cannot initialise the terminal\n"); free(app); return 1; }
    g_curses_on = 1;
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    /* Every button event, though only presses are used: ncurses' getch, given
       an event outside the mask (a click's release), goes back to reading
       without its timeout, so the loop froze until the next key. */
    mousemask(ALL_MOUSE_EVENTS, NULL);
    mouseinterval(0);
    qn_theme_init(&app->theme);
    timeout(TICK_MS);
    qn_err err = { 0 };
    qn_status s = qn_app_init(app, argv[0], &err);
    if (!s) loop(app);
    /* Workers are told to stop, the terminal comes back, then they are joined. */
    if (app->run.worker) qn_worker_cancel(app->run.worker);
    if (app->eval.ppl_worker) qn_worker_cancel(app->eval.ppl_worker);
    if (app->eval.gen_worker) qn_worker_cancel(app->eval.gen_worker);
    restore_terminal();
    default_signals();
    qn_app_done(app);
    free(app);
    if (s) { fprintf(stderr, "quench: %s\n", err.msg); return 1; }
    return 0;
}
