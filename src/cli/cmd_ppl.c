/* cmd_ppl.c: `quench ppl MODEL --text FILE --ctx N [--protocol gptq|llamacpp]
   [--chunks K] [--batch B] [--threads T] [--tokenizer PATH] [--json]`. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/interrupt.h"
#include "cli/session.h"
#include "engine/ppl.h"

static const char k_usage[] =
    "quench ppl MODEL --text FILE --ctx N [--protocol gptq|llamacpp] [--chunks K] [--batch B] "
    "[--threads T] [--device cpu|cuda] [--tokenizer PATH] [--extend-ctx] [--json]";

int qn_cmd_ppl(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "text", required_argument, 0, 't' }, { "ctx", required_argument, 0, 'c' },
        { "protocol", required_argument, 0, 'p' }, { "chunks", required_argument, 0, 'k' },
        { "batch", required_argument, 0, 'b' }, { "threads", required_argument, 0, 'T' },
        { "tokenizer", required_argument, 0, 'z' }, { "json", no_argument, 0, 'j' }, { "extend-ctx", no_argument, 0, 'e' },
        { "device", required_argument, 0, 'D' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *text = NULL, *tokenizer = NULL;
    size_t ctx = 0, chunks = 0, batch = 0, threads = 0;
    bool json = false, extend = false;
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
        case 'p':
            if (strcmp(optarg, "gptq") == 0) protocol = QN_PPL_GPTQ;
            else if (strcmp(optarg, "llamacpp") == 0) protocol = QN_PPL_LLAMACPP;
            else return qn_arg_usage_error("ppl", k_usage, "--protocol: expected gptq or llamacpp, found '%s'", optarg);
            break;
        case 'D': device = optarg; break;
        case 'h': printf("usage: %s\n", k_usage); return 0;
        default: return qn_arg_usage_error("ppl", k_usage, "bad option");
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("ppl", k_usage, "expected one MODEL");
    if (!text) return qn_arg_usage_error("ppl", k_usage, "--text FILE is required");
    if (!ctx) return qn_arg_usage_error("ppl", k_usage, "--ctx N is required");

    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    int dev_rc = device ? qn_cli_use_device("ppl", device) : 0;
    if (dev_rc) return dev_rc;
    qn_model *m = qn_cli_open_model("ppl", argv[optind], tokenizer, (int)threads, &prog);
    if (!m) return 1;
    if (extend) qn_model_extend_ctx(m, ctx);
    qn_err err = {0};
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_ppl_result res = {0};
    int rc = 0;
    qn_ppl_opts opts = { .protocol = protocol, .ctx = ctx, .max_chunks = chunks, .batch = batch };
    if (qn_ppl_tokenize_file(m, text, &tokens, &n, &err) ||
        qn_ppl_run(m, tokens, n, &opts, qn_cli_progress_sink(&prog), qn_cli_interrupt_install(), &res, &err)) {
        qn_cli_progress_clear(&prog);
        rc = err.status == QN_ERR_CANCELLED ? qn_cli_interrupt_exit_code() : qn_cli_fail("ppl", &err);
        goto done;
    }
    qn_cli_progress_clear(&prog);
    double tps = res.seconds > 0 ? (double)(res.chunks * ctx) / res.seconds : 0;
    printf("perplexity %.4f +/- %.4f (nll %.5f nats/token) over %zu tokens in %zu chunks of %zu (%s protocol)\n",
           res.ppl, res.ppl * res.nll_stderr, res.nll, res.tokens, res.chunks, ctx,
           protocol == QN_PPL_GPTQ ? "gptq" : "llamacpp");
    printf("%.2f s, %.0f tokens/s\n", res.seconds, tps);
    if (json) {
        json_t *o = json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:s, s:f, s:f}", "ppl", res.ppl, "nll", res.nll,
                              "nll_stderr", res.nll_stderr, "tokens", (json_int_t)res.tokens,
                              "chunks", (json_int_t)res.chunks, "ctx", (json_int_t)ctx,
                              "protocol", protocol == QN_PPL_GPTQ ? "gptq" : "llamacpp",
                              "seconds", res.seconds, "tokens_per_second", tps);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    }
done:
    free(tokens);
    qn_model_close(m);
    return rc;
}
