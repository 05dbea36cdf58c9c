/* test_resume.c: a resumed run is the uninterrupted run (issue 14 defects 3-5):
   the statistics of the blocks done before the interruption survive, the end
   event counts the whole run, and a run that died during its final writes, or
   finished, is not quantized again. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/fileio.h"
#include "engine/run_folder.h"
#include "engine/runlog.h"
#include "support.h"

static char g_dir[128];
static void setup(void) { ts_mkdtemp(g_dir, sizeof g_dir); }
static void teardown(void) { ts_rmtree(g_dir); }

/* g_dir/a, or g_dir/a/b */
static const char *in_dir(const char *a, const char *b)
{
    const char *run = ts_join(g_dir, a);
    return b ? ts_join(run, b) : run;
}

typedef struct {
    atomic_bool cancel;
    int         stop_after_block;   /* -1: never */
    const char *block_at_write;     /* a file created when the final writes start, or NULL */
    int         layers;             /* LAYER_DONE events seen */
    bool        said_complete;
} watch_ctx;

static void watch(void *ctx, const qn_event *ev)
{
    watch_ctx *c = ctx;
    if (ev->kind == QN_EV_LAYER_DONE) c->layers++;
    if (ev->kind == QN_EV_PROGRESS && ev->stage && strcmp(ev->stage, "quantize") == 0 &&
        ev->done == c->stop_after_block + 1)
        atomic_store(&c->cancel, true);
    if (ev->kind == QN_EV_STAGE && ev->stage && strcmp(ev->stage, "write") == 0 && c->block_at_write)
        ts_write_file(c->block_at_write, "x", 1);
    if (ev->kind == QN_EV_WARNING && ev->text && strstr(ev->text, "already complete")) c->said_complete = true;
}

static qn_status resume(const char *dir, watch_ctx *c, qn_err *err)
{
    qn_quantize_job job;
    static char model[4096], calib[4096];
    cr_assert_eq(qn_quantize_job_from_log(dir, &job, model, sizeof model, calib, sizeof calib, err), QN_OK, "%s",
                 err->msg);
    return qn_quantize_run(&job, (qn_event_sink){ watch, c }, &c->cancel, err);
}

/* The end event of the run.jsonl of g_dir/name. */
static json_t *end_event(const char *name)
{
    json_t *events = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_runlog_read(in_dir(name, "run.jsonl"), &events, &err), QN_OK, "%s", err.msg);
    json_t *last = json_incref(json_array_get(events, json_array_size(events) - 1));
    json_decref(events);
    cr_assert_str_eq(json_string_value(json_object_get(last, "event")), "end");
    return last;
}

static void expect_same_outputs(const char *a, const char *b)
{
    cr_expect(ts_files_equal(in_dir(a, "model.safetensors"), in_dir(b, "model.safetensors")), "models differ");
    cr_expect(ts_files_equal(in_dir(a, "stats.safetensors"), in_dir(b, "stats.safetensors")), "stats differ");
    cr_expect(!qn_path_exists(in_dir(b, "blocks")), "block checkpoints left behind");
}

TestSuite(resume, .init = setup, .fini = teardown, .timeout = 300);

/* Defects 3 and 4: cancel after block 1, resume: stats byte-identical, Hessians readable, whole-run totals. */
Test(resume, keeps_statistics_and_totals)
{
    qn_err err = {0};
    qn_quantize_job job = ts_small_job("spqr-3.6", in_dir("whole", NULL));
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
    char out[512];
    snprintf(out, sizeof out, "%s", in_dir("resumed", NULL));
    job.out_dir = out;
    watch_ctx c = { .stop_after_block = 1 };
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){ watch, &c }, &c.cancel, &err), QN_ERR_CANCELLED);
    cr_expect(qn_path_exists(in_dir("resumed", "blocks/stats-0000.safetensors")), "no statistics checkpoint");
    watch_ctx r = { .stop_after_block = -1 };
    cr_assert_eq(resume(job.out_dir, &r, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(r.layers, 35 - 2 * 7, "%d layers quantized again", r.layers);
    expect_same_outputs("whole", "resumed");
    json_t *ea = end_event("whole"), *eb = end_event("resumed");
    double bits_a = json_real_value(json_object_get(ea, "bits")), bits_b = json_real_value(json_object_get(eb, "bits"));
    cr_expect(fabs(bits_a - bits_b) < 1e-9 * bits_a, "end bits %.9f after resume, %.9f uninterrupted", bits_b, bits_a);
    cr_expect(json_real_value(json_object_get(eb, "seconds")) > json_real_value(json_object_get(eb, "time")),
              "the seconds of the end event do not include the interrupted session");
    json_decref(ea);
    json_decref(eb);
    qn_run_folder *run = NULL;
    cr_assert_eq(qn_run_open(&run, job.out_dir, &err), QN_OK, "%s", err.msg);
    const float *diag;
    size_t n;
    cr_expect_eq(qn_run_hessian_diag(run, "0.q", &diag, &n, &err), QN_OK, "%s", err.msg);
    qn_run_close(run);
}

/* Defect 5: the final writes fail (hf-spqr cannot be made): a resume writes
   them from the checkpoints without quantizing; once complete, a resume says so
   and touches nothing. */
Test(resume, finishes_only_what_is_missing)
{
    qn_err err = {0};
    qn_quantize_job job = ts_small_job("spqr-3.6", in_dir("whole", NULL));
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
    char out[512], hf[512];
    snprintf(out, sizeof out, "%s", in_dir("broken", NULL));
    snprintf(hf, sizeof hf, "%s", in_dir("broken", "hf-spqr"));
    job.out_dir = out;
    watch_ctx c = { .stop_after_block = -1, .block_at_write = hf };
    cr_assert_neq(qn_quantize_run(&job, (qn_event_sink){ watch, &c }, &c.cancel, &err), QN_OK);
    cr_expect(strstr(err.msg, "hf-spqr"), "%s", err.msg);
    remove(c.block_at_write);
    watch_ctx r = { .stop_after_block = -1 };
    cr_assert_eq(resume(job.out_dir, &r, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(r.layers, 0, "%d layers quantized again", r.layers);
    cr_expect(qn_path_exists(in_dir("broken", "hf-spqr/config.json")), "hf-spqr not written");
    expect_same_outputs("whole", "broken");
    struct stat before, after;
    cr_assert_eq(stat(in_dir("broken", "model.safetensors"), &before), 0);
    watch_ctx again = { .stop_after_block = -1 };
    cr_assert_eq(resume(job.out_dir, &again, &err), QN_OK, "%s", err.msg);
    cr_expect(again.said_complete, "no 'already complete'");
    cr_expect_eq(again.layers, 0);
    cr_assert_eq(stat(in_dir("broken", "model.safetensors"), &after), 0);
    cr_expect(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec,
              "a complete run's model was rewritten");
}
