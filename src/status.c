/* status.c: error messages with context (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

qn_status qn_err_set(qn_err *err, qn_status s, const char *fmt, ...)
{
    if (!err) return s;
    err->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return s;
}

qn_status qn_err_prefix(qn_err *err, const char *fmt, ...)
{
    if (!err) return QN_OK;
    char head[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* truncation of an over-long message is acceptable; keep the head whole */
    size_t hl = strlen(head), cap = sizeof err->msg;
    if (hl >= cap) hl = cap - 1;
    size_t ol = strnlen(err->msg, cap - 1);
    if (hl + ol >= cap) ol = cap - 1 - hl;
    memmove(err->msg + hl, err->msg, ol);
    memcpy(err->msg, head, hl);
    err->msg[hl + ol] = 0;
    return err->status;
}

qn_status qn_err_prefix_path(qn_err *err, const char *path)
{
    if (!err) return QN_OK;
    /* the message may name this path already, or a file inside it ("dir/model.safetensors: ...") */
    if (strncmp(err->msg, path, strlen(path)) == 0) return err->status;
    return qn_err_prefix(err, "%s: ", path);
}

const char *qn_status_name(qn_status s)
{
    switch (s) {
    case QN_OK: return "ok";
    case QN_ERR_IO: return "i/o error";
    case QN_ERR_FORMAT: return "format error";
    case QN_ERR_SHAPE: return "shape error";
    case QN_ERR_UNSUPPORTED: return "unsupported";
    case QN_ERR_NOMEM: return "out of memory";
    case QN_ERR_DEVICE: return "device error";
    case QN_ERR_CANCELLED: return "cancelled";
    case QN_ERR_ARG: return "bad argument";
    }
    return "unknown";
}
