/* plot_codebook.c: the codebook picture of an AQLM layer (plot.h). AQLM
   (Egiazarian et al. 2024) stores each group of g weights as the sum of M
   codewords, one from each of M learned codebooks of K = 2^B vectors. Per
   codebook one row: how often each codeword is used, sorted (a long flat tail of
   unused codewords is wasted bits); each codeword's norm in the same order; and
   the codewords projected on their first two principal components (cyclic
   Jacobi eigen-decomposition of the g x g covariance; Golub & Van Loan §8.5),
   coloured by usage. */
#include "viz/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz/plot_impl.h"

typedef struct { uint32_t count, idx; } ranked;

static int by_count_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Eigen-decomposition of the symmetric A (g, g), destroyed: eigenvalues in eig (g),
   eigenvectors in the columns of V (g, g). */
static void jacobi_eigen(double *A, size_t g, double *V, double *eig)
{
    for (size_t i = 0; i < g; i++)
        for (size_t j = 0; j < g; j++) V[i * g + j] = i == j;
    for (int sweep = 0; sweep < 64; sweep++) {
        double off = 0;
        for (size_t p = 0; p < g; p++)
            for (size_t q = p + 1; q < g; q++) off += A[p * g + q] * A[p * g + q];
        if (off < 1e-30) break;
        for (size_t p = 0; p < g; p++)
            for (size_t q = p + 1; q < g; q++) {
                double apq = A[p * g + q];
                if (fabs(apq) < 1e-300) continue;
                /* rotation that zeroes A[p][q] */
                double theta = (A[q * g + q] - A[p * g + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < g; k++) {
                    double akp = A[k * g + p], akq = A[k * g + q];
                    A[k * g + p] = c * akp - s * akq;
                    A[k * g + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < g; k++) {
                    double apk = A[p * g + k], aqk = A[q * g + k];
                    A[p * g + k] = c * apk - s * aqk;
                    A[q * g + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < g; k++) {
                    double vkp = V[k * g + p], vkq = V[k * g + q];
                    V[k * g + p] = c * vkp - s * vkq;
                    V[k * g + q] = s * vkp + c * vkq;
                }
            }
    }
    for (size_t i = 0; i < g; i++) eig[i] = A[i * g + i];
}

/* Projection of C (K, g) on its two leading principal components: xy (K, 2);
   explained[2] the fractions of variance. */
static qn_status pca2(const float *C, size_t K, size_t g, float *xy, double *explained,
                      qn_err *err)
{
    double *mean = calloc(g, sizeof *mean), *A = calloc(g * g, sizeof *A);
    double *V = malloc(g * g * sizeof *V), *eig = malloc(g * sizeof *eig);
    qn_status s = QN_OK;
    if (!mean || !A || !V || !eig) {
        s = qn_err_set(err, QN_ERR_NOMEM, "codebook: out of memory for PCA (g = %zu)", g);
        goto done;
    }
    for (size_t k = 0; k < K; k++)
        for (size_t i = 0; i < g; i++) mean[i] += C[k * g + i] / (double)K;
    for (size_t k = 0; k < K; k++)
        for (size_t i = 0; i < g; i++)
            for (size_t j = i; j < g; j++)
                A[i * g + j] += (C[k * g + i] - mean[i]) * (C[k * g + j] - mean[j]);
    for (size_t i = 0; i < g; i++)
        for (size_t j = 0; j < i; j++) A[i * g + j] = A[j * g + i];
    jacobi_eigen(A, g, V, eig);
    size_t p1 = 0, p2 = g > 1 ? 1 : 0;
    double total = 0;
    for (size_t i = 0; i < g; i++) {
        total += fmax(eig[i], 0);
        if (eig[i] > eig[p1]) p1 = i;
    }
    if (p2 == p1) p2 = g > 1 ? (p1 + 1) % g : p1;
    for (size_t i = 0; i < g; i++)
        if (i != p1 && eig[i] > eig[p2]) p2 = i;
    explained[0] = total > 0 ? fmax(eig[p1], 0) / total : 0;
    explained[1] = total > 0 && g > 1 ? fmax(eig[p2], 0) / total : 0;
    for (size_t k = 0; k < K; k++) {
        double a = 0, b = 0;
        for (size_t i = 0; i < g; i++) {
            double c = C[k * g + i] - mean[i];
            a += c * V[i * g + p1];
            b += g > 1 ? c * V[i * g + p2] : 0;
        }
        xy[2 * k] = (float)a;
        xy[2 * k + 1] = (float)b;
    }
done:
    free(mean); free(A); free(V); free(eig);
    return s;
}

static void panel_title(qn_fig *f, qn_rect area, const char *s)
{
    qn_fig_text(f, area.x, area.y - (int)lround(f->fs * 0.5), f->fs * 0.95, -1, s, qn_fig_ink);
}

static void frame(qn_fig *f, qn_rect a)
{
    qn_raster_frame(f->r, (qn_rect){ a.x - 1, a.y - 1, a.w + 2, a.h + 2 }, qn_fig_ink);
}

/* One codebook's row of panels, with its usage colour axis ua. */
static qn_status codebook_row(qn_fig *f, int y, int row_h, int W, const float *C,
                              const uint32_t *usage, size_t K, size_t g, size_t m,
                              const qn_axis *ua, qn_err *err)
{
    double fs = f->fs;
    ranked *rk = malloc(K * sizeof *rk);
    float *xy = malloc(2 * K * sizeof *xy), *norm = malloc(K * sizeof *norm);
    qn_status s = QN_OK;
    if (!rk || !xy || !norm) {
        s = qn_err_set(err, QN_ERR_NOMEM, "codebook: out of memory for %zu codewords", K);
        goto done;
    }
    double explained[2] = { 0, 0 };
    if ((s = pca2(C, K, g, xy, explained, err)) != QN_OK) goto done;
    size_t unused = 0;
    for (size_t k = 0; k < K; k++) {
        rk[k] = (ranked){ usage[k], (uint32_t)k };
        unused += usage[k] == 0;
        double n2 = 0;
        for (size_t i = 0; i < g; i++) n2 += (double)C[k * g + i] * C[k * g + i];
        norm[k] = (float)sqrt(n2);
    }
    qsort(rk, K, sizeof *rk, by_count_desc);

    /* the value axes first: each panel's left margin holds its tick labels */
    qn_axis na = qn_axis_choose(norm, K, false, false, &(qn_viz_opts){ 0 });
    na.lo = 0;
    na.hi *= 1.05;
    double ext = 0;
    for (size_t k = 0; k < 2 * K; k++) ext = fmax(ext, fabs(xy[k]));
    ext = ext > 0 ? ext * 1.08 : 1;
    /* the PCA axes' ticks depend on the panel's shape: size twice, the second time
       with the tick labels the first gave */
    qn_axis pxa = { -ext, ext, false, false, false }, pya = pxa;
    int pw = 0, ph = row_h - (int)lround(fs * 5.4), margin[3];
    for (int pass = 0; pass < 2; pass++) {
        margin[0] = qn_fig_ytick_width(f, ua) + (int)lround(fs * 2.6);
        margin[1] = qn_fig_ytick_width(f, &na) + (int)lround(fs * 3.2);
        margin[2] = qn_fig_ytick_width(f, &pya) + (int)lround(fs * 3.2);
        int used = (int)lround(fs * 2.0) + qn_fig_colorbar_width(f, ua);
        pw = (W - used - margin[0] - margin[1] - margin[2]) / 3;
        if (pw < 16) {
            s = qn_err_set(err, QN_ERR_ARG, "codebook: a picture %d wide leaves no room for "
                           "three panels", W);
            goto done;
        }
        /* equal scales on both axes */
        double sx = pw >= ph ? ext * pw / ph : ext, sy = pw >= ph ? ext : ext * ph / pw;
        pxa = (qn_axis){ -sx, sx, false, false, false };
        pya = (qn_axis){ -sy, sy, false, false, false };
    }
    int top = y + (int)lround(fs * 1.7);
    qn_rect a = { margin[0], top, pw, ph };
    qn_rect b = { a.x + pw + margin[1], top, pw, ph };
    qn_rect c = { b.x + pw + margin[2], top, pw, ph };
    qn_axis rank = { -0.5, (double)K - 0.5, false, true, false };
    qn_rgb ink = f->no_color ? qn_fig_muted : (qn_rgb){ 59, 76, 192 };
    char buf[128];

    /* usage, sorted: a filled profile; each pixel column shows its first (largest) rank */
    qn_axis ca = *ua;
    for (int x = 0; x < pw; x++) {
        size_t r0 = (size_t)x * K / (size_t)pw;
        double t = qn_axis_frac(&ca, rk[r0].count);
        if (isnan(t)) continue;
        int hgt = (int)lround(fmin(t, 1) * ph);
        if (hgt < 1) hgt = 1;
        qn_raster_fill(f->r, (qn_rect){ a.x + x, a.y + ph - hgt, 1, hgt }, ink);
    }
    frame(f, a);
    snprintf(buf, sizeof buf, "codebook %zu: usage, sorted", m);
    panel_title(f, a, buf);
    qn_fig_xaxis(f, (qn_rect){ a.x, a.y, a.w, a.h + 1 }, &rank, "codeword rank");
    qn_fig_yaxis(f, a, &ca, "times used");
    snprintf(buf, sizeof buf, "%zu of %zu unused", unused, K);
    qn_fig_text(f, a.x + a.w - (int)lround(fs * 0.4), a.y + (int)lround(fs * 1.2), fs * 0.85, 1,
                buf, qn_fig_ink);

    /* norms in the same order */
    double rad = K > 2048 ? 1.0 : K > 256 ? 1.6 : fs * 0.18;
    for (size_t i = 0; i < K; i++) {
        double px = b.x + qn_axis_frac(&rank, (double)i) * b.w;
        double py = b.y + (1 - qn_axis_frac(&na, norm[rk[i].idx])) * b.h;
        qn_raster_disc(f->r, px, py, rad, ink);
    }
    frame(f, b);
    panel_title(f, b, "norm \xe2\x80\x96" "c\xe2\x80\x96\xe2\x82\x82, same order");
    qn_fig_xaxis(f, (qn_rect){ b.x, b.y, b.w, b.h + 1 }, &rank, "codeword rank");
    qn_fig_yaxis(f, b, &na, NULL);

    /* PCA: least used drawn first so the busy ones show */
    qn_colormap cm = qn_colormap_pick(QN_CMAP_VIRIDIS, f->no_color);
    for (size_t i = K; i-- > 0;) {
        size_t k = rk[i].idx;
        double px = c.x + qn_axis_frac(&pxa, xy[2 * k]) * c.w;
        double py = c.y + (1 - qn_axis_frac(&pya, xy[2 * k + 1])) * c.h;
        qn_rgb col = usage[k] ? qn_axis_color(ua, cm, usage[k]) : qn_fig_nodata;
        qn_raster_disc(f->r, px, py, K > 2048 ? 1.2 : K > 256 ? 2.0 : fs * 0.25, col);
    }
    frame(f, c);
    panel_title(f, c, "PCA of the codewords");
    snprintf(buf, sizeof buf, "PC 1 (%.0f%% of variance)", explained[0] * 100);
    qn_fig_xaxis(f, (qn_rect){ c.x, c.y, c.w, c.h + 1 }, &pxa, buf);
    snprintf(buf, sizeof buf, "PC 2 (%.0f%%)", explained[1] * 100);
    qn_fig_yaxis(f, c, &pya, buf);
    qn_rect bar = { c.x + c.w + 1 + (int)lround(fs * 1.0), c.y, (int)lround(fs * 1.1), c.h };
    qn_fig_colorbar(f, bar, cm, 1, ua, "times used");
done:
    free(rk); free(xy); free(norm);
    return s;
}

qn_status qn_viz_codebook(qn_picture *out, qn_font *font, const float *codewords,
                          const uint32_t *usage, size_t M, size_t K, size_t g,
                          const qn_viz_opts *o, qn_err *err)
{
    qn_status s;
    memset(out, 0, sizeof *out);
    if (!M || !K || !g)
        return qn_err_set(err, QN_ERR_SHAPE, "codebook: M = %zu, K = %zu, g = %zu; none may be 0",
                          M, K, g);
    if (K > UINT32_MAX)
        return qn_err_set(err, QN_ERR_SHAPE, "codebook: K = %zu codewords, more than 2^32", K);
    int W = o->width > 0 ? o->width : 1400;
    qn_fig f = { NULL, font, qn_fig_font_px(W, o), o->no_color };
    double fs = f.fs;
    int top = qn_fig_title_height(fs);
    int row_h = o->height > 0 ? (o->height - top) / (int)M : (int)lround(W * 0.3);
    if (row_h < fs * 9) {
        return qn_err_set(err, QN_ERR_ARG, "codebook: %zu codebooks do not fit a %dx%d picture",
                          M, W, o->height);
    }
    /* one usage axis for all codebooks, log: counts are heavy-tailed */
    uint32_t umax = 0, umin = UINT32_MAX;
    for (size_t i = 0; i < M * K; i++) {
        if (usage[i] > umax) umax = usage[i];
        if (usage[i] && usage[i] < umin) umin = usage[i];
    }
    qn_axis ua = { umin == UINT32_MAX ? 1 : umin, umax ? umax : 10, true, false, false };
    if (o->scale == QN_SCALE_LINEAR) { ua.log = false; ua.lo = 0; }
    if (ua.hi <= ua.lo) ua.hi = ua.lo * 10;
    if (ua.log) { ua.lo = pow(10, floor(log10(ua.lo))); ua.hi *= 1.3; }
    int H = o->height > 0 ? o->height : top + row_h * (int)M;
    if ((s = qn_fig_init(&f, out, font, W, H, o, err)) != QN_OK) goto fail;
    for (size_t m = 0; m < M; m++)
        if ((s = codebook_row(&f, top + (int)m * row_h, row_h, W, codewords + m * K * g,
                              usage + m * K, K, g, m, &ua, err)) != QN_OK)
            goto fail;
    char note[96];
    snprintf(note, sizeof note, "%zu codebook%s \xc3\x97 %zu codewords of %zu", M,
             M == 1 ? "" : "s", K, g);
    qn_fig_title(&f, "Codebooks", &o->title, note);
    out->map = (qn_rect){ 0, top, W, H - top };
    out->lo = ua.lo;
    out->hi = ua.hi;
    out->log = ua.log;
    if ((s = qn_font_check(font, err)) != QN_OK) goto fail;
    return QN_OK;
fail:
    qn_picture_done(out);
    return s;
}
