/* Private: pieces the kernel methods share. */
#ifndef NTK_KERNEL_H
#define NTK_KERNEL_H

#include "net.h"

/* A kernel request after validation. */
typedef struct ntk_kreq {
    const ntk_net *net;
    const ntk_mat *x1, *x2; /* x2 == x1 for symmetric requests */
    bool sym;
    ntk_mode mode;
    double scale; /* 1/m for trace with normalize_mean, else 1 */
    size_t memory;
    size_t chunk;
    ntk_mat *out; /* m matrices in outputs mode, else 1 */
    size_t count;
} ntk_kreq;

/* Copy the upper triangle of a square n x n matrix (row stride ld) onto
 * its lower triangle. */
void ntk__mirror_upper(double *a, size_t n, size_t ld);
/* The same on the context's threads. */
void ntk__mirror_upper_par(ntk_ctx *ctx, double *a, size_t n, size_t ld);

/*
 * Run fn(arg, lo, hi) over the items [0, n) in blocks of `grain`, dealt
 * cyclically to the context's threads (the caller is one of them). `work`
 * estimates the elements touched: small passes run on the caller alone.
 * fn must not fail; the ranges it gets are disjoint.
 */
typedef void (*ntk__range_fn)(void *arg, size_t lo, size_t hi);
void ntk__parallel(ntk_ctx *ctx, size_t n, size_t grain, double work,
                   ntk__range_fn fn, void *arg);

ntk_status ntk__ntk_jacobian(ntk_ctx *ctx, const ntk_kreq *rq);
ntk_status ntk__ntk_structured(ntk_ctx *ctx, const ntk_kreq *rq);

/* Plans: chunk sizes, flop and memory estimates. */
void ntk__plan_jacobian(const ntk_net *net, size_t n1, size_t n2, bool sym,
                        ntk_mode mode, size_t memory, size_t chunk,
                        ntk_plan *plan);
void ntk__plan_structured(const ntk_net *net, size_t n1, size_t n2, bool sym,
                          ntk_mode mode, size_t memory, size_t chunk,
                          ntk_plan *plan);

#endif
