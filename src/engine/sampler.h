/* sampler.h: picking the next token from logits: greedy at temperature 0,
   otherwise softmax(logits / T) restricted to the smallest set of tokens whose
   probability reaches top_p (nucleus sampling, Holtzman et al. 2020).
   Deterministic for a given seed (xorshift64*, as llama2.c). */
#ifndef QN_SAMPLER_H
#define QN_SAMPLER_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float    temperature;  /* 0: greedy */
    float    top_p;        /* 1: no truncation */
    uint64_t rng;          /* state; never 0 */
    float   *probs;        /* (vocab) scratch */
    int32_t *order;        /* (vocab) scratch */
    size_t   vocab;
} qn_sampler;

int  qn_sampler_init(qn_sampler *s, size_t vocab, float temperature, float top_p, uint64_t seed); /* 0 on success */
void qn_sampler_done(qn_sampler *s);
int  qn_sampler_next(qn_sampler *s, const float *logits);
int  qn_argmax(const float *v, size_t n);  /* first index of the maximum */

#endif
