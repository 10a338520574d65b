/*
 * A Lua state whose allocator fails on demand, running ntk under
 * lua_pcall: every failure must come back as an error (never a crash or a
 * panic), the engine must hold no memory once the garbage is collected,
 * the state must stay usable, and lua_close must free every byte.
 *
 * The engine's context allocates through the state's allocator, so the
 * injected failures reach the C core as well as the binding and Lua.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ntk_lua.h"

#ifndef NTK_SOURCE_DIR
#error "NTK_SOURCE_DIR must point at the source tree (for lua/ntk)"
#endif

/*
 * Allocations that grow memory count down `budget`; when it reaches zero
 * they fail: all of them from then on (sticky) or only that one. A
 * negative budget never fails. Bytes and blocks are tracked to prove that
 * lua_close frees everything.
 */
typedef struct limiter {
    long budget;
    int sticky;
    long injected; /* failures injected so far */
    long grows;    /* requests that grow memory, failed or not */
    long blocks;
    size_t bytes;
} limiter;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    limiter *l = ud;
    size_t old = ptr ? osize : 0; /* with ptr NULL, osize is a type tag */
    if (nsize == 0) {
        if (ptr) {
            l->blocks--;
            l->bytes -= old;
        }
        free(ptr);
        return NULL;
    }
    if (nsize > old) l->grows++;
    if (nsize > old && l->budget >= 0) {
        if (l->budget == 0) {
            l->injected++;
            if (!l->sticky) l->budget = -1;
            return NULL;
        }
        l->budget--;
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    if (!ptr) l->blocks++;
    l->bytes = l->bytes - old + nsize;
    return p;
}

static int verbose; /* NTK_TEST_VERBOSE=1: failure points per chunk */

static int is_memory_error(lua_State *L, int st)
{
    if (st == LUA_ERRMEM) return 1;
    if (st != LUA_ERRRUN) return 0;
    const char *msg = lua_tostring(L, -1);
    return msg && (strstr(msg, "out of memory") || strstr(msg, "not enough memory"));
}

/* Protected set-up of a fresh state: ntk.core, then the Lua layer from
 * the source tree (the standard libraries are opened before). */
static int setup_core(lua_State *L)
{
    luaL_requiref(L, "ntk.core", luaopen_ntk_core, 0);
    return 0;
}

static int setup(lua_State *L)
{
    luaL_requiref(L, "ntk.core", luaopen_ntk_core, 0);
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushliteral(L, NTK_SOURCE_DIR "/lua/?.lua;" NTK_SOURCE_DIR "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ntk");
    lua_call(L, 1, 1);
    lua_setglobal(L, "ntk");
    return 0;
}

/* A state with the standard libraries (made without failures: they are
 * Lua's business) and ntk loaded with l->budget in force. */
static lua_State *new_state(limiter *l)
{
    long budget = l->budget;
    l->budget = -1;
    lua_State *L = lua_newstate(limited_alloc, l);
    if (!L) return NULL;
    luaL_openlibs(L);
    l->budget = budget;
    lua_pushcfunction(L, setup);
    int st = lua_pcall(L, 0, 0, 0);
    l->budget = -1;
    if (st != LUA_OK) {
        CHECK_MSG(is_memory_error(L, LUA_ERRRUN) || lua_type(L, -1) == LUA_TSTRING,
                  "set-up failed with %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

/*
 * Loading ntk under failures: every failure point of luaopen_ntk_core,
 * then about 150 evenly spread over the Lua layer (mostly Lua compiling
 * it: a fresh state per point would make a full sweep quadratic in the
 * layer's size).
 */
static void test_setup_failures(void)
{
    limiter count = {-1, 0, 0, 0, 0, 0};
    lua_State *C = lua_newstate(limited_alloc, &count);
    luaL_openlibs(C);
    long before = count.grows;
    lua_pushcfunction(C, setup_core);
    CHECK_STATUS(lua_pcall(C, 0, 0, 0), LUA_OK);
    long core = count.grows - before;
    lua_close(C);
    count.grows = 0;
    C = new_state(&count);
    long total = count.grows;
    lua_close(C);
    CHECK(core > 10 && total > core);
    long stride = (total - core) / 150 + 1;
    for (int sticky = 0; sticky <= 1; sticky++) {
        int done = 0;
        for (long budget = 0; budget < 100000 && !done;
             budget += budget <= core + 8 ? 1 : stride) {
            limiter l = {budget, sticky, 0, 0, 0, 0};
            lua_State *L = new_state(&l);
            if (L) {
                done = l.injected == 0;
                /* Usable whatever happened while it was made. */
                CHECK(luaL_dostring(L, "return ntk.eye(2):trace()") == LUA_OK &&
                      lua_tonumber(L, -1) == 2.0);
                lua_close(L);
            }
            CHECK_MSG(l.blocks == 0 && l.bytes == 0,
                      "budget %ld: %ld blocks, %zu bytes left after lua_close", budget,
                      l.blocks, l.bytes);
        }
        CHECK_MSG(done, "set-up never succeeded (sticky %d)", sticky);
    }
}

/* Chunks that exercise the module; each returns a string that summarises
 * its result, compared with a run without failures. */
static const char *const chunks[] = {
    "local X = ntk.randn(5, 3, 1)\n"
    "return string.format('%.17g', X:T():mm(X):trace())",

    "local M = ntk.matrix{{1, 2}, {3, 4}} + ntk.ones(2, 2) * 2\n"
    "local t = M:totable()\n"
    "return tostring(M) .. t[2][2] .. M:sub(1, 2, 2, 2):sum() .. M:reshape(4, 1):norm()",

    "local net = ntk.mlp{sizes = {3, 6, 2}, activation = 'tanh', seed = 3}\n"
    "local Y = net:forward(ntk.randn(4, 3, 2))\n"
    "return tostring(net) .. string.format('%.17g', Y:sum())",

    "local net = ntk.mlp{sizes = {3, 5, 4, 2}, seed = 4}\n"
    "local J = net:jacobian(ntk.randn(3, 3, 5))\n"
    "local J1 = net:jacobian(ntk.randn(1, 3, 5))\n"
    "return string.format('%.17g %.17g', J:norm(), J1:norm())",

    "local net = ntk.mlp{sizes = {3, 5, 2}, activation = 'erf', seed = 6}\n"
    "local X, Z = ntk.randn(5, 3, 7), ntk.randn(2, 3, 8)\n"
    "local s = {}\n"
    "for _, mode in ipairs{'full', 'trace', 'blocks'} do\n"
    "  s[#s + 1] = net:ntk(X, {mode = mode, chunk = 2, progress = false}):sum()\n"
    "end\n"
    "local outs = net:ntk(X, Z, {mode = 'outputs', progress = false})\n"
    "s[#s + 1] = outs[1]:sum() + outs[2]:sum()\n"
    "s[#s + 1] = net:ntk(X, Z, {chunk = 1, progress = false}):sum()\n"
    "return table.concat(s, ' ')",

    /* A progress function that allocates, called from inside the core. */
    "local net = ntk.mlp{sizes = {3, 4, 2}, seed = 9}\n"
    "local calls = {}\n"
    "local K = net:ntk(ntk.randn(6, 3, 1), {chunk = 2, progress = function(task, done, total)\n"
    "  calls[#calls + 1] = {task, done, total, tostring(done)}\n"
    "end})\n"
    "return #calls .. ' ' .. K:trace()",

    "local net = ntk.mlp{sizes = {2, 3, 1}, seed = 2}\n"
    "local c = net:copy()\n"
    "local W, b = c:layer(1)\n"
    "c:set_layer(1, W * 2, b)\n"
    "c:set_params(c:params() * 0.5)\n"
    "local p = c:ntk_plan(10, {mode = 'trace'})\n"
    "return p.method .. p.chunk .. c:forward(ntk.ones(1, 2)):get(1, 1)",

    /* Loaders and savers (io section): misuse raises, files answer nil,
     * message; `must` hides "memory" in such a message so that an
     * out-of-memory failure turned into nil, message cannot pass. */
    "local M = ntk.randn(4, 3, 1)\n"
    "local p = TMP .. '/m.npy'\n"
    "must(M:save_npy(p, {progress = false}))\n"
    "local info = must(ntk.npy_info(p))\n"
    "local A = must(ntk.load_npy(p, {progress = false}))\n"
    "local gz = SRC .. '/tests/fixtures/data/idx_u8.idx.gz'\n"
    "local I = must(ntk.load_idx(gz, {rows = {2, 1, 2}, scale = 0.5, progress = false}))\n"
    "local ii = must(ntk.idx_info(gz))\n"
    "local X, y = must(ntk.load_csv(SRC .. '/tests/fixtures/data/csv_semicolon.csv',\n"
    "                               {delimiter = ';', label = -1, progress = false}))\n"
    "local net = ntk.mlp{sizes = {3, 4, 2}, seed = 1}\n"
    "local q = TMP .. '/n.ntk'\n"
    "must(net:save(q))\n"
    "local back = must(ntk.load_net(q))\n"
    "local none, msg = ntk.load_npy(TMP .. '/none.npy')\n"
    "return table.concat({info.rows, A:sum(), I:sum(), ii.cols, X:sum(), y:sum(),\n"
    "  (back:params() - net:params()):max_abs(), tostring(none), msg:gsub(TMP, '')}, ' ')",

    /* Datasets and preparation (Lua layer over the core). */
    "local X, y, Y = ntk.datasets.two_moons{n = 12, seed = 2, one_hot = true}\n"
    "local T = X:take_rows(ntk.permutation(6, 3))\n"
    "local Z, mean, sd = ntk.standardize(T)\n"
    "local a, b = ntk.train_test_split{X, y, test = 0.25, seed = 1}\n"
    "local S = ntk.shuffle{Y, seed = 4}\n"
    "return string.format('%.17g %.17g %.17g %d %d %.17g %.17g', Z:sum(), mean:sum(),\n"
    "  sd:sum(), a:rows(), b:rows(), S:sum(), ntk.one_hot(y, 2):sum())",

    /* Spectra and kernel methods. */
    "local G = ntk.randn(6, 6, 11)\n"
    "local K = G:mm(G:T()) + ntk.eye(6)\n"
    "local Y = ntk.randn(6, 2, 3)\n"
    "local w = ntk.eigvalsh(K, {progress = false})\n"
    "local w2, V = ntk.eigh(K, {k = 2, progress = false})\n"
    "local e = ntk.eigs(K, 2, {progress = false})\n"
    "local alpha = ntk.kernel_regression(K, Y, {progress = false})\n"
    "local P = ntk.kernel_predict(K:sub(1, 2, 1, 6), alpha)\n"
    "local gd = ntk.gd_dynamics{K_train = K, Y = Y, times = {1, math.huge}, progress = false}\n"
    "return string.format('%.12g %.12g %.12g %.12g %.12g %.12g %.12g %.12g', w:sum(),\n"
    "  w2:sum(), V:norm(), e:sum(), P:sum(), ntk.spectrum_stats(w).effective_rank,\n"
    "  ntk.alignment(K, Y), gd.train[2]:sum())",

    /* Matrix-free products and spectra of the NTK. */
    "local net = ntk.mlp{sizes = {3, 4, 2}, activation = 'tanh', seed = 5}\n"
    "local X = ntk.randn(4, 3, 6)\n"
    "local KV = net:ntk_matvec(X, ntk.randn(8, 2, 7), {memory = 1, progress = false})\n"
    "local w, info = net:ntk_eigs(X, 2, {progress = false})\n"
    "return string.format('%.12g %.12g %s', KV:sum(), w:sum(), tostring(info.converged))",

    /* Losses, gradients, training, kernel distance. */
    "local net = ntk.mlp{sizes = {3, 5, 2}, activation = 'gelu', seed = 8}\n"
    "local X, Y = ntk.randn(5, 3, 1), ntk.randn(5, 2, 2)\n"
    "local l = net:loss(X, Y)\n"
    "local g = net:grad(X, ntk.vector{1, 2, 1, 2, 1}, {loss = 'cross_entropy'})\n"
    "local v = net:vjp(X, Y, {progress = false})\n"
    "local K0 = net:ntk(X, {progress = false})\n"
    "local h = net:train{X = X, Y = Y, epochs = 3, batch_size = 2, optimizer = 'adam',\n"
    "                   progress = false, callback = function(e, loss) return e < 3 end}\n"
    "local rel = ntk.kernel_distance(K0, net:ntk(X, {progress = false}))\n"
    "return string.format('%.17g %.17g %.17g %d %.17g %.17g', l, g:sum(), v:sum(), #h,\n"
    "  h[#h], rel)",

    /* Infinite-width kernels. */
    "local a = ntk.analytic{sizes = {3, 5, 2}, activation = 'gelu'}\n"
    "local X = ntk.randn(3, 3, 4)\n"
    "local nngp, ntk_ = a:kernels(X, ntk.randn(2, 3, 5), {progress = false})\n"
    "local net = ntk.mlp{sizes = {3, 6, 2}, activation = 'erf'}\n"
    "local F = net:analytic():ntk(X, {mode = 'full', progress = false})\n"
    "local e, ed = ntk.gaussian_expect('softplus', 1, 2, 0.5)\n"
    "return string.format('%.17g %.17g %.17g %.17g %.17g %s', nngp:sum(), ntk_:sum(),\n"
    "  F:sum(), e, ed, tostring(a))",

    /* Plots, written in Lua. */
    "local s = ntk.plot.sparkline({3, 1, 2}) .. ntk.plot.text({3, 2, 1}, {width = 6, height = 2})\n"
    "local path = must(ntk.plot.spectrum({3, 2, 1}, TMP .. '/s.svg', {width = 200, height = 150}))\n"
    "return s .. path:gsub(TMP, '')",

    /* Errors on top of memory failures. */
    "local ok, err = pcall(function() return ntk.mlp{sizes = {3, 2}}:forward(ntk.zeros(1, 4)) end)\n"
    "if not tostring(err):match('N x 3') then error(err, 0) end -- a memory error\n"
    "return tostring(ok) .. err:match('N x 3')",
};

/* After a run: the engine holds nothing once garbage is collected, and the
 * chunk gives its reference answer again. */
static void check_recovered(lua_State *L, int chunk, const char *want, long budget)
{
    lua_settop(L, 0);
    int st = luaL_dostring(L, "collectgarbage(); collectgarbage(); return ntk.bytes_in_use()");
    CHECK_MSG(st == LUA_OK && lua_tointeger(L, -1) == 0,
              "chunk %d, budget %ld: engine still holds %s bytes", chunk, budget,
              lua_tostring(L, -1));
    lua_settop(L, 0);
    st = luaL_dostring(L, chunks[chunk]);
    CHECK_MSG(st == LUA_OK && strcmp(lua_tostring(L, -1), want) == 0,
              "chunk %d, budget %ld: rerun gave %s", chunk, budget, lua_tostring(L, -1));
    lua_settop(L, 0);
}

static char tmpdir[64];

/* Globals the chunks use, set outside any budget: TMP (a directory of
 * this test's), SRC (the source tree) and must(...), which passes its
 * arguments on unless the first is nil: then it raises with the second's
 * "memory" spelt otherwise. */
static void chunk_globals(lua_State *L)
{
    lua_pushstring(L, tmpdir);
    lua_setglobal(L, "TMP");
    lua_pushliteral(L, NTK_SOURCE_DIR);
    lua_setglobal(L, "SRC");
    CHECK(luaL_dostring(L, "function must(...)\n"
                           "  local v, err = ...\n"
                           "  if v == nil then error('nil, ' .. tostring(err):gsub('memory', 'm-e-m'), 2) end\n"
                           "  return ...\n"
                           "end") == LUA_OK);
}

static void test_chunk_failures(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ntk_lua_alloc_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    for (int c = 0; c < (int)(sizeof chunks / sizeof *chunks); c++) {
        limiter l = {-1, 0, 0, 0, 0, 0};
        lua_State *L = new_state(&l);
        CHECK(L != NULL);
        if (!L) continue;
        chunk_globals(L);
        int st = luaL_dostring(L, chunks[c]);
        CHECK_MSG(st == LUA_OK, "chunk %d: %s", c, lua_tostring(L, -1));
        char want[4096];
        snprintf(want, sizeof want, "%s", st == LUA_OK ? lua_tostring(L, -1) : "");
        lua_settop(L, 0);
        for (int sticky = 0; sticky <= 1; sticky++) {
            int done = 0;
            long budget;
            for (budget = 0; budget < 100000 && !done; budget++) {
                /* Load outside the budget: the chunk's own work is under test. */
                CHECK(luaL_loadstring(L, chunks[c]) == LUA_OK);
                l.budget = budget;
                l.sticky = sticky;
                l.injected = 0;
                st = lua_pcall(L, 0, 1, 0);
                l.budget = -1;
                if (l.injected == 0) {
                    done = 1;
                    CHECK_MSG(st == LUA_OK && strcmp(lua_tostring(L, -1), want) == 0,
                              "chunk %d: %s", c, lua_tostring(L, -1));
                } else if (st != LUA_OK) {
                    CHECK_MSG(is_memory_error(L, st), "chunk %d, budget %ld: %s", c,
                              budget, lua_tostring(L, -1));
                } else {
                    /* Lua recovered (an emergency collection): same answer. */
                    CHECK_MSG(strcmp(lua_tostring(L, -1), want) == 0,
                              "chunk %d, budget %ld: %s", c, budget, lua_tostring(L, -1));
                }
                check_recovered(L, c, want, budget);
            }
            CHECK_MSG(done, "chunk %d never ran without failures", c);
            if (verbose && sticky) fprintf(stderr, "chunk %d: %ld failure points\n", c, budget);
        }
        lua_close(L);
        CHECK_MSG(l.blocks == 0 && l.bytes == 0, "chunk %d: %ld blocks left", c, l.blocks);
    }
    const char *files[] = {"m.npy", "n.ntk", "s.svg"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[k]);
        remove(path);
    }
    CHECK(remove(tmpdir) == 0);
}

/* ntk_lua_pushmatrix and ntk_lua_tomatrix never raise. */
static void test_embedding_api(void)
{
    limiter l = {-1, 0, 0, 0, 0, 0};
    lua_State *L = lua_newstate(limited_alloc, &l);
    double *data = (double *)1;
    /* No ntk.core yet: an error message, not a panic. */
    CHECK_STATUS(ntk_lua_pushmatrix(L, 2, 2, &data), LUA_ERRRUN);
    CHECK(data == NULL && strstr(lua_tostring(L, -1), "not loaded") != NULL);
    lua_settop(L, 0);
    luaL_openlibs(L);
    lua_pushcfunction(L, setup);
    CHECK_STATUS(lua_pcall(L, 0, 0, 0), LUA_OK);

    CHECK_STATUS(ntk_lua_pushmatrix(L, 2, 3, &data), LUA_OK);
    for (int i = 0; i < 6; i++) data[i] = i;
    lua_setglobal(L, "M");
    CHECK(luaL_dostring(L, "return M:get(2, 3) + M:sum() + M:rows() * 10") == LUA_OK);
    CHECK(lua_tonumber(L, -1) == 5 + 15 + 20);
    lua_settop(L, 0);
    CHECK_STATUS(ntk_lua_pushmatrix(L, 0, 5, &data), LUA_OK);
    ntk_mat v = {9, 9, NULL};
    CHECK(ntk_lua_tomatrix(L, -1, &v) && v.rows == 0 && v.cols == 5);
    lua_settop(L, 0);
    /* Sizes beyond the Lua API's limit, or whose byte count overflows, are
     * refused before allocating. */
    CHECK_STATUS(ntk_lua_pushmatrix(L, (size_t)1 << 40, (size_t)1 << 40, &data), LUA_ERRRUN);
    CHECK(data == NULL && strstr(lua_tostring(L, -1), "2^31") != NULL);
    lua_settop(L, 0);
    CHECK_STATUS(ntk_lua_pushmatrix(L, (size_t)-1, 2, NULL), LUA_ERRRUN);
    lua_settop(L, 0);
    CHECK_STATUS(ntk_lua_pushmatrix(L, (size_t)1 << 31, 0, NULL), LUA_ERRRUN);
    lua_settop(L, 0);
    CHECK_STATUS(ntk_lua_pushmatrix(L, INT32_MAX, INT32_MAX, &data), LUA_ERRRUN);
    CHECK(data == NULL && strstr(lua_tostring(L, -1), "too large") != NULL);
    lua_settop(L, 0);
    /* Out of memory: an error status. */
    l.budget = 0;
    l.sticky = 1;
    int st = ntk_lua_pushmatrix(L, 100, 100, &data);
    l.budget = -1;
    CHECK_STATUS(st, LUA_ERRMEM);
    CHECK(data == NULL);
    lua_settop(L, 0);

    /* tomatrix: only open matrices. */
    v.rows = 7;
    lua_pushnil(L);
    lua_pushinteger(L, 3);
    lua_newuserdatauv(L, 16, 0);
    CHECK(!ntk_lua_tomatrix(L, 1, &v) && !ntk_lua_tomatrix(L, 2, &v) &&
          !ntk_lua_tomatrix(L, 3, &v) && !ntk_lua_tomatrix(L, 99, &v));
    CHECK(v.rows == 7);
    CHECK(luaL_dostring(L, "local K <close> = ntk.eye(2); CLOSED = K") == LUA_OK);
    lua_getglobal(L, "CLOSED");
    CHECK(!ntk_lua_tomatrix(L, -1, &v));
    /* With every allocation failing it still answers (a raise would be a
     * panic here, outside any protected call) and keeps the stack. */
    CHECK(luaL_dostring(L, "return ntk.ones(3, 2)") == LUA_OK);
    int top = lua_gettop(L);
    l.budget = 0;
    l.sticky = 1;
    int ok = ntk_lua_tomatrix(L, -1, &v);
    l.budget = -1;
    CHECK(lua_gettop(L) == top);
    CHECK(!ok || (v.rows == 3 && v.cols == 2 && v.data[5] == 1.0));
    lua_close(L);
    CHECK(l.blocks == 0 && l.bytes == 0);
}

/*
 * Functions called while lua_close finalizes objects: a finalizer that
 * runs after the engine's context is gone must get errors, not a crash.
 */
static void test_calls_during_close(void)
{
    limiter l = {-1, 0, 0, 0, 0, 0};
    lua_State *L = lua_newstate(limited_alloc, &l);
    luaL_openlibs(L);
    /* The sentinel is made before ntk, so lua_close finalizes it after
     * the module's context (finalizers run newest first). */
    CHECK(luaL_dostring(L, "RESULTS = {}\n"
                           "SENTINEL = setmetatable({}, {__gc = function()\n"
                           "  local ntk = NTK\n"
                           "  for _, f in ipairs{\n"
                           "    function() return ntk.mlp{sizes = {2, 1}} end,\n"
                           "    function() return NET:forward(ntk.zeros(1, 2)) end,\n"
                           "    function() return NET:ntk(ntk.zeros(2, 2)) end,\n"
                           "    function() return ntk.eye(2):mm(ntk.eye(2)) end,\n"
                           "    function() return ntk.set_threads(1) end,\n"
                           "  } do pcall(f) end\n"
                           "end})") == LUA_OK);
    lua_pushcfunction(L, setup);
    CHECK_STATUS(lua_pcall(L, 0, 0, 0), LUA_OK);
    CHECK(luaL_dostring(L, "NTK = ntk; NET = ntk.mlp{sizes = {2, 3, 1}}") == LUA_OK);
    lua_close(L);
    CHECK(l.blocks == 0 && l.bytes == 0);
}

/*
 * Memory running out while the core calls back into Lua (the progress
 * function): whatever the hook needs must not raise through the core, or
 * the core's scratch memory leaks. Padding the registry moves the point
 * where storing the callback's error would have to grow it.
 */
static void test_progress_unwind(void)
{
    static const char chunk[] =
        "local net = ntk.mlp{sizes = {3, 4, 2}, seed = 9}\n"
        "local K = net:ntk(ntk.randn(4, 3, 1), {chunk = 1, progress = function(task, done)\n"
        "  return {task, done} ~= nil\n"
        "end})\n"
        "return K:trace()";
    for (int pad = 0; pad < 40; pad++) {
        limiter l = {-1, 1, 0, 0, 0, 0};
        lua_State *L = new_state(&l);
        CHECK(L != NULL);
        if (!L) continue;
        for (int i = 0; i < pad; i++) {
            lua_pushboolean(L, 1);
            luaL_ref(L, LUA_REGISTRYINDEX);
        }
        int done = 0;
        for (long budget = 0; budget < 100000 && !done; budget++) {
            CHECK(luaL_loadstring(L, chunk) == LUA_OK);
            l.budget = budget;
            l.injected = 0;
            int st = lua_pcall(L, 0, 1, 0);
            l.budget = -1;
            done = l.injected == 0;
            CHECK_MSG(st == LUA_OK || is_memory_error(L, st), "pad %d budget %ld: %s", pad,
                      budget, lua_tostring(L, -1));
            lua_settop(L, 0);
            st = luaL_dostring(L, "collectgarbage(); collectgarbage(); return ntk.bytes_in_use()");
            CHECK_MSG(st == LUA_OK && lua_tointeger(L, -1) == 0,
                      "pad %d budget %ld: engine still holds %s bytes", pad, budget,
                      lua_tostring(L, -1));
            lua_settop(L, 0);
        }
        CHECK(done);
        lua_close(L);
        CHECK_MSG(l.blocks == 0 && l.bytes == 0, "pad %d: %ld blocks left", pad, l.blocks);
    }
}

int main(void)
{
    verbose = getenv("NTK_TEST_VERBOSE") && strcmp(getenv("NTK_TEST_VERBOSE"), "1") == 0;
    test_progress_unwind();
    test_embedding_api();
    test_calls_during_close();
    test_setup_failures();
    test_chunk_failures();
    return check_report("test_lua_alloc");
}
