/* SPDX-License-Identifier: Apache-2.0 */
/* wisp access tokens: opaque to clients, sealed with AES-256-GCM under a key
 * kept in the store, so any API replica verifies one with a decrypt and no
 * database round trip. A token carries who it stands for, the attributes
 * principal sets match on, scopes, expiry and quota project. Keys have ids;
 * the newest seals, every known one opens, so keys rotate without cutting
 * off tokens already issued. */
#ifndef WISP_TOKEN_H
#define WISP_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

#define WISP_TOKEN_KEY_LEN 32
#define WISP_TOKEN_DEFAULT_LIFETIME 3600

struct wisp_token_claims {
    int64_t iat, exp;       /* unix seconds */
    int is_service_account; /* Google identity is a service account */
    char *email;            /* Google identity (user or SA); NULL for federated */
    /* Federated Kubernetes ServiceAccount (NULL for Google identities). */
    char *project_number;   /* of the pool's project */
    char *pool;             /* PROJECT_ID.svc.id.goog */
    char *ns, *ksa, *ksa_uid;
    char *cluster;          /* cluster URL (the KSA token's issuer) */
    char *scopes;           /* space-separated; may be NULL */
    char *quota_project;    /* may be NULL */
};
/* Frees the strings, not the struct. */
void wisp_token_claims_free(struct wisp_token_claims *c);

struct wisp_token_keyring;

/* Caller frees with wisp_token_keyring_free(). Never NULL. */
struct wisp_token_keyring *wisp_token_keyring_new(void);
void wisp_token_keyring_free(struct wisp_token_keyring *kr);
/* Adds a key (copied). The one with the largest kid seals. */
void wisp_token_keyring_add(struct wisp_token_keyring *kr, uint32_t kid,
                            const unsigned char key[WISP_TOKEN_KEY_LEN]);
size_t wisp_token_keyring_size(const struct wisp_token_keyring *kr);

/* Seals claims into a token string ("ya29.w1…"); caller frees with
 * wisp_secret_free(). Returns NULL if the keyring is empty. */
char *wisp_token_seal(const struct wisp_token_keyring *kr, const struct wisp_token_claims *c);

/* Opens and checks a token at time now: WISP_OK with *out filled (caller
 * frees with wisp_token_claims_free), or WISP_EUNAUTH with *why set to a
 * static reason ("malformed", "unknown key", "bad seal", "expired"). */
enum wisp_err wisp_token_open(const struct wisp_token_keyring *kr, const char *token, int64_t now,
                              struct wisp_token_claims *out, const char **why);

/* The principal a token stands for, in member syntax
 * ("serviceAccount:EMAIL", "user:EMAIL" or "principal://…"). Caller frees. */
char *wisp_token_principal(const struct wisp_token_claims *c);

#endif
