/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded growable buffer (include/wisp/buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/buf.h"

void wisp_buf_init(struct wisp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void wisp_buf_free(struct wisp_buf *b)
{
    WISP_FREE(b->data);
    b->len = b->cap = 0;
}

void wisp_buf_reset(struct wisp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static enum wisp_err reserve(struct wisp_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return WISP_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return WISP_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = wisp_xrealloc(b->data, cap);
    b->cap = cap;
    return WISP_OK;
}

enum wisp_err wisp_buf_append(struct wisp_buf *b, const void *p, size_t n)
{
    enum wisp_err err = reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return WISP_OK;
}

enum wisp_err wisp_buf_appends(struct wisp_buf *b, const char *s)
{
    return wisp_buf_append(b, s, strlen(s));
}

enum wisp_err wisp_buf_printf(struct wisp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WISP_EINVAL;
    enum wisp_err err = reserve(b, (size_t)n);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return WISP_OK;
}

char *wisp_buf_steal(struct wisp_buf *b)
{
    char *p = b->data ? b->data : wisp_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
