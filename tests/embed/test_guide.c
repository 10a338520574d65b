/*
 * The usage guide at the top of ntk.h, compiled and run: its code lines
 * are extracted at build time (extract_guide.lua) into guide_c() and
 * guide_lua(), which must build with the project's warnings as errors and
 * run without a failure, in a fresh temporary directory (the guide writes
 * K.npy and net.ntk).
 */
#define _GNU_SOURCE /* mkdtemp */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ntk_lua.h"

/* The caller's data the guide speaks of: N samples of 8 inputs, 3 targets. */
enum { N = 6 };
static double xdata[N * 8], ydata[N * 3];

#include "guide_body.c"

int main(void)
{
    for (int i = 0; i < N * 8; i++) xdata[i] = sin(1.0 + i);
    for (int i = 0; i < N * 3; i++) ydata[i] = cos(2.0 + i) / 2;
    char dir[] = "/tmp/ntk_guide_XXXXXX", cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(mkdtemp(dir) != NULL && chdir(dir) == 0);
    CHECK_MSG(guide_c() == 0, "the C part of the guide failed");
    FILE *f = fopen("K.npy", "rb");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_MSG(guide_lua() == 0, "the Lua part of the guide failed");
    remove("K.npy");
    remove("net.ntk");
    CHECK(chdir(cwd) == 0 && rmdir(dir) == 0);
    return check_report("test_guide");
}
