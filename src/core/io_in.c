/* Byte sources and sinks for the loaders, gzip decoding, number parsing
 * and element conversion. */
#define _GNU_SOURCE /* strtod_l: decimal parsing that ignores the locale */
#include "io.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ input */

ntk_status ntk__in_file(ntk_ctx *ctx, ntk__in *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->ctx = ctx;
    in->name = path;
    in->fp = fopen(path, "rb");
    if (!in->fp)
        return ntk__fail(ctx, NTK_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(in->fp), &sb) != 0) {
        int e = errno;
        ntk__in_close(in);
        return ntk__fail(ctx, NTK_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    /* Sizes are validated against the file's length before anything big is
     * allocated, so a source must have one. */
    if (!S_ISREG(sb.st_mode)) {
        ntk__in_close(in);
        return ntk__fail(ctx, NTK_ERR_IO, "'%s' is %s, not a regular file", path,
                         S_ISDIR(sb.st_mode) ? "a directory" : "a special file");
    }
    in->raw_size = (uint64_t)sb.st_size;
    return NTK_OK;
}

ntk_status ntk__in_mem(ntk_ctx *ctx, ntk__in *in, const void *buf, size_t len,
                       const char *name)
{
    memset(in, 0, sizeof *in);
    in->ctx = ctx;
    in->name = name ? name : "<memory>";
    if (!buf && len) return ntk__fail(ctx, NTK_ERR_INVALID, "buffer is NULL");
    in->mem = buf ? buf : (const unsigned char *)"";
    in->mem_len = len;
    in->raw_size = len;
    return NTK_OK;
}

/* Raw (undecoded) bytes. */
static ntk_status raw_read(ntk__in *in, void *dst, size_t n, size_t *got)
{
    *got = 0;
    if (in->fp) {
        size_t k = fread(dst, 1, n, in->fp);
        if (k < n && ferror(in->fp))
            return ntk__fail(in->ctx, NTK_ERR_IO, "error reading '%s': %s", in->name,
                             strerror(errno));
        *got = k;
        return NTK_OK;
    }
    size_t left = in->mem_len - in->mem_pos, k = n < left ? n : left;
    if (k) memcpy(dst, in->mem + in->mem_pos, k);
    in->mem_pos += k;
    *got = k;
    return NTK_OK;
}

/* zlib's state and window come from the context's allocator as well, so a
 * host that caps or counts the engine's memory sees them too. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return ntk__alloc(opaque, items, size);
}

static void z_free(voidpf opaque, voidpf p) { ntk__free(opaque, p); }

ntk_status ntk__in_detect_gz(ntk__in *in)
{
    unsigned char magic[2];
    size_t got = 0;
    ntk_status st = raw_read(in, magic, 2, &got);
    if (st) return st;
    if (in->fp) {
        if (fseek(in->fp, 0, SEEK_SET) != 0)
            return ntk__fail(in->ctx, NTK_ERR_IO, "cannot seek in '%s'", in->name);
    } else {
        in->mem_pos = 0;
    }
    if (got < 2 || magic[0] != 0x1f || magic[1] != 0x8b) return NTK_OK;
    if (in->fp) {
        in->zbuf = ntk__alloc(in->ctx, NTK_IO_CHUNK, 1);
        if (!in->zbuf) return NTK_ERR_NOMEM;
    }
    memset(&in->zs, 0, sizeof in->zs);
    in->zs.zalloc = z_alloc;
    in->zs.zfree = z_free;
    in->zs.opaque = in->ctx;
    if (inflateInit2(&in->zs, 16 + MAX_WBITS) != Z_OK)
        return ntk__fail(in->ctx, NTK_ERR_NOMEM,
                         "out of memory: cannot start gzip decoding of '%s'", in->name);
    in->zs_live = 1;
    in->gz = 1;
    if (!in->fp) {
        /* The whole buffer is the input; zlib counts in uInt. */
        in->zs.next_in = (Bytef *)in->mem;
        in->zs.avail_in = 0;
    }
    return NTK_OK;
}

/* Give inflate more compressed input; false at the end of the source. */
static ntk_status refill(ntk__in *in, int *more)
{
    if (in->fp) {
        size_t got;
        ntk_status st = raw_read(in, in->zbuf, NTK_IO_CHUNK, &got);
        if (st) return st;
        in->zs.next_in = in->zbuf;
        in->zs.avail_in = (uInt)got;
        *more = got > 0;
    } else {
        size_t left = in->mem_len - in->mem_pos;
        size_t k = left < ((size_t)1 << 30) ? left : ((size_t)1 << 30);
        in->zs.next_in = (Bytef *)(in->mem + in->mem_pos);
        in->zs.avail_in = (uInt)k;
        in->mem_pos += k;
        *more = k > 0;
    }
    return NTK_OK;
}

static ntk_status gz_read(ntk__in *in, unsigned char *dst, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n && !in->z_done) {
        if (in->zs.avail_in == 0) {
            int more;
            ntk_status st = refill(in, &more);
            if (st) return st;
            if (!more)
                return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                                 "'%s': the gzip data is truncated (ends after %llu "
                                 "decompressed bytes)",
                                 in->name, (unsigned long long)(in->pos + done));
        }
        size_t want = n - done;
        if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;
        in->zs.next_out = dst + done;
        in->zs.avail_out = (uInt)want;
        int rc = inflate(&in->zs, Z_NO_FLUSH);
        done += want - in->zs.avail_out;
        if (rc == Z_STREAM_END) {
            /* Concatenated members are one stream (as gzip -d sees them). */
            if (in->zs.avail_in == 0) {
                int more;
                ntk_status st = refill(in, &more);
                if (st) return st;
                if (!more) {
                    in->z_done = 1;
                    break;
                }
            }
            if (inflateReset(&in->zs) != Z_OK)
                return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': corrupt gzip data",
                                 in->name);
        } else if (rc == Z_BUF_ERROR) {
            if (in->zs.avail_in != 0 && in->zs.avail_out != 0)
                return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': corrupt gzip data",
                                 in->name);
        } else if (rc == Z_MEM_ERROR) {
            return ntk__fail(in->ctx, NTK_ERR_NOMEM, "out of memory decoding the gzip data of '%s'",
                             in->name);
        } else if (rc != Z_OK) {
            return ntk__fail(in->ctx, NTK_ERR_FORMAT, "'%s': corrupt gzip data (%s)", in->name,
                             in->zs.msg ? in->zs.msg : "inflate failed");
        }
    }
    *got = done;
    return NTK_OK;
}

ntk_status ntk__in_read(ntk__in *in, void *dst, size_t n, size_t *got)
{
    ntk_status st;
    size_t k = 0;
    if (in->gz) st = gz_read(in, dst, n, &k);
    else st = raw_read(in, dst, n, &k);
    in->pos += k;
    *got = k;
    return st;
}

ntk_status ntk__in_exact(ntk__in *in, void *dst, size_t n, const char *what)
{
    size_t got;
    ntk_status st = ntk__in_read(in, dst, n, &got);
    if (st) return st;
    if (got < n)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' is truncated: it ends %llu bytes into %s, which needs %zu",
                         in->name, (unsigned long long)got, what, n);
    return NTK_OK;
}

ntk_status ntk__in_expect_end(ntk__in *in, const char *what)
{
    unsigned char extra[64];
    size_t got;
    ntk_status st = ntk__in_read(in, extra, sizeof extra, &got);
    if (st) return st;
    if (got)
        return ntk__fail(in->ctx, NTK_ERR_FORMAT,
                         "'%s' has data after the end of %s (the header understates "
                         "the size, or the file is corrupt)",
                         in->name, what);
    return NTK_OK;
}

uint64_t ntk__in_raw_pos(const ntk__in *in)
{
    uint64_t raw = in->fp ? (uint64_t)ftell(in->fp) : in->mem_pos;
    if (in->gz) raw -= in->zs.avail_in;
    return raw;
}

void ntk__in_close(ntk__in *in)
{
    if (in->zs_live) inflateEnd(&in->zs);
    in->zs_live = 0;
    if (in->zbuf) ntk__free(in->ctx, in->zbuf);
    in->zbuf = NULL;
    if (in->fp) fclose(in->fp);
    in->fp = NULL;
}

/* ----------------------------------------------------------------- output */

ntk_status ntk__out_open(ntk_ctx *ctx, const char *path, FILE **fp)
{
    *fp = fopen(path, "wb");
    if (!*fp)
        return ntk__fail(ctx, NTK_ERR_IO, "cannot open '%s' for writing: %s", path,
                         strerror(errno));
    return NTK_OK;
}

ntk_status ntk__out_write(ntk_ctx *ctx, FILE *fp, const void *buf, size_t n,
                          const char *path)
{
    if (n && fwrite(buf, 1, n, fp) != n)
        return ntk__fail(ctx, NTK_ERR_IO, "error writing '%s': %s", path, strerror(errno));
    return NTK_OK;
}

ntk_status ntk__out_close(ntk_ctx *ctx, FILE *fp, const char *path)
{
    int bad = ferror(fp);
    int e = errno;
    if (fclose(fp) != 0 || bad)
        return ntk__fail(ctx, NTK_ERR_IO, "error writing '%s': %s", path,
                         strerror(bad ? e : errno));
    return NTK_OK;
}

/* ---------------------------------------------------------------- numbers */

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int word_is(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n != k) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != w[i]) return 0;
    return 1;
}

/* The slow path: glibc's strtod is correctly rounded; the "C" locale makes
 * the decimal point a '.' whatever the host set with setlocale. */
static int parse_slow(const char *s, size_t n, double *out, ntk__num *num)
{
    if (!num->locale) {
        locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c) return 0;
        num->locale = (void *)c;
    }
    char small[128];
    char *buf = small;
    if (n >= sizeof small) {
        buf = ntk__alloc(num->ctx, n + 1, 1);
        if (!buf) return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod_l(buf, &end, (locale_t)num->locale);
    int ok = end == buf + n;
    if (ok) *out = v;
    if (buf != small) ntk__free(num->ctx, buf);
    return ok;
}

void ntk__num_init(ntk__num *num, ntk_ctx *ctx)
{
    num->ctx = ctx;
    num->locale = NULL;
}

void ntk__num_free(ntk__num *num)
{
    if (num->locale) freelocale((locale_t)num->locale);
    num->locale = NULL;
}

int ntk__parse_double(const char *s, size_t n, double *out, ntk__num *num)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return 0;
    if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '.') {
        double v;
        if (word_is(s + i, n - i, "inf") || word_is(s + i, n - i, "infinity")) v = INFINITY;
        else if (word_is(s + i, n - i, "nan")) v = NAN;
        else return 0;
        *out = neg ? -v : v;
        return 1;
    }
    /* Up to 19 significant digits fit a uint64; more go to the slow path. */
    uint64_t mant = 0;
    int digits = 0, any = 0, inexact = 0;
    long exp10 = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        int d = s[i] - '0';
        any = 1;
        if (mant == 0 && d == 0) continue;
        if (digits < 19) {
            mant = mant * 10 + (uint64_t)d;
            digits++;
        } else {
            exp10++;
            inexact |= d != 0;
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            int d = s[i] - '0';
            any = 1;
            if (mant == 0 && d == 0) {
                exp10--;
                continue;
            }
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)d;
                digits++;
                exp10--;
            } else {
                inexact |= d != 0;
            }
        }
    }
    if (!any) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        if (i == n || !(s[i] >= '0' && s[i] <= '9')) return 0;
        long e = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (i != n) return 0;
    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    /* Clinger's fast path: both operands exact, one correctly rounded op. */
    if (!inexact && mant <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
        *out = neg ? -v : v;
        return 1;
    }
    return parse_slow(s, n, out, num);
}

void ntk__format_hex(double x, char *buf)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int neg = (int)(bits >> 63);
    int e = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    char *p = buf;
    if (neg) *p++ = '-';
    if (e == 0 && frac == 0) {
        strcpy(p, "0x0p+0");
        return;
    }
    int lead = e != 0;
    int exp = e ? e - 1023 : -1022;
    *p++ = '0';
    *p++ = 'x';
    *p++ = (char)('0' + lead);
    if (frac) {
        *p++ = '.';
        int nd = 13;
        while ((frac & 0xf) == 0) {
            frac >>= 4;
            nd--;
        }
        for (int k = nd - 1; k >= 0; k--) *p++ = "0123456789abcdef"[(frac >> (4 * k)) & 0xf];
    }
    *p++ = 'p';
    *p++ = exp < 0 ? '-' : '+';
    int a = exp < 0 ? -exp : exp;
    char tmp[8];
    int t = 0;
    do {
        tmp[t++] = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    while (t) *p++ = tmp[--t];
    *p = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int ntk__parse_hex(const char *s, size_t n, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (n - i < 2 || s[i] != '0' || lower((unsigned char)s[i + 1]) != 'x') return 0;
    i += 2;
    uint64_t mant = 0;
    int sig = 0, any = 0;
    long shift = 0;
    for (; i < n && hexval((unsigned char)s[i]) >= 0; i++) {
        any = 1;
        if (mant == 0 && s[i] == '0') continue;
        if (++sig > 14) return 0; /* more bits than a double holds: not ours */
        mant = mant * 16 + (uint64_t)hexval((unsigned char)s[i]);
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && hexval((unsigned char)s[i]) >= 0; i++) {
            any = 1;
            shift -= 4;
            if (mant == 0 && s[i] == '0') continue;
            if (++sig > 14) return 0;
            mant = mant * 16 + (uint64_t)hexval((unsigned char)s[i]);
        }
    }
    if (!any || i == n || lower((unsigned char)s[i]) != 'p') return 0;
    i++;
    int eneg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i == n) return 0;
    long e = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        if (e < 100000) e = e * 10 + (s[i] - '0');
    if (i != n) return 0;
    if (mant >= ((uint64_t)1 << 53)) return 0;
    long total = (eneg ? -e : e) + shift;
    if (total > 2000) total = 2000;
    if (total < -2200) total = -2200;
    double v = ldexp((double)mant, (int)total);
    if (!isfinite(v)) return 0;
    *out = neg ? -v : v;
    return 1;
}

void ntk__hugepage_hint(void *p, size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    /* Filling a fresh buffer of many MB costs one page fault per 4 KB
     * page; transparent huge pages cut that by 512 (numpy asks the same). */
    if (bytes < ((size_t)4 << 20)) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)p + bytes) & ~((uintptr_t)page - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* ------------------------------------------------------------- conversion */

void ntk__swap_bytes(void *p, size_t n, size_t size)
{
    unsigned char *b = p;
    for (size_t k = 0; k < n; k++, b += size)
        for (size_t a = 0, z = size - 1; a < z; a++, z--) {
            unsigned char t = b[a];
            b[a] = b[z];
            b[z] = t;
        }
}

/* One loop per element type so the compiler sees fixed-size loads. */
#define CONVERT(T, SWAP)                                                     \
    do {                                                                     \
        for (size_t k = 0; k < n; k++) {                                     \
            T v;                                                             \
            memcpy(&v, p + k * sizeof(T), sizeof(T));                        \
            if (swap) v = SWAP(v);                                           \
            dst[k] = (double)v;                                              \
        }                                                                    \
    } while (0)

static uint16_t bswap16(uint16_t v) { return (uint16_t)((v >> 8) | (v << 8)); }
static int16_t sbswap16(int16_t v) { return (int16_t)bswap16((uint16_t)v); }
static int32_t sbswap32(int32_t v) { return (int32_t)__builtin_bswap32((uint32_t)v); }
static int64_t sbswap64(int64_t v) { return (int64_t)__builtin_bswap64((uint64_t)v); }
static float fswap(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    u = __builtin_bswap32(u);
    memcpy(&v, &u, 4);
    return v;
}
static double dswap(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    u = __builtin_bswap64(u);
    memcpy(&v, &u, 8);
    return v;
}
#define NOSWAP(v) (v)

void ntk__convert(const void *src, size_t n, ntk__kind kind, size_t size,
                  int big_endian, double *dst)
{
    const unsigned char *p = src;
    int swap = size > 1 && big_endian == ntk__little_endian();
    switch (kind) {
    case NTK__B:
        for (size_t k = 0; k < n; k++) dst[k] = p[k] != 0;
        return;
    case NTK__U:
        if (size == 1) CONVERT(uint8_t, NOSWAP);
        else if (size == 2) CONVERT(uint16_t, bswap16);
        else if (size == 4) CONVERT(uint32_t, __builtin_bswap32);
        else CONVERT(uint64_t, __builtin_bswap64);
        return;
    case NTK__I:
        if (size == 1) CONVERT(int8_t, NOSWAP);
        else if (size == 2) CONVERT(int16_t, sbswap16);
        else if (size == 4) CONVERT(int32_t, sbswap32);
        else CONVERT(int64_t, sbswap64);
        return;
    case NTK__F:
        if (size == 4) CONVERT(float, fswap);
        else CONVERT(double, dswap);
        return;
    }
}
