/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libwisp: helpers shared by lib/jose/ files. */
#ifndef WISP_JOSE_INT_H
#define WISP_JOSE_INT_H

#include <cjose/cjose.h>
#include <openssl/evp.h>
#include <stddef.h>

/* Parses a private or public RSA key PEM; NULL if not RSA. Caller frees with
 * EVP_PKEY_free(). */
EVP_PKEY *wisp__pem_to_pkey(const char *pem);
/* The same through the decoded-key cache (keycache.c): the caller gets its
 * own reference and frees it with EVP_PKEY_free(). */
EVP_PKEY *wisp__pem_to_pkey_cached(const char *pem);
/* An RSA key PEM as a cjose JWK (private when the PEM is); NULL if not
 * RSA. Caller releases with cjose_jwk_release(). */
cjose_jwk_t *wisp__pem_to_jwk(const char *pem);
/* The same through the cache: the caller gets its own reference, which it
 * must give back with wisp__jwk_release_cached() (cjose's reference count
 * is not atomic, so the cache's lock guards it). */
cjose_jwk_t *wisp__pem_to_jwk_cached(const char *pem);
void wisp__jwk_release_cached(cjose_jwk_t *jwk);
/* A named RSA parameter as big-endian bytes; caller frees. */
unsigned char *wisp__rsa_param(EVP_PKEY *pkey, const char *name, size_t *len_out);

#endif
