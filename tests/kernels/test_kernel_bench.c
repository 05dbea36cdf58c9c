/* test_kernel_bench.c: the measurement behind bench-kernel runs every named
   format on a small matrix and fills every field (no timing is judged here:
   that is `make bench`); an unknown format is refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernels/kernel_bench.h"

/* The bench compares ours with BLAS as a sanity check: the tests' tolerance. */
#define BENCH_REL_TOL 1e-5

Test(kernel_bench, every_format_runs_on_a_small_matrix)
{
    size_t n = 0;
    for (size_t i = 0; qn_kbench_format_name(i); i++, n++) {
        qn_kbench_opts o = { .format = qn_kbench_format_name(i), .rows = 37, .cols = 256, .batch = 1 + i % 3,
                             .reps = 2, .threads = 2, .warm = true, .seed = i };
        qn_kbench_result r;
        qn_err err = {0};
        cr_assert_eq(qn_kbench_run(&o, &r, &err), QN_OK, "%s: %s", o.format, err.msg);
        cr_expect(r.ours_s > 0 && r.blas_s > 0 && r.speedup > 0 && r.gbps > 0, "%s: empty timings", o.format);
        cr_expect(r.bits_per_weight > 0.5, "%s: %.2f bits per weight", o.format, r.bits_per_weight);
        cr_expect(r.max_rel_err <= BENCH_REL_TOL, "%s: ours and BLAS differ by %.3g", o.format, r.max_rel_err);
    }
    cr_expect_eq(n, 11, "the issue's eleven formats");
}

Test(kernel_bench, unknown_format_is_an_argument_error)
{
    qn_kbench_opts o = { .format = "aqlm-3x3", .rows = 8, .cols = 8, .reps = 1 };
    qn_kbench_result r;
    qn_err err = {0};
    cr_expect_eq(qn_kbench_run(&o, &r, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "unknown format 'aqlm-3x3'"), "%s", err.msg);
}
