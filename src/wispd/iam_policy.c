/* SPDX-License-Identifier: Apache-2.0 */
/* The IAM-policy methods every resource type shares (getIamPolicy,
 * setIamPolicy, testIamPermissions): the same validation, etag
 * compare-and-set and version rules whether the resource is a project, a
 * bucket, a service account or a repository. Each API maps its own URL and
 * request shape onto these. */
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "wispd.h"

/* The request bodies of the policy methods, shared by every API that has
 * them (Storage embeds the binding schema in its own policy shape). */
static const struct wisp_jfield expr_fields[] = {
    {"title", WISP_J_STRING}, {"description", WISP_J_STRING},
    {"expression", WISP_J_STRING}, {"location", WISP_J_STRING}, {NULL}};
const struct wisp_jfield wispd_iam_binding_fields[] = {
    {"role", WISP_J_STRING}, {"members", WISP_J_ARRAY, WISP_J_STRING},
    {"condition", WISP_J_OBJECT, 0, expr_fields}, {NULL}};
static const struct wisp_jfield policy_fields[] = {
    {"version", WISP_J_INT}, {"bindings", WISP_J_ARRAY, WISP_J_OBJECT, wispd_iam_binding_fields},
    {"auditConfigs", WISP_J_ARRAY, WISP_J_OBJECT}, {"etag", WISP_J_STRING}, {NULL}};
const struct wisp_jfield wispd_iam_set_policy_fields[] = {
    {"policy", WISP_J_OBJECT, 0, policy_fields}, {"updateMask", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield options_fields[] = {{"requestedPolicyVersion", WISP_J_INT}, {NULL}};
const struct wisp_jfield wispd_iam_get_policy_fields[] = {
    {"options", WISP_J_OBJECT, 0, options_fields}, {NULL}};
const struct wisp_jfield wispd_iam_test_fields[] = {
    {"permissions", WISP_J_ARRAY, WISP_J_STRING}, {NULL}};

/* Adds the resource type's own fields to an answer (storage's kind and
 * resourceId); most types have none. */
static void decorate_policy(json_t *out, const struct wispd_iam_resource *r)
{
    if (r->policy_kind) {
        json_object_set_new(out, "kind", json_string(r->policy_kind));
        json_object_set_new(out, "resourceId", json_string(r->res.name));
    }
}

static const char *const CONCURRENT =
    "There were concurrent policy changes. Please retry the whole read-modify-write with "
    "exponential backoff.";

void wispd_iam_get_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, int requested_version)
{
    struct wisp_txn *txn = NULL;
    json_t *stored = NULL, *out = NULL;
    int64_t rev = 0;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!wispd_check(req, txn, c, r->get_perm, &r->res))
        goto out;
    err = wispd_get_json(txn, "iampolicy", r->res.name, &stored, &rev);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    char msg[256];
    err = wisp_iam_policy_render(stored, rev, requested_version, &out, msg, sizeof(msg));
    if (err) {
        wisp_api_error(req, 400, NULL, "%s", msg);
        goto out;
    }
    decorate_policy(out, r);
    wisp_api_json(req, 200, out);
out:
    json_decref(stored);
    wisp_store_rollback(txn);
}

void wispd_iam_set_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, const json_t *policy)
{
    struct wisp_txn *txn = NULL;
    json_t *norm = NULL, *out = NULL, *current = NULL;
    char msg[512];
    norm = wisp_iam_policy_normalize(policy, msg, sizeof(msg));
    if (!norm) {
        wisp_api_error(req, 400, NULL, "%s", msg);
        return;
    }
    int64_t expect = -1;
    const char *etag = json_string_value(json_object_get(policy, "etag"));
    if (etag && wisp_iam_etag_parse(etag, &expect) != WISP_OK) {
        wisp_api_error(req, 400, NULL, "Invalid etag '%.64s'.", etag);
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!wispd_check(req, txn, c, r->set_perm, &r->res))
        goto out;
    int64_t rev = 0;
    err = wispd_get_json(txn, "iampolicy", r->res.name, &current, &rev);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    /* The etag compare happens under the write lock, in the same transaction
     * as the write, so two read-modify-write clients cannot both win. */
    if (expect >= 0 && expect != rev) {
        wisp_api_error(req, 409, "ABORTED", "%s", CONCURRENT);
        goto out;
    }
    int64_t new_rev;
    err = wispd_put_json(txn, "iampolicy", r->res.name, norm, rev ? rev : 0, &new_rev);
    if (!err)
        err = wispd_member_refs_update(txn, r->res.name, current, norm);
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err == WISP_EABORTED || err == WISP_EEXIST) {
        wisp_api_error(req, 409, "ABORTED", "%s", CONCURRENT);
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "setIamPolicy %s by %s rev %lld", r->res.name, c->principal,
                  (long long)new_rev);
    if (wisp_iam_policy_render(norm, new_rev, 3, &out, msg, sizeof(msg)) == WISP_OK) {
        decorate_policy(out, r);
        wisp_api_json(req, 200, out);
    } else {
        wisp_api_error(req, 500, NULL, "%s", msg);
    }
out:
    json_decref(current);
    json_decref(norm);
    wisp_store_rollback(txn);
}

void wispd_iam_test_permissions(struct wisp_http_req *req, const struct wispd_caller *c,
                                const struct wispd_iam_resource *r, const json_t *perms)
{
    struct wisp_txn *txn = NULL;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        return;
    }
    json_t *granted = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(perms, i, p) {
        const char *perm = json_string_value(p);
        if (strchr(perm, '*')) {
            json_decref(granted);
            wisp_api_error(req, 400, NULL, "Permission %.128s is not valid: wildcards are not "
                                           "allowed.", perm);
            goto out;
        }
        int ok = 0;
        if (wispd_allowed(txn, &c->who, perm, &r->res, &ok, NULL, 0) != WISP_OK) {
            json_decref(granted);
            wispd_store_error(req, WISP_EIO);
            goto out;
        }
        if (ok)
            json_array_append(granted, p);
    }
    json_t *resp = json_object();
    if (r->test_kind)
        json_object_set_new(resp, "kind", json_string(r->test_kind));
    if (json_array_size(granted))
        json_object_set(resp, "permissions", granted);
    json_decref(granted);
    wisp_api_json(req, 200, resp);
out:
    wisp_store_rollback(txn);
}

