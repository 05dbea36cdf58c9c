/* test_run_folder.c: a run folder read back. One small SpQR run of stories260K
   (made once for the whole file, shared by its tests) gives the records, the
   statistics and the weights, checked against run.jsonl and against the models
   qn_model_open loads; hand-written folders give AQLM rounds and codebooks, an
   unfinished run, and the broken files, each error naming its file. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/llama_layout.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/run_folder.h"
#include "engine/safetensors.h"
#include "support.h"

/* The shared run lives in a folder named after the Criterion runner (every
   test's parent process) and is made under a lock by the first test that asks,
   since tests run in parallel; the runner removes it after the last test. */
static void shared_dir(int runner, char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/quench-test-run-folder-%d", runner);
}

static const char *spqr_run(void)
{
    static char dir[96];
    if (dir[0]) return dir;
    char lock[128], tmp[128];
    shared_dir((int)getppid(), dir, sizeof dir);
    snprintf(lock, sizeof lock, "%s.lock", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    int fd = open(lock, O_CREAT | O_RDWR, 0600);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0, "%s: cannot take the lock", lock);
    if (!qn_path_exists(dir)) {
        ts_rmtree(tmp);
        qn_quantize_job job = { .model = TS_STORIES_HF, .calib = ts_shared("text/tinystories-valid-head.txt"),
                                .out_dir = tmp };
        job.config = qn_preset_find("spqr-3.6")->config;
        job.config.nsamples = 8;
        job.config.seqlen = 64;
        qn_err err = { 0 };
        cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ 0 }, NULL, &err), QN_OK, "%s", err.msg);
        cr_assert_eq(rename(tmp, dir), 0, "rename %s", tmp);
    }
    close(fd);
    return dir;
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    char dir[96], lock[128];
    shared_dir((int)getpid(), dir, sizeof dir);
    snprintf(lock, sizeof lock, "%s.lock", dir);
    ts_rmtree(dir);
    unlink(lock);
}

static qn_run_folder *open_run(const char *dir)
{
    qn_run_folder *run = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_run_open(&run, dir, &err), QN_OK, "%s", err.msg);
    return run;
}

Test(run_folder, reads_the_run_record, .timeout = 120)
{
    qn_run_folder *run = open_run(spqr_run());
    const qn_run_info *in = qn_run_get_info(run);
    cr_expect_str_eq(in->method, "spqr");
    cr_expect(strncmp(in->method_label, "SpQR w3 g16", 11) == 0, "label '%s'", in->method_label);
    /* run.jsonl records the absolute path of the model */
    cr_expect(in->model[0] == '/' && strcmp(in->model + strlen(in->model) - strlen(TS_STORIES_HF), TS_STORIES_HF) == 0,
              "model '%s'", in->model);
    cr_expect_str_eq(in->model_name, "stories260K");
    cr_expect(strstr(in->options, "\"bits\":3"), "options %s", in->options);
    cr_expect(in->finished);
    cr_expect(in->bits > 3 && in->bits < 8, "bits %g", in->bits);
    cr_expect(in->has_model && in->has_hessian && in->has_outlier_masks);
    cr_expect(!in->has_codebooks && !in->has_rounds);
    cr_assert_eq(in->n_blocks, 5);
    cr_assert_eq(in->n_layers, 35);
    for (size_t i = 0; i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        cr_expect_eq(L->block, (int)(i / 7), "%s", L->name);
        cr_expect_eq(L->sublayer, (int)(i % 7), "%s", L->name);
        cr_expect(L->relative_error > 0 && L->relative_error < 0.1, "%s: %g", L->name, L->relative_error);
        cr_expect(L->n_rounds == 0 && L->d_out > 0 && L->d_in > 0);
    }
    const qn_run_layer *up = &in->layers[3 * 7 + 5];
    cr_expect_str_eq(up->name, "model.layers.3.mlp.up_proj");
    cr_expect_str_eq(up->short_name, "3.up_proj");
    cr_expect_str_eq(up->part, "mlp.up_proj");
    cr_expect(up->d_out == 172 && up->d_in == 64);
    qn_run_close(run);
}

Test(run_folder, finds_layers_by_any_name, .timeout = 120)
{
    qn_run_folder *run = open_run(spqr_run());
    const qn_run_info *in = qn_run_get_info(run);
    static const char *const up[] = { "model.layers.3.mlp.up_proj", "model.layers.3.mlp.up_proj.weight",
                                      "layers.3.mlp.up_proj", "3.mlp.up_proj", "3.up_proj", "3.up", "blk.3.ffn_up" };
    qn_err err = { 0 };
    size_t at;
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        cr_assert_eq(qn_run_find_layer(run, up[i], &at, &err), QN_OK, "%s: %s", up[i], err.msg);
        cr_expect_eq(at, 3 * 7 + 5, "%s found %zu", up[i], at);
    }
    cr_assert_eq(qn_run_find_layer(run, "blk.0.attn_output", &at, &err), QN_OK, "%s", err.msg);
    cr_expect_str_eq(in->layers[at].name, "model.layers.0.self_attn.o_proj");
    cr_assert_eq(qn_run_find_layer(run, "4.q", &at, &err), QN_OK, "%s", err.msg);
    cr_expect_str_eq(in->layers[at].name, "model.layers.4.self_attn.q_proj");
    static const char *const bad[] = { "9.up_proj", "3.nope", "", "up_proj" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(qn_run_find_layer(run, bad[i], &at, &err), QN_ERR_ARG, "'%s' was found", bad[i]);
        cr_expect(strstr(err.msg, "run.jsonl") && strstr(err.msg, "BLOCK 0..4") && strstr(err.msg, "down_proj"),
                  "%s", err.msg);
    }
    size_t worst = qn_run_worst_layer(run);
    for (size_t i = 0; i < in->n_layers; i++)
        cr_expect(in->layers[i].relative_error <= in->layers[worst].relative_error);
    qn_run_close(run);
}

Test(run_folder, statistics_agree_with_the_log, .timeout = 120)
{
    qn_run_folder *run = open_run(spqr_run());
    const qn_run_info *in = qn_run_get_info(run);
    qn_err err = { 0 };
    for (size_t i = 0; i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        const float *diag;
        size_t n, rows, cols, ones = 0;
        cr_assert_eq(qn_run_hessian_diag(run, L->name, &diag, &n, &err), QN_OK, "%s", err.msg);
        cr_expect_eq(n, L->d_in);
        for (size_t j = 0; j < n; j++) cr_expect(diag[j] >= 0, "%s: diag[%zu] = %g", L->name, j, diag[j]);
        const uint8_t *mask;
        cr_assert_eq(qn_run_outlier_mask(run, L->short_name, &mask, &rows, &cols, &err), QN_OK, "%s", err.msg);
        cr_expect(rows == L->d_out && cols == L->d_in);
        for (size_t k = 0; k < rows * cols; k++) ones += mask[k];
        cr_expect_eq(ones, L->outliers, "%s: %zu outliers in the mask, %zu in the log", L->name, ones, L->outliers);
    }
    const float *cw;
    const uint32_t *usage;
    size_t M, K, g;
    cr_expect_eq(qn_run_codebooks(run, "0.q", &cw, &usage, &M, &K, &g, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "AQLM") && strstr(err.msg, "stats.safetensors"), "%s", err.msg);
    qn_run_close(run);
}

/* Both sides dequantize through qn_qmethod_dequantize: equal to the bit. */
Test(run_folder, weights_match_the_loaded_models, .timeout = 120)
{
    const char *dir = spqr_run();
    qn_run_folder *run = open_run(dir);
    qn_model *orig = NULL, *quant = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_model_open(&orig, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    qn_model_opts dense = { .dequantize = true };   /* f32 weights to compare with, not the packed kernels */
    cr_assert_eq(qn_model_open(&quant, dir, &dense, &err), QN_OK, "%s", err.msg);
    static const struct { const char *name; int role, block; } cases[] = {
        { "0.q_proj", QN_T_WQ, 0 }, { "2.up", QN_T_UP, 2 }, { "4.down_proj", QN_T_DOWN, 4 }, { "1.v", QN_T_WV, 1 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *W = NULL, *Q = NULL, *E = NULL;
        size_t rows, cols, r2, c2;
        cr_assert_eq(qn_run_weights(run, cases[c].name, true, &W, &rows, &cols, &err), QN_OK, "%s", err.msg);
        cr_assert_eq(qn_run_weights(run, cases[c].name, false, &Q, &r2, &c2, &err), QN_OK, "%s", err.msg);
        const qn_linear *lo = qn_model_linear(orig, cases[c].role, cases[c].block);
        const qn_linear *lq = qn_model_linear(quant, cases[c].role, cases[c].block);
        cr_assert(rows == lo->d_out && cols == lo->d_in && r2 == rows && c2 == cols, "%s: shape", cases[c].name);
        cr_expect_eq(memcmp(W, lo->w, rows * cols * sizeof *W), 0, "%s: original weights differ", cases[c].name);
        cr_expect_eq(memcmp(Q, lq->w, rows * cols * sizeof *Q), 0, "%s: quantized weights differ", cases[c].name);
        const float *h;
        size_t n;
        cr_assert_eq(qn_run_hessian_diag(run, cases[c].name, &h, &n, &err), QN_OK, "%s", err.msg);
        cr_assert_eq(qn_run_error_map(run, cases[c].name, &E, &r2, &c2, &err), QN_OK, "%s", err.msg);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) {
                double d = (double)W[i * cols + j] - Q[i * cols + j], want = d * d * h[j];
                cr_expect(fabs(E[i * cols + j] - want) <= 1e-6 * want + 1e-30, "%s: E[%zu, %zu] = %g, expected %g",
                          cases[c].name, i, j, E[i * cols + j], want);
            }
        free(W); free(Q); free(E);
    }
    qn_model_close(orig);
    qn_model_close(quant);
    qn_run_close(run);
}

/* ---- hand-written folders ---------------------------------------------------- */

static void write_log(const char *dir, const char *const *lines, size_t n)
{
    char path[256], text[8192] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(text, lines[i], sizeof text - strlen(text) - 2);
        strcat(text, "\n");
    }
    snprintf(path, sizeof path, "%s/run.jsonl", dir);
    ts_write_file(path, text, strlen(text));
}

#define AQLM_START \
    "{\"event\":\"start\",\"model\":\"assets/stories260K\",\"calib\":\"c.txt\",\"method\":\"aqlm\",\"options\":" \
    "{\"quant_method\":\"aqlm\",\"nbits_per_codebook\":2,\"num_codebooks\":2,\"in_group_size\":2," \
    "\"out_group_size\":1}}"
#define Q0_LAYER \
    "{\"event\":\"layer\",\"name\":\"model.layers.0.self_attn.q_proj\",\"block\":0,\"sublayer\":\"q_proj\"," \
    "\"d_out\":64,\"d_in\":64,\"relative_error\":0.02,\"bits\":3.5,\"outliers\":0,\"seconds\":0.1}"

/* Rounds 0..2, then the block again after a resume (0..1): the second try counts. */
Test(run_folder, aqlm_rounds_and_codebooks)
{
    char dir[128], path[256];
    ts_mkdtemp(dir, sizeof dir);
    const char *lines[] = { AQLM_START,
        "{\"event\":\"round\",\"name\":\"model.layers.0.self_attn.q_proj\",\"round\":0,\"loss\":9}",
        "{\"event\":\"round\",\"name\":\"model.layers.0.self_attn.q_proj\",\"round\":1,\"loss\":8}",
        "{\"event\":\"round\",\"name\":\"model.layers.0.self_attn.q_proj\",\"round\":2,\"loss\":7}",
        "{\"event\":\"round\",\"name\":\"model.layers.0.self_attn.q_proj\",\"round\":0,\"loss\":0.5}",
        "{\"event\":\"round\",\"name\":\"model.layers.0.self_attn.q_proj\",\"round\":1,\"loss\":0.25}",
        Q0_LAYER };
    write_log(dir, lines, sizeof lines / sizeof lines[0]);
    float codewords[2 * 4 * 2], diag[64];
    int32_t usage[2 * 4] = { 5, 0, 3, -1, 1, 1, 1, 1 };
    for (int i = 0; i < 16; i++) codewords[i] = (float)i * 0.5f;
    for (int i = 0; i < 64; i++) diag[i] = 1.0f + (float)i;
    qn_st_entry t[] = {
        { "model.layers.0.self_attn.q_proj.codebooks", QN_DTYPE_F32, 3, { 2, 4, 2 }, codewords },
        { "model.layers.0.self_attn.q_proj.codebook_usage", QN_DTYPE_I32, 2, { 2, 4 }, usage },
        { "model.layers.0.self_attn.q_proj.hessian_diag", QN_DTYPE_F32, 1, { 64 }, diag } };
    snprintf(path, sizeof path, "%s/stats.safetensors", dir);
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, t, 3, NULL, &err), QN_OK, "%s", err.msg);
    qn_run_folder *run = open_run(dir);
    const qn_run_info *in = qn_run_get_info(run);
    cr_expect_str_eq(in->method_label, "AQLM 2x2 g2");
    cr_expect(!in->finished && fabs(in->bits - 3.5) < 1e-12, "an unfinished run's bits are its layers'");
    cr_expect(in->has_rounds && in->has_codebooks && in->has_hessian && !in->has_model && !in->has_outlier_masks);
    cr_assert_eq(in->n_layers, 1);
    cr_assert_eq(in->layers[0].n_rounds, 2);
    cr_expect(in->layers[0].round_loss[0] == 0.5 && in->layers[0].round_loss[1] == 0.25);
    const float *cw;
    const uint32_t *u;
    size_t M, K, g;
    cr_assert_eq(qn_run_codebooks(run, "0.q", &cw, &u, &M, &K, &g, &err), QN_OK, "%s", err.msg);
    cr_expect(M == 2 && K == 4 && g == 2);
    cr_expect_eq(memcmp(cw, codewords, sizeof codewords), 0);
    cr_expect(u[0] == 5 && u[1] == 0 && u[3] == 0 && u[7] == 1, "usage as counts, negatives as 0");
    float *W = NULL;
    size_t rows, cols;
    cr_expect_eq(qn_run_weights(run, "0.q", false, &W, &rows, &cols, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "config.json") && strstr(err.msg, "missing"), "%s", err.msg);
    const uint8_t *mask;
    cr_expect_eq(qn_run_outlier_mask(run, "0.q", &mask, &rows, &cols, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "SpQR"), "%s", err.msg);
    qn_run_close(run);
    ts_rmtree(dir);
}

static void expect_open_fails(const char *dir, qn_status want, const char *file, const char *words)
{
    qn_run_folder *run = NULL;
    qn_err err = { 0 };
    cr_expect_eq(qn_run_open(&run, dir, &err), want, "%s: expected %s, got '%s'", dir, qn_status_name(want), err.msg);
    cr_expect(run == NULL);
    cr_expect(strstr(err.msg, file) && strstr(err.msg, words), "expected '%s' and '%s' in: %s", file, words, err.msg);
}

Test(run_folder, broken_folders_name_the_file)
{
    char dir[128], sub[200], path[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/none", dir);
    expect_open_fails(sub, QN_ERR_IO, sub, "no such directory");
    expect_open_fails(dir, QN_ERR_IO, "run.jsonl", "missing");
    const char *torn_middle[] = { AQLM_START, "{\"event\":", Q0_LAYER };
    write_log(dir, torn_middle, 3);
    expect_open_fails(dir, QN_ERR_FORMAT, "run.jsonl", "line 2");
    const char *no_start[] = { Q0_LAYER };
    write_log(dir, no_start, 1);
    expect_open_fails(dir, QN_ERR_FORMAT, "run.jsonl", "no start event");
    const char *bad_layer[] = { AQLM_START,
        "{\"event\":\"layer\",\"name\":\"model.layers.0.attn.qq\",\"block\":0,\"d_out\":4,\"d_in\":4}" };
    write_log(dir, bad_layer, 2);
    expect_open_fails(dir, QN_ERR_FORMAT, "run.jsonl", "event 2");
    const char *bad_size[] = { AQLM_START,
        "{\"event\":\"layer\",\"name\":\"model.layers.0.self_attn.q_proj\",\"block\":0,\"d_out\":-4,\"d_in\":4}" };
    write_log(dir, bad_size, 2);
    expect_open_fails(dir, QN_ERR_FORMAT, "run.jsonl", "d_out");
    const char *good[] = { AQLM_START, Q0_LAYER };
    write_log(dir, good, 2);
    snprintf(path, sizeof path, "%s/config.json", dir);
    ts_write_file(path, "{\"quantization_config\": ", 24);
    expect_open_fails(dir, QN_ERR_FORMAT, "config.json", "");
    unlink(path);
    snprintf(path, sizeof path, "%s/stats.safetensors", dir);
    ts_write_file(path, "\x10\0\0\0\0\0\0\0{}", 10);
    expect_open_fails(dir, QN_ERR_FORMAT, "stats.safetensors", "");
    /* a statistic of the wrong shape: the folder opens, the accessor refuses */
    float diag[32] = { 0 };
    qn_st_entry t = { "model.layers.0.self_attn.q_proj.hessian_diag", QN_DTYPE_F32, 1, { 32 }, diag };
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, &t, 1, NULL, &err), QN_OK, "%s", err.msg);
    qn_run_folder *run = open_run(dir);
    const float *h;
    size_t n;
    cr_expect_eq(qn_run_hessian_diag(run, "0.q_proj", &h, &n, &err), QN_ERR_SHAPE);
    cr_expect(strstr(err.msg, "stats.safetensors") && strstr(err.msg, "hessian_diag") && strstr(err.msg, "[32]") &&
                  strstr(err.msg, "[64]"), "%s", err.msg);
    qn_run_close(run);
    ts_rmtree(dir);
}
