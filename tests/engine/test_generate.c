/* test_generate.c: greedy generation equals llama2.c's run token for token
   (reference/greedy-stories260K.json), from the checkpoint and the HF folder;
   sampling is reproducible for a seed. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"
#include "support.h"

typedef struct { char *buf; size_t len; } collected;

static void collect(void *ctx, const qn_event *ev)
{
    collected *c = ctx;
    if (ev->kind != QN_EV_TOKEN) return;
    c->buf = realloc(c->buf, c->len + (size_t)ev->text_len + 1);
    memcpy(c->buf + c->len, ev->text, (size_t)ev->text_len);
    c->len += (size_t)ev->text_len;
    c->buf[c->len] = 0;
}

static char *generate(qn_model *m, const char *prompt, size_t steps, float temp, uint64_t seed)
{
    /* llama2.c's -n counts BOS and the prompt: find how many tokens that leaves */
    int32_t *ids = NULL;
    size_t n = 0;
    qn_err err = {0};
    cr_assert_eq(qn_tok_encode(m->tok, prompt, strlen(prompt), (qn_tok_encode_opts){ .add_bos = true }, &ids, &n, &err), QN_OK);
    free(ids);
    qn_gen_opts o = { .n_new = steps - n + 1, .temperature = temp, .top_p = 0.9f, .seed = seed };
    collected c = { .buf = strdup(prompt), .len = strlen(prompt) };
    qn_gen_result r;
    cr_assert_eq(qn_generate(m, prompt, strlen(prompt), &o, (qn_event_sink){ collect, &c }, NULL, &r, &err), QN_OK,
                 "%s", err.msg);
    free(r.tokens);
    return c.buf;
}

static void check_greedy(const char *model)
{
    json_error_t je;
    json_t *root = json_load_file(ts_shared("reference/greedy-stories260K.json"), 0, &je);
    cr_assert(root, "%s", je.text);
    size_t steps = (size_t)json_integer_value(json_object_get(root, "steps"));
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, model, NULL, &err), QN_OK, "%s", err.msg);
    json_t *cases = json_object_get(root, "cases"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        const char *want = json_string_value(json_object_get(c, "text"));
        char *got = generate(m, prompt, steps, 0.0f, 0);
        cr_expect_str_eq(got, want, "%s: prompt '%s'", model, prompt);
        free(got);
    }
    qn_model_close(m);
    json_decref(root);
}

Test(generate, greedy_matches_llama2c_from_checkpoint)
{
    check_greedy(ts_shared("models/stories260K/stories260K.bin"));
}

Test(generate, greedy_matches_llama2c_from_hf_folder)
{
    check_greedy(TS_STORIES_HF);
}

Test(generate, greedy_matches_llama2c_from_gguf)
{
    check_greedy(ts_shared("models/stories260K/gguf/stories260K-f32.gguf"));
}

Test(generate, sampling_is_reproducible_for_a_seed)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    char *a = generate(m, "Once upon a time", 60, 1.0f, 42);
    char *b = generate(m, "Once upon a time", 60, 1.0f, 42);
    char *c = generate(m, "Once upon a time", 60, 1.0f, 43);
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c, "different seeds gave the same 60 tokens");
    free(a); free(b); free(c);
    qn_model_close(m);
}
