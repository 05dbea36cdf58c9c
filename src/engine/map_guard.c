/* map_guard.c: SIGBUS on mapped files and stale-file checks (see map_guard.h).
   The table is a fixed array so the signal handler reads it without locks or
   allocation; writers take a mutex and publish a slot by setting addr last. */
#define _POSIX_C_SOURCE 200809L
#include "engine/map_guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUARD_SLOTS 512

typedef struct {
    _Atomic(const char *) addr;    /* NULL: free */
    size_t size;
    char  *path;
    dev_t  dev;
    ino_t  ino;
    off_t  file_size;
    struct timespec mtime;
} guard_slot;

static guard_slot g_slots[GUARD_SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*volatile g_restore)(void);
static struct sigaction g_previous;
static atomic_bool g_installed;

static void say(const char *s) { ssize_t n = write(2, s, strlen(s)); (void)n; }

static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
    const char *at = info ? info->si_addr : NULL;
    for (size_t i = 0; at && i < GUARD_SLOTS; i++) {
        const char *a = atomic_load(&g_slots[i].addr);
        if (a && at >= a && at < a + g_slots[i].size) {
            if (g_restore) g_restore();
            say("quench: ");
            say(g_slots[i].path);
            say(": the file was truncated or replaced while quench was reading it (memory-mapped); stopping\n");
            _exit(1);
        }
    }
    /* not one of ours: whatever handled SIGBUS before */
    if (g_previous.sa_flags & SA_SIGINFO) { g_previous.sa_sigaction(sig, info, uctx); return; }
    if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) { g_previous.sa_handler(sig); return; }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Puts the guard's handler on top of whatever handles SIGBUS now (kept for other faults). */
static void take_sigbus(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, &old);
    if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigbus)) g_previous = old;
}

static void install(void)
{
    if (!atomic_exchange(&g_installed, true)) take_sigbus();
}

void qn_map_guard_add(const void *addr, size_t size, const char *path, const struct stat *st)
{
    install();
    char *copy = strdup(path);
    if (!copy) return;
    pthread_mutex_lock(&g_lock);
    size_t i = 0;
    while (i < GUARD_SLOTS && atomic_load(&g_slots[i].addr)) i++;
    if (i < GUARD_SLOTS) {
        guard_slot *g = &g_slots[i];
        free(g->path);
        *g = (guard_slot){ .size = size, .path = copy, .dev = st->st_dev, .ino = st->st_ino,
                           .file_size = st->st_size, .mtime = st->st_mtim };
        atomic_store(&g->addr, addr);
        copy = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    free(copy);
}

void qn_map_guard_remove(const void *addr)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < GUARD_SLOTS; i++)
        if (atomic_load(&g_slots[i].addr) == addr) {
            atomic_store(&g_slots[i].addr, NULL);
            break;   /* the path stays until the slot is reused: the handler may be reading it */
        }
    pthread_mutex_unlock(&g_lock);
}

void qn_map_guard_set_restore(void (*restore)(void))
{
    g_restore = restore;
    atomic_store(&g_installed, true);
    take_sigbus();   /* over a crash handler installed since */
}

qn_status qn_map_guard_check(qn_err *err)
{
    qn_status s = QN_OK;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < GUARD_SLOTS && !s; i++) {
        guard_slot *g = &g_slots[i];
        if (!atomic_load(&g->addr)) continue;
        struct stat st;
        if (stat(g->path, &st) != 0 || st.st_dev != g->dev || st.st_ino != g->ino)
            continue;   /* removed or renamed over: the mapping still reads the old file, intact */
        else if (st.st_size != g->file_size)
            s = qn_err_set(err, QN_ERR_IO, "%s: changed on disk since it was loaded (%lld bytes, now %lld): load "
                           "the model again", g->path, (long long)g->file_size, (long long)st.st_size);
        else if (st.st_mtim.tv_sec != g->mtime.tv_sec || st.st_mtim.tv_nsec != g->mtime.tv_nsec)
            s = qn_err_set(err, QN_ERR_IO, "%s: modified on disk since it was loaded: load the model again",
                           g->path);
    }
    pthread_mutex_unlock(&g_lock);
    return s;
}
