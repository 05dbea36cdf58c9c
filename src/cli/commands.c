/* commands.c: dispatch argv[1] to a subcommand; no arguments opens the workbench. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"

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

#define N_COMMANDS (sizeof k_commands / sizeof k_commands[0])

static void print_usage(FILE *fp)
{
    fprintf(fp, "usage: quench [SUBCOMMAND [ARGS...]]   (no subcommand: the terminal workbench)\n\nsubcommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(fp, "  %-14s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(fp, "\n`quench SUBCOMMAND --help` lists its options with their defaults and examples;\n"
                "`quench --version` prints the version. Results go to stdout (only JSON with --json),\n"
                "progress and messages to stderr.\n");
}

static const qn_cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (k_commands[i].run && strcmp(name, k_commands[i].name) == 0) return &k_commands[i];
    return NULL;
}

int qn_cli_main(int argc, char **argv)
{
    if (argc < 2) return qn_tui_main(argc, argv);
    opterr = 0;   /* bad options are reported by qn_arg_bad_option, with a suggestion */
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "version") == 0) {
        printf("quench %s\n", QN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        const qn_cli_command *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (c) return c->run(2, (char *[]){ argv[2], "--help", NULL });
        print_usage(stdout);
        return 0;
    }
    const qn_cli_command *c = find_command(argv[1]);
    if (c) return c->run(argc - 1, argv + 1);
    const char *names[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) names[i] = k_commands[i].name;
    const char *near = qn_arg_nearest(argv[1], names, N_COMMANDS);
    fprintf(stderr, "quench: unknown subcommand '%s'", argv[1]);
    if (near) fprintf(stderr, "; did you mean '%s'?", near);
    fputs("\n\n", stderr);
    print_usage(stderr);
    return 2;
}
