/* Private: what the distributed translation units share. */
#ifndef NTK_DIST_H
#define NTK_DIST_H

#include "internal.h"
#include "ntk_mpi.h"
#include "scalapack.h"

#include <limits.h>

/* Global block index of local block b on process coordinate p of np. */
static inline size_t dist_block_global(size_t b, int p, int np)
{
    return b * (size_t)np + (size_t)p;
}

/* Local rows (or columns) of process p among np for n in blocks of nb,
 * first block on process 0: ScaLAPACK's NUMROC in 64 bits. */
static inline size_t dist_numroc(size_t n, size_t nb, int p, int np)
{
    size_t blocks = n / nb, extra = n % nb;
    size_t mine = (blocks / (size_t)np) * nb;
    size_t rem = blocks % (size_t)np;
    if ((size_t)p < rem) mine += nb;
    else if ((size_t)p == rem) mine += extra;
    return mine;
}

/* Does this process own global row block I (column block J)? */
static inline int dist_owns_row_block(const ntk_dmat *d, size_t I)
{
    return (int)(I % (size_t)d->grid->nprow) == d->grid->myrow;
}
static inline int dist_owns_col_block(const ntk_dmat *d, size_t J)
{
    return (int)(J % (size_t)d->grid->npcol) == d->grid->mycol;
}

/* Checks shared by the entry points: d initialised, data present. */
ntk_status dist_check_dmat(ntk_ctx *ctx, const ntk_dmat *d, const char *name);
/* The same grid (and so the same BLACS context). */
ntk_status dist_check_same_grid(ntk_ctx *ctx, const ntk_dmat *a,
                                const ntk_dmat *b, const char *na,
                                const char *nb);

/* Rows of the kernel per sample: m in full mode, 1 in trace mode; other
 * modes are refused. */
ntk_status dist_rows_per_sample(ntk_ctx *ctx, const ntk_net *net,
                                const ntk_kernel_opts *opts, size_t *rps);
/* X must be N x input_dim, finite, with data. */
ntk_status dist_check_input(ntk_ctx *ctx, const ntk_net *net,
                            const ntk_mat *x, const char *name);

/* Largest count of doubles per MPI message we send in one call. */
#define DIST_MSG_DOUBLES ((size_t)1 << 26)

/* Allreduce (sum) of n doubles in place, in messages of bounded size. */
void dist_allreduce_sum(MPI_Comm comm, double *x, size_t n);
/* Broadcast of n doubles from root, in messages of bounded size. */
void dist_bcast(MPI_Comm comm, double *x, size_t n, int root);

#endif
