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
 * is cut into tiles of t samples. Per tile, BLAS writes the first layer's
 * product straight into the output and each later layer's into a tile
 * buffer small enough to stay in cache with the output tile; one pass per
 * later layer then forms K = G_1 ⊙ K + G_k ⊙ buffer (the last layer's
 * diagonal joins the final pass), so the output tile is streamed once per
 * product layer and never revisited. Symmetric kernels compute the tiles
 * on and above the diagonal and mirror each while it is still in cache.
 */
#include "kernel.h"

#include <cblas.h>
#include <string.h>

/* Target rows of a tile in full mode: large enough for dgemm to run near
 * its peak, small enough that the tile buffer and the output tile stay in
 * the last-level cache while they are combined. In trace and outputs modes
 * a tile has one row per sample and the products a long inner dimension,
 * so fewer rows suffice and keep the Gram tiles small. */
#define TILE_ROWS 1024
#define TILE_SAMPLES 512

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
    if (mode == NTK_MODE_BLOCKS) return 8.0 * (m * m + 3);
    double tr = (double)t * (double)rows_per_sample(net, mode);
    return 8.0 * (tr * tr + 3.0 * (double)t * (double)t);
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
    size_t t = mode == NTK_MODE_BLOCKS  ? 1
               : mode == NTK_MODE_FULL ? max_sz(1, TILE_ROWS / r)
                                       : TILE_SAMPLES;
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
    /* Even tiles: no thin leftover tile running BLAS at a poor rate. */
    t = min_sz(t, c);
    size_t ntiles = (c + t - 1) / t;
    *tile = (c + ntiles - 1) / ntiles;
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
    double *buf;  /* product tile of a later layer, (t r) x (t r) */
    double *gram; /* three t x t Gram tiles: first layer, current, last */
    double done, total;
} swork;

/* g (ni x nj) = s (c_w^2 A_I A_J^T + c_b^2) for layer k's inputs. */
static void gram_tile(const swork *w, double *g, size_t k, const sfeat *fi, size_t ia,
                      size_t ni, const sfeat *fj, size_t ja, size_t nj)
{
    const ntk_net *net = w->net;
    size_t nin = net->sizes[k];
    double s = w->rq->scale, cw = net->cw[k], cb = net->cb[k];
    const double *ai = ntk__tape_input(net, &fi->tape, k) + ia * nin;
    const double *aj = ntk__tape_input(net, &fj->tape, k) + ja * nin;
    for (size_t q = 0; q < ni * nj; q++) g[q] = s * cb * cb;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)nin,
                s * cw * cw, ai, (int)nin, aj, (int)nin, 1.0, g, (int)nj);
}

/* Columns of an expanded Gram row held on the stack at a time. */
#define EXPAND 256

typedef enum { OUT_ZERO, OUT_SCALE, OUT_KEEP } out_start;

/*
 * One pass over an output tile (ni r x nj r, stride ldo), entry (i a, j b):
 *   out = {0 | g0[i,j] out | out} + gk[i,j] buf + [a == b] mult gl[i,j]
 * with the gk and gl terms optional. The first layer's product is written
 * into the output by BLAS and scaled here, so the tile is streamed once
 * per later layer rather than once per layer plus once for the sum.
 */
typedef struct pass_arg {
    double *out;
    size_t ldo, nj, r;
    bool diag; /* upper triangle only */
    out_start start;
    const double *g0, *gk, *buf, *gl;
    double mult;
} pass_arg;

/* Gram row g (one entry per sample) expanded to columns c0..c1-1. */
static const double *expand(const double *g, size_t r, size_t c0, size_t c1, double *e)
{
    if (r == 1) return g + c0;
    for (size_t j = c0 / r, c = c0; c < c1; j++) {
        size_t end = (j + 1) * r < c1 ? (j + 1) * r : c1;
        for (; c < end; c++) e[c - c0] = g[j];
    }
    return e;
}

static void pass_rows(void *p, size_t lo, size_t hi)
{
    const pass_arg *pa = p;
    size_t r = pa->r, nj = pa->nj, cols = nj * r;
    double e0[EXPAND], ek[EXPAND];
    for (size_t i = lo; i < hi; i++) {
        size_t first = pa->diag ? i * r : 0;
        for (size_t c0 = first - first % EXPAND; c0 < cols; c0 += EXPAND) {
            size_t c1 = c0 + EXPAND < cols ? c0 + EXPAND : cols;
            const double *x0 = pa->start == OUT_SCALE
                                   ? expand(pa->g0 + i * nj, r, c0, c1, e0) - c0 : NULL;
            const double *xk = pa->gk ? expand(pa->gk + i * nj, r, c0, c1, ek) - c0 : NULL;
            for (size_t a = 0; a < r; a++) {
                size_t row = i * r + a, from = pa->diag && row > c0 ? row : c0;
                double *o = pa->out + row * pa->ldo;
                const double *b = pa->buf ? pa->buf + row * cols : NULL;
                switch (pa->start) {
                case OUT_ZERO:
                    for (size_t c = from; c < c1; c++) o[c] = 0;
                    break;
                case OUT_SCALE:
                    if (b)
                        for (size_t c = from; c < c1; c++) o[c] = x0[c] * o[c] + xk[c] * b[c];
                    else
                        for (size_t c = from; c < c1; c++) o[c] *= x0[c];
                    break;
                case OUT_KEEP:
                    for (size_t c = from; c < c1; c++) o[c] += xk[c] * b[c];
                    break;
                }
                if (pa->gl) {
                    /* block diagonals: columns j r + a */
                    size_t j = from > a ? (from - a + r - 1) / r : 0;
                    for (size_t c = j * r + a; c < c1; c += r, j++)
                        o[c] += pa->mult * pa->gl[i * nj + j];
                }
            }
        }
    }
}

static void pass(const swork *w, pass_arg *pa, size_t ni)
{
    double work = (double)ni * (double)pa->nj * (double)pa->r * (double)pa->r;
    ntk__parallel(w->ctx, ni, 1, pa->diag ? work / 2 : work, pass_rows, pa);
}

/* dst = X_I X_J^T for ni x nj rows of length len (strides ldi, ldj);
 * only the upper triangle when diag. */
static void product(double *dst, size_t ldd, const double *xi, size_t ldi, size_t ni,
                    const double *xj, size_t ldj, size_t nj, size_t len, bool diag)
{
    if (diag)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)ni, (int)len, 1.0, xi,
                    (int)ldi, 0.0, dst, (int)ldd);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)len,
                    1.0, xi, (int)ldi, xj, (int)ldj, 0.0, dst, (int)ldd);
}

/* Copy the transpose of an R x C tile at src onto dst (both stride ld). */
typedef struct transpose_arg {
    const double *src;
    double *dst;
    size_t rows, cols, ld;
} transpose_arg;

#define TRANSPOSE_BLOCK 64

static void transpose_cols(void *p, size_t lo, size_t hi)
{
    const transpose_arg *ta = p;
    size_t T = TRANSPOSE_BLOCK, ld = ta->ld;
    for (size_t bc = lo; bc < hi; bc++) {
        size_t c0 = bc * T, c1 = c0 + T < ta->cols ? c0 + T : ta->cols;
        for (size_t r0 = 0; r0 < ta->rows; r0 += T) {
            size_t r1 = r0 + T < ta->rows ? r0 + T : ta->rows;
            for (size_t c = c0; c < c1; c++)
                for (size_t r = r0; r < r1; r++) ta->dst[c * ld + r] = ta->src[r * ld + c];
        }
    }
}

/*
 * Where the products of an operand side live for output `a`: the tile
 * rows of layer k for samples from `ia` of f, their stride and length.
 * full and blocks: each sample's m rows of B_k; trace: a sample's m rows
 * read as one vector of length m n_k (they are contiguous); outputs: row a
 * of each sample.
 */
static const double *operand(const swork *w, const sfeat *f, size_t ia, size_t k,
                             size_t a, size_t *ld, size_t *len)
{
    size_t m = w->m, wk = w->net->sizes[k + 1];
    const double *b = feat_b(w->net, f, k) + ia * m * wk;
    switch (w->rq->mode) {
    case NTK_MODE_TRACE: *ld = *len = m * wk; return b;
    case NTK_MODE_OUTPUTS: *ld = m * wk; *len = wk; return b + a * wk;
    default: *ld = *len = wk; return b;
    }
}

/* Where output a's tile for samples i0.., j0.. starts. */
static double *out_tile(const ntk_kreq *rq, size_t a, size_t i0, size_t j0, size_t r)
{
    if (rq->mode == NTK_MODE_BLOCKS) return rq->out[0].data + i0 * r * r;
    return rq->out[a].data + (i0 * r) * rq->out[a].cols + j0 * r;
}

/*
 * One output tile: samples ia.. of fi (global i0) against ja.. of fj
 * (global j0). diag: the same samples on both sides of a symmetric kernel
 * (upper triangle computed, then mirrored in the tile); in a symmetric
 * kernel an off-diagonal tile is also copied, transposed, below the diagonal.
 */
static void tile(swork *w, const sfeat *fi, size_t ia, size_t i0, size_t ni,
                 const sfeat *fj, size_t ja, size_t j0, size_t nj, bool diag)
{
    const ntk_kreq *rq = w->rq;
    const ntk_net *net = w->net;
    size_t m = w->m, L = net->depth, P = L - 1, tt = w->t * w->t;
    size_t r = rows_per_sample(net, rq->mode);
    size_t nout = rq->mode == NTK_MODE_OUTPUTS ? m : 1;
    double *g0 = w->gram, *gk = w->gram + tt, *gl = w->gram + 2 * tt;
    double mult = rq->mode == NTK_MODE_TRACE ? (double)m : 1.0;

    size_t ld = rq->mode == NTK_MODE_BLOCKS ? m : rq->out[0].cols;

    gram_tile(w, gl, L - 1, fi, ia, ni, fj, ja, nj);
    pass_arg pa = {.ldo = ld, .nj = nj, .r = r, .diag = diag, .mult = mult};
    if (P == 0) {
        for (size_t a = 0; a < nout; a++) {
            pa.out = out_tile(rq, a, i0, j0, r);
            pa.start = OUT_ZERO;
            pa.gl = gl;
            pass(w, &pa, ni);
        }
    } else {
        gram_tile(w, g0, 0, fi, ia, ni, fj, ja, nj);
        for (size_t a = 0; a < nout; a++) {
            size_t ldi, ldj, len;
            const double *xi = operand(w, fi, ia, 0, a, &ldi, &len);
            const double *xj = operand(w, fj, ja, 0, a, &ldj, &len);
            product(out_tile(rq, a, i0, j0, r), ld, xi, ldi, ni * r, xj, ldj, nj * r, len, diag);
            if (P == 1) {
                pa.out = out_tile(rq, a, i0, j0, r);
                pa.start = OUT_SCALE;
                pa.g0 = g0;
                pa.gl = gl;
                pass(w, &pa, ni);
            }
        }
        for (size_t k = 1; k < P; k++) {
            gram_tile(w, gk, k, fi, ia, ni, fj, ja, nj);
            for (size_t a = 0; a < nout; a++) {
                size_t ldi, ldj, len;
                const double *xi = operand(w, fi, ia, k, a, &ldi, &len);
                const double *xj = operand(w, fj, ja, k, a, &ldj, &len);
                product(w->buf, nj * r, xi, ldi, ni * r, xj, ldj, nj * r, len, diag);
                pa.out = out_tile(rq, a, i0, j0, r);
                pa.start = k == 1 ? OUT_SCALE : OUT_KEEP;
                pa.g0 = g0;
                pa.gk = gk;
                pa.buf = w->buf;
                pa.gl = k + 1 == P ? gl : NULL;
                pass(w, &pa, ni);
            }
        }
    }
    if (!rq->sym && rq->mode != NTK_MODE_BLOCKS) return;
    for (size_t a = 0; a < nout; a++) {
        double *o = out_tile(rq, a, i0, j0, r);
        if (diag) {
            ntk__mirror_upper(o, ni * r, ld);
        } else {
            transpose_arg ta = {o, rq->out[a].data + j0 * r * ld + i0 * r, ni * r, nj * r, ld};
            size_t blocks = (nj * r + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
            ntk__parallel(w->ctx, blocks, 1, (double)ni * (double)nj * (double)(r * r),
                          transpose_cols, &ta);
        }
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
    w.gram = w.buf ? ntk__alloc(ctx, 3 * t, t * sizeof(double)) : NULL;
    if (!w.gram) {
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
            /* Diagonal blocks: one m x m tile per sample. */
            for (size_t i = 0; i < fi.n; i++) tile(&w, &fi, i, i0 + i, 1, &fi, i, i0 + i, 1, true);
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
done:
    ntk__free(ctx, w.gram);
    ntk__free(ctx, w.buf);
    feat_free(ctx, &fj);
    feat_free(ctx, &fi);
    return st;
}
