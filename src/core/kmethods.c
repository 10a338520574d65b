/*
 * Kernel methods and spectral statistics: spectrum summaries,
 * kernel-target alignment, kernel ridge regression by Cholesky, its
 * predictions, and the linearised gradient-flow dynamics.
 *
 * Targets are laid out against an n x n kernel in one of two ways (see
 * ntk.h): n x c, the columns sharing the kernel (a trace kernel), or
 * N x m with N m = n, read as the vector vec(Y) whose row-major order
 * matches the block kernel's rows. In the second case the arithmetic is
 * the first with one column, on the same memory.
 */
#include "linalg.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Columns of the right-hand side for an n x n kernel and targets y:
 * y->cols (trace layout) or 1 (block layout); 0 if y fits neither. */
static size_t rhs_cols(size_t n, const ntk_mat *y)
{
    if (y->rows == n) return y->cols;
    if (y->cols > 0 && y->rows * y->cols == n) return 1;
    return 0;
}

static ntk_status check_targets(ntk_ctx *ctx, size_t n, const ntk_mat *y,
                                const char *kname, const char *yname, size_t *c)
{
    ntk_status st = ntk__check_mat(ctx, y, yname);
    if (st) return st;
    *c = rhs_cols(n, y);
    if (*c == 0)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "%s must be %zu x c (a trace kernel's samples) or N x m with "
                         "N*m = %zu (the block kernel's layout) to match %s (%zux%zu), "
                         "got %zux%zu",
                         yname, n, n, kname, n, n, y->rows, y->cols);
    return ntk__check_finite(ctx, y, yname);
}

/* ---- spectrum statistics ---- */

void ntk_stats_opts_init(ntk_stats_opts *opts) { memset(opts, 0, sizeof *opts); }

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

ntk_status ntk_spectrum_stats(ntk_ctx *ctx, const double *ev, size_t n,
                              const ntk_stats_opts *opts, ntk_spectrum_info *out)
{
    ntk_stats_opts def;
    if (!opts) {
        ntk_stats_opts_init(&def);
        opts = &def;
    }
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is NULL");
    if (n == 0) return ntk__fail(ctx, NTK_ERR_INVALID, "the spectrum is empty");
    if (!ev) return ntk__fail(ctx, NTK_ERR_INVALID, "the eigenvalues are NULL");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(ev[i]))
            return ntk__fail(ctx, NTK_ERR_INVALID, "eigenvalue %zu is %s", i + 1,
                             isnan(ev[i]) ? "NaN" : "Inf");
    if (opts->top_k > n)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "top_k must be between 1 and the %zu eigenvalues, got %zu", n,
                         opts->top_k);
    if (opts->fit_first > n || opts->fit_last > n ||
        (opts->fit_last && opts->fit_first > opts->fit_last))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the fit range must satisfy 1 <= first <= last <= %zu, got %zu..%zu",
                         n, opts->fit_first, opts->fit_last);
    double *l = ntk__alloc(ctx, n, sizeof *l);
    if (!l) return NTK_ERR_NOMEM;
    memcpy(l, ev, n * sizeof *l);
    qsort(l, n, sizeof *l, cmp_desc);

    memset(out, 0, sizeof *out);
    out->n = n;
    out->max = l[0];
    out->min = l[n - 1];
    out->condition = out->min > 0 ? out->max / out->min : INFINITY;
    double sum = 0, pos = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += l[i];
        if (l[i] > 0) {
            pos += l[i];
            sq += l[i] * l[i];
        }
    }
    out->trace = sum;
    out->effective_rank = sq > 0 ? pos * pos / sq : 0;
    double h = 0;
    for (size_t i = 0; i < n && pos > 0; i++)
        if (l[i] > 0) {
            double p = l[i] / pos;
            h -= p * log(p);
        }
    out->entropy = h;
    out->entropy_rank = pos > 0 ? exp(h) : 0;
    out->top_k = opts->top_k ? opts->top_k : (n < 10 ? n : 10);
    double top = 0;
    for (size_t i = 0; i < out->top_k; i++) top += l[i];
    out->top_fraction = sum != 0 ? top / sum : NAN;

    /* The fit skips eigenvalues at the rounding floor of the largest. */
    double floor_ = (double)n * DBL_EPSILON * fabs(l[0]);
    size_t first = opts->fit_first ? opts->fit_first : 1, last = opts->fit_last;
    if (!last) {
        last = 0;
        for (size_t i = 0; i < n; i++)
            if (l[i] > floor_) last = i + 1;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, cnt = 0;
    for (size_t i = first; i <= last; i++) {
        if (!(l[i - 1] > 0)) continue;
        double x = log((double)i), y = log(l[i - 1]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        cnt += 1;
    }
    out->fit_first = first;
    out->fit_last = last;
    out->alpha = out->coef = out->r2 = NAN;
    double vx = sxx - sx * sx / (cnt > 0 ? cnt : 1);
    if (cnt >= 2 && vx > 0) {
        double cxy = sxy - sx * sy / cnt, vy = syy - sy * sy / cnt;
        double slope = cxy / vx;
        out->alpha = -slope;
        out->coef = exp((sy - slope * sx) / cnt);
        out->r2 = vy > 0 ? cxy * cxy / (vx * vy) : 1.0;
    }
    ntk__free(ctx, l);
    return NTK_OK;
}

/* ---- kernel-target alignment ---- */

/* ||(H x I_g) K (H x I_g)||_F for the centring H = I - 11^T/N over the
 * N = n / g samples, from row and column block means in one pass. */
static ntk_status centred_norm(ntk_ctx *ctx, const ntk_mat *k, size_t g, double *out)
{
    size_t n = k->rows, N = n / g;
    const double *a = k->data;
    double *colm = ntk__calloc(ctx, g, n * sizeof(double)); /* g x n */
    double *rowm = ntk__calloc(ctx, n, g * sizeof(double)); /* n x g */
    double *grand = ntk__calloc(ctx, g, g * sizeof(double));
    if (!colm || !rowm || !grand) {
        ntk__free(ctx, colm);
        ntk__free(ctx, rowm);
        ntk__free(ctx, grand);
        return NTK_ERR_NOMEM;
    }
    double inv = 1.0 / (double)N;
    for (size_t r = 0; r < n; r++) {
        const double *row = a + r * n;
        double *cm = colm + (r % g) * n, *rm = rowm + r * g;
        for (size_t c = 0; c < n; c++) {
            cm[c] += inv * row[c];
            rm[c % g] += inv * row[c];
        }
    }
    for (size_t r = 0; r < n; r++)
        for (size_t b = 0; b < g; b++) grand[(r % g) * g + b] += inv * rowm[r * g + b];
    double s = 0;
    for (size_t r = 0; r < n; r++) {
        const double *row = a + r * n, *cm = colm + (r % g) * n, *rm = rowm + r * g,
                     *gr = grand + (r % g) * g;
        for (size_t c = 0; c < n; c++) {
            double v = row[c] - cm[c] - rm[c % g] + gr[c % g];
            s += v * v;
        }
    }
    *out = sqrt(s);
    ntk__free(ctx, colm);
    ntk__free(ctx, rowm);
    ntk__free(ctx, grand);
    return NTK_OK;
}

ntk_status ntk_alignment(ntk_ctx *ctx, const ntk_mat *k, const ntk_mat *y, int center,
                         double *out)
{
    ntk_status st = ntk__check_square(ctx, k, "K");
    if (st) return st;
    size_t n = k->rows, c;
    if ((st = check_targets(ctx, n, y, "K", "Y", &c))) return st;
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is NULL");
    if (n == 0) return ntk__fail(ctx, NTK_ERR_INVALID, "K is empty");
    /* Sample groups: g rows of K per sample (m for the block layout). */
    size_t g = c == y->cols && y->rows == n ? 1 : y->cols;
    double *yc = ntk__alloc(ctx, n, c * sizeof(double));
    double *ky = ntk__alloc(ctx, n, c * sizeof(double));
    double *gram = ntk__alloc(ctx, c, c * sizeof(double));
    if (!yc || !ky || !gram) {
        ntk__free(ctx, yc);
        ntk__free(ctx, ky);
        ntk__free(ctx, gram);
        return NTK_ERR_NOMEM;
    }
    memcpy(yc, y->data, n * c * sizeof(double));
    if (center) {
        /* Subtract each target's mean over the samples. */
        size_t N = n / g, width = g * c;
        for (size_t t = 0; t < width; t++) {
            double mean = 0;
            for (size_t i = 0; i < N; i++) mean += yc[i * width + t];
            mean /= (double)N;
            for (size_t i = 0; i < N; i++) yc[i * width + t] -= mean;
        }
    }
    ntk__enter(ctx);
    /* <K_c, y_c y_c^T> = y_c^T K y_c: the centring is idempotent. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)n, 1.0,
                k->data, (int)n, yc, (int)c, 0.0, ky, (int)c);
    double num = 0;
    for (size_t i = 0; i < n * c; i++) num += ky[i] * yc[i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)c, (int)n, 1.0, yc,
                (int)c, yc, (int)c, 0.0, gram, (int)c);
    double ynorm = 0;
    for (size_t i = 0; i < c * c; i++) ynorm += gram[i] * gram[i];
    ynorm = sqrt(ynorm);
    double knorm = 0;
    if (center) {
        st = centred_norm(ctx, k, g, &knorm);
    } else {
        for (size_t i = 0; i < n * n; i++) knorm += k->data[i] * k->data[i];
        knorm = sqrt(knorm);
    }
    ntk__free(ctx, yc);
    ntk__free(ctx, ky);
    ntk__free(ctx, gram);
    if (st) return st;
    if (!(knorm > 0))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the alignment is undefined: K is zero%s",
                         center ? " after centring" : "");
    if (!(ynorm > 0))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the alignment is undefined: Y is zero%s",
                         center ? " after centring (constant targets)" : "");
    *out = num / (knorm * ynorm);
    return NTK_OK;
}

/* ---- kernel regression ---- */

void ntk_regression_opts_init(ntk_regression_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->jitter = 1;
    opts->max_jitter = NTK_DEFAULT_MAX_JITTER;
}

/* Row-major n x c <-> column-major n x c (LAPACK's right-hand sides). */
static void to_colmajor(const double *src, size_t n, size_t c, double *dst)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < c; j++) dst[j * n + i] = src[i * c + j];
}

static void from_colmajor(const double *src, size_t n, size_t c, double *dst)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < c; j++) dst[i * c + j] = src[j * n + i];
}

ntk_status ntk_kernel_regression(ntk_ctx *ctx, const ntk_mat *k, const ntk_mat *y,
                                 const ntk_regression_opts *opts, ntk_mat *alpha,
                                 double *jitter)
{
    ntk_regression_opts def;
    if (!opts) {
        ntk_regression_opts_init(&def);
        opts = &def;
    }
    ntk_status st = ntk__check_square(ctx, k, "K");
    if (st) return st;
    size_t n = k->rows, c;
    if ((st = check_targets(ctx, n, y, "K", "Y", &c))) return st;
    if ((st = ntk__check_mat(ctx, alpha, "alpha"))) return st;
    if (alpha->rows != y->rows || alpha->cols != y->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "alpha must be %zux%zu (like Y), got %zux%zu",
                         y->rows, y->cols, alpha->rows, alpha->cols);
    if (!isfinite(opts->ridge) || opts->ridge < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "ridge must be finite and >= 0, got %g",
                         opts->ridge);
    if (!isfinite(opts->max_jitter) || opts->max_jitter < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "max_jitter must be finite and >= 0, got %g", opts->max_jitter);
    if (jitter) *jitter = 0;
    if (n == 0) return NTK_OK;
    double *a = ntk__alloc(ctx, n, n * sizeof(double));
    double *rhs = ntk__alloc(ctx, n, c * sizeof(double));
    if (!a || !rhs) {
        ntk__free(ctx, a);
        ntk__free(ctx, rhs);
        return NTK_ERR_NOMEM;
    }
    double mean_diag = 0;
    for (size_t i = 0; i < n; i++) mean_diag += k->data[i * n + i];
    mean_diag /= (double)n;
    double base = fabs(mean_diag) > 0 ? fabs(mean_diag) : 1.0;
    double added = 0;
    lapack_int info = 0;
    /* Progress counts factorisations: one, plus one per jitter tried. */
    double total = 1;
    if (opts->jitter)
        for (double j = 1e-12; j <= opts->max_jitter * (1 + 1e-9); j *= 10) total += 1;
    if (ntk__progress(ctx, "kernel_regression", 0, total)) {
        ntk__free(ctx, a);
        ntk__free(ctx, rhs);
        return NTK_ERR_INTERRUPTED;
    }
    ntk__enter(ctx);
    for (int attempt = 0;; attempt++) {
        st = ntk__sym_copy(ctx, k, "K", opts->symmetrize, opts->symmetry_tol, a);
        if (st) break;
        for (size_t i = 0; i < n; i++) a[i * n + i] += opts->ridge + added;
        info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
        if (info < 0) {
            st = ntk__fail(ctx, NTK_ERR_INVALID, "LAPACK dpotrf rejected argument %d",
                           (int)-info);
            break;
        }
        if (info == 0) break;
        double next = attempt == 0 ? 1e-12 * base : added * 10;
        if (!opts->jitter || next > opts->max_jitter * base * (1 + 1e-9)) {
            if (!opts->jitter)
                st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                               "K + ridge I is not positive definite (Cholesky failed at "
                               "the leading minor of order %d); allow jitter or raise "
                               "ridge (now %g)",
                               (int)info, opts->ridge);
            else
                st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                               "K + ridge I is not positive definite even with jitter "
                               "%.3g (%.0e x the mean diagonal %.3g; Cholesky failed at "
                               "the leading minor of order %d): the kernel has clearly "
                               "negative eigenvalues; check it, raise ridge (now %g) or "
                               "max_jitter",
                               added, added / base, mean_diag, (int)info, opts->ridge);
            break;
        }
        added = next;
        if (ntk__progress(ctx, "kernel_regression", (double)attempt + 1, total)) {
            st = NTK_ERR_INTERRUPTED;
            break;
        }
    }
    if (!st) {
        to_colmajor(y->data, n, c, rhs);
        info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, (lapack_int)c, a,
                                   (lapack_int)n, rhs, (lapack_int)n);
        if (info != 0)
            st = ntk__fail(ctx, NTK_ERR_INVALID, "LAPACK dpotrs rejected argument %d",
                           (int)-info);
        else
            from_colmajor(rhs, n, c, alpha->data);
    }
    ntk__free(ctx, a);
    ntk__free(ctx, rhs);
    if (!st && ntk__progress(ctx, "kernel_regression", total, total)) st = NTK_ERR_INTERRUPTED;
    if (!st && jitter) *jitter = added;
    if (!st) {
        size_t r, cc;
        if (ntk_mat_find_nonfinite(alpha, &r, &cc))
            return ntk__fail(ctx, NTK_ERR_NUMERIC,
                             "the solution overflowed (K nearly singular); raise ridge");
        if (added > 0)
            ntk__log(ctx, NTK_LOG_WARN,
                     "kernel_regression: K was not numerically positive definite; "
                     "added jitter %.3g (%.0e x the mean diagonal)",
                     added, added / base);
    }
    return st;
}

ntk_status ntk_kernel_predict_shape(ntk_ctx *ctx, size_t rows, size_t cols,
                                    size_t arows, size_t acols, size_t *out_rows,
                                    size_t *out_cols)
{
    if (cols == arows) {
        *out_rows = rows;
        *out_cols = acols;
        return NTK_OK;
    }
    if (acols > 0 && arows * acols == cols && rows % acols == 0) {
        *out_rows = rows / acols;
        *out_cols = acols;
        return NTK_OK;
    }
    return ntk__fail(ctx, NTK_ERR_SHAPE,
                     "K_test_train (%zux%zu) does not fit alpha (%zux%zu): its columns "
                     "must equal alpha's rows (trace kernel) or alpha's entries, with "
                     "rows a multiple of alpha's columns (block kernel)",
                     rows, cols, arows, acols);
}

ntk_status ntk_kernel_predict(ntk_ctx *ctx, const ntk_mat *kt, const ntk_mat *alpha,
                              ntk_mat *out)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, kt, "K_test_train"))) return st;
    if ((st = ntk__check_mat(ctx, alpha, "alpha"))) return st;
    if ((st = ntk__check_mat(ctx, out, "out"))) return st;
    size_t r, c;
    if ((st = ntk_kernel_predict_shape(ctx, kt->rows, kt->cols, alpha->rows, alpha->cols,
                                       &r, &c)))
        return st;
    if (out->rows != r || out->cols != c)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zux%zu, got %zux%zu", r, c,
                         out->rows, out->cols);
    if (kt->rows > (size_t)INT32_MAX || kt->cols > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "K_test_train is too large for BLAS");
    if ((st = ntk__check_finite(ctx, kt, "K_test_train"))) return st;
    if ((st = ntk__check_finite(ctx, alpha, "alpha"))) return st;
    size_t rhs = kt->cols == alpha->rows ? alpha->cols : 1;
    if (kt->rows == 0 || rhs == 0) return NTK_OK;
    if (kt->cols == 0) {
        memset(out->data, 0, r * c * sizeof(double));
        return NTK_OK;
    }
    ntk__enter(ctx);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)kt->rows, (int)rhs,
                (int)kt->cols, 1.0, kt->data, (int)kt->cols, alpha->data, (int)rhs, 0.0,
                out->data, (int)rhs);
    size_t fr, fc;
    if (ntk_mat_find_nonfinite(out, &fr, &fc))
        return ntk__fail(ctx, NTK_ERR_NUMERIC, "the prediction overflowed at row %zu",
                         fr + 1);
    return NTK_OK;
}

/* ---- gradient-flow dynamics ---- */

void ntk_gd_spec_init(ntk_gd_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->lr = 1.0;
}

ntk_status ntk_gd_dynamics(ntk_ctx *ctx, const ntk_gd_spec *sp, ntk_mat *train,
                           ntk_mat *test)
{
    ntk_status st;
    if (!sp) return ntk__fail(ctx, NTK_ERR_INVALID, "spec is NULL");
    if ((st = ntk__check_square(ctx, sp->k_train, "K_train"))) return st;
    size_t n = sp->k_train->rows, c;
    if ((st = check_targets(ctx, n, sp->y, "K_train", "Y", &c))) return st;
    size_t yr = sp->y->rows, yc = sp->y->cols;
    if (sp->f0_train) {
        if ((st = ntk__check_mat(ctx, sp->f0_train, "f0_train"))) return st;
        if (sp->f0_train->rows != yr || sp->f0_train->cols != yc)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "f0_train must be %zux%zu (like Y), got %zux%zu",
                             yr, yc, sp->f0_train->rows, sp->f0_train->cols);
        if ((st = ntk__check_finite(ctx, sp->f0_train, "f0_train"))) return st;
    }
    const ntk_mat *kt = sp->k_test_train;
    size_t tr = 0, tc = 0; /* test predictions' shape */
    if (kt) {
        if ((st = ntk__check_mat(ctx, kt, "K_test_train"))) return st;
        if (kt->cols != n)
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "K_test_train must have %zu columns (K_train's order), got %zux%zu",
                             n, kt->rows, kt->cols);
        if (c == 1 && yr != n) { /* block layout: rows are (sample, output) */
            if (kt->rows % yc)
                return ntk__fail(ctx, NTK_ERR_SHAPE,
                                 "K_test_train's rows (%zu) must be a multiple of the "
                                 "outputs (%zu) for a block kernel",
                                 kt->rows, yc);
            tr = kt->rows / yc;
        } else {
            tr = kt->rows;
        }
        tc = yc;
        if ((st = ntk__check_finite(ctx, kt, "K_test_train"))) return st;
        if (sp->f0_test) {
            if ((st = ntk__check_mat(ctx, sp->f0_test, "f0_test"))) return st;
            if (sp->f0_test->rows != tr || sp->f0_test->cols != tc)
                return ntk__fail(ctx, NTK_ERR_SHAPE, "f0_test must be %zux%zu, got %zux%zu",
                                 tr, tc, sp->f0_test->rows, sp->f0_test->cols);
            if ((st = ntk__check_finite(ctx, sp->f0_test, "f0_test"))) return st;
        }
    } else if (sp->f0_test) {
        return ntk__fail(ctx, NTK_ERR_INVALID, "f0_test needs K_test_train");
    }
    if (!isfinite(sp->lr) || sp->lr <= 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "lr must be finite and > 0, got %g", sp->lr);
    if (!isfinite(sp->ridge) || sp->ridge < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "ridge must be finite and >= 0, got %g",
                         sp->ridge);
    if (sp->ntimes && !sp->times) return ntk__fail(ctx, NTK_ERR_INVALID, "times is NULL");
    for (size_t t = 0; t < sp->ntimes; t++)
        if (isnan(sp->times[t]) || sp->times[t] < 0)
            return ntk__fail(ctx, NTK_ERR_INVALID,
                             "times[%zu] must be >= 0 (math.huge allowed), got %g", t + 1,
                             sp->times[t]);
    for (size_t t = 0; t < sp->ntimes; t++) {
        if ((st = ntk__check_mat(ctx, &train[t], "train"))) return st;
        if (train[t].rows != yr || train[t].cols != yc)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "train[%zu] must be %zux%zu", t + 1, yr, yc);
        if (kt) {
            if (!test) return ntk__fail(ctx, NTK_ERR_INVALID, "test is NULL");
            if ((st = ntk__check_mat(ctx, &test[t], "test"))) return st;
            if (test[t].rows != tr || test[t].cols != tc)
                return ntk__fail(ctx, NTK_ERR_SHAPE, "test[%zu] must be %zux%zu", t + 1, tr,
                                 tc);
        }
    }
    if (sp->ntimes == 0) return NTK_OK;
    if (n == 0) {
        for (size_t t = 0; t < sp->ntimes; t++)
            if (kt) memset(test[t].data, 0, tr * tc * sizeof(double));
        return NTK_OK;
    }
    size_t ntest = kt ? kt->rows : 0;
    double *v = ntk__alloc(ctx, n, n * sizeof(double));
    double *w = ntk__alloc(ctx, n, sizeof(double));
    double *z = ntk__alloc(ctx, n, c * sizeof(double));
    double *hz = ntk__alloc(ctx, n, c * sizeof(double));
    double *u = kt ? ntk__alloc(ctx, n, c * sizeof(double)) : NULL;
    if (!v || !w || !z || !hz || (kt && !u)) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    ntk_eigh_opts eo;
    ntk_eigh_opts_init(&eo);
    eo.symmetrize = sp->symmetrize;
    eo.symmetry_tol = sp->symmetry_tol;
    ntk_mat vw = {n, 1, w}, vv = {n, n, v};
    if ((st = ntk__eigh(ctx, sp->k_train, "K_train", &eo, &vw, &vv))) goto done;
    double lmax = 0;
    for (size_t i = 0; i < n; i++) {
        w[i] += sp->ridge;
        if (fabs(w[i]) > lmax) lmax = fabs(w[i]);
    }
    double cutoff = (double)n * DBL_EPSILON * lmax;
    double eta = sp->mean_loss ? sp->lr / (double)(yr * yc) : sp->lr;
    /* z = V^T (Y - f0) */
    for (size_t i = 0; i < n * c; i++)
        hz[i] = sp->y->data[i] - (sp->f0_train ? sp->f0_train->data[i] : 0.0);
    ntk__enter(ctx);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)c, (int)n, 1.0, v,
                (int)n, hz, (int)c, 0.0, z, (int)c);
    for (size_t t = 0; t < sp->ntimes; t++) {
        double time = sp->times[t];
        /* train: f0 + V diag(1 - e^{-eta l t}) z */
        for (size_t i = 0; i < n; i++) {
            double h = 0;
            if (w[i] > cutoff) h = isinf(time) ? 1.0 : -expm1(-eta * w[i] * time);
            for (size_t j = 0; j < c; j++) hz[i * c + j] = h * z[i * c + j];
        }
        double *f = train[t].data;
        for (size_t i = 0; i < n * c; i++) f[i] = sp->f0_train ? sp->f0_train->data[i] : 0.0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)n, 1.0,
                    v, (int)n, hz, (int)c, 1.0, f, (int)c);
        if (kt) {
            /* test: f0_test + K_test_train V diag((1 - e^{-eta l t}) / l) z */
            for (size_t i = 0; i < n; i++) {
                double g = 0;
                if (w[i] > cutoff)
                    g = isinf(time) ? 1.0 / w[i] : -expm1(-eta * w[i] * time) / w[i];
                for (size_t j = 0; j < c; j++) hz[i * c + j] = g * z[i * c + j];
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)n,
                        1.0, v, (int)n, hz, (int)c, 0.0, u, (int)c);
            double *ft = test[t].data;
            for (size_t i = 0; i < tr * tc; i++)
                ft[i] = sp->f0_test ? sp->f0_test->data[i] : 0.0;
            if (ntest > 0)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ntest, (int)c,
                            (int)n, 1.0, kt->data, (int)n, u, (int)c, 1.0, ft, (int)c);
        }
        if (ntk__progress(ctx, "gd_dynamics", (double)t + 1, (double)sp->ntimes)) {
            st = NTK_ERR_INTERRUPTED;
            goto done;
        }
    }
    for (size_t t = 0; t < sp->ntimes && !st; t++) {
        size_t r, cc;
        if (ntk_mat_find_nonfinite(&train[t], &r, &cc) ||
            (kt && ntk_mat_find_nonfinite(&test[t], &r, &cc)))
            st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                           "the predictions overflowed at time %g (K_train nearly "
                           "singular?); raise ridge",
                           sp->times[t]);
    }
done:
    ntk__free(ctx, v);
    ntk__free(ctx, w);
    ntk__free(ctx, z);
    ntk__free(ctx, hz);
    ntk__free(ctx, u);
    return st;
}
