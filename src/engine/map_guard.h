/* map_guard.h: what happens when a memory-mapped input changes under us.
   Reading a page of a mapped file that another process truncated raises SIGBUS;
   unhandled, the process dies without a word (and a TUI leaves the terminal
   raw). fileio registers every mapping here; on SIGBUS inside one, the guard
   runs the registered restore hook (the TUI's endwin), prints one line naming
   the file and exits 1. An in-place overwrite raises nothing but changes the
   numbers: qn_map_guard_check compares each mapped file's size, mtime and
   inode with what they were when it was mapped, for long jobs to call first. */
#ifndef QN_MAP_GUARD_H
#define QN_MAP_GUARD_H
#include <stddef.h>
#include <sys/stat.h>
#include "status.h"

/* Registers a mapping of path whose file had st when mapped; installs the
   SIGBUS handler on first use. Past the guard's capacity a mapping is simply
   not watched. */
void qn_map_guard_add(const void *addr, size_t size, const char *path, const struct stat *st);
void qn_map_guard_remove(const void *addr);
/* Called (from the signal handler) before the message: restores the terminal. */
void qn_map_guard_set_restore(void (*restore)(void));
/* QN_ERR_IO naming the first mapped file that changed on disk since it was mapped. */
qn_status qn_map_guard_check(qn_err *err);

#endif
