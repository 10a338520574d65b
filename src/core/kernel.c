/* Kernel requests: validation, shapes, plans and the method choice. */
#include "kernel.h"

#include <math.h>
#include <string.h>

void ntk_kernel_opts_init(ntk_kernel_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->mode = NTK_MODE_FULL;
    opts->method = NTK_METHOD_AUTO;
}

static ntk_status check_opts(ntk_ctx *ctx, const ntk_kernel_opts *o, bool sym)
{
    if ((unsigned)o->mode > NTK_MODE_BLOCKS)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown kernel mode %d", (int)o->mode);
    if ((unsigned)o->method > NTK_METHOD_STRUCTURED)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown kernel method %d",
                         (int)o->method);
    if (o->mode == NTK_MODE_BLOCKS && !sym)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "mode 'blocks' takes one input set (the diagonal blocks of K(X, X))");
    return NTK_OK;
}

ntk_status ntk_kernel_shape(ntk_ctx *ctx, const ntk_net *net, size_t n1,
                            size_t n2, const ntk_kernel_opts *opts, size_t *rows,
                            size_t *cols, size_t *count)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    bool sym = n2 == 0;
    if (sym) n2 = n1;
    ntk_status st = check_opts(ctx, opts, sym);
    if (st) return st;
    size_t m = ntk_net_output_dim(net), r = n1, c = n2, k = 1;
    switch (opts->mode) {
    case NTK_MODE_FULL:
        if (!ntk__mul(n1, m, &r) || !ntk__mul(n2, m, &c))
            return ntk__fail(ctx, NTK_ERR_OVERFLOW, "kernel too large");
        break;
    case NTK_MODE_TRACE: break;
    case NTK_MODE_OUTPUTS: k = m; break;
    case NTK_MODE_BLOCKS:
        if (!ntk__mul(n1, m, &r))
            return ntk__fail(ctx, NTK_ERR_OVERFLOW, "kernel too large");
        c = m;
        break;
    }
    size_t cnt;
    if ((st = ntk_mat_count(ctx, r, c, &cnt))) return st;
    if (r > (size_t)INT32_MAX || c > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                         "kernel of %zux%zu exceeds BLAS's 32-bit sizes", r, c);
    *rows = r;
    *cols = c;
    *count = k;
    return NTK_OK;
}

static size_t budget(const ntk_kernel_opts *o)
{
    return o->memory ? o->memory : NTK_DEFAULT_MEMORY;
}

/* The Jacobian method holds rows of m P doubles, a BLAS length. */
static bool jacobian_feasible(const ntk_net *net)
{
    size_t len;
    return ntk__mul(ntk_net_output_dim(net), net->num_params, &len) && len <= (size_t)INT32_MAX;
}

static ntk_method resolve(const ntk_net *net, const ntk_plan *pj, const ntk_plan *ps,
                          ntk_method asked, size_t mem)
{
    if (asked != NTK_METHOD_AUTO) return asked;
    if (!jacobian_feasible(net)) return NTK_METHOD_STRUCTURED;
    /* Prefer what fits the budget, then fewer flops. */
    bool jfits = pj->memory <= mem, sfits = ps->memory <= mem;
    if (jfits != sfits) return sfits ? NTK_METHOD_STRUCTURED : NTK_METHOD_JACOBIAN;
    return ps->flops <= pj->flops ? NTK_METHOD_STRUCTURED : NTK_METHOD_JACOBIAN;
}

ntk_status ntk_net_ntk_plan(ntk_ctx *ctx, const ntk_net *net, size_t n1,
                            size_t n2, const ntk_kernel_opts *opts,
                            ntk_plan *plan)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    size_t r, c, k;
    ntk_status st = ntk_kernel_shape(ctx, net, n1, n2, opts, &r, &c, &k);
    if (st) return st;
    bool sym = n2 == 0;
    if (sym) n2 = n1;
    ntk_plan pj, ps;
    ntk__plan_jacobian(net, n1, n2, sym, opts->mode, budget(opts), opts->chunk, &pj);
    ntk__plan_structured(net, n1, n2, sym, opts->mode, budget(opts), opts->chunk, &ps);
    ntk_method m = resolve(net, &pj, &ps, opts->method, budget(opts));
    *plan = m == NTK_METHOD_JACOBIAN ? pj : ps;
    plan->method = m;
    plan->flops_jacobian = pj.flops;
    plan->flops_structured = ps.flops;
    return NTK_OK;
}

/* Tiles keep both the rows read and the rows written in cache. */
#define MIRROR_TILE 64

typedef struct mirror_arg {
    double *a;
    size_t n, ld;
} mirror_arg;

/* Lower-triangle rows of the row tiles lo..hi-1. */
static void mirror_rows(void *p, size_t lo, size_t hi)
{
    const mirror_arg *m = p;
    double *a = m->a;
    size_t n = m->n, ld = m->ld, T = MIRROR_TILE;
    for (size_t bi = lo; bi < hi; bi++) {
        size_t i0 = bi * T, i1 = i0 + T < n ? i0 + T : n;
        for (size_t j0 = 0; j0 <= i0; j0 += T) {
            size_t j1 = j0 + T < n ? j0 + T : n;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1 && j < i; j++) a[i * ld + j] = a[j * ld + i];
        }
    }
}

void ntk__mirror_upper(double *a, size_t n, size_t ld)
{
    mirror_arg m = {a, n, ld};
    mirror_rows(&m, 0, (n + MIRROR_TILE - 1) / MIRROR_TILE);
}

void ntk__mirror_upper_par(ntk_ctx *ctx, double *a, size_t n, size_t ld)
{
    mirror_arg m = {a, n, ld};
    ntk__parallel(ctx, (n + MIRROR_TILE - 1) / MIRROR_TILE, 1,
                  (double)n * (double)n / 2, mirror_rows, &m);
}

ntk_status ntk_net_ntk(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x1,
                       const ntk_mat *x2, const ntk_kernel_opts *opts,
                       ntk_mat *out)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x1, "X1"))) return st;
    if (x2 && (st = ntk__check_input(ctx, net, x2, "X2"))) return st;
    bool sym = x2 == NULL;
    size_t n1 = x1->rows, n2 = sym ? 0 : x2->rows;
    size_t rows, cols, count;
    /* An empty second set is a valid cross kernel with no columns. */
    if (sym || n2 > 0) {
        if ((st = ntk_kernel_shape(ctx, net, n1, n2, opts, &rows, &cols, &count)))
            return st;
    } else {
        if ((st = ntk_kernel_shape(ctx, net, n1, 1, opts, &rows, &cols, &count)))
            return st;
        cols = 0;
    }
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is NULL");
    for (size_t a = 0; a < count; a++) {
        if ((st = ntk__check_mat(ctx, &out[a], "K"))) return st;
        if (out[a].rows != rows || out[a].cols != cols)
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "the kernel output must be %zux%zu, got %zux%zu", rows,
                             cols, out[a].rows, out[a].cols);
    }
    if (rows == 0 || cols == 0) return NTK_OK;

    ntk_plan plan;
    if ((st = ntk_net_ntk_plan(ctx, net, n1, n2, opts, &plan))) return st;
    ntk_kreq rq = {
        .net = net, .x1 = x1, .x2 = sym ? x1 : x2, .sym = sym, .mode = opts->mode,
        .scale = (opts->mode == NTK_MODE_TRACE && opts->normalize_mean)
                     ? 1.0 / (double)ntk_net_output_dim(net) : 1.0,
        .memory = budget(opts), .chunk = plan.chunk, .out = out, .count = count,
    };
    ntk__log(ctx, NTK_LOG_DEBUG,
             "ntk: method %s, %zu samples per chunk, about %.3g flops and %zu bytes",
             plan.method == NTK_METHOD_JACOBIAN ? "jacobian" : "structured", plan.chunk,
             plan.flops, plan.memory);
    ntk__enter(ctx);
    st = plan.method == NTK_METHOD_JACOBIAN ? ntk__ntk_jacobian(ctx, &rq)
                                            : ntk__ntk_structured(ctx, &rq);
    if (st) return st;
    for (size_t a = 0; a < count; a++) {
        size_t r, c;
        if (ntk_mat_find_nonfinite(&out[a], &r, &c))
            return ntk__fail(ctx, NTK_ERR_NUMERIC,
                             "the kernel overflowed at row %zu, column %zu "
                             "(parameters or inputs too large)", r + 1, c + 1);
    }
    return NTK_OK;
}
