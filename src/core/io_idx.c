/* IDX files (the MNIST format), gzip decoded transparently. */
#include "io.h"

#include <stdlib.h>
#include <string.h>

/* deflate cannot compress better than about 1032:1, so a gzip file of S
 * bytes cannot hold more than this many times S: a header claiming more is
 * refused before anything is allocated. */
#define GZ_MAX_RATIO 1032u

typedef struct idx_hdr {
    ntk_array_info info;
    ntk__kind kind;
    size_t esize;
} idx_hdr;

static ntk_status read_header(ntk__in *in, idx_hdr *h)
{
    memset(h, 0, sizeof *h);
    ntk_status st = ntk__in_detect_gz(in);
    if (st) return st;
    h->info.compressed = in->gz;
    unsigned char m[4];
    size_t got;
    if ((st = ntk__in_read(in, m, 4, &got))) return st;
    if (got == 0)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s' is empty, not an IDX file", in->name);
    if (got < 4 || m[0] != 0 || m[1] != 0)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' is not an IDX file (the magic must start with two zero bytes)",
                         in->name);
    const char *name;
    switch (m[2]) {
    case 0x08: h->kind = NTK__U; h->esize = 1; name = "u8"; break;
    case 0x09: h->kind = NTK__I; h->esize = 1; name = "i8"; break;
    case 0x0B: h->kind = NTK__I; h->esize = 2; name = "i16"; break;
    case 0x0C: h->kind = NTK__I; h->esize = 4; name = "i32"; break;
    case 0x0D: h->kind = NTK__F; h->esize = 4; name = "f32"; break;
    case 0x0E: h->kind = NTK__F; h->esize = 8; name = "f64"; break;
    default:
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s': unknown IDX element type 0x%02X (known: 08 u8, 09 i8, 0B i16, "
                         "0C i32, 0D f32, 0E f64)",
                         in->name, m[2]);
    }
    strcpy(h->info.dtype, name);
    size_t ndim = m[3];
    if (ndim > NTK_MAX_DIMS)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': %zu dimensions (at most %d)",
                         in->name, ndim, NTK_MAX_DIMS);
    unsigned char dims[4 * NTK_MAX_DIMS];
    if ((st = ntk__in_exact(in, dims, 4 * ndim, "the dimensions"))) return st;
    size_t count = 1, rest = 1;
    for (size_t k = 0; k < ndim; k++) {
        size_t d = ((size_t)dims[4 * k] << 24) | ((size_t)dims[4 * k + 1] << 16) |
                   ((size_t)dims[4 * k + 2] << 8) | dims[4 * k + 3];
        h->info.shape[k] = d;
        if (!ntk__mul(count, d, &count) || (k > 0 && !ntk__mul(rest, d, &rest)))
            return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                             "'%s': the dimensions' product overflows", in->name);
    }
    h->info.ndim = ndim;
    size_t bytes;
    if (!ntk__mul(count, h->esize, &bytes))
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': the data size overflows", in->name);
    h->info.data_offset = 4 + 4 * ndim;
    h->info.data_bytes = bytes;
    h->info.rows = ndim == 0 ? 1 : h->info.shape[0];
    h->info.cols = ndim <= 1 ? 1 : rest;
    uint64_t need = h->info.data_offset + (uint64_t)bytes;
    if (in->gz) {
        if (bytes / GZ_MAX_RATIO > in->raw_size)
            return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                             "'%s': the header claims %zu bytes of data, more than a gzip file "
                             "of %llu bytes can hold",
                             in->name, bytes, (unsigned long long)in->raw_size);
    } else if (need != in->raw_size) {
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' %s: the header says %zu items of %zu %s values (%llu bytes "
                         "with the header), the file has %llu bytes",
                         in->name, need > in->raw_size ? "is truncated" : "has trailing data",
                         h->info.rows, h->info.cols, name, (unsigned long long)need,
                         (unsigned long long)in->raw_size);
    }
    size_t cnt;
    if (ntk_mat_count(NULL, h->info.rows, h->info.cols, &cnt))
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': %zu x %zu is too large", in->name,
                         h->info.rows, h->info.cols);
    return NTK_OK;
}

static ntk_status check_out(ntk__in *in, const idx_hdr *h, size_t rows, ntk_mat *out)
{
    ntk_status st = ntk__check_mat(in->ctx, out, "out");
    if (st) return st;
    if (out->rows != rows || out->cols != h->info.cols)
        return ntk__fail(in->ctx, NTK_ERR_SHAPE, "'%s' gives a %zu x %zu matrix, the output is %zu x %zu",
                         in->name, rows, h->info.cols, out->rows, out->cols);
    return NTK_OK;
}

static ntk_status read_all(ntk__in *in, const idx_hdr *h, ntk_mat *out)
{
    ntk_ctx *ctx = in->ctx;
    size_t count = out->rows * out->cols, per = NTK_IO_CHUNK / 8;
    double total = (double)h->info.data_bytes;
    if (ntk__progress(ctx, "load", 0, total)) return NTK_ERR_INTERRUPTED;
    ntk__hugepage_hint(out->data, count * sizeof(double));
    unsigned char *raw = ntk__alloc(ctx, per, h->esize);
    if (!raw) return NTK_ERR_NOMEM;
    ntk_status st = NTK_OK;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < per ? count - done : per;
        if ((st = ntk__in_exact(in, raw, k * h->esize, "the data"))) break;
        ntk__convert(raw, k, h->kind, h->esize, 1, out->data + done);
        done += k;
        if (ntk__progress(ctx, "load", (double)(done * h->esize), total)) {
            st = NTK_ERR_INTERRUPTED;
            break;
        }
    }
    ntk__free(ctx, raw);
    if (!st) st = ntk__in_expect_end(in, "the data");
    return st;
}

typedef struct pick {
    size_t item, row;
} pick;

static int pick_cmp(const void *a, const void *b)
{
    const pick *x = a, *y = b;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static ntk_status read_rows(ntk__in *in, const idx_hdr *h, const size_t *rows, size_t n,
                            ntk_mat *out)
{
    ntk_ctx *ctx = in->ctx;
    size_t cols = h->info.cols, item_bytes = cols * h->esize;
    for (size_t r = 0; r < n; r++)
        if (rows[r] >= h->info.rows)
            return ntk__fail(ctx, NTK_ERR_INVALID, "rows[%zu] = %zu is out of range: '%s' has %zu items",
                             r, rows[r], in->name, h->info.rows);
    if (n == 0 || cols == 0) return NTK_OK;
    pick *order = ntk__alloc(ctx, n, sizeof *order);
    /* Items pass one at a time, through a buffer of about a chunk. */
    size_t batch = item_bytes >= NTK_IO_CHUNK ? 1 : NTK_IO_CHUNK / item_bytes;
    unsigned char *raw = order ? ntk__alloc(ctx, batch, item_bytes) : NULL;
    if (!order || !raw) {
        ntk__free(ctx, order);
        return NTK_ERR_NOMEM;
    }
    for (size_t r = 0; r < n; r++) order[r] = (pick){rows[r], r};
    ntk__hugepage_hint(out->data, n * cols * sizeof(double));
    qsort(order, n, sizeof *order, pick_cmp);
    size_t last = order[n - 1].item + 1, next = 0;
    ntk_status st = NTK_OK;
    double total = (double)last * (double)item_bytes;
    if (ntk__progress(ctx, "load", 0, total)) st = NTK_ERR_INTERRUPTED;
    for (size_t item = 0; !st && item < last;) {
        size_t k = last - item < batch ? last - item : batch;
        if ((st = ntk__in_exact(in, raw, k * item_bytes, "the data"))) break;
        for (; next < n && order[next].item < item + k; next++)
            ntk__convert(raw + (order[next].item - item) * item_bytes, cols, h->kind, h->esize,
                         1, out->data + order[next].row * cols);
        item += k;
        if (ntk__progress(ctx, "load", (double)item * (double)item_bytes, total))
            st = NTK_ERR_INTERRUPTED;
    }
    ntk__free(ctx, raw);
    ntk__free(ctx, order);
    return st;
}

/* From a source being opened (st: how that went): the header into info,
 * or without info the data into out: every row, or with subset the n
 * listed in rows. Closes the source. */
static ntk_status load(ntk__in *in, ntk_status st, ntk_array_info *info, ntk_mat *out,
                       int subset, const size_t *rows, size_t n)
{
    if (st) return st;
    idx_hdr h;
    if (!(st = read_header(in, &h))) {
        if (info) *info = h.info;
        else if (!(st = check_out(in, &h, subset ? n : h.info.rows, out)))
            st = subset ? read_rows(in, &h, rows, n, out) : read_all(in, &h, out);
    }
    ntk__in_close(in);
    return st;
}

ntk_status ntk_idx_info(ntk_ctx *ctx, const char *path, ntk_array_info *info)
{
    if (!path || !info) return ntk__fail(ctx, NTK_ERR_INVALID, "path and info are required");
    ntk__in in;
    return load(&in, ntk__in_file(ctx, &in, path), info, NULL, 0, NULL, 0);
}

ntk_status ntk_idx_read(ntk_ctx *ctx, const char *path, ntk_mat *out)
{
    if (!path) return ntk__fail(ctx, NTK_ERR_INVALID, "path is required");
    ntk__in in;
    return load(&in, ntk__in_file(ctx, &in, path), NULL, out, 0, NULL, 0);
}

ntk_status ntk_idx_read_rows(ntk_ctx *ctx, const char *path, const size_t *rows, size_t n,
                             ntk_mat *out)
{
    if (!path) return ntk__fail(ctx, NTK_ERR_INVALID, "path is required");
    if (n && !rows) return ntk__fail(ctx, NTK_ERR_INVALID, "rows is NULL");
    ntk__in in;
    return load(&in, ntk__in_file(ctx, &in, path), NULL, out, 1, rows, n);
}

ntk_status ntk_idx_info_mem(ntk_ctx *ctx, const void *buf, size_t len, ntk_array_info *info)
{
    if (!info) return ntk__fail(ctx, NTK_ERR_INVALID, "info is required");
    ntk__in in;
    return load(&in, ntk__in_mem(ctx, &in, buf, len, "<memory>"), info, NULL, 0, NULL, 0);
}

ntk_status ntk_idx_read_mem(ntk_ctx *ctx, const void *buf, size_t len, ntk_mat *out)
{
    ntk__in in;
    return load(&in, ntk__in_mem(ctx, &in, buf, len, "<memory>"), NULL, out, 0, NULL, 0);
}
