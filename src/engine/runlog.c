/* runlog.c: append-only JSON-lines log with crash-tolerant reading (see runlog.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine/runlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fileio.h"

struct qn_runlog {
    FILE *fp;
    char path[4096];
};

/* A run killed (or out of disk) mid-line leaves a last line without its
   newline; appending after it would bury it mid-file, where it is an error.
   Cuts the file back to its last newline. */
static int drop_torn_line(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    off_t end = st.st_size;
    char buf[4096];
    while (end > 0) {
        off_t from = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t got = pread(fd, buf, (size_t)(end - from), from);
        if (got != end - from) return -1;
        for (ssize_t i = got - 1; i >= 0; i--)
            if (buf[i] == '\n') {
                off_t keep = from + i + 1;
                return keep == st.st_size ? 0 : ftruncate(fd, keep);
            }
        end = from;
    }
    return st.st_size ? ftruncate(fd, 0) : 0;
}

qn_status qn_runlog_open(qn_runlog **out, const char *path, bool append, qn_err *err)
{
    *out = NULL;
    qn_runlog *log = calloc(1, sizeof *log);
    if (!log) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(log->path, sizeof log->path, "%s", path);
    log->fp = fopen(path, append ? "a+b" : "wb");   /* a+: drop_torn_line reads the end */
    if (!log->fp) {
        qn_status s = qn_err_set(err, QN_ERR_IO, "%s: %s", path, strerror(errno));
        free(log);
        return s;
    }
    if (append && drop_torn_line(fileno(log->fp)) != 0) {
        qn_status s = qn_err_set(err, QN_ERR_IO, "%s: cannot drop the torn last line: %s", path, strerror(errno));
        qn_runlog_close(log);
        return s;
    }
    *out = log;
    return QN_OK;
}

qn_status qn_runlog_write(qn_runlog *log, const json_t *event, qn_err *err)
{
    /* jansson builds no object around a string that is not UTF-8: say so, it is not memory */
    if (!event) return qn_err_set(err, QN_ERR_FORMAT, "%s: an event could not be built (a text that is not UTF-8?)",
                                  log->path);
    char *line = json_dumps(event, JSON_COMPACT);
    if (!line) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory writing an event", log->path);
    size_t n = strlen(line);
    int bad = fwrite(line, 1, n, log->fp) != n || fputc('\n', log->fp) == EOF || fflush(log->fp) != 0 ||
              fsync(fileno(log->fp)) != 0;
    int e = errno;
    free(line);
    if (bad) return qn_err_set(err, QN_ERR_IO, "%s: write failed: %s", log->path, strerror(e ? e : EIO));
    return QN_OK;
}

void qn_runlog_close(qn_runlog *log)
{
    if (!log) return;
    if (log->fp) fclose(log->fp);
    free(log);
}

qn_status qn_runlog_read(const char *path, json_t **events, qn_err *err)
{
    *events = NULL;
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_file_read_all(path, &text, &len, err);
    if (s) return s;
    json_t *arr = json_array();
    size_t line_no = 0;
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        line_no++;
        if (n > 0) {
            json_error_t je;
            json_t *ev = json_loadb(p, n, 0, &je);
            if (!ev || !json_is_object(ev)) {
                static const char *const kinds[] = { "an object", "an array", "a string", "an integer", "a number",
                                                     "true", "false", "null" };
                char why[200];
                if (ev) snprintf(why, sizeof why, "%s, not an object", kinds[json_typeof(ev)]);
                else snprintf(why, sizeof why, "column %d: %s", je.column, je.text);
                json_decref(ev);
                if (!nl) break;   /* torn last line */
                json_decref(arr);
                free(text);
                return qn_err_set(err, QN_ERR_FORMAT, "%s: line %zu is not a JSON object: %s", path, line_no, why);
            }
            json_array_append_new(arr, ev);
        }
        p += n + (nl ? 1 : 0);
    }
    free(text);
    *events = arr;
    return QN_OK;
}
