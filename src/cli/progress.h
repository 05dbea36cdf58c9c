/* progress.h: the CLI's event sink: a one-line progress bar on stderr when it
   is a terminal (nothing otherwise), and streamed tokens to stdout. */
#ifndef QN_CLI_PROGRESS_H
#define QN_CLI_PROGRESS_H
#include <stdbool.h>
#include "engine/events.h"

typedef struct {
    bool   tty;          /* stderr is a terminal */
    double last_draw;    /* seconds, to rate-limit redraws */
    double start;
    bool   drawn;        /* a bar is on screen and needs clearing */
} qn_cli_progress;

void          qn_cli_progress_init(qn_cli_progress *p);
qn_event_sink qn_cli_progress_sink(qn_cli_progress *p);
void          qn_cli_progress_clear(qn_cli_progress *p);  /* erase the bar before printing results */

#endif
