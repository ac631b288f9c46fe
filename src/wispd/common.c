/* SPDX-License-Identifier: Apache-2.0 */
/* What every wispd API shares: who is calling, may they, and JSON in the
 * store. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "wispd.h"
#include "authz_cache.h"

struct wispd wispd;

/* x-goog-user-project names the project a call is charged to; the caller
 * must be allowed to use it (serviceusage.services.use), as on Google. */
static int quota_project_ok(struct wisp_http_req *req, const struct wispd_caller *c)
{
    const char *q = wisp_api_quota_project(req);
    if (!q)
        return 1;
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    int ok = 0;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        return 0;
    }
    pid = wispd_project_id(txn, q);
    struct wispd_resource r;
    char name[300];
    int allowed = 0;
    char why[256];
    if (pid) {
        wispd_resource_project(&r, pid, name, sizeof(name));
        if (wispd_allowed(txn, &c->who, "serviceusage.services.use", &r, &allowed, why,
                          sizeof(why)) != WISP_OK) {
            wispd_store_error(req, WISP_EIO);
            goto out;
        }
    }
    if (!allowed) {
        wisp_api_error(req, 403, "PERMISSION_DENIED",
                       "Caller '%s' does not have required permission to use project %.64s. "
                       "Grant the caller the roles/serviceusage.serviceUsageConsumer role, or a "
                       "custom role with the serviceusage.services.use permission (USER_PROJECT_"
                       "DENIED).",
                       c->principal, q);
        goto out;
    }
    ok = 1;
out:
    free(pid);
    wisp_store_rollback(txn);
    return ok;
}

struct wispd_caller *wispd_authenticate(struct wisp_http_req *req)
{
    const char *auth = wisp_http_header(req, "authorization");
    if (!auth) {
        wisp_api_unauthenticated(req, "no Authorization header");
        return NULL;
    }
    if (strncasecmp(auth, "Bearer ", 7) != 0) {
        wisp_api_unauthenticated(req, "the Authorization header is not a Bearer token");
        return NULL;
    }
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    const char *why;
    struct wispd_caller *c = wispd_caller_open(req, tok, &why);
    if (!c) {
        wisp_api_unauthenticated(req, why);
        return NULL;
    }
    if (!quota_project_ok(req, c)) {
        wispd_caller_free(c);
        return NULL;
    }
    return c;
}

struct wispd_caller *wispd_caller_open(struct wisp_http_req *req, const char *tok,
                                       const char **why)
{
    struct wispd_caller *c = wisp_xcalloc(1, sizeof(*c));
    /* A JWT is a service account's self-signed token (google-auth sends
     * them for some APIs); anything else must be one of ours. */
    enum wisp_err err =
        strncmp(tok, "eyJ", 3) == 0
            ? wispd_self_signed_open(req, tok, &c->claims, why)
            : wisp_token_open(wispd.keyring, tok, (int64_t)time(NULL), &c->claims, why);
    /* Revoked, or (strict revocation) minted under a grant since removed. */
    if (!err && !wispd_token_live(req, &c->claims, why)) {
        wisp_token_claims_free(&c->claims);
        err = WISP_EUNAUTH;
    }
    if (err) {
        char fp[9];
        wisp_log_fingerprint(tok, strlen(tok), fp);
        wisp_log_info("auth", "rejected token %s: %s", fp, *why);
        free(c);
        return NULL;
    }
    c->who.email = c->claims.email;
    c->who.is_service_account = c->claims.is_service_account;
    c->who.project_number = c->claims.project_number;
    c->who.pool = c->claims.pool;
    c->who.ns = c->claims.ns;
    c->who.ksa = c->claims.ksa;
    c->who.ksa_uid = c->claims.ksa_uid;
    c->who.cluster_url = c->claims.cluster;
    c->principal = wisp_token_principal(&c->claims);
    return c;
}

void wispd_caller_free(struct wispd_caller *c)
{
    if (!c)
        return;
    wisp_token_claims_free(&c->claims);
    free(c->principal);
    free(c);
}

void wispd_store_error(struct wisp_http_req *req, enum wisp_err err)
{
    if (err == WISP_EBUSY)
        wisp_api_error(req, 503, NULL, "The service is busy; retry with backoff.");
    else
        wisp_api_error(req, 500, NULL, "Internal error in the store (%s).", wisp_strerror(err));
}

enum wisp_err wispd_get_json(struct wisp_txn *txn, const char *kind, const char *name,
                             json_t **out, int64_t *rev_out)
{
    struct wisp_doc doc;
    enum wisp_err err = wisp_store_get(txn, kind, name, &doc);
    if (err)
        return err;
    *out = json_loadb(doc.body, doc.body_len, 0, NULL);
    if (rev_out)
        *rev_out = doc.rev;
    wisp_store_doc_free(&doc);
    return *out ? WISP_OK : WISP_ESTORE;
}

enum wisp_err wispd_put_json(struct wisp_txn *txn, const char *kind, const char *name,
                             const json_t *obj, int64_t expect_rev, int64_t *rev_out)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    enum wisp_err err = wisp_store_put(txn, kind, name, text, strlen(text), expect_rev, rev_out);
    free(text);
    return err;
}

char *wispd_project_id(struct wisp_txn *txn, const char *id_or_number)
{
    json_t *p = NULL;
    if (wispd_get_json(txn, "project", id_or_number, &p, NULL) == WISP_OK) {
        json_decref(p);
        return wisp_xstrdup(id_or_number);
    }
    if (wispd_get_json(txn, "projectnumber", id_or_number, &p, NULL) == WISP_OK) {
        const char *id = json_string_value(json_object_get(p, "projectId"));
        char *out = id ? wisp_xstrdup(id) : NULL;
        json_decref(p);
        return out;
    }
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wispd_resource_project(struct wispd_resource *r, const char *project_id, char *buf,
                            size_t buflen)
{
    snprintf(buf, buflen, "projects/%s", project_id);
    r->name = buf;
    r->type = "cloudresourcemanager.googleapis.com/Project";
    r->service = "cloudresourcemanager.googleapis.com";
    r->project_id = project_id;
}

/* The policy chain of r as stored JSON, nearest first (see
 * wispd_authz_chain_names); entries may be NULL. Returns the number filled,
 * or -1 on a store error. The decision uses compiled copies instead
 * (authz_cache.c); explanations and write transactions read this. */
static int load_chain(struct wisp_txn *txn, const struct wispd_resource *r, json_t *out[3],
                      char names[3][WISPD_POLICY_NAME_MAX])
{
    json_t *project = NULL;
    int have_project = wispd_get_json(txn, "project", r->project_id, &project, NULL) == WISP_OK;
    const char *org =
        json_string_value(json_object_get(json_object_get(project, "parent"), "id"));
    int n = wispd_authz_chain_names(r, have_project, org, names);
    int no_org = have_project && !org;
    json_decref(project);
    for (int i = 0; i < n; i++) {
        out[i] = NULL;
        if (no_org && i == n - 1)
            break; /* "organizations/-": nothing to read */
        enum wisp_err err = wispd_get_json(txn, "iampolicy", names[i], &out[i], NULL);
        if (err && err != WISP_ENOTFOUND) {
            for (int j = 0; j < i; j++)
                json_decref(out[j]);
            return -1;
        }
    }
    return n;
}

static int64_t now_ms(void);

/* The custom roles ("projects/P/roles/R", "organizations/N/roles/R") the
 * chain's bindings name, as {name: stored role document}, for
 * wisp_iam_target.custom_roles; NULL when there are none (the common case
 * costs nothing). Roles that do not exist are left out, so they grant
 * nothing. WISP_EIO on a store failure. */
static enum wisp_err load_custom_roles(struct wisp_txn *txn, json_t *chain[3], int n,
                                       json_t **out)
{
    *out = NULL;
    for (int i = 0; i < n; i++) {
        size_t j;
        json_t *b;
        json_array_foreach(json_object_get(chain[i], "bindings"), j, b) {
            const char *role = json_string_value(json_object_get(b, "role"));
            if (!role || strncmp(role, "roles/", 6) == 0 || json_object_get(*out, role))
                continue;
            json_t *doc = NULL;
            enum wisp_err err = wispd_get_json(txn, "role", role, &doc, NULL);
            if (err == WISP_ENOTFOUND)
                continue;
            if (err) {
                json_decref(*out);
                *out = NULL;
                return WISP_EIO;
            }
            if (!*out)
                *out = json_object();
            json_object_set_new(*out, role, doc);
        }
    }
    return WISP_OK;
}

/* Builds the authorization target of r from a loaded chain. */
static void target_of(const struct wispd_resource *r, json_t *chain[3], int n,
                      char names[3][WISPD_POLICY_NAME_MAX], const char *name_ptrs[3],
                      struct wisp_cond_env *env, struct wisp_iam_target *t)
{
    for (int i = 0; i < n; i++)
        name_ptrs[i] = names[i];
    *env = (struct wisp_cond_env){r->name, r->type, r->service, now_ms()};
    *t = (struct wisp_iam_target){.resource = r->name, .policies = (const json_t **)chain,
                                  .n_policies = (size_t)n, .env = env,
                                  .policy_names = name_ptrs};
}

json_t *wispd_explain(struct wisp_txn *txn, const struct wisp_caller *who,
                      const char *permission, const struct wispd_resource *r)
{
    json_t *chain[3];
    char names[3][WISPD_POLICY_NAME_MAX];
    const char *name_ptrs[3];
    int n = load_chain(txn, r, chain, names);
    if (n < 0)
        return NULL;
    struct wisp_cond_env env;
    struct wisp_iam_target t;
    target_of(r, chain, n, names, name_ptrs, &env, &t);
    json_t *custom = NULL, *out = NULL;
    if (load_custom_roles(txn, chain, n, &custom) == WISP_OK) {
        t.custom_roles = custom;
        out = wisp_iam_explain(who, permission, &t);
    }
    json_decref(custom);
    for (int i = 0; i < n; i++)
        json_decref(chain[i]);
    return out;
}

enum wisp_err wispd_allowed(struct wisp_txn *txn, const struct wisp_caller *who,
                            const char *permission, const struct wispd_resource *r, int *allowed,
                            char *why, size_t whylen)
{
    /* A transaction that has written may roll back, and what it read must
     * not be cached then: it takes the JSON path, as do all decisions when
     * caching is off. */
    struct wispd_authz_cache *cache =
        wisp_store_txn_dirty(txn) ? NULL : wispd_authz_cache_thread();
    if (cache) {
        struct wisp_cond_env cenv = {r->name, r->type, r->service, now_ms()};
        return wispd_authz_decide(cache, txn, who, permission, r, &cenv, allowed, why, whylen);
    }
    json_t *chain[3];
    char names[3][WISPD_POLICY_NAME_MAX];
    const char *name_ptrs[3];
    int n = load_chain(txn, r, chain, names);
    if (n < 0)
        return WISP_EIO;
    struct wisp_cond_env env;
    struct wisp_iam_target target;
    target_of(r, chain, n, names, name_ptrs, &env, &target);
    json_t *custom = NULL;
    enum wisp_err err = load_custom_roles(txn, chain, n, &custom);
    if (!err) {
        target.custom_roles = custom;
        *allowed = wisp_authorize(who, permission, &target, why, whylen);
    }
    json_decref(custom);
    for (int i = 0; i < n; i++)
        json_decref(chain[i]);
    return err;
}

int wispd_check(struct wisp_http_req *req, struct wisp_txn *txn, const struct wispd_caller *c,
                const char *permission, const struct wispd_resource *r)
{
    char why[256];
    int ok = 0;
    enum wisp_err err = wispd_allowed(txn, &c->who, permission, r, &ok, why, sizeof(why));
    if (err) {
        wispd_store_error(req, err);
        return 0;
    }
    if (!ok) {
        wisp_log_info("iam", "deny %s %s %s: %s", c->principal, permission, r->name, why);
        wisp_api_denied(req, c->principal, permission, r->name);
    }
    return ok;
}

int wispd_check_project(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const char *permission,
                        const char *project_id)
{
    struct wispd_resource r;
    char name[300];
    wispd_resource_project(&r, project_id, name, sizeof(name));
    return wispd_check(req, txn, c, permission, &r);
}
