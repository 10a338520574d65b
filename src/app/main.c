/*
 * ntk: a Lua 5.4 interpreter with the ntk engine built in, in the manner
 * of lua.c. Runs scripts, -e strings and stdin, and without a script on a
 * terminal opens the REPL (repl.c). The global `ntk` is the loaded module.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "app.h"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ntk.h"

int luaopen_ntk_core(lua_State *L);
/* From OpenBLAS; --version reports the build the engine runs on. */
char *openblas_get_config(void);

volatile sig_atomic_t app_interrupt = 0;

/* The state whose running code Ctrl-C interrupts (one per process). */
static lua_State *running_L = NULL;

static const char usage_text[] =
    "usage: " APP_NAME " [options] [script [args]]\n"
    "Run Lua 5.4 with the ntk engine loaded as the global `ntk`.\n"
    "With no script, open the interactive session (on a terminal) or run stdin.\n"
    "\n"
    "  -e stat        run the string stat\n"
    "  -i             enter the interactive session after script and -e\n"
    "  -l mod         require library mod into the global mod\n"
    "  -q             no banner in the interactive session\n"
    "  -v, --version  show the versions of ntk, Lua and OpenBLAS\n"
    "  -E             ignore environment variables (NTK_INIT, NTK_LUA_DIR, LUA_PATH...)\n"
    "  -W             turn Lua warnings on\n"
    "  -h, --help     show this help\n"
    "  --             stop handling options\n"
    "  -              stop handling options and run stdin\n"
    "\n"
    "Environment: NTK_INIT (code, or @file, run first), NTK_HISTORY (history file\n"
    "of the session; empty for none), NTK_PROGRESS (0: no progress bars).\n"
    "In the session, Ctrl-C interrupts a running computation; Ctrl-D quits.\n";

void app_message(const char *msg)
{
    fflush(stdout); /* what was printed before the error comes first */
    fprintf(stderr, "%s: %s\n", APP_NAME, msg);
    fflush(stderr);
}

int app_report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        app_message(msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

/* Turns the pending interrupt into an error at the next Lua step. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (app_interrupt) {
        app_interrupt = 0;
        /* The terminal echoed ^C where the cursor was; start a line. */
        if (isatty(STDERR_FILENO)) fputc('\n', stderr);
        luaL_error(L, "interrupted");
    }
}

static void on_sigint(int sig)
{
    if (app_interrupt) {
        /* The last request is not acknowledged yet (a long BLAS call):
         * the next Ctrl-C ends the process. */
        static const char msg[] = "\n" APP_NAME ": still busy; Ctrl-C again quits\n";
        signal(sig, SIG_DFL);
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        }
        return;
    }
    app_interrupt = 1;
    /* lua_sethook is safe to call from a signal handler. */
    lua_sethook(running_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int app_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    app_interrupt = 0;
    running_L = L;
    sigaction(SIGINT, &sa, &old);
    int status = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &old, NULL);
    app_interrupt = 0;
    if (lua_gethook(L) == stop_hook) lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return status;
}

static int dochunk(lua_State *L, int status)
{
    if (status == LUA_OK) status = app_docall(L, 0, 0);
    return app_report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name)
{
    return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* Options seen on the command line. */
enum {
    HAS_ERROR = 1, /* bad option */
    HAS_I = 2,
    HAS_V = 4,
    HAS_E = 8,
    HAS_UPPER_E = 16,
    HAS_HELP = 32,
    HAS_Q = 64
};

/* Scans argv up to the script; *first is its index (argc if none). */
static int collect_args(char **argv, int *first)
{
    int flags = 0, i;
    for (i = 1; argv[i]; i++) {
        *first = i;
        const char *a = argv[i];
        if (a[0] != '-') return flags; /* the script */
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            flags |= HAS_HELP;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            flags |= HAS_V;
            continue;
        }
        switch (a[1]) {
        case '-':
            if (a[2]) return HAS_ERROR;
            *first = argv[i + 1] ? i + 1 : 0;
            return flags;
        case '\0': return flags; /* '-': stdin is the script */
        case 'E':
        case 'W':
        case 'q':
        case 'i':
        case 'v':
            if (a[2]) return HAS_ERROR;
            flags |= a[1] == 'E'   ? HAS_UPPER_E
                     : a[1] == 'q' ? HAS_Q
                     : a[1] == 'i' ? HAS_I
                     : a[1] == 'v' ? HAS_V
                                   : 0;
            break;
        case 'e': flags |= HAS_E; /* fallthrough */
        case 'l':
            if (a[2] == '\0') {
                i++;
                if (argv[i] == NULL || argv[i][0] == '-') return HAS_ERROR;
            }
            break;
        default: return HAS_ERROR;
        }
    }
    *first = 0;
    return flags;
}

/* Runs -e and -l in order, and turns -W on. */
static int run_args(lua_State *L, char **argv, int n)
{
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '-' || a[1] == '\0') continue;
        char opt = a[1];
        if (opt == 'W') {
            lua_warning(L, "@on", 0);
            continue;
        }
        if (opt != 'e' && opt != 'l') continue;
        const char *extra = a + 2;
        if (*extra == '\0') extra = argv[++i];
        int status;
        if (opt == 'e') {
            status = dostring(L, extra, "=(command line)");
        } else {
            lua_getglobal(L, "require");
            lua_pushstring(L, extra);
            status = app_docall(L, 1, 1);
            if (status == LUA_OK) lua_setglobal(L, extra);
            else app_report(L, status);
        }
        if (status != LUA_OK) return 0;
    }
    return 1;
}

/* arg[0] is the script, arg[1..] its arguments, negative indices what came
 * before it, as lua.c does. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
    if (script == argc) script = 0;
    lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int push_script_args(lua_State *L)
{
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));
    return n;
}

static int run_script(lua_State *L, char **argv)
{
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL;
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = push_script_args(L);
        status = app_docall(L, n, 0);
    }
    return app_report(L, status);
}

static int run_init(lua_State *L)
{
    const char *init = getenv("NTK_INIT");
    if (!init) return LUA_OK;
    if (init[0] == '@') return dochunk(L, luaL_loadfile(L, init + 1));
    return dostring(L, init, "=NTK_INIT");
}

static void print_version(void)
{
    const char *blas = openblas_get_config();
    printf("ntk %s -- empirical Neural Tangent Kernels\n%s\n%s\n", ntk_version(), LUA_COPYRIGHT,
           blas ? blas : "OpenBLAS (version unknown)");
    fflush(stdout);
}

/* Loads the engine into the global `ntk`. */
static int load_engine(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ntk_core);
    lua_setfield(L, -2, "ntk.core");
    lua_pop(L, 1);
    /* The binding stops long work when this flag is raised (lprogress.c). */
    lua_pushlightuserdata(L, (void *)&app_interrupt);
    lua_setfield(L, LUA_REGISTRYINDEX, "ntk.interrupt");
    const char *dir = app_setup_paths(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ntk");
    int status = app_docall(L, 1, 1);
    if (status != LUA_OK) {
        if (!dir)
            app_message("the Lua layer (ntk/init.lua) was not found next to the program, in "
                        "NTK_LUA_DIR or in the source tree it was built from");
        return app_report(L, status);
    }
    lua_setglobal(L, "ntk");
    return LUA_OK;
}

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int script = 0;
    int flags = collect_args(argv, &script);
    if (flags & HAS_ERROR) {
        fprintf(stderr, "%s: unrecognized option or missing argument near '%s'\n%s", APP_NAME,
                argv[script], usage_text);
        return 0;
    }
    if (flags & HAS_HELP) {
        fputs(usage_text, stdout);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (flags & HAS_V) print_version();
    if (flags & HAS_UPPER_E) {
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }
    luaL_openlibs(L);
    create_arg_table(L, argv, argc, script ? script : argc);
    lua_gc(L, LUA_GCGEN, 0, 0);
    if (!(flags & HAS_UPPER_E) && run_init(L) != LUA_OK) return 0;
    if (load_engine(L) != LUA_OK) return 0;
    if (!run_args(L, argv, script ? script : argc)) return 0;
    if (script && run_script(L, argv + script) != LUA_OK) return 0;
    int tty = isatty(STDIN_FILENO);
    if (flags & HAS_I) {
        app_repl(L, tty && !(flags & HAS_Q));
    } else if (!script && !(flags & (HAS_E | HAS_V))) {
        if (tty) app_repl(L, !(flags & HAS_Q));
        else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) return 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        app_message("cannot create the Lua state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    app_report(L, status);
    /* Under MPI, a failing rank ends the job (docs/distributed.md). */
    if (!(ok && status == LUA_OK) &&
        lua_getfield(L, LUA_REGISTRYINDEX, "ntk.mpi.fail") == LUA_TFUNCTION)
        lua_pcall(L, 0, 0, 0);
    lua_close(L);
    return ok && status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
