/* The ntk program: what its translation units share. The program, unlike
 * the library, may keep process-wide state: the interrupt flag that the
 * SIGINT handler raises. */
#ifndef NTK_APP_H
#define NTK_APP_H

#include <lauxlib.h>
#include <lua.h>
#include <signal.h>

#define APP_NAME "ntk"

/* Raised by Ctrl-C while Lua code runs; published to the binding under the
 * registry key "ntk.interrupt" so long C work stops at its next progress
 * report, and consumed by whichever notices it first. */
extern volatile sig_atomic_t app_interrupt;

/* Print "ntk: msg" on stderr. */
void app_message(const char *msg);
/* Report a failed status's error object (on the stack top) and pop it. */
int app_report(lua_State *L, int status);
/* Call the function below narg arguments with a traceback handler and
 * Ctrl-C turned into an "interrupted" error. */
int app_docall(lua_State *L, int narg, int nres);

/* Where the Lua layer lives (paths.c): prepend its directory to
 * package.path. Returns the directory used, or NULL if none was found. */
const char *app_setup_paths(lua_State *L);

/* The interactive loop (repl.c). Returns when input ends. */
void app_repl(lua_State *L, int banner);

#endif
