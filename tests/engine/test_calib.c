/* test_calib.c: calibration windows and the block-by-block pipeline, with
   simple quantizer callbacks whose effect is known. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calib.h"
#include "engine/forward.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "support.h"

Test(calib, windows_avoid_scored_halves_and_repeat_with_seed)
{
    size_t a[16], b[16], c[16];
    qn_err err = {0};
    cr_assert_eq(qn_calib_windows(100000, 16, 128, 7, 256, a, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_calib_windows(100000, 16, 128, 7, 256, b, &err), QN_OK);
    cr_assert_eq(qn_calib_windows(100000, 16, 100, 8, 256, c, &err), QN_OK);
    cr_expect(memcmp(a, b, sizeof a) == 0, "same seed, different windows");
    for (size_t i = 0; i < 16; i++) {
        cr_expect(a[i] % 256 == 0, "window %zu starts at %zu, inside a chunk's scored half", i, a[i]);
        cr_expect(c[i] % 256 + 100 <= 128, "window %zu [%zu, +100) reaches the scored half", i, c[i]);
        for (size_t j = 0; j < i; j++) cr_expect_neq(a[i], a[j], "windows %zu and %zu repeat", i, j);
    }
    cr_expect_eq(qn_calib_windows(1000, 16, 128, 7, 256, a, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "fewer than --nsamples"), "%s", err.msg);
    cr_expect_eq(qn_calib_windows(100000, 4, 200, 7, 256, a, &err), QN_ERR_ARG);
    cr_expect_eq(qn_calib_windows(1000, 6, 200, 7, 0, a, &err), QN_ERR_ARG);
}

/* The presets' windows on a WikiText-2-sized text (~290k tokens) stay out of
   what llama.cpp's protocol scores at ctx 512 and at ctx 256: each window ends
   by the middle of its chunk at both. A window placed anywhere else fails it. */
Test(calib, preset_windows_unscored_at_ctx_512_and_256)
{
    const qn_quant_config *q = &qn_preset_find("spqr-3.6")->config;
    size_t starts[128];
    qn_err err = {0};
    cr_assert_leq(q->nsamples, 128);
    cr_assert_eq(qn_calib_windows(290000, q->nsamples, q->seqlen, q->seed, q->eval_ctx, starts, &err), QN_OK, "%s",
                 err.msg);
    static const size_t ctxs[] = { 512, 256 };
    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < q->nsamples; i++)
            cr_expect(starts[i] % ctxs[c] + q->seqlen <= ctxs[c] / 2, "window [%zu, +%zu) is scored at ctx %zu",
                      starts[i], q->seqlen, ctxs[c]);
    /* len 64 at eval_ctx 512 may move inside the first 128 tokens of its chunk, never further */
    for (uint64_t seed = 0; seed < 8; seed++) {
        cr_assert_eq(qn_calib_windows(290000, 64, 64, seed, 512, starts, &err), QN_OK);
        for (size_t i = 0; i < 64; i++) cr_expect(starts[i] % 512 + 64 <= 128, "window at %zu", starts[i]);
    }
}

typedef struct { size_t calls; double step; double max_h_asym; } quant_ctx;

/* Rounds every weight to a multiple of step (0: exact copy). */
static qn_status round_to_step(void *ctx, qn_tensor_role role, int layer, const qn_layer_problem *p,
                               qn_layer_result *res, qn_err *err)
{
    (void)role; (void)layer; (void)err;
    quant_ctx *q = ctx;
    q->calls++;
    size_t n = p->d_out * p->d_in;
    res->W_hat = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        res->W_hat[i] = q->step ? (float)(round(p->W[i] / q->step) * q->step) : p->W[i];
    for (size_t i = 0; i < p->d_in; i++)
        for (size_t j = 0; j < i; j++)
            q->max_h_asym = fmax(q->max_h_asym, fabs(p->H[i * p->d_in + j] - p->H[j * p->d_in + i]));
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    res->bits = 32;
    return QN_OK;
}

typedef struct { size_t layer_events; double max_rel; } event_count;

static void count_events(void *ctx, const qn_event *ev)
{
    event_count *c = ctx;
    if (ev->kind != QN_EV_LAYER_DONE) return;
    const qn_calib_layer_event *le = ev->payload;
    c->layer_events++;
    if (le->result->relative_error > c->max_rel) c->max_rel = le->result->relative_error;
}

static void run_calib(qn_model *m, quant_ctx *q, event_count *ev)
{
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_err err = {0};
    cr_assert_eq(qn_ppl_tokenize_file(m, ts_shared("text/tinystories-valid-head.txt"), &tokens, &n, &err), QN_OK, "%s", err.msg);
    size_t starts[8];
    cr_assert_eq(qn_calib_windows(n, 8, 64, 1, 256, starts, &err), QN_OK);
    int32_t *win = malloc(8 * 64 * sizeof *win);
    for (size_t w = 0; w < 8; w++) memcpy(win + w * 64, tokens + starts[w], 64 * sizeof *win);
    qn_calib_plan plan = { .tokens = win, .n_windows = 8, .len = 64, .quantize = round_to_step, .quantize_ctx = q };
    cr_assert_eq(qn_calib_run(m, &plan, (qn_event_sink){ count_events, ev }, NULL, &err), QN_OK, "%s", err.msg);
    free(win);
    free(tokens);
}

/* An exact "quantizer" leaves the model as it was; every linear is visited once,
   with a symmetric Hessian. */
Test(calib, exact_quantizer_keeps_the_model, .timeout = 120)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    double before = ts_model_ppl(m, 20);
    quant_ctx q = { .step = 0 };
    event_count ev = {0};
    run_calib(m, &q, &ev);
    cr_expect_eq(q.calls, 35, "5 blocks x 7 linears");
    cr_expect_eq(ev.layer_events, 35);
    cr_expect(ev.max_rel < 1e-12, "exact copy has relative error %g", ev.max_rel);
    cr_expect(q.max_h_asym == 0, "H not symmetric: %g", q.max_h_asym);
    cr_expect(fabs(ts_model_ppl(m, 20) - before) < 1e-9, "ppl moved");
    qn_model_close(m);
}

/* A coarse rounding raises perplexity, and the reported errors grow with the step. */
Test(calib, coarse_rounding_degrades_measurably, .timeout = 120)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    double before = ts_model_ppl(m, 20);
    quant_ctx q = { .step = 0.05 };
    event_count ev = {0};
    run_calib(m, &q, &ev);
    cr_expect(ev.max_rel > 1e-4 && ev.max_rel < 1, "relative error %g", ev.max_rel);
    double after = ts_model_ppl(m, 20);
    cr_expect(after > before * 1.001, "ppl %.4f -> %.4f", before, after);
    qn_model_close(m);
}
