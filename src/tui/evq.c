/* evq.c: a growable ring of qn_msg under one mutex (see evq.h). Coalescing
   looks only at the newest queued message: a run of PROGRESS events between
   two UI ticks collapses to the latest, while their order with respect to
   LAYER_DONE, WARNING and RUN_END is kept. */
#include "tui/evq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct qn_evq {
    pthread_mutex_t mu;
    qn_msg  *ring;        /* (cap) */
    size_t   head, n, cap;
    uint64_t pushed;
};

void qn_ui_layer_free(qn_ui_layer *l)
{
    if (!l) return;
    free(l->hessian_diag);
    free(l->W_hat);
    free(l->mask);
    free(l->codewords);
    free(l->usage);
    free(l);
}

void qn_msg_done(qn_msg *m)
{
    free(m->text);
    qn_ui_layer_free(m->layer_done);
    m->text = NULL;
    m->layer_done = NULL;
}

qn_status qn_evq_create(qn_evq **out, qn_err *err)
{
    qn_evq *q = calloc(1, sizeof *q);
    if (!q) return qn_err_set(err, QN_ERR_NOMEM, "event queue: out of memory");
    q->cap = 256;
    q->ring = calloc(q->cap, sizeof *q->ring);
    if (!q->ring) { free(q); return qn_err_set(err, QN_ERR_NOMEM, "event queue: out of memory"); }
    pthread_mutex_init(&q->mu, NULL);
    *out = q;
    return QN_OK;
}

void qn_evq_free(qn_evq *q)
{
    if (!q) return;
    qn_msg m;
    while (qn_evq_try_pop(q, &m)) qn_msg_done(&m);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q);
}

static bool grow(qn_evq *q)
{
    size_t cap = q->cap * 2;
    qn_msg *r = calloc(cap, sizeof *r);
    if (!r) return false;
    for (size_t i = 0; i < q->n; i++) r[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = r;
    q->head = 0;
    q->cap = cap;
    return true;
}

void qn_evq_push(qn_evq *q, qn_msg *m)
{
    pthread_mutex_lock(&q->mu);
    q->pushed++;
    if (q->n > 0 && m->type == QN_MSG_EVENT && m->kind == QN_EV_PROGRESS) {
        qn_msg *last = &q->ring[(q->head + q->n - 1) % q->cap];
        if (last->type == QN_MSG_EVENT && last->kind == QN_EV_PROGRESS && last->job == m->job &&
            strcmp(last->stage, m->stage) == 0) {
            qn_msg old = *last;
            *last = *m;
            pthread_mutex_unlock(&q->mu);
            qn_msg_done(&old);
            return;
        }
    }
    if (q->n == q->cap && !grow(q)) {
        pthread_mutex_unlock(&q->mu);
        qn_msg_done(m);   /* out of memory: the message is lost, the worker goes on */
        return;
    }
    q->ring[(q->head + q->n) % q->cap] = *m;
    q->n++;
    pthread_mutex_unlock(&q->mu);
}

bool qn_evq_try_pop(qn_evq *q, qn_msg *m)
{
    pthread_mutex_lock(&q->mu);
    bool ok = q->n > 0;
    if (ok) {
        *m = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

uint64_t qn_evq_pushed(qn_evq *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->pushed;
    pthread_mutex_unlock(&q->mu);
    return n;
}
