/* support.c: test helpers (see support.h). */

#include "support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <ftw.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/model.h"
#include "engine/ppl.h"

extern char **environ;

const char *ts_shared(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    const char *root = getenv("QN_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = bufs[slot++ % 8];
    snprintf(b, 4096, "%s/%s", root, rel);
    return b;
}

void ts_mkdtemp(char *out, size_t cap)
{
    snprintf(out, cap, "/tmp/quench-test-XXXXXX");
    if (!mkdtemp(out)) { perror("mkdtemp"); abort(); }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

void ts_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void ts_write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); abort(); }
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
}

void ts_st_rewrite(const char *src, const char *dst, const char *name,
                   void (*edit)(void *ctx, qn_st_entry *e, float *copy, size_t numel), void *ctx)
{
    qn_st_file *f = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_st_open(&f, src, &err), QN_OK, "%s", err.msg);
    size_t n = qn_st_count(f);
    qn_st_entry *e = calloc(n, sizeof *e);
    float *copy = NULL;
    for (size_t i = 0; i < n; i++) {
        const qn_st_tensor *t = qn_st_at(f, i);
        e[i] = (qn_st_entry){ .name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data };
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        if (strcmp(t->name, name) == 0) {
            copy = malloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            e[i].data = copy;
            edit(ctx, &e[i], copy, t->nbytes / sizeof *copy);
        }
    }
    cr_assert(copy, "%s: no tensor %s", src, name);
    cr_assert_eq(qn_st_write(dst, e, n, NULL, &err), QN_OK, "%s", err.msg);
    free(copy);
    free(e);
    qn_st_close(f);
}

const char *ts_join(const char *dir, const char *name)
{
    static char bufs[8][1024];
    static int slot;
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

void ts_copy_prefix(const char *src, const char *dst, size_t keep)
{
    FILE *in = fopen(src, "rb");
    if (!in) { perror(src); abort(); }
    FILE *out = fopen(dst, "wb");
    if (!out) { perror(dst); abort(); }
    char buf[65536];
    size_t total = 0, n;
    while (total < keep && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (n > keep - total) n = keep - total;
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    return buf;
}

ts_run_result ts_run_quench(const char *const *args)
{
    const char *bin = getenv("QN_BIN");
    if (!bin || !*bin) bin = "./quench";
    char outp[] = "/tmp/quench-out-XXXXXX", errp[] = "/tmp/quench-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, ofd, 1);
    posix_spawn_file_actions_adddup2(&fa, efd, 2);
    size_t n = 0;
    while (args[n]) n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)bin;
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    pid_t pid;
    ts_run_result r = { .status = -1 };
    if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) == 0) {
        int st;
        waitpid(pid, &st, 0);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    r.out = slurp_fd(ofd);
    r.err = slurp_fd(efd);
    close(ofd);
    close(efd);
    unlink(outp);
    unlink(errp);
    return r;
}

void ts_run_free(ts_run_result *r)
{
    free(r->out);
    free(r->err);
}

double ts_max_rel_diff(const float *a, const float *b, size_t n, double floor, size_t *at)
{
    double worst = 0;
    size_t where = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), floor);
        if (!(d <= worst)) { worst = d; where = i; }
    }
    if (at) *at = where;
    return worst;
}

json_t *ts_layer_reference(json_t *root, const char *method, const char *layer, const char *config)
{
    json_t *results = json_object_get(root, "results"), *e;
    size_t i;
    json_array_foreach(results, i, e) {
        const char *m = json_string_value(json_object_get(e, "method")), *c = json_string_value(json_object_get(e, "config")),
                   *l = json_string_value(json_object_get(e, "layer"));
        if (m && c && strcmp(m, method) == 0 && strcmp(c, config) == 0 && (!layer || (l && strcmp(l, layer) == 0)))
            return e;
    }
    return NULL;
}

double ts_model_ppl(struct qn_model *m, size_t max_chunks)
{
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_err err = {0};
    cr_assert_eq(qn_ppl_tokenize_file(m, ts_shared("text/tinystories-valid-head.txt"), &tokens, &n, &err), QN_OK, "%s",
                 err.msg);
    qn_ppl_opts o = { .protocol = QN_PPL_LLAMACPP, .ctx = 256, .max_chunks = max_chunks };
    qn_ppl_result r;
    cr_assert_eq(qn_ppl_run(m, tokens, n, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    free(tokens);
    return r.ppl;
}

double ts_folder_ppl(const char *dir, size_t max_chunks)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, dir, NULL, &err), QN_OK, "%s", err.msg);
    double ppl = ts_model_ppl(m, max_chunks);
    qn_model_close(m);
    return ppl;
}

qn_quantize_job ts_small_job(const char *preset, const char *out)
{
    qn_quantize_job job = { .model = TS_STORIES_HF, .calib = ts_shared("text/tinystories-valid-head.txt"),
                            .out_dir = out };
    job.config = qn_preset_find(preset)->config;
    job.config.nsamples = 8;
    job.config.seqlen = 64;
    return job;
}

void ts_quantize_small(const char *preset, const char *out)
{
    qn_quantize_job job = ts_small_job(preset, out);
    qn_err err = {0};
    cr_assert_eq(qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err), QN_OK, "%s", err.msg);
}

bool ts_files_equal(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    qn_err err = {0};
    bool same = qn_file_read_all(a, &x, &nx, &err) == QN_OK && qn_file_read_all(b, &y, &ny, &err) == QN_OK &&
                nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

json_t *ts_last_json(const char *out)
{
    const char *end = out + strlen(out);
    while (end > out && end[-1] == '\n') end--;
    const char *start = end;
    while (start > out && start[-1] != '\n') start--;
    json_error_t je;
    json_t *j = json_loadb(start, (size_t)(end - start), 0, &je);
    cr_assert(j, "last line is not JSON (%s): %s", je.text, start);
    return j;
}
