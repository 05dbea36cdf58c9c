/* kernel_cases.h: what the kernel tests share: a random well-formed matrix
   behind an initialised qn_linear with its dequantization, random inputs,
   and the error of a product measured against dequantize-then-BLAS. */
#ifndef QN_TEST_KERNEL_CASES_H
#define QN_TEST_KERNEL_CASES_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/linear.h"
#include "kernels/synth.h"

/* fp32 sums of up to 4096 products in another order than BLAS: the error is
   about sqrt(n) * 6e-8 = 4e-6 of sum_j |W_rj x_j| (n eps = 2.4e-4 at worst,
   never approached by random signs); 1e-5 leaves room and still catches a
   wrong code, group or scale (errors of order 1). */
#define KC_REL_TOL 1e-5

typedef struct {
    qn_synth  *s;
    qn_linear  lin;   /* initialised (validated, planned) */
    float     *W;     /* (d_out, d_in) reference dequantization */
    size_t     d_out, d_in;
} kc_case;

void   kc_make(kc_case *c, const qn_synth_opts *o, const char *name);
void   kc_free(kc_case *c);
float *kc_random(size_t n, uint64_t seed);   /* uniform [-1, 1], malloc'd */

/* max over tokens t and rows r of |Y[t][r] - (X W^T)[t][r]| / sum_j |W_rj X_tj|,
   the reference by cblas_sgemm; *at = t * d_out + r of the worst. */
double kc_err(const float *W, size_t d_out, size_t d_in, const float *X, size_t n_tok, const float *Y, size_t *at);

#endif
