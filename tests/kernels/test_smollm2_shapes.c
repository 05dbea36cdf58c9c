/* test_smollm2_shapes.c: every compressed format `make bench` runs on
   SmolLM2-135M (kernel_bench's list), at that model's four linear shapes
   (576x576 q/o, 192x576 k/v, 1536x576 gate/up, 576x1536 down), against
   dequantize-then-BLAS at the kernel tests' tolerance: matvec on each SIMD
   path and through qn_linear, several inputs in a row (the AQLM table route
   reuses its buffer between calls and between matrices of different sizes),
   and batches on both sides of the sgemm crossover. 576 columns leave
   integer groups of 128 with a partial last group of 64, which the AVX2
   4-bit path now takes in vector chunks. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_cases.h"
#include "kernels/aqlm_cpu.h"
#include "kernels/int_cpu.h"
#include "kernels/kernel_bench.h"
#include "kernels/spqr_cpu.h"

static const size_t k_shapes[][2] = { { 576, 576 }, { 192, 576 }, { 1536, 576 }, { 576, 1536 } };

/* y = W x by the format's own matvec on one SIMD path. */
static qn_status format_matvec(const kc_case *c, const float *x, float *y, qn_simd simd, qn_err *err)
{
    switch (c->lin.fmt) {
    case QN_FMT_INT: return qn_int_matvec(c->lin.packed, x, y, simd, err);
    case QN_FMT_SPQR: return qn_spqr_matvec(c->lin.packed, x, y, simd, err);
    default: {
        qn_aqlm_plan *p;
        qn_status s = qn_aqlm_plan_create(&p, c->lin.packed, simd, err);
        if (!s) s = qn_aqlm_matvec(c->lin.packed, p, x, y, simd, err);
        qn_aqlm_plan_free(p);
        return s;
    }
    }
}

static kc_case make(const char *fmt, size_t s, uint64_t seed)
{
    qn_synth_opts o;
    kc_case c;
    cr_assert_eq(qn_kbench_synth_opts(fmt, k_shapes[s][0], k_shapes[s][1], seed, &o, NULL), QN_OK, "%s", fmt);
    kc_make(&c, &o, fmt);
    return c;
}

Test(smollm2_shapes, matvec_matches_dequantized_sgemv, .timeout = 600)
{
    for (size_t f = 0; qn_kbench_format_name(f); f++)
        for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
            const char *fmt = qn_kbench_format_name(f);
            kc_case c = make(fmt, s, 31 * f + s);
            float *y = malloc(c.d_out * sizeof *y);
            for (uint64_t t = 0; t < 3; t++) {   /* a fresh x each time: nothing carries over */
                float *x = kc_random(c.d_in, 100 * f + 10 * s + t);
                size_t at;
                for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                    qn_err err = {0};
                    memset(y, 0, c.d_out * sizeof *y);
                    cr_assert_eq(format_matvec(&c, x, y, (qn_simd)simd, &err), QN_OK, "%s", err.msg);
                    double e = kc_err(c.W, c.d_out, c.d_in, x, 1, y, &at);
                    cr_expect(e <= KC_REL_TOL, "%s %zux%zu %s input %d: rel err %.3g at row %zu > %.3g", fmt, c.d_out,
                              c.d_in, qn_simd_name((qn_simd)simd), (int)t, e, at, KC_REL_TOL);
                }
                memset(y, 0, c.d_out * sizeof *y);
                cr_assert_eq(qn_linear_matvec(&c.lin, x, y, NULL), QN_OK);
                double e = kc_err(c.W, c.d_out, c.d_in, x, 1, y, &at);
                cr_expect(e <= KC_REL_TOL, "%s %zux%zu via qn_linear input %d: rel err %.3g at row %zu > %.3g", fmt,
                          c.d_out, c.d_in, (int)t, e, at, KC_REL_TOL);
                free(x);
            }
            free(y);
            kc_free(&c);
        }
}

Test(smollm2_shapes, matmul_matches_dequantized_sgemm, .timeout = 600)
{
    static const size_t n_toks[] = { 5, 17, 64 };   /* per-token matvecs, then dequantize + sgemm */
    for (size_t f = 0; qn_kbench_format_name(f); f++)
        for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
            const char *fmt = qn_kbench_format_name(f);
            kc_case c = make(fmt, s, 7 + 31 * f + s);
            for (size_t t = 0; t < sizeof n_toks / sizeof n_toks[0]; t++) {
                size_t n = n_toks[t], at;
                float *X = kc_random(n * c.d_in, 3 + t), *Y = calloc(n * c.d_out, sizeof *Y);
                cr_assert_eq(qn_linear_matmul(&c.lin, X, n, Y, NULL), QN_OK);
                double e = kc_err(c.W, c.d_out, c.d_in, X, n, Y, &at);
                cr_expect(e <= KC_REL_TOL, "%s %zux%zu x %zu tokens: rel err %.3g at %zu > %.3g", fmt, c.d_out, c.d_in,
                          n, e, at, KC_REL_TOL);
                free(X);
                free(Y);
            }
            kc_free(&c);
        }
}
