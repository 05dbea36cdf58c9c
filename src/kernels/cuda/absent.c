/* absent.c: the CUDA entry points (runtime.h, model.h) in a build without
   nvcc (the Makefile compiles this file instead of the .cu files and
   backend_cuda.c). Each answers that this binary has no CUDA, so
   `--device cuda` fails with one clear message instead of a link error. */
#include "kernels/cuda/model.h"
#include "kernels/cuda/runtime.h"

static qn_status absent(qn_err *err)
{
    return qn_err_set(err, QN_ERR_UNSUPPORTED,
                      "this quench was built without CUDA (nvcc was not found at build time); "
                      "rebuild with nvcc on PATH, or use --device cpu");
}

bool qn_cu_built(void) { return false; }

qn_status qn_cu_probe(char *name, size_t cap, qn_err *err)
{
    if (name && cap) name[0] = '\0';
    return absent(err);
}

qn_status qn_cu_kbench(const qn_cu_matrix *host, const uint16_t *W16, const uint16_t *X16, size_t batch, size_t reps,
                       bool warm, float *y_ours, float *y_blas, qn_cu_kbench_times *out, qn_err *err)
{
    (void)host, (void)W16, (void)X16, (void)batch, (void)reps, (void)warm, (void)y_ours, (void)y_blas, (void)out;
    return absent(err);
}

qn_status qn_cu_model_upload(qn_cu_model **out, const qn_cu_model_desc *d, qn_err *err)
{
    (void)d;
    *out = NULL;
    return absent(err);
}

void   qn_cu_model_free(qn_cu_model *m) { (void)m; }
size_t qn_cu_model_bytes(const qn_cu_model *m) { (void)m; return 0; }

qn_status qn_cu_state_create(qn_cu_state **out, const qn_cu_model *m, size_t max_ctx, size_t max_batch,
                             const float *rope_cos, const float *rope_sin, qn_err *err)
{
    (void)m, (void)max_ctx, (void)max_batch, (void)rope_cos, (void)rope_sin;
    *out = NULL;
    return absent(err);
}

void qn_cu_state_free(qn_cu_state *s) { (void)s; }

qn_status qn_cu_forward(const qn_cu_model *m, qn_cu_state *s, const int32_t *tokens, size_t n, size_t pos,
                        bool all_logits, float *logits, qn_err *err)
{
    (void)m, (void)s, (void)tokens, (void)n, (void)pos, (void)all_logits, (void)logits;
    return absent(err);
}
