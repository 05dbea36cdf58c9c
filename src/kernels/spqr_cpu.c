/* spqr_cpu.c: SpQR matvec and matmul on the CPU (see spqr_cpu.h).
   Legend [SpQR, Sec. 4]: w code bits; beta1 columns per group, ng groups per
   row; beta2 rows per second-level group; s, z first-level scale and zero;
   (ss, zs), (sz, zz) their second-level statistics. */
#include "kernels/spqr_cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/lowbit_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
#define QN_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define QN_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/* Below this many tokens a batch runs as one matvec per token: dequantize +
   sgemm costs ~27 ms per 4096x4096 on one core plus 0.34 ms a token,
   against 1.6 ms a token for w3 matvec (crossover measured at 21). */
#define SPQR_MIN_SGEMM_BATCH 16

static size_t n_groups(const qn_spqr_weights *w) { return (w->d_in + w->beta1 - 1) / w->beta1; }
static size_t n_row_groups(const qn_spqr_weights *w) { return (w->d_out + w->beta2 - 1) / w->beta2; }
static size_t stat_row_bytes(const qn_spqr_weights *w) { return qn_bits_row_bytes(n_groups(w), w->stat_bits); }

/* ---- validation ---- */

static qn_status check_finite(const char *name, const char *what, const uint16_t *h, size_t n, qn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!qn_half_is_finite(h[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: %s[%zu] is not finite (fp16 0x%04x)", name, what, i, h[i]);
    return QN_OK;
}

static qn_status check_csr(const qn_spqr_weights *w, const char *name, qn_err *err)
{
    const int32_t *rp = w->row_ptr;
    if (rp[0] != 0) return qn_err_set(err, QN_ERR_FORMAT, "%s: row_ptr[0] = %d, expected 0", name, rp[0]);
    for (size_t r = 0; r < w->d_out; r++) {
        if (rp[r + 1] < rp[r])
            return qn_err_set(err, QN_ERR_FORMAT, "%s: row_ptr[%zu] = %d is below row_ptr[%zu] = %d", name, r + 1,
                              rp[r + 1], r, rp[r]);
        if ((size_t)rp[r + 1] > w->nnz)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: row_ptr[%zu] = %d is past the end of the %zu outliers", name,
                              r + 1, rp[r + 1], w->nnz);
    }
    if ((size_t)rp[w->d_out] != w->nnz)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: row_ptr[%zu] = %d, expected the %zu outliers", name, w->d_out,
                          rp[w->d_out], w->nnz);
    for (size_t r = 0; r < w->d_out; r++)
        for (int32_t k = rp[r]; k < rp[r + 1]; k++)
            if (w->col_idx[k] >= w->d_in)
                return qn_err_set(err, QN_ERR_FORMAT,
                                  "%s: col_idx[%d] = %u (row %zu) is out of range for %zu columns", name, k,
                                  w->col_idx[k], r, w->d_in);
    return check_finite(name, "values", w->values, w->nnz, err);
}

static qn_status check_perm(const qn_spqr_weights *w, const char *name, qn_err *err)
{
    if (!w->perm) return QN_OK;
    uint8_t *seen = calloc(w->d_in, 1);
    if (!seen) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory checking perm", name);
    qn_status s = QN_OK;
    for (size_t j = 0; j < w->d_in && !s; j++) {
        int32_t c = w->perm[j];
        if (c < 0 || (size_t)c >= w->d_in)
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: perm[%zu] = %d is out of range for %zu columns", name, j, c,
                           w->d_in);
        else if (seen[c]++)
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: perm[%zu] = %d repeats an earlier column", name, j, c);
    }
    free(seen);
    return s;
}

qn_status qn_spqr_validate(const qn_spqr_weights *w, const char *name, qn_err *err)
{
    qn_status s;
    if (!w) return qn_err_set(err, QN_ERR_FORMAT, "%s: no SpQR layout", name);
    if (w->bits < 1 || w->bits > 8 || w->stat_bits < 1 || w->stat_bits > 8)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %d-bit codes with %d-bit statistics: expected 1..8 each",
                          name, w->bits, w->stat_bits);
    if (w->d_out == 0 || w->d_in == 0 || w->beta1 == 0 || w->beta2 == 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: empty shape %zu x %zu, groups %zu x %zu", name, w->d_out, w->d_in,
                          w->beta1, w->beta2);
    if (w->d_in > 65536 || w->d_out > ((size_t)1 << 30) || w->nnz > INT32_MAX)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %zu x %zu with %zu outliers: expected at most 65536 columns "
                          "(uint16 indices) and 2^31 outliers", name, w->d_out, w->d_in, w->nnz);
    size_t ng = n_groups(w), stats = n_row_groups(w) * ng * 2 * 2;
    if ((s = qn_check_bytes(name, "codes", w->codes, w->codes_nbytes, w->d_out * qn_bits_row_bytes(w->d_in, w->bits),
                         err)) ||
        (s = qn_check_bytes(name, "scale codes", w->scale_codes, w->scale_codes_nbytes, w->d_out * stat_row_bytes(w),
                         err)) ||
        (s = qn_check_bytes(name, "zero codes", w->zero_codes, w->zero_codes_nbytes, w->d_out * stat_row_bytes(w),
                         err)) ||
        (s = qn_check_bytes(name, "scale statistics", w->scale_stats, w->scale_stats_nbytes, stats, err)) ||
        (s = qn_check_bytes(name, "zero statistics", w->zero_stats, w->zero_stats_nbytes, stats, err)) ||
        (s = qn_check_bytes(name, "row_ptr", w->row_ptr, w->row_ptr_nbytes, (w->d_out + 1) * 4, err)))
        return s;
    if (w->nnz && ((s = qn_check_bytes(name, "col_idx", w->col_idx, w->col_idx_nbytes, w->nnz * 2, err)) ||
                   (s = qn_check_bytes(name, "values", w->values, w->values_nbytes, w->nnz * 2, err))))
        return s;
    if (!w->nnz && (w->col_idx_nbytes || w->values_nbytes))
        return qn_err_set(err, QN_ERR_SHAPE, "%s: no outliers declared but col_idx/values hold %zu/%zu bytes", name,
                          w->col_idx_nbytes, w->values_nbytes);
    if (w->perm && (s = qn_check_bytes(name, "perm", w->perm, w->perm_nbytes, w->d_in * 4, err))) return s;
    if (!w->perm && w->perm_nbytes)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: perm missing but declared with %zu bytes", name, w->perm_nbytes);
    if ((s = check_finite(name, "scale statistics", w->scale_stats, stats / 2, err)) ||
        (s = check_finite(name, "zero statistics", w->zero_stats, stats / 2, err)) ||
        (s = check_csr(w, name, err)))
        return s;
    return check_perm(w, name, err);
}

double qn_spqr_bits_per_weight(const qn_spqr_weights *w)
{
    double bytes = (double)w->d_out * (double)(qn_bits_row_bytes(w->d_in, w->bits) + 2 * stat_row_bytes(w)) +
                   8.0 * (double)(n_row_groups(w) * n_groups(w)) + 4.0 * (double)(w->d_out + 1) +
                   4.0 * (double)w->nnz + (w->perm ? 4.0 * (double)w->d_in : 0.0);
    return 8.0 * bytes / ((double)w->d_out * (double)w->d_in);
}

/* ---- statistics ---- */

/* First-level scale and zero of group g of row r [SpQR, Alg. 1, bilevel]:
   s = ss * (qs - zs), z = sz * (qz - zz), (ss, zs, sz, zz) of row group r / beta2. */
static void stats_ref(const qn_spqr_weights *w, size_t r, size_t g, float *s, float *z)
{
    size_t ng = n_groups(w), rg = r / w->beta2;
    const uint8_t *sc = w->scale_codes + r * stat_row_bytes(w), *zc = w->zero_codes + r * stat_row_bytes(w);
    const uint16_t *ssz = w->scale_stats + (rg * ng + g) * 2, *zsz = w->zero_stats + (rg * ng + g) * 2;
    *s = qn_half_to_float(ssz[0]) * ((float)qn_bits_get(sc, g, w->stat_bits) - qn_half_to_float(ssz[1]));
    *z = qn_half_to_float(zsz[0]) * ((float)qn_bits_get(zc, g, w->stat_bits) - qn_half_to_float(zsz[1]));
}

/* The second-level statistics of row group rg in f32, as four arrays of ng:
   st = {ss, zs, sz, zz}. */
static void group_stats_plain(const qn_spqr_weights *w, size_t rg, float *st)
{
    size_t ng = n_groups(w);
    for (size_t g = 0; g < ng; g++) {
        const uint16_t *ssz = w->scale_stats + (rg * ng + g) * 2, *zsz = w->zero_stats + (rg * ng + g) * 2;
        st[g] = qn_half_to_float(ssz[0]);
        st[ng + g] = qn_half_to_float(ssz[1]);
        st[2 * ng + g] = qn_half_to_float(zsz[0]);
        st[3 * ng + g] = qn_half_to_float(zsz[1]);
    }
}

#ifdef QN_HAVE_AVX2_PATH
/* pairs (n, 2) fp16 -> first (n), second (n) f32, eight pairs at a time. */
QN_AVX2 static void split_pairs_avx2(const uint16_t *pairs, size_t n, float *first, float *second)
{
    size_t g = 0;
    for (; g + 8 <= n; g += 8) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(pairs + 2 * g)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(pairs + 2 * g + 8)));
        __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xdd);   /* within lanes */
        _mm256_storeu_ps(first + g, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xd8)));
        _mm256_storeu_ps(second + g, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xd8)));
    }
    for (; g < n; g++) {
        first[g] = _cvtsh_ss(pairs[2 * g]);
        second[g] = _cvtsh_ss(pairs[2 * g + 1]);
    }
}
#endif

static void group_stats(const qn_spqr_weights *w, size_t rg, float *st, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2) {
        size_t ng = n_groups(w);
        split_pairs_avx2(w->scale_stats + rg * ng * 2, ng, st, st + ng);
        split_pairs_avx2(w->zero_stats + rg * ng * 2, ng, st + 2 * ng, st + 3 * ng);
        return;
    }
#else
    (void)simd;
#endif
    group_stats_plain(w, rg, st);
}

#ifdef QN_HAVE_AVX2_PATH
QN_AVX2 static inline float hsum8(__m256 v)
{
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/* sum_k values[k] * x[col_idx[k]] over k0 .. k1-1, eight outliers a gather. */
QN_AVX2 static float outliers_avx2(const qn_spqr_weights *w, int32_t k0, int32_t k1, const float *x)
{
    __m256 acc = _mm256_setzero_ps();
    int32_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        __m256i idx = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(w->col_idx + k)));
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w->values + k)));
        acc = _mm256_fmadd_ps(v, _mm256_i32gather_ps(x, idx, 4), acc);
    }
    float sum = hsum8(acc);
    for (; k < k1; k++) sum += _cvtsh_ss(w->values[k]) * x[w->col_idx[k]];
    return sum;
}
#endif

/* s, z (ng) of row r from its stat codes and st (group_stats of its row
   group): the same arithmetic as stats_ref. */
static void row_stats(const qn_spqr_weights *w, size_t r, const float *st, float *s, float *z, qn_simd simd)
{
    size_t ng = n_groups(w), srb = stat_row_bytes(w);
    qn_lowbit_affine(w->scale_codes + r * srb, w->scale_codes + w->d_out * srb, w->stat_bits, ng, st, st + ng, s,
                     simd);
    qn_lowbit_affine(w->zero_codes + r * srb, w->zero_codes + w->d_out * srb, w->stat_bits, ng, st + 2 * ng,
                     st + 3 * ng, z, simd);
}

static float outliers(const qn_spqr_weights *w, size_t r, const float *x, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2) return outliers_avx2(w, w->row_ptr[r], w->row_ptr[r + 1], x);
#else
    (void)simd;
#endif
    float sum = 0;
    for (int32_t k = w->row_ptr[r]; k < w->row_ptr[r + 1]; k++)
        sum += qn_half_to_float(w->values[k]) * x[w->col_idx[k]];
    return sum;
}

/* ---- reference ---- */

void qn_spqr_to_dense_ref(const qn_spqr_weights *w, float *W)
{
    size_t row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++) {
        for (size_t j = 0; j < w->d_in; j++) {
            float s, z;
            stats_ref(w, r, j / w->beta1, &s, &z);
            size_t c = w->perm ? (size_t)w->perm[j] : j;
            W[r * w->d_in + c] = s * ((float)qn_bits_get(w->codes + r * row_bytes, j, w->bits) - z);
        }
        for (int32_t k = w->row_ptr[r]; k < w->row_ptr[r + 1]; k++)
            W[r * w->d_in + w->col_idx[k]] += qn_half_to_float(w->values[k]);
    }
}

void qn_spqr_matvec_ref(const qn_spqr_weights *w, const float *x, float *y)
{
    size_t row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++) {
        float sum = 0;
        for (size_t j = 0; j < w->d_in; j++) {
            float s, z;
            stats_ref(w, r, j / w->beta1, &s, &z);
            size_t c = w->perm ? (size_t)w->perm[j] : j;
            sum += s * ((float)qn_bits_get(w->codes + r * row_bytes, j, w->bits) - z) * x[c];
        }
        for (int32_t k = w->row_ptr[r]; k < w->row_ptr[r + 1]; k++)
            sum += qn_half_to_float(w->values[k]) * x[w->col_idx[k]];
        y[r] = sum;
    }
}

/* ---- fast path ---- */

/* Per-thread scratch: second-level stats of one row group (4, ng), then s and
   z of QN_LOWBIT_MAX_ROWS rows (each (rows, ng)), then one dense row (d_in). */
static size_t scratch_floats(const qn_spqr_weights *w)
{
    return 4 * n_groups(w) + 2 * QN_LOWBIT_MAX_ROWS * n_groups(w) + w->d_in;
}

/* Rows r0 .. r0+nr-1 as a low-bit block, their stats decoded into scratch;
   *rg_have is the row group whose second-level stats scratch holds. */
static qn_lowbit_rows spqr_block(const qn_spqr_weights *w, size_t r0, size_t nr, float *scratch, size_t *rg_have,
                                 qn_simd simd)
{
    size_t ng = n_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    float *st = scratch, *s = st + 4 * ng, *z = s + QN_LOWBIT_MAX_ROWS * ng;
    for (size_t i = 0; i < nr; i++) {
        size_t rg = (r0 + i) / w->beta2;
        if (rg != *rg_have) { group_stats(w, rg, st, simd); *rg_have = rg; }
        row_stats(w, r0 + i, st, s + i * ng, z + i * ng, simd);
    }
    return (qn_lowbit_rows){ .bits = w->bits, .n = w->d_in, .group = w->beta1, .nr = nr,
                             .codes = w->codes + r0 * row_bytes, .codes_end = w->codes + w->d_out * row_bytes,
                             .s = s, .z = z, .stat_stride = ng };
}

qn_status qn_spqr_matvec(const qn_spqr_weights *w, const float *x, float *y, qn_simd simd, qn_err *err)
{
    simd = qn_simd_clamp(simd);
    int nt = qn_cpu_team(w->d_out, w->d_in);
    size_t per_thread = scratch_floats(w), n_blocks = (w->d_out + QN_LOWBIT_MAX_ROWS - 1) / QN_LOWBIT_MAX_ROWS;
    /* per-thread scratch, then the group sums of x (ng), x permuted (d_in), x split (d_in) */
    float *buf = malloc(((size_t)nt * per_thread + n_groups(w) + 2 * w->d_in) * sizeof *buf);
    if (!buf) return qn_err_set(err, QN_ERR_NOMEM, "spqr matvec: out of memory for %d x %zu floats", nt, per_thread);
    float *xsum = buf + (size_t)nt * per_thread, *xperm = xsum + n_groups(w), *xsplit = xperm + w->d_in;
    const float *xp = x;   /* x in code-column order */
    if (w->perm) {
        for (size_t j = 0; j < w->d_in; j++) xperm[j] = x[w->perm[j]];
        xp = xperm;
    }
    qn_lowbit_group_sums(xp, w->d_in, w->beta1, xsum);
    if (w->bits == 4 && w->beta1 >= 64) qn_lowbit_split16(xp, w->d_in, xsplit);
#pragma omp parallel num_threads(nt)
    {
        float *scratch = buf + (size_t)omp_get_thread_num() * per_thread;
        size_t rg_have = (size_t)-1;
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            size_t r0 = blk * QN_LOWBIT_MAX_ROWS;
            size_t nr = w->d_out - r0 < QN_LOWBIT_MAX_ROWS ? w->d_out - r0 : QN_LOWBIT_MAX_ROWS;
            qn_lowbit_rows b = spqr_block(w, r0, nr, scratch, &rg_have, simd);
            b.xsum = xsum;
            b.xsplit = w->bits == 4 && w->beta1 >= 64 ? xsplit : NULL;
            qn_lowbit_dot(&b, xp, y + r0, simd);
            for (size_t r = r0; r < r0 + nr; r++) y[r] += outliers(w, r, x, simd);   /* the sparse correction */
        }
    }
    free(buf);
    return QN_OK;
}

typedef struct {
    const qn_spqr_weights *w;
    qn_simd simd;
} spqr_dequant_ctx;

/* qn_cpu_dequant_rows_fn: dense rows in code order, scattered through perm, plus outliers. */
static void spqr_dequant_rows(const void *ctx, size_t r0, size_t r1, float *out, float *scratch)
{
    const spqr_dequant_ctx *c = ctx;
    const qn_spqr_weights *w = c->w;
    float *row = scratch + scratch_floats(w) - w->d_in;
    size_t rg_have = (size_t)-1;
    for (size_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * w->d_in;
        qn_lowbit_rows b = spqr_block(w, r, 1, scratch, &rg_have, c->simd);
        if (w->perm) {
            qn_lowbit_dequant(&b, row, c->simd);
            for (size_t j = 0; j < w->d_in; j++) o[w->perm[j]] = row[j];
        } else {
            qn_lowbit_dequant(&b, o, c->simd);
        }
        for (int32_t k = w->row_ptr[r]; k < w->row_ptr[r + 1]; k++) o[w->col_idx[k]] += qn_half_to_float(w->values[k]);
    }
}

qn_status qn_spqr_matmul(const qn_spqr_weights *w, const float *X, size_t n_tok, float *Y, qn_simd simd,
                         qn_err *err)
{
    simd = qn_simd_clamp(simd);
    if (n_tok < SPQR_MIN_SGEMM_BATCH) {
        for (size_t t = 0; t < n_tok; t++) {
            qn_status s = qn_spqr_matvec(w, X + t * w->d_in, Y + t * w->d_out, simd, err);
            if (s) return s;
        }
        return QN_OK;
    }
    spqr_dequant_ctx ctx = { w, simd };
    return qn_cpu_matmul_dequant(w->d_out, w->d_in, spqr_dequant_rows, &ctx, scratch_floats(w), X, n_tok, Y, err);
}
