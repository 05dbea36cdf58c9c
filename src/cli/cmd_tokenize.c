/* cmd_tokenize.c: `quench tokenize MODEL|TOKENIZER --text TEXT [--bos] [--special] [--json]`:
   ids and pieces of a text. TOKENIZER is a tokenizer.json or a llama2.c
   tokenizer.bin (then --vocab N if it cannot be guessed from the file). */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/fileio.h"

static const char k_usage[] = "quench tokenize MODEL|TOKENIZER --text TEXT [--bos] [--special] [--vocab N] [--json]";

static const char k_help[] =
    "usage: quench tokenize MODEL|TOKENIZER --text TEXT [options]\n"
    "Token ids and pieces of TEXT, from a model's tokenizer or a tokenizer file (tokenizer.json,\n"
    "llama2.c tokenizer.bin with --vocab).\n"
    "\n"
    "  --text TEXT          the text (UTF-8)                                     required\n"
    "  --bos                prepend the BOS token                                default off\n"
    "  --special            parse special tokens written in the text             default off\n"
    "  --vocab N            vocabulary size of a llama2.c tokenizer.bin\n"
    "  --json               stdout holds one JSON object: ids, pieces\n"
    "\n"
    "examples:\n"
    "  quench tokenize assets/stories260K --text \"Once upon a time\"\n"
    "  quench tokenize ../shared/tokenizers/mistral-32k/tokenizer.json --text \"Hello world\" --json\n";

static qn_status open_any(const char *path, size_t vocab, qn_tokenizer **tok, qn_model **model, qn_err *err)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return qn_tok_load_hf(tok, path, err);
    if (n >= 4 && strcmp(path + n - 4, ".bin") == 0 && vocab) return qn_tok_load_llama2c(tok, path, (int)vocab, err);
    qn_status s = qn_model_open(model, path, NULL, err);
    if (s == QN_OK) *tok = (*model)->tok;
    return s;
}

int qn_cmd_tokenize(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "text", required_argument, 0, 't' }, { "bos", no_argument, 0, 'b' },
        { "special", no_argument, 0, 's' }, { "vocab", required_argument, 0, 'v' },
        { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *text = NULL;
    bool json = false, bos = false, special = false;
    size_t vocab = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': text = optarg; break;
        case 'b': bos = true; break;
        case 's': special = true; break;
        case 'v': if (!qn_arg_size("tokenize", "--vocab", optarg, 1, 1 << 24, &vocab)) return 2; break;
        case 'j': json = true; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option("tokenize", longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("tokenize", k_usage, "expected one MODEL or TOKENIZER");
    if (!text) return qn_arg_usage_error("tokenize", k_usage, "--text TEXT is required");
    qn_err err = {0};
    qn_tokenizer *tok = NULL;
    qn_model *model = NULL;
    if (open_any(argv[optind], vocab, &tok, &model, &err)) return qn_cli_fail("tokenize", &err);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    qn_tok_encode_opts eo = { .add_bos = bos, .parse_special = special };
    if (qn_tok_encode(tok, text, strlen(text), eo, &ids, &n, &err)) {
        rc = qn_cli_fail("tokenize", &err);
        goto done;
    }
    if (json) {
        json_t *o = json_object(), *jids = json_array(), *jpieces = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(jids, json_integer(ids[i]));
            const char *p = qn_tok_piece(tok, ids[i]);
            json_array_append_new(jpieces, json_stringn_nocheck(p, strlen(p)));
        }
        json_object_set_new(o, "ids", jids);
        json_object_set_new(o, "pieces", jpieces);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
        putchar('\n');
        json_decref(o);
    } else {
        for (size_t i = 0; i < n; i++) printf("%6d  '%s'\n", ids[i], qn_tok_piece(tok, ids[i]));
        printf("%zu tokens\n", n);
    }
done:
    free(ids);
    if (model) qn_model_close(model); else qn_tok_free(tok);
    return rc;
}
