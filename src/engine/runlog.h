/* runlog.h: the run record's event log, run.jsonl: one JSON object per line,
   appended and flushed to disk as each event happens, so a run killed at any
   moment leaves a log readable up to its last finished layer. Reading
   tolerates a torn last line (the one being written when the run died). */
#ifndef QN_RUNLOG_H
#define QN_RUNLOG_H
#include <jansson.h>
#include <stdbool.h>
#include "status.h"

typedef struct qn_runlog qn_runlog;   /* opaque: owns the open file */

/* append: keep what is there (resume); else start empty. */
qn_status qn_runlog_open(qn_runlog **out, const char *path, bool append, qn_err *err);
/* Writes one line (compact JSON) and fsyncs; `event` is borrowed. */
qn_status qn_runlog_write(qn_runlog *log, const json_t *event, qn_err *err);
void      qn_runlog_close(qn_runlog *log);   /* NULL is fine */

/* Every complete line of path as a JSON array; a final line that does not
   parse (torn by a crash) is dropped, any other bad line is an error. */
qn_status qn_runlog_read(const char *path, json_t **events, qn_err *err);

#endif
