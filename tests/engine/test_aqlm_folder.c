/* test_aqlm_folder.c: AQLM through the whole-model pipeline: the output is a
   Hugging Face AQLM folder (layout and config checked), it loads back in
   quench (also in the older llama_aqlm layout), and inconsistent folders are
   refused with the file and the problem named. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "engine/safetensors.h"
#include "support.h"

static char g_dir[128], g_run[256];

/* One small AQLM run shared by the tests of this file (made by the first that needs it). */
static const char *aqlm_run(void)
{
    if (g_run[0]) return g_run;
    ts_mkdtemp(g_dir, sizeof g_dir);
    snprintf(g_run, sizeof g_run, "%s/aqlm", g_dir);
    qn_quantize_job job = { .model = TS_STORIES_HF, .calib = ts_shared("text/tinystories-valid-head.txt"),
                            .out_dir = g_run };
    job.config = qn_preset_find("aqlm-2x8")->config;   /* g8 must be fitted to 4 for width 172 */
    job.config.nsamples = 8;
    job.config.seqlen = 64;
    qn_err err = {0};
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
    return g_run;
}

static void copy_run(const char *to)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", aqlm_run(), to);
    cr_assert_eq(system(cmd), 0);
}

Test(aqlm_folder, hugging_face_layout_and_config, .timeout = 240)
{
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", aqlm_run());
    json_t *cfg = json_load_file(path, 0, NULL);
    json_t *qc = json_object_get(cfg, "quantization_config");
    cr_expect_str_eq(json_string_value(json_object_get(qc, "quant_method")), "aqlm");
    cr_expect_eq(json_integer_value(json_object_get(qc, "num_codebooks")), 2);
    cr_expect_eq(json_integer_value(json_object_get(qc, "nbits_per_codebook")), 8);
    cr_expect_eq(json_integer_value(json_object_get(qc, "in_group_size")), 4, "group 8 fitted to the 172-wide MLP");
    cr_expect_eq(json_integer_value(json_object_get(qc, "out_group_size")), 1);
    json_decref(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", aqlm_run());
    qn_st_file *f = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    const qn_st_tensor *codes = qn_st_find(f, "model.layers.0.mlp.down_proj.codes");
    const qn_st_tensor *cb = qn_st_find(f, "model.layers.0.mlp.down_proj.codebooks");
    const qn_st_tensor *sc = qn_st_find(f, "model.layers.0.mlp.down_proj.scales");
    cr_assert(codes && cb && sc);
    cr_expect(codes->dtype == QN_DTYPE_I8 && codes->ndim == 3 && codes->shape[0] == 64 && codes->shape[1] == 43 &&
              codes->shape[2] == 2, "codes shape");
    cr_expect(cb->dtype == QN_DTYPE_F16 && cb->ndim == 4 && cb->shape[0] == 2 && cb->shape[1] == 256 &&
              cb->shape[2] == 1 && cb->shape[3] == 4, "codebooks shape");
    cr_expect(sc->dtype == QN_DTYPE_F16 && sc->ndim == 4 && sc->shape[0] == 64 && sc->shape[1] == 1, "scales shape");
    cr_expect(!qn_st_find(f, "model.layers.0.mlp.down_proj.weight"), "the dense weight is not stored");
    cr_expect(qn_st_find(f, "model.embed_tokens.weight") != NULL);
    qn_st_close(f);
}

Test(aqlm_folder, loads_back_and_runs, .timeout = 240)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, aqlm_run(), NULL, &err), QN_OK, "%s", err.msg);
    cr_expect(m->quantized);
    cr_expect_str_eq(m->quant_method, "aqlm");
    double ppl = ts_model_ppl(m, 10);
    cr_expect(ppl > 3 && ppl < 8, "AQLM 2x8 ppl %.3f", ppl);
    qn_model_close(m);
}

/* The older layout: no quantization_config, a top-level "aqlm" block, model_type llama_aqlm. */
Test(aqlm_folder, reads_the_legacy_llama_aqlm_config, .timeout = 240)
{
    char dir[128], copy[256], path[400];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(copy, sizeof copy, "%s/legacy", dir);
    copy_run(copy);
    snprintf(path, sizeof path, "%s/config.json", copy);
    json_t *cfg = json_load_file(path, 0, NULL);
    json_t *qc = json_object_get(cfg, "quantization_config");
    json_t *legacy = json_pack("{s:O, s:O, s:O, s:O}", "nbits_per_codebook", json_object_get(qc, "nbits_per_codebook"),
                               "num_codebooks", json_object_get(qc, "num_codebooks"),
                               "in_group_size", json_object_get(qc, "in_group_size"),
                               "out_group_size", json_object_get(qc, "out_group_size"));
    json_object_del(cfg, "quantization_config");
    json_object_set_new(cfg, "aqlm", legacy);
    json_object_set_new(cfg, "model_type", json_string("llama_aqlm"));
    json_dump_file(cfg, path, 0);
    json_decref(cfg);
    qn_model *m = NULL;
    qn_err err = {0};
    cr_expect_eq(qn_model_open(&m, copy, NULL, &err), QN_OK, "%s", err.msg);
    cr_expect(m && m->quantized);
    qn_model_close(m);
    ts_rmtree(dir);
}

static void expect_refused(void (*breakit)(const char *dir), const char *needle)
{
    char dir[128], copy[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(copy, sizeof copy, "%s/bad", dir);
    copy_run(copy);
    breakit(copy);
    qn_model *m = NULL;
    qn_err err = {0};
    cr_expect_neq(qn_model_open(&m, copy, NULL, &err), QN_OK);
    cr_expect(strstr(err.msg, needle), "message '%s' does not say '%s'", err.msg, needle);
    qn_model_close(m);
    ts_rmtree(dir);
}

static void edit_config(const char *dir, const char *key, json_t *value)
{
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    json_object_set_new(json_object_get(cfg, "quantization_config"), key, value);
    json_dump_file(cfg, path, 0);
    json_decref(cfg);
}

static void wrong_group(const char *dir) { edit_config(dir, "in_group_size", json_integer(8)); }
static void too_many_bits(const char *dir) { edit_config(dir, "nbits_per_codebook", json_integer(20)); }
static void not_aqlm(const char *dir) { edit_config(dir, "quant_method", json_string("awq")); }
static void fewer_bits(const char *dir) { edit_config(dir, "nbits_per_codebook", json_integer(6)); }

Test(aqlm_folder, inconsistent_folders_are_refused, .timeout = 240)
{
    expect_refused(wrong_group, "q_proj.codes' is I8 [64, 16, 2], expected I8 [64, 8, 2]");
    expect_refused(too_many_bits, "nbits_per_codebook 20");
    expect_refused(not_aqlm, "quant_method 'awq'");
    expect_refused(fewer_bits, "codebooks");                /* stored (2, 256, 1, 4) vs 2^6 declared */
}

/* Codes beyond 2^B: with B = 6 declared and codebooks cut to 64 entries, stored 8-bit codes overflow. */
static void codes_outside(const char *dir)
{
    char src[400], dst[400];
    snprintf(src, sizeof src, "%s/model.safetensors", dir);
    snprintf(dst, sizeof dst, "%s/model.safetensors.orig", dir);
    rename(src, dst);
    qn_st_file *f = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_st_open(&f, dst, &err), QN_OK);
    size_t n = qn_st_count(f);
    qn_st_entry *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        const qn_st_tensor *t = qn_st_at(f, i);
        e[i] = (qn_st_entry){ .name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data };
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        if (strstr(t->name, ".codebooks")) e[i].shape[1] = 64;   /* keep the first 64 codewords */
    }
    cr_assert_eq(qn_st_write(src, e, n, NULL, &err), QN_OK, "%s", err.msg);
    free(e);
    qn_st_close(f);
    edit_config(dir, "nbits_per_codebook", json_integer(6));
}

Test(aqlm_folder, codes_beyond_the_codebook_are_refused, .timeout = 240)
{
    expect_refused(codes_outside, "code");
}
