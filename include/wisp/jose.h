/* SPDX-License-Identifier: Apache-2.0 */
/* JWS/JWT, RS256 only, over OpenSSL and jansson. RS256 is the only
 * algorithm wisp signs or accepts: the header's "alg" must say so, and keys
 * named in the header (jwk, jku, x5u, x5c) are never used; the caller
 * always supplies the key. Keys are given as PEM; decoded keys are cached. */
#ifndef WISP_JOSE_H
#define WISP_JOSE_H

#include <jansson.h>
#include <stddef.h>
#include "wisp/err.h"

/* A new RSA-2048 private key as PKCS#8 PEM; caller frees with
 * wisp_secret_free(). NULL on failure. */
char *wisp_rsa_generate_pem(void);
/* The SubjectPublicKeyInfo PEM of a private or public key PEM; caller frees.
 * NULL if the PEM is not an RSA key. */
char *wisp_rsa_public_pem(const char *pem);
/* The public JWK {"kty":"RSA","alg":"RS256","use":"sig","kid":kid,"n","e"}
 * of a key PEM; caller decrefs. */
json_t *wisp_rsa_public_jwk(const char *pem, const char *kid);

/* RSASSA-PKCS1-v1_5 with SHA-256 over data (signBlob). *sig_out is the
 * caller's (free()). */
enum wisp_err wisp_rsa_sign_sha256(const char *pem, const unsigned char *data, size_t len,
                                   unsigned char **sig_out, size_t *siglen_out);

/* The decoded protected header of a compact JWS, unverified: for choosing a
 * key by "kid" only. Caller decrefs; NULL if malformed. */
json_t *wisp_jwt_peek_header(const char *jwt);

/* Verifies an RS256 compact JWS with key_pem (public or private PEM) and
 * returns its payload parsed as a JSON object (caller decrefs), or NULL with
 * *why set to a static reason. Checks no claims: callers do that. */
json_t *wisp_jwt_verify_rs256(const char *jwt, const char *key_pem, const char **why);

/* Signs claims with key_pem as RS256 with header {"alg","typ":"JWT","kid"}.
 * Returns the compact JWS (caller frees), or NULL. */
char *wisp_jwt_sign_rs256(const json_t *claims, const char *kid, const char *key_pem);

#endif
