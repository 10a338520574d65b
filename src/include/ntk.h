/*
 * ntk.h -- libntk, empirical Neural Tangent Kernels in C.
 *
 * ==========================================================================
 * Usage guide
 * ==========================================================================
 *
 * The code below is one program, compiled and run by the tests
 * (tests/embed/test_guide.c); N, xdata (N x 8) and ydata (N x 3) are the
 * caller's data.
 *
 * Context. Everything starts from one: it holds the last error message,
 * the allocator, the thread count and the progress and logging hooks.
 * Nothing in the library is global. Use one context per thread.
 *
 *     ntk_ctx *ctx;
 *     if (ntk_ctx_create(&ctx) != NTK_OK) return 1;   // or _create_with(alloc)
 *
 * Ownership. Matrices are plain views (ntk_mat: rows x cols row-major
 * doubles at data). The caller owns every buffer it passes, inputs and
 * outputs alike, and allocates each output before the call: its size is
 * known in advance (ntk_kernel_shape for kernels, an _info call for files).
 * No pointer into a caller's buffer is kept after a call returns. Objects
 * the library makes (ntk_net, ntk_csv) belong to the caller, who destroys
 * them with the context that made them, before that context. Pointers into
 * them (ntk_net_params, ntk_csv_name) live as long as the object;
 * ntk_ctx_error's message until the next call on the context.
 *
 * Errors. Every function that can fail returns an ntk_status, with the
 * message in ntk_ctx_error(ctx). Nothing prints, aborts or exits on bad
 * input. After a failure, out of memory included, the call holds nothing
 * and the context is as usable as before.
 *
 * A network, its parameters drawn from a seeded generator:
 *
 *     size_t sizes[] = {8, 64, 3};             // input, hidden..., output
 *     ntk_act acts[] = {NTK_ACT_TANH};         // one per hidden layer
 *     ntk_mlp_spec spec;
 *     ntk_mlp_spec_init(&spec);                // the documented defaults
 *     spec.depth = 2; spec.sizes = sizes; spec.acts = acts; spec.seed = 42;
 *     ntk_net *net;
 *     if (ntk_mlp_create(ctx, &spec, &net) != NTK_OK) {
 *         fprintf(stderr, "%s\n", ntk_ctx_error(ctx));
 *         return 1;
 *     }
 *     size_t P = ntk_net_num_params(net), m = ntk_net_output_dim(net);
 *
 * Jacobians and kernels. Inputs hold one sample per row. The Jacobian is
 * (N m) x P and the full NTK (N m) x (N m); rows i m .. i m + m - 1 are
 * sample i's outputs (0-based i).
 *
 *     ntk_mat X = {N, 8, xdata};
 *     ntk_mat J = {N * m, P, malloc(N * m * P * sizeof(double))};
 *     ntk_status st = ntk_net_jacobian(ctx, net, &X, &J);
 *     ntk_kernel_opts ko;
 *     ntk_kernel_opts_init(&ko);               // full mode, method auto, 1 GiB
 *     size_t rows = 0, cols = 0, count;        // count > 1 only in outputs mode
 *     if (!st) st = ntk_kernel_shape(ctx, net, N, 0, &ko, &rows, &cols, &count);
 *     ntk_mat K = {rows, cols, malloc(rows * cols * sizeof(double))};
 *     if (!st) st = ntk_net_ntk(ctx, net, &X, NULL, &ko, &K); // NULL X2: K(X, X)
 *
 * Eigen routines: the k largest eigenvalues, descending, and optionally
 * the vectors (n x k), into caller buffers. ntk_net_ntk_eigs finds them
 * from matrix-free products, without forming K.
 *
 *     double top[4], top_free[4];
 *     ntk_mat w = {4, 1, top}, w2 = {4, 1, top_free};
 *     ntk_eigh_opts eo;
 *     ntk_eigh_opts_init(&eo);
 *     eo.k = 4;                                // 0: all of them
 *     if (!st) st = ntk_eigh(ctx, &K, &eo, &w, NULL);    // NULL: no vectors
 *     if (!st) st = ntk_net_ntk_eigs(ctx, net, &X, 4, NULL, &w2, NULL, NULL, NULL);
 *
 * Load and save. Writers stream from the caller's buffer. Readers take two
 * calls: _info checks the header against the file's real size and gives
 * the shape, the caller allocates, _read fills (refusing another shape).
 *
 *     if (!st) st = ntk_npy_write(ctx, "K.npy", &K);   // np.load reads it
 *     ntk_array_info info;
 *     ntk_mat A = {0, 0, NULL};
 *     if (!st) st = ntk_npy_info(ctx, "K.npy", &info);
 *     if (!st) {
 *         A = (ntk_mat){info.rows, info.cols, malloc(info.rows * info.cols * sizeof(double))};
 *         st = ntk_npy_read(ctx, "K.npy", &A);
 *     }
 *     ntk_net *loaded = NULL;                  // the caller's, like net
 *     if (!st) st = ntk_net_save(ctx, net, "net.ntk");
 *     if (!st) st = ntk_net_load(ctx, "net.ntk", &loaded);
 *
 * Training updates the network in place; history (room for `epochs`
 * losses) is optional and the caller's.
 *
 *     ntk_mat Y = {N, 3, ydata};               // targets, N x m
 *     double history[20];
 *     ntk_train_opts to;
 *     ntk_train_opts_init(&to);                // sgd, mse, full batch
 *     to.optimizer = NTK_OPT_ADAM; to.epochs = 20; to.history = history;
 *     size_t epochs_done = 0;
 *     if (!st) st = ntk_net_train(ctx, loaded, &X, &Y, &to, &epochs_done);
 *
 * Infinite-width NTK and NNGP of the same architecture, N x N per output
 * (the m-output kernels are these times the m x m identity):
 *
 *     ntk_analytic_spec as;
 *     ntk_analytic_spec_init(&as);
 *     as.depth = 2; as.sizes = sizes; as.acts = acts;
 *     ntk_mat theta = {N, N, malloc(N * N * sizeof(double))};
 *     if (!st) st = ntk_analytic_kernels(ctx, &as, &X, NULL, NULL, &theta);
 *
 * Long work (kernels, eigensolvers, loaders, training, analytic kernels)
 * reports to the hook set by ntk_ctx_set_progress (task, done, total); a
 * hook returning nonzero stops it with NTK_ERR_INTERRUPTED, after it has
 * freed everything it held.
 *
 *     if (st) fprintf(stderr, "%s\n", ntk_ctx_error(ctx));
 *     free(J.data); free(K.data); free(A.data); free(theta.data);
 *     ntk_net_destroy(ctx, loaded);
 *     ntk_net_destroy(ctx, net);
 *     ntk_ctx_destroy(ctx);
 *     return st != NTK_OK;
 *
 * From Lua
 * --------
 * The Lua 5.4 module `ntk.core` (luaopen_ntk_core) wraps this API and the
 * Lua layer `ntk` (lua/ntk, installed in share/lua/5.4) adds the rest. A
 * host that embeds Lua links libntk_lua (pkg-config ntk-lua, CMake
 * ntk::lua; header ntk_lua.h) and registers the native part, through
 * luaL_requiref or package.preload["ntk.core"] (a host that does not link
 * it lets require find the installed ntk/core.so on package.cpath):
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaL_requiref(L, "ntk.core", luaopen_ntk_core, 0);
 *     lua_pop(L, 1);
 *     // package.path reaches the Lua layer (pkg-config --variable=luadir ntk)
 *     if (luaL_dostring(L, "ntk = require 'ntk'") != LUA_OK) return 1;
 *
 * The state gets its own context, which allocates through the state's
 * allocator. Matrices cross without copies: ntk_lua_pushmatrix makes one
 * that Lua owns (the pointer stays valid while it is reachable and open),
 * ntk_lua_tomatrix lends a view of one. Neither raises.
 *
 *     double *data;
 *     if (ntk_lua_pushmatrix(L, 2, 8, &data) != LUA_OK) return 1;
 *     for (int i = 0; i < 16; i++) data[i] = i / 16.0;
 *     lua_setglobal(L, "X");
 *     if (luaL_dostring(L, "return ntk.mlp{sizes = {8, 3}}:ntk(X)") != LUA_OK) return 1;
 *     ntk_mat view;
 *     if (!ntk_lua_tomatrix(L, -1, &view)) return 1;   // the 6 x 6 kernel
 *     lua_close(L);                                     // frees it
 *
 * docs/embedding.md has the rest.
 *
 * Conventions
 * -----------
 * - Indices in this C API are 0-based; the Lua API is 1-based.
 * - Sizes are size_t; products of sizes are checked for overflow before
 *   anything is allocated (NTK_ERR_OVERFLOW).
 * - NaN or Inf in an input is refused with NTK_ERR_INVALID.
 */
#ifndef NTK_H
#define NTK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTK_VERSION_MAJOR 0
#define NTK_VERSION_MINOR 1
#define NTK_VERSION_PATCH 0
#define NTK_VERSION_STRING "0.1.0"

/* Exported symbols; the static library and in-tree builds need nothing. */
#if defined(_WIN32) && defined(NTK_SHARED_BUILD)
#define NTK_API __declspec(dllexport)
#elif defined(__GNUC__)
#define NTK_API __attribute__((visibility("default")))
#else
#define NTK_API
#endif

/* ------------------------------------------------------------------------
 * Status codes and the context
 * ---------------------------------------------------------------------- */

typedef enum ntk_status {
    NTK_OK = 0,
    NTK_ERR_INVALID,     /* an argument's value is wrong (name, range, NaN) */
    NTK_ERR_SHAPE,       /* dimensions do not agree */
    NTK_ERR_NOMEM,       /* the allocator failed */
    NTK_ERR_OVERFLOW,    /* a size computation would overflow */
    NTK_ERR_IO,          /* a file could not be opened, read or written */
    NTK_ERR_FORMAT,      /* a file's contents are malformed */
    NTK_ERR_NUMERIC,     /* LAPACK failed, matrix not positive definite... */
    NTK_ERR_NOCONV,      /* an iterative method did not converge */
    NTK_ERR_INTERRUPTED, /* the progress hook asked to stop */
    NTK_ERR_UNSUPPORTED  /* valid request this build cannot serve */
} ntk_status;

/* A short constant name for a status ("invalid argument", ...). */
NTK_API const char *ntk_status_string(ntk_status st);

/* Library version as a string; equal to NTK_VERSION_STRING of the build. */
NTK_API const char *ntk_version(void);

typedef struct ntk_ctx ntk_ctx;

/*
 * Allocator with the contract of lua_Alloc: new_size == 0 frees ptr and
 * returns NULL; otherwise it returns a block of new_size bytes holding the
 * first min(old_size, new_size) bytes of ptr (ptr may be NULL), or NULL on
 * failure, in which case ptr is left untouched.
 */
typedef void *(*ntk_alloc_fn)(void *ud, void *ptr, size_t old_size,
                              size_t new_size);

/*
 * Progress hook: `task` names the work ("ntk", "jacobian", ...), `done` of
 * `total` units are finished. Called at the start (done = 0), between
 * blocks of work and at the end (done = total). Return 0 to go on, nonzero
 * to cancel: the running call then returns NTK_ERR_INTERRUPTED.
 */
typedef int (*ntk_progress_fn)(void *ud, const char *task, double done,
                               double total);

/* Logging hook for diagnostics the library thinks a user might want. */
enum { NTK_LOG_DEBUG = 0, NTK_LOG_INFO = 1, NTK_LOG_WARN = 2 };
typedef void (*ntk_log_fn)(void *ud, int level, const char *msg);

/* Create a context that uses malloc/realloc/free. */
NTK_API ntk_status ntk_ctx_create(ntk_ctx **out);
/* Create a context with a custom allocator (also used for the context). */
NTK_API ntk_status ntk_ctx_create_with(ntk_ctx **out, ntk_alloc_fn alloc,
                                       void *alloc_ud);
/* Destroy a context; NULL is accepted. */
NTK_API void ntk_ctx_destroy(ntk_ctx *ctx);
/* Message for the last failure on this context ("" if none). */
NTK_API const char *ntk_ctx_error(const ntk_ctx *ctx);
/* Forget the last error. */
NTK_API void ntk_ctx_clear_error(ntk_ctx *ctx);
NTK_API void ntk_ctx_set_progress(ntk_ctx *ctx, ntk_progress_fn fn, void *ud);
/* The current progress hook (NULL if none), so that code installing its own
 * hook around nested work can restore the caller's afterwards. */
NTK_API void ntk_ctx_get_progress(const ntk_ctx *ctx, ntk_progress_fn *fn,
                                  void **ud);
NTK_API void ntk_ctx_set_log(ntk_ctx *ctx, ntk_log_fn fn, void *ud);
/*
 * Threads for BLAS and for the library's own loops; 0 means every core.
 * OpenBLAS keeps one process-wide thread count: the context applies its
 * setting when one of its computations starts.
 */
NTK_API ntk_status ntk_ctx_set_threads(ntk_ctx *ctx, int threads);
/* The effective thread count (every core when set to 0). */
NTK_API int ntk_ctx_threads(const ntk_ctx *ctx);
/* Bytes currently allocated through this context's allocator. */
NTK_API size_t ntk_ctx_bytes_in_use(const ntk_ctx *ctx);

/* ------------------------------------------------------------------------
 * Matrices
 * ---------------------------------------------------------------------- */

/* A view of rows x cols row-major doubles at data (caller-owned). */
typedef struct ntk_mat {
    size_t rows, cols;
    double *data;
} ntk_mat;

/* rows * cols, or NTK_ERR_OVERFLOW if that or its byte size overflows. */
NTK_API ntk_status ntk_mat_count(ntk_ctx *ctx, size_t rows, size_t cols,
                                 size_t *count);
/* C = alpha * op(A) op(B) + beta * C through dgemm; shapes checked. */
NTK_API ntk_status ntk_mat_gemm(ntk_ctx *ctx, int trans_a, int trans_b,
                                double alpha, const ntk_mat *a,
                                const ntk_mat *b, double beta, ntk_mat *c);
/* First non-finite entry of m, if any: returns 1 and its position. */
NTK_API int ntk_mat_find_nonfinite(const ntk_mat *m, size_t *row,
                                   size_t *col);

/* Seeded generator (xoshiro256** seeded through splitmix64; normals by the
 * polar method with the library's own logarithm), bit-identical on every
 * IEEE-754 machine. */
typedef struct ntk_rng {
    uint64_t s[4];
    double spare;
    int has_spare;
} ntk_rng;
NTK_API void ntk_rng_seed(ntk_rng *rng, uint64_t seed);
NTK_API uint64_t ntk_rng_next(ntk_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
NTK_API double ntk_rng_uniform(ntk_rng *rng);
/* Standard normal. */
NTK_API double ntk_rng_normal(ntk_rng *rng);
/* Fill m with standard normals, row by row. */
NTK_API void ntk_rng_fill_normal(ntk_rng *rng, ntk_mat *m);

/* ------------------------------------------------------------------------
 * Networks: multilayer perceptrons
 * ---------------------------------------------------------------------- */

typedef enum ntk_act {
    NTK_ACT_IDENTITY = 0,
    NTK_ACT_RELU,
    NTK_ACT_TANH,
    NTK_ACT_SIGMOID,
    NTK_ACT_ERF,
    NTK_ACT_GELU,     /* x * Phi(x), the exact erf form */
    NTK_ACT_SOFTPLUS, /* log(1 + e^x) */
    NTK_ACT_SIN,
    NTK_ACT_COUNT
} ntk_act;

/* Parse an activation name; NTK_ERR_INVALID lists the known names. */
NTK_API ntk_status ntk_act_parse(ntk_ctx *ctx, const char *name, ntk_act *out);
NTK_API const char *ntk_act_name(ntk_act act);
/* phi(x) and phi'(x) elementwise over n values (y or dy may be NULL). */
NTK_API void ntk_act_apply(ntk_act act, const double *x, size_t n, double *y,
                           double *dy);

typedef enum ntk_param {
    NTK_PARAM_NTK = 0, /* z = (w_std / sqrt(n_in)) W a + b_std b, W, b ~ N(0,1) */
    NTK_PARAM_STANDARD /* z = W a + b, W ~ N(0, w_std^2/n_in), b ~ N(0, b_std^2) */
} ntk_param;

NTK_API ntk_status ntk_param_parse(ntk_ctx *ctx, const char *name,
                                   ntk_param *out);
NTK_API const char *ntk_param_name(ntk_param p);

#define NTK_DEFAULT_WEIGHT_STD 1.0
#define NTK_DEFAULT_BIAS_STD 0.1

typedef struct ntk_mlp_spec {
    size_t depth;        /* dense layers L >= 1 */
    const size_t *sizes; /* L + 1 widths: input n, hidden..., output m */
    const ntk_act *acts; /* L - 1 hidden activations (NULL: all relu) */
    ntk_param param;     /* default NTK_PARAM_NTK */
    double weight_std;   /* default NTK_DEFAULT_WEIGHT_STD */
    double bias_std;     /* default NTK_DEFAULT_BIAS_STD */
    uint64_t seed;       /* default 0 */
} ntk_mlp_spec;

NTK_API void ntk_mlp_spec_init(ntk_mlp_spec *spec);

typedef struct ntk_net ntk_net;

/*
 * Build an MLP and draw its parameters: one generator seeded with
 * spec->seed fills the parameter vector in order (W1, b1, W2, b2, ...),
 * each entry a standard normal times the layer's init scale.
 */
NTK_API ntk_status ntk_mlp_create(ntk_ctx *ctx, const ntk_mlp_spec *spec,
                                  ntk_net **out);
NTK_API ntk_status ntk_net_copy(ntk_ctx *ctx, const ntk_net *net,
                                ntk_net **out);
/* Free a network made with ctx; NULL is accepted. */
NTK_API void ntk_net_destroy(ntk_ctx *ctx, ntk_net *net);

NTK_API size_t ntk_net_depth(const ntk_net *net);
/* Width of layer l: l = 0 is the input, l = depth the output. */
NTK_API size_t ntk_net_width(const ntk_net *net, size_t l);
NTK_API size_t ntk_net_input_dim(const ntk_net *net);
NTK_API size_t ntk_net_output_dim(const ntk_net *net);
NTK_API size_t ntk_net_num_params(const ntk_net *net);
/* Activation after dense layer l (1-based, l < depth); the last is linear. */
NTK_API ntk_act ntk_net_act(const ntk_net *net, size_t l);
NTK_API ntk_param ntk_net_param(const ntk_net *net);
NTK_API double ntk_net_weight_std(const ntk_net *net);
NTK_API double ntk_net_bias_std(const ntk_net *net);
/* Multipliers of dense layer l (1-based) in z = c_w W a + c_b b. */
NTK_API void ntk_net_layer_scales(const ntk_net *net, size_t l, double *c_w,
                                  double *c_b);
/* Offset in the parameter vector of layer l's W (b follows W). */
NTK_API size_t ntk_net_layer_offset(const ntk_net *net, size_t l);

/*
 * The parameter vector (seed note eq. 3): layer by layer, W^[l] as
 * n_l x n_{l-1} in row-major order, then b^[l]. Read-only view owned by
 * the network.
 */
NTK_API const double *ntk_net_params(const ntk_net *net);
/* Replace all P parameters; refuses NaN and Inf. */
NTK_API ntk_status ntk_net_set_params(ntk_ctx *ctx, ntk_net *net,
                                      const double *theta, size_t count);
/* Copy layer l's W (n_l x n_{l-1}) and b (n_l x 1) into caller views. */
NTK_API ntk_status ntk_net_get_layer(ntk_ctx *ctx, const ntk_net *net,
                                     size_t l, ntk_mat *w, ntk_mat *b);
/* Set layer l from W (n_l x n_{l-1}) and b (n_l x 1 or 1 x n_l). */
NTK_API ntk_status ntk_net_set_layer(ntk_ctx *ctx, ntk_net *net, size_t l,
                                     const ntk_mat *w, const ntk_mat *b);

/* Y (N x m) = f(X) for X (N x n), one sample per row. */
NTK_API ntk_status ntk_net_forward(ntk_ctx *ctx, const ntk_net *net,
                                   const ntk_mat *x, ntk_mat *y);

/*
 * Jacobian of the outputs with respect to the parameters: J is (N m) x P,
 * rows i*m .. i*m + m - 1 are Df(x_i)^T (0-based i). Reverse mode with all
 * m output seeds and every sample at once, one matrix product per layer.
 */
NTK_API ntk_status ntk_net_jacobian(ntk_ctx *ctx, const ntk_net *net,
                                    const ntk_mat *x, ntk_mat *j);

/* ------------------------------------------------------------------------
 * Neural tangent kernels
 * ---------------------------------------------------------------------- */

typedef enum ntk_mode {
    NTK_MODE_FULL = 0, /* (N1 m) x (N2 m) block kernel */
    NTK_MODE_TRACE,    /* N1 x N2, sum (or mean) over outputs of each block's diagonal */
    NTK_MODE_OUTPUTS,  /* m kernels N1 x N2, one per output */
    NTK_MODE_BLOCKS    /* diagonal blocks only, (N m) x m; needs X2 == NULL */
} ntk_mode;

typedef enum ntk_method {
    NTK_METHOD_AUTO = 0, /* choose by a flop and memory estimate */
    NTK_METHOD_JACOBIAN, /* contract explicit Jacobian chunks: (N m)^2 P flops */
    NTK_METHOD_STRUCTURED /* per-layer factorisation, no P-sized Jacobian:
                             sum over layers of (N m)^2 n_l flops */
} ntk_method;

#define NTK_DEFAULT_MEMORY ((size_t)1 << 30)

typedef struct ntk_kernel_opts {
    ntk_mode mode;
    ntk_method method;
    int normalize_mean; /* trace mode: divide by m */
    size_t memory;      /* bytes of working memory beyond the output; 0: default.
                           Below one sample's needs the work still runs, one
                           sample at a time (the plan reports the real need). */
    size_t chunk;       /* samples whose features or Jacobians are held at
                           once; 0: derive from memory */
} ntk_kernel_opts;

NTK_API void ntk_kernel_opts_init(ntk_kernel_opts *opts);

/*
 * Shape of a kernel result: `count` matrices of rows x cols (count is m in
 * "outputs" mode, else 1). n2 == 0 means the symmetric kernel of X1.
 */
NTK_API ntk_status ntk_kernel_shape(ntk_ctx *ctx, const ntk_net *net,
                                    size_t n1, size_t n2,
                                    const ntk_kernel_opts *opts, size_t *rows,
                                    size_t *cols, size_t *count);

/*
 * What a kernel computation would do; filled by ntk_net_ntk_plan from the
 * same choices ntk_net_ntk makes. "auto" resolves to structured where the
 * Jacobian method cannot run (m P >= 2^31), else to the method whose memory
 * fits the budget, else to fewer flops. ntk_net_ntk logs the method it runs
 * at NTK_LOG_DEBUG.
 */
typedef struct ntk_plan {
    ntk_method method; /* resolved, never AUTO: the method ntk_net_ntk runs */
    double flops;      /* estimated floating-point operations */
    size_t memory;     /* peak working bytes beyond the output (what is allocated) */
    size_t chunk;      /* samples per chunk */
    double flops_jacobian, flops_structured; /* both estimates */
} ntk_plan;

NTK_API ntk_status ntk_net_ntk_plan(ntk_ctx *ctx, const ntk_net *net,
                                    size_t n1, size_t n2,
                                    const ntk_kernel_opts *opts,
                                    ntk_plan *plan);

/*
 * The empirical NTK. X2 == NULL gives the symmetric kernel of X1 (one
 * triangle computed, then mirrored). `out` points to `count` caller-owned
 * matrices of the shape ntk_kernel_shape gives.
 */
NTK_API ntk_status ntk_net_ntk(ntk_ctx *ctx, const ntk_net *net,
                               const ntk_mat *x1, const ntk_mat *x2,
                               const ntk_kernel_opts *opts, ntk_mat *out);

/* ------------------------------------------------------------------------
 * Sections added by later work go below, each under its own heading.
 * ---------------------------------------------------------------------- */

/* @@ linalg @@ (eigen routines, kernel methods) */

/*
 * Symmetric eigendecomposition through LAPACK. Results are in descending
 * order: values is k x 1, vectors (optional) is n x k with eigenvector j in
 * column j. The input is checked for symmetry: |A_ij - A_ji| must not
 * exceed symmetry_tol * max|A| (default NTK_DEFAULT_SYMMETRY_TOL), unless
 * symmetrize is set, in which case (A + A^T) / 2 is decomposed.
 */
typedef enum ntk_eigh_driver {
    NTK_EIGH_AUTO = 0, /* dsyevd for whole spectra, dsyevr for top k and
                          where dsyevd's 32-bit workspace would overflow */
    NTK_EIGH_EVD,      /* LAPACK dsyevd (divide and conquer) */
    NTK_EIGH_EVR       /* LAPACK dsyevr (MRRR, index ranges) */
} ntk_eigh_driver;

#define NTK_DEFAULT_SYMMETRY_TOL 1e-10

typedef struct ntk_eigh_opts {
    size_t k;               /* 0: every eigenvalue; else the k largest */
    int symmetrize;         /* decompose (A + A^T) / 2 */
    double symmetry_tol;    /* relative to max|A|; 0: the default */
    ntk_eigh_driver driver; /* default NTK_EIGH_AUTO */
} ntk_eigh_opts;

NTK_API void ntk_eigh_opts_init(ntk_eigh_opts *opts);
/*
 * The driver ntk_eigh uses for an n x n problem asking for k values
 * (0: all), with or without vectors. dsyevd with vectors needs a workspace
 * of 1 + 6n + 2n^2 entries, which overflows LAPACK's 32-bit integers at
 * n >= 32767: AUTO then answers with dsyevr, and an explicit EVD request
 * is refused (NTK_ERR_UNSUPPORTED) rather than risking wrong numbers.
 */
NTK_API ntk_status ntk_eigh_plan(ntk_ctx *ctx, size_t n, size_t k, int vectors,
                                 ntk_eigh_driver asked, ntk_eigh_driver *out);
/* values (k x 1) and, if vectors != NULL, vectors (n x k) of the square
 * matrix a. LAPACK failures are NTK_ERR_NUMERIC. */
NTK_API ntk_status ntk_eigh(ntk_ctx *ctx, const ntk_mat *a,
                            const ntk_eigh_opts *opts, ntk_mat *values,
                            ntk_mat *vectors);

/*
 * Top-k eigenpairs of a symmetric operator from its products alone:
 * thick-restart block Lanczos with full reorthogonalisation. The operator
 * writes out = A v for k columns (row-major n x k blocks with row strides
 * ldv and ldo); it returns NTK_OK or a failure, which stops the solver.
 */
typedef ntk_status (*ntk_linop_fn)(void *ud, ntk_ctx *ctx, const double *v,
                                   size_t ldv, double *out, size_t ldo,
                                   size_t k);

#define NTK_DEFAULT_EIGS_TOL 1e-8
#define NTK_DEFAULT_EIGS_MAXITER 1000

typedef struct ntk_eigs_opts {
    double tol;      /* converged when ||A x - l x|| <= tol * |l_1|; 0: default */
    size_t block;    /* columns per operator application; 0: min(k, 32) */
    size_t basis;    /* Krylov basis columns; 0: max(20, 2k + 4 block) */
    size_t maxiter;  /* block operator applications; 0: default */
    uint64_t seed;   /* the random starting block */
    size_t memory;   /* matrix-free NTK: working bytes (0: NTK_DEFAULT_MEMORY) */
    int symmetrize;      /* ntk_eigs_matrix: use (A + A^T) / 2 */
    double symmetry_tol; /* ntk_eigs_matrix: as ntk_eigh_opts */
} ntk_eigs_opts;

typedef struct ntk_eigs_info {
    size_t iterations; /* block operator applications */
    size_t matvecs;    /* operator applications counted per column */
    size_t restarts;
    size_t converged;  /* eigenpairs (of k) within the tolerance */
    double residual;   /* largest ||A x - l x|| of the k pairs */
    double scale;      /* |l| of the largest Ritz value: the tolerance's unit */
    int dense;         /* small n: the operator was formed and decomposed */
} ntk_eigs_info;

NTK_API void ntk_eigs_opts_init(ntk_eigs_opts *opts);
/*
 * The k largest eigenvalues (descending, k x 1) of the n x n symmetric
 * operator, eigenvectors (n x k, optional) and residual norms
 * ||A x_j - l_j x_j|| (k x 1, optional). If the tolerance is not met in
 * maxiter iterations the outputs hold the best estimates and the status is
 * NTK_ERR_NOCONV. Progress: task "eigs", done = converged pairs (with a
 * fraction for the residuals' progress), total = k.
 */
NTK_API ntk_status ntk_eigs(ntk_ctx *ctx, size_t n, ntk_linop_fn op, void *ud,
                            size_t k, const ntk_eigs_opts *opts,
                            ntk_mat *values, ntk_mat *vectors,
                            ntk_mat *residuals, ntk_eigs_info *info);
/* ntk_eigs on a dense symmetric matrix (checked like ntk_eigh). */
NTK_API ntk_status ntk_eigs_matrix(ntk_ctx *ctx, const ntk_mat *a, size_t k,
                                   const ntk_eigs_opts *opts, ntk_mat *values,
                                   ntk_mat *vectors, ntk_mat *residuals,
                                   ntk_eigs_info *info);

/*
 * Matrix-free products with the full NTK of X (N x n): out = K V for V of
 * (N m) x k, computed as J (J^T V) with a reverse pass carrying the
 * cotangents V and a forward tangent pass, neither K nor J stored. Memory:
 * `memory` bytes of working space (0: NTK_DEFAULT_MEMORY) bound the samples
 * and columns handled at once.
 */
NTK_API ntk_status ntk_net_ntk_matvec(ntk_ctx *ctx, const ntk_net *net,
                                      const ntk_mat *x, const ntk_mat *v,
                                      size_t memory, ntk_mat *out);
/* ntk_eigs on the full NTK of X through ntk_net_ntk_matvec's products. */
NTK_API ntk_status ntk_net_ntk_eigs(ntk_ctx *ctx, const ntk_net *net,
                                    const ntk_mat *x, size_t k,
                                    const ntk_eigs_opts *opts, ntk_mat *values,
                                    ntk_mat *vectors, ntk_mat *residuals,
                                    ntk_eigs_info *info);

/* Summary statistics of a spectrum (any order; sorted internally). */
typedef struct ntk_spectrum_info {
    size_t n;
    double trace;          /* sum of the eigenvalues */
    double max, min;
    double condition;      /* max / min; +Inf when min <= 0 */
    double effective_rank; /* (sum l)^2 / sum l^2 over l_+ = max(l, 0) */
    double entropy;        /* -sum p log p, p = l_+ / sum l_+ */
    double entropy_rank;   /* exp(entropy) */
    size_t top_k;
    double top_fraction;   /* (sum of the top_k largest) / trace */
    /* Power-law fit l_i ~ coef * i^(-alpha) by least squares on log-log
     * over ranks fit_first..fit_last (1-based, descending order). */
    size_t fit_first, fit_last;
    double alpha, coef, r2; /* NaN when fewer than two ranks qualify */
} ntk_spectrum_info;

typedef struct ntk_stats_opts {
    size_t top_k;     /* 0: min(10, n) */
    size_t fit_first; /* 0: 1 */
    size_t fit_last;  /* 0: the last eigenvalue above n * eps * max */
} ntk_stats_opts;

NTK_API void ntk_stats_opts_init(ntk_stats_opts *opts);
NTK_API ntk_status ntk_spectrum_stats(ntk_ctx *ctx, const double *ev, size_t n,
                                      const ntk_stats_opts *opts,
                                      ntk_spectrum_info *out);

/*
 * Targets against a kernel. K is n x n; Y is either n x c (a trace kernel:
 * the targets' columns share K) or N x m with N m = n (the full block
 * kernel: Y's row-major entries are the vector vec(Y) matching K's rows).
 */
/* Kernel-target alignment <K, y y^T>_F / (||K||_F ||y y^T||_F), for
 * several columns <K, Y Y^T>_F / (||K||_F ||Y Y^T||_F). center: first
 * centre the features and targets over the samples (centred alignment). */
NTK_API ntk_status ntk_alignment(ntk_ctx *ctx, const ntk_mat *k,
                                 const ntk_mat *y, int center, double *out);

typedef struct ntk_regression_opts {
    double ridge;        /* added to the diagonal; default 0 */
    int jitter;          /* retry with growing jitter if not positive definite */
    double max_jitter;   /* largest jitter, relative to the mean diagonal */
    int symmetrize;
    double symmetry_tol;
} ntk_regression_opts;

#define NTK_DEFAULT_MAX_JITTER 1e-4

NTK_API void ntk_regression_opts_init(ntk_regression_opts *opts);
/*
 * alpha (shaped like Y) solving (K + ridge I + jitter I) alpha = Y by
 * Cholesky. Without success at jitter 0, the jitter starts at 1e-12 times
 * the mean diagonal and grows tenfold up to max_jitter times it; the jitter
 * used (absolute) is returned. Failure at the largest is NTK_ERR_NUMERIC.
 */
NTK_API ntk_status ntk_kernel_regression(ntk_ctx *ctx, const ntk_mat *k,
                                         const ntk_mat *y,
                                         const ntk_regression_opts *opts,
                                         ntk_mat *alpha, double *jitter);
/* Shape of ntk_kernel_predict's result for K_test_train (rows x cols) and
 * alpha (arows x acols). */
NTK_API ntk_status ntk_kernel_predict_shape(ntk_ctx *ctx, size_t rows,
                                            size_t cols, size_t arows,
                                            size_t acols, size_t *out_rows,
                                            size_t *out_cols);
/* K_test_train alpha, laid out like the targets (see above). */
NTK_API ntk_status ntk_kernel_predict(ntk_ctx *ctx, const ntk_mat *k_test_train,
                                      const ntk_mat *alpha, ntk_mat *out);

/*
 * Predictions of the linearised network under gradient flow on the MSE
 * loss (neural-tangents' predict.gradient_descent_mse) from one
 * eigendecomposition K = V diag(l) V^T:
 *   f_t(train) = f0 + V diag(1 - e^{-lr l t}) V^T (Y - f0)
 *   f_t(test)  = f0_test + K_test_train V diag((1 - e^{-lr l t}) / l) V^T (Y - f0)
 * with t = +Inf the kernel regression limit. Eigenvalues at or below
 * n * eps * max|l| are treated as zero (those modes do not move).
 */
typedef struct ntk_gd_spec {
    const ntk_mat *k_train;      /* n x n */
    const ntk_mat *k_test_train; /* n' x n, or NULL (no test predictions) */
    const ntk_mat *y;            /* targets, laid out as above */
    const ntk_mat *f0_train;     /* like y, or NULL for zeros */
    const ntk_mat *f0_test;      /* N' x c, or NULL for zeros */
    double lr;                   /* learning rate > 0 */
    const double *times;         /* >= 0, +Inf allowed */
    size_t ntimes;
    double ridge;                /* added to K_train's diagonal */
    int mean_loss;               /* loss averaged over Y's entries (lr / size(Y)) */
    int symmetrize;
    double symmetry_tol;
} ntk_gd_spec;

NTK_API void ntk_gd_spec_init(ntk_gd_spec *spec);
/* train: ntimes matrices shaped like y; test: ntimes matrices N' x c (may
 * be NULL when k_test_train is). */
NTK_API ntk_status ntk_gd_dynamics(ntk_ctx *ctx, const ntk_gd_spec *spec,
                                   ntk_mat *train, ntk_mat *test);

/* @@ io @@ (loaders and persistence) */

/*
 * Loaders follow one pattern: an _info call parses and validates the
 * header against the real size of the file (so a lying header never causes
 * a big allocation), the caller allocates a matrix of the shape it reports,
 * and a _read call fills it (it parses the header again and refuses a
 * matrix of another shape). Every array loads as a matrix of doubles:
 * 1-D arrays as a column, N-D arrays as one row per item (the first axis)
 * with the other axes flattened in C order. The _mem variants read a
 * caller-owned buffer instead of a file. Failures are NTK_ERR_IO (open,
 * read, write) or NTK_ERR_FORMAT (malformed contents), with a message
 * naming the file; reads report progress as task "load".
 */
#define NTK_MAX_DIMS 32

typedef struct ntk_array_info {
    size_t rows, cols;        /* the matrix the array loads as */
    size_t ndim;              /* rank; shape[0..ndim) */
    size_t shape[NTK_MAX_DIMS];
    char dtype[8];            /* npy: descr ("<f8"); idx: "u8", "i8", "i16", "i32", "f32", "f64" */
    int fortran_order;        /* npy: column-major data */
    int version;              /* npy: format major version (1, 2 or 3) */
    int compressed;           /* idx: the file is gzip */
    uint64_t data_offset;     /* bytes before the data (of the decompressed stream) */
    uint64_t data_bytes;      /* bytes of data */
} ntk_array_info;

/* NumPy .npy, versions 1 to 3; dtypes f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 in
 * either byte order; C or Fortran order. */
NTK_API ntk_status ntk_npy_info(ntk_ctx *ctx, const char *path, ntk_array_info *info);
NTK_API ntk_status ntk_npy_read(ntk_ctx *ctx, const char *path, ntk_mat *out);
NTK_API ntk_status ntk_npy_info_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                    ntk_array_info *info);
NTK_API ntk_status ntk_npy_read_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                    ntk_mat *out);
/* Write m as a 2-D little-endian float64 C-order .npy (version 1, or 2 when
 * the header needs it), data 64-byte aligned, streamed from m->data. */
NTK_API ntk_status ntk_npy_write(ntk_ctx *ctx, const char *path, const ntk_mat *m);

/* IDX (the MNIST format), any element type and rank, gzip decoded
 * transparently (detected by its magic bytes, not the file name). */
NTK_API ntk_status ntk_idx_info(ntk_ctx *ctx, const char *path, ntk_array_info *info);
NTK_API ntk_status ntk_idx_read(ntk_ctx *ctx, const char *path, ntk_mat *out);
/* Only items rows[0..n) (0-based, any order, repeats allowed) into the n
 * rows of out, streaming the file once: memory is out's, not the file's. */
NTK_API ntk_status ntk_idx_read_rows(ntk_ctx *ctx, const char *path,
                                     const size_t *rows, size_t n, ntk_mat *out);
NTK_API ntk_status ntk_idx_info_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                    ntk_array_info *info);
NTK_API ntk_status ntk_idx_read_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                    ntk_mat *out);

/*
 * CSV (RFC 4180: quoted fields with "" escapes, embedded delimiters and
 * line breaks, LF or CRLF). Every field of every data row must be a number
 * (decimal, inf or nan; blanks around it are ignored); rows must all have
 * the header's or the first row's field count. Errors name the line and
 * column. The parsed table lives in the context's memory until destroyed;
 * peak memory is the table plus whatever the caller copies it into.
 */
enum { NTK_CSV_HEADER_AUTO = -1, NTK_CSV_HEADER_NO = 0, NTK_CSV_HEADER_YES = 1 };

typedef struct ntk_csv_opts {
    char delimiter; /* default ',' */
    int header;     /* NTK_CSV_HEADER_AUTO (default): a first row with a
                       non-numeric field is a header */
} ntk_csv_opts;

NTK_API void ntk_csv_opts_init(ntk_csv_opts *opts);

typedef struct ntk_csv ntk_csv;

NTK_API ntk_status ntk_csv_parse(ntk_ctx *ctx, const char *path,
                                 const ntk_csv_opts *opts, ntk_csv **out);
NTK_API ntk_status ntk_csv_parse_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                     const ntk_csv_opts *opts, ntk_csv **out);
NTK_API size_t ntk_csv_rows(const ntk_csv *csv);
NTK_API size_t ntk_csv_cols(const ntk_csv *csv);
/* Column j's header name (0-based), or NULL when there is no header. */
NTK_API const char *ntk_csv_name(const ntk_csv *csv, size_t j);
/*
 * Copy the table into x (rows x cols), or, when label < cols, column
 * `label` into y (rows x 1) and the others into x (rows x (cols - 1)).
 */
NTK_API ntk_status ntk_csv_extract(ntk_ctx *ctx, const ntk_csv *csv, size_t label,
                                   ntk_mat *x, ntk_mat *y);
NTK_API void ntk_csv_destroy(ntk_ctx *ctx, ntk_csv *csv);

/*
 * Networks on disk: a versioned, self-describing file (docs/data.md): a
 * text header (architecture, parameterization, stds as exact hex floats,
 * activations, parameter count, CRC-32) padded to 64 bytes, then the
 * parameter vector as little-endian float64. Loading restores it bit for
 * bit.
 */
NTK_API ntk_status ntk_net_save(ntk_ctx *ctx, const ntk_net *net, const char *path);
NTK_API ntk_status ntk_net_load(ntk_ctx *ctx, const char *path, ntk_net **out);
NTK_API ntk_status ntk_net_load_mem(ntk_ctx *ctx, const void *buf, size_t len,
                                    ntk_net **out);

/* Data preparation. */
/* A uniformly random permutation of 0..n-1 (Fisher-Yates, unbiased). */
NTK_API void ntk_rng_permutation(ntk_rng *rng, size_t *perm, size_t n);
/* Column means and standard deviations (population, divisor N) of x into
 * mean and std (1 x cols each); x needs at least one row. */
NTK_API ntk_status ntk_col_stats(ntk_ctx *ctx, const ntk_mat *x, ntk_mat *mean,
                                 ntk_mat *std);
/* out = (x - mean) / std column by column (a zero std divides by 1);
 * out may be x. */
NTK_API ntk_status ntk_standardize(ntk_ctx *ctx, const ntk_mat *x, const ntk_mat *mean,
                                   const ntk_mat *std, ntk_mat *out);

/* @@ train @@ (training and analytic kernels) */

/* ---- Losses and gradients ----------------------------------------------
 *
 * For N samples with outputs f_i = f(x_i) (rows of N x m) and targets y_i:
 *
 *   NTK_LOSS_MSE:  L = (1 / 2N) sum_i ||f_i - y_i||^2, Y is N x m;
 *                  dL/df_i = (f_i - y_i) / N.
 *   NTK_LOSS_CROSS_ENTROPY: softmax over the m >= 2 outputs,
 *                  L = (1 / N) sum_i sum_a y_ia (logsumexp(f_i) - f_ia),
 *                  Y is N x m (one-hot rows or any non-negative soft
 *                  targets, usually rows summing to 1) or N x 1 class
 *                  indices 0 .. m-1 (0-based in C, 1-based in Lua);
 *                  dL/df_i = (s_i * sum_a y_ia - y_i) / N, s_i = softmax(f_i).
 *
 * Gradients are one reverse pass over the whole batch seeded with dL/df:
 * per layer one dgemm for dW (c_w Delta^T A_in), one dgemv for db and one
 * dgemm to step Delta back, in chunks of samples so that memory stays
 * bounded (NTK_DEFAULT_MEMORY of working memory).
 */
typedef enum ntk_loss {
    NTK_LOSS_MSE = 0,
    NTK_LOSS_CROSS_ENTROPY
} ntk_loss;

NTK_API ntk_status ntk_loss_parse(ntk_ctx *ctx, const char *name, ntk_loss *out);
NTK_API const char *ntk_loss_name(ntk_loss loss);

/* The loss of net on (X, Y) into *value; X is N x n with N >= 1. */
NTK_API ntk_status ntk_net_loss(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                                const ntk_mat *x, const ntk_mat *y,
                                double *value);
/* The gradient dL/dtheta into grad (P x 1 or 1 x P, laid out as the
 * parameter vector) and the loss into *value (value may be NULL). */
NTK_API ntk_status ntk_net_grad(ntk_ctx *ctx, const ntk_net *net, ntk_loss loss,
                                const ntk_mat *x, const ntk_mat *y,
                                ntk_mat *grad, double *value);
/* Vector-Jacobian product sum_i Df(x_i) g_i into out (P x 1 or 1 x P) for
 * G (N x m, row i = g_i): the gradient of sum_i g_i . f(x_i). */
NTK_API ntk_status ntk_net_vjp(ntk_ctx *ctx, const ntk_net *net, const ntk_mat *x,
                               const ntk_mat *g, ntk_mat *out);

/* ---- Training -------------------------------------------------------------
 *
 * Optimizers, for the gradient g_t of the minibatch loss at step t = 1, 2...:
 *   NTK_OPT_SGD:      theta -= lr g
 *   NTK_OPT_MOMENTUM: v = momentum v + g (v_0 = 0); theta -= lr v
 *                     (PyTorch's SGD with momentum, no dampening)
 *   NTK_OPT_ADAM:     m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 *                     theta -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 * Optimizer state starts at zero in every ntk_net_train call.
 */
typedef enum ntk_optimizer {
    NTK_OPT_SGD = 0,
    NTK_OPT_MOMENTUM,
    NTK_OPT_ADAM
} ntk_optimizer;

NTK_API ntk_status ntk_optimizer_parse(ntk_ctx *ctx, const char *name,
                                       ntk_optimizer *out);
NTK_API const char *ntk_optimizer_name(ntk_optimizer opt);

/* Called after each epoch with the loss over the whole training set;
 * return nonzero to stop training there. It must not destroy the net. */
typedef int (*ntk_epoch_fn)(void *ud, size_t epoch, double loss);

#define NTK_DEFAULT_LR_SGD 0.01
#define NTK_DEFAULT_LR_ADAM 0.001

typedef struct ntk_train_opts {
    ntk_loss loss;           /* default NTK_LOSS_MSE */
    ntk_optimizer optimizer; /* default NTK_OPT_SGD */
    double lr;               /* > 0; 0: 0.01 (sgd, momentum) or 0.001 (adam) */
    size_t epochs;           /* passes over the data; default 1 (0 is allowed) */
    size_t batch_size;       /* 0 (default) or >= N: full batch */
    int shuffle;             /* reshuffle minibatches every epoch; default 1 */
    uint64_t seed;           /* seed of the shuffling generator; default 0 */
    double momentum;         /* in [0, 1); default 0.9 */
    double beta1, beta2;     /* in [0, 1); defaults 0.9 and 0.999 */
    double eps;              /* > 0; default 1e-8 */
    size_t memory;           /* working bytes; 0: NTK_DEFAULT_MEMORY */
    ntk_epoch_fn callback;   /* may be NULL */
    void *callback_ud;
    double *history;         /* NULL, or room for `epochs` losses */
} ntk_train_opts;

NTK_API void ntk_train_opts_init(ntk_train_opts *opts);

/*
 * Train net in place on (X, Y). Each epoch visits every sample once in
 * minibatches of batch_size (the last one may be smaller; shuffled when
 * opts->shuffle, by a generator seeded once with opts->seed), takes one
 * optimizer step per minibatch on the minibatch's mean loss, then
 * evaluates the loss over the whole training set: that value goes to
 * history[epoch - 1] and to the callback. *epochs_done (may be NULL) is
 * the number of epochs completed.
 *
 * Progress is reported as task "train" in epochs (fractional within an
 * epoch). If the loss or a parameter becomes NaN or Inf (a too large
 * learning rate), NTK_ERR_NUMERIC; if the progress hook cancels,
 * NTK_ERR_INTERRUPTED. In both cases the network is restored to its
 * parameters after the last completed epoch, which *epochs_done counts.
 */
NTK_API ntk_status ntk_net_train(ntk_ctx *ctx, ntk_net *net, const ntk_mat *x,
                                 const ntk_mat *y, const ntk_train_opts *opts,
                                 size_t *epochs_done);

/*
 * How far kernel K1 is from K0 (same shapes, not all zero):
 *   *rel      = ||K1 - K0||_F / ||K0||_F (relative Frobenius change),
 *   *misalign = 1 - <K0, K1>_F / (||K0||_F ||K1||_F) (1 - alignment),
 * the latter computed as ||K0/|K0| - K1/|K1| ||^2 / 2, so it stays
 * accurate when the kernels barely move. Either pointer may be NULL.
 */
NTK_API ntk_status ntk_kernel_distance(ntk_ctx *ctx, const ntk_mat *k0,
                                       const ntk_mat *k1, double *rel,
                                       double *misalign);

/* ---- Infinite-width kernels ----------------------------------------------
 *
 * For the MLP family of ntk_mlp_create (same layer map, stds and
 * activations) in the limit of infinite hidden widths, per output unit:
 *   Sigma_1(x, x') = w^2 x.x' / n_0 + b^2
 *   Sigma_k = w^2 E[phi(u) phi(v)] + b^2,   Sdot_k = w^2 E[phi'(u) phi'(v)],
 *     (u, v) ~ N(0, [[Sigma_{k-1}(x,x), Sigma_{k-1}(x,x')], [.., Sigma_{k-1}(x',x')]])
 *   NTK param:      Theta_1 = Sigma_1,  Theta_k = Sigma_k + Sdot_k Theta_{k-1}
 *   standard param: Theta_1 = x.x' + 1, Theta_k = n_{k-1} E[phi(u) phi(v)] + 1 + Sdot_k Theta_{k-1}
 * with w = weight_std, b = bias_std, phi the activation of layer k - 1.
 * The NNGP is Sigma_L (the same under both parameterizations); the NTK is
 * Theta_L. For m outputs both kernels are these times the m x m identity.
 *
 * Under the standard parameterization the NTK grows with the hidden widths
 * n_{k-1} (neural-tangents' "standard" kernel, which uses the layers'
 * declared widths the same way): it is the leading term of the finite
 * network's expected NTK, and it needs spec->sizes.
 *
 * The expectations use closed forms for identity, relu (arc-cosine), erf
 * and sin, and tensor Gauss-Hermite quadrature for the other activations
 * (or for all with force_quadrature). With quad_points = 0 (the default)
 * each quadrature layer gets the smallest rule of 16, 24, 32, 48, ... 512
 * points per axis whose results agree with the next larger rule's within
 * quad_tol (relative to sqrt(E[phi(u)^2] E[phi(v)^2]), and the same for
 * phi') at the most demanding variances that layer sees; if even 512
 * points fall short, the context's log hook gets a warning. Odd
 * activations (tanh, and sigmoid - 1/2) evaluate half of the grid.
 */
#define NTK_MAX_QUAD_POINTS 512
#define NTK_DEFAULT_QUAD_TOL 1e-8

typedef struct ntk_analytic_spec {
    size_t depth;         /* dense layers L >= 1 */
    const size_t *sizes;  /* NULL, or L + 1 widths (sizes[0] = input dim) */
    const ntk_act *acts;  /* L - 1 hidden activations (NULL: all relu) */
    ntk_param param;      /* default NTK_PARAM_NTK */
    double weight_std;    /* default NTK_DEFAULT_WEIGHT_STD */
    double bias_std;      /* default NTK_DEFAULT_BIAS_STD */
    size_t quad_points;   /* points per axis, 1..512; 0 (default): automatic */
    double quad_tol;      /* automatic rule's target; default 1e-8 */
    int force_quadrature; /* quadrature even where a closed form exists */
} ntk_analytic_spec;

NTK_API void ntk_analytic_spec_init(ntk_analytic_spec *spec);

/*
 * Infinite-width NNGP and NTK between the rows of X1 (N1 x n_0) and X2
 * (N2 x n_0), each N1 x N2; X2 == NULL gives the symmetric kernels of X1
 * (one triangle computed, then mirrored). nngp or ntk may be NULL.
 * Progress task "analytic", in rows.
 */
NTK_API ntk_status ntk_analytic_kernels(ntk_ctx *ctx,
                                        const ntk_analytic_spec *spec,
                                        const ntk_mat *x1, const ntk_mat *x2,
                                        ntk_mat *nngp, ntk_mat *ntk);

/*
 * The Gaussian expectations behind one layer: for (u, v) ~ N(0, [[q1, c],
 * [c, q2]]) (q1, q2 >= 0, c^2 <= q1 q2 up to rounding), *e = E[phi(u) phi(v)]
 * and *ed = E[phi'(u) phi'(v)] (either may be NULL). The quadrature
 * settings come from spec (NULL: defaults; only quad_points, quad_tol and
 * force_quadrature are read).
 */
NTK_API ntk_status ntk_gaussian_expect(ntk_ctx *ctx, const ntk_analytic_spec *spec,
                                       ntk_act act, double q1, double q2, double c,
                                       double *e, double *ed);

#ifdef __cplusplus
}
#endif

#endif /* NTK_H */
