/* session.c: model opening and error reporting shared by subcommands. */
#include "cli/session.h"

#include <stdio.h>

#include "kernels/device.h"
#include "kernels/linear.h"

int qn_cli_fail(const char *cmd, const qn_err *err)
{
    fprintf(stderr, "quench %s: %s\n", cmd, err->msg);
    return err->status == QN_ERR_ARG ? 2 : 1;
}

qn_model *qn_cli_open_model(const char *cmd, const char *path, const char *tokenizer, int threads,
                            qn_cli_progress *progress)
{
    qn_kernels_set_threads(threads);
    qn_model_opts opts = { .tokenizer = tokenizer, .sink = qn_cli_progress_sink(progress) };
    qn_model *m = NULL;
    qn_err err = {0};
    if (qn_model_open(&m, path, &opts, &err) != QN_OK) {
        qn_cli_progress_clear(progress);
        qn_cli_fail(cmd, &err);
        return NULL;
    }
    qn_cli_progress_clear(progress);
    return m;
}

int qn_cli_use_device(const char *cmd, const char *name)
{
    qn_device d;
    qn_err err = {0};
    if (qn_device_parse(name, &d, &err) || qn_kernels_set_device(d, &err)) return qn_cli_fail(cmd, &err);
    return 0;
}
