/* kernel_bench.c: compressed kernel against BLAS on one matrix (see kernel_bench.h). */
#include "kernels/kernel_bench.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/cuda/pack.h"
#include "kernels/cuda/runtime.h"
#include "kernels/linear.h"
#include "kernels/timing.h"

/* Read before each timed call: twice a 32 MiB L3 (EPYC Zen 4 CCD). */
#define FLUSH_BYTES ((size_t)64 << 20)
/* Integer formats: GPTQ's common group of 128 columns. */
#define INT_GROUP 128
/* SpQR: the paper's 16 x 16 groups, 3-bit statistics, about 1% outliers. */
#define SPQR_BETA 16
#define SPQR_OUTLIERS 0.01
/* Tokens of a batch whose results are checked against BLAS (a full check
   of a long batch costs more than the benchmark). */
#define CHECK_TOKENS 4

typedef struct {
    const char   *name;
    qn_synth_opts o;   /* without shape and seed */
} preset;

static const preset k_presets[] = {
    { "aqlm-1x16", { .fmt = QN_FMT_AQLM, .n_codebooks = 1, .nbits = 16, .in_group_size = 8 } },
    { "aqlm-2x8", { .fmt = QN_FMT_AQLM, .n_codebooks = 2, .nbits = 8, .in_group_size = 8 } },
    { "aqlm-1x8", { .fmt = QN_FMT_AQLM, .n_codebooks = 1, .nbits = 8, .in_group_size = 8 } },
    { "aqlm-4x8", { .fmt = QN_FMT_AQLM, .n_codebooks = 4, .nbits = 8, .in_group_size = 8 } },
    { "aqlm-2x12", { .fmt = QN_FMT_AQLM, .n_codebooks = 2, .nbits = 12, .in_group_size = 8 } },
    { "spqr-w3", { .fmt = QN_FMT_SPQR, .bits = 3, .stat_bits = 3, .beta1 = SPQR_BETA, .beta2 = SPQR_BETA,
                   .outlier_frac = SPQR_OUTLIERS, .permute = true } },
    { "spqr-w4", { .fmt = QN_FMT_SPQR, .bits = 4, .stat_bits = 3, .beta1 = SPQR_BETA, .beta2 = SPQR_BETA,
                   .outlier_frac = SPQR_OUTLIERS, .permute = true } },
    { "int2", { .fmt = QN_FMT_INT, .bits = 2, .group_size = INT_GROUP } },
    { "int3", { .fmt = QN_FMT_INT, .bits = 3, .group_size = INT_GROUP } },
    { "int4", { .fmt = QN_FMT_INT, .bits = 4, .group_size = INT_GROUP } },
    { "int8", { .fmt = QN_FMT_INT, .bits = 8, .group_size = INT_GROUP } },
};

const char *qn_kbench_format_name(size_t i)
{
    return i < sizeof k_presets / sizeof k_presets[0] ? k_presets[i].name : NULL;
}

qn_status qn_kbench_synth_opts(const char *format, size_t rows, size_t cols, uint64_t seed, qn_synth_opts *out,
                               qn_err *err)
{
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (strcmp(format, k_presets[i].name) == 0) {
            *out = k_presets[i].o;
            out->d_out = rows;
            out->d_in = cols;
            out->seed = seed;
            return QN_OK;
        }
    return qn_err_set(err, QN_ERR_ARG, "unknown format '%s'", format);
}

/* Reads the flush buffer; the sum goes into *sink so the reads stay. */
static void flush_caches(const uint64_t *buf, size_t n, volatile uint64_t *sink)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i += 8) s += buf[i];   /* one word per cache line */
    *sink += s;
}

static void blas_product(const float *W, size_t rows, size_t cols, const float *X, size_t batch, float *Y)
{
    if (batch == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, W, (int)cols, X, 1, 0.0f, Y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)rows, (int)cols, 1.0f, X, (int)cols, W,
                    (int)cols, 0.0f, Y, (int)rows);
}

/* max_r |a_r - b_r| / sum_j |W_rj x_j| over the first tokens of the batch. */
static double rel_err(const float *W, size_t rows, size_t cols, const float *X, size_t batch, const float *a,
                      const float *b)
{
    double worst = 0;
    for (size_t t = 0; t < batch && t < CHECK_TOKENS; t++)
        for (size_t r = 0; r < rows; r++) {
            double mag = 0;
            for (size_t j = 0; j < cols; j++) mag += fabs((double)W[r * cols + j] * X[t * cols + j]);
            double e = fabs((double)a[t * rows + r] - b[t * rows + r]) / fmax(mag, 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}

/* The GPU side: both products read the input rounded to fp16 (X is rounded
   in place, so the error check sees the same input); cuBLAS reads W as fp16. */
static qn_status run_cuda(const qn_kbench_opts *o, const qn_linear *lin, const float *W, float *X, size_t batch,
                          float *Y_ours, float *Y_blas, qn_kbench_result *out, qn_err *err)
{
    size_t nw = o->rows * o->cols, nx = batch * o->cols, reps = o->reps ? o->reps : 1;
    uint16_t *W16 = malloc(nw * sizeof *W16), *X16 = malloc(nx * sizeof *X16);
    qn_cu_matrix host = { 0 };
    qn_status s = QN_OK;
    if (!W16 || !X16) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for a %zu x %zu benchmark", o->format, o->rows, o->cols);
        goto done;
    }
    for (size_t i = 0; i < nw; i++) W16[i] = qn_synth_half(W[i]);
    for (size_t i = 0; i < nx; i++) {
        X16[i] = qn_synth_half(X[i]);
        X[i] = qn_half_to_float(X16[i]);
    }
    qn_cu_kbench_times t;
    if ((s = qn_cu_pack(lin, &host, err)) ||
        (s = qn_cu_kbench(&host, W16, X16, batch, reps, o->warm, Y_ours, Y_blas, &t, err)))
        goto done;
    out->ours_s = t.ours_s;
    out->blas_s = t.blas_s;
    out->ours_min_s = t.ours_min_s;
    out->blas_min_s = t.blas_min_s;
    out->blas_gbps = 2.0 * (double)nw / t.blas_s / 1e9;
    out->simd = "cuda";
    snprintf(out->device, sizeof out->device, "%s", t.device);
done:
    qn_cu_pack_free(&host);
    free(W16);
    free(X16);
    return s;
}

qn_status qn_kbench_run(const qn_kbench_opts *o, qn_kbench_result *out, qn_err *err)
{
    qn_status s;
    qn_synth *syn = NULL;
    qn_linear lin = { 0 };
    float *W = NULL, *X = NULL, *Y_ours = NULL, *Y_blas = NULL;
    uint64_t *flush = NULL;
    double *t_ours = NULL, *t_blas = NULL;
    volatile uint64_t sink = 0;
    qn_synth_opts so;
    memset(out, 0, sizeof *out);
    size_t reps = o->reps ? o->reps : 1, batch = o->batch ? o->batch : 1;
    if ((s = qn_kbench_synth_opts(o->format, o->rows, o->cols, o->seed, &so, err))) return s;
    qn_kernels_set_threads(o->threads);
    if ((s = qn_synth_create(&syn, &so, err))) goto fail;
    if ((s = qn_linear_init(&lin, so.fmt, o->rows, o->cols, qn_synth_packed(syn), o->format, err))) goto fail;
    W = malloc(o->rows * o->cols * sizeof *W);
    X = malloc(batch * o->cols * sizeof *X);
    Y_ours = malloc(batch * o->rows * sizeof *Y_ours);
    Y_blas = malloc(batch * o->rows * sizeof *Y_blas);
    bool cuda = o->device == QN_DEVICE_CUDA, flushing = !o->warm && !cuda;
    flush = flushing ? malloc(FLUSH_BYTES) : NULL;
    t_ours = malloc(reps * sizeof *t_ours);
    t_blas = malloc(reps * sizeof *t_blas);
    if (!W || !X || !Y_ours || !Y_blas || (flushing && !flush) || !t_ours || !t_blas) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for a %zu x %zu benchmark", o->format, o->rows, o->cols);
        goto fail;
    }
    qn_format_info(so.fmt)->to_dense(&lin, W);
    uint64_t st = o->seed + 1;
    for (size_t i = 0; i < batch * o->cols; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        X[i] = (float)((double)(st >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
    if (cuda) {
        if ((s = run_cuda(o, &lin, W, X, batch, Y_ours, Y_blas, out, err))) goto fail;
        goto measured;
    }
    if (flush) memset(flush, 1, FLUSH_BYTES);
    /* warm-up: page in, build plans, start the thread pool */
    if ((s = qn_linear_matmul(&lin, X, batch, Y_ours, err))) goto fail;
    blas_product(W, o->rows, o->cols, X, batch, Y_blas);
    for (size_t r = 0; r < reps; r++) {   /* interleaved, so drift hits both sides alike */
        if (flush) flush_caches(flush, FLUSH_BYTES / 8, &sink);
        double t0 = qn_now();
        if ((s = qn_linear_matmul(&lin, X, batch, Y_ours, err))) goto fail;
        t_ours[r] = qn_now() - t0;
        if (flush) flush_caches(flush, FLUSH_BYTES / 8, &sink);
        t0 = qn_now();
        blas_product(W, o->rows, o->cols, X, batch, Y_blas);
        t_blas[r] = qn_now() - t0;
    }
    out->ours_s = qn_median(t_ours, reps);   /* sorts: [0] is the fastest */
    out->blas_s = qn_median(t_blas, reps);
    out->ours_min_s = t_ours[0];
    out->blas_min_s = t_blas[0];
    out->blas_gbps = 4.0 * (double)o->rows * (double)o->cols / out->blas_s / 1e9;
    out->simd = qn_simd_name(qn_cpu_simd());
    out->threads = qn_kernels_threads();
measured:
    out->speedup = out->blas_s / out->ours_s;
    out->bits_per_weight = qn_format_info(so.fmt)->bits_per_weight(&lin);
    out->weight_bytes = out->bits_per_weight * (double)o->rows * (double)o->cols / 8.0;
    out->gbps = out->weight_bytes / out->ours_s / 1e9;
    out->max_rel_err = rel_err(W, o->rows, o->cols, X, batch, Y_ours, Y_blas);
    s = QN_OK;
fail:
    free(t_blas);
    free(t_ours);
    free(flush);
    free(Y_blas);
    free(Y_ours);
    free(X);
    free(W);
    qn_linear_done(&lin);
    qn_synth_free(syn);
    return s;
}
