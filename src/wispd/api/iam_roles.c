/* SPDX-License-Identifier: Apache-2.0 */
/* IAM v1 roles: the predefined ones (data/roles.json; list and get), and
 * custom project roles kept in the store as (role, "projects/P/roles/R"):
 * create, get, list, patch, delete and undelete, on Google's schedule (undelete
 * within 7 days, the ID free again after 37). Authorization reads the same
 * documents (wispd_allowed), so a binding to a custom role grants what it
 * lists while it is not deleted or disabled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "iam_int.h"
#include "../wispd.h"

#define MAX_TITLE 100
#define MAX_DESCRIPTION 300

static const struct wisp_jfield role_fields[] = {
    {"name", WISP_J_STRING},  {"title", WISP_J_STRING},
    {"description", WISP_J_STRING}, {"includedPermissions", WISP_J_ARRAY, WISP_J_STRING},
    {"stage", WISP_J_STRING}, {"etag", WISP_J_STRING},
    {"deleted", WISP_J_BOOL}, {NULL}};
static const struct wisp_jfield create_fields[] = {
    {"roleId", WISP_J_STRING}, {"role", WISP_J_OBJECT, 0, role_fields}, {NULL}};
static const struct wisp_jfield undelete_fields[] = {{"etag", WISP_J_STRING}, {NULL}};

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* view=BASIC (default) or FULL; -1 when it is neither. */
static int view_full(struct wisp_http_req *req)
{
    const char *v = wisp_http_query(req, "view");
    if (!v || !*v || strcmp(v, "BASIC") == 0)
        return 0;
    return strcmp(v, "FULL") == 0 ? 1 : -1;
}

/* --- predefined roles ------------------------------------------------------------ */

static void project_role_list(struct wisp_http_req *req, const struct wispd_caller *c,
                              const char *project);

static void predefined_list(struct wisp_http_req *req, const struct wispd_caller *c)
{
    char *after = NULL;
    const char *parent = wisp_http_query(req, "parent");
    if (parent && *parent) {
        /* roles.list with parent=projects/P lists that project's roles. */
        if (strncmp(parent, "projects/", 9) != 0 || !parent[9] || strchr(parent + 9, '/')) {
            wisp_api_error(req, 400, NULL, "Invalid parent '%.200s': expected projects/PROJECT.",
                           parent);
            return;
        }
        project_role_list(req, c, parent + 9);
        return;
    }
    int full = view_full(req);
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 300, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (full < 0 || size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid view, pageSize or pageToken.");
        goto out;
    }
    const json_t *all = wisp_iam_roles_all();
    size_t start = 0, n = json_array_size(all);
    if (*after) {
        while (start < n && strcmp(str(json_array_get(all, start), "name"), after) != 0)
            start++;
        if (start == n) {
            wisp_api_error(req, 400, NULL, "Invalid pageToken.");
            goto out;
        }
        start++;
    }
    json_t *roles = json_array();
    size_t i = start;
    for (; i < n && json_array_size(roles) < (size_t)size; i++)
        json_array_append_new(roles, wispd_iam_role_render(json_array_get(all, i), 0, full));
    json_t *resp = json_pack("{s:o}", "roles", roles);
    if (i < n) {
        char *tok = wisp_api_page_token_make(str(json_array_get(all, i - 1), "name"));
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    free(after);
}

void wispd_iam_predefined_roles(struct wisp_http_req *req, const char *rest)
{
    if (strcmp(req->method, "GET") != 0) {
        wisp_api_error(req, 405, NULL, "Method %s is not allowed on predefined roles.",
                       req->method);
        return;
    }
    char *id = NULL;
    if (*rest) {
        const char *seg = rest + 1;
        id = *seg && !strchr(seg, '/') && !strchr(seg, ':')
                 ? wispd_iam_path_decode(seg, strlen(seg))
                 : NULL;
        if (!id) {
            wisp_api_error(req, 404, NULL, "Unknown IAM method: /v1/roles%.200s", rest);
            return;
        }
    }
    /* Predefined roles are public knowledge: any authenticated caller may
     * read them, as on Google. */
    struct wispd_caller *c = wispd_authenticate(req);
    if (!c)
        goto out;
    if (!id) {
        predefined_list(req, c);
        goto out;
    }
    char name[300];
    snprintf(name, sizeof(name), "roles/%s", id);
    const json_t *role = wisp_iam_role_get(name);
    if (!role) {
        wisp_api_error(req, 404, NULL, "The role named %.200s was not found.", name);
        goto out;
    }
    wisp_api_json(req, 200, wispd_iam_role_render(role, 0, 1));
out:
    free(id);
    wispd_caller_free(c);
}

static const struct wisp_jfield testable_fields[] = {
    {"fullResourceName", WISP_J_STRING}, {"pageSize", WISP_J_INT}, {"pageToken", WISP_J_STRING},
    {NULL}};

/* gcloud names the resource from its endpoint override, so besides
 * "//cloudresourcemanager.googleapis.com/projects/P" it sends
 * "//127.0.0.1:PORT/cloudresourcemanager/projects/P": both are accepted. */
static int testable_resource_ok(const char *name)
{
    if (!name || strncmp(name, "//", 2) != 0)
        return 0;
    const char *p = strstr(name, "/projects/");
    const char *o = strstr(name, "/organizations/");
    const char *at = p ? p + 10 : o ? o + 15 : NULL;
    return at && *at && !strchr(at, '/');
}

void wispd_iam_testable_permissions(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    json_t *body = NULL, *all = NULL;
    char *after = NULL;
    if (!c)
        return;
    body = wisp_api_body(req, testable_fields);
    if (!body)
        goto out;
    const char *res = str(body, "fullResourceName");
    if (!testable_resource_ok(res)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid fullResourceName '%.200s': expected "
                       "//cloudresourcemanager.googleapis.com/projects/PROJECT.",
                       res ? res : "");
        goto out;
    }
    /* pageSize is an int32 in the body (a number, or a decimal string as
     * proto3 JSON allows); the shared parser takes its text. */
    json_t *ps = json_object_get(body, "pageSize");
    char sizebuf[24] = "";
    if (json_is_integer(ps))
        snprintf(sizebuf, sizeof(sizebuf), "%lld", (long long)json_integer_value(ps));
    else if (json_is_string(ps))
        snprintf(sizebuf, sizeof(sizebuf), "%.20s", json_string_value(ps));
    long size = wisp_api_page_size(sizebuf, 100, 1000);
    after = wisp_api_page_token_parse(str(body, "pageToken"));
    if (size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        goto out;
    }
    all = wispd_iam_known_permissions();
    size_t n = json_array_size(all), i = 0;
    while (*after && i < n && strcmp(json_string_value(json_array_get(all, i)), after) <= 0)
        i++;
    json_t *perms = json_array();
    for (; i < n && json_array_size(perms) < (size_t)size; i++)
        json_array_append_new(perms, json_pack("{s:O, s:s, s:s}", "name", json_array_get(all, i),
                                               "stage", "GA", "customRolesSupportLevel",
                                               "SUPPORTED"));
    json_t *resp = json_pack("{s:o}", "permissions", perms);
    if (i < n) {
        char *tok = wisp_api_page_token_make(json_string_value(json_array_get(all, i - 1)));
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    free(after);
    json_decref(all);
    json_decref(body);
    wispd_caller_free(c);
}

/* --- custom project roles ---------------------------------------------------------- */

static json_int_t now_s(void)
{
    return (json_int_t)time(NULL);
}

/* A deleted role past its purge time is gone: its ID is free again. */
static int purged(const json_t *role)
{
    return json_is_true(json_object_get(role, "deleted")) &&
           now_s() - json_integer_value(json_object_get(role, "deleteTime")) >
               WISPD_ROLE_PURGE_SECS;
}

/* Opens a transaction on project P with permission checked, resolving the
 * project to its ID (*pid, caller frees). Answers and returns 0 on failure. */
static int open_project(struct wisp_http_req *req, const struct wispd_caller *c, int write,
                        const char *permission, const char *project, struct wisp_txn **txn,
                        char **pid)
{
    *pid = NULL;
    enum wisp_err err = wisp_store_begin(wispd_store(req), write, txn);
    if (err) {
        *txn = NULL;
        wispd_store_error(req, err);
        return 0;
    }
    *pid = wispd_project_id(*txn, project);
    if (!*pid) {
        char name[300];
        snprintf(name, sizeof(name), "projects/%s", project);
        wisp_api_denied(req, c->principal, permission, name);
    } else if (wispd_check_project(req, *txn, c, permission, *pid)) {
        return 1;
    }
    free(*pid);
    *pid = NULL;
    wisp_store_rollback(*txn);
    *txn = NULL;
    return 0;
}

/* Loads role name; answers 404 and returns 0 when it does not exist. */
static int load_role(struct wisp_http_req *req, struct wisp_txn *txn, const char *name,
                     json_t **role, int64_t *rev)
{
    enum wisp_err err = wispd_get_json(txn, "role", name, role, rev);
    if (!err && purged(*role)) {
        json_decref(*role);
        *role = NULL;
        err = WISP_ENOTFOUND;
    }
    if (err == WISP_ENOTFOUND)
        wisp_api_error(req, 404, NULL, "The role named %.300s was not found.", name);
    else if (err)
        wispd_store_error(req, err);
    return err == WISP_OK;
}

/* Applies the fields of in named by mask (comma-separated; NULL: every
 * field in carries) to role, validating them. Answers 400 and returns 0 on
 * a bad field. */
static int apply_fields(struct wisp_http_req *req, json_t *role, const json_t *in,
                        const char *mask)
{
    static const char *const fields[] = {"title", "description", "includedPermissions", "stage",
                                         NULL};
    char msg[300];
    for (int i = 0; fields[i]; i++) {
        const char *f = fields[i];
        if (mask) {
            /* The mask may use proto names as well (included_permissions). */
            const char *alt = strcmp(f, "includedPermissions") == 0 ? "included_permissions" : f;
            int named = 0;
            const char *p = mask;
            while (*p) {
                size_t n = strcspn(p, ",");
                if ((strlen(f) == n && strncmp(p, f, n) == 0) ||
                    (strlen(alt) == n && strncmp(p, alt, n) == 0))
                    named = 1;
                p += n + (p[n] == ',');
            }
            if (!named)
                continue;
        } else if (!json_object_get(in, f)) {
            continue;
        }
        const json_t *v = json_object_get(in, f);
        if (strcmp(f, "includedPermissions") == 0) {
            json_t *perms = wispd_iam_role_permissions(v, msg, sizeof(msg));
            if (!perms) {
                wisp_api_error(req, 400, NULL, "%s", msg);
                return 0;
            }
            json_object_set_new(role, f, perms);
            continue;
        }
        const char *s = json_string_value(v);
        if (strcmp(f, "stage") == 0) {
            if (!s || !*s)
                s = "ALPHA";
            if (!wispd_iam_role_stage_valid(s)) {
                wisp_api_error(req, 400, NULL, "Invalid role stage '%.32s'.", s);
                return 0;
            }
        }
        size_t max = strcmp(f, "title") == 0 ? MAX_TITLE : MAX_DESCRIPTION;
        if (s && strlen(s) > max) {
            wisp_api_error(req, 400, NULL, "The role %s is longer than %zu characters.", f, max);
            return 0;
        }
        if (s && *s)
            json_object_set_new(role, f, json_string(s));
        else
            json_object_del(role, f);
    }
    /* Every field of a mask must be one that can change. */
    for (const char *p = mask ? mask : ""; *p;) {
        size_t n = strcspn(p, ",");
        int ok = n == 0;
        for (int i = 0; fields[i] && !ok; i++)
            ok = strlen(fields[i]) == n && strncmp(p, fields[i], n) == 0;
        ok = ok || (n == 20 && strncmp(p, "included_permissions", n) == 0);
        if (!ok) {
            wisp_api_error(req, 400, NULL, "Invalid updateMask field '%.*s'.",
                           (int)(n > 64 ? 64 : n), p);
            return 0;
        }
        p += n + (p[n] == ',');
    }
    return 1;
}

/* Commits txn and answers the role as written at rev. */
static void commit_role(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *role,
                        int64_t rev)
{
    enum wisp_err err = wisp_store_commit(txn);
    if (err)
        wispd_store_error(req, err);
    else
        wisp_api_json(req, 200, wispd_iam_role_render(role, rev, 1));
}

static void role_create(struct wisp_http_req *req, const struct wispd_caller *c,
                        const char *project)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *role = NULL, *old = NULL;
    char *pid = NULL;
    body = wisp_api_body(req, create_fields);
    if (!body)
        return;
    const char *rid = str(body, "roleId");
    if (!rid || !wispd_iam_role_id_valid(rid)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid roleId '%.64s': it must be 3 to 64 letters, digits, underscores "
                       "or periods.",
                       rid ? rid : "");
        goto out;
    }
    const json_t *in = json_object_get(body, "role");
    role = json_object();
    if (!apply_fields(req, role, in, NULL))
        goto out;
    if (!json_object_get(role, "stage"))
        json_object_set_new(role, "stage", json_string("ALPHA"));
    if (!json_object_get(role, "includedPermissions"))
        json_object_set_new(role, "includedPermissions", json_array());
    if (!open_project(req, c, 1, "iam.roles.create", project, &txn, &pid))
        goto out;
    char name[400];
    snprintf(name, sizeof(name), "projects/%s/roles/%s", pid, rid);
    json_object_set_new(role, "name", json_string(name));
    int64_t rev = 0, expect = 0;
    enum wisp_err err = wispd_get_json(txn, "role", name, &old, &rev);
    if (!err) {
        if (!purged(old)) {
            wisp_api_error(req, 409, "ALREADY_EXISTS",
                           "A role named %s in projects/%s already exists%s.", rid, pid,
                           json_is_true(json_object_get(old, "deleted"))
                               ? " (deleted; its ID is reserved for 37 days after deletion)"
                               : "");
            goto out;
        }
        expect = rev;
    } else if (err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    err = wispd_put_json(txn, "role", name, role, expect, &rev);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "custom role %s created by %s", name, c->principal);
    commit_role(req, txn, role, rev);
    txn = NULL;
out:
    free(pid);
    json_decref(old);
    json_decref(role);
    json_decref(body);
    wisp_store_rollback(txn);
}

static void role_get(struct wisp_http_req *req, const struct wispd_caller *c, const char *project,
                     const char *rid)
{
    struct wisp_txn *txn = NULL;
    json_t *role = NULL;
    char *pid = NULL;
    if (!open_project(req, c, 0, "iam.roles.get", project, &txn, &pid))
        return;
    char name[400];
    snprintf(name, sizeof(name), "projects/%s/roles/%s", pid, rid);
    int64_t rev = 0;
    if (load_role(req, txn, name, &role, &rev))
        wisp_api_json(req, 200, wispd_iam_role_render(role, rev, 1));
    json_decref(role);
    free(pid);
    wisp_store_rollback(txn);
}

struct list_ctx {
    json_t *roles;
    int full, show_deleted;
    char *last;
};

static int list_one(const struct wisp_doc *doc, void *arg)
{
    struct list_ctx *lc = arg;
    json_t *role = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (role && !purged(role) &&
        (lc->show_deleted || !json_is_true(json_object_get(role, "deleted"))))
        json_array_append_new(lc->roles, wispd_iam_role_render(role, doc->rev, lc->full));
    json_decref(role);
    free(lc->last);
    lc->last = wisp_xstrdup(doc->name);
    return 0;
}

static void project_role_list(struct wisp_http_req *req, const struct wispd_caller *c,
                              const char *project)
{
    struct wisp_txn *txn = NULL;
    char *after = NULL, *pid = NULL, *prefix = NULL, *start = NULL;
    struct list_ctx lc = {NULL, view_full(req), 0, NULL};
    const char *sd = wisp_http_query(req, "showDeleted");
    lc.show_deleted = sd && (strcmp(sd, "true") == 0 || strcmp(sd, "True") == 0);
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 300, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (lc.full < 0 || size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid view, pageSize or pageToken.");
        goto out;
    }
    if (!open_project(req, c, 0, "iam.roles.list", project, &txn, &pid))
        goto out;
    prefix = wisp_xasprintf("projects/%s/roles/", pid);
    /* The token is the last document name of the page, under this prefix. */
    if (*after) {
        if (strncmp(after, prefix, strlen(prefix)) != 0) {
            wisp_api_error(req, 400, NULL, "Invalid pageToken.");
            goto out;
        }
        start = wisp_xstrdup(after);
    }
    lc.roles = json_array();
    size_t n = 0;
    enum wisp_err err =
        wisp_store_list(txn, "role", prefix, start, (size_t)size, list_one, &lc, &n);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_object();
    if (json_array_size(lc.roles))
        json_object_set(resp, "roles", lc.roles);
    if (n == (size_t)size && lc.last) {
        char *tok = wisp_api_page_token_make(lc.last);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    json_decref(lc.roles);
    free(lc.last);
    free(start);
    free(prefix);
    free(pid);
    free(after);
    wisp_store_rollback(txn);
}

/* Checks a client's etag against the document revision: answers 400 or
 * 409 and returns 0 when it does not match. */
static int etag_ok(struct wisp_http_req *req, const char *etag, int64_t rev)
{
    int64_t want;
    if (!etag || !*etag)
        return 1;
    if (wisp_iam_etag_parse(etag, &want) != WISP_OK) {
        wisp_api_error(req, 400, NULL, "Invalid etag '%.64s'.", etag);
        return 0;
    }
    if (want != rev) {
        wisp_api_error(req, 409, "ABORTED",
                       "The role was changed since it was read (etag mismatch); read it again "
                       "and retry.");
        return 0;
    }
    return 1;
}

static void role_patch(struct wisp_http_req *req, const struct wispd_caller *c,
                       const char *project, const char *rid)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *role = NULL;
    char *pid = NULL;
    body = wisp_api_body(req, role_fields);
    if (!body)
        return;
    const char *mask = wisp_http_query(req, "updateMask");
    if (!open_project(req, c, 1, "iam.roles.update", project, &txn, &pid))
        goto out;
    char name[400];
    snprintf(name, sizeof(name), "projects/%s/roles/%s", pid, rid);
    int64_t rev = 0;
    if (!load_role(req, txn, name, &role, &rev))
        goto out;
    if (json_is_true(json_object_get(role, "deleted"))) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION", "You can't update a deleted role (%s).",
                       name);
        goto out;
    }
    if (!etag_ok(req, str(body, "etag"), rev) ||
        !apply_fields(req, role, body, mask && *mask ? mask : NULL))
        goto out;
    enum wisp_err err = wispd_put_json(txn, "role", name, role, rev, &rev);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "custom role %s updated by %s", name, c->principal);
    commit_role(req, txn, role, rev);
    txn = NULL;
out:
    free(pid);
    json_decref(role);
    json_decref(body);
    wisp_store_rollback(txn);
}

static void role_delete(struct wisp_http_req *req, const struct wispd_caller *c,
                        const char *project, const char *rid, int undelete)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *role = NULL;
    char *pid = NULL;
    const char *etag = wisp_http_query(req, "etag");
    if (undelete) {
        body = wisp_api_body(req, undelete_fields);
        if (!body)
            return;
        etag = str(body, "etag");
    }
    if (!open_project(req, c, 1, undelete ? "iam.roles.undelete" : "iam.roles.delete", project,
                      &txn, &pid))
        goto out;
    char name[400];
    snprintf(name, sizeof(name), "projects/%s/roles/%s", pid, rid);
    int64_t rev = 0;
    if (!load_role(req, txn, name, &role, &rev) || !etag_ok(req, etag, rev))
        goto out;
    int deleted = json_is_true(json_object_get(role, "deleted"));
    if (!undelete && deleted) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION", "The role %s is already deleted.", name);
        goto out;
    }
    if (undelete && !deleted) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION", "The role %s is not deleted.", name);
        goto out;
    }
    if (undelete &&
        now_s() - json_integer_value(json_object_get(role, "deleteTime")) >
            WISPD_ROLE_UNDELETE_SECS) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION",
                       "The role %s was deleted more than 7 days ago and can no longer be "
                       "undeleted.",
                       name);
        goto out;
    }
    if (undelete) {
        json_object_del(role, "deleted");
        json_object_del(role, "deleteTime");
    } else {
        json_object_set_new(role, "deleted", json_true());
        json_object_set_new(role, "deleteTime", json_integer(now_s()));
    }
    enum wisp_err err = wispd_put_json(txn, "role", name, role, rev, &rev);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "custom role %s %s by %s", name, undelete ? "undeleted" : "deleted",
                  c->principal);
    commit_role(req, txn, role, rev);
    txn = NULL;
out:
    free(pid);
    json_decref(role);
    json_decref(body);
    wisp_store_rollback(txn);
}

void wispd_iam_project_roles(struct wisp_http_req *req, const char *project, const char *rest)
{
    const char *m = req->method;
    char *rid = NULL;
    struct wispd_caller *c = NULL;
    const char *verb = NULL;
    if (*rest) {
        const char *seg = rest + 1;
        const char *colon = strchr(seg, ':');
        size_t n = colon ? (size_t)(colon - seg) : strlen(seg);
        rid = n && !memchr(seg, '/', strlen(seg)) ? wispd_iam_path_decode(seg, n) : NULL;
        if (!rid) {
            wisp_api_error(req, 404, NULL, "Unknown IAM method: roles%.200s", rest);
            goto out;
        }
        if (!wispd_iam_role_id_valid(rid)) {
            wisp_api_error(req, 404, NULL, "The role named projects/%.64s/roles/%.100s was not "
                           "found.", project, rid);
            goto out;
        }
        verb = colon ? colon + 1 : NULL;
    }
    int ok;
    if (!rid)
        ok = strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0;
    else if (verb)
        ok = strcmp(verb, "undelete") == 0 && strcmp(m, "POST") == 0;
    else
        ok = strcmp(m, "GET") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0;
    if (!ok) {
        wisp_api_error(req, 404, NULL, "%s roles%.200s is not an IAM method.", m, rest);
        goto out;
    }
    if (!(c = wispd_authenticate(req)))
        goto out;
    if (!rid) {
        if (strcmp(m, "GET") == 0)
            project_role_list(req, c, project);
        else
            role_create(req, c, project);
    } else if (verb) {
        role_delete(req, c, project, rid, 1);
    } else if (strcmp(m, "GET") == 0) {
        role_get(req, c, project, rid);
    } else if (strcmp(m, "PATCH") == 0) {
        role_patch(req, c, project, rid);
    } else {
        role_delete(req, c, project, rid, 0);
    }
out:
    free(rid);
    wispd_caller_free(c);
}
