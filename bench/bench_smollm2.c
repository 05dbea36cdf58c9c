/* bench_smollm2.c: `make bench`, SmolLM2-135M part (30 layers, hidden 576,
   FFN 1536, GQA 9/3, vocabulary 49152, tied embeddings; its Q4_1 GGUF
   dequantized to f32 is the original).
   1. The model: prompt (pp) and decode (tg) tokens/s, medians of repetitions
      (engine/speed.h), and the peak resident set during them, first in f32,
      then with the 210 linears of its blocks in each compressed format the
      kernels run (kernel_bench's list: AQLM, SpQR, int). The compressed
      linears are SYNTHETIC (kernels/synth.h: random codes, codebooks and
      statistics at the model's exact shapes, fed through the same
      qn_linear_init and kernels as a loaded folder): this measures speed,
      not accuracy, without a whole-model quantization. The tied
      embedding/head stays f32, as quench's quantizers leave it. Each format
      runs in its own process, its f32 block matrices freed once replaced
      (a compressed folder never holds them), so the peak RSS is that of the
      compressed model; the ratios to f32 are the target (decode of
      aqlm-2x8 and int4 >= the f32 original).
   2. The kernels at the model's four shapes: each format's matvec (1 token)
      and matmul (a prompt's batch) against OpenBLAS sgemv / sgemm on the same
      matrix dequantized to f32, in the same run, caches flushed before each
      call (kernels/kernel_bench.h).
   Both at 1 thread and at quench's default of all cores.
   Arguments (optional): THREADS PP TG REPS (default: 1 and all cores, 128, 32, 5). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared_path.h"
#include "engine/model.h"
#include "engine/speed.h"
#include "kernels/kernel_bench.h"
#include "kernels/linear.h"
#include "kernels/synth.h"

#define MODEL_REL "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
#define N_LINEARS 7   /* per block: q, k, v, o, gate, up, down */
#define KERNEL_REPS 15
#define KERNEL_BATCH 64

typedef struct {
    double pp_tps, tg_tps, peak_rss, bits;   /* bits: stored bits per weight of the block linears */
    int ok;
} model_row;

typedef struct {
    size_t threads, pp, tg, reps;
} bench_args;

/* Frees the loader's f32 copy of a replaced matrix (the GGUF's Q4_1 converted
   on load, kept in m->owned); qn_model_close skips the NULL left behind. The
   caller returns the pages to the system (malloc_trim). */
static void drop_owned(qn_model *m, const float *w)
{
    for (size_t i = 0; i < m->n_owned; i++)
        if (m->owned[i] == w) { free(m->owned[i]); m->owned[i] = NULL; return; }
}

/* Replaces every block linear of m with a synthetic matrix of `format`; the
   synths go into syn (n_layers * N_LINEARS), their linears must be released
   with qn_linear_done by the caller. Returns the stored bits per weight, < 0 on failure. */
static double compress_synthetic(qn_model *m, const char *format, qn_synth **syn)
{
    double bits = 0, weights = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        qn_layer *L = &m->layers[l];
        qn_linear *lins[N_LINEARS] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int k = 0; k < N_LINEARS; k++) {
            qn_linear *lin = lins[k];
            qn_synth_opts so;
            qn_err err = {0};
            qn_synth **s = &syn[l * N_LINEARS + k];
            if (qn_kbench_synth_opts(format, lin->d_out, lin->d_in, 1000u + (uint64_t)(l * N_LINEARS + k), &so, &err) ||
                qn_synth_create(s, &so, &err)) {
                fprintf(stderr, "bench: %s: %s\n", format, err.msg);
                return -1;
            }
            qn_linear q;
            char name[64];
            snprintf(name, sizeof name, "blk.%d linear %d (%s)", l, k, format);
            if (qn_linear_init(&q, so.fmt, lin->d_out, lin->d_in, qn_synth_packed(*s), name, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                return -1;
            }
            if (lin->fmt == QN_FMT_F32) drop_owned(m, lin->w);
            *lin = q;
            double n = (double)q.d_out * (double)q.d_in;
            bits += n * qn_format_info(q.fmt)->bits_per_weight(&q);
            weights += n;
        }
    }
    return bits / weights;
}

/* One model row, measured in this (child) process: f32 when format is NULL. */
static model_row measure_model(const char *format, const bench_args *a)
{
    model_row row = { 0 };
    qn_model *m = NULL;
    qn_err err = {0};
    qn_kernels_set_threads((int)a->threads);
    if (qn_model_open(&m, shared_path(MODEL_REL), NULL, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return row;
    }
    size_t n_syn = (size_t)m->cfg.n_layers * N_LINEARS;
    qn_synth **syn = calloc(n_syn, sizeof *syn);
    row.bits = 32;
    if (format) row.bits = syn ? compress_synthetic(m, format, syn) : -1;
    if (row.bits > 0) {
        qn_model_extend_ctx(m, a->pp > a->tg ? a->pp : a->tg);
        malloc_trim(0);   /* the dropped f32 matrices lie inside the heap */
        qn_speed sp;
        if (qn_speed_measure(m, a->pp, a->tg, a->reps, &sp, &err)) {
            fprintf(stderr, "bench: %s: %s\n", format ? format : "f32", err.msg);
        } else {
            row = (model_row){ .pp_tps = sp.pp_tps, .tg_tps = sp.tg_tps, .peak_rss = sp.peak_rss,
                               .bits = row.bits, .ok = 1 };
        }
    }
    for (int l = 0; format && syn && l < m->cfg.n_layers; l++) {
        qn_layer *L = &m->layers[l];
        qn_linear *lins[N_LINEARS] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int k = 0; k < N_LINEARS; k++) qn_linear_done(lins[k]);
    }
    for (size_t i = 0; syn && i < n_syn; i++) qn_synth_free(syn[i]);
    free(syn);
    qn_model_close(m);
    return row;
}

/* measure_model in a fresh process, so each row's peak RSS is its own and
   no thread pool crosses a fork. */
static model_row measure_in_child(const char *format, const bench_args *a)
{
    model_row row = { 0 };
    int fd[2];
    fflush(stdout);
    if (pipe(fd)) return row;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        row = measure_model(format, a);
        ssize_t w = write(fd[1], &row, sizeof row);
        _exit(w == (ssize_t)sizeof row ? 0 : 1);
    }
    close(fd[1]);
    if (pid > 0) {
        if (read(fd[0], &row, sizeof row) != (ssize_t)sizeof row) row.ok = 0;
        waitpid(pid, NULL, 0);
    }
    close(fd[0]);
    return row;
}

static void print_row(const char *name, const model_row *r, double f32_pp, double f32_tg)
{
    bool targeted = strcmp(name, "aqlm-2x8") == 0 || strcmp(name, "int4") == 0;
    printf("%-10s %6.2f %10.1f %10.2f %8.2f %8.2f %9.0f  %s\n", name, r->bits, r->pp_tps, r->tg_tps,
           r->pp_tps / f32_pp, r->tg_tps / f32_tg, r->peak_rss / 1048576.0,
           targeted ? (r->tg_tps >= f32_tg ? "target tg/f32 >= 1: met" : "target tg/f32 >= 1: MISSED") : "");
}

/* f32 runs first and last (the load of a shared machine drifts): the ratios
   are to the mean of the two, both printed. */
static int bench_models(const bench_args *a)
{
    size_t n_fmt = 0;
    while (qn_kbench_format_name(n_fmt)) n_fmt++;
    model_row *rows = calloc(n_fmt, sizeof *rows);
    if (!rows) return 1;
    printf("SmolLM2-135M, %zu thread%s, pp%zu / tg%zu, median of %zu; block linears synthetic in each format "
           "(speed, not accuracy)\n", a->threads, a->threads == 1 ? "" : "s", a->pp, a->tg, a->reps);
    fflush(stdout);
    model_row f0 = measure_in_child(NULL, a);
    for (size_t i = 0; i < n_fmt; i++) rows[i] = measure_in_child(qn_kbench_format_name(i), a);
    model_row f1 = measure_in_child(NULL, a);
    int rc = !f0.ok || !f1.ok;
    double pp = (f0.pp_tps + f1.pp_tps) / 2, tg = (f0.tg_tps + f1.tg_tps) / 2;
    printf("%-10s %6s %10s %10s %8s %8s %9s\n", "format", "bits", "pp t/s", "tg t/s", "pp/f32", "tg/f32",
           "peak MiB");
    if (f0.ok) print_row("f32", &f0, pp, tg);
    for (size_t i = 0; i < n_fmt; i++) {
        if (rows[i].ok) print_row(qn_kbench_format_name(i), &rows[i], pp, tg);
        else rc = 1;
    }
    if (f1.ok) print_row("f32", &f1, pp, tg);
    printf("(ratios to the mean of the two f32 runs; bits: stored bits per weight of the block linears; the f32\n"
           " tied embedding/head, 28.3M weights, is in every row; peak MiB: peak resident set during pp and tg,\n"
           " with the model loaded and the GGUF file's mapped pages)\n\n");
    free(rows);
    return rc;
}

/* One kernel against BLAS in a fresh process (see measure_in_child). */
static int kernel_in_child(const qn_kbench_opts *o, qn_kbench_result *r)
{
    int fd[2], ok = 0;
    fflush(stdout);
    if (pipe(fd)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        qn_err err = {0};
        int bad = qn_kbench_run(o, r, &err) != QN_OK;
        if (bad) fprintf(stderr, "bench: %s\n", err.msg);
        ssize_t w = bad ? 0 : write(fd[1], r, sizeof *r);
        _exit(w == (ssize_t)sizeof *r ? 0 : 1);
    }
    close(fd[1]);
    if (pid > 0) {
        ok = read(fd[0], r, sizeof *r) == (ssize_t)sizeof *r;
        waitpid(pid, NULL, 0);
    }
    close(fd[0]);
    return !ok;
}

#define N_SHAPES 4
#define MAX_FORMATS 16

/* One table of speedups, tg/pp per shape: medians (which = 0) or fastest repetitions (1). */
static void print_speedups(const char *title, double sp[][N_SHAPES][2][2], size_t n_fmt, int which)
{
    static const size_t shapes[N_SHAPES][2] = { { 576, 576 }, { 192, 576 }, { 1536, 576 }, { 576, 1536 } };
    printf("%s\n%-10s", title, "format");
    for (size_t s = 0; s < N_SHAPES; s++) {
        char h[32];
        snprintf(h, sizeof h, "%zux%zu tg/pp", shapes[s][0], shapes[s][1]);
        printf(" %17s", h);
    }
    printf("\n");
    for (size_t f = 0; f < n_fmt; f++) {
        printf("%-10s", qn_kbench_format_name(f));
        for (size_t s = 0; s < N_SHAPES; s++) printf("      %5.2fx/%5.2fx", sp[f][s][0][which], sp[f][s][1][which]);
        printf("\n");
    }
}

static int bench_kernels(const bench_args *a)
{
    static const size_t shapes[N_SHAPES][2] = { { 576, 576 }, { 192, 576 }, { 1536, 576 }, { 576, 1536 } };
    static double sp[MAX_FORMATS][N_SHAPES][2][2];   /* [format][shape][tg, pp][median, fastest] */
    memset(sp, 0, sizeof sp);
    size_t n_fmt = 0;
    int rc = 0;
    for (; qn_kbench_format_name(n_fmt) && n_fmt < MAX_FORMATS; n_fmt++)
        for (size_t s = 0; s < N_SHAPES; s++)
            for (int b = 0; b < 2; b++) {
                qn_kbench_opts o = { .format = qn_kbench_format_name(n_fmt), .rows = shapes[s][0],
                                     .cols = shapes[s][1], .batch = b ? KERNEL_BATCH : 1, .reps = KERNEL_REPS,
                                     .threads = (int)a->threads, .seed = 1 + n_fmt };
                qn_kbench_result r;
                if (kernel_in_child(&o, &r)) { rc = 1; continue; }
                sp[n_fmt][s][b][0] = r.speedup;
                sp[n_fmt][s][b][1] = r.blas_min_s / r.ours_min_s;
            }
    char title[256];
    snprintf(title, sizeof title,
             "SmolLM2 shapes: speedup of each compressed kernel over OpenBLAS on the same matrix in f32\n"
             "(%zu thread%s, median of %d, caches flushed; tg: 1 token vs sgemv; pp: %d tokens vs sgemm)",
             a->threads, a->threads == 1 ? "" : "s", KERNEL_REPS, KERNEL_BATCH);
    print_speedups(title, sp, n_fmt, 0);
    print_speedups("the same, fastest repetition against fastest (what each side does when not preempted:\n"
                   " on a loaded machine a call of milliseconds, pp, is often cut by the scheduler)", sp, n_fmt, 1);
    printf("(> 1: faster than OpenBLAS on the f32 matrix)\n");
    return rc;
}

static size_t arg_or(int argc, char **argv, int i, size_t dflt)
{
    return argc > i && atol(argv[i]) > 0 ? (size_t)atol(argv[i]) : dflt;
}

int main(int argc, char **argv)
{
    if (access(shared_path(MODEL_REL), R_OK) != 0) {
        fprintf(stderr, "bench: %s: not readable; SmolLM2 part skipped\n", shared_path(MODEL_REL));
        return 1;
    }
    /* 1 thread, then quench's default (all cores), unless THREADS is given */
    size_t threads[2] = { 1, (size_t)sysconf(_SC_NPROCESSORS_ONLN) }, n_threads = threads[1] > 1 ? 2 : 1;
    if (argc > 1 && atol(argv[1]) > 0) { threads[0] = (size_t)atol(argv[1]); n_threads = 1; }
    int rc = 0;
    for (size_t t = 0; t < n_threads; t++) {
        bench_args a = { threads[t], arg_or(argc, argv, 2, 128), arg_or(argc, argv, 3, 32), arg_or(argc, argv, 4, 5) };
        rc |= bench_models(&a);
        rc |= bench_kernels(&a);
        printf("\n");
    }
    return rc;
}
