/* test_int_cpu.c: integer-weight kernels against dequantize-then-BLAS, on
   odd shapes (one row, one group, rows not a multiple of 4 or 8, a partial
   last group, groups the SIMD path cannot take), each SIMD path, and the
   validator on broken layouts. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_cases.h"
#include "kernels/int_cpu.h"

typedef struct {
    size_t d_out, d_in, group;
} shape;

static const shape k_shapes[] = {
    { 1, 8, 8 }, { 3, 24, 8 }, { 5, 13, 13 }, { 37, 264, 32 }, { 9, 100, 16 }, { 129, 1024, 128 }, { 300, 4096, 128 },
};
static const int k_bits[] = { 2, 3, 4, 8 };

static qn_synth_opts opts(const shape *s, int bits, uint64_t seed)
{
    return (qn_synth_opts){ .fmt = QN_FMT_INT, .d_out = s->d_out, .d_in = s->d_in, .group_size = s->group,
                            .bits = bits, .seed = seed };
}

Test(int_cpu, matvec_matches_dequantized_sgemv)
{
    for (size_t b = 0; b < sizeof k_bits / sizeof k_bits[0]; b++)
        for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
            const shape *sh = &k_shapes[i];
            qn_synth_opts o = opts(sh, k_bits[b], 100 * b + i);
            kc_case c;
            kc_make(&c, &o, "int");
            const qn_int_weights *w = c.lin.packed;
            float *x = kc_random(sh->d_in, i), *y = malloc(sh->d_out * sizeof *y);
            size_t at;
            qn_int_matvec_ref(w, x, y);
            double e = kc_err(c.W, sh->d_out, sh->d_in, x, 1, y, &at);
            cr_expect(e <= KC_REL_TOL, "int%d %zux%zu g%zu ref: rel err %.3g at row %zu > %.3g", k_bits[b], sh->d_out,
                      sh->d_in, sh->group, e, at, KC_REL_TOL);
            for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                qn_err err = {0};
                memset(y, 0, sh->d_out * sizeof *y);
                cr_assert_eq(qn_int_matvec(w, x, y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                e = kc_err(c.W, sh->d_out, sh->d_in, x, 1, y, &at);
                cr_expect(e <= KC_REL_TOL, "int%d %zux%zu g%zu %s: rel err %.3g at row %zu > %.3g", k_bits[b],
                          sh->d_out, sh->d_in, sh->group, qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
            }
            free(x);
            free(y);
            kc_free(&c);
        }
}

Test(int_cpu, matmul_matches_dequantized_sgemm)
{
    static const size_t n_toks[] = { 1, 3, 5, 17 };
    for (size_t b = 0; b < sizeof k_bits / sizeof k_bits[0]; b++)
        for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
            const shape *sh = &k_shapes[i];
            qn_synth_opts o = opts(sh, k_bits[b], 7 + 100 * b + i);
            kc_case c;
            kc_make(&c, &o, "int");
            for (size_t t = 0; t < sizeof n_toks / sizeof n_toks[0]; t++) {
                size_t n = n_toks[t], at;
                float *X = kc_random(n * sh->d_in, 3 + t), *Y = calloc(n * sh->d_out, sizeof *Y);
                for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                    qn_err err = {0};
                    cr_assert_eq(qn_int_matmul(c.lin.packed, X, n, Y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                    double e = kc_err(c.W, sh->d_out, sh->d_in, X, n, Y, &at);
                    cr_expect(e <= KC_REL_TOL, "int%d %zux%zu x %zu tokens %s: rel err %.3g at %zu > %.3g", k_bits[b],
                              sh->d_out, sh->d_in, n, qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
                }
                cr_assert_eq(qn_linear_matmul(&c.lin, X, n, Y, NULL), QN_OK);
                double e = kc_err(c.W, sh->d_out, sh->d_in, X, n, Y, &at);
                cr_expect(e <= KC_REL_TOL, "int%d %zux%zu x %zu tokens via qn_linear: rel err %.3g > %.3g", k_bits[b],
                          sh->d_out, sh->d_in, n, e, KC_REL_TOL);
                free(X);
                free(Y);
            }
            kc_free(&c);
        }
}

/* A fresh valid layout that the test may break; s owns the arrays. */
static qn_synth *valid(void)
{
    qn_synth *s;
    qn_synth_opts o = { .fmt = QN_FMT_INT, .d_out = 6, .d_in = 40, .group_size = 16, .bits = 3, .seed = 1 };
    cr_assert_eq(qn_synth_create(&s, &o, NULL), QN_OK);
    cr_assert_eq(qn_int_validate(&s->intw, "t", NULL), QN_OK);
    return s;
}

static void expect_bad(qn_synth *s, qn_status want, const char *needle)
{
    qn_err err = {0};
    qn_linear lin;
    qn_status got = qn_linear_init(&lin, QN_FMT_INT, s->intw.d_out, s->intw.d_in, &s->intw, "layers.3.mlp.up_proj",
                                   &err);
    cr_expect_eq(got, want, "expected %s, got %s: %s", qn_status_name(want), qn_status_name(got), err.msg);
    cr_expect(strstr(err.msg, "layers.3.mlp.up_proj: ") == err.msg, "message names the tensor: %s", err.msg);
    cr_expect(strstr(err.msg, needle), "message mentions '%s': %s", needle, err.msg);
    qn_synth_free(s);
}

Test(int_cpu, validator_rejects_codes_of_the_wrong_size)
{
    qn_synth *s = valid();
    s->intw.codes_nbytes -= 1;
    expect_bad(s, QN_ERR_SHAPE, "codes hold");
}

Test(int_cpu, validator_rejects_scales_of_the_wrong_size)
{
    qn_synth *s = valid();
    s->intw.scales_nbytes += 2;
    expect_bad(s, QN_ERR_SHAPE, "scales hold");
}

Test(int_cpu, validator_rejects_a_non_finite_zero)
{
    qn_synth *s = valid();
    ((uint16_t *)s->intw.zeros)[7] = 0x7e00;   /* NaN */
    expect_bad(s, QN_ERR_FORMAT, "zeros[2][1]");
}

Test(int_cpu, validator_rejects_unsupported_bits)
{
    qn_synth *s = valid();
    s->intw.bits = 5;
    expect_bad(s, QN_ERR_UNSUPPORTED, "5-bit");
}

Test(int_cpu, validator_rejects_a_shape_the_layout_does_not_have)
{
    qn_synth *s = valid();
    qn_err err = {0};
    qn_linear lin;
    cr_expect_eq(qn_linear_init(&lin, QN_FMT_INT, 6, 48, &s->intw, "wq", &err), QN_ERR_SHAPE, "%s", err.msg);
    cr_expect(strstr(err.msg, "wq: layout is 6 x 40, expected 6 x 48"), "%s", err.msg);
    qn_synth_free(s);
}
