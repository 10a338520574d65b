/*
 * Dense symmetric eigendecomposition through LAPACK (dsyevd, dsyevr) and
 * the symmetry checks the kernel methods share.
 *
 * LAPACK is called in column-major order on row-major buffers: a symmetric
 * matrix is its own transpose, and the _work interfaces take workspace we
 * allocate (counted by the context) instead of LAPACKE's hidden copies.
 */
#include "linalg.h"

#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TILE 64

void ntk_eigh_opts_init(ntk_eigh_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->driver = NTK_EIGH_AUTO;
}

ntk_status ntk__check_square(ntk_ctx *ctx, const ntk_mat *a, const char *name)
{
    ntk_status st = ntk__check_mat(ctx, a, name);
    if (st) return st;
    if (a->rows != a->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be square, got %zux%zu", name,
                         a->rows, a->cols);
    if (a->rows > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "%s has %zu rows, beyond LAPACK's 32-bit sizes", name,
                         a->rows);
    return ntk__check_finite(ctx, a, name);
}

static double max_abs(const double *a, size_t count)
{
    double m = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

ntk_status ntk__sym_copy(ntk_ctx *ctx, const ntk_mat *a, const char *name,
                         int symmetrize, double tol, double *dst)
{
    size_t n = a->rows;
    const double *s = a->data;
    if (symmetrize) {
        /* Tiles keep the rows read and the rows written in cache. */
        for (size_t i0 = 0; i0 < n; i0 += TILE)
            for (size_t j0 = 0; j0 <= i0; j0 += TILE) {
                size_t i1 = i0 + TILE < n ? i0 + TILE : n;
                size_t j1 = j0 + TILE < n ? j0 + TILE : n;
                for (size_t i = i0; i < i1; i++)
                    for (size_t j = j0; j < j1 && j <= i; j++) {
                        double v = 0.5 * (s[i * n + j] + s[j * n + i]);
                        dst[i * n + j] = v;
                        dst[j * n + i] = v;
                    }
            }
        return NTK_OK;
    }
    ntk_status st = ntk__sym_check(ctx, a, name, tol);
    if (st) return st;
    memcpy(dst, s, n * n * sizeof(double));
    return NTK_OK;
}

ntk_status ntk__sym_check(ntk_ctx *ctx, const ntk_mat *a, const char *name, double tol)
{
    size_t n = a->rows;
    const double *s = a->data;
    if (tol <= 0) tol = NTK_DEFAULT_SYMMETRY_TOL;
    double scale = max_abs(s, n * n), worst = 0;
    size_t wi = 0, wj = 0;
    for (size_t i0 = 0; i0 < n; i0 += TILE)
        for (size_t j0 = 0; j0 <= i0; j0 += TILE) {
            size_t i1 = i0 + TILE < n ? i0 + TILE : n;
            size_t j1 = j0 + TILE < n ? j0 + TILE : n;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1 && j < i; j++) {
                    double d = fabs(s[i * n + j] - s[j * n + i]);
                    if (d > worst) {
                        worst = d;
                        wi = i;
                        wj = j;
                    }
                }
        }
    if (worst > tol * scale)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "%s is not symmetric: |%s[%zu,%zu] - %s[%zu,%zu]| = %.3g "
                         "exceeds %.3g x max|%s| (%.3g); pass symmetrize to use "
                         "(%s + %s^T)/2",
                         name, name, wj + 1, wi + 1, name, wi + 1, wj + 1, worst, tol,
                         name, scale, name, name);
    return NTK_OK;
}

void ntk__transpose_reverse(double *a, size_t n)
{
    for (size_t i0 = 0; i0 < n; i0 += TILE)
        for (size_t j0 = i0; j0 < n; j0 += TILE) {
            size_t i1 = i0 + TILE < n ? i0 + TILE : n;
            size_t j1 = j0 + TILE < n ? j0 + TILE : n;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = (j0 > i + 1 ? j0 : i + 1); j < j1; j++) {
                    double t = a[i * n + j];
                    a[i * n + j] = a[j * n + i];
                    a[j * n + i] = t;
                }
        }
    for (size_t i = 0; i < n; i++) {
        double *row = a + i * n;
        for (size_t j = 0; j < n / 2; j++) {
            double t = row[j];
            row[j] = row[n - 1 - j];
            row[n - 1 - j] = t;
        }
    }
}

/* dsyevd needs 1 + 6n + 2n^2 doubles of workspace when it computes
 * vectors; LAPACK's 32-bit lwork cannot say that for n >= 32767. */
static int evd_overflows(size_t n, int vectors)
{
    if (!vectors) return 0;
    uint64_t nn = (uint64_t)n;
    return 1 + 6 * nn + 2 * nn * nn > (uint64_t)INT32_MAX;
}

ntk_status ntk_eigh_plan(ntk_ctx *ctx, size_t n, size_t k, int vectors,
                         ntk_eigh_driver asked, ntk_eigh_driver *out)
{
    if (n > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "n = %zu is beyond LAPACK's 32-bit sizes", n);
    if (k > n)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "k must be between 1 and n = %zu, got %zu", n, k);
    if (k == 0) k = n;
    int overflow = evd_overflows(n, vectors);
    switch (asked) {
    case NTK_EIGH_AUTO:
        *out = (k < n || overflow) ? NTK_EIGH_EVR : NTK_EIGH_EVD;
        return NTK_OK;
    case NTK_EIGH_EVD:
        if (overflow)
            return ntk__fail(ctx, NTK_ERR_UNSUPPORTED,
                             "dsyevd with eigenvectors needs 1 + 6n + 2n^2 workspace "
                             "entries, which overflows LAPACK's 32-bit integers for "
                             "n = %zu >= 32767; use the driver 'evr' or 'auto'", n);
        *out = NTK_EIGH_EVD;
        return NTK_OK;
    case NTK_EIGH_EVR: *out = NTK_EIGH_EVR; return NTK_OK;
    }
    return ntk__fail(ctx, NTK_ERR_INVALID, "unknown eigen driver %d", (int)asked);
}

static ntk_status lapack_status(ntk_ctx *ctx, const char *routine, lapack_int info,
                                size_t n)
{
    if (info == 0) return NTK_OK;
    if (info < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "LAPACK %s rejected its argument %d",
                         routine, (int)-info);
    return ntk__fail(ctx, NTK_ERR_NUMERIC,
                     "LAPACK %s failed to converge on the %zu x %zu matrix (info = %d)",
                     routine, n, n, (int)info);
}

/* Workspace sizes from a query (work[0], iwork[0]), checked. */
static ntk_status query_sizes(ntk_ctx *ctx, const char *routine, double wq,
                              lapack_int iq, lapack_int *lwork, lapack_int *liwork)
{
    if (!(wq >= 1) || wq > (double)INT32_MAX || iq < 1)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "LAPACK %s's workspace (%.0f) exceeds its 32-bit sizes",
                         routine, wq);
    *lwork = (lapack_int)wq;
    *liwork = iq;
    return NTK_OK;
}

static ntk_status syev_evd(ntk_ctx *ctx, size_t n, double *a, size_t k, double *w,
                           double *v)
{
    lapack_int N = (lapack_int)n, info, iq = 0, lwork = 0, liwork = 0;
    char jobz = v ? 'V' : 'N';
    double wq = 0;
    double *wall = ntk__alloc(ctx, n, sizeof *wall);
    if (!wall) return NTK_ERR_NOMEM;
    info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, 'L', N, a, N, wall, &wq, -1,
                               &iq, -1);
    ntk_status st = lapack_status(ctx, "dsyevd", info, n);
    if (!st) st = query_sizes(ctx, "dsyevd", wq, iq, &lwork, &liwork);
    if (st) {
        ntk__free(ctx, wall);
        return st;
    }
    double *work = ntk__alloc(ctx, (size_t)lwork, sizeof *work);
    lapack_int *iwork = ntk__alloc(ctx, (size_t)liwork, sizeof *iwork);
    if (!work || !iwork) {
        ntk__free(ctx, work);
        ntk__free(ctx, iwork);
        ntk__free(ctx, wall);
        return NTK_ERR_NOMEM;
    }
    info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, 'L', N, a, N, wall, work, lwork,
                               iwork, liwork);
    ntk__free(ctx, work);
    ntk__free(ctx, iwork);
    if ((st = lapack_status(ctx, "dsyevd", info, n))) {
        ntk__free(ctx, wall);
        return st;
    }
    for (size_t c = 0; c < k; c++) w[c] = wall[n - 1 - c];
    ntk__free(ctx, wall);
    if (!v) return NTK_OK;
    /* Column j of the column-major result is the j-th smallest pair. */
    if (v == a) {
        ntk__transpose_reverse(a, n);
    } else {
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < k; c++) v[i * k + c] = a[i + (n - 1 - c) * n];
    }
    return NTK_OK;
}

static ntk_status syev_evr(ntk_ctx *ctx, size_t n, double *a, size_t k, double *w,
                           double *v)
{
    lapack_int N = (lapack_int)n, info, iq = 0, lwork = 0, liwork = 0, found = 0;
    char jobz = v ? 'V' : 'N', range = k == n ? 'A' : 'I';
    lapack_int il = (lapack_int)(n - k + 1), iu = N;
    double wq = 0, zdummy = 0;
    double *z = &zdummy, *zbuf = NULL;
    if (v) {
        if (k == n && v != a) {
            z = v; /* column-major n x n, fixed up in place below */
        } else {
            z = zbuf = ntk__alloc(ctx, n, k * sizeof(double));
            if (!zbuf) return NTK_ERR_NOMEM;
        }
    }
    double *wall = ntk__alloc(ctx, n, sizeof *wall);
    lapack_int *isuppz = ntk__alloc(ctx, 2 * k, sizeof *isuppz);
    if (!wall || !isuppz) {
        ntk__free(ctx, wall);
        ntk__free(ctx, isuppz);
        ntk__free(ctx, zbuf);
        return NTK_ERR_NOMEM;
    }
    info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'L', N, a, N, 0.0, 0.0, il,
                               iu, 0.0, &found, wall, z, N, isuppz, &wq, -1, &iq, -1);
    ntk_status st = lapack_status(ctx, "dsyevr", info, n);
    if (!st) st = query_sizes(ctx, "dsyevr", wq, iq, &lwork, &liwork);
    double *work = NULL;
    lapack_int *iwork = NULL;
    if (!st) {
        work = ntk__alloc(ctx, (size_t)lwork, sizeof *work);
        iwork = ntk__alloc(ctx, (size_t)liwork, sizeof *iwork);
        if (!work || !iwork) st = NTK_ERR_NOMEM;
    }
    if (!st) {
        info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'L', N, a, N, 0.0, 0.0,
                                   il, iu, 0.0, &found, wall, z, N, isuppz, work, lwork,
                                   iwork, liwork);
        st = lapack_status(ctx, "dsyevr", info, n);
        if (!st && (size_t)found != k)
            st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                           "LAPACK dsyevr found %d of the %zu eigenvalues asked for",
                           (int)found, k);
    }
    ntk__free(ctx, work);
    ntk__free(ctx, iwork);
    ntk__free(ctx, isuppz);
    if (!st) {
        for (size_t c = 0; c < k; c++) w[c] = wall[k - 1 - c];
        if (v) {
            if (z == v) {
                ntk__transpose_reverse(v, n);
            } else {
                for (size_t i = 0; i < n; i++)
                    for (size_t c = 0; c < k; c++) v[i * k + c] = z[i + (k - 1 - c) * n];
            }
        }
    }
    ntk__free(ctx, wall);
    ntk__free(ctx, zbuf);
    return st;
}

ntk_status ntk__syev(ntk_ctx *ctx, size_t n, double *a, size_t k, double *w,
                     double *v, ntk_eigh_driver drv)
{
    if (n == 0 || k == 0) return NTK_OK;
    ntk__enter(ctx);
    return drv == NTK_EIGH_EVD ? syev_evd(ctx, n, a, k, w, v)
                               : syev_evr(ctx, n, a, k, w, v);
}

ntk_status ntk_eigh(ntk_ctx *ctx, const ntk_mat *a, const ntk_eigh_opts *opts,
                    ntk_mat *values, ntk_mat *vectors)
{
    return ntk__eigh(ctx, a, "K", opts, values, vectors);
}

ntk_status ntk__check_eig_out(ntk_ctx *ctx, size_t n, size_t k, const ntk_mat *values,
                              const ntk_mat *vectors)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, values, "values"))) return st;
    if (values->rows != k || values->cols != 1)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "values must be %zux1, got %zux%zu", k,
                         values->rows, values->cols);
    if (vectors) {
        if ((st = ntk__check_mat(ctx, vectors, "vectors"))) return st;
        if (vectors->rows != n || vectors->cols != k)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "vectors must be %zux%zu, got %zux%zu",
                             n, k, vectors->rows, vectors->cols);
    }
    return NTK_OK;
}

ntk_status ntk__eigh(ntk_ctx *ctx, const ntk_mat *a, const char *name,
                     const ntk_eigh_opts *opts, ntk_mat *values, ntk_mat *vectors)
{
    ntk_eigh_opts def;
    if (!opts) {
        ntk_eigh_opts_init(&def);
        opts = &def;
    }
    ntk_status st = ntk__check_square(ctx, a, name);
    if (st) return st;
    size_t n = a->rows;
    if (opts->k > n)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "k must be between 1 and the order of %s (%zu), got %zu", name,
                         n, opts->k);
    size_t k = opts->k ? opts->k : n;
    if ((st = ntk__check_eig_out(ctx, n, k, values, vectors))) return st;
    ntk_eigh_driver drv;
    if ((st = ntk_eigh_plan(ctx, n, k, vectors != NULL, opts->driver, &drv))) return st;
    if (n == 0) return NTK_OK;
    if (ntk__progress(ctx, "eigh", 0, 1)) return NTK_ERR_INTERRUPTED;
    /* dsyevd overwrites its input with the vectors: decompose in place in
     * the output when it is square. */
    int in_place = vectors && k == n && drv == NTK_EIGH_EVD;
    double *buf = in_place ? vectors->data : ntk__alloc(ctx, n, n * sizeof(double));
    if (!buf) return NTK_ERR_NOMEM;
    st = ntk__sym_copy(ctx, a, name, opts->symmetrize, opts->symmetry_tol, buf);
    if (!st)
        st = ntk__syev(ctx, n, buf, k, values->data, vectors ? vectors->data : NULL, drv);
    if (!in_place) ntk__free(ctx, buf);
    if (!st && ntk__progress(ctx, "eigh", 1, 1)) st = NTK_ERR_INTERRUPTED;
    return st;
}
