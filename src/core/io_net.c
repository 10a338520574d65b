/* Networks on disk: a text header that says everything about the
 * architecture, then the parameter vector as little-endian float64. The
 * format is specified in docs/data.md. */
#include "io.h"

#include <math.h>
#include <string.h>

#define NET_MAGIC "ntk-net"
#define NET_VERSION 1
#define NET_MAX_LINE ((size_t)1 << 20)
#define NET_MAX_DEPTH 100000

/* CRC-32 of the parameters as stored (little-endian bytes). */
static uLong params_crc(const double *theta, size_t count)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const size_t per = 4096;
    double tmp[4096];
    for (size_t done = 0; done < count;) {
        size_t k = count - done < per ? count - done : per;
        const double *p = theta + done;
        if (!ntk__little_endian()) {
            memcpy(tmp, p, k * sizeof *tmp);
            ntk__swap_bytes(tmp, k, 8);
            p = tmp;
        }
        crc = crc32(crc, (const Bytef *)p, (uInt)(k * 8));
        done += k;
    }
    return crc;
}

ntk_status ntk_net_save(ntk_ctx *ctx, const ntk_net *net, const char *path)
{
    if (!net || !path) return ntk__fail(ctx, NTK_ERR_INVALID, "net and path are required");
    size_t depth = ntk_net_depth(net), P = ntk_net_num_params(net);
    /* Header text: at most ~12 bytes per width and ~10 per activation name. */
    size_t cap;
    if (!ntk__mul(depth + 1, 24, &cap)) return ntk__fail(ctx, NTK_ERR_OVERFLOW, "depth overflows");
    cap += 1024;
    char *h = ntk__alloc(ctx, cap, 1);
    if (!h) return NTK_ERR_NOMEM;
    size_t n = 0;
    n += (size_t)snprintf(h + n, cap - n, "%s %d\nkind mlp\ndepth %zu\nsizes", NET_MAGIC,
                          NET_VERSION, depth);
    for (size_t l = 0; l <= depth; l++)
        n += (size_t)snprintf(h + n, cap - n, " %zu", ntk_net_width(net, l));
    n += (size_t)snprintf(h + n, cap - n, "\nactivations");
    for (size_t l = 1; l < depth; l++)
        n += (size_t)snprintf(h + n, cap - n, " %s", ntk_act_name(ntk_net_act(net, l)));
    char ws[40], bs[40];
    ntk__format_hex(ntk_net_weight_std(net), ws);
    ntk__format_hex(ntk_net_bias_std(net), bs);
    n += (size_t)snprintf(h + n, cap - n,
                          "\nparameterization %s\nweight_std %s\nbias_std %s\n"
                          "params %zu float64-le crc32 %08lx\nend",
                          ntk_param_name(ntk_net_param(net)), ws, bs, P,
                          (unsigned long)params_crc(ntk_net_params(net), P));
    /* Pad the "end" line so the parameters start on a 64-byte boundary
     * (np.fromfile(..., offset=...) then maps them aligned). */
    size_t pad = (64 - (n + 1) % 64) % 64;
    memset(h + n, ' ', pad);
    n += pad;
    h[n++] = '\n';

    FILE *fp;
    ntk_status st = ntk__out_open(ctx, path, &fp);
    if (st) {
        ntk__free(ctx, h);
        return st;
    }
    st = ntk__out_write(ctx, fp, h, n, path);
    ntk__free(ctx, h);
    const double *theta = ntk_net_params(net);
    double tmp[4096];
    for (size_t done = 0; !st && done < P;) {
        size_t k = P - done < 4096 ? P - done : 4096;
        const double *p = theta + done;
        if (!ntk__little_endian()) {
            memcpy(tmp, p, k * sizeof *tmp);
            ntk__swap_bytes(tmp, k, 8);
            p = tmp;
        }
        st = ntk__out_write(ctx, fp, p, k * 8, path);
        done += k;
    }
    if (st) {
        fclose(fp);
        return st;
    }
    return ntk__out_close(ctx, fp, path);
}

/* ---- loading ---- */

typedef struct net_hdr {
    size_t depth;
    size_t *sizes;
    ntk_act *acts;
    ntk_param param;
    double wstd, bstd;
    size_t params;
    unsigned long crc;
    int seen; /* bit mask of keys read */
} net_hdr;

enum { K_KIND = 1, K_DEPTH = 2, K_SIZES = 4, K_ACTS = 8, K_PARAM = 16, K_WSTD = 32,
       K_BSTD = 64, K_PARAMS = 128, K_ALL = 255 };

/* One header line (without its '\n') into buf, or an error. */
static ntk_status read_line(ntk__in *in, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        char c;
        size_t got;
        ntk_status st = ntk__in_read(in, &c, 1, &got);
        if (st) return st;
        if (!got)
            return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                             "'%s' is truncated: the header ends without an 'end' line", in->name);
        if (c == '\n') break;
        if (n + 1 >= cap)
            return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': a header line is too long", in->name);
        buf[n++] = c;
    }
    buf[n] = '\0';
    *len = n;
    return NTK_OK;
}

/* Next space-separated token of s[*i..n). */
static int token(const char *s, size_t n, size_t *i, size_t *start, size_t *len)
{
    while (*i < n && s[*i] == ' ') (*i)++;
    if (*i >= n) return 0;
    *start = *i;
    while (*i < n && s[*i] != ' ') (*i)++;
    *len = *i - *start;
    return 1;
}

static int parse_size(const char *s, size_t n, size_t *out)
{
    if (n == 0 || n > 19) return 0;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

static int tok_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

static ntk_status bad_line(ntk__in *in, size_t line, const char *what)
{
    return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s', header line %zu: %s", in->name, line, what);
}

static ntk_status parse_line(ntk__in *in, net_hdr *h, const char *s, size_t n, size_t line)
{
    ntk_ctx *ctx = in->ctx;
    size_t i = 0, ks, kl, vs, vl;
    if (!token(s, n, &i, &ks, &kl)) return bad_line(in, line, "empty line");
    const char *key = s + ks;
#define ONCE(bit)                                                               \
    do {                                                                        \
        if (h->seen & (bit)) return bad_line(in, line, "a key appears twice");  \
        h->seen |= (bit);                                                       \
    } while (0)
    if (tok_is(key, kl, "kind")) {
        ONCE(K_KIND);
        if (!token(s, n, &i, &vs, &vl) || !tok_is(s + vs, vl, "mlp"))
            return bad_line(in, line, "unknown kind of network (known: mlp)");
    } else if (tok_is(key, kl, "depth")) {
        ONCE(K_DEPTH);
        if (!token(s, n, &i, &vs, &vl) || !parse_size(s + vs, vl, &h->depth) || h->depth < 1 ||
            h->depth > NET_MAX_DEPTH)
            return bad_line(in, line, "depth must be a positive integer");
        h->sizes = ntk__alloc(ctx, h->depth + 1, sizeof *h->sizes);
        h->acts = ntk__alloc(ctx, h->depth, sizeof *h->acts);
        if (!h->sizes || !h->acts) return NTK_ERR_NOMEM;
    } else if (tok_is(key, kl, "sizes")) {
        ONCE(K_SIZES);
        if (!(h->seen & K_DEPTH)) return bad_line(in, line, "'sizes' before 'depth'");
        for (size_t l = 0; l <= h->depth; l++)
            if (!token(s, n, &i, &vs, &vl) || !parse_size(s + vs, vl, &h->sizes[l]) ||
                h->sizes[l] < 1 || h->sizes[l] > INT32_MAX)
                return bad_line(in, line, "'sizes' needs depth + 1 positive widths");
    } else if (tok_is(key, kl, "activations")) {
        ONCE(K_ACTS);
        if (!(h->seen & K_DEPTH)) return bad_line(in, line, "'activations' before 'depth'");
        for (size_t l = 0; l + 1 < h->depth; l++) {
            char name[32];
            if (!token(s, n, &i, &vs, &vl) || vl >= sizeof name)
                return bad_line(in, line, "'activations' needs depth - 1 names");
            memcpy(name, s + vs, vl);
            name[vl] = '\0';
            if (ntk_act_parse(ctx, name, &h->acts[l]))
                return bad_line(in, line, "unknown activation");
        }
    } else if (tok_is(key, kl, "parameterization")) {
        ONCE(K_PARAM);
        char name[32];
        if (!token(s, n, &i, &vs, &vl) || vl >= sizeof name)
            return bad_line(in, line, "'parameterization' needs a name");
        memcpy(name, s + vs, vl);
        name[vl] = '\0';
        if (ntk_param_parse(ctx, name, &h->param))
            return bad_line(in, line, "unknown parameterization");
    } else if (tok_is(key, kl, "weight_std") || tok_is(key, kl, "bias_std")) {
        int w = key[0] == 'w';
        ONCE(w ? K_WSTD : K_BSTD);
        double v;
        if (!token(s, n, &i, &vs, &vl) || !ntk__parse_hex(s + vs, vl, &v) || !(v >= 0))
            return bad_line(in, line, "a std must be a non-negative hex float");
        if (w) h->wstd = v;
        else h->bstd = v;
    } else if (tok_is(key, kl, "params")) {
        ONCE(K_PARAMS);
        size_t cs, cl;
        if (!token(s, n, &i, &vs, &vl) || !parse_size(s + vs, vl, &h->params))
            return bad_line(in, line, "'params' needs a count");
        if (!token(s, n, &i, &vs, &vl) || !tok_is(s + vs, vl, "float64-le"))
            return bad_line(in, line, "unknown parameter encoding (known: float64-le)");
        if (!token(s, n, &i, &vs, &vl) || !tok_is(s + vs, vl, "crc32") ||
            !token(s, n, &i, &cs, &cl) || cl != 8)
            return bad_line(in, line, "'params' needs 'crc32' and 8 hex digits");
        unsigned long crc = 0;
        for (size_t k = 0; k < 8; k++) {
            char c = s[cs + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return bad_line(in, line, "bad crc32 digits");
            crc = crc * 16 + (unsigned long)d;
        }
        h->crc = crc;
    } else {
        return bad_line(in, line, "unknown key");
    }
#undef ONCE
    if (token(s, n, &i, &vs, &vl)) return bad_line(in, line, "unexpected text at the end");
    return NTK_OK;
}

static ntk_status load(ntk__in *in, ntk_net **out)
{
    ntk_ctx *ctx = in->ctx;
    *out = NULL;
    net_hdr h;
    memset(&h, 0, sizeof h);
    char *line = NULL;
    double *theta = NULL;
    ntk_net *net = NULL;
    ntk_status st;
    size_t len, cap = in->raw_size < NET_MAX_LINE ? (size_t)in->raw_size + 1 : NET_MAX_LINE;
    line = ntk__alloc(ctx, cap, 1);
    if (!line) return NTK_ERR_NOMEM;
    /* First line: magic and version. */
    if ((st = read_line(in, line, cap, &len))) {
        if (st == NTK_ERR_FORMAT)
            st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s' is not an ntk network file%s", in->name,
                           in->raw_size == 0 ? " (it is empty)" : "");
        goto done;
    }
    if (len < 8 || memcmp(line, NET_MAGIC " ", 8) != 0) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s' is not an ntk network file", in->name);
        goto done;
    }
    size_t version;
    if (!parse_size(line + 8, len - 8, &version) || version != NET_VERSION) {
        char shown[24];
        size_t k = 0;
        for (; k + 8 < len && k + 1 < sizeof shown; k++)
            shown[k] = line[8 + k] >= 32 && line[8 + k] < 127 ? line[8 + k] : '?';
        shown[k] = '\0';
        st = ntk__fail(ctx, NTK_ERR_FORMAT,
                       "'%s': unsupported network file version '%s' (this build reads %d)",
                       in->name, shown, NET_VERSION);
        goto done;
    }
    for (size_t ln = 2;; ln++) {
        if ((st = read_line(in, line, cap, &len))) goto done;
        while (len > 0 && line[len - 1] == ' ') len--;
        if (len == 3 && memcmp(line, "end", 3) == 0) break;
        if ((st = parse_line(in, &h, line, len, ln))) goto done;
    }
    if (h.seen != K_ALL) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s': the header lacks a key (%s)", in->name,
                       !(h.seen & K_KIND) ? "kind" : !(h.seen & K_DEPTH) ? "depth"
                       : !(h.seen & K_SIZES) ? "sizes" : !(h.seen & K_ACTS) ? "activations"
                       : !(h.seen & K_PARAM) ? "parameterization" : !(h.seen & K_WSTD) ? "weight_std"
                       : !(h.seen & K_BSTD) ? "bias_std" : "params");
        goto done;
    }
    /* The parameter count follows from the sizes; check it and the file's
     * length before the network is allocated. */
    size_t P = 0;
    for (size_t l = 0; l < h.depth; l++) {
        size_t w;
        if (!ntk__mul(h.sizes[l] + 1, h.sizes[l + 1], &w) || P + w < P) {
            st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s': the parameter count overflows", in->name);
            goto done;
        }
        P += w;
    }
    if (P != h.params) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT,
                       "'%s': 'params' says %zu but the sizes give %zu parameters", in->name,
                       h.params, P);
        goto done;
    }
    uint64_t have = in->raw_size - ntk__in_raw_pos(in);
    if (have != (uint64_t)P * 8) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s' %s: %zu parameters need %llu bytes, %llu follow the header",
                       in->name, have < (uint64_t)P * 8 ? "is truncated" : "has trailing data", P,
                       (unsigned long long)P * 8, (unsigned long long)have);
        goto done;
    }
    theta = ntk__alloc(ctx, P ? P : 1, sizeof *theta);
    if (!theta) {
        st = NTK_ERR_NOMEM;
        goto done;
    }
    if ((st = ntk__in_exact(in, theta, P * 8, "the parameters"))) goto done;
    if (!ntk__little_endian()) ntk__swap_bytes(theta, P, 8);
    if (params_crc(theta, P) != h.crc) {
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s': the parameters do not match their CRC-32 (the file is corrupt)",
                       in->name);
        goto done;
    }
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = h.depth;
    spec.sizes = h.sizes;
    spec.acts = h.acts;
    spec.param = h.param;
    spec.weight_std = h.wstd;
    spec.bias_std = h.bstd;
    if ((st = ntk_mlp_create(ctx, &spec, &net))) goto done;
    if ((st = ntk_net_set_params(ctx, net, theta, P))) {
        char msg[NTK_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", ntk_ctx_error(ctx));
        st = ntk__fail(ctx, NTK_ERR_FORMAT, "'%s': %s", in->name, msg);
        goto done;
    }
    *out = net;
    net = NULL;
done:
    ntk_net_destroy(ctx, net);
    ntk__free(ctx, theta);
    ntk__free(ctx, line);
    ntk__free(ctx, h.sizes);
    ntk__free(ctx, h.acts);
    return st;
}

ntk_status ntk_net_load(ntk_ctx *ctx, const char *path, ntk_net **out)
{
    if (!path || !out) return ntk__fail(ctx, NTK_ERR_INVALID, "path and out are required");
    ntk__in in;
    ntk_status st = ntk__in_file(ctx, &in, path);
    if (st) return st;
    st = load(&in, out);
    ntk__in_close(&in);
    return st;
}

ntk_status ntk_net_load_mem(ntk_ctx *ctx, const void *buf, size_t len, ntk_net **out)
{
    if (!out) return ntk__fail(ctx, NTK_ERR_INVALID, "out is required");
    ntk__in in;
    ntk_status st = ntk__in_mem(ctx, &in, buf, len, "<memory>");
    if (st) return st;
    st = load(&in, out);
    ntk__in_close(&in);
    return st;
}
