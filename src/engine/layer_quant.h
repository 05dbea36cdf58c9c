/* layer_quant.h: what every weight quantizer (RTN, GPTQ, SpQR, AQLM) takes and
   gives for one linear layer, so the CLI's quantize-layer, the whole-model
   calibration pipeline and the TUI treat methods alike.
   The calibration loss of a quantized W_hat is ||W X - W_hat X||^2 =
   trace(dW H dW^T) with H = X^T X (the inputs' second moment); the relative
   error divides by trace(W H W^T). */
#ifndef QN_LAYER_QUANT_H
#define QN_LAYER_QUANT_H
#include <stdatomic.h>
#include <stddef.h>
#include "status.h"
#include "engine/events.h"

typedef struct {
    const char  *name;        /* "model.layers.3.mlp.up_proj" or the layer file, for messages */
    size_t       d_out, d_in;
    const float *W;           /* (d_out, d_in) row-major, not modified */
    const float *H;           /* (d_in, d_in) symmetric positive semi-definite, not modified */
} qn_layer_problem;

typedef struct {
    float  *W_hat;            /* (d_out, d_in) the dequantized result, malloc'd; free with free() */
    double  relative_error;   /* trace(dW H dW^T) / trace(W H W^T) */
    double  bits;             /* per weight, counting everything stored for the layer */
    size_t  n_outliers;       /* SpQR; 0 otherwise */
    double  outlier_fraction; /* n_outliers / (d_out * d_in) */
    double  seconds;          /* wall time of the quantizer */
} qn_layer_result;

/* trace(dW H dW^T) / trace(W H W^T) in double, dW = W - W_hat (BLAS; O(d_out d_in^2)). */
double qn_relative_error(const float *W, const float *W_hat, const float *H, size_t d_out, size_t d_in);

void qn_layer_result_done(qn_layer_result *r);   /* frees W_hat; zeroed is fine */

#endif
