/* generate.h: text generation from a prompt, streamed token by token as
   QN_EV_TOKEN events (the bytes each token adds to the text). The prompt is
   encoded with BOS (when the tokenizer adds one), run through the model in one
   batch, then tokens are sampled one at a time until n_new tokens, EOS, or the
   context is full. */
#ifndef QN_GENERATE_H
#define QN_GENERATE_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/model.h"

typedef struct {
    size_t   n_new;        /* tokens to generate after the prompt */
    float    temperature;  /* 0: greedy, deterministic */
    float    top_p;
    uint64_t seed;
    size_t   ctx;          /* 0: min(max_position_embeddings, prompt + n_new) */
} qn_gen_opts;

typedef struct {
    size_t n_prompt;       /* prompt tokens, BOS included */
    size_t n_generated;
    double prompt_seconds, gen_seconds;
    int32_t *tokens;       /* (n_prompt + n_generated), malloc'd; free with free() */
} qn_gen_result;

qn_status qn_generate(const qn_model *m, const char *prompt, size_t prompt_len, const qn_gen_opts *opts,
                      qn_event_sink sink, const atomic_bool *cancel, qn_gen_result *res, qn_err *err);

#endif
