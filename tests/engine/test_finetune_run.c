/* test_finetune_run.c: `quantize --finetune` on stories260K with a small
   calibration set: every block logs its MSE before and after tuning (never
   worse), the tuned norms reach the output model, an interrupted run resumes
   to the same bytes, and fine-tuning is refused for methods without codebooks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/finetune.h"
#include "engine/quantize.h"
#include "engine/runlog.h"
#include "engine/safetensors.h"
#include "support.h"

typedef struct { atomic_bool cancel; int stop_after_block; int tuned; } watch_ctx;

static void watch(void *ctx, const qn_event *ev)
{
    watch_ctx *c = ctx;
    if (ev->kind == QN_EV_BLOCK_TUNED) {
        const qn_finetune_result *r = ev->payload;
        cr_expect(r && r->rel_after <= r->rel_before, "block %d tuned to a worse error", ev->layer);
        c->tuned++;
    }
    if (c->stop_after_block >= 0 && ev->kind == QN_EV_PROGRESS && ev->stage && strcmp(ev->stage, "quantize") == 0 &&
        ev->done == c->stop_after_block + 1)
        atomic_store(&c->cancel, true);
}

static qn_quantize_job tuned_job(const char *out)
{
    qn_quantize_job job = ts_small_job("aqlm-small-2x6", out);
    job.config.finetune_epochs = 2;
    job.config.finetune_lr = 1e-3;
    job.config.finetune_batch = 4;
    return job;
}

/* Continues the run in dir as `quench quantize --resume` does; the knobs come back from run.jsonl. */
static void resume(const char *dir)
{
    static char model[4096], calib[4096];
    qn_quantize_job job;
    qn_err err = {0};
    cr_assert_eq(qn_quantize_job_from_log(dir, &job, model, sizeof model, calib, sizeof calib, &err), QN_OK, "%s", err.msg);
    cr_expect(job.config.finetune_epochs == 2 && job.config.finetune_batch == 4, "fine-tuning knobs lost on resume");
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
}

static bool same_model(const char *a, const char *b)
{
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    return ts_files_equal(pa, pb);
}

Test(finetune_run, logs_losses_keeps_norms_and_resumes_exactly, .timeout = 600)
{
    char dir[128], a[256], b[256], path[300];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    qn_err err = {0};
    qn_quantize_job job = tuned_job(a);
    watch_ctx w = { .stop_after_block = -1 };
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ watch, &w }, NULL, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(w.tuned, 5);
    /* run.jsonl: the knobs in the start event, one finetune event per block */
    snprintf(path, sizeof path, "%s/run.jsonl", a);
    json_t *events = NULL;
    cr_assert_eq(qn_runlog_read(path, &events, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(json_array_get(events, 0), "finetune"), "max_epochs")), 2);
    int n_ft = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "event")), "finetune") != 0) continue;
        double before = json_number_value(json_object_get(ev, "relative_before"));
        double after = json_number_value(json_object_get(ev, "relative_after"));
        cr_expect(after <= before && after > 0, "block %d: %g -> %g", n_ft, before, after);
        cr_expect_eq(json_integer_value(json_object_get(ev, "block")), n_ft);
        n_ft++;
    }
    cr_expect_eq(n_ft, 5);
    json_decref(events);
    /* the output carries tuned norms, not the source's */
    qn_st_file *src = NULL, *out = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", a);
    cr_assert_eq(qn_st_open(&out, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_st_open(&src, TS_STORIES_HF "/model.safetensors", &err), QN_OK, "%s", err.msg);
    const qn_st_tensor *tn = qn_st_find(out, "model.layers.0.input_layernorm.weight");
    const qn_st_tensor *sn = qn_st_find(src, "model.layers.0.input_layernorm.weight");
    cr_assert(tn && sn && tn->nbytes == sn->nbytes);
    cr_expect(memcmp(tn->data, sn->data, tn->nbytes) != 0, "the norm was not tuned");
    qn_st_close(src);
    qn_st_close(out);
    /* cancel after block 1, resume: same bytes */
    job.out_dir = b;
    watch_ctx c = { .stop_after_block = 1 };
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ watch, &c }, &c.cancel, &err), QN_ERR_CANCELLED, "%s", err.msg);
    resume(b);
    cr_expect(same_model(a, b), "resumed fine-tuned model differs from the uninterrupted one");
    ts_rmtree(dir);
}

/* Refused before anything is written: the output folder is never created. */
Test(finetune_run, refused_without_codebooks)
{
    const char *out = "/tmp/quench-test-finetune-gptq-never-created";
    qn_quantize_job job = ts_small_job("gptq-4", out);
    job.config.finetune_epochs = 2;
    qn_err err = {0};
    cr_expect_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "--finetune"), "%s", err.msg);
    cr_expect(!qn_path_exists(out), "a refused job created its folder");
}
