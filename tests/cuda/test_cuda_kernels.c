/* test_cuda_kernels.c: every CUDA kernel against the CPU reference on the
   same packed matrices (the synth matrices of bench-kernel, through
   qn_linear with --device cuda). The input is rounded to fp16 on the GPU, so
   the reference multiplies the fp16-rounded input by the exact reference
   dequantization, in f32 BLAS (kc_err).
   Tolerances, relative to sum_j |W_rj x_j| of each output:
   - one token (GEMV): weights decode exactly in f32, only the order of the
     f32 sums differs: 1e-5, as the CPU kernel tests;
   - a batch (dequantize to fp16, cuBLAS): each weight is rounded to fp16,
     at most 2^-11 = 4.9e-4 of itself: 1e-3. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "kernels/cuda/runtime.h"
#include "kernels/device.h"
#include "kernels/kernel_bench.h"
#include "kernels/synth.h"
#include "kernels/kernel_cases.h"

#define GEMV_TOL 1e-5
#define BATCH_TOL 1e-3
#define BATCH 5

static void on_gpu(void)
{
    qn_err err = {0};
    cr_assert_eq(qn_kernels_set_device(QN_DEVICE_CUDA, &err), QN_OK, "%s", err.msg);
}

/* X (n, d_in) uniform in [-1, 1], rounded to fp16 as the GPU will. */
static float *half_inputs(size_t n, uint64_t seed)
{
    float *X = kc_random(n, seed);
    for (size_t i = 0; i < n; i++) X[i] = qn_half_to_float(qn_synth_half(X[i]));
    return X;
}

static void check_format(const char *format, size_t rows, size_t cols, uint64_t seed)
{
    qn_synth_opts so;
    cr_assert_eq(qn_kbench_synth_opts(format, rows, cols, seed, &so, NULL), QN_OK);
    kc_case c;
    kc_make(&c, &so, format);   /* initialised under --device cuda: the GPU plan */
    cr_assert_not_null(qn_cu_linear_plan(&c.lin), "%s: not planned by the CUDA backend", format);
    float *X = half_inputs(BATCH * cols, seed + 1), *Y = malloc(BATCH * rows * sizeof *Y);
    cr_assert(Y);
    qn_err err = {0};
    size_t at = 0;
    cr_assert_eq(qn_linear_matvec(&c.lin, X, Y, &err), QN_OK, "%s: %s", format, err.msg);
    double e = kc_err(c.W, rows, cols, X, 1, Y, &at);
    cr_expect(e <= GEMV_TOL, "%s %zu x %zu GEMV: error %.3g at row %zu", format, rows, cols, e, at);
    cr_assert_eq(qn_linear_matmul(&c.lin, X, BATCH, Y, &err), QN_OK, "%s: %s", format, err.msg);
    e = kc_err(c.W, rows, cols, X, BATCH, Y, &at);
    cr_expect(e <= BATCH_TOL, "%s %zu x %zu batch of %d: error %.3g at token %zu row %zu", format, rows, cols, BATCH, e,
              at / rows, at % rows);
    free(X);
    free(Y);
    kc_free(&c);
}

Test(cuda_kernels, every_format_matches_the_cpu_reference)
{
    on_gpu();
    for (size_t i = 0; qn_kbench_format_name(i); i++) {
        check_format(qn_kbench_format_name(i), 37, 264, 10 + i);     /* partial blocks, groups and words */
        check_format(qn_kbench_format_name(i), 300, 4096, 20 + i);   /* many blocks */
    }
}

/* 28672 input columns: the fp16 input (56 KiB), plus the Kx8 codebooks,
   exceed the 48 KiB a block gets without opting in. */
Test(cuda_kernels, wide_inputs_use_the_large_shared_memory)
{
    on_gpu();
    const char *formats[] = { "aqlm-2x8", "aqlm-1x8", "aqlm-1x16", "int4", "int3", "int2", "spqr-w3" };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) check_format(formats[i], 40, 28672, 30 + i);
}

/* The host product twice gives the same bits (no stale workspace). */
Test(cuda_kernels, repeated_products_agree)
{
    on_gpu();
    qn_synth_opts so;
    cr_assert_eq(qn_kbench_synth_opts("aqlm-2x8", 64, 512, 5, &so, NULL), QN_OK);
    kc_case c;
    kc_make(&c, &so, "aqlm-2x8");
    float *X = half_inputs(512, 6), a[64], b[64];
    cr_assert_eq(qn_linear_matvec(&c.lin, X, a, NULL), QN_OK);
    cr_assert_eq(qn_linear_matvec(&c.lin, X, b, NULL), QN_OK);
    cr_expect_arr_eq(a, b, sizeof a);
    free(X);
    kc_free(&c);
}
