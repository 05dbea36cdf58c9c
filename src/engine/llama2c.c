/* llama2c.c: llama2.c checkpoint reader (see llama2c.h; layout from
   karpathy/llama2.c run.c memory_map_weights). */
#include "engine/llama2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/llama_layout.h"

typedef struct {
    qn_mapping map;
    char path[4096];
    qn_config cfg;
    bool shared_classifier;
    /* offsets in floats from the start of the tensor data */
    size_t off_embed, off_rms_att, off_wq, off_wk, off_wv, off_wo, off_rms_ffn,
           off_w1, off_w2, off_w3, off_rms_final, off_wcls;
} l2c_file;

enum { HEADER_BYTES = 7 * 4 };

static const float *data_at(const l2c_file *f, size_t off_floats)
{
    return (const float *)(f->map.data + HEADER_BYTES) + off_floats;
}

/* Lays the tensors out as llama2.c's memory_map_weights does; returns the total float count. */
static size_t layout(l2c_file *f)
{
    const qn_config *c = &f->cfg;
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, L = (size_t)c->n_layers, v = (size_t)c->vocab_size;
    size_t hs = (size_t)c->head_dim, kv = (size_t)c->n_kv_heads * hs, seq = (size_t)c->max_seq_len;
    size_t o = 0;
    f->off_embed = o; o += v * d;
    f->off_rms_att = o; o += L * d;
    f->off_wq = o; o += L * d * d;
    f->off_wk = o; o += L * d * kv;
    f->off_wv = o; o += L * d * kv;
    f->off_wo = o; o += L * d * d;
    f->off_rms_ffn = o; o += L * d;
    f->off_w1 = o; o += L * d * h;
    f->off_w2 = o; o += L * h * d;
    f->off_w3 = o; o += L * d * h;
    f->off_rms_final = o; o += d;
    o += seq * hs / 2 * 2; /* legacy freq_cis_real and freq_cis_imag */
    f->off_wcls = f->shared_classifier ? f->off_embed : o;
    if (!f->shared_classifier) o += v * d;
    return o;
}

static bool read_header(const unsigned char *p, int32_t h[7])
{
    memcpy(h, p, HEADER_BYTES);
    return true;
}

int qn_llama2c_sniff(const char *path)
{
    qn_mapping m;
    if (qn_file_map(&m, path, NULL) != QN_OK) return 0;
    int ok = 0;
    if (m.size >= HEADER_BYTES) {
        int32_t h[7];
        read_header(m.data, h);
        ok = h[0] > 0 && h[0] <= 65536 && h[1] > 0 && h[2] > 0 && h[2] <= 1024 && h[3] > 0 &&
             h[4] > 0 && h[5] != 0 && h[6] > 0 && memcmp(m.data, "GGUF", 4) != 0;
    }
    qn_file_unmap(&m);
    return ok;
}

static qn_status l2c_get(void *ctx, const char *name, qn_f32_tensor *out, qn_err *err);
static bool l2c_has(void *ctx, const char *name);

static void l2c_close(void *ctx)
{
    l2c_file *f = ctx;
    if (!f) return;
    qn_file_unmap(&f->map);
    free(f);
}

qn_status qn_llama2c_open(const char *path, qn_config *cfg, qn_weight_source *src, qn_err *err)
{
    qn_status s;
    l2c_file *f = calloc(1, sizeof *f);
    if (!f) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    if ((s = qn_file_map(&f->map, path, err))) goto fail;
    if (f->map.size < HEADER_BYTES) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: %zu bytes is too short for a llama2.c header (28 bytes)", path, f->map.size);
        goto fail;
    }
    int32_t h[7];
    read_header(f->map.data, h);
    qn_config *c = &f->cfg;
    qn_config_init(c);
    c->dim = h[0]; c->hidden_dim = h[1]; c->n_layers = h[2]; c->n_heads = h[3]; c->n_kv_heads = h[4];
    f->shared_classifier = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
    c->max_seq_len = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rms_eps = 1e-5f;          /* llama2.c's rmsnorm */
    c->rope_theta = 10000.0f;
    c->tie_embeddings = f->shared_classifier;
    c->bos_id = 1;
    c->eos_id = 2;
    if ((s = qn_config_validate(c, path, err))) goto fail;
    if (c->n_heads * c->head_dim != c->dim) {
        s = qn_err_set(err, QN_ERR_SHAPE, "%s: dim %d is not a multiple of n_heads %d", path, c->dim, c->n_heads);
        goto fail;
    }
    size_t need = layout(f);
    size_t have = (f->map.size - HEADER_BYTES) / 4;
    if (have < need) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: truncated llama2.c checkpoint: expected %zu bytes, found %zu",
                       path, HEADER_BYTES + need * 4, f->map.size);
        goto fail;
    }
    *cfg = *c;
    *src = (qn_weight_source){ .get = l2c_get, .has = l2c_has, .close = l2c_close, .ctx = f, .path = f->path };
    return QN_OK;
fail:
    l2c_close(f);
    return s;
}

/* Finds which llama_layout tensor a name is. */
static bool find_desc(const l2c_file *f, const char *name, qn_tensor_desc *d)
{
    size_t n = qn_llama_n_tensors(&f->cfg);
    for (size_t i = 0; i < n; i++) {
        *d = qn_llama_tensor(&f->cfg, i);
        if (strcmp(d->name, name) == 0) return true;
    }
    if (!f->shared_classifier && strcmp(name, "lm_head.weight") == 0) {
        *d = qn_llama_tensor(&f->cfg, n - 1);
        return true;
    }
    return false;
}

static bool l2c_has(void *ctx, const char *name)
{
    qn_tensor_desc d;
    return find_desc(ctx, name, &d);
}

static qn_status l2c_get(void *ctx, const char *name, qn_f32_tensor *out, qn_err *err)
{
    l2c_file *f = ctx;
    qn_tensor_desc d;
    if (!find_desc(f, name, &d))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s' in a llama2.c checkpoint", f->path, name);
    const qn_config *c = &f->cfg;
    size_t l = d.layer < 0 ? 0 : (size_t)d.layer;
    size_t numel = (size_t)d.shape[0] * (size_t)(d.ndim == 2 ? d.shape[1] : 1);
    size_t off = 0;
    switch (d.role) {
    case QN_T_EMBED: off = f->off_embed; break;
    case QN_T_ATTN_NORM: off = f->off_rms_att + l * numel; break;
    case QN_T_WQ: off = f->off_wq + l * numel; break;
    case QN_T_WK: off = f->off_wk + l * numel; break;
    case QN_T_WV: off = f->off_wv + l * numel; break;
    case QN_T_WO: off = f->off_wo + l * numel; break;
    case QN_T_FFN_NORM: off = f->off_rms_ffn + l * numel; break;
    case QN_T_GATE: off = f->off_w1 + l * numel; break;
    case QN_T_DOWN: off = f->off_w2 + l * numel; break;
    case QN_T_UP: off = f->off_w3 + l * numel; break;
    case QN_T_FINAL_NORM: off = f->off_rms_final; break;
    case QN_T_LM_HEAD: off = f->off_wcls; break;
    }
    out->ndim = d.ndim;
    out->shape[0] = d.shape[0];
    out->shape[1] = d.shape[1];
    out->owned = false;
    out->data = (float *)data_at(f, off);
    if (d.role != QN_T_WQ && d.role != QN_T_WK) return QN_OK;
    /* q/k: copy, then reorder rows to HF's rotate-half convention */
    float *w = malloc(numel * sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for '%s'", f->path, name);
    memcpy(w, out->data, numel * sizeof *w);
    size_t heads = (size_t)(d.role == QN_T_WQ ? c->n_heads : c->n_kv_heads);
    qn_rope_meta_to_hf(w, heads, (size_t)c->head_dim, (size_t)c->dim);
    out->data = w;
    out->owned = true;
    return QN_OK;
}
