/* spqr_hf.h: the Hugging Face SpQR layout, the one transformers' SpQR
   integration (quant_method "spqr", SpQRConfig) and the spqr_quant package's
   QuantizedLinear read (github Vahe1994/SpQR, inference_lib). It exists only
   for 3-bit weights and 3-bit statistics in tiles of 16 x 16 (beta1 = beta2 =
   16), and stores per linear "<base>.<part>" (docs/formats.md):

     dense_weights I64 (ceil(d_out/16) * ceil(d_in/16) * 16): tile (ti, tj) of
         rows 16 ti.. and sweep columns 16 tj.. is 16 words at (ti * tiles_per_row
         + tj) * 16, word k for row 16 ti + k:
           bits 0-2 scale code, 3-5 zero code, 6 + 3 l .. 8 + 3 l weight code of
           column 16 tj + l, 54-61 byte k / 2 of the tile's second-order word
           (fp16 scale-of-scale | zero-of-scale << 16 | scale-of-zero << 32 |
           zero-of-zero << 48; rows 2q and 2q + 1 carry the same byte).
     row_offsets I32 (d_out + 1): CSR over rows.
     col_vals    I32 (nnz): sweep column in the low 16 bits, fp16 value in the high
         16 bits. The kernel ADDS it to the dense weight (quench's own layout
         replaces), so the value stored is the outlier minus the dense weight.
     in_perm     I32 (d_in / 2): the sweep order as uint16 pairs (j = 2i low, 2i + 1
         high); sweep column j reads input feature in_perm[j]. Always present.

   The kernel dequantizes in fp16: s = h(ss * h(scode - sz)), z = h(zs * h(zcode -
   zz)), w = h(s * h(q - z)) (h = round to fp16), then adds the outliers in fp32.
   qn_spqr_hf_dequantize does the same, so quench reads these folders as
   transformers would run them. */
#ifndef QN_SPQR_HF_H
#define QN_SPQR_HF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/qstore.h"
#include "engine/quantize.h"
#include "engine/spqr.h"
#include "engine/tensor_set.h"

#define QN_SPQR_HF_BITS 3
#define QN_SPQR_HF_TILE 16
#define QN_SPQR_HF_DIR  "hf-spqr"   /* subfolder of a quench-spqr run that holds this layout */

typedef struct {
    size_t    d_out, d_in;
    size_t    n_words;         /* ceil(d_out/16) * ceil(d_in/16) * 16 */
    uint64_t *dense_weights;   /* (n_words) */
    int32_t  *row_offsets;     /* (d_out + 1) */
    uint32_t *col_vals;        /* (nnz) */
    size_t    nnz;
    int32_t  *in_perm;         /* (d_in / 2) */
    void     *owned[4];        /* what done() frees: pack's arrays, or get's aligned copies of misaligned tensors */
} qn_spqr_hf_linear;

/* Whether a SpQR configuration has this layout: 3-bit weights and statistics, beta1 = beta2 = 16. */
bool qn_spqr_hf_config_fits(const qn_quant_config *q);
/* Whether a layer of this shape can be written (even width, columns addressable in 16 bits); why names the problem. */
bool qn_spqr_hf_shape_fits(size_t d_out, size_t d_in, char *why, size_t why_cap);

/* Packs a compressed SpQR layer (qn_spqr_layer) into the tiles; h is allocated (qn_spqr_hf_linear_done). */
qn_status qn_spqr_hf_pack(const qn_spqr_layer *L, qn_spqr_hf_linear *h, qn_err *err);
void      qn_spqr_hf_linear_done(qn_spqr_hf_linear *h);

/* Adds the four tensors of base to s (copies). */
qn_status qn_spqr_hf_put(qn_tensor_set *s, const char *base, const qn_spqr_hf_linear *h, qn_err *err);
/* Reads base's tensors from lk, checking every shape, offset and column; h borrows the file's
   memory (tensors a file stores misaligned for their type are copied). qn_spqr_hf_linear_done after. */
qn_status qn_spqr_hf_get(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in, qn_spqr_hf_linear *h,
                         qn_err *err);
/* Dense W (d_out, d_in), original column order, as the CUDA kernel computes it. */
void qn_spqr_hf_dequantize(const qn_spqr_hf_linear *h, float *W);

/* Writes the finished quench-spqr model folder src as a Hugging Face SpQR folder dst
   (config.json with quantization_config {quant_method "spqr", bits, beta1, beta2,
   shapes, modules_to_not_convert}, model.safetensors with the other tensors in
   fp16, the tokenizer files). Files are written to temporaries and renamed,
   config.json last. */
qn_status qn_spqr_hf_export(const char *src, const char *dst, qn_err *err);

#endif
