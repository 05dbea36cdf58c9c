/* rtn.c: min-max round-to-nearest per row or per group (see rtn.h). */
#include "engine/rtn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dtype.h"

qn_rtn_opts qn_rtn_opts_default(void)
{
    return (qn_rtn_opts){ .bits = 4, .groupsize = 0 };
}

qn_status qn_rtn_layer_init(qn_rtn_layer *L, size_t d_out, size_t d_in, int bits, size_t groupsize,
                            bool with_perm, qn_err *err)
{
    memset(L, 0, sizeof *L);
    L->d_out = d_out;
    L->d_in = d_in;
    L->bits = bits;
    L->groupsize = groupsize && groupsize < d_in ? groupsize : d_in;
    L->n_groups = (d_in + L->groupsize - 1) / L->groupsize;
    L->codes = calloc(d_out * d_in, 1);
    L->scale = calloc(d_out * L->n_groups, sizeof *L->scale);
    L->zero = calloc(d_out * L->n_groups, sizeof *L->zero);
    if (with_perm) L->perm = malloc(d_in * sizeof *L->perm);
    if (!L->codes || !L->scale || !L->zero || (with_perm && !L->perm)) {
        qn_rtn_layer_done(L);
        return qn_err_set(err, QN_ERR_NOMEM, "out of memory for %zux%zu codes", d_out, d_in);
    }
    return QN_OK;
}

void qn_rtn_layer_done(qn_rtn_layer *L)
{
    if (!L) return;
    free(L->codes);
    free(L->scale);
    free(L->zero);
    free(L->perm);
    memset(L, 0, sizeof *L);
}

void qn_rtn_dequantize(const qn_rtn_layer *L, float *W)
{
    for (size_t r = 0; r < L->d_out; r++)
        for (size_t j = 0; j < L->d_in; j++) {
            size_t g = j / L->groupsize, col = L->perm ? L->perm[j] : j;
            float s = qn_f16_to_f32(L->scale[r * L->n_groups + g]);
            float z = qn_f16_to_f32(L->zero[r * L->n_groups + g]);
            W[r * L->d_in + col] = qn_rtn_dequant(L->codes[r * L->d_in + j], s, z);
        }
}

double qn_rtn_bits(int bits, size_t groupsize, size_t d_in)
{
    if (!groupsize || groupsize >= d_in) return bits;
    size_t n_groups = (d_in + groupsize - 1) / groupsize;
    return bits + 32.0 * (double)n_groups / (double)d_in;
}

double qn_rtn_bits_stored(const qn_rtn_layer *L)
{
    double n = (double)L->d_out * (double)L->d_in;
    double total = n * L->bits + 32.0 * (double)(L->d_out * L->n_groups);
    if (L->perm) total += 16.0 * (double)L->d_in;
    return total / n;
}

/* Min-max range [SpQR quant_groups.py find_params]: scale = (max - min) / maxq,
   zero = -min / scale; a constant input gets [-1, 1] so the scale never vanishes. */
void qn_rtn_minmax(const float *x, size_t n, float *lo, float *hi)
{
    *lo = *hi = x[0];
    for (size_t i = 1; i < n; i++) {
        *lo = x[i] < *lo ? x[i] : *lo;
        *hi = x[i] > *hi ? x[i] : *hi;
    }
}

void qn_rtn_fit(const float *x, size_t n, int bits, float *scale, float *zero)
{
    float lo, hi;
    qn_rtn_minmax(x, n, &lo, &hi);
    qn_rtn_fit_range(lo, hi, bits, scale, zero);
}

void qn_rtn_fit_range(float lo, float hi, int bits, float *scale, float *zero)
{
    if (lo == hi) { lo = -1.0f; hi = 1.0f; }
    float maxq = (float)((1 << bits) - 1);
    *scale = (hi - lo) / maxq;
    *zero = -lo / *scale;
}

static qn_status check_opts(const qn_layer_problem *p, int bits, size_t groupsize, qn_err *err)
{
    if (bits < 1 || bits > QN_RTN_MAX_BITS)
        return qn_err_set(err, QN_ERR_ARG, "%s: weight bits must be 1..%d, found %d", p->name, QN_RTN_MAX_BITS, bits);
    if (groupsize > p->d_in)
        return qn_err_set(err, QN_ERR_ARG, "%s: group size %zu is larger than the %zu input columns", p->name,
                          groupsize, p->d_in);
    return QN_OK;
}

/* One row's group: fit, store fp16 statistics, round every weight with them. */
static void quantize_group(const float *w, size_t n, int bits, uint16_t *scale16, uint16_t *zero16,
                           uint8_t *codes, float *w_hat)
{
    float s, z;
    qn_rtn_fit(w, n, bits, &s, &z);
    *scale16 = qn_f32_to_f16(s);
    *zero16 = qn_f32_to_f16(z);
    s = qn_f16_to_f32(*scale16);
    z = qn_f16_to_f32(*zero16);
    int maxq = (1 << bits) - 1;
    for (size_t i = 0; i < n; i++) {
        codes[i] = qn_rtn_code(w[i], s, z, maxq);
        w_hat[i] = qn_rtn_dequant(codes[i], s, z);
    }
}

qn_status qn_rtn_quantize_layer(const qn_layer_problem *p, const qn_rtn_opts *opts, qn_layer_result *res,
                                qn_rtn_layer *out, qn_err *err)
{
    qn_status s;
    qn_rtn_layer L = {0};
    memset(res, 0, sizeof *res);
    double t0 = omp_get_wtime();
    if ((s = check_opts(p, opts->bits, opts->groupsize, err)) != QN_OK) return s;
    if ((s = qn_rtn_layer_init(&L, p->d_out, p->d_in, opts->bits, opts->groupsize, false, err)) != QN_OK)
        return qn_err_prefix(err, "%s: ", p->name);
    res->W_hat = malloc(p->d_out * p->d_in * sizeof *res->W_hat);
    if (!res->W_hat) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name); goto fail; }
    #pragma omp parallel for schedule(static) if (p->d_out * p->d_in >= QN_QUANT_PARALLEL_MIN_WORK)
    for (size_t r = 0; r < p->d_out; r++)
        for (size_t g = 0; g < L.n_groups; g++) {
            size_t c0 = g * L.groupsize, n = p->d_in - c0 < L.groupsize ? p->d_in - c0 : L.groupsize;
            size_t at = r * p->d_in + c0;
            quantize_group(p->W + at, n, opts->bits, &L.scale[r * L.n_groups + g], &L.zero[r * L.n_groups + g],
                           L.codes + at, res->W_hat + at);
        }
    res->seconds = omp_get_wtime() - t0;
    res->bits = qn_rtn_bits(opts->bits, opts->groupsize, p->d_in);
    res->relative_error = qn_relative_error(p->W, res->W_hat, p->H, p->d_out, p->d_in);
    if (res->relative_error < 0) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->name); goto fail; }
    if (out) *out = L;
    else qn_rtn_layer_done(&L);
    return QN_OK;
fail:
    qn_rtn_layer_done(&L);
    qn_layer_result_done(res);
    return s;
}
