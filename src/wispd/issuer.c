/* SPDX-License-Identifier: Apache-2.0 */
/* Each cluster's OIDC issuer: its RS256 signing keys, discovery document
 * and JWKS, and the index STS uses to find every key trusted for a
 * workload pool. Documents:
 *   issuer      ISSUER_URL        {issuer, pool, keys:[{kid, publicKeyPem, privateKeyPem}]}
 *   poolissuer  POOL ISSUER_URL   {} -- one per cluster whose pool is POOL
 * The issuer URL is the GKE form https://container.googleapis.com/v1/
 * projects/P/locations/L/clusters/C, which is also the tokens' iss. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/jose.h"
#include "wispd.h"

char *wispd_issuer_url(const char *project_id, const char *location, const char *cluster)
{
    return wisp_xasprintf("https://container.googleapis.com/v1/projects/%s/locations/%s/"
                          "clusters/%s",
                          project_id, location, cluster);
}

static char *pool_key(const char *pool, const char *issuer)
{
    return wisp_xasprintf("%s %s", pool, issuer);
}

static json_t *new_key(void)
{
    unsigned char raw[16];
    char kid[33];
    RAND_bytes(raw, sizeof(raw));
    for (int i = 0; i < 16; i++)
        snprintf(kid + 2 * i, 3, "%02x", raw[i]);
    char *priv = wisp_rsa_generate_pem();
    char *pub = priv ? wisp_rsa_public_pem(priv) : NULL;
    json_t *k = pub ? json_pack("{s:s, s:s, s:s}", "kid", kid, "publicKeyPem", pub,
                                "privateKeyPem", priv)
                    : NULL;
    free(pub);
    if (priv)
        wisp_secret_free(priv, 0);
    return k;
}

enum wisp_err wispd_issuer_ensure(struct wisp_txn *txn, const char *project_id,
                                  const char *location, const char *cluster, const char *pool)
{
    char *url = wispd_issuer_url(project_id, location, cluster);
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, "issuer", url, &doc, NULL);
    if (err == WISP_OK) {
        json_decref(doc);
        err = wispd_issuer_set_pool(txn, url, pool);
        free(url);
        return err;
    }
    json_t *key = new_key();
    if (!key) {
        free(url);
        return WISP_EIO;
    }
    doc = json_pack("{s:s, s:s?, s:[o]}", "issuer", url, "pool", pool, "keys", key);
    err = wispd_put_json(txn, "issuer", url, doc, 0, NULL);
    if (!err && pool) {
        char *pk = pool_key(pool, url);
        json_t *empty = json_object();
        err = wispd_put_json(txn, "poolissuer", pk, empty, -1, NULL);
        json_decref(empty);
        free(pk);
    }
    json_decref(doc);
    free(url);
    return err;
}

enum wisp_err wispd_issuer_set_pool(struct wisp_txn *txn, const char *issuer_url,
                                    const char *pool)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, "issuer", issuer_url, &doc, NULL);
    if (err)
        return err;
    const char *old = json_string_value(json_object_get(doc, "pool"));
    if ((!old && !pool) || (old && pool && strcmp(old, pool) == 0)) {
        json_decref(doc);
        return WISP_OK;
    }
    if (old) {
        char *pk = pool_key(old, issuer_url);
        err = wisp_store_delete(txn, "poolissuer", pk, -1);
        free(pk);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    if (!err && pool) {
        char *pk = pool_key(pool, issuer_url);
        json_t *empty = json_object();
        err = wispd_put_json(txn, "poolissuer", pk, empty, -1, NULL);
        json_decref(empty);
        free(pk);
    }
    if (!err) {
        if (pool)
            json_object_set_new(doc, "pool", json_string(pool));
        else
            json_object_del(doc, "pool");
        err = wispd_put_json(txn, "issuer", issuer_url, doc, -1, NULL);
    }
    json_decref(doc);
    return err;
}

enum wisp_err wispd_issuer_delete(struct wisp_txn *txn, const char *issuer_url)
{
    enum wisp_err err = wispd_issuer_set_pool(txn, issuer_url, NULL);
    if (!err)
        err = wisp_store_delete(txn, "issuer", issuer_url, -1);
    return err == WISP_ENOTFOUND ? WISP_OK : err;
}

enum wisp_err wispd_issuer_signing_key(struct wisp_txn *txn, const char *issuer_url,
                                       char **kid_out, char **pem_out)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json_shared(txn, "issuer", issuer_url, &doc, NULL);
    if (err)
        return err;
    json_t *keys = json_object_get(doc, "keys");
    json_t *newest = json_array_get(keys, json_array_size(keys) - 1);
    *kid_out = wisp_xstrdup(json_string_value(json_object_get(newest, "kid")));
    *pem_out = wisp_xstrdup(json_string_value(json_object_get(newest, "privateKeyPem")));
    json_decref(doc);
    return WISP_OK;
}

struct collect {
    struct wisp_txn *txn;
    const char *pool;
    json_t *keys; /* [{kid, issuer, publicKeyPem}] */
};

static int collect_one(const struct wisp_doc *d, void *arg)
{
    struct collect *c = arg;
    const char *issuer = d->name + strlen(c->pool) + 1;
    json_t *doc = NULL;
    if (wispd_get_json_shared(c->txn, "issuer", issuer, &doc, NULL) != WISP_OK)
        return 0;
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        json_array_append_new(c->keys, json_pack("{s:O, s:s, s:O}", "kid",
                                                 json_object_get(k, "kid"), "issuer", issuer,
                                                 "publicKeyPem",
                                                 json_object_get(k, "publicKeyPem")));
    }
    json_decref(doc);
    return 0;
}

json_t *wispd_issuer_pool_keys(struct wisp_txn *txn, const char *pool)
{
    char *prefix = wisp_xasprintf("%s ", pool);
    struct collect c = {txn, pool, json_array()};
    if (wisp_store_list(txn, "poolissuer", prefix, NULL, 0, collect_one, &c, NULL) != WISP_OK) {
        json_decref(c.keys);
        c.keys = NULL;
    }
    free(prefix);
    return c.keys;
}

static json_t *load(struct wisp_http_req *req, const char *issuer_url)
{
    struct wisp_txn *txn = NULL;
    json_t *doc = NULL;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        wispd_store_error(req, WISP_EBUSY);
        return NULL;
    }
    if (wispd_get_json(txn, "issuer", issuer_url, &doc, NULL) != WISP_OK)
        wisp_api_error(req, 404, NULL, "No OIDC issuer %.200s.", issuer_url);
    wisp_store_rollback(txn);
    return doc;
}

void wispd_issuer_discovery(struct wisp_http_req *req, const char *issuer_url)
{
    json_t *doc = load(req, issuer_url);
    if (!doc)
        return;
    char *jwks = wisp_xasprintf("%s/jwks", issuer_url);
    wisp_api_json(req, 200,
                  json_pack("{s:s, s:s, s:[s], s:[s], s:[s], s:[s]}", "issuer", issuer_url,
                            "jwks_uri", jwks, "response_types_supported", "id_token",
                            "subject_types_supported", "public",
                            "id_token_signing_alg_values_supported", "RS256", "claims_supported",
                            "sub", "iss"));
    free(jwks);
    json_decref(doc);
}

void wispd_issuer_jwks(struct wisp_http_req *req, const char *issuer_url)
{
    json_t *doc = load(req, issuer_url);
    if (!doc)
        return;
    json_t *keys = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        json_t *jwk = wisp_rsa_public_jwk(json_string_value(json_object_get(k, "publicKeyPem")),
                                          json_string_value(json_object_get(k, "kid")));
        if (jwk)
            json_array_append_new(keys, jwk);
    }
    json_decref(doc);
    wisp_api_json(req, 200, json_pack("{s:o}", "keys", keys));
}
