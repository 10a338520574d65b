/* Losses, their gradients by one batched reverse pass, optimizers and the
 * training loop; also the kernel-distance measure used to track drift. */
#include "net.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- names ---- */

static const char *const loss_names[] = {"mse", "cross_entropy"};
static const char *const opt_names[] = {"sgd", "momentum", "adam"};

const char *ntk_loss_name(ntk_loss loss)
{
    return (unsigned)loss < 2 ? loss_names[loss] : "?";
}

ntk_status ntk_loss_parse(ntk_ctx *ctx, const char *name, ntk_loss *out)
{
    int i = ntk__lookup(loss_names, 2, name);
    if (i < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown loss '%s' (expected mse or cross_entropy)",
                         name ? name : "(null)");
    *out = (ntk_loss)i;
    return NTK_OK;
}

const char *ntk_optimizer_name(ntk_optimizer opt)
{
    return (unsigned)opt < 3 ? opt_names[opt] : "?";
}

ntk_status ntk_optimizer_parse(ntk_ctx *ctx, const char *name, ntk_optimizer *out)
{
    int i = ntk__lookup(opt_names, 3, name);
    if (i < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "unknown optimizer '%s' (expected sgd, momentum or adam)",
                         name ? name : "(null)");
    *out = (ntk_optimizer)i;
    return NTK_OK;
}

/* ---- validation ---- */

/* Y against the loss and the net's m outputs for N samples; sets
 * *ycols (m, or 1 for class indices). */
static ntk_status check_targets(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                                const ntk_mat *y, size_t n, size_t *ycols)
{
    size_t m = net->sizes[net->depth];
    ntk_status st = ntk__check_mat(ctx, y, "Y");
    if (st) return st;
    if ((unsigned)loss > NTK_LOSS_CROSS_ENTROPY)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown loss %d", (int)loss);
    if (loss == NTK_LOSS_MSE) {
        if (y->rows != n || y->cols != m)
            return ntk__fail(ctx, NTK_ERR_SHAPE,
                             "Y must be %zux%zu (one target row per sample) for mse, got %zux%zu",
                             n, m, y->rows, y->cols);
        *ycols = m;
        return ntk__check_finite(ctx, y, "Y");
    }
    if (m < 2)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "cross_entropy needs a network with at least 2 outputs "
                         "(a softmax over 1 output is constant), got %zu",
                         m);
    if (y->rows != n || (y->cols != m && y->cols != 1))
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "Y must be %zux%zu (target distributions) or %zux1 (class "
                         "indices) for cross_entropy, got %zux%zu",
                         n, m, n, y->rows, y->cols);
    if ((st = ntk__check_finite(ctx, y, "Y"))) return st;
    *ycols = y->cols;
    size_t count = y->rows * y->cols;
    for (size_t k = 0; k < count; k++) {
        double v = y->data[k];
        if (y->cols == 1) {
            if (v != floor(v) || v < 0 || v >= (double)m)
                return ntk__fail(ctx, NTK_ERR_INVALID,
                                 "Y must hold class indices 0..%zu, got %g at row %zu",
                                 m - 1, v, k + 1);
        } else if (v < 0) {
            return ntk__fail(ctx, NTK_ERR_INVALID,
                             "Y must hold non-negative targets for cross_entropy, got "
                             "%g at row %zu, column %zu",
                             v, k / m + 1, k % m + 1);
        }
    }
    return NTK_OK;
}

/* A gradient-shaped output: P x 1 or 1 x P. */
static ntk_status check_param_vector(ntk_ctx *ctx, const ntk_net *net,
                                     const ntk_mat *g, const char *name)
{
    ntk_status st = ntk__check_mat(ctx, g, name);
    if (st) return st;
    size_t P = net->num_params;
    if (!((g->rows == P && g->cols == 1) || (g->rows == 1 && g->cols == P)))
        return ntk__fail(ctx, NTK_ERR_SHAPE, "%s must be %zux1, got %zux%zu", name,
                         P, g->rows, g->cols);
    return NTK_OK;
}

/* ---- the reverse pass ---- */

/* Scratch for loss and gradient evaluations of up to cap samples. */
typedef struct bp_ws {
    size_t cap;
    ntk_tape tape;
    double *g;      /* cap x m, the output cotangent */
    double *d0, *d1; /* cap x max_width, cotangents of hidden layers */
    double *ones;   /* cap ones, for bias gradients */
} bp_ws;

static void bp_free(ntk_ctx *ctx, bp_ws *ws)
{
    ntk__tape_free(ctx, &ws->tape);
    ntk__free(ctx, ws->g);
    ntk__free(ctx, ws->d0);
    ntk__free(ctx, ws->d1);
    ntk__free(ctx, ws->ones);
    memset(ws, 0, sizeof *ws);
}

/* Bytes per sample of bp_ws. */
static size_t bp_bytes_per_sample(const ntk_net *net)
{
    size_t m = net->sizes[net->depth];
    return sizeof(double) *
           (2 * ntk__tape_doubles(net, 1) + 2 * m + 2 * net->max_width + 1);
}

/* Scratch for chunks of at most min(n, memory / per-sample) samples. */
static ntk_status bp_alloc(ntk_ctx *ctx, const ntk_net *net, size_t n,
                           size_t memory, bp_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    if (!memory) memory = NTK_DEFAULT_MEMORY;
    size_t cap = memory / bp_bytes_per_sample(net);
    if (cap < 1) cap = 1;
    if (cap > n) cap = n;
    if (cap < 1) cap = 1;
    size_t m = net->sizes[net->depth];
    ws->cap = cap;
    ntk_status st = ntk__tape_alloc(ctx, net, cap, &ws->tape);
    if (st) return st;
    ws->g = ntk__alloc(ctx, cap, m * sizeof(double));
    ws->d0 = ntk__alloc(ctx, cap, net->max_width * sizeof(double));
    ws->d1 = ntk__alloc(ctx, cap, net->max_width * sizeof(double));
    ws->ones = ntk__alloc(ctx, cap, sizeof(double));
    if (!ws->g || !ws->d0 || !ws->d1 || !ws->ones) {
        bp_free(ctx, ws);
        return NTK_ERR_NOMEM;
    }
    for (size_t i = 0; i < cap; i++) ws->ones[i] = 1.0;
    return NTK_OK;
}

/*
 * Loss terms of n rows with outputs f (n x m) and targets y (n x ycols):
 * returns their sum; if g is non-NULL writes scale * dloss_i/df_i into it.
 */
static double loss_rows(ntk_loss loss, size_t n, size_t m, const double *f,
                        const double *y, size_t ycols, double scale, double *g)
{
    double sum = 0;
    if (loss == NTK_LOSS_MSE) {
        for (size_t k = 0; k < n * m; k++) {
            double r = f[k] - y[k];
            sum += 0.5 * r * r;
            if (g) g[k] = scale * r;
        }
        return sum;
    }
    for (size_t i = 0; i < n; i++) {
        const double *fi = f + i * m;
        double mx = fi[0];
        for (size_t a = 1; a < m; a++)
            if (fi[a] > mx) mx = fi[a];
        double z = 0;
        for (size_t a = 0; a < m; a++) z += exp(fi[a] - mx);
        double lse = mx + log(z);
        if (ycols == 1) {
            size_t c = (size_t)y[i];
            sum += lse - fi[c];
            if (g) {
                for (size_t a = 0; a < m; a++) g[i * m + a] = scale * exp(fi[a] - lse);
                g[i * m + c] -= scale;
            }
        } else {
            const double *yi = y + i * m;
            double mass = 0;
            for (size_t a = 0; a < m; a++) {
                /* each term is >= 0, so no cancellation */
                if (yi[a] != 0) sum += yi[a] * (lse - fi[a]);
                mass += yi[a];
            }
            if (g)
                for (size_t a = 0; a < m; a++)
                    g[i * m + a] = scale * (mass * exp(fi[a] - lse) - yi[a]);
        }
    }
    return sum;
}

/*
 * Back-propagate the output cotangent ws->g of the n samples on the tape
 * and write (beta = 0) or add (beta = 1) sum_i Df(x_i) g_i into grad.
 */
static void backprop(const ntk_net *net, bp_ws *ws, size_t n, double beta,
                     double *grad)
{
    const ntk_tape *t = &ws->tape;
    const double *delta = ws->g;
    double *bufs[2] = {ws->d0, ws->d1};
    int which = 0;
    for (size_t kk = net->depth; kk-- > 0;) {
        size_t nin = net->sizes[kk], nout = net->sizes[kk + 1];
        const double *in = ntk__tape_input(net, t, kk);
        double *gw = grad + net->offset[kk], *gb = gw + nout * nin;
        /* dW = c_w Delta^T A_in, the sum over the batch in one product. */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nout, (int)nin,
                    (int)n, net->cw[kk], delta, (int)nout, in, (int)nin, beta, gw,
                    (int)nin);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)nout, net->cb[kk], delta,
                    (int)nout, ws->ones, 1, beta, gb, 1);
        if (kk == 0) break;
        /* Delta_{k-1} = (c_w Delta_k W_k) * phi'(z_{k-1}) */
        double *next = bufs[which];
        which ^= 1;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)nin,
                    (int)nout, net->cw[kk], delta, (int)nout, ntk__w(net, kk), (int)nin,
                    0.0, next, (int)nin);
        const double *deriv = ntk__tape_deriv(net, t, kk - 1);
        for (size_t k = 0; k < n * nin; k++) next[k] *= deriv[k];
        delta = next;
    }
}

/*
 * Over the N rows of x and y (ycols per row, NULL for a vjp whose cotangent
 * rows come from gin), in chunks: the loss sum into *sum (if non-NULL) and,
 * if grad is non-NULL, the gradient of gscale * (loss sum) (or the vjp)
 * into grad. Reports progress as `task` unless task is NULL.
 */
static ntk_status sweep(ntk_ctx *ctx, const ntk_net *net, bp_ws *ws, ntk_loss loss,
                        const double *x, const double *y, size_t ycols,
                        const double *gin, size_t N, double gscale, double *sum,
                        double *grad, const char *task)
{
    size_t n0 = net->sizes[0], m = net->sizes[net->depth];
    double total = 0;
    if (task && ntk__progress(ctx, task, 0, (double)N)) return NTK_ERR_INTERRUPTED;
    for (size_t i0 = 0; i0 < N; i0 += ws->cap) {
        size_t n = N - i0 < ws->cap ? N - i0 : ws->cap;
        ntk__tape_forward(ctx, net, x + i0 * n0, n, &ws->tape);
        if (gin) {
            memcpy(ws->g, gin + i0 * m, n * m * sizeof(double));
        } else {
            total += loss_rows(loss, n, m, ws->tape.out, y + i0 * ycols, ycols, gscale,
                               grad ? ws->g : NULL);
        }
        if (grad) backprop(net, ws, n, i0 == 0 ? 0.0 : 1.0, grad);
        if (task && ntk__progress(ctx, task, (double)(i0 + n), (double)N))
            return NTK_ERR_INTERRUPTED;
    }
    if (sum) *sum = total;
    return NTK_OK;
}

static int any_nonfinite(const double *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k])) return 1;
    return 0;
}

static ntk_status loss_grad(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                            const ntk_mat *x, const ntk_mat *y, ntk_mat *grad,
                            double *value)
{
    ntk_status st;
    size_t ycols = 0;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if (x->rows == 0)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "X must have at least one row (the loss is a mean over samples)");
    if ((st = check_targets(ctx, net, loss, y, x->rows, &ycols))) return st;
    if (grad && (st = check_param_vector(ctx, net, grad, "grad"))) return st;
    bp_ws ws;
    if ((st = bp_alloc(ctx, net, x->rows, 0, &ws))) return st;
    double N = (double)x->rows, sum = 0;
    st = sweep(ctx, net, &ws, loss, x->data, y->data, ycols, NULL, x->rows, 1.0 / N,
               &sum, grad ? grad->data : NULL, grad ? "grad" : "loss");
    bp_free(ctx, &ws);
    if (st) return st;
    if (!isfinite(sum) || (grad && any_nonfinite(grad->data, net->num_params)))
        return ntk__fail(ctx, NTK_ERR_NUMERIC,
                         "the loss or its gradient overflowed (parameters or inputs too large)");
    if (value) *value = sum / N;
    return NTK_OK;
}

ntk_status ntk_net_loss(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                        const ntk_mat *x, const ntk_mat *y, double *value)
{
    if (!value) return ntk__fail(ctx, NTK_ERR_INVALID, "value is NULL");
    return loss_grad(ctx, net, loss, x, y, NULL, value);
}

ntk_status ntk_net_grad(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                        const ntk_mat *x, const ntk_mat *y, ntk_mat *grad,
                        double *value)
{
    if (!grad) return ntk__fail(ctx, NTK_ERR_INVALID, "grad is NULL");
    return loss_grad(ctx, net, loss, x, y, grad, value);
}

ntk_status ntk_net_vjp(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                       const ntk_mat *g, ntk_mat *out)
{
    ntk_status st;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if ((st = ntk__check_mat(ctx, g, "G"))) return st;
    size_t m = net->sizes[net->depth];
    if (g->rows != x->rows || g->cols != m)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "G must be %zux%zu (one cotangent row per sample), got %zux%zu",
                         x->rows, m, g->rows, g->cols);
    if ((st = ntk__check_finite(ctx, g, "G"))) return st;
    if ((st = check_param_vector(ctx, net, out, "out"))) return st;
    if (x->rows == 0) {
        memset(out->data, 0, net->num_params * sizeof(double));
        return NTK_OK;
    }
    bp_ws ws;
    if ((st = bp_alloc(ctx, net, x->rows, 0, &ws))) return st;
    st = sweep(ctx, net, &ws, NTK_LOSS_MSE, x->data, NULL, 0, g->data, x->rows, 1.0,
               NULL, out->data, "vjp");
    bp_free(ctx, &ws);
    if (st) return st;
    if (any_nonfinite(out->data, net->num_params))
        return ntk__fail(ctx, NTK_ERR_NUMERIC,
                         "the product overflowed (parameters or inputs too large)");
    return NTK_OK;
}

/* ---- optimizers and the training loop ---- */

void ntk_train_opts_init(ntk_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->loss = NTK_LOSS_MSE;
    o->optimizer = NTK_OPT_SGD;
    o->lr = 0;
    o->epochs = 1;
    o->batch_size = 0;
    o->shuffle = 1;
    o->seed = 0;
    o->momentum = 0.9;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
}

static ntk_status check_train_opts(ntk_ctx *ctx, const ntk_train_opts *o, double *lr)
{
    if ((unsigned)o->loss > NTK_LOSS_CROSS_ENTROPY)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown loss %d", (int)o->loss);
    if ((unsigned)o->optimizer > NTK_OPT_ADAM)
        return ntk__fail(ctx, NTK_ERR_INVALID, "unknown optimizer %d", (int)o->optimizer);
    *lr = o->lr != 0 ? o->lr
          : o->optimizer == NTK_OPT_ADAM ? NTK_DEFAULT_LR_ADAM
                                         : NTK_DEFAULT_LR_SGD;
    if (!isfinite(*lr) || *lr <= 0)
        return ntk__fail(ctx, NTK_ERR_INVALID, "lr must be finite and > 0, got %g", o->lr);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return ntk__fail(ctx, NTK_ERR_INVALID, "momentum must be in [0, 1), got %g",
                         o->momentum);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return ntk__fail(ctx, NTK_ERR_INVALID, "beta1 must be in [0, 1), got %g", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return ntk__fail(ctx, NTK_ERR_INVALID, "beta2 must be in [0, 1), got %g", o->beta2);
    if (!(isfinite(o->eps) && o->eps > 0))
        return ntk__fail(ctx, NTK_ERR_INVALID, "eps must be finite and > 0, got %g", o->eps);
    if (o->epochs > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_INVALID, "epochs must be below 2^31, got %zu",
                         o->epochs);
    return NTK_OK;
}

typedef struct optim {
    ntk_optimizer kind;
    double lr, mu, b1, b2, eps;
    size_t P, t;
    double *m, *v; /* momentum buffer / Adam moments */
} optim;

static void optim_step(optim *o, double *theta, const double *g)
{
    int P = (int)o->P;
    o->t++;
    switch (o->kind) {
    case NTK_OPT_SGD:
        cblas_daxpy(P, -o->lr, g, 1, theta, 1);
        break;
    case NTK_OPT_MOMENTUM:
        cblas_dscal(P, o->mu, o->m, 1);
        cblas_daxpy(P, 1.0, g, 1, o->m, 1);
        cblas_daxpy(P, -o->lr, o->m, 1, theta, 1);
        break;
    case NTK_OPT_ADAM: {
        double bc1 = 1.0 - pow(o->b1, (double)o->t);
        double bc2 = 1.0 - pow(o->b2, (double)o->t);
        double step = o->lr / bc1, root = sqrt(bc2);
        for (size_t k = 0; k < o->P; k++) {
            o->m[k] = o->b1 * o->m[k] + (1.0 - o->b1) * g[k];
            o->v[k] = o->b2 * o->v[k] + (1.0 - o->b2) * g[k] * g[k];
            theta[k] -= step * (o->m[k] / (sqrt(o->v[k]) / root + o->eps));
        }
        break;
    }
    }
}

/* Fisher-Yates with the library's generator: uniform index below n. */
static void shuffle(ntk_rng *rng, size_t *perm, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(ntk_rng_uniform(rng) * (double)i);
        if (j >= i) j = i - 1;
        size_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}

typedef struct train_state {
    bp_ws ws;
    optim opt;
    double *grad, *snapshot;
    size_t *perm;
    double *xb, *yb; /* gathered minibatch */
} train_state;

static void train_free(ntk_ctx *ctx, train_state *s)
{
    bp_free(ctx, &s->ws);
    ntk__free(ctx, s->opt.m);
    ntk__free(ctx, s->opt.v);
    ntk__free(ctx, s->grad);
    ntk__free(ctx, s->snapshot);
    ntk__free(ctx, s->perm);
    ntk__free(ctx, s->xb);
    ntk__free(ctx, s->yb);
}

ntk_status ntk_net_train(ntk_ctx *ctx, ntk_net *net, const ntk_mat *x,
                         const ntk_mat *y, const ntk_train_opts *opts,
                         size_t *epochs_done)
{
    ntk_status st;
    if (epochs_done) *epochs_done = 0;
    if (!net) return ntk__fail(ctx, NTK_ERR_INVALID, "net is NULL");
    ntk_train_opts defaults;
    if (!opts) {
        ntk_train_opts_init(&defaults);
        opts = &defaults;
    }
    double lr = 0;
    size_t ycols = 0;
    if ((st = check_train_opts(ctx, opts, &lr))) return st;
    if ((st = ntk__check_input(ctx, net, x, "X"))) return st;
    if (x->rows == 0)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "X must have at least one row to train on");
    if ((st = check_targets(ctx, net, opts->loss, y, x->rows, &ycols))) return st;

    size_t N = x->rows, n0 = net->sizes[0], P = net->num_params;
    size_t batch = opts->batch_size == 0 || opts->batch_size > N ? N : opts->batch_size;
    int full = batch == N;
    size_t nbatches = (N + batch - 1) / batch;

    train_state s;
    memset(&s, 0, sizeof s);
    s.opt.kind = opts->optimizer;
    s.opt.lr = lr;
    s.opt.mu = opts->momentum;
    s.opt.b1 = opts->beta1;
    s.opt.b2 = opts->beta2;
    s.opt.eps = opts->eps;
    s.opt.P = P;
    if ((st = bp_alloc(ctx, net, N, opts->memory, &s.ws))) goto done;
    s.grad = ntk__alloc(ctx, P, sizeof(double));
    s.snapshot = ntk__alloc(ctx, P, sizeof(double));
    if (!s.grad || !s.snapshot) goto nomem;
    if (opts->optimizer != NTK_OPT_SGD && !(s.opt.m = ntk__calloc(ctx, P, sizeof(double))))
        goto nomem;
    if (opts->optimizer == NTK_OPT_ADAM && !(s.opt.v = ntk__calloc(ctx, P, sizeof(double))))
        goto nomem;
    if (!full) {
        s.perm = ntk__alloc(ctx, N, sizeof *s.perm);
        s.xb = ntk__alloc(ctx, batch, n0 * sizeof(double));
        s.yb = ntk__alloc(ctx, batch, ycols * sizeof(double));
        if (!s.perm || !s.xb || !s.yb) goto nomem;
        for (size_t i = 0; i < N; i++) s.perm[i] = i;
    }

    ntk_rng rng;
    ntk_rng_seed(&rng, opts->seed);
    size_t epochs = opts->epochs, done_epochs = 0;
    const char *why = NULL;
    int have_grad = 0;
    memcpy(s.snapshot, net->theta, P * sizeof(double));
    if (ntk__progress(ctx, "train", 0, (double)epochs)) {
        st = NTK_ERR_INTERRUPTED;
        goto done;
    }
    for (size_t e = 1; e <= epochs; e++) {
        double loss_now = 0;
        if (full) {
            /* One step per epoch: the loss at the end of epoch e comes with
             * the gradient the next step needs, so each epoch costs one
             * pass (plus one at the start). */
            if (!have_grad) {
                st = sweep(ctx, net, &s.ws, opts->loss, x->data, y->data, ycols, NULL, N,
                           1.0 / (double)N, &loss_now, s.grad, NULL);
                if (st) goto done;
                if (!isfinite(loss_now)) {
                    why = "the loss";
                    break;
                }
            }
            optim_step(&s.opt, net->theta, s.grad);
            if (any_nonfinite(net->theta, P)) {
                why = "a parameter";
                break;
            }
            have_grad = e < epochs;
            st = sweep(ctx, net, &s.ws, opts->loss, x->data, y->data, ycols, NULL, N,
                       1.0 / (double)N, &loss_now, have_grad ? s.grad : NULL, NULL);
            if (st) goto done;
        } else {
            if (opts->shuffle) shuffle(&rng, s.perm, N);
            for (size_t b = 0; b < nbatches; b++) {
                size_t i0 = b * batch, n = N - i0 < batch ? N - i0 : batch;
                for (size_t r = 0; r < n; r++) {
                    size_t src = s.perm[i0 + r];
                    memcpy(s.xb + r * n0, x->data + src * n0, n0 * sizeof(double));
                    memcpy(s.yb + r * ycols, y->data + src * ycols, ycols * sizeof(double));
                }
                double bl;
                st = sweep(ctx, net, &s.ws, opts->loss, s.xb, s.yb, ycols, NULL, n,
                           1.0 / (double)n, &bl, s.grad, NULL);
                if (st) goto done;
                if (!isfinite(bl)) {
                    why = "the loss";
                    break;
                }
                optim_step(&s.opt, net->theta, s.grad);
                if (any_nonfinite(net->theta, P)) {
                    why = "a parameter";
                    break;
                }
                if (b + 1 < nbatches &&
                    ntk__progress(ctx, "train", (double)(e - 1) + (double)(b + 1) / (double)nbatches,
                                  (double)epochs)) {
                    st = NTK_ERR_INTERRUPTED;
                    goto done;
                }
            }
            if (why) break;
            st = sweep(ctx, net, &s.ws, opts->loss, x->data, y->data, ycols, NULL, N,
                       1.0, &loss_now, NULL, NULL);
            if (st) goto done;
        }
        loss_now /= (double)N;
        if (!isfinite(loss_now)) {
            why = "the loss";
            break;
        }
        done_epochs = e;
        memcpy(s.snapshot, net->theta, P * sizeof(double));
        if (opts->history) opts->history[e - 1] = loss_now;
        if (epochs_done) *epochs_done = e;
        if (ntk__progress(ctx, "train", (double)e, (double)epochs)) {
            st = NTK_ERR_INTERRUPTED;
            goto done;
        }
        if (opts->callback) {
            if (opts->callback(opts->callback_ud, e, loss_now)) {
                /* The callback may have changed or (against the contract)
                 * released the network: touch nothing of it any more. */
                train_free(ctx, &s);
                return NTK_OK;
            }
            /* Parameters the callback set are where the next epoch starts. */
            if (memcmp(s.snapshot, net->theta, P * sizeof(double)) != 0) {
                if (any_nonfinite(net->theta, P)) {
                    memcpy(net->theta, s.snapshot, P * sizeof(double));
                    st = ntk__fail(ctx, NTK_ERR_INVALID,
                                   "the callback set NaN or Inf parameters");
                    goto done;
                }
                memcpy(s.snapshot, net->theta, P * sizeof(double));
                have_grad = 0;
            }
        }
    }
    if (why) {
        st = ntk__fail(ctx, NTK_ERR_NUMERIC,
                       "training diverged in epoch %zu: %s became NaN or Inf (lower lr); "
                       "the network keeps its parameters after epoch %zu",
                       done_epochs + 1, why, done_epochs);
    }
done:
    if (st && s.snapshot) memcpy(net->theta, s.snapshot, P * sizeof(double));
    train_free(ctx, &s);
    return st;
nomem:
    st = NTK_ERR_NOMEM;
    goto done;
}

/* ---- kernel distance ---- */

/* Frobenius norm of n doubles without overflow or underflow: the sum of
 * squares is taken relative to the largest magnitude. (Not BLAS dnrm2,
 * whose x86 kernel relies on 80-bit intermediates for its range.) */
static double frob(const double *a, size_t n)
{
    double big = 0;
    for (size_t k = 0; k < n; k++)
        if (fabs(a[k]) > big) big = fabs(a[k]);
    if (big == 0) return 0;
    double ssq = 0;
    for (size_t k = 0; k < n; k++) {
        double r = a[k] / big;
        ssq += r * r;
    }
    return big * sqrt(ssq);
}

ntk_status ntk_kernel_distance(ntk_ctx *ctx, const ntk_mat *k0, const ntk_mat *k1,
                               double *rel, double *misalign)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, k0, "K0")) || (st = ntk__check_mat(ctx, k1, "K1")))
        return st;
    if (k0->rows != k1->rows || k0->cols != k1->cols)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "K0 and K1 must have the same shape, got %zux%zu and %zux%zu",
                         k0->rows, k0->cols, k1->rows, k1->cols);
    size_t n = k0->rows * k0->cols;
    if (n == 0) return ntk__fail(ctx, NTK_ERR_SHAPE, "K0 and K1 are empty");
    if ((st = ntk__check_finite(ctx, k0, "K0")) || (st = ntk__check_finite(ctx, k1, "K1")))
        return st;
    double n0 = frob(k0->data, n), n1 = frob(k1->data, n);
    if (n0 == 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "K0 is zero: the relative change is undefined");
    if (n1 == 0 && misalign)
        return ntk__fail(ctx, NTK_ERR_INVALID, "K1 is zero: the alignment is undefined");
    /* Both sums scaled by 1/|K0| (and 1/|K1|) so neither can overflow. */
    double d = 0, a = 0;
    for (size_t k = 0; k < n; k++) {
        double e0 = k0->data[k] / n0;
        double r = k1->data[k] / n0 - e0;
        d += r * r;
        if (misalign) {
            double s = e0 - k1->data[k] / n1;
            a += s * s;
        }
    }
    if (rel) *rel = sqrt(d);
    if (misalign) *misalign = 0.5 * a;
    return NTK_OK;
}
