/* test_aqlm_cpu.c: AQLM kernels against dequantize-then-BLAS for the issue's
   configurations (1x16, 2x8, 1x8, 4x8, 2x12, all g8) and odd ones (3 codebooks,
   groups of 16 and of 4, 7- and 10-bit codes), on odd shapes (one row, one
   group, rows not a multiple of the SIMD width), each SIMD path; and the
   validator on broken layouts. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_cases.h"
#include "kernels/aqlm_cpu.h"

typedef struct {
    int M, B, G;
} config;

static const config k_configs[] = {
    { 1, 16, 8 }, { 2, 8, 8 }, { 1, 8, 8 }, { 4, 8, 8 }, { 2, 12, 8 },
    { 3, 8, 16 }, { 2, 7, 4 }, { 1, 10, 8 }, { 2, 8, 4 },
};
static const size_t k_shapes[][2] = { { 1, 16 }, { 1, 64 }, { 7, 64 }, { 33, 256 }, { 257, 1024 } };

static qn_synth_opts opts(const config *k, size_t d_out, size_t d_in, uint64_t seed)
{
    return (qn_synth_opts){ .fmt = QN_FMT_AQLM, .d_out = d_out, .d_in = d_in, .n_codebooks = k->M,
                            .nbits = k->B, .in_group_size = k->G, .seed = seed };
}

Test(aqlm_cpu, matvec_matches_dequantized_sgemv)
{
    for (size_t k = 0; k < sizeof k_configs / sizeof k_configs[0]; k++)
        for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
            const config *cf = &k_configs[k];
            size_t d_out = k_shapes[i][0], d_in = k_shapes[i][1] / 16 * 16, at;
            qn_synth_opts o = opts(cf, d_out, d_in, 10 * k + i);
            kc_case c;
            kc_make(&c, &o, "aqlm");
            float *x = kc_random(d_in, k + i), *y = malloc(d_out * sizeof *y);
            qn_aqlm_matvec_ref(c.lin.packed, x, y);
            double e = kc_err(c.W, d_out, d_in, x, 1, y, &at);
            cr_expect(e <= KC_REL_TOL, "%dx%d g%d %zux%zu ref: rel err %.3g at row %zu > %.3g", cf->M, cf->B, cf->G,
                      d_out, d_in, e, at, KC_REL_TOL);
            for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                qn_aqlm_plan *p;
                qn_err err = {0};
                cr_assert_eq(qn_aqlm_plan_create(&p, c.lin.packed, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                memset(y, 0, d_out * sizeof *y);
                cr_assert_eq(qn_aqlm_matvec(c.lin.packed, p, x, y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                e = kc_err(c.W, d_out, d_in, x, 1, y, &at);
                cr_expect(e <= KC_REL_TOL, "%dx%d g%d %zux%zu %s: rel err %.3g at row %zu > %.3g", cf->M, cf->B,
                          cf->G, d_out, d_in, qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
                qn_aqlm_plan_free(p);
            }
            cr_assert_eq(qn_linear_matvec(&c.lin, x, y, NULL), QN_OK);
            e = kc_err(c.W, d_out, d_in, x, 1, y, &at);
            cr_expect(e <= KC_REL_TOL, "%dx%d g%d %zux%zu via qn_linear: rel err %.3g > %.3g", cf->M, cf->B, cf->G,
                      d_out, d_in, e, KC_REL_TOL);
            free(x);
            free(y);
            kc_free(&c);
        }
}

Test(aqlm_cpu, matmul_matches_dequantized_sgemm)
{
    static const size_t n_toks[] = { 1, 2, 5, 17 };
    for (size_t k = 0; k < sizeof k_configs / sizeof k_configs[0]; k++) {
        const config *cf = &k_configs[k];
        size_t d_out = 67, d_in = 128;
        qn_synth_opts o = opts(cf, d_out, d_in, 77 + k);
        kc_case c;
        kc_make(&c, &o, "aqlm");
        for (size_t t = 0; t < sizeof n_toks / sizeof n_toks[0]; t++) {
            size_t n = n_toks[t], at;
            float *X = kc_random(n * d_in, t), *Y = calloc(n * d_out, sizeof *Y);
            for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                qn_aqlm_plan *p;
                qn_err err = {0};
                cr_assert_eq(qn_aqlm_plan_create(&p, c.lin.packed, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                memset(Y, 0, n * d_out * sizeof *Y);
                cr_assert_eq(qn_aqlm_matmul(c.lin.packed, p, X, n, Y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                double e = kc_err(c.W, d_out, d_in, X, n, Y, &at);
                cr_expect(e <= KC_REL_TOL, "%dx%d g%d x %zu tokens %s: rel err %.3g at %zu > %.3g", cf->M, cf->B,
                          cf->G, n, qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
                qn_aqlm_plan_free(p);
            }
            cr_assert_eq(qn_linear_matmul(&c.lin, X, n, Y, NULL), QN_OK);
            double e = kc_err(c.W, d_out, d_in, X, n, Y, &at);
            cr_expect(e <= KC_REL_TOL, "%dx%d g%d x %zu tokens via qn_linear: rel err %.3g at %zu > %.3g", cf->M,
                      cf->B, cf->G, n, e, at, KC_REL_TOL);
            free(X);
            free(Y);
        }
        kc_free(&c);
    }
}

Test(aqlm_cpu, codes_read_both_signed_and_unsigned)
{
    /* aqlm.utils.pack_int_data stores 2x12 code 3000 as -1096; 3000 itself reads the same. */
    qn_synth *s;
    qn_synth_opts o = opts(&(config){ 1, 12, 8 }, 1, 8, 5);
    cr_assert_eq(qn_synth_create(&s, &o, NULL), QN_OK);
    float W1[8], W2[8];
    ((int16_t *)s->aqlm.codes)[0] = -1096;
    qn_aqlm_to_dense_ref(&s->aqlm, W1);
    ((int16_t *)s->aqlm.codes)[0] = 3000;
    qn_aqlm_to_dense_ref(&s->aqlm, W2);
    cr_expect(memcmp(W1, W2, sizeof W1) == 0, "signed and unsigned storage of code 3000 differ");
    cr_expect_eq(qn_aqlm_validate(&s->aqlm, "t", NULL), QN_OK);
    qn_synth_free(s);
}

static qn_synth *valid(int M, int B)
{
    qn_synth *s;
    qn_synth_opts o = opts(&(config){ M, B, 8 }, 5, 32, 2);
    cr_assert_eq(qn_synth_create(&s, &o, NULL), QN_OK);
    cr_assert_eq(qn_aqlm_validate(&s->aqlm, "t", NULL), QN_OK);
    return s;
}

static void expect_bad(qn_synth *s, qn_status want, const char *needle)
{
    qn_err err = {0};
    qn_linear lin;
    qn_status got = qn_linear_init(&lin, QN_FMT_AQLM, s->aqlm.d_out, s->aqlm.d_in, &s->aqlm,
                                   "model.layers.0.self_attn.q_proj", &err);
    cr_expect_eq(got, want, "expected %s, got %s: %s", qn_status_name(want), qn_status_name(got), err.msg);
    cr_expect(strstr(err.msg, "model.layers.0.self_attn.q_proj: ") == err.msg, "message names the tensor: %s",
              err.msg);
    cr_expect(strstr(err.msg, needle), "message mentions '%s': %s", needle, err.msg);
    qn_synth_free(s);
}

Test(aqlm_cpu, validator_rejects_a_code_beyond_2_to_the_B)
{
    qn_synth *s = valid(2, 12);
    ((int16_t *)s->aqlm.codes)[2 * 4 * 3 + 2 * 1 + 1] = 5000;   /* row 3, group 1, codebook 1 */
    expect_bad(s, QN_ERR_FORMAT, "codes[3][1][1] = 5000 is beyond a 12-bit code");
}

Test(aqlm_cpu, validator_rejects_a_negative_code_beyond_2_to_the_B)
{
    qn_synth *s = valid(1, 7);
    ((int8_t *)s->aqlm.codes)[0] = -65;
    expect_bad(s, QN_ERR_FORMAT, "codes[0][0][0] = -65");
}

Test(aqlm_cpu, validator_rejects_codes_of_the_wrong_size)
{
    qn_synth *s = valid(2, 8);
    s->aqlm.codes_nbytes /= 2;
    expect_bad(s, QN_ERR_SHAPE, "codes hold");
}

Test(aqlm_cpu, validator_rejects_codebooks_of_the_wrong_size)
{
    qn_synth *s = valid(2, 8);
    s->aqlm.codebooks_nbytes -= 16;
    expect_bad(s, QN_ERR_SHAPE, "codebooks hold");
}

Test(aqlm_cpu, validator_rejects_a_non_finite_scale)
{
    qn_synth *s = valid(1, 8);
    ((uint16_t *)s->aqlm.scales)[4] = 0x7c00;   /* +inf */
    expect_bad(s, QN_ERR_FORMAT, "scales[4]");
}

Test(aqlm_cpu, validator_rejects_output_groups)
{
    qn_synth *s = valid(1, 8);
    s->aqlm.out_group_size = 2;
    expect_bad(s, QN_ERR_UNSUPPORTED, "output groups of 2");
}

Test(aqlm_cpu, validator_rejects_columns_not_split_into_groups)
{
    qn_synth *s = valid(1, 8);
    s->aqlm.d_in = 36;
    expect_bad(s, QN_ERR_SHAPE, "input groups of 8");
}

Test(aqlm_cpu, compressed_linear_refuses_to_run_before_init)
{
    qn_synth *s = valid(2, 8);
    qn_linear lin = { .fmt = QN_FMT_AQLM, .d_out = 5, .d_in = 32, .packed = &s->aqlm };
    float x[32] = { 0 }, y[5];
    qn_err err = {0};
    cr_expect_eq(qn_linear_matvec(&lin, x, y, &err), QN_ERR_ARG, "%s", err.msg);
    cr_expect(strstr(err.msg, "before qn_linear_init"), "%s", err.msg);
    qn_synth_free(s);
}

Test(aqlm_cpu, table_route_reads_only_the_plans_codes)
{
    /* B = 8: after the plan, the caller's codes may be released; scribble over them */
    size_t d_out = 37, d_in = 128, at;
    qn_synth_opts o = opts(&(config){ 2, 8, 8 }, d_out, d_in, 21);
    kc_case c;
    kc_make(&c, &o, "aqlm");
    memset((void *)c.s->aqlm.codes, 0xa5, c.s->aqlm.codes_nbytes);
    static const size_t n_toks[] = { 1, 5, 33 };   /* matvec, matvecs, dequantize + sgemm */
    for (size_t t = 0; t < sizeof n_toks / sizeof n_toks[0]; t++) {
        size_t n = n_toks[t];
        float *X = kc_random(n * d_in, 4), *Y = calloc(n * d_out, sizeof *Y);
        cr_assert_eq(qn_linear_matmul(&c.lin, X, n, Y, NULL), QN_OK);
        double e = kc_err(c.W, d_out, d_in, X, n, Y, &at);
        cr_expect(e <= KC_REL_TOL, "%zu tokens after the codes were overwritten: rel err %.3g > %.3g", n, e,
                  KC_REL_TOL);
        free(X);
        free(Y);
    }
    kc_free(&c);
}
