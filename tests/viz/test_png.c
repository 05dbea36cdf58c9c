/* test_png.c: PNGs decoded with libpng: size, pixels at known positions (a
   weights ramp lands on the colormap's ends), tEXt/iTXt chunks; and failed
   writes (missing or read-only folder, file size limit with and without the
   SIGXFSZ kill) leave nothing under the final name, nor a temporary. */
#include "viz/png.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "viz/plot.h"

static char g_dir[256];

static void make_dir(void) { ts_mkdtemp(g_dir, sizeof g_dir); }
static void remove_dir(void) { ts_rmtree(g_dir); }

TestSuite(png, .init = make_dir, .fini = remove_dir);

typedef struct {
    int       w, h;
    uint8_t  *rgb;            /* (h, w, 3) */
    char      keys[8][80];
    char      values[8][256];
    int       compression[8];
    int       n_text;
} decoded;

/* Decodes an 8-bit RGB PNG; fails the test on anything else. */
static decoded decode(const char *path)
{
    decoded d;
    memset(&d, 0, sizeof d);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s: cannot open", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(png && info);
    if (setjmp(png_jmpbuf(png))) cr_assert_fail("%s: libpng could not decode it", path);
    png_init_io(png, fp);
    png_read_info(png, info);
    cr_assert_eq(png_get_bit_depth(png, info), 8);
    cr_assert_eq(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB);
    d.w = (int)png_get_image_width(png, info);
    d.h = (int)png_get_image_height(png, info);
    d.rgb = malloc((size_t)d.w * (size_t)d.h * 3);
    for (int y = 0; y < d.h; y++) png_read_row(png, d.rgb + (size_t)y * (size_t)d.w * 3, NULL);
    png_read_end(png, info);
    png_textp text;
    int n = 0;
    png_get_text(png, info, &text, &n);
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(d.keys[i], sizeof d.keys[i], "%s", text[i].key);
        snprintf(d.values[i], sizeof d.values[i], "%s", text[i].text);
        d.compression[i] = text[i].compression;
    }
    d.n_text = n;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return d;
}

static qn_rgb px(const decoded *d, int x, int y)
{
    const uint8_t *p = d->rgb + ((size_t)y * (size_t)d->w + (size_t)x) * 3;
    return (qn_rgb){ p[0], p[1], p[2] };
}

static const char *text_of(const decoded *d, const char *key, int *compression)
{
    for (int i = 0; i < d->n_text; i++)
        if (!strcmp(d->keys[i], key)) {
            if (compression) *compression = d->compression[i];
            return d->values[i];
        }
    return NULL;
}

static int n_entries(void)
{
    DIR *dir = opendir(g_dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));) n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

Test(png, pixels_size_and_text_chunks_round_trip)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 37, 21, (qn_rgb){ 1, 2, 3 }, NULL), QN_OK);
    qn_raster_set(&r, 36, 20, (qn_rgb){ 250, 128, 7 });
    qn_raster_set(&r, 0, 0, (qn_rgb){ 255, 255, 255 });
    char path[512];
    snprintf(path, sizeof path, "%s/p.png", g_dir);
    const qn_png_text t[] = { { "quench.model", "stories260K" },
                              { "quench.method", "SpQR w3 g16 outliers 1%" },
                              { "quench.layer", "block 3 mlp.up_proj \xe2\x80\x94 \xc3\x97" },
                              { "quench.options", "--bits 3 --group 16" } };
    qn_err err = { 0 };
    cr_assert_eq(qn_png_write(path, &r, t, 4, &err), QN_OK, "%s", err.msg);
    decoded d = decode(path);
    cr_assert(d.w == 37 && d.h == 21, "size %dx%d", d.w, d.h);
    qn_rgb a = px(&d, 36, 20), b = px(&d, 0, 0), c = px(&d, 10, 10);
    cr_assert(a.r == 250 && a.g == 128 && a.b == 7);
    cr_assert(b.r == 255 && c.r == 1 && c.g == 2 && c.b == 3);
    int comp = 99;
    cr_assert_str_eq(text_of(&d, "quench.model", &comp), "stories260K");
    cr_assert_eq(comp, PNG_TEXT_COMPRESSION_NONE, "ASCII values are tEXt");
    cr_assert_str_eq(text_of(&d, "quench.method", NULL), "SpQR w3 g16 outliers 1%");
    cr_assert_str_eq(text_of(&d, "quench.options", NULL), "--bits 3 --group 16");
    cr_assert_str_eq(text_of(&d, "quench.layer", &comp), "block 3 mlp.up_proj \xe2\x80\x94 \xc3\x97");
    cr_assert_eq(comp, PNG_ITXT_COMPRESSION_NONE, "UTF-8 values are iTXt");
    cr_assert_eq(n_entries(), 1, "no temporary left behind");
    free(d.rgb);
    qn_raster_done(&r);
}

Test(png, weights_picture_decodes_with_ramp_ends_in_place)
{
    const size_t rows = 64, cols = 1500;
    float *W = malloc(rows * cols * sizeof *W);
    for (size_t i = 0; i < rows * cols; i++) W[i] = -1 + 2 * (float)(i % cols) / (float)(cols - 1);
    qn_font *font = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_font_open(&font, NULL, &err), QN_OK, "%s", err.msg);
    qn_picture p;
    qn_viz_opts o = { .title = { "stories260K", "block 0 q_proj", "SpQR", 3.2 } };
    cr_assert_eq(qn_viz_weights(&p, font, W, rows, cols, &o, &err), QN_OK, "%s", err.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/weights.png", g_dir);
    const qn_png_text t[] = { { "quench.kind", "weights" } };
    cr_assert_eq(qn_png_write(path, &p.image, t, 1, &err), QN_OK, "%s", err.msg);
    decoded d = decode(path);
    cr_assert(d.w == p.image.w && d.h == p.image.h);
    qn_rgb lo = qn_colormap_entry(QN_CMAP_COOLWARM, 0), hi = qn_colormap_entry(QN_CMAP_COOLWARM, 255);
    qn_rgb l = px(&d, p.map.x, p.map.y + p.map.h / 2);
    qn_rgb h = px(&d, p.map.x + p.map.w - 1, p.map.y + p.map.h / 2);
    cr_assert(l.r == lo.r && l.g == lo.g && l.b == lo.b, "left edge (%d,%d,%d)", l.r, l.g, l.b);
    cr_assert(h.r == hi.r && h.g == hi.g && h.b == hi.b, "right edge (%d,%d,%d)", h.r, h.g, h.b);
    cr_assert_str_eq(text_of(&d, "quench.kind", NULL), "weights");
    free(d.rgb);
    qn_picture_done(&p);
    qn_font_close(font);
    free(W);
}

static void write_old(const char *path) { ts_write_file(path, "old", 3); }

static void expect_old(const char *path)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s: the old file must still be there", path);
    char buf[8] = { 0 };
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    cr_assert(n == 3 && !memcmp(buf, "old", 3), "%s: the old contents must be untouched", path);
}

static qn_raster big_noise(void)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 600, 600, (qn_rgb){ 0, 0, 0 }, NULL), QN_OK);
    unsigned s = 1;
    for (size_t i = 0; i < 600 * 600 * 3; i++) r.px[i] = (uint8_t)((s = s * 1103515245 + 12345) >> 16);
    return r;
}

Test(png, missing_folder_is_an_io_error_naming_the_path)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 4, 4, (qn_rgb){ 0, 0, 0 }, NULL), QN_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", g_dir);
    qn_err err = { 0 };
    cr_assert_eq(qn_png_write(path, &r, NULL, 0, &err), QN_ERR_IO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(access(path, F_OK), -1);
    qn_raster_done(&r);
}

Test(png, read_only_folder_leaves_nothing)
{
    if (geteuid() == 0) cr_skip_test("root ignores folder permissions");
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 4, 4, (qn_rgb){ 0, 0, 0 }, NULL), QN_OK);
    char sub[512], path[600];
    snprintf(sub, sizeof sub, "%s/ro", g_dir);
    cr_assert_eq(mkdir(sub, 0555), 0);
    snprintf(path, sizeof path, "%s/x.png", sub);
    qn_err err = { 0 };
    cr_assert_eq(qn_png_write(path, &r, NULL, 0, &err), QN_ERR_IO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(access(path, F_OK), -1);
    chmod(sub, 0755);
    qn_raster_done(&r);
}

Test(png, bad_text_key_is_refused_before_writing)
{
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 4, 4, (qn_rgb){ 0, 0, 0 }, NULL), QN_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/k.png", g_dir);
    const qn_png_text t[] = { { "", "x" } };
    qn_err err = { 0 };
    cr_assert_eq(qn_png_write(path, &r, t, 1, &err), QN_ERR_ARG);
    cr_assert_eq(n_entries(), 0);
    qn_raster_done(&r);
}

/* In a child limited to 4 KiB files: ignore SIGXFSZ (the write fails with EFBIG)
   or keep it (the child is killed mid-write). Returns the child's wait status. */
static int write_limited(const char *path, int ignore_sigxfsz, qn_status *got)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (ignore_sigxfsz) signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = { 4096, 4096 };
        setrlimit(RLIMIT_FSIZE, &lim);
        qn_raster r = big_noise();
        qn_err err = { 0 };
        qn_status s = qn_png_write(path, &r, NULL, 0, &err);
        if (write(fds[1], &s, sizeof s) != sizeof s) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    int status = 0;
    *got = QN_OK;
    ssize_t n = read(fds[0], got, sizeof *got);
    if (n != sizeof *got) *got = (qn_status)-1;
    close(fds[0]);
    waitpid(pid, &status, 0);
    return status;
}

Test(png, size_limit_failure_leaves_old_file_and_no_temporary)
{
    char path[512];
    snprintf(path, sizeof path, "%s/limited.png", g_dir);
    write_old(path);
    qn_status s;
    int status = write_limited(path, 1, &s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_eq(s, QN_ERR_IO, "a write past RLIMIT_FSIZE must fail with an i/o error (%d)", s);
    expect_old(path);
    cr_assert_eq(n_entries(), 1, "the temporary must be removed");
}

Test(png, killed_writer_never_leaves_a_partial_final_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/killed.png", g_dir);
    qn_status s;
    int status = write_limited(path, 0, &s);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "child status %d", status);
    cr_assert_eq(access(path, F_OK), -1, "no file under the final name");
    write_old(path);
    status = write_limited(path, 0, &s);
    cr_assert(WIFSIGNALED(status));
    expect_old(path);
}

Test(png, write_replaces_an_existing_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/r.png", g_dir);
    write_old(path);
    qn_raster r;
    cr_assert_eq(qn_raster_init(&r, 3, 2, (qn_rgb){ 9, 8, 7 }, NULL), QN_OK);
    qn_err err = { 0 };
    cr_assert_eq(qn_png_write(path, &r, NULL, 0, &err), QN_OK, "%s", err.msg);
    decoded d = decode(path);
    cr_assert(d.w == 3 && d.h == 2 && px(&d, 2, 1).r == 9);
    cr_assert_eq(n_entries(), 1);
    free(d.rgb);
    qn_raster_done(&r);
}
