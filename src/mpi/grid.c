/* Process grids, distributed matrices, status agreement and the moves
 * between replicated and distributed matrices. */
#include "dist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ntk_grid_shape(int size, int *nprow, int *npcol)
{
    int p = 1;
    for (int q = 1; (long)q * q <= size; q++)
        if (size % q == 0) p = q;
    *nprow = p;
    *npcol = size > 0 ? size / p : 1;
}

ntk_status ntk_grid_create(ntk_ctx *ctx, MPI_Comm comm, int nprow, int npcol,
                           ntk_grid *g)
{
    if (!g) return ntk__fail(ctx, NTK_ERR_INVALID, "grid is NULL");
    memset(g, 0, sizeof *g);
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "MPI is not initialised (or already finalised)");
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (nprow == 0 && npcol == 0) ntk_grid_shape(size, &nprow, &npcol);
    if (nprow < 1 || npcol < 1 || (long)nprow * npcol != size)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the process grid %dx%d must use all %d ranks", nprow,
                         npcol, size);
    int me, np;
    Cblacs_pinfo(&me, &np);
    g->comm = comm;
    g->rank = rank;
    g->size = size;
    g->sys = Csys2blacs_handle(comm);
    g->blacs = g->sys;
    Cblacs_gridinit(&g->blacs, "Row", nprow, npcol);
    Cblacs_gridinfo(g->blacs, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
    if (g->nprow != nprow || g->npcol != npcol || g->myrow < 0) {
        Cfree_blacs_system_handle(g->sys);
        return ntk__fail(ctx, NTK_ERR_INVALID, "BLACS could not form a %dx%d grid",
                         nprow, npcol);
    }
    return NTK_OK;
}

void ntk_grid_destroy(ntk_grid *g)
{
    if (!g || g->size == 0) return;
    Cblacs_gridexit(g->blacs);
    Cfree_blacs_system_handle(g->sys);
    g->size = 0;
}

ntk_status ntk_dmat_init(ntk_ctx *ctx, const ntk_grid *g, size_t rows,
                         size_t cols, size_t mb, size_t nb, ntk_dmat *d)
{
    if (!g || g->size == 0) return ntk__fail(ctx, NTK_ERR_INVALID, "grid is not usable");
    if (!d) return ntk__fail(ctx, NTK_ERR_INVALID, "matrix is NULL");
    memset(d, 0, sizeof *d);
    if (rows > INT32_MAX || cols > INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "a distributed %zux%zu matrix exceeds ScaLAPACK's 32-bit sizes",
                         rows, cols);
    if (mb < 1 || nb < 1 || mb > INT32_MAX || nb > INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "block sizes must be between 1 and 2^31 - 1, got %zux%zu", mb, nb);
    d->grid = g;
    d->rows = rows;
    d->cols = cols;
    d->mb = mb;
    d->nb = nb;
    d->lrows = dist_numroc(rows, mb, g->myrow, g->nprow);
    d->lcols = dist_numroc(cols, nb, g->mycol, g->npcol);
    d->lld = d->lrows > 0 ? d->lrows : 1;
    /* ScaLAPACK indexes local arrays with 32-bit integers. */
    if (d->lcols > 0 && d->lld > (size_t)INT32_MAX / d->lcols)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "this rank's part of the %zux%zu matrix (%zux%zu) exceeds "
                         "ScaLAPACK's 32-bit local indexing; use more ranks",
                         rows, cols, d->lrows, d->lcols);
    int m = (int)rows, n = (int)cols, imb = (int)mb, inb = (int)nb, zero = 0;
    int lld = (int)d->lld, ctxt = g->blacs, info = 0;
    descinit_(d->desc, &m, &n, &imb, &inb, &zero, &zero, &ctxt, &lld, &info);
    if (info != 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "descinit refused argument %d", -info);
    return NTK_OK;
}

size_t ntk_dmat_local_count(const ntk_dmat *d) { return d->lld * d->lcols; }

size_t ntk_dmat_global_row(const ntk_dmat *d, size_t l)
{
    return dist_block_global(l / d->mb, d->grid->myrow, d->grid->nprow) * d->mb + l % d->mb;
}

size_t ntk_dmat_global_col(const ntk_dmat *d, size_t l)
{
    return dist_block_global(l / d->nb, d->grid->mycol, d->grid->npcol) * d->nb + l % d->nb;
}

ntk_status dist_check_dmat(ntk_ctx *ctx, const ntk_dmat *d, const char *name)
{
    if (!d || !d->grid || d->grid->size == 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "%s is not an initialised distributed matrix",
                         name);
    if (ntk_dmat_local_count(d) > 0 && !d->data)
        return ntk__fail(ctx, NTK_ERR_INVALID, "%s has no data", name);
    return NTK_OK;
}

ntk_status dist_check_same_grid(ntk_ctx *ctx, const ntk_dmat *a, const ntk_dmat *b,
                                const char *na, const char *nb)
{
    if (a->grid->blacs != b->grid->blacs)
        return ntk__fail(ctx, NTK_ERR_INVALID, "%s and %s must be on the same process grid",
                         na, nb);
    return NTK_OK;
}

ntk_status dist_rows_per_sample(ntk_ctx *ctx, const ntk_net *net,
                                const ntk_kernel_opts *opts, size_t *rps)
{
    if (opts->mode == NTK_MODE_FULL) *rps = ntk_net_output_dim(net);
    else if (opts->mode == NTK_MODE_TRACE) *rps = 1;
    else
        return ntk__fail(ctx, NTK_ERR_UNSUPPORTED,
                         "distributed kernels support modes 'full' and 'trace'");
    return NTK_OK;
}

ntk_status dist_check_input(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                            const char *name)
{
    ntk_status st = ntk__check_mat(ctx, x, name);
    if (st) return st;
    if (x->cols != ntk_net_input_dim(net))
        return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be N x %zu, got %zux%zu", name,
                         ntk_net_input_dim(net), x->rows, x->cols);
    return ntk__check_finite(ctx, x, name);
}

/* ---- agreement ------------------------------------------------------- */

ntk_status ntk_mpi_agree(ntk_ctx *ctx, MPI_Comm comm, ntk_status st)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = st != NTK_OK ? rank : size, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size) return NTK_OK;
    int failed = st != NTK_OK, nfailed;
    MPI_Allreduce(&failed, &nfailed, 1, MPI_INT, MPI_SUM, comm);
    struct {
        int st;
        char msg[NTK_ERRMSG_SIZE];
    } buf;
    memset(&buf, 0, sizeof buf);
    if (rank == first) {
        buf.st = (int)st;
        if (nfailed == size)
            snprintf(buf.msg, sizeof buf.msg, "%s", ctx->err);
        else
            snprintf(buf.msg, sizeof buf.msg, "on rank %d: %.*s", first,
                     NTK_ERRMSG_SIZE - 32, ctx->err);
    }
    MPI_Bcast(&buf, (int)sizeof buf, MPI_BYTE, first, comm);
    return ntk__fail(ctx, (ntk_status)buf.st, "%s", buf.msg);
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

ntk_status ntk_mpi_check_same(ntk_ctx *ctx, MPI_Comm comm, const double *data,
                              size_t count, const char *what)
{
    uint64_t h = fnv1a(&count, sizeof count, 0xcbf29ce484222325ULL);
    if (count) h = fnv1a(data, count * sizeof *data, h);
    uint64_t v[2] = {h, ~h}, r[2];
    MPI_Allreduce(v, r, 2, MPI_UINT64_T, MPI_MAX, comm);
    if (r[0] != h || r[1] != ~h)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "%s differs between ranks: every rank must hold the same %s "
                         "(broadcast it with ntk.mpi.bcast or load the same file)",
                         what, what);
    return NTK_OK;
}

/* ---- moves ------------------------------------------------------------ */

void dist_allreduce_sum(MPI_Comm comm, double *x, size_t n)
{
    for (size_t o = 0; o < n; o += DIST_MSG_DOUBLES) {
        size_t c = n - o < DIST_MSG_DOUBLES ? n - o : DIST_MSG_DOUBLES;
        MPI_Allreduce(MPI_IN_PLACE, x + o, (int)c, MPI_DOUBLE, MPI_SUM, comm);
    }
}

void dist_bcast(MPI_Comm comm, double *x, size_t n, int root)
{
    for (size_t o = 0; o < n; o += DIST_MSG_DOUBLES) {
        size_t c = n - o < DIST_MSG_DOUBLES ? n - o : DIST_MSG_DOUBLES;
        MPI_Bcast(x + o, (int)c, MPI_DOUBLE, root, comm);
    }
}

ntk_status ntk_dmat_scatter(ntk_ctx *ctx, const ntk_mat *m, ntk_dmat *d)
{
    ntk_status st;
    if ((st = dist_check_dmat(ctx, d, "the distributed matrix"))) return st;
    if ((st = ntk__check_mat(ctx, m, "M"))) return st;
    if (m->rows != d->rows || m->cols != d->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "M must be %zux%zu, got %zux%zu", d->rows,
                         d->cols, m->rows, m->cols);
    for (size_t lc = 0; lc < d->lcols; lc++) {
        size_t j = ntk_dmat_global_col(d, lc);
        double *col = d->data + lc * d->lld;
        for (size_t lr = 0; lr < d->lrows; lr++)
            col[lr] = m->data[ntk_dmat_global_row(d, lr) * m->cols + j];
    }
    d->lower = 0;
    return NTK_OK;
}

/* Place the entries of a local part (of process (pr, pc)) into out. */
static void place(const ntk_dmat *d, int pr, int pc, const double *local, size_t lld,
                  double *out)
{
    const ntk_grid *g = d->grid;
    size_t lrows = dist_numroc(d->rows, d->mb, pr, g->nprow);
    size_t lcols = dist_numroc(d->cols, d->nb, pc, g->npcol);
    for (size_t lc = 0; lc < lcols; lc++) {
        size_t J = dist_block_global(lc / d->nb, pc, g->npcol);
        size_t j = J * d->nb + lc % d->nb;
        for (size_t lr = 0; lr < lrows; lr++) {
            size_t I = dist_block_global(lr / d->mb, pr, g->nprow);
            if (d->lower && I < J) continue; /* not computed */
            out[(I * d->mb + lr % d->mb) * d->cols + j] = local[lc * lld + lr];
        }
    }
}

ntk_status ntk_dmat_gather(ntk_ctx *ctx, const ntk_dmat *d, int root, ntk_mat *out)
{
    ntk_status st = dist_check_dmat(ctx, d, "the distributed matrix");
    const ntk_grid *g = d ? d->grid : NULL;
    if (st) return st;
    if (root >= g->size)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "root %d is not a rank (size %d)", root,
                       g->size);
    int receives = root < 0 || root == g->rank;
    if (!st && receives) {
        if ((st = ntk__check_mat(ctx, out, "out")) == NTK_OK &&
            (out->rows != d->rows || out->cols != d->cols))
            st = ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zux%zu, got %zux%zu", d->rows,
                           d->cols, out->rows, out->cols);
    }
    int r0 = root < 0 ? 0 : root;
    double *buf = NULL;
    if (!st && g->rank == r0) {
        size_t maxl = dist_numroc(d->rows, d->mb, 0, g->nprow) *
                      dist_numroc(d->cols, d->nb, 0, g->npcol);
        if (maxl && !(buf = ntk__alloc(ctx, maxl, sizeof *buf))) st = NTK_ERR_NOMEM;
    }
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) {
        ntk__free(ctx, buf);
        return st;
    }
    if (g->rank == r0) {
        for (int p = 0; p < g->size; p++) {
            int pr = p / g->npcol, pc = p % g->npcol;
            size_t lr = dist_numroc(d->rows, d->mb, pr, g->nprow);
            size_t lc = dist_numroc(d->cols, d->nb, pc, g->npcol);
            if (lr * lc == 0) continue;
            const double *src = d->data;
            size_t ld = d->lld;
            if (p != g->rank) {
                MPI_Recv(buf, (int)(lr * lc), MPI_DOUBLE, p, 0, g->comm, MPI_STATUS_IGNORE);
                src = buf;
                ld = lr;
            }
            place(d, pr, pc, src, ld, out->data);
        }
        if (d->lower)
            for (size_t i = 0; i < d->rows; i++)
                for (size_t j = i + 1; j < d->cols; j++)
                    out->data[i * d->cols + j] = out->data[j * d->cols + i];
    } else if (d->lrows * d->lcols > 0) {
        /* lld == lrows whenever there is anything to send. */
        MPI_Send(d->data, (int)(d->lrows * d->lcols), MPI_DOUBLE, r0, 0, g->comm);
    }
    ntk__free(ctx, buf);
    if (root < 0) dist_bcast(g->comm, out->data, d->rows * d->cols, 0);
    return NTK_OK;
}
