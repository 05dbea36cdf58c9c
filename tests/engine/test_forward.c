/* test_forward.c: the forward pass against a float64 numpy reference
   (tests/data/stories260K_logits.json, from tests/tools/make_logits_reference.py),
   from every source format of the same model. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "engine/forward.h"
#include "engine/model.h"
#include "support.h"

/* f32 sums in another order than the f64 reference: observed ~1e-5 on logits of
   magnitude ~10; 1e-4 absolute leaves room without hiding a real bug (a wrong
   RoPE or GQA mapping moves logits by > 0.1). */
#define F32_LOGIT_TOL 1e-4
/* GGUF f16 rounds weights to 11 significant bits: logits move by ~1e-2. */
#define F16_LOGIT_TOL 5e-2
/* Q4_K_M here is mostly q5_0 (5-bit) weights: logits move by up to ~0.5. */
#define Q4KM_LOGIT_TOL 1.0

typedef struct {
    int32_t tokens[64];
    size_t n_tokens;
    size_t positions[8];
    size_t n_pos;
    float logits[8][512];
} ref_logits;

static void load_ref(ref_logits *r)
{
    json_error_t je;
    json_t *root = json_load_file("tests/data/stories260K_logits.json", 0, &je);
    cr_assert(root, "cannot read tests/data/stories260K_logits.json: %s", je.text);
    json_t *t = json_object_get(root, "tokens"), *p = json_object_get(root, "positions"),
           *l = json_object_get(root, "logits");
    r->n_tokens = json_array_size(t);
    r->n_pos = json_array_size(p);
    for (size_t i = 0; i < r->n_tokens; i++) r->tokens[i] = (int32_t)json_integer_value(json_array_get(t, i));
    for (size_t i = 0; i < r->n_pos; i++) {
        r->positions[i] = (size_t)json_integer_value(json_array_get(p, i));
        json_t *row = json_array_get(l, i);
        for (size_t j = 0; j < 512; j++) r->logits[i][j] = (float)json_number_value(json_array_get(row, j));
    }
    json_decref(root);
}

static double max_abs_diff(const float *a, const float *b, size_t n, size_t *at)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) { worst = d; *at = i; }
    }
    return worst;
}

/* Batch forward of the reference tokens; checks the reference rows. */
static void check_model(const char *path, double tol)
{
    ref_logits ref;
    load_ref(&ref);
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, path, NULL, &err), QN_OK, "%s: %s", path, err.msg);
    cr_assert_eq(m->cfg.vocab_size, 512);
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, 64, 64, &err), QN_OK, "%s", err.msg);
    const float *logits;
    cr_assert_eq(qn_forward(m, st, ref.tokens, ref.n_tokens, 0, true, &logits, &err), QN_OK, "%s", err.msg);
    for (size_t i = 0; i < ref.n_pos; i++) {
        size_t at = 0;
        double d = max_abs_diff(logits + ref.positions[i] * 512, ref.logits[i], 512, &at);
        cr_expect(d <= tol, "%s: position %zu: max |logit - reference| %.3g at token %zu > %.3g",
                  path, ref.positions[i], d, at, tol);
    }
    qn_state_free(st);
    qn_model_close(m);
}

Test(forward, llama2c_checkpoint_matches_f64_reference)
{
    check_model(ts_shared("models/stories260K/stories260K.bin"), F32_LOGIT_TOL);
}

Test(forward, hf_folder_matches_f64_reference)
{
    check_model(TS_STORIES_HF, F32_LOGIT_TOL);
}

Test(forward, gguf_f32_matches_f64_reference)
{
    check_model(ts_shared("models/stories260K/gguf/stories260K-f32.gguf"), F32_LOGIT_TOL);
}

Test(forward, gguf_f16_within_f16_rounding)
{
    check_model(ts_shared("models/stories260K/gguf/stories260K-f16.gguf"), F16_LOGIT_TOL);
}

Test(forward, gguf_q4_k_m_within_quantization_error)
{
    check_model(ts_shared("models/stories260K/gguf/stories260K-Q4_K_M.gguf"), Q4KM_LOGIT_TOL);
}

/* One token at a time through the KV cache must give the batch's logits. */
Test(forward, incremental_decode_equals_batch)
{
    ref_logits ref;
    load_ref(&ref);
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    qn_state *batch = NULL, *step = NULL;
    cr_assert_eq(qn_state_create(&batch, m, 64, 64, &err), QN_OK);
    cr_assert_eq(qn_state_create(&step, m, 64, 1, &err), QN_OK);
    const float *all, *one;
    cr_assert_eq(qn_forward(m, batch, ref.tokens, ref.n_tokens, 0, true, &all, &err), QN_OK);
    for (size_t t = 0; t < ref.n_tokens; t++) {
        cr_assert_eq(qn_forward(m, step, &ref.tokens[t], 1, t, false, &one, &err), QN_OK, "%s", err.msg);
        size_t at = 0;
        double d = max_abs_diff(one, all + t * 512, 512, &at);
        /* sgemv vs sgemm summation order only */
        cr_expect(d <= 1e-4, "position %zu: decode vs batch differ by %.3g at %zu", t, d, at);
    }
    qn_state_free(batch);
    qn_state_free(step);
    qn_model_close(m);
}

Test(forward, rejects_out_of_range_tokens_and_positions)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, 8, 4, &err), QN_OK);
    const float *l;
    int32_t bad[] = { 1, 512 };
    cr_expect_eq(qn_forward(m, st, bad, 2, 0, false, &l, &err), QN_ERR_ARG);
    int32_t ok[] = { 1, 2, 3, 4 };
    cr_expect_eq(qn_forward(m, st, ok, 4, 6, false, &l, &err), QN_ERR_ARG);
    qn_state *too_long = NULL;
    cr_expect_eq(qn_state_create(&too_long, m, 100000, 1, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "max_position_embeddings"), "message: %s", err.msg);
    qn_state_free(st);
    qn_model_close(m);
}

/* HF _compute_llama3_parameters with Llama-3.1's values: wavelengths longer than
   8192/1 are divided by 8, shorter than 8192/4 kept, the band between blended. */
Test(forward, llama3_rope_scaling_bands)
{
    qn_config c;
    qn_config_init(&c);
    c.head_dim = 128;
    c.rope_theta = 500000.0f;
    c.rope_scaling = QN_ROPE_SCALING_LLAMA3;
    c.rope_factor = 8;
    c.rope_low_freq_factor = 1;
    c.rope_high_freq_factor = 4;
    c.rope_orig_max_pos = 8192;
    double inv[64];
    qn_rope_inv_freq(&c, inv);
    for (int j = 0; j < 64; j++) {
        double base = 1.0 / pow(500000.0, 2.0 * j / 128.0), wl = 2 * M_PI / base;
        if (wl < 8192.0 / 4) cr_expect_float_eq(inv[j], base, 1e-15);
        else if (wl > 8192.0) cr_expect_float_eq(inv[j], base / 8, 1e-15);
        else cr_expect(inv[j] < base && inv[j] > base / 8, "band %d", j);
    }
    c.rope_scaling = QN_ROPE_SCALING_LINEAR;
    c.rope_factor = 4;
    qn_rope_inv_freq(&c, inv);
    cr_expect_float_eq(inv[1], 1.0 / pow(500000.0, 2.0 / 128.0) / 4, 1e-15);
}

typedef struct { size_t calls[QN_TAP_COUNT]; size_t dims[QN_TAP_COUNT]; } tap_counts;

static void count_tap(void *ctx, qn_tap_point where, const float *X, size_t n, size_t d)
{
    tap_counts *c = ctx;
    (void)X; (void)n;
    c->calls[where]++;
    c->dims[where] = d;
}

/* Chaining qn_forward_block over all layers, then the final norm and head,
   reproduces qn_forward; the taps see each linear group's input once per block. */
Test(forward, block_by_block_equals_full_forward)
{
    ref_logits ref;
    load_ref(&ref);
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    size_t n = ref.n_tokens, D = 64;
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, 64, 64, &err), QN_OK);
    float *x = malloc(n * D * sizeof *x), *xn = malloc(D * sizeof *xn), logits[512];
    for (size_t t = 0; t < n; t++) memcpy(x + t * D, m->embed + (size_t)ref.tokens[t] * D, D * sizeof *x);
    tap_counts counts = {0};
    for (int l = 0; l < m->cfg.n_layers; l++)
        cr_assert_eq(qn_forward_block(m, st, (size_t)l, x, n, (qn_tap){ .on_input = count_tap, .ctx = &counts }, &err), QN_OK, "%s", err.msg);
    for (int w = 0; w < QN_TAP_COUNT; w++) cr_expect_eq(counts.calls[w], 5);
    cr_expect_eq(counts.dims[QN_TAP_DOWN], 172);
    for (size_t i = 0; i < ref.n_pos; i++) {
        const float *xr = x + ref.positions[i] * D;
        float ss = 0;
        for (size_t j = 0; j < D; j++) ss += xr[j] * xr[j];
        float inv = 1.0f / sqrtf(ss / D + m->cfg.rms_eps);
        for (size_t j = 0; j < D; j++) xn[j] = m->final_norm[j] * inv * xr[j];
        cr_assert_eq(qn_linear_matvec(&m->lm_head, xn, logits, &err), QN_OK);
        size_t at = 0;
        double d = max_abs_diff(logits, ref.logits[i], 512, &at);
        cr_expect(d <= F32_LOGIT_TOL, "position %zu: %.3g at %zu", ref.positions[i], d, at);
    }
    free(x);
    free(xn);
    qn_state_free(st);
    qn_model_close(m);
}

/* A tap that stops after point k sees points 0..k only and leaves the block's input as it was. */
Test(forward, block_stops_at_its_tap)
{
    qn_model *m = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_model_open(&m, TS_STORIES_HF, NULL, &err), QN_OK, "%s", err.msg);
    size_t n = 16, D = 64;
    qn_state *st = NULL;
    cr_assert_eq(qn_state_create(&st, m, n, n, &err), QN_OK);
    float x[16 * 64], x0[16 * 64];
    for (size_t t = 0; t < n; t++) memcpy(x + t * D, m->embed + (t * 7 + 3) * D, D * sizeof *x);
    memcpy(x0, x, sizeof x);
    for (int k = 0; k < QN_TAP_COUNT; k++) {
        tap_counts counts = {0};
        qn_tap tap = { .on_input = count_tap, .ctx = &counts, .stop_after = k + 1 };
        cr_assert_eq(qn_forward_block(m, st, 1, x, n, tap, &err), QN_OK, "%s", err.msg);
        for (int w = 0; w < QN_TAP_COUNT; w++) cr_expect_eq(counts.calls[w], w <= k, "stop %d, point %d", k, w);
        cr_expect(memcmp(x, x0, sizeof x) == 0, "stopping at %d changed the block input", k);
    }
    cr_assert_eq(qn_forward_block(m, st, 1, x, n, (qn_tap){0}, &err), QN_OK);
    cr_expect(memcmp(x, x0, sizeof x) != 0, "the whole block left its input as it was");
    qn_state_free(st);
    qn_model_close(m);
}
