/* SPDX-License-Identifier: Apache-2.0 */
/* What happens around a write besides the object itself: the namespaces
 * every cluster starts with, the default ServiceAccount of each namespace,
 * the scheduler binding a new pod to a node, and what deleting a namespace
 * or a running pod means. Nodes are derived from the node-pool documents
 * the GKE API keeps (src/wispd/api/container.c). */
#include <stdio.h>
#include <string.h>
#include <openssl/sha.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "kube_obj.h"

/* Writes a new object directly (seeding, default ServiceAccounts) at the
 * transaction's revision, like objects.c does. */
static enum wisp_err put_new(struct wisp_txn *txn, const char *issuer, const struct kube_res *res,
                             const char *ns, json_t *o)
{
    int64_t rev = 0;
    char rv[32], uid[37], now[32];
    enum wisp_err err = wisp_store_write_rev(txn, &rev);
    if (err)
        return err;
    json_t *m = json_object_get(o, "metadata");
    snprintf(rv, sizeof(rv), "%lld", (long long)rev);
    kube_uid(uid);
    kube_now(now, sizeof(now));
    json_object_set_new(m, "uid", json_string(uid));
    json_object_set_new(m, "creationTimestamp", json_string(now));
    json_object_set_new(m, "resourceVersion", json_string(rv));
    json_object_set_new(o, KUBE_CREATED, json_integer(rev));
    char *key = kube_key(issuer, res, ns, json_string_value(json_object_get(m, "name")));
    err = wispd_put_json(txn, res->store_kind, key, o, 0, NULL);
    free(key);
    return err == WISP_EEXIST ? WISP_OK : err;
}

static enum wisp_err default_sa(struct wisp_txn *txn, const char *issuer, const char *ns)
{
    json_t *sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "kind", "ServiceAccount", "apiVersion",
                           "v1", "metadata", "name", "default", "namespace", ns);
    enum wisp_err err = put_new(txn, issuer, kube_res_find("serviceaccounts"), ns, sa);
    json_decref(sa);
    return err;
}

enum wisp_err kube_seed(struct wisp_txn *txn, const char *issuer)
{
    static const char *const names[] = {"default", "kube-system", "kube-public",
                                        "kube-node-lease"};
    const struct kube_res *nsres = kube_res_find("namespaces");
    enum wisp_err err = WISP_OK;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !err; i++) {
        char *key = kube_key(issuer, nsres, NULL, names[i]);
        struct wisp_doc d;
        err = wisp_store_get(txn, nsres->store_kind, key, &d);
        free(key);
        if (err == WISP_OK) {
            wisp_store_doc_free(&d);
            continue;
        }
        if (err != WISP_ENOTFOUND)
            break;
        json_t *ns = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:[s]}, s:{s:s}}", "kind",
                               "Namespace", "apiVersion", "v1", "metadata", "name", names[i],
                               "labels", "kubernetes.io/metadata.name", names[i], "spec",
                               "finalizers", "kubernetes", "status", "phase", "Active");
        err = put_new(txn, issuer, nsres, NULL, ns);
        json_decref(ns);
        if (!err)
            err = default_sa(txn, issuer, names[i]);
    }
    return err;
}

/* ---- nodes ---------------------------------------------------------------- */

/* A stable UID per node name, so a node keeps its identity across reads. */
static void node_uid(const char *name, char out[37])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)name, strlen(name), h);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], (h[6] & 0x0f) | 0x50, h[7],
             (h[8] & 0x3f) | 0x80, h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
}

struct nodes_ctx {
    json_t *out;
    const struct kube_req *k;
};

static int pool_nodes(const struct wisp_doc *d, void *arg)
{
    struct nodes_ctx *c = arg;
    json_t *pool = json_loads(d->body, 0, NULL);
    const char *created =
        json_string_value(json_object_get(json_object_get(c->k->cluster_doc, "cluster"),
                                          "createTime"));
    size_t i;
    json_t *n;
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)d->rev);
    json_array_foreach(json_object_get(pool, "nodes"), i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        char uid[37];
        node_uid(name, uid);
        json_t *labels = json_deep_copy(json_object_get(n, "labels"));
        json_object_set_new(labels, "kubernetes.io/os", json_string("linux"));
        json_object_set_new(labels, "kubernetes.io/arch", json_string("amd64"));
        json_object_set_new(labels, "topology.kubernetes.io/zone",
                            json_string(c->k->location));
        json_array_append_new(
            c->out,
            json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s?, s:o}, s:{s:s, s:[s]}, "
                      "s:{s:[{s:s, s:s, s:s, s:s}], s:{s:s, s:s, s:s, s:s, s:s}}}",
                      "kind", "Node", "apiVersion", "v1", "metadata", "name", name, "uid", uid,
                      "resourceVersion", rv, "creationTimestamp", created, "labels", labels,
                      "spec", "podCIDR", json_string_value(json_object_get(n, "podCIDR")),
                      "podCIDRs", json_string_value(json_object_get(n, "podCIDR")), "status",
                      "conditions", "type", "Ready", "status", "True", "reason",
                      "KubeletReady", "message", "wisp-node is posting ready status",
                      "nodeInfo", "kubeletVersion", "v1.32.4-gke.wisp", "osImage",
                      "Linux namespaces (wisp)", "containerRuntimeVersion", "wisp://1",
                      "operatingSystem", "linux", "architecture", "amd64"));
    }
    json_decref(pool);
    return 0;
}

json_t *kube_nodes(struct wisp_txn *txn, const struct kube_req *k)
{
    struct nodes_ctx c = {.out = json_array(), .k = k};
    char *prefix = wisp_xasprintf("%s/%s/%s/", k->project, k->location, k->cluster);
    enum wisp_err err = wisp_store_list(txn, "gkenodepool", prefix, NULL, 0, pool_nodes, &c, NULL);
    free(prefix);
    if (err) {
        json_decref(c.out);
        return NULL;
    }
    return c.out;
}

/* ---- scheduling ------------------------------------------------------------- */

static int selector_fits(const json_t *sel, const json_t *labels)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)sel, key, v) {
        const char *have = json_string_value(json_object_get(labels, key));
        if (!have || strcmp(have, json_string_value(v)) != 0)
            return 0;
    }
    return 1;
}

struct count_ctx {
    json_t *per_node; /* node name -> pods bound */
};

static int count_pod(const struct wisp_doc *d, void *arg)
{
    struct count_ctx *c = arg;
    json_t *p = json_loads(d->body, 0, NULL);
    const char *node = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
    if (node)
        json_object_set_new(c->per_node, node,
                            json_integer(json_integer_value(json_object_get(c->per_node, node)) +
                                         1));
    json_decref(p);
    return 0;
}

enum wisp_err kube_schedule(struct wisp_txn *txn, const struct kube_req *k, json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    json_t *status = json_object_get(pod, "status");
    json_t *sel = json_object_get(spec, "nodeSelector");
    char now[32];
    kube_now(now, sizeof(now));
    if (json_string_value(json_object_get(spec, "nodeName"))) {
        json_object_set_new(status, "conditions",
                            json_pack("[{s:s, s:s, s:n, s:s}]", "type", "PodScheduled", "status",
                                      "True", "lastProbeTime", "lastTransitionTime", now));
        return WISP_OK;
    }
    json_t *nodes = kube_nodes(txn, k);
    if (!nodes)
        return WISP_EIO;
    struct count_ctx c = {.per_node = json_object()};
    char *prefix = wisp_xasprintf("%s ", k->issuer);
    enum wisp_err err = wisp_store_list(txn, "kube:pod", prefix, NULL, 0, count_pod, &c, NULL);
    free(prefix);
    /* Among the nodes that fit, the one with the fewest pods. */
    const char *best = NULL;
    json_int_t best_n = 0;
    size_t i, fit = 0;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        json_t *m = json_object_get(n, "metadata");
        if (sel && !selector_fits(sel, json_object_get(m, "labels")))
            continue;
        fit++;
        const char *name = json_string_value(json_object_get(m, "name"));
        json_int_t cnt = json_integer_value(json_object_get(c.per_node, name));
        if (!best || cnt < best_n) {
            best = name;
            best_n = cnt;
        }
    }
    if (!err && best) {
        json_object_set_new(spec, "nodeName", json_string(best));
        json_object_set_new(status, "conditions",
                            json_pack("[{s:s, s:s, s:n, s:s}]", "type", "PodScheduled", "status",
                                      "True", "lastProbeTime", "lastTransitionTime", now));
    } else if (!err) {
        char msg[200];
        size_t total = json_array_size(nodes);
        snprintf(msg, sizeof(msg),
                 "0/%zu nodes are available: %zu node(s) didn't match Pod's node "
                 "affinity/selector. preemption: 0/%zu nodes are available: %zu Preemption is "
                 "not helpful for scheduling.",
                 total, total - fit, total, total);
        json_object_set_new(status, "conditions",
                            json_pack("[{s:s, s:s, s:n, s:s, s:s, s:s}]", "type", "PodScheduled",
                                      "status", "False", "lastProbeTime", "lastTransitionTime",
                                      now, "reason", "Unschedulable", "message", msg));
    }
    json_decref(c.per_node);
    json_decref(nodes);
    return err;
}

/* ---- around create and delete ------------------------------------------- */

int kube_after_create(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                      const char *ns, json_t *o)
{
    enum wisp_err err = WISP_OK;
    if (!strcmp(res->plural, "namespaces"))
        err = default_sa(txn, k->issuer, json_string_value(json_object_get(
                                             json_object_get(o, "metadata"), "name")));
    else if (!strcmp(res->plural, "pods"))
        err = kube_schedule(txn, k, o);
    (void)ns;
    if (err)
        kube_store_error(k->req, err);
    return !err;
}

struct del_ctx {
    struct wisp_txn *txn;
    const char *kind;
    enum wisp_err err;
};

static int del_one(const struct wisp_doc *d, void *arg)
{
    struct del_ctx *c = arg;
    c->err = wisp_store_delete(c->txn, c->kind, d->name, -1);
    return c->err != WISP_OK;
}

/* Deletes every document of the kinds whose name starts with prefix. Each
 * pass lists from the prefix again, so deleting never moves a cursor. */
static enum wisp_err delete_prefixed(struct wisp_txn *txn, const char *const *kinds, size_t n_kinds,
                                     const char *prefix)
{
    enum wisp_err err = WISP_OK;
    for (size_t i = 0; i < n_kinds && !err; i++) {
        struct del_ctx c = {.txn = txn, .kind = kinds[i]};
        size_t n = 0;
        do {
            err = wisp_store_list(txn, kinds[i], prefix, NULL, 256, del_one, &c, &n);
            err = err ? err : c.err;
        } while (!err && n == 256);
    }
    return err;
}

enum wisp_err wispd_kube_forget(struct wisp_txn *txn, const char *issuer)
{
    static const char *const kinds[] = {"kube:pod", "kube:serviceaccount", "kube:namespace"};
    char *prefix = wisp_xasprintf("%s ", issuer);
    enum wisp_err err = delete_prefixed(txn, kinds, 3, prefix);
    free(prefix);
    return err;
}

/* The grace period a DELETE asks for: query, then DeleteOptions body,
 * then the pod's own. */
static json_int_t grace_period(struct wisp_http_req *req, const json_t *pod)
{
    const char *q = wisp_http_query(req, "gracePeriodSeconds");
    if (q)
        return atoll(q);
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    json_t *g = json_object_get(body, "gracePeriodSeconds");
    json_int_t v = json_is_integer(g) ? json_integer_value(g) : -1;
    json_decref(body);
    if (v >= 0)
        return v;
    g = json_object_get(json_object_get(pod, "spec"), "terminationGracePeriodSeconds");
    return json_is_integer(g) ? json_integer_value(g) : 30;
}

enum wisp_err kube_before_delete(struct kube_req *k, struct wisp_txn *txn,
                                 const struct kube_res *res, const char *ns, const char *name,
                                 json_t *cur, int *marked)
{
    *marked = 0;
    if (!strcmp(res->plural, "namespaces")) {
        static const char *const kinds[] = {"kube:pod", "kube:serviceaccount"};
        char *prefix = wisp_xasprintf("%s %s ", k->issuer, name);
        enum wisp_err err = delete_prefixed(txn, kinds, 2, prefix);
        free(prefix);
        json_object_set_new(json_object_get(cur, "status"), "phase", json_string("Terminating"));
        return err;
    }
    if (strcmp(res->plural, "pods") != 0)
        return WISP_OK;
    /* A pod a node has started (it reported a hostIP) is deleted by that
     * node once its processes are gone, like a kubelet does; the API only
     * marks it. Grace period 0 deletes at once. */
    json_t *m = json_object_get(cur, "metadata");
    const char *host = json_string_value(json_object_get(json_object_get(cur, "status"), "hostIP"));
    json_int_t grace = grace_period(k->req, cur);
    if (!host || grace == 0)
        return WISP_OK;
    if (!json_object_get(m, "deletionTimestamp")) {
        char now[32];
        kube_now(now, sizeof(now));
        json_object_set_new(m, "deletionTimestamp", json_string(now));
        json_object_set_new(m, "deletionGracePeriodSeconds", json_integer(grace));
    }
    (void)ns;
    *marked = 1;
    return WISP_OK;
}
