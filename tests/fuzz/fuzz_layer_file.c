/* fuzz_layer_file.c: a layer file (weight and hessian of one linear). */
#include "fuzz_common.h"
#include "engine/layer_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_layer_file lf = {0};
    qn_err err;
    if (qn_layer_file_load(&lf, fz_write("layer.safetensors", data, size), &err) == QN_OK) {
        fz_touch(lf.W, lf.d_out * lf.d_in * sizeof *lf.W);
        fz_touch(lf.H, lf.d_in * lf.d_in * sizeof *lf.H);
    }
    qn_layer_file_done(&lf);
    return 0;
}
