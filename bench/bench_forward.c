/* bench_forward.c: `make bench`, forward-pass part: prompt (pp512) and decode
   (tg128) throughput of each shared model at 2 threads, medians of 5, printed
   with the fraction of the memory-bandwidth bound measured in the same run and
   the ratio to llama.cpp's f32 figures for the same model and machine kind
   (reference/llamacpp.json, llama-bench -t 2 -p 512 -n 128 -r 5). Then the
   same model compressed (AQLM 2x8, SpQR spqr-3.6) running on the compressed
   kernels, against its fp32 speed, with the memory each takes once loaded. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared_path.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/speed.h"
#include "kernels/linear.h"

/* Resident bytes of this process (/proc/self/statm). */
static double resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp && fscanf(fp, "%ld %ld", &pages, &rss) != 2) rss = 0;
    if (fp) fclose(fp);
    return (double)rss * 4096.0;
}

/* Opens a model and measures it; prints what opening it added to the resident set. */
static int measure(const char *label, const char *path, double base_pp, double base_tg, double *pp, double *tg)
{
    double before = resident_bytes();
    qn_model *m = NULL;
    qn_err err = {0};
    qn_speed sp;
    if (qn_model_open(&m, path, NULL, &err) != QN_OK) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
    double mem = resident_bytes() - before;
    qn_model_extend_ctx(m, 512);
    int rc = 0;
    if (qn_speed_measure(m, 512, 128, 5, &sp, &err) != QN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%-26s %10.0f %10.0f %9.2f %9.2f %10.2f %10.0f\n", label, sp.pp_tps, sp.tg_tps, sp.pp_tps / base_pp,
               sp.tg_tps / base_tg, sp.bandwidth_fraction, mem / 1024);
        if (pp) *pp = sp.pp_tps;
        if (tg) *tg = sp.tg_tps;
    }
    qn_model_close(m);
    return rc;
}

/* The default model compressed with a preset into dir (a short calibration: speed, not quality). */
static int compress(const char *preset, const char *dir)
{
    qn_quantize_job job = { .model = "assets/stories260K", .calib = shared_path("text/tinystories-valid-head.txt"),
                            .out_dir = dir, .force = true };
    job.config = qn_preset_find(preset)->config;
    job.config.nsamples = 16;
    job.config.seqlen = 64;
    qn_err err = {0};
    if (qn_quantize_run(&job, (qn_event_sink){0}, NULL, &err) != QN_OK) {
        fprintf(stderr, "bench: %s: %s\n", preset, err.msg);
        return 1;
    }
    return 0;
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
    printf("%-26s %10s %10s %9s %9s %10s %10s\n", "model", "pp t/s", "tg t/s", "pp/llama", "tg/llama", "bw frac",
           "mem KiB");
    int rc = 0;
    double fp32_pp = 0, fp32_tg = 0;
    rc |= measure(models[0].label, models[0].path, ref_pp, ref_tg, &fp32_pp, &fp32_tg);
    for (size_t i = 1; i < sizeof models / sizeof models[0]; i++) rc |= measure(models[i].label, models[i].path, ref_pp, ref_tg, NULL, NULL);
    printf("(bw frac: decode bytes of weights per second over memcpy bandwidth; > 1 means the model fits in cache)\n\n");
    printf("compressed, on the compressed kernels; ratios against the fp32 model above\n");
    printf("%-26s %10s %10s %9s %9s %10s %10s\n", "model", "pp t/s", "tg t/s", "pp/fp32", "tg/fp32", "bw frac", "mem KiB");
    static const char *const presets[][2] = { { "aqlm-2x8", "build/bench-aqlm-2x8" }, { "spqr-3.6", "build/bench-spqr-3.6" } };
    for (size_t i = 0; i < 2; i++) {
        if (compress(presets[i][0], presets[i][1])) { rc = 1; continue; }
        char label[64];
        snprintf(label, sizeof label, "stories260K %s", presets[i][0]);
        rc |= measure(label, presets[i][1], fp32_pp, fp32_tg, NULL, NULL);
    }
    json_decref(ref);
    return rc;
}
