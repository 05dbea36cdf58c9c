/* qstore.c: quantized linears to and from stored tensors (see qstore.h). */
#include "engine/qstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bit packing: code i of a row occupies bits [i*b, (i+1)*b), LSB first ---- */

static size_t row_bytes(size_t n, int bits) { return (n * (size_t)bits + 7) / 8; }

static void pack_row(const uint8_t *codes, size_t stride, size_t n, int bits, uint8_t *out)
{
    memset(out, 0, row_bytes(n, bits));
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t)bits;
        unsigned v = codes[i * stride];
        out[bit >> 3] |= (uint8_t)(v << (bit & 7));
        if ((bit & 7) + (size_t)bits > 8) out[(bit >> 3) + 1] |= (uint8_t)(v >> (8 - (bit & 7)));
    }
}

static void unpack_row(const uint8_t *in, size_t n, int bits, uint8_t *codes, size_t stride)
{
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t)bits;
        unsigned v = (unsigned)in[bit >> 3] >> (bit & 7);
        if ((bit & 7) + (size_t)bits > 8) v |= (unsigned)in[(bit >> 3) + 1] << (8 - (bit & 7));
        codes[i * stride] = (uint8_t)(v & ((1u << bits) - 1u));
    }
}

static qn_status name_of(char *buf, size_t cap, const char *base, const char *part, qn_err *err)
{
    int n = snprintf(buf, cap, "%s.%s", base, part);
    if (n < 0 || (size_t)n >= cap) return qn_err_set(err, QN_ERR_ARG, "tensor name '%s.%s' too long", base, part);
    return QN_OK;
}

/* Packs a (rows, n) byte-per-code matrix read with the given strides. */
static qn_status put_packed(qn_tensor_set *s, const char *base, const char *part, const uint8_t *codes,
                            size_t rows, size_t n, size_t row_stride, size_t col_stride, int bits, qn_err *err)
{
    char name[256];
    qn_status st = name_of(name, sizeof name, base, part, err);
    if (st) return st;
    size_t rb = row_bytes(n, bits);
    uint8_t *buf = malloc(rows * rb + 1);
    if (!buf) return qn_err_set(err, QN_ERR_NOMEM, "out of memory packing '%s'", name);
    for (size_t r = 0; r < rows; r++) pack_row(codes + r * row_stride, col_stride, n, bits, buf + r * rb);
    int64_t shape[2] = { (int64_t)rows, (int64_t)rb };
    return qn_tensor_set_add(s, name, QN_DTYPE_U8, 2, shape, buf, 1, err);
}

static qn_status put_copy(qn_tensor_set *s, const char *base, const char *part, qn_dtype dt, int ndim,
                          const int64_t *shape, const void *data, qn_err *err)
{
    char name[256];
    qn_status st = name_of(name, sizeof name, base, part, err);
    if (st) return st;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return qn_tensor_set_copy(s, name, dt, ndim, shape, data, n * qn_dtype_size(dt), err);
}

static qn_status put_perm(qn_tensor_set *s, const char *base, const uint32_t *perm, size_t d_in, qn_err *err)
{
    if (!perm) return QN_OK;
    int64_t shape[1] = { (int64_t)d_in };
    return put_copy(s, base, "perm", QN_DTYPE_I32, 1, shape, perm, err);
}

qn_status qn_qstore_put_int(qn_tensor_set *s, const char *base, const qn_rtn_layer *L, qn_err *err)
{
    qn_status st;
    int64_t stats[2] = { (int64_t)L->d_out, (int64_t)L->n_groups };
    if ((st = put_packed(s, base, "qweight", L->codes, L->d_out, L->d_in, L->d_in, 1, L->bits, err))) return st;
    if ((st = put_copy(s, base, "scales", QN_DTYPE_F16, 2, stats, L->scale, err))) return st;
    if ((st = put_copy(s, base, "zeros", QN_DTYPE_F16, 2, stats, L->zero, err))) return st;
    return put_perm(s, base, L->perm, L->d_in, err);
}

/* (n_col_groups, n_row_groups) pairs -> (n_row_groups, n_col_groups, 2) */
static uint16_t *interleave_stats(const uint16_t *a, const uint16_t *b, size_t ncg, size_t nrg)
{
    uint16_t *out = malloc(ncg * nrg * 2 * sizeof *out + 1);
    if (!out) return NULL;
    for (size_t g = 0; g < ncg; g++)
        for (size_t h = 0; h < nrg; h++) {
            out[(h * ncg + g) * 2] = a[g * nrg + h];
            out[(h * ncg + g) * 2 + 1] = b[g * nrg + h];
        }
    return out;
}

static qn_status put_spqr_stats(qn_tensor_set *s, const char *base, const qn_spqr_layer *L, qn_err *err)
{
    qn_status st;
    size_t ncg = L->n_col_groups, nrg = L->n_row_groups;
    int64_t per_row[2] = { (int64_t)L->d_out, (int64_t)ncg };
    int64_t second[3] = { (int64_t)nrg, (int64_t)ncg, 2 };
    struct { const char *codes_part, *stats_part, *f16_part; const uint8_t *codes; const uint16_t *ss, *sz, *f16;
             int bits; } k[2] = {
        { "scale_codes", "scale_stats", "scales", L->scale_codes, L->scale_scale, L->scale_zero, L->scale_f16,
          L->qq_scale_bits },
        { "zero_codes", "zero_stats", "zeros", L->zero_codes, L->zero_scale, L->zero_zero, L->zero_f16,
          L->qq_zero_bits },
    };
    for (int i = 0; i < 2; i++) {
        if (k[i].bits == QN_SPQR_FP16_STATS) {
            /* (n_col_groups, d_out) -> (d_out, n_col_groups) */
            uint16_t *t = malloc(ncg * L->d_out * sizeof *t + 1);
            if (!t) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
            for (size_t g = 0; g < ncg; g++)
                for (size_t r = 0; r < L->d_out; r++) t[r * ncg + g] = k[i].f16[g * L->d_out + r];
            char name[256];
            if ((st = name_of(name, sizeof name, base, k[i].f16_part, err))) { free(t); return st; }
            if ((st = qn_tensor_set_add(s, name, QN_DTYPE_F16, 2, per_row, t, 1, err))) return st;
            continue;
        }
        /* codes stored (n_col_groups, d_out): row r of the packed tensor reads column r */
        if ((st = put_packed(s, base, k[i].codes_part, k[i].codes, L->d_out, ncg, 1, L->d_out, k[i].bits, err)))
            return st;
        uint16_t *inter = interleave_stats(k[i].ss, k[i].sz, ncg, nrg);
        if (!inter) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        char name[256];
        if ((st = name_of(name, sizeof name, base, k[i].stats_part, err))) { free(inter); return st; }
        if ((st = qn_tensor_set_add(s, name, QN_DTYPE_F16, 3, second, inter, 1, err))) return st;
    }
    return QN_OK;
}

qn_status qn_qstore_put_spqr(qn_tensor_set *s, const char *base, const qn_spqr_layer *L, qn_err *err)
{
    qn_status st;
    if ((st = put_packed(s, base, "qweight", L->codes, L->d_out, L->d_in, L->d_in, 1, L->bits, err))) return st;
    if ((st = put_spqr_stats(s, base, L, err))) return st;
    if (L->row_ptr) {
        int64_t rp[1] = { (int64_t)L->d_out + 1 }, nz[1] = { (int64_t)L->n_outliers };
        /* columns stored in the original input order, so a kernel needs no permutation for them */
        uint16_t *cols = malloc(L->n_outliers * sizeof *cols + 1);
        if (!cols) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < L->n_outliers; k++)
            cols[k] = (uint16_t)(L->perm ? L->perm[L->col_idx[k]] : L->col_idx[k]);
        char name[256];
        if ((st = put_copy(s, base, "outlier_row_ptr", QN_DTYPE_I32, 1, rp, L->row_ptr, err))) { free(cols); return st; }
        if ((st = name_of(name, sizeof name, base, "outlier_col_idx", err))) { free(cols); return st; }
        if ((st = qn_tensor_set_add(s, name, QN_DTYPE_U16, 1, nz, cols, 1, err))) return st;
        if ((st = put_copy(s, base, "outlier_values", QN_DTYPE_F16, 1, nz, L->values, err))) return st;
    }
    return put_perm(s, base, L->perm, L->d_in, err);
}

/* ---- reading ---- */

typedef struct { const qn_st_file *f; } st_lookup;

static qn_status st_find(void *ctx, const char *name, const qn_st_tensor **t, const char **file, qn_err *err)
{
    const qn_st_file *f = ctx;
    *t = qn_st_find(f, name);
    if (file) *file = qn_st_path(f);
    if (!*t) return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s'", qn_st_path(f), name);
    return QN_OK;
}

static bool st_has(void *ctx, const char *name) { return qn_st_find(ctx, name) != NULL; }

qn_raw_lookup qn_raw_lookup_st(const qn_st_file *f)
{
    return (qn_raw_lookup){ .find = st_find, .has = st_has, .ctx = (void *)f };
}

bool qn_qstore_has(qn_raw_lookup lk, const char *base)
{
    char name[256], codes[256], tiles[256];
    snprintf(name, sizeof name, "%s.qweight", base);
    snprintf(codes, sizeof codes, "%s.codes", base);
    snprintf(tiles, sizeof tiles, "%s.dense_weights", base);
    return lk.has(lk.ctx, name) || lk.has(lk.ctx, codes) || lk.has(lk.ctx, tiles);
}

/* Fetches <base>.<part> and checks dtype and shape. */
qn_status qn_qstore_fetch(qn_raw_lookup lk, const char *base, const char *part, qn_dtype dt, int ndim,
                       const int64_t *shape, const void **data, qn_err *err)
{
    char name[256];
    const qn_st_tensor *t;
    const char *file = "?";
    qn_status st = name_of(name, sizeof name, base, part, err);
    if (st || (st = lk.find(lk.ctx, name, &t, &file, err))) return st;
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? ", %lld" : "%lld", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), i ? ", %lld" : "%lld", (long long)t->shape[i]);
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' is %s [%s], expected %s [%s]", file, name,
                          qn_dtype_name(t->dtype), got, qn_dtype_name(dt), want);
    }
    *data = t->data;
    return QN_OK;
}

static qn_status get_perm(qn_raw_lookup lk, const char *base, size_t d_in, uint32_t **perm, qn_err *err)
{
    *perm = NULL;
    char name[256];
    if (name_of(name, sizeof name, base, "perm", err) || !lk.has(lk.ctx, name)) return QN_OK;
    const void *data;
    int64_t shape[1] = { (int64_t)d_in };
    qn_status st = qn_qstore_fetch(lk, base, "perm", QN_DTYPE_I32, 1, shape, &data, err);
    if (st) return st;
    uint32_t *p = malloc(d_in * sizeof *p + 1);
    uint8_t *seen = calloc(d_in + 1, 1);
    if (!p || !seen) { free(p); free(seen); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
    memcpy(p, data, d_in * sizeof *p);
    for (size_t j = 0; j < d_in; j++) {
        if (p[j] >= d_in || seen[p[j]]++) {
            free(p);
            free(seen);
            return qn_err_set(err, QN_ERR_FORMAT, "tensor '%s.perm' is not a permutation of 0..%zu", base, d_in - 1);
        }
    }
    free(seen);
    *perm = p;
    return QN_OK;
}

static qn_status get_packed(qn_raw_lookup lk, const char *base, const char *part, size_t rows, size_t n, int bits,
                            uint8_t *codes, size_t row_stride, size_t col_stride, qn_err *err)
{
    const void *data;
    int64_t shape[2] = { (int64_t)rows, (int64_t)row_bytes(n, bits) };
    qn_status st = qn_qstore_fetch(lk, base, part, QN_DTYPE_U8, 2, shape, &data, err);
    if (st) return st;
    for (size_t r = 0; r < rows; r++)
        unpack_row((const uint8_t *)data + r * (size_t)shape[1], n, bits, codes + r * row_stride, col_stride);
    return QN_OK;
}

qn_status qn_qstore_get_int(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in, int bits,
                            size_t groupsize, qn_rtn_layer *L, qn_err *err)
{
    memset(L, 0, sizeof *L);
    uint32_t *perm = NULL;
    qn_status st = get_perm(lk, base, d_in, &perm, err);
    if (st) return st;
    if ((st = qn_rtn_layer_init(L, d_out, d_in, bits, groupsize, perm != NULL, err))) { free(perm); return st; }
    if (perm) { memcpy(L->perm, perm, d_in * sizeof *perm); free(perm); }
    int64_t stats[2] = { (int64_t)d_out, (int64_t)L->n_groups };
    const void *sc, *zr;
    if ((st = get_packed(lk, base, "qweight", d_out, d_in, bits, L->codes, d_in, 1, err)) ||
        (st = qn_qstore_fetch(lk, base, "scales", QN_DTYPE_F16, 2, stats, &sc, err)) ||
        (st = qn_qstore_fetch(lk, base, "zeros", QN_DTYPE_F16, 2, stats, &zr, err))) {
        qn_rtn_layer_done(L);
        return st;
    }
    memcpy(L->scale, sc, d_out * L->n_groups * sizeof *L->scale);
    memcpy(L->zero, zr, d_out * L->n_groups * sizeof *L->zero);
    return QN_OK;
}

/* (n_row_groups, n_col_groups, 2) -> two (n_col_groups, n_row_groups) arrays */
static void split_stats(const uint16_t *in, size_t ncg, size_t nrg, uint16_t *a, uint16_t *b)
{
    for (size_t h = 0; h < nrg; h++)
        for (size_t g = 0; g < ncg; g++) {
            a[g * nrg + h] = in[(h * ncg + g) * 2];
            b[g * nrg + h] = in[(h * ncg + g) * 2 + 1];
        }
}

static qn_status get_spqr_stats(qn_raw_lookup lk, const char *base, qn_spqr_layer *L, qn_err *err)
{
    size_t ncg = L->n_col_groups, nrg = L->n_row_groups;
    int64_t per_row[2] = { (int64_t)L->d_out, (int64_t)ncg }, second[3] = { (int64_t)nrg, (int64_t)ncg, 2 };
    struct { const char *codes_part, *stats_part, *f16_part; uint8_t *codes; uint16_t *ss, *sz, *f16; int bits; } k[2] = {
        { "scale_codes", "scale_stats", "scales", L->scale_codes, L->scale_scale, L->scale_zero, L->scale_f16,
          L->qq_scale_bits },
        { "zero_codes", "zero_stats", "zeros", L->zero_codes, L->zero_scale, L->zero_zero, L->zero_f16,
          L->qq_zero_bits },
    };
    qn_status st;
    const void *data;
    for (int i = 0; i < 2; i++) {
        if (k[i].bits == QN_SPQR_FP16_STATS) {
            if ((st = qn_qstore_fetch(lk, base, k[i].f16_part, QN_DTYPE_F16, 2, per_row, &data, err))) return st;
            const uint16_t *t = data;
            for (size_t g = 0; g < ncg; g++)
                for (size_t r = 0; r < L->d_out; r++) k[i].f16[g * L->d_out + r] = t[r * ncg + g];
            continue;
        }
        if ((st = get_packed(lk, base, k[i].codes_part, L->d_out, ncg, k[i].bits, k[i].codes, 1, L->d_out, err)))
            return st;
        if ((st = qn_qstore_fetch(lk, base, k[i].stats_part, QN_DTYPE_F16, 3, second, &data, err))) return st;
        split_stats(data, ncg, nrg, k[i].ss, k[i].sz);
    }
    return QN_OK;
}

/* CSR outliers: row pointers monotone from 0 to nnz, columns inside the row. */
static qn_status get_outliers(qn_raw_lookup lk, const char *base, qn_spqr_layer *L, qn_err *err)
{
    char name[256];
    if (name_of(name, sizeof name, base, "outlier_row_ptr", err) || !lk.has(lk.ctx, name)) return QN_OK;
    const void *rp, *ci, *va;
    int64_t rshape[1] = { (int64_t)L->d_out + 1 };
    qn_status st = qn_qstore_fetch(lk, base, "outlier_row_ptr", QN_DTYPE_I32, 1, rshape, &rp, err);
    if (st) return st;
    const int32_t *row_ptr = rp;
    if (row_ptr[0] != 0) return qn_err_set(err, QN_ERR_FORMAT, "'%s.outlier_row_ptr' does not start at 0", base);
    for (size_t r = 0; r < L->d_out; r++)
        if (row_ptr[r + 1] < row_ptr[r])
            return qn_err_set(err, QN_ERR_FORMAT, "'%s.outlier_row_ptr' decreases at row %zu", base, r);
    size_t nnz = (size_t)row_ptr[L->d_out];
    int64_t nshape[1] = { (int64_t)nnz };
    if ((st = qn_qstore_fetch(lk, base, "outlier_col_idx", QN_DTYPE_U16, 1, nshape, &ci, err)) ||
        (st = qn_qstore_fetch(lk, base, "outlier_values", QN_DTYPE_F16, 1, nshape, &va, err)))
        return st;
    L->row_ptr = malloc((L->d_out + 1) * sizeof *L->row_ptr);
    L->col_idx = malloc((nnz ? nnz : 1) * sizeof *L->col_idx);
    L->values = malloc((nnz ? nnz : 1) * sizeof *L->values);
    uint32_t *inverse = L->perm ? malloc(L->d_in * sizeof *inverse) : NULL;
    if (!L->row_ptr || !L->col_idx || !L->values || (L->perm && !inverse)) {
        free(inverse);
        return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    }
    if (inverse) for (size_t j = 0; j < L->d_in; j++) inverse[L->perm[j]] = (uint32_t)j;
    for (size_t r = 0; r <= L->d_out; r++) L->row_ptr[r] = (uint32_t)row_ptr[r];
    const uint16_t *cols = ci;
    for (size_t k = 0; k < nnz; k++) {
        if (cols[k] >= L->d_in) {
            free(inverse);
            return qn_err_set(err, QN_ERR_FORMAT, "'%s.outlier_col_idx'[%zu] = %u is outside the %zu input columns",
                              base, k, cols[k], L->d_in);
        }
        L->col_idx[k] = (uint16_t)(inverse ? inverse[cols[k]] : cols[k]);
    }
    memcpy(L->values, va, nnz * sizeof *L->values);
    L->n_outliers = nnz;
    free(inverse);
    return QN_OK;
}

qn_status qn_qstore_get_spqr(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in,
                             const qn_spqr_opts *shape_opts, qn_spqr_layer *L, qn_err *err)
{
    memset(L, 0, sizeof *L);
    uint32_t *perm = NULL;
    qn_status st = get_perm(lk, base, d_in, &perm, err);
    if (st) return st;
    qn_spqr_opts o = *shape_opts;
    o.act_order = perm != NULL;
    if ((st = qn_spqr_layer_init(L, &o, d_out, d_in, err))) { free(perm); return st; }
    if (perm) { memcpy(L->perm, perm, d_in * sizeof *perm); free(perm); }
    if ((st = get_packed(lk, base, "qweight", d_out, d_in, L->bits, L->codes, d_in, 1, err)) ||
        (st = get_spqr_stats(lk, base, L, err)) || (st = get_outliers(lk, base, L, err))) {
        qn_spqr_layer_done(L);
        return st;
    }
    return QN_OK;
}
