/* app_events.c: worker messages applied to the workbench state (see app.h):
   model information, the run's events (stage, progress, finished layers, AQLM
   rounds, warnings, end), perplexity and generation, loaded layer data, written
   pictures and run folders read from disk. State only: nothing is drawn here,
   and every result is taken over once its job's QN_MSG_DONE has arrived. */
#include "tui/app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/speed.h"
#include "tui/text.h"

static void info_done(qn_app *app, const qn_msg *m)
{
    qn_worker_free(app->info_worker);
    app->info_worker = NULL;
    qn_job_info *j = app->info_job;
    app->info_job = NULL;
    if (m->status || !j->info) {
        qn_app_message(app, true, "Cannot open the model", "%s", m->errmsg);
        free(j);
        return;
    }
    qn_model_info_free(app->info);
    app->info = j->info;
    snprintf(app->model_path, sizeof app->model_path, "%s", app->info->path);
    qn_err e = { 0 };
    if (qn_recent_add(&app->recent, app->info->path, &e)) qn_app_log(app, QN_LOG_WARN, "recent models: %s", e.msg);
    qn_app_log(app, QN_LOG_GOOD, "model %s: %s, %lld parameters", qn_app_basename(app->info->path), app->info->cfg.arch,
               app->info->n_params);
    if (app->info_then_budget) qn_app_switch(app, QN_SCR_BUDGET);
    free(j);
}

static void run_event(qn_app *app, qn_msg *m)
{
    qn_run *r = &app->run;
    switch (m->kind) {
    case QN_EV_RUN_START:
        r->n_blocks = m->n_layers;
        r->first_block = m->layer;
        if (m->value > 0) r->projected_bits = m->value;
        break;
    case QN_EV_STAGE:
        snprintf(r->stage, sizeof r->stage, "%s", m->stage);
        r->block = strcmp(m->stage, "calibrate") == 0 || strcmp(m->stage, "quantize") == 0 ? m->layer : -1;
        r->done = m->done;     /* calibrate: which of the block's four Hessian groups */
        r->total = m->total;
        break;
    case QN_EV_PROGRESS:
        if (strncmp(m->stage, "aqlm", 4) == 0 && r->n_conv < QN_CONV_MAX && isfinite(m->value))
            r->conv[r->n_conv++] = m->value;
        snprintf(r->stage, sizeof r->stage, "%s", m->stage);
        if (strcmp(m->stage, "quantize") == 0 || strcmp(m->stage, "calibrate") == 0) r->block = m->layer;
        r->done = m->done;
        r->total = m->total;
        r->value = m->value;
        break;
    case QN_EV_LAYER_DONE:
        if (!m->layer_done) break;
        if (r->n_layers == r->cap_layers) {
            size_t cap = r->cap_layers ? r->cap_layers * 2 : 64;
            qn_ui_layer **l = realloc(r->layers, cap * sizeof *l);
            if (!l) break;
            r->layers = l;
            r->cap_layers = cap;
        }
        r->layers[r->n_layers++] = m->layer_done;
        r->block = m->layer_done->block;
        m->layer_done = NULL;
        r->t_last_layer = qn_now();
        r->n_conv = 0;
        /* a step ends paused after its layer */
        if (r->worker && qn_worker_paused(r->worker) && !r->paused_at) r->paused_at = r->t_last_layer;
        break;
    case QN_EV_WARNING:
        qn_app_log(app, QN_LOG_WARN, "%s", m->text ? m->text : m->stage);
        break;
    case QN_EV_RUN_END:
        r->t_end = qn_now();
        break;
    default:
        break;
    }
}

static void run_done(qn_app *app, const qn_msg *m)
{
    qn_run *r = &app->run;
    qn_worker_free(r->worker);
    r->worker = NULL;
    if (!r->t_end) r->t_end = qn_now();
    r->cancelling = false;
    if (m->status == QN_OK) {
        r->phase = QN_RUN_DONE;
        qn_app_log(app, QN_LOG_GOOD, "run finished: %s (%zu layers, %.1f s)", r->out_dir, r->n_layers, r->t_end - r->t_start);
    } else if (m->status == QN_ERR_CANCELLED) {
        r->phase = QN_RUN_CANCELLED;
        qn_app_log(app, QN_LOG_WARN, "run cancelled after %zu layers; finished blocks stay in %s", r->n_layers, r->out_dir);
    } else {
        r->phase = QN_RUN_FAILED;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", m->errmsg);
        qn_app_message(app, true, "The run failed", "%s", m->errmsg);
    }
}

static void add_row(qn_app *app, int i, const qn_job_ppl *j)
{
    qn_eval *ev = &app->eval;
    if (ev->n_rows == QN_EVAL_ROWS) {
        memmove(ev->rows, ev->rows + 1, (QN_EVAL_ROWS - 1) * sizeof ev->rows[0]);
        ev->n_rows--;
    }
    qn_eval_row *row = &ev->rows[ev->n_rows++];
    qn_text_copy(row->model, sizeof row->model, i == 0 ? qn_app_basename(j->model[0]) : app->run.label);
    snprintf(row->text, sizeof row->text, "%s", qn_app_basename(j->text));
    row->ctx = j->opts.ctx;
    row->ppl = j->result[i].ppl;
    row->ppl_pm = j->result[i].ppl * j->result[i].nll_stderr;
    row->tokens = j->result[i].tokens;
    row->seconds = j->result[i].seconds;
}

static void ppl_msg(qn_app *app, qn_msg *m)
{
    qn_eval *ev = &app->eval;
    if (m->type == QN_MSG_DONE) {
        qn_worker_free(ev->ppl_worker);
        ev->ppl_worker = NULL;
        if (m->status && m->status != QN_ERR_CANCELLED) qn_app_message(app, true, "Perplexity failed", "%s", m->errmsg);
        if (m->status == QN_ERR_CANCELLED) qn_app_log(app, QN_LOG_WARN, "perplexity stopped");
        free(ev->ppl_job);
        ev->ppl_job = NULL;
        return;
    }
    int i = m->layer == 1 ? 1 : 0;
    if (m->kind == QN_EV_STAGE && strcmp(m->stage, "ppl.model") == 0) ev->ppl_cur = i;
    else if (m->kind == QN_EV_STAGE && strcmp(m->stage, "ppl.result") == 0) {
        ev->ppl_done[i] = true;
        ev->ppl_value[i] = m->value;
        if (isfinite(m->value)) {
            ev->ppl_frac[i] = 1;
            add_row(app, i, ev->ppl_job);
            qn_app_log(app, QN_LOG_GOOD, "perplexity %s: %.4f", ev->rows[ev->n_rows - 1].model, m->value);
        } else if (m->text) {
            snprintf(ev->ppl_err[i], sizeof ev->ppl_err[i], "%s", m->text);
        }
    } else if (m->kind == QN_EV_PROGRESS && strcmp(m->stage, "ppl") == 0) {
        ev->ppl_frac[ev->ppl_cur] = m->total > 0 ? (double)m->done / (double)m->total : 0;
        ev->ppl_value[ev->ppl_cur] = m->value;
    }
}

static void gen_msg(qn_app *app, qn_msg *m)
{
    qn_eval *ev = &app->eval;
    if (m->type == QN_MSG_DONE) {
        qn_worker_free(ev->gen_worker);
        ev->gen_worker = NULL;
        const qn_gen_result *r = &ev->gen_job->result;
        if (m->status == QN_OK)
            snprintf(ev->gen_status, sizeof ev->gen_status, "%zu tokens, %.1f tokens/s", r->n_generated,
                     r->gen_seconds > 0 ? (double)r->n_generated / r->gen_seconds : 0.0);
        else if (m->status == QN_ERR_CANCELLED) snprintf(ev->gen_status, sizeof ev->gen_status, "stopped");
        else {
            snprintf(ev->gen_status, sizeof ev->gen_status, "failed");
            qn_app_message(app, true, "Generation failed", "%s", m->errmsg);
        }
        free(ev->gen_job);
        ev->gen_job = NULL;
        bool was_second = ev->gen_second;
        ev->gen_second = false;
        if (m->status == QN_OK && ev->gen_pair && !was_second) {
            /* the original's text stays on the left; the compressed model goes next */
            free(ev->gen_first);
            ev->gen_first = ev->gen_out;
            ev->gen_first_len = ev->gen_len;
            ev->gen_out = NULL;
            ev->gen_len = ev->gen_cap = 0;
            ev->gen_second = true;
            qn_app_start_gen(app);
        }
        return;
    }
    if (m->kind == QN_EV_TOKEN && m->text) {
        if (ev->gen_len + m->text_len + 1 > ev->gen_cap) {
            size_t cap = (ev->gen_len + m->text_len + 1) * 2;
            char *p = realloc(ev->gen_out, cap);
            if (!p) return;
            ev->gen_out = p;
            ev->gen_cap = cap;
        }
        memcpy(ev->gen_out + ev->gen_len, m->text, m->text_len);
        ev->gen_len += m->text_len;
        ev->gen_out[ev->gen_len] = 0;
        snprintf(ev->gen_status, sizeof ev->gen_status, "generating");
    } else if (m->kind == QN_EV_PROGRESS && strcmp(m->stage, "load") == 0) {
        snprintf(ev->gen_status, sizeof ev->gen_status, "loading %lld/%lld", (long long)m->done, (long long)m->total);
    }
}

static void layer_done(qn_app *app, const qn_msg *m)
{
    qn_inspect *in = &app->insp;
    qn_worker_free(in->loader);
    in->loader = NULL;
    qn_job_layer *j = in->job;
    in->job = NULL;
    if (m->status == QN_OK && j->out && j->run_gen == in->run_gen) {
        qn_layer_data_unref(in->data);
        in->data = j->out;
        j->out = NULL;
    } else if (m->status) {
        qn_app_message(app, true, "Cannot load the layer", "%s", m->errmsg);
    }
    qn_job_layer_free(j);
    if (in->want_reload) qn_app_inspect_layer(app, in->sel);
}

static void export_done(qn_app *app, const qn_msg *m)
{
    qn_inspect *in = &app->insp;
    qn_worker_free(in->exporter);
    in->exporter = NULL;
    if (m->status) qn_app_message(app, true, "Cannot write the picture", "%s", m->errmsg);
    else qn_app_message(app, false, "Picture written", "%s", in->export_job->path);
    if (!m->status) qn_app_log(app, QN_LOG_GOOD, "wrote %s", in->export_job->path);
    qn_layer_data_unref(in->export_job->data);
    free(in->export_job);
    in->export_job = NULL;
}

static void openrun_done(qn_app *app, const qn_msg *m)
{
    qn_worker_free(app->open_worker);
    app->open_worker = NULL;
    qn_job_openrun *j = app->open_job;
    app->open_job = NULL;
    qn_run *r = &app->run;
    if (m->status || r->worker) {
        app->open_then_inspect = false;
        if (m->status) qn_app_message(app, true, "Cannot open the run", "%s", m->errmsg);
        qn_job_openrun_free(j);
        return;
    }
    for (size_t i = 0; i < r->n_layers; i++) qn_ui_layer_free(r->layers[i]);
    free(r->layers);
    free(r->job);
    memset(r, 0, sizeof *r);
    r->layers = j->layers;
    r->n_layers = r->cap_layers = j->n_layers;
    j->layers = NULL;
    j->n_layers = 0;
    qn_text_copy(r->model, sizeof r->model, j->model);
    qn_text_copy(r->out_dir, sizeof r->out_dir, j->dir);
    qn_text_copy(r->label, sizeof r->label, j->label);
    r->n_blocks = j->n_blocks;
    r->block = -1;
    r->phase = j->finished && j->has_model ? QN_RUN_DONE : QN_RUN_CANCELLED;
    r->t_start = 0;
    r->t_end = isfinite(j->seconds) ? j->seconds : 0;
    app->insp.run_gen++;
    app->insp.sel = 0;
    app->insp.want_reload = false;
    qn_layer_data_unref(app->insp.data);
    app->insp.data = NULL;
    qn_app_log(app, QN_LOG_GOOD, "opened run %s: %s on %s, %zu layers%s", r->out_dir, r->label,
               qn_app_basename(r->model), r->n_layers, r->phase == QN_RUN_DONE ? "" : " (unfinished: r resumes it)");
    qn_job_openrun_free(j);
    qn_app_switch(app, app->open_then_inspect ? QN_SCR_INSPECT : QN_SCR_RUN);
    app->open_then_inspect = false;
}

void qn_app_apply(qn_app *app, qn_msg *m)
{
    app->dirty = true;
    switch (m->job) {
    case QN_JOB_INFO:
        if (m->type == QN_MSG_DONE) info_done(app, m);
        break;
    case QN_JOB_RUN:
        if (m->type == QN_MSG_DONE) run_done(app, m);
        else run_event(app, m);
        break;
    case QN_JOB_PPL: ppl_msg(app, m); break;
    case QN_JOB_GEN: gen_msg(app, m); break;
    case QN_JOB_LAYER:
        if (m->type == QN_MSG_DONE) layer_done(app, m);
        break;
    case QN_JOB_EXPORT:
        if (m->type == QN_MSG_DONE) export_done(app, m);
        break;
    case QN_JOB_OPENRUN:
        if (m->type == QN_MSG_DONE) openrun_done(app, m);
        break;
    default: break;
    }
    qn_msg_done(m);
}
