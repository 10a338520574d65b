/* ntk.core section io: loaders (.npy, IDX, CSV), persistence of matrices
 * and networks, and the data-preparation primitives. */
#include "lntk.h"

#include <math.h>
#include <string.h>

#define LNTK_CSVBOX "ntk.CSVTable"

/* A path argument: a string without embedded zeros. */
static const char *checkpath(lua_State *L, int idx)
{
    size_t len;
    /* Strictly a string: a number is far more likely a misplaced argument. */
    if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "string (a path)");
    const char *p = lua_tolstring(L, idx, &len);
    if (strlen(p) != len) luaL_argerror(L, idx, "path contains a zero byte");
    if (len == 0) luaL_argerror(L, idx, "path is empty");
    return p;
}

/* Loader failures that come from the file are expected: nil, message.
 * Memory exhaustion and interruption raise, as everywhere else. */
static int io_result(lua_State *L, ntk_status st)
{
    if (st == NTK_ERR_IO || st == NTK_ERR_FORMAT || st == NTK_ERR_SHAPE)
        return lntk_failure(L, st);
    return lntk_error(L, st);
}

static int fail_msg(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static const char *const progress_only[] = {"progress", NULL};

/* Options at idx: none, nil or a table (progress only). */
static int progress_opts(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return 0;
    lntk_checkoptions(L, idx, progress_only);
    return idx;
}

static void push_info(lua_State *L, const ntk_array_info *info, int npy)
{
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)info->rows);
    lua_setfield(L, -2, "rows");
    lua_pushinteger(L, (lua_Integer)info->cols);
    lua_setfield(L, -2, "cols");
    lua_createtable(L, (int)info->ndim, 0);
    for (size_t k = 0; k < info->ndim; k++) {
        lua_pushinteger(L, (lua_Integer)info->shape[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_pushstring(L, info->dtype);
    lua_setfield(L, -2, "dtype");
    if (npy) {
        lua_pushboolean(L, info->fortran_order);
        lua_setfield(L, -2, "fortran_order");
        lua_pushinteger(L, info->version);
        lua_setfield(L, -2, "version");
    } else {
        lua_pushboolean(L, info->compressed);
        lua_setfield(L, -2, "compressed");
    }
    lua_pushinteger(L, (lua_Integer)info->data_offset);
    lua_setfield(L, -2, "data_offset");
}

/* ---- .npy ---- */

/* ntk.npy_info(path) and ntk.idx_info(path): the header as a table. */
static int info_call(lua_State *L, ntk_status (*info_fn)(ntk_ctx *, const char *, ntk_array_info *),
                     int npy)
{
    const char *path = checkpath(L, 1);
    ntk_array_info info;
    ntk_status st = info_fn(lntk_ctx(L), path, &info);
    if (st) return io_result(L, st);
    push_info(L, &info, npy);
    return 1;
}

static int l_npy_info(lua_State *L) { return info_call(L, ntk_npy_info, 1); }

static int l_load_npy(lua_State *L)
{
    const char *path = checkpath(L, 1);
    int oi = progress_opts(L, 2);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_array_info info;
    ntk_status st = ntk_npy_info(ctx, path, &info);
    if (st) return io_result(L, st);
    /* The header is validated against the file's size: this allocation is
     * what the file really holds. */
    lntk_matrix *m = lntk_newmatrix(L, info.rows, info.cols, 0);
    ntk_mat v = lntk_view(m);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    st = ntk_npy_read(ctx, path, &v);
    lntk_progress_end(L, &prog);
    if (st) return io_result(L, st);
    return 1;
}

/* ntk.save_npy(M, path[, opts]) and M:save_npy(path[, opts]) */
static int l_save_npy(lua_State *L)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    const char *path = checkpath(L, 2);
    int oi = progress_opts(L, 3);
    ntk_mat v = lntk_view(m);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    ntk_status st = ntk_npy_write(lntk_ctx(L), path, &v);
    lntk_progress_end(L, &prog);
    if (st) return io_result(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- IDX ---- */

static int l_idx_info(lua_State *L) { return info_call(L, ntk_idx_info, 0); }

/* A list of 1-based indices at idx (table or column/row matrix) into a
 * userdata array of 0-based size_t, pushed on the stack. Errors name
 * argument `arg` (idx itself, or the options table idx came from). */
static size_t *index_list(lua_State *L, int idx, int arg, const char *what, size_t *n)
{
    lntk_matrix *m = lntk_testmatrix(L, idx);
    if (m) {
        if (m->closed) luaL_argerror(L, arg, lua_pushfstring(L, "%s is a closed matrix", what));
        if (m->rows != 1 && m->cols != 1)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a list of indices (a table or a vector)", what));
        *n = m->rows * m->cols;
    } else if (lua_istable(L, idx)) {
        *n = (size_t)luaL_len(L, idx);
    } else {
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a table or vector of indices, got %s", what,
                                              luaL_typename(L, idx)));
    }
    size_t *out = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *out, 0);
    for (size_t k = 0; k < *n; k++) {
        lua_Integer v;
        int ok;
        if (m) {
            double d = m->data[k];
            ok = d == floor(d) && d >= 1 && d <= 9007199254740992.0;
            v = ok ? (lua_Integer)d : 0;
        } else {
            lua_geti(L, idx, (lua_Integer)k + 1);
            v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
        }
        if (!ok || v < 1)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s[%I] must be a positive integer index", what,
                                                  (lua_Integer)k + 1));
        out[k] = (size_t)v - 1;
    }
    return out;
}

static int l_load_idx(lua_State *L)
{
    static const char *const known[] = {"rows", "scale", "progress", NULL};
    const char *path = checkpath(L, 1);
    lntk_checkoptions(L, 2, known);
    int oi = lua_isnoneornil(L, 2) ? 0 : 2;
    double scale = lntk_optnumber(L, oi, "scale", 1.0);
    size_t *rows = NULL, nrows = 0;
    if (oi && lua_getfield(L, oi, "rows") != LUA_TNIL) {
        rows = index_list(L, lua_gettop(L), 2, "rows", &nrows);
    } else if (oi) {
        lua_pop(L, 1);
    }
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_array_info info;
    ntk_status st = ntk_idx_info(ctx, path, &info);
    if (st) return io_result(L, st);
    if (rows)
        for (size_t k = 0; k < nrows; k++)
            if (rows[k] >= info.rows)
                return luaL_argerror(L, 2, lua_pushfstring(L, "rows[%I] = %I is out of range: '%s' has %I items",
                                                           (lua_Integer)k + 1, (lua_Integer)rows[k] + 1,
                                                           path, (lua_Integer)info.rows));
    lntk_matrix *m = lntk_newmatrix(L, rows ? nrows : info.rows, info.cols, 0);
    ntk_mat v = lntk_view(m);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    st = rows ? ntk_idx_read_rows(ctx, path, rows, nrows, &v) : ntk_idx_read(ctx, path, &v);
    lntk_progress_end(L, &prog);
    if (st) return io_result(L, st);
    /* In place: scaling 60000 images must not need a second copy. */
    if (scale != 1.0)
        for (size_t k = 0; k < v.rows * v.cols; k++) v.data[k] *= scale;
    return 1;
}

/* ---- CSV ---- */

typedef struct csv_box {
    ntk_csv *csv;
    ntk_ctx *ctx;
} csv_box;

static int csvbox_gc(lua_State *L)
{
    csv_box *b = luaL_checkudata(L, 1, LNTK_CSVBOX);
    if (b->csv) ntk_csv_destroy(b->ctx, b->csv);
    b->csv = NULL;
    return 0;
}

/* ntk.load_csv(path[, {header = "auto" | true | false, label = j,
 *                     delimiter = ",", progress = ...}]) -> X[, y][, names] */
static int l_load_csv(lua_State *L)
{
    static const char *const known[] = {"header", "label", "delimiter", "progress", NULL};
    const char *path = checkpath(L, 1);
    lntk_checkoptions(L, 2, known);
    int oi = lua_isnoneornil(L, 2) ? 0 : 2;
    ntk_csv_opts o;
    ntk_csv_opts_init(&o);
    lua_Integer label = 0;
    if (oi) {
        int t = lua_getfield(L, oi, "header");
        if (t == LUA_TBOOLEAN) o.header = lua_toboolean(L, -1) ? NTK_CSV_HEADER_YES : NTK_CSV_HEADER_NO;
        else if (t == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0) o.header = NTK_CSV_HEADER_AUTO;
        else if (t != LUA_TNIL) return luaL_argerror(L, oi, "option 'header' must be \"auto\", true or false");
        lua_pop(L, 1);
        size_t dl;
        const char *d = lntk_optstring(L, oi, "delimiter", ",");
        dl = strlen(d);
        if (dl != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r')
            return luaL_argerror(L, oi, "option 'delimiter' must be one character other than a quote or a line break");
        o.delimiter = d[0];
        label = lntk_optinteger(L, oi, "label", 0);
        if (lua_getfield(L, oi, "label") != LUA_TNIL && label == 0)
            return luaL_argerror(L, oi, "option 'label' must be a column number (1-based; negative counts from the end)");
        lua_pop(L, 1);
    }
    ntk_ctx *ctx = lntk_ctx(L);
    csv_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->csv = NULL;
    box->ctx = ctx;
    luaL_setmetatable(L, LNTK_CSVBOX);
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    ntk_status st = ntk_csv_parse(ctx, path, &o, &box->csv);
    lntk_progress_end(L, &prog);
    if (st) return io_result(L, st);
    size_t rows = ntk_csv_rows(box->csv), cols = ntk_csv_cols(box->csv), lab = (size_t)-1;
    if (label) {
        lua_Integer j = label > 0 ? label : (lua_Integer)cols + 1 + label;
        if (j < 1 || j > (lua_Integer)cols) {
            ntk_csv_destroy(ctx, box->csv);
            box->csv = NULL;
            lua_pushfstring(L, "'%s': label column %I is out of range (the file has %I columns)", path,
                            label, (lua_Integer)cols);
            return fail_msg(L, lua_tostring(L, -1));
        }
        lab = (size_t)j - 1;
    }
    lntk_matrix *x = lntk_newmatrix(L, rows, label ? cols - 1 : cols, 0);
    lntk_matrix *y = label ? lntk_newmatrix(L, rows, 1, 0) : NULL;
    ntk_mat vx = lntk_view(x), vy = y ? lntk_view(y) : (ntk_mat){0, 0, NULL};
    st = ntk_csv_extract(ctx, box->csv, lab, &vx, y ? &vy : NULL);
    if (st) return lntk_error(L, st);
    if (!y) lua_pushnil(L);
    if (ntk_csv_name(box->csv, 0)) {
        lua_createtable(L, (int)cols, 0);
        for (size_t j = 0; j < cols; j++) {
            lua_pushstring(L, ntk_csv_name(box->csv, j));
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
    } else {
        lua_pushnil(L);
    }
    /* Free the parsed table now rather than at the next collection. */
    ntk_csv_destroy(ctx, box->csv);
    box->csv = NULL;
    return 3;
}

/* ---- networks ---- */

static int l_net_save(lua_State *L)
{
    ntk_net *net = lntk_checknet(L, 1);
    const char *path = checkpath(L, 2);
    ntk_status st = ntk_net_save(lntk_ctx(L), net, path);
    if (st) return io_result(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_load_net(lua_State *L)
{
    const char *path = checkpath(L, 1);
    ntk_net **slot = lntk_newnet(L);
    ntk_status st = ntk_net_load(lntk_ctx(L), path, slot);
    if (st) return io_result(L, st);
    /* The parameters live outside Lua's heap: tell the collector. */
    size_t kb = ntk_net_num_params(*slot) * sizeof(double) / 1024;
    if (kb > 0) lua_gc(L, LUA_GCSTEP, kb > INT32_MAX ? INT32_MAX : (int)kb);
    return 1;
}

/* ---- preparation ---- */

/* ntk.permutation(n[, seed]): a table holding 1..n in a seeded random order. */
static int l_permutation(lua_State *L)
{
    size_t n = lntk_checksize(L, 1, "n");
    uint64_t seed = lntk_checkseed(L, 2);
    size_t *perm = lua_newuserdatauv(L, (n ? n : 1) * sizeof *perm, 0);
    ntk_rng rng;
    ntk_rng_seed(&rng, seed);
    ntk_rng_permutation(&rng, perm, n);
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    for (size_t k = 0; k < n; k++) {
        lua_pushinteger(L, (lua_Integer)perm[k] + 1);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

/* X:take_rows(idx): rows idx[1], idx[2], ... of X (1-based; repeats allowed). */
static int l_take_rows(lua_State *L)
{
    lntk_matrix *x = lntk_checkmatrix(L, 1);
    size_t n;
    size_t *idx = index_list(L, 2, 2, "index", &n);
    for (size_t k = 0; k < n; k++)
        if (idx[k] >= x->rows)
            return luaL_argerror(L, 2, lua_pushfstring(L, "index[%I] = %I is out of range 1..%I",
                                                       (lua_Integer)k + 1, (lua_Integer)idx[k] + 1,
                                                       (lua_Integer)x->rows));
    lntk_matrix *m = lntk_newmatrix(L, n, x->cols, 0);
    for (size_t k = 0; k < n; k++)
        memcpy(m->data + k * x->cols, x->data + idx[k] * x->cols, x->cols * sizeof(double));
    return 1;
}

/* ntk.standardize(X[, mean, std]) -> Z, mean, std. Without statistics it
 * computes X's own (population std); with them (from a training set) it
 * applies those. A zero std leaves its centred column unscaled. */
static int l_standardize(lua_State *L)
{
    lntk_matrix *x = lntk_checkfinite(L, 1, "X");
    ntk_ctx *ctx = lntk_ctx(L);
    lntk_matrix *mean, *sd;
    if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3)) {
        luaL_argcheck(L, x->rows > 0, 1, "X has no rows to take statistics from");
        mean = lntk_newmatrix(L, 1, x->cols, 0);
        sd = lntk_newmatrix(L, 1, x->cols, 0);
        ntk_mat vx = lntk_view(x), vm = lntk_view(mean), vs = lntk_view(sd);
        ntk_status st = ntk_col_stats(ctx, &vx, &vm, &vs);
        if (st) return lntk_error(L, st);
    } else {
        mean = lntk_checkfinite(L, 2, "mean");
        sd = lntk_checkfinite(L, 3, "std");
        for (int a = 2; a <= 3; a++) {
            lntk_matrix *v = a == 2 ? mean : sd;
            if (v->rows * v->cols != x->cols || (v->rows != 1 && v->cols != 1))
                return luaL_argerror(L, a, lua_pushfstring(L, "%s must be 1 x %I (one entry per column of X), got %Ix%I",
                                                           a == 2 ? "mean" : "std", (lua_Integer)x->cols,
                                                           (lua_Integer)v->rows, (lua_Integer)v->cols));
        }
        for (size_t j = 0; j < x->cols; j++)
            if (sd->data[j] < 0)
                return luaL_argerror(L, 3, lua_pushfstring(L, "std[%I] is negative", (lua_Integer)j + 1));
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
    }
    lntk_matrix *z = lntk_newmatrix(L, x->rows, x->cols, 0);
    ntk_mat vx = lntk_view(x), vz = lntk_view(z);
    ntk_mat vm = {1, x->cols, mean->data}, vs = {1, x->cols, sd->data};
    ntk_status st = ntk_standardize(ctx, &vx, &vm, &vs, &vz);
    if (st) return lntk_error(L, st);
    lua_insert(L, -3);
    return 3;
}

/* ntk.one_hot(labels[, k]): N x k with a 1 in column label + 1 of each row;
 * labels are class numbers 0 .. k-1 (a vector or a table). */
static int l_one_hot(lua_State *L)
{
    size_t n;
    lntk_matrix *m = lntk_testmatrix(L, 1);
    if (m) {
        if (m->closed) return luaL_argerror(L, 1, "matrix is closed");
        if (m->rows != 1 && m->cols != 1)
            return luaL_argerror(L, 1, lua_pushfstring(L, "labels must be a vector (N x 1), got %Ix%I",
                                                       (lua_Integer)m->rows, (lua_Integer)m->cols));
        n = m->rows * m->cols;
    } else if (lua_istable(L, 1)) {
        n = (size_t)luaL_len(L, 1);
    } else {
        return luaL_typeerror(L, 1, "vector or table of class labels");
    }
    lua_Integer k = -1;
    if (!lua_isnoneornil(L, 2)) {
        k = (lua_Integer)lntk_checksize(L, 2, "k");
        luaL_argcheck(L, k > 0, 2, "k must be at least 1");
    }
    size_t *cls = lua_newuserdatauv(L, (n ? n : 1) * sizeof *cls, 0);
    lua_Integer top = -1;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (m) {
            v = m->data[i];
        } else {
            lua_geti(L, 1, (lua_Integer)i + 1);
            int ok;
            v = lua_tonumberx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok) v = NAN;
        }
        if (!(v >= 0 && v == floor(v) && v < 2147483647.0) || (k > 0 && v >= (double)k))
            return luaL_argerror(L, 1, lua_pushfstring(L, k > 0 ? "label %I is %f, not a class in 0..%I"
                                                                : "label %I is %f, not a class number >= 0",
                                                       (lua_Integer)i + 1, v, k - 1));
        cls[i] = (size_t)v;
        if ((lua_Integer)v > top) top = (lua_Integer)v;
    }
    if (k < 0) k = top + 1 > 0 ? top + 1 : 1;
    lntk_matrix *y = lntk_newmatrix(L, n, (size_t)k, 1);
    for (size_t i = 0; i < n; i++) y->data[i * (size_t)k + cls[i]] = 1.0;
    return 1;
}

static const luaL_Reg module_fns[] = {
    {"load_npy", l_load_npy},       {"npy_info", l_npy_info},   {"save_npy", l_save_npy},
    {"load_idx", l_load_idx},       {"idx_info", l_idx_info},   {"load_csv", l_load_csv},
    {"load_net", l_load_net},       {"permutation", l_permutation},
    {"take_rows", l_take_rows},     {"standardize", l_standardize},
    {"one_hot", l_one_hot},         {NULL, NULL},
};

static const luaL_Reg matrix_methods[] = {
    {"save_npy", l_save_npy},
    {"take_rows", l_take_rows},
    {NULL, NULL},
};

static const luaL_Reg net_methods[] = {
    {"save", l_net_save},
    {NULL, NULL},
};

static const luaL_Reg csvbox_meta[] = {
    {"__gc", csvbox_gc},
    {NULL, NULL},
};

void lntk_open_io(lua_State *L, int ctx_idx)
{
    lntk_setfuncs(L, ctx_idx, module_fns);
    lntk_addmethods(L, ctx_idx, "Matrix", matrix_methods);
    lntk_addmethods(L, ctx_idx, "Net", net_methods);
    luaL_newmetatable(L, LNTK_CSVBOX);
    lntk_setfuncs(L, ctx_idx, csvbox_meta);
    lua_pushliteral(L, "private");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
