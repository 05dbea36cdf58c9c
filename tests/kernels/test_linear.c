/* test_linear.c: the format table and qn_linear_init/done: every format has
   a row with a name, a size and a validator; f32 needs no init; a compressed
   linear gets a plan at init and loses it at done; an unknown format or a
   missing layout is refused with the tensor named. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/kernel_bench.h"
#include "kernels/linear.h"
#include "kernels/synth.h"

Test(linear, every_format_has_a_complete_row)
{
    for (int f = 0; f < QN_FMT_COUNT; f++) {
        const qn_format_desc *d = qn_format_info((qn_format)f);
        cr_assert(d && d->name && d->bits_per_weight && d->validate && d->to_dense, "format %d", f);
    }
    cr_expect_null(qn_format_info(QN_FMT_COUNT));
}

/* Storage bits per weight of the bench presets at 4096 x 4096, from the layouts' formulas. */
Test(linear, bits_per_weight_count_every_array)
{
    static const struct { const char *fmt; double bpw; } cases[] = {
        { "aqlm-2x8", 2.0 + (2.0 * 256 * 8 * 16 + 16.0 * 4096) / (4096.0 * 4096) },
        { "aqlm-1x16", 2.0 + (65536.0 * 8 * 16 + 16.0 * 4096) / (4096.0 * 4096) },
        { "aqlm-2x12", 4.0 + (2.0 * 4096 * 8 * 16 + 16.0 * 4096) / (4096.0 * 4096) },   /* int16 codes */
        { "int4", 4.0 + 32.0 / 128 },
        { "int3", 3.0 + 32.0 / 128 },
        { "spqr-w3", 3.0 + 6.0 / 16 + 64.0 / 256 + 41.0 * 32 / 4096 + (32.0 * 4097 + 32.0 * 4096) / (4096.0 * 4096) },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qn_synth_opts o;
        qn_synth *s;
        qn_linear lin;
        qn_err err = {0};
        cr_assert_eq(qn_kbench_synth_opts(cases[i].fmt, 4096, 4096, 1, &o, &err), QN_OK, "%s", err.msg);
        if (o.fmt == QN_FMT_SPQR) o.d_out = 4096;
        cr_assert_eq(qn_synth_create(&s, &o, &err), QN_OK, "%s", err.msg);
        cr_assert_eq(qn_linear_init(&lin, o.fmt, o.d_out, o.d_in, qn_synth_packed(s), cases[i].fmt, &err), QN_OK,
                     "%s", err.msg);
        double got = qn_format_info(o.fmt)->bits_per_weight(&lin);
        cr_expect(fabs(got - cases[i].bpw) < 1e-9, "%s: %.6f bits per weight, expected %.6f", cases[i].fmt, got,
                  cases[i].bpw);
        qn_linear_done(&lin);
        qn_synth_free(s);
    }
}

Test(linear, f32_runs_without_init_and_init_accepts_it)
{
    float W[6] = { 1, 2, 3, 4, 5, 6 }, x[3] = { 1, 0, -1 }, y[2];
    qn_linear a = qn_linear_f32(W, 2, 3), b;
    cr_assert_eq(qn_linear_matvec(&a, x, y, NULL), QN_OK);
    cr_expect(y[0] == -2 && y[1] == -2);
    cr_assert_eq(qn_linear_init(&b, QN_FMT_F32, 2, 3, W, "w", NULL), QN_OK);
    cr_expect_null(b.plan, "f32 needs no plan");
    qn_linear_done(&b);
    qn_linear_done(NULL);
}

Test(linear, done_frees_the_plan_once)
{
    qn_synth *s;
    qn_synth_opts o = { .fmt = QN_FMT_AQLM, .d_out = 4, .d_in = 16, .n_codebooks = 2, .nbits = 8,
                        .in_group_size = 8, .seed = 9 };
    cr_assert_eq(qn_synth_create(&s, &o, NULL), QN_OK);
    qn_linear lin;
    cr_assert_eq(qn_linear_init(&lin, QN_FMT_AQLM, 4, 16, &s->aqlm, "w", NULL), QN_OK);
    cr_expect_not_null(lin.plan);
    qn_linear_done(&lin);
    cr_expect_null(lin.plan);
    qn_linear_done(&lin);   /* a second call is harmless */
    qn_synth_free(s);
}

Test(linear, init_refuses_an_unknown_format_or_a_missing_layout)
{
    qn_linear lin;
    qn_err err = {0};
    cr_expect_eq(qn_linear_init(&lin, QN_FMT_COUNT, 4, 4, NULL, "lm_head", &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "lm_head: unknown format"), "%s", err.msg);
    cr_expect_eq(qn_linear_init(&lin, QN_FMT_SPQR, 4, 4, NULL, "lm_head", &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "lm_head: no spqr layout"), "%s", err.msg);
    cr_expect_eq(qn_linear_init(&lin, QN_FMT_INT, 0, 4, NULL, "lm_head", &err), QN_ERR_SHAPE);
}

Test(linear, simd_detection_is_consistent)
{
    qn_simd have = qn_cpu_simd();
    cr_expect_eq(qn_simd_clamp(QN_SIMD_AVX2), have);
    cr_expect_eq(qn_simd_clamp(QN_SIMD_NONE), QN_SIMD_NONE);
    cr_expect_str_eq(qn_simd_name(QN_SIMD_NONE), "none");
}
