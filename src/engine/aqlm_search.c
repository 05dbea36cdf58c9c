/* aqlm_search.c: the search for the codes of one group of one row [AQLM,
   Egiazarian et al. 2024, §3.2 "Phase 1", eq. 4-6]. With every other group of
   the row fixed, the row's loss as a function of the group's unscaled
   reconstruction v = sum_m C_m[b_m] is, up to a constant and the factor s_i^2,
       f(v) = v^T A v - 2 <v, t>
   for a g x g metric A and target t that the caller derives (aqlm_beam.c: A =
   H_JJ for the exact loss, or GPTQ's look-ahead metric). Replacing the code of
   codebook m in a tuple whose other codewords sum to o gives
       f(o + C_m[k]) = f(o) + n_mk - 2 <C_m[k], t - A o>,
   n_mk = C_m[k]^T A C_m[k] the codeword Gram terms under A (a table per group),
   so one step scores all 2^B codewords with one kernel call (aqlm_kernels.c).
   Two paths, each a beam of width `beam` over the codebooks polished by
   coordinate descent: (1) from the current codes, each step replacing one code
   with the others held (the research code's beam, restricted to the group);
   (2) fresh, the residual encoding of additive quantization (Babenko &
   Lempitsky, CVPR 2014), which escapes the local minima of (1). The better tuple
   replaces the current one only if it strictly lowers f. */
#include "engine/aqlm_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Coordinate-descent sweeps over the codebooks of a group at most; a sweep that
   changes nothing ends it earlier. */
#define GROUP_SWEEPS 4

size_t qn_aqlm_scratch_bytes(const qn_aqlm_state *st)
{
    size_t B = (size_t)st->beam, M = (size_t)st->M;
    size_t floats = st->K + 8 * st->g + 2 * B * st->g + 3 * B;
    return floats * sizeof(float) + 2 * B * sizeof(uint32_t) + (2 * B + 3) * M * sizeof(uint16_t);
}

void qn_aqlm_scratch_bind(const qn_aqlm_state *st, void *mem, qn_aqlm_scratch *w)
{
    size_t B = (size_t)st->beam, g = st->g, M = (size_t)st->M;
    float *f = mem;
    w->scores = f; f += st->K;
    w->v = f; f += g;
    w->t = f; f += g;
    w->o = f; f += g;
    w->e = f; f += g;
    w->ho = f; f += g;
    w->v_old = f; f += g;
    w->v_alt = f; f += g;
    w->v_alt2 = f; f += g;
    w->hv[0] = f; f += B * g;
    w->hv[1] = f; f += B * g;
    w->hf[0] = f; f += B;
    w->hf[1] = f; f += B;
    w->top = f; f += B;
    w->top_par = (int32_t *)f;
    w->top_k = (uint32_t *)(w->top_par + B);
    uint16_t *c = (uint16_t *)(w->top_k + B);
    w->hc[0] = c; c += B * M;
    w->hc[1] = c; c += B * M;
    w->cur = c; c += M;
    w->alt = c; c += M;
    w->alt2 = c;
}

/* y = A x for one g x g block. */
static void matvec(size_t g, const float *A, const float *x, float *y)
{
    for (size_t a = 0; a < g; a++) {
        float acc = 0.0f;
        for (size_t b = 0; b < g; b++) acc += A[a * g + b] * x[b];
        y[a] = acc;
    }
}

static float vdot(size_t g, const float *x, const float *y)
{
    float acc = 0.0f;
    for (size_t a = 0; a < g; a++) acc += x[a] * y[a];
    return acc;
}

static float group_f(size_t g, const float *A, const float *v, const float *t, float *tmp)
{
    matvec(g, A, v, tmp);
    return vdot(g, v, tmp) - 2.0f * vdot(g, v, t);
}

/* Coordinate descent over the M codes of one group [eq. 5, each code re-chosen
   with the other codebooks fixed], sweeping until a sweep changes nothing (at
   most GROUP_SWEEPS). codes: (M) in and out; v: (g) their sum, in and out. */
static void descend(const qn_aqlm_state *st, const float *A, const float *n, uint16_t *codes, float *v,
                    qn_aqlm_scratch *w)
{
    const size_t K = st->K, g = st->g;
    int last_change = -1;
    for (int step = 0; step < st->M * GROUP_SWEEPS; step++) {
        int m = step % st->M;
        if (m == last_change || (step >= st->M && last_change < 0)) break;   /* a sweep changed nothing */
        const float *Cm = st->C + (size_t)m * K * g, *CTm = st->CT + (size_t)m * g * K;
        const float *nm = n + (size_t)m * K, *c_old = Cm + (size_t)codes[m] * g;
        for (size_t a = 0; a < g; a++) w->o[a] = v[a] - c_old[a];
        matvec(g, A, w->o, w->ho);
        for (size_t a = 0; a < g; a++) w->e[a] = w->t[a] - w->ho[a];
        float best;
        uint32_t k = qn_aqlm_argmin(st->simd, CTm, nm, K, g, w->e, &best);
        float keep = nm[codes[m]] - 2.0f * vdot(g, c_old, w->e);
        if (k != codes[m] && best < keep) {
            codes[m] = (uint16_t)k;
            const float *c = Cm + (size_t)k * g;
            for (size_t a = 0; a < g; a++) v[a] = w->o[a] + c[a];
            last_change = m;
        }
    }
}

/* Keeps the `cap` smallest (value, parent, k) seen, sorted increasing; ties keep
   the earlier candidate, so the order of the scan decides (deterministic). */
static void top_insert(qn_aqlm_scratch *w, int *cnt, int cap, float val, int32_t par, uint32_t k)
{
    int c = *cnt;
    if (c == cap && !(val < w->top[c - 1])) return;
    int at = c < cap ? c : cap - 1;
    while (at > 0 && val < w->top[at - 1]) {
        w->top[at] = w->top[at - 1];
        w->top_par[at] = w->top_par[at - 1];
        w->top_k[at] = w->top_k[at - 1];
        at--;
    }
    w->top[at] = val;
    w->top_par[at] = par;
    w->top_k[at] = k;
    if (c < cap) *cnt = c + 1;
}

/* Beam search over the codebooks of one group [AQLM §3.2]: hypotheses are code
   tuples; step m sets codebook m's code of every hypothesis to each of the K
   codewords and keeps the `beam` best tuples by f. fresh: hypotheses start
   empty and gain one codeword per step (the residual encoding of additive
   quantization, Babenko & Lempitsky 2014); otherwise they start from codes/v and
   step m replaces a code with the others held. codes, v: the best tuple out. */
static void beam(const qn_aqlm_state *st, const float *A, const float *n, int fresh, uint16_t *codes, float *v,
                 qn_aqlm_scratch *w)
{
    const size_t K = st->K, g = st->g, M = (size_t)st->M;
    const int B = st->beam;
    int nh = 1, side = 0;
    if (fresh) {
        memset(w->hc[0], 0, M * sizeof *codes);
        memset(w->hv[0], 0, g * sizeof *v);
        w->hf[0][0] = 0.0f;
    } else {
        memcpy(w->hc[0], codes, M * sizeof *codes);
        memcpy(w->hv[0], v, g * sizeof *v);
        w->hf[0][0] = group_f(g, A, v, w->t, w->ho);
    }
    for (size_t m = 0; m < M; m++) {
        const float *Cm = st->C + m * K * g, *CTm = st->CT + m * g * K, *nm = n + m * K;
        int cnt = 0;
        for (int h = 0; h < nh; h++) {
            const float *hv = w->hv[side] + (size_t)h * g;
            const float *c_old = Cm + (size_t)w->hc[side][(size_t)h * M + m] * g;
            for (size_t a = 0; a < g; a++) w->o[a] = fresh ? hv[a] : hv[a] - c_old[a];
            matvec(g, A, w->o, w->ho);
            float fo = vdot(g, w->o, w->ho) - 2.0f * vdot(g, w->o, w->t);
            for (size_t a = 0; a < g; a++) w->e[a] = w->t[a] - w->ho[a];
            if (B == 1) {
                float best;
                uint32_t k = qn_aqlm_argmin(st->simd, CTm, nm, K, g, w->e, &best);
                top_insert(w, &cnt, 1, fo + best, h, k);
                continue;
            }
            qn_aqlm_scores(st->simd, CTm, nm, K, g, w->e, w->scores);
            float worst = cnt < B ? INFINITY : w->top[cnt - 1], val;   /* what a candidate must beat */
            for (size_t k = qn_aqlm_next_below(st->simd, w->scores, K, 0, fo, 1.0f, worst, &val); k < K;
                 k = qn_aqlm_next_below(st->simd, w->scores, K, k + 1, fo, 1.0f, worst, &val)) {
                top_insert(w, &cnt, B, val, h, (uint32_t)k);
                worst = cnt < B ? INFINITY : w->top[cnt - 1];
            }
        }
        for (int q = 0; q < cnt; q++) {                  /* the next beam */
            int h = w->top_par[q];
            const uint16_t *pc = w->hc[side] + (size_t)h * M;
            uint16_t *nc = w->hc[!side] + (size_t)q * M;
            memcpy(nc, pc, M * sizeof *nc);
            nc[m] = (uint16_t)w->top_k[q];
            const float *hv = w->hv[side] + (size_t)h * g, *c_old = Cm + (size_t)pc[m] * g;
            const float *c_new = Cm + (size_t)w->top_k[q] * g;
            float *nv = w->hv[!side] + (size_t)q * g;
            for (size_t a = 0; a < g; a++) nv[a] = (fresh ? hv[a] : hv[a] - c_old[a]) + c_new[a];
            w->hf[!side][q] = w->top[q];
        }
        nh = cnt;
        side = !side;
    }
    memcpy(codes, w->hc[side], M * sizeof *codes);      /* hypotheses are sorted: 0 is the best */
    memcpy(v, w->hv[side], g * sizeof *v);
}

void qn_aqlm_search_group(const qn_aqlm_state *st, const float *A, const float *n, uint16_t *cur,
                          qn_aqlm_scratch *w)
{
    const size_t g = st->g, M = (size_t)st->M;
    if (M == 1) {                                        /* one codebook: a single argmin is exact */
        descend(st, A, n, cur, w->v, w);
        return;
    }
    const float f_old = group_f(g, A, w->v, w->t, w->ho);
    memcpy(w->alt, cur, M * sizeof *cur);
    memcpy(w->v_alt, w->v, g * sizeof *w->v);
    if (st->beam > 1) beam(st, A, n, 0, w->alt, w->v_alt, w);
    descend(st, A, n, w->alt, w->v_alt, w);
    float f1 = group_f(g, A, w->v_alt, w->t, w->ho);
    uint16_t *c2 = w->alt2;
    beam(st, A, n, 1, c2, w->v_alt2, w);
    descend(st, A, n, c2, w->v_alt2, w);
    float f2 = group_f(g, A, w->v_alt2, w->t, w->ho);
    const uint16_t *bc = f2 < f1 ? c2 : w->alt;
    const float *bv = f2 < f1 ? w->v_alt2 : w->v_alt, bf = f2 < f1 ? f2 : f1;
    if (bf < f_old) {
        memcpy(cur, bc, M * sizeof *cur);
        memcpy(w->v, bv, g * sizeof *w->v);
    }
}
