/* cpu_features.h: which SIMD path the CPU kernels may take on this machine.
   The kernels take a qn_simd argument instead of asking themselves, so tests
   can run the plain C path and the AVX2 path side by side on one machine and
   the answer is never cached in a global. SIMD code is compiled per function
   with __attribute__((target("avx2,fma,f16c"))), so the binary runs on any
   x86-64 (and the plain path on any other CPU); nothing here needs
   -march=native. Building with -DQN_NO_SIMD leaves the SIMD code out, as on
   a CPU that is not x86-64. This module detects; it does not pick kernels. */
#ifndef QN_CPU_FEATURES_H
#define QN_CPU_FEATURES_H
#include <stdbool.h>

typedef enum {
    QN_SIMD_NONE = 0,   /* plain C: correct on any CPU */
    QN_SIMD_AVX2,       /* x86-64 with AVX2, FMA and F16C (Haswell, Zen and later) */
} qn_simd;

/* The best path this CPU runs (__builtin_cpu_supports on x86-64, NONE elsewhere). */
qn_simd     qn_cpu_simd(void);
/* min(want, qn_cpu_simd()): what a caller asking for `want` may really use. */
qn_simd     qn_simd_clamp(qn_simd want);
const char *qn_simd_name(qn_simd s);   /* "none", "avx2" */

#endif
