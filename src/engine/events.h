/* events.h: how long engine operations report progress. The engine never
   prints; it calls a sink that the CLI turns into progress lines and that the
   TUI queues for its UI thread. A sink returns quickly and copies what it keeps:
   the payload belongs to the engine and is valid only during the call. */
#ifndef QN_EVENTS_H
#define QN_EVENTS_H
#include <stdint.h>

typedef enum {
    QN_EV_RUN_START, QN_EV_STAGE, QN_EV_PROGRESS, QN_EV_LAYER_DONE,
    QN_EV_TOKEN, QN_EV_WARNING, QN_EV_RUN_END,
    QN_EV_BLOCK_TUNED   /* a block's fine-tuning ended: layer, value = relative MSE after;
                           payload: const qn_finetune_result * (finetune.h) */
} qn_event_kind;

typedef struct {
    qn_event_kind kind;
    const char   *stage;          /* "load", "ppl", "generate", "quantize" */
    int           layer, n_layers;
    int64_t       done, total;    /* counters inside the stage */
    double        value;          /* e.g. running perplexity; NAN when none */
    const char   *text;           /* a token's bytes, a warning; may be NULL */
    int64_t       text_len;
    const void   *payload;        /* kind-specific */
} qn_event;

typedef struct {
    void (*emit)(void *ctx, const qn_event *ev);
    void  *ctx;
} qn_event_sink;

/* Sends ev to sink when it has an emit function. */
static inline void qn_emit(qn_event_sink sink, const qn_event *ev)
{
    if (sink.emit) sink.emit(sink.ctx, ev);
}

#endif
