/* evq.h: the queue between worker threads and the UI thread. A worker's sink
   copies each engine event into a qn_msg (strings and the LAYER_DONE payload
   included: the engine's pointers die when the sink returns) and pushes it; the
   UI thread pops without ever waiting. The mutex is held only to copy a message
   in or out. PROGRESS events may be coalesced (a newer PROGRESS of the same
   job and stage replaces one still queued); every other event is kept, the
   queue grows for them. No ncurses here. */
#ifndef QN_TUI_EVQ_H
#define QN_TUI_EVQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"

/* What the UI keeps of one finished linear (QN_EV_LAYER_DONE). */
typedef struct {
    char    name[128];        /* "model.layers.3.self_attn.q_proj" */
    char    sublayer[24];     /* "q_proj" */
    int     role;             /* qn_tensor_role */
    int     block;
    size_t  d_out, d_in;
    double  rel_err, bits, outlier_fraction, seconds;
    size_t  n_outliers;
    float  *hessian_diag;     /* (d_in), malloc'd */
    float  *W_hat;            /* (d_out, d_in), malloc'd, or NULL when over the memory cap */
    /* what the run recorded for the layer (SpQR outliers, AQLM codebooks), so
       Inspect shows the newest layer before its block is checkpointed; malloc'd or NULL */
    uint8_t  *mask;           /* (d_out, d_in) 1 at an outlier */
    float    *codewords;      /* (M, K, g) */
    uint32_t *usage;          /* (M, K) */
    size_t    M, K, g;
} qn_ui_layer;

void qn_ui_layer_free(qn_ui_layer *l);   /* NULL is fine */

typedef enum { QN_MSG_EVENT = 0, QN_MSG_DONE } qn_msg_type;

typedef struct {
    qn_msg_type   type;
    int           job;            /* the id the job was started with */
    /* QN_MSG_EVENT: a copy of the engine's event */
    qn_event_kind kind;
    char          stage[32];
    int           layer, n_layers;
    int64_t       done, total;
    double        value;
    char         *text;           /* malloc'd, NUL-terminated, or NULL */
    size_t        text_len;
    qn_ui_layer  *layer_done;     /* LAYER_DONE: malloc'd */
    /* QN_MSG_DONE: how the job ended */
    qn_status     status;
    char          errmsg[512];
} qn_msg;

void qn_msg_done(qn_msg *m);      /* frees what the message owns */

typedef struct qn_evq qn_evq;

qn_status qn_evq_create(qn_evq **out, qn_err *err);
void      qn_evq_free(qn_evq *q);             /* frees queued messages; NULL is fine */
/* Takes over what m owns (also on failure, when it is freed). */
void      qn_evq_push(qn_evq *q, qn_msg *m);
/* Moves the oldest message into *m; false when empty. Never waits. */
bool      qn_evq_try_pop(qn_evq *q, qn_msg *m);
/* Messages pushed since creation, PROGRESS replaced in place included (tests). */
uint64_t  qn_evq_pushed(qn_evq *q);

#endif
