/* shared_path.h: where `make bench` programs find the shared data ($QN_SHARED,
   default ../shared). Header-only: each bench program is its own binary. */
#ifndef QN_BENCH_SHARED_PATH_H
#define QN_BENCH_SHARED_PATH_H
#include <stdio.h>
#include <stdlib.h>

/* $QN_SHARED/rel in one of four rotating buffers (enough for one call's arguments). */
static inline const char *shared_path(const char *rel)
{
    static char buf[4][4096];
    static int slot;
    const char *root = getenv("QN_SHARED");
    char *b = buf[slot++ % 4];
    snprintf(b, 4096, "%s/%s", root && *root ? root : "../shared", rel);
    return b;
}

#endif
