/* json_file.c: checked JSON loading and atomic saving (see json_file.h). */
#include "engine/json_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/tokenizer.h"

qn_status qn_json_load(const char *path, json_t **out, qn_err *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_file_read_all(path, &text, &len, err);
    if (s) return s;
    *out = qn_json_parse(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, path, err);
    free(text);
    return *out ? QN_OK : QN_ERR_FORMAT;
}

json_t *qn_json_parse(const char *text, size_t len, size_t flags, const char *path, qn_err *err)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { text += 3; len -= 3; }
    json_error_t je;
    json_t *root = json_loadb(text, len, flags, &je);
    if (!root)
        qn_err_set(err, QN_ERR_FORMAT, "%s: malformed JSON at line %d column %d: %s", path, je.line, je.column,
                   je.text);
    return root;
}

typedef struct { qn_atomic_file *f; qn_err *err; } dump_ctx;

static int dump_chunk(const char *buf, size_t size, void *data)
{
    dump_ctx *c = data;
    return qn_atomic_write(c->f, buf, size, c->err) == QN_OK ? 0 : -1;
}

qn_status qn_json_save(const json_t *root, const char *path, qn_err *err)
{
    qn_atomic_file f;
    qn_status s = qn_atomic_open(&f, path, err);
    if (s) return s;
    dump_ctx c = { &f, err };
    if (json_dump_callback(root, dump_chunk, &c, JSON_INDENT(2)) != 0 || qn_atomic_write(&f, "\n", 1, err)) {
        if (!f.failed) qn_err_set(err, QN_ERR_NOMEM, "%s: JSON serialization failed", path);
        qn_status e = err ? err->status : QN_ERR_IO;
        qn_atomic_abort(&f);
        return e;
    }
    return qn_atomic_commit(&f, err);
}

json_t *qn_json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s), used = 0, bad;
    char *out = malloc(4 * n + 1);
    if (!out) return NULL;
    while (n && !qn_utf8_valid(s, n, &bad)) {
        memcpy(out + used, s, bad);
        used += bad;
        used += (size_t)sprintf(out + used, "\\x%02X", (unsigned char)s[bad]);
        s += bad + 1;
        n -= bad + 1;
    }
    memcpy(out + used, s, n);
    out[used + n] = 0;
    j = json_string(out);
    free(out);
    return j;
}
