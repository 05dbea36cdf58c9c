/* cmd_export_png.c: `quench export-png RUN --what KIND [--layer NAME] [--width W]
   [--height H] [--colormap viridis|magma|coolwarm|greys] --out FILE.png`, and `--what all --out DIR`:
   every picture the run can make (each layer's weights, error, outliers or
   codebook, plus overview, hessian and convergence) as DIR/<kind>[-<layer>].png.
   The pictures and their text chunks are run_pictures.h's. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/run_pictures.h"
#include "cli/session.h"
#include "engine/fileio.h"

static const char k_usage[] =
    "quench export-png RUN --what weights|error|outliers|codebook|overview|hessian|convergence\n"
    "         [--layer NAME] [--width W] [--height H] [--colormap viridis|magma|coolwarm|greys] --out FILE.png\n"
    "       quench export-png RUN --what all [--width W] [--height H] [--colormap viridis|magma|coolwarm|greys] --out DIR";

static const char k_help[] =
    "usage: quench export-png RUN --what KIND [--layer NAME] --out FILE.png [options]\n"
    "       quench export-png RUN --what all --out DIR\n"
    "Pictures of a run folder (quench quantize --out, quench quantize-layer --out) as PNG files with\n"
    "titles, axes and a colour scale. The folders of --out are created.\n"
    "\n"
    QN_RUNPIC_HELP
    "                       all: every picture the run can make, as DIR/KIND[-LAYER].png\n"
    "  --out FILE.png|DIR   where to write                                       required\n"
    "  --width W, --height H   size in pixels                      default 900 wide (codebooks 1400)\n"
    "  --colormap NAME      viridis, magma, coolwarm or greys                    default the picture's\n"
    "\n"
    "examples:\n"
    "  quench export-png runs/stories260K-spqr-3.6 --what outliers --layer 2.v_proj --out pics/outliers.png\n"
    "  quench export-png runs/stories260K-spqr-3.6 --what all --out pics\n";

enum { O_WHAT = 256, O_LAYER, O_WIDTH, O_HEIGHT, O_CMAP, O_OUT, O_HELP };

static const struct option k_longopts[] = {
    { "what", required_argument, 0, O_WHAT }, { "layer", required_argument, 0, O_LAYER },
    { "width", required_argument, 0, O_WIDTH }, { "height", required_argument, 0, O_HEIGHT },
    { "colormap", required_argument, 0, O_CMAP }, { "out", required_argument, 0, O_OUT },
    { "help", no_argument, 0, O_HELP }, { 0, 0, 0, 0 } };

static qn_status write_one(qn_run_folder *run, qn_font *font, const qn_viz_opts *o, qn_runpic_kind kind,
                           size_t layer, const char *path, qn_err *err)
{
    qn_runpic p;
    qn_status s = qn_runpic_load(&p, run, kind, layer, err);
    if (s) return s;
    s = qn_runpic_write_png(&p, font, o, path, err);
    qn_runpic_done(&p);
    return s;
}

/* Whether the original model (weights, error) can be read: it may have moved. */
static bool original_readable(qn_run_folder *run, qn_err *why)
{
    const qn_run_info *in = qn_run_get_info(run);
    float *W = NULL;
    size_t rows, cols;
    if (in->n_layers == 0 || qn_run_weights(run, in->layers[0].name, true, &W, &rows, &cols, why)) return false;
    free(W);
    return true;
}

/* Every picture the run can make; a kind it lacks the data for is skipped
   with one line on stderr. */
static qn_status write_all(qn_run_folder *run, qn_font *font, const qn_viz_opts *o, const char *dir, size_t *n,
                           qn_err *err)
{
    const qn_run_info *in = qn_run_get_info(run);
    qn_status s = qn_dir_ensure(dir, err);
    qn_err no_original = { 0 };
    bool original = original_readable(run, &no_original);
    /* codebooks are three panels across: 14/9 of the others' width, as their
       defaults (1400 and 900), and at least what three panels need */
    qn_viz_opts wide = *o;
    if (wide.width > 0) wide.width = wide.width * 14 / 9 < 700 ? 700 : wide.width * 14 / 9;
    char path[4400];
    *n = 0;
    for (int k = 0; k < QN_RUNPIC_COUNT && !s; k++) {
        qn_runpic_kind kind = (qn_runpic_kind)k;
        qn_err why = { 0 };
        if (qn_runpic_check(run, kind, &why) == QN_OK && !original &&
            (kind == QN_RUNPIC_WEIGHTS || kind == QN_RUNPIC_ERROR))
            why = no_original;
        if (why.msg[0]) {
            fprintf(stderr, "quench export-png: skipped %s: %s\n", qn_runpic_name(kind), why.msg);
            continue;
        }
        size_t layers = qn_runpic_per_layer(kind) ? in->n_layers : 1;
        for (size_t i = 0; i < layers && !s; i++) {
            if (qn_runpic_per_layer(kind))
                snprintf(path, sizeof path, "%s/%s-%s.png", dir, qn_runpic_name(kind), in->layers[i].short_name);
            else
                snprintf(path, sizeof path, "%s/%s.png", dir, qn_runpic_name(kind));
            if (!(s = write_one(run, font, kind == QN_RUNPIC_CODEBOOK ? &wide : o, kind, i, path, err))) (*n)++;
        }
    }
    return s;
}

int qn_cmd_export_png(int argc, char **argv)
{
    const char *what = NULL, *layer = NULL, *out = NULL, *cmap = NULL;
    size_t width = 0, height = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", k_longopts, NULL)) != -1) {
        switch (ch) {
        case O_WHAT: what = optarg; break;
        case O_LAYER: layer = optarg; break;
        case O_OUT: out = optarg; break;
        case O_CMAP: cmap = optarg; break;
        case O_WIDTH: if (!qn_arg_size("export-png", "--width", optarg, 200, 16384, &width)) return 2; break;
        case O_HEIGHT: if (!qn_arg_size("export-png", "--height", optarg, 100, 16384, &height)) return 2; break;
        case O_HELP: return qn_arg_help(k_help);
        default: return qn_arg_bad_option("export-png", k_longopts, argc, argv);
        }
    }
    if (optind != argc - 1) return qn_arg_usage_error("export-png", k_usage, "expected one RUN folder");
    if (!what) return qn_arg_usage_error("export-png", k_usage, "--what KIND is required");
    if (!out) return qn_arg_usage_error("export-png", k_usage, "--out is required");
    qn_err err = { 0 };
    int kind;
    qn_colormap cm = QN_CMAP_GREYS;
    if (qn_runpic_parse_kind(what, true, &kind, &err) || (cmap && qn_runpic_parse_colormap(cmap, &cm, &err)))
        return qn_cli_fail("export-png", &err);
    if (kind < 0 && layer) return qn_arg_usage_error("export-png", k_usage, "--what all draws every layer: no --layer");
    qn_viz_opts o = { .width = (int)width, .height = (int)height, .no_color = cmap && cm == QN_CMAP_GREYS,
                      .colormap = cmap ? &cm : NULL };
    qn_run_folder *run = NULL;
    qn_font *font = NULL;
    qn_runpic p = { 0 };
    size_t n = 0;
    qn_status s = qn_run_open(&run, argv[optind], &err);
    if (!s) s = qn_cli_make_dirs(out, kind < 0, &err);
    if (!s && kind >= 0) s = qn_runpic_prepare(&p, run, (qn_runpic_kind)kind, layer, &err);
    if (!s) s = qn_font_open(&font, NULL, &err);
    if (!s && kind < 0) s = write_all(run, font, &o, out, &n, &err);
    else if (!s) s = qn_runpic_write_png(&p, font, &o, out, &err);
    int rc = 0;
    if (s) rc = qn_cli_fail("export-png", &err);
    else if (kind < 0) printf("wrote %zu pictures to %s\n", n, out);
    else printf("wrote %s (%s of %s)\n", out, what, p.layer ? p.layer->name : "the run");
    qn_runpic_done(&p);
    qn_font_close(font);
    qn_run_close(run);
    return rc;
}
