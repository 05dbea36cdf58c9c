/* test_commands.c: the subcommands end to end through the binary. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

Test(cli, inspect_json_describes_the_default_model)
{
    const char *args[] = { "inspect", TS_STORIES_HF, "--json", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert(j, "inspect --json is not JSON: %s", r.out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "architecture")), "LlamaForCausalLM");
    cr_expect_eq(json_integer_value(json_object_get(j, "parameters")), 260032, "stories260K has 260,032 parameters");
    cr_expect_eq(json_array_size(json_object_get(j, "tensors")), 47, "embed + 5 x 9 + norm; the head is tied");
    cr_expect_eq(json_integer_value(json_object_get(j, "kv_heads")), 4);
    cr_expect_null(json_object_get(j, "quantization"), "the default model is not quantized");
    json_decref(j);
    ts_run_free(&r);
}

Test(cli, inspect_reads_gguf_and_llama2c)
{
    const char *a1[] = { "inspect", ts_shared("models/stories260K/gguf/stories260K-Q4_K_M.gguf"), NULL };
    ts_run_result r = ts_run_quench(a1);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "q5_0") && strstr(r.out, "gguf"), "%s", r.out);
    ts_run_free(&r);
    const char *a2[] = { "inspect", ts_shared("models/stories260K/stories260K.bin"), NULL };
    r = ts_run_quench(a2);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "llama2c") && strstr(r.out, "260032"), "%s", r.out);
    ts_run_free(&r);
}

Test(cli, tokenize_json_ids)
{
    const char *args[] = { "tokenize", ts_shared("tokenizers/mistral-32k/tokenizer.json"), "--text", "Hello world",
                           "--json", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = ts_last_json(r.out);
    json_t *ref = json_load_file(ts_shared("reference/tokenizer-cases.json"), 0, NULL);
    json_t *want = json_array_get(json_object_get(ref, "mistral-32k"), 0);
    cr_expect(json_equal(json_object_get(j, "ids"), want), "ids differ from the reference: %s", r.out);
    json_decref(ref);
    json_decref(j);
    ts_run_free(&r);
}

Test(cli, generate_streams_greedy_text)
{
    const char *args[] = { "generate", TS_STORIES_HF, "--prompt", "Once upon a time", "-n", "20", "--temp", "0", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strncmp(r.out, "Once upon a time, there was a little girl named Lily.", 53) == 0, "%s", r.out);
    cr_expect(strstr(r.err, "tokens/s"), "%s", r.err);
    ts_run_free(&r);
}

Test(cli, ppl_json_fields)
{
    const char *args[] = { "ppl", TS_STORIES_HF, "--text", ts_shared("text/tinystories-valid-head.txt"), "--ctx", "256",
                           "--protocol", "llamacpp", "--chunks", "10", "--json", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);   /* --json: stdout is the object alone, the text on stderr */
    cr_assert(j, "stdout is not one JSON document: %s", r.out);
    cr_expect(strstr(r.err, "perplexity "), "%s", r.err);
    const char *keys[] = { "ppl", "tokens", "seconds", "tokens_per_second" };
    for (size_t i = 0; i < 4; i++) cr_expect(json_object_get(j, keys[i]), "no '%s' in %s", keys[i], r.out);
    cr_expect_eq(json_integer_value(json_object_get(j, "tokens")), 10 * 127);
    json_t *per = json_object_get(j, "chunk_ppl");   /* the running perplexity after each chunk */
    cr_expect_eq(json_array_size(per), 10);
    cr_expect_float_eq(json_number_value(json_array_get(per, 9)), json_number_value(json_object_get(j, "ppl")), 1e-9);
    json_decref(j);
    ts_run_free(&r);
}

/* import-llama2c reproduces the shipped folder byte for byte. */
Test(cli, import_llama2c_reproduces_assets)
{
    char tmp[128], out[256];
    ts_mkdtemp(tmp, sizeof tmp);
    snprintf(out, sizeof out, "%s/m", tmp);
    const char *args[] = { "import-llama2c", ts_shared("models/stories260K/stories260K.bin"),
                           ts_shared("models/stories260K/tok512.bin"), out, NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    const char *files[] = { "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json" };
    for (size_t i = 0; i < 4; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "cmp -s %s/%s %s/%s", out, files[i], TS_STORIES_HF, files[i]);
        cr_expect_eq(system(cmd), 0, "%s differs from assets/stories260K", files[i]);
    }
    ts_rmtree(tmp);
}
