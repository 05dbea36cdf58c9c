/* fuzz_config.c: config.json of a Hugging Face Llama folder. */
#include "fuzz_common.h"
#include "engine/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_config c;
    qn_err err;
    if (qn_config_load_hf(&c, fz_write("config.json", data, size), &err) == QN_OK)
        qn_config_validate(&c, "fuzz", &err);
    return 0;
}
