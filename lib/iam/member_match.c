/* SPDX-License-Identifier: Apache-2.0 */
/* Deciding whether a caller is one of the principals a parsed member names
 * (include/wisp/member.h). Pure comparisons on what the caller struct
 * carries: no group expansion, no resource ancestry, no store look-ups, so a
 * member whose test needs those (folder/org service-account sets, workforce
 * and agent principals, deleted members) never matches here. */
#include <string.h>
#include "wisp/member.h"

static int has(const char *s)
{
    return s && s[0];
}

/* Exact comparison; an absent side never equals anything, so a caller
 * missing a fact cannot match a member that needs it. */
static int eq(const char *a, const char *b)
{
    return has(a) && has(b) && strcmp(a, b) == 0;
}

static char lower(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (char)(ch - 'A' + 'a');
    return ch;
}

/* ASCII-only case folding, independent of the locale: Google compares
 * emails case-insensitively, and a locale-aware fold (Turkish dotless i)
 * could make two different ASCII emails equal. */
static int eq_ci(const char *a, const char *b)
{
    if (!has(a) || !has(b))
        return 0;
    size_t i = 0;
    for (; a[i] && b[i]; i++) {
        if (lower(a[i]) != lower(b[i]))
            return 0;
    }
    return a[i] == b[i];
}

/* Federated identities are recognised by their pool alone: a caller struct
 * that also carries an email is still federated, so it can never pass as a
 * Google identity (allAuthenticatedUsers, user:, serviceAccount:). */
static int is_federated(const struct wisp_caller *c)
{
    return c && has(c->pool);
}

static int is_google(const struct wisp_caller *c)
{
    return c && !has(c->pool) && has(c->email);
}

/* The principal:// forms name a pool by project number and pool id; both
 * must agree with the caller's, so a KSA of another project's pool that
 * happens to share a project ID prefix, or a principal written with the
 * wrong project number, does not match. */
static int same_workload_pool(const struct wisp_member *m, const struct wisp_caller *c)
{
    return is_federated(c) && eq(m->pool, c->pool) && eq(m->project_number, c->project_number);
}

static const char *email_domain(const char *email)
{
    const char *at = strrchr(email, '@');
    return at ? at + 1 : NULL;
}

static int in_groups(const struct wisp_member *m, const struct wisp_caller *c)
{
    if (!c->groups)
        return 0;
    for (size_t i = 0; i < c->n_groups; i++) {
        if (eq_ci(m->email, c->groups[i]))
            return 1;
    }
    return 0;
}

int wisp_member_matches(const struct wisp_member *m, const struct wisp_caller *c)
{
    if (!m)
        return 0;
    switch (m->type) {
    case WISP_MEMBER_ALL_USERS:
        return 1;
    case WISP_MEMBER_ALL_AUTHENTICATED_USERS:
        /* Google: "does not include identities that come from external
         * identity providers" (workload and workforce federation). */
        return is_google(c);
    case WISP_MEMBER_USER:
        return is_google(c) && !c->is_service_account && eq_ci(m->email, c->email);
    case WISP_MEMBER_SERVICE_ACCOUNT:
        return is_google(c) && c->is_service_account && eq_ci(m->email, c->email);
    case WISP_MEMBER_GROUP:
        return is_google(c) && in_groups(m, c);
    case WISP_MEMBER_DOMAIN:
        /* Workspace domains contain user accounts, not service accounts. */
        return is_google(c) && !c->is_service_account && eq_ci(m->domain, email_domain(c->email));
    case WISP_MEMBER_PROJECT_SA_SET:
        return is_google(c) && c->is_service_account && eq(m->project_number, c->project_number);
    case WISP_MEMBER_KSA_LEGACY:
        /* The legacy spelling names the pool by PROJECT_ID only. */
        return is_federated(c) && eq(m->pool, c->pool) && eq(m->ns, c->ns) && eq(m->ksa, c->ksa);
    case WISP_MEMBER_WI_SUBJECT:
        /* m->ns is NULL for non-GKE pools, whose subjects no KSA caller has.
         * The same ns/KSA in any cluster of the pool is the same principal. */
        return same_workload_pool(m, c) && eq(m->ns, c->ns) && eq(m->ksa, c->ksa);
    case WISP_MEMBER_WI_KSA_UID:
        return same_workload_pool(m, c) && eq(m->ksa_uid, c->ksa_uid);
    case WISP_MEMBER_WI_SET_NAMESPACE:
        return same_workload_pool(m, c) && eq(m->ns, c->ns);
    case WISP_MEMBER_WI_SET_CLUSTER:
        return same_workload_pool(m, c) && eq(m->cluster_url, c->cluster_url);
    case WISP_MEMBER_WI_SET_POOL:
        return same_workload_pool(m, c);
    case WISP_MEMBER_NONE:
    case WISP_MEMBER_DELETED:      /* a deleted principal is nobody now */
    case WISP_MEMBER_WI_SET_GROUP: /* only non-GKE pools; wisp has no such callers */
    case WISP_MEMBER_WI_SET_ATTRIBUTE:
    case WISP_MEMBER_WF_SUBJECT: /* no workforce callers */
    case WISP_MEMBER_WF_SET_GROUP:
    case WISP_MEMBER_WF_SET_ATTRIBUTE:
    case WISP_MEMBER_WF_SET_POOL:
    case WISP_MEMBER_FOLDER_SA_SET: /* needs resource ancestry */
    case WISP_MEMBER_ORG_SA_SET:
    case WISP_MEMBER_AGENT: /* no agent callers */
    case WISP_MEMBER_AGENT_SET:
        return 0;
    }
    return 0;
}
