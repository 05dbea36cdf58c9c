/* qmethod.c: presets and per-method dispatch (see qmethod.h, quantize.h). */
#include "engine/qmethod.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/aqlm.h"
#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/gptq.h"
#include "kernels/aqlm_cpu.h"
#include "kernels/layouts.h"
#include "kernels/spqr_cpu.h"
#include "engine/rtn.h"
#include "engine/spqr.h"
#include "engine/spqr_hf.h"

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
   at the start of a 512-token chunk, which llama.cpp's protocol scores neither
   at ctx 512 nor at ctx 256 (see qn_calib_windows). */
#define CALIB .nsamples = 128, .seqlen = 128, .seed = 0, .eval_ctx = 512, FINETUNE
/* fine-tuning knobs used when --finetune turns it on (finetune.h) */
#define FINETUNE .finetune_epochs = 0, .finetune_lr = 1e-4, .finetune_batch = 8, .finetune_tol = 0.01

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
    { "aqlm-2x8", "AQLM 2x8, groups of 8 (2 bits per weight + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 2, .codebook_bits = 8, .group = 8, .beam = 1, .tol = 0.01, CALIB } },
    { "aqlm-2bit", "AQLM 1x16, groups of 8 (2 bits per weight + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 1, .codebook_bits = 16, .group = 8, .beam = 1, .tol = 0.01, CALIB } },
    { "aqlm-3bit", "AQLM 2x12, groups of 8 (3 bits per weight + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 2, .codebook_bits = 12, .group = 8, .beam = 1, .tol = 0.01, CALIB } },
    { "aqlm-4bit", "AQLM 2x16, groups of 8 (4 bits per weight + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 2, .codebook_bits = 16, .group = 8, .beam = 1, .tol = 0.01, CALIB } },
    /* small models: 2^16-entry codebooks outweigh their layers, so smaller ones */
    { "aqlm-small-2x6", "AQLM 2x6, groups of 4, for models with layers below ~1M weights (3 bits + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 2, .codebook_bits = 6, .group = 4, .beam = 4, .tol = 0.01, CALIB } },
    { "aqlm-small-2x8", "AQLM 2x8, groups of 4, for models with layers below ~1M weights (4 bits + codebooks)",
      { .method = QN_METHOD_AQLM, .codebooks = 2, .codebook_bits = 8, .group = 4, .beam = 4, .tol = 0.01, CALIB } },
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
    case QN_METHOD_AQLM:
        if (q->codebooks < 1 || q->codebooks > 8) return qn_err_set(err, QN_ERR_ARG, "--codebooks %d: expected 1..8", q->codebooks);
        if (q->codebook_bits < 1 || q->codebook_bits > QN_AQLM_MAX_BITS)
            return qn_err_set(err, QN_ERR_ARG, "--codebook-bits %d: expected 1..%d", q->codebook_bits, QN_AQLM_MAX_BITS);
        if (q->group < 1 || q->group > 64) return qn_err_set(err, QN_ERR_ARG, "--group %zu: expected 1..64", q->group);
        if (q->beam < 1 || q->beam > 256) return qn_err_set(err, QN_ERR_ARG, "--beam %d: expected 1..256", q->beam);
        if (!(q->tol > 0 && q->tol < 1)) return qn_err_set(err, QN_ERR_ARG, "--tol %g: expected a fraction in (0, 1)", q->tol);
        break;
    default:
        return qn_err_set(err, QN_ERR_ARG, "unknown method %d", (int)q->method);
    }
    if (!(q->percdamp >= 0 && q->percdamp < 1e6)) return qn_err_set(err, QN_ERR_ARG, "--percdamp %g out of range", q->percdamp);
    if (q->nsamples < 1 || q->seqlen < 2) return qn_err_set(err, QN_ERR_ARG, "--nsamples and --seqlen must be at least 1 and 2");
    return QN_OK;
}

qn_spqr_opts qn_qmethod_spqr_opts(const qn_quant_config *q)
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
    o.refine_stats = !q->plain_stats;
    return o;
}

/* A group as wide as the row or wider is one group per row: presets fit any model. */
static size_t int_groupsize(const qn_quant_config *q, size_t d_in)
{
    return q->groupsize >= d_in ? 0 : q->groupsize;
}

/* W_hat becomes the dequantization of what was stored, so a resumed run and the
   loaded model see exactly the weights the calibration went on with. The
   quantizers' W_hat normally equals it bit for bit; only when it does not is the
   relative error (an O(d_out d_in^2) trace) computed again. */
static qn_status adopt_stored(const qn_layer_problem *p, qn_layer_result *res, float *stored, qn_err *err)
{
    if (!stored) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name);
    size_t n = p->d_out * p->d_in;
    if (memcmp(stored, res->W_hat, n * sizeof *stored) == 0) {
        free(stored);
        return QN_OK;
    }
    free(res->W_hat);
    res->W_hat = stored;
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    return QN_OK;
}

static float *weights_like(const qn_layer_problem *p)
{
    return malloc(p->d_out * p->d_in * sizeof(float));
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
        float *stored = weights_like(p);
        if (stored) qn_rtn_dequantize(&L, stored);
        s = adopt_stored(p, res, stored, err);
    }
    qn_rtn_layer_done(&L);
    return s;
}

static qn_status quantize_spqr(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                               qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                               qn_tensor_set *store, qn_err *err)
{
    qn_spqr_layer L = {0};
    qn_spqr_opts o = qn_qmethod_spqr_opts(q);
    qn_status s = qn_spqr_quantize_layer(p, &o, sink, cancel, res, &L, err);
    if (!s) s = qn_qstore_put_spqr(store, base, &L, err);
    if (!s) {
        res->bits = qn_spqr_bits_stored(&L);
        float *stored = weights_like(p);
        if (stored) qn_spqr_dequantize(&L, stored);
        s = adopt_stored(p, res, stored, err);
    }
    qn_spqr_layer_done(&L);
    return s;
}

bool qn_quant_config_fit(qn_quant_config *q, const size_t *d_ins, size_t n, bool *changed, qn_err *err)
{
    *changed = false;
    if (q->method != QN_METHOD_AQLM) return true;
    size_t g = q->group;
    for (; g >= 1; g--) {
        size_t i = 0;
        while (i < n && d_ins[i] % g == 0) i++;
        if (i == n) break;
    }
    if (g < 1) { qn_err_set(err, QN_ERR_SHAPE, "no AQLM group size fits every layer"); return false; }
    *changed = g != q->group;
    q->group = g;
    return true;
}

static qn_aqlm_opts aqlm_opts(const qn_quant_config *q)
{
    qn_aqlm_opts o = qn_aqlm_opts_default();
    o.M = q->codebooks;
    o.B = q->codebook_bits;
    o.g = q->group;
    o.beam = q->beam;
    o.tol = q->tol;
    o.seed = q->seed;
    return o;
}

/* aqlm.utils.pack_int_data: codes >= 2^(B-1) are stored as code - 2^B, in the
   narrowest signed type; readers take value mod 2^B. */
static void *pack_aqlm_codes(const uint16_t *codes, size_t n, int B, qn_dtype *dt)
{
    if (B <= 8) {
        int8_t *c = malloc(n + 1);
        for (size_t i = 0; c && i < n; i++) c[i] = (int8_t)(codes[i] >= (1u << (B - 1)) ? (int)codes[i] - (1 << B) : codes[i]);
        *dt = QN_DTYPE_I8;
        return c;
    }
    int16_t *c = malloc(n * 2 + 1);
    for (size_t i = 0; c && i < n; i++) c[i] = (int16_t)(codes[i] >= (1u << (B - 1)) ? (int32_t)codes[i] - (1 << B) : codes[i]);
    *dt = QN_DTYPE_I16;
    return c;
}

static uint16_t *to_f16(const float *x, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h + 1);
    for (size_t i = 0; h && i < n; i++) h[i] = qn_f32_to_f16(x[i]);
    return h;
}

qn_status qn_qmethod_aqlm_stats(qn_tensor_set *stats, const char *base, const qn_aqlm_result *r, qn_err *err)
{
    char name[256];
    int64_t cb[3] = { r->M, (int64_t)r->codebook_size, (int64_t)r->g }, us[2] = { r->M, (int64_t)r->codebook_size },
            lh[1] = { r->n_rounds + 1 };
    int32_t *usage = malloc((size_t)r->M * r->codebook_size * sizeof *usage + 1);
    if (!usage) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < (size_t)r->M * r->codebook_size; i++) usage[i] = (int32_t)r->usage[i];
    qn_status s;
    snprintf(name, sizeof name, "%s.codebook_usage", base);
    if ((s = qn_tensor_set_add(stats, name, QN_DTYPE_I32, 2, us, usage, 1, err))) return s;
    snprintf(name, sizeof name, "%s.codebooks", base);
    if ((s = qn_tensor_set_copy(stats, name, QN_DTYPE_F32, 3, cb, r->codebooks,
                                (size_t)r->M * r->codebook_size * r->g * sizeof(float), err))) return s;
    snprintf(name, sizeof name, "%s.loss_history", base);
    return qn_tensor_set_copy(stats, name, QN_DTYPE_F64, 1, lh, r->loss_history, (size_t)(r->n_rounds + 1) * sizeof(double), err);
}

/* The stored arrays as the kernels' layout, for validation and decoding. */
static qn_aqlm_weights aqlm_view(const void *codes, const uint16_t *codebooks, const uint16_t *scales, int M, int B,
                                 size_t g, size_t d_out, size_t d_in)
{
    size_t K = (size_t)1 << B, code_bytes = B <= 8 ? 1 : 2;
    return (qn_aqlm_weights){ .n_codebooks = M, .nbits = B, .in_group_size = (int)g, .out_group_size = 1,
                              .d_out = d_out, .d_in = d_in, .codes = codes, .codebooks = codebooks, .scales = scales,
                              .codes_nbytes = d_out * (d_in / g) * (size_t)M * code_bytes,
                              .codebooks_nbytes = (size_t)M * K * g * 2, .scales_nbytes = d_out * 2 };
}

static qn_status quantize_aqlm(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                               qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                               qn_tensor_set *store, qn_tensor_set *stats, qn_err *err)
{
    qn_aqlm_opts o = aqlm_opts(q);
    qn_aqlm_result r = {0};
    qn_status s = qn_aqlm_quantize(p, &o, sink, cancel, &r, err);
    if (s) return s;
    size_t n_codes = r.d_out * r.n_groups * (size_t)r.M, n_cb = (size_t)r.M * r.codebook_size * r.g;
    qn_dtype code_dt;
    void *codes = pack_aqlm_codes(r.codes, n_codes, r.B, &code_dt);
    uint16_t *cb = to_f16(r.codebooks, n_cb), *sc = to_f16(r.scales, r.d_out);
    char name[256];
    int64_t cshape[3] = { (int64_t)r.d_out, (int64_t)r.n_groups, r.M };
    int64_t bshape[4] = { r.M, (int64_t)r.codebook_size, 1, (int64_t)r.g }, sshape[4] = { (int64_t)r.d_out, 1, 1, 1 };
    if (!codes || !cb || !sc) {
        free(codes); free(cb); free(sc);
        s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        goto done;
    }
    *res = r.layer;
    r.layer.W_hat = NULL;
    res->bits = qn_aqlm_bits(r.d_out, r.d_in, r.M, r.B, r.g);
    qn_aqlm_weights view = aqlm_view(codes, cb, sc, r.M, r.B, r.g, r.d_out, r.d_in);
    float *stored = weights_like(p);
    if (stored) qn_aqlm_to_dense_ref(&view, stored);
    if ((s = adopt_stored(p, res, stored, err))) { free(codes); free(cb); free(sc); goto done; }
    snprintf(name, sizeof name, "%s.codes", base);
    if ((s = qn_tensor_set_add(store, name, code_dt, 3, cshape, codes, 1, err))) { free(cb); free(sc); goto done; }
    snprintf(name, sizeof name, "%s.codebooks", base);
    if ((s = qn_tensor_set_add(store, name, QN_DTYPE_F16, 4, bshape, cb, 1, err))) { free(sc); goto done; }
    snprintf(name, sizeof name, "%s.scales", base);
    if ((s = qn_tensor_set_add(store, name, QN_DTYPE_F16, 4, sshape, sc, 1, err))) goto done;
    if (stats) s = qn_qmethod_aqlm_stats(stats, base, &r, err);
done:
    qn_aqlm_result_done(&r);
    return s;
}

/* The stored codes, codebooks and scales of an AQLM linear as the kernels' layout, validated. */
static qn_status aqlm_stored(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in,
                             qn_aqlm_weights *view, qn_err *err)
{
    if (d_in % q->group)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: in_group_size %zu does not divide its %zu inputs", base, q->group, d_in);
    size_t K = (size_t)1 << q->codebook_bits;
    int64_t cshape[3] = { (int64_t)d_out, (int64_t)(d_in / q->group), q->codebooks };
    int64_t bshape[4] = { q->codebooks, (int64_t)K, 1, (int64_t)q->group }, sshape[4] = { (int64_t)d_out, 1, 1, 1 };
    const void *codes, *cb, *sc;
    qn_status s;
    if ((s = qn_qstore_fetch(lk, base, "codes", q->codebook_bits <= 8 ? QN_DTYPE_I8 : QN_DTYPE_I16, 3, cshape, &codes, err)) ||
        (s = qn_qstore_fetch(lk, base, "codebooks", QN_DTYPE_F16, 4, bshape, &cb, err)) ||
        (s = qn_qstore_fetch(lk, base, "scales", QN_DTYPE_F16, 4, sshape, &sc, err)))
        return s;
    *view = aqlm_view(codes, cb, sc, q->codebooks, q->codebook_bits, q->group, d_out, d_in);
    return qn_aqlm_validate(view, base, err);
}

static qn_status dequantize_aqlm(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                                 size_t d_in, float *W, qn_err *err)
{
    qn_aqlm_weights view;
    qn_status s = aqlm_stored(q, lk, base, d_out, d_in, &view, err);
    if (!s) qn_aqlm_to_dense_ref(&view, W);
    return s;
}

qn_status qn_qmethod_quantize(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                              qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                              qn_tensor_set *store, qn_tensor_set *stats, qn_err *err)
{
    qn_status s;
    switch (q->method) {
    case QN_METHOD_AQLM: s = quantize_aqlm(q, p, base, sink, cancel, res, store, stats, err); break;
    case QN_METHOD_RTN: case QN_METHOD_GPTQ: s = quantize_int(q, p, base, sink, cancel, res, store, err); break;
    case QN_METHOD_SPQR: s = quantize_spqr(q, p, base, sink, cancel, res, store, err); break;
    default: return qn_err_set(err, QN_ERR_UNSUPPORTED, "method %s", qn_method_name(q->method));
    }
    return s;
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
    if (q->method == QN_METHOD_SPQR && q->hf_spqr_layout) {
        qn_spqr_hf_linear h;
        if ((s = qn_spqr_hf_get(lk, base, d_out, d_in, &h, err))) return s;
        qn_spqr_hf_dequantize(&h, W);
        qn_spqr_hf_linear_done(&h);
        return QN_OK;
    }
    if (q->method == QN_METHOD_SPQR) {
        qn_spqr_opts o = qn_qmethod_spqr_opts(q);
        qn_spqr_layer L;
        if ((s = qn_qstore_get_spqr(lk, base, d_out, d_in, &o, &L, err))) return s;
        qn_spqr_dequantize(&L, W);
        qn_spqr_layer_done(&L);
        return QN_OK;
    }
    if (q->method == QN_METHOD_AQLM) return dequantize_aqlm(q, lk, base, d_out, d_in, W, err);
    return qn_err_set(err, QN_ERR_UNSUPPORTED, "cannot read %s linears", qn_method_name(q->method));
}

static json_t *calibration_json(const qn_quant_config *q)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "nsamples", (json_int_t)q->nsamples, "seqlen", (json_int_t)q->seqlen,
                     "seed", (json_int_t)q->seed, "eval_ctx", (json_int_t)q->eval_ctx);
}

/* transformers' AqlmConfig (it accepts the extra keys and ignores them). */
static json_t *aqlm_config_json(const qn_quant_config *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "quant_method", json_string("aqlm"));
    json_object_set_new(o, "nbits_per_codebook", json_integer(q->codebook_bits));
    json_object_set_new(o, "num_codebooks", json_integer(q->codebooks));
    json_object_set_new(o, "in_group_size", json_integer((json_int_t)q->group));
    json_object_set_new(o, "out_group_size", json_integer(1));
    /* transformers < 5 matches "<module>.weight", 5.x the module name: list both */
    json_object_set_new(o, "linear_weights_not_to_quantize",
                        json_pack("[s, s, s]", "model.embed_tokens.weight", "lm_head.weight", "lm_head"));
    json_object_set_new(o, "beam", json_integer(q->beam));
    json_object_set_new(o, "tol", json_real(q->tol));
    json_object_set_new(o, "calibration", calibration_json(q));
    return o;
}

json_t *qn_qmethod_config_json(const qn_quant_config *q)
{
    if (q->method == QN_METHOD_AQLM) return aqlm_config_json(q);
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
        json_object_set_new(o, "refine_stats", json_boolean(!q->plain_stats));
        json_object_set_new(o, "outlier_threshold",
                            isinf(q->outlier_threshold) ? json_string("inf") : json_real(q->outlier_threshold));
    }
    json_object_set_new(o, "calibration", calibration_json(q));
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

static qn_status parse_calibration(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err);

/* transformers' AqlmConfig, or the older top-level "aqlm" block of llama_aqlm checkpoints. */
static qn_status parse_aqlm(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err)
{
    double B = 0, M = 0, g = 0, og = 1, beam = 1, tol = 0.01;
    qn_status s;
    if ((s = get_num(qc, "nbits_per_codebook", &B, true, path, err)) || (s = get_num(qc, "num_codebooks", &M, true, path, err)) ||
        (s = get_num(qc, "in_group_size", &g, true, path, err)) || (s = get_num(qc, "out_group_size", &og, false, path, err)) ||
        (s = get_num(qc, "beam", &beam, false, path, err)) || (s = get_num(qc, "tol", &tol, false, path, err)))
        return s;
    if (og != 1)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: AQLM out_group_size %g: only 1 is supported", path, og);
    if (B < 1 || B > QN_AQLM_MAX_BITS || M < 1 || M > 8 || g < 1 || g > 64)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: AQLM nbits_per_codebook %g, num_codebooks %g, in_group_size %g out of range",
                          path, B, M, g);
    q->method = QN_METHOD_AQLM;
    q->codebook_bits = (int)B;
    q->codebooks = (int)M;
    q->group = (size_t)g;
    q->beam = (int)beam;
    q->tol = tol;
    return parse_calibration(qc, path, q, err);
}

/* transformers' SpQRConfig: bits, beta1 (rows per second-order group), beta2 (columns per group). */
static qn_status parse_hf_spqr(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err)
{
    double bits = 0, beta1 = 0, beta2 = 0;
    qn_status s;
    if ((s = get_num(qc, "bits", &bits, true, path, err)) || (s = get_num(qc, "beta1", &beta1, true, path, err)) ||
        (s = get_num(qc, "beta2", &beta2, true, path, err)))
        return s;
    if (bits != QN_SPQR_HF_BITS || beta1 != QN_SPQR_HF_TILE || beta2 != QN_SPQR_HF_TILE)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: SpQR bits %g, beta1 %g, beta2 %g: the Hugging Face SpQR layout "
                          "exists only for bits 3, beta1 = beta2 = 16", path, bits, beta1, beta2);
    q->method = QN_METHOD_SPQR;
    q->hf_spqr_layout = true;
    q->wbits = QN_SPQR_HF_BITS;
    q->groupsize = q->qq_groupsize = QN_SPQR_HF_TILE;
    q->qq_scale_bits = q->qq_zero_bits = QN_SPQR_HF_BITS;
    q->outlier_threshold = INFINITY;
    return QN_OK;
}

qn_status qn_qmethod_config_parse(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err)
{
    memset(q, 0, sizeof *q);
    const char *qm = json_string_value(json_object_get(qc, "quant_method"));
    const char *m = json_string_value(json_object_get(qc, "method"));
    if (!qm) return qn_err_set(err, QN_ERR_FORMAT, "%s: quantization_config has no quant_method", path);
    if (strcmp(qm, "aqlm") == 0) return parse_aqlm(qc, path, q, err);
    if (strcmp(qm, "spqr") == 0) return parse_hf_spqr(qc, path, q, err);
    if (strcmp(qm, QN_QSTORE_INT) == 0) {
        q->method = m && strcmp(m, "rtn") == 0 ? QN_METHOD_RTN : QN_METHOD_GPTQ;
    } else if (strcmp(qm, QN_QSTORE_SPQR) == 0) {
        q->method = QN_METHOD_SPQR;
    } else {
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: quant_method '%s' is not supported (%s, %s are)", path, qm,
                          QN_QSTORE_INT, QN_QSTORE_SPQR ", aqlm, spqr");
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
    q->plain_stats = json_is_false(json_object_get(qc, "refine_stats"));
    q->percdamp = json_number_value(json_object_get(qc, "percdamp"));
    return parse_calibration(qc, path, q, err);
}

static qn_status parse_calibration(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err)
{
    qn_status s;
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

/* ---- running on the compressed kernels ---- */

static qn_status packed_aqlm(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                             size_t d_in, qn_linear *out, void **keep, qn_err *err)
{
    qn_aqlm_weights *w = malloc(sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    qn_status s = aqlm_stored(q, lk, base, d_out, d_in, w, err);
    if (!s) s = qn_linear_init(out, QN_FMT_AQLM, d_out, d_in, w, base, err);
    if (s) { free(w); return s; }
    *keep = w;
    return QN_OK;
}

static qn_status packed_int(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                            size_t d_in, qn_linear *out, void **keep, qn_err *err)
{
    char perm[256];
    snprintf(perm, sizeof perm, "%s.perm", base);
    int b = q->wbits;
    if (lk.has(lk.ctx, perm) || !(b == 2 || b == 3 || b == 4 || b == 8))
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no integer kernel for %d bits%s", base, b,
                          lk.has(lk.ctx, perm) ? " with a permutation" : "");
    size_t gs = int_groupsize(q, d_in), groups = gs ? (d_in + gs - 1) / gs : 1;
    int64_t cshape[2] = { (int64_t)d_out, (int64_t)((d_in * (size_t)b + 7) / 8) }, st[2] = { (int64_t)d_out, (int64_t)groups };
    const void *codes, *sc, *zr;
    qn_status s;
    if ((s = qn_qstore_fetch(lk, base, "qweight", QN_DTYPE_U8, 2, cshape, &codes, err)) ||
        (s = qn_qstore_fetch(lk, base, "scales", QN_DTYPE_F16, 2, st, &sc, err)) ||
        (s = qn_qstore_fetch(lk, base, "zeros", QN_DTYPE_F16, 2, st, &zr, err)))
        return s;
    qn_int_weights *w = malloc(sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    *w = (qn_int_weights){ .bits = b, .group_size = gs ? gs : d_in, .d_out = d_out, .d_in = d_in, .codes = codes,
                           .scales = sc, .zeros = zr, .codes_nbytes = d_out * (size_t)cshape[1],
                           .scales_nbytes = d_out * groups * 2, .zeros_nbytes = d_out * groups * 2 };
    if ((s = qn_linear_init(out, QN_FMT_INT, d_out, d_in, w, base, err))) { free(w); return s; }
    *keep = w;
    return QN_OK;
}

/* The kernel adds outlier values to the dense part; quench-spqr stores the
   weight that replaces it. The additive value of each outlier is computed once
   here: the exact layer (dequantized) minus the kernel's dense part. */
typedef struct {
    qn_spqr_weights w;
    int32_t *no_outliers;   /* (d_out + 1) zeros: the CSR of the dense part alone */
    uint16_t *delta;        /* (nnz) additive fp16 outlier values */
} spqr_keep;   /* the two arrays follow the struct in one allocation */

static qn_status packed_spqr(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                             size_t d_in, qn_linear *out, void **keep, qn_err *err)
{
    if (q->qq_scale_bits != q->qq_zero_bits || q->qq_scale_bits > 8)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no SpQR kernel for %d/%d-bit statistics", base,
                          q->qq_scale_bits, q->qq_zero_bits);
    size_t b1 = q->groupsize, b2 = q->qq_groupsize, ng = (d_in + b1 - 1) / b1, nrg = (d_out + b2 - 1) / b2;
    int sb = q->qq_scale_bits;
    int64_t cshape[2] = { (int64_t)d_out, (int64_t)((d_in * (size_t)q->wbits + 7) / 8) };
    int64_t qshape[2] = { (int64_t)d_out, (int64_t)((ng * (size_t)sb + 7) / 8) }, sshape[3] = { (int64_t)nrg, (int64_t)ng, 2 };
    const void *codes, *scodes, *zcodes, *sstats, *zstats, *rp = NULL, *ci = NULL, *perm = NULL;
    size_t nnz = 0;
    qn_status s;
    if ((s = qn_qstore_fetch(lk, base, "qweight", QN_DTYPE_U8, 2, cshape, &codes, err)) ||
        (s = qn_qstore_fetch(lk, base, "scale_codes", QN_DTYPE_U8, 2, qshape, &scodes, err)) ||
        (s = qn_qstore_fetch(lk, base, "zero_codes", QN_DTYPE_U8, 2, qshape, &zcodes, err)) ||
        (s = qn_qstore_fetch(lk, base, "scale_stats", QN_DTYPE_F16, 3, sshape, &sstats, err)) ||
        (s = qn_qstore_fetch(lk, base, "zero_stats", QN_DTYPE_F16, 3, sshape, &zstats, err)))
        return s;
    char name[256];
    snprintf(name, sizeof name, "%s.outlier_row_ptr", base);
    if (lk.has(lk.ctx, name)) {
        int64_t rshape[1] = { (int64_t)d_out + 1 };
        if ((s = qn_qstore_fetch(lk, base, "outlier_row_ptr", QN_DTYPE_I32, 1, rshape, &rp, err))) return s;
        int32_t last = ((const int32_t *)rp)[d_out];
        if (last < 0) return qn_err_set(err, QN_ERR_FORMAT, "%s: negative outlier count", base);
        nnz = (size_t)last;
        int64_t nshape[1] = { (int64_t)nnz };
        if ((s = qn_qstore_fetch(lk, base, "outlier_col_idx", QN_DTYPE_U16, 1, nshape, &ci, err))) return s;
    }
    snprintf(name, sizeof name, "%s.perm", base);
    if (lk.has(lk.ctx, name)) {
        int64_t pshape[1] = { (int64_t)d_in };
        if ((s = qn_qstore_fetch(lk, base, "perm", QN_DTYPE_I32, 1, pshape, &perm, err))) return s;
    }
    spqr_keep *k = calloc(1, sizeof *k + (d_out + 1) * sizeof(int32_t) + nnz * sizeof(uint16_t));
    float *exact = malloc(d_out * d_in * sizeof *exact), *dense = malloc(d_out * d_in * sizeof *dense);
    if (k) {
        k->no_outliers = (int32_t *)(k + 1);
        k->delta = (uint16_t *)(k->no_outliers + d_out + 1);
    }
    if (!k || !exact || !dense) {
        s = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    k->w = (qn_spqr_weights){ .bits = q->wbits, .stat_bits = sb, .beta1 = b1, .beta2 = b2, .d_out = d_out, .d_in = d_in,
                              .codes = codes, .scale_codes = scodes, .zero_codes = zcodes, .scale_stats = sstats,
                              .zero_stats = zstats, .nnz = 0, .row_ptr = k->no_outliers, .col_idx = NULL,
                              .values = NULL, .row_ptr_nbytes = (d_out + 1) * 4,
                              .perm = perm, .codes_nbytes = d_out * (size_t)cshape[1],
                              .scale_codes_nbytes = d_out * (size_t)qshape[1], .zero_codes_nbytes = d_out * (size_t)qshape[1],
                              .scale_stats_nbytes = nrg * ng * 4, .zero_stats_nbytes = nrg * ng * 4,
                              .perm_nbytes = perm ? d_in * 4 : 0 };
    /* the dense part alone (validated first), then the exact layer; outliers add their difference */
    if ((s = qn_spqr_validate(&k->w, base, err))) goto fail;
    qn_spqr_to_dense_ref(&k->w, dense);
    if ((s = qn_qmethod_dequantize(q, lk, base, d_out, d_in, exact, err))) goto fail;
    const int32_t *row_ptr = rp;
    const uint16_t *cols = ci;
    for (size_t r = 0; r < d_out && nnz; r++)
        for (int32_t i = row_ptr[r]; i < row_ptr[r + 1]; i++) {
            size_t c = cols[i];
            k->delta[i] = qn_f32_to_f16(exact[r * d_in + c] - dense[r * d_in + c]);
        }
    if (nnz) {
        k->w.nnz = nnz;
        k->w.row_ptr = rp;
        k->w.col_idx = ci;
        k->w.values = k->delta;
        k->w.col_idx_nbytes = k->w.values_nbytes = nnz * 2;
    }
    if ((s = qn_linear_init(out, QN_FMT_SPQR, d_out, d_in, &k->w, base, err))) goto fail;
    free(exact);
    free(dense);
    *keep = k;
    return QN_OK;
fail:
    free(exact);
    free(dense);
    free(k);
    return s;
}

qn_status qn_qmethod_packed(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in,
                            qn_linear *out, void **keep, qn_err *err)
{
    *keep = NULL;
    switch (q->method) {
    case QN_METHOD_AQLM: return packed_aqlm(q, lk, base, d_out, d_in, out, keep, err);
    case QN_METHOD_RTN: case QN_METHOD_GPTQ: return packed_int(q, lk, base, d_out, d_in, out, keep, err);
    case QN_METHOD_SPQR:
        if (q->hf_spqr_layout) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no CPU kernel for the Hugging Face SpQR tiles", base);
        return packed_spqr(q, lk, base, d_out, d_in, out, keep, err);
    default: return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no kernel", base);
    }
}

qn_status qn_qmethod_config_read(const char *dir, bool *found, char *quant_method, size_t cap, qn_quant_config *q,
                                 qn_err *err)
{
    char path[4200];
    *found = false;
    if (!qn_path_join(path, sizeof path, dir, "config.json")) return qn_err_set(err, QN_ERR_ARG, "path too long: %s", dir);
    json_t *root = NULL;
    qn_status s = qn_json_load(path, &root, err);
    if (s) return s;
    json_t *qc = json_object_get(root, "quantization_config");
    json_t *legacy = NULL;
    if (!qc && json_is_object(json_object_get(root, "aqlm"))) {
        /* older AQLM checkpoints: model_type llama_aqlm and a top-level "aqlm" block */
        legacy = json_deep_copy(json_object_get(root, "aqlm"));
        json_object_set_new(legacy, "quant_method", json_string("aqlm"));
        qc = legacy;
    }
    if (qc) {
        const char *qm = json_string_value(json_object_get(qc, "quant_method"));
        snprintf(quant_method, cap, "%s", qm ? qm : "?");
        s = qn_qmethod_config_parse(qc, path, q, err);
        *found = s == QN_OK;
    }
    json_decref(legacy);
    json_decref(root);
    return s;
}

void qn_quant_config_describe(const qn_quant_config *q, char *buf, size_t cap)
{
    const char *name = qn_method_name(q->method);
    switch (q->method) {
    case QN_METHOD_AQLM:
        snprintf(buf, cap, "aqlm %dx%d, groups of %zu", q->codebooks, q->codebook_bits, q->group);
        break;
    case QN_METHOD_SPQR: {
        if (q->hf_spqr_layout) {
            snprintf(buf, cap, "spqr w%d, 16x16 tiles of 3-bit statistics (Hugging Face SpQR layout)", q->wbits);
            break;
        }
        char tau[32] = "no outliers";
        if (isfinite(q->outlier_threshold)) snprintf(tau, sizeof tau, "tau %g", q->outlier_threshold);
        snprintf(buf, cap, "spqr w%d, beta1 %zu, beta2 %zu, %d/%d-bit statistics, %s%s", q->wbits, q->groupsize,
                 q->qq_groupsize, q->qq_scale_bits, q->qq_zero_bits, tau, q->act_order ? ", act_order" : "");
        break;
    }
    default:
        if (q->groupsize) snprintf(buf, cap, "%s w%d, groups of %zu%s", name, q->wbits, q->groupsize,
                                   q->act_order ? ", act_order" : "");
        else snprintf(buf, cap, "%s w%d, per row%s", name, q->wbits, q->act_order ? ", act_order" : "");
    }
}
