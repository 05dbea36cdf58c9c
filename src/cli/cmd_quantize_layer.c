/* cmd_quantize_layer.c: `quench quantize-layer LAYER.safetensors --method rtn|gptq|spqr|aqlm
   [options] [--json]`: quantizes one layer file (weight + hessian) and prints the
   relative error trace(dW H dW^T) / trace(W H W^T), bits per weight, outliers and
   wall seconds; --json adds one JSON object as the last line.
   Options follow the SpQR research code's main.py, spelled with dashes. Each method
   is one row of k_methods: its name, the options it accepts, and a run function
   that turns the parsed options into its engine options. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/args.h"
#include "cli/layer_run.h"
#include "cli/progress.h"
#include "cli/session.h"
#include "engine/aqlm.h"
#include "engine/gptq.h"
#include "engine/layer_file.h"
#include "engine/qmethod.h"
#include "engine/rtn.h"
#include "engine/spqr.h"
#include "kernels/linear.h"

static const char k_usage[] =
    "quench quantize-layer LAYER.safetensors --method rtn|gptq|spqr|aqlm [--wbits B] [--groupsize|--beta1 N] "
    "[--qq-groupsize|--beta2 N] [--qq-bits B] [--qq-scale-bits B] [--qq-zero-bits B] "
    "[--outlier-threshold TAU|inf] [--permutation-order identity|act_order] [--act-order] [--percdamp F] "
    "[--blocksize N] [--plain-stats] [--codebooks M --codebook-bits B --group G [--out-group 1] [--beam K] [--tol T] [--seed S]] "
    "[--threads T] [--out DIR [--name LINEAR]] [--json]";

static const char k_help[] =
    "usage: quench quantize-layer LAYER.safetensors --method rtn|gptq|spqr|aqlm [options]\n"
    "Quantizes one layer file (tensors `weight` (d_out, d_in) and `hessian` (d_in, d_in), as the SpQR and\n"
    "AQLM research code save them) and prints the relative error trace(dW H dW^T) / trace(W H W^T),\n"
    "bits per weight, outliers and wall seconds. Options follow the SpQR code's main.py with dashes.\n"
    "\n"
    "  --method M           rtn, gptq, spqr or aqlm                                   required\n"
    "  --wbits B            bits per weight code (rtn/gptq/spqr)                      default 4 (spqr 3)\n"
    "  --groupsize|--beta1 N   weights per scale group (0 = whole row)                default 0 (spqr 16)\n"
    "  --qq-groupsize|--beta2 N  spqr: statistics per group of N rows                 default 16\n"
    "  --qq-bits B          spqr: bits of the quantized scales and zeros (16 = fp16)  default 3\n"
    "  --qq-scale-bits B, --qq-zero-bits B   the two separately\n"
    "  --outlier-threshold TAU|inf           spqr: outlier threshold tau              default 0.2\n"
    "  --permutation-order identity|act_order, --act-order   default gptq identity, spqr act_order\n"
    "  --percdamp F         Hessian damping relative to its mean diagonal             default 0.01 (spqr 1)\n"
    "  --blocksize N        columns per GPTQ block                                    default 128\n"
    "  --plain-stats        spqr: the research code's statistics, without refinement\n"
    "  --codebooks M --codebook-bits B --group G   aqlm: M codebooks of 2^B codes, groups of G\n"
    "  --out-group N, --beam K, --tol T, --seed S   aqlm: output group, beam width, stop tolerance, seed\n"
    "  --threads T          worker threads (0 = quench's default for this machine)  default 0\n"
    "  --out DIR            also write a run folder for this one layer (run.jsonl, stats.safetensors),\n"
    "                       which show, export-png and the workbench's Inspect open (all but the\n"
    "                       weights and error pictures: the original is in the layer file)\n"
    "  --name LINEAR        the layer's name there                default from the file name\n"
    "                       (x-b2-k_proj.safetensors: model.layers.2.self_attn.k_proj), else block 0 q_proj\n"
    "  --json               stdout holds one JSON object (relative_error, bits, bits_stored, outliers,\n"
    "                       outlier_fraction, seconds); the text goes to stderr\n"
    "\n"
    "examples:\n"
    "  quench quantize-layer ../shared/layers/synthetic-r256.safetensors --method spqr --wbits 3 --beta1 16 --beta2 16\n"
    "  quench quantize-layer ../shared/layers/synthetic-r256.safetensors --method aqlm --codebooks 1 --codebook-bits 8 --group 8 --json\n";

/* Options a method may accept (a bit each), so a misplaced one is an error, not ignored. */
enum {
    OPT_WBITS = 1 << 0, OPT_GROUPSIZE = 1 << 1, OPT_QQ_GROUPSIZE = 1 << 2, OPT_QQ_SCALE = 1 << 3,
    OPT_QQ_ZERO = 1 << 4, OPT_OUTLIER = 1 << 5, OPT_ORDER = 1 << 6, OPT_PERCDAMP = 1 << 7, OPT_BLOCKSIZE = 1 << 8, OPT_PLAIN = 1 << 10,
    OPT_AQLM = 1 << 9,   /* --codebooks, --codebook-bits, --group, --out-group, --beam, --tol, --seed */
};

static const char *const k_opt_names[] = {
    "--wbits", "--groupsize", "--qq-groupsize", "--qq-scale-bits", "--qq-zero-bits", "--outlier-threshold",
    "--permutation-order", "--percdamp", "--blocksize", "--codebooks (and the other AQLM options)",
};

typedef struct {
    unsigned set;              /* OPT_* given on the command line */
    size_t   wbits, groupsize, qq_groupsize, qq_scale_bits, qq_zero_bits, blocksize;
    double   outlier_threshold, percdamp;
    bool     act_order;
    qn_aqlm_opts aqlm;         /* --method aqlm: qn_aqlm_opts_default() plus what was given */
} layer_opts;

typedef struct {
    qn_layer_result res;
    double          bits_stored;   /* everything in the compressed form (row pointers, permutation) */
    char            config[192];   /* what ran, for the text output */
    qn_quant_config q;             /* the same, for a run folder's log (--out) */
    qn_tensor_set  *stats;         /* --out: the method's statistics go here as "<base>.*"; else NULL */
    const char     *base;          /* the layer's name in the run folder */
} method_out;

typedef qn_status (*method_run)(const layer_opts *o, const qn_layer_problem *p, qn_event_sink sink,
                                const atomic_bool *cancel, method_out *out, qn_err *err);

static const char *order_name(bool act_order)
{
    return act_order ? "act_order" : "identity";
}

static qn_status run_rtn(const layer_opts *o, const qn_layer_problem *p, qn_event_sink sink,
                         const atomic_bool *cancel, method_out *out, qn_err *err)
{
    (void)sink;
    (void)cancel;
    qn_rtn_opts ro = qn_rtn_opts_default();
    if (o->set & OPT_WBITS) ro.bits = (int)o->wbits;
    if (o->set & OPT_GROUPSIZE) ro.groupsize = o->groupsize;
    qn_rtn_layer L = {0};
    qn_status s = qn_rtn_quantize_layer(p, &ro, &out->res, &L, err);
    if (s != QN_OK) return s;
    out->bits_stored = qn_rtn_bits_stored(&L);
    snprintf(out->config, sizeof out->config, "rtn w%d groupsize %zu", ro.bits, ro.groupsize);
    out->q = (qn_quant_config){ .method = QN_METHOD_RTN, .wbits = ro.bits, .groupsize = ro.groupsize };
    qn_rtn_layer_done(&L);
    return QN_OK;
}

static qn_status run_gptq(const layer_opts *o, const qn_layer_problem *p, qn_event_sink sink,
                          const atomic_bool *cancel, method_out *out, qn_err *err)
{
    qn_gptq_opts go = qn_gptq_opts_default();
    if (o->set & OPT_WBITS) go.bits = (int)o->wbits;
    if (o->set & OPT_GROUPSIZE) go.groupsize = o->groupsize;
    if (o->set & OPT_PERCDAMP) go.percdamp = o->percdamp;
    if (o->set & OPT_ORDER) go.act_order = o->act_order;
    if (o->set & OPT_BLOCKSIZE) go.blocksize = o->blocksize;
    qn_rtn_layer L = {0};
    qn_status s = qn_gptq_quantize_layer(p, &go, sink, cancel, &out->res, &L, err);
    if (s != QN_OK) return s;
    out->bits_stored = qn_rtn_bits_stored(&L);
    snprintf(out->config, sizeof out->config, "gptq w%d groupsize %zu %s damp %g", go.bits, go.groupsize,
             order_name(go.act_order), go.percdamp);
    out->q = (qn_quant_config){ .method = QN_METHOD_GPTQ, .wbits = go.bits, .groupsize = go.groupsize,
                                .percdamp = go.percdamp, .act_order = go.act_order };
    qn_rtn_layer_done(&L);
    return QN_OK;
}

/* SpQR's outliers as the run folder keeps them: (d_out, ceil(d_in / 8)) bits
   in the original column order (the CSR holds sweep columns). */
static qn_status add_outlier_mask(qn_tensor_set *stats, const char *base, const qn_spqr_layer *L, size_t d_out,
                                  size_t d_in, qn_err *err)
{
    size_t rb = (d_in + 7) / 8;
    uint8_t *mask = calloc(d_out * rb + 1, 1);
    if (!mask) return qn_err_set(err, QN_ERR_NOMEM, "out of memory");
    for (size_t r = 0; L->row_ptr && r < d_out; r++)
        for (uint32_t k = L->row_ptr[r]; k < L->row_ptr[r + 1]; k++) {
            size_t c = L->perm ? L->perm[L->col_idx[k]] : L->col_idx[k];
            mask[r * rb + c / 8] |= (uint8_t)(1u << (c % 8));
        }
    char name[256];
    snprintf(name, sizeof name, "%s.outlier_mask", base);
    int64_t shape[2] = { (int64_t)d_out, (int64_t)rb };
    return qn_tensor_set_add(stats, name, QN_DTYPE_U8, 2, shape, mask, 1, err);
}

static qn_status run_spqr(const layer_opts *o, const qn_layer_problem *p, qn_event_sink sink,
                          const atomic_bool *cancel, method_out *out, qn_err *err)
{
    qn_spqr_opts so = qn_spqr_opts_default();
    if (o->set & OPT_WBITS) so.bits = (int)o->wbits;
    if (o->set & OPT_GROUPSIZE) so.beta1 = o->groupsize;
    if (o->set & OPT_QQ_GROUPSIZE) so.beta2 = o->qq_groupsize;
    if (o->set & OPT_QQ_SCALE) so.qq_scale_bits = (int)o->qq_scale_bits;
    if (o->set & OPT_QQ_ZERO) so.qq_zero_bits = (int)o->qq_zero_bits;
    if (o->set & OPT_OUTLIER) so.outlier_threshold = o->outlier_threshold;
    if (o->set & OPT_PERCDAMP) so.percdamp = o->percdamp;
    if (o->set & OPT_ORDER) so.act_order = o->act_order;
    if (o->set & OPT_BLOCKSIZE) so.blocksize = o->blocksize;
    if (o->set & OPT_PLAIN) so.refine_stats = false;
    qn_spqr_layer L = {0};
    qn_status s = qn_spqr_quantize_layer(p, &so, sink, cancel, &out->res, &L, err);
    if (s != QN_OK) return s;
    out->bits_stored = qn_spqr_bits_stored(&L);
    snprintf(out->config, sizeof out->config, "spqr w%d beta1 %zu beta2 %zu stats %d/%d bits%s tau %g %s damp %g",
             so.bits, L.beta1, L.beta2, so.qq_scale_bits, so.qq_zero_bits, so.refine_stats ? " refined" : "",
             so.outlier_threshold, order_name(so.act_order), so.percdamp);
    out->q = (qn_quant_config){ .method = QN_METHOD_SPQR, .wbits = so.bits, .groupsize = L.beta1,
                                .qq_groupsize = L.beta2, .qq_scale_bits = so.qq_scale_bits,
                                .qq_zero_bits = so.qq_zero_bits, .outlier_threshold = so.outlier_threshold,
                                .act_order = so.act_order, .percdamp = so.percdamp, .plain_stats = !so.refine_stats };
    if (out->stats) s = add_outlier_mask(out->stats, out->base, &L, p->d_out, p->d_in, err);
    qn_spqr_layer_done(&L);
    if (s != QN_OK) return s;
    return QN_OK;
}

/* --method aqlm: options as the AQLM research code names them (num_codebooks,
   nbits_per_codebook, in_group_size, out_group_size, beam_size,
   relative_mse_tolerance), parsed into o->aqlm as they come. */
static bool parse_aqlm_opt(const char *name, const char *val, qn_aqlm_opts *a)
{
    const char *cmd = "quantize-layer";
    size_t v;
    uint64_t seed;
    if (!strcmp(name, "codebooks")) { if (!qn_arg_size(cmd, "--codebooks", val, 1, 64, &v)) return false; a->M = (int)v; }
    else if (!strcmp(name, "codebook-bits")) {
        if (!qn_arg_size(cmd, "--codebook-bits", val, 1, QN_AQLM_MAX_BITS, &v)) return false;
        a->B = (int)v;
    } else if (!strcmp(name, "group")) { if (!qn_arg_size(cmd, "--group", val, 1, 1 << 20, &a->g)) return false; }
    else if (!strcmp(name, "out-group")) { if (!qn_arg_size(cmd, "--out-group", val, 1, 1 << 20, &a->out_group)) return false; }
    else if (!strcmp(name, "beam")) { if (!qn_arg_size(cmd, "--beam", val, 1, 1024, &v)) return false; a->beam = (int)v; }
    else if (!strcmp(name, "tol")) { if (!qn_arg_float(cmd, "--tol", val, 0, 0.999999, &a->tol)) return false; }
    else if (!strcmp(name, "seed")) { if (!qn_arg_u64(cmd, "--seed", val, &seed)) return false; a->seed = seed; }
    return true;
}

static qn_status run_aqlm(const layer_opts *o, const qn_layer_problem *p, qn_event_sink sink,
                          const atomic_bool *cancel, method_out *out, qn_err *err)
{
    qn_aqlm_result r = {0};
    qn_status s = qn_aqlm_quantize(p, &o->aqlm, sink, cancel, &r, err);
    if (s != QN_OK) return s;
    out->res = r.layer;                  /* W_hat moves to out */
    r.layer.W_hat = NULL;
    out->bits_stored = r.layer.bits;     /* codes, fp16 codebooks and scales: all counted */
    snprintf(out->config, sizeof out->config, "aqlm %dx%d g%zu beam %d tol %g seed %llu, %d rounds", r.M, r.B, r.g,
             o->aqlm.beam, o->aqlm.tol, (unsigned long long)o->aqlm.seed, r.n_rounds);
    out->q = (qn_quant_config){ .method = QN_METHOD_AQLM, .codebooks = r.M, .codebook_bits = r.B, .group = r.g,
                                .beam = o->aqlm.beam, .tol = o->aqlm.tol };
    if (out->stats && (s = qn_qmethod_aqlm_stats(out->stats, out->base, &r, err))) {
        qn_aqlm_result_done(&r);
        return s;
    }
    qn_aqlm_result_done(&r);
    return QN_OK;
}

static const struct {
    const char *name;
    unsigned    accepts;   /* OPT_* */
    method_run  run;
} k_methods[] = {
    { "rtn", OPT_WBITS | OPT_GROUPSIZE, run_rtn },
    { "gptq", OPT_WBITS | OPT_GROUPSIZE | OPT_PERCDAMP | OPT_ORDER | OPT_BLOCKSIZE, run_gptq },
    { "spqr", OPT_WBITS | OPT_GROUPSIZE | OPT_QQ_GROUPSIZE | OPT_QQ_SCALE | OPT_QQ_ZERO | OPT_OUTLIER | OPT_ORDER |
              OPT_PERCDAMP | OPT_BLOCKSIZE | OPT_PLAIN, run_spqr },
    { "aqlm", OPT_AQLM, run_aqlm },
};

/* "inf" or a number >= 0. */
static bool parse_threshold(const char *val, double *out)
{
    if (strcasecmp(val, "inf") == 0 || strcasecmp(val, "infinity") == 0) { *out = INFINITY; return true; }
    return qn_arg_float("quantize-layer", "--outlier-threshold", val, 0, 1e30, out);
}

/* 1..8, or 16 for statistics kept in fp16. */
static bool parse_stat_bits(const char *opt, const char *val, size_t *out)
{
    if (strcmp(val, "16") == 0) { *out = QN_SPQR_FP16_STATS; return true; }
    return qn_arg_size("quantize-layer", opt, val, 1, QN_RTN_MAX_BITS, out);
}

static void print_result(const char *path, const method_out *m, bool json)
{
    const qn_layer_result *r = &m->res;
    FILE *h = json ? stderr : stdout;
    fprintf(h, "%s: %s\n", path, m->config);
    fprintf(h, "relative error  %.6f\n", r->relative_error);
    fprintf(h, "bits per weight %.4f (%.4f with row pointers, permutation and per-row statistics)\n", r->bits,
            m->bits_stored);
    fprintf(h, "outliers        %zu (%.4f%%)\n", r->n_outliers, 100.0 * r->outlier_fraction);
    fprintf(h, "seconds         %.3f\n", r->seconds);
    if (!json) return;
    json_t *o = json_pack("{s:s, s:f, s:f, s:f, s:I, s:f, s:f}", "layer", path, "relative_error", r->relative_error,
                          "bits", r->bits, "bits_stored", m->bits_stored, "outliers", (json_int_t)r->n_outliers,
                          "outlier_fraction", r->outlier_fraction, "seconds", r->seconds);
    json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    putchar('\n');
    json_decref(o);
}

int qn_cmd_quantize_layer(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "method", required_argument, 0, 'm' }, { "wbits", required_argument, 0, 'w' },
        { "groupsize", required_argument, 0, 'g' }, { "beta1", required_argument, 0, 'g' },
        { "qq-groupsize", required_argument, 0, 'G' }, { "beta2", required_argument, 0, 'G' },
        { "qq-bits", required_argument, 0, 'q' }, { "qq-scale-bits", required_argument, 0, 's' },
        { "qq-zero-bits", required_argument, 0, 'z' }, { "outlier-threshold", required_argument, 0, 'o' },
        { "permutation-order", required_argument, 0, 'p' }, { "act-order", no_argument, 0, 'a' },
        { "percdamp", required_argument, 0, 'd' }, { "blocksize", required_argument, 0, 'b' },
        { "threads", required_argument, 0, 'T' }, { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' },
        { "plain-stats", no_argument, 0, 'P' }, { "out", required_argument, 0, 'O' },
        { "name", required_argument, 0, 'N' },
        { "codebooks", required_argument, 0, 'A' }, { "codebook-bits", required_argument, 0, 'A' },
        { "group", required_argument, 0, 'A' }, { "out-group", required_argument, 0, 'A' },
        { "beam", required_argument, 0, 'A' }, { "tol", required_argument, 0, 'A' }, { "seed", required_argument, 0, 'A' },
        { 0, 0, 0, 0 } };
    const char *cmd = "quantize-layer", *method = NULL, *out_dir = NULL, *name = NULL;
    layer_opts o = { .aqlm = qn_aqlm_opts_default() };
    size_t threads = 0;
    bool json = false;
    int ch, li;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
        switch (ch) {
        case 'A': if (!parse_aqlm_opt(longopts[li].name, optarg, &o.aqlm)) return 2;
                  o.set |= OPT_AQLM; break;
        case 'm': method = optarg; break;
        case 'w': if (!qn_arg_size(cmd, "--wbits", optarg, 1, QN_RTN_MAX_BITS, &o.wbits)) return 2;
                  o.set |= OPT_WBITS; break;
        case 'g': if (!qn_arg_size(cmd, "--groupsize", optarg, 0, 1 << 24, &o.groupsize)) return 2;
                  o.set |= OPT_GROUPSIZE; break;
        case 'G': if (!qn_arg_size(cmd, "--qq-groupsize", optarg, 1, 1 << 24, &o.qq_groupsize)) return 2;
                  o.set |= OPT_QQ_GROUPSIZE; break;
        case 'q': if (!parse_stat_bits("--qq-bits", optarg, &o.qq_scale_bits)) return 2;
                  o.qq_zero_bits = o.qq_scale_bits;
                  o.set |= OPT_QQ_SCALE | OPT_QQ_ZERO; break;
        case 's': if (!parse_stat_bits("--qq-scale-bits", optarg, &o.qq_scale_bits)) return 2;
                  o.set |= OPT_QQ_SCALE; break;
        case 'z': if (!parse_stat_bits("--qq-zero-bits", optarg, &o.qq_zero_bits)) return 2;
                  o.set |= OPT_QQ_ZERO; break;
        case 'o': if (!parse_threshold(optarg, &o.outlier_threshold)) return 2;
                  o.set |= OPT_OUTLIER; break;
        case 'p':
            if (strcmp(optarg, "identity") == 0) o.act_order = false;
            else if (strcmp(optarg, "act_order") == 0 || strcmp(optarg, "act-order") == 0) o.act_order = true;
            else return qn_arg_usage_error(cmd, k_usage,
                                           "--permutation-order: expected identity or act_order, found '%s'", optarg);
            o.set |= OPT_ORDER;
            break;
        case 'a': o.act_order = true; o.set |= OPT_ORDER; break;
        case 'P': o.set |= OPT_PLAIN; break;
        case 'd': if (!qn_arg_float(cmd, "--percdamp", optarg, 0, 1e6, &o.percdamp)) return 2;
                  o.set |= OPT_PERCDAMP; break;
        case 'b': if (!qn_arg_size(cmd, "--blocksize", optarg, 1, 1 << 20, &o.blocksize)) return 2;
                  o.set |= OPT_BLOCKSIZE; break;
        case 'T': if (!qn_arg_size(cmd, "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'j': json = true; break;
        case 'O': out_dir = optarg; break;
        case 'N': name = optarg; break;
        case 'h': return qn_arg_help(k_help);
        default: return qn_arg_bad_option(cmd, longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error(cmd, k_usage, "expected one LAYER.safetensors");
    size_t mi = 0, n_methods = sizeof k_methods / sizeof k_methods[0];
    char names[128] = "";
    for (size_t i = 0; i < n_methods; i++) {
        const char *sep = i == 0 ? "" : i + 1 < n_methods ? ", " : " or ";
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", sep, k_methods[i].name);
    }
    if (!method) return qn_arg_usage_error(cmd, k_usage, "--method is required (%s)", names);
    while (mi < n_methods && strcmp(k_methods[mi].name, method) != 0) mi++;
    if (mi == n_methods) return qn_arg_usage_error(cmd, k_usage, "--method: expected %s, found '%s'", names, method);
    unsigned extra = o.set & ~k_methods[mi].accepts;
    for (size_t b = 0; extra; b++, extra >>= 1)
        if (extra & 1)
            return qn_arg_usage_error(cmd, k_usage, "%s does not apply to --method %s", k_opt_names[b], method);

    qn_kernels_set_threads((int)threads);
    qn_err err = {0};
    qn_layer_file lf = {0};
    if (qn_layer_file_load(&lf, argv[optind], &err) != QN_OK) return qn_cli_fail(cmd, &err);
    qn_layer_problem p = qn_layer_file_problem(&lf);
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    method_out out = {0};
    char base[128];
    if (name) snprintf(base, sizeof base, "%s", name);
    else qn_layer_run_name(argv[optind], base, sizeof base);
    qn_tensor_set stats = {0};
    out.stats = out_dir ? &stats : NULL;
    out.base = base;
    qn_status s = k_methods[mi].run(&o, &p, qn_cli_progress_sink(&prog), NULL, &out, &err);
    qn_cli_progress_clear(&prog);
    if (!s && out_dir) s = qn_layer_run_write(out_dir, argv[optind], base, &out.q, &p, &out.res, &stats, &err);
    qn_tensor_set_clear(&stats);
    int rc = 0;
    if (s != QN_OK) rc = qn_cli_fail(cmd, &err);
    else print_result(argv[optind], &out, json);
    if (!s && out_dir) fprintf(json ? stderr : stdout, "wrote %s (a run folder of %s)\n", out_dir, base);
    qn_layer_result_done(&out.res);
    qn_layer_file_done(&lf);
    return rc;
}
