/* ggml_quants.c: the ggml type table and reference dequantizers (see
   ggml_quants.h). Block layouts follow ggml/src/ggml-common.h; the arithmetic
   follows ggml/src/ggml-quants.c dequantize_row_* operation for operation, so
   results match llama.cpp (and the gguf Python package) bit for bit. Each
   function copies one block into a local struct first: GGUF only promises the
   alignment the file declares, which may be less than the struct's. */
#include "engine/ggml_quants.h"

#include <string.h>

#include "engine/dtype.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ggml_quants.c reads little-endian blocks through native structs"
#endif

#define QK_K 256 /* elements in a k-quant super-block */

/* ---- classic blocks: 32 weights, one fp16 scale (and min) each ---- */

/* x = d * (q - 8), q 4-bit: 4.5 bits per weight */
typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block is 18 bytes");

/* x = d * q + m, q 4-bit: 5 bits per weight */
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 block is 20 bytes");

/* x = d * (q - 16), q 5-bit: low nibbles in qs, fifth bits in qh: 5.5 bits per weight */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 block is 22 bytes");

/* x = d * q + m, q 5-bit: 6 bits per weight */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 block is 24 bytes");

/* x = d * q, q int8: 8.5 bits per weight */
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block is 34 bytes");

/* q8_0 plus s = d * sum(q), which only dot products use */
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 block is 36 bytes");

/* ---- k-quants: super-blocks of 256 weights with quantized sub-block scales ---- */

/* x = d * sc * q - dmin * m over 16 sub-blocks of 16; sc, m 4-bit; q 2-bit:
   effectively 2.625 bits per weight */
typedef struct {
    uint8_t  scales[QK_K / 16]; /* low nibble scale, high nibble min */
    uint8_t  qs[QK_K / 4];
    uint16_t d, dmin;
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "q2_K block is 84 bytes");

/* x = d * (sc - 32) * (q - 4 * !h) over 16 sub-blocks of 16; sc 6-bit; q 2-bit
   plus a high bit h in hmask: effectively 3.4375 bits per weight */
typedef struct {
    uint8_t  hmask[QK_K / 8];
    uint8_t  qs[QK_K / 4];
    uint8_t  scales[12];        /* 16 x 6 bits, packed as in unpack_q3_scales */
    uint16_t d;
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "q3_K block is 110 bytes");

/* x = d * sc * q - dmin * m over 8 sub-blocks of 32; sc, m 6-bit; q 4-bit:
   effectively 4.5 bits per weight */
typedef struct {
    uint16_t d, dmin;
    uint8_t  scales[12];        /* 8 scales + 8 mins x 6 bits, see scale_min_k4 */
    uint8_t  qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "q4_K block is 144 bytes");

/* q4_K with a fifth bit per weight in qh: effectively 5.5 bits per weight */
typedef struct {
    uint16_t d, dmin;
    uint8_t  scales[12];
    uint8_t  qh[QK_K / 8];
    uint8_t  qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "q5_K block is 176 bytes");

/* x = d * sc * (q - 32) over 16 sub-blocks of 16; sc int8; q 6-bit (4 low bits
   in ql, 2 high in qh): effectively 6.5625 bits per weight */
typedef struct {
    uint8_t  ql[QK_K / 2];
    uint8_t  qh[QK_K / 4];
    int8_t   scales[QK_K / 16];
    uint16_t d;
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "q6_K block is 210 bytes");

/* x = d * q with an f32 scale; bsums only serve dot products */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "q8_K block is 292 bytes");

static float h2f(uint16_t h) { return qn_f16_to_f32(h); }

static void f32_to_f32(const void *src, float *dst, size_t n) { memcpy(dst, src, n * sizeof *dst); }

static void f16_to_f32(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = qn_f16_to_f32(h); }
}

static void bf16_to_f32(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = qn_bf16_to_f32(h); }
}

static void f64_to_f32(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
}

/* Byte j of qs holds weight j (low nibble) and weight j + 16 (high nibble). */
static void q4_0_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q4_0 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        for (int j = 0; j < 16; j++) {
            y[j]      = ((b.qs[j] & 0x0F) - 8) * d;
            y[j + 16] = ((b.qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_1_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q4_1 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d), m = h2f(b.m);
        for (int j = 0; j < 16; j++) {
            y[j]      = (b.qs[j] & 0x0F) * d + m;
            y[j + 16] = (b.qs[j] >> 4) * d + m;
        }
    }
}

/* Bit j of the little-endian word qh is the fifth bit of weight j. */
static void q5_0_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q5_0 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        uint32_t qh;
        memcpy(&qh, b.qh, 4);
        for (int j = 0; j < 16; j++) {
            int x0 = ((b.qs[j] & 0x0F) | (((qh >> j) & 1) << 4)) - 16;
            int x1 = ((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            y[j]      = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

static void q5_1_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q5_1 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d), m = h2f(b.m);
        uint32_t qh;
        memcpy(&qh, b.qh, 4);
        for (int j = 0; j < 16; j++) {
            int x0 = (b.qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
            int x1 = (b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            y[j]      = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

static void q8_0_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q8_0 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        for (int j = 0; j < 32; j++) y[j] = b.qs[j] * d;
    }
}

static void q8_1_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / 32; i++, y += 32) {
        block_q8_1 b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        for (int j = 0; j < 32; j++) y[j] = b.qs[j] * d;
    }
}

/* Weights run in two halves of 128; in half h, byte l of qs[32h..32h+32) holds
   weights 32s + l (s = 0..3) in bits 2s..2s+1. Sub-block k = 8h + 2s + (l >= 16)
   has its own scale. */
static void q2_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q2_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d), dmin = h2f(b.dmin);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int half = 0; half < 2; half++) {
                    int k = 8 * h + 2 * s + half;
                    const float dl = d * (b.scales[k] & 0x0F), ml = dmin * (b.scales[k] >> 4);
                    const uint8_t *q = b.qs + 32 * h + 16 * half;
                    float *out = y + 128 * h + 32 * s + 16 * half;
                    for (int l = 0; l < 16; l++) out[l] = dl * ((q[l] >> (2 * s)) & 3) - ml;
                }
    }
}

/* 16 six-bit scales: the low nibbles are bytes 0-7 (scale k < 8 low, k >= 8
   high nibble of byte k - 8); the top two bits of scale k sit in byte
   8 + k % 4 at bit 2 * (k / 4). */
static void unpack_q3_scales(const uint8_t packed[12], int scales[16])
{
    for (int k = 0; k < 16; k++) {
        int lo = k < 8 ? packed[k] & 0x0F : packed[k - 8] >> 4;
        int hi = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
        scales[k] = (lo | hi << 4) - 32;
    }
}

/* Same walk as q2_K; the high bit of weight 128h + 32s + 16half + l is bit
   4h + s of hmask[16half + l], and a clear bit means "subtract 4". */
static void q3_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q3_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        int sc[16];
        unpack_q3_scales(b.scales, sc);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int half = 0; half < 2; half++) {
                    const float dl = d * sc[8 * h + 2 * s + half];
                    const uint8_t *q = b.qs + 32 * h + 16 * half, *hm = b.hmask + 16 * half;
                    const uint8_t bit = (uint8_t)(1u << (4 * h + s));
                    float *out = y + 128 * h + 32 * s + 16 * half;
                    for (int l = 0; l < 16; l++)
                        out[l] = dl * (((q[l] >> (2 * s)) & 3) - ((hm[l] & bit) ? 0 : 4));
                }
    }
}

/* Scale and min of sub-block j (0..7) from the 12 packed bytes: j < 4 keeps
   them in the low 6 bits of bytes j and j + 4; j >= 4 takes 4 low bits from
   byte j + 4 and the top 2 from the spare bits of bytes j - 4 and j. */
static void scale_min_k4(int j, const uint8_t q[12], uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Byte l of each 32-byte group g holds weight 64g + l (low nibble, sub-block
   2g) and 64g + 32 + l (high nibble, sub-block 2g + 1). */
static void q4_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q4_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d), dmin = h2f(b.dmin);
        for (int g = 0; g < 4; g++) {
            uint8_t sc, m;
            scale_min_k4(2 * g, b.scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * g + 1, b.scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t *q = b.qs + 32 * g;
            float *out = y + 64 * g;
            for (int l = 0; l < 32; l++) out[l] = d1 * (q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) out[32 + l] = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* q4_K plus a fifth bit: bit 2g of qh[l] for the low nibble, 2g + 1 for the high. */
static void q5_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q5_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d), dmin = h2f(b.dmin);
        for (int g = 0; g < 4; g++) {
            uint8_t sc, m;
            scale_min_k4(2 * g, b.scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * g + 1, b.scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t *ql = b.qs + 32 * g;
            const uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
            float *out = y + 64 * g;
            for (int l = 0; l < 32; l++) out[l] = d1 * ((ql[l] & 0x0F) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) out[32 + l] = d2 * ((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

/* Two halves of 128; in half h, for l < 32: ql[64h + l] holds weights l (low
   nibble) and l + 64 (high), ql[64h + 32 + l] weights l + 32 and l + 96, and
   qh[32h + l] their top two bits in bit pairs 0, 2, 4, 6 for l, l+32, l+64, l+96. */
static void q6_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q6_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        const float d = h2f(b.d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
            const int8_t *sc = b.scales + 8 * h;
            float *out = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                out[l]      = d * sc[is + 0] * q1;
                out[l + 32] = d * sc[is + 2] * q2;
                out[l + 64] = d * sc[is + 4] * q3;
                out[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void q8_K_to_f32(const void *src, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        block_q8_K b;
        memcpy(&b, (const unsigned char *)src + i * sizeof b, sizeof b);
        for (int j = 0; j < QK_K; j++) y[j] = b.d * b.qs[j];
    }
}

/* Block sizes and bytes of the types without a dequantizer come from
   ggml-common.h (and the gguf package's GGML_QUANT_SIZES). */
static const qn_ggml_type_desc k_types[QN_GGML_TYPE_COUNT] = {
    [QN_GGML_F32]     = { "f32",     1,    4,   f32_to_f32 },
    [QN_GGML_F16]     = { "f16",     1,    2,   f16_to_f32 },
    [QN_GGML_Q4_0]    = { "q4_0",    32,   sizeof(block_q4_0), q4_0_to_f32 },
    [QN_GGML_Q4_1]    = { "q4_1",    32,   sizeof(block_q4_1), q4_1_to_f32 },
    [4]               = { "q4_2",    0,    0,   NULL },
    [5]               = { "q4_3",    0,    0,   NULL },
    [QN_GGML_Q5_0]    = { "q5_0",    32,   sizeof(block_q5_0), q5_0_to_f32 },
    [QN_GGML_Q5_1]    = { "q5_1",    32,   sizeof(block_q5_1), q5_1_to_f32 },
    [QN_GGML_Q8_0]    = { "q8_0",    32,   sizeof(block_q8_0), q8_0_to_f32 },
    [QN_GGML_Q8_1]    = { "q8_1",    32,   sizeof(block_q8_1), q8_1_to_f32 },
    [QN_GGML_Q2_K]    = { "q2_K",    QK_K, sizeof(block_q2_K), q2_K_to_f32 },
    [QN_GGML_Q3_K]    = { "q3_K",    QK_K, sizeof(block_q3_K), q3_K_to_f32 },
    [QN_GGML_Q4_K]    = { "q4_K",    QK_K, sizeof(block_q4_K), q4_K_to_f32 },
    [QN_GGML_Q5_K]    = { "q5_K",    QK_K, sizeof(block_q5_K), q5_K_to_f32 },
    [QN_GGML_Q6_K]    = { "q6_K",    QK_K, sizeof(block_q6_K), q6_K_to_f32 },
    [QN_GGML_Q8_K]    = { "q8_K",    QK_K, sizeof(block_q8_K), q8_K_to_f32 },
    [QN_GGML_IQ2_XXS] = { "iq2_xxs", QK_K, 2 + QK_K / 4, NULL },
    [QN_GGML_IQ2_XS]  = { "iq2_xs",  QK_K, 2 + QK_K / 4 + QK_K / 32, NULL },
    [QN_GGML_IQ3_XXS] = { "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8, NULL },
    [QN_GGML_IQ1_S]   = { "iq1_s",   QK_K, 2 + QK_K / 8 + QK_K / 16, NULL },
    [QN_GGML_IQ4_NL]  = { "iq4_nl",  32,   2 + 16, NULL },
    [QN_GGML_IQ3_S]   = { "iq3_s",   QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, NULL },
    [QN_GGML_IQ2_S]   = { "iq2_s",   QK_K, 2 + QK_K / 4 + QK_K / 16, NULL },
    [QN_GGML_IQ4_XS]  = { "iq4_xs",  QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, NULL },
    [QN_GGML_I8]      = { "i8",      1,    1,   NULL },
    [QN_GGML_I16]     = { "i16",     1,    2,   NULL },
    [QN_GGML_I32]     = { "i32",     1,    4,   NULL },
    [QN_GGML_I64]     = { "i64",     1,    8,   NULL },
    [QN_GGML_F64]     = { "f64",     1,    8,   f64_to_f32 },
    [QN_GGML_IQ1_M]   = { "iq1_m",   QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, NULL },
    [QN_GGML_BF16]    = { "bf16",    1,    2,   bf16_to_f32 },
    [31]              = { "q4_0_4_4", 0,   0,   NULL },
    [32]              = { "q4_0_4_8", 0,   0,   NULL },
    [33]              = { "q4_0_8_8", 0,   0,   NULL },
    [QN_GGML_TQ1_0]   = { "tq1_0",   QK_K, 2 + 4 * 13, NULL },
    [QN_GGML_TQ2_0]   = { "tq2_0",   QK_K, 2 + 64, NULL },
    [36]              = { "iq4_nl_4_4", 0, 0,   NULL },
    [37]              = { "iq4_nl_4_8", 0, 0,   NULL },
    [38]              = { "iq4_nl_8_8", 0, 0,   NULL },
    [QN_GGML_MXFP4]   = { "mxfp4",   32,   1 + 16, NULL },
    [QN_GGML_NVFP4]   = { "nvfp4",   64,   4 + 32, NULL },
    [QN_GGML_Q1_0]    = { "q1_0",    128,  2 + 16, NULL },
};
_Static_assert(sizeof k_types / sizeof k_types[0] == QN_GGML_TYPE_COUNT,
               "every ggml type number needs a row in k_types");

const qn_ggml_type_desc *qn_ggml_type_info(uint32_t type)
{
    if (type >= QN_GGML_TYPE_COUNT || k_types[type].block_size == 0) return NULL;
    return &k_types[type];
}

const char *qn_ggml_type_name(uint32_t type)
{
    return type < QN_GGML_TYPE_COUNT ? k_types[type].name : "unknown";
}

qn_status qn_ggml_to_f32(uint32_t type, const void *src, float *dst, size_t n, qn_err *err)
{
    const qn_ggml_type_desc *t = qn_ggml_type_info(type);
    if (!t) {
        if (type < QN_GGML_TYPE_COUNT)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "ggml type %u (%s) was removed from ggml and cannot be read",
                              type, k_types[type].name);
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "unknown ggml type %u", type);
    }
    if (!t->to_f32)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "ggml type %s (%u) has no dequantizer in quench", t->name, type);
    if (n % t->block_size != 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%zu elements is not a whole number of %s blocks of %u",
                          n, t->name, t->block_size);
    t->to_f32(src, dst, n);
    return QN_OK;
}
