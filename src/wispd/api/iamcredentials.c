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

/* Where a walk of a delegation chain stopped. */
enum walk { WALK_OK, WALK_DENIED, WALK_BAD_DELEGATE, WALK_STORE };
struct walk_stop {
    char principal[400]; /* the hop that was refused, member syntax */
    const char *permission;
    char resource[400];  /* the account it was refused on, or the bad delegate */
    char why[256];
};

/* Walks who → delegates… → target: each hop needs implicitDelegation on
 * the next account, the last needs permission on the target. Decides
 * without answering; *stop says where a refused walk stopped. */
static enum walk chain_walk(struct wisp_txn *txn, const struct wisp_caller *caller,
                            const json_t *delegates, const char *permission,
                            const json_t *target, struct walk_stop *stop)
{
    struct wisp_caller who = *caller;
    json_t *hop_sa = NULL;
    size_t n = json_array_size(delegates);
    enum walk res = WALK_OK;
    for (size_t i = 0; i <= n && res == WALK_OK; i++) {
        const json_t *next = target;
        json_t *delegate = NULL;
        const char *perm = permission;
        if (i < n) {
            const char *d = json_string_value(json_array_get(delegates, i));
            const char *slash = d ? strrchr(d, '/') : NULL;
            delegate = find_sa(txn, slash ? slash + 1 : (d ? d : ""));
            if (!delegate) {
                snprintf(stop->resource, sizeof(stop->resource), "%s", d ? d : "");
                res = WALK_BAD_DELEGATE;
                break;
            }
            next = delegate;
            perm = "iam.serviceAccounts.implicitDelegation";
        }
        struct wispd_resource r;
        int allowed = 0;
        sa_resource(&r, next, stop->resource, sizeof(stop->resource));
        if (wispd_allowed(txn, &who, perm, &r, &allowed, stop->why, sizeof(stop->why)) !=
            WISP_OK) {
            res = WALK_STORE;
        } else if (!allowed) {
            stop->permission = perm;
            res = WALK_DENIED;
        }
        if (res != WALK_OK) {
            json_decref(delegate);
            break;
        }
        if (i < n) {
            /* The delegate acts next, as itself. */
            json_decref(hop_sa);
            hop_sa = delegate;
            snprintf(stop->principal, sizeof(stop->principal), "serviceAccount:%s",
                     json_string_value(json_object_get(hop_sa, "email")));
            memset(&who, 0, sizeof(who));
            who.email = json_string_value(json_object_get(hop_sa, "email"));
            who.is_service_account = 1;
        }
    }
    json_decref(hop_sa);
    return res;
}

/* chain_walk for a request: answers the denial itself and returns 0 when a
 * hop is refused. */
static int chain_allows(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const json_t *delegates,
                        const char *permission, const json_t *target)
{
    struct walk_stop stop;
    snprintf(stop.principal, sizeof(stop.principal), "%s", c->principal);
    if (json_array_size(delegates) > MAX_DELEGATES) {
        wisp_api_error(req, 400, NULL, "At most %d delegates are allowed.", MAX_DELEGATES);
        return 0;
    }
    switch (chain_walk(txn, &c->who, delegates, permission, target, &stop)) {
    case WALK_OK:
        return 1;
    case WALK_BAD_DELEGATE:
        wisp_api_error(req, 400, NULL, "Delegate '%.200s' is not a service account.",
                       stop.resource);
        return 0;
    case WALK_STORE:
        wispd_store_error(req, WISP_EIO);
        return 0;
    case WALK_DENIED:
        break;
    }
    wisp_log_info("iam", "deny %s %s %s: %s", stop.principal, stop.permission, stop.resource,
                  stop.why);
    wisp_api_denied(req, stop.principal, stop.permission, stop.resource);
    return 0;
}

/* --- delegation chains carried by minted tokens ----------------------------------- */

/* A minted token records, per minting, who asked (all the attributes
 * principal sets match on), through which delegates, for which account:
 *   [{"caller": {...}, "delegates": [...], "target": EMAIL}, ...]
 * A token minted by a caller whose own token was minted carries the
 * caller's segments first, so every grant along the way is re-checked. */
#define MAX_SEGMENTS 4

static json_t *caller_json(const struct wisp_caller *w)
{
    json_t *o = json_object();
    const struct {
        const char *key, *val;
    } f[] = {{"email", w->email}, {"pn", w->project_number}, {"pool", w->pool},
             {"ns", w->ns},       {"ksa", w->ksa},           {"uid", w->ksa_uid},
             {"cluster", w->cluster_url}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].val)
            json_object_set_new(o, f[i].key, json_string(f[i].val));
    }
    if (w->is_service_account)
        json_object_set_new(o, "sa", json_true());
    return o;
}

static void caller_from_json(const json_t *o, struct wisp_caller *w)
{
    memset(w, 0, sizeof(*w));
    w->email = json_string_value(json_object_get(o, "email"));
    w->is_service_account = json_is_true(json_object_get(o, "sa"));
    w->project_number = json_string_value(json_object_get(o, "pn"));
    w->pool = json_string_value(json_object_get(o, "pool"));
    w->ns = json_string_value(json_object_get(o, "ns"));
    w->ksa = json_string_value(json_object_get(o, "ksa"));
    w->ksa_uid = json_string_value(json_object_get(o, "uid"));
    w->cluster_url = json_string_value(json_object_get(o, "cluster"));
}

/* The chain for a token minted for target by c through delegates, as
 * compact JSON (caller frees), or NULL when it would nest too deep. */
static char *chain_for(const struct wispd_caller *c, const json_t *delegates, const char *target)
{
    json_t *chain = c->claims.chain ? json_loads(c->claims.chain, 0, NULL) : json_array();
    char *text = NULL;
    if (json_is_array(chain) && json_array_size(chain) < MAX_SEGMENTS) {
        json_t *d = delegates ? json_incref((json_t *)delegates) : json_array();
        json_array_append_new(chain, json_pack("{s:o, s:o, s:s}", "caller", caller_json(&c->who),
                                               "delegates", d, "target", target));
        text = json_dumps(chain, JSON_COMPACT);
    }
    json_decref(chain);
    return text;
}

int wispd_delegation_holds(struct wisp_txn *txn, const char *chain, const char *email)
{
    json_t *segs = json_loads(chain, 0, NULL);
    size_t n = json_array_size(segs), i;
    json_t *seg;
    int holds = n > 0 && email;
    json_array_foreach(segs, i, seg) {
        const char *target = json_string_value(json_object_get(seg, "target"));
        json_t *sa = target ? find_sa(txn, target) : NULL;
        if (!sa || json_is_true(json_object_get(sa, "disabled")) ||
            (i == n - 1 && strcmp(target, email) != 0)) {
            json_decref(sa);
            holds = 0;
            break;
        }
        struct wisp_caller who;
        struct walk_stop stop;
        caller_from_json(json_object_get(seg, "caller"), &who);
        enum walk w = chain_walk(txn, &who, json_object_get(seg, "delegates"),
                                 "iam.serviceAccounts.getAccessToken", sa, &stop);
        json_decref(sa);
        if (w != WALK_OK) {
            holds = w == WALK_STORE ? -1 : 0;
            break;
        }
    }
    json_decref(segs);
    return holds;
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

static void access_token(struct wisp_http_req *req, const struct wispd_caller *c,
                         const json_t *body, const json_t *sa)
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
    const char *email = json_string_value(json_object_get(sa, "email"));
    char *chain = chain_for(c, json_object_get(body, "delegates"), email);
    if (!chain) {
        wisp_buf_free(&sc);
        wisp_api_error(req, 400, NULL, "Impersonation is nested more than %d deep.",
                       MAX_SEGMENTS);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    struct wisp_token_claims tc = {
        .iat = now, .exp = now + lifetime, .is_service_account = 1, .email = (char *)email,
        .scopes = sc.data, .quota_project = (char *)wisp_api_quota_project(req),
        .chain = chain};
    char *tok = wisp_token_seal(wispd.keyring, &tc);
    wisp_buf_free(&sc);
    free(chain);
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

static void id_token(struct wisp_http_req *req, struct wisp_store *st, const json_t *body,
                     const json_t *sa)
{
    const char *aud = json_string_value(json_object_get(body, "audience"));
    if (!aud || !*aud) {
        wisp_api_error(req, 400, NULL, "Audience required.");
        return;
    }
    enum wisp_err err;
    char *jwt = wispd_sa_id_token(st, sa, aud,
                                  json_is_true(json_object_get(body, "includeEmail")), NULL,
                                  &err);
    if (!jwt)
        wispd_store_error(req, err);
    else
        wisp_api_json(req, 200, json_pack("{s:s}", "token", jwt));
    free(jwt);
}

static void sign_blob(struct wisp_http_req *req, struct wisp_store *st, const json_t *body,
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
    if (wispd_sa_system_key_load(st, json_string_value(json_object_get(sa, "email")), &kid,
                                 &pem) != WISP_OK) {
        free(raw);
        wispd_store_error(req, WISP_EIO);
        return;
    }
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int ok = wisp_rsa_sign_sha256(pem, raw, n, &sig, &siglen) == WISP_OK;
    if (ok) {
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

static void sign_jwt(struct wisp_http_req *req, struct wisp_store *st, const json_t *body,
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
    if (wispd_sa_system_key_load(st, json_string_value(json_object_get(sa, "email")), &kid,
                                 &pem) != WISP_OK) {
        json_decref(claims);
        wispd_store_error(req, WISP_EIO);
        return;
    }
    char *jwt = wisp_jwt_sign_rs256(claims, kid, pem);
    json_decref(claims);
    if (jwt)
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
    /* Checks read; a signing key is read (or created on first use) after
     * this transaction ends, and nothing is held while RSA signs. */
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
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
    wisp_store_rollback(txn);
    txn = NULL;
    if (strcmp(method, "generateAccessToken") == 0)
        access_token(req, c, body, sa);
    else if (strcmp(method, "generateIdToken") == 0)
        id_token(req, wispd_store(req), body, sa);
    else if (strcmp(method, "signBlob") == 0)
        sign_blob(req, wispd_store(req), body, sa);
    else
        sign_jwt(req, wispd_store(req), body, sa);
    wispd_usage_count(req, charged, "iamcredentials.googleapis.com", method);
    free(charged);
out:
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}
