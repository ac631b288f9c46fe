/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud Resource Manager v1: the organization above every project
 * (organizations.get, organizations.search) and projects.getAncestry, which
 * `gcloud organizations list/describe` and `gcloud projects get-ancestors`
 * call. A state directory has exactly one organization (bootstrap.c). */
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "../wispd.h"

/* The organization's document, if id names it (NULL otherwise). */
static json_t *org_doc(struct wisp_txn *txn, const char *id)
{
    json_t *meta = NULL, *org = NULL;
    if (wispd_get_json(txn, "meta", "organization", &meta, NULL) == WISP_OK &&
        (!id || strcmp(json_string_value(json_object_get(meta, "id")) ?: "", id) == 0))
        wispd_get_json(txn, "organization", json_string_value(json_object_get(meta, "id")), &org,
                       NULL);
    json_decref(meta);
    return org;
}

/* Whether the caller may see the organization: resourcemanager.organizations.get
 * on its own policy, the only policy above an organization. */
static int org_visible(struct wisp_txn *txn, const struct wispd_caller *c, const char *name,
                       struct wispd_resource *r)
{
    *r = (struct wispd_resource){name, "cloudresourcemanager.googleapis.com/Organization",
                                 "cloudresourcemanager.googleapis.com", ""};
    int ok = 0;
    wispd_allowed(txn, &c->who, "resourcemanager.organizations.get", r, &ok, NULL, 0);
    return ok;
}

/* Google's search filter: `domain:D`, `owner.directoryCustomerId:C` (field
 * names case-insensitive), or empty. 1 match, 0 no match, -1 not understood. */
static int filter_match(const char *filter, const json_t *org)
{
    if (!filter || !*filter)
        return 1;
    const char *colon = strchr(filter, ':');
    if (!colon)
        return -1;
    size_t flen = (size_t)(colon - filter);
    const char *want = colon + 1, *have;
    if (flen == 6 && strncasecmp(filter, "domain", 6) == 0)
        have = json_string_value(json_object_get(org, "displayName"));
    else if (flen == 25 && strncasecmp(filter, "owner.directoryCustomerId", 25) == 0)
        have = json_string_value(
            json_object_get(json_object_get(org, "owner"), "directoryCustomerId"));
    else
        return -1;
    return have && strcmp(have, want) == 0;
}

static void org_get(struct wisp_http_req *req, const char *id)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *org = NULL;
    char name[160];
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    snprintf(name, sizeof(name), "organizations/%.100s", id);
    org = org_doc(txn, id);
    struct wispd_resource r;
    /* As for projects, an organization that does not exist is a 403, so
     * that IDs cannot be probed. */
    if (!org) {
        wisp_api_denied(req, c->principal, "resourcemanager.organizations.get", name);
        goto out;
    }
    if (!org_visible(txn, c, name, &r)) {
        wispd_check(req, txn, c, "resourcemanager.organizations.get", &r);
        goto out;
    }
    wisp_api_json(req, 200, org);
    org = NULL;
out:
    json_decref(org);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* The organization's own allow policy ("organizations/N"): the roles an
 * organization administrator grants there reach every project below. */
static void org_iam(struct wisp_http_req *req, const char *id, const char *verb)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *org = org_doc(txn, id);
    wisp_store_rollback(txn);
    txn = NULL;
    char name[160];
    snprintf(name, sizeof(name), "organizations/%.100s", id);
    if (!org) {
        wisp_api_denied(req, c->principal,
                        strcmp(verb, "setIamPolicy") == 0
                            ? "resourcemanager.organizations.setIamPolicy"
                            : "resourcemanager.organizations.getIamPolicy",
                        name);
        goto out;
    }
    json_decref(org);
    struct wispd_iam_resource r = {
        .res = {name, "cloudresourcemanager.googleapis.com/Organization",
                "cloudresourcemanager.googleapis.com", ""},
        .get_perm = "resourcemanager.organizations.getIamPolicy",
        .set_perm = "resourcemanager.organizations.setIamPolicy"};
    wispd_crm_iam(req, c, &r, verb);
out:
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

static const struct wisp_jfield search_fields[] = {
    {"filter", WISP_J_STRING}, {"pageSize", WISP_J_INT}, {"pageToken", WISP_J_STRING}, {NULL}};

/* One organization at most, so a page always holds all of it and there is
 * never a next page token. */
static void org_search(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *org = NULL, *resp = json_object();
    if (!c)
        goto out;
    body = wisp_api_body(req, search_fields);
    if (!body)
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    org = org_doc(txn, NULL);
    const char *filter = json_string_value(json_object_get(body, "filter"));
    int m = org ? filter_match(filter, org) : 1;
    if (m < 0) {
        wisp_api_error(req, 400, NULL,
                       "Invalid filter '%.200s': use domain:DOMAIN or "
                       "owner.directoryCustomerId:ID.",
                       filter);
        goto out;
    }
    struct wispd_resource r;
    if (org && m && org_visible(txn, c, json_string_value(json_object_get(org, "name")), &r))
        json_object_set_new(resp, "organizations", json_pack("[O]", org));
    wisp_api_json(req, 200, resp);
    resp = NULL;
out:
    json_decref(resp);
    json_decref(org);
    json_decref(body);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

void wispd_crm_ancestry(struct wisp_http_req *req, const char *id)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    json_t *p = NULL, *body = NULL;
    static const struct wisp_jfield no_fields[] = {{NULL}};
    if (!c)
        return;
    body = wisp_api_body(req, no_fields);
    if (!body)
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, id);
    if (!pid) {
        wisp_api_denied(req, c->principal, "resourcemanager.projects.get", "projects/unknown");
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "resourcemanager.projects.get", pid) ||
        wispd_get_json(txn, "project", pid, &p, NULL) != WISP_OK)
        goto out;
    json_t *chain = json_pack("[{s:{s:s, s:s}}]", "resourceId", "type", "project", "id", pid);
    json_t *parent = json_object_get(p, "parent");
    if (parent)
        json_array_append_new(chain, json_pack("{s:O}", "resourceId", parent));
    wisp_api_json(req, 200, json_pack("{s:o}", "ancestor", chain));
out:
    json_decref(p);
    json_decref(body);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

void wispd_crm_organizations(struct wisp_http_req *req, const char *path)
{
    const char *m = req->method;
    if (strcmp(path, "/v1/organizations:search") == 0) {
        if (strcmp(m, "POST") == 0)
            org_search(req);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %s.", m, path);
        return;
    }
    const char *id = path + strlen("/v1/organizations/");
    if (strncmp(path, "/v1/organizations/", 18) != 0 || !*id || strchr(id, '/')) {
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
        return;
    }
    const char *colon = strchr(id, ':');
    if (!colon) {
        if (strcmp(m, "GET") == 0)
            org_get(req, id);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %s.", m, path);
        return;
    }
    const char *verb = colon + 1;
    if (strcmp(m, "POST") == 0 &&
        (strcmp(verb, "getIamPolicy") == 0 || strcmp(verb, "setIamPolicy") == 0 ||
         strcmp(verb, "testIamPermissions") == 0)) {
        char *oid = wisp_xstrndup(id, (size_t)(colon - id));
        org_iam(req, oid, verb);
        free(oid);
        return;
    }
    wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
}
