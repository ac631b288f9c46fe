/* SPDX-License-Identifier: Apache-2.0 */
/* The entry of the Kubernetes API: finds the cluster from the listener's
 * tag, authenticates the caller (a Google access token, as
 * gke-gcloud-auth-plugin sends, or a KSA token of this cluster, as
 * in-cluster clients send), routes the path, and authorizes as GKE does:
 * Google identities through IAM container.* permissions on the project,
 * KSAs through a fixed built-in rule (docs/internals/KUBE.md). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/jose.h"
#include "wisp/ksa.h"
#include "wisp/kube_meta.h"
#include "wisp/log.h"
#include "kube.h"

static const struct kube_res resources[] = {
    {"namespaces", "Namespace", "kube:namespace", 0, "container.namespaces"},
    {"serviceaccounts", "ServiceAccount", "kube:serviceaccount", 1, "container.serviceAccounts"},
    {"pods", "Pod", "kube:pod", 1, "container.pods"},
    {"nodes", "Node", NULL, 0, "container.nodes"},
};

const struct kube_res *kube_res_find(const char *plural)
{
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        if (strcmp(resources[i].plural, plural) == 0)
            return &resources[i];
    }
    return NULL;
}

/* ---- the cluster ---------------------------------------------------------- */

#define ISSUER_PREFIX "https://container.googleapis.com/v1/projects/"

/* Splits the issuer URL into project, location and cluster and loads the
 * cluster; 0 when it is gone (deleted while a connection stayed open). */
static int load_cluster(struct kube_req *k, struct wisp_txn *txn)
{
    const char *p = k->issuer + strlen(ISSUER_PREFIX);
    const char *l = strstr(p, "/locations/"), *c = l ? strstr(l, "/clusters/") : NULL;
    if (strncmp(k->issuer, ISSUER_PREFIX, strlen(ISSUER_PREFIX)) != 0 || !l || !c)
        return 0;
    k->project = wisp_xstrndup(p, (size_t)(l - p));
    k->location = wisp_xstrndup(l + 11, (size_t)(c - l - 11));
    k->cluster = wisp_xstrdup(c + 10);
    char *key = wisp_xasprintf("%s/%s/%s", k->project, k->location, k->cluster);
    enum wisp_err err = wispd_get_json_shared(txn, "gkecluster", key, &k->cluster_doc, NULL);
    free(key);
    return err == WISP_OK;
}

/* ---- authentication ------------------------------------------------------- */

static int auth_google(struct kube_req *k, const char *tok)
{
    const char *why = NULL;
    struct wispd_caller *c = wispd_caller_open(k->req, tok, &why);
    if (!c) {
        kube_status(k->req, 401, "Unauthorized", NULL, NULL, "Unauthorized: %s", why);
        return 0;
    }
    k->caller = c;
    k->user = wisp_xstrdup(c->claims.email ? c->claims.email : c->principal);
    return 1;
}

/* A KSA token of this cluster, with the API's audience (the issuer URL,
 * as kube-apiserver's --api-audiences defaults to its issuer). */
static int auth_ksa(struct kube_req *k, struct wisp_txn *txn, const char *tok)
{
    char *kid = NULL, *priv = NULL, *pub = NULL, why[256] = "";
    struct wisp_ksa_claims cl = {0};
    int ok = 0;
    if (wispd_issuer_signing_key(txn, k->issuer, &kid, &priv) == WISP_OK)
        pub = wisp_rsa_public_pem(priv);
    struct wisp_ksa_key key = {.kid = kid, .issuer = k->issuer, .public_pem = pub};
    if (pub && wisp_ksa_verify(tok, &key, 1, k->issuer, (int64_t)time(NULL), &cl, why,
                               sizeof(why)) == WISP_OK) {
        k->ksa_ns = wisp_xstrdup(cl.ns);
        k->ksa_name = wisp_xstrdup(cl.sa);
        k->user = wisp_xasprintf("system:serviceaccount:%s:%s", cl.ns, cl.sa);
        ok = 1;
    } else {
        kube_status(k->req, 401, "Unauthorized", NULL, NULL, "Unauthorized: %s",
                    why[0] ? why : "the token is not one this cluster issued");
    }
    wisp_ksa_claims_free(&cl);
    free(kid);
    free(pub);
    if (priv)
        wisp_secret_free(priv, 0);
    return ok;
}

static int authenticate(struct kube_req *k, struct wisp_txn *txn)
{
    const char *auth = wisp_http_header(k->req, "authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        kube_status(k->req, 401, "Unauthorized", NULL, NULL, "Unauthorized");
        return 0;
    }
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    return strncmp(tok, "ya29.", 5) == 0 ? auth_google(k, tok) : auth_ksa(k, txn, tok);
}

/* ---- authorization -------------------------------------------------------- */

/* KSAs have no IAM roles here. The built-in rule: the kube-system
 * namespace (where node agents and the metadata server run) may read and
 * watch pods, ServiceAccounts and nodes, update pod status and create
 * tokens; any KSA may read its own ServiceAccount. */
static int ksa_allowed(const struct kube_req *k, const struct kube_res *res,
                       const char *perm_verb, const char *ns)
{
    if (strcmp(k->ksa_ns, "kube-system") == 0) {
        if (!strcmp(perm_verb, "get") || !strcmp(perm_verb, "list"))
            return 1;
        if (!strcmp(res->plural, "serviceaccounts") && !strcmp(perm_verb, "createToken"))
            return 1;
        if (!strcmp(res->plural, "pods") &&
            (!strcmp(perm_verb, "updateStatus") || !strcmp(perm_verb, "delete")))
            return 1;
        return 0;
    }
    return !strcmp(res->plural, "serviceaccounts") && !strcmp(perm_verb, "get") && ns &&
           !strcmp(ns, k->ksa_ns);
}

int kube_allowed(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                 const char *perm_verb, const char *k8s_verb, const char *ns)
{
    char perm[128], why[256];
    int allowed = 0;
    snprintf(perm, sizeof(perm), "%s.%s", res->perm, perm_verb);
    if (k->caller) {
        struct wispd_resource r;
        char name[300];
        wispd_resource_project(&r, k->project, name, sizeof(name));
        if (wispd_allowed(txn, &k->caller->who, perm, &r, &allowed, why, sizeof(why)) !=
            WISP_OK) {
            kube_store_error(k->req, WISP_EIO);
            return 0;
        }
    } else {
        allowed = ksa_allowed(k, res, perm_verb, ns);
    }
    if (allowed)
        return 1;
    char where[200] = "";
    if (ns)
        snprintf(where, sizeof(where), " in the namespace \"%s\"", ns);
    kube_status(k->req, 403, "Forbidden", NULL, res->plural,
                "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"\"%s: "
                "requires one of [\"%s\"] permission(s).",
                res->plural, k->user, k8s_verb, res->plural, where, perm);
    return 0;
}

/* ---- static surfaces ------------------------------------------------------ */

static void send_discovery(struct wisp_http_req *req, int apis)
{
    if (wisp_kube_wants_discovery_v2(wisp_http_header(req, "accept"))) {
        json_t *d = wisp_kube_discovery_v2(apis);
        char *text = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        wisp_http_respond(req, 200, WISP_KUBE_DISCOVERY_V2_TYPE, text, strlen(text));
        free(text);
        return;
    }
    /* The address clients reach this server at, as kube-apiserver
     * advertises it: the Host header the client sent. */
    const char *host = wisp_http_header(req, "host");
    kube_send(req, 200, apis ? wisp_kube_api_groups()
                             : wisp_kube_api_versions(host ? host : "127.0.0.1"));
}

/* Paths that need no cluster object: 1 when answered. */
static int serve_static(struct kube_req *k)
{
    struct wisp_http_req *req = k->req;
    const char *p = req->path;
    if (!strcmp(p, "/version")) {
        kube_send(req, 200, wisp_kube_version());
    } else if (!strcmp(p, "/healthz") || !strcmp(p, "/livez") || !strcmp(p, "/readyz")) {
        wisp_http_respond(req, 200, "text/plain", "ok", 2);
    } else if (!strcmp(p, "/.well-known/openid-configuration")) {
        wispd_issuer_discovery(req, k->issuer);
    } else if (!strcmp(p, "/openid/v1/jwks")) {
        wispd_issuer_jwks(req, k->issuer);
    } else {
        return 0;
    }
    return 1;
}

static int serve_meta(struct kube_req *k)
{
    struct wisp_http_req *req = k->req;
    const char *p = req->path;
    if (!strcmp(p, "/api")) {
        send_discovery(req, 0);
    } else if (!strcmp(p, "/apis")) {
        send_discovery(req, 1);
    } else if (!strcmp(p, "/api/v1")) {
        kube_send(req, 200, wisp_kube_core_resources());
    } else if (!strcmp(p, "/openapi/v3")) {
        kube_send(req, 200, wisp_kube_openapi_index());
    } else if (!strcmp(p, "/openapi/v3/api/v1")) {
        kube_send(req, 200, wisp_kube_openapi_core());
    } else {
        return 0;
    }
    return 1;
}

/* ---- routing -------------------------------------------------------------- */

/* /api/v1/namespaces/NS/RES/NAME/SUB, /api/v1/RES/NAME/SUB: splits into at
 * most 6 segments after /api/v1. */
static int split(const char *path, char seg[6][256])
{
    int n = 0;
    const char *p = path;
    while (*p == '/' && n < 6) {
        p++;
        size_t len = strcspn(p, "/");
        if (len == 0 || len >= 256)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
    }
    return *p ? -1 : n;
}

static void route(struct kube_req *k)
{
    char seg[6][256];
    const char *p = k->req->path;
    if (strncmp(p, "/api/v1/", 8) != 0) {
        kube_status(k->req, 404, "NotFound", NULL, NULL, "the server could not find the "
                                                         "requested resource");
        return;
    }
    int n = split(p + 7, seg);
    const char *ns = NULL, *res_name, *name = NULL, *sub = NULL;
    if (n >= 3 && !strcmp(seg[0], "namespaces")) {
        /* namespaces/NS/RES[/NAME[/SUB]] */
        ns = seg[1];
        res_name = seg[2];
        name = n >= 4 ? seg[3] : NULL;
        sub = n >= 5 ? seg[4] : NULL;
        if (n > 5)
            n = -1;
    } else if (n >= 1 && n <= 3) {
        res_name = seg[0];
        name = n >= 2 ? seg[1] : NULL;
        sub = n >= 3 ? seg[2] : NULL;
    } else {
        n = -1;
    }
    const struct kube_res *res = n > 0 ? kube_res_find(res_name) : NULL;
    if (!res || (ns && !res->namespaced)) {
        kube_status(k->req, 404, "NotFound", NULL, NULL,
                    "the server could not find the requested resource");
        return;
    }
    if (res->namespaced && !strcmp(res->plural, "serviceaccounts") && sub &&
        !strcmp(sub, "token") && ns && name && !strcmp(k->req->method, "POST")) {
        kube_token_request(k, ns, name);
        return;
    }
    if (ns && name && sub && !strcmp(res->plural, "pods") && !strcmp(sub, "exec")) {
        kube_exec(k, ns, name);
        return;
    }
    kube_objects(k, res, ns, name, sub);
}

void wispd_kube(struct wisp_http_req *req)
{
    struct kube_req k = {.req = req, .issuer = req->listener_tag};
    struct wisp_txn *txn = NULL;

    if (serve_static(&k))
        return;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        kube_store_error(req, WISP_EIO);
        return;
    }
    if (!load_cluster(&k, txn)) {
        kube_status(req, 404, "NotFound", NULL, NULL, "this cluster no longer exists");
        wisp_store_rollback(txn);
        goto out;
    }
    int ok = authenticate(&k, txn);
    wisp_store_rollback(txn);
    if (!ok)
        goto out;
    if (!serve_meta(&k))
        route(&k);
out:
    wispd_caller_free(k.caller);
    json_decref(k.cluster_doc);
    free(k.project);
    free(k.location);
    free(k.cluster);
    free(k.ksa_ns);
    free(k.ksa_name);
    free(k.user);
}
