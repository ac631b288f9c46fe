/* SPDX-License-Identifier: Apache-2.0 */
/* application/x-www-form-urlencoded: query strings and form bodies. */
#ifndef WISP_URL_H
#define WISP_URL_H

#include <stddef.h>

/* The decoded value of key in an encoded "a=b&c=d" string of len bytes
 * ("+" is a space), or NULL when absent or when it decodes to bytes holding
 * a NUL or a malformed escape. Caller frees. */
char *wisp_form_get(const char *form, size_t len, const char *key);

/* Decodes n bytes of one form component ("+" is a space); NULL on a bad
 * escape or an encoded NUL. Caller frees. */
char *wisp_form_decode(const char *s, size_t n);
/* Percent-encodes s for a URL component (unreserved bytes kept). Caller
 * frees. */
char *wisp_url_escape(const char *s);

#endif
