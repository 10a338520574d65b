/* ntk.core section: linalg -- eigen routines, matrix-free NTK spectra,
 * spectrum statistics and kernel methods. */
#include "lntk.h"

#include <math.h>
#include <string.h>

#include <stdio.h>

/* Metatables of result tables, for their __tostring. */
#define LNTK_SPECTRUM_STATS "ntk.SpectrumStats"
#define LNTK_EIGS_INFO "ntk.EigsInfo"

/* Turn a failed status into Lua's answer: expected numerical failures
 * (LAPACK, no convergence) are nil, message; misuse the core detected is an
 * argument error at arg (0: a plain error); the rest raise. */
static int answer(lua_State *L, ntk_status st, int arg)
{
    switch (st) {
    case NTK_ERR_NUMERIC:
    case NTK_ERR_NOCONV: return lntk_failure(L, st);
    case NTK_ERR_INVALID:
    case NTK_ERR_SHAPE:
        if (arg) return luaL_argerror(L, arg, ntk_ctx_error(lntk_ctx(L)));
        return lntk_error(L, st);
    default: return lntk_error(L, st);
    }
}

static lntk_matrix *checksquare(lua_State *L, int idx, const char *what)
{
    lntk_matrix *a = lntk_checkmatrix(L, idx);
    if (a->rows != a->cols)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s must be square, got %Ix%I", what,
                                      (lua_Integer)a->rows, (lua_Integer)a->cols));
    return lntk_checkfinite(L, idx, what);
}

/* opts.k: absent (0, meaning all) or an integer 1..n. */
static size_t optk(lua_State *L, int idx, size_t n)
{
    int absent = lua_getfield(L, idx, "k") == LUA_TNIL;
    lua_pop(L, 1);
    if (absent) return 0;
    lua_Integer k = lntk_optinteger(L, idx, "k", 0);
    if (k < 1 || (size_t)k > n)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "k must be between 1 and n = %I, got %I",
                                      (lua_Integer)n, k));
    return (size_t)k;
}

static double opttol(lua_State *L, int idx, const char *key)
{
    double t = lntk_optnumber(L, idx, key, 0);
    if (t < 0) luaL_argerror(L, idx, lua_pushfstring(L, "%s must be >= 0", key));
    return t;
}

/* ---- dense eigendecomposition ---- */

static void eigh_opts(lua_State *L, int idx, size_t n, ntk_eigh_opts *o)
{
    static const char *const known[] = {"k", "symmetrize", "symmetry_tol", "driver",
                                        "progress", NULL};
    ntk_eigh_opts_init(o);
    lntk_checkoptions(L, idx, known);
    if (lua_isnoneornil(L, idx)) return;
    o->k = optk(L, idx, n);
    if (o->k == n) o->k = 0;
    o->symmetrize = lntk_optboolean(L, idx, "symmetrize", 0);
    o->symmetry_tol = opttol(L, idx, "symmetry_tol");
    const char *d = lntk_optstring(L, idx, "driver", "auto");
    if (strcmp(d, "auto") == 0) o->driver = NTK_EIGH_AUTO;
    else if (strcmp(d, "evd") == 0) o->driver = NTK_EIGH_EVD;
    else if (strcmp(d, "evr") == 0) o->driver = NTK_EIGH_EVR;
    else
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "driver must be 'auto', 'evd' or 'evr', got '%s'", d));
}

static int eigh_common(lua_State *L, int vectors)
{
    lntk_matrix *a = checksquare(L, 1, "K");
    ntk_eigh_opts o;
    eigh_opts(L, 2, a->rows, &o);
    size_t n = a->rows, k = o.k ? o.k : n;
    lntk_matrix *w = lntk_newmatrix(L, k, 1, 0);
    lntk_matrix *v = vectors ? lntk_newmatrix(L, n, k, 0) : NULL;
    ntk_mat va = lntk_view(a), vw = lntk_view(w), vv = v ? lntk_view(v) : (ntk_mat){0};
    lntk_progress prog;
    lntk_progress_begin(L, &prog, lua_istable(L, 2) ? 2 : 0);
    ntk_status st = ntk_eigh(lntk_ctx(L), &va, &o, &vw, v ? &vv : NULL);
    lntk_progress_end(L, &prog);
    if (st) return answer(L, st, 1);
    return vectors ? 2 : 1;
}

static int l_eigvalsh(lua_State *L) { return eigh_common(L, 0); }
static int l_eigh(lua_State *L) { return eigh_common(L, 1); }

/* ---- iterative top-k ---- */

/* Options of ntk.eigs (a dense matrix) and of net:ntk_eigs (products). */
static const char *const eigs_matrix_keys[] = {"vectors", "tol",  "block",
                                               "basis",   "maxiter", "seed",
                                               "symmetrize", "symmetry_tol",
                                               "progress", NULL};
static const char *const eigs_net_keys[] = {"vectors", "tol",    "block", "basis",
                                            "maxiter", "seed",   "memory",
                                            "progress", NULL};

static int eigs_opts(lua_State *L, int idx, const char *const known[], ntk_eigs_opts *o)
{
    ntk_eigs_opts_init(o);
    lntk_checkoptions(L, idx, known);
    if (lua_isnoneornil(L, idx)) return 0;
    int vectors = lntk_optboolean(L, idx, "vectors", 0);
    double tol = lntk_optnumber(L, idx, "tol", 0);
    if (tol < 0 || tol >= 1)
        luaL_argerror(L, idx, lua_pushfstring(L, "tol must be in (0, 1), got %f", tol));
    o->tol = tol;
    lua_Integer b = lntk_optinteger(L, idx, "block", 0);
    lua_Integer basis = lntk_optinteger(L, idx, "basis", 0);
    lua_Integer maxiter = lntk_optinteger(L, idx, "maxiter", 0);
    lua_Integer mem = lntk_optinteger(L, idx, "memory", 0);
    if (b < 0 || b > INT32_MAX) luaL_argerror(L, idx, "block must be a positive integer");
    if (basis < 0 || basis > INT32_MAX)
        luaL_argerror(L, idx, "basis must be a positive integer");
    if (maxiter < 0) luaL_argerror(L, idx, "maxiter must be a positive integer");
    if (mem < 0) luaL_argerror(L, idx, "memory must be a positive number of bytes");
    o->block = (size_t)b;
    o->basis = (size_t)basis;
    o->maxiter = (size_t)maxiter;
    o->memory = (size_t)mem;
    o->seed = (uint64_t)lntk_optinteger(L, idx, "seed", 0);
    o->symmetrize = lntk_optboolean(L, idx, "symmetrize", 0);
    o->symmetry_tol = opttol(L, idx, "symmetry_tol");
    return vectors;
}

static size_t checkk(lua_State *L, int idx, size_t n)
{
    int isint;
    lua_Integer k = lua_tointegerx(L, idx, &isint);
    if (!isint) luaL_typeerror(L, idx, "integer (k)");
    if (k < 1 || (size_t)k > n)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "k must be between 1 and n = %I, got %I",
                                      (lua_Integer)n, k));
    return (size_t)k;
}

/* Push the info table of an eigs run. */
static void push_info(lua_State *L, const ntk_eigs_info *in, const lntk_matrix *res,
                      double tol, int ok)
{
    lua_createtable(L, 0, 9);
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "converged");
    lua_pushinteger(L, (lua_Integer)in->converged);
    lua_setfield(L, -2, "nconverged");
    lua_pushinteger(L, (lua_Integer)in->iterations);
    lua_setfield(L, -2, "iterations");
    lua_pushinteger(L, (lua_Integer)in->matvecs);
    lua_setfield(L, -2, "matvecs");
    lua_pushinteger(L, (lua_Integer)in->restarts);
    lua_setfield(L, -2, "restarts");
    lua_pushnumber(L, in->residual);
    lua_setfield(L, -2, "residual");
    lua_pushnumber(L, in->scale);
    lua_setfield(L, -2, "scale");
    lua_pushnumber(L, tol > 0 ? tol : NTK_DEFAULT_EIGS_TOL);
    lua_setfield(L, -2, "tol");
    lua_pushboolean(L, in->dense);
    lua_setfield(L, -2, "dense");
    lua_createtable(L, (int)res->rows, 0);
    for (size_t i = 0; i < res->rows; i++) {
        lua_pushnumber(L, res->data[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "residuals");
    luaL_setmetatable(L, LNTK_EIGS_INFO);
}

typedef ntk_status (*eigs_call)(lua_State *L, ntk_ctx *ctx, size_t k,
                                const ntk_eigs_opts *o, ntk_mat *w, ntk_mat *v,
                                ntk_mat *r, ntk_eigs_info *info);

/* Shared tail of ntk.eigs and Net:ntk_eigs: outputs allocated before the
 * core runs; returns values[, vectors], info or nil, message, info. Misuse
 * the core detects is blamed on argument arg. */
static int eigs_run(lua_State *L, size_t n, size_t k, int oi, const char *const known[],
                    int arg, eigs_call call)
{
    ntk_eigs_opts o;
    int want_vectors = eigs_opts(L, oi, known, &o);
    size_t b = o.block ? o.block : (k < 32 ? k : 32);
    if (b > n)
        return luaL_argerror(L, oi, lua_pushfstring(L, "block must be at most n = %I, got %I",
                                                    (lua_Integer)n, (lua_Integer)b));
    if (o.basis && o.basis < k + b)
        return luaL_argerror(L, oi,
                             lua_pushfstring(L, "basis must be at least k + block = %I, got %I",
                                             (lua_Integer)(k + b), (lua_Integer)o.basis));
    lntk_matrix *w = lntk_newmatrix(L, k, 1, 0);
    int wi = lua_gettop(L);
    lntk_matrix *v = want_vectors ? lntk_newmatrix(L, n, k, 0) : NULL;
    int vi = lua_gettop(L);
    lntk_matrix *r = lntk_newmatrix(L, k, 1, 0);
    ntk_mat vw = lntk_view(w), vr = lntk_view(r), vv = v ? lntk_view(v) : (ntk_mat){0};
    ntk_eigs_info info;
    memset(&info, 0, sizeof info);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, lua_istable(L, oi) ? oi : 0);
    ntk_status st = call(L, lntk_ctx(L), k, &o, &vw, v ? &vv : NULL, &vr, &info);
    lntk_progress_end(L, &prog);
    if (st == NTK_ERR_NOCONV) {
        lua_pushnil(L);
        lua_pushstring(L, ntk_ctx_error(lntk_ctx(L)));
        push_info(L, &info, r, o.tol, 0);
        lua_pushvalue(L, wi);
        lua_setfield(L, -2, "values");
        if (v) {
            lua_pushvalue(L, vi);
            lua_setfield(L, -2, "vectors");
        }
        return 3;
    }
    if (st) return answer(L, st, arg);
    lua_pushvalue(L, wi);
    if (v) lua_pushvalue(L, vi);
    push_info(L, &info, r, o.tol, 1);
    return v ? 3 : 2;
}

static ntk_status call_eigs_matrix(lua_State *L, ntk_ctx *ctx, size_t k,
                                   const ntk_eigs_opts *o, ntk_mat *w, ntk_mat *v,
                                   ntk_mat *r, ntk_eigs_info *info)
{
    ntk_mat a = lntk_view(lntk_checkmatrix(L, 1));
    return ntk_eigs_matrix(ctx, &a, k, o, w, v, r, info);
}

/* ntk.eigs(K, k[, opts]) */
static int l_eigs(lua_State *L)
{
    lntk_matrix *a = checksquare(L, 1, "K");
    size_t k = checkk(L, 2, a->rows);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    return eigs_run(L, a->rows, k, 3, eigs_matrix_keys, 1, call_eigs_matrix);
}

/* ---- matrix-free NTK ---- */

/* net:ntk_matvec(X, V[, opts]) */
static int n_ntk_matvec(lua_State *L)
{
    static const char *const known[] = {"memory", "progress", NULL};
    ntk_net *net = lntk_checknet(L, 1);
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    lntk_matrix *v = lntk_checkmatrix(L, 3);
    size_t m = ntk_net_output_dim(net);
    if (v->rows != x->rows * m)
        return luaL_argerror(L, 3,
                             lua_pushfstring(L, "V must be (N m) x k = %I x k (N = %I samples, "
                                                "m = %I outputs), got %Ix%I",
                                             (lua_Integer)(x->rows * m), (lua_Integer)x->rows,
                                             (lua_Integer)m, (lua_Integer)v->rows,
                                             (lua_Integer)v->cols));
    lntk_checkfinite(L, 3, "V");
    lntk_checkoptions(L, 4, known);
    lua_Integer mem = lntk_optinteger(L, 4, "memory", 0);
    if (mem < 0) return luaL_argerror(L, 4, "memory must be a positive number of bytes");
    lntk_matrix *out = lntk_newmatrix(L, v->rows, v->cols, 0);
    ntk_mat vx = lntk_view(x), vv = lntk_view(v), vo = lntk_view(out);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, lua_istable(L, 4) ? 4 : 0);
    lntk_net_hold(L, 1, 1); /* a progress function must not close it meanwhile */
    ntk_status st = ntk_net_ntk_matvec(lntk_ctx(L), net, &vx, &vv, (size_t)mem, &vo);
    lntk_net_hold(L, 1, -1);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    return 1;
}

static ntk_status call_ntk_eigs(lua_State *L, ntk_ctx *ctx, size_t k,
                                const ntk_eigs_opts *o, ntk_mat *w, ntk_mat *v, ntk_mat *r,
                                ntk_eigs_info *info)
{
    ntk_net *net = lntk_checknet(L, 1);
    ntk_mat x = lntk_view(lntk_checkmatrix(L, 2));
    lntk_net_hold(L, 1, 1); /* a progress function must not close it meanwhile */
    ntk_status st = ntk_net_ntk_eigs(ctx, net, &x, k, o, w, v, r, info);
    lntk_net_hold(L, 1, -1);
    return st;
}

/* net:ntk_eigs(X, k[, opts]) */
static int n_ntk_eigs(lua_State *L)
{
    ntk_net *net = lntk_checknet(L, 1);
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    size_t n = x->rows * ntk_net_output_dim(net);
    size_t k = checkk(L, 3, n);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    return eigs_run(L, n, k, 4, eigs_net_keys, 0, call_ntk_eigs);
}

/* ---- spectrum statistics ---- */

static int l_spectrum_stats(lua_State *L)
{
    static const char *const known[] = {"top_k", "fit", NULL};
    lua_settop(L, 2); /* a list is copied into a matrix at index 3 */
    const double *ev;
    size_t n;
    lntk_matrix *m = lntk_testmatrix(L, 1);
    if (m) {
        lntk_checkfinite(L, 1, "ev");
        ev = m->data;
        n = m->rows * m->cols;
    } else if (lua_istable(L, 1)) {
        lua_Integer len = luaL_len(L, 1);
        lntk_matrix *t = lntk_newmatrix(L, (size_t)(len > 0 ? len : 0), 1, 0);
        for (lua_Integer i = 1; i <= len; i++) {
            int ok = lua_geti(L, 1, i) == LUA_TNUMBER;
            double x = lua_tonumber(L, -1);
            if (!ok || !isfinite(x))
                return luaL_argerror(L, 1,
                                     lua_pushfstring(L, "ev[%I] must be a finite number", i));
            t->data[i - 1] = x;
            lua_pop(L, 1);
        }
        ev = t->data;
        n = t->rows;
    } else {
        return luaL_typeerror(L, 1, "ntk.Matrix or list of eigenvalues");
    }
    if (n == 0) return luaL_argerror(L, 1, "the spectrum is empty");
    lntk_checkoptions(L, 2, known);
    ntk_stats_opts o;
    ntk_stats_opts_init(&o);
    if (!lua_isnoneornil(L, 2)) {
        lua_Integer k = lntk_optinteger(L, 2, "top_k", (lua_Integer)(n < 10 ? n : 10));
        if (k < 1 || (size_t)k > n)
            return luaL_argerror(L, 2,
                                 lua_pushfstring(L, "top_k must be between 1 and %I, got %I",
                                                 (lua_Integer)n, k));
        o.top_k = (size_t)k;
        int t = lua_getfield(L, 2, "fit");
        if (t == LUA_TTABLE) {
            lua_Integer f[2];
            for (int i = 0; i < 2; i++) {
                int isint;
                lua_geti(L, -1, i + 1);
                f[i] = lua_tointegerx(L, -1, &isint);
                lua_pop(L, 1);
                if (!isint)
                    return luaL_argerror(L, 2, "fit must be {first, last} (integer ranks)");
            }
            if (f[0] < 1 || f[1] < f[0] || (size_t)f[1] > n)
                return luaL_argerror(L, 2,
                                     lua_pushfstring(L, "fit must satisfy 1 <= first <= last "
                                                        "<= %I, got {%I, %I}",
                                                     (lua_Integer)n, f[0], f[1]));
            o.fit_first = (size_t)f[0];
            o.fit_last = (size_t)f[1];
        } else if (t != LUA_TNIL) {
            return luaL_argerror(L, 2, "fit must be {first, last} (integer ranks)");
        }
        lua_pop(L, 1);
    }
    ntk_spectrum_info s;
    ntk_status st = ntk_spectrum_stats(lntk_ctx(L), ev, n, &o, &s);
    if (st) return answer(L, st, 1);
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, (lua_Integer)s.n);
    lua_setfield(L, -2, "n");
#define NUMFIELD(name)             \
    lua_pushnumber(L, s.name);     \
    lua_setfield(L, -2, #name)
    NUMFIELD(trace);
    NUMFIELD(max);
    NUMFIELD(min);
    NUMFIELD(condition);
    NUMFIELD(effective_rank);
    NUMFIELD(entropy);
    NUMFIELD(entropy_rank);
    NUMFIELD(top_fraction);
#undef NUMFIELD
    lua_pushinteger(L, (lua_Integer)s.top_k);
    lua_setfield(L, -2, "top_k");
    if (!isnan(s.alpha)) {
        lua_createtable(L, 0, 5);
        lua_pushnumber(L, s.alpha);
        lua_setfield(L, -2, "alpha");
        lua_pushnumber(L, s.coef);
        lua_setfield(L, -2, "coef");
        lua_pushnumber(L, s.r2);
        lua_setfield(L, -2, "r2");
        lua_pushinteger(L, (lua_Integer)s.fit_first);
        lua_setfield(L, -2, "first");
        lua_pushinteger(L, (lua_Integer)s.fit_last);
        lua_setfield(L, -2, "last");
        lua_setfield(L, -2, "power_law");
    }
    luaL_setmetatable(L, LNTK_SPECTRUM_STATS);
    return 1;
}

/* ---- kernel-target alignment and kernel regression ---- */

/* Y (at idx) must fit the n x n kernel in one of the two layouts. */
static lntk_matrix *checktargets(lua_State *L, int idx, size_t n, const char *what,
                                 const char *kname)
{
    lntk_matrix *y = lntk_checkmatrix(L, idx);
    int ok = y->rows == n || (y->cols > 0 && y->rows * y->cols == n);
    if (!ok)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s must be %I x c (trace kernel) or N x m with "
                                         "N*m = %I (block kernel) to match %s, got %Ix%I",
                                      what, (lua_Integer)n, (lua_Integer)n, kname,
                                      (lua_Integer)y->rows, (lua_Integer)y->cols));
    return lntk_checkfinite(L, idx, what);
}

static int l_alignment(lua_State *L)
{
    static const char *const known[] = {"center", NULL};
    lntk_matrix *k = checksquare(L, 1, "K");
    lntk_matrix *y = checktargets(L, 2, k->rows, "Y", "K");
    lntk_checkoptions(L, 3, known);
    int center = lntk_optboolean(L, 3, "center", 0);
    if (k->rows == 0) return luaL_argerror(L, 1, "K is empty");
    ntk_mat vk = lntk_view(k), vy = lntk_view(y);
    double a;
    ntk_status st = ntk_alignment(lntk_ctx(L), &vk, &vy, center, &a);
    if (st) return answer(L, st, strstr(ntk_ctx_error(lntk_ctx(L)), "K is zero") ? 1 : 2);
    lua_pushnumber(L, a);
    return 1;
}

static int l_kernel_regression(lua_State *L)
{
    static const char *const known[] = {"ridge", "jitter", "max_jitter", "symmetrize",
                                        "symmetry_tol", "progress", NULL};
    lntk_matrix *k = checksquare(L, 1, "K");
    lntk_matrix *y = checktargets(L, 2, k->rows, "Y", "K");
    lntk_checkoptions(L, 3, known);
    ntk_regression_opts o;
    ntk_regression_opts_init(&o);
    if (!lua_isnoneornil(L, 3)) {
        o.ridge = lntk_optnumber(L, 3, "ridge", 0);
        if (o.ridge < 0) return luaL_argerror(L, 3, "ridge must be >= 0");
        o.jitter = lntk_optboolean(L, 3, "jitter", 1);
        o.max_jitter = lntk_optnumber(L, 3, "max_jitter", NTK_DEFAULT_MAX_JITTER);
        if (o.max_jitter < 0) return luaL_argerror(L, 3, "max_jitter must be >= 0");
        o.symmetrize = lntk_optboolean(L, 3, "symmetrize", 0);
        o.symmetry_tol = opttol(L, 3, "symmetry_tol");
    }
    lntk_matrix *alpha = lntk_newmatrix(L, y->rows, y->cols, 0);
    int ai = lua_gettop(L);
    ntk_mat vk = lntk_view(k), vy = lntk_view(y), va = lntk_view(alpha);
    double jitter = 0;
    lntk_progress prog;
    lntk_progress_begin(L, &prog, lua_istable(L, 3) ? 3 : 0);
    ntk_status st = ntk_kernel_regression(lntk_ctx(L), &vk, &vy, &o, &va, &jitter);
    lntk_progress_end(L, &prog);
    if (st) return answer(L, st, 1);
    lua_pushvalue(L, ai);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, jitter);
    lua_setfield(L, -2, "jitter");
    lua_pushnumber(L, o.ridge);
    lua_setfield(L, -2, "ridge");
    return 2;
}

static int l_kernel_predict(lua_State *L)
{
    lntk_matrix *k = lntk_checkmatrix(L, 1);
    lntk_matrix *a = lntk_checkmatrix(L, 2);
    size_t r, c;
    if (ntk_kernel_predict_shape(lntk_ctx(L), k->rows, k->cols, a->rows, a->cols, &r, &c))
        return luaL_argerror(L, 2, ntk_ctx_error(lntk_ctx(L)));
    lntk_checkfinite(L, 1, "K_test_train");
    lntk_checkfinite(L, 2, "alpha");
    lntk_matrix *out = lntk_newmatrix(L, r, c, 0);
    ntk_mat vk = lntk_view(k), va = lntk_view(a), vo = lntk_view(out);
    ntk_status st = ntk_kernel_predict(lntk_ctx(L), &vk, &va, &vo);
    if (st) return answer(L, st, 0);
    return 1;
}

/* ---- gradient-flow dynamics ---- */

/* spec[key] as a matrix (or nil when optional), checked finite. */
static lntk_matrix *specmatrix(lua_State *L, const char *key, int required)
{
    int t = lua_getfield(L, 1, key);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        if (required)
            luaL_argerror(L, 1, lua_pushfstring(L, "%s (an ntk.Matrix) is required", key));
        return NULL;
    }
    lntk_matrix *m = lntk_testmatrix(L, -1);
    if (!m)
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "%s must be an ntk.Matrix, got %s", key,
                                      luaL_typename(L, -1)));
    if (m->closed) luaL_argerror(L, 1, lua_pushfstring(L, "%s is closed", key));
    ntk_mat v = lntk_view(m);
    size_t r, c;
    if (ntk_mat_find_nonfinite(&v, &r, &c))
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "%s contains %s at row %I, column %I", key,
                                      isnan(m->data[r * m->cols + c]) ? "NaN" : "Inf",
                                      (lua_Integer)r + 1, (lua_Integer)c + 1));
    /* Left on the stack: a progress function may empty the spec table and
     * collect garbage while the core reads the matrix. */
    return m;
}

static int l_gd_dynamics(lua_State *L)
{
    static const char *const known[] = {"K_train", "K_test_train", "f0_train", "f0_test",
                                        "Y",       "lr",           "times",    "ridge",
                                        "loss",    "symmetrize",   "symmetry_tol",
                                        "progress", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lntk_checkoptions(L, 1, known);
    lntk_matrix *ktr = specmatrix(L, "K_train", 1);
    lntk_matrix *kte = specmatrix(L, "K_test_train", 0);
    lntk_matrix *y = specmatrix(L, "Y", 1);
    lntk_matrix *f0 = specmatrix(L, "f0_train", 0);
    lntk_matrix *f0t = specmatrix(L, "f0_test", 0);
    if (ktr->rows != ktr->cols)
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "K_train must be square, got %Ix%I",
                                             (lua_Integer)ktr->rows, (lua_Integer)ktr->cols));
    size_t n = ktr->rows;
    if (!(y->rows == n || (y->cols > 0 && y->rows * y->cols == n)))
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "Y must be %I x c (trace kernel) or N x m with "
                                                "N*m = %I (block kernel), got %Ix%I",
                                             (lua_Integer)n, (lua_Integer)n,
                                             (lua_Integer)y->rows, (lua_Integer)y->cols));
    if (f0t && !kte) return luaL_argerror(L, 1, "f0_test needs K_test_train");
    ntk_gd_spec sp;
    ntk_gd_spec_init(&sp);
    sp.lr = lntk_optnumber(L, 1, "lr", 1.0);
    if (sp.lr <= 0) return luaL_argerror(L, 1, "lr must be > 0");
    sp.ridge = lntk_optnumber(L, 1, "ridge", 0);
    if (sp.ridge < 0) return luaL_argerror(L, 1, "ridge must be >= 0");
    const char *loss = lntk_optstring(L, 1, "loss", "sum");
    if (strcmp(loss, "mean") == 0) sp.mean_loss = 1;
    else if (strcmp(loss, "sum") != 0)
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "loss must be 'sum' or 'mean', got '%s'", loss));
    sp.symmetrize = lntk_optboolean(L, 1, "symmetrize", 0);
    sp.symmetry_tol = opttol(L, 1, "symmetry_tol");

    /* times: a number or a list of numbers >= 0 (math.huge allowed). */
    size_t nt;
    double *times;
    int t = lua_getfield(L, 1, "times");
    if (t == LUA_TNUMBER) {
        nt = 1;
        times = lua_newuserdatauv(L, sizeof(double), 0);
        times[0] = lua_tonumber(L, -2);
    } else if (t == LUA_TTABLE) {
        lua_Integer len = luaL_len(L, -1);
        if (len < 1) return luaL_argerror(L, 1, "times must list at least one time");
        nt = (size_t)len;
        times = lua_newuserdatauv(L, nt * sizeof(double), 0);
        for (lua_Integer i = 1; i <= len; i++) {
            int ok = lua_geti(L, -2, i) == LUA_TNUMBER;
            times[i - 1] = lua_tonumber(L, -1);
            lua_pop(L, 1);
            if (!ok)
                return luaL_argerror(L, 1,
                                     lua_pushfstring(L, "times[%I] must be a number", i));
        }
    } else {
        return luaL_argerror(L, 1, "times must be a number or a list of numbers (math.huge "
                                   "for the limit)");
    }
    for (size_t i = 0; i < nt; i++)
        if (isnan(times[i]) || times[i] < 0)
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "times[%I] must be >= 0, got %f",
                                                 (lua_Integer)i + 1, times[i]));
    /* `times` stays on the stack (and alive) until the call returns. */

    /* Test predictions' shape, from the layout of Y. */
    size_t tr = 0, tc = y->cols;
    if (kte) {
        if (kte->cols != n)
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "K_test_train must have %I columns "
                                                    "(K_train's order), got %Ix%I",
                                                 (lua_Integer)n, (lua_Integer)kte->rows,
                                                 (lua_Integer)kte->cols));
        int block = y->rows != n;
        if (block && kte->rows % y->cols)
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "K_test_train's rows (%I) must be a "
                                                    "multiple of the outputs (%I)",
                                                 (lua_Integer)kte->rows,
                                                 (lua_Integer)y->cols));
        tr = block ? kte->rows / y->cols : kte->rows;
        if (f0t && (f0t->rows != tr || f0t->cols != tc))
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "f0_test must be %Ix%I, got %Ix%I",
                                                 (lua_Integer)tr, (lua_Integer)tc,
                                                 (lua_Integer)f0t->rows,
                                                 (lua_Integer)f0t->cols));
    }
    if (f0 && (f0->rows != y->rows || f0->cols != y->cols))
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "f0_train must be %Ix%I (like Y), got %Ix%I",
                                             (lua_Integer)y->rows, (lua_Integer)y->cols,
                                             (lua_Integer)f0->rows, (lua_Integer)f0->cols));

    /* Results first: tables of matrices, and views of them for the core. */
    ntk_mat *views = lua_newuserdatauv(L, 2 * nt * sizeof(ntk_mat), 0);
    lua_createtable(L, 0, 3);
    int res = lua_gettop(L);
    lua_createtable(L, (int)nt, 0);
    for (size_t i = 0; i < nt; i++) {
        lua_pushnumber(L, times[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, res, "times");
    lua_createtable(L, (int)nt, 0);
    for (size_t i = 0; i < nt; i++) {
        views[i] = lntk_view(lntk_newmatrix(L, y->rows, y->cols, 0));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, res, "train");
    if (kte) {
        lua_createtable(L, (int)nt, 0);
        for (size_t i = 0; i < nt; i++) {
            views[nt + i] = lntk_view(lntk_newmatrix(L, tr, tc, 0));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, res, "test");
    }
    ntk_mat mk = lntk_view(ktr), my = lntk_view(y);
    ntk_mat mkt = kte ? lntk_view(kte) : (ntk_mat){0};
    ntk_mat mf0 = f0 ? lntk_view(f0) : (ntk_mat){0};
    ntk_mat mf0t = f0t ? lntk_view(f0t) : (ntk_mat){0};
    sp.k_train = &mk;
    sp.k_test_train = kte ? &mkt : NULL;
    sp.y = &my;
    sp.f0_train = f0 ? &mf0 : NULL;
    sp.f0_test = f0t ? &mf0t : NULL;
    sp.times = times;
    sp.ntimes = nt;
    lntk_progress prog;
    lntk_progress_begin(L, &prog, 1);
    ntk_status st = ntk_gd_dynamics(lntk_ctx(L), &sp, views, kte ? views + nt : NULL);
    lntk_progress_end(L, &prog);
    if (st) return answer(L, st, 1);
    lua_pushvalue(L, res);
    return 1;
}

/* ---- printing result tables ---- */

static double numfield(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* print(ntk.spectrum_stats(ev)): a three-line report. */
static int stats_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    char buf[768];
    int len = snprintf(buf, sizeof buf,
                       "spectrum of %.0f eigenvalues: trace %.4g, largest %.4g, smallest %.4g, "
                       "condition %.4g\neffective rank %.4g ((sum l)^2 / sum l^2), %.4g (entropy); "
                       "top %.0f hold %.1f%% of the trace\n",
                       numfield(L, 1, "n"), numfield(L, 1, "trace"), numfield(L, 1, "max"),
                       numfield(L, 1, "min"), numfield(L, 1, "condition"),
                       numfield(L, 1, "effective_rank"), numfield(L, 1, "entropy_rank"),
                       numfield(L, 1, "top_k"), 100 * numfield(L, 1, "top_fraction"));
    if (lua_getfield(L, 1, "power_law") == LUA_TTABLE) {
        int p = lua_gettop(L);
        snprintf(buf + len, sizeof buf - (size_t)len,
                 "power law l_i ~ %.4g i^-%.4g over ranks %.0f..%.0f (R^2 %.3f)",
                 numfield(L, p, "coef"), numfield(L, p, "alpha"), numfield(L, p, "first"),
                 numfield(L, p, "last"), numfield(L, p, "r2"));
    } else {
        snprintf(buf + len, sizeof buf - (size_t)len,
                 "power law: too few positive eigenvalues to fit");
    }
    lua_pushstring(L, buf);
    return 1;
}

/* print(info) for the info table of ntk.eigs and net:ntk_eigs. */
static int info_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "converged");
    int ok = lua_toboolean(L, -1);
    lua_getfield(L, 1, "dense");
    int dense = lua_toboolean(L, -1);
    lua_getfield(L, 1, "residuals");
    double k = lua_istable(L, -1) ? (double)luaL_len(L, -1) : 0;
    lua_pop(L, 3);
    double res = numfield(L, 1, "residual"), scale = numfield(L, 1, "scale");
    char buf[512];
    snprintf(buf, sizeof buf,
             "%s: %.0f of %.0f eigenpairs within tol %.4g after %.0f iterations (%.0f products, "
             "%.0f restarts%s); largest residual %.4g = %.4g x |l_1|",
             ok ? "converged" : "NOT converged", numfield(L, 1, "nconverged"), k,
             numfield(L, 1, "tol"), numfield(L, 1, "iterations"), numfield(L, 1, "matvecs"),
             numfield(L, 1, "restarts"), dense ? ", formed densely" : "", res,
             scale > 0 ? res / scale : 0.0);
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg module_fns[] = {
    {"eigvalsh", l_eigvalsh},
    {"eigh", l_eigh},
    {"eigs", l_eigs},
    {"spectrum_stats", l_spectrum_stats},
    {"alignment", l_alignment},
    {"kernel_regression", l_kernel_regression},
    {"kernel_predict", l_kernel_predict},
    {"gd_dynamics", l_gd_dynamics},
    {NULL, NULL},
};

static const luaL_Reg net_methods[] = {
    {"ntk_matvec", n_ntk_matvec},
    {"ntk_eigs", n_ntk_eigs},
    {NULL, NULL},
};

void lntk_open_linalg(lua_State *L, int ctx_idx)
{
    lntk_setfuncs(L, ctx_idx, module_fns);
    luaL_newmetatable(L, LNTK_SPECTRUM_STATS);
    lua_pushcfunction(L, stats_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, LNTK_EIGS_INFO);
    lua_pushcfunction(L, info_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lntk_addmethods(L, ctx_idx, "Net", net_methods);
}
