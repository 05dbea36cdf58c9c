/* recent.h: the models opened lately, remembered across sessions in
   $XDG_STATE_HOME/quench/recent.json (default ~/.local/state/quench/), newest
   first, written atomically through json_file.h. A missing file is an empty
   list; an unreadable one is reported and then replaced on the next write. */
#ifndef QN_TUI_RECENT_H
#define QN_TUI_RECENT_H
#include <stddef.h>
#include "status.h"

#define QN_RECENT_MAX 16

typedef struct {
    char   file[4096];                   /* the recent.json path */
    char   path[QN_RECENT_MAX][4096];    /* (n) absolute paths, newest first */
    size_t n;
} qn_recent;

/* Finds the file from the environment and reads it. */
qn_status qn_recent_load(qn_recent *r, qn_err *err);
/* Moves path to the front (adding it) and saves. */
qn_status qn_recent_add(qn_recent *r, const char *path, qn_err *err);
qn_status qn_recent_remove(qn_recent *r, size_t i, qn_err *err);

#endif
