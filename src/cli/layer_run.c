/* layer_run.c: a run folder for one layer (see layer_run.h). */
#include "cli/layer_run.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/session.h"
#include "engine/fileio.h"
#include "engine/qmethod.h"
#include "engine/run_folder.h"
#include "engine/runlog.h"

void qn_layer_run_name(const char *layer_file, char *name, size_t cap)
{
    const char *base = strrchr(layer_file, '/') ? strrchr(layer_file, '/') + 1 : layer_file;
    const char *b = strstr(base, "-b");
    char *end = NULL;
    long block = b ? strtol(b + 2, &end, 10) : -1;
    for (int k = 0; block >= 0 && end && *end == '-' && k < QN_RUN_SUBLAYERS; k++) {
        const char *sub = qn_run_sublayer_names[k];
        if (strncmp(end + 1, sub, strlen(sub)) == 0) {
            snprintf(name, cap, "model.layers.%ld.%s.%s", block, k < 4 ? "self_attn" : "mlp", sub);
            return;
        }
    }
    snprintf(name, cap, "model.layers.0.self_attn.q_proj");
}

/* Writes one event (taken over) unless an earlier write failed. */
static qn_status put(qn_runlog *log, json_t *ev, qn_status s, qn_err *err)
{
    if (!s) s = ev ? qn_runlog_write(log, ev, err) : qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    json_decref(ev);
    return s;
}

/* start, the AQLM rounds, the layer, end: what quantize.c logs for a model. */
static qn_status log_events(const char *path, const char *layer_file, const char *name, const qn_quant_config *q,
                            const qn_layer_problem *p, const qn_layer_result *res, const qn_tensor_set *stats,
                            qn_err *err)
{
    char abs[PATH_MAX];
    if (!realpath(layer_file, abs)) snprintf(abs, sizeof abs, "%s", layer_file);
    qn_runlog *log = NULL;
    qn_status s = qn_runlog_open(&log, path, false, err);
    if (s) return s;
    s = put(log, json_pack("{s:s, s:s, s:s, s:s, s:o, s:f, s:i, s:b}", "event", "start", "model", abs, "calib",
                           "(the layer file's Hessian)", "method", qn_method_name(q->method), "options",
                           qn_qmethod_config_json(q), "projected_bits", res->bits, "first_block", 0, "resume", 0),
            s, err);
    char hname[256];
    snprintf(hname, sizeof hname, "%s.loss_history", name);
    const qn_st_entry *lh = qn_tensor_set_find(stats, hname);
    for (int64_t r = 0; lh && r < lh->shape[0]; r++)
        s = put(log, json_pack("{s:s, s:s, s:I, s:f}", "event", "round", "name", name, "round", (json_int_t)r,
                               "loss", ((const double *)lh->data)[r]), s, err);
    s = put(log, json_pack("{s:s, s:s, s:i, s:s, s:I, s:I, s:f, s:f, s:I, s:f, s:f}", "event", "layer", "name",
                           name, "block", atoi(name + strlen("model.layers.")), "sublayer", strrchr(name, '.') + 1,
                           "d_out", (json_int_t)p->d_out, "d_in", (json_int_t)p->d_in, "relative_error",
                           res->relative_error, "bits", res->bits, "outliers", (json_int_t)res->n_outliers,
                           "outlier_fraction", res->outlier_fraction, "seconds", res->seconds), s, err);
    s = put(log, json_pack("{s:s, s:f, s:f}", "event", "end", "bits", res->bits, "seconds", res->seconds), s, err);
    qn_runlog_close(log);
    return s;
}

qn_status qn_layer_run_write(const char *dir, const char *layer_file, const char *name, const qn_quant_config *q,
                             const qn_layer_problem *p, const qn_layer_result *res, qn_tensor_set *stats,
                             qn_err *err)
{
    char path[4200], tname[256];
    qn_status s = qn_cli_make_dirs(dir, true, err);
    /* the Hessian diagonal as the run folder keeps it: one value per input column */
    float *diag = s ? NULL : malloc(p->d_in * sizeof *diag);
    if (!s && !diag) s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; !s && j < p->d_in; j++) diag[j] = p->H[j * p->d_in + j];
    int64_t dshape[1] = { (int64_t)p->d_in };
    snprintf(tname, sizeof tname, "%s.hessian_diag", name);
    if (!s) s = qn_tensor_set_add(stats, tname, QN_DTYPE_F32, 1, dshape, diag, 1, err);
    else free(diag);
    if (!s && !qn_path_join(path, sizeof path, dir, "stats.safetensors"))
        s = qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    if (!s) s = qn_tensor_set_write(stats, path, NULL, err);
    /* the result itself, dense */
    qn_tensor_set result = { 0 };
    int64_t wshape[2] = { (int64_t)p->d_out, (int64_t)p->d_in };
    if (!s) s = qn_tensor_set_add(&result, "weight", QN_DTYPE_F32, 2, wshape, res->W_hat, 0, err);
    if (!s && qn_path_join(path, sizeof path, dir, "layer.safetensors")) s = qn_tensor_set_write(&result, path, NULL, err);
    qn_tensor_set_clear(&result);
    if (!s && !qn_path_join(path, sizeof path, dir, "run.jsonl"))
        s = qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    if (!s) s = log_events(path, layer_file, name, q, p, res, stats, err);
    return s;
}
