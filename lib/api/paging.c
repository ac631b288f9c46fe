/* SPDX-License-Identifier: Apache-2.0 */
/* Page tokens and page sizes. A token is base64url(last name returned): the
 * store lists names in byte order, so "the names after this one" is a range
 * scan whatever the collection's size. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"

char *wisp_api_page_token_make(const char *last_name)
{
    return wisp_b64url_encode((const unsigned char *)last_name, strlen(last_name));
}

char *wisp_api_page_token_parse(const char *token)
{
    if (!token || !*token)
        return wisp_xstrdup("");
    size_t n;
    unsigned char *raw = wisp_b64url_decode(token, &n);
    if (!raw)
        return NULL;
    if (memchr(raw, '\0', n)) {
        free(raw);
        return NULL;
    }
    char *s = wisp_xstrndup((const char *)raw, n);
    free(raw);
    return s;
}

long wisp_api_page_size(const char *v, long def, long max)
{
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 0)
        return -1;
    if (n == 0)
        return def;
    return n > max ? max : n;
}
