/* test_gguf.c: the GGUF reader, the ggml dequantizers and the Llama GGUF model
   source. The stories260K GGUF files (written by llama.cpp) are checked
   against the llama2.c checkpoint they were converted from: bit-exact for f32,
   within the rounding of each storage type otherwise. The dequantizers are
   checked against tests/data/ggml_vectors.bin (from gguf-py, see
   tests/tools/make_ggml_vectors.py). Patched copies of the f32 file cover each
   way a file can lie, each expecting one qn_status and a message naming the file. */
#include "engine/gguf.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support.h"
#include "engine/fileio.h"
#include "engine/ggml_quants.h"
#include "engine/model_gguf.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

#define F32_GGUF  "models/stories260K/gguf/stories260K-f32.gguf"
#define F16_GGUF  "models/stories260K/gguf/stories260K-f16.gguf"
#define Q4KM_GGUF "models/stories260K/gguf/stories260K-Q4_K_M.gguf"
#define L2C_BIN   "models/stories260K/stories260K.bin"
#define VECTORS   "tests/data/ggml_vectors.bin"

/* f16 storage: round to nearest keeps |x - x16| <= 2^-11 |x| for normals, and
   half of the 2^-24 subnormal step below them. */
#define F16_REL_TOL 0x1p-11
#define F16_ABS_TOL 0x1p-25
/* q8_0: d = amax/127 rounds each value within d/2 = amax/254; storing d in
   fp16 moves it by up to 2^-11 of itself, which |q| <= 127 turns into amax/2048. */
#define Q8_0_TOL_OF_AMAX (1.0 / 254 + 1.0 / 2048)
/* q5_0: d = -max/16 leaves the other end of the range at +16 levels, which
   clamps to 15 (ggml's quantize_row_q5_0_ref): error up to amax/16, plus the
   fp16 rounding of d times |q - 16| <= 16: amax/2048. */
#define Q5_0_TOL_OF_AMAX (1.0 / 16 + 1.0 / 2048)
/* gguf-py and our dequantizers do the same float operations in the same
   order; 1e-6 of the block's largest value allows for a different rounding
   of one product without hiding a wrong bit field (one level is >= 1/63 of it). */
#define DEQUANT_REL_TOL 1e-6

static char g_dir[256];
static void make_dir(void) { ts_mkdtemp(g_dir, sizeof g_dir); }
static void remove_dir(void) { ts_rmtree(g_dir); }
TestSuite(gguf, .init = make_dir, .fini = remove_dir);

/* ---- the llama2.c checkpoint, as the reference ---- */

typedef struct {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float *w;                                 /* all floats after the header */
    size_t n;
} l2c_model;

static l2c_model load_l2c(void)
{
    char *buf = NULL;
    size_t size = 0;
    qn_err err = {0};
    cr_assert_eq(qn_file_read_all(ts_shared(L2C_BIN), &buf, &size, &err), QN_OK, "%s", err.msg);
    l2c_model m;
    memcpy(&m, buf, 7 * sizeof(int32_t));
    m.n = (size - 28) / 4;
    m.w = malloc(m.n * sizeof *m.w);
    memcpy(m.w, buf + 28, m.n * sizeof *m.w);
    free(buf);
    cr_assert_eq(m.dim, 64);
    return m;
}

/* The llama2.c tensor behind a GGUF name (same row-major layout, Meta RoPE
   order), in llama2.c run.c memory_map_weights order; NULL when unknown. */
static const float *l2c_tensor(const l2c_model *m, const char *gguf_name, size_t *numel)
{
    size_t d = (size_t)m->dim, h = (size_t)m->hidden, L = (size_t)m->n_layers, v = (size_t)m->vocab;
    size_t kv = d * (size_t)m->n_kv_heads / (size_t)m->n_heads;
    const struct { const char *name; size_t per_layer; } order[] = {
        { "token_embd", v * d }, { "attn_norm", d }, { "attn_q", d * d }, { "attn_k", kv * d },
        { "attn_v", kv * d }, { "attn_output", d * d }, { "ffn_norm", d }, { "ffn_gate", h * d },
        { "ffn_down", d * h }, { "ffn_up", h * d }, { "output_norm", d },
    };
    int layer = -1;
    char stem[64] = "";
    if (sscanf(gguf_name, "blk.%d.%63[a-z_].weight", &layer, stem) != 2) {
        layer = -1;
        if (strcmp(gguf_name, "output.weight") == 0) gguf_name = "token_embd.weight"; /* shared classifier */
        sscanf(gguf_name, "%63[a-z_].weight", stem);
    }
    size_t off = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        bool global = i == 0 || i == 10;
        size_t count = global ? 1 : L;
        if (strcmp(order[i].name, stem) == 0 && (global == (layer < 0))) {
            *numel = order[i].per_layer;
            return m->w + off + (global ? 0 : (size_t)layer * order[i].per_layer);
        }
        off += count * order[i].per_layer;
    }
    return NULL;
}

static float *tensor_f32(const qn_gguf_file *f, const qn_gguf_tensor *t)
{
    float *x = malloc(t->nelements * sizeof *x);
    qn_err err = {0};
    cr_assert_eq(qn_gguf_tensor_to_f32(f, t, x, &err), QN_OK, "%s", err.msg);
    return x;
}

static qn_gguf_file *open_ok(const char *path)
{
    qn_gguf_file *f = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_gguf_open(&f, path, &err), QN_OK, "%s", err.msg);
    return f;
}

/* ---- metadata ---- */

Test(gguf, metadata_of_the_f32_file)
{
    const char *path = ts_shared(F32_GGUF);
    qn_gguf_file *f = open_ok(path);
    qn_err err = {0};
    cr_expect_eq(qn_gguf_version(f), 3);
    cr_expect_eq(qn_gguf_alignment(f), 32);
    cr_expect_eq(qn_gguf_kv_count(f), 19);
    cr_expect_str_eq(qn_gguf_kv_at(f, 0)->key, "tokenizer.ggml.tokens");

    const char *s;
    cr_assert_eq(qn_gguf_get_str(f, "general.architecture", &s, &err), QN_OK, "%s", err.msg);
    cr_expect_str_eq(s, "llama");
    uint32_t u;
    const struct { const char *key; uint32_t want; } ints[] = {
        { "llama.embedding_length", 64 }, { "llama.feed_forward_length", 172 }, { "llama.block_count", 5 },
        { "llama.attention.head_count", 8 }, { "llama.attention.head_count_kv", 4 },
        { "llama.context_length", 128 }, { "llama.rope.dimension_count", 8 },
        { "tokenizer.ggml.bos_token_id", 1 }, { "tokenizer.ggml.eos_token_id", 2 },
        { "tokenizer.ggml.padding_token_id", UINT32_MAX },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        cr_assert_eq(qn_gguf_get_u32(f, ints[i].key, &u, &err), QN_OK, "%s", err.msg);
        cr_expect_eq(u, ints[i].want, "%s = %u, expected %u", ints[i].key, u, ints[i].want);
    }
    float eps;
    cr_assert_eq(qn_gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps, &err), QN_OK);
    cr_expect_eq(eps, 1e-5f);

    const char *const *tokens;
    size_t n;
    cr_assert_eq(qn_gguf_get_str_arr(f, "tokenizer.ggml.tokens", &tokens, &n, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(n, 512);
    cr_expect_str_eq(tokens[0], "<unk>");
    cr_expect_str_eq(tokens[1], "<s>");
    cr_expect_str_eq(tokens[3], "<0x00>");
    float *scores;
    cr_assert_eq(qn_gguf_get_f32_arr(f, "tokenizer.ggml.scores", &scores, &n, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(n, 512);
    free(scores);
    int32_t *types;
    cr_assert_eq(qn_gguf_get_i32_arr(f, "tokenizer.ggml.token_type", &types, &n, &err), QN_OK, "%s", err.msg);
    cr_expect(n == 512 && types[0] == 2 && types[1] == 3 && types[3] == 6);
    free(types);

    /* wrong kinds and absent keys name the file and the key */
    cr_expect_eq(qn_gguf_get_u32(f, "general.architecture", &u, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "general.architecture"), "%s", err.msg);
    cr_expect_eq(qn_gguf_get_str(f, "no.such.key", &s, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "no.such.key"), "%s", err.msg);
    cr_expect_eq(qn_gguf_get_i32_arr(f, "tokenizer.ggml.scores", &types, &n, &err), QN_ERR_FORMAT);
    cr_expect_null(qn_gguf_find(f, "general.alignment"));

    cr_expect_eq(qn_gguf_tensor_count(f), 48);
    cr_expect_str_eq(qn_gguf_tensor_at(f, 0)->name, "token_embd.weight");
    const qn_gguf_tensor *t = qn_gguf_tensor_find(f, "blk.0.attn_k.weight");
    cr_assert_not_null(t);
    cr_expect(t->ndim == 2 && t->ne[0] == 64 && t->ne[1] == 32 && t->ne[2] == 1 && t->ne[3] == 1);
    cr_expect(t->type == QN_GGML_F32 && t->nbytes == 64 * 32 * 4 && t->nelements == 64 * 32);
    cr_expect_null(qn_gguf_tensor_find(f, "blk.9.attn_k.weight"));
    qn_gguf_close(f);
}

Test(gguf, q4_k_m_file_holds_the_expected_types)
{
    qn_gguf_file *f = open_ok(ts_shared(Q4KM_GGUF));
    size_t count[QN_GGML_TYPE_COUNT] = {0};
    for (size_t i = 0; i < qn_gguf_tensor_count(f); i++) count[qn_gguf_tensor_at(f, i)->type]++;
    cr_expect_eq(count[QN_GGML_Q5_0], 29);
    cr_expect_eq(count[QN_GGML_Q8_0], 3);
    cr_expect_eq(count[QN_GGML_F16], 5);
    cr_expect_eq(count[QN_GGML_F32], 11);
    qn_gguf_close(f);
}

/* ---- a hand-built file with every value type ---- */

typedef struct { unsigned char *b; size_t n; } bytes;

static void put(bytes *x, const void *p, size_t n)
{
    x->b = realloc(x->b, x->n + n);
    memcpy(x->b + x->n, p, n);
    x->n += n;
}
static void put_u32(bytes *x, uint32_t v) { put(x, &v, 4); }
static void put_u64(bytes *x, uint64_t v) { put(x, &v, 8); }
static void put_str(bytes *x, const char *s) { put_u64(x, strlen(s)); put(x, s, strlen(s)); }
static void put_key(bytes *x, const char *key, qn_gguf_type t) { put_str(x, key); put_u32(x, t); }

/* Version 2, alignment `align`: one key/value of each type, nested arrays of
   strings, an empty array; tensors "a" (f32 [4, 2]) and "b" (q8_0, 32 values). */
static bytes synthetic_file(uint32_t align)
{
    bytes x = { NULL, 0 };
    put(&x, "GGUF", 4); put_u32(&x, 2); put_u64(&x, 2); put_u64(&x, 16);
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 60000; int16_t i16 = -30000;
    int32_t i32 = -2000000000; float f32 = 1.5f; uint8_t yes = 1; double f64 = 0.25;
    put_key(&x, "u8", QN_GGUF_UINT8); put(&x, &u8, 1);
    put_key(&x, "i8", QN_GGUF_INT8); put(&x, &i8, 1);
    put_key(&x, "u16", QN_GGUF_UINT16); put(&x, &u16, 2);
    put_key(&x, "i16", QN_GGUF_INT16); put(&x, &i16, 2);
    put_key(&x, "u32", QN_GGUF_UINT32); put_u32(&x, 4000000000u);
    put_key(&x, "i32", QN_GGUF_INT32); put(&x, &i32, 4);
    put_key(&x, "f32", QN_GGUF_FLOAT32); put(&x, &f32, 4);
    put_key(&x, "bool", QN_GGUF_BOOL); put(&x, &yes, 1);
    put_key(&x, "str", QN_GGUF_STRING); put_str(&x, "h\xc3\xa9llo");
    put_key(&x, "u64", QN_GGUF_UINT64); put_u64(&x, 1ull << 40);
    put_key(&x, "i64", QN_GGUF_INT64); put_u64(&x, (uint64_t)-(1ll << 40));
    put_key(&x, "f64", QN_GGUF_FLOAT64); put(&x, &f64, 8);
    put_key(&x, "arr.i16", QN_GGUF_ARRAY); put_u32(&x, QN_GGUF_INT16); put_u64(&x, 3);
    int16_t v[3] = { 1, -2, 3 };
    put(&x, v, 6);
    put_key(&x, "arr.nested", QN_GGUF_ARRAY); put_u32(&x, QN_GGUF_ARRAY); put_u64(&x, 3);
    put_u32(&x, QN_GGUF_STRING); put_u64(&x, 2); put_str(&x, "a"); put_str(&x, "bc");
    put_u32(&x, QN_GGUF_STRING); put_u64(&x, 0);
    put_u32(&x, QN_GGUF_UINT8); put_u64(&x, 1); put(&x, &u8, 1);
    put_key(&x, "arr.empty", QN_GGUF_ARRAY); put_u32(&x, QN_GGUF_FLOAT32); put_u64(&x, 0);
    put_key(&x, "general.alignment", QN_GGUF_UINT32); put_u32(&x, align);
    put_str(&x, "a"); put_u32(&x, 2); put_u64(&x, 4); put_u64(&x, 2); put_u32(&x, QN_GGML_F32); put_u64(&x, 0);
    put_str(&x, "b"); put_u32(&x, 1); put_u64(&x, 32); put_u32(&x, QN_GGML_Q8_0); put_u64(&x, align);
    while (x.n % align) put(&x, "", 1);
    for (int i = 0; i < 8; i++) { float a = (float)i - 3.5f; put(&x, &a, 4); }
    while (x.n % align) put(&x, "", 1);
    uint16_t half = 0x3800;                               /* fp16 0.5 */
    put(&x, &half, 2);
    for (int i = 0; i < 32; i++) { int8_t q = (int8_t)(i - 16); put(&x, &q, 1); }
    return x;
}

Test(gguf, every_value_type_and_a_wider_alignment)
{
    bytes x = synthetic_file(64);
    char path[512];
    snprintf(path, sizeof path, "%s/synthetic.gguf", g_dir);
    ts_write_file(path, x.b, x.n);
    qn_gguf_file *f = open_ok(path);
    qn_err err = {0};
    cr_expect(qn_gguf_version(f) == 2 && qn_gguf_alignment(f) == 64 && qn_gguf_kv_count(f) == 16);
    uint32_t u;
    int64_t i;
    float fl;
    bool b;
    const char *s;
    cr_expect(qn_gguf_get_u32(f, "u8", &u, &err) == QN_OK && u == 200);
    cr_expect(qn_gguf_get_u32(f, "u16", &u, &err) == QN_OK && u == 60000);
    cr_expect(qn_gguf_get_u32(f, "u32", &u, &err) == QN_OK && u == 4000000000u);
    cr_expect_eq(qn_gguf_get_u32(f, "i8", &u, &err), QN_ERR_FORMAT, "-5 is no uint32");
    cr_expect_eq(qn_gguf_get_u32(f, "u64", &u, &err), QN_ERR_FORMAT, "2^40 is no uint32");
    cr_expect(qn_gguf_get_i64(f, "i8", &i, &err) == QN_OK && i == -5);
    cr_expect(qn_gguf_get_i64(f, "i16", &i, &err) == QN_OK && i == -30000);
    cr_expect(qn_gguf_get_i64(f, "i32", &i, &err) == QN_OK && i == -2000000000);
    cr_expect(qn_gguf_get_i64(f, "i64", &i, &err) == QN_OK && i == -(1ll << 40));
    cr_expect(qn_gguf_get_i64(f, "u64", &i, &err) == QN_OK && i == 1ll << 40);
    cr_expect(qn_gguf_get_f32(f, "f32", &fl, &err) == QN_OK && fl == 1.5f);
    cr_expect(qn_gguf_get_f32(f, "f64", &fl, &err) == QN_OK && fl == 0.25f);
    cr_expect(qn_gguf_get_bool(f, "bool", &b, &err) == QN_OK && b);
    cr_expect(qn_gguf_get_str(f, "str", &s, &err) == QN_OK && strcmp(s, "h\xc3\xa9llo") == 0);
    cr_expect_eq(qn_gguf_get_bool(f, "u8", &b, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "'u8' is uint8, expected bool"), "%s", err.msg);
    int32_t *ints;
    float *floats;
    size_t n;
    cr_assert_eq(qn_gguf_get_i32_arr(f, "arr.i16", &ints, &n, &err), QN_OK, "%s", err.msg);
    cr_expect(n == 3 && ints[0] == 1 && ints[1] == -2 && ints[2] == 3);
    free(ints);
    cr_assert_eq(qn_gguf_get_f32_arr(f, "arr.empty", &floats, &n, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(n, 0);
    free(floats);
    const qn_gguf_value *nested = qn_gguf_find(f, "arr.nested");
    cr_assert(nested && nested->type == QN_GGUF_ARRAY && nested->arr.elem == QN_GGUF_ARRAY && nested->arr.n == 3);
    const qn_gguf_value *it = nested->arr.items;
    cr_expect(it[0].arr.elem == QN_GGUF_STRING && it[0].arr.n == 2);
    cr_expect(strcmp(it[0].arr.strs[0], "a") == 0 && strcmp(it[0].arr.strs[1], "bc") == 0);
    cr_expect(it[1].arr.elem == QN_GGUF_STRING && it[1].arr.n == 0);
    cr_expect(it[2].arr.elem == QN_GGUF_UINT8 && it[2].arr.n == 1 && *(const uint8_t *)it[2].arr.raw == 200);
    cr_expect_eq(qn_gguf_get_str_arr(f, "arr.nested", &(const char *const *){0}, &n, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "array of array"), "%s", err.msg);

    const qn_gguf_tensor *a = qn_gguf_tensor_find(f, "a"), *q = qn_gguf_tensor_find(f, "b");
    cr_assert(a && q);
    cr_expect(a->ne[0] == 4 && a->ne[1] == 2 && q->offset == 64 && q->nbytes == 34);
    cr_expect_eq((const unsigned char *)q->data - (const unsigned char *)a->data, 64);
    float av[8], qv[32];
    cr_assert_eq(qn_gguf_tensor_to_f32(f, a, av, &err), QN_OK);
    cr_assert_eq(qn_gguf_tensor_to_f32(f, q, qv, &err), QN_OK);
    for (int k = 0; k < 8; k++) cr_expect_eq(av[k], (float)k - 3.5f);
    for (int k = 0; k < 32; k++) cr_expect_eq(qv[k], 0.5f * (float)(k - 16));
    qn_gguf_close(f);
    free(x.b);

    x = synthetic_file(48);                               /* not a power of two */
    ts_write_file(path, x.b, x.n);
    f = NULL;
    cr_expect_eq(qn_gguf_open(&f, path, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "power of two"), "%s", err.msg);
    free(x.b);
}

/* ---- tensor values against llama2.c ---- */

/* Checks every tensor of a GGUF file against the llama2.c original, with the
   error bound of its storage type, measured per 32-value block along ne[0]. */
static void check_against_l2c(const char *rel)
{
    l2c_model m = load_l2c();
    qn_gguf_file *f = open_ok(ts_shared(rel));
    for (size_t i = 0; i < qn_gguf_tensor_count(f); i++) {
        const qn_gguf_tensor *t = qn_gguf_tensor_at(f, i);
        size_t numel = 0;
        const float *ref = l2c_tensor(&m, t->name, &numel);
        cr_assert_not_null(ref, "%s: no llama2.c counterpart", t->name);
        cr_assert_eq(t->nelements, numel, "%s: %zu elements, llama2.c has %zu", t->name, t->nelements, numel);
        float *x = tensor_f32(f, t);
        for (size_t b = 0; b < numel; b += 32) {
            size_t len = numel - b < 32 ? numel - b : 32;
            double amax = 0;
            for (size_t j = 0; j < len; j++) amax = fmax(amax, fabs(ref[b + j]));
            for (size_t j = b; j < b + len; j++) {
                double err = fabs((double)x[j] - ref[j]), tol = 0;
                switch (t->type) {
                case QN_GGML_F32: tol = 0; break;
                case QN_GGML_F16: tol = F16_REL_TOL * fabs(ref[j]) + F16_ABS_TOL; break;
                case QN_GGML_Q8_0: tol = Q8_0_TOL_OF_AMAX * amax; break;
                case QN_GGML_Q5_0: tol = Q5_0_TOL_OF_AMAX * amax; break;
                default: cr_assert_fail("%s: no bound for type %s", t->name, qn_ggml_type_name(t->type));
                }
                cr_assert(err <= tol, "%s %s [%zu]: %.9g vs llama2.c %.9g, error %.3g > %.3g",
                          rel, t->name, j, x[j], ref[j], err, tol);
            }
        }
        free(x);
    }
    qn_gguf_close(f);
    free(m.w);
}

Test(gguf, f32_tensors_equal_llama2c_bit_for_bit) { check_against_l2c(F32_GGUF); }
Test(gguf, f16_tensors_within_f16_rounding) { check_against_l2c(F16_GGUF); }
Test(gguf, q4_k_m_tensors_within_their_quantization_error) { check_against_l2c(Q4KM_GGUF); }

/* ---- dequantizers against gguf-py ---- */

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

Test(gguf, dequantizers_match_gguf_py_vectors)
{
    char *buf = NULL;
    size_t size = 0;
    qn_err err = {0};
    cr_assert_eq(qn_file_read_all(VECTORS, &buf, &size, &err), QN_OK, "%s (run from the repository root)", err.msg);
    const unsigned char *p = (const unsigned char *)buf, *end = p + size;
    cr_assert(size >= 12 && memcmp(p, "QNGV", 4) == 0 && rd32(p + 4) == 1);
    uint32_t n_cases = rd32(p + 8);
    p += 12;
    bool seen[QN_GGML_TYPE_COUNT] = {0};
    for (uint32_t c = 0; c < n_cases; c++) {
        cr_assert(end - p >= 12);
        uint32_t type = rd32(p), n_blocks = rd32(p + 4), n_bytes = rd32(p + 8);
        p += 12;
        const qn_ggml_type_desc *d = qn_ggml_type_info(type);
        cr_assert_not_null(d, "vector case %u: type %u unknown", c, type);
        cr_assert_eq(n_bytes, n_blocks * d->block_bytes, "%s: byte count", d->name);
        size_t n = (size_t)n_blocks * d->block_size;
        cr_assert((size_t)(end - p) >= n_bytes + n * 4);
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        memcpy(want, p + n_bytes, n * sizeof *want);
        /* at an odd address: GGUF data need not be aligned for the block structs */
        unsigned char *odd = malloc(n_bytes + 1);
        memcpy(odd + 1, p, n_bytes);
        cr_assert_eq(qn_ggml_to_f32(type, odd + 1, got, n, &err), QN_OK, "%s", err.msg);
        for (size_t b = 0; b < n; b += d->block_size) {
            double amax = 0;
            for (size_t j = b; j < b + d->block_size; j++) amax = fmax(amax, fabs(want[j]));
            for (size_t j = b; j < b + d->block_size; j++) {
                double diff = fabs((double)got[j] - want[j]);
                cr_assert(diff <= DEQUANT_REL_TOL * amax, "%s block %zu [%zu]: %.9g vs gguf-py %.9g (diff %.3g > %.3g)",
                          d->name, b / d->block_size, j - b, got[j], want[j], diff, DEQUANT_REL_TOL * amax);
            }
        }
        seen[type] = true;
        free(odd);
        free(want);
        free(got);
        p += n_bytes + n * 4;
    }
    const qn_ggml_type expected[] = { QN_GGML_F16, QN_GGML_BF16, QN_GGML_Q4_0, QN_GGML_Q4_1, QN_GGML_Q5_0,
                                      QN_GGML_Q5_1, QN_GGML_Q8_0, QN_GGML_Q2_K, QN_GGML_Q3_K, QN_GGML_Q4_K,
                                      QN_GGML_Q5_K, QN_GGML_Q6_K };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        cr_expect(seen[expected[i]], "no vectors for %s", qn_ggml_type_name(expected[i]));
    free(buf);
}

Test(gguf, type_table_matches_ggml)
{
    const struct { uint32_t type; const char *name; uint32_t block, bytes; bool deq; } rows[] = {
        { QN_GGML_F32, "f32", 1, 4, true },      { QN_GGML_F16, "f16", 1, 2, true },
        { QN_GGML_Q4_0, "q4_0", 32, 18, true },  { QN_GGML_Q4_1, "q4_1", 32, 20, true },
        { QN_GGML_Q5_0, "q5_0", 32, 22, true },  { QN_GGML_Q5_1, "q5_1", 32, 24, true },
        { QN_GGML_Q8_0, "q8_0", 32, 34, true },  { QN_GGML_Q8_1, "q8_1", 32, 36, true },
        { QN_GGML_Q2_K, "q2_K", 256, 84, true }, { QN_GGML_Q3_K, "q3_K", 256, 110, true },
        { QN_GGML_Q4_K, "q4_K", 256, 144, true }, { QN_GGML_Q5_K, "q5_K", 256, 176, true },
        { QN_GGML_Q6_K, "q6_K", 256, 210, true }, { QN_GGML_Q8_K, "q8_K", 256, 292, true },
        { QN_GGML_IQ2_XXS, "iq2_xxs", 256, 66, false }, { QN_GGML_IQ4_XS, "iq4_xs", 256, 136, false },
        { QN_GGML_BF16, "bf16", 1, 2, true },    { QN_GGML_F64, "f64", 1, 8, true },
        { QN_GGML_TQ2_0, "tq2_0", 256, 66, false }, { QN_GGML_MXFP4, "mxfp4", 32, 17, false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const qn_ggml_type_desc *d = qn_ggml_type_info(rows[i].type);
        cr_assert_not_null(d, "type %u", rows[i].type);
        cr_expect_str_eq(d->name, rows[i].name);
        cr_expect(d->block_size == rows[i].block && d->block_bytes == rows[i].bytes, "%s: %u/%u", d->name,
                  d->block_size, d->block_bytes);
        cr_expect_eq(d->to_f32 != NULL, rows[i].deq, "%s", d->name);
    }
    cr_expect_null(qn_ggml_type_info(4));
    cr_expect_str_eq(qn_ggml_type_name(4), "q4_2");
    cr_expect_null(qn_ggml_type_info(99));
    cr_expect_str_eq(qn_ggml_type_name(99), "unknown");
    float y[256];
    unsigned char blk[66] = {0};
    qn_err err = {0};
    cr_expect_eq(qn_ggml_to_f32(QN_GGML_IQ2_XXS, blk, y, 256, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "iq2_xxs"), "%s", err.msg);
    cr_expect_eq(qn_ggml_to_f32(QN_GGML_Q4_K, blk, y, 100, &err), QN_ERR_SHAPE);
    cr_expect_eq(qn_ggml_to_f32(31, blk, y, 32, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "q4_0_4_4"), "%s", err.msg);
}

/* ---- the model source ---- */

Test(gguf, llama_names_map_both_ways_of_writing)
{
    const char *pairs[][2] = {
        { "model.embed_tokens.weight", "token_embd.weight" }, { "model.norm.weight", "output_norm.weight" },
        { "lm_head.weight", "output.weight" },
        { "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight" },
        { "model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight" },
        { "model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight" },
        { "model.layers.7.post_attention_layernorm.weight", "blk.7.ffn_norm.weight" },
        { "model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight" },
        { "model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight" },
        { "model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight" },
    };
    char buf[128];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        cr_assert(qn_gguf_llama_name(pairs[i][0], buf, sizeof buf), "%s", pairs[i][0]);
        cr_expect_str_eq(buf, pairs[i][1]);
    }
    const char *bad[] = { "model.layers.x.mlp.up_proj.weight", "model.layers.1.mlp.up.weight", "model.norm",
                          "model.layers.01.mlp.up_proj.weight", "lm_head.weights", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!qn_gguf_llama_name(bad[i], buf, sizeof buf), "'%s' should not map", bad[i]);
    cr_expect(!qn_gguf_llama_name("model.embed_tokens.weight", buf, 8), "too small a buffer must fail");
}

Test(gguf, model_source_gives_hf_tensors_equal_to_llama2c)
{
    const char *path = ts_shared(F32_GGUF);
    qn_config c;
    qn_weight_source src;
    qn_tokenizer *tok = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_gguf_model_open(path, &c, &src, &tok, &err), QN_OK, "%s", err.msg);
    cr_expect(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4 &&
              c.head_dim == 8 && c.vocab_size == 512 && c.max_seq_len == 128);
    cr_expect(c.rms_eps == 1e-5f && c.rope_theta == 10000.0f && c.rope_scaling == QN_ROPE_SCALING_NONE);
    cr_expect(!c.tie_embeddings, "the file has output.weight");
    cr_expect(c.bos_id == 1 && c.eos_id == 2);
    cr_assert_not_null(tok);
    cr_expect_eq(qn_tok_kind_of(tok), QN_TOK_SPM);
    cr_expect_eq(qn_tok_vocab_size(tok), 512);
    cr_expect(qn_tok_bos(tok) == 1 && qn_tok_eos(tok) == 2 && qn_tok_adds_bos(tok));
    cr_expect_str_eq(qn_tok_piece(tok, 1), "<s>");

    l2c_model m = load_l2c();
    const char *stems[] = { "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                            "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                            "mlp.down_proj" };
    for (int l = -1; l < c.n_layers; l++)
        for (size_t k = 0; k < (l < 0 ? 3 : sizeof stems / sizeof stems[0]); k++) {
            const char *globals[] = { "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight" };
            char hf[128], gg[128];
            if (l < 0) snprintf(hf, sizeof hf, "%s", globals[k]);
            else snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", l, stems[k]);
            cr_assert(qn_gguf_llama_name(hf, gg, sizeof gg));
            cr_expect(src.has(src.ctx, hf), "%s", hf);
            qn_f32_tensor t;
            cr_assert_eq(src.get(src.ctx, hf, &t, &err), QN_OK, "%s", err.msg);
            size_t numel;
            const float *ref = l2c_tensor(&m, gg, &numel);
            cr_assert_not_null(ref);
            float *want = malloc(numel * sizeof *want);
            memcpy(want, ref, numel * sizeof *want);
            bool q = strstr(hf, "q_proj") != NULL, kp = strstr(hf, "k_proj") != NULL;
            if (q || kp)
                cr_assert_eq(qn_rope_meta_to_hf(want, (size_t)(q ? c.n_heads : c.n_kv_heads), (size_t)c.head_dim,
                                                (size_t)c.dim), QN_OK);
            size_t rows = t.ndim == 2 ? (size_t)t.shape[0] : numel, cols = t.ndim == 2 ? (size_t)t.shape[1] : 1;
            cr_expect(t.owned);
            cr_assert_eq(rows * cols, numel, "%s: shape [%zu, %zu] for %zu values", hf, rows, cols, numel);
            if (strstr(hf, "norm")) cr_expect(t.ndim == 1 && t.shape[0] == c.dim, "%s", hf);
            if (q) cr_expect(rows == 64 && cols == 64);
            if (kp) cr_expect(rows == 32 && cols == 64, "%s: [%zu, %zu]", hf, rows, cols);
            if (strstr(hf, "down_proj")) cr_expect(rows == 64 && cols == 172);
            if (strstr(hf, "up_proj")) cr_expect(rows == 172 && cols == 64);
            cr_expect(memcmp(t.data, want, numel * sizeof *want) == 0, "%s differs from llama2.c", hf);
            free(want);
            qn_f32_tensor_done(&t);
        }
    free(m.w);

    cr_expect(!src.has(src.ctx, "model.layers.5.mlp.up_proj.weight"));
    qn_f32_tensor t;
    cr_expect_eq(src.get(src.ctx, "model.layers.5.mlp.up_proj.weight", &t, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "blk.5.ffn_up.weight"), "%s", err.msg);
    cr_expect_eq(src.get(src.ctx, "model.rotary_emb.inv_freq", &t, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "model.rotary_emb.inv_freq"), "%s", err.msg);
    src.close(src.ctx);
    qn_tok_free(tok);
}

Test(gguf, quantized_model_opens_without_a_tokenizer)
{
    qn_config c;
    qn_weight_source src;
    qn_err err = {0};
    cr_assert_eq(qn_gguf_model_open(ts_shared(Q4KM_GGUF), &c, &src, NULL, &err), QN_OK, "%s", err.msg);
    qn_f32_tensor t;
    cr_assert_eq(src.get(src.ctx, "model.layers.2.self_attn.v_proj.weight", &t, &err), QN_OK, "%s", err.msg);
    cr_expect(t.ndim == 2 && t.shape[0] == 32 && t.shape[1] == 64);
    qn_f32_tensor_done(&t);
    src.close(src.ctx);
}

/* ---- damaged and foreign files ---- */

static bytes f32_bytes(void)
{
    bytes x;
    qn_err err = {0};
    char *buf;
    cr_assert_eq(qn_file_read_all(ts_shared(F32_GGUF), &buf, &x.n, &err), QN_OK, "%s", err.msg);
    x.b = (unsigned char *)buf;
    return x;
}

/* Where a string (with its u64 length prefix) sits in the file: the byte after it. */
static size_t after_string(const bytes *x, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i + 8 + len <= x->n; i++) {
        uint64_t l;
        memcpy(&l, x->b + i, 8);
        if (l == len && memcmp(x->b + i + 8, s, len) == 0) return i + 8 + len;
    }
    cr_assert_fail("'%s' not found in the file", s);
    return 0;
}

/* Fields of a tensor info: n_dims at the returned offset, then ne[], type, offset. */
typedef struct { size_t n_dims, ne0, type, offset; } info_at;
static info_at tensor_info(const bytes *x, const char *name)
{
    info_at a;
    a.n_dims = after_string(x, name);
    uint32_t nd;
    memcpy(&nd, x->b + a.n_dims, 4);
    a.ne0 = a.n_dims + 4;
    a.type = a.ne0 + 8 * nd;
    a.offset = a.type + 4;
    return a;
}

static void put32(bytes *x, size_t at, uint32_t v) { memcpy(x->b + at, &v, 4); }
static void put64(bytes *x, size_t at, uint64_t v) { memcpy(x->b + at, &v, 8); }

static void write_case(const bytes *x, size_t keep, const char *tag, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.gguf", g_dir, tag);
    ts_write_file(path, x->b, keep);
}

/* Writes the first `keep` bytes, opens them, expects status `want` and a message naming the file and `needle`. */
static void expect_open_fails(const bytes *x, size_t keep, const char *tag, qn_status want, const char *needle)
{
    char path[512];
    write_case(x, keep, tag, path, sizeof path);
    qn_gguf_file *f = (qn_gguf_file *)0x1;
    qn_err err = {0};
    qn_status s = qn_gguf_open(&f, path, &err);
    cr_expect_eq(s, want, "%s: expected %s, got %s (%s)", tag, qn_status_name(want), qn_status_name(s), err.msg);
    cr_expect_null(f, "%s: no file handle on failure", tag);
    cr_expect(strstr(err.msg, path), "%s: message does not name the file: %s", tag, err.msg);
    if (needle) cr_expect(strstr(err.msg, needle), "%s: message lacks '%s': %s", tag, needle, err.msg);
    if (!s) qn_gguf_close(f);
}

Test(gguf, truncated_files_are_format_errors)
{
    bytes x = f32_bytes();
    size_t infos = after_string(&x, "token_embd.weight") - 17 - 8; /* first tensor info */
    size_t data = (size_t)14176;                                    /* token_embd's bytes start the data */
    const struct { size_t keep; const char *tag; } cuts[] = {
        { 0, "empty" }, { 3, "in_magic" }, { 10, "in_counts" }, { 30, "in_first_key" },
        { 2000, "in_token_list" }, { infos - 3, "in_last_value" }, { infos + 30, "in_tensor_infos" },
        { data - 8, "before_data" }, { data + 100, "in_first_tensor" }, { x.n - 1, "last_byte_missing" },
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        expect_open_fails(&x, cuts[i].keep, cuts[i].tag, QN_ERR_FORMAT, NULL);
    free(x.b);
}

Test(gguf, header_lies_are_caught)
{
    bytes x = f32_bytes();
    bytes y = { malloc(x.n), x.n };
#define RESET() memcpy(y.b, x.b, x.n)
    RESET(); memcpy(y.b, "GGUX", 4);
    expect_open_fails(&y, y.n, "magic", QN_ERR_FORMAT, "GGUF");
    RESET(); put32(&y, 4, 1);
    expect_open_fails(&y, y.n, "version1", QN_ERR_UNSUPPORTED, "version 1");
    RESET(); put32(&y, 4, 7);
    expect_open_fails(&y, y.n, "version7", QN_ERR_UNSUPPORTED, "version 7");
    RESET(); put32(&y, 4, 0x03000000);
    expect_open_fails(&y, y.n, "big_endian", QN_ERR_UNSUPPORTED, "big-endian");
    RESET(); put64(&y, 8, 1ull << 50);
    expect_open_fails(&y, y.n, "tensor_count", QN_ERR_FORMAT, NULL);
    RESET(); put64(&y, 16, 1ull << 50);
    expect_open_fails(&y, y.n, "kv_count", QN_ERR_FORMAT, NULL);
    RESET(); put64(&y, 24, 1ull << 60);                           /* the first key's length */
    expect_open_fails(&y, y.n, "key_length", QN_ERR_FORMAT, "past the end");
    size_t tok = after_string(&x, "tokenizer.ggml.tokens");
    RESET(); put32(&y, tok, 13);                                  /* its value type */
    expect_open_fails(&y, y.n, "value_type", QN_ERR_FORMAT, "type 13");
    RESET(); put64(&y, tok + 8, 1ull << 59);                      /* the token array's count */
    expect_open_fails(&y, y.n, "array_count", QN_ERR_FORMAT, "cannot fit");
    RESET(); put32(&y, tok + 4, 9);                               /* array of arrays: elements misread */
    expect_open_fails(&y, y.n, "array_kind", QN_ERR_FORMAT, NULL);
    RESET(); memcpy(y.b + after_string(&x, "blk.1.attn_q.weight") - 19, "blk.0", 5);
    expect_open_fails(&y, y.n, "duplicate_name", QN_ERR_FORMAT, "duplicate");
    free(y.b);
    free(x.b);
#undef RESET
}

Test(gguf, tensor_info_lies_are_caught)
{
    bytes x = f32_bytes();
    bytes y = { malloc(x.n), x.n };
#define RESET() memcpy(y.b, x.b, x.n)
    info_at norm = tensor_info(&x, "output_norm.weight"), embd = tensor_info(&x, "token_embd.weight");
    info_at q = tensor_info(&x, "blk.0.attn_q.weight"), k = tensor_info(&x, "blk.0.attn_k.weight");
    uint64_t q_off;
    memcpy(&q_off, x.b + q.offset, 8);
    RESET(); put64(&y, norm.offset, 1ull << 40);
    expect_open_fails(&y, y.n, "offset_past_end", QN_ERR_FORMAT, "output_norm.weight");
    RESET(); put64(&y, norm.offset, UINT64_MAX - 31);
    expect_open_fails(&y, y.n, "offset_wraps", QN_ERR_FORMAT, "past the end");
    RESET(); put64(&y, norm.offset, 131072 + 4);
    expect_open_fails(&y, y.n, "offset_unaligned", QN_ERR_FORMAT, "alignment");
    RESET(); put64(&y, k.offset, q_off);
    expect_open_fails(&y, y.n, "overlap", QN_ERR_FORMAT, "overlap");
    RESET(); put64(&y, embd.ne0 + 8, 5120);                       /* ten times the vocabulary */
    expect_open_fails(&y, y.n, "dims_past_end", QN_ERR_FORMAT, "token_embd.weight");
    RESET(); put64(&y, embd.ne0, 1ull << 62);
    expect_open_fails(&y, y.n, "dims_overflow", QN_ERR_FORMAT, "overflow");
    RESET(); put32(&y, embd.n_dims, 5);
    expect_open_fails(&y, y.n, "five_dims", QN_ERR_FORMAT, "dimensions");
    RESET(); put32(&y, norm.type, 99);
    expect_open_fails(&y, y.n, "type_99", QN_ERR_UNSUPPORTED, "output_norm.weight");
    RESET(); put32(&y, norm.type, 31);
    expect_open_fails(&y, y.n, "type_removed", QN_ERR_UNSUPPORTED, "q4_0_4_4");
    RESET(); put32(&y, norm.type, QN_GGML_Q4_K);                  /* 64 values: not a whole 256-block */
    expect_open_fails(&y, y.n, "ragged_blocks", QN_ERR_FORMAT, "block size");
    free(y.b);
    free(x.b);
#undef RESET
}

Test(gguf, unknown_type_message_names_tensor_and_number)
{
    bytes x = f32_bytes();
    put32(&x, tensor_info(&x, "blk.2.ffn_up.weight").type, 99);
    char path[512];
    write_case(&x, x.n, "type99", path, sizeof path);
    qn_gguf_file *f = NULL;
    qn_err err = {0};
    cr_expect_eq(qn_gguf_open(&f, path, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "blk.2.ffn_up.weight") && strstr(err.msg, "99"), "%s", err.msg);
    free(x.b);
}

Test(gguf, type_without_dequantizer_opens_but_does_not_convert)
{
    bytes x = f32_bytes();
    put32(&x, tensor_info(&x, "token_embd.weight").type, QN_GGML_IQ4_NL); /* 32-blocks: fits 64-wide rows */
    char path[512];
    write_case(&x, x.n, "iq4_nl", path, sizeof path);
    qn_gguf_file *f = open_ok(path);
    const qn_gguf_tensor *t = qn_gguf_tensor_find(f, "token_embd.weight");
    cr_assert_not_null(t);
    cr_expect_eq(t->nbytes, 64 * 512 / 32 * 18);
    float *y = malloc(t->nelements * sizeof *y);
    qn_err err = {0};
    cr_expect_eq(qn_gguf_tensor_to_f32(f, t, y, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "iq4_nl") && strstr(err.msg, "token_embd.weight"),
              "%s", err.msg);
    free(y);
    qn_gguf_close(f);

    qn_config c;
    qn_weight_source src;
    cr_assert_eq(qn_gguf_model_open(path, &c, &src, NULL, &err), QN_OK, "%s", err.msg);
    qn_f32_tensor w;
    cr_expect_eq(src.get(src.ctx, "model.embed_tokens.weight", &w, &err), QN_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "iq4_nl"), "%s", err.msg);
    src.close(src.ctx);
    free(x.b);
}

/* Replaces the string value of key (same length) and opens it as a model. */
static void expect_model_fails(const char *key, const char *value, bool with_tok, qn_status want, const char *needle)
{
    bytes x = f32_bytes();
    size_t at = after_string(&x, key);
    uint64_t len;
    memcpy(&len, x.b + at + 4, 8);
    cr_assert_eq(len, strlen(value), "%s: replacement must keep the length", key);
    memcpy(x.b + at + 12, value, strlen(value));
    char path[512];
    write_case(&x, x.n, value, path, sizeof path);
    qn_config c;
    qn_weight_source src = { 0 };
    qn_tokenizer *tok = (qn_tokenizer *)0x1;
    qn_err err = {0};
    qn_status s = qn_gguf_model_open(path, &c, &src, with_tok ? &tok : NULL, &err);
    cr_expect_eq(s, want, "%s: expected %s, got %s (%s)", value, qn_status_name(want), qn_status_name(s), err.msg);
    cr_expect(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    cr_expect(strstr(err.msg, needle), "message lacks '%s': %s", needle, err.msg);
    cr_expect_null(src.ctx);
    if (with_tok) cr_expect_null(tok);
    free(x.b);
}

Test(gguf, other_architectures_are_unsupported)
{
    expect_model_fails("general.architecture", "falcn", false, QN_ERR_UNSUPPORTED, "falcn");
}

Test(gguf, other_tokenizers_are_unsupported)
{
    expect_model_fails("tokenizer.ggml.model", "bertx", true, QN_ERR_UNSUPPORTED, "bertx");
}

Test(gguf, missing_files_are_io_errors)
{
    char path[512];
    snprintf(path, sizeof path, "%s/absent.gguf", g_dir);
    qn_gguf_file *f = NULL;
    qn_err err = {0};
    cr_expect_eq(qn_gguf_open(&f, path, &err), QN_ERR_IO);
    cr_expect(strstr(err.msg, path), "%s", err.msg);
    qn_config c;
    qn_weight_source src;
    cr_expect_eq(qn_gguf_model_open(path, &c, &src, NULL, &err), QN_ERR_IO);
    cr_expect(strstr(err.msg, path), "%s", err.msg);
}
