/* ntk.core section: train (filled in by its issue). */
#include "lntk.h"

void lntk_open_train(lua_State *L, int ctx_idx)
{
    (void)L;
    (void)ctx_idx;
}
