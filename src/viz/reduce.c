/* reduce.c: block reduction of matrices for display (see reduce.h). One pass over
   the source: each source row adds into the accumulator row of its block. */
#include "viz/reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t qn_reduce_dim(size_t n, size_t target)
{
    if (target == 0) target = 1;
    return n < target ? n : target;
}

/* block of source index s when n source cells are split into m blocks (m <= n):
   block b covers [b*n/m, (b+1)*n/m), so s belongs to floor(((s+1)*m - 1) / n) */
static size_t block_of(size_t s, size_t n, size_t m)
{
    return ((s + 1) * m - 1) / n;
}

static void fold(float *acc, float *cnt, float v, qn_reduce_op op)
{
    if (isnan(v)) return;
    if (*cnt == 0) {
        *acc = v;
    } else if (op == QN_REDUCE_MEAN) {
        *acc += v;
    } else if (op == QN_REDUCE_MAX) {
        if (v > *acc) *acc = v;
    } else if (fabsf(v) > fabsf(*acc)) {
        *acc = v;
    }
    *cnt += 1;
}

void qn_reduce(const float *src, size_t rows, size_t cols, qn_reduce_op op,
               float *dst, size_t out_rows, size_t out_cols)
{
    size_t m_r = qn_reduce_dim(rows, out_rows), m_c = qn_reduce_dim(cols, out_cols);
    if (m_r == 0 || m_c == 0) return;
    /* counts kept in dst-shaped scratch; without memory fall back to per-cell scans */
    float *cnt = calloc(m_r * m_c, sizeof *cnt);
    if (!cnt) {
        for (size_t i = 0; i < m_r; i++)
            for (size_t j = 0; j < m_c; j++) {
                float acc = NAN, n = 0;
                for (size_t r = i * rows / m_r; r < (i + 1) * rows / m_r; r++)
                    for (size_t c = j * cols / m_c; c < (j + 1) * cols / m_c; c++)
                        fold(&acc, &n, src[r * cols + c], op);
                dst[i * m_c + j] = n > 0 && op == QN_REDUCE_MEAN ? acc / n : acc;
            }
        return;
    }
    for (size_t k = 0; k < m_r * m_c; k++) dst[k] = NAN;
    for (size_t r = 0; r < rows; r++) {
        size_t i = block_of(r, rows, m_r);
        for (size_t c = 0; c < cols; c++) {
            size_t k = i * m_c + block_of(c, cols, m_c);
            fold(&dst[k], &cnt[k], src[r * cols + c], op);
        }
    }
    if (op == QN_REDUCE_MEAN)
        for (size_t k = 0; k < m_r * m_c; k++)
            if (cnt[k] > 0) dst[k] /= cnt[k];
    free(cnt);
}

void qn_reduce_mask(const uint8_t *mask, size_t rows, size_t cols,
                    uint8_t *dst, size_t out_rows, size_t out_cols)
{
    size_t m_r = qn_reduce_dim(rows, out_rows), m_c = qn_reduce_dim(cols, out_cols);
    if (m_r == 0 || m_c == 0) return;
    memset(dst, 0, m_r * m_c);
    for (size_t r = 0; r < rows; r++) {
        size_t i = block_of(r, rows, m_r);
        for (size_t c = 0; c < cols; c++)
            if (mask[r * cols + c]) dst[i * m_c + block_of(c, cols, m_c)] = 1;
    }
}
