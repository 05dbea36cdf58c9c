/* export_hf.c: Hugging Face folder writer (see export_hf.h). */
#include "engine/export_hf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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

static qn_status write_weights(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                               qn_event_sink sink, qn_err *err)
{
    char path[4200];
    if (!qn_path_join(path, sizeof path, dir, "model.safetensors"))
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    size_t n = qn_llama_n_tensors(cfg);
    qn_f32_tensor *held = calloc(n, sizeof *held);
    qn_st_entry *entries = calloc(n, sizeof *entries);
    qn_tensor_desc *descs = calloc(n, sizeof *descs);
    qn_status s = QN_OK;
    if (!held || !entries || !descs) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto done; }
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
        entries[i] = (qn_st_entry){ .name = descs[i].name, .dtype = QN_DTYPE_F32, .ndim = descs[i].ndim,
                                    .shape = { descs[i].shape[0], descs[i].shape[1] }, .data = held[i].data };
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "export", .done = (int64_t)i + 1,
                                   .total = (int64_t)n + 1 });
    }
    static const char *const meta[] = { "format", "pt", NULL };
    s = qn_st_write(path, entries, n, meta, err);
    qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "export", .done = (int64_t)n + 1,
                               .total = (int64_t)n + 1 });
done:
    if (held) for (size_t i = 0; i < n; i++) qn_f32_tensor_done(&held[i]);
    free(held);
    free(entries);
    free(descs);
    return s;
}

qn_status qn_hf_export(const char *dir, const qn_config *cfg, const qn_weight_source *src,
                       const qn_tokenizer *tok, qn_event_sink sink, qn_err *err)
{
    qn_status s;
    char path[4200];
    if ((s = qn_dir_ensure(dir, err))) return s;
    if ((s = write_weights(dir, cfg, src, sink, err))) return s;
    if (!qn_path_join(path, sizeof path, dir, "config.json")) return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    if ((s = qn_config_save_hf(cfg, path, err))) return s;
    if ((s = write_generation_config(dir, cfg, err))) return s;
    return qn_tok_save_hf(tok, dir, err);
}
