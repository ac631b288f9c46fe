/* SPDX-License-Identifier: Apache-2.0 */
/* The node identity of GCE_METADATA node pools: the pool's service account
 * (the project's Compute Engine default account unless the pool names one,
 * created here if missing, as enabling Compute Engine does) and a key of it
 * that the node's wisp-metadata signs RFC 7523 grants with. One key per
 * pool, in STATE/nodes/FABRIC/node-sa-POOL.json (0600), renewed daily and
 * deleted when the supervisor stops. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "api/iam_int.h"
#include "nodes_int.h"
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "wispd.h"

#define KEY_RENEW (24 * 3600) /* seconds before a pool's key is replaced */
#define KEY_PREFIX "node-sa-"
#define COMPUTE_DOMAIN "-compute@developer.gserviceaccount.com"

char *wispd_nodes_gce_email(const json_t *pool_config, const char *project_number)
{
    const char *sa = json_string_value(json_object_get(pool_config, "serviceAccount"));
    if (sa && *sa && strcmp(sa, "default") != 0)
        return wisp_xstrdup(sa);
    return wisp_xasprintf("%s" COMPUTE_DOMAIN, project_number);
}

void wispd_nodes_gce_key_path(const char *dir, const char *pool, char *out, size_t len)
{
    snprintf(out, len, "%s/" KEY_PREFIX "%s.json", dir, pool);
}

static int is_compute_default(const char *email, const char *project_number)
{
    size_t n = strlen(project_number);
    return strncmp(email, project_number, n) == 0 && strcmp(email + n, COMPUTE_DOMAIN) == 0;
}

/* The key id and account a key file names (NULL, NULL if unreadable).
 * Caller frees both. */
static void key_file_ids(const char *path, char **kid, char **email)
{
    json_t *f = json_load_file(path, 0, NULL);
    const char *k = json_string_value(json_object_get(f, "private_key_id"));
    const char *e = json_string_value(json_object_get(f, "client_email"));
    *kid = k && e ? wisp_xstrdup(k) : NULL;
    *email = k && e ? wisp_xstrdup(e) : NULL;
    json_decref(f);
}

enum wispd_gce_key wispd_nodes_gce_key_check(struct wisp_txn *txn, const char *path,
                                             const char *email, const char *project_number)
{
    json_t *sa = NULL, *key = NULL;
    char *kid = NULL, *kemail = NULL;
    enum wispd_gce_key st = WISPD_GCE_KEY_MAKE;
    if (wispd_get_json(txn, "sa", email, &sa, NULL) != WISP_OK) {
        if (!is_compute_default(email, project_number))
            st = WISPD_GCE_KEY_NO_ACCOUNT;
        goto out;
    }
    if (json_is_true(json_object_get(sa, "disabled"))) {
        st = WISPD_GCE_KEY_NO_ACCOUNT;
        goto out;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || time(NULL) - sb.st_mtime >= KEY_RENEW)
        goto out;
    key_file_ids(path, &kid, &kemail);
    /* A key deleted or disabled with gcloud, or of another account, is
     * replaced. */
    if (kid && strcmp(kemail, email) == 0 &&
        wispd_get_json(txn, "sakey", kid, &key, NULL) == WISP_OK &&
        !json_is_true(json_object_get(key, "disabled")))
        st = WISPD_GCE_KEY_READY;
out:
    free(kid);
    free(kemail);
    json_decref(key);
    json_decref(sa);
    return st;
}

/* The account doc, creating the Compute Engine default account if it is
 * the one missing. Caller decrefs. */
static json_t *account(struct wisp_store *st, const char *project_id, const char *project_number,
                       const char *email)
{
    struct wisp_txn *txn = NULL;
    json_t *sa = NULL;
    int64_t n;
    if (wisp_store_begin(st, 1, &txn) != WISP_OK)
        return NULL;
    if (wispd_get_json(txn, "sa", email, &sa, NULL) == WISP_OK ||
        !is_compute_default(email, project_number))
        goto out;
    if (wisp_store_counter_next(txn, "sa-uid", &n) != WISP_OK)
        goto out;
    char uid[32], name[400];
    snprintf(uid, sizeof(uid), "1%020lld", (long long)n);
    snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s", project_id, email);
    sa = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "projectId",
                   project_id, "uniqueId", uid, "email", email, "oauth2ClientId", uid, "etag",
                   WISPD_SA_ETAG, "displayName", "Compute Engine default service account");
    enum wisp_err err = wispd_put_json(txn, "sa", email, sa, 0, NULL);
    if (!err)
        err = wispd_sa_index_put(txn, sa);
    if (!err) {
        err = wisp_store_commit(txn); /* frees txn, even when it fails */
        txn = NULL;
    }
    if (err) {
        json_decref(sa);
        sa = NULL;
        goto out;
    }
    wisp_log_info("nodes", "created %s (Compute Engine default service account)", email);
out:
    wisp_store_rollback(txn);
    return sa;
}

/* Deletes key kid of account email from the store. */
static void drop_key(struct wisp_store *st, const char *email, const char *kid)
{
    struct wisp_txn *txn = NULL;
    char ix[400];
    snprintf(ix, sizeof(ix), "%s/%s", email, kid);
    if (wisp_store_begin(st, 1, &txn) != WISP_OK)
        return;
    wisp_store_delete(txn, "sakey", kid, -1);
    wisp_store_delete(txn, "sakeyix", ix, -1);
    if (wisp_store_commit(txn) != WISP_OK)
        wisp_log_warn("nodes", "could not delete node key %s of %s", kid, email);
}

int wispd_nodes_gce_key_make(struct wisp_store *st, const char *project_id,
                             const char *project_number, const char *email, const char *path)
{
    struct wispd_sa_key k = {0};
    struct wisp_txn *txn = NULL;
    char *old_kid = NULL, *old_email = NULL, *text = NULL;
    int rc = -1;
    json_t *sa = account(st, project_id, project_number, email);
    if (!sa || wispd_sa_key_generate(sa, &k) != WISP_OK)
        goto out;
    /* Its grants may carry the instance claims of format=full ID tokens
     * (api/oauth2.c); keys made through the IAM API never can. */
    json_object_set_new(k.doc, "nodeKey", json_true());
    if (wisp_store_begin(st, 1, &txn) != WISP_OK)
        goto out;
    enum wisp_err err = wispd_sa_key_store(txn, &k);
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    txn = NULL;
    if (err)
        goto out;
    key_file_ids(path, &old_kid, &old_email);
    /* Google's token_uri, as on a real node; wisp-metadata is told where
     * wisp's token endpoint is (--token-uri). */
    text = wispd_sa_key_file(sa, &k, "https://oauth2.googleapis.com/token");
    if (wispd_write_file(path, text, 0600) != 0) {
        drop_key(st, email, k.kid);
        goto out;
    }
    if (old_kid)
        drop_key(st, old_email, old_kid);
    wisp_log_info("nodes", "node key %s of %s in %s", k.kid, email, path);
    rc = 0;
out:
    if (rc)
        wisp_log_err("nodes", "could not make a node key of %s", email);
    if (text)
        wisp_secret_free(text, 0);
    free(old_kid);
    free(old_email);
    wispd_sa_key_free(&k);
    json_decref(sa);
    return rc;
}

void wispd_nodes_gce_keys_drop(struct wisp_store *st, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, KEY_PREFIX, sizeof(KEY_PREFIX) - 1) != 0 || n < 5 ||
            strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char *path = wisp_xasprintf("%s/%s", dir, e->d_name), *kid, *email;
        key_file_ids(path, &kid, &email);
        if (kid)
            drop_key(st, email, kid);
        unlink(path);
        free(kid);
        free(email);
        free(path);
    }
    if (d)
        closedir(d);
}
