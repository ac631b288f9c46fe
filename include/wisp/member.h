/* SPDX-License-Identifier: Apache-2.0 */
/* IAM members (principal identifiers, the strings in Binding.members):
 * parse, validate, canonicalise, and decide whether a caller is one of them.
 * A pure module: no I/O, no store, no group or ancestry look-ups; whatever
 * the caller struct does not carry (group membership beyond what it lists,
 * folder/organisation ancestry) never matches. The accepted forms and every
 * canonicalisation decision are written down in docs/internals/MEMBERS.md. */
#ifndef WISP_MEMBER_H
#define WISP_MEMBER_H

#include <stddef.h>
#include "wisp/err.h"

/* Longest member string accepted, in bytes. The longest real form (a GKE
 * cluster principal set) is well under 400 bytes. */
#define WISP_MEMBER_MAX_LEN 1024

enum wisp_member_type {
    WISP_MEMBER_NONE = 0,                /* a zeroed or failed-to-parse member */
    WISP_MEMBER_USER,                    /* user:EMAIL */
    WISP_MEMBER_SERVICE_ACCOUNT,         /* serviceAccount:EMAIL */
    WISP_MEMBER_GROUP,                   /* group:EMAIL */
    WISP_MEMBER_DOMAIN,                  /* domain:DOMAIN */
    WISP_MEMBER_ALL_USERS,               /* allUsers */
    WISP_MEMBER_ALL_AUTHENTICATED_USERS, /* allAuthenticatedUsers */
    /* deleted:user|serviceAccount|group:EMAIL?uid=N, or
     * deleted:principal://iam.googleapis.com/locations/global/workforcePools/POOL/subject/S */
    WISP_MEMBER_DELETED,
    /* serviceAccount:PROJECT_ID.svc.id.goog[NS/KSA] */
    WISP_MEMBER_KSA_LEGACY,
    /* Workload identity pools; PFX = iam.googleapis.com/projects/NUM/locations/global/
     * workloadIdentityPools/POOL, POOL being PROJECT_ID.svc.id.goog (a GKE pool)
     * or a plain pool id. */
    WISP_MEMBER_WI_SUBJECT,       /* principal://PFX/subject/SUBJECT (GKE: ns/NS/sa/KSA) */
    WISP_MEMBER_WI_KSA_UID,       /* principal://PFX/kubernetes.serviceaccount.uid/UID (GKE) */
    WISP_MEMBER_WI_SET_NAMESPACE, /* principalSet://PFX/namespace/NS (GKE) */
    /* principalSet://PFX/kubernetes.cluster/https://container.googleapis.com/v1/projects/P/
     * locations/L/clusters/C (GKE) */
    WISP_MEMBER_WI_SET_CLUSTER,
    WISP_MEMBER_WI_SET_POOL,      /* principalSet://PFX/STAR, STAR being a literal '*' */
    WISP_MEMBER_WI_SET_GROUP,     /* principalSet://PFX/group/GROUP (non-GKE pools) */
    WISP_MEMBER_WI_SET_ATTRIBUTE, /* principalSet://PFX/attribute.NAME/VALUE (non-GKE) */
    /* Workforce pools; WPFX = iam.googleapis.com/locations/global/workforcePools/POOL. */
    WISP_MEMBER_WF_SUBJECT,       /* principal://WPFX/subject/SUBJECT */
    WISP_MEMBER_WF_SET_GROUP,     /* principalSet://WPFX/group/GROUP */
    WISP_MEMBER_WF_SET_ATTRIBUTE, /* principalSet://WPFX/attribute.NAME/VALUE */
    WISP_MEMBER_WF_SET_POOL,      /* principalSet://WPFX/STAR */
    /* principalSet://cloudresourcemanager.googleapis.com/{projects,folders,organizations}/
     * NUM/type/ServiceAccount */
    WISP_MEMBER_PROJECT_SA_SET,
    WISP_MEMBER_FOLDER_SA_SET,
    WISP_MEMBER_ORG_SA_SET,
    /* Agent identity (Preview): principal://TRUST_DOMAIN/PATH, principalSet://TRUST_DOMAIN/STAR */
    WISP_MEMBER_AGENT,
    WISP_MEMBER_AGENT_SET,
};

/* A parsed member. Every string is owned by the struct (from malloc()),
 * NUL-terminated, and NULL when the part does not apply to the type.
 * Free with wisp_member_free(). */
struct wisp_member {
    enum wisp_member_type type;
    char *canon; /* the one canonical spelling; always set after a successful parse */
    /* For WISP_MEMBER_DELETED: what was deleted (USER, SERVICE_ACCOUNT, GROUP
     * or WF_SUBJECT); the parts below describe that deleted principal. */
    enum wisp_member_type deleted_of;
    char *email;          /* user/serviceAccount/group (also deleted:); lowercased */
    char *domain;         /* domain: value; lowercased */
    char *uid;            /* deleted: ?uid= value, decimal digits */
    char *project_number; /* workload pool's project, or PROJECT_SA_SET's project */
    char *folder_number;  /* FOLDER_SA_SET */
    char *org_number;     /* ORG_SA_SET */
    char *pool;           /* workload/workforce pool id; GKE pools are PROJECT_ID.svc.id.goog */
    char *project_id;     /* GKE pools only: the PROJECT_ID in the pool name */
    char *subject;        /* WI_SUBJECT / WF_SUBJECT: the whole subject ("ns/a/sa/b" for GKE) */
    char *ns, *ksa;       /* GKE subject, legacy KSA, or namespace set (ns only) */
    char *ksa_uid;        /* WI_KSA_UID: Kubernetes UID, lowercase 8-4-4-4-12 hex */
    char *cluster_url;    /* WI_SET_CLUSTER: the whole https://container.googleapis.com/… URL */
    char *cluster_project, *cluster_location, *cluster_name; /* its parts */
    char *group;                                             /* WI/WF_SET_GROUP: the group id */
    char *attr_name;    /* WI/WF_SET_ATTRIBUTE: NAME in attribute.NAME */
    char *attr_value;   /* WI/WF_SET_ATTRIBUTE: VALUE */
    char *trust_domain; /* AGENT / AGENT_SET */
    char *agent_path;   /* AGENT: everything after the trust domain */
};

/* Parses member string s (NUL-terminated, untrusted) into *out.
 * Returns WISP_OK, or WISP_EINVAL with *out zeroed and, if errmsg is not NULL
 * and errlen > 0, a one-line message in errmsg that quotes s (escaped and
 * truncated as needed), e.g. "Invalid member 'foo:bar': unknown member type
 * 'foo'". *out is overwritten without being freed first. Caller frees a
 * successful result with wisp_member_free(). Never blocks. */
enum wisp_err wisp_member_parse(const char *s, struct wisp_member *out, char *errmsg,
                                size_t errlen);

/* Frees every string in m and zeroes it (the struct itself is the caller's).
 * Safe on a zeroed struct, on a failed parse result, and on NULL. */
void wisp_member_free(struct wisp_member *m);

/* Convenience: parse s and hand back only its canonical spelling in
 * *canon_out (caller frees with free()). Errors as wisp_member_parse(). */
enum wisp_err wisp_member_canonicalize(const char *s, char **canon_out, char *errmsg,
                                       size_t errlen);

/* A static, human-readable name for a type ("serviceAccount",
 * "principal (workload pool subject)", …), for logs and messages. */
const char *wisp_member_type_name(enum wisp_member_type t);

/* The identity making a request, as the token verifier produces it (the
 * same facts as struct wisp_token_claims). All strings are borrowed; NULL or
 * "" means "not known" and never matches anything.
 *
 * A caller is exactly one of:
 *   - federated: pool is set. A Kubernetes ServiceAccount of a GKE pool.
 *     email and groups are then ignored, so a federated caller can never
 *     pass as a Google identity.
 *   - Google identity: pool is NULL and email is set.
 *   - anonymous: neither (only allUsers matches).
 * A NULL caller pointer is anonymous too. */
struct wisp_caller {
    /* Google identities. */
    const char *email;         /* user or service-account email, any case */
    int is_service_account;    /* email names a service account, not a user */
    const char *const *groups; /* emails of groups the identity belongs to (already resolved) */
    size_t n_groups;
    /* Federated identities: the pool's project number. Google service
     * accounts: the number of the project that owns the SA (for
     * principalSet://cloudresourcemanager…/projects/NUM/type/ServiceAccount). */
    const char *project_number;
    /* Federated Kubernetes ServiceAccount. */
    const char *pool;        /* PROJECT_ID.svc.id.goog */
    const char *ns, *ksa;    /* namespace and KSA name */
    const char *ksa_uid;     /* the KSA object's UID */
    const char *cluster_url; /* the KSA token's issuer: https://container.googleapis.com/v1/… */
};

/* Returns 1 if caller c is one of the principals member m names, else 0.
 * m must come from a successful wisp_member_parse(); c may be NULL
 * (anonymous). deleted: members never match. Pure; never blocks. */
int wisp_member_matches(const struct wisp_member *m, const struct wisp_caller *c);

#endif
