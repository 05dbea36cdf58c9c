/* test_gptq.c: GPTQ against the research code's figures on synthetic-r512, a
   hand-checkable case where GPTQ is RTN, damping retries, dead inputs, progress
   and cancellation. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gptq.h"
#include "engine/layer_file.h"
#include "engine/rtn.h"
#include "support.h"

/* The bar: at most 2% above the research code's relative error. */
#define REF_ERROR_RATIO 1.02
/* Listed bits have at most 3 decimals: equal means within half of the last digit. */
#define REF_BITS_TOL 0.0005


Test(gptq, matches_research_code_on_synthetic_r512)
{
    json_t *root = json_load_file(ts_shared("reference/layer-reference.json"), 0, NULL);
    cr_assert(root, "cannot read layer-reference.json");
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared("layers/synthetic-r512.safetensors"), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    static const struct { const char *config; int bits; } cases[] = {
        { "2-bit per-row, identity order, damp 0.01", 2 },
        { "3-bit per-row, identity order, damp 0.01", 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ref = ts_layer_reference(root, "gptq", NULL, cases[i].config);
        cr_assert(ref, "layer-reference.json has no gptq '%s'", cases[i].config);
        double ref_err = json_real_value(json_object_get(ref, "relative_error"));
        double ref_bits = json_number_value(json_object_get(ref, "bits"));
        qn_gptq_opts o = qn_gptq_opts_default();
        o.bits = cases[i].bits;
        o.percdamp = 0.01;
        o.act_order = false;
        qn_layer_result r;
        cr_assert_eq(qn_gptq_quantize_layer(&p, &o, (qn_event_sink){0}, NULL, &r, NULL, &err), QN_OK, "%s", err.msg);
        cr_expect(r.relative_error <= REF_ERROR_RATIO * ref_err, "gptq %s: relative error %.5f > %.2f x %.5f",
                  cases[i].config, r.relative_error, REF_ERROR_RATIO, ref_err);
        cr_expect(fabs(r.bits - ref_bits) <= REF_BITS_TOL, "gptq %s: bits %.4f, research code %.4f", cases[i].config,
                  r.bits, ref_bits);
        qn_layer_result_done(&r);
    }
    qn_layer_file_done(&lf);
    json_decref(root);
}

Test(gptq, beats_rtn_and_act_order_helps_on_synthetic_r512)
{
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared("layers/synthetic-r512.safetensors"), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_rtn_opts ro = { .bits = 3, .groupsize = 0 };
    qn_gptq_opts go = qn_gptq_opts_default();
    go.bits = 3;
    qn_layer_result rtn, gptq, act;
    cr_assert_eq(qn_rtn_quantize_layer(&p, &ro, &rtn, NULL, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &gptq, NULL, &err), QN_OK, "%s", err.msg);
    go.act_order = true;
    qn_rtn_layer L;
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &act, &L, &err), QN_OK, "%s", err.msg);
    cr_expect(gptq.relative_error < rtn.relative_error, "gptq %g vs rtn %g", gptq.relative_error, rtn.relative_error);
    cr_expect(act.relative_error < gptq.relative_error, "act_order %g vs identity %g", act.relative_error,
              gptq.relative_error);
    cr_assert_not_null(L.perm);
    for (size_t j = 1; j < p.d_in; j++)
        cr_assert(p.H[L.perm[j - 1] * (p.d_in + 1)] >= p.H[L.perm[j] * (p.d_in + 1)], "act_order by decreasing H_jj");
    float *back = malloc(p.d_out * p.d_in * sizeof *back);
    qn_rtn_dequantize(&L, back);
    cr_expect_arr_eq(back, act.W_hat, p.d_out * p.d_in * sizeof *back, "codes + statistics reproduce W_hat");
    free(back);
    qn_rtn_layer_done(&L);
    qn_layer_result_done(&rtn);
    qn_layer_result_done(&gptq);
    qn_layer_result_done(&act);
    qn_layer_file_done(&lf);
}

/* With H = I the inverse factor is diagonal: no error feedback, so GPTQ is RTN.
   Row 0 fits its 2-bit grid exactly; row 1: scale 2/3, zero 1.5, codes 0 2 2 3. */
Test(gptq, identity_hessian_is_rtn_by_hand)
{
    const float W[8] = { 0, 1, 2, 3, -1, 0.5f, 0.25f, 1 };
    const float H[16] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
    const float want[8] = { 0, 1, 2, 3, -1, 1.0f / 3, 1.0f / 3, 1 };
    qn_layer_problem p = { "2x4", 2, 4, W, H };
    qn_gptq_opts go = qn_gptq_opts_default();
    go.bits = 2;
    qn_rtn_opts ro = { .bits = 2, .groupsize = 0 };
    qn_layer_result g, r;
    qn_err err = {0};
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &g, NULL, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_rtn_quantize_layer(&p, &ro, &r, NULL, &err), QN_OK, "%s", err.msg);
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(g.W_hat[i], r.W_hat[i], "[%d] gptq %g rtn %g", i, g.W_hat[i], r.W_hat[i]);
        cr_expect(fabsf(g.W_hat[i] - want[i]) < 1e-3f, "[%d] %g, by hand %g (fp16 statistics)", i, g.W_hat[i], want[i]);
    }
    qn_layer_result_done(&g);
    qn_layer_result_done(&r);
}

static void count_events(void *ctx, const qn_event *ev)
{
    int *counts = ctx;
    counts[ev->kind]++;
    if (ev->kind == QN_EV_PROGRESS) counts[QN_EV_RUN_END + 1] = (int)ev->done;
}

/* eigenvalues 2.5 and -0.5, mean diag 1: damping 0.01 and 0.1 fail, 1.0 works. */
Test(gptq, indefinite_hessian_is_retried_with_more_damping)
{
    const float W[4] = { 1, -1, 0.5f, 2 }, H[4] = { 1, 1.5f, 1.5f, 1 };
    qn_layer_problem p = { "retry-layer", 2, 2, W, H };
    qn_gptq_opts go = qn_gptq_opts_default();
    int counts[QN_EV_RUN_END + 2] = {0};
    qn_event_sink sink = { count_events, counts };
    qn_layer_result r;
    qn_gptq_state st;
    qn_err err = {0};
    cr_assert_eq(qn_gptq_state_init(&st, &p, false, 0.01, sink, &err), QN_OK, "%s", err.msg);
    cr_expect_float_eq(st.percdamp, 1.0, 1e-12, "0.01 x 10 x 10");
    cr_expect_eq(counts[QN_EV_WARNING], 1, "one warning says the damping grew");
    qn_gptq_state_done(&st);
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, sink, NULL, &r, NULL, &err), QN_OK, "%s", err.msg);
    qn_layer_result_done(&r);
}

Test(gptq, hessian_indefinite_even_after_damping_names_the_layer)
{
    const float W[4] = { 1, -1, 0.5f, 2 }, H[4] = { 1, 1e4f, 1e4f, 1 };
    qn_layer_problem p = { "model.layers.3.mlp.up_proj", 2, 2, W, H };
    qn_gptq_opts go = qn_gptq_opts_default();
    qn_layer_result r;
    qn_err err = {0};
    cr_expect_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &r, NULL, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "model.layers.3.mlp.up_proj: hessian is not positive definite even with damping 10"),
              "%s", err.msg);
    cr_expect(strstr(err.msg, "tried 0.01, 0.1, 1, 10"), "%s", err.msg);
    cr_expect_null(r.W_hat);
}

Test(gptq, nan_in_hessian_or_weight_is_rejected)
{
    float W[4] = { 1, -1, 0.5f, 2 }, H[4] = { 1, 0, 0, NAN };
    qn_layer_problem p = { "nan-layer", 2, 2, W, H };
    qn_gptq_opts go = qn_gptq_opts_default();
    qn_layer_result r;
    qn_err err = {0};
    cr_expect_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &r, NULL, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "nan-layer: hessian has a non-finite value (nan) at [1, 1]"), "%s", err.msg);
    H[3] = 1;
    W[2] = INFINITY;
    cr_expect_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &r, NULL, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "weight has a non-finite value (inf) at [1, 0]"), "%s", err.msg);
}

Test(gptq, dead_inputs_are_zeroed)
{
    const float W[6] = { 1, 5, -1, 2, 7, 0.5f };
    const float H[9] = { 2, 0, 0.5f, 0, 0, 0, 0.5f, 0, 1 };   /* input 1 never fires */
    qn_layer_problem p = { "dead", 2, 3, W, H };
    qn_gptq_state st;
    qn_err err = {0};
    cr_assert_eq(qn_gptq_state_init(&st, &p, false, 0.01, (qn_event_sink){0}, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(st.n_dead, 1);
    cr_expect(st.W[1] == 0 && st.W[4] == 0, "dead column zeroed");
    qn_gptq_state_done(&st);
    qn_gptq_opts go = qn_gptq_opts_default();
    qn_layer_result r;
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, NULL, &r, NULL, &err), QN_OK, "%s", err.msg);
    cr_expect(isfinite(r.relative_error));
    qn_layer_result_done(&r);
}

Test(gptq, reports_progress_per_block_and_stops_when_cancelled)
{
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared("layers/synthetic-r256.safetensors"), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_gptq_opts go = qn_gptq_opts_default();
    int counts[QN_EV_RUN_END + 2] = {0};
    qn_layer_result r;
    cr_assert_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){ count_events, counts }, NULL, &r, NULL, &err), QN_OK,
                 "%s", err.msg);
    cr_expect_eq(counts[QN_EV_PROGRESS], 2, "256 columns = 2 blocks of 128");
    cr_expect_eq(counts[QN_EV_RUN_END + 1], 256, "last progress: all columns done");
    qn_layer_result_done(&r);
    atomic_bool cancel = true;
    cr_expect_eq(qn_gptq_quantize_layer(&p, &go, (qn_event_sink){0}, &cancel, &r, NULL, &err), QN_ERR_CANCELLED);
    cr_expect_null(r.W_hat);
    qn_layer_file_done(&lf);
}
