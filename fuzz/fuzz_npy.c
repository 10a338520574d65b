/* libFuzzer harness: the .npy reader on arbitrary bytes. */
#include <stdlib.h>

#include "ntk.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static ntk_ctx *ctx;
    if (!ctx && ntk_ctx_create(&ctx) != NTK_OK) abort();
    ntk_array_info info;
    if (ntk_npy_info_mem(ctx, data, size, &info) == NTK_OK) {
        /* The header was checked against the size: count <= size here. */
        size_t count = info.rows * info.cols;
        if (count > size) abort();
        double *buf = malloc((count ? count : 1) * sizeof *buf);
        ntk_mat m = {info.rows, info.cols, buf};
        ntk_status st = ntk_npy_read_mem(ctx, data, size, &m);
        if (st != NTK_OK) abort(); /* info accepted it, so must read */
        free(buf);
    }
    if (ntk_ctx_bytes_in_use(ctx) != 0) abort(); /* a leak on some path */
    return 0;
}
