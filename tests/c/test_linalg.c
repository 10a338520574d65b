/* Dense eigen routines, spectrum statistics and kernel methods, checked
 * against constructed spectra (Q D Q^T), hand-sized cases, Gaussian
 * elimination and an explicit Runge-Kutta integration of the gradient-flow
 * ODE, all written here independently of the library. */
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;

/* C = A B for row-major A (n x k), B (k x m), by loops. */
static void matmul(const double *a, const double *b, double *c, size_t n, size_t k,
                   size_t m)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double s = 0;
            for (size_t t = 0; t < k; t++) s += a[i * k + t] * b[t * m + j];
            c[i * m + j] = s;
        }
}

/* An orthogonal Q (n x n) as a product of Householder reflections. */
static double *orthogonal(size_t n, uint64_t seed)
{
    double *q = calloc(n * n, sizeof *q);
    for (size_t i = 0; i < n; i++) q[i * n + i] = 1;
    double *v = randn(n * 4, seed), *row = malloc(n * sizeof *row);
    for (int h = 0; h < 4; h++) {
        const double *u = v + h * n;
        double uu = 0;
        for (size_t i = 0; i < n; i++) uu += u[i] * u[i];
        /* Q <- Q (I - 2 u u^T / u^T u) */
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < n; j++) s += q[i * n + j] * u[j];
            for (size_t j = 0; j < n; j++) q[i * n + j] -= 2 * s * u[j] / uu;
        }
    }
    free(v);
    free(row);
    return q;
}

/* A = Q diag(d) Q^T, exactly symmetric. */
static double *constructed(size_t n, const double *d, uint64_t seed)
{
    double *q = orthogonal(n, seed), *a = malloc(n * n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (size_t t = 0; t < n; t++) s += q[i * n + t] * d[t] * q[j * n + t];
            a[i * n + j] = a[j * n + i] = s;
        }
    free(q);
    return a;
}

/* Max |V^T V - I| and max |A v_j - l_j v_j| / max|l| for n x k vectors. */
static void check_pairs(const double *a, size_t n, const double *w, const double *v,
                        size_t k, double tol, const char *what)
{
    double orth = 0, res = 0, scale = 0;
    for (size_t j = 0; j < k; j++)
        if (fabs(w[j]) > scale) scale = fabs(w[j]);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t r = 0; r < n; r++) s += v[r * k + i] * v[r * k + j];
            double d = fabs(s - (i == j));
            if (d > orth) orth = d;
        }
    for (size_t j = 0; j < k; j++)
        for (size_t r = 0; r < n; r++) {
            double s = 0;
            for (size_t t = 0; t < n; t++) s += a[r * n + t] * v[t * k + j];
            double d = fabs(s - w[j] * v[r * k + j]);
            if (d > res) res = d;
        }
    CHECK_MSG(orth < tol, "%s: orthonormality %g", what, orth);
    CHECK_MSG(res < tol * (scale > 0 ? scale : 1), "%s: residual %g", what, res);
}

static void test_eigh_constructed(void)
{
    size_t n = 40;
    double d[40];
    /* distinct, negative, repeated and zero eigenvalues */
    for (size_t i = 0; i < n; i++) d[i] = 3.0 - 0.25 * (double)i;
    d[5] = d[6] = d[7] = 1.5;
    d[20] = 0;
    d[21] = 0;
    double *a = constructed(n, d, 11);
    double sorted[40];
    memcpy(sorted, d, sizeof sorted);
    qsort(sorted, n, sizeof(double), cmp_desc);
    ntk_mat A = {n, n, a};
    double *w = malloc(n * sizeof *w), *v = malloc(n * n * sizeof *v);
    ntk_eigh_driver drivers[] = {NTK_EIGH_AUTO, NTK_EIGH_EVD, NTK_EIGH_EVR};
    for (int di = 0; di < 3; di++) {
        ntk_eigh_opts o;
        ntk_eigh_opts_init(&o);
        o.driver = drivers[di];
        ntk_mat W = {n, 1, w}, V = {n, n, v};
        CHECK_STATUS(ntk_eigh(ctx, &A, &o, &W, NULL), NTK_OK);
        CHECK_MSG(rel_diff(w, sorted, n) < 1e-13, "values, driver %d: %g", di,
                  rel_diff(w, sorted, n));
        memset(w, 0, n * sizeof *w);
        CHECK_STATUS(ntk_eigh(ctx, &A, &o, &W, &V), NTK_OK);
        CHECK_MSG(rel_diff(w, sorted, n) < 1e-13, "values with vectors, driver %d", di);
        check_pairs(a, n, w, v, n, 1e-12, "full");
        /* V diag(w) V^T reconstructs A */
        double worst = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t t = 0; t < n; t++) s += v[i * n + t] * w[t] * v[j * n + t];
                if (fabs(s - a[i * n + j]) > worst) worst = fabs(s - a[i * n + j]);
            }
        CHECK_MSG(worst < 1e-13 * 3, "reconstruction %g", worst);
        /* top k against the full decomposition */
        size_t ks[] = {1, 4, 9, 39};
        for (int t = 0; t < 4; t++) {
            size_t k = ks[t];
            o.k = k;
            double wk[40], *vk = malloc(n * k * sizeof *vk);
            ntk_mat Wk = {k, 1, wk}, Vk = {n, k, vk};
            CHECK_STATUS(ntk_eigh(ctx, &A, &o, &Wk, &Vk), NTK_OK);
            CHECK_MSG(rel_diff(wk, sorted, k) < 1e-13, "top %zu, driver %d", k, di);
            check_pairs(a, n, wk, vk, k, 1e-12, "top k");
            CHECK_STATUS(ntk_eigh(ctx, &A, &o, &Wk, NULL), NTK_OK);
            CHECK(rel_diff(wk, sorted, k) < 1e-13);
            free(vk);
        }
    }
    free(a);
    free(w);
    free(v);

    /* By hand: [[2, 1], [1, 2]] has 3 on (1, 1)/sqrt 2 and 1 on (1, -1)/sqrt 2. */
    double h[4] = {2, 1, 1, 2}, hw[2], hv[4];
    ntk_mat H = {2, 2, h}, HW = {2, 1, hw}, HV = {2, 2, hv};
    CHECK_STATUS(ntk_eigh(ctx, &H, NULL, &HW, &HV), NTK_OK);
    CHECK_NEAR(hw[0], 3, 1e-15);
    CHECK_NEAR(hw[1], 1, 1e-15);
    CHECK_NEAR(fabs(hv[0]), sqrt(0.5), 1e-15);
    CHECK_NEAR(hv[0] * hv[2], 0.5, 1e-15);  /* same sign: (1, 1) */
    CHECK_NEAR(hv[1] * hv[3], -0.5, 1e-15); /* opposite: (1, -1) */
    /* 1 x 1 and 0 x 0 */
    double one = -2.5, ow;
    ntk_mat O = {1, 1, &one}, OW = {1, 1, &ow};
    CHECK_STATUS(ntk_eigh(ctx, &O, NULL, &OW, NULL), NTK_OK);
    CHECK(ow == -2.5);
    ntk_mat E = {0, 0, NULL}, EW = {0, 1, NULL};
    CHECK_STATUS(ntk_eigh(ctx, &E, NULL, &EW, NULL), NTK_OK);
}

static void test_eigh_plan(void)
{
    ntk_eigh_driver d;
    CHECK_STATUS(ntk_eigh_plan(ctx, 32766, 0, 1, NTK_EIGH_AUTO, &d), NTK_OK);
    CHECK(d == NTK_EIGH_EVD);
    /* 1 + 6n + 2n^2 > 2^31 - 1 from n = 32767 on */
    CHECK_STATUS(ntk_eigh_plan(ctx, 32767, 0, 1, NTK_EIGH_AUTO, &d), NTK_OK);
    CHECK(d == NTK_EIGH_EVR);
    CHECK_STATUS(ntk_eigh_plan(ctx, 60000, 0, 1, NTK_EIGH_EVD, &d), NTK_ERR_UNSUPPORTED);
    CHECK(strstr(ntk_ctx_error(ctx), "32767") != NULL);
    CHECK_STATUS(ntk_eigh_plan(ctx, 32766, 0, 1, NTK_EIGH_EVD, &d), NTK_OK);
    /* values only need 2n + 1: dsyevd stays */
    CHECK_STATUS(ntk_eigh_plan(ctx, 60000, 0, 0, NTK_EIGH_AUTO, &d), NTK_OK);
    CHECK(d == NTK_EIGH_EVD);
    CHECK_STATUS(ntk_eigh_plan(ctx, 60000, 0, 0, NTK_EIGH_EVD, &d), NTK_OK);
    /* top k: dsyevr's index range */
    CHECK_STATUS(ntk_eigh_plan(ctx, 100, 10, 0, NTK_EIGH_AUTO, &d), NTK_OK);
    CHECK(d == NTK_EIGH_EVR);
    CHECK_STATUS(ntk_eigh_plan(ctx, 100, 101, 0, NTK_EIGH_AUTO, &d), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_eigh_plan(ctx, (size_t)1 << 31, 0, 0, NTK_EIGH_AUTO, &d),
                 NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_eigh_plan(ctx, 10, 0, 0, (ntk_eigh_driver)7, &d), NTK_ERR_INVALID);
}

static void test_eigh_errors(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    double a[9] = {1, 2, 3, 2, 5, 6, 3, 6, 9}, w[3], v[9];
    ntk_mat A = {3, 3, a}, W = {3, 1, w}, V = {3, 3, v};
    ntk_mat R = {3, 2, a}, Wbad = {2, 1, w}, Vbad = {3, 2, v};
    CHECK_STATUS(ntk_eigh(ctx, &R, NULL, &W, NULL), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "square") != NULL);
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &Wbad, NULL), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, &Vbad), NTK_ERR_SHAPE);
    ntk_eigh_opts o;
    ntk_eigh_opts_init(&o);
    o.k = 4;
    CHECK_STATUS(ntk_eigh(ctx, &A, &o, &W, NULL), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "k must be") != NULL);
    /* asymmetry: refused, named, or symmetrised on request */
    a[1] = 2.5;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, &V), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "not symmetric") != NULL);
    CHECK(strstr(ntk_ctx_error(ctx), "K[1,2]") != NULL);
    ntk_eigh_opts_init(&o);
    o.symmetrize = 1;
    CHECK_STATUS(ntk_eigh(ctx, &A, &o, &W, &V), NTK_OK);
    double s[9] = {1, 2.25, 3, 2.25, 5, 6, 3, 6, 9}, ws[3];
    ntk_mat S = {3, 3, s}, WS = {3, 1, ws};
    CHECK_STATUS(ntk_eigh(ctx, &S, NULL, &WS, NULL), NTK_OK);
    CHECK(rel_diff(w, ws, 3) < 1e-14);
    /* the tolerance is relative to max|K| */
    a[1] = 2 + 9 * 1e-11;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, NULL), NTK_OK);
    a[1] = 2 + 9 * 1e-9;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, NULL), NTK_ERR_INVALID);
    ntk_eigh_opts_init(&o);
    o.symmetry_tol = 1e-8;
    CHECK_STATUS(ntk_eigh(ctx, &A, &o, &W, NULL), NTK_OK);
    a[1] = 2;
    /* NaN and Inf */
    a[4] = NAN;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, NULL), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "NaN at row 2, column 2") != NULL);
    a[4] = INFINITY;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, NULL), NTK_ERR_INVALID);
    a[4] = 5;
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

static void test_interrupt(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    size_t n = 30;
    double d[30];
    for (size_t i = 0; i < n; i++) d[i] = (double)i;
    double *a = constructed(n, d, 3), w[30], v[900];
    ntk_mat A = {n, n, a}, W = {n, 1, w}, V = {n, n, v};
    for (int after = 0; after < 2; after++) {
        int left = after;
        ntk_ctx_set_progress(ctx, countdown_hook, &left);
        CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &W, &V), NTK_ERR_INTERRUPTED);
        CHECK(strstr(ntk_ctx_error(ctx), "interrupted during eigh") != NULL);
        CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    }
    ntk_ctx_set_progress(ctx, NULL, NULL);
    free(a);
}

static void test_alloc_failure(void)
{
    size_t n = 12;
    double d[12];
    for (size_t i = 0; i < n; i++) d[i] = 1.0 + (double)i;
    double *a = constructed(n, d, 5), y[24], alpha[24], w[12], v[144], tr[24], te[24];
    for (size_t i = 0; i < 24; i++) y[i] = sin((double)i);
    int succeeded = 0;
    for (long budget = 0; budget < 100 && !succeeded; budget++) {
        fail_alloc f = {budget, 0};
        ntk_ctx *c;
        if (ntk_ctx_create_with(&c, failing, &f) != NTK_OK) continue;
        ntk_mat A = {n, n, a}, Y = {n, 2, y}, AL = {n, 2, alpha}, W = {n, 1, w},
                V = {n, n, v};
        ntk_status st = ntk_eigh(c, &A, NULL, &W, &V);
        ntk_eigh_opts o;
        ntk_eigh_opts_init(&o);
        o.k = 3;
        ntk_mat W3 = {3, 1, w}, V3 = {n, 3, v};
        if (!st) st = ntk_eigh(c, &A, &o, &W3, &V3);
        if (!st) st = ntk_kernel_regression(c, &A, &Y, NULL, &AL, NULL);
        double al;
        if (!st) st = ntk_alignment(c, &A, &Y, 1, &al);
        ntk_spectrum_info info;
        if (!st) st = ntk_spectrum_stats(c, d, n, NULL, &info);
        ntk_gd_spec sp;
        ntk_gd_spec_init(&sp);
        double times[2] = {1, INFINITY};
        ntk_mat T[2] = {{n, 2, tr}, {n, 2, tr + 0}}, TE[2] = {{n, 2, te}, {n, 2, te}};
        sp.k_train = &A;
        sp.k_test_train = &A;
        sp.y = &Y;
        sp.times = times;
        sp.ntimes = 2;
        if (!st) st = ntk_gd_dynamics(c, &sp, T, TE);
        if (!st) succeeded = 1;
        else CHECK_STATUS(st, NTK_ERR_NOMEM);
        CHECK(ntk_ctx_bytes_in_use(c) == 0);
        ntk_ctx_destroy(c);
        CHECK_MSG(f.live == 0, "budget %ld leaked %ld blocks", budget, f.live);
    }
    CHECK(succeeded);
    free(a);
}

static void test_spectrum_stats(void)
{
    /* By hand: 4, 3, 2, 1 (given unsorted) */
    double ev[4] = {2, 4, 1, 3};
    ntk_spectrum_info s;
    ntk_stats_opts o;
    ntk_stats_opts_init(&o);
    o.top_k = 2;
    CHECK_STATUS(ntk_spectrum_stats(ctx, ev, 4, &o, &s), NTK_OK);
    CHECK(s.n == 4 && s.top_k == 2);
    CHECK_NEAR(s.trace, 10, 1e-15);
    CHECK(s.max == 4 && s.min == 1);
    CHECK_NEAR(s.condition, 4, 1e-15);
    CHECK_NEAR(s.effective_rank, 100.0 / 30.0, 1e-14);
    double h = -(0.4 * log(0.4) + 0.3 * log(0.3) + 0.2 * log(0.2) + 0.1 * log(0.1));
    CHECK_NEAR(s.entropy, h, 1e-14);
    CHECK_NEAR(s.entropy_rank, exp(h), 1e-13);
    CHECK_NEAR(s.top_fraction, 0.7, 1e-15);
    /* an exact power law: 5 i^-1.5 */
    double pl[50];
    for (int i = 0; i < 50; i++) pl[i] = 5 * pow(i + 1.0, -1.5);
    CHECK_STATUS(ntk_spectrum_stats(ctx, pl, 50, NULL, &s), NTK_OK);
    CHECK_NEAR(s.alpha, 1.5, 1e-12);
    CHECK_NEAR(s.coef, 5, 1e-11);
    CHECK_NEAR(s.r2, 1, 1e-12);
    CHECK(s.fit_first == 1 && s.fit_last == 50 && s.top_k == 10);
    /* a broken power law, fitted on a chosen range only */
    for (int i = 20; i < 50; i++) pl[i] = 5 * pow(20.0, -1.5) * pow((i + 1) / 20.0, -3.0);
    ntk_stats_opts_init(&o);
    o.fit_first = 25;
    o.fit_last = 50;
    CHECK_STATUS(ntk_spectrum_stats(ctx, pl, 50, &o, &s), NTK_OK);
    CHECK_NEAR(s.alpha, 3, 1e-11);
    CHECK(s.r2 < 1 + 1e-12 && s.r2 > 1 - 1e-12);
    /* rounding-level and negative eigenvalues: kept out of the fit and
     * of the ranks; the condition number is infinite */
    double z[5] = {1, 0.5, 1e-18, -1e-17, 0.25};
    CHECK_STATUS(ntk_spectrum_stats(ctx, z, 5, NULL, &s), NTK_OK);
    CHECK(isinf(s.condition));
    CHECK(s.fit_last == 3);
    CHECK_NEAR(s.effective_rank, 1.75 * 1.75 / 1.3125, 1e-12);
    {
        /* least squares through (log i, log l_i), i = 1..3, by hand */
        double x[3] = {0, log(2.0), log(3.0)}, yv[3] = {0, log(0.5), log(0.25)};
        double mx = (x[0] + x[1] + x[2]) / 3, my = (yv[0] + yv[1] + yv[2]) / 3, sxy = 0,
               sxx = 0;
        for (int i = 0; i < 3; i++) {
            sxy += (x[i] - mx) * (yv[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
        }
        CHECK_NEAR(s.alpha, -sxy / sxx, 1e-14);
        CHECK_NEAR(s.coef, exp(my - sxy / sxx * mx), 1e-14);
    }
    /* one eigenvalue: no fit */
    double one = 2;
    CHECK_STATUS(ntk_spectrum_stats(ctx, &one, 1, NULL, &s), NTK_OK);
    CHECK(isnan(s.alpha) && s.effective_rank == 1 && s.condition == 1);
    /* errors */
    CHECK_STATUS(ntk_spectrum_stats(ctx, ev, 0, NULL, &s), NTK_ERR_INVALID);
    ev[2] = NAN;
    CHECK_STATUS(ntk_spectrum_stats(ctx, ev, 4, NULL, &s), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "eigenvalue 3 is NaN") != NULL);
    ev[2] = 1;
    ntk_stats_opts_init(&o);
    o.top_k = 5;
    CHECK_STATUS(ntk_spectrum_stats(ctx, ev, 4, &o, &s), NTK_ERR_INVALID);
    ntk_stats_opts_init(&o);
    o.fit_first = 3;
    o.fit_last = 2;
    CHECK_STATUS(ntk_spectrum_stats(ctx, ev, 4, &o, &s), NTK_ERR_INVALID);
}

/* (H x I_g) M (H x I_g) for the centring H over n / g samples, by loops. */
static void centre_kernel(const double *k, size_t n, size_t g, double *out)
{
    size_t N = n / g;
    double *c = calloc(n * n, sizeof *c); /* C = H x I_g */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            for (size_t a = 0; a < g; a++)
                c[(i * g + a) * n + j * g + a] = (i == j) - 1.0 / (double)N;
    double *t = malloc(n * n * sizeof *t);
    matmul(c, k, t, n, n, n);
    matmul(t, c, out, n, n, n);
    free(c);
    free(t);
}

static double frob(const double *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

static void test_alignment(void)
{
    size_t n = 12;
    double y[12], k[144], al;
    for (size_t i = 0; i < n; i++) y[i] = cos(0.7 * (double)i + 0.2);
    /* K = y y^T: alignment 1; K = I: |y|^2 / (sqrt(n) |y|^2) */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) k[i * n + j] = y[i] * y[j];
    ntk_mat K = {n, n, k}, Y = {n, 1, y};
    CHECK_STATUS(ntk_alignment(ctx, &K, &Y, 0, &al), NTK_OK);
    CHECK_NEAR(al, 1, 1e-14);
    for (size_t i = 0; i < n * n; i++) k[i] = (i % (n + 1)) == 0;
    CHECK_STATUS(ntk_alignment(ctx, &K, &Y, 0, &al), NTK_OK);
    CHECK_NEAR(al, 1 / sqrt((double)n), 1e-14);
    /* The block layout (N = 4 samples, m = 3) against explicit formulas,
     * with and without centring. */
    double *kk = gram(n, 5, 0, 3);
    ntk_mat KK = {n, n, kk}, YB = {4, 3, y};
    double num = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) num += y[i] * kk[i * n + j] * y[j];
    double yy = 0;
    for (size_t i = 0; i < n; i++) yy += y[i] * y[i];
    CHECK_STATUS(ntk_alignment(ctx, &KK, &YB, 0, &al), NTK_OK);
    CHECK_NEAR(al, num / (frob(kk, n * n) * yy), 1e-14);
    double *kc = malloc(n * n * sizeof *kc), yc[12];
    centre_kernel(kk, n, 3, kc);
    for (size_t a = 0; a < 3; a++) {
        double mean = 0;
        for (size_t i = 0; i < 4; i++) mean += y[i * 3 + a] / 4;
        for (size_t i = 0; i < 4; i++) yc[i * 3 + a] = y[i * 3 + a] - mean;
    }
    /* <Kc, yc yc^T> / (|Kc| |yc yc^T|) from the centred matrices */
    double *ycyc = malloc(n * n * sizeof *ycyc);
    num = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            ycyc[i * n + j] = yc[i] * yc[j];
            num += kc[i * n + j] * ycyc[i * n + j];
        }
    CHECK_STATUS(ntk_alignment(ctx, &KK, &YB, 1, &al), NTK_OK);
    CHECK_NEAR(al, num / (frob(kc, n * n) * frob(ycyc, n * n)), 1e-13);
    /* The trace layout: Y is 12 x 2, <K, Y Y^T> / (|K| |Y Y^T|), centred over
     * the 12 samples. */
    double y2[24], yy2[144];
    for (size_t i = 0; i < 24; i++) y2[i] = sin(0.3 * (double)i);
    ntk_mat Y2 = {n, 2, y2};
    for (int center = 0; center < 2; center++) {
        double yc2[24];
        memcpy(yc2, y2, sizeof yc2);
        if (center) {
            centre_kernel(kk, n, 1, kc);
            for (size_t a = 0; a < 2; a++) {
                double mean = 0;
                for (size_t i = 0; i < n; i++) mean += y2[i * 2 + a] / (double)n;
                for (size_t i = 0; i < n; i++) yc2[i * 2 + a] -= mean;
            }
        } else {
            memcpy(kc, kk, n * n * sizeof *kc);
        }
        num = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                yy2[i * n + j] = yc2[i * 2] * yc2[j * 2] + yc2[i * 2 + 1] * yc2[j * 2 + 1];
                num += kc[i * n + j] * yy2[i * n + j];
            }
        CHECK_STATUS(ntk_alignment(ctx, &KK, &Y2, center, &al), NTK_OK);
        CHECK_NEAR(al, num / (frob(kc, n * n) * frob(yy2, n * n)), 1e-13);
    }
    /* errors: zero targets, shapes */
    double zero[12] = {0};
    ntk_mat Z = {n, 1, zero}, Ybad = {5, 2, y};
    CHECK_STATUS(ntk_alignment(ctx, &KK, &Z, 0, &al), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "Y is zero") != NULL);
    for (size_t i = 0; i < n; i++) zero[i] = 2;
    CHECK_STATUS(ntk_alignment(ctx, &KK, &Z, 1, &al), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_alignment(ctx, &KK, &Ybad, 0, &al), NTK_ERR_SHAPE);
    free(kk);
    free(kc);
    free(ycyc);
}

/* Solve A x = b (n x n, c right-hand sides, row-major) by Gaussian
 * elimination with partial pivoting. */
static void gauss_solve(const double *a0, const double *b0, size_t n, size_t c, double *x)
{
    double *a = malloc(n * n * sizeof *a), *b = malloc(n * c * sizeof *b);
    memcpy(a, a0, n * n * sizeof *a);
    memcpy(b, b0, n * c * sizeof *b);
    for (size_t col = 0; col < n; col++) {
        size_t p = col;
        for (size_t r = col + 1; r < n; r++)
            if (fabs(a[r * n + col]) > fabs(a[p * n + col])) p = r;
        for (size_t j = 0; j < n; j++) {
            double t = a[col * n + j];
            a[col * n + j] = a[p * n + j];
            a[p * n + j] = t;
        }
        for (size_t j = 0; j < c; j++) {
            double t = b[col * c + j];
            b[col * c + j] = b[p * c + j];
            b[p * c + j] = t;
        }
        for (size_t r = col + 1; r < n; r++) {
            double f = a[r * n + col] / a[col * n + col];
            for (size_t j = col; j < n; j++) a[r * n + j] -= f * a[col * n + j];
            for (size_t j = 0; j < c; j++) b[r * c + j] -= f * b[col * c + j];
        }
    }
    for (size_t r = n; r-- > 0;)
        for (size_t j = 0; j < c; j++) {
            double s = b[r * c + j];
            for (size_t t = r + 1; t < n; t++) s -= a[r * n + t] * x[t * c + j];
            x[r * c + j] = s / a[r * n + r];
        }
    free(a);
    free(b);
}

static void test_regression(void)
{
    size_t n = 15, base = ntk_ctx_bytes_in_use(ctx);
    double *k = gram(n, 20, 0, 1), y[30], alpha[30], ref[30], jit;
    for (size_t i = 0; i < 30; i++) y[i] = cos(1.1 * (double)i);
    ntk_mat K = {n, n, k};
    /* trace layout: 15 x 2 right-hand sides; block layout: 5 x 3 = vec */
    size_t shapes[2][2] = {{15, 2}, {5, 3}};
    double ridges[2] = {0, 0.3};
    for (int s = 0; s < 2; s++)
        for (int ri = 0; ri < 2; ri++) {
            size_t r = shapes[s][0], c = shapes[s][1], rhs = r == n ? c : 1;
            ntk_mat Y = {r, c, y}, A = {r, c, alpha};
            ntk_regression_opts o;
            ntk_regression_opts_init(&o);
            o.ridge = ridges[ri];
            CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y, &o, &A, &jit), NTK_OK);
            CHECK(jit == 0);
            double *kr = malloc(n * n * sizeof *kr);
            memcpy(kr, k, n * n * sizeof *kr);
            for (size_t i = 0; i < n; i++) kr[i * n + i] += ridges[ri];
            gauss_solve(kr, y, n, rhs, ref);
            CHECK_MSG(rel_diff(alpha, ref, n * rhs) < 1e-11, "shape %d ridge %g: %g", s,
                      ridges[ri], rel_diff(alpha, ref, n * rhs));
            /* predicting the training set gives back Y (no ridge) */
            double pred[30];
            ntk_mat P = {r, c, pred};
            CHECK_STATUS(ntk_kernel_predict(ctx, &K, &A, &P), NTK_OK);
            if (ri == 0) CHECK(rel_diff(pred, y, r * c) < 1e-10);
            free(kr);
        }
    /* Rank-deficient PSD kernel (rank 6 of 15): needs jitter, reported */
    double *ks = gram(n, 6, 0, 2);
    ntk_mat KS = {n, n, ks}, Y1 = {n, 1, y}, A1 = {n, 1, alpha};
    CHECK_STATUS(ntk_kernel_regression(ctx, &KS, &Y1, NULL, &A1, &jit), NTK_OK);
    CHECK(jit > 0);
    double mean_diag = 0;
    for (size_t i = 0; i < n; i++) mean_diag += ks[i * n + i] / (double)n;
    CHECK(jit <= NTK_DEFAULT_MAX_JITTER * mean_diag * (1 + 1e-9));
    /* Ill-conditioned by design: check the backward error of the solve,
     * |(K + jI) alpha - y| <= c eps |K + jI| |alpha|. */
    for (size_t i = 0; i < n; i++) ks[i * n + i] += jit;
    matmul(ks, alpha, ref, n, n, 1);
    double resid = 0, anorm = 0;
    for (size_t i = 0; i < n; i++) resid += (ref[i] - y[i]) * (ref[i] - y[i]);
    for (size_t i = 0; i < n; i++) anorm += alpha[i] * alpha[i];
    CHECK_MSG(sqrt(resid) < 1e-13 * frob(ks, n * n) * sqrt(anorm), "backward error %g",
              sqrt(resid) / (frob(ks, n * n) * sqrt(anorm)));
    for (size_t i = 0; i < n; i++) ks[i * n + i] -= jit;
    /* jitter disabled: a clear failure */
    ntk_regression_opts o;
    ntk_regression_opts_init(&o);
    o.jitter = 0;
    CHECK_STATUS(ntk_kernel_regression(ctx, &KS, &Y1, &o, &A1, &jit), NTK_ERR_NUMERIC);
    CHECK(strstr(ntk_ctx_error(ctx), "not positive definite") != NULL);
    /* indefinite: no jitter up to the maximum helps */
    double ind[4] = {1, 0, 0, -1}, yi[2] = {1, 1}, ai[2];
    ntk_mat KI = {2, 2, ind}, YI = {2, 1, yi}, AI = {2, 1, ai};
    CHECK_STATUS(ntk_kernel_regression(ctx, &KI, &YI, NULL, &AI, &jit), NTK_ERR_NUMERIC);
    CHECK(strstr(ntk_ctx_error(ctx), "even with jitter") != NULL);
    /* shapes, NaN, asymmetry, bad ridge */
    ntk_mat Ybad = {4, 4, y}, Abad = {n, 2, alpha};
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Ybad, NULL, &A1, NULL), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y1, NULL, &Abad, NULL), NTK_ERR_SHAPE);
    y[3] = NAN;
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y1, NULL, &A1, NULL), NTK_ERR_INVALID);
    y[3] = 1;
    k[1] += 1e-3;
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y1, NULL, &A1, NULL), NTK_ERR_INVALID);
    ntk_regression_opts_init(&o);
    o.symmetrize = 1;
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y1, &o, &A1, NULL), NTK_OK);
    k[1] -= 1e-3;
    ntk_regression_opts_init(&o);
    o.ridge = -1;
    CHECK_STATUS(ntk_kernel_regression(ctx, &K, &Y1, &o, &A1, NULL), NTK_ERR_INVALID);
    /* predict shapes */
    size_t pr, pc;
    CHECK_STATUS(ntk_kernel_predict_shape(ctx, 12, 15, 15, 2, &pr, &pc), NTK_OK);
    CHECK(pr == 12 && pc == 2);
    CHECK_STATUS(ntk_kernel_predict_shape(ctx, 12, 15, 5, 3, &pr, &pc), NTK_OK);
    CHECK(pr == 4 && pc == 3);
    CHECK_STATUS(ntk_kernel_predict_shape(ctx, 13, 15, 5, 3, &pr, &pc), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_kernel_predict_shape(ctx, 12, 14, 5, 3, &pr, &pc), NTK_ERR_SHAPE);
    free(k);
    free(ks);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

/* Integrate df/dt = -eta K (f - y) (train) and dg/dt = -eta Kt (f - y)
 * (test) with classical Runge-Kutta from 0 to t in `steps` steps. */
static void rk4(const double *k, const double *kt, size_t n, size_t nt, size_t c,
                const double *y, const double *f0, const double *g0, double eta, double t,
                int steps, double *f, double *g)
{
    memcpy(f, f0, n * c * sizeof *f);
    memcpy(g, g0, nt * c * sizeof *g);
    double h = t / steps;
    double *r = malloc(n * c * sizeof *r), *kf[4], *kg[4], *ft = malloc(n * c * sizeof *ft);
    for (int s = 0; s < 4; s++) {
        kf[s] = malloc(n * c * sizeof(double));
        kg[s] = malloc(nt * c * sizeof(double));
    }
    for (int step = 0; step < steps; step++) {
        for (int s = 0; s < 4; s++) {
            double w = s == 0 ? 0 : (s == 3 ? 1 : 0.5);
            for (size_t i = 0; i < n * c; i++)
                ft[i] = f[i] + (s ? w * h * kf[s - 1][i] : 0) - y[i];
            matmul(k, ft, r, n, n, c);
            for (size_t i = 0; i < n * c; i++) kf[s][i] = -eta * r[i];
            double *rt = malloc(nt * c * sizeof *rt);
            matmul(kt, ft, rt, nt, n, c);
            for (size_t i = 0; i < nt * c; i++) kg[s][i] = -eta * rt[i];
            free(rt);
        }
        for (size_t i = 0; i < n * c; i++)
            f[i] += h / 6 * (kf[0][i] + 2 * kf[1][i] + 2 * kf[2][i] + kf[3][i]);
        for (size_t i = 0; i < nt * c; i++)
            g[i] += h / 6 * (kg[0][i] + 2 * kg[1][i] + 2 * kg[2][i] + kg[3][i]);
    }
    for (int s = 0; s < 4; s++) {
        free(kf[s]);
        free(kg[s]);
    }
    free(r);
    free(ft);
}

static void test_dynamics(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    /* Training kernel of 12 rows, test rows 8, from one Gram matrix. */
    size_t n = 12, nt = 8;
    double *all = gram(n + nt, 30, 0, 4);
    double *k = malloc(n * n * sizeof *k), *kt = malloc(nt * n * sizeof *kt);
    for (size_t i = 0; i < n; i++) memcpy(k + i * n, all + i * (n + nt), n * sizeof *k);
    for (size_t i = 0; i < nt; i++)
        memcpy(kt + i * n, all + (n + i) * (n + nt), n * sizeof *kt);
    double y[24], f0[24], g0[24];
    for (size_t i = 0; i < 24; i++) {
        y[i] = sin(0.9 * (double)i);
        f0[i] = 0.3 * cos(1.7 * (double)i);
        g0[i] = 0.2 * sin(2.3 * (double)i);
    }
    /* layouts: trace (12 x 2, 8 x 2) and block (6 x 2 = vec of 12; 4 x 2) */
    struct {
        size_t yr, yc, tr, c;
    } lay[2] = {{12, 2, 8, 2}, {6, 2, 4, 1}};
    double times[4] = {0, 0.05, 0.4, INFINITY};
    double lr = 0.7;
    for (int li = 0; li < 2; li++) {
        size_t yr = lay[li].yr, yc = lay[li].yc, tr = lay[li].tr, c = lay[li].c;
        ntk_mat K = {n, n, k}, KT = {nt, n, kt}, Y = {yr, yc, y}, F0 = {yr, yc, f0},
                G0 = {tr, yc, g0};
        double tro[4][24], teo[4][24];
        ntk_mat T[4], TE[4];
        for (int t = 0; t < 4; t++) {
            T[t] = (ntk_mat){yr, yc, tro[t]};
            TE[t] = (ntk_mat){tr, yc, teo[t]};
        }
        ntk_gd_spec sp;
        ntk_gd_spec_init(&sp);
        sp.k_train = &K;
        sp.k_test_train = &KT;
        sp.y = &Y;
        sp.f0_train = &F0;
        sp.f0_test = &G0;
        sp.lr = lr;
        sp.times = times;
        sp.ntimes = 4;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, T, TE), NTK_OK);
        /* t = 0: the initial outputs */
        CHECK(rel_diff(tro[0], f0, yr * yc) < 1e-14);
        CHECK(rel_diff(teo[0], g0, tr * yc) < 1e-14);
        /* finite t: Runge-Kutta with small steps */
        for (int t = 1; t < 3; t++) {
            double f[24], g[24];
            rk4(k, kt, n, nt, c, y, f0, g0, lr, times[t], 4000, f, g);
            CHECK_MSG(rel_diff(tro[t], f, yr * yc) < 1e-9, "layout %d t %g train: %g", li,
                      times[t], rel_diff(tro[t], f, yr * yc));
            CHECK_MSG(rel_diff(teo[t], g, tr * yc) < 1e-9, "layout %d t %g test: %g", li,
                      times[t], rel_diff(teo[t], g, tr * yc));
        }
        /* t = inf: train fits Y; test is f0_test + Kt K^{-1} (Y - f0) */
        CHECK_MSG(rel_diff(tro[3], y, yr * yc) < 1e-7, "inf train %g",
                  rel_diff(tro[3], y, yr * yc));
        double r[24], sol[24], want[24];
        for (size_t i = 0; i < n * c; i++) r[i] = y[i] - f0[i];
        gauss_solve(k, r, n, c, sol);
        matmul(kt, sol, want, nt, n, c);
        for (size_t i = 0; i < nt * c; i++) want[i] += g0[i];
        CHECK_MSG(rel_diff(teo[3], want, tr * yc) < 1e-7, "inf test %g",
                  rel_diff(teo[3], want, tr * yc));
        /* mean loss: the same as the sum loss at t / size(Y) */
        sp.mean_loss = 1;
        double tm[1] = {0.4 * (double)(yr * yc)};
        sp.times = tm;
        sp.ntimes = 1;
        double mo[24], mte[24];
        ntk_mat MT = {yr, yc, mo}, MTE = {tr, yc, mte};
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &MT, &MTE), NTK_OK);
        CHECK(rel_diff(mo, tro[2], yr * yc) < 1e-12);
        CHECK(rel_diff(mte, teo[2], tr * yc) < 1e-12);
        /* no f0 means zeros; no test kernel means no test predictions */
        sp.mean_loss = 0;
        sp.f0_train = NULL;
        sp.f0_test = NULL;
        sp.k_test_train = NULL;
        sp.times = times + 2;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &MT, NULL), NTK_OK);
        double f[24], g[24], zero[24] = {0};
        rk4(k, kt, n, nt, c, y, zero, zero, lr, 0.4, 4000, f, g);
        CHECK(rel_diff(mo, f, yr * yc) < 1e-9);
    }
    /* A singular kernel: modes in its null space do not move, so t = inf
     * leaves their component of f0 in place. */
    {
        size_t m = 10;
        double *ks = gram(m, 4, 0, 9), ys[10], fs[10], out[10];
        for (size_t i = 0; i < m; i++) {
            ys[i] = cos((double)i);
            fs[i] = 0.1 * (double)i;
        }
        ntk_mat K = {m, m, ks}, Y = {m, 1, ys}, F = {m, 1, fs}, O = {m, 1, out};
        ntk_gd_spec sp;
        ntk_gd_spec_init(&sp);
        sp.k_train = &K;
        sp.y = &Y;
        sp.f0_train = &F;
        double inf = INFINITY;
        sp.times = &inf;
        sp.ntimes = 1;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_OK);
        /* out - f0 lies in range(K) and K (out - y) = 0 */
        double d[10], kd[10];
        for (size_t i = 0; i < m; i++) d[i] = out[i] - ys[i];
        matmul(ks, d, kd, m, m, 1);
        double worst = 0;
        for (size_t i = 0; i < m; i++)
            if (fabs(kd[i]) > worst) worst = fabs(kd[i]);
        CHECK_MSG(worst < 1e-10, "K (f_inf - y) = %g", worst);
        /* the null-space part of f_inf - f0 vanishes: f_inf - f0 = K z */
        double w[10], v[100];
        ntk_mat W = {m, 1, w}, V = {m, m, v};
        CHECK_STATUS(ntk_eigh(ctx, &K, NULL, &W, &V), NTK_OK);
        for (size_t j = 4; j < m; j++) {
            double s = 0;
            for (size_t i = 0; i < m; i++) s += v[i * m + j] * (out[i] - fs[i]);
            CHECK_MSG(fabs(s) < 1e-10, "null mode %zu moved by %g", j, s);
        }
        free(ks);
    }
    /* errors */
    {
        double yy[12] = {0}, o[12], tt[1] = {-1};
        ntk_mat K = {n, n, k}, Y = {n, 1, yy}, O = {n, 1, o}, KT = {nt, n - 1, kt};
        ntk_gd_spec sp;
        ntk_gd_spec_init(&sp);
        sp.k_train = &K;
        sp.y = &Y;
        sp.times = tt;
        sp.ntimes = 1;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_ERR_INVALID);
        tt[0] = NAN;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_ERR_INVALID);
        tt[0] = 1;
        sp.lr = 0;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_ERR_INVALID);
        sp.lr = 1;
        sp.k_test_train = &KT;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, &O), NTK_ERR_SHAPE);
        sp.k_test_train = NULL;
        ntk_mat Ybad = {5, 2, yy};
        sp.y = &Ybad;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_ERR_SHAPE);
        sp.y = &Y;
        k[5] += 1;
        CHECK_STATUS(ntk_gd_dynamics(ctx, &sp, &O, NULL), NTK_ERR_INVALID);
        CHECK(strstr(ntk_ctx_error(ctx), "K_train is not symmetric") != NULL);
        k[5] -= 1;
    }
    free(all);
    free(k);
    free(kt);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_eigh_constructed();
    test_eigh_plan();
    test_eigh_errors();
    test_interrupt();
    test_alloc_failure();
    test_spectrum_stats();
    test_alignment();
    test_regression();
    test_dynamics();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_linalg");
}
