/* theme.c: colour pairs, the monochrome fallback and the glyph sets (see theme.h).
   The colour scheme follows htop's default: white on black, a cyan key bar,
   green/yellow/red for good/caution/bad. Monochrome keeps every distinction
   with attributes alone, so nothing is told by colour only. */
#include "tui/theme.h"

#include <langinfo.h>
#include <stdlib.h>
#include <string.h>

#include "viz/colormap.h"

static const qn_glyphs k_utf8 = {
    .hline = "─", .vline = "│", .tl = "┌", .tr = "┐", .bl = "└", .br = "┘", .tee_l = "├", .tee_r = "┤",
    .bar_eighths = { " ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█" },
    .ellipsis = "…", .up = "▲", .down = "▼", .right = "▶", .bullet = "●", .pause = "‖", .play = "▶",
};

static const qn_glyphs k_ascii = {
    .hline = "-", .vline = "|", .tl = "+", .tr = "+", .bl = "+", .br = "+", .tee_l = "+", .tee_r = "+",
    .bar_eighths = { " ", " ", " ", "-", "-", "=", "=", "=", "#" },
    .ellipsis = "~", .up = "^", .down = "v", .right = ">", .bullet = "*", .pause = "=", .play = ">",
};

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* fg, bg for each role; -1 is the terminal's default. */
static const short k_pairs[QN_TH_COUNT][2] = {
    [QN_TH_NORMAL] = { -1, -1 },
    [QN_TH_TITLE] = { COLOR_BLACK, COLOR_CYAN },
    [QN_TH_TAB] = { COLOR_BLACK, COLOR_GREEN },
    [QN_TH_KEY] = { COLOR_WHITE, -1 },
    [QN_TH_KEYDESC] = { COLOR_BLACK, COLOR_CYAN },
    [QN_TH_SELECTED] = { COLOR_BLACK, COLOR_CYAN },
    [QN_TH_SELECTED_DIM] = { COLOR_BLACK, COLOR_WHITE },
    [QN_TH_HEADER] = { COLOR_BLACK, COLOR_GREEN },
    [QN_TH_BORDER] = { COLOR_BLUE, -1 },
    [QN_TH_BORDER_FOCUS] = { COLOR_CYAN, -1 },
    [QN_TH_DIM] = { COLOR_CYAN, -1 },
    [QN_TH_GOOD] = { COLOR_GREEN, -1 },
    [QN_TH_WARN] = { COLOR_YELLOW, -1 },
    [QN_TH_BAD] = { COLOR_RED, -1 },
    [QN_TH_BAR] = { COLOR_GREEN, -1 },
    [QN_TH_BAR_EMPTY] = { COLOR_BLUE, -1 },
    [QN_TH_DIALOG] = { COLOR_WHITE, COLOR_BLUE },
    [QN_TH_INPUT] = { COLOR_BLACK, COLOR_WHITE },
};

static const attr_t k_extra[QN_TH_COUNT] = {
    [QN_TH_TAB] = A_BOLD, [QN_TH_KEY] = A_BOLD, [QN_TH_HEADER] = A_BOLD,
    [QN_TH_BORDER_FOCUS] = A_BOLD, [QN_TH_GOOD] = A_BOLD, [QN_TH_BAD] = A_BOLD, [QN_TH_DIALOG] = A_BOLD,
};

/* Monochrome: reverse marks selections, bold what colour would stress (bars included). */
static const attr_t k_mono[QN_TH_COUNT] = {
    [QN_TH_NORMAL] = A_NORMAL, [QN_TH_TITLE] = A_REVERSE, [QN_TH_TAB] = A_BOLD | A_UNDERLINE,
    [QN_TH_KEY] = A_BOLD, [QN_TH_KEYDESC] = A_REVERSE, [QN_TH_SELECTED] = A_REVERSE,
    [QN_TH_SELECTED_DIM] = A_UNDERLINE, [QN_TH_HEADER] = A_BOLD | A_UNDERLINE, [QN_TH_BORDER] = A_NORMAL,
    [QN_TH_BORDER_FOCUS] = A_BOLD, [QN_TH_DIM] = A_DIM, [QN_TH_GOOD] = A_BOLD, [QN_TH_WARN] = A_BOLD,
    [QN_TH_BAD] = A_BOLD | A_REVERSE, [QN_TH_BAR] = A_BOLD, [QN_TH_BAR_EMPTY] = A_NORMAL,
    [QN_TH_DIALOG] = A_NORMAL, [QN_TH_INPUT] = A_UNDERLINE,
};

/* Terminals that predate Unicode, whatever the locale says. */
static bool ascii_terminal(void)
{
    const char *term = getenv("TERM");
    if (!term || !*term) return true;
    static const char *const old[] = { "dumb", "vt", "ansi", "cons25", "sun", "hp" };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (strncmp(term, old[i], strlen(old[i])) == 0) return true;
    return false;
}

void qn_theme_init(qn_theme *t)
{
    memset(t, 0, sizeof *t);
    const char *cs = nl_langinfo(CODESET);
    t->utf8 = cs && strcmp(cs, "UTF-8") == 0 && !env_set("QN_ASCII") && !ascii_terminal();
    t->g = t->utf8 ? k_utf8 : k_ascii;
    /* COLORS is known only after start_color. */
    t->color = has_colors() && !qn_colormap_no_color_env() && start_color() == OK && COLORS >= 8;
    if (t->color) {
        use_default_colors();
        for (int r = 0; r < QN_TH_COUNT; r++) {
            init_pair((short)(r + 1), k_pairs[r][0], k_pairs[r][1]);
            t->attr[r] = COLOR_PAIR(r + 1) | k_extra[r];
        }
        t->cells = COLORS >= 256 ? QN_CELLS_256 : QN_CELLS_8;
        t->half_blocks = t->utf8 && t->cells == QN_CELLS_256 && COLOR_PAIRS >= 4096;
    } else {
        for (int r = 0; r < QN_TH_COUNT; r++) t->attr[r] = k_mono[r];
        t->cells = QN_CELLS_MONO;
    }
    /* Monochrome bars are glyphs in bold, not reverse video: a reversed full
       block is a cell of the background colour, so the bar would not show. */
}

int qn_theme_cell_pair(const qn_theme *t, int fg, int bg)
{
    if (!t->color) return 0;
    int p = alloc_pair(fg, bg);
    return p < 0 ? 0 : p;
}
