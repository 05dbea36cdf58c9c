/* png.h: write a raster as an 8-bit RGB PNG with libpng, atomically: the bytes go
   to "<path>.tmp.<pid>" in the same directory, are flushed and fsynced, and only
   then renamed over path; any failure removes the temporary, so the final name
   holds either the old file or the whole new one. Text chunks carry the run's
   model, method, layer and options: tEXt for ASCII values, iTXt (UTF-8) for
   others. No reading here: the tests decode with libpng themselves. */
#ifndef QN_PNG_H
#define QN_PNG_H
#include <stddef.h>
#include "status.h"
#include "viz/raster.h"

typedef struct {
    const char *key;      /* 1..79 printable ASCII characters, e.g. "quench.model" */
    const char *value;    /* UTF-8 */
} qn_png_text;

qn_status qn_png_write(const char *path, const qn_raster *r, const qn_png_text *text,
                       size_t n_text, qn_err *err);

#endif
