/* SPDX-License-Identifier: Apache-2.0 */
/* The allocation wrappers: die loudly on OOM (see include/wisp/alloc.h). */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"

static void die_oom(size_t n)
{
    fprintf(stderr, "wisp: out of memory allocating %zu bytes\n", n);
    abort();
}

void *wisp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom(n);
    return p;
}

void *wisp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die_oom(n * size);
    return p;
}

void *wisp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_oom(n);
    return q;
}

char *wisp_xstrdup(const char *s)
{
    return wisp_xstrndup(s, strlen(s));
}

char *wisp_xstrndup(const char *s, size_t n)
{
    char *p = wisp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *wisp_xpack(size_t n, const char *const src[], char **const dst[])
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += src[i] ? strlen(src[i]) + 1 : 0;
    char *block = wisp_xmalloc(total), *at = block;
    for (size_t i = 0; i < n; i++) {
        *dst[i] = NULL;
        if (!src[i])
            continue;
        size_t len = strlen(src[i]) + 1;
        memcpy(at, src[i], len);
        *dst[i] = at;
        at += len;
    }
    return block;
}

char *wisp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        die_oom(0);
    return out;
}

void wisp_secret_free(void *p, size_t n)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, n ? n : strlen(p));
    free(p);
}
