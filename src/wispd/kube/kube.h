/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes API of each GKE cluster, inside wispd: every cluster has
 * its own HTTPS listener (a certificate from the cluster's CA), tagged with
 * the cluster's issuer URL, and requests on it come here instead of to the
 * Google APIs. Objects are store documents:
 *   kube:namespace       ISSUER NAME
 *   kube:serviceaccount  ISSUER NS NAME
 *   kube:pod             ISSUER NS NAME
 * whose body is the object as the API shows it plus the private top-level
 * "~created" (the revision that created it, so a watch can tell ADDED from
 * MODIFIED); nodes are derived from the cluster's node-pool documents.
 * docs/internals/KUBE.md has the whole design. */
#ifndef WISPD_KUBE_H
#define WISPD_KUBE_H

#include <jansson.h>
#include <stdint.h>
#include "../wispd.h"

#define KUBE_CREATED "~created"

/* One resource type of the core group. */
struct kube_res {
    const char *plural;     /* "pods" */
    const char *kind;       /* "Pod" */
    const char *store_kind; /* "kube:pod"; NULL for nodes (derived) */
    int namespaced;
    const char *perm;       /* IAM permission prefix: "container.pods" */
};

const struct kube_res *kube_res_find(const char *plural);

/* The cluster a request is for, and who sends it. */
struct kube_req {
    struct wisp_http_req *req;
    const char *issuer;   /* the listener tag: the cluster's issuer URL */
    char *project, *location, *cluster; /* parsed from issuer */
    json_t *cluster_doc;  /* the gkecluster document: shared, read only */
    struct wispd_caller *caller; /* a Google identity, or NULL for a KSA */
    char *ksa_ns, *ksa_name;     /* a KSA caller */
    char *user;           /* for messages: email or system:serviceaccount:NS:NAME */
};

/* ---- Status answers (status.c) ---- */
/* Answers a Kubernetes Status: reason ("NotFound"), message, and details
 * (name, kind for the resource; may be NULL). */
void kube_status(struct wisp_http_req *req, int code, const char *reason, const char *name,
                 const char *kind, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* 422 Invalid with one cause. */
void kube_invalid(struct wisp_http_req *req, const char *kind, const char *name,
                  const char *field, const char *cause_reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void kube_store_error(struct wisp_http_req *req, enum wisp_err err);
/* Sends obj (stealing the reference) as JSON. */
void kube_send(struct wisp_http_req *req, int code, json_t *obj);
/* The request body as a JSON value, from JSON or Kubernetes protobuf
 * (kubectl create namespace|serviceaccount|token send protobuf); on failure
 * answers 400 and returns NULL. Caller decrefs. */
json_t *kube_read_body(struct wisp_http_req *req);
/* The object without its private fields; caller decrefs. */
json_t *kube_public(const json_t *stored);

/* ---- authorization (serve.c) ---- */
/* 1 when the caller may do verb ("get", "list", "create", …) on res in ns
 * (NULL for cluster scope); otherwise answers 403 and returns 0. perm_verb
 * is the IAM suffix ("get", "createToken", "exec", …). */
int kube_allowed(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                 const char *perm_verb, const char *k8s_verb, const char *ns);

/* ---- objects (objects.c) ---- */
void kube_objects(struct kube_req *k, const struct kube_res *res, const char *ns,
                  const char *name, const char *sub);
/* Store name of an object: "ISSUER NS NAME" or "ISSUER NAME"; caller frees. */
char *kube_key(const char *issuer, const struct kube_res *res, const char *ns, const char *name);
/* The cluster's nodes as Node objects (array; caller decrefs); NULL on a
 * store failure. */
json_t *kube_nodes(struct wisp_txn *txn, const struct kube_req *k);
/* "2026-11-28T14:00:00Z" */
void kube_now(char *out, size_t len);

/* ---- selectors (select.c) ---- */
struct kube_selector;
/* Parses labelSelector and fieldSelector; on a bad one answers 400 and
 * returns NULL. Free with kube_selector_free(). */
struct kube_selector *kube_selector_parse(struct wisp_http_req *req, const char *labels,
                                          const char *fields);
int kube_selector_match(const struct kube_selector *s, const json_t *obj);
void kube_selector_free(struct kube_selector *s);

/* ---- watches (watch.c) ---- */
void kube_watch(struct kube_req *k, const struct kube_res *res, const char *ns,
                const char *field_selector, const char *label_selector);

/* ---- TokenRequest (token.c) ---- */
void kube_token_request(struct kube_req *k, const char *ns, const char *sa);

/* ---- exec (exec.c, docs/internals/EXEC.md) ---- */
/* GET|POST …/pods/NAME/exec: a WebSocket relayed to the node agent. */
void kube_exec(struct kube_req *k, const char *ns, const char *name);

#endif
