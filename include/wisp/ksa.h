/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes ServiceAccount tokens: what a cluster's OIDC issuer signs
 * (TokenRequest) and what STS accepts in exchange for a federated token.
 * Pure: keys come in, claims come out; no store, no network. Verification
 * is strict on purpose (SECURITY.md §C): RS256 only, the key chosen by kid
 * from keys the caller trusts (never from the token), the issuer tied to
 * that key, the pool in aud, bounded lifetime, small clock leeway. */
#ifndef WISP_KSA_H
#define WISP_KSA_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

#define WISP_KSA_LEEWAY 60               /* seconds of clock skew tolerated */
#define WISP_KSA_MAX_LIFETIME (48 * 3600) /* exp - iat must be below this */

/* The claims wisp issues and reads. Strings are owned by the struct when it
 * comes from wisp_ksa_verify (free with wisp_ksa_claims_free); borrowed when
 * passed to wisp_ksa_sign. */
struct wisp_ksa_claims {
    char *iss;            /* the cluster's issuer URL */
    char *aud;            /* the audience wisp checked (or signs, single) */
    int64_t iat, nbf, exp;
    char *ns, *sa, *sa_uid;
    char *pod, *pod_uid;  /* NULL when not bound to a pod */
    char *node, *node_uid;
    char *jti;
};
void wisp_ksa_claims_free(struct wisp_ksa_claims *c);

/* Signs c as a Kubernetes projected token (sub system:serviceaccount:NS:SA,
 * aud [c->aud], the kubernetes.io claim) with the issuer key (kid, PEM).
 * Returns the compact JWT (caller frees) or NULL. */
char *wisp_ksa_sign(const struct wisp_ksa_claims *c, const char *kid, const char *key_pem);

/* A key a verifier trusts: which issuer it belongs to. */
struct wisp_ksa_key {
    const char *kid;
    const char *issuer;     /* the cluster URL; the token's iss must equal it */
    const char *public_pem;
};

/* Verifies jwt against keys: the header's kid must name one of them, the
 * signature RS256 with it, iss that key's issuer, aud contain audience,
 * iat/nbf not in the future and exp not past (WISP_KSA_LEEWAY), exp - iat
 * under WISP_KSA_MAX_LIFETIME, sub system:serviceaccount:NS:SA agreeing with
 * kubernetes.io. On success fills *out (aud = audience). On failure returns
 * WISP_EUNAUTH with a one-line reason in why (never the token itself). */
enum wisp_err wisp_ksa_verify(const char *jwt, const struct wisp_ksa_key *keys, size_t n_keys,
                              const char *audience, int64_t now, struct wisp_ksa_claims *out,
                              char *why, size_t whylen);

#endif
