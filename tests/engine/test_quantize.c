/* test_quantize.c: the whole-model pipeline on stories260K with a small
   calibration set: the output loads back and runs, an interrupted run resumes
   to the same bytes as an uninterrupted one, and bad jobs fail cleanly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calib.h"
#include "engine/fileio.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "engine/runlog.h"
#include "support.h"

typedef struct { int layers; } count_ctx;
static void count_layers(void *ctx, const qn_event *ev)
{
    if (ev->kind == QN_EV_LAYER_DONE) ((count_ctx *)ctx)->layers++;
}

Test(quantize, rtn_output_loads_and_runs, .timeout = 240)
{
    char dir[128], out[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/rtn4", dir);
    qn_quantize_job job = ts_small_job("rtn-4", out);
    qn_err err = {0};
    count_ctx c = {0};
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ count_layers, &c }, NULL, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(c.layers, 35);
    double base = ts_folder_ppl(TS_STORIES_HF, 20), q = ts_folder_ppl(out, 20);
    cr_expect(q > base && q < base * 1.5, "rtn-4 ppl %.4f vs fp32 %.4f", q, base);
    char path[300];
    snprintf(path, sizeof path, "%s/blocks", out);
    cr_expect(!qn_path_exists(path), "block checkpoints left behind");
    snprintf(path, sizeof path, "%s/run.jsonl", out);
    json_t *events = NULL;
    cr_assert_eq(qn_runlog_read(path, &events, &err), QN_OK);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "event")), "start");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(events, json_array_size(events) - 1), "event")), "end");
    json_decref(events);
    /* an existing folder is refused without --force */
    cr_expect_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "already exists"), "%s", err.msg);
    ts_rmtree(dir);
}

typedef struct { atomic_bool cancel; int stop_after_block; } cancel_ctx;
static void cancel_after(void *ctx, const qn_event *ev)
{
    cancel_ctx *c = ctx;
    if (ev->kind == QN_EV_PROGRESS && ev->stage && strcmp(ev->stage, "quantize") == 0 &&
        ev->done == c->stop_after_block + 1)
        atomic_store(&c->cancel, true);
}

/* Cancel after block 1, resume: model.safetensors equals an uninterrupted run's, byte for byte. */
Test(quantize, resume_gives_the_uninterrupted_result, .timeout = 300)
{
    char dir[128], a[256], b[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    qn_err err = {0};
    qn_quantize_job job = ts_small_job("gptq-4", a);
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
    job.out_dir = b;
    cancel_ctx c = { .stop_after_block = 1 };
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ cancel_after, &c }, &c.cancel, &err), QN_ERR_CANCELLED,
                 "%s", err.msg);
    char path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", b);
    cr_expect(!qn_path_exists(path), "a cancelled run left a model behind");
    snprintf(path, sizeof path, "%s/blocks/block-0001.safetensors", b);
    cr_expect(qn_path_exists(path), "finished blocks were not kept");
    qn_quantize_job resumed;
    char model[4096], calib[4096];
    cr_assert_eq(qn_quantize_job_from_log(b, &resumed, model, sizeof model, calib, sizeof calib, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_quantize_run(&resumed, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    cr_expect(ts_files_equal(pa, pb), "resumed model differs from the uninterrupted one");
    ts_rmtree(dir);
}

Test(quantize, bad_jobs_fail_cleanly)
{
    char dir[128], out[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    qn_err err = {0};
    qn_quantize_job job = ts_small_job("rtn-4", out);
    job.config.nsamples = 100000;   /* more windows than the text has chunks */
    cr_expect_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "tinystories-valid-head.txt") && strstr(err.msg, "nsamples"), "%s", err.msg);
    job = ts_small_job("rtn-4", out);
    job.config.wbits = 12;
    cr_expect_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_ERR_ARG);
    job = ts_small_job("rtn-4", "/nonexistent/dir/q");
    job.resume = true;
    cr_expect_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "nothing to resume"), "%s", err.msg);
    ts_rmtree(dir);
}

Test(quantize, presets_project_bits_for_the_model)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    double bytes;
    /* rtn-8 on rows of 64 and 172: groups of 128 fit 64 as one group; 8 + 32/64 or 8 + 64/172 */
    double bits = qn_quant_projected_bits(&qn_preset_find("rtn-8")->config, m, &bytes);
    cr_expect(bits > 8.3 && bits < 8.5, "rtn-8 projects %.3f bits", bits);
    double spqr = qn_quant_projected_bits(&qn_preset_find("spqr-3.6")->config, m, &bytes);
    cr_expect(spqr > 3.6 && spqr < 5.0, "spqr-3.6 projects %.3f bits on this tiny model", spqr);
    qn_model_close(m);
}
