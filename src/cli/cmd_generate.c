/* cmd_generate.c: `quench generate MODEL --prompt TEXT [-n N] [--temp T]
   [--top-p P] [--seed S] [--threads T] [--tokenizer PATH]`: streams the prompt
   and its continuation to stdout; speed on stderr. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/interrupt.h"
#include "cli/session.h"
#include "engine/generate.h"
#include "engine/ggml_numerics.h"

static const char k_usage[] =
    "quench generate MODEL --prompt TEXT [-n N] [--temp T] [--top-p P] [--seed S] [--threads T] "
    "[--tokenizer PATH] [--device cpu|cuda] [--ggml-numerics] [--quiet]";

static const char k_help[] =
    "usage: quench generate MODEL --prompt TEXT [options]\n"
    "Streams the prompt and its continuation to stdout; the speed goes to stderr.\n"
    "MODEL: a Hugging Face folder, a quench run folder, a .gguf or a llama2.c .bin.\n"
    "\n"
    "  --prompt TEXT        the start of the text (UTF-8)                    default empty\n"
    "  -n N                 tokens to generate                               default 128\n"
    "  --temp T             sampling temperature; 0 = greedy                 default 0.8\n"
    "  --top-p P            nucleus sampling threshold                       default 0.9\n"
    "  --seed S             sampler seed                                     default the clock\n"
    "  --ggml-numerics      round as llama.cpp's CPU backend does (8-bit activations, f16 KV cache)\n"
    "  --device D           cpu or cuda (cuda needs a build with nvcc and an NVIDIA GPU)  default cpu\n"
    "  --threads T          worker threads (0 = quench's default)            default 0\n"
    "  --tokenizer PATH     tokenizer.json or tokenizer.bin when MODEL lacks one\n"
    "  --quiet              no speed line on stderr\n"
    "\n"
    "examples:\n"
    "  quench generate assets/stories260K --prompt \"Once upon a time\" --temp 0 -n 60\n"
    "  quench generate runs/stories260K-spqr-3.6 --prompt \"Lily\" --seed 7 -n 40\n";

int qn_cmd_generate(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "prompt", required_argument, 0, 'p' }, { "temp", required_argument, 0, 't' },
        { "top-p", required_argument, 0, 'P' }, { "seed", required_argument, 0, 's' },
        { "threads", required_argument, 0, 'T' }, { "tokenizer", required_argument, 0, 'z' },
        { "quiet", no_argument, 0, 'q' }, { "ggml-numerics", no_argument, 0, 'g' },
        { "device", required_argument, 0, 'D' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *prompt = NULL, *tokenizer = NULL;
    size_t n_new = 128, threads = 0;
    double temp = 0.8, top_p = 0.9;
    uint64_t seed = (uint64_t)time(NULL);
    bool quiet = false, ggml = false;
    const char *device = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': prompt = optarg; break;
        case 'n': if (!qn_arg_size("generate", "-n", optarg, 0, 1 << 24, &n_new)) return 2; break;
        case 't': if (!qn_arg_float("generate", "--temp", optarg, 0, 100, &temp)) return 2; break;
        case 'P': if (!qn_arg_float("generate", "--top-p", optarg, 0, 1, &top_p)) return 2; break;
        case 's': if (!qn_arg_u64("generate", "--seed", optarg, &seed)) return 2; break;
        case 'T': if (!qn_arg_size("generate", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'z': tokenizer = optarg; break;
        case 'q': quiet = true; break;
        case 'D': device = optarg; break;
        case 'g': ggml = true; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option("generate", longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("generate", k_usage, "expected one MODEL");
    if (!prompt) prompt = "";
    size_t bad;
    if (!qn_utf8_valid(prompt, strlen(prompt), &bad))
        return qn_arg_usage_error("generate", k_usage, "--prompt is not UTF-8 (invalid byte at offset %zu)", bad);

    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    int dev_rc = device ? qn_cli_use_device("generate", device) : 0;
    if (dev_rc) return dev_rc;
    qn_model *m = qn_cli_open_model("generate", argv[optind], tokenizer, (int)threads, &prog);
    if (!m) return 1;
    qn_err err = {0};
    if (ggml && qn_ggml_numerics_enable(m, &err)) {
        qn_model_close(m);
        return qn_cli_fail("generate", &err);
    }
    fputs(prompt, stdout);
    fflush(stdout);
    qn_gen_opts opts = { .n_new = n_new, .temperature = (float)temp, .top_p = (float)top_p, .seed = seed };
    qn_gen_result res;
    int rc = 0;
    if (qn_generate(m, prompt, strlen(prompt), &opts, qn_cli_progress_sink(&prog), qn_cli_interrupt_install(), &res,
                    &err)) {
        putchar('\n');
        rc = qn_cli_fail("generate", &err);
    } else {
        putchar('\n');
        fflush(stdout);
        if (!quiet)
            fprintf(stderr, "prompt: %zu tokens in %.3f s; generated %zu tokens in %.3f s (%.1f tokens/s)\n",
                    res.n_prompt, res.prompt_seconds, res.n_generated, res.gen_seconds,
                    res.gen_seconds > 0 ? (double)res.n_generated / res.gen_seconds : 0.0);
        free(res.tokens);
    }
    qn_model_close(m);
    return rc;
}
