/* session.c: model opening and error reporting shared by subcommands. */
#include "cli/session.h"
#include "engine/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

qn_status qn_cli_make_dirs(const char *path, bool whole, qn_err *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", path);
    size_t end = strlen(buf);
    while (end > 1 && buf[end - 1] == '/') buf[--end] = 0;
    if (!whole) {
        char *slash = strrchr(buf, '/');
        if (!slash) return QN_OK;
        *slash = 0;
    }
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c != 0) continue;
        *p = 0;
        qn_status s = buf[0] ? qn_dir_ensure(buf, err) : QN_OK;
        if (s) return s;
        *p = c;
        if (!c) break;
    }
    return QN_OK;
}

int qn_cli_use_device(const char *cmd, const char *name)
{
    qn_device d;
    qn_err err = {0};
    if (qn_device_parse(name, &d, &err) || qn_kernels_set_device(d, &err)) return qn_cli_fail(cmd, &err);
    return 0;
}
