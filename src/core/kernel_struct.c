/* Structured (per-layer factorised) NTK: not yet implemented. */
#include "kernel.h"

#include <string.h>

void ntk__plan_structured(const ntk_net *net, size_t n1, size_t n2, bool sym,
                          ntk_mode mode, size_t memory, size_t chunk,
                          ntk_plan *plan)
{
    (void)net; (void)n1; (void)n2; (void)sym; (void)mode; (void)memory; (void)chunk;
    memset(plan, 0, sizeof *plan);
    plan->method = NTK_METHOD_STRUCTURED;
    plan->flops = 1e300;
    plan->memory = (size_t)-1;
}

ntk_status ntk__ntk_structured(ntk_ctx *ctx, const ntk_kreq *rq)
{
    (void)rq;
    return ntk__fail(ctx, NTK_ERR_UNSUPPORTED, "structured method not available yet");
}
