#include "net.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void ntk_mlp_spec_init(ntk_mlp_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->param = NTK_PARAM_NTK;
    spec->weight_std = NTK_DEFAULT_WEIGHT_STD;
    spec->bias_std = NTK_DEFAULT_BIAS_STD;
}

void ntk_net_destroy(ntk_ctx *ctx, ntk_net *net)
{
    if (!net) return;
    ntk__free(ctx, net->sizes);
    ntk__free(ctx, net->offset);
    ntk__free(ctx, net->acts);
    ntk__free(ctx, net->cw);
    ntk__free(ctx, net->cb);
    ntk__free(ctx, net->theta);
    ntk__free(ctx, net);
}

/* Allocate a network's arrays and fill everything but theta's values. */
static ntk_status net_alloc(ntk_ctx *ctx, size_t depth, const size_t *sizes,
                            const ntk_act *acts, ntk_param param, double wstd,
                            double bstd, ntk_net **out)
{
    *out = NULL;
    if (depth < 1 || depth > 100000)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "sizes must list at least an input and an output width");
    if (!sizes) return ntk__fail(ctx, NTK_ERR_INVALID, "sizes is NULL");
    if (!isfinite(wstd) || wstd < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "weight_std must be finite and >= 0, got %g", wstd);
    if (!isfinite(bstd) || bstd < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "bias_std must be finite and >= 0, got %g", bstd);
    if ((unsigned)param > NTK_PARAM_STANDARD)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown parameterization %d",
                         (int)param);
    size_t total = 0, widest = 0;
    for (size_t k = 0; k <= depth; k++) {
        if (sizes[k] == 0 || sizes[k] > (size_t)INT32_MAX)
            return ntk__fail(ctx, NTK_ERR_INVALID,
                             "sizes[%zu] must be a positive width below 2^31, got %zu",
                             k + 1, sizes[k]);
        if (sizes[k] > widest) widest = sizes[k];
    }
    for (size_t k = 0; k < depth; k++) {
        size_t w, layer;
        if (!ntk__mul(sizes[k + 1], sizes[k], &w) || w > (size_t)-1 - sizes[k + 1] ||
            (layer = w + sizes[k + 1]) > (size_t)-1 / 16 - total)
            return ntk__fail(ctx, NTK_ERR_OVERFLOW,
                             "the network has too many parameters");
        total += layer;
    }
    for (size_t k = 0; acts && k + 1 < depth; k++)
        if ((unsigned)acts[k] >= NTK_ACT_COUNT)
            return ntk__fail(ctx, NTK_ERR_INVALID,
                             "unknown activation %d for hidden layer %zu",
                             (int)acts[k], k + 1);

    ntk_net *net = ntk__calloc(ctx, 1, sizeof *net);
    if (!net) return NTK_ERR_NOMEM;
    net->depth = depth;
    net->num_params = total;
    net->max_width = widest;
    net->param = param;
    net->weight_std = wstd;
    net->bias_std = bstd;
    net->sizes = ntk__alloc(ctx, depth + 1, sizeof *net->sizes);
    net->offset = ntk__alloc(ctx, depth + 1, sizeof *net->offset);
    net->acts = ntk__alloc(ctx, depth, sizeof *net->acts);
    net->cw = ntk__alloc(ctx, depth, sizeof *net->cw);
    net->cb = ntk__alloc(ctx, depth, sizeof *net->cb);
    net->theta = ntk__alloc(ctx, total, sizeof *net->theta);
    if (!net->sizes || !net->offset || !net->acts || !net->cw || !net->cb ||
        !net->theta) {
        ntk_net_destroy(ctx, net);
        return NTK_ERR_NOMEM;
    }
    memcpy(net->sizes, sizes, (depth + 1) * sizeof *sizes);
    size_t off = 0;
    for (size_t k = 0; k < depth; k++) {
        net->offset[k] = off;
        off += sizes[k + 1] * sizes[k] + sizes[k + 1];
        net->acts[k] = (k + 1 == depth) ? NTK_ACT_IDENTITY
                       : acts           ? acts[k]
                                        : NTK_ACT_RELU;
        if (param == NTK_PARAM_NTK) {
            net->cw[k] = wstd / sqrt((double)sizes[k]);
            net->cb[k] = bstd;
        } else {
            net->cw[k] = 1.0;
            net->cb[k] = 1.0;
        }
    }
    net->offset[depth] = off;
    *out = net;
    return NTK_OK;
}

ntk_status ntk_mlp_create(ntk_ctx *ctx, const ntk_mlp_spec *spec, ntk_net **out)
{
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is NULL");
    *out = NULL;
    if (!spec) return ntk__fail(ctx, NTK_ERR_INVALID, "spec is NULL");
    ntk_net *net;
    ntk_status st = net_alloc(ctx, spec->depth, spec->sizes, spec->acts,
                              spec->param, spec->weight_std, spec->bias_std, &net);
    if (st) return st;
    ntk_rng rng;
    ntk_rng_seed(&rng, spec->seed);
    for (size_t k = 0; k < net->depth; k++) {
        double sw = 1.0, sb = 1.0;
        if (net->param == NTK_PARAM_STANDARD) {
            sw = net->weight_std / sqrt((double)net->sizes[k]);
            sb = net->bias_std;
        }
        double *w = net->theta + net->offset[k];
        size_t nw = net->sizes[k + 1] * net->sizes[k];
        for (size_t i = 0; i < nw; i++) w[i] = sw * ntk_rng_normal(&rng);
        for (size_t i = 0; i < net->sizes[k + 1]; i++)
            w[nw + i] = sb * ntk_rng_normal(&rng);
    }
    *out = net;
    return NTK_OK;
}

ntk_status ntk_net_copy(ntk_ctx *ctx, const ntk_net *src, ntk_net **out)
{
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is NULL");
    *out = NULL;
    if (!src) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    ntk_net *net;
    ntk_status st = net_alloc(ctx, src->depth, src->sizes, src->acts, src->param,
                              src->weight_std, src->bias_std, &net);
    if (st) return st;
    memcpy(net->theta, src->theta, src->num_params * sizeof(double));
    *out = net;
    return NTK_OK;
}

size_t ntk_net_depth(const ntk_net *net) { return net->depth; }
size_t ntk_net_width(const ntk_net *net, size_t l)
{
    return l <= net->depth ? net->sizes[l] : 0;
}
size_t ntk_net_input_dim(const ntk_net *net) { return net->sizes[0]; }
size_t ntk_net_output_dim(const ntk_net *net) { return net->sizes[net->depth]; }
size_t ntk_net_num_params(const ntk_net *net) { return net->num_params; }
ntk_act ntk_net_act(const ntk_net *net, size_t l)
{
    return (l >= 1 && l <= net->depth) ? net->acts[l - 1] : NTK_ACT_IDENTITY;
}
ntk_param ntk_net_param(const ntk_net *net) { return net->param; }
double ntk_net_weight_std(const ntk_net *net) { return net->weight_std; }
double ntk_net_bias_std(const ntk_net *net) { return net->bias_std; }
void ntk_net_layer_scales(const ntk_net *net, size_t l, double *c_w, double *c_b)
{
    size_t k = (l >= 1 && l <= net->depth) ? l - 1 : 0;
    if (c_w) *c_w = net->cw[k];
    if (c_b) *c_b = net->cb[k];
}
size_t ntk_net_layer_offset(const ntk_net *net, size_t l)
{
    return (l >= 1 && l <= net->depth) ? net->offset[l - 1] : net->num_params;
}
const double *ntk_net_params(const ntk_net *net) { return net->theta; }

ntk_status ntk_net_set_params(ntk_ctx *ctx, ntk_net *net, const double *theta,
                              size_t count)
{
    if (count != net->num_params)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "expected %zu parameters, got %zu", net->num_params,
                         count);
    ntk_mat v = {count, 1, (double *)theta};
    ntk_status st = ntk__check_mat(ctx, &v, "theta");
    if (!st) st = ntk__check_finite(ctx, &v, "theta");
    if (st) return st;
    memcpy(net->theta, theta, count * sizeof(double));
    return NTK_OK;
}

static ntk_status check_layer_index(ntk_ctx *ctx, const ntk_net *net, size_t l)
{
    if (l < 1 || l > net->depth)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "layer must be between 1 and %zu, got %zu", net->depth, l);
    return NTK_OK;
}

ntk_status ntk_net_get_layer(ntk_ctx *ctx, const ntk_net *net, size_t l,
                             ntk_mat *w, ntk_mat *b)
{
    ntk_status st = check_layer_index(ctx, net, l);
    if (st) return st;
    size_t k = l - 1, rows = net->sizes[l], cols = net->sizes[k];
    if (w) {
        if ((st = ntk__check_mat(ctx, w, "W"))) return st;
        if (w->rows != rows || w->cols != cols)
            return ntk__fail(ctx, NTK_ERR_SHAPE, "W must be %zux%zu, got %zux%zu",
                             rows, cols, w->rows, w->cols);
        memcpy(w->data, ntk__w(net, k), rows * cols * sizeof(double));
    }
    if (b) {
        if ((st = ntk__check_mat(ctx, b, "b"))) return st;
        if (b->rows * b->cols != rows || (b->rows != 1 && b->cols != 1))
            return ntk__fail(ctx, NTK_ERR_SHAPE, "b must be %zux1, got %zux%zu",
                             rows, b->rows, b->cols);
        memcpy(b->data, ntk__b(net, k), rows * sizeof(double));
    }
    return NTK_OK;
}

ntk_status ntk_net_set_layer(ntk_ctx *ctx, ntk_net *net, size_t l,
                             const ntk_mat *w, const ntk_mat *b)
{
    ntk_status st = check_layer_index(ctx, net, l);
    if (st) return st;
    size_t k = l - 1, rows = net->sizes[l], cols = net->sizes[k];
    if (w) {
        if ((st = ntk__check_mat(ctx, w, "W"))) return st;
        if (w->rows != rows || w->cols != cols)
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "W for layer %zu must be %zux%zu (n_out x n_in), got %zux%zu",
                             l, rows, cols, w->rows, w->cols);
        if ((st = ntk__check_finite(ctx, w, "W"))) return st;
    }
    if (b) {
        if ((st = ntk__check_mat(ctx, b, "b"))) return st;
        if (b->rows * b->cols != rows || (b->rows != 1 && b->cols != 1))
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "b for layer %zu must be %zux1, got %zux%zu", l, rows,
                             b->rows, b->cols);
        if ((st = ntk__check_finite(ctx, b, "b"))) return st;
    }
    if (w) memcpy(net->theta + net->offset[k], w->data, rows * cols * sizeof(double));
    if (b) memcpy(net->theta + net->offset[k] + rows * cols, b->data,
                  rows * sizeof(double));
    return NTK_OK;
}

ntk_status ntk__check_input(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                            const char *name)
{
    ntk_status st = ntk__check_mat(ctx, x, name);
    if (st) return st;
    if (x->cols != net->sizes[0])
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "%s must be N x %zu (one sample per row), got %zux%zu",
                         name, net->sizes[0], x->rows, x->cols);
    if (x->rows > (size_t)INT32_MAX / (net->sizes[net->depth] + 1))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "%s has too many rows (%zu)",
                         name, x->rows);
    return ntk__check_finite(ctx, x, name);
}

/* ---- forward and backward building blocks ---- */

size_t ntk__tape_doubles(const ntk_net *net, size_t n)
{
    size_t total = 0;
    for (size_t k = 0; k + 1 < net->depth; k++) total += n * net->sizes[k + 1];
    return total;
}

ntk_status ntk__tape_alloc(ntk_ctx *ctx, const ntk_net *net, size_t n,
                           ntk_tape *t)
{
    memset(t, 0, sizeof *t);
    size_t total = ntk__tape_doubles(net, n);
    t->a = ntk__alloc(ctx, total, sizeof(double));
    t->d = ntk__alloc(ctx, total, sizeof(double));
    t->out = ntk__alloc(ctx, n, net->sizes[net->depth] * sizeof(double));
    if (!t->a || !t->d || !t->out) {
        ntk__tape_free(ctx, t);
        return NTK_ERR_NOMEM;
    }
    return NTK_OK;
}

void ntk__tape_free(ntk_ctx *ctx, ntk_tape *t)
{
    ntk__free(ctx, t->a);
    ntk__free(ctx, t->d);
    ntk__free(ctx, t->out);
    memset(t, 0, sizeof *t);
}

static size_t hidden_offset(const ntk_net *net, size_t n, size_t k)
{
    size_t off = 0;
    for (size_t j = 0; j < k; j++) off += n * net->sizes[j + 1];
    return off;
}

const double *ntk__tape_input(const ntk_net *net, const ntk_tape *t, size_t k)
{
    return k == 0 ? t->x : t->a + hidden_offset(net, t->n, k - 1);
}

const double *ntk__tape_deriv(const ntk_net *net, const ntk_tape *t, size_t k)
{
    return t->d + hidden_offset(net, t->n, k);
}

/* z = cw W a_in + cb b for n rows, into z (n x sizes[k+1]). */
static void dense(const ntk_net *net, size_t k, const double *in, size_t n,
                  double *z)
{
    size_t nin = net->sizes[k], nout = net->sizes[k + 1];
    const double *b = ntk__b(net, k);
    double cb = net->cb[k];
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < nout; r++) z[i * nout + r] = cb * b[r];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nout,
                (int)nin, net->cw[k], in, (int)nin, ntk__w(net, k), (int)nin, 1.0,
                z, (int)nout);
}

void ntk__tape_forward(ntk_ctx *ctx, const ntk_net *net, const double *x,
                       size_t n, ntk_tape *t)
{
    ntk__enter(ctx);
    t->n = n;
    t->x = x;
    const double *in = x;
    double *a = t->a, *d = t->d;
    for (size_t k = 0; k + 1 < net->depth; k++) {
        size_t width = net->sizes[k + 1];
        dense(net, k, in, n, a);
        ntk_act_apply(net->acts[k], a, n * width, a, d);
        in = a;
        a += n * width;
        d += n * width;
    }
    if (t->out) dense(net, net->depth - 1, in, n, t->out);
}

void ntk__cotangent_last(const ntk_net *net, size_t n, double *b)
{
    size_t m = net->sizes[net->depth];
    memset(b, 0, n * m * m * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; a < m; a++) b[(i * m + a) * m + a] = 1.0;
}

void ntk__cotangent_step(const ntk_net *net, const ntk_tape *t, size_t k,
                         const double *b_next, double *b)
{
    size_t n = t->n, m = net->sizes[net->depth];
    size_t w = net->sizes[k + 1], wn = net->sizes[k + 2];
    const double *deriv = ntk__tape_deriv(net, t, k);
    if (k + 2 == net->depth) {
        /* B_{L-1} is the identity per sample, so B_{L-2} rows are W_{L-1}
         * rows scaled: no product needed. */
        const double *wl = ntk__w(net, k + 1);
        double cw = net->cw[k + 1];
        for (size_t i = 0; i < n; i++)
            for (size_t a = 0; a < m; a++) {
                double *row = b + (i * m + a) * w;
                const double *wr = wl + a * w, *dr = deriv + i * w;
                for (size_t r = 0; r < w; r++) row[r] = cw * wr[r] * dr[r];
            }
        return;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(n * m), (int)w,
                (int)wn, net->cw[k + 1], b_next, (int)wn, ntk__w(net, k + 1),
                (int)w, 0.0, b, (int)w);
    for (size_t i = 0; i < n; i++) {
        const double *dr = deriv + i * w;
        for (size_t a = 0; a < m; a++) {
            double *row = b + (i * m + a) * w;
            for (size_t r = 0; r < w; r++) row[r] *= dr[r];
        }
    }
}

void ntk__jacobian_layer(const ntk_net *net, const ntk_tape *t, size_t k,
                         const double *bk, double *j, size_t ldj)
{
    size_t n = t->n, m = net->sizes[net->depth];
    size_t nin = net->sizes[k], nout = net->sizes[k + 1];
    const double *in = ntk__tape_input(net, t, k);
    double cw = net->cw[k], cb = net->cb[k];
    size_t off = net->offset[k], nw = nout * nin;
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 0; a < m; a++) {
            size_t row = i * m + a;
            double *jw = j + row * ldj + off;
            const double *br = bk + row * nout;
            /* d f_a / d W[r][c] = cw B[r] a_in[c]: a rank-one block. */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nout,
                        (int)nin, 1, cw, br, 1, in + i * nin, (int)nin, 0.0, jw,
                        (int)nin);
            double *jb = jw + nw;
            for (size_t r = 0; r < nout; r++) jb[r] = cb * br[r];
        }
    }
}

ntk_status ntk_net_forward(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                           ntk_mat *y)
{
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if ((st = ntk__check_mat(ctx, y, "Y"))) return st;
    size_t m = net->sizes[net->depth];
    if (y->rows != x->rows || y->cols != m)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "Y must be %zux%zu, got %zux%zu",
                         x->rows, m, y->rows, y->cols);
    if (x->rows == 0) return NTK_OK;
    /* Forward only needs two layers at a time, but chunking keeps the
     * buffers bounded for large N. */
    size_t chunk = x->rows;
    size_t per_row = 2 * net->max_width;
    size_t cap = (NTK_DEFAULT_MEMORY / sizeof(double)) / per_row;
    if (cap < 1) cap = 1;
    if (chunk > cap) chunk = cap;
    double *buf = ntk__alloc(ctx, chunk, per_row * sizeof(double));
    if (!buf) return NTK_ERR_NOMEM;
    ntk__enter(ctx);
    for (size_t i0 = 0; i0 < x->rows; i0 += chunk) {
        size_t n = x->rows - i0 < chunk ? x->rows - i0 : chunk;
        const double *in = x->data + i0 * x->cols;
        double *cur = buf, *other = buf + chunk * net->max_width;
        for (size_t k = 0; k + 1 < net->depth; k++) {
            dense(net, k, in, n, cur);
            ntk_act_apply(net->acts[k], cur, n * net->sizes[k + 1], cur, NULL);
            in = cur;
            double *tmp = cur;
            cur = other;
            other = tmp;
        }
        dense(net, net->depth - 1, in, n, y->data + i0 * m);
    }
    ntk__free(ctx, buf);
    size_t r, c;
    if (ntk_mat_find_nonfinite(y, &r, &c))
        return ntk__fail(ctx, NTK_ERR_NUMERIC,
                         "the output overflowed to %s at row %zu, column %zu "
                         "(parameters or inputs too large)",
                         isnan(y->data[r * m + c]) ? "NaN" : "Inf", r + 1, c + 1);
    return NTK_OK;
}
