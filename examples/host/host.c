/*
 * A host program that embeds Lua 5.4 and ntk.
 *
 * 1. Calls the C API directly: an MLP and its trace NTK on four inputs.
 * 2. Starts a Lua state, registers ntk.core with luaL_requiref, hands the
 *    same inputs to a Lua script as an ntk.Matrix (no copy through
 *    tables), runs the script and reads the kernel it returns.
 * 3. Checks that both kernels agree to the last bit, and that a misuse in
 *    the script comes back as an error message without harming the state.
 *
 *     host [LUADIR]
 *
 * LUADIR holds ntk/init.lua (default: where the build said ntk installed
 * it). Exit status 0 when every check passed.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "ntk_lua.h"

#ifndef NTK_HOST_LUA_DIR
#define NTK_HOST_LUA_DIR "."
#endif

enum { N = 4, IN = 3, HIDDEN = 16, OUT = 2, SEED = 7 };

static const double inputs[N][IN] = {
    {0.5, -1.0, 2.0}, {1.5, 0.25, -0.5}, {-2.0, 1.0, 0.0}, {0.0, 0.75, 1.25}};

/* The same network in both worlds: 3 -> 16 (tanh) -> 2, seed 7. */
static const char *const script =
    "local X = ...\n"
    "local ntk = require 'ntk'\n"
    "local net = ntk.mlp{sizes = {3, 16, 2}, activation = 'tanh', seed = 7}\n"
    "return net:ntk(X, {mode = 'trace', progress = false}), ntk.version\n";

static int failures = 0;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

/* The trace kernel through the C API into k (N x N). */
static int kernel_from_c(double k[N][N])
{
    ntk_ctx *ctx;
    if (ntk_ctx_create(&ctx) != NTK_OK) return 0;
    size_t sizes[] = {IN, HIDDEN, OUT};
    ntk_act acts[] = {NTK_ACT_TANH};
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = 2;
    spec.sizes = sizes;
    spec.acts = acts;
    spec.seed = SEED;
    ntk_net *net = NULL;
    ntk_status st = ntk_mlp_create(ctx, &spec, &net);
    if (st == NTK_OK) {
        ntk_mat x = {N, IN, (double *)inputs};
        ntk_mat out = {N, N, &k[0][0]};
        ntk_kernel_opts opts;
        ntk_kernel_opts_init(&opts);
        opts.mode = NTK_MODE_TRACE;
        st = ntk_net_ntk(ctx, net, &x, NULL, &opts, &out);
    }
    if (st != NTK_OK)
        fprintf(stderr, "host: %s: %s\n", ntk_status_string(st), ntk_ctx_error(ctx));
    ntk_net_destroy(ctx, net);
    ntk_ctx_destroy(ctx);
    return st == NTK_OK;
}

/* Let `require` find the Lua layer in luadir before anywhere else. */
static int set_path(lua_State *L, const char *luadir)
{
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", luadir, luadir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    return 1;
}

int main(int argc, char **argv)
{
    const char *luadir = argc > 1 ? argv[1] : NTK_HOST_LUA_DIR;
    printf("ntk %s, Lua layer from %s\n", ntk_version(), luadir);

    double kc[N][N];
    check(kernel_from_c(kc), "C API: trace NTK of 4 inputs");

    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "host: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    luaL_requiref(L, "ntk.core", luaopen_ntk_core, 0);
    lua_pop(L, 1);
    set_path(L, luadir);

    /* The script is a function of the input matrix. */
    int st = luaL_loadstring(L, script);
    double *x = NULL;
    if (st == LUA_OK) st = ntk_lua_pushmatrix(L, N, IN, &x);
    if (st == LUA_OK) {
        memcpy(x, inputs, sizeof inputs);
        st = lua_pcall(L, 1, 2, 0);
    }
    if (st != LUA_OK) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    ntk_mat k;
    int is_matrix = ntk_lua_tomatrix(L, -2, &k);
    check(is_matrix && k.rows == N && k.cols == N, "Lua returned a 4 x 4 ntk.Matrix");
    check(strcmp(lua_tostring(L, -1), ntk_version()) == 0,
          "the module's version is the library's");
    if (is_matrix && k.rows == N && k.cols == N) {
        int same = memcmp(k.data, kc, sizeof kc) == 0;
        check(same, "the Lua kernel equals the C kernel bit for bit");
        for (int i = 0; i < N; i++)
            printf("  %10.6f %10.6f %10.6f %10.6f\n", k.data[i * N], k.data[i * N + 1],
                   k.data[i * N + 2], k.data[i * N + 3]);
    }
    lua_pop(L, 2);

    /* A misuse raises a Lua error naming the argument; the state goes on. */
    st = luaL_dostring(L, "local ntk = require 'ntk'\n"
                          "ntk.mlp{sizes = {3, 2}}:forward(ntk.zeros(2, 5))");
    const char *msg = st == LUA_OK ? "" : lua_tostring(L, -1);
    printf("  error as expected: %s\n", msg);
    check(st != LUA_OK && strstr(msg, "bad argument #1 to 'forward'") &&
              strstr(msg, "N x 3"),
          "a wrong shape is a Lua error naming the argument");
    lua_settop(L, 0);
    st = luaL_dostring(L, "return require('ntk').eye(3):trace()");
    check(st == LUA_OK && lua_tonumber(L, -1) == 3.0, "the state is usable afterwards");

    lua_close(L);
    printf("%s\n", failures ? "host: FAILED" : "host: all checks passed");
    return failures ? 1 : 0;
}
