/*
 * The distributed kernel: each rank fills the blocks it owns with the
 * ordinary core call on the samples of those blocks. The local part of a
 * block-cyclic matrix is itself a kernel: its rows are the samples of the
 * rank's block rows, in order, and its columns those of its block columns,
 * so K(X_C, X_R) written row-major is exactly the column-major local array.
 */
#include "dist.h"

#include <string.h>

ntk_status ntk_dist_kernel_layout(ntk_ctx *ctx, const ntk_net *net, size_t n1,
                                  size_t n2, const ntk_kernel_opts *opts,
                                  size_t block_samples, const ntk_grid *g,
                                  size_t *rows, size_t *cols, size_t *nb)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if (!g || g->size == 0) return ntk__fail(ctx, NTK_ERR_INVALID, "grid is not usable");
    size_t rps, count;
    ntk_status st = dist_rows_per_sample(ctx, net, opts, &rps);
    if (st) return st;
    if ((st = ntk_kernel_shape(ctx, net, n1, n2, opts, rows, cols, &count))) return st;
    size_t s = block_samples;
    if (s == 0) {
        /* About 64 rows per block (ScaLAPACK's eigensolvers and Cholesky
         * run well there), but at least two blocks per process row and
         * column when there are samples enough, so no rank sits idle. */
        s = (64 + rps - 1) / rps;
        int pmax = g->nprow > g->npcol ? g->nprow : g->npcol;
        size_t fair = (n1 + 2 * (size_t)pmax - 1) / (2 * (size_t)pmax);
        if (fair < s) s = fair;
        if (s < 1) s = 1;
    }
    if (!ntk__mul(s, rps, nb) || *nb > INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "block of %zu samples is too large", s);
    return NTK_OK;
}

/* The core's progress, folded into ours: inner call k covers `span` of our
 * `total` units starting at `base`. */
typedef struct fold {
    ntk_progress_fn fn;
    void *ud;
    double base, span, total;
} fold;

static int fold_hook(void *ud, const char *task, double done, double total)
{
    fold *f = ud;
    (void)task;
    double frac = total > 0 ? done / total : 1;
    return f->fn(f->ud, "ntk", f->base + frac * f->span, f->total);
}

typedef struct job {
    ntk_ctx *ctx;
    const ntk_net *net;
    ntk_kernel_opts opts; /* with the core's share of the memory */
    ntk_dmat *out;
    size_t rps, n;        /* rows per sample, input width */
    const double *xr;     /* samples of the local rows, in local order */
    const double *xc;     /* samples of the local columns */
    double *scratch;
    size_t scratch_doubles;
    fold fold;
    double done, total;
} job;

static ntk_status core_call(job *jb, const ntk_mat *a, const ntk_mat *b, ntk_mat *t)
{
    ntk_ctx *ctx = jb->ctx;
    double units = (double)t->rows * (double)t->cols;
    ntk_status st;
    if (jb->fold.fn) {
        jb->fold.base = jb->done;
        jb->fold.span = units;
        ntk_ctx_set_progress(ctx, fold_hook, &jb->fold);
        st = ntk_net_ntk(ctx, jb->net, a, b, &jb->opts, t);
        ntk_ctx_set_progress(ctx, jb->fold.fn, jb->fold.ud);
    } else {
        st = ntk_net_ntk(ctx, jb->net, a, b, &jb->opts, t);
    }
    jb->done += units;
    return st;
}

/*
 * Local columns [c0, c0 + nc) (whole samples) against local rows
 * [r0, r1): K(X_cols, X_rows) row-major is the column-major local block.
 * When the rows are all the local rows it lands in place; otherwise it goes
 * through the scratch buffer in pieces that fit it.
 */
static ntk_status fill_rect(job *jb, size_t c0, size_t nc, size_t r0, size_t r1)
{
    ntk_dmat *d = jb->out;
    size_t rps = jb->rps;
    if (nc == 0 || r1 <= r0) return NTK_OK;
    if (r0 == 0 && r1 == d->lrows) {
        ntk_mat xc = {nc / rps, jb->n, (double *)jb->xc + (c0 / rps) * jb->n};
        ntk_mat xr = {d->lrows / rps, jb->n, (double *)jb->xr};
        ntk_mat t = {nc, d->lrows, d->data + c0 * d->lld};
        return core_call(jb, &xc, &xr, &t);
    }
    /* Pieces of whole samples: cw columns by ch rows, cw * ch <= scratch. */
    size_t cw = jb->scratch_doubles / rps / rps * rps;
    if (cw < rps) cw = rps;
    if (cw > nc) cw = nc;
    size_t ch = jb->scratch_doubles / cw / rps * rps;
    if (ch < rps) ch = rps;
    for (size_t c = c0; c < c0 + nc; c += cw) {
        size_t w = c0 + nc - c < cw ? c0 + nc - c : cw;
        ntk_mat xc = {w / rps, jb->n, (double *)jb->xc + (c / rps) * jb->n};
        for (size_t a = r0; a < r1; a += ch) {
            size_t rows = r1 - a < ch ? r1 - a : ch;
            ntk_mat xr = {rows / rps, jb->n, (double *)jb->xr + (a / rps) * jb->n};
            ntk_mat t = {w, rows, jb->scratch};
            ntk_status st = core_call(jb, &xc, &xr, &t);
            if (st) return st;
            for (size_t k = 0; k < w; k++)
                memcpy(d->data + (c + k) * d->lld + a, jb->scratch + k * rows,
                       rows * sizeof(double));
        }
    }
    return NTK_OK;
}

/* The diagonal block of local column block cb, at local row block rb. */
static ntk_status fill_diag(job *jb, size_t cb, size_t rb)
{
    ntk_dmat *d = jb->out;
    size_t c0 = cb * d->nb, r0 = rb * d->mb;
    size_t w = d->lcols - c0 < d->nb ? d->lcols - c0 : d->nb;
    ntk_mat x = {w / jb->rps, jb->n, (double *)jb->xc + (c0 / jb->rps) * jb->n};
    ntk_mat t = {w, w, jb->scratch};
    ntk_status st = core_call(jb, &x, NULL, &t);
    if (st) return st;
    /* Symmetric, so row-major and column-major agree. */
    for (size_t c = 0; c < w; c++)
        memcpy(d->data + (c0 + c) * d->lld + r0, jb->scratch + c * w, w * sizeof(double));
    return NTK_OK;
}

/* First local row block strictly below global block J. */
static size_t first_below(const ntk_dmat *d, size_t J)
{
    size_t myrow = (size_t)d->grid->myrow, np = (size_t)d->grid->nprow;
    return J < myrow ? 0 : (J - myrow) / np + 1;
}

static size_t col_block_global(const ntk_dmat *d, size_t b)
{
    return dist_block_global(b, d->grid->mycol, d->grid->npcol);
}

/*
 * The lower triangle of local column blocks [a, b), on local row blocks
 * below rend (rows from rend on are done), each block once. Halving the
 * columns, the rows below the whole left half form one rectangle: one core
 * call whose row samples' forward and backward passes serve every column
 * of that half. Each row block so takes part in O(log) calls, not one per
 * column block.
 */
static ntk_status fill_tri(job *jb, size_t a, size_t b, size_t rend)
{
    ntk_dmat *d = jb->out;
    size_t nrb = (d->lrows + d->mb - 1) / d->mb;
    if (rend > nrb) rend = nrb;
    ntk_status st;
    if (b - a == 1) {
        size_t J = col_block_global(d, a);
        size_t c0 = a * d->nb, w = d->lcols - c0 < d->nb ? d->lcols - c0 : d->nb;
        if (dist_owns_row_block(d, J) && (st = fill_diag(jb, a, J / (size_t)d->grid->nprow)))
            return st;
        size_t r0 = first_below(d, J);
        if (r0 >= rend) return NTK_OK;
        size_t r1 = rend * d->mb < d->lrows ? rend * d->mb : d->lrows;
        return fill_rect(jb, c0, w, r0 * d->mb, r1);
    }
    size_t m = a + (b - a) / 2;
    size_t rm = first_below(d, col_block_global(d, m - 1));
    if (rm < rend) {
        size_t r1 = rend * d->mb < d->lrows ? rend * d->mb : d->lrows;
        if ((st = fill_rect(jb, a * d->nb, m * d->nb - a * d->nb, rm * d->mb, r1))) return st;
    }
    if ((st = fill_tri(jb, a, m, rm < rend ? rm : rend))) return st;
    return fill_tri(jb, m, b, rend);
}

static ntk_status fill_lower(job *jb)
{
    ntk_dmat *d = jb->out;
    size_t ncb = (d->lcols + d->nb - 1) / d->nb;
    size_t nrb = (d->lrows + d->mb - 1) / d->mb;
    return ncb ? fill_tri(jb, 0, ncb, nrb) : NTK_OK;
}

/* Copy the samples of the local blocks (rows or columns) of x in order. */
static double *local_samples(ntk_ctx *ctx, const ntk_mat *x, size_t count, size_t bsz,
                             size_t rps, int p, int np)
{
    size_t ns = count / rps, s = bsz / rps;
    double *out = ntk__alloc(ctx, ns ? ns * x->cols : 1, sizeof(double));
    if (!out) return NULL;
    for (size_t k = 0; k < ns; k++) {
        size_t blk = k / s, within = k % s;
        size_t i = dist_block_global(blk, p, np) * s + within;
        memcpy(out + k * x->cols, x->data + i * x->cols, x->cols * sizeof(double));
    }
    return out;
}

ntk_status ntk_dist_ntk(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x1,
                        const ntk_mat *x2, const ntk_kernel_opts *opts, ntk_dmat *out)
{
    ntk_kernel_opts def;
    if (!opts) {
        ntk_kernel_opts_init(&def);
        opts = &def;
    }
    if (!out || !out->grid || out->grid->size == 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "out is not an initialised distributed matrix");
    const ntk_grid *g = out->grid;
    job jb;
    memset(&jb, 0, sizeof jb);
    ntk_status st = NTK_OK;
    size_t rows = 0, cols = 0, count;
    if (!net) st = ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if (!st) st = dist_check_input(ctx, net, x1, "X1");
    if (!st && x2) st = dist_check_input(ctx, net, x2, "X2");
    if (!st) st = dist_rows_per_sample(ctx, net, opts, &jb.rps);
    if (!st) st = dist_check_dmat(ctx, out, "out");
    if (!st)
        st = ntk_kernel_shape(ctx, net, x1->rows, x2 ? x2->rows : 0, opts, &rows, &cols,
                              &count);
    if (!st && x2 && x2->rows == 0) cols = 0;
    if (!st && (out->rows != rows || out->cols != cols))
        st = ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zux%zu, got %zux%zu", rows, cols,
                       out->rows, out->cols);
    if (!st && (out->mb != out->nb || out->nb % jb.rps != 0))
        st = ntk__fail(ctx, NTK_ERR_INVALID,
                       "the blocks must be square and hold whole samples (a multiple of "
                       "%zu rows), got %zux%zu",
                       jb.rps, out->mb, out->nb);
    /* The same inputs everywhere, or the blocks would not form one kernel. */
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    if ((st = ntk_mpi_check_same(ctx, g->comm, ntk_net_params(net), ntk_net_num_params(net),
                                 "network")))
        return st;
    if ((st = ntk_mpi_check_same(ctx, g->comm, x1->data, x1->rows * x1->cols,
                                 x2 ? "X1" : "X")))
        return st;
    if (x2 && (st = ntk_mpi_check_same(ctx, g->comm, x2->data, x2->rows * x2->cols, "X2")))
        return st;

    size_t budget = opts->memory ? opts->memory : NTK_DEFAULT_MEMORY;
    jb.ctx = ctx;
    jb.net = net;
    jb.out = out;
    jb.n = x1->cols;
    jb.opts = *opts;
    /* Half of the budget for the core's own tiles, half for our scratch. */
    jb.opts.memory = budget / 2 > 0 ? budget / 2 : 1;
    jb.scratch_doubles = budget / 2 / sizeof(double);
    size_t nb2 = out->nb * out->nb;
    if (jb.scratch_doubles < nb2) jb.scratch_doubles = nb2;
    if (jb.scratch_doubles < out->nb * jb.rps) jb.scratch_doubles = out->nb * jb.rps;
    if (ntk_dmat_local_count(out)) memset(out->data, 0, ntk_dmat_local_count(out) * sizeof(double));
    out->lower = 0;

    double *xr = NULL, *xc = NULL, *scratch = NULL;
    int sym = x2 == NULL;
    if (out->lrows && out->lcols) {
        xr = local_samples(ctx, x1, out->lrows, out->mb, jb.rps, g->myrow, g->nprow);
        xc = xr ? local_samples(ctx, sym ? x1 : x2, out->lcols, out->nb, jb.rps, g->mycol,
                                g->npcol)
                : NULL;
        if (sym && xc) {
            /* The symmetric fill also writes below-diagonal parts in scratch;
             * a cross kernel lands in place. */
            size_t need = jb.scratch_doubles;
            size_t all = out->lrows * out->lcols;
            if (need > all) need = all > nb2 ? all : nb2;
            jb.scratch_doubles = need;
            scratch = ntk__alloc(ctx, need, sizeof(double));
        }
        if (!xr || !xc || (sym && !scratch)) st = NTK_ERR_NOMEM;
    }
    jb.xr = xr;
    jb.xc = xc;
    jb.scratch = scratch;

    /* Work in kernel entries this rank computes, for the progress report. */
    if (!st && out->lrows && out->lcols) {
        if (sym) {
            size_t ncb = (out->lcols + out->nb - 1) / out->nb;
            size_t nrb = (out->lrows + out->mb - 1) / out->mb;
            for (size_t b = 0; b < ncb; b++) {
                size_t J = dist_block_global(b, g->mycol, g->npcol);
                size_t w = out->lcols - b * out->nb < out->nb ? out->lcols - b * out->nb : out->nb;
                size_t rb = J < (size_t)g->myrow ? 0 : (J - (size_t)g->myrow + g->nprow - 1) / (size_t)g->nprow;
                if (rb < nrb) jb.total += (double)w * (double)(out->lrows - rb * out->mb);
            }
        } else {
            jb.total = (double)out->lrows * (double)out->lcols;
        }
    }
    jb.fold.fn = ctx->progress;
    jb.fold.ud = ctx->progress_ud;
    jb.fold.total = jb.total > 0 ? jb.total : 1;
    if (!st && ntk__progress(ctx, "ntk", 0, jb.fold.total)) st = NTK_ERR_INTERRUPTED;
    if (!st && out->lrows && out->lcols) {
        ntk__enter(ctx);
        if (sym) st = fill_lower(&jb);
        else st = fill_rect(&jb, 0, out->lcols, 0, out->lrows);
    }
    if (!st && ntk__progress(ctx, "ntk", jb.fold.total, jb.fold.total)) st = NTK_ERR_INTERRUPTED;
    ntk__free(ctx, scratch);
    ntk__free(ctx, xc);
    ntk__free(ctx, xr);
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;
    out->lower = sym;
    return NTK_OK;
}
