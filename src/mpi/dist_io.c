/*
 * One .npy file from a distributed matrix, written with MPI-IO and never
 * gathered. The file is the matrix in C order; each rank describes where
 * its entries go with an indexed file type and writes them in collective
 * rounds of a bounded number of global rows. A lower-stored symmetric
 * matrix writes each stored block twice: in place, and transposed at its
 * mirror (a stored block's column is a contiguous run of a mirrored row).
 */
#include "dist.h"

#include <stdio.h>
#include <string.h>

/* Bytes of entries one rank packs per round. */
#define ROUND_BYTES ((size_t)64 << 20)

/* The v1.0 header for a rows x cols float64 array, padded to 64 bytes. */
static size_t npy_header(char *buf, size_t cap, size_t rows, size_t cols)
{
    char dict[160];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }",
                       rows, cols);
    size_t total = 10 + (size_t)len + 1;
    total = (total + 63) / 64 * 64;
    if (total > cap) return 0;
    size_t hlen = total - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)len);
    memset(buf + 10 + len, ' ', hlen - (size_t)len - 1);
    buf[total - 1] = '\n';
    return total;
}

typedef struct plan {
    double *buf;
    int *lens;
    MPI_Aint *disp;
    size_t nseg, nval, cap_seg, cap_val;
} plan;

static void add_seg(plan *p, size_t file_index, const double *src, size_t count, size_t stride)
{
    MPI_Aint d = (MPI_Aint)(file_index * sizeof(double));
    double *dst = p->buf + p->nval;
    if (stride == 1) memcpy(dst, src, count * sizeof(double));
    else
        for (size_t k = 0; k < count; k++) dst[k] = src[k * stride];
    /* Runs that continue one another (a 1-column grid) merge. */
    if (p->nseg > 0 && p->disp[p->nseg - 1] + (MPI_Aint)p->lens[p->nseg - 1] * 8 == d)
        p->lens[p->nseg - 1] += (int)count;
    else {
        p->disp[p->nseg] = d;
        p->lens[p->nseg] = (int)count;
        p->nseg++;
    }
    p->nval += count;
}

/* What this rank writes of global rows [g0, g1), in file order. */
static void plan_rows(const ntk_dmat *a, size_t g0, size_t g1, plan *p)
{
    const ntk_grid *g = a->grid;
    size_t ncb = (a->lcols + a->nb - 1) / a->nb, nrb = (a->lrows + a->mb - 1) / a->mb;
    p->nseg = p->nval = 0;
    for (size_t i = g0; i < g1; i++) {
        size_t I = i / a->mb;
        if (dist_owns_row_block(a, I)) {
            size_t lr = (I / (size_t)g->nprow) * a->mb + i % a->mb;
            for (size_t cb = 0; cb < ncb; cb++) {
                size_t J = dist_block_global(cb, g->mycol, g->npcol);
                if (a->lower && J > I) break; /* blocks above the diagonal: mirrored */
                size_t c0 = cb * a->nb, w = a->lcols - c0 < a->nb ? a->lcols - c0 : a->nb;
                add_seg(p, (i - g0) * a->cols + J * a->nb, a->data + c0 * a->lld + lr, w,
                        a->lld);
            }
        }
        if (a->lower && dist_owns_col_block(a, I)) {
            /* Row i right of the diagonal block is column i of the stored
             * blocks below it. */
            size_t lc = (I / (size_t)g->npcol) * a->nb + i % a->nb;
            for (size_t rb = 0; rb < nrb; rb++) {
                size_t J = dist_block_global(rb, g->myrow, g->nprow);
                if (J <= I) continue;
                size_t r0 = rb * a->mb, h = a->lrows - r0 < a->mb ? a->lrows - r0 : a->mb;
                add_seg(p, (i - g0) * a->cols + J * a->mb, a->data + lc * a->lld + r0, h, 1);
            }
        }
    }
}

static ntk_status io_fail(ntk_ctx *ctx, int err, const char *what, const char *path)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return ntk__fail(ctx, NTK_ERR_IO, "cannot %s %s: %s", what, path, msg);
}

ntk_status ntk_dist_save_npy(ntk_ctx *ctx, const ntk_dmat *a, const char *path)
{
    ntk_status st = dist_check_dmat(ctx, a, "the distributed matrix");
    if (st) return st;
    const ntk_grid *g = a->grid;
    char header[256];
    size_t hlen = 0;
    if (!path) st = ntk__fail(ctx, NTK_ERR_INVALID, "path is NULL");
    else if (a->lower && a->mb != a->nb)
        st = ntk__fail(ctx, NTK_ERR_INVALID, "a symmetric matrix must have square blocks");
    else if (!(hlen = npy_header(header, sizeof header, a->rows, a->cols)))
        st = ntk__fail(ctx, NTK_ERR_INVALID, "header too long");
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) return st;

    /* Rounds of `rows_per` global rows, the same on every rank. */
    unsigned long long widest = a->lcols + (a->lower ? a->lrows : 0), w_all;
    MPI_Allreduce(&widest, &w_all, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, g->comm);
    size_t rows_per = w_all ? ROUND_BYTES / sizeof(double) / (size_t)w_all : a->rows;
    if (rows_per < 1) rows_per = 1;
    if (rows_per > a->rows) rows_per = a->rows ? a->rows : 1;
    size_t blocks_per_row = (a->lcols + a->nb - 1) / a->nb + (a->lower ? (a->lrows + a->mb - 1) / a->mb : 0);
    plan p = {0};
    p.cap_val = rows_per * (size_t)w_all;
    p.cap_seg = rows_per * blocks_per_row;
    if ((p.cap_val && !(p.buf = ntk__alloc(ctx, p.cap_val, sizeof *p.buf))) ||
        (p.cap_seg && !(p.lens = ntk__alloc(ctx, p.cap_seg, sizeof *p.lens))) ||
        (p.cap_seg && !(p.disp = ntk__alloc(ctx, p.cap_seg, sizeof *p.disp))))
        st = NTK_ERR_NOMEM;

    MPI_File fh = MPI_FILE_NULL;
    int err = MPI_SUCCESS;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    err = MPI_File_open(g->comm, path, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
    if (err != MPI_SUCCESS) {
        fh = MPI_FILE_NULL;
        st = io_fail(ctx, err, "open", path);
    }
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    /* An older, longer file must not keep its tail. */
    err = MPI_File_set_size(fh, 0);
    if (err == MPI_SUCCESS && g->rank == 0)
        err = MPI_File_write_at(fh, 0, header, (int)hlen, MPI_BYTE, MPI_STATUS_IGNORE);
    if (err != MPI_SUCCESS) st = io_fail(ctx, err, "write", path);
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;

    size_t rounds = a->rows ? (a->rows + rows_per - 1) / rows_per : 0;
    if (ntk__progress(ctx, "save_npy", 0, (double)rounds)) st = NTK_ERR_INTERRUPTED;
    if ((st = ntk_mpi_agree(ctx, g->comm, st))) goto done;
    for (size_t r = 0; r < rounds; r++) {
        size_t g0 = r * rows_per, g1 = g0 + rows_per < a->rows ? g0 + rows_per : a->rows;
        plan_rows(a, g0, g1, &p);
        MPI_Datatype ft = MPI_DOUBLE;
        int built = 0;
        if (p.nseg > 0) {
            err = MPI_Type_create_hindexed((int)p.nseg, p.lens, p.disp, MPI_DOUBLE, &ft);
            if (err == MPI_SUCCESS) err = MPI_Type_commit(&ft);
            built = err == MPI_SUCCESS;
            if (!built) ft = MPI_DOUBLE;
        }
        /* Every rank takes part in each round, with nothing to write or not. */
        MPI_Offset at = (MPI_Offset)hlen + (MPI_Offset)(g0 * a->cols * sizeof(double));
        int e2 = MPI_File_set_view(fh, at, MPI_DOUBLE, ft, "native", MPI_INFO_NULL);
        if (err == MPI_SUCCESS) err = e2;
        int e3 = MPI_File_write_all(fh, p.buf, err == MPI_SUCCESS ? (int)p.nval : 0, MPI_DOUBLE,
                                    MPI_STATUS_IGNORE);
        if (err == MPI_SUCCESS) err = e3;
        if (built) MPI_Type_free(&ft);
        if (err != MPI_SUCCESS) st = io_fail(ctx, err, "write", path);
        if (!st && ntk__progress(ctx, "save_npy", (double)(r + 1), (double)rounds))
            st = NTK_ERR_INTERRUPTED;
        if ((st = ntk_mpi_agree(ctx, g->comm, st))) break;
    }
done:
    if (fh != MPI_FILE_NULL) {
        err = MPI_File_close(&fh);
        if (!st && err != MPI_SUCCESS) st = io_fail(ctx, err, "close", path);
        st = ntk_mpi_agree(ctx, g->comm, st);
    }
    ntk__free(ctx, p.disp);
    ntk__free(ctx, p.lens);
    ntk__free(ctx, p.buf);
    return st;
}
