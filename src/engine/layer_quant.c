/* layer_quant.c: the calibration-weighted relative error (see layer_quant.h). */
#include "engine/layer_quant.h"

#include <cblas.h>
#include <stdlib.h>

/* trace(A H A^T) = sum_ij (A H)_ij A_ij, computed blockwise in rows to bound memory. */
static double weighted_trace(const float *A, const float *H, size_t d_out, size_t d_in)
{
    enum { ROWS = 256 };
    float *AH = malloc((size_t)ROWS * d_in * sizeof *AH);
    if (!AH) return -1.0;
    double total = 0.0;
    for (size_t r0 = 0; r0 < d_out; r0 += ROWS) {
        size_t nr = d_out - r0 < ROWS ? d_out - r0 : ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)d_in, (int)d_in, 1.0f,
                    A + r0 * d_in, (int)d_in, H, (int)d_in, 0.0f, AH, (int)d_in);
        for (size_t i = 0; i < nr * d_in; i++) total += (double)AH[i] * (double)A[r0 * d_in + i];
    }
    free(AH);
    return total;
}

double qn_relative_error(const float *W, const float *W_hat, const float *H, size_t d_out, size_t d_in)
{
    float *dW = malloc(d_out * d_in * sizeof *dW);
    if (!dW) return -1.0;
    for (size_t i = 0; i < d_out * d_in; i++) dW[i] = W[i] - W_hat[i];
    double num = weighted_trace(dW, H, d_out, d_in), den = weighted_trace(W, H, d_out, d_in);
    free(dW);
    return den > 0 ? num / den : 0.0;
}

void qn_layer_result_done(qn_layer_result *r)
{
    if (!r) return;
    free(r->W_hat);
    r->W_hat = NULL;
}
