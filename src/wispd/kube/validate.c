/* SPDX-License-Identifier: Apache-2.0 */
/* What the API server checks and fills in on a write, per kind: names,
 * namespaces, strict field decoding (fieldValidation=Strict, kubectl's
 * default), identity fields, pod defaults and the rules of GKE on top of
 * Kubernetes (Autopilot's node-selector limits, ServiceAccount admission). */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "kube_obj.h"

/* ---- names ------------------------------------------------------------------ */

static int dns_label(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < n - 1))
            return 0;
    }
    return 1;
}

static int dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ".");
        if (!dns_label(p, len))
            return 0;
        if (!p[len])
            return 1;
        p += len + 1;
    }
}

static int name_ok(struct kube_req *k, const struct kube_res *res, const char *name)
{
    int label = !strcmp(res->plural, "namespaces");
    if (label ? dns_label(name, strlen(name)) : dns_subdomain(name))
        return 1;
    kube_invalid(k->req, res->kind, name, "metadata.name", "FieldValueInvalid",
                 "Invalid value: \"%.253s\": a lowercase RFC 1123 %s must consist of lower case "
                 "alphanumeric characters, '-'%s, and must start and end with an alphanumeric "
                 "character",
                 name, label ? "label" : "subdomain", label ? "" : " or '.'");
    return 0;
}

/* ---- strict decoding ----------------------------------------------------- */

static const char *const top_common[] = {"apiVersion", "kind", "metadata", NULL};
static const char *const top_namespace[] = {"spec", "status", NULL};
static const char *const top_sa[] = {"secrets", "imagePullSecrets", "automountServiceAccountToken",
                                     NULL};
static const char *const top_pod[] = {"spec", "status", NULL};
static const char *const meta_fields[] = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields", NULL};
static const char *const pod_spec_fields[] = {
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
    "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
    "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
    "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
    "resourceClaims", "resources", NULL};
static const char *const container_fields[] = {
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
    NULL};

static int in(const char *const *list, const char *key)
{
    for (; list && *list; list++) {
        if (!strcmp(*list, key))
            return 1;
    }
    return 0;
}

/* The first key of obj in neither list, as "PREFIX.key"; 0 if none. */
static int unknown_field(const json_t *obj, const char *const *a, const char *const *b,
                         const char *prefix, char *out, size_t len)
{
    const char *key;
    json_t *v;
    if (!json_is_object(obj))
        return 0;
    json_object_foreach((json_t *)obj, key, v) {
        if (!in(a, key) && !in(b, key) && key[0] != '~') {
            snprintf(out, len, "%s%s%s", prefix, *prefix ? "." : "", key);
            return 1;
        }
    }
    return 0;
}

static int strict_ok(struct kube_req *k, const struct kube_res *res, const json_t *o)
{
    const char *fv = wisp_http_query(k->req, "fieldValidation");
    if (fv && strcmp(fv, "Strict") != 0)
        return 1;
    const char *const *extra = !strcmp(res->plural, "namespaces")        ? top_namespace
                               : !strcmp(res->plural, "serviceaccounts") ? top_sa
                                                                         : top_pod;
    char f[300];
    int bad = unknown_field(o, top_common, extra, "", f, sizeof(f)) ||
              unknown_field(json_object_get(o, "metadata"), meta_fields, NULL, "metadata", f,
                            sizeof(f));
    if (!bad && !strcmp(res->plural, "pods")) {
        const json_t *spec = json_object_get(o, "spec");
        bad = unknown_field(spec, pod_spec_fields, NULL, "spec", f, sizeof(f));
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, "containers"), i, c) {
            char pre[64];
            snprintf(pre, sizeof(pre), "spec.containers[%zu]", i);
            if (!bad)
                bad = unknown_field(c, container_fields, NULL, pre, f, sizeof(f));
        }
    }
    if (bad)
        kube_status(k->req, 400, "BadRequest", NULL, NULL,
                    "%s in version \"v1\" cannot be handled as a %s: strict decoding error: "
                    "unknown field \"%s\"",
                    res->kind, res->kind, f);
    return !bad;
}

/* ---- create ------------------------------------------------------------------ */

static json_t *meta(json_t *o)
{
    json_t *m = json_object_get(o, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(o, "metadata", m);
    }
    return m;
}

static int string_map(const json_t *m)
{
    const char *key;
    json_t *v;
    if (!m)
        return 1;
    if (!json_is_object(m))
        return 0;
    json_object_foreach((json_t *)m, key, v) {
        if (!json_is_string(v))
            return 0;
    }
    return 1;
}

static void generate_name(json_t *m, const char *base)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char r[5];
    char suffix[6];
    RAND_bytes(r, sizeof(r));
    for (int i = 0; i < 5; i++)
        suffix[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
    suffix[5] = '\0';
    char *name = wisp_xasprintf("%s%s", base, suffix);
    json_object_set_new(m, "name", json_string(name));
    free(name);
}

static void pod_defaults(json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    static const struct {
        const char *key, *value;
    } strs[] = {{"restartPolicy", "Always"},
                {"dnsPolicy", "ClusterFirst"},
                {"schedulerName", "default-scheduler"},
                {"serviceAccountName", "default"},
                {"preemptionPolicy", "PreemptLowerPriority"}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (!json_is_string(json_object_get(spec, strs[i].key)))
            json_object_set_new(spec, strs[i].key, json_string(strs[i].value));
    }
    json_object_set(spec, "serviceAccount", json_object_get(spec, "serviceAccountName"));
    if (!json_object_get(spec, "terminationGracePeriodSeconds"))
        json_object_set_new(spec, "terminationGracePeriodSeconds", json_integer(30));
    if (!json_object_get(spec, "securityContext"))
        json_object_set_new(spec, "securityContext", json_object());
    if (!json_object_get(spec, "enableServiceLinks"))
        json_object_set_new(spec, "enableServiceLinks", json_true());
    if (!json_object_get(spec, "priority"))
        json_object_set_new(spec, "priority", json_integer(0));
    if (!json_object_get(spec, "tolerations"))
        json_object_set_new(
            spec, "tolerations",
            json_pack("[{s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:i}]", "key",
                      "node.kubernetes.io/not-ready", "operator", "Exists", "effect", "NoExecute",
                      "tolerationSeconds", 300, "key", "node.kubernetes.io/unreachable",
                      "operator", "Exists", "effect", "NoExecute", "tolerationSeconds", 300));
    size_t i;
    json_t *c;
    int limits = 0, requests = 0, n = 0;
    json_array_foreach(json_object_get(spec, "containers"), i, c) {
        const char *image = json_string_value(json_object_get(c, "image"));
        const char *slash = image ? strrchr(image, '/') : NULL;
        const char *tag = image ? strchr(slash ? slash : image, ':') : NULL;
        if (!json_object_get(c, "imagePullPolicy"))
            json_object_set_new(c, "imagePullPolicy",
                                json_string(!tag || !strcmp(tag, ":latest") ? "Always"
                                                                            : "IfNotPresent"));
        if (!json_object_get(c, "terminationMessagePath"))
            json_object_set_new(c, "terminationMessagePath",
                                json_string("/dev/termination-log"));
        if (!json_object_get(c, "terminationMessagePolicy"))
            json_object_set_new(c, "terminationMessagePolicy", json_string("File"));
        json_t *r = json_object_get(c, "resources");
        if (!r)
            json_object_set_new(c, "resources", json_object());
        limits += json_object_size(json_object_get(r, "limits")) > 0;
        requests += json_object_size(json_object_get(r, "requests")) > 0;
        n++;
    }
    /* A rough QoS class: Guaranteed needs limits on every container. */
    const char *qos = limits == n && n ? "Guaranteed" : limits || requests ? "Burstable"
                                                                            : "BestEffort";
    json_object_set_new(pod, "status", json_pack("{s:s, s:s}", "phase", "Pending", "qosClass", qos));
}

#define METADATA_LABEL "iam.gke.io/gke-metadata-server-enabled"

static int pod_ok(struct kube_req *k, struct wisp_txn *txn, const char *ns, json_t *pod)
{
    const char *name = json_string_value(json_object_get(meta(pod), "name"));
    json_t *spec = json_object_get(pod, "spec");
    json_t *cs = json_object_get(spec, "containers");
    if (!json_is_object(spec) || !json_is_array(cs) || json_array_size(cs) == 0) {
        kube_invalid(k->req, "Pod", name, "spec.containers", "FieldValueRequired",
                     "Required value");
        return 0;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c) {
        const char *cn = json_string_value(json_object_get(c, "name"));
        char field[64];
        snprintf(field, sizeof(field), "spec.containers[%zu].%s", i, cn ? "image" : "name");
        if (!cn || !dns_label(cn, strlen(cn)) || !json_is_string(json_object_get(c, "image"))) {
            kube_invalid(k->req, "Pod", name, field, "FieldValueRequired", "Required value");
            return 0;
        }
    }
    json_t *sel = json_object_get(spec, "nodeSelector");
    if (!string_map(sel)) {
        kube_invalid(k->req, "Pod", name, "spec.nodeSelector", "FieldValueInvalid",
                     "Invalid value: must be a map of strings");
        return 0;
    }
    /* GKE Autopilot manages the metadata server itself and refuses pods
     * that select on its node label (the seed's Standard-only step). */
    json_t *ap = json_object_get(json_object_get(k->cluster_doc, "cluster"), "autopilot");
    if (json_is_true(json_object_get(ap, "enabled")) && json_object_get(sel, METADATA_LABEL)) {
        kube_status(k->req, 403, "Forbidden", name, "pods",
                    "admission webhook \"warden-validating.common-webhooks.networking.gke.io\" "
                    "denied the request: GKE Warden rejected the request because it violates "
                    "one or more constraints.\nViolations details: {\"[denied by "
                    "autogke-node-affinity-selector-limitation]\":[\"Key '%s' is not allowed "
                    "with node selector; Autopilot manages the GKE metadata server on every "
                    "node.\"]}",
                    METADATA_LABEL);
        return 0;
    }
    pod_defaults(pod);
    /* ServiceAccount admission: the pod's account must exist. */
    const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
    const struct kube_res *sares = kube_res_find("serviceaccounts");
    json_t *sadoc = NULL;
    enum wisp_err err = kube_load(txn, k, sares, ns, sa, &sadoc, NULL);
    json_decref(sadoc);
    if (err == WISP_ENOTFOUND) {
        kube_status(k->req, 403, "Forbidden", name, "pods",
                    "pods \"%s\" is forbidden: error looking up service account %s/%s: "
                    "serviceaccount \"%s\" not found",
                    name, ns, sa, sa);
        return 0;
    }
    return err == WISP_OK;
}

int kube_validate_create(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                         const char *ns, json_t *o)
{
    if (!json_is_object(o)) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL, "the body must be a JSON object");
        return 0;
    }
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *av = json_string_value(json_object_get(o, "apiVersion"));
    if ((kind && strcmp(kind, res->kind) != 0) || (av && strcmp(av, "v1") != 0)) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL,
                    "the API version in the data (%s) does not match the expected API version "
                    "(v1) or the kind (%s) is not %s",
                    av ? av : "", kind ? kind : "", res->kind);
        return 0;
    }
    if (!strict_ok(k, res, o))
        return 0;
    json_t *m = meta(o);
    const char *gen = json_string_value(json_object_get(m, "generateName"));
    if (!json_is_string(json_object_get(m, "name")) && gen)
        generate_name(m, gen);
    const char *name = json_string_value(json_object_get(m, "name"));
    if (!name || !*name) {
        kube_invalid(k->req, res->kind, "", "metadata.name", "FieldValueRequired",
                     "Required value: name or generateName is required");
        return 0;
    }
    if (!name_ok(k, res, name) || !string_map(json_object_get(m, "labels")) ||
        !string_map(json_object_get(m, "annotations"))) {
        if (!strcmp(k->req->method, "POST") && name_ok(k, res, name))
            kube_invalid(k->req, res->kind, name, "metadata.labels", "FieldValueInvalid",
                         "Invalid value: labels and annotations must map strings to strings");
        return 0;
    }
    const char *body_ns = json_string_value(json_object_get(m, "namespace"));
    if (res->namespaced) {
        if (body_ns && *body_ns && strcmp(body_ns, ns) != 0) {
            kube_status(k->req, 400, "BadRequest", NULL, NULL,
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request");
            return 0;
        }
        json_t *nsdoc = NULL;
        enum wisp_err err = kube_load(txn, k, kube_res_find("namespaces"), NULL, ns, &nsdoc, NULL);
        json_decref(nsdoc);
        if (err == WISP_ENOTFOUND) {
            kube_status(k->req, 404, "NotFound", ns, "namespaces", "namespaces \"%s\" not found",
                        ns);
            return 0;
        }
        json_object_set_new(m, "namespace", json_string(ns));
    } else {
        json_object_del(m, "namespace");
    }
    json_object_set_new(o, "kind", json_string(res->kind));
    json_object_set_new(o, "apiVersion", json_string("v1"));
    char uid[37], now[32];
    kube_uid(uid);
    kube_now(now, sizeof(now));
    json_object_set_new(m, "uid", json_string(uid));
    json_object_set_new(m, "creationTimestamp", json_string(now));
    static const char *const server_set[] = {"resourceVersion", "selfLink", "deletionTimestamp",
                                             "deletionGracePeriodSeconds", "managedFields",
                                             "generation"};
    for (size_t i = 0; i < sizeof(server_set) / sizeof(server_set[0]); i++)
        json_object_del(m, server_set[i]);
    if (!strcmp(res->plural, "namespaces")) {
        json_t *labels = json_object_get(m, "labels");
        if (!labels) {
            labels = json_object();
            json_object_set_new(m, "labels", labels);
        }
        json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(name));
        json_object_set_new(o, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
        json_object_set_new(o, "status", json_pack("{s:s}", "phase", "Active"));
    } else if (!strcmp(res->plural, "pods")) {
        json_object_set_new(m, "generation", json_integer(1));
        return pod_ok(k, txn, ns, o);
    }
    return 1;
}

/* ---- update ------------------------------------------------------------------ */

/* The spec fields a pod update may change (Kubernetes' rule). */
static json_t *pod_spec_fixed(const json_t *spec)
{
    json_t *s = json_deep_copy(spec);
    size_t i;
    json_t *c;
    json_object_del(s, "activeDeadlineSeconds");
    json_object_del(s, "tolerations");
    json_object_del(s, "terminationGracePeriodSeconds");
    json_array_foreach(json_object_get(s, "containers"), i, c)
        json_object_del(c, "image");
    json_array_foreach(json_object_get(s, "initContainers"), i, c)
        json_object_del(c, "image");
    return s;
}

int kube_validate_update(struct kube_req *k, const struct kube_res *res, const char *name,
                         const json_t *cur, json_t *new, const char *sub)
{
    if (!json_is_object(new)) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL, "the body must be a JSON object");
        return 0;
    }
    json_t *m = meta(new);
    const char *nn = json_string_value(json_object_get(m, "name"));
    if (nn && strcmp(nn, name) != 0) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL,
                    "the name of the object (%s) does not match the name on the URL (%s)", nn,
                    name);
        return 0;
    }
    if (!strict_ok(k, res, new))
        return 0;
    const json_t *cm = json_object_get(cur, "metadata");
    static const char *const kept[] = {"name", "namespace", "uid", "creationTimestamp",
                                       "deletionTimestamp", "deletionGracePeriodSeconds",
                                       "generation"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        json_t *v = json_object_get(cm, kept[i]);
        if (v)
            json_object_set(m, kept[i], v);
        else
            json_object_del(m, kept[i]);
    }
    json_object_set_new(new, "kind", json_string(res->kind));
    json_object_set_new(new, "apiVersion", json_string("v1"));
    if (!string_map(json_object_get(m, "labels")) || !string_map(json_object_get(m, "annotations"))) {
        kube_invalid(k->req, res->kind, name, "metadata.labels", "FieldValueInvalid",
                     "Invalid value: labels and annotations must map strings to strings");
        return 0;
    }
    if (strcmp(res->plural, "pods") != 0)
        return 1;
    if (sub) {
        /* pods/status: only the status changes. */
        json_t *status = json_incref(json_object_get(new, "status"));
        json_object_clear(new);
        json_object_update(new, (json_t *)cur);
        json_object_set_new(new, "status", status ? status : json_object());
        return 1;
    }
    json_object_set(new, "status", json_object_get(cur, "status"));
    json_t *a = pod_spec_fixed(json_object_get(cur, "spec"));
    json_t *b = pod_spec_fixed(json_object_get(new, "spec"));
    int same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (!same) {
        kube_invalid(k->req, "Pod", name, "spec", "FieldValueForbidden",
                     "Forbidden: pod updates may not change fields other than "
                     "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                     "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                     "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
                     "set to 1 if it was previously negative)");
        return 0;
    }
    if (!json_equal(json_object_get(cur, "spec"), json_object_get(new, "spec")))
        json_object_set_new(m, "generation",
                            json_integer(json_integer_value(json_object_get(cm, "generation")) + 1));
    return 1;
}
