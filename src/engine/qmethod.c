/* qmethod.c: presets and per-method dispatch (see qmethod.h, quantize.h). */
#include "engine/qmethod.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gptq.h"
#include "engine/rtn.h"
#include "engine/spqr.h"

static const char *const k_method_names[QN_METHOD_COUNT] = {
    [QN_METHOD_RTN] = "rtn", [QN_METHOD_GPTQ] = "gptq", [QN_METHOD_SPQR] = "spqr", [QN_METHOD_AQLM] = "aqlm",
};

const char *qn_method_name(qn_method m) { return (unsigned)m < QN_METHOD_COUNT ? k_method_names[m] : "?"; }

int qn_method_from_name(const char *name)
{
    for (int i = 0; i < QN_METHOD_COUNT; i++)
        if (strcmp(name, k_method_names[i]) == 0) return i;
    return -1;
}

/* Calibration defaults shared by the presets: 128 windows of 128 tokens, each
   inside the unscored first half of a 256-token chunk of llama.cpp's protocol. */
#define CALIB .nsamples = 128, .seqlen = 128, .seed = 0, .eval_ctx = 256

static const qn_preset k_presets[] = {
    { "spqr-3.6", "SpQR w3, beta1=beta2=16, 3-bit statistics, tau 0.2 (~3.6 bits)",
      { .method = QN_METHOD_SPQR, .wbits = 3, .groupsize = 16, .qq_groupsize = 16, .qq_scale_bits = 3,
        .qq_zero_bits = 3, .outlier_threshold = 0.2, .act_order = true, .percdamp = 1.0, CALIB } },
    { "spqr-4.6-near-lossless", "SpQR w4, beta1=beta2=16, 3-bit statistics, tau 0.1 (~4.6 bits)",
      { .method = QN_METHOD_SPQR, .wbits = 4, .groupsize = 16, .qq_groupsize = 16, .qq_scale_bits = 3,
        .qq_zero_bits = 3, .outlier_threshold = 0.1, .act_order = true, .percdamp = 1.0, CALIB } },
    { "gptq-3", "GPTQ w3, groups of 128, act-order",
      { .method = QN_METHOD_GPTQ, .wbits = 3, .groupsize = 128, .act_order = true, .percdamp = 0.01, CALIB } },
    { "gptq-4", "GPTQ w4, groups of 128, act-order",
      { .method = QN_METHOD_GPTQ, .wbits = 4, .groupsize = 128, .act_order = true, .percdamp = 0.01, CALIB } },
    { "rtn-4", "round to nearest, 4 bits, groups of 128",
      { .method = QN_METHOD_RTN, .wbits = 4, .groupsize = 128, CALIB } },
    { "rtn-8", "round to nearest, 8 bits, groups of 128",
      { .method = QN_METHOD_RTN, .wbits = 8, .groupsize = 128, CALIB } },
};

const qn_preset *qn_presets(size_t *n)
{
    *n = sizeof k_presets / sizeof k_presets[0];
    return k_presets;
}

const qn_preset *qn_preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (strcmp(k_presets[i].name, name) == 0) return &k_presets[i];
    return NULL;
}

qn_status qn_quant_config_validate(const qn_quant_config *q, qn_err *err)
{
    switch (q->method) {
    case QN_METHOD_RTN: case QN_METHOD_GPTQ:
        if (q->wbits < 1 || q->wbits > QN_RTN_MAX_BITS)
            return qn_err_set(err, QN_ERR_ARG, "--wbits %d: expected 1..%d", q->wbits, QN_RTN_MAX_BITS);
        break;
    case QN_METHOD_SPQR:
        if (q->wbits < 1 || q->wbits > 8) return qn_err_set(err, QN_ERR_ARG, "--wbits %d: expected 1..8", q->wbits);
        if (q->groupsize < 1 || q->qq_groupsize < 1)
            return qn_err_set(err, QN_ERR_ARG, "--groupsize and --qq-groupsize must be positive");
        if ((q->qq_scale_bits < 1 || q->qq_scale_bits > 8) && q->qq_scale_bits != QN_SPQR_FP16_STATS)
            return qn_err_set(err, QN_ERR_ARG, "--qq-scale-bits %d: expected 1..8 or 16", q->qq_scale_bits);
        if ((q->qq_zero_bits < 1 || q->qq_zero_bits > 8) && q->qq_zero_bits != QN_SPQR_FP16_STATS)
            return qn_err_set(err, QN_ERR_ARG, "--qq-zero-bits %d: expected 1..8 or 16", q->qq_zero_bits);
        if (!(q->outlier_threshold > 0)) return qn_err_set(err, QN_ERR_ARG, "--outlier-threshold must be positive or inf");
        break;
    default:
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "method %s is not available for whole models yet", qn_method_name(q->method));
    }
    if (!(q->percdamp >= 0 && q->percdamp < 1e6)) return qn_err_set(err, QN_ERR_ARG, "--percdamp %g out of range", q->percdamp);
    if (q->nsamples < 1 || q->seqlen < 2) return qn_err_set(err, QN_ERR_ARG, "--nsamples and --seqlen must be at least 1 and 2");
    return QN_OK;
}

static qn_spqr_opts spqr_opts(const qn_quant_config *q)
{
    qn_spqr_opts o = qn_spqr_opts_default();
    o.bits = q->wbits;
    o.beta1 = q->groupsize;
    o.beta2 = q->qq_groupsize;
    o.qq_scale_bits = q->qq_scale_bits;
    o.qq_zero_bits = q->qq_zero_bits;
    o.outlier_threshold = q->outlier_threshold;
    o.act_order = q->act_order;
    o.percdamp = q->percdamp;
    return o;
}

/* A group as wide as the row or wider is one group per row: presets fit any model. */
static size_t int_groupsize(const qn_quant_config *q, size_t d_in)
{
    return q->groupsize >= d_in ? 0 : q->groupsize;
}

static qn_status quantize_int(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                              qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                              qn_tensor_set *store, qn_err *err)
{
    qn_rtn_layer L = {0};
    qn_status s;
    if (q->method == QN_METHOD_RTN) {
        qn_rtn_opts o = { .bits = q->wbits, .groupsize = int_groupsize(q, p->d_in) };
        s = qn_rtn_quantize_layer(p, &o, res, &L, err);
    } else {
        qn_gptq_opts o = qn_gptq_opts_default();
        o.bits = q->wbits;
        o.groupsize = int_groupsize(q, p->d_in);
        o.percdamp = q->percdamp;
        o.act_order = q->act_order;
        s = qn_gptq_quantize_layer(p, &o, sink, cancel, res, &L, err);
    }
    if (!s) s = qn_qstore_put_int(store, base, &L, err);
    if (!s) {
        res->bits = qn_rtn_bits_stored(&L);
        qn_rtn_dequantize(&L, res->W_hat);
    }
    qn_rtn_layer_done(&L);
    return s;
}

static qn_status quantize_spqr(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                               qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                               qn_tensor_set *store, qn_err *err)
{
    qn_spqr_layer L = {0};
    qn_spqr_opts o = spqr_opts(q);
    qn_status s = qn_spqr_quantize_layer(p, &o, sink, cancel, res, &L, err);
    if (!s) s = qn_qstore_put_spqr(store, base, &L, err);
    if (!s) {
        res->bits = qn_spqr_bits_stored(&L);
        qn_spqr_dequantize(&L, res->W_hat);
    }
    qn_spqr_layer_done(&L);
    return s;
}

qn_status qn_qmethod_quantize(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                              qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                              qn_tensor_set *store, qn_err *err)
{
    qn_status s;
    switch (q->method) {
    case QN_METHOD_RTN: case QN_METHOD_GPTQ: s = quantize_int(q, p, base, sink, cancel, res, store, err); break;
    case QN_METHOD_SPQR: s = quantize_spqr(q, p, base, sink, cancel, res, store, err); break;
    default: return qn_err_set(err, QN_ERR_UNSUPPORTED, "method %s", qn_method_name(q->method));
    }
    if (s) return s;
    /* the error of what is stored, which is what the model will run */
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    return QN_OK;
}

qn_status qn_qmethod_dequantize(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                                size_t d_in, float *W, qn_err *err)
{
    qn_status s;
    if (q->method == QN_METHOD_RTN || q->method == QN_METHOD_GPTQ) {
        qn_rtn_layer L;
        if ((s = qn_qstore_get_int(lk, base, d_out, d_in, q->wbits, int_groupsize(q, d_in), &L, err))) return s;
        qn_rtn_dequantize(&L, W);
        qn_rtn_layer_done(&L);
        return QN_OK;
    }
    if (q->method == QN_METHOD_SPQR) {
        qn_spqr_opts o = spqr_opts(q);
        qn_spqr_layer L;
        if ((s = qn_qstore_get_spqr(lk, base, d_out, d_in, &o, &L, err))) return s;
        qn_spqr_dequantize(&L, W);
        qn_spqr_layer_done(&L);
        return QN_OK;
    }
    return qn_err_set(err, QN_ERR_UNSUPPORTED, "cannot read %s linears", qn_method_name(q->method));
}

json_t *qn_qmethod_config_json(const qn_quant_config *q)
{
    json_t *o = json_object();
    bool spqr = q->method == QN_METHOD_SPQR;
    json_object_set_new(o, "quant_method", json_string(spqr ? QN_QSTORE_SPQR : QN_QSTORE_INT));
    json_object_set_new(o, "method", json_string(qn_method_name(q->method)));
    json_object_set_new(o, "format_version", json_integer(1));
    json_object_set_new(o, "bits", json_integer(q->wbits));
    json_object_set_new(o, "group_size", json_integer((json_int_t)q->groupsize));
    json_object_set_new(o, "act_order", json_boolean(q->act_order));
    json_object_set_new(o, "percdamp", json_real(q->percdamp));
    if (spqr) {
        json_object_set_new(o, "qq_groupsize", json_integer((json_int_t)q->qq_groupsize));
        json_object_set_new(o, "qq_scale_bits", json_integer(q->qq_scale_bits));
        json_object_set_new(o, "qq_zero_bits", json_integer(q->qq_zero_bits));
        json_object_set_new(o, "outlier_threshold",
                            isinf(q->outlier_threshold) ? json_string("inf") : json_real(q->outlier_threshold));
    }
    json_object_set_new(o, "calibration", json_pack("{s:I, s:I, s:I, s:I}", "nsamples", (json_int_t)q->nsamples,
                                                    "seqlen", (json_int_t)q->seqlen, "seed", (json_int_t)q->seed,
                                                    "eval_ctx", (json_int_t)q->eval_ctx));
    return o;
}

static qn_status get_num(const json_t *qc, const char *key, double *out, bool required, const char *path, qn_err *err)
{
    json_t *v = json_object_get(qc, key);
    if (!v) return required ? qn_err_set(err, QN_ERR_FORMAT, "%s: quantization_config has no '%s'", path, key) : QN_OK;
    if (json_is_string(v) && strcmp(json_string_value(v), "inf") == 0) { *out = INFINITY; return QN_OK; }
    if (!json_is_number(v)) return qn_err_set(err, QN_ERR_FORMAT, "%s: quantization_config '%s' is not a number", path, key);
    *out = json_number_value(v);
    return QN_OK;
}

qn_status qn_qmethod_config_parse(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err)
{
    memset(q, 0, sizeof *q);
    const char *qm = json_string_value(json_object_get(qc, "quant_method"));
    const char *m = json_string_value(json_object_get(qc, "method"));
    if (!qm) return qn_err_set(err, QN_ERR_FORMAT, "%s: quantization_config has no quant_method", path);
    if (strcmp(qm, QN_QSTORE_INT) == 0) {
        q->method = m && strcmp(m, "rtn") == 0 ? QN_METHOD_RTN : QN_METHOD_GPTQ;
    } else if (strcmp(qm, QN_QSTORE_SPQR) == 0) {
        q->method = QN_METHOD_SPQR;
    } else {
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: quant_method '%s' is not supported (%s, %s are)", path, qm,
                          QN_QSTORE_INT, QN_QSTORE_SPQR);
    }
    double bits = 0, gs = 0, qqg = 16, qsb = 3, qzb = 3, tau = INFINITY;
    qn_status s;
    if ((s = get_num(qc, "bits", &bits, true, path, err)) || (s = get_num(qc, "group_size", &gs, true, path, err)) ||
        (s = get_num(qc, "qq_groupsize", &qqg, q->method == QN_METHOD_SPQR, path, err)) ||
        (s = get_num(qc, "qq_scale_bits", &qsb, q->method == QN_METHOD_SPQR, path, err)) ||
        (s = get_num(qc, "qq_zero_bits", &qzb, q->method == QN_METHOD_SPQR, path, err)) ||
        (s = get_num(qc, "outlier_threshold", &tau, false, path, err)))
        return s;
    if (bits < 1 || bits > 8 || gs < 0 || gs > 1e9 || qqg < 1 || qqg > 1e9 || qsb < 1 || qsb > 16 || qzb < 1 || qzb > 16)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: quantization_config values out of range", path);
    q->wbits = (int)bits;
    q->groupsize = (size_t)gs;
    q->qq_groupsize = (size_t)qqg;
    q->qq_scale_bits = (int)qsb;
    q->qq_zero_bits = (int)qzb;
    q->outlier_threshold = tau;
    q->act_order = json_is_true(json_object_get(qc, "act_order"));
    q->percdamp = json_number_value(json_object_get(qc, "percdamp"));
    json_t *cal = json_object_get(qc, "calibration");
    if (cal) {
        double ns = 0, sl = 0, seed = 0, ev = 0;
        if ((s = get_num(cal, "nsamples", &ns, true, path, err)) || (s = get_num(cal, "seqlen", &sl, true, path, err)) ||
            (s = get_num(cal, "seed", &seed, true, path, err)) || (s = get_num(cal, "eval_ctx", &ev, true, path, err)))
            return s;
        q->nsamples = (size_t)ns;
        q->seqlen = (size_t)sl;
        q->seed = (uint64_t)seed;
        q->eval_ctx = (size_t)ev;
    }
    return QN_OK;
}
