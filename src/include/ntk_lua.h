/*
 * ntk_lua.h -- embedding ntk in a host program that runs Lua 5.4.
 *
 * Link libntk_lua.a (pkg-config ntk-lua, or CMake's ntk::lua) and Lua 5.4.
 * Register the native module, then require the Lua layer from where it
 * was installed (pkg-config --variable=luadir ntk, or NTK_LUA_DIR):
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaL_requiref(L, "ntk.core", luaopen_ntk_core, 0);
 *     lua_pop(L, 1);
 *     // package.path must reach <luadir>/?.lua and <luadir>/?/init.lua
 *     luaL_dostring(L, "ntk = require 'ntk'");
 *
 * Instead of luaL_requiref, `package.preload["ntk.core"] = luaopen_ntk_core`
 * registers it lazily; a host that does not link libntk_lua can also let
 * `require "ntk"` load the installed module ntk/core.so through
 * package.cpath (that module exports only luaopen_ntk_core).
 *
 * The module gives each Lua state one engine context, which allocates
 * through the state's allocator (lua_getallocf): a host that limits or
 * counts Lua's memory limits or counts the engine's too. A state is used by
 * one thread at a time, as Lua requires.
 *
 * Matrices cross the boundary without copies through the two functions
 * below. Both are safe to call outside a protected call: they never raise.
 */
#ifndef NTK_LUA_H
#define NTK_LUA_H

#include "ntk.h"

#ifdef __cplusplus
extern "C" {
#endif

#include <lua.h> /* inside extern "C": Lua's headers have no C++ guards */

/* The module ntk.core; pushes its table. */
NTK_API int luaopen_ntk_core(lua_State *L);

/*
 * Push a new rows x cols ntk.Matrix filled with zeros and return LUA_OK
 * with *data (if data is not NULL) pointing at its rows * cols row-major
 * doubles. The memory belongs to the matrix: it stays valid while the
 * matrix is reachable from Lua and not closed, and the collector frees it.
 * On failure (ntk.core not loaded in this state, rows or cols of 2^31 or
 * more, out of memory) it pushes an error message instead and returns
 * LUA_ERRRUN or LUA_ERRMEM; *data is then NULL.
 */
NTK_API int ntk_lua_pushmatrix(lua_State *L, size_t rows, size_t cols,
                               double **data);

/*
 * If the value at index idx is an open ntk.Matrix, fill *view (rows, cols
 * and a pointer to its data, which may be read and written) and return 1;
 * otherwise return 0 and leave *view untouched. The view is valid while
 * the value stays reachable and open.
 */
NTK_API int ntk_lua_tomatrix(lua_State *L, int idx, ntk_mat *view);

#ifdef __cplusplus
}
#endif

#endif /* NTK_LUA_H */
