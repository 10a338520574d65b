/*
 * Where the program finds the Lua layer (the files of lua/ntk). This is the one
 * place that knows the layouts; add a candidate here for a new one.
 *
 * The native part, ntk.core, is linked into the program, so only the Lua
 * files are searched, in this order:
 *   1. $NTK_LUA_DIR, when set (unless -E);
 *   2. NTK_INSTALLED_LUA_DIR relative to the executable's directory, or as
 *      is when absolute (an installed tree: bin/ntk and
 *      share/lua/5.4/ntk/init.lua by default);
 *   3. the source tree the program was built from  (running from build/).
 * The first directory holding ntk/init.lua is prepended to package.path,
 * so it wins over LUA_PATH and the system's directories.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "app.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NTK_SOURCE_LUA_DIR
#define NTK_SOURCE_LUA_DIR ""
#endif
#ifndef NTK_INSTALLED_LUA_DIR
#define NTK_INSTALLED_LUA_DIR "../share/lua/5.4"
#endif

static char chosen[PATH_MAX];

static int has_layer(const char *dir)
{
    char file[PATH_MAX];
    if (!dir || !dir[0]) return 0;
    if (snprintf(file, sizeof file, "%s/ntk/init.lua", dir) >= (int)sizeof file) return 0;
    return access(file, R_OK) == 0;
}

/* Directory of the running executable, or "" if the system will not say. */
static void exe_dir(char *out, size_t size)
{
    out[0] = '\0';
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0) return;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    else out[0] = '\0';
}

const char *app_setup_paths(lua_State *L)
{
    char exe[PATH_MAX], installed[PATH_MAX + 32];
    exe_dir(exe, sizeof exe);
    installed[0] = '\0';
    if (NTK_INSTALLED_LUA_DIR[0] == '/')
        snprintf(installed, sizeof installed, "%s", NTK_INSTALLED_LUA_DIR);
    else if (exe[0])
        snprintf(installed, sizeof installed, "%s/%s", exe, NTK_INSTALLED_LUA_DIR);

    lua_getfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    int noenv = lua_toboolean(L, -1);
    lua_pop(L, 1);
    const char *candidates[] = {noenv ? NULL : getenv("NTK_LUA_DIR"), installed,
                                NTK_SOURCE_LUA_DIR};
    const char *dir = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !dir; i++)
        if (has_layer(candidates[i])) dir = candidates[i];
    if (!dir) return NULL;
    /* A canonical path reads better in messages and tracebacks. */
    if (!realpath(dir, chosen)) snprintf(chosen, sizeof chosen, "%s", dir);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", chosen, chosen, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    return chosen;
}
