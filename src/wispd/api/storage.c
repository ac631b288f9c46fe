/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud Storage JSON API v1: routing, buckets (insert, get, list, delete)
 * and their IAM policies (get, set, testPermissions). Objects are in
 * storage_objects.c, their bytes in storage_blob.c, listing in
 * storage_list.c. Buckets always use uniform bucket-level access: IAM is
 * the only access control, as WIF for GKE assumes. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/iam.h"
#include "wisp/log.h"
#include "storage_int.h"

#define BUCKET_TYPE "storage.googleapis.com/Bucket"
#define SERVICE "storage.googleapis.com"
#define NO_BUCKET "The specified bucket does not exist."
#define MAX_LABELS 64

static const struct wisp_jfield bucket_fields[] = {
    {"name", WISP_J_STRING},
    {"location", WISP_J_STRING},
    {"storageClass", WISP_J_STRING},
    {"labels", WISP_J_OBJECT},
    /* Uniform bucket-level access is always on; a body may say so. */
    {"iamConfiguration", WISP_J_OBJECT},
    /* Output only: accepted and ignored, so a client may send back what it
     * read. */
    {"kind", WISP_J_STRING},
    {"id", WISP_J_STRING},
    {"selfLink", WISP_J_STRING},
    {"projectNumber", WISP_J_STRING},
    {"metageneration", WISP_J_STRING},
    {"etag", WISP_J_STRING},
    {"timeCreated", WISP_J_STRING},
    {"updated", WISP_J_STRING},
    {"locationType", WISP_J_STRING},
    {NULL}};

static const struct wisp_jfield policy_fields[] = {
    {"kind", WISP_J_STRING}, {"resourceId", WISP_J_STRING}, {"version", WISP_J_INT},
    {"bindings", WISP_J_ARRAY, WISP_J_OBJECT, wispd_iam_binding_fields}, {"etag", WISP_J_STRING},
    {NULL}};

/* --- shared helpers ------------------------------------------------------- */

int64_t stg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void stg_time_format(int64_t us, char *out, size_t len)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((us / 1000) % 1000));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *stg_path_decode(const char *s, size_t n)
{
    char *out = wisp_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

int stg_object_name_valid(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t n = strlen(name);
    if (n == 0 || n > STG_MAX_OBJECT_NAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len;
        uint32_t cp;
        if (c == '\r' || c == '\n')
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF. */
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

const char *stg_link_base(struct wisp_http_req *req)
{
    static const char suffix[] = ".googleapis.com";
    size_t hl = strlen(req->host), sl = sizeof(suffix) - 1;
    if (hl > sl && strcmp(req->host + hl - sl, suffix) == 0)
        return "https://storage.googleapis.com";
    const char *h = wisp_http_header(req, "host");
    /* Only a plain host[:port] is echoed into links. */
    if (!h || !*h || strlen(h) > 255 ||
        strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
            strlen(h))
        h = *req->host ? req->host : "storage.googleapis.com";
    size_t n = strlen(h) + 16;
    char *out = wisp_http_alloc(req, n);
    snprintf(out, n, "%s://%s", req->tls ? "https" : "http", h);
    return out;
}

/* Google's bucket naming rules: 3-63 characters (up to 222 when dotted,
 * each dot-separated part at most 63), lowercase letters, digits, '-', '_'
 * and '.', starting and ending with a letter or digit; no "goog" prefix, no
 * "google", not an IP address. */
static int bucket_name_valid(const char *name)
{
    size_t n = strlen(name);
    int dotted = strchr(name, '.') != NULL;
    if (n < 3 || n > (dotted ? 222u : 63u))
        return 0;
    size_t part = 0, digits_dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '_' && c != '.')
            return 0;
        if ((c >= '0' && c <= '9') || c == '.')
            digits_dots++;
        if (c == '.') {
            if (part == 0)
                return 0;
            part = 0;
        } else if (++part > 63) {
            return 0;
        }
    }
    char first = name[0], last = name[n - 1];
    int first_ok = (first >= 'a' && first <= 'z') || (first >= '0' && first <= '9');
    int last_ok = (last >= 'a' && last <= 'z') || (last >= '0' && last <= '9');
    if (!first_ok || !last_ok)
        return 0;
    if (strncmp(name, "goog", 4) == 0 || strstr(name, "google") || strstr(name, "g00gle"))
        return 0;
    if (digits_dots == n)
        return 0; /* looks like an IP address */
    return 1;
}

int stg_bucket_open(struct wisp_http_req *req, struct wisp_txn *txn, const struct wispd_caller *c,
                    const char *name, const char *permission, struct stg_bucket *b)
{
    memset(b, 0, sizeof(*b));
    if (!bucket_name_valid(name)) {
        wisp_api_error(req, 400, NULL, "Invalid bucket name: '%.230s'", name);
        return 0;
    }
    enum wisp_err err = wispd_get_json(txn, STG_KIND_BUCKET, name, &b->doc, NULL);
    if (err == WISP_ENOTFOUND) {
        wisp_api_error(req, 404, NULL, NO_BUCKET);
        return 0;
    }
    if (err) {
        wispd_store_error(req, err);
        return 0;
    }
    b->project_id = json_string_value(json_object_get(b->doc, "projectId"));
    if (!b->project_id) {
        wispd_store_error(req, WISP_ESTORE);
        return 0;
    }
    snprintf(b->resname, sizeof(b->resname), "projects/_/buckets/%s", name);
    b->res.name = b->resname;
    b->res.type = BUCKET_TYPE;
    b->res.service = SERVICE;
    b->res.project_id = b->project_id;
    return permission ? wispd_check(req, txn, c, permission, &b->res) : 1;
}

void stg_bucket_free(struct stg_bucket *b)
{
    json_decref(b->doc);
    b->doc = NULL;
}

/* --- buckets -------------------------------------------------------------- */

static json_t *bucket_render(struct wisp_http_req *req, const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    char *self = wisp_xasprintf("https://www.googleapis.com/storage/v1/b/%s", name);
    const char *base = stg_link_base(req);
    if (strcmp(base, "https://storage.googleapis.com") != 0) {
        free(self);
        self = wisp_xasprintf("%s/storage/v1/b/%s", base, name);
    }
    json_t *b = json_pack(
        "{s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:s, s:O, s:O, s:s, s:{s:{s:b, s:O}, "
        "s:{s:b, s:O}, s:s}}",
        "kind", "storage#bucket", "selfLink", self, "id", name, "name", name, "projectNumber",
        json_object_get(doc, "projectNumber"), "metageneration",
        json_object_get(doc, "metageneration"), "location", json_object_get(doc, "location"),
        "locationType", json_object_get(doc, "locationType"), "storageClass",
        json_object_get(doc, "storageClass"), "etag", "CAE=", "timeCreated",
        json_object_get(doc, "timeCreated"), "updated", json_object_get(doc, "updated"), "rpo",
        "DEFAULT", "iamConfiguration", "bucketPolicyOnly", "enabled", 1, "lockedTime",
        json_object_get(doc, "lockedTime"), "uniformBucketLevelAccess", "enabled", 1,
        "lockedTime", json_object_get(doc, "lockedTime"), "publicAccessPrevention", "inherited");
    free(self);
    json_t *labels = json_object_get(doc, "labels");
    if (labels && json_object_size(labels))
        json_object_set(b, "labels", labels);
    return b;
}

static int label_ok(const char *s, int key)
{
    size_t n = strlen(s);
    if (n > 63 || (key && n == 0))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c >= 0x80))
            return 0;
    }
    return !key || (s[0] >= 'a' && s[0] <= 'z') || (unsigned char)s[0] >= 0x80;
}

static const char *location_type(const char *loc)
{
    static const char *const multi[] = {"US", "EU", "ASIA", NULL};
    static const char *const dual[] = {"NAM4", "EUR4", "ASIA1", "EUR5", "EUR7", "EUR8", NULL};
    for (int i = 0; multi[i]; i++) {
        if (strcmp(loc, multi[i]) == 0)
            return "multi-region";
    }
    for (int i = 0; dual[i]; i++) {
        if (strcmp(loc, dual[i]) == 0)
            return "dual-region";
    }
    return "region";
}

static void bucket_insert(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *doc = NULL, *other = NULL;
    char *pid = NULL;
    if (!c)
        return;
    body = wisp_api_body(req, bucket_fields);
    if (!body)
        goto out;
    const char *project = wisp_http_query(req, "project");
    if (!project || !*project) {
        wisp_api_error(req, 400, NULL, "Required parameter: project");
        goto out;
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    if (!name) {
        wisp_api_error(req, 400, NULL, "Required field: name");
        goto out;
    }
    if (!bucket_name_valid(name)) {
        wisp_api_error(req, 400, NULL, "Invalid bucket name: '%.230s'", name);
        goto out;
    }
    char loc[32] = "US";
    const char *l = json_string_value(json_object_get(body, "location"));
    if (l) {
        size_t n = strlen(l);
        if (n == 0 || n >= sizeof(loc) || strspn(l, "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n) {
            wisp_api_error(req, 400, NULL, "The specified location constraint is not valid.");
            goto out;
        }
        for (size_t i = 0; i <= n; i++)
            loc[i] = (char)(l[i] >= 'a' && l[i] <= 'z' ? l[i] - 32 : l[i]);
    }
    const char *sc = json_string_value(json_object_get(body, "storageClass"));
    static const char *const classes[] = {"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", NULL};
    int sc_ok = !sc;
    for (int i = 0; sc && classes[i]; i++)
        sc_ok |= strcmp(sc, classes[i]) == 0;
    if (!sc_ok) {
        wisp_api_error(req, 400, NULL, "Invalid argument: storage class '%.32s'.", sc);
        goto out;
    }
    json_t *labels = json_object_get(body, "labels");
    const char *lk;
    json_t *lv;
    if (json_object_size(labels) > MAX_LABELS) {
        wisp_api_error(req, 400, NULL, "A bucket may have at most %d labels.", MAX_LABELS);
        goto out;
    }
    json_object_foreach(labels, lk, lv) {
        if (!json_is_string(lv) || !label_ok(lk, 1) || !label_ok(json_string_value(lv), 0)) {
            wisp_api_error(req, 400, NULL, "Invalid label '%.63s'.", lk);
            goto out;
        }
    }
    if (wisp_http_query(req, "predefinedAcl") ||
        wisp_http_query(req, "predefinedDefaultObjectAcl")) {
        wisp_api_error(req, 400, NULL, "Buckets here always use uniform bucket-level access: "
                                       "predefined ACLs are not supported; use IAM.");
        goto out;
    }
    json_t *iamc = json_object_get(body, "iamConfiguration");
    json_t *ubla = json_object_get(iamc, "uniformBucketLevelAccess");
    if (json_is_false(json_object_get(ubla, "enabled"))) {
        wisp_api_error(req, 400, NULL,
                       "This server serves uniform bucket-level access only: ACLs are not "
                       "supported; use IAM.");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, project);
    if (!pid) {
        char pname[300];
        snprintf(pname, sizeof(pname), "projects/%.250s", project);
        wisp_api_denied(req, c->principal, "storage.buckets.create", pname);
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "storage.buckets.create", pid))
        goto out;
    json_t *proj = NULL;
    if (wispd_get_json(txn, "project", pid, &proj, NULL) != WISP_OK) {
        wispd_store_error(req, WISP_ESTORE);
        goto out;
    }
    char now[40];
    stg_time_format(stg_now_us(), now, sizeof(now));
    doc = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", name,
                    "projectId", pid, "projectNumber", json_object_get(proj, "projectNumber"),
                    "location", loc, "locationType", location_type(loc), "storageClass",
                    sc ? sc : "STANDARD", "metageneration", "1", "timeCreated", now, "updated",
                    now, "lockedTime", now);
    json_decref(proj);
    if (json_object_size(labels))
        json_object_set(doc, "labels", labels);
    err = wispd_put_json(txn, STG_KIND_BUCKET, name, doc, 0, NULL);
    if (err == WISP_EEXIST) {
        /* Bucket names are one namespace for everyone. */
        wispd_get_json(txn, STG_KIND_BUCKET, name, &other, NULL);
        const char *owner = json_string_value(json_object_get(other, "projectId"));
        if (owner && strcmp(owner, pid) == 0)
            wisp_api_error(req, 409, "CONFLICT",
                           "Your previous request to create the named bucket succeeded and you "
                           "already own it.");
        else
            wisp_api_error(req, 409, "CONFLICT",
                           "The requested bucket name is not available. The bucket namespace is "
                           "shared by all users of the system. Please select a different name "
                           "and try again.");
        goto out;
    }
    if (!err) {
        char idx[400];
        snprintf(idx, sizeof(idx), "%s/%s", pid, name);
        err = wisp_store_put(txn, STG_KIND_BUCKET_IDX, idx, "{}", 2, 0, NULL);
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("storage", "bucket %s created in %s by %s", name, pid, c->principal);
    wisp_api_json(req, 200, bucket_render(req, doc));
out:
    json_decref(other);
    json_decref(doc);
    json_decref(body);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

static void bucket_get(struct wisp_http_req *req, const char *name)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, name, "storage.buckets.get", &b))
        goto out;
    wisp_api_json(req, 200, bucket_render(req, b.doc));
out:
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

static int collect_name(const struct wisp_doc *doc, void *ctx)
{
    const char *slash = strchr(doc->name, '/');
    json_array_append_new(ctx, json_string(slash ? slash + 1 : doc->name));
    return 0;
}

static void bucket_list(struct wisp_http_req *req)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL, *after = NULL, *prefix = NULL, *start = NULL;
    json_t *names = json_array(), *items = json_array();
    if (!c)
        goto out;
    const char *project = wisp_http_query(req, "project");
    if (!project || !*project) {
        wisp_api_error(req, 400, NULL, "Required parameter: project");
        goto out;
    }
    long max = wisp_api_page_size(wisp_http_query(req, "maxResults"), 1000, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (max < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid maxResults or pageToken.");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = wispd_project_id(txn, project);
    if (!pid) {
        char pname[300];
        snprintf(pname, sizeof(pname), "projects/%.250s", project);
        wisp_api_denied(req, c->principal, "storage.buckets.list", pname);
        goto out;
    }
    if (!wispd_check_project(req, txn, c, "storage.buckets.list", pid))
        goto out;
    const char *p = wisp_http_query(req, "prefix");
    prefix = wisp_xasprintf("%s/%s", pid, p ? p : "");
    if (*after)
        start = wisp_xasprintf("%s/%s", pid, after);
    size_t n = 0;
    err = wisp_store_list(txn, STG_KIND_BUCKET_IDX, prefix, start, (size_t)max + 1, collect_name,
                          names, &n);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_pack("{s:s}", "kind", "storage#buckets");
    size_t i;
    json_t *nm;
    json_array_foreach(names, i, nm) {
        if (i == (size_t)max) {
            char *tok = wisp_api_page_token_make(
                json_string_value(json_array_get(names, (size_t)max - 1)));
            json_object_set_new(resp, "nextPageToken", json_string(tok));
            free(tok);
            break;
        }
        json_t *doc = NULL;
        if (wispd_get_json(txn, STG_KIND_BUCKET, json_string_value(nm), &doc, NULL) == WISP_OK) {
            json_array_append_new(items, bucket_render(req, doc));
            json_decref(doc);
        }
    }
    if (json_array_size(items))
        json_object_set(resp, "items", items);
    wisp_api_json(req, 200, resp);
out:
    json_decref(names);
    json_decref(items);
    free(pid);
    free(after);
    free(prefix);
    free(start);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

static int any_doc(const struct wisp_doc *doc, void *ctx)
{
    (void)doc;
    *(int *)ctx = 1;
    return 1;
}

static void bucket_delete(struct wisp_http_req *req, const char *name)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    char *prefix = NULL, *idx = NULL;
    json_t *sessions = json_array();
    if (!c)
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, name, "storage.buckets.delete", &b))
        goto out;
    prefix = wisp_xasprintf("%s/", name);
    int found = 0;
    err = wisp_store_list(txn, STG_KIND_OBJECT, prefix, NULL, 1, any_doc, &found, NULL);
    /* Unfinished resumable uploads end with their bucket. */
    if (!err)
        err = wisp_store_list(txn, STG_KIND_UPLOAD, prefix, NULL, 0, collect_name, sessions,
                              NULL);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (found) {
        wisp_api_error(req, 409, "CONFLICT", "The bucket you tried to delete is not empty.");
        goto out;
    }
    idx = wisp_xasprintf("%s/%s", b.project_id, name);
    err = wisp_store_delete(txn, STG_KIND_BUCKET, name, -1);
    if (!err)
        err = wisp_store_delete(txn, STG_KIND_BUCKET_IDX, idx, -1);
    if (!err || err == WISP_ENOTFOUND) {
        err = wisp_store_delete(txn, "iampolicy", b.resname, -1);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    size_t i;
    json_t *sid;
    json_array_foreach(sessions, i, sid) {
        char *skey = wisp_xasprintf("%s/%s", name, json_string_value(sid));
        if (!err)
            err = wisp_store_delete(txn, STG_KIND_UPLOAD, skey, -1);
        free(skey);
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    json_array_foreach(sessions, i, sid)
        stg_blob_stage_unlink(json_string_value(sid));
    wisp_log_info("storage", "bucket %s deleted by %s", name, c->principal);
    wisp_http_respond(req, 204, NULL, "", 0);
out:
    json_decref(sessions);
    free(prefix);
    free(idx);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* Two read-only views gcloud asks for before recursive deletes:
 * GET …/b/B/storageLayout (whether the bucket has a hierarchical namespace:
 * never, here; Google guards it with storage.objects.list) and
 * GET …/b/B/managedFolders (none can be created here, so the list is
 * empty, after the same check Google makes). */
static void bucket_view(struct wisp_http_req *req, const char *name, int layout)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    if (!c)
        return;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, name,
                         layout ? "storage.objects.list" : "storage.managedFolders.list", &b))
        goto out;
    if (layout)
        wisp_api_json(req, 200,
                      json_pack("{s:s, s:s, s:O, s:O}", "kind", "storage#storageLayout", "bucket",
                                name, "location", json_object_get(b.doc, "location"),
                                "locationType", json_object_get(b.doc, "locationType")));
    else
        wisp_api_json(req, 200, json_pack("{s:s}", "kind", "storage#managedFolders"));
out:
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- bucket IAM ----------------------------------------------------------- */

/* Every value of a repeated query parameter, decoded, as a JSON array of
 * strings; NULL (after answering 400) on a malformed one. */
static json_t *query_all(struct wisp_http_req *req, const char *key)
{
    json_t *out = json_array();
    size_t klen = strlen(key);
    const char *q = req->query;
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
            char *raw = wisp_xstrndup(q + klen + 1, len - klen - 1);
            for (char *p = raw; *p; p++) {
                if (*p == '+')
                    *p = ' ';
            }
            char *v = stg_path_decode(raw, strlen(raw));
            free(raw);
            if (!v) {
                json_decref(out);
                wisp_api_error(req, 400, NULL, "Invalid value for parameter '%s'.", key);
                return NULL;
            }
            json_array_append_new(out, json_string(v));
            free(v);
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return out;
}

static void bucket_iam(struct wisp_http_req *req, const char *name, const char *verb)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    json_t *body = NULL, *perms = NULL;
    if (!c)
        return;
    const char *m = req->method;
    int get = !verb && strcmp(m, "GET") == 0, set = !verb && strcmp(m, "PUT") == 0;
    int test = verb && strcmp(m, "GET") == 0;
    if (!get && !set && !test) {
        wisp_api_error(req, 405, NULL, "Method %s is not allowed here.", m);
        goto out;
    }
    if (set && !(body = wisp_api_body(req, policy_fields)))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, name, NULL, &b))
        goto out;
    wisp_store_rollback(txn);
    txn = NULL;
    struct wispd_iam_resource r = {.res = b.res,
                                   .get_perm = "storage.buckets.getIamPolicy",
                                   .set_perm = "storage.buckets.setIamPolicy",
                                   .policy_kind = "storage#policy",
                                   .test_kind = "storage#testIamPermissionsResponse"};
    if (get) {
        const char *v = wisp_http_query(req, "optionsRequestedPolicyVersion");
        long ver = v ? wisp_api_page_size(v, 0, 1000) : 0;
        if (ver < 0) {
            wisp_api_error(req, 400, NULL, "Invalid value for optionsRequestedPolicyVersion.");
            goto out;
        }
        wispd_iam_get_policy(req, c, &r, (int)ver);
    } else if (set) {
        const char *kind = json_string_value(json_object_get(body, "kind"));
        const char *rid = json_string_value(json_object_get(body, "resourceId"));
        if ((kind && strcmp(kind, "storage#policy") != 0) ||
            (rid && strcmp(rid, b.resname) != 0)) {
            wisp_api_error(req, 400, NULL, "Invalid argument: the policy's kind or resourceId "
                                           "does not name this bucket.");
            goto out;
        }
        json_object_del(body, "kind");
        json_object_del(body, "resourceId");
        wispd_iam_set_policy(req, c, &r, body);
    } else {
        perms = query_all(req, "permissions");
        if (!perms)
            goto out;
        if (!json_array_size(perms)) {
            wisp_api_error(req, 400, NULL, "Required parameter: permissions");
            goto out;
        }
        wispd_iam_test_permissions(req, c, &r, perms);
    }
out:
    json_decref(perms);
    json_decref(body);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- routing ---------------------------------------------------------------- */

static void route_bucket(struct wisp_http_req *req, const char *rest)
{
    const char *m = req->method;
    size_t blen = strcspn(rest, "/");
    char *bucket = stg_path_decode(rest, blen);
    char *obj = NULL;
    const char *tail = rest + blen;
    if (!bucket || !*bucket) {
        wisp_api_error(req, 400, NULL, "Invalid bucket name in the request path.");
        goto out;
    }
    if (!*tail) {
        if (strcmp(m, "GET") == 0)
            bucket_get(req, bucket);
        else if (strcmp(m, "DELETE") == 0)
            bucket_delete(req, bucket);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on a bucket.", m);
    } else if (strcmp(tail, "/storageLayout") == 0 || strcmp(tail, "/managedFolders") == 0) {
        if (strcmp(m, "GET") == 0)
            bucket_view(req, bucket, tail[1] == 's');
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed here.", m);
    } else if (strcmp(tail, "/iam") == 0) {
        bucket_iam(req, bucket, NULL);
    } else if (strcmp(tail, "/iam/testPermissions") == 0) {
        bucket_iam(req, bucket, "testPermissions");
    } else if (strcmp(tail, "/o") == 0) {
        if (strcmp(m, "GET") == 0)
            stg_objects_list(req, bucket);
        else if (strcmp(m, "POST") == 0)
            wisp_api_error(req, 400, NULL,
                           "Upload requests must include an uploadType URL parameter and a URL "
                           "path beginning with /upload/");
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on objects.", m);
    } else if (strncmp(tail, "/o/", 3) == 0 && tail[3] && strchr(tail + 3, '/')) {
        /* Names in the path are URL-encoded (%2F), so a raw '/' starts a
         * sub-resource: copyTo, rewriteTo, compose, acl; none is served. */
        wisp_api_error(req, 404, NULL,
                       "Not Found: object names in the path must be URL-encoded (%%2F for /); "
                       "copy, rewrite, compose and object ACLs are not served.");
    } else if (strncmp(tail, "/o/", 3) == 0 && tail[3]) {
        obj = stg_path_decode(tail + 3, strlen(tail + 3));
        if (!obj || !stg_object_name_valid(obj)) {
            wisp_api_error(req, 400, NULL, "The specified object name is not valid.");
            goto out;
        }
        if (strcmp(m, "GET") == 0) {
            const char *alt = wisp_http_query(req, "alt");
            stg_object_get(req, bucket, obj, alt && strcmp(alt, "media") == 0);
        } else if (strcmp(m, "DELETE") == 0) {
            stg_object_delete(req, bucket, obj);
        } else {
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on an object.", m);
        }
    } else {
        wisp_api_error(req, 404, NULL, "Not Found");
    }
out:
    free(obj);
    free(bucket);
}

void wispd_storage(struct wisp_http_req *req, const char *path)
{
    const char *m = req->method;
    wisp_log_debug("storage", "%s %s?%.300s (%zu bytes)", m, path, req->query, req->body_len);
    if (strcmp(path, "/storage/v1/b") == 0) {
        if (strcmp(m, "GET") == 0)
            bucket_list(req);
        else if (strcmp(m, "POST") == 0)
            bucket_insert(req);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on buckets.", m);
        return;
    }
    if (strncmp(path, "/storage/v1/b/", 14) == 0) {
        route_bucket(req, path + 14);
        return;
    }
    /* Uploads: /upload/storage/v1/b/B/o (POST starts, PUT continues a
     * resumable session); apitools starts resumable ones at
     * /resumable/upload/storage/v1/b/B/o. */
    if (strncmp(path, "/resumable/upload/", 18) == 0)
        path += 10;
    if (strncmp(path, "/upload/storage/v1/b/", 21) == 0) {
        const char *rest = path + 21;
        size_t blen = strcspn(rest, "/");
        if (strcmp(rest + blen, "/o") != 0) {
            wisp_api_error(req, 404, NULL, "Not Found");
            return;
        }
        char *bucket = stg_path_decode(rest, blen);
        if (!bucket || !*bucket)
            wisp_api_error(req, 400, NULL, "Invalid bucket name in the request path.");
        else
            stg_object_upload(req, bucket);
        free(bucket);
        return;
    }
    if (strncmp(path, "/download/storage/v1/b/", 23) == 0) {
        const char *rest = path + 23;
        size_t blen = strcspn(rest, "/");
        char *bucket = stg_path_decode(rest, blen);
        char *obj = NULL;
        if (strncmp(rest + blen, "/o/", 3) != 0 || !rest[blen + 3]) {
            wisp_api_error(req, 404, NULL, "Not Found");
        } else if (strcmp(m, "GET") != 0) {
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on a download.", m);
        } else if (!bucket || !*bucket ||
                   !(obj = stg_path_decode(rest + blen + 3, strlen(rest + blen + 3))) ||
                   !stg_object_name_valid(obj)) {
            wisp_api_error(req, 400, NULL, "The specified object name is not valid.");
        } else {
            stg_object_get(req, bucket, obj, 1);
        }
        free(obj);
        free(bucket);
        return;
    }
    wisp_api_error(req, 404, NULL, "Not Found");
}
