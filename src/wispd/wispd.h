/* SPDX-License-Identifier: Apache-2.0 */
/* Private to wispd: the daemon's shared state, per-thread state, and the
 * small set of helpers every API file uses (caller resolution, permission
 * checks, store access). */
#ifndef WISPD_H
#define WISPD_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>
#include "wisp/api.h"
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
    /* The server certificate for the Google API names, made fresh by each
     * start's bootstrap: the loopback listener and the clusters' fabric
     * listeners use it. */
    char *tls_cert_pem, *tls_key_pem;
    int https_port; /* the loopback HTTPS port */
    struct wisp_http_server *http; /* for listeners opened at run time */
    /* --strict-revocation: every use of a token minted as another identity
     * re-checks the grant it was minted under (src/wispd/api/iamcredentials.c). */
    int strict_revocation;
    int64_t token_key_rotation; /* seconds between new token keys */
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
/* The caller a bearer token stands for (ours, or a service account's
 * self-signed JWT), revocation and strict revocation checked; NULL with
 * *why set otherwise. No answer is sent: each API words its own 401. */
struct wispd_caller *wispd_caller_open(struct wisp_http_req *req, const char *tok,
                                       const char **why);
void wispd_caller_free(struct wispd_caller *c);

/* A resource whose IAM policy, with its ancestors', guards a call. */
struct wispd_resource {
    const char *name;       /* full relative name, also its policy document:
                             * "projects/P", "projects/_/buckets/B",
                             * "projects/P/serviceAccounts/EMAIL", ... */
    const char *type;       /* for conditions: "storage.googleapis.com/Bucket" */
    const char *service;    /* for conditions: "storage.googleapis.com" */
    const char *project_id; /* the project above it (its own ID for a project) */
};

/* Fills r for project project_id, naming it in buf. */
void wispd_resource_project(struct wispd_resource *r, const char *project_id, char *buf,
                            size_t buflen);

/* Decides, without answering: *allowed is 1 or 0, why says which binding
 * granted or why none did. The chain is r's own policy, its project's and
 * the project's organization's. WISP_EIO on a store failure. */
enum wisp_err wispd_allowed(struct wisp_txn *txn, const struct wisp_caller *who,
                            const char *permission, const struct wispd_resource *r, int *allowed,
                            char *why, size_t whylen);

/* The troubleshooter's view of the same decision: wisp_iam_explain() over
 * r's policy chain. Caller decrefs; NULL on a store failure. */
json_t *wispd_explain(struct wisp_txn *txn, const struct wisp_caller *who,
                      const char *permission, const struct wispd_resource *r);

/* Checks permission on r. On denial answers 403 naming principal,
 * permission and resource, and returns 0; returns 1 when allowed. */
int wispd_check(struct wisp_http_req *req, struct wisp_txn *txn, const struct wispd_caller *c,
                const char *permission, const struct wispd_resource *r);
/* The same for a project given by ID. */
int wispd_check_project(struct wisp_http_req *req, struct wisp_txn *txn,
                        const struct wispd_caller *c, const char *permission,
                        const char *project_id);

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
/* As wispd_get_json, for documents read on hot paths that rarely change:
 * *out is a reference to a tree shared with other threads, reused while the
 * stored text is unchanged (src/wispd/doccache.c). Read it only, never
 * modify it; json_decref it when done. */
enum wisp_err wispd_get_json_shared(struct wisp_txn *txn, const char *kind, const char *name,
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
    struct wispd_resource res; /* res.name is the iampolicy document */
    const char *get_perm, *set_perm;
    /* Cloud Storage's shapes, NULL elsewhere: when set, policy answers carry
     * "kind": policy_kind and "resourceId": res.name, and testPermissions
     * answers "kind": test_kind. */
    const char *policy_kind, *test_kind;
};
/* Request-body schemas of getIamPolicy / setIamPolicy / testIamPermissions,
 * and of one binding (for APIs with their own policy shape). */
extern const struct wisp_jfield wispd_iam_binding_fields[];
extern const struct wisp_jfield wispd_iam_get_policy_fields[];
extern const struct wisp_jfield wispd_iam_set_policy_fields[];
extern const struct wisp_jfield wispd_iam_test_fields[];
void wispd_iam_get_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, int requested_version);
void wispd_iam_set_policy(struct wisp_http_req *req, const struct wispd_caller *c,
                          const struct wispd_iam_resource *r, const json_t *policy);
void wispd_iam_test_permissions(struct wisp_http_req *req, const struct wispd_caller *c,
                                const struct wispd_iam_resource *r, const json_t *perms);

/* The reverse index from service-account members to the allow policies
 * that name them (src/wispd/member_refs.c). Every write of an "iampolicy"
 * document must call wispd_member_refs_update in the same write
 * transaction, with the stored policy before (NULL if none) and after
 * (NULL if deleted). wispd_member_refs_rename rewrites member from to to
 * (canonical forms) in every policy that names it, keeping the index
 * right; deleting and undeleting a service account use it. */
enum wisp_err wispd_member_refs_update(struct wisp_txn *txn, const char *policy_name,
                                       const json_t *old_policy, const json_t *new_policy);
enum wisp_err wispd_member_refs_rename(struct wisp_txn *txn, const char *from, const char *to);
/* Builds the index from every stored policy, once per state directory
 * (bootstrap calls it; later calls find it done). */
enum wisp_err wispd_member_refs_init(struct wisp_txn *txn);

/* Indexes service account document sa (kind "sa", name = email) by unique
 * ID and by project, for lookup by ID and listing (src/wispd/api/iam_sa.c).
 * Whoever writes a new "sa" document calls it in the same transaction. */
enum wisp_err wispd_sa_index_put(struct wisp_txn *txn, const json_t *sa);

/* Projects: ID syntax, and creation with a fresh number and an owner. */
int wispd_project_id_valid(const char *id);
enum wisp_err wispd_project_create(struct wisp_txn *txn, const char *id, const char *display,
                                   const char *owner_member, json_t **out);

/* An API: handles one request whose service-relative path is path. */
typedef void (*wispd_api_fn)(struct wisp_http_req *req, const char *path);

void wispd_crm(struct wisp_http_req *req, const char *path);
/* Inside CRM (crm.c, crm_org.c): getIamPolicy, setIamPolicy or
 * testIamPermissions (verb) on r, the body read here; the organization's
 * methods (path /v1/organizations...); projects/ID:getAncestry. */
void wispd_crm_iam(struct wisp_http_req *req, const struct wispd_caller *c,
                   const struct wispd_iam_resource *r, const char *verb);
void wispd_crm_organizations(struct wisp_http_req *req, const char *path);
void wispd_crm_ancestry(struct wisp_http_req *req, const char *id);
void wispd_serviceusage(struct wisp_http_req *req, const char *path);
void wispd_oauth2(struct wisp_http_req *req, const char *path);
void wispd_storage(struct wisp_http_req *req, const char *path);  /* full path: /storage/v1/… */
void wispd_iam(struct wisp_http_req *req, const char *path);
void wispd_artifactregistry(struct wisp_http_req *req, const char *path);
void wispd_iamcredentials(struct wisp_http_req *req, const char *path);
void wispd_sts(struct wisp_http_req *req, const char *path);
void wispd_troubleshoot(struct wisp_http_req *req, const char *path);
void wispd_container(struct wisp_http_req *req, const char *path);
/* CRM v1 {projects,organizations}/X:{set,get,getEffective,clear}OrgPolicy and
 * :listOrgPolicies. */
void wispd_orgpolicy(struct wisp_http_req *req, const char *path);
/* Whether boolean constraint ("constraints/…") is enforced on the project,
 * its own policy overriding its organization's. */
int wispd_orgpolicy_enforced(struct wisp_txn *txn, const char *project_id,
                             const char *constraint);

/* The key that signs ID tokens as https://accounts.google.com, and a
 * service account's system-managed signing key; both created on first use,
 * so txn must be a write transaction the first time. Caller frees *kid_out
 * with free() and *pem_out with wisp_secret_free(). */
enum wisp_err wispd_google_key(struct wisp_txn *txn, char **kid_out, char **pem_out);
enum wisp_err wispd_sa_system_key(struct wisp_txn *txn, const char *email, char **kid_out,
                                  char **pem_out);
/* The same for signing with no transaction open on st: read in a read
 * transaction; a write transaction only creates a missing key. */
enum wisp_err wispd_google_key_load(struct wisp_store *st, char **kid_out, char **pem_out);
enum wisp_err wispd_sa_system_key_load(struct wisp_store *st, const char *email, char **kid_out,
                                       char **pem_out);

/* A Google-style ID token (RS256, iss https://accounts.google.com) for
 * service account sa (its document) with audience aud; email and
 * email_verified with include_email; google (an object, or NULL) as the
 * "google" claim (a node's google.compute_engine). No transaction may be
 * open on st. Returns the JWT (caller frees) or NULL with *err set. */
char *wispd_sa_id_token(struct wisp_store *st, const json_t *sa, const char *aud,
                        int include_email, const json_t *google, enum wisp_err *err);

/* The public half of a key document as {kid: x509 PEM} (jwks=0) or a JWKS
 * (jwks=1); NULL if the key does not exist yet. Caller decrefs. */
json_t *wispd_public_keys(struct wisp_txn *txn, const char *kind, const char *name, int jwks);

/* Counts one call of api.method charged to project (quota project or the
 * resource's own), for `wisp usage`. Best effort: a store failure is logged,
 * not returned, since the call itself succeeded. */
void wispd_usage_count(struct wisp_http_req *req, const char *project, const char *api,
                       const char *method);
/* Counts are kept in memory and written to the store at most once a second
 * by a thread (usage.c) that start begins and stop ends after a last write. */
int wispd_usage_start(void);
void wispd_usage_stop(void);

/* --- cluster OIDC issuers (src/wispd/issuer.c) --- */

/* The GKE issuer URL of a cluster; caller frees. */
char *wispd_issuer_url(const char *project_id, const char *location, const char *cluster);
/* Creates the cluster's issuer (an RS256 key) if absent, and records which
 * workload pool trusts it (pool NULL: none). */
enum wisp_err wispd_issuer_ensure(struct wisp_txn *txn, const char *project_id,
                                  const char *location, const char *cluster, const char *pool);
/* Moves the issuer to another pool, or out of any (pool NULL). */
enum wisp_err wispd_issuer_set_pool(struct wisp_txn *txn, const char *issuer_url,
                                    const char *pool);
enum wisp_err wispd_issuer_delete(struct wisp_txn *txn, const char *issuer_url);
/* The newest signing key; caller frees *kid_out, and *pem_out with
 * wisp_secret_free(). */
enum wisp_err wispd_issuer_signing_key(struct wisp_txn *txn, const char *issuer_url,
                                       char **kid_out, char **pem_out);
/* Every key trusted for pool: [{kid, issuer, publicKeyPem}]; caller
 * decrefs; NULL on a store failure. */
json_t *wispd_issuer_pool_keys(struct wisp_txn *txn, const char *pool);
/* GET ISSUER/.well-known/openid-configuration and ISSUER/jwks. */
void wispd_issuer_discovery(struct wisp_http_req *req, const char *issuer_url);
void wispd_issuer_jwks(struct wisp_http_req *req, const char *issuer_url);

/* --- the Kubernetes API of each cluster (src/wispd/kube/) --- */

/* Answers a request that arrived on a cluster's endpoint (req->listener_tag
 * is the cluster's issuer URL). */
void wispd_kube(struct wisp_http_req *req);
/* Opens the cluster's endpoint on port (0: any; *port_out gets it), with a
 * server certificate from the cluster's CA. */
enum wisp_err wispd_kube_open(const char *issuer, const char *ca_cert_pem, const char *ca_key_pem,
                              int port, int *port_out);
void wispd_kube_close(const char *issuer);
/* At start: opens every cluster's endpoint and seeds its namespaces. */
int wispd_kube_open_all(struct wisp_store *st);
void wispd_kube_close_all(void);
/* Writes the namespaces a new cluster starts with (in txn). */
enum wisp_err wispd_kube_seed(struct wisp_txn *txn, const char *issuer);
/* Deletes every Kubernetes object of a cluster being deleted (in txn), so
 * a cluster created again under the same name starts empty. */
enum wisp_err wispd_kube_forget(struct wisp_txn *txn, const char *issuer);

/* --- the embedded cluster's nodes (src/wispd/nodes.c) --- */

/* Starts the supervisor that runs a node agent (and, on GKE_METADATA
 * pools, a metadata server) for every node of every cluster. Root only. */
int wispd_nodes_start(void);
/* Stops every node and removes every namespace they used. */
void wispd_nodes_stop(void);

/* Writes text to path (mode), replacing it atomically. 0 on success. */
int wispd_write_file(const char *path, const char *text, mode_t mode);

/* Creates what a new state directory needs: token key, CA and server
 * certificate, the project and its owner service account with a key file.
 * Idempotent. */
int wispd_bootstrap(struct wisp_store *st, const char *state_dir, const char *project_id);

/* --- access-token keys and revocation (src/wispd/keys.c) --- */

/* Loads the token key ring into wispd.keyring and starts the thread that
 * rotates it every wispd.token_key_rotation seconds and reloads it (and the
 * revoked tokens) whenever the store changes. 0 on success. */
int wispd_keys_start(void);
void wispd_keys_stop(void);
/* Whether token id jti (hex) has been revoked: an in-memory lookup. */
int wispd_token_revoked(const char *jti);
/* Records the revocation of token jti (which expires at exp) in the store
 * and in this process at once; other replicas see it within a second. */
enum wisp_err wispd_token_revoke(struct wisp_store *st, const char *jti, int64_t exp);
/* Opens a JWT that a service account signed with one of its user-managed
 * keys and sends as its bearer token (src/wispd/api/oauth2.c): WISP_OK with
 * *out filled (caller frees with wisp_token_claims_free), or WISP_EUNAUTH
 * with *why set. */
enum wisp_err wispd_self_signed_open(struct wisp_http_req *req, const char *jwt,
                                     struct wisp_token_claims *out, const char **why);
/* Whether an opened token may still be used: not revoked, and with
 * --strict-revocation its delegation chain still holds (oauth2.c). On 0,
 * *why says why. */
int wispd_token_live(struct wisp_http_req *req, const struct wisp_token_claims *c,
                     const char **why);
/* 1 if the grant a minted token's chain records still holds (the caller may
 * still get access tokens for account email through its delegates), 0 if
 * not, -1 on a store failure (src/wispd/api/iamcredentials.c). */
int wispd_delegation_holds(struct wisp_txn *txn, const char *chain, const char *email);

/* --- user-managed service-account keys (src/wispd/keys.c) --- */

struct wispd_sa_key {
    char kid[41];
    char *private_pem; /* wisp_secret_free */
    json_t *doc;       /* the "sakey" document */
};
/* A new RSA-2048 key with its certificate for account sa (an "sa"
 * document). Slow (key generation): call outside a write transaction. */
enum wisp_err wispd_sa_key_generate(const json_t *sa, struct wispd_sa_key *out);
/* Stores it (the key by kid, and the account's index of its keys). */
enum wisp_err wispd_sa_key_store(struct wisp_txn *txn, const struct wispd_sa_key *k);
/* The Google key file (type service_account) for it, whose token_uri is
 * token_uri. Caller frees with wisp_secret_free(). */
char *wispd_sa_key_file(const json_t *sa, const struct wispd_sa_key *k, const char *token_uri);
void wispd_sa_key_free(struct wispd_sa_key *k);

#endif
