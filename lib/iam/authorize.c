/* SPDX-License-Identifier: Apache-2.0 */
/* The authorization decision and its explanation. A caller holds a
 * permission on a resource if some binding in the resource's policy or an
 * ancestor's names a role that grants it and a member that matches the
 * caller, and the binding's condition (if any) evaluates to true. A
 * condition that is false, cannot be evaluated (an attribute the request
 * lacks) or fails to parse does not grant: errors deny. Policies with a
 * prebuilt index (lib/iam/index.c) are decided by key look-up; the others by
 * the linear walk below, which is also the reference the index is tested
 * against. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/iam.h"
#include "iam/iam_int.h"

int wisp__iam_role_grants(const struct wisp_iam_target *t, const char *role,
                          const char *permission)
{
    if (strncmp(role, "roles/", 6) == 0)
        return wisp_iam_role_grants(role, permission);
    /* Custom roles live in the store; the caller passes the ones its
     * policies bind. As on Google, a deleted or disabled one grants nothing
     * while its bindings stay in place. */
    const json_t *r = json_object_get(t->custom_roles, role);
    const char *stage = json_string_value(json_object_get(r, "stage"));
    if (!r || json_is_true(json_object_get(r, "deleted")) ||
        (stage && strcmp(stage, "DISABLED") == 0))
        return 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "includedPermissions"), i, p) {
        const char *s = json_string_value(p);
        if (s && strcmp(s, permission) == 0)
            return 1;
    }
    return 0;
}

static int condition_true(const json_t *cond, const struct wisp_cond_env *env)
{
    const char *expr = json_string_value(json_object_get(cond, "expression"));
    struct wisp_cond *c = NULL;
    char msg[128];
    if (!env || !expr || wisp_cond_parse(expr, &c, msg, sizeof(msg)) != WISP_OK)
        return 0;
    enum wisp_cond_result r = wisp_cond_eval(c, env);
    wisp_cond_free(c);
    return r == WISP_COND_TRUE;
}

/* The first binding of policy that grants permission to caller, walking
 * every member and parsing it afresh: O(members). Returns its index or -1;
 * *role_out is borrowed from policy. */
static long linear_first_grant(const json_t *policy, const struct wisp_caller *caller,
                               const char *permission, const struct wisp_iam_target *t,
                               const char **role_out)
{
    size_t i, j;
    json_t *b, *m;
    json_array_foreach(json_object_get(policy, "bindings"), i, b) {
        const char *role = json_string_value(json_object_get(b, "role"));
        if (!role || !wisp__iam_role_grants(t, role, permission))
            continue;
        const json_t *cond = json_object_get(b, "condition");
        if (cond && !condition_true(cond, t->env))
            continue;
        json_array_foreach(json_object_get(b, "members"), j, m) {
            struct wisp_member mem;
            const char *s = json_string_value(m);
            if (!s || wisp_member_parse(s, &mem, NULL, 0) != WISP_OK)
                continue;
            int match = wisp_member_matches(&mem, caller);
            wisp_member_free(&mem);
            if (match) {
                *role_out = role;
                return (long)i;
            }
        }
    }
    return -1;
}

static const char *policy_name(const struct wisp_iam_target *t, size_t p)
{
    if (t->policy_names && t->policy_names[p])
        return t->policy_names[p];
    return NULL;
}

int wisp_authorize(const struct wisp_caller *caller, const char *permission,
                   const struct wisp_iam_target *target, char *why, size_t whylen)
{
    struct wisp__iam_keyset ks;
    int have_keys = 0, allowed = 0;
    for (size_t p = 0; p < target->n_policies && !allowed; p++) {
        const struct wisp_iam_index *ix = target->indexes ? target->indexes[p] : NULL;
        const char *role = NULL;
        long hit = -1;
        if (ix) {
            if (!have_keys) {
                wisp__iam_keyset_init(&ks, caller);
                have_keys = 1;
            }
            hit = wisp__iam_index_first_grant(ix, &ks, permission, target, &role);
        } else if (target->policies && target->policies[p]) {
            hit = linear_first_grant(target->policies[p], caller, permission, target, &role);
        }
        if (hit < 0)
            continue;
        allowed = 1;
        if (!why)
            continue;
        const char *name = policy_name(target, p);
        if (!name)
            snprintf(why, whylen, "granted by %s on policy #%zu of %s", role, p,
                     target->resource);
        else if (!target->resource || strcmp(name, target->resource) == 0)
            snprintf(why, whylen, "granted by %s in the policy of %s", role, name);
        else
            snprintf(why, whylen, "granted by %s in the policy of %s, inherited by %s", role,
                     name, target->resource);
    }
    if (have_keys)
        wisp__iam_keyset_cleanup(&ks);
    if (!allowed && why)
        snprintf(why, whylen, "no binding grants %s on %s", permission, target->resource);
    return allowed;
}

/* --- explain ---------------------------------------------------------------- */

static int has(const char *s)
{
    return s && s[0];
}

static int same(const char *a, const char *b)
{
    return has(a) && has(b) && strcmp(a, b) == 0;
}

struct why_not {
    const char *code;
    char detail[512];
};

/* Absent caller facts print as "(none)". */
static const char *shown(const char *s)
{
    return has(s) ? s : "(none)";
}

__attribute__((format(printf, 3, 4))) static void set_why(struct why_not *w, const char *code,
                                                          const char *fmt, ...)
{
    va_list ap;
    w->code = code;
    va_start(ap, fmt);
    vsnprintf(w->detail, sizeof(w->detail), fmt, ap);
    va_end(ap);
}

static int is_workload_member(enum wisp_member_type t)
{
    return t == WISP_MEMBER_KSA_LEGACY || t == WISP_MEMBER_WI_SUBJECT ||
           t == WISP_MEMBER_WI_KSA_UID || t == WISP_MEMBER_WI_SET_NAMESPACE ||
           t == WISP_MEMBER_WI_SET_CLUSTER || t == WISP_MEMBER_WI_SET_POOL;
}

static int is_google_member(enum wisp_member_type t)
{
    return t == WISP_MEMBER_ALL_AUTHENTICATED_USERS || t == WISP_MEMBER_USER ||
           t == WISP_MEMBER_SERVICE_ACCOUNT || t == WISP_MEMBER_GROUP ||
           t == WISP_MEMBER_DOMAIN || t == WISP_MEMBER_PROJECT_SA_SET;
}

/* Why member m (which does not match) is not caller c: the first fact, in
 * the matcher's order of tests, on which they differ. Member parts are
 * never NULL where printed (the parser sets them for the type). */
static void why_not_workload(const struct wisp_member *m, const struct wisp_caller *c,
                             struct why_not *w)
{
    if (!same(m->pool, c->pool)) {
        set_why(w, "other_pool", "the member's pool is %s, the caller's %s", m->pool,
                shown(c->pool));
        return;
    }
    if (m->type != WISP_MEMBER_KSA_LEGACY && !same(m->project_number, c->project_number)) {
        set_why(w, "other_project_number",
                "the member names pool project number %s, the caller's pool is in %s",
                m->project_number, shown(c->project_number));
        return;
    }
    switch (m->type) {
    case WISP_MEMBER_KSA_LEGACY:
    case WISP_MEMBER_WI_SUBJECT:
        if (!m->ns || !m->ksa)
            set_why(w, "other_principal", "subject %s is not a Kubernetes service account",
                    shown(m->subject));
        else if (!same(m->ns, c->ns))
            set_why(w, "other_namespace", "the member is in namespace %s, the caller in %s",
                    m->ns, shown(c->ns));
        else
            set_why(w, "other_principal",
                    "the member is Kubernetes service account %s, the caller is %s", m->ksa,
                    shown(c->ksa));
        return;
    case WISP_MEMBER_WI_KSA_UID:
        set_why(w, "other_uid",
                "the member is the service account with UID %s, the caller's UID is %s",
                m->ksa_uid, shown(c->ksa_uid));
        return;
    case WISP_MEMBER_WI_SET_NAMESPACE:
        set_why(w, "other_namespace", "the member is namespace %s, the caller is in %s", m->ns,
                shown(c->ns));
        return;
    case WISP_MEMBER_WI_SET_CLUSTER:
        set_why(w, "other_cluster", "the member is cluster %s, the caller's is %s",
                m->cluster_url, shown(c->cluster_url));
        return;
    default:
        set_why(w, "other_principal", "the member %s is not the caller", m->canon);
        return;
    }
}

static void why_not_google(const struct wisp_member *m, const struct wisp_caller *c,
                           struct why_not *w)
{
    switch (m->type) {
    case WISP_MEMBER_USER:
    case WISP_MEMBER_DOMAIN:
        if (c->is_service_account)
            set_why(w, "service_account_not_user",
                    "%s is a service account; the member names users only", c->email);
        else if (m->type == WISP_MEMBER_DOMAIN)
            set_why(w, "other_domain", "%s is not in domain %s", c->email, m->domain);
        else
            set_why(w, "other_principal", "the member is %s, the caller %s", m->email, c->email);
        return;
    case WISP_MEMBER_SERVICE_ACCOUNT:
    case WISP_MEMBER_PROJECT_SA_SET:
        if (!c->is_service_account)
            set_why(w, "user_not_service_account",
                    "%s is a user; the member names service accounts only", c->email);
        else if (m->type == WISP_MEMBER_PROJECT_SA_SET)
            set_why(w, "other_project_number",
                    "the member is the service accounts of project number %s, the caller's "
                    "project number is %s",
                    m->project_number, shown(c->project_number));
        else
            set_why(w, "other_principal", "the member is %s, the caller %s", m->email, c->email);
        return;
    case WISP_MEMBER_GROUP:
        set_why(w, "not_in_group", "%s is not known to be in group %s", c->email, m->email);
        return;
    default:
        set_why(w, "other_principal", "the member %s is not the caller", m->canon);
        return;
    }
}

static void why_not(const struct wisp_member *m, const struct wisp_caller *c, struct why_not *w)
{
    int federated = c && has(c->pool);
    int google = c && !federated && has(c->email);
    if (is_workload_member(m->type)) {
        if (!federated)
            set_why(w, "not_federated",
                    "the member names a workload identity; the caller is %s",
                    google ? c->email : "anonymous");
        else
            why_not_workload(m, c, w);
    } else if (is_google_member(m->type)) {
        if (federated)
            set_why(w, "federated_identity",
                    "a workload identity (pool %s) is never a Google account, so %s does not "
                    "include it",
                    c->pool, m->canon);
        else if (!google)
            set_why(w, "anonymous", "the caller is anonymous; %s needs a Google identity",
                    m->canon);
        else
            why_not_google(m, c, w);
    } else {
        set_why(w, "never_matches", "%s (%s) matches no caller wisp can authenticate", m->canon,
                wisp_member_type_name(m->type));
    }
}

static json_t *explain_member(const char *s, const struct wisp_caller *c, int *matched)
{
    struct wisp_member mem;
    struct why_not w = {"matches", "the caller is this member"};
    json_t *out;
    if (!s || wisp_member_parse(s, &mem, w.detail, sizeof(w.detail)) != WISP_OK) {
        return json_pack("{s:s?, s:b, s:s, s:s}", "member", s, "matches", 0, "reason",
                         "invalid_member", "detail", s ? w.detail : "not a string");
    }
    int match = wisp_member_matches(&mem, c);
    if (!match)
        why_not(&mem, c, &w);
    out = json_pack("{s:s, s:b, s:s, s:s}", "member", mem.canon, "matches", match, "reason",
                    w.code, "detail", w.detail);
    *matched |= match;
    wisp_member_free(&mem);
    return out;
}

/* The condition's verdict under env, as the decision would reach it. */
static const char *condition_result(const json_t *cond, const struct wisp_cond_env *env)
{
    const char *expr = json_string_value(json_object_get(cond, "expression"));
    struct wisp_cond *c = NULL;
    char msg[128];
    if (!expr || wisp_cond_parse(expr, &c, msg, sizeof(msg)) != WISP_OK)
        return "invalid";
    enum wisp_cond_result r = env ? wisp_cond_eval(c, env) : WISP_COND_ERROR;
    wisp_cond_free(c);
    return wisp_cond_result_name(r);
}

json_t *wisp_iam_explain(const struct wisp_caller *caller, const char *permission,
                         const struct wisp_iam_target *target)
{
    json_t *out = json_array();
    for (size_t p = 0; target->policies && p < target->n_policies; p++) {
        const json_t *policy = target->policies[p];
        const char *name = policy_name(target, p);
        size_t i, j;
        json_t *b, *m;
        json_array_foreach(json_object_get(policy, "bindings"), i, b) {
            const char *role = json_string_value(json_object_get(b, "role"));
            if (!role || !wisp__iam_role_grants(target, role, permission))
                continue;
            int matched = 0;
            json_t *members = json_array();
            json_array_foreach(json_object_get(b, "members"), j, m) {
                json_array_append_new(members,
                                      explain_member(json_string_value(m), caller, &matched));
            }
            const json_t *cond = json_object_get(b, "condition");
            const char *result = cond ? condition_result(cond, target->env) : "true";
            const char *reason = "granted";
            if (!matched)
                reason = "no_member_matches";
            else if (strcmp(result, "true") != 0)
                reason = strcmp(result, "false") == 0 ? "condition_false"
                         : strcmp(result, "error") == 0 ? "condition_error"
                                                        : "condition_invalid";
            json_t *e = json_pack("{s:I, s:s?, s:s, s:b, s:s, s:o}", "policy", (json_int_t)p,
                                  "resource", name ? name : target->resource, "role", role,
                                  "granted", strcmp(reason, "granted") == 0, "reason", reason,
                                  "members", members);
            if (cond) {
                json_object_set_new(
                    e, "condition",
                    json_pack("{s:s?, s:s?, s:s}", "title",
                              json_string_value(json_object_get(cond, "title")), "expression",
                              json_string_value(json_object_get(cond, "expression")), "result",
                              result));
            }
            json_array_append_new(out, e);
        }
    }
    return out;
}
