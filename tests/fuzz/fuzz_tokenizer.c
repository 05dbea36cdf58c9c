/* fuzz_tokenizer.c: tokenizer.json (with the tokenizer_config.json beside it),
   then a round trip of a short text through the tokenizer it describes. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "tokenizer.json", "tokenizer_config.json" };
    fz_write_parts(data, size, names, 2);
    char path[300];
    snprintf(path, sizeof path, "%s/tokenizer.json", fz_dir());
    qn_tokenizer *t = NULL;
    qn_err err;
    if (qn_tok_load_hf(&t, path, &err) != QN_OK) return 0;
    static const char text[] = "Once upon a time, \xc3\xa9t\xc3\xa9 <s> 123\n";
    int32_t *ids = NULL;
    size_t n = 0;
    qn_tok_encode_opts eo = { .add_bos = true, .parse_special = true };
    if (qn_tok_encode(t, text, strlen(text), eo, &ids, &n, &err) == QN_OK) {
        char buf[64];
        for (size_t i = 0; i < n; i++) qn_tok_decode_token(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
    }
    free(ids);
    qn_tok_free(t);
    return 0;
}
