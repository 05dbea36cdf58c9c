/* fuzz_model_folder.c: a Hugging Face model folder (config.json,
   model.safetensors, tokenizer.json) through qn_model_open, both on the packed
   kernels and dequantized, then one forward step when the model is small. */
#include <stdio.h>

#include "fuzz_common.h"
#include "engine/forward.h"
#include "engine/model.h"

static void open_and_run(const char *dir, bool dequantize)
{
    qn_model *m = NULL;
    qn_err err;
    if (qn_model_open(&m, dir, &(qn_model_opts){ .dequantize = dequantize }, &err) != QN_OK) return;
    if (qn_config_n_params(&m->cfg) < 4000000 && m->cfg.n_layers <= 8) {
        qn_state *st = NULL;
        const float *logits;
        int32_t tok[2] = { 0, m->cfg.vocab_size - 1 };
        if (qn_state_create(&st, m, 2, 2, &err) == QN_OK) qn_forward(m, st, tok, 2, 0, true, &logits, &err);
        qn_state_free(st);
    }
    qn_model_close(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "config.json", "model.safetensors", "tokenizer.json" };
    fz_write_parts(data, size, names, 3);
    open_and_run(fz_dir(), false);
    open_and_run(fz_dir(), true);
    return 0;
}
