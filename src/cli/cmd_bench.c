/* cmd_bench.c: `quench bench MODEL [-p 512] [-n 128] [-r 5] [--threads T] [--json]`:
   llama-bench's pp/tg measurements (prompt of p tokens in one batch; n decode
   steps of one token from an empty cache), medians of r repetitions, with the
   fraction of the memory-bandwidth bound each reaches. The bandwidth is
   measured in the same run by copying a buffer much larger than the caches. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/forward.h"

static const char k_usage[] = "quench bench MODEL [-p PROMPT_TOKENS] [-n GEN_TOKENS] [-r REPS] [--threads T] [--json]";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Read+write bandwidth of memcpy over 256 MiB, bytes per second (median of 5). */
static double memcpy_bandwidth(void)
{
    size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) { free(a); free(b); return 0; }
    memset(a, 1, n);
    memset(b, 2, n);
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = qn_cli_now();
        memcpy(b, a, n);
        t[r] = qn_cli_now() - t0;
        a[r] = b[n - 1 - (size_t)r];  /* keep the copy observable */
    }
    free(a);
    free(b);
    return 2.0 * (double)n / median(t, 5);
}

/* Bytes of weights read per decoded token: every linear, plus one embedding row. */
static double weight_bytes_per_token(const qn_model *m)
{
    const qn_config *c = &m->cfg;
    double per_layer = 0;
    const qn_layer *l = &m->layers[0];
    const qn_linear *lins[] = { &l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down };
    for (size_t i = 0; i < 7; i++)
        per_layer += (double)lins[i]->d_out * (double)lins[i]->d_in * qn_format_info(lins[i]->fmt)->bits_per_weight(lins[i]) / 8;
    per_layer += 2.0 * c->dim * 4;
    return per_layer * c->n_layers + (double)m->lm_head.d_out * m->lm_head.d_in *
           qn_format_info(m->lm_head.fmt)->bits_per_weight(&m->lm_head) / 8 + c->dim * 8.0;
}

static qn_status run_reps(const qn_model *m, size_t p, size_t n, size_t reps, double *pp_s, double *tg_s, qn_err *err)
{
    size_t ctx = p > n ? p : n;
    qn_state *st = NULL;
    qn_status s = qn_state_create(&st, m, ctx, p ? p : 1, err);
    if (s) return s;
    int32_t *tokens = malloc(ctx * sizeof *tokens);
    if (!tokens) { qn_state_free(st); return qn_err_set(err, QN_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < ctx; i++) tokens[i] = (int32_t)((i * 7919 + 13) % (size_t)m->cfg.vocab_size);
    const float *logits;
    for (size_t r = 0; r <= reps && !s; r++) {   /* r == 0 warms up */
        double t0 = qn_cli_now();
        if (p) s = qn_forward(m, st, tokens, p, 0, false, &logits, err);
        double t1 = qn_cli_now();
        for (size_t i = 0; i < n && !s; i++) s = qn_forward(m, st, &tokens[i], 1, i, false, &logits, err);
        double t2 = qn_cli_now();
        if (r) { pp_s[r - 1] = t1 - t0; tg_s[r - 1] = t2 - t1; }
    }
    free(tokens);
    qn_state_free(st);
    return s;
}

int qn_cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "threads", required_argument, 0, 'T' }, { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    size_t p = 512, n = 128, reps = 5, threads = 0;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "p:n:r:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': if (!qn_arg_size("bench", "-p", optarg, 0, 1 << 20, &p)) return 2; break;
        case 'n': if (!qn_arg_size("bench", "-n", optarg, 0, 1 << 20, &n)) return 2; break;
        case 'r': if (!qn_arg_size("bench", "-r", optarg, 1, 1000, &reps)) return 2; break;
        case 'T': if (!qn_arg_size("bench", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'j': json = true; break;
        case 'h': printf("usage: %s\n", k_usage); return 0;
        default: return qn_arg_usage_error("bench", k_usage, "bad option");
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("bench", k_usage, "expected one MODEL");
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    qn_model *m = qn_cli_open_model("bench", argv[optind], NULL, (int)threads, &prog);
    if (!m) return 1;
    if (p > (size_t)m->cfg.max_seq_len || n > (size_t)m->cfg.max_seq_len) {
        fprintf(stderr, "quench bench: -p/-n larger than the model's context (%d)\n", m->cfg.max_seq_len);
        qn_model_close(m);
        return 2;
    }
    double pp_s[1000], tg_s[1000];
    qn_err err = {0};
    int rc = 0;
    if (run_reps(m, p, n, reps, pp_s, tg_s, &err)) {
        rc = qn_cli_fail("bench", &err);
    } else {
        double pp = p ? (double)p / median(pp_s, reps) : 0, tg = n ? (double)n / median(tg_s, reps) : 0;
        double bw = memcpy_bandwidth(), wb = weight_bytes_per_token(m);
        double frac = bw > 0 ? tg * wb / bw : 0;
        printf("model %s, threads %d\n", argv[optind], qn_kernels_threads());
        printf("pp%zu: %.1f tokens/s   tg%zu: %.1f tokens/s   (median of %zu)\n", p, pp, n, tg, reps);
        printf("weights read per token %.0f bytes; memcpy bandwidth %.2f GB/s; decode reaches %.2f of the bandwidth bound\n",
               wb, bw / 1e9, frac);
        if (json) {
            json_t *o = json_pack("{s:s, s:i, s:I, s:f, s:I, s:f, s:f, s:f, s:f}", "model", argv[optind],
                                  "threads", qn_kernels_threads(), "pp_tokens", (json_int_t)p, "pp_tps", pp,
                                  "tg_tokens", (json_int_t)n, "tg_tps", tg, "weight_bytes_per_token", wb,
                                  "bandwidth_gbps", bw / 1e9, "bandwidth_fraction", frac);
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
        }
    }
    qn_model_close(m);
    return rc;
}
