/* aqlm_kmeans.c: the initialisation of AQLM [Egiazarian et al. 2024, §3.2;
   research code init_aq_kmeans and fit_kmeans]: each row is divided by its norm
   (the initial scale s_i = ||W_i|| + eps), the rows are cut into groups of g, and
   M codebooks are fitted one after the other by Lloyd's k-means on the residual
   left by the previous ones (residual vector quantization). Initial centroids
   are distinct groups drawn with the seed; when there are fewer groups than
   codewords the spare codewords are drawn groups plus noise, so every codeword
   starts somewhere the code search can use. An empty cluster keeps its centroid,
   as in the research code. Assignments use the scoring kernel: argmin_k
   ||c_k||^2 - 2 <c_k, x>. Not here: faiss, points-per-centroid subsampling, the
   H weighting (the rounds that follow bring H in). */
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

/* Centroids: min(K, N) distinct points of X by a partial Fisher-Yates shuffle, the
   rest drawn points plus Gaussian noise. X: (N, g); C: (K, g); perm: (N) scratch. */
static void seed_centroids(const float *X, size_t N, size_t K, size_t g, uint64_t *rng, uint32_t *perm,
                           float *C)
{
    for (size_t q = 0; q < N; q++) perm[q] = (uint32_t)q;
    size_t take = K < N ? K : N;
    for (size_t q = 0; q < take; q++) {
        size_t r = q + (size_t)(next_u64(rng) % (N - q));
        uint32_t t = perm[q]; perm[q] = perm[r]; perm[r] = t;
    }
    double ms = 0.0;
    for (size_t q = 0; q < N * g; q++) ms += (double)X[q] * X[q];
    float sigma = (float)(SPARE_NOISE * sqrt(ms / (double)(N * g)));
    for (size_t k = 0; k < K; k++) {
        memcpy(C + k * g, X + (size_t)perm[k % take] * g, g * sizeof *C);
        if (k >= take)
            for (size_t a = 0; a < g; a++) C[k * g + a] += sigma * (float)next_gauss(rng);
    }
}

/* Assignment step: nearest centroid of every point (first on ties), argmin_k
   ||c_k||^2 - 2 <c_k, x>. Returns how many points changed centroid. CT: (g, K);
   norms: (K) ||c_k||^2. */
static size_t assign(qn_simd simd, const float *X, size_t N, size_t g, const float *CT, const float *norms,
                     size_t K, uint32_t *label)
{
    size_t changed = 0;
    #pragma omp parallel for schedule(static) reduction(+ : changed)
    for (size_t q = 0; q < N; q++) {
        float best;
        uint32_t k = qn_aqlm_argmin(simd, CT, norms, K, g, X + q * g, &best);
        changed += k != label[q];
        label[q] = k;
    }
    return changed;
}

/* Update step: each centroid moves to the mean of its points (sums in double, in
   point order); an empty one stays. */
static void update_means(const float *X, size_t N, size_t g, const uint32_t *label, size_t K, double *sum,
                         uint32_t *count, float *C)
{
    memset(sum, 0, K * g * sizeof *sum);
    memset(count, 0, K * sizeof *count);
    for (size_t q = 0; q < N; q++) {
        count[label[q]]++;
        for (size_t a = 0; a < g; a++) sum[(size_t)label[q] * g + a] += X[q * g + a];
    }
    for (size_t k = 0; k < K; k++)
        if (count[k])
            for (size_t a = 0; a < g; a++) C[k * g + a] = (float)(sum[k * g + a] / count[k]);
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
    float *norms = malloc(K * sizeof *norms);
    if (!label || !perm || !count || !sum || !norms) {
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
        seed_centroids(X, N, K, g, &rng, perm, C);
        transpose_norms(C, K, g, CT, norms);
        memset(label, 0xff, N * sizeof *label);
        assign(st->simd, X, N, g, CT, norms, K, label);
        for (int it = 0; it < iters; it++) {
            if (cancel && atomic_load(cancel)) {
                s = qn_err_set(err, QN_ERR_CANCELLED, "aqlm k-means: cancelled");
                goto fail;
            }
            update_means(X, N, g, label, K, sum, count, C);
            transpose_norms(C, K, g, CT, norms);
            if (!assign(st->simd, X, N, g, CT, norms, K, label)) break;
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
    return s;
}
