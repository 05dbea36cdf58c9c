/* png.c: atomic PNG writing (see png.h). libpng reports errors by longjmp to the
   setjmp in write_stream; its error callback keeps the message (and errno, which
   says why a write failed) and its warning callback stays silent, since nothing
   under viz/ prints. */
#include "viz/png.h"

#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char msg[200];
    int  saved_errno;
} png_failure;

static void on_error(png_structp png, png_const_charp msg)
{
    png_failure *pf = png_get_error_ptr(png);
    pf->saved_errno = errno;
    snprintf(pf->msg, sizeof pf->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int valid_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 32 || k[i] > 126 || (k[i] == ' ' && k[i + 1] == ' ')) return 0;
    return 1;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* Encodes r into fp; QN_ERR_IO with pf filled when libpng fails. */
static qn_status write_stream(FILE *fp, const qn_raster *r, const qn_png_text *text,
                              size_t n_text, png_failure *pf)
{
    png_text *chunks = calloc(n_text ? n_text : 1, sizeof *chunks);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, pf, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!chunks || !png || !info) {
        png_destroy_write_struct(&png, &info);
        free(chunks);
        snprintf(pf->msg, sizeof pf->msg, "out of memory");
        return QN_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(chunks);
        return QN_ERR_IO;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)r->w, (png_uint_32)r->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (size_t i = 0; i < n_text; i++) {
        int ascii = is_ascii(text[i].value);
        chunks[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
        chunks[i].key = (png_charp)text[i].key;
        chunks[i].text = (png_charp)text[i].value;
        chunks[i].text_length = ascii ? strlen(text[i].value) : 0;
        chunks[i].itxt_length = ascii ? 0 : strlen(text[i].value);
    }
    if (n_text) png_set_text(png, info, chunks, (int)n_text);
    png_write_info(png, info);
    for (int y = 0; y < r->h; y++)
        png_write_row(png, r->px + (size_t)y * (size_t)r->w * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    return QN_OK;
}

qn_status qn_png_write(const char *path, const qn_raster *r, const qn_png_text *text,
                       size_t n_text, qn_err *err)
{
    qn_status s;
    char tmp[4160];
    FILE *fp = NULL;
    int fd = -1, made = 0;
    png_failure pf = { "", 0 };
    if (!r || !r->px || r->w < 1 || r->h < 1)
        return qn_err_set(err, QN_ERR_ARG, "%s: no image to write", path);
    for (size_t i = 0; i < n_text; i++)
        if (!valid_key(text[i].key) || !text[i].value)
            return qn_err_set(err, QN_ERR_ARG, "%s: text chunk key '%s' must be 1 to 79 "
                              "printable ASCII characters with a value", path,
                              text[i].key ? text[i].key : "(null)");
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return qn_err_set(err, QN_ERR_ARG, "%s: path too long", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = qn_err_set(err, QN_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    made = 1;
    fp = fdopen(fd, "wb");
    if (!fp) {
        s = qn_err_set(err, QN_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    errno = 0;
    if ((s = write_stream(fp, r, text, n_text, &pf)) != QN_OK) {
        s = qn_err_set(err, s, "%s: writing PNG failed: %s%s%s", tmp, pf.msg,
                       pf.saved_errno ? ": " : "", pf.saved_errno ? strerror(pf.saved_errno) : "");
        goto fail;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        s = qn_err_set(err, QN_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    int rc = fclose(fp);
    fp = NULL;
    if (rc != 0) {
        s = qn_err_set(err, QN_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        s = qn_err_set(err, QN_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                       strerror(errno));
        goto fail;
    }
    return QN_OK;
fail:
    if (fp) fclose(fp);
    if (fd >= 0) close(fd);
    if (made) unlink(tmp);
    return s;
}
