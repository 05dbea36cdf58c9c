/* aqlm.c: the driver of the AQLM quantizer of one layer (see aqlm.h; the paper's
   Algorithm 1 without its fine-tuning stage): options, the state, the
   initialisation (k-means, then codebooks and scales fitted to H), rounds of code
   search and codebook update until a round gains less than `tol`, the fp16
   rounding of codebooks and scales, and the result in the Hugging Face layout.
   The steps themselves live in aqlm_kmeans.c, aqlm_beam.c and aqlm_codebooks.c. */
#include "engine/aqlm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/aqlm_impl.h"
#include "kernels/timing.h"
#include "engine/dtype.h"

/* Codebook update steps per round at most: warm-started from the last round's
   codebooks and block-Jacobi preconditioned, CG reaches CG_RESIDUAL_DROP
   (aqlm_codebooks.c) in 5 to 7 steps on the shared layers. */
#define DEFAULT_CG_ITERS 10

qn_aqlm_opts qn_aqlm_opts_default(void)
{
    return (qn_aqlm_opts){ .M = 2, .B = 8, .g = 8, .out_group = 1, .beam = 1, .tol = 0.01,
                           .max_rounds = 100, .seed = 0, .kmeans_iters = 100,
                           .cg_iters = DEFAULT_CG_ITERS, .feedback = 1, .simd = QN_SIMD_AVX2 };
}

qn_status qn_aqlm_opts_check(const qn_aqlm_opts *o, size_t d_out, size_t d_in, qn_err *err)
{
    if (o->M < 1) return qn_err_set(err, QN_ERR_ARG, "aqlm: codebooks M = %d: must be at least 1", o->M);
    if (o->B < 1 || o->B > QN_AQLM_MAX_BITS)
        return qn_err_set(err, QN_ERR_ARG, "aqlm: codebook bits B = %d: must be in 1..%d", o->B, QN_AQLM_MAX_BITS);
    if (o->g < 1) return qn_err_set(err, QN_ERR_ARG, "aqlm: group size g = 0: must be at least 1");
    if (d_in % o->g)
        return qn_err_set(err, QN_ERR_ARG, "aqlm: group size g = %zu does not divide the %zu input features",
                          o->g, d_in);
    if (o->out_group != 1)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "aqlm: out group size %zu: only 1 is supported", o->out_group);
    if (o->beam < 1) return qn_err_set(err, QN_ERR_ARG, "aqlm: beam size %d: must be at least 1", o->beam);
    if (!(o->tol >= 0.0) || !(o->tol < 1.0))
        return qn_err_set(err, QN_ERR_ARG, "aqlm: tolerance %g: must be in [0, 1)", o->tol);
    if (o->max_rounds < 0) return qn_err_set(err, QN_ERR_ARG, "aqlm: max rounds %d: must be >= 0", o->max_rounds);
    if (o->kmeans_iters < 0)
        return qn_err_set(err, QN_ERR_ARG, "aqlm: k-means iterations %d: must be >= 0", o->kmeans_iters);
    if (o->cg_iters < 1) return qn_err_set(err, QN_ERR_ARG, "aqlm: CG steps %d: must be at least 1", o->cg_iters);
    if (d_out == 0 || d_in == 0) return qn_err_set(err, QN_ERR_SHAPE, "aqlm: empty layer %zux%zu", d_out, d_in);
    if (d_out * (d_in / o->g) > UINT32_MAX || d_in > INT32_MAX || d_out > INT32_MAX)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "aqlm: layer %zux%zu has too many groups", d_out, d_in);
    return QN_OK;
}

double qn_aqlm_bits(size_t d_out, size_t d_in, int M, int B, size_t g)
{
    double n = (double)d_out * (double)d_in;
    double codes = (double)d_out * (double)(d_in / g) * M * B;
    double books = (double)M * ldexp(1.0, B) * (double)g * 16.0;
    return (codes + books + 16.0 * (double)d_out) / n;
}

void qn_aqlm_dequantize(const qn_aqlm_result *r, float *W)
{
    const size_t g = r->g, G = r->n_groups, K = r->codebook_size, M = (size_t)r->M;
    for (size_t i = 0; i < r->d_out; i++)
        for (size_t j = 0; j < G; j++)
            for (size_t a = 0; a < g; a++) {
                float acc = 0.0f;
                for (size_t m = 0; m < M; m++)
                    acc += r->codebooks[(m * K + r->codes[(i * G + j) * M + m]) * g + a];
                W[i * r->d_in + j * g + a] = r->scales[i] * acc;
            }
}

void qn_aqlm_result_done(qn_aqlm_result *r)
{
    if (!r) return;
    qn_layer_result_done(&r->layer);
    free(r->codes);
    free(r->codebooks);
    free(r->scales);
    free(r->usage);
    free(r->loss_history);
    memset(r, 0, sizeof *r);
}

static qn_status check_finite(const char *what, const float *A, size_t rows, size_t cols, qn_err *err)
{
    for (size_t e = 0; e < rows * cols; e++)
        if (!isfinite(A[e]))
            return qn_err_set(err, QN_ERR_FORMAT, "%s has a non-finite value (%g) at [%zu, %zu]", what, (double)A[e],
                              e / cols, e % cols);
    return QN_OK;
}

static void state_done(qn_aqlm_state *st)
{
    free(st->HJJ);
    free(st->WH);
    free(st->codes);
    free(st->C);
    free(st->CT);
    free(st->s);
    free(st->Y);
    free(st->U);
    free(st->Yp);
    free(st->HU);
    free(st->QJ);
    free(st->UJinv);
    free(st->wu);
    free(st->uy);
}

/* The state, H's diagonal blocks, W H and trace(W H W^T). */
static qn_status state_init(qn_aqlm_state *st, const qn_layer_problem *p, const qn_aqlm_opts *o, qn_err *err)
{
    memset(st, 0, sizeof *st);
    st->d_out = p->d_out;
    st->d_in = p->d_in;
    st->g = o->g;
    st->G = p->d_in / o->g;
    st->K = (size_t)1 << o->B;
    st->M = o->M;
    st->beam = o->beam;
    st->simd = qn_simd_clamp(o->simd);
    st->W = p->W;
    st->H = p->H;
    const size_t D = p->d_out * p->d_in, MKg = (size_t)o->M * st->K * o->g;
    st->HJJ = malloc(st->G * o->g * o->g * sizeof *st->HJJ);
    st->WH = malloc(D * sizeof *st->WH);
    st->codes = malloc(p->d_out * st->G * (size_t)o->M * sizeof *st->codes);
    st->C = malloc(MKg * sizeof *st->C);
    st->CT = malloc(MKg * sizeof *st->CT);
    st->s = malloc(p->d_out * sizeof *st->s);
    st->Y = malloc(D * sizeof *st->Y);
    st->U = malloc(D * sizeof *st->U);
    st->Yp = malloc(D * sizeof *st->Yp);
    st->wu = malloc(p->d_out * sizeof *st->wu);
    st->uy = malloc(p->d_out * sizeof *st->uy);
    if (!st->HJJ || !st->WH || !st->codes || !st->C || !st->CT || !st->s || !st->Y || !st->U || !st->Yp ||
        !st->wu || !st->uy)
        return qn_err_set(err, QN_ERR_NOMEM, "aqlm: out of memory for a %zux%zu layer", p->d_out, p->d_in);
    for (size_t j = 0; j < st->G; j++)
        for (size_t a = 0; a < st->g; a++)
            memcpy(st->HJJ + (j * st->g + a) * st->g, p->H + (j * st->g + a) * p->d_in + j * st->g,
                   st->g * sizeof *st->HJJ);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->d_out, (int)p->d_in, (int)p->d_in, 1.0f,
                p->W, (int)p->d_in, p->H, (int)p->d_in, 0.0f, st->WH, (int)p->d_in);
    double tr = 0.0;
    for (size_t e = 0; e < D; e++) tr += (double)st->WH[e] * p->W[e];
    st->trWHW = tr;
    return QN_OK;
}

static double relative(const qn_aqlm_state *st)
{
    return st->trWHW > 0.0 ? st->loss / st->trWHW : 0.0;
}

static void progress(qn_event_sink sink, const char *stage, int64_t done, int64_t total, double value)
{
    qn_emit(sink, &(qn_event){ .kind = QN_EV_PROGRESS, .stage = stage, .done = done, .total = total,
                               .value = value });
}

static int cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load(cancel);
}

/* The best state seen: a round that starts with the look-ahead pass may end
   worse than the one before, and the result is the best, not the last. */
typedef struct {
    uint16_t *codes;   /* (d_out, G, M) */
    float    *C;       /* (M, K, g) */
    float    *s;       /* (d_out) */
    double    loss;
} snapshot;

static qn_status snapshot_take(const qn_aqlm_state *st, snapshot *b, qn_err *err)
{
    const size_t nc = st->d_out * st->G * (size_t)st->M, MKg = (size_t)st->M * st->K * st->g;
    if (!b->codes) {
        b->codes = malloc(nc * sizeof *b->codes);
        b->C = malloc(MKg * sizeof *b->C);
        b->s = malloc(st->d_out * sizeof *b->s);
        if (!b->codes || !b->C || !b->s) return qn_err_set(err, QN_ERR_NOMEM, "aqlm: out of memory for a copy");
    }
    memcpy(b->codes, st->codes, nc * sizeof *b->codes);
    memcpy(b->C, st->C, MKg * sizeof *b->C);
    memcpy(b->s, st->s, st->d_out * sizeof *b->s);
    b->loss = st->loss;
    return QN_OK;
}

static void snapshot_restore(qn_aqlm_state *st, const snapshot *b)
{
    memcpy(st->codes, b->codes, st->d_out * st->G * (size_t)st->M * sizeof *st->codes);
    memcpy(st->C, b->C, (size_t)st->M * st->K * st->g * sizeof *st->C);
    memcpy(st->s, b->s, st->d_out * sizeof *st->s);
    qn_aqlm_transpose_codebooks(st);
    qn_aqlm_refresh(st);
}

static void snapshot_done(snapshot *b)
{
    free(b->codes);
    free(b->C);
    free(b->s);
}

/* fp16 storage: codebooks rounded, scales refitted to the rounded codebooks, then
   rounded; W_hat = diag(s) U and the error as stored. */
static void round_to_fp16(qn_aqlm_state *st)
{
    const size_t MKg = (size_t)st->M * st->K * st->g;
    for (size_t e = 0; e < MKg; e++) st->C[e] = qn_f16_to_f32(qn_f32_to_f16(st->C[e]));
    qn_aqlm_transpose_codebooks(st);
    qn_aqlm_refresh(st);
    qn_aqlm_fit_scales(st);
    for (size_t i = 0; i < st->d_out; i++) st->s[i] = qn_f16_to_f32(qn_f32_to_f16(st->s[i]));
}

/* Moves the state's arrays into out and fills the rest of the result. */
static qn_status fill_result(qn_aqlm_state *st, const qn_layer_problem *p, const qn_aqlm_opts *o,
                             double *history, int n_rounds, qn_aqlm_result *out, qn_err *err)
{
    const size_t D = st->d_out * st->d_in, MK = (size_t)st->M * st->K;
    memset(out, 0, sizeof *out);
    out->layer.W_hat = malloc(D * sizeof *out->layer.W_hat);
    out->usage = calloc(MK, sizeof *out->usage);
    if (!out->layer.W_hat || !out->usage) {
        free(out->layer.W_hat);
        free(out->usage);
        memset(out, 0, sizeof *out);
        return qn_err_set(err, QN_ERR_NOMEM, "aqlm: out of memory for the result");
    }
    for (size_t i = 0; i < st->d_out; i++)
        for (size_t c = 0; c < st->d_in; c++) out->layer.W_hat[i * st->d_in + c] = st->s[i] * st->U[i * st->d_in + c];
    for (size_t q = 0; q < st->d_out * st->G; q++)
        for (int m = 0; m < st->M; m++) out->usage[(size_t)m * st->K + st->codes[q * (size_t)st->M + m]]++;
    out->layer.relative_error = qn_relative_error(p->W, out->layer.W_hat, p->H, p->d_out, p->d_in);
    out->layer.bits = qn_aqlm_bits(p->d_out, p->d_in, o->M, o->B, o->g);
    out->d_out = st->d_out;
    out->d_in = st->d_in;
    out->M = o->M;
    out->B = o->B;
    out->g = o->g;
    out->n_groups = st->G;
    out->codebook_size = st->K;
    out->codes = st->codes;
    out->codebooks = st->C;
    out->scales = st->s;
    out->loss_history = history;
    out->n_rounds = n_rounds;
    st->codes = NULL;
    st->C = NULL;
    st->s = NULL;
    return QN_OK;
}

qn_status qn_aqlm_quantize(const qn_layer_problem *p, const qn_aqlm_opts *o, qn_event_sink sink,
                           const atomic_bool *cancel, qn_aqlm_result *out, qn_err *err)
{
    const double t0 = qn_now();
    const char *name = p && p->name ? p->name : "layer";
    qn_aqlm_state st = {0};
    snapshot best = {0};
    double *history = NULL;
    qn_status s;
    if (!p || !p->W || !p->H || !o || !out) {
        s = qn_err_set(err, QN_ERR_ARG, "aqlm: missing layer, options or result");
        goto fail;
    }
    if ((s = qn_aqlm_opts_check(o, p->d_out, p->d_in, err)) != QN_OK) goto fail;
    if ((s = check_finite("weight", p->W, p->d_out, p->d_in, err)) != QN_OK ||
        (s = check_finite("hessian", p->H, p->d_in, p->d_in, err)) != QN_OK)
        goto fail;
    history = malloc(((size_t)o->max_rounds + 1) * sizeof *history);
    if (!history) {
        s = qn_err_set(err, QN_ERR_NOMEM, "aqlm: out of memory for %d rounds", o->max_rounds);
        goto fail;
    }
    if ((s = state_init(&st, p, o, err)) != QN_OK) goto fail;

    /* Initialisation: k-means, then the codebooks and scales fitted to H. */
    if ((s = qn_aqlm_kmeans_init(&st, o->kmeans_iters, o->seed, sink, cancel, err)) != QN_OK) goto fail;
    qn_aqlm_refresh(&st);
    if ((s = qn_aqlm_update_codebooks(&st, o->cg_iters, err)) != QN_OK) goto fail;
    history[0] = relative(&st);
    progress(sink, "aqlm.codebooks", 0, o->max_rounds, history[0]);

    /* Rounds: (a) code search, (b) codebooks and scales; stop on a small gain.
       The code search of a round is two passes, each followed by the update:
       GPTQ-ordered (looks ahead, may lose ground), then descent (never does). */
    if ((s = snapshot_take(&st, &best, err)) != QN_OK) goto fail;
    int rounds = 0;
    while (rounds < o->max_rounds) {
        if (cancelled(cancel)) {
            s = qn_err_set(err, QN_ERR_CANCELLED, "aqlm: cancelled after %d rounds", rounds);
            goto fail;
        }
        double before = st.loss;
        size_t changed;
        int usable = 0;
        if (o->feedback && (s = qn_aqlm_feedback_pass(&st, &usable, err)) != QN_OK) goto fail;
        if (usable && (s = qn_aqlm_update_codebooks(&st, o->cg_iters, err)) != QN_OK) goto fail;
        if ((s = qn_aqlm_beam_pass(&st, &changed, err)) != QN_OK) goto fail;
        progress(sink, "aqlm.beam", rounds + 1, o->max_rounds, relative(&st));
        if ((s = qn_aqlm_update_codebooks(&st, o->cg_iters, err)) != QN_OK) goto fail;
        rounds++;
        history[rounds] = relative(&st);
        progress(sink, "aqlm.codebooks", rounds, o->max_rounds, history[rounds]);
        if (st.loss < best.loss && (s = snapshot_take(&st, &best, err)) != QN_OK) goto fail;
        if (before - st.loss <= o->tol * before) break;   /* also when the loss is 0 */
    }
    if (best.loss < st.loss) snapshot_restore(&st, &best);
    round_to_fp16(&st);
    if ((s = fill_result(&st, p, o, history, rounds, out, err)) != QN_OK) goto fail;
    out->layer.seconds = qn_now() - t0;
    state_done(&st);
    snapshot_done(&best);
    return QN_OK;
fail:
    state_done(&st);
    snapshot_done(&best);
    free(history);
    if (s != QN_OK && err) qn_err_prefix(err, "%s: ", name);
    return s;
}
