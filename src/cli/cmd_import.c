/* cmd_import.c: `quench import-llama2c MODEL.bin TOKENIZER.bin OUTDIR`: a
   llama2.c checkpoint and its tokenizer become a Hugging Face folder. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/progress.h"
#include "cli/session.h"
#include "engine/export_hf.h"
#include "engine/llama2c.h"

static const char k_usage[] = "quench import-llama2c MODEL.bin TOKENIZER.bin OUTDIR";

static const char k_help[] =
    "usage: quench import-llama2c MODEL.bin TOKENIZER.bin OUTDIR\n"
    "Converts a llama2.c checkpoint and its tokenizer into a Hugging Face folder (config.json,\n"
    "model.safetensors, tokenizer.json) that quench and transformers load. No options.\n"
    "\n"
    "example:\n"
    "  quench import-llama2c ../shared/models/stories260K/stories260K.bin ../shared/models/stories260K/tok512.bin out/stories260K\n";

int qn_cmd_import_llama2c(int argc, char **argv)
{
    int early = qn_arg_positional_help("import-llama2c", k_usage, k_help, argc, argv, 3);
    if (early >= 0) return early;
    const char *model = argv[1], *tokpath = argv[2], *out = argv[3];
    qn_err err = {0};
    qn_config cfg;
    qn_weight_source src = {0};
    qn_tokenizer *tok = NULL;
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    int rc = 0;
    if (qn_llama2c_open(model, &cfg, &src, &err) ||
        qn_tok_load_llama2c(&tok, tokpath, cfg.vocab_size, &err) ||
        qn_hf_export(out, &cfg, &src, tok, qn_cli_progress_sink(&prog), &err)) {
        qn_cli_progress_clear(&prog);
        rc = qn_cli_fail("import-llama2c", &err);
    } else {
        qn_cli_progress_clear(&prog);
        printf("wrote %s: %s, %d layers, dim %d, vocab %d, %lld parameters\n", out, cfg.arch, cfg.n_layers,
               cfg.dim, cfg.vocab_size, qn_config_n_params(&cfg));
    }
    qn_tok_free(tok);
    if (src.close) src.close(src.ctx);
    return rc;
}
