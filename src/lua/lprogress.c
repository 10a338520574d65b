/*
 * Progress and cancellation for long calls. The core reports through the
 * context's hook; here the hook draws a bar on a terminal, calls a Lua
 * function given as opts.progress, and honours an interrupt flag a host
 * (the ntk program on Ctrl-C) publishes in the registry.
 */
#define _POSIX_C_SOURCE 200809L
#include "lntk.h"

#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Registry key under which a host may store a light userdata pointing to
 * a volatile sig_atomic_t: nonzero asks running work to stop. */
#define LNTK_INTERRUPT_KEY "ntk.interrupt"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct hook_state {
    lntk_progress *p;
    volatile sig_atomic_t *interrupt;
    int failed; /* the callback raised; its error is in the err_ref slot */
    int nomem;  /* no stack space to call it */
} hook_state;

static void draw(lntk_progress *p, const char *task, double done, double total,
                 int final)
{
    double t = now(), elapsed = t - p->started;
    if (!final && (elapsed < 0.5 || t - p->last_draw < 0.1)) return;
    p->last_draw = t;
    double frac = total > 0 ? done / total : 1.0;
    if (frac > 1) frac = 1;
    int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double left = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    fprintf(stderr, "\r%-10.10s [%s] %5.1f%%  %6.1fs elapsed  %6.1fs left ", task, bar,
            100 * frac, elapsed, left);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->drawn = 1;
}

/* The Lua side of the hook, run under lua_pcall: the core is below on the
 * C stack, so nothing that can raise (even a memory error) may run
 * outside a protected call. 1: function, 2: task, 3: done, 4: total. */
static int call_progress(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 2));
    lua_replace(L, 2);
    lua_call(L, 3, 1);
    return 1;
}

static int hook(void *ud, const char *task, double done, double total)
{
    hook_state *hs = ud;
    lntk_progress *p = hs->p;
    if (hs->interrupt && *hs->interrupt) return 1;
    if (p->enabled) draw(p, task, done, total, done >= total && p->drawn);
    if (p->fn_ref != LUA_NOREF) {
        lua_State *L = p->L;
        if (!lua_checkstack(L, 6)) {
            hs->nomem = 1;
            return 1;
        }
        /* None of these pushes allocates. */
        lua_pushcfunction(L, call_progress);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->fn_ref);
        lua_pushlightuserdata(L, (void *)task);
        lua_pushnumber(L, done);
        lua_pushnumber(L, total);
        if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
            /* Keep the error to raise once the core has unwound; the slot
             * exists already, so storing into it does not allocate. */
            lua_rawseti(L, LUA_REGISTRYINDEX, p->err_ref);
            hs->failed = 1;
            return 1;
        }
        int stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
        lua_pop(L, 1);
        return stop;
    }
    return 0;
}

static hook_state *state_slot(lntk_progress *p)
{
    _Static_assert(sizeof p->hook_space >= sizeof(hook_state), "hook_space too small");
    return (hook_state *)(void *)p->hook_space;
}

void lntk_progress_begin(lua_State *L, lntk_progress *p, int opts_idx)
{
    p->L = L;
    p->fn_ref = LUA_NOREF;
    p->err_ref = LUA_NOREF;
    p->enabled = 0;
    p->drawn = 0;
    p->started = p->last_draw = now();
    int want_bar = isatty(STDERR_FILENO);
    if (opts_idx && lua_istable(L, opts_idx)) {
        int t = lua_getfield(L, opts_idx, "progress");
        if (t == LUA_TFUNCTION) {
            p->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            want_bar = 0;
        } else {
            if (t == LUA_TBOOLEAN) want_bar = want_bar && lua_toboolean(L, -1);
            else if (t != LUA_TNIL) {
                lua_pop(L, 1);
                luaL_argerror(L, opts_idx, "option 'progress' must be a boolean or a function");
            }
            lua_pop(L, 1);
        }
    }
    p->enabled = want_bar;
    if (p->fn_ref != LUA_NOREF) {
        /* Reserve the slot for the callback's error now, while raising is
         * still harmless. */
        lua_pushboolean(L, 0);
        p->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    hook_state *hs = state_slot(p);
    hs->p = p;
    hs->interrupt = NULL;
    hs->failed = 0;
    hs->nomem = 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, LNTK_INTERRUPT_KEY) == LUA_TLIGHTUSERDATA)
        hs->interrupt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    ntk_ctx_set_progress(lntk_ctx(L), hook, hs);
}

void lntk_progress_end(lua_State *L, lntk_progress *p)
{
    ntk_ctx_set_progress(lntk_ctx(L), NULL, NULL);
    if (p->drawn && p->enabled) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    if (p->fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->fn_ref);
    p->fn_ref = LUA_NOREF;
    hook_state *hs = state_slot(p);
    if (p->err_ref != LUA_NOREF) {
        if (hs->failed) lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
        p->err_ref = LUA_NOREF;
        if (hs->failed) lua_error(L);
    }
    if (hs->nomem) luaL_error(L, "not enough memory (no stack space for the progress function)");
}
