/* backend_cpu.c: the CPU backend, the reference that supports every format.
   Dense f32 goes to OpenBLAS: sgemv for one token, sgemm for a batch. */
#include "kernels/backend.h"

#include <cblas.h>

static bool cpu_supports(const qn_linear *w)
{
    return w->fmt == QN_FMT_F32;
}

static qn_status cpu_matvec(const qn_linear *w, const float *x, float *y, qn_err *err)
{
    (void)err;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)w->d_out, (int)w->d_in, 1.0f, w->w, (int)w->d_in,
                x, 1, 0.0f, y, 1);
    return QN_OK;
}

static qn_status cpu_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    if (n_tok == 1) return cpu_matvec(w, X, Y, err);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_tok, (int)w->d_out, (int)w->d_in, 1.0f,
                X, (int)w->d_in, w->w, (int)w->d_in, 0.0f, Y, (int)w->d_out);
    return QN_OK;
}

const qn_backend qn_backend_cpu = {
    .name = "cpu",
    .supports = cpu_supports,
    .matvec = cpu_matvec,
    .matmul = cpu_matmul,
};
