/*
 * Allocation failure, size overflow and interruption across the C API.
 *
 * Every entry point runs under an allocator that fails at the k-th request
 * (only that one, or that one and every later one), for k = 0, 1, ... until
 * a run sees no failure. Each run must return NTK_ERR_NOMEM with an "out of
 * memory" message, or what the call returns without failures; it must leave
 * no block behind; and the context must give the reference answer, bit for
 * bit, right afterwards. Sizes that overflow must be refused before the
 * allocator is called at all, and work cancelled at any progress report
 * must free everything it held.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "check.h"
#include "ntk.h"

/* ---- an allocator that fails on demand --------------------------------- */

typedef struct inject {
    long budget;   /* requests left before failing; < 0: never fail */
    int sticky;    /* keep failing once started */
    long injected; /* failures so far */
    long requests; /* allocation requests (new_size > 0) */
    long live;     /* blocks held */
} inject;

static void *inject_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    inject *in = ud;
    (void)old_size;
    if (new_size == 0) {
        if (ptr) in->live--;
        free(ptr);
        return NULL;
    }
    in->requests++;
    if (in->budget == 0) {
        in->injected++;
        if (!in->sticky) in->budget = -1;
        return NULL;
    }
    if (in->budget > 0) in->budget--;
    void *p = realloc(ptr, new_size);
    if (p && !ptr) in->live++;
    return p;
}

static inject inj = {-1, 0, 0, 0, 0};
static int verbose; /* NTK_TEST_VERBOSE=1: each case's allocation and report counts */
static ntk_ctx *ctx;

/* ---- fixtures, made without failures ----------------------------------- */

enum { N1 = 5, N2 = 3, IN = 3, OUT = 2 };
static ntk_net *net;      /* 3 -> 6 (tanh) -> 4 (erf) -> 2 */
static double x1d[N1 * IN], x2d[N2 * IN];
static ntk_mat x1 = {N1, IN, x1d}, x2 = {N2, IN, x2d};

/* What a case produced, compared bit for bit with its reference. */
#define OUT_MAX 8192
static double out[OUT_MAX];
static size_t out_n;

typedef ntk_status (*case_fn)(void);

static ntk_status make_net(uint64_t seed, ntk_net **n)
{
    size_t sizes[] = {IN, 6, 4, OUT};
    ntk_act acts[] = {NTK_ACT_TANH, NTK_ACT_ERF};
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = 3;
    spec.sizes = sizes;
    spec.acts = acts;
    spec.seed = seed;
    ntk_status st = ntk_mlp_create(ctx, &spec, n);
    if (st == NTK_OK) {
        out_n = ntk_net_num_params(*n);
        memcpy(out, ntk_net_params(*n), out_n * sizeof(double));
    }
    return st;
}

/* ---- the cases ---------------------------------------------------------- */

static ntk_status c_mlp_create(void)
{
    ntk_net *n = NULL;
    ntk_status st = make_net(11, &n);
    ntk_net_destroy(ctx, n);
    return st;
}

static ntk_status c_net_copy(void)
{
    ntk_net *c = NULL;
    ntk_status st = ntk_net_copy(ctx, net, &c);
    if (st) return st;
    out_n = ntk_net_num_params(c);
    memcpy(out, ntk_net_params(c), out_n * sizeof(double));
    ntk_net_destroy(ctx, c);
    return NTK_OK;
}

static ntk_status c_set_params(void)
{
    size_t P = ntk_net_num_params(net);
    double theta[256];
    memcpy(theta, ntk_net_params(net), P * sizeof(double));
    out_n = 0;
    return ntk_net_set_params(ctx, net, theta, P);
}

static ntk_status c_layers(void)
{
    double w[24], b[6];
    ntk_mat vw = {6, IN, w}, vb = {6, 1, b};
    ntk_status st = ntk_net_get_layer(ctx, net, 1, &vw, &vb);
    if (st) return st;
    if ((st = ntk_net_set_layer(ctx, net, 1, &vw, &vb))) return st;
    memcpy(out, w, sizeof w);
    memcpy(out + 18, b, sizeof b);
    out_n = 24;
    return NTK_OK;
}

static ntk_status c_forward(void)
{
    ntk_mat y = {N1, OUT, out};
    out_n = N1 * OUT;
    return ntk_net_forward(ctx, net, &x1, &y);
}

static ntk_status c_forward_empty(void)
{
    ntk_mat x = {0, IN, x1d}, y = {0, OUT, out};
    out_n = 0;
    return ntk_net_forward(ctx, net, &x, &y);
}

static ntk_status c_jacobian(void)
{
    size_t P = ntk_net_num_params(net);
    ntk_mat j = {N1 * OUT, P, out};
    out_n = N1 * OUT * P;
    return ntk_net_jacobian(ctx, net, &x1, &j);
}

/* Kernels: every mode, symmetric and cross, one chunk or several. */
static ntk_status kernel(ntk_mode mode, ntk_method method, int cross, size_t chunk,
                         int mean)
{
    ntk_kernel_opts o;
    ntk_kernel_opts_init(&o);
    o.mode = mode;
    o.method = method;
    o.chunk = chunk;
    o.normalize_mean = mean;
    size_t rows, cols, count;
    ntk_status st = ntk_kernel_shape(ctx, net, N1, cross ? N2 : 0, &o, &rows, &cols, &count);
    if (st) return st;
    ntk_mat k[OUT];
    for (size_t a = 0; a < count; a++) k[a] = (ntk_mat){rows, cols, out + a * rows * cols};
    out_n = count * rows * cols;
    return ntk_net_ntk(ctx, net, &x1, cross ? &x2 : NULL, &o, k);
}

static ntk_status c_ntk_full(void) { return kernel(NTK_MODE_FULL, NTK_METHOD_JACOBIAN, 0, 0, 0); }
static ntk_status c_ntk_full_chunks(void) { return kernel(NTK_MODE_FULL, NTK_METHOD_JACOBIAN, 0, 2, 0); }
static ntk_status c_ntk_full_cross(void) { return kernel(NTK_MODE_FULL, NTK_METHOD_JACOBIAN, 1, 2, 0); }
static ntk_status c_ntk_trace(void) { return kernel(NTK_MODE_TRACE, NTK_METHOD_JACOBIAN, 0, 2, 1); }
static ntk_status c_ntk_trace_cross(void) { return kernel(NTK_MODE_TRACE, NTK_METHOD_JACOBIAN, 1, 0, 0); }
static ntk_status c_ntk_outputs(void) { return kernel(NTK_MODE_OUTPUTS, NTK_METHOD_JACOBIAN, 0, 2, 0); }
static ntk_status c_ntk_outputs_cross(void) { return kernel(NTK_MODE_OUTPUTS, NTK_METHOD_JACOBIAN, 1, 1, 0); }
static ntk_status c_ntk_blocks(void) { return kernel(NTK_MODE_BLOCKS, NTK_METHOD_JACOBIAN, 0, 2, 0); }
static ntk_status c_ntk_auto(void) { return kernel(NTK_MODE_FULL, NTK_METHOD_AUTO, 1, 0, 0); }
static ntk_status c_ntk_structured(void) { return kernel(NTK_MODE_FULL, NTK_METHOD_STRUCTURED, 0, 0, 0); }
static ntk_status c_ntk_structured_trace(void) { return kernel(NTK_MODE_TRACE, NTK_METHOD_STRUCTURED, 1, 2, 0); }

static ntk_status c_ntk_plan(void)
{
    ntk_plan p;
    ntk_status st = ntk_net_ntk_plan(ctx, net, N1, N2, NULL, &p);
    out[0] = p.flops;
    out[1] = (double)p.memory;
    out_n = 2;
    return st;
}

static ntk_status c_gemm(void)
{
    ntk_mat c = {IN, IN, out};
    out_n = IN * IN;
    return ntk_mat_gemm(ctx, 1, 0, 1.0, &x1, &x1, 0.0, &c);
}

static ntk_status c_parse(void)
{
    ntk_act a;
    ntk_param p;
    ntk_status st = ntk_act_parse(ctx, "gelu", &a);
    if (!st) st = ntk_param_parse(ctx, "standard", &p);
    if (!st && ntk_act_parse(ctx, "swish", &a) != NTK_ERR_INVALID) st = NTK_ERR_UNSUPPORTED;
    out[0] = a;
    out[1] = p;
    out_n = 2;
    return st;
}

static ntk_status c_threads(void)
{
    ntk_status st = ntk_ctx_set_threads(ctx, 1);
    out[0] = ntk_ctx_threads(ctx);
    out_n = 1;
    if (!st) st = ntk_ctx_set_threads(ctx, 2);
    return st;
}

/* ---- linalg section (issue 4): eigen routines, spectra, kernel methods --- */

enum { NS = 30 };
static double sym_d[NS * NS]; /* symmetric, a decaying spectrum */
static double low_d[10 * 10]; /* positive semi-definite of rank 3 */
static double targ_d[10 * 2];

static void linalg_fixtures(void)
{
    for (size_t i = 0; i < NS; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 1.0 / (1.0 + (double)(i + j)) + (i == j ? 1.0 / (1.0 + (double)i) : 0);
            sym_d[i * NS + j] = sym_d[j * NS + i] = v;
        }
    double g[10 * 3];
    for (size_t i = 0; i < 30; i++) g[i] = (double)((i * 7) % 5) - 2.0;
    for (size_t i = 0; i < 10; i++)
        for (size_t j = 0; j < 10; j++) {
            double v = 0;
            for (size_t t = 0; t < 3; t++) v += g[i * 3 + t] * g[j * 3 + t];
            low_d[i * 10 + j] = v;
        }
    for (size_t i = 0; i < 20; i++) targ_d[i] = (double)((i * 3) % 7) / 7.0 - 0.4;
}

static ntk_status c_eigh_values(void)
{
    ntk_mat a = {NS, NS, sym_d}, w = {NS, 1, out};
    out_n = NS;
    return ntk_eigh(ctx, &a, NULL, &w, NULL);
}

static ntk_status c_eigh_top(void)
{
    ntk_eigh_opts o;
    ntk_eigh_opts_init(&o);
    o.k = 4;
    ntk_mat a = {NS, NS, sym_d}, w = {4, 1, out}, v = {NS, 4, out + 4};
    out_n = 4 + NS * 4;
    return ntk_eigh(ctx, &a, &o, &w, &v);
}

static ntk_status c_eigh_vectors(void)
{
    ntk_mat a = {NS, NS, sym_d}, w = {NS, 1, out}, v = {NS, NS, out + NS};
    out_n = NS + NS * NS;
    return ntk_eigh(ctx, &a, NULL, &w, &v);
}

static ntk_status c_eigs_matrix(void)
{
    ntk_eigs_info info;
    ntk_eigs_opts o;
    ntk_eigs_opts_init(&o);
    o.block = 2;
    ntk_mat a = {NS, NS, sym_d}, w = {3, 1, out}, v = {NS, 3, out + 3},
            r = {3, 1, out + 3 + NS * 3};
    out_n = 6 + NS * 3;
    return ntk_eigs_matrix(ctx, &a, 3, &o, &w, &v, &r, &info);
}

static ntk_status c_ntk_matvec(void)
{
    double v[N1 * OUT * 3];
    for (size_t i = 0; i < N1 * OUT * 3; i++) v[i] = (double)((i * 5) % 9) / 4.0 - 1.0;
    ntk_mat vv = {N1 * OUT, 3, v}, o = {N1 * OUT, 3, out};
    out_n = N1 * OUT * 3;
    return ntk_net_ntk_matvec(ctx, net, &x1, &vv, 1, &o); /* one sample per pass */
}

static ntk_status c_ntk_eigs(void)
{
    ntk_mat w = {3, 1, out}, v = {N1 * OUT, 3, out + 3};
    out_n = 3 + N1 * OUT * 3;
    return ntk_net_ntk_eigs(ctx, net, &x1, 3, NULL, &w, &v, NULL, NULL);
}

static ntk_status c_spectrum_stats(void)
{
    ntk_spectrum_info s;
    ntk_status st = ntk_spectrum_stats(ctx, sym_d, NS, NULL, &s);
    out[0] = s.effective_rank;
    out[1] = s.alpha;
    out_n = 2;
    return st;
}

static ntk_status c_alignment(void)
{
    ntk_mat k = {10, 10, low_d}, y = {5, 2, targ_d};
    out_n = 1;
    return ntk_alignment(ctx, &k, &y, 1, out);
}

static ntk_status c_kernel_regression(void)
{
    /* Rank 3 of 10: the jitter path, one attempt per progress report. */
    ntk_mat k = {10, 10, low_d}, y = {10, 2, targ_d}, a = {10, 2, out};
    out_n = 21;
    return ntk_kernel_regression(ctx, &k, &y, NULL, &a, out + 20);
}

static ntk_status c_kernel_predict(void)
{
    ntk_mat k = {4, 10, low_d}, a = {10, 2, targ_d}, o = {4, 2, out};
    out_n = 8;
    return ntk_kernel_predict(ctx, &k, &a, &o);
}

static ntk_status c_gd_dynamics(void)
{
    double times[3] = {0.5, 2, INFINITY};
    ntk_mat k = {10, 10, low_d}, kt = {4, 10, low_d + 30}, y = {5, 2, targ_d};
    ntk_mat tr[3], te[3];
    for (int t = 0; t < 3; t++) {
        tr[t] = (ntk_mat){5, 2, out + 10 * t};
        te[t] = (ntk_mat){2, 2, out + 30 + 4 * t};
    }
    ntk_gd_spec sp;
    ntk_gd_spec_init(&sp);
    sp.k_train = &k;
    sp.k_test_train = &kt;
    sp.y = &y;
    sp.times = times;
    sp.ntimes = 3;
    sp.ridge = 0.1;
    out_n = 42;
    return ntk_gd_dynamics(ctx, &sp, tr, te);
}

/* ---- io section (issue 5): loaders, writers, CSV, networks on disk ------- */

#define DATA "tests/fixtures/data/" /* the tests run in the source tree */
static char tmpdir[64], npy_path[96], npy_out[96], idx_path[96], csv_path[96], csv_gz[96],
    net_path[96], net_out[96];
static unsigned char npy_buf[4096], idx_buf[256], csv_buf[256], net_buf[4096];
static size_t npy_len, idx_len, csv_len, net_len;
static const char csv_text[] = "x,y,label\n1,2,0\r\n3.5,-1,1\n\"4\",5e-1,0\n\"-2\",  7 ,1\n";

static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int spit(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(bytes, 1, n, f);
    return fclose(f) == 0 && w == n;
}

/* A file's bytes as the case's output (whole doubles, zero-padded). */
static void file_as_output(const char *path)
{
    static unsigned char bytes[sizeof out];
    size_t n = slurp(path, bytes, sizeof bytes);
    memset(out, 0, (n + 7) / 8 * 8);
    memcpy(out, bytes, n);
    out_n = (n + 7) / 8;
}

static int io_fixtures(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ntk_alloc_XXXXXX");
    if (!mkdtemp(tmpdir)) return 0;
    snprintf(npy_path, sizeof npy_path, "%s/x.npy", tmpdir);
    snprintf(npy_out, sizeof npy_out, "%s/out.npy", tmpdir);
    snprintf(idx_path, sizeof idx_path, "%s/x.idx", tmpdir);
    snprintf(csv_path, sizeof csv_path, "%s/x.csv", tmpdir);
    snprintf(csv_gz, sizeof csv_gz, "%s/x.csv.gz", tmpdir);
    snprintf(net_path, sizeof net_path, "%s/x.ntk", tmpdir);
    snprintf(net_out, sizeof net_out, "%s/out.ntk", tmpdir);
    /* 5 items of 2 x 3 unsigned bytes. */
    unsigned char idx[16 + 30] = {0, 0, 0x08, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int k = 0; k < 30; k++) idx[16 + k] = (unsigned char)(k * 37 % 256);
    if (ntk_npy_write(ctx, npy_path, &x1) || !spit(idx_path, idx, sizeof idx) ||
        !spit(csv_path, csv_text, sizeof csv_text - 1) || ntk_net_save(ctx, net, net_path))
        return 0;
    gzFile gz = gzopen(csv_gz, "wb");
    if (!gz || gzwrite(gz, csv_text, sizeof csv_text - 1) != (int)sizeof csv_text - 1 ||
        gzclose(gz) != Z_OK)
        return 0;
    npy_len = slurp(npy_path, npy_buf, sizeof npy_buf);
    idx_len = slurp(idx_path, idx_buf, sizeof idx_buf);
    csv_len = slurp(csv_path, csv_buf, sizeof csv_buf);
    net_len = slurp(net_path, net_buf, sizeof net_buf);
    return npy_len && idx_len && csv_len && net_len;
}

static void io_cleanup(void)
{
    const char *files[] = {npy_path, npy_out, idx_path, csv_path, csv_gz, net_path, net_out};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) remove(files[k]);
    remove(tmpdir);
}

/* (A failed call leaves info as it was: the callers zero it.) */
static void info_as_output(const ntk_array_info *info)
{
    out[0] = (double)info->rows;
    out[1] = (double)info->cols;
    out[2] = (double)info->ndim;
    out[3] = (double)info->data_offset;
    out[4] = (double)info->data_bytes;
    out_n = 5;
}

/* info, then read into a matrix of the shape it gives (as the binding does). */
typedef ntk_status (*info_fn)(ntk_ctx *, const char *, ntk_array_info *);
typedef ntk_status (*read_fn)(ntk_ctx *, const char *, ntk_mat *);
static ntk_status load(info_fn info, read_fn read, const char *path)
{
    ntk_array_info in;
    ntk_status st = info(ctx, path, &in);
    if (st) return st;
    ntk_mat m = {in.rows, in.cols, out};
    out_n = in.rows * in.cols;
    return read(ctx, path, &m);
}

static ntk_status c_npy_info(void)
{
    ntk_array_info in;
    memset(&in, 0, sizeof in);
    ntk_status st = ntk_npy_info(ctx, npy_path, &in);
    info_as_output(&in);
    return st;
}

static ntk_status c_npy_read(void) { return load(ntk_npy_info, ntk_npy_read, npy_path); }
static ntk_status c_npy_read_f4(void) { return load(ntk_npy_info, ntk_npy_read, DATA "npy_3d_f4.npy"); }
static ntk_status c_npy_read_fortran(void)
{
    return load(ntk_npy_info, ntk_npy_read, DATA "npy_3d_fortran_i8.npy");
}

static ntk_status c_npy_mem(void)
{
    ntk_array_info in;
    ntk_status st = ntk_npy_info_mem(ctx, npy_buf, npy_len, &in);
    if (st) return st;
    ntk_mat m = {in.rows, in.cols, out};
    out_n = in.rows * in.cols;
    return ntk_npy_read_mem(ctx, npy_buf, npy_len, &m);
}

static ntk_status c_npy_write(void)
{
    ntk_status st = ntk_npy_write(ctx, npy_out, &x1);
    file_as_output(npy_out);
    return st;
}

static ntk_status c_idx_info(void)
{
    ntk_array_info in;
    memset(&in, 0, sizeof in);
    ntk_status st = ntk_idx_info(ctx, idx_path, &in);
    info_as_output(&in);
    return st;
}

static ntk_status c_idx_info_gz(void)
{
    ntk_array_info in;
    memset(&in, 0, sizeof in);
    ntk_status st = ntk_idx_info(ctx, DATA "idx_images.idx.gz", &in);
    info_as_output(&in);
    return st;
}

static ntk_status c_idx_read(void) { return load(ntk_idx_info, ntk_idx_read, idx_path); }
static ntk_status c_idx_read_gz(void) { return load(ntk_idx_info, ntk_idx_read, DATA "idx_u8.idx.gz"); }

static ntk_status c_idx_rows(void)
{
    const size_t rows[] = {4, 0, 4, 2};
    ntk_mat m = {4, 6, out};
    out_n = 24;
    return ntk_idx_read_rows(ctx, idx_path, rows, 4, &m);
}

static ntk_status c_idx_mem(void)
{
    ntk_array_info in;
    ntk_status st = ntk_idx_info_mem(ctx, idx_buf, idx_len, &in);
    if (st) return st;
    ntk_mat m = {in.rows, in.cols, out};
    out_n = in.rows * in.cols;
    return ntk_idx_read_mem(ctx, idx_buf, idx_len, &m);
}

/* Parse, then extract column `label` (or none) as the binding does. */
static ntk_status csv_case(const char *path, int header, size_t label)
{
    ntk_csv_opts o;
    ntk_csv_opts_init(&o);
    o.header = header;
    ntk_csv *t = NULL;
    ntk_status st = path ? ntk_csv_parse(ctx, path, &o, &t)
                         : ntk_csv_parse_mem(ctx, csv_buf, csv_len, &o, &t);
    if (st) return st;
    size_t rows = ntk_csv_rows(t), cols = ntk_csv_cols(t);
    int y = label < cols;
    ntk_mat x = {rows, cols - (size_t)y, out}, yv = {rows, 1, out + rows * cols};
    st = ntk_csv_extract(ctx, t, label, &x, y ? &yv : NULL);
    out_n = rows * cols;
    out[out_n++] = ntk_csv_name(t, 0) ? (double)strlen(ntk_csv_name(t, cols - 1)) : -1;
    ntk_csv_destroy(ctx, t);
    return st;
}

static ntk_status c_csv_file(void) { return csv_case(csv_path, NTK_CSV_HEADER_AUTO, 2); }
static ntk_status c_csv_gz(void) { return csv_case(csv_gz, NTK_CSV_HEADER_YES, 0); }
static ntk_status c_csv_mem(void) { return csv_case(NULL, NTK_CSV_HEADER_YES, (size_t)-1); }

static ntk_status c_net_save(void)
{
    ntk_status st = ntk_net_save(ctx, net, net_out);
    file_as_output(net_out);
    return st;
}

static ntk_status c_net_load(void)
{
    ntk_net *n = NULL;
    ntk_status st = ntk_net_load(ctx, net_path, &n);
    if (st) return st;
    out_n = ntk_net_num_params(n);
    memcpy(out, ntk_net_params(n), out_n * sizeof(double));
    ntk_net_destroy(ctx, n);
    return NTK_OK;
}

static ntk_status c_net_load_mem(void)
{
    ntk_net *n = NULL;
    ntk_status st = ntk_net_load_mem(ctx, net_buf, net_len, &n);
    if (st) return st;
    out_n = ntk_net_num_params(n);
    memcpy(out, ntk_net_params(n), out_n * sizeof(double));
    ntk_net_destroy(ctx, n);
    return NTK_OK;
}

static ntk_status c_standardize(void)
{
    ntk_mat mean = {1, IN, out}, sd = {1, IN, out + IN}, z = {N1, IN, out + 2 * IN};
    out_n = 2 * IN + N1 * IN;
    ntk_status st = ntk_col_stats(ctx, &x1, &mean, &sd);
    if (!st) st = ntk_standardize(ctx, &x1, &mean, &sd, &z);
    return st;
}

/* ---- train section (issue 7): losses, gradients, training, analytic ------ */

static double ymse_d[N1 * OUT], ycls_d[N1];
static ntk_mat ymse = {N1, OUT, ymse_d}, ycls = {N1, 1, ycls_d};

static void train_fixtures(void)
{
    for (size_t i = 0; i < N1 * OUT; i++) ymse_d[i] = (double)((i * 3) % 5) / 2.0 - 1.0;
    for (size_t i = 0; i < N1; i++) ycls_d[i] = (double)(i % OUT);
}

static ntk_status c_loss(void)
{
    out_n = 2;
    ntk_status st = ntk_net_loss(ctx, net, NTK_LOSS_MSE, &x1, &ymse, out);
    if (!st) st = ntk_net_loss(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x1, &ycls, out + 1);
    return st;
}

static ntk_status c_grad(void)
{
    size_t P = ntk_net_num_params(net);
    ntk_mat g = {P, 1, out};
    out_n = P + 1;
    return ntk_net_grad(ctx, net, NTK_LOSS_CROSS_ENTROPY, &x1, &ycls, &g, out + P);
}

static ntk_status c_vjp(void)
{
    size_t P = ntk_net_num_params(net);
    ntk_mat g = {1, P, out};
    out_n = P;
    return ntk_net_vjp(ctx, net, &x1, &ymse, &g);
}

/* Train a copy of the fixture network; its parameters and the loss
 * history are the output. */
static ntk_status train(ntk_optimizer opt, ntk_loss loss, size_t batch)
{
    ntk_net *c = NULL;
    ntk_status st = ntk_net_copy(ctx, net, &c);
    if (st) return st;
    double history[4];
    ntk_train_opts o;
    ntk_train_opts_init(&o);
    o.optimizer = opt;
    o.loss = loss;
    o.batch_size = batch;
    o.epochs = 4;
    o.seed = 3;
    o.history = history;
    size_t done = 0;
    st = ntk_net_train(ctx, c, &x1, loss == NTK_LOSS_MSE ? &ymse : &ycls, &o, &done);
    out_n = ntk_net_num_params(c);
    memcpy(out, ntk_net_params(c), out_n * sizeof(double));
    memcpy(out + out_n, history, sizeof history);
    out_n += 4;
    out[out_n++] = (double)done;
    ntk_net_destroy(ctx, c);
    return st;
}

static ntk_status c_train_sgd(void) { return train(NTK_OPT_SGD, NTK_LOSS_MSE, 2); }
static ntk_status c_train_momentum(void) { return train(NTK_OPT_MOMENTUM, NTK_LOSS_CROSS_ENTROPY, 0); }
static ntk_status c_train_adam(void) { return train(NTK_OPT_ADAM, NTK_LOSS_MSE, 3); }

static ntk_status c_kernel_distance(void)
{
    ntk_mat a = {10, 10, sym_d}, b = {10, 10, sym_d + 7};
    out_n = 2;
    return ntk_kernel_distance(ctx, &a, &b, out, out + 1);
}

static ntk_status analytic(ntk_act act, ntk_param param, int cross, int force, size_t points)
{
    size_t sizes[] = {IN, 6, 5, OUT};
    ntk_act acts[] = {act, act};
    ntk_analytic_spec s;
    ntk_analytic_spec_init(&s);
    s.depth = 3;
    s.sizes = sizes;
    s.acts = acts;
    s.param = param;
    s.force_quadrature = force;
    s.quad_points = points;
    size_t n2 = cross ? N2 : N1;
    ntk_mat nngp = {N1, n2, out}, ntk = {N1, n2, out + N1 * n2};
    out_n = 2 * N1 * n2;
    return ntk_analytic_kernels(ctx, &s, &x1, cross ? &x2 : NULL, &nngp, &ntk);
}

static ntk_status c_analytic_relu(void) { return analytic(NTK_ACT_RELU, NTK_PARAM_NTK, 0, 0, 0); }
static ntk_status c_analytic_gelu(void) { return analytic(NTK_ACT_GELU, NTK_PARAM_NTK, 1, 0, 0); }
static ntk_status c_analytic_tanh_standard(void)
{
    return analytic(NTK_ACT_TANH, NTK_PARAM_STANDARD, 0, 0, 0);
}
static ntk_status c_analytic_erf_forced(void) { return analytic(NTK_ACT_ERF, NTK_PARAM_NTK, 1, 1, 24); }

static ntk_status c_gaussian_expect(void)
{
    out_n = 4;
    ntk_status st = ntk_gaussian_expect(ctx, NULL, NTK_ACT_SOFTPLUS, 1.5, 0.5, 0.3, out, out + 1);
    if (!st) st = ntk_gaussian_expect(ctx, NULL, NTK_ACT_SIN, 1.5, 0.5, -0.3, out + 2, out + 3);
    return st;
}

/* ntk_eigs on an operator of the caller's: dgemm against sym_d. */
static ntk_status sym_op(void *ud, ntk_ctx *c, const double *v, size_t ldv, double *o,
                         size_t ldo, size_t k)
{
    (void)ud;
    for (size_t i = 0; i < NS; i++)
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t t = 0; t < NS; t++) s += sym_d[i * NS + t] * v[t * ldv + j];
            o[i * ldo + j] = s;
        }
    (void)c;
    return NTK_OK;
}

static ntk_status c_eigs_op(void)
{
    ntk_eigs_opts o;
    ntk_eigs_opts_init(&o);
    o.block = 2;
    o.seed = 9;
    ntk_mat w = {3, 1, out}, r = {3, 1, out + 3};
    out_n = 6;
    return ntk_eigs(ctx, NS, sym_op, NULL, 3, &o, &w, NULL, &r, NULL);
}

static const struct {
    const char *name;
    case_fn fn;
    int progress; /* reports progress: swept by the interruption test */
} cases[] = {
    {"ntk_mlp_create", c_mlp_create, 0},
    {"ntk_net_copy", c_net_copy, 0},
    {"ntk_net_set_params", c_set_params, 0},
    {"ntk_net_get_layer/set_layer", c_layers, 0},
    {"ntk_net_forward", c_forward, 0},
    {"ntk_net_forward (N = 0)", c_forward_empty, 0},
    {"ntk_net_jacobian", c_jacobian, 1},
    {"ntk_net_ntk full", c_ntk_full, 1},
    {"ntk_net_ntk full, chunks", c_ntk_full_chunks, 1},
    {"ntk_net_ntk full, cross", c_ntk_full_cross, 1},
    {"ntk_net_ntk trace", c_ntk_trace, 1},
    {"ntk_net_ntk trace, cross", c_ntk_trace_cross, 1},
    {"ntk_net_ntk outputs", c_ntk_outputs, 1},
    {"ntk_net_ntk outputs, cross", c_ntk_outputs_cross, 1},
    {"ntk_net_ntk blocks", c_ntk_blocks, 1},
    {"ntk_net_ntk auto", c_ntk_auto, 1},
    {"ntk_net_ntk structured", c_ntk_structured, 1},
    {"ntk_net_ntk structured trace", c_ntk_structured_trace, 1},
    {"ntk_net_ntk_plan", c_ntk_plan, 0},
    {"ntk_mat_gemm", c_gemm, 0},
    {"ntk_act_parse/param_parse", c_parse, 0},
    {"ntk_ctx_set_threads", c_threads, 0},
    {"ntk_eigh values", c_eigh_values, 1},
    {"ntk_eigh top k with vectors (dsyevr)", c_eigh_top, 1},
    {"ntk_eigh vectors (dsyevd)", c_eigh_vectors, 1},
    {"ntk_eigs_matrix", c_eigs_matrix, 1},
    {"ntk_net_ntk_matvec", c_ntk_matvec, 1},
    {"ntk_net_ntk_eigs", c_ntk_eigs, 1},
    {"ntk_spectrum_stats", c_spectrum_stats, 0},
    {"ntk_alignment", c_alignment, 0},
    {"ntk_kernel_regression (jitter)", c_kernel_regression, 1},
    {"ntk_kernel_predict", c_kernel_predict, 0},
    {"ntk_gd_dynamics", c_gd_dynamics, 1},
    {"ntk_eigs (caller's operator)", c_eigs_op, 1},
    {"ntk_npy_info", c_npy_info, 0},
    {"ntk_npy_read (f8)", c_npy_read, 1},
    {"ntk_npy_read (3-D f4)", c_npy_read_f4, 1},
    {"ntk_npy_read (Fortran i8)", c_npy_read_fortran, 1},
    {"ntk_npy_info_mem/read_mem", c_npy_mem, 1},
    {"ntk_npy_write", c_npy_write, 1},
    {"ntk_idx_info", c_idx_info, 0},
    {"ntk_idx_info (gzip)", c_idx_info_gz, 0},
    {"ntk_idx_read", c_idx_read, 1},
    {"ntk_idx_read (gzip)", c_idx_read_gz, 1},
    {"ntk_idx_read_rows", c_idx_rows, 1},
    {"ntk_idx_info_mem/read_mem", c_idx_mem, 1},
    {"ntk_csv_parse/extract (file, label)", c_csv_file, 1},
    {"ntk_csv_parse/extract (gzip)", c_csv_gz, 1},
    {"ntk_csv_parse_mem/extract", c_csv_mem, 1},
    {"ntk_net_save", c_net_save, 0},
    {"ntk_net_load", c_net_load, 0},
    {"ntk_net_load_mem", c_net_load_mem, 0},
    {"ntk_col_stats/standardize", c_standardize, 0},
    {"ntk_net_loss (mse, cross-entropy)", c_loss, 1},
    {"ntk_net_grad", c_grad, 1},
    {"ntk_net_vjp", c_vjp, 1},
    {"ntk_net_train (sgd, minibatches)", c_train_sgd, 1},
    {"ntk_net_train (momentum, cross-entropy)", c_train_momentum, 1},
    {"ntk_net_train (adam)", c_train_adam, 1},
    {"ntk_kernel_distance", c_kernel_distance, 0},
    {"ntk_analytic_kernels (relu, closed form)", c_analytic_relu, 1},
    {"ntk_analytic_kernels (gelu, automatic quadrature, cross)", c_analytic_gelu, 1},
    {"ntk_analytic_kernels (tanh, standard)", c_analytic_tanh_standard, 1},
    {"ntk_analytic_kernels (erf, forced quadrature)", c_analytic_erf_forced, 1},
    {"ntk_gaussian_expect", c_gaussian_expect, 0},
};
#define NCASES (sizeof cases / sizeof *cases)

/* ---- allocation failure -------------------------------------------------- */

static double ref[OUT_MAX];

static void test_alloc_failure(void)
{
    for (size_t c = 0; c < NCASES; c++) {
        ntk_status want = cases[c].fn();
        size_t ref_n = out_n;
        memcpy(ref, out, ref_n * sizeof(double));
        /* The reference itself must be deterministic. */
        CHECK_MSG(cases[c].fn() == want && out_n == ref_n &&
                      memcmp(out, ref, ref_n * sizeof(double)) == 0,
                  "%s is not reproducible", cases[c].name);
        size_t bytes0 = ntk_ctx_bytes_in_use(ctx);
        long live0 = inj.live;
        for (int sticky = 0; sticky <= 1; sticky++) {
            int done = 0;
            long budget;
            for (budget = 0; budget < 10000 && !done; budget++) {
                ntk_ctx_clear_error(ctx);
                inj.budget = budget;
                inj.sticky = sticky;
                inj.injected = 0;
                ntk_status st = cases[c].fn();
                inj.budget = -1;
                if (inj.injected == 0) {
                    done = 1;
                    CHECK_MSG(st == want, "%s: status %d without failures, expected %d",
                              cases[c].name, (int)st, (int)want);
                } else {
                    CHECK_MSG(st == NTK_ERR_NOMEM || st == want,
                              "%s, budget %ld: status %d (%s)", cases[c].name, budget,
                              (int)st, ntk_ctx_error(ctx));
                    if (st == NTK_ERR_NOMEM)
                        CHECK_MSG(strstr(ntk_ctx_error(ctx), "out of memory") != NULL,
                                  "%s, budget %ld: message '%s'", cases[c].name, budget,
                                  ntk_ctx_error(ctx));
                }
                CHECK_MSG(ntk_ctx_bytes_in_use(ctx) == bytes0 && inj.live == live0,
                          "%s, budget %ld: %zu bytes and %ld blocks held, expected %zu, %ld",
                          cases[c].name, budget, ntk_ctx_bytes_in_use(ctx), inj.live,
                          bytes0, live0);
                /* The context is as good as before. */
                ntk_status again = cases[c].fn();
                CHECK_MSG(again == want && out_n == ref_n &&
                              memcmp(out, ref, ref_n * sizeof(double)) == 0,
                          "%s, budget %ld: the rerun differs", cases[c].name, budget);
            }
            CHECK_MSG(done, "%s never ran without failures", cases[c].name);
            if (verbose && sticky)
                fprintf(stderr, "%-58s %4ld allocation points\n", cases[c].name, budget - 1);
        }
    }
}

/* The context itself. */
static void test_ctx_create(void)
{
    inject in = {0, 1, 0, 0, 0};
    ntk_ctx *c = (ntk_ctx *)1;
    CHECK_STATUS(ntk_ctx_create_with(&c, inject_alloc, &in), NTK_ERR_NOMEM);
    CHECK(c == NULL && in.live == 0 && in.injected == 1);
    CHECK_STATUS(ntk_ctx_create_with(NULL, inject_alloc, &in), NTK_ERR_INVALID);
    in.budget = -1;
    CHECK_STATUS(ntk_ctx_create_with(&c, inject_alloc, &in), NTK_OK);
    CHECK(in.live == 1);
    ntk_ctx_destroy(c);
    CHECK(in.live == 0);
}

/* ---- overflow: refused before the allocator is called --------------------- */

static void test_overflow(void)
{
    const size_t huge = (size_t)1 << 62, big = (size_t)INT32_MAX;
    inj.requests = 0;
    size_t count;
    CHECK_STATUS(ntk_mat_count(ctx, huge, 8, &count), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_mat_count(ctx, SIZE_MAX, 2, &count), NTK_ERR_OVERFLOW);

    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    size_t wide[] = {big, big, big};
    spec.depth = 2;
    spec.sizes = wide;
    ntk_net *n = (ntk_net *)1;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &n), NTK_ERR_OVERFLOW);
    CHECK(n == NULL);
    CHECK(strstr(ntk_ctx_error(ctx), "too many parameters") != NULL);

    /* Views whose byte size overflows: data is never touched. */
    double cell = 0;
    ntk_mat xh = {huge, IN, &cell}, yh = {huge, OUT, &cell}, ok = {N1, OUT, &cell};
    CHECK_STATUS(ntk_net_forward(ctx, net, &xh, &ok), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_forward(ctx, net, &x1, &yh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_jacobian(ctx, net, &xh, &ok), NTK_ERR_OVERFLOW);
    ntk_mat jh = {N1 * OUT, huge, &cell};
    CHECK_STATUS(ntk_net_jacobian(ctx, net, &x1, &jh), NTK_ERR_OVERFLOW);
    ntk_mat kh = {huge, huge, &cell};
    CHECK_STATUS(ntk_net_ntk(ctx, net, &xh, NULL, NULL, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_ntk(ctx, net, &x1, &xh, NULL, &kh), NTK_ERR_OVERFLOW);
    ntk_status st = ntk_net_ntk(ctx, net, &x1, NULL, NULL, &kh);
    CHECK(st == NTK_ERR_OVERFLOW || st == NTK_ERR_SHAPE);
    ntk_mat ah = {huge, 4, &cell};
    CHECK_STATUS(ntk_mat_gemm(ctx, 0, 0, 1, &ah, &ah, 0, &ah), NTK_ERR_OVERFLOW);
    /* Kernels and plans too large for memory or for BLAS's int sizes. */
    size_t rows, cols;
    CHECK_STATUS(ntk_kernel_shape(ctx, net, SIZE_MAX / 2, 0, NULL, &rows, &cols, &count),
                 NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_kernel_shape(ctx, net, big, 0, NULL, &rows, &cols, &count),
                 NTK_ERR_OVERFLOW);
    ntk_plan plan;
    CHECK_STATUS(ntk_net_ntk_plan(ctx, net, huge, huge, NULL, &plan), NTK_ERR_OVERFLOW);
    /* Every later section too. */
    ntk_mat gh = {huge, 1, &cell}, yh2 = {huge, OUT, &cell};
    double v;
    CHECK_STATUS(ntk_net_loss(ctx, net, NTK_LOSS_MSE, &xh, &yh2, &v), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_grad(ctx, net, NTK_LOSS_MSE, &x1, &ymse, &gh, &v), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_vjp(ctx, net, &xh, &yh2, &gh), NTK_ERR_OVERFLOW);
    ntk_train_opts to;
    ntk_train_opts_init(&to);
    CHECK_STATUS(ntk_net_train(ctx, net, &xh, &yh2, &to, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_kernel_distance(ctx, &kh, &kh, &v, NULL), NTK_ERR_OVERFLOW);
    ntk_analytic_spec as;
    ntk_analytic_spec_init(&as);
    as.depth = 2;
    CHECK_STATUS(ntk_analytic_kernels(ctx, &as, &xh, NULL, &kh, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_analytic_kernels(ctx, &as, &x1, &xh, &kh, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_eigh(ctx, &kh, NULL, &gh, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_eigs_matrix(ctx, &kh, 2, NULL, &gh, NULL, NULL, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_ntk_matvec(ctx, net, &xh, &kh, 0, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_net_ntk_eigs(ctx, net, &xh, 2, NULL, &gh, NULL, NULL, NULL), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_alignment(ctx, &kh, &gh, 0, &v), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_kernel_regression(ctx, &kh, &gh, NULL, &gh, &v), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_kernel_predict(ctx, &kh, &gh, &gh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_npy_write(ctx, npy_out, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_npy_read(ctx, npy_path, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_npy_read_mem(ctx, npy_buf, npy_len, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_idx_read_mem(ctx, idx_buf, idx_len, &kh), NTK_ERR_OVERFLOW);
    const size_t one_row[] = {0};
    CHECK_STATUS(ntk_idx_read_rows(ctx, idx_path, one_row, 1, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_idx_read(ctx, idx_path, &kh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_col_stats(ctx, &xh, &gh, &gh), NTK_ERR_OVERFLOW);
    CHECK_STATUS(ntk_standardize(ctx, &xh, &gh, &gh, &xh), NTK_ERR_OVERFLOW);
    CHECK_MSG(inj.requests == 0, "%ld allocation requests for overflowing sizes",
              inj.requests);

    /* Representable but far beyond memory (2^44 parameters, 128 TiB):
     * the system allocator refuses it, and nothing stays held. */
    size_t fat[] = {(size_t)1 << 22, (size_t)1 << 22, 1};
    spec.sizes = fat;
    size_t bytes0 = ntk_ctx_bytes_in_use(ctx);
    long live0 = inj.live;
    CHECK_STATUS(ntk_mlp_create(ctx, &spec, &n), NTK_ERR_NOMEM);
    CHECK(n == NULL && strstr(ntk_ctx_error(ctx), "out of memory") != NULL);
    CHECK(ntk_ctx_bytes_in_use(ctx) == bytes0 && inj.live == live0);
}

/* ---- interruption at every progress report -------------------------------- */

static long stop_at, reports;
static int stopper(void *ud, const char *task, double done, double total)
{
    (void)ud;
    (void)task;
    (void)done;
    (void)total;
    return reports++ == stop_at;
}

static void test_interrupt(void)
{
    for (size_t c = 0; c < NCASES; c++) {
        if (!cases[c].progress) continue;
        ntk_status want = cases[c].fn();
        size_t ref_n = out_n;
        memcpy(ref, out, ref_n * sizeof(double));
        size_t bytes0 = ntk_ctx_bytes_in_use(ctx);
        long live0 = inj.live;
        int finished = 0, interrupted = 0;
        for (stop_at = 0; stop_at < 1000 && !finished; stop_at++) {
            reports = 0;
            ntk_ctx_set_progress(ctx, stopper, NULL);
            ntk_status st = cases[c].fn();
            ntk_ctx_set_progress(ctx, NULL, NULL);
            if (reports <= stop_at) {
                finished = 1; /* fewer reports than the stop point */
                CHECK_MSG(st == want, "%s: %d without interruption", cases[c].name, (int)st);
            } else if (want == NTK_OK) {
                interrupted++;
                CHECK_MSG(st == NTK_ERR_INTERRUPTED && strstr(ntk_ctx_error(ctx), "interrupted"),
                          "%s, stop at %ld: status %d", cases[c].name, stop_at, (int)st);
                CHECK_MSG(reports == stop_at + 1, "%s: %ld reports after the stop",
                          cases[c].name, reports - stop_at - 1);
            }
            CHECK_MSG(ntk_ctx_bytes_in_use(ctx) == bytes0 && inj.live == live0,
                      "%s, stop at %ld: memory held", cases[c].name, stop_at);
            ntk_status again = cases[c].fn();
            CHECK_MSG(again == want && out_n == ref_n &&
                          memcmp(out, ref, ref_n * sizeof(double)) == 0,
                      "%s, stop at %ld: the rerun differs", cases[c].name, stop_at);
        }
        CHECK(finished);
        if (verbose) fprintf(stderr, "%-58s %4d interruption points\n", cases[c].name, interrupted);
        CHECK_MSG(want != NTK_OK || interrupted >= 2, "%s: only %d interruption points",
                  cases[c].name, interrupted);
    }
}

/* ---- calls that must not allocate at all ---------------------------------- */

static void test_no_alloc(void)
{
    inj.budget = 0;
    inj.sticky = 1;
    inj.injected = 0;
    CHECK(strcmp(ntk_version(), NTK_VERSION_STRING) == 0);
    CHECK(strcmp(ntk_status_string(NTK_ERR_NOMEM), "out of memory") == 0);
    CHECK(ntk_net_num_params(net) == 6 * 3 + 6 + 4 * 6 + 4 + 2 * 4 + 2);
    CHECK(ntk_net_depth(net) == 3 && ntk_net_input_dim(net) == IN &&
          ntk_net_output_dim(net) == OUT && ntk_net_width(net, 1) == 6);
    size_t rows, cols, count;
    CHECK_STATUS(ntk_kernel_shape(ctx, net, N1, N2, NULL, &rows, &cols, &count), NTK_OK);
    CHECK(rows == N1 * OUT && cols == N2 * OUT && count == 1);
    ntk_eigh_driver drv;
    CHECK_STATUS(ntk_eigh_plan(ctx, 40000, 0, 1, NTK_EIGH_AUTO, &drv), NTK_OK);
    CHECK(drv == NTK_EIGH_EVR);
    CHECK_STATUS(ntk_kernel_predict_shape(ctx, 4, 10, 10, 2, &rows, &cols), NTK_OK);
    ntk_loss loss;
    ntk_optimizer opt;
    CHECK_STATUS(ntk_loss_parse(ctx, "cross_entropy", &loss), NTK_OK);
    CHECK_STATUS(ntk_optimizer_parse(ctx, "adam", &opt), NTK_OK);
    CHECK_STATUS(ntk_optimizer_parse(ctx, "rmsprop", &opt), NTK_ERR_INVALID);
    ntk_ctx_set_log(ctx, NULL, NULL);
    ntk_ctx_clear_error(ctx);
    CHECK(ntk_ctx_error(ctx)[0] == '\0');
    inj.budget = -1;
    CHECK(inj.injected == 0);
}

int main(void)
{
    for (size_t i = 0; i < N1 * IN; i++) x1d[i] = (double)((i * 7) % 11) / 5.0 - 1.0;
    for (size_t i = 0; i < N2 * IN; i++) x2d[i] = (double)((i * 5) % 7) / 3.0 - 1.0;
    verbose = getenv("NTK_TEST_VERBOSE") && strcmp(getenv("NTK_TEST_VERBOSE"), "1") == 0;
    linalg_fixtures();
    train_fixtures();
    test_ctx_create();
    if (ntk_ctx_create_with(&ctx, inject_alloc, &inj) != NTK_OK) return 1;
    ntk_ctx_set_threads(ctx, 2);
    if (make_net(5, &net) != NTK_OK) return 1;
    if (!io_fixtures()) {
        fprintf(stderr, "test_alloc: cannot write the io fixtures in %s\n", tmpdir);
        return 1;
    }
    test_no_alloc();
    test_alloc_failure();
    test_overflow();
    test_interrupt();
    io_cleanup();
    ntk_net_destroy(ctx, net);
    CHECK(ntk_ctx_bytes_in_use(ctx) == 0);
    ntk_ctx_destroy(ctx);
    CHECK_MSG(inj.live == 0, "%ld blocks leaked", inj.live);
    return check_report("test_alloc");
}
