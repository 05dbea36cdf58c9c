/* ppl.c: perplexity protocols (see ppl.h; llama.cpp tools/perplexity
   perplexity(), GPTQ's llama_eval). */
#include "engine/ppl.h"

#include <math.h>
#include <stdlib.h>

#include "engine/fileio.h"
#include "engine/forward.h"
#include "engine/map_guard.h"
#include "kernels/timing.h"

/* -log softmax(logits)[target], in double for the sum. */
static double token_nll(const float *logits, size_t vocab, int32_t target)
{
    float max = logits[0];
    for (size_t i = 1; i < vocab; i++) if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (size_t i = 0; i < vocab; i++) sum += exp((double)(logits[i] - max));
    return log(sum) - (double)(logits[target] - max);
}

qn_status qn_ppl_run(const qn_model *m, const int32_t *tokens, size_t n_tokens, const qn_ppl_opts *opts,
                     qn_event_sink sink, const atomic_bool *cancel, qn_ppl_result *res, qn_err *err)
{
    const qn_config *c = &m->cfg;
    size_t ctx = opts->ctx, vocab = (size_t)c->vocab_size;
    if (ctx < 4) return qn_err_set(err, QN_ERR_ARG, "--ctx %zu is too small (at least 4)", ctx);
    if (ctx > m->ctx_limit)
        return qn_err_set(err, QN_ERR_ARG, "%s: --ctx %zu is larger than the model supports "
                          "(max_position_embeddings %d; --extend-ctx goes past it)", m->path, ctx, c->max_seq_len);
    size_t n_chunks = n_tokens / ctx;
    if (n_chunks == 0)
        return qn_err_set(err, QN_ERR_ARG, "the text has %zu tokens, fewer than one window of %zu", n_tokens, ctx);
    if (opts->max_chunks && opts->max_chunks < n_chunks) n_chunks = opts->max_chunks;
    /* llama.cpp puts BOS at the start of each chunk only when the vocabulary
       adds one (tokenizer.ggml.add_bos_token); SmolLM2's does not. */
    int bos = opts->protocol == QN_PPL_LLAMACPP && qn_tok_adds_bos(m->tok) ? qn_tok_bos(m->tok) : -1;
    size_t batch = opts->batch ? opts->batch : ctx;
    qn_state *st = NULL;
    qn_status s = qn_state_create(&st, m, ctx, batch, err);
    if (s) return s;
    int32_t *window = malloc(ctx * sizeof *window);
    if (!window) { qn_state_free(st); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }

    double t0 = qn_now(), sum = 0.0, sum_sq = 0.0;
    size_t count = 0;
    /* positions whose logits are scored: [first, ctx-1) predicting the next token */
    size_t first = opts->protocol == QN_PPL_LLAMACPP ? ctx / 2 : 0;
    for (size_t ch = 0; ch < n_chunks; ch++) {
        if (cancel && atomic_load(cancel)) { s = qn_err_set(err, QN_ERR_CANCELLED, "perplexity cancelled"); goto done; }
        if ((s = qn_map_guard_check(err))) goto done;   /* the weights are read in place: still the loaded ones? */
        for (size_t i = 0; i < ctx; i++) window[i] = tokens[ch * ctx + i];
        if (bos >= 0) window[0] = bos;
        for (size_t b0 = 0; b0 < ctx; b0 += batch) {
            size_t nb = ctx - b0 < batch ? ctx - b0 : batch;
            const float *logits;
            if ((s = qn_forward(m, st, window + b0, nb, b0, true, &logits, err))) goto done;
            for (size_t t = 0; t < nb; t++) {
                size_t p = b0 + t;
                if (p < first || p + 1 >= ctx) continue;
                double nll = token_nll(logits + t * vocab, vocab, window[p + 1]);
                sum += nll;
                sum_sq += nll * nll;
                count++;
            }
        }
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "ppl", .done = (int64_t)ch + 1,
                                   .total = (int64_t)n_chunks, .value = exp(sum / (double)count) });
    }
    double mean = sum / (double)count;
    res->nll = mean;
    res->ppl = exp(mean);
    res->nll_stderr = count > 1 ? sqrt(fmax(sum_sq / (double)count - mean * mean, 0.0) / (double)(count - 1)) : 0.0;
    res->tokens = count;
    res->chunks = n_chunks;
    res->seconds = qn_now() - t0;
done:
    free(window);
    qn_state_free(st);
    return s;
}

qn_status qn_ppl_tokenize_file(const qn_model *m, const char *path, int32_t **tokens, size_t *n, qn_err *err)
{
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_file_read_all(path, &text, &len, err);
    if (s) return s;
    size_t bad = 0;
    if (len == 0) {
        s = qn_err_set(err, QN_ERR_ARG, "%s: the text is empty", path);
    } else if (!qn_utf8_valid(text, len, &bad)) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: not UTF-8 text (invalid byte 0x%02x at offset %zu)",
                       path, (unsigned char)text[bad], bad);
    } else {
        qn_tok_encode_opts eo = { .add_bos = qn_tok_adds_bos(m->tok), .add_eos = false, .parse_special = false };
        s = qn_tok_encode(m->tok, text, len, eo, tokens, n, err);
    }
    free(text);
    return s;
}
