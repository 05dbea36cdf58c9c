/* cmd_ppl.c: `quench ppl MODEL --text FILE --ctx N [--protocol gptq|llamacpp]
   [--chunks K] [--batch B] [--threads T] [--tokenizer PATH] [--ggml-numerics] [--json]`. On a
   terminal the running perplexity after each chunk is printed as llama.cpp's
   perplexity tool does ("[1]4.1234,[2]..."), then a final estimate; with
   --json stdout holds only the JSON object. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/interrupt.h"
#include "cli/session.h"
#include "engine/ggml_numerics.h"
#include "engine/ppl.h"

static const char k_usage[] =
    "quench ppl MODEL --text FILE --ctx N [--protocol gptq|llamacpp] [--chunks K] [--batch B] "
    "[--threads T] [--tokenizer PATH] [--device cpu|cuda] [--extend-ctx] [--ggml-numerics] [--json]";

static const char k_help[] =
    "usage: quench ppl MODEL --text FILE --ctx N [options]\n"
    "Perplexity of MODEL (a Hugging Face folder, a quench run folder, a .gguf or a llama2.c .bin) on a text.\n"
    "\n"
    "  --text FILE          the text to score (UTF-8)                                   required\n"
    "  --ctx N              tokens per window                                           required\n"
    "  --protocol P         gptq: every token of non-overlapping windows is scored;\n"
    "                       llamacpp: BOS first, the second half of each window scored  default gptq\n"
    "  --chunks K           score only the first K windows (0 = all)                    default 0\n"
    "  --batch B            tokens per forward call                                     default ctx\n"
    "  --ggml-numerics      round as llama.cpp's CPU backend does (8-bit activations, f16 KV cache)\n"
    "  --device D           cpu or cuda (cuda needs a build with nvcc and an NVIDIA GPU)  default cpu\n"
    "  --threads T          worker threads (0 = quench's default for this machine)      default 0\n"
    "  --tokenizer PATH     tokenizer.json or tokenizer.bin when MODEL lacks one\n"
    "  --extend-ctx         allow N past the model's context length\n"
    "  --json               stdout holds one JSON object: ppl, nll, nll_stderr, tokens, chunks,\n"
    "                       ctx, protocol, seconds, tokens_per_second, chunk_ppl (running ppl per chunk)\n"
    "\n"
    "On a terminal the running perplexity is printed after each chunk, as llama.cpp's\n"
    "perplexity tool does ([1]4.12,[2]4.05,...), then the final estimate with its error.\n"
    "\n"
    "examples:\n"
    "  quench ppl assets/stories260K --text ../shared/text/tinystories-valid-head.txt --ctx 256 --protocol llamacpp --chunks 100\n"
    "  quench ppl runs/stories260K-spqr-3.6 --text ../shared/text/tinystories-valid-head.txt --ctx 256 --json\n";

/* Progress bar on stderr, and the running perplexity of every chunk kept (and
   printed llama.cpp-style when stdout is a terminal). */
typedef struct {
    qn_cli_progress prog;
    bool   chunks_on_stdout;
    double *chunk_ppl;
    size_t n, cap;
} ppl_view;

static void on_event(void *ctx, const qn_event *ev)
{
    ppl_view *v = ctx;
    if (ev->kind == QN_EV_PROGRESS && ev->stage && strcmp(ev->stage, "ppl") == 0) {
        if (v->n == v->cap) {
            size_t cap = v->cap ? v->cap * 2 : 64;
            double *p = realloc(v->chunk_ppl, cap * sizeof *p);
            if (p) { v->chunk_ppl = p; v->cap = cap; }
        }
        if (v->n < v->cap) v->chunk_ppl[v->n++] = ev->value;
        if (v->chunks_on_stdout) {
            qn_cli_progress_clear(&v->prog);
            printf("[%lld]%.4f,", (long long)ev->done, ev->value);
            if (ev->done == ev->total || ev->done % 10 == 0) putchar('\n');
            fflush(stdout);
        }
    }
    qn_emit(qn_cli_progress_sink(&v->prog), ev);
}

int qn_cmd_ppl(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "text", required_argument, 0, 't' }, { "ctx", required_argument, 0, 'c' },
        { "protocol", required_argument, 0, 'p' }, { "chunks", required_argument, 0, 'k' },
        { "batch", required_argument, 0, 'b' }, { "threads", required_argument, 0, 'T' },
        { "tokenizer", required_argument, 0, 'z' }, { "json", no_argument, 0, 'j' }, { "extend-ctx", no_argument, 0, 'e' },
        { "ggml-numerics", no_argument, 0, 'g' }, { "device", required_argument, 0, 'D' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *text = NULL, *tokenizer = NULL;
    size_t ctx = 0, chunks = 0, batch = 0, threads = 0;
    bool json = false, extend = false, ggml = false;
    qn_ppl_protocol protocol = QN_PPL_GPTQ;
    const char *device = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': text = optarg; break;
        case 'c': if (!qn_arg_size("ppl", "--ctx", optarg, 1, 1 << 24, &ctx)) return 2; break;
        case 'k': if (!qn_arg_size("ppl", "--chunks", optarg, 0, SIZE_MAX >> 1, &chunks)) return 2; break;
        case 'b': if (!qn_arg_size("ppl", "--batch", optarg, 1, 1 << 20, &batch)) return 2; break;
        case 'T': if (!qn_arg_size("ppl", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'z': tokenizer = optarg; break;
        case 'j': json = true; break;
        case 'e': extend = true; break;
        case 'g': ggml = true; break;
        case 'p':
            if (strcmp(optarg, "gptq") == 0) protocol = QN_PPL_GPTQ;
            else if (strcmp(optarg, "llamacpp") == 0) protocol = QN_PPL_LLAMACPP;
            else return qn_arg_usage_error("ppl", k_usage, "--protocol: expected gptq or llamacpp, found '%s'", optarg);
            break;
        case 'D': device = optarg; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option("ppl", longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("ppl", k_usage, "expected one MODEL");
    if (!text) return qn_arg_usage_error("ppl", k_usage, "--text FILE is required");
    if (!ctx) return qn_arg_usage_error("ppl", k_usage, "--ctx N is required");

    ppl_view view = { .chunks_on_stdout = !json && isatty(STDOUT_FILENO) };
    qn_cli_progress *prog = &view.prog;
    qn_cli_progress_init(prog);
    int dev_rc = device ? qn_cli_use_device("ppl", device) : 0;
    if (dev_rc) return dev_rc;
    qn_model *m = qn_cli_open_model("ppl", argv[optind], tokenizer, (int)threads, prog);
    if (!m) return 1;
    if (extend) qn_model_extend_ctx(m, ctx);
    qn_err err = {0};
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_ppl_result res = {0};
    int rc = 0;
    qn_ppl_opts opts = { .protocol = protocol, .ctx = ctx, .max_chunks = chunks, .batch = batch };
    if ((ggml && qn_ggml_numerics_enable(m, &err)) || qn_ppl_tokenize_file(m, text, &tokens, &n, &err) ||
        qn_ppl_run(m, tokens, n, &opts, (qn_event_sink){ on_event, &view }, qn_cli_interrupt_install(), &res, &err)) {
        qn_cli_progress_clear(prog);
        rc = err.status == QN_ERR_CANCELLED ? qn_cli_interrupt_exit_code() : qn_cli_fail("ppl", &err);
        goto done;
    }
    qn_cli_progress_clear(prog);
    double tps = res.seconds > 0 ? (double)(res.chunks * ctx) / res.seconds : 0;
    FILE *human = json ? stderr : stdout;
    if (view.chunks_on_stdout)
        printf("Final estimate: PPL = %.4f +/- %.5f\n", res.ppl, res.ppl * res.nll_stderr);
    fprintf(human, "perplexity %.4f +/- %.4f (nll %.5f nats/token) over %zu tokens in %zu chunks of %zu (%s protocol)\n",
           res.ppl, res.ppl * res.nll_stderr, res.nll, res.tokens, res.chunks, ctx,
           protocol == QN_PPL_GPTQ ? "gptq" : "llamacpp");
    fprintf(human, "%.2f s, %.0f tokens/s\n", res.seconds, tps);
    if (json) {
        json_t *o = json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:s, s:f, s:f}", "ppl", res.ppl, "nll", res.nll,
                              "nll_stderr", res.nll_stderr, "tokens", (json_int_t)res.tokens,
                              "chunks", (json_int_t)res.chunks, "ctx", (json_int_t)ctx,
                              "protocol", protocol == QN_PPL_GPTQ ? "gptq" : "llamacpp",
                              "seconds", res.seconds, "tokens_per_second", tps);
        json_t *per = json_array();
        for (size_t i = 0; i < view.n; i++) json_array_append_new(per, json_real(view.chunk_ppl[i]));
        json_object_set_new(o, "chunk_ppl", per);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    }
done:
    free(view.chunk_ppl);
    free(tokens);
    qn_model_close(m);
    return rc;
}
