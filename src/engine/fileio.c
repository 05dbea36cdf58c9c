/* fileio.c: mappings, whole-file reads and atomic writes (see fileio.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/map_guard.h"

qn_status qn_file_map(qn_mapping *m, const char *path, qn_err *err)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return qn_err_set(err, QN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qn_err_set(err, QN_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return qn_err_set(err, QN_ERR_IO, "%s: is a directory, expected a file", path);
    }
    if (st.st_size == 0) { close(fd); return QN_OK; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return qn_err_set(err, QN_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    m->data = p;
    m->size = (size_t)st.st_size;
    qn_map_guard_add(p, m->size, path, &st);
    return QN_OK;
}

void qn_file_unmap(qn_mapping *m)
{
    if (m && m->data) {
        qn_map_guard_remove(m->data);
        munmap((void *)m->data, m->size);
    }
    if (m) { m->data = NULL; m->size = 0; }
}

qn_status qn_file_read_all(const char *path, char **out, size_t *size, qn_err *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return qn_err_set(err, QN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(fp);
        return qn_err_set(err, QN_ERR_IO, "%s: not a readable file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(fp); return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n); }
    size_t got = fread(buf, 1, n, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != n) { free(buf); return qn_err_set(err, QN_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n); }
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return QN_OK;
}

bool qn_path_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }
bool qn_path_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

bool qn_path_join(char *dst, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int n = (dl && dir[dl - 1] == '/') ? snprintf(dst, cap, "%s%s", dir, name)
                                       : snprintf(dst, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

qn_status qn_dir_ensure(const char *path, qn_err *err)
{
    if (mkdir(path, 0777) == 0 || (errno == EEXIST && qn_path_is_dir(path))) return QN_OK;
    return qn_err_set(err, QN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

qn_status qn_atomic_open(qn_atomic_file *f, const char *path, qn_err *err)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->final_path)
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", path);
    strcpy(f->final_path, path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return qn_err_set(err, QN_ERR_IO, "%s: cannot create: %s", f->tmp_path, strerror(errno));
    return QN_OK;
}

qn_status qn_atomic_write(qn_atomic_file *f, const void *buf, size_t n, qn_err *err)
{
    if (f->failed) return qn_err_set(err, QN_ERR_IO, "%s: %s", f->final_path, strerror(f->saved_errno));
    if (n && fwrite(buf, 1, n, f->fp) != n) {
        f->failed = true;
        f->saved_errno = errno ? errno : EIO;
        return qn_err_set(err, QN_ERR_IO, "%s: write failed: %s", f->final_path, strerror(f->saved_errno));
    }
    return QN_OK;
}

qn_status qn_atomic_commit(qn_atomic_file *f, qn_err *err)
{
    qn_status s = QN_OK;
    if (f->failed) {
        s = qn_err_set(err, QN_ERR_IO, "%s: write failed: %s", f->final_path, strerror(f->saved_errno));
    } else if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) {
        s = qn_err_set(err, QN_ERR_IO, "%s: write failed: %s", f->final_path, strerror(errno));
    }
    if (fclose(f->fp) != 0 && s == QN_OK)
        s = qn_err_set(err, QN_ERR_IO, "%s: write failed: %s", f->final_path, strerror(errno));
    f->fp = NULL;
    if (s == QN_OK && rename(f->tmp_path, f->final_path) != 0)
        s = qn_err_set(err, QN_ERR_IO, "%s: rename from %s failed: %s", f->final_path, f->tmp_path, strerror(errno));
    if (s != QN_OK) unlink(f->tmp_path);
    return s;
}

void qn_atomic_abort(qn_atomic_file *f)
{
    if (f->fp) { fclose(f->fp); f->fp = NULL; unlink(f->tmp_path); }
}

qn_status qn_file_copy(const char *src, const char *dst, qn_err *err)
{
    qn_mapping m;
    qn_status s = qn_file_map(&m, src, err);
    if (s) return s;
    qn_atomic_file f;
    if (!(s = qn_atomic_open(&f, dst, err))) {
        s = qn_atomic_write(&f, m.data, m.size, err);
        if (!s) s = qn_atomic_commit(&f, err); else qn_atomic_abort(&f);
    }
    qn_file_unmap(&m);
    return s;
}
