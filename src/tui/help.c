/* help.c: the help overlay (see help.h). Rows with a NULL help text are
   aliases and are folded into the row above them, as htop's help does. */
#include "tui/help.h"

#include <stdio.h>
#include <string.h>

static int context_of(const qn_app *app)
{
    return app->browser ? QN_KEYS_BROWSER : app->screen;
}

static const char *const k_titles[QN_SCR_COUNT] = {
    "Models: choose the model to compress",
    "Budget: method, preset, options and the projected size",
    "Run: quantization, live",
    "Inspect: the pictures of each layer",
    "Evaluate: perplexity and generation",
    "Runs: the run folders on disk, opened or compared",
};

/* Fills lines with "label  help" rows of one context; returns the new count. */
static size_t collect(int context, char lines[][160], size_t n, size_t cap)
{
    size_t nk;
    const qn_key_binding *k = qn_keys_table(&nk);
    for (size_t i = 0; i < nk && n < cap; i++)
        if (k[i].screen == context && k[i].help) snprintf(lines[n++], 160, "%-10s %s", k[i].label, k[i].help);
    return n;
}

static size_t all_lines(const qn_app *app, char lines[][160], size_t cap)
{
    int ctx = context_of(app);
    size_t n = 0;
    snprintf(lines[n++], 160, "# %s", ctx == QN_KEYS_BROWSER ? "File browser" : k_titles[app->screen]);
    n = collect(ctx, lines, n, cap);
    if (ctx != QN_KEYS_BROWSER && n < cap) {
        snprintf(lines[n++], 160, "# Everywhere");
        n = collect(QN_KEYS_GLOBAL, lines, n, cap);
    }
    if (n + 2 < cap) {
        snprintf(lines[n++], 160, "# Text boxes");
        snprintf(lines[n++], 160, "%-10s %s", "Enter/Esc", "accept / cancel; Left Right Home End BS Del C-u C-w edit");
    }
    if (n < cap) snprintf(lines[n++], 160, "%-10s %s", "mouse", "click a tab, a key in the bottom bar or a row; wheel scrolls");
    return n;
}

void qn_help_draw(qn_app *app, qn_box screen)
{
    const qn_theme *t = &app->theme;
    char lines[128][160];
    size_t n = all_lines(app, lines, 128);
    int w = screen.w - 4 < 90 ? screen.w - 4 : 90, h = (int)n + 3 < screen.h - 2 ? (int)n + 3 : screen.h - 2;
    if (w < 20 || h < 5) { w = screen.w; h = screen.h; }
    qn_box box = { screen.y + (screen.h - h) / 2, screen.x + (screen.w - w) / 2, h, w };
    qn_w_clear(t, box, QN_TH_NORMAL);
    qn_box in = qn_w_frame(t, box, "Help (any other key closes)", true);
    int rows = in.h - 1;
    if (rows < 1) return;
    if (app->help_top + (size_t)rows > n) app->help_top = n > (size_t)rows ? n - (size_t)rows : 0;
    for (int r = 0; r < rows && app->help_top + (size_t)r < n; r++) {
        const char *l = lines[app->help_top + (size_t)r];
        if (l[0] == '#') qn_w_text(t, in.y + r, in.x + 1, in.w - 2, QN_TH_HEADER, l + 2);
        else {
            char key[16];
            snprintf(key, sizeof key, "%.10s", l);
            qn_w_text(t, in.y + r, in.x + 1, 11, QN_TH_KEY, key);
            qn_w_text(t, in.y + r, in.x + 12, in.w - 13, QN_TH_NORMAL, l + 11);
        }
    }
    char more[96];
    snprintf(more, sizeof more, "%zu-%zu of %zu  (Up/Down scroll)", app->help_top + 1,
             app->help_top + (size_t)rows < n ? app->help_top + (size_t)rows : n, n);
    qn_w_text(t, in.y + in.h - 1, in.x + 1, in.w - 2, QN_TH_DIM, more);
}

bool qn_help_key(qn_app *app, int key)
{
    qn_action a = qn_keys_action(QN_KEYS_GLOBAL, key);
    if (a == QN_ACT_DOWN) { app->help_top++; return true; }
    if (a == QN_ACT_UP) { if (app->help_top) app->help_top--; return true; }
    if (a == QN_ACT_PAGE_DOWN) { app->help_top += 10; return true; }
    if (a == QN_ACT_PAGE_UP) { app->help_top = app->help_top > 10 ? app->help_top - 10 : 0; return true; }
    app->help = false;
    app->help_top = 0;
    return false;
}
