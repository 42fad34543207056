/* rng.c: graft's pseudo-random numbers: xoshiro256** seeded through
 * splitmix64. Small, fast, and its whole state is four words, so a
 * checkpoint can store it and a resumed run continues the same stream. */
#include "ir/gr_ir.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void gr_rng_seed(gr_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gr_rng_next(gr_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gr_rng_uniform(gr_rng *r) { return (double)(gr_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t gr_rng_below(gr_rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* Rejection removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = gr_rng_next(r);
    while (x >= limit);
    return x % n;
}

void gr_rng_shuffle(gr_rng *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gr_rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

uint64_t gr_hash64(uint64_t x) {
    uint64_t s = x;
    return splitmix64(&s);
}
