/* SPDX-License-Identifier: Apache-2.0 */
/* IAM v1 service accounts: create, get, list, patch and update, enable and
 * disable, delete and undelete (by unique ID, within 30 days), and each
 * account's own allow policy. Deleting an account turns its member in every
 * policy of the state into deleted:serviceAccount:EMAIL?uid=N and puts its
 * own policy and keys aside with it, so a new account of the same email
 * starts with nothing; undelete puts everything back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "wisp/member.h"
#include "iam_int.h"
#include "../wispd.h"

#define SA_TYPE "iam.googleapis.com/ServiceAccount"
#define SA_SERVICE "iam.googleapis.com"
#define SA_DOMAIN ".iam.gserviceaccount.com"
#define MAX_DISPLAY 100
#define MAX_DESCRIPTION 256

static const struct wisp_jfield sa_fields[] = {
    {"name", WISP_J_STRING},        {"projectId", WISP_J_STRING},
    {"uniqueId", WISP_J_STRING},    {"email", WISP_J_STRING},
    {"displayName", WISP_J_STRING}, {"etag", WISP_J_STRING},
    {"description", WISP_J_STRING}, {"oauth2ClientId", WISP_J_STRING},
    {"disabled", WISP_J_BOOL},      {NULL}};
static const struct wisp_jfield create_fields[] = {
    {"accountId", WISP_J_STRING}, {"serviceAccount", WISP_J_OBJECT, 0, sa_fields}, {NULL}};
static const struct wisp_jfield patch_fields[] = {
    {"serviceAccount", WISP_J_OBJECT, 0, sa_fields}, {"updateMask", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield no_fields[] = {{NULL}};

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* --- indexes: unique ID -> email, and project -> its accounts ---------------- */

enum wisp_err wispd_sa_index_put(struct wisp_txn *txn, const json_t *sa)
{
    const char *email = str(sa, "email"), *uid = str(sa, "uniqueId"), *p = str(sa, "projectId");
    if (!email || !uid || !p)
        return WISP_EINVAL;
    json_t *ix = json_pack("{s:s}", "email", email);
    char *pname = wisp_xasprintf("%s/%s", p, email);
    enum wisp_err err = wispd_put_json(txn, "sauid", uid, ix, -1, NULL);
    if (!err)
        err = wispd_put_json(txn, "saproject", pname, ix, -1, NULL);
    free(pname);
    json_decref(ix);
    return err;
}

static enum wisp_err index_delete(struct wisp_txn *txn, const json_t *sa)
{
    char *pname = wisp_xasprintf("%s/%s", str(sa, "projectId"), str(sa, "email"));
    enum wisp_err err = wisp_store_delete(txn, "sauid", str(sa, "uniqueId"), -1);
    if (!err || err == WISP_ENOTFOUND)
        err = wisp_store_delete(txn, "saproject", pname, -1);
    if (err == WISP_ENOTFOUND)
        err = WISP_OK;
    free(pname);
    return err;
}

/* --- addressing ---------------------------------------------------------------- */

/* Loads the account that id (an email or a unique ID) names, as seen under
 * path project project ("-" for any). WISP_ENOTFOUND if there is none. */
static enum wisp_err sa_find(struct wisp_txn *txn, const char *project, const char *id,
                             json_t **out, int64_t *rev)
{
    char *email = NULL, *pid = NULL;
    json_t *ix = NULL;
    enum wisp_err err;
    *out = NULL;
    if (wispd_iam_all_digits(id)) {
        err = wispd_get_json(txn, "sauid", id, &ix, NULL);
        if (err)
            goto out;
        email = wisp_xstrdup(str(ix, "email") ? str(ix, "email") : "");
    } else {
        email = wisp_xstrdup(id);
        for (char *p = email; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    err = wispd_get_json(txn, "sa", email, out, rev);
    if (err)
        goto out;
    if (strcmp(project, "-") != 0) {
        pid = wispd_project_id(txn, project);
        if (!pid || strcmp(pid, str(*out, "projectId") ? str(*out, "projectId") : "") != 0) {
            json_decref(*out);
            *out = NULL;
            err = WISP_ENOTFOUND;
        }
    }
out:
    free(pid);
    free(email);
    json_decref(ix);
    return err;
}

/* The resource an account's permissions are checked on: its own policy,
 * then its project's and organization's (wispd_allowed walks the chain). */
static void sa_resource(struct wispd_resource *r, const json_t *sa, char *buf, size_t len)
{
    snprintf(buf, len, "projects/%s/serviceAccounts/%s", str(sa, "projectId"), str(sa, "email"));
    r->name = buf;
    r->type = SA_TYPE;
    r->service = SA_SERVICE;
    r->project_id = str(sa, "projectId");
}

/* Answers for an account that is not there: 404 to a caller who holds
 * permission where the account would be (its project), else the same 403 a
 * real account would give, so account names cannot be probed. */
static void not_found(struct wisp_http_req *req, struct wisp_txn *txn,
                      const struct wispd_caller *c, const char *permission, const char *project,
                      const char *id)
{
    char *guess = NULL;
    if (strcmp(project, "-") != 0) {
        guess = wispd_project_id(txn, project);
        if (!guess)
            guess = wisp_xstrdup(project);
    } else {
        const char *at = strchr(id, '@');
        size_t dl = strlen(SA_DOMAIN);
        size_t n = at ? strlen(at + 1) : 0;
        if (at && n > dl && strcmp(at + 1 + n - dl, SA_DOMAIN) == 0)
            guess = wisp_xstrndup(at + 1, n - dl);
    }
    if (guess) {
        char name[600];
        snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s", guess, id);
        struct wispd_resource r = {name, SA_TYPE, SA_SERVICE, guess};
        if (!wispd_check(req, txn, c, permission, &r))
            goto out;
    }
    wisp_api_error(req, 404, NULL, "Unknown service account: projects/%.64s/serviceAccounts/%.200s",
                   project, id);
out:
    free(guess);
}

/* Begins a transaction and loads the account with permission checked. On
 * any failure the error is answered and 0 returned (txn rolled back). */
int wispd_iam_open_sa(struct wisp_http_req *req, const struct wispd_caller *c, int write,
                      const char *permission, const char *project, const char *id,
                      struct wisp_txn **txn, json_t **sa, int64_t *rev)
{
    enum wisp_err err = wisp_store_begin(wispd_store(req), write, txn);
    if (err) {
        *txn = NULL;
        wispd_store_error(req, err);
        return 0;
    }
    err = sa_find(*txn, project, id, sa, rev);
    if (err == WISP_ENOTFOUND) {
        not_found(req, *txn, c, permission, project, id);
        goto fail;
    }
    if (err) {
        wispd_store_error(req, err);
        goto fail;
    }
    struct wispd_resource r;
    char name[600];
    sa_resource(&r, *sa, name, sizeof(name));
    if (!wispd_check(req, *txn, c, permission, &r))
        goto fail;
    return 1;
fail:
    json_decref(*sa);
    *sa = NULL;
    wisp_store_rollback(*txn);
    *txn = NULL;
    return 0;
}

/* Commits txn and answers obj (stolen), or answers the store error. */
static void commit_answer(struct wisp_http_req *req, struct wisp_txn *txn, json_t *obj)
{
    enum wisp_err err = wisp_store_commit(txn);
    if (err) {
        json_decref(obj);
        wispd_store_error(req, err);
        return;
    }
    wisp_api_json(req, 200, obj);
}

/* --- create, get, list, patch ------------------------------------------------ */

static int text_ok(struct wisp_http_req *req, const json_t *sa)
{
    const char *d = str(sa, "displayName"), *desc = str(sa, "description");
    if (d && strlen(d) > MAX_DISPLAY) {
        wisp_api_error(req, 400, NULL, "displayName is longer than %d characters.", MAX_DISPLAY);
        return 0;
    }
    if (desc && strlen(desc) > MAX_DESCRIPTION) {
        wisp_api_error(req, 400, NULL, "description is longer than %d characters.",
                       MAX_DESCRIPTION);
        return 0;
    }
    return 1;
}

/* Deletes a document left at name by an earlier account of the same
 * email, so that a new account inherits nothing. */
static enum wisp_err drop_stale_policy(struct wisp_txn *txn, const char *name)
{
    json_t *old = NULL;
    enum wisp_err err = wispd_get_json(txn, "iampolicy", name, &old, NULL);
    if (err == WISP_ENOTFOUND)
        return WISP_OK;
    if (!err)
        err = wisp_store_delete(txn, "iampolicy", name, -1);
    if (!err)
        err = wispd_member_refs_update(txn, name, old, NULL);
    json_decref(old);
    return err;
}

static void sa_create(struct wisp_http_req *req, const struct wispd_caller *c,
                      const char *project)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sa = NULL;
    char *pid = NULL, *email = NULL;
    body = wisp_api_body(req, create_fields);
    if (!body)
        goto out;
    const char *account = str(body, "accountId");
    const json_t *in = json_object_get(body, "serviceAccount");
    if (!account || !wispd_iam_account_id_valid(account)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid accountId '%.64s': it must be 6 to 30 lowercase letters, digits "
                       "or hyphens, start with a letter and end with a letter or digit "
                       "([a-z]([-a-z0-9]*[a-z0-9])).",
                       account ? account : "");
        goto out;
    }
    if (!text_ok(req, in))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, project);
    if (!pid) {
        char name[300];
        snprintf(name, sizeof(name), "projects/%s", project);
        wisp_api_denied(req, c->principal, "iam.serviceAccounts.create", name);
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "iam.serviceAccounts.create", pid))
        goto out;
    email = wisp_xasprintf("%s@%s" SA_DOMAIN, account, pid);
    err = wispd_get_json(txn, "sa", email, &sa, NULL);
    if (!err) {
        wisp_api_error(req, 409, "ALREADY_EXISTS",
                       "Service account %s already exists within project projects/%s.", account,
                       pid);
        goto out;
    }
    if (err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    int64_t n;
    if ((err = wisp_store_counter_next(txn, "sa-uid", &n))) {
        wispd_store_error(req, err);
        goto out;
    }
    /* 21 digits, as Google's; the same counter and form bootstrap uses, so
     * a recreated account always gets a new one. */
    char uid[32], name[600];
    snprintf(uid, sizeof(uid), "1%020lld", (long long)n);
    snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s", pid, email);
    sa = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "projectId", pid, "uniqueId",
                   uid, "email", email, "oauth2ClientId", uid, "etag", WISPD_SA_ETAG);
    const char *d = str(in, "displayName"), *desc = str(in, "description");
    if (d && *d)
        json_object_set_new(sa, "displayName", json_string(d));
    if (desc && *desc)
        json_object_set_new(sa, "description", json_string(desc));
    err = wispd_put_json(txn, "sa", email, sa, 0, NULL);
    if (!err)
        err = wispd_sa_index_put(txn, sa);
    if (!err)
        err = drop_stale_policy(txn, name);
    if (!err) {
        err = wisp_store_delete(txn, "sasyskey", email, -1);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "service account %s (%s) created by %s", email, uid, c->principal);
    commit_answer(req, txn, sa);
    txn = NULL;
    sa = NULL;
out:
    free(email);
    free(pid);
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
}

static void sa_get(struct wisp_http_req *req, const struct wispd_caller *c, const char *project,
                   const char *id)
{
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL;
    if (!wispd_iam_open_sa(req, c, 0, "iam.serviceAccounts.get", project, id, &txn, &sa, NULL))
        return;
    wisp_api_json(req, 200, sa);
    wisp_store_rollback(txn);
}

struct list_ctx {
    struct wisp_txn *txn;
    json_t *items;
    char *last;
    enum wisp_err err;
};

static int list_one(const struct wisp_doc *doc, void *arg)
{
    struct list_ctx *lc = arg;
    json_t *ix = json_loadb(doc->body, doc->body_len, 0, NULL);
    json_t *sa = NULL;
    const char *email = str(ix, "email");
    if (email && wispd_get_json(lc->txn, "sa", email, &sa, NULL) == WISP_OK)
        json_array_append_new(lc->items, sa);
    free(lc->last);
    lc->last = email ? wisp_xstrdup(email) : NULL;
    json_decref(ix);
    return 0;
}

static void sa_list(struct wisp_http_req *req, const struct wispd_caller *c, const char *project)
{
    struct wisp_txn *txn = NULL;
    char *after = NULL, *pid = NULL, *prefix = NULL, *start = NULL;
    struct list_ctx lc = {NULL, NULL, NULL, WISP_OK};
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 20, 100);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = strcmp(project, "-") == 0 ? NULL : wispd_project_id(txn, project);
    if (!pid) {
        char name[300];
        snprintf(name, sizeof(name), "projects/%s", project);
        wisp_api_denied(req, c->principal, "iam.serviceAccounts.list", name);
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "iam.serviceAccounts.list", pid))
        goto out;
    prefix = wisp_xasprintf("%s/", pid);
    if (*after)
        start = wisp_xasprintf("%s%s", prefix, after);
    lc.txn = txn;
    lc.items = json_array();
    size_t n = 0;
    err = wisp_store_list(txn, "saproject", prefix, start, (size_t)size, list_one, &lc, &n);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_object();
    if (json_array_size(lc.items))
        json_object_set(resp, "accounts", lc.items);
    if (n == (size_t)size && lc.last) {
        char *tok = wisp_api_page_token_make(lc.last);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    json_decref(lc.items);
    free(lc.last);
    free(start);
    free(prefix);
    free(pid);
    free(after);
    wisp_store_rollback(txn);
}

/* PATCH (patch: {serviceAccount, updateMask}) and PUT (update: the account
 * itself); displayName and description are what may change. */
static void sa_patch(struct wisp_http_req *req, const struct wispd_caller *c, const char *project,
                     const char *id, int is_put)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sa = NULL;
    char *mask = NULL;
    body = wisp_api_body(req, is_put ? sa_fields : patch_fields);
    if (!body)
        goto out;
    const json_t *in = is_put ? body : json_object_get(body, "serviceAccount");
    const char *m = is_put ? NULL : str(body, "updateMask");
    if (m && *m) {
        mask = wisp_xstrdup(m);
    } else {
        /* No mask: what the request carries. */
        mask = wisp_xasprintf("%s%s", json_object_get(in, "displayName") ? "displayName," : "",
                              json_object_get(in, "description") ? "description" : "");
    }
    int set_display = 0, set_desc = 0;
    for (const char *f = mask; *f;) {
        size_t n = strcspn(f, ",");
        if ((n == 11 && strncmp(f, "displayName", n) == 0) ||
            (n == 12 && strncmp(f, "display_name", n) == 0)) {
            set_display = 1;
        } else if (n == 11 && strncmp(f, "description", n) == 0) {
            set_desc = 1;
        } else if (n) {
            wisp_api_error(req, 400, NULL,
                           "Invalid updateMask field '%.*s': only displayName and description "
                           "can be updated.",
                           (int)(n > 64 ? 64 : n), f);
            goto out;
        }
        f += n + (f[n] == ',');
    }
    if (!text_ok(req, in))
        goto out;
    int64_t rev = 0;
    if (!wispd_iam_open_sa(req, c, 1, "iam.serviceAccounts.update", project, id, &txn, &sa,
                           &rev))
        goto out;
    if (set_display) {
        const char *d = str(in, "displayName");
        if (d && *d)
            json_object_set_new(sa, "displayName", json_string(d));
        else
            json_object_del(sa, "displayName");
    }
    if (set_desc) {
        const char *d = str(in, "description");
        if (d && *d)
            json_object_set_new(sa, "description", json_string(d));
        else
            json_object_del(sa, "description");
    }
    enum wisp_err err = wispd_put_json(txn, "sa", str(sa, "email"), sa, rev, NULL);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    commit_answer(req, txn, sa);
    txn = NULL;
    sa = NULL;
out:
    free(mask);
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
}

static void sa_enable(struct wisp_http_req *req, const struct wispd_caller *c,
                      const char *project, const char *id, int enable)
{
    struct wisp_txn *txn = NULL;
    json_t *body = wisp_api_body(req, no_fields), *sa = NULL;
    int64_t rev = 0;
    if (!body)
        return;
    if (!wispd_iam_open_sa(req, c, 1,
                           enable ? "iam.serviceAccounts.enable" : "iam.serviceAccounts.disable",
                           project, id, &txn, &sa, &rev))
        goto out;
    if (enable)
        json_object_del(sa, "disabled");
    else
        json_object_set_new(sa, "disabled", json_true());
    enum wisp_err err = wispd_put_json(txn, "sa", str(sa, "email"), sa, rev, NULL);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("iam", "service account %s %s by %s", str(sa, "email"),
                  enable ? "enabled" : "disabled", c->principal);
    commit_answer(req, txn, json_object());
    txn = NULL;
out:
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
}

/* --- delete and undelete --------------------------------------------------------- */

/* The members an account is named by while it exists and once deleted,
 * canonical. Caller frees both. */
static enum wisp_err members_of(const json_t *sa, char **live, char **dead)
{
    char *a = wisp_xasprintf("serviceAccount:%s", str(sa, "email"));
    char *b = wisp_xasprintf("deleted:serviceAccount:%s?uid=%s", str(sa, "email"),
                             str(sa, "uniqueId"));
    *live = *dead = NULL;
    enum wisp_err err = wisp_member_canonicalize(a, live, NULL, 0);
    if (!err && (err = wisp_member_canonicalize(b, dead, NULL, 0))) {
        free(*live);
        *live = NULL;
    }
    free(a);
    free(b);
    return err;
}

struct keys_ctx {
    const char *email;
    json_t *keys; /* kid -> key document */
};

static int collect_key(const struct wisp_doc *doc, void *arg)
{
    struct keys_ctx *kc = arg;
    json_t *k = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (k && str(k, "email") && strcmp(str(k, "email"), kc->email) == 0)
        json_object_set(kc->keys, doc->name, k);
    json_decref(k);
    return 0;
}

static void sa_delete(struct wisp_http_req *req, const struct wispd_caller *c,
                      const char *project, const char *id)
{
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL, *rec = NULL, *doc = NULL;
    char *live = NULL, *dead = NULL;
    if (!wispd_iam_open_sa(req, c, 1, "iam.serviceAccounts.delete", project, id, &txn, &sa,
                           NULL))
        return;
    const char *email = str(sa, "email"), *uid = str(sa, "uniqueId");
    char name[600];
    snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s", str(sa, "projectId"), email);
    enum wisp_err err = members_of(sa, &live, &dead);
    if (err)
        goto fail;
    rec = json_pack("{s:O, s:I}", "account", sa, "deleteTime", (json_int_t)time(NULL));
    /* Its own policy goes with it (and comes back on undelete). */
    err = wispd_get_json(txn, "iampolicy", name, &doc, NULL);
    if (!err) {
        json_object_set(rec, "policy", doc);
        err = wisp_store_delete(txn, "iampolicy", name, -1);
        if (!err)
            err = wispd_member_refs_update(txn, name, doc, NULL);
    } else if (err == WISP_ENOTFOUND) {
        err = WISP_OK;
    }
    json_decref(doc);
    doc = NULL;
    if (err)
        goto fail;
    /* So do its keys: a new account of the same email must not accept
     * them. Keys are named by key ID, so this is a scan of every key; it
     * happens once per deletion. */
    err = wispd_get_json(txn, "sasyskey", email, &doc, NULL);
    if (!err) {
        json_object_set(rec, "systemKey", doc);
        err = wisp_store_delete(txn, "sasyskey", email, -1);
    } else if (err == WISP_ENOTFOUND) {
        err = WISP_OK;
    }
    if (err)
        goto fail;
    struct keys_ctx kc = {email, json_object()};
    json_object_set_new(rec, "keys", kc.keys);
    err = wisp_store_list(txn, "sakey", "", NULL, 0, collect_key, &kc, NULL);
    const char *kid;
    json_t *kv;
    json_object_foreach(kc.keys, kid, kv) {
        if (!err)
            err = wisp_store_delete(txn, "sakey", kid, -1);
    }
    if (!err)
        err = wisp_store_delete(txn, "sa", email, -1);
    if (!err)
        err = index_delete(txn, sa);
    if (!err)
        err = wispd_member_refs_rename(txn, live, dead);
    if (!err)
        err = wispd_put_json(txn, "sadeleted", uid, rec, -1, NULL);
    if (err)
        goto fail;
    wisp_log_info("iam", "service account %s (%s) deleted by %s", email, uid, c->principal);
    commit_answer(req, txn, json_object());
    txn = NULL;
    goto out;
fail:
    wispd_store_error(req, err);
out:
    free(live);
    free(dead);
    json_decref(doc);
    json_decref(rec);
    json_decref(sa);
    wisp_store_rollback(txn);
}

static void sa_undelete(struct wisp_http_req *req, const struct wispd_caller *c,
                        const char *project, const char *id)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *rec = NULL, *live_sa = NULL, *cur = NULL;
    char *live = NULL, *dead = NULL;
    body = wisp_api_body(req, no_fields);
    if (!body)
        return;
    if (!wispd_iam_all_digits(id)) {
        wisp_api_error(req, 400, NULL,
                       "Undelete names the account by its unique ID "
                       "(projects/-/serviceAccounts/UNIQUE_ID), not '%.200s'.",
                       id);
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    err = wispd_get_json(txn, "sadeleted", id, &rec, NULL);
    if (err == WISP_ENOTFOUND) {
        /* Undeleting an account that exists gives it back as it is. */
        wisp_store_rollback(txn);
        txn = NULL;
        json_t *sa = NULL;
        if (!wispd_iam_open_sa(req, c, 0, "iam.serviceAccounts.undelete", project, id, &txn,
                               &sa, NULL))
            goto out;
        wisp_api_json(req, 200, json_pack("{s:o}", "restoredAccount", sa));
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    const json_t *sa = json_object_get(rec, "account");
    const char *email = str(sa, "email");
    struct wispd_resource r;
    char name[600];
    sa_resource(&r, sa, name, sizeof(name));
    if (strcmp(project, "-") != 0) {
        char *pid = wispd_project_id(txn, project);
        int same = pid && strcmp(pid, r.project_id) == 0;
        free(pid);
        if (!same) {
            wisp_api_error(req, 404, NULL, "Unknown service account: %.300s", id);
            goto out;
        }
    }
    if (!wispd_check(req, txn, c, "iam.serviceAccounts.undelete", &r))
        goto out;
    json_int_t when = json_integer_value(json_object_get(rec, "deleteTime"));
    if ((json_int_t)time(NULL) - when > WISPD_SA_UNDELETE_SECS) {
        /* Past the window: the record is purged for good. */
        err = wisp_store_delete(txn, "sadeleted", id, -1);
        if (!err)
            err = wisp_store_commit(txn);
        txn = NULL;
        if (err)
            wispd_store_error(req, err);
        else
            wisp_api_error(req, 404, NULL,
                           "Service account %.200s was deleted more than 30 days ago and can no "
                           "longer be undeleted.",
                           email);
        goto out;
    }
    err = wispd_get_json(txn, "sa", email, &live_sa, NULL);
    if (!err) {
        wisp_api_error(req, 400, "FAILED_PRECONDITION",
                       "Service account %.200s exists (unique ID %s); the deleted account of the "
                       "same email cannot be undeleted.",
                       email, str(live_sa, "uniqueId"));
        goto out;
    }
    if (err != WISP_ENOTFOUND || (err = members_of(sa, &live, &dead)))
        goto fail;
    err = wispd_put_json(txn, "sa", email, sa, 0, NULL);
    if (!err)
        err = wispd_sa_index_put(txn, sa);
    const json_t *pol = json_object_get(rec, "policy");
    if (!err && pol) {
        err = wispd_get_json(txn, "iampolicy", name, &cur, NULL);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
        if (!err)
            err = wispd_put_json(txn, "iampolicy", name, pol, -1, NULL);
        if (!err)
            err = wispd_member_refs_update(txn, name, cur, pol);
    }
    const json_t *sys = json_object_get(rec, "systemKey");
    if (!err && sys)
        err = wispd_put_json(txn, "sasyskey", email, sys, -1, NULL);
    const char *kid;
    json_t *kv;
    json_object_foreach(json_object_get(rec, "keys"), kid, kv) {
        if (!err)
            err = wispd_put_json(txn, "sakey", kid, kv, -1, NULL);
    }
    if (!err)
        err = wispd_member_refs_rename(txn, dead, live);
    if (!err)
        err = wisp_store_delete(txn, "sadeleted", id, -1);
    if (err)
        goto fail;
    wisp_log_info("iam", "service account %s (%s) undeleted by %s", email, id, c->principal);
    commit_answer(req, txn, json_pack("{s:O}", "restoredAccount", sa));
    txn = NULL;
    goto out;
fail:
    wispd_store_error(req, err);
out:
    free(live);
    free(dead);
    json_decref(cur);
    json_decref(live_sa);
    json_decref(rec);
    json_decref(body);
    wisp_store_rollback(txn);
}

/* --- the account's own allow policy ---------------------------------------------- */

static void sa_iam(struct wisp_http_req *req, const struct wispd_caller *c, const char *project,
                   const char *id, const char *verb)
{
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sa = NULL;
    int get = strcmp(verb, "getIamPolicy") == 0, set = strcmp(verb, "setIamPolicy") == 0;
    body = wisp_api_body(req, get ? wispd_iam_get_policy_fields : set ? wispd_iam_set_policy_fields : wispd_iam_test_fields);
    if (!body)
        return;
    /* gcloud sends getIamPolicy with no body and the version in the query. */
    int version = 0;
    const char *qv = wisp_http_query(req, "options.requestedPolicyVersion");
    json_t *bv = json_object_get(json_object_get(body, "options"), "requestedPolicyVersion");
    char bvbuf[24] = "";
    if (!qv && json_is_integer(bv)) {
        snprintf(bvbuf, sizeof(bvbuf), "%lld", (long long)json_integer_value(bv));
        qv = bvbuf;
    } else if (!qv && json_is_string(bv)) {
        qv = json_string_value(bv);
    }
    if (qv) {
        char *end;
        long v = strtol(qv, &end, 10);
        if (!*qv || *end || v < 0 || v > 3) {
            wisp_api_error(req, 400, NULL,
                           "Invalid value for options.requestedPolicyVersion: '%.20s'.", qv);
            goto out;
        }
        version = (int)v;
    }
    /* Reading and writing a policy needs the account to exist; the
     * permission itself is checked by the shared code on the same chain. */
    const char *perm =
        set ? "iam.serviceAccounts.setIamPolicy" : "iam.serviceAccounts.getIamPolicy";
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    err = sa_find(txn, project, id, &sa, NULL);
    if (err == WISP_ENOTFOUND) {
        not_found(req, txn, c, perm, project, id);
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_store_rollback(txn);
    txn = NULL;
    char name[600];
    struct wispd_iam_resource r = {.get_perm = "iam.serviceAccounts.getIamPolicy",
                                   .set_perm = "iam.serviceAccounts.setIamPolicy"};
    sa_resource(&r.res, sa, name, sizeof(name));
    if (get) {
        wispd_iam_get_policy(req, c, &r, version);
    } else if (set) {
        json_t *policy = json_object_get(body, "policy");
        if (!policy) {
            wisp_api_error(req, 400, NULL, "Invalid JSON payload: 'policy' is required.");
            goto out;
        }
        wispd_iam_set_policy(req, c, &r, policy);
    } else {
        wispd_iam_test_permissions(req, c, &r, json_object_get(body, "permissions"));
    }
out:
    json_decref(sa);
    json_decref(body);
    wisp_store_rollback(txn);
}

/* --- routing ------------------------------------------------------------------------ */

void wispd_iam_sa(struct wisp_http_req *req, const char *project, const char *rest)
{
    const char *m = req->method;
    char *id = NULL;
    struct wispd_caller *c = NULL;
    if (!*rest) {
        if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0) {
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on service accounts.", m);
            return;
        }
        if (!(c = wispd_authenticate(req)))
            return;
        if (strcmp(m, "GET") == 0)
            sa_list(req, c, project);
        else
            sa_create(req, c, project);
        goto out;
    }
    const char *seg = rest + 1;
    if (strchr(seg, '/') || !*seg) {
        wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", rest);
        return;
    }
    const char *colon = strchr(seg, ':');
    size_t idlen = colon ? (size_t)(colon - seg) : strlen(seg);
    id = idlen ? wispd_iam_path_decode(seg, idlen) : NULL;
    if (!id) {
        wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", rest);
        return;
    }
    const char *verb = colon ? colon + 1 : NULL;
    static const char *const verbs[] = {"getIamPolicy", "setIamPolicy", "testIamPermissions",
                                        "undelete",     "enable",       "disable",
                                        NULL};
    int known = !verb;
    for (int i = 0; verb && verbs[i]; i++)
        known |= strcmp(verb, verbs[i]) == 0;
    if (!known || (verb && strcmp(m, "POST") != 0) ||
        (!verb && strcmp(m, "GET") != 0 && strcmp(m, "PATCH") != 0 && strcmp(m, "PUT") != 0 &&
         strcmp(m, "DELETE") != 0)) {
        wisp_api_error(req, known ? 405 : 404, NULL, "%s %.200s is not an IAM method.", m, rest);
        goto out;
    }
    if (!(c = wispd_authenticate(req)))
        goto out;
    if (!verb) {
        if (strcmp(m, "GET") == 0)
            sa_get(req, c, project, id);
        else if (strcmp(m, "DELETE") == 0)
            sa_delete(req, c, project, id);
        else
            sa_patch(req, c, project, id, strcmp(m, "PUT") == 0);
    } else if (strcmp(verb, "undelete") == 0) {
        sa_undelete(req, c, project, id);
    } else if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
        sa_enable(req, c, project, id, strcmp(verb, "enable") == 0);
    } else {
        sa_iam(req, c, project, id, verb);
    }
out:
    free(id);
    wispd_caller_free(c);
}
