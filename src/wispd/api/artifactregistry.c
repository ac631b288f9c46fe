/* SPDX-License-Identifier: Apache-2.0 */
/* Artifact Registry v1: repositories (create, get, list, delete), their IAM
 * allow policies (get, set, test), the locations they may live in, and the
 * operations create and delete return. Repositories are records with a
 * policy: wisp has no registry to push to, so packages, images, updates and
 * the remote, virtual and CMEK features are refused rather than faked. */
#include <fnmatch.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/log.h"
#include "../wispd.h"

#define REPO_KIND "arrepo"
#define OP_KIND "aroperation"
#define REPO_TYPE "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"
#define OP_META_TYPE "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"
#define NOT_FOUND "Requested entity was not found."
#define MAX_DESCRIPTION 16384
#define MAX_LABELS 64
#define SEG_MAX 64 /* bytes of one path segment, NUL included */

/* Where repositories may be created: Google's regions and the three
 * multi-regions, sorted (locations.list pages through this array). */
static const char *const locations[] = {
    "africa-south1", "asia", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
    "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
    "australia-southeast1", "australia-southeast2", "europe", "europe-central2", "europe-north1",
    "europe-north2", "europe-southwest1", "europe-west1", "europe-west10", "europe-west12",
    "europe-west2", "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9",
    "me-central1", "me-central2", "me-west1", "northamerica-northeast1", "northamerica-northeast2",
    "northamerica-south1", "southamerica-east1", "southamerica-west1", "us", "us-central1",
    "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3",
    "us-west4",
};
#define N_LOCATIONS (sizeof(locations) / sizeof(locations[0]))

static const char *const formats[] = {"DOCKER", "MAVEN",  "NPM", "APT",     "YUM", "GOOGET",
                                      "PYTHON", "KFP",    "GO",  "GENERIC", "RUBY", NULL};

/* --- request bodies ------------------------------------------------------ */

static const struct wisp_jfield docker_config_fields[] = {{"immutableTags", WISP_J_BOOL}, {NULL}};
static const struct wisp_jfield maven_config_fields[] = {
    {"allowSnapshotOverwrites", WISP_J_BOOL}, {"versionPolicy", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield repo_fields[] = {
    {"name", WISP_J_STRING},
    {"format", WISP_J_STRING},
    {"description", WISP_J_STRING},
    {"labels", WISP_J_OBJECT},
    {"mode", WISP_J_STRING},
    {"dockerConfig", WISP_J_OBJECT, 0, docker_config_fields},
    {"mavenConfig", WISP_J_OBJECT, 0, maven_config_fields},
    {"cleanupPolicyDryRun", WISP_J_BOOL},
    /* Output only: accepted and ignored, as Google does. */
    {"createTime", WISP_J_STRING},
    {"updateTime", WISP_J_STRING},
    {"sizeBytes", WISP_J_ANY},
    {"registryUri", WISP_J_STRING},
    {"satisfiesPzs", WISP_J_BOOL},
    {"satisfiesPzi", WISP_J_BOOL},
    /* Real fields of features wisp does not have: refused by name in
     * repo_from_body(), so the client learns why instead of "unknown". */
    {"kmsKeyName", WISP_J_ANY},
    {"remoteRepositoryConfig", WISP_J_ANY},
    {"virtualRepositoryConfig", WISP_J_ANY},
    {"cleanupPolicies", WISP_J_ANY},
    {"vulnerabilityScanningConfig", WISP_J_ANY},
    {"sbomConfig", WISP_J_ANY},
    {"networkConfig", WISP_J_ANY},
    {"disallowUnspecifiedMode", WISP_J_ANY},
    {NULL}};
static const char *const unsupported_fields[] = {
    "kmsKeyName",      "remoteRepositoryConfig", "virtualRepositoryConfig",
    "cleanupPolicies", "vulnerabilityScanningConfig", "sbomConfig",
    "networkConfig",   "disallowUnspecifiedMode", NULL};


/* --- names --------------------------------------------------------------- */

enum ar_target { AR_LOCATIONS, AR_LOCATION, AR_REPOS, AR_REPO, AR_OPERATION };

/* A parsed service-relative path. Every segment is copied and bounded. */
struct ar_path {
    enum ar_target target;
    char project[SEG_MAX];  /* as given: an ID or a number */
    char location[SEG_MAX];
    char id[SEG_MAX];       /* repository or operation ID */
    char verb[32];          /* after ':' on a repository; "" if none */
};

enum { PATH_OK, PATH_UNKNOWN, PATH_BAD };

/* Copies the segment at *p up to one of stops (or the end) into out and
 * advances *p past it. PATH_BAD when it does not fit, PATH_UNKNOWN when it
 * is empty. */
static int take_segment(const char **p, const char *stops, char *out, size_t cap)
{
    size_t n = strcspn(*p, stops);
    if (n == 0)
        return PATH_UNKNOWN;
    if (n >= cap)
        return PATH_BAD;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return PATH_OK;
}

static int starts(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* /v1/projects/P/locations[/L[/repositories[/R[:verb]]|/operations/OP]];
 * v1beta2 only for locations.list, which is all gcloud asks of it. */
static int parse_path(const char *path, struct ar_path *ap)
{
    memset(ap, 0, sizeof(*ap));
    const char *p = path;
    int beta = 0;
    if (!starts(&p, "/v1/projects/")) {
        if (!starts(&p, "/v1beta2/projects/"))
            return PATH_UNKNOWN;
        beta = 1;
    }
    int rc = take_segment(&p, "/", ap->project, sizeof(ap->project));
    if (rc != PATH_OK)
        return rc;
    if (!starts(&p, "/locations"))
        return PATH_UNKNOWN;
    if (!*p) {
        ap->target = AR_LOCATIONS;
        return PATH_OK;
    }
    if (beta || !starts(&p, "/"))
        return PATH_UNKNOWN;
    rc = take_segment(&p, "/", ap->location, sizeof(ap->location));
    if (rc != PATH_OK)
        return rc;
    if (!*p) {
        ap->target = AR_LOCATION;
        return PATH_OK;
    }
    if (starts(&p, "/operations/")) {
        rc = take_segment(&p, "/", ap->id, sizeof(ap->id));
        ap->target = AR_OPERATION;
        return rc != PATH_OK ? rc : *p ? PATH_UNKNOWN : PATH_OK;
    }
    if (!starts(&p, "/repositories"))
        return PATH_UNKNOWN;
    if (!*p) {
        ap->target = AR_REPOS;
        return PATH_OK;
    }
    if (!starts(&p, "/"))
        return PATH_UNKNOWN;
    rc = take_segment(&p, "/:", ap->id, sizeof(ap->id));
    if (rc != PATH_OK)
        return rc;
    ap->target = AR_REPO;
    if (!*p)
        return PATH_OK;
    if (*p != ':')
        return PATH_UNKNOWN; /* packages, files, ...: not served */
    p++;
    if (!*p || strchr(p, '/') || strlen(p) >= sizeof(ap->verb))
        return PATH_UNKNOWN;
    strcpy(ap->verb, p);
    return PATH_OK;
}

static int location_valid(const char *loc)
{
    for (size_t i = 0; i < N_LOCATIONS; i++) {
        if (strcmp(locations[i], loc) == 0)
            return 1;
    }
    return 0;
}

/* Google's rule: 1-63 lowercase letters, digits and hyphens, starting with
 * a letter and ending with a letter or digit. */
static int repo_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 63 || !(id[0] >= 'a' && id[0] <= 'z') || id[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
    }
    return 1;
}

/* Answers 400 and returns 0 unless the location (and, when with_repo, the
 * repository ID) is well formed. */
static int names_ok(struct wisp_http_req *req, const struct ar_path *ap, int with_repo)
{
    if (!location_valid(ap->location)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid location \"%s\": Artifact Registry locations are regions such "
                       "as us-central1 or the multi-regions us, europe and asia.",
                       ap->location);
        return 0;
    }
    if (with_repo && !repo_id_valid(ap->id)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid repository ID \"%s\": it must be 1 to 63 lowercase letters, "
                       "digits or hyphens, start with a letter and end with a letter or digit.",
                       ap->id);
        return 0;
    }
    return 1;
}

static void repo_resource(struct wispd_resource *r, const char *pid, const struct ar_path *ap,
                          char *buf, size_t len)
{
    snprintf(buf, len, "projects/%s/locations/%s/repositories/%s", pid, ap->location, ap->id);
    r->name = buf;
    r->type = "artifactregistry.googleapis.com/Repository";
    r->service = "artifactregistry.googleapis.com";
    r->project_id = pid;
}

/* Resolves the path's project (ID or number) to its ID; caller frees. For
 * a project that does not exist answers 403 for permission on what would
 * be resource, as Google does, so project IDs cannot be probed. */
static char *project_or_deny(struct wisp_http_req *req, struct wisp_txn *txn,
                             const struct wispd_caller *c, const struct ar_path *ap,
                             const char *permission, int repo_level)
{
    char *pid = wispd_project_id(txn, ap->project);
    if (pid)
        return pid;
    char name[320];
    if (repo_level)
        snprintf(name, sizeof(name), "projects/%s/locations/%s/repositories/%s", ap->project,
                 ap->location, ap->id);
    else
        snprintf(name, sizeof(name), "projects/%s", ap->project);
    wisp_api_denied(req, c->principal, permission, name);
    return NULL;
}

static void now_rfc3339(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000) % 1000000);
}

/* --- operations ---------------------------------------------------------- */

/* Creation and deletion finish inside the request, so the operation is
 * done when returned. It is still stored, under its name, so that
 * operations.get (which gcloud polls once) answers what the call did. The
 * stored document keeps who started it; the answer does not show it.
 * response is stolen. Returns the Operation (caller decrefs) or NULL with
 * *err set. */
static json_t *operation_record(struct wisp_txn *txn, const char *pid, const char *location,
                                const struct wispd_caller *c, json_t *response,
                                enum wisp_err *err)
{
    unsigned char r[16];
    char name[320];
    RAND_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* a version 4 UUID */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(name, sizeof(name),
             "projects/%s/locations/%s/operations/"
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             pid, location, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
             r[11], r[12], r[13], r[14], r[15]);
    json_t *op = json_pack("{s:s, s:{s:s}, s:b, s:o}", "name", name, "metadata", "@type",
                           OP_META_TYPE, "done", 1, "response", response);
    json_t *doc = json_pack("{s:O, s:s}", "operation", op, "principal", c->principal);
    *err = wispd_put_json(txn, OP_KIND, name, doc, 0, NULL);
    json_decref(doc);
    if (*err) {
        json_decref(op);
        return NULL;
    }
    return op;
}

/* GET .../operations/OP: the starter of an operation may always read it;
 * anyone else needs artifactregistry.repositories.get on the project. */
static void operation_get(struct wisp_http_req *req, const struct ar_path *ap)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL;
    json_t *doc = NULL;
    if (!c)
        return;
    if (!names_ok(req, ap, 0))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, "artifactregistry.repositories.get", 0);
    if (!pid)
        goto out;
    char name[320];
    snprintf(name, sizeof(name), "projects/%s/locations/%s/operations/%s", pid, ap->location,
             ap->id);
    err = wispd_get_json(txn, OP_KIND, name, &doc, NULL);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    const char *by = doc ? json_string_value(json_object_get(doc, "principal")) : NULL;
    if ((!by || strcmp(by, c->principal) != 0) &&
        !wispd_check_project(req, txn, c, "artifactregistry.repositories.get", pid))
        goto out;
    if (!doc) {
        wisp_api_error(req, 404, NULL, "Operation \"%s\" not found.", name);
        goto out;
    }
    wisp_api_json(req, 200, json_incref(json_object_get(doc, "operation")));
out:
    json_decref(doc);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- locations ----------------------------------------------------------- */

static json_t *location_json(const char *pid, const char *loc)
{
    char name[200];
    snprintf(name, sizeof(name), "projects/%s/locations/%s", pid, loc);
    return json_pack("{s:s, s:s}", "name", name, "locationId", loc);
}

/* locations.list and locations.get. Google does not document which
 * permission guards them; wisp asks for repositories.list on the project,
 * the permission every use of the answer (listing in each location) needs. */
static void location_read(struct wisp_http_req *req, const struct ar_path *ap)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL, *after = NULL;
    if (!c)
        return;
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 100, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        goto out;
    }
    if (ap->target == AR_LOCATION && !names_ok(req, ap, 0))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, "artifactregistry.repositories.list", 0);
    if (!pid || !wispd_check_project(req, txn, c, "artifactregistry.repositories.list", pid))
        goto out;
    if (ap->target == AR_LOCATION) {
        wisp_api_json(req, 200, location_json(pid, ap->location));
        goto out;
    }
    json_t *items = json_array();
    size_t i = 0;
    while (i < N_LOCATIONS && strcmp(locations[i], after) <= 0)
        i++;
    for (; i < N_LOCATIONS && json_array_size(items) < (size_t)size; i++)
        json_array_append_new(items, location_json(pid, locations[i]));
    json_t *resp = json_pack("{s:o}", "locations", items);
    if (i < N_LOCATIONS) {
        char *tok = wisp_api_page_token_make(locations[i - 1]);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    free(after);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- repositories -------------------------------------------------------- */

/* Label keys: 1-63 characters, lowercase letters, digits, '_' and '-',
 * starting with a letter; values: 0-63 of the same. Characters beyond
 * ASCII are allowed, as Google allows international letters; length counts
 * characters, not bytes. */
static int label_part_ok(const char *s, int is_key)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) != 0x80)
            chars++;
        if (*p >= 0x80)
            continue;
        int lower = *p >= 'a' && *p <= 'z';
        if (chars == 1 && is_key && !lower)
            return 0;
        if (!(lower || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    }
    return chars <= 63 && (!is_key || chars >= 1);
}

static int in_list(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++) {
        if (strcmp(list[i], s) == 0)
            return 1;
    }
    return 0;
}

/* Builds the stored Repository from a create body, or answers 400 and
 * returns NULL. name is its full name, pid and the path give the rest. */
static json_t *repo_from_body(struct wisp_http_req *req, const json_t *body, const char *name,
                              const char *pid, const struct ar_path *ap)
{
    for (int i = 0; unsupported_fields[i]; i++) {
        if (json_object_get(body, unsupported_fields[i])) {
            wisp_api_error(req, 400, NULL,
                           "Repository field \"%s\" is not supported by wisp: it serves "
                           "standard repositories without CMEK, cleanup policies, scanning "
                           "or network settings.",
                           unsupported_fields[i]);
            return NULL;
        }
    }
    const char *format = json_string_value(json_object_get(body, "format"));
    if (!format || !in_list(formats, format)) {
        wisp_api_error(req, 400, NULL,
                       "Invalid repository format \"%.32s\": expected one of DOCKER, MAVEN, NPM, "
                       "APT, YUM, GOOGET, PYTHON, KFP, GO, GENERIC, RUBY.",
                       format ? format : "");
        return NULL;
    }
    const char *mode = json_string_value(json_object_get(body, "mode"));
    if (mode && strcmp(mode, "MODE_UNSPECIFIED") != 0 && strcmp(mode, "STANDARD_REPOSITORY") != 0) {
        wisp_api_error(req, 400, NULL,
                       "Repository mode \"%.32s\" is not supported by wisp: only "
                       "STANDARD_REPOSITORY.",
                       mode);
        return NULL;
    }
    const char *desc = json_string_value(json_object_get(body, "description"));
    if (desc && strlen(desc) > MAX_DESCRIPTION) {
        wisp_api_error(req, 400, NULL, "The description is longer than %d bytes.",
                       MAX_DESCRIPTION);
        return NULL;
    }
    json_t *labels = json_object_get(body, "labels");
    if (json_object_size(labels) > MAX_LABELS) {
        wisp_api_error(req, 400, NULL, "A repository has at most %d labels.", MAX_LABELS);
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(labels, key, val) {
        if (!json_is_string(val) || !label_part_ok(key, 1) ||
            !label_part_ok(json_string_value(val), 0)) {
            wisp_api_error(req, 400, NULL,
                           "Invalid label \"%.64s\": keys are 1 to 63 lowercase letters, digits, "
                           "underscores or hyphens starting with a letter; values are strings "
                           "of up to 63 of the same.",
                           key);
            return NULL;
        }
    }
    json_t *maven = json_object_get(body, "mavenConfig");
    const char *policy = json_string_value(json_object_get(maven, "versionPolicy"));
    if (policy && strcmp(policy, "VERSION_POLICY_UNSPECIFIED") != 0 &&
        strcmp(policy, "RELEASE") != 0 && strcmp(policy, "SNAPSHOT") != 0) {
        wisp_api_error(req, 400, NULL, "Invalid mavenConfig.versionPolicy \"%.32s\".", policy);
        return NULL;
    }
    char now[96], uri[256], lower[16];
    now_rfc3339(now, sizeof(now));
    size_t n = 0;
    for (; format[n] && n < sizeof(lower) - 1; n++)
        lower[n] = (char)(format[n] - 'A' + 'a');
    lower[n] = '\0';
    snprintf(uri, sizeof(uri), "%s-%s.pkg.dev/%s/%s", ap->location, lower, pid, ap->id);
    json_t *repo = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "format",
                             format, "mode", "STANDARD_REPOSITORY", "createTime", now,
                             "updateTime", now, "sizeBytes", "0", "registryUri", uri);
    if (desc && *desc)
        json_object_set_new(repo, "description", json_string(desc));
    if (json_object_size(labels))
        json_object_set(repo, "labels", labels);
    static const char *const copied[] = {"dockerConfig", "mavenConfig", NULL};
    for (int i = 0; copied[i]; i++) {
        json_t *v = json_object_get(body, copied[i]);
        if (json_object_size(v))
            json_object_set(repo, copied[i], v);
    }
    if (json_is_true(json_object_get(body, "cleanupPolicyDryRun")))
        json_object_set_new(repo, "cleanupPolicyDryRun", json_true());
    return repo;
}

/* Removes the policy document of a repository, if any, keeping the
 * member index in step (inside the caller's write transaction). */
static enum wisp_err drop_policy(struct wisp_txn *txn, const char *name)
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

/* POST .../repositories?repositoryId=R */
static void repo_create(struct wisp_http_req *req, struct ar_path *ap)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *repo = NULL;
    char *pid = NULL;
    if (!c)
        return;
    const char *rid = wisp_http_query(req, "repositoryId");
    if (!rid || !*rid) {
        wisp_api_error(req, 400, NULL, "repositoryId is required.");
        goto out;
    }
    if (strlen(rid) >= sizeof(ap->id)) {
        wisp_api_error(req, 400, NULL, "Invalid repository ID: longer than 63 characters.");
        goto out;
    }
    strcpy(ap->id, rid);
    if (!names_ok(req, ap, 1))
        goto out;
    body = wisp_api_body(req, repo_fields);
    if (!body)
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, "artifactregistry.repositories.create", 0);
    if (!pid || !wispd_check_project(req, txn, c, "artifactregistry.repositories.create", pid))
        goto out;
    char name[320];
    struct wispd_resource r;
    repo_resource(&r, pid, ap, name, sizeof(name));
    repo = repo_from_body(req, body, name, pid, ap);
    if (!repo)
        goto out;
    err = wispd_put_json(txn, REPO_KIND, name, repo, 0, NULL);
    if (err == WISP_EEXIST) {
        wisp_api_error(req, 409, "ALREADY_EXISTS", "the repository already exists");
        goto out;
    }
    /* A policy can outlive its repository only through a setIamPolicy that
     * raced a delete; it must not grant anything on a new repository that
     * happens to reuse the name. */
    if (!err)
        err = drop_policy(txn, name);
    json_t *op = NULL;
    if (!err) {
        json_t *resp = json_deep_copy(repo);
        json_object_set_new(resp, "@type", json_string(REPO_TYPE));
        op = operation_record(txn, pid, ap->location, c, resp, &err);
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        json_decref(op);
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("ar", "created %s by %s", name, c->principal);
    wisp_api_json(req, 200, op);
out:
    json_decref(repo);
    json_decref(body);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* GET and DELETE on one repository. */
static void repo_get_delete(struct wisp_http_req *req, const struct ar_path *ap, int del)
{
    const char *perm = del ? "artifactregistry.repositories.delete"
                           : "artifactregistry.repositories.get";
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *repo = NULL;
    char *pid = NULL;
    if (!c)
        return;
    if (!names_ok(req, ap, 1))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), del, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, perm, 1);
    if (!pid)
        goto out;
    char name[320];
    struct wispd_resource r;
    repo_resource(&r, pid, ap, name, sizeof(name));
    if (!wispd_check(req, txn, c, perm, &r))
        goto out;
    err = wispd_get_json(txn, REPO_KIND, name, &repo, NULL);
    if (err == WISP_ENOTFOUND) {
        wisp_api_error(req, 404, NULL, NOT_FOUND);
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!del) {
        wisp_api_json(req, 200, repo);
        repo = NULL;
        goto out;
    }
    /* The repository's policy goes with it, in the same transaction. */
    err = wisp_store_delete(txn, REPO_KIND, name, -1);
    if (!err)
        err = drop_policy(txn, name);
    json_t *op = NULL;
    if (!err)
        op = operation_record(txn, pid, ap->location, c,
                              json_pack("{s:s}", "@type", "type.googleapis.com/google.protobuf.Empty"),
                              &err);
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        json_decref(op);
        wispd_store_error(req, err);
        goto out;
    }
    wisp_log_info("ar", "deleted %s by %s", name, c->principal);
    wisp_api_json(req, 200, op);
out:
    json_decref(repo);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* The one filter wisp evaluates: name="PATTERN" (quotes optional), where
 * '*' matches any run of characters, as gcloud's examples use. Writes the
 * pattern to out; returns 0 for anything else, which gets 400 so that
 * gcloud falls back to filtering on its side. */
static int parse_filter(const char *f, char *out, size_t cap)
{
    while (*f == ' ')
        f++;
    if (strncmp(f, "name", 4) != 0)
        return 0;
    f += 4;
    while (*f == ' ')
        f++;
    if (*f++ != '=')
        return 0;
    while (*f == ' ')
        f++;
    size_t n = strlen(f);
    while (n && f[n - 1] == ' ')
        n--;
    if (n >= 2 && f[0] == '"' && f[n - 1] == '"') {
        f++;
        n -= 2;
    }
    if (n == 0 || n >= cap || memchr(f, '"', n))
        return 0;
    memcpy(out, f, n);
    out[n] = '\0';
    return 1;
}

struct list_ctx {
    json_t *items;
    const char *pattern; /* NULL: all */
    char last[320];      /* name of the last document scanned */
};

static int list_one(const struct wisp_doc *doc, void *arg)
{
    struct list_ctx *lc = arg;
    snprintf(lc->last, sizeof(lc->last), "%s", doc->name);
    if (lc->pattern && fnmatch(lc->pattern, doc->name, 0) != 0)
        return 0;
    json_t *repo = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (repo)
        json_array_append_new(lc->items, repo);
    return 0;
}

/* GET .../repositories: one location's repositories in name order. Google
 * checks repositories.list on the parent and then shows every repository
 * there, so there is no per-repository filtering. */
static void repo_list(struct wisp_http_req *req, const struct ar_path *ap)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    char *pid = NULL, *after = NULL;
    char pattern[320];
    if (!c)
        return;
    long size = wisp_api_page_size(wisp_http_query(req, "pageSize"), 100, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (size < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid pageSize or pageToken.");
        goto out;
    }
    const char *filter = wisp_http_query(req, "filter");
    if (filter && *filter && !parse_filter(filter, pattern, sizeof(pattern))) {
        wisp_api_error(req, 400, NULL,
                       "Invalid filter \"%.100s\": wisp filters repositories by name=\"...\" "
                       "only.",
                       filter);
        goto out;
    }
    const char *order = wisp_http_query(req, "orderBy");
    if (order && *order && strcmp(order, "name") != 0) {
        wisp_api_error(req, 400, NULL, "Invalid orderBy \"%.100s\": wisp orders by name only.",
                       order);
        goto out;
    }
    if (!names_ok(req, ap, 0))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, "artifactregistry.repositories.list", 0);
    if (!pid || !wispd_check_project(req, txn, c, "artifactregistry.repositories.list", pid))
        goto out;
    char prefix[200];
    snprintf(prefix, sizeof(prefix), "projects/%s/locations/%s/repositories/", pid, ap->location);
    struct list_ctx lc = {json_array(), filter && *filter ? pattern : NULL, ""};
    size_t n = 0;
    err = wisp_store_list(txn, REPO_KIND, prefix, after, (size_t)size, list_one, &lc, &n);
    if (err) {
        json_decref(lc.items);
        wispd_store_error(req, err);
        goto out;
    }
    json_t *resp = json_object();
    if (json_array_size(lc.items))
        json_object_set(resp, "repositories", lc.items);
    json_decref(lc.items);
    /* A full page may be the last one; the next request then answers an
     * empty page, which is cheaper than looking one ahead. */
    if (n == (size_t)size && lc.last[0]) {
        char *tok = wisp_api_page_token_make(lc.last);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    wisp_api_json(req, 200, resp);
out:
    free(after);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* :getIamPolicy (GET, options.requestedPolicyVersion in the query),
 * :setIamPolicy and :testIamPermissions (POST). The repository must exist;
 * a caller without the permission learns nothing about whether it does. */
static void repo_iam(struct wisp_http_req *req, const struct ar_path *ap)
{
    int get = strcmp(ap->verb, "getIamPolicy") == 0;
    int set = strcmp(ap->verb, "setIamPolicy") == 0;
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    json_t *body = NULL;
    char *pid = NULL;
    if (!c)
        return;
    if (!names_ok(req, ap, 1))
        goto out;
    int version = 0;
    if (get) {
        const char *v = wisp_http_query(req, "options.requestedPolicyVersion");
        char *end = NULL;
        long lv = v && *v ? strtol(v, &end, 10) : 0;
        if (v && *v && (*end || lv < 0 || lv > 3)) {
            wisp_api_error(req, 400, NULL, "Invalid options.requestedPolicyVersion \"%.16s\".",
                           v);
            goto out;
        }
        version = (int)lv;
    } else {
        body = wisp_api_body(req, set ? wispd_iam_set_policy_fields : wispd_iam_test_fields);
        if (!body)
            goto out;
        if (set && !json_object_get(body, "policy")) {
            wisp_api_error(req, 400, NULL, "Invalid JSON payload: 'policy' is required.");
            goto out;
        }
    }
    struct wispd_iam_resource r = {.get_perm = "artifactregistry.repositories.getIamPolicy",
                                   .set_perm = "artifactregistry.repositories.setIamPolicy"};
    const char *perm = set ? r.set_perm : r.get_perm;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    pid = project_or_deny(req, txn, c, ap, perm, 1);
    if (!pid)
        goto out;
    char name[320];
    repo_resource(&r.res, pid, ap, name, sizeof(name));
    json_t *repo = NULL;
    err = wispd_get_json(txn, REPO_KIND, name, &repo, NULL);
    json_decref(repo);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    if (err == WISP_ENOTFOUND) {
        if (!get && !set) {
            /* testIamPermissions never fails for lack of permission. */
            wisp_api_error(req, 404, NULL, NOT_FOUND);
        } else if (wispd_check(req, txn, c, perm, &r.res)) {
            wisp_api_error(req, 404, NULL, NOT_FOUND);
        }
        goto out;
    }
    wisp_store_rollback(txn);
    txn = NULL;
    if (get)
        wispd_iam_get_policy(req, c, &r, version);
    else if (set)
        wispd_iam_set_policy(req, c, &r, json_object_get(body, "policy"));
    else
        wispd_iam_test_permissions(req, c, &r, json_object_get(body, "permissions"));
out:
    json_decref(body);
    free(pid);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- dispatch ------------------------------------------------------------ */

static void not_allowed(struct wisp_http_req *req, const char *path)
{
    wisp_api_error(req, 405, NULL, "Method %s is not allowed on %.200s.", req->method, path);
}

/* path is service-relative: /v1/projects/P/locations/L/repositories... */
void wispd_artifactregistry(struct wisp_http_req *req, const char *path)
{
    struct ar_path ap;
    const char *m = req->method;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
    int rc = parse_path(path, &ap);
    if (rc == PATH_BAD) {
        wisp_api_error(req, 400, NULL, "Invalid resource name in %.200s.", path);
        return;
    }
    if (rc != PATH_OK) {
        wisp_api_error(req, 404, NULL, "Unknown Artifact Registry method: %.200s", path);
        return;
    }
    switch (ap.target) {
    case AR_LOCATIONS:
    case AR_LOCATION:
        if (get)
            location_read(req, &ap);
        else
            not_allowed(req, path);
        return;
    case AR_OPERATION:
        if (get)
            operation_get(req, &ap);
        else
            not_allowed(req, path);
        return;
    case AR_REPOS:
        if (get)
            repo_list(req, &ap);
        else if (post)
            repo_create(req, &ap);
        else
            not_allowed(req, path);
        return;
    case AR_REPO:
        break;
    }
    if (!ap.verb[0]) {
        if (get || strcmp(m, "DELETE") == 0)
            repo_get_delete(req, &ap, !get);
        else
            not_allowed(req, path);
        return;
    }
    int known = strcmp(ap.verb, "getIamPolicy") == 0 || strcmp(ap.verb, "setIamPolicy") == 0 ||
                strcmp(ap.verb, "testIamPermissions") == 0;
    if (!known)
        wisp_api_error(req, 404, NULL, "Unknown Artifact Registry method: %.200s", path);
    else if (strcmp(ap.verb, "getIamPolicy") == 0 ? get : post)
        repo_iam(req, &ap);
    else
        not_allowed(req, path);
}
