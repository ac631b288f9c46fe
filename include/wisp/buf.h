/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard maximum set at init, so that input from
 * the network can never grow memory without bound (curl's dynbuf idea). */
#ifndef WISP_BUF_H
#define WISP_BUF_H

#include <stddef.h>
#include "wisp/err.h"

struct wisp_buf {
    char *data;   /* NUL-terminated after every append; from malloc() */
    size_t len;   /* bytes used, excluding the NUL */
    size_t cap;   /* bytes allocated */
    size_t max;   /* hard limit on len */
};

void wisp_buf_init(struct wisp_buf *b, size_t max);
/* Frees the data, not the struct; the buffer may be reused after init. */
void wisp_buf_free(struct wisp_buf *b);
void wisp_buf_reset(struct wisp_buf *b);
/* Returns WISP_ETOOBIG (and appends nothing) past max. */
enum wisp_err wisp_buf_append(struct wisp_buf *b, const void *p, size_t n);
enum wisp_err wisp_buf_appends(struct wisp_buf *b, const char *s);
enum wisp_err wisp_buf_printf(struct wisp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (free with free()) and resets b. */
char *wisp_buf_steal(struct wisp_buf *b);

#endif
