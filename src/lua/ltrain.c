/* ntk.core section: train. Losses, gradients and training as methods of
 * ntk.Net; ntk.kernel_distance; infinite-width kernels (ntk.Analytic). */
#include "lntk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LNTK_ANALYTIC "ntk.Analytic"

static ntk_net *checknet(lua_State *L, int idx) { return lntk_checknet(L, idx); }

static ntk_loss checkloss(lua_State *L, int idx, const char *name)
{
    ntk_loss loss;
    if (ntk_loss_parse(lntk_ctx(L), name, &loss)) luaL_argerror(L, idx, ntk_ctx_error(lntk_ctx(L)));
    return loss;
}

/*
 * Targets at stack index yidx for the loss, N samples and m outputs. For
 * cross_entropy with an N x 1 Y (1-based class indices) pushes a 0-based
 * copy and returns it; otherwise returns Y itself (nothing pushed).
 * Errors name argument `arg` (a position, or the options table).
 */
static lntk_matrix *checktargets(lua_State *L, int yidx, int arg, ntk_loss loss, size_t N,
                                 size_t m, int *pushed)
{
    *pushed = 0;
    lntk_matrix *y = lntk_testmatrix(L, yidx);
    if (!y)
        luaL_argerror(L, arg, lua_pushfstring(L, "Y must be an ntk.Matrix, got %s",
                                              luaL_typename(L, yidx)));
    if (y->closed) luaL_argerror(L, arg, "Y is closed");
    ntk_mat v = lntk_view(y);
    size_t r, c;
    if (ntk_mat_find_nonfinite(&v, &r, &c))
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "Y contains %s at row %I, column %I",
                                      isnan(y->data[r * y->cols + c]) ? "NaN" : "Inf",
                                      (lua_Integer)r + 1, (lua_Integer)c + 1));
    if (loss == NTK_LOSS_MSE) {
        if (y->rows != N || y->cols != m)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "Y must be %Ix%I (one target row per sample) for mse, got %Ix%I",
                                          (lua_Integer)N, (lua_Integer)m, (lua_Integer)y->rows,
                                          (lua_Integer)y->cols));
        return y;
    }
    if (m < 2)
        luaL_argerror(L, arg, "cross_entropy needs a network with at least 2 outputs");
    if (y->rows != N || (y->cols != m && y->cols != 1))
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "Y must be %Ix%I (target distributions) or %Ix1 (class "
                                         "indices 1..%I) for cross_entropy, got %Ix%I",
                                      (lua_Integer)N, (lua_Integer)m, (lua_Integer)N,
                                      (lua_Integer)m, (lua_Integer)y->rows, (lua_Integer)y->cols));
    if (y->cols == m) {
        for (size_t k = 0; k < N * m; k++)
            if (y->data[k] < 0)
                luaL_argerror(L, arg,
                              lua_pushfstring(L, "Y must hold non-negative targets, got %f at row %I, column %I",
                                              y->data[k], (lua_Integer)(k / m) + 1,
                                              (lua_Integer)(k % m) + 1));
        return y;
    }
    lntk_matrix *idx = lntk_newmatrix(L, N, 1, 0);
    *pushed = 1;
    for (size_t i = 0; i < N; i++) {
        double v0 = y->data[i];
        if (v0 != floor(v0) || v0 < 1 || v0 > (double)m)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "Y must hold class indices 1..%I, got %f at row %I",
                                          (lua_Integer)m, v0, (lua_Integer)i + 1));
        idx->data[i] = v0 - 1;
    }
    return idx;
}

/* The loss argument at idx: nil, a name, or {loss = name, progress = ...};
 * returns the options table's index for progress (0 if none). */
static int loss_arg(lua_State *L, int idx, ntk_loss *loss)
{
    static const char *const known[] = {"loss", "progress", NULL};
    const char *name = "mse";
    int opts = 0;
    if (lua_istable(L, idx)) {
        lntk_checkoptions(L, idx, known);
        name = lntk_optstring(L, idx, "loss", "mse");
        opts = idx;
    } else if (!lua_isnoneornil(L, idx)) {
        name = luaL_checkstring(L, idx);
    }
    *loss = checkloss(L, idx, name);
    return opts;
}

/* net:loss(X, Y[, loss or {loss =, progress =}]) -> loss, and with grad
 * net:grad(...) -> P x 1 gradient, loss */
static int loss_call(lua_State *L, int grad)
{
    ntk_net *net = checknet(L, 1);
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    ntk_loss loss;
    int oi = loss_arg(L, 4, &loss);
    luaL_argcheck(L, x->rows > 0, 2, "X must have at least one row");
    int pushed;
    lntk_matrix *y = checktargets(L, 3, 3, loss, x->rows, ntk_net_output_dim(net), &pushed);
    lntk_matrix *g = grad ? lntk_newmatrix(L, ntk_net_num_params(net), 1, 0) : NULL;
    ntk_mat vx = lntk_view(x), vy = lntk_view(y), vg = g ? lntk_view(g) : (ntk_mat){0, 0, NULL};
    double value;
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    lntk_net_hold(L, 1, 1);
    ntk_status st = grad ? ntk_net_grad(lntk_ctx(L), net, loss, &vx, &vy, &vg, &value)
                         : ntk_net_loss(lntk_ctx(L), net, loss, &vx, &vy, &value);
    lntk_net_hold(L, 1, -1);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    lua_pushnumber(L, value);
    return grad ? 2 : 1;
}

static int n_loss(lua_State *L) { return loss_call(L, 0); }
static int n_grad(lua_State *L) { return loss_call(L, 1); }

/* net:vjp(X, G[, {progress =}]) -> P x 1 */
static int n_vjp(lua_State *L)
{
    static const char *const known[] = {"progress", NULL};
    ntk_net *net = checknet(L, 1);
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    lntk_matrix *g = lntk_checkmatrix(L, 3);
    size_t m = ntk_net_output_dim(net);
    if (g->rows != x->rows || g->cols != m)
        luaL_argerror(L, 3,
                      lua_pushfstring(L, "G must be %Ix%I (one cotangent row per sample), got %Ix%I",
                                      (lua_Integer)x->rows, (lua_Integer)m, (lua_Integer)g->rows,
                                      (lua_Integer)g->cols));
    lntk_checkfinite(L, 3, "G");
    lntk_checkoptions(L, 4, known);
    int oi = lua_istable(L, 4) ? 4 : 0;
    lntk_matrix *out = lntk_newmatrix(L, ntk_net_num_params(net), 1, 0);
    ntk_mat vx = lntk_view(x), vg = lntk_view(g), vo = lntk_view(out);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    lntk_net_hold(L, 1, 1);
    ntk_status st = ntk_net_vjp(lntk_ctx(L), net, &vx, &vg, &vo);
    lntk_net_hold(L, 1, -1);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    return 1;
}

/* ---- training ---- */

typedef struct train_cb {
    lua_State *L;
    ntk_ctx *ctx;
    int fn_idx, err_idx;
    int failed; /* 1: the callback raised (error at err_idx); 2: no stack */
} train_cb;

static int epoch_hook(void *ud, size_t epoch, double loss)
{
    train_cb *cb = ud;
    lua_State *L = cb->L;
    if (!lua_checkstack(L, 4)) {
        cb->failed = 2;
        return 1;
    }
    lua_pushvalue(L, cb->fn_idx);
    lua_pushinteger(L, (lua_Integer)epoch);
    lua_pushnumber(L, loss);
    int rc = lua_pcall(L, 2, 1, 0);
    if (rc != LUA_OK) {
        lua_replace(L, cb->err_idx);
        cb->failed = 1;
        return 1;
    }
    int stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

/* An optional number field in [0, 1). */
static double unit_field(lua_State *L, int t, const char *key, double def)
{
    double v = lntk_optnumber(L, t, key, def);
    if (!(v >= 0 && v < 1))
        luaL_argerror(L, t, lua_pushfstring(L, "%s must be in [0, 1), got %f", key, v));
    return v;
}

/* net:train{X = ..., Y = ..., loss = ..., optimizer = ..., ...} */
static int n_train(lua_State *L)
{
    static const char *const known[] = {"X", "Y", "loss", "optimizer", "lr", "epochs",
                                        "batch_size", "seed", "shuffle", "momentum",
                                        "beta1", "beta2", "eps", "memory", "callback",
                                        "progress", NULL};
    ntk_net *net = checknet(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lntk_checkoptions(L, 2, known);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_train_opts o;
    ntk_train_opts_init(&o);

    /* X and Y stay on the stack (3, 4) so a callback that edits the table
     * cannot have them collected while training reads them. */
    lua_getfield(L, 2, "X");
    if (!lntk_testmatrix(L, 3))
        luaL_argerror(L, 2, lua_pushfstring(L, "X must be an ntk.Matrix (N x %I), got %s",
                                            (lua_Integer)ntk_net_input_dim(net),
                                            luaL_typename(L, 3)));
    lntk_matrix *x = lntk_testmatrix(L, 3);
    size_t n = ntk_net_input_dim(net), m = ntk_net_output_dim(net);
    if (x->closed) luaL_argerror(L, 2, "X is closed");
    if (x->cols != n)
        luaL_argerror(L, 2, lua_pushfstring(L, "X must be N x %I (one sample per row), got %Ix%I",
                                            (lua_Integer)n, (lua_Integer)x->rows,
                                            (lua_Integer)x->cols));
    if (x->rows == 0) luaL_argerror(L, 2, "X must have at least one row");
    {
        ntk_mat vx = lntk_view(x);
        size_t r, c;
        if (ntk_mat_find_nonfinite(&vx, &r, &c))
            luaL_argerror(L, 2, lua_pushfstring(L, "X contains %s at row %I, column %I",
                                                isnan(x->data[r * n + c]) ? "NaN" : "Inf",
                                                (lua_Integer)r + 1, (lua_Integer)c + 1));
    }
    o.loss = checkloss(L, 2, lntk_optstring(L, 2, "loss", "mse"));
    if (ntk_optimizer_parse(ctx, lntk_optstring(L, 2, "optimizer", "sgd"), &o.optimizer))
        luaL_argerror(L, 2, ntk_ctx_error(ctx));
    lua_getfield(L, 2, "Y"); /* 4 */
    int pushed;
    lntk_matrix *y = checktargets(L, 4, 2, o.loss, x->rows, m, &pushed);
    if (pushed) lua_replace(L, 4);
    if (lua_getfield(L, 2, "lr") != LUA_TNIL) {
        o.lr = lntk_optnumber(L, 2, "lr", 0);
        if (!(o.lr > 0)) luaL_argerror(L, 2, lua_pushfstring(L, "lr must be > 0, got %f", o.lr));
    }
    lua_pop(L, 1);
    lua_Integer epochs = lntk_optinteger(L, 2, "epochs", 1);
    if (epochs < 0 || epochs > INT32_MAX)
        luaL_argerror(L, 2, lua_pushfstring(L, "epochs must be between 0 and 2^31 - 1, got %I", epochs));
    o.epochs = (size_t)epochs;
    lua_Integer batch = lntk_optinteger(L, 2, "batch_size", 0);
    if (batch < 0)
        luaL_argerror(L, 2, lua_pushfstring(L, "batch_size must be >= 1 (or 0: full batch), got %I", batch));
    o.batch_size = (size_t)batch;
    o.seed = (uint64_t)lntk_optinteger(L, 2, "seed", 0);
    o.shuffle = lntk_optboolean(L, 2, "shuffle", 1);
    o.momentum = unit_field(L, 2, "momentum", 0.9);
    o.beta1 = unit_field(L, 2, "beta1", 0.9);
    o.beta2 = unit_field(L, 2, "beta2", 0.999);
    o.eps = lntk_optnumber(L, 2, "eps", 1e-8);
    if (!(o.eps > 0)) luaL_argerror(L, 2, lua_pushfstring(L, "eps must be > 0, got %f", o.eps));
    lua_Integer mem = lntk_optinteger(L, 2, "memory", 0);
    if (mem < 0) luaL_argerror(L, 2, "memory must be a positive number of bytes");
    o.memory = (size_t)mem;

    int t = lua_getfield(L, 2, "callback"); /* 5 */
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
        luaL_argerror(L, 2, lua_pushfstring(L, "callback must be a function(epoch, loss), got %s",
                                            luaL_typename(L, 5)));
    lua_pushnil(L); /* 6: an error the callback raises */
    train_cb cb = {.L = L, .ctx = ctx, .fn_idx = 5, .err_idx = 6, .failed = 0};
    if (t == LUA_TFUNCTION) {
        o.callback = epoch_hook;
        o.callback_ud = &cb;
    }
    double *history = lua_newuserdatauv(L, (o.epochs ? o.epochs : 1) * sizeof(double), 0); /* 7 */
    o.history = history;

    ntk_mat vx = lntk_view(x), vy = lntk_view(y);
    size_t done = 0;
    lntk_progress prog;
    lntk_progress_begin(L, &prog, 2);
    lntk_net_hold(L, 1, 1);
    ntk_status st = ntk_net_train(ctx, net, &vx, &vy, &o, &done);
    lntk_net_hold(L, 1, -1);
    lntk_progress_end(L, &prog);
    if (cb.failed == 1) {
        lua_pushvalue(L, 6);
        return lua_error(L);
    }
    if (cb.failed == 2) return luaL_error(L, "train: no Lua stack left for the callback");
    if (st && st != NTK_ERR_NUMERIC) return lntk_error(L, st);
    lua_createtable(L, (int)done, 0);
    for (size_t e = 0; e < done; e++) {
        lua_pushnumber(L, history[e]);
        lua_rawseti(L, -2, (lua_Integer)e + 1);
    }
    if (st) {
        /* Divergence is an outcome, not misuse: nil, message, history. */
        lua_pushnil(L);
        lua_pushstring(L, ntk_ctx_error(ctx));
        lua_rotate(L, -3, -1);
        return 3;
    }
    return 1;
}

/* ---- kernel distance ---- */

static int l_kernel_distance(lua_State *L)
{
    lntk_matrix *a = lntk_checkfinite(L, 1, "K0");
    lntk_matrix *b = lntk_checkfinite(L, 2, "K1");
    luaL_argcheck(L, a->rows * a->cols > 0, 1, "K0 is empty (a distance needs entries)");
    if (a->rows != b->rows || a->cols != b->cols)
        luaL_argerror(L, 2, lua_pushfstring(L, "K1 must have K0's shape %Ix%I, got %Ix%I",
                                            (lua_Integer)a->rows, (lua_Integer)a->cols,
                                            (lua_Integer)b->rows, (lua_Integer)b->cols));
    ntk_mat va = lntk_view(a), vb = lntk_view(b);
    double rel, mis;
    ntk_status st = ntk_kernel_distance(lntk_ctx(L), &va, &vb, &rel, &mis);
    if (st) return lntk_error(L, st);
    lua_pushnumber(L, rel);
    lua_pushnumber(L, mis);
    return 2;
}

/* ---- infinite-width kernels ---- */

typedef struct lntk_analytic {
    size_t depth, outputs;
    int has_sizes;
    ntk_analytic_spec spec; /* pointers filled by spec_of() */
    /* followed by depth + 1 sizes (if has_sizes) and depth - 1 activations */
} lntk_analytic;

static size_t *an_sizes(lntk_analytic *a) { return (size_t *)(void *)(a + 1); }
static ntk_act *an_acts(lntk_analytic *a)
{
    return (ntk_act *)(void *)(an_sizes(a) + a->depth + 1);
}

static const ntk_analytic_spec *spec_of(lntk_analytic *a)
{
    a->spec.depth = a->depth;
    a->spec.sizes = a->has_sizes ? an_sizes(a) : NULL;
    a->spec.acts = an_acts(a);
    return &a->spec;
}

static lntk_analytic *checkanalytic(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LNTK_ANALYTIC);
}

/* Quadrature options shared by ntk.analytic and ntk.gaussian_expect. */
static void quad_fields(lua_State *L, int t, ntk_analytic_spec *s)
{
    lua_Integer qp = lntk_optinteger(L, t, "quad_points", 0);
    if (qp < 0 || qp > NTK_MAX_QUAD_POINTS)
        luaL_argerror(L, t, lua_pushfstring(L, "quad_points must be 0 (automatic) or 1..%d, got %I",
                                            NTK_MAX_QUAD_POINTS, qp));
    s->quad_points = (size_t)qp;
    s->quad_tol = lntk_optnumber(L, t, "quad_tol", NTK_DEFAULT_QUAD_TOL);
    if (!(s->quad_tol >= 1e-14 && s->quad_tol < 1))
        luaL_argerror(L, t, lua_pushfstring(L, "quad_tol must be in [1e-14, 1), got %f", s->quad_tol));
    s->force_quadrature = lntk_optboolean(L, t, "force_quadrature", 0);
}

/* ntk.analytic{sizes = {...} | depth = L [, outputs = m], activation, ...} */
static int l_analytic(lua_State *L)
{
    static const char *const known[] = {"sizes", "depth", "outputs", "activation",
                                        "parameterization", "weight_std", "bias_std",
                                        "quad_points", "quad_tol", "force_quadrature", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lntk_checkoptions(L, 1, known);
    ntk_ctx *ctx = lntk_ctx(L);
    int ts = lua_getfield(L, 1, "sizes");    /* 2 */
    int td = lua_getfield(L, 1, "depth");    /* 3 */
    int to = lua_getfield(L, 1, "outputs");  /* 4 */
    if ((ts == LUA_TNIL) == (td == LUA_TNIL))
        luaL_argerror(L, 1, "give either sizes = {n, h1, ..., m} or depth = L (dense layers)");
    size_t depth, outputs = 1;
    int has_sizes = ts != LUA_TNIL;
    if (has_sizes) {
        if (ts != LUA_TTABLE)
            luaL_argerror(L, 1, lua_pushfstring(L, "sizes must be a table of widths, got %s",
                                                luaL_typename(L, 2)));
        if (to != LUA_TNIL)
            luaL_argerror(L, 1, "outputs goes with depth; with sizes the last width is the output count");
        lua_Integer ns = luaL_len(L, 2);
        if (ns < 2 || ns > 100001)
            luaL_argerror(L, 1, "sizes must list at least an input and an output width");
        depth = (size_t)ns - 1;
    } else {
        int isint;
        lua_Integer d = lua_tointegerx(L, 3, &isint);
        if (!isint || d < 1 || d > 100000)
            luaL_argerror(L, 1, lua_pushfstring(L, "depth must be an integer number of dense "
                                                   "layers in 1..100000, got %s",
                                                luaL_tolstring(L, 3, NULL)));
        depth = (size_t)d;
        if (to != LUA_TNIL) {
            lua_Integer mo = lua_tointegerx(L, 4, &isint);
            if (!isint || mo < 1 || mo > INT32_MAX)
                luaL_argerror(L, 1, "outputs must be a positive integer");
            outputs = (size_t)mo;
        }
    }
    size_t bytes = sizeof(lntk_analytic) + (depth + 1) * sizeof(size_t) +
                   depth * sizeof(ntk_act);
    lntk_analytic *a = lua_newuserdatauv(L, bytes, 0); /* 5 */
    memset(a, 0, bytes);
    a->depth = depth;
    a->has_sizes = has_sizes;
    ntk_analytic_spec_init(&a->spec);
    size_t *sizes = an_sizes(a);
    if (has_sizes) {
        for (size_t k = 0; k <= depth; k++) {
            lua_geti(L, 2, (lua_Integer)k + 1);
            int isint;
            lua_Integer w = lua_tointegerx(L, -1, &isint);
            if (!isint || w < 1 || w > INT32_MAX)
                luaL_argerror(L, 1, lua_pushfstring(L, "sizes[%I] must be a positive integer, got %s",
                                                    (lua_Integer)k + 1, luaL_tolstring(L, -1, NULL)));
            sizes[k] = (size_t)w;
            lua_pop(L, 1);
        }
        outputs = sizes[depth];
    }
    a->outputs = outputs;
    ntk_act *acts = an_acts(a);
    size_t hidden = depth - 1;
    int t = lua_getfield(L, 1, "activation");
    if (t == LUA_TNIL || t == LUA_TSTRING) {
        ntk_act act = NTK_ACT_RELU;
        if (t == LUA_TSTRING && ntk_act_parse(ctx, lua_tostring(L, -1), &act))
            luaL_argerror(L, 1, ntk_ctx_error(ctx));
        for (size_t k = 0; k < hidden; k++) acts[k] = act;
    } else if (t == LUA_TTABLE) {
        if (luaL_len(L, -1) != (lua_Integer)hidden)
            luaL_argerror(L, 1, lua_pushfstring(L, "activation must name one activation per hidden layer (%I), got %I",
                                                (lua_Integer)hidden, luaL_len(L, -1)));
        for (size_t k = 0; k < hidden; k++) {
            if (lua_geti(L, -1, (lua_Integer)k + 1) != LUA_TSTRING)
                luaL_argerror(L, 1, lua_pushfstring(L, "activation[%I] must be a string", (lua_Integer)k + 1));
            if (ntk_act_parse(ctx, lua_tostring(L, -1), &acts[k])) luaL_argerror(L, 1, ntk_ctx_error(ctx));
            lua_pop(L, 1);
        }
    } else {
        luaL_argerror(L, 1, "activation must be a name or a table of names");
    }
    lua_pop(L, 1);
    if (ntk_param_parse(ctx, lntk_optstring(L, 1, "parameterization", "ntk"), &a->spec.param))
        luaL_argerror(L, 1, ntk_ctx_error(ctx));
    a->spec.weight_std = lntk_optnumber(L, 1, "weight_std", NTK_DEFAULT_WEIGHT_STD);
    a->spec.bias_std = lntk_optnumber(L, 1, "bias_std", NTK_DEFAULT_BIAS_STD);
    if (a->spec.weight_std < 0) luaL_argerror(L, 1, "weight_std must be >= 0");
    if (a->spec.bias_std < 0) luaL_argerror(L, 1, "bias_std must be >= 0");
    quad_fields(L, 1, &a->spec);
    luaL_setmetatable(L, LNTK_ANALYTIC);
    return 1;
}

enum { MODE_KERNEL, MODE_FULL, MODE_TRACE, MODE_BLOCKS, MODE_OUTPUTS };

/* Expand the N1 x N2 per-output kernel k into the requested layout,
 * pushing the result (a matrix, or a table of m matrices). */
static void push_layout(lua_State *L, const lntk_matrix *k, int mode, size_t m, int mean)
{
    size_t N1 = k->rows, N2 = k->cols;
    switch (mode) {
    case MODE_FULL: {
        size_t rows, cols;
        if (ntk_mat_count(NULL, N1, m, &rows) || ntk_mat_count(NULL, N2, m, &cols) ||
            ntk_mat_count(NULL, rows, cols, &rows))
            luaL_error(L, "the full %I-output kernel is too large", (lua_Integer)m);
        lntk_matrix *out = lntk_newmatrix(L, N1 * m, N2 * m, 1);
        for (size_t i = 0; i < N1; i++)
            for (size_t j = 0; j < N2; j++) {
                double v = k->data[i * N2 + j];
                for (size_t a = 0; a < m; a++) out->data[(i * m + a) * (N2 * m) + j * m + a] = v;
            }
        return;
    }
    case MODE_TRACE: {
        lntk_matrix *out = lntk_newmatrix(L, N1, N2, 0);
        double s = mean ? 1.0 : (double)m;
        for (size_t i = 0; i < N1 * N2; i++) out->data[i] = s * k->data[i];
        return;
    }
    case MODE_BLOCKS: {
        lntk_matrix *out = lntk_newmatrix(L, N1 * m, m, 1);
        for (size_t i = 0; i < N1; i++)
            for (size_t a = 0; a < m; a++) out->data[(i * m + a) * m + a] = k->data[i * N2 + i];
        return;
    }
    case MODE_OUTPUTS: {
        lua_createtable(L, (int)m, 0);
        for (size_t a = 0; a < m; a++) {
            lntk_matrix *out = lntk_newmatrix(L, N1, N2, 0);
            memcpy(out->data, k->data, N1 * N2 * sizeof(double));
            lua_rawseti(L, -2, (lua_Integer)a + 1);
        }
        return;
    }
    default: {
        lntk_matrix *out = lntk_newmatrix(L, N1, N2, 0);
        memcpy(out->data, k->data, N1 * N2 * sizeof(double));
        return;
    }
    }
}

typedef struct log_capture {
    char msg[512];
} log_capture;

static void capture_log(void *ud, int level, const char *msg)
{
    if (level < NTK_LOG_WARN) return;
    log_capture *c = ud;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

/* a:ntk / a:nngp / a:kernels (X1[, X2][, opts]); which: 1 nngp, 2 ntk, 3 both */
static int analytic_call(lua_State *L, int which)
{
    static const char *const known[] = {"mode", "normalize", "progress", NULL};
    lntk_analytic *a = checkanalytic(L, 1);
    const ntk_analytic_spec *spec = spec_of(a);
    size_t n0 = a->has_sizes ? an_sizes(a)[0] : 0;
    if (!n0) {
        /* Without sizes the inputs' width is X1's. */
        n0 = lntk_checkmatrix(L, 2)->cols;
        if (n0 == 0) luaL_argerror(L, 2, "X1 must have at least one column");
    }
    lntk_matrix *x1, *x2;
    int oi = lntk_kernel_args(L, n0, &x1, &x2);
    if (oi) lntk_checkoptions(L, oi, known);
    static const char *const modes[] = {"kernel", "full", "trace", "blocks", "outputs", NULL};
    const char *mode_name = lntk_optstring(L, oi, "mode", "kernel");
    int mode = -1;
    for (int i = 0; modes[i]; i++)
        if (strcmp(mode_name, modes[i]) == 0) mode = i;
    if (mode < 0)
        luaL_argerror(L, oi, lua_pushfstring(L, "mode must be kernel, full, trace, blocks or outputs, got '%s'",
                                             mode_name));
    if (mode == MODE_BLOCKS && x2) luaL_argerror(L, 3, "mode 'blocks' takes one input set");
    const char *norm = lntk_optstring(L, oi, "normalize", "sum");
    int mean = 0;
    if (strcmp(norm, "mean") == 0) mean = 1;
    else if (strcmp(norm, "sum") != 0)
        luaL_argerror(L, oi, lua_pushfstring(L, "normalize must be 'sum' or 'mean', got '%s'", norm));

    size_t N1 = x1->rows, N2 = x2 ? x2->rows : x1->rows;
    lntk_matrix *kn = (which & 1) ? lntk_newmatrix(L, N1, N2, 0) : NULL;
    lntk_matrix *kt = (which & 2) ? lntk_newmatrix(L, N1, N2, 0) : NULL;
    ntk_mat v1 = lntk_view(x1), v2 = x2 ? lntk_view(x2) : (ntk_mat){0, 0, NULL};
    ntk_mat vn = kn ? lntk_view(kn) : (ntk_mat){0, 0, NULL};
    ntk_mat vt = kt ? lntk_view(kt) : (ntk_mat){0, 0, NULL};
    ntk_ctx *ctx = lntk_ctx(L);
    log_capture cap;
    cap.msg[0] = '\0';
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    ntk_ctx_set_log(ctx, capture_log, &cap);
    ntk_status st = ntk_analytic_kernels(ctx, spec, &v1, x2 ? &v2 : NULL, kn ? &vn : NULL,
                                         kt ? &vt : NULL);
    ntk_ctx_set_log(ctx, NULL, NULL);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    if (cap.msg[0]) lua_warning(L, cap.msg, 0);
    if (mode == MODE_KERNEL) return which == 3 ? 2 : 1;
    int nres = 0;
    if (kn) {
        push_layout(L, kn, mode, a->outputs, mean);
        nres++;
    }
    if (kt) {
        push_layout(L, kt, mode, a->outputs, mean);
        nres++;
    }
    return nres;
}

static int a_ntk(lua_State *L) { return analytic_call(L, 2); }
static int a_nngp(lua_State *L) { return analytic_call(L, 1); }
static int a_kernels(lua_State *L) { return analytic_call(L, 3); }

static int a_depth(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkanalytic(L, 1)->depth);
    return 1;
}

static int a_output_dim(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkanalytic(L, 1)->outputs);
    return 1;
}

static int a_sizes(lua_State *L)
{
    lntk_analytic *a = checkanalytic(L, 1);
    if (!a->has_sizes) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, (int)a->depth + 1, 0);
    for (size_t k = 0; k <= a->depth; k++) {
        lua_pushinteger(L, (lua_Integer)an_sizes(a)[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

static int a_activations(lua_State *L)
{
    lntk_analytic *a = checkanalytic(L, 1);
    lua_createtable(L, (int)a->depth, 0);
    for (size_t k = 0; k + 1 < a->depth; k++) {
        lua_pushstring(L, ntk_act_name(an_acts(a)[k]));
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

static int a_parameterization(lua_State *L)
{
    lua_pushstring(L, ntk_param_name(checkanalytic(L, 1)->spec.param));
    return 1;
}

static int a_weight_std(lua_State *L)
{
    lua_pushnumber(L, checkanalytic(L, 1)->spec.weight_std);
    return 1;
}

static int a_bias_std(lua_State *L)
{
    lua_pushnumber(L, checkanalytic(L, 1)->spec.bias_std);
    return 1;
}

static int a_tostring(lua_State *L)
{
    lntk_analytic *a = checkanalytic(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "ntk.Analytic: infinite-width MLP, %I dense layers", (lua_Integer)a->depth);
    luaL_addvalue(&b);
    if (a->has_sizes) {
        luaL_addstring(&b, " (");
        for (size_t k = 0; k <= a->depth; k++) {
            lua_pushfstring(L, "%s%I", k ? " -> " : "", (lua_Integer)an_sizes(a)[k]);
            luaL_addvalue(&b);
        }
        luaL_addstring(&b, ")");
    }
    lua_pushfstring(L, ", %I output%s\n  activations", (lua_Integer)a->outputs,
                    a->outputs == 1 ? "" : "s");
    luaL_addvalue(&b);
    if (a->depth == 1) luaL_addstring(&b, " none");
    for (size_t k = 0; k + 1 < a->depth; k++) {
        lua_pushfstring(L, " %s", ntk_act_name(an_acts(a)[k]));
        luaL_addvalue(&b);
    }
    lua_pushfstring(L, ", parameterization %s, weight_std %f, bias_std %f",
                    ntk_param_name(a->spec.param), a->spec.weight_std, a->spec.bias_std);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return 1;
}

/* ntk.gaussian_expect(activation, q1, q2, c[, {quad_points, quad_tol,
 * force_quadrature}]) -> E[phi(u) phi(v)], E[phi'(u) phi'(v)] */
static int l_gaussian_expect(lua_State *L)
{
    static const char *const known[] = {"quad_points", "quad_tol", "force_quadrature", NULL};
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_act act;
    if (ntk_act_parse(ctx, luaL_checkstring(L, 1), &act)) luaL_argerror(L, 1, ntk_ctx_error(ctx));
    double q1 = luaL_checknumber(L, 2), q2 = luaL_checknumber(L, 3), c = luaL_checknumber(L, 4);
    luaL_argcheck(L, isfinite(q1) && q1 >= 0, 2, "q1 must be a finite variance >= 0");
    luaL_argcheck(L, isfinite(q2) && q2 >= 0, 3, "q2 must be a finite variance >= 0");
    luaL_argcheck(L, isfinite(c), 4, "c must be finite");
    luaL_argcheck(L, c * c <= q1 * q2 * (1 + 1e-12), 4, "c^2 must not exceed q1 q2 (a covariance)");
    lntk_checkoptions(L, 5, known);
    ntk_analytic_spec s;
    ntk_analytic_spec_init(&s);
    quad_fields(L, lua_isnoneornil(L, 5) ? 0 : 5, &s);
    double e, ed;
    ntk_status st = ntk_gaussian_expect(ctx, &s, act, q1, q2, c, &e, &ed);
    if (st) return lntk_error(L, st);
    lua_pushnumber(L, e);
    lua_pushnumber(L, ed);
    return 2;
}

static const luaL_Reg module_fns[] = {
    {"kernel_distance", l_kernel_distance},
    {"analytic", l_analytic},
    {"gaussian_expect", l_gaussian_expect},
    {NULL, NULL},
};

static const luaL_Reg net_methods[] = {
    {"loss", n_loss},
    {"grad", n_grad},
    {"vjp", n_vjp},
    {"train", n_train},
    {NULL, NULL},
};

static const luaL_Reg analytic_methods[] = {
    {"ntk", a_ntk},
    {"nngp", a_nngp},
    {"kernels", a_kernels},
    {"depth", a_depth},
    {"output_dim", a_output_dim},
    {"sizes", a_sizes},
    {"activations", a_activations},
    {"parameterization", a_parameterization},
    {"weight_std", a_weight_std},
    {"bias_std", a_bias_std},
    {NULL, NULL},
};

static const luaL_Reg analytic_meta[] = {
    {"__tostring", a_tostring},
    {NULL, NULL},
};

void lntk_open_train(lua_State *L, int ctx_idx)
{
    lntk_setfuncs(L, ctx_idx, module_fns);
    /* Training methods join ntk.Net's method table (made by lnet.c). */
    lntk_addmethods(L, ctx_idx, "Net", net_methods);
    lntk_newclass(L, ctx_idx, LNTK_ANALYTIC, "Analytic", analytic_meta, analytic_methods);
}
