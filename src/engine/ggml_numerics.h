/* ggml_numerics.h: llama.cpp's CPU arithmetic for a GGUF model, opt-in, so
   quench's perplexity and greedy tokens can be compared with llama.cpp's to a
   few hundredths of a percent instead of ~0.5%. quench's f32 path (dequantized
   weights, f32 activations) stays the reference; this reproduces what ggml
   rounds on the way:
   - a linear's input is first converted to its weight type's "vec_dot type":
     8-bit blocks of 32 with an f16 scale (Q8_0) for q4_0, q5_0, q8_0, iq4_nl;
     the same with an f16 block sum s (Q8_1) for q4_1 and q5_1, whose minimum
     term m * s uses that sum rather than the rounded values; 8-bit blocks of
     256 with an f32 scale (Q8_K) for the k- and i-quants; f16 or bf16 for
     f16 or bf16 weights; nothing for f32;
   - the KV cache is f16 (llama.cpp's default), Q is converted to f16 for the
     K.Q product and the softmax weights to f16 for the product with V.
   Formulas: ggml-cpu quantize_row_q8_0/q8_1 (AVX2 path: ties to even) and
   quantize_row_q8_K_ref, llama.cpp c392e509. */
#ifndef QN_GGML_NUMERICS_H
#define QN_GGML_NUMERICS_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/model.h"

typedef enum { QN_ACT_F32 = 0, QN_ACT_F16, QN_ACT_BF16, QN_ACT_Q8_0, QN_ACT_Q8_1, QN_ACT_Q8_K } qn_act_round;

typedef struct qn_ggml_numerics {
    size_t   n;      /* linears: n_layers * 7 ([layer][q, k, v, o, gate, up, down]), then lm_head */
    uint8_t *act;    /* (n) qn_act_round of each linear's input */
    float  **mins;   /* (n) QN_ACT_Q8_1 linears: the weight's block minimums (d_out, d_in / 32); else NULL */
} qn_ggml_numerics;

/* Makes m's forward passes follow llama.cpp's arithmetic (m->ggml), from the
   tensor types of the GGUF file m was opened from. Call before creating states.
   QN_ERR_UNSUPPORTED for other sources or compressed linears. */
qn_status qn_ggml_numerics_enable(qn_model *m, qn_err *err);
void      qn_ggml_numerics_free(qn_ggml_numerics *g);   /* NULL is fine */

/* Index of a linear (role QN_T_WQ, _WK, _WV, _WO, _GATE, _UP or _DOWN in layer, or QN_T_LM_HEAD). */
size_t qn_ggml_index(const qn_config *c, int role, size_t layer);

/* X (n, d) rounded into R as act rounds it; for QN_ACT_Q8_1, corr (n, d / 32)
   receives each block's s minus its scale times its quant sum. d is a multiple
   of the block (32, 256 for Q8_K). */
void  qn_ggml_round(qn_act_round act, const float *X, size_t n, size_t d, float *R, float *corr);
/* The minimum term's correction: Y (n, d_out) += corr (n, nb) . mins (d_out, nb)^T. */
void  qn_ggml_min_term(const float *mins, const float *corr, size_t n, size_t d_out, size_t nb, float *Y);
float qn_ggml_f16(float x);  /* x rounded to f16 */

#endif
