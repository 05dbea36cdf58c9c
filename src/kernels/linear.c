/* linear.c: the format table and the backend registry behind qn_linear_*.
   A format is one row of k_formats (name, bits per weight, validator,
   reference dequantizer); its kernels are rows of each backend's table. */
#include "kernels/linear.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/aqlm_cpu.h"
#include "kernels/backend.h"
#include "kernels/int_cpu.h"
#include "kernels/spqr_cpu.h"

static double bpw_f32(const qn_linear *w) { (void)w; return 32.0; }
static double bpw_int(const qn_linear *w) { return qn_int_bits_per_weight(w->packed); }
static double bpw_aqlm(const qn_linear *w) { return qn_aqlm_bits_per_weight(w->packed); }
static double bpw_spqr(const qn_linear *w) { return qn_spqr_bits_per_weight(w->packed); }

static qn_status validate_f32(const qn_linear *w, const char *name, qn_err *err)
{
    if (!w->w) return qn_err_set(err, QN_ERR_FORMAT, "%s: no f32 data", name);
    return QN_OK;
}

/* The layout's own shape must be the one the linear declares. */
static qn_status same_shape(const qn_linear *w, size_t d_out, size_t d_in, const char *name, qn_err *err)
{
    if (d_out != w->d_out || d_in != w->d_in)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: layout is %zu x %zu, expected %zu x %zu", name, d_out, d_in,
                          w->d_out, w->d_in);
    return QN_OK;
}

static qn_status validate_int(const qn_linear *w, const char *name, qn_err *err)
{
    const qn_int_weights *p = w->packed;
    qn_status s = qn_int_validate(p, name, err);
    return s ? s : same_shape(w, p->d_out, p->d_in, name, err);
}

static qn_status validate_aqlm(const qn_linear *w, const char *name, qn_err *err)
{
    const qn_aqlm_weights *p = w->packed;
    qn_status s = qn_aqlm_validate(p, name, err);
    return s ? s : same_shape(w, p->d_out, p->d_in, name, err);
}

static qn_status validate_spqr(const qn_linear *w, const char *name, qn_err *err)
{
    const qn_spqr_weights *p = w->packed;
    qn_status s = qn_spqr_validate(p, name, err);
    return s ? s : same_shape(w, p->d_out, p->d_in, name, err);
}

static void dense_f32(const qn_linear *w, float *W) { memcpy(W, w->w, w->d_out * w->d_in * sizeof *W); }
static void dense_int(const qn_linear *w, float *W) { qn_int_to_dense_ref(w->packed, W); }
static void dense_aqlm(const qn_linear *w, float *W) { qn_aqlm_to_dense_ref(w->packed, W); }
static void dense_spqr(const qn_linear *w, float *W) { qn_spqr_to_dense_ref(w->packed, W); }

static const qn_format_desc k_formats[] = {
    [QN_FMT_F32]  = { .name = "f32", .bits_per_weight = bpw_f32, .validate = validate_f32, .to_dense = dense_f32 },
    [QN_FMT_INT]  = { .name = "int", .bits_per_weight = bpw_int, .validate = validate_int, .to_dense = dense_int },
    [QN_FMT_AQLM] = { .name = "aqlm", .bits_per_weight = bpw_aqlm, .validate = validate_aqlm,
                      .to_dense = dense_aqlm },
    [QN_FMT_SPQR] = { .name = "spqr", .bits_per_weight = bpw_spqr, .validate = validate_spqr,
                      .to_dense = dense_spqr },
};
_Static_assert(sizeof k_formats / sizeof k_formats[0] == QN_FMT_COUNT,
               "every qn_format needs a row in k_formats");

/* CPU last: it supports every format. CUDA takes compressed formats once
   --device cuda is selected (device.h). */
static const qn_backend *const k_backends[] = {
#ifdef QN_HAVE_CUDA
    &qn_backend_cuda,
#endif
    &qn_backend_cpu,
};

const qn_format_desc *qn_format_info(qn_format fmt)
{
    return (unsigned)fmt < QN_FMT_COUNT ? &k_formats[fmt] : NULL;
}

static const qn_backend *pick(const qn_linear *w)
{
    if (w->backend) return w->backend;
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

qn_status qn_linear_init(qn_linear *w, qn_format fmt, size_t d_out, size_t d_in, const void *packed,
                         const char *name, qn_err *err)
{
    memset(w, 0, sizeof *w);
    const qn_format_desc *d = qn_format_info(fmt);
    if (!name) name = "weight";
    if (!d) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: unknown format %d", name, (int)fmt);
    qn_linear t = { .fmt = fmt, .d_out = d_out, .d_in = d_in, .packed = packed,
                    .w = fmt == QN_FMT_F32 ? packed : NULL };
    if (d_out == 0 || d_in == 0 || d_out > (size_t)1 << 30 || d_in > (size_t)1 << 30)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: shape %zu x %zu out of range", name, d_out, d_in);
    if (fmt != QN_FMT_F32 && !packed) return qn_err_set(err, QN_ERR_FORMAT, "%s: no %s layout", name, d->name);
    qn_status s = d->validate(&t, name, err);
    if (s) return s;
    const qn_backend *b = pick(&t);
    if (!b) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no kernel for %s", name, d->name);
    if (b->prepare && (s = b->prepare(&t, &t.plan, err)) != QN_OK) {
        qn_err_prefix(err, "%s: ", name);
        return s;
    }
    t.backend = b;
    *w = t;
    return QN_OK;
}

void qn_linear_done(qn_linear *w)
{
    if (!w || !w->plan) return;
    const qn_backend *b = pick(w);
    if (b && b->release) b->release(w, w->plan);
    w->plan = NULL;
    w->backend = NULL;
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
