/* test_safetensors.c: the safetensors reader and writer. Round trips through
   qn_st_write cover dtypes, 0-d and empty tensors and metadata; hand-built files
   cover each way a header can lie, each expecting one qn_status and a message
   that names the file; the writer's failures must leave the final path as it was. */
#include "engine/safetensors.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fileio.h"

static char g_dir[256];

static void make_tmpdir(void)
{
    strcpy(g_dir, "/tmp/qn_st_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp failed");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) { nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(safetensors, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *in_dir(char *buf, size_t cap, const char *name)
{
    cr_assert(qn_path_join(buf, cap, g_dir, name));
    return buf;
}

static void write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp, "%s: cannot create", path);
    cr_assert_eq(fwrite(buf, 1, n, fp), n);
    cr_assert_eq(fclose(fp), 0);
}

/* A file with the given 8-byte length field, header text and data bytes. */
static void write_st_raw(const char *path, uint64_t hlen, const char *header, size_t data_len)
{
    size_t text = strlen(header);
    size_t n = 8 + text + data_len;
    unsigned char *buf = calloc(n, 1);
    cr_assert_not_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, text);
    for (size_t i = 0; i < data_len; i++) buf[8 + text + i] = (unsigned char)i;
    write_bytes(path, buf, n);
    free(buf);
}

static void write_st_header(const char *path, const char *header, size_t data_len)
{
    write_st_raw(path, strlen(header), header, data_len);
}

/* Opening path must fail with status s and a message naming the file and containing what. */
static void expect_open_fails(const char *path, qn_status s, const char *what)
{
    qn_st_file *f = (qn_st_file *)1;
    qn_err err = { 0 };
    qn_status got = qn_st_open(&f, path, &err);
    cr_assert_eq(got, s, "%s: expected status %s, found %s (%s)", path, qn_status_name(s),
                 qn_status_name(got), err.msg);
    cr_assert_eq(err.status, s);
    cr_assert_null(f, "a failed open must set *out to NULL");
    cr_assert_not_null(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    if (what) cr_assert_not_null(strstr(err.msg, what), "message lacks '%s': %s", what, err.msg);
}

static int count_tmp_files(void)
{
    DIR *d = opendir(g_dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

Test(safetensors, round_trip_dtypes_shapes_and_metadata)
{
    char path[512];
    in_dir(path, sizeof path, "rt.safetensors");
    float f32[6] = { 1.0f, -2.5f, 3.25f, 0.0f, 1e-7f, 65504.0f };
    uint16_t f16[4], bf16[4];
    for (int i = 0; i < 4; i++) { f16[i] = qn_f32_to_f16(f32[i]); bf16[i] = qn_f32_to_bf16(f32[i]); }
    int32_t i32[3] = { -7, 0, 2147483647 };
    float scalar = 42.0f;
    const qn_st_entry in[] = {
        { .name = "a.f32", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { 2, 3 }, .data = f32 },
        { .name = "b.f16", .dtype = QN_DTYPE_F16, .ndim = 1, .shape = { 4 }, .data = f16 },
        { .name = "c.bf16", .dtype = QN_DTYPE_BF16, .ndim = 2, .shape = { 2, 2 }, .data = bf16 },
        { .name = "d.i32", .dtype = QN_DTYPE_I32, .ndim = 1, .shape = { 3 }, .data = i32 },
        { .name = "e.scalar", .dtype = QN_DTYPE_F32, .ndim = 0, .data = &scalar },
        { .name = "f.empty", .dtype = QN_DTYPE_F16, .ndim = 2, .shape = { 0, 5 }, .data = NULL },
    };
    const size_t n = sizeof in / sizeof in[0];
    const char *meta[] = { "format", "pt", "note", "caf\xc3\xa9 \"quoted\"", NULL };
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, in, n, meta, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(count_tmp_files(), 0);

    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    cr_assert_str_eq(qn_st_path(f), path);
    cr_assert_eq(qn_st_count(f), n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        /* the writer lays tensors out in the given order, so offset order is input order */
        const qn_st_tensor *t = qn_st_at(f, i);
        cr_assert_str_eq(t->name, in[i].name);
        cr_assert_eq(qn_st_find(f, in[i].name), t);
        cr_assert_eq(t->dtype, in[i].dtype, "%s", t->name);
        cr_assert_eq(t->ndim, in[i].ndim, "%s", t->name);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            cr_assert_eq(t->shape[d], in[i].shape[d], "%s dim %d", t->name, d);
            count *= (size_t)in[i].shape[d];
        }
        cr_assert_eq(t->nbytes, count * qn_dtype_size(t->dtype), "%s", t->name);
        if (t->nbytes) cr_assert(memcmp(t->data, in[i].data, t->nbytes) == 0, "%s: bytes differ", t->name);
        total += t->nbytes;
    }
    cr_assert_null(qn_st_at(f, n));
    cr_assert_null(qn_st_find(f, "missing"));
    cr_assert_null(qn_st_find(f, ""));

    float back[4];
    qn_dtype_to_f32(QN_DTYPE_BF16, qn_st_find(f, "c.bf16")->data, back, 4);
    cr_assert_float_eq(back[1], -2.5f, 0.0f);
    qn_dtype_to_f32(QN_DTYPE_F16, qn_st_find(f, "b.f16")->data, back, 4);
    cr_assert_float_eq(back[2], 3.25f, 0.0f);

    cr_assert_str_eq(qn_st_meta(f, "format"), "pt");
    cr_assert_str_eq(qn_st_meta(f, "note"), "caf\xc3\xa9 \"quoted\"");
    cr_assert_null(qn_st_meta(f, "absent"));
    qn_st_close(f);

    /* header padded with spaces to a multiple of 8, data right after it */
    FILE *fp = fopen(path, "rb");
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, fp), 8);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | len8[i];
    cr_assert_eq(hlen % 8, 0, "header length %llu is not a multiple of 8", (unsigned long long)hlen);
    cr_assert_eq((size_t)file_size(path), 8 + hlen + total);
}

Test(safetensors, empty_file_list_round_trips)
{
    char path[512];
    in_dir(path, sizeof path, "none.safetensors");
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, NULL, 0, NULL, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(file_size(path), 16);   /* "{}" padded to 8 */
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_st_count(f), 0);
    cr_assert_null(qn_st_find(f, "x"));
    cr_assert_null(qn_st_meta(f, "x"));
    qn_st_close(f);
    qn_st_close(NULL);
}

Test(safetensors, reads_hand_written_file_with_gap_and_metadata_last)
{
    char path[512];
    in_dir(path, sizeof path, "gap.safetensors");
    /* b listed first but stored second; 4 unused bytes between them */
    write_st_header(path, "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
                          "\"a\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                          "\"__metadata__\":{\"k\":\"v\"}}  ", 10);
    qn_err err = { 0 };
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_st_count(f), 2);
    cr_assert_str_eq(qn_st_at(f, 0)->name, "a");
    cr_assert_str_eq(qn_st_at(f, 1)->name, "b");
    const unsigned char *b = qn_st_find(f, "b")->data;
    cr_assert_eq(b[0], 8);
    cr_assert_eq(b[1], 9);
    cr_assert_str_eq(qn_st_meta(f, "k"), "v");
    qn_st_close(f);
}

Test(safetensors, reads_shared_synthetic_layer)
{
    const char *shared = getenv("QN_SHARED");
    if (!shared) cr_skip_test("QN_SHARED is not set");
    char path[512];
    cr_assert(qn_path_join(path, sizeof path, shared, "layers/synthetic-r256.safetensors"));
    qn_err err = { 0 };
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_st_count(f), 2);
    const qn_st_tensor *w = qn_st_find(f, "weight"), *h = qn_st_find(f, "hessian");
    cr_assert(w && h);
    cr_assert_eq(w->dtype, QN_DTYPE_F32);
    cr_assert_eq(w->ndim, 2);
    cr_assert_eq(w->shape[0], 256);
    cr_assert_eq(w->shape[1], 256);
    cr_assert_eq(h->nbytes, 256u * 256u * 4u);
    cr_assert_not_null(qn_st_meta(f, "note"));
    qn_st_close(f);
}

/* ---- corrupted files ---- */

Test(safetensors, missing_file_is_io_error)
{
    char path[512];
    expect_open_fails(in_dir(path, sizeof path, "absent.safetensors"), QN_ERR_IO, NULL);
}

Test(safetensors, empty_file_is_format_error)
{
    char path[512];
    write_bytes(in_dir(path, sizeof path, "empty.safetensors"), "", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "too short");
}

Test(safetensors, file_shorter_than_8_bytes_is_format_error)
{
    char path[512];
    write_bytes(in_dir(path, sizeof path, "short.safetensors"), "\x02\0\0\0\0", 5);
    expect_open_fails(path, QN_ERR_FORMAT, "found 5");
}

Test(safetensors, header_length_past_end_of_file)
{
    char path[512];
    write_st_raw(in_dir(path, sizeof path, "long.safetensors"), 64, "{}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "past the end of the file");
}

Test(safetensors, header_length_absurd)
{
    char path[512];
    write_st_raw(in_dir(path, sizeof path, "huge.safetensors"), 1ull << 63, "{}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "exceeds the limit");
    write_st_raw(path, ~0ull, "{}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "exceeds the limit");
}

Test(safetensors, header_length_too_small)
{
    char path[512];
    write_st_raw(in_dir(path, sizeof path, "tiny.safetensors"), 1, "{}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "too small");
}

Test(safetensors, header_not_json)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "notjson.safetensors"), "{\"a\": {\"dtype\": ", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "not valid JSON");
    /* the length field cuts a valid object short */
    write_st_raw(path, 5, "{\"a\":{}}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "not valid JSON");
}

Test(safetensors, header_json_not_object)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "array.safetensors"), "[1, 2, 3]", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "not a JSON object");
}

Test(safetensors, unknown_dtype_is_unsupported)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "dtype.safetensors"),
                    "{\"w\":{\"dtype\":\"Q9_X\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    expect_open_fails(path, QN_ERR_UNSUPPORTED, "'w' has unsupported dtype 'Q9_X'");
}

Test(safetensors, entry_fields_missing_or_mistyped)
{
    char path[512];
    in_dir(path, sizeof path, "fields.safetensors");
    write_st_header(path, "{\"w\":[1]}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "'w' is not a JSON object");
    write_st_header(path, "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(path, QN_ERR_FORMAT, "dtype");
    write_st_header(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(path, QN_ERR_FORMAT, "shape");
    write_st_header(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(path, QN_ERR_FORMAT, "shape entry 0");
    write_st_header(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    expect_open_fails(path, QN_ERR_FORMAT, "data_offsets");
    write_st_header(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(path, QN_ERR_UNSUPPORTED, "9 dimensions");
}

Test(safetensors, metadata_must_hold_strings)
{
    char path[512];
    in_dir(path, sizeof path, "meta.safetensors");
    write_st_header(path, "{\"__metadata__\":{\"n\":3}}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "__metadata__ value of 'n'");
    write_st_header(path, "{\"__metadata__\":[\"a\"]}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "__metadata__ is not a JSON object");
}

Test(safetensors, negative_dimension)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "neg.safetensors"),
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0);
    expect_open_fails(path, QN_ERR_FORMAT, "shape entry 1 is not a non-negative integer");
}

Test(safetensors, offsets_past_end_of_file)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "past.safetensors"),
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12);
    expect_open_fails(path, QN_ERR_FORMAT, "ends at data byte 16, past the end of the data (12)");
}

Test(safetensors, begin_after_end)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "order.safetensors"),
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    expect_open_fails(path, QN_ERR_FORMAT, "begins at byte 8, after its end 4");
    write_st_header(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8);
    expect_open_fails(path, QN_ERR_FORMAT, "negative data offset");
}

Test(safetensors, overlapping_tensors)
{
    char path[512];
    in_dir(path, sizeof path, "overlap.safetensors");
    write_st_header(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_open_fails(path, QN_ERR_FORMAT, "'a' and 'b' overlap");
    /* an empty tensor between a large one and one inside it must not hide the overlap */
    write_st_header(path, "{\"big\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
                          "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                          "\"in\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}", 16);
    expect_open_fails(path, QN_ERR_FORMAT, "'big' and 'in' overlap");
    /* same start */
    write_st_header(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                          "\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    expect_open_fails(path, QN_ERR_FORMAT, "overlap");
}

Test(safetensors, shape_and_span_disagree)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "span.safetensors"),
                    "{\"w\":{\"dtype\":\"F16\",\"shape\":[3,2],\"data_offsets\":[0,16]}}", 16);
    expect_open_fails(path, QN_ERR_SHAPE, "expected 12 bytes, found 16");
}

Test(safetensors, shape_product_overflows)
{
    char path[512];
    in_dir(path, sizeof path, "ovf.safetensors");
    write_st_header(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
                          "\"data_offsets\":[0,0]}}", 0);
    expect_open_fails(path, QN_ERR_SHAPE, "overflows");
    /* the product fits in int64 but times the element size does not */
    write_st_header(path, "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                          "\"data_offsets\":[0,0]}}", 0);
    expect_open_fails(path, QN_ERR_SHAPE, "overflows");
}

Test(safetensors, duplicate_keys)
{
    char path[512];
    write_st_header(in_dir(path, sizeof path, "dup.safetensors"),
                    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
    expect_open_fails(path, QN_ERR_FORMAT, "not valid JSON");
}

Test(safetensors, directory_is_io_error)
{
    expect_open_fails(g_dir, QN_ERR_IO, "directory");
}

/* ---- writer failures ---- */

static const float k_old[2] = { 1.0f, 2.0f };

static void write_old_file(const char *path)
{
    const qn_st_entry e = { .name = "old", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = k_old };
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, &e, 1, NULL, &err), QN_OK, "%s", err.msg);
}

static void expect_old_file(const char *path)
{
    qn_err err = { 0 };
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "previous file damaged: %s", err.msg);
    cr_assert_eq(qn_st_count(f), 1);
    const qn_st_tensor *t = qn_st_find(f, "old");
    cr_assert_not_null(t);
    cr_assert(memcmp(t->data, k_old, sizeof k_old) == 0);
    qn_st_close(f);
    cr_assert_eq(count_tmp_files(), 0, "a temporary file was left behind");
}

Test(safetensors, write_into_missing_directory_fails_cleanly)
{
    char path[512];
    in_dir(path, sizeof path, "no/such/dir/x.safetensors");
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, NULL, 0, NULL, &err), QN_ERR_IO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(count_tmp_files(), 0);
}

Test(safetensors, invalid_input_leaves_existing_file_unchanged)
{
    char path[512];
    in_dir(path, sizeof path, "keep.safetensors");
    write_old_file(path);
    float v[2] = { 5, 6 };
    qn_err err = { 0 };

    const qn_st_entry dup[] = {
        { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = v },
        { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = v },
    };
    cr_assert_eq(qn_st_write(path, dup, 2, NULL, &err), QN_ERR_ARG);
    cr_assert_not_null(strstr(err.msg, "'w' appears twice"), "%s", err.msg);
    expect_old_file(path);

    const qn_st_entry neg = { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 2, .shape = { 2, -1 }, .data = v };
    cr_assert_eq(qn_st_write(path, &neg, 1, NULL, &err), QN_ERR_SHAPE);
    expect_old_file(path);

    const qn_st_entry big = { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 2,
                              .shape = { INT64_C(1) << 40, INT64_C(1) << 40 }, .data = v };
    cr_assert_eq(qn_st_write(path, &big, 1, NULL, &err), QN_ERR_SHAPE);
    expect_old_file(path);

    const qn_st_entry reserved = { .name = "__metadata__", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = v };
    cr_assert_eq(qn_st_write(path, &reserved, 1, NULL, &err), QN_ERR_ARG);
    expect_old_file(path);

    const qn_st_entry nodata = { .name = "w", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = NULL };
    cr_assert_eq(qn_st_write(path, &nodata, 1, NULL, &err), QN_ERR_ARG);
    expect_old_file(path);

    const char *dup_meta[] = { "k", "a", "k", "b", NULL };
    cr_assert_eq(qn_st_write(path, NULL, 0, dup_meta, &err), QN_ERR_ARG);
    expect_old_file(path);

    const char *odd_meta[] = { "k", NULL };
    cr_assert_eq(qn_st_write(path, NULL, 0, odd_meta, &err), QN_ERR_ARG);
    expect_old_file(path);

    const qn_st_entry bad_utf8 = { .name = "w\xff", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 2 }, .data = v };
    cr_assert_eq(qn_st_write(path, &bad_utf8, 1, NULL, &err), QN_ERR_ARG);
    expect_old_file(path);
}

Test(safetensors, write_failing_midway_leaves_existing_file_unchanged)
{
    char path[512];
    in_dir(path, sizeof path, "midway.safetensors");
    write_old_file(path);
    /* a file size limit makes the data writes fail with EFBIG part way through,
       as a full disk would; each Criterion test runs in its own process */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static float big[64 * 1024];
    const qn_st_entry e = { .name = "big", .dtype = QN_DTYPE_F32, .ndim = 1, .shape = { 64 * 1024 }, .data = big };
    qn_err err = { 0 };
    qn_status s = qn_st_write(path, &e, 1, NULL, &err);
    lim.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &lim);
    cr_assert_eq(s, QN_ERR_IO, "expected an i/o error, found %s (%s)", qn_status_name(s), err.msg);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    expect_old_file(path);
}

Test(safetensors, write_replaces_existing_file)
{
    char path[512];
    in_dir(path, sizeof path, "replace.safetensors");
    write_old_file(path);
    int32_t v[3] = { 1, 2, 3 };
    const qn_st_entry e = { .name = "new", .dtype = QN_DTYPE_I32, .ndim = 1, .shape = { 3 }, .data = v };
    qn_err err = { 0 };
    cr_assert_eq(qn_st_write(path, &e, 1, NULL, &err), QN_OK, "%s", err.msg);
    qn_st_file *f = NULL;
    cr_assert_eq(qn_st_open(&f, path, &err), QN_OK, "%s", err.msg);
    cr_assert_null(qn_st_find(f, "old"));
    cr_assert_not_null(qn_st_find(f, "new"));
    qn_st_close(f);
    cr_assert_eq(count_tmp_files(), 0);
}
