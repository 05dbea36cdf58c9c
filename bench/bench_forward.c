/* bench_forward.c: `make bench`, forward-pass part: prompt (pp512) and decode
   (tg128) throughput of each shared model at 2 threads, medians of 5, printed
   with the fraction of the memory-bandwidth bound measured in the same run and
   the ratio to llama.cpp's f32 figures for the same model and machine kind
   (reference/llamacpp.json, llama-bench -t 2 -p 512 -n 128 -r 5). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/speed.h"
#include "kernels/linear.h"

static const char *shared_path(const char *rel)
{
    static char buf[4][4096];
    static int slot;
    const char *root = getenv("QN_SHARED");
    char *b = buf[slot++ % 4];
    snprintf(b, 4096, "%s/%s", root && *root ? root : "../shared", rel);
    return b;
}

int main(void)
{
    qn_kernels_set_threads(2);
    json_t *ref = json_load_file(shared_path("reference/llamacpp.json"), 0, NULL);
    json_t *r260 = json_object_get(json_object_get(ref, "models"), "stories260K");
    double ref_pp = json_number_value(json_object_get(r260, "f32_pp_tps"));
    double ref_tg = json_number_value(json_object_get(r260, "f32_tg_tps"));
    struct { const char *label, *path; } models[] = {
        { "stories260K hf f32", "assets/stories260K" },
        { "stories260K llama2.c", shared_path("models/stories260K/stories260K.bin") },
        { "stories260K gguf f16", shared_path("models/stories260K/gguf/stories260K-f16.gguf") },
        { "stories260K gguf Q4_K_M", shared_path("models/stories260K/gguf/stories260K-Q4_K_M.gguf") },
    };
    printf("forward pass, 2 threads, pp512 / tg128, median of 5 (llama.cpp f32: pp %.0f, tg %.0f tokens/s)\n",
           ref_pp, ref_tg);
    printf("%-26s %10s %10s %9s %9s %10s\n", "model", "pp t/s", "tg t/s", "pp/llama", "tg/llama", "bw frac");
    int rc = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        qn_model *m = NULL;
        qn_err err = {0};
        qn_speed sp;
        if (qn_model_open(&m, models[i].path, NULL, &err) != QN_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            rc = 1;
            continue;
        }
        qn_model_extend_ctx(m, 512);
        if (qn_speed_measure(m, 512, 128, 5, &sp, &err) != QN_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            rc = 1;
        } else {
            printf("%-26s %10.0f %10.0f %9.2f %9.2f %10.2f\n", models[i].label, sp.pp_tps, sp.tg_tps,
                   sp.pp_tps / ref_pp, sp.tg_tps / ref_tg, sp.bandwidth_fraction);
        }
        qn_model_close(m);
    }
    printf("(bw frac: decode bytes of weights per second over memcpy bandwidth; > 1 means the model fits in cache)\n");
    json_decref(ref);
    return rc;
}
