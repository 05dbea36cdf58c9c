/* test_bad_input.c: every kind of bad input named by the foundation issue gets
   one clear message naming the file and the problem, and a non-zero exit,
   never a crash. Each case copies the shipped model and breaks one thing. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"
#include "support.h"

static char g_dir[256];

static void setup(void)
{
    char tmp[128];
    ts_mkdtemp(tmp, sizeof tmp);
    snprintf(g_dir, sizeof g_dir, "%s/model", tmp);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", TS_STORIES_HF, g_dir);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void)
{
    char *slash = strrchr(g_dir, '/');
    *slash = 0;
    ts_rmtree(g_dir);
}

static const char *in_model(const char *name)
{
    static char bufs[4][512];
    static int slot;
    char *b = bufs[slot++ % 4];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

/* Runs quench and checks: exit status 1 or 2 (no signal), and stderr names `needle` and `problem`. */
static void expect_clean_failure(const char *const *args, const char *needle, const char *problem)
{
    ts_run_result r = ts_run_quench(args);
    cr_expect(r.status == 1 || r.status == 2, "%s %s: exit %d (want 1 or 2); stderr: %s", args[0], args[1],
              r.status, r.err);
    cr_expect(strstr(r.err, needle), "stderr does not name '%s': %s", needle, r.err);
    if (problem) cr_expect(strstr(r.err, problem), "stderr does not say '%s': %s", problem, r.err);
    size_t lines = 0;
    for (const char *p = r.err; *p; p++) lines += *p == '\n';
    cr_expect(lines == 1 || (lines <= 3 && strstr(r.err, "usage:")), "one message, found %zu lines: %s", lines, r.err);
    ts_run_free(&r);
}

static void ppl_fails(const char *needle, const char *problem)
{
    const char *args[] = { "ppl", g_dir, "--text", ts_shared("text/tinystories-valid-head.txt"),
                           "--ctx", "64", "--chunks", "1", NULL };
    expect_clean_failure(args, needle, problem);
}

TestSuite(bad_input, .init = setup, .fini = teardown);

Test(bad_input, missing_model_folder)
{
    const char *args[] = { "inspect", "/nonexistent/quench-model", NULL };
    expect_clean_failure(args, "/nonexistent/quench-model", "no such file");
}

Test(bad_input, missing_text_file)
{
    const char *args[] = { "ppl", g_dir, "--text", "/nonexistent/text.txt", "--ctx", "64", NULL };
    expect_clean_failure(args, "/nonexistent/text.txt", NULL);
}

Test(bad_input, truncated_safetensors)
{
    const char *st = in_model("model.safetensors");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.full", st);
    rename(st, tmp);
    ts_copy_prefix(tmp, st, 500000);
    ppl_fails("model.safetensors", NULL);
    ts_copy_prefix(tmp, st, 100);   /* inside the JSON header */
    ppl_fails("model.safetensors", NULL);
    ts_copy_prefix(tmp, st, 4);     /* not even the header length */
    ppl_fails("model.safetensors", NULL);
}

typedef struct { void (*edit)(qn_st_entry *e, float *copy, size_t numel); } edit_fn;

static void apply_edit(void *ctx, qn_st_entry *e, float *copy, size_t numel)
{
    ((const edit_fn *)ctx)->edit(e, copy, numel);
}

/* Rewrites model.safetensors with one tensor changed by `edit`. */
static void rewrite_weights(void (*edit)(qn_st_entry *e, float *copy, size_t numel))
{
    char orig[600];
    snprintf(orig, sizeof orig, "%s.orig", in_model("model.safetensors"));
    rename(in_model("model.safetensors"), orig);
    ts_st_rewrite(orig, in_model("model.safetensors"), "model.layers.1.mlp.up_proj.weight", apply_edit, &(edit_fn){ edit });
    remove(orig);
}

static void make_wrong_shape(qn_st_entry *e, float *copy, size_t numel)
{
    (void)copy; (void)numel;
    e->shape[0] = 64;      /* [172, 64] claimed as [64, 172]: same bytes, wrong shape */
    e->shape[1] = 172;
}

static void make_nan(qn_st_entry *e, float *copy, size_t numel)
{
    (void)e;
    copy[numel / 2] = NAN;
}

static void make_int32(qn_st_entry *e, float *copy, size_t numel)
{
    (void)copy; (void)numel;
    e->dtype = QN_DTYPE_I32;
}

Test(bad_input, tensor_shape_disagrees_with_config)
{
    rewrite_weights(make_wrong_shape);
    ppl_fails("model.layers.1.mlp.up_proj.weight", "shape");
}

Test(bad_input, nan_in_weights)
{
    rewrite_weights(make_nan);
    ppl_fails("model.layers.1.mlp.up_proj.weight", "NaN");
}

Test(bad_input, unsupported_dtype)
{
    rewrite_weights(make_int32);
    ppl_fails("model.layers.1.mlp.up_proj.weight", "I32");
}

Test(bad_input, header_lies_about_offsets)
{
    /* grow one tensor's end offset by 4 bytes: spans then overlap or exceed the data */
    const char *st = in_model("model.safetensors");
    FILE *fp = fopen(st, "r+b");
    uint64_t hl;
    cr_assert_eq(fread(&hl, 8, 1, fp), 1);
    char *hdr = calloc(1, hl + 1);
    cr_assert_eq(fread(hdr, 1, hl, fp), hl);
    json_t *root = json_loadb(hdr, hl, 0, NULL);
    cr_assert(root);
    json_t *t = json_object_get(root, "model.norm.weight");
    json_t *offs = json_object_get(t, "data_offsets");
    json_array_set_new(offs, 1, json_integer(json_integer_value(json_array_get(offs, 1)) + 4));
    char *text = json_dumps(root, JSON_COMPACT);
    cr_assert(strlen(text) <= hl, "patched header must fit");
    memset(hdr, ' ', hl);
    memcpy(hdr, text, strlen(text));
    fseek(fp, 8, SEEK_SET);
    fwrite(hdr, 1, hl, fp);
    fclose(fp);
    free(text);
    free(hdr);
    json_decref(root);
    ppl_fails("model.safetensors", NULL);
}

Test(bad_input, malformed_config_json)
{
    ts_write_file(in_model("config.json"), "{\"hidden_size\": 64,", 19);
    ppl_fails("config.json", "JSON");
}

Test(bad_input, missing_config_json)
{
    remove(in_model("config.json"));
    ppl_fails("config.json", NULL);
}

Test(bad_input, unsupported_architecture)
{
    const char *cfg = "{\"architectures\": [\"GPT2LMHeadModel\"], \"hidden_size\": 64}";
    ts_write_file(in_model("config.json"), cfg, strlen(cfg));
    ppl_fails("GPT2LMHeadModel", "not supported");
}

Test(bad_input, shard_listed_but_absent)
{
    rename(in_model("model.safetensors"), in_model("model-00001-of-00002.safetensors"));
    json_t *map = json_object();
    qn_st_file *f = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_st_open(&f, in_model("model-00001-of-00002.safetensors"), &err), QN_OK);
    for (size_t i = 0; i < qn_st_count(f); i++)
        json_object_set_new(map, qn_st_at(f, i)->name,
                            json_string(i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"));
    qn_st_close(f);
    json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 1056512, "weight_map", map);
    json_dump_file(idx, in_model("model.safetensors.index.json"), 0);
    json_decref(idx);
    ppl_fails("model-00002-of-00002.safetensors", NULL);
}

Test(bad_input, tokenizer_of_unknown_model_type)
{
    const char *tj = "{\"version\": \"1.0\", \"added_tokens\": [], \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
    ts_write_file(in_model("tokenizer.json"), tj, strlen(tj));
    ppl_fails("tokenizer.json", "WordPiece");
}

Test(bad_input, text_not_utf8)
{
    const char *txt = in_model("latin1.txt");
    ts_write_file(txt, "caf\xe9 au lait and more words here\n", 33);
    const char *args[] = { "ppl", g_dir, "--text", txt, "--ctx", "8", NULL };
    expect_clean_failure(args, "latin1.txt", "UTF-8");
}

Test(bad_input, empty_text)
{
    const char *txt = in_model("empty.txt");
    ts_write_file(txt, "", 0);
    const char *args[] = { "ppl", g_dir, "--text", txt, "--ctx", "8", NULL };
    expect_clean_failure(args, "empty.txt", "empty");
}

Test(bad_input, ctx_larger_than_model_supports)
{
    const char *args[] = { "ppl", g_dir, "--text", ts_shared("text/tinystories-valid-head.txt"), "--ctx", "4096", NULL };
    expect_clean_failure(args, "--ctx 4096", "max_position_embeddings");
}

Test(bad_input, garbage_file_as_model)
{
    const char *junk = in_model("junk.bin");
    ts_write_file(junk, "this is not a model", 19);
    const char *args[] = { "inspect", junk, NULL };
    expect_clean_failure(args, "junk.bin", "not a Hugging Face model folder");
}

Test(bad_input, truncated_gguf_and_llama2c)
{
    const char *g = in_model("cut.gguf");
    ts_copy_prefix(ts_shared("models/stories260K/gguf/stories260K-f32.gguf"), g, 300000);
    const char *a1[] = { "inspect", g, NULL };
    expect_clean_failure(a1, "cut.gguf", NULL);
    const char *b = in_model("cut.bin");
    ts_copy_prefix(ts_shared("models/stories260K/stories260K.bin"), b, 400000);
    const char *a2[] = { "ppl", b, "--tokenizer", ts_shared("models/stories260K/tok512.bin"), "--text",
                         ts_shared("text/tinystories-valid-head.txt"), "--ctx", "64", NULL };
    expect_clean_failure(a2, "cut.bin", "truncated");
}

Test(bad_input, bad_option_values)
{
    const char *a1[] = { "ppl", g_dir, "--text", "x", "--ctx", "abc", NULL };
    expect_clean_failure(a1, "--ctx", "expected an integer");
    const char *a2[] = { "generate", g_dir, "--prompt", "hi", "--temp", "-1", NULL };
    expect_clean_failure(a2, "--temp", NULL);
    const char *a3[] = { "frobnicate", NULL };
    ts_run_result r = ts_run_quench(a3);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "unknown subcommand 'frobnicate'"), "%s", r.err);
    ts_run_free(&r);
}
