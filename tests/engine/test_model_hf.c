/* test_model_hf.c: Hugging Face model folders. Builds a tiny fake Llama
   (2 layers, hidden 8, F32/F16/BF16 tensors) in a temp folder, single-file and
   sharded, and checks values, the no-copy F32 path, the tensor listing, and each
   broken-folder case with its status and the file its message must name. */
#include "engine/model_hf.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/safetensors.h"

static char g_dir[256];

static void make_tmpdir(void)
{
    strcpy(g_dir, "/tmp/qn_hf_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp failed");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) { nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(model_hf, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *in_dir(char *buf, size_t cap, const char *name)
{
    cr_assert(qn_path_join(buf, cap, g_dir, name));
    return buf;
}

static void write_text(const char *name, const char *text)
{
    char path[512];
    FILE *fp = fopen(in_dir(path, sizeof path, name), "wb");
    cr_assert_not_null(fp, "%s: cannot create", path);
    fputs(text, fp);
    cr_assert_eq(fclose(fp), 0);
}

static const char k_config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8,"
    " \"intermediate_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
    " \"num_key_value_heads\": 1, \"vocab_size\": 32, \"max_position_embeddings\": 64,"
    " \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": false}";

/* ---- the fake model: names, shapes, dtypes and values ---- */

#define N_TENSORS 21   /* embed, 2 x 9 per layer, norm, lm_head */

typedef struct {
    char     name[96];
    qn_dtype dtype;
    int      ndim;
    int64_t  shape[2];
    void    *data;
    size_t   count;
} fake_tensor;

/* Multiples of 1/8 in [-1, 1]: exact in F16 and BF16, so comparisons are exact. */
static float fake_value(size_t tensor, size_t k) { return (float)((int)((tensor * 7 + k * 3) % 17) - 8) * 0.125f; }

static void add_fake(fake_tensor *t, size_t *n, const char *name, qn_dtype dt, int64_t rows, int64_t cols)
{
    fake_tensor *f = &t[(*n)++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->dtype = dt;
    f->ndim = cols ? 2 : 1;
    f->shape[0] = rows;
    f->shape[1] = cols;
    f->count = (size_t)rows * (size_t)(cols ? cols : 1);
    f->data = malloc(f->count * qn_dtype_size(dt));
    cr_assert_not_null(f->data);
    for (size_t k = 0; k < f->count; k++) {
        float v = fake_value((size_t)(f - t), k);
        if (dt == QN_DTYPE_F32) ((float *)f->data)[k] = v;
        else if (dt == QN_DTYPE_F16) ((uint16_t *)f->data)[k] = qn_f32_to_f16(v);
        else if (dt == QN_DTYPE_BF16) ((uint16_t *)f->data)[k] = qn_f32_to_bf16(v);
        else if (dt == QN_DTYPE_I32) ((int32_t *)f->data)[k] = (int32_t)k;
    }
}

/* Layer 0 in F16, layer 1 in BF16, norms and embedding in F32, head in BF16. */
static void make_fake(fake_tensor *t)
{
    size_t n = 0;
    char name[96];
    add_fake(t, &n, "model.embed_tokens.weight", QN_DTYPE_F32, 32, 8);
    for (int l = 0; l < 2; l++) {
        qn_dtype dt = l == 0 ? QN_DTYPE_F16 : QN_DTYPE_BF16;
        static const struct { const char *suffix; int64_t rows, cols; int norm; } parts[] = {
            { "input_layernorm.weight", 8, 0, 1 },   { "self_attn.q_proj.weight", 8, 8, 0 },
            { "self_attn.k_proj.weight", 4, 8, 0 },  { "self_attn.v_proj.weight", 4, 8, 0 },
            { "self_attn.o_proj.weight", 8, 8, 0 },  { "post_attention_layernorm.weight", 8, 0, 1 },
            { "mlp.gate_proj.weight", 16, 8, 0 },    { "mlp.up_proj.weight", 16, 8, 0 },
            { "mlp.down_proj.weight", 8, 16, 0 },
        };
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
            snprintf(name, sizeof name, "model.layers.%d.%s", l, parts[p].suffix);
            add_fake(t, &n, name, parts[p].norm ? QN_DTYPE_F32 : dt, parts[p].rows, parts[p].cols);
        }
    }
    add_fake(t, &n, "model.norm.weight", QN_DTYPE_F32, 8, 0);
    add_fake(t, &n, "lm_head.weight", QN_DTYPE_BF16, 32, 8);
    cr_assert_eq(n, N_TENSORS);
}

static void free_fake(fake_tensor *t)
{
    for (size_t i = 0; i < N_TENSORS; i++) free(t[i].data);
}

static void write_shard(const char *name, const fake_tensor *t, size_t n)
{
    qn_st_entry e[N_TENSORS + 1];
    for (size_t i = 0; i < n; i++)
        e[i] = (qn_st_entry){ .name = t[i].name, .dtype = t[i].dtype, .ndim = t[i].ndim,
                              .shape = { t[i].shape[0], t[i].shape[1] }, .data = t[i].data };
    char path[512];
    const char *meta[] = { "format", "pt", NULL };
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(in_dir(path, sizeof path, name), e, n, meta, &err), QN_OK, "%s", err.msg);
}

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define SPLIT  11   /* tensors [0, SPLIT) in shard 1, the rest in shard 2 */

/* The index for the sharded layout; extra, when given, adds or overrides one entry. */
static void write_index(const fake_tensor *t, const char *extra_name, const char *extra_file)
{
    json_t *wmap = json_object();
    for (size_t i = 0; i < N_TENSORS; i++)
        json_object_set_new(wmap, t[i].name, json_string(i < SPLIT ? SHARD1 : SHARD2));
    if (extra_name) json_object_set_new(wmap, extra_name, json_string(extra_file));
    json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)1234, "weight_map", wmap);
    char *text = json_dumps(root, JSON_INDENT(2));
    write_text("model.safetensors.index.json", text);
    free(text);
    json_decref(root);
}

static void write_folder(const fake_tensor *t, bool sharded)
{
    write_text("config.json", k_config);
    if (!sharded) {
        write_shard("model.safetensors", t, N_TENSORS);
        return;
    }
    write_shard(SHARD1, t, SPLIT);
    write_shard(SHARD2, t + SPLIT, N_TENSORS - SPLIT);
    write_index(t, NULL, NULL);
}

/* Every tensor comes back with its shape and exact values. */
static void check_all_values(qn_weight_source *src, const fake_tensor *t)
{
    for (size_t i = 0; i < N_TENSORS; i++) {
        qn_f32_tensor out;
        qn_err err = { 0 };
        cr_assert(src->has(src->ctx, t[i].name), "%s", t[i].name);
        cr_assert_eq(src->get(src->ctx, t[i].name, &out, &err), QN_OK, "%s: %s", t[i].name, err.msg);
        cr_assert_eq(out.ndim, t[i].ndim, "%s", t[i].name);
        cr_assert_eq(out.shape[0], t[i].shape[0], "%s", t[i].name);
        cr_assert_eq(out.shape[1], t[i].ndim == 2 ? t[i].shape[1] : 1, "%s", t[i].name);
        /* F32 data written by qn_st_write sits at 8-aligned offsets: used in place */
        cr_assert_eq(out.owned, t[i].dtype != QN_DTYPE_F32, "%s: owned = %d", t[i].name, out.owned);
        for (size_t k = 0; k < t[i].count; k++)
            cr_assert_eq(out.data[k], fake_value(i, k), "%s[%zu]: expected %g, found %g",
                         t[i].name, k, fake_value(i, k), out.data[k]);
        if (out.owned) free(out.data);
    }
}

static void open_ok(qn_config *cfg, qn_weight_source *src)
{
    qn_err err = { 0 };
    cr_assert_eq(qn_hf_model_open(g_dir, cfg, src, &err), QN_OK, "%s", err.msg);
    cr_assert_not_null(src->get);
    cr_assert_str_eq(src->path, g_dir);
}

/* Opening must fail with status s and a message containing each of the given strings. */
static void expect_open_fails(qn_status s, const char *what1, const char *what2)
{
    qn_config cfg;
    qn_weight_source src;
    qn_err err = { 0 };
    qn_status got = qn_hf_model_open(g_dir, &cfg, &src, &err);
    cr_assert_eq(got, s, "expected %s, found %s (%s)", qn_status_name(s), qn_status_name(got), err.msg);
    cr_assert_null(src.ctx, "a failed open must zero the source");
    if (what1) cr_assert_not_null(strstr(err.msg, what1), "message lacks '%s': %s", what1, err.msg);
    if (what2) cr_assert_not_null(strstr(err.msg, what2), "message lacks '%s': %s", what2, err.msg);
}

Test(model_hf, single_file_values_and_config)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, false);
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    cr_assert_str_eq(cfg.arch, "LlamaForCausalLM");
    cr_assert_eq(cfg.dim, 8);
    cr_assert_eq(cfg.n_layers, 2);
    cr_assert_eq(cfg.n_kv_heads, 1);
    check_all_values(&src, t);

    qn_f32_tensor out;
    qn_err err = { 0 };
    cr_assert_not(src.has(src.ctx, "model.layers.2.mlp.up_proj.weight"));
    cr_assert_eq(src.get(src.ctx, "model.layers.2.mlp.up_proj.weight", &out, &err), QN_ERR_FORMAT);
    cr_assert_not_null(strstr(err.msg, "model.safetensors: no tensor 'model.layers.2.mlp.up_proj.weight'"),
                       "%s", err.msg);
    cr_assert_null(out.data);
    src.close(src.ctx);
    free_fake(t);
}

Test(model_hf, sharded_values)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, true);
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    check_all_values(&src, t);
    qn_f32_tensor out;
    qn_err err = { 0 };
    cr_assert_eq(src.get(src.ctx, "absent.weight", &out, &err), QN_ERR_FORMAT);
    cr_assert_not_null(strstr(err.msg, "model.safetensors.index.json: no tensor 'absent.weight'"), "%s", err.msg);
    src.close(src.ctx);
    free_fake(t);
}

Test(model_hf, index_tensor_missing_from_its_shard)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, true);
    fake_tensor extra[N_TENSORS];
    make_fake(extra);
    snprintf(extra[0].name, sizeof extra[0].name, "unlisted.weight");
    write_shard(SHARD2, extra, 1);   /* replaces shard 2: it lacks what the index lists there */
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "is listed in shard '" SHARD2 "'");
    free_fake(extra);
    free_fake(t);
}

Test(model_hf, shard_tensor_not_in_index_is_absent)
{
    /* transformers ignores shard tensors the index does not list; so do we */
    fake_tensor t[N_TENSORS];
    make_fake(t);
    fake_tensor extra[N_TENSORS];
    make_fake(extra);
    snprintf(extra[0].name, sizeof extra[0].name, "unlisted.weight");
    write_text("config.json", k_config);
    snprintf(t[0].name, sizeof t[0].name, "renamed.weight");
    write_shard(SHARD1, t, SPLIT);
    write_index(t, NULL, NULL);
    /* shard 2 also holds copies of shard 1's tensors and one the index never names */
    write_shard(SHARD2, extra, N_TENSORS);
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    cr_assert(src.has(src.ctx, "renamed.weight"));
    cr_assert_not(src.has(src.ctx, "unlisted.weight"));
    check_all_values(&src, t);
    src.close(src.ctx);
    free_fake(extra);
    free_fake(t);
}

Test(model_hf, unaligned_f32_is_copied)
{
    /* one U8 byte first puts the F32 tensor at data offset 1 */
    write_text("config.json", k_config);
    uint8_t pad = 0;
    float w[6] = { 1.5f, -2.0f, 0.25f, 8.0f, -0.125f, 3.0f };
    const qn_st_entry e[] = {
        { .name = "pad", .dtype = QN_DTYPE_U8, .ndim = 1, .shape = { 1 }, .data = &pad },
        { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { 2, 3 }, .data = w },
    };
    char path[512];
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(in_dir(path, sizeof path, "model.safetensors"), e, 2, NULL, &err), QN_OK, "%s", err.msg);
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    qn_f32_tensor out;
    cr_assert_eq(src.get(src.ctx, "w", &out, &err), QN_OK, "%s", err.msg);
    /* aligned whoever copied it (the safetensors reader copies misaligned tensors at open) */
    cr_assert_eq((uintptr_t)out.data % sizeof(float), 0);
    cr_assert(memcmp(out.data, w, sizeof w) == 0);
    qn_f32_tensor_done(&out);
    cr_assert_eq(src.get(src.ctx, "pad", &out, &err), QN_ERR_UNSUPPORTED);
    src.close(src.ctx);
}

Test(model_hf, shard_listed_but_absent)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, true);
    char path[512];
    cr_assert_eq(unlink(in_dir(path, sizeof path, SHARD2)), 0);
    expect_open_fails(QN_ERR_IO, "model.safetensors.index.json", "shard '" SHARD2 "'");
    free_fake(t);
}

Test(model_hf, index_shard_outside_folder_is_refused)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, true);
    write_index(t, "evil.weight", "../elsewhere.safetensors");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "points outside the folder");
    write_index(t, "evil.weight", "/etc/passwd");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "points outside the folder");
    free_fake(t);
}

Test(model_hf, index_malformed)
{
    write_text("config.json", k_config);
    write_text("model.safetensors.index.json", "{\"weight_map\": ");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "malformed JSON");
    write_text("model.safetensors.index.json", "{\"metadata\": {}}");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "weight_map");
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors.index.json", "'a' is not a file name");
}

Test(model_hf, no_weights_file)
{
    write_text("config.json", k_config);
    expect_open_fails(QN_ERR_IO, g_dir, "model.safetensors");
}

Test(model_hf, corrupt_shard_names_the_shard)
{
    write_text("config.json", k_config);
    write_text("model.safetensors", "nonsense, not a safetensors file");
    expect_open_fails(QN_ERR_FORMAT, "model.safetensors: header length", NULL);
}

Test(model_hf, config_missing_or_malformed)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, false);
    char path[512];
    cr_assert_eq(unlink(in_dir(path, sizeof path, "config.json")), 0);
    expect_open_fails(QN_ERR_IO, "config.json", NULL);
    write_text("config.json", "{\"hidden_size\": 8,");
    expect_open_fails(QN_ERR_FORMAT, "config.json", NULL);
    write_text("config.json", "{\"architectures\": [\"GPT2LMHeadModel\"], \"hidden_size\": 8}");
    expect_open_fails(QN_ERR_UNSUPPORTED, "config.json", "GPT2LMHeadModel");
    free_fake(t);
}

Test(model_hf, missing_folder)
{
    char path[512];
    in_dir(path, sizeof path, "absent");
    qn_config cfg;
    qn_weight_source src;
    qn_err err = { 0 };
    cr_assert_eq(qn_hf_model_open(path, &cfg, &src, &err), QN_ERR_IO);
    cr_assert_not_null(strstr(err.msg, "absent/config.json"), "%s", err.msg);
    qn_tensor_list list;
    cr_assert_eq(qn_hf_model_tensors(path, &list, &err), QN_ERR_IO);
    cr_assert_eq(list.n, 0);
}

Test(model_hf, unsupported_dtype_and_rank)
{
    write_text("config.json", k_config);
    int32_t iv[4] = { 1, 2, 3, 4 };
    float cube[8] = { 0 };
    const qn_st_entry e[] = {
        { .name = "model.embed_tokens.weight", .dtype = QN_DTYPE_I32, .ndim = 2, .shape = { 2, 2 }, .data = iv },
        { .name = "cube", .dtype = QN_DTYPE_F32, .ndim = 3, .shape = { 2, 2, 2 }, .data = cube },
        { .name = "scalar", .dtype = QN_DTYPE_F32, .ndim = 0, .data = cube },
    };
    char path[512];
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(in_dir(path, sizeof path, "model.safetensors"), e, 3, NULL, &err), QN_OK, "%s", err.msg);
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    qn_f32_tensor out;
    cr_assert_eq(src.get(src.ctx, "model.embed_tokens.weight", &out, &err), QN_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(err.msg, "model.safetensors: tensor 'model.embed_tokens.weight' has dtype I32"),
                       "%s", err.msg);
    cr_assert_eq(src.get(src.ctx, "cube", &out, &err), QN_ERR_SHAPE);
    cr_assert_not_null(strstr(err.msg, "'cube' has 3 dimensions"), "%s", err.msg);
    cr_assert_eq(src.get(src.ctx, "scalar", &out, &err), QN_ERR_SHAPE);
    src.close(src.ctx);
}

Test(model_hf, single_file_wins_over_index)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, false);
    write_text("model.safetensors.index.json", "not even JSON");
    qn_config cfg;
    qn_weight_source src;
    open_ok(&cfg, &src);
    src.close(src.ctx);
    free_fake(t);
}

static long file_size(const char *name)
{
    char path[512];
    struct stat st;
    return stat(in_dir(path, sizeof path, name), &st) == 0 ? (long)st.st_size : -1;
}

Test(model_hf, tensor_listing_sharded)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, true);
    qn_tensor_list list;
    qn_err err = { 0 };
    cr_assert_eq(qn_hf_model_tensors(g_dir, &list, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(list.n, N_TENSORS);
    cr_assert_eq(list.n_files, 2);
    cr_assert_eq(list.file_bytes, (uint64_t)(file_size(SHARD1) + file_size(SHARD2)));
    uint64_t total = 0;
    /* shard by shard, in offset order: the order they were written */
    for (size_t i = 0; i < N_TENSORS; i++) {
        const qn_tensor_info *ti = &list.tensors[i];
        cr_assert_str_eq(ti->name, t[i].name);
        cr_assert_str_eq(ti->file, i < SPLIT ? SHARD1 : SHARD2);
        cr_assert_str_eq(ti->dtype, qn_dtype_name(t[i].dtype));
        cr_assert_eq(ti->ndim, t[i].ndim);
        cr_assert_eq(ti->shape[0], t[i].shape[0]);
        cr_assert_eq(ti->nbytes, t[i].count * qn_dtype_size(t[i].dtype));
        total += ti->nbytes;
    }
    cr_assert_eq(list.tensor_bytes, total);
    qn_tensor_list_done(&list);
    cr_assert_eq(list.n, 0);
    qn_tensor_list_done(&list);
    free_fake(t);
}

Test(model_hf, tensor_listing_single_ignores_config)
{
    fake_tensor t[N_TENSORS];
    make_fake(t);
    write_folder(t, false);
    write_text("config.json", "broken");
    qn_tensor_list list;
    qn_err err = { 0 };
    cr_assert_eq(qn_hf_model_tensors(g_dir, &list, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(list.n, N_TENSORS);
    cr_assert_eq(list.n_files, 1);
    cr_assert_eq(list.file_bytes, (uint64_t)file_size("model.safetensors"));
    cr_assert_str_eq(list.tensors[N_TENSORS - 1].name, "lm_head.weight");
    cr_assert_str_eq(list.tensors[N_TENSORS - 1].file, "model.safetensors");
    qn_tensor_list_done(&list);
    free_fake(t);
}
