/* cmd_quantize.c: `quench quantize MODEL (--preset NAME | --method M [options])
   --calib TEXT [--nsamples N] [--seqlen L] [--seed S] --out DIR [--force]`
   and `quench quantize --resume DIR`; `quench presets MODEL` lists the presets
   with the projected size of that model. One line per quantized layer. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "cli/session.h"
#include "kernels/timing.h"
#include "engine/calib.h"
#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/finetune.h"
#include "engine/quantize.h"
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

typedef struct { qn_cli_progress prog; bool json; } run_view;

static void on_event(void *ctx, const qn_event *ev)
{
    run_view *v = ctx;
    if (ev->kind == QN_EV_LAYER_DONE && ev->payload) {
        const qn_calib_layer_event *le = ev->payload;
        const qn_layer_result *r = le->result;
        qn_cli_progress_clear(&v->prog);
        printf("block %3d %-26s rel.err %.5f  bits %.3f  outliers %6zu  %6.2fs\n", le->block,
               strchr(le->name + strlen("model.layers."), '.') + 1, r->relative_error, r->bits, r->n_outliers,
               r->seconds);
        fflush(stdout);
        return;
    }
    if (ev->kind == QN_EV_STAGE && strcmp(ev->stage, "quantize.projected") == 0) {
        qn_cli_progress_clear(&v->prog);
        double all = ev->value, left = ev->value - (double)ev->done;
        if (all < 120) printf("projected time %.0f s in all, %.0f s left\n", all, left);
        else printf("projected time %.1f min in all, %.1f min left\n", all / 60, left / 60);
        fflush(stdout);
        return;
    }
    if (ev->kind == QN_EV_BLOCK_TUNED && ev->payload) {
        const qn_finetune_result *r = ev->payload;
        qn_cli_progress_clear(&v->prog);
        printf("block %3d finetune  rel.mse %.5f -> %.5f  epochs %d (best %d)  %6.2fs\n", ev->layer, r->rel_before,
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
       O_CODEBOOKS, O_CBBITS, O_AGROUP, O_BEAM, O_TOL, O_PLAIN, O_FT, O_FT_EPOCHS, O_FT_LR, O_FT_BATCH, O_FT_TOL };

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
    { "finetune-relative-mse-tolerance", required_argument, 0, O_FT_TOL }, { 0, 0, 0, 0 } };

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
    const char *preset = NULL, *method = NULL, *calib = NULL, *out = NULL, *resume = NULL;
    size_t threads = 0;
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
        case O_HELP: printf("usage: %s\n", k_usage); return 0;
        case '?': return qn_arg_usage_error("quantize", k_usage, "bad option");
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
            if (!p) return qn_arg_usage_error("quantize", k_usage, "unknown preset '%s' (quench presets MODEL lists them)", preset);
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
    printf("wrote %s (%s) in %.1f s\n", job.out_dir, qn_method_name(job.config.method), seconds);
    if (has_hf) printf("wrote %s (the Hugging Face SpQR layout, for transformers)\n", hf);
    if (json) {
        json_t *o = json_pack("{s:o, s:f}", "out", qn_json_text(job.out_dir), "seconds", seconds);
        if (has_hf) json_object_set_new(o, "hf_spqr", qn_json_text(hf));
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    }
    return 0;
}

int qn_cmd_presets(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: quench presets MODEL\n");
        return 2;
    }
    qn_cli_progress prog;
    qn_cli_progress_init(&prog);
    qn_model *m = qn_cli_open_model("presets", argv[1], NULL, 0, &prog);
    if (!m) return 1;
    double fp16 = (double)qn_config_n_params(&m->cfg) * 2;
    printf("%-24s %-6s %7s %12s %8s  %s\n", "preset", "method", "bits", "size", "vs fp16", "");
    size_t n;
    const qn_preset *p = qn_presets(&n);
    for (size_t i = 0; i < n; i++) {
        double bytes = 0, bits = qn_quant_projected_bits(&p[i].config, m, &bytes);
        printf("%-24s %-6s %7.3f %12.0f %7.2fx  %s\n", p[i].name, qn_method_name(p[i].config.method), bits, bytes,
               fp16 / bytes, p[i].summary);
    }
    printf("(bits: per weight of the quantized linears, statistics included, SpQR outliers excluded;\n"
           " size: the whole model with the unquantized tensors at fp16)\n");
    qn_model_close(m);
    return 0;
}
