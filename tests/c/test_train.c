/* Losses, gradients, optimizers and the training loop of the core, checked
 * against hand computations, finite differences and the Jacobian. */
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;

static ntk_net *make(const size_t *sizes, size_t depth, ntk_act act, ntk_param param,
                     uint64_t seed)
{
    return mlp(ctx, sizes, depth, act, param, 1.3, 0.4, seed);
}

static double *copy_params(const ntk_net *net)
{
    size_t P = ntk_net_num_params(net);
    double *p = malloc(P * sizeof *p);
    memcpy(p, ntk_net_params(net), P * sizeof *p);
    return p;
}

/* ---- losses by hand ---- */

static void test_loss_by_hand(void)
{
    /* One linear layer 2 -> 2, ntk parameterization, w = 1.3, b = 0.4:
     * f = (1.3 / sqrt 2) W x + 0.4 b. */
    size_t sizes[] = {2, 2};
    ntk_net *net = make(sizes, 1, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    double theta[] = {1, 0, 0, 1, 0.5, -0.5}; /* W = I, b = (0.5, -0.5) */
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, 6), NTK_OK);
    double xd[] = {1, 2, -1, 0.5}, cw = 1.3 / sqrt(2.0);
    ntk_mat x = {2, 2, xd};
    double f[4] = {cw * 1 + 0.2, cw * 2 - 0.2, cw * -1 + 0.2, cw * 0.5 - 0.2};
    double yd[] = {0.3, -0.1, 1.0, 2.0};
    ntk_mat y = {2, 2, yd};
    double want = 0, got;
    for (int k = 0; k < 4; k++) want += 0.5 * (f[k] - yd[k]) * (f[k] - yd[k]);
    want /= 2;
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &x, &y, &got), NTK_OK);
    CHECK_NEAR(got, want, 1e-15);

    /* Cross-entropy with class indices (0-based): mean of lse - f_c. */
    double cd[] = {1, 0};
    ntk_mat cls = {2, 1, cd};
    double l0 = log(exp(f[0]) + exp(f[1])) - f[1];
    double l1 = log(exp(f[2]) + exp(f[3])) - f[2];
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &cls, &got), NTK_OK);
    CHECK_NEAR(got, 0.5 * (l0 + l1), 1e-15);
    /* The same as one-hot rows; soft targets weigh each class's term. */
    double oh[] = {0, 1, 1, 0};
    ntk_mat onehot = {2, 2, oh};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &onehot, &got), NTK_OK);
    CHECK_NEAR(got, 0.5 * (l0 + l1), 1e-15);
    double sd[] = {0.25, 0.75, 0.5, 0.5};
    ntk_mat soft = {2, 2, sd};
    double lse0 = log(exp(f[0]) + exp(f[1])), lse1 = log(exp(f[2]) + exp(f[3]));
    double ws = 0.25 * (lse0 - f[0]) + 0.75 * (lse0 - f[1]) + 0.5 * (lse1 - f[2]) +
                0.5 * (lse1 - f[3]);
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &soft, &got), NTK_OK);
    CHECK_NEAR(got, 0.5 * ws, 1e-15);

    /* Huge logits: the log-sum-exp stays finite and exact. */
    double big[] = {1000, 0, 0, 0, 0, 0};
    CHECK_STATUS(ntk_net_set_params(ctx, net, big, 6), NTK_OK);
    double xb[] = {1, 0};
    ntk_mat x1 = {1, 2, xb};
    double c1[] = {1};
    ntk_mat cls1 = {1, 1, c1};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x1, &cls1, &got), NTK_OK);
    CHECK_NEAR(got, 1000 * cw, 1e-9);
    ntk_net_destroy(ctx, net);
}

/* ---- gradients against finite differences ---- */

static double loss_at(ntk_net *net, ntk_loss loss, const ntk_mat *x, const ntk_mat *y)
{
    double v = NAN;
    ntk_net_loss(ctx, net, loss, x, y, &v);
    return v;
}

static void test_grad_fd(void)
{
    size_t shapes[][4] = {{3, 5, 4, 3}, {2, 6, 2, 0}};
    size_t depths[] = {3, 2};
    ntk_act acts[] = {NTK_ACT_TANH, NTK_ACT_RELU, NTK_ACT_GELU, NTK_ACT_SIN, NTK_ACT_SOFTPLUS};
    for (size_t a = 0; a < 5; a++)
        for (int param = 0; param < 2; param++)
            for (size_t s = 0; s < 2; s++)
                for (int kind = 0; kind < 3; kind++) {
                    ntk_net *net = make(shapes[s], depths[s], acts[a], (ntk_param)param, 50 + a);
                    size_t n = shapes[s][0], m = ntk_net_output_dim(net), N = 5;
                    size_t P = ntk_net_num_params(net);
                    double *xd = randn(N * n, 3 + s);
                    ntk_mat x = {N, n, xd};
                    double *yd = randn(N * m, 9 + s);
                    ntk_mat y = {N, m, yd};
                    ntk_loss loss = kind == 0 ? NTK_LOSS_MSE : NTK_LOSS_CROSS_ENTROPY;
                    if (kind == 1) { /* class indices */
                        y.cols = 1;
                        for (size_t i = 0; i < N; i++) yd[i] = (double)((i * 7 + a) % m);
                    } else if (kind == 2) { /* soft targets, not normalised */
                        for (size_t k = 0; k < N * m; k++) yd[k] = fabs(yd[k]);
                    }
                    double *g = malloc(P * sizeof *g), *theta = copy_params(net), value;
                    ntk_mat vg = {P, 1, g};
                    CHECK_STATUS(ntk_net_grad(ctx, net, loss, &x, &y, &vg, &value), NTK_OK);
                    CHECK_NEAR(value, loss_at(net, loss, &x, &y), 1e-15 * (1 + fabs(value)));
                    double worst = 0, scale = 0;
                    for (size_t p = 0; p < P; p++) {
                        double t = theta[p], h = 1e-5;
                        theta[p] = t + h;
                        ntk_net_set_params(ctx, net, theta, P);
                        double lp = loss_at(net, loss, &x, &y);
                        theta[p] = t - h;
                        ntk_net_set_params(ctx, net, theta, P);
                        double lm = loss_at(net, loss, &x, &y);
                        theta[p] = t;
                        double fd = (lp - lm) / (2 * h);
                        if (fabs(fd - g[p]) > worst) worst = fabs(fd - g[p]);
                        if (fabs(g[p]) > scale) scale = fabs(g[p]);
                    }
                    ntk_net_set_params(ctx, net, theta, P);
                    /* relu's kink can sit inside a difference step: allow
                     * it a looser bound. */
                    double tol = acts[a] == NTK_ACT_RELU ? 1e-5 : 1e-7;
                    CHECK_MSG(worst <= tol * (scale + 1e-3), "%s %s shape %zu loss %d: %g vs %g",
                              ntk_act_name(acts[a]), ntk_param_name((ntk_param)param), s, kind,
                              worst, scale);
                    free(xd);
                    free(yd);
                    free(g);
                    free(theta);
                    ntk_net_destroy(ctx, net);
                }
}

/* The vjp is J^T g with J from the Jacobian routine (a different code
 * path: per-sample rank-one blocks). */
static void test_vjp_matches_jacobian(void)
{
    size_t sizes[] = {4, 7, 6, 3};
    ntk_net *net = make(sizes, 3, NTK_ACT_SIGMOID, NTK_PARAM_STANDARD, 3);
    size_t N = 6, m = 3, P = ntk_net_num_params(net);
    double *xd = randn(N * 4, 1), *gd = randn(N * m, 2);
    double *j = malloc(N * m * P * sizeof *j), *want = calloc(P, sizeof *want);
    double *got = malloc(P * sizeof *got);
    ntk_mat x = {N, 4, xd}, g = {N, m, gd}, vj = {N * m, P, j}, out = {1, P, got};
    CHECK_STATUS(ntk_net_jacobian(ctx, net, &x, &vj), NTK_OK);
    for (size_t r = 0; r < N * m; r++)
        for (size_t p = 0; p < P; p++) want[p] += gd[r] * j[r * P + p];
    CHECK_STATUS(ntk_net_vjp(ctx, net, &x, &g, &out), NTK_OK);
    CHECK(rel_diff(got, want, P) < 1e-13);
    /* No samples: the zero vector. */
    ntk_mat x0 = {0, 4, xd}, g0 = {0, m, gd};
    CHECK_STATUS(ntk_net_vjp(ctx, net, &x0, &g0, &out), NTK_OK);
    int zero = 1;
    for (size_t p = 0; p < P; p++) zero &= got[p] == 0;
    CHECK(zero);
    free(xd);
    free(gd);
    free(j);
    free(want);
    free(got);
    ntk_net_destroy(ctx, net);
}

/* ---- optimizer steps by hand ---- */

static void grad_at(ntk_net *net, const double *theta, ntk_loss loss, const ntk_mat *x,
                    const ntk_mat *y, double *g)
{
    size_t P = ntk_net_num_params(net);
    ntk_net_set_params(ctx, net, theta, P);
    ntk_mat vg = {P, 1, g};
    CHECK_STATUS(ntk_net_grad(ctx, net, loss, x, y, &vg, NULL), NTK_OK);
}

static void test_optimizer_steps(void)
{
    size_t sizes[] = {3, 6, 2};
    size_t N = 5;
    double *xd = randn(N * 3, 4), *yd = randn(N * 2, 5);
    ntk_mat x = {N, 3, xd}, y = {N, 2, yd};
    for (int opt = 0; opt < 3; opt++) {
        ntk_net *net = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 8);
        size_t P = ntk_net_num_params(net);
        double *t0 = copy_params(net), *t1 = malloc(P * 8), *t2 = malloc(P * 8);
        double *g0 = malloc(P * 8), *g1 = malloc(P * 8);
        double lr = 0.07, mu = 0.6, b1 = 0.8, b2 = 0.95, eps = 1e-3;
        ntk_net *probe = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 8);
        grad_at(probe, t0, NTK_LOSS_MSE, &x, &y, g0);
        for (size_t p = 0; p < P; p++) {
            if (opt == 0 || opt == 1) t1[p] = t0[p] - lr * g0[p];
            else t1[p] = t0[p] - lr * ((1 - b1) * g0[p] / (1 - b1)) /
                                     (sqrt((1 - b2) * g0[p] * g0[p] / (1 - b2)) + eps);
        }
        grad_at(probe, t1, NTK_LOSS_MSE, &x, &y, g1);
        for (size_t p = 0; p < P; p++) {
            if (opt == 0) {
                t2[p] = t1[p] - lr * g1[p];
            } else if (opt == 1) {
                t2[p] = t1[p] - lr * (mu * g0[p] + g1[p]);
            } else {
                double m2 = b1 * (1 - b1) * g0[p] + (1 - b1) * g1[p];
                double v2 = b2 * (1 - b2) * g0[p] * g0[p] + (1 - b2) * g1[p] * g1[p];
                t2[p] = t1[p] - lr * (m2 / (1 - b1 * b1)) / (sqrt(v2 / (1 - b2 * b2)) + eps);
            }
        }
        ntk_train_opts o;
        ntk_train_opts_init(&o);
        o.optimizer = (ntk_optimizer)opt;
        o.lr = lr;
        o.momentum = mu;
        o.beta1 = b1;
        o.beta2 = b2;
        o.eps = eps;
        o.epochs = 2;
        double hist[2];
        o.history = hist;
        size_t done = 99;
        CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, &done), NTK_OK);
        CHECK(done == 2);
        CHECK_MSG(rel_diff(ntk_net_params(net), t2, P) < 1e-13, "%s: %g",
                  ntk_optimizer_name((ntk_optimizer)opt), rel_diff(ntk_net_params(net), t2, P));
        /* The history holds the full-set loss after each epoch. */
        ntk_net_set_params(ctx, probe, t1, P);
        CHECK_NEAR(hist[0], loss_at(probe, NTK_LOSS_MSE, &x, &y), 1e-14);
        CHECK_NEAR(hist[1], loss_at(net, NTK_LOSS_MSE, &x, &y), 1e-14);
        free(t0);
        free(t1);
        free(t2);
        free(g0);
        free(g1);
        ntk_net_destroy(ctx, net);
        ntk_net_destroy(ctx, probe);
    }
    free(xd);
    free(yd);
}

/* Minibatches without shuffling are consecutive slices; with a seed the
 * run is reproducible, and another seed gives another run. */
static void test_minibatches(void)
{
    size_t sizes[] = {2, 5, 2};
    size_t N = 7;
    double *xd = randn(N * 2, 6), *yd = randn(N * 2, 7);
    ntk_mat x = {N, 2, xd}, y = {N, 2, yd};
    ntk_net *net = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    ntk_net *hand = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    size_t P = ntk_net_num_params(net);
    double *theta = copy_params(hand), *g = malloc(P * 8);
    for (size_t b0 = 0; b0 < N; b0 += 3) {
        size_t n = N - b0 < 3 ? N - b0 : 3;
        ntk_mat xb = {n, 2, xd + b0 * 2}, yb = {n, 2, yd + b0 * 2};
        grad_at(hand, theta, NTK_LOSS_MSE, &xb, &yb, g);
        for (size_t p = 0; p < P; p++) theta[p] -= 0.1 * g[p];
    }
    ntk_train_opts o;
    ntk_train_opts_init(&o);
    o.lr = 0.1;
    o.batch_size = 3;
    o.shuffle = 0;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_OK);
    CHECK(rel_diff(ntk_net_params(net), theta, P) < 1e-14);

    /* Working memory for one sample at a time changes nothing but rounding. */
    ntk_net *a = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    ntk_net *b = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    o.batch_size = 0;
    o.epochs = 3;
    CHECK_STATUS(ntk_net_train(ctx, a, &x, &y, &o, NULL), NTK_OK);
    o.memory = 1;
    CHECK_STATUS(ntk_net_train(ctx, b, &x, &y, &o, NULL), NTK_OK);
    CHECK(rel_diff(ntk_net_params(a), ntk_net_params(b), P) < 1e-13);

    ntk_net *c1 = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    ntk_net *c2 = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    ntk_net *c3 = make(sizes, 2, NTK_ACT_ERF, NTK_PARAM_NTK, 2);
    ntk_train_opts_init(&o);
    o.optimizer = NTK_OPT_ADAM;
    o.batch_size = 2;
    o.epochs = 3;
    o.seed = 5;
    CHECK_STATUS(ntk_net_train(ctx, c1, &x, &y, &o, NULL), NTK_OK);
    CHECK_STATUS(ntk_net_train(ctx, c2, &x, &y, &o, NULL), NTK_OK);
    o.seed = 6;
    CHECK_STATUS(ntk_net_train(ctx, c3, &x, &y, &o, NULL), NTK_OK);
    CHECK(memcmp(ntk_net_params(c1), ntk_net_params(c2), P * 8) == 0);
    CHECK(rel_diff(ntk_net_params(c1), ntk_net_params(c3), P) > 1e-6);
    ntk_net *list[] = {net, hand, a, b, c1, c2, c3};
    for (int k = 0; k < 7; k++) ntk_net_destroy(ctx, list[k]);
    free(theta);
    free(g);
    free(xd);
    free(yd);
}

/* ---- reaching zero loss ---- */

static void test_fits_separable(void)
{
    /* Two blobs in the plane, classes by the sign of x1 + x2. */
    size_t N = 40;
    double *xd = randn(N * 2, 21), *cls = malloc(N * 8);
    for (size_t i = 0; i < N; i++) {
        double s = xd[2 * i] + xd[2 * i + 1] > 0 ? 1.0 : -1.0;
        xd[2 * i] += 1.5 * s;
        xd[2 * i + 1] += 1.5 * s;
        cls[i] = s > 0 ? 1 : 0;
    }
    ntk_mat x = {N, 2, xd}, y = {N, 1, cls};
    size_t sizes[] = {2, 32, 2};
    ntk_net *net = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_NTK, 4);
    double before = loss_at(net, NTK_LOSS_CROSS_ENTROPY, &x, &y);
    ntk_train_opts o;
    ntk_train_opts_init(&o);
    o.loss = NTK_LOSS_CROSS_ENTROPY;
    o.optimizer = NTK_OPT_ADAM;
    o.lr = 0.05;
    o.epochs = 300;
    o.batch_size = 10;
    double *hist = malloc(o.epochs * 8);
    o.history = hist;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_OK);
    CHECK_MSG(hist[o.epochs - 1] < 1e-2, "cross-entropy %g after training (from %g)",
              hist[o.epochs - 1], before);
    free(hist);
    ntk_net_destroy(ctx, net);

    /* Regression: a wide net interpolates 8 points (Adam; plain gradient
     * descent is as slow as the kernel's smallest eigenvalue). */
    size_t rs[] = {2, 256, 1};
    ntk_net *wide = make(rs, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 6);
    ntk_mat x8 = {8, 2, xd};
    double *t = randn(8, 30);
    ntk_mat y8 = {8, 1, t};
    ntk_train_opts_init(&o);
    o.optimizer = NTK_OPT_ADAM;
    o.lr = 0.01;
    o.epochs = 3000;
    double *h2 = malloc(o.epochs * 8);
    o.history = h2;
    CHECK_STATUS(ntk_net_train(ctx, wide, &x8, &y8, &o, NULL), NTK_OK);
    CHECK_MSG(h2[o.epochs - 1] < 1e-6, "mse %g after training", h2[o.epochs - 1]);
    free(h2);
    free(t);
    ntk_net_destroy(ctx, wide);
    free(xd);
    free(cls);
}

/* ---- callbacks, interruption, divergence ---- */

typedef struct cb_state {
    size_t stop_at, calls;
    double *saved;
    size_t P;
    const ntk_net *net;
} cb_state;

static int on_epoch(void *ud, size_t epoch, double loss)
{
    cb_state *s = ud;
    s->calls++;
    CHECK(epoch == s->calls);
    CHECK(isfinite(loss));
    if (epoch == 2 && s->saved) memcpy(s->saved, ntk_net_params(s->net), s->P * 8);
    return epoch == s->stop_at;
}

static int stop_midway(void *ud, const char *task, double done, double total)
{
    (void)total;
    CHECK(strcmp(task, "train") == 0);
    return done > *(double *)ud;
}

static void test_callback_and_interrupt(void)
{
    size_t sizes[] = {3, 8, 2};
    size_t N = 9;
    double *xd = randn(N * 3, 11), *yd = randn(N * 2, 12);
    ntk_mat x = {N, 3, xd}, y = {N, 2, yd};
    ntk_net *net = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 1);
    ntk_net *again = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 1);
    ntk_net *wild = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 1);
    size_t P = ntk_net_num_params(net), base = ntk_ctx_bytes_in_use(ctx);
    double *after2 = malloc(P * 8);
    cb_state s = {.stop_at = 4, .saved = after2, .P = P, .net = net};
    ntk_train_opts o;
    ntk_train_opts_init(&o);
    o.lr = 0.05;
    o.epochs = 10;
    o.batch_size = 4;
    o.callback = on_epoch;
    o.callback_ud = &s;
    double hist[10];
    o.history = hist;
    size_t done = 0;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, &done), NTK_OK);
    CHECK(done == 4 && s.calls == 4);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);

    /* Interrupted in epoch 3: back to the parameters after epoch 2. */
    double limit = 2.5;
    ntk_ctx_set_progress(ctx, stop_midway, &limit);
    o.callback = NULL;
    CHECK_STATUS(ntk_net_train(ctx, again, &x, &y, &o, &done), NTK_ERR_INTERRUPTED);
    ntk_ctx_set_progress(ctx, NULL, NULL);
    CHECK(done == 2);
    CHECK(memcmp(ntk_net_params(again), after2, P * 8) == 0);
    CHECK(strstr(ntk_ctx_error(ctx), "interrupted") != NULL);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);

    /* A learning rate far too large: NTK_ERR_NUMERIC, parameters of the
     * last completed epoch (here the start), all finite. */
    double *start = copy_params(wild);
    ntk_train_opts_init(&o);
    o.lr = 1e300;
    o.epochs = 5;
    CHECK_STATUS(ntk_net_train(ctx, wild, &x, &y, &o, &done), NTK_ERR_NUMERIC);
    CHECK(done == 0);
    CHECK(memcmp(ntk_net_params(wild), start, P * 8) == 0);
    CHECK(strstr(ntk_ctx_error(ctx), "diverged") != NULL);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);

    /* Zero epochs: nothing changes. */
    o.epochs = 0;
    CHECK_STATUS(ntk_net_train(ctx, wild, &x, &y, &o, &done), NTK_OK);
    CHECK(done == 0 && memcmp(ntk_net_params(wild), start, P * 8) == 0);
    free(start);
    free(after2);
    free(xd);
    free(yd);
    ntk_net_destroy(ctx, net);
    ntk_net_destroy(ctx, again);
    ntk_net_destroy(ctx, wild);
}

/* ---- bad input ---- */

static void test_errors(void)
{
    size_t sizes[] = {2, 4, 3};
    ntk_net *net = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    size_t P = ntk_net_num_params(net), base = ntk_ctx_bytes_in_use(ctx);
    double xd[6] = {1, 2, 3, 4, 5, 6}, yd[9] = {0}, g[64], v;
    ntk_mat x = {3, 2, xd}, y = {3, 3, yd}, vg = {P, 1, g};
    ntk_mat bad_x = {3, 3, xd};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &bad_x, &y, &v), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "X must be N x 2") != NULL);
    ntk_mat bad_y = {3, 2, yd};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &x, &bad_y, &v), NTK_ERR_SHAPE);
    CHECK(strstr(ntk_ctx_error(ctx), "Y must be 3x3") != NULL);
    ntk_mat empty = {0, 2, xd}, empty_y = {0, 3, yd};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &empty, &empty_y, &v), NTK_ERR_SHAPE);
    yd[4] = NAN;
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &x, &y, &v), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "Y contains NaN at row 2, column 2") != NULL);
    yd[4] = 0;
    xd[1] = INFINITY;
    CHECK_STATUS(ntk_net_grad(ctx, net, NTK_LOSS_MSE, &x, &y, &vg, NULL), NTK_ERR_INVALID);
    xd[1] = 2;
    double cd[3] = {0, 3, 1};
    ntk_mat cls = {3, 1, cd};
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &cls, &v), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "class indices 0..2, got 3 at row 2") != NULL);
    cd[1] = 0.5;
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &cls, &v), NTK_ERR_INVALID);
    yd[0] = -0.1;
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x, &y, &v), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "non-negative") != NULL);
    yd[0] = 0;
    ntk_mat short_g = {P - 1, 1, g};
    CHECK_STATUS(ntk_net_grad(ctx, net, NTK_LOSS_MSE, &x, &y, &short_g, NULL), NTK_ERR_SHAPE);
    CHECK_STATUS(ntk_net_grad(ctx, net, (ntk_loss)7, &x, &y, &vg, NULL), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_net_grad(ctx, net, NTK_LOSS_MSE, &x, &y, NULL, NULL), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_net_loss(ctx, NULL, NTK_LOSS_MSE, &x, &y, &v), NTK_ERR_INVALID);

    size_t one[] = {2, 1};
    ntk_net *single = make(one, 1, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    ntk_mat y1 = {3, 1, yd};
    CHECK_STATUS(ntk_net_loss(ctx, single, NTK_LOSS_CROSS_ENTROPY, &x, &y1, &v), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "at least 2 outputs") != NULL);
    ntk_net_destroy(ctx, single);

    ntk_train_opts o;
    ntk_train_opts_init(&o);
    o.lr = -1;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    o.lr = NAN;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    ntk_train_opts_init(&o);
    o.momentum = 1;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    ntk_train_opts_init(&o);
    o.beta2 = -0.1;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    ntk_train_opts_init(&o);
    o.eps = 0;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    ntk_train_opts_init(&o);
    o.optimizer = (ntk_optimizer)9;
    CHECK_STATUS(ntk_net_train(ctx, net, &x, &y, &o, NULL), NTK_ERR_INVALID);
    ntk_train_opts_init(&o);
    CHECK_STATUS(ntk_net_train(ctx, net, &empty, &empty_y, &o, NULL), NTK_ERR_SHAPE);
    /* Parameters so large the loss overflows: an error, not a number. */
    double *huge = malloc(P * 8);
    for (size_t p = 0; p < P; p++) huge[p] = 1e200;
    ntk_net_set_params(ctx, net, huge, P);
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &x, &y, &v), NTK_ERR_NUMERIC);
    free(huge);

    ntk_loss l;
    CHECK_STATUS(ntk_loss_parse(ctx, "hinge", &l), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "mse or cross_entropy") != NULL);
    CHECK_STATUS(ntk_loss_parse(ctx, "cross_entropy", &l), NTK_OK);
    CHECK(l == NTK_LOSS_CROSS_ENTROPY && strcmp(ntk_loss_name(l), "cross_entropy") == 0);
    ntk_optimizer op;
    CHECK_STATUS(ntk_optimizer_parse(ctx, "rmsprop", &op), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_optimizer_parse(ctx, "adam", &op), NTK_OK);
    CHECK(op == NTK_OPT_ADAM && strcmp(ntk_optimizer_name(op), "adam") == 0);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    ntk_net_destroy(ctx, net);
}

/* ---- kernel distance ---- */

static void test_kernel_distance(void)
{
    double a[4] = {1, 0, 0, 1}, b[4] = {2, 0, 0, 2}, c[4] = {1, 0, 0, -1};
    ntk_mat A = {2, 2, a}, B = {2, 2, b}, C = {2, 2, c};
    double rel, mis;
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &B, &rel, &mis), NTK_OK);
    CHECK_NEAR(rel, 1.0, 1e-15);
    CHECK_NEAR(mis, 0.0, 1e-16);
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &C, &rel, &mis), NTK_OK);
    CHECK_NEAR(rel, sqrt(2.0), 1e-15);
    CHECK_NEAR(mis, 1.0, 1e-15);
    /* A tiny rotation: 1 - cos t = 2 sin^2(t/2), which the naive formula
     * would lose entirely at t = 1e-9. */
    double t = 1e-9, r[4] = {cos(t), sin(t), 0, 0}, s[4] = {1, 0, 0, 0};
    ntk_mat R = {2, 2, r}, S = {2, 2, s};
    CHECK_STATUS(ntk_kernel_distance(ctx, &S, &R, &rel, &mis), NTK_OK);
    double want = 2 * sin(t / 2) * sin(t / 2);
    CHECK_MSG(fabs(mis - want) < 1e-6 * want, "%g vs %g", mis, want);
    /* Huge entries do not overflow. */
    double h0[2] = {1e300, 1e300}, h1[2] = {1e300, -1e300};
    ntk_mat H0 = {1, 2, h0}, H1 = {1, 2, h1};
    CHECK_STATUS(ntk_kernel_distance(ctx, &H0, &H1, &rel, &mis), NTK_OK);
    CHECK_NEAR(rel, sqrt(2.0), 1e-15);
    CHECK_NEAR(mis, 1.0, 1e-15);
    double z[4] = {0};
    ntk_mat Z = {2, 2, z}, W = {1, 4, b};
    CHECK_STATUS(ntk_kernel_distance(ctx, &Z, &A, &rel, &mis), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &Z, &rel, &mis), NTK_ERR_INVALID);
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &Z, &rel, NULL), NTK_OK);
    CHECK_NEAR(rel, 1.0, 1e-15);
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &W, &rel, &mis), NTK_ERR_SHAPE);
    b[1] = NAN;
    CHECK_STATUS(ntk_kernel_distance(ctx, &A, &B, &rel, &mis), NTK_ERR_INVALID);
    ntk_mat E = {0, 0, a};
    CHECK_STATUS(ntk_kernel_distance(ctx, &E, &E, &rel, &mis), NTK_ERR_SHAPE);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_loss_by_hand();
    test_grad_fd();
    test_vjp_matches_jacobian();
    test_optimizer_steps();
    test_minibatches();
    test_fits_separable();
    test_callback_and_interrupt();
    test_errors();
    test_kernel_distance();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_train");
}
