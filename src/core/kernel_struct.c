/*
 * The structured NTK (Novak, Sohl-Dickstein, Schoenholz, ICML 2022, eq. 9).
 * Dense layer k maps a_{k-1} to z_k = c_w W_k a_{k-1} + c_b b_k; with
 * B_k = df/dz_k ((N m) x n_{k+1}, row i*m + a), its share of block (i, j) is
 *
 *     G_k[i, j] * B_k(x_i) B_k(x_j)^T,   G_k = c_w^2 a_{k-1} a_{k-1}^T + c_b^2.
 *
 * The last layer's B is the identity per sample, so its share is G ⊗ I with
 * no product. The (N m)^2 n_{k+1} products are the whole cost; no P-sized
 * Jacobian is ever formed.
 *
 * Work is organised in two levels. Chunks of c samples have their
 * "features" (the forward tape with the layer inputs, and every B_k)
 * resident; a symmetric kernel whose features all fit is computed from one
 * chunk, otherwise a row chunk and a column chunk are held and the column
 * chunk is rebuilt for each row chunk. Inside a pair of chunks the output
 * is cut into tiles of t samples: per tile and layer one BLAS product goes
 * into a tile buffer small enough to stay in cache, and is multiplied by
 * the expanded Gram factor while it is added into the output, so the
 * output is streamed through memory once rather than once per layer.
 */
#include "kernel.h"

#include <cblas.h>
#include <string.h>

/* Target rows (full mode) or samples (trace, outputs) of a tile: large
 * enough for dgemm to run near its peak, small enough that the tile buffer
 * and the output tile stay in the last-level cache while they are combined. */
#define TILE_ROWS 1024

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Rows per sample in the tile products of a mode. */
static size_t rows_per_sample(const ntk_net *net, ntk_mode mode)
{
    return mode == NTK_MODE_FULL || mode == NTK_MODE_BLOCKS ? ntk_net_output_dim(net) : 1;
}

/* Sum of the widths of B_k over the layers that need a product (k < L-1). */
static double product_width(const ntk_net *net)
{
    double w = 0;
    for (size_t k = 0; k + 1 < net->depth; k++) w += (double)net->sizes[k + 1];
    return w;
}

/* Bytes of features per sample: the tape (hidden a, d and outputs) and B_k
 * for k < L - 1. Doubles, so absurd sizes saturate instead of wrapping. */
static double feature_bytes(const ntk_net *net)
{
    double m = (double)ntk_net_output_dim(net);
    return 8.0 * (2.0 * (double)ntk__tape_doubles(net, 1) + m + m * product_width(net));
}

/* Bytes of the tile buffers for tiles of t samples. */
static double tile_bytes(const ntk_net *net, ntk_mode mode, size_t t)
{
    double m = (double)ntk_net_output_dim(net);
    if (mode == NTK_MODE_BLOCKS) return 8.0 * (m * m + m + 1);
    double tr = (double)t * (double)rows_per_sample(net, mode);
    return 8.0 * (tr * tr + (double)t * (double)t + tr);
}

static size_t to_size(double v)
{
    return v >= (double)((size_t)-1) ? (size_t)-1 : (size_t)v;
}

/*
 * Tile t and chunk c for a request: the tile is the cache-sized target,
 * halved while its buffers would take more than half the budget; the chunk
 * is what the rest holds, one set of features when a symmetric request (or
 * "blocks") fits at once, else a row and a column set. `one` says which.
 */
static void choose(const ntk_net *net, size_t n1, size_t n2, bool sym, ntk_mode mode,
                   size_t memory, size_t chunk, size_t *tile, size_t *chunk_out,
                   bool *one)
{
    size_t nmax = max_sz(max_sz(n1, n2), 1);
    double budget = (double)memory;
    size_t r = rows_per_sample(net, mode);
    size_t t = mode == NTK_MODE_BLOCKS ? 1 : max_sz(1, TILE_ROWS / r);
    t = min_sz(t, nmax);
    while (t > 1 && tile_bytes(net, mode, t) > budget / 2) t = (t + 1) / 2;
    bool single = sym || mode == NTK_MODE_BLOCKS;
    size_t c = chunk;
    if (c == 0) {
        double avail = budget - tile_bytes(net, mode, t);
        double fit = (avail > 0 ? avail : 0) / feature_bytes(net);
        if (mode == NTK_MODE_BLOCKS) c = to_size(fit);
        else if (single && fit >= (double)n1) c = n1;
        else c = to_size(fit / 2);
    }
    c = min_sz(max_sz(c, 1), nmax);
    *tile = min_sz(t, c);
    *chunk_out = c;
    *one = (sym && c >= n1) || mode == NTK_MODE_BLOCKS;
}

void ntk__plan_structured(const ntk_net *net, size_t n1, size_t n2, bool sym,
                          ntk_mode mode, size_t memory, size_t chunk,
                          ntk_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->method = NTK_METHOD_STRUCTURED;
    size_t m = ntk_net_output_dim(net), L = net->depth, t, c;
    bool one;
    choose(net, n1, n2, sym, mode, memory, chunk, &t, &c, &one);
    double held = (double)min_sz(c, max_sz(n1, 1));
    if (!one) held += (double)min_sz(c, max_sz(n2, 1));
    plan->chunk = c;
    /* + a few bytes for empty buffers, which allocate one byte each */
    plan->memory = to_size(tile_bytes(net, mode, t) + held * feature_bytes(net) + 64);

    /* Flops. Products and Gram matrices count 2 per multiply-add (1 where
     * only a triangle is formed); the combine is memory-bound and counted
     * as 4 per output entry and layer so that its cost is not ignored. */
    double N1 = (double)n1, N2 = (double)(sym ? n1 : n2), M = (double)m;
    double pairs = sym ? N1 * N1 : 2.0 * N1 * N2; /* 2 x pairs formed */
    double f = 0, entries;
    switch (mode) {
    case NTK_MODE_FULL: entries = pairs / 2 * M * M; break;
    case NTK_MODE_BLOCKS: entries = N1 * M * M; break;
    case NTK_MODE_OUTPUTS: entries = pairs / 2 * M; break;
    default: entries = pairs / 2; break;
    }
    for (size_t k = 0; k < L; k++) {
        double nin = (double)net->sizes[k], w = (double)net->sizes[k + 1];
        f += (mode == NTK_MODE_BLOCKS ? 2.0 * N1 : pairs) * nin; /* Gram */
        if (k + 1 == L) break;
        switch (mode) {
        case NTK_MODE_FULL: f += pairs * M * M * w; break;
        case NTK_MODE_BLOCKS: f += N1 * M * M * w; break;
        default: f += pairs * M * w; break;
        }
        f += 4.0 * entries;
    }
    /* Features: forward and cotangent products per sample, for every time
     * a chunk is built. */
    double feat = 0;
    for (size_t k = 0; k < L; k++) {
        double nin = (double)net->sizes[k], w = (double)net->sizes[k + 1];
        feat += 2.0 * nin * w;
        if (k + 2 < L) feat += 2.0 * M * w * (double)net->sizes[k + 2];
    }
    double chunks1 = (double)((n1 + c - 1) / c);
    double built = one ? N1 : N1 + (sym ? chunks1 * N1 / 2 : chunks1 * N2);
    plan->flops = f + built * feat;
}

/* ---- features of a chunk of samples ---- */

typedef struct sfeat {
    size_t cap, n;
    ntk_tape tape;
    double *b; /* B_k for k < L - 1, each (cap m) x sizes[k+1], one after another */
} sfeat;

static void feat_free(ntk_ctx *ctx, sfeat *f)
{
    ntk__tape_free(ctx, &f->tape);
    ntk__free(ctx, f->b);
    memset(f, 0, sizeof *f);
}

static ntk_status feat_alloc(ntk_ctx *ctx, const ntk_net *net, size_t cap, sfeat *f)
{
    memset(f, 0, sizeof *f);
    size_t m = ntk_net_output_dim(net), width = 0, rows, count;
    for (size_t k = 0; k + 1 < net->depth; k++) width += net->sizes[k + 1];
    if (!ntk__mul(cap, m, &rows) || !ntk__mul(rows, width, &count))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "the cotangents of %zu samples are too large", cap);
    ntk_status st = ntk__tape_alloc(ctx, net, cap, &f->tape);
    if (st) return st;
    if (count && !(f->b = ntk__alloc(ctx, count, sizeof(double)))) {
        feat_free(ctx, f);
        return NTK_ERR_NOMEM;
    }
    f->cap = cap;
    return NTK_OK;
}

/* B_k of the chunk: (n m) x sizes[k+1], row stride sizes[k+1]. */
static double *feat_b(const ntk_net *net, const sfeat *f, size_t k)
{
    size_t off = 0, m = ntk_net_output_dim(net);
    for (size_t j = 0; j < k; j++) off += net->sizes[j + 1];
    return f->b + f->cap * m * off;
}

static void feat_build(ntk_ctx *ctx, const ntk_net *net, sfeat *f, const double *x,
                       size_t n)
{
    f->n = n;
    ntk__tape_forward(ctx, net, x, n, &f->tape);
    /* B_{L-2} comes from W_L alone, so the identity B_{L-1} is never stored. */
    for (size_t k = net->depth - 1; k-- > 0;)
        ntk__cotangent_step(net, &f->tape, k,
                            k + 2 < net->depth ? feat_b(net, f, k + 1) : NULL,
                            feat_b(net, f, k));
}

/* ---- tiles ---- */

typedef struct swork {
    ntk_ctx *ctx;
    const ntk_kreq *rq;
    const ntk_net *net;
    size_t m, t;
    double *buf;  /* product tile, (t r) x (t r) */
    double *gram; /* t x t */
    double *grow; /* one row of the Gram tile expanded to t r columns */
    double done, total;
} swork;

/* gram (ni x nj) = s (c_w^2 A_I A_J^T + c_b^2) for layer k's inputs. */
static void gram_tile(const swork *w, size_t k, const sfeat *fi, size_t ia, size_t ni,
                      const sfeat *fj, size_t ja, size_t nj, double s)
{
    const ntk_net *net = w->net;
    size_t nin = net->sizes[k];
    double cw = net->cw[k], cb = net->cb[k], fill = s * cb * cb;
    const double *ai = ntk__tape_input(net, &fi->tape, k) + ia * nin;
    const double *aj = ntk__tape_input(net, &fj->tape, k) + ja * nin;
    for (size_t q = 0; q < ni * nj; q++) w->gram[q] = fill;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)nin,
                s * cw * cw, ai, (int)nin, aj, (int)nin, 1.0, w->gram, (int)nj);
}

/*
 * out (ni r x nj r, stride ldo) = or += gram ⊙ buf, the Gram factor of
 * sample pair (i, j) applied to its r x r block. diag: only the upper
 * triangle (the tile straddles the diagonal of a symmetric kernel).
 */
static void combine(const swork *w, double *out, size_t ldo, size_t ni, size_t nj,
                    size_t r, bool diag, bool set)
{
    size_t cols = nj * r;
    for (size_t i = 0; i < ni; i++) {
        const double *g = w->gram + i * nj;
        if (r > 1) {
            for (size_t j = 0; j < nj; j++)
                for (size_t a = 0; a < r; a++) w->grow[j * r + a] = g[j];
            g = w->grow;
        }
        for (size_t a = 0; a < r; a++) {
            size_t row = i * r + a, c0 = diag ? row : 0;
            double *o = out + row * ldo;
            const double *b = w->buf + row * cols;
            if (set)
                for (size_t c = c0; c < cols; c++) o[c] = g[c] * b[c];
            else
                for (size_t c = c0; c < cols; c++) o[c] += g[c] * b[c];
        }
    }
}

/* The last layer's share, gram ⊗ I (times `mult` in trace mode), added on
 * the diagonal of every r x r block; `set` when no product layer came before. */
static void add_last(const swork *w, double *out, size_t ldo, size_t ni, size_t nj,
                     size_t r, bool diag, bool set, double mult)
{
    if (set)
        for (size_t row = 0; row < ni * r; row++)
            memset(out + row * ldo, 0, nj * r * sizeof(double));
    for (size_t i = 0; i < ni; i++)
        for (size_t j = diag ? i : 0; j < nj; j++) {
            double g = mult * w->gram[i * nj + j];
            for (size_t a = 0; a < r; a++) out[(i * r + a) * ldo + j * r + a] += g;
        }
}

/* buf = X_I X_J^T for ni x nj rows of length len (strides ldi, ldj);
 * only the upper triangle when diag. */
static void product(const swork *w, const double *xi, size_t ldi, size_t ni,
                    const double *xj, size_t ldj, size_t nj, size_t len, bool diag)
{
    if (diag)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)ni, (int)len, 1.0, xi,
                    (int)ldi, 0.0, w->buf, (int)ni);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)len,
                    1.0, xi, (int)ldi, xj, (int)ldj, 0.0, w->buf, (int)nj);
}

/* One output tile: samples ia.. of fi (global i0) against ja.. of fj
 * (global j0). diag: the same samples on both sides of a symmetric kernel. */
static void tile(swork *w, const sfeat *fi, size_t ia, size_t i0, size_t ni,
                 const sfeat *fj, size_t ja, size_t j0, size_t nj, bool diag)
{
    const ntk_kreq *rq = w->rq;
    const ntk_net *net = w->net;
    size_t m = w->m, L = net->depth;
    ntk_mode mode = rq->mode;
    double s = rq->scale;
    for (size_t k = 0; k < L; k++) {
        bool first = k == 0;
        gram_tile(w, k, fi, ia, ni, fj, ja, nj, s);
        size_t wk = net->sizes[k + 1];
        const double *bi = k + 1 < L ? feat_b(net, fi, k) + ia * m * wk : NULL;
        const double *bj = k + 1 < L ? feat_b(net, fj, k) + ja * m * wk : NULL;
        switch (mode) {
        case NTK_MODE_FULL: {
            size_t ld = rq->out[0].cols;
            double *o = rq->out[0].data + i0 * m * ld + j0 * m;
            if (k + 1 == L) {
                add_last(w, o, ld, ni, nj, m, diag, first, 1.0);
                break;
            }
            product(w, bi, wk, ni * m, bj, wk, nj * m, wk, diag);
            combine(w, o, ld, ni, nj, m, diag, first);
            break;
        }
        case NTK_MODE_TRACE: {
            /* A sample's m rows are contiguous: one vector of length m n_k,
             * so the trace of B_i B_j^T is a dot product. */
            size_t ld = rq->out[0].cols;
            double *o = rq->out[0].data + i0 * ld + j0;
            if (k + 1 == L) {
                add_last(w, o, ld, ni, nj, 1, diag, first, (double)m);
                break;
            }
            product(w, bi, m * wk, ni, bj, m * wk, nj, m * wk, diag);
            combine(w, o, ld, ni, nj, 1, diag, first);
            break;
        }
        case NTK_MODE_OUTPUTS:
            for (size_t a = 0; a < m; a++) {
                size_t ld = rq->out[a].cols;
                double *o = rq->out[a].data + i0 * ld + j0;
                if (k + 1 == L) {
                    add_last(w, o, ld, ni, nj, 1, diag, first, 1.0);
                    continue;
                }
                product(w, bi + a * wk, m * wk, ni, bj + a * wk, m * wk, nj, wk, diag);
                combine(w, o, ld, ni, nj, 1, diag, first);
            }
            break;
        case NTK_MODE_BLOCKS: break; /* see blocks() */
        }
    }
}

/* Diagonal blocks of the chunk fi (global i0): per sample and layer an
 * m x m product, scaled by that sample's Gram entry. */
static void blocks(swork *w, const sfeat *fi, size_t i0)
{
    const ntk_net *net = w->net;
    size_t m = w->m, L = net->depth, n = fi->n;
    double *out = w->rq->out[0].data;
    for (size_t i = 0; i < n; i++) {
        double *o = out + (i0 + i) * m * m;
        for (size_t k = 0; k < L; k++) {
            size_t nin = net->sizes[k], wk = net->sizes[k + 1];
            const double *a = ntk__tape_input(net, &fi->tape, k) + i * nin;
            double g = net->cw[k] * net->cw[k] * cblas_ddot((int)nin, a, 1, a, 1) +
                       net->cb[k] * net->cb[k];
            w->gram[0] = g;
            if (k + 1 == L) {
                add_last(w, o, m, 1, 1, m, true, k == 0, 1.0);
                break;
            }
            product(w, feat_b(net, fi, k) + i * m * wk, wk, m, NULL, 0, m, wk, true);
            combine(w, o, m, 1, 1, m, true, k == 0);
        }
        ntk__mirror_upper(o, m, m);
    }
}

static bool step(swork *w, double units)
{
    w->done += units;
    return ntk__progress(w->ctx, "ntk", w->done, w->total);
}

/* Every tile of a pair of chunks. */
static bool chunk_pair(swork *w, const sfeat *fi, size_t i0, const sfeat *fj, size_t j0,
                       bool diag)
{
    size_t t = w->t;
    for (size_t ia = 0; ia < fi->n; ia += t) {
        size_t ni = min_sz(t, fi->n - ia);
        for (size_t ja = diag ? ia : 0; ja < fj->n; ja += t) {
            size_t nj = min_sz(t, fj->n - ja);
            bool d = diag && ja == ia;
            tile(w, fi, ia, i0 + ia, ni, fj, ja, j0 + ja, nj, d);
            if (step(w, d ? (double)ni * (double)(ni + 1) / 2 : (double)ni * (double)nj))
                return true;
        }
    }
    return false;
}

ntk_status ntk__ntk_structured(ntk_ctx *ctx, const ntk_kreq *rq)
{
    const ntk_net *net = rq->net;
    size_t m = ntk_net_output_dim(net), rowlen;
    if (!ntk__mul(m, net->max_width, &rowlen) || rowlen > (size_t)INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_UNSUPPORTED,
                         "the structured method needs m * width below 2^31 "
                         "(m = %zu, widest layer %zu)", m, net->max_width);
    size_t n1 = rq->x1->rows, n2 = rq->x2->rows, d = rq->x1->cols;
    size_t t, c;
    bool one;
    choose(net, n1, n2, rq->sym, rq->mode, rq->memory, rq->chunk, &t, &c,
           &one);
    size_t r = rows_per_sample(net, rq->mode);
    swork w = {.ctx = ctx, .rq = rq, .net = net, .m = m, .t = t};
    sfeat fi, fj;
    memset(&fj, 0, sizeof fj);
    size_t tr = t * r, bufn = rq->mode == NTK_MODE_BLOCKS ? m * m : tr * tr;
    ntk_status st = feat_alloc(ctx, net, min_sz(c, n1), &fi);
    if (st) return st;
    if (!one) st = feat_alloc(ctx, net, min_sz(c, n2), &fj);
    w.buf = st ? NULL : ntk__alloc(ctx, bufn, sizeof(double));
    w.gram = w.buf ? ntk__alloc(ctx, t, t * sizeof(double)) : NULL;
    w.grow = w.gram ? ntk__alloc(ctx, tr, sizeof(double)) : NULL;
    if (!w.grow) {
        if (!st) st = NTK_ERR_NOMEM;
        goto done;
    }

    size_t nc1 = (n1 + c - 1) / c, nc2 = (n2 + c - 1) / c;
    w.total = rq->mode == NTK_MODE_BLOCKS ? (double)n1
              : rq->sym ? (double)n1 * (double)(n1 + 1) / 2
                        : (double)n1 * (double)n2;
    if (ntk__progress(ctx, "ntk", 0, w.total)) {
        st = NTK_ERR_INTERRUPTED;
        goto done;
    }
    for (size_t bi = 0; bi < nc1; bi++) {
        size_t i0 = bi * c;
        feat_build(ctx, net, &fi, rq->x1->data + i0 * d, min_sz(c, n1 - i0));
        if (rq->mode == NTK_MODE_BLOCKS) {
            blocks(&w, &fi, i0);
            if (step(&w, (double)fi.n)) {
                st = NTK_ERR_INTERRUPTED;
                goto done;
            }
            continue;
        }
        for (size_t bj = rq->sym ? bi : 0; bj < nc2; bj++) {
            size_t j0 = bj * c;
            bool diag = rq->sym && bj == bi;
            const sfeat *fc = &fi;
            if (!diag) {
                feat_build(ctx, net, &fj, rq->x2->data + j0 * d, min_sz(c, n2 - j0));
                fc = &fj;
            }
            if (chunk_pair(&w, &fi, i0, fc, j0, diag)) {
                st = NTK_ERR_INTERRUPTED;
                goto done;
            }
        }
    }
    if (rq->sym && rq->mode != NTK_MODE_BLOCKS)
        for (size_t a = 0; a < rq->count; a++)
            ntk__mirror_upper(rq->out[a].data, rq->out[a].rows, rq->out[a].cols);
done:
    ntk__free(ctx, w.grow);
    ntk__free(ctx, w.gram);
    ntk__free(ctx, w.buf);
    feat_free(ctx, &fj);
    feat_free(ctx, &fi);
    return st;
}
