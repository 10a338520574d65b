/*
 * Matrix-free products with the full NTK: K V = J (J^T V).
 *
 * J^T V is a reverse pass that carries k cotangent columns at once: the
 * cotangent of layer l for sample i and column c is row (i, c) of G_l
 * (rows ordered sample-major), so G_l read as an n x (k n_l) matrix gives
 * every column's weight gradient in one product with the layer input, and
 * G_{l-1} = (G_l W_l) * phi' is one product for all columns. The k
 * parameter-space vectors U are stored layer-major (all columns of layer
 * l together), which lets the forward tangent pass J U use the same shapes
 * in reverse: two products per layer. Neither K nor J is formed; memory is
 * U (k P), two (chunk k width) buffers and the tapes of activations.
 */
#include "linalg.h"
#include "ntkop.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Cotangent and tangent buffers beyond this many bytes buy no speed. */
#define CHUNK_BYTES (64.0 * 1024 * 1024)

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

void ntk__ntkop_free(ntk_ctx *ctx, ntk__ntkop *op)
{
    for (size_t t = 0; op->tapes && t < op->ntapes; t++) ntk__tape_free(ctx, &op->tapes[t]);
    ntk__free(ctx, op->tapes);
    ntk__free(ctx, op->u);
    ntk__free(ctx, op->g0);
    ntk__free(ctx, op->g1);
    ntk__free(ctx, op->ones);
    memset(op, 0, sizeof *op);
}

void ntk__ntkop_plan(const ntk_net *net, size_t nsamp, size_t k, size_t memory,
                     size_t *kcap, size_t *chunk, int *cached)
{
    size_t mem = memory ? memory : NTK_DEFAULT_MEMORY;
    double P8 = (double)net->num_params * sizeof(double);
    double W = (double)net->max_width;
    double tb = 2.0 * (double)ntk__tape_doubles(net, 1) * sizeof(double);
    if (k < 1) k = 1;
    if (nsamp < 1) nsamp = 1;
    double kc = floor((double)mem / 2 / P8);
    if (kc > (double)k) kc = (double)k;
    if (kc < 1) kc = 1;
    double rest = (double)mem - kc * P8;
    if (rest < 0) rest = 0;
    double gb = kc * 2 * W * sizeof(double) + sizeof(double);
    double c;
    if ((double)nsamp * tb <= rest / 2) {
        *cached = 1;
        c = floor((rest - (double)nsamp * tb) / gb);
    } else {
        *cached = 0;
        c = floor(rest / (gb + tb));
    }
    if (c > (double)nsamp) c = (double)nsamp;
    /* Past a few thousand rows the products run at full speed already:
     * larger chunks would only spend memory. */
    double enough = floor(CHUNK_BYTES / gb);
    if (c > enough) c = enough;
    /* BLAS's 32-bit dimensions: chunk * k rows of width up to W. */
    double cap = floor((double)INT32_MAX / (kc * W));
    if (c > cap) c = cap;
    if (c < 1) c = 1;
    *kcap = (size_t)kc;
    *chunk = (size_t)c;
}

ntk_status ntk__ntkop_init(ntk_ctx *ctx, ntk__ntkop *op, const ntk_net *net,
                           const ntk_mat *x, size_t kmax, size_t memory)
{
    memset(op, 0, sizeof *op);
    op->net = net;
    op->x = x->data;
    op->nsamp = x->rows;
    op->m = net->sizes[net->depth];
    ntk__ntkop_plan(net, x->rows, kmax, memory, &op->kcap, &op->chunk, &op->cached);
    op->nchunks = (op->nsamp + op->chunk - 1) / op->chunk;
    op->ntapes = op->cached ? op->nchunks : 1;
    size_t buf;
    if (!ntk__mul(op->chunk * op->kcap, net->max_width, &buf))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "kernel product buffers overflow");
    op->tapes = ntk__calloc(ctx, op->ntapes ? op->ntapes : 1, sizeof *op->tapes);
    op->u = ntk__alloc(ctx, op->kcap, net->num_params * sizeof(double));
    op->g0 = ntk__alloc(ctx, buf, sizeof(double));
    op->g1 = ntk__alloc(ctx, buf, sizeof(double));
    op->ones = ntk__alloc(ctx, op->chunk, sizeof(double));
    if (!op->tapes || !op->u || !op->g0 || !op->g1 || !op->ones) {
        ntk__ntkop_free(ctx, op);
        return NTK_ERR_NOMEM;
    }
    for (size_t i = 0; i < op->chunk; i++) op->ones[i] = 1.0;
    for (size_t t = 0; t < op->ntapes; t++) {
        size_t n = op->cached ? min_sz(op->chunk, op->nsamp - t * op->chunk) : op->chunk;
        ntk_status st = ntk__tape_alloc(ctx, net, n, &op->tapes[t]);
        if (st) {
            op->ntapes = t;
            ntk__ntkop_free(ctx, op);
            return st;
        }
        /* The outputs are not needed: give their memory back. */
        ntk__free(ctx, op->tapes[t].out);
        op->tapes[t].out = NULL;
    }
    if (op->cached) {
        for (size_t t = 0; t < op->ntapes; t++) {
            size_t i0 = t * op->chunk, n = min_sz(op->chunk, op->nsamp - i0);
            ntk__tape_forward(ctx, net, op->x + i0 * net->sizes[0], n, &op->tapes[t]);
        }
    }
    return NTK_OK;
}

static ntk_tape *tape_for(ntk_ctx *ctx, ntk__ntkop *op, size_t ci, size_t i0, size_t n)
{
    if (op->cached) return &op->tapes[ci];
    ntk__tape_forward(ctx, op->net, op->x + i0 * op->net->sizes[0], n, &op->tapes[0]);
    return &op->tapes[0];
}

/* g (n samples x kk columns x w units) times the activation derivatives d
 * (n x w) of the layer, unit by unit: the chain rule through phi. */
static void scale_by_deriv(double *g, const double *d, size_t n, size_t kk, size_t w)
{
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < kk; c++) {
            double *row = g + (i * kk + c) * w;
            const double *dr = d + i * w;
            for (size_t s = 0; s < w; s++) row[s] *= dr[s];
        }
}

/* u += J_chunk^T V_chunk for the kk columns starting at c0. */
static void reverse_chunk(ntk__ntkop *op, const ntk_tape *t, size_t i0, size_t n,
                          const double *v, size_t ldv, size_t c0, size_t kk)
{
    const ntk_net *net = op->net;
    size_t m = op->m, L = net->depth;
    double *g = op->g0, *g2 = op->g1;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < kk; c++)
            for (size_t a = 0; a < m; a++)
                g[(i * kk + c) * m + a] = v[((i0 + i) * m + a) * ldv + c0 + c];
    for (size_t l = L; l-- > 0;) {
        size_t nin = net->sizes[l], nout = net->sizes[l + 1];
        const double *in = ntk__tape_input(net, t, l);
        double *uw = op->u + kk * net->offset[l], *ub = uw + kk * nout * nin;
        /* All columns' weight gradients: G (n x kk nout)^T times the input. */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(kk * nout), (int)nin,
                    (int)n, net->cw[l], g, (int)(kk * nout), in, (int)nin, 1.0, uw,
                    (int)nin);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)(kk * nout), net->cb[l], g,
                    (int)(kk * nout), op->ones, 1, 1.0, ub, 1);
        if (l == 0) break;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(n * kk), (int)nin,
                    (int)nout, net->cw[l], g, (int)nout, ntk__w(net, l), (int)nin, 0.0, g2,
                    (int)nin);
        scale_by_deriv(g2, ntk__tape_deriv(net, t, l - 1), n, kk, nin);
        double *tmp = g;
        g = g2;
        g2 = tmp;
    }
}

/* out rows of the chunk, columns c0..c0+kk, = J_chunk u. */
static void forward_chunk(ntk__ntkop *op, const ntk_tape *t, size_t i0, size_t n,
                          double *out, size_t ldo, size_t c0, size_t kk)
{
    const ntk_net *net = op->net;
    size_t m = op->m, L = net->depth;
    double *z = op->g0, *prev = op->g1;
    for (size_t l = 0; l < L; l++) {
        size_t nin = net->sizes[l], nout = net->sizes[l + 1];
        const double *in = ntk__tape_input(net, t, l);
        const double *uw = op->u + kk * net->offset[l], *ub = uw + kk * nout * nin;
        /* The parameters' direction: input times every column's dW^T. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)(kk * nout),
                    (int)nin, net->cw[l], in, (int)nin, uw, (int)nin, 0.0, z,
                    (int)(kk * nout));
        cblas_dger(CblasRowMajor, (int)n, (int)(kk * nout), net->cb[l], op->ones, 1, ub, 1,
                   z, (int)(kk * nout));
        /* The input's tangent, carried from the layer below. */
        if (l > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n * kk), (int)nout,
                        (int)nin, net->cw[l], prev, (int)nin, ntk__w(net, l), (int)nin, 1.0,
                        z, (int)nout);
        if (l + 1 < L) {
            scale_by_deriv(z, ntk__tape_deriv(net, t, l), n, kk, nout);
            double *tmp = prev;
            prev = z;
            z = tmp;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < kk; c++)
            for (size_t a = 0; a < m; a++)
                out[((i0 + i) * m + a) * ldo + c0 + c] = z[(i * kk + c) * m + a];
}

ntk_status ntk__ntkop_apply(void *ud, ntk_ctx *ctx, const double *v, size_t ldv,
                            double *out, size_t ldo, size_t k)
{
    ntk__ntkop *op = ud;
    const ntk_net *net = op->net;
    size_t N = op->nsamp, m = op->m;
    double total = 2.0 * (double)op->nchunks * (double)((k + op->kcap - 1) / op->kcap);
    double done = 0;
    ntk__enter(ctx);
    if (op->report && ntk__progress(ctx, "ntk_matvec", 0, total)) return NTK_ERR_INTERRUPTED;
    for (size_t c0 = 0; c0 < k; c0 += op->kcap) {
        size_t kk = min_sz(op->kcap, k - c0);
        memset(op->u, 0, kk * net->num_params * sizeof(double));
        for (size_t ci = 0, i0 = 0; i0 < N; ci++, i0 += op->chunk) {
            size_t n = min_sz(op->chunk, N - i0);
            reverse_chunk(op, tape_for(ctx, op, ci, i0, n), i0, n, v, ldv, c0, kk);
            if (op->report && ntk__progress(ctx, "ntk_matvec", ++done, total))
                return NTK_ERR_INTERRUPTED;
        }
        for (size_t ci = 0, i0 = 0; i0 < N; ci++, i0 += op->chunk) {
            size_t n = min_sz(op->chunk, N - i0);
            forward_chunk(op, tape_for(ctx, op, ci, i0, n), i0, n, out, ldo, c0, kk);
            if (op->report && ntk__progress(ctx, "ntk_matvec", ++done, total))
                return NTK_ERR_INTERRUPTED;
        }
    }
    for (size_t r = 0; r < N * m; r++)
        for (size_t c = 0; c < k; c++)
            if (!isfinite(out[r * ldo + c]))
                return ntk__fail(ctx, NTK_ERR_NUMERIC,
                                 "the kernel product overflowed at row %zu, column %zu "
                                 "(parameters, inputs or V too large)",
                                 r + 1, c + 1);
    return NTK_OK;
}

ntk_status ntk_net_ntk_matvec(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                              const ntk_mat *v, size_t memory, ntk_mat *out)
{
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if ((st = ntk__check_mat(ctx, v, "V"))) return st;
    size_t n = x->rows * ntk_net_output_dim(net);
    if (v->rows != n)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "V must be (N m) x k = %zu x k (N = %zu samples, m = %zu outputs), "
                         "got %zux%zu",
                         n, x->rows, ntk_net_output_dim(net), v->rows, v->cols);
    if (v->cols > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "V has too many columns (%zu)", v->cols);
    if ((st = ntk__check_finite(ctx, v, "V"))) return st;
    if ((st = ntk__check_mat(ctx, out, "out"))) return st;
    if (out->rows != v->rows || out->cols != v->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "out must be %zux%zu, got %zux%zu", v->rows,
                         v->cols, out->rows, out->cols);
    if (n == 0 || v->cols == 0) return NTK_OK;
    ntk__ntkop op;
    if ((st = ntk__ntkop_init(ctx, &op, net, x, v->cols, memory))) return st;
    op.report = 1;
    st = ntk__ntkop_apply(&op, ctx, v->data, v->cols, out->data, out->cols, v->cols);
    ntk__ntkop_free(ctx, &op);
    return st;
}

ntk_status ntk_net_ntk_eigs(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x, size_t k,
                            const ntk_eigs_opts *opts, ntk_mat *values, ntk_mat *vectors,
                            ntk_mat *residuals, ntk_eigs_info *info)
{
    ntk_eigs_opts def;
    opts = ntk__eigs_opts(opts, &def);
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    size_t n = x->rows * ntk_net_output_dim(net);
    if (k < 1 || k > n)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "k must be between 1 and N m = %zu, got %zu", n, k);
    size_t b = ntk__eigs_block(opts, k);
    ntk__ntkop op;
    if ((st = ntk__ntkop_init(ctx, &op, net, x, b > k ? b : k, opts->memory))) return st;
    st = ntk_eigs(ctx, n, ntk__ntkop_apply, &op, k, opts, values, vectors, residuals, info);
    ntk__ntkop_free(ctx, &op);
    return st;
}
