/* SPDX-License-Identifier: Apache-2.0 */
/* base64 / base64url over OpenSSL's EVP_EncodeBlock/DecodeBlock. The url
 * variant maps the alphabet and padding around the standard codec. */
#include <openssl/evp.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"

char *wisp_b64_encode(const unsigned char *p, size_t n)
{
    char *out = wisp_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

char *wisp_b64url_encode(const unsigned char *p, size_t n)
{
    char *out = wisp_b64_encode(p, n);
    size_t len = strlen(out);
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    for (char *c = out; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    return out;
}

static unsigned char *decode(const char *s, size_t *n_out, int url)
{
    size_t len = strlen(s);
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return NULL;
    size_t padded = (len + 3) / 4 * 4;
    char *tmp = wisp_xmalloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (url && (c == '+' || c == '/'))
            goto bad;
        if (!url && (c == '-' || c == '_'))
            goto bad;
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            goto bad;
        tmp[i] = c;
    }
    for (size_t i = len; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    unsigned char *out = wisp_xmalloc(padded / 4 * 3 + 1);
    int n = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
    free(tmp);
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* DecodeBlock counts the padding as zero bytes; take them off. */
    n -= (int)(padded - len);
    out[n] = '\0';
    *n_out = (size_t)n;
    return out;
bad:
    free(tmp);
    return NULL;
}

unsigned char *wisp_b64_decode(const char *s, size_t *n_out)
{
    return decode(s, n_out, 0);
}

unsigned char *wisp_b64url_decode(const char *s, size_t *n_out)
{
    return decode(s, n_out, 1);
}
