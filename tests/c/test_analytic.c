/* Infinite-width kernels of the core: closed forms against quadrature,
 * quadrature against Monte Carlo, hand-sized recursions, symmetry, positive
 * semi-definiteness, bad input and interruption. (Monte Carlo averages of
 * empirical kernels are in tests/lua/analytic_spec.lua.) */
#include <lapacke.h>
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;
static const double PI = 3.14159265358979323846;

static ntk_status expect(ntk_act act, double q1, double q2, double c, size_t points,
                         int force, double *e, double *ed)
{
    ntk_analytic_spec s;
    ntk_analytic_spec_init(&s);
    s.quad_points = points;
    s.force_quadrature = force;
    return ntk_gaussian_expect(ctx, &s, act, q1, q2, c, e, ed);
}

/* Covariances (q1, q2, rho), rho = +-1 and a zero variance included. */
static const double COV[][3] = {{1, 1, 0.5},   {2, 0.5, 0.9}, {0.3, 3, -0.8}, {1.7, 1.7, 1},
                                {0.8, 2, -1},  {1, 1, 0},     {0, 1.5, 0},    {0.05, 0.02, 0.3},
                                {4, 4, 0.999}, {2.5, 1, -0.3}};
#define NCOV (sizeof COV / sizeof COV[0])

static void test_closed_vs_quadrature(void)
{
    ntk_act smooth[] = {NTK_ACT_ERF, NTK_ACT_SIN, NTK_ACT_IDENTITY};
    for (size_t a = 0; a < 3; a++)
        for (size_t k = 0; k < NCOV; k++) {
            double q1 = COV[k][0], q2 = COV[k][1], c = COV[k][2] * sqrt(q1 * q2);
            double e, ed, qe, qed;
            CHECK_STATUS(expect(smooth[a], q1, q2, c, 0, 0, &e, &ed), NTK_OK);
            CHECK_STATUS(expect(smooth[a], q1, q2, c, 256, 1, &qe, &qed), NTK_OK);
            CHECK_MSG(fabs(e - qe) < 1e-12 && fabs(ed - qed) < 1e-12, "%s cov %zu: %.17g %.17g vs %.17g %.17g",
                      ntk_act_name(smooth[a]), k, e, ed, qe, qed);
        }
    /* relu's kink makes quadrature converge slowly and unevenly: with 256
     * points it must be close, and far closer than with 16. */
    for (size_t k = 0; k < NCOV; k++) {
        double q1 = COV[k][0], q2 = COV[k][1], c = COV[k][2] * sqrt(q1 * q2);
        double e, ed, e16, ed16, e512, ed512;
        CHECK_STATUS(expect(NTK_ACT_RELU, q1, q2, c, 0, 0, &e, &ed), NTK_OK);
        CHECK_STATUS(expect(NTK_ACT_RELU, q1, q2, c, 16, 1, &e16, &ed16), NTK_OK);
        CHECK_STATUS(expect(NTK_ACT_RELU, q1, q2, c, 256, 1, &e512, &ed512), NTK_OK);
        double s = sqrt(q1 * q2) + 1e-300;
        CHECK_MSG(fabs(e - e512) <= 4e-3 * s && fabs(ed - ed512) <= 1.5e-2,
                  "relu cov %zu: %g %g vs %g %g", k, e, ed, e512, ed512);
        CHECK_MSG(fabs(e - e512) <= fmax(0.5 * fabs(e - e16), 2e-5 * s), "relu cov %zu: %g vs %g", k,
                  fabs(e - e512), fabs(e - e16));
    }
    /* Hand values: relu at rho = 0 gives s/(2 pi) and 1/4; rho = 1 gives
     * q/2 and 1/2; erf at c = 0 gives 0 and (4/pi)/sqrt((1+2q1)(1+2q2)). */
    double e, ed;
    CHECK_STATUS(expect(NTK_ACT_RELU, 2, 8, 0, 0, 0, &e, &ed), NTK_OK);
    CHECK_NEAR(e, 4 / (2 * PI), 1e-15);
    CHECK_NEAR(ed, 0.25, 1e-15);
    CHECK_STATUS(expect(NTK_ACT_RELU, 3, 3, 3, 0, 0, &e, &ed), NTK_OK);
    CHECK(e == 1.5 && ed == 0.5);
    CHECK_STATUS(expect(NTK_ACT_RELU, 3, 3, -3, 0, 0, &e, &ed), NTK_OK);
    CHECK(fabs(e) < 1e-15 && fabs(ed) < 1e-16);
    CHECK_STATUS(expect(NTK_ACT_ERF, 1, 2, 0, 0, 0, &e, &ed), NTK_OK);
    CHECK_NEAR(e, 0, 1e-16);
    CHECK_NEAR(ed, 4 / PI / sqrt(15.0), 1e-15);
}

/* Quadrature of activations without closed forms against plain Monte
 * Carlo sampling (5 standard errors). */
static void test_quadrature_vs_monte_carlo(void)
{
    ntk_act acts[] = {NTK_ACT_TANH, NTK_ACT_SIGMOID, NTK_ACT_GELU, NTK_ACT_SOFTPLUS};
    const size_t S = 200000;
    double *z = randn(2 * S, 77);
    double *u = malloc(S * 8), *v = malloc(S * 8), *pu = malloc(S * 8), *pv = malloc(S * 8),
           *du = malloc(S * 8), *dv = malloc(S * 8);
    for (size_t a = 0; a < 4; a++)
        for (size_t k = 0; k < 4; k++) {
            double q1 = COV[k][0], q2 = COV[k][1], r = COV[k][2];
            for (size_t i = 0; i < S; i++) {
                u[i] = sqrt(q1) * z[2 * i];
                v[i] = sqrt(q2) * (r * z[2 * i] + sqrt(1 - r * r) * z[2 * i + 1]);
            }
            ntk_act_apply(acts[a], u, S, pu, du);
            ntk_act_apply(acts[a], v, S, pv, dv);
            double m1 = 0, s1 = 0, m2 = 0, s2 = 0;
            for (size_t i = 0; i < S; i++) {
                double x1 = pu[i] * pv[i], x2 = du[i] * dv[i];
                m1 += x1;
                s1 += x1 * x1;
                m2 += x2;
                s2 += x2 * x2;
            }
            m1 /= S;
            m2 /= S;
            double se1 = sqrt((s1 / S - m1 * m1) / S), se2 = sqrt((s2 / S - m2 * m2) / S);
            double e, ed;
            CHECK_STATUS(expect(acts[a], q1, q2, r * sqrt(q1 * q2), 0, 0, &e, &ed), NTK_OK);
            CHECK_MSG(fabs(e - m1) < 5 * se1 && fabs(ed - m2) < 5 * se2,
                      "%s cov %zu: %g vs %g (se %g), %g vs %g (se %g)", ntk_act_name(acts[a]), k,
                      e, m1, se1, ed, m2, se2);
        }
    free(z);
    free(u);
    free(v);
    free(pu);
    free(pv);
    free(du);
    free(dv);
}

/* The automatic rule meets its tolerance against the largest rule, also
 * for saturated tanh, and a fixed small rule is visibly worse. */
static void test_automatic_rule(void)
{
    double q[][3] = {{1, 1, 0.5}, {3, 3, 2.85}, {6, 5, -3}};
    for (size_t k = 0; k < 3; k++) {
        ntk_analytic_spec s;
        ntk_analytic_spec_init(&s);
        s.quad_tol = 1e-9;
        double e, ed, re, red;
        CHECK_STATUS(ntk_gaussian_expect(ctx, &s, NTK_ACT_TANH, q[k][0], q[k][1], q[k][2], &e, &ed),
                     NTK_OK);
        s.quad_points = 384;
        CHECK_STATUS(ntk_gaussian_expect(ctx, &s, NTK_ACT_TANH, q[k][0], q[k][1], q[k][2], &re,
                                         &red),
                     NTK_OK);
        CHECK_MSG(fabs(e - re) < 1e-8 && fabs(ed - red) < 1e-8, "case %zu: %g %g", k,
                  fabs(e - re), fabs(ed - red));
    }
    double e16, ed16, e512, ed512;
    CHECK_STATUS(expect(NTK_ACT_TANH, 3, 3, 2.85, 16, 0, &e16, &ed16), NTK_OK);
    CHECK_STATUS(expect(NTK_ACT_TANH, 3, 3, 2.85, 384, 0, &e512, &ed512), NTK_OK);
    CHECK(fabs(ed16 - ed512) > 1e-4);
}

/* ---- kernels ---- */

static void spec_for(ntk_analytic_spec *s, size_t depth, const size_t *sizes,
                     const ntk_act *acts, ntk_param param, double w, double b)
{
    ntk_analytic_spec_init(s);
    s->depth = depth;
    s->sizes = sizes;
    s->acts = acts;
    s->param = param;
    s->weight_std = w;
    s->bias_std = b;
}

static void test_hand_sized(void)
{
    double xd[] = {1, 2, 0, -1, 0.5, 3}; /* two points in R^3 */
    ntk_mat x = {2, 3, xd};
    double n[4], t[4];
    ntk_mat N = {2, 2, n}, T = {2, 2, t};
    double dots[2][2] = {{5, 0}, {0, 10.25}};
    /* One layer: NNGP = NTK = w^2 x.x'/n0 + b^2 (ntk); NTK = x.x' + 1 (standard). */
    ntk_analytic_spec s;
    spec_for(&s, 1, NULL, NULL, NTK_PARAM_NTK, 1.5, 0.5);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &N, &T), NTK_OK);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            CHECK_NEAR(n[i * 2 + j], 2.25 * dots[i][j] / 3 + 0.25, 1e-14);
            CHECK_NEAR(t[i * 2 + j], 2.25 * dots[i][j] / 3 + 0.25, 1e-14);
        }
    size_t sz1[] = {3, 4};
    spec_for(&s, 1, sz1, NULL, NTK_PARAM_STANDARD, 1.5, 0.5);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &N, &T), NTK_OK);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            CHECK_NEAR(n[i * 2 + j], 2.25 * dots[i][j] / 3 + 0.25, 1e-14);
            CHECK_NEAR(t[i * 2 + j], dots[i][j] + 1, 1e-14);
        }
    /* Two layers with relu, by the arc-cosine formulas written out here. */
    ntk_act relu = NTK_ACT_RELU;
    size_t sz2[] = {3, 7, 2};
    double w = 1.2, b = 0.3;
    for (int param = 0; param < 2; param++) {
        spec_for(&s, 2, sz2, &relu, (ntk_param)param, w, b);
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &N, &T), NTK_OK);
        double S1[2][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) S1[i][j] = w * w * dots[i][j] / 3 + b * b;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                double s = sqrt(S1[i][i] * S1[j][j]);
                double rho = i == j ? 1 : S1[i][j] / s, th = acos(rho);
                double e = s / (2 * PI) * (sin(th) + (PI - th) * cos(th));
                double ed = (PI - th) / (2 * PI);
                double nngp = w * w * e + b * b;
                double ntk = param == 0 ? nngp + w * w * ed * S1[i][j]
                                        : 7 * e + 1 + w * w * ed * (dots[i][j] + 1);
                CHECK_NEAR(n[i * 2 + j], nngp, 1e-13);
                CHECK_NEAR(t[i * 2 + j], ntk, 1e-12);
            }
    }
}

static int is_psd(const double *k, size_t n)
{
    double *a = malloc(n * n * 8);
    double tr = 0;
    for (size_t i = 0; i < n; i++) tr += k[i * n + i];
    memcpy(a, k, n * n * 8);
    for (size_t i = 0; i < n; i++) a[i * n + i] += 1e-12 * tr;
    int ok = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, a, (lapack_int)n) == 0;
    free(a);
    return ok;
}

static void test_symmetry_and_cross(void)
{
    size_t N = 7, M = 4, n0 = 4;
    double *xd = randn(N * n0, 3), *zd = randn(M * n0, 4);
    ntk_act acts[] = {NTK_ACT_TANH, NTK_ACT_RELU, NTK_ACT_GELU};
    ntk_mat x = {N, n0, xd}, z = {M, n0, zd};
    double *n = malloc(N * N * 8), *t = malloc(N * N * 8), *nc = malloc(N * N * 8),
           *tc = malloc(N * N * 8), *nz = malloc(N * M * 8), *tz = malloc(N * M * 8);
    ntk_mat Nn = {N, N, n}, Tt = {N, N, t}, Nc = {N, N, nc}, Tc = {N, N, tc};
    ntk_mat Nz = {N, M, nz}, Tz = {N, M, tz};
    size_t sizes[] = {4, 30, 30, 30, 2};
    for (int param = 0; param < 2; param++) {
        ntk_analytic_spec s;
        spec_for(&s, 4, sizes, acts, (ntk_param)param, 1.1, 0.2);
        s.quad_tol = 1e-6;
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &Nn, &Tt), NTK_OK);
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, &x, &Nc, &Tc), NTK_OK);
        int sym = 1;
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                sym &= n[i * N + j] == n[j * N + i] && t[i * N + j] == t[j * N + i];
        CHECK(sym);
        CHECK(rel_diff(nc, n, N * N) < 1e-12 && rel_diff(tc, t, N * N) < 1e-12);
        CHECK(is_psd(n, N) && is_psd(t, N));
        /* Rows of a cross kernel are the same pairs as in the joint one. */
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, &z, &Nz, &Tz), NTK_OK);
        double *xz = malloc((N + M) * n0 * 8);
        memcpy(xz, xd, N * n0 * 8);
        memcpy(xz + N * n0, zd, M * n0 * 8);
        ntk_mat XZ = {N + M, n0, xz};
        double *big = malloc((N + M) * (N + M) * 8);
        ntk_mat B = {N + M, N + M, big};
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &XZ, NULL, NULL, &B), NTK_OK);
        double worst = 0;
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < M; j++)
                worst = fmax(worst, fabs(big[i * (N + M) + N + j] - tz[i * M + j]));
        CHECK(worst < 1e-12 * t[0]);
        /* One thread or two: the same numbers. */
        ntk_ctx_set_threads(ctx, 1);
        CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &Nc, &Tc), NTK_OK);
        ntk_ctx_set_threads(ctx, 2);
        CHECK(memcmp(nc, n, N * N * 8) == 0 && memcmp(tc, t, N * N * 8) == 0);
        free(xz);
        free(big);
    }
    /* Only the NNGP: the standard parameterization needs no sizes. */
    ntk_analytic_spec s;
    spec_for(&s, 4, NULL, acts, NTK_PARAM_STANDARD, 1.4, 0.2);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &Nn, NULL), NTK_OK);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &Tt), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "give sizes") != NULL);
    free(xd);
    free(zd);
    free(n);
    free(t);
    free(nc);
    free(tc);
    free(nz);
    free(tz);
}

/* The NNGP's limit at depth: relu with w^2 = 2, b = 0 keeps the diagonal
 * at |x|^2 w^2 / n0 layer after layer (He initialisation). */
static void test_depth_fixed_point(void)
{
    double xd[] = {3, 4};
    ntk_mat x = {1, 2, xd};
    double n, t;
    ntk_mat N = {1, 1, &n}, T = {1, 1, &t};
    ntk_act acts[9];
    for (int k = 0; k < 9; k++) acts[k] = NTK_ACT_RELU;
    ntk_analytic_spec s;
    spec_for(&s, 10, NULL, acts, NTK_PARAM_NTK, sqrt(2.0), 0);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, &N, &T), NTK_OK);
    CHECK_NEAR(n, 25.0, 1e-12);
    /* Theta_L = L Sigma on the diagonal: each layer adds Sigma, Sdot = 1. */
    CHECK_NEAR(t, 10 * 25.0, 1e-11);
}

typedef struct stop_state {
    int calls, stop_after;
} stop_state;

static int stop_hook(void *ud, const char *task, double done, double total)
{
    (void)done;
    (void)total;
    stop_state *s = ud;
    CHECK(strcmp(task, "analytic") == 0);
    return ++s->calls > s->stop_after;
}

static void test_errors_and_interrupt(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    double xd[6] = {1, 2, 3, 4, 5, 6}, out[9];
    ntk_mat x = {3, 2, xd}, K = {3, 3, out};
    ntk_analytic_spec s;
    ntk_analytic_spec_init(&s);
    s.depth = 0;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.depth = 2;
    size_t sizes[] = {3, 5, 1};
    s.sizes = sizes;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "X1 must be N x 3") != NULL);
    s.sizes = NULL;
    s.weight_std = -1;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.weight_std = NAN;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.weight_std = 1;
    s.quad_points = 513;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.quad_points = 0;
    s.quad_tol = 0;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.quad_tol = NTK_DEFAULT_QUAD_TOL;
    ntk_act bogus = (ntk_act)42;
    s.acts = &bogus;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    s.acts = NULL;
    ntk_mat wrong = {3, 2, out};
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &wrong), NTK_ERR_SHAPE);
    double zd[3] = {1, 2, 3};
    ntk_mat z = {1, 3, zd};
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, &z, NULL, &K), NTK_ERR_SHAPE);
    xd[3] = NAN;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "X1 contains NaN at row 2, column 2") != NULL);
    xd[3] = 4;
    ntk_mat nocols = {3, 0, xd};
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &nocols, NULL, NULL, &K), NTK_ERR_SHAPE);
    ntk_mat none = {0, 2, xd}, K0 = {0, 0, out};
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &none, NULL, NULL, &K0), NTK_OK);
    CHECK_STATUS(ntk_analytic_kernels(ctx, NULL, &x, NULL, NULL, &K), NTK_ERR_INVALID);
    double e;
    CHECK_STATUS(expect(NTK_ACT_TANH, 1, 1, 2, 0, 0, &e, NULL), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "not a covariance") != NULL);
    CHECK_STATUS(expect(NTK_ACT_TANH, -1, 1, 0, 0, 0, &e, NULL), NTK_ERR_INVALID);
    CHECK_STATUS(expect(NTK_ACT_COUNT, 1, 1, 0, 0, 0, &e, NULL), NTK_ERR_INVALID);

    /* So large it overflows: refused, never Inf in the result. */
    s.weight_std = 1e100;
    s.depth = 6;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &x, NULL, NULL, &K), NTK_ERR_NUMERIC);
    CHECK(strstr(ntk_ctx_error(ctx), "overflowed") != NULL);

    /* Interruption after the first block of rows frees everything. */
    size_t N = 300;
    double *xb = randn(N * 2, 1), *kb = malloc(N * N * 8);
    ntk_mat XB = {N, 2, xb}, KB = {N, N, kb};
    ntk_act tanh_act = NTK_ACT_TANH;
    ntk_analytic_spec_init(&s);
    s.depth = 2;
    s.acts = &tanh_act;
    s.quad_points = 16;
    stop_state st = {0, 1};
    ntk_ctx_set_progress(ctx, stop_hook, &st);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &s, &XB, NULL, NULL, &KB), NTK_ERR_INTERRUPTED);
    ntk_ctx_set_progress(ctx, NULL, NULL);
    CHECK(st.calls == 2);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    free(xb);
    free(kb);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_closed_vs_quadrature();
    test_quadrature_vs_monte_carlo();
    test_automatic_rule();
    test_hand_sized();
    test_symmetry_and_cross();
    test_depth_fixed_point();
    test_errors_and_interrupt();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_analytic");
}
