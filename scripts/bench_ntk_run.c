/*
 * One benchmark process for scripts/bench_ntk: times our structured or
 * Jacobian NTK path, or the dsyrk lower bound, on one configuration.
 * Built on demand (`cmake --build build --target bench_ntk_run`); the
 * driver runs it under /usr/bin/time -v for the peak resident memory.
 *
 *   bench_ntk_run --sizes 784,512,512,10 --n 1000 --method structured|jacobian|bound|none
 *                 [--reps R] [--warmup 0|1] [--threads T] [--memory BYTES]
 *                 [--output fresh|reused]
 *                 [--data FILE] [--kernel FILE --check N]
 *
 * The network is ntk.mlp{sizes = ..., seed = 1} (relu, ntk parameterization)
 * and X holds N x n standard normals from the library's generator, seed 7.
 * By default every timed call allocates a fresh output, as net:ntk(X) does
 * in Lua, so the time includes the first touch of the output's pages (on a
 * virtual machine that can be a large part of it); `--output reused` times
 * the computation alone into one output touched beforehand, as the dsyrk
 * bound is timed.
 *
 * Prints: `plan ...`, then `time SECONDS` per repetition; for the bound,
 * `rate FLOPS_PER_SECOND` per repetition of dsyrk on an (N m) x w matrix,
 * w the widest layer; "none" only loads everything (the baseline of the
 * resident memory). --data writes theta then X (raw float64) for the
 * PyTorch peer; --kernel writes the full kernel of the first N samples
 * (computed after the timing) for the agreement check.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ntk.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *msg, const char *detail)
{
    fprintf(stderr, "bench_ntk_run: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

static int write_raw(const char *path, const double *a, size_t n, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f) return 0;
    size_t w = fwrite(a, sizeof(double), n, f);
    return fclose(f) == 0 && w == n;
}

int main(int argc, char **argv)
{
    size_t sizes[64], depth = 0, n = 0, check = 0, memory = 0;
    const char *method = "structured", *data = NULL, *kernel = NULL;
    int reps = 3, warmup = -1, threads = 0, reuse = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for", a);
        if (strcmp(a, "--sizes") == 0) {
            char *s = (char *)v, *end;
            while (*s && depth < 64) {
                sizes[depth++] = strtoul(s, &end, 10);
                s = *end == ',' ? end + 1 : end;
                if (end == s && *s) die("bad --sizes", v);
            }
        } else if (strcmp(a, "--n") == 0) n = strtoul(v, NULL, 10);
        else if (strcmp(a, "--method") == 0) method = v;
        else if (strcmp(a, "--reps") == 0) reps = atoi(v);
        else if (strcmp(a, "--warmup") == 0) warmup = atoi(v);
        else if (strcmp(a, "--threads") == 0) threads = atoi(v);
        else if (strcmp(a, "--memory") == 0) memory = strtoul(v, NULL, 10);
        else if (strcmp(a, "--output") == 0) reuse = strcmp(v, "reused") == 0;
        else if (strcmp(a, "--data") == 0) data = v;
        else if (strcmp(a, "--kernel") == 0) kernel = v;
        else if (strcmp(a, "--check") == 0) check = strtoul(v, NULL, 10);
        else die("unknown option", a);
        i++;
    }
    if (depth < 2 || n == 0 || reps < 1) die("need --sizes (2+ widths), --n and --reps >= 1", NULL);
    if (warmup < 0) warmup = reps > 1;

    ntk_ctx *ctx;
    if (ntk_ctx_create(&ctx)) die("no context", NULL);
    if (ntk_ctx_set_threads(ctx, threads)) die(ntk_ctx_error(ctx), NULL);
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);
    spec.depth = depth - 1;
    spec.sizes = sizes;
    spec.seed = 1;
    ntk_net *net;
    if (ntk_mlp_create(ctx, &spec, &net)) die(ntk_ctx_error(ctx), NULL);
    size_t d = sizes[0], m = sizes[depth - 1], rows = n * m;
    double *x = malloc(n * d * sizeof *x);
    if (!x) die("out of memory", NULL);
    ntk_rng rng;
    ntk_rng_seed(&rng, 7);
    for (size_t i = 0; i < n * d; i++) x[i] = ntk_rng_normal(&rng);
    if (data && (!write_raw(data, ntk_net_params(net), ntk_net_num_params(net), "wb") ||
                 !write_raw(data, x, n * d, "ab")))
        die("cannot write", data);

    if (strcmp(method, "none") == 0) {
        /* The baseline: library, network, data and BLAS's own buffers. */
        double a[4] = {1, 2, 3, 4}, c[4];
        openblas_set_num_threads(ntk_ctx_threads(ctx));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0, a, 2, a, 2, 0.0,
                    c, 2);
        printf("plan none threads %d\n", ntk_ctx_threads(ctx));
    } else if (strcmp(method, "bound") == 0) {
        size_t w = 0;
        for (size_t l = 1; l < depth; l++) if (sizes[l] > w) w = sizes[l];
        double *b = malloc(rows * w * sizeof *b), *c = malloc(rows * rows * sizeof *c);
        if (!b || !c) die("out of memory", NULL);
        for (size_t i = 0; i < rows * w; i++) b[i] = ntk_rng_normal(&rng);
        memset(c, 0, rows * rows * sizeof *c);
        openblas_set_num_threads(ntk_ctx_threads(ctx));
        printf("plan bound width %zu threads %d\n", w, ntk_ctx_threads(ctx));
        for (int r = -warmup; r < reps; r++) {
            double t0 = now();
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)rows, (int)w, 1.0, b,
                        (int)w, 0.0, c, (int)rows);
            double t = now() - t0;
            if (r >= 0) printf("rate %.6g\n", (double)rows * (double)rows * (double)w / t);
            fflush(stdout);
        }
        free(b);
        free(c);
    } else {
        ntk_kernel_opts o;
        ntk_kernel_opts_init(&o);
        o.memory = memory;
        if (strcmp(method, "structured") == 0) o.method = NTK_METHOD_STRUCTURED;
        else if (strcmp(method, "jacobian") == 0) o.method = NTK_METHOD_JACOBIAN;
        else die("unknown method", method);
        ntk_plan plan;
        if (ntk_net_ntk_plan(ctx, net, n, 0, &o, &plan)) die(ntk_ctx_error(ctx), NULL);
        printf("plan %s chunk %zu memory %zu flops %.6g output %.6g threads %d\n", method,
               plan.chunk, plan.memory, plan.flops, 8.0 * (double)rows * (double)rows,
               ntk_ctx_threads(ctx));
        ntk_mat vx = {n, d, x};
        /* reuse: one output, touched before the timing (compute only) */
        double *kept = NULL;
        if (reuse) {
            kept = malloc(rows * rows * sizeof *kept);
            if (!kept) die("out of memory", NULL);
            memset(kept, 0, rows * rows * sizeof *kept);
        }
        for (int r = -warmup; r < reps; r++) {
            double t0 = now();
            double *k = reuse ? kept : malloc(rows * rows * sizeof *k);
            if (!k) die("out of memory", NULL);
            ntk_mat vk = {rows, rows, k};
            if (ntk_net_ntk(ctx, net, &vx, NULL, &o, &vk)) die(ntk_ctx_error(ctx), NULL);
            if (!reuse) free(k);
            double t = now() - t0;
            if (r >= 0) printf("time %.6f\n", t);
            fflush(stdout);
        }
        free(kept);
        if (kernel && check > 0) {
            if (check > n) check = n;
            size_t cr = check * m;
            double *k = malloc(cr * cr * sizeof *k);
            ntk_mat vc = {check, d, x}, vk = {cr, cr, k};
            if (!k || ntk_net_ntk(ctx, net, &vc, NULL, &o, &vk)) die("check kernel failed", ntk_ctx_error(ctx));
            if (!write_raw(kernel, k, cr * cr, "wb")) die("cannot write", kernel);
            free(k);
        }
    }
    free(x);
    ntk_net_destroy(ctx, net);
    ntk_ctx_destroy(ctx);
    return 0;
}
