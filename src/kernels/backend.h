/* backend.h: the table each kernel backend fills (ggml-backend style).
   Private to src/kernels/: the model sees only linear.h. */
#ifndef QN_BACKEND_H
#define QN_BACKEND_H
#include "kernels/linear.h"

typedef struct qn_backend {
    const char *name;                                            /* "cpu", "cuda" */
    bool      (*supports)(const qn_linear *w);
    qn_status (*matvec)(const qn_linear *w, const float *x, float *y, qn_err *err);
    qn_status (*matmul)(const qn_linear *w, const float *X, size_t n_tok, float *Y, qn_err *err);
} qn_backend;

extern const qn_backend qn_backend_cpu;

#endif
