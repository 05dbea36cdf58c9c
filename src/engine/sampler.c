/* sampler.c: greedy and top-p sampling (see sampler.h). */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>

int qn_sampler_init(qn_sampler *s, size_t vocab, float temperature, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    s->vocab = vocab;
    s->probs = malloc(vocab * sizeof *s->probs);
    s->order = malloc(vocab * sizeof *s->order);
    if (!s->probs || !s->order) { qn_sampler_done(s); return -1; }
    return 0;
}

void qn_sampler_done(qn_sampler *s)
{
    free(s->probs);
    free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

int qn_argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return (int)best;
}

/* xorshift64*, then the top 24 bits as a float in [0, 1). */
static float random_unit(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (float)((*state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int by_prob_desc(const void *a, const void *b, void *probs)
{
    const float *p = probs;
    float pa = p[*(const int32_t *)a], pb = p[*(const int32_t *)b];
    return (pa < pb) - (pa > pb);
}

static int sample_top_p(qn_sampler *s, float coin)
{
    /* tokens below (1 - top_p) / (n - 1) cannot be in the nucleus: skip sorting them (llama2.c) */
    float cutoff = (1.0f - s->top_p) / (float)(s->vocab > 1 ? s->vocab - 1 : 1);
    size_t n = 0;
    for (size_t i = 0; i < s->vocab; i++)
        if (s->probs[i] >= cutoff) s->order[n++] = (int32_t)i;
    /* NaN probabilities pass no comparison: nothing to sample from (qn_forward refuses such logits) */
    if (n == 0) return qn_argmax(s->probs, s->vocab);
    qsort_r(s->order, n, sizeof *s->order, by_prob_desc, s->probs);
    float cum = 0.0f;
    size_t last = n - 1;
    for (size_t i = 0; i < n; i++) {
        cum += s->probs[s->order[i]];
        if (cum > s->top_p) { last = i; break; }
    }
    float r = coin * cum, acc = 0.0f;
    for (size_t i = 0; i <= last; i++) {
        acc += s->probs[s->order[i]];
        if (r < acc) return s->order[i];
    }
    return s->order[last];
}

int qn_sampler_next(qn_sampler *s, const float *logits)
{
    if (s->temperature <= 0.0f) return qn_argmax(logits, s->vocab);
    float max = logits[0];
    for (size_t i = 1; i < s->vocab; i++) if (logits[i] > max) max = logits[i];
    float sum = 0.0f;
    for (size_t i = 0; i < s->vocab; i++) {
        s->probs[i] = expf((logits[i] - max) / s->temperature);
        sum += s->probs[i];
    }
    for (size_t i = 0; i < s->vocab; i++) s->probs[i] /= sum;
    float coin = random_unit(&s->rng);
    if (s->top_p > 0.0f && s->top_p < 1.0f) return sample_top_p(s, coin);
    float acc = 0.0f;
    for (size_t i = 0; i < s->vocab; i++) {
        acc += s->probs[i];
        if (coin < acc) return (int)i;
    }
    return (int)s->vocab - 1;
}
