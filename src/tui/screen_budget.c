/* screen_budget.c: the Budget screen. Left, a form: preset, method and the
   method's knobs (SpQR's beta1/beta2, statistic bits and outlier threshold
   tau [Dettmers et al. 2023]; AQLM's M codebooks of 2^B codewords over groups
   of g [Egiazarian et al. 2024]; GPTQ's damping and act-order), then the
   calibration text, sample count and sequence length, and the output folder.
   Left/Right step a value, Enter types one. Right, what the choice costs:
   bits per parameter of the linears and the projected size of this model with
   its ratio to fp16 (qn_quant_projected_bits), updated as values change. */
#include "tui/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/qmethod.h"
#include "tui/text.h"

typedef enum {
    F_PRESET, F_METHOD, F_WBITS, F_GROUP, F_ACT_ORDER, F_DAMP, F_BETA2, F_STAT_BITS, F_TAU,
    F_CODEBOOKS, F_CB_BITS, F_AQ_GROUP, F_BEAM, F_CALIB, F_NSAMPLES, F_SEQLEN, F_SEED, F_OUT, F_START, F_COUNT
} field;

typedef struct {
    size_t sel;                 /* index into the visible fields */
    qn_box form;
    int    form_top_row;        /* screen row of the first field */
} budget_view;

static const char *const k_labels[F_COUNT] = {
    "Preset", "Method", "Weight bits", "Group size", "Act order", "Damping", "Stat group", "Stat bits",
    "Outlier tau", "Codebooks M", "Code bits B", "Group g", "Beam", "Calib text", "Samples", "Seq length",
    "Seed", "Output", "",
};

/* The fields shown for the method, in order; returns the count. */
static size_t visible(const qn_quant_config *q, field *out)
{
    size_t n = 0;
    out[n++] = F_PRESET;
    out[n++] = F_METHOD;
    switch (q->method) {
    case QN_METHOD_RTN: out[n++] = F_WBITS; out[n++] = F_GROUP; break;
    case QN_METHOD_GPTQ: out[n++] = F_WBITS; out[n++] = F_GROUP; out[n++] = F_ACT_ORDER; out[n++] = F_DAMP; break;
    case QN_METHOD_SPQR:
        out[n++] = F_WBITS; out[n++] = F_GROUP; out[n++] = F_BETA2; out[n++] = F_STAT_BITS; out[n++] = F_TAU;
        out[n++] = F_ACT_ORDER; out[n++] = F_DAMP;
        break;
    default: out[n++] = F_CODEBOOKS; out[n++] = F_CB_BITS; out[n++] = F_AQ_GROUP; out[n++] = F_BEAM; break;
    }
    out[n++] = F_CALIB;
    out[n++] = F_NSAMPLES;
    out[n++] = F_SEQLEN;
    out[n++] = F_SEED;
    out[n++] = F_OUT;
    out[n++] = F_START;
    return n;
}

static void value_text(const qn_app *app, field f, char *buf, size_t cap)
{
    const qn_quant_config *q = &app->qcfg;
    size_t np;
    const qn_preset *p = qn_presets(&np);
    switch (f) {
    case F_PRESET: snprintf(buf, cap, "%s", app->preset >= 0 ? p[app->preset].name : "custom"); break;
    case F_METHOD: snprintf(buf, cap, "%s", qn_method_name(q->method)); break;
    case F_WBITS: snprintf(buf, cap, "%d", q->wbits); break;
    case F_GROUP:
        if (q->groupsize) snprintf(buf, cap, "%zu", q->groupsize);
        else snprintf(buf, cap, "row");
        break;
    case F_ACT_ORDER: snprintf(buf, cap, "%s", q->act_order ? "yes" : "no"); break;
    case F_DAMP: snprintf(buf, cap, "%g", q->percdamp); break;
    case F_BETA2: snprintf(buf, cap, "%zu", q->qq_groupsize); break;
    case F_STAT_BITS: snprintf(buf, cap, "%d", q->qq_scale_bits); break;
    case F_TAU: snprintf(buf, cap, isinf(q->outlier_threshold) ? "none" : "%g", q->outlier_threshold); break;
    case F_CODEBOOKS: snprintf(buf, cap, "%d", q->codebooks); break;
    case F_CB_BITS: snprintf(buf, cap, "%d", q->codebook_bits); break;
    case F_AQ_GROUP: snprintf(buf, cap, "%zu", q->group); break;
    case F_BEAM: snprintf(buf, cap, "%d", q->beam); break;
    case F_CALIB: snprintf(buf, cap, "%s", app->calib[0] ? app->calib : "(none: Enter to set)"); break;
    case F_NSAMPLES: snprintf(buf, cap, "%zu", q->nsamples); break;
    case F_SEQLEN: snprintf(buf, cap, "%zu tokens", q->seqlen); break;
    case F_SEED: snprintf(buf, cap, "%llu", (unsigned long long)q->seed); break;
    case F_OUT: snprintf(buf, cap, "%s", app->out_dir[0] ? app->out_dir : "automatic (quench-runs/...)"); break;
    case F_START: snprintf(buf, cap, "[ Start the run ]"); break;
    default: buf[0] = 0;
    }
}

/* Method knobs equal (calibration aside)? */
static bool same_knobs(const qn_quant_config *a, const qn_quant_config *b)
{
    return a->method == b->method && a->wbits == b->wbits && a->groupsize == b->groupsize &&
           a->percdamp == b->percdamp && a->act_order == b->act_order && a->qq_groupsize == b->qq_groupsize &&
           a->qq_scale_bits == b->qq_scale_bits && a->qq_zero_bits == b->qq_zero_bits &&
           (a->outlier_threshold == b->outlier_threshold) && a->codebooks == b->codebooks &&
           a->codebook_bits == b->codebook_bits && a->group == b->group && a->beam == b->beam;
}

static void sync_preset(qn_app *app)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    app->preset = -1;
    for (size_t i = 0; i < n; i++)
        if (same_knobs(&p[i].config, &app->qcfg)) { app->preset = (int)i; return; }
}

/* A preset's knobs with the current calibration settings kept. */
static void take_preset(qn_app *app, int index)
{
    qn_quant_config keep = app->qcfg;
    qn_app_set_preset(app, index);
    app->qcfg.nsamples = keep.nsamples;
    app->qcfg.seqlen = keep.seqlen;
    app->qcfg.seed = keep.seed;
}

static void set_method(qn_app *app, int m)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    for (size_t i = 0; i < n; i++)
        if ((int)p[i].config.method == m) { take_preset(app, (int)i); return; }
    qn_quant_config *q = &app->qcfg;
    q->method = (qn_method)m;
    if (m == QN_METHOD_AQLM) { q->codebooks = 2; q->codebook_bits = 8; q->group = 8; q->beam = 8; q->tol = 1e-2; }
    sync_preset(app);
}

/* The next larger (dir > 0) or smaller value of a sorted list, clamped to its ends. */
static size_t step_list(size_t v, const size_t *list, size_t n, int dir)
{
    if (dir > 0) {
        for (size_t i = 0; i < n; i++)
            if (list[i] > v) return list[i];
        return list[n - 1];
    }
    for (size_t i = n; i-- > 0;)
        if (list[i] < v) return list[i];
    return list[0];
}

static double step_double(double v, const double *list, size_t n, int dir)
{
    if (dir > 0) {
        for (size_t i = 0; i < n; i++)
            if (list[i] > v * (1 + 1e-9)) return list[i];
        return list[n - 1];
    }
    for (size_t i = n; i-- > 0;)
        if (list[i] < v * (1 - 1e-9)) return list[i];
    return list[0];
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void change(qn_app *app, field f, int dir)
{
    qn_quant_config *q = &app->qcfg;
    static const size_t groups[] = { 0, 16, 32, 64, 128, 256 }, betas[] = { 4, 8, 16, 32, 64, 128 };
    static const double damps[] = { 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0 };
    static const double taus[] = { 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, INFINITY };
    size_t np;
    qn_presets(&np);
    switch (f) {
    case F_PRESET: take_preset(app, app->preset < 0 ? 0 : (app->preset + dir + (int)np) % (int)np); return;
    case F_METHOD: set_method(app, (q->method + dir + QN_METHOD_COUNT) % QN_METHOD_COUNT); return;
    case F_WBITS: q->wbits = clampi(q->wbits + dir, 1, 8); break;
    case F_GROUP:
        q->groupsize = q->method == QN_METHOD_SPQR ? step_list(q->groupsize, betas + 1, 5, dir) : step_list(q->groupsize, groups, 6, dir);
        break;
    case F_ACT_ORDER: q->act_order = !q->act_order; break;
    case F_DAMP: q->percdamp = step_double(q->percdamp, damps, 7, dir); break;
    case F_BETA2: q->qq_groupsize = step_list(q->qq_groupsize, betas, 6, dir); break;
    case F_STAT_BITS: q->qq_scale_bits = q->qq_zero_bits = clampi(q->qq_scale_bits + dir, 1, 8); break;
    case F_TAU: q->outlier_threshold = step_double(q->outlier_threshold, taus, 8, dir); break;
    case F_CODEBOOKS: q->codebooks = clampi(q->codebooks + dir, 1, 8); break;
    case F_CB_BITS: q->codebook_bits = clampi(q->codebook_bits + dir, 1, 16); break;
    case F_AQ_GROUP: q->group = dir > 0 ? (q->group < 32 ? q->group * 2 : 32) : (q->group > 2 ? q->group / 2 : 2); break;
    case F_BEAM: q->beam = clampi(dir > 0 ? q->beam * 2 : q->beam / 2, 1, 64); break;
    case F_NSAMPLES: q->nsamples = dir > 0 ? (q->nsamples < 4096 ? q->nsamples * 2 : 4096) : (q->nsamples > 1 ? q->nsamples / 2 : 1); return;
    case F_SEQLEN: q->seqlen = dir > 0 ? (q->seqlen < 8192 ? q->seqlen * 2 : 8192) : (q->seqlen > 8 ? q->seqlen / 2 : 8); return;
    case F_SEED: q->seed = dir > 0 ? q->seed + 1 : q->seed > 0 ? q->seed - 1 : 0; return;
    default: return;
    }
    sync_preset(app);
}

static void draw_costs(const qn_app *app, qn_box in)
{
    const qn_theme *t = &app->theme;
    int y = in.y, x = in.x + 1, w = in.w - 2;
    size_t np;
    const qn_preset *p = qn_presets(&np);
    if (!app->info) { qn_w_text(t, y, x, w, QN_TH_DIM, "No model: choose one on the Models screen (1)."); return; }
    double bytes = 0, bits = qn_quant_projected_bits(&app->qcfg, &app->info->shape, &bytes);
    double fp16 = (double)app->info->n_params * 2;
    char a[32], b[32];
    qn_w_text(t, y++, x, w, QN_TH_GOOD, qn_app_basename(app->info->path));
    qn_w_textf(t, y++, x, w, QN_TH_NORMAL, "%-12s%.3f", "bits/param", bits);
    qn_text_bytes((uint64_t)bytes, a, sizeof a);
    qn_text_bytes((uint64_t)fp16, b, sizeof b);
    qn_w_textf(t, y++, x, w, QN_TH_NORMAL, "%-12s%s", "size", a);
    qn_w_textf(t, y++, x, w, QN_TH_DIM, "%-12s%s", "fp16 size", b);
    double ratio = fp16 > 0 ? bytes / fp16 : 0;
    if (ratio <= 1)
        qn_w_textf(t, y++, x, w, ratio < 0.5 ? QN_TH_GOOD : QN_TH_WARN, "%-12s%.3f (%.1fx smaller)", "ratio", ratio,
                   ratio > 0 ? 1 / ratio : 0);
    else
        qn_w_textf(t, y++, x, w, QN_TH_BAD, "%-12s%.3f (%.1fx LARGER than fp16)", "ratio", ratio, ratio);
    if (bits > 16 && y < in.y + in.h)
        qn_w_text(t, y++, x, w, QN_TH_BAD, "more bits than fp16: codebooks outweigh this model's layers");
    /* AQLM's group is fitted to the model's widths: say which one a run will use */
    qn_quant_config fit = app->qcfg;
    const qn_config *c = &app->info->shape.cfg;
    size_t widths[3] = { (size_t)c->dim, (size_t)c->n_heads * c->head_dim, (size_t)c->hidden_dim };
    bool changed = false;
    qn_quant_config_fit(&fit, widths, 3, &changed, NULL);
    if (changed && y < in.y + in.h)
        qn_w_textf(t, y++, x, w, QN_TH_WARN, "group %zu used: %zu does not divide the widths", fit.group, app->qcfg.group);
    if (w > 10) {
        qn_w_text(t, y, x, 6, QN_TH_DIM, "fp16");
        qn_w_bar(t, y++, x + 6, w - 6, 1.0, QN_TH_WARN);
        qn_w_text(t, y, x, 6, QN_TH_DIM, "this");
        qn_w_bar(t, y++, x + 6, w - 6, ratio, QN_TH_BAR);
    }
    y++;
    const char *name = app->preset >= 0 ? p[app->preset].name : "custom";
    const char *summary = app->preset >= 0 ? p[app->preset].summary : "options of your own (no preset matches)";
    if (y < in.y + in.h) qn_w_text(t, y++, x, w, QN_TH_HEADER, name);
    for (const char *s = summary; *s && y < in.y + in.h - 3;) {
        size_t next, len = qn_text_wrap(s, w, &next);
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), s);
        qn_w_text(t, y++, x, w, QN_TH_NORMAL, line);
        s += next;
    }
    y++;
    const qn_quant_config *q = &app->qcfg;
    if (y < in.y + in.h)
        qn_w_textf(t, y++, x, w, QN_TH_NORMAL, "calibration %zu x %zu tokens", q->nsamples, q->seqlen);
    if (y < in.y + in.h && q->eval_ctx && q->seqlen * 2 > q->eval_ctx)
        qn_w_textf(t, y++, x, w, QN_TH_WARN, "seq length over %zu (half of %zu)", q->eval_ctx / 2, q->eval_ctx);
    if (y + 1 < in.y + in.h) qn_w_text(t, in.y + in.h - 1, x, w, QN_TH_DIM, "s: start  S: start paused");
}

static void draw(qn_screen *s, qn_app *app, qn_box area)
{
    budget_view *v = s->priv;
    const qn_theme *t = &app->theme;
    field f[F_COUNT];
    size_t n = visible(&app->qcfg, f);
    if (v->sel >= n) v->sel = n - 1;
    int lw = area.w >= 100 ? area.w / 2 : area.w - 38;
    if (area.w < 70) lw = area.w;
    qn_box in = qn_w_frame(t, (qn_box){ area.y, area.x, area.h, lw }, "Method and budget", true);
    v->form = in;
    size_t top = 0;
    qn_w_scroll(&top, v->sel, n, in.h);
    v->form_top_row = (int)top;
    for (int r = 0; r < in.h && top + (size_t)r < n; r++) {
        size_t i = top + (size_t)r;
        bool sel = i == v->sel;
        char val[QN_PATH_CAP];
        value_text(app, f[i], val, sizeof val);
        int y = in.y + r;
        if (sel) qn_w_fill(t, y, in.x, in.w, QN_TH_SELECTED);
        qn_theme_role role = sel ? QN_TH_SELECTED : QN_TH_NORMAL;
        qn_w_text(t, y, in.x + 1, 13, sel ? role : QN_TH_DIM, k_labels[f[i]]);
        bool steps = f[i] != F_CALIB && f[i] != F_OUT && f[i] != F_START;
        char shown[QN_PATH_CAP + 16];
        if (f[i] == F_CALIB || f[i] == F_OUT) snprintf(shown, sizeof shown, "%s", app->calib[0] && f[i] == F_CALIB ? qn_app_basename(val) : val);
        else snprintf(shown, sizeof shown, steps && sel ? "< %s >" : "%s", val);
        qn_w_text(t, y, in.x + 15, in.w - 16, f[i] == F_START && !sel ? QN_TH_GOOD : role, shown);
    }
    if (area.w - lw >= 24) {
        qn_box right = qn_w_frame(t, (qn_box){ area.y, area.x + lw, area.h, area.w - lw }, "Projected", false);
        draw_costs(app, right);
    }
}

enum { CMD_EDIT = QN_CMD_SCREEN_BASE };

static void edit(qn_app *app, field f)
{
    char val[QN_PATH_CAP];
    if (f == F_START) { qn_app_start_run(app, false); return; }
    if (f == F_ACT_ORDER) { change(app, f, 1); return; }
    if (f == F_CALIB) snprintf(val, sizeof val, "%s", app->calib);
    else if (f == F_OUT) snprintf(val, sizeof val, "%s", app->out_dir);
    else value_text(app, f, val, sizeof val);
    if (f == F_SEQLEN) snprintf(val, sizeof val, "%zu", app->qcfg.seqlen);
    char prompt[128];
    snprintf(prompt, sizeof prompt, "%s:%s", k_labels[f], f == F_OUT ? " (empty: automatic)" : f == F_TAU ? " (none: no outliers)"
             : f == F_PRESET ? " (a name; Left/Right steps through them)" : f == F_METHOD ? " (rtn, gptq, spqr or aqlm)" : "");
    qn_app_input(app, QN_SCR_BUDGET, CMD_EDIT + f, k_labels[f], prompt, val);
}

static void on_dialog(qn_screen *s, qn_app *app, int cmd, const char *input)
{
    (void)s;
    field f = (field)(cmd - CMD_EDIT);
    qn_quant_config *q = &app->qcfg;
    char *end = NULL;
    if (f == F_CALIB) { snprintf(app->calib, sizeof app->calib, "%s", input); return; }
    if (f == F_OUT) { snprintf(app->out_dir, sizeof app->out_dir, "%s", input); return; }
    if (f == F_PRESET || f == F_METHOD) {
        size_t n;
        const qn_preset *all = qn_presets(&n);
        const qn_preset *p = f == F_PRESET ? qn_preset_find(input) : NULL;
        int m = f == F_METHOD ? qn_method_from_name(input) : -1;
        if (p) take_preset(app, (int)(p - all));
        else if (m >= 0) set_method(app, m);
        else qn_app_message(app, true, f == F_PRESET ? "No such preset" : "No such method", "'%s'", input);
        return;
    }
    double d = strtod(input, &end);
    bool none = f == F_TAU && (!strcmp(input, "none") || !strcmp(input, "inf"));
    if (!none && (end == input || *end || !(d >= 0))) {
        qn_app_message(app, true, "Not a number", "%s: '%s' is not a number", k_labels[f], input);
        return;
    }
    long v = (long)d;
    switch (f) {
    case F_WBITS: q->wbits = clampi((int)v, 1, 8); break;
    case F_GROUP: q->groupsize = (size_t)v; break;
    case F_DAMP: q->percdamp = d; break;
    case F_BETA2: q->qq_groupsize = v > 0 ? (size_t)v : 1; break;
    case F_STAT_BITS: q->qq_scale_bits = q->qq_zero_bits = clampi((int)v, 1, 16); break;
    case F_TAU: q->outlier_threshold = none ? INFINITY : d; break;
    case F_CODEBOOKS: q->codebooks = clampi((int)v, 1, 8); break;
    case F_CB_BITS: q->codebook_bits = clampi((int)v, 1, 16); break;
    case F_AQ_GROUP: q->group = v > 0 ? (size_t)v : 1; break;
    case F_BEAM: q->beam = clampi((int)v, 1, 256); break;
    case F_NSAMPLES: q->nsamples = v > 0 ? (size_t)v : 1; return;
    case F_SEQLEN: q->seqlen = v > 1 ? (size_t)v : 2; return;
    case F_SEED: q->seed = (uint64_t)v; return;
    default: return;
    }
    sync_preset(app);
}

static qn_ui_result on_action(qn_screen *s, qn_app *app, qn_action act, int key)
{
    (void)key;
    budget_view *v = s->priv;
    field f[F_COUNT];
    size_t n = visible(&app->qcfg, f);
    if (v->sel >= n) v->sel = n - 1;
    switch (act) {
    case QN_ACT_UP: qn_w_move(&v->sel, -1, n); return QN_UI_REDRAW;
    case QN_ACT_DOWN: case QN_ACT_NEXT_PANE: qn_w_move(&v->sel, 1, n); return QN_UI_REDRAW;
    case QN_ACT_PREV_PANE: qn_w_move(&v->sel, -1, n); return QN_UI_REDRAW;
    case QN_ACT_HOME: v->sel = 0; return QN_UI_REDRAW;
    case QN_ACT_END: v->sel = n - 1; return QN_UI_REDRAW;
    case QN_ACT_PAGE_UP: qn_w_move(&v->sel, -8, n); return QN_UI_REDRAW;
    case QN_ACT_PAGE_DOWN: qn_w_move(&v->sel, 8, n); return QN_UI_REDRAW;
    case QN_ACT_DEC: change(app, f[v->sel], -1); return QN_UI_REDRAW;
    case QN_ACT_INC: change(app, f[v->sel], 1); return QN_UI_REDRAW;
    case QN_ACT_EDIT: case QN_ACT_OPEN: edit(app, f[v->sel]); return QN_UI_REDRAW;
    case QN_ACT_START: qn_app_start_run(app, false); return QN_UI_REDRAW;
    case QN_ACT_START_PAUSED: qn_app_start_run(app, true); return QN_UI_REDRAW;
    default: return QN_UI_IGNORED;
    }
}

static qn_ui_result on_click(qn_screen *s, qn_app *app, int y, int x)
{
    budget_view *v = s->priv;
    field f[F_COUNT];
    size_t n = visible(&app->qcfg, f);
    qn_box b = v->form;
    if (y < b.y || y >= b.y + b.h || x < b.x || x >= b.x + b.w) return QN_UI_IGNORED;
    size_t row = (size_t)v->form_top_row + (size_t)(y - b.y);
    if (row < n) v->sel = row;
    return QN_UI_REDRAW;
}

static void screen_free(qn_screen *s)
{
    free(s->priv);
    free(s);
}

qn_screen *qn_screen_budget_create(void)
{
    qn_screen *s = calloc(1, sizeof *s);
    budget_view *v = calloc(1, sizeof *v);
    if (!s || !v) { free(s); free(v); return NULL; }
    *s = (qn_screen){ .title = "Budget", .draw = draw, .on_action = on_action, .on_click = on_click,
                      .on_dialog = on_dialog, .free = screen_free, .priv = v };
    return s;
}
