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
/* The longest lifetime any wisp issuer grants, and the clock leeway: a
 * retired key is kept this long after its successor takes over. */
#define WISP_TOKEN_MAX_LIFETIME 3600
#define WISP_TOKEN_LEEWAY 300
#define WISP_TOKEN_JTI_LEN 16 /* bytes; hex in claims */

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
    /* The token's id (hex), for revocation. Sealing fills it in when it is
     * empty; tokens sealed before ids existed open with it empty. */
    char jti[2 * WISP_TOKEN_JTI_LEN + 1];
    /* For a token minted as another identity (generateAccessToken): who
     * asked, through which delegates, as JSON text the issuer defines, so
     * each use can re-check that the grant still holds. NULL otherwise. */
    char *chain;
};
/* Frees the strings, not the struct. */
void wisp_token_claims_free(struct wisp_token_claims *c);

struct wisp_token_keyring;

/* Caller frees with wisp_token_keyring_free(). Never NULL. */
struct wisp_token_keyring *wisp_token_keyring_new(void);
void wisp_token_keyring_free(struct wisp_token_keyring *kr);
/* Adds a key (copied), sealing from time 0. */
void wisp_token_keyring_add(struct wisp_token_keyring *kr, uint32_t kid,
                            const unsigned char key[WISP_TOKEN_KEY_LEN]);
size_t wisp_token_keyring_size(const struct wisp_token_keyring *kr);

/* One key of a ring: it seals tokens issued at or after not_before, until a
 * key with a larger kid takes over; it opens tokens it sealed as long as it
 * is in the ring. */
struct wisp_token_key {
    uint32_t kid;
    int64_t not_before;
    unsigned char key[WISP_TOKEN_KEY_LEN];
};
/* Replaces every key of the ring with keys[0..n) (copied), at once: a ring
 * may be shared by threads that seal and open while another replaces it. */
void wisp_token_keyring_replace(struct wisp_token_keyring *kr, const struct wisp_token_key *keys,
                                size_t n);

/* What scheduled rotation does next, given the stored keys (any order) at
 * time now: *make_new is 1 when the newest key was created interval seconds
 * ago or more (the new one should seal from now + delay, once every replica
 * has loaded it); drop[i] is 1 for each key that no token it sealed can
 * still need: its successor has sealed for WISP_TOKEN_MAX_LIFETIME +
 * WISP_TOKEN_LEEWAY. The key that seals now is never dropped. */
struct wisp_token_key_age {
    uint32_t kid;
    int64_t created, not_before;
};
void wisp_token_rotation_plan(const struct wisp_token_key_age *keys, size_t n, int64_t now,
                              int64_t interval, int *make_new, int *drop);

/* Seals claims into a token string ("ya29.w1…") with the newest key whose
 * not_before is at or before c->iat; caller frees with wisp_secret_free().
 * Returns NULL if the keyring is empty. */
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
