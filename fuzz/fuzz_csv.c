/* libFuzzer harness: the CSV parser. The first byte picks the options. */
#include <stdlib.h>

#include "ntk.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static ntk_ctx *ctx;
    if (!ctx && ntk_ctx_create(&ctx) != NTK_OK) abort();
    if (size == 0) return 0;
    static const char delims[] = {',', ';', '\t', ' ', '|', ':', 'x', '1'};
    ntk_csv_opts o;
    ntk_csv_opts_init(&o);
    o.delimiter = delims[data[0] & 7];
    o.header = (int)((data[0] >> 3) % 3) - 1;
    ntk_csv *t;
    ntk_status st = ntk_csv_parse_mem(ctx, data + 1, size - 1, &o, &t);
    if (st == NTK_OK) {
        size_t rows = ntk_csv_rows(t), cols = ntk_csv_cols(t);
        if (cols == 0 || rows * cols > size) abort(); /* every value took a byte */
        size_t label = (data[0] >> 5) < cols ? (size_t)(data[0] >> 5) : (size_t)-1;
        size_t xc = label < cols ? cols - 1 : cols;
        double *x = malloc((rows * xc + 1) * sizeof *x), *y = malloc((rows + 1) * sizeof *y);
        ntk_mat X = {rows, xc, x}, Y = {rows, 1, y};
        if (ntk_csv_extract(ctx, t, label, &X, &Y) != NTK_OK) abort();
        for (size_t j = 0; j < cols; j++) (void)ntk_csv_name(t, j);
        free(x);
        free(y);
        ntk_csv_destroy(ctx, t);
    } else if (st != NTK_ERR_FORMAT) {
        abort();
    }
    if (ntk_ctx_bytes_in_use(ctx) != 0) abort();
    return 0;
}
