/* SPDX-License-Identifier: Apache-2.0 */
/* Form and query decoding (include/wisp/url.h). */
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/url.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *wisp_form_decode(const char *s, size_t n)
{
    char *out = wisp_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                goto bad;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

char *wisp_form_get(const char *form, size_t len, const char *key)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && form[end] != '&')
            end++;
        const char *eq = memchr(form + i, '=', end - i);
        size_t name_len = eq ? (size_t)(eq - (form + i)) : end - i;
        char *name = wisp_form_decode(form + i, name_len);
        int match = name && strlen(name) == klen && memcmp(name, key, klen) == 0;
        free(name);
        if (match)
            return eq ? wisp_form_decode(eq + 1, (size_t)(form + end - (eq + 1)))
                      : wisp_xstrdup("");
        i = end + 1;
    }
    return NULL;
}

char *wisp_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = wisp_xmalloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}
