/* export_hf.c: Hugging Face folder writer (see export_hf.h). */
#include "engine/export_hf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dtype.h"
#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/llama_layout.h"
#include "engine/safetensors.h"

static qn_status write_generation_config(const char *dir, const qn_config *cfg, qn_err *err)
{
    char path[4200];
    if (!qn_path_join(path, sizeof path, dir, "generation_config.json"))
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    json_t *o = json_object();
    if (cfg->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(cfg->bos_id));
    if (cfg->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(cfg->eos_id));
    json_object_set_new(o, "_from_model_config", json_true());
    qn_status s = qn_json_save(o, path, err);
    json_decref(o);
    return s;
}

/* n f32 values as a malloc'd f16 or bf16 copy (round to nearest even). */
static uint16_t *narrow(const float *x, size_t n, qn_dtype dtype)
{
    uint16_t *y = malloc(n * sizeof *y);
    if (y) for (size_t i = 0; i < n; i++) y[i] = dtype == QN_DTYPE_F16 ? qn_f32_to_f16(x[i]) : qn_f32_to_bf16(x[i]);
    return y;
}

static qn_status write_weights(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                               qn_dtype dtype, qn_event_sink sink, qn_err *err)
{
    char path[4200];
    if (!qn_path_join(path, sizeof path, dir, "model.safetensors"))
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    size_t n = qn_llama_n_tensors(cfg);
    qn_f32_tensor *held = calloc(n, sizeof *held);
    qn_st_entry *entries = calloc(n, sizeof *entries);
    qn_tensor_desc *descs = calloc(n, sizeof *descs);
    uint16_t **half = calloc(n, sizeof *half);
    qn_status s = QN_OK;
    if (!held || !entries || !descs || !half) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < n; i++) {
        descs[i] = qn_llama_tensor(cfg, i);
        if ((s = src->get(src->ctx, descs[i].name, &held[i], err))) goto done;
        int64_t want1 = descs[i].ndim == 2 ? descs[i].shape[1] : 1, got1 = held[i].ndim == 2 ? held[i].shape[1] : 1;
        if (held[i].shape[0] != descs[i].shape[0] || got1 != want1) {
            s = qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld], the config implies [%lld, %lld]",
                           src->path, descs[i].name, (long long)held[i].shape[0], (long long)got1,
                           (long long)descs[i].shape[0], (long long)want1);
            goto done;
        }
        const void *data = held[i].data;
        if (dtype != QN_DTYPE_F32) { /* narrowed now, so only the 16-bit copies stay resident */
            if (!(half[i] = narrow(held[i].data, (size_t)(held[i].shape[0] * got1), dtype))) {
                s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            qn_f32_tensor_done(&held[i]);
            data = half[i];
        }
        entries[i] = (qn_st_entry){ .name = descs[i].name, .dtype = dtype, .ndim = descs[i].ndim,
                                    .shape = { descs[i].shape[0], descs[i].shape[1] }, .data = data };
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "export", .done = (int64_t)i + 1,
                                   .total = (int64_t)n + 1 });
    }
    static const char *const meta[] = { "format", "pt", NULL };
    s = qn_st_write(path, entries, n, meta, err);
    qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "export", .done = (int64_t)n + 1,
                               .total = (int64_t)n + 1 });
done:
    for (size_t i = 0; i < n; i++) {
        if (held) qn_f32_tensor_done(&held[i]);
        if (half) free(half[i]);
    }
    free(held);
    free(half);
    free(entries);
    free(descs);
    return s;
}

qn_status qn_hf_export_as(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                          const qn_tokenizer *tok, qn_dtype dtype, qn_event_sink sink, qn_err *err)
{
    static const char *const torch_names[] = { [QN_DTYPE_F32] = "float32", [QN_DTYPE_F16] = "float16",
                                               [QN_DTYPE_BF16] = "bfloat16" };
    if (dtype != QN_DTYPE_F32 && dtype != QN_DTYPE_F16 && dtype != QN_DTYPE_BF16)
        return qn_err_set(err, QN_ERR_ARG, "%s: weights are written as f32, f16 or bf16, not %s", dir, qn_dtype_name(dtype));
    qn_status s;
    char path[4200];
    if ((s = qn_dir_ensure(dir, err))) return s;
    if ((s = write_weights(dir, cfg, src, dtype, sink, err))) return s;
    if (!qn_path_join(path, sizeof path, dir, "config.json")) return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    json_t *config = qn_config_json(cfg);
    json_object_set_new(config, "torch_dtype", json_string(torch_names[dtype]));
    s = qn_json_save(config, path, err);
    json_decref(config);
    if (s || (s = write_generation_config(dir, cfg, err))) return s;
    return qn_tok_save_hf(tok, dir, err);
}

qn_status qn_hf_export(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                       const qn_tokenizer *tok, qn_event_sink sink, qn_err *err)
{
    return qn_hf_export_as(dir, cfg, src, tok, QN_DTYPE_F32, sink, err);
}
