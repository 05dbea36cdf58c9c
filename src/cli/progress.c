/* progress.c: progress lines and token streaming for the CLI (see progress.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "kernels/timing.h"

void qn_cli_progress_init(qn_cli_progress *p)
{
    p->tty = isatty(STDERR_FILENO);
    p->last_draw = 0;
    p->start = qn_now();
    p->drawn = false;
}

static void draw_bar(qn_cli_progress *p, const qn_event *ev)
{
    double now = qn_now();
    bool last = ev->done == ev->total;
    if (!p->tty || ev->total <= 0 || (!last && now - p->last_draw < 0.1)) return;
    p->last_draw = now;
    enum { WIDTH = 30 };
    int fill = (int)(WIDTH * ev->done / ev->total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    double el = now - p->start, eta = ev->done > 0 ? el * (double)(ev->total - ev->done) / (double)ev->done : 0;
    fprintf(stderr, "\r%-6s [%s] %lld/%lld", ev->stage ? ev->stage : "", bar, (long long)ev->done, (long long)ev->total);
    if (ev->value == ev->value && ev->value != 0) fprintf(stderr, "  %.4f", ev->value);
    fprintf(stderr, "  %.1fs eta %.1fs\033[K", el, eta);
    fflush(stderr);
    p->drawn = true;
}

static void emit(void *ctx, const qn_event *ev)
{
    qn_cli_progress *p = ctx;
    switch (ev->kind) {
    case QN_EV_PROGRESS: draw_bar(p, ev); break;
    case QN_EV_TOKEN:
        fwrite(ev->text, 1, (size_t)ev->text_len, stdout);
        fflush(stdout);
        break;
    case QN_EV_WARNING:
        qn_cli_progress_clear(p);
        fprintf(stderr, "warning: %s\n", ev->text ? ev->text : "");
        break;
    default: break;
    }
}

qn_event_sink qn_cli_progress_sink(qn_cli_progress *p)
{
    return (qn_event_sink){ .emit = emit, .ctx = p };
}

void qn_cli_progress_clear(qn_cli_progress *p)
{
    if (p->drawn) { fprintf(stderr, "\r\033[K"); fflush(stderr); p->drawn = false; }
}
