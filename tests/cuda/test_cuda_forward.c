/* test_cuda_forward.c: the whole model on the GPU against the CPU.
   - SmolLM2-135M (the shared GGUF, dequantized to f32 on load, fp16 on the
     GPU): perplexity on the shared TinyStories text (llama.cpp protocol, ctx
     256, 4 chunks) within 0.1% of the CPU's, the bound.
   - stories260K quantized with RTN int4, SpQR and AQLM (compressed linears
     on the GPU kernels): within 0.5%; with dim 64 every fp16 rounding of an
     activation weighs more than in a real model.
   - greedy decoding through the KV cache gives the CPU's first tokens. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"
#include "engine/model.h"
#include "kernels/device.h"
#include "support.h"

#define SMOLLM2 "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"

static qn_model *open_on(const char *path, qn_device d)
{
    qn_err err = {0};
    cr_assert_eq(qn_kernels_set_device(d, &err), QN_OK, "%s", err.msg);
    qn_model *m = NULL;
    cr_assert_eq(qn_model_open(&m, path, NULL, &err), QN_OK, "%s: %s", path, err.msg);
    cr_assert_eq(m->gpu != NULL, d == QN_DEVICE_CUDA, "%s: weights uploaded only under --device cuda", path);
    return m;
}

static void ppl_both(const char *path, size_t chunks, double tol)
{
    qn_model *m = open_on(path, QN_DEVICE_CPU);
    double cpu = ts_model_ppl(m, chunks);
    qn_model_close(m);
    m = open_on(path, QN_DEVICE_CUDA);
    double gpu = ts_model_ppl(m, chunks);
    qn_model_close(m);
    qn_kernels_set_device(QN_DEVICE_CPU, NULL);
    double rel = fabs(gpu - cpu) / cpu;
    fprintf(stderr, "%s: ppl cpu %.5f cuda %.5f (%.3g)\n", path, cpu, gpu, rel);
    cr_expect(rel <= tol, "%s: ppl cpu %.5f, cuda %.5f: %.3g apart (tolerance %g)", path, cpu, gpu, rel, tol);
}

Test(cuda_forward, smollm2_ppl_within_a_tenth_of_a_percent, .timeout = 600)
{
    ppl_both(ts_shared(SMOLLM2), 4, 1e-3);
}

Test(cuda_forward, compressed_models_ppl, .timeout = 900)
{
    const char *presets[] = { "rtn-4", "spqr-3.6", "aqlm-small-2x8" };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        char dir[256];
        ts_mkdtemp(dir, sizeof dir);
        ts_quantize_small(presets[i], dir);   /* on the CPU: calibration runs there */
        ppl_both(dir, 2, 5e-3);
        ts_rmtree(dir);
    }
}

static int32_t *greedy(qn_device d, size_t n_new, size_t *n_out)
{
    qn_model *m = open_on(ts_shared(SMOLLM2), d);
    qn_gen_opts o = { .n_new = n_new, .temperature = 0.0f };
    qn_gen_result r;
    qn_err err = {0};
    const char *prompt = "The capital of France is";
    cr_assert_eq(qn_generate(m, prompt, strlen(prompt), &o, (qn_event_sink){0}, NULL, &r, &err), QN_OK, "%s", err.msg);
    qn_model_close(m);
    qn_kernels_set_device(QN_DEVICE_CPU, NULL);
    *n_out = r.n_prompt + r.n_generated;
    return r.tokens;
}

Test(cuda_forward, greedy_decoding_follows_the_cpu, .timeout = 600)
{
    size_t na, nb;
    int32_t *a = greedy(QN_DEVICE_CPU, 8, &na), *b = greedy(QN_DEVICE_CUDA, 8, &nb);
    cr_assert_eq(na, nb);
    cr_expect_arr_eq(a, b, na * sizeof *a, "greedy tokens differ between cpu and cuda");
    free(a);
    free(b);
}
