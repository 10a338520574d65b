/* Private to the io section: a byte source (file or memory, gzip decoded
 * transparently on request) and locale-free number parsing and printing. */
#ifndef NTK_IO_H
#define NTK_IO_H

#include "internal.h"

#include <stdio.h>
#include <zlib.h>

/* Bytes per read or write through stdio and bytes of compressed input per
 * inflate step; large enough that call overhead vanishes, small enough to
 * give the progress hook a say several times a second. */
#define NTK_IO_CHUNK ((size_t)1 << 22)

typedef struct ntk__in {
    ntk_ctx *ctx;
    const char *name; /* the path, or a label for memory sources */
    FILE *fp;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    uint64_t raw_size; /* bytes in the file or buffer */
    int gz;            /* decoding gzip */
    int zs_live;       /* zs needs inflateEnd */
    int z_done;        /* the last gzip member ended and no input follows */
    z_stream zs;
    unsigned char *zbuf; /* compressed input for file sources */
    uint64_t pos;        /* decoded bytes delivered so far */
} ntk__in;

/* Open a regular file for reading; the error names the path. */
ntk_status ntk__in_file(ntk_ctx *ctx, ntk__in *in, const char *path);
/* Read from a caller-owned buffer; name labels messages. */
ntk_status ntk__in_mem(ntk_ctx *ctx, ntk__in *in, const void *buf, size_t len,
                       const char *name);
/* Decode gzip from here on if the source starts with the gzip magic. */
ntk_status ntk__in_detect_gz(ntk__in *in);
/* Up to n decoded bytes into dst; *got < n only at the end of the data. */
ntk_status ntk__in_read(ntk__in *in, void *dst, size_t n, size_t *got);
/* Exactly n bytes, else a "truncated" error naming what was being read. */
ntk_status ntk__in_exact(ntk__in *in, void *dst, size_t n, const char *what);
/* NTK_OK if no data follows, else a format error naming what it ends. */
ntk_status ntk__in_expect_end(ntk__in *in, const char *what);
/* Bytes of the undecoded source consumed so far (for progress). */
uint64_t ntk__in_raw_pos(const ntk__in *in);
void ntk__in_close(ntk__in *in);

/* Open path for writing; fails with a message naming it. */
ntk_status ntk__out_open(ntk_ctx *ctx, const char *path, FILE **fp);
/* fwrite all of buf; the error names the path and the system's reason. */
ntk_status ntk__out_write(ntk_ctx *ctx, FILE *fp, const void *buf, size_t n,
                          const char *path);
/* fclose, reporting a failed flush (a full disk) as an error. */
ntk_status ntk__out_close(ntk_ctx *ctx, FILE *fp, const char *path);

/* State of the number parser: the "C" locale for the slow path, made on
 * first need and freed by ntk__num_free. */
typedef struct ntk__num {
    ntk_ctx *ctx;
    void *locale;
} ntk__num;
void ntk__num_init(ntk__num *num, ntk_ctx *ctx);
void ntk__num_free(ntk__num *num);

/*
 * Parse s[0..n) as a decimal number ([+-] digits [. digits] [e [+-] digits],
 * or inf, infinity, nan in any case), nothing else around it. Correctly
 * rounded and independent of the C locale. Returns 1 on success.
 */
int ntk__parse_double(const char *s, size_t n, double *out, ntk__num *num);
/* The shortest exact hexadecimal form of a finite x ("0x1.8p+1"),
 * independent of the locale; buf holds at least 32 bytes. */
void ntk__format_hex(double x, char *buf);
/* Parse the form ntk__format_hex writes (and any C99 hex float). */
int ntk__parse_hex(const char *s, size_t n, double *out);

/* Advise the kernel to back a large output buffer with huge pages. */
void ntk__hugepage_hint(void *p, size_t bytes);

/* Host byte order. */
static inline int ntk__little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Reverse every `size`-byte element of n elements in place. */
void ntk__swap_bytes(void *p, size_t n, size_t size);

/* Element kinds the loaders convert to double. */
typedef enum ntk__kind {
    NTK__F, /* IEEE float */
    NTK__I, /* signed integer */
    NTK__U, /* unsigned integer */
    NTK__B  /* bool byte */
} ntk__kind;

/* Convert n elements of `size` bytes (in the given byte order) to doubles. */
void ntk__convert(const void *src, size_t n, ntk__kind kind, size_t size,
                  int big_endian, double *dst);

#endif
