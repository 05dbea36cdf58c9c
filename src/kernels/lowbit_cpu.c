/* lowbit_cpu.c: the dense low-bit core (see lowbit_cpu.h).
   The AVX2 dot takes four rows at a time (eight for codes of at most 3 bits
   in groups of 16, SpQR's shape) and picks by code width:
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
#include "kernels/lowbit_cpu.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
#define QN_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define QN_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/* ---- plain C ---- */

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

/* ---- AVX2 ---- */

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

/* Software prefetch of the next block of rows (QN_LOWBIT_MAX_ROWS further,
   the same byte of each row) once per cache line of codes: each row is a
   short stream (2 KiB at 4 bits x 4096) that the hardware prefetcher barely
   learns before it ends, and from DRAM a block otherwise waits on its loads
   (int4 on one core: 1.34 ms cold against 0.77 ms warm). */
#define PREFETCH_LINE 64

QN_AVX2 static inline __attribute__((always_inline)) void
prefetch_next_block(const qn_lowbit_rows *b, size_t row_bytes, size_t off, size_t *next, const int NR)
{
    if (off < *next) return;
    size_t have = (size_t)(b->codes_end - b->codes);
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        size_t pos = ((size_t)i + QN_LOWBIT_MAX_ROWS) * row_bytes + off;
        if (pos < have) _mm_prefetch((const char *)(b->codes + pos), _MM_HINT_T0);
    }
    *next = (off / PREFETCH_LINE + 1) * PREFETCH_LINE;
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
    size_t pf = 0;   /* next line offset to prefetch */
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        prefetch_next_block(b, row_bytes, j * (size_t)bits / 8, &pf, NR);
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
    size_t row_bytes = qn_bits_row_bytes(b->n, 4), ng = n_groups(b->n, b->group);
    const __m256i low = _mm256_set1_epi32(15);
    __m256 total[QN_LOWBIT_MAX_ROWS];
    float tail[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) { total[i] = _mm256_setzero_ps(); tail[i] = 0; }
    size_t pf = 0;   /* next line offset to prefetch */
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        prefetch_next_block(b, row_bytes, j * (size_t)4 / 8, &pf, NR);
        __m256 acc0[QN_LOWBIT_MAX_ROWS], acc1[QN_LOWBIT_MAX_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
        for (; j + 16 <= c1; j += 16) {   /* the partial last group too: xsplit covers every whole 16 */
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
    size_t pf = 0;   /* next line offset to prefetch */
    for (size_t g = 0; g < ng; g++) {
        size_t j = g * b->group, c1 = j + b->group < b->n ? j + b->group : b->n;
        prefetch_next_block(b, row_bytes, j * (size_t)bits / 8, &pf, NR);
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

/* Groups of 16 (SpQR) and codes of at most 3 bits, eight rows at once: a
   group is one pair of chunks, so each row's table is built where it is used
   and one accumulator per row leaves the registers for eight rows, halving
   the per-group bookkeeping of the 4-row loop. */
QN_AVX2 static inline __attribute__((always_inline)) void
dot_rows8_table16_avx2(const qn_lowbit_rows *b, const float *x, float *y, const int bits, const bool wide4)
{
    enum { NR = 8 };
    size_t row_bytes = qn_bits_row_bytes(b->n, bits), ng = n_groups(b->n, 16), full = b->n / 16;
    const __m256 iota = bits == 1 ? _mm256_setr_ps(0, 1, 0, 1, 0, 1, 0, 1)
                      : bits == 2 ? _mm256_setr_ps(0, 1, 2, 3, 0, 1, 2, 3)
                                  : _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 acc[NR];
    float tail[NR];
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) { acc[i] = _mm256_setzero_ps(); tail[i] = 0; }
    size_t pf = 0;
    for (size_t g = 0; g < full; g++) {
        size_t j = g * 16;
        prefetch_next_block(b, row_bytes, j * (size_t)bits / 8, &pf, NR);
        __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
#pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const uint8_t *row = b->codes + (size_t)i * row_bytes;
            __m256 t = _mm256_mul_ps(_mm256_broadcast_ss(b->s + (size_t)i * b->stat_stride + g),
                                     _mm256_sub_ps(iota, _mm256_broadcast_ss(b->z + (size_t)i * b->stat_stride + g)));
            acc[i] = _mm256_fmadd_ps(lookup8(t, row, b->codes_end, j, bits, wide4), x0, acc[i]);
            acc[i] = _mm256_fmadd_ps(lookup8(t, row, b->codes_end, j + 8, bits, wide4), x1, acc[i]);
        }
    }
    if (full < ng)   /* the partial last group, plainly */
        for (int i = 0; i < NR; i++) {
            const uint8_t *row = b->codes + (size_t)i * row_bytes;
            float zi = b->z[(size_t)i * b->stat_stride + full], si = b->s[(size_t)i * b->stat_stride + full], t = 0;
            for (size_t k = full * 16; k < b->n; k++) t += ((float)qn_bits_get(row, k, bits) - zi) * x[k];
            tail[i] = si * t;
        }
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) y[i] = hsum8(acc[i]) + tail[i];
}

#define DOT8_VARIANT(B, W)                                                                        \
    QN_AVX2 static void dot8_avx2_##B##_##W(const qn_lowbit_rows *b, const float *x, float *y)     \
    {                                                                                             \
        dot_rows8_table16_avx2(b, x, y, B, W);                                                    \
    }
DOT8_VARIANT(1, 0)
DOT8_VARIANT(1, 1)
DOT8_VARIANT(2, 0)
DOT8_VARIANT(2, 1)
DOT8_VARIANT(3, 0)
DOT8_VARIANT(3, 1)

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

static bool wide4_ok(const qn_lowbit_rows *b)
{
    return b->codes + b->nr * qn_bits_row_bytes(b->n, b->bits) + 3 <= b->codes_end;
}

/* The 4-row variant for b (nr <= 4): groups of 16 (SpQR) unrolled; rows of
   1 to 3 bits take 4-byte loads unless their block ends within 3 bytes of
   the buffer. */
static dot_fn pick_dot4(const qn_lowbit_rows *b)
{
    bool g16 = b->group == 16, wide4 = wide4_ok(b);
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

/* The 8-row variant, only for full blocks of codes of at most 3 bits in groups of 16. */
static dot_fn pick_dot8(const qn_lowbit_rows *b)
{
    if (b->nr != 8 || b->group != 16 || b->bits > 3) return NULL;
    bool wide4 = wide4_ok(b);
    switch (b->bits) {
    case 1: return wide4 ? dot8_avx2_1_1 : dot8_avx2_1_0;
    case 2: return wide4 ? dot8_avx2_2_1 : dot8_avx2_2_0;
    default: return wide4 ? dot8_avx2_3_1 : dot8_avx2_3_0;
    }
}

/* b in blocks of at most 4 rows. */
static void dot_by_fours(const qn_lowbit_rows *b, const float *x, float *y)
{
    size_t row_bytes = qn_bits_row_bytes(b->n, b->bits);
    for (size_t i = 0; i < b->nr; i += 4) {
        qn_lowbit_rows sub = *b;
        sub.nr = b->nr - i < 4 ? b->nr - i : 4;
        sub.codes = b->codes + i * row_bytes;
        sub.s = b->s + i * b->stat_stride;
        sub.z = b->z + i * b->stat_stride;
        pick_dot4(&sub)(&sub, x, y + i);
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
        dot_fn f8 = pick_dot8(b);
        if (f8) f8(b, x, y);
        else dot_by_fours(b, x, y);
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
