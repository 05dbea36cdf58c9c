/* fuzz_llama2c.c: the llama2.c checkpoint reader; every tensor is fetched. */
#include "fuzz_common.h"
#include "engine/llama2c.h"
#include "engine/llama_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_config cfg;
    qn_weight_source src = {0};
    qn_err err;
    if (qn_llama2c_open(fz_write("x.bin", data, size), &cfg, &src, &err) != QN_OK) return 0;
    size_t n = qn_llama_n_tensors(&cfg);
    for (size_t i = 0; i < n && i < 64; i++) {
        qn_tensor_desc d = qn_llama_tensor(&cfg, i);
        qn_f32_tensor t = {0};
        if (src.get(src.ctx, d.name, &t, &err) == QN_OK) {
            size_t numel = (size_t)d.shape[0] * (size_t)(d.ndim == 2 ? d.shape[1] : 1);
            fz_touch(t.data, numel * sizeof(float));
            qn_f32_tensor_done(&t);
        }
    }
    if (src.close) src.close(src.ctx);
    return 0;
}
