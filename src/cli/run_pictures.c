/* run_pictures.c: the pictures of a run folder (see run_pictures.h). One table
   row per kind says its name, the heading viz writes, whether it is per layer
   and what it needs; loading, drawing and the heatmap form switch on the kind
   in one place each. */
#include "cli/run_pictures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "viz/png.h"

typedef struct {
    const char *name;
    const char *heading;      /* the figure's first title word(s), as viz writes them */
    bool        per_layer;
} kind_desc;

static const kind_desc k_kinds[QN_RUNPIC_COUNT] = {
    [QN_RUNPIC_WEIGHTS]     = { "weights", "Weights", true },
    [QN_RUNPIC_ERROR]       = { "error", "Weighted squared error", true },
    [QN_RUNPIC_OUTLIERS]    = { "outliers", "Outliers", true },
    [QN_RUNPIC_CODEBOOK]    = { "codebook", "Codebooks", true },
    [QN_RUNPIC_OVERVIEW]    = { "overview", "Relative error per layer", false },
    [QN_RUNPIC_HESSIAN]     = { "hessian", "Hessian diagonal", false },
    [QN_RUNPIC_CONVERGENCE] = { "convergence", "Convergence", false },
};

const char *qn_runpic_name(qn_runpic_kind k)
{
    return (unsigned)k < QN_RUNPIC_COUNT ? k_kinds[k].name : "?";
}

int qn_runpic_from_name(const char *name)
{
    for (int k = 0; name && k < QN_RUNPIC_COUNT; k++)
        if (strcmp(name, k_kinds[k].name) == 0) return k;
    return -1;
}

bool qn_runpic_per_layer(qn_runpic_kind k)
{
    return (unsigned)k < QN_RUNPIC_COUNT && k_kinds[k].per_layer;
}

const char *qn_runpic_names(void)
{
    return "weights|error|outliers|codebook|overview|hessian|convergence";
}

qn_status qn_runpic_parse_kind(const char *name, bool all_ok, int *kind, qn_err *err)
{
    if (all_ok && name && strcmp(name, "all") == 0) { *kind = -1; return QN_OK; }
    *kind = qn_runpic_from_name(name);
    if (*kind >= 0) return QN_OK;
    const char *names[QN_RUNPIC_COUNT];
    for (int k = 0; k < QN_RUNPIC_COUNT; k++) names[k] = k_kinds[k].name;
    const char *near = name ? qn_arg_nearest(name, names, QN_RUNPIC_COUNT) : NULL;
    char hint[64] = "";
    if (near) snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    return qn_err_set(err, QN_ERR_ARG, "--what: unknown picture '%s'%s: expected %s%s", name ? name : "", hint,
                      qn_runpic_names(), all_ok ? "|all" : "");
}

qn_status qn_runpic_parse_colormap(const char *name, qn_colormap *cm, qn_err *err)
{
    for (int c = 0; c < QN_CMAP_COUNT; c++)
        if (strcmp(name, qn_colormap_name((qn_colormap)c)) == 0) { *cm = (qn_colormap)c; return QN_OK; }
    return qn_err_set(err, QN_ERR_ARG, "--colormap: unknown colormap '%s': expected viridis, magma, coolwarm or greys",
                      name);
}

static qn_status pick_layer(const qn_run_folder *run, const char *name, size_t *index, qn_err *err)
{
    if (name) return qn_run_find_layer(run, name, index, err);
    *index = qn_run_worst_layer(run);
    if (*index == (size_t)-1)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: the run has no quantized layer yet", qn_run_get_info(run)->dir);
    return QN_OK;
}

qn_status qn_runpic_check(const qn_run_folder *run, qn_runpic_kind k, qn_err *err)
{
    const qn_run_info *in = qn_run_get_info(run);
    const char *name = qn_runpic_name(k);
    if (in->n_layers == 0)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: %s: the run has no quantized layer yet", in->dir, name);
    switch (k) {
    case QN_RUNPIC_ERROR:
        if (!in->has_model)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: error: the run has not written its model yet", in->dir);
        if (!in->has_hessian)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: error: no Hessian diagonals (stats.safetensors)", in->dir);
        return QN_OK;
    case QN_RUNPIC_HESSIAN:
        if (!in->has_hessian)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: hessian: no Hessian diagonals (stats.safetensors)", in->dir);
        return QN_OK;
    case QN_RUNPIC_OUTLIERS:
        if (!in->has_outlier_masks)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: outliers: the run is %s; outliers are SpQR's", in->dir,
                              in->method_label);
        return QN_OK;
    case QN_RUNPIC_CODEBOOK:
        if (!in->has_codebooks)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: codebook: the run is %s; codebooks are AQLM's", in->dir,
                              in->method_label);
        return QN_OK;
    case QN_RUNPIC_CONVERGENCE:
        if (!in->has_rounds)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: convergence: the run is %s; rounds are AQLM's", in->dir,
                              in->method_label);
        return QN_OK;
    default:
        return QN_OK;
    }
}

void qn_runpic_done(qn_runpic *p)
{
    if (!p) return;
    free(p->v);
    free(p->rel_err);
    free(p->bits);
    free(p->diag);
    free(p->d);
    free(p->loss);
    free(p->names);
    memset(p, 0, sizeof *p);
}

static qn_status load_overview(qn_runpic *p, qn_err *err)
{
    const qn_run_info *in = p->info;
    size_t n = (size_t)in->n_blocks * QN_RUN_SUBLAYERS;
    p->n_blocks = (size_t)in->n_blocks;
    p->rel_err = malloc(n * sizeof *p->rel_err);
    p->bits = malloc(n * sizeof *p->bits);
    if (!p->rel_err || !p->bits) return qn_err_set(err, QN_ERR_NOMEM, "overview: out of memory");
    for (size_t i = 0; i < n; i++) p->rel_err[i] = p->bits[i] = NAN;
    for (size_t i = 0; i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        size_t k = (size_t)L->block * QN_RUN_SUBLAYERS + (size_t)L->sublayer;
        p->rel_err[k] = L->relative_error;
        p->bits[k] = L->bits;
    }
    return QN_OK;
}

static qn_status alloc_series(qn_runpic *p, size_t n, qn_err *err)
{
    p->names = calloc(n ? n : 1, sizeof *p->names);
    p->diag = calloc(n ? n : 1, sizeof *p->diag);
    p->d = calloc(n ? n : 1, sizeof *p->d);
    if (!p->names || !p->diag || !p->d) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    return QN_OK;
}

static qn_status load_hessian(qn_runpic *p, qn_run_folder *run, qn_err *err)
{
    const qn_run_info *in = p->info;
    qn_status s = alloc_series(p, in->n_layers, err);
    for (size_t i = 0; i < in->n_layers && !s; i++) {
        p->names[i] = in->layers[i].short_name;
        s = qn_run_hessian_diag(run, in->layers[i].name, &p->diag[i], &p->d[i], err);
    }
    p->n_series = in->n_layers;
    return s;
}

static qn_status load_convergence(qn_runpic *p, qn_err *err)
{
    const qn_run_info *in = p->info;
    qn_status s = alloc_series(p, in->n_layers, err);
    if (s) return s;
    for (size_t i = 0; i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        if (!L->n_rounds) continue;
        p->names[p->n_series++] = L->short_name;
        if (L->n_rounds > p->n_rounds) p->n_rounds = L->n_rounds;
    }
    p->loss = malloc(p->n_series * p->n_rounds * sizeof *p->loss);
    if (!p->loss) return qn_err_set(err, QN_ERR_NOMEM, "convergence: out of memory");
    size_t row = 0;
    for (size_t i = 0; i < in->n_layers; i++) {
        const qn_run_layer *L = &in->layers[i];
        if (!L->n_rounds) continue;
        for (size_t r = 0; r < p->n_rounds; r++)
            p->loss[row * p->n_rounds + r] = r < L->n_rounds ? L->round_loss[r] : NAN;
        row++;
    }
    return QN_OK;
}

qn_status qn_runpic_load(qn_runpic *p, qn_run_folder *run, qn_runpic_kind kind, size_t layer, qn_err *err)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->info = qn_run_get_info(run);
    qn_status s = qn_runpic_check(run, kind, err);
    if (s) return s;
    const qn_run_info *in = p->info;
    if (qn_runpic_per_layer(kind)) {
        if (layer >= in->n_layers)
            return qn_err_set(err, QN_ERR_ARG, "%s: layer index %zu, the run has %zu", in->dir, layer, in->n_layers);
        p->layer = &in->layers[layer];
        snprintf(p->layer_label, sizeof p->layer_label, "block %d %s", p->layer->block, p->layer->part);
    } else {
        snprintf(p->layer_label, sizeof p->layer_label, "all %zu linears", in->n_layers);
    }
    p->title = (qn_viz_title){ .model = in->model_name, .layer = p->layer_label, .method = in->method_label,
                               .bits = p->layer ? p->layer->bits : in->bits };
    if (!isfinite(p->title.bits)) p->title.bits = 0;
    const char *name = p->layer ? p->layer->name : NULL;
    switch (kind) {
    case QN_RUNPIC_WEIGHTS: s = qn_run_weights(run, name, true, &p->v, &p->rows, &p->cols, err); break;
    case QN_RUNPIC_ERROR: s = qn_run_error_map(run, name, &p->v, &p->rows, &p->cols, err); break;
    case QN_RUNPIC_OUTLIERS: s = qn_run_outlier_mask(run, name, &p->mask, &p->rows, &p->cols, err); break;
    case QN_RUNPIC_CODEBOOK: s = qn_run_codebooks(run, name, &p->codewords, &p->usage, &p->M, &p->K, &p->g, err); break;
    case QN_RUNPIC_OVERVIEW: s = load_overview(p, err); break;
    case QN_RUNPIC_HESSIAN: s = load_hessian(p, run, err); break;
    case QN_RUNPIC_CONVERGENCE: s = load_convergence(p, err); break;
    default: s = qn_err_set(err, QN_ERR_ARG, "picture kind %d unknown", (int)kind);
    }
    if (s) qn_runpic_done(p);
    return s;
}

qn_status qn_runpic_prepare(qn_runpic *p, qn_run_folder *run, qn_runpic_kind kind, const char *layer,
                            qn_err *err)
{
    memset(p, 0, sizeof *p);
    size_t index = 0;
    qn_status s = qn_runpic_check(run, kind, err);
    if (!s && qn_runpic_per_layer(kind)) s = pick_layer(run, layer, &index, err);
    return s ? s : qn_runpic_load(p, run, kind, index, err);
}

qn_status qn_runpic_figure(const qn_runpic *p, qn_font *font, const qn_viz_opts *opts, qn_picture *out,
                           qn_err *err)
{
    qn_viz_opts o = *opts;
    o.title = p->title;
    switch (p->kind) {
    case QN_RUNPIC_WEIGHTS: return qn_viz_weights(out, font, p->v, p->rows, p->cols, &o, err);
    case QN_RUNPIC_ERROR: return qn_viz_error(out, font, p->v, p->rows, p->cols, &o, err);
    case QN_RUNPIC_OUTLIERS: return qn_viz_outliers(out, font, p->mask, p->rows, p->cols, &o, err);
    case QN_RUNPIC_CODEBOOK: return qn_viz_codebook(out, font, p->codewords, p->usage, p->M, p->K, p->g, &o, err);
    case QN_RUNPIC_OVERVIEW: return qn_viz_overview(out, font, p->rel_err, p->bits, p->n_blocks, &o, err);
    case QN_RUNPIC_HESSIAN:
        return qn_viz_hessian(out, font, (const float *const *)p->diag, p->d, p->n_series,
                              (const char *const *)p->names, &o, err);
    case QN_RUNPIC_CONVERGENCE:
        return qn_viz_convergence(out, font, p->loss, p->n_series, p->n_rounds, (const char *const *)p->names, &o,
                                  err);
    default: return qn_err_set(err, QN_ERR_ARG, "picture kind %d unknown", (int)p->kind);
    }
}

qn_status qn_runpic_write_png(const qn_runpic *p, qn_font *font, const qn_viz_opts *opts, const char *path,
                              qn_err *err)
{
    qn_picture pic = { 0 };
    qn_status s = qn_runpic_figure(p, font, opts, &pic, err);
    if (s) return qn_err_prefix(err, "%s: ", path);
    char bits[32];
    snprintf(bits, sizeof bits, "%.4f", p->title.bits);
    const qn_png_text text[] = {
        { "Software", "quench" },
        { "quench.run", p->info->dir },
        { "quench.model", p->info->model },
        { "quench.method", p->info->method_label },
        { "quench.layer", p->layer ? p->layer->name : "all" },
        { "quench.kind", qn_runpic_name(p->kind) },
        { "quench.bits", bits },
        { "quench.options", p->info->options },
    };
    s = qn_png_write(path, &pic.image, text, sizeof text / sizeof text[0], err);
    qn_picture_done(&pic);
    return s;
}

/* Errors spread over decades: log unless they span less than 100x, as the figure decides. */
static qn_scale error_scale(const float *v, size_t n)
{
    float lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0) {
            if (v[i] < lo) lo = v[i];
            if (v[i] > hi) hi = v[i];
        }
    return hi > 0 && hi / lo > 100 ? QN_SCALE_LOG : QN_SCALE_LINEAR;
}

qn_status qn_runpic_heat(const qn_runpic *p, float **v, size_t *rows, size_t *cols, qn_heat_style *style,
                         qn_err *err)
{
    *v = NULL;
    size_t r = p->rows, c = p->cols;
    *style = (qn_heat_style){ .cmap = QN_CMAP_MAGMA, .scale = QN_SCALE_LINEAR, .op = QN_REDUCE_MAX };
    if (p->kind == QN_RUNPIC_HESSIAN) {
        r = p->n_series;
        c = 0;
        for (size_t l = 0; l < p->n_series; l++)
            if (p->d[l] > c) c = p->d[l];
    } else if (p->kind != QN_RUNPIC_WEIGHTS && p->kind != QN_RUNPIC_ERROR && p->kind != QN_RUNPIC_OUTLIERS) {
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no heatmap form", qn_runpic_name(p->kind));
    }
    float *m = malloc((r * c > 0 ? r * c : 1) * sizeof *m);
    if (!m) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", qn_runpic_name(p->kind));
    switch (p->kind) {
    case QN_RUNPIC_WEIGHTS:
        memcpy(m, p->v, r * c * sizeof *m);
        *style = (qn_heat_style){ .cmap = QN_CMAP_COOLWARM, .scale = QN_SCALE_LINEAR, .op = QN_REDUCE_MEAN };
        break;
    case QN_RUNPIC_ERROR:
        memcpy(m, p->v, r * c * sizeof *m);
        style->scale = error_scale(m, r * c);
        break;
    case QN_RUNPIC_OUTLIERS:
        for (size_t i = 0; i < r * c; i++) m[i] = p->mask[i] ? 1.0f : 0.0f;
        style->lo = 0;
        style->hi = 1;
        break;
    default:   /* hessian: one row per layer, NaN past its own width */
        for (size_t l = 0; l < r; l++)
            for (size_t j = 0; j < c; j++) m[l * c + j] = j < p->d[l] ? p->diag[l][j] : NAN;
        style->scale = QN_SCALE_LOG;
    }
    *v = m;
    *rows = r;
    *cols = c;
    return QN_OK;
}

void qn_runpic_heading(const qn_runpic *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %s", k_kinds[p->kind].heading, p->layer_label);
}
