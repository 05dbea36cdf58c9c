/* text.c: UTF-8 widths and clipping, sizes and durations (see text.h). The
   locale is set once by the workbench (setlocale(LC_ALL, "")); mbrtowc and
   wcwidth follow it, so in a non-UTF-8 locale every byte is one column. */
#include "tui/text.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

/* One character of s: its length in bytes (>= 1) and width in columns. */
static size_t next_char(const char *s, size_t avail, int *cols)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc;
    size_t n = mbrtowc(&wc, s, avail, &st);
    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) { *cols = 1; return 1; }
    int w = wcwidth(wc);
    *cols = w < 0 ? 1 : w;
    return n;
}

int qn_text_width(const char *s)
{
    int w = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        int c;
        i += next_char(s + i, len - i, &c);
        w += c;
    }
    return w;
}

size_t qn_text_fit(const char *s, int cols, bool ellipsis, bool *clipped)
{
    if (clipped) *clipped = false;
    if (cols <= 0) return 0;
    size_t len = strlen(s);
    if (qn_text_width(s) <= cols) return len;
    if (clipped) *clipped = true;
    int budget = ellipsis ? cols - 1 : cols, w = 0;
    size_t i = 0;
    while (i < len) {
        int c;
        size_t n = next_char(s + i, len - i, &c);
        if (w + c > budget) break;
        w += c;
        i += n;
    }
    return i;
}

void qn_text_sanitize(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) { out[o++] = ch == '\n' || ch == '\t' ? ' ' : '?'; i++; continue; }
        if (ch < 0x80) { out[o++] = (char)ch; i++; continue; }
        mbstate_t st;
        memset(&st, 0, sizeof st);
        wchar_t wc;
        size_t k = mbrtowc(&wc, s + i, n - i, &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0 || wcwidth(wc) < 0) { out[o++] = '?'; i++; continue; }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    out[o < cap ? o : cap - 1] = 0;
}

size_t qn_text_wrap(const char *s, int cols, size_t *next)
{
    size_t len = strlen(s), nl = strcspn(s, "\n");
    size_t fit = qn_text_fit(s, cols, false, NULL);
    if (fit == 0 && len > 0) {   /* not even one character fits: take one anyway */
        int c;
        fit = next_char(s, len, &c);
    }
    if (nl < fit) { *next = nl + 1; return nl; }
    if (fit < len) {
        size_t cut = fit;
        while (cut > fit / 2 && s[cut] != ' ' && s[cut - 1] != '/') cut--;
        if (cut > fit / 2) fit = cut;
    }
    *next = fit < len && s[fit] == ' ' ? fit + 1 : fit;
    return fit;
}

void qn_text_copy(char *dst, size_t cap, const char *src)
{
    if (!cap) return;
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

void qn_text_bytes(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) { v /= 1024; u++; }
    if (u == 0) snprintf(out, cap, "%llu B", (unsigned long long)n);
    else snprintf(out, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void qn_text_count(long long n, char *out, size_t cap)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", n < 0 ? -n : n);
    size_t len = strlen(digits), o = 0;
    char buf[48];
    if (n < 0) buf[o++] = '-';
    for (size_t i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    snprintf(out, cap, "%s", buf);
}

void qn_text_duration(double seconds, char *out, size_t cap)
{
    if (!(seconds >= 0)) { snprintf(out, cap, "-"); return; }
    long s = (long)(seconds + 0.5);
    if (seconds < 10) snprintf(out, cap, "%.1fs", seconds);
    else if (s < 60) snprintf(out, cap, "%lds", s);
    else if (s < 3600) snprintf(out, cap, "%ld:%02ld", s / 60, s % 60);
    else snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}
