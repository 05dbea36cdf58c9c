/* fuzz_run_folder.c: a quantize run folder (run.jsonl, config.json,
   stats.safetensors) through qn_run_open and every statistic of every layer. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "engine/run_folder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "run.jsonl", "config.json", "stats.safetensors" };
    fz_write_parts(data, size, names, 3);
    qn_run_folder *run = NULL;
    qn_err err;
    if (qn_run_open(&run, fz_dir(), &err) != QN_OK) return 0;
    const qn_run_info *info = qn_run_get_info(run);
    for (size_t i = 0; i < info->n_layers && i < 64; i++) {
        const char *name = info->layers[i].name;
        const float *diag;
        const uint8_t *mask;
        const float *codewords;
        const uint32_t *usage;
        size_t n, rows, cols, M, K, g;
        if (qn_run_hessian_diag(run, name, &diag, &n, &err) == QN_OK) fz_touch(diag, n * sizeof *diag);
        if (qn_run_outlier_mask(run, name, &mask, &rows, &cols, &err) == QN_OK) fz_touch(mask, rows * cols);
        if (qn_run_codebooks(run, name, &codewords, &usage, &M, &K, &g, &err) == QN_OK)
            fz_touch(usage, M * K * sizeof *usage);
    }
    size_t idx;
    qn_run_find_layer(run, "3.up", &idx, &err);
    qn_run_worst_layer(run);
    qn_run_close(run);
    return 0;
}
