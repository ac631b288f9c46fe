/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to lib/http: a strict second reading of an HTTP/1.x request head
 * that h2o has already parsed. h2o 2.2.5 is lenient where request smuggling
 * lives (it takes the first of two Content-Lengths, lets Transfer-Encoding
 * override Content-Length, accepts bare LF and obs-fold), so before any
 * handler runs wisp re-reads the raw head bytes and refuses what RFC 9112
 * calls unrecoverable. This file has no h2o types and does no I/O, so a
 * fuzz target can drive it directly. */
#ifndef WISP_HTTP_HEAD_H
#define WISP_HTTP_HEAD_H

#include <stddef.h>

enum wisp__http_verdict {
    WISP__HEAD_OK = 0,
    WISP__HEAD_BAD,      /* malformed or ambiguous framing: 400 and close */
    WISP__HEAD_TOO_BIG,  /* request line + headers over max_bytes: 431 */
    WISP__HEAD_TOO_MANY, /* more than max_headers fields: 431 */
    WISP__HEAD_URI_TOO_LONG, /* the request line alone is over max_bytes: 414 */
};

/* A span inside the scanned buffer (not NUL-terminated); p is NULL when the
 * field was absent. Values have surrounding whitespace trimmed. */
struct wisp__http_span {
    const char *p;
    size_t len;
};

struct wisp__http_head {
    size_t len;                  /* bytes through the blank line, including one leading CRLF */
    size_t n_headers;            /* header fields seen */
    int minor_version;           /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct wisp__http_span host; /* the Host value */
    struct wisp__http_span content_length; /* digits only, checked */
    struct wisp__http_span transfer_encoding;
    struct wisp__http_span expect;
    struct wisp__http_span upgrade;
    const char *why; /* static one-line reason when the verdict is not OK */
};

/* Scans the request head at the start of buf[0..len). max_bytes and
 * max_headers are the configured limits (stop early past them). Fills out
 * (spans point into buf) and returns the verdict. A head with no blank line
 * inside len is WISP__HEAD_BAD: callers only pass heads h2o has completed. */
enum wisp__http_verdict wisp__http_head_check(const char *buf, size_t len, size_t max_bytes,
                                              size_t max_headers, struct wisp__http_head *out);

#endif
