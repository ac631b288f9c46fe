/* SPDX-License-Identifier: Apache-2.0 */
/* Security Token Service v1: POST /v1/token exchanges a Kubernetes
 * ServiceAccount token from a cluster of a workload pool for a federated
 * access token whose principal is
 *   principal://iam.googleapis.com/projects/NUMBER/locations/global/
 *     workloadIdentityPools/POOL/subject/ns/NS/sa/KSA
 * The token must verify against a key of a cluster in that pool (wisp/ksa.h)
 * and name a ServiceAccount (and pod, when bound) that still exist with the
 * same UIDs, so a token outlives neither. Errors are RFC 6749 JSON. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/ksa.h"
#include "wisp/log.h"
#include "wisp/sts.h"
#include "../wispd.h"

#define STS_LIFETIME 3600

static void oauth_error(struct wisp_http_req *req, int code, const char *error, const char *desc)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    wisp_http_respond(req, code, "application/json; charset=utf-8", text, strlen(text));
    free(text);
}

/* The Kubernetes objects a token names must still exist with its UIDs.
 * They live under kind "kube:serviceaccount" / "kube:pod", name
 * "ISSUER NAMESPACE NAME", body the Kubernetes object (written by the
 * cluster's Kubernetes API, src/wispd/kube/). */
static int binding_live(struct wisp_txn *txn, const struct wisp_ksa_claims *c, char *why,
                        size_t len)
{
    char name[1024];
    json_t *doc = NULL;
    snprintf(name, sizeof(name), "%s %s %s", c->iss, c->ns, c->sa);
    if (wispd_get_json(txn, "kube:serviceaccount", name, &doc, NULL) != WISP_OK) {
        snprintf(why, len, "the ServiceAccount %s/%s no longer exists", c->ns, c->sa);
        return 0;
    }
    const char *uid = json_string_value(json_object_get(json_object_get(doc, "metadata"), "uid"));
    int ok = uid && c->sa_uid && strcmp(uid, c->sa_uid) == 0;
    json_decref(doc);
    if (!ok) {
        snprintf(why, len, "the ServiceAccount %s/%s was recreated since the token was issued",
                 c->ns, c->sa);
        return 0;
    }
    if (!c->pod)
        return 1;
    snprintf(name, sizeof(name), "%s %s %s", c->iss, c->ns, c->pod);
    doc = NULL;
    if (wispd_get_json(txn, "kube:pod", name, &doc, NULL) != WISP_OK) {
        snprintf(why, len, "the pod %s/%s the token is bound to no longer exists", c->ns, c->pod);
        return 0;
    }
    uid = json_string_value(json_object_get(json_object_get(doc, "metadata"), "uid"));
    ok = uid && c->pod_uid && strcmp(uid, c->pod_uid) == 0;
    json_decref(doc);
    if (!ok)
        snprintf(why, len, "the pod %s/%s was recreated since the token was issued", c->ns,
                 c->pod);
    return ok;
}

static void exchange(struct wisp_http_req *req)
{
    struct wisp_sts_req r;
    const char *code;
    char why[512];
    if (wisp_http_header(req, "authorization")) {
        oauth_error(req, 400, "invalid_request",
                    "The token endpoint does not take an Authorization header.");
        return;
    }
    if (wisp_sts_req_parse(req->body, req->body_len, wisp_http_header(req, "content-type"), &r,
                           &code, why, sizeof(why)) != WISP_OK) {
        oauth_error(req, 400, code, why);
        return;
    }
    struct wisp_txn *txn = NULL;
    json_t *keys = NULL, *project = NULL;
    struct wisp_ksa_key *kv = NULL;
    struct wisp_ksa_claims claims = {0};
    char *tok = NULL;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        oauth_error(req, 503, "temporarily_unavailable", "The token service is busy.");
        goto out;
    }
    keys = wispd_issuer_pool_keys(txn, r.pool);
    size_t n = 0, i;
    json_t *k;
    kv = wisp_xcalloc(json_array_size(keys) + 1, sizeof(*kv));
    json_array_foreach(keys, i, k) {
        const char *issuer = json_string_value(json_object_get(k, "issuer"));
        /* identitynamespace:POOL:PROVIDER names one cluster: trust only it. */
        if (r.provider && strcmp(issuer, r.provider) != 0)
            continue;
        kv[n++] = (struct wisp_ksa_key){json_string_value(json_object_get(k, "kid")), issuer,
                                        json_string_value(json_object_get(k, "publicKeyPem"))};
    }
    if (!n) {
        oauth_error(req, 400, "invalid_target",
                    "The audience names a workload pool or provider with no cluster.");
        goto out;
    }
    if (wisp_ksa_verify(r.subject_token, kv, n, r.pool, (int64_t)time(NULL), &claims, why,
                        sizeof(why)) != WISP_OK) {
        char fp[9];
        wisp_log_fingerprint(r.subject_token, strlen(r.subject_token), fp);
        wisp_log_info("sts", "refused subject token %s: %s", fp, why);
        oauth_error(req, 400, "invalid_grant", why);
        goto out;
    }
    if (!binding_live(txn, &claims, why, sizeof(why))) {
        oauth_error(req, 400, "invalid_grant", why);
        goto out;
    }
    /* The pool is PROJECT_ID.svc.id.goog; principals name the number. */
    size_t pl = strlen(r.pool);
    char *pid = pl > 12 ? wisp_xstrndup(r.pool, pl - 12) : wisp_xstrdup("");
    if (wispd_get_json(txn, "project", pid, &project, NULL) != WISP_OK ||
        strcmp(r.pool + (pl > 12 ? pl - 12 : 0), ".svc.id.goog") != 0) {
        free(pid);
        oauth_error(req, 400, "invalid_target", "The workload pool's project does not exist.");
        goto out;
    }
    free(pid);
    int64_t now = (int64_t)time(NULL);
    struct wisp_token_claims tc = {
        .iat = now, .exp = now + STS_LIFETIME,
        .project_number = (char *)json_string_value(json_object_get(project, "projectNumber")),
        .pool = r.pool, .ns = claims.ns, .ksa = claims.sa, .ksa_uid = claims.sa_uid,
        .cluster = claims.iss, .scopes = r.scope};
    tok = wisp_token_seal(wispd.keyring, &tc);
    if (!tok) {
        oauth_error(req, 500, "server_error", "No token key is configured.");
        goto out;
    }
    json_t *resp = json_pack("{s:s, s:s, s:s, s:i}", "access_token", tok, "issued_token_type",
                             WISP_STS_ACCESS_TOKEN, "token_type", "Bearer", "expires_in",
                             STS_LIFETIME - 1);
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    wisp_http_add_header(req, "Cache-Control", "no-store");
    wisp_http_respond(req, 200, "application/json; charset=utf-8", text, strlen(text));
    wisp_secret_free(text, 0);
out:
    if (tok)
        wisp_secret_free(tok, 0);
    wisp_ksa_claims_free(&claims);
    free(kv);
    json_decref(keys);
    json_decref(project);
    wisp_store_rollback(txn);
    wisp_sts_req_free(&r);
}

void wispd_sts(struct wisp_http_req *req, const char *path)
{
    if (strcmp(req->method, "POST") == 0 &&
        (strcmp(path, "/v1/token") == 0 || strcmp(path, "/v1beta/token") == 0))
        exchange(req);
    else
        oauth_error(req, 404, "invalid_request", "Unknown STS endpoint.");
}
