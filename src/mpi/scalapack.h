/* Private: the BLACS C interface and the ScaLAPACK/PBLAS Fortran routines
 * we call. Debian ships no header for them. Fortran INTEGER is 32 bits, and
 * gfortran passes the length of every CHARACTER argument as a hidden
 * trailing size_t: we pass them explicitly, which is the correct ABI. */
#ifndef NTK_SCALAPACK_H
#define NTK_SCALAPACK_H

#include <mpi.h>
#include <stddef.h>

/* Descriptor fields (0-based positions in the 9-integer array). */
enum { DESC_DTYPE, DESC_CTXT, DESC_M, DESC_N, DESC_MB, DESC_NB, DESC_RSRC,
       DESC_CSRC, DESC_LLD };

void Cblacs_pinfo(int *mypnum, int *nprocs);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
void Cblacs_exit(int not_done);

int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb,
               const int *nb, const int *irsrc, const int *icsrc,
               const int *ictxt, const int *lld, int *info);

void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
              const int *ia, const int *ja, const int *desca, double *w,
              double *z, const int *iz, const int *jz, const int *descz,
              double *work, const int *lwork, int *iwork, const int *liwork,
              int *info, size_t jobz_len, size_t uplo_len);
void pdsyevr_(const char *jobz, const char *range, const char *uplo,
              const int *n, double *a, const int *ia, const int *ja,
              const int *desca, const double *vl, const double *vu,
              const int *il, const int *iu, int *m, int *nz, double *w,
              double *z, const int *iz, const int *jz, const int *descz,
              double *work, const int *lwork, int *iwork, const int *liwork,
              int *info, size_t jobz_len, size_t range_len, size_t uplo_len);
void pdposv_(const char *uplo, const int *n, const int *nrhs, double *a,
             const int *ia, const int *ja, const int *desca, double *b,
             const int *ib, const int *jb, const int *descb, int *info,
             size_t uplo_len);
void pdcopy_(const int *n, const double *x, const int *ix, const int *jx,
             const int *descx, const int *incx, double *y, const int *iy,
             const int *jy, const int *descy, const int *incy);
void pdswap_(const int *n, double *x, const int *ix, const int *jx,
             const int *descx, const int *incx, double *y, const int *iy,
             const int *jy, const int *descy, const int *incy);

#endif
