/* aqlm_cpu.c: AQLM matvec and matmul on the CPU (see aqlm_cpu.h).
   Legend: M codebooks, B bits per code, G input columns per group,
   ng = d_in / G groups per row; codes (d_out, ng, M), codebooks (M, 2^B, G). */
#include "kernels/aqlm_cpu.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_NO_SIMD)
#define QN_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define QN_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/* Bytes of look-up table one tile covers: half of a 32 KiB L1, leaving room
   for the codes streaming past (2x8: 8 groups; 1x8: 16; 4x8: 4). */
#define LUT_TILE_BYTES ((size_t)16 << 10)
/* Below these many tokens a batch runs as one matvec per token. Dequantize +
   sgemm costs a fixed ~15-19 ms per 4096x4096 on one core plus ~0.35-0.6 ms
   a token; a table-route matvec 0.9-1.3 ms a token (2x8: crossover near 19),
   a codeword-route one 2.5 ms (1x16: near 9). */
#define AQLM_LUT_MIN_SGEMM_BATCH 16
#define AQLM_MIN_SGEMM_BATCH 8

/* Rows of a table-route block: eight scalar sums, as many as the look-up loop
   keeps in registers next to its indices. */
#define LUT_ROWS 8
_Static_assert(LUT_ROWS == 8, "lut_block takes a block's codes apart as two 32-bit words of four");

struct qn_aqlm_plan {
    bool     lut;           /* B == 8: table route */
    size_t   tile_groups;   /* groups per table tile */
    size_t   n_tiles;       /* ceil(ng / tile_groups) */
    size_t   n_blocks;      /* ceil(d_out / LUT_ROWS) */
    float   *cbT;           /* lut: (M, G, 256) f32 codebooks, transposed for the table build */
    uint8_t *codes;         /* lut: (n_tiles, n_blocks, tile_groups * M, LUT_ROWS): the codes of a
                               tile for eight rows interleaved, code i of the tile for rows
                               8b .. 8b+7 in one 8-byte word; padding rows and groups hold 0.
                               The kernels read only these: the caller's codes may go. */
};

static size_t groups(const qn_aqlm_weights *w) { return w->d_in / (size_t)w->in_group_size; }
static size_t code_bytes(const qn_aqlm_weights *w) { return w->nbits <= 8 ? 1 : 2; }

/* Code m of group g of row r: the stored value mod 2^B (aqlm.utils.unpack_int_data). */
static inline unsigned code_at(const qn_aqlm_weights *w, size_t r, size_t g, int m)
{
    size_t i = (r * groups(w) + g) * (size_t)w->n_codebooks + (size_t)m;
    unsigned v = w->nbits <= 8 ? ((const uint8_t *)w->codes)[i] : ((const uint16_t *)w->codes)[i];
    return v & ((1u << w->nbits) - 1u);
}

/* ---- validation ---- */

static qn_status check_codes(const qn_aqlm_weights *w, const char *name, qn_err *err)
{
    if (w->nbits == 8 || w->nbits == 16) return QN_OK;   /* every stored value is a code */
    long lo = -(1L << (w->nbits - 1)), hi = (1L << w->nbits) - 1;
    size_t n = w->d_out * groups(w) * (size_t)w->n_codebooks;
    for (size_t i = 0; i < n; i++) {
        long v = w->nbits < 8 ? (long)((const int8_t *)w->codes)[i] : (long)((const int16_t *)w->codes)[i];
        if (v < lo || v > hi) {
            size_t per_row = groups(w) * (size_t)w->n_codebooks;
            return qn_err_set(err, QN_ERR_FORMAT,
                              "%s: codes[%zu][%zu][%zu] = %ld is beyond a %d-bit code (stored %ld .. %ld)", name,
                              i / per_row, i % per_row / (size_t)w->n_codebooks, i % (size_t)w->n_codebooks, v,
                              w->nbits, lo, hi);
        }
    }
    return QN_OK;
}

qn_status qn_aqlm_validate(const qn_aqlm_weights *w, const char *name, qn_err *err)
{
    qn_status s;
    if (!w) return qn_err_set(err, QN_ERR_FORMAT, "%s: no AQLM layout", name);
    if (w->n_codebooks < 1 || w->n_codebooks > 16 || w->nbits < 1 || w->nbits > 16)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %dx%d codebooks: expected 1..16 codebooks of 1..16 bits",
                          name, w->n_codebooks, w->nbits);
    if (w->out_group_size != 1)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: output groups of %d: the CPU kernels take 1", name,
                          w->out_group_size);
    if (w->in_group_size < 1 || w->in_group_size > 256)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: input groups of %d: expected 1..256", name,
                          w->in_group_size);
    if (w->d_out == 0 || w->d_in == 0 || w->d_in % (size_t)w->in_group_size)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: %zu x %zu does not split into input groups of %d", name, w->d_out,
                          w->d_in, w->in_group_size);
    if (w->d_out > (size_t)1 << 30 || w->d_in > (size_t)1 << 30)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: %zu x %zu is too large", name, w->d_out, w->d_in);
    size_t cb_entries = (size_t)w->n_codebooks << w->nbits;
    if ((s = qn_check_bytes(name, "codes", w->codes, w->codes_nbytes,
                         w->d_out * groups(w) * (size_t)w->n_codebooks * code_bytes(w), err)))
        return s;
    if ((s = qn_check_bytes(name, "codebooks", w->codebooks, w->codebooks_nbytes,
                         cb_entries * (size_t)w->in_group_size * 2, err)))
        return s;
    if ((s = qn_check_bytes(name, "scales", w->scales, w->scales_nbytes, w->d_out * 2, err))) return s;
    if ((s = check_codes(w, name, err))) return s;
    for (size_t i = 0; i < cb_entries * (size_t)w->in_group_size; i++)
        if (!qn_half_is_finite(w->codebooks[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: codebooks[%zu][%zu][0][%zu] is not finite (fp16 0x%04x)",
                              name, i / ((size_t)w->in_group_size << w->nbits),
                              i / (size_t)w->in_group_size % ((size_t)1 << w->nbits), i % (size_t)w->in_group_size,
                              w->codebooks[i]);
    for (size_t r = 0; r < w->d_out; r++)
        if (!qn_half_is_finite(w->scales[r]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: scales[%zu] is not finite (fp16 0x%04x)", name, r,
                              w->scales[r]);
    return QN_OK;
}

double qn_aqlm_bits_per_weight(const qn_aqlm_weights *w)
{
    double bytes = (double)(w->d_out * groups(w) * (size_t)w->n_codebooks * code_bytes(w)) +
                   2.0 * (double)((size_t)w->n_codebooks << w->nbits) * w->in_group_size + 2.0 * (double)w->d_out;
    return 8.0 * bytes / ((double)w->d_out * (double)w->d_in);
}

/* ---- reference ---- */

void qn_aqlm_to_dense_ref(const qn_aqlm_weights *w, float *W)
{
    size_t G = (size_t)w->in_group_size;
    for (size_t r = 0; r < w->d_out; r++) {
        float s = qn_half_to_float(w->scales[r]);
        for (size_t g = 0; g < groups(w); g++)
            for (size_t j = 0; j < G; j++) {
                float v = 0;
                for (int m = 0; m < w->n_codebooks; m++) {
                    size_t k = ((size_t)m << w->nbits) + code_at(w, r, g, m);
                    v += qn_half_to_float(w->codebooks[k * G + j]);
                }
                W[r * w->d_in + g * G + j] = s * v;
            }
    }
}

void qn_aqlm_matvec_ref(const qn_aqlm_weights *w, const float *x, float *y)
{
    size_t G = (size_t)w->in_group_size;
    for (size_t r = 0; r < w->d_out; r++) {
        float sum = 0;
        for (size_t g = 0; g < groups(w); g++)
            for (int m = 0; m < w->n_codebooks; m++) {
                const uint16_t *cw = w->codebooks + (((size_t)m << w->nbits) + code_at(w, r, g, m)) * G;
                for (size_t j = 0; j < G; j++) sum += qn_half_to_float(cw[j]) * x[g * G + j];
            }
        y[r] = qn_half_to_float(w->scales[r]) * sum;
    }
}

/* ---- plan ---- */

qn_status qn_aqlm_plan_create(qn_aqlm_plan **out, const qn_aqlm_weights *w, qn_simd simd, qn_err *err)
{
    (void)simd;
    *out = NULL;
    qn_aqlm_plan *p = calloc(1, sizeof *p);
    if (!p) return qn_err_set(err, QN_ERR_NOMEM, "aqlm plan: out of memory");
    p->lut = w->nbits == 8;
    if (p->lut) {
        size_t M = (size_t)w->n_codebooks, G = (size_t)w->in_group_size;
        size_t per_group = M * 256 * sizeof(float);
        p->tile_groups = LUT_TILE_BYTES / per_group ? LUT_TILE_BYTES / per_group : 1;
        p->cbT = malloc(M * G * 256 * sizeof *p->cbT);
        if (!p->cbT) {
            free(p);
            return qn_err_set(err, QN_ERR_NOMEM, "aqlm plan: out of memory for %zu codebooks", M);
        }
        for (size_t m = 0; m < M; m++)
            for (size_t k = 0; k < 256; k++)
                for (size_t j = 0; j < G; j++)
                    p->cbT[(m * G + j) * 256 + k] = qn_half_to_float(w->codebooks[(m * 256 + k) * G + j]);
        size_t ng = groups(w), TM = p->tile_groups * M;
        p->n_tiles = (ng + p->tile_groups - 1) / p->tile_groups;
        p->n_blocks = (w->d_out + LUT_ROWS - 1) / LUT_ROWS;
        p->codes = calloc(p->n_tiles * p->n_blocks * TM * LUT_ROWS, 1);
        if (!p->codes) {
            qn_aqlm_plan_free(p);
            return qn_err_set(err, QN_ERR_NOMEM, "aqlm plan: out of memory for %zu interleaved codes",
                              w->d_out * ng * M);
        }
        const uint8_t *src = w->codes;
        for (size_t r = 0; r < w->d_out; r++)
            for (size_t g = 0; g < ng; g++)
                for (size_t m = 0; m < M; m++) {
                    size_t t = g / p->tile_groups, i = (g % p->tile_groups) * M + m;
                    p->codes[((t * p->n_blocks + r / LUT_ROWS) * TM + i) * LUT_ROWS + r % LUT_ROWS] =
                        src[(r * ng + g) * M + m];
                }
    }
    *out = p;
    return QN_OK;
}

void qn_aqlm_plan_free(qn_aqlm_plan *p)
{
    if (!p) return;
    free(p->cbT);
    free(p->codes);
    free(p);
}

/* ---- look-up-table route (B = 8) ---- */

/* L (M, 256) for one input group xg (G): L[m][k] = <codebook_m[k], xg>,
   eight codewords at a time so the sums stay in registers. */
static void lut_build_plain(const float *cbT, size_t M, size_t G, const float *xg, float *L)
{
    for (size_t m = 0; m < M; m++)
        for (size_t k = 0; k < 256; k += 8) {
            float a[8] = { 0 };
            for (size_t j = 0; j < G; j++) {
                const float *c = cbT + (m * G + j) * 256 + k;
                for (size_t l = 0; l < 8; l++) a[l] += xg[j] * c[l];
            }
            memcpy(L + m * 256 + k, a, sizeof a);
        }
}

#ifdef QN_HAVE_AVX2_PATH
QN_AVX2 static void lut_build_avx2(const float *cbT, size_t M, size_t G, const float *xg, float *L)
{
    for (size_t m = 0; m < M; m++)
        for (size_t k = 0; k < 256; k += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t j = 0; j < G; j++) {
                const float *c = cbT + (m * G + j) * 256 + k;
                __m256 xj = _mm256_set1_ps(xg[j]);
                a0 = _mm256_fmadd_ps(xj, _mm256_loadu_ps(c), a0);
                a1 = _mm256_fmadd_ps(xj, _mm256_loadu_ps(c + 8), a1);
                a2 = _mm256_fmadd_ps(xj, _mm256_loadu_ps(c + 16), a2);
                a3 = _mm256_fmadd_ps(xj, _mm256_loadu_ps(c + 24), a3);
            }
            float *o = L + m * 256 + k;
            _mm256_storeu_ps(o, a0);
            _mm256_storeu_ps(o + 8, a1);
            _mm256_storeu_ps(o + 16, a2);
            _mm256_storeu_ps(o + 24, a3);
        }
}
#endif

/* acc[l] += sum_i T[i][c[i][l]] for the eight rows l of a block: tables of
   consecutive (group, codebook) pairs follow each other, as the codes do.
   Eight scalar sums in registers, each lookup one load-and-add, the codes of
   four rows taken apart from one 32-bit load: measured on Zen 4, 0.42 TSC
   cycles a lookup against 0.93 for AVX2 gathers and 1.4 when the compiler
   packs the sums into vectors (hence the empty asm, which only pins them). */
static void lut_block(const float *T, const uint8_t *c, size_t n, float *acc)
{
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (size_t i = 0; i < n; i++, c += LUT_ROWS, T += 256) {
        uint32_t k0, k1;
        memcpy(&k0, c, 4);
        memcpy(&k1, c + 4, 4);
        a0 += T[k0 & 0xff];
        a1 += T[(k0 >> 8) & 0xff];
        a2 += T[(k0 >> 16) & 0xff];
        a3 += T[k0 >> 24];
        a4 += T[k1 & 0xff];
        a5 += T[(k1 >> 8) & 0xff];
        a6 += T[(k1 >> 16) & 0xff];
        a7 += T[k1 >> 24];
#if defined(__x86_64__) && defined(__GNUC__)
        __asm__("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7));
#endif
    }
    acc[0] += a0; acc[1] += a1; acc[2] += a2; acc[3] += a3;
    acc[4] += a4; acc[5] += a5; acc[6] += a6; acc[7] += a7;
}

/* The tables of a matvec, kept from call to call: a fresh allocation each
   token costs page faults (glibc maps blocks this large) and cold lines,
   ~10 us of a 576x576 product's ~40. One buffer for every matrix (the largest
   asked for so far: 384 KiB at 1536 columns, 2x8), taken by one call at a
   time; a call that finds it taken (another thread's matvec) allocates its own. */
static struct {
    atomic_flag busy;
    float      *buf;
    size_t      cap;   /* floats */
} g_lut_scratch = { ATOMIC_FLAG_INIT, NULL, 0 };

/* n floats for one call; *shared says whether to give it back with lut_put. */
static float *lut_take(size_t n, bool *shared)
{
    *shared = !atomic_flag_test_and_set_explicit(&g_lut_scratch.busy, memory_order_acquire);
    if (!*shared) return malloc(n * sizeof(float));
    if (g_lut_scratch.cap < n) {
        free(g_lut_scratch.buf);
        g_lut_scratch.buf = malloc(n * sizeof(float));
        g_lut_scratch.cap = g_lut_scratch.buf ? n : 0;
    }
    if (!g_lut_scratch.buf) atomic_flag_clear_explicit(&g_lut_scratch.busy, memory_order_release);
    return g_lut_scratch.buf;
}

static void lut_put(float *buf, bool shared)
{
    if (shared) atomic_flag_clear_explicit(&g_lut_scratch.busy, memory_order_release);
    else free(buf);
}

static qn_status matvec_lut(const qn_aqlm_weights *w, const qn_aqlm_plan *p, const float *x, float *y,
                            qn_simd simd, qn_err *err)
{
    size_t M = (size_t)w->n_codebooks, G = (size_t)w->in_group_size, ng = groups(w), TM = p->tile_groups * M;
    /* tables (ng, M, 256), then the sums of the padded rows (n_blocks * 8) */
    bool shared;
    float *lut = lut_take(ng * M * 256 + p->n_blocks * LUT_ROWS, &shared);
    if (!lut) return qn_err_set(err, QN_ERR_NOMEM, "aqlm matvec: out of memory for a %zu x %zu x 256 table", ng, M);
    float *acc = lut + ng * M * 256;
#pragma omp parallel num_threads(qn_cpu_team(w->d_out, w->d_in))
    {
#pragma omp for schedule(static)
        for (size_t g = 0; g < ng; g++) {
#ifdef QN_HAVE_AVX2_PATH
            if (simd == QN_SIMD_AVX2) lut_build_avx2(p->cbT, M, G, x + g * G, lut + g * M * 256);
            else
#endif
                lut_build_plain(p->cbT, M, G, x + g * G, lut + g * M * 256);
        }
        /* the implicit barrier above: every table is ready */
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t b0 = p->n_blocks * t / nt, b1 = p->n_blocks * (t + 1) / nt;
        memset(acc + b0 * LUT_ROWS, 0, (b1 - b0) * LUT_ROWS * sizeof *acc);
        for (size_t tile = 0; tile < p->n_tiles; tile++) {
            size_t g0 = tile * p->tile_groups, n = (g0 + p->tile_groups < ng ? p->tile_groups : ng - g0) * M;
            const float *T = lut + g0 * M * 256;
            const uint8_t *c = p->codes + (tile * p->n_blocks + b0) * TM * LUT_ROWS;
            for (size_t b = b0; b < b1; b++, c += TM * LUT_ROWS) lut_block(T, c, n, acc + b * LUT_ROWS);
        }
        size_t r1 = b1 * LUT_ROWS < w->d_out ? b1 * LUT_ROWS : w->d_out;
        for (size_t r = b0 * LUT_ROWS; r < r1; r++) y[r] = acc[r] * qn_half_to_float(w->scales[r]);
    }
#ifndef QN_HAVE_AVX2_PATH
    (void)simd;
#endif
    lut_put(lut, shared);
    return QN_OK;
}

/* ---- codeword route (any B) ---- */

static float row_dot_plain(const qn_aqlm_weights *w, size_t r, const float *x)
{
    size_t G = (size_t)w->in_group_size;
    float sum = 0;
    for (size_t g = 0; g < groups(w); g++) {
        float part = 0;
        for (int m = 0; m < w->n_codebooks; m++) {
            const uint16_t *cw = w->codebooks + (((size_t)m << w->nbits) + code_at(w, r, g, m)) * G;
            for (size_t j = 0; j < G; j++) part += qn_half_to_float(cw[j]) * x[g * G + j];
        }
        sum += part;
    }
    return qn_half_to_float(w->scales[r]) * sum;
}

#ifdef QN_HAVE_AVX2_PATH
QN_AVX2 static inline __m256 codeword8(const uint16_t *cw)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)cw));
}

QN_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Row r with G = 8: each codeword one fp16 vector. M and wide (int16
   codes) are constants after inlining; two groups per step keep two FMA
   chains and their codebook loads in flight. */
QN_AVX2 static inline __attribute__((always_inline)) float
row_dot_g8(const qn_aqlm_weights *w, size_t r, const float *x, const size_t M, const bool wide)
{
    size_t ng = groups(w);
    unsigned mask = (1u << w->nbits) - 1u, B = (unsigned)w->nbits;
    const uint8_t *c8 = (const uint8_t *)w->codes + r * ng * M;
    const uint16_t *c16 = (const uint16_t *)w->codes + r * ng * M;
#define CODE(i) ((wide ? (unsigned)c16[i] : (unsigned)c8[i]) & mask)
#define CODEWORD(g, m) codeword8(w->codebooks + (((size_t)(m) << B) + CODE((g) * M + (m))) * 8)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t g = 0;
    for (; g + 2 <= ng; g += 2) {
        __m256 v0 = CODEWORD(g, 0), v1 = CODEWORD(g + 1, 0);
        for (size_t m = 1; m < M; m++) {
            v0 = _mm256_add_ps(v0, CODEWORD(g, m));
            v1 = _mm256_add_ps(v1, CODEWORD(g + 1, m));
        }
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x + g * 8), a0);
        a1 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x + g * 8 + 8), a1);
    }
    if (g < ng) {
        __m256 v0 = CODEWORD(g, 0);
        for (size_t m = 1; m < M; m++) v0 = _mm256_add_ps(v0, CODEWORD(g, m));
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x + g * 8), a0);
    }
#undef CODEWORD
#undef CODE
    return qn_half_to_float(w->scales[r]) * hsum8(_mm256_add_ps(a0, a1));
}

QN_AVX2 static float row_dot_g8_1n(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, 1, false);
}
QN_AVX2 static float row_dot_g8_1w(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, 1, true);
}
QN_AVX2 static float row_dot_g8_2n(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, 2, false);
}
QN_AVX2 static float row_dot_g8_2w(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, 2, true);
}
QN_AVX2 static float row_dot_g8_mn(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, (size_t)w->n_codebooks, false);
}
QN_AVX2 static float row_dot_g8_mw(const qn_aqlm_weights *w, size_t r, const float *x)
{
    return row_dot_g8(w, r, x, (size_t)w->n_codebooks, true);
}

/* G a multiple of 8 (16, 32, ...): each codeword G/8 fp16 vectors. */
QN_AVX2 static float row_dot_g8k(const qn_aqlm_weights *w, size_t r, const float *x)
{
    size_t G = (size_t)w->in_group_size, ng = groups(w), M = (size_t)w->n_codebooks;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (size_t g = 0; g < ng; g++)
        for (size_t m = 0; m < M; m++) {
            const uint16_t *cw = w->codebooks + ((m << w->nbits) + code_at(w, r, g, (int)m)) * G;
            for (size_t j = 0; j < G; j += 16) {
                a0 = _mm256_fmadd_ps(codeword8(cw + j), _mm256_loadu_ps(x + g * G + j), a0);
                if (j + 8 < G) a1 = _mm256_fmadd_ps(codeword8(cw + j + 8), _mm256_loadu_ps(x + g * G + j + 8), a1);
            }
        }
    return qn_half_to_float(w->scales[r]) * hsum8(_mm256_add_ps(a0, a1));
}

typedef float (*row_dot_fn)(const qn_aqlm_weights *w, size_t r, const float *x);

static row_dot_fn pick_row_dot_avx2(const qn_aqlm_weights *w)
{
    bool wide = w->nbits > 8;
    if (w->in_group_size != 8) return row_dot_g8k;
    if (w->n_codebooks == 1) return wide ? row_dot_g8_1w : row_dot_g8_1n;
    if (w->n_codebooks == 2) return wide ? row_dot_g8_2w : row_dot_g8_2n;
    return wide ? row_dot_g8_mw : row_dot_g8_mn;
}
#endif

static qn_status matvec_codewords(const qn_aqlm_weights *w, const float *x, float *y, qn_simd simd)
{
#ifdef QN_HAVE_AVX2_PATH
    if (simd == QN_SIMD_AVX2 && w->in_group_size % 8 == 0) {
        row_dot_fn dot = pick_row_dot_avx2(w);
#pragma omp parallel for schedule(static) num_threads(qn_cpu_team(w->d_out, w->d_in))
        for (size_t r = 0; r < w->d_out; r++) y[r] = dot(w, r, x);
        return QN_OK;
    }
#else
    (void)simd;
#endif
#pragma omp parallel for schedule(static) num_threads(qn_cpu_team(w->d_out, w->d_in))
    for (size_t r = 0; r < w->d_out; r++) y[r] = row_dot_plain(w, r, x);
    return QN_OK;
}

qn_status qn_aqlm_matvec(const qn_aqlm_weights *w, const qn_aqlm_plan *p, const float *x, float *y,
                         qn_simd simd, qn_err *err)
{
    simd = qn_simd_clamp(simd);
    if (p && p->lut) return matvec_lut(w, p, x, y, simd, err);
    return matvec_codewords(w, x, y, simd);
}

/* ---- batches ---- */

typedef struct {
    const qn_aqlm_weights *w;
    const qn_aqlm_plan    *p;
    qn_simd                simd;
} aqlm_dequant_ctx;

/* The codes of row r, (ng, M), from where the kernels read them: the plan's
   interleaved copy for the table route (walked tile by tile), else the
   caller's array. */
static void row_codes(const qn_aqlm_weights *w, const qn_aqlm_plan *p, size_t r, uint16_t *out)
{
    size_t M = (size_t)w->n_codebooks, ng = groups(w);
    if (p && p->lut) {
        size_t TM = p->tile_groups * M;
        for (size_t t = 0, i0 = 0; t < p->n_tiles; t++, i0 += TM) {
            const uint8_t *c = p->codes + (t * p->n_blocks + r / LUT_ROWS) * TM * LUT_ROWS + r % LUT_ROWS;
            size_t n = i0 + TM <= ng * M ? TM : ng * M - i0;
            for (size_t i = 0; i < n; i++) out[i0 + i] = c[i * LUT_ROWS];
        }
        return;
    }
    for (size_t g = 0; g < ng; g++)
        for (size_t m = 0; m < M; m++) out[g * M + m] = (uint16_t)code_at(w, r, g, (int)m);
}

static void dequant_row_plain(const qn_aqlm_weights *w, const uint16_t *codes, size_t r, float *o)
{
    size_t G = (size_t)w->in_group_size, M = (size_t)w->n_codebooks;
    float s = qn_half_to_float(w->scales[r]);
    for (size_t g = 0; g < groups(w); g++) {
        float *og = o + g * G;
        for (size_t j = 0; j < G; j++) og[j] = 0;
        for (size_t m = 0; m < M; m++) {
            const uint16_t *cw = w->codebooks + ((m << w->nbits) + codes[g * M + m]) * G;
            for (size_t j = 0; j < G; j++) og[j] += qn_half_to_float(cw[j]);
        }
        for (size_t j = 0; j < G; j++) og[j] *= s;
    }
}

#ifdef QN_HAVE_AVX2_PATH
/* G a multiple of 8. */
QN_AVX2 static void dequant_row_avx2(const qn_aqlm_weights *w, const uint16_t *codes, size_t r, float *o)
{
    size_t G = (size_t)w->in_group_size, M = (size_t)w->n_codebooks;
    __m256 s = _mm256_set1_ps(_cvtsh_ss(w->scales[r]));
    for (size_t g = 0; g < groups(w); g++)
        for (size_t j = 0; j < G; j += 8) {
            __m256 v = codeword8(w->codebooks + codes[g * M] * G + j);
            for (size_t m = 1; m < M; m++)
                v = _mm256_add_ps(v, codeword8(w->codebooks + ((m << w->nbits) + codes[g * M + m]) * G + j));
            _mm256_storeu_ps(o + g * G + j, _mm256_mul_ps(s, v));
        }
}
#endif

/* qn_cpu_dequant_rows_fn: codewords summed into each group's G columns;
   scratch holds one row's codes. */
static void aqlm_dequant_rows(const void *ctx, size_t r0, size_t r1, float *out, float *scratch)
{
    const aqlm_dequant_ctx *c = ctx;
    uint16_t *codes = (uint16_t *)(void *)scratch;
    for (size_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * c->w->d_in;
        row_codes(c->w, c->p, r, codes);
#ifdef QN_HAVE_AVX2_PATH
        if (c->simd == QN_SIMD_AVX2 && c->w->in_group_size % 8 == 0) { dequant_row_avx2(c->w, codes, r, o); continue; }
#endif
        dequant_row_plain(c->w, codes, r, o);
    }
}

qn_status qn_aqlm_matmul(const qn_aqlm_weights *w, const qn_aqlm_plan *p, const float *X, size_t n_tok,
                         float *Y, qn_simd simd, qn_err *err)
{
    if (n_tok < (p && p->lut ? AQLM_LUT_MIN_SGEMM_BATCH : AQLM_MIN_SGEMM_BATCH)) {
        for (size_t t = 0; t < n_tok; t++) {
            qn_status s = qn_aqlm_matvec(w, p, X + t * w->d_in, Y + t * w->d_out, simd, err);
            if (s) return s;
        }
        return QN_OK;
    }
    aqlm_dequant_ctx ctx = { w, p, qn_simd_clamp(simd) };
    size_t code_floats = (groups(w) * (size_t)w->n_codebooks + 1) / 2;   /* uint16 codes of one row */
    return qn_cpu_matmul_dequant(w->d_out, w->d_in, aqlm_dequant_rows, &ctx, code_floats, X, n_tok, Y, err);
}
