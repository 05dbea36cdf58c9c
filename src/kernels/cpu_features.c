/* cpu_features.c: runtime SIMD detection (see cpu_features.h). */
#include "kernels/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
#include <cpuid.h>

/* CPUID leaf 1, ECX bit 29: clang (14) rejects __builtin_cpu_supports("f16c"). */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

qn_simd qn_cpu_simd(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return QN_SIMD_AVX2;
#endif
    return QN_SIMD_NONE;
}

qn_simd qn_simd_clamp(qn_simd want)
{
    qn_simd have = qn_cpu_simd();
    return want < have ? want : have;
}

const char *qn_simd_name(qn_simd s)
{
    return s == QN_SIMD_AVX2 ? "avx2" : "none";
}
