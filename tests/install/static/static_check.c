/* Linked against libntk.a: a forward pass checked by hand. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ntk.h"

int main(void)
{
    ntk_ctx *ctx;
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    size_t sizes[] = {2, 1};
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = 1;
    spec.sizes = sizes;
    ntk_net *net = NULL;
    double theta[] = {1.0, -2.0, 4.0}, x[] = {3.0, 0.5}, y = 0;
    ntk_mat vx = {1, 2, x}, vy = {1, 1, &y};
    int ok = ntk_mlp_create(ctx, &spec, &net) == NTK_OK &&
             ntk_net_set_params(ctx, net, theta, 3) == NTK_OK &&
             ntk_net_forward(ctx, net, &vx, &vy) == NTK_OK;
    /* ntk parameterization: y = (1 / sqrt(2)) (3 - 1) + 0.1 * 4 */
    double want = 2.0 / sqrt(2.0) + 0.4;
    ok = ok && fabs(y - want) < 1e-15 && strcmp(ntk_version(), NTK_VERSION_STRING) == 0;
    printf("static_check: y = %.17g (want %.17g): %s\n", y, want, ok ? "ok" : "FAIL");
    ntk_net_destroy(ctx, net);
    ntk_ctx_destroy(ctx);
    return ok ? 0 : 1;
}
