/* The block Lanczos solver on operators with constructed spectra, and the
 * matrix-free NTK products and spectra against kernels formed explicitly. */
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;

/* The operator Q diag(d) Q^T applied without forming it: Q is a product of
 * Householder reflections, applied vector by vector. */
typedef struct {
    size_t n, nh;
    double *u; /* nh reflections of length n */
    const double *d;
    int calls, fail_after;
} spectral_op;

static void reflect(const spectral_op *s, double *x, int forward)
{
    for (size_t t = 0; t < s->nh; t++) {
        const double *u = s->u + (forward ? t : s->nh - 1 - t) * s->n;
        double uu = 0, ux = 0;
        for (size_t i = 0; i < s->n; i++) {
            uu += u[i] * u[i];
            ux += u[i] * x[i];
        }
        for (size_t i = 0; i < s->n; i++) x[i] -= 2 * ux / uu * u[i];
    }
}

static ntk_status apply(void *ud, ntk_ctx *c, const double *v, size_t ldv, double *out,
                        size_t ldo, size_t k)
{
    spectral_op *s = ud;
    if (s->fail_after >= 0 && s->calls++ >= s->fail_after) {
        ntk_ctx_clear_error(c);
        return NTK_ERR_IO;
    }
    double *x = malloc(s->n * sizeof *x);
    for (size_t j = 0; j < k; j++) {
        for (size_t i = 0; i < s->n; i++) x[i] = v[i * ldv + j];
        reflect(s, x, 0); /* Q^T x, Q = H_1 H_2 ... */
        for (size_t i = 0; i < s->n; i++) x[i] *= s->d[i];
        reflect(s, x, 1);
        for (size_t i = 0; i < s->n; i++) out[i * ldo + j] = x[i];
    }
    free(x);
    return NTK_OK;
}

/* Run ntk_eigs on diag(d) rotated, check values against d (relative to the
 * largest), vectors and residuals. */
static void run_case(const char *name, const double *d, size_t n, size_t k, size_t block,
                     double tol_values)
{
    spectral_op s = {n, 3, randn(3 * n, 17), d, 0, -1};
    double *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, d, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_desc);
    double *w = malloc(k * sizeof *w), *v = malloc(n * k * sizeof *v), *r = malloc(k * sizeof *r);
    ntk_mat W = {k, 1, w}, V = {n, k, v}, R = {k, 1, r};
    ntk_eigs_opts o;
    ntk_eigs_opts_init(&o);
    o.block = block;
    ntk_eigs_info info;
    size_t base = ntk_ctx_bytes_in_use(ctx);
    CHECK_STATUS(ntk_eigs(ctx, n, apply, &s, k, &o, &W, &V, &R, &info), NTK_OK);
    double scale = fabs(sorted[0]) > 0 ? fabs(sorted[0]) : 1, worst = 0;
    for (size_t i = 0; i < k; i++)
        if (fabs(w[i] - sorted[i]) > worst) worst = fabs(w[i] - sorted[i]);
    CHECK_MSG(worst <= tol_values * scale, "%s: values off by %g (iterations %zu)", name,
              worst / scale, info.iterations);
    CHECK(info.converged == k);
    /* residuals reported are true ones: recompute */
    double *av = malloc(n * k * sizeof *av);
    apply(&s, ctx, v, k, av, k, k);
    double rw = 0;
    for (size_t j = 0; j < k; j++) {
        double t = 0;
        for (size_t i = 0; i < n; i++) {
            double e = av[i * k + j] - w[j] * v[i * k + j];
            t += e * e;
        }
        CHECK_NEAR(sqrt(t), r[j], 1e-12 * scale);
        if (r[j] > rw) rw = r[j];
        CHECK_MSG(r[j] <= NTK_DEFAULT_EIGS_TOL * scale, "%s: residual %g", name, r[j]);
    }
    CHECK_NEAR(info.residual, rw, 0);
    double orth = 0;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++) {
            double t = 0;
            for (size_t i = 0; i < n; i++) t += v[i * k + a] * v[i * k + b];
            if (fabs(t - (a == b)) > orth) orth = fabs(t - (a == b));
        }
    CHECK_MSG(orth < 1e-10, "%s: orthonormality %g", name, orth);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    free(av);
    free(s.u);
    free(sorted);
    free(w);
    free(v);
    free(r);
}

static void test_constructed(void)
{
    size_t n = 400;
    double *d = malloc(n * sizeof *d);
    /* a decaying spectrum, in scrambled order */
    for (size_t i = 0; i < n; i++) d[(i * 37) % n] = 10.0 * pow(1.0 + (double)i, -1.2);
    size_t ks[] = {1, 5, 12};
    size_t blocks[] = {0, 1, 3};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) run_case("decaying", d, n, ks[a], blocks[b], 1e-12);
    /* a top eigenvalue of multiplicity 3, and a negative end */
    for (size_t i = 0; i < n; i++) d[i] = 1.0 - 2.0 * (double)i / (double)n;
    d[100] = d[200] = d[300] = 5;
    run_case("multiple", d, n, 4, 4, 1e-12);
    run_case("multiple, block 1", d, n, 4, 1, 1e-12);
    /* rank 8: the top 10 includes zeros (an invariant subspace early on) */
    for (size_t i = 0; i < n; i++) d[i] = i < 8 ? 1.0 + (double)i : 0.0;
    run_case("rank 8", d, n, 10, 0, 1e-12);
    /* the zero operator */
    for (size_t i = 0; i < n; i++) d[i] = 0;
    run_case("zero", d, n, 3, 0, 0);
    /* small n: the dense fallback */
    for (size_t i = 0; i < 30; i++) d[i] = (double)i;
    run_case("dense", d, 30, 5, 0, 1e-13);
    free(d);
}

static void test_eigs_matrix_and_errors(void)
{
    size_t n = 120, base = ntk_ctx_bytes_in_use(ctx);
    double *a = gram(n, 40, 0, 3);
    ntk_mat A = {n, n, a};
    double full[120], w[6], r[6];
    ntk_mat F = {n, 1, full}, W = {6, 1, w}, R = {6, 1, r};
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &F, NULL), NTK_OK);
    ntk_eigs_info info;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, NULL, &W, NULL, &R, &info), NTK_OK);
    CHECK(rel_diff(w, full, 6) < 1e-12);
    CHECK(!info.dense && info.iterations > 0 && info.matvecs >= 6 * info.iterations);
    /* asymmetric input: refused unless symmetrised */
    a[3] += 1;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, NULL, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "not symmetric") != NULL);
    ntk_eigs_opts o;
    ntk_eigs_opts_init(&o);
    o.symmetrize = 1;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, NULL, NULL), NTK_OK);
    a[3] -= 1;
    a[n * 3] += 0.5;
    a[3] += 0.5;
    CHECK_STATUS(ntk_eigh(ctx, &A, NULL, &F, NULL), NTK_OK);
    CHECK(rel_diff(w, full, 6) < 1e-12);
    a[3] -= 0.5;
    a[n * 3] -= 0.5;

    /* non-convergence: best estimates, true residuals, a message */
    ntk_eigs_opts_init(&o);
    o.maxiter = 2;
    o.tol = 1e-14;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, &R, &info), NTK_ERR_NOCONV);
    CHECK(strstr(ntk_ctx_error(ctx), "did not converge") != NULL);
    CHECK(info.iterations == 2 && info.converged < 6);
    CHECK(rel_diff(w, full, 6) < 0.5 && r[0] > 0);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    /* a basis too small for k after maxiter: it grows to k vectors first */
    o.maxiter = 1;
    o.block = 2;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, &R, &info), NTK_ERR_NOCONV);
    CHECK(info.iterations == 3);
    for (int i = 0; i < 6; i++) CHECK(isfinite(w[i]) && isfinite(r[i]));

    /* errors */
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 0, NULL, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    ntk_mat W200 = {200, 1, full};
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 121, NULL, &W200, NULL, NULL, NULL),
                 NTK_ERR_INVALID);
    ntk_eigs_opts_init(&o);
    o.tol = 2;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    ntk_eigs_opts_init(&o);
    o.basis = 8;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "basis must be at least") != NULL);
    ntk_eigs_opts_init(&o);
    o.block = 121;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, &o, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    ntk_mat W5 = {5, 1, w}, V5 = {n, 5, a};
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, NULL, &W5, NULL, NULL, NULL), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, NULL, &W, &V5, NULL, NULL), NTK_ERR_SHAPE);
    a[7] = NAN;
    CHECK_STATUS(ntk_eigs_matrix(ctx, &A, 6, NULL, &W, NULL, NULL, NULL), NTK_ERR_INVALID);
    a[7] = a[7 * n];
    /* sizes beyond BLAS's 32-bit integers: refused before allocating */
    CHECK_STATUS(ntk_eigs(ctx, (size_t)1 << 31, apply, NULL, 6, NULL, &W, NULL, NULL, NULL),
                 NTK_ERR_OVERFLOW);
    ntk_eigs_opts_init(&o);
    o.basis = 60000;
    CHECK_STATUS(ntk_eigs(ctx, (size_t)1 << 30, apply, NULL, 6, &o, &W, NULL, NULL, NULL),
                 NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_eigs(ctx, 300, NULL, NULL, 6, NULL, &W, NULL, NULL, NULL),
                 NTK_ERR_INVALID);
    /* an operator failure stops the solver and is passed on */
    double d[300];
    for (int i = 0; i < 300; i++) d[i] = 1.0 / (1 + i);
    spectral_op s = {300, 2, randn(600, 1), d, 0, 3};
    CHECK_STATUS(ntk_eigs(ctx, 300, apply, &s, 6, NULL, &W, NULL, NULL, NULL), NTK_ERR_IO);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    free(s.u);
    free(a);
}

static int stop_after;

/* ---- the matrix-free NTK ---- */

static ntk_net *make(const size_t *sizes, size_t depth, ntk_act act, ntk_param param,
                     uint64_t seed)
{
    return mlp(ctx, sizes, depth, act, param, 1.3, 0.4, seed);
}

/* K V with K = J J^T from the library's Jacobian, by loops. */
static void reference_product(ntk_net *net, const ntk_mat *x, const double *v, size_t k,
                              double *out)
{
    size_t n = x->rows * ntk_net_output_dim(net), P = ntk_net_num_params(net);
    double *j = malloc(n * P * sizeof *j), *u = malloc(P * k * sizeof *u);
    ntk_mat J = {n, P, j};
    CHECK_STATUS(ntk_net_jacobian(ctx, net, x, &J), NTK_OK);
    for (size_t p = 0; p < P; p++)
        for (size_t c = 0; c < k; c++) {
            double s = 0;
            for (size_t r = 0; r < n; r++) s += j[r * P + p] * v[r * k + c];
            u[p * k + c] = s;
        }
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < k; c++) {
            double s = 0;
            for (size_t p = 0; p < P; p++) s += j[r * P + p] * u[p * k + c];
            out[r * k + c] = s;
        }
    free(j);
    free(u);
}

static void test_matvec(void)
{
    size_t shapes[][5] = {{3, 2, 0, 0, 0}, {4, 9, 3, 0, 0}, {5, 7, 6, 4, 0}, {2, 5, 5, 5, 1}};
    size_t depths[] = {1, 2, 3, 4};
    size_t mems[] = {0, 1, 20000};
    ntk_act acts[] = {NTK_ACT_TANH, NTK_ACT_RELU, NTK_ACT_GELU, NTK_ACT_SIN};
    for (int s = 0; s < 4; s++)
        for (int param = 0; param < 2; param++) {
            ntk_net *net = make(shapes[s], depths[s], acts[s], (ntk_param)param, 7 + s);
            size_t nin = shapes[s][0], m = ntk_net_output_dim(net), N = 11, n = N * m;
            double *xd = randn(N * nin, 100 + s);
            ntk_mat X = {N, nin, xd};
            size_t cols[] = {1, 7};
            for (int ci = 0; ci < 2; ci++) {
                size_t k = cols[ci];
                double *v = randn(n * k, 5), *ref = malloc(n * k * sizeof *ref),
                       *out = malloc(n * k * sizeof *out);
                reference_product(net, &X, v, k, ref);
                ntk_mat V = {n, k, v}, O = {n, k, out};
                for (int mi = 0; mi < 3; mi++) {
                    size_t base = ntk_ctx_bytes_in_use(ctx);
                    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, mems[mi], &O), NTK_OK);
                    double err = rel_diff(out, ref, n * k);
                    CHECK_MSG(err < 1e-13, "shape %d param %d k %zu memory %zu: %g", s, param,
                              k, mems[mi], err);
                    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
                }
                free(v);
                free(ref);
                free(out);
            }
            free(xd);
            ntk_net_destroy(ctx, net);
        }
}

static void test_matvec_errors(void)
{
    size_t sizes[] = {3, 6, 2};
    ntk_net *net = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 1);
    size_t base = ntk_ctx_bytes_in_use(ctx);
    double xd[12], v[16], o[16];
    for (int i = 0; i < 12; i++) xd[i] = sin(i);
    for (int i = 0; i < 16; i++) v[i] = cos(i);
    ntk_mat X = {4, 3, xd}, V = {8, 2, v}, O = {8, 2, o};
    ntk_mat Xbad = {3, 4, xd}, Vbad = {7, 2, v}, Obad = {8, 1, o};
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &Xbad, &V, 0, &O), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &Vbad, 0, &O), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "(N m) x k") != NULL);
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, 0, &Obad), NTK_ERR_SHAPE);
    v[5] = NAN;
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, 0, &O), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "V contains NaN") != NULL);
    v[5] = 1;
    xd[2] = INFINITY;
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, 0, &O), NTK_ERR_INVALID);
    xd[2] = 0;
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, NULL, &X, &V, 0, &O), NTK_ERR_INVALID);
    /* empty inputs and no columns */
    ntk_mat X0 = {0, 3, xd}, V0 = {0, 2, v}, O0 = {0, 2, o}, Vk0 = {8, 0, v}, Ok0 = {8, 0, o};
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X0, &V0, 0, &O0), NTK_OK);
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &Vk0, 0, &Ok0), NTK_OK);
    /* huge V entries overflow: refused, not returned as Inf */
    for (int i = 0; i < 16; i++) v[i] = 1e308;
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, 0, &O), NTK_ERR_NUMERIC);
    CHECK(strstr(ntk_ctx_error(ctx), "overflowed") != NULL);
    for (int i = 0; i < 16; i++) v[i] = cos(i);
    /* interruption at every report point frees everything */
    for (int after = 0; after < 4; after++) {
        stop_after = after;
        ntk_ctx_set_progress(ctx, countdown_hook, &stop_after);
        CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &X, &V, 1, &O), NTK_ERR_INTERRUPTED);
        CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    }
    ntk_ctx_set_progress(ctx, NULL, NULL);
    ntk_net_destroy(ctx, net);
}

static void test_ntk_eigs(void)
{
    size_t sizes[] = {6, 40, 30, 3};
    ntk_net *net = make(sizes, 3, NTK_ACT_ERF, NTK_PARAM_NTK, 21);
    size_t N = 120, m = 3, n = N * m;
    double *xd = randn(N * 6, 8), *kd = malloc(n * n * sizeof *kd), *full = malloc(n * 8);
    ntk_mat X = {N, 6, xd}, K = {n, n, kd}, F = {n, 1, full};
    ntk_kernel_opts ko;
    ntk_kernel_opts_init(&ko);
    ko.method = NTK_METHOD_JACOBIAN;
    CHECK_STATUS(ntk_net_ntk(ctx, net, &X, NULL, &ko, &K), NTK_OK);
    CHECK_STATUS(ntk_eigh(ctx, &K, NULL, &F, NULL), NTK_OK);
    size_t ks[] = {1, 6, 10};
    for (int t = 0; t < 3; t++) {
        size_t k = ks[t], base = ntk_ctx_bytes_in_use(ctx);
        double w[10], r[10], *v = malloc(n * k * sizeof *v);
        ntk_mat W = {k, 1, w}, R = {k, 1, r}, V = {n, k, v};
        ntk_eigs_info info;
        CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &X, k, NULL, &W, &V, &R, &info), NTK_OK);
        double worst = 0;
        for (size_t i = 0; i < k; i++)
            if (fabs(w[i] - full[i]) / full[i] > worst) worst = fabs(w[i] - full[i]) / full[i];
        CHECK_MSG(worst < 1e-8, "top %zu: relative error %g", k, worst);
        CHECK(!info.dense && info.converged == k);
        /* K v = l v with the dense kernel */
        double res = 0;
        for (size_t j = 0; j < k; j++)
            for (size_t i = 0; i < n; i++) {
                double s = 0;
                for (size_t c = 0; c < n; c++) s += kd[i * n + c] * v[c * k + j];
                if (fabs(s - w[j] * v[i * k + j]) > res) res = fabs(s - w[j] * v[i * k + j]);
            }
        CHECK_MSG(res < 1e-7 * full[0], "top %zu: residual %g", k, res);
        CHECK(ntk_ctx_bytes_in_use(ctx) == base);
        free(v);
    }
    /* a tiny memory budget (uncached tapes, one sample per pass) agrees */
    ntk_eigs_opts o;
    ntk_eigs_opts_init(&o);
    o.memory = 1;
    double w[4];
    ntk_mat W = {4, 1, w};
    CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &X, 4, &o, &W, NULL, NULL, NULL), NTK_OK);
    CHECK(rel_diff(w, full, 4) < 1e-10);
    /* interruption inside the solver */
    size_t base = ntk_ctx_bytes_in_use(ctx);
    stop_after = 2;
    ntk_ctx_set_progress(ctx, countdown_hook, &stop_after);
    CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &X, 4, NULL, &W, NULL, NULL, NULL),
                 NTK_ERR_INTERRUPTED);
    CHECK(strstr(ntk_ctx_error(ctx), "interrupted during eigs") != NULL);
    ntk_ctx_set_progress(ctx, NULL, NULL);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    /* k out of range */
    CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &X, 0, NULL, &W, NULL, NULL, NULL),
                 NTK_ERR_INVALID);
    CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &X, n + 1, NULL, &W, NULL, NULL, NULL),
                 NTK_ERR_INVALID);
    free(xd);
    free(kd);
    free(full);
    ntk_net_destroy(ctx, net);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_constructed();
    test_eigs_matrix_and_errors();
    test_matvec();
    test_matvec_errors();
    test_ntk_eigs();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_eigs");
}
