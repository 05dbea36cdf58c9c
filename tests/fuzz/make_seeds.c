/* make_seeds.c: writes the seed corpora of the fuzz targets, small files made
   from the shipped model and ../shared at build time (nothing large is kept in
   the repository). Usage: make_seeds OUT_DIR SHARED_DIR. Folder targets get
   their files joined by FZ_SEPARATOR, in the order the harness reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "engine/config.h"
#include "engine/fileio.h"
#include "engine/layer_file.h"
#include "engine/llama_layout.h"
#include "engine/quantize.h"
#include "engine/safetensors.h"

#define MODEL "assets/stories260K"

static const char *g_out, *g_shared;

static void die(const char *what, const qn_err *err)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static char *slurp(const char *path, size_t *n)
{
    char *text = NULL;
    qn_err err;
    if (qn_file_read_all(path, &text, n, &err)) die(path, &err);
    return text;
}

/* OUT/target/name = the files joined by the separator. */
static void seed(const char *target, const char *name, const char *const *files, size_t n_files)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_out, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", g_out, target, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) die(path, NULL);
    for (size_t i = 0; i < n_files; i++) {
        size_t n;
        char *text = slurp(files[i], &n);
        if (i) fputs(FZ_SEPARATOR, fp);
        fwrite(text, 1, n, fp);
        free(text);
    }
    if (fclose(fp) != 0) die(path, NULL);
}

static const char *tmp(const char *name)
{
    static char bufs[8][512];
    static int slot;
    char *p = bufs[slot++ % 8];
    snprintf(p, 512, "%s/%s", fz_dir(), name);
    return p;
}

/* A safetensors file of every dtype the reader knows, with metadata. */
static void small_safetensors(void)
{
    static float f32[6] = { 1, -2, 0.5f, 3e-3f, 7, -0.25f };
    static uint16_t f16[4] = { 0x3c00, 0xc000, 0x7bff, 0x0001 };
    static int32_t i32[3] = { 0, 5, 9 };
    static uint8_t u8[5] = { 1, 2, 3, 4, 5 };
    const qn_st_entry e[] = {
        { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { 2, 3 }, .data = f32 },
        { .name = "h", .dtype = QN_DTYPE_F16, .ndim = 1, .shape = { 4 }, .data = f16 },
        { .name = "b", .dtype = QN_DTYPE_BF16, .ndim = 2, .shape = { 2, 2 }, .data = f16 },
        { .name = "idx", .dtype = QN_DTYPE_I32, .ndim = 1, .shape = { 3 }, .data = i32 },
        { .name = "mask", .dtype = QN_DTYPE_U8, .ndim = 1, .shape = { 5 }, .data = u8 },
    };
    static const char *const meta[] = { "format", "pt", NULL };
    qn_err err;
    if (qn_st_write(tmp("small.safetensors"), e, 5, meta, &err)) die("small.safetensors", &err);
    const char *files[] = { tmp("small.safetensors") };
    seed("safetensors", "small", files, 1);
}

static void layer_file(void)
{
    float W[4 * 8], H[8 * 8] = { 0 };
    for (int i = 0; i < 32; i++) W[i] = (float)((i * 37) % 11) / 7.0f - 0.7f;
    for (int j = 0; j < 8; j++) H[j * 8 + j] = 1.0f + (float)j;
    qn_err err;
    if (qn_layer_file_save(tmp("layer.safetensors"), W, 4, 8, H, &err)) die("layer", &err);
    const char *files[] = { tmp("layer.safetensors") };
    seed("layer_file", "small", files, 1);
}

/* The shipped model's configuration shrunk to dim 8, two layers: a model folder and a llama2.c checkpoint. */
static void tiny_models(void)
{
    qn_config c;
    qn_err err;
    if (qn_config_load_hf(&c, MODEL "/config.json", &err)) die("config", &err);
    c.dim = 8; c.hidden_dim = 16; c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 4; c.max_seq_len = 8;
    size_t n = qn_llama_n_tensors(&c), total = 0;
    qn_st_entry *e = calloc(n, sizeof *e);
    float *vals = calloc((size_t)c.vocab_size * 8 * 2 + 4096, sizeof *vals);
    for (size_t i = 0; i < n; i++) {
        qn_tensor_desc d = qn_llama_tensor(&c, i);
        e[i] = (qn_st_entry){ .name = strdup(d.name), .dtype = QN_DTYPE_F32, .ndim = d.ndim,
                              .shape = { d.shape[0], d.ndim == 2 ? d.shape[1] : 0 }, .data = vals };
        size_t numel = (size_t)d.shape[0] * (size_t)(d.ndim == 2 ? d.shape[1] : 1);
        for (size_t k = 0; k < numel; k++) vals[k] = (float)((k * 7919) % 97) / 97.0f - 0.5f;
        total += numel;
    }
    if (qn_st_write(tmp("model.safetensors"), e, n, NULL, &err)) die("tiny model", &err);
    if (qn_config_save_hf(&c, tmp("config.json"), &err)) die("tiny config", &err);
    const char *folder[] = { tmp("config.json"), tmp("model.safetensors"), MODEL "/tokenizer.json" };
    seed("model_folder", "tiny", folder, 3);
    /* llama2.c: 7 int32 (dim, hidden, layers, heads, kv heads, vocab, seq), the same tensors, two RoPE tables */
    int32_t head[7] = { c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len };
    size_t floats = total - (size_t)c.vocab_size * 8 * (c.tie_embeddings ? 0 : 1) +
                    (size_t)c.max_seq_len * (size_t)c.head_dim;
    FILE *fp = fopen(tmp("tiny.bin"), "wb");
    fwrite(head, sizeof head, 1, fp);
    for (size_t k = 0; k < floats; k++) fwrite(&vals[k % 4096], sizeof *vals, 1, fp);
    fclose(fp);
    const char *l2c[] = { tmp("tiny.bin") };
    seed("llama2c", "tiny", l2c, 1);
    for (size_t i = 0; i < n; i++) free((void *)e[i].name);
    free(e);
    free(vals);
}

/* A real run of a method on the shipped model: its run folder and its quantized model folder. */
static void run_folder(const char *preset)
{
    char calib[1024], out[600];
    snprintf(calib, sizeof calib, "%s/text/tinystories-valid-head.txt", g_shared);
    snprintf(out, sizeof out, "%s/run-%s", fz_dir(), preset);
    qn_quantize_job job = { .model = MODEL, .calib = calib, .out_dir = out, .force = true };
    job.config = qn_preset_find(preset)->config;
    job.config.nsamples = 4;
    job.config.seqlen = 32;
    qn_err err;
    if (qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err)) die(preset, &err);
    char log[700], cfg[700], stats[700], model[700];
    snprintf(log, sizeof log, "%s/run.jsonl", out);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    snprintf(stats, sizeof stats, "%s/stats.safetensors", out);
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    const char *run[] = { log, cfg, stats };
    seed("run_folder", preset, run, 3);
    const char *folder[] = { cfg, model, MODEL "/tokenizer.json" };
    seed("model_folder", preset, folder, 3);
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: make_seeds OUT_DIR SHARED_DIR\n"); return 2; }
    g_out = argv[1];
    g_shared = argv[2];
    mkdir(g_out, 0777);
    small_safetensors();
    layer_file();
    tiny_models();
    const char *config[] = { MODEL "/config.json" };
    seed("config", "stories260K", config, 1);
    const char *tok[] = { MODEL "/tokenizer.json", MODEL "/tokenizer_config.json" };
    seed("tokenizer", "stories260K", tok, 2);
    char gguf[1024];
    snprintf(gguf, sizeof gguf, "%s/models/stories260K/gguf/stories260K-Q4_K_M.gguf", g_shared);
    const char *gg[] = { gguf };
    seed("gguf", "stories260K-Q4_K_M", gg, 1);
    run_folder("rtn-4");
    run_folder("spqr-3.6");
    return 0;
}
