/* cmd_logits.c: `quench logits MODEL --text TEXT [--top K] [--json]`: the
   next-token logits at every position of a text (BOS prepended when the
   tokenizer adds one), for comparing quench with other runtimes. --json prints
   {"ids": [...], "logits": [[vocab floats] per position]}. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/forward.h"

static const char k_usage[] = "quench logits MODEL --text TEXT [--top K] [--json]";

static const char k_help[] =
    "usage: quench logits MODEL --text TEXT [--top K] [--json]\n"
    "Next-token logits after every position of TEXT (BOS added as the model's tokenizer does), for\n"
    "comparing with other runtimes.\n"
    "MODEL: a Hugging Face folder, a quench run folder, a .gguf file or a llama2.c .bin.\n"
    "\n"
    "  --text TEXT          the text (UTF-8)                                     required\n"
    "  --top K              tokens listed per position                           default 5\n"
    "  --json               stdout holds one JSON object: ids, logits (every position, whole vocabulary)\n"
    "\n"
    "examples:\n"
    "  quench logits assets/stories260K --text \"Once upon a time\" --top 3\n";

static void print_top(const qn_model *m, const float *l, size_t vocab, size_t k)
{
    /* k scans over a copy: simple, and k is small */
    float *c = malloc(vocab * sizeof *c);
    if (!c) return;
    memcpy(c, l, vocab * sizeof *c);
    for (size_t i = 0; i < k && i < vocab; i++) {
        size_t best = 0;
        for (size_t v = 1; v < vocab; v++) if (c[v] > c[best]) best = v;
        printf("  %6zu %-16s %9.4f\n", best, qn_tok_piece(m->tok, (int)best), c[best]);
        c[best] = -1e30f;
    }
    free(c);
}

int qn_cmd_logits(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "text", required_argument, 0, 't' }, { "top", required_argument, 0, 'k' },
        { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *text = NULL;
    size_t top = 5;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': text = optarg; break;
        case 'k': if (!qn_arg_size("logits", "--top", optarg, 1, 1000, &top)) return 2; break;
        case 'j': json = true; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option("logits", longopts, argc, argv);
        }
    }
    if (optind != argc - 1 || !text) return qn_arg_usage_error("logits", k_usage, "expected MODEL and --text TEXT");
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    qn_model *m = qn_cli_open_model("logits", argv[optind], NULL, 0, &prog);
    if (!m) return 1;
    qn_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    qn_state *st = NULL;
    const float *logits = NULL;
    int rc = 0;
    qn_tok_encode_opts eo = { .add_bos = qn_tok_adds_bos(m->tok) };
    if (qn_tok_encode(m->tok, text, strlen(text), eo, &ids, &n, &err) ||
        (n == 0 && qn_err_set(&err, QN_ERR_ARG, "the text has no tokens")) ||
        qn_state_create(&st, m, n, n, &err) || qn_forward(m, st, ids, n, 0, true, &logits, &err)) {
        rc = qn_cli_fail("logits", &err);
        goto done;
    }
    size_t vocab = (size_t)m->cfg.vocab_size;
    if (json) {
        json_t *o = json_object(), *jids = json_array(), *rows = json_array();
        for (size_t t = 0; t < n; t++) {
            json_array_append_new(jids, json_integer(ids[t]));
            json_t *row = json_array();
            for (size_t v = 0; v < vocab; v++) json_array_append_new(row, json_real(logits[t * vocab + v]));
            json_array_append_new(rows, row);
        }
        json_object_set_new(o, "ids", jids);
        json_object_set_new(o, "logits", rows);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    } else {
        for (size_t t = 0; t < n; t++) {
            printf("position %zu, after %d '%s':\n", t, ids[t], qn_tok_piece(m->tok, ids[t]));
            print_top(m, logits + t * vocab, vocab, top);
        }
    }
done:
    qn_state_free(st);
    free(ids);
    qn_model_close(m);
    return rc;
}
