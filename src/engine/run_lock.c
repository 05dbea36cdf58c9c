/* run_lock.c: the output folder's writer lock (see run_lock.h). */
#include "engine/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine/fileio.h"

qn_status qn_run_lock_take(qn_run_lock *lock, const char *dir, qn_err *err)
{
    lock->fd = -1;
    char path[4200];
    if (!qn_path_join(path, sizeof path, dir, QN_RUN_LOCK_FILE))
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    /* a folder this process may not write: no writer of ours to exclude (a reader such as an export proceeds) */
    if (fd < 0 && (errno == EROFS || errno == EACCES) && access(dir, W_OK) != 0) return QN_OK;
    if (fd < 0) return qn_err_set(err, QN_ERR_IO, "%s: cannot create the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return qn_err_set(err, QN_ERR_IO, "%s: another quench process is writing this folder (it holds %s); "
                              "wait for it to finish or stop it first", dir, QN_RUN_LOCK_FILE);
        return qn_err_set(err, QN_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
    lock->fd = fd;
    return QN_OK;
}

void qn_run_lock_release(qn_run_lock *lock)
{
    if (lock && lock->fd >= 0) { close(lock->fd); lock->fd = -1; }
}
