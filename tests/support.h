/* support.h: what several test files need: where the shared data is, scratch
   folders, running the quench binary, and comparing float arrays. */
#ifndef QN_TEST_SUPPORT_H
#define QN_TEST_SUPPORT_H
#include <stdbool.h>
#include <stddef.h>
#include "engine/quantize.h"
#include "engine/safetensors.h"

/* $QN_SHARED/rel (QN_SHARED defaults to ../shared). Returns a static buffer per call slot. */
const char *ts_shared(const char *rel);
/* A fresh directory under /tmp; removed by ts_rmtree. */
void ts_mkdtemp(char *out, size_t cap);
void ts_rmtree(const char *dir);
/* dir + "/" + name in one of 8 static buffers used in turn (valid for the next 7 calls). */
const char *ts_join(const char *dir, const char *name);
/* Copies a file, keeping only its first `keep` bytes (all when keep is (size_t)-1). */
void ts_copy_prefix(const char *src, const char *dst, size_t keep);
void ts_write_file(const char *path, const void *data, size_t n);
/* Copies the safetensors file src to dst with the tensor `name` replaced by a
   copy that edit may change (values, dtype, shape); asserts on failure. */
void ts_st_rewrite(const char *src, const char *dst, const char *name,
                   void (*edit)(void *ctx, qn_st_entry *e, float *copy, size_t numel), void *ctx);
/* Whether two files exist and hold the same bytes. */
bool ts_files_equal(const char *a, const char *b);

typedef struct {
    int   status;   /* exit code, or 128+signal */
    char *out;      /* stdout, NUL-terminated */
    char *err;      /* stderr, NUL-terminated */
} ts_run_result;
/* Runs $QN_BIN with the arguments (NULL-terminated), capturing both streams. */
ts_run_result ts_run_quench(const char *const *args);
void          ts_run_free(ts_run_result *r);

/* The last line of a command's stdout parsed as JSON (asserts that it is). */
struct json_t;
struct json_t *ts_last_json(const char *out);

/* max |a - b| / max(|b|, floor), and the index where it occurs. */
double ts_max_rel_diff(const float *a, const float *b, size_t n, double floor, size_t *at);

/* The entry of shared/reference/layer-reference.json's "results" with this
   method, config and (when not NULL) layer; NULL when absent. Borrowed from root. */
struct json_t *ts_layer_reference(struct json_t *root, const char *method, const char *layer, const char *config);

/* Perplexity of m on the shared TinyStories text, llama.cpp's protocol at ctx 256,
   over the first max_chunks chunks (asserts on failure). */
struct qn_model;
double ts_model_ppl(struct qn_model *m, size_t max_chunks);
/* The same for the model folder dir, opened with the default options. */
double ts_folder_ppl(const char *dir, size_t max_chunks);

/* A quantize job of a preset on the default model with a small calibration set
   (8 windows of 64 tokens), writing to out. */
qn_quantize_job ts_small_job(const char *preset, const char *out);
/* Runs it (asserts on failure). */
void ts_quantize_small(const char *preset, const char *out);

/* The default model shipped in assets/ (a HF folder made by import-llama2c). */
#define TS_STORIES_HF "assets/stories260K"

#endif
