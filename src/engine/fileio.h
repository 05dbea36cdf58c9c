/* fileio.h: checked file access shared by every reader and writer.
   Read-only mappings for large inputs, whole-file reads for small ones, and
   atomic writes: data goes to "<path>.tmp.<pid>" in the same directory and is
   renamed over the final name only once complete, so an interrupted write never
   leaves a half file under the final name. */
#ifndef QN_FILEIO_H
#define QN_FILEIO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "status.h"

typedef struct {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
} qn_mapping;

qn_status qn_file_map(qn_mapping *m, const char *path, qn_err *err);
void      qn_file_unmap(qn_mapping *m);  /* zeroed or already unmapped is fine */

/* Reads a whole file and NUL-terminates it (size excludes the NUL). */
qn_status qn_file_read_all(const char *path, char **out, size_t *size, qn_err *err);

bool qn_path_exists(const char *path);
bool qn_path_is_dir(const char *path);
/* dst = dir + "/" + name; returns false when it does not fit. */
bool qn_path_join(char *dst, size_t cap, const char *dir, const char *name);
/* Creates the directory (one level) if it does not exist. */
qn_status qn_dir_ensure(const char *path, qn_err *err);

typedef struct {
    FILE *fp;
    char final_path[4096];
    char tmp_path[4160];
    bool failed;          /* a write failed; commit will refuse */
    int  saved_errno;
} qn_atomic_file;

qn_status qn_atomic_open(qn_atomic_file *f, const char *path, qn_err *err);
/* Writes n bytes; on failure marks the file failed and returns an error. */
qn_status qn_atomic_write(qn_atomic_file *f, const void *buf, size_t n, qn_err *err);
/* Flushes, fsyncs and renames into place; on any failure removes the temporary. */
qn_status qn_atomic_commit(qn_atomic_file *f, qn_err *err);
/* Copies src to dst through a temporary name. */
qn_status qn_file_copy(const char *src, const char *dst, qn_err *err);
/* Removes the temporary without touching the final name. */
void      qn_atomic_abort(qn_atomic_file *f);

#endif
