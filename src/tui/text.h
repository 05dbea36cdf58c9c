/* text.h: width-aware strings for the terminal: how many columns a UTF-8
   string takes (wcwidth, so CJK counts two and combining marks none), and
   clipping to a column budget with an ellipsis. Invalid UTF-8 counts one
   column per byte and is drawn as '?'. Also human-readable sizes and counts.
   No ncurses here. */
#ifndef QN_TUI_TEXT_H
#define QN_TUI_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int    qn_text_width(const char *s);
/* The first bytes of s that fit in cols columns; with ellipsis set and s too
   wide, room is kept for the ellipsis (of width 1) and *clipped is set. */
size_t qn_text_fit(const char *s, int cols, bool ellipsis, bool *clipped);
/* Copies s into out (cap bytes) replacing control characters and invalid
   UTF-8 by '?' (tokens and file names may hold anything). */
void   qn_text_sanitize(const char *s, size_t n, char *out, size_t cap);
/* The first line of s in cols columns, broken at a space (or after a '/')
   when one lies in the second half of the line, at a '\n' when earlier:
   returns its length in bytes; *next receives where the next line starts. */
size_t qn_text_wrap(const char *s, int cols, size_t *next);
/* Copies src into dst (cap bytes), cutting it at a character boundary when too long. */
void   qn_text_copy(char *dst, size_t cap, const char *src);
/* "1.0 MiB", "3.2 GiB" */
void   qn_text_bytes(uint64_t n, char *out, size_t cap);
/* "260,032" */
void   qn_text_count(long long n, char *out, size_t cap);
/* "1:05:03", "4:07", "12s" */
void   qn_text_duration(double seconds, char *out, size_t cap);

#endif
