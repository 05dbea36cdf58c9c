/* test_device.c: `--device` on the commands that run a model or a kernel.
   A bad name is a usage error; cuda on a machine where it cannot run (no
   CUDA in the build, no GPU) is one clear line and exit 1, before any work. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernels/device.h"
#include "support.h"

/* Whether CUDA could run here: then the commands below would succeed. */
static bool cuda_usable(void)
{
    bool ok = qn_kernels_set_device(QN_DEVICE_CUDA, NULL) == QN_OK;
    qn_kernels_set_device(QN_DEVICE_CPU, NULL);
    return ok;
}

static void expect_one_line(const ts_run_result *r, int status, const char *needle)
{
    cr_expect_eq(r->status, status, "exit %d; stderr: %s", r->status, r->err);
    cr_expect(strstr(r->err, needle), "stderr does not say '%s': %s", needle, r->err);
    size_t lines = 0;
    for (const char *p = r->err; *p; p++) lines += *p == '\n';
    cr_expect(lines == 1 || (lines <= 3 && strstr(r->err, "usage:")), "%zu lines: %s", lines, r->err);
}

Test(cli_device, cuda_without_a_gpu_fails_clearly)
{
    if (cuda_usable()) cr_skip_test("a CUDA device answers here: make cuda-test covers it");
    const char *text = ts_shared("text/tinystories-valid-head.txt");
    const char *ppl[] = { "ppl", TS_STORIES_HF, "--text", text, "--ctx", "16", "--chunks", "1", "--device", "cuda", NULL };
    ts_run_result r = ts_run_quench(ppl);
    expect_one_line(&r, 1, "quench ppl: --device cuda: ");
    cr_expect_eq(r.out[0], '\0', "nothing printed on stdout: %s", r.out);
    ts_run_free(&r);
    const char *gen[] = { "generate", TS_STORIES_HF, "--prompt", "Once", "-n", "2", "--device", "cuda", NULL };
    r = ts_run_quench(gen);
    expect_one_line(&r, 1, "quench generate: --device cuda: ");
    ts_run_free(&r);
    const char *bk[] = { "bench-kernel", "--rows", "64", "--cols", "64", "--format", "int4", "--device", "cuda", NULL };
    r = ts_run_quench(bk);
    expect_one_line(&r, 1, "quench bench-kernel: ");
    cr_expect(strstr(r.err, qn_device_cuda_built() ? "CUDA" : "built without CUDA"), "%s", r.err);
    ts_run_free(&r);
}

Test(cli_device, an_unknown_device_is_a_usage_error)
{
    const char *ppl[] = { "ppl", TS_STORIES_HF, "--text", "x", "--ctx", "16", "--device", "tpu", NULL };
    ts_run_result r = ts_run_quench(ppl);
    expect_one_line(&r, 2, "expected cpu or cuda, found 'tpu'");
    ts_run_free(&r);
    const char *bk[] = { "bench-kernel", "--rows", "8", "--cols", "8", "--format", "int4", "--device", "gpu", NULL };
    r = ts_run_quench(bk);
    expect_one_line(&r, 2, "expected cpu or cuda, found 'gpu'");
    ts_run_free(&r);
}

Test(cli_device, cpu_is_the_default_and_can_be_named)
{
    const char *text = ts_shared("text/tinystories-valid-head.txt");
    const char *a[] = { "ppl", TS_STORIES_HF, "--text", text, "--ctx", "16", "--chunks", "1", "--json", NULL };
    const char *b[] = { "ppl", TS_STORIES_HF, "--text", text, "--ctx", "16", "--chunks", "1", "--json", "--device", "cpu",
                        NULL };
    ts_run_result ra = ts_run_quench(a), rb = ts_run_quench(b);
    cr_assert_eq(ra.status, 0, "%s", ra.err);
    cr_assert_eq(rb.status, 0, "%s", rb.err);
    /* --json: stdout is one object that starts with the perplexity */
    const char *pa = strstr(ra.out, "\"ppl\""), *pb = strstr(rb.out, "\"ppl\"");
    cr_assert(pa && pb, "%s | %s", ra.out, rb.out);
    cr_expect(strncmp(pa, pb, 20) == 0, "%.20s vs %.20s", pa, pb);
    ts_run_free(&ra);
    ts_run_free(&rb);
}
