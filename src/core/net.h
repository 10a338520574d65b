/* Private: the network's layout and the forward/backward building blocks
 * that the Jacobian, the kernels and training share. */
#ifndef NTK_NET_H
#define NTK_NET_H

#include "internal.h"

/*
 * Dense layer k (0-based, k < depth) maps width sizes[k] to sizes[k+1]:
 * z_k = cw[k] W_k a_{k-1} + cb[k] b_k, a_k = acts[k](z_k), a_{-1} = x and
 * acts[depth-1] = identity. W_k (sizes[k+1] x sizes[k], row-major) starts
 * at theta + offset[k]; b_k follows it. offset[depth] = P.
 */
struct ntk_net {
    size_t depth;
    size_t num_params;
    size_t max_width;
    size_t *sizes;  /* depth + 1 */
    size_t *offset; /* depth + 1 */
    ntk_act *acts;  /* depth */
    double *cw, *cb; /* depth */
    ntk_param param;
    double weight_std, bias_std;
    double *theta;
};

static inline const double *ntk__w(const ntk_net *net, size_t k)
{
    return net->theta + net->offset[k];
}
static inline const double *ntk__b(const ntk_net *net, size_t k)
{
    return net->theta + net->offset[k] + net->sizes[k + 1] * net->sizes[k];
}

/*
 * What a forward pass over n samples keeps for the backward pass: the
 * hidden activations a_k and derivatives phi'(z_k) for k < depth - 1,
 * each n x sizes[k+1], concatenated in one buffer each.
 */
typedef struct ntk_tape {
    size_t n;
    const double *x; /* n x sizes[0], borrowed */
    double *a;       /* hidden activations */
    double *d;       /* hidden derivatives */
    double *out;     /* n x m outputs, may be NULL */
} ntk_tape;

/* Doubles the tape needs for n samples in a and in d (each). */
size_t ntk__tape_doubles(const ntk_net *net, size_t n);
/* Allocate a tape for up to n samples (a, d and out). */
ntk_status ntk__tape_alloc(ntk_ctx *ctx, const ntk_net *net, size_t n,
                           ntk_tape *t);
void ntk__tape_free(ntk_ctx *ctx, ntk_tape *t);
/* Forward pass of n rows of x into the tape (t->out filled if non-NULL). */
void ntk__tape_forward(ntk_ctx *ctx, const ntk_net *net, const double *x,
                       size_t n, ntk_tape *t);
/* The input of dense layer k for the tape's samples (n x sizes[k]). */
const double *ntk__tape_input(const ntk_net *net, const ntk_tape *t, size_t k);
/* phi'(z_k) for the tape's samples (n x sizes[k+1]), k < depth - 1. */
const double *ntk__tape_deriv(const ntk_net *net, const ntk_tape *t, size_t k);

/*
 * Output cotangents B_k = df/dz_k, (n m) x sizes[k+1], row i*m + a.
 * ntk__cotangent_last writes B_{depth-1} (identity blocks);
 * ntk__cotangent_step computes B_k from B_{k+1} (k < depth - 1).
 */
void ntk__cotangent_last(const ntk_net *net, size_t n, double *b);
void ntk__cotangent_step(const ntk_net *net, const ntk_tape *t, size_t k,
                         const double *b_next, double *b);

/* Write the Jacobian rows of layer k's parameters for the tape's samples
 * into j (row stride ldj), given B_k. */
void ntk__jacobian_layer(const ntk_net *net, const ntk_tape *t, size_t k,
                         const double *bk, double *j, size_t ldj);

/* Validate an input matrix against the network (shape and finiteness). */
ntk_status ntk__check_input(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                            const char *name);

#endif

/* Scratch for Jacobians of up to `cap` samples at a time. */
typedef struct ntk_jws {
    size_t cap;
    ntk_tape tape;
    double *b0, *b1; /* cotangents, (cap m) x max_width each */
} ntk_jws;

/* Bytes of scratch ntk_jws needs per sample (tape and cotangents). */
size_t ntk__jws_bytes_per_sample(const ntk_net *net);
ntk_status ntk__jws_alloc(ntk_ctx *ctx, const ntk_net *net, size_t cap,
                          ntk_jws *ws);
void ntk__jws_free(ntk_ctx *ctx, ntk_jws *ws);
/* Jacobian rows of n <= cap samples at x into j (row stride ldj). */
void ntk__jacobian_chunk(ntk_ctx *ctx, const ntk_net *net, ntk_jws *ws,
                         const double *x, size_t n, double *j, size_t ldj);
