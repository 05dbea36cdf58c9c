/* reduce.h: shrink a matrix to at most out_rows x out_cols by block reduction,
   never by subsampling. Output cell (i, j) covers source rows
   [i*rows/out_rows, (i+1)*rows/out_rows) and the same for columns, so the blocks
   tile the matrix and every source value lands in exactly one cell: with MAX a
   single outlier survives any size. Values are mean-reduced, errors and masks
   max-reduced. NaN values are skipped; a cell of only NaNs is NaN. A dimension
   already no larger than the target is kept as is (no upsampling here). */
#ifndef QN_REDUCE_H
#define QN_REDUCE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    QN_REDUCE_MEAN,       /* signed values: weights */
    QN_REDUCE_MAX,        /* non-negative quantities: errors, counts, masks */
    QN_REDUCE_ABSMAX      /* the value of largest magnitude, sign kept */
} qn_reduce_op;

/* The reduced size of a dimension: min(n, target), at least 1 when n >= 1. */
size_t qn_reduce_dim(size_t n, size_t target);

/* src: (rows, cols) row-major. dst: (qn_reduce_dim(rows, out_rows),
   qn_reduce_dim(cols, out_cols)) row-major, written completely. */
void qn_reduce(const float *src, size_t rows, size_t cols, qn_reduce_op op,
               float *dst, size_t out_rows, size_t out_cols);
/* Same for a 0/1 mask: dst cell is 1 when any source cell in its block is non-zero. */
void qn_reduce_mask(const uint8_t *mask, size_t rows, size_t cols,
                    uint8_t *dst, size_t out_rows, size_t out_cols);

#endif
