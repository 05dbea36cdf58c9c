/* cmd_show.c: `quench show RUN --what KIND [--layer NAME] [--width COLS]
   [--colors truecolor|256|8|mono] [--ascii] [--colormap NAME]`: a run's picture
   on the terminal, for a user on plain SSH without the workbench. The data
   and title are export-png's (run_pictures.h); the title goes out as text
   lines and the body as ANSI cells (viz/cells.h): matrices as a bare heatmap
   at one pixel per half block (or per ASCII cell), whole cells per column where
   the matrix is narrower than the terminal, with a colour-scale line; the
   overview as a table of coloured cells with the values written; the codebook
   and convergence plots as their figure scaled to the width (axes text is not
   legible at that size, the curves are; --colormap greys is the one colormap
   they take). Defaults follow the terminal:
   NO_COLOR, COLORTERM, TERM, the locale (LC_ALL, LC_CTYPE, LANG) and the width
   from TIOCGWINSZ or $COLUMNS, 80 when neither says. */
#include "cli/commands.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/run_pictures.h"
#include "cli/session.h"
#include "viz/cells.h"

static const char k_usage[] =
    "quench show RUN --what weights|error|outliers|codebook|overview|hessian|convergence [--layer NAME]\n"
    "         [--width COLS] [--colors truecolor|256|8|mono] [--ascii] [--colormap viridis|magma|coolwarm|greys]";

static const char k_help[] =
    "usage: quench show RUN --what KIND [--layer NAME] [options]\n"
    "A run folder's picture on the terminal, in ANSI colours, for a shell without the workbench.\n"
    "Colours follow the terminal (NO_COLOR, COLORTERM, TERM); none when stdout is not a terminal.\n"
    "\n"
    QN_RUNPIC_HELP
    "  --width COLS         columns                                  default the terminal's (or 80)\n"
    "  --colors MODE        truecolor, 256, 8 or mono                            default from the terminal\n"
    "  --ascii              ASCII characters and no colours (unless --colors says otherwise)\n"
    "  --colormap NAME      viridis, magma, coolwarm or greys                    default the picture's\n"
    "\n"
    "examples:\n"
    "  quench show runs/stories260K-spqr-3.6 --what overview\n"
    "  quench show runs/stories260K-spqr-3.6 --what outliers --layer 2.v_proj --ascii\n";

/* Pixel rows of a heatmap at most; past it rows are block-reduced as elsewhere. */
#define MAX_PIXEL_ROWS 400

typedef struct {
    qn_cell_colors colors;
    bool           utf8;
    int            width;     /* columns */
    int            cmap;      /* qn_colormap, or -1 for the picture's own */
} term;

static const char *first_set(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return v;
    }
    return NULL;
}

static term detect_terminal(void)
{
    term t = { QN_CELLS_8, false, 80, -1 };
    const char *ct = getenv("COLORTERM"), *tn = getenv("TERM");
    if (qn_colormap_no_color_env() || !tn || !*tn || strcmp(tn, "dumb") == 0) t.colors = QN_CELLS_MONO;
    else if (ct && (strcasestr(ct, "truecolor") || strcasestr(ct, "24bit"))) t.colors = QN_CELLS_TRUECOLOR;
    else if (strstr(tn, "256color")) t.colors = QN_CELLS_256;
    static const char *const locale[] = { "LC_ALL", "LC_CTYPE", "LANG" };
    const char *lc = first_set(locale, 3);
    t.utf8 = lc && (strcasestr(lc, "utf-8") || strcasestr(lc, "utf8"));
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) t.width = ws.ws_col;
    else if (cols && atoi(cols) > 0) t.width = atoi(cols);
    if (!isatty(STDOUT_FILENO)) t.colors = QN_CELLS_MONO;   /* a pipe or file gets no escape codes */
    return t;
}

static qn_color cell_color(const term *t, qn_rgb c)
{
    switch (t->colors) {
    case QN_CELLS_TRUECOLOR: return (qn_color){ QN_COLOR_RGB, 0, c };
    case QN_CELLS_256: return (qn_color){ QN_COLOR_INDEX, (uint8_t)qn_rgb_to_xterm256(c), c };
    case QN_CELLS_8: return (qn_color){ QN_COLOR_INDEX, (uint8_t)qn_rgb_to_ansi8(c), c };
    default: return (qn_color){ QN_COLOR_DEFAULT, 0, c };
    }
}

static qn_status print_cells(const qn_cellgrid *g, qn_err *err)
{
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_cells_to_ansi(g, &text, &len, err);
    if (!s) fwrite(text, 1, len, stdout);
    free(text);
    return s;
}

static qn_status print_raster(const qn_raster *img, int w, int h, const term *t, qn_err *err)
{
    qn_cellgrid g = { 0 };
    qn_status s = qn_cells_from_raster(&g, img, w, h, t->colors, t->utf8, err);
    if (!s) s = print_cells(&g, err);
    qn_cellgrid_done(&g);
    return s;
}

static const char *sep(const term *t) { return t->utf8 ? " \xc2\xb7 " : " - "; }
static const char *times(const term *t) { return t->utf8 ? " \xc3\x97 " : " x "; }

static void print_title(const qn_runpic *p, const term *t)
{
    char heading[192];
    qn_runpic_heading(p, heading, sizeof heading);
    printf("%s\n%s%s%s", heading, p->info->model_name, sep(t), p->info->method_label);
    if (p->title.bits > 0) printf("%s%.3g bits/param", sep(t), p->title.bits);
    if (p->layer) printf("%s%zu%s%zu", sep(t), p->layer->d_out, times(t), p->layer->d_in);
    printf("\n");
}

/* The colormap the body uses: the picture's, the user's, or greys without colour. */
static qn_colormap body_cmap(const term *t, qn_colormap own)
{
    if (t->colors == QN_CELLS_MONO) return QN_CMAP_GREYS;
    return t->cmap >= 0 ? (qn_colormap)t->cmap : own;
}

/* Heatmap size in cells for a (rows, cols) matrix: whole cells per column where
   the matrix is narrower than the terminal, square pixels (a half block is one
   square pixel; an ASCII cell, twice as tall as wide, is one pixel), whole
   pixels per row where the matrix has fewer rows, and at least one pixel per
   row when every row must show (the Hessian's layers). */
static void fit(size_t rows, size_t cols, const term *t, bool every_row, int *w, int *h, int *px_rows)
{
    size_t width = (size_t)t->width;
    size_t cw = cols <= width ? cols * (width / cols) : width;
    size_t per = t->utf8 ? 2 : 1;
    double square = (double)cw * (double)rows / (double)cols / (t->utf8 ? 1.0 : 2.0);
    size_t ph = square < 1 ? 1 : (size_t)lround(square);
    if (rows <= ph) ph = rows * (size_t)lround((double)ph / (double)rows);
    else if (every_row) ph = rows;
    if (ph > MAX_PIXEL_ROWS) ph = MAX_PIXEL_ROWS;
    *w = (int)cw;
    *h = (int)((ph + per - 1) / per);
    *px_rows = *h * (int)per;
}

/* "lo [gradient] hi" on one line: the scale of the heatmap above. */
static qn_status print_scale(const term *t, qn_colormap cm, double lo, double hi, bool log, const char *what,
                             qn_err *err)
{
    enum { STRIP = 24 };
    qn_raster r = { 0 };
    qn_cellgrid g = { 0 };
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_raster_init(&r, STRIP, 2, (qn_rgb){ 0, 0, 0 }, err);
    for (int x = 0; !s && x < STRIP; x++) {
        qn_rgb c = qn_colormap_at(cm, (x + 0.5) / STRIP);
        qn_raster_set(&r, x, 0, c);
        qn_raster_set(&r, x, 1, c);
    }
    if (!s) s = qn_cells_from_raster(&g, &r, STRIP, 1, t->colors, t->utf8, err);
    if (!s) s = qn_cells_to_ansi(&g, &text, &len, err);
    if (!s) {
        if (len && text[len - 1] == '\n') text[--len] = 0;
        printf("%s: %.3g %s %.3g%s\n", what, lo, text, hi, log ? " (log scale)" : "");
    }
    free(text);
    qn_cellgrid_done(&g);
    qn_raster_done(&r);
    return s;
}

/* Outliers per row and column as text, the marginals of the figure. */
static void print_marginals(const qn_runpic *p)
{
    size_t total = 0, best_r = 0, best_c = 0, n_best_r = 0, n_best_c = 0;
    size_t *col_n = calloc(p->cols, sizeof *col_n);
    if (!col_n) return;
    for (size_t r = 0; r < p->rows; r++) {
        size_t n = 0;
        for (size_t c = 0; c < p->cols; c++)
            if (p->mask[r * p->cols + c]) { n++; col_n[c]++; }
        total += n;
        if (n > n_best_r) { n_best_r = n; best_r = r; }
    }
    for (size_t c = 0; c < p->cols; c++)
        if (col_n[c] > n_best_c) { n_best_c = col_n[c]; best_c = c; }
    free(col_n);
    printf("%zu outliers (%.3g%%)", total, 100.0 * (double)total / ((double)p->rows * (double)p->cols));
    if (total) printf("; most in row %zu (%zu) and column %zu (%zu)", best_r, n_best_r, best_c, n_best_c);
    printf("\n");
}

static qn_status show_heat(const qn_runpic *p, const term *t, qn_err *err)
{
    float *v = NULL;
    size_t rows, cols;
    qn_heat_style st;
    qn_picture pic = { 0 };
    qn_status s = qn_runpic_heat(p, &v, &rows, &cols, &st, err);
    if (s) return s;
    st.cmap = body_cmap(t, st.cmap);
    int w, h, ph;
    fit(rows, cols, t, p->kind == QN_RUNPIC_HESSIAN, &w, &h, &ph);
    s = qn_viz_heatmap(&pic, v, rows, cols, w, ph, &st, err);
    if (!s) s = print_raster(&pic.image, w, h, t, err);
    if (!s && p->kind == QN_RUNPIC_HESSIAN)
        printf("rows: %s (top) to %s (bottom); columns: input channel; grey: past a layer's width\n", p->names[0],
               p->names[p->n_series - 1]);
    else if (!s)
        printf("rows: output channel 0..%zu; columns: input channel 0..%zu%s\n", rows - 1, cols - 1,
               (size_t)w < cols || (size_t)ph < rows
                   ? (st.op == QN_REDUCE_MEAN ? "; block means" : "; block maxima") : "");
    if (!s && p->kind == QN_RUNPIC_OUTLIERS) print_marginals(p);
    else if (!s)
        s = print_scale(t, st.cmap, pic.lo, pic.hi, pic.log,
                        p->kind == QN_RUNPIC_WEIGHTS ? "weight" : p->kind == QN_RUNPIC_ERROR
                            ? "(w - q)^2 * diag(H)" : "diag(H)", err);
    qn_picture_done(&pic);
    free(v);
    return s;
}

static void put_text(qn_cellgrid *g, int x, int y, const char *s, qn_color fg, qn_color bg)
{
    for (; *s && x < g->w; s++, x++) {
        qn_cell *c = &g->cells[(size_t)y * (size_t)g->w + (size_t)x];
        c->glyph[0] = *s;
        c->glyph[1] = 0;
        c->fg = fg;
        c->bg = bg;
    }
}

/* Blocks down, the seven linears across; each cell coloured by its relative
   error (log scale when the errors span more than 10x, as the figure) with the
   value on its first line and the bits on its second. */
static qn_status show_overview(const qn_runpic *p, const term *t, qn_err *err)
{
    enum { LABEL = 7, CELL = 10 };
    qn_cellgrid g = { 0 };
    size_t n = p->n_blocks * QN_RUN_SUBLAYERS;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++)
        if (p->rel_err[i] > 0) { lo = fmin(lo, p->rel_err[i]); hi = fmax(hi, p->rel_err[i]); }
    bool log = hi > 0 && hi / lo > 10;
    qn_colormap cm = body_cmap(t, QN_CMAP_MAGMA);
    qn_status s = qn_cellgrid_init(&g, LABEL + CELL * QN_RUN_SUBLAYERS, 1 + 2 * (int)p->n_blocks, err);
    if (s) return s;
    qn_color none = { QN_COLOR_DEFAULT, 0, { 0, 0, 0 } };   /* the grid starts blank in default colours */
    char buf[32];
    for (int j = 0; j < QN_RUN_SUBLAYERS; j++)
        put_text(&g, LABEL + j * CELL + 1, 0, qn_run_sublayer_names[j], none, none);
    for (size_t b = 0; b < p->n_blocks; b++) {
        int y = 1 + 2 * (int)b;
        snprintf(buf, sizeof buf, "blk %zu", b);
        put_text(&g, 0, y, buf, none, none);
        for (int j = 0; j < QN_RUN_SUBLAYERS; j++) {
            double e = p->rel_err[b * QN_RUN_SUBLAYERS + (size_t)j], bits = p->bits[b * QN_RUN_SUBLAYERS + (size_t)j];
            double f = !(hi > lo) ? 0.5 : log ? (log10(e) - log10(lo)) / (log10(hi) - log10(lo)) : (e - lo) / (hi - lo);
            qn_rgb c = qn_colormap_at(cm, f);
            qn_color bg = isnan(e) ? none : cell_color(t, c);
            qn_color fg = isnan(e) ? none : cell_color(t, qn_rgb_luminance(c) > 0.36 ? (qn_rgb){ 0, 0, 0 }
                                                                                       : (qn_rgb){ 255, 255, 255 });
            int x = LABEL + j * CELL;
            put_text(&g, x, y, "         ", fg, bg);
            put_text(&g, x, y + 1, "         ", fg, bg);
            if (isnan(e)) { put_text(&g, x + 1, y, "-", none, none); continue; }
            snprintf(buf, sizeof buf, e < 1e-3 ? " %.2e" : " %.5f", e);
            put_text(&g, x, y, buf, fg, bg);
            if (!isnan(bits)) {
                snprintf(buf, sizeof buf, " %.3g b", bits);
                put_text(&g, x, y + 1, buf, fg, bg);
            }
        }
    }
    s = print_cells(&g, err);
    qn_cellgrid_done(&g);
    if (!s) printf("cells: relative error and bits per parameter%s\n", log ? "; colour on a log scale" : "");
    return s;
}

/* Line plots keep their figure, scaled to the terminal's width. */
static qn_status show_figure(const qn_runpic *p, const term *t, qn_err *err)
{
    qn_font *font = NULL;
    qn_picture pic = { 0 };
    qn_viz_opts o = { .no_color = t->colors == QN_CELLS_MONO || t->cmap == QN_CMAP_GREYS };
    qn_status s = qn_font_open(&font, NULL, err);
    if (!s) s = qn_runpic_figure(p, font, &o, &pic, err);
    if (!s) {
        int w = t->width;
        int h = (int)lround((double)w * pic.image.h / pic.image.w / 2.0);
        s = print_raster(&pic.image, w, h < 1 ? 1 : h, t, err);
    }
    qn_picture_done(&pic);
    qn_font_close(font);
    return s;
}

enum { O_WHAT = 256, O_LAYER, O_WIDTH, O_COLORS, O_ASCII, O_CMAP, O_HELP };

static const struct option k_longopts[] = {
    { "what", required_argument, 0, O_WHAT }, { "layer", required_argument, 0, O_LAYER },
    { "width", required_argument, 0, O_WIDTH }, { "colors", required_argument, 0, O_COLORS },
    { "ascii", no_argument, 0, O_ASCII }, { "colormap", required_argument, 0, O_CMAP },
    { "help", no_argument, 0, O_HELP }, { 0, 0, 0, 0 } };

static bool parse_colors(const char *v, qn_cell_colors *out)
{
    static const char *const names[] = { "truecolor", "256", "8", "mono" };
    static const qn_cell_colors values[] = { QN_CELLS_TRUECOLOR, QN_CELLS_256, QN_CELLS_8, QN_CELLS_MONO };
    for (size_t i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0) { *out = values[i]; return true; }
    return false;
}

int qn_cmd_show(int argc, char **argv)
{
    const char *what = NULL, *layer = NULL;
    term t = detect_terminal();
    size_t width;
    qn_err err = { 0 };
    qn_colormap cm;
    bool colors_given = false, ascii = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", k_longopts, NULL)) != -1) {
        switch (ch) {
        case O_WHAT: what = optarg; break;
        case O_LAYER: layer = optarg; break;
        case O_WIDTH: if (!qn_arg_size("show", "--width", optarg, 16, 2000, &width)) return 2; t.width = (int)width; break;
        case O_COLORS:
            if (!parse_colors(optarg, &t.colors))
                return qn_arg_usage_error("show", k_usage, "--colors: expected truecolor, 256, 8 or mono, found '%s'", optarg);
            colors_given = true;
            break;
        case O_ASCII: t.utf8 = false; ascii = true; break;
        case O_CMAP: if (qn_runpic_parse_colormap(optarg, &cm, &err)) return qn_cli_fail("show", &err); t.cmap = (int)cm; break;
        case O_HELP: return qn_arg_help(k_help);
        default: return qn_arg_bad_option("show", k_longopts, argc, argv);
        }
    }
    if (ascii && !colors_given) t.colors = QN_CELLS_MONO;
    if (optind != argc - 1) return qn_arg_usage_error("show", k_usage, "expected one RUN folder");
    if (!what) return qn_arg_usage_error("show", k_usage, "--what KIND is required");
    int kind;
    if (qn_runpic_parse_kind(what, false, &kind, &err)) return qn_cli_fail("show", &err);
    qn_run_folder *run = NULL;
    qn_runpic p = { 0 };
    qn_status s = qn_run_open(&run, argv[optind], &err);
    if (!s) s = qn_runpic_prepare(&p, run, (qn_runpic_kind)kind, layer, &err);
    if (!s) {
        print_title(&p, &t);
        if (kind == QN_RUNPIC_OVERVIEW) s = show_overview(&p, &t, &err);
        else if (kind == QN_RUNPIC_CODEBOOK || kind == QN_RUNPIC_CONVERGENCE) s = show_figure(&p, &t, &err);
        else s = show_heat(&p, &t, &err);
    }
    int rc = s ? qn_cli_fail("show", &err) : 0;
    qn_runpic_done(&p);
    qn_run_close(run);
    return rc;
}
