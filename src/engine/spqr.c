/* spqr.c: SpQR Algorithm 1 on one layer (see spqr.h): the GPTQ sweep of gptq.c
   driven by a bilevel min-max quantizer with leave-one-out outlier detection.
   Shapes: W (d_out, d_in) row-major in sweep order; a group is beta1 columns;
   statistics are (n_col_groups, d_out); second-level ones (n_col_groups,
   n_row_groups). Section and line numbers cite the ICLR 2024 paper. */
#include "engine/spqr.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dtype.h"
#include "engine/gptq.h"
#include "engine/rtn.h"

qn_spqr_opts qn_spqr_opts_default(void)
{
    return (qn_spqr_opts){ .bits = 3, .beta1 = 16, .beta2 = 16, .qq_scale_bits = 3, .qq_zero_bits = 3,
                           .outlier_threshold = 0.2, .act_order = true, .percdamp = 1.0,
                           .blocksize = QN_GPTQ_BLOCKSIZE, .refine_stats = true };
}

void qn_spqr_layer_done(qn_spqr_layer *L)
{
    if (!L) return;
    free(L->codes);
    free(L->scale_codes);
    free(L->zero_codes);
    free(L->scale_scale);
    free(L->scale_zero);
    free(L->zero_scale);
    free(L->zero_zero);
    free(L->scale_f16);
    free(L->zero_f16);
    free(L->perm);
    free(L->row_ptr);
    free(L->col_idx);
    free(L->values);
    memset(L, 0, sizeof *L);
}

/* A first-level statistic of row r in column group g: fp16 as is, or the bilevel
   dequantization s2 * (code - z2) [SpQR, Sec. 4.1 "small groups with bilevel quantization"]. */
static float stat_value(const uint16_t *f16, const uint8_t *codes, const uint16_t *s2, const uint16_t *z2,
                        const qn_spqr_layer *L, size_t g, size_t r)
{
    if (f16) return qn_f16_to_f32(f16[g * L->d_out + r]);
    size_t h = g * L->n_row_groups + r / L->beta2;
    return qn_rtn_dequant(codes[g * L->d_out + r], qn_f16_to_f32(s2[h]), qn_f16_to_f32(z2[h]));
}

void qn_spqr_dequantize(const qn_spqr_layer *L, float *W)
{
    size_t n = L->d_in;
    for (size_t r = 0; r < L->d_out; r++) {
        for (size_t j = 0; j < n; j++) {
            size_t g = j / L->beta1;
            float s = stat_value(L->scale_f16, L->scale_codes, L->scale_scale, L->scale_zero, L, g, r);
            float z = stat_value(L->zero_f16, L->zero_codes, L->zero_scale, L->zero_zero, L, g, r);
            W[r * n + (L->perm ? L->perm[j] : j)] = qn_rtn_dequant(L->codes[r * n + j], s, z);
        }
        if (!L->row_ptr) continue;
        for (uint32_t k = L->row_ptr[r]; k < L->row_ptr[r + 1]; k++) {
            size_t j = L->col_idx[k];
            W[r * n + (L->perm ? L->perm[j] : j)] = qn_f16_to_f32(L->values[k]);
        }
    }
}

static double stat_bits(int qq_bits)
{
    return qq_bits == QN_SPQR_FP16_STATS ? 16.0 : (double)qq_bits;
}

double qn_spqr_bits(const qn_spqr_layer *L)
{
    double numel = (double)L->d_out * (double)L->d_in;
    double first = (double)L->d_out * (double)L->n_col_groups;
    double second = (double)L->n_col_groups * (double)L->n_row_groups;
    double total = numel * L->bits + first * (stat_bits(L->qq_scale_bits) + stat_bits(L->qq_zero_bits));
    if (L->qq_scale_bits != QN_SPQR_FP16_STATS) total += second * 32.0;   /* fp16 s2 and z2 */
    if (L->qq_zero_bits != QN_SPQR_FP16_STATS) total += second * 32.0;
    total += 32.0 * (double)L->n_outliers;
    return total / numel;
}

double qn_spqr_bits_stored(const qn_spqr_layer *L)
{
    double numel = (double)L->d_out * (double)L->d_in, extra = 0;
    if (L->row_ptr) extra += 32.0 * (double)(L->d_out + 1);
    if (L->perm) extra += 16.0 * (double)L->d_in;
    return qn_spqr_bits(L) + extra / numel;
}

static qn_status check_opts(const qn_layer_problem *p, const qn_spqr_opts *o, qn_err *err)
{
    const char *name = p->name;
    if (o->bits < 1 || o->bits > QN_RTN_MAX_BITS)
        return qn_err_set(err, QN_ERR_ARG, "%s: weight bits must be 1..%d, found %d", name, QN_RTN_MAX_BITS, o->bits);
    if (o->beta1 > p->d_in)
        return qn_err_set(err, QN_ERR_ARG, "%s: beta1 (group size) %zu is larger than the %zu input columns", name,
                          o->beta1, p->d_in);
    if (o->beta2 > p->d_out)
        return qn_err_set(err, QN_ERR_ARG, "%s: beta2 (statistics group) %zu is larger than the %zu output rows",
                          name, o->beta2, p->d_out);
    const int qq[2] = { o->qq_scale_bits, o->qq_zero_bits };
    for (int i = 0; i < 2; i++)
        if ((qq[i] < 1 || qq[i] > QN_RTN_MAX_BITS) && qq[i] != QN_SPQR_FP16_STATS)
            return qn_err_set(err, QN_ERR_ARG, "%s: statistic %s bits must be 1..%d or %d (fp16), found %d", name,
                              i ? "zero" : "scale", QN_RTN_MAX_BITS, QN_SPQR_FP16_STATS, qq[i]);
    if (!(o->outlier_threshold >= 0))
        return qn_err_set(err, QN_ERR_ARG, "%s: outlier threshold must be >= 0 or inf, found %g", name,
                          o->outlier_threshold);
    if (isfinite(o->outlier_threshold) && p->d_in > 65536)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %zu input columns do not fit 16-bit outlier columns", name,
                          p->d_in);
    return QN_OK;
}

qn_status qn_spqr_layer_init(qn_spqr_layer *L, const qn_spqr_opts *o, size_t d_out, size_t d_in, qn_err *err)
{
    memset(L, 0, sizeof *L);
    L->d_out = d_out;
    L->d_in = d_in;
    L->bits = o->bits;
    L->beta1 = o->beta1 ? o->beta1 : d_in;
    L->beta2 = o->beta2 ? o->beta2 : d_out;
    L->qq_scale_bits = o->qq_scale_bits;
    L->qq_zero_bits = o->qq_zero_bits;
    L->n_col_groups = (d_in + L->beta1 - 1) / L->beta1;
    L->n_row_groups = (d_out + L->beta2 - 1) / L->beta2;
    size_t first = L->n_col_groups * d_out, second = L->n_col_groups * L->n_row_groups;
    bool ok = (L->codes = calloc(d_out * d_in, 1)) != NULL;
    if (o->qq_scale_bits == QN_SPQR_FP16_STATS) ok = ok && (L->scale_f16 = calloc(first, 2));
    else ok = ok && (L->scale_codes = calloc(first, 1)) && (L->scale_scale = calloc(second, 2)) &&
              (L->scale_zero = calloc(second, 2));
    if (o->qq_zero_bits == QN_SPQR_FP16_STATS) ok = ok && (L->zero_f16 = calloc(first, 2));
    else ok = ok && (L->zero_codes = calloc(first, 1)) && (L->zero_scale = calloc(second, 2)) &&
              (L->zero_zero = calloc(second, 2));
    if (o->act_order) ok = ok && (L->perm = malloc(d_in * sizeof *L->perm));
    if (!ok) {
        qn_spqr_layer_done(L);
        return qn_err_set(err, QN_ERR_NOMEM, "out of memory for a %zux%zu SpQR layer", d_out, d_in);
    }
    return QN_OK;
}

/* The scale outlier thresholds are relative to [spqr_engine.py outlier_scale]:
   mean over columns j of var_r(W[r, j]) / U_jj^2 (unbiased variance over rows). */
static double outlier_scale(const qn_gptq_state *st)
{
    size_t m = st->d_out, n = st->d_in;
    double *mean = calloc(n, sizeof *mean), *var = calloc(n, sizeof *var), total = 0;
    if (!mean || !var || m < 2) { free(mean); free(var); return 0.0; }
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < n; j++) mean[j] += st->W[r * n + j];
    for (size_t j = 0; j < n; j++) mean[j] /= (double)m;
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < n; j++) {
            double d = st->W[r * n + j] - mean[j];
            var[j] += d * d;
        }
    for (size_t j = 0; j < n; j++) {
        double u = st->U[j * n + j];
        total += var[j] / (double)(m - 1) / (u * u);
    }
    free(mean);
    free(var);
    return total / (double)n;
}

/* Leave-one-out loss reduction of each weight of one row's group [SpQR, Alg. 1
   "get_leave_one_out_error"; Sec. 4.2]: red_j = sum_k err_k - sum_{k != j} err'_k,
   err = ((q(x_k) - x_k) / d_k)^2 with q fitted on all n weights, err' with q fitted
   without x_j. Leaving out x_j changes the min-max fit only when x_j is the
   minimum or the maximum, so red_j = err_j for all others (O(n), not O(n^2)).
   x, d (U_jj), red: (n). */
static void loo_reduction(const float *x, const float *d, size_t n, int bits, float *red)
{
    int maxq = (1 << bits) - 1;
    size_t imin = 0, imax = 0;
    for (size_t k = 1; k < n; k++) {
        if (x[k] < x[imin]) imin = k;
        if (x[k] > x[imax]) imax = k;
    }
    float lo2 = INFINITY, hi2 = -INFINITY;   /* min over k != imin, max over k != imax */
    for (size_t k = 0; k < n; k++) {
        if (k != imin && x[k] < lo2) lo2 = x[k];
        if (k != imax && x[k] > hi2) hi2 = x[k];
    }
    float s, z, base = 0;
    qn_rtn_fit_range(x[imin], x[imax], bits, &s, &z);
    for (size_t k = 0; k < n; k++) {
        float t = (qn_rtn_dequant(qn_rtn_code(x[k], s, z, maxq), s, z) - x[k]) / d[k];
        red[k] = t * t;
        base += t * t;
    }
    if (n == 1) return;
    const size_t special[2] = { imin, imax };
    float special_red[2];
    for (int i = 0; i < 2; i++) {
        size_t j = special[i];
        float s2, z2, loo = 0;
        qn_rtn_fit_range(j == imin ? lo2 : x[imin], j == imax ? hi2 : x[imax], bits, &s2, &z2);
        for (size_t k = 0; k < n; k++) {
            if (k == j) continue;
            float t = (qn_rtn_dequant(qn_rtn_code(x[k], s2, z2, maxq), s2, z2) - x[k]) / d[k];
            loo += t * t;
        }
        special_red[i] = base - loo;
    }
    red[imin] = special_red[0];
    red[imax] = special_red[1];
}

/* Weights whose loss reduction exceeds tau are left out of the fit [SpQR, Alg. 1,
   "fit the quantizer without outliers"]: replaced by the mean of the others. x: (n). */
static void replace_likely_outliers(float *x, const float *red, size_t n, float thr)
{
    double sum = 0;
    size_t kept = 0;
    for (size_t k = 0; k < n; k++)
        if (!(red[k] > thr)) { sum += x[k]; kept++; }
    float mean = (float)(sum / (double)(kept ? kept : 1));
    for (size_t k = 0; k < n; k++)
        if (red[k] > thr) x[k] = mean;
}

#define ROUND_MAGIC 12582912.0f   /* 1.5 * 2^23: (v + M) - M rounds |v| < 2^22 to nearest even, vectorizably */

/* sum_k w_k (q(x_k) - x_k)^2 on the grid (s, z), w_k = 1 / U_kk^2: the GPTQ loss of
   rounding a group, to first order. The rounding is qn_rtn_code's, multiplied by
   1/s instead of divided by s (a last-ulp difference at most; this only ranks grids). */
static float group_loss(const float *x, const float *w, size_t n, float s, float z, int maxq)
{
    float inv = 1.0f / (s > QN_RTN_SCALE_FLOOR ? s : QN_RTN_SCALE_FLOOR), top = (float)maxq, e = 0;
    for (size_t k = 0; k < n; k++) {
        float v = x[k] * inv + z;
        v = v < 0.0f ? 0.0f : v > top ? top : v;
        float t = s * (((v + ROUND_MAGIC) - ROUND_MAGIC) - z) - x[k];
        e += w[k] * t * t;
    }
    return e;
}

#define CLIP_STEPS 10
#define CLIP_MAX   0.3f   /* at most this fraction of the range is cut */

/* First-level fit with clipping [quench; the research code fits min-max]: the
   min-max range, and ranges cut at the low end, the high end or both by up to
   30% of it, keeping the one of least group_loss. */
static void fit_clipped(const float *x, const float *w, size_t n, int bits, float *scale, float *zero)
{
    float lo, hi;
    qn_rtn_minmax(x, n, &lo, &hi);
    int maxq = (1 << bits) - 1;
    qn_rtn_fit_range(lo, hi, bits, scale, zero);
    float best = group_loss(x, w, n, *scale, *zero, maxq), range = hi - lo;
    for (int i = 1; i <= CLIP_STEPS && range > 0; i++) {
        float t = CLIP_MAX * range * (float)i / CLIP_STEPS;
        const float cut[3][2] = { { t, 0 }, { 0, t }, { t / 2, t / 2 } };
        for (int c = 0; c < 3; c++) {
            float s, z;
            qn_rtn_fit_range(lo + cut[c][0], hi - cut[c][1], bits, &s, &z);
            float e = group_loss(x, w, n, s, z, maxq);
            if (e < best) { best = e; *scale = s; *zero = z; }
        }
    }
}

typedef struct {
    qn_spqr_layer *L;
    bool           refine;               /* fit_clipped and choose_stat_codes (qn_spqr_opts.refine_stats) */
    float          thr;                  /* absolute outlier threshold; INFINITY for none */
    float         *raw_scale, *raw_zero; /* (d_out) first-level fit before bilevel quantization */
    float         *scale, *zero;         /* (d_out) what rounding uses: exactly the stored values */
    float         *scratch;              /* (d_out, 2 beta1) a row's group, then its reductions or loss weights */
    uint8_t       *is_outlier;           /* (d_out, d_in) */
} spqr_ctx;

/* Second level [SpQR, Sec. 4.1]: the beta2 first-level statistics raw[r0:r1) of one
   column group get their own min-max grid of qq_bits (fp16 scale s2 and zero z2),
   its range narrowed about its centre by the factor shrink (1 = the research code);
   deq receives what they dequantize to. With qq_bits = 16 they are stored as fp16. */
static void quantize_stats(const float *raw, size_t r0, size_t r1, int qq_bits, float shrink, uint8_t *codes,
                           uint16_t *s2, uint16_t *z2, uint16_t *f16, float *deq)
{
    if (qq_bits == QN_SPQR_FP16_STATS) {
        for (size_t r = r0; r < r1; r++) {
            f16[r] = qn_f32_to_f16(raw[r]);
            deq[r] = qn_f16_to_f32(f16[r]);
        }
        return;
    }
    float s, z, lo, hi;
    qn_rtn_minmax(raw + r0, r1 - r0, &lo, &hi);
    float mid = 0.5f * (lo + hi);
    if (shrink == 1.0f) qn_rtn_fit_range(lo, hi, qq_bits, &s, &z);   /* bit for bit the research code's */
    else qn_rtn_fit_range(mid - shrink * (mid - lo), mid + shrink * (hi - mid), qq_bits, &s, &z);
    *s2 = qn_f32_to_f16(s);
    *z2 = qn_f32_to_f16(z);
    s = qn_f16_to_f32(*s2);
    z = qn_f16_to_f32(*z2);
    for (size_t r = r0; r < r1; r++) {
        codes[r] = qn_rtn_code(raw[r], s, z, (1 << qq_bits) - 1);
        deq[r] = qn_rtn_dequant(codes[r], s, z);
    }
}

/* Both statistics of the rows [r0, r1) through the second level, with range factors shrink[scale, zero]. */
static void second_level(spqr_ctx *ctx, size_t r0, size_t r1, size_t off1, size_t off2, const float shrink[2])
{
    qn_spqr_layer *L = ctx->L;
    quantize_stats(ctx->raw_scale, r0, r1, L->qq_scale_bits, shrink[0], L->scale_codes ? L->scale_codes + off1 : NULL,
                   L->scale_scale ? L->scale_scale + off2 : NULL, L->scale_zero ? L->scale_zero + off2 : NULL,
                   L->scale_f16 ? L->scale_f16 + off1 : NULL, ctx->scale);
    quantize_stats(ctx->raw_zero, r0, r1, L->qq_zero_bits, shrink[1], L->zero_codes ? L->zero_codes + off1 : NULL,
                   L->zero_scale ? L->zero_scale + off2 : NULL, L->zero_zero ? L->zero_zero + off2 : NULL,
                   L->zero_f16 ? L->zero_f16 + off1 : NULL, ctx->zero);
}

/* The second-level ranges [quench; the research code takes min-max]: each
   statistic's range narrowed about its centre by one of a few factors, the pair
   whose nearest codes give the rows the least total group_loss (an extreme row
   then clamps so that the others get a finer grid). */
static void choose_second_level(spqr_ctx *ctx, size_t r0, size_t r1, size_t width, size_t off1, size_t off2,
                                float shrink[2])
{
    static const float factors[] = { 1.0f, 0.85f, 0.7f, 0.55f };
    const size_t nf = sizeof factors / sizeof factors[0];
    qn_spqr_layer *L = ctx->L;
    if (!L->scale_codes && !L->zero_codes) return;   /* fp16 statistics: nothing to choose */
    int maxq = (1 << L->bits) - 1;
    float best = INFINITY;
    for (size_t a = 0; a < (L->scale_codes ? nf : 1); a++)
        for (size_t b = 0; b < (L->zero_codes ? nf : 1); b++) {
            float f[2] = { factors[a], factors[b] }, total = 0;
            second_level(ctx, r0, r1, off1, off2, f);
            for (size_t r = r0; r < r1; r++) {
                const float *x = ctx->scratch + r * 2 * L->beta1;
                total += group_loss(x, x + L->beta1, width, ctx->scale[r], ctx->zero[r], maxq);
            }
            if (total < best) {
                best = total;
                shrink[0] = f[0];
                shrink[1] = f[1];
            }
        }
}

#define STAT_CODE_REACH 2   /* codes tried around the nearest ones: all 64 pairs gain ~1% more error at 2.5x the time */

/* Each row's scale and zero codes chosen together, among the pairs on the
   tile's second-level grids within STAT_CODE_REACH of the nearest codes, for the
   least group_loss of its (outlier-free) group [quench; the research code rounds
   each statistic to its nearest code, which ignores how the two errors combine]. */
static void choose_stat_codes(spqr_ctx *ctx, size_t r0, size_t r1, size_t width, size_t off1, size_t off2)
{
    qn_spqr_layer *L = ctx->L;
    float ss = qn_f16_to_f32(L->scale_scale[off2]), sz = qn_f16_to_f32(L->scale_zero[off2]);
    float zs = qn_f16_to_f32(L->zero_scale[off2]), zz = qn_f16_to_f32(L->zero_zero[off2]);
    int maxq = (1 << L->bits) - 1, n_sc = 1 << L->qq_scale_bits, n_zc = 1 << L->qq_zero_bits;
    for (size_t r = r0; r < r1; r++) {
        const float *x = ctx->scratch + r * 2 * L->beta1, *w = x + L->beta1;   /* as spqr_fit left them */
        float best = group_loss(x, w, width, ctx->scale[r], ctx->zero[r], maxq);
        int s0 = L->scale_codes[off1 + r], z0 = L->zero_codes[off1 + r];
        int sc_lo = s0 > STAT_CODE_REACH ? s0 - STAT_CODE_REACH : 0;
        int sc_hi = s0 + STAT_CODE_REACH < n_sc ? s0 + STAT_CODE_REACH : n_sc - 1;
        int zc_lo = z0 > STAT_CODE_REACH ? z0 - STAT_CODE_REACH : 0;
        int zc_hi = z0 + STAT_CODE_REACH < n_zc ? z0 + STAT_CODE_REACH : n_zc - 1;
        for (int sc = sc_lo; sc <= sc_hi; sc++) {
            float s = qn_rtn_dequant((uint8_t)sc, ss, sz);
            if (!(s > QN_RTN_SCALE_FLOOR)) continue;
            for (int zc = zc_lo; zc <= zc_hi; zc++) {
                float z = qn_rtn_dequant((uint8_t)zc, zs, zz), e = group_loss(x, w, width, s, z, maxq);
                if (e < best) {
                    best = e;
                    L->scale_codes[off1 + r] = (uint8_t)sc;
                    L->zero_codes[off1 + r] = (uint8_t)zc;
                    ctx->scale[r] = s;
                    ctx->zero[r] = z;
                }
            }
        }
    }
}

/* Statistics of the group of columns [c0, c0 + width) for the beta2 rows [r0, r1)
   of one row group [SpQR, Alg. 1, lines 6-8]: per row, detect likely outliers
   (leave-one-out) and fit min-max without them; then quantize the rows' scales
   and zeros together (second level). */
static void spqr_fit(void *vctx, const float *W, size_t ld, size_t r0, size_t r1, size_t c0, size_t width,
                     const float *u_diag)
{
    spqr_ctx *ctx = vctx;
    qn_spqr_layer *L = ctx->L;
    for (size_t r = r0; r < r1; r++) {
        float *x = ctx->scratch + r * 2 * L->beta1, *red = x + L->beta1;
        memcpy(x, W + r * ld + c0, width * sizeof *x);
        if (isfinite(ctx->thr)) {
            loo_reduction(x, u_diag, width, L->bits, red);
            replace_likely_outliers(x, red, width, ctx->thr);
        }
        if (!ctx->refine) {
            qn_rtn_fit(x, width, L->bits, &ctx->raw_scale[r], &ctx->raw_zero[r]);
            continue;
        }
        float *w = red;   /* the reductions are spent: the slot now holds the loss weights */
        for (size_t k = 0; k < width; k++) w[k] = 1.0f / (u_diag[k] * u_diag[k]);
        fit_clipped(x, w, width, L->bits, &ctx->raw_scale[r], &ctx->raw_zero[r]);
    }
    size_t g = c0 / L->beta1, h = r0 / L->beta2;
    size_t off1 = g * L->d_out, off2 = g * L->n_row_groups + h;
    float shrink[2] = { 1.0f, 1.0f };
    if (ctx->refine) choose_second_level(ctx, r0, r1, width, off1, off2, shrink);
    second_level(ctx, r0, r1, off1, off2, shrink);
    if (ctx->refine && L->scale_codes && L->zero_codes) choose_stat_codes(ctx, r0, r1, width, off1, off2);
}

/* One weight [SpQR, Alg. 1, lines 10-14]: round it on the group's grid; if its
   GPTQ error ((w - q) / U_jj)^2 exceeds tau it becomes an fp16 outlier instead
   (its code is that of 0, as the research code stores it). */
static float spqr_round(void *vctx, size_t r, size_t c, float w, float u_jj)
{
    spqr_ctx *ctx = vctx;
    qn_spqr_layer *L = ctx->L;
    float s = ctx->scale[r], z = ctx->zero[r];
    int maxq = (1 << L->bits) - 1;
    uint8_t code = qn_rtn_code(w, s, z, maxq);
    float q = qn_rtn_dequant(code, s, z);
    float e = (w - q) / u_jj;
    if (e * e > ctx->thr) {
        ctx->is_outlier[r * L->d_in + c] = 1;
        code = qn_rtn_code(0.0f, s, z, maxq);
        q = qn_f16_to_f32(qn_f32_to_f16(w));
    }
    L->codes[r * L->d_in + c] = code;
    return q;
}

/* The outliers as CSR over rows [SpQR, Sec. 4.2 "sparse outliers"], values read
   from the swept weights (already fp16-exact there). */
static qn_status build_csr(qn_spqr_layer *L, const uint8_t *is_outlier, const float *W_swept, qn_err *err)
{
    size_t n = L->d_in, total = 0;
    L->row_ptr = malloc((L->d_out + 1) * sizeof *L->row_ptr);
    if (!L->row_ptr) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    L->row_ptr[0] = 0;
    for (size_t r = 0; r < L->d_out; r++) {
        for (size_t j = 0; j < n; j++) total += is_outlier[r * n + j];
        if (total > UINT32_MAX) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%zu outliers overflow 32-bit rows", total);
        L->row_ptr[r + 1] = (uint32_t)total;
    }
    L->n_outliers = total;
    L->col_idx = malloc((total ? total : 1) * sizeof *L->col_idx);
    L->values = malloc((total ? total : 1) * sizeof *L->values);
    if (!L->col_idx || !L->values) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t r = 0; r < L->d_out; r++)
        for (size_t j = 0; j < n; j++)
            if (is_outlier[r * n + j]) {
                L->col_idx[k] = (uint16_t)j;
                L->values[k++] = qn_f32_to_f16(W_swept[r * n + j]);
            }
    return QN_OK;
}

qn_status qn_spqr_quantize_layer(const qn_layer_problem *p, const qn_spqr_opts *opts, qn_event_sink sink,
                                 const atomic_bool *cancel, qn_layer_result *res, qn_spqr_layer *out,
                                 qn_err *err)
{
    qn_status s;
    qn_gptq_state st = {0};
    qn_spqr_layer L = {0};
    spqr_ctx ctx = {0};
    memset(res, 0, sizeof *res);
    double t0 = omp_get_wtime();
    if ((s = check_opts(p, opts, err)) != QN_OK) return s;
    if ((s = qn_gptq_state_init(&st, p, opts->act_order, opts->percdamp, sink, err)) != QN_OK) return s;
    if ((s = qn_spqr_layer_init(&L, opts, p->d_out, p->d_in, err)) != QN_OK) {
        qn_err_prefix(err, "%s: ", p->name);
        goto fail;
    }
    bool outliers = isfinite(opts->outlier_threshold);
    ctx.L = &L;
    ctx.refine = opts->refine_stats;
    ctx.thr = outliers ? (float)(opts->outlier_threshold * outlier_scale(&st)) : INFINITY;
    ctx.raw_scale = malloc(p->d_out * sizeof(float));
    ctx.raw_zero = malloc(p->d_out * sizeof(float));
    ctx.scale = malloc(p->d_out * sizeof(float));
    ctx.zero = malloc(p->d_out * sizeof(float));
    ctx.scratch = malloc(p->d_out * 2 * L.beta1 * sizeof(float));
    ctx.is_outlier = calloc(p->d_out * p->d_in, 1);
    res->W_hat = malloc(p->d_out * p->d_in * sizeof *res->W_hat);
    if (!ctx.raw_scale || !ctx.raw_zero || !ctx.scale || !ctx.zero || !ctx.scratch || !ctx.is_outlier ||
        !res->W_hat) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name);
        goto fail;
    }
    qn_gptq_quantizer q = { .groupsize = L.beta1, .panel_rows = L.beta2, .fit = spqr_fit, .round = spqr_round,
                            .ctx = &ctx };
    if ((s = qn_gptq_sweep(&st, opts->blocksize, &q, "spqr", sink, cancel, err)) != QN_OK ||
        (outliers && (s = build_csr(&L, ctx.is_outlier, st.W, err)) != QN_OK)) {
        qn_err_prefix(err, "%s: ", p->name);
        goto fail;
    }
    qn_gptq_state_unpermute(&st, res->W_hat);
    if (L.perm) memcpy(L.perm, st.perm, p->d_in * sizeof *L.perm);
    res->seconds = omp_get_wtime() - t0;
    res->n_outliers = L.n_outliers;
    res->outlier_fraction = (double)L.n_outliers / ((double)p->d_out * (double)p->d_in);
    res->bits = qn_spqr_bits(&L);
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    if (res->relative_error < 0) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name); goto fail; }
    if (out) *out = L;
    else qn_spqr_layer_done(&L);
    L = (qn_spqr_layer){0};   /* handed over; success goes through the cleanup below with s == QN_OK */
fail:
    free(ctx.raw_scale);
    free(ctx.raw_zero);
    free(ctx.scale);
    free(ctx.zero);
    free(ctx.scratch);
    free(ctx.is_outlier);
    qn_gptq_state_done(&st);
    qn_spqr_layer_done(&L);
    if (s != QN_OK) qn_layer_result_done(res);
    return s;
}
