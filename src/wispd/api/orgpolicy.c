/* SPDX-License-Identifier: Apache-2.0 */
/* Organization policy through Cloud Resource Manager v1 (setOrgPolicy,
 * getOrgPolicy, getEffectiveOrgPolicy, clearOrgPolicy, listOrgPolicies on
 * projects and organizations), as `gcloud resource-manager org-policies` sends it, and
 * the evaluation other APIs use: a boolean constraint set on a project
 * overrides its organization's. Documents: orgpolicy "RESOURCE CONSTRAINT"
 * holding the v1 Policy. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "../wispd.h"

#define POLICY_KIND "orgpolicy"
#define CONSTRAINT_MAX 200

static const struct wisp_jfield bool_fields[] = {{"enforced", WISP_J_BOOL}, {NULL}};
static const struct wisp_jfield policy_fields[] = {
    {"version", WISP_J_INT},         {"constraint", WISP_J_STRING},
    {"etag", WISP_J_STRING},         {"updateTime", WISP_J_STRING},
    {"booleanPolicy", WISP_J_OBJECT, 0, bool_fields},
    {"listPolicy", WISP_J_OBJECT},   {"restoreDefault", WISP_J_OBJECT},
    {NULL}};
static const struct wisp_jfield set_fields[] = {{"policy", WISP_J_OBJECT, 0, policy_fields},
                                                {NULL}};
static const struct wisp_jfield get_fields[] = {{"constraint", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield list_fields[] = {
    {"pageSize", WISP_J_INT}, {"pageToken", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield clear_fields[] = {
    {"constraint", WISP_J_STRING}, {"etag", WISP_J_STRING}, {NULL}};

/* Boolean constraints wisp knows; list constraints are refused by name. */
static const char *const boolean_constraints[] = {
    "constraints/iam.disableWorkloadIdentityClusterCreation",
    "constraints/iam.disableServiceAccountCreation",
    "constraints/iam.disableServiceAccountKeyCreation",
    "constraints/iam.disableServiceAccountKeyUpload",
    "constraints/iam.automaticIamGrantsForDefaultServiceAccounts",
    "constraints/compute.requireOsLogin",
    "constraints/storage.uniformBucketLevelAccess",
    NULL};

static int known_constraint(const char *c)
{
    for (int i = 0; boolean_constraints[i]; i++)
        if (strcmp(boolean_constraints[i], c) == 0)
            return 1;
    return 0;
}

static void now_rfc3339(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* "constraints/X" or the bare "X" gcloud users type. */
static char *constraint_name(const char *c)
{
    if (!c || !c[0] || strlen(c) > CONSTRAINT_MAX)
        return NULL;
    return strncmp(c, "constraints/", 12) == 0 ? wisp_xstrdup(c)
                                               : wisp_xasprintf("constraints/%s", c);
}

/* 1: enforced, 0: not, -1: this resource has no opinion. */
static int policy_says(struct wisp_txn *txn, const char *resource, const char *constraint)
{
    char key[400];
    json_t *p = NULL;
    snprintf(key, sizeof(key), "%s %s", resource, constraint);
    if (wispd_get_json(txn, POLICY_KIND, key, &p, NULL) != WISP_OK)
        return -1;
    int r = -1;
    json_t *b = json_object_get(p, "booleanPolicy");
    if (b)
        r = json_is_true(json_object_get(b, "enforced"));
    else if (json_object_get(p, "restoreDefault"))
        r = 0;
    json_decref(p);
    return r;
}

static char *project_org(struct wisp_txn *txn, const char *project_id)
{
    json_t *p = NULL;
    char *org = NULL;
    if (wispd_get_json(txn, "project", project_id, &p, NULL) == WISP_OK) {
        const char *id = json_string_value(json_object_get(json_object_get(p, "parent"), "id"));
        if (id)
            org = wisp_xstrdup(id);
        json_decref(p);
    }
    return org;
}

int wispd_orgpolicy_enforced(struct wisp_txn *txn, const char *project_id,
                             const char *constraint)
{
    char res[300];
    snprintf(res, sizeof(res), "projects/%s", project_id);
    int r = policy_says(txn, res, constraint);
    if (r >= 0)
        return r;
    char *org = project_org(txn, project_id);
    if (org) {
        snprintf(res, sizeof(res), "organizations/%s", org);
        r = policy_says(txn, res, constraint);
        free(org);
    }
    return r > 0;
}

/* The resource a request names, resolved: "projects/ID" or
 * "organizations/N", with the IAM resource guarding it. */
struct op_target {
    char name[300];
    char project[128]; /* "" for an organization */
    struct wispd_resource res;
};

static int resolve(struct wisp_http_req *req, struct wisp_txn *txn, const struct wispd_caller *c,
                   int is_org, const char *id, const char *perm, struct op_target *t)
{
    if (is_org) {
        json_t *meta = NULL;
        int ok = wispd_get_json(txn, "meta", "organization", &meta, NULL) == WISP_OK &&
                 strcmp(json_string_value(json_object_get(meta, "id")) ?: "", id) == 0;
        json_decref(meta);
        snprintf(t->name, sizeof(t->name), "organizations/%.100s", id);
        if (!ok) {
            wisp_api_denied(req, c->principal, perm, t->name);
            return 0;
        }
        t->project[0] = 0;
        /* An organization's chain is its own policy: an empty project ID
         * names no project and no project policy. */
        t->res = (struct wispd_resource){t->name, "cloudresourcemanager.googleapis.com/Organization",
                                         "cloudresourcemanager.googleapis.com", t->project};
        return wispd_check(req, txn, c, perm, &t->res);
    }
    char *pid = wispd_project_id(txn, id);
    if (!pid) {
        snprintf(t->name, sizeof(t->name), "projects/%.100s", id);
        wisp_api_denied(req, c->principal, perm, t->name);
        return 0;
    }
    snprintf(t->project, sizeof(t->project), "%s", pid);
    free(pid);
    wispd_resource_project(&t->res, t->project, t->name, sizeof(t->name));
    return wispd_check(req, txn, c, perm, &t->res);
}

static json_t *stored_or_empty(struct wisp_txn *txn, const char *resource, const char *constraint)
{
    char key[400];
    json_t *p = NULL;
    snprintf(key, sizeof(key), "%s %s", resource, constraint);
    if (wispd_get_json(txn, POLICY_KIND, key, &p, NULL) == WISP_OK)
        return p;
    /* Google's empty policy still has an etag (of nothing set). */
    return json_pack("{s:s, s:s}", "constraint", constraint, "etag", "BwAAAAAAAAA=");
}

/* Commits *txnp on success (and clears it); otherwise leaves it to the
 * caller's rollback. */
static void do_set(struct wisp_http_req *req, struct wisp_txn **txnp, const struct op_target *t,
                   const json_t *body)
{
    struct wisp_txn *txn = *txnp;
    json_t *in = json_object_get(body, "policy");
    char *constraint = constraint_name(json_string_value(json_object_get(in, "constraint")));
    json_t *p = NULL;
    if (!in || !constraint) {
        wisp_api_error(req, 400, NULL, "Invalid argument: policy.constraint is required.");
        goto out;
    }
    if (!known_constraint(constraint)) {
        wisp_api_error(req, 400, NULL,
                       "Constraint '%s' is not a boolean constraint wisp supports.", constraint);
        goto out;
    }
    if (json_object_get(in, "listPolicy")) {
        wisp_api_error(req, 400, NULL,
                       "Policy for '%s' must be a booleanPolicy, not a listPolicy.", constraint);
        goto out;
    }
    char key[400];
    snprintf(key, sizeof(key), "%s %s", t->name, constraint);
    json_t *old = NULL;
    int64_t rev = 0;
    enum wisp_err err = wispd_get_json(txn, POLICY_KIND, key, &old, &rev);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    const char *etag = json_string_value(json_object_get(in, "etag"));
    if (etag && old && strcmp(etag, json_string_value(json_object_get(old, "etag")) ?: "") != 0) {
        json_decref(old);
        wisp_api_error(req, 409, "ABORTED",
                       "There were concurrent policy changes. Please retry the whole "
                       "read-modify-write with exponential backoff.");
        goto out;
    }
    json_decref(old);
    unsigned char raw[8];
    RAND_bytes(raw, sizeof(raw));
    raw[0] = 0x07;
    char *tag = wisp_b64_encode(raw, sizeof(raw));
    char now[80];
    now_rfc3339(now, sizeof(now));
    p = json_pack("{s:i, s:s, s:s, s:s}", "version", 1, "constraint", constraint, "etag", tag,
                  "updateTime", now);
    free(tag);
    json_t *b = json_object_get(in, "booleanPolicy");
    if (b)
        json_object_set_new(p, "booleanPolicy",
                            json_is_true(json_object_get(b, "enforced"))
                                ? json_pack("{s:b}", "enforced", 1)
                                : json_object());
    else
        json_object_set_new(p, "restoreDefault", json_object());
    err = wispd_put_json(txn, POLICY_KIND, key, p, rev ? rev : 0, NULL);
    if (!err) {
        *txnp = NULL;
        err = wisp_store_commit(txn);
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_api_json(req, 200, p);
    p = NULL;
out:
    json_decref(p);
    free(constraint);
}

static void do_clear(struct wisp_http_req *req, struct wisp_txn **txnp, const struct op_target *t,
                     const json_t *body)
{
    struct wisp_txn *txn = *txnp;
    char *constraint = constraint_name(json_string_value(json_object_get(body, "constraint")));
    if (!constraint) {
        wisp_api_error(req, 400, NULL, "Invalid argument: constraint is required.");
        return;
    }
    char key[400];
    snprintf(key, sizeof(key), "%s %s", t->name, constraint);
    enum wisp_err err = wisp_store_delete(txn, POLICY_KIND, key, -1);
    if (!err || err == WISP_ENOTFOUND) {
        *txnp = NULL;
        err = wisp_store_commit(txn);
    }
    if (err)
        wispd_store_error(req, err);
    else
        wisp_api_json(req, 200, json_object());
    free(constraint);
}

static void do_get(struct wisp_http_req *req, struct wisp_txn *txn, const struct op_target *t,
                   const json_t *body, int effective)
{
    char *constraint = constraint_name(json_string_value(json_object_get(body, "constraint")));
    if (!constraint) {
        wisp_api_error(req, 400, NULL, "Invalid argument: constraint is required.");
        return;
    }
    json_t *p;
    if (!effective) {
        p = stored_or_empty(txn, t->name, constraint);
    } else {
        int on = t->project[0] ? wispd_orgpolicy_enforced(txn, t->project, constraint)
                               : policy_says(txn, t->name, constraint) > 0;
        p = stored_or_empty(txn, t->name, constraint);
        json_object_del(p, "restoreDefault");
        json_object_set_new(p, "booleanPolicy",
                            on ? json_pack("{s:b}", "enforced", 1) : json_object());
    }
    wisp_api_json(req, 200, p);
    free(constraint);
}

static int list_one(const struct wisp_doc *doc, void *ctx)
{
    json_t *p = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (p)
        json_array_append_new(ctx, p);
    return 0;
}

/* listOrgPolicies: the policies set on this resource itself (not
 * inherited), in constraint order. A resource holds at most one policy per
 * known constraint, so one page always holds them all: no page token is
 * ever issued, and any given is refused. */
static void do_list(struct wisp_http_req *req, struct wisp_txn *txn, const struct op_target *t,
                    const json_t *body)
{
    const char *token = json_string_value(json_object_get(body, "pageToken"));
    if ((token && *token) || json_integer_value(json_object_get(body, "pageSize")) < 0) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        return;
    }
    char prefix[320];
    snprintf(prefix, sizeof(prefix), "%s ", t->name);
    json_t *policies = json_array();
    size_t max = sizeof(boolean_constraints) / sizeof(boolean_constraints[0]);
    enum wisp_err err = wisp_store_list(txn, POLICY_KIND, prefix, NULL, max, list_one, policies,
                                        NULL);
    if (err) {
        wispd_store_error(req, err);
    } else {
        json_t *resp = json_object();
        if (json_array_size(policies))
            json_object_set(resp, "policies", policies);
        wisp_api_json(req, 200, resp);
    }
    json_decref(policies);
}

void wispd_orgpolicy(struct wisp_http_req *req, const char *path)
{
    struct wispd_caller *c = NULL;
    struct wisp_txn *txn = NULL;
    json_t *body = NULL;
    int is_org = strncmp(path, "/v1/organizations/", 18) == 0;
    const char *rest = path + (is_org ? 18 : 13);
    const char *colon = strchr(rest, ':');
    if (strcmp(req->method, "POST") != 0 || !colon || colon == rest ||
        (size_t)(colon - rest) > 100 || memchr(rest, '/', (size_t)(colon - rest))) {
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
        return;
    }
    const char *verb = colon + 1;
    int set = strcmp(verb, "setOrgPolicy") == 0, clear = strcmp(verb, "clearOrgPolicy") == 0,
        get = strcmp(verb, "getOrgPolicy") == 0, eff = strcmp(verb, "getEffectiveOrgPolicy") == 0,
        list = strcmp(verb, "listOrgPolicies") == 0;
    if (!set && !clear && !get && !eff && !list) {
        wisp_api_error(req, 404, NULL, "Unknown Resource Manager method: %.200s", path);
        return;
    }
    char id[128];
    snprintf(id, sizeof(id), "%.*s", (int)(colon - rest), rest);
    c = wispd_authenticate(req);
    if (!c)
        return;
    body = wisp_api_body(req, set     ? set_fields
                              : clear ? clear_fields
                              : list  ? list_fields
                                      : get_fields);
    if (!body)
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), set || clear, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    struct op_target t;
    if (!resolve(req, txn, c, is_org, id, set || clear ? "orgpolicy.policy.set"
                                                       : "orgpolicy.policy.get", &t))
        goto out;
    if (set) {
        do_set(req, &txn, &t, body);
    } else if (clear) {
        do_clear(req, &txn, &t, body);
    } else if (list) {
        do_list(req, txn, &t, body);
    } else {
        do_get(req, txn, &t, body, eff);
    }
out:
    wisp_store_rollback(txn);
    json_decref(body);
    wispd_caller_free(c);
}
