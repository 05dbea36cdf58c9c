/* test_rtn.c: the min-max grid by hand, groups, the compressed form and its bit count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "engine/dtype.h"
#include "engine/rtn.h"

/* Scales and zeros are stored as fp16: ~5e-4 relative; 1e-3 leaves room. */
#define FP16_STAT_TOL 1e-3

Test(rtn, fit_and_round_by_hand)
{
    const float x[4] = { -1.0f, 0.5f, 0.25f, 1.0f };
    float s, z;
    qn_rtn_fit(x, 4, 2, &s, &z);
    cr_expect_float_eq(s, 2.0f / 3.0f, 1e-7f, "scale = (max - min) / 3");
    cr_expect_float_eq(z, 1.5f, 1e-6f, "zero = -min / scale");
    const uint8_t want[4] = { 0, 2, 2, 3 };   /* round(x / s + z) = 0, 2.25, 1.875, 3 */
    for (int i = 0; i < 4; i++) cr_expect_eq(qn_rtn_code(x[i], s, z, 3), want[i], "x[%d]", i);
    cr_expect_float_eq(qn_rtn_dequant(2, s, z), 1.0f / 3.0f, 1e-6f);
}

Test(rtn, constant_input_gets_the_unit_range)
{
    const float x[3] = { 0.7f, 0.7f, 0.7f };
    float s, z;
    qn_rtn_fit(x, 3, 3, &s, &z);
    cr_expect_float_eq(s, 2.0f / 7.0f, 1e-7f, "[-1, 1] over 7 steps");
    cr_expect_float_eq(z, 3.5f, 1e-6f);
}

Test(rtn, codes_clamp_and_ties_go_to_even)
{
    cr_expect_eq(qn_rtn_code(100.0f, 1.0f, 0.0f, 3), 3);
    cr_expect_eq(qn_rtn_code(-100.0f, 1.0f, 0.0f, 3), 0);
    cr_expect_eq(qn_rtn_code(0.5f, 1.0f, 0.0f, 3), 0, "0.5 rounds to even 0");
    cr_expect_eq(qn_rtn_code(1.5f, 1.0f, 0.0f, 3), 2, "1.5 rounds to even 2");
    cr_expect_eq(qn_rtn_code(NAN, 1.0f, 0.0f, 3), 0);
}

Test(rtn, layer_with_groups_matches_its_compressed_form)
{
    enum { ROWS = 5, COLS = 37, GROUP = 8 };
    float W[ROWS * COLS], H[COLS * COLS] = {0};
    srand(7);
    for (int i = 0; i < ROWS * COLS; i++) W[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int j = 0; j < COLS; j++) H[j * COLS + j] = 1.0f;
    qn_layer_problem p = { "rtn-test", ROWS, COLS, W, H };
    qn_rtn_opts o = { .bits = 3, .groupsize = GROUP };
    qn_layer_result r;
    qn_rtn_layer L;
    qn_err err = {0};
    cr_assert_eq(qn_rtn_quantize_layer(&p, &o, &r, &L, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(L.n_groups, 5, "37 columns in groups of 8: 4 full and 1 partial");
    float back[ROWS * COLS];
    qn_rtn_dequantize(&L, back);
    for (int i = 0; i < ROWS * COLS; i++) {
        cr_assert_eq(back[i], r.W_hat[i], "dequantized [%d] %g != W_hat %g", i, back[i], r.W_hat[i]);
        cr_assert(L.codes[i] < 8);
        /* min-max with 3 bits: error at most half a step, plus fp16 statistics */
        float s = qn_f16_to_f32(L.scale[(i / COLS) * L.n_groups + (i % COLS) / GROUP]);
        cr_assert(fabsf(W[i] - r.W_hat[i]) <= 0.5f * s * (1 + FP16_STAT_TOL) + 1e-3f * s * 8,
                  "[%d] |%g - %g| > half step %g", i, W[i], r.W_hat[i], s);
    }
    cr_expect_float_eq(r.bits, 3.0 + 32.0 * 5 / 37, 1e-12);
    cr_expect(r.relative_error > 0 && r.relative_error < 0.05, "3-bit error %g", r.relative_error);
    qn_rtn_layer_done(&L);
    qn_layer_result_done(&r);
}

Test(rtn, bit_accounting)
{
    cr_expect_float_eq(qn_rtn_bits(3, 0, 4096), 3.0, 1e-12, "whole-row statistics are not counted");
    cr_expect_float_eq(qn_rtn_bits(3, 128, 4096), 3.25, 1e-12, "fp16 scale + zero per 128");
    cr_expect_float_eq(qn_rtn_bits(4, 4096, 4096), 4.0, 1e-12);
}

Test(rtn, rejects_bad_options)
{
    float W[4] = {0}, H[4] = { 1, 0, 0, 1 };
    qn_layer_problem p = { "tiny", 2, 2, W, H };
    qn_layer_result r;
    qn_err err = {0};
    qn_rtn_opts o = { .bits = 9, .groupsize = 0 };
    cr_expect_eq(qn_rtn_quantize_layer(&p, &o, &r, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "tiny") && strstr(err.msg, "bits"), "%s", err.msg);
    o = (qn_rtn_opts){ .bits = 2, .groupsize = 3 };
    cr_expect_eq(qn_rtn_quantize_layer(&p, &o, &r, NULL, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "group size"), "%s", err.msg);
}
