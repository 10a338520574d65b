/*
 * ntk_mpi.h -- libntk's distributed extension (MPI and ScaLAPACK).
 *
 * Built only with -DNTK_MPI=ON, into libntk_mpi; it needs <mpi.h>, which is
 * why it is a header of its own and not a section of ntk.h.
 *
 * Usage guide
 * -----------
 * The caller initialises MPI (MPI_Init_thread with MPI_THREAD_FUNNELED or
 * more: BLAS threads never call MPI) and finalises it; nothing here does.
 * Every function taking a grid or a distributed matrix is collective over
 * the grid's communicator: all ranks call it, in the same order, with the
 * same global arguments (the same network, the same X). A failure on any
 * rank is a failure on every rank: the status and the message of the
 * lowest failing rank are shared, so no rank is left waiting in a
 * collective that the others have abandoned.
 *
 *     ntk_grid g;
 *     ntk_grid_create(ctx, MPI_COMM_WORLD, 0, 0, &g);   // most square p x q
 *     size_t rows, cols, nb;
 *     ntk_dist_kernel_layout(ctx, net, N, 0, &ko, 0, &g, &rows, &cols, &nb);
 *     ntk_dmat K;
 *     ntk_dmat_init(ctx, &g, rows, cols, nb, nb, &K);
 *     K.data = malloc(ntk_dmat_local_count(&K) * sizeof(double));
 *     ntk_dist_ntk(ctx, net, &X, NULL, &ko, &K);           // lower triangle
 *     double *w = malloc(rows * sizeof *w);
 *     ntk_dist_eigvalsh(ctx, &K, 0, w);                    // K destroyed
 *     ntk_grid_destroy(&g);
 *
 * Layout: ScaLAPACK's 2-D block-cyclic distribution with square mb x nb
 * blocks, first block on process (0, 0), processes in row-major order of
 * their rank (BLACS "Row"). Local storage is column-major (Fortran), with
 * leading dimension lld = max(1, local rows). Kernel blocks hold whole
 * samples: nb is a multiple of the rows per sample (m in "full" mode, 1 in
 * "trace" mode), so block I of rows holds samples I s .. I s + s - 1.
 *
 * Indices are 0-based. ScaLAPACK uses 32-bit integers: global sizes, local
 * element counts and workspace sizes are checked against 2^31 - 1 and
 * refused with NTK_ERR_OVERFLOW rather than passed on to overflow.
 */
#ifndef NTK_MPI_H
#define NTK_MPI_H

#include <mpi.h>

#include "ntk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A BLACS process grid over all ranks of a communicator. */
typedef struct ntk_grid {
    MPI_Comm comm;  /* borrowed; must outlive the grid */
    int blacs;      /* BLACS context handle */
    int sys;        /* BLACS system handle of comm */
    int nprow, npcol, myrow, mycol;
    int rank, size;
} ntk_grid;

/* The most square nprow x npcol = size with nprow <= npcol. */
NTK_API void ntk_grid_shape(int size, int *nprow, int *npcol);
/* Collective. nprow = npcol = 0 chooses ntk_grid_shape(size); otherwise
 * nprow * npcol must equal the communicator's size. */
NTK_API ntk_status ntk_grid_create(ntk_ctx *ctx, MPI_Comm comm, int nprow,
                                   int npcol, ntk_grid *g);
/* Collective. Releases the BLACS context; g is then unusable. */
NTK_API void ntk_grid_destroy(ntk_grid *g);

/* A distributed rows x cols matrix: this rank's part. */
typedef struct ntk_dmat {
    const ntk_grid *grid;
    size_t rows, cols;   /* global */
    size_t mb, nb;       /* block rows and columns */
    size_t lrows, lcols; /* this rank's part */
    size_t lld;          /* leading dimension, max(1, lrows) */
    int desc[9];         /* ScaLAPACK descriptor */
    int lower;           /* symmetric, only the lower triangle is valid */
    double *data;        /* lld x lcols, column-major, caller-owned */
} ntk_dmat;

/* Fill the shape and descriptor (data is left NULL for the caller). */
NTK_API ntk_status ntk_dmat_init(ntk_ctx *ctx, const ntk_grid *g,
                                 size_t rows, size_t cols, size_t mb,
                                 size_t nb, ntk_dmat *d);
/* Doubles this rank holds: lld * lcols. */
NTK_API size_t ntk_dmat_local_count(const ntk_dmat *d);
/* Global row of local row l, global column of local column l. */
NTK_API size_t ntk_dmat_global_row(const ntk_dmat *d, size_t l);
NTK_API size_t ntk_dmat_global_col(const ntk_dmat *d, size_t l);
/* Fill d from a matrix every rank holds whole (rows x cols, row-major):
 * each rank copies the entries it owns. Local, no communication. */
NTK_API ntk_status ntk_dmat_scatter(ntk_ctx *ctx, const ntk_mat *m,
                                    ntk_dmat *d);
/* The whole matrix on `root` (or on every rank if root < 0): out is
 * rows x cols row-major, needed on the receiving ranks only (others may
 * pass NULL). A lower-stored matrix comes back symmetric. */
NTK_API ntk_status ntk_dmat_gather(ntk_ctx *ctx, const ntk_dmat *d, int root,
                                   ntk_mat *out);

/* Collective status agreement: returns the status of the lowest failing
 * rank (NTK_OK if none) and gives every rank its message. */
NTK_API ntk_status ntk_mpi_agree(ntk_ctx *ctx, MPI_Comm comm, ntk_status st);
/* NTK_ERR_INVALID on every rank unless all ranks hold the same count
 * doubles (compared by a 64-bit hash); what names them in the message. */
NTK_API ntk_status ntk_mpi_check_same(ntk_ctx *ctx, MPI_Comm comm,
                                      const double *data, size_t count,
                                      const char *what);

/*
 * Shape and block size of a distributed kernel of n1 (and n2; 0 for the
 * symmetric kernel) samples: modes "full" and "trace". block_samples = 0
 * picks a default (about 64 rows per block, at least two blocks per process
 * row and column when n1 allows). nb = block_samples * rows per sample.
 */
NTK_API ntk_status ntk_dist_kernel_layout(ntk_ctx *ctx, const ntk_net *net,
                                          size_t n1, size_t n2,
                                          const ntk_kernel_opts *opts,
                                          size_t block_samples,
                                          const ntk_grid *g, size_t *rows,
                                          size_t *cols, size_t *nb);

/*
 * The NTK into a distributed matrix laid out by ntk_dist_kernel_layout.
 * Every rank holds the whole network and X1 (and X2); each rank computes
 * its own blocks with ntk_net_ntk on the samples of its block rows and
 * columns. X2 == NULL: the symmetric kernel, whose lower triangle of
 * blocks is computed (each block once; diagonal blocks whole) and
 * out->lower set. opts->memory bounds this rank's working memory.
 */
NTK_API ntk_status ntk_dist_ntk(ntk_ctx *ctx, const ntk_net *net,
                                const ntk_mat *x1, const ntk_mat *x2,
                                const ntk_kernel_opts *opts, ntk_dmat *out);

/*
 * Eigenvalues of the symmetric a (its lower triangle is read; a is
 * destroyed), in descending order, on every rank. k = 0: all n, through
 * pdsyevd when `divide` is nonzero, else pdsyevr; k > 0: the top k through
 * pdsyevr. w holds k (or n) values.
 */
NTK_API ntk_status ntk_dist_eigvalsh(ntk_ctx *ctx, ntk_dmat *a, size_t k,
                                     int divide, double *w);
/*
 * Eigenpairs of the symmetric a (destroyed): w as above, z an n x (k or n)
 * distributed matrix on a's grid and block size whose columns are the
 * orthonormal eigenvectors matching w. k = 0 uses pdsyevd, k > 0 pdsyevr.
 */
NTK_API ntk_status ntk_dist_eigh(ntk_ctx *ctx, ntk_dmat *a, size_t k,
                                 double *w, ntk_dmat *z);

/*
 * Solve (A + ridge I) X = B by Cholesky (pdposv): a symmetric (lower
 * triangle read, destroyed), b n x nrhs on a's grid with b->mb == a->mb,
 * overwritten by X. Not positive definite: NTK_ERR_NUMERIC.
 */
NTK_API ntk_status ntk_dist_posv(ntk_ctx *ctx, ntk_dmat *a, double ridge,
                                 ntk_dmat *b);

/*
 * out = K(Xtest, Xtrain) alpha on every rank, without forming K(Xtest,
 * Xtrain) on any rank: the training samples are split among the ranks of
 * comm, each computes its share in memory-bounded chunks, and the partial
 * products are summed. alpha is (Ntrain r) x c, out (Ntest r) x c, where r
 * is m in "full" mode and 1 in "trace" mode.
 */
NTK_API ntk_status ntk_dist_predict(ntk_ctx *ctx, MPI_Comm comm,
                                    const ntk_net *net, const ntk_mat *xtest,
                                    const ntk_mat *xtrain,
                                    const ntk_mat *alpha,
                                    const ntk_kernel_opts *opts,
                                    ntk_mat *out);

/*
 * Write the whole matrix to one .npy file (little-endian float64, C order,
 * shape (rows, cols)) with MPI-IO: rank 0 writes the header and every rank
 * writes the blocks it owns at their offsets (a lower-stored matrix also
 * writes each block's mirror), in collective rounds of bounded size. No
 * rank ever holds more than its own part.
 */
NTK_API ntk_status ntk_dist_save_npy(ntk_ctx *ctx, const ntk_dmat *a,
                                     const char *path);

#ifdef __cplusplus
}
#endif

#endif /* NTK_MPI_H */
