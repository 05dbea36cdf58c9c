/* test_hardening.c: one test per defect found by fuzzing and fault tests
   (issue 14): non-finite activations, concurrent writers, resume keeping the
   statistics and the whole run's totals, truncated mappings, non-UTF-8 paths,
   misaligned packed tensors, and the wording of three messages. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/map_guard.h"
#include "engine/run_folder.h"
#include "engine/run_lock.h"
#include "engine/runlog.h"
#include "engine/safetensors.h"
#include "engine/sampler.h"
#include "support.h"

static char g_tmp[128];

static void setup(void) { ts_mkdtemp(g_tmp, sizeof g_tmp); }
static void teardown(void) { ts_rmtree(g_tmp); }

static const char *in_tmp(const char *name) { return ts_join(g_tmp, name); }

static void fill(void *ctx, qn_st_entry *e, float *copy, size_t numel)
{
    (void)e;
    for (size_t k = 0; k < numel; k++) copy[k] = *(const float *)ctx;
}

/* A copy of the default model in dir whose tensor `name` has every element set to value. */
static void model_with_constant(const char *dir, const char *name, float value)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", TS_STORIES_HF, dir);
    cr_assert_eq(system(cmd), 0);
    ts_st_rewrite(TS_STORIES_HF "/model.safetensors", ts_join(dir, "model.safetensors"), name, fill, &value);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

TestSuite(hardening, .init = setup, .fini = teardown, .timeout = 300);

/* Defect 1: huge but finite weights make NaN logits; generate and ppl stop
   naming the first non-finite layer output instead of crashing or printing nan. */
Test(hardening, nonfinite_logits_stop_with_the_layer)
{
    const char *dir = in_tmp("huge");
    model_with_constant(dir, "model.layers.0.input_layernorm.weight", 3e38f);
    const char *gen[] = { "generate", dir, "--prompt", "Once upon", "-n", "8", "--temp", "0.8", "--top-p", "0.9",
                          NULL };
    ts_run_result r = ts_run_quench(gen);
    cr_expect_eq(r.status, 1, "generate: exit %d, stderr %s", r.status, r.err);
    cr_expect(strstr(r.err, "layer 0 attention output is NaN"), "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    ts_run_free(&r);
    const char *ppl[] = { "ppl", dir, "--text", ts_shared("text/tinystories-valid-head.txt"), "--ctx", "64",
                          "--chunks", "1", "--json", NULL };
    r = ts_run_quench(ppl);
    cr_expect_eq(r.status, 1, "ppl: exit %d, stdout %s", r.status, r.out);
    cr_expect(strstr(r.err, "non-finite activations"), "%s", r.err);
    cr_expect(!strstr(r.out, "nan"), "%s", r.out);
    ts_run_free(&r);
}

/* Defect 1, the sampler itself: NaN logits never index an empty nucleus. */
Test(hardening, sampler_survives_nan_logits)
{
    qn_sampler s;
    cr_assert_eq(qn_sampler_init(&s, 16, 0.8f, 0.9f, 7), 0);
    float logits[16];
    for (int i = 0; i < 16; i++) logits[i] = NAN;
    int id = qn_sampler_next(&s, logits);
    cr_expect(id >= 0 && id < 16, "token %d", id);
    qn_sampler_done(&s);
}

/* Runs `quench quantize` of the default model with RTN at wbits into out, plus extra arguments. */
static ts_run_result quantize_rtn(const char *out, const char *wbits, const char *extra)
{
    const char *args[] = { "quantize", TS_STORIES_HF, "--method", "rtn", "--wbits", wbits, "--calib",
                           ts_shared("text/tinystories-valid-head.txt"), "--nsamples", "4", "--seqlen", "32",
                           "--out", out, extra, NULL };
    return ts_run_quench(args);
}

/* Defect 2: a second writer of a folder another process holds is refused, and the folder is left alone. */
Test(hardening, second_writer_is_refused)
{
    const char *dir = in_tmp("run");
    ts_run_result r = quantize_rtn(dir, "4", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    qn_run_lock held;
    qn_err err = {0};
    cr_assert_eq(qn_run_lock_take(&held, dir, &err), QN_OK, "%s", err.msg);
    qn_run_lock again;
    cr_expect_eq(qn_run_lock_take(&again, dir, &err), QN_ERR_IO);
    cr_expect(strstr(err.msg, "another quench process is writing"), "%s", err.msg);
    r = quantize_rtn(dir, "2", "--force");
    cr_expect_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "another quench process is writing"), "%s", r.err);
    ts_run_free(&r);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(cfg, "quantization_config"), "bits")), 4);
    json_decref(cfg);
    qn_run_lock_release(&held);
    r = quantize_rtn(dir, "2", "--force");
    cr_expect_eq(r.status, 0, "once released: %s", r.err);
    ts_run_free(&r);
}

/* Defect 2: a folder whose config says one thing and whose tensors another is refused by inspect too. */
Test(hardening, inspect_refuses_mixed_folder)
{
    const char *a = in_tmp("w4"), *b = in_tmp("w2"), *mix = in_tmp("mix");
    ts_run_result r = quantize_rtn(a, "4", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    r = quantize_rtn(b, "2", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ts_run_free(&r);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir %s && cp %s/config.json %s/tokenizer*.json %s/ && cp %s/model.safetensors %s/",
             mix, a, a, mix, b, mix);
    cr_assert_eq(system(cmd), 0);
    const char *args[] = { "inspect", mix, NULL };
    r = ts_run_quench(args);
    cr_expect_eq(r.status, 1, "exit %d: %s", r.status, r.out);
    cr_expect(strstr(r.err, "model.safetensors: tensor 'model.layers.0."), "%s", r.err);
    /* defect 9: the file is named once, not after its folder again */
    char twice[1200];
    snprintf(twice, sizeof twice, "%s: %s/", mix, mix);
    cr_expect(!strstr(r.err, twice), "%s", r.err);
    ts_run_free(&r);
}

/* Defect 6: a mapped file truncated under a reader: one message naming it, exit 1, not a silent SIGBUS. */
Test(hardening, truncated_mapping_is_reported)
{
    const char *path = in_tmp("mapped.bin"), *log = in_tmp("stderr.txt");
    static char page[3 * 4096];
    memset(page, 7, sizeof page);
    ts_write_file(path, page, sizeof page);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr)) _exit(3);
        qn_mapping m;
        qn_err err = {0};
        if (qn_file_map(&m, path, &err)) _exit(4);
        if (truncate(path, 0) != 0) _exit(5);
        volatile unsigned char sum = m.data[2 * 4096 + 5];   /* past the end of the file now: SIGBUS */
        (void)sum;
        _exit(6);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "child status %#x", st);
    char *text = NULL;
    size_t n;
    qn_err err = {0};
    cr_assert_eq(qn_file_read_all(log, &text, &n, &err), QN_OK);
    cr_expect(strstr(text, path) && strstr(text, "truncated or replaced while quench was reading it"), "%s", text);
    free(text);
}

/* Defect 6: an in-place overwrite of a mapped file is caught before a long job reads it. */
Test(hardening, overwritten_mapping_is_refused)
{
    const char *path = in_tmp("model.bin");
    ts_write_file(path, "abcdefgh", 8);
    qn_mapping m;
    qn_err err = {0};
    cr_assert_eq(qn_file_map(&m, path, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(qn_map_guard_check(&err), QN_OK, "%s", err.msg);
    FILE *fp = fopen(path, "r+b");
    fputs("ABCD", fp);
    fclose(fp);
    struct timespec later[2] = { { 0, UTIME_OMIT }, { time(NULL) + 5, 0 } };
    utimensat(AT_FDCWD, path, later, 0);
    cr_expect_eq(qn_map_guard_check(&err), QN_ERR_IO);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "modified on disk"), "%s", err.msg);
    qn_file_unmap(&m);
    cr_expect_eq(qn_map_guard_check(&err), QN_OK, "an unmapped file is not watched: %s", err.msg);
}

/* Defect 7: paths that are not UTF-8 are escaped in JSON output, and refused clearly where they must round-trip. */
Test(hardening, non_utf8_paths)
{
    json_t *j = qn_json_text("a\xff" "b\xc3");
    cr_expect_str_eq(json_string_value(j), "a\\xFFb\\xC3");
    json_decref(j);
    char dir[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/m\xff\xfeodel", g_tmp);
    snprintf(cmd, sizeof cmd, "cp -r %s '%s'", TS_STORIES_HF, dir);
    cr_assert_eq(system(cmd), 0);
    const char *inspect[] = { "inspect", "--json", dir, NULL };
    ts_run_result r = ts_run_quench(inspect);
    cr_expect_eq(r.status, 0, "%s", r.err);
    json_t *o = json_loads(r.out, 0, NULL);
    cr_expect(o && strstr(json_string_value(json_object_get(o, "path")), "m\\xFF\\xFEodel"), "%s", r.out);
    json_decref(o);
    ts_run_free(&r);
    const char *out = in_tmp("q");
    const char *quant[] = { "quantize", dir, "--method", "rtn", "--calib", ts_shared("text/tinystories-valid-head.txt"),
                            "--out", out, NULL };
    r = ts_run_quench(quant);
    cr_expect(r.status == 1 || r.status == 2, "exit %d", r.status);
    cr_expect(strstr(r.err, "the model path is not UTF-8"), "%s", r.err);
    cr_expect(!strstr(r.err, "out of memory") && !strstr(r.err, "serialise"), "%s", r.err);
    cr_expect(access(out, F_OK) != 0, "an output folder was made");
    ts_run_free(&r);
}

/* Defect 8: a file whose offsets are not multiples of the element size hands out aligned tensors, same values. */
Test(hardening, misaligned_tensors_are_aligned)
{
    const char *path = in_tmp("odd.safetensors");
    uint8_t pad[3] = { 1, 2, 3 };
    int32_t row_ptr[4] = { 0, 2, 2, 5 };
    uint16_t cols[5] = { 1, 7, 3, 4, 65535 };
    double loss[2] = { 0.5, 0.25 };
    qn_st_entry e[] = {
        { .name = "pad", .dtype = QN_DTYPE_U8, .ndim = 1, .shape = { 3 }, .data = pad },
        { .name = "x.outlier_row_ptr", .dtype = QN_DTYPE_I32, .ndim = 1, .shape = { 4 }, .data = row_ptr },
        { .name = "x.outlier_col_idx", .dtype = QN_DTYPE_U16, .ndim = 1, .shape = { 5 }, .data = cols },
        { .name = "x.loss_history", .dtype = QN_DTYPE_F64, .ndim = 1, .shape = { 2 }, .data = loss },
    };
    qn_err err = {0};
    cr_assert_eq(qn_st_write(path, e, 4, NULL, &err), QN_OK, "%s", err.msg);
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    for (size_t i = 0; i < 4; i++) {
        const qn_st_tensor *t = qn_st_find(f, e[i].name);
        cr_assert(t);
        cr_expect_eq((uintptr_t)t->data % qn_dtype_size(t->dtype), 0, "%s misaligned", t->name);
        cr_expect_eq(memcmp(t->data, e[i].data, t->nbytes), 0, "%s changed", t->name);
    }
    cr_expect_eq(((const int32_t *)qn_st_find(f, "x.outlier_row_ptr")->data)[3], 5);
    qn_st_close(f);
}

/* Defect 9: messages say why: a run.jsonl line that is not an object says what it is; a byte-order mark is skipped. */
Test(hardening, messages_say_why)
{
    const char *log = in_tmp("run.jsonl");
    ts_write_file(log, "{\"event\":\"start\"}\n[1, 2]\n{}\n", 27);
    json_t *events = NULL;
    qn_err err = {0};
    cr_expect_eq(qn_runlog_read(log, &events, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "line 2 is not a JSON object: an array, not an object"), "%s", err.msg);
    ts_write_file(log, "{\"event\":\"start\"}\n{\"a\" 1}\n{}\n", 28);
    cr_expect_eq(qn_runlog_read(log, &events, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "line 2 is not a JSON object: column "), "%s", err.msg);
    const char *dir = in_tmp("bom");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -r %s %s && printf '\\357\\273\\277' | cat - %s/config.json > %s/config.json && "
             "printf '\\357\\273\\277' | cat - %s/tokenizer.json > %s/tokenizer.json", TS_STORIES_HF, dir,
             TS_STORIES_HF, dir, TS_STORIES_HF, dir);
    cr_assert_eq(system(cmd), 0);
    const char *args[] = { "generate", dir, "--prompt", "Once", "-n", "4", "--temp", "0", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_expect_eq(r.status, 0, "a byte-order mark is refused: %s", r.err);
    ts_run_free(&r);
}

/* Found by the disk-full fault test: a run.jsonl line torn by a full disk is dropped before a resume appends. */
Test(hardening, runlog_drops_a_torn_line_before_appending)
{
    const char *path = in_tmp("torn.jsonl");
    ts_write_file(path, "{\"event\":\"start\"}\n{\"event\":\"lay", 32);
    qn_runlog *log = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_runlog_open(&log, path, true, &err), QN_OK, "%s", err.msg);
    json_t *ev = json_pack("{s:s}", "event", "resume");
    cr_assert_eq(qn_runlog_write(log, ev, &err), QN_OK, "%s", err.msg);
    json_decref(ev);
    qn_runlog_close(log);
    json_t *events = NULL;
    cr_assert_eq(qn_runlog_read(path, &events, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(json_array_size(events), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(events, 1), "event")), "resume");
    json_decref(events);
}

/* Found by fuzz_run_folder: a log with a start event and no layer yet opened with qsort(NULL, 0) (UBSan). */
Test(hardening, run_folder_without_layers_opens)
{
    const char *dir = in_tmp("started");
    cr_assert_eq(mkdir(dir, 0777), 0);
    const char ev[] = "{\"event\":\"start\",\"model\":\"m\",\"method\":\"rtn\",\"options\":{}}\n";
    ts_write_file(ts_join(dir, "run.jsonl"), ev, strlen(ev));
    qn_run_folder *run = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_run_open(&run, dir, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(qn_run_get_info(run)->n_layers, 0);
    cr_expect_eq(qn_run_worst_layer(run), (size_t)-1);
    qn_run_close(run);
}
