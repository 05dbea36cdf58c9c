/* bench_kernels.c: `make bench`, kernel part: every compressed format's
   matvec (one token) at 2 threads on 4096x4096 and 11008x4096 (Llama-7B's
   attention and MLP shapes) against OpenBLAS sgemv on the same matrix
   dequantized to f32, in the same run, median of 9 with caches flushed
   before each call (kernels/kernel_bench.h), with the targets. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernel_bench.h"

/* Issue 6 targets, one token at 2 threads: speedup over fp32 sgemv. */
static double target(const char *fmt)
{
    if (strcmp(fmt, "aqlm-2x8") == 0) return 3.5;
    if (strcmp(fmt, "aqlm-1x16") == 0) return 1.3;
    if (strcmp(fmt, "spqr-w3") == 0) return 2.0;
    if (strcmp(fmt, "int4") == 0) return 4.0;
    return 0;
}

int main(void)
{
    static const size_t shapes[][2] = { { 4096, 4096 }, { 11008, 4096 } };
    printf("compressed matvec vs OpenBLAS sgemv, 2 threads, 1 token, median of 9, caches flushed\n");
    printf("%-10s %-11s %6s %10s %10s %8s %8s %8s  %s\n", "format", "shape", "bits", "ours ms", "blas ms", "speedup",
           "GB/s", "target", "");
    int rc = 0;
    for (size_t f = 0; qn_kbench_format_name(f); f++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const char *fmt = qn_kbench_format_name(f);
            qn_kbench_opts o = { .format = fmt, .rows = shapes[s][0], .cols = shapes[s][1], .batch = 1, .reps = 9,
                                 .threads = 2, .seed = 1 + f };
            qn_kbench_result r;
            qn_err err = {0};
            if (qn_kbench_run(&o, &r, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                rc = 1;
                continue;
            }
            char shape[32];
            snprintf(shape, sizeof shape, "%zux%zu", o.rows, o.cols);
            double t = target(fmt);
            char tgt[16] = "-";
            if (t > 0) snprintf(tgt, sizeof tgt, "%.1fx", t);
            printf("%-10s %-11s %6.2f %10.3f %10.3f %7.2fx %8.2f %8s  %s\n", fmt, shape, r.bits_per_weight,
                   r.ours_s * 1e3, r.blas_s * 1e3, r.speedup, r.gbps, tgt,
                   t > 0 ? (r.speedup >= t ? "met" : "MISSED") : "");
            fflush(stdout);
        }
    printf("(GB/s: bytes of compressed weights read per second by our kernel; bits: storage per weight)\n");
    return rc;
}
