/* status.h: the one error type every layer shares.
   What can fail returns a qn_status and fills the caller's qn_err with
   "<file>: <what is wrong>[: expected X, found Y]". Nothing below cli/ and tui/
   prints or exits; each layer adds the context it knows with qn_err_prefix. */
#ifndef QN_STATUS_H
#define QN_STATUS_H

typedef enum {
    QN_OK = 0,
    QN_ERR_IO,          /* open/read/write/rename failed, disk full */
    QN_ERR_FORMAT,      /* the bytes are not what the format says */
    QN_ERR_SHAPE,       /* shapes or sizes disagree */
    QN_ERR_UNSUPPORTED, /* well-formed but not something we handle */
    QN_ERR_NOMEM,
    QN_ERR_DEVICE,
    QN_ERR_CANCELLED,
    QN_ERR_ARG          /* a bad option or argument from the user */
} qn_status;

typedef struct {
    qn_status status;
    char msg[512];
} qn_err;

/* Sets err (when not NULL) and returns s, so callers can `return qn_err_set(...)`. */
qn_status qn_err_set(qn_err *err, qn_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends context ("layer 7: ") to the message already there; returns err->status. */
qn_status qn_err_prefix(qn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepends "path: " unless the message already begins with path (no "d: d/f: ..."). */
qn_status qn_err_prefix_path(qn_err *err, const char *path);
const char *qn_status_name(qn_status s);

#endif
