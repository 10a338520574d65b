/* Private helpers shared by the core's translation units. */
#ifndef NTK_INTERNAL_H
#define NTK_INTERNAL_H

#include "ntk.h"

#include <stdarg.h>
#include <stdbool.h>

#define NTK_ERRMSG_SIZE 512

struct ntk_ctx {
    ntk_alloc_fn alloc;
    void *alloc_ud;
    ntk_progress_fn progress;
    void *progress_ud;
    ntk_log_fn log;
    void *log_ud;
    int threads; /* 0: every core */
    size_t bytes_in_use;
    char err[NTK_ERRMSG_SIZE];
};

#if defined(__GNUC__)
#define NTK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NTK_PRINTF(a, b)
#endif

/* Record a message and return st, so failures read `return ntk__fail(...)`. */
ntk_status ntk__fail(ntk_ctx *ctx, ntk_status st, const char *fmt, ...)
    NTK_PRINTF(3, 4);
void ntk__log(ntk_ctx *ctx, int level, const char *fmt, ...) NTK_PRINTF(3, 4);

/*
 * Overflow-checked allocation of count * size bytes through the context's
 * allocator; on failure the context's error says so and NULL comes back.
 * ntk__free accepts NULL.
 */
void *ntk__alloc(ntk_ctx *ctx, size_t count, size_t size);
void *ntk__calloc(ntk_ctx *ctx, size_t count, size_t size);
void ntk__free(ntk_ctx *ctx, void *p);
/* a * b without overflow, else false. */
static inline bool ntk__mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a) return false;
    *out = a * b;
    return true;
}

/* Report progress; true means the hook asked to stop (error already set). */
bool ntk__progress(ntk_ctx *ctx, const char *task, double done, double total);
/* Apply the context's thread count to BLAS before heavy work. */
void ntk__enter(ntk_ctx *ctx);

/* Check a view's pointer and size; name is used in the message. */
ntk_status ntk__check_mat(ntk_ctx *ctx, const ntk_mat *m, const char *name);
ntk_status ntk__check_finite(ntk_ctx *ctx, const ntk_mat *m, const char *name);

/* Index of name among names[0..count), or -1 (also for a NULL name). */
int ntk__lookup(const char *const names[], int count, const char *name);

/* Deterministic natural logarithm (no libm), used by the generator. */
double ntk__log_det(double x);

#endif
