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
/* For subcommands that take only positional arguments: prints the usage for
   --help/-h (returns 0) or a usage error when argc - 1 != n (returns 2); -1 means go on. */
int  qn_arg_positional(const char *cmd, const char *usage, int argc, char **argv, int n);

#endif
