/* ntk.core: the module's entry point, its context and shared helpers. */
#include "lntk.h"

#include <limits.h>
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

void lntk_newclass(lua_State *L, int ctx_idx, const char *tname, const char *name,
                   const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, tname);
    lntk_setfuncs(L, ctx_idx, meta);
    lua_newtable(L);
    lntk_setfuncs(L, ctx_idx, methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -3, name);
    lua_pop(L, 1);
}

void lntk_addmethods(lua_State *L, int ctx_idx, const char *name, const luaL_Reg *methods)
{
    if (lua_getfield(L, -1, name) != LUA_TTABLE)
        luaL_error(L, "ntk: class %s is opened after the methods added to it", name);
    lntk_setfuncs(L, ctx_idx, methods);
    lua_pop(L, 1);
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

uint64_t lntk_checkseed(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return 0;
    int isint;
    lua_Integer s = lua_tointegerx(L, idx, &isint);
    if (!isint) luaL_typeerror(L, idx, "integer seed");
    return (uint64_t)s;
}

lntk_matrix *lntk_checkinput(lua_State *L, int idx, size_t n, const char *what)
{
    lntk_matrix *x = lntk_checkmatrix(L, idx);
    if (x->cols != n)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s must be N x %I (one sample per row), got %Ix%I",
                                      what, (lua_Integer)n, (lua_Integer)x->rows,
                                      (lua_Integer)x->cols));
    return lntk_checkfinite(L, idx, what);
}

int lntk_kernel_args(lua_State *L, size_t n, lntk_matrix **x1, lntk_matrix **x2)
{
    *x1 = lntk_checkinput(L, 2, n, "X1");
    *x2 = NULL;
    int opts = 0;
    if (lntk_testmatrix(L, 3)) {
        *x2 = lntk_checkinput(L, 3, n, "X2");
        if (!lua_isnoneornil(L, 4)) opts = 4;
    } else if (lua_istable(L, 3)) {
        opts = 3;
    } else if (lua_isnil(L, 3) && !lua_isnoneornil(L, 4)) {
        opts = 4;
    } else if (!lua_isnoneornil(L, 3)) {
        luaL_typeerror(L, 3, "ntk.Matrix (X2) or options table");
    }
    if (opts) luaL_checktype(L, opts, LUA_TTABLE);
    return opts;
}

/* Index of name in the NULL-terminated list names (its first n at most), or -1. */
static int lookup(const char *const names[], int n, const char *name)
{
    for (int i = 0; i < n && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void lntk_kernel_opts(lua_State *L, int idx, const char *const known[], int nmodes,
                      const char *modes_msg, ntk_kernel_opts *o)
{
    static const char *const modes[] = {"full", "trace", "outputs", "blocks", NULL};
    static const char *const methods[] = {"auto", "jacobian", "structured", NULL};
    ntk_kernel_opts_init(o);
    if (!idx) return;
    lntk_checkoptions(L, idx, known);
    const char *mode = lntk_optstring(L, idx, "mode", "full");
    int found = lookup(modes, nmodes, mode);
    if (found < 0) luaL_argerror(L, idx, lua_pushfstring(L, "%s, got '%s'", modes_msg, mode));
    o->mode = (ntk_mode)found;
    const char *method = lntk_optstring(L, idx, "method", "auto");
    found = lookup(methods, 3, method);
    if (found < 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "method must be auto, jacobian or structured, "
                                                 "got '%s'",
                                              method));
    o->method = (ntk_method)found;
    const char *norm = lntk_optstring(L, idx, "normalize", "sum");
    if (strcmp(norm, "mean") == 0) o->normalize_mean = 1;
    else if (strcmp(norm, "sum") != 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "normalize must be 'sum' or 'mean', got '%s'",
                                              norm));
    lua_Integer mem = lntk_optinteger(L, idx, "memory", 0);
    if (mem < 0) luaL_argerror(L, idx, "memory must be a positive number of bytes");
    o->memory = (size_t)mem;
    lua_Integer chunk = lntk_optinteger(L, idx, "chunk", 0);
    if (chunk < 0) luaL_argerror(L, idx, "chunk must be a positive number of samples");
    o->chunk = (size_t)chunk;
}

void lntk_checkoptions(lua_State *L, int idx, const char *const known[])
{
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || lookup(known, INT_MAX, lua_tostring(L, -1)) < 0) {
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
