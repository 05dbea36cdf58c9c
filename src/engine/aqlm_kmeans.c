/* aqlm_kmeans.c: the initialisation of AQLM [Egiazarian et al. 2024, §3.2;
   research code init_aq_kmeans and fit_kmeans]: each row is divided by its norm
   (the initial scale s_i = ||W_i|| + eps), the rows are cut into groups of g, and
   M codebooks are fitted one after the other by Lloyd's k-means on the residual
   left by the previous ones (residual vector quantization). Differences from
   the research code, none of which changes what Lloyd converges to: initial
   centroids from k-means++ on a sample (it draws random groups); an empty
   cluster moves onto the point worst served (it stays put there); Hamerly's
   bounds skip the points whose centroid cannot change. When there are fewer
   distinct groups than codewords the spare codewords are drawn groups plus
   noise, so every codeword starts somewhere the code search can use.
   Assignments use the scoring kernel, argmin_k ||c_k||^2 - 2 <c_k, x>.
   Not here: faiss, the H weighting (the rounds that follow bring H in; a
   k-means weighted by H's diagonal blocks was tried and ended worse). */
#include "engine/aqlm_impl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The research code's EPS added to row norms before dividing by them. */
#define SCALE_EPS 1e-9f
/* Spare codewords (more codewords than groups) start this many residual RMS
   away from a drawn group. */
#define SPARE_NOISE 0.5
/* k-means++ seeds codebooks up to this size, from a sample of this many points
   per codeword: K^2 g PLUSPLUS_SAMPLE operations, a Lloyd iteration's worth at 256. */
#define PLUSPLUS_MAX_K 1024
#define PLUSPLUS_SAMPLE 64

/* splitmix64: a seeded stream whose state the caller owns (no hidden statics). */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *state)   /* uniform in (0, 1) */
{
    return ((double)(next_u64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double next_gauss(uint64_t *state)  /* Box-Muller */
{
    double u = next_unit(state), v = next_unit(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* k-means++ seeding (Arthur & Vassilvitskii, SODA 2007) on the first S points of
   perm: each next centroid is a point drawn with probability proportional to
   its squared distance to the nearest centroid so far. Returns how many it
   placed (fewer than K when the sample has fewer distinct points). d2: (S). */
static size_t plusplus(const float *X, const uint32_t *perm, size_t S, size_t K, size_t g, uint64_t *rng,
                       float *d2, float *C)
{
    memcpy(C, X + (size_t)perm[next_u64(rng) % S] * g, g * sizeof *C);
    for (size_t q = 0; q < S; q++) d2[q] = INFINITY;
    size_t k = 1;
    for (; k < K; k++) {
        const float *c = C + (k - 1) * g;
        double total = 0.0;
        for (size_t q = 0; q < S; q++) {
            const float *x = X + (size_t)perm[q] * g;
            float dd = 0.0f;
            for (size_t a = 0; a < g; a++) dd += (x[a] - c[a]) * (x[a] - c[a]);
            if (dd < d2[q]) d2[q] = dd;
            total += d2[q];
        }
        if (!(total > 0.0)) break;
        double r = next_unit(rng) * total, acc = 0.0;
        size_t pick = S;
        for (size_t q = 0; q < S; q++) {
            acc += d2[q];
            if (d2[q] > 0.0f) pick = q;
            if (acc > r) break;
        }
        memcpy(C + k * g, X + (size_t)perm[pick] * g, g * sizeof *C);
    }
    return k;
}

/* Initial centroids. With more points than codewords (K <= PLUSPLUS_MAX_K):
   k-means++ on a random sample of at most PLUSPLUS_SAMPLE * K points, so
   duplicate points never take two codewords; otherwise distinct random points.
   Codewords left over (fewer distinct points than K) are drawn points plus
   Gaussian noise. X: (N, g); C: (K, g); perm, d2: (N) scratch. */
static void seed_centroids(const float *X, size_t N, size_t K, size_t g, uint64_t *rng, uint32_t *perm,
                           float *d2, float *C)
{
    size_t S = K <= PLUSPLUS_MAX_K && K < N ? PLUSPLUS_SAMPLE * K : K;
    if (S > N) S = N;
    for (size_t q = 0; q < N; q++) perm[q] = (uint32_t)q;
    for (size_t q = 0; q < S; q++) {                     /* the sample: a partial Fisher-Yates shuffle */
        size_t r = q + (size_t)(next_u64(rng) % (N - q));
        uint32_t t = perm[q]; perm[q] = perm[r]; perm[r] = t;
    }
    size_t placed;
    if (K <= PLUSPLUS_MAX_K && K < N) {
        placed = plusplus(X, perm, S, K, g, rng, d2, C);
    } else {
        placed = S;
        for (size_t k = 0; k < S; k++) memcpy(C + k * g, X + (size_t)perm[k] * g, g * sizeof *C);
    }
    if (placed == K) return;
    double ms = 0.0;
    for (size_t q = 0; q < N * g; q++) ms += (double)X[q] * X[q];
    float sigma = (float)(SPARE_NOISE * sqrt(ms / (double)(N * g)));
    for (size_t k = placed; k < K; k++) {
        memcpy(C + k * g, X + (size_t)perm[k % S] * g, g * sizeof *C);
        for (size_t a = 0; a < g; a++) C[k * g + a] += sigma * (float)next_gauss(rng);
    }
}

/* Hamerly's bounds (SDM 2010): for each point an upper bound ub on the distance
   to its centroid and a lower bound lb on the distance to any other; after the
   centroids move by delta_k, ub += delta_label, lb -= max_{k != label} delta_k,
   and a point is re-scanned only when ub > max(lb, sep_label), sep_k half the
   distance from centroid k to its nearest other. Late iterations move few
   centroids far, so most points are skipped; the assignments are Lloyd's. */
typedef struct {
    float *ub, *lb;      /* (N) */
    float *x2;           /* (N) ||x||^2 */
    float *delta;        /* (K) how far each centroid moved */
    float *sep;          /* (K) half the distance to the nearest other centroid, or NULL */
    float *C_old;        /* (K, g) */
} bounds;

/* Bounds are compared with this relative slack so rounding never skips a point
   whose centroid should change. */
#define BOUND_SLACK 1e-5f
/* Computing sep costs K^2 g per iteration: only for codebooks this small. */
#define SEP_MAX_K 1024

/* Assignment step for one point by a full scan: nearest centroid (first on
   ties), argmin_k ||c_k||^2 - 2 <c_k, x>, and both bounds. */
static uint32_t scan_point(qn_simd simd, const float *x, float x2, size_t g, const float *CT, const float *norms,
                           size_t K, float *ub, float *lb)
{
    float b1, b2;
    uint32_t k = qn_aqlm_argmin2(simd, CT, norms, K, g, x, &b1, &b2);
    *ub = x2 + b1 > 0.0f ? sqrtf(x2 + b1) : 0.0f;
    *lb = !isfinite(b2) ? INFINITY : x2 + b2 > 0.0f ? sqrtf(x2 + b2) : 0.0f;
    return k;
}

/* Assignment step over all points, skipping those the bounds settle (first:
   no bounds yet, scan all). *scanned: in, the scans expected (the last
   iteration's), which decides whether threads pay off; out, this iteration's.
   Returns how many points changed centroid. */
static size_t assign(qn_simd simd, const float *X, size_t N, size_t g, const float *C, const float *CT,
                     const float *norms, size_t K, const bounds *bd, int first, size_t *scanned, uint32_t *label)
{
    float d1 = 0.0f, d2 = 0.0f;
    uint32_t far = 0;
    if (!first)
        for (size_t k = 0; k < K; k++) {                 /* the two largest moves */
            if (bd->delta[k] > d1) { d2 = d1; d1 = bd->delta[k]; far = (uint32_t)k; }
            else if (bd->delta[k] > d2) d2 = bd->delta[k];
        }
    size_t changed = 0, scans = 0;
    #pragma omp parallel for schedule(dynamic, 1024) reduction(+ : changed, scans) \
        if (*scanned * K * g > QN_AQLM_PAR_MIN_WORK)
    for (size_t q = 0; q < N; q++) {
        const float *x = X + q * g;
        if (!first) {
            uint32_t a = label[q];
            bd->ub[q] += bd->delta[a];
            bd->lb[q] -= a == far ? d2 : d1;
            float sep = bd->sep ? bd->sep[a] : 0.0f, z = (bd->lb[q] > sep ? bd->lb[q] : sep) * (1.0f - BOUND_SLACK);
            if (bd->ub[q] <= z) continue;
            float dd = 0.0f;
            for (size_t c = 0; c < g; c++) {
                float t = x[c] - C[(size_t)a * g + c];
                dd += t * t;
            }
            bd->ub[q] = sqrtf(dd) * (1.0f + BOUND_SLACK);
            if (bd->ub[q] <= z) continue;
        }
        uint32_t k = scan_point(simd, x, bd->x2[q], g, CT, norms, K, &bd->ub[q], &bd->lb[q]);
        scans++;
        changed += k != label[q];
        label[q] = k;
    }
    *scanned = scans;
    return changed;
}

/* delta_k = ||C_k - C_old_k|| and, for small K, sep_k. */
static void centroid_moves(const float *C, size_t K, size_t g, bounds *bd)
{
    for (size_t k = 0; k < K; k++) {
        float dd = 0.0f;
        for (size_t a = 0; a < g; a++) {
            float t = C[k * g + a] - bd->C_old[k * g + a];
            dd += t * t;
        }
        bd->delta[k] = sqrtf(dd);
    }
    if (!bd->sep) return;
    #pragma omp parallel for schedule(static) if (K * K * g > QN_AQLM_PAR_MIN_WORK)
    for (size_t k = 0; k < K; k++) {
        float lo = INFINITY;
        for (size_t k2 = 0; k2 < K; k2++) {
            if (k2 == k) continue;
            float dd = 0.0f;
            for (size_t a = 0; a < g; a++) {
                float t = C[k * g + a] - C[k2 * g + a];
                dd += t * t;
            }
            lo = dd < lo ? dd : lo;
        }
        bd->sep[k] = 0.5f * sqrtf(lo);
    }
}

/* Update step: each centroid moves to the mean of its points (sums in double, in
   point order). An empty centroid moves onto the point worst served by its
   centroid, the next empty one onto the next worst (the research code leaves
   them where they are, wasting codewords). order: (N) scratch; err: (N). */
static void update_means(const float *X, size_t N, size_t g, const uint32_t *label, size_t K, double *sum,
                         uint32_t *count, uint32_t *order, float *err, float *C)
{
    memset(sum, 0, K * g * sizeof *sum);
    memset(count, 0, K * sizeof *count);
    for (size_t q = 0; q < N; q++) {
        count[label[q]]++;
        for (size_t a = 0; a < g; a++) sum[(size_t)label[q] * g + a] += X[q * g + a];
    }
    size_t empty = 0;
    for (size_t k = 0; k < K; k++) {
        if (!count[k]) { empty++; continue; }
        for (size_t a = 0; a < g; a++) C[k * g + a] = (float)(sum[k * g + a] / count[k]);
    }
    if (!empty) return;
    for (size_t q = 0; q < N; q++) {
        float e = 0.0f;
        for (size_t a = 0; a < g; a++) {
            float d = X[q * g + a] - C[(size_t)label[q] * g + a];
            e += d * d;
        }
        err[q] = e;
        order[q] = (uint32_t)q;
    }
    size_t take = empty < N ? empty : N;
    for (size_t r = 0; r < take; r++) {                  /* partial selection of the worst points */
        size_t best = r;
        for (size_t q = r + 1; q < N; q++)
            if (err[order[q]] > err[order[best]]) best = q;
        uint32_t t = order[r]; order[r] = order[best]; order[best] = t;
        if (!(err[order[r]] > 0.0f)) { take = r; break; }
    }
    for (size_t k = 0, r = 0; k < K && r < take; k++)
        if (!count[k]) memcpy(C + k * g, X + (size_t)order[r++] * g, g * sizeof *C);
}

static void transpose_norms(const float *C, size_t K, size_t g, float *CT, float *norms)
{
    for (size_t k = 0; k < K; k++) {
        float nn = 0.0f;
        for (size_t a = 0; a < g; a++) {
            CT[a * K + k] = C[k * g + a];
            nn += C[k * g + a] * C[k * g + a];
        }
        norms[k] = nn;
    }
}

qn_status qn_aqlm_kmeans_init(qn_aqlm_state *st, int iters, uint64_t seed, qn_event_sink sink,
                              const atomic_bool *cancel, qn_err *err)
{
    const size_t N = st->d_out * st->G, K = st->K, g = st->g, M = (size_t)st->M, d_in = st->d_in;
    qn_status s = QN_OK;
    uint32_t *label = malloc(N * sizeof *label), *perm = malloc(N * sizeof *perm);
    uint32_t *count = malloc(K * sizeof *count);
    double *sum = malloc(K * g * sizeof *sum);
    float *norms = malloc(K * sizeof *norms), *err_q = malloc(N * sizeof *err_q);
    bounds bd = { malloc(N * sizeof(float)), malloc(N * sizeof(float)), malloc(N * sizeof(float)),
                  malloc(K * sizeof(float)), K <= SEP_MAX_K ? malloc(K * sizeof(float)) : NULL,
                  malloc(K * g * sizeof(float)) };
    if (!label || !perm || !count || !sum || !norms || !err_q || !bd.ub || !bd.lb || !bd.x2 || !bd.delta ||
        (K <= SEP_MAX_K && !bd.sep) || !bd.C_old) {
        s = qn_err_set(err, QN_ERR_NOMEM, "aqlm k-means: out of memory for %zu groups", N);
        goto fail;
    }
    float *X = st->U;   /* (N, g): row i's groups are U[i, :] in order, so the layouts agree */
    for (size_t i = 0; i < st->d_out; i++) {
        double nn = 0.0;
        for (size_t c = 0; c < d_in; c++) nn += (double)st->W[i * d_in + c] * st->W[i * d_in + c];
        st->s[i] = (float)sqrt(nn) + SCALE_EPS;
        for (size_t c = 0; c < d_in; c++) X[i * d_in + c] = st->W[i * d_in + c] / st->s[i];
    }
    uint64_t rng = seed;
    for (size_t m = 0; m < M; m++) {
        float *C = st->C + m * K * g, *CT = st->CT + m * g * K;
        for (size_t q = 0; q < N; q++) {
            float x2 = 0.0f;
            for (size_t a = 0; a < g; a++) x2 += X[q * g + a] * X[q * g + a];
            bd.x2[q] = x2;
        }
        seed_centroids(X, N, K, g, &rng, perm, err_q, C);
        transpose_norms(C, K, g, CT, norms);
        memset(label, 0xff, N * sizeof *label);
        size_t scanned = N;
        assign(st->simd, X, N, g, C, CT, norms, K, &bd, 1, &scanned, label);
        for (int it = 0; it < iters; it++) {
            if (cancel && atomic_load(cancel)) {
                s = qn_err_set(err, QN_ERR_CANCELLED, "aqlm k-means: cancelled");
                goto fail;
            }
            memcpy(bd.C_old, C, K * g * sizeof *C);
            update_means(X, N, g, label, K, sum, count, perm, err_q, C);
            centroid_moves(C, K, g, &bd);
            transpose_norms(C, K, g, CT, norms);
            if (!assign(st->simd, X, N, g, C, CT, norms, K, &bd, 0, &scanned, label)) break;
        }
        for (size_t q = 0; q < N; q++) {                 /* codes, and the residual for the next codebook */
            st->codes[q * M + m] = (uint16_t)label[q];
            for (size_t a = 0; a < g; a++) X[q * g + a] -= C[(size_t)label[q] * g + a];
        }
        qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = "aqlm.kmeans", .done = (int64_t)m + 1,
                                   .total = (int64_t)M, .value = NAN });
    }
fail:
    free(label);
    free(perm);
    free(count);
    free(sum);
    free(norms);
    free(err_q);
    free(bd.ub);
    free(bd.lb);
    free(bd.x2);
    free(bd.delta);
    free(bd.sep);
    free(bd.C_old);
    return s;
}
