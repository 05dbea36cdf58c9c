/* test_ppl.c: perplexity against the shared references: llama.cpp's figures
   (reference/llamacpp.json, --protocol llamacpp, ctx 256) and the f64 numpy
   per-block NLL of shared/README.md. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/forward.h"
#include "engine/ppl.h"
#include "support.h"

/* The bar: within 0.5% of llama.cpp's f32 (and f16) perplexity, 1% for Q4_K_M. */
#define PPL_REL_TOL_F32 0.005
#define PPL_REL_TOL_Q   0.01

static double llamacpp_ref(const char *key, bool chunks100)
{
    json_error_t je;
    json_t *root = json_load_file(ts_shared("reference/llamacpp.json"), 0, &je);
    cr_assert(root, "reference/llamacpp.json: %s", je.text);
    json_t *m = json_object_get(json_object_get(root, "models"), "stories260K");
    json_t *v = chunks100 ? json_object_get(json_object_get(m, "chunks100"), key) : json_object_get(m, key);
    cr_assert(json_is_number(v), "llamacpp.json has no %s", key);
    double x = json_number_value(v);
    json_decref(root);
    return x;
}

static qn_ppl_result run_ppl(const char *model, size_t chunks)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, model, NULL, &err), QN_OK, "%s", err.msg);
    qn_model_extend_ctx(m, 256);  /* llama.cpp's llama2.c converter wrote context_length 128 into the GGUFs */
    int32_t *tokens = NULL;
    size_t n = 0;
    cr_assert_eq(qn_ppl_tokenize_file(m, ts_shared("text/tinystories-valid-head.txt"), &tokens, &n, &err), QN_OK,
                 "%s", err.msg);
    qn_ppl_opts o = { .protocol = QN_PPL_LLAMACPP, .ctx = 256, .max_chunks = chunks };
    qn_ppl_result r = {0};
    cr_assert_eq(qn_ppl_run(m, tokens, n, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    free(tokens);
    qn_model_close(m);
    return r;
}

static void expect_close(const char *what, double got, double want, double tol)
{
    double rel = fabs(got - want) / want;
    cr_expect(rel <= tol, "%s: perplexity %.4f vs llama.cpp %.4f: %.3f%% apart > %.2f%%", what, got, want,
              100 * rel, 100 * tol);
}

Test(ppl, llamacpp_protocol_first_100_chunks_f32, .timeout = 300)
{
    qn_ppl_result r = run_ppl(TS_STORIES_HF, 100);
    cr_expect_eq(r.chunks, 100);
    cr_expect_eq(r.tokens, 100 * 127, "ctx/2 - 1 predictions per chunk");
    expect_close("hf folder f32, 100 chunks", r.ppl, llamacpp_ref("f32_ppl", true), PPL_REL_TOL_F32);
}

Test(ppl, llamacpp_protocol_first_100_chunks_gguf, .timeout = 300)
{
    qn_ppl_result r = run_ppl(ts_shared("models/stories260K/gguf/stories260K-f16.gguf"), 100);
    expect_close("gguf f16, 100 chunks", r.ppl, llamacpp_ref("f16_gguf_ppl", true), PPL_REL_TOL_F32);
    r = run_ppl(ts_shared("models/stories260K/gguf/stories260K-Q4_K_M.gguf"), 100);
    expect_close("gguf Q4_K_M, 100 chunks", r.ppl, llamacpp_ref("q4_k_m_ppl", true), PPL_REL_TOL_Q);
}

Test(ppl, llamacpp_protocol_whole_file_f32, .timeout = 600)
{
    qn_ppl_result r = run_ppl(ts_shared("models/stories260K/stories260K.bin"), 0);
    cr_expect_eq(r.chunks, 1535, "llama.cpp cut the file into 1535 chunks of 256");
    expect_close("llama2.c checkpoint, all chunks", r.ppl, llamacpp_ref("f32_ppl", false), PPL_REL_TOL_F32);
}

/* shared/README.md: each blank-line-separated block scored alone as BOS + text;
   first 30 blocks: 3,052 tokens, mean NLL 1.3620 nats (f64 numpy, ~1e-3). */
Test(ppl, per_block_nll_matches_numpy_reference, .timeout = 120)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(qn_file_read_all(ts_shared("text/tinystories-valid-head.txt"), &text, &len, &err), QN_OK);
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, 512, 512, &err), QN_OK);
    double sum = 0;
    size_t count = 0, blocks = 0;
    char *p = text;
    while (blocks < 30 && *p) {
        char *end = strstr(p, "\n\n");
        size_t bl = end ? (size_t)(end - p) : strlen(p);
        if (bl > 0) {
            int32_t *ids = NULL;
            size_t n = 0;
            qn_tok_encode_opts eo = { .add_bos = true };
            cr_assert_eq(qn_tok_encode(m->tok, p, bl, eo, &ids, &n, &err), QN_OK);
            cr_assert(n <= 512, "block %zu has %zu tokens", blocks, n);
            const float *logits;
            cr_assert_eq(qn_forward(m, st, ids, n, 0, true, &logits, &err), QN_OK, "%s", err.msg);
            for (size_t t = 0; t + 1 < n; t++) {
                const float *l = logits + t * 512;
                double mx = l[0], z = 0;
                for (int v = 1; v < 512; v++) mx = fmax(mx, l[v]);
                for (int v = 0; v < 512; v++) z += exp(l[v] - mx);
                sum += log(z) - (l[ids[t + 1]] - mx);
                count++;
            }
            free(ids);
            blocks++;
        }
        p += bl;
        while (*p == '\n') p++;
    }
    cr_expect_eq(count, 3052, "tokens scored in the first 30 blocks");
    cr_expect(fabs(sum / (double)count - 1.3620) <= 1e-3, "mean NLL %.5f vs 1.3620", sum / (double)count);
    free(text);
    qn_state_free(st);
    qn_model_close(m);
}

/* The gptq protocol scores every token after the first of each window. */
Test(ppl, gptq_protocol_counts_and_batching)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    int32_t *tokens = NULL;
    size_t n = 0;
    cr_assert_eq(qn_ppl_tokenize_file(m, ts_shared("text/tinystories-valid-head.txt"), &tokens, &n, &err), QN_OK);
    qn_ppl_opts whole = { .protocol = QN_PPL_GPTQ, .ctx = 128, .max_chunks = 8 };
    qn_ppl_opts split = whole;
    split.batch = 40;
    qn_ppl_result a, b;
    cr_assert_eq(qn_ppl_run(m, tokens, n, &whole, (qn_event_sink){0}, NULL, &a, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_ppl_run(m, tokens, n, &split, (qn_event_sink){0}, NULL, &b, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(a.tokens, 8 * 127);
    cr_expect(fabs(a.nll - b.nll) < 1e-5, "batching changed the NLL: %.7f vs %.7f", a.nll, b.nll);
    cr_expect(a.ppl > 2 && a.ppl < 10, "ppl %.3f", a.ppl);
    qn_ppl_opts too_long = { .protocol = QN_PPL_GPTQ, .ctx = 4096 };
    cr_expect_eq(qn_ppl_run(m, tokens, n, &too_long, (qn_event_sink){0}, NULL, &a, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "max_position_embeddings"), "%s", err.msg);
    free(tokens);
    qn_model_close(m);
}
