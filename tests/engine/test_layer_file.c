/* test_layer_file.c: loading weight + hessian layer files, and every way one can be wrong. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/layer_file.h"
#include "engine/safetensors.h"
#include "support.h"

static char g_dir[128];

static void setup(void) { ts_mkdtemp(g_dir, sizeof g_dir); }
static void teardown(void) { ts_rmtree(g_dir); }

static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

/* Writes tensors named weight/hessian with the given shapes (either may be skipped with rows 0). */
static const char *write_layer(const char *name, int64_t w_rows, int64_t w_cols, int64_t h_rows, int64_t h_cols,
                               const float *h_data)
{
    static float zeros[64 * 64];
    qn_st_entry t[2];
    size_t n = 0;
    if (w_rows) t[n++] = (qn_st_entry){ "weight", QN_DTYPE_F32, 2, { w_rows, w_cols }, zeros };
    if (h_rows) t[n++] = (qn_st_entry){ "hessian", QN_DTYPE_F32, 2, { h_rows, h_cols }, h_data ? h_data : zeros };
    const char *path = tmp_path(name);
    qn_err err = {0};
    cr_assert_eq(qn_st_write(path, t, n, NULL, &err), QN_OK, "%s", err.msg);
    return path;
}

static void expect_load_fails(const char *path, qn_status want, const char *problem)
{
    qn_layer_file lf;
    qn_err err = {0};
    cr_expect_eq(qn_layer_file_load(&lf, path, &err), want, "%s: status %s", path, qn_status_name(err.status));
    cr_expect(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    cr_expect(strstr(err.msg, problem), "message does not say '%s': %s", problem, err.msg);
    cr_expect_null(lf.W);
}

TestSuite(layer_file, .init = setup, .fini = teardown);

Test(layer_file, loads_the_shared_synthetic_layer)
{
    qn_layer_file lf;
    qn_err err = {0};
    const char *path = ts_shared("layers/synthetic-r512.safetensors");
    cr_assert_eq(qn_layer_file_load(&lf, path, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(lf.d_out, 512);
    cr_expect_eq(lf.d_in, 512);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    cr_expect_str_eq(p.name, path);
    cr_expect(p.H[0] > 0 && p.H[1] == p.H[512], "H is symmetric with a positive diagonal");
    qn_layer_file_done(&lf);
}

Test(layer_file, save_then_load_round_trips)
{
    float W[6] = { 1, 2, 3, 4, 5, 6 }, H[9] = { 2, 0, 0, 0, 3, 0, 0, 0, 4 };
    qn_err err = {0};
    cr_assert_eq(qn_layer_file_save(tmp_path("rt.safetensors"), W, 2, 3, H, &err), QN_OK, "%s", err.msg);
    qn_layer_file lf;
    cr_assert_eq(qn_layer_file_load(&lf, tmp_path("rt.safetensors"), &err), QN_OK, "%s", err.msg);
    cr_expect(lf.d_out == 2 && lf.d_in == 3);
    cr_expect_arr_eq(lf.W, W, sizeof W);
    cr_expect_arr_eq(lf.H, H, sizeof H);
    qn_layer_file_done(&lf);
}

Test(layer_file, missing_file)
{
    expect_load_fails("/nonexistent/layer.safetensors", QN_ERR_IO, "");
}

Test(layer_file, no_hessian)
{
    expect_load_fails(write_layer("noh.safetensors", 4, 8, 0, 0, NULL), QN_ERR_FORMAT, "no tensor 'hessian'");
}

Test(layer_file, no_weight)
{
    expect_load_fails(write_layer("now.safetensors", 0, 0, 8, 8, NULL), QN_ERR_FORMAT, "no tensor 'weight'");
}

Test(layer_file, hessian_shape_disagrees_with_weight)
{
    expect_load_fails(write_layer("shape.safetensors", 4, 8, 6, 6, NULL), QN_ERR_SHAPE, "hessian is [6, 6]");
    expect_load_fails(write_layer("rect.safetensors", 4, 8, 8, 4, NULL), QN_ERR_SHAPE, "expected [8, 8]");
}

Test(layer_file, nan_in_hessian)
{
    float H[16] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
    H[6] = NAN;
    expect_load_fails(write_layer("nan.safetensors", 2, 4, 4, 4, H), QN_ERR_FORMAT, "non-finite value (nan) at [1, 2]");
}

Test(layer_file, one_dimensional_weight)
{
    static const float z[8] = {0};
    qn_st_entry t[2] = { { "weight", QN_DTYPE_F32, 1, { 8 }, z }, { "hessian", QN_DTYPE_F32, 2, { 1, 1 }, z } };
    qn_err err = {0};
    cr_assert_eq(qn_st_write(tmp_path("1d.safetensors"), t, 2, NULL, &err), QN_OK, "%s", err.msg);
    expect_load_fails(tmp_path("1d.safetensors"), QN_ERR_SHAPE, "1 dimensions, expected 2");
}

Test(layer_file, integer_weight)
{
    static const int32_t z[4] = {0};
    static const float h[4] = { 1, 0, 0, 1 };
    qn_st_entry t[2] = { { "weight", QN_DTYPE_I32, 2, { 2, 2 }, z }, { "hessian", QN_DTYPE_F32, 2, { 2, 2 }, h } };
    qn_err err = {0};
    cr_assert_eq(qn_st_write(tmp_path("int.safetensors"), t, 2, NULL, &err), QN_OK, "%s", err.msg);
    expect_load_fails(tmp_path("int.safetensors"), QN_ERR_UNSUPPORTED, "expected a float type");
}
