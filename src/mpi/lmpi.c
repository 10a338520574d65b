/*
 * ntk.mpi: MPI helpers, process grids and distributed matrices for Lua.
 * Compiled into ntk.core only with -DNTK_MPI=ON.
 *
 * MPI is initialised on the first use of ntk.mpi (MPI_Init_thread with
 * MPI_THREAD_FUNNELED) unless the host did it already, and finalised when
 * the Lua state closes (a sentinel in the registry, created before any grid
 * and so collected after them) or, for os.exit without closing, at exit.
 * MPI is one per process, so whether we initialised it is the one piece of
 * process-wide state here.
 *
 * Every function that communicates is collective: all ranks call it in the
 * same order with the same global arguments. Allocations that one rank
 * might fail are made under protection and agreed on, so a failure raises
 * the same error on every rank instead of leaving the others waiting.
 */
#define _GNU_SOURCE
#include "lntk.h"
#include "ntk_mpi.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LDIST "ntk.DistMatrix"
#define LGRID "ntk.mpi.Grid"
#define SENTINEL_KEY "ntk.mpi.sentinel"
#define GRIDS_KEY "ntk.mpi.grids"

static int owns_mpi;
static int atexit_done;

typedef struct lgrid {
    ntk_grid g;
    int live;
} lgrid;

typedef struct ldist {
    ntk_dmat d;
    size_t samples, rps; /* a kernel's samples and rows per sample; 0 otherwise */
    const char *consumed; /* the call that overwrote it (overwrite = true) */
    int closed;
    double data[];
} ldist;

/* ---- MPI's lifetime ---------------------------------------------------- */

static void finalize_mpi(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (owns_mpi && init && !fin) MPI_Finalize();
}

static int sentinel_gc(lua_State *L)
{
    (void)L;
    finalize_mpi();
    return 0;
}

/* BLAS threads per rank: OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) when
 * set, else the node's cores shared among its ranks (and never more than
 * the cores this rank may run on), unless ntk.set_threads chose already. */
static void share_cores(lua_State *L)
{
    ntk_ctx *ctx = lntk_ctx(L);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1 || ntk_ctx_threads(ctx) != cores) return;
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env) env = getenv("OMP_NUM_THREADS");
    long want = 0;
    if (env && *env) {
        char *end;
        want = strtol(env, &end, 10);
        if (*end || want < 1 || want > 4096) want = 0;
    }
    if (!want) {
        MPI_Comm node;
        int local = 1;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                                &node) == MPI_SUCCESS) {
            MPI_Comm_size(node, &local);
            MPI_Comm_free(&node);
        }
        want = cores / (local > 0 ? local : 1);
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < want)
            want = CPU_COUNT(&set);
        if (want < 1) want = 1;
    }
    if (want != cores) ntk_ctx_set_threads(ctx, (int)want);
}

static void ensure_mpi(lua_State *L)
{
    int init = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin) luaL_error(L, "ntk.mpi: MPI has already been finalised in this process");
    if (lua_getfield(L, LUA_REGISTRYINDEX, SENTINEL_KEY) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    /* The sentinel first: if MPI starts, its finaliser exists. */
    lua_newuserdatauv(L, 1, 0);
    if (luaL_newmetatable(L, "ntk.mpi.Sentinel")) {
        lua_pushcfunction(L, sentinel_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, SENTINEL_KEY);
    MPI_Initialized(&init);
    if (!init) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            luaL_error(L, "ntk.mpi: MPI_Init_thread failed");
        owns_mpi = 1;
        if (!atexit_done && atexit(finalize_mpi) == 0) atexit_done = 1;
        share_cores(L);
    }
}

/*
 * Registry "ntk.mpi.fail": a host calls it when its script ended in an
 * error (the ntk program does). With other ranks running it aborts the
 * job: finalising instead would wait for ranks that wait in a collective
 * for this one.
 */
static int fail_job(lua_State *L)
{
    (void)L;
    int init = 0, fin = 0, size = 1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) return 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    return 0;
}

static int mpi_rank(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static int mpi_size(void)
{
    int s;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

/* ---- agreed allocation -------------------------------------------------- */

static int alloc_ud(lua_State *L)
{
    lua_newuserdatauv(L, (size_t)lua_tointeger(L, 1), 1);
    return 1;
}

static int alloc_matrix(lua_State *L)
{
    lntk_newmatrix(L, (size_t)lua_tointeger(L, 1), (size_t)lua_tointeger(L, 2), 0);
    return 1;
}

/*
 * Call alloc (a C function of nargs integer arguments pushed by the caller
 * above it) under protection on ranks where `want`, push nil elsewhere; a
 * failure on any rank raises on every rank.
 */
static void *agreed(lua_State *L, int nargs, int want)
{
    int ok = 1;
    if (want) {
        ok = lua_pcall(L, nargs, 1, 0) == LUA_OK;
        if (!ok) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
    } else {
        lua_pop(L, nargs + 1);
        lua_pushnil(L);
    }
    int size = mpi_size(), mine = ok ? size : mpi_rank(), first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first < size)
        luaL_error(L, "not enough memory: rank %d could not allocate its part", first);
    return lua_touserdata(L, -1);
}

/* A userdata of `bytes` with one user value, on every rank, agreed. */
static void *agreed_userdata(lua_State *L, size_t bytes)
{
    lua_pushcfunction(L, alloc_ud);
    lua_pushinteger(L, (lua_Integer)bytes);
    return agreed(L, 1, 1);
}

/* A rows x cols ntk.Matrix on ranks where `want` (nil elsewhere), agreed. */
static lntk_matrix *agreed_matrix(lua_State *L, size_t rows, size_t cols, int want)
{
    size_t count;
    /* Too large is the same answer everywhere: raise it as it is. */
    if (ntk_mat_count(NULL, rows, cols, &count) != NTK_OK || count > ((size_t)1 << 60))
        luaL_error(L, "a %I x %I matrix is too large", (lua_Integer)rows, (lua_Integer)cols);
    lua_pushcfunction(L, alloc_matrix);
    lua_pushinteger(L, (lua_Integer)rows);
    lua_pushinteger(L, (lua_Integer)cols);
    return agreed(L, 2, want);
}

/* ---- helpers on ordinary matrices --------------------------------------- */

static void bcast_doubles(double *x, size_t n, int root)
{
    const size_t step = (size_t)1 << 26;
    for (size_t o = 0; o < n; o += step) {
        size_t c = n - o < step ? n - o : step;
        MPI_Bcast(x + o, (int)c, MPI_DOUBLE, root, MPI_COMM_WORLD);
    }
}

static int checkroot(lua_State *L, int idx)
{
    lua_Integer r = luaL_optinteger(L, idx, 0);
    int size = mpi_size();
    if (r < 0 || r >= size)
        luaL_argerror(L, idx, lua_pushfstring(L, "root must be a rank between 0 and %d, got %I",
                                              size - 1, r));
    return (int)r;
}

static int l_init(lua_State *L)
{
    ensure_mpi(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_initialized(lua_State *L)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    lua_pushboolean(L, init && !fin);
    return 1;
}

static int l_rank(lua_State *L)
{
    ensure_mpi(L);
    lua_pushinteger(L, mpi_rank());
    return 1;
}

static int l_size(lua_State *L)
{
    ensure_mpi(L);
    lua_pushinteger(L, mpi_size());
    return 1;
}

static int l_barrier(lua_State *L)
{
    ensure_mpi(L);
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
}

static int l_wtime(lua_State *L)
{
    ensure_mpi(L);
    lua_pushnumber(L, MPI_Wtime());
    return 1;
}

static int l_processor_name(lua_State *L)
{
    ensure_mpi(L);
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    lua_pushlstring(L, name, (size_t)len);
    return 1;
}

/* ntk.mpi.abort([message [, code]]): end every rank now. */
static int l_abort(lua_State *L)
{
    const char *msg = luaL_optstring(L, 1, NULL);
    lua_Integer code = luaL_optinteger(L, 2, 1);
    ensure_mpi(L);
    if (msg) {
        fprintf(stderr, "ntk.mpi.abort on rank %d: %s\n", mpi_rank(), msg);
        fflush(stderr);
    }
    MPI_Abort(MPI_COMM_WORLD, code > 0 && code < 256 ? (int)code : 1);
    return 0;
}

/* ntk.mpi.bcast(M, root): root's M on every rank (root gets M back). */
static int l_bcast(lua_State *L)
{
    ensure_mpi(L);
    int root = checkroot(L, 2);
    int me = mpi_rank();
    unsigned long long shape[2] = {0, 0};
    int ok = 1;
    lntk_matrix *m = NULL;
    if (me == root) {
        m = lntk_testmatrix(L, 1);
        ok = m && !m->closed;
        if (ok) {
            shape[0] = m->rows;
            shape[1] = m->cols;
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, root, MPI_COMM_WORLD);
    if (!ok) {
        if (me == root) lntk_checkmatrix(L, 1);
        return luaL_argerror(L, 1, lua_pushfstring(L, "ntk.Matrix expected on the root (rank %d)",
                                                   root));
    }
    MPI_Bcast(shape, 2, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD);
    lntk_matrix *out = agreed_matrix(L, (size_t)shape[0], (size_t)shape[1], me != root);
    if (me == root) {
        lua_pop(L, 1);
        lua_pushvalue(L, 1);
        out = m;
    }
    bcast_doubles(out->data, out->rows * out->cols, root);
    return 1;
}

/* Rows of every rank, stacked in rank order: on root (or all if root < 0). */
static int stack_rows(lua_State *L, int root)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    int size = mpi_size(), me = mpi_rank();
    long long c[2] = {(long long)m->cols, -(long long)m->cols}, r[2];
    MPI_Allreduce(c, r, 2, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (r[0] != -r[1])
        return luaL_argerror(L, 1, "every rank's matrix must have the same number of columns");
    int *counts = lua_newuserdatauv(L, 2 * (size_t)size * sizeof(int), 0);
    int *displs = counts + size;
    long long mine = (long long)m->rows;
    long long *all = lua_newuserdatauv(L, (size_t)size * sizeof(long long), 0);
    MPI_Allgather(&mine, 1, MPI_LONG_LONG, all, 1, MPI_LONG_LONG, MPI_COMM_WORLD);
    long long total = 0, rows = 0;
    for (int p = 0; p < size; p++) {
        long long n = all[p] * (long long)m->cols;
        if (total + n > INT32_MAX)
            return luaL_error(L, "gather: more than 2^31 entries in all; use a distributed "
                                 "matrix and save_npy");
        counts[p] = (int)n;
        displs[p] = (int)total;
        total += n;
        rows += all[p];
    }
    mine *= (long long)m->cols;
    int receives = root < 0 || me == root;
    lntk_matrix *out = agreed_matrix(L, (size_t)rows, m->cols, receives);
    if (root < 0)
        MPI_Allgatherv(m->data, (int)mine, MPI_DOUBLE, out->data, counts, displs, MPI_DOUBLE,
                       MPI_COMM_WORLD);
    else
        MPI_Gatherv(m->data, (int)mine, MPI_DOUBLE, out ? out->data : NULL, counts, displs,
                    MPI_DOUBLE, root, MPI_COMM_WORLD);
    return 1;
}

static int l_gather(lua_State *L)
{
    ensure_mpi(L);
    return stack_rows(L, checkroot(L, 2));
}

static int l_allgather(lua_State *L)
{
    ensure_mpi(L);
    return stack_rows(L, -1);
}

/* ntk.mpi.allreduce(M [, op]): op is "sum" (default), "max" or "min". */
static int l_allreduce(lua_State *L)
{
    ensure_mpi(L);
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    static const char *const ops[] = {"sum", "max", "min", NULL};
    int op = luaL_checkoption(L, 2, "sum", ops);
    unsigned long long s[4] = {m->rows, m->cols, ~(unsigned long long)m->rows,
                               ~(unsigned long long)m->cols},
                       r[4];
    MPI_Allreduce(s, r, 4, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (r[0] != ~r[2] || r[1] != ~r[3])
        return luaL_argerror(L, 1, "every rank's matrix must have the same shape");
    lntk_matrix *out = agreed_matrix(L, m->rows, m->cols, 1);
    MPI_Op mop = op == 0 ? MPI_SUM : op == 1 ? MPI_MAX : MPI_MIN;
    size_t n = m->rows * m->cols;
    const size_t step = (size_t)1 << 26;
    for (size_t o = 0; o < n; o += step) {
        size_t c = n - o < step ? n - o : step;
        MPI_Allreduce(m->data + o, out->data + o, (int)c, MPI_DOUBLE, mop, MPI_COMM_WORLD);
    }
    return 1;
}

static int l_grid_shape(lua_State *L)
{
    int size;
    if (lua_isnoneornil(L, 1)) {
        ensure_mpi(L);
        size = mpi_size();
    } else {
        lua_Integer s = luaL_checkinteger(L, 1);
        luaL_argcheck(L, s >= 1 && s <= INT32_MAX, 1, "size must be a positive integer");
        size = (int)s;
    }
    int p, q;
    ntk_grid_shape(size, &p, &q);
    lua_pushinteger(L, p);
    lua_pushinteger(L, q);
    return 2;
}

/* ---- grids -------------------------------------------------------------- */

static int grid_gc(lua_State *L)
{
    lgrid *g = luaL_checkudata(L, 1, LGRID);
    int fin = 0;
    MPI_Finalized(&fin);
    if (g->live && !fin) ntk_grid_destroy(&g->g);
    g->live = 0;
    return 0;
}

/* Push the (cached) grid nprow x npcol; 0 x 0 is the most square. */
static int push_grid(lua_State *L, int nprow, int npcol)
{
    ensure_mpi(L);
    int size = mpi_size();
    if (nprow == 0 && npcol == 0) ntk_grid_shape(size, &nprow, &npcol);
    if ((long)nprow * npcol != size)
        luaL_error(L, "the process grid %dx%d must use all %d ranks", nprow, npcol, size);
    if (lua_getfield(L, LUA_REGISTRYINDEX, GRIDS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, GRIDS_KEY);
    }
    lua_pushfstring(L, "%dx%d", nprow, npcol);
    if (lua_rawget(L, -2) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return lua_gettop(L);
    }
    lua_pop(L, 1);
    lgrid *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    if (luaL_newmetatable(L, LGRID)) {
        lua_pushcfunction(L, grid_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "private");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_status st = ntk_grid_create(ctx, MPI_COMM_WORLD, nprow, npcol, &g->g);
    if (st) lntk_error(L, st);
    g->live = 1;
    lua_pushfstring(L, "%dx%d", nprow, npcol);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
    return lua_gettop(L);
}

/* Option `grid` at opts idx: {p, q}, or absent. */
static void opt_grid(lua_State *L, int idx, int *p, int *q)
{
    *p = *q = 0;
    if (!idx) return;
    int t = lua_getfield(L, idx, "grid");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    int ok = t == LUA_TTABLE && luaL_len(L, -1) == 2;
    lua_Integer v[2] = {0, 0};
    for (int k = 0; ok && k < 2; k++) {
        lua_geti(L, -1, k + 1);
        int isint;
        v[k] = lua_tointegerx(L, -1, &isint);
        ok = isint && v[k] >= 1 && v[k] <= INT32_MAX;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!ok) luaL_argerror(L, idx, "option 'grid' must be {rows, cols} of the process grid");
    int size = mpi_size();
    if (v[0] * v[1] != size)
        luaL_argerror(L, idx, lua_pushfstring(L, "option 'grid' is %Ix%I: the process grid must use "
                                                 "all %d ranks",
                                              v[0], v[1], size));
    *p = (int)v[0];
    *q = (int)v[1];
}

/* ---- distributed matrices ------------------------------------------------ */

static ldist *testdist(lua_State *L, int idx) { return luaL_testudata(L, idx, LDIST); }

static ldist *checkdist(lua_State *L, int idx)
{
    ldist *u = luaL_checkudata(L, idx, LDIST);
    if (u->closed) luaL_argerror(L, idx, "distributed matrix is closed");
    if (u->consumed)
        luaL_argerror(L, idx, lua_pushfstring(L, "distributed matrix was overwritten by %s "
                                                 "(overwrite = true)",
                                              u->consumed));
    return u;
}

/* A new distributed matrix on the grid at grid_idx, agreed on all ranks. */
static ldist *newdist(lua_State *L, int grid_idx, size_t rows, size_t cols, size_t mb,
                      size_t nb)
{
    lgrid *g = lua_touserdata(L, grid_idx);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_dmat d;
    ntk_status st = ntk_dmat_init(ctx, &g->g, rows, cols, mb, nb, &d);
    /* The local-size check differs by rank. */
    if ((st = ntk_mpi_agree(ctx, g->g.comm, st))) lntk_error(L, st);
    size_t count = ntk_dmat_local_count(&d);
    ldist *u = agreed_userdata(L, offsetof(ldist, data) + count * sizeof(double));
    u->d = d;
    u->d.data = u->data;
    u->samples = u->rps = 0;
    u->consumed = NULL;
    u->closed = 0;
    lua_pushvalue(L, grid_idx);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LDIST);
    /* The local part lives inside the userdata: the collector sees it. */
    return u;
}

/* Push the grid userdata of u (at idx). */
static int push_grid_of(lua_State *L, int idx)
{
    lua_getiuservalue(L, idx, 1);
    return lua_gettop(L);
}

static ldist *copydist(lua_State *L, int idx)
{
    ldist *src = checkdist(L, idx);
    int gi = push_grid_of(L, idx);
    ldist *u = newdist(L, gi, src->d.rows, src->d.cols, src->d.mb, src->d.nb);
    memcpy(u->data, src->data, ntk_dmat_local_count(&src->d) * sizeof(double));
    u->d.lower = src->d.lower;
    u->samples = src->samples;
    u->rps = src->rps;
    lua_remove(L, gi);
    return u;
}

static const char *const kernel_keys[] = {"distributed", "mode", "normalize", "method", "memory",
                                          "chunk", "progress", "block", "grid", NULL};

static void kernel_opts(lua_State *L, int idx, ntk_kernel_opts *o, size_t *block, int *p,
                        int *q)
{
    lntk_kernel_opts(L, idx, kernel_keys, 2,
                     "mode must be 'full' or 'trace' for a distributed kernel", o);
    *block = 0;
    *p = *q = 0;
    if (!idx) return;
    lntk_optboolean(L, idx, "distributed", 1); /* implied here; a boolean if given */
    lua_Integer b = lntk_optinteger(L, idx, "block", 0);
    if (b < 0 || b > INT32_MAX)
        luaL_argerror(L, idx, "block must be a positive number of samples per block");
    *block = (size_t)b;
    opt_grid(L, idx, p, q);
}

/* Rank 0 draws the bar; every rank runs callbacks and honours interrupts. */
static void progress_begin(lua_State *L, lntk_progress *p, int idx)
{
    lntk_progress_begin(L, p, idx);
    if (mpi_rank() != 0) p->enabled = 0;
}

/* (net, X1 [, X2] [, opts]) -> ntk.DistMatrix */
static int dist_ntk(lua_State *L)
{
    ntk_net *net = lntk_checknet(L, 1);
    lntk_matrix *x1, *x2;
    int oi = lntk_kernel_args(L, ntk_net_input_dim(net), &x1, &x2);
    ntk_kernel_opts o;
    size_t block;
    int p, q;
    kernel_opts(L, oi, &o, &block, &p, &q);
    ntk_ctx *ctx = lntk_ctx(L);
    /* Read all we need of net now: a progress function may close it. */
    size_t rps = o.mode == NTK_MODE_FULL ? ntk_net_output_dim(net) : 1;
    int gi = push_grid(L, p, q);
    lgrid *g = lua_touserdata(L, gi);
    size_t rows, cols, nb;
    ntk_status st = ntk_dist_kernel_layout(ctx, net, x1->rows, x2 ? x2->rows : 0, &o, block,
                                           &g->g, &rows, &cols, &nb);
    if (!st && x2 && x2->rows == 0) cols = 0;
    if (st) return lntk_error(L, st);
    ldist *u = newdist(L, gi, rows, cols, nb, nb);
    ntk_mat v1 = lntk_view(x1), v2 = x2 ? lntk_view(x2) : (ntk_mat){0, 0, NULL};
    lntk_progress prog;
    progress_begin(L, &prog, oi);
    /* A progress function may close the network: work on a copy, freed
     * before anything can raise. */
    ntk_net *own = NULL;
    st = ntk_net_copy(ctx, net, &own);
    if ((st = ntk_mpi_agree(ctx, g->g.comm, st)) == NTK_OK)
        st = ntk_dist_ntk(ctx, own, &v1, x2 ? &v2 : NULL, &o, &u->d);
    ntk_net_destroy(ctx, own);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    u->samples = x1->rows;
    u->rps = rps;
    return 1;
}

/* net:ntk(..., {distributed = true, ...}) lands here (src/mpi/ldispatch.c). */
static int method_dist_ntk(lua_State *L)
{
    ensure_mpi(L);
    return dist_ntk(L);
}

static int l_ntk(lua_State *L)
{
    ensure_mpi(L);
    return dist_ntk(L);
}

static int l_is_distributed(lua_State *L)
{
    lua_pushboolean(L, testdist(L, 1) != NULL);
    return 1;
}

/* ntk.mpi.distribute(M [, {block =, grid =, symmetric =}]) */
static int l_distribute(lua_State *L)
{
    static const char *const known[] = {"block", "grid", "symmetric", NULL};
    ensure_mpi(L);
    lntk_matrix *m = lntk_checkfinite(L, 1, "M");
    lntk_checkoptions(L, 2, known);
    int oi = lua_isnoneornil(L, 2) ? 0 : 2;
    lua_Integer b = lntk_optinteger(L, oi, "block", 0);
    if (b < 0 || b > INT32_MAX) luaL_argerror(L, 2, "block must be a positive number of rows");
    int sym = lntk_optboolean(L, oi, "symmetric", 0);
    int p, q;
    opt_grid(L, oi, &p, &q);
    if (sym) {
        if (m->rows != m->cols)
            luaL_argerror(L, 1, lua_pushfstring(L, "a symmetric M must be square, got %Ix%I",
                                                (lua_Integer)m->rows, (lua_Integer)m->cols));
        double scale = 0;
        size_t n = m->rows;
        for (size_t k = 0; k < n * n; k++) scale = fmax(scale, fabs(m->data[k]));
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (fabs(m->data[i * n + j] - m->data[j * n + i]) > 1e-12 * scale)
                    luaL_argerror(L, 1, lua_pushfstring(L, "M is not symmetric: entries (%I, %I) "
                                                           "and (%I, %I) differ by more than "
                                                           "1e-12 max|M|",
                                                        (lua_Integer)i + 1, (lua_Integer)j + 1,
                                                        (lua_Integer)j + 1, (lua_Integer)i + 1));
    }
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_status st = ntk_mpi_check_same(ctx, MPI_COMM_WORLD, m->data, m->rows * m->cols, "M");
    if (st) return lntk_error(L, st);
    int gi = push_grid(L, p, q);
    if (b == 0) {
        /* 64, or less so that every process row and column gets blocks. */
        lgrid *g = lua_touserdata(L, gi);
        int pmax = g->g.nprow > g->g.npcol ? g->g.nprow : g->g.npcol;
        size_t big = m->rows > m->cols ? m->rows : m->cols;
        size_t fair = (big + 2 * (size_t)pmax - 1) / (2 * (size_t)pmax);
        b = fair < 64 ? (fair > 0 ? (lua_Integer)fair : 1) : 64;
    }
    ldist *u = newdist(L, gi, m->rows, m->cols, (size_t)b, (size_t)b);
    ntk_mat v = lntk_view(m);
    if ((st = ntk_dmat_scatter(ctx, &v, &u->d))) return lntk_error(L, st);
    u->d.lower = sym;
    return 1;
}

static int d_shape(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    lua_pushinteger(L, (lua_Integer)u->d.rows);
    lua_pushinteger(L, (lua_Integer)u->d.cols);
    return 2;
}

static int d_rows(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkdist(L, 1)->d.rows);
    return 1;
}

static int d_cols(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkdist(L, 1)->d.cols);
    return 1;
}

static int d_block(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    lua_pushinteger(L, (lua_Integer)u->d.mb);
    lua_pushinteger(L, (lua_Integer)u->d.nb);
    return 2;
}

static int d_grid(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    const ntk_grid *g = u->d.grid;
    lua_pushinteger(L, g->nprow);
    lua_pushinteger(L, g->npcol);
    lua_pushinteger(L, g->myrow);
    lua_pushinteger(L, g->mycol);
    return 4;
}

static int d_local_shape(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    lua_pushinteger(L, (lua_Integer)u->d.lrows);
    lua_pushinteger(L, (lua_Integer)u->d.lcols);
    return 2;
}

/* This rank's part as an ordinary (row-major) matrix. */
static int d_local(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    lntk_matrix *m = lntk_newmatrix(L, u->d.lrows, u->d.lcols, 0);
    for (size_t i = 0; i < u->d.lrows; i++)
        for (size_t j = 0; j < u->d.lcols; j++)
            m->data[i * u->d.lcols + j] = u->data[j * u->d.lld + i];
    return 1;
}

static int d_descriptor(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    lua_createtable(L, 9, 0);
    for (int k = 0; k < 9; k++) {
        lua_pushinteger(L, u->d.desc[k]);
        lua_rawseti(L, -2, k + 1);
    }
    return 1;
}

static int d_is_symmetric(lua_State *L)
{
    lua_pushboolean(L, checkdist(L, 1)->d.lower);
    return 1;
}

static int d_samples(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    if (!u->rps) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)u->samples);
    lua_pushinteger(L, (lua_Integer)u->rps);
    return 2;
}

static int gather_to(lua_State *L, int root)
{
    ldist *u = checkdist(L, 1);
    lntk_matrix *m = agreed_matrix(L, u->d.rows, u->d.cols, root < 0 || mpi_rank() == root);
    ntk_mat v = m ? lntk_view(m) : (ntk_mat){0, 0, NULL};
    ntk_status st = ntk_dmat_gather(lntk_ctx(L), &u->d, root, m ? &v : NULL);
    if (st) return lntk_error(L, st);
    return 1;
}

static int d_gather(lua_State *L)
{
    checkdist(L, 1);
    return gather_to(L, checkroot(L, 2));
}

static int d_allgather(lua_State *L) { return gather_to(L, -1); }

static double local_trace(const ntk_dmat *d)
{
    double s = 0;
    for (size_t lc = 0; lc < d->lcols; lc++) {
        size_t j = ntk_dmat_global_col(d, lc), J = j / d->mb;
        if (j >= d->rows || (int)(J % (size_t)d->grid->nprow) != d->grid->myrow) continue;
        s += d->data[lc * d->lld + (J / (size_t)d->grid->nprow) * d->mb + j % d->mb];
    }
    return s;
}

static int d_trace(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    if (u->d.rows != u->d.cols)
        return luaL_argerror(L, 1, "trace needs a square matrix");
    double s = local_trace(&u->d);
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_SUM, u->d.grid->comm);
    lua_pushnumber(L, s);
    return 1;
}

static int d_copy(lua_State *L)
{
    copydist(L, 1);
    return 1;
}

static void need_symmetric(lua_State *L, ldist *u, const char *what)
{
    if (!u->d.lower)
        luaL_argerror(L, 1, lua_pushfstring(L, "%s needs a symmetric distributed matrix (the "
                                               "kernel of one input set, or ntk.mpi.distribute(M, "
                                               "{symmetric = true}))",
                                            what));
}

/* The matrix a routine may destroy: u itself (overwrite) or a copy. */
static ldist *work_matrix(lua_State *L, int overwrite, const char *what)
{
    ldist *u = checkdist(L, 1);
    if (!overwrite) return copydist(L, 1);
    u->consumed = what;
    lua_pushvalue(L, 1);
    return u;
}

static size_t opt_k(lua_State *L, int idx, size_t n)
{
    if (!idx) return 0;
    int t = lua_getfield(L, idx, "k");
    lua_pop(L, 1);
    if (t == LUA_TNIL) return 0;
    lua_Integer k = lntk_optinteger(L, idx, "k", 0);
    if (k < 1 || (lua_Unsigned)k > (lua_Unsigned)n)
        luaL_argerror(L, idx, lua_pushfstring(L, "k must be between 1 and %I, got %I",
                                              (lua_Integer)n, k));
    return (size_t)k;
}

/* D:eigvalsh([{k =, driver =, overwrite =, progress =}]) */
static int d_eigvalsh(lua_State *L)
{
    static const char *const known[] = {"k", "driver", "overwrite", "progress", NULL};
    ldist *u = checkdist(L, 1);
    lntk_checkoptions(L, 2, known);
    int oi = lua_isnoneornil(L, 2) ? 0 : 2;
    need_symmetric(L, u, "eigvalsh");
    size_t n = u->d.rows, k = opt_k(L, oi, n);
    const char *driver = lntk_optstring(L, oi, "driver", "evr");
    int divide = strcmp(driver, "evd") == 0;
    if (!divide && strcmp(driver, "evr") != 0)
        luaL_argerror(L, 2, "driver must be 'evr' (pdsyevr, values only) or 'evd' (pdsyevd)");
    if (divide && k)
        luaL_argerror(L, 2, "driver 'evd' computes all eigenvalues; drop k or use 'evr'");
    int overwrite = lntk_optboolean(L, oi, "overwrite", 0);
    lntk_matrix *w = lntk_newmatrix(L, k ? k : n, 1, 0);
    int wi = lua_gettop(L);
    ldist *a = work_matrix(L, overwrite, "eigvalsh");
    lntk_progress prog;
    progress_begin(L, &prog, oi);
    ntk_status st = ntk_dist_eigvalsh(lntk_ctx(L), &a->d, k, divide, w->data);
    lntk_progress_end(L, &prog);
    if (!overwrite) a->closed = 1;
    if (st == NTK_ERR_NOCONV) return lntk_failure(L, st);
    if (st) return lntk_error(L, st);
    lua_pushvalue(L, wi);
    return 1;
}

/* D:eigh([{k =, overwrite =, vectors = "replicated" | "distributed", progress =}]) */
static int d_eigh(lua_State *L)
{
    static const char *const known[] = {"k", "overwrite", "vectors", "progress", NULL};
    ldist *u = checkdist(L, 1);
    lntk_checkoptions(L, 2, known);
    int oi = lua_isnoneornil(L, 2) ? 0 : 2;
    need_symmetric(L, u, "eigh");
    size_t n = u->d.rows, k = opt_k(L, oi, n), want = k ? k : n;
    const char *vec = lntk_optstring(L, oi, "vectors", k ? "replicated" : "distributed");
    int replicated = strcmp(vec, "replicated") == 0;
    if (!replicated && strcmp(vec, "distributed") != 0)
        luaL_argerror(L, 2, "vectors must be 'replicated' (an ntk.Matrix on every rank) or "
                            "'distributed'");
    int overwrite = lntk_optboolean(L, oi, "overwrite", 0);
    lntk_matrix *w = lntk_newmatrix(L, want, 1, 0);
    int wi = lua_gettop(L);
    int gi = push_grid_of(L, 1);
    ldist *z = newdist(L, gi, n, want, u->d.mb, u->d.nb);
    int zi = lua_gettop(L);
    ldist *a = work_matrix(L, overwrite, "eigh");
    lntk_progress prog;
    progress_begin(L, &prog, oi);
    ntk_status st = ntk_dist_eigh(lntk_ctx(L), &a->d, k, w->data, &z->d);
    lntk_progress_end(L, &prog);
    if (!overwrite) a->closed = 1;
    if (st == NTK_ERR_NOCONV) return lntk_failure(L, st);
    if (st) return lntk_error(L, st);
    lua_pushvalue(L, wi);
    if (!replicated) {
        lua_pushvalue(L, zi);
        return 2;
    }
    lntk_matrix *m = agreed_matrix(L, n, want, 1);
    ntk_mat v = lntk_view(m);
    if ((st = ntk_dmat_gather(lntk_ctx(L), &z->d, -1, &v))) return lntk_error(L, st);
    z->closed = 1;
    return 2;
}

/* D:solve(Y [, {ridge =, jitter =, overwrite =, progress =}]) -> alpha, info */
static int d_solve(lua_State *L)
{
    static const char *const known[] = {"ridge", "jitter", "overwrite", "progress", NULL};
    ldist *u = checkdist(L, 1);
    lntk_matrix *y = lntk_checkfinite(L, 2, "Y");
    lntk_checkoptions(L, 3, known);
    int oi = lua_isnoneornil(L, 3) ? 0 : 3;
    need_symmetric(L, u, "solve");
    size_t n = u->d.rows, nrhs;
    int vectorized = 0;
    if (y->rows == n) nrhs = y->cols;
    else if (u->rps > 1 && y->rows == u->samples && y->cols == u->rps) {
        vectorized = 1;
        nrhs = 1;
    } else
        return luaL_argerror(L, 2, lua_pushfstring(L, "Y must have %I rows (one per kernel row)%s, "
                                                      "got %Ix%I",
                                                   (lua_Integer)n,
                                                   u->rps > 1 ? " or be N x m (one row per sample)"
                                                              : "",
                                                   (lua_Integer)y->rows, (lua_Integer)y->cols));
    double ridge = lntk_optnumber(L, oi, "ridge", 0);
    if (ridge < 0) luaL_argerror(L, 3, "ridge must be >= 0");
    int overwrite = lntk_optboolean(L, oi, "overwrite", 0);
    int jitter = lntk_optboolean(L, oi, "jitter", !overwrite);
    if (jitter && overwrite)
        luaL_argerror(L, 3, "jitter retries need the kernel: drop overwrite or set jitter = false");
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_status st = ntk_mpi_check_same(ctx, u->d.grid->comm, y->data, y->rows * y->cols, "Y");
    if (st) return lntk_error(L, st);
    /* Jitter, when the kernel is not positive definite: 1e-12, 1e-10, ...
     * 1e-4 times the mean diagonal, added to the ridge. */
    double mean_diag = 0;
    if (jitter && n) {
        mean_diag = local_trace(&u->d);
        MPI_Allreduce(MPI_IN_PLACE, &mean_diag, 1, MPI_DOUBLE, MPI_SUM, u->d.grid->comm);
        mean_diag = fabs(mean_diag) / (double)n;
        if (!(mean_diag > 0)) mean_diag = 1;
    }
    int gi = push_grid_of(L, 1);
    ldist *b = newdist(L, gi, n, nrhs, u->d.mb, u->d.nb);
    int bi = lua_gettop(L);
    ntk_mat yv = {n, nrhs, y->data};
    double used = 0;
    lntk_progress prog;
    for (int attempt = 0;; attempt++) {
        if ((st = ntk_dmat_scatter(ctx, &yv, &b->d))) return lntk_error(L, st);
        ldist *a = work_matrix(L, overwrite, "solve");
        used = attempt == 0 ? 0 : mean_diag * pow(10.0, -14 + 2 * attempt);
        progress_begin(L, &prog, oi);
        st = ntk_dist_posv(ctx, &a->d, ridge + used, &b->d);
        lntk_progress_end(L, &prog);
        if (!overwrite) a->closed = 1;
        lua_pop(L, 1);
        if (st != NTK_ERR_NUMERIC || !jitter || attempt == 5) break;
    }
    if (st == NTK_ERR_NUMERIC) return lntk_failure(L, st);
    if (st) return lntk_error(L, st);
    lntk_matrix *alpha = agreed_matrix(L, vectorized ? u->samples : n,
                                       vectorized ? u->rps : nrhs, 1);
    ntk_mat v = {n, nrhs, alpha->data};
    if ((st = ntk_dmat_gather(ctx, &b->d, -1, &v))) return lntk_error(L, st);
    lua_remove(L, bi);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, ridge);
    lua_setfield(L, -2, "ridge");
    lua_pushnumber(L, used);
    lua_setfield(L, -2, "jitter");
    return 2;
}

/* D:save_npy(path) -> true, or nil and a message */
static int d_save_npy(lua_State *L)
{
    ldist *u = checkdist(L, 1);
    /* A number would be accepted as a name: almost surely a mistake. */
    luaL_checktype(L, 2, LUA_TSTRING);
    const char *path = lua_tostring(L, 2);
    lntk_progress prog;
    progress_begin(L, &prog, 0);
    ntk_status st = ntk_dist_save_npy(lntk_ctx(L), &u->d, path);
    lntk_progress_end(L, &prog);
    if (st == NTK_ERR_IO) return lntk_failure(L, st);
    if (st) return lntk_error(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int d_release(lua_State *L)
{
    lua_settop(L, 1);
    ldist *u = luaL_checkudata(L, 1, LDIST);
    u->closed = 1;
    return 0;
}

static int d_tostring(lua_State *L)
{
    ldist *u = luaL_checkudata(L, 1, LDIST);
    if (u->closed) {
        lua_pushliteral(L, "[ntk.DistMatrix (closed)]");
        return 1;
    }
    const ntk_grid *g = u->d.grid;
    lua_pushfstring(L, "[ntk.DistMatrix %Ix%I%s, blocks %Ix%I, grid %dx%d, this rank (%d, %d) "
                       "holds %Ix%I%s]",
                    (lua_Integer)u->d.rows, (lua_Integer)u->d.cols,
                    u->d.lower ? " symmetric (lower stored)" : "", (lua_Integer)u->d.mb,
                    (lua_Integer)u->d.nb, g->nprow, g->npcol, g->myrow, g->mycol,
                    (lua_Integer)u->d.lrows, (lua_Integer)u->d.lcols,
                    u->consumed ? ", overwritten" : "");
    return 1;
}

/* ntk.mpi.predict(net, Xtest, Xtrain, alpha [, opts]) */
static int l_predict(lua_State *L)
{
    ensure_mpi(L);
    ntk_net *net = lntk_checknet(L, 1);
    lntk_matrix *xt = lntk_checkinput(L, 2, ntk_net_input_dim(net), "Xtest");
    lntk_matrix *xr = lntk_checkinput(L, 3, ntk_net_input_dim(net), "Xtrain");
    lntk_matrix *alpha = lntk_checkfinite(L, 4, "alpha");
    int oi = lua_isnoneornil(L, 5) ? 0 : 5;
    if (oi) luaL_checktype(L, oi, LUA_TTABLE);
    ntk_kernel_opts o;
    size_t block;
    int p, q;
    kernel_opts(L, oi, &o, &block, &p, &q);
    size_t rps = o.mode == NTK_MODE_FULL ? ntk_net_output_dim(net) : 1;
    int vectorized = 0;
    size_t c = alpha->cols;
    if (alpha->rows == xr->rows * rps) {
        /* (Ntrain r) x c */
    } else if (rps > 1 && alpha->rows == xr->rows && alpha->cols == rps) {
        vectorized = 1;
        c = 1;
    } else {
        return luaL_argerror(L, 4, lua_pushfstring(L, "alpha must be %Ix c (Xtrain's samples x "
                                                      "%I rows)%s, got %Ix%I",
                                                   (lua_Integer)(xr->rows * rps), (lua_Integer)rps,
                                                   rps > 1 ? " or N x m" : "",
                                                   (lua_Integer)alpha->rows,
                                                   (lua_Integer)alpha->cols));
    }
    lntk_matrix *out = agreed_matrix(L, vectorized ? xt->rows : xt->rows * rps,
                                     vectorized ? rps : c, 1);
    ntk_mat vt = lntk_view(xt), vr = lntk_view(xr);
    ntk_mat va = {xr->rows * rps, c, alpha->data}, vo = {xt->rows * rps, c, out->data};
    lntk_progress prog;
    progress_begin(L, &prog, oi);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_net *own = NULL;
    ntk_status st = ntk_net_copy(ctx, net, &own);
    if ((st = ntk_mpi_agree(ctx, MPI_COMM_WORLD, st)) == NTK_OK)
        st = ntk_dist_predict(ctx, MPI_COMM_WORLD, own, &vt, &vr, &va, &o, &vo);
    ntk_net_destroy(ctx, own);
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    return 1;
}

static const luaL_Reg module_fns[] = {
    {"init", l_init},
    {"initialized", l_initialized},
    {"rank", l_rank},
    {"size", l_size},
    {"barrier", l_barrier},
    {"wtime", l_wtime},
    {"processor_name", l_processor_name},
    {"abort", l_abort},
    {"bcast", l_bcast},
    {"gather", l_gather},
    {"allgather", l_allgather},
    {"allreduce", l_allreduce},
    {"grid_shape", l_grid_shape},
    {"ntk", l_ntk},
    {"distribute", l_distribute},
    {"predict", l_predict},
    {"is_distributed", l_is_distributed},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"shape", d_shape},
    {"rows", d_rows},
    {"cols", d_cols},
    {"block", d_block},
    {"grid", d_grid},
    {"local_shape", d_local_shape},
    {"local_matrix", d_local},
    {"descriptor", d_descriptor},
    {"is_symmetric", d_is_symmetric},
    {"samples", d_samples},
    {"gather", d_gather},
    {"allgather", d_allgather},
    {"trace", d_trace},
    {"copy", d_copy},
    {"eigvalsh", d_eigvalsh},
    {"eigh", d_eigh},
    {"solve", d_solve},
    {"save_npy", d_save_npy},
    {"close", d_release},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__tostring", d_tostring},
    {"__gc", d_release},
    {NULL, NULL},
};

void lntk_open_mpi(lua_State *L, int ctx_idx)
{
    lua_newtable(L);
    lntk_setfuncs(L, ctx_idx, module_fns);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "available");

    lntk_newclass(L, ctx_idx, LDIST, "DistMatrix", metamethods, methods);
    lua_setfield(L, -2, "mpi");

    /* net:ntk gains the distributed option. */
    lntk_wrap_ntk(L, ctx_idx, method_dist_ntk);
    lua_pushcfunction(L, fail_job);
    lua_setfield(L, LUA_REGISTRYINDEX, "ntk.mpi.fail");
}
