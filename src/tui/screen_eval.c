/* screen_eval.c: the Evaluate screen. Perplexity of the original model and of
   the run's compressed model on one text (GPTQ protocol: non-overlapping
   windows of ctx tokens), one after the other in a worker, side by side with
   their progress and the relative change; earlier results of the session stay
   in a table. Below, generation: a prompt box, temperature and length, and the
   tokens as they stream in (QN_EV_TOKEN), from either model. */
#include "tui/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/text.h"

typedef struct {
    bool        editing;
    qn_lineedit prompt;
} eval_view;

enum { CMD_TEXT = QN_CMD_SCREEN_BASE, CMD_CTX };

static void draw_ppl(const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_eval *ev = &app->eval;
    int x = in.x + 1, w = in.w - 2;
    char chunks[32] = "all";
    if (ev->chunks) snprintf(chunks, sizeof chunks, "%zu", ev->chunks);
    qn_w_textf(t, in.y, x, w, QN_TH_NORMAL, "text %s  ctx %zu  chunks %s  (f changes)", qn_app_basename(ev->text),
               ev->ctx, chunks);
    const char *comp = qn_app_compressed_model(app);
    const char *names[2] = { app->info ? qn_app_basename(comp ? app->run.model : app->info->path) : "-",
                             comp ? app->run.label : "(no finished run)" };
    for (int i = 0; i < 2 && in.h > 2 + i; i++) {
        int y = in.y + 1 + i;
        qn_w_textf(t, y, x, 24, QN_TH_NORMAL, "%-10s %-13.13s", i ? "compressed" : "original", names[i]);
        char label[64] = "";
        if (isfinite(ev->ppl_value[i])) snprintf(label, sizeof label, "ppl %.4f", ev->ppl_value[i]);
        if (i == 1 && isfinite(ev->ppl_value[0]) && isfinite(ev->ppl_value[1]) && ev->ppl_done[0] && ev->ppl_done[1]) {
            size_t n = strlen(label);
            snprintf(label + n, sizeof label - n, " (%+.1f%%)", 100 * (ev->ppl_value[1] / ev->ppl_value[0] - 1));
        }
        if (ev->ppl_err[i][0]) qn_w_text(t, y, x + 25, w - 25, QN_TH_BAD, ev->ppl_err[i]);
        else if (w - 25 > 8) qn_w_meter(t, y, x + 25, w - 25, ev->ppl_frac[i], label);
    }
    if (in.h > 3)
        qn_w_text(t, in.y + 3, x, w, QN_TH_DIM, app->eval.ppl_worker ? "measuring... (c stops)" : "p measures both models");
}

static void draw_rows(const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_eval *ev = &app->eval;
    char head[160];
    snprintf(head, sizeof head, "%-16s %-22s %5s %9s %8s %7s %6s", "model", "text", "ctx", "ppl", "+/-", "tokens", "sec");
    qn_w_fill(t, in.y, in.x, in.w, QN_TH_HEADER);
    qn_w_text(t, in.y, in.x, in.w, QN_TH_HEADER, head);
    int rows = in.h - 1;
    size_t first = ev->n_rows > (size_t)rows ? ev->n_rows - (size_t)rows : 0;
    for (size_t i = first; i < ev->n_rows; i++) {
        const qn_eval_row *r = &ev->rows[i];
        qn_w_textf(t, in.y + 1 + (int)(i - first), in.x, in.w, QN_TH_NORMAL, "%-16.16s %-22.22s %5zu %9.4f %8.4f %7zu %6.1f",
                   r->model, r->text, r->ctx, r->ppl, r->ppl_pm, r->tokens, r->seconds);
    }
    if (!ev->n_rows) qn_w_text(t, in.y + 1, in.x, in.w, QN_TH_DIM, "(results of this session appear here)");
}

/* Wraps text into the box from its end, so the newest tokens stay in view. */
static void draw_output(const qn_theme *t, const char *text, size_t len, qn_box b)
{
    if (b.w < 4 || b.h < 1 || !len) return;
    char *clean = malloc(len * 2 + 1);
    if (!clean) return;
    qn_text_sanitize(text, len, clean, len * 2 + 1);
    size_t n = strlen(clean), starts[512], lens[512], n_lines = 0, i = 0;
    while (i < n && n_lines < 512) {
        size_t next;
        starts[n_lines] = i;
        lens[n_lines++] = qn_text_wrap(clean + i, b.w, &next);
        i += next;
    }
    size_t first = n_lines > (size_t)b.h ? n_lines - (size_t)b.h : 0;
    for (size_t l = first; l < n_lines; l++) {
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(lens[l] < sizeof line - 1 ? lens[l] : sizeof line - 1), clean + starts[l]);
        qn_w_text(t, b.y + (int)(l - first), b.x, b.w, QN_TH_NORMAL, line);
    }
    free(clean);
}

/* The prompt and what a model added to it, as one text. */
static void draw_prompted(const qn_theme *t, const char *prompt, const char *out, size_t len, qn_box b)
{
    if (!out || !len) return;
    size_t pl = strlen(prompt);
    char *all = malloc(pl + len + 1);
    if (!all) return;
    memcpy(all, prompt, pl);
    memcpy(all + pl, out, len);
    all[pl + len] = 0;
    draw_output(t, all, pl + len, b);
    free(all);
}

static void draw_gen(const eval_view *v, const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    const qn_eval *ev = &app->eval;
    qn_w_text(t, in.y, in.x + 1, 8, QN_TH_HEADER, "Prompt");
    if (v->editing) qn_w_lineedit(t, in.y, in.x + 9, in.w - 10, &v->prompt, true);
    else qn_w_text(t, in.y, in.x + 9, in.w - 10, QN_TH_NORMAL, ev->prompt);
    bool comp = ev->gen_compressed && qn_app_compressed_model(app);
    qn_w_textf(t, in.y + 1, in.x + 1, in.w - 2, QN_TH_DIM, "model %s (m)  temperature %.1f (t/T)  length %zu (</>)  %s",
               ev->gen_compressed ? (comp ? app->run.label : "compressed: none yet") : "original", (double)ev->temperature,
               ev->n_new, ev->gen_status);
    if (ev->gen_pair && in.w >= 40 && in.h >= 4) {
        /* side by side, same prompt and seed: the original left, the compressed right */
        int half = (in.w - 3) / 2;
        bool two = ev->gen_first != NULL;   /* the original has finished */
        const char *texts[2] = { two ? ev->gen_first : ev->gen_out, two ? ev->gen_out : NULL };
        size_t lens[2] = { two ? ev->gen_first_len : ev->gen_len, two ? ev->gen_len : 0 };
        for (int k = 0; k < 2; k++) {
            int x = in.x + 1 + k * (half + 1);
            qn_w_text(t, in.y + 2, x, half, QN_TH_HEADER, k ? app->run.label : "original");
            draw_prompted(t, ev->prompt, texts[k], lens[k], (qn_box){ in.y + 3, x, in.h - 3, half });
        }
    } else if (ev->gen_out && ev->gen_len) {
        draw_prompted(t, ev->prompt, ev->gen_out, ev->gen_len, (qn_box){ in.y + 2, in.x + 1, in.h - 2, in.w - 2 });
    } else {
        qn_w_text(t, in.y + 2, in.x + 1, in.w - 2, QN_TH_DIM, "g generates from the prompt; e edits it");
    }
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    eval_view *v = s->priv;
    const qn_theme *t = &app->theme;
    int ppl_h = 6, rows_h = area.h >= 30 ? 8 : 5;
    qn_box pb = qn_w_frame(t, (qn_box){ area.y, area.x, ppl_h, area.w }, "Perplexity", !v->editing);
    draw_ppl(app, pb);
    qn_box rb = qn_w_frame(t, (qn_box){ area.y + ppl_h, area.x, rows_h, area.w }, "Results", false);
    draw_rows(app, rb);
    int gh = area.h - ppl_h - rows_h;
    if (gh >= 4) {
        qn_box gb = qn_w_frame(t, (qn_box){ area.y + ppl_h + rows_h, area.x, gh, area.w }, "Generate", v->editing);
        draw_gen(v, app, gb);
    }
}

static void on_dialog(qn_screen *s, qn_app *app, int cmd, const char *input)
{
    (void)s;
    qn_eval *ev = &app->eval;
    if (cmd == CMD_TEXT) {
        if (input[0]) snprintf(ev->text, sizeof ev->text, "%s", input);
        char cur[64];
        snprintf(cur, sizeof cur, "%zu %zu", ev->ctx, ev->chunks);
        qn_app_input(app, QN_SCR_EVAL, CMD_CTX, "Context", "Context and chunks (0 chunks: the whole text):", cur);
    } else if (cmd == CMD_CTX) {
        unsigned long ctx = 0, chunks = 0;
        int n = sscanf(input, "%lu %lu", &ctx, &chunks);
        if (n < 1 || ctx < 2) { qn_app_message(app, true, "Not a context", "'%s': expected e.g. 256 16", input); return; }
        ev->ctx = ctx;
        if (n == 2) ev->chunks = chunks;
    }
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    eval_view *v = s->priv;
    qn_eval *ev = &app->eval;
    if (act == QN_ACT_TEXT) {
        qn_le_result r = qn_lineedit_key(&v->prompt, key);
        if (r == QN_LE_DONE) {
            snprintf(ev->prompt, sizeof ev->prompt, "%s", v->prompt.buf);
            v->editing = false;
            qn_app_start_gen(app);
        } else if (r == QN_LE_CANCEL) {
            v->editing = false;
        }
        return QN_UI_REDRAW;
    }
    switch (act) {
    case QN_ACT_PPL: qn_app_start_ppl(app); return QN_UI_REDRAW;
    case QN_ACT_GENERATE: qn_app_start_gen(app); return QN_UI_REDRAW;
    case QN_ACT_PROMPT: v->editing = true; qn_lineedit_set(&v->prompt, ev->prompt); return QN_UI_REDRAW;
    case QN_ACT_TOGGLE_MODEL: ev->gen_compressed = !ev->gen_compressed; return QN_UI_REDRAW;
    case QN_ACT_TEMP_UP: ev->temperature = fminf(2.0f, ev->temperature + 0.1f); return QN_UI_REDRAW;
    case QN_ACT_TEMP_DOWN: ev->temperature = fmaxf(0.0f, ev->temperature - 0.1f); return QN_UI_REDRAW;
    case QN_ACT_LEN_UP: ev->n_new = ev->n_new < 4096 ? ev->n_new * 2 : 4096; return QN_UI_REDRAW;
    case QN_ACT_LEN_DOWN: ev->n_new = ev->n_new > 1 ? ev->n_new / 2 : 1; return QN_UI_REDRAW;
    case QN_ACT_TEXT_FILE:
        qn_app_input(app, QN_SCR_EVAL, CMD_TEXT, "Evaluation text", "Text file:", ev->text);
        return QN_UI_REDRAW;
    case QN_ACT_CANCEL: qn_app_cancel_eval(app); return QN_UI_REDRAW;
    default: return QN_UI_IGNORED;
    }
}

static bool editing(qn_screen *s)
{
    return ((eval_view *)s->priv)->editing;
}

static void screen_free(qn_screen *s)
{
    free(s->priv);
    free(s);
}

qn_screen *qn_screen_eval_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    eval_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    *s = (qn_screen){ .title = "Evaluate", .draw = draw, .on_action = on_action, .on_dialog = on_dialog,
                      .editing = editing, .free = screen_free, .priv = v };
    return s;
}
