/* backend_cuda.c: the CUDA backend of the qn_linear registry (backend.h),
   built only with nvcc. It takes the compressed formats once --device cuda
   is selected: qn_linear_init packs the layout for the GPU (cuda/pack.h) and
   uploads it, which is the plan; products copy the f32 activations to the
   device and back (cuda/runtime.h). Dense f32 stays with the CPU backend:
   the GPU forward pass uploads those matrices itself as fp16. */
#include "kernels/backend.h"

#include "kernels/cuda/pack.h"
#include "kernels/cuda/runtime.h"
#include "kernels/device.h"

static bool cuda_supports(const qn_linear *w)
{
    return qn_kernels_device() == QN_DEVICE_CUDA && w->fmt != QN_FMT_F32 && (unsigned)w->fmt < QN_FMT_COUNT;
}

static qn_status cuda_prepare(const qn_linear *w, void **plan, qn_err *err)
{
    *plan = NULL;
    qn_cu_matrix host;
    qn_status s = qn_cu_pack(w, &host, err);
    if (s) return s;
    s = qn_cu_matrix_upload(&host, (qn_cu_matrix **)plan, err);
    qn_cu_pack_free(&host);
    return s;
}

static void cuda_release(const qn_linear *w, void *plan)
{
    (void)w;
    qn_cu_matrix_free(plan);
}

static qn_status cuda_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    qn_status s = qn_check_planned(w, err);
    return s ? s : qn_cu_matmul_host(w->plan, X, n_tok, Y, err);
}

static qn_status cuda_matvec(const qn_linear *w, const float *x, float *y, qn_err *err)
{
    return cuda_matmul(w, x, 1, y, err);
}

const qn_backend qn_backend_cuda = {
    .name = "cuda",
    .supports = cuda_supports,
    .prepare = cuda_prepare,
    .release = cuda_release,
    .matvec = cuda_matvec,
    .matmul = cuda_matmul,
};

const qn_cu_matrix *qn_cu_linear_plan(const qn_linear *w)
{
    return w && w->backend == &qn_backend_cuda ? w->plan : NULL;
}
