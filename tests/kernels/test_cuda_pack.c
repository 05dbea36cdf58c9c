/* test_cuda_pack.c: the host half of the CUDA backend, on the CPU. Every
   format packed into the GPU layout (kernels/cuda/pack.h) and decoded by the
   inline decoders the CUDA kernels run (cuda/layout.h) gives back exactly the
   CPU reference dequantization; the word repacking and array sizes are what
   the layout says; choosing --device cuda fails with a clear message when the
   build has no CUDA or no device answers (as on the CI machine). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/pack.h"
#include "kernels/device.h"
#include "kernels/kernel_bench.h"
#include "kernel_cases.h"

/* A synth matrix of a bench-kernel format behind an initialised linear. */
static void make_case(kc_case *c, const char *format, size_t rows, size_t cols, uint64_t seed)
{
    qn_synth_opts so;
    cr_assert_eq(qn_kbench_synth_opts(format, rows, cols, seed, &so, NULL), QN_OK, "%s", format);
    kc_make(c, &so, format);
}

/* Packs the named format at rows x cols and compares the decoded matrix with
   the reference: bit for bit, the decoders follow the reference's arithmetic. */
static void check_roundtrip(const char *format, size_t rows, size_t cols, uint64_t seed)
{
    kc_case c;
    make_case(&c, format, rows, cols, seed);
    qn_cu_matrix m;
    qn_err err = {0};
    cr_assert_eq(qn_cu_pack(&c.lin, &m, &err), QN_OK, "%s: %s", format, err.msg);
    cr_expect_eq(m.d_out, rows);
    cr_expect_eq(m.d_in, cols);
    float *W = malloc(rows * cols * sizeof *W);
    cr_assert(W);
    qn_cu_to_dense(&m, W);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < rows * cols; i++)
        if (memcmp(&W[i], &c.W[i], sizeof(float)) != 0 && bad++ == 0) first = i;
    cr_expect_eq(bad, 0, "%s %zu x %zu: %zu weights differ, first at (%zu, %zu): %g vs %g", format, rows, cols, bad,
                 first / cols, first % cols, W[first], c.W[first]);
    free(W);
    qn_cu_pack_free(&m);
    kc_free(&c);
}

Test(cuda_pack, every_format_decodes_to_the_cpu_reference)
{
    size_t n = 0;
    for (size_t i = 0; qn_kbench_format_name(i); i++, n++) {
        /* 264 columns: int groups of 128 and int3 words of 10 codes end mid-way */
        check_roundtrip(qn_kbench_format_name(i), 37, 264, 100 + i);
        check_roundtrip(qn_kbench_format_name(i), 5, 8 * 16, 200 + i);
    }
    cr_expect_eq(n, 11);
}

Test(cuda_pack, f32_becomes_round_to_nearest_fp16)
{
    float w[6] = { 1.0f, -2.5f, 1.0f / 3.0f, 65504.0f, 1e-8f, 0.1f };
    qn_linear lin = qn_linear_f32(w, 2, 3);
    qn_cu_matrix m;
    qn_err err = {0};
    cr_assert_eq(qn_cu_pack(&lin, &m, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(m.kind, QN_CU_F16);
    float back[6];
    qn_cu_to_dense(&m, back);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(m.w[i], qn_synth_half(w[i]), "element %d", i);
        cr_expect_float_eq(back[i], w[i], fabsf(w[i]) * 4.9e-4f + 6e-8f, "element %d: %g", i, back[i]);
    }
    cr_expect_eq(qn_cu_matrix_bytes(&m), 6 * 2);
    qn_cu_pack_free(&m);
}

Test(cuda_pack, int3_rows_are_words_of_ten_codes)
{
    kc_case c;
    make_case(&c, "int3", 3, 264, 7);
    const qn_int_weights *p = c.lin.packed;
    qn_cu_matrix m;
    cr_assert_eq(qn_cu_pack(&c.lin, &m, NULL), QN_OK);
    cr_expect_eq(m.words_per_row, 27, "ceil(264 / 10) words");
    cr_expect_eq(m.n_groups, 3, "ceil(264 / 128) groups");
    size_t row_bytes = qn_bits_row_bytes(264, 3);
    for (uint32_t r = 0; r < 3; r++)
        for (uint32_t i = 0; i < 264; i++)
            cr_expect_eq(qn_cu_code(m.qwords + r * m.words_per_row, i, 3), qn_bits_get(p->codes + r * row_bytes, i, 3),
                         "row %u code %u", r, i);
    for (uint32_t r = 0; r < 3; r++)   /* the unused bits stay zero */
        for (uint32_t wi = 0; wi < m.words_per_row; wi++) cr_expect_eq(m.qwords[r * m.words_per_row + wi] >> 30, 0u);
    cr_expect_eq(qn_cu_matrix_bytes(&m), 3 * 27 * 4 + 2 * (3 * 3 * 2));
    qn_cu_pack_free(&m);
    kc_free(&c);
}

Test(cuda_pack, aqlm_codes_are_stored_unsigned)
{
    kc_case c;
    make_case(&c, "aqlm-2x8", 4, 64, 3);
    /* the Hugging Face packing stores code v >= 128 as the int8 v - 256 */
    qn_aqlm_weights *p = (qn_aqlm_weights *)c.lin.packed;
    uint8_t *codes = (uint8_t *)p->codes;
    codes[0] = 200;
    qn_cu_matrix m;
    cr_assert_eq(qn_cu_pack(&c.lin, &m, NULL), QN_OK);
    cr_expect_eq(m.codes8[0], 200);
    cr_expect_eq(qn_cu_aqlm_code(&m, 0, 0, 0), 200u);
    cr_expect_null(m.codes16);
    cr_expect_eq(qn_cu_matrix_bytes(&m), 4 * 8 * 2 + 2 * 256 * 8 * 2 + 4 * 2);
    qn_cu_pack_free(&m);
    kc_free(&c);
}

Test(cuda_device, parse_names_the_choices)
{
    qn_device d = QN_DEVICE_CUDA;
    qn_err err = {0};
    cr_expect_eq(qn_device_parse("cpu", &d, &err), QN_OK);
    cr_expect_eq(d, QN_DEVICE_CPU);
    cr_expect_eq(qn_device_parse("cuda", &d, &err), QN_OK);
    cr_expect_eq(d, QN_DEVICE_CUDA);
    cr_expect_eq(qn_device_parse("gpu", &d, &err), QN_ERR_ARG);
    cr_expect(strstr(err.msg, "expected cpu or cuda, found 'gpu'"), "%s", err.msg);
}

/* Without CUDA built in, or without a device (CI, this machine), the choice
   fails with the reason and the kernels stay on the CPU; with a GPU it holds. */
Test(cuda_device, selecting_cuda_says_why_it_cannot)
{
    qn_err err = {0};
    qn_status s = qn_kernels_set_device(QN_DEVICE_CUDA, &err);
    if (!qn_device_cuda_built()) {
        cr_expect_eq(s, QN_ERR_UNSUPPORTED);
        cr_expect(strstr(err.msg, "--device cuda: this quench was built without CUDA"), "%s", err.msg);
    }
    if (s != QN_OK) {
        cr_expect(s == QN_ERR_UNSUPPORTED || s == QN_ERR_DEVICE, "status %d", (int)s);
        cr_expect(strncmp(err.msg, "--device cuda: ", 15) == 0 && strlen(err.msg) > 30, "%s", err.msg);
        cr_expect_eq(qn_kernels_device(), QN_DEVICE_CPU);
    } else {
        cr_expect_eq(qn_kernels_device(), QN_DEVICE_CUDA);
    }
    cr_assert_eq(qn_kernels_set_device(QN_DEVICE_CPU, &err), QN_OK);
    cr_expect_eq(qn_kernels_device(), QN_DEVICE_CPU);
}

Test(cuda_device, linears_remember_the_backend_that_planned_them)
{
    kc_case c;
    make_case(&c, "int4", 8, 128, 1);
    cr_expect_not_null(c.lin.backend);
    cr_expect_not_null(c.lin.plan);
    qn_linear copy = c.lin;
    qn_linear_done(&copy);
    cr_expect_null(copy.backend);
    cr_expect_null(copy.plan);
    c.lin.plan = NULL;   /* freed through the copy */
    c.lin.backend = NULL;
    kc_free(&c);
}
