/* int_cpu.c: integer-weight kernels and the low-bit core (see int_cpu.h).
   The AVX2 dot takes four rows at a time and picks by code width:
   - up to 3 bits: each group's 2^bits weights s * (k - z) are built once in
     a register and the codes are looked up in it (vpermps), the direct
     formula at a shift, a look-up and an FMA per 8 weights;
   - 4 and 8 bits: the zero is factored out of each group,
       sum_g s_g sum_{j in g} (q_j - z_g) x_j = sum_g s_g A_g - sum_g s_g z_g X_g,
     A_g = sum_{j in g} q_j x_j in fp32 lanes, X_g = sum_{j in g} x_j once per
     input; per 8 weights a decode, a convert and an FMA. The cancellation
     this adds is bounded by (q + |z|) / |q - z|, a few units for RTN codes
     (z inside the code range, up to ~10 at 8 bits), far inside the tests'
     1e-5 of sum |w x| (observed 5e-8).
   The plain path keeps the direct formula, group by group. */
#include "kernels/int_cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
#define QN_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define QN_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/* Below this many tokens a batch is cheaper as one matvec per token than as
   dequantize + sgemm (the decode of a row block costs about 4 tokens of FMAs). */
#define INT_MIN_SGEMM_BATCH 4

/* ---- the low-bit core: plain C ---- */

static size_t n_groups(size_t n, size_t group) { return (n + group - 1) / group; }

void qn_lowbit_dot_ref(const qn_lowbit_rows *b, const float *x, float *y)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, b->bits), ng = n_groups(b->n, b->group);
    for (size_t i = 0; i < b->nr; i++) {
        const uint8_t *row = b->codes + i * row_bytes;
        const float *s = b->s + i * b->stat_stride, *z = b->z + i * b->stat_stride;
        float sum = 0;
        for (size_t g = 0; g < ng; g++) {
            size_t c1 = (g + 1) * b->group < b->n ? (g + 1) * b->group : b->n;
            float acc = 0;
            for (size_t j = g * b->group; j < c1; j++) acc += ((float)qn_bits_get(row, j, b->bits) - z[g]) * x[j];
            sum += s[g] * acc;
        }
        y[i] = sum;
    }
}

static void lowbit_dequant_plain(const qn_lowbit_rows *b, float *out)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, b->bits);
    for (size_t i = 0; i < b->nr; i++) {
        const uint8_t *row = b->codes + i * row_bytes;
        const float *s = b->s + i * b->stat_stride, *z = b->z + i * b->stat_stride;
        for (size_t j = 0; j < b->n; j++) {
            size_t g = j / b->group;
            out[i * b->n + j] = s[g] * ((float)qn_bits_get(row, j, b->bits) - z[g]);
        }
    }
}

/* ---- the low-bit core: AVX2 ---- */

#ifdef QN_HAVE_AVX2_PATH
/* Eight codes starting at column j (j * bits a whole number of bytes): one
   32-bit broadcast, then lane k shifts right by k * bits. Three-bit codes
   need 3 bytes, two-bit ones 2: the 4-byte load is taken when wide4 says the
   bytes after them are still in the buffer, else the bytes are read one by one. */
QN_AVX2 static inline __m256i decode8(const uint8_t *row, const uint8_t *end, size_t j, int bits, bool wide4)
{
    const uint8_t *p = row + j * (size_t)bits / 8;
    if (bits == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
    uint32_t word;
    if (bits == 4 || wide4 || p + 4 <= end) {
        memcpy(&word, p, 4);
    } else if (bits == 3) {
        word = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    } else if (bits == 2) {
        uint16_t h;
        memcpy(&h, p, 2);
        word = h;
    } else {
        word = p[0];
    }
    const __m256i shifts = _mm256_setr_epi32(0, bits, 2 * bits, 3 * bits, 4 * bits, 5 * bits, 6 * bits, 7 * bits);
    __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts);
    return _mm256_and_si256(v, _mm256_set1_epi32((1 << bits) - 1));
}

QN_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* NR rows at once: each load of x serves all of them and their accumulators
   are independent chains. NR, bits, GC (chunks of 8 per group when the
   caller knows it, else 0) and wide4 (every 4-byte load stays in the
   buffer) are constants after inlining. Full groups first, then the
   partial last group and any columns past its last chunk of 8. */
QN_AVX2 static inline __attribute__((always_inline)) void
dot_rows_avx2(const qn_lowbit_rows *b, const float *x, float *y, const int bits, const int NR, const size_t GC,
              const bool wide4)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, bits), ng = n_groups(b->n, b->group), full = b->n / b->group;
    size_t chunks = GC ? GC : b->group / 8;
    __m256 total[QN_LOWBIT_MAX_ROWS];
    float tail[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) { total[i] = _mm256_setzero_ps(); tail[i] = 0; }
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        __m256 acc[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) acc[i] = _mm256_setzero_ps();
        if (g < full) {
#pragma GCC unroll 2
            for (size_t c = 0; c < chunks; c++, j += 8) {
                __m256 xv = _mm256_loadu_ps(x + j);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    __m256i q = decode8(b->codes + (size_t)i * row_bytes, b->codes_end, j, bits, wide4);
                    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), xv, acc[i]);
                }
            }
        } else {
            for (; j + 8 <= c1; j += 8) {
                __m256 xv = _mm256_loadu_ps(x + j);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    __m256i q = decode8(b->codes + (size_t)i * row_bytes, b->codes_end, j, bits, false);
                    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), xv, acc[i]);
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                const uint8_t *row = b->codes + (size_t)i * row_bytes;
                float t = 0;
                for (size_t k = j; k < c1; k++) t += (float)qn_bits_get(row, k, bits) * x[k];
                tail[i] += b->s[(size_t)i * b->stat_stride + g] * t;
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++)
            total[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(b->s + (size_t)i * b->stat_stride + g), acc[i], total[i]);
    }
    /* the zeros: sum_g s_g z_g X_g, eight groups at a time */
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const float *s = b->s + (size_t)i * b->stat_stride, *z = b->z + (size_t)i * b->stat_stride;
        __m256 zt = _mm256_setzero_ps();
        size_t g = 0;
        for (; g + 8 <= ng; g += 8)
            zt = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(s + g), _mm256_loadu_ps(z + g)),
                                 _mm256_loadu_ps(b->xsum + g), zt);
        float zs = 0;
        for (; g < ng; g++) zs += s[g] * z[g] * b->xsum[g];
        y[i] = hsum8(total[i]) + tail[i] - (hsum8(zt) + zs);
    }
}

/* Four-bit codes, groups a multiple of 16 (and long enough to pay for their
   two accumulators: 64 or more): eight bytes widened to eight
   lanes hold sixteen codes, the even ones in the low nibbles and the odd in
   the high, which meet x split the same way (xsplit): per 16 weights one
   widening load, a mask, a shift, two converts and two FMAs. Zeros are
   factored out as in dot_rows_avx2. */
QN_AVX2 static inline __attribute__((always_inline)) void
dot_rows_nibble_avx2(const qn_lowbit_rows *b, const float *x, float *y, const int NR)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, 4), ng = n_groups(b->n, b->group), full = b->n / b->group;
    const __m256i low = _mm256_set1_epi32(15);
    __m256 total[QN_LOWBIT_MAX_ROWS];
    float tail[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) { total[i] = _mm256_setzero_ps(); tail[i] = 0; }
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        __m256 acc0[QN_LOWBIT_MAX_ROWS], acc1[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
        size_t end16 = g < full ? c1 : j;   /* the partial last group goes the plain way */
        for (; j + 16 <= end16; j += 16) {
            __m256 xe = _mm256_loadu_ps(b->xsplit + j), xo = _mm256_loadu_ps(b->xsplit + j + 8);
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                const uint8_t *p = b->codes + (size_t)i * row_bytes + j / 2;
                __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
                acc0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, low)), xe, acc0[i]);
                acc1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), xo, acc1[i]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint8_t *row = b->codes + (size_t)i * row_bytes;
            float t = 0;
            for (size_t k = j; k < c1; k++) t += (float)qn_bits_get(row, k, 4) * x[k];
            __m256 si = _mm256_broadcast_ss(b->s + (size_t)i * b->stat_stride + g);
            total[i] = _mm256_fmadd_ps(si, _mm256_add_ps(acc0[i], acc1[i]), total[i]);
            tail[i] += b->s[(size_t)i * b->stat_stride + g] * t;
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const float *s = b->s + (size_t)i * b->stat_stride, *z = b->z + (size_t)i * b->stat_stride;
        __m256 zt = _mm256_setzero_ps();
        size_t g = 0;
        for (; g + 8 <= ng; g += 8)
            zt = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(s + g), _mm256_loadu_ps(z + g)),
                                 _mm256_loadu_ps(b->xsum + g), zt);
        float zs = 0;
        for (; g < ng; g++) zs += s[g] * z[g] * b->xsum[g];
        y[i] = hsum8(total[i]) + tail[i] - (hsum8(zt) + zs);
    }
}

QN_AVX2 static void dot_avx2_nibble(const qn_lowbit_rows *b, const float *x, float *y)
{
    switch (b->nr) {
    case 4: dot_rows_nibble_avx2(b, x, y, 4); break;
    case 3: dot_rows_nibble_avx2(b, x, y, 3); break;
    case 2: dot_rows_nibble_avx2(b, x, y, 2); break;
    default: dot_rows_nibble_avx2(b, x, y, 1); break;
    }
}

/* Eight codes of at most 3 bits looked up in a table of eight weights: one
   broadcast word, a shift per lane, and vpermps (which reads only the low 3
   bits of each index, so no mask). */
QN_AVX2 static inline __m256 lookup8(const __m256 table, const uint8_t *row, const uint8_t *end, size_t j,
                                     const int bits, const bool wide4)
{
    const uint8_t *p = row + j * (size_t)bits / 8;
    uint32_t word;
    if (wide4 || p + 4 <= end) {
        memcpy(&word, p, 4);
    } else {
        word = p[0];
        if (bits > 1) word |= (uint32_t)p[1] << 8;
        if (bits > 2) word |= (uint32_t)p[2] << 16;
    }
    const __m256i shifts = _mm256_setr_epi32(0, bits, 2 * bits, 3 * bits, 4 * bits, 5 * bits, 6 * bits, 7 * bits);
    return _mm256_permutevar8x32_ps(table, _mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts));
}

/* Codes of at most 3 bits: each group's eight possible weights s * (k - z),
   k = 0..7, sit in one register per row and the codes are looked up in it:
   per 8 weights a broadcast load, a shift, the look-up and an FMA, with the
   direct formula and nothing to correct afterwards. Chunks alternate
   between two accumulators per row to keep the FMA chains short. */
QN_AVX2 static inline __attribute__((always_inline)) void
dot_rows_table_avx2(const qn_lowbit_rows *b, const float *x, float *y, const int bits, const int NR,
                    const size_t GC, const bool wide4)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, bits), ng = n_groups(b->n, b->group), full = b->n / b->group;
    size_t chunks = GC ? GC : b->group / 8;
    /* the look-up reads 3 bits: for narrower codes the bits above belong to the
       next code, so the table repeats with period 2^bits */
    const __m256 iota = bits == 1 ? _mm256_setr_ps(0, 1, 0, 1, 0, 1, 0, 1)
                      : bits == 2 ? _mm256_setr_ps(0, 1, 2, 3, 0, 1, 2, 3)
                                  : _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 acc0[QN_LOWBIT_MAX_ROWS], acc1[QN_LOWBIT_MAX_ROWS];
    float tail[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) { acc0[i] = acc1[i] = _mm256_setzero_ps(); tail[i] = 0; }
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        __m256 table[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++)
            table[i] = _mm256_mul_ps(_mm256_broadcast_ss(b->s + (size_t)i * b->stat_stride + g),
                                     _mm256_sub_ps(iota, _mm256_broadcast_ss(b->z + (size_t)i * b->stat_stride + g)));
        if (g < full) {
            size_t c = 0;
            for (; c + 2 <= chunks; c += 2, j += 16) {
                __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    const uint8_t *row = b->codes + (size_t)i * row_bytes;
                    acc0[i] = _mm256_fmadd_ps(lookup8(table[i], row, b->codes_end, j, bits, wide4), x0, acc0[i]);
                    acc1[i] = _mm256_fmadd_ps(lookup8(table[i], row, b->codes_end, j + 8, bits, wide4), x1, acc1[i]);
                }
            }
            if (c < chunks) {
                __m256 x0 = _mm256_loadu_ps(x + j);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++)
                    acc0[i] = _mm256_fmadd_ps(lookup8(table[i], b->codes + (size_t)i * row_bytes, b->codes_end, j,
                                                      bits, wide4), x0, acc0[i]);
            }
            continue;
        }
        for (; j + 8 <= c1; j += 8) {   /* the partial last group */
            __m256 x0 = _mm256_loadu_ps(x + j);
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++)
                acc0[i] = _mm256_fmadd_ps(lookup8(table[i], b->codes + (size_t)i * row_bytes, b->codes_end, j, bits,
                                                  false), x0, acc0[i]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint8_t *row = b->codes + (size_t)i * row_bytes;
            float zi = b->z[(size_t)i * b->stat_stride + g], si = b->s[(size_t)i * b->stat_stride + g], t = 0;
            for (size_t k = j; k < c1; k++) t += ((float)qn_bits_get(row, k, bits) - zi) * x[k];
            tail[i] += si * t;
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) y[i] = hsum8(_mm256_add_ps(acc0[i], acc1[i])) + tail[i];
}

#define DOT_VARIANT(B, GC, W)                                                                     \
    QN_AVX2 static void dot_avx2_##B##_##GC##_##W(const qn_lowbit_rows *b, const float *x, float *y) \
    {                                                                                             \
        switch (b->nr) {                                                                          \
        case 4: DOT_ROWS(b, x, y, B, 4, GC, W); break;                                            \
        case 3: DOT_ROWS(b, x, y, B, 3, GC, W); break;                                            \
        case 2: DOT_ROWS(b, x, y, B, 2, GC, W); break;                                            \
        default: DOT_ROWS(b, x, y, B, 1, GC, W); break;                                           \
        }                                                                                         \
    }
#define DOT_BITS(B) DOT_VARIANT(B, 0, 1) DOT_VARIANT(B, 2, 1) DOT_VARIANT(B, 0, 0) DOT_VARIANT(B, 2, 0)
#define DOT_ROWS dot_rows_table_avx2
DOT_BITS(1)
DOT_BITS(2)
DOT_BITS(3)
#undef DOT_ROWS
#define DOT_ROWS dot_rows_avx2
DOT_VARIANT(4, 0, 1)
DOT_VARIANT(4, 2, 1)
DOT_VARIANT(8, 0, 1)
DOT_VARIANT(8, 2, 1)
#undef DOT_ROWS

typedef void (*dot_fn)(const qn_lowbit_rows *b, const float *x, float *y);

/* The variant for b: groups of 16 (SpQR) unrolled; rows of 1 to 3 bits take
   4-byte loads unless their block ends within 3 bytes of the buffer. */
static dot_fn pick_dot(const qn_lowbit_rows *b)
{
    bool g16 = b->group == 16, wide4 = b->codes + b->nr * qn_bits_row_bytes(b->n, b->bits) + 3 <= b->codes_end;
    switch (b->bits) {
    case 1: return g16 ? (wide4 ? dot_avx2_1_2_1 : dot_avx2_1_2_0) : (wide4 ? dot_avx2_1_0_1 : dot_avx2_1_0_0);
    case 2: return g16 ? (wide4 ? dot_avx2_2_2_1 : dot_avx2_2_2_0) : (wide4 ? dot_avx2_2_0_1 : dot_avx2_2_0_0);
    case 3: return g16 ? (wide4 ? dot_avx2_3_2_1 : dot_avx2_3_2_0) : (wide4 ? dot_avx2_3_0_1 : dot_avx2_3_0_0);
    case 4:
        if (b->xsplit && b->group % 16 == 0 && b->group >= 64) return dot_avx2_nibble;   /* per-group cost */
        return g16 ? dot_avx2_4_2_1 : dot_avx2_4_0_1;
    default: return g16 ? dot_avx2_8_2_1 : dot_avx2_8_0_1;
    }
}

QN_AVX2 static void dequant_avx2(const qn_lowbit_rows *b, float *out)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, b->bits), ng = n_groups(b->n, b->group);
    for (size_t i = 0; i < b->nr; i++) {
        const uint8_t *row = b->codes + i * row_bytes;
        const float *s = b->s + i * b->stat_stride, *z = b->z + i * b->stat_stride;
        float *o = out + i * b->n;
        for (size_t g = 0; g < ng; g++) {
            size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
            __m256 sv = _mm256_set1_ps(s[g]), zv = _mm256_set1_ps(z[g]);
            for (; j + 8 <= c1; j += 8) {
                __m256 q = _mm256_cvtepi32_ps(decode8(row, b->codes_end, j, b->bits, false));
                _mm256_storeu_ps(o + j, _mm256_mul_ps(sv, _mm256_sub_ps(q, zv)));
            }
            for (; j < c1; j++) o[j] = s[g] * ((float)qn_bits_get(row, j, b->bits) - z[g]);
        }
    }
}

QN_AVX2 static void halves_to_floats_avx2(const uint16_t *h, float *f, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(h + i))));
    for (; i < n; i++) f[i] = qn_half_to_float(h[i]);
}

/* The AVX2 path needs every group to start on a whole byte of codes (group
   a multiple of 8) and a decodable width. */
static bool avx2_fits(const qn_lowbit_rows *b)
{
    return b->group % 8 == 0 && (b->bits <= 4 || b->bits == 8);
}
#endif


void qn_lowbit_group_sums(const float *x, size_t n, size_t group, float *xsum)
{
    for (size_t g = 0; g * group < n; g++) {
        size_t c1 = (g + 1) * group < n ? (g + 1) * group : n;
        float sum = 0;
        for (size_t j = g * group; j < c1; j++) sum += x[j];
        xsum[g] = sum;
    }
}

void qn_lowbit_split16(const float *x, size_t n, float *out)
{
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (size_t l = 0; l < 8; l++) {
            out[j + l] = x[j + 2 * l];
            out[j + 8 + l] = x[j + 2 * l + 1];
        }
    for (; j < n; j++) out[j] = x[j];
}

void qn_lowbit_dot(const qn_lowbit_rows *b, const float *x, float *y, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2 && avx2_fits(b) && b->xsum) {
        pick_dot(b)(b, x, y);
        return;
    }
#else
    (void)simd;
#endif
    qn_lowbit_dot_ref(b, x, y);
}

void qn_lowbit_dequant(const qn_lowbit_rows *b, float *out, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2 && avx2_fits(b)) { dequant_avx2(b, out); return; }
#else
    (void)simd;
#endif
    lowbit_dequant_plain(b, out);
}

#ifdef QN_HAVE_AVX2_PATH
QN_AVX2 static void affine_avx2(const uint8_t *row, const uint8_t *end, int bits, size_t n, const float *scale,
                               const float *zero, float *out)
{
    size_t i = 0, safe = n;   /* chunks below `safe` may take 4-byte loads */
    while (safe >= 8 && row + ((safe - 8) * (size_t)bits) / 8 + 4 > end) safe -= 8;
    for (; i + 8 <= safe; i += 8) {
        __m256 q = _mm256_cvtepi32_ps(decode8(row, end, i, bits, true));
        __m256 d = _mm256_sub_ps(q, _mm256_loadu_ps(zero + i));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(scale + i), d));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 q = _mm256_cvtepi32_ps(decode8(row, end, i, bits, false));
        __m256 d = _mm256_sub_ps(q, _mm256_loadu_ps(zero + i));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(scale + i), d));
    }
    for (; i < n; i++) out[i] = scale[i] * ((float)qn_bits_get(row, i, bits) - zero[i]);
}
#endif

void qn_lowbit_affine(const uint8_t *row, const uint8_t *end, int bits, size_t n, const float *scale,
                      const float *zero, float *out, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2 && (bits <= 4 || bits == 8)) { affine_avx2(row, end, bits, n, scale, zero, out); return; }
#else
    (void)simd;
    (void)end;
#endif
    for (size_t i = 0; i < n; i++) out[i] = scale[i] * ((float)qn_bits_get(row, i, bits) - zero[i]);
}

static void halves_to_floats(const uint16_t *h, float *f, size_t n, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2) { halves_to_floats_avx2(h, f, n); return; }
#else
    (void)simd;
#endif
    for (size_t i = 0; i < n; i++) f[i] = qn_half_to_float(h[i]);
}

/* ---- integer weights ---- */

static size_t int_groups(const qn_int_weights *w) { return n_groups(w->d_in, w->group_size); }

/* Rows r0 .. r0+nr-1 as a low-bit block, their fp16 stats converted into s, z (nr, ng). */
static qn_lowbit_rows int_block(const qn_int_weights *w, size_t r0, size_t nr, float *s, float *z, qn_simd simd)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    halves_to_floats(w->scales + r0 * ng, s, nr * ng, simd);
    halves_to_floats(w->zeros + r0 * ng, z, nr * ng, simd);
    return (qn_lowbit_rows){ .bits = w->bits, .n = w->d_in, .group = w->group_size, .nr = nr,
                             .codes = w->codes + r0 * row_bytes, .codes_end = w->codes + w->d_out * row_bytes,
                             .s = s, .z = z, .stat_stride = ng };
}

static bool mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

static qn_status check_bytes(const char *name, const char *what, const void *p, size_t have, size_t want,
                             qn_err *err)
{
    if (!p) return qn_err_set(err, QN_ERR_FORMAT, "%s: %s missing", name, what);
    if (have != want)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: %s hold %zu bytes, expected %zu for the declared shape", name,
                          what, have, want);
    return QN_OK;
}

static qn_status check_halves(const char *name, const char *what, const uint16_t *h, size_t n, size_t ng,
                              qn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!qn_half_is_finite(h[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: %s[%zu][%zu] is not finite (fp16 0x%04x)", name, what,
                              i / ng, i % ng, h[i]);
    return QN_OK;
}

qn_status qn_int_validate(const qn_int_weights *w, const char *name, qn_err *err)
{
    qn_status s;
    if (!w) return qn_err_set(err, QN_ERR_FORMAT, "%s: no integer layout", name);
    if (w->bits != 2 && w->bits != 3 && w->bits != 4 && w->bits != 8)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %d-bit integers: expected 2, 3, 4 or 8", name, w->bits);
    if (w->d_out == 0 || w->d_in == 0 || w->group_size == 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: empty shape %zu x %zu, group %zu", name, w->d_out, w->d_in,
                          w->group_size);
    size_t ng = int_groups(w), codes_bytes, stats;
    if (!mul_ok(w->d_out, qn_bits_row_bytes(w->d_in, w->bits), &codes_bytes) || !mul_ok(w->d_out, ng, &stats) ||
        !mul_ok(stats, 2, &stats))
        return qn_err_set(err, QN_ERR_SHAPE, "%s: shape %zu x %zu overflows", name, w->d_out, w->d_in);
    if ((s = check_bytes(name, "codes", w->codes, w->codes_nbytes, codes_bytes, err))) return s;
    if ((s = check_bytes(name, "scales", w->scales, w->scales_nbytes, stats, err))) return s;
    if ((s = check_bytes(name, "zeros", w->zeros, w->zeros_nbytes, stats, err))) return s;
    if ((s = check_halves(name, "scales", w->scales, stats / 2, ng, err))) return s;
    return check_halves(name, "zeros", w->zeros, stats / 2, ng, err);
}

double qn_int_bits_per_weight(const qn_int_weights *w)
{
    double weights = (double)w->d_out * (double)w->d_in;
    return ((double)w->d_out * 8.0 * (double)qn_bits_row_bytes(w->d_in, w->bits) +
            32.0 * (double)w->d_out * (double)int_groups(w)) / weights;
}

void qn_int_to_dense_ref(const qn_int_weights *w, float *W)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++)
        for (size_t c = 0; c < w->d_in; c++) {
            size_t g = c / w->group_size;
            float s = qn_half_to_float(w->scales[r * ng + g]), z = qn_half_to_float(w->zeros[r * ng + g]);
            W[r * w->d_in + c] = s * ((float)qn_bits_get(w->codes + r * row_bytes, c, w->bits) - z);
        }
}

void qn_int_matvec_ref(const qn_int_weights *w, const float *x, float *y)
{
    size_t ng = int_groups(w), row_bytes = qn_bits_row_bytes(w->d_in, w->bits);
    for (size_t r = 0; r < w->d_out; r++) {
        float sum = 0;
        for (size_t c = 0; c < w->d_in; c++) {
            size_t g = c / w->group_size;
            float s = qn_half_to_float(w->scales[r * ng + g]), z = qn_half_to_float(w->zeros[r * ng + g]);
            sum += s * ((float)qn_bits_get(w->codes + r * row_bytes, c, w->bits) - z) * x[c];
        }
        y[r] = sum;
    }
}

qn_status qn_int_matvec(const qn_int_weights *w, const float *x, float *y, qn_simd simd, qn_err *err)
{
    simd = qn_simd_clamp(simd);
    size_t ng = int_groups(w), per_thread = 2 * QN_LOWBIT_MAX_ROWS * ng;
    size_t n_blocks = (w->d_out + QN_LOWBIT_MAX_ROWS - 1) / QN_LOWBIT_MAX_ROWS;
    int nt = qn_cpu_team(w->d_out, w->d_in);
    /* per-thread stats, then xsum (ng), then xsplit (d_in) */
    float *scratch = malloc(((size_t)nt * per_thread + ng + w->d_in) * sizeof *scratch);
    if (!scratch) return qn_err_set(err, QN_ERR_NOMEM, "int matvec: out of memory for %d x %zu stats", nt, per_thread);
    float *xsum = scratch + (size_t)nt * per_thread, *xsplit = w->bits == 4 ? xsum + ng : NULL;
    qn_lowbit_group_sums(x, w->d_in, w->group_size, xsum);
    if (xsplit) qn_lowbit_split16(x, w->d_in, xsplit);
#pragma omp parallel num_threads(nt)
    {
        float *s = scratch + (size_t)omp_get_thread_num() * per_thread, *z = s + QN_LOWBIT_MAX_ROWS * ng;
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            size_t r0 = blk * QN_LOWBIT_MAX_ROWS;
            size_t nr = w->d_out - r0 < QN_LOWBIT_MAX_ROWS ? w->d_out - r0 : QN_LOWBIT_MAX_ROWS;
            qn_lowbit_rows b = int_block(w, r0, nr, s, z, simd);
            b.xsum = xsum;
            b.xsplit = xsplit;
            qn_lowbit_dot(&b, x, y + r0, simd);
        }
    }
    free(scratch);
    return QN_OK;
}

typedef struct {
    const qn_int_weights *w;
    qn_simd simd;
} int_dequant_ctx;

/* qn_cpu_dequant_rows_fn; scratch holds the stats of QN_LOWBIT_MAX_ROWS rows. */
static void int_dequant_rows(const void *ctx, size_t r0, size_t r1, float *out, float *scratch)
{
    const int_dequant_ctx *c = ctx;
    size_t ng = int_groups(c->w);
    for (size_t r = r0; r < r1; r += QN_LOWBIT_MAX_ROWS) {
        size_t nr = r1 - r < QN_LOWBIT_MAX_ROWS ? r1 - r : QN_LOWBIT_MAX_ROWS;
        qn_lowbit_rows b = int_block(c->w, r, nr, scratch, scratch + QN_LOWBIT_MAX_ROWS * ng, c->simd);
        qn_lowbit_dequant(&b, out + (r - r0) * c->w->d_in, c->simd);
    }
}

qn_status qn_int_matmul(const qn_int_weights *w, const float *X, size_t n_tok, float *Y, qn_simd simd,
                        qn_err *err)
{
    simd = qn_simd_clamp(simd);
    if (n_tok < INT_MIN_SGEMM_BATCH) {
        for (size_t t = 0; t < n_tok; t++) {
            qn_status s = qn_int_matvec(w, X + t * w->d_in, Y + t * w->d_out, simd, err);
            if (s) return s;
        }
        return QN_OK;
    }
    int_dequant_ctx ctx = { w, simd };
    return qn_cpu_matmul_dequant(w->d_out, w->d_in, int_dequant_rows, &ctx, 2 * QN_LOWBIT_MAX_ROWS * int_groups(w), X,
                                 n_tok, Y, err);
}
