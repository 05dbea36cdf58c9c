/* args.c: option value checks (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <getopt.h>
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

int qn_arg_help(const char *help)
{
    fputs(help, stdout);
    if (help[0] && help[strlen(help) - 1] != '\n') putchar('\n');
    return 0;
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *qn_arg_nearest(const char *word, const char *const *cands, size_t n)
{
    size_t limit = strlen(word) / 3 < 1 ? 1 : strlen(word) / 3, best = (size_t)-1;
    const char *hit = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        /* a prefix counts as close too: --thread for --threads, --pre for --preset */
        if (strncmp(cands[i], word, strlen(word)) == 0 && strlen(word) >= 3) d = d < 1 ? d : 1;
        if (d <= limit && d < best) { best = d; hit = cands[i]; }
    }
    return hit;
}

int qn_arg_bad_option(const char *cmd, const struct option *longopts, int argc, char **argv)
{
    const char *word = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "";
    char name[64];
    snprintf(name, sizeof name, "%s", word + strspn(word, "-"));
    name[strcspn(name, "=")] = 0;
    const char *names[64];
    size_t n = 0;
    for (; longopts[n].name && n < 64; n++) {
        names[n] = longopts[n].name;
        if (word[0] == '-' && word[1] == '-' && strcmp(name, longopts[n].name) == 0 &&
            longopts[n].has_arg == required_argument) {
            fprintf(stderr, "quench %s: %s needs a value (quench %s --help lists every option)\n", cmd, word, cmd);
            return 2;
        }
    }
    if (optopt > 0 && optopt < 128 && word[0] == '-' && word[1] != '-')
        fprintf(stderr, "quench %s: unknown or incomplete option '-%c'", cmd, optopt);
    else
        fprintf(stderr, "quench %s: unknown option '%s'", cmd, word);
    const char *near = qn_arg_nearest(name, names, n);
    if (near) fprintf(stderr, "; did you mean --%s?", near);
    fprintf(stderr, " (quench %s --help lists every option)\n", cmd);
    return 2;
}

int qn_arg_positional(const char *cmd, const char *usage, int argc, char **argv, int n)
{
    return qn_arg_positional_help(cmd, usage, usage, argc, argv, n);
}

int qn_arg_positional_help(const char *cmd, const char *usage, const char *help, int argc, char **argv, int n)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) return qn_arg_help(help);
    if (argc - 1 != n) return qn_arg_usage_error(cmd, usage, "expected %d arguments", n);
    return -1;
}
