/* What ntk_lua.h promises a host: matrices in and out without copies. */
#include "ntk_lua.h"

#include <lauxlib.h>

#include "lntk.h"

typedef struct push_args {
    size_t rows, cols;
    double *data;
} push_args;

static int push_protected(lua_State *L)
{
    push_args *a = lua_touserdata(L, 1);
    /* The limit the Lua API has (lntk_checksize): BLAS takes int sizes. */
    if (a->rows > INT32_MAX || a->cols > INT32_MAX)
        return luaL_error(L, "a matrix must have fewer than 2^31 rows and columns");
    if (luaL_getmetatable(L, LNTK_MATRIX) != LUA_TTABLE)
        return luaL_error(L, "ntk.core is not loaded in this Lua state "
                             "(luaL_requiref(L, \"ntk.core\", luaopen_ntk_core, 0))");
    lua_pop(L, 1);
    a->data = lntk_newmatrix(L, a->rows, a->cols, 1)->data;
    return 1;
}

NTK_API int ntk_lua_pushmatrix(lua_State *L, size_t rows, size_t cols, double **data)
{
    push_args a = {rows, cols, NULL};
    if (data) *data = NULL;
    /* Neither pushing a light C function nor a light userdata allocates,
     * so nothing can raise before the protected call. */
    if (!lua_checkstack(L, 2)) {
        /* No room for the message either: report through the status. */
        return LUA_ERRMEM;
    }
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, &a);
    int st = lua_pcall(L, 1, 1, 0);
    if (st == LUA_OK && data) *data = a.data;
    return st;
}

static int to_protected(lua_State *L)
{
    /* luaL_testudata may create the name string: keep it protected. */
    lntk_matrix *m = luaL_testudata(L, 1, LNTK_MATRIX);
    ntk_mat *view = lua_touserdata(L, 2);
    if (!m || m->closed) return 0;
    view->rows = m->rows;
    view->cols = m->cols;
    view->data = m->data;
    lua_pushboolean(L, 1);
    return 1;
}

NTK_API int ntk_lua_tomatrix(lua_State *L, int idx, ntk_mat *view)
{
    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_checkstack(L, 3)) return 0;
    ntk_mat v;
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, to_protected);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, &v);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return 0;
    }
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok) *view = v;
    return ok;
}
