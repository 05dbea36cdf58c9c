/* layer_run.h: `quench quantize-layer --out DIR`: a run folder (quantize.h's
   layout, read back by run_folder.h) for one quantized layer file, so that
   show, export-png and the workbench's Inspect open it: run.jsonl (start,
   AQLM rounds, the layer, end), stats.safetensors (Hessian diagonal, SpQR
   outlier mask, AQLM codebooks, usage and loss history) and layer.safetensors
   (`weight`: the dequantized result, F32). The original weights live in the
   layer file, not in a model, so the weights and error pictures of such a
   folder are not available. */
#ifndef QN_CLI_LAYER_RUN_H
#define QN_CLI_LAYER_RUN_H
#include "status.h"
#include "engine/layer_quant.h"
#include "engine/quantize.h"
#include "engine/tensor_set.h"

/* The run's name of a layer file: "-b<N>-<linear>" in the file name gives
   model.layers.<N>.<self_attn|mlp>.<linear>; otherwise block 0's q_proj. */
void qn_layer_run_name(const char *layer_file, char *name, size_t cap);

/* Writes DIR (created with its parents; an existing run.jsonl is replaced).
   q: what ran (the log's options); stats: the layer's "<name>.*" statistics
   the method recorded (the Hessian diagonal is added here). */
qn_status qn_layer_run_write(const char *dir, const char *layer_file, const char *name, const qn_quant_config *q,
                             const qn_layer_problem *p, const qn_layer_result *res, qn_tensor_set *stats,
                             qn_err *err);

#endif
