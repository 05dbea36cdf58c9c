/* json_file.h: JSON files through jansson: loading with a message that names
   the file and the line, saving atomically (temporary name, then rename). */
#ifndef QN_JSON_FILE_H
#define QN_JSON_FILE_H
#include <jansson.h>
#include "status.h"

/* Loads path; duplicate keys are an error; integers too large for json_int_t
   (a tokenizer_config.json's model_max_length of 1e30, say) become reals. */
qn_status qn_json_load(const char *path, json_t **out, qn_err *err);
/* Parses text read from path with jansson's flags: a leading UTF-8 byte-order
   mark is skipped (some editors write one; jansson would refuse it with an
   invisible character in the message); errors name path, line and column. */
json_t   *qn_json_parse(const char *text, size_t len, size_t flags, const char *path, qn_err *err);
/* Writes root, indented by 2 and newline-terminated, to path atomically. */
qn_status qn_json_save(const json_t *root, const char *path, qn_err *err);

/* A JSON string for any bytes, such as a path: as they are when UTF-8, else
   with each byte that is not UTF-8 written as the four characters \xNN (jansson
   refuses such strings, and a refused string silently empties a whole object). */
json_t *qn_json_text(const char *s);

#endif
