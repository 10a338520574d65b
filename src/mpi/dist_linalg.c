/* Distributed eigensolvers and kernel regression, written directly against
 * ScaLAPACK. Every argument ScaLAPACK checks is checked here first, so its
 * error printer (PXERBLA) never speaks; workspace sizes are computed in 64
 * bits and refused when they exceed ScaLAPACK's 32-bit integers. */
#include "dist.h"

#include <math.h>
#include <string.h>

static ntk_status check_square(ntk_ctx *ctx, const ntk_dmat *a, const char *name)
{
    ntk_status st = dist_check_dmat(ctx, a, name);
    if (st) return st;
    if (a->rows != a->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be square, got %zux%zu", name, a->rows,
                         a->cols);
    if (a->mb != a->nb)
        return ntk__fail(ctx, NTK_ERR_INVALID, "%s must have square blocks, got %zux%zu", name,
                         a->mb, a->nb);
    return NTK_OK;
}

/* A workspace length in 64 bits, refused beyond Fortran's INTEGER. */
static ntk_status work_len(ntk_ctx *ctx, double want, const char *routine, int *len)
{
    if (!(want <= (double)INT32_MAX))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "%s needs %.0f words of workspace on this rank, beyond ScaLAPACK's "
                         "32-bit sizes; use more ranks",
                         routine, want);
    *len = want < 1 ? 1 : (int)want;
    return NTK_OK;
}

static double numroc_d(size_t n, size_t nb, int p, int np)
{
    return (double)dist_numroc(n, nb, p, np);
}

/* Reverse the order of values and (if z) of z's first k columns. */
static void reverse(double *w, size_t k, ntk_dmat *z)
{
    for (size_t i = 0; i < k / 2; i++) {
        double t = w[i];
        w[i] = w[k - 1 - i];
        w[k - 1 - i] = t;
    }
    if (!z) return;
    int n = (int)z->rows, one = 1;
    for (size_t i = 0; i < k / 2; i++) {
        int ja = (int)i + 1, jb = (int)(k - i);
        pdswap_(&n, z->data, &one, &ja, z->desc, &one, z->data, &one, &jb, z->desc, &one);
    }
}

/* pdsyevd: all eigenpairs, z n x n. */
static ntk_status syevd(ntk_ctx *ctx, ntk_dmat *a, double *w, ntk_dmat *z)
{
    const ntk_grid *g = a->grid;
    size_t n = a->rows, nb = a->nb;
    int in = (int)n, one = 1, info = 0, lwork, liwork;
    /* The largest local part (process 0's) bounds every rank's needs. */
    double np = numroc_d(n, nb, 0, g->nprow), nq = numroc_d(n, nb, 0, g->npcol);
    double N = (double)n, B = (double)nb;
    /* The documented minimum, in 64 bits: 2 n_p n_q overflows 32-bit
     * integers long before the matrix is too large to hold. It is not
     * enough when blocks are wide next to the local part: pdsyevd passes
     * what is left after 2n (4n for PDSYTRD) to PDSTEDC's PDLASRT, which
     * wants n_p (nb + n_q), and to PDORMTR, which wants (n_p + n_q) nb +
     * nb^2; short of that they print, return early and can leave the other
     * ranks waiting (ScaLAPACK 2.2). So the most of all of them. */
    double lw = fmax(1 + 6 * N + 2 * np * nq, 3 * N + fmax(B * (np + 1), 3 * B)) + 2 * N;
    lw = fmax(lw, 2 * N + fmax(N, np * (B + nq)));
    lw = fmax(lw, 2 * N + fmax(B * (B - 1) / 2, (np + nq + B) * B) + B * B);
    lw = fmax(lw, 4 * N + fmax(B * (np + 1), 3 * B));
    ntk_status st = work_len(ctx, lw, "pdsyevd", &lwork);
    if (!st)
        st = work_len(ctx, fmax(7 * N + 8 * g->npcol + 2, N + 2 * (B + g->npcol)), "pdsyevd",
                      &liwork);
    double *work = NULL;
    int *iwork = NULL;
    if (!st) {
        /* The query can ask for more than the minimum. */
        double q = 0;
        int iq = 0, m1 = -1;
        pdsyevd_("V", "L", &in, a->data, &one, &one, a->desc, w, z->data, &one, &one, z->desc,
                 &q, &m1, &iq, &m1, &info, 1, 1);
        if (info == 0 && q > lwork) st = work_len(ctx, q, "pdsyevd", &lwork);
        if (!st && info == 0 && iq > liwork) liwork = iq;
    }
    if (!st && !(work = ntk__alloc(ctx, (size_t)lwork, sizeof *work))) st = NTK_ERR_NOMEM;
    if (!st && !(iwork = ntk__alloc(ctx, (size_t)liwork, sizeof *iwork))) st = NTK_ERR_NOMEM;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    ntk__enter(ctx);
    pdsyevd_("V", "L", &in, a->data, &one, &one, a->desc, w, z->data, &one, &one, z->desc, work,
             &lwork, iwork, &liwork, &info, 1, 1);
    if (info > 0)
        st = ntk__fail(ctx, NTK_ERR_NOCONV,
                       "pdsyevd failed to converge (info %d): an eigenvalue could not be "
                       "computed",
                       info);
    else if (info < 0)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "pdsyevd refused argument %d", -info);
    /* With n <= nb PDSTEDC solves on process (0, 0) alone and the other
     * ranks keep the tridiagonal's diagonal: theirs come from rank 0. */
    if (!st) MPI_Bcast(w, (int)n, MPI_DOUBLE, 0, g->comm);
done:
    ntk__free(ctx, iwork);
    ntk__free(ctx, work);
    return st;
}

/*
 * How many of the top eigenpairs to ask pdsyevr for when k are wanted.
 * pdsyevr hands PDORMTR a workspace of max(18 n, np0 mq0 + 2 nb^2) with
 * mq0 sized by the count asked, while PDORMTR needs about
 * (np0 + mq0) nb + nb^2: with few eigenvectors and blocks wider than ~18
 * rows per process row it fails, prints, and leaves garbage vectors behind
 * a zero info (ScaLAPACK 2.2). Asking for enough more vectors avoids it.
 */
static size_t evr_count(const ntk_grid *g, size_t n, size_t nb, size_t k)
{
    double np0 = numroc_d(n, nb, 0, g->nprow);
    for (size_t mz = k;; mz = mz + nb < n ? mz + nb : n) {
        double mq0 = numroc_d(mz, nb, 0, g->npcol);
        double have = fmax(18.0 * n, np0 * mq0 + 2.0 * nb * nb);
        double need = fmax(nb * (nb - 1) / 2.0, (mq0 + np0) * nb) + (double)nb * nb;
        if (have >= need || mz >= n) return mz;
    }
}

/*
 * pdsyevr: the top k eigenvalues (k = n: all), ascending in w. With z (an
 * n x k matrix whose local part holds k columns), also their vectors.
 */
static ntk_status syevr(ntk_ctx *ctx, ntk_dmat *a, size_t k, double *w, ntk_dmat *z)
{
    const ntk_grid *g = a->grid;
    size_t n = a->rows, nb = a->nb;
    int in = (int)n, one = 1, info = 0, lwork, liwork, m = 0, nz = 0;
    int il = (int)(n - k + 1), iu = (int)n;
    const char *jobz = z ? "V" : "N", *range = k == n ? "A" : "I";
    double vl = 0, vu = 0;
    /* pdsyevr's descriptor of Z must say n x n, but it writes only the
     * first columns, one per eigenvector it finds: z holds just those. */
    int descz[9];
    memcpy(descz, z ? z->desc : a->desc, sizeof descz);
    descz[DESC_N] = (int)n;
    double nn = fmax(fmax((double)n, (double)nb), 2);
    double np0 = numroc_d((size_t)nn, nb, 0, g->nprow);
    double lw, liw, nnp = fmax(fmax((double)n, g->size + 1.0), 4);
    if (z) {
        double mq0 = numroc_d((size_t)fmax(fmax((double)k, (double)nb), 2), nb, 0, g->npcol);
        lw = 2 + 5.0 * n + fmax(18 * nn, np0 * mq0 + 2.0 * nb * nb) +
             (2 + ceil((double)k / g->size)) * nn;
        liw = 12 * nnp + 2.0 * n;
    } else {
        lw = 2 + 5.0 * n + fmax(12 * nn, nb * (np0 + 1));
        liw = 10 * nnp + 2.0 * n;
    }
    ntk_status st = work_len(ctx, lw, "pdsyevr", &lwork);
    if (!st) st = work_len(ctx, liw, "pdsyevr", &liwork);
    double *work = NULL;
    int *iwork = NULL;
    double *zdata = z ? z->data : a->data;
    if (!st) {
        double q = 0;
        int iq = 0, m1 = -1;
        pdsyevr_(jobz, range, "L", &in, a->data, &one, &one, a->desc, &vl, &vu, &il, &iu, &m,
                 &nz, w, zdata, &one, &one, descz, &q, &m1, &iq, &m1, &info, 1, 1, 1);
        if (info == 0 && q > lwork) st = work_len(ctx, q, "pdsyevr", &lwork);
        if (!st && info == 0 && iq > liwork) liwork = iq;
    }
    if (!st && !(work = ntk__alloc(ctx, (size_t)lwork, sizeof *work))) st = NTK_ERR_NOMEM;
    if (!st && !(iwork = ntk__alloc(ctx, (size_t)liwork, sizeof *iwork))) st = NTK_ERR_NOMEM;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    ntk__enter(ctx);
    pdsyevr_(jobz, range, "L", &in, a->data, &one, &one, a->desc, &vl, &vu, &il, &iu, &m, &nz,
             w, zdata, &one, &one, descz, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    if (info > 0)
        st = ntk__fail(ctx, NTK_ERR_NOCONV, "pdsyevr failed (info %d)", info);
    else if (info < 0)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "pdsyevr refused argument %d", -info);
    else if ((size_t)m != k)
        st = ntk__fail(ctx, NTK_ERR_NOCONV, "pdsyevr found %d of the %zu eigenvalues asked", m,
                       k);
    /* Every rank the same values, whatever the driver's internal paths. */
    if (!st) MPI_Bcast(w, (int)k, MPI_DOUBLE, 0, g->comm);
done:
    ntk__free(ctx, iwork);
    ntk__free(ctx, work);
    return st;
}

/* The top k eigenpairs, descending, into w and z (n x k). */
static ntk_status top_pairs(ntk_ctx *ctx, ntk_dmat *a, size_t k, double *w, ntk_dmat *z)
{
    const ntk_grid *g = a->grid;
    size_t n = a->rows, mz = evr_count(g, n, a->nb, k);
    ntk_dmat t;
    double *tdata = NULL, *wall = NULL;
    ntk_status st = ntk_dmat_init(ctx, g, n, mz, a->nb, a->nb, &t);
    if (!st && !(tdata = ntk__alloc(ctx, ntk_dmat_local_count(&t) ? ntk_dmat_local_count(&t) : 1,
                                    sizeof *tdata)))
        st = NTK_ERR_NOMEM;
    if (!st && !(wall = ntk__alloc(ctx, n, sizeof *wall))) st = NTK_ERR_NOMEM;
    t.data = tdata;
    if (!(st = ntk_mpi_agree(ctx, g->comm, st))) st = syevr(ctx, a, mz, wall, &t);
    if (!(st = ntk_mpi_agree(ctx, g->comm, st))) {
        /* Largest first: column mz - 1 - i of t is column i of z. */
        int in = (int)n, one = 1;
        for (size_t i = 0; i < k; i++) {
            int jx = (int)(mz - i), jy = (int)i + 1;
            w[i] = wall[mz - 1 - i];
            pdcopy_(&in, t.data, &one, &jx, t.desc, &one, z->data, &one, &jy, z->desc, &one);
        }
    }
    ntk__free(ctx, wall);
    ntk__free(ctx, tdata);
    return st;
}

ntk_status ntk_dist_eigvalsh(ntk_ctx *ctx, ntk_dmat *a, size_t k, int divide, double *w)
{
    ntk_status st = check_square(ctx, a, "A");
    if (st) return st;
    const ntk_grid *g = a->grid;
    size_t n = a->rows;
    if (k > n)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "k must be between 1 and %zu, got %zu", n, k);
    else if (n > 0 && !w)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "w is NULL");
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    if (n == 0) return NTK_OK;
    if (k == 0) k = n;
    if (ntk__progress(ctx, "eigvalsh", 0, 1)) st = NTK_ERR_INTERRUPTED;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    double *wall = NULL;
    if (!(wall = ntk__alloc(ctx, n, sizeof *wall))) st = NTK_ERR_NOMEM;
    ntk_dmat z;
    double *zdata = NULL;
    if (!st && divide && k == n) {
        if (!(st = ntk_dmat_init(ctx, g, n, n, a->nb, a->nb, &z)) &&
            !(zdata = ntk__alloc(ctx, ntk_dmat_local_count(&z), sizeof *zdata)))
            st = NTK_ERR_NOMEM;
        z.data = zdata;
    }
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    st = divide && k == n ? syevd(ctx, a, wall, &z) : syevr(ctx, a, k, wall, NULL);
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    /* Ascending from ScaLAPACK; ours is descending. */
    for (size_t i = 0; i < k; i++) w[i] = wall[k - 1 - i];
    if (ntk__progress(ctx, "eigvalsh", 1, 1)) st = NTK_ERR_INTERRUPTED;
    st = ntk_mpi_agree(ctx, g->comm, st);
done:
    ntk__free(ctx, zdata);
    ntk__free(ctx, wall);
    return st;
}

ntk_status ntk_dist_eigh(ntk_ctx *ctx, ntk_dmat *a, size_t k, double *w, ntk_dmat *z)
{
    ntk_status st = check_square(ctx, a, "A");
    if (st) return st;
    const ntk_grid *g = a->grid;
    size_t n = a->rows, want = k ? k : n;
    if (k > n)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "k must be between 1 and %zu, got %zu", n, k);
    else if (n > 0 && !w)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "w is NULL");
    else if ((st = dist_check_dmat(ctx, z, "Z")) == NTK_OK &&
             (st = dist_check_same_grid(ctx, a, z, "A", "Z")) == NTK_OK) {
        if (z->rows != n || z->cols != want)
            st = ntk__fail(ctx, NTK_ERR_SHAPE, "Z must be %zux%zu, got %zux%zu", n, want,
                           z->rows, z->cols);
        else if (z->mb != a->mb || z->nb != a->nb)
            st = ntk__fail(ctx, NTK_ERR_INVALID, "Z must have A's blocks (%zux%zu)", a->mb,
                           a->nb);
    }
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    if (n == 0) return NTK_OK;
    if (ntk__progress(ctx, "eigh", 0, 1)) st = NTK_ERR_INTERRUPTED;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    double *wall = ntk__alloc(ctx, n, sizeof *wall);
    if (!wall) st = NTK_ERR_NOMEM;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    if (k == 0) {
        st = syevd(ctx, a, wall, z);
        if (!(st = ntk_mpi_agree(ctx, g->comm, st))) {
            memcpy(w, wall, want * sizeof *w);
            reverse(w, want, z);
        }
    } else {
        st = top_pairs(ctx, a, k, w, z);
    }
    if (!(st = ntk_mpi_agree(ctx, g->comm, st))) {
        z->lower = 0;
        if (ntk__progress(ctx, "eigh", 1, 1)) st = NTK_ERR_INTERRUPTED;
        st = ntk_mpi_agree(ctx, g->comm, st);
    }
    ntk__free(ctx, wall);
    return st;
}

ntk_status ntk_dist_posv(ntk_ctx *ctx, ntk_dmat *a, double ridge, ntk_dmat *b)
{
    ntk_status st = check_square(ctx, a, "A");
    if (st) return st;
    const ntk_grid *g = a->grid;
    if (!(ridge >= 0) || !isfinite(ridge))
        st = ntk__fail(ctx, NTK_ERR_INVALID, "ridge must be finite and >= 0, got %g", ridge);
    else if ((st = dist_check_dmat(ctx, b, "B")) == NTK_OK &&
             (st = dist_check_same_grid(ctx, a, b, "A", "B")) == NTK_OK) {
        if (b->rows != a->rows)
            st = ntk__fail(ctx, NTK_ERR_SHAPE, "B must have %zu rows, got %zu", a->rows,
                           b->rows);
        else if (b->mb != a->mb)
            st = ntk__fail(ctx, NTK_ERR_INVALID, "B's row blocks must be A's (%zu), got %zu",
                           a->mb, b->mb);
    }
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    if (a->rows == 0 || b->cols == 0) return NTK_OK;
    if (ridge > 0)
        for (size_t lc = 0; lc < a->lcols; lc++) {
            size_t j = ntk_dmat_global_col(a, lc), J = j / a->mb;
            if (!dist_owns_row_block(a, J)) continue;
            size_t lr = (J / (size_t)g->nprow) * a->mb + j % a->mb;
            a->data[lc * a->lld + lr] += ridge;
        }
    if (ntk__progress(ctx, "solve", 0, 1)) st = NTK_ERR_INTERRUPTED;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    int n = (int)a->rows, nrhs = (int)b->cols, one = 1, info = 0;
    ntk__enter(ctx);
    pdposv_("L", &n, &nrhs, a->data, &one, &one, a->desc, b->data, &one, &one, b->desc, &info,
            1);
    if (info > 0)
        st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                       "the kernel%s is not positive definite (its leading minor of order %d "
                       "is not positive); add a ridge",
                       ridge > 0 ? " plus the ridge" : "", info);
    else if (info < 0)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "pdposv refused argument %d", -info);
    if (!st && ntk__progress(ctx, "solve", 1, 1)) st = NTK_ERR_INTERRUPTED;
    return ntk_mpi_agree(ctx, g->comm, st);
}

ntk_status ntk_dist_predict(ntk_ctx *ctx, MPI_Comm comm, const ntk_net *net,
                            const ntk_mat *xtest, const ntk_mat *xtrain, const ntk_mat *alpha,
                            const ntk_kernel_opts *opts, ntk_mat *out)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    ntk_status st = NTK_OK;
    size_t rps = 1;
    if (!net) st = ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if (!st) st = dist_check_input(ctx, net, xtest, "Xtest");
    if (!st) st = dist_check_input(ctx, net, xtrain, "Xtrain");
    if (!st) st = dist_rows_per_sample(ctx, net, opts, &rps);
    if (!st) st = ntk__check_mat(ctx, alpha, "alpha");
    if (!st) st = ntk__check_finite(ctx, alpha, "alpha");
    if (!st) st = ntk__check_mat(ctx, out, "out");
    if (!st && alpha->rows != xtrain->rows * rps)
        st = ntk__fail(ctx, NTK_ERR_SHAPE, "alpha must have %zu rows (Xtrain's samples x %zu), "
                       "got %zu", xtrain->rows * rps, rps, alpha->rows);
    if (!st && (out->rows != xtest->rows * rps || out->cols != alpha->cols))
        st = ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zux%zu, got %zux%zu",
                       xtest->rows * rps, alpha->cols, out->rows, out->cols);
    if ((st = ntk_mpi_agree(ctx, comm, st))) return st;
    if ((st = ntk_mpi_check_same(ctx, comm, ntk_net_params(net), ntk_net_num_params(net),
                                 "network")) ||
        (st = ntk_mpi_check_same(ctx, comm, xtest->data, xtest->rows * xtest->cols, "Xtest")) ||
        (st = ntk_mpi_check_same(ctx, comm, xtrain->data, xtrain->rows * xtrain->cols,
                                 "Xtrain")) ||
        (st = ntk_mpi_check_same(ctx, comm, alpha->data, alpha->rows * alpha->cols, "alpha")))
        return st;

    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    size_t ntr = xtrain->rows, lo = ntr * (size_t)rank / (size_t)size,
           hi = ntr * (size_t)(rank + 1) / (size_t)size;
    size_t tr = xtest->rows * rps, total = out->rows * out->cols;
    memset(out->data, 0, total * sizeof(double));
    size_t budget = opts->memory ? opts->memory : NTK_DEFAULT_MEMORY;
    ntk_kernel_opts ko = *opts;
    ko.memory = budget / 2 > 0 ? budget / 2 : 1;
    /* Training samples per chunk: the (Ntest r) x (chunk r) tile in half. */
    size_t per = tr > 0 ? budget / 2 / sizeof(double) / tr / rps : hi - lo;
    if (per < 1) per = 1;
    double *tile = NULL;
    size_t cap = (hi - lo < per ? hi - lo : per);
    if (tr > 0 && cap > 0 && !(tile = ntk__alloc(ctx, tr * cap * rps, sizeof *tile)))
        st = NTK_ERR_NOMEM;
    if (!st && ntk__progress(ctx, "predict", 0, (double)(hi - lo))) st = NTK_ERR_INTERRUPTED;
    for (size_t s = lo; !st && tr > 0 && s < hi; s += per) {
        size_t c = hi - s < per ? hi - s : per;
        ntk_mat xs = {c, xtrain->cols, xtrain->data + s * xtrain->cols};
        ntk_mat t = {tr, c * rps, tile};
        ntk_progress_fn fn = ctx->progress;
        void *ud = ctx->progress_ud;
        ntk_ctx_set_progress(ctx, NULL, NULL); /* ours is per chunk */
        st = ntk_net_ntk(ctx, net, xtest, &xs, &ko, &t);
        ntk_ctx_set_progress(ctx, fn, ud);
        if (st) break;
        ntk_mat as = {c * rps, alpha->cols, alpha->data + s * rps * alpha->cols};
        if ((st = ntk_mat_gemm(ctx, 0, 0, 1.0, &t, &as, 1.0, out))) break;
        if (ntk__progress(ctx, "predict", (double)(s + c - lo), (double)(hi - lo)))
            st = NTK_ERR_INTERRUPTED;
    }
    ntk__free(ctx, tile);
    if ((st = ntk_mpi_agree(ctx, comm, st))) return st;
    dist_allreduce_sum(comm, out->data, total);
    return NTK_OK;
}
