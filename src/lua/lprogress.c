/*
 * Progress and cancellation for long calls. The core reports through the
 * context's hook; here the hook draws a bar with rate and time left on a
 * terminal, calls a Lua function given as opts.progress, and honours an
 * interrupt flag a host (the ntk program on Ctrl-C) publishes in the
 * registry.
 *
 * NTK_PROGRESS in the environment sets the default: "0" (or "off") draws
 * no bar, "always" draws one on any stderr from the first report (logs,
 * tests); anything else draws on a terminal once work has taken 0.5 s.
 */
#define _POSIX_C_SOURCE 200809L
#include "lntk.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Registry key under which a host may store a light userdata pointing to
 * a volatile sig_atomic_t: nonzero asks running work to stop. The first
 * hook that sees it clears it, so one Ctrl-C stops one computation. */
#define LNTK_INTERRUPT_KEY "ntk.interrupt"

#define BAR_DELAY 0.5   /* seconds of work before a bar appears */
#define BAR_PERIOD 0.1  /* seconds between redraws */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct hook_state {
    lntk_progress *p;
    volatile sig_atomic_t *interrupt;
    ntk_ctx *ctx;
    unsigned short last_len; /* characters of the line drawn last */
    unsigned char immediate; /* NTK_PROGRESS=always */
    unsigned char failed;    /* the callback raised; its error is in the err_ref slot */
    unsigned char nomem;     /* no stack space to call it */
} hook_state;

static hook_state *state_of(lntk_progress *p)
{
    _Static_assert(sizeof p->hook_space >= sizeof(hook_state), "hook_space too small");
    return (hook_state *)(void *)p->hook_space;
}

static int term_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    const char *env = getenv("COLUMNS");
    int c = env ? atoi(env) : 0;
    return c >= 20 && c <= 1000 ? c : 80;
}

/* 9.8s, 4m05s, 2h03m */
static void format_time(char *out, size_t size, double s)
{
    if (!(s >= 0) || s > 360000) snprintf(out, size, "--");
    else if (s < 60) snprintf(out, size, "%.1fs", s);
    else if (s < 3600) snprintf(out, size, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, size, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* 12, 3.4k, 5.6M: counts and rates in little space */
static void format_count(char *out, size_t size, double v)
{
    if (v < 1000) snprintf(out, size, v < 10 && v != (long)v ? "%.2g" : "%.0f", v);
    else if (v < 1e6) snprintf(out, size, "%.1fk", v / 1e3);
    else if (v < 1e9) snprintf(out, size, "%.1fM", v / 1e6);
    else snprintf(out, size, "%.3g", v);
}

static void close_line(hook_state *hs)
{
    if (!hs->p->drawn) return;
    fputc('\n', stderr);
    fflush(stderr);
    hs->p->drawn = 0;
    hs->last_len = 0;
}

/*
 * One line, redrawn in place:
 *   ntk        [##########..........]  50.0%  12/24  3.1/s  elapsed 3.9s  left 3.9s
 * The bar shrinks, then the counts go, to fit the terminal.
 */
static void draw(hook_state *hs, const char *task, double done, double total, int final)
{
    lntk_progress *p = hs->p;
    double t = now(), elapsed = t - p->started;
    if (!final && !hs->immediate && elapsed < BAR_DELAY) return;
    if (!final && p->drawn && t - p->last_draw < BAR_PERIOD) return;
    p->last_draw = t;
    double frac = total > 0 ? done / total : 1.0;
    if (!(frac >= 0)) frac = 0;
    if (frac > 1) frac = 1;

    char counts[64], rate[32], ela[16], left[16], tail[128];
    char d[16], tot[16];
    format_count(d, sizeof d, done);
    format_count(tot, sizeof tot, total);
    snprintf(counts, sizeof counts, "  %s/%s", d, tot);
    format_time(ela, sizeof ela, elapsed);
    if (final) {
        snprintf(tail, sizeof tail, "  done in %s", ela);
        rate[0] = '\0';
    } else {
        double r = elapsed > 0 ? done / elapsed : 0;
        char rs[16];
        format_count(rs, sizeof rs, r);
        snprintf(rate, sizeof rate, "  %s/s", rs);
        format_time(left, sizeof left, done > 0 ? elapsed * (total - done) / done : -1);
        snprintf(tail, sizeof tail, "  elapsed %s  left %s", ela, left);
    }
    char head[16];
    snprintf(head, sizeof head, "%-10.10s", task);
    char pct[16];
    snprintf(pct, sizeof pct, " %5.1f%%", 100 * frac);

    /* The bar's width depends on the terminal only, so it does not jump
     * as the numbers around it change length. */
    int cols = term_columns() - 1;
    int width = cols - 64;
    if (width < 10) { /* narrow: drop counts and rate first */
        counts[0] = rate[0] = '\0';
        width = cols - 44;
    }
    if (width > 30) width = 30;
    if (width < 5) width = 5;
    char bar[48];
    int fill = (int)(frac * width + 0.5);
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';

    char line[320];
    int len = snprintf(line, sizeof line, "%s [%s]%s%s%s%s", head, bar, pct, counts, rate, tail);
    if (len < 0) return;
    if (len >= (int)sizeof line) len = (int)sizeof line - 1;
    /* Pad over what a longer previous line left behind. */
    int pad = hs->last_len > len ? hs->last_len - len : 0;
    fprintf(stderr, "\r%s%*s", line, pad, "");
    hs->last_len = (unsigned short)len;
    p->drawn = 1;
    if (final) close_line(hs);
    else fflush(stderr);
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
    if (hs->interrupt && *hs->interrupt) {
        *hs->interrupt = 0;
        return 1;
    }
    if (p->enabled) draw(hs, task, done, total, done >= total && p->drawn);
    if (p->fn_ref != LUA_NOREF && !hs->failed) {
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
        int status = lua_pcall(L, 4, 1, 0);
        if (status != LUA_OK) {
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

/* The bar by default: on a terminal, unless NTK_PROGRESS says otherwise. */
static int default_bar(int *immediate)
{
    const char *env = getenv("NTK_PROGRESS");
    *immediate = 0;
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0 || strcmp(env, "false") == 0))
        return 0;
    if (env && strcmp(env, "always") == 0) {
        *immediate = 1;
        return 1;
    }
    return isatty(STDERR_FILENO);
}

void lntk_progress_begin(lua_State *L, lntk_progress *p, int opts_idx)
{
    int immediate;
    int want_bar = default_bar(&immediate);
    p->L = L;
    p->fn_ref = LUA_NOREF;
    p->err_ref = LUA_NOREF;
    p->enabled = 0;
    p->drawn = 0;
    p->started = p->last_draw = now();
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
    hook_state *hs = state_of(p);
    memset(hs, 0, sizeof *hs);
    hs->p = p;
    hs->immediate = (unsigned char)immediate;
    if (lua_getfield(L, LUA_REGISTRYINDEX, LNTK_INTERRUPT_KEY) == LUA_TLIGHTUSERDATA)
        hs->interrupt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    hs->ctx = lntk_ctx(L);
    /* A call made from inside another's progress function (or a training
     * callback) must hand the outer call its hook back when it ends. */
    ntk_ctx_get_progress(hs->ctx, &p->prev_fn, &p->prev_ud);
    ntk_ctx_set_progress(hs->ctx, hook, hs);
}

void lntk_progress_end(lua_State *L, lntk_progress *p)
{
    hook_state *hs = state_of(p);
    ntk_ctx_set_progress(hs->ctx, p->prev_fn, p->prev_ud);
    close_line(hs); /* a bar left open: the work stopped early */
    if (p->fn_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->fn_ref);
    p->fn_ref = LUA_NOREF;
    if (p->err_ref != LUA_NOREF) {
        if (hs->failed) lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
        p->err_ref = LUA_NOREF;
        if (hs->failed) lua_error(L);
    }
    if (hs->nomem) luaL_error(L, "not enough memory (no stack space for the progress function)");
}

/* ntk.clock(): seconds on a monotonic wall clock, for timing work that
 * runs on several threads (os.clock adds up the CPU time of all). */
int lntk_clock(lua_State *L)
{
    lua_pushnumber(L, now());
    return 1;
}
