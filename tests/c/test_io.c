/* The io section of the core: number parsing against the C library,
 * loaders on memory buffers (valid, hostile and truncated), allocation
 * bounds, memory accounting after errors and interruptions, network files. */
#define _GNU_SOURCE
#include <float.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io.h"
#include "ntk.h"

static ntk_ctx *ctx;

/* An allocator that remembers the largest single request. */
static size_t largest;
static void *tracking_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    if (new_size > largest) largest = new_size;
    return realloc(ptr, new_size);
}

static uint64_t bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

static void test_parse_double(void)
{
    ntk__num num;
    ntk__num_init(&num, ctx);
    static const char *cases[] = {
        "0", "-0", "1", "0.1", "1e23", "9007199254740993", "2.2250738585072011e-308",
        "4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1.7976931348623157e308",
        "1.7976931348623159e308", "1e-400", "123456789012345678901234567890", "0.000000000000000000000001",
        "3.14159265358979323846264338327950288", "-8.019314252534474052e-01", "1e22", "1e-22",
        "9007199254740992e22", "5.", ".5", "+.5e+0", "00000000000000000000001.5", "1E5",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double got = -1, want = strtod(cases[i], NULL);
        CHECK_MSG(ntk__parse_double(cases[i], strlen(cases[i]), &got, &num) && bits(got) == bits(want),
                  "%s: %a vs %a", cases[i], got, want);
    }
    /* Random decimal strings: digits, point, exponent; bit-exact vs strtod. */
    ntk_rng rng;
    ntk_rng_seed(&rng, 42);
    char buf[64];
    int mismatches = 0;
    for (int t = 0; t < 200000; t++) {
        size_t n = 0;
        if (ntk_rng_next(&rng) & 1) buf[n++] = '-';
        int digits = 1 + (int)(ntk_rng_next(&rng) % 25);
        int point = (int)(ntk_rng_next(&rng) % (uint64_t)(digits + 2)) - 1;
        for (int d = 0; d < digits; d++) {
            if (d == point) buf[n++] = '.';
            buf[n++] = (char)('0' + ntk_rng_next(&rng) % 10);
        }
        if (ntk_rng_next(&rng) % 3) {
            int e = (int)(ntk_rng_next(&rng) % 700) - 350;
            n += (size_t)snprintf(buf + n, sizeof buf - n, "e%d", e);
        }
        buf[n] = '\0';
        double got, want = strtod(buf, NULL);
        if (!ntk__parse_double(buf, n, &got, &num) || bits(got) != bits(want)) {
            if (mismatches++ < 5) fprintf(stderr, "mismatch on %s: %a vs %a\n", buf, got, want);
        }
    }
    CHECK(mismatches == 0);
    /* What is not a number. */
    static const char *bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "1 2",
                                "inf1", "nan(1)", "1,5", "--1", " 1", "1 ", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v;
        CHECK_MSG(!ntk__parse_double(bad[i], strlen(bad[i]), &v, &num), "'%s' accepted", bad[i]);
    }
    double v;
    CHECK(ntk__parse_double("-INF", 4, &v, &num) && v == -INFINITY);
    CHECK(ntk__parse_double("NaN", 3, &v, &num) && isnan(v));
    /* A field is a span, not a C string: bytes after n are ignored. */
    CHECK(ntk__parse_double("12x", 2, &v, &num) && v == 12);
    ntk__num_free(&num);
}

static void test_hex(void)
{
    ntk_rng rng;
    ntk_rng_seed(&rng, 7);
    char buf[40];
    double specials[] = {0.0, -0.0, 1.0, 0.1, DBL_MAX, DBL_MIN, 5e-324, -2.5e-310, 1.4142135623730951};
    for (int t = 0; t < 100000 + 9; t++) {
        double x;
        if (t < 9) {
            x = specials[t];
        } else {
            uint64_t u = ntk_rng_next(&rng);
            memcpy(&x, &u, 8);
            if (!isfinite(x)) continue;
        }
        ntk__format_hex(x, buf);
        double back = -1, lib = strtod(buf, NULL);
        CHECK_MSG(ntk__parse_hex(buf, strlen(buf), &back) && bits(back) == bits(x), "%s", buf);
        CHECK_MSG(bits(lib) == bits(x), "strtod disagrees on %s", buf);
        if (check_failures > 20) break;
    }
    ntk__format_hex(1.5, buf);
    CHECK(strcmp(buf, "0x1.8p+0") == 0);
    ntk__format_hex(-0.0, buf);
    CHECK(strcmp(buf, "-0x0p+0") == 0);
    double v;
    CHECK(!ntk__parse_hex("1.5", 3, &v));
    CHECK(!ntk__parse_hex("0x1p99999", 9, &v)); /* not finite */
    CHECK(!ntk__parse_hex("0x1.8", 5, &v));
}

/* A .npy image in memory. */
static size_t make_npy(unsigned char *out, const char *dict, const void *data, size_t bytes)
{
    size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64;
    size_t hlen = dl + pad + 1;
    memcpy(out, "\x93NUMPY\1\0", 8);
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', pad);
    out[10 + dl + pad] = '\n';
    memcpy(out + 10 + hlen, data, bytes);
    return 10 + hlen + bytes;
}

static void test_npy(void)
{
    unsigned char file[1024];
    double vals[6] = {1, 2, 3, 4, 5, 6}, out[6];
    size_t base = ntk_ctx_bytes_in_use(ctx);
    size_t n = make_npy(file, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", vals,
                        sizeof vals);
    ntk_array_info info;
    CHECK_STATUS(ntk_npy_info_mem(ctx, file, n, &info), NTK_OK);
    CHECK(info.rows == 2 && info.cols == 3 && info.fortran_order && info.data_offset == 128);
    ntk_mat m = {2, 3, out};
    CHECK_STATUS(ntk_npy_read_mem(ctx, file, n, &m), NTK_OK);
    /* Column-major 1..6 is rows {1, 3, 5}, {2, 4, 6}. */
    CHECK(out[0] == 1 && out[1] == 3 && out[2] == 5 && out[3] == 2 && out[5] == 6);
    ntk_mat wrong = {3, 2, out};
    CHECK_STATUS(ntk_npy_read_mem(ctx, file, n, &wrong), NTK_ERR_SHAPE);
    /* Every truncation fails with a format error and frees what it took. */
    for (size_t len = 0; len < n; len++)
        CHECK_STATUS(ntk_npy_read_mem(ctx, file, len, &m), NTK_ERR_FORMAT);
    /* Every single-byte corruption of the header either loads or fails
     * cleanly; none crashes (ASan and valgrind watch this). */
    for (size_t k = 0; k < 64; k++) {
        unsigned char copy[1024];
        memcpy(copy, file, n);
        copy[k] ^= 0x5a;
        ntk_status st = ntk_npy_info_mem(ctx, copy, n, &info);
        if (st == NTK_OK && info.rows * info.cols == 6) {
            ntk_mat mm = {info.rows, info.cols, out};
            st = ntk_npy_read_mem(ctx, copy, n, &mm);
            CHECK(st == NTK_OK || st == NTK_ERR_FORMAT);
        } else {
            CHECK(st == NTK_OK || st == NTK_ERR_FORMAT);
        }
    }
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);

    /* Headers that claim vast arrays allocate nothing of that size. */
    ntk_ctx *tc;
    CHECK_STATUS(ntk_ctx_create_with(&tc, tracking_alloc, NULL), NTK_OK);
    largest = 0;
    n = make_npy(file, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
                 vals, sizeof vals);
    CHECK_STATUS(ntk_npy_info_mem(tc, file, n, &info), NTK_ERR_FORMAT);
    n = make_npy(file, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                 vals, sizeof vals);
    CHECK_STATUS(ntk_npy_info_mem(tc, file, n, &info), NTK_ERR_FORMAT);
    CHECK(strstr(ntk_ctx_error(tc), "overflow") != NULL);
    /* A header length field of 4 GB in a 20-byte file. */
    unsigned char v2[20] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{'};
    CHECK_STATUS(ntk_npy_info_mem(tc, v2, sizeof v2, &info), NTK_ERR_FORMAT);
    CHECK_MSG(largest < 4096, "largest allocation %zu", largest);
    ntk_ctx_destroy(tc);

    /* Every dtype converts; big-endian int16 -2 and bool 7 (true). */
    unsigned char be[2] = {0xff, 0xfe};
    n = make_npy(file, "{'descr': '>i2', 'fortran_order': False, 'shape': (1,), }", be, 2);
    ntk_mat one = {1, 1, out};
    CHECK_STATUS(ntk_npy_read_mem(ctx, file, n, &one), NTK_OK);
    CHECK(out[0] == -2);
    unsigned char b = 7;
    n = make_npy(file, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", &b, 1);
    CHECK_STATUS(ntk_npy_read_mem(ctx, file, n, &one), NTK_OK);
    CHECK(out[0] == 1);
    uint64_t big = ((uint64_t)1 << 63) + 1;
    n = make_npy(file, "{'descr': '<u8', 'fortran_order': False, 'shape': (1, 1), }", &big, 8);
    CHECK_STATUS(ntk_npy_read_mem(ctx, file, n, &one), NTK_OK);
    CHECK(out[0] == 9223372036854775808.0);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

static int stop_after_first(void *ud, const char *task, double done, double total)
{
    (void)task;
    (void)total;
    int *calls = ud;
    (void)done;
    return (*calls)++ > 0;
}

static void test_npy_file(void)
{
    char path[] = "/tmp/ntk_test_io_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    size_t base = ntk_ctx_bytes_in_use(ctx);
    /* 1100 x 1000 doubles: several chunks, so progress and interruption
     * happen mid-way. */
    size_t r = 1100, c = 1000;
    double *a = malloc(r * c * sizeof *a), *b = malloc(r * c * sizeof *b);
    ntk_rng rng;
    ntk_rng_seed(&rng, 3);
    ntk_mat A = {r, c, a}, B = {r, c, b};
    ntk_rng_fill_normal(&rng, &A);
    CHECK_STATUS(ntk_npy_write(ctx, path, &A), NTK_OK);
    ntk_array_info info;
    CHECK_STATUS(ntk_npy_info(ctx, path, &info), NTK_OK);
    CHECK(info.rows == r && info.cols == c && strcmp(info.dtype, "<f8") == 0 && info.version == 1);
    CHECK_STATUS(ntk_npy_read(ctx, path, &B), NTK_OK);
    CHECK(memcmp(a, b, r * c * sizeof *a) == 0);
    int calls = 0;
    ntk_ctx_set_progress(ctx, stop_after_first, &calls);
    CHECK_STATUS(ntk_npy_read(ctx, path, &B), NTK_ERR_INTERRUPTED);
    calls = 0;
    CHECK_STATUS(ntk_npy_write(ctx, path, &A), NTK_ERR_INTERRUPTED);
    ntk_ctx_set_progress(ctx, NULL, NULL);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
    CHECK_STATUS(ntk_npy_write(ctx, "/dev/full", &A), NTK_ERR_IO);
    CHECK(strstr(ntk_ctx_error(ctx), "/dev/full") != NULL);
    CHECK_STATUS(ntk_npy_read(ctx, "/nonexistent/x.npy", &B), NTK_ERR_IO);
    CHECK_STATUS(ntk_npy_read(ctx, "/tmp", &B), NTK_ERR_IO);
    remove(path);
    free(a);
    free(b);
}

static void test_idx(void)
{
    /* 4 items of 2 x 3 int16, big-endian, item i holding i*10 + k - 3. */
    unsigned char file[4 + 12 + 48];
    memcpy(file, "\0\0\x0b\3\0\0\0\4\0\0\0\2\0\0\0\3", 16);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 6; k++) {
            int16_t v = (int16_t)(i * 10 + k - 3);
            file[16 + 2 * (6 * i + k)] = (unsigned char)((uint16_t)v >> 8);
            file[16 + 2 * (6 * i + k) + 1] = (unsigned char)(v & 0xff);
        }
    size_t base = ntk_ctx_bytes_in_use(ctx);
    ntk_array_info info;
    CHECK_STATUS(ntk_idx_info_mem(ctx, file, sizeof file, &info), NTK_OK);
    CHECK(info.rows == 4 && info.cols == 6 && info.ndim == 3 && !info.compressed);
    double out[24];
    ntk_mat m = {4, 6, out};
    CHECK_STATUS(ntk_idx_read_mem(ctx, file, sizeof file, &m), NTK_OK);
    CHECK(out[0] == -3 && out[23] == 32);
    for (size_t len = 0; len < sizeof file; len++)
        CHECK_STATUS(ntk_idx_read_mem(ctx, file, len, &m), NTK_ERR_FORMAT);

    /* gzip of the same bytes through zlib, then the subset reader. */
    unsigned char gz[256];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = file;
    zs.avail_in = sizeof file;
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t gzlen = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    CHECK_STATUS(ntk_idx_info_mem(ctx, gz, gzlen, &info), NTK_OK);
    CHECK(info.compressed);
    double out2[24];
    ntk_mat m2 = {4, 6, out2};
    CHECK_STATUS(ntk_idx_read_mem(ctx, gz, gzlen, &m2), NTK_OK);
    CHECK(memcmp(out, out2, sizeof out) == 0);
    for (size_t len = 0; len < gzlen; len++)
        CHECK_STATUS(ntk_idx_read_mem(ctx, gz, len, &m2), NTK_ERR_FORMAT);

    char path[] = "/tmp/ntk_test_idx_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, gz, gzlen) == (ssize_t)gzlen);
    close(fd);
    size_t rows[] = {3, 0, 3, 2};
    double sub[24];
    ntk_mat s = {4, 6, sub};
    CHECK_STATUS(ntk_idx_read_rows(ctx, path, rows, 4, &s), NTK_OK);
    CHECK(memcmp(sub, out + 18, 48) == 0 && memcmp(sub + 6, out, 48) == 0 &&
          memcmp(sub + 12, out + 18, 48) == 0 && memcmp(sub + 18, out + 12, 48) == 0);
    size_t bad_rows[] = {4};
    ntk_mat s1 = {1, 6, sub};
    CHECK_STATUS(ntk_idx_read_rows(ctx, path, bad_rows, 1, &s1), NTK_ERR_INVALID);
    remove(path);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

static void test_csv(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    const char *text = "x,\"y \"\"q\"\"\",label\r\n1,2,0\r\n3.5,-4e1,1\r\n";
    ntk_csv *t;
    CHECK_STATUS(ntk_csv_parse_mem(ctx, text, strlen(text), NULL, &t), NTK_OK);
    CHECK(ntk_csv_rows(t) == 2 && ntk_csv_cols(t) == 3);
    CHECK(strcmp(ntk_csv_name(t, 1), "y \"q\"") == 0);
    double x[4], y[2];
    ntk_mat X = {2, 2, x}, Y = {2, 1, y};
    CHECK_STATUS(ntk_csv_extract(ctx, t, 2, &X, &Y), NTK_OK);
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3.5 && x[3] == -40 && y[0] == 0 && y[1] == 1);
    ntk_mat Xbad = {2, 3, x};
    CHECK_STATUS(ntk_csv_extract(ctx, t, 2, &Xbad, &Y), NTK_ERR_SHAPE);
    ntk_csv_destroy(ctx, t);

    ntk_csv_opts o;
    ntk_csv_opts_init(&o);
    o.delimiter = '"';
    CHECK_STATUS(ntk_csv_parse_mem(ctx, "1", 1, &o, &t), NTK_ERR_INVALID);
    o.delimiter = ',';
    o.header = 5;
    CHECK_STATUS(ntk_csv_parse_mem(ctx, "1", 1, &o, &t), NTK_ERR_INVALID);
    o.header = NTK_CSV_HEADER_NO;
    CHECK_STATUS(ntk_csv_parse_mem(ctx, "1,2\n3,4\n5,x\n", 12, &o, &t), NTK_ERR_FORMAT);
    CHECK_MSG(strstr(ntk_ctx_error(ctx), "line 3, column 2: 'x' is not a number") != NULL, "%s",
              ntk_ctx_error(ctx));
    /* Every truncation of a valid file parses or fails cleanly. */
    const char *doc = "\"a\",\"b\nc\"\n1,\"2\"\n3,4\n";
    for (size_t len = 0; len <= strlen(doc); len++) {
        ntk_status st = ntk_csv_parse_mem(ctx, doc, len, NULL, &t);
        CHECK(st == NTK_OK || st == NTK_ERR_FORMAT);
        if (!st) ntk_csv_destroy(ctx, t);
    }
    /* A table across several value blocks. */
    size_t rows = 70000;
    char *big = malloc(rows * 8);
    size_t n = 0;
    for (size_t i = 0; i < rows; i++) n += (size_t)sprintf(big + n, "%zu,%zu\n", i, i % 7);
    CHECK_STATUS(ntk_csv_parse_mem(ctx, big, n, NULL, &t), NTK_OK);
    double *bx = malloc(rows * sizeof *bx), *by = malloc(rows * sizeof *by);
    ntk_mat BX = {rows, 1, bx}, BY = {rows, 1, by};
    CHECK_STATUS(ntk_csv_extract(ctx, t, 1, &BX, &BY), NTK_OK);
    CHECK(bx[rows - 1] == (double)(rows - 1) && by[rows - 1] == (double)((rows - 1) % 7));
    ntk_csv_destroy(ctx, t);
    int calls = 0;
    ntk_ctx_set_progress(ctx, stop_after_first, &calls);
    CHECK_STATUS(ntk_csv_parse_mem(ctx, big, n, NULL, &t), NTK_ERR_INTERRUPTED);
    ntk_ctx_set_progress(ctx, NULL, NULL);
    free(big);
    free(bx);
    free(by);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

static void test_net_file(void)
{
    size_t base = ntk_ctx_bytes_in_use(ctx);
    size_t sizes[] = {3, 4, 2};
    ntk_act acts[] = {NTK_ACT_ERF};
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = 2;
    spec.sizes = sizes;
    spec.acts = acts;
    spec.param = NTK_PARAM_STANDARD;
    spec.weight_std = 0.3;
    spec.bias_std = 1e-300;
    spec.seed = 9;
    ntk_net *net, *back;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &net), NTK_OK);
    char path[] = "/tmp/ntk_test_net_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_STATUS(ntk_net_save(ctx, net, path), NTK_OK);
    CHECK_STATUS(ntk_net_load(ctx, path, &back), NTK_OK);
    CHECK(ntk_net_depth(back) == 2 && ntk_net_act(back, 1) == NTK_ACT_ERF);
    CHECK(ntk_net_param(back) == NTK_PARAM_STANDARD);
    CHECK(bits(ntk_net_weight_std(back)) == bits(0.3) && bits(ntk_net_bias_std(back)) == bits(1e-300));
    CHECK(memcmp(ntk_net_params(net), ntk_net_params(back), ntk_net_num_params(net) * 8) == 0);
    ntk_net_destroy(ctx, back);
    /* Every truncation and every single-byte corruption fails cleanly. */
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t len = 0; len < n; len++)
        CHECK_STATUS(ntk_net_load_mem(ctx, buf, len, &back), NTK_ERR_FORMAT);
    for (size_t k = 0; k < n; k++) {
        unsigned char copy[4096];
        memcpy(copy, buf, n);
        copy[k] ^= 0x01;
        ntk_status st = ntk_net_load_mem(ctx, copy, n, &back);
        /* Flipping the lowest bit of a padding space makes a '!' that the
         * header refuses; flipping a parameter bit breaks the CRC. */
        CHECK_MSG(st == NTK_ERR_FORMAT || (st == NTK_OK && (ntk_net_destroy(ctx, back), 1)),
                  "byte %zu: status %d", k, (int)st);
    }
    CHECK_STATUS(ntk_net_save(ctx, net, "/dev/full"), NTK_ERR_IO);
    ntk_net_destroy(ctx, net);
    remove(path);
    CHECK(ntk_ctx_bytes_in_use(ctx) == base);
}

static void test_prep(void)
{
    ntk_rng rng;
    ntk_rng_seed(&rng, 1);
    size_t perm[100];
    ntk_rng_permutation(&rng, perm, 100);
    int seen[100] = {0};
    for (int i = 0; i < 100; i++) seen[perm[i]]++;
    int ok = 1;
    for (int i = 0; i < 100; i++) ok &= seen[i] == 1;
    CHECK(ok);
    double x[6] = {1, 10, 2, 10, 6, 10}, mean[2], sd[2], z[6];
    ntk_mat X = {3, 2, x}, M = {1, 2, mean}, S = {1, 2, sd}, Z = {3, 2, z};
    CHECK_STATUS(ntk_col_stats(ctx, &X, &M, &S), NTK_OK);
    CHECK(mean[0] == 3 && mean[1] == 10 && sd[1] == 0);
    CHECK_NEAR(sd[0], sqrt(14.0 / 3), 1e-15);
    CHECK_STATUS(ntk_standardize(ctx, &X, &M, &S, &Z), NTK_OK);
    CHECK_NEAR(z[4], 3 / sqrt(14.0 / 3), 1e-15);
    CHECK(z[1] == 0 && z[5] == 0);
    ntk_mat E = {0, 2, x};
    CHECK_STATUS(ntk_col_stats(ctx, &E, &M, &S), NTK_ERR_SHAPE);
    ntk_mat M3 = {1, 3, mean};
    CHECK_STATUS(ntk_standardize(ctx, &X, &M3, &S, &Z), NTK_ERR_SHAPE);
}

int main(void)
{
    if (ntk_ctx_create(&ctx) != NTK_OK) return 1;
    test_parse_double();
    test_hex();
    test_npy();
    test_npy_file();
    test_idx();
    test_csv();
    test_net_file();
    test_prep();
    ntk_ctx_destroy(ctx);
    return check_report("test_io");
}
