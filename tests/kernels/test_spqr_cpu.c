/* test_spqr_cpu.c: SpQR kernels against dequantize-then-BLAS, on odd shapes
   (one row, one group, rows straddling second-level groups, partial last
   groups, groups the SIMD path cannot take), with and without permutation
   and outliers, each SIMD path; and the validator on broken layouts: CSR
   pointers past the end or decreasing, columns out of range, a permutation
   that is not one, arrays of the wrong size. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_cases.h"
#include "kernels/spqr_cpu.h"

typedef struct {
    size_t d_out, d_in, beta1, beta2;
    int bits;
    double outliers;
    bool permute;
} spqr_case;

static const spqr_case k_cases[] = {
    { 1, 16, 16, 16, 3, 0.0, false },    { 1, 16, 16, 16, 3, 0.1, true },   { 5, 40, 16, 16, 3, 0.05, true },
    { 19, 128, 8, 3, 4, 0.02, true },    { 33, 100, 16, 16, 2, 0.03, false }, { 21, 96, 12, 5, 3, 0.02, true },
    { 64, 256, 16, 16, 8, 0.01, true },  { 7, 64, 16, 2, 5, 0.05, true },   { 300, 4096, 16, 16, 3, 0.01, true },
    { 257, 1024, 16, 16, 4, 0.01, true }, { 9, 64, 16, 4, 1, 0.02, true },   { 13, 136, 8, 16, 2, 0.0, false },
    { 16, 128, 16, 16, 3, 0.02, true },   { 8, 48, 16, 16, 2, 0.0, false },  { 24, 100, 16, 8, 3, 0.03, false },
};

static qn_synth_opts opts(const spqr_case *k, uint64_t seed)
{
    return (qn_synth_opts){ .fmt = QN_FMT_SPQR, .d_out = k->d_out, .d_in = k->d_in, .bits = k->bits,
                            .stat_bits = 3, .beta1 = k->beta1, .beta2 = k->beta2, .outlier_frac = k->outliers,
                            .permute = k->permute, .seed = seed };
}

#define CASE_FMT "w%d %zux%zu b1=%zu b2=%zu out=%.2f perm=%d"
#define CASE_ARGS(k) (k)->bits, (k)->d_out, (k)->d_in, (k)->beta1, (k)->beta2, (k)->outliers, (int)(k)->permute

Test(spqr_cpu, matvec_matches_dequantized_sgemv)
{
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const spqr_case *k = &k_cases[i];
        qn_synth_opts o = opts(k, i);
        kc_case c;
        kc_make(&c, &o, "spqr");
        float *x = kc_random(k->d_in, i), *y = malloc(k->d_out * sizeof *y);
        size_t at;
        qn_spqr_matvec_ref(c.lin.packed, x, y);
        double e = kc_err(c.W, k->d_out, k->d_in, x, 1, y, &at);
        cr_expect(e <= KC_REL_TOL, CASE_FMT " ref: rel err %.3g at row %zu > %.3g", CASE_ARGS(k), e, at, KC_REL_TOL);
        for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
            qn_err err = {0};
            memset(y, 0, k->d_out * sizeof *y);
            cr_assert_eq(qn_spqr_matvec(c.lin.packed, x, y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
            e = kc_err(c.W, k->d_out, k->d_in, x, 1, y, &at);
            cr_expect(e <= KC_REL_TOL, CASE_FMT " %s: rel err %.3g at row %zu > %.3g", CASE_ARGS(k),
                      qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
        }
        free(x);
        free(y);
        kc_free(&c);
    }
}

Test(spqr_cpu, matmul_matches_dequantized_sgemm)
{
    static const size_t n_toks[] = { 1, 3, 4, 17 };
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const spqr_case *k = &k_cases[i];
        qn_synth_opts o = opts(k, 50 + i);
        kc_case c;
        kc_make(&c, &o, "spqr");
        for (size_t t = 0; t < sizeof n_toks / sizeof n_toks[0]; t++) {
            size_t n = n_toks[t], at;
            float *X = kc_random(n * k->d_in, t), *Y = calloc(n * k->d_out, sizeof *Y);
            for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                qn_err err = {0};
                cr_assert_eq(qn_spqr_matmul(c.lin.packed, X, n, Y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                double e = kc_err(c.W, k->d_out, k->d_in, X, n, Y, &at);
                cr_expect(e <= KC_REL_TOL, CASE_FMT " x %zu tokens %s: rel err %.3g at %zu > %.3g", CASE_ARGS(k), n,
                          qn_simd_name((qn_simd)simd), e, at, KC_REL_TOL);
            }
            free(X);
            free(Y);
        }
        kc_free(&c);
    }
}

/* 6 x 40, groups of 16 (3 per row), 2 outliers per row, permuted. */
static qn_synth *valid(void)
{
    qn_synth *s;
    qn_synth_opts o = { .fmt = QN_FMT_SPQR, .d_out = 6, .d_in = 40, .bits = 3, .stat_bits = 3, .beta1 = 16,
                        .beta2 = 4, .outlier_frac = 0.05, .permute = true, .seed = 3 };
    cr_assert_eq(qn_synth_create(&s, &o, NULL), QN_OK);
    cr_assert_eq(s->spqr.nnz, 12);
    cr_assert_eq(qn_spqr_validate(&s->spqr, "t", NULL), QN_OK);
    return s;
}

static void expect_bad(qn_synth *s, qn_status want, const char *needle)
{
    qn_err err = {0};
    qn_linear lin;
    qn_status got = qn_linear_init(&lin, QN_FMT_SPQR, s->spqr.d_out, s->spqr.d_in, &s->spqr,
                                   "model.layers.5.mlp.down_proj", &err);
    cr_expect_eq(got, want, "expected %s, got %s: %s", qn_status_name(want), qn_status_name(got), err.msg);
    cr_expect(strstr(err.msg, "model.layers.5.mlp.down_proj: ") == err.msg, "message names the tensor: %s", err.msg);
    cr_expect(strstr(err.msg, needle), "message mentions '%s': %s", needle, err.msg);
    qn_synth_free(s);
}

static int32_t *row_ptr(qn_synth *s) { return (int32_t *)s->spqr.row_ptr; }

Test(spqr_cpu, validator_rejects_a_row_pointer_past_the_end)
{
    qn_synth *s = valid();
    row_ptr(s)[3] = 900;
    expect_bad(s, QN_ERR_FORMAT, "row_ptr[3] = 900 is past the end of the 12 outliers");
}

Test(spqr_cpu, validator_rejects_a_decreasing_row_pointer)
{
    qn_synth *s = valid();
    row_ptr(s)[2] = 1;
    expect_bad(s, QN_ERR_FORMAT, "row_ptr[2] = 1 is below row_ptr[1] = 2");
}

Test(spqr_cpu, validator_rejects_a_last_row_pointer_short_of_nnz)
{
    qn_synth *s = valid();
    row_ptr(s)[6] = 11;
    expect_bad(s, QN_ERR_FORMAT, "row_ptr[6] = 11, expected the 12 outliers");
}

Test(spqr_cpu, validator_rejects_a_first_row_pointer_not_zero)
{
    qn_synth *s = valid();
    row_ptr(s)[0] = -4;
    expect_bad(s, QN_ERR_FORMAT, "row_ptr[0] = -4, expected 0");
}

Test(spqr_cpu, validator_rejects_a_column_index_out_of_range)
{
    qn_synth *s = valid();
    ((uint16_t *)s->spqr.col_idx)[5] = 40;
    expect_bad(s, QN_ERR_FORMAT, "col_idx[5] = 40 (row 2) is out of range for 40 columns");
}

Test(spqr_cpu, validator_rejects_a_permutation_with_a_repeat)
{
    qn_synth *s = valid();
    int32_t *perm = (int32_t *)s->spqr.perm;
    perm[9] = perm[3];
    expect_bad(s, QN_ERR_FORMAT, "repeats an earlier column");
}

Test(spqr_cpu, validator_rejects_a_permutation_out_of_range)
{
    qn_synth *s = valid();
    ((int32_t *)s->spqr.perm)[0] = -1;
    expect_bad(s, QN_ERR_FORMAT, "perm[0] = -1 is out of range");
}

Test(spqr_cpu, validator_rejects_statistics_of_the_wrong_size)
{
    qn_synth *s = valid();
    s->spqr.zero_stats_nbytes -= 4;
    expect_bad(s, QN_ERR_SHAPE, "zero statistics hold");
}

Test(spqr_cpu, validator_rejects_codes_of_the_wrong_size)
{
    qn_synth *s = valid();
    s->spqr.codes_nbytes += 1;
    expect_bad(s, QN_ERR_SHAPE, "codes hold");
}

Test(spqr_cpu, validator_rejects_an_outlier_array_shorter_than_nnz)
{
    qn_synth *s = valid();
    s->spqr.values_nbytes = 20;
    expect_bad(s, QN_ERR_SHAPE, "values hold 20 bytes, expected 24");
}

Test(spqr_cpu, validator_rejects_a_non_finite_outlier)
{
    qn_synth *s = valid();
    ((uint16_t *)s->spqr.values)[11] = 0xfc00;   /* -inf */
    expect_bad(s, QN_ERR_FORMAT, "values[11]");
}

Test(spqr_cpu, validator_rejects_too_many_columns_for_uint16_indices)
{
    qn_synth *s = valid();
    s->spqr.d_in = 70000;
    expect_bad(s, QN_ERR_UNSUPPORTED, "65536 columns");
}
