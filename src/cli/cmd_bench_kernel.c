/* cmd_bench_kernel.c: `quench bench-kernel --rows R --cols C --format FMT
   --threads T [--batch N] [--reps K] [--warm] [--device cpu|cuda] [--json]`:
   one compressed kernel against OpenBLAS (on the GPU: cuBLAS fp16) on the
   same random matrix (kernels/kernel_bench.h), both times, the speedup and
   the bandwidth of compressed weights read. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "kernels/device.h"
#include "kernels/kernel_bench.h"

static const char k_usage[] = "quench bench-kernel --rows R --cols C --format FMT [--threads T] [--batch N] "
                              "[--reps K] [--warm] [--device cpu|cuda] [--json]";

static const char k_help[] =
    "usage: quench bench-kernel --rows R --cols C --format FMT [options]\n"
    "One compressed-weight kernel against OpenBLAS on the same random R x C matrix: seconds per\n"
    "call (median), GB/s of weights read, the speedup, and the largest difference of the outputs.\n"
    "\n"
    "  --rows R, --cols C   matrix shape (output x input)                        required\n"
    "  --format FMT         the compressed format (listed below)                 required\n"
    "  --batch N            input vectors per call                               default 1\n"
    "  --reps K             timed repetitions                                    default 10\n"
    "  --warm               keep the weights in cache between calls              default off (cold)\n"
    "  --device D           cpu or cuda (cuda needs a build with nvcc and an NVIDIA GPU)  default cpu\n"
    "  --threads T          worker threads (0 = quench's default for this machine)  default 0\n"
    "  --json               stdout holds one JSON object\n"
    "\n"
    "examples:\n"
    "  quench bench-kernel --rows 576 --cols 1536 --format aqlm-2x8 --threads 1\n";

static void print_formats(FILE *fp)
{
    fprintf(fp, "formats:");
    for (size_t i = 0; qn_kbench_format_name(i); i++) fprintf(fp, " %s", qn_kbench_format_name(i));
    fprintf(fp, "\n");
}

int qn_cmd_bench_kernel(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "rows", required_argument, 0, 'R' }, { "cols", required_argument, 0, 'C' },
        { "format", required_argument, 0, 'f' }, { "threads", required_argument, 0, 'T' },
        { "batch", required_argument, 0, 'b' }, { "reps", required_argument, 0, 'r' },
        { "warm", no_argument, 0, 'w' }, { "json", no_argument, 0, 'j' }, { "device", required_argument, 0, 'D' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 } };
    qn_kbench_opts o = { .batch = 1, .reps = 10, .seed = 1 };
    size_t threads = 0;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'R': if (!qn_arg_size("bench-kernel", "--rows", optarg, 1, (size_t)1 << 20, &o.rows)) return 2; break;
        case 'C': if (!qn_arg_size("bench-kernel", "--cols", optarg, 1, (size_t)1 << 16, &o.cols)) return 2; break;
        case 'f': o.format = optarg; break;
        case 'T': if (!qn_arg_size("bench-kernel", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'b': if (!qn_arg_size("bench-kernel", "--batch", optarg, 1, 65536, &o.batch)) return 2; break;
        case 'r': if (!qn_arg_size("bench-kernel", "--reps", optarg, 1, 10000, &o.reps)) return 2; break;
        case 'w': o.warm = true; break;
        case 'j': json = true; break;
        case 'D': {
            qn_err derr = {0};
            if (qn_device_parse(optarg, &o.device, &derr))
                return qn_arg_usage_error("bench-kernel", k_usage, "%s", derr.msg);
            break;
        }
        case 'h': qn_arg_help(k_help); print_formats(stdout); return 0;
        default: return qn_arg_bad_option("bench-kernel", longopts, argc, argv);
        }
    }
    if (optind != argc) return qn_arg_usage_error("bench-kernel", k_usage, "unexpected argument '%s'", argv[optind]);
    if (!o.rows || !o.cols || !o.format)
        return qn_arg_usage_error("bench-kernel", k_usage, "--rows, --cols and --format are required");
    qn_synth_opts probe;
    if (qn_kbench_synth_opts(o.format, 1, 1, 0, &probe, NULL)) {
        fprintf(stderr, "quench bench-kernel: --format: unknown format '%s'\n", o.format);
        print_formats(stderr);
        return 2;
    }
    o.threads = (int)threads;
    qn_kbench_result r;
    qn_err err = {0};
    if (qn_kbench_run(&o, &r, &err)) {
        fprintf(stderr, "quench bench-kernel: %s\n", err.msg);
        return 1;
    }
    bool cuda = o.device == QN_DEVICE_CUDA;
    if (cuda)
        printf("%s %zu x %zu, batch %zu, on %s, median of %zu%s\n", o.format, o.rows, o.cols, o.batch, r.device, o.reps,
               o.warm ? " (warm L2)" : " (L2 flushed before each call)");
    else
        printf("%s %zu x %zu, batch %zu, %d threads, simd %s, median of %zu%s\n", o.format, o.rows, o.cols, o.batch,
               r.threads, r.simd, o.reps, o.warm ? " (warm caches)" : " (caches flushed before each call)");
    printf("ours  %10.3f ms (fastest %.3f)   %.3f bits/weight, %.2f GB/s of compressed weights\n",
           r.ours_s * 1e3, r.ours_min_s * 1e3, r.bits_per_weight, r.gbps);
    printf("%s %10.3f ms (fastest %.3f)   %s on the %s dequantization, %.2f GB/s\n", cuda ? "cublas" : "blas ",
           r.blas_s * 1e3, r.blas_min_s * 1e3, cuda ? (o.batch == 1 ? "GemmEx (GEMV)" : "GemmEx") :
           (o.batch == 1 ? "sgemv" : "sgemm"), cuda ? "fp16" : "f32", r.blas_gbps);
    printf("speedup %.2fx (fastest against fastest %.2fx)   max difference %.2g of sum |w x|\n", r.speedup,
           r.blas_min_s / r.ours_min_s, r.max_rel_err);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:I, s:b, s:s, s:f, s:f, s:f, s:f, s:f, s:f, "
                              "s:f, s:f, s:f}",
                              "device", qn_device_name(o.device), "gpu", r.device, "format", o.format, "rows",
                              (json_int_t)o.rows, "cols", (json_int_t)o.cols, "batch", (json_int_t)o.batch, "threads", r.threads, "reps", (json_int_t)o.reps, "warm", o.warm,
                              "simd", r.simd, "ours_s", r.ours_s, "blas_s", r.blas_s, "speedup", r.speedup, "gbps",
                              r.gbps, "ours_min_s", r.ours_min_s, "blas_min_s", r.blas_min_s, "blas_gbps",
                              r.blas_gbps, "bits_per_weight", r.bits_per_weight, "max_rel_err", r.max_rel_err);
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
    }
    return 0;
}
