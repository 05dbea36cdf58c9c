/* pack.c: qn_linear -> GPU layout in host memory (see pack.h, layout.h). */
#include "kernels/cuda/pack.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/synth.h"

/* n zeroed elements of `size` bytes (at least one, so empty arrays are not NULL). */
static void *grab(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

/* Rows of LSB-first `bits`-bit codes (layouts.h) into rows of 32-bit words. */
static uint32_t *repack_codes(const uint8_t *src, size_t rows, size_t n, int bits, uint32_t *words_per_row)
{
    uint32_t wpr = qn_cu_words((uint32_t)n, bits), per = 32u / (uint32_t)bits;
    size_t row_bytes = qn_bits_row_bytes(n, bits);
    uint32_t *out = grab(rows * wpr, sizeof *out);
    if (!out) return NULL;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            out[r * wpr + i / per] |= (uint32_t)qn_bits_get(src + r * row_bytes, i, bits) << ((i % per) * (size_t)bits);
    *words_per_row = wpr;
    return out;
}

static void *dup_bytes(const void *src, size_t n)
{
    void *p = grab(n, 1);
    if (p && n) memcpy(p, src, n);
    return p;
}

static bool pack_f32(const qn_linear *w, qn_cu_matrix *m)
{
    m->kind = QN_CU_F16;
    size_t n = w->d_out * w->d_in;
    if (!(m->w = grab(n, sizeof *m->w))) return false;
    for (size_t i = 0; i < n; i++) m->w[i] = qn_synth_half(w->w[i]);
    return true;
}

static bool pack_int(const qn_int_weights *p, qn_cu_matrix *m)
{
    m->kind = QN_CU_INT;
    m->bits = p->bits;
    m->group_size = (uint32_t)p->group_size;
    m->n_groups = (uint32_t)((p->d_in + p->group_size - 1) / p->group_size);
    m->qwords = repack_codes(p->codes, p->d_out, p->d_in, p->bits, &m->words_per_row);
    m->scales = dup_bytes(p->scales, p->scales_nbytes);
    m->zeros = dup_bytes(p->zeros, p->zeros_nbytes);
    return m->qwords && m->scales && m->zeros;
}

static bool pack_aqlm(const qn_aqlm_weights *p, qn_cu_matrix *m)
{
    m->kind = QN_CU_AQLM;
    m->n_codebooks = p->n_codebooks;
    m->nbits = p->nbits;
    m->in_group_size = p->in_group_size;
    size_t n = p->d_out * (p->d_in / (size_t)p->in_group_size) * (size_t)p->n_codebooks;
    unsigned mask = (1u << p->nbits) - 1u;
    if (p->nbits <= 8) {
        if (!(m->codes8 = grab(n, 1))) return false;
        for (size_t i = 0; i < n; i++) m->codes8[i] = (uint8_t)(((const uint8_t *)p->codes)[i] & mask);
    } else {
        if (!(m->codes16 = grab(n, 2))) return false;
        for (size_t i = 0; i < n; i++) m->codes16[i] = (uint16_t)(((const uint16_t *)p->codes)[i] & mask);
    }
    m->codebooks = dup_bytes(p->codebooks, p->codebooks_nbytes);
    m->scales = dup_bytes(p->scales, p->scales_nbytes);
    return m->codebooks && m->scales;
}

static bool pack_spqr(const qn_spqr_weights *p, qn_cu_matrix *m)
{
    m->kind = QN_CU_SPQR;
    m->bits = p->bits;
    m->stat_bits = p->stat_bits;
    m->beta1 = (uint32_t)p->beta1;
    m->beta2 = (uint32_t)p->beta2;
    m->n_groups = (uint32_t)((p->d_in + p->beta1 - 1) / p->beta1);
    m->nnz = (uint32_t)p->nnz;
    m->qwords = repack_codes(p->codes, p->d_out, p->d_in, p->bits, &m->words_per_row);
    m->scale_qwords = repack_codes(p->scale_codes, p->d_out, m->n_groups, p->stat_bits, &m->stat_words_per_row);
    m->zero_qwords = repack_codes(p->zero_codes, p->d_out, m->n_groups, p->stat_bits, &m->stat_words_per_row);
    m->scale_stats = dup_bytes(p->scale_stats, p->scale_stats_nbytes);
    m->zero_stats = dup_bytes(p->zero_stats, p->zero_stats_nbytes);
    m->row_ptr = dup_bytes(p->row_ptr, p->row_ptr_nbytes);
    m->col_idx = dup_bytes(p->col_idx, p->col_idx_nbytes);
    m->values = dup_bytes(p->values, p->values_nbytes);
    if (p->perm && !(m->perm = dup_bytes(p->perm, p->perm_nbytes))) return false;
    return m->qwords && m->scale_qwords && m->zero_qwords && m->scale_stats && m->zero_stats && m->row_ptr &&
           m->col_idx && m->values;
}

qn_status qn_cu_pack(const qn_linear *w, qn_cu_matrix *out, qn_err *err)
{
    memset(out, 0, sizeof *out);
    out->d_out = (uint32_t)w->d_out;
    out->d_in = (uint32_t)w->d_in;
    bool ok = false;
    switch (w->fmt) {
    case QN_FMT_F32:  ok = pack_f32(w, out); break;
    case QN_FMT_INT:  ok = pack_int(w->packed, out); break;
    case QN_FMT_AQLM: ok = pack_aqlm(w->packed, out); break;
    case QN_FMT_SPQR: ok = pack_spqr(w->packed, out); break;
    default: return qn_err_set(err, QN_ERR_UNSUPPORTED, "no GPU layout for format %d", (int)w->fmt);
    }
    if (!ok) {
        qn_cu_pack_free(out);
        return qn_err_set(err, QN_ERR_NOMEM, "%zu x %zu linear: out of memory packing for the GPU", w->d_out, w->d_in);
    }
    return QN_OK;
}

int qn_cu_matrix_arrays(qn_cu_matrix *m, qn_cu_array out[QN_CU_MAX_ARRAYS])
{
    size_t R = m->d_out, C = m->d_in, ng = m->n_groups;
    int n = 0;
#define ARRAY(field, count) do { if (m->field) out[n++] = (qn_cu_array){ (void **)&m->field, (count) * sizeof *m->field }; } while (0)
    ARRAY(w, R * C);
    ARRAY(qwords, R * m->words_per_row);
    switch (m->kind) {
    case QN_CU_INT:
        ARRAY(scales, R * ng);
        ARRAY(zeros, R * ng);
        break;
    case QN_CU_AQLM: {
        size_t n_codes = R * (C / (size_t)m->in_group_size) * (size_t)m->n_codebooks;
        ARRAY(codes8, n_codes);
        ARRAY(codes16, n_codes);
        ARRAY(codebooks, ((size_t)m->n_codebooks << m->nbits) * (size_t)m->in_group_size);
        ARRAY(scales, R);
        break;
    }
    case QN_CU_SPQR: {
        size_t row_groups = (R + m->beta2 - 1) / m->beta2;
        ARRAY(scale_qwords, R * m->stat_words_per_row);
        ARRAY(zero_qwords, R * m->stat_words_per_row);
        ARRAY(scale_stats, row_groups * ng * 2);
        ARRAY(zero_stats, row_groups * ng * 2);
        ARRAY(row_ptr, R + 1);
        ARRAY(col_idx, (size_t)m->nnz);
        ARRAY(values, (size_t)m->nnz);
        ARRAY(perm, C);
        break;
    }
    case QN_CU_F16:
        break;
    }
#undef ARRAY
    return n;
}

size_t qn_cu_matrix_bytes(const qn_cu_matrix *m)
{
    qn_cu_matrix t = *m;
    qn_cu_array a[QN_CU_MAX_ARRAYS];
    size_t total = 0;
    for (int i = 0, n = qn_cu_matrix_arrays(&t, a); i < n; i++) total += a[i].nbytes;
    return total;
}

void qn_cu_pack_free(qn_cu_matrix *m)
{
    if (!m) return;
    qn_cu_array a[QN_CU_MAX_ARRAYS];
    for (int i = 0, n = qn_cu_matrix_arrays(m, a); i < n; i++) {
        free(*a[i].slot);
        *a[i].slot = NULL;
    }
}

void qn_cu_to_dense(const qn_cu_matrix *m, float *W)
{
    size_t C = m->d_in;
    for (uint32_t r = 0; r < m->d_out; r++) {
        float *row = W + r * C;
        for (uint32_t c = 0; c < m->d_in; c++) {
            switch (m->kind) {
            case QN_CU_F16:  row[c] = qn_cu_half(m->w[r * C + c]); break;
            case QN_CU_INT:  row[c] = qn_cu_int_weight(m, r, c); break;
            case QN_CU_AQLM: row[c] = qn_cu_aqlm_weight(m, r, c); break;
            case QN_CU_SPQR: row[m->perm ? (size_t)m->perm[c] : c] = qn_cu_spqr_dense(m, r, c); break;
            }
        }
        if (m->kind == QN_CU_SPQR)
            for (int32_t k = m->row_ptr[r]; k < m->row_ptr[r + 1]; k++) row[m->col_idx[k]] += qn_cu_half(m->values[k]);
    }
}
