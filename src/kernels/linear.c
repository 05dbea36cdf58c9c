/* linear.c: the format table and the backend registry behind qn_linear_*. */
#include "kernels/linear.h"

#include <cblas.h>
#include <omp.h>

#include "kernels/backend.h"

static double bpw_f32(const qn_linear *w) { (void)w; return 32.0; }

static const qn_format_desc k_formats[] = {
    [QN_FMT_F32] = { .name = "f32", .bits_per_weight = bpw_f32 },
};
_Static_assert(sizeof k_formats / sizeof k_formats[0] == QN_FMT_COUNT,
               "every qn_format needs a row in k_formats");

/* CPU last: it supports every format. */
static const qn_backend *const k_backends[] = {
    &qn_backend_cpu,
};

const qn_format_desc *qn_format_info(qn_format fmt)
{
    return (unsigned)fmt < QN_FMT_COUNT ? &k_formats[fmt] : NULL;
}

static const qn_backend *pick(const qn_linear *w)
{
    for (size_t i = 0; i < sizeof k_backends / sizeof k_backends[0]; i++)
        if (k_backends[i]->supports(w)) return k_backends[i];
    return NULL;
}

qn_status qn_linear_matvec(const qn_linear *w, const float *x, float *y, qn_err *err)
{
    const qn_backend *b = pick(w);
    if (!b) return qn_err_set(err, QN_ERR_UNSUPPORTED, "no kernel for format %d", (int)w->fmt);
    return b->matvec(w, x, y, err);
}

qn_status qn_linear_matmul(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err)
{
    const qn_backend *b = pick(w);
    if (!b) return qn_err_set(err, QN_ERR_UNSUPPORTED, "no kernel for format %d", (int)w->fmt);
    return b->matmul(w, X, n_tok, Y, err);
}

qn_linear qn_linear_f32(const float *w, size_t d_out, size_t d_in)
{
    return (qn_linear){ .fmt = QN_FMT_F32, .d_out = d_out, .d_in = d_in, .w = w };
}

void qn_kernels_set_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

int qn_kernels_threads(void)
{
    return openblas_get_num_threads();
}
