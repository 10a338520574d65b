/* Private: pieces the eigen routines, the iterative solver and the kernel
 * methods share. */
#ifndef NTK_LINALG_H
#define NTK_LINALG_H

#include "internal.h"

/* a must be square with finite entries; name is used in messages. */
ntk_status ntk__check_square(ntk_ctx *ctx, const ntk_mat *a, const char *name);

/*
 * Copy the square matrix a into dst (n x n). With symmetrize, dst is
 * (a + a^T) / 2; otherwise a must be symmetric within tol * max|a|
 * (tol <= 0: the default), else NTK_ERR_INVALID naming the worst pair.
 */
ntk_status ntk__sym_copy(ntk_ctx *ctx, const ntk_mat *a, const char *name,
                         int symmetrize, double tol, double *dst);

/* The symmetry check alone (no copy). */
ntk_status ntk__sym_check(ntk_ctx *ctx, const ntk_mat *a, const char *name, double tol);

/*
 * Eigenpairs of the symmetric n x n matrix in a (both triangles set;
 * destroyed): the k largest values in w, descending, and if v != NULL
 * their vectors as the columns of v (row-major n x k). v may be a itself
 * when k == n. drv must be resolved (ntk_eigh_plan).
 */
ntk_status ntk__syev(ntk_ctx *ctx, size_t n, double *a, size_t k, double *w,
                     double *v, ntk_eigh_driver drv);

/* The outputs of an eigensolver for k pairs of an n x n matrix: values
 * must be k x 1 and vectors, unless NULL, n x k. */
ntk_status ntk__check_eig_out(ntk_ctx *ctx, size_t n, size_t k, const ntk_mat *values,
                              const ntk_mat *vectors);

/* opts, or when it is NULL the defaults, set up in *def. */
static inline const ntk_eigs_opts *ntk__eigs_opts(const ntk_eigs_opts *opts, ntk_eigs_opts *def)
{
    if (opts) return opts;
    ntk_eigs_opts_init(def);
    return def;
}

/* ntk_eigs' block size for k pairs: opts->block, by default min(k, 32). */
static inline size_t ntk__eigs_block(const ntk_eigs_opts *opts, size_t k)
{
    return opts->block ? opts->block : (k < 32 ? k : 32);
}

/* ntk_eigh with the matrix called `name` in messages. */
ntk_status ntk__eigh(ntk_ctx *ctx, const ntk_mat *a, const char *name,
                     const ntk_eigh_opts *opts, ntk_mat *values, ntk_mat *vectors);

/* In-place transpose of the square n x n matrix a, then reversal of the
 * order of its columns. */
void ntk__transpose_reverse(double *a, size_t n);

#endif
