/* test_packed_models.c: quantized folders run on the compressed kernels
   (kernels/linear.h formats, straight from the mapped tensors) and give the
   perplexity of the same folder dequantized to f32, within 1e-4 relative. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/model.h"
#include "engine/ppl.h"
#include "engine/quantize.h"
#include "support.h"

/* f32 sums in another order, and SpQR's outliers applied as fp16 additive
   corrections: observed <= 2e-6 relative; 1e-4 is the bar. */
#define PACKED_PPL_REL_TOL 1e-4

static double ppl_of(const char *dir, bool dequantize, qn_format *fmt)
{
    qn_model *m = NULL;
    qn_err err = {0};
    qn_model_opts o = { .dequantize = dequantize };
    cr_assert_eq(qn_model_open(&m, dir, &o, &err), QN_OK, "%s", err.msg);
    *fmt = m->layers[0].w_up.fmt;
    double ppl = ts_model_ppl(m, 10);
    qn_model_close(m);
    return ppl;
}

static void check(const char *preset, qn_format want)
{
    char dir[128], out[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/q", dir);
    ts_quantize_small(preset, out);
    qn_format packed_fmt, dense_fmt;
    double packed = ppl_of(out, false, &packed_fmt), dense = ppl_of(out, true, &dense_fmt);
    cr_expect_eq(packed_fmt, want, "%s: up_proj runs as format %d", preset, (int)packed_fmt);
    cr_expect_eq(dense_fmt, QN_FMT_F32);
    double rel = fabs(packed - dense) / dense;
    cr_expect(rel <= PACKED_PPL_REL_TOL, "%s: ppl on kernels %.6f vs dequantized %.6f (%.2g relative)", preset,
              packed, dense, rel);
    ts_rmtree(dir);
}

Test(packed_models, aqlm_runs_on_its_kernel, .timeout = 240) { check("aqlm-small-2x8", QN_FMT_AQLM); }
Test(packed_models, spqr_runs_on_its_kernel, .timeout = 240) { check("spqr-3.6", QN_FMT_SPQR); }
Test(packed_models, rtn_runs_on_the_integer_kernel, .timeout = 240) { check("rtn-4", QN_FMT_INT); }
/* GPTQ's act-order permutation has no integer kernel: it is dequantized instead. */
Test(packed_models, gptq_with_act_order_falls_back_to_f32, .timeout = 240) { check("gptq-4", QN_FMT_F32); }
