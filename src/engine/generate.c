/* generate.c: prompt, then sample and stream (see generate.h). */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "engine/map_guard.h"
#include "kernels/timing.h"
#include "engine/sampler.h"

static void emit_token(const qn_model *m, qn_event_sink sink, int prev, int id, size_t i)
{
    char buf[256];
    size_t n = qn_tok_decode_token(m->tok, prev, id, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    qn_emit(sink, &(qn_event){ .kind = QN_EV_TOKEN, .stage = "generate", .done = (int64_t)i,
                               .text = buf, .text_len = (int64_t)n, .value = id });
}

qn_status qn_generate(const qn_model *m, const char *prompt, size_t prompt_len, const qn_gen_opts *opts,
                      qn_event_sink sink, const atomic_bool *cancel, qn_gen_result *res, qn_err *err)
{
    memset(res, 0, sizeof *res);
    const qn_config *c = &m->cfg;
    qn_tok_encode_opts eo = { .add_bos = qn_tok_adds_bos(m->tok) };
    int32_t *prompt_ids = NULL;
    size_t n_prompt = 0;
    qn_status s = qn_map_guard_check(err);   /* the weights are read in place: still the loaded ones? */
    if (s) return s;
    s = qn_tok_encode(m->tok, prompt, prompt_len, eo, &prompt_ids, &n_prompt, err);
    if (s) return s;
    if (n_prompt == 0) {
        free(prompt_ids);
        return qn_err_set(err, QN_ERR_ARG, "the prompt is empty and the tokenizer adds no BOS");
    }
    size_t ctx = opts->ctx ? opts->ctx : n_prompt + opts->n_new;
    if (ctx > m->ctx_limit) ctx = m->ctx_limit;
    if (n_prompt > ctx) {
        free(prompt_ids);
        return qn_err_set(err, QN_ERR_ARG, "the prompt has %zu tokens, more than the context of %zu", n_prompt, ctx);
    }
    qn_state *st = NULL;
    qn_sampler sampler = {0};
    int32_t *seq = malloc((ctx + 1) * sizeof *seq);
    if (!seq || qn_sampler_init(&sampler, (size_t)c->vocab_size, opts->temperature, opts->top_p, opts->seed)) {
        s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(seq, prompt_ids, n_prompt * sizeof *seq);
    if ((s = qn_state_create(&st, m, ctx, n_prompt, err))) goto done;

    double t0 = qn_now();
    const float *logits;
    if ((s = qn_forward(m, st, seq, n_prompt, 0, false, &logits, err))) goto done;
    res->prompt_seconds = qn_now() - t0;
    t0 = qn_now();
    size_t n = n_prompt;
    int eos = qn_tok_eos(m->tok), bos = qn_tok_bos(m->tok);
    while (n - n_prompt < opts->n_new) {
        if (cancel && atomic_load(cancel)) break;
        int next = qn_sampler_next(&sampler, logits);
        seq[n++] = next;
        res->n_generated++;
        /* BOS mid-text marks a new document in llama2.c-style models: stop as llama2.c does */
        if (next == eos || next == bos) break;
        emit_token(m, sink, seq[n - 2], next, n - n_prompt);
        if (n >= ctx) break;
        if ((s = qn_forward(m, st, &seq[n - 1], 1, n - 1, false, &logits, err))) goto done;
    }
    res->gen_seconds = qn_now() - t0;
    res->n_prompt = n_prompt;
    res->tokens = seq;
    seq = NULL;
done:
    free(seq);
    free(prompt_ids);
    qn_sampler_done(&sampler);
    qn_state_free(st);
    return s;
}
