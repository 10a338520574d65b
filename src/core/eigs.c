/*
 * Top-k eigenpairs of a symmetric operator known only through its
 * products: thick-restart block Lanczos with full reorthogonalisation.
 *
 * The basis Q (n x mdim) grows one block of b columns per operator
 * application. The projected matrix H = Q^T A Q is kept explicitly (each
 * new block's column is computed by projection, not assumed tridiagonal),
 * so after a thick restart, which keeps the p best Ritz vectors and the
 * pending block, the same code continues. With the new block's
 * orthonormalisation Y = Q_new B, the Krylov relation
 *     A Q = Q H + Q_new B E_cur^T
 * gives the Ritz residuals ||A x - theta x|| = ||B s_cur|| for free; the
 * pairs that pass are confirmed with one explicit product before the
 * solver reports convergence.
 */
#include "linalg.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* A column whose norm after orthogonalisation falls below DROP times the
 * operator's scale carries only rounding: it is replaced by a random
 * direction (invariant subspaces, rank-deficient operators). */
#define DROP 1e-12
/* Rows per tile when the restart rotates the basis in place. */
#define ROW_TILE 256

void ntk_eigs_opts_init(ntk_eigs_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

typedef struct lanczos {
    size_t n, k, b, mdim, p;
    ntk_linop_fn op;
    void *ud;
    double *q;     /* n x mdim basis */
    double *h;     /* mdim x mdim projection */
    double *s;     /* j x j Ritz vectors (row-major, columns descending) */
    double *theta; /* mdim Ritz values, descending */
    double *y;     /* n x b new block */
    double *c;     /* mdim x b projection coefficients */
    double *bm;    /* b x b: Y = Q_new B */
    double *x, *ax; /* n x k Ritz vectors and their products */
    double *tmp;   /* ROW_TILE x mdim, and mdim scratch */
    double *res;   /* k residual estimates */
    double scale;  /* largest column norm of A q seen */
    ntk_rng rng;
} lanczos;

static void lz_free(ntk_ctx *ctx, lanczos *lz)
{
    ntk__free(ctx, lz->q);
    ntk__free(ctx, lz->h);
    ntk__free(ctx, lz->s);
    ntk__free(ctx, lz->theta);
    ntk__free(ctx, lz->y);
    ntk__free(ctx, lz->c);
    ntk__free(ctx, lz->bm);
    ntk__free(ctx, lz->x);
    ntk__free(ctx, lz->ax);
    ntk__free(ctx, lz->tmp);
    ntk__free(ctx, lz->res);
}

static ntk_status lz_alloc(ntk_ctx *ctx, lanczos *lz)
{
    size_t n = lz->n, m = lz->mdim, b = lz->b, k = lz->k;
    lz->q = ntk__alloc(ctx, n, m * sizeof(double));
    lz->h = ntk__calloc(ctx, m, m * sizeof(double));
    lz->s = ntk__alloc(ctx, m, m * sizeof(double));
    lz->theta = ntk__alloc(ctx, m, sizeof(double));
    lz->y = ntk__alloc(ctx, n, b * sizeof(double));
    lz->c = ntk__alloc(ctx, m, b * sizeof(double));
    lz->bm = ntk__alloc(ctx, b, b * sizeof(double));
    lz->x = ntk__alloc(ctx, n, k * sizeof(double));
    lz->ax = ntk__alloc(ctx, n, k * sizeof(double));
    lz->tmp = ntk__alloc(ctx, (b > ROW_TILE ? b : ROW_TILE) + 1, m * sizeof(double));
    lz->res = ntk__alloc(ctx, k, sizeof(double));
    if (!lz->q || !lz->h || !lz->s || !lz->theta || !lz->y || !lz->c || !lz->bm ||
        !lz->x || !lz->ax || !lz->tmp || !lz->res) {
        lz_free(ctx, lz);
        return NTK_ERR_NOMEM;
    }
    return NTK_OK;
}

/* Y -= Q[:, 0:j] (Q[:, 0:j]^T Y), twice (classical Gram-Schmidt with
 * reorthogonalisation); the coefficients are added into c (j x b). */
static void project_out(lanczos *lz, size_t j)
{
    size_t n = lz->n, b = lz->b, m = lz->mdim;
    if (j == 0) return;
    memset(lz->c, 0, j * b * sizeof(double));
    double *c2 = lz->tmp;
    for (int pass = 0; pass < 2; pass++) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)j, (int)b, (int)n, 1.0,
                    lz->q, (int)m, lz->y, (int)b, 0.0, c2, (int)b);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)b, (int)j,
                    -1.0, lz->q, (int)m, c2, (int)b, 1.0, lz->y, (int)b);
        for (size_t i = 0; i < j * b; i++) lz->c[i] += c2[i];
    }
}

/* Orthonormalise Y's columns among themselves (Y = Q_new B, B upper
 * triangular), replacing columns that vanish by random directions
 * orthogonal to Q[:, 0:j] and to the earlier columns. */
static void orthonormalise(lanczos *lz, size_t j)
{
    size_t n = lz->n, b = lz->b, m = lz->mdim;
    double *y = lz->y, *bm = lz->bm, *t = lz->tmp;
    memset(bm, 0, b * b * sizeof(double));
    for (size_t c = 0; c < b; c++) {
        double *yc = y + c;
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < c; i++) {
                double r = cblas_ddot((int)n, y + i, (int)b, yc, (int)b);
                cblas_daxpy((int)n, -r, y + i, (int)b, yc, (int)b);
                bm[i * b + c] += r;
            }
        double nrm = cblas_dnrm2((int)n, yc, (int)b);
        if (nrm > DROP * lz->scale && nrm > 0) {
            cblas_dscal((int)n, 1.0 / nrm, yc, (int)b);
            bm[c * b + c] = nrm;
            continue;
        }
        /* The block lost a direction: continue with a random one. The
         * dropped part is below DROP times the operator's scale. */
        for (int attempt = 0; attempt < 4; attempt++) {
            for (size_t r = 0; r < n; r++) yc[r * b] = ntk_rng_normal(&lz->rng);
            for (int pass = 0; pass < 2; pass++) {
                if (j > 0) {
                    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)j, 1.0, lz->q,
                                (int)m, yc, (int)b, 0.0, t, 1);
                    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)j, -1.0, lz->q,
                                (int)m, t, 1, 1.0, yc, (int)b);
                }
                for (size_t i = 0; i < c; i++) {
                    double r = cblas_ddot((int)n, y + i, (int)b, yc, (int)b);
                    cblas_daxpy((int)n, -r, y + i, (int)b, yc, (int)b);
                }
            }
            nrm = cblas_dnrm2((int)n, yc, (int)b);
            if (nrm > 1e-8 * sqrt((double)n)) break;
        }
        cblas_dscal((int)n, 1.0 / nrm, yc, (int)b);
    }
}

static void update_scale(lanczos *lz)
{
    for (size_t c = 0; c < lz->b; c++) {
        double nrm = cblas_dnrm2((int)lz->n, lz->y + c, (int)lz->b);
        if (nrm > lz->scale) lz->scale = nrm;
    }
}

/* Q[:, col:col+b] = Y */
static void place_block(lanczos *lz, size_t col)
{
    for (size_t r = 0; r < lz->n; r++)
        memcpy(lz->q + r * lz->mdim + col, lz->y + r * lz->b, lz->b * sizeof(double));
}

/* Ritz pairs of H[0:j, 0:j]: theta descending, S's columns matching. */
static ntk_status ritz(ntk_ctx *ctx, lanczos *lz, size_t j)
{
    for (size_t r = 0; r < j; r++)
        memcpy(lz->s + r * j, lz->h + r * lz->mdim, j * sizeof(double));
    return ntk__syev(ctx, j, lz->s, j, lz->theta, lz->s, NTK_EIGH_EVD);
}

/* X = Q[:, 0:j] S[:, 0:k], AX = A X, res = ||AX - X theta|| per column. */
static ntk_status explicit_residuals(ntk_ctx *ctx, lanczos *lz, size_t j,
                                     size_t *matvecs)
{
    size_t n = lz->n, k = lz->k;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)j, 1.0,
                lz->q, (int)lz->mdim, lz->s, (int)j, 0.0, lz->x, (int)k);
    ntk_status st = lz->op(lz->ud, ctx, lz->x, k, lz->ax, k, k);
    if (st) return st;
    *matvecs += k;
    for (size_t c = 0; c < k; c++) {
        double s = 0;
        for (size_t r = 0; r < n; r++) {
            double d = lz->ax[r * k + c] - lz->theta[c] * lz->x[r * k + c];
            s += d * d;
        }
        lz->res[c] = sqrt(s);
    }
    return NTK_OK;
}

/* Thick restart: keep the p best Ritz vectors and the pending block. */
static void restart(lanczos *lz, size_t j, size_t cur)
{
    size_t n = lz->n, m = lz->mdim, p = lz->p, b = lz->b;
    for (size_t r0 = 0; r0 < n; r0 += ROW_TILE) {
        size_t rows = n - r0 < ROW_TILE ? n - r0 : ROW_TILE;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)p, (int)j,
                    1.0, lz->q + r0 * m, (int)m, lz->s, (int)j, 0.0, lz->tmp, (int)p);
        for (size_t r = 0; r < rows; r++)
            memcpy(lz->q + (r0 + r) * m, lz->tmp + r * p, p * sizeof(double));
    }
    memset(lz->h, 0, m * m * sizeof(double));
    for (size_t i = 0; i < p; i++) lz->h[i * m + i] = lz->theta[i];
    /* A X = X Theta + Q_new (B S[cur:cur+b, 0:p]). */
    for (size_t r = 0; r < b; r++)
        for (size_t i = 0; i < p; i++) {
            double e = 0;
            for (size_t t = r; t < b; t++) e += lz->bm[r * b + t] * lz->s[(cur + t) * j + i];
            lz->h[(p + r) * m + i] = e;
            lz->h[i * m + p + r] = e;
        }
    place_block(lz, p);
}

static double progress_of(const lanczos *lz, double tol, double anorm)
{
    double done = 0;
    for (size_t i = 0; i < lz->k; i++) {
        double rel = anorm > 0 ? lz->res[i] / anorm : 0;
        if (rel <= tol) done += 1;
        else if (rel < 1) done += log(rel) / log(tol);
    }
    return done;
}

/* Small problems: form A column block by column block and decompose. */
static ntk_status eigs_dense(ntk_ctx *ctx, size_t n, ntk_linop_fn op, void *ud,
                             size_t k, size_t b, ntk_mat *values, ntk_mat *vectors,
                             ntk_mat *residuals, ntk_eigs_info *info)
{
    double *a = ntk__alloc(ctx, n, n * sizeof(double));
    double *e = ntk__calloc(ctx, n, b * sizeof(double));
    double *out = ntk__alloc(ctx, n, b * sizeof(double));
    double *v = ntk__alloc(ctx, n, k * sizeof(double));
    double *w = ntk__alloc(ctx, k, sizeof(double));
    double *sym = ntk__alloc(ctx, n, n * sizeof(double));
    ntk_status st = NTK_OK;
    if (!a || !e || !out || !v || !w || !sym) st = NTK_ERR_NOMEM;
    for (size_t c0 = 0; !st && c0 < n; c0 += b) {
        size_t cols = n - c0 < b ? n - c0 : b;
        memset(e, 0, n * b * sizeof(double));
        for (size_t c = 0; c < cols; c++) e[(c0 + c) * b + c] = 1.0;
        st = op(ud, ctx, e, b, out, b, b);
        info->iterations++;
        info->matvecs += b;
        for (size_t r = 0; !st && r < n; r++)
            for (size_t c = 0; c < cols; c++) a[r * n + c0 + c] = out[r * b + c];
    }
    if (!st) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j <= i; j++)
                sym[i * n + j] = sym[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
        st = ntk__syev(ctx, n, sym, k, w, v, k == n ? NTK_EIGH_EVD : NTK_EIGH_EVR);
    }
    if (!st) {
        /* Residuals against the operator as formed (A, not its symmetric part). */
        double *av = sym; /* n x k, sym is free now */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)n,
                    1.0, a, (int)n, v, (int)k, 0.0, av, (int)k);
        double worst = 0;
        for (size_t c = 0; c < k; c++) {
            double s = 0;
            for (size_t r = 0; r < n; r++) {
                double d = av[r * k + c] - w[c] * v[r * k + c];
                s += d * d;
            }
            s = sqrt(s);
            if (s > worst) worst = s;
            if (residuals) residuals->data[c] = s;
        }
        memcpy(values->data, w, k * sizeof(double));
        if (vectors) memcpy(vectors->data, v, n * k * sizeof(double));
        info->converged = k;
        info->residual = worst;
        info->scale = fabs(w[0]) > fabs(w[k - 1]) ? fabs(w[0]) : fabs(w[k - 1]);
        info->dense = 1;
    }
    ntk__free(ctx, a);
    ntk__free(ctx, e);
    ntk__free(ctx, out);
    ntk__free(ctx, v);
    ntk__free(ctx, w);
    ntk__free(ctx, sym);
    return st;
}

ntk_status ntk_eigs(ntk_ctx *ctx, size_t n, ntk_linop_fn op, void *ud, size_t k,
                    const ntk_eigs_opts *opts, ntk_mat *values, ntk_mat *vectors,
                    ntk_mat *residuals, ntk_eigs_info *info)
{
    ntk_eigs_opts def;
    opts = ntk__eigs_opts(opts, &def);
    ntk_eigs_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    ntk_status st;
    if (!op) return ntk__fail(ctx, NTK_ERR_INVALID, "the operator is NULL");
    if (n > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "n = %zu is beyond BLAS's 32-bit sizes", n);
    if (k < 1 || k > n)
        return ntk__fail(ctx, NTK_ERR_INVALID, "k must be between 1 and n = %zu, got %zu",
                         n, k);
    double tol = opts->tol == 0 ? NTK_DEFAULT_EIGS_TOL : opts->tol;
    if (!(tol > 0 && tol < 1))
        return ntk__fail(ctx, NTK_ERR_INVALID, "tol must be in (0, 1), got %g", opts->tol);
    size_t b = ntk__eigs_block(opts, k);
    if (b > n)
        return ntk__fail(ctx, NTK_ERR_INVALID, "block must be at most n = %zu, got %zu",
                         n, b);
    size_t mdim = opts->basis;
    if (mdim == 0) {
        mdim = 2 * k + 4 * b;
        if (mdim < 20) mdim = 20;
    }
    if (mdim < k + b)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "basis must be at least k + block = %zu, got %zu", k + b, mdim);
    size_t maxiter = opts->maxiter ? opts->maxiter : NTK_DEFAULT_EIGS_MAXITER;
    if ((st = ntk__check_eig_out(ctx, n, k, values, vectors))) return st;
    if (residuals) {
        if ((st = ntk__check_mat(ctx, residuals, "residuals"))) return st;
        if (residuals->rows != k || residuals->cols != 1)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "residuals must be %zux1, got %zux%zu",
                             k, residuals->rows, residuals->cols);
    }
    size_t bytes;
    if (!ntk__mul(n, mdim, &bytes) || !ntk__mul(bytes, sizeof(double), &bytes) ||
        (size_t)INT32_MAX / mdim < mdim)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "a basis of %zu x %zu is too large", n,
                         mdim);
    if (ntk__progress(ctx, "eigs", 0, (double)k)) return NTK_ERR_INTERRUPTED;

    /* A basis that would span (nearly) everything: decompose densely. */
    if (mdim + b > n) {
        st = eigs_dense(ctx, n, op, ud, k, b, values, vectors, residuals, info);
        if (!st && ntk__progress(ctx, "eigs", (double)k, (double)k))
            st = NTK_ERR_INTERRUPTED;
        return st;
    }

    lanczos lz;
    memset(&lz, 0, sizeof lz);
    lz.n = n;
    lz.k = k;
    lz.b = b;
    lz.mdim = mdim;
    lz.p = k + (mdim - b - k) / 2;
    lz.op = op;
    lz.ud = ud;
    ntk_rng_seed(&lz.rng, opts->seed);
    if ((st = lz_alloc(ctx, &lz))) return st;

    /* Random start, orthonormalised. */
    for (size_t i = 0; i < n * b; i++) lz.y[i] = ntk_rng_normal(&lz.rng);
    lz.scale = 1;
    orthonormalise(&lz, 0);
    lz.scale = 0;
    place_block(&lz, 0);
    size_t cur = 0, j = b;
    double verify = 1.0; /* estimates must reach verify * tol to be checked */
    int converged = 0;
    double anorm = 0;

    for (;;) {
        st = op(ud, ctx, lz.q + cur, mdim, lz.y, b, b);
        if (st) break;
        info->iterations++;
        info->matvecs += b;
        update_scale(&lz);
        project_out(&lz, j);
        for (size_t r = 0; r < j; r++)
            for (size_t c = 0; c < b; c++) {
                lz.h[r * mdim + cur + c] = lz.c[r * b + c];
                lz.h[(cur + c) * mdim + r] = lz.c[r * b + c];
            }
        for (size_t r = 0; r < b; r++) /* the diagonal block, symmetric */
            for (size_t c = 0; c < r; c++) {
                double v = 0.5 * (lz.c[(cur + r) * b + c] + lz.c[(cur + c) * b + r]);
                lz.h[(cur + r) * mdim + cur + c] = v;
                lz.h[(cur + c) * mdim + cur + r] = v;
            }
        orthonormalise(&lz, j);
        if ((st = ritz(ctx, &lz, j))) break;
        anorm = fabs(lz.theta[0]) > fabs(lz.theta[j - 1]) ? fabs(lz.theta[0])
                                                           : fabs(lz.theta[j - 1]);
        size_t nconv = 0;
        for (size_t i = 0; i < k; i++) {
            if (i >= j) { /* the basis does not hold k vectors yet */
                lz.res[i] = HUGE_VAL;
                continue;
            }
            double e = 0;
            for (size_t r = 0; r < b; r++) {
                double t = 0;
                for (size_t c = r; c < b; c++)
                    t += lz.bm[r * b + c] * lz.s[(cur + c) * j + i];
                e += t * t;
            }
            lz.res[i] = sqrt(e);
            if (lz.res[i] <= tol * anorm) nconv++;
        }
        info->converged = nconv;
        if (ntk__progress(ctx, "eigs", progress_of(&lz, tol, anorm), (double)k)) {
            st = NTK_ERR_INTERRUPTED;
            break;
        }
        /* Iterations go on past maxiter until the basis holds k vectors,
         * so that there are k best estimates to report. */
        int estimated = j >= k, last = info->iterations >= maxiter && j >= k;
        for (size_t i = 0; i < k; i++)
            if (lz.res[i] > verify * tol * anorm) estimated = 0;
        if (estimated || last) {
            /* Confirm with an explicit product; on the last iteration this
             * also makes the best estimates' residuals true ones. */
            if ((st = explicit_residuals(ctx, &lz, j, &info->matvecs))) break;
            nconv = 0;
            for (size_t i = 0; i < k; i++)
                if (lz.res[i] <= tol * anorm) nconv++;
            info->converged = nconv;
            if (nconv == k) {
                converged = 1;
                break;
            }
            if (last) break;
            verify *= 0.1; /* rounding spoilt the estimate: ask for more */
        }
        if (j + b <= mdim) {
            place_block(&lz, j);
            for (size_t r = 0; r < b; r++)
                for (size_t c = 0; c < b; c++) {
                    lz.h[(j + r) * mdim + cur + c] = lz.bm[r * b + c];
                    lz.h[(cur + c) * mdim + j + r] = lz.bm[r * b + c];
                }
            cur = j;
            j += b;
        } else {
            restart(&lz, j, cur);
            info->restarts++;
            cur = lz.p;
            j = lz.p + b;
        }
    }
    if (!st) {
        double worst = 0;
        for (size_t i = 0; i < k; i++)
            if (lz.res[i] > worst) worst = lz.res[i];
        info->residual = worst;
        info->scale = anorm;
        memcpy(values->data, lz.theta, k * sizeof(double));
        if (vectors) memcpy(vectors->data, lz.x, n * k * sizeof(double));
        if (residuals) memcpy(residuals->data, lz.res, k * sizeof(double));
        if (!converged)
            st = ntk__fail(ctx, NTK_ERR_NOCONV,
                           "eigs did not converge: %zu of %zu eigenpairs within the "
                           "tolerance after %zu iterations (largest residual %.3g, "
                           "wanted %.3g x %.3g); raise maxiter or basis, or loosen tol",
                           info->converged, k, info->iterations, worst, tol, anorm);
        else if (ntk__progress(ctx, "eigs", (double)k, (double)k))
            st = NTK_ERR_INTERRUPTED;
    }
    lz_free(ctx, &lz);
    return st;
}

/* ---- a dense symmetric matrix as an operator ---- */

typedef struct dense_op {
    const ntk_mat *a;
    int symmetrize;
} dense_op;

static ntk_status dense_apply(void *ud, ntk_ctx *ctx, const double *v, size_t ldv,
                              double *out, size_t ldo, size_t k)
{
    const dense_op *d = ud;
    size_t n = d->a->rows;
    ntk__enter(ctx);
    if (d->symmetrize) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)n, 0.5,
                    d->a->data, (int)n, v, (int)ldv, 0.0, out, (int)ldo);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)k, (int)n, 0.5,
                    d->a->data, (int)n, v, (int)ldv, 1.0, out, (int)ldo);
    } else {
        /* The upper triangle, as LAPACK sees the matrix in ntk_eigh. */
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, (int)n, (int)k, 1.0, d->a->data,
                    (int)n, v, (int)ldv, 0.0, out, (int)ldo);
    }
    return NTK_OK;
}

ntk_status ntk_eigs_matrix(ntk_ctx *ctx, const ntk_mat *a, size_t k,
                           const ntk_eigs_opts *opts, ntk_mat *values, ntk_mat *vectors,
                           ntk_mat *residuals, ntk_eigs_info *info)
{
    ntk_eigs_opts def;
    opts = ntk__eigs_opts(opts, &def);
    ntk_status st = ntk__check_square(ctx, a, "K");
    if (st) return st;
    if (!opts->symmetrize && (st = ntk__sym_check(ctx, a, "K", opts->symmetry_tol)))
        return st;
    dense_op d = {a, opts->symmetrize};
    return ntk_eigs(ctx, a->rows, dense_apply, &d, k, opts, values, vectors, residuals,
                    info);
}
