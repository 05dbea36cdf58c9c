/* app.c: the workbench state, dialogs and the commands screens ask for (see
   app.h); worker messages are applied in app_events.c. Everything here runs on
   the UI thread: workers are only started, paused, cancelled and joined from
   here, never waited for while they work. */
#include "tui/app.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/speed.h"
#include "tui/browser.h"
#include "tui/text.h"

/* LAYER_DONE copies of quantized weights kept for the pictures, in bytes. */
#define KEEP_WEIGHTS_BYTES ((size_t)256 << 20)

const char *qn_app_basename(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/') s--;
    return s;
}

/* ---- log and dialogs ---------------------------------------------------------- */

void qn_app_log(qn_app *app, qn_log_level level, const char *fmt, ...)
{
    size_t i = app->log.n % QN_LOG_LINES;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->log.line[i], sizeof app->log.line[i], fmt, ap);
    va_end(ap);
    app->log.level[i] = level;
    app->log.n++;
    app->dirty = true;
}

void qn_app_message(qn_app *app, bool error, const char *title, const char *fmt, ...)
{
    qn_dialog *d = &app->dialog;
    memset(d, 0, sizeof *d);
    d->kind = QN_DLG_MESSAGE;
    d->error = error;
    d->owner = -1;
    snprintf(d->title, sizeof d->title, "%s", title);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
    if (error) qn_app_log(app, QN_LOG_ERROR, "%s: %s", title, d->text);
    app->dirty = true;
}

void qn_app_confirm(qn_app *app, int owner, int cmd, const char *title, const char *text)
{
    qn_dialog *d = &app->dialog;
    memset(d, 0, sizeof *d);
    d->kind = QN_DLG_CONFIRM;
    d->owner = owner;
    d->cmd = cmd;
    snprintf(d->title, sizeof d->title, "%s", title);
    snprintf(d->text, sizeof d->text, "%s", text);
    app->dirty = true;
}

void qn_app_input(qn_app *app, int owner, int cmd, const char *title, const char *prompt, const char *value)
{
    qn_dialog *d = &app->dialog;
    memset(d, 0, sizeof *d);
    d->kind = QN_DLG_INPUT;
    d->owner = owner;
    d->cmd = cmd;
    snprintf(d->title, sizeof d->title, "%s", title);
    snprintf(d->text, sizeof d->text, "%s", prompt);
    qn_lineedit_set(&d->input, value);
    app->dirty = true;
}

void qn_app_dialog_done(qn_app *app, bool ok)
{
    qn_dialog d = app->dialog;
    app->dialog.kind = QN_DLG_NONE;
    app->dirty = true;
    if (!ok || d.kind == QN_DLG_MESSAGE) return;
    if (d.owner < 0) {
        if (d.cmd == QN_CMD_QUIT) app->quit = true;
        else if (d.cmd == QN_CMD_CANCEL_RUN) qn_app_cancel_run(app);
        return;
    }
    qn_screen *s = d.owner < QN_SCR_COUNT ? app->screens[d.owner] : NULL;
    if (s && s->on_dialog) s->on_dialog(s, app, d.cmd, d.input.buf);
}

void qn_app_switch(qn_app *app, int screen)
{
    if (screen < 0 || screen >= QN_SCR_COUNT || screen == app->screen) return;
    app->prev_screen = app->screen;
    app->screen = screen;
    app->dirty = true;
    if (screen == QN_SCR_RUNS) qn_screen_runs_rescan(app->screens[QN_SCR_RUNS]);
}

bool qn_app_busy(const qn_app *app)
{
    return app->run.worker || app->eval.ppl_worker || app->eval.gen_worker;
}

void qn_app_request_quit(qn_app *app)
{
    if (app->run.worker)
        qn_app_confirm(app, -1, QN_CMD_QUIT, "Quit?", "A quantization run is going. Quit and cancel it?\n"
                                                      "(Finished blocks stay checkpointed in its folder.)");
    else if (qn_app_busy(app))
        qn_app_confirm(app, -1, QN_CMD_QUIT, "Quit?", "An evaluation is going. Quit and stop it?");
    else
        app->quit = true;
}

/* ---- init and teardown ---------------------------------------------------------- */

static void find_exe_dir(qn_app *app, const char *argv0)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    else if (!realpath(argv0, exe)) { app->exe_dir[0] = 0; return; }
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(app->exe_dir, sizeof app->exe_dir, "%s", exe);
}

/* rel under ".", the binary's folder or its parent (for build folders); "" when none. */
static void find_asset(const qn_app *app, const char *rel, char *out, size_t cap)
{
    char path[QN_PATH_CAP + 64];
    const char *bases[] = { ".", app->exe_dir, NULL };
    char parent[QN_PATH_CAP + 8];
    snprintf(parent, sizeof parent, "%s/..", app->exe_dir);
    bases[2] = parent;
    for (int i = 0; i < 3; i++) {
        if (i > 0 && !app->exe_dir[0]) break;
        snprintf(path, sizeof path, "%s/%s", bases[i], rel);
        char real[PATH_MAX];
        if (qn_path_exists(path) && realpath(path, real)) { snprintf(out, cap, "%s", real); return; }
    }
    out[0] = 0;
}

static void default_texts(qn_app *app)
{
    const char *shared = getenv("QN_SHARED");
    char path[QN_PATH_CAP + 64];
    app->calib[0] = 0;
    if (shared && *shared) {
        snprintf(path, sizeof path, "%s/text/tinystories-valid-head.txt", shared);
        if (qn_path_exists(path)) qn_text_copy(app->calib, sizeof app->calib, path);
    }
    if (!app->calib[0]) find_asset(app, "../shared/text/tinystories-valid-head.txt", app->calib, sizeof app->calib);
    if (!app->calib[0]) find_asset(app, "../../shared/text/tinystories-valid-head.txt", app->calib, sizeof app->calib);
    snprintf(app->eval.text, sizeof app->eval.text, "%s", app->calib);
}

qn_status qn_app_init(qn_app *app, const char *argv0, qn_err *err)
{
    qn_status s = qn_evq_create(&app->queue, err);
    if (s) return s;
    app->screens[QN_SCR_MODELS] = qn_screen_models_create();
    app->screens[QN_SCR_BUDGET] = qn_screen_budget_create();
    app->screens[QN_SCR_RUN] = qn_screen_run_create();
    app->screens[QN_SCR_INSPECT] = qn_screen_inspect_create();
    app->screens[QN_SCR_EVAL] = qn_screen_eval_create();
    app->screens[QN_SCR_RUNS] = qn_screen_runs_create();
    for (int i = 0; i < QN_SCR_COUNT; i++)
        if (!app->screens[i]) return qn_err_set(err, QN_ERR_NOMEM, "workbench: out of memory");
    find_exe_dir(app, argv0);
    default_texts(app);
    qn_app_set_preset(app, 0);
    app->eval.ppl_value[0] = app->eval.ppl_value[1] = NAN;
    app->eval.ctx = 256;
    app->eval.chunks = 16;
    app->eval.temperature = 0.0f;   /* greedy: the two models compared on equal terms */
    app->eval.n_new = 96;
    snprintf(app->eval.prompt, sizeof app->eval.prompt, "Once upon a time");
    qn_err e = { 0 };
    if (qn_recent_load(&app->recent, &e)) qn_app_log(app, QN_LOG_WARN, "recent models: %s", e.msg);
    find_asset(app, "assets/stories260K", app->default_model, sizeof app->default_model);
    if (app->default_model[0]) qn_app_open_model(app, app->default_model, false);
    else if (app->recent.n) qn_app_open_model(app, app->recent.path[0], false);
    else qn_app_log(app, QN_LOG_WARN, "the default model assets/stories260K was not found: press o to browse");
    qn_app_log(app, QN_LOG_INFO, "quench workbench: F1 for help, 1-6 for the screens");
    app->dirty = true;
    return QN_OK;
}

static void stop(qn_worker **w)
{
    if (*w) qn_worker_cancel(*w);
}

void qn_app_done(qn_app *app)
{
    stop(&app->info_worker);
    stop(&app->run.worker);
    stop(&app->eval.ppl_worker);
    stop(&app->eval.gen_worker);
    stop(&app->insp.loader);
    stop(&app->open_worker);
    qn_worker_free(app->info_worker);
    qn_worker_free(app->run.worker);
    qn_worker_free(app->eval.ppl_worker);
    qn_worker_free(app->eval.gen_worker);
    qn_worker_free(app->insp.loader);
    qn_worker_free(app->insp.exporter);
    if (app->info_job) qn_model_info_free(app->info_job->info);
    free(app->info_job);
    free(app->run.job);
    free(app->eval.ppl_job);
    free(app->eval.gen_job);
    qn_job_layer_free(app->insp.job);
    qn_worker_free(app->open_worker);
    qn_job_openrun_free(app->open_job);
    if (app->insp.export_job) qn_layer_data_unref(app->insp.export_job->data);
    free(app->insp.export_job);
    qn_layer_data_unref(app->insp.data);
    for (size_t i = 0; i < app->run.n_layers; i++) qn_ui_layer_free(app->run.layers[i]);
    free(app->run.layers);
    free(app->eval.gen_out);
    free(app->eval.gen_first);
    qn_model_info_free(app->info);
    qn_browser_free(app->browser);
    for (int i = 0; i < QN_SCR_COUNT; i++)
        if (app->screens[i] && app->screens[i]->free) app->screens[i]->free(app->screens[i]);
    qn_evq_free(app->queue);
}

/* ---- commands --------------------------------------------------------------------- */

static bool start_worker(qn_app *app, qn_worker **w, int job, qn_job_fn fn, void *ctx, bool paused, size_t keep)
{
    qn_err e = { 0 };
    qn_worker_opts o = { .job = job, .keep_weights_bytes = keep, .start_paused = paused };
    if (qn_worker_start(w, &o, fn, ctx, app->queue, &e) == QN_OK) return true;
    qn_app_message(app, true, "Cannot start", "%s", e.msg);
    return false;
}

void qn_app_open_model(qn_app *app, const char *path, bool then_budget)
{
    char log[QN_PATH_CAP + 16];
    snprintf(log, sizeof log, "%s/run.jsonl", path);
    if (qn_path_exists(log)) {   /* a run folder: shown as the run it is, never quantized again */
        app->open_then_inspect = true;
        qn_app_open_run(app, path);
        return;
    }
    if (app->info_worker) { qn_app_message(app, false, "Busy", "Still reading %s", app->info_job->path); return; }
    qn_job_info *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->path, sizeof j->path, "%s", path);
    app->info_job = j;
    app->info_then_budget = then_budget;
    if (!start_worker(app, &app->info_worker, QN_JOB_INFO, qn_job_info_run, j, false, 0)) {
        free(j);
        app->info_job = NULL;
        return;
    }
    qn_app_log(app, QN_LOG_INFO, "reading %s", path);
}

void qn_app_set_preset(qn_app *app, int index)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    if (index < 0 || (size_t)index >= n) { app->preset = -1; return; }
    app->preset = index;
    app->qcfg = p[index].config;
    app->dirty = true;
}

static void auto_out_dir(qn_app *app, char *out, size_t cap)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    const char *label = app->preset >= 0 ? p[app->preset].name : qn_method_name(app->qcfg.method);
    snprintf(out, cap, "quench-runs/%.1000s-%s-%s", qn_app_basename(app->model_path), label, stamp);
    size_t len = strlen(out);
    for (int k = 2; qn_path_exists(out) && k < 1000 && len + 8 < cap; k++) snprintf(out + len, cap - len, "-%d", k);
}

/* Starts the job j (taken over) on the Run screen. */
static void launch_run(qn_app *app, qn_job_quantize *j, const char *label, bool paused)
{
    qn_run *r = &app->run;
    for (size_t i = 0; i < r->n_layers; i++) qn_ui_layer_free(r->layers[i]);
    free(r->layers);
    free(r->job);
    memset(r, 0, sizeof *r);
    r->job = j;
    qn_text_copy(r->model, sizeof r->model, j->model);
    qn_text_copy(r->out_dir, sizeof r->out_dir, j->out_dir);
    qn_text_copy(r->label, sizeof r->label, label);
    r->n_blocks = app->info ? app->info->cfg.n_layers : 0;
    r->projected_bits = app->info ? qn_quant_projected_bits(&j->job.config, &app->info->shape, NULL) : 0;
    r->t_start = qn_now();
    r->paused_at = paused ? r->t_start : 0;
    r->block = -1;
    app->insp.sel = 0;
    app->insp.run_gen++;
    app->insp.want_reload = false;
    qn_layer_data_unref(app->insp.data);
    app->insp.data = NULL;
    if (!start_worker(app, &r->worker, QN_JOB_RUN, qn_job_quantize_run, j, paused, KEEP_WEIGHTS_BYTES)) {
        r->phase = QN_RUN_FAILED;
        return;
    }
    r->phase = QN_RUN_RUNNING;
    qn_app_log(app, QN_LOG_INFO, "%s %s on %s -> %s%s", j->job.resume ? "resume" : "run", r->label,
               qn_app_basename(r->model), r->out_dir, paused ? " (paused: . steps, p resumes)" : "");
    qn_app_switch(app, QN_SCR_RUN);
}

void qn_app_resume_run(qn_app *app)
{
    qn_run *r = &app->run;
    if (r->worker || (r->phase != QN_RUN_CANCELLED && r->phase != QN_RUN_FAILED)) {
        qn_app_message(app, false, "Nothing to resume", "Resume continues a cancelled or failed run.");
        return;
    }
    qn_job_quantize *j = calloc(1, sizeof *j);
    if (!j) return;
    qn_text_copy(j->out_dir, sizeof j->out_dir, r->out_dir);
    qn_err e = { 0 };
    if (qn_quantize_job_from_log(j->out_dir, &j->job, j->model, sizeof j->model, j->calib, sizeof j->calib, &e)) {
        qn_app_message(app, true, "Cannot resume", "%s", e.msg);
        free(j);
        return;
    }
    char label[96];
    qn_text_copy(label, sizeof label, r->label);
    launch_run(app, j, label, false);
}

void qn_app_open_run(qn_app *app, const char *dir)
{
    if (app->run.worker || app->open_worker) {
        qn_app_message(app, false, "Busy", "A run is going: cancel it first (c).");
        return;
    }
    qn_job_openrun *j = calloc(1, sizeof *j);
    if (!j) return;
    qn_text_copy(j->dir, sizeof j->dir, dir);
    app->open_job = j;
    if (!start_worker(app, &app->open_worker, QN_JOB_OPENRUN, qn_job_openrun_run, j, false, 0)) {
        free(j);
        app->open_job = NULL;
    }
}

void qn_app_start_run(qn_app *app, bool paused)
{
    qn_run *r = &app->run;
    if (r->worker) { qn_app_message(app, false, "Run going", "A run is already going: cancel it first (c)."); return; }
    if (!app->info) { qn_app_message(app, true, "No model", "Choose a model on the Models screen first."); return; }
    if (!app->calib[0] || !qn_path_exists(app->calib)) {
        qn_app_message(app, true, "No calibration text", "%s: no such file; set the calibration text on the Budget screen.",
                       app->calib[0] ? app->calib : "(none)");
        return;
    }
    qn_job_quantize *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->model, sizeof j->model, "%s", app->info->path);
    snprintf(j->calib, sizeof j->calib, "%s", app->calib);
    if (app->out_dir[0]) snprintf(j->out_dir, sizeof j->out_dir, "%s", app->out_dir);
    else {
        auto_out_dir(app, j->out_dir, sizeof j->out_dir);
        qn_err e;
        if (qn_dir_ensure("quench-runs", &e)) { qn_app_message(app, true, "Cannot write", "%s", e.msg); free(j); return; }
    }
    j->job.config = app->qcfg;
    size_t n;
    const qn_preset *p = qn_presets(&n);
    launch_run(app, j, app->preset >= 0 ? p[app->preset].name : qn_method_name(app->qcfg.method), paused);
}

void qn_app_pause_run(qn_app *app)
{
    if (!app->run.worker) return;
    bool p = !qn_worker_paused(app->run.worker);
    qn_worker_set_paused(app->run.worker, p);
    qn_run *r = &app->run;
    double now = qn_now();
    if (p && !r->paused_at) r->paused_at = now;
    if (!p && r->paused_at) { r->paused_total += now - r->paused_at; r->paused_at = 0; }
    qn_app_log(app, QN_LOG_INFO, p ? "paused" : "resumed");
}

double qn_app_run_active(const qn_run *r, double now)
{
    double a = now - r->t_start - r->paused_total - (r->paused_at && now > r->paused_at ? now - r->paused_at : 0);
    return a > 0 ? a : 0;
}

void qn_app_step_run(qn_app *app)
{
    if (!app->run.worker) return;
    qn_worker_step(app->run.worker);
    qn_run *r = &app->run;
    if (r->paused_at) { r->paused_total += qn_now() - r->paused_at; r->paused_at = 0; }
}

void qn_app_cancel_run(qn_app *app)
{
    if (!app->run.worker || app->run.cancelling) return;
    app->run.cancelling = true;
    qn_worker_cancel(app->run.worker);
    qn_app_log(app, QN_LOG_WARN, "cancelling the run (it stops at the engine's next check)");
}

/* A malloc'd copy of n bytes, or NULL when p is NULL (or memory is short: the
   loader then reads what it can from the run folder). */
static void *dup_array(const void *p, size_t n)
{
    void *c = p ? malloc(n ? n : 1) : NULL;
    if (c) memcpy(c, p, n);
    return c;
}

void qn_app_inspect_layer(qn_app *app, size_t index)
{
    qn_inspect *in = &app->insp;
    if (index >= app->run.n_layers) return;
    in->sel = index;
    if (in->loader) { in->want_reload = true; return; }
    const qn_ui_layer *l = app->run.layers[index];
    qn_job_layer *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->model, sizeof j->model, "%s", app->run.model);
    snprintf(j->run_dir, sizeof j->run_dir, "%s", app->run.out_dir);
    snprintf(j->name, sizeof j->name, "%s", l->name);
    j->role = l->role;
    j->block = l->block;
    j->d_out = l->d_out;
    j->d_in = l->d_in;
    j->rel_err = l->rel_err;
    j->bits = l->bits;
    j->run_gen = in->run_gen;
    j->hdiag = dup_array(l->hessian_diag, l->d_in * sizeof(float));
    j->W_hat = dup_array(l->W_hat, l->d_out * l->d_in * sizeof(float));
    j->mask = dup_array(l->mask, l->d_out * l->d_in);
    j->codewords = dup_array(l->codewords, l->M * l->K * l->g * sizeof(float));
    j->usage = dup_array(l->usage, l->M * l->K * sizeof(uint32_t));
    j->M = l->M; j->K = l->K; j->g = l->g;
    in->job = j;
    in->want_reload = false;
    if (!start_worker(app, &in->loader, QN_JOB_LAYER, qn_job_layer_run, j, false, 0)) {
        qn_job_layer_free(j);
        in->job = NULL;
    }
}

void qn_app_export_picture(qn_app *app, const char *path, qn_pic_kind kind, qn_region region)
{
    qn_inspect *in = &app->insp;
    if (!in->data) return;
    if (in->exporter) { qn_app_message(app, false, "Busy", "Still writing the previous picture."); return; }
    qn_job_export *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->path, sizeof j->path, "%s", path);
    j->data = in->data;
    in->data->refs++;
    j->kind = kind;
    j->region = region;
    snprintf(j->model_name, sizeof j->model_name, "%s", qn_app_basename(app->run.model));
    qn_text_copy(j->method, sizeof j->method, app->run.label);
    j->no_color = !app->theme.color;
    in->export_job = j;
    if (!start_worker(app, &in->exporter, QN_JOB_EXPORT, qn_job_export_run, j, false, 0)) {
        qn_layer_data_unref(j->data);
        free(j);
        in->export_job = NULL;
    }
}

const char *qn_app_compressed_model(const qn_app *app)
{
    return app->run.phase == QN_RUN_DONE ? app->run.out_dir : NULL;
}

void qn_app_start_ppl(qn_app *app)
{
    qn_eval *ev = &app->eval;
    if (ev->ppl_worker) return;
    if (!app->info) { qn_app_message(app, true, "No model", "Choose a model on the Models screen first."); return; }
    if (!qn_path_exists(ev->text)) {
        qn_app_message(app, true, "No text", "%s: no such file (f sets the evaluation text).", ev->text);
        return;
    }
    qn_job_ppl *j = calloc(1, sizeof *j);
    if (!j) return;
    const char *comp = qn_app_compressed_model(app);
    snprintf(j->model[0], sizeof j->model[0], "%s", comp ? app->run.model : app->info->path);
    if (comp) snprintf(j->model[1], sizeof j->model[1], "%s", comp);
    snprintf(j->text, sizeof j->text, "%s", ev->text);
    j->opts = (qn_ppl_opts){ .protocol = QN_PPL_GPTQ, .ctx = ev->ctx, .max_chunks = ev->chunks };
    for (int i = 0; i < 2; i++) {
        ev->ppl_frac[i] = 0;
        ev->ppl_value[i] = NAN;
        ev->ppl_done[i] = false;
        ev->ppl_err[i][0] = 0;
    }
    ev->ppl_job = j;
    ev->ppl_cur = 0;
    if (!start_worker(app, &ev->ppl_worker, QN_JOB_PPL, qn_job_ppl_run, j, false, 0)) {
        free(j);
        ev->ppl_job = NULL;
    }
}

void qn_app_start_gen(qn_app *app)
{
    qn_eval *ev = &app->eval;
    if (ev->gen_worker) return;
    if (!app->info) { qn_app_message(app, true, "No model", "Choose a model on the Models screen first."); return; }
    const char *comp = qn_app_compressed_model(app);
    if (ev->gen_compressed && !comp) {
        qn_app_message(app, false, "No compressed model", "No run has finished yet: m switches to the original.");
        return;
    }
    qn_job_gen *j = calloc(1, sizeof *j);
    if (!j) return;
    if (!ev->gen_second) {   /* a new generation: both models when there is a compressed one */
        ev->gen_pair = comp && !ev->gen_compressed;
        ev->gen_seed = (uint64_t)time(NULL);
        free(ev->gen_first);
        ev->gen_first = NULL;
        ev->gen_first_len = 0;
    }
    bool compressed = ev->gen_compressed || ev->gen_second;
    snprintf(j->model, sizeof j->model, "%s", compressed ? comp : comp ? app->run.model : app->info->path);
    snprintf(j->prompt, sizeof j->prompt, "%s", ev->prompt);
    j->opts = (qn_gen_opts){ .n_new = ev->n_new, .temperature = ev->temperature, .top_p = 0.9f, .seed = ev->gen_seed };
    ev->gen_len = 0;
    if (ev->gen_out) ev->gen_out[0] = 0;
    snprintf(ev->gen_status, sizeof ev->gen_status, "loading %s", qn_app_basename(j->model));
    ev->gen_job = j;
    if (!start_worker(app, &ev->gen_worker, QN_JOB_GEN, qn_job_gen_run, j, false, 0)) {
        free(j);
        ev->gen_job = NULL;
    }
}

void qn_app_cancel_eval(qn_app *app)
{
    if (app->eval.ppl_worker) qn_worker_cancel(app->eval.ppl_worker);
    if (app->eval.gen_worker) qn_worker_cancel(app->eval.gen_worker);
}
