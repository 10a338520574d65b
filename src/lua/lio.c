/* ntk.core section: io (filled in by its issue). */
#include "lntk.h"

void lntk_open_io(lua_State *L, int ctx_idx)
{
    (void)L;
    (void)ctx_idx;
}
