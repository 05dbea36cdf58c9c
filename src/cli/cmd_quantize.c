/* cmd_quantize.c: `quench quantize MODEL (--preset NAME | --method M [options])
   --calib TEXT [--nsamples N] [--seqlen L] [--seed S] --out DIR [--force]`
   and `quench quantize --resume DIR`; `quench presets MODEL` lists the presets
   with the projected size of that model. One line per quantized layer; with
   --json, stdout holds JSON Lines only: one object per layer, then a final
   object (bits, size, seconds, and ppl when --ppl asked for it). */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "cli/session.h"
#include "kernels/timing.h"
#include "engine/calib.h"
#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/finetune.h"
#include "engine/ppl.h"
#include "engine/qmethod.h"
#include "engine/quantize.h"
#include "engine/run_folder.h"
#include "engine/spqr_hf.h"

static const char k_usage[] =
    "quench quantize MODEL (--preset NAME | --method rtn|gptq|spqr|aqlm) --calib TEXT --out DIR\n"
    "         [--codebooks M --codebook-bits B --group G [--beam K] [--tol T]]   (aqlm)\n"
    "         [--finetune] [--finetune-max-epochs E] [--finetune-lr LR] [--finetune-batch-size B]\n"
    "         [--finetune-relative-mse-tolerance T]   (aqlm: Adam on codebooks, scales, norms after each block)\n"
    "         [--wbits B] [--groupsize G] [--percdamp P] [--act-order | --permutation-order identity|act_order]\n"
    "         [--qq-groupsize B2] [--qq-scale-bits B] [--qq-zero-bits B] [--outlier-threshold TAU|inf] [--plain-stats]\n"
    "         [--nsamples N] [--seqlen L] [--seed S] [--eval-ctx C] [--threads T] [--force] [--json]\n"
    "       quench quantize --resume DIR [--threads T]";

static const char k_help[] =
    "usage: quench quantize MODEL --preset NAME --calib TEXT --out DIR [options]\n"
    "       quench quantize MODEL --method rtn|gptq|spqr|aqlm [method options] --calib TEXT --out DIR\n"
    "       quench quantize --resume DIR\n"
    "Compresses every linear of MODEL block by block, calibrated on TEXT, into the run folder DIR\n"
    "(created with its parents; quench loads it back: ppl, generate, show, export-png, the workbench).\n"
    "\n"
    "  --preset NAME        a preset (below; `quench presets MODEL` shows their size on a model)\n"
    "  --method M           rtn, gptq, spqr or aqlm, starting from that method's first preset\n"
    "  --calib TEXT         calibration text (UTF-8)                                  required\n"
    "  --out DIR            the run folder                                            required\n"
    "  --force              replace DIR when it holds a run\n"
    "  --resume DIR         continue a stopped run from its last finished block\n"
    "  --nsamples N         calibration windows                                       default 128\n"
    "  --seqlen L           tokens per calibration window                             default 128\n"
    "  --seed S             seed for choosing the windows                             default 0\n"
    "  --eval-ctx C         keep windows off what llama.cpp's ppl at ctx C scores (0 = anywhere)  default 256\n"
    "  --ppl FILE           afterwards, perplexity of the result on FILE (llama.cpp protocol)\n"
    "  --ppl-ctx N          ... at this context                                       default 256\n"
    "  --ppl-chunks K       ... over the first K windows (0 = all)                    default 0\n"
    "  --finetune           aqlm: Adam on codebooks, scales and norms after each block     default off\n"
    "  --finetune-max-epochs E, --finetune-lr LR (1e-4), --finetune-batch-size B (8),\n"
    "  --finetune-relative-mse-tolerance T (0.01)   the research code's finetune options\n"
    "  --threads T          worker threads (0 = quench's default for this machine)   default 0\n"
    "  --json               stdout holds JSON Lines only: one object per layer, then a final one\n"
    "                       (out, method, bits, size_bytes, seconds, ppl when --ppl is given)\n"
    "rtn/gptq/spqr:\n"
    "  --wbits B            bits per weight code                                      preset's\n"
    "  --groupsize G        weights per scale group (spqr: beta1; 0 = whole row)      preset's\n"
    "  --percdamp P         Hessian damping, relative to its mean diagonal     preset's (gptq 0.01, spqr 1)\n"
    "  --act-order          quantize columns by decreasing Hessian diagonal\n"
    "  --permutation-order identity|act_order   the same, spelled as the SpQR code\n"
    "spqr:\n"
    "  --qq-groupsize B2    statistics per group of B2 (beta2)                        preset's\n"
    "  --qq-scale-bits B, --qq-zero-bits B      bits of the quantized scales/zeros    preset's (3)\n"
    "  --outlier-threshold TAU|inf              outlier threshold tau                 preset's\n"
    "  --plain-stats        the research code's statistics, without quench's refinement\n"
    "aqlm:\n"
    "  --codebooks M --codebook-bits B --group G   M codebooks of 2^B codes over groups of G weights\n"
    "  --beam K             beam width of the code search                             preset's\n"
    "  --tol T              relative loss improvement that ends the rounds            preset's\n"
    "\n"
    "examples:\n"
    "  quench quantize assets/stories260K --preset spqr-3.6 --calib ../shared/text/tinystories-valid-head.txt --out runs/s-spqr\n"
    "  quench quantize assets/stories260K --method gptq --wbits 3 --groupsize 64 --calib TEXT --out runs/g3 --json\n"
    "  quench quantize --resume runs/s-spqr\n";

static void print_presets_brief(void)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    printf("\npresets:\n");
    for (size_t i = 0; i < n; i++) printf("  %-24s %s\n", p[i].name, p[i].summary);
}

/* "unknown preset 'x'; did you mean 'y'?" */
static int unknown_preset(const char *cmd, const char *name)
{
    size_t n;
    const qn_preset *p = qn_presets(&n);
    const char *names[64];
    for (size_t i = 0; i < n && i < 64; i++) names[i] = p[i].name;
    const char *near = qn_arg_nearest(name, names, n < 64 ? n : 64);
    fprintf(stderr, "quench %s: unknown preset '%s'", cmd, name);
    if (near) fprintf(stderr, "; did you mean '%s'?", near);
    fprintf(stderr, "\npresets:");
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %s", p[i].name);
    fprintf(stderr, "\n");
    return 2;
}

typedef struct { qn_cli_progress prog; bool json; } run_view;

static void on_event(void *ctx, const qn_event *ev)
{
    run_view *v = ctx;
    if (ev->kind == QN_EV_LAYER_DONE && ev->payload) {
        const qn_calib_layer_event *le = ev->payload;
        const qn_layer_result *r = le->result;
        const char *part = strchr(le->name + strlen("model.layers."), '.') + 1;
        qn_cli_progress_clear(&v->prog);
        if (v->json) {
            json_t *o = json_pack("{s:s, s:i, s:s, s:I, s:I, s:f, s:f, s:I, s:f}", "event", "layer", "block",
                                  le->block, "name", le->name, "d_out", (json_int_t)le->d_out, "d_in",
                                  (json_int_t)le->d_in, "relative_error", r->relative_error, "bits", r->bits,
                                  "outliers", (json_int_t)r->n_outliers, "seconds", r->seconds);
            json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
            json_decref(o);
            putchar('\n');
        } else {
            printf("block %3d %-26s rel.err %.5f  bits %.3f  outliers %6zu  %6.2fs\n", le->block, part,
                   r->relative_error, r->bits, r->n_outliers, r->seconds);
        }
        fflush(stdout);
        return;
    }
    if (ev->kind == QN_EV_STAGE && strcmp(ev->stage, "quantize.projected") == 0) {
        qn_cli_progress_clear(&v->prog);
        double all = ev->value, left = ev->value - (double)ev->done;
        FILE *human = v->json ? stderr : stdout;
        if (all < 120) fprintf(human, "projected time %.0f s in all, %.0f s left\n", all, left);
        else fprintf(human, "projected time %.1f min in all, %.1f min left\n", all / 60, left / 60);
        fflush(stdout);
        return;
    }
    if (ev->kind == QN_EV_BLOCK_TUNED && ev->payload) {
        const qn_finetune_result *r = ev->payload;
        qn_cli_progress_clear(&v->prog);
        fprintf(v->json ? stderr : stdout, "block %3d finetune  rel.mse %.5f -> %.5f  epochs %d (best %d)  %6.2fs\n", ev->layer, r->rel_before,
               r->rel_after, r->epochs, r->best_epoch, r->seconds);
        fflush(stdout);
        return;
    }
    if (ev->kind == QN_EV_PROGRESS) qn_emit(qn_cli_progress_sink(&v->prog), ev);
    if (ev->kind == QN_EV_WARNING) qn_emit(qn_cli_progress_sink(&v->prog), ev);
}

/* Option ids past the ASCII range. */
enum { O_PRESET = 256, O_METHOD, O_CALIB, O_OUT, O_WBITS, O_GROUP, O_DAMP, O_ACT, O_PERM, O_QQG, O_QQS, O_QQZ,
       O_TAU, O_NS, O_SL, O_SEED, O_EVAL, O_THREADS, O_FORCE, O_RESUME, O_JSON, O_HELP,
       O_CODEBOOKS, O_CBBITS, O_AGROUP, O_BEAM, O_TOL, O_PLAIN, O_FT, O_FT_EPOCHS, O_FT_LR, O_FT_BATCH, O_FT_TOL, O_PPL, O_PPL_CTX, O_PPL_CHUNKS };

static bool apply_option(int ch, const char *v, qn_quant_config *q)
{
    size_t z;
    double d;
    uint64_t u;
    switch (ch) {
    case O_WBITS: if (!qn_arg_size("quantize", "--wbits", v, 1, 16, &z)) return false; q->wbits = (int)z; return true;
    case O_GROUP: return qn_arg_size("quantize", "--groupsize", v, 0, 1 << 20, &q->groupsize);
    case O_DAMP: return qn_arg_float("quantize", "--percdamp", v, 0, 1e6, &q->percdamp);
    case O_ACT: q->act_order = true; return true;
    case O_PERM:
        if (strcmp(v, "act_order") == 0) q->act_order = true;
        else if (strcmp(v, "identity") == 0) q->act_order = false;
        else { fprintf(stderr, "quench quantize: --permutation-order: expected identity or act_order, found '%s'\n", v); return false; }
        return true;
    case O_QQG: return qn_arg_size("quantize", "--qq-groupsize", v, 1, 1 << 20, &q->qq_groupsize);
    case O_QQS: if (!qn_arg_size("quantize", "--qq-scale-bits", v, 1, 16, &z)) return false; q->qq_scale_bits = (int)z; return true;
    case O_QQZ: if (!qn_arg_size("quantize", "--qq-zero-bits", v, 1, 16, &z)) return false; q->qq_zero_bits = (int)z; return true;
    case O_TAU:
        if (strcmp(v, "inf") == 0) { q->outlier_threshold = INFINITY; return true; }
        if (!qn_arg_float("quantize", "--outlier-threshold", v, 1e-12, 1e12, &d)) return false;
        q->outlier_threshold = d;
        return true;
    case O_NS: return qn_arg_size("quantize", "--nsamples", v, 1, 1 << 20, &q->nsamples);
    case O_SL: return qn_arg_size("quantize", "--seqlen", v, 2, 1 << 20, &q->seqlen);
    case O_SEED: if (!qn_arg_u64("quantize", "--seed", v, &u)) return false; q->seed = u; return true;
    case O_EVAL: return qn_arg_size("quantize", "--eval-ctx", v, 0, 1 << 24, &q->eval_ctx);
    case O_PLAIN: q->plain_stats = true; return true;
    case O_CODEBOOKS: if (!qn_arg_size("quantize", "--codebooks", v, 1, 8, &z)) return false; q->codebooks = (int)z; return true;
    case O_CBBITS: if (!qn_arg_size("quantize", "--codebook-bits", v, 1, 16, &z)) return false; q->codebook_bits = (int)z; return true;
    case O_AGROUP: return qn_arg_size("quantize", "--group", v, 1, 64, &q->group);
    case O_BEAM: if (!qn_arg_size("quantize", "--beam", v, 1, 256, &z)) return false; q->beam = (int)z; return true;
    case O_TOL: return qn_arg_float("quantize", "--tol", v, 1e-9, 0.999, &q->tol);
    case O_FT: if (q->finetune_epochs == 0) q->finetune_epochs = qn_finetune_opts_default().max_epochs; return true;
    case O_FT_EPOCHS:
        if (!qn_arg_size("quantize", "--finetune-max-epochs", v, 0, 100000, &z)) return false;
        q->finetune_epochs = (int)z;
        return true;
    case O_FT_LR: return qn_arg_float("quantize", "--finetune-lr", v, 1e-12, 1.0, &q->finetune_lr);
    case O_FT_BATCH: return qn_arg_size("quantize", "--finetune-batch-size", v, 1, 1 << 20, &q->finetune_batch);
    case O_FT_TOL: return qn_arg_float("quantize", "--finetune-relative-mse-tolerance", v, 0, 1, &q->finetune_tol);
    }
    return false;
}

static const struct option k_longopts[] = {
    { "preset", required_argument, 0, O_PRESET }, { "method", required_argument, 0, O_METHOD },
    { "calib", required_argument, 0, O_CALIB }, { "out", required_argument, 0, O_OUT },
    { "wbits", required_argument, 0, O_WBITS }, { "groupsize", required_argument, 0, O_GROUP },
    { "percdamp", required_argument, 0, O_DAMP }, { "act-order", no_argument, 0, O_ACT },
    { "permutation-order", required_argument, 0, O_PERM }, { "qq-groupsize", required_argument, 0, O_QQG },
    { "qq-scale-bits", required_argument, 0, O_QQS }, { "qq-zero-bits", required_argument, 0, O_QQZ },
    { "outlier-threshold", required_argument, 0, O_TAU }, { "nsamples", required_argument, 0, O_NS },
    { "seqlen", required_argument, 0, O_SL }, { "seed", required_argument, 0, O_SEED },
    { "eval-ctx", required_argument, 0, O_EVAL }, { "plain-stats", no_argument, 0, O_PLAIN }, { "threads", required_argument, 0, O_THREADS },
    { "force", no_argument, 0, O_FORCE }, { "resume", required_argument, 0, O_RESUME },
    { "json", no_argument, 0, O_JSON }, { "help", no_argument, 0, O_HELP },
    { "codebooks", required_argument, 0, O_CODEBOOKS }, { "codebook-bits", required_argument, 0, O_CBBITS },
    { "group", required_argument, 0, O_AGROUP }, { "beam", required_argument, 0, O_BEAM },
    { "tol", required_argument, 0, O_TOL }, { "finetune", no_argument, 0, O_FT },
    { "finetune-max-epochs", required_argument, 0, O_FT_EPOCHS }, { "finetune-lr", required_argument, 0, O_FT_LR },
    { "finetune-batch-size", required_argument, 0, O_FT_BATCH },
    { "finetune-relative-mse-tolerance", required_argument, 0, O_FT_TOL }, { "ppl", required_argument, 0, O_PPL },
    { "ppl-ctx", required_argument, 0, O_PPL_CTX }, { "ppl-chunks", required_argument, 0, O_PPL_CHUNKS },
    { 0, 0, 0, 0 } };

/* Perplexity of the finished run folder on a text, llama.cpp's protocol. */
static qn_status run_ppl(const char *dir, const char *text, size_t ctx, size_t chunks, qn_cli_progress *prog,
                         double *ppl, qn_err *err)
{
    qn_model *m = NULL;
    qn_model_opts mo = { .sink = qn_cli_progress_sink(prog) };
    int32_t *tokens = NULL;
    size_t n = 0;
    qn_ppl_result res = { 0 };
    qn_ppl_opts po = { .protocol = QN_PPL_LLAMACPP, .ctx = ctx, .max_chunks = chunks };
    qn_status s = qn_model_open(&m, dir, &mo, err);
    if (!s) s = qn_ppl_tokenize_file(m, text, &tokens, &n, err);
    if (!s) s = qn_ppl_run(m, tokens, n, &po, qn_cli_progress_sink(prog), qn_cli_interrupt_install(), &res, err);
    qn_cli_progress_clear(prog);
    if (!s) *ppl = res.ppl;
    free(tokens);
    qn_model_close(m);
    return s;
}

/* The final --json object: what the run folder says about itself. */
static void print_summary_json(const qn_quantize_job *job, const char *preset, double seconds, const char *hf,
                               double ppl, size_t ppl_ctx)
{
    json_t *o = json_pack("{s:s, s:o, s:s, s:f}", "event", "done", "out", qn_json_text(job->out_dir), "method",
                          qn_method_name(job->config.method), "seconds", seconds);
    if (preset) json_object_set_new(o, "preset", json_string(preset));
    qn_run_folder *run = NULL;
    qn_err err = { 0 };
    if (qn_run_open(&run, job->out_dir, &err) == QN_OK && isfinite(qn_run_get_info(run)->bits))
        json_object_set_new(o, "bits", json_real(qn_run_get_info(run)->bits));
    qn_run_close(run);
    char path[4200];
    struct stat st;
    if (qn_path_join(path, sizeof path, job->out_dir, "model.safetensors") && stat(path, &st) == 0)
        json_object_set_new(o, "size_bytes", json_integer((json_int_t)st.st_size));
    if (hf) json_object_set_new(o, "hf_spqr", qn_json_text(hf));
    if (isfinite(ppl)) {
        json_object_set_new(o, "ppl", json_real(ppl));
        json_object_set_new(o, "ppl_ctx", json_integer((json_int_t)ppl_ctx));
    }
    json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    putchar('\n');
    json_decref(o);
}

/* Starting point for --method without a preset: the first preset of that method. */
static bool method_defaults(const char *name, qn_quant_config *q)
{
    int m = qn_method_from_name(name);
    size_t n;
    const qn_preset *p = qn_presets(&n);
    for (size_t i = 0; m >= 0 && i < n; i++)
        if ((int)p[i].config.method == m) { *q = p[i].config; return true; }
    fprintf(stderr, "quench quantize: --method: expected rtn, gptq, spqr or aqlm, found '%s'\n", name);
    return false;
}

int qn_cmd_quantize(int argc, char **argv)
{
    const char *preset = NULL, *method = NULL, *calib = NULL, *out = NULL, *resume = NULL, *ppl_text = NULL;
    size_t threads = 0, ppl_ctx = 256, ppl_chunks = 0;
    bool force = false, json = false;
    /* options are applied after the preset, whatever their order on the line */
    int opt_ch[64];
    const char *opt_val[64];
    size_t n_opts = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", k_longopts, NULL)) != -1) {
        switch (ch) {
        case O_PRESET: preset = optarg; break;
        case O_METHOD: method = optarg; break;
        case O_CALIB: calib = optarg; break;
        case O_OUT: out = optarg; break;
        case O_THREADS: if (!qn_arg_size("quantize", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case O_FORCE: force = true; break;
        case O_RESUME: resume = optarg; break;
        case O_JSON: json = true; break;
        case O_PPL: ppl_text = optarg; break;
        case O_PPL_CTX: if (!qn_arg_size("quantize", "--ppl-ctx", optarg, 2, 1 << 20, &ppl_ctx)) return 2; break;
        case O_PPL_CHUNKS: if (!qn_arg_size("quantize", "--ppl-chunks", optarg, 0, 1 << 30, &ppl_chunks)) return 2; break;
        case O_HELP: qn_arg_help(k_help); print_presets_brief(); return 0;
        case '?': return qn_arg_bad_option("quantize", k_longopts, argc, argv);
        default:
            if (n_opts == 64) return qn_arg_usage_error("quantize", k_usage, "too many options");
            opt_ch[n_opts] = ch;
            opt_val[n_opts++] = optarg;
        }
    }
    qn_quantize_job job = {0};
    static char model_buf[4096], calib_buf[4096];
    qn_err err = {0};
    if (resume) {
        if (optind != argc) return qn_arg_usage_error("quantize", k_usage, "--resume DIR takes no MODEL");
        if (qn_quantize_job_from_log(resume, &job, model_buf, sizeof model_buf, calib_buf, sizeof calib_buf, &err))
            return qn_cli_fail("quantize", &err);
    } else {
        if (optind != argc - 1) return qn_arg_usage_error("quantize", k_usage, "expected one MODEL");
        if (!calib) return qn_arg_usage_error("quantize", k_usage, "--calib TEXT is required");
        if (!out) return qn_arg_usage_error("quantize", k_usage, "--out DIR is required");
        if (!!preset == !!method) return qn_arg_usage_error("quantize", k_usage, "give one of --preset or --method");
        if (preset) {
            const qn_preset *p = qn_preset_find(preset);
            if (!p) return unknown_preset("quantize", preset);
            job.config = p->config;
        } else if (!method_defaults(method, &job.config)) {
            return 2;
        }
        for (size_t i = 0; i < n_opts; i++)
            if (!apply_option(opt_ch[i], opt_val[i], &job.config)) return 2;
        job.model = argv[optind];
        job.calib = calib;
        job.out_dir = out;
        job.force = force;
        if (qn_cli_make_dirs(out, false, &err)) return qn_cli_fail("quantize", &err);
    }
    qn_kernels_set_threads((int)threads);
    run_view view = { .json = json };
    qn_cli_progress_init(&view.prog);
    double t0 = qn_now();
    qn_status s = qn_quantize_run(&job, (qn_event_sink){ on_event, &view }, qn_cli_interrupt_install(), &err);
    qn_cli_progress_clear(&view.prog);
    if (s == QN_ERR_CANCELLED) {
        fprintf(stderr, "quench quantize: cancelled; finished blocks are kept: quench quantize --resume %s\n", job.out_dir);
        return qn_cli_interrupt_exit_code();
    }
    if (s) return qn_cli_fail("quantize", &err);
    double seconds = qn_now() - t0;
    char hf[4200], hf_config[4300];
    bool has_hf = qn_path_join(hf, sizeof hf, job.out_dir, QN_SPQR_HF_DIR) &&
                  qn_path_join(hf_config, sizeof hf_config, hf, "config.json") && qn_path_exists(hf_config);
    FILE *human = json ? stderr : stdout;
    fprintf(human, "wrote %s (%s) in %.1f s\n", job.out_dir, qn_method_name(job.config.method), seconds);
    if (has_hf) fprintf(human, "wrote %s (the Hugging Face SpQR layout, for transformers)\n", hf);
    double ppl = NAN;
    if (ppl_text) {
        if (run_ppl(job.out_dir, ppl_text, ppl_ctx, ppl_chunks, &view.prog, &ppl, &err))
            return qn_cli_fail("quantize", &err);
        fprintf(human, "perplexity %.4f on %s (ctx %zu, llamacpp protocol)\n", ppl, ppl_text, ppl_ctx);
    }
    if (json) print_summary_json(&job, preset, seconds, has_hf ? hf : NULL, ppl, ppl_ctx);
    return 0;
}

static const char k_presets_help[] =
    "usage: quench presets MODEL [--json]\n"
    "The compression presets with what they store on MODEL: bits per parameter of the quantized\n"
    "linears (codes, scales, codebooks: everything counted; SpQR outliers excluded, they depend on\n"
    "the data), the projected size of the whole model (the other tensors at fp16) and the ratio to\n"
    "fp16. A preset's name says its bits on a large model; on a small one codebooks and statistics\n"
    "weigh more, and a preset that stores more than 16 bits per parameter is marked.\n"
    "AQLM groups that do not divide the model's widths are fitted (the group used is shown).\n"
    "\n"
    "  --json               stdout holds one JSON object: model, fp16_bytes, presets[]\n"
    "                       (name, method, summary, bits, bytes, vs_fp16, group, above_fp16)\n"
    "\n"
    "examples:\n"
    "  quench presets assets/stories260K\n"
    "  quench presets ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf --json\n";

/* A preset as it would run on m: its config fitted to the model's widths. */
static qn_quant_config fitted_config(const qn_preset *p, const qn_model *m)
{
    qn_quant_config q = p->config;
    const qn_config *c = &m->cfg;
    size_t d_ins[3] = { (size_t)c->dim, (size_t)c->n_heads * c->head_dim, (size_t)c->hidden_dim };
    bool changed;
    qn_quant_config_fit(&q, d_ins, 3, &changed, NULL);
    return q;
}

int qn_cmd_presets(int argc, char **argv)
{
    static const struct option longopts[] = { { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' },
                                              { 0, 0, 0, 0 } };
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = true; break;
        case 'h': return qn_arg_help(k_presets_help);
        default: return qn_arg_bad_option("presets", longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("presets", "quench presets MODEL [--json]", "expected one MODEL");
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    qn_model *m = qn_cli_open_model("presets", argv[optind], NULL, 0, &prog);
    if (!m) return 1;
    double fp16 = (double)qn_config_n_params(&m->cfg) * 2;
    json_t *list = json_array();
    if (!json) printf("%-24s %-6s %8s %12s %8s %6s  %s\n", "preset", "method", "bits", "size", "vs fp16", "group", "");
    size_t n, above = 0;
    const qn_preset *p = qn_presets(&n);
    for (size_t i = 0; i < n; i++) {
        double bytes = 0, bits = qn_quant_projected_bits(&p[i].config, m, &bytes);
        qn_quant_config q = fitted_config(&p[i], m);
        bool aqlm = q.method == QN_METHOD_AQLM, over = bits > 16;
        size_t group = aqlm ? q.group : q.groupsize;
        bool refit = aqlm && q.group != p[i].config.group;
        above += over;
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:I, s:b}", "name", p[i].name, "method",
                                  qn_method_name(q.method), "summary", p[i].summary, "bits", bits, "bytes", bytes,
                                  "vs_fp16", fp16 / bytes, "group", (json_int_t)group, "above_fp16", over);
            if (refit) json_object_set_new(o, "preset_group", json_integer((json_int_t)p[i].config.group));
            json_array_append_new(list, o);
            continue;
        }
        char gtext[24];
        snprintf(gtext, sizeof gtext, refit ? "%zu*" : "%zu", group);
        printf("%-24s %-6s %8.3f %12.0f %7.2fx %6s  %s%s\n", p[i].name, qn_method_name(q.method), bits, bytes,
               fp16 / bytes, gtext, over ? "MORE BITS THAN FP16: " : "", p[i].summary);
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:f, s:o}", "model", argv[optind], "fp16_bytes", fp16, "presets", list);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        putchar('\n');
        json_decref(o);
    } else {
        json_decref(list);
        printf("(bits: per weight of the quantized linears, statistics and codebooks included, SpQR outliers\n"
               " excluded; size: the whole model with the unquantized tensors at fp16; group: weights per\n"
               " scale (rtn/gptq/spqr) or per code (aqlm), * where fitted to this model's widths)\n");
        if (above)
            printf("warning: %zu preset(s) store more bits per parameter than fp16 on this model: their codebooks\n"
                   "outweigh its layers; names like aqlm-2bit give the bits of the codes on large models\n", above);
    }
    qn_model_close(m);
    return 0;
}
