/* rtn.h: round-to-nearest with an asymmetric min-max grid, per output row or per
   group of input columns: the baseline of the GPTQ paper (Frantar et al., ICLR
   2023) and the "quantizer fitted per group" that GPTQ and SpQR reuse. It
   follows the research code's quantizer (SpQR quant_groups.py, perchannel,
   sym=False, round_zero=False): scale = (max - min) / (2^b - 1), a continuous
   zero = -min / scale, q = clamp(round(w / scale + zero), 0, 2^b - 1),
   w_hat = scale (q - zero); a constant row gets the range [-1, 1].
   Not here: symmetric grids, rounded zeros, MSE-searched ranges. */
#ifndef QN_RTN_H
#define QN_RTN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/layer_quant.h"

#define QN_RTN_MAX_BITS 8        /* codes are stored one per byte */
#define QN_RTN_SCALE_FLOOR 1e-9f /* the research code's clamp_min(eps) on the scale */
/* Loops of the quantizers (rtn, gptq, spqr) with less work than this (multiply-adds or
   elements) stay on one thread: on a busy 2-core machine a parallel region's barrier
   costs more than a few ms of work saves. */
#define QN_QUANT_PARALLEL_MIN_WORK ((size_t)1 << 23)

typedef struct {
    int    bits;       /* 1..8 */
    size_t groupsize;  /* input columns sharing a scale and zero; 0 = the whole row */
} qn_rtn_opts;

qn_rtn_opts qn_rtn_opts_default(void);   /* 4 bits, per row */

/* The compressed form RTN and GPTQ produce: one code per weight and a min-max
   scale and zero per (row, group). Column j of codes is input feature perm[j]
   (GPTQ's act_order); groups are runs of groupsize columns in that order.
   Dequantized: W_hat[r, perm[j]] = scale[r, g] * (codes[r, j] - zero[r, g]),
   g = j / groupsize, with scale and zero read as fp16. */
typedef struct {
    size_t    d_out, d_in;
    int       bits;
    size_t    groupsize;   /* d_in when one group spans the row */
    size_t    n_groups;    /* ceil(d_in / groupsize) */
    uint8_t  *codes;       /* (d_out, d_in) values 0 .. 2^bits - 1 */
    uint16_t *scale;       /* (d_out, n_groups) fp16 */
    uint16_t *zero;        /* (d_out, n_groups) fp16, continuous (not rounded) */
    uint32_t *perm;        /* (d_in) or NULL for the identity order */
} qn_rtn_layer;

/* Allocates the arrays (perm only when with_perm); zero-fills codes. */
qn_status qn_rtn_layer_init(qn_rtn_layer *L, size_t d_out, size_t d_in, int bits, size_t groupsize,
                            bool with_perm, qn_err *err);
void      qn_rtn_layer_done(qn_rtn_layer *L);   /* frees the arrays; zeroed is fine */
/* W: (d_out, d_in) in the original column order. */
void      qn_rtn_dequantize(const qn_rtn_layer *L, float *W);
/* Bits per weight of everything in L as stored: codes, fp16 scale and zero per
   (row, group), the permutation at 16 bits per column. */
double    qn_rtn_bits_stored(const qn_rtn_layer *L);
/* Bits per weight as the research code counts them (get_average_number_of_bits):
   bits + 32 / groupsize for grouped statistics; statistics of whole rows are not counted. */
double    qn_rtn_bits(int bits, size_t groupsize, size_t d_in);

/* Smallest and largest of n >= 1 values x. */
void qn_rtn_minmax(const float *x, size_t n, float *lo, float *hi);
/* Min-max fit of n >= 1 values x (stride 1): scale and continuous zero. */
void qn_rtn_fit(const float *x, size_t n, int bits, float *scale, float *zero);
/* The same from the range [lo, hi] already known. */
void qn_rtn_fit_range(float lo, float hi, int bits, float *scale, float *zero);

/* The grid index of w: clamp(round(w / max(scale, floor) + zero), 0, maxq), ties to even. */
static inline uint8_t qn_rtn_code(float w, float scale, float zero, int maxq)
{
    float s = scale > QN_RTN_SCALE_FLOOR ? scale : QN_RTN_SCALE_FLOOR;
    float q = __builtin_nearbyintf(w / s + zero);
    if (!(q > 0.0f)) q = 0.0f;   /* NaN lands on 0 too */
    if (q > (float)maxq) q = (float)maxq;
    return (uint8_t)q;
}

static inline float qn_rtn_dequant(uint8_t q, float scale, float zero)
{
    return scale * ((float)q - zero);
}

/* Round-to-nearest of every weight (no use of H except for the error). res->W_hat is
   malloc'd; out (may be NULL) receives the compressed form. */
qn_status qn_rtn_quantize_layer(const qn_layer_problem *p, const qn_rtn_opts *opts, qn_layer_result *res,
                                qn_rtn_layer *out, qn_err *err);

#endif
