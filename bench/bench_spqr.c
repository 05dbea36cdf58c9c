/* bench_spqr.c: `make bench`, SpQR part: every SpQR row of
   reference/layer-reference.json (the research code on synthetic-r512) run by
   qn_spqr_quantize_layer with the research code's statistics (--plain-stats)
   and with quench's refined ones (the default), median wall time of 5, printed
   with the error as a fraction of the research code's at the bits each got. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared_path.h"
#include "../tests/spqr_reference_cases.h"
#include "engine/layer_file.h"
#include "engine/spqr.h"

#define REPS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The research code's relative error for this config, or NAN. */
static double reference_error(const json_t *root, const char *config)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(root, "results"), i, r) {
        const char *m = json_string_value(json_object_get(r, "method")), *c = json_string_value(json_object_get(r, "config"));
        if (m && c && strcmp(m, "spqr") == 0 && strcmp(c, config) == 0)
            return json_number_value(json_object_get(r, "relative_error"));
    }
    return NAN;
}

/* Median seconds of REPS runs; error and bits of the last. */
static int run(const qn_layer_problem *p, const qn_spqr_opts *o, double *err_out, double *bits, double *secs)
{
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        qn_layer_result res = {0};
        qn_err err = {0};
        if (qn_spqr_quantize_layer(p, o, (qn_event_sink){0}, NULL, &res, NULL, &err) != QN_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return -1;
        }
        t[r] = res.seconds;
        *err_out = res.relative_error;
        *bits = res.bits;
        qn_layer_result_done(&res);
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    *secs = t[REPS / 2];
    return 0;
}

int main(void)
{
    json_error_t je;
    json_t *root = json_load_file(shared_path("reference/layer-reference.json"), 0, &je);
    qn_layer_file lf;
    qn_err err = {0};
    if (!root) { fprintf(stderr, "bench: layer-reference.json: %s\n", je.text); return 1; }
    if (qn_layer_file_load(&lf, shared_path("layers/synthetic-r512.safetensors"), &err) != QN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    qn_layer_problem p = qn_layer_file_problem(&lf);
    printf("SpQR on synthetic-r512 (median of %d; research = layer-reference.json)\n", REPS);
    printf("%-58s %-8s %10s %7s %8s %8s\n", "config", "stats", "rel.err", "bits", "vs res.", "seconds");
    for (size_t i = 0; i < N_SPQR_REFERENCE_CASES; i++) {
        const spqr_reference_case *c = &k_spqr_reference_cases[i];
        double ref = reference_error(root, c->config);
        for (int refine = 0; refine < 2; refine++) {
            qn_spqr_opts o = qn_spqr_opts_default();
            o.bits = c->bits;
            o.beta1 = c->beta1;
            o.beta2 = c->beta2;
            o.outlier_threshold = c->tau;
            o.refine_stats = refine;
            double e, bits, secs;
            if (run(&p, &o, &e, &bits, &secs)) return 1;
            printf("%-58s %-8s %10.6f %7.4f %7.3fx %8.3f\n", c->config, refine ? "refined" : "plain", e, bits, e / ref,
                   secs);
        }
    }
    qn_layer_file_done(&lf);
    json_decref(root);
    return 0;
}
