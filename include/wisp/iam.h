/* SPDX-License-Identifier: Apache-2.0 */
/* IAM: roles, allow policies and the authorization decision. Pure: no I/O
 * here. Callers load the policies of a resource and its ancestors from the
 * store and pass them in; authorize() says allow or deny, and why. */
#ifndef WISP_IAM_H
#define WISP_IAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"
#include "wisp/cond.h"
#include "wisp/member.h"

/* --- roles ----------------------------------------------------------------- */

/* The predefined roles (data/roles.json, built in): the role object
 * {"name","title","description","stage","includedPermissions":[...]}, or NULL.
 * Borrowed; valid for the life of the process. */
const json_t *wisp_iam_role_get(const char *role);
/* All predefined roles, as a JSON array (borrowed). */
const json_t *wisp_iam_roles_all(void);
/* 1 if the predefined role grants permission. */
int wisp_iam_role_grants(const char *role, const char *permission);
/* 1 if permission is granted by some predefined role (a known permission). */
int wisp_iam_permission_known(const char *permission);

/* --- policies -------------------------------------------------------------- */

#define WISP_IAM_EMPTY_ETAG "ACAB"
#define WISP_IAM_MAX_MEMBERS 1500

/* Etag text for a store revision (0 → "ACAB", the empty policy's); caller
 * frees. And back: WISP_EINVAL if the etag is not one wisp made. */
char *wisp_iam_etag_make(int64_t rev);
enum wisp_err wisp_iam_etag_parse(const char *etag, int64_t *rev_out);

/* Validates a policy a client sent (setIamPolicy) and returns it in stored
 * form: members canonical and deduplicated, bindings of the same role and
 * condition merged, empty bindings dropped, "etag" and "version" removed.
 * Checks: version 0, 1 or 3; conditions need version 3, a title and an
 * expression; roles predefined or custom ("projects/P/roles/R"); members
 * valid; at most WISP_IAM_MAX_MEMBERS. On error writes a one-line message
 * (quoting the bad member or role) and returns NULL. Caller decrefs. */
json_t *wisp_iam_policy_normalize(const json_t *in, char *msg, size_t msglen);

/* The policy as getIamPolicy returns it: stored (NULL = empty), with etag
 * from rev, "version" 3 when it has conditions and 1 otherwise. A request
 * for version 1 of a policy with conditions is WISP_EINVAL (message in msg).
 * requested_version 0 means "not given". Caller decrefs *out. */
enum wisp_err wisp_iam_policy_render(const json_t *stored, int64_t rev, int requested_version,
                                     json_t **out, char *msg, size_t msglen);

/* --- authorization ---------------------------------------------------------- */

/* A stored policy compiled for fast decisions (docs/internals/AUTHORIZE.md):
 * member match key -> bindings naming it, conditions parsed. Immutable once
 * built: any number of threads may use one index at once without locking. */
struct wisp_iam_index;

/* The policies that apply to one resource: its own first, then each
 * ancestor's (project, organization). Entries may be NULL (no policy).
 * Fields after env are optional (zero/NULL = not given), so positional
 * initialisers of the first four keep working. */
struct wisp_iam_target {
    const char *resource;          /* full name, for messages */
    const json_t *const *policies; /* stored form */
    size_t n_policies;
    /* What conditions may ask about this request (resource.name, .type,
     * .service, request.time). NULL: conditional bindings do not grant. */
    const struct wisp_cond_env *env;
    /* Optional, n_policies entries: a prebuilt index of policies[p]
     * (wisp_iam_index_build). Where indexes[p] is set it is used instead of
     * policies[p], which may then be NULL; it must have been built from the
     * same document. Borrowed. */
    const struct wisp_iam_index *const *indexes;
    /* Optional, n_policies entries: the full name of the resource whose
     * policy policies[p] is ("projects/p", "organizations/1"), for why
     * texts and explanations. Borrowed. */
    const char *const *policy_names;
    /* Optional: the custom roles the policies bind ("projects/P/roles/R" ->
     * the role's stored document {"includedPermissions", "stage",
     * "deleted"?}), loaded by the caller from the store. A custom role not
     * here, deleted, or at stage DISABLED grants nothing. Borrowed. */
    const json_t *custom_roles;
};

/* Decides whether caller holds permission on target. Returns 1 to allow,
 * 0 to deny. why (may be NULL) gets one line: the granting role and the
 * resource whose policy granted it, or the reason for denial. Policies with
 * an index cost O(caller keys x bindings naming them), whatever their size;
 * the others are walked member by member (fine for one-off decisions).
 * Thread-safe; allocates only for callers with many groups. */
int wisp_authorize(const struct wisp_caller *caller, const char *permission,
                   const struct wisp_iam_target *target, char *why, size_t whylen);

/* Compiles stored policy (NULL = empty) into a new index. Every member is
 * parsed and every condition compiled once here: O(members). Members and
 * conditions that do not parse are kept as "never grants", exactly as the
 * decision treats them. Returns NULL only for a policy too large for 32-bit
 * offsets (about 4 GB of members). The index does not refer to policy
 * afterwards. Caller frees with wisp_iam_index_free(). */
struct wisp_iam_index *wisp_iam_index_build(const json_t *policy);
/* Frees ix; NULL is a no-op. */
void wisp_iam_index_free(struct wisp_iam_index *ix);

struct wisp_iam_index_stats {
    size_t n_bindings; /* bindings of the policy */
    size_t n_keys;     /* distinct member match keys */
    size_t n_postings; /* (key, binding) pairs */
    size_t bytes;      /* memory the index holds, approximately */
};
void wisp_iam_index_stats(const struct wisp_iam_index *ix, struct wisp_iam_index_stats *out);

/* Explains the decision wisp_authorize would make, for a troubleshooter.
 * Pure: no I/O; reads target->policies (JSON; indexes are not used) and
 * target->env. Returns a new JSON array (caller decrefs) with one object per
 * binding whose role grants permission, in evaluation order:
 *   {"policy": P, "resource": NAME (policy_names[P], else target->resource),
 *    "role": R, "granted": bool,
 *    "reason": "granted" | "no_member_matches" | "condition_false" |
 *              "condition_error" | "condition_invalid",
 *    "condition": {"title", "expression", "result": "true"|"false"|"error"|
 *                  "invalid"}            (conditional bindings only),
 *    "members": [{"member": M, "matches": bool, "reason": CODE,
 *                 "detail": TEXT}, ...]}
 * CODE is "matches" or why not: "other_principal", "other_namespace",
 * "other_pool", "other_project_number", "other_cluster", "other_uid",
 * "other_domain", "not_in_group", "user_not_service_account",
 * "service_account_not_user", "federated_identity", "not_federated",
 * "anonymous", "never_matches", "invalid_member". The decision is allow
 * iff some element has "granted": true. */
json_t *wisp_iam_explain(const struct wisp_caller *caller, const char *permission,
                         const struct wisp_iam_target *target);

#endif
