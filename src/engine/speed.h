/* speed.h: llama-bench's two measurements on a loaded model: pp (a prompt of
   p tokens in one batch) and tg (n decode steps of one token from an empty
   cache), medians of repetitions after a warm-up, the peak resident set while
   they run, and the memory-bandwidth bound they are compared with (a copy
   much larger than the caches, timed in the same run, after the peak is read:
   its buffers are not the model's memory). */
#ifndef QN_SPEED_H
#define QN_SPEED_H
#include <stddef.h>
#include "status.h"
#include "engine/model.h"
#include "kernels/timing.h"

typedef struct {
    size_t pp_tokens, tg_tokens, reps;
    double pp_tps, tg_tps;           /* medians, tokens per second */
    double weight_bytes_per_token;   /* bytes of weights a decode step reads */
    double bandwidth;                /* bytes per second, memcpy read+write */
    double bandwidth_fraction;       /* tg_tps * weight_bytes_per_token / bandwidth */
    double peak_rss;                 /* bytes: the process's peak resident set during pp and tg (the model
                                        loaded, its state, the kernels' buffers); 0 where Linux's
                                        /proc/self/status and clear_refs are not there */
} qn_speed;

qn_status qn_speed_measure(const qn_model *m, size_t pp_tokens, size_t tg_tokens, size_t reps,
                           qn_speed *out, qn_err *err);
double    qn_memcpy_bandwidth(void);

#endif
