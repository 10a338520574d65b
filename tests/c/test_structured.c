/* The structured NTK against closed forms, a naive loop implementation of
 * the layer-wise formula, explicit J J^T, and its plan: memory accounting
 * with a counting allocator, the method the plan names, interruption and
 * allocation failures. */
#include <string.h>

#include "testutil.h"

static ntk_ctx *ctx;

static ntk_net *make(const size_t *sizes, size_t depth, ntk_act act, ntk_param param,
                     uint64_t seed)
{
    return mlp(ctx, sizes, depth, act, param, 1.3, 0.4, seed);
}

static ntk_kernel_opts opts(ntk_mode mode, ntk_method method)
{
    ntk_kernel_opts o;
    ntk_kernel_opts_init(&o);
    o.mode = mode;
    o.method = method;
    return o;
}

/* Full kernel of X1 against X2 from explicit Jacobians and a triple loop. */
static double *explicit_kernel(ntk_net *net, const ntk_mat *x1, const ntk_mat *x2)
{
    size_t m = ntk_net_output_dim(net), P = ntk_net_num_params(net);
    size_t r1 = x1->rows * m, r2 = x2->rows * m;
    double *j1 = malloc((r1 ? r1 : 1) * P * sizeof(double));
    double *j2 = malloc((r2 ? r2 : 1) * P * sizeof(double));
    ntk_mat v1 = {r1, P, j1}, v2 = {r2, P, j2};
    CHECK_STATUS(ntk_net_jacobian(ctx, net, x1, &v1), NTK_OK);
    CHECK_STATUS(ntk_net_jacobian(ctx, net, x2, &v2), NTK_OK);
    double *k = calloc(r1 * r2 + 1, sizeof(double));
    for (size_t r = 0; r < r1; r++)
        for (size_t c = 0; c < r2; c++)
            for (size_t p = 0; p < P; p++) k[r * r2 + c] += j1[r * P + p] * j2[c * P + p];
    free(j1);
    free(j2);
    return k;
}

/* Entry (i, a; j, b) of what mode `mode` returns, from a full kernel. */
static double mode_entry(const double *kf, size_t n2, size_t m, ntk_mode mode, size_t i,
                         size_t j, size_t a, size_t b)
{
    size_t ld = n2 * m;
    switch (mode) {
    case NTK_MODE_TRACE: {
        double s = 0;
        for (size_t q = 0; q < m; q++) s += kf[(i * m + q) * ld + j * m + q];
        return s;
    }
    case NTK_MODE_OUTPUTS: return kf[(i * m + a) * ld + j * m + a];
    default: return kf[(i * m + a) * ld + j * m + b];
    }
}

/* max |K - want| / max |want| over every output of a mode. */
static double mode_error(const double *kf, size_t n1, size_t n2, size_t m, ntk_mode mode,
                         ntk_mat *out)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n1; i++)
        for (size_t a = 0; a < m; a++)
            for (size_t j = 0; j < n2; j++)
                for (size_t b = 0; b < m; b++) {
                    double want, got;
                    if (mode == NTK_MODE_FULL) {
                        got = out[0].data[(i * m + a) * n2 * m + j * m + b];
                    } else if (mode == NTK_MODE_TRACE) {
                        if (a || b) continue;
                        got = out[0].data[i * n2 + j];
                    } else if (mode == NTK_MODE_OUTPUTS) {
                        if (a != b) continue;
                        got = out[a].data[i * n2 + j];
                    } else {
                        if (i != j) continue;
                        got = out[0].data[(i * m + a) * m + b];
                    }
                    want = mode_entry(kf, n2, m, mode, i, j, a, b);
                    if (fabs(got - want) > d) d = fabs(got - want);
                    if (fabs(want) > s) s = fabs(want);
                }
    return s > 0 ? d / s : d;
}

/* Run a kernel into freshly allocated outputs (count of them). */
static ntk_status run(ntk_net *net, const ntk_mat *x1, const ntk_mat *x2,
                      const ntk_kernel_opts *o, ntk_mat *out, size_t *count)
{
    size_t rows, cols;
    ntk_status st = ntk_kernel_shape(ctx, net, x1->rows, x2 ? x2->rows : 0, o, &rows,
                                     &cols, count);
    if (st) return st;
    for (size_t a = 0; a < *count; a++) {
        out[a].rows = rows;
        out[a].cols = cols;
        out[a].data = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof(double));
    }
    return ntk_net_ntk(ctx, net, x1, x2, o, out);
}

static void free_out(ntk_mat *out, size_t count)
{
    for (size_t a = 0; a < count; a++) free(out[a].data);
}

/* Depth 1: f = c_w W x + c_b b, so K = (c_w^2 x.x' + c_b^2) I_m. */
static void test_linear_closed_form(void)
{
    size_t sizes[] = {3, 4};
    ntk_net *net = make(sizes, 1, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    double cw, cb;
    ntk_net_layer_scales(net, 1, &cw, &cb);
    double xd[] = {1, 2, -1, 0.5, 0, 3};
    ntk_mat x = {2, 3, xd}, out[4];
    size_t count;
    ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    CHECK_STATUS(run(net, &x, NULL, &o, out, &count), NTK_OK);
    double worst = 0;
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++) {
            double dot = 0;
            for (size_t c = 0; c < 3; c++) dot += xd[i * 3 + c] * xd[j * 3 + c];
            for (size_t a = 0; a < 4; a++)
                for (size_t b = 0; b < 4; b++) {
                    double want = a == b ? cw * cw * dot + cb * cb : 0;
                    double got = out[0].data[(i * 4 + a) * 8 + j * 4 + b];
                    if (fabs(got - want) > worst) worst = fabs(got - want);
                }
        }
    CHECK_MSG(worst < 1e-14, "linear closed form: %g", worst);
    free_out(out, count);
    ntk_net_destroy(ctx, net);
}

/* Depth 2, identity activation: with h = c1 W1 x + d1 b1,
 * K_ab = [a == b] (c2^2 h.h' + d2^2) + (c1^2 x.x' + d1^2) c2^2 (W2 W2^T)_ab. */
static void test_two_layer_closed_form(void)
{
    size_t sizes[] = {3, 5, 2};
    ntk_net *net = make(sizes, 2, NTK_ACT_IDENTITY, NTK_PARAM_STANDARD, 2);
    double c1, d1, c2, d2;
    ntk_net_layer_scales(net, 1, &c1, &d1);
    ntk_net_layer_scales(net, 2, &c2, &d2);
    double w1[15], b1[5], w2[10], b2[2];
    ntk_mat vw1 = {5, 3, w1}, vb1 = {5, 1, b1}, vw2 = {2, 5, w2}, vb2 = {2, 1, b2};
    CHECK_STATUS(ntk_net_get_layer(ctx, net, 1, &vw1, &vb1), NTK_OK);
    CHECK_STATUS(ntk_net_get_layer(ctx, net, 2, &vw2, &vb2), NTK_OK);
    double *xd = randn(12, 9);
    ntk_mat x = {4, 3, xd}, out[4];
    size_t count;
    ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    CHECK_STATUS(run(net, &x, NULL, &o, out, &count), NTK_OK);
    double h[4][5];
    for (size_t i = 0; i < 4; i++)
        for (size_t r = 0; r < 5; r++) {
            h[i][r] = d1 * b1[r];
            for (size_t c = 0; c < 3; c++) h[i][r] += c1 * w1[r * 3 + c] * xd[i * 3 + c];
        }
    double worst = 0, scale = 0;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++) {
            double xx = 0, hh = 0;
            for (size_t c = 0; c < 3; c++) xx += xd[i * 3 + c] * xd[j * 3 + c];
            for (size_t r = 0; r < 5; r++) hh += h[i][r] * h[j][r];
            for (size_t a = 0; a < 2; a++)
                for (size_t b = 0; b < 2; b++) {
                    double ww = 0;
                    for (size_t r = 0; r < 5; r++) ww += w2[a * 5 + r] * w2[b * 5 + r];
                    double want = (a == b ? c2 * c2 * hh + d2 * d2 : 0) +
                                  (c1 * c1 * xx + d1 * d1) * c2 * c2 * ww;
                    double got = out[0].data[(i * 2 + a) * 8 + j * 2 + b];
                    if (fabs(got - want) > worst) worst = fabs(got - want);
                    if (fabs(want) > scale) scale = fabs(want);
                }
        }
    CHECK_MSG(worst < 1e-13 * scale, "two-layer closed form: %g of %g", worst, scale);
    free(xd);
    free_out(out, count);
    ntk_net_destroy(ctx, net);
}

/*
 * Two layers, any activation, by the layer-wise formula written as plain
 * loops (no BLAS, no cotangent code): with z = c1 W1 x + d1 b1, h = phi(z),
 * B(x)_ar = c2 W2_ar phi'(z_r),
 * K_ab = [a == b] (c2^2 h.h' + d2^2) + (c1^2 x.x' + d1^2) sum_r B_ar B'_br.
 */
static void test_two_layer_loops(void)
{
    size_t n = 3, w = 6, m = 3, N = 5;
    size_t sizes[] = {3, 6, 3};
    for (int act = 0; act < NTK_ACT_COUNT; act++) {
        ntk_net *net = make(sizes, 2, (ntk_act)act, NTK_PARAM_NTK, 30 + (uint64_t)act);
        double c1, d1, c2, d2;
        ntk_net_layer_scales(net, 1, &c1, &d1);
        ntk_net_layer_scales(net, 2, &c2, &d2);
        double w1[18], b1[6], w2[18], b2[3];
        ntk_mat vw1 = {6, 3, w1}, vb1 = {6, 1, b1}, vw2 = {3, 6, w2}, vb2 = {3, 1, b2};
        ntk_net_get_layer(ctx, net, 1, &vw1, &vb1);
        ntk_net_get_layer(ctx, net, 2, &vw2, &vb2);
        double *xd = randn(N * n, 40 + (uint64_t)act);
        double z[5][6], h[5][6], dz[5][6];
        for (size_t i = 0; i < N; i++) {
            for (size_t r = 0; r < w; r++) {
                z[i][r] = d1 * b1[r];
                for (size_t c = 0; c < n; c++) z[i][r] += c1 * w1[r * n + c] * xd[i * n + c];
            }
            ntk_act_apply((ntk_act)act, z[i], w, h[i], dz[i]);
        }
        ntk_mat x = {N, n, xd}, out[4];
        size_t count;
        ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
        CHECK_STATUS(run(net, &x, NULL, &o, out, &count), NTK_OK);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) {
                double xx = 0, hh = 0;
                for (size_t c = 0; c < n; c++) xx += xd[i * n + c] * xd[j * n + c];
                for (size_t r = 0; r < w; r++) hh += h[i][r] * h[j][r];
                for (size_t a = 0; a < m; a++)
                    for (size_t b = 0; b < m; b++) {
                        double bb = 0;
                        for (size_t r = 0; r < w; r++)
                            bb += c2 * w2[a * w + r] * dz[i][r] * c2 * w2[b * w + r] * dz[j][r];
                        double want = (a == b ? c2 * c2 * hh + d2 * d2 : 0) +
                                      (c1 * c1 * xx + d1 * d1) * bb;
                        double got = out[0].data[(i * m + a) * N * m + j * m + b];
                        if (fabs(got - want) > worst) worst = fabs(got - want);
                        if (fabs(want) > scale) scale = fabs(want);
                    }
            }
        CHECK_MSG(worst <= 1e-13 * scale, "%s: loops vs structured %g of %g",
                  ntk_act_name((ntk_act)act), worst, scale);
        free(xd);
        free_out(out, count);
        ntk_net_destroy(ctx, net);
    }
}

/* Every mode, symmetric and cross, chunked and not, tiny budgets, against
 * explicit J J^T: within 1e-12 relative. Widths, outputs and samples of 1
 * included. */
static void test_against_explicit(void)
{
    size_t shapes[][6] = {{3, 5, 4, 2}, {1, 1, 1}, {2, 1, 3}, {4, 3, 3, 3, 1}, {2, 6},
                          {2, 4, 1, 4, 2}};
    size_t depths[] = {3, 2, 2, 4, 1, 4};
    size_t nshapes = sizeof depths / sizeof *depths;
    ntk_mode modes[] = {NTK_MODE_FULL, NTK_MODE_TRACE, NTK_MODE_OUTPUTS, NTK_MODE_BLOCKS};
    size_t chunks[] = {0, 1, 2};
    size_t memories[] = {0, 1, 3000};
    for (int act = 0; act < NTK_ACT_COUNT; act++)
        for (int param = 0; param < 2; param++)
            for (size_t s = 0; s < nshapes; s++) {
                ntk_net *net = make(shapes[s], depths[s], (ntk_act)act, (ntk_param)param,
                                    7 + (uint64_t)act * 3 + s);
                size_t n = shapes[s][0], m = ntk_net_output_dim(net);
                size_t Ns[] = {1, 5};
                for (size_t ni = 0; ni < 2; ni++) {
                    size_t N = Ns[ni], N2 = 3;
                    double *x1d = randn(N * n, 100 + N), *x2d = randn(N2 * n, 200);
                    ntk_mat x1 = {N, n, x1d}, x2 = {N2, n, x2d};
                    double *ks = explicit_kernel(net, &x1, &x1);
                    double *kx = explicit_kernel(net, &x1, &x2);
                    for (size_t mi = 0; mi < 4; mi++)
                        for (size_t v = 0; v < 3; v++) {
                            ntk_kernel_opts o = opts(modes[mi], NTK_METHOD_STRUCTURED);
                            o.chunk = chunks[v];
                            o.memory = memories[v];
                            ntk_mat out[8];
                            size_t count;
                            CHECK_STATUS(run(net, &x1, NULL, &o, out, &count), NTK_OK);
                            double e = mode_error(ks, N, N, m, modes[mi], out);
                            CHECK_MSG(e < 1e-12, "%s/%s shape %zu N %zu mode %d variant %zu: %g",
                                      ntk_act_name((ntk_act)act),
                                      ntk_param_name((ntk_param)param), s, N, (int)modes[mi],
                                      v, e);
                            /* exactly symmetric */
                            if (modes[mi] == NTK_MODE_FULL || modes[mi] == NTK_MODE_TRACE) {
                                size_t d = out[0].rows;
                                int sym = 1;
                                for (size_t r = 0; r < d; r++)
                                    for (size_t c = 0; c < d; c++)
                                        if (out[0].data[r * d + c] != out[0].data[c * d + r])
                                            sym = 0;
                                CHECK(sym);
                            }
                            free_out(out, count);
                            if (modes[mi] == NTK_MODE_BLOCKS) continue;
                            CHECK_STATUS(run(net, &x1, &x2, &o, out, &count), NTK_OK);
                            e = mode_error(kx, N, N2, m, modes[mi], out);
                            CHECK_MSG(e < 1e-12, "cross %s/%s shape %zu N %zu mode %d variant %zu: %g",
                                      ntk_act_name((ntk_act)act),
                                      ntk_param_name((ntk_param)param), s, N, (int)modes[mi],
                                      v, e);
                            free_out(out, count);
                        }
                    free(ks);
                    free(kx);
                    free(x1d);
                    free(x2d);
                }
                ntk_net_destroy(ctx, net);
            }
}

/* trace with normalize_mean is the trace over m. */
static void test_trace_mean(void)
{
    size_t sizes[] = {3, 4, 4};
    ntk_net *net = make(sizes, 2, NTK_ACT_TANH, NTK_PARAM_NTK, 3);
    double *xd = randn(9, 1);
    ntk_mat x = {3, 3, xd}, a[1], b[1];
    size_t count;
    ntk_kernel_opts o = opts(NTK_MODE_TRACE, NTK_METHOD_STRUCTURED);
    CHECK_STATUS(run(net, &x, NULL, &o, a, &count), NTK_OK);
    o.normalize_mean = 1;
    CHECK_STATUS(run(net, &x, NULL, &o, b, &count), NTK_OK);
    for (size_t i = 0; i < 9; i++) CHECK_NEAR(b[0].data[i], a[0].data[i] / 4, 1e-15);
    free_out(a, 1);
    free_out(b, 1);
    free(xd);
    ntk_net_destroy(ctx, net);
}

/* ---- memory: a counting allocator records the peak of live bytes ---- */

typedef struct counter {
    size_t live, peak;
    long left; /* allocations allowed before failing; < 0: no limit */
    long blocks;
} counter;

static void *counting(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    counter *c = ud;
    if (new_size == 0) {
        if (ptr) {
            c->live -= old_size;
            c->blocks--;
        }
        free(ptr);
        return NULL;
    }
    if (c->left == 0) return NULL;
    if (c->left > 0) c->left--;
    void *p = realloc(ptr, new_size);
    if (!p) return NULL;
    if (!ptr) c->blocks++;
    c->live += new_size - (ptr ? old_size : 0);
    if (c->live > c->peak) c->peak = c->live;
    return p;
}

/* Peak working memory stays within the plan's figure, and within the
 * budget whenever the plan says it fits; the method is the plan's. */
static char last_log[512];
static void log_hook(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void test_memory_and_plan(void)
{
    counter cnt = {0, 0, -1, 0};
    ntk_ctx *c;
    CHECK_STATUS(ntk_ctx_create_with(&c, counting, &cnt), NTK_OK);
    ntk_ctx_set_threads(c, 2);
    ntk_ctx_set_log(c, log_hook, NULL);
    size_t sizes[] = {20, 30, 25, 4};
    ntk_net *net = mlp(c, sizes, 3, NTK_ACT_GELU, NTK_PARAM_NTK, 1.3, 0.4, 5);
    size_t N = 40, N2 = 17;
    double *x1d = randn(N * 20, 1), *x2d = randn(N2 * 20, 2);
    ntk_mat x1 = {N, 20, x1d}, x2 = {N2, 20, x2d};
    size_t budgets[] = {0, 1 << 20, 150000, 40000, 1};
    ntk_mode modes[] = {NTK_MODE_FULL, NTK_MODE_TRACE, NTK_MODE_OUTPUTS, NTK_MODE_BLOCKS};
    ntk_method methods[] = {NTK_METHOD_AUTO, NTK_METHOD_STRUCTURED, NTK_METHOD_JACOBIAN};
    double *ref[4] = {NULL, NULL, NULL, NULL};
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t me = 0; me < 3; me++)
            for (size_t bi = 0; bi < 5; bi++)
                for (int cross = 0; cross < 2; cross++) {
                    if (cross && modes[mi] == NTK_MODE_BLOCKS) continue;
                    ntk_kernel_opts o = opts(modes[mi], methods[me]);
                    o.memory = budgets[bi];
                    size_t rows, cols, count;
                    CHECK_STATUS(ntk_kernel_shape(c, net, N, cross ? N2 : 0, &o, &rows,
                                                  &cols, &count), NTK_OK);
                    ntk_mat out[4];
                    for (size_t a = 0; a < count; a++)
                        out[a] = (ntk_mat){rows, cols, malloc(rows * cols * sizeof(double))};
                    ntk_plan plan;
                    CHECK_STATUS(ntk_net_ntk_plan(c, net, N, cross ? N2 : 0, &o, &plan), NTK_OK);
                    size_t base = cnt.live;
                    cnt.peak = base;
                    CHECK_STATUS(ntk_net_ntk(c, net, &x1, cross ? &x2 : NULL, &o, out), NTK_OK);
                    size_t used = cnt.peak - base;
                    /* headers of the library's allocations: 16 bytes each */
                    CHECK_MSG(used <= plan.memory + 16 * 16,
                              "mode %zu method %zu budget %zu: used %zu, planned %zu", mi, me,
                              budgets[bi], used, plan.memory);
                    size_t budget = budgets[bi] ? budgets[bi] : ((size_t)1 << 30);
                    if (plan.memory <= budget)
                        CHECK_MSG(used <= budget + 16 * 16, "over budget: %zu > %zu", used, budget);
                    /* budgets the structured method can meet with one-sample tiles */
                    if (methods[me] == NTK_METHOD_STRUCTURED && budget >= 40000)
                        CHECK_MSG(plan.memory <= budget, "mode %zu: plan %zu over %zu", mi,
                                  plan.memory, budget);
                    CHECK(cnt.live == base);
                    /* the method that ran is the plan's */
                    const char *want = plan.method == NTK_METHOD_JACOBIAN ? "method jacobian"
                                                                          : "method structured";
                    CHECK_MSG(strstr(last_log, want) != NULL, "plan says %s, log: %s", want,
                              last_log);
                    if (methods[me] != NTK_METHOD_AUTO) CHECK(plan.method == methods[me]);
                    /* every variant gives the same kernel */
                    size_t n = rows * cols * count;
                    double *flat = malloc(n * sizeof(double));
                    for (size_t a = 0; a < count; a++)
                        memcpy(flat + a * rows * cols, out[a].data, rows * cols * sizeof(double));
                    if (!cross) {
                        if (!ref[mi]) ref[mi] = flat, flat = NULL;
                        else CHECK_MSG(rel_diff(flat, ref[mi], n) < 1e-12, "mode %zu method %zu budget %zu",
                                       mi, me, budgets[bi]);
                    }
                    free(flat);
                    for (size_t a = 0; a < count; a++) free(out[a].data);
                }
    for (size_t mi = 0; mi < 4; mi++) free(ref[mi]);
    /* auto prefers structured here (fewer flops, and it fits) */
    ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_AUTO);
    ntk_plan plan;
    CHECK_STATUS(ntk_net_ntk_plan(c, net, N, 0, &o, &plan), NTK_OK);
    CHECK(plan.method == NTK_METHOD_STRUCTURED);
    CHECK(plan.flops == plan.flops_structured && plan.flops_structured < plan.flops_jacobian);
    /* the structured flops: sum of (N m)^2 n_k over the product layers, and more */
    double prod = (double)(N * 4) * (double)(N * 4) * (30 + 25);
    CHECK(plan.flops_structured >= prod && plan.flops_structured < 3 * prod);
    ntk_net_destroy(c, net);
    free(x1d);
    free(x2d);
    CHECK(ntk_ctx_bytes_in_use(c) == 0);
    ntk_ctx_destroy(c);
    CHECK(cnt.live == 0 && cnt.blocks == 0);
}

static int cancel_after;

/* Cancelled at every progress report: interrupted, nothing held. */
static void test_cancel(void)
{
    size_t sizes[] = {4, 8, 6, 2};
    ntk_net *net = make(sizes, 3, NTK_ACT_ERF, NTK_PARAM_NTK, 3);
    size_t N = 9;
    double *xd = randn(N * 4, 4);
    ntk_mat x = {N, 4, xd};
    ntk_mode modes[] = {NTK_MODE_FULL, NTK_MODE_TRACE, NTK_MODE_OUTPUTS, NTK_MODE_BLOCKS};
    size_t before = ntk_ctx_bytes_in_use(ctx);
    for (size_t mi = 0; mi < 4; mi++) {
        ntk_kernel_opts o = opts(modes[mi], NTK_METHOD_STRUCTURED);
        o.chunk = 2;
        size_t rows, cols, count;
        ntk_kernel_shape(ctx, net, N, 0, &o, &rows, &cols, &count);
        ntk_mat out[2];
        for (size_t a = 0; a < count; a++)
            out[a] = (ntk_mat){rows, cols, malloc(rows * cols * sizeof(double))};
        int interrupted = 0;
        for (int after = 0; after < 100; after++) {
            cancel_after = after;
            ntk_ctx_set_progress(ctx, countdown_hook, &cancel_after);
            ntk_status st = ntk_net_ntk(ctx, net, &x, NULL, &o, out);
            CHECK(ntk_ctx_bytes_in_use(ctx) == before);
            if (st == NTK_OK) break;
            CHECK_STATUS(st, NTK_ERR_INTERRUPTED);
            CHECK(strstr(ntk_ctx_error(ctx), "interrupted during ntk") != NULL);
            interrupted++;
        }
        CHECK_MSG(interrupted >= 3, "mode %zu: only %d reports", mi, interrupted);
        ntk_ctx_set_progress(ctx, NULL, NULL);
        for (size_t a = 0; a < count; a++) free(out[a].data);
    }
    free(xd);
    ntk_net_destroy(ctx, net);
}

/* Every allocation failing in turn: out of memory, nothing leaked. */
static void test_alloc_failure(void)
{
    size_t sizes[] = {3, 5, 4, 2};
    size_t N = 4;
    double *xd = randn(N * 3, 5), k[64], kref[64];
    ntk_mat x = {N, 3, xd}, vk = {8, 8, k};
    int succeeded = 0;
    for (long budget = 0; budget < 100 && !succeeded; budget++) {
        counter cnt = {0, 0, -1, 0};
        ntk_ctx *c;
        CHECK_STATUS(ntk_ctx_create_with(&c, counting, &cnt), NTK_OK);
        ntk_net *net = mlp(c, sizes, 3, NTK_ACT_TANH, NTK_PARAM_NTK, 1.3, 0.4, 2);
        ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
        o.chunk = 2;
        if (budget == 0) CHECK_STATUS(ntk_net_ntk(c, net, &x, NULL, &o, &(ntk_mat){8, 8, kref}), NTK_OK);
        cnt.left = budget;
        ntk_status st = ntk_net_ntk(c, net, &x, NULL, &o, &vk);
        cnt.left = -1;
        if (st == NTK_OK) {
            succeeded = 1;
            CHECK(memcmp(k, kref, sizeof k) == 0);
        } else {
            CHECK_STATUS(st, NTK_ERR_NOMEM);
            CHECK(strstr(ntk_ctx_error(c), "out of memory") != NULL);
        }
        ntk_net_destroy(c, net);
        CHECK(ntk_ctx_bytes_in_use(c) == 0);
        ntk_ctx_destroy(c);
        CHECK_MSG(cnt.blocks == 0, "budget %ld leaked %ld blocks", budget, cnt.blocks);
    }
    CHECK(succeeded);
    free(xd);
}

/* One thread or two: the same kernel (passes large enough to be split). */
static void test_threads(void)
{
    size_t sizes[] = {5, 16, 12, 4};
    ntk_net *net = make(sizes, 3, NTK_ACT_SOFTPLUS, NTK_PARAM_STANDARD, 6);
    size_t N = 150, M = N * 4;
    double *xd = randn(N * 5, 8);
    ntk_mat x = {N, 5, xd};
    double *a = malloc(M * M * sizeof(double)), *b = malloc(M * M * sizeof(double));
    ntk_mat va = {M, M, a}, vb = {M, M, b};
    ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    ntk_ctx_set_threads(ctx, 1);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &va), NTK_OK);
    ntk_ctx_set_threads(ctx, 2);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vb), NTK_OK);
    CHECK(rel_diff(b, a, M * M) < 1e-13);
    /* and against the Jacobian method */
    o.method = NTK_METHOD_JACOBIAN;
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &va), NTK_OK);
    CHECK(rel_diff(b, a, M * M) < 1e-12);
    free(a);
    free(b);
    free(xd);
    ntk_net_destroy(ctx, net);
}

static void test_errors(void)
{
    size_t sizes[] = {3, 4, 2};
    ntk_net *net = make(sizes, 2, NTK_ACT_RELU, NTK_PARAM_NTK, 1);
    double xd[6] = {1, 2, 3, 4, 5, 6}, k[16];
    ntk_mat x = {2, 3, xd}, vk = {4, 4, k};
    ntk_kernel_opts o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    xd[2] = NAN;
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "X1 contains NaN at row 1, column 3") != NULL);
    xd[2] = INFINITY;
    ntk_mat x2 = {2, 3, xd};
    double ok[6] = {0};
    ntk_mat xok = {2, 3, ok};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &xok, &x2, &o, &vk), NTK_ERR_INVALID);
    CHECK(strstr(ntk_ctx_error(ctx), "X2 contains Inf") != NULL);
    xd[2] = 3;
    ntk_mat bad = {4, 3, k};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &bad), NTK_ERR_SHAPE);
    ntk_mat xw = {2, 2, xd};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &xw, NULL, &o, &vk), NTK_ERR_SHAPE);
    o.mode = NTK_MODE_BLOCKS;
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, &xok, &o, &vk), NTK_ERR_INVALID);
    o = opts(NTK_MODE_FULL, (ntk_method)7);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_ERR_INVALID);
    /* a kernel whose rows overflow BLAS's 32-bit sizes is refused up front */
    ntk_plan plan;
    o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    CHECK_STATUS(ntk_net_ntk_plan(ctx, net, (size_t)1 << 31, 0, &o, &plan), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_ntk_plan(ctx, net, (size_t)1 << 62, 0, &o, &plan), NTK_ERR_OVERFLOW);
    /* huge but representable: the plan is finite and names a chunk */
    o.mode = NTK_MODE_TRACE;
    CHECK_STATUS(ntk_net_ntk_plan(ctx, net, 1000000, 0, &o, &plan), NTK_OK);
    CHECK(plan.chunk >= 1 && plan.memory <= NTK_DEFAULT_MEMORY && isfinite(plan.flops));
    /* overflowing parameters: refused, not returned as Inf */
    double theta[26];
    CHECK(ntk_net_num_params(net) == 26);
    for (size_t i = 0; i < 26; i++) theta[i] = 1e200;
    CHECK_STATUS(ntk_net_set_params(ctx, net, theta, ntk_net_num_params(net)), NTK_OK);
    o = opts(NTK_MODE_FULL, NTK_METHOD_STRUCTURED);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x, NULL, &o, &vk), NTK_ERR_NUMERIC);
    CHECK(strstr(ntk_ctx_error(ctx), "overflowed") != NULL);
    ntk_net_destroy(ctx, net);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    test_linear_closed_form();
    test_two_layer_closed_form();
    test_two_layer_loops();
    test_against_explicit();
    test_trace_mean();
    test_memory_and_plan();
    test_cancel();
    test_alloc_failure();
    test_threads();
    test_errors();
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    return check_report("test_structured");
}
