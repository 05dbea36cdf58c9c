/* test_spqr_hf.c: the Hugging Face SpQR tiles: bit positions as the spqr_quant
   kernel reads them, the round trip quench-spqr -> tiles -> dense weights
   against qn_spqr_dequantize (within the kernel's fp16 arithmetic), partial
   tiles, corrupt tensors refused with a message, and the folder the
   pipeline writes beside its own. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dtype.h"
#include "engine/fileio.h"
#include "engine/model.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "engine/safetensors.h"
#include "engine/spqr.h"
#include "engine/spqr_hf.h"
#include "support.h"

/* fp16 arithmetic in the kernel: a few roundings of 2^-11 relative each, on
   values up to |scale| * 7 + |zero|; relative to the layer's largest weight. */
#define HF_REL_TOL 4e-3

static float frand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (float)((*state >> 8) & 0xFFFF) / 65536.0f - 0.5f;
}

/* A SpQR w3 16x16 layer of d_out x d_in quantized from a random problem with outliers and act_order. */
static void quantize_random(size_t d_out, size_t d_in, qn_spqr_layer *L, float **W_hat)
{
    unsigned st = 7;
    float *W = malloc(d_out * d_in * sizeof *W), *X = malloc(4 * d_in * d_in * sizeof *X);
    float *H = calloc(d_in * d_in, sizeof *H);
    for (size_t i = 0; i < d_out * d_in; i++) W[i] = frand(&st) * (i % 37 == 0 ? 8.0f : 1.0f);
    for (size_t i = 0; i < 4 * d_in * d_in; i++) X[i] = frand(&st) * (1.0f + (float)(i % d_in) / (float)d_in);
    for (size_t s = 0; s < 4 * d_in; s++)
        for (size_t a = 0; a < d_in; a++)
            for (size_t b = 0; b < d_in; b++) H[a * d_in + b] += X[s * d_in + a] * X[s * d_in + b];
    qn_layer_problem p = { .name = "random", .d_out = d_out, .d_in = d_in, .W = W, .H = H };
    qn_spqr_opts o = qn_spqr_opts_default();
    o.outlier_threshold = 0.2;
    qn_layer_result res = {0};
    qn_err err = {0};
    cr_assert_eq(qn_spqr_quantize_layer(&p, &o, (qn_event_sink){0}, NULL, &res, L, &err), QN_OK, "%s", err.msg);
    cr_assert(L->n_outliers > 0 && L->perm, "the random layer should have outliers and a permutation");
    *W_hat = res.W_hat;
    free(W);
    free(X);
    free(H);
}

static void check_round_trip(size_t d_out, size_t d_in)
{
    qn_spqr_layer L;
    float *W_hat;
    quantize_random(d_out, d_in, &L, &W_hat);
    qn_spqr_hf_linear h;
    qn_err err = {0};
    cr_assert_eq(qn_spqr_hf_pack(&L, &h, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(h.n_words, ((d_out + 15) / 16) * ((d_in + 15) / 16) * 16);
    cr_assert_eq(h.nnz, L.n_outliers);
    float *back = malloc(d_out * d_in * sizeof *back);
    qn_spqr_hf_dequantize(&h, back);
    float big = 0;
    for (size_t i = 0; i < d_out * d_in; i++) big = fmaxf(big, fabsf(W_hat[i]));
    for (size_t i = 0; i < d_out * d_in; i++)
        cr_assert(fabsf(back[i] - W_hat[i]) <= HF_REL_TOL * big, "%zux%zu: weight %zu is %g, quench-spqr %g", d_out, d_in,
                  i, back[i], W_hat[i]);
    /* outliers: dense + stored difference gives the outlier to fp16 precision */
    for (size_t r = 0; r < d_out; r++)
        for (uint32_t k = L.row_ptr[r]; k < L.row_ptr[r + 1]; k++) {
            size_t c = L.perm[L.col_idx[k]];
            float want = qn_f16_to_f32(L.values[k]);
            cr_assert(fabsf(back[r * d_in + c] - want) <= 2e-3f * fabsf(want) + 1e-6f, "outlier (%zu, %zu): %g vs %g", r,
                      c, back[r * d_in + c], want);
        }
    free(back);
    free(W_hat);
    qn_spqr_hf_linear_done(&h);
    qn_spqr_layer_done(&L);
}

Test(spqr_hf, round_trip_full_tiles) { check_round_trip(48, 64); }
Test(spqr_hf, round_trip_partial_tiles) { check_round_trip(40, 172); }

/* Bit positions re-derived from the kernel (spqr_quant inference_kernels: TileArray::push,
   SecondOrder, RowBits): one 16x16 tile with known codes and statistics. */
Test(spqr_hf, tile_bits_as_the_kernel_reads_them)
{
    qn_spqr_opts o = qn_spqr_opts_default();
    qn_spqr_layer L;
    qn_err err = {0};
    cr_assert_eq(qn_spqr_layer_init(&L, &o, 16, 16, &err), QN_OK, "%s", err.msg);
    for (size_t r = 0; r < 16; r++) {
        for (size_t j = 0; j < 16; j++) L.codes[r * 16 + j] = (uint8_t)((r + 3 * j) % 8);
        L.scale_codes[r] = (uint8_t)(r % 8);
        L.zero_codes[r] = (uint8_t)((7 - r) % 8);
    }
    L.scale_scale[0] = 0x1111;
    L.zero_scale[0] = 0x2222;
    L.scale_zero[0] = 0x3333;
    L.zero_zero[0] = 0x4444;
    for (size_t j = 0; j < 16; j++) L.perm[j] = (uint32_t)(15 - j);
    qn_spqr_hf_linear h;
    cr_assert_eq(qn_spqr_hf_pack(&L, &h, &err), QN_OK, "%s", err.msg);
    uint64_t so = 0x4444333322221111ull;   /* ss.x, ss.y (zero's scale), zz.x (scale's zero), zz.y */
    for (size_t k = 0; k < 16; k++) {
        uint64_t w = h.dense_weights[k];
        cr_assert_eq(w & 7, k % 8, "row %zu scale code", k);
        cr_assert_eq(w >> 3 & 7, (7 - k) % 8, "row %zu zero code", k);
        for (size_t l = 0; l < 16; l++) cr_assert_eq(w >> (6 + 3 * l) & 7, (k + 3 * l) % 8, "row %zu code %zu", k, l);
        cr_assert_eq(w >> 54 & 0xFF, so >> (8 * (k / 2)) & 0xFF, "row %zu second-order byte", k);
        cr_assert_eq(w >> 62, 0);
    }
    cr_assert_eq((uint32_t)h.in_perm[0], 15u | 14u << 16);
    cr_assert_eq((uint32_t)h.in_perm[7], 1u | 0u << 16);
    for (size_t r = 0; r <= 16; r++) cr_assert_eq(h.row_offsets[r], 0);
    qn_spqr_hf_linear_done(&h);
    qn_spqr_layer_done(&L);
}

Test(spqr_hf, refuses_other_configurations)
{
    qn_spqr_opts o = qn_spqr_opts_default();
    o.bits = 4;
    qn_spqr_layer L;
    qn_spqr_hf_linear h;
    qn_err err = {0};
    cr_assert_eq(qn_spqr_layer_init(&L, &o, 16, 32, &err), QN_OK);
    cr_assert_eq(qn_spqr_hf_pack(&L, &h, &err), QN_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "w3"), "%s", err.msg);
    qn_spqr_layer_done(&L);
    o.bits = 3;
    cr_assert_eq(qn_spqr_layer_init(&L, &o, 16, 33, &err), QN_OK);
    cr_assert_eq(qn_spqr_hf_pack(&L, &h, &err), QN_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "even"), "%s", err.msg);
    qn_spqr_layer_done(&L);
}

/* Writes the packed layer to a safetensors file (after a 1-byte tensor when misalign, so that
   every tensor sits at an odd offset), lets `spoil` damage one tensor, reads it back. */
static qn_status read_back(const qn_spqr_hf_linear *h, bool misalign, void (*spoil)(qn_tensor_set *), char *msg,
                           size_t cap)
{
    char dir[256], path[300];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    qn_tensor_set s = {0};
    qn_err err = {0};
    uint8_t byte = 0;
    int64_t one[1] = { 1 };
    if (misalign) cr_assert_eq(qn_tensor_set_copy(&s, "a_byte", QN_DTYPE_U8, 1, one, &byte, 1, &err), QN_OK);
    cr_assert_eq(qn_spqr_hf_put(&s, "l", h, &err), QN_OK, "%s", err.msg);
    if (spoil) spoil(&s);
    cr_assert_eq(qn_tensor_set_write(&s, path, NULL, &err), QN_OK, "%s", err.msg);
    qn_tensor_set_clear(&s);
    qn_st_file *f;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    qn_spqr_hf_linear g;
    qn_status st = qn_spqr_hf_get(qn_raw_lookup_st(f), "l", h->d_out, h->d_in, &g, &err);
    if (!st) {
        float *a = malloc(h->d_out * h->d_in * sizeof *a), *b = malloc(h->d_out * h->d_in * sizeof *b);
        qn_spqr_hf_dequantize(h, a);
        qn_spqr_hf_dequantize(&g, b);
        cr_assert_eq(memcmp(a, b, h->d_out * h->d_in * sizeof *a), 0, "read back differs");
        free(a);
        free(b);
        qn_spqr_hf_linear_done(&g);
    }
    snprintf(msg, cap, "%s", err.msg);
    qn_st_close(f);
    ts_rmtree(dir);
    return st;
}

static uint32_t *entry_u32(qn_tensor_set *s, const char *name)
{
    return (uint32_t *)qn_tensor_set_find(s, name)->data;
}
static void bad_row_offsets(qn_tensor_set *s) { entry_u32(s, "l.row_offsets")[3] = 100000; }
static void bad_column(qn_tensor_set *s) { entry_u32(s, "l.col_vals")[0] |= 0xFFFF; }
static void bad_perm(qn_tensor_set *s) { entry_u32(s, "l.in_perm")[1] = entry_u32(s, "l.in_perm")[0]; }

Test(spqr_hf, corrupt_tensors_are_refused)
{
    qn_spqr_layer L;
    float *W_hat;
    quantize_random(40, 64, &L, &W_hat);
    qn_spqr_hf_linear h;
    qn_err err = {0};
    char msg[512];
    cr_assert_eq(qn_spqr_hf_pack(&L, &h, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(read_back(&h, false, NULL, msg, sizeof msg), QN_OK, "%s", msg);
    cr_assert_eq(read_back(&h, true, NULL, msg, sizeof msg), QN_OK, "misaligned tensors: %s", msg);
    cr_assert_eq(read_back(&h, false, bad_row_offsets, msg, sizeof msg), QN_ERR_FORMAT);
    cr_assert(strstr(msg, "row_offsets"), "%s", msg);
    cr_assert_eq(read_back(&h, false, bad_column, msg, sizeof msg), QN_ERR_FORMAT);
    cr_assert(strstr(msg, "col_vals"), "%s", msg);
    cr_assert_eq(read_back(&h, false, bad_perm, msg, sizeof msg), QN_ERR_FORMAT);
    cr_assert(strstr(msg, "in_perm"), "%s", msg);
    qn_spqr_hf_linear_done(&h);
    qn_spqr_layer_done(&L);
    free(W_hat);
}

/* fp16 embeddings and norms plus the kernel's fp16 arithmetic: observed 4e-5 relative on 100 chunks. */
#define HF_PPL_REL_TOL 1e-3

/* spqr-3.6 writes DIR/hf-spqr: transformers' SpQRConfig with a shape per tensor, and the
   folder runs (dequantized as the kernel computes) to the perplexity of quench's own layout. */
Test(spqr_hf, quantize_writes_the_hugging_face_folder, .timeout = 240)
{
    char dir[128], out[256], hf[300], path[360];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    snprintf(hf, sizeof hf, "%s/" QN_SPQR_HF_DIR, out);
    ts_quantize_small("spqr-3.6", out);
    snprintf(path, sizeof path, "%s/config.json", hf);
    json_t *root = json_load_file(path, 0, NULL);
    cr_assert(root, "no %s", path);
    json_t *qc = json_object_get(root, "quantization_config");
    cr_assert_str_eq(json_string_value(json_object_get(qc, "quant_method")), "spqr");
    cr_assert_eq(json_integer_value(json_object_get(qc, "bits")), 3);
    cr_assert_eq(json_integer_value(json_object_get(qc, "beta1")), 16);
    cr_assert_eq(json_integer_value(json_object_get(qc, "beta2")), 16);
    cr_assert_str_eq(json_string_value(json_object_get(root, "torch_dtype")), "float16");
    json_t *shapes = json_object_get(qc, "shapes");
    snprintf(path, sizeof path, "%s/model.safetensors", hf);
    qn_st_file *f;
    qn_err err = {0};
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    size_t n_quantized = 0;
    for (size_t i = 0; i < qn_st_count(f); i++) {
        const qn_st_tensor *t = qn_st_at(f, i);
        if (!strstr(t->name, "_proj.")) {
            cr_expect_eq(t->dtype, QN_DTYPE_F16, "%s is not fp16", t->name);
            continue;
        }
        cr_expect_eq((uintptr_t)t->data % qn_dtype_size(t->dtype), 0, "%s is not aligned for %s", t->name,
                     qn_dtype_name(t->dtype));
        char key[300];
        snprintf(key, sizeof key, "%s.shape", t->name);
        cr_assert_eq(json_integer_value(json_object_get(shapes, key)), t->shape[0], "shapes[%s]", key);
        n_quantized++;
    }
    cr_expect_eq(n_quantized, 5 * 7 * 4, "%zu quantized tensors", n_quantized);
    cr_expect_eq(json_object_size(shapes), n_quantized);
    qn_st_close(f);
    json_decref(root);
    const char *args[] = { "inspect", hf, "--json", NULL };
    ts_run_result ins = ts_run_quench(args);
    cr_assert_eq(ins.status, 0, "%s", ins.err);
    json_t *j = json_loads(ins.out, 0, NULL);
    cr_assert(j, "inspect --json is not JSON: %s", ins.out);
    json_t *quant = json_object_get(j, "quantization");
    cr_expect_str_eq(json_string_value(json_object_get(quant, "quant_method")), "spqr");
    cr_expect(strstr(json_string_value(json_object_get(quant, "summary")), "Hugging Face SpQR"), "%s", ins.out);
    json_decref(j);
    ts_run_free(&ins);
    double ours = ts_folder_ppl(out, 10), theirs = ts_folder_ppl(hf, 10);
    cr_expect(fabs(theirs - ours) / ours <= HF_PPL_REL_TOL, "ppl %.5f (hf-spqr) vs %.5f (quench-spqr)", theirs, ours);
    /* `quench export-spqr-hf RUN OUT` writes the same folder from the finished run */
    char again[320], a_path[400], b_path[400];
    snprintf(again, sizeof again, "%s/again", dir);
    const char *exp[] = { "export-spqr-hf", out, again, NULL };
    ts_run_result ex = ts_run_quench(exp);
    cr_assert_eq(ex.status, 0, "%s", ex.err);
    ts_run_free(&ex);
    static const char *const files[] = { "model.safetensors", "config.json", "tokenizer.json" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(a_path, sizeof a_path, "%s/%s", hf, files[i]);
        snprintf(b_path, sizeof b_path, "%s/%s", again, files[i]);
        cr_expect(ts_files_equal(a_path, b_path), "%s differs from %s", b_path, a_path);
    }
    ts_rmtree(dir);
}

/* w4 has no Hugging Face layout: nothing is written beside quench's own, and export-spqr-hf refuses. */
Test(spqr_hf, other_configurations_write_no_folder, .timeout = 240)
{
    char dir[128], out[256], hf[300];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    snprintf(hf, sizeof hf, "%s/" QN_SPQR_HF_DIR, out);
    ts_quantize_small("spqr-4.6-near-lossless", out);
    cr_expect(!qn_path_exists(hf), "%s exists", hf);
    const char *exp[] = { "export-spqr-hf", out, hf, NULL };
    ts_run_result ex = ts_run_quench(exp);
    cr_expect_eq(ex.status, 1, "export-spqr-hf of a w4 run: status %d", ex.status);
    cr_expect(strstr(ex.err, "w3"), "%s", ex.err);
    cr_expect(!qn_path_exists(hf), "%s exists after a refused export", hf);
    ts_run_free(&ex);
    ts_rmtree(dir);
}
