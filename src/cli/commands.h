/* commands.h: the subcommand table of the quench binary. Each subcommand
   lives in its own cli/cmd_<name>.c and is listed once in commands.c. */
#ifndef QN_CLI_COMMANDS_H
#define QN_CLI_COMMANDS_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);   /* argv[0] is the subcommand name */
} qn_cli_command;

int qn_cli_main(int argc, char **argv);

#endif
