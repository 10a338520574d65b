/* NumPy .npy files: versions 1 to 3, read into and written from matrices. */
#include "io.h"

#include <stdio.h>
#include <string.h>

/* A header with 32 dimensions is well under a kilobyte; anything past this
 * is a corrupt or hostile length field. */
#define NPY_MAX_HEADER ((size_t)1 << 20)

typedef struct npy_type {
    ntk__kind kind;
    size_t size;
    int big;
} npy_type;

typedef struct npy_hdr {
    ntk_array_info info;
    npy_type type;
} npy_hdr;

/* ---- the header: a Python dict literal ---- */

typedef struct cursor {
    const char *s;
    size_t n, i;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
                           c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes; *start and *len locate its contents. */
static int string_lit(cursor *c, size_t *start, size_t *len)
{
    skip_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return 0;
    char q = c->s[c->i++];
    *start = c->i;
    while (c->i < c->n && c->s[c->i] != q) {
        if (c->s[c->i] == '\\') return 0;
        c->i++;
    }
    if (c->i >= c->n) return 0;
    *len = c->i - *start;
    c->i++;
    return 1;
}

static int word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t k = strlen(w);
    if (c->n - c->i >= k && memcmp(c->s + c->i, w, k) == 0) {
        c->i += k;
        return 1;
    }
    return 0;
}

/* Header text for a message: printable ASCII only, at most cap - 1 bytes. */
static void printable(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++) out[k] = s[k] >= 32 && s[k] < 127 ? s[k] : '?';
    out[k] = '\0';
}

static ntk_status bad(ntk__in *in, const char *what)
{
    return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s' is not a valid .npy file: %s", in->name,
                     what);
}

static ntk_status parse_descr(ntk__in *in, const char *d, size_t len, npy_hdr *h)
{
    if (len == 0 || len >= sizeof h->info.dtype) return bad(in, "unsupported dtype");
    printable(d, len, h->info.dtype, sizeof h->info.dtype);
    size_t i = 0;
    char order = '=';
    if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') order = d[i++];
    if (i >= len) goto unsupported;
    char kind = d[i++];
    size_t size = 0;
    if (i >= len) goto unsupported;
    for (; i < len; i++) {
        if (d[i] < '0' || d[i] > '9' || size > 100) goto unsupported;
        size = size * 10 + (size_t)(d[i] - '0');
    }
    switch (kind) {
    case 'f':
        if (size != 4 && size != 8) goto unsupported;
        h->type.kind = NTK__F;
        break;
    case 'i':
        if (size != 1 && size != 2 && size != 4 && size != 8) goto unsupported;
        h->type.kind = NTK__I;
        break;
    case 'u':
        if (size != 1 && size != 2 && size != 4 && size != 8) goto unsupported;
        h->type.kind = NTK__U;
        break;
    case 'b':
        if (size != 1) goto unsupported;
        h->type.kind = NTK__B;
        break;
    default:
        goto unsupported;
    }
    if (order == '|' && size != 1) goto unsupported;
    h->type.size = size;
    h->type.big = order == '>' || (order == '=' && !ntk__little_endian());
    return NTK_OK;
unsupported:
    return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                     "'%s': unsupported dtype '%s' (supported: f4 f8 i1 i2 i4 i8 u1 u2 u4 "
                     "u8 b1, either byte order)",
                     in->name, h->info.dtype);
}

static ntk_status parse_shape(ntk__in *in, cursor *c, ntk_array_info *info)
{
    if (!eat(c, '(')) return bad(in, "'shape' must be a tuple");
    info->ndim = 0;
    for (;;) {
        skip_ws(c);
        if (eat(c, ')')) break;
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
            return bad(in, "'shape' must be a tuple of non-negative integers");
        size_t v = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
            size_t d = (size_t)(c->s[c->i++] - '0');
            if (v > ((size_t)-1 - d) / 10)
                return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                                 "'%s': a dimension in 'shape' overflows", in->name);
            v = v * 10 + d;
        }
        if (c->i < c->n && c->s[c->i] == 'L') c->i++; /* Python 2 longs */
        if (info->ndim == NTK_MAX_DIMS)
            return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': more than %d dimensions",
                             in->name, NTK_MAX_DIMS);
        info->shape[info->ndim++] = v;
        if (eat(c, ')')) break;
        if (!eat(c, ',')) return bad(in, "'shape' must be a tuple of integers");
    }
    return NTK_OK;
}

static ntk_status parse_dict(ntk__in *in, const char *s, size_t n, npy_hdr *h)
{
    cursor c = {s, n, 0};
    int have_descr = 0, have_order = 0, have_shape = 0;
    ntk_status st;
    if (!eat(&c, '{')) return bad(in, "the header is not a dict");
    for (;;) {
        if (eat(&c, '}')) break;
        size_t ks, kl;
        if (!string_lit(&c, &ks, &kl)) return bad(in, "a header key is not a string");
        if (!eat(&c, ':')) return bad(in, "':' missing after a header key");
        if (kl == 5 && memcmp(s + ks, "descr", 5) == 0) {
            size_t vs, vl;
            if (have_descr++) return bad(in, "'descr' appears twice");
            skip_ws(&c);
            if (c.i < c.n && c.s[c.i] == '[')
                return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                                 "'%s': structured dtypes are not supported", in->name);
            if (!string_lit(&c, &vs, &vl)) return bad(in, "'descr' must be a string");
            if ((st = parse_descr(in, s + vs, vl, h))) return st;
        } else if (kl == 13 && memcmp(s + ks, "fortran_order", 13) == 0) {
            if (have_order++) return bad(in, "'fortran_order' appears twice");
            if (word(&c, "True")) h->info.fortran_order = 1;
            else if (word(&c, "False")) h->info.fortran_order = 0;
            else return bad(in, "'fortran_order' must be True or False");
        } else if (kl == 5 && memcmp(s + ks, "shape", 5) == 0) {
            if (have_shape++) return bad(in, "'shape' appears twice");
            if ((st = parse_shape(in, &c, &h->info))) return st;
        } else {
            char key[41];
            printable(s + ks, kl, key, sizeof key);
            return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': unknown header key '%s'", in->name,
                             key);
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return bad(in, "',' or '}' expected in the header");
    }
    skip_ws(&c);
    for (; c.i < c.n; c.i++)
        if (c.s[c.i] != ' ' && c.s[c.i] != '\0')
            return bad(in, "text after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s': the header lacks %s", in->name,
                         !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    return NTK_OK;
}

/* Read magic, version and header; validate sizes against the source. */
static ntk_status read_header(ntk__in *in, npy_hdr *h)
{
    memset(h, 0, sizeof *h);
    unsigned char pre[12];
    ntk_status st;
    size_t got;
    if ((st = ntk__in_read(in, pre, 8, &got))) return st;
    if (got == 0)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s' is empty, not a .npy file", in->name);
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' is not a .npy file (no \\x93NUMPY magic)", in->name);
    if (got < 8) return bad(in, "truncated before the version");
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s': unsupported .npy format version %d.%d (known: 1.0, 2.0, 3.0)",
                         in->name, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4, hlen = 0;
    if ((st = ntk__in_exact(in, pre + 8, lenbytes, "the header length"))) return st;
    for (size_t k = lenbytes; k > 0; k--) hlen = hlen * 256 + pre[8 + k - 1];
    uint64_t offset = 8 + lenbytes + (uint64_t)hlen;
    if (offset > in->raw_size)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' is truncated: the header claims %zu bytes, the file has %llu",
                         in->name, hlen, (unsigned long long)in->raw_size);
    if (hlen > NPY_MAX_HEADER)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': header of %zu bytes is too long",
                         in->name, hlen);
    char *text = ntk__alloc(in->ctx, hlen + 1, 1);
    if (!text) return NTK_ERR_NOMEM;
    st = ntk__in_exact(in, text, hlen, "the header");
    if (!st) {
        text[hlen] = '\0';
        st = parse_dict(in, text, hlen, h);
    }
    ntk__free(in->ctx, text);
    if (st) return st;

    ntk_array_info *info = &h->info;
    info->version = major;
    info->data_offset = offset;
    /* Every product is checked: a header may claim anything. */
    size_t count = 1, rest = 1;
    for (size_t k = 0; k < info->ndim; k++) {
        if (!ntk__mul(count, info->shape[k], &count) ||
            (k > 0 && !ntk__mul(rest, info->shape[k], &rest)))
            return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                             "'%s': the shape's element count overflows", in->name);
    }
    size_t bytes;
    if (!ntk__mul(count, h->type.size, &bytes))
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': the data size overflows", in->name);
    info->rows = info->ndim == 0 ? 1 : info->shape[0];
    info->cols = info->ndim == 0 ? 1 : info->ndim == 1 ? 1 : rest;
    info->data_bytes = bytes;
    uint64_t have = in->raw_size - offset;
    if (have != (uint64_t)bytes) {
        char shape[64 + 22 * 4];
        int p = snprintf(shape, sizeof shape, "(");
        for (size_t k = 0; k < info->ndim && k < 4; k++)
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%zu", k ? ", " : "",
                          info->shape[k]);
        snprintf(shape + p, sizeof shape - (size_t)p, "%s)",
                 info->ndim > 4 ? ", ..." : info->ndim == 1 ? "," : "");
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' %s: the header says shape %s of %s (%zu bytes of data) but "
                         "%llu bytes follow the header",
                         in->name, have < bytes ? "is truncated" : "has trailing data", shape,
                         info->dtype, bytes, (unsigned long long)have);
    }
    size_t cnt;
    if (ntk_mat_count(NULL, info->rows, info->cols, &cnt))
        return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': %zu x %zu is too large", in->name,
                         info->rows, info->cols);
    return NTK_OK;
}

/* Column (C-order index over axes 1..) of Fortran-order element q of the
 * trailing axes. */
static size_t fortran_col(const ntk_array_info *info, size_t q)
{
    if (info->ndim <= 2) return q;
    size_t idx[NTK_MAX_DIMS];
    for (size_t k = 1; k < info->ndim; k++) {
        idx[k] = q % info->shape[k];
        q /= info->shape[k];
    }
    size_t c = 0;
    for (size_t k = 1; k < info->ndim; k++) c = c * info->shape[k] + idx[k];
    return c;
}

static ntk_status read_data(ntk__in *in, const npy_hdr *h, ntk_mat *out)
{
    ntk_ctx *ctx = in->ctx;
    const ntk_array_info *info = &h->info;
    size_t count = out->rows * out->cols, esize = h->type.size;
    double total = (double)info->data_bytes;
    ntk_status st = NTK_OK;
    if (ntk__progress(ctx, "load", 0, total)) return NTK_ERR_INTERRUPTED;
    ntk__hugepage_hint(out->data, count * sizeof(double));
    int direct = !info->fortran_order && h->type.kind == NTK__F && esize == 8 &&
                 h->type.big == !ntk__little_endian();
    if (direct || count == 0) {
        /* Straight into the caller's buffer: no copy, disk speed. */
        unsigned char *dst = (unsigned char *)out->data;
        size_t bytes = count * 8;
        for (size_t done = 0; done < bytes;) {
            size_t k = bytes - done < NTK_IO_CHUNK ? bytes - done : NTK_IO_CHUNK;
            if ((st = ntk__in_exact(in, dst + done, k, "the data"))) return st;
            done += k;
            if (ntk__progress(ctx, "load", (double)done, total)) return NTK_ERR_INTERRUPTED;
        }
        return NTK_OK;
    }
    size_t per = NTK_IO_CHUNK / 8; /* elements per step */
    unsigned char *raw = ntk__alloc(ctx, per, esize);
    double *tmp = info->fortran_order ? ntk__alloc(ctx, per, sizeof(double)) : NULL;
    if (!raw || (info->fortran_order && !tmp)) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    size_t rows = out->rows, cols = out->cols;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < per ? count - done : per;
        if ((st = ntk__in_exact(in, raw, k * esize, "the data"))) goto done;
        if (!info->fortran_order) {
            ntk__convert(raw, k, h->type.kind, esize, h->type.big, out->data + done);
        } else {
            ntk__convert(raw, k, h->type.kind, esize, h->type.big, tmp);
            for (size_t e = 0; e < k; e++) {
                size_t p = done + e;
                out->data[(p % rows) * cols + fortran_col(info, p / rows)] = tmp[e];
            }
        }
        done += k;
        if (ntk__progress(ctx, "load", (double)done * (double)esize, total)) {
            st = NTK_ERR_INTERRUPTED;
            goto done;
        }
    }
done:
    ntk__free(ctx, raw);
    ntk__free(ctx, tmp);
    return st;
}

static ntk_status check_out(ntk__in *in, const npy_hdr *h, ntk_mat *out)
{
    ntk_status st = ntk__check_mat(in->ctx, out, "out");
    if (st) return st;
    if (out->rows != h->info.rows || out->cols != h->info.cols)
        return ntk__fail(in->ctx, NTK_ERR_SHAPE,
                         "'%s' holds a %zu x %zu matrix, the output is %zu x %zu", in->name,
                         h->info.rows, h->info.cols, out->rows, out->cols);
    return NTK_OK;
}

/* From a source being opened (st: how that went): the header into info,
 * or without info the data into out. Closes the source. */
static ntk_status load(ntk__in *in, ntk_status st, ntk_array_info *info, ntk_mat *out)
{
    if (st) return st;
    npy_hdr h;
    if (!(st = read_header(in, &h))) {
        if (info) *info = h.info;
        else if (!(st = check_out(in, &h, out))) st = read_data(in, &h, out);
    }
    ntk__in_close(in);
    return st;
}

ntk_status ntk_npy_info(ntk_ctx *ctx, const char *path, ntk_array_info *info)
{
    if (!path || !info) return ntk__fail(ctx, NTK_ERR_INVALID, "path and info are required");
    ntk__in in;
    return load(&in, ntk__in_file(ctx, &in, path), info, NULL);
}

ntk_status ntk_npy_read(ntk_ctx *ctx, const char *path, ntk_mat *out)
{
    if (!path) return ntk__fail(ctx, NTK_ERR_INVALID, "path is required");
    /* An impossible output is refused before the header is even read. */
    ntk_status st = ntk__check_mat(ctx, out, "out");
    if (st) return st;
    ntk__in in;
    return load(&in, ntk__in_file(ctx, &in, path), NULL, out);
}

ntk_status ntk_npy_info_mem(ntk_ctx *ctx, const void *buf, size_t len, ntk_array_info *info)
{
    if (!info) return ntk__fail(ctx, NTK_ERR_INVALID, "info is required");
    ntk__in in;
    return load(&in, ntk__in_mem(ctx, &in, buf, len, "<memory>"), info, NULL);
}

ntk_status ntk_npy_read_mem(ntk_ctx *ctx, const void *buf, size_t len, ntk_mat *out)
{
    ntk_status st = ntk__check_mat(ctx, out, "out");
    if (st) return st;
    ntk__in in;
    return load(&in, ntk__in_mem(ctx, &in, buf, len, "<memory>"), NULL, out);
}

/* ---- writing ---- */

ntk_status ntk_npy_write(ntk_ctx *ctx, const char *path, const ntk_mat *m)
{
    ntk_status st;
    if (!path) return ntk__fail(ctx, NTK_ERR_INVALID, "path is required");
    if ((st = ntk__check_mat(ctx, m, "matrix"))) return st;
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }",
                      m->rows, m->cols);
    /* Pad with spaces and a newline so the data starts on a 64-byte
     * boundary, as numpy does; version 2 only if the length needs it. */
    size_t pre = 10, total = pre + (size_t)dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)dl + pad + 1;
    int version = 1;
    if (hlen > 65535) {
        version = 2;
        pre = 12;
        total = pre + (size_t)dl + 1;
        pad = (64 - total % 64) % 64;
        hlen = (size_t)dl + pad + 1;
    }
    unsigned char head[256];
    memcpy(head, "\x93NUMPY", 6);
    head[6] = (unsigned char)version;
    head[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) head[8 + k] = (unsigned char)(hlen >> (8 * k));
    memcpy(head + pre, dict, (size_t)dl);
    memset(head + pre + dl, ' ', pad);
    head[pre + (size_t)dl + pad] = '\n';
    size_t head_bytes = pre + hlen;

    FILE *fp;
    if ((st = ntk__out_open(ctx, path, &fp))) return st;
    size_t count = m->rows * m->cols, bytes = count * 8;
    double *swapped = NULL;
    if (!ntk__little_endian()) {
        swapped = ntk__alloc(ctx, NTK_IO_CHUNK, 1);
        if (!swapped) {
            fclose(fp);
            return NTK_ERR_NOMEM;
        }
    }
    st = ntk__out_write(ctx, fp, head, head_bytes, path);
    if (!st && ntk__progress(ctx, "save", 0, (double)bytes)) st = NTK_ERR_INTERRUPTED;
    /* Streamed from the matrix itself: a kernel of several GB needs no
     * second copy. */
    const unsigned char *src = (const unsigned char *)m->data;
    for (size_t done = 0; !st && done < bytes;) {
        size_t k = bytes - done < NTK_IO_CHUNK ? bytes - done : NTK_IO_CHUNK;
        const void *chunk = src + done;
        if (swapped) {
            memcpy(swapped, chunk, k);
            ntk__swap_bytes(swapped, k / 8, 8);
            chunk = swapped;
        }
        st = ntk__out_write(ctx, fp, chunk, k, path);
        done += k;
        if (!st && ntk__progress(ctx, "save", (double)done, (double)bytes))
            st = NTK_ERR_INTERRUPTED;
    }
    ntk__free(ctx, swapped);
    if (st) {
        fclose(fp);
        return st;
    }
    return ntk__out_close(ctx, fp, path);
}
