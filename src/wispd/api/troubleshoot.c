/* SPDX-License-Identifier: Apache-2.0 */
/* Policy Troubleshooter: POST /v3/iam:troubleshoot explains one access
 * tuple (principal, permission, full resource name): the decision, and for
 * each policy on the resource's chain, which binding grants the permission
 * or why each binding that could does not (other namespace, other pool,
 * condition false, ...). Behind `wisp iam explain`. */
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "../wispd.h"

static const struct wisp_jfield tuple_fields[] = {
    {"principal", WISP_J_STRING}, {"fullResourceName", WISP_J_STRING},
    {"permission", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield body_fields[] = {
    {"accessTuple", WISP_J_OBJECT, 0, tuple_fields}, {NULL}};

/* What a full resource name denotes, and the project above it. */
struct resolved {
    struct wispd_resource res;
    char name[512];
    char project[128];
};

static int resolve(struct wisp_txn *txn, const char *full, struct resolved *out)
{
    char a[128], b[256], c[128];
    const char *rel = NULL;
    if (strncmp(full, "//", 2) == 0) {
        rel = strchr(full + 2, '/');
        rel = rel ? rel + 1 : NULL;
    }
    if (!rel)
        return 0;
    snprintf(out->name, sizeof(out->name), "%s", rel);
    out->res.name = out->name;
    out->res.project_id = out->project;
    if (sscanf(rel, "projects/_/buckets/%255[^/]", b) == 1) {
        json_t *bucket = NULL;
        if (wispd_get_json(txn, "bucket", b, &bucket, NULL) != WISP_OK)
            return 0;
        const char *p = json_string_value(json_object_get(bucket, "projectId"));
        snprintf(out->project, sizeof(out->project), "%s", p ? p : "");
        json_decref(bucket);
        out->res.type = "storage.googleapis.com/Bucket";
        out->res.service = "storage.googleapis.com";
        return p != NULL;
    }
    if (sscanf(rel, "projects/%127[^/]/serviceAccounts/%255[^/]", a, b) == 2) {
        out->res.type = "iam.googleapis.com/ServiceAccount";
        out->res.service = "iam.googleapis.com";
    } else if (sscanf(rel, "projects/%127[^/]/locations/%127[^/]/repositories/%255[^/]", a, c,
                      b) == 3) {
        out->res.type = "artifactregistry.googleapis.com/Repository";
        out->res.service = "artifactregistry.googleapis.com";
    } else if (sscanf(rel, "projects/%127[^/]", a) == 1 && !strchr(rel + 9, '/')) {
        out->res.type = "cloudresourcemanager.googleapis.com/Project";
        out->res.service = "cloudresourcemanager.googleapis.com";
    } else {
        return 0;
    }
    char *pid = wispd_project_id(txn, a);
    if (!pid)
        return 0;
    snprintf(out->project, sizeof(out->project), "%s", pid);
    free(pid);
    return 1;
}

/* The caller a principal string stands for (borrowing m's strings). The
 * legacy KSA form has no project number: take it from the pool's project. */
static int caller_of(struct wisp_txn *txn, const struct wisp_member *m, struct wisp_caller *c,
                     char *num, size_t numlen)
{
    memset(c, 0, sizeof(*c));
    switch (m->type) {
    case WISP_MEMBER_USER:
    case WISP_MEMBER_SERVICE_ACCOUNT:
        c->email = m->email;
        c->is_service_account = m->type == WISP_MEMBER_SERVICE_ACCOUNT;
        return 1;
    case WISP_MEMBER_WI_SUBJECT:
    case WISP_MEMBER_KSA_LEGACY:
        if (!m->ns || !m->ksa)
            return 0;
        c->pool = m->pool;
        c->ns = m->ns;
        c->ksa = m->ksa;
        if (m->project_number) {
            c->project_number = m->project_number;
            return 1;
        }
        json_t *p = NULL;
        if (!m->project_id || wispd_get_json(txn, "project", m->project_id, &p, NULL) != WISP_OK)
            return 0;
        snprintf(num, numlen, "%s", json_string_value(json_object_get(p, "projectNumber")));
        json_decref(p);
        c->project_number = num;
        return 1;
    default:
        return 0;
    }
}

void wispd_troubleshoot(struct wisp_http_req *req, const char *path)
{
    if (strcmp(req->method, "POST") != 0 || strcmp(path, "/v3/iam:troubleshoot") != 0) {
        wisp_api_error(req, 404, NULL, "Unknown Policy Troubleshooter method: %.200s", path);
        return;
    }
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL;
    struct wisp_member m = {0};
    if (!c)
        return;
    body = wisp_api_body(req, body_fields);
    if (!body)
        goto out;
    json_t *t = json_object_get(body, "accessTuple");
    const char *principal = json_string_value(json_object_get(t, "principal"));
    const char *full = json_string_value(json_object_get(t, "fullResourceName"));
    const char *perm = json_string_value(json_object_get(t, "permission"));
    if (!principal || !full || !perm) {
        wisp_api_error(req, 400, NULL, "accessTuple needs principal, fullResourceName and "
                                       "permission.");
        goto out;
    }
    char msg[256];
    if (wisp_member_parse(principal, &m, msg, sizeof(msg)) != WISP_OK) {
        wisp_api_error(req, 400, NULL, "%s", msg);
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    struct resolved r;
    if (!resolve(txn, full, &r)) {
        wisp_api_error(req, 400, NULL,
                       "Resource '%.200s' is not one wisp knows: expected //SERVICE/projects/P, "
                       "…/buckets/B, …/serviceAccounts/EMAIL or …/repositories/R.",
                       full);
        goto out;
    }
    /* Reading an explanation reveals the policy: the caller must be able to
     * read the resource's policy. */
    static const struct {
        const char *type, *perm;
    } read_perm[] = {
        {"storage.googleapis.com/Bucket", "storage.buckets.getIamPolicy"},
        {"iam.googleapis.com/ServiceAccount", "iam.serviceAccounts.getIamPolicy"},
        {"artifactregistry.googleapis.com/Repository", "artifactregistry.repositories.getIamPolicy"},
        {"cloudresourcemanager.googleapis.com/Project", "resourcemanager.projects.getIamPolicy"},
    };
    for (size_t i = 0; i < sizeof(read_perm) / sizeof(read_perm[0]); i++) {
        if (strcmp(read_perm[i].type, r.res.type) == 0 &&
            !wispd_check(req, txn, c, read_perm[i].perm, &r.res))
            goto out;
    }
    struct wisp_caller who;
    char num[32];
    if (!caller_of(txn, &m, &who, num, sizeof(num))) {
        wisp_api_error(req, 400, NULL,
                       "Principal '%.200s' cannot be troubleshot: give user:, serviceAccount: or "
                       "a Kubernetes ServiceAccount principal.",
                       principal);
        goto out;
    }
    int allowed = 0;
    char why[256];
    if (wispd_allowed(txn, &who, perm, &r.res, &allowed, why, sizeof(why)) != WISP_OK) {
        wispd_store_error(req, WISP_EIO);
        goto out;
    }
    json_t *explain = wispd_explain(txn, &who, perm, &r.res);
    wisp_api_json(req, 200,
                  json_pack("{s:s, s:O, s:s, s:o}", "overallAccessState",
                            allowed ? "CAN_ACCESS" : "CANNOT_ACCESS", "accessTuple", t, "summary",
                            why, "bindings", explain ? explain : json_array()));
out:
    wisp_member_free(&m);
    json_decref(body);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}
