/* synth.h: random well-formed compressed matrices that own their storage,
   for the kernel tests, `make bench` and `quench bench-kernel`: the layouts
   of layouts.h filled from a seeded generator (codes uniform over their
   range, fp16 codebooks, scales, zeros and outliers of plausible size, a
   random permutation for SpQR). They pass the validators; tests then break
   one field at a time. Nothing here is a quantizer: the weights mean nothing. */
#ifndef QN_SYNTH_H
#define QN_SYNTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "kernels/layouts.h"
#include "kernels/linear.h"

typedef struct {
    qn_format fmt;              /* QN_FMT_INT, QN_FMT_AQLM or QN_FMT_SPQR */
    size_t    d_out, d_in;
    uint64_t  seed;
    int       bits;             /* INT, SPQR: code bits */
    size_t    group_size;       /* INT: columns per scale/zero */
    int       n_codebooks;      /* AQLM: M */
    int       nbits;            /* AQLM: B */
    int       in_group_size;    /* AQLM: G */
    int       stat_bits;        /* SPQR: 3 */
    size_t    beta1, beta2;     /* SPQR: 16, 16 */
    double    outlier_frac;     /* SPQR: fraction of weights in the CSR part */
    bool      permute;          /* SPQR: random column permutation */
} qn_synth_opts;

typedef struct {                /* the matrix: one of the layouts, per fmt */
    qn_format       fmt;
    qn_int_weights  intw;
    qn_aqlm_weights aqlm;
    qn_spqr_weights spqr;
    void           *arrays[12]; /* owned storage the layouts point into */
} qn_synth;

qn_status   qn_synth_create(qn_synth **out, const qn_synth_opts *o, qn_err *err);
void        qn_synth_free(qn_synth *s);
/* The layout to hand to qn_linear_init for s->fmt. */
const void *qn_synth_packed(const qn_synth *s);

/* IEEE binary32 -> binary16, round to nearest even. */
uint16_t    qn_synth_half(float f);

#endif
