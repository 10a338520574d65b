/* Private: the matrix-free NTK operator behind ntk_net_ntk_matvec and
 * ntk_net_ntk_eigs. */
#ifndef NTK_NTKOP_H
#define NTK_NTKOP_H

#include "net.h"

typedef struct ntk__ntkop {
    const ntk_net *net;
    const double *x; /* N x n inputs, borrowed */
    size_t nsamp, m;
    size_t chunk;    /* samples per pass */
    size_t kcap;     /* columns per pass */
    size_t nchunks;
    int cached;      /* one tape per chunk kept across products */
    ntk_tape *tapes;
    size_t ntapes;
    double *u;       /* kcap parameter-space vectors, layer-major */
    double *g0, *g1; /* chunk * kcap * max_width each */
    double *ones;    /* chunk ones, for bias sums and broadcasts */
    int report;      /* call the progress hook */
} ntk__ntkop;

/* Columns and samples per pass, and whether the tapes of every sample are
 * kept, for a working-memory budget (0: NTK_DEFAULT_MEMORY). */
void ntk__ntkop_plan(const ntk_net *net, size_t nsamp, size_t k, size_t memory,
                     size_t *kcap, size_t *chunk, int *cached);
/* x must stay alive and unchanged while the operator is used. */
ntk_status ntk__ntkop_init(ntk_ctx *ctx, ntk__ntkop *op, const ntk_net *net,
                           const ntk_mat *x, size_t kmax, size_t memory);
void ntk__ntkop_free(ntk_ctx *ctx, ntk__ntkop *op);
/* An ntk_linop_fn: out (N m x k) = K v. */
ntk_status ntk__ntkop_apply(void *ud, ntk_ctx *ctx, const double *v, size_t ldv,
                            double *out, size_t ldo, size_t k);

#endif
