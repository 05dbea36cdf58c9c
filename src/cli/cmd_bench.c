/* cmd_bench.c: `quench bench MODEL [-p 512] [-n 128] [-r 5] [--threads T] [--json]`:
   prompt and decode throughput, as llama-bench's pp/tg, with the peak
   resident set while they run and the fraction of the memory-bandwidth bound
   decode reaches (engine/speed.h). */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/speed.h"

static const char k_usage[] = "quench bench MODEL [-p PROMPT_TOKENS] [-n GEN_TOKENS] [-r REPS] [--threads T] [--device cpu|cuda] [--json]";

static const char k_help[] =
    "usage: quench bench MODEL [-p N] [-n N] [-r K] [--threads T] [--device cpu|cuda] [--json]\n"
    "Prompt processing and decode speed in tokens/s (medians), the weight bytes read per token and\n"
    "the memory-bandwidth bound measured in the same run.\n"
    "MODEL: a Hugging Face folder, a quench run folder, a .gguf file or a llama2.c .bin.\n"
    "\n"
    "  -p N                 prompt tokens                                        default 512\n"
    "  -n N                 generated tokens                                     default 128\n"
    "  -r K                 repetitions (the median is reported)                 default 5\n"
    "  --device D           cpu or cuda (cuda needs a build with nvcc and an NVIDIA GPU)  default cpu\n"
    "  --threads T          worker threads (0 = quench's default for this machine)  default 0\n"
    "  --json               stdout holds one JSON object (pp_tps, tg_tps, bandwidth_gbps, ...)\n"
    "\n"
    "examples:\n"
    "  quench bench assets/stories260K -p 256 -n 64 --threads 1\n"
    "  quench bench runs/stories260K-spqr-3.6 --json\n";

int qn_cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "threads", required_argument, 0, 'T' }, { "json", no_argument, 0, 'j' },
        { "device", required_argument, 0, 'D' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    size_t p = 512, n = 128, reps = 5, threads = 0;
    bool json = false;
    const char *device = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "p:n:r:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': if (!qn_arg_size("bench", "-p", optarg, 0, 1 << 20, &p)) return 2; break;
        case 'n': if (!qn_arg_size("bench", "-n", optarg, 0, 1 << 20, &n)) return 2; break;
        case 'r': if (!qn_arg_size("bench", "-r", optarg, 1, 1000, &reps)) return 2; break;
        case 'T': if (!qn_arg_size("bench", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'j': json = true; break;
        case 'D': device = optarg; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option("bench", longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("bench", k_usage, "expected one MODEL");
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    int dev_rc = device ? qn_cli_use_device("bench", device) : 0;
    if (dev_rc) return dev_rc;
    qn_model *m = qn_cli_open_model("bench", argv[optind], NULL, (int)threads, &prog);
    if (!m) return 1;
    qn_model_extend_ctx(m, p > n ? p : n);   /* throughput only: positions past training are fine */
    qn_speed sp;
    qn_err err = {0};
    int rc = 0;
    if (qn_speed_measure(m, p, n, reps, &sp, &err)) {
        rc = qn_cli_fail("bench", &err);
    } else {
        FILE *h = json ? stderr : stdout;
        fprintf(h, "model %s, threads %d\n", argv[optind], qn_kernels_threads());
        fprintf(h, "pp%zu: %.1f tokens/s   tg%zu: %.1f tokens/s   (median of %zu)\n", p, sp.pp_tps, n, sp.tg_tps, reps);
        if (sp.peak_rss > 0) fprintf(h, "peak resident set %.1f MiB\n", sp.peak_rss / 1048576.0);
        fprintf(h, "weights read per token %.0f bytes; memcpy bandwidth %.2f GB/s; decode reaches %.2f of the bandwidth bound\n",
               sp.weight_bytes_per_token, sp.bandwidth / 1e9, sp.bandwidth_fraction);
        if (json) {
            json_t *o = json_pack("{s:s, s:i, s:I, s:f, s:I, s:f, s:f, s:f, s:f, s:f}", "model", argv[optind],
                                  "threads", qn_kernels_threads(), "pp_tokens", (json_int_t)p, "pp_tps", sp.pp_tps,
                                  "tg_tokens", (json_int_t)n, "tg_tps", sp.tg_tps,
                                  "weight_bytes_per_token", sp.weight_bytes_per_token,
                                  "bandwidth_gbps", sp.bandwidth / 1e9, "bandwidth_fraction", sp.bandwidth_fraction,
                                  "peak_rss_bytes", sp.peak_rss);
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
        }
    }
    qn_model_close(m);
    return rc;
}
