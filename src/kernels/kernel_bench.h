/* kernel_bench.h: one measurement behind `quench bench-kernel` and
   `make bench`: a random well-formed matrix of a named format (synth.h), our
   kernel through qn_linear against OpenBLAS sgemv (one token) or sgemm (a
   batch) on its f32 dequantization, in the same run, median of repetitions.
   Before each timed call a buffer twice the size of a large L3 is read, so
   both start from DRAM as in a decode step over a whole model (warm skips
   this). With device CUDA the same matrix is packed for the GPU and timed
   against cuBLAS fp16 on its fp16 dequantization (cuda/runtime.h), the L2
   flushed instead. It only measures: the caller prints. */
#ifndef QN_KERNEL_BENCH_H
#define QN_KERNEL_BENCH_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"
#include "kernels/device.h"
#include "kernels/synth.h"

typedef struct {
    const char *format;          /* one of qn_kbench_format_name(i) */
    size_t      rows, cols;      /* d_out, d_in */
    size_t      batch;           /* tokens; 1 = matvec */
    size_t      reps;            /* timed repetitions of each side */
    int         threads;         /* 0 = all cores */
    bool        warm;            /* skip the cache flush */
    uint64_t    seed;
    qn_device   device;          /* CPU: against OpenBLAS f32; CUDA: against cuBLAS fp16 */
} qn_kbench_opts;

typedef struct {
    double ours_s, blas_s;       /* medians */
    double ours_min_s, blas_min_s;   /* fastest repetitions: what each side does undisturbed
                                        on a machine other work shares */
    double speedup;              /* blas_s / ours_s */
    double bits_per_weight;      /* storage of the compressed matrix */
    double weight_bytes;         /* rows * cols * bits_per_weight / 8 */
    double gbps;                 /* weight_bytes / ours_s / 1e9 */
    double blas_gbps;            /* rows * cols * 4 / blas_s / 1e9 */
    double max_rel_err;          /* ours against BLAS, relative to sum |W x| */
    const char *simd;            /* "avx2", "none"; "cuda" on the GPU */
    int threads;
    char device[128];            /* CUDA: the GPU's name; else empty */
} qn_kbench_result;

/* The formats by name ("aqlm-2x8", "spqr-w3", "int4", ...); NULL past the end. */
const char *qn_kbench_format_name(size_t i);
/* The synth options of a named format at rows x cols. */
qn_status   qn_kbench_synth_opts(const char *format, size_t rows, size_t cols, uint64_t seed, qn_synth_opts *out,
                                 qn_err *err);
qn_status   qn_kbench_run(const qn_kbench_opts *o, qn_kbench_result *out, qn_err *err);

#endif
