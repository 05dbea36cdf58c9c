/* test_smollm2.c: SmolLM2-135M-Instruct (shared/models/smollm2-135m, a Q4_1
   GGUF) against llama.cpp's figures for the same file
   (shared/reference/llamacpp-smollm2.json, llama.cpp c392e509): tokenizer ids,
   perplexity over the first chunks, greedy tokens; and the Hugging Face folder
   `export-hf` writes read back with the same logits. Skipped when shared/ lacks
   the model. Each test takes a few seconds on one core. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/export_hf.h"
#include "engine/fileio.h"
#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/ggml_numerics.h"
#include "engine/model.h"
#include "engine/ppl.h"
#include "support.h"

#define SMOL_GGUF "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"

/* The bar. Measured after two chunks: -0.23% in f32, -0.26% with
   llama.cpp's arithmetic (after 40: -0.51% in f32, see the report); quench's
   perplexity sits below llama.cpp's by a few tenths of a percent. */
#define PPL_REL_TOL_2_CHUNKS 0.005

static const char *smol_path(void)
{
    const char *p = ts_shared(SMOL_GGUF);
    if (!qn_path_exists(p)) cr_skip_test("%s is not there", p);
    return p;
}

static qn_model *open_smol(void)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, smol_path(), NULL, &err), QN_OK, "%s", err.msg);
    return m;
}

static json_t *reference(void)
{
    json_error_t je;
    json_t *root = json_load_file(ts_shared("reference/llamacpp-smollm2.json"), 0, &je);
    cr_assert(root, "reference/llamacpp-smollm2.json: %s", je.text);
    return root;
}

static void ids_of(const qn_model *m, const char *text, size_t len, bool special, int32_t **ids, size_t *n)
{
    qn_err err = {0};
    qn_tok_encode_opts o = { .add_bos = qn_tok_adds_bos(m->tok), .parse_special = special };
    cr_assert_eq(qn_tok_encode(m->tok, text, len, o, ids, n, &err), QN_OK, "%s", err.msg);
}

/* ids of text equal the JSON array want (llama-tokenize parses special tokens). */
static void expect_ids(const qn_model *m, const char *text, const json_t *want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    ids_of(m, text, strlen(text), true, &ids, &n);
    bool same = n == json_array_size(want);
    for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(want, i));
    cr_expect(same, "ids of \"%.60s\": %zu tokens, llama.cpp has %zu (first differing at or before %zu)", text, n,
              json_array_size(want), n);
    free(ids);
}

static void expect_ids_list(const qn_model *m, const char *text, size_t len, bool special, const int32_t *want,
                            size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    ids_of(m, text, len, special, &ids, &n);
    cr_expect_eq(n, n_want, "\"%.40s\": %zu tokens, expected %zu", text, n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++) cr_expect_eq(ids[i], want[i], "\"%.40s\" token %zu: %d vs %d", text, i, ids[i], want[i]);
    free(ids);
}

Test(smollm2, loads_with_the_architecture_of_its_readme, .timeout = 60)
{
    qn_model *m = open_smol();
    const qn_config *c = &m->cfg;
    cr_expect_eq(c->n_layers, 30);
    cr_expect_eq(c->dim, 576);
    cr_expect_eq(c->hidden_dim, 1536);
    cr_expect_eq(c->n_heads, 9);
    cr_expect_eq(c->n_kv_heads, 3);
    cr_expect_eq(c->head_dim, 64);
    cr_expect_eq(c->vocab_size, 49152);
    cr_expect_float_eq(c->rope_theta, 100000.0, 1e-3);
    cr_expect_float_eq(c->rms_eps, 1e-5, 1e-9);
    cr_expect(c->tie_embeddings);
    cr_expect_eq(qn_config_n_params(c), 134515008);
    cr_expect_eq(qn_tok_bos(m->tok), 1);
    cr_expect_eq(qn_tok_eos(m->tok), 2);
    cr_expect(!qn_tok_adds_bos(m->tok), "tokenizer.ggml.add_bos_token is false");
    qn_model_close(m);
}

Test(smollm2, tokenizer_ids_equal_llamacpp, .timeout = 60)
{
    qn_model *m = open_smol();
    json_t *root = reference();
    json_t *tok = json_object_get(root, "tokenizer");
    json_t *cases = json_object_get(tok, "cases");
    cr_assert(json_array_size(cases) >= 6);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
        expect_ids(m, json_string_value(json_object_get(c, "text")), json_object_get(c, "ids"));
    /* the 16 texts of tokenizer-cases.json, in order */
    json_error_t je;
    json_t *texts_root = json_load_file(ts_shared("reference/tokenizer-cases.json"), 0, &je);
    cr_assert(texts_root, "reference/tokenizer-cases.json: %s", je.text);
    json_t *texts = json_object_get(texts_root, "texts");
    json_t *ids = json_object_get(json_object_get(tok, "tokenizer_cases_json_texts"), "ids");
    cr_assert_eq(json_array_size(texts), 16);
    cr_assert_eq(json_array_size(ids), 16);
    json_array_foreach(texts, i, c) expect_ids(m, json_string_value(c), json_array_get(ids, i));
    json_decref(texts_root);
    json_decref(root);
    qn_model_close(m);
}

Test(smollm2, control_tokens_and_bytes_without_a_token, .timeout = 60)
{
    qn_model *m = open_smol();
    /* llama-tokenize (special parsing on) reads ChatML markers as their ids;
       with it off they are plain text */
    static const char chat[] = "<|im_start|>user\nHi<|im_end|>\n";
    static const int32_t chat_special[] = { 1, 4093, 198, 26843, 2, 198 };
    expect_ids_list(m, chat, strlen(chat), true, chat_special, 6);
    static const int32_t marker_text[] = { 44, 108, 306, 79, 3738, 108, 46 };
    expect_ids_list(m, "<|im_start|>", 12, false, marker_text, 7);
    /* the vocabulary has no token for byte 0x04: llama.cpp's BPE session keeps the
       byte as a symbol (so nothing merges across it) and then drops it, having no
       id for it; 0x01 has one (U+0101 in the GPT-2 byte map) */
    static const char bytes[] = "a\x04" "b\x01" "c";
    static const int32_t bytes_ids[] = { 81, 82, 191, 83 };
    expect_ids_list(m, bytes, 5, true, bytes_ids, 4);
    qn_model_close(m);
}

/* Perplexity of the first two wikitext-2 chunks at ctx 512 (llama.cpp's
   protocol) against llama.cpp's running value after two chunks. */
static void expect_ppl_two_chunks(bool ggml, double tol)
{
    qn_model *m = open_smol();
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_err err = {0};
    if (ggml) cr_assert_eq(qn_ggml_numerics_enable(m, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_ppl_tokenize_file(m, ts_shared("text/wikitext2-raw-test.txt"), &tokens, &n, &err), QN_OK, "%s",
                 err.msg);
    cr_expect_eq(n, 301948, "llama.cpp's tokenizer makes 301948 tokens of the file (no BOS), quench %zu", n);
    qn_ppl_opts o = { .protocol = QN_PPL_LLAMACPP, .ctx = 512, .max_chunks = 2 };
    qn_ppl_result r = {0};
    cr_assert_eq(qn_ppl_run(m, tokens, n, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(r.tokens, 2 * 255, "ctx/2 - 1 predictions per chunk");
    cr_expect(isfinite(r.ppl));
    json_t *root = reference();
    json_t *rp = json_object_get(json_object_get(json_object_get(json_object_get(root, "cases"), "Q4_1"),
                                                 "ppl_details"), "running_ppl");
    cr_assert(json_array_size(rp) >= 2);
    double want = json_number_value(json_array_get(rp, 1));
    double rel = fabs(r.ppl - want) / want;
    fprintf(stderr, "smollm2 ppl (%s) %.4f after 2 chunks, llama.cpp %.4f (%+.3f%%)\n", ggml ? "ggml" : "f32", r.ppl,
            want, 100 * (r.ppl - want) / want);
    cr_expect(rel <= tol, "perplexity %.4f vs llama.cpp %.4f after 2 chunks: %.3f%% apart > %.2f%%", r.ppl, want,
              100 * rel, 100 * tol);
    json_decref(root);
    free(tokens);
    qn_model_close(m);
}

Test(smollm2, perplexity_of_two_chunks_near_llamacpp, .timeout = 300)
{
    expect_ppl_two_chunks(false, PPL_REL_TOL_2_CHUNKS);
}

Test(smollm2, perplexity_of_two_chunks_with_ggml_numerics, .timeout = 300)
{
    expect_ppl_two_chunks(true, PPL_REL_TOL_2_CHUNKS);
}

/* Greedy continuation of a reference prompt for its first n_new generated
   ids; returns how many lead equal to llama.cpp's. */
static size_t greedy_agreement(qn_model *m, const json_t *c, size_t n_new)
{
    const char *prompt = json_string_value(json_object_get(c, "prompt"));
    json_t *want = json_object_get(c, "generated_ids"), *prompt_ids = json_object_get(c, "prompt_ids");
    cr_assert_leq(n_new, json_array_size(want));
    qn_gen_opts o = { .n_new = n_new, .temperature = 0.0f };
    qn_gen_result r = {0};
    qn_err err = {0};
    cr_assert_eq(qn_generate(m, prompt, strlen(prompt), &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(r.n_prompt, json_array_size(prompt_ids), "\"%s\": %zu prompt tokens", prompt, r.n_prompt);
    for (size_t i = 0; i < r.n_prompt; i++)
        cr_expect_eq(r.tokens[i], json_integer_value(json_array_get(prompt_ids, i)), "\"%s\" prompt token %zu", prompt, i);
    size_t same = 0;
    while (same < r.n_generated && r.tokens[r.n_prompt + same] == json_integer_value(json_array_get(want, same))) same++;
    free(r.tokens);
    return same;
}

/* The first agree[i] greedy ids of the reference prompts equal llama.cpp's. */
static void expect_greedy(bool ggml, const size_t agree[2])
{
    qn_model *m = open_smol();
    qn_err err = {0};
    if (ggml) cr_assert_eq(qn_ggml_numerics_enable(m, &err), QN_OK, "%s", err.msg);
    json_t *root = reference();
    json_t *cases = json_object_get(json_object_get(root, "greedy"), "cases");
    cr_assert_eq(json_array_size(cases), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *c = json_array_get(cases, i);
        size_t same = greedy_agreement(m, c, agree[i]);
        cr_expect_eq(same, agree[i], "\"%s\": only the first %zu generated ids equal llama.cpp's, expected %zu",
                     json_string_value(json_object_get(c, "prompt")), same, agree[i]);
    }
    json_decref(root);
    qn_model_close(m);
}

/* In f32, llama.cpp's greedy text is reproduced up to the first step where its
   rounding changes the choice: after "The capital of France is Paris.\n\nThe"
   quench has " answer" 0.22 above " United" (llama.cpp chose " United"); after
   "...lose its original" " essence" is 0.05 above " identity". */
Test(smollm2, greedy_tokens_equal_llamacpp_up_to_its_rounding, .timeout = 300)
{
    static const size_t agree[2] = { 4, 32 };
    expect_greedy(false, agree);
}

/* With llama.cpp's arithmetic all 48 ids of the first prompt agree; the second
   still parts at " essence"/" identity" (0.09 apart here). */
Test(smollm2, greedy_tokens_with_ggml_numerics, .timeout = 300)
{
    static const size_t agree[2] = { 48, 32 };
    expect_greedy(true, agree);
}

/* Last-position logits of ids through model m. */
static float *last_logits(const qn_model *m, const int32_t *ids, size_t n)
{
    qn_state *st = NULL;
    qn_err err = {0};
    const float *lg = NULL;
    cr_assert_eq(qn_state_create(&st, m, n, n, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_forward(m, st, ids, n, 0, false, &lg, &err), QN_OK, "%s", err.msg);
    size_t V = (size_t)m->cfg.vocab_size;
    float *out = malloc(V * sizeof *out);
    memcpy(out, lg, V * sizeof *out);
    qn_state_free(st);
    return out;
}

/* export-hf to dtype, read back: the folder's tokenizer gives the GGUF's ids
   and its logits are the GGUF's within tol (f32: the same weights bit for bit). */
static void round_trip(qn_dtype dtype, double tol)
{
    qn_model *g = open_smol();
    char dir[256];
    ts_mkdtemp(dir, sizeof dir);
    qn_config cfg;
    qn_weight_source src = {0};
    qn_tokenizer *tok = NULL;
    qn_source_kind kind;
    qn_err err = {0};
    cr_assert_eq(qn_model_source_open(smol_path(), &cfg, &src, &tok, &kind, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_hf_export_as(dir, &cfg, &src, tok, dtype, (qn_event_sink){0}, &err), QN_OK, "%s", err.msg);
    qn_tok_free(tok);
    src.close(src.ctx);
    qn_model *h = NULL;
    cr_assert_eq(qn_model_open(&h, dir, NULL, &err), QN_OK, "%s", err.msg);
    cr_expect(h->cfg.tie_embeddings);
    cr_expect(!qn_tok_adds_bos(h->tok));
    static const char text[] = "<|im_start|>user\nThe capital of France is\x04 caf\xc3\xa9 1234";
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    ids_of(g, text, strlen(text), true, &a, &na);
    ids_of(h, text, strlen(text), true, &b, &nb);
    cr_assert_eq(na, nb, "%zu tokens from the GGUF, %zu from the exported tokenizer.json", na, nb);
    for (size_t i = 0; i < na; i++) cr_expect_eq(a[i], b[i], "token %zu", i);
    float *lg = last_logits(g, a, na), *lh = last_logits(h, a, na);
    double worst = 0.0;
    for (size_t v = 0; v < (size_t)g->cfg.vocab_size; v++) worst = fmax(worst, fabs((double)lg[v] - lh[v]));
    cr_log_info("%s round trip: max |logit diff| %.3g", qn_dtype_name(dtype), worst);
    cr_expect(worst <= tol, "max |logit diff| %.3g > %.3g after the %s round trip", worst, tol, qn_dtype_name(dtype));
    free(lg);
    free(lh);
    free(a);
    free(b);
    qn_model_close(h);
    qn_model_close(g);
    ts_rmtree(dir);
}

Test(smollm2, export_hf_f32_round_trip_gives_equal_logits, .timeout = 300) { round_trip(QN_DTYPE_F32, 1e-4); }
/* f16 rounds each weight by up to 2^-11 relative: logits of ~20 move by ~0.05 */
Test(smollm2, export_hf_f16_round_trip_within_f16_rounding, .timeout = 300) { round_trip(QN_DTYPE_F16, 0.1); }
