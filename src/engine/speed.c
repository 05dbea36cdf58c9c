/* speed.c: prompt and decode throughput (see speed.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine/speed.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/forward.h"

/* VmHWM of /proc/self/status in bytes; 0 when unreadable. */
static double peak_rss_bytes(void)
{
    char line[256];
    double kib = 0;
    FILE *fp = fopen("/proc/self/status", "r");
    if (!fp) return 0;
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, "VmHWM:", 6) == 0) { kib = atof(line + 6); break; }
    fclose(fp);
    return kib * 1024.0;
}

/* Restarts the peak (VmHWM) at the current resident set (Linux >= 4.0), so the
   peak read afterwards leaves out what opening the model took transiently. */
static bool reset_peak_rss(void)
{
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    if (!fp) return false;
    bool ok = fputs("5", fp) >= 0;
    return fclose(fp) == 0 && ok;
}

double qn_memcpy_bandwidth(void)
{
    size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) { free(a); free(b); return 0; }
    memset(a, 1, n);
    memset(b, 2, n);
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = qn_now();
        memcpy(b, a, n);
        t[r] = qn_now() - t0;
        a[r] = b[n - 1 - (size_t)r];  /* keeps the copy observable */
    }
    free(a);
    free(b);
    return 2.0 * (double)n / qn_median(t, 5);
}

static double linear_bytes(const qn_linear *w)
{
    return (double)w->d_out * (double)w->d_in * qn_format_info(w->fmt)->bits_per_weight(w) / 8.0;
}

/* Every linear of every layer, the norms, the head and one embedding row. */
static double weight_bytes_per_token(const qn_model *m)
{
    const qn_config *c = &m->cfg;
    double total = linear_bytes(&m->lm_head) + 2.0 * c->dim * 4;
    for (int l = 0; l < c->n_layers; l++) {
        const qn_layer *w = &m->layers[l];
        const qn_linear *lins[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down };
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) total += linear_bytes(lins[i]);
        total += 2.0 * c->dim * 4;
    }
    return total;
}

qn_status qn_speed_measure(const qn_model *m, size_t p, size_t n, size_t reps, qn_speed *out, qn_err *err)
{
    memset(out, 0, sizeof *out);
    if (reps == 0) reps = 1;
    size_t ctx = p > n ? p : n;
    if (ctx == 0) return qn_err_set(err, QN_ERR_ARG, "nothing to measure: 0 prompt and 0 decode tokens");
    qn_state *st = NULL;
    qn_status s = qn_state_create(&st, m, ctx, p ? p : 1, err);
    if (s) return s;
    int32_t *tokens = malloc(ctx * sizeof *tokens);
    double *pp_s = calloc(reps, sizeof *pp_s), *tg_s = calloc(reps, sizeof *tg_s);
    if (!tokens || !pp_s || !tg_s) { s = qn_err_set(err, QN_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < ctx; i++) tokens[i] = (int32_t)((i * 7919 + 13) % (size_t)m->cfg.vocab_size);
    const float *logits;
    bool peak_ok = reset_peak_rss();
    for (size_t r = 0; r <= reps && !s; r++) {   /* r == 0 warms caches and thread pools */
        double t0 = qn_now();
        if (p) s = qn_forward(m, st, tokens, p, 0, false, &logits, err);
        double t1 = qn_now();
        for (size_t i = 0; i < n && !s; i++) s = qn_forward(m, st, &tokens[i], 1, i, false, &logits, err);
        double t2 = qn_now();
        if (r) { pp_s[r - 1] = t1 - t0; tg_s[r - 1] = t2 - t1; }
    }
    if (s) goto done;
    out->pp_tokens = p;
    out->tg_tokens = n;
    out->reps = reps;
    out->pp_tps = p ? (double)p / qn_median(pp_s, reps) : 0;
    out->tg_tps = n ? (double)n / qn_median(tg_s, reps) : 0;
    out->peak_rss = peak_ok ? peak_rss_bytes() : 0;
    out->weight_bytes_per_token = weight_bytes_per_token(m);
    out->bandwidth = qn_memcpy_bandwidth();
    out->bandwidth_fraction = out->bandwidth > 0 ? out->tg_tps * out->weight_bytes_per_token / out->bandwidth : 0;
done:
    free(tokens);
    free(pp_s);
    free(tg_s);
    qn_state_free(st);
    return s;
}
