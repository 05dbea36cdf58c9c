/* int_cpu.c: integer-weight kernels (see int_cpu.h): validation, the
   reference, and matvec/matmul through the low-bit core of lowbit_cpu.c with
   each block's fp16 scales and zeros converted to f32 first. */
#include "kernels/int_cpu.h"

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
   sgemm costs a fixed ~17 ms per 4096x4096 on one core (decode, packing)
   plus 0.38 ms a token, against 1.3 ms a token for int4 matvec (crossover
   measured at 18). */
#define INT_MIN_SGEMM_BATCH 16

static size_t n_groups(size_t n, size_t group) { return (n + group - 1) / group; }

#ifdef QN_HAVE_AVX2_PATH
QN_AVX2 static void halves_to_floats_avx2(const uint16_t *h, float *f, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(h + i))));
    for (; i < n; i++) f[i] = qn_half_to_float(h[i]);
}
#endif

static void halves_to_floats(const uint16_t *h, float *f, size_t n, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2) { halves_to_floats_avx2(h, f, n); return; }
#else
    (void)simd;
#endif
    for (size_t i = 0; i < n; i++) f[i] = qn_half_to_float(h[i]);
}

/* ---- integer weights ---- */

static size_t int_groups(const qn_int_weights *w) { return n_groups(w->d_in, w->group_size); }

/* Rows r0 .. r0+nr-1 as a low-bit block, their fp16 stats converted into s, z (nr, ng). */
static qn_lowbit_rows int_block(const qn_int_weights *w, size_t r0, size_t nr, float *s, float *z, qn_simd simd)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    halves_to_floats(w->scales + r0 * ng, s, nr * ng, simd);
    halves_to_floats(w->zeros + r0 * ng, z, nr * ng, simd);
    return (qn_lowbit_rows){ .bits = w->bits, .n = w->d_in, .group = w->group_size, .nr = nr,
                             .codes = w->codes + r0 * row_bytes, .codes_end = w->codes + w->d_out * row_bytes,
                             .s = s, .z = z, .stat_stride = ng };
}

static bool mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

static qn_status check_halves(const char *name, const char *what, const uint16_t *h, size_t n, size_t ng,
                              qn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!qn_half_is_finite(h[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: %s[%zu][%zu] is not finite (fp16 0x%04x)", name, what,
                              i / ng, i % ng, h[i]);
    return QN_OK;
}

qn_status qn_int_validate(const qn_int_weights *w, const char *name, qn_err *err)
{
    qn_status s;
    if (!w) return qn_err_set(err, QN_ERR_FORMAT, "%s: no integer layout", name);
    if (w->bits != 2 && w->bits != 3 && w->bits != 4 && w->bits != 8)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %d-bit integers: expected 2, 3, 4 or 8", name, w->bits);
    if (w->d_out == 0 || w->d_in == 0 || w->group_size == 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: empty shape %zu x %zu, group %zu", name, w->d_out, w->d_in,
                          w->group_size);
    size_t ng = int_groups(w), codes_bytes, stats;
    if (!mul_ok(w->d_out, qn_bits_row_bytes(w->d_in, w->bits), &codes_bytes) || !mul_ok(w->d_out, ng, &stats) ||
        !mul_ok(stats, 2, &stats))
        return qn_err_set(err, QN_ERR_SHAPE, "%s: shape %zu x %zu overflows", name, w->d_out, w->d_in);
    if ((s = qn_check_bytes(name, "codes", w->codes, w->codes_nbytes, codes_bytes, err))) return s;
    if ((s = qn_check_bytes(name, "scales", w->scales, w->scales_nbytes, stats, err))) return s;
    if ((s = qn_check_bytes(name, "zeros", w->zeros, w->zeros_nbytes, stats, err))) return s;
    if ((s = check_halves(name, "scales", w->scales, stats / 2, ng, err))) return s;
    return check_halves(name, "zeros", w->zeros, stats / 2, ng, err);
}

double qn_int_bits_per_weight(const qn_int_weights *w)
{
    double weights = (double)w->d_out * (double)w->d_in;
    return ((double)w->d_out * 8.0 * (double)qn_bits_row_bytes(w->d_in, w->bits) +
            32.0 * (double)w->d_out * (double)int_groups(w)) / weights;
}

void qn_int_to_dense_ref(const qn_int_weights *w, float *W)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++)
        for (size_t c = 0; c < w->d_in; c++) {
            size_t g = c / w->group_size;
            float s = qn_half_to_float(w->scales[r * ng + g]), z = qn_half_to_float(w->zeros[r * ng + g]);
            W[r * w->d_in + c] = s * ((float)qn_bits_get(w->codes + r * row_bytes, c, w->bits) - z);
        }
}

void qn_int_matvec_ref(const qn_int_weights *w, const float *x, float *y)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++) {
        float sum = 0;
        for (size_t c = 0; c < w->d_in; c++) {
            size_t g = c / w->group_size;
            float s = qn_half_to_float(w->scales[r * ng + g]), z = qn_half_to_float(w->zeros[r * ng + g]);
            sum += s * ((float)qn_bits_get(w->codes + r * row_bytes, c, w->bits) - z) * x[c];
        }
        y[r] = sum;
    }
}

qn_status qn_int_matvec(const qn_int_weights *w, const float *x, float *y, qn_simd simd, qn_err *err)
{
    simd = qn_simd_clamp(simd);
    size_t ng = int_groups(w), per_thread = 2 * QN_LOWBIT_MAX_ROWS * ng;
    size_t n_blocks = (w->d_out + QN_LOWBIT_MAX_ROWS - 1) / QN_LOWBIT_MAX_ROWS;
    int nt = qn_cpu_team(w->d_out, w->d_in);
    /* per-thread stats, then xsum (ng), then xsplit (d_in) */
    float *scratch = malloc(((size_t)nt * per_thread + ng + w->d_in) * sizeof *scratch);
    if (!scratch) return qn_err_set(err, QN_ERR_NOMEM, "int matvec: out of memory for %d x %zu stats", nt, per_thread);
    float *xsum = scratch + (size_t)nt * per_thread, *xsplit = w->bits == 4 ? xsum + ng : NULL;
    qn_lowbit_group_sums(x, w->d_in, w->group_size, xsum);
    if (xsplit) qn_lowbit_split16(x, w->d_in, xsplit);
#pragma omp parallel num_threads(nt)
    {
        float *s = scratch + (size_t)omp_get_thread_num() * per_thread, *z = s + QN_LOWBIT_MAX_ROWS * ng;
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            size_t r0 = blk * QN_LOWBIT_MAX_ROWS;
            size_t nr = w->d_out - r0 < QN_LOWBIT_MAX_ROWS ? w->d_out - r0 : QN_LOWBIT_MAX_ROWS;
            qn_lowbit_rows b = int_block(w, r0, nr, s, z, simd);
            b.xsum = xsum;
            b.xsplit = xsplit;
            qn_lowbit_dot(&b, x, y + r0, simd);
        }
    }
    free(scratch);
    return QN_OK;
}

typedef struct {
    const qn_int_weights *w;
    qn_simd simd;
} int_dequant_ctx;

/* qn_cpu_dequant_rows_fn; scratch holds the stats of QN_LOWBIT_MAX_ROWS rows. */
static void int_dequant_rows(const void *ctx, size_t r0, size_t r1, float *out, float *scratch)
{
    const int_dequant_ctx *c = ctx;
    size_t ng = int_groups(c->w);
    for (size_t r = r0; r < r1; r += QN_LOWBIT_MAX_ROWS) {
        size_t nr = r1 - r < QN_LOWBIT_MAX_ROWS ? r1 - r : QN_LOWBIT_MAX_ROWS;
        qn_lowbit_rows b = int_block(c->w, r, nr, scratch, scratch + QN_LOWBIT_MAX_ROWS * ng, c->simd);
        qn_lowbit_dequant(&b, out + (r - r0) * c->w->d_in, c->simd);
    }
}

qn_status qn_int_matmul(const qn_int_weights *w, const float *X, size_t n_tok, float *Y, qn_simd simd,
                        qn_err *err)
{
    simd = qn_simd_clamp(simd);
    if (n_tok < INT_MIN_SGEMM_BATCH) {
        for (size_t t = 0; t < n_tok; t++) {
            qn_status s = qn_int_matvec(w, X + t * w->d_in, Y + t * w->d_out, simd, err);
            if (s) return s;
        }
        return QN_OK;
    }
    int_dequant_ctx ctx = { w, simd };
    return qn_cpu_matmul_dequant(w->d_out, w->d_in, int_dequant_rows, &ctx, 2 * QN_LOWBIT_MAX_ROWS * int_groups(w), X,
                                 n_tok, Y, err);
}
