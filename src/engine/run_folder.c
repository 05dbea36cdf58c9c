/* run_folder.c: a quantization run folder read back (see run_folder.h).
   run.jsonl is parsed once at open into plain records; stats tensors are
   checked against the shapes the log gives and copied on first use into
   per-layer caches (a safetensors mapping may hold them unaligned); the
   original model's weight source and the run's model.safetensors are opened on
   the first weight request and kept. */
#include "engine/run_folder.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/model.h"
#include "engine/qmethod.h"
#include "engine/runlog.h"
#include "engine/safetensors.h"

const char *const qn_run_sublayer_names[QN_RUN_SUBLAYERS] = { "q_proj", "k_proj", "v_proj", "o_proj",
                                                              "gate_proj", "up_proj", "down_proj" };

/* Other spellings of each sublayer: Hugging Face with its module, short, GGUF. */
static const char *const k_aliases[QN_RUN_SUBLAYERS][4] = {
    { "self_attn.q_proj", "q", "attn_q", NULL },       { "self_attn.k_proj", "k", "attn_k", NULL },
    { "self_attn.v_proj", "v", "attn_v", NULL },       { "self_attn.o_proj", "o", "attn_output", "attn_o" },
    { "mlp.gate_proj", "gate", "ffn_gate", NULL },     { "mlp.up_proj", "up", "ffn_up", NULL },
    { "mlp.down_proj", "down", "ffn_down", NULL },
};

#define LAYER_PREFIX "model.layers."

typedef struct {                  /* copies of stats tensors, filled on first use */
    float    *diag;               /* (d_in) */
    uint8_t  *mask;               /* (d_out, d_in) */
    float    *codewords;          /* (M, K, g) */
    uint32_t *usage;              /* (M, K) */
    size_t    M, K, g;
} layer_cache;

typedef struct {                  /* "round" events of one linear, before its "layer" event */
    char    name[96];
    double *loss;
    size_t  n, cap;
    int64_t last;                 /* round number of loss[n - 1] */
} round_list;

struct qn_run_folder {
    qn_run_info       info;
    char              dir[4096];
    char              log_path[4200], stats_path[4200], config_path[4200];
    char             *method, *method_label, *model, *model_name, *calib, *options;
    qn_run_layer     *layers;
    size_t            cap_layers;
    round_list       *rounds;     /* (n_rounds) */
    size_t            n_rounds, cap_rounds;
    layer_cache      *cache;      /* (info.n_layers) */
    qn_st_file       *stats;
    qn_quant_config   qcfg;       /* config.json's, when has_model */
    qn_weight_source  orig;       /* the original model, once opened */
    bool              orig_open;
    qn_st_file       *quant;      /* the run's model.safetensors, once opened */
};

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- run.jsonl ------------------------------------------------------------ */

static qn_status bad_event(qn_run_folder *r, size_t i, const char *kind, const char *what, qn_err *err)
{
    return qn_err_set(err, QN_ERR_FORMAT, "%s: event %zu ('%s'): %s", r->log_path, i + 1, kind, what);
}

static round_list *rounds_of(qn_run_folder *r, const char *name)
{
    for (size_t i = 0; i < r->n_rounds; i++)
        if (strcmp(r->rounds[i].name, name) == 0) return &r->rounds[i];
    if (r->n_rounds == r->cap_rounds) {
        size_t cap = r->cap_rounds ? r->cap_rounds * 2 : 16;
        round_list *g = realloc(r->rounds, cap * sizeof *g);
        if (!g) return NULL;
        r->rounds = g;
        r->cap_rounds = cap;
    }
    round_list *l = &r->rounds[r->n_rounds++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    return l;
}

/* A round numbered at or below the last one starts the layer over (a resumed block). */
static qn_status add_round(qn_run_folder *r, size_t i, const json_t *ev, qn_err *err)
{
    const char *name = json_string_value(json_object_get(ev, "name"));
    const json_t *jr = json_object_get(ev, "round"), *jl = json_object_get(ev, "loss");
    if (!name || strlen(name) >= sizeof r->rounds[0].name || !json_is_integer(jr) || !json_is_number(jl))
        return bad_event(r, i, "round", "expected a name, an integer round and a numeric loss", err);
    round_list *l = rounds_of(r, name);
    if (!l) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->log_path);
    int64_t round = json_integer_value(jr);
    if (l->n && round <= l->last) l->n = 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        double *g = realloc(l->loss, cap * sizeof *g);
        if (!g) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->log_path);
        l->loss = g;
        l->cap = cap;
    }
    l->loss[l->n++] = json_number_value(jl);
    l->last = round;
    return QN_OK;
}

static int sublayer_index(const char *s)
{
    for (int k = 0; k < QN_RUN_SUBLAYERS; k++) {
        if (strcmp(s, qn_run_sublayer_names[k]) == 0) return k;
        for (int a = 0; a < 4 && k_aliases[k][a]; a++)
            if (strcmp(s, k_aliases[k][a]) == 0) return k;
    }
    return -1;
}

static double num_or_nan(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static qn_status parse_layer(qn_run_folder *r, size_t i, const json_t *ev, qn_run_layer *L, qn_err *err)
{
    const char *name = json_string_value(json_object_get(ev, "name"));
    const json_t *jb = json_object_get(ev, "block");
    json_int_t d_out = json_integer_value(json_object_get(ev, "d_out"));
    json_int_t d_in = json_integer_value(json_object_get(ev, "d_in"));
    if (!name || !json_is_integer(jb))
        return bad_event(r, i, "layer", "expected a name and an integer block", err);
    if (d_out <= 0 || d_in <= 0 || d_out > (1 << 24) || d_in > (1 << 24))
        return bad_event(r, i, "layer", "d_out and d_in must be integers in 1..16777216", err);
    memset(L, 0, sizeof *L);
    char *end = NULL;
    long block = strncmp(name, LAYER_PREFIX, strlen(LAYER_PREFIX)) == 0
                     ? strtol(name + strlen(LAYER_PREFIX), &end, 10) : -1;
    int sub = end && *end == '.' ? sublayer_index(end + 1) : -1;
    if (strlen(name) >= sizeof L->name || block < 0 || block != json_integer_value(jb) || sub < 0) {
        char what[200];
        snprintf(what, sizeof what, "'%.96s' is not model.layers.<block>.<linear> with block %lld", name,
                 (long long)json_integer_value(jb));
        return bad_event(r, i, "layer", what, err);
    }
    snprintf(L->name, sizeof L->name, "%s", name);
    snprintf(L->part, sizeof L->part, "%s", end + 1);
    snprintf(L->short_name, sizeof L->short_name, "%ld.%s", block, qn_run_sublayer_names[sub]);
    L->block = (int)block;
    L->sublayer = sub;
    L->d_out = (size_t)d_out;
    L->d_in = (size_t)d_in;
    L->relative_error = num_or_nan(ev, "relative_error");
    L->bits = num_or_nan(ev, "bits");
    json_int_t n_out = json_integer_value(json_object_get(ev, "outliers"));
    L->outliers = n_out > 0 ? (size_t)n_out : 0;
    L->outlier_fraction = num_or_nan(ev, "outlier_fraction");
    L->seconds = num_or_nan(ev, "seconds");
    return QN_OK;
}

static qn_status add_layer(qn_run_folder *r, size_t i, const json_t *ev, qn_err *err)
{
    qn_run_layer L;
    qn_status s = parse_layer(r, i, ev, &L, err);
    if (s) return s;
    for (size_t k = 0; k < r->info.n_layers; k++)
        if (strcmp(r->layers[k].name, L.name) == 0) { r->layers[k] = L; return QN_OK; }
    if (r->info.n_layers == r->cap_layers) {
        size_t cap = r->cap_layers ? r->cap_layers * 2 : 64;
        qn_run_layer *g = realloc(r->layers, cap * sizeof *g);
        if (!g) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->log_path);
        r->layers = g;
        r->cap_layers = cap;
    }
    r->layers[r->info.n_layers++] = L;
    return QN_OK;
}

static qn_status take_start(qn_run_folder *r, size_t i, const json_t *ev, qn_err *err)
{
    const char *model = json_string_value(json_object_get(ev, "model"));
    const char *method = json_string_value(json_object_get(ev, "method"));
    const json_t *options = json_object_get(ev, "options");
    if (!model || !method || !json_is_object(options))
        return bad_event(r, i, "start", "expected model, method and options", err);
    free(r->model); free(r->method); free(r->calib); free(r->options);
    r->model = dup_str(model);
    r->method = dup_str(method);
    r->calib = dup_str(json_string_value(json_object_get(ev, "calib")));
    r->options = json_dumps(options, JSON_COMPACT | JSON_SORT_KEYS);
    if (!r->model || !r->method || !r->calib || !r->options)
        return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->log_path);
    return QN_OK;
}

static int by_block_then_sublayer(const void *a, const void *b)
{
    const qn_run_layer *x = a, *y = b;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    return (x->sublayer > y->sublayer) - (x->sublayer < y->sublayer);
}

static qn_status read_log(qn_run_folder *r, qn_err *err)
{
    json_t *events = NULL, *ev;
    qn_status s = qn_runlog_read(r->log_path, &events, err);
    if (s) return s;
    bool started = false;
    size_t i;
    json_array_foreach(events, i, ev) {
        const char *kind = json_string_value(json_object_get(ev, "event"));
        if (!kind) { s = bad_event(r, i, "?", "no \"event\" name", err); break; }
        if (strcmp(kind, "start") == 0 || (strcmp(kind, "resume") == 0 && !started)) {
            s = take_start(r, i, ev, err);
            started = true;
        } else if (strcmp(kind, "layer") == 0) {
            s = add_layer(r, i, ev, err);
        } else if (strcmp(kind, "round") == 0) {
            s = add_round(r, i, ev, err);
        } else if (strcmp(kind, "end") == 0) {
            r->info.finished = true;
            r->info.bits = num_or_nan(ev, "bits");
            r->info.seconds = num_or_nan(ev, "seconds");
        }
        if (s) break;
    }
    json_decref(events);
    if (!s && !started)
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: no start event: not the log of a quench quantize run", r->log_path);
    if (s) return s;
    if (r->info.n_layers) qsort(r->layers, r->info.n_layers, sizeof *r->layers, by_block_then_sublayer);
    double bits = 0, params = 0;
    for (size_t k = 0; k < r->info.n_layers; k++) {
        qn_run_layer *L = &r->layers[k];
        if (L->block + 1 > r->info.n_blocks) r->info.n_blocks = L->block + 1;
        for (size_t j = 0; j < r->n_rounds; j++)
            if (strcmp(r->rounds[j].name, L->name) == 0) {
                L->n_rounds = r->rounds[j].n;
                L->round_loss = r->rounds[j].loss;
            }
        if (L->n_rounds) r->info.has_rounds = true;
        if (isfinite(L->bits)) {
            bits += L->bits * (double)(L->d_out * L->d_in);
            params += (double)(L->d_out * L->d_in);
        }
    }
    if (!r->info.finished) r->info.bits = params > 0 ? bits / params : NAN;
    return QN_OK;
}

/* ---- labels ---------------------------------------------------------------- */

static char *method_label(const char *method, const char *options_json)
{
    char buf[128];
    qn_quant_config q;
    json_t *o = json_loads(options_json, 0, NULL);
    qn_err ignored;
    bool ok = o && qn_qmethod_config_parse(o, "options", &q, &ignored) == QN_OK;
    json_decref(o);
    if (!ok) return dup_str(method);
    char group[32];
    if (q.groupsize) snprintf(group, sizeof group, " g%zu", q.groupsize);
    else snprintf(group, sizeof group, " per-row");
    switch (q.method) {
    case QN_METHOD_RTN: snprintf(buf, sizeof buf, "RTN w%d%s", q.wbits, group); break;
    case QN_METHOD_GPTQ:
        snprintf(buf, sizeof buf, "GPTQ w%d%s%s", q.wbits, group, q.act_order ? " act-order" : "");
        break;
    case QN_METHOD_SPQR:
        if (isfinite(q.outlier_threshold))
            snprintf(buf, sizeof buf, "SpQR w%d%s tau %g", q.wbits, group, q.outlier_threshold);
        else
            snprintf(buf, sizeof buf, "SpQR w%d%s no outliers", q.wbits, group);
        break;
    case QN_METHOD_AQLM:
        snprintf(buf, sizeof buf, "AQLM %dx%d g%zu", q.codebooks, q.codebook_bits, q.group);
        break;
    default: return dup_str(method);
    }
    return dup_str(buf);
}

/* ---- config.json and stats.safetensors ---------------------------------------- */

static qn_status read_config(qn_run_folder *r, qn_err *err)
{
    json_t *root = NULL;
    qn_status s = qn_json_load(r->config_path, &root, err);
    if (s) return s;
    const json_t *qc = json_object_get(root, "quantization_config");
    if (!json_is_object(qc))
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: no quantization_config: not the output of quench quantize",
                       r->config_path);
    else
        s = qn_qmethod_config_parse(qc, r->config_path, &r->qcfg, err);
    json_decref(root);
    return s;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void scan_stats(qn_run_folder *r)
{
    for (size_t i = 0; i < qn_st_count(r->stats); i++) {
        const char *name = qn_st_at(r->stats, i)->name;
        if (has_suffix(name, ".hessian_diag")) r->info.has_hessian = true;
        if (has_suffix(name, ".outlier_mask")) r->info.has_outlier_masks = true;
        if (has_suffix(name, ".codebooks")) r->info.has_codebooks = true;
    }
}

/* The stats tensor "<base>.<part>": dtype dt, ndim dims of the given shape. */
static qn_status stat_tensor(qn_run_folder *r, const qn_run_layer *L, const char *part, qn_dtype dt, int ndim,
                             const int64_t *shape, const qn_st_tensor **out, qn_err *err)
{
    if (!r->stats)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: missing: the run has not finished, no statistics yet",
                          r->stats_path);
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, part);
    const qn_st_tensor *t = qn_st_find(r->stats, name);
    if (!t) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no tensor '%s'", r->stats_path, name);
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = shape[d] < 0 ? t->shape[d] > 0 : t->shape[d] == shape[d];
    if (!ok) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < ndim; d++)
            if (shape[d] < 0) snprintf(want + strlen(want), sizeof want - strlen(want), d ? ", n" : "n");
            else snprintf(want + strlen(want), sizeof want - strlen(want), d ? ", %lld" : "%lld", (long long)shape[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), d ? ", %lld" : "%lld", (long long)t->shape[d]);
        return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' is %s [%s], expected %s [%s]", r->stats_path, name,
                          qn_dtype_name(t->dtype), got, qn_dtype_name(dt), want);
    }
    *out = t;
    return QN_OK;
}

/* "a/b/stories260K/" -> "stories260K" */
static char *last_component(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    return strndup(path + b, n - b);
}

/* ---- open / close ----------------------------------------------------------- */

static qn_status join(char *buf, size_t cap, const char *dir, const char *name, qn_err *err)
{
    if (!qn_path_join(buf, cap, dir, name)) return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    return QN_OK;
}

qn_status qn_run_open(qn_run_folder **out, const char *dir, qn_err *err)
{
    *out = NULL;
    qn_status s;
    qn_run_folder *r = calloc(1, sizeof *r);
    if (!r) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", dir);
    r->info.bits = r->info.seconds = NAN;
    if (strlen(dir) >= sizeof r->dir) { s = qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir); goto fail; }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (!qn_path_is_dir(dir)) {
        s = qn_err_set(err, QN_ERR_IO, "%s: %s", dir,
                       qn_path_exists(dir) ? "not a directory (a run folder written by quench quantize)"
                                           : "no such directory");
        goto fail;
    }
    if ((s = join(r->log_path, sizeof r->log_path, dir, "run.jsonl", err)) ||
        (s = join(r->stats_path, sizeof r->stats_path, dir, "stats.safetensors", err)) ||
        (s = join(r->config_path, sizeof r->config_path, dir, "config.json", err)))
        goto fail;
    if (!qn_path_exists(r->log_path)) {
        s = qn_err_set(err, QN_ERR_IO, "%s: missing: %s is not a run folder of quench quantize", r->log_path, dir);
        goto fail;
    }
    if ((s = read_log(r, err))) goto fail;
    r->model_name = last_component(r->model);
    r->method_label = method_label(r->method, r->options);
    r->cache = calloc(r->info.n_layers + 1, sizeof *r->cache);
    if (!r->model_name || !r->method_label || !r->cache) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if (qn_path_exists(r->config_path)) {
        if ((s = read_config(r, err))) goto fail;
        char path[4200];
        if ((s = join(path, sizeof path, dir, "model.safetensors", err))) goto fail;
        r->info.has_model = qn_path_exists(path);
    }
    if (qn_path_exists(r->stats_path)) {
        if ((s = qn_st_open(&r->stats, r->stats_path, err))) goto fail;
        scan_stats(r);
    }
    r->info.dir = r->dir;
    r->info.method = r->method;
    r->info.method_label = r->method_label;
    r->info.model = r->model;
    r->info.model_name = r->model_name;
    r->info.calib = r->calib;
    r->info.options = r->options;
    r->info.layers = r->layers;
    *out = r;
    return QN_OK;
fail:
    qn_run_close(r);
    return s;
}

void qn_run_close(qn_run_folder *r)
{
    if (!r) return;
    for (size_t i = 0; r->cache && i < r->info.n_layers; i++) {
        layer_cache *c = &r->cache[i];
        free(c->diag); free(c->mask); free(c->codewords); free(c->usage);
    }
    for (size_t i = 0; i < r->n_rounds; i++) free(r->rounds[i].loss);
    if (r->orig_open && r->orig.close) r->orig.close(r->orig.ctx);
    qn_st_close(r->quant);
    qn_st_close(r->stats);
    free(r->cache); free(r->rounds); free(r->layers);
    free(r->method); free(r->method_label); free(r->model); free(r->model_name); free(r->calib); free(r->options);
    free(r);
}

const qn_run_info *qn_run_get_info(const qn_run_folder *run)
{
    return &run->info;
}

/* ---- layer names -------------------------------------------------------------- */

/* "3.up", "layers.3.mlp.up_proj", "blk.3.ffn_up": block and sublayer; false otherwise. */
static bool parse_short(const char *name, long *block, int *sub)
{
    static const char *const prefixes[] = { LAYER_PREFIX, "layers.", "blk.", "block." };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) { name += strlen(prefixes[i]); break; }
    if (*name < '0' || *name > '9') return false;
    char *end;
    *block = strtol(name, &end, 10);
    if (*end != '.') return false;
    char rest[64];
    snprintf(rest, sizeof rest, "%s", end + 1);
    if (has_suffix(rest, ".weight")) rest[strlen(rest) - strlen(".weight")] = 0;
    *sub = sublayer_index(rest);
    return *sub >= 0;
}

qn_status qn_run_find_layer(const qn_run_folder *r, const char *name, size_t *index, qn_err *err)
{
    char base[128];
    snprintf(base, sizeof base, "%s", name ? name : "");
    if (has_suffix(base, ".weight")) base[strlen(base) - strlen(".weight")] = 0;
    for (size_t i = 0; i < r->info.n_layers; i++)
        if (strcmp(r->layers[i].name, base) == 0 || strcmp(r->layers[i].short_name, base) == 0) {
            *index = i;
            return QN_OK;
        }
    long block;
    int sub;
    if (parse_short(base, &block, &sub))
        for (size_t i = 0; i < r->info.n_layers; i++)
            if (r->layers[i].block == block && r->layers[i].sublayer == sub) {
                *index = i;
                return QN_OK;
            }
    if (r->info.n_layers == 0)
        return qn_err_set(err, QN_ERR_ARG, "%s: no layer '%s': the run has no quantized layer yet", r->log_path,
                          base);
    return qn_err_set(err, QN_ERR_ARG,
                      "%s: no layer '%s': this run has BLOCK.LINEAR for BLOCK %d..%d and LINEAR one of q_proj, "
                      "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (e.g. %s; also q, up, "
                      "model.layers.%d.mlp.up_proj, blk.%d.ffn_up)",
                      r->log_path, base, r->layers[0].block, r->info.n_blocks - 1,
                      r->layers[r->info.n_layers - 1].short_name, r->layers[0].block, r->layers[0].block);
}

size_t qn_run_worst_layer(const qn_run_folder *r)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < r->info.n_layers; i++)
        if (isfinite(r->layers[i].relative_error) &&
            (best == (size_t)-1 || r->layers[i].relative_error > r->layers[best].relative_error))
            best = i;
    return best == (size_t)-1 && r->info.n_layers ? 0 : best;
}

/* ---- statistics --------------------------------------------------------------- */

/* The layer a name resolves to, and its cache. */
static qn_status find_cached(qn_run_folder *r, const char *layer, const qn_run_layer **L, layer_cache **c, qn_err *err)
{
    size_t i;
    qn_status s = qn_run_find_layer(r, layer, &i, err);
    if (s) return s;
    *L = &r->layers[i];
    *c = &r->cache[i];
    return QN_OK;
}

qn_status qn_run_hessian_diag(qn_run_folder *r, const char *layer, const float **diag, size_t *n, qn_err *err)
{
    const qn_run_layer *L;
    layer_cache *c;
    qn_status s = find_cached(r, layer, &L, &c, err);
    if (s) return s;
    if (!c->diag) {
        const qn_st_tensor *t;
        int64_t shape[1] = { (int64_t)L->d_in };
        if ((s = stat_tensor(r, L, "hessian_diag", QN_DTYPE_F32, 1, shape, &t, err))) return s;
        if (!(c->diag = malloc(L->d_in * sizeof *c->diag))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->stats_path);
        memcpy(c->diag, t->data, L->d_in * sizeof *c->diag);
    }
    *diag = c->diag;
    *n = L->d_in;
    return QN_OK;
}

qn_status qn_run_outlier_mask(qn_run_folder *r, const char *layer, const uint8_t **mask, size_t *rows, size_t *cols,
                              qn_err *err)
{
    const qn_run_layer *L;
    layer_cache *c;
    qn_status s = find_cached(r, layer, &L, &c, err);
    if (s) return s;
    if (!c->mask) {
        if (!r->info.has_outlier_masks)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no outlier masks: outliers are SpQR's, this run is %s",
                              r->stats_path, r->method_label);
        const qn_st_tensor *t;
        size_t rb = (L->d_in + 7) / 8;
        int64_t shape[2] = { (int64_t)L->d_out, (int64_t)rb };
        if ((s = stat_tensor(r, L, "outlier_mask", QN_DTYPE_U8, 2, shape, &t, err))) return s;
        if (!(c->mask = malloc(L->d_out * L->d_in))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->stats_path);
        const uint8_t *bits = t->data;   /* LSB-first within each byte of a row */
        for (size_t row = 0; row < L->d_out; row++)
            for (size_t col = 0; col < L->d_in; col++)
                c->mask[row * L->d_in + col] = (bits[row * rb + col / 8] >> (col % 8)) & 1u;
    }
    *mask = c->mask;
    *rows = L->d_out;
    *cols = L->d_in;
    return QN_OK;
}

qn_status qn_run_codebooks(qn_run_folder *r, const char *layer, const float **codewords, const uint32_t **usage,
                           size_t *M, size_t *K, size_t *g, qn_err *err)
{
    const qn_run_layer *L;
    layer_cache *c;
    qn_status s = find_cached(r, layer, &L, &c, err);
    if (s) return s;
    if (!c->codewords) {
        if (!r->info.has_codebooks)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: no codebooks: codebooks are AQLM's, this run is %s",
                              r->stats_path, r->method_label);
        const qn_st_tensor *cb, *us;
        int64_t any3[3] = { -1, -1, -1 };
        if ((s = stat_tensor(r, L, "codebooks", QN_DTYPE_F32, 3, any3, &cb, err))) return s;
        int64_t ushape[2] = { cb->shape[0], cb->shape[1] };
        if ((s = stat_tensor(r, L, "codebook_usage", QN_DTYPE_I32, 2, ushape, &us, err))) return s;
        size_t m = (size_t)cb->shape[0], k = (size_t)cb->shape[1], gg = (size_t)cb->shape[2];
        c->codewords = malloc(m * k * gg * sizeof *c->codewords);
        c->usage = malloc(m * k * sizeof *c->usage);
        if (!c->codewords || !c->usage) {
            free(c->codewords); free(c->usage);
            c->codewords = NULL; c->usage = NULL;
            return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", r->stats_path);
        }
        memcpy(c->codewords, cb->data, m * k * gg * sizeof *c->codewords);
        for (size_t j = 0; j < m * k; j++) {
            int32_t u;
            memcpy(&u, (const char *)us->data + j * sizeof u, sizeof u);
            c->usage[j] = u > 0 ? (uint32_t)u : 0;
        }
        c->M = m; c->K = k; c->g = gg;
    }
    *codewords = c->codewords;
    *usage = c->usage;
    *M = c->M; *K = c->K; *g = c->g;
    return QN_OK;
}

/* ---- weights ------------------------------------------------------------------ */

/* The original model: as the log names it, else relative to the run folder. */
static qn_status open_original(qn_run_folder *r, qn_err *err)
{
    char path[8300];
    const char *p = r->model;
    if (!qn_path_exists(p) && r->model[0] != '/') {
        snprintf(path, sizeof path, "%s/%s", r->dir, r->model);
        if (qn_path_exists(path)) p = path;
    }
    if (!qn_path_exists(p))
        return qn_err_set(err, QN_ERR_IO, "%s: the original model '%s' is not there (a relative path is looked "
                          "up from the current directory, then from the run folder)", r->log_path, r->model);
    qn_config cfg;
    qn_source_kind kind;
    qn_status s = qn_model_source_open(p, &cfg, &r->orig, NULL, &kind, err);
    if (s) return qn_err_prefix(err, "original model of %s: ", r->dir);
    r->orig_open = true;
    return QN_OK;
}

static qn_status open_quantized(qn_run_folder *r, qn_err *err)
{
    char path[4200];
    qn_status s = join(path, sizeof path, r->dir, "model.safetensors", err);
    if (s) return s;
    if (!r->info.has_model)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: missing: the run has not written its model yet",
                          qn_path_exists(r->config_path) ? path : r->config_path);
    return qn_st_open(&r->quant, path, err);
}

static qn_status shape_mismatch(const char *file, const char *tensor, int ndim, const int64_t *shape,
                                const qn_run_layer *L, qn_err *err)
{
    return qn_err_set(err, QN_ERR_SHAPE, "%s: tensor '%s' is [%lld, %lld], the run logged [%zu, %zu]", file, tensor,
                      (long long)shape[0], (long long)(ndim == 2 ? shape[1] : 1), L->d_out, L->d_in);
}

/* The original model's tensor, as f32 in Hugging Face layout whatever its source. */
static qn_status original_linear(const qn_weight_source *src, const char *tensor, const qn_run_layer *L, float *W,
                                 qn_err *err)
{
    qn_f32_tensor t = { 0 };
    qn_status s = src->get(src->ctx, tensor, &t, err);
    if (s) return s;
    if (t.ndim != 2 || t.shape[0] != (int64_t)L->d_out || t.shape[1] != (int64_t)L->d_in)
        s = shape_mismatch(src->path, tensor, t.ndim, t.shape, L, err);
    else
        memcpy(W, t.data, L->d_out * L->d_in * sizeof *W);
    qn_f32_tensor_done(&t);
    return s;
}

/* The run's linear: stored dense (a float dtype) or quantized (dequantized by its method). */
static qn_status run_linear(qn_run_folder *r, const char *tensor, const qn_run_layer *L, float *W, qn_err *err)
{
    const char *file = qn_st_path(r->quant);
    const qn_st_tensor *t = qn_st_find(r->quant, tensor);
    if (t) {
        if (!qn_dtype_is_float(t->dtype))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' is %s, expected a float type", file, tensor,
                              qn_dtype_name(t->dtype));
        if (t->ndim != 2 || t->shape[0] != (int64_t)L->d_out || t->shape[1] != (int64_t)L->d_in)
            return shape_mismatch(file, tensor, t->ndim, t->shape, L, err);
        qn_dtype_to_f32(t->dtype, t->data, W, L->d_out * L->d_in);
        return QN_OK;
    }
    qn_raw_lookup lk = qn_raw_lookup_st(r->quant);
    if (!qn_qstore_has(lk, L->name))
        return qn_err_set(err, QN_ERR_FORMAT, "%s: tensor '%s' is missing (neither dense nor quantized)", file, tensor);
    qn_status s = qn_qmethod_dequantize(&r->qcfg, lk, L->name, L->d_out, L->d_in, W, err);
    return s ? qn_err_prefix_path(err, r->dir) : QN_OK;
}

qn_status qn_run_weights(qn_run_folder *r, const char *layer, bool original, float **W, size_t *rows, size_t *cols,
                         qn_err *err)
{
    *W = NULL;
    size_t i;
    qn_status s = qn_run_find_layer(r, layer, &i, err);
    if (s) return s;
    const qn_run_layer *L = &r->layers[i];
    if (original && !r->orig_open && (s = open_original(r, err))) return s;
    if (!original && !r->quant && (s = open_quantized(r, err))) return s;
    float *w = malloc(L->d_out * L->d_in * sizeof *w);
    if (!w) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu x %zu", r->dir, L->d_out, L->d_in);
    char tensor[128];
    snprintf(tensor, sizeof tensor, "%s.weight", L->name);
    s = original ? original_linear(&r->orig, tensor, L, w, err) : run_linear(r, tensor, L, w, err);
    if (s) { free(w); return s; }
    *W = w;
    *rows = L->d_out;
    *cols = L->d_in;
    return QN_OK;
}

qn_status qn_run_error_map(qn_run_folder *r, const char *layer, float **E, size_t *rows, size_t *cols, qn_err *err)
{
    *E = NULL;
    const float *h;
    size_t n, ro, co, rq, cq;
    float *W = NULL, *Q = NULL;
    qn_status s = qn_run_hessian_diag(r, layer, &h, &n, err);
    if (!s) s = qn_run_weights(r, layer, true, &W, &ro, &co, err);
    if (!s) s = qn_run_weights(r, layer, false, &Q, &rq, &cq, err);
    if (s) { free(W); free(Q); return s; }
    for (size_t row = 0; row < ro; row++)
        for (size_t j = 0; j < co; j++) {
            double d = (double)W[row * co + j] - (double)Q[row * co + j];
            W[row * co + j] = (float)(d * d * h[j]);
        }
    free(Q);
    *E = W;
    *rows = ro;
    *cols = co;
    return QN_OK;
}
