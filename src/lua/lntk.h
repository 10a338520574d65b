/* Private to the binding: what its translation units share. */
#ifndef LNTK_H
#define LNTK_H

#include <lauxlib.h>
#include <lua.h>

#include "ntk.h"

#define LNTK_MATRIX "ntk.Matrix"
#define LNTK_NET "ntk.Net"

/*
 * A matrix userdata holds its doubles itself, so the garbage collector
 * counts every byte and a loop making big kernels stays bounded.
 */
typedef struct lntk_matrix {
    size_t rows, cols;
    int closed;
    double data[];
} lntk_matrix;

/* Every function of the module has the context userdata as upvalue 1. */
#define LNTK_CTX_UPVALUE lua_upvalueindex(1)
ntk_ctx *lntk_ctx(lua_State *L);

/* Register functions, with the context at ctx_idx as their upvalue 1,
 * into the table on top of the stack. */
void lntk_setfuncs(lua_State *L, int ctx_idx, const luaL_Reg *fns);
/* A class of userdata: metatable tname with the metamethods meta and an
 * __index table of methods, stored as field `name` of the table on top of
 * the stack (where other sections find it). */
void lntk_newclass(lua_State *L, int ctx_idx, const char *tname, const char *name,
                   const luaL_Reg *meta, const luaL_Reg *methods);
/* More methods for the class stored as field `name` of the table on top of
 * the stack by an earlier section. */
void lntk_addmethods(lua_State *L, int ctx_idx, const char *name, const luaL_Reg *methods);

/* Matrices. */
lntk_matrix *lntk_checkmatrix(lua_State *L, int idx);
lntk_matrix *lntk_testmatrix(lua_State *L, int idx);
/* Push a new rows x cols matrix (contents uninitialised unless zero). */
lntk_matrix *lntk_newmatrix(lua_State *L, size_t rows, size_t cols, int zero);
static inline ntk_mat lntk_view(lntk_matrix *m)
{
    ntk_mat v = {m->rows, m->cols, m->data};
    return v;
}
/* Argument idx must be a matrix without NaN or Inf; what names it. */
lntk_matrix *lntk_checkfinite(lua_State *L, int idx, const char *what);
/* A non-negative integer size argument (0 allowed) below a sane bound. */
size_t lntk_checksize(lua_State *L, int idx, const char *what);
/* An optional integer seed argument (absent: 0). */
uint64_t lntk_checkseed(lua_State *L, int idx);
/* Argument idx must be a finite N x n matrix of inputs, one sample per row;
 * what names it. */
lntk_matrix *lntk_checkinput(lua_State *L, int idx, size_t n, const char *what);
/* Arguments (X1 [, X2] [, opts]) from index 2, inputs N x n as for
 * lntk_checkinput; *x2 is NULL without X2. Returns the options table's
 * index (0: none). */
int lntk_kernel_args(lua_State *L, size_t n, lntk_matrix **x1, lntk_matrix **x2);
/* Kernel options (mode, normalize, method, memory, chunk) from the table at
 * idx (0: none) into o, with `known` the keys the caller accepts. Modes are
 * the first nmodes of full, trace, outputs, blocks; modes_msg says which,
 * for the error ("mode must be ..."). */
void lntk_kernel_opts(lua_State *L, int idx, const char *const known[], int nmodes,
                      const char *modes_msg, ntk_kernel_opts *o);

/*
 * Turn a failed status into a Lua error (misuse, out of memory,
 * interruption) carrying the context's message. Never returns.
 */
int lntk_error(lua_State *L, ntk_status st);
/* For expected failures (files, convergence): push nil, message; 2. */
int lntk_failure(lua_State *L, ntk_status st);

/* Option tables: argument idx may be nil or a table; unknown keys are an
 * error naming them. `known` is a NULL-terminated list. */
void lntk_checkoptions(lua_State *L, int idx, const char *const known[]);
/* Field helpers on an options table at idx (absent: default). */
lua_Number lntk_optnumber(lua_State *L, int idx, const char *key, lua_Number def);
lua_Integer lntk_optinteger(lua_State *L, int idx, const char *key, lua_Integer def);
const char *lntk_optstring(lua_State *L, int idx, const char *key, const char *def);
int lntk_optboolean(lua_State *L, int idx, const char *key, int def);

/*
 * Progress around long work: lntk_progress_begin installs the context's
 * hook from the options table at opts_idx (0: none) and must be paired with
 * lntk_progress_end before the function returns or raises.
 */
typedef struct lntk_progress {
    lua_State *L;
    int fn_ref;  /* Lua function given as opts.progress, or LUA_NOREF */
    int err_ref; /* error the Lua function raised, or LUA_NOREF */
    int enabled; /* draw the default bar */
    int drawn;
    double started, last_draw; /* seconds */
    void *hook_space[4];       /* the hook's state, private */
    ntk_progress_fn prev_fn;   /* the hook this call replaced, restored at the end */
    void *prev_ud;
} lntk_progress;
void lntk_progress_begin(lua_State *L, lntk_progress *p, int opts_idx);
void lntk_progress_end(lua_State *L, lntk_progress *p);
/* ntk.clock(): monotonic wall-clock seconds (lprogress.c). */
int lntk_clock(lua_State *L);

/* Networks (lnet.c): argument idx must be an open ntk.Net. */
ntk_net *lntk_checknet(lua_State *L, int idx);
/* Push an empty ntk.Net userdata and return its slot: a network stored
 * there belongs to the userdata (freed by its __gc). Allocate the slot
 * before creating the network, so a Lua memory error cannot leak it. */
ntk_net **lntk_newnet(lua_State *L);
/* Mark the open ntk.Net at idx in use (delta +1) or no longer (-1) around
 * core calls that may run Lua code (progress functions, callbacks):
 * __gc and __close refuse while it is in use. */
void lntk_net_hold(lua_State *L, int idx, int delta);

/* Sections of the module; each adds its functions to the module table on
 * top of the stack and creates its metatables. */
void lntk_open_matrix(lua_State *L, int ctx_idx);
void lntk_open_net(lua_State *L, int ctx_idx);
void lntk_open_linalg(lua_State *L, int ctx_idx); /* eigen, kernel methods */
void lntk_open_io(lua_State *L, int ctx_idx);     /* loaders, persistence */
void lntk_open_train(lua_State *L, int ctx_idx);  /* training, analytic kernels */
void lntk_open_mpi(lua_State *L, int ctx_idx);    /* ntk.mpi (src/mpi/) */
/* Wrap Net:ntk so {distributed = true} calls dist (NULL: no MPI here). */
void lntk_wrap_ntk(lua_State *L, int ctx_idx, lua_CFunction dist);

#endif
