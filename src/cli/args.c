/* args.c: option value checks (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool qn_arg_size(const char *cmd, const char *opt, const char *val, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || *end || end == val || v < (long long)lo || (unsigned long long)v > hi) {
        fprintf(stderr, "quench %s: %s: expected an integer in %zu..%zu, found '%s'\n", cmd, opt, lo, hi, val);
        return false;
    }
    *out = (size_t)v;
    return true;
}

bool qn_arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || *end || end == val || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "quench %s: %s: expected a number in %g..%g, found '%s'\n", cmd, opt, lo, hi, val);
        return false;
    }
    *out = v;
    return true;
}

bool qn_arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end || end == val || val[0] == '-') {
        fprintf(stderr, "quench %s: %s: expected a non-negative integer, found '%s'\n", cmd, opt, val);
        return false;
    }
    *out = v;
    return true;
}

int qn_arg_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    fprintf(stderr, "quench %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    return 2;
}

int qn_arg_positional(const char *cmd, const char *usage, int argc, char **argv, int n)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s\n", usage);
        return 0;
    }
    if (argc - 1 != n) return qn_arg_usage_error(cmd, usage, "expected %d arguments", n);
    return -1;
}
