/* spqr_reference_cases.h: the SpQR configurations of
   ../shared/reference/layer-reference.json (the research code on
   synthetic-r512), by their "config" string, for the test and the benchmark
   that run them. Header-only: the two are separate programs. */
#ifndef QN_SPQR_REFERENCE_CASES_H
#define QN_SPQR_REFERENCE_CASES_H
#include <math.h>
#include <stddef.h>

typedef struct { const char *config; int bits; size_t beta1, beta2; double tau; } spqr_reference_case;

static const spqr_reference_case k_spqr_reference_cases[] = {
    { "w2 beta1=16 beta2=16 3-bit stats, no outliers", 2, 16, 16, INFINITY },
    { "w3 beta1=16 beta2=16 3-bit stats, no outliers", 3, 16, 16, INFINITY },
    { "w3 beta1=16 beta2=16 3-bit stats, tau=1.0", 3, 16, 16, 1.0 },
    { "w3 beta1=16 beta2=16 3-bit stats, tau=0.2", 3, 16, 16, 0.2 },
    { "w3 beta1=8 beta2=64 3-bit stats, no outliers", 3, 8, 64, INFINITY },
    { "w4 beta1=16 beta2=16 3-bit stats, tau=0.2 (near-lossless)", 4, 16, 16, 0.2 },
};
#define N_SPQR_REFERENCE_CASES (sizeof k_spqr_reference_cases / sizeof k_spqr_reference_cases[0])

#endif
