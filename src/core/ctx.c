#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each block carries its size so frees can report it to lua_Alloc-style
 * allocators; 16 bytes keeps the payload aligned for doubles and SSE. */
#define HEADER 16

static void *default_alloc(void *ud, void *ptr, size_t old_size,
                           size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

const char *ntk_version(void) { return NTK_VERSION_STRING; }

const char *ntk_status_string(ntk_status st)
{
    switch (st) {
    case NTK_OK: return "ok";
    case NTK_ERR_INVALID: return "invalid argument";
    case NTK_ERR_SHAPE: return "shape mismatch";
    case NTK_ERR_NOMEM: return "out of memory";
    case NTK_ERR_OVERFLOW: return "size overflow";
    case NTK_ERR_IO: return "input/output error";
    case NTK_ERR_FORMAT: return "malformed data";
    case NTK_ERR_NUMERIC: return "numerical failure";
    case NTK_ERR_NOCONV: return "no convergence";
    case NTK_ERR_INTERRUPTED: return "interrupted";
    case NTK_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

ntk_status ntk_ctx_create(ntk_ctx **out)
{
    return ntk_ctx_create_with(out, default_alloc, NULL);
}

ntk_status ntk_ctx_create_with(ntk_ctx **out, ntk_alloc_fn alloc,
                               void *alloc_ud)
{
    if (!out) return NTK_ERR_INVALID;
    *out = NULL;
    if (!alloc) alloc = default_alloc;
    ntk_ctx *ctx = alloc(alloc_ud, NULL, 0, sizeof *ctx);
    if (!ctx) return NTK_ERR_NOMEM;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->alloc_ud = alloc_ud;
    *out = ctx;
    return NTK_OK;
}

void ntk_ctx_destroy(ntk_ctx *ctx)
{
    if (!ctx) return;
    ctx->alloc(ctx->alloc_ud, ctx, sizeof *ctx, 0);
}

const char *ntk_ctx_error(const ntk_ctx *ctx) { return ctx ? ctx->err : ""; }

void ntk_ctx_clear_error(ntk_ctx *ctx)
{
    if (ctx) ctx->err[0] = '\0';
}

void ntk_ctx_set_progress(ntk_ctx *ctx, ntk_progress_fn fn, void *ud)
{
    ctx->progress = fn;
    ctx->progress_ud = ud;
}

void ntk_ctx_get_progress(const ntk_ctx *ctx, ntk_progress_fn *fn, void **ud)
{
    if (fn) *fn = ctx ? ctx->progress : NULL;
    if (ud) *ud = ctx ? ctx->progress_ud : NULL;
}

void ntk_ctx_set_log(ntk_ctx *ctx, ntk_log_fn fn, void *ud)
{
    ctx->log = fn;
    ctx->log_ud = ud;
}

static int core_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

ntk_status ntk_ctx_set_threads(ntk_ctx *ctx, int threads)
{
    if (threads < 0 || threads > 4096)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "threads must be between 0 (every core) and 4096, got %d",
                         threads);
    ctx->threads = threads;
    ntk__enter(ctx);
    return NTK_OK;
}

int ntk_ctx_threads(const ntk_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : core_count();
}

size_t ntk_ctx_bytes_in_use(const ntk_ctx *ctx) { return ctx->bytes_in_use; }

void ntk__enter(ntk_ctx *ctx)
{
    int want = ntk_ctx_threads(ctx);
    if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
}

ntk_status ntk__fail(ntk_ctx *ctx, ntk_status st, const char *fmt, ...)
{
    if (!ctx) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return st;
}

void ntk__log(ntk_ctx *ctx, int level, const char *fmt, ...)
{
    if (!ctx || !ctx->log) return;
    char buf[NTK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_ud, level, buf);
}

void *ntk__alloc(ntk_ctx *ctx, size_t count, size_t size)
{
    size_t bytes;
    if (!ntk__mul(count, size, &bytes) || bytes > (size_t)-1 - HEADER) {
        ntk__fail(ctx, NTK_ERR_OVERFLOW,
                  "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    if (bytes == 0) bytes = 1;
    unsigned char *p = ctx->alloc(ctx->alloc_ud, NULL, 0, bytes + HEADER);
    if (!p) {
        ntk__fail(ctx, NTK_ERR_NOMEM, "out of memory (requested %zu bytes)",
                  bytes);
        return NULL;
    }
    memcpy(p, &bytes, sizeof bytes);
    ctx->bytes_in_use += bytes;
    return p + HEADER;
}

void *ntk__calloc(ntk_ctx *ctx, size_t count, size_t size)
{
    void *p = ntk__alloc(ctx, count, size);
    if (p) memset(p, 0, count * size);
    return p;
}

void ntk__free(ntk_ctx *ctx, void *p)
{
    if (!p) return;
    unsigned char *base = (unsigned char *)p - HEADER;
    size_t bytes;
    memcpy(&bytes, base, sizeof bytes);
    ctx->bytes_in_use -= bytes;
    ctx->alloc(ctx->alloc_ud, base, bytes + HEADER, 0);
}

bool ntk__progress(ntk_ctx *ctx, const char *task, double done, double total)
{
    if (!ctx->progress) return false;
    if (ctx->progress(ctx->progress_ud, task, done, total) == 0) return false;
    ntk__fail(ctx, NTK_ERR_INTERRUPTED, "interrupted during %s", task);
    return true;
}

ntk_status ntk__check_mat(ntk_ctx *ctx, const ntk_mat *m, const char *name)
{
    if (!m) return ntk__fail(ctx, NTK_ERR_INVALID, "%s is NULL", name);
    size_t n;
    if (!ntk__mul(m->rows, m->cols, &n) || !ntk__mul(n, sizeof(double), &n))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "%s: %zu x %zu overflows", name,
                         m->rows, m->cols);
    if (n > 0 && !m->data)
        return ntk__fail(ctx, NTK_ERR_INVALID, "%s has no data", name);
    return NTK_OK;
}

int ntk_mat_find_nonfinite(const ntk_mat *m, size_t *row, size_t *col)
{
    size_t n = m->rows * m->cols;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(m->data[k])) {
            if (row) *row = k / m->cols;
            if (col) *col = k % m->cols;
            return 1;
        }
    }
    return 0;
}

ntk_status ntk__check_finite(ntk_ctx *ctx, const ntk_mat *m, const char *name)
{
    size_t r, c;
    if (ntk_mat_find_nonfinite(m, &r, &c))
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "%s contains %s at row %zu, column %zu", name,
                         isnan(m->data[r * m->cols + c]) ? "NaN" : "Inf",
                         r + 1, c + 1);
    return NTK_OK;
}

ntk_status ntk_mat_count(ntk_ctx *ctx, size_t rows, size_t cols, size_t *count)
{
    size_t n, bytes;
    if (!ntk__mul(rows, cols, &n) || !ntk__mul(n, sizeof(double), &bytes))
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "a %zu x %zu matrix is too large",
                         rows, cols);
    *count = n;
    return NTK_OK;
}

ntk_status ntk_mat_gemm(ntk_ctx *ctx, int trans_a, int trans_b, double alpha,
                        const ntk_mat *a, const ntk_mat *b, double beta,
                        ntk_mat *c)
{
    ntk_status st;
    if ((st = ntk__check_mat(ctx, a, "A")) || (st = ntk__check_mat(ctx, b, "B")) ||
        (st = ntk__check_mat(ctx, c, "C")))
        return st;
    size_t m = trans_a ? a->cols : a->rows, k = trans_a ? a->rows : a->cols;
    size_t kb = trans_b ? b->cols : b->rows, n = trans_b ? b->rows : b->cols;
    if (k != kb || c->rows != m || c->cols != n)
        return ntk__fail(ctx, NTK_ERR_SHAPE,
                         "cannot multiply %zux%zu%s by %zux%zu%s into %zux%zu",
                         a->rows, a->cols, trans_a ? "'" : "", b->rows, b->cols,
                         trans_b ? "'" : "", c->rows, c->cols);
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return ntk__fail(ctx, NTK_ERR_OVERFLOW, "matrix too large for BLAS");
    if (m == 0 || n == 0) return NTK_OK;
    if (k == 0) {
        for (size_t i = 0; i < m * n; i++) c->data[i] *= beta;
        if (beta == 0) memset(c->data, 0, m * n * sizeof(double));
        return NTK_OK;
    }
    ntk__enter(ctx);
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a->data, (int)a->cols, b->data, (int)b->cols, beta,
                c->data, (int)c->cols);
    return NTK_OK;
}

int ntk__lookup(const char *const names[], int count, const char *name)
{
    for (int i = 0; name && i < count; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}
