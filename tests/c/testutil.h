/* What the C tests share beyond the harness (check.h): random data,
 * networks, a progress hook that stops, and an allocator that fails. */
#ifndef NTK_TESTUTIL_H
#define NTK_TESTUTIL_H

#include <stdlib.h>

#include "check.h"
#include "ntk.h"

/* n standard normals from the library's generator (malloc'd; at least one
 * slot, so n = 0 is a valid pointer too). */
static inline double *randn(size_t n, uint64_t seed)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    ntk_rng r;
    ntk_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = ntk_rng_normal(&r);
    return p;
}

/* The n x n Gram matrix of n random vectors in R^r (normals from seed),
 * plus shift on the diagonal: symmetric, positive semi-definite, of rank
 * min(n, r) when shift = 0 (malloc'd). */
static inline double *gram(size_t n, size_t r, double shift, uint64_t seed)
{
    double *g = randn(n * r, seed), *k = malloc((n ? n * n : 1) * sizeof *k);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = i == j ? shift : 0;
            for (size_t t = 0; t < r; t++) s += g[i * r + t] * g[j * r + t];
            k[i * n + j] = s;
        }
    free(g);
    return k;
}

/* An MLP with one activation per hidden layer (acts), created in c; the
 * creation is a check. */
static inline ntk_net *mlp_acts(ntk_ctx *c, const size_t *sizes, size_t depth,
                                const ntk_act *acts, ntk_param param, double weight_std,
                                double bias_std, uint64_t seed)
{
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = depth;
    spec.sizes = sizes;
    spec.acts = acts;
    spec.param = param;
    spec.weight_std = weight_std;
    spec.bias_std = bias_std;
    spec.seed = seed;
    ntk_net *net = NULL;
    CHECK_STATUS(ntk_mlp_create(c, &spec, &net), NTK_OK);
    return net;
}

/* The same with act in every hidden layer (depth at most 16). */
static inline ntk_net *mlp(ntk_ctx *c, const size_t *sizes, size_t depth, ntk_act act,
                           ntk_param param, double weight_std, double bias_std, uint64_t seed)
{
    ntk_act acts[16];
    for (size_t k = 0; k < 16; k++) acts[k] = act;
    return mlp_acts(c, sizes, depth, acts, param, weight_std, bias_std, seed);
}

/* A progress hook that lets *(int *)ud reports through, then stops the
 * work; every report must lie within its task. */
static inline int countdown_hook(void *ud, const char *task, double done, double total)
{
    (void)task;
    CHECK(done >= 0 && done <= total);
    int *left = ud;
    return (*left)-- <= 0;
}

/* qsort order: largest first. */
static inline int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* An allocator (ntk_ctx_create_with) that fails once `left` allocations
 * have succeeded, counting the blocks it has live. */
typedef struct fail_alloc {
    long left, live;
} fail_alloc;

static inline void *failing(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    fail_alloc *f = ud;
    (void)old_size;
    if (new_size == 0) {
        if (ptr) f->live--;
        free(ptr);
        return NULL;
    }
    if (f->left-- <= 0) return NULL;
    if (!ptr) f->live++;
    return realloc(ptr, new_size);
}

#endif
