/* CSV (RFC 4180) tables of numbers, parsed in one pass over a sliding
 * buffer: time linear in the file, memory the table plus one record. */
#include "io.h"

#include <string.h>

/* Values are kept in fixed blocks, so growing never copies what is read. */
#define BLOCK ((size_t)1 << 16)

struct ntk_csv {
    size_t rows, cols;
    size_t count; /* values stored */
    double **blocks;
    size_t nblocks, blocks_cap;
    char **names; /* cols names, or NULL */
};

void ntk_csv_opts_init(ntk_csv_opts *opts)
{
    opts->delimiter = ',';
    opts->header = NTK_CSV_HEADER_AUTO;
}

size_t ntk_csv_rows(const ntk_csv *csv) { return csv->rows; }
size_t ntk_csv_cols(const ntk_csv *csv) { return csv->cols; }
const char *ntk_csv_name(const ntk_csv *csv, size_t j)
{
    return csv->names && j < csv->cols ? csv->names[j] : NULL;
}

void ntk_csv_destroy(ntk_ctx *ctx, ntk_csv *csv)
{
    if (!csv) return;
    for (size_t b = 0; b < csv->nblocks; b++) ntk__free(ctx, csv->blocks[b]);
    ntk__free(ctx, csv->blocks);
    if (csv->names)
        for (size_t j = 0; j < csv->cols; j++) ntk__free(ctx, csv->names[j]);
    ntk__free(ctx, csv->names);
    ntk__free(ctx, csv);
}

typedef struct span {
    const char *s;
    size_t n;
    int quoted, escaped;
} span;

typedef struct parser {
    ntk_ctx *ctx;
    ntk__in *in;
    ntk__num num;
    ntk_csv *t;
    char delim;
    int header; /* option */
    size_t line;       /* line of the parse position, 1-based */
    size_t first_line; /* line of the first record */
    int have_first;    /* the first record (header or data) is done */
    span *spans;       /* the first record's fields */
    size_t nspans, spans_cap;
} parser;

static int is_blank(const parser *p, char c)
{
    return (c == ' ' || c == '\t') && c != p->delim;
}

static ntk_status push(parser *p, double v)
{
    ntk_csv *t = p->t;
    size_t b = t->count / BLOCK;
    if (b == t->nblocks) {
        if (t->nblocks == t->blocks_cap) {
            size_t cap = t->blocks_cap ? 2 * t->blocks_cap : 16;
            double **nb = ntk__alloc(p->ctx, cap, sizeof *nb);
            if (!nb) return NTK_ERR_NOMEM;
            if (t->nblocks) memcpy(nb, t->blocks, t->nblocks * sizeof *nb);
            ntk__free(p->ctx, t->blocks);
            t->blocks = nb;
            t->blocks_cap = cap;
        }
        t->blocks[t->nblocks] = ntk__alloc(p->ctx, BLOCK, sizeof(double));
        if (!t->blocks[t->nblocks]) return NTK_ERR_NOMEM;
        t->nblocks++;
    }
    t->blocks[b][t->count % BLOCK] = v;
    t->count++;
    return NTK_OK;
}

/* A field's text for a message: at most 40 bytes, control and non-ASCII
 * bytes as \xNN so any file gives a printable, valid UTF-8 message. */
static void quote_text(const span *f, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < f->n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)f->s[i];
        if (i == 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 32 && c < 127) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
    }
    out[o] = '\0';
}

static ntk_status not_number(parser *p, const span *f, size_t line, size_t col)
{
    char text[200];
    quote_text(f, text, sizeof text);
    if (f->n == 0)
        return ntk__fail(p->ctx, NTK_ERR_FORMAT, "'%s', line %zu, column %zu: empty field",
                         p->in->name, line, col);
    return ntk__fail(p->ctx, NTK_ERR_FORMAT, "'%s', line %zu, column %zu: '%s' is not a number",
                     p->in->name, line, col, text);
}

static int field_number(parser *p, const span *f, double *v)
{
    if (f->escaped) return 0;
    return ntk__parse_double(f->s, f->n, v, &p->num);
}

/* The first record: a header (by option, or in auto mode when a field is
 * not a number) or the first data row. */
static ntk_status first_record(parser *p, size_t line)
{
    ntk_csv *t = p->t;
    size_t n = p->nspans;
    int header = p->header == NTK_CSV_HEADER_YES;
    if (p->header == NTK_CSV_HEADER_AUTO) {
        double v;
        for (size_t j = 0; j < n && !header; j++) header = !field_number(p, &p->spans[j], &v);
    }
    t->cols = n;
    if (!header) {
        for (size_t j = 0; j < n; j++) {
            double v;
            if (!field_number(p, &p->spans[j], &v)) return not_number(p, &p->spans[j], line, j + 1);
            ntk_status st = push(p, v);
            if (st) return st;
        }
        t->rows = 1;
        return NTK_OK;
    }
    t->names = ntk__calloc(p->ctx, n, sizeof *t->names);
    if (!t->names) return NTK_ERR_NOMEM;
    for (size_t j = 0; j < n; j++) {
        const span *f = &p->spans[j];
        char *s = ntk__alloc(p->ctx, f->n + 1, 1);
        if (!s) return NTK_ERR_NOMEM;
        size_t o = 0;
        for (size_t i = 0; i < f->n; i++) {
            s[o++] = f->s[i];
            if (f->escaped && f->s[i] == '"') i++; /* "" is one quote */
        }
        s[o] = '\0';
        t->names[j] = s;
    }
    return NTK_OK;
}

enum { REC_DONE, REC_MORE, REC_ERR };

static ntk_status add_span(parser *p, const span *f)
{
    if (p->nspans == p->spans_cap) {
        size_t cap = p->spans_cap ? 2 * p->spans_cap : 64;
        span *ns = ntk__alloc(p->ctx, cap, sizeof *ns);
        if (!ns) return NTK_ERR_NOMEM;
        if (p->nspans) memcpy(ns, p->spans, p->nspans * sizeof *ns);
        ntk__free(p->ctx, p->spans);
        p->spans = ns;
        p->spans_cap = cap;
    }
    p->spans[p->nspans++] = *f;
    return NTK_OK;
}

/*
 * One record from b[*pos..n). REC_MORE when it runs past n and the source
 * has more (nothing is committed then: the caller refills and retries);
 * blank lines are consumed and give REC_DONE with *rec = 0.
 */
static int record(parser *p, const char *b, size_t n, size_t *pos, int eof, int *rec,
                  ntk_status *st)
{
    ntk_csv *t = p->t;
    size_t i = *pos, line = p->line, start_line = p->line;
    size_t count0 = t->count;
    char d = p->delim;
    *rec = 0;
    /* Blank lines are skipped. */
    size_t j = i;
    while (j < n && is_blank(p, b[j])) j++;
    if (j >= n && !eof) return REC_MORE;
    if (j >= n || b[j] == '\n' || b[j] == '\r') {
        if (j < n && b[j] == '\r') {
            if (j + 1 >= n && !eof) return REC_MORE;
            if (j + 1 < n && b[j + 1] == '\n') j++;
        }
        *pos = j < n ? j + 1 : j;
        if (j < n) p->line++;
        return REC_DONE;
    }
    p->nspans = 0;
    size_t field = 0;
    for (;;) {
        size_t fline = line;
        span f = {0, 0, 0, 0};
        field++;
        while (i < n && is_blank(p, b[i])) i++;
        if (i < n && b[i] == '"') {
            size_t k = i + 1;
            f.quoted = 1;
            for (;;) {
                if (k >= n) {
                    if (!eof) goto more;
                    *st = ntk__fail(p->ctx, NTK_ERR_FORMAT,
                                    "'%s', line %zu, column %zu: unterminated quoted field",
                                    p->in->name, fline, field);
                    goto fail;
                }
                if (b[k] == '"') {
                    if (k + 1 >= n && !eof) goto more;
                    if (k + 1 < n && b[k + 1] == '"') {
                        f.escaped = 1;
                        k += 2;
                        continue;
                    }
                    break;
                }
                if (b[k] == '\n') line++;
                k++;
            }
            f.s = b + i + 1;
            f.n = k - i - 1;
            i = k + 1;
            while (i < n && is_blank(p, b[i])) i++;
            if (i >= n && !eof) goto more;
            if (i < n && b[i] != d && b[i] != '\n' && b[i] != '\r') {
                *st = ntk__fail(p->ctx, NTK_ERR_FORMAT,
                                "'%s', line %zu, column %zu: unexpected text after a closing quote",
                                p->in->name, line, field);
                goto fail;
            }
        } else {
            size_t k = i;
            while (k < n && b[k] != d && b[k] != '\n' && b[k] != '\r') k++;
            if (k >= n && !eof) goto more;
            size_t e = k;
            while (e > i && is_blank(p, b[e - 1])) e--;
            f.s = b + i;
            f.n = e - i;
            i = k;
        }
        if (!p->have_first) {
            if ((*st = add_span(p, &f))) goto fail;
        } else {
            if (field > t->cols) {
                *st = ntk__fail(p->ctx, NTK_ERR_FORMAT,
                                "'%s', line %zu, column %zu: more fields than the %zu of line %zu",
                                p->in->name, fline, field, t->cols, p->first_line);
                goto fail;
            }
            double v;
            if (!field_number(p, &f, &v)) {
                *st = not_number(p, &f, fline, field);
                goto fail;
            }
            if ((*st = push(p, v))) goto fail;
        }
        if (i >= n) break; /* end of the data */
        if (b[i] == d) {
            i++;
            continue;
        }
        if (b[i] == '\r') {
            if (i + 1 >= n && !eof) goto more;
            i++;
            if (i < n && b[i] == '\n') i++;
        } else {
            i++;
        }
        line++;
        break;
    }
    if (!p->have_first) {
        p->first_line = start_line;
        if ((*st = first_record(p, start_line))) goto fail;
        p->have_first = 1;
    } else {
        if (field < t->cols) {
            *st = ntk__fail(p->ctx, NTK_ERR_FORMAT,
                            "'%s', line %zu, column %zu: the row ends after %zu fields, line %zu "
                            "has %zu",
                            p->in->name, start_line, field + 1, field, p->first_line, t->cols);
            goto fail;
        }
        t->rows++;
    }
    *pos = i;
    p->line = line;
    *rec = 1;
    return REC_DONE;
more:
    t->count = count0;
    return REC_MORE;
fail:
    return REC_ERR;
}

static ntk_status parse(ntk__in *in, const ntk_csv_opts *opts_in, ntk_csv **out)
{
    ntk_ctx *ctx = in->ctx;
    ntk_csv_opts opts;
    if (opts_in) opts = *opts_in;
    else ntk_csv_opts_init(&opts);
    *out = NULL;
    char d = opts.delimiter;
    if (d == '"' || d == '\n' || d == '\r' || d == '\0')
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "the delimiter must be one character other than a quote or a line break");
    if (opts.header < NTK_CSV_HEADER_AUTO || opts.header > NTK_CSV_HEADER_YES)
        return ntk__fail(ctx, NTK_ERR_INVALID, "header must be auto (-1), no (0) or yes (1)");
    ntk_status st = ntk__in_detect_gz(in);
    if (st) return st;
    parser p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.in = in;
    p.delim = d;
    p.header = opts.header;
    p.line = 1;
    ntk__num_init(&p.num, ctx);
    p.t = ntk__calloc(ctx, 1, sizeof *p.t);
    /* A small file gets a buffer of its size; the buffer grows only for a
     * record longer than itself. */
    size_t cap = NTK_IO_CHUNK, len = 0, pos = 0;
    if (!in->gz && in->raw_size + 64 < cap) cap = (size_t)in->raw_size + 64;
    char *buf = p.t ? ntk__alloc(ctx, cap, 1) : NULL;
    if (!buf) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    int eof = 0, bom_checked = 0;
    double total = (double)in->raw_size;
    if (ntk__progress(ctx, "csv", 0, total)) {
        st = NTK_ERR_INTERRUPTED;
        goto done;
    }
    for (;;) {
        /* Refill: keep the unparsed tail, grow if one record fills the buffer. */
        if (!eof) {
            if (pos > 0) {
                memmove(buf, buf + pos, len - pos);
                len -= pos;
                pos = 0;
            }
            if (len == cap) {
                char *nb = ntk__alloc(ctx, cap, 2);
                if (!nb) {
                    st = NTK_ERR_NOMEM;
                    goto done;
                }
                memcpy(nb, buf, len);
                ntk__free(ctx, buf);
                buf = nb;
                cap *= 2;
            }
            size_t got;
            if ((st = ntk__in_read(in, buf + len, cap - len, &got))) goto done;
            eof = got < cap - len;
            len += got;
            if (!bom_checked && (len >= 3 || eof)) {
                bom_checked = 1;
                if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3;
            }
            if (ntk__progress(ctx, "csv", (double)ntk__in_raw_pos(in), total)) {
                st = NTK_ERR_INTERRUPTED;
                goto done;
            }
        }
        if (!bom_checked) continue;
        int r = REC_DONE, rec;
        while (pos < len && (r = record(&p, buf, len, &pos, eof, &rec, &st)) == REC_DONE) {
        }
        if (r == REC_ERR) goto done;
        if (eof && (pos >= len || r == REC_DONE)) break;
    }
    if (!p.have_first) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s' is empty (no header and no rows)", in->name);
        goto done;
    }
    if (ntk__progress(ctx, "csv", total, total)) st = NTK_ERR_INTERRUPTED;
done:
    ntk__free(ctx, buf);
    ntk__free(ctx, p.spans);
    ntk__num_free(&p.num);
    if (st) {
        ntk_csv_destroy(ctx, p.t);
        return st;
    }
    *out = p.t;
    return NTK_OK;
}

ntk_status ntk_csv_parse(ntk_ctx *ctx, const char *path, const ntk_csv_opts *opts,
                         ntk_csv **out)
{
    if (!path || !out) return ntk__fail(ctx, NTK_ERR_INVALID, "path and out are required");
    ntk__in in;
    ntk_status st = ntk__in_file(ctx, &in, path);
    if (st) return st;
    st = parse(&in, opts, out);
    ntk__in_close(&in);
    return st;
}

ntk_status ntk_csv_parse_mem(ntk_ctx *ctx, const void *buf, size_t len,
                             const ntk_csv_opts *opts, ntk_csv **out)
{
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is required");
    ntk__in in;
    ntk_status st = ntk__in_mem(ctx, &in, buf, len, "<memory>");
    if (st) return st;
    st = parse(&in, opts, out);
    ntk__in_close(&in);
    return st;
}

ntk_status ntk_csv_extract(ntk_ctx *ctx, const ntk_csv *csv, size_t label, ntk_mat *x,
                           ntk_mat *y)
{
    ntk_status st;
    if (!csv) return ntk__fail(ctx, NTK_ERR_INVALID, "csv is NULL");
    int split = label < csv->cols;
    if ((st = ntk__check_mat(ctx, x, "x"))) return st;
    if (split && (st = ntk__check_mat(ctx, y, "y"))) return st;
    size_t xc = csv->cols - (split ? 1 : 0);
    if (x->rows != csv->rows || x->cols != xc)
        return ntk__fail(ctx, NTK_ERR_SHAPE, "x must be %zu x %zu, got %zu x %zu", csv->rows, xc,
                         x->rows, x->cols);
    if (split && (y->rows != csv->rows || y->cols != 1))
        return ntk__fail(ctx, NTK_ERR_SHAPE, "y must be %zu x 1, got %zu x %zu", csv->rows,
                         y->rows, y->cols);
    size_t total = csv->rows * csv->cols;
    ntk__hugepage_hint(x->data, x->rows * x->cols * sizeof(double));
    if (!split) {
        for (size_t b = 0; b * BLOCK < total; b++) {
            size_t k = total - b * BLOCK < BLOCK ? total - b * BLOCK : BLOCK;
            memcpy(x->data + b * BLOCK, csv->blocks[b], k * sizeof(double));
        }
        return NTK_OK;
    }
    size_t col = 0, xi = 0, yi = 0;
    for (size_t v = 0; v < total; v++) {
        double val = csv->blocks[v / BLOCK][v % BLOCK];
        if (col == label) y->data[yi++] = val;
        else x->data[xi++] = val;
        if (++col == csv->cols) col = 0;
    }
    return NTK_OK;
}
