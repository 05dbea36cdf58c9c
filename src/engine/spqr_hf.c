/* spqr_hf.c: the Hugging Face SpQR layout (see spqr_hf.h). */
#include "engine/spqr_hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "engine/config.h"
#include "engine/dtype.h"
#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/llama_layout.h"
#include "engine/qmethod.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"

#define TILE QN_SPQR_HF_TILE
#define CODE_MASK 7u
#define SECOND_ORDER_SHIFT 54   /* 3 bits x (scale, zero, 16 weights) */

bool qn_spqr_hf_config_fits(const qn_quant_config *q)
{
    return q->method == QN_METHOD_SPQR && q->wbits == QN_SPQR_HF_BITS && q->groupsize == TILE &&
           q->qq_groupsize == TILE && q->qq_scale_bits == QN_SPQR_HF_BITS && q->qq_zero_bits == QN_SPQR_HF_BITS;
}

bool qn_spqr_hf_shape_fits(size_t d_out, size_t d_in, char *why, size_t why_cap)
{
    if (d_in % 2 || d_in > 65536 || d_out == 0 || d_out > (size_t)INT32_MAX) {
        snprintf(why, why_cap, "a %zu x %zu layer does not fit it (inputs must be even and at most 65536)", d_out, d_in);
        return false;
    }
    return true;
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* The tile's fp16 second-order statistics, as the kernel's SecondOrder union lays them out. */
static uint64_t second_order_word(const qn_spqr_layer *L, size_t g, size_t h)
{
    size_t i = g * L->n_row_groups + h;
    return (uint64_t)L->scale_scale[i] | (uint64_t)L->zero_scale[i] << 16 | (uint64_t)L->scale_zero[i] << 32 |
           (uint64_t)L->zero_zero[i] << 48;
}

/* fp16 arithmetic of the kernel: every operation rounds to fp16. */
static float h16(float x) { return qn_f16_to_f32(qn_f32_to_f16(x)); }

static float stat_f16(unsigned code, uint16_t scale, uint16_t zero)
{
    return h16(qn_f16_to_f32(scale) * h16((float)code - qn_f16_to_f32(zero)));
}

/* Dense weight of sweep column j in a tile row word, given the tile's second-order word. */
static float word_weight(uint64_t word, uint64_t so, size_t l)
{
    float s = stat_f16((unsigned)(word & CODE_MASK), (uint16_t)so, (uint16_t)(so >> 32));
    float z = stat_f16((unsigned)(word >> 3 & CODE_MASK), (uint16_t)(so >> 16), (uint16_t)(so >> 48));
    unsigned q = (unsigned)(word >> (6 + 3 * l) & CODE_MASK);
    return h16(s * h16((float)q - z));
}

qn_status qn_spqr_hf_pack(const qn_spqr_layer *L, qn_spqr_hf_linear *h, qn_err *err)
{
    memset(h, 0, sizeof *h);
    char why[160];
    if (L->bits != QN_SPQR_HF_BITS || L->beta1 != TILE || L->beta2 != TILE || L->qq_scale_bits != QN_SPQR_HF_BITS ||
        L->qq_zero_bits != QN_SPQR_HF_BITS)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "the Hugging Face SpQR layout holds only w3, 3-bit statistics, 16x16 tiles");
    if (!qn_spqr_hf_shape_fits(L->d_out, L->d_in, why, sizeof why)) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s", why);
    size_t m = L->d_out, n = L->d_in, tiles_m = ceil_div(m, TILE), tiles_n = ceil_div(n, TILE);
    h->d_out = m;
    h->d_in = n;
    h->n_words = tiles_m * tiles_n * TILE;
    h->nnz = L->n_outliers;
    h->dense_weights = calloc(h->n_words, sizeof *h->dense_weights);
    h->row_offsets = calloc(m + 1, sizeof *h->row_offsets);
    h->col_vals = malloc((h->nnz ? h->nnz : 1) * sizeof *h->col_vals);
    h->in_perm = malloc((n / 2 ? n / 2 : 1) * sizeof *h->in_perm);
    h->owned[0] = h->dense_weights;
    h->owned[1] = h->row_offsets;
    h->owned[2] = h->col_vals;
    h->owned[3] = h->in_perm;
    if (!h->dense_weights || !h->row_offsets || !h->col_vals || !h->in_perm) {
        qn_spqr_hf_linear_done(h);
        return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    }
    for (size_t ti = 0; ti < tiles_m; ti++)
        for (size_t tj = 0; tj < tiles_n; tj++) {
            uint64_t so = second_order_word(L, tj, ti);
            uint64_t *tile = h->dense_weights + (ti * tiles_n + tj) * TILE;
            /* rows past d_out stay zero but still carry their byte of the second-order word */
            for (size_t k = 0; k < TILE; k++) {
                size_t r = ti * TILE + k;
                uint64_t w = 0;
                if (r < m) {
                    w = (uint64_t)L->scale_codes[tj * m + r] | (uint64_t)L->zero_codes[tj * m + r] << 3;
                    for (size_t l = 0; l < TILE && tj * TILE + l < n; l++)
                        w |= (uint64_t)(L->codes[r * n + tj * TILE + l] & CODE_MASK) << (6 + 3 * l);
                }
                tile[k] = w | (so >> (8 * (k / 2)) & 0xFF) << SECOND_ORDER_SHIFT;
            }
        }
    for (size_t i = 0; i < n / 2; i++) {
        uint32_t lo = L->perm ? L->perm[2 * i] : (uint32_t)(2 * i);
        uint32_t hi = L->perm ? L->perm[2 * i + 1] : (uint32_t)(2 * i + 1);
        h->in_perm[i] = (int32_t)(lo | hi << 16);
    }
    for (size_t r = 0; r < m; r++) {
        h->row_offsets[r + 1] = L->row_ptr ? (int32_t)L->row_ptr[r + 1] : 0;
        for (uint32_t k = L->row_ptr ? L->row_ptr[r] : 0; L->row_ptr && k < L->row_ptr[r + 1]; k++) {
            size_t j = L->col_idx[k];
            const uint64_t *tile = h->dense_weights + ((r / TILE) * tiles_n + j / TILE) * TILE;
            float dense = word_weight(tile[r % TILE], second_order_word(L, j / TILE, r / TILE), j % TILE);
            uint16_t v = qn_f32_to_f16(qn_f16_to_f32(L->values[k]) - dense);
            h->col_vals[k] = (uint32_t)j | (uint32_t)v << 16;
        }
    }
    return QN_OK;
}

void qn_spqr_hf_linear_done(qn_spqr_hf_linear *h)
{
    for (int i = 0; i < 4; i++) free(h->owned[i]);
    memset(h, 0, sizeof *h);
}

qn_status qn_spqr_hf_put(qn_tensor_set *s, const char *base, const qn_spqr_hf_linear *h, qn_err *err)
{
    struct { const char *part; qn_dtype dt; const void *data; size_t n, size; } parts[] = {
        { "dense_weights", QN_DTYPE_I64, h->dense_weights, h->n_words, 8 },
        { "row_offsets", QN_DTYPE_I32, h->row_offsets, h->d_out + 1, 4 },
        { "col_vals", QN_DTYPE_I32, h->col_vals, h->nnz, 4 },
        { "in_perm", QN_DTYPE_I32, h->in_perm, h->d_in / 2, 4 },
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char name[256];
        if ((size_t)snprintf(name, sizeof name, "%s.%s", base, parts[i].part) >= sizeof name)
            return qn_err_set(err, QN_ERR_ARG, "tensor name too long: %s", base);
        int64_t shape[1] = { (int64_t)parts[i].n };
        qn_status st = qn_tensor_set_copy(s, name, parts[i].dt, 1, shape, parts[i].data, parts[i].n * parts[i].size, err);
        if (st) return st;
    }
    return QN_OK;
}

/* <base>.<part>, 1-D of dtype dt; *n receives its length. safetensors does not align
   tensors, so one at an address its type cannot be read from is copied (*copy, to free). */
static qn_status fetch_1d(qn_raw_lookup lk, const char *base, const char *part, qn_dtype dt, const void **data,
                          size_t *n, void **copy, const char **file, qn_err *err)
{
    char name[256];
    const qn_st_tensor *t;
    if ((size_t)snprintf(name, sizeof name, "%s.%s", base, part) >= sizeof name)
        return qn_err_set(err, QN_ERR_ARG, "tensor name too long: %s", base);
    qn_status st = lk.find(lk.ctx, name, &t, file, err);
    if (st) return st;
    if (t->dtype != dt || t->ndim != 1)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' is %s with %d dimensions, expected 1-D %s", *file, name,
                          qn_dtype_name(t->dtype), t->ndim, qn_dtype_name(dt));
    *data = t->data;
    *n = (size_t)t->shape[0];
    size_t size = qn_dtype_size(dt);
    if ((uintptr_t)t->data % size == 0) return QN_OK;
    if (!(*copy = malloc(*n * size + 1))) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    memcpy(*copy, t->data, *n * size);
    *data = *copy;
    return QN_OK;
}

static qn_status check_len(const char *file, const char *base, const char *part, size_t got, size_t want, qn_err *err)
{
    if (got == want) return QN_OK;
    return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s.%s' has %zu elements, expected %zu", file, base, part, got, want);
}

static qn_status get_checked(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in, qn_spqr_hf_linear *h,
                             qn_err *err)
{
    char why[160];
    if (!qn_spqr_hf_shape_fits(d_out, d_in, why, sizeof why)) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %s", base, why);
    const char *file = "?";
    const void *dw, *ro, *cv, *ip;
    size_t n_dw, n_ro, n_cv, n_ip;
    qn_status st;
    h->d_out = d_out;
    h->d_in = d_in;
    h->n_words = ceil_div(d_out, TILE) * ceil_div(d_in, TILE) * TILE;
    if ((st = fetch_1d(lk, base, "dense_weights", QN_DTYPE_I64, &dw, &n_dw, &h->owned[0], &file, err)) ||
        (st = check_len(file, base, "dense_weights", n_dw, h->n_words, err)) ||
        (st = fetch_1d(lk, base, "row_offsets", QN_DTYPE_I32, &ro, &n_ro, &h->owned[1], &file, err)) ||
        (st = fetch_1d(lk, base, "col_vals", QN_DTYPE_I32, &cv, &n_cv, &h->owned[2], &file, err)) ||
        (st = fetch_1d(lk, base, "in_perm", QN_DTYPE_I32, &ip, &n_ip, &h->owned[3], &file, err)))
        return st;
    if (n_ro != d_out + 1)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tensor '%s.row_offsets' has %zu elements, not %zu: only the CSR "
                          "outlier storage is read (not PTCSR)", file, base, n_ro, d_out + 1);
    if (n_ip != 0 && (st = check_len(file, base, "in_perm", n_ip, d_in / 2, err))) return st;
    const int32_t *rows = ro;
    if (rows[0] != 0) return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s.row_offsets' does not start at 0", file, base);
    for (size_t r = 0; r < d_out; r++)
        if (rows[r + 1] < rows[r] || (size_t)rows[r + 1] > n_cv)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s.row_offsets' is not increasing within 0..%zu at row %zu", file,
                              base, n_cv, r);
    if ((size_t)rows[d_out] != n_cv)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s.row_offsets' ends at %d but col_vals has %zu entries", file, base,
                          rows[d_out], n_cv);
    const uint32_t *vals = cv;
    for (size_t k = 0; k < n_cv; k++)
        if ((vals[k] & 0xFFFF) >= d_in)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: '%s.col_vals' entry %zu names column %u of %zu", file, base, k,
                              vals[k] & 0xFFFF, d_in);
    const uint32_t *perm = ip;
    uint8_t *seen = calloc(d_in, 1);
    if (!seen) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < n_ip * 2 && !st; j++) {
        uint32_t c = perm[j / 2] >> (16 * (j % 2)) & 0xFFFF;
        if (c >= d_in || seen[c]++)
            st = qn_err_set(err, QN_ERR_FORMAT, "%s: '%s.in_perm' is not a permutation of 0..%zu", file, base, d_in - 1);
    }
    free(seen);
    if (st) return st;
    h->dense_weights = (uint64_t *)dw;
    h->row_offsets = (int32_t *)ro;
    h->col_vals = (uint32_t *)cv;
    h->nnz = n_cv;
    h->in_perm = n_ip ? (int32_t *)ip : NULL;
    return QN_OK;
}

qn_status qn_spqr_hf_get(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in, qn_spqr_hf_linear *h,
                         qn_err *err)
{
    memset(h, 0, sizeof *h);
    qn_status st = get_checked(lk, base, d_out, d_in, h, err);
    if (st) qn_spqr_hf_linear_done(h);
    return st;
}

static size_t input_of(const qn_spqr_hf_linear *h, size_t j)
{
    return h->in_perm ? (uint32_t)h->in_perm[j / 2] >> (16 * (j % 2)) & 0xFFFF : j;
}

void qn_spqr_hf_dequantize(const qn_spqr_hf_linear *h, float *W)
{
    size_t m = h->d_out, n = h->d_in, tiles_m = ceil_div(m, TILE), tiles_n = ceil_div(n, TILE);
    for (size_t ti = 0; ti < tiles_m; ti++)
        for (size_t tj = 0; tj < tiles_n; tj++) {
            const uint64_t *tile = h->dense_weights + (ti * tiles_n + tj) * TILE;
            uint64_t so = 0;
            for (size_t q = 0; q < TILE; q += 2) so |= (tile[q] >> SECOND_ORDER_SHIFT & 0xFF) << (8 * (q / 2));
            for (size_t k = 0; k < TILE && ti * TILE + k < m; k++)
                for (size_t l = 0; l < TILE && tj * TILE + l < n; l++)
                    W[(ti * TILE + k) * n + input_of(h, tj * TILE + l)] = word_weight(tile[k], so, l);
        }
    for (size_t r = 0; r < m; r++)
        for (int32_t k = h->row_offsets[r]; k < h->row_offsets[r + 1]; k++) {
            uint32_t cv = h->col_vals[k];
            W[r * n + input_of(h, cv & 0xFFFF)] += qn_f16_to_f32((uint16_t)(cv >> 16));
        }
}

/* ---- whole folders ---- */

static qn_status join(char *buf, size_t cap, const char *dir, const char *name, qn_err *err)
{
    if (!qn_path_join(buf, cap, dir, name)) return qn_err_set(err, QN_ERR_ARG, "path too long: %s/%s", dir, name);
    return QN_OK;
}

static json_t *hf_quantization_config(const qn_quant_config *q, json_t *shapes)
{
    /* transformers < 5 matches "<module>.weight", 5.x the module name: list both */
    return json_pack("{s:s, s:i, s:i, s:i, s:o, s:[s, s]}", "quant_method", "spqr", "bits", q->wbits, "beta1",
                     (int)q->qq_groupsize, "beta2", (int)q->groupsize, "shapes", shapes, "modules_to_not_convert",
                     "lm_head.weight", "lm_head");
}

static qn_status add_shapes(json_t *shapes, const char *base, const qn_spqr_hf_linear *h)
{
    const char *parts[] = { "dense_weights", "row_offsets", "col_vals", "in_perm" };
    size_t lens[] = { h->n_words, h->d_out + 1, h->nnz, h->d_in / 2 };
    for (size_t i = 0; i < 4; i++) {
        char key[300];
        snprintf(key, sizeof key, "%s.%s.shape", base, parts[i]);
        if (json_object_set_new(shapes, key, json_integer((json_int_t)lens[i]))) return QN_ERR_NOMEM;
    }
    return QN_OK;
}

/* One tensor of the source folder into the set: SpQR linears repacked, the rest in fp16. */
static qn_status export_tensor(const qn_st_file *f, const qn_quant_config *q, const qn_tensor_desc *d,
                               qn_tensor_set *out, json_t *shapes, qn_err *err)
{
    qn_raw_lookup lk = qn_raw_lookup_st(f);
    char base[96];
    snprintf(base, sizeof base, "%s", d->name);
    base[strlen(base) - strlen(".weight")] = 0;
    if (d->ndim == 2 && qn_qstore_has(lk, base)) {
        qn_spqr_opts o = qn_qmethod_spqr_opts(q);
        qn_spqr_layer L;
        qn_spqr_hf_linear h;
        qn_status st = qn_qstore_get_spqr(lk, base, (size_t)d->shape[0], (size_t)d->shape[1], &o, &L, err);
        if (st) return st;
        st = qn_spqr_hf_pack(&L, &h, err);
        qn_spqr_layer_done(&L);
        if (st) return qn_err_prefix(err, "%s: ", base);
        st = qn_spqr_hf_put(out, base, &h, err);
        if (!st && add_shapes(shapes, base, &h)) st = qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        qn_spqr_hf_linear_done(&h);
        return st;
    }
    const qn_st_tensor *t = qn_st_find(f, d->name);
    if (!t) return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s'", qn_st_path(f), d->name);
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    float *x = malloc(n * sizeof *x);
    uint16_t *y = malloc(n * sizeof *y);
    qn_status st = x && y ? QN_OK : qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    if (!st) {
        qn_dtype_to_f32(t->dtype, t->data, x, n);
        for (size_t i = 0; i < n; i++) y[i] = qn_f32_to_f16(x[i]);
        st = qn_tensor_set_add(out, d->name, QN_DTYPE_F16, t->ndim, t->shape, y, 1, err);
        y = NULL;   /* the set owns it now, on failure too */
    }
    free(x);
    free(y);
    return st;
}

qn_status qn_spqr_hf_export(const char *src, const char *dst, qn_err *err)
{
    char cfg_path[4200], st_path[4200], out_path[4200], method[32];
    json_t *shapes = json_object();
    qn_st_file *f = NULL;
    qn_tensor_set out = {0};
    qn_config c;
    qn_quant_config q;
    bool quantized = false;
    qn_status s = shapes ? QN_OK : qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    if (!s) s = join(cfg_path, sizeof cfg_path, src, "config.json", err);
    if (!s) s = join(st_path, sizeof st_path, src, "model.safetensors", err);
    if (!s) s = qn_config_load_hf(&c, cfg_path, err);
    if (!s) s = qn_qmethod_config_read(src, &quantized, method, sizeof method, &q, err);
    if (!s && !quantized)
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: not a quantized model (no quantization_config)", cfg_path);
    if (!s && !qn_spqr_hf_config_fits(&q))
        s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: the Hugging Face SpQR layout holds only SpQR w3 with 3-bit statistics "
                       "and beta1 = beta2 = 16", src);
    if (!s) s = qn_st_open(&f, st_path, err);
    for (size_t i = 0, n = qn_llama_n_tensors(&c); !s && i < n; i++) {
        qn_tensor_desc d = qn_llama_tensor(&c, i);
        s = export_tensor(f, &q, &d, &out, shapes, err);
        if (s) qn_err_prefix(err, "%s: ", st_path);
    }
    static const char *const meta[] = { "format", "pt", "producer", "quench", NULL };
    if (!s) s = qn_dir_ensure(dst, err);
    qn_tensor_set_order_for_alignment(&out);
    if (!s) s = join(out_path, sizeof out_path, dst, "model.safetensors", err);
    if (!s) s = qn_tensor_set_write(&out, out_path, meta, err);
    if (!s) s = qn_tok_copy_hf_files(src, dst, err);
    if (!s) {
        json_t *cfg = qn_config_json(&c);
        json_object_set_new(cfg, "quantization_config", hf_quantization_config(&q, shapes));
        shapes = NULL;
        json_object_set_new(cfg, "torch_dtype", json_string("float16"));
        s = join(out_path, sizeof out_path, dst, "config.json", err);
        if (!s) s = qn_json_save(cfg, out_path, err);   /* last: its presence marks a complete folder */
        json_decref(cfg);
    }
    json_decref(shapes);
    qn_tensor_set_clear(&out);
    qn_st_close(f);
    return s;
}
