/* SPDX-License-Identifier: Apache-2.0 */
/* Canonical forms of what a metadata client sends: the path (decoded once,
 * so no later step can decode again and reach somewhere else) and the
 * scopes of a token request (so equal sets share one cache entry). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/metadata.h"

#define MAX_SEGMENTS 32
#define MAX_SCOPES 16

/* The byte of two hex digits at p, or -1. */
static int hexbyte(const char *p)
{
    if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
        return -1;
    char two[3] = {p[0], p[1], '\0'};
    return (int)strtol(two, NULL, 16);
}

/* Bytes a decoded segment may not hold: they would change how the path
 * splits or be decoded again somewhere. */
static int refused(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '/' || c == '%' || c == '?' || c == '#' || c == '\\';
}

enum wisp_err wisp_md_path_canon(const char *raw, char *out, size_t outlen)
{
    size_t o = 0, segs = 0;
    if (!raw || raw[0] != '/' || outlen < 2)
        return WISP_EINVAL;
    out[o++] = '/';
    const char *p = raw;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = p + strcspn(p, "/");
        size_t start = o;
        for (const char *q = p; q < end; q++) {
            unsigned char d = (unsigned char)*q;
            if (d == '%') {
                int b = hexbyte(q + 1); /* q[1] is NUL-checked before q[2] is read */
                if (b < 0)
                    return WISP_EINVAL;
                d = (unsigned char)b;
                q += 2;
            }
            if (refused(d) || o + 1 >= outlen)
                return WISP_EINVAL;
            out[o++] = (char)d;
        }
        size_t len = o - start;
        /* Refuse dot segments rather than resolve them. */
        if ((len == 1 && out[start] == '.') ||
            (len == 2 && out[start] == '.' && out[start + 1] == '.'))
            return WISP_EINVAL;
        if (++segs > MAX_SEGMENTS)
            return WISP_EINVAL;
        if (*end == '/') {
            if (o + 1 >= outlen)
                return WISP_EINVAL;
            out[o++] = '/';
        }
        p = end;
    }
    out[o] = '\0';
    return WISP_OK;
}

static int scope_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == ':' || c == '/' || c == '.' || c == '_' || c == '-';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum wisp_err wisp_md_scopes_canon(const char *in, char *out, size_t outlen)
{
    char buf[4096];
    char *list[MAX_SCOPES];
    size_t n = 0, o = 0;
    if (!in || !in[0])
        in = WISP_MD_DEFAULT_SCOPE;
    size_t len = strlen(in);
    if (len >= sizeof(buf))
        return WISP_EINVAL;
    memcpy(buf, in, len + 1);
    for (char *p = buf; *p;) {
        size_t sep = strspn(p, ", ");
        p += sep;
        if (!*p)
            break;
        size_t tl = strcspn(p, ", ");
        for (size_t i = 0; i < tl; i++) {
            if (!scope_char(p[i]))
                return WISP_EINVAL;
        }
        if (n == MAX_SCOPES)
            return WISP_EINVAL;
        list[n++] = p;
        p += tl;
        if (*p)
            *p++ = '\0';
    }
    if (n == 0)
        return wisp_md_scopes_canon(NULL, out, outlen);
    qsort(list, n, sizeof(list[0]), cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(list[i], list[i - 1]) == 0)
            continue;
        size_t l = strlen(list[i]);
        if (o + l + 2 > outlen)
            return WISP_EINVAL;
        if (o)
            out[o++] = ',';
        memcpy(out + o, list[i], l);
        o += l;
    }
    out[o] = '\0';
    return WISP_OK;
}
