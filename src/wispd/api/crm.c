/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud Resource Manager v1: projects (create, get, list), their IAM allow
 * policies (get, set with etag compare-and-set, test) and the operations
 * project creation returns. The organization is in crm_org.c. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "../wispd.h"

static const struct wisp_jfield project_fields[] = {
    {"projectId", WISP_J_STRING}, {"name", WISP_J_STRING}, {"parent", WISP_J_OBJECT},
    {"labels", WISP_J_OBJECT}, {"projectNumber", WISP_J_STRING},
    {"lifecycleState", WISP_J_STRING}, {"createTime", WISP_J_STRING}, {"tags", WISP_J_OBJECT},
    {NULL}};

static void now_rfc3339(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Project IDs: 6-30 chars, lowercase letters, digits, hyphens; start with a
 * letter; not end with a hyphen (Google's rule). */
int wispd_project_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 6 || n > 30 || !(id[0] >= 'a' && id[0] <= 'z') || id[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* Creates a project with a fresh 12-digit number and owner, inside txn.
 * Used by the API and by bootstrap. */
enum wisp_err wispd_project_create(struct wisp_txn *txn, const char *id, const char *display,
                                   const char *owner_member, json_t **out)
{
    unsigned char r[8];
    char number[16];
    json_t *existing;
    do {
        RAND_bytes(r, sizeof(r));
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | r[i];
        snprintf(number, sizeof(number), "%llu",
                 (unsigned long long)(100000000000ULL + v % 900000000000ULL));
        existing = NULL;
        if (wispd_get_json(txn, "projectnumber", number, &existing, NULL) == WISP_OK)
            json_decref(existing);
        else
            existing = NULL;
    } while (existing);
    char created[80];
    now_rfc3339(created, sizeof(created));
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "projectNumber", number, "projectId", id,
                          "lifecycleState", "ACTIVE", "name", display ? display : id,
                          "createTime", created);
    /* Every project sits under the state directory's organization, so that
     * organization-level policies (IAM and org policy) apply to it. */
    json_t *orgs = NULL;
    if (wispd_get_json(txn, "meta", "organization", &orgs, NULL) == WISP_OK) {
        json_object_set_new(p, "parent",
                            json_pack("{s:s, s:O}", "type", "organization", "id",
                                      json_object_get(orgs, "id")));
        json_decref(orgs);
    }
    enum wisp_err err = wispd_put_json(txn, "project", id, p, 0, NULL);
    if (!err) {
        json_t *num = json_pack("{s:s}", "projectId", id);
        err = wispd_put_json(txn, "projectnumber", number, num, 0, NULL);
        json_decref(num);
    }
    if (!err && owner_member) {
        char name[300];
        snprintf(name, sizeof(name), "projects/%s", id);
        json_t *pol = json_pack("{s:[{s:s, s:[s]}]}", "bindings", "role", "roles/owner",
                                "members", owner_member);
        err = wispd_put_json(txn, "iampolicy", name, pol, 0, NULL);
        if (!err)
            err = wispd_member_refs_update(txn, name, NULL, pol);
        json_decref(pol);
    }
    if (err || !out)
        json_decref(p);
    else
        *out = p;
    return err;
}

static void project_get(struct wisp_http_req *req, const char *id)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    json_t *p = NULL;
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, id);
    /* Google answers 403 for a project that does not exist, so that project
     * IDs cannot be probed: the message says "or it may not exist". */
    if (!pid) {
        wisp_api_denied(req, c->principal, "resourcemanager.projects.get", "projects/unknown");
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "resourcemanager.projects.get", pid))
        goto out;
    if (wispd_get_json(txn, "project", pid, &p, NULL) == WISP_OK) {
        wisp_api_json(req, 200, p);
        p = NULL;
    }
out:
    json_decref(p);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

struct list_ctx {
    struct wisp_http_req *req;
    struct wisp_txn *txn;
    const struct wispd_caller *c;
    json_t *items;
    const char *filter_id;
    char *last;
};

static int list_one(const struct wisp_doc *doc, void *arg)
{
    struct list_ctx *lc = arg;
    if (lc->filter_id && strcmp(doc->name, lc->filter_id) != 0)
        return 0;
    char name[300];
    struct wispd_resource r;
    wispd_resource_project(&r, doc->name, name, sizeof(name));
    int ok = 0;
    wispd_allowed(lc->txn, &lc->c->who, "resourcemanager.projects.get", &r, &ok, NULL, 0);
    if (ok) {
        json_t *p = json_loadb(doc->body, doc->body_len, 0, NULL);
        if (p)
            json_array_append_new(lc->items, p);
    }
    free(lc->last);
    lc->last = wisp_xstrdup(doc->name);
    return 0;
}

/* gcloud sends filter=lifecycleState:ACTIVE (always) and may add id:X. */
static const char *filter_id(const char *filter)
{
    if (!filter)
        return NULL;
    const char *p = strstr(filter, "id:");
    if (!p)
        p = strstr(filter, "projectId:");
    if (!p)
        return NULL;
    return strchr(p, ':') + 1;
}

static void project_list(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *after = NULL, *idbuf = NULL;
    if (!c)
        return;
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 500, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        goto out;
    }
    const char *fid = filter_id(wisp_http_query(req, "filter"));
    if (fid) {
        size_t n = strcspn(fid, " )");
        idbuf = wisp_xstrndup(fid, n);
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    struct list_ctx lc = {req, txn, c, json_array(), idbuf, NULL};
    size_t n = 0;
    err = wisp_store_list(txn, "project", "", after, (size_t)size, list_one, &lc, &n);
    if (err) {
        json_decref(lc.items);
        free(lc.last);
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_object();
    if (json_array_size(lc.items))
        json_object_set(resp, "projects", lc.items);
    json_decref(lc.items);
    if (n == (size_t)size && lc.last)
    {
        char *tok = wisp_api_page_token_make(lc.last);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    free(lc.last);
    wisp_api_json(req, 200, resp);
out:
    free(after);
    free(idbuf);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

static void project_create(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *p = NULL;
    if (!c)
        return;
    body = wisp_api_body(req, project_fields);
    if (!body)
        goto out;
    const char *id = json_string_value(json_object_get(body, "projectId"));
    if (!id || !wispd_project_id_valid(id)) {
        wisp_api_error(req, 400, NULL,
                       "Project ID '%.64s' is invalid: it must be 6 to 30 lowercase letters, "
                       "digits or hyphens, start with a letter and not end with a hyphen.",
                       id ? id : "");
        goto out;
    }
    /* Federated identities cannot create projects; Google identities can
     * (wisp has no organization-level projectCreator grant to check yet). */
    if (!c->who.email) {
        wisp_api_denied(req, c->principal, "resourcemanager.projects.create", "projects/-");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    err = wispd_project_create(txn, id, json_string_value(json_object_get(body, "name")),
                               c->principal, &p);
    if (err == WISP_EEXIST) {
        wisp_api_error(req, 409, "ALREADY_EXISTS",
                       "Requested entity already exists: project '%s'.", id);
        goto out;
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *op = json_pack("{s:s, s:b, s:O}", "name", "operations/cp.done", "done", 1,
                           "response", p);
    json_object_set_new(json_object_get(op, "response"), "@type",
                        json_string("type.googleapis.com/google.cloudresourcemanager.v1.Project"));
    char opname[320];
    snprintf(opname, sizeof(opname), "operations/cp.%s", id);
    json_object_set_new(op, "name", json_string(opname));
    wisp_api_json(req, 200, op);
out:
    json_decref(p);
    json_decref(body);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* GET /v1/operations/cp.PROJECT: project creation finishes at once. */
static void operation_get(struct wisp_http_req *req, const char *opid)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *p = NULL;
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (strncmp(opid, "cp.", 3) != 0 ||
        wispd_get_json(txn, "project", opid + 3, &p, NULL) != WISP_OK) {
        wisp_api_error(req, 404, NULL, "Operation 'operations/%.100s' not found.", opid);
        goto out;
    }
    json_object_set_new(p, "@type",
                        json_string("type.googleapis.com/google.cloudresourcemanager.v1.Project"));
    char name[300];
    snprintf(name, sizeof(name), "operations/%s", opid);
    wisp_api_json(req, 200, json_pack("{s:s, s:b, s:o}", "name", name, "done", 1, "response", p));
    p = NULL;
out:
    json_decref(p);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

void wispd_crm_iam(struct wisp_http_req *req, const struct wispd_caller *c,
                   const struct wispd_iam_resource *r, const char *verb)
{
    const struct wisp_jfield *schema = strcmp(verb, "getIamPolicy") == 0   ? wispd_iam_get_policy_fields
                                       : strcmp(verb, "setIamPolicy") == 0 ? wispd_iam_set_policy_fields
                                                                           : wispd_iam_test_fields;
    json_t *body = wisp_api_body(req, schema);
    if (!body)
        return;
    if (strcmp(verb, "getIamPolicy") == 0) {
        json_t *v = json_object_get(json_object_get(body, "options"), "requestedPolicyVersion");
        wispd_iam_get_policy(req, c, r, v ? (int)json_integer_value(v) : 0);
    } else if (strcmp(verb, "setIamPolicy") == 0) {
        json_t *policy = json_object_get(body, "policy");
        if (policy)
            wispd_iam_set_policy(req, c, r, policy);
        else
            wisp_api_error(req, 400, NULL, "Invalid JSON payload: 'policy' is required.");
    } else {
        wispd_iam_test_permissions(req, c, r, json_object_get(body, "permissions"));
    }
    json_decref(body);
}

static void project_iam(struct wisp_http_req *req, const char *id, const char *verb)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, id);
    wisp_store_rollback(txn);
    txn = NULL;
    char name[300];
    snprintf(name, sizeof(name), "projects/%s", pid ? pid : id);
    if (!pid) {
        wisp_api_denied(req, c->principal,
                        strcmp(verb, "setIamPolicy") == 0 ? "resourcemanager.projects.setIamPolicy"
                                                          : "resourcemanager.projects.getIamPolicy",
                        name);
        goto out;
    }
    struct wispd_iam_resource r = {.get_perm = "resourcemanager.projects.getIamPolicy",
                                   .set_perm = "resourcemanager.projects.setIamPolicy"};
    wispd_resource_project(&r.res, pid, name, sizeof(name));
    wispd_crm_iam(req, c, &r, verb);
out:
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* path is service-relative: /v1/projects..., /v1/operations/... */
void wispd_crm(struct wisp_http_req *req, const char *path)
{
    const char *m = req->method;
    const char *ov = strrchr(path, ':');
    if (ov && strstr(ov, "OrgPolic") && /* ...OrgPolicy and listOrgPolicies */
        (strncmp(path, "/v1/projects/", 13) == 0 || strncmp(path, "/v1/organizations/", 18) == 0)) {
        wispd_orgpolicy(req, path);
        return;
    }
    if (strncmp(path, "/v1/organizations", 17) == 0) {
        wispd_crm_organizations(req, path);
        return;
    }
    if (strncmp(path, "/v1/operations/", 15) == 0 && strcmp(m, "GET") == 0) {
        operation_get(req, path + 15);
        return;
    }
    if (strcmp(path, "/v1/projects") == 0) {
        if (strcmp(m, "GET") == 0)
            project_list(req);
        else if (strcmp(m, "POST") == 0)
            project_create(req);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %s.", m, path);
        return;
    }
    if (strncmp(path, "/v1/projects/", 13) != 0 || !path[13]) {
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
        return;
    }
    const char *rest = path + 13;
    const char *colon = strchr(rest, ':');
    if (strchr(rest, '/')) {
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
        return;
    }
    if (!colon) {
        if (strcmp(m, "GET") == 0)
            project_get(req, rest);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %s.", m, path);
        return;
    }
    char *id = wisp_xstrndup(rest, (size_t)(colon - rest));
    const char *verb = colon + 1;
    if (strcmp(m, "POST") == 0 &&
        (strcmp(verb, "getIamPolicy") == 0 || strcmp(verb, "setIamPolicy") == 0 ||
         strcmp(verb, "testIamPermissions") == 0))
        project_iam(req, id, verb);
    else if (strcmp(m, "POST") == 0 && strcmp(verb, "getAncestry") == 0)
        wispd_crm_ancestry(req, id);
    else
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
    free(id);
}
