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

struct wispd wispd;

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
    struct wispd_caller *c = wisp_xcalloc(1, sizeof(*c));
    const char *why;
    if (wisp_token_open(wispd.keyring, tok, (int64_t)time(NULL), &c->claims, &why) != WISP_OK) {
        char fp[9];
        wisp_log_fingerprint(tok, strlen(tok), fp);
        wisp_log_info("auth", "rejected token %s: %s", fp, why);
        free(c);
        wisp_api_unauthenticated(req, why);
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

void wispd_cond_env_project(struct wisp_cond_env *env, const char *name)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    env->resource_name = name;
    env->resource_type = "cloudresourcemanager.googleapis.com/Project";
    env->resource_service = "cloudresourcemanager.googleapis.com";
    env->request_time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wispd_check_project(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const char *permission,
                        const char *project_id)
{
    char name[300];
    snprintf(name, sizeof(name), "projects/%s", project_id);
    json_t *policy = NULL;
    enum wisp_err err = wispd_get_json(txn, "iampolicy", name, &policy, NULL);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        return 0;
    }
    const json_t *policies[1] = {policy};
    struct wisp_cond_env env;
    wispd_cond_env_project(&env, name);
    struct wisp_iam_target target = {.resource = name, .policies = policies, .n_policies = 1,
                                     .env = &env};
    char why[256];
    int ok = wisp_authorize(&c->who, permission, &target, why, sizeof(why));
    json_decref(policy);
    if (!ok) {
        wisp_log_info("iam", "deny %s %s %s: %s", c->principal, permission, name, why);
        wisp_api_denied(req, c->principal, permission, name);
    }
    return ok;
}
