/* fuzz_safetensors.c: the .safetensors reader (every tensor's bytes are read). */
#include "fuzz_common.h"
#include "engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_st_file *f = NULL;
    qn_err err;
    if (qn_st_open(&f, fz_write("x.safetensors", data, size), &err) == QN_OK) {
        for (size_t i = 0; i < qn_st_count(f); i++) {
            const qn_st_tensor *t = qn_st_at(f, i);
            fz_touch(t->data, t->nbytes);
            if (qn_st_find(f, t->name) == NULL) __builtin_trap();
        }
        qn_st_meta(f, "format");
    }
    qn_st_close(f);
    return 0;
}
