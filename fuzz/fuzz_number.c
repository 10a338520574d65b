/* libFuzzer harness: the locale-free decimal parser against glibc's
 * strtod (correctly rounded): whatever ours accepts, it must read to the
 * same double, bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static ntk_ctx *ctx;
    if (!ctx && ntk_ctx_create(&ctx) != NTK_OK) abort();
    if (size > 512) return 0;
    ntk__num num;
    ntk__num_init(&num, ctx);
    double got;
    if (ntk__parse_double((const char *)data, size, &got, &num)) {
        char buf[520];
        memcpy(buf, data, size);
        buf[size] = '\0';
        if (strlen(buf) != size) abort(); /* accepted a NUL byte */
        char *end;
        double want = strtod(buf, &end);
        if (end != buf + size) abort();
        if (!(got != got && want != want) && memcmp(&got, &want, sizeof got) != 0) abort();
    }
    ntk__num_free(&num);
    if (ntk_ctx_bytes_in_use(ctx) != 0) abort();
    return 0;
}
