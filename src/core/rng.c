/*
 * Seeded generator. Parameters must be bit-identical on every machine, so
 * nothing here calls libm (whose log differs between implementations) and
 * the core is compiled with -ffp-contract=off (no fused multiply-adds).
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ntk_rng_seed(ntk_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    rng->spare = 0;
    rng->has_spare = 0;
}

uint64_t ntk_rng_next(ntk_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ntk_rng_uniform(ntk_rng *rng)
{
    return (double)(ntk_rng_next(rng) >> 11) * 0x1.0p-53;
}

/*
 * log(x) for finite x > 0: x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series.
 * frexp and ldexp are exact, so the result depends only on IEEE arithmetic.
 */
double ntk__log_det(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double poly = 1.0 / 25.0;
    for (int k = 11; k >= 0; k--) poly = 1.0 / (2 * k + 1) + s2 * poly;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + ((double)e * ln2_lo + 2.0 * s * poly);
}

/* Marsaglia's polar method: two normals per accepted pair. */
double ntk_rng_normal(ntk_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * ntk_rng_uniform(rng) - 1.0;
        v = 2.0 * ntk_rng_uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * ntk__log_det(s) / s);
    rng->spare = v * f;
    rng->has_spare = 1;
    return u * f;
}

void ntk_rng_fill_normal(ntk_rng *rng, ntk_mat *m)
{
    size_t n = m->rows * m->cols;
    for (size_t k = 0; k < n; k++) m->data[k] = ntk_rng_normal(rng);
}
