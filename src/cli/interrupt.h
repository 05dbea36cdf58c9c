/* interrupt.h: Ctrl-C and SIGTERM for long subcommands. The first signal sets
   a cancel flag that the engine polls between steps (it then stops cleanly,
   with nothing half-written); a second one ends the process at once. */
#ifndef QN_CLI_INTERRUPT_H
#define QN_CLI_INTERRUPT_H
#include <stdatomic.h>

/* Installs the handlers; returns the flag to pass to the engine. */
const atomic_bool *qn_cli_interrupt_install(void);
/* The exit code for a cancelled run: 128 + the signal that cancelled it. */
int qn_cli_interrupt_exit_code(void);

#endif
