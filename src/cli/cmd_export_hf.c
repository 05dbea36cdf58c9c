/* cmd_export_hf.c: `quench export-hf MODEL OUTDIR [--dtype f16|bf16|f32]`: any
   model quench reads (a GGUF file, a Hugging Face folder) written as a Hugging
   Face folder with its weights dequantized to the chosen dtype. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/progress.h"
#include "cli/session.h"
#include "engine/export_hf.h"
#include "engine/model.h"

static const char k_usage[] = "quench export-hf MODEL OUTDIR [--dtype f16|bf16|f32]";

int qn_cmd_export_hf(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dtype", required_argument, 0, 'd' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    qn_dtype dtype = QN_DTYPE_F32;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            if (strcmp(optarg, "f32") == 0) dtype = QN_DTYPE_F32;
            else if (strcmp(optarg, "f16") == 0) dtype = QN_DTYPE_F16;
            else if (strcmp(optarg, "bf16") == 0) dtype = QN_DTYPE_BF16;
            else return qn_arg_usage_error("export-hf", k_usage, "--dtype: expected f16, bf16 or f32, found '%s'", optarg);
            break;
        case 'h': printf("usage: %s\n", k_usage); return 0;
        default: return qn_arg_usage_error("export-hf", k_usage, "bad option");
        }
    }
    if (optind != argc - 2) return qn_arg_usage_error("export-hf", k_usage, "expected MODEL and OUTDIR");
    const char *model = argv[optind], *out = argv[optind + 1];
    qn_err err = {0};
    qn_config cfg;
    qn_weight_source src = {0};
    qn_tokenizer *tok = NULL;
    qn_source_kind kind;
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    int rc = 0;
    if (qn_model_source_open(model, &cfg, &src, &tok, &kind, &err)) {
        rc = qn_cli_fail("export-hf", &err);
    } else if (!tok) {
        qn_err_set(&err, QN_ERR_FORMAT, "%s: has no tokenizer to export (a llama2.c checkpoint goes through "
                   "import-llama2c)", model);
        rc = qn_cli_fail("export-hf", &err);
    } else if (qn_hf_export_as(out, &cfg, &src, tok, dtype, qn_cli_progress_sink(&prog), &err)) {
        qn_cli_progress_clear(&prog);
        rc = qn_cli_fail("export-hf", &err);
    } else {
        qn_cli_progress_clear(&prog);
        printf("wrote %s: %s, %d layers, dim %d, vocab %d, %lld parameters in %s\n", out, cfg.arch, cfg.n_layers,
               cfg.dim, cfg.vocab_size, qn_config_n_params(&cfg), qn_dtype_name(dtype));
    }
    qn_tok_free(tok);
    if (src.close) src.close(src.ctx);
    return rc;
}
