/* Data preparation: permutations, column statistics, standardisation. */
#include "io.h"

#include <math.h>

/* Uniform integer in [0, bound) without modulo bias (rejection). */
static uint64_t below(ntk_rng *rng, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = ntk_rng_next(rng);
        if (r >= threshold) return r % bound;
    }
}

void ntk_rng_permutation(ntk_rng *rng, size_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)below(rng, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static ntk_status check_row(ntk_ctx *ctx, const ntk_mat *v, size_t cols, const char *name)
{
    ntk_status st = ntk__check_mat(ctx, v, name);
    if (st) return st;
    if (v->rows * v->cols != cols || (v->rows != 1 && v->cols != 1))
        return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be 1 x %zu, got %zu x %zu", name, cols,
                         v->rows, v->cols);
    return NTK_OK;
}

ntk_status ntk_col_stats(ntk_ctx *ctx, const ntk_mat *x, ntk_mat *mean, ntk_mat *std)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, x, "x"))) return st;
    if (x->rows == 0) return ntk__fail(ctx, NTK_ERR_SHAPE, "x has no rows");
    if ((st = check_row(ctx, mean, x->cols, "mean")) || (st = check_row(ctx, std, x->cols, "std")))
        return st;
    if ((st = ntk__check_finite(ctx, x, "x"))) return st;
    size_t n = x->rows, d = x->cols;
    double *m = mean->data, *s = std->data;
    for (size_t j = 0; j < d; j++) m[j] = s[j] = 0;
    /* Two passes (mean, then squared deviations): no cancellation. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) m[j] += x->data[i * d + j];
    for (size_t j = 0; j < d; j++) m[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double e = x->data[i * d + j] - m[j];
            s[j] += e * e;
        }
    for (size_t j = 0; j < d; j++) s[j] = sqrt(s[j] / (double)n);
    return NTK_OK;
}

ntk_status ntk_standardize(ntk_ctx *ctx, const ntk_mat *x, const ntk_mat *mean,
                           const ntk_mat *std, ntk_mat *out)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, x, "x")) || (st = ntk__check_mat(ctx, out, "out")))
        return st;
    if ((st = check_row(ctx, mean, x->cols, "mean")) || (st = check_row(ctx, std, x->cols, "std")))
        return st;
    if (out->rows != x->rows || out->cols != x->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zu x %zu", x->rows, x->cols);
    if ((st = ntk__check_finite(ctx, mean, "mean")) || (st = ntk__check_finite(ctx, std, "std")))
        return st;
    size_t d = x->cols;
    for (size_t j = 0; j < d; j++)
        if (std->data[j] < 0)
            return ntk__fail(ctx, NTK_ERR_INVALID, "std[%zu] is negative", j + 1);
    for (size_t i = 0; i < x->rows; i++)
        for (size_t j = 0; j < d; j++) {
            double sd = std->data[j] > 0 ? std->data[j] : 1.0;
            out->data[i * d + j] = (x->data[i * d + j] - mean->data[j]) / sd;
        }
    return NTK_OK;
}
