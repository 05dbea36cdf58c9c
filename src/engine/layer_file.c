/* layer_file.c: load and save weight + hessian layer files (see layer_file.h). */
#include "engine/layer_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"

/* The tensor `name` as a 2-D float matrix, converted to f32 into a malloc'd array. */
static qn_status read_matrix(const qn_st_file *f, const char *path, const char *name, size_t *rows, size_t *cols,
                             float **out, qn_err *err)
{
    const qn_st_tensor *t = qn_st_find(f, name);
    if (!t) return qn_err_set(err, QN_ERR_FORMAT, "%s: no tensor '%s' (a layer file holds 'weight' and 'hessian')",
                              path, name);
    if (t->ndim != 2)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected 2", path, name, t->ndim);
    if (!qn_dtype_is_float(t->dtype))
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, expected a float type", path, name,
                          qn_dtype_name(t->dtype));
    if (t->shape[0] <= 0 || t->shape[1] <= 0)
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' is empty ([%lld, %lld])", path, name,
                          (long long)t->shape[0], (long long)t->shape[1]);
    *rows = (size_t)t->shape[0];
    *cols = (size_t)t->shape[1];
    size_t n = *rows * *cols;
    *out = malloc(n * sizeof **out);
    if (!*out) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for '%s'", path, name);
    qn_dtype_to_f32(t->dtype, t->data, *out, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite((*out)[i]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' has a non-finite value (%g) at [%zu, %zu]", path,
                              name, (double)(*out)[i], i / *cols, i % *cols);
    return QN_OK;
}

qn_status qn_layer_file_load(qn_layer_file *lf, const char *path, qn_err *err)
{
    qn_status s;
    qn_st_file *f = NULL;
    size_t h_rows = 0, h_cols = 0;
    memset(lf, 0, sizeof *lf);
    if ((s = qn_st_open(&f, path, err)) != QN_OK) return s;
    lf->path = strdup(path);
    if (!lf->path) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if ((s = read_matrix(f, path, "weight", &lf->d_out, &lf->d_in, &lf->W, err)) != QN_OK) goto fail;
    if ((s = read_matrix(f, path, "hessian", &h_rows, &h_cols, &lf->H, err)) != QN_OK) goto fail;
    if (h_rows != lf->d_in || h_cols != lf->d_in) {
        s = qn_err_set(err, QN_ERR_SHAPE, "%s: hessian is [%zu, %zu] but weight is [%zu, %zu]: expected [%zu, %zu]",
                       path, h_rows, h_cols, lf->d_out, lf->d_in, lf->d_in, lf->d_in);
        goto fail;
    }
    qn_st_close(f);
    return QN_OK;
fail:
    qn_st_close(f);
    qn_layer_file_done(lf);
    return s;
}

void qn_layer_file_done(qn_layer_file *lf)
{
    if (!lf) return;
    free(lf->path);
    free(lf->W);
    free(lf->H);
    memset(lf, 0, sizeof *lf);
}

qn_layer_problem qn_layer_file_problem(const qn_layer_file *lf)
{
    return (qn_layer_problem){ .name = lf->path, .d_out = lf->d_out, .d_in = lf->d_in, .W = lf->W, .H = lf->H };
}

qn_status qn_layer_file_save(const char *path, const float *W, size_t d_out, size_t d_in, const float *H,
                             qn_err *err)
{
    const qn_st_entry t[2] = {
        { .name = "weight", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { (int64_t)d_out, (int64_t)d_in }, .data = W },
        { .name = "hessian", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { (int64_t)d_in, (int64_t)d_in }, .data = H },
    };
    return qn_st_write(path, t, 2, NULL, err);
}
