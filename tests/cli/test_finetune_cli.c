/* test_finetune_cli.c: `quench quantize --finetune` through the binary: one
   line per tuned block with its error before and after; bad knobs and methods
   without codebooks are refused with a message naming the option. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/fileio.h"
#include "support.h"

Test(finetune_cli, prints_each_blocks_loss_before_and_after, .timeout = 600)
{
    char dir[128], out[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    const char *args[] = { "quantize", TS_STORIES_HF, "--preset", "aqlm-small-2x6", "--nsamples", "4", "--seqlen", "32",
                           "--calib", ts_shared("text/tinystories-valid-head.txt"), "--out", out, "--finetune",
                           "--finetune-max-epochs", "1", "--finetune-batch-size", "2", "--finetune-lr", "1e-3",
                           "--finetune-relative-mse-tolerance", "0.001", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int lines = 0;
    for (const char *p = r.out; (p = strstr(p, " finetune  rel.mse ")); p++) {
        double before, after;
        cr_assert_eq(sscanf(p, " finetune  rel.mse %lf -> %lf", &before, &after), 2, "%.80s", p);
        cr_expect(after <= before, "%.80s", p);
        lines++;
    }
    cr_expect_eq(lines, 5, "%s", r.out);
    ts_run_free(&r);
    ts_rmtree(dir);
}

/* Refused before anything is written. */
Test(finetune_cli, refuses_bad_knobs_and_methods)
{
    const char *out = "/tmp/quench-test-finetune-cli-never-created";
    const char *calib = ts_shared("text/tinystories-valid-head.txt");
    const char *lr[] = { "quantize", TS_STORIES_HF, "--preset", "aqlm-small-2x6", "--calib", calib, "--out", out,
                         "--finetune-lr", "-1", NULL };
    ts_run_result r = ts_run_quench(lr);
    cr_expect_neq(r.status, 0);
    cr_expect(strstr(r.err, "--finetune-lr"), "%s", r.err);
    ts_run_free(&r);
    const char *gptq[] = { "quantize", TS_STORIES_HF, "--preset", "gptq-4", "--calib", calib, "--out", out,
                           "--finetune", NULL };
    r = ts_run_quench(gptq);
    cr_expect_neq(r.status, 0);
    cr_expect(strstr(r.err, "--finetune") && strstr(r.err, "gptq"), "%s", r.err);
    ts_run_free(&r);
    cr_expect(!qn_path_exists(out), "a refused job created its folder");
}
