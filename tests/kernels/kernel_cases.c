/* kernel_cases.c: shared helpers of the kernel tests (see kernel_cases.h). */
#include "kernel_cases.h"

#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

void kc_make(kc_case *c, const qn_synth_opts *o, const char *name)
{
    qn_err err = {0};
    c->d_out = o->d_out;
    c->d_in = o->d_in;
    cr_assert_eq(qn_synth_create(&c->s, o, &err), QN_OK, "%s: %s", name, err.msg);
    cr_assert_eq(qn_linear_init(&c->lin, o->fmt, o->d_out, o->d_in, qn_synth_packed(c->s), name, &err), QN_OK,
                 "%s: %s", name, err.msg);
    c->W = malloc(o->d_out * o->d_in * sizeof *c->W);
    cr_assert(c->W);
    qn_format_info(o->fmt)->to_dense(&c->lin, c->W);
}

void kc_free(kc_case *c)
{
    qn_linear_done(&c->lin);
    qn_synth_free(c->s);
    free(c->W);
}

float *kc_random(size_t n, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    cr_assert(v);
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
    return v;
}

double kc_err(const float *W, size_t d_out, size_t d_in, const float *X, size_t n_tok, const float *Y, size_t *at)
{
    float *ref = malloc(n_tok * d_out * sizeof *ref);
    cr_assert(ref);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_tok, (int)d_out, (int)d_in, 1.0f, X, (int)d_in, W,
                (int)d_in, 0.0f, ref, (int)d_out);
    double worst = 0;
    *at = 0;
    for (size_t t = 0; t < n_tok; t++)
        for (size_t r = 0; r < d_out; r++) {
            double mag = 0;
            for (size_t j = 0; j < d_in; j++) mag += fabs((double)W[r * d_in + j] * X[t * d_in + j]);
            double e = fabs((double)Y[t * d_out + r] - ref[t * d_out + r]) / fmax(mag, 1e-30);
            if (!(e <= worst)) { worst = e; *at = t * d_out + r; }
        }
    free(ref);
    return worst;
}
