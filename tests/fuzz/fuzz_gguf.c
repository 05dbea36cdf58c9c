/* fuzz_gguf.c: the GGUF reader, its metadata getters and the dequantizers. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "engine/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_gguf_file *f = NULL;
    qn_err err;
    if (qn_gguf_open(&f, fz_write("x.gguf", data, size), &err) != QN_OK) return 0;
    const char *s;
    uint32_t u;
    const char *const *strs;
    size_t n;
    qn_gguf_get_str(f, "general.architecture", &s, &err);
    qn_gguf_get_u32(f, "llama.block_count", &u, &err);
    qn_gguf_get_str_arr(f, "tokenizer.ggml.tokens", &strs, &n, &err);
    float *scores = NULL;
    if (qn_gguf_get_f32_arr(f, "tokenizer.ggml.scores", &scores, &n, &err) == QN_OK) free(scores);
    for (size_t i = 0; i < qn_gguf_tensor_count(f); i++) {
        const qn_gguf_tensor *t = qn_gguf_tensor_at(f, i);
        if (t->nelements > (1u << 20)) continue;   /* keep each run short */
        float *dst = malloc((t->nelements ? t->nelements : 1) * sizeof *dst);
        if (dst) qn_gguf_tensor_to_f32(f, t, dst, &err);
        free(dst);
    }
    qn_gguf_close(f);
    return 0;
}
