/* interrupt.c: cancel flag set from SIGINT/SIGTERM (see interrupt.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/interrupt.h"

#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* Signal handlers can only reach file-scope state; these two are the process's. */
static atomic_bool g_cancel;
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    if (g_signal) _exit(128 + sig);   /* second signal: the user insists */
    g_signal = sig;
    atomic_store(&g_cancel, true);
}

const atomic_bool *qn_cli_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &g_cancel;
}

int qn_cli_interrupt_exit_code(void)
{
    return 128 + (g_signal ? g_signal : SIGINT);
}
