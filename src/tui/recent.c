/* recent.c: recent.json, {"version": 1, "models": [{"path": ...}, ...]} (see recent.h). */
#include "tui/recent.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/fileio.h"
#include "engine/json_file.h"

static qn_status state_dir(char *out, size_t cap, qn_err *err)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(out, cap, "%s/quench", xdg);
    else if (home && *home) n = snprintf(out, cap, "%s/.local/state/quench", home);
    else return qn_err_set(err, QN_ERR_ARG, "recent models: neither XDG_STATE_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= cap) return qn_err_set(err, QN_ERR_ARG, "recent models: state folder path too long");
    return QN_OK;
}

/* mkdir -p of dir (its parents included). */
static qn_status make_dirs(const char *dir, qn_err *err)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return qn_err_set(err, QN_ERR_IO, "%s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return qn_err_set(err, QN_ERR_IO, "%s: %s", p, strerror(errno));
    return QN_OK;
}

qn_status qn_recent_load(qn_recent *r, qn_err *err)
{
    char dir[3900];
    r->n = 0;
    r->file[0] = 0;
    qn_status s = state_dir(dir, sizeof dir, err);
    if (s) return s;
    snprintf(r->file, sizeof r->file, "%s/recent.json", dir);
    if (!qn_path_exists(r->file)) return QN_OK;
    json_t *root = NULL;
    if ((s = qn_json_load(r->file, &root, err))) return s;
    const json_t *models = json_object_get(root, "models"), *m;
    size_t i;
    json_array_foreach(models, i, m) {
        const char *p = json_string_value(json_object_get(m, "path"));
        if (p && *p && r->n < QN_RECENT_MAX) snprintf(r->path[r->n++], sizeof r->path[0], "%s", p);
    }
    json_decref(root);
    return QN_OK;
}

static qn_status save(const qn_recent *r, qn_err *err)
{
    if (!r->file[0]) return qn_err_set(err, QN_ERR_ARG, "recent models: no state folder");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", r->file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    qn_status s = make_dirs(dir, err);
    if (s) return s;
    json_t *models = json_array();
    for (size_t i = 0; i < r->n; i++) json_array_append_new(models, json_pack("{s:s}", "path", r->path[i]));
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "models", models);
    s = qn_json_save(root, r->file, err);
    json_decref(root);
    return s;
}

qn_status qn_recent_add(qn_recent *r, const char *path, qn_err *err)
{
    char abs[4096];
    if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    size_t at = r->n < QN_RECENT_MAX ? r->n : QN_RECENT_MAX - 1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->path[i], abs) == 0) { at = i; break; }
    memmove(r->path[1], r->path[0], at * sizeof r->path[0]);
    snprintf(r->path[0], sizeof r->path[0], "%s", abs);
    if (at == r->n) r->n++;
    return save(r, err);
}

qn_status qn_recent_remove(qn_recent *r, size_t i, qn_err *err)
{
    if (i >= r->n) return QN_OK;
    memmove(r->path[i], r->path[i + 1], (r->n - i - 1) * sizeof r->path[0]);
    r->n--;
    return save(r, err);
}
