/* SPDX-License-Identifier: Apache-2.0 */
/* Signing keys wisp holds on Google's behalf: the key that signs ID tokens
 * as https://accounts.google.com, and one system-managed key per service
 * account for signBlob/signJwt. Both live in the store (so replicas share
 * them) and are created on first use. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wisp/pki.h"
#include "wispd.h"

/* Reads or creates key document (kind, name) inside write-capable txn;
 * *kid_out and *pem_out are the caller's (free; pem with wisp_secret_free). */
static enum wisp_err key_doc(struct wisp_txn *txn, const char *kind, const char *name,
                             char **kid_out, char **pem_out)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, kind, name, &doc, NULL);
    if (err == WISP_ENOTFOUND) {
        unsigned char raw[20];
        char kid[41];
        RAND_bytes(raw, sizeof(raw));
        for (int i = 0; i < 20; i++)
            snprintf(kid + 2 * i, 3, "%02x", raw[i]);
        char *pem = wisp_rsa_generate_pem();
        char *cert = NULL;
        if (!pem || wisp_pki_self_signed(pem, name, 3650, &cert) != WISP_OK) {
            if (pem)
                wisp_secret_free(pem, 0);
            return WISP_EIO;
        }
        char *pub = wisp_rsa_public_pem(pem);
        doc = json_pack("{s:s, s:s, s:s, s:s}", "kid", kid, "privateKeyPem", pem, "certPem", cert,
                        "publicKeyPem", pub ? pub : "");
        free(pub);
        free(cert);
        wisp_secret_free(pem, 0);
        err = wispd_put_json(txn, kind, name, doc, 0, NULL);
    }
    if (!err) {
        *kid_out = wisp_xstrdup(json_string_value(json_object_get(doc, "kid")));
        *pem_out = wisp_xstrdup(json_string_value(json_object_get(doc, "privateKeyPem")));
    }
    json_decref(doc);
    return err;
}

enum wisp_err wispd_google_key(struct wisp_txn *txn, char **kid_out, char **pem_out)
{
    return key_doc(txn, "googlekey", "accounts.google.com", kid_out, pem_out);
}

enum wisp_err wispd_sa_system_key(struct wisp_txn *txn, const char *email, char **kid_out,
                                  char **pem_out)
{
    return key_doc(txn, "sasyskey", email, kid_out, pem_out);
}

/* Publishes the public half of key document (kind, name) as Google does:
 * as an x509 map {kid: PEM certificate} or a JWKS. NULL if there is none. */
json_t *wispd_public_keys(struct wisp_txn *txn, const char *kind, const char *name, int jwks)
{
    json_t *doc = NULL;
    if (wispd_get_json(txn, kind, name, &doc, NULL) != WISP_OK)
        return NULL;
    const char *kid = json_string_value(json_object_get(doc, "kid"));
    json_t *out;
    if (jwks) {
        json_t *jwk = wisp_rsa_public_jwk(
            json_string_value(json_object_get(doc, "publicKeyPem")), kid);
        out = json_pack("{s:[o]}", "keys", jwk ? jwk : json_object());
    } else {
        out = json_pack("{s:O}", kid, json_object_get(doc, "certPem"));
    }
    json_decref(doc);
    return out;
}
