/* dtype.c: element sizes, names and IEEE half / bfloat16 conversions. */
#include "engine/dtype.h"

#include <string.h>

static const struct { const char *name; size_t size; int is_float; } k_dtypes[QN_DTYPE_COUNT] = {
    [QN_DTYPE_F32] = {"F32", 4, 1},  [QN_DTYPE_F16] = {"F16", 2, 1},
    [QN_DTYPE_BF16] = {"BF16", 2, 1}, [QN_DTYPE_F64] = {"F64", 8, 1},
    [QN_DTYPE_I8] = {"I8", 1, 0},    [QN_DTYPE_U8] = {"U8", 1, 0},
    [QN_DTYPE_I16] = {"I16", 2, 0},  [QN_DTYPE_U16] = {"U16", 2, 0},
    [QN_DTYPE_I32] = {"I32", 4, 0},  [QN_DTYPE_U32] = {"U32", 4, 0},
    [QN_DTYPE_I64] = {"I64", 8, 0},  [QN_DTYPE_U64] = {"U64", 8, 0},
    [QN_DTYPE_BOOL] = {"BOOL", 1, 0},
};

size_t qn_dtype_size(qn_dtype t) { return (unsigned)t < QN_DTYPE_COUNT ? k_dtypes[t].size : 0; }
const char *qn_dtype_name(qn_dtype t) { return (unsigned)t < QN_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
int qn_dtype_is_float(qn_dtype t) { return (unsigned)t < QN_DTYPE_COUNT && k_dtypes[t].is_float; }

int qn_dtype_from_name(const char *name)
{
    for (int i = 0; i < QN_DTYPE_COUNT; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) return i;
    return -1;
}

static float bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float qn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t qn_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds past 65504 */
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float a = bits_to_f32(abs);
        /* adding 0.5 (2^-1) aligns the half subnormal step 2^-24 to the float ulp */
        float r = a + 0.5f;
        return sign | (uint16_t)(f32_to_bits(r) - 0x3f000000u);
    }
    uint32_t mant_odd = (abs >> 13) & 1;
    abs += 0xfffu + mant_odd; /* round to nearest even */
    return sign | (uint16_t)((abs - (112u << 23)) >> 13);
}

float qn_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t qn_f32_to_bf16(float f)
{
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void qn_dtype_to_f32(qn_dtype t, const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    switch (t) {
    case QN_DTYPE_F32: memcpy(dst, src, n * 4); break;
    case QN_DTYPE_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = qn_f16_to_f32(h); }
        break;
    case QN_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = qn_bf16_to_f32(h); }
        break;
    case QN_DTYPE_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; }
        break;
    default:
        memset(dst, 0, n * sizeof *dst);
    }
}
