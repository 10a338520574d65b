/*
 * net:ntk's `distributed` option, in every build: the Net method is
 * wrapped so that {distributed = true} goes to ntk.mpi (or, without MPI,
 * raises an error saying how to get it) and everything else reaches the
 * ordinary method in this same call frame, so its argument errors read
 * exactly as before.
 */
#include "lntk.h"

#include <string.h>

/* Upvalues: 1 the context, 2 the ordinary method, 3 the distributed entry
 * (a light C function, or false in a build without MPI). */
static int ntk_dispatch(lua_State *L)
{
    int top = lua_gettop(L), oi = 0;
    if ((top == 3 || top == 4) && lua_type(L, top) == LUA_TTABLE) oi = top;
    if (oi) {
        int t = lua_getfield(L, oi, "distributed");
        if (t != LUA_TNIL) {
            if (t != LUA_TBOOLEAN) luaL_argerror(L, oi, "option 'distributed' must be a boolean");
            int on = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (on) {
                lua_CFunction dist = lua_tocfunction(L, lua_upvalueindex(3));
                if (!dist)
                    return luaL_argerror(L, oi, "option 'distributed' needs a build with MPI "
                                                "(cmake -DNTK_MPI=ON; docs/distributed.md)");
                return dist(L);
            }
            /* distributed = false: the ordinary kernel, without the key. */
            lua_newtable(L);
            lua_pushnil(L);
            while (lua_next(L, oi)) {
                if (lua_type(L, -2) == LUA_TSTRING &&
                    strcmp(lua_tostring(L, -2), "distributed") == 0) {
                    lua_pop(L, 1);
                    continue;
                }
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
            }
            lua_replace(L, oi);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_CFunction plain = lua_tocfunction(L, lua_upvalueindex(2));
    return plain(L);
}

void lntk_wrap_ntk(lua_State *L, int ctx_idx, lua_CFunction dist)
{
    /* The module table is on top; its Net method table holds ntk. */
    if (lua_getfield(L, -1, "Net") == LUA_TTABLE) {
        lua_getfield(L, -1, "ntk");
        lua_CFunction plain = lua_tocfunction(L, -1);
        lua_pop(L, 1);
        if (plain) {
            lua_pushvalue(L, ctx_idx);
            lua_pushcfunction(L, plain);
            if (dist) lua_pushcfunction(L, dist);
            else lua_pushboolean(L, 0);
            lua_pushcclosure(L, ntk_dispatch, 3);
            lua_setfield(L, -2, "ntk");
        }
    }
    lua_pop(L, 1);
}

#ifndef NTK_MPI
void lntk_open_mpi(lua_State *L, int ctx_idx)
{
    /* ntk.mpi itself is the Lua layer's stub (available = false). */
    lntk_wrap_ntk(L, ctx_idx, NULL);
}
#endif
