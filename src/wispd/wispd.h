/* SPDX-License-Identifier: Apache-2.0 */
/* Private to wispd: the daemon's shared state, per-thread state, and the
 * small set of helpers every API file uses (caller resolution, permission
 * checks, store access). */
#ifndef WISPD_H
#define WISPD_H

#include <jansson.h>
#include <stdint.h>
#include "wisp/http.h"
#include "wisp/cond.h"
#include "wisp/member.h"
#include "wisp/store.h"
#include "wisp/token.h"

/* Process-wide state, read-only once serving starts. */
struct wispd {
    const char *state_dir;   /* borrowed from argv */
    char *store_url;         /* from malloc() */
    struct wisp_token_keyring *keyring;
};

extern struct wispd wispd;

/* One per worker thread (req->thread_data). */
struct wispd_thread {
    struct wisp_store *store;
};

/* The authenticated caller of one request. */
struct wispd_caller {
    struct wisp_token_claims claims;
    struct wisp_caller who;  /* points into claims */
    char *principal;         /* member syntax, for messages; from malloc() */
};

/* Resolves the Bearer token of req. On failure answers 401 and returns
 * NULL. Caller frees with wispd_caller_free(). */
struct wispd_caller *wispd_authenticate(struct wisp_http_req *req);
void wispd_caller_free(struct wispd_caller *c);

/* Checks permission on a project (its IAM policy, and in time its
 * ancestors'). Answers 403 naming principal, permission and resource and
 * returns 0 on denial; returns 1 when allowed. project_id must exist. */
int wispd_check_project(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const char *permission,
                        const char *project_id);

/* Fills env for a condition evaluated on project name ("projects/P") now. */
void wispd_cond_env_project(struct wisp_cond_env *env, const char *name);

/* Answers an error for a store failure. */
void wispd_store_error(struct wisp_http_req *req, enum wisp_err err);

/* The thread's store handle. */
static inline struct wisp_store *wispd_store(struct wisp_http_req *req)
{
    return ((struct wispd_thread *)req->thread_data)->store;
}

/* Reads a document's body as JSON: WISP_OK and *out (caller decrefs), with
 * the revision in *rev_out (may be NULL). */
enum wisp_err wispd_get_json(struct wisp_txn *txn, const char *kind, const char *name,
                             json_t **out, int64_t *rev_out);
/* Writes obj as a document (expect_rev as in wisp_store_put). */
enum wisp_err wispd_put_json(struct wisp_txn *txn, const char *kind, const char *name,
                             const json_t *obj, int64_t expect_rev, int64_t *rev_out);

/* Resolves a project given by ID or number to its ID (caller frees), or
 * NULL when there is no such project. */
char *wispd_project_id(struct wisp_txn *txn, const char *id_or_number);

/* The IAM-policy methods shared by every resource type: how to name the
 * resource's policy document and which permissions guard reading and
 * writing it. */
struct wispd_iam_resource {
    const char *name;       /* e.g. "projects/P": the iampolicy document */
    const char *get_perm, *set_perm;
    const char *project_id; /* whose policy authorizes the call */
};
void wispd_iam_get_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, int requested_version);
void wispd_iam_set_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, const json_t *policy);
void wispd_iam_test_permissions(struct wisp_http_req *req, const struct wispd_caller *c,
                                const struct wispd_iam_resource *r, const json_t *perms);

/* Projects: ID syntax, and creation with a fresh number and an owner. */
int wispd_project_id_valid(const char *id);
enum wisp_err wispd_project_create(struct wisp_txn *txn, const char *id, const char *display,
                                   const char *owner_member, json_t **out);

/* An API: handles one request whose service-relative path is path. */
typedef void (*wispd_api_fn)(struct wisp_http_req *req, const char *path);

void wispd_crm(struct wisp_http_req *req, const char *path);
void wispd_serviceusage(struct wisp_http_req *req, const char *path);
void wispd_oauth2(struct wisp_http_req *req, const char *path);

/* Creates what a new state directory needs: token key, CA and server
 * certificate, the project and its owner service account with a key file.
 * Idempotent. */
int wispd_bootstrap(struct wisp_store *st, const char *state_dir, const char *project_id);

/* Loads every token key from the store into wispd.keyring. */
int wispd_load_keys(struct wisp_store *st);

#endif
