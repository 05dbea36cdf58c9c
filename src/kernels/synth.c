/* synth.c: random well-formed compressed matrices (see synth.h). */
#include "kernels/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 [Steele et al. 2014]: the state is the caller's. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(next_u64(state) >> 11) * 0x1.0p-53);
}

uint16_t qn_synth_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);            /* rounds past 65504 */
    if (ax < 0x38800000u) {                                               /* subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t man = (ax & 0x7fffffu) | 0x800000u, shift = 126 - (ax >> 23);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((ax >> 13) - (112u << 10)), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* calloc that records the block in s->arrays for qn_synth_free. */
static void *own(qn_synth *s, size_t n)
{
    for (size_t i = 0; i < sizeof s->arrays / sizeof s->arrays[0]; i++)
        if (!s->arrays[i]) return s->arrays[i] = calloc(n ? n : 1, 1);
    return NULL;
}

static void fill_bytes(uint8_t *p, size_t n, uint64_t *st)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)next_u64(st);
}

static void fill_halves(uint16_t *p, size_t n, uint64_t *st, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) p[i] = qn_synth_half(uniform(st, lo, hi));
}

static qn_status make_int(qn_synth *s, const qn_synth_opts *o, uint64_t *st)
{
    qn_int_weights *w = &s->intw;
    size_t ng = (o->d_in + o->group_size - 1) / o->group_size;
    *w = (qn_int_weights){ .bits = o->bits, .group_size = o->group_size, .d_out = o->d_out, .d_in = o->d_in };
    w->codes_nbytes = o->d_out * qn_bits_row_bytes(o->d_in, o->bits);
    w->scales_nbytes = w->zeros_nbytes = o->d_out * ng * 2;
    uint8_t *codes = own(s, w->codes_nbytes);
    uint16_t *scales = own(s, w->scales_nbytes), *zeros = own(s, w->zeros_nbytes);
    if (!codes || !scales || !zeros) return QN_ERR_NOMEM;
    fill_bytes(codes, w->codes_nbytes, st);
    fill_halves(scales, o->d_out * ng, st, 1e-3f, 1e-2f);
    fill_halves(zeros, o->d_out * ng, st, 0.0f, (float)((1 << o->bits) - 1));
    w->codes = codes;
    w->scales = scales;
    w->zeros = zeros;
    return QN_OK;
}

static qn_status make_aqlm(qn_synth *s, const qn_synth_opts *o, uint64_t *st)
{
    qn_aqlm_weights *w = &s->aqlm;
    int M = o->n_codebooks, B = o->nbits, G = o->in_group_size;
    size_t n_codes = o->d_out * (o->d_in / (size_t)G) * (size_t)M, cb = ((size_t)M << B) * (size_t)G;
    *w = (qn_aqlm_weights){ .n_codebooks = M, .nbits = B, .in_group_size = G, .out_group_size = 1,
                            .d_out = o->d_out, .d_in = o->d_in };
    w->codes_nbytes = n_codes * (B <= 8 ? 1 : 2);
    w->codebooks_nbytes = cb * 2;
    w->scales_nbytes = o->d_out * 2;
    void *codes = own(s, w->codes_nbytes);
    uint16_t *codebooks = own(s, w->codebooks_nbytes), *scales = own(s, w->scales_nbytes);
    if (!codes || !codebooks || !scales) return QN_ERR_NOMEM;
    for (size_t i = 0; i < n_codes; i++) {   /* aqlm.utils.pack_int_data: codes >= 2^(B-1) stored negative */
        long v = (long)(next_u64(st) & ((1u << B) - 1u));
        if (B != 8 && B != 16 && v >= 1L << (B - 1)) v -= 1L << B;
        if (B <= 8) ((int8_t *)codes)[i] = (int8_t)v;
        else ((int16_t *)codes)[i] = (int16_t)v;
    }
    fill_halves(codebooks, cb, st, -1.0f / (float)M, 1.0f / (float)M);
    fill_halves(scales, o->d_out, st, 0.01f, 0.05f);
    w->codes = codes;
    w->codebooks = codebooks;
    w->scales = scales;
    return QN_OK;
}

static qn_status make_spqr(qn_synth *s, const qn_synth_opts *o, uint64_t *st)
{
    qn_spqr_weights *w = &s->spqr;
    size_t ng = (o->d_in + o->beta1 - 1) / o->beta1, nrg = (o->d_out + o->beta2 - 1) / o->beta2;
    size_t per_row = (size_t)floor(o->outlier_frac * (double)o->d_in + 0.5);
    if (per_row > o->d_in) per_row = o->d_in;
    *w = (qn_spqr_weights){ .bits = o->bits, .stat_bits = o->stat_bits, .beta1 = o->beta1, .beta2 = o->beta2,
                            .d_out = o->d_out, .d_in = o->d_in };
    w->codes_nbytes = o->d_out * qn_bits_row_bytes(o->d_in, o->bits);
    w->scale_codes_nbytes = w->zero_codes_nbytes = o->d_out * qn_bits_row_bytes(ng, o->stat_bits);
    w->scale_stats_nbytes = w->zero_stats_nbytes = nrg * ng * 4;
    w->row_ptr_nbytes = (o->d_out + 1) * 4;
    uint8_t *codes = own(s, w->codes_nbytes), *sc = own(s, w->scale_codes_nbytes), *zc = own(s, w->zero_codes_nbytes);
    uint16_t *ss = own(s, w->scale_stats_nbytes), *zs = own(s, w->zero_stats_nbytes);
    int32_t *row_ptr = own(s, w->row_ptr_nbytes);
    uint8_t *taken = own(s, o->d_in);
    if (!codes || !sc || !zc || !ss || !zs || !row_ptr || !taken) return QN_ERR_NOMEM;
    fill_bytes(codes, w->codes_nbytes, st);
    fill_bytes(sc, w->scale_codes_nbytes, st);
    fill_bytes(zc, w->zero_codes_nbytes, st);
    float top = (float)((1 << o->stat_bits) - 1), qtop = (float)((1 << o->bits) - 1);
    for (size_t i = 0; i < nrg * ng; i++) {   /* s in [~0, 1.5e-3 * 2^stat_bits], z in [0, 2^bits - 1] */
        ss[2 * i] = qn_synth_half(uniform(st, 1e-3f, 2e-3f));
        ss[2 * i + 1] = qn_synth_half(uniform(st, -1.0f, 0.0f));
        zs[2 * i] = qn_synth_half(uniform(st, 0.5f, 1.0f) * qtop / (top + 1.0f));
        zs[2 * i + 1] = qn_synth_half(uniform(st, 0.0f, 0.5f));
    }
    w->nnz = per_row * o->d_out;
    w->col_idx_nbytes = w->values_nbytes = w->nnz * 2;
    uint16_t *col = w->nnz ? own(s, w->col_idx_nbytes) : NULL, *val = w->nnz ? own(s, w->values_nbytes) : NULL;
    if (w->nnz && (!col || !val)) return QN_ERR_NOMEM;
    for (size_t r = 0; r < o->d_out; r++) {   /* per_row distinct columns, ascending */
        row_ptr[r] = (int32_t)(r * per_row);
        memset(taken, 0, o->d_in);
        for (size_t k = 0; k < per_row; k++) {
            size_t c = (size_t)(next_u64(st) % o->d_in);
            while (taken[c]) c = (c + 1) % o->d_in;
            taken[c] = 1;
        }
        for (size_t c = 0, k = r * per_row; c < o->d_in; c++)
            if (taken[c]) col[k++] = (uint16_t)c;
    }
    row_ptr[o->d_out] = (int32_t)w->nnz;
    if (w->nnz) fill_halves(val, w->nnz, st, -0.1f, 0.1f);
    if (o->permute) {   /* Fisher-Yates */
        w->perm_nbytes = o->d_in * 4;
        int32_t *perm = own(s, w->perm_nbytes);
        if (!perm) return QN_ERR_NOMEM;
        for (size_t j = 0; j < o->d_in; j++) perm[j] = (int32_t)j;
        for (size_t j = o->d_in - 1; j > 0; j--) {
            size_t k = (size_t)(next_u64(st) % (j + 1));
            int32_t t = perm[j];
            perm[j] = perm[k];
            perm[k] = t;
        }
        w->perm = perm;
    }
    w->codes = codes;
    w->scale_codes = sc;
    w->zero_codes = zc;
    w->scale_stats = ss;
    w->zero_stats = zs;
    w->row_ptr = row_ptr;
    w->col_idx = col;
    w->values = val;
    return QN_OK;
}

qn_status qn_synth_create(qn_synth **out, const qn_synth_opts *o, qn_err *err)
{
    *out = NULL;
    if (o->d_out == 0 || o->d_in == 0) return qn_err_set(err, QN_ERR_ARG, "synth: empty shape");
    bool ok = (o->fmt == QN_FMT_INT && o->bits >= 1 && o->bits <= 8 && o->group_size > 0) ||
              (o->fmt == QN_FMT_AQLM && o->n_codebooks >= 1 && o->n_codebooks <= 16 && o->nbits >= 1 &&
               o->nbits <= 16 && o->in_group_size > 0 && o->d_in % (size_t)o->in_group_size == 0) ||
              (o->fmt == QN_FMT_SPQR && o->bits >= 1 && o->bits <= 8 && o->stat_bits >= 1 && o->stat_bits <= 8 &&
               o->beta1 > 0 && o->beta2 > 0 && o->d_in <= 65536 && o->outlier_frac >= 0);
    if (!ok) return qn_err_set(err, QN_ERR_ARG, "synth: options do not describe a %s matrix of %zu x %zu",
                               o->fmt == QN_FMT_INT ? "int" : o->fmt == QN_FMT_AQLM ? "aqlm" : "spqr", o->d_out,
                               o->d_in);
    qn_synth *s = calloc(1, sizeof *s);
    if (!s) return qn_err_set(err, QN_ERR_NOMEM, "synth: out of memory");
    s->fmt = o->fmt;
    uint64_t st = o->seed;
    qn_status r = o->fmt == QN_FMT_INT ? make_int(s, o, &st) : o->fmt == QN_FMT_AQLM ? make_aqlm(s, o, &st)
                                                                                      : make_spqr(s, o, &st);
    if (r) {
        qn_synth_free(s);
        return qn_err_set(err, r, "synth: out of memory for a %zu x %zu matrix", o->d_out, o->d_in);
    }
    *out = s;
    return QN_OK;
}

void qn_synth_free(qn_synth *s)
{
    if (!s) return;
    for (size_t i = 0; i < sizeof s->arrays / sizeof s->arrays[0]; i++) free(s->arrays[i]);
    free(s);
}

const void *qn_synth_packed(const qn_synth *s)
{
    return s->fmt == QN_FMT_INT ? (const void *)&s->intw : s->fmt == QN_FMT_AQLM ? (const void *)&s->aqlm
                                                                                  : (const void *)&s->spqr;
}
