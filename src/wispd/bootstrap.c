/* SPDX-License-Identifier: Apache-2.0 */
/* What a new state directory needs before wispd serves: a token key, a CA
 * and a loopback server certificate, the project, and the project's owner
 * (a service account whose key file `wisp env` hands to gcloud). Every step
 * checks first, so running it on every start is safe. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"
#include "wisp/log.h"
#include "wisp/pki.h"
#include "wispd.h"

/* Writes text to path atomically (temp file + rename) with mode. */
int wispd_write_file(const char *path, const char *text, mode_t mode)
{
    char *tmp = wisp_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int ok = 0;
    if (fd >= 0) {
        size_t len = strlen(text);
        ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
        close(fd);
        ok = ok && rename(tmp, path) == 0;
    }
    if (!ok) {
        wisp_log_err("boot", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

static int stop_at_first(const struct wisp_doc *doc, void *ctx)
{
    (void)doc;
    (void)ctx;
    return 1;
}

static int ensure_token_key(struct wisp_txn *txn)
{
    size_t n = 0;
    if (wisp_store_list(txn, "tokenkey", "", NULL, 1, stop_at_first, NULL, &n) != WISP_OK)
        return -1;
    if (n)
        return 0;
    unsigned char key[WISP_TOKEN_KEY_LEN];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return -1;
    char *b = wisp_b64_encode(key, sizeof(key));
    json_t *doc = json_pack("{s:s, s:I}", "key", b, "created", (json_int_t)time(NULL));
    wisp_secret_free(b, 0);
    int rc = wispd_put_json(txn, "tokenkey", "00000001", doc, 0, NULL) == WISP_OK ? 0 : -1;
    json_decref(doc);
    return rc;
}

/* The CA lives in the store (so every replica shares it); its certificate
 * is also written to STATE/ca.pem for clients to trust. */
static int ensure_pki(struct wisp_txn *txn, const char *state_dir)
{
    json_t *ca = NULL;
    if (wispd_get_json(txn, "pki", "ca", &ca, NULL) != WISP_OK) {
        char *cert, *key;
        if (wisp_pki_ca_new("wisp CA", &cert, &key) != WISP_OK)
            return -1;
        ca = json_pack("{s:s, s:s}", "cert", cert, "key", key);
        free(cert);
        wisp_secret_free(key, 0);
        if (wispd_put_json(txn, "pki", "ca", ca, 0, NULL) != WISP_OK) {
            json_decref(ca);
            return -1;
        }
    }
    const char *ca_cert = json_string_value(json_object_get(ca, "cert"));
    const char *ca_key = json_string_value(json_object_get(ca, "key"));
    char *path = wisp_xasprintf("%s/ca.pem", state_dir);
    int rc = wispd_write_file(path, ca_cert, 0644);
    free(path);
    /* A fresh loopback certificate each start, kept in memory: cheap, and
     * nothing to rotate or leave on disk. */
    static const char *const dns[] = {"localhost", "*.googleapis.com", "googleapis.com",
                                      "metadata.google.internal", NULL};
    static const char *const ips[] = {"127.0.0.1", "::1", NULL};
    free(wispd.tls_cert_pem);
    if (wispd.tls_key_pem)
        wisp_secret_free(wispd.tls_key_pem, 0);
    wispd.tls_cert_pem = wispd.tls_key_pem = NULL;
    if (!rc && wisp_pki_server_cert(ca_cert, ca_key, "wisp", dns, ips, &wispd.tls_cert_pem,
                                    &wispd.tls_key_pem) != WISP_OK)
        rc = -1;
    json_decref(ca);
    return rc;
}

/* Creates service account EMAIL in project (if absent) and returns 0. */
static int ensure_sa(struct wisp_txn *txn, const char *project, const char *account)
{
    char *email = wisp_xasprintf("%s@%s.iam.gserviceaccount.com", account, project);
    json_t *sa = NULL;
    int rc = 0;
    if (wispd_get_json(txn, "sa", email, &sa, NULL) != WISP_OK) {
        int64_t uid;
        if (wisp_store_counter_next(txn, "sa-uid", &uid) != WISP_OK) {
            rc = -1;
            goto out;
        }
        char unique[32], name[300];
        snprintf(unique, sizeof(unique), "1%020lld", (long long)uid);
        snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s", project, email);
        sa = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "projectId", project,
                       "uniqueId", unique, "email", email, "displayName", "wisp owner",
                       "oauth2ClientId", unique, "etag", "MDEwMjE5MjA=");
        rc = wispd_put_json(txn, "sa", email, sa, 0, NULL) == WISP_OK ? 0 : -1;
    }
    /* Every start, so state directories from before the index get it. */
    if (!rc && wispd_sa_index_put(txn, sa) != WISP_OK)
        rc = -1;
out:
    json_decref(sa);
    free(email);
    return rc;
}

/* A new key for the account; writes the Google-format key file. Its
 * token_uri is Google's: the loopback port changes from start to start, so
 * gcloud is pointed at wisp by `wisp env` (CLOUDSDK_AUTH_TOKEN_HOST). */
static int write_key_file(struct wisp_txn *txn, const char *email, const char *path)
{
    json_t *sa = NULL;
    struct wispd_sa_key k = {0};
    char *text = NULL;
    int rc = -1;
    if (wispd_get_json(txn, "sa", email, &sa, NULL) != WISP_OK ||
        wispd_sa_key_generate(sa, &k) != WISP_OK || wispd_sa_key_store(txn, &k) != WISP_OK)
        goto out;
    text = wispd_sa_key_file(sa, &k, "https://oauth2.googleapis.com/token");
    rc = wispd_write_file(path, text, 0600);
out:
    if (text)
        wisp_secret_free(text, 0);
    wispd_sa_key_free(&k);
    json_decref(sa);
    return rc;
}

/* The organization every project of this state directory sits under. */
static int ensure_org(struct wisp_txn *txn)
{
    json_t *meta = NULL;
    if (wispd_get_json(txn, "meta", "organization", &meta, NULL) == WISP_OK) {
        json_decref(meta);
        return 0;
    }
    unsigned char r[8];
    RAND_bytes(r, sizeof(r));
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | r[i];
    char id[24], name[48];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)(100000000000ULL + v % 900000000000ULL));
    snprintf(name, sizeof(name), "organizations/%s", id);
    char created[32], customer[16];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&now, &tm));
    snprintf(customer, sizeof(customer), "C0%07llx", (unsigned long long)(v & 0xfffffff));
    json_t *org = json_pack("{s:s, s:s, s:{s:s}, s:s, s:s}", "name", name, "displayName",
                            "wisp.local", "owner", "directoryCustomerId", customer,
                            "creationTime", created, "lifecycleState", "ACTIVE");
    meta = json_pack("{s:s}", "id", id);
    int rc = wispd_put_json(txn, "organization", id, org, 0, NULL) == WISP_OK &&
                     wispd_put_json(txn, "meta", "organization", meta, 0, NULL) == WISP_OK
                 ? 0
                 : -1;
    json_decref(org);
    json_decref(meta);
    return rc;
}

/* The first project's owner administers the organization, as the creator of
 * a Google organization does: it gets roles/orgpolicy.policyAdmin and
 * roles/resourcemanager.organizationAdmin there, once, when the organization
 * has no IAM policy yet (`gcloud organizations list`, org-level
 * `gcloud resource-manager org-policies ... --organization`). */
static int ensure_org_admin(struct wisp_txn *txn, const char *owner)
{
    json_t *meta = NULL, *pol = NULL;
    int rc = -1;
    if (wispd_get_json(txn, "meta", "organization", &meta, NULL) != WISP_OK)
        return -1;
    char name[64];
    snprintf(name, sizeof(name), "organizations/%s",
             json_string_value(json_object_get(meta, "id")) ?: "-");
    if (wispd_get_json(txn, "iampolicy", name, &pol, NULL) == WISP_OK) {
        rc = 0;
        goto out;
    }
    pol = json_pack("{s:[{s:s, s:[s]}, {s:s, s:[s]}]}", "bindings", "role",
                    "roles/orgpolicy.policyAdmin", "members", owner, "role",
                    "roles/resourcemanager.organizationAdmin", "members", owner);
    if (wispd_put_json(txn, "iampolicy", name, pol, 0, NULL) == WISP_OK &&
        wispd_member_refs_update(txn, name, NULL, pol) == WISP_OK)
        rc = 0;
out:
    json_decref(pol);
    json_decref(meta);
    return rc;
}

int wispd_bootstrap(struct wisp_store *st, const char *state_dir, const char *project_id)
{
    struct wisp_txn *txn = NULL;
    char *run = wisp_xasprintf("%s/run", state_dir);
    mkdir(run, 0700);
    free(run);
    if (wisp_store_begin(st, 1, &txn) != WISP_OK)
        return -1;
    int rc = -1;
    if (ensure_token_key(txn) || ensure_pki(txn, state_dir) || ensure_org(txn))
        goto out;
    /* The ID-token key exists from the start, so its certificates can be
     * served from a read transaction. */
    char *gkid = NULL, *gpem = NULL;
    if (wispd_google_key(txn, &gkid, &gpem) != WISP_OK)
        goto out;
    free(gkid);
    wisp_secret_free(gpem, 0);
    if (project_id) {
        json_t *p = NULL;
        char *owner = wisp_xasprintf("serviceAccount:wisp-owner@%s.iam.gserviceaccount.com",
                                     project_id);
        if (wispd_get_json(txn, "project", project_id, &p, NULL) != WISP_OK &&
            wispd_project_create(txn, project_id, project_id, owner, NULL) != WISP_OK) {
            free(owner);
            goto out;
        }
        json_decref(p);
        int org_bad = ensure_org_admin(txn, owner);
        free(owner);
        if (org_bad)
            goto out;
        if (ensure_sa(txn, project_id, "wisp-owner"))
            goto out;
        char *path = wisp_xasprintf("%s/owner-key.json", state_dir);
        char *email = wisp_xasprintf("wisp-owner@%s.iam.gserviceaccount.com", project_id);
        int have = access(path, R_OK) == 0;
        int bad = !have && write_key_file(txn, email, path);
        free(path);
        free(email);
        if (bad)
            goto out;
    }
    if (wispd_member_refs_init(txn) != WISP_OK)
        goto out;
    rc = wisp_store_commit(txn) == WISP_OK ? 0 : -1;
    txn = NULL;
out:
    wisp_store_rollback(txn);
    return rc;
}
