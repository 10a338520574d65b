/*
 * The NTK by contracting explicit Jacobian chunks: K_IJ = J_I J_J^T for
 * sample chunks I, J. Costs (N m)^2 P flops; the reference method and the
 * fallback when the structured one does not apply.
 */
#include "kernel.h"

#include <cblas.h>
#include <string.h>

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Bytes of one sample's Jacobian rows; doubles so that absurd sizes
 * saturate instead of wrapping. */
static double jac_bytes(const ntk_net *net)
{
    return 8.0 * (double)ntk_net_output_dim(net) * (double)net->num_params;
}

static size_t to_size(double v)
{
    return v >= (double)((size_t)-1) ? (size_t)-1 : (size_t)v;
}

void ntk__plan_jacobian(const ntk_net *net, size_t n1, size_t n2, bool sym,
                        ntk_mode mode, size_t memory, size_t chunk,
                        ntk_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->method = NTK_METHOD_JACOBIAN;
    double m = (double)ntk_net_output_dim(net), P = (double)net->num_params;
    double jac = jac_bytes(net), ws = (double)ntk__jws_bytes_per_sample(net);
    size_t nmax = n1 > n2 ? n1 : n2;
    /* One Jacobian buffer when a single chunk covers a symmetric request,
     * else a row chunk and a column chunk. */
    size_t c = chunk;
    if (c == 0) {
        double fit = (double)memory / (jac + ws);
        if (mode == NTK_MODE_BLOCKS) c = to_size(fit);
        else if (sym && fit >= (double)n1) c = n1;
        else c = to_size((double)memory / (2 * jac + ws));
    }
    if (c < 1) c = 1;
    if (c > nmax) c = nmax;
    bool one = (sym && c >= n1) || mode == NTK_MODE_BLOCKS;
    plan->chunk = c;
    /* One or two chunk Jacobians, and the scratch to build one chunk. */
    plan->memory = to_size(((one ? 1 : 2) * jac + ws) * (double)c);
    double jac_cost = 2.0 * m * P; /* per sample: build and backward, roughly */
    double contract;
    double N1 = (double)n1, N2 = (double)n2;
    switch (mode) {
    case NTK_MODE_BLOCKS: contract = N1 * m * m * P; break;
    case NTK_MODE_FULL:
        contract = sym ? N1 * m * N1 * m * P : 2.0 * N1 * m * N2 * m * P;
        break;
    default: /* trace and outputs: N1 x N2 products of length m P */
        contract = sym ? N1 * N1 * m * P : 2.0 * N1 * N2 * m * P;
        break;
    }
    double chunks1 = (double)((n1 + c - 1) / c);
    double rebuilt = one ? N1 : N1 + (sym ? chunks1 * N1 / 2 : chunks1 * N2);
    plan->flops = contract + rebuilt * jac_cost;
}

/* Contract a row chunk with a column chunk into the outputs.
 * diag: the same chunk on both sides of a symmetric kernel (upper only). */
static void contract(const ntk_kreq *rq, const double *ji, size_t i0, size_t ni,
                     const double *jj, size_t j0, size_t nj, bool diag)
{
    const ntk_net *net = rq->net;
    size_t m = ntk_net_output_dim(net), P = net->num_params;
    double s = rq->scale;
    switch (rq->mode) {
    case NTK_MODE_FULL: {
        size_t ld = rq->out[0].cols;
        double *c = rq->out[0].data + i0 * m * ld + j0 * m;
        if (diag)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)(ni * m),
                        (int)P, s, ji, (int)P, 0.0, c, (int)ld);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(ni * m),
                        (int)(nj * m), (int)P, s, ji, (int)P, jj, (int)P, 0.0, c,
                        (int)ld);
        break;
    }
    case NTK_MODE_TRACE: {
        /* Rows i*m..i*m+m-1 are contiguous, so a sample's m rows form one
         * vector of length m P and the trace is their dot product. */
        size_t ld = rq->out[0].cols, k = m * P;
        double *c = rq->out[0].data + i0 * ld + j0;
        if (diag)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)ni, (int)k, s,
                        ji, (int)k, 0.0, c, (int)ld);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj,
                        (int)k, s, ji, (int)k, jj, (int)k, 0.0, c, (int)ld);
        break;
    }
    case NTK_MODE_OUTPUTS:
        for (size_t a = 0; a < m; a++) {
            size_t ld = rq->out[a].cols;
            double *c = rq->out[a].data + i0 * ld + j0;
            if (diag)
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)ni, (int)P,
                            s, ji + a * P, (int)(m * P), 0.0, c, (int)ld);
            else
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj,
                            (int)P, s, ji + a * P, (int)(m * P), jj + a * P,
                            (int)(m * P), 0.0, c, (int)ld);
        }
        break;
    case NTK_MODE_BLOCKS:
        for (size_t i = 0; i < ni; i++) {
            double *c = rq->out[0].data + (i0 + i) * m * m;
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)P, s,
                        ji + i * m * P, (int)P, 0.0, c, (int)m);
            ntk__mirror_upper(c, m, m);
        }
        break;
    }
}

ntk_status ntk__ntk_jacobian(ntk_ctx *ctx, const ntk_kreq *rq)
{
    const ntk_net *net = rq->net;
    size_t m = ntk_net_output_dim(net), P = net->num_params, rowlen;
    if (!ntk__mul(m, P, &rowlen) || rowlen > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_UNSUPPORTED,
                         "the Jacobian method needs m * P below 2^31 (m = %zu, P = %zu); "
                         "use method 'structured'", m, P);
    size_t n1 = rq->x1->rows, n2 = rq->x2->rows;
    size_t c = rq->chunk ? rq->chunk : 1;
    bool one = (rq->sym && c >= n1) || rq->mode == NTK_MODE_BLOCKS;
    size_t cnt;
    ntk_status st = ntk_mat_count(ctx, c * m, P, &cnt);
    if (st) return st;
    double *ji = ntk__alloc(ctx, cnt, sizeof(double));
    double *jj = one ? NULL : ntk__alloc(ctx, cnt, sizeof(double));
    ntk_jws ws;
    memset(&ws, 0, sizeof ws);
    if (!ji || (!one && !jj) || (st = ntk__jws_alloc(ctx, net, c, &ws))) {
        ntk__free(ctx, ji);
        ntk__free(ctx, jj);
        return st ? st : NTK_ERR_NOMEM;
    }
    size_t nc1 = (n1 + c - 1) / c, nc2 = (n2 + c - 1) / c;
    double total = rq->mode == NTK_MODE_BLOCKS ? (double)nc1
                   : rq->sym                   ? (double)nc1 * (nc1 + 1) / 2
                                               : (double)nc1 * nc2;
    double done = 0;
    size_t d1 = rq->x1->cols;
    st = NTK_OK;
    if (ntk__progress(ctx, "ntk", 0, total)) st = NTK_ERR_INTERRUPTED;
    for (size_t bi = 0; bi < nc1 && !st; bi++) {
        size_t i0 = bi * c, ni = min_sz(c, n1 - i0);
        ntk__jacobian_chunk(ctx, net, &ws, rq->x1->data + i0 * d1, ni, ji, P);
        if (rq->mode == NTK_MODE_BLOCKS) {
            contract(rq, ji, i0, ni, NULL, 0, 0, true);
            if (ntk__progress(ctx, "ntk", ++done, total)) st = NTK_ERR_INTERRUPTED;
            continue;
        }
        for (size_t bj = rq->sym ? bi : 0; bj < nc2 && !st; bj++) {
            size_t j0 = bj * c, nj = min_sz(c, n2 - j0);
            if (rq->sym && bj == bi) {
                contract(rq, ji, i0, ni, ji, j0, nj, true);
            } else {
                ntk__jacobian_chunk(ctx, net, &ws, rq->x2->data + j0 * d1, nj, jj, P);
                contract(rq, ji, i0, ni, jj, j0, nj, false);
            }
            if (ntk__progress(ctx, "ntk", ++done, total)) st = NTK_ERR_INTERRUPTED;
        }
    }
    ntk__jws_free(ctx, &ws);
    ntk__free(ctx, ji);
    ntk__free(ctx, jj);
    if (st) return st;
    if (rq->sym && rq->mode != NTK_MODE_BLOCKS)
        for (size_t a = 0; a < rq->count; a++)
            ntk__mirror_upper_par(ctx, rq->out[a].data, rq->out[a].rows, rq->out[a].cols);
    return NTK_OK;
}
