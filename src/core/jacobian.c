#include "net.h"

#include <math.h>
#include <string.h>

size_t ntk__jws_bytes_per_sample(const ntk_net *net)
{
    size_t m = net->sizes[net->depth];
    return sizeof(double) *
           (2 * ntk__tape_doubles(net, 1) + m + 2 * m * net->max_width);
}

ntk_status ntk__jws_alloc(ntk_ctx *ctx, const ntk_net *net, size_t cap,
                          ntk_jws *ws)
{
    memset(ws, 0, sizeof *ws);
    size_t m = net->sizes[net->depth], rows;
    if (!ntk__mul(cap, m, &rows))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "chunk too large");
    ntk_status st = ntk__tape_alloc(ctx, net, cap, &ws->tape);
    if (st) return st;
    ws->b0 = ntk__alloc(ctx, rows, net->max_width * sizeof(double));
    ws->b1 = ntk__alloc(ctx, rows, net->max_width * sizeof(double));
    if (!ws->b0 || !ws->b1) {
        ntk__jws_free(ctx, ws);
        return NTK_ERR_NOMEM;
    }
    ws->cap = cap;
    return NTK_OK;
}

void ntk__jws_free(ntk_ctx *ctx, ntk_jws *ws)
{
    ntk__tape_free(ctx, &ws->tape);
    ntk__free(ctx, ws->b0);
    ntk__free(ctx, ws->b1);
    memset(ws, 0, sizeof *ws);
}

void ntk__jacobian_chunk(ntk_ctx *ctx, const ntk_net *net, ntk_jws *ws,
                         const double *x, size_t n, double *j, size_t ldj)
{
    ntk__tape_forward(ctx, net, x, n, &ws->tape);
    double *cur = ws->b0, *next = ws->b1;
    size_t last = net->depth - 1;
    ntk__cotangent_last(net, n, cur);
    ntk__jacobian_layer(net, &ws->tape, last, cur, j, ldj);
    for (size_t k = last; k-- > 0;) {
        double *tmp = next;
        next = cur;
        cur = tmp;
        ntk__cotangent_step(net, &ws->tape, k, next, cur);
        ntk__jacobian_layer(net, &ws->tape, k, cur, j, ldj);
    }
}

ntk_status ntk_net_jacobian(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                            ntk_mat *j)
{
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if ((st = ntk__check_mat(ctx, j, "J"))) return st;
    size_t m = net->sizes[net->depth], P = net->num_params;
    if (j->rows != x->rows * m || j->cols != P)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "J must be %zux%zu ((N*m) x P), got %zux%zu",
                         x->rows * m, P, j->rows, j->cols);
    if (x->rows == 0) return NTK_OK;
    size_t per = ntk__jws_bytes_per_sample(net);
    size_t chunk = NTK_DEFAULT_MEMORY / 4 / per;
    if (chunk < 1) chunk = 1;
    if (chunk > x->rows) chunk = x->rows;
    ntk_jws ws;
    if ((st = ntk__jws_alloc(ctx, net, chunk, &ws))) return st;
    size_t total = x->rows;
    if (ntk__progress(ctx, "jacobian", 0, (double)total)) {
        ntk__jws_free(ctx, &ws);
        return NTK_ERR_INTERRUPTED;
    }
    for (size_t i0 = 0; i0 < x->rows; i0 += chunk) {
        size_t n = x->rows - i0 < chunk ? x->rows - i0 : chunk;
        ntk__jacobian_chunk(ctx, net, &ws, x->data + i0 * x->cols, n,
                            j->data + i0 * m * P, P);
        if (ntk__progress(ctx, "jacobian", (double)(i0 + n), (double)total)) {
            ntk__jws_free(ctx, &ws);
            return NTK_ERR_INTERRUPTED;
        }
    }
    ntk__jws_free(ctx, &ws);
    size_t r, c;
    if (ntk_mat_find_nonfinite(j, &r, &c))
        return ntk__fail(ctx, NTK_ERR_NUMERIC,
                         "the Jacobian overflowed at row %zu, column %zu "
                         "(parameters or inputs too large)", r + 1, c + 1);
    return NTK_OK;
}
