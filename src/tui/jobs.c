/* jobs.c: the worker-side functions of the workbench (see jobs.h). Each reads
   its context, calls the engine with the worker's sink and cancel flag, and
   leaves results in the context for the UI thread to take after QN_MSG_DONE.
   Layer data for the pictures comes from where it is: the run's events (the
   Hessian diagonal, W_hat while under the memory cap), the run folder
   (run_folder.h: original and quantized weights, statistics, codebooks) and,
   while a run is still going, its finished blocks' checkpoints. */
#include "tui/jobs.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/dtype.h"
#include "engine/fileio.h"
#include "engine/ggml_quants.h"
#include "engine/gguf.h"
#include "engine/json_file.h"
#include "engine/llama_layout.h"
#include "engine/model_hf.h"
#include "engine/qmethod.h"
#include "engine/run_folder.h"
#include "engine/safetensors.h"
#include "viz/font.h"
#include "viz/plot.h"
#include "viz/png.h"

/* ---- model information ---------------------------------------------------- */

void qn_model_info_free(qn_model_info *info)
{
    if (!info) return;
    free(info->shape.layers);
    free(info);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void file_size(const char *path, qn_tensor_list *l)
{
    struct stat st;
    if (stat(path, &st) == 0) { l->n_files = 1; l->file_bytes = (uint64_t)st.st_size; }
}

static qn_status gguf_tensors(const char *path, qn_tensor_list *l, qn_err *err)
{
    qn_gguf_file *f = NULL;
    qn_status s = qn_gguf_open(&f, path, err);
    if (s) return s;
    for (size_t i = 0; i < qn_gguf_tensor_count(f) && !s; i++) {
        const qn_gguf_tensor *t = qn_gguf_tensor_at(f, i);
        int64_t shape[QN_TENSOR_INFO_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d];
        s = qn_tensor_list_add(l, t->name, qn_ggml_type_name(t->type), t->ndim, shape, t->nbytes,
                               base_name(path), err);
    }
    if (!s) file_size(path, l);
    qn_gguf_close(f);
    return s;
}

static qn_status llama2c_tensors(const char *path, const qn_config *cfg, qn_tensor_list *l, qn_err *err)
{
    qn_status s = QN_OK;
    for (size_t i = 0; i < qn_llama_n_tensors(cfg) && !s; i++) {
        qn_tensor_desc d = qn_llama_tensor(cfg, i);
        size_t numel = (size_t)d.shape[0] * (size_t)(d.ndim == 2 ? d.shape[1] : 1);
        s = qn_tensor_list_add(l, d.name, "F32", d.ndim, d.shape, numel * 4, base_name(path), err);
    }
    if (!s) file_size(path, l);
    return s;
}

/* The storage types of the 2-D tensors, the most bytes first ("F32", "Q4_K+Q6_K"). */
static void weight_dtype(const qn_tensor_list *l, char *out, size_t cap)
{
    const char *names[8] = { 0 };
    uint64_t bytes[8] = { 0 };
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const qn_tensor_info *t = &l->tensors[i];
        if (t->ndim < 2) continue;
        size_t k = 0;
        while (k < n && strcmp(names[k], t->dtype) != 0) k++;
        if (k == n && n < 8) names[n++] = t->dtype;
        if (k < n) bytes[k] += t->nbytes;
    }
    out[0] = 0;
    for (int pick = 0; pick < 2 && n > 0; pick++) {
        size_t best = 0;
        for (size_t k = 1; k < n; k++)
            if (bytes[k] > bytes[best]) best = k;
        if (!bytes[best]) break;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", pick ? "+" : "", names[best]);
        bytes[best] = 0;
    }
    if (!out[0]) snprintf(out, cap, "?");
}

static void quant_config(const char *dir, qn_model_info *info)
{
    char path[QN_PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = NULL;
    qn_err ignored;
    if (qn_json_load(path, &root, &ignored)) return;
    const json_t *qc = json_object_get(root, "quantization_config");
    const char *m = json_string_value(json_object_get(qc, "quant_method"));
    if (qc) {
        info->quantized = true;
        snprintf(info->quant_method, sizeof info->quant_method, "%s", m ? m : "?");
    }
    json_decref(root);
}

/* The linears' shapes, for qn_quant_projected_bits (no weights behind them). */
static qn_status shape_model(qn_model_info *info, qn_err *err)
{
    qn_model *m = &info->shape;
    m->cfg = info->cfg;
    m->layers = calloc((size_t)info->cfg.n_layers, sizeof *m->layers);
    if (!m->layers) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < qn_llama_n_tensors(&info->cfg); i++) {
        qn_tensor_desc d = qn_llama_tensor(&info->cfg, i);
        qn_linear *lin = qn_model_linear(m, d.role, d.layer);
        if (lin && d.role != QN_T_LM_HEAD) *lin = qn_linear_f32(NULL, (size_t)d.shape[0], (size_t)d.shape[1]);
    }
    return QN_OK;
}

qn_status qn_job_info_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    (void)sink; (void)cancel;
    qn_job_info *j = ctx;
    qn_model_info *info = calloc(1, sizeof *info);
    if (!info) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    snprintf(info->path, sizeof info->path, "%s", j->path);
    qn_weight_source src = { 0 };
    qn_source_kind kind;
    qn_tensor_list list;
    qn_tensor_list_init(&list);
    qn_status s = qn_model_source_open(j->path, &info->cfg, &src, NULL, &kind, err);
    if (!s) {
        s = kind == QN_SRC_HF ? qn_hf_model_tensors(j->path, &list, err)
          : kind == QN_SRC_GGUF ? gguf_tensors(j->path, &list, err)
          : llama2c_tensors(j->path, &info->cfg, &list, err);
    }
    if (!s) {
        snprintf(info->format, sizeof info->format, "%s",
                 kind == QN_SRC_HF ? "huggingface" : kind == QN_SRC_GGUF ? "gguf" : "llama2c");
        info->n_params = qn_config_n_params(&info->cfg);
        info->bytes = list.file_bytes;
        info->n_files = list.n_files;
        info->n_tensors = list.n;
        weight_dtype(&list, info->dtype, sizeof info->dtype);
        if (kind == QN_SRC_HF) quant_config(j->path, info);
        s = shape_model(info, err);
    }
    qn_tensor_list_done(&list);
    if (src.close) src.close(src.ctx);
    if (s) { qn_model_info_free(info); return s; }
    j->info = info;
    return QN_OK;
}

/* ---- quantization, perplexity, generation --------------------------------- */

qn_status qn_job_quantize_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    qn_job_quantize *j = ctx;
    j->job.model = j->model;
    j->job.calib = j->calib;
    j->job.out_dir = j->out_dir;
    return qn_quantize_run(&j->job, sink, cancel, err);
}

static qn_status ppl_one(qn_job_ppl *j, int i, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    qn_model *m = NULL;
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_status s = qn_model_open(&m, j->model[i], &(qn_model_opts){ .sink = sink }, err);
    if (!s) s = qn_ppl_tokenize_file(m, j->text, &tokens, &n, err);
    if (!s) s = qn_ppl_run(m, tokens, n, &j->opts, sink, cancel, &j->result[i], err);
    free(tokens);
    qn_model_close(m);
    return s;
}

qn_status qn_job_ppl_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    qn_job_ppl *j = ctx;
    for (int i = 0; i < 2; i++) {
        if (!j->model[i][0]) continue;
        qn_emit(sink, &(qn_event){ .kind = QN_EV_STAGE, .stage = "ppl.model", .layer = i, .value = NAN });
        qn_err e = { 0 };
        j->status[i] = ppl_one(j, i, sink, cancel, &e);
        if (j->status[i]) snprintf(j->errmsg[i], sizeof j->errmsg[i], "%s", e.msg);
        qn_emit(sink, &(qn_event){ .kind = QN_EV_STAGE, .stage = "ppl.result", .layer = i,
                                   .value = j->status[i] ? NAN : j->result[i].ppl,
                                   .text = j->status[i] ? j->errmsg[i] : NULL });
        if (j->status[i] == QN_ERR_CANCELLED || (cancel && atomic_load(cancel))) {
            *err = e;
            return qn_err_set(err, QN_ERR_CANCELLED, "cancelled");
        }
    }
    for (int i = 0; i < 2; i++)
        if (j->model[i][0] && j->status[i]) return qn_err_set(err, j->status[i], "%s", j->errmsg[i]);
    return QN_OK;
}

qn_status qn_job_gen_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    qn_job_gen *j = ctx;
    qn_model *m = NULL;
    qn_status s = qn_model_open(&m, j->model, &(qn_model_opts){ .sink = sink }, err);
    if (!s) s = qn_generate(m, j->prompt, strlen(j->prompt), &j->opts, sink, cancel, &j->result, err);
    free(j->result.tokens);
    j->result.tokens = NULL;
    qn_model_close(m);
    return s;
}

/* ---- one layer's data ------------------------------------------------------ */

void qn_layer_data_unref(qn_layer_data *d)
{
    if (!d || --d->refs > 0) return;
    free(d->W);
    free(d->W_hat);
    free(d->hdiag);
    free(d->mask);
    free(d->codewords);
    free(d->usage);
    free(d);
}

void qn_job_layer_free(qn_job_layer *j)
{
    if (!j) return;
    free(j->hdiag);
    free(j->W_hat);
    free(j->mask);
    free(j->codewords);
    free(j->usage);
    qn_layer_data_unref(j->out);
    free(j);
}

static void note(qn_layer_data *d, const char *fmt, const char *what)
{
    size_t len = strlen(d->note);
    if (len + 2 < sizeof d->note) snprintf(d->note + len, sizeof d->note - len, len ? "; " : "");
    len = strlen(d->note);
    snprintf(d->note + len, sizeof d->note - len, fmt, what);
}

static float *copy_floats(const void *src, size_t n)
{
    float *f = malloc(n * sizeof *f);
    if (f) memcpy(f, src, n * sizeof *f);
    return f;
}

static void load_original(qn_job_layer *j, qn_layer_data *d)
{
    qn_config cfg;
    qn_weight_source src = { 0 };
    qn_source_kind kind;
    qn_err e = { 0 };
    char name[160];
    snprintf(name, sizeof name, "%s.weight", j->name);
    qn_f32_tensor t = { 0 };
    if (qn_model_source_open(j->model, &cfg, &src, NULL, &kind, &e) == QN_OK &&
        src.get(src.ctx, name, &t, &e) == QN_OK) {
        if ((size_t)t.shape[0] == d->d_out && (size_t)t.shape[1] == d->d_in) {
            if (t.owned) { d->W = t.data; t.data = NULL; }
            else d->W = copy_floats(t.data, d->d_out * d->d_in);
        }
        qn_f32_tensor_done(&t);
    }
    if (!d->W) note(d, "original weights: %s", e.msg[0] ? e.msg : "not found");
    if (src.close) src.close(src.ctx);
}

static void *copy_bytes(const void *src, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p) memcpy(p, src, n);
    return p;
}

/* What the run folder (run_folder.h) holds for the layer: the original and the
   quantized weights, the Hessian diagonal, SpQR outliers, AQLM codebooks. */
static void load_from_run(qn_job_layer *j, qn_layer_data *d)
{
    qn_run_folder *run = NULL;
    qn_err e = { 0 };
    if (qn_run_open(&run, j->run_dir, &e)) { note(d, "%s", e.msg); return; }
    const qn_run_info *info = qn_run_get_info(run);
    float *W = NULL;
    size_t rows = 0, cols = 0;
    if (!d->W && qn_run_weights(run, j->name, true, &W, &rows, &cols, &e) == QN_OK) {
        if (rows == d->d_out && cols == d->d_in) d->W = W;
        else free(W);
    }
    if (!d->W_hat && info->has_model && qn_run_weights(run, j->name, false, &W, &rows, &cols, &e) == QN_OK) {
        if (rows == d->d_out && cols == d->d_in) d->W_hat = W;
        else free(W);
    }
    const float *diag;
    size_t n;
    if (!d->hdiag && info->has_hessian && qn_run_hessian_diag(run, j->name, &diag, &n, &e) == QN_OK && n == d->d_in)
        d->hdiag = copy_floats(diag, n);
    const uint8_t *mask;
    if (!d->mask && info->has_outlier_masks && qn_run_outlier_mask(run, j->name, &mask, &rows, &cols, &e) == QN_OK &&
        rows == d->d_out && cols == d->d_in)
        d->mask = copy_bytes(mask, rows * cols);
    const float *cw;
    const uint32_t *usage;
    size_t M, K, g;
    if (!d->codewords && info->has_codebooks && qn_run_codebooks(run, j->name, &cw, &usage, &M, &K, &g, &e) == QN_OK) {
        d->codewords = copy_floats(cw, M * K * g);
        d->usage = copy_bytes(usage, M * K * sizeof *usage);
        d->M = M; d->K = K; d->g = g;
    }
    qn_run_close(run);
}

/* The run's quantization settings, from its config.json or its run.jsonl. */
static bool run_config(const char *dir, qn_quant_config *q)
{
    char path[QN_PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = NULL;
    qn_err e;
    if (qn_json_load(path, &root, &e) == QN_OK) {
        bool ok = qn_qmethod_config_parse(json_object_get(root, "quantization_config"), path, q, &e) == QN_OK;
        json_decref(root);
        return ok;
    }
    qn_quantize_job job;
    char model[QN_PATH_CAP], calib[QN_PATH_CAP];
    if (qn_quantize_job_from_log(dir, &job, model, sizeof model, calib, sizeof calib, &e)) return false;
    *q = job.config;
    return true;
}

/* AQLM codebooks (M, K, 1, g) fp16 and usage counted from the codes (a block
   checkpoint of a run still going: its stats.safetensors comes at the end). */
static void load_codebook(qn_layer_data *d, const qn_st_file *f, const char *base)
{
    char name[160];
    snprintf(name, sizeof name, "%s.codebooks", base);
    const qn_st_tensor *cb = qn_st_find(f, name);
    snprintf(name, sizeof name, "%s.codes", base);
    const qn_st_tensor *codes = qn_st_find(f, name);
    if (!cb || !codes || cb->ndim != 4 || cb->dtype != QN_DTYPE_F16 || codes->ndim != 3) return;
    size_t M = (size_t)cb->shape[0], K = (size_t)cb->shape[1], g = (size_t)cb->shape[3];
    if ((size_t)codes->shape[2] != M) return;
    d->codewords = malloc(M * K * g * sizeof(float));
    d->usage = calloc(M * K, sizeof(uint32_t));
    if (!d->codewords || !d->usage) return;
    const uint16_t *h = cb->data;
    for (size_t i = 0; i < M * K * g; i++) d->codewords[i] = qn_f16_to_f32(h[i]);
    size_t n = (size_t)codes->shape[0] * (size_t)codes->shape[1];
    bool wide = codes->dtype == QN_DTYPE_I16;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < M; m++) {
            unsigned v = wide ? (uint16_t)((const int16_t *)codes->data)[i * M + m]
                              : (uint8_t)((const int8_t *)codes->data)[i * M + m];
            d->usage[m * K + v % K]++;
        }
    d->M = M; d->K = K; d->g = g;
}

/* SpQR's stored outliers (CSR: row_ptr (d_out + 1) I32, col_idx U16 in original
   column order) as a mask, for runs whose stats.safetensors is not written yet. */
static uint8_t *outliers_from_csr(const qn_st_file *f, const char *base, size_t d_out, size_t d_in)
{
    char name[160];
    snprintf(name, sizeof name, "%s.outlier_row_ptr", base);
    const qn_st_tensor *rp = qn_st_find(f, name);
    snprintf(name, sizeof name, "%s.outlier_col_idx", base);
    const qn_st_tensor *ci = qn_st_find(f, name);
    if (!rp || !ci || rp->dtype != QN_DTYPE_I32 || ci->dtype != QN_DTYPE_U16 || rp->nbytes != (d_out + 1) * 4)
        return NULL;
    const int32_t *row_ptr = rp->data;
    const uint16_t *cols = ci->data;
    size_t n = ci->nbytes / 2;
    uint8_t *mask = calloc(d_out * d_in, 1);
    if (!mask) return NULL;
    for (size_t r = 0; r < d_out; r++)
        for (int32_t k = row_ptr[r]; k < row_ptr[r + 1]; k++)
            if (k >= 0 && (size_t)k < n && cols[k] < d_in) mask[r * d_in + cols[k]] = 1;
    return mask;
}

/* A run still going: its finished blocks are checkpointed (quantize.h) with
   the stored linears, from which W_hat, outliers and codebooks are read. */
static void load_checkpoint(qn_job_layer *j, qn_layer_data *d)
{
    qn_quant_config q;
    if (!run_config(j->run_dir, &q)) { if (!d->W_hat) note(d, "%s", "quantized weights: no finished block"); return; }
    char path[QN_PATH_CAP + 64];
    snprintf(path, sizeof path, "%s/blocks/block-%04d.safetensors", j->run_dir, j->block);
    qn_st_file *f = NULL;
    qn_err e = { 0 };
    if (!qn_path_exists(path) || qn_st_open(&f, path, &e)) {
        if (!d->W_hat) note(d, "quantized weights: %s", e.msg[0] ? e.msg : "block not finished");
        return;
    }
    if (!d->W_hat && (d->W_hat = malloc(d->d_out * d->d_in * sizeof(float))) &&
        qn_qmethod_dequantize(&q, qn_raw_lookup_st(f), j->name, d->d_out, d->d_in, d->W_hat, &e)) {
        free(d->W_hat);
        d->W_hat = NULL;
        note(d, "quantized weights: %s", e.msg);
    }
    if (q.method == QN_METHOD_AQLM && !d->usage) load_codebook(d, f, j->name);
    if (!d->mask) d->mask = outliers_from_csr(f, j->name, d->d_out, d->d_in);
    qn_st_close(f);
}

qn_status qn_job_layer_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    (void)sink; (void)cancel;
    qn_job_layer *j = ctx;
    qn_layer_data *d = calloc(1, sizeof *d);
    if (!d) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    d->refs = 1;
    snprintf(d->name, sizeof d->name, "%s", j->name);
    const char *p = strstr(j->name, "layers.");
    const char *rest = p ? strchr(p + 7, '.') : NULL;
    snprintf(d->title, sizeof d->title, "block %d %.70s", j->block, rest ? rest + 1 : j->name);
    d->role = j->role;
    d->block = j->block;
    d->d_out = j->d_out;
    d->d_in = j->d_in;
    d->rel_err = j->rel_err;
    d->bits = j->bits;
    d->hdiag = j->hdiag;
    d->W_hat = j->W_hat;
    j->hdiag = j->W_hat = NULL;
    d->mask = j->mask;
    j->mask = NULL;
    if (j->codewords && j->usage) {
        d->codewords = j->codewords;
        d->usage = j->usage;
        d->M = j->M; d->K = j->K; d->g = j->g;
        j->codewords = NULL;
        j->usage = NULL;
    }
    if (j->run_dir[0]) load_from_run(j, d);
    if (!d->W) load_original(j, d);
    char cfg[QN_PATH_CAP + 16];
    snprintf(cfg, sizeof cfg, "%s/config.json", j->run_dir);
    if (j->run_dir[0] && !qn_path_exists(cfg)) load_checkpoint(j, d);
    j->out = d;
    return QN_OK;
}

/* ---- a run folder from disk ------------------------------------------------ */

static const int k_roles[QN_RUN_SUBLAYERS] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };

void qn_job_openrun_free(qn_job_openrun *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->n_layers; i++) qn_ui_layer_free(j->layers[i]);
    free(j->layers);
    free(j);
}

qn_status qn_job_openrun_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    (void)sink; (void)cancel;
    qn_job_openrun *j = ctx;
    qn_run_folder *run = NULL;
    qn_status s = qn_run_open(&run, j->dir, err);
    if (s) return s;
    const qn_run_info *info = qn_run_get_info(run);
    j->layers = calloc(info->n_layers ? info->n_layers : 1, sizeof *j->layers);
    if (!j->layers) s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !s && i < info->n_layers; i++) {
        const qn_run_layer *L = &info->layers[i];
        qn_ui_layer *l = calloc(1, sizeof *l);
        if (!l) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); break; }
        snprintf(l->name, sizeof l->name, "%s", L->name);
        snprintf(l->sublayer, sizeof l->sublayer, "%s", qn_run_sublayer_names[L->sublayer]);
        l->role = k_roles[L->sublayer];
        l->block = L->block;
        l->d_out = L->d_out;
        l->d_in = L->d_in;
        l->rel_err = L->relative_error;
        l->bits = L->bits;
        l->n_outliers = L->outliers;
        l->outlier_fraction = L->outlier_fraction;
        l->seconds = L->seconds;
        j->layers[j->n_layers++] = l;
    }
    snprintf(j->model, sizeof j->model, "%s", info->model ? info->model : "");
    snprintf(j->label, sizeof j->label, "%s", info->method_label ? info->method_label : "?");
    j->n_blocks = info->n_blocks;
    j->finished = info->finished;
    j->has_model = info->has_model;
    j->seconds = info->seconds;
    qn_run_close(run);
    return s;
}

/* ---- picture values and PNG export ----------------------------------------- */

const char *qn_pic_name(qn_pic_kind k)
{
    static const char *const names[QN_PIC_COUNT] = { "weights", "error", "outliers", "codebook", "hessian" };
    return (unsigned)k < QN_PIC_COUNT ? names[k] : "?";
}

qn_region qn_layer_data_extent(const qn_layer_data *d, qn_pic_kind kind)
{
    if (kind == QN_PIC_CODEBOOK) return (qn_region){ 0, 0, d->M, d->K };
    if (kind == QN_PIC_HESSIAN) return (qn_region){ 0, 0, 1, d->d_in };
    return (qn_region){ 0, 0, d->d_out, d->d_in };
}

float *qn_layer_data_values(const qn_layer_data *d, qn_pic_kind kind, qn_region g, size_t *rows, size_t *cols)
{
    const bool ok = kind == QN_PIC_WEIGHTS ? d->W != NULL
                  : kind == QN_PIC_ERROR ? d->W && d->W_hat
                  : kind == QN_PIC_OUTLIERS ? d->mask != NULL
                  : kind == QN_PIC_CODEBOOK ? d->usage != NULL : d->hdiag != NULL;
    qn_region ext = qn_layer_data_extent(d, kind);
    if (!ok || g.nr == 0 || g.nc == 0 || g.r0 + g.nr > ext.nr || g.c0 + g.nc > ext.nc) return NULL;
    float *v = malloc(g.nr * g.nc * sizeof *v);
    if (!v) return NULL;
    for (size_t r = 0; r < g.nr; r++)
        for (size_t c = 0; c < g.nc; c++) {
            size_t R = g.r0 + r, C = g.c0 + c, i = R * ext.nc + C;
            float x;
            switch (kind) {
            case QN_PIC_WEIGHTS: x = d->W[i]; break;
            case QN_PIC_ERROR: {
                float e = d->W[i] - d->W_hat[i];
                x = e * e * (d->hdiag ? d->hdiag[C] : 1.0f);
                break;
            }
            case QN_PIC_OUTLIERS: x = d->mask[i]; break;
            case QN_PIC_CODEBOOK: x = (float)d->usage[i]; break;
            default: x = d->hdiag[C]; break;
            }
            v[r * g.nc + c] = x;
        }
    *rows = g.nr;
    *cols = g.nc;
    return v;
}

static qn_status render(qn_job_export *j, qn_font *font, qn_picture *pic, qn_err *err)
{
    const qn_layer_data *d = j->data;
    char layer[160];
    snprintf(layer, sizeof layer, "%s%s", d->title,
             j->region.nr < qn_layer_data_extent(d, j->kind).nr || j->region.nc < qn_layer_data_extent(d, j->kind).nc
             ? " (zoomed)" : "");
    qn_viz_opts o = { .title = { .model = j->model_name, .layer = layer, .method = j->method, .bits = d->bits },
                      .no_color = j->no_color };
    if (j->kind == QN_PIC_CODEBOOK)
        return qn_viz_codebook(pic, font, d->codewords, d->usage, d->M, d->K, d->g, &o, err);
    size_t rows = 0, cols = 0;
    float *v = qn_layer_data_values(d, j->kind, j->region, &rows, &cols);
    if (!v) return qn_err_set(err, QN_ERR_ARG, "no %s data for %s", qn_pic_name(j->kind), d->name);
    qn_status s;
    if (j->kind == QN_PIC_WEIGHTS) s = qn_viz_weights(pic, font, v, rows, cols, &o, err);
    else if (j->kind == QN_PIC_ERROR) s = qn_viz_error(pic, font, v, rows, cols, &o, err);
    else if (j->kind == QN_PIC_OUTLIERS) {
        uint8_t *mask = malloc(rows * cols);
        if (!mask) { free(v); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
        for (size_t i = 0; i < rows * cols; i++) mask[i] = v[i] != 0;
        s = qn_viz_outliers(pic, font, mask, rows, cols, &o, err);
        free(mask);
    } else {
        const float *diag[1] = { v };
        const char *names[1] = { d->title };
        s = qn_viz_hessian(pic, font, diag, &cols, 1, names, &o, err);
    }
    free(v);
    return s;
}

qn_status qn_job_export_run(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    (void)sink; (void)cancel;
    qn_job_export *j = ctx;
    qn_font *font = NULL;
    qn_picture pic = { 0 };
    qn_status s = qn_font_open(&font, NULL, err);
    if (!s) s = render(j, font, &pic, err);
    if (!s) {
        qn_png_text text[] = { { "quench.model", j->model_name }, { "quench.layer", j->data->name },
                               { "quench.method", j->method }, { "quench.picture", qn_pic_name(j->kind) } };
        s = qn_png_write(j->path, &pic.image, text, sizeof text / sizeof text[0], err);
    }
    qn_picture_done(&pic);
    qn_font_close(font);
    return s;
}
