/* test_bench_kernel.c: `quench bench-kernel` through the binary: the JSON
   object printed last, and usage errors. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "support.h"

Test(cli_bench_kernel, json_reports_both_times_and_the_speedup)
{
    const char *args[] = { "bench-kernel", "--rows", "64", "--cols", "512", "--format", "aqlm-2x8", "--threads", "2",
                           "--reps", "3", "--warm", "--json", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *last = strrchr(r.out, '{');
    cr_assert(last, "no JSON in: %s", r.out);
    json_t *j = json_loads(last, 0, NULL);
    cr_assert(j, "last line is not JSON: %s", last);
    const char *keys[] = { "ours_s", "blas_s", "speedup", "gbps" };
    for (size_t i = 0; i < 4; i++)
        cr_expect(json_number_value(json_object_get(j, keys[i])) > 0, "%s missing or not positive", keys[i]);
    cr_expect_str_eq(json_string_value(json_object_get(j, "format")), "aqlm-2x8");
    json_decref(j);
    ts_run_free(&r);
}

Test(cli_bench_kernel, unknown_format_is_a_usage_error)
{
    const char *args[] = { "bench-kernel", "--rows", "8", "--cols", "8", "--format", "q4_0", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "unknown format 'q4_0'") && strstr(r.err, "aqlm-2x8"), "%s", r.err);
    ts_run_free(&r);
}

Test(cli_bench_kernel, rows_cols_and_format_are_required)
{
    const char *args[] = { "bench-kernel", "--rows", "8", NULL };
    ts_run_result r = ts_run_quench(args);
    cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "are required"), "%s", r.err);
    ts_run_free(&r);
}
