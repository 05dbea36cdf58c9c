/* worker.c: the job thread, its copying sink and pause/step/cancel (see worker.h). */
#include "tui/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calib.h"
#include "tui/text.h"

struct qn_worker {
    pthread_t       thread;
    bool            started;
    qn_worker_opts  opts;
    qn_job_fn       fn;
    void           *ctx;
    qn_evq         *q;
    atomic_bool     cancel;
    pthread_mutex_t mu;           /* guards paused and step */
    pthread_cond_t  cv;
    bool            paused, step;
    size_t          kept_bytes;   /* W_hat copies so far (worker thread only) */
};

static char *copy_text(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

static qn_ui_layer *copy_layer(qn_worker *w, const qn_calib_layer_event *le)
{
    qn_ui_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    qn_text_copy(l->name, sizeof l->name, le->name ? le->name : "?");
    const char *dot = strrchr(l->name, '.');
    qn_text_copy(l->sublayer, sizeof l->sublayer, dot ? dot + 1 : l->name);
    l->role = (int)le->role;
    l->block = le->block;
    l->d_out = le->d_out;
    l->d_in = le->d_in;
    if (le->result) {
        l->rel_err = le->result->relative_error;
        l->bits = le->result->bits;
        l->n_outliers = le->result->n_outliers;
        l->outlier_fraction = le->result->outlier_fraction;
        l->seconds = le->result->seconds;
    }
    if (le->hessian_diag && (l->hessian_diag = malloc(le->d_in * sizeof(float))))
        memcpy(l->hessian_diag, le->hessian_diag, le->d_in * sizeof(float));
    size_t wbytes = le->d_out * le->d_in * sizeof(float);
    if (le->result && le->result->W_hat && w->kept_bytes + wbytes <= w->opts.keep_weights_bytes &&
        (l->W_hat = malloc(wbytes))) {
        memcpy(l->W_hat, le->result->W_hat, wbytes);
        w->kept_bytes += wbytes;
    }
    size_t mbytes = le->d_out * le->d_in, rb = (le->d_in + 7) / 8;
    if (le->outlier_mask && w->kept_bytes + mbytes <= w->opts.keep_weights_bytes && (l->mask = malloc(mbytes))) {
        for (size_t r = 0; r < le->d_out; r++)
            for (size_t c = 0; c < le->d_in; c++)
                l->mask[r * le->d_in + c] = (le->outlier_mask[r * rb + c / 8] >> (c % 8)) & 1u;
        w->kept_bytes += mbytes;
    }
    size_t ncw = le->M * le->K * le->g, nus = le->M * le->K;
    size_t cbytes = ncw * sizeof(float) + nus * sizeof(uint32_t);
    if (le->codebooks && le->codebook_usage && w->kept_bytes + cbytes <= w->opts.keep_weights_bytes &&
        (l->codewords = malloc(ncw * sizeof(float))) && (l->usage = malloc(nus * sizeof(uint32_t)))) {
        memcpy(l->codewords, le->codebooks, ncw * sizeof(float));
        for (size_t i = 0; i < nus; i++) l->usage[i] = (uint32_t)le->codebook_usage[i];
        l->M = le->M; l->K = le->K; l->g = le->g;
        w->kept_bytes += cbytes;
    }
    return l;
}

/* Runs on the worker thread: copy, queue, then hold while paused. */
static void sink_emit(void *ctx, const qn_event *ev)
{
    qn_worker *w = ctx;
    qn_msg m = { .type = QN_MSG_EVENT, .job = w->opts.job, .kind = ev->kind, .layer = ev->layer,
                 .n_layers = ev->n_layers, .done = ev->done, .total = ev->total, .value = ev->value };
    snprintf(m.stage, sizeof m.stage, "%s", ev->stage ? ev->stage : "");
    if (ev->text) {
        size_t n = ev->text_len > 0 ? (size_t)ev->text_len : strlen(ev->text);
        m.text = copy_text(ev->text, n);
        m.text_len = m.text ? n : 0;
    }
    if (ev->kind == QN_EV_LAYER_DONE && ev->payload) m.layer_done = copy_layer(w, ev->payload);
    qn_evq_push(w->q, &m);
    pthread_mutex_lock(&w->mu);
    if (ev->kind == QN_EV_LAYER_DONE && w->step) {
        w->step = false;
        w->paused = true;
    }
    while (w->paused && !atomic_load(&w->cancel)) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
    qn_worker *w = arg;
    qn_err err = { 0 };
    qn_status s = w->fn(w->ctx, (qn_event_sink){ sink_emit, w }, &w->cancel, &err);
    qn_msg m = { .type = QN_MSG_DONE, .job = w->opts.job, .status = s };
    if (s) snprintf(m.errmsg, sizeof m.errmsg, "%s", err.msg[0] ? err.msg : qn_status_name(s));
    qn_evq_push(w->q, &m);
    return NULL;
}

qn_status qn_worker_start(qn_worker **out, const qn_worker_opts *opts, qn_job_fn fn, void *ctx, qn_evq *q,
                          qn_err *err)
{
    qn_worker *w = calloc(1, sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "worker: out of memory");
    w->opts = *opts;
    w->fn = fn;
    w->ctx = ctx;
    w->q = q;
    w->paused = opts->start_paused;
    atomic_init(&w->cancel, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = pthread_create(&w->thread, NULL, thread_main, w);
    if (rc) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return qn_err_set(err, QN_ERR_IO, "worker: pthread_create: %s", strerror(rc));
    }
    w->started = true;
    *out = w;
    return QN_OK;
}

void qn_worker_set_paused(qn_worker *w, bool paused)
{
    pthread_mutex_lock(&w->mu);
    w->paused = paused;
    w->step = false;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool qn_worker_paused(qn_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool p = w->paused;
    pthread_mutex_unlock(&w->mu);
    return p;
}

void qn_worker_step(qn_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->paused = false;
    w->step = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void qn_worker_cancel(qn_worker *w)
{
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->cancel, true);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool qn_worker_cancelled(qn_worker *w)
{
    return atomic_load(&w->cancel);
}

void qn_worker_free(qn_worker *w)
{
    if (!w) return;
    if (w->started) pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
