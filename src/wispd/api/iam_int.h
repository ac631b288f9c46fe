/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the IAM API (src/wispd/api/iam*.c) and the member reverse
 * index (src/wispd/member_refs.c): the handlers the router calls, and the
 * pure helpers they share, which the unit tests compile directly. */
#ifndef WISPD_IAM_INT_H
#define WISPD_IAM_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"
#include "wisp/http.h"

/* Google's deprecated ServiceAccount.etag is the same for every account. */
#define WISPD_SA_ETAG "MDEwMjE5MjA="
/* A deleted service account can be undeleted for this long. */
#define WISPD_SA_UNDELETE_SECS (30 * 86400)
/* A deleted custom role can be undeleted for 7 days; its ID stays taken
 * until it is purged, 37 days after deletion (Google's schedule). */
#define WISPD_ROLE_UNDELETE_SECS (7 * 86400)
#define WISPD_ROLE_PURGE_SECS (37 * 86400)
#define WISPD_ROLE_MAX_PERMISSIONS 3000

/* --- pure helpers (src/wispd/api/iam_util.c) -------------------------------- */

/* accountId: 6-30 chars, [a-z]([-a-z0-9]*[a-z0-9]). */
int wispd_iam_account_id_valid(const char *id);
/* Custom role IDs: 3-64 chars of [a-zA-Z0-9_.]. */
int wispd_iam_role_id_valid(const char *id);
/* 1 if s is all decimal digits (a service account's unique ID) and not empty. */
int wispd_iam_all_digits(const char *s);

/* Percent-decodes n bytes of a path segment into a new string (caller
 * frees), or NULL on a malformed escape or a decoded NUL. */
char *wispd_iam_path_decode(const char *s, size_t n);

/* The members of a stored policy that the reverse index tracks, as an
 * object {canonical member: true}: service accounts by email
 * ("serviceAccount:E", not the legacy KSA form) and deleted service accounts
 * ("deleted:serviceAccount:E?uid=N"). NULL policy gives {}. Caller decrefs. */
json_t *wispd_iam_indexed_members(const json_t *policy);

/* A copy of policy in which every member whose canonical form is from reads
 * to instead, deduplicated within each binding; roles, conditions, audit
 * configs and every other member kept as they are. *changed says whether
 * any member was replaced. Caller decrefs. */
json_t *wispd_iam_policy_replace_member(const json_t *policy, const char *from, const char *to,
                                        int *changed);

/* Checks a custom role's permission list: strings, each a known permission
 * (wisp_iam_permission_known), at most WISPD_ROLE_MAX_PERMISSIONS. Returns
 * the sorted, deduplicated list (caller decrefs), or NULL with a one-line
 * message naming the first bad permission. */
json_t *wispd_iam_role_permissions(const json_t *perms, char *msg, size_t msglen);
/* 1 if stage is a Role.stage value Google accepts. */
int wispd_iam_role_stage_valid(const char *stage);

/* Every known permission (granted by some predefined role), sorted, as a
 * JSON array of strings. Caller decrefs. */
json_t *wispd_iam_known_permissions(void);

/* A role as the API returns it: stored (predefined or custom document) with
 * etag (custom roles: from the document revision rev; predefined: "AA=="),
 * includedPermissions only when full, internal fields dropped. Caller
 * decrefs. */
json_t *wispd_iam_role_render(const json_t *stored, int64_t rev, int full);

/* --- handlers (src/wispd/api/iam_sa.c, iam_roles.c) -------------------------- */

/* rest is what follows "/v1/projects/PROJECT/serviceAccounts" (""
 * or "/ID" or "/ID:verb"); project is decoded. */
void wispd_iam_sa(struct wisp_http_req *req, const char *project, const char *rest);
/* rest is what follows "/v1/projects/PROJECT/serviceAccounts/": "ID/keys",
 * "ID/keys/KEY" or "ID/keys/KEY:verb" (src/wispd/api/iam_keys.c). */
void wispd_iam_keys(struct wisp_http_req *req, const char *project, const char *rest);
/* 1 if rest (as for wispd_iam_keys) names an account's keys. */
int wispd_iam_is_keys_path(const char *rest);

struct wispd_caller;
struct wisp_txn;
/* Begins a transaction (write or read) and loads the account that id (an
 * email or unique ID) names under project ("-" for any), with permission
 * checked on it. On any failure the error is answered and 0 returned. */
int wispd_iam_open_sa(struct wisp_http_req *req, const struct wispd_caller *c, int write,
                      const char *permission, const char *project, const char *id,
                      struct wisp_txn **txn, json_t **sa, int64_t *rev);
/* GET /v1/roles and /v1/roles/ROLE (rest "" or "/ROLE"). */
void wispd_iam_predefined_roles(struct wisp_http_req *req, const char *rest);
/* POST /v1/permissions:queryTestablePermissions: every permission some
 * predefined role grants (what a custom role may list). */
void wispd_iam_testable_permissions(struct wisp_http_req *req);
/* /v1/projects/PROJECT/roles…: rest "" or "/ROLE" or "/ROLE:undelete". */
void wispd_iam_project_roles(struct wisp_http_req *req, const char *project, const char *rest);

#endif
