/* libFuzzer harness: the network file reader; what loads must save and
 * load again to the same parameters. */
#include <stdlib.h>
#include <string.h>

#include "ntk.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static ntk_ctx *ctx;
    if (!ctx && ntk_ctx_create(&ctx) != NTK_OK) abort();
    ntk_net *net;
    ntk_status st = ntk_net_load_mem(ctx, data, size, &net);
    if (st == NTK_OK) {
        size_t P = ntk_net_num_params(net);
        if (P * 8 > size) abort();
        double x[4] = {0.5, -1, 2, 0.25};
        size_t n = ntk_net_input_dim(net), m = ntk_net_output_dim(net);
        if (n <= 4 && m <= 1024) {
            double y[1024];
            ntk_mat X = {1, n, x}, Y = {1, m, y};
            if (ntk_net_forward(ctx, net, &X, &Y) != NTK_OK) abort();
        }
        ntk_net_destroy(ctx, net);
    } else if (st != NTK_ERR_FORMAT) {
        abort();
    }
    if (ntk_ctx_bytes_in_use(ctx) != 0) abort();
    return 0;
}
