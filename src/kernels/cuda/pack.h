/* pack.h: host-side packing of a qn_linear into the GPU layout of layout.h
   (plain C, built with or without CUDA, tested on the CPU). The packed arrays
   are malloc'd host memory that the CUDA code copies to the device once. */
#ifndef QN_CU_PACK_H
#define QN_CU_PACK_H
#include "status.h"
#include "kernels/cuda/layout.h"
#include "kernels/linear.h"

/* w: f32 (converted to fp16, round to nearest even) or a compressed linear
   whose layout passed its validator (qn_linear_init runs it before any
   backend's prepare); nothing is checked again here. */
qn_status qn_cu_pack(const qn_linear *w, qn_cu_matrix *out, qn_err *err);
/* Frees the host arrays of a packed matrix; NULL is fine. */
void      qn_cu_pack_free(qn_cu_matrix *m);
/* The arrays of m and their sizes (layout.h); returns how many. */
int       qn_cu_matrix_arrays(qn_cu_matrix *m, qn_cu_array out[QN_CU_MAX_ARRAYS]);
/* Bytes of all arrays: what the matrix occupies on the device. */
size_t    qn_cu_matrix_bytes(const qn_cu_matrix *m);
/* W (d_out, d_in) row-major from a host-side packed matrix, through the
   decoders the kernels use (SpQR: permutation and outliers applied). */
void      qn_cu_to_dense(const qn_cu_matrix *m, float *W);

#endif
