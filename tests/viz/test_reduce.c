/* test_reduce.c: block reduction never drops a value: a single outlier survives
   every target size with MAX, blocks tile the matrix, means are exact on
   constant blocks, NaN is skipped, nothing is upsampled. */
#include "viz/reduce.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static const size_t k_targets[] = { 1, 2, 3, 7, 10, 64, 99, 100, 333, 640, 999, 1000, 1001 };
#define N_TARGETS (sizeof k_targets / sizeof k_targets[0])

Test(reduce, single_outlier_survives_every_size)
{
    const size_t rows = 1000, cols = 1300;
    float *m = calloc(rows * cols, sizeof *m), *dst = malloc(rows * cols * sizeof *dst);
    cr_assert(m && dst);
    const size_t where[][2] = { { 0, 0 }, { 999, 1299 }, { 517, 3 }, { 1, 1298 }, { 333, 666 } };
    for (size_t w = 0; w < 5; w++) {
        size_t r0 = where[w][0], c0 = where[w][1];
        m[r0 * cols + c0] = 5;
        for (size_t a = 0; a < N_TARGETS; a++)
            for (size_t b = 0; b < N_TARGETS; b++) {
                size_t mr = qn_reduce_dim(rows, k_targets[a]), mc = qn_reduce_dim(cols, k_targets[b]);
                qn_reduce(m, rows, cols, QN_REDUCE_MAX, dst, k_targets[a], k_targets[b]);
                size_t hits = 0;
                for (size_t i = 0; i < mr * mc; i++) hits += dst[i] == 5;
                cr_assert_eq(hits, 1, "outlier at (%zu,%zu) reduced to %zux%zu: %zu cells hold it",
                             r0, c0, mr, mc, hits);
                /* and in the block that covers it: [i*rows/mr, (i+1)*rows/mr) */
                size_t i = r0 * mr / rows, j = c0 * mc / cols;
                while (!(i * rows / mr <= r0 && r0 < (i + 1) * rows / mr)) i++;
                while (!(j * cols / mc <= c0 && c0 < (j + 1) * cols / mc)) j++;
                cr_assert_eq(dst[i * mc + j], 5, "outlier (%zu,%zu) not in block (%zu,%zu) of "
                             "%zux%zu", r0, c0, i, j, mr, mc);
            }
        m[r0 * cols + c0] = 0;
    }
    free(m);
    free(dst);
}

Test(reduce, blocks_tile_the_matrix)
{
    /* mean of ones is 1 in every cell iff no block is empty */
    const size_t sizes[] = { 1, 5, 17, 100, 257 };
    for (size_t a = 0; a < 5; a++) {
        size_t n = sizes[a];
        float *ones = malloc(n * n * sizeof *ones), *dst = malloc(n * n * sizeof *dst);
        for (size_t i = 0; i < n * n; i++) ones[i] = 1;
        for (size_t t = 1; t <= n; t++) {
            qn_reduce(ones, n, n, QN_REDUCE_MEAN, dst, t, t);
            for (size_t i = 0; i < t * t; i++)
                cr_assert_eq(dst[i], 1.0f, "%zu -> %zu: cell %zu is %g", n, t, i, dst[i]);
        }
        free(ones);
        free(dst);
    }
}

Test(reduce, means_are_exact_on_constant_blocks)
{
    /* 12 x 20 made of 3 x 4 blocks each holding its block id; reduced to 4 x 5 */
    float m[12 * 20], dst[4 * 5];
    for (size_t r = 0; r < 12; r++)
        for (size_t c = 0; c < 20; c++) m[r * 20 + c] = (float)((r / 3) * 5 + c / 4);
    qn_reduce(m, 12, 20, QN_REDUCE_MEAN, dst, 4, 5);
    for (size_t i = 0; i < 20; i++) cr_assert_eq(dst[i], (float)i, "cell %zu: %g", i, dst[i]);
}

Test(reduce, absmax_keeps_the_sign_and_max_the_largest)
{
    float m[2 * 4] = { 1, -7, 2, 3,
                       -2, 5, 0.5f, -1 };
    float dst[2];
    qn_reduce(m, 2, 4, QN_REDUCE_ABSMAX, dst, 1, 2);
    cr_assert(dst[0] == -7 && dst[1] == 3, "absmax: %g %g", dst[0], dst[1]);
    qn_reduce(m, 2, 4, QN_REDUCE_MAX, dst, 1, 2);
    cr_assert(dst[0] == 5 && dst[1] == 3, "max: %g %g", dst[0], dst[1]);
}

Test(reduce, nan_is_skipped_and_all_nan_stays_nan)
{
    float m[2 * 4] = { NAN, 2, NAN, NAN,
                       4, NAN, NAN, NAN };
    float dst[2];
    qn_reduce(m, 2, 4, QN_REDUCE_MEAN, dst, 1, 2);
    cr_assert(dst[0] == 3 && isnan(dst[1]), "mean: %g %g", dst[0], dst[1]);
    qn_reduce(m, 2, 4, QN_REDUCE_MAX, dst, 1, 2);
    cr_assert(dst[0] == 4 && isnan(dst[1]), "max: %g %g", dst[0], dst[1]);
}

Test(reduce, smaller_dimensions_are_kept)
{
    cr_assert_eq(qn_reduce_dim(10, 100), 10);
    cr_assert_eq(qn_reduce_dim(100, 10), 10);
    cr_assert_eq(qn_reduce_dim(5, 0), 1);
    float m[3 * 50], dst[3 * 50];
    for (size_t i = 0; i < 150; i++) m[i] = (float)i;
    qn_reduce(m, 3, 50, QN_REDUCE_MEAN, dst, 100, 50);
    for (size_t i = 0; i < 150; i++) cr_assert_eq(dst[i], m[i], "identity at %zu", i);
}

Test(reduce, mask_marks_a_block_with_any_outlier)
{
    const size_t rows = 4096, cols = 4096;
    uint8_t *mask = calloc(rows * cols, 1), dst[37 * 53];
    mask[4095 * cols + 17] = 1;
    qn_reduce_mask(mask, rows, cols, dst, 37, 53);
    size_t hits = 0;
    for (size_t i = 0; i < 37 * 53; i++) hits += dst[i];
    cr_assert_eq(hits, 1);
    cr_assert_eq(dst[36 * 53 + 0], 1, "the outlier's block is the last row, first column");
    free(mask);
}
