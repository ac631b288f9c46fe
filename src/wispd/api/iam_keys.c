/* SPDX-License-Identifier: Apache-2.0 */
/* IAM v1 service-account keys: list (user- and system-managed, keyTypes
 * filter), create (an RSA-2048 key whose Google key file is handed out
 * once, as privateKeyData), get (the public half as an X.509 certificate or
 * raw), delete, disable and enable. A user-managed key is the "sakey"
 * document the OAuth 2.0 JWT-bearer grant reads, so a deleted or disabled
 * key is refused at the token endpoint from the next request on. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "wisp/log.h"
#include "iam_int.h"
#include "../wispd.h"

#define MAX_USER_KEYS 10    /* Google's limit per account */
#define MAX_KEY_ID 64
#define NEVER "9999-12-31T23:59:59Z"
#define SYSTEM_KEY_DAYS 3650 /* the life of a system key's certificate (keys.c) */
#define GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"

static const struct wisp_jfield create_fields[] = {
    {"privateKeyType", WISP_J_STRING}, {"keyAlgorithm", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield no_fields[] = {{NULL}};

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int wispd_iam_is_keys_path(const char *rest)
{
    const char *sl = strchr(rest, '/');
    return sl && sl > rest && strncmp(sl, "/keys", 5) == 0 && (!sl[5] || sl[5] == '/');
}

static void rfc3339(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A key as the API shows it: doc is a "sakey" document (user) or the
 * account's "sasyskey" document (system). */
static json_t *render(const json_t *sa, const json_t *doc, const char *kid, int system)
{
    char name[600], after[32] = "", before[32] = NEVER;
    snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s/keys/%s", str(sa, "projectId"),
             str(sa, "email"), kid);
    json_t *created = json_object_get(doc, "created");
    if (json_is_integer(created)) {
        rfc3339(json_integer_value(created), after, sizeof(after));
        if (system)
            rfc3339(json_integer_value(created) + SYSTEM_KEY_DAYS * 86400LL, before,
                    sizeof(before));
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "validBeforeTime", before,
                          "keyAlgorithm",
                          str(doc, "keyAlgorithm") ? str(doc, "keyAlgorithm") : "KEY_ALG_RSA_2048",
                          "keyOrigin", "GOOGLE_PROVIDED", "keyType",
                          system ? "SYSTEM_MANAGED" : "USER_MANAGED");
    if (*after)
        json_object_set_new(o, "validAfterTime", json_string(after));
    if (json_is_true(json_object_get(doc, "disabled")))
        json_object_set_new(o, "disabled", json_true());
    return o;
}

/* --- an account's user-managed keys -------------------------------------------------- */

struct user_keys {
    struct wisp_txn *txn;
    const json_t *sa;
    json_t *out;    /* rendered keys, or NULL to count only */
    size_t n;
    enum wisp_err err;
};

/* Index entries ("sakeyix" EMAIL/KID) may outlive their key when the
 * account was deleted; only a key of this account counts. */
static int user_key(const struct wisp_doc *doc, void *arg)
{
    struct user_keys *uk = arg;
    const char *kid = strchr(doc->name, '/');
    json_t *k = NULL;
    if (!kid)
        return 0;
    kid++;
    enum wisp_err err = wispd_get_json(uk->txn, "sakey", kid, &k, NULL);
    if (err && err != WISP_ENOTFOUND) {
        uk->err = err;
        return 1;
    }
    if (!err && str(k, "email") && strcmp(str(k, "email"), str(uk->sa, "email")) == 0) {
        uk->n++;
        if (uk->out)
            json_array_append_new(uk->out, render(uk->sa, k, kid, 0));
    }
    json_decref(k);
    return 0;
}

static enum wisp_err list_user_keys(struct wisp_txn *txn, const json_t *sa, json_t *out,
                                    size_t *n)
{
    struct user_keys uk = {txn, sa, out, 0, WISP_OK};
    char *prefix = wisp_xasprintf("%s/", str(sa, "email"));
    enum wisp_err err = wisp_store_list(txn, "sakeyix", prefix, NULL, 0, user_key, &uk, NULL);
    free(prefix);
    *n = uk.n;
    return err ? err : uk.err;
}

/* Loads key kid of account sa: *system says which kind it is. */
static enum wisp_err find_key(struct wisp_txn *txn, const json_t *sa, const char *kid,
                              json_t **doc, int *system)
{
    *system = 0;
    enum wisp_err err = wispd_get_json(txn, "sakey", kid, doc, NULL);
    if (!err && (!str(*doc, "email") || strcmp(str(*doc, "email"), str(sa, "email")) != 0)) {
        json_decref(*doc);
        err = WISP_ENOTFOUND;
    }
    if (err != WISP_ENOTFOUND)
        return err;
    *doc = NULL;
    err = wispd_get_json(txn, "sasyskey", str(sa, "email"), doc, NULL);
    if (!err && (!str(*doc, "kid") || strcmp(str(*doc, "kid"), kid) != 0)) {
        json_decref(*doc);
        *doc = NULL;
        err = WISP_ENOTFOUND;
    }
    *system = !err;
    return err;
}

static void key_not_found(struct wisp_http_req *req, const json_t *sa, const char *kid)
{
    wisp_api_error(req, 404, NULL, "Service account key projects/%s/serviceAccounts/%s/keys/%s "
                                   "does not exist.",
                   str(sa, "projectId"), str(sa, "email"), kid);
}

/* Commits *txn unless err (either way the caller's cleanup may roll back
 * what is left), answering a store failure; 1 when committed. */
static int commit(struct wisp_http_req *req, struct wisp_txn **txn, enum wisp_err err)
{
    if (!err) {
        err = wisp_store_commit(*txn);
        *txn = NULL;
    }
    if (err)
        wispd_store_error(req, err);
    return !err;
}

/* --- list and create ----------------------------------------------------------------- */

/* keyTypes may repeat (keyTypes=USER_MANAGED&keyTypes=SYSTEM_MANAGED);
 * none means both. 0 on an unknown type. */
static int key_types(struct wisp_http_req *req, int *user, int *system)
{
    const char *q = req->query;
    int any = 0;
    *user = *system = 0;
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len > 9 && strncmp(q, "keyTypes=", 9) == 0) {
            const char *v = q + 9;
            size_t vl = len - 9;
            any = 1;
            if (vl == 12 && strncmp(v, "USER_MANAGED", 12) == 0)
                *user = 1;
            else if (vl == 14 && strncmp(v, "SYSTEM_MANAGED", 14) == 0)
                *system = 1;
            else if (!(vl == 20 && strncmp(v, "KEY_TYPE_UNSPECIFIED", 20) == 0))
                return 0;
        }
        q += len + (q[len] == '&');
    }
    if (!any || (!*user && !*system))
        *user = *system = 1;
    return 1;
}

static void keys_list(struct wisp_http_req *req, const struct wispd_caller *c,
                      const char *project, const char *id)
{
    int user, system;
    if (!key_types(req, &user, &system)) {
        wisp_api_error(req, 400, NULL, "Invalid value for keyTypes: expected USER_MANAGED or "
                                       "SYSTEM_MANAGED.");
        return;
    }
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL, *sys = NULL, *keys = json_array();
    if (!wispd_iam_open_sa(req, c, 0, "iam.serviceAccountKeys.list", project, id, &txn, &sa,
                           NULL))
        goto out;
    enum wisp_err err = WISP_OK;
    if (system) {
        err = wispd_get_json(txn, "sasyskey", str(sa, "email"), &sys, NULL);
        if (!err)
            json_array_append_new(keys, render(sa, sys, str(sys, "kid"), 1));
        else if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    size_t n;
    if (!err && user)
        err = list_user_keys(txn, sa, keys, &n);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_object();
    if (json_array_size(keys))
        json_object_set(resp, "keys", keys);
    wisp_api_json(req, 200, resp);
out:
    json_decref(keys);
    json_decref(sys);
    json_decref(sa);
    wisp_store_rollback(txn);
}

/* Where the new key file sends its JWTs: this wisp's token endpoint as the
 * caller reached it on loopback; Google's (which wisp answers too) when it
 * came through a googleapis.com name. */
static char *token_uri(struct wisp_http_req *req)
{
    static const char suffix[] = ".googleapis.com";
    const char *host = wisp_http_header(req, "host");
    size_t hl = strlen(req->host), sl = sizeof(suffix) - 1;
    int ok = host && *host && strlen(host) < 256 &&
             strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
                 strlen(host);
    if (!ok || (hl > sl && strcmp(req->host + hl - sl, suffix) == 0))
        return wisp_xstrdup(GOOGLE_TOKEN_URI);
    return wisp_xasprintf("%s://%s/token", req->tls ? "https" : "http", host);
}

/* Whether the account may get another key (answers 400 if not). */
static int room_for_key(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *sa)
{
    size_t n = 0;
    enum wisp_err err = list_user_keys(txn, sa, NULL, &n);
    if (err) {
        wispd_store_error(req, err);
        return 0;
    }
    if (n >= MAX_USER_KEYS) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION",
                       "Precondition check failed: service account %s already has %d keys, the "
                       "most it may have.",
                       str(sa, "email"), MAX_USER_KEYS);
        return 0;
    }
    return 1;
}

static void keys_create(struct wisp_http_req *req, const struct wispd_caller *c,
                        const char *project, const char *id)
{
    static const char perm[] = "iam.serviceAccountKeys.create";
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sa = NULL;
    struct wispd_sa_key k = {0};
    char *uri = NULL, *file = NULL;
    body = wisp_api_body(req, create_fields);
    if (!body)
        return;
    const char *type = str(body, "privateKeyType"), *alg = str(body, "keyAlgorithm");
    if (type && strcmp(type, "TYPE_GOOGLE_CREDENTIALS_FILE") != 0 &&
        strcmp(type, "TYPE_UNSPECIFIED") != 0) {
        wisp_api_error(req, 400, NULL,
                       strcmp(type, "TYPE_PKCS12_FILE") == 0
                           ? "privateKeyType TYPE_PKCS12_FILE is not supported here; use "
                             "TYPE_GOOGLE_CREDENTIALS_FILE."
                           : "Invalid value for privateKeyType.");
        goto out;
    }
    if (alg && strcmp(alg, "KEY_ALG_RSA_2048") != 0 && strcmp(alg, "KEY_ALG_UNSPECIFIED") != 0) {
        wisp_api_error(req, 400, NULL, "Invalid value for keyAlgorithm: only KEY_ALG_RSA_2048 "
                                       "keys can be created.");
        goto out;
    }
    /* Check first, then make the key with no lock held (it takes tens of
     * milliseconds), then check again while writing. */
    if (!wispd_iam_open_sa(req, c, 0, perm, project, id, &txn, &sa, NULL))
        goto out;
    int room = room_for_key(req, txn, sa);
    wisp_store_rollback(txn);
    txn = NULL;
    if (!room)
        goto out;
    if (wispd_sa_key_generate(sa, &k) != WISP_OK) {
        wisp_api_error(req, 500, NULL, "Could not generate the key.");
        goto out;
    }
    json_decref(sa);
    sa = NULL;
    if (!wispd_iam_open_sa(req, c, 1, perm, project, id, &txn, &sa, NULL) ||
        !room_for_key(req, txn, sa))
        goto out;
    if (!commit(req, &txn, wispd_sa_key_store(txn, &k)))
        goto out;
    uri = token_uri(req);
    file = wispd_sa_key_file(sa, &k, uri);
    char *data = wisp_b64_encode((const unsigned char *)file, strlen(file));
    json_t *key = render(sa, k.doc, k.kid, 0);
    json_object_set_new(key, "privateKeyType", json_string("TYPE_GOOGLE_CREDENTIALS_FILE"));
    json_object_set_new(key, "privateKeyData", json_string(data));
    wisp_secret_free(data, 0);
    wisp_log_info("iam", "key %s of %s created by %s", k.kid, str(sa, "email"), c->principal);
    wisp_http_add_header(req, "Cache-Control", "no-store");
    wisp_api_json(req, 200, key);
out:
    if (file)
        wisp_secret_free(file, 0);
    free(uri);
    wispd_sa_key_free(&k);
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
}

/* --- one key ------------------------------------------------------------------------- */

static void key_get(struct wisp_http_req *req, const struct wispd_caller *c, const char *project,
                    const char *id, const char *kid)
{
    const char *pkt = wisp_http_query(req, "publicKeyType");
    const char *field = NULL;
    if (pkt && strcmp(pkt, "TYPE_X509_PEM_FILE") == 0)
        field = "certPem";
    else if (pkt && strcmp(pkt, "TYPE_RAW_PUBLIC_KEY") == 0)
        field = "publicKeyPem";
    else if (pkt && strcmp(pkt, "TYPE_NONE") != 0) {
        wisp_api_error(req, 400, NULL, "Invalid value for publicKeyType: '%.40s'.", pkt);
        return;
    }
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL, *doc = NULL;
    int system;
    if (!wispd_iam_open_sa(req, c, 0, "iam.serviceAccountKeys.get", project, id, &txn, &sa,
                           NULL))
        goto out;
    enum wisp_err err = find_key(txn, sa, kid, &doc, &system);
    if (err == WISP_ENOTFOUND) {
        key_not_found(req, sa, kid);
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *key = render(sa, doc, kid, system);
    if (field) {
        const char *pem = str(doc, field);
        if (!pem) {
            json_decref(key);
            wisp_api_error(req, 400, "FAILED_PRECONDITION",
                           "Key %s has no certificate; ask for TYPE_RAW_PUBLIC_KEY.", kid);
            goto out;
        }
        char *b = wisp_b64_encode((const unsigned char *)pem, strlen(pem));
        json_object_set_new(key, "publicKeyData", json_string(b));
        free(b);
    }
    wisp_api_json(req, 200, key);
out:
    json_decref(doc);
    json_decref(sa);
    wisp_store_rollback(txn);
}

/* DELETE, or :disable / :enable (verb). */
static void key_change(struct wisp_http_req *req, const struct wispd_caller *c,
                       const char *project, const char *id, const char *kid, const char *verb)
{
    const char *perm = !verb                           ? "iam.serviceAccountKeys.delete"
                       : strcmp(verb, "disable") == 0 ? "iam.serviceAccountKeys.disable"
                                                       : "iam.serviceAccountKeys.enable";
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL, *doc = NULL, *body = NULL;
    int system;
    if (verb && !(body = wisp_api_body(req, no_fields)))
        return;
    if (!wispd_iam_open_sa(req, c, 1, perm, project, id, &txn, &sa, NULL))
        goto out;
    enum wisp_err err = find_key(txn, sa, kid, &doc, &system);
    if (err == WISP_ENOTFOUND) {
        key_not_found(req, sa, kid);
        goto out;
    }
    if (!err && system) {
        wisp_api_error(req, 400, NULL, "Key %s is system-managed; only user-managed keys can be "
                                       "%s.",
                       kid, verb ? (verb[0] == 'd' ? "disabled" : "enabled") : "deleted");
        goto out;
    }
    if (!err && !verb) {
        char ix[400];
        snprintf(ix, sizeof(ix), "%s/%s", str(sa, "email"), kid);
        err = wisp_store_delete(txn, "sakey", kid, -1);
        if (!err && (err = wisp_store_delete(txn, "sakeyix", ix, -1)) == WISP_ENOTFOUND)
            err = WISP_OK;
    } else if (!err) {
        if (verb[0] == 'd')
            json_object_set_new(doc, "disabled", json_true());
        else
            json_object_del(doc, "disabled");
        err = wispd_put_json(txn, "sakey", kid, doc, -1, NULL);
    }
    if (!commit(req, &txn, err))
        goto out;
    wisp_log_info("iam", "key %s of %s %s by %s", kid, str(sa, "email"),
                  verb ? (verb[0] == 'd' ? "disabled" : "enabled") : "deleted", c->principal);
    wisp_api_json(req, 200, json_object());
out:
    json_decref(body);
    json_decref(doc);
    json_decref(sa);
    wisp_store_rollback(txn);
}

/* --- routing ------------------------------------------------------------------------- */

void wispd_iam_keys(struct wisp_http_req *req, const char *project, const char *rest)
{
    const char *m = req->method;
    const char *sl = strchr(rest, '/');
    char *id = wispd_iam_path_decode(rest, (size_t)(sl - rest));
    char *kid = NULL;
    struct wispd_caller *c = NULL;
    const char *after = sl + 5, *verb = NULL;
    if (!id) {
        wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", rest);
        return;
    }
    if (*after) {
        const char *seg = after + 1;
        const char *colon = strchr(seg, ':');
        size_t kl = colon ? (size_t)(colon - seg) : strlen(seg);
        verb = colon ? colon + 1 : NULL;
        if (kl && kl <= MAX_KEY_ID && strspn(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                                                   "VWXYZ0123456789-_") == kl)
            kid = wisp_xstrndup(seg, kl);
        if (!kid || (verb && strcmp(verb, "disable") != 0 && strcmp(verb, "enable") != 0)) {
            wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", rest);
            goto out;
        }
    }
    int ok = !kid ? strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0
             : verb ? strcmp(m, "POST") == 0
                    : strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0;
    if (!ok) {
        wisp_api_error(req, 405, NULL, "Method %s is not allowed on %.200s.", m, rest);
        goto out;
    }
    if (!(c = wispd_authenticate(req)))
        goto out;
    if (!kid && m[0] == 'G')
        keys_list(req, c, project, id);
    else if (!kid)
        keys_create(req, c, project, id);
    else if (!verb && m[0] == 'G')
        key_get(req, c, project, id, kid);
    else
        key_change(req, c, project, id, kid, verb);
out:
    wispd_caller_free(c);
    free(kid);
    free(id);
}
