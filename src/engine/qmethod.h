/* qmethod.h: one place that knows every compression method: its presets, how
   one linear is quantized and stored (qstore.h), how a stored linear is read
   back to dense weights, and the quantization_config block of config.json.
   The pipeline (quantize.c) and the model loader (model.c) call only these. */
#ifndef QN_QMETHOD_H
#define QN_QMETHOD_H
#include <jansson.h>
#include <stdatomic.h>
#include "status.h"
#include "engine/aqlm.h"
#include "engine/layer_quant.h"
#include "engine/qstore.h"
#include "engine/quantize.h"
#include "kernels/linear.h"

/* Quantizes p with q; fills res (W_hat = the dequantization of what was stored,
   so a resumed run sees exactly the weights an uninterrupted one saw) and adds
   the stored tensors "<base>.*" to store, and what the pictures need beyond
   the Hessian ("<base>.codebooks" F32 (M, K, g), "<base>.codebook_usage" I32
   (M, K), "<base>.loss_history" F64 (rounds + 1) for AQLM) to stats (may be NULL). */
qn_status qn_qmethod_quantize(const qn_quant_config *q, const qn_layer_problem *p, const char *base,
                              qn_event_sink sink, const atomic_bool *cancel, qn_layer_result *res,
                              qn_tensor_set *store, qn_tensor_set *stats, qn_err *err);

/* AQLM's statistics of one layer, as qn_qmethod_quantize adds them to stats. */
qn_status qn_qmethod_aqlm_stats(qn_tensor_set *stats, const char *base, const qn_aqlm_result *r, qn_err *err);

/* Fits q to the model's shapes where a knob must divide every layer (AQLM's
   in_group_size): the largest value <= the requested one that divides every
   input width. Returns false (with err) when nothing fits; *changed says
   whether q was adjusted. */
bool qn_quant_config_fit(qn_quant_config *q, const size_t *d_ins, size_t n, bool *changed, qn_err *err);

/* Dense weights W (d_out, d_in) of the stored linear base. */
qn_status qn_qmethod_dequantize(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out,
                                size_t d_in, float *W, qn_err *err);

/* A linear that runs on the compressed kernels straight from the stored tensors
   (kernels/linear.h), for the configurations the kernels support: AQLM (any),
   quench-int without a permutation at 2/3/4/8 bits, quench-spqr with 3-bit
   statistics. *keep receives one heap block the linear needs alive (its layout
   and derived arrays): free it after qn_linear_done. QN_ERR_UNSUPPORTED means
   "no kernel for this configuration": the caller dequantizes instead. */
qn_status qn_qmethod_packed(const qn_quant_config *q, qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in,
                            qn_linear *out, void **keep, qn_err *err);

/* SpQR quantizer options from a configuration. */
qn_spqr_opts qn_qmethod_spqr_opts(const qn_quant_config *q);

/* config.json's quantization_config for q, and back (path names the file in messages). */
json_t   *qn_qmethod_config_json(const qn_quant_config *q);
qn_status qn_qmethod_config_parse(const json_t *qc, const char *path, qn_quant_config *q, qn_err *err);
/* DIR/config.json's quantization_config (or the older top-level "aqlm" block): *found
   says whether there is one; quant_method receives its quant_method as written. */
qn_status qn_qmethod_config_read(const char *dir, bool *found, char *quant_method, size_t cap, qn_quant_config *q,
                                 qn_err *err);
/* One line for people: "spqr w3, beta1 16, beta2 16, 3/3-bit statistics, tau 0.2, act_order". */
void qn_quant_config_describe(const qn_quant_config *q, char *buf, size_t cap);

/* Checks the knobs of q for its method (bits in range, groups positive, ...). */
qn_status qn_quant_config_validate(const qn_quant_config *q, qn_err *err);

#endif
