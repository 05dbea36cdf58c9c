/* session.h: what every model-using subcommand does first: set the thread
   count, open the model (with a load progress bar), and report failures as
   "quench <cmd>: <message>". */
#ifndef QN_CLI_SESSION_H
#define QN_CLI_SESSION_H
#include "engine/model.h"
#include "cli/progress.h"

/* Returns NULL after printing the error. threads 0 = all cores. */
qn_model *qn_cli_open_model(const char *cmd, const char *path, const char *tokenizer, int threads,
                            qn_cli_progress *progress);
/* `--device NAME` (cpu or cuda): selects it for the kernels and the model
   opened next. Returns 0, or the exit code after printing why (2 for a bad
   name, 1 when CUDA is not built in or no device answers). */
int qn_cli_use_device(const char *cmd, const char *name);
/* Prints "quench <cmd>: <err->msg>" and returns the exit code for the status. */
int qn_cli_fail(const char *cmd, const qn_err *err);

/* Creates the missing folders of path, like mkdir -p: its parents only, or the
   path too when whole is true. */
qn_status qn_cli_make_dirs(const char *path, bool whole, qn_err *err);

#endif
