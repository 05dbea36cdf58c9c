/* cpu_features.c: runtime SIMD detection (see cpu_features.h). */
#include "kernels/cpu_features.h"

qn_simd qn_cpu_simd(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
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
