/* The generator against an independent Python implementation. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "ntk.h"
#include "reference_rng.h"

static void check_seed(uint64_t seed, const uint64_t *ints, const double *normals)
{
    ntk_rng rng;
    ntk_rng_seed(&rng, seed);
    for (int i = 0; i < 8; i++) CHECK_MSG(ntk_rng_next(&rng) == ints[i], "seed %llu draw %d",
                                          (unsigned long long)seed, i);
    ntk_rng_seed(&rng, seed);
    for (int i = 0; i < 8; i++) {
        double v = ntk_rng_normal(&rng);
        /* libm's log may differ from ours in the last bits. */
        CHECK_MSG(fabs(v - normals[i]) <= 4e-16 * fabs(normals[i]) + 1e-300,
                  "seed %llu normal %d: %a vs %a", (unsigned long long)seed, i, v, normals[i]);
    }
}

int main(void)
{
    check_seed(0, ref_rng_ints_0, ref_rng_normals_0);
    check_seed(42, ref_rng_ints_42, ref_rng_normals_42);
    check_seed((1ULL << 63) + 5, ref_rng_ints_813, ref_rng_normals_813);

    /* The library's logarithm against libm over the polar method's range
     * (0, 1) and beyond, subnormals included. */
    double worst = 0;
    double xs[] = {1e-310, 5e-324, 1e-300, 1e-20, 0.1, 0.25, 0.5, 0.7071067811865476,
                   0.75, 0.999999, 1.0, 1.5, 2.0, 10.0, 1e300};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        double a = ntk__log_det(xs[i]), b = log(xs[i]);
        double err = fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1.0);
        if (err > worst) worst = err;
    }
    ntk_rng rng;
    ntk_rng_seed(&rng, 9);
    for (int i = 0; i < 100000; i++) {
        double x = ntk_rng_uniform(&rng);
        if (x == 0) continue;
        double a = ntk__log_det(x), b = log(x);
        double err = fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1.0);
        if (err > worst) worst = err;
    }
    CHECK_MSG(worst < 1e-15, "worst relative error of log %g", worst);
    CHECK(ntk__log_det(1.0) == 0.0);

    /* Moments of many normals: mean 0, variance 1 (5 sigma bounds). */
    ntk_rng_seed(&rng, 123);
    double s = 0, s2 = 0;
    const int n = 1000000;
    for (int i = 0; i < n; i++) {
        double v = ntk_rng_normal(&rng);
        s += v;
        s2 += v * v;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK_MSG(fabs(mean) < 5.0 / sqrt(n), "mean %g", mean);
    CHECK_MSG(fabs(var - 1.0) < 5.0 * sqrt(2.0 / n), "variance %g", var);

    /* Uniforms stay in [0, 1). */
    ntk_rng_seed(&rng, 5);
    int in_range = 1;
    for (int i = 0; i < 100000; i++) {
        double u = ntk_rng_uniform(&rng);
        if (!(u >= 0 && u < 1)) in_range = 0;
    }
    CHECK(in_range);
    return check_report("test_rng");
}
