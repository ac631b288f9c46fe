/* SPDX-License-Identifier: Apache-2.0 */
/* bench/authz/wispd.sh's helper: gives a project a policy of N bindings by
 * writing its store document directly (setIamPolicy stops at 1,500
 * members). N - (existing bindings) fillers come first, each a distinct
 * (role, condition) pair naming two members who are not the caller, and the
 * project's own bindings (its owner) last (fillers of an earlier run are
 * replaced), so the old linear walk reaches
 * the caller's grant only after every filler.
 * Usage: seed STORE_PATH PROJECT_ID N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "wisp/store.h"

/* The title of a filler's condition, so that seeding again replaces them. */
#define FILLER "bench filler "

/* Some grant the benchmarked permission (resourcemanager.projects.get),
 * some do not, as in a real project. */
static const char *const roles[] = {
    "roles/viewer",        "roles/browser",           "roles/storage.objectViewer",
    "roles/editor",        "roles/iam.securityReviewer", "roles/container.clusterViewer",
    "roles/storage.admin", "roles/iam.serviceAccountUser",
};

static json_t *filler(long i)
{
    char sub[256], user[64], title[64], expr[128];
    snprintf(sub, sizeof(sub),
             "principal://iam.googleapis.com/projects/123456789012/locations/global/"
             "workloadIdentityPools/bench.svc.id.goog/subject/ns/ns-%ld/sa/app", i);
    snprintf(user, sizeof(user), "user:user-%ld@example.com", i);
    snprintf(title, sizeof(title), FILLER "%ld", i);
    /* True for the benchmark's requests: the walk must look at members. */
    snprintf(expr, sizeof(expr), "request.time < timestamp('2%03ld-01-01T00:00:00Z')",
             100 + i % 900);
    return json_pack("{s:s, s:[s, s], s:{s:s, s:s}}", "role",
                     roles[i % (long)(sizeof(roles) / sizeof(roles[0]))], "members", sub, user,
                     "condition", "title", title, "expression", expr);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: seed STORE_PATH PROJECT_ID N\n");
        return 100;
    }
    long n = atol(argv[3]);
    char name[300];
    snprintf(name, sizeof(name), "projects/%s", argv[2]);
    struct wisp_store *st = NULL;
    struct wisp_txn *txn = NULL;
    struct wisp_doc doc = {0};
    json_t *policy = NULL, *bindings = json_array();
    char *text = NULL;
    int rc = 111;
    if (wisp_store_open(argv[1], &st) || wisp_store_begin(st, 1, &txn) ||
        wisp_store_get(txn, "iampolicy", name, &doc))
        goto out;
    policy = json_loadb(doc.body, doc.body_len, 0, NULL);
    json_t *own = json_array(), *b;
    size_t j;
    json_array_foreach(json_object_get(policy, "bindings"), j, b) {
        const char *t =
            json_string_value(json_object_get(json_object_get(b, "condition"), "title"));
        if (!t || strncmp(t, FILLER, strlen(FILLER)) != 0)
            json_array_append(own, b);
    }
    for (long i = 0; i < n - (long)json_array_size(own); i++)
        json_array_append_new(bindings, filler(i));
    json_array_extend(bindings, own);
    json_decref(own);
    json_object_set(policy, "bindings", bindings);
    text = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    if (wisp_store_put(txn, "iampolicy", name, text, strlen(text), -1, NULL) ||
        wisp_store_commit(txn))
        goto out;
    txn = NULL;
    printf("%s: %zu bindings, %zu bytes\n", name, json_array_size(bindings), strlen(text));
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "seed: cannot rewrite the policy of %s in %s\n", name, argv[1]);
    free(text);
    json_decref(bindings);
    json_decref(policy);
    wisp_store_doc_free(&doc);
    wisp_store_rollback(txn);
    wisp_store_close(st);
    return rc;
}
