/* Networks, Jacobians and kernels of the core, checked against finite
 * differences, explicit products and hand-sized cases. */
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;

static ntk_net *make(const size_t *sizes, size_t depth, ntk_act act, ntk_param param,
                     uint64_t seed)
{
    return mlp(ctx, sizes, depth, act, param, 1.4, 0.3, seed);
}

static void test_layout_and_forward(void)
{
    /* One dense layer: y = c_w W x + c_b b, by hand. */
    size_t sizes[] = {3, 2};
    ntk_net *net = make(sizes, 1, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    CHECK(ntk_net_num_params(net) == 8);
    double theta[8] = {1, 2, 3, 4, 5, 6, 0.5, -0.25};
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, 8), NTK_OK);
    double wbuf[6], bbuf[2];
    ntk_mat w = {2, 3, wbuf}, b = {2, 1, bbuf};
    CHECK_STATUS(ntk_net_get_layer(ctx, net, 1, &w, &b), NTK_OK);
    CHECK(wbuf[0] == 1 && wbuf[5] == 6 && bbuf[0] == 0.5 && bbuf[1] == -0.25);
    double xd[3] = {1, -1, 2}, yd[2];
    ntk_mat x = {1, 3, xd}, y = {1, 2, yd};
    CHECK_STATUS(ntk_net_forward(ctx, net, &x, &y), NTK_OK);
    double cw = 1.4 / sqrt(3.0), cb = 0.3;
    CHECK_NEAR(yd[0], cw * (1 - 2 + 6) + cb * 0.5, 1e-14);
    CHECK_NEAR(yd[1], cw * (4 - 5 + 12) + cb * -0.25, 1e-14);
    ntk_net_destroy(ctx, net);

    /* Two layers, standard parameterization, relu: by hand. */
    size_t s2[] = {2, 2, 1};
    net = make(s2, 2, NTK_ACT_RELU, NTK_PARAM_STANDARD, 1);
    double t2[] = {1, -1, 2, 1, 0.5, -3, /* W1, b1 */ 2, -1, /* W2 */ 0.25};
    CHECK_STATUS(ntk_net_set_params(ctx, net, t2, 9), NTK_OK);
    double x2d[4] = {1, 2, -1, 0}, y2d[2];
    ntk_mat x2 = {2, 2, x2d}, y2 = {2, 1, y2d};
    CHECK_STATUS(ntk_net_forward(ctx, net, &x2, &y2), NTK_OK);
    /* sample 1: h = relu([1-2+0.5, 2+2-3]) = [0, 1]; y = -1 + 0.25 */
    CHECK_NEAR(y2d[0], -0.75, 1e-15);
    /* sample 2: h = relu([-1+0.5, -2-3]) = [0, 0]; y = 0.25 */
    CHECK_NEAR(y2d[1], 0.25, 1e-15);
    ntk_net_destroy(ctx, net);
}

/* Central differences of f(X) over every parameter: (N m) x P. */
static void fd_jacobian(ntk_net *net, const ntk_mat *x, double *jfd)
{
    size_t P = ntk_net_num_params(net), m = ntk_net_output_dim(net), N = x->rows;
    double *theta = malloc(P * sizeof *theta);
    memcpy(theta, ntk_net_params(net), P * sizeof *theta);
    double *yp = malloc(N * m * sizeof *yp), *ym = malloc(N * m * sizeof *ym);
    ntk_mat vp = {N, m, yp}, vm = {N, m, ym};
    for (size_t p = 0; p < P; p++) {
        double t = theta[p], h = 1e-6 * (fabs(t) > 1 ? fabs(t) : 1);
        theta[p] = t + h;
        ntk_net_set_params(ctx, net, theta, P);
        ntk_net_forward(ctx, net, x, &vp);
        theta[p] = t - h;
        ntk_net_set_params(ctx, net, theta, P);
        ntk_net_forward(ctx, net, x, &vm);
        theta[p] = t;
        for (size_t r = 0; r < N * m; r++) jfd[r * P + p] = (yp[r] - ym[r]) / (2 * h);
    }
    ntk_net_set_params(ctx, net, theta, P);
    free(theta);
    free(yp);
    free(ym);
}

static void test_jacobian_fd(void)
{
    size_t shapes[][5] = {{3, 5, 4, 2, 0}, {1, 1, 1, 0, 0}, {2, 6, 1, 0, 0}, {4, 3, 3, 3, 3}};
    size_t depths[] = {3, 2, 2, 4};
    for (int act = 0; act < NTK_ACT_COUNT; act++)
        for (int param = 0; param < 2; param++)
            for (size_t s = 0; s < 4; s++) {
                ntk_net *net = make(shapes[s], depths[s], (ntk_act)act, (ntk_param)param,
                                    100 + (uint64_t)act);
                size_t n = shapes[s][0], m = ntk_net_output_dim(net);
                size_t P = ntk_net_num_params(net), N = 3;
                double *xd = randn(N * n, 7 + s);
                ntk_mat x = {N, n, xd};
                double *j = malloc(N * m * P * sizeof *j), *jfd = malloc(N * m * P * sizeof *jfd);
                ntk_mat vj = {N * m, P, j};
                CHECK_STATUS(ntk_net_jacobian(ctx, net, &x, &vj), NTK_OK);
                fd_jacobian(net, &x, jfd);
                double err = rel_diff(j, jfd, N * m * P);
                CHECK_MSG(err < 1e-6, "%s/%s shape %zu: relative error %g",
                          ntk_act_name((ntk_act)act), ntk_param_name((ntk_param)param), s, err);
                free(xd);
                free(j);
                free(jfd);
                ntk_net_destroy(ctx, net);
            }
}

/* Every kernel mode and method against J J^T built here. */
static void test_kernels(void)
{
    size_t sizes[] = {3, 6, 5, 3};
    ntk_net *net = make(sizes, 3, NTK_ACT_TANH, NTK_PARAM_NTK, 5);
    size_t N = 5, N2 = 3, m = 3, P = ntk_net_num_params(net);
    double *x1d = randn(N * 3, 1), *x2d = randn(N2 * 3, 2);
    ntk_mat x1 = {N, 3, x1d}, x2 = {N2, 3, x2d};
    double *j1 = malloc(N * m * P * sizeof(double)), *j2 = malloc(N2 * m * P * sizeof(double));
    ntk_mat vj1 = {N * m, P, j1}, vj2 = {N2 * m, P, j2};
    CHECK_STATUS(ntk_net_jacobian(ctx, net, &x1, &vj1), NTK_OK);
    CHECK_STATUS(ntk_net_jacobian(ctx, net, &x2, &vj2), NTK_OK);
    /* Reference full kernels by explicit loops. */
    double *kref = calloc(N * m * N * m, sizeof(double));
    double *kxref = calloc(N * m * N2 * m, sizeof(double));
    for (size_t r = 0; r < N * m; r++)
        for (size_t c = 0; c < N * m; c++)
            for (size_t p = 0; p < P; p++) kref[r * N * m + c] += j1[r * P + p] * j1[c * P + p];
    for (size_t r = 0; r < N * m; r++)
        for (size_t c = 0; c < N2 * m; c++)
            for (size_t p = 0; p < P; p++) kxref[r * N2 * m + c] += j1[r * P + p] * j2[c * P + p];

    size_t chunks[] = {0, 1, 2, 7};
    for (size_t ci = 0; ci < 4; ci++) {
        ntk_kernel_opts o;
        ntk_kernel_opts_init(&o);
        o.method = NTK_METHOD_JACOBIAN;
        o.chunk = chunks[ci];
        double *k = malloc(N * m * N * m * sizeof(double));
        ntk_mat vk = {N * m, N * m, k};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, &vk), NTK_OK);
        CHECK_MSG(rel_diff(k, kref, N * m * N * m) < 1e-13, "full, chunk %zu", chunks[ci]);
        /* Symmetric and positive semi-definite diagonal dominance checks. */
        int sym = 1;
        for (size_t r = 0; r < N * m; r++)
            for (size_t c = 0; c < N * m; c++)
                if (k[r * N * m + c] != k[c * N * m + r]) sym = 0;
        CHECK(sym);
        double *kx = malloc(N * m * N2 * m * sizeof(double));
        ntk_mat vkx = {N * m, N2 * m, kx};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, &x2, &o, &vkx), NTK_OK);
        CHECK_MSG(rel_diff(kx, kxref, N * m * N2 * m) < 1e-13, "cross, chunk %zu", chunks[ci]);

        /* trace, with and without the mean */
        o.mode = NTK_MODE_TRACE;
        double kt[25], ktref[25];
        ntk_mat vkt = {N, N, kt};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, &vkt), NTK_OK);
        for (size_t i = 0; i < N; i++)
            for (size_t jx = 0; jx < N; jx++) {
                double s = 0;
                for (size_t a = 0; a < m; a++) s += kref[(i * m + a) * N * m + jx * m + a];
                ktref[i * N + jx] = s;
            }
        CHECK(rel_diff(kt, ktref, N * N) < 1e-13);
        o.normalize_mean = 1;
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, &vkt), NTK_OK);
        for (size_t i = 0; i < N * N; i++) ktref[i] /= (double)m;
        CHECK(rel_diff(kt, ktref, N * N) < 1e-13);
        o.normalize_mean = 0;

        /* outputs */
        o.mode = NTK_MODE_OUTPUTS;
        double ko[3][25];
        ntk_mat vko[3] = {{N, N, ko[0]}, {N, N, ko[1]}, {N, N, ko[2]}};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, vko), NTK_OK);
        double worst = 0;
        for (size_t a = 0; a < m; a++)
            for (size_t i = 0; i < N; i++)
                for (size_t jx = 0; jx < N; jx++) {
                    double want = kref[(i * m + a) * N * m + jx * m + a];
                    double d = fabs(ko[a][i * N + jx] - want);
                    if (d > worst) worst = d;
                }
        CHECK_MSG(worst < 1e-12, "outputs: %g", worst);

        /* blocks */
        o.mode = NTK_MODE_BLOCKS;
        double kb[15 * 3];
        ntk_mat vkb = {N * m, m, kb};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, &vkb), NTK_OK);
        worst = 0;
        for (size_t i = 0; i < N; i++)
            for (size_t a = 0; a < m; a++)
                for (size_t b = 0; b < m; b++) {
                    double d = fabs(kb[(i * m + a) * m + b] - kref[(i * m + a) * N * m + i * m + b]);
                    if (d > worst) worst = d;
                }
        CHECK_MSG(worst < 1e-12, "blocks: %g", worst);
        /* blocks of a cross kernel make no sense */
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, &x2, &o, &vkb), NTK_ERR_INVALID);
        free(k);
        free(kx);
    }

    /* A tiny memory budget gives the same kernel. */
    {
        ntk_kernel_opts o;
        ntk_kernel_opts_init(&o);
        o.memory = 1;
        double *k = malloc(N * m * N * m * sizeof(double));
        ntk_mat vk = {N * m, N * m, k};
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, NULL, &o, &vk), NTK_OK);
        CHECK(rel_diff(k, kref, N * m * N * m) < 1e-13);
        ntk_plan plan;
        CHECK_STATUS(ntk_net_ntk_plan(ctx, net, N, 0, &o, &plan), NTK_OK);
        CHECK(plan.chunk == 1);
        free(k);
    }
    free(kref);
    free(kxref);
    free(j1);
    free(j2);
    free(x1d);
    free(x2d);
    ntk_net_destroy(ctx, net);
}

static void test_errors(void)
{
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    ntk_net *net = (ntk_net *)&spec; /* must be reset to NULL on failure */
    size_t bad[] = {3, 0, 2};
    spec.depth = 2;
    spec.sizes = bad;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_INVALID);
    CHECK(net == NULL);
    CHECK(strstr(ntk_ctx_error(ctx), "sizes[2]") != NULL);
    size_t ok[] = {3, 4, 2};
    spec.sizes = ok;
    spec.weight_std = NAN;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_INVALID);
    spec.weight_std = 1;
    spec.bias_std = -1;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_INVALID);
    spec.bias_std = 0.1;
    spec.depth = 0;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_INVALID);
    spec.depth = 2;
    ntk_act acts[1] = {(ntk_act)99};
    spec.acts = acts;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_INVALID);
    spec.acts = NULL;
    /* 2^60 parameters overflow the byte count: refused before allocating;
     * 2^40 (8 TB) is refused by the allocator. */
    size_t huge[] = {(size_t)1 << 30, (size_t)1 << 30, 2};
    spec.sizes = huge;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_OVERFLOW);
    size_t big[] = {(size_t)1 << 20, (size_t)1 << 20, 2};
    spec.sizes = big;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_ERR_NOMEM);
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    spec.sizes = ok;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_OK);

    ntk_act a;
    CHECK_STATUS(ntk_act_parse(ctx, "swish", &a), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "swish") != NULL);
    ntk_param p;
    CHECK_STATUS(ntk_param_parse(ctx, "mup", &p), NTK_ERR_INVALID);

    double xd[6] = {1, 2, 3, 4, 5, 6}, yd[4];
    ntk_mat x = {2, 3, xd}, y = {2, 2, yd}, xbad = {3, 2, xd}, ybad = {2, 3, xd};
    CHECK_STATUS(ntk_net_forward(ctx, net, &xbad, &y), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "N x 3") != NULL);
    CHECK_STATUS(ntk_net_forward(ctx, net, &x, &ybad), NTK_ERR_SHAPE);
    xd[4] = NAN;
    CHECK_STATUS(ntk_net_forward(ctx, net, &x, &y), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "NaN at row 2, column 2") != NULL);
    xd[4] = INFINITY;
    CHECK_STATUS(ntk_net_forward(ctx, net, &x, &y), NTK_ERR_INVALID);
    xd[4] = 5;
    double theta[100] = {0};
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, 3), NTK_ERR_SHAPE);
    theta[3] = NAN;
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, ntk_net_num_params(net)), NTK_ERR_INVALID);
    /* Huge parameters overflow the output: refused, not returned as Inf. */
    for (size_t i = 0; i < ntk_net_num_params(net); i++) theta[i] = 1e200;
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, ntk_net_num_params(net)), NTK_OK);
    CHECK_STATUS(ntk_net_forward(ctx, net, &x, &y), NTK_ERR_NUMERIC);
    double w[12], b[4];
    ntk_mat vw = {4, 3, w}, vb = {4, 1, b}, vwbad = {3, 4, w};
    CHECK_STATUS(ntk_net_get_layer(ctx, net, 0, &vw, &vb), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_net_get_layer(ctx, net, 3, &vw, &vb), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_net_set_layer(ctx, net, 1, &vwbad, &vb), NTK_ERR_SHAPE);
    ntk_kernel_opts o;
    ntk_kernel_opts_init(&o);
    o.mode = (ntk_mode)42;
    double k[16];
    ntk_mat vk = {4, 4, k};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_ERR_INVALID);
    ntk_kernel_opts_init(&o);
    ntk_mat vkbad = {4, 3, k};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vkbad), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_ctx_set_threads(ctx, -1), NTK_ERR_INVALID);
    ntk_net_destroy(ctx, net);
}

static int cancel_after;

static void test_cancel(void)
{
    size_t sizes[] = {4, 8, 2};
    ntk_net *net = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 3);
    size_t N = 6, m = 2;
    double *xd = randn(N * 4, 4);
    ntk_mat x = {N, 4, xd};
    double k[144];
    ntk_mat vk = {N * m, N * m, k};
    ntk_kernel_opts o;
    ntk_kernel_opts_init(&o);
    o.method = NTK_METHOD_JACOBIAN;
    o.chunk = 2;
    size_t before = ntk_ctx_bytes_in_use(ctx);
    for (int after = 0; after < 4; after++) {
        cancel_after = after;
        ntk_ctx_set_progress(ctx, countdown_hook, &cancel_after);
        CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_ERR_INTERRUPTED);
        CHECK(strstr(ntk_ctx_error(ctx), "interrupted") != NULL);
        CHECK(ntk_ctx_bytes_in_use(ctx) == before);
    }
    ntk_ctx_set_progress(ctx, NULL, NULL);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_OK);
    free(xd);
    ntk_net_destroy(ctx, net);
}

static void test_alloc_failure(void)
{
    int succeeded = 0;
    for (long budget = 0; budget < 200 && !succeeded; budget++) {
        fail_alloc f = {budget, 0};
        ntk_ctx *c;
        if (ntk_ctx_create_with(&c, failing, &f) != NTK_OK) {
            CHECK(f.live == 0);
            continue;
        }
        size_t sizes[] = {3, 5, 2};
        ntk_mlp_spec spec;
        ntk_mlp_spec_init(&spec);
        spec.depth = 2;
        spec.sizes = sizes;
        ntk_net *net = NULL;
        ntk_status st = ntk_mlp_create(c, &spec, &net);
        if (st == NTK_OK) {
            double xd[6] = {1, 2, 3, 4, 5, 6}, k[16], j[4 * 32];
            ntk_mat x = {2, 3, xd}, vk = {4, 4, k}, vj = {4, 32, j};
            ntk_kernel_opts o;
            ntk_kernel_opts_init(&o);
            o.method = NTK_METHOD_JACOBIAN;
            st = ntk_net_ntk(c, net, &x, NULL, &o, &vk);
            if (st == NTK_OK) st = ntk_net_jacobian(c, net, &x, &vj);
            if (st == NTK_OK) succeeded = 1;
            ntk_net_destroy(c, net);
        }
        if (st != NTK_OK) {
            CHECK_STATUS(st, NTK_ERR_NOMEM);
            CHECK(strstr(ntk_ctx_error(c), "out of memory") != NULL);
        }
        CHECK(ntk_ctx_bytes_in_use(c) == 0);
        ntk_ctx_destroy(c);
        CHECK_MSG(f.live == 0, "budget %ld leaked %ld blocks", budget, f.live);
    }
    CHECK(succeeded);
}

static void test_seed_reproducible(void)
{
    size_t sizes[] = {5, 7, 3};
    ntk_net *a = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_STANDARD, 77);
    ntk_net *b = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_STANDARD, 77);
    ntk_net *c = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_STANDARD, 78);
    size_t P = ntk_net_num_params(a);
    CHECK(memcmp(ntk_net_params(a), ntk_net_params(b), P * sizeof(double)) == 0);
    CHECK(memcmp(ntk_net_params(a), ntk_net_params(c), P * sizeof(double)) != 0);
    /* Standard parameterization draws W ~ N(0, w_std^2 / n_in): the first
     * weight is the generator's first normal times 1.4 / sqrt(5). */
    ntk_rng r;
    ntk_rng_seed(&r, 77);
    CHECK(ntk_net_params(a)[0] == 1.4 / sqrt(5.0) * ntk_rng_normal(&r));
    ntk_net_destroy(ctx, a);
    ntk_net_destroy(ctx, b);
    ntk_net_destroy(ctx, c);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_layout_and_forward();
    test_jacobian_fd();
    test_kernels();
    test_errors();
    test_cancel();
    test_alloc_failure();
    test_seed_reproducible();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_net");
}
