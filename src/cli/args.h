/* args.h: checked conversion of option values (getopt_long does the parsing).
   Each prints "quench <cmd>: --opt: <problem>" to stderr and returns false on bad input. */
#ifndef QN_CLI_ARGS_H
#define QN_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool qn_arg_size(const char *cmd, const char *opt, const char *val, size_t lo, size_t hi, size_t *out);
bool qn_arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out);
bool qn_arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
/* Prints "quench <cmd>: <msg>" and returns 2, for usage errors. */
int  qn_arg_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* `--help`: prints the subcommand's help text (usage, every option with its
   default, examples) to stdout and returns 0. */
int  qn_arg_help(const char *help);
/* getopt_long's '?' (commands.c turns opterr off): names the bad word on the
   line, says "did you mean --X" for the nearest long option, returns 2. */
struct option;
int  qn_arg_bad_option(const char *cmd, const struct option *longopts, int argc, char **argv);
/* The candidate nearest to word by edit distance when it is close enough to
   be a typo (at most a third of the word's length, at least 1); else NULL. */
const char *qn_arg_nearest(const char *word, const char *const *cands, size_t n);
/* For subcommands that take only positional arguments: prints the usage for
   --help/-h (returns 0) or a usage error when argc - 1 != n (returns 2); -1 means go on. */
int  qn_arg_positional(const char *cmd, const char *usage, int argc, char **argv, int n);
/* The same, printing the longer help text for --help. */
int  qn_arg_positional_help(const char *cmd, const char *usage, const char *help, int argc, char **argv, int n);

#endif
