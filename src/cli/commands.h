/* commands.h: the subcommand table of the quench binary. Each subcommand
   lives in its own cli/cmd_<name>.c and is listed once in commands.c. */
#ifndef QN_CLI_COMMANDS_H
#define QN_CLI_COMMANDS_H

#define QN_VERSION "0.4.0"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);   /* argv[0] is the subcommand name */
} qn_cli_command;

int qn_cli_main(int argc, char **argv);

int qn_cmd_inspect(int argc, char **argv);
int qn_cmd_tokenize(int argc, char **argv);
int qn_cmd_ppl(int argc, char **argv);
int qn_cmd_generate(int argc, char **argv);
int qn_cmd_import_llama2c(int argc, char **argv);
int qn_cmd_bench(int argc, char **argv);
int qn_cmd_bench_kernel(int argc, char **argv);
int qn_cmd_quantize(int argc, char **argv);
int qn_cmd_presets(int argc, char **argv);
int qn_cmd_logits(int argc, char **argv);
int qn_cmd_export_png(int argc, char **argv);
int qn_cmd_show(int argc, char **argv);
int qn_cmd_quantize_layer(int argc, char **argv);
int qn_cmd_export_spqr_hf(int argc, char **argv);
int qn_cmd_export_hf(int argc, char **argv);

#endif
