/* backend_cpu.c: the CPU backend, the reference that supports every format.
   Dense f32 goes to OpenBLAS: sgemv for one token, sgemm for a batch. Each
   compressed format has a row in k_cpu_kernels (its plan and its kernels,
   from int_cpu, aqlm_cpu and spqr_cpu); the plan also records the SIMD path
   the CPU allows, detected once at qn_linear_init. This file also holds the
   batch path those formats share: dequantize a block of rows, then sgemm. */
#include "kernels/backend.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/aqlm_cpu.h"
#include "kernels/cpu_features.h"
#include "kernels/int_cpu.h"
#include "kernels/spqr_cpu.h"

/* Rows of a dequantized block: about this many bytes. Each block is one
   sgemm call that packs X again, so fewer, larger blocks win (measured at
   64 tokens, 4096 columns: 512 KiB 0.76x, 2 MiB 0.80x, 8 MiB 0.81x of one
   sgemm over the whole f32 matrix) until the blocks no longer cover the
   threads. */
#define DEQUANT_BLOCK_BYTES ((size_t)2048 << 10)

typedef struct {
    qn_simd simd;
    void   *fmt_plan;   /* the format's own plan, NULL when it needs none */
} cpu_plan;

typedef struct {
    qn_status (*plan_create)(const qn_linear *w, qn_simd simd, void **out, qn_err *err);   /* optional */
    void      (*plan_free)(void *p);
    qn_status (*matvec)(const qn_linear *w, const cpu_plan *p, const float *x, float *y, qn_err *err);
    qn_status (*matmul)(const qn_linear *w, const cpu_plan *p, const float *X, size_t n_tok, float *Y, qn_err *err);
} cpu_kernels;

static qn_status f32_matvec(const qn_linear *w, const cpu_plan *p, const float *x, float *y, qn_err *err)
{
    (void)p;
    (void)err;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)w->d_out, (int)w->d_in, 1.0f, w->w, (int)w->d_in, x, 1, 0.0f, y, 1);
    return QN_OK;
}

static qn_status f32_matmul(const qn_linear *w, const cpu_plan *p, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    if (n_tok == 1) return f32_matvec(w, p, X, Y, err);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_tok, (int)w->d_out, (int)w->d_in, 1.0f, X,
                (int)w->d_in, w->w, (int)w->d_in, 0.0f, Y, (int)w->d_out);
    return QN_OK;
}

static qn_status int_matvec(const qn_linear *w, const cpu_plan *p, const float *x, float *y, qn_err *err)
{
    return qn_int_matvec(w->packed, x, y, p->simd, err);
}

static qn_status int_matmul(const qn_linear *w, const cpu_plan *p, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    return qn_int_matmul(w->packed, X, n_tok, Y, p->simd, err);
}

static qn_status aqlm_plan(const qn_linear *w, qn_simd simd, void **out, qn_err *err)
{
    return qn_aqlm_plan_create((qn_aqlm_plan **)out, w->packed, simd, err);
}

static void aqlm_plan_free(void *p) { qn_aqlm_plan_free(p); }

static qn_status aqlm_matvec(const qn_linear *w, const cpu_plan *p, const float *x, float *y, qn_err *err)
{
    return qn_aqlm_matvec(w->packed, p->fmt_plan, x, y, p->simd, err);
}

static qn_status aqlm_matmul(const qn_linear *w, const cpu_plan *p, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    return qn_aqlm_matmul(w->packed, p->fmt_plan, X, n_tok, Y, p->simd, err);
}

static qn_status spqr_matvec(const qn_linear *w, const cpu_plan *p, const float *x, float *y, qn_err *err)
{
    return qn_spqr_matvec(w->packed, x, y, p->simd, err);
}

static qn_status spqr_matmul(const qn_linear *w, const cpu_plan *p, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    return qn_spqr_matmul(w->packed, X, n_tok, Y, p->simd, err);
}

static const cpu_kernels k_cpu_kernels[] = {
    [QN_FMT_F32]  = { .matvec = f32_matvec, .matmul = f32_matmul },
    [QN_FMT_INT]  = { .matvec = int_matvec, .matmul = int_matmul },
    [QN_FMT_AQLM] = { .plan_create = aqlm_plan, .plan_free = aqlm_plan_free,
                      .matvec = aqlm_matvec, .matmul = aqlm_matmul },
    [QN_FMT_SPQR] = { .matvec = spqr_matvec, .matmul = spqr_matmul },
};
_Static_assert(sizeof k_cpu_kernels / sizeof k_cpu_kernels[0] == QN_FMT_COUNT,
               "every qn_format needs a row in k_cpu_kernels");

static bool cpu_supports(const qn_linear *w)
{
    return (unsigned)w->fmt < QN_FMT_COUNT;
}

static qn_status cpu_prepare(const qn_linear *w, void **plan, qn_err *err)
{
    *plan = NULL;
    if (w->fmt == QN_FMT_F32) return QN_OK;
    cpu_plan *p = calloc(1, sizeof *p);
    if (!p) return qn_err_set(err, QN_ERR_NOMEM, "cpu plan: out of memory");
    p->simd = qn_cpu_simd();
    const cpu_kernels *k = &k_cpu_kernels[w->fmt];
    if (k->plan_create) {
        qn_status s = k->plan_create(w, p->simd, &p->fmt_plan, err);
        if (s) { free(p); return s; }
    }
    *plan = p;
    return QN_OK;
}

static void cpu_release(const qn_linear *w, void *plan)
{
    cpu_plan *p = plan;
    if (!p) return;
    if (k_cpu_kernels[w->fmt].plan_free) k_cpu_kernels[w->fmt].plan_free(p->fmt_plan);
    free(p);
}

static qn_status cpu_matvec(const qn_linear *w, const float *x, float *y, qn_err *err)
{
    qn_status s = qn_check_planned(w, err);
    return s ? s : k_cpu_kernels[w->fmt].matvec(w, w->plan, x, y, err);
}

static qn_status cpu_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    qn_status s = qn_check_planned(w, err);
    return s ? s : k_cpu_kernels[w->fmt].matmul(w, w->plan, X, n_tok, Y, err);
}

const qn_backend qn_backend_cpu = {
    .name = "cpu",
    .supports = cpu_supports,
    .prepare = cpu_prepare,
    .release = cpu_release,
    .matvec = cpu_matvec,
    .matmul = cpu_matmul,
};

qn_status qn_cpu_matmul_dequant(size_t d_out, size_t d_in, qn_cpu_dequant_rows_fn dequant, const void *ctx,
                                size_t scratch_floats, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    if (n_tok == 0) return QN_OK;
    int nt = qn_cpu_team(d_out * n_tok, d_in);
    size_t rows = DEQUANT_BLOCK_BYTES / (d_in * sizeof(float)), share = (d_out + (size_t)nt - 1) / (size_t)nt;
    if (rows > share) rows = share;   /* every thread gets a block */
    rows = rows < 8 ? 8 : rows - rows % 8;
    if (rows > d_out) rows = d_out;
    size_t n_blocks = (d_out + rows - 1) / rows, per_thread = rows * d_in + scratch_floats;
    float *buf = malloc((size_t)nt * per_thread * sizeof *buf);
    if (!buf)
        return qn_err_set(err, QN_ERR_NOMEM, "matmul: out of memory for %d blocks of %zu x %zu", nt, rows, d_in);
#pragma omp parallel num_threads(nt)
    {
        float *Wb = buf + (size_t)omp_get_thread_num() * per_thread, *scratch = Wb + rows * d_in;
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            size_t r0 = blk * rows, r1 = r0 + rows < d_out ? r0 + rows : d_out;
            dequant(ctx, r0, r1, Wb, scratch);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_tok, (int)(r1 - r0), (int)d_in, 1.0f, X,
                        (int)d_in, Wb, (int)d_in, 0.0f, Y + r0, (int)d_out);
        }
    }
    free(buf);
    return QN_OK;
}
