/* layer_file.h: one linear layer's quantization problem stored as a
   .safetensors file with `weight` (d_out, d_in) and `hessian` (d_in, d_in),
   the format of shared/layers/ (H = X^T X of the layer's calibration inputs).
   Loading validates names, ranks, shapes, float dtypes (converted to f32) and
   that every value is finite. Not here: accumulating H from activations, and
   symmetry or definiteness checks (the quantizers factor H and report those). */
#ifndef QN_LAYER_FILE_H
#define QN_LAYER_FILE_H
#include <stddef.h>
#include "status.h"
#include "engine/layer_quant.h"

typedef struct {
    char  *path;          /* as given, for messages */
    size_t d_out, d_in;
    float *W;             /* (d_out, d_in) */
    float *H;             /* (d_in, d_in) */
} qn_layer_file;

qn_status        qn_layer_file_load(qn_layer_file *lf, const char *path, qn_err *err);
void             qn_layer_file_done(qn_layer_file *lf);   /* zeroed is fine */
/* A view of lf as a problem named after its path; valid while lf is. */
qn_layer_problem qn_layer_file_problem(const qn_layer_file *lf);
/* Writes W and H as F32 `weight` and `hessian` (temporary name, then rename). */
qn_status        qn_layer_file_save(const char *path, const float *W, size_t d_out, size_t d_in, const float *H,
                                    qn_err *err);

#endif
