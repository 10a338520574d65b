/* ntk.core: the module's entry point, its context and shared helpers. */
#include "lntk.h"

#include <math.h>
#include <string.h>

#define LNTK_CONTEXT "ntk.Context"

typedef struct lntk_context {
    ntk_ctx *ctx;
} lntk_context;

ntk_ctx *lntk_ctx(lua_State *L)
{
    lntk_context *c = lua_touserdata(L, LNTK_CTX_UPVALUE);
    /* lua_close finalizes newest first, so a finalizer older than the
     * module may call it after the context is gone. */
    if (!c->ctx) luaL_error(L, "ntk: the engine's context is closed (the Lua state is closing)");
    return c->ctx;
}

static int context_gc(lua_State *L)
{
    lntk_context *c = luaL_checkudata(L, 1, LNTK_CONTEXT);
    if (c->ctx) {
        ntk_ctx_destroy(c->ctx);
        c->ctx = NULL;
    }
    return 0;
}

void lntk_setfuncs(lua_State *L, int ctx_idx, const luaL_Reg *fns)
{
    lua_pushvalue(L, ctx_idx);
    luaL_setfuncs(L, fns, 1);
    /* One function object serves both, as the docs promise. */
    if (lua_getfield(L, -1, "__gc") == LUA_TFUNCTION) lua_setfield(L, -2, "__close");
    else lua_pop(L, 1);
}

int lntk_error(lua_State *L, ntk_status st)
{
    const char *msg = ntk_ctx_error(lntk_ctx(L));
    if (!msg[0]) msg = ntk_status_string(st);
    return luaL_error(L, "%s", msg);
}

int lntk_failure(lua_State *L, ntk_status st)
{
    const char *msg = ntk_ctx_error(lntk_ctx(L));
    lua_pushnil(L);
    lua_pushstring(L, msg[0] ? msg : ntk_status_string(st));
    return 2;
}

size_t lntk_checksize(lua_State *L, int idx, const char *what)
{
    int isint;
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    if (!isint) {
        if (lua_type(L, idx) == LUA_TNUMBER)
            return (size_t)luaL_argerror(
                L, idx, lua_pushfstring(L, "%s must be an integer, got %s", what,
                                        lua_tostring(L, idx)));
        return (size_t)luaL_typeerror(L, idx, "integer");
    }
    if (v < 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s must be >= 0, got %I", what, v));
    if ((unsigned long long)v > (unsigned long long)INT32_MAX)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s must be below 2^31, got %I", what, v));
    return (size_t)v;
}

void lntk_checkoptions(lua_State *L, int idx, const char *const known[])
{
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; known[i]; i++)
                if (strcmp(k, known[i]) == 0) ok = 1;
        }
        if (!ok) {
            const char *key = luaL_tolstring(L, -1, NULL);
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            luaL_addstring(&b, "unknown option '");
            luaL_addstring(&b, key);
            luaL_addstring(&b, "' (expected one of:");
            for (int i = 0; known[i]; i++) {
                luaL_addchar(&b, ' ');
                luaL_addstring(&b, known[i]);
            }
            luaL_addchar(&b, ')');
            luaL_pushresult(&b);
            luaL_argerror(L, idx, lua_tostring(L, -1));
        }
    }
}

static int getfield(lua_State *L, int idx, const char *key)
{
    if (idx == 0 || lua_isnoneornil(L, idx)) return LUA_TNIL;
    return lua_getfield(L, idx, key);
}

static void field_error(lua_State *L, int idx, const char *key, const char *want)
{
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "option '%s' must be %s, got %s", key, want,
                                  luaL_typename(L, -1)));
}

lua_Number lntk_optnumber(lua_State *L, int idx, const char *key, lua_Number def)
{
    int t = getfield(L, idx, key);
    if (t == LUA_TNIL) {
        if (idx && !lua_isnoneornil(L, idx)) lua_pop(L, 1);
        return def;
    }
    if (t != LUA_TNUMBER) field_error(L, idx, key, "a number");
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!isfinite(v))
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be finite", key));
    return v;
}

lua_Integer lntk_optinteger(lua_State *L, int idx, const char *key, lua_Integer def)
{
    int t = getfield(L, idx, key);
    if (t == LUA_TNIL) {
        if (idx && !lua_isnoneornil(L, idx)) lua_pop(L, 1);
        return def;
    }
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (t != LUA_TNUMBER || !isint) field_error(L, idx, key, "an integer");
    lua_pop(L, 1);
    return v;
}

const char *lntk_optstring(lua_State *L, int idx, const char *key, const char *def)
{
    int t = getfield(L, idx, key);
    if (t == LUA_TNIL) {
        if (idx && !lua_isnoneornil(L, idx)) lua_pop(L, 1);
        return def;
    }
    if (t != LUA_TSTRING) field_error(L, idx, key, "a string");
    /* The options table keeps the string alive while the call runs. */
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);
    return s;
}

int lntk_optboolean(lua_State *L, int idx, const char *key, int def)
{
    int t = getfield(L, idx, key);
    if (t == LUA_TNIL) {
        if (idx && !lua_isnoneornil(L, idx)) lua_pop(L, 1);
        return def;
    }
    if (t != LUA_TBOOLEAN) field_error(L, idx, key, "a boolean");
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1,
                  "threads must be between 0 (every core) and 4096");
    ntk_status st = ntk_ctx_set_threads(lntk_ctx(L), (int)n);
    if (st) return lntk_error(L, st);
    return 0;
}

static int l_get_threads(lua_State *L)
{
    lua_pushinteger(L, ntk_ctx_threads(lntk_ctx(L)));
    return 1;
}

static int l_bytes_in_use(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ntk_ctx_bytes_in_use(lntk_ctx(L)));
    return 1;
}

static const luaL_Reg module_fns[] = {
    {"set_threads", l_set_threads},
    {"get_threads", l_get_threads},
    {"bytes_in_use", l_bytes_in_use},
    {"clock", lntk_clock},
    {NULL, NULL},
};

NTK_API int luaopen_ntk_core(lua_State *L)
{
    luaL_checkversion(L);
    /* The context allocates through the state's allocator, so a host that
     * limits or tracks Lua's memory sees the engine's too. */
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    lntk_context *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->ctx = NULL;
    if (luaL_newmetatable(L, LNTK_CONTEXT)) {
        lua_pushcfunction(L, context_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "private");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    if (ntk_ctx_create_with(&c->ctx, (ntk_alloc_fn)alloc, ud) != NTK_OK)
        return luaL_error(L, "ntk: cannot create a context (out of memory)");
    int ctx_idx = lua_gettop(L);

    lua_newtable(L);
    lntk_setfuncs(L, ctx_idx, module_fns);
    lua_pushliteral(L, NTK_VERSION_STRING);
    lua_setfield(L, -2, "version");

    lntk_open_matrix(L, ctx_idx);
    lntk_open_net(L, ctx_idx);
    lntk_open_linalg(L, ctx_idx);
    lntk_open_io(L, ctx_idx);
    lntk_open_train(L, ctx_idx);
    lntk_open_mpi(L, ctx_idx);
    lua_remove(L, ctx_idx);
    return 1;
}
