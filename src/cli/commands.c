/* commands.c: dispatch argv[1] to a subcommand; no arguments opens the workbench. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "tui/tui.h"

static const qn_cli_command k_commands[] = {
    { "inspect", "architecture, parameters, tensors and size of a model", qn_cmd_inspect },
    { "tokenize", "token ids and pieces of a text", qn_cmd_tokenize },
    { "ppl", "perplexity on a text (gptq or llama.cpp protocol)", qn_cmd_ppl },
    { "generate", "generate text from a prompt, streamed", qn_cmd_generate },
    { "quantize", "compress a whole model (RTN, GPTQ, SpQR, AQLM) with calibration", qn_cmd_quantize },
    { "presets", "the compression presets with the projected size of a model", qn_cmd_presets },
    { "logits", "next-token logits of a text (top-k, or all as JSON)", qn_cmd_logits },
    { "export-png", "a quantization run's pictures (weights, error, outliers, ...) as PNG", qn_cmd_export_png },
    { "show", "a quantization run's picture on the terminal (ANSI colours)", qn_cmd_show },
    { "import-llama2c", "convert a llama2.c checkpoint into a Hugging Face folder", qn_cmd_import_llama2c },
    { "export-hf", "a model (GGUF, Hugging Face folder) as a Hugging Face folder in f32, f16 or bf16", qn_cmd_export_hf },
    { "export-spqr-hf", "rewrite a SpQR w3 16x16 run in the Hugging Face SpQR layout (transformers)", qn_cmd_export_spqr_hf },
    { "bench", "prompt and decode speed (tokens/s) against the memory bound", qn_cmd_bench },
    { "bench-kernel", "one compressed-weight kernel against OpenBLAS on a random matrix", qn_cmd_bench_kernel },
    { "quantize-layer", "quantize one layer file (weight + hessian) with rtn, gptq, spqr or aqlm", qn_cmd_quantize_layer },
};

static void print_usage(FILE *fp)
{
    fprintf(fp, "usage: quench [SUBCOMMAND [ARGS...]]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(fp, "  %-14s %s\n", k_commands[i].name, k_commands[i].summary);
}

int qn_cli_main(int argc, char **argv)
{
    if (argc < 2) return qn_tui_main(argc, argv);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        print_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (k_commands[i].run && strcmp(argv[1], k_commands[i].name) == 0)
            return k_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "quench: unknown subcommand '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
