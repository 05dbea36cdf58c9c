/* qstore.h: how quench stores quantized linears in safetensors, and reads them
   back (docs/formats.md has the layouts). One linear "<base>" (e.g.
   "model.layers.0.self_attn.q_proj") becomes a few tensors "<base>.<part>":
     quench-int  (RTN, GPTQ): qweight U8 codes packed LSB-first per row,
                 scales/zeros F16 per (row, group), optional perm I32
     quench-spqr (SpQR):      qweight, 3-bit scale_codes/zero_codes packed per
                 row, F16 second-level scale_stats/zero_stats, CSR outliers
                 (outlier_row_ptr I32, outlier_col_idx U16, outlier_values F16,
                 replacing the dense value), optional perm I32
   Writing goes from the quantizers' structs (rtn.h, spqr.h); reading checks
   every shape and index against the declared d_out x d_in (a corrupt file is a
   clear error, never an out-of-bounds read) and rebuilds those structs, whose
   dequantizers are the executable definition of W_hat. */
#ifndef QN_QSTORE_H
#define QN_QSTORE_H
#include <stddef.h>
#include "status.h"
#include "engine/rtn.h"
#include "engine/safetensors.h"
#include "engine/spqr.h"
#include "engine/tensor_set.h"

#define QN_QSTORE_INT  "quench-int"
#define QN_QSTORE_SPQR "quench-spqr"

/* Finds a stored tensor by full name; *file (optional) names its file. */
typedef struct {
    qn_status (*find)(void *ctx, const char *name, const qn_st_tensor **t, const char **file, qn_err *err);
    bool      (*has)(void *ctx, const char *name);
    void       *ctx;
} qn_raw_lookup;

qn_raw_lookup qn_raw_lookup_st(const qn_st_file *f);   /* over one open safetensors file */

qn_status qn_qstore_put_int(qn_tensor_set *s, const char *base, const qn_rtn_layer *L, qn_err *err);
qn_status qn_qstore_put_spqr(qn_tensor_set *s, const char *base, const qn_spqr_layer *L, qn_err *err);

/* Rebuild the quantizer structs (allocated; free with their _done). */
qn_status qn_qstore_get_int(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in, int bits,
                            size_t groupsize, qn_rtn_layer *L, qn_err *err);
qn_status qn_qstore_get_spqr(qn_raw_lookup lk, const char *base, size_t d_out, size_t d_in,
                             const qn_spqr_opts *shape_opts, qn_spqr_layer *L, qn_err *err);

/* The stored tensor "<base>.<part>", checked to have dtype dt and the given shape. */
qn_status qn_qstore_fetch(qn_raw_lookup lk, const char *base, const char *part, qn_dtype dt, int ndim,
                          const int64_t *shape, const void **data, qn_err *err);

/* Whether base is stored quantized in lk (its qweight exists). */
bool qn_qstore_has(qn_raw_lookup lk, const char *base);   /* qweight, (AQLM) codes or (HF SpQR) dense_weights */

#endif
