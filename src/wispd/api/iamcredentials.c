/* SPDX-License-Identifier: Apache-2.0 */
/* IAM Service Account Credentials v1: generateAccessToken, generateIdToken,
 * signBlob and signJwt for a service account, each allowed only if the
 * caller (or the last of its delegates) holds the matching permission on
 * the account: what `roles/iam.workloadIdentityUser` grants a KSA. Calls
 * are counted for `wisp usage` under the quota project, or the account's
 * own project. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "wisp/buf.h"
#include "wisp/jose.h"
#include "wisp/log.h"
#include "../wispd.h"

#define MAX_LIFETIME 3600
#define MAX_DELEGATES 10

static const struct wisp_jfield body_fields[] = {
    {"delegates", WISP_J_ARRAY, WISP_J_STRING}, {"scope", WISP_J_ARRAY, WISP_J_STRING},
    {"lifetime", WISP_J_STRING},                {"audience", WISP_J_STRING},
    {"includeEmail", WISP_J_BOOL},              {"payload", WISP_J_STRING},
    {NULL}};

/* The methods: what each needs on the target account. */
static const struct {
    const char *method;
    const char *permission;
} methods[] = {
    {"generateAccessToken", "iam.serviceAccounts.getAccessToken"},
    {"generateIdToken", "iam.serviceAccounts.getOpenIdToken"},
    {"signBlob", "iam.serviceAccounts.signBlob"},
    {"signJwt", "iam.serviceAccounts.signJwt"},
};

struct sa_find {
    const char *unique_id;
    char *email;
};

static int match_uid(const struct wisp_doc *doc, void *arg)
{
    struct sa_find *f = arg;
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    const char *uid = json_string_value(json_object_get(o, "uniqueId"));
    if (uid && strcmp(uid, f->unique_id) == 0)
        f->email = wisp_xstrdup(doc->name);
    json_decref(o);
    return f->email != NULL;
}

/* Loads a service account by email or unique ID; NULL if there is none. */
static json_t *find_sa(struct wisp_txn *txn, const char *id)
{
    json_t *sa = NULL;
    if (strchr(id, '@')) {
        wispd_get_json(txn, "sa", id, &sa, NULL);
        return sa;
    }
    struct sa_find f = {id, NULL};
    wisp_store_list(txn, "sa", "", NULL, 0, match_uid, &f, NULL);
    if (f.email)
        wispd_get_json(txn, "sa", f.email, &sa, NULL);
    free(f.email);
    return sa;
}

static void sa_resource(struct wispd_resource *r, const json_t *sa, char *buf, size_t len)
{
    snprintf(buf, len, "projects/%s/serviceAccounts/%s",
             json_string_value(json_object_get(sa, "projectId")),
             json_string_value(json_object_get(sa, "email")));
    r->name = buf;
    r->type = "iam.googleapis.com/ServiceAccount";
    r->service = "iam.googleapis.com";
    r->project_id = json_string_value(json_object_get(sa, "projectId"));
}

/* Walks caller → delegates… → target: each hop needs implicitDelegation on
 * the next account, the last needs permission on the target. Answers the
 * denial itself and returns 0 when a hop is refused. */
static int chain_allows(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const json_t *delegates,
                        const char *permission, const json_t *target)
{
    struct wisp_caller who = c->who;
    const char *principal = c->principal;
    char *hop_principal = NULL;
    json_t *hop_sa = NULL;
    size_t n = json_array_size(delegates);
    int ok = 0;
    if (n > MAX_DELEGATES) {
        wisp_api_error(req, 400, NULL, "At most %d delegates are allowed.", MAX_DELEGATES);
        return 0;
    }
    for (size_t i = 0; i <= n; i++) {
        const json_t *next = target;
        json_t *delegate = NULL;
        const char *perm = permission;
        if (i < n) {
            const char *d = json_string_value(json_array_get(delegates, i));
            const char *slash = d ? strrchr(d, '/') : NULL;
            delegate = find_sa(txn, slash ? slash + 1 : (d ? d : ""));
            if (!delegate) {
                wisp_api_error(req, 400, NULL, "Delegate '%.200s' is not a service account.",
                               d ? d : "");
                goto out;
            }
            next = delegate;
            perm = "iam.serviceAccounts.implicitDelegation";
        }
        struct wispd_resource r;
        char name[400], why[256];
        int allowed = 0;
        sa_resource(&r, next, name, sizeof(name));
        if (wispd_allowed(txn, &who, perm, &r, &allowed, why, sizeof(why)) != WISP_OK) {
            json_decref(delegate);
            wispd_store_error(req, WISP_EIO);
            goto out;
        }
        if (!allowed) {
            wisp_log_info("iam", "deny %s %s %s: %s", principal, perm, name, why);
            wisp_api_denied(req, principal, perm, name);
            json_decref(delegate);
            goto out;
        }
        if (i < n) {
            /* The delegate acts next, as itself. */
            json_decref(hop_sa);
            hop_sa = delegate;
            free(hop_principal);
            hop_principal = wisp_xasprintf(
                "serviceAccount:%s", json_string_value(json_object_get(hop_sa, "email")));
            memset(&who, 0, sizeof(who));
            who.email = json_string_value(json_object_get(hop_sa, "email"));
            who.is_service_account = 1;
            principal = hop_principal;
        }
    }
    ok = 1;
out:
    json_decref(hop_sa);
    free(hop_principal);
    return ok;
}

static void rfc3339(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "3600s" → 3600; -1 if malformed. */
static long parse_duration(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0 || strcmp(end, "s") != 0)
        return -1;
    return v;
}

static void access_token(struct wisp_http_req *req, const json_t *body, const json_t *sa)
{
    const json_t *scopes = json_object_get(body, "scope");
    if (!json_array_size(scopes)) {
        wisp_api_error(req, 400, NULL, "Scope required.");
        return;
    }
    long lifetime = MAX_LIFETIME;
    const char *lt = json_string_value(json_object_get(body, "lifetime"));
    if (lt && ((lifetime = parse_duration(lt)) < 0 || lifetime > MAX_LIFETIME)) {
        wisp_api_error(req, 400, NULL,
                       "The lifetime '%.32s' is invalid: it must be at most 3600s (as \"Ns\").",
                       lt);
        return;
    }
    struct wisp_buf sc;
    wisp_buf_init(&sc, 4096);
    size_t i;
    json_t *s;
    json_array_foreach(scopes, i, s) {
        if (wisp_buf_printf(&sc, "%s%s", i ? " " : "", json_string_value(s))) {
            wisp_buf_free(&sc);
            wisp_api_error(req, 400, NULL, "Too many scopes.");
            return;
        }
    }
    int64_t now = (int64_t)time(NULL);
    struct wisp_token_claims tc = {
        .iat = now, .exp = now + lifetime, .is_service_account = 1,
        .email = (char *)json_string_value(json_object_get(sa, "email")),
        .scopes = sc.data, .quota_project = (char *)wisp_api_quota_project(req)};
    char *tok = wisp_token_seal(wispd.keyring, &tc);
    wisp_buf_free(&sc);
    if (!tok) {
        wisp_api_error(req, 500, NULL, "No token key is configured.");
        return;
    }
    char exp[32];
    rfc3339(tc.exp, exp, sizeof(exp));
    json_t *resp = json_pack("{s:s, s:s}", "accessToken", tok, "expireTime", exp);
    wisp_secret_free(tok, 0);
    wisp_http_add_header(req, "Cache-Control", "no-store");
    wisp_api_json(req, 200, resp);
}

/* Signs claims (a JSON object) with key (kid, pem). Caller frees. */
static char *sign(const json_t *claims, const char *kid, const char *pem)
{
    return wisp_jwt_sign_rs256(claims, kid, pem);
}

static void id_token(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *body,
                     const json_t *sa)
{
    const char *aud = json_string_value(json_object_get(body, "audience"));
    if (!aud || !*aud) {
        wisp_api_error(req, 400, NULL, "Audience required.");
        return;
    }
    char *kid = NULL, *pem = NULL;
    if (wispd_google_key(txn, &kid, &pem) != WISP_OK) {
        wispd_store_error(req, WISP_EIO);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    const char *uid = json_string_value(json_object_get(sa, "uniqueId"));
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss",
                               "https://accounts.google.com", "aud", aud, "azp", uid, "sub", uid,
                               "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    if (json_is_true(json_object_get(body, "includeEmail"))) {
        json_object_set(claims, "email", json_object_get(sa, "email"));
        json_object_set_new(claims, "email_verified", json_true());
    }
    char *jwt = sign(claims, kid, pem);
    json_decref(claims);
    if (wisp_store_commit(txn) != WISP_OK || !jwt)
        wisp_api_error(req, 500, NULL, "Could not sign the ID token.");
    else
        wisp_api_json(req, 200, json_pack("{s:s}", "token", jwt));
    free(jwt);
    free(kid);
    wisp_secret_free(pem, 0);
}

static void sign_blob(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *body,
                      const json_t *sa)
{
    const char *payload = json_string_value(json_object_get(body, "payload"));
    size_t n = 0;
    unsigned char *raw = payload ? wisp_b64_decode(payload, &n) : NULL;
    if (!raw) {
        wisp_api_error(req, 400, NULL, "Invalid value at 'payload' (TYPE_BYTES): base64 "
                                       "expected.");
        return;
    }
    char *kid = NULL, *pem = NULL;
    if (wispd_sa_system_key(txn, json_string_value(json_object_get(sa, "email")), &kid, &pem) !=
        WISP_OK) {
        free(raw);
        wispd_store_error(req, WISP_EIO);
        return;
    }
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int ok = wisp_rsa_sign_sha256(pem, raw, n, &sig, &siglen) == WISP_OK;
    if (ok && wisp_store_commit(txn) == WISP_OK) {
        char *b = wisp_b64_encode(sig, siglen);
        wisp_api_json(req, 200, json_pack("{s:s, s:s}", "keyId", kid, "signedBlob", b));
        free(b);
    } else {
        wisp_api_error(req, 500, NULL, "Could not sign the blob.");
    }
    free(sig);
    free(raw);
    free(kid);
    wisp_secret_free(pem, 0);
}

static void sign_jwt(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *body,
                     const json_t *sa)
{
    const char *payload = json_string_value(json_object_get(body, "payload"));
    json_t *claims = payload ? json_loads(payload, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(claims)) {
        json_decref(claims);
        wisp_api_error(req, 400, NULL, "Invalid JWT payload: a JSON object is expected.");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    json_t *exp = json_object_get(claims, "exp");
    if (exp && (!json_is_integer(exp) || json_integer_value(exp) < now ||
                json_integer_value(exp) > now + 12 * 3600)) {
        json_decref(claims);
        wisp_api_error(req, 400, NULL, "Invalid JWT payload: exp must be an integer timestamp "
                                       "not in the past and at most 12 hours ahead.");
        return;
    }
    char *kid = NULL, *pem = NULL;
    if (wispd_sa_system_key(txn, json_string_value(json_object_get(sa, "email")), &kid, &pem) !=
        WISP_OK) {
        json_decref(claims);
        wispd_store_error(req, WISP_EIO);
        return;
    }
    char *jwt = sign(claims, kid, pem);
    json_decref(claims);
    if (jwt && wisp_store_commit(txn) == WISP_OK)
        wisp_api_json(req, 200, json_pack("{s:s, s:s}", "keyId", kid, "signedJwt", jwt));
    else
        wisp_api_error(req, 500, NULL, "Could not sign the JWT.");
    free(jwt);
    free(kid);
    wisp_secret_free(pem, 0);
}

void wispd_iamcredentials(struct wisp_http_req *req, const char *path)
{
    /* /v1/projects/-/serviceAccounts/ID:method */
    char project[128], id[300], method[40];
    if (strcmp(req->method, "POST") != 0 ||
        sscanf(path, "/v1/projects/%127[^/]/serviceAccounts/%299[^:/]:%39s", project, id,
               method) != 3) {
        wisp_api_error(req, 404, NULL, "Unknown IAM Credentials method: %.200s", path);
        return;
    }
    const char *perm = NULL;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].method, method) == 0)
            perm = methods[i].permission;
    }
    if (!perm) {
        wisp_api_error(req, 404, NULL, "Unknown IAM Credentials method: %.40s", method);
        return;
    }
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sa = NULL;
    if (!c)
        return;
    body = wisp_api_body(req, body_fields);
    if (!body)
        goto out;
    /* Signing may create a key on first use, so those methods write. */
    int write = strcmp(method, "generateAccessToken") != 0;
    enum wisp_err err = wisp_store_begin(wispd_store(req), write, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    sa = find_sa(txn, id);
    if (!sa || json_is_true(json_object_get(sa, "disabled"))) {
        /* Google answers a missing account the same way as a refused one,
         * so that account names cannot be probed. */
        char name[400];
        snprintf(name, sizeof(name), "projects/-/serviceAccounts/%s", id);
        wisp_api_denied(req, c->principal, perm, name);
        goto out;
    }
    if (!chain_allows(req, txn, c, json_object_get(body, "delegates"), perm, sa))
        goto out;
    const char *quota = wisp_api_quota_project(req);
    char *charged = wisp_xstrdup(quota ? quota
                                       : json_string_value(json_object_get(sa, "projectId")));
    if (strcmp(method, "generateAccessToken") == 0)
        access_token(req, body, sa);
    else if (strcmp(method, "generateIdToken") == 0)
        id_token(req, txn, body, sa);
    else if (strcmp(method, "signBlob") == 0)
        sign_blob(req, txn, body, sa);
    else
        sign_jwt(req, txn, body, sa);
    /* The methods that wrote have committed; end any read. */
    wisp_store_rollback(txn);
    txn = NULL;
    wispd_usage_count(req, charged, "iamcredentials.googleapis.com", method);
    free(charged);
out:
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}
