/* Infinite-width NNGP and NTK of the MLP family: the layer recursion over
 * 2 x 2 Gaussian expectations, in closed form where one exists and by
 * tensor Gauss-Hermite quadrature otherwise. */
#include "kernel.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

void ntk_analytic_spec_init(ntk_analytic_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->param = NTK_PARAM_NTK;
    spec->weight_std = NTK_DEFAULT_WEIGHT_STD;
    spec->bias_std = NTK_DEFAULT_BIAS_STD;
    spec->quad_tol = NTK_DEFAULT_QUAD_TOL;
}

/* ---- closed forms ---- */

static int has_closed_form(ntk_act act)
{
    return act == NTK_ACT_IDENTITY || act == NTK_ACT_RELU || act == NTK_ACT_ERF ||
           act == NTK_ACT_SIN;
}

static void expect_closed(ntk_act act, double q1, double q2, double c, double *e,
                          double *ed)
{
    switch (act) {
    case NTK_ACT_RELU: {
        if (!(q1 > 0 && q2 > 0)) {
            /* u or v is 0 almost surely, and relu(0) = relu'(0) = 0 here. */
            *e = 0;
            *ed = 0;
            return;
        }
        /* q1 == q2 == c (a point with itself) must give rho = 1 exactly:
         * arccos amplifies an ulp below 1 to 2e-8. */
        double s = q1 == q2 ? q1 : sqrt(q1) * sqrt(q2), rho = c / s;
        if (rho > 1) rho = 1;
        if (rho < -1) rho = -1;
        double th = acos(rho);
        /* Cho & Saul's arc-cosine kernels of degree 1 and 0. */
        *e = s / (2 * PI) * (sqrt(1 - rho * rho) + (PI - th) * rho);
        *ed = (PI - th) / (2 * PI);
        return;
    }
    case NTK_ACT_ERF: {
        double a = 1 + 2 * q1, b = 1 + 2 * q2;
        double r = 2 * c / sqrt(a * b);
        if (r > 1) r = 1;
        if (r < -1) r = -1;
        *e = 2 / PI * asin(r);
        double det = a * b - 4 * c * c;
        *ed = 4 / PI / sqrt(det > 0 ? det : 0);
        return;
    }
    case NTK_ACT_SIN: {
        /* E[sin u sin v] = e^{-(q1+q2)/2} sinh c, E[cos u cos v] = ... cosh c,
         * written so that nothing overflows (|c| <= (q1 + q2) / 2). */
        double h = 0.5 * (q1 + q2);
        double p = exp(c - h), m = exp(-c - h);
        *e = 0.5 * (p - m);
        *ed = 0.5 * (p + m);
        return;
    }
    case NTK_ACT_IDENTITY:
    default:
        *e = c;
        *ed = 1;
        return;
    }
}

/* ---- quadrature ---- */

/* The orders automatic selection tries, smallest first. */
static const size_t LADDER[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
#define LADDER_LEN (sizeof LADDER / sizeof LADDER[0])

/* A Gauss-Hermite rule for N(0, 1): nodes ascending and exactly
 * antisymmetric, weights summing to 1. */
typedef struct rule {
    size_t q;
    double *z, *w;
} rule;

static void rule_free(ntk_ctx *ctx, rule *r)
{
    ntk__free(ctx, r->z);
    ntk__free(ctx, r->w);
    memset(r, 0, sizeof *r);
}

/* Golub-Welsch: the nodes are the eigenvalues of the Jacobi matrix of
 * the probabilists' Hermite polynomials; the weights are the Christoffel
 * numbers 1 / sum_k p_k(z)^2 of the orthonormal polynomials
 * p_k = He_k / sqrt(k!), which costs O(q^2) instead of eigenvectors'
 * O(q^3). (Far-out nodes whose sums overflow get weight 0; their true
 * weights are below 1e-200.) */
static ntk_status rule_make(ntk_ctx *ctx, size_t q, rule *r)
{
    memset(r, 0, sizeof *r);
    r->q = q;
    r->z = ntk__alloc(ctx, q, sizeof(double));
    r->w = ntk__alloc(ctx, q, sizeof(double));
    double *e = ntk__alloc(ctx, q, sizeof(double));
    ntk_status st = NTK_OK;
    if (!r->z || !r->w || !e) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < q; k++) {
        r->z[k] = 0;
        e[k] = k + 1 < q ? sqrt((double)(k + 1)) : 0;
    }
    lapack_int info = LAPACKE_dsterf((lapack_int)q, r->z, e);
    if (info != 0) {
        st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                       "Gauss-Hermite rule with %zu points failed (dsterf info %d)", q,
                       (int)info);
        goto done;
    }
    /* Exact symmetry lets odd activations use half of the grid. */
    for (size_t k = 0; k < q / 2; k++) {
        double z = 0.5 * (r->z[q - 1 - k] - r->z[k]);
        r->z[k] = -z;
        r->z[q - 1 - k] = z;
    }
    if (q % 2) r->z[q / 2] = 0;
    for (size_t i = 0; i < q; i++) {
        double z = r->z[i], prev = 0, cur = 1, sum = 1;
        for (size_t k = 1; k < q; k++) {
            double next = (z * cur - sqrt((double)(k - 1)) * prev) / sqrt((double)k);
            prev = cur;
            cur = next;
            sum += cur * cur;
        }
        r->w[i] = isfinite(sum) ? 1.0 / sum : 0.0;
    }
    double s = 0;
    for (size_t k = 0; k < q; k++) s += r->w[k];
    for (size_t k = 0; k < q; k++) r->w[k] /= s;
done:
    ntk__free(ctx, e);
    if (st) rule_free(ctx, r);
    return st;
}

/* Per-thread scratch for expect_quad: five rows of NTK_MAX_QUAD_POINTS. */
typedef struct scratch {
    double *pu, *du, *v, *pv, *dv;
} scratch;

static ntk_status scratch_alloc(ntk_ctx *ctx, scratch *s)
{
    double *p = ntk__alloc(ctx, 5 * NTK_MAX_QUAD_POINTS, sizeof(double));
    if (!p) return NTK_ERR_NOMEM;
    s->pu = p;
    s->du = p + NTK_MAX_QUAD_POINTS;
    s->v = p + 2 * NTK_MAX_QUAD_POINTS;
    s->pv = p + 3 * NTK_MAX_QUAD_POINTS;
    s->dv = p + 4 * NTK_MAX_QUAD_POINTS;
    return NTK_OK;
}

static void scratch_free(ntk_ctx *ctx, scratch *s)
{
    ntk__free(ctx, s->pu);
    memset(s, 0, sizeof *s);
}

/* Symmetry of phi under u -> -u that halves the grid: phi odd (phi'
 * even), or phi - 1/2 odd (sigmoid). */
enum { PARITY_NONE = 0, PARITY_ODD, PARITY_ODD_HALF };

static int parity_of(ntk_act act)
{
    switch (act) {
    case NTK_ACT_IDENTITY:
    case NTK_ACT_TANH:
    case NTK_ACT_ERF:
    case NTK_ACT_SIN: return PARITY_ODD;
    case NTK_ACT_SIGMOID: return PARITY_ODD_HALF;
    default: return PARITY_NONE;
    }
}

/*
 * E[phi(u) phi(v)], E[phi'(u) phi'(v)] by the tensor rule: u = sqrt(q1) z1,
 * v = (c / sqrt(q1)) z1 + sqrt(q2 - c^2 / q1) z2. With a parity, node
 * pairs (a, b) and (q-1-a, q-1-b) give (u, v) and (-u, -v), so the rows
 * a < q/2 count twice.
 */
static void expect_quad(const rule *R, scratch *S, ntk_act act, int parity, double q1,
                        double q2, double c, double *e, double *ed)
{
    if (q2 > q1) {
        double t = q1;
        q1 = q2;
        q2 = t;
    }
    if (!(q1 > 0)) {
        double zero = 0, p0, d0;
        ntk_act_apply(act, &zero, 1, &p0, &d0);
        *e = p0 * p0;
        *ed = d0 * d0;
        return;
    }
    size_t q = R->q;
    const double *z = R->z, *w = R->w;
    double shift = parity == PARITY_ODD_HALF ? 0.5 : 0.0;
    size_t rows = parity ? (q + 1) / 2 : q;
    double su = sqrt(q1), a = c / su, r = q2 - c * c / q1;
    double sv = r > 0 ? sqrt(r) : 0;
    for (size_t i = 0; i < rows; i++) S->pu[i] = su * z[i];
    ntk_act_apply(act, S->pu, rows, S->pu, S->du);
    double se = 0, sd = 0;
    for (size_t i = 0; i < rows; i++) {
        double base = a * z[i];
        for (size_t j = 0; j < q; j++) S->v[j] = base + sv * z[j];
        ntk_act_apply(act, S->v, q, S->pv, S->dv);
        double re = 0, rd = 0;
        for (size_t j = 0; j < q; j++) {
            re += w[j] * (S->pv[j] - shift);
            rd += w[j] * S->dv[j];
        }
        /* The middle row of an odd rule is its own mirror image. */
        double mult = parity && !(q % 2 && i == q / 2) ? 2.0 : 1.0;
        se += mult * w[i] * (S->pu[i] - shift) * re;
        sd += mult * w[i] * S->du[i] * rd;
    }
    *e = se + shift * shift;
    *ed = sd;
}

/* Rules by ladder index, made on first use. */
typedef struct rules {
    rule r[LADDER_LEN];
    rule fixed;
} rules;

static void rules_free(ntk_ctx *ctx, rules *rs)
{
    for (size_t k = 0; k < LADDER_LEN; k++) rule_free(ctx, &rs->r[k]);
    rule_free(ctx, &rs->fixed);
}

static ntk_status rules_get(ntk_ctx *ctx, rules *rs, size_t idx, const rule **out)
{
    if (!rs->r[idx].z) {
        ntk_status st = rule_make(ctx, LADDER[idx], &rs->r[idx]);
        if (st) return st;
    }
    *out = &rs->r[idx];
    return NTK_OK;
}

/*
 * The smallest ladder rule whose results on the test covariances
 * (q1, q2, c triples) agree with the next rule's within tol, relative to
 * the Cauchy-Schwarz bounds sqrt(E[phi(u)^2] E[phi(v)^2]) (and the same for
 * phi'), so that expectations near zero do not demand the impossible.
 * Sets *out; *err to the last estimate (0 if the largest rule was needed
 * and no estimate is possible beyond it).
 */
static ntk_status choose_rule(ntk_ctx *ctx, rules *rs, scratch *S, ntk_act act,
                              const double (*tests)[3], size_t ntests, double tol,
                              const rule **out, double *err)
{
    int parity = parity_of(act);
    ntk_status st;
    double est = 0;
    for (size_t k = 0; k + 1 < LADDER_LEN; k++) {
        const rule *lo, *hi;
        if ((st = rules_get(ctx, rs, k, &lo)) || (st = rules_get(ctx, rs, k + 1, &hi)))
            return st;
        est = 0;
        for (size_t t = 0; t < ntests; t++) {
            double q1 = tests[t][0], q2 = tests[t][1], c = tests[t][2];
            double e0, d0, e1, d1, a1, ad1, b1, bd1;
            expect_quad(lo, S, act, parity, q1, q2, c, &e0, &d0);
            expect_quad(hi, S, act, parity, q1, q2, c, &e1, &d1);
            expect_quad(hi, S, act, parity, q1, q1, q1, &a1, &ad1);
            expect_quad(hi, S, act, parity, q2, q2, q2, &b1, &bd1);
            double se = sqrt(fabs(a1 * b1)), sd = sqrt(fabs(ad1 * bd1));
            if (se > 0 && fabs(e0 - e1) / se > est) est = fabs(e0 - e1) / se;
            if (sd > 0 && fabs(d0 - d1) / sd > est) est = fabs(d0 - d1) / sd;
        }
        if (est <= tol) {
            *out = lo;
            *err = est;
            return NTK_OK;
        }
    }
    *err = est;
    return rules_get(ctx, rs, LADDER_LEN - 1, out);
}

static ntk_status check_quad(ntk_ctx *ctx, const ntk_analytic_spec *spec)
{
    if (spec->quad_points > NTK_MAX_QUAD_POINTS)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "quad_points must be 0 (automatic) or between 1 and %d, got %zu",
                         NTK_MAX_QUAD_POINTS, spec->quad_points);
    if (!(spec->quad_tol >= 1e-14 && spec->quad_tol < 1))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "quad_tol must be in [1e-14, 1), got %g", spec->quad_tol);
    return NTK_OK;
}

ntk_status ntk_gaussian_expect(ntk_ctx *ctx, const ntk_analytic_spec *spec, ntk_act act,
                               double q1, double q2, double c, double *e, double *ed)
{
    ntk_status st;
    ntk_analytic_spec defaults;
    if (!spec) {
        ntk_analytic_spec_init(&defaults);
        spec = &defaults;
    }
    if ((unsigned)act >= NTK_ACT_COUNT)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown activation %d", (int)act);
    if (!(isfinite(q1) && isfinite(q2) && isfinite(c)) || q1 < 0 || q2 < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "q1 and q2 must be finite variances >= 0 and c finite, got %g, %g, %g",
                         q1, q2, c);
    if (c * c > q1 * q2 * (1 + 1e-12))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "[[%g, %g], [%g, %g]] is not a covariance (c^2 > q1 q2)", q1, c,
                         c, q2);
    if ((st = check_quad(ctx, spec))) return st;
    double ev, edv;
    if (!spec->force_quadrature && has_closed_form(act)) {
        expect_closed(act, q1, q2, c, &ev, &edv);
    } else {
        rules rs;
        scratch S;
        memset(&rs, 0, sizeof rs);
        if ((st = scratch_alloc(ctx, &S))) return st;
        const rule *R = NULL;
        if (spec->quad_points) {
            st = rule_make(ctx, spec->quad_points, &rs.fixed);
            R = &rs.fixed;
        } else {
            double tests[1][3] = {{q1, q2, c}}, err;
            st = choose_rule(ctx, &rs, &S, act, tests, 1, spec->quad_tol, &R, &err);
        }
        if (!st) expect_quad(R, &S, act, parity_of(act), q1, q2, c, &ev, &edv);
        rules_free(ctx, &rs);
        scratch_free(ctx, &S);
        if (st) return st;
    }
    if (e) *e = ev;
    if (ed) *ed = edv;
    return NTK_OK;
}

/* ---- the recursion ---- */

typedef struct layer_rule {
    ntk_act act;
    int closed, parity;
    const rule *r;
} layer_rule;

typedef struct recursion {
    size_t depth;
    const size_t *sizes; /* may be NULL */
    const layer_rule *lr; /* depth - 1 hidden layers */
    int standard, want_ntk;
    double sw2, sb2, inv_n0;
} recursion;

static void expect(const layer_rule *l, scratch *S, double q1, double q2, double c,
                   double *e, double *ed)
{
    if (l->closed) expect_closed(l->act, q1, q2, c, e, ed);
    else expect_quad(l->r, S, l->act, l->parity, q1, q2, c, e, ed);
}

/*
 * Kernels of one pair: dot = x.x', q1/q2 the two points' NNGP variances
 * per layer. Writes Sigma_L and Theta_L.
 */
static void pair(const recursion *R, scratch *S, double dot, const double *q1,
                 const double *q2, double *nngp, double *ntk)
{
    double Sg = R->sw2 * dot * R->inv_n0 + R->sb2;
    double T = R->standard ? dot + 1 : Sg;
    for (size_t k = 1; k < R->depth; k++) {
        double e, ed;
        expect(&R->lr[k - 1], S, q1[k - 1], q2[k - 1], Sg, &e, &ed);
        double next = R->sw2 * e + R->sb2;
        if (R->want_ntk) {
            double fresh = R->standard ? (double)R->sizes[k] * e + 1 : next;
            T = fresh + R->sw2 * ed * T;
        }
        Sg = next;
    }
    *nngp = Sg;
    *ntk = T;
}

static ntk_status check_spec(ntk_ctx *ctx, const ntk_analytic_spec *spec, size_t n0,
                             int want_ntk)
{
    if (spec->depth < 1 || spec->depth > 100000)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "depth must be between 1 and 100000 dense layers, got %zu",
                         spec->depth);
    if (spec->sizes) {
        for (size_t k = 0; k <= spec->depth; k++)
            if (spec->sizes[k] == 0 || spec->sizes[k] > (size_t)INT32_MAX)
                return ntk__fail(ctx, NTK_ERR_INVALID,
                                 "sizes[%zu] must be a positive width below 2^31, got %zu",
                                 k + 1, spec->sizes[k]);
        if (spec->sizes[0] != n0)
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "X1 must be N x %zu (sizes[1] is the input width), got N x %zu",
                             spec->sizes[0], n0);
    }
    for (size_t k = 0; spec->acts && k + 1 < spec->depth; k++)
        if ((unsigned)spec->acts[k] >= NTK_ACT_COUNT)
            return ntk__fail(ctx, NTK_ERR_INVALID,
                             "unknown activation %d for hidden layer %zu",
                             (int)spec->acts[k], k + 1);
    if ((unsigned)spec->param > NTK_PARAM_STANDARD)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown parameterization %d",
                         (int)spec->param);
    if (!isfinite(spec->weight_std) || spec->weight_std < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "weight_std must be finite and >= 0, got %g",
                         spec->weight_std);
    if (!isfinite(spec->bias_std) || spec->bias_std < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "bias_std must be finite and >= 0, got %g",
                         spec->bias_std);
    if (want_ntk && spec->param == NTK_PARAM_STANDARD && !spec->sizes)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the standard-parameterization NTK grows with the hidden widths: "
                         "give sizes, not only depth");
    return check_quad(ctx, spec);
}

/* ---- the pair loop, split over threads ---- */

#define MAX_THREADS 64

typedef struct job {
    const recursion *R;
    scratch *S;
    bool sym;
    size_t i0, n, N2, L, start, stride;
    const double *gram; /* layer-1 inner products, row stride N2 (an output) */
    const double *sq1, *sq2, *q1, *q2;
    const double *x1, *x2; /* rows of n0 inputs */
    size_t n0;
    double *nngp, *ntk; /* full outputs, or NULL */
} job;

/* Rows start, start + stride, ... of the block. */
static void *run_job(void *arg)
{
    const job *J = arg;
    for (size_t r = J->start; r < J->n; r += J->stride) {
        size_t i = J->i0 + r;
        size_t jstart = J->sym ? i : 0;
        for (size_t j = jstart; j < J->N2; j++) {
            /* Read before the outputs (one of which holds the Gram
             * matrix) overwrite this entry. */
            double dot = (J->sym && j == i) ? J->sq1[i] : J->gram[i * J->N2 + j];
            /* A point of X1 repeated in X2 gets the same-point arithmetic
             * (dot = its squared norm), so that it agrees with the symmetric
             * kernel's diagonal: the arc-cosine amplifies a last-bit
             * difference between two dot products to 1e-8. */
            if (!J->sym && J->sq1[i] == J->sq2[j] && fabs(dot - J->sq1[i]) <= 1e-12 * J->sq1[i] &&
                memcmp(J->x1 + i * J->n0, J->x2 + j * J->n0, J->n0 * sizeof(double)) == 0)
                dot = J->sq1[i];
            double s, t;
            pair(J->R, J->S, dot, J->q1 + i * J->L, J->q2 + j * J->L, &s, &t);
            if (J->nngp) J->nngp[i * J->N2 + j] = s;
            if (J->ntk) J->ntk[i * J->N2 + j] = t;
        }
    }
    return NULL;
}

/* Run job copies 1..T-1 in threads and 0 here; falls back to fewer
 * threads if the system refuses to create more. */
static void run_parallel(job *jobs, size_t T)
{
    pthread_t tid[MAX_THREADS];
    size_t started = 1;
    for (size_t t = 1; t < T; t++) {
        if (pthread_create(&tid[t], NULL, run_job, &jobs[t]) != 0) break;
        started++;
    }
    /* Work the threads could not take is done here. */
    for (size_t t = started; t < T; t++) run_job(&jobs[t]);
    run_job(&jobs[0]);
    for (size_t t = 1; t < started; t++) pthread_join(tid[t], NULL);
}

/* Pair evaluations per block of rows: the grain of progress and
 * interruption. */
#define BLOCK_PAIRS ((size_t)1 << 15)

ntk_status ntk_analytic_kernels(ntk_ctx *ctx, const ntk_analytic_spec *spec,
                                const ntk_mat *x1, const ntk_mat *x2, ntk_mat *nngp,
                                ntk_mat *ntk)
{
    ntk_status st;
    if (!spec) return ntk__fail(ctx, NTK_ERR_INVALID, "spec is NULL");
    if ((st = ntk__check_mat(ctx, x1, "X1"))) return st;
    bool sym = x2 == NULL;
    if (sym) x2 = x1;
    else if ((st = ntk__check_mat(ctx, x2, "X2"))) return st;
    size_t n0 = x1->cols;
    if (n0 == 0) return ntk__fail(ctx, NTK_ERR_SHAPE, "X1 must have at least one column");
    if ((st = check_spec(ctx, spec, n0, ntk != NULL))) return st;
    if (x2->cols != n0)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "X2 must be N x %zu (as X1), got %zux%zu", n0,
                         x2->rows, x2->cols);
    size_t N1 = x1->rows, N2 = x2->rows;
    if (N1 > (size_t)INT32_MAX || N2 > (size_t)INT32_MAX || n0 > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "X1 or X2 is too large for BLAS");
    if ((st = ntk__check_finite(ctx, x1, "X1"))) return st;
    if (!sym && (st = ntk__check_finite(ctx, x2, "X2"))) return st;
    ntk_mat *outs[2] = {nngp, ntk};
    const char *names[2] = {"nngp", "ntk"};
    for (int o = 0; o < 2; o++) {
        if (!outs[o]) continue;
        if ((st = ntk__check_mat(ctx, outs[o], names[o]))) return st;
        if (outs[o]->rows != N1 || outs[o]->cols != N2)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be %zux%zu, got %zux%zu",
                             names[o], N1, N2, outs[o]->rows, outs[o]->cols);
    }
    if (N1 == 0 || N2 == 0 || (!nngp && !ntk)) return NTK_OK;

    size_t L = spec->depth, T = (size_t)ntk_ctx_threads(ctx);
    if (T > MAX_THREADS) T = MAX_THREADS;
    size_t rb = BLOCK_PAIRS / N2;
    if (rb < T) rb = T;
    if (rb > N1) rb = N1;
    if (T > rb) T = rb;
    layer_rule *lr = ntk__calloc(ctx, L, sizeof *lr);
    double *q1 = ntk__alloc(ctx, N1, L * sizeof(double));
    double *q2 = sym ? q1 : ntk__alloc(ctx, N2, L * sizeof(double));
    double *sq1 = ntk__alloc(ctx, N1, sizeof(double));
    double *sq2 = sym ? sq1 : ntk__alloc(ctx, N2, sizeof(double));
    scratch *S = ntk__calloc(ctx, T, sizeof *S);
    job *jobs = ntk__calloc(ctx, T, sizeof *jobs);
    rules rs;
    memset(&rs, 0, sizeof rs);
    if (!lr || !q1 || !q2 || !sq1 || !sq2 || !S || !jobs) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    for (size_t t = 0; t < T; t++)
        if ((st = scratch_alloc(ctx, &S[t]))) goto done;
    if (spec->quad_points && (st = rule_make(ctx, spec->quad_points, &rs.fixed))) goto done;

    recursion R = {
        .depth = L,
        .sizes = spec->sizes,
        .lr = lr,
        .standard = spec->param == NTK_PARAM_STANDARD,
        .want_ntk = ntk != NULL,
        .sw2 = spec->weight_std * spec->weight_std,
        .sb2 = spec->bias_std * spec->bias_std,
        .inv_n0 = 1.0 / (double)n0,
    };
    ntk__enter(ctx);
    if (ntk__progress(ctx, "analytic", 0, (double)N1)) {
        st = NTK_ERR_INTERRUPTED;
        goto done;
    }
    for (size_t i = 0; i < N1; i++) {
        const double *xi = x1->data + i * n0;
        sq1[i] = cblas_ddot((int)n0, xi, 1, xi, 1);
    }
    for (size_t j = 0; !sym && j < N2; j++) {
        const double *xj = x2->data + j * n0;
        sq2[j] = cblas_ddot((int)n0, xj, 1, xj, 1);
    }
    /* Variances layer by layer (the arithmetic of pair() on (x, x), so
     * that symmetric diagonals agree exactly), choosing each quadrature
     * layer's rule from the extreme variances its inputs actually have. */
    for (size_t k = 0; k < L; k++) {
        for (size_t i = 0; i < N1; i++)
            q1[i * L + k] = k == 0 ? R.sw2 * sq1[i] * R.inv_n0 + R.sb2 : 0;
        for (size_t j = 0; !sym && j < N2; j++)
            q2[j * L + k] = k == 0 ? R.sw2 * sq2[j] * R.inv_n0 + R.sb2 : 0;
    }
    for (size_t k = 0; k + 1 < L; k++) {
        layer_rule *l = &lr[k];
        l->act = spec->acts ? spec->acts[k] : NTK_ACT_RELU;
        l->closed = !spec->force_quadrature && has_closed_form(l->act);
        l->parity = parity_of(l->act);
        if (!l->closed) {
            if (spec->quad_points) {
                l->r = &rs.fixed;
            } else {
                double lo = INFINITY, hi = 0;
                for (size_t i = 0; i < N1; i++) {
                    double v = q1[i * L + k];
                    if (v < lo) lo = v;
                    if (v > hi) hi = v;
                }
                for (size_t j = 0; !sym && j < N2; j++) {
                    double v = q2[j * L + k];
                    if (v < lo) lo = v;
                    if (v > hi) hi = v;
                }
                double tests[4][3] = {{hi, hi, hi},
                                      {hi, hi, 0.9 * hi},
                                      {hi, hi, -0.6 * hi},
                                      {hi, lo, 0.9 * sqrt(hi * lo)}};
                double err;
                st = choose_rule(ctx, &rs, &S[0], l->act, tests, 4, spec->quad_tol, &l->r, &err);
                if (st) goto done;
                ntk__log(ctx, NTK_LOG_DEBUG,
                         "analytic: layer %zu (%s, variances %g..%g): %zu-point rule, "
                         "estimated error %.1e",
                         k + 2, ntk_act_name(l->act), lo, hi, l->r->q, err);
                if (err > spec->quad_tol)
                    ntk__log(ctx, NTK_LOG_WARN,
                             "analytic: %zu-point quadrature for layer %zu (%s, variance "
                             "up to %g) is only accurate to about %.1e",
                             l->r->q, k + 2, ntk_act_name(l->act), hi, err);
            }
        }
        for (size_t i = 0; i < N1; i++) {
            double *q = q1 + i * L, e, ed;
            expect(l, &S[0], q[k], q[k], q[k], &e, &ed);
            q[k + 1] = R.sw2 * e + R.sb2;
        }
        for (size_t j = 0; !sym && j < N2; j++) {
            double *q = q2 + j * L, e, ed;
            expect(l, &S[0], q[k], q[k], q[k], &e, &ed);
            q[k + 1] = R.sw2 * e + R.sb2;
        }
    }

    /* Layer-1 inner products, all at once, into an output: each pair
     * reads its entry and then writes its kernels there, so the Gram
     * matrix needs no memory of its own, and BLAS's threads are done
     * before the pair loop's start. */
    double *gram = ntk ? ntk->data : nngp->data;
    if (sym)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)N1, (int)n0, 1.0, x1->data,
                    (int)n0, 0.0, gram, (int)N2);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N1, (int)N2, (int)n0, 1.0,
                    x1->data, (int)n0, x2->data, (int)n0, 0.0, gram, (int)N2);
    for (size_t i0 = 0; i0 < N1; i0 += rb) {
        size_t n = N1 - i0 < rb ? N1 - i0 : rb;
        size_t threads = T < n ? T : n;
        for (size_t t = 0; t < threads; t++) {
            jobs[t] = (job){.R = &R, .S = &S[t], .sym = sym, .i0 = i0, .n = n, .N2 = N2,
                            .L = L, .start = t, .stride = threads, .gram = gram, .sq1 = sq1,
                            .sq2 = sq2, .q1 = q1, .q2 = q2, .x1 = x1->data, .x2 = x2->data,
                            .n0 = n0, .nngp = nngp ? nngp->data : NULL,
                            .ntk = ntk ? ntk->data : NULL};
        }
        run_parallel(jobs, threads);
        if (ntk__progress(ctx, "analytic", (double)(i0 + n), (double)N1)) {
            st = NTK_ERR_INTERRUPTED;
            goto done;
        }
    }
    for (int o = 0; o < 2; o++) {
        if (!outs[o]) continue;
        if (sym) ntk__mirror_upper(outs[o]->data, N1, N1);
        size_t r, c;
        if (ntk_mat_find_nonfinite(outs[o], &r, &c)) {
            st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                           "the analytic %s overflowed at row %zu, column %zu "
                           "(weight_std, depth or inputs too large)",
                           names[o], r + 1, c + 1);
            goto done;
        }
    }
done:
    rules_free(ctx, &rs);
    for (size_t t = 0; S && t < T; t++) scratch_free(ctx, &S[t]);
    ntk__free(ctx, S);
    ntk__free(ctx, jobs);
    ntk__free(ctx, lr);
    ntk__free(ctx, q1);
    if (!sym) ntk__free(ctx, q2);
    ntk__free(ctx, sq1);
    if (!sym) ntk__free(ctx, sq2);
    return st;
}
