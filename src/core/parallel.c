/* The library's own threads, for memory-bound passes that BLAS does not
 * cover (combining kernel tiles, mirroring triangles). C11 threads; a build
 * without them runs everything on the calling thread. */
#include "kernel.h"

#ifndef __STDC_NO_THREADS__
#include <threads.h>
#endif

#define MAX_THREADS 64

typedef struct job {
    ntk__range_fn fn;
    void *arg;
    size_t n, grain, first, stride;
} job;

/* Blocks first, first + stride, ... : cyclic, so that triangular work
 * spreads evenly. */
static void run(const job *j)
{
    for (size_t b = j->first; b * j->grain < j->n; b += j->stride) {
        size_t lo = b * j->grain, hi = lo + j->grain;
        j->fn(j->arg, lo, hi < j->n ? hi : j->n);
    }
}

#ifndef __STDC_NO_THREADS__
static int worker(void *p)
{
    run(p);
    return 0;
}
#endif

void ntk__parallel(ntk_ctx *ctx, size_t n, size_t grain, double work,
                   ntk__range_fn fn, void *arg)
{
    if (n == 0) return;
    if (grain == 0) grain = 1;
    size_t blocks = (n + grain - 1) / grain;
    size_t threads = (size_t)ntk_ctx_threads(ctx);
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > blocks) threads = blocks;
    /* Starting a thread costs tens of microseconds: small passes stay serial. */
    if (work < 65536.0 * (double)threads) threads = 1;
    job jobs[MAX_THREADS];
    for (size_t t = 0; t < threads; t++)
        jobs[t] = (job){fn, arg, n, grain, t, threads};
#ifndef __STDC_NO_THREADS__
    thrd_t th[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (size_t t = 1; t < threads; t++)
        started[t] = thrd_create(&th[t], worker, &jobs[t]) == thrd_success;
    run(&jobs[0]);
    for (size_t t = 1; t < threads; t++) {
        if (started[t]) thrd_join(th[t], NULL);
        else run(&jobs[t]); /* no thread: the caller does that share */
    }
#else
    for (size_t t = 0; t < threads; t++) run(&jobs[t]);
#endif
}
