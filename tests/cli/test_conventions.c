/* test_conventions.c: what every subcommand shares, through the binary: a
   real --help (options with defaults, examples, --threads where the command
   takes it), --version, "did you mean" for unknown subcommands, options and
   presets, --json leaving stdout to JSON alone, no ANSI escapes when stdout is
   not a terminal, and output folders created with their parents. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "support.h"

static const struct { const char *name; bool threads; } k_cmds[] = {
    { "inspect", false }, { "tokenize", false }, { "ppl", true }, { "generate", true }, { "quantize", true },
    { "presets", false }, { "logits", false }, { "export-png", false }, { "show", false },
    { "import-llama2c", false }, { "export-spqr-hf", false }, { "bench", true }, { "bench-kernel", true },
    { "quantize-layer", true },
};

Test(conventions, every_subcommand_has_a_help)
{
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++) {
        const char *args[] = { k_cmds[i].name, "--help", NULL };
        ts_run_result r = ts_run_quench(args);
        cr_expect_eq(r.status, 0, "%s --help: exit %d: %s", k_cmds[i].name, r.status, r.err);
        cr_expect(strncmp(r.out, "usage: quench ", 14) == 0, "%s --help: %s", k_cmds[i].name, r.out);
        cr_expect(strstr(r.out, "example"), "%s --help has no example: %s", k_cmds[i].name, r.out);
        if (k_cmds[i].threads)
            cr_expect(strstr(r.out, "--threads T") && strstr(r.out, "default 0"), "%s --help: %s", k_cmds[i].name,
                      r.out);
        ts_run_free(&r);
    }
    const char *q[] = { "quantize", "--help", NULL };
    ts_run_result r = ts_run_quench(q);
    cr_expect(strstr(r.out, "presets:") && strstr(r.out, "spqr-3.6") && strstr(r.out, "default 128"), "%s", r.out);
    ts_run_free(&r);
    const char *h[] = { "help", "ppl", NULL };
    r = ts_run_quench(h);
    cr_expect(r.status == 0 && strstr(r.out, "--protocol P"), "%s", r.out);
    ts_run_free(&r);
}

Test(conventions, version_and_suggestions)
{
    const char *v[] = { "--version", NULL };
    ts_run_result r = ts_run_quench(v);
    cr_expect(r.status == 0 && strncmp(r.out, "quench ", 7) == 0, "%s", r.out);
    ts_run_free(&r);
    const char *sub[] = { "quantise", NULL };
    r = ts_run_quench(sub);
    cr_expect(r.status == 2 && strstr(r.err, "did you mean 'quantize'?"), "%s", r.err);
    ts_run_free(&r);
    const char *opt[] = { "ppl", TS_STORIES_HF, "--ctxx", "64", NULL };
    r = ts_run_quench(opt);
    cr_expect(r.status == 2 && strstr(r.err, "unknown option '--ctxx'; did you mean --ctx?"), "%s", r.err);
    ts_run_free(&r);
    const char *noval[] = { "generate", TS_STORIES_HF, "--prompt", NULL };
    r = ts_run_quench(noval);
    cr_expect(r.status == 2 && strstr(r.err, "--prompt needs a value"), "%s", r.err);
    ts_run_free(&r);
    const char *far[] = { "show", "x", "--zzzzzz", NULL };
    r = ts_run_quench(far);
    cr_expect(r.status == 2 && strstr(r.err, "unknown option '--zzzzzz'") && !strstr(r.err, "did you mean"), "%s",
              r.err);
    ts_run_free(&r);
}

/* presets --json is one object; aqlm-2bit on stories260K stores more than 16
   bits per parameter and says so, and its group is fitted (172 is not a multiple of 8). */
Test(conventions, presets_json_and_honest_bits)
{
    const char *args[] = { "presets", TS_STORIES_HF, "--json", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert(j, "not one JSON document: %s", r.out);
    json_t *list = json_object_get(j, "presets"), *p;
    size_t i, seen = 0;
    json_array_foreach(list, i, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        double bits = json_number_value(json_object_get(p, "bits"));
        cr_expect_eq(json_is_true(json_object_get(p, "above_fp16")), bits > 16, "%s", name);
        if (strcmp(name, "aqlm-2bit") == 0) {
            seen++;
            cr_expect(bits > 600 && bits < 700, "aqlm-2bit: %g bits", bits);
            cr_expect_eq(json_integer_value(json_object_get(p, "group")), 4);
            cr_expect_eq(json_integer_value(json_object_get(p, "preset_group")), 8);
        }
    }
    cr_expect_eq(seen, 1);
    json_decref(j);
    ts_run_free(&r);
    const char *text[] = { "presets", TS_STORIES_HF, NULL };
    r = ts_run_quench(text);
    cr_expect(strstr(r.out, "MORE BITS THAN FP16") && strstr(r.out, "warning: 3 preset(s)"), "%s", r.out);
    ts_run_free(&r);
}

/* A run to draw from, made once per test that needs it (small and quick). */
static void small_run(char *dir, size_t cap, char *run, size_t run_cap)
{
    ts_mkdtemp(dir, cap);
    snprintf(run, run_cap, "%s/r", dir);
    ts_quantize_small("spqr-3.6", run);
}

Test(conventions, show_without_a_terminal_has_no_escapes, .timeout = 120)
{
    char dir[128], run[160];
    small_run(dir, sizeof dir, run, sizeof run);
    const char *kinds[] = { "overview", "outliers", "convergence" };
    for (size_t k = 0; k < 2; k++) {
        const char *args[] = { "show", run, "--what", kinds[k], NULL };
        ts_run_result r = ts_run_quench(args);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(!strchr(r.out, '\033'), "ANSI escapes in piped output of %s: %s", kinds[k], r.out);
        ts_run_free(&r);
    }
    const char *forced[] = { "show", run, "--what", "overview", "--colors", "256", NULL };
    ts_run_result r = ts_run_quench(forced);
    cr_expect(strchr(r.out, '\033'), "--colors 256 asks for colours: %s", r.out);
    ts_run_free(&r);
    const char *ascii[] = { "show", run, "--what", "outliers", "--ascii", NULL };
    r = ts_run_quench(ascii);
    for (const unsigned char *p = (const unsigned char *)r.out; *p; p++)
        cr_assert(*p < 0x80 && *p != 033, "--ascii wrote byte 0x%02x", *p);
    ts_run_free(&r);
    /* export-png creates the folders of --out */
    char png[300];
    snprintf(png, sizeof png, "%s/pics/deeper/overview.png", dir);
    const char *exp[] = { "export-png", run, "--what", "overview", "--out", png, NULL };
    r = ts_run_quench(exp);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(qn_path_exists(png), "%s", png);
    ts_run_free(&r);
    ts_rmtree(dir);
}
