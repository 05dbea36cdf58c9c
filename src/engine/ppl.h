/* ppl.h: perplexity of a model on a token stream, with the two protocols
   people compare against:
   - QN_PPL_GPTQ (GPTQ, AQLM and SpQR papers): the text tokenized once (BOS at
     the very start when the tokenizer adds one), cut into non-overlapping
     windows of ctx tokens; within each window every token after the first is
     predicted; ppl = exp(mean NLL).
   - QN_PPL_LLAMACPP (llama.cpp's perplexity tool): the same windows, but the
     first token of each window is replaced by BOS when the tokenizer adds one
     (no BOS anywhere otherwise, e.g. SmolLM2) and only the second half of
     each window is scored (tokens ctx/2+1 .. ctx-1, ctx/2-1 predictions). */
#ifndef QN_PPL_H
#define QN_PPL_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/events.h"
#include "engine/model.h"

typedef enum { QN_PPL_GPTQ = 0, QN_PPL_LLAMACPP } qn_ppl_protocol;

typedef struct {
    qn_ppl_protocol protocol;
    size_t ctx;         /* window length in tokens */
    size_t max_chunks;  /* 0: every full window */
    size_t batch;       /* tokens per forward call; 0: the whole window */
} qn_ppl_opts;

typedef struct {
    double ppl;         /* exp(nll) */
    double nll;         /* mean negative log-likelihood, nats/token */
    double nll_stderr;  /* standard error of the mean NLL */
    size_t tokens;      /* predictions scored */
    size_t chunks;
    double seconds;
} qn_ppl_result;

/* Emits QN_EV_PROGRESS (stage "ppl", done/total chunks, value = running ppl). */
qn_status qn_ppl_run(const qn_model *m, const int32_t *tokens, size_t n_tokens, const qn_ppl_opts *opts,
                     qn_event_sink sink, const atomic_bool *cancel, qn_ppl_result *res, qn_err *err);

/* Reads a text file, checks it is non-empty UTF-8 and tokenizes it as the
   protocols expect (with BOS when the tokenizer adds one). */
qn_status qn_ppl_tokenize_file(const qn_model *m, const char *path, int32_t **tokens, size_t *n, qn_err *err);

#endif
