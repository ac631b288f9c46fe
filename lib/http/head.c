/* SPDX-License-Identifier: Apache-2.0 */
/* The strict request-head reader (see head.h). It only reads: bounds are
 * checked on every byte, nothing is copied or allocated, and the first
 * problem found decides the verdict. It does not parse the request target
 * or header values beyond what framing and routing depend on. */
#include <string.h>
#include "http/head.h"

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes a field value may hold (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
 * NUL, bare CR, LF and the other controls are what splitting attacks use. */
static int is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Host may name a reg-name, IPv4 or [IPv6] literal and a port; anything
 * else (spaces, '/', '@', '%') is refused so that host routing only ever
 * compares plain names. */
static int is_host_byte(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c == '.' || c == '-' || c == '_' || c == '~' || c == ':' || c == '[' || c == ']';
}

static int name_is(const char *p, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* Content-Length = 1*DIGIT (RFC 9112 §6.2), and no sign, no hex, no list,
 * no leading zeros: every spelling two parsers could read differently is
 * refused. 18 digits keeps the value far from any overflow. */
static int cl_ok(const char *p, size_t len)
{
    if (len == 0 || len > 18)
        return 0;
    if (p[0] == '0' && len > 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
    }
    return 1;
}

static enum wisp__http_verdict bad(struct wisp__http_head *out, const char *why)
{
    out->why = why;
    return WISP__HEAD_BAD;
}

/* Reads the request line at p; on success returns the byte after its CRLF. */
static const char *request_line(const char *p, const char *end, struct wisp__http_head *out)
{
    const char *sp1 = NULL, *sp2 = NULL;
    const char *q = p;

    for (; q < end && *q != '\r'; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == ' ') {
            if (!sp1)
                sp1 = q;
            else if (!sp2)
                sp2 = q;
            else
                return NULL; /* a third space: not method SP target SP version */
        } else if (c < 0x20 || c == 0x7f) {
            return NULL; /* bare LF, NUL, other controls */
        }
    }
    if (q + 1 >= end || q[1] != '\n' || !sp1 || !sp2)
        return NULL;
    if (sp1 == p || sp2 == sp1 + 1)
        return NULL; /* empty method or empty target */
    for (const char *m = p; m < sp1; m++) {
        if (!is_tchar((unsigned char)*m))
            return NULL;
    }
    if (q - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return NULL;
    if (sp2[8] == '0')
        out->minor_version = 0;
    else if (sp2[8] == '1')
        out->minor_version = 1;
    else
        return NULL;
    return q + 2;
}

enum wisp__http_verdict wisp__http_head_check(const char *buf, size_t len, size_t max_bytes,
                                              size_t max_headers, struct wisp__http_head *out)
{
    const char *p = buf, *end = buf + len;

    memset(out, 0, sizeof(*out));

    /* One empty line before the request line is tolerated, as h2o's parser
     * does (clients may send CRLF after a POST body). */
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;

    p = request_line(p, end, out);
    if (!p)
        return bad(out, "malformed request line");
    if ((size_t)(p - buf) > max_bytes) {
        out->why = "request line too long";
        return WISP__HEAD_URI_TOO_LONG;
    }

    for (;;) {
        if (p >= end)
            return bad(out, "incomplete head");
        if (*p == '\r') {
            if (p + 1 >= end || p[1] != '\n')
                return bad(out, "bare CR");
            p += 2;
            break;
        }
        if (*p == ' ' || *p == '\t')
            return bad(out, "obsolete line folding");

        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        if (p >= end || *p != ':' || p == name)
            return bad(out, "malformed header name");
        size_t name_len = (size_t)(p - name);
        p++;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *val = p;
        while (p < end && *p != '\r') {
            if (!is_value_byte((unsigned char)*p))
                return bad(out, "control byte in header value");
            p++;
        }
        if (p + 1 >= end || p[1] != '\n')
            return bad(out, "bare CR or incomplete header");
        const char *val_end = p;
        while (val_end > val && (val_end[-1] == ' ' || val_end[-1] == '\t'))
            val_end--;
        p += 2;

        out->n_headers++;
        if (out->n_headers > max_headers) {
            out->why = "too many header fields";
            return WISP__HEAD_TOO_MANY;
        }
        if ((size_t)(p - buf) > max_bytes) {
            out->why = "request head too large";
            return WISP__HEAD_TOO_BIG;
        }

        struct wisp__http_span v = {val, (size_t)(val_end - val)};
        if (name_is(name, name_len, "host")) {
            if (out->host.p)
                return bad(out, "duplicate Host");
            for (size_t i = 0; i < v.len; i++) {
                if (!is_host_byte((unsigned char)v.p[i]))
                    return bad(out, "malformed Host");
            }
            out->host = v;
        } else if (name_is(name, name_len, "content-length")) {
            if (out->content_length.p)
                return bad(out, "duplicate Content-Length");
            if (!cl_ok(v.p, v.len))
                return bad(out, "malformed Content-Length");
            out->content_length = v;
        } else if (name_is(name, name_len, "transfer-encoding")) {
            if (out->transfer_encoding.p)
                return bad(out, "duplicate Transfer-Encoding");
            out->transfer_encoding = v;
        } else if (name_is(name, name_len, "expect")) {
            if (!out->expect.p)
                out->expect = v;
        } else if (name_is(name, name_len, "upgrade")) {
            if (!out->upgrade.p)
                out->upgrade = v;
        }
    }
    out->len = (size_t)(p - buf);

    /* RFC 9112 §6.1 and §6.3: both framings at once, a coding other than a
     * final "chunked", or chunked on HTTP/1.0 cannot be framed safely. */
    if (out->transfer_encoding.p) {
        if (out->content_length.p)
            return bad(out, "both Content-Length and Transfer-Encoding");
        if (!name_is(out->transfer_encoding.p, out->transfer_encoding.len, "chunked"))
            return bad(out, "unsupported Transfer-Encoding");
        if (out->minor_version == 0)
            return bad(out, "Transfer-Encoding on HTTP/1.0");
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400. */
    if (out->minor_version == 1 && !out->host.p)
        return bad(out, "missing Host");
    return WISP__HEAD_OK;
}
