/* aqlm_kernels.c: the inner loops of the AQLM quantizer (see aqlm_impl.h). The
   code search and the k-means assignment both score every codeword k of one
   codebook against a target e: score_k = n_k - 2 <C[k], e>, where n_k is the
   codeword's Gram term (||C[k]||^2 for k-means, C[k]^T H_JJ C[k] for the
   H-weighted search [AQLM eq. 5]). Codebooks are read transposed, CT (g, K), so
   the AVX2 path scores 8 codewords per register with one broadcast of e[a] each.
   Each fast function has a plain _ref twin (documentation and test oracle); the
   AVX2 one fuses multiplies and adds, so the two agree to rounding, not bits.
   SIMD code is compiled per function (target attribute), never -march. */
#include "engine/aqlm_impl.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_AVX2 1
#else
#define HAVE_X86_AVX2 0
#endif

/* ---- score_k = n_k - 2 <C[k], e> ---- */

void qn_aqlm_scores_ref(const float *CT, const float *n, size_t K, size_t g, const float *e, float *out)
{
    for (size_t k = 0; k < K; k++) {
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        out[k] = n[k] - 2.0f * dot;
    }
}

uint32_t qn_aqlm_argmin_ref(const float *CT, const float *n, size_t K, size_t g, const float *e, float *best)
{
    uint32_t arg = 0;
    float lo = INFINITY;
    for (size_t k = 0; k < K; k++) {
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        float sc = n[k] - 2.0f * dot;
        if (sc < lo) { lo = sc; arg = (uint32_t)k; }
    }
    *best = lo;
    return arg;
}

#if HAVE_X86_AVX2
/* Four independent chains of 8 codewords hide the FMA latency along a. */
__attribute__((target("avx2,fma")))
static void scores_avx2(const float *CT, const float *n, size_t K, size_t g, const float *e, float *out)
{
    const __m256 m2 = _mm256_set1_ps(-2.0f);
    size_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t a = 0; a < g; a++) {
            const float *c = CT + a * K + k;
            __m256 ea = _mm256_broadcast_ss(e + a);
            a0 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c), a0);
            a1 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 8), a1);
            a2 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 16), a2);
            a3 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 24), a3);
        }
        _mm256_storeu_ps(out + k, _mm256_fmadd_ps(m2, a0, _mm256_loadu_ps(n + k)));
        _mm256_storeu_ps(out + k + 8, _mm256_fmadd_ps(m2, a1, _mm256_loadu_ps(n + k + 8)));
        _mm256_storeu_ps(out + k + 16, _mm256_fmadd_ps(m2, a2, _mm256_loadu_ps(n + k + 16)));
        _mm256_storeu_ps(out + k + 24, _mm256_fmadd_ps(m2, a3, _mm256_loadu_ps(n + k + 24)));
    }
    for (; k + 8 <= K; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t a = 0; a < g; a++)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(e + a), _mm256_loadu_ps(CT + a * K + k), acc);
        _mm256_storeu_ps(out + k, _mm256_fmadd_ps(m2, acc, _mm256_loadu_ps(n + k)));
    }
    for (; k < K; k++) {
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        out[k] = n[k] - 2.0f * dot;
    }
}

/* Each lane keeps the first minimum of the codewords it sees (in increasing k),
   so the lane reduction with ties to the smaller index gives the first minimum. */
__attribute__((target("avx2,fma")))
static uint32_t argmin_avx2(const float *CT, const float *n, size_t K, size_t g, const float *e, float *best)
{
    const __m256 m2 = _mm256_set1_ps(-2.0f), eight = _mm256_set1_ps(8.0f);
    __m256 lo = _mm256_set1_ps(INFINITY), arg = _mm256_setzero_ps();
    __m256 idx = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    size_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t a = 0; a < g; a++) {
            const float *c = CT + a * K + k;
            __m256 ea = _mm256_broadcast_ss(e + a);
            a0 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c), a0);
            a1 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 8), a1);
            a2 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 16), a2);
            a3 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 24), a3);
        }
        __m256 sc[4] = { _mm256_fmadd_ps(m2, a0, _mm256_loadu_ps(n + k)),
                         _mm256_fmadd_ps(m2, a1, _mm256_loadu_ps(n + k + 8)),
                         _mm256_fmadd_ps(m2, a2, _mm256_loadu_ps(n + k + 16)),
                         _mm256_fmadd_ps(m2, a3, _mm256_loadu_ps(n + k + 24)) };
        for (int q = 0; q < 4; q++) {
            __m256 lt = _mm256_cmp_ps(sc[q], lo, _CMP_LT_OQ);
            lo = _mm256_blendv_ps(lo, sc[q], lt);
            arg = _mm256_blendv_ps(arg, idx, lt);
            idx = _mm256_add_ps(idx, eight);
        }
    }
    for (; k + 8 <= K; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t a = 0; a < g; a++)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(e + a), _mm256_loadu_ps(CT + a * K + k), acc);
        __m256 sc = _mm256_fmadd_ps(m2, acc, _mm256_loadu_ps(n + k));
        __m256 lt = _mm256_cmp_ps(sc, lo, _CMP_LT_OQ);
        lo = _mm256_blendv_ps(lo, sc, lt);
        arg = _mm256_blendv_ps(arg, idx, lt);
        idx = _mm256_add_ps(idx, eight);
    }
    float lv[8], la[8];
    _mm256_storeu_ps(lv, lo);
    _mm256_storeu_ps(la, arg);
    float bv = INFINITY;
    uint32_t ba = 0;
    for (int l = 0; l < 8; l++) {
        uint32_t al = (uint32_t)la[l];
        if (lv[l] < bv || (lv[l] == bv && al < ba)) { bv = lv[l]; ba = al; }
    }
    for (; k < K; k++) {   /* the tail comes after every lane's candidates: strict < keeps the first */
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        float sc = n[k] - 2.0f * dot;
        if (sc < bv) { bv = sc; ba = (uint32_t)k; }
    }
    *best = bv;
    return ba;
}
#endif

void qn_aqlm_scores(qn_simd simd, const float *CT, const float *n, size_t K, size_t g, const float *e,
                    float *out)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) { scores_avx2(CT, n, K, g, e, out); return; }
#endif
    (void)simd;
    qn_aqlm_scores_ref(CT, n, K, g, e, out);
}

uint32_t qn_aqlm_argmin(qn_simd simd, const float *CT, const float *n, size_t K, size_t g, const float *e,
                        float *best)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) return argmin_avx2(CT, n, K, g, e, best);
#endif
    (void)simd;
    return qn_aqlm_argmin_ref(CT, n, K, g, e, best);
}

/* ---- the two smallest scores ---- */

uint32_t qn_aqlm_argmin2_ref(const float *CT, const float *n, size_t K, size_t g, const float *e, float *best,
                             float *second)
{
    uint32_t arg = 0;
    float lo = INFINITY, lo2 = INFINITY;
    for (size_t k = 0; k < K; k++) {
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        float sc = n[k] - 2.0f * dot;
        if (sc < lo) { lo2 = lo; lo = sc; arg = (uint32_t)k; }
        else if (sc < lo2) lo2 = sc;
    }
    *best = lo;
    *second = lo2;
    return arg;
}

#if HAVE_X86_AVX2
/* Per lane the smallest (first on ties) and second smallest; then across lanes. */
__attribute__((target("avx2,fma")))
static uint32_t argmin2_avx2(const float *CT, const float *n, size_t K, size_t g, const float *e, float *best,
                             float *second)
{
    const __m256 m2 = _mm256_set1_ps(-2.0f), eight = _mm256_set1_ps(8.0f);
    __m256 lo = _mm256_set1_ps(INFINITY), lo2 = lo, arg = _mm256_setzero_ps();
    __m256 idx = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    size_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t a = 0; a < g; a++) {
            const float *c = CT + a * K + k;
            __m256 ea = _mm256_broadcast_ss(e + a);
            a0 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c), a0);
            a1 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 8), a1);
            a2 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 16), a2);
            a3 = _mm256_fmadd_ps(ea, _mm256_loadu_ps(c + 24), a3);
        }
        __m256 sc[4] = { _mm256_fmadd_ps(m2, a0, _mm256_loadu_ps(n + k)),
                         _mm256_fmadd_ps(m2, a1, _mm256_loadu_ps(n + k + 8)),
                         _mm256_fmadd_ps(m2, a2, _mm256_loadu_ps(n + k + 16)),
                         _mm256_fmadd_ps(m2, a3, _mm256_loadu_ps(n + k + 24)) };
        for (int q = 0; q < 4; q++) {
            __m256 lt = _mm256_cmp_ps(sc[q], lo, _CMP_LT_OQ);
            lo2 = _mm256_min_ps(lo2, _mm256_max_ps(sc[q], lo));  /* the larger of (sc, lo) competes for second */
            lo = _mm256_blendv_ps(lo, sc[q], lt);
            arg = _mm256_blendv_ps(arg, idx, lt);
            idx = _mm256_add_ps(idx, eight);
        }
    }
    for (; k + 8 <= K; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t a = 0; a < g; a++)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(e + a), _mm256_loadu_ps(CT + a * K + k), acc);
        __m256 sc = _mm256_fmadd_ps(m2, acc, _mm256_loadu_ps(n + k));
        __m256 lt = _mm256_cmp_ps(sc, lo, _CMP_LT_OQ);
        lo2 = _mm256_min_ps(lo2, _mm256_max_ps(sc, lo));
        lo = _mm256_blendv_ps(lo, sc, lt);
        arg = _mm256_blendv_ps(arg, idx, lt);
        idx = _mm256_add_ps(idx, eight);
    }
    float lv[8], l2[8], la[8];
    _mm256_storeu_ps(lv, lo);
    _mm256_storeu_ps(l2, lo2);
    _mm256_storeu_ps(la, arg);
    float bv = INFINITY, sv = INFINITY;
    uint32_t ba = 0;
    for (int l = 0; l < 8; l++) {
        uint32_t al = (uint32_t)la[l];
        if (lv[l] < bv || (lv[l] == bv && al < ba)) {
            sv = bv < sv ? bv : sv;
            bv = lv[l];
            ba = al;
        } else {
            sv = lv[l] < sv ? lv[l] : sv;
        }
        sv = l2[l] < sv ? l2[l] : sv;
    }
    for (; k < K; k++) {
        float dot = 0.0f;
        for (size_t a = 0; a < g; a++) dot += CT[a * K + k] * e[a];
        float sc = n[k] - 2.0f * dot;
        if (sc < bv) { sv = bv; bv = sc; ba = (uint32_t)k; }
        else if (sc < sv) sv = sc;
    }
    *best = bv;
    *second = sv;
    return ba;
}
#endif

uint32_t qn_aqlm_argmin2(qn_simd simd, const float *CT, const float *n, size_t K, size_t g, const float *e,
                         float *best, float *second)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) return argmin2_avx2(CT, n, K, g, e, best, second);
#endif
    (void)simd;
    return qn_aqlm_argmin2_ref(CT, n, K, g, e, best, second);
}

/* ---- the next candidate under a threshold ---- */

size_t qn_aqlm_next_below_ref(const float *sc, size_t K, size_t k0, float base, float scale, float thr, float *val)
{
    for (size_t k = k0; k < K; k++) {
        float v = base + scale * sc[k];
        if (v < thr) {
            *val = v;
            return k;
        }
    }
    return K;
}

#if HAVE_X86_AVX2
/* Separate multiply and add, as the plain C computes it: the same values. */
__attribute__((target("avx2,fma")))
static size_t next_below_avx2(const float *sc, size_t K, size_t k0, float base, float scale, float thr, float *val)
{
    size_t k = k0;
    for (; k < K && (k & 7); k++) {
        float v = base + scale * sc[k];
        if (v < thr) { *val = v; return k; }
    }
    const __m256 vb = _mm256_set1_ps(base), vs = _mm256_set1_ps(scale), vt = _mm256_set1_ps(thr);
    for (; k + 8 <= K; k += 8) {
        __m256 v = _mm256_add_ps(vb, _mm256_mul_ps(vs, _mm256_loadu_ps(sc + k)));
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, vt, _CMP_LT_OQ));
        if (mask) {
            size_t at = k + (size_t)__builtin_ctz((unsigned)mask);
            *val = base + scale * sc[at];
            return at;
        }
    }
    return qn_aqlm_next_below_ref(sc, K, k, base, scale, thr, val);
}
#endif

size_t qn_aqlm_next_below(qn_simd simd, const float *sc, size_t K, size_t k0, float base, float scale, float thr,
                          float *val)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) return next_below_avx2(sc, K, k0, base, scale, thr, val);
#endif
    (void)simd;
    return qn_aqlm_next_below_ref(sc, K, k0, base, scale, thr, val);
}

/* ---- n_k = C[k]^T A C[k] ---- */

static float gram_one(const float *CT, size_t K, size_t k, size_t g, const float *A)
{
    float acc = 0.0f;
    for (size_t a = 0; a < g; a++) {
        float t = 0.0f;
        for (size_t b = 0; b < g; b++) t += A[a * g + b] * CT[b * K + k];
        acc += CT[a * K + k] * t;
    }
    return acc;
}

void qn_aqlm_gram_ref(const float *CT, size_t K, size_t g, const float *A, float *n)
{
    for (size_t k = 0; k < K; k++) n[k] = gram_one(CT, K, k, g, A);
}

#if HAVE_X86_AVX2
__attribute__((target("avx2,fma")))
static void gram_avx2(const float *CT, size_t K, size_t g, const float *A, float *n)
{
    size_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t a = 0; a < g; a++) {
            __m256 t = _mm256_setzero_ps();
            for (size_t b = 0; b < g; b++)
                t = _mm256_fmadd_ps(_mm256_broadcast_ss(A + a * g + b), _mm256_loadu_ps(CT + b * K + k), t);
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(CT + a * K + k), t, acc);
        }
        _mm256_storeu_ps(n + k, acc);
    }
    for (; k < K; k++) n[k] = gram_one(CT, K, k, g, A);
}
#endif

void qn_aqlm_gram(qn_simd simd, const float *CT, size_t K, size_t g, const float *A, float *n)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) { gram_avx2(CT, K, g, A, n); return; }
#endif
    (void)simd;
    qn_aqlm_gram_ref(CT, K, g, A, n);
}

/* ---- y -= a x ---- */

#if HAVE_X86_AVX2
__attribute__((target("avx2,fma")))
static void axpy_neg_avx2(size_t n, float a, const float *x, float *y)
{
    __m256 na = _mm256_set1_ps(-a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(na, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] -= a * x[i];
}
#endif

void qn_aqlm_axpy_neg(qn_simd simd, size_t n, float a, const float *x, float *y)
{
#if HAVE_X86_AVX2
    if (simd >= QN_SIMD_AVX2) { axpy_neg_avx2(n, a, x, y); return; }
#endif
    (void)simd;
    for (size_t i = 0; i < n; i++) y[i] -= a * x[i];
}
