/* worker.h: one background job on its own pthread. The job gets an event sink
   that copies each event into the UI's queue (evq.h) and a cancel flag the
   engine polls. Pausing happens inside that sink: while paused, the sink holds
   the worker on a condition variable before returning to the engine, so the
   engine stops at its next event without knowing it; the UI thread never
   waits for the worker. When the job returns, a QN_MSG_DONE message with its
   status follows its last event; the UI then joins the thread (already
   finished) with qn_worker_free. No ncurses here. */
#ifndef QN_TUI_WORKER_H
#define QN_TUI_WORKER_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include "status.h"
#include "engine/events.h"
#include "tui/evq.h"

typedef qn_status (*qn_job_fn)(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err);

typedef struct qn_worker qn_worker;

typedef struct {
    int    job;                 /* id carried by every message */
    size_t keep_weights_bytes;  /* LAYER_DONE: copy W_hat while the copies stay under this; 0: never */
    bool   start_paused;        /* hold at the first event until resumed or stepped */
} qn_worker_opts;

/* Starts fn(ctx, ...) on a new thread; ctx stays the caller's. */
qn_status qn_worker_start(qn_worker **out, const qn_worker_opts *opts, qn_job_fn fn, void *ctx, qn_evq *q,
                          qn_err *err);
void qn_worker_set_paused(qn_worker *w, bool paused);
bool qn_worker_paused(qn_worker *w);
/* Resumes until the next LAYER_DONE event, then pauses again. */
void qn_worker_step(qn_worker *w);
/* Asks the job to stop (and lets a paused one go, so it can notice). */
void qn_worker_cancel(qn_worker *w);
bool qn_worker_cancelled(qn_worker *w);
/* Joins the thread (waiting for the job when it has not ended) and frees. NULL is fine. */
void qn_worker_free(qn_worker *w);

#endif
