/* test_lowbit_cpu.c: the low-bit core against its plain _ref twin directly,
   for every width 1..8 (5 to 7 only have the plain path), blocks of 1 to 8
   rows, groups of 8, 16, 24 and 128 with a partial last group, and the
   AVX2 variants' 4-byte loads next to the end of the buffer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernel_cases.h"
#include "kernels/lowbit_cpu.h"

Test(lowbit_cpu, dot_matches_its_reference)
{
    static const size_t groups[] = { 8, 16, 24, 128 }, ns[] = { 16, 136, 260 };
    for (int bits = 1; bits <= 8; bits++)
        for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
                for (size_t nr = 1; nr <= QN_LOWBIT_MAX_ROWS; nr++) {
                    size_t n = ns[ni], group = groups[gi], ng = (n + group - 1) / group;
                    size_t row_bytes = qn_bits_row_bytes(n, bits), seed = (size_t)bits * 1000 + gi * 100 + ni * 10 + nr;
                    float *rnd = kc_random(nr * row_bytes + 3 * nr * ng + 2 * n, seed);
                    uint8_t *codes = malloc(nr * row_bytes);   /* exactly sized: ASan sees any over-read */
                    float *s = malloc(nr * ng * sizeof *s), *z = malloc(nr * ng * sizeof *z);
                    float *x = rnd + nr * row_bytes + 3 * nr * ng, xsum[64], xsplit[260], y[8], y_ref[8];
                    for (size_t i = 0; i < nr * row_bytes; i++) codes[i] = (uint8_t)(rnd[i] * 127.0f + 128.0f);
                    for (size_t i = 0; i < nr * ng; i++) {
                        s[i] = 0.01f * (1.5f + rnd[nr * row_bytes + i]);
                        z[i] = (float)(1 << bits) * 0.5f * (1.0f + rnd[nr * row_bytes + nr * ng + i]);
                    }
                    qn_lowbit_group_sums(x, n, group, xsum);
                    qn_lowbit_split16(x, n, xsplit);
                    qn_lowbit_rows b = { .bits = bits, .n = n, .group = group, .nr = nr, .codes = codes,
                                         .codes_end = codes + nr * row_bytes, .s = s, .z = z, .stat_stride = ng,
                                         .xsum = xsum, .xsplit = xsplit };
                    qn_lowbit_dot_ref(&b, x, y_ref);
                    for (int simd = QN_SIMD_NONE; simd <= QN_SIMD_AVX2; simd++) {
                        qn_lowbit_dot(&b, x, y, (qn_simd)simd);
                        for (size_t i = 0; i < nr; i++) {
                            double mag = 0;
                            for (size_t j = 0; j < n; j++) {
                                size_t g = j / group;
                                mag += fabs(s[i * ng + g] * ((double)qn_bits_get(codes + i * row_bytes, j, bits) -
                                                             z[i * ng + g]) * x[j]);
                            }
                            double e = fabs((double)y[i] - y_ref[i]) / fmax(mag, 1e-30);
                            cr_expect(e <= KC_REL_TOL, "%d bits, group %zu, n %zu, %zu rows, %s: row %zu rel err %.3g",
                                      bits, group, n, nr, qn_simd_name((qn_simd)simd), i, e);
                        }
                    }
                    free(codes);
                    free(s);
                    free(z);
                    free(rnd);
                }
}
