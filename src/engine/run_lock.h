/* run_lock.h: one writer per output folder. quantize (and its resume) and the
   exports hold an exclusive flock(2) on DIR/.quench.lock while they write, so
   a second writer is refused with a message instead of mixing two runs' files.
   The lock goes with the process (a killed run leaves nothing to clean up);
   the lock file itself stays, as removing it would race with a new writer. */
#ifndef QN_RUN_LOCK_H
#define QN_RUN_LOCK_H
#include "status.h"

#define QN_RUN_LOCK_FILE ".quench.lock"

typedef struct {
    int fd;            /* -1 when not held */
} qn_run_lock;

/* Takes the lock of the existing folder dir without waiting; QN_ERR_IO naming
   the folder when another process holds it. */
qn_status qn_run_lock_take(qn_run_lock *lock, const char *dir, qn_err *err);
void      qn_run_lock_release(qn_run_lock *lock);   /* not held is fine */

#endif
