/* SPDX-License-Identifier: Apache-2.0 */
/* Service Usage v1: services.get and services.enable. gcloud asks whether an
 * API is enabled before `clusters create`, and enables cloudapis on
 * `projects create`. Every API wisp serves is always enabled; enabling any
 * other service is recorded (it then reads back ENABLED) and does nothing
 * else. */
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "../wispd.h"

static const char *const served[] = {
    "cloudresourcemanager.googleapis.com", "container.googleapis.com",
    "iam.googleapis.com",                  "iamcredentials.googleapis.com",
    "sts.googleapis.com",                  "storage.googleapis.com",
    "storage-api.googleapis.com",          "storage-component.googleapis.com",
    "artifactregistry.googleapis.com",     "serviceusage.googleapis.com",
    "orgpolicy.googleapis.com",            NULL};

static int is_served(const char *service)
{
    for (int i = 0; served[i]; i++) {
        if (strcmp(served[i], service) == 0)
            return 1;
    }
    return 0;
}

/* The Service object for project (by number) and service. */
static json_t *service_json(const char *num, const char *service, int enabled)
{
    char name[300], parent[64];
    snprintf(name, sizeof(name), "projects/%s/services/%s", num, service);
    snprintf(parent, sizeof(parent), "projects/%s", num);
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "name", name, "parent", parent, "state",
                     enabled ? "ENABLED" : "DISABLED", "config", "name", service, "title",
                     service);
}

void wispd_serviceusage(struct wisp_http_req *req, const char *path)
{
    /* /v1/projects/P/services/NAME[:enable] */
    char project[128], service[128], verb[32] = "";
    int n = sscanf(path, "/v1/projects/%127[^/]/services/%127[^/:]:%31s", project, service, verb);
    int get = n == 2 && strcmp(req->method, "GET") == 0;
    int enable = n == 3 && strcmp(verb, "enable") == 0 && strcmp(req->method, "POST") == 0;
    if (!get && !enable) {
        wisp_api_error(req, 404, NULL, "Unknown Service Usage method: %.200s", path);
        return;
    }
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    json_t *p = NULL, *rec = NULL;
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), enable, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    const char *perm = enable ? "serviceusage.services.enable" : "serviceusage.services.get";
    pid = wispd_project_id(txn, project);
    if (!pid) {
        wisp_api_denied(req, c->principal, perm, "projects/unknown");
        goto out;
    }
    if (!wispd_check_project(req, txn, c, perm, pid))
        goto out;
    if (wispd_get_json(txn, "project", pid, &p, NULL) != WISP_OK) {
        wisp_api_error(req, 404, NULL, "Project %s not found.", pid);
        goto out;
    }
    const char *num = json_string_value(json_object_get(p, "projectNumber"));
    char key[300];
    snprintf(key, sizeof(key), "%s/%s", pid, service);
    int recorded = wispd_get_json(txn, "service", key, &rec, NULL) == WISP_OK;
    if (get) {
        wisp_api_json(req, 200, service_json(num, service, recorded || is_served(service)));
        goto out;
    }
    if (!recorded && !is_served(service)) {
        json_t *doc = json_pack("{s:s}", "state", "ENABLED");
        err = wispd_put_json(txn, "service", key, doc, -1, NULL);
        json_decref(doc);
        if (!err)
            err = wisp_store_commit(txn);
        txn = NULL;
        if (err) {
            wispd_store_error(req, err);
            goto out;
        }
    }
    json_t *resp = service_json(num, service, 1);
    wisp_api_json(req, 200,
                  json_pack("{s:s, s:b, s:{s:s, s:o}}", "name", "operations/noop.DONE_OPERATION",
                            "done", 1, "response", "@type",
                            "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
                            "service", resp));
out:
    json_decref(rec);
    json_decref(p);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}
