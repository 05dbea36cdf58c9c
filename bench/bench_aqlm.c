/* bench_aqlm.c: `make bench`, AQLM part: every AQLM row of
   reference/layer-reference.json (the research code on the shared synthetic
   layers, 2 cores) run by qn_aqlm_quantize with the same configuration, median
   wall time of 3, printed with our error against theirs and our time as a
   fraction of theirs (the bar: error <= theirs, time <= 1/10 of theirs). Then
   layers synthesized the same way (W random, H = X^T X of random correlated X)
   at larger sizes, to show how time scales; they have no reference figures.
   Arguments (optional): OUTxIN [M B g beam] runs one synthesized layer only. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "shared_path.h"
#include "engine/aqlm.h"
#include "engine/dtype.h"
#include "engine/safetensors.h"

#define REPS 3

typedef struct {
    size_t d_out, d_in;
    float *W, *H;
} layer;

static int load_layer(const char *path, layer *L)
{
    qn_st_file *f = NULL;
    qn_err err = {0};
    if (qn_st_open(&f, path, &err) != QN_OK) { fprintf(stderr, "bench: %s\n", err.msg); return -1; }
    const qn_st_tensor *w = qn_st_find(f, "weight"), *h = qn_st_find(f, "hessian");
    if (!w || !h || w->ndim != 2 || h->ndim != 2) {
        fprintf(stderr, "bench: %s: no 2-d 'weight' and 'hessian'\n", path);
        qn_st_close(f);
        return -1;
    }
    L->d_out = (size_t)w->shape[0];
    L->d_in = (size_t)w->shape[1];
    L->W = malloc(L->d_out * L->d_in * sizeof *L->W);
    L->H = malloc(L->d_in * L->d_in * sizeof *L->H);
    qn_dtype_to_f32(w->dtype, w->data, L->W, L->d_out * L->d_in);
    qn_dtype_to_f32(h->dtype, h->data, L->H, L->d_in * L->d_in);
    qn_st_close(f);
    return 0;
}

static double gauss(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double v = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* W ~ N(0, 1/d_in); X = Z (I + 0.3 R / sqrt(d_in)) diag(exp(0.5 N(0,1))), Z and R
   Gaussian, 4 d_in samples; H = X^T X. Like the shared layers: log-normal
   feature scales, weak correlations. */
static void synth_layer(size_t d_out, size_t d_in, uint64_t seed, layer *L)
{
    size_t n = 4 * d_in;
    uint64_t s = seed;
    L->d_out = d_out;
    L->d_in = d_in;
    L->W = malloc(d_out * d_in * sizeof *L->W);
    L->H = malloc(d_in * d_in * sizeof *L->H);
    float *Z = malloc(n * d_in * sizeof *Z), *Mx = malloc(d_in * d_in * sizeof *Mx), *X = malloc(n * d_in * sizeof *X);
    for (size_t e = 0; e < d_out * d_in; e++) L->W[e] = (float)(gauss(&s) / sqrt((double)d_in));
    for (size_t e = 0; e < n * d_in; e++) Z[e] = (float)gauss(&s);
    for (size_t a = 0; a < d_in; a++)
        for (size_t b = 0; b < d_in; b++) Mx[a * d_in + b] = (float)((a == b) + 0.3 * gauss(&s) / sqrt((double)d_in));
    for (size_t b = 0; b < d_in; b++) {
        float sc = (float)exp(0.5 * gauss(&s));
        for (size_t a = 0; a < d_in; a++) Mx[a * d_in + b] *= sc;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d_in, (int)d_in, 1.0f, Z, (int)d_in, Mx,
                (int)d_in, 0.0f, X, (int)d_in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d_in, (int)d_in, (int)n, 1.0f, X, (int)d_in, X,
                (int)d_in, 0.0f, L->H, (int)d_in);
    free(Z);
    free(Mx);
    free(X);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of reps runs; error, bits and rounds of the last one. */
static int run(const layer *L, const qn_aqlm_opts *o, int reps, double *err_out, double *bits, double *secs,
               int *rounds)
{
    double t[REPS];
    qn_layer_problem p = { .name = "bench", .d_out = L->d_out, .d_in = L->d_in, .W = L->W, .H = L->H };
    for (int r = 0; r < reps; r++) {
        qn_aqlm_result res = {0};
        qn_err err = {0};
        if (qn_aqlm_quantize(&p, o, (qn_event_sink){0}, NULL, &res, &err) != QN_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return -1;
        }
        t[r] = res.layer.seconds;
        *err_out = res.layer.relative_error;
        *bits = res.layer.bits;
        *rounds = res.n_rounds;
        qn_aqlm_result_done(&res);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *secs = t[reps / 2];
    return 0;
}

/* The 1-minute load average: the timings mean little when others hold the cores. */
static double load_average(void)
{
    double l = -1.0;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &l) != 1) l = -1.0;
        fclose(fp);
    }
    return l;
}

static int reference_rows(void)
{
    json_t *ref = json_load_file(shared_path("reference/layer-reference.json"), 0, NULL);
    if (!ref) { fprintf(stderr, "bench: cannot read reference/layer-reference.json\n"); return 1; }
    const char *wait = getenv("OMP_WAIT_POLICY");
    printf("AQLM on the shared layers, median of %d (research code: PyTorch, 2 cores); load average %.2f, "
           "OMP_WAIT_POLICY=%s\n", REPS, load_average(), wait ? wait : "(unset: libgomp spins)");
    printf("%-15s %-15s %9s %9s %6s %8s %8s %7s %7s %6s\n", "layer", "config", "error", "theirs", "bits",
           "seconds", "theirs", "t/ref", "e/ref", "rounds");
    int rc = 0;
    json_t *rows = json_object_get(ref, "results"), *row;
    size_t idx;
    json_array_foreach(rows, idx, row) {
        if (strcmp(json_string_value(json_object_get(row, "method")), "aqlm")) continue;
        const char *lname = json_string_value(json_object_get(row, "layer"));
        const char *cfg = json_string_value(json_object_get(row, "config"));
        qn_aqlm_opts o = qn_aqlm_opts_default();
        if (sscanf(cfg, "%dx%d g%zu beam %d", &o.M, &o.B, &o.g, &o.beam) != 4) continue;
        char rel[256];
        snprintf(rel, sizeof rel, "layers/%s.safetensors", lname);
        layer L;
        if (load_layer(shared_path(rel), &L)) { rc = 1; continue; }
        double e, bits, secs;
        int rounds;
        double their_e = json_number_value(json_object_get(row, "relative_error"));
        double their_t = json_number_value(json_object_get(row, "wall_s"));
        if (run(&L, &o, REPS, &e, &bits, &secs, &rounds) == 0)
            printf("%-15s %-15s %9.5f %9.4f %6.2f %8.3f %8.1f %7.3f %7.3f %6d\n", lname, cfg, e, their_e, bits, secs,
                   their_t, secs / their_t, e / their_e, rounds);
        else
            rc = 1;
        free(L.W);
        free(L.H);
    }
    json_decref(ref);
    return rc;
}

static int synth_row(size_t d_out, size_t d_in, const qn_aqlm_opts *o, int reps)
{
    layer L;
    synth_layer(d_out, d_in, 1234 + d_out + d_in, &L);
    double e, bits, secs;
    int rounds;
    int rc = run(&L, o, reps, &e, &bits, &secs, &rounds);
    if (!rc)
        printf("synth %4zux%-5zu %dx%d g%zu beam %d %9.5f %6.2f %8.3f %6d\n", d_out, d_in, o->M, o->B, o->g,
               o->beam, e, bits, secs, rounds);
    free(L.W);
    free(L.H);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        size_t d_out, d_in;
        qn_aqlm_opts o = qn_aqlm_opts_default();
        layer L = {0};
        if (strstr(argv[1], ".safetensors")) {
            if (load_layer(argv[1], &L)) return 1;
        } else if (sscanf(argv[1], "%zux%zu", &d_out, &d_in) != 2) {
            fprintf(stderr, "usage: bench_aqlm [OUTxIN|layer.safetensors [M B g beam [kmeans cg tol]]]\n");
            return 2;
        }
        if (argc >= 6) {
            o.M = atoi(argv[2]);
            o.B = atoi(argv[3]);
            o.g = (size_t)atoi(argv[4]);
            o.beam = atoi(argv[5]);
        }
        if (argc >= 7) o.kmeans_iters = atoi(argv[6]);
        if (argc >= 8) o.cg_iters = atoi(argv[7]);
        if (argc >= 9) o.tol = atof(argv[8]);
        if (!L.W) return synth_row(d_out, d_in, &o, 1);
        double e, bits, secs;
        int rounds;
        if (run(&L, &o, 1, &e, &bits, &secs, &rounds)) return 1;
        printf("%s %dx%d g%zu beam %d %9.5f %6.2f %8.3f %6d\n", argv[1], o.M, o.B, o.g, o.beam, e, bits, secs, rounds);
        return 0;
    }
    int rc = reference_rows();
    printf("\nsynthesized layers (no reference; time should grow about as d_out * d_in^2); load average %.2f\n",
           load_average());
    qn_aqlm_opts o = qn_aqlm_opts_default();
    rc |= synth_row(512, 512, &o, 1);
    rc |= synth_row(1024, 1024, &o, 1);
    rc |= synth_row(4096, 1024, &o, 1);
    rc |= synth_row(2048, 2048, &o, 1);
    return rc;
}
