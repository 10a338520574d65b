/* libFuzzer harness: the IDX reader (raw and gzip) on arbitrary bytes. */
#include <stdlib.h>

#include "ntk.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static ntk_ctx *ctx;
    if (!ctx && ntk_ctx_create(&ctx) != NTK_OK) abort();
    ntk_array_info info;
    if (ntk_idx_info_mem(ctx, data, size, &info) == NTK_OK) {
        size_t count = info.rows * info.cols;
        /* gzip may expand up to ~1032x; the reader's bound, checked. */
        if (count > 1032 * (size + 1)) abort();
        if (count <= ((size_t)1 << 22)) {
            double *buf = malloc((count ? count : 1) * sizeof *buf);
            ntk_mat m = {info.rows, info.cols, buf};
            ntk_status st = ntk_idx_read_mem(ctx, data, size, &m);
            if (st != NTK_OK && st != NTK_ERR_FORMAT) abort();
            if (!info.compressed && st != NTK_OK) abort(); /* raw sizes were exact */
            free(buf);
        }
    }
    if (ntk_ctx_bytes_in_use(ctx) != 0) abort();
    return 0;
}
