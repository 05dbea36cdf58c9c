/* test_aqlm.c: AQLM on one layer against the research code's figures
   (shared/reference/layer-reference.json), the 1x16 and 2x16 configurations on
   small layers, a layer whose rows are exact codeword sums, determinism, option
   checks, the result's layout, progress events and cancellation, and the fast
   search kernels against their plain twins. Timing is in bench/bench_aqlm.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/aqlm.h"
#include "engine/aqlm_impl.h"
#include "engine/dtype.h"
#include "engine/layer_file.h"
#include "support.h"

/* Listed bits have 2 or 3 decimals: equal means within half of the last digit. */
#define REF_BITS_TOL 0.005
/* fp16 codebooks and scales (relative precision 2^-11) cost ~1e-7 of a relative
   squared error on an exactly representable layer; 1e-5 leaves room. */
#define EXACT_LAYER_TOL 1e-5
/* Sums of g <= 16 products in another order and fused: ~1e-6 relative. */
#define KERNEL_REL_TOL 1e-5f
/* qn_relative_error recomputed from the decoded layer: the same sums, same order. */
#define DECODE_TOL 1e-12
/* A round without the look-ahead pass never raises the loss; float sums of the
   loss wobble by ~1e-7 relative. */
#define MONOTONE_SLACK 1e-6


/* Runs the research code's configuration ("2x8 g8 beam 1") on the shared layer
   with our defaults otherwise; error at most theirs, bits as listed. */
static void check_reference(const char *layer, const char *config)
{
    json_t *root = json_load_file(ts_shared("reference/layer-reference.json"), 0, NULL);
    cr_assert(root, "cannot read layer-reference.json");
    json_t *ref = ts_layer_reference(root, "aqlm", layer, config);
    cr_assert(ref, "layer-reference.json has no aqlm '%s' on %s", config, layer);
    double ref_err = json_number_value(json_object_get(ref, "relative_error"));
    double ref_bits = json_number_value(json_object_get(ref, "bits"));
    qn_aqlm_opts o = qn_aqlm_opts_default();
    cr_assert_eq(sscanf(config, "%dx%d g%zu beam %d", &o.M, &o.B, &o.g, &o.beam), 4, "config '%s'", config);
    char rel[128];
    snprintf(rel, sizeof rel, "layers/%s.safetensors", layer);
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared(rel), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_aqlm_result r;
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    cr_expect(r.layer.relative_error <= ref_err, "%s %s: relative error %.5f > research code's %.5f", layer, config,
              r.layer.relative_error, ref_err);
    cr_expect(fabs(r.layer.bits - ref_bits) <= REF_BITS_TOL, "%s %s: bits %.4f, research code %.4f", layer, config,
              r.layer.bits, ref_bits);
    qn_aqlm_result_done(&r);
    qn_layer_file_done(&lf);
    json_decref(root);
}

Test(aqlm, research_bar_r256_2x8_beam1) { check_reference("synthetic-r256", "2x8 g8 beam 1"); }
Test(aqlm, research_bar_r256_2x8_beam8) { check_reference("synthetic-r256", "2x8 g8 beam 8"); }
Test(aqlm, research_bar_r256_1x8_beam8) { check_reference("synthetic-r256", "1x8 g8 beam 8"); }
Test(aqlm, research_bar_r256_4x8_beam8) { check_reference("synthetic-r256", "4x8 g8 beam 8"); }
Test(aqlm, research_bar_r512_2x8_beam1) { check_reference("synthetic-r512", "2x8 g8 beam 1"); }

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static double gauss(uint64_t *s)
{
    double u = ((double)lcg(s) + 0.5) / 9007199254740992.0, v = ((double)lcg(s) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* W random, H = X^T X of 4 d_in samples of X with correlated, unevenly scaled
   features (the recipe of the shared layers). W: (d_out, d_in); H: (d_in, d_in). */
static void synth_layer(size_t d_out, size_t d_in, uint64_t seed, float *W, float *H)
{
    size_t n = 4 * d_in;
    float *X = malloc(n * d_in * sizeof *X), *scale = malloc(d_in * sizeof *scale);
    for (size_t e = 0; e < d_out * d_in; e++) W[e] = (float)(gauss(&seed) / sqrt((double)d_in));
    for (size_t c = 0; c < d_in; c++) scale[c] = (float)exp(0.5 * gauss(&seed));
    for (size_t t = 0; t < n; t++) {
        double shared = gauss(&seed);
        for (size_t c = 0; c < d_in; c++) X[t * d_in + c] = (float)((gauss(&seed) + 0.3 * shared) * scale[c]);
    }
    for (size_t a = 0; a < d_in; a++)
        for (size_t b = 0; b <= a; b++) {
            double acc = 0.0;
            for (size_t t = 0; t < n; t++) acc += (double)X[t * d_in + a] * X[t * d_in + b];
            H[a * d_in + b] = H[b * d_in + a] = (float)acc;
        }
    free(X);
    free(scale);
}

static int is_fp16(float x)
{
    return qn_f16_to_f32(qn_f32_to_f16(x)) == x;
}

/* Codes in range, fp16 values, usage counts that add up, the decoded layer equal
   to W_hat and its error equal to the reported one. */
static void check_layout(const qn_layer_problem *p, const qn_aqlm_result *r)
{
    size_t K = r->codebook_size, M = (size_t)r->M, n_codes = r->d_out * r->n_groups * M;
    cr_expect_eq(K, (size_t)1 << r->B);
    cr_expect_eq(r->n_groups * r->g, p->d_in);
    for (size_t q = 0; q < n_codes; q++) cr_assert(r->codes[q] < K, "code %zu = %u >= %zu", q, r->codes[q], K);
    for (size_t e = 0; e < M * K * r->g; e++)
        cr_assert(is_fp16(r->codebooks[e]), "codebook entry %zu = %.9g is not an fp16 value", e, r->codebooks[e]);
    for (size_t i = 0; i < r->d_out; i++) cr_assert(is_fp16(r->scales[i]), "scale %zu not fp16", i);
    for (size_t m = 0; m < M; m++) {
        size_t total = 0;
        for (size_t k = 0; k < K; k++) total += r->usage[m * K + k];
        cr_expect_eq(total, r->d_out * r->n_groups, "codebook %zu used %zu times", m, total);
    }
    float *W = malloc(p->d_out * p->d_in * sizeof *W);
    qn_aqlm_dequantize(r, W);
    size_t at;
    double d = ts_max_rel_diff(W, r->layer.W_hat, p->d_out * p->d_in, 1e-6, &at);
    cr_expect(d <= 1e-6, "decoded layer differs from W_hat by %.3g at %zu", d, at);
    double e = qn_relative_error(p->W, W, p->H, p->d_out, p->d_in);
    cr_expect(fabs(e - r->layer.relative_error) <= DECODE_TOL + 1e-6 * e, "decoded error %.9g, reported %.9g", e,
              r->layer.relative_error);
    free(W);
}

Test(aqlm, result_layout_and_bits)
{
    enum { D_OUT = 48, D_IN = 64 };
    float *W = malloc(D_OUT * D_IN * sizeof *W), *H = malloc(D_IN * D_IN * sizeof *H);
    synth_layer(D_OUT, D_IN, 7, W, H);
    qn_layer_problem p = { "synth", D_OUT, D_IN, W, H };
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.M = 2;
    o.B = 5;
    o.g = 4;
    qn_aqlm_result r;
    qn_err err = {0};
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    check_layout(&p, &r);
    double bits = (D_OUT * (D_IN / 4) * 2 * 5 + 2 * 32 * 4 * 16 + 16 * D_OUT) / (double)(D_OUT * D_IN);
    cr_expect(fabs(r.layer.bits - bits) < 1e-12, "bits %.6f, expected %.6f", r.layer.bits, bits);
    cr_expect(r.n_rounds >= 1 && r.loss_history[r.n_rounds] <= r.loss_history[0], "rounds %d", r.n_rounds);
    cr_expect(r.layer.relative_error < 0.5, "relative error %.4f", r.layer.relative_error);
    qn_aqlm_result_done(&r);
    free(W);
    free(H);
}

/* 65536 codewords per codebook: a layer with fewer groups than codewords is
   coded exactly up to fp16; two such codebooks too. */
Test(aqlm, sixteen_bit_codebooks_on_a_small_layer)
{
    enum { D_OUT = 32, D_IN = 64 };
    float *W = malloc(D_OUT * D_IN * sizeof *W), *H = malloc(D_IN * D_IN * sizeof *H);
    synth_layer(D_OUT, D_IN, 11, W, H);
    qn_layer_problem p = { "synth", D_OUT, D_IN, W, H };
    for (int M = 1; M <= 2; M++) {
        qn_aqlm_opts o = qn_aqlm_opts_default();
        o.M = M;
        o.B = 16;
        o.g = 8;
        o.max_rounds = 2;
        qn_aqlm_result r;
        qn_err err = {0};
        cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%dx16: %s", M, err.msg);
        check_layout(&p, &r);
        cr_expect(r.layer.relative_error < EXACT_LAYER_TOL, "%dx16: relative error %.3g on %d groups", M,
                  r.layer.relative_error, D_OUT * D_IN / 8);
        double bits = (D_OUT * (D_IN / 8) * M * 16.0 + M * 65536.0 * 8 * 16 + 16.0 * D_OUT) / (D_OUT * D_IN);
        cr_expect(fabs(r.layer.bits - bits) < 1e-9, "%dx16: bits %.3f, expected %.3f", M, r.layer.bits, bits);
        qn_aqlm_result_done(&r);
    }
    free(W);
    free(H);
}

/* Rows made of 16 fp16 codewords of equal norm (so every row has the same norm
   and the normalised groups are the codewords themselves): the optimum is exact. */
Test(aqlm, rows_of_exact_codewords_are_recovered)
{
    enum { D_OUT = 64, D_IN = 32, G = 4, K = 16 };
    float C[K][G], *W = malloc(D_OUT * D_IN * sizeof *W), *H = malloc(D_IN * D_IN * sizeof *H);
    uint64_t seed = 3;
    for (int k = 0; k < K; k++) {
        double nn = 0.0;
        for (int a = 0; a < G; a++) { C[k][a] = (float)gauss(&seed); nn += C[k][a] * C[k][a]; }
        for (int a = 0; a < G; a++) C[k][a] = qn_f16_to_f32(qn_f32_to_f16((float)(C[k][a] / sqrt(nn))));
    }
    synth_layer(D_OUT, D_IN, 5, W, H);                   /* H; W is overwritten below */
    for (int i = 0; i < D_OUT; i++)
        for (int j = 0; j < D_IN / G; j++) {
            int k = (int)(lcg(&seed) % K);
            for (int a = 0; a < G; a++) W[i * D_IN + j * G + a] = C[k][a];
        }
    qn_layer_problem p = { "exact", D_OUT, D_IN, W, H };
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.M = 1;
    o.B = 4;
    o.g = G;
    qn_aqlm_result r;
    qn_err err = {0};
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    cr_expect(r.layer.relative_error < EXACT_LAYER_TOL, "relative error %.3g on an exactly codable layer",
              r.layer.relative_error);
    size_t used = 0;
    for (int k = 0; k < K; k++) used += r.usage[k] > 0;
    cr_expect_eq(used, K, "%zu of %d codewords used", used, K);
    qn_aqlm_result_done(&r);
    free(W);
    free(H);
}

Test(aqlm, same_seed_same_result)
{
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared("layers/synthetic-r256.safetensors"), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.max_rounds = 2;
    o.kmeans_iters = 10;
    qn_aqlm_result a, b, c;
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &a, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &b, &err), QN_OK, "%s", err.msg);
    o.seed = 1;
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &c, &err), QN_OK, "%s", err.msg);
    size_t n_codes = p.d_out * a.n_groups * (size_t)a.M, n_books = (size_t)a.M * a.codebook_size * a.g;
    cr_expect(memcmp(a.codes, b.codes, n_codes * sizeof *a.codes) == 0, "same seed: codes differ");
    cr_expect(memcmp(a.codebooks, b.codebooks, n_books * sizeof *a.codebooks) == 0, "same seed: codebooks differ");
    cr_expect(memcmp(a.scales, b.scales, p.d_out * sizeof *a.scales) == 0, "same seed: scales differ");
    cr_expect(a.layer.relative_error == b.layer.relative_error);
    cr_expect(memcmp(a.codes, c.codes, n_codes * sizeof *a.codes) != 0, "another seed, the same codes");
    qn_aqlm_result_done(&a);
    qn_aqlm_result_done(&b);
    qn_aqlm_result_done(&c);
    qn_layer_file_done(&lf);
}

Test(aqlm, rejects_bad_options_with_clear_messages)
{
    float W[4 * 8] = {0}, H[8 * 8] = {0};
    for (int a = 0; a < 8; a++) H[a * 8 + a] = 1.0f;
    qn_layer_problem p = { "tiny", 4, 8, W, H };
    static const struct { const char *field; int value; qn_status want; const char *msg; } cases[] = {
        { "B", 0, QN_ERR_ARG, "codebook bits B = 0: must be in 1..16" },
        { "B", 17, QN_ERR_ARG, "codebook bits B = 17: must be in 1..16" },
        { "M", 0, QN_ERR_ARG, "codebooks M = 0: must be at least 1" },
        { "g", 3, QN_ERR_ARG, "group size g = 3 does not divide the 8 input features" },
        { "g", 0, QN_ERR_ARG, "group size g = 0" },
        { "out_group", 2, QN_ERR_UNSUPPORTED, "out group size 2: only 1 is supported" },
        { "beam", 0, QN_ERR_ARG, "beam size 0: must be at least 1" },
        { "tol", -1, QN_ERR_ARG, "tolerance -1: must be in [0, 1)" },
        { "cg_iters", 0, QN_ERR_ARG, "CG steps 0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qn_aqlm_opts o = qn_aqlm_opts_default();
        o.g = 4;
        if (!strcmp(cases[i].field, "B")) o.B = cases[i].value;
        if (!strcmp(cases[i].field, "M")) o.M = cases[i].value;
        if (!strcmp(cases[i].field, "g")) o.g = (size_t)cases[i].value;
        if (!strcmp(cases[i].field, "out_group")) o.out_group = (size_t)cases[i].value;
        if (!strcmp(cases[i].field, "beam")) o.beam = cases[i].value;
        if (!strcmp(cases[i].field, "tol")) o.tol = cases[i].value;
        if (!strcmp(cases[i].field, "cg_iters")) o.cg_iters = cases[i].value;
        qn_aqlm_result r = {0};
        qn_err err = {0};
        cr_expect_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), cases[i].want, "%s = %d: %s",
                     cases[i].field, cases[i].value, err.msg);
        cr_expect(strstr(err.msg, cases[i].msg) && strstr(err.msg, "tiny: "), "%s = %d: message '%s'",
                  cases[i].field, cases[i].value, err.msg);
        cr_expect_null(r.codes);
    }
    W[5] = NAN;
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.g = 4;
    qn_aqlm_result r = {0};
    qn_err err = {0};
    cr_expect_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, NULL, &r, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "weight has a non-finite value (nan) at [0, 5]"), "%s", err.msg);
}

typedef struct { int kmeans, beam, codebooks, last_round; double last_value; } event_count;

static void count_events(void *ctx, const qn_event *ev)
{
    event_count *c = ctx;
    if (ev->kind != QN_EV_PROGRESS) return;
    if (!strcmp(ev->stage, "aqlm.kmeans")) c->kmeans++;
    if (!strcmp(ev->stage, "aqlm.beam")) c->beam++;
    if (!strcmp(ev->stage, "aqlm.codebooks")) {
        c->codebooks++;
        c->last_round = (int)ev->done;
        c->last_value = ev->value;
    }
}

Test(aqlm, reports_progress_and_stops_when_cancelled)
{
    qn_layer_file lf;
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_load(&lf, ts_shared("layers/synthetic-r256.safetensors"), &err), QN_OK, "%s", err.msg);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.kmeans_iters = 10;
    o.feedback = 0;
    event_count c = {0};
    qn_aqlm_result r;
    cr_assert_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){ count_events, &c }, NULL, &r, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(c.kmeans, o.M, "one k-means event per codebook");
    cr_expect_eq(c.beam, r.n_rounds, "one code-search event per round");
    cr_expect_eq(c.codebooks, r.n_rounds + 1, "codebook events: initial fit and every round");
    cr_expect_eq(c.last_round, r.n_rounds);
    cr_expect(fabs(c.last_value - r.loss_history[r.n_rounds]) < 1e-12);
    for (int k = 1; k <= r.n_rounds; k++)   /* without the look-ahead pass every round descends */
        cr_expect(r.loss_history[k] <= r.loss_history[k - 1] * (1 + MONOTONE_SLACK), "round %d: %.6f after %.6f", k,
                  r.loss_history[k], r.loss_history[k - 1]);
    qn_aqlm_result_done(&r);
    atomic_bool cancel = true;
    qn_aqlm_result none = {0};
    cr_expect_eq(qn_aqlm_quantize(&p, &o, (qn_event_sink){0}, &cancel, &none, &err), QN_ERR_CANCELLED);
    cr_expect(strstr(err.msg, "cancelled"), "%s", err.msg);
    cr_expect_null(none.codes);
    cr_expect_null(none.layer.W_hat);
    qn_layer_file_done(&lf);
}

/* The fast kernels against their _ref twins on awkward sizes. */
Test(aqlm, kernels_match_reference_on_odd_shapes)
{
    static const size_t Ks[] = { 2, 5, 8, 37, 256, 1000 }, gs[] = { 1, 3, 8, 13 };
    qn_simd fast = qn_simd_clamp(QN_SIMD_AVX2);
    uint64_t seed = 9;
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
        for (size_t gi = 0; gi < sizeof gs / sizeof gs[0]; gi++) {
            size_t K = Ks[ki], g = gs[gi];
            float *CT = malloc(g * K * sizeof *CT), *n = malloc(K * sizeof *n), *e = malloc(g * sizeof *e);
            float *A = malloc(g * g * sizeof *A), *s1 = malloc(K * sizeof *s1), *s2 = malloc(K * sizeof *s2);
            for (size_t q = 0; q < g * K; q++) CT[q] = (float)gauss(&seed);
            for (size_t a = 0; a < g; a++) e[a] = (float)gauss(&seed);
            for (size_t a = 0; a < g; a++)
                for (size_t b = 0; b <= a; b++) A[a * g + b] = A[b * g + a] = (float)gauss(&seed) + (a == b) * 4.0f;
            qn_aqlm_gram_ref(CT, K, g, A, s1);
            qn_aqlm_gram(fast, CT, K, g, A, s2);
            size_t at;
            double d = ts_max_rel_diff(s2, s1, K, 1.0, &at);
            cr_expect(d <= KERNEL_REL_TOL, "gram K %zu g %zu: max rel diff %.3g at %zu", K, g, d, at);
            memcpy(n, s1, K * sizeof *n);
            qn_aqlm_scores_ref(CT, n, K, g, e, s1);
            qn_aqlm_scores(fast, CT, n, K, g, e, s2);
            d = ts_max_rel_diff(s2, s1, K, 1.0, &at);
            cr_expect(d <= KERNEL_REL_TOL, "scores K %zu g %zu: max rel diff %.3g at %zu", K, g, d, at);
            float b1, b2;
            uint32_t k1 = qn_aqlm_argmin_ref(CT, n, K, g, e, &b1), k2 = qn_aqlm_argmin(fast, CT, n, K, g, e, &b2);
            cr_expect(k1 < K && k2 < K);
            cr_expect(fabsf(b1 - b2) <= KERNEL_REL_TOL * fmaxf(1.0f, fabsf(b1)), "argmin K %zu g %zu: %.7g vs %.7g",
                      K, g, b1, b2);
            cr_expect(fabsf(s1[k2] - b1) <= KERNEL_REL_TOL * fmaxf(1.0f, fabsf(b1)),
                      "argmin K %zu g %zu: fast pick %u scores %.7g, best %.7g", K, g, k2, s1[k2], b1);
            float c1, c2;
            uint32_t j1 = qn_aqlm_argmin2_ref(CT, n, K, g, e, &b1, &c1);
            uint32_t j2 = qn_aqlm_argmin2(fast, CT, n, K, g, e, &b2, &c2);
            cr_expect(j1 == k1, "argmin2_ref K %zu g %zu: %u, argmin_ref %u", K, g, j1, k1);
            cr_expect(j2 < K && fabsf(s1[j2] - b1) <= KERNEL_REL_TOL * fmaxf(1.0f, fabsf(b1)));
            cr_expect(fabsf(c1 - c2) <= KERNEL_REL_TOL * fmaxf(1.0f, fabsf(c1)), "second K %zu g %zu: %.7g vs %.7g", K,
                      g, c1, c2);
            float lo2 = INFINITY;                        /* the second smallest by brute force */
            for (size_t k = 0; k < K; k++)
                if (k != k1 && s1[k] < lo2) lo2 = s1[k];
            cr_expect(c1 == lo2 || (K == 1 && isinf(c1)), "second K %zu g %zu: %.7g, brute force %.7g", K, g, c1, lo2);
            float thr = s1[K / 2], v1 = 0.0f, v2 = 0.0f;   /* about half the candidates fall below */
            for (size_t k0 = 0; k0 <= K; k0 += 3) {
                size_t n1 = qn_aqlm_next_below_ref(s1, K, k0, 0.5f, 2.0f, thr, &v1);
                size_t n2 = qn_aqlm_next_below(fast, s1, K, k0, 0.5f, 2.0f, thr, &v2);
                cr_expect(n1 == n2 && (n1 == K || v1 == v2), "next_below K %zu from %zu: %zu (%.7g) vs %zu (%.7g)",
                          K, k0, n1, v1, n2, v2);
            }
            free(CT); free(n); free(e); free(A); free(s1); free(s2);
        }
}
