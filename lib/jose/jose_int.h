/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libwisp: helpers shared by lib/jose/ files. */
#ifndef WISP_JOSE_INT_H
#define WISP_JOSE_INT_H

#include <openssl/evp.h>
#include <stddef.h>

/* Parses a private or public RSA key PEM; NULL if not RSA. Caller frees with
 * EVP_PKEY_free(). */
EVP_PKEY *wisp__pem_to_pkey(const char *pem);
/* A named RSA parameter as big-endian bytes; caller frees. */
unsigned char *wisp__rsa_param(EVP_PKEY *pkey, const char *name, size_t *len_out);

#endif
