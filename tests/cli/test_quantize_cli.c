/* test_quantize_cli.c: `quench quantize` through the binary: SIGTERM mid-run
   leaves no half-written model and a readable run.jsonl, and --resume finishes;
   --json names what was written. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/runlog.h"
#include "support.h"

extern char **environ;

Test(quantize_cli, sigterm_then_resume, .timeout = 300)
{
    char dir[128], out[256], path[320];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    const char *bin = getenv("QN_BIN") ? getenv("QN_BIN") : "./quench";
    char *argv[] = { (char *)bin, "quantize", TS_STORIES_HF, "--preset", "gptq-4", "--nsamples", "16", "--seqlen", "64",
                     "--calib", (char *)ts_shared("text/tinystories-valid-head.txt"), "--out", out, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    /* wait for the first finished block, then stop the run */
    snprintf(path, sizeof path, "%s/blocks/block-0000.safetensors", out);
    for (int i = 0; i < 2400 && !qn_path_exists(path); i++) usleep(50000);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    posix_spawn_file_actions_destroy(&fa);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "exit status %d", st);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    cr_expect(!qn_path_exists(path), "SIGTERM left a model.safetensors");
    snprintf(path, sizeof path, "%s/config.json", out);
    cr_expect(!qn_path_exists(path), "SIGTERM left a config.json");
    snprintf(path, sizeof path, "%s/run.jsonl", out);
    json_t *events = NULL;
    qn_err err = {0};
    cr_expect_eq(qn_runlog_read(path, &events, &err), QN_OK, "%s", err.msg);
    json_decref(events);
    const char *args[] = { "quantize", "--resume", out, NULL };
    ts_run_result r = ts_run_quench(args);
    cr_expect_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    const char *ppl[] = { "ppl", out, "--text", ts_shared("text/tinystories-valid-head.txt"), "--ctx", "256",
                          "--chunks", "2", NULL };
    r = ts_run_quench(ppl);
    cr_expect_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    ts_rmtree(dir);
}

/* --json: stdout is JSON Lines only, one object per layer (35 on stories260K),
   then a final object naming the folders written (spqr-3.6 also writes
   hf-spqr) with bits, size and the perplexity asked for; --out's missing
   parent folders are created. */
Test(quantize_cli, json_names_the_folders, .timeout = 120)
{
    char dir[128], out[256], hf[300];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/runs/new/q\"quoted", dir);
    snprintf(hf, sizeof hf, "%s/hf-spqr", out);
    const char *args[] = { "quantize", TS_STORIES_HF, "--preset", "spqr-3.6", "--nsamples", "8", "--seqlen", "64",
                           "--calib", ts_shared("text/tinystories-valid-head.txt"), "--out", out, "--json",
                           "--ppl", ts_shared("text/tinystories-valid-head.txt"), "--ppl-chunks", "2", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n_layers = 0, n_lines = 0;
    for (char *line = r.out, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert(nl, "stdout does not end with a newline: %s", r.out);
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert(o, "a stdout line is not JSON: %.*s", (int)(nl - line), line);
        const char *ev = json_string_value(json_object_get(o, "event"));
        n_layers += ev && strcmp(ev, "layer") == 0;
        n_lines++;
        json_decref(o);
    }
    cr_expect_eq(n_layers, 35, "%zu layer objects", n_layers);
    cr_expect_eq(n_lines, 36, "%zu lines", n_lines);
    cr_expect(strstr(r.err, "wrote "), "the text goes to stderr: %s", r.err);
    json_t *j = ts_last_json(r.out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "event")), "done");
    cr_expect_str_eq(json_string_value(json_object_get(j, "out")), out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "hf_spqr")), hf);
    cr_expect_str_eq(json_string_value(json_object_get(j, "preset")), "spqr-3.6");
    cr_expect(json_number_value(json_object_get(j, "seconds")) > 0);
    double bits = json_number_value(json_object_get(j, "bits"));
    cr_expect(bits > 3.5 && bits < 6, "bits %g", bits);
    cr_expect(json_integer_value(json_object_get(j, "size_bytes")) > 100000);
    double ppl = json_number_value(json_object_get(j, "ppl"));
    cr_expect(ppl > 2 && ppl < 20, "ppl %g", ppl);
    json_decref(j);
    ts_run_free(&r);
    ts_rmtree(dir);
}

Test(quantize_cli, usage_errors)
{
    const char *a1[] = { "quantize", TS_STORIES_HF, "--preset", "nope", "--calib", "x", "--out", "/tmp/x", NULL };
    ts_run_result r = ts_run_quench(a1);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "unknown preset 'nope'"), "%s", r.err);
    ts_run_free(&r);
    const char *a3[] = { "quantize", TS_STORIES_HF, "--preset", "spqr3.6", "--calib", "x", "--out", "/tmp/x", NULL };
    r = ts_run_quench(a3);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "did you mean 'spqr-3.6'?"), "%s", r.err);
    ts_run_free(&r);
    const char *a2[] = { "quantize", TS_STORIES_HF, "--method", "spqr", "--qq-scale-bits", "99", "--calib", "x",
                         "--out", "/tmp/x", NULL };
    r = ts_run_quench(a2);
    cr_expect_eq(r.status, 2, "%s", r.err);
    ts_run_free(&r);
}
