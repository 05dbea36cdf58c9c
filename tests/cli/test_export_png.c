/* test_export_png.c: `quench export-png` and `quench show` through the binary.
   One test quantizes stories260K with SpQR (the CLI's own quantize) and checks
   every picture of it: PNG size and text chunks decoded with libpng, the count
   of `--what all`, and the terminal output with and without colour and UTF-8.
   The error cases use a hand-written run.jsonl, which is all they need. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/run_folder.h"
#include "support.h"

typedef struct {
    unsigned w, h;
    char     layer[128], kind[32], model[128], method[64];
} png_facts;

static void text_of(const png_text *text, int n, const char *key, char *dst, size_t cap)
{
    for (int i = 0; i < n; i++)
        if (strcmp(text[i].key, key) == 0) snprintf(dst, cap, "%s", text[i].text);
}

/* Size and quench.* text chunks of a PNG, read whole with libpng's high-level reader. */
static png_facts read_png(const char *path)
{
    png_facts f;
    memset(&f, 0, sizeof f);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s: not written", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) cr_assert_fail("%s: libpng could not decode it", path);
    png_init_io(png, fp);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    f.w = png_get_image_width(png, info);
    f.h = png_get_image_height(png, info);
    cr_expect_eq(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB, "%s", path);
    png_textp text;
    int n = 0;
    png_get_text(png, info, &text, &n);
    text_of(text, n, "quench.layer", f.layer, sizeof f.layer);
    text_of(text, n, "quench.kind", f.kind, sizeof f.kind);
    text_of(text, n, "quench.model", f.model, sizeof f.model);
    text_of(text, n, "quench.method", f.method, sizeof f.method);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return f;
}

static size_t count_png(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: no folder", dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".png")) n++;
    closedir(d);
    return n;
}

static ts_run_result quench(const char *const *args, int want_status)
{
    ts_run_result r = ts_run_quench(args);
    cr_expect_eq(r.status, want_status, "quench %s %s: status %d, stderr: %s", args[0], args[1], r.status, r.err);
    return r;
}

Test(export_png, pictures_of_a_spqr_run, .timeout = 240)
{
    char dir[128], run[200], out[320], all[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(run, sizeof run, "%s/run", dir);
    const char *q[] = { "quantize", TS_STORIES_HF, "--preset", "spqr-3.6", "--nsamples", "8", "--seqlen", "64",
                        "--calib", ts_shared("text/tinystories-valid-head.txt"), "--out", run, NULL };
    ts_run_result r = quench(q, 0);
    ts_run_free(&r);

    snprintf(out, sizeof out, "%s/up.png", dir);
    const char *w[] = { "export-png", run, "--what", "weights", "--layer", "3.up_proj", "--width", "400", "--out", out,
                        NULL };
    r = quench(w, 0);
    ts_run_free(&r);
    png_facts f = read_png(out);
    cr_expect_eq(f.w, 400);
    cr_expect(f.h > 100 && f.h < 2000, "height %u", f.h);
    cr_expect_str_eq(f.layer, "model.layers.3.mlp.up_proj");
    cr_expect_str_eq(f.kind, "weights");
    /* run.jsonl records the absolute path of the model */
    cr_expect(strlen(f.model) > strlen(TS_STORIES_HF) && f.model[0] == '/' &&
              strcmp(f.model + strlen(f.model) - strlen(TS_STORIES_HF), TS_STORIES_HF) == 0, "model '%s'", f.model);
    cr_expect(strncmp(f.method, "SpQR w3", 7) == 0, "method '%s'", f.method);

    /* without --layer: the layer of largest relative error */
    qn_run_folder *rf = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_run_open(&rf, run, &err), QN_OK, "%s", err.msg);
    const char *worst = qn_run_get_info(rf)->layers[qn_run_worst_layer(rf)].name;
    snprintf(out, sizeof out, "%s/err.png", dir);
    const char *e[] = { "export-png", run, "--what", "error", "--width", "320", "--height", "300", "--out", out, NULL };
    r = quench(e, 0);
    ts_run_free(&r);
    f = read_png(out);
    cr_expect(f.w == 320 && f.h == 300, "%ux%u", f.w, f.h);
    cr_expect_str_eq(f.layer, worst);

    snprintf(all, sizeof all, "%s/all", dir);
    const char *a[] = { "export-png", run, "--what", "all", "--width", "300", "--out", all, NULL };
    r = quench(a, 0);
    /* 35 linears x (weights, error, outliers) + overview + hessian; no codebook, no convergence */
    cr_expect_eq(count_png(all), 35 * 3 + 2);
    cr_expect(strstr(r.out, "wrote 107 pictures"), "%s", r.out);
    cr_expect(strstr(r.err, "skipped codebook") && strstr(r.err, "skipped convergence"), "%s", r.err);
    ts_run_free(&r);
    snprintf(out, sizeof out, "%s/outliers-0.k_proj.png", all);
    f = read_png(out);
    cr_expect_str_eq(f.layer, "model.layers.0.self_attn.k_proj");
    snprintf(out, sizeof out, "%s/overview.png", all);
    f = read_png(out);
    cr_expect(f.w == 300 && strcmp(f.layer, "all") == 0 && strcmp(f.kind, "overview") == 0, "%s %s", f.layer, f.kind);

    setenv("LANG", "C.UTF-8", 1);
    const char *s1[] = { "show", run, "--what", "weights", "--layer", "1.v", "--colors", "truecolor", "--width", "60",
                         NULL };
    r = quench(s1, 0);
    cr_expect(strstr(r.out, "\x1b[38;2;") && strstr(r.out, "\xe2\x96\x80"), "no 24-bit half blocks:\n%s", r.out);
    cr_expect(strstr(r.out, "Weights: block 1 self_attn.v_proj") && strstr(r.out, "stories260K"), "%s", r.out);
    ts_run_free(&r);
    const char *s2[] = { "show", run, "--what", "error", "--ascii", "--colors", "mono", NULL };
    r = quench(s2, 0);
    cr_expect(!strchr(r.out, '\x1b') && !strstr(r.out, "\xe2\x96\x80"), "escapes or half blocks in mono ASCII:\n%s",
              r.out);
    for (const char *p = r.out; *p; p++) cr_expect((unsigned char)*p < 128, "non-ASCII byte in --ascii output");
    cr_expect(strstr(r.out, worst + strlen("model.layers.") + 2), "%s", r.out);
    ts_run_free(&r);
    const char *s3[] = { "show", run, "--what", "overview", "--colors", "256", NULL };
    r = quench(s3, 0);
    cr_expect(strstr(r.out, "\x1b[") && strstr(r.out, "down_proj") && strstr(r.out, "blk 4"), "%s", r.out);
    ts_run_free(&r);
    const char *s4[] = { "show", run, "--what", "hessian", "--colors", "8", NULL };
    r = quench(s4, 0);
    ts_run_free(&r);
    qn_run_close(rf);
    ts_rmtree(dir);
}

Test(export_png, errors_say_what_is_wrong)
{
    char dir[128], path[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/run.jsonl", dir);
    static const char log[] =
        "{\"event\":\"start\",\"model\":\"assets/stories260K\",\"calib\":\"c\",\"method\":\"spqr\",\"options\":{}}\n"
        "{\"event\":\"layer\",\"name\":\"model.layers.0.mlp.up_proj\",\"block\":0,\"d_out\":172,\"d_in\":64,"
        "\"relative_error\":0.01,\"bits\":4.5}\n";
    ts_write_file(path, log, strlen(log));
    snprintf(path, sizeof path, "%s/x.png", dir);
    const char *bad_layer[] = { "export-png", dir, "--what", "weights", "--layer", "7.up", "--out", path, NULL };
    ts_run_result r = quench(bad_layer, 2);
    cr_expect(strstr(r.err, "no layer '7.up'") && strstr(r.err, "gate_proj"), "%s", r.err);
    ts_run_free(&r);
    const char *show_bad_layer[] = { "show", dir, "--what", "weights", "--layer", "0.qq", NULL };
    r = quench(show_bad_layer, 2);
    cr_expect(strstr(r.err, "no layer '0.qq'"), "%s", r.err);
    ts_run_free(&r);
    const char *codebook[] = { "export-png", dir, "--what", "codebook", "--out", path, NULL };
    r = quench(codebook, 1);
    cr_expect(strstr(r.err, "codebooks are AQLM's"), "%s", r.err);
    ts_run_free(&r);
    const char *kind[] = { "show", dir, "--what", "histogram", NULL };
    r = quench(kind, 2);
    cr_expect(strstr(r.err, "unknown picture 'histogram'") && strstr(r.err, "convergence"), "%s", r.err);
    ts_run_free(&r);
    const char *no_stats[] = { "show", dir, "--what", "hessian", NULL };
    r = quench(no_stats, 1);
    cr_expect(strstr(r.err, "stats.safetensors"), "%s", r.err);
    ts_run_free(&r);
    const char *no_out[] = { "export-png", dir, "--what", "overview", NULL };
    r = quench(no_out, 2);
    ts_run_free(&r);
    const char *colormap[] = { "export-png", dir, "--what", "overview", "--colormap", "jet", "--out", path, NULL };
    r = quench(colormap, 2);
    cr_expect(strstr(r.err, "unknown colormap 'jet'"), "%s", r.err);
    ts_run_free(&r);
    snprintf(path, sizeof path, "%s/nowhere", dir);
    const char *missing[] = { "show", path, "--what", "overview", NULL };
    r = quench(missing, 1);
    cr_expect(strstr(r.err, path) && strstr(r.err, "no such directory"), "%s", r.err);
    ts_run_free(&r);
    ts_rmtree(dir);
}
