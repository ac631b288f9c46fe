/* SPDX-License-Identifier: Apache-2.0 */
/* base64 and base64url (RFC 4648), over OpenSSL's EVP encoder. */
#ifndef WISP_B64_H
#define WISP_B64_H

#include <stddef.h>

/* Encoders return a NUL-terminated string; caller frees. url: no padding. */
char *wisp_b64_encode(const unsigned char *p, size_t n);
char *wisp_b64url_encode(const unsigned char *p, size_t n);
/* Decoders accept padded or unpadded input; return NULL on any invalid
 * character. *n_out gets the length. Caller frees (buffer is NUL-terminated
 * one past n_out for convenience). */
unsigned char *wisp_b64_decode(const char *s, size_t *n_out);
unsigned char *wisp_b64url_decode(const char *s, size_t *n_out);

#endif
