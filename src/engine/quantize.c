/* quantize.c: the whole-model compression job (see quantize.h).
   Layout of the output folder while a run is going:
     DIR/run.jsonl                 appended as events happen
     DIR/blocks/block-NNNN.safetensors   stored linears of each finished block
     DIR/blocks/stats-NNNN.safetensors   that block's statistics (written just before it)
   and at the end, each written under a temporary name and renamed:
     DIR/model.safetensors, DIR/stats.safetensors, DIR/config.json, tokenizer files,
     then, for SpQR w3 with 16x16 tiles, the Hugging Face SpQR layout in DIR/hf-spqr/.
   A resumed run reads the finished blocks back, puts their dequantized weights
   into the model and recomputes the next block's inputs through them, so it
   continues exactly where the interrupted run would have been; the block
   checkpoints stay until the end event is logged, so a run that died during
   its final writes is finished from them without quantizing anything again. */
#include "engine/quantize.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/calib.h"
#include "engine/export_hf.h"
#include "engine/fileio.h"
#include "engine/finetune.h"
#include "engine/json_file.h"
#include "engine/llama_layout.h"
#include "engine/ppl.h"
#include "engine/qmethod.h"
#include "engine/run_lock.h"
#include "engine/runlog.h"
#include "engine/speed.h"
#include "engine/spqr_hf.h"
#include "engine/tensor_set.h"
#include "engine/tokenizer.h"

typedef struct {
    const qn_quantize_job *job;
    qn_quant_config cfg;          /* the job's, fitted to the model's shapes */
    qn_model      *model;
    qn_event_sink  user;          /* the caller's sink */
    const atomic_bool *cancel;
    qn_runlog     *log;
    qn_run_lock    lock;          /* held from before the folder is cleared until the end */
    qn_tensor_set  block;         /* stored linears of the block being quantized */
    qn_tensor_set  stats;         /* per-linear data for the pictures */
    qn_status      sink_status;   /* a failed run.jsonl write, reported after the layer */
    qn_err         sink_err;
    double         t0;
    double         bits_sum, params_sum;   /* parameter-weighted average bits */
    double         prev_seconds;  /* what the interrupted sessions of a resumed run took */
    char           dir[4096];
} job_state;

static qn_status path_in(char *buf, size_t cap, const char *dir, const char *name, qn_err *err)
{
    if (!qn_path_join(buf, cap, dir, name)) return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    return QN_OK;
}

static void block_file(char *buf, size_t cap, const char *dir, int layer)
{
    snprintf(buf, cap, "%s/blocks/block-%04d.safetensors", dir, layer);
}

static void block_stats_file(char *buf, size_t cap, const char *dir, int layer)
{
    snprintf(buf, cap, "%s/blocks/stats-%04d.safetensors", dir, layer);
}

/* Number of consecutive finished blocks from 0. */
static int finished_blocks(const char *dir, int n_layers)
{
    char path[4200];
    int n = 0;
    while (n < n_layers) {
        block_file(path, sizeof path, dir, n);
        if (!qn_path_exists(path)) break;
        n++;
    }
    return n;
}

static qn_status log_event(job_state *js, json_t *ev, qn_err *err)
{
    json_object_set_new(ev, "time", json_real(qn_now() - js->t0));
    qn_status s = qn_runlog_write(js->log, ev, err);
    json_decref(ev);
    return s;
}

/* Bit-packed (d_out, ceil(d_in/8)) mask of the weights SpQR kept as outliers. */
static uint8_t *outlier_mask(const qn_tensor_set *block, const char *base, size_t d_out, size_t d_in)
{
    char name[256];
    snprintf(name, sizeof name, "%s.outlier_row_ptr", base);
    const qn_st_entry *rp = qn_tensor_set_find(block, name);
    snprintf(name, sizeof name, "%s.outlier_col_idx", base);
    const qn_st_entry *ci = qn_tensor_set_find(block, name);
    size_t rb = (d_in + 7) / 8;
    uint8_t *mask = calloc(d_out * rb + 1, 1);
    if (!mask || !rp || !ci) return mask;
    const int32_t *row_ptr = rp->data;
    const uint16_t *cols = ci->data;
    for (size_t r = 0; r < d_out; r++)
        for (int32_t k = row_ptr[r]; k < row_ptr[r + 1]; k++) mask[r * rb + cols[k] / 8] |= (uint8_t)(1u << (cols[k] % 8));
    return mask;
}

static qn_status record_stats(job_state *js, const qn_calib_layer_event *le, qn_err *err)
{
    char name[256];
    int64_t diag_shape[1] = { (int64_t)le->d_in };
    snprintf(name, sizeof name, "%s.hessian_diag", le->name);
    qn_status s = qn_tensor_set_copy(&js->stats, name, QN_DTYPE_F32, 1, diag_shape, le->hessian_diag,
                                     le->d_in * sizeof(float), err);
    if (s || js->cfg.method != QN_METHOD_SPQR) return s;
    uint8_t *mask = outlier_mask(&js->block, le->name, le->d_out, le->d_in);
    if (!mask) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    int64_t mshape[2] = { (int64_t)le->d_out, (int64_t)((le->d_in + 7) / 8) };
    snprintf(name, sizeof name, "%s.outlier_mask", le->name);
    return qn_tensor_set_add(&js->stats, name, QN_DTYPE_U8, 2, mshape, mask, 1, err);
}

/* AQLM: one "round" event per round of the layer, for convergence plots. */
static qn_status log_rounds(job_state *js, const char *base, qn_err *err)
{
    char name[256];
    snprintf(name, sizeof name, "%s.loss_history", base);
    const qn_st_entry *e = qn_tensor_set_find(&js->stats, name);
    if (!e) return QN_OK;
    const double *loss = e->data;
    qn_status s = QN_OK;
    for (int64_t r = 0; r < e->shape[0] && !s; r++)
        s = log_event(js, json_pack("{s:s, s:s, s:I, s:f}", "event", "round", "name", base, "round", (json_int_t)r,
                                    "loss", loss[r]), err);
    return s;
}

/* Sits between the engine and the caller: writes the run record, keeps stats. */
static void job_sink(void *ctx, const qn_event *ev)
{
    job_state *js = ctx;
    if (ev->kind == QN_EV_LAYER_DONE && ev->payload && js->sink_status == QN_OK) {
        const qn_calib_layer_event *le = ev->payload;
        const qn_layer_result *r = le->result;
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:I, s:I, s:f, s:f, s:I, s:f, s:f}", "event", "layer",
                              "name", le->name, "block", le->block, "sublayer", strrchr(le->name, '.') + 1,
                              "d_out", (json_int_t)le->d_out, "d_in", (json_int_t)le->d_in,
                              "relative_error", r->relative_error, "bits", r->bits,
                              "outliers", (json_int_t)r->n_outliers, "outlier_fraction", r->outlier_fraction,
                              "seconds", r->seconds);
        js->sink_status = log_event(js, o, &js->sink_err);
        if (!js->sink_status) js->sink_status = log_rounds(js, le->name, &js->sink_err);
        if (!js->sink_status) js->sink_status = record_stats(js, le, &js->sink_err);
        js->bits_sum += r->bits * (double)(le->d_out * le->d_in);
        js->params_sum += (double)(le->d_out * le->d_in);
        if (!js->sink_status) {
            /* the statistics just recorded go with the event, for live views */
            qn_calib_layer_event live = *le;
            char name[256];
            snprintf(name, sizeof name, "%s.outlier_mask", le->name);
            const qn_st_entry *e = qn_tensor_set_find(&js->stats, name);
            live.outlier_mask = e ? e->data : NULL;
            snprintf(name, sizeof name, "%s.codebooks", le->name);
            const qn_st_entry *cb = qn_tensor_set_find(&js->stats, name);
            snprintf(name, sizeof name, "%s.codebook_usage", le->name);
            const qn_st_entry *us = qn_tensor_set_find(&js->stats, name);
            if (cb && us && cb->ndim == 3) {
                live.codebooks = cb->data;
                live.codebook_usage = us->data;
                live.M = (size_t)cb->shape[0];
                live.K = (size_t)cb->shape[1];
                live.g = (size_t)cb->shape[2];
            }
            qn_event fwd = *ev;
            fwd.payload = &live;
            qn_emit(js->user, &fwd);
            return;
        }
    }
    qn_emit(js->user, ev);
}

static qn_status quantize_linear(void *ctx, qn_tensor_role role, int layer, const qn_layer_problem *p,
                                 qn_layer_result *res, qn_err *err)
{
    (void)role; (void)layer;
    job_state *js = ctx;
    double t0 = qn_now();
    qn_status s = qn_qmethod_quantize(&js->cfg, p, p->name, (qn_event_sink){ job_sink, js }, js->cancel, res,
                                      &js->block, &js->stats, err);
    res->seconds = qn_now() - t0;
    return s;
}

/* The statistics of one block beside its checkpoint, so that a resumed run still has them. */
static qn_status write_block_stats(job_state *js, int layer, qn_err *err)
{
    char prefix[64], path[4200];
    snprintf(prefix, sizeof prefix, "model.layers.%d.", layer);
    qn_tensor_set part = {0};
    qn_status s = QN_OK;
    for (size_t i = 0; i < js->stats.n && !s; i++) {
        const qn_st_entry *e = &js->stats.entries[i];
        if (strncmp(e->name, prefix, strlen(prefix)) == 0)
            s = qn_tensor_set_add(&part, e->name, e->dtype, e->ndim, e->shape, (void *)e->data, 0, err);
    }
    block_stats_file(path, sizeof path, js->dir, layer);
    if (!s) s = qn_tensor_set_write(&part, path, NULL, err);
    qn_tensor_set_clear(&part);
    return s;
}

/* Resume: the statistics of the finished blocks back into the run's, in the order they were made. */
static qn_status load_block_stats(job_state *js, int n_done, qn_err *err)
{
    for (int layer = 0; layer < n_done; layer++) {
        char path[4200];
        block_stats_file(path, sizeof path, js->dir, layer);
        if (!qn_path_exists(path)) continue;   /* a checkpoint of a quench that did not keep them */
        qn_st_file *f = NULL;
        qn_status s = qn_st_open(&f, path, err);
        for (size_t i = 0; !s && i < qn_st_count(f); i++) {
            const qn_st_tensor *t = qn_st_at(f, i);
            s = qn_tensor_set_copy(&js->stats, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes, err);
        }
        qn_st_close(f);
        if (s) return qn_err_prefix(err, "resuming: ");
    }
    return QN_OK;
}

static qn_status block_done(void *ctx, int layer, qn_err *err)
{
    job_state *js = ctx;
    if (js->sink_status) { *err = js->sink_err; return js->sink_status; }
    char path[4200];
    block_file(path, sizeof path, js->dir, layer);
    qn_status s = write_block_stats(js, layer, err);
    if (!s) s = qn_tensor_set_write(&js->block, path, NULL, err);
    qn_tensor_set_clear(&js->block);
    if (s) return s;
    return log_event(js, json_pack("{s:s, s:i}", "event", "block", "block", layer), err);
}

static qn_finetune_opts finetune_opts(const qn_quant_config *q)
{
    qn_finetune_opts d = qn_finetune_opts_default();   /* the research code's Adam betas */
    return (qn_finetune_opts){ .max_epochs = q->finetune_epochs, .lr = q->finetune_lr, .beta1 = d.beta1,
                               .beta2 = d.beta2, .batch_size = q->finetune_batch, .rel_tol = q->finetune_tol,
                               .seed = q->seed };
}

/* AQLM paper §3.4: the quantized block's codebooks, scales and norms tuned to
   reproduce the original block's outputs; the tuned values go into the block's
   checkpoint and the model before the next block calibrates. */
static qn_status tune_block(void *ctx, int layer, const float *X, const float *Y, qn_err *err)
{
    job_state *js = ctx;
    qn_finetune_opts o = finetune_opts(&js->cfg);
    qn_finetune_result r;
    qn_status s = qn_finetune_aqlm_block(js->model, layer, &js->cfg, &js->block, X, Y, js->cfg.nsamples,
                                         js->cfg.seqlen, &o, (qn_event_sink){ job_sink, js }, js->cancel, &r, err);
    if (s) return s;
    return log_event(js, json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:i, s:i, s:f}", "event", "finetune", "block", layer,
                                   "mse_before", r.mse_before, "mse_after", r.mse_after, "relative_before",
                                   r.rel_before, "relative_after", r.rel_after, "epochs", r.epochs, "best_epoch",
                                   r.best_epoch, "seconds", r.seconds), err);
}

/* The start event's record of the fine-tuning knobs (absent when off). */
static json_t *finetune_json(const qn_quant_config *q)
{
    return json_pack("{s:i, s:f, s:I, s:f}", "max_epochs", q->finetune_epochs, "lr", q->finetune_lr, "batch_size",
                     (json_int_t)q->finetune_batch, "relative_mse_tolerance", q->finetune_tol);
}

static qn_status finetune_parse(const json_t *ft, const char *path, qn_quant_config *q, qn_err *err)
{
    if (!ft) return QN_OK;
    json_t *e = json_object_get(ft, "max_epochs"), *lr = json_object_get(ft, "lr"),
           *b = json_object_get(ft, "batch_size"), *t = json_object_get(ft, "relative_mse_tolerance");
    if (!json_is_integer(e) || !json_is_number(lr) || !json_is_integer(b) || !json_is_number(t))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: the start event's finetune block lacks a field", path);
    q->finetune_epochs = (int)json_integer_value(e);
    q->finetune_lr = json_number_value(lr);
    q->finetune_batch = (size_t)json_integer_value(b);
    q->finetune_tol = json_number_value(t);
    qn_finetune_opts o = finetune_opts(q);
    return qn_finetune_opts_check(&o, err);
}

/* Puts the dequantized weights of finished blocks into the model (resume). */
static qn_status load_finished(job_state *js, int n_done, qn_err *err)
{
    qn_model *m = js->model;
    for (int layer = 0; layer < n_done; layer++) {
        char path[4200];
        block_file(path, sizeof path, js->dir, layer);
        qn_st_file *f = NULL;
        qn_status s = qn_st_open(&f, path, err);
        if (s) return s;
        static const qn_tensor_role roles[] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };
        for (size_t i = 0; i < sizeof roles / sizeof roles[0] && !s; i++) {
            qn_linear *lin = qn_model_linear(m, roles[i], layer);
            char base[96];
            qn_llama_tensor_name(roles[i], layer, base, sizeof base);
            base[strlen(base) - strlen(".weight")] = 0;
            float *W = malloc(lin->d_out * lin->d_in * sizeof *W);
            if (!W) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); break; }
            s = qn_qmethod_dequantize(&js->cfg, qn_raw_lookup_st(f), base, lin->d_out, lin->d_in, W, err);
            if (!s) s = qn_model_replace_linear(m, roles[i], layer, W, err);
            if (s) free(W);
        }
        if (!s) s = qn_finetune_restore_norms(m, layer, f, err);
        qn_st_close(f);
        if (s) return qn_err_prefix(err, "resuming from %s: ", path);
    }
    return QN_OK;
}

/* The unquantized tensors (embeddings, norms, head) plus every block's stored linears. */
static qn_status write_model(job_state *js, qn_err *err)
{
    const qn_model *m = js->model;
    const qn_config *c = &m->cfg;
    qn_tensor_set all = {0};
    qn_st_file **blocks = calloc((size_t)c->n_layers, sizeof *blocks);
    qn_status s = blocks ? QN_OK : qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    size_t n = qn_llama_n_tensors(c);
    for (size_t i = 0; i < n && !s; i++) {
        qn_tensor_desc d = qn_llama_tensor(c, i);
        const float *data = d.role == QN_T_EMBED ? m->embed : d.role == QN_T_FINAL_NORM ? m->final_norm
                          : d.role == QN_T_LM_HEAD ? m->lm_head.w : d.role == QN_T_ATTN_NORM ? m->layers[d.layer].attn_norm
                          : d.role == QN_T_FFN_NORM ? m->layers[d.layer].ffn_norm : NULL;
        if (data) s = qn_tensor_set_add(&all, d.name, QN_DTYPE_F32, d.ndim, d.shape, (void *)data, 0, err);
    }
    for (int l = 0; l < c->n_layers && !s; l++) {
        char path[4200];
        block_file(path, sizeof path, js->dir, l);
        if ((s = qn_st_open(&blocks[l], path, err))) break;
        for (size_t i = 0; i < qn_st_count(blocks[l]) && !s; i++) {
            const qn_st_tensor *t = qn_st_at(blocks[l], i);
            if (qn_tensor_set_find(&all, t->name)) continue;   /* tuned norms: already taken from the model */
            s = qn_tensor_set_add(&all, t->name, t->dtype, t->ndim, t->shape, (void *)t->data, 0, err);
        }
    }
    char path[4200];
    static const char *const meta[] = { "format", "pt", "producer", "quench", NULL };
    if (!s) s = path_in(path, sizeof path, js->dir, "model.safetensors", err);
    if (!s) s = qn_tensor_set_write(&all, path, meta, err);
    qn_tensor_set_clear(&all);
    for (int l = 0; blocks && l < c->n_layers; l++) qn_st_close(blocks[l]);
    free(blocks);
    return s;
}

static qn_status write_config(job_state *js, qn_err *err)
{
    char path[4200];
    qn_status s = path_in(path, sizeof path, js->dir, "config.json", err);
    if (s) return s;
    json_t *root = qn_config_json(&js->model->cfg);
    json_object_set_new(root, "quantization_config", qn_qmethod_config_json(&js->cfg));
    s = qn_json_save(root, path, err);
    json_decref(root);
    return s;
}

/* Tokenizer files: copied from a Hugging Face folder, written anew otherwise. */
static qn_status write_tokenizer(job_state *js, qn_err *err)
{
    if (js->model->source != QN_SRC_HF) return qn_tok_save_hf(js->model->tok, js->dir, err);
    return qn_tok_copy_hf_files(js->job->model, js->dir, err);
}

static void remove_blocks(const char *dir, int n_layers)
{
    char path[4200];
    for (int l = 0; l < n_layers; l++) {
        block_file(path, sizeof path, dir, l);
        unlink(path);
        block_stats_file(path, sizeof path, dir, l);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/blocks", dir);
    rmdir(path);
}

/* Files a finished or partial run leaves; --force removes these and nothing else. */
static void remove_previous_run(const char *dir, int n_layers)
{
    static const char *const names[] = { "model.safetensors", "stats.safetensors", "config.json", "run.jsonl",
                                         "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                         "tokenizer.model", "generation_config.json" };
    char path[4200], hf[4200];
    bool has_hf = qn_path_join(hf, sizeof hf, dir, QN_SPQR_HF_DIR);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (qn_path_join(path, sizeof path, dir, names[i])) unlink(path);
        if (has_hf && qn_path_join(path, sizeof path, hf, names[i])) unlink(path);
    }
    if (has_hf) rmdir(hf);
    remove_blocks(dir, n_layers > 4096 ? 4096 : n_layers);
}

static qn_status prepare_dir(job_state *js, int n_layers, qn_err *err)
{
    const qn_quantize_job *job = js->job;
    char path[4200];
    qn_status s;
    if (qn_path_exists(job->out_dir)) {
        if (!qn_path_is_dir(job->out_dir))
            return qn_err_set(err, QN_ERR_ARG, "%s: exists and is not a directory", job->out_dir);
        if ((s = path_in(path, sizeof path, job->out_dir, "run.jsonl", err))) return s;
        if (job->resume && !qn_path_exists(path))
            return qn_err_set(err, QN_ERR_ARG, "%s: no run.jsonl here: nothing to resume", job->out_dir);
        if (!job->resume && !job->force)
            return qn_err_set(err, QN_ERR_ARG, "%s: already exists (--force replaces it, --resume continues it)",
                              job->out_dir);
    } else if (job->resume) {
        return qn_err_set(err, QN_ERR_ARG, "%s: does not exist: nothing to resume", job->out_dir);
    }
    if ((s = qn_dir_ensure(job->out_dir, err))) return s;
    if ((s = qn_run_lock_take(&js->lock, job->out_dir, err))) return s;
    if (job->force && !job->resume) remove_previous_run(job->out_dir, n_layers);
    if ((s = path_in(path, sizeof path, job->out_dir, "blocks", err))) return s;
    return qn_dir_ensure(path, err);
}

/* Tokenizes the calibration text and cuts the windows. tokens: (nsamples, seqlen). */
static qn_status calibration_tokens(job_state *js, int32_t **out, qn_err *err)
{
    const qn_quant_config *q = &js->cfg;
    int32_t *all = NULL;
    size_t n = 0;
    qn_status s = qn_ppl_tokenize_file(js->model, js->job->calib, &all, &n, err);
    if (s) return s;
    size_t *starts = malloc(q->nsamples * sizeof *starts);
    int32_t *win = malloc(q->nsamples * q->seqlen * sizeof *win);
    if (!starts || !win) s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    if (!s && (s = qn_calib_windows(n, q->nsamples, q->seqlen, q->seed, q->eval_ctx, starts, err)))
        qn_err_prefix(err, "%s: ", js->job->calib);
    for (size_t w = 0; !s && w < q->nsamples; w++)
        memcpy(win + w * q->seqlen, all + starts[w], q->seqlen * sizeof *win);
    free(all);
    free(starts);
    if (s) { free(win); return s; }
    *out = win;
    return QN_OK;
}

/* The Hugging Face SpQR layout beside quench's own, where the configuration and every layer's shape allow it. */
static qn_status write_hf_spqr(job_state *js, qn_err *err)
{
    if (!qn_spqr_hf_config_fits(&js->cfg)) return QN_OK;
    const qn_config *c = &js->model->cfg;
    char why[160], path[4200];
    size_t d_ins[3] = { (size_t)c->dim, (size_t)c->n_heads * c->head_dim, (size_t)c->hidden_dim };
    for (int i = 0; i < 3; i++)
        if (!qn_spqr_hf_shape_fits((size_t)c->dim, d_ins[i], why, sizeof why)) {
            char msg[256];
            snprintf(msg, sizeof msg, "Hugging Face SpQR layout not written: %s", why);
            qn_emit(js->user, &(qn_event){ .kind = QN_EV_WARNING, .stage = "write", .text = msg,
                                           .text_len = (int64_t)strlen(msg) });
            return QN_OK;
        }
    qn_status s = path_in(path, sizeof path, js->dir, QN_SPQR_HF_DIR, err);
    if (!s) s = qn_spqr_hf_export(js->dir, path, err);
    return s;
}

static qn_status finish(job_state *js, qn_err *err)
{
    qn_status s;
    qn_emit(js->user, &(qn_event){ .kind = QN_EV_STAGE, .stage = "write" });
    if ((s = write_model(js, err)) || (s = write_tokenizer(js, err))) return s;
    char path[4200];
    if ((s = path_in(path, sizeof path, js->dir, "stats.safetensors", err))) return s;
    if (js->stats.n && (s = qn_tensor_set_write(&js->stats, path, NULL, err))) return s;
    if ((s = write_config(js, err))) return s;   /* last: its presence marks a complete model */
    if ((s = write_hf_spqr(js, err))) return s;
    double bits = js->params_sum > 0 ? js->bits_sum / js->params_sum : 0;
    s = log_event(js, json_pack("{s:s, s:f, s:f}", "event", "end", "bits", bits, "seconds",
                                js->prev_seconds + qn_now() - js->t0), err);
    /* only now: until the end event, a resume finishes the run from the checkpoints */
    if (!s) remove_blocks(js->dir, js->model->cfg.n_layers);
    return s;
}

/* Resume: from the log of the interrupted sessions, the bits of the layers of
   the blocks before first (their last record each) and the time each session
   ran; *complete when the last session logged its end. */
static qn_status previous_sessions(job_state *js, int first, bool *complete, qn_err *err)
{
    char path[4200];
    json_t *events = NULL;
    qn_status s = path_in(path, sizeof path, js->dir, "run.jsonl", err);
    if (s || (s = qn_runlog_read(path, &events, err))) return s;
    json_t *layers = json_object(), *ev;
    double session = 0;
    size_t i;
    *complete = false;
    json_array_foreach(events, i, ev) {
        const char *kind = json_string_value(json_object_get(ev, "event"));
        if (!kind) continue;
        if (strcmp(kind, "start") == 0 || strcmp(kind, "resume") == 0) {
            js->prev_seconds += session;
            session = 0;
            *complete = false;
        }
        double t = json_number_value(json_object_get(ev, "time"));
        if (t > session) session = t;
        if (strcmp(kind, "end") == 0) *complete = true;
        const char *name = json_string_value(json_object_get(ev, "name"));
        if (strcmp(kind, "layer") == 0 && name && json_integer_value(json_object_get(ev, "block")) < first)
            json_object_set(layers, name, ev);
    }
    js->prev_seconds += session;
    const char *name;
    json_object_foreach(layers, name, ev) {
        double w = (double)json_integer_value(json_object_get(ev, "d_out")) *
                   (double)json_integer_value(json_object_get(ev, "d_in"));
        js->bits_sum += json_number_value(json_object_get(ev, "bits")) * w;
        js->params_sum += w;
    }
    json_decref(layers);
    json_decref(events);
    return QN_OK;
}

/* Knobs that must divide every layer (AQLM's group) are fitted to this model, with a warning. */
static qn_status fit_config(job_state *js, qn_event_sink sink, qn_err *err)
{
    const qn_config *c = &js->model->cfg;
    size_t d_ins[3] = { (size_t)c->dim, (size_t)c->n_heads * c->head_dim, (size_t)c->hidden_dim };
    bool changed;
    size_t asked = js->cfg.group;
    if (!qn_quant_config_fit(&js->cfg, d_ins, 3, &changed, err)) return qn_err_prefix(err, "%s: ", js->job->model);
    if (changed) {
        char msg[256];
        snprintf(msg, sizeof msg, "in_group_size %zu does not divide every layer's inputs (%zu, %zu, %zu): using %zu",
                 asked, d_ins[0], d_ins[1], d_ins[2], js->cfg.group);
        qn_emit(sink, &(qn_event){ .kind = QN_EV_WARNING, .stage = "quantize", .text = msg,
                                   .text_len = (int64_t)strlen(msg) });
    }
    return QN_OK;
}

/* run.jsonl names the inputs by their absolute paths, as JSON text: UTF-8 only, so that a resume finds them. */
static qn_status utf8_path(const char *what, const char *path, char *abs, size_t cap, qn_err *err)
{
    char buf[4096];
    snprintf(abs, cap, "%s", realpath(path, buf) ? buf : path);
    size_t bad;
    if (qn_utf8_valid(abs, strlen(abs), &bad)) return QN_OK;
    json_t *shown = qn_json_text(abs);
    qn_status s = qn_err_set(err, QN_ERR_ARG, "%s: the %s path is not UTF-8 (byte 0x%02x at offset %zu) and the run "
                             "record keeps paths as JSON text: rename it or link to it from a UTF-8 path",
                             shown ? json_string_value(shown) : "?", what, (unsigned char)abs[bad], bad);
    json_decref(shown);
    return s;
}

qn_status qn_quantize_run(const qn_quantize_job *job, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    job_state js = { .job = job, .cfg = job->config, .user = sink, .cancel = cancel, .t0 = qn_now(),
                     .lock = { .fd = -1 } };
    snprintf(js.dir, sizeof js.dir, "%s", job->out_dir);
    int32_t *windows = NULL;
    char model_abs[4096], calib_abs[4096];
    qn_status s = qn_quant_config_validate(&js.cfg, err);
    if (!s) s = utf8_path("model", job->model, model_abs, sizeof model_abs, err);
    if (!s) s = utf8_path("calibration text", job->calib, calib_abs, sizeof calib_abs, err);
    if (!s && js.cfg.finetune_epochs > 0) {
        qn_finetune_opts o = finetune_opts(&js.cfg);
        if (js.cfg.method != QN_METHOD_AQLM)
            s = qn_err_set(err, QN_ERR_ARG, "--finetune tunes AQLM codebooks: not available for %s",
                           qn_method_name(js.cfg.method));
        else
            s = qn_finetune_opts_check(&o, err);
    }
    /* dense weights: the calibration reads and replaces them (a quantized source is dequantized) */
    if (!s) s = qn_model_open(&js.model, job->model, &(qn_model_opts){ .sink = sink, .dequantize = true }, err);
    if (!s) s = fit_config(&js, sink, err);
    if (!s) s = prepare_dir(&js, js.model->cfg.n_layers, err);
    if (!s) s = calibration_tokens(&js, &windows, err);
    int first = 0;
    char path[4200];
    if (!s) s = path_in(path, sizeof path, js.dir, "run.jsonl", err);
    if (!s) s = qn_runlog_open(&js.log, path, job->resume, err);
    bool complete = false;
    if (!s && job->resume) {
        first = finished_blocks(js.dir, js.model->cfg.n_layers);
        s = previous_sessions(&js, first, &complete, err);
        char config[4200];
        if (!s && complete && qn_path_join(config, sizeof config, js.dir, "config.json") && qn_path_exists(config)) {
            remove_blocks(js.dir, js.model->cfg.n_layers);   /* left by a kill right after the end event */
            char msg[4300];
            snprintf(msg, sizeof msg, "%s: already complete (the run logged its end): nothing to resume", js.dir);
            qn_emit(sink, &(qn_event){ .kind = QN_EV_WARNING, .stage = "quantize", .text = msg,
                                       .text_len = (int64_t)strlen(msg) });
            goto done;
        }
        if (!s) s = load_block_stats(&js, first, err);
        /* every block done: only the final files are missing, no block's weights are needed */
        if (!s && first < js.model->cfg.n_layers) s = load_finished(&js, first, err);
    }
    if (!s) {
        /* absolute paths (model_abs, calib_abs), so the record still names the inputs from any directory */
        double bytes = 0, bits = qn_quant_projected_bits(&js.cfg, js.model, &bytes);
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:o, s:f, s:i, s:b}", "event", job->resume ? "resume" : "start",
                               "model", model_abs, "calib", calib_abs, "method", qn_method_name(js.cfg.method),
                               "options", qn_qmethod_config_json(&js.cfg), "projected_bits", bits,
                               "first_block", first, "resume", job->resume);
        if (js.cfg.finetune_epochs > 0) json_object_set_new(ev, "finetune", finetune_json(&js.cfg));
        s = log_event(&js, ev, err);
        qn_emit(sink, &(qn_event){ .kind = QN_EV_RUN_START, .stage = "quantize", .layer = first,
                                   .n_layers = js.model->cfg.n_layers, .value = bits });
    }
    if (!s && first < js.model->cfg.n_layers) {
        qn_calib_plan plan = { .tokens = windows, .n_windows = js.cfg.nsamples, .len = js.cfg.seqlen,
                               .first_block = first, .quantize = quantize_linear, .quantize_ctx = &js,
                               .block_done = block_done, .block_ctx = &js,
                               .tune_block = js.cfg.finetune_epochs > 0 ? tune_block : NULL, .tune_ctx = &js };
        s = qn_calib_run(js.model, &plan, (qn_event_sink){ job_sink, &js }, cancel, err);
        if (!s && js.sink_status) { *err = js.sink_err; s = js.sink_status; }
    }
    if (!s) s = finish(&js, err);
done:
    if (s && js.log) {
        json_t *ev = json_pack("{s:s, s:s, s:o}", "event", s == QN_ERR_CANCELLED ? "cancelled" : "failed",
                               "status", qn_status_name(s), "message", qn_json_text(err ? err->msg : ""));
        qn_err ignored;
        log_event(&js, ev, &ignored);
    }
    qn_emit(sink, &(qn_event){ .kind = QN_EV_RUN_END, .stage = "quantize", .value = s == QN_OK ? 1 : 0,
                               .text = s ? (err ? err->msg : "") : NULL });
    qn_runlog_close(js.log);
    qn_run_lock_release(&js.lock);
    qn_tensor_set_clear(&js.block);
    qn_tensor_set_clear(&js.stats);
    free(windows);
    qn_model_close(js.model);
    return s;
}

double qn_quant_projected_bits(const qn_quant_config *asked, const qn_model *m, double *bytes)
{
    const qn_config *c = &m->cfg;
    qn_quant_config fitted = *asked;
    const qn_quant_config *q = &fitted;
    size_t d_ins[3] = { (size_t)c->dim, (size_t)c->n_heads * c->head_dim, (size_t)c->hidden_dim };
    bool changed;
    qn_quant_config_fit(&fitted, d_ins, 3, &changed, NULL);
    double quant_bits = 0, params = 0;
    for (int l = 0; l < c->n_layers; l++) {
        static const qn_tensor_role roles[] = { QN_T_WQ, QN_T_WK, QN_T_WV, QN_T_WO, QN_T_GATE, QN_T_UP, QN_T_DOWN };
        for (size_t i = 0; i < 7; i++) {
            const qn_linear *lin = qn_model_linear((qn_model *)m, roles[i], l);
            double d_out = (double)lin->d_out, d_in = (double)lin->d_in, b = q->wbits;
            if (q->method == QN_METHOD_RTN || q->method == QN_METHOD_GPTQ) {
                double groups = q->groupsize ? ceil(d_in / (double)q->groupsize) : 1;
                b += 32.0 * groups / d_in + (q->act_order && q->method == QN_METHOD_GPTQ ? 32.0 / d_out : 0);
            } else if (q->method == QN_METHOD_AQLM) {
                double K = ldexp(1.0, q->codebook_bits);
                b = (double)q->codebooks * q->codebook_bits / (double)q->group +
                    (16.0 * q->codebooks * K * (double)q->group + 16.0 * d_out) / (d_out * d_in);
            } else if (q->method == QN_METHOD_SPQR) {
                double groups = ceil(d_in / (double)q->groupsize), rgroups = ceil(d_out / (double)q->qq_groupsize);
                b += groups * (q->qq_scale_bits + q->qq_zero_bits) / d_in + rgroups * groups * 64.0 / (d_out * d_in) +
                     32.0 * (d_out + 1) / (d_out * d_in) + (q->act_order ? 32.0 / d_out : 0);
            }
            quant_bits += b * d_out * d_in;
            params += d_out * d_in;
        }
    }
    double other = (double)qn_config_n_params(c) - params;
    if (bytes) *bytes = quant_bits / 8 + other * 2;   /* the rest at fp16, as a deployment would keep it */
    return params > 0 ? quant_bits / params : 0;
}

qn_status qn_quantize_job_from_log(const char *dir, qn_quantize_job *job, char *model, size_t model_cap,
                                   char *calib, size_t calib_cap, qn_err *err)
{
    char path[4200];
    qn_status s = path_in(path, sizeof path, dir, "run.jsonl", err);
    json_t *events = NULL;
    if (s || (s = qn_runlog_read(path, &events, err))) return s;
    json_t *start = NULL, *ev;
    size_t i;
    json_array_foreach(events, i, ev) {
        const char *kind = json_string_value(json_object_get(ev, "event"));
        if (kind && strcmp(kind, "start") == 0) { start = ev; break; }
    }
    const char *m = json_string_value(json_object_get(start, "model"));
    const char *c = json_string_value(json_object_get(start, "calib"));
    if (!start || !m || !c) {
        json_decref(events);
        return qn_err_set(err, QN_ERR_FORMAT, "%s: no start event with the model and calibration text", path);
    }
    snprintf(model, model_cap, "%s", m);
    snprintf(calib, calib_cap, "%s", c);
    memset(job, 0, sizeof *job);
    s = qn_qmethod_config_parse(json_object_get(start, "options"), path, &job->config, err);
    if (!s) s = finetune_parse(json_object_get(start, "finetune"), path, &job->config, err);
    json_decref(events);
    job->model = model;
    job->calib = calib;
    job->out_dir = dir;
    job->resume = true;
    return s;
}
