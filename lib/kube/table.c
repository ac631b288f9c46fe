/* SPDX-License-Identifier: Apache-2.0 */
/* The meta.k8s.io/v1 Table that kubectl get prints, made as kube-apiserver
 * 1.32's printers make it (pkg/printers/internalversion): the same columns,
 * the same cell types, the same READY/STATUS/RESTARTS derivation for pods
 * and the same AGE rounding. Reads objects only; never trusts a field's
 * type (a missing or mistyped field prints as absent). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "iam/cond_int.h"
#include "wisp/kube_meta.h"

/* ---- columns ------------------------------------------------------------- */

struct column {
    const char *name, *type, *format;
    int priority; /* 1: only with -o wide */
    const char *desc;
};

#define NAME_DESC                                                                              \
    "Name must be unique within a namespace. Is required when creating resources, although "  \
    "some resources may allow a client to request the generation of an appropriate name "     \
    "automatically. Name is primarily intended for creation idempotence and configuration "   \
    "definition. Cannot be updated. More info: "                                              \
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
#define CREATED_DESC                                                                           \
    "CreationTimestamp is a timestamp representing the server time when this object was "     \
    "created. It is not guaranteed to be set in happens-before order across separate "        \
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in " \
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "                 \
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"                       \
    "api-conventions.md#metadata"
#define ADDRESSES_DESC                                                                         \
    "List of addresses reachable to the node. Queried from cloud provider, if available. "    \
    "More info: https://kubernetes.io/docs/reference/node/node-status/#addresses"

static const struct column pod_columns[] = {
    {"Name", "string", "name", 0, NAME_DESC},
    {"Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."},
    {"Status", "string", "", 0, "The aggregate status of the containers in this pod."},
    {"Restarts", "string", "", 0,
     "The number of times the containers in this pod have been restarted and when the last "
     "container in this pod has restarted."},
    {"Age", "string", "", 0, CREATED_DESC},
    {"IP", "string", "", 1,
     "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
     "yet allocated."},
    {"Node", "string", "", 1,
     "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
     "candidate for scheduling by the scheduler defined in schedulerName."},
    {"Nominated Node", "string", "", 1,
     "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
     "cannot be scheduled right away as preemption victims receive their graceful termination "
     "periods."},
    {"Readiness Gates", "string", "", 1,
     "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready "
     "when all its containers are ready AND all conditions specified in the readiness gates "
     "have status equal to \"True\""},
    {NULL, NULL, NULL, 0, NULL},
};

static const struct column namespace_columns[] = {
    {"Name", "string", "name", 0, NAME_DESC},
    {"Status", "string", "", 0, "The status of the namespace"},
    {"Age", "string", "", 0, CREATED_DESC},
    {NULL, NULL, NULL, 0, NULL},
};

static const struct column serviceaccount_columns[] = {
    {"Name", "string", "name", 0, NAME_DESC},
    {"Secrets", "string", "", 0,
     "Secrets is a list of the secrets in the same namespace that pods running using this "
     "ServiceAccount are allowed to use."},
    {"Age", "string", "", 0, CREATED_DESC},
    {NULL, NULL, NULL, 0, NULL},
};

static const struct column node_columns[] = {
    {"Name", "string", "name", 0, NAME_DESC},
    {"Status", "string", "", 0, "The status of the node"},
    {"Roles", "string", "", 0, "The roles of the node"},
    {"Age", "string", "", 0, CREATED_DESC},
    {"Version", "string", "", 0, "Kubelet Version reported by the node."},
    {"Internal-IP", "string", "", 1, ADDRESSES_DESC},
    {"External-IP", "string", "", 1, ADDRESSES_DESC},
    {"OS-Image", "string", "", 1,
     "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."},
    {"Kernel-Version", "string", "", 1,
     "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."},
    {"Container-Runtime", "string", "", 1,
     "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
     "containerd://1.4.2)."},
    {NULL, NULL, NULL, 0, NULL},
};

/* kube-apiserver's table for a resource without printers. */
static const struct column default_columns[] = {
    {"Name", "string", "name", 0, NAME_DESC},
    {"Created At", "date", "", 0, CREATED_DESC},
    {NULL, NULL, NULL, 0, NULL},
};

static json_t *column_definitions(const struct column *c)
{
    json_t *a = json_array();
    for (; c->name; c++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->name, "type",
                                           c->type, "format", c->format, "description", c->desc,
                                           "priority", c->priority));
    return a;
}

/* ---- reading objects ------------------------------------------------------ */

static json_t *get(const json_t *o, const char *key)
{
    return json_is_object(o) ? json_object_get(o, key) : NULL;
}

/* A string member, "" when absent or not a string. */
static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(get(o, key));
    return s ? s : "";
}

static json_int_t integer(const json_t *o, const char *key)
{
    return json_integer_value(get(o, key));
}

static int is_true(const json_t *o, const char *key)
{
    return json_is_true(get(o, key));
}

/* The zero time.Time, for timestamps that are absent or unreadable. */
#define NO_TIME INT64_MIN

static int64_t timestamp(const json_t *o, const char *key)
{
    int64_t t;
    return wisp_kube_time_parse(str(o, key), &t) == 0 ? t : NO_TIME;
}

/* translateTimestampSince: "<unknown>" for the zero time. */
static void age(int64_t ts, int64_t now, char *out, size_t len)
{
    if (ts == NO_TIME)
        snprintf(out, len, "<unknown>");
    else
        wisp_kube_human_duration(now - ts, out, len);
}

/* ---- AGE and timestamps --------------------------------------------------- */

void wisp_kube_human_duration(int64_t s, char *out, size_t len)
{
    if (s < -1) {
        snprintf(out, len, "<invalid>");
        return;
    }
    if (s < 0)
        s = 0;
    int64_t m = s / 60, h = s / 3600, d = h / 24;
    if (s < 120)
        snprintf(out, len, "%" PRId64 "s", s);
    else if (m < 10 && s % 60)
        snprintf(out, len, "%" PRId64 "m%" PRId64 "s", m, s % 60);
    else if (m < 180)
        snprintf(out, len, "%" PRId64 "m", m);
    else if (h < 8 && m % 60)
        snprintf(out, len, "%" PRId64 "h%" PRId64 "m", h, m % 60);
    else if (h < 48)
        snprintf(out, len, "%" PRId64 "h", h);
    else if (h < 24 * 8 && h % 24)
        snprintf(out, len, "%" PRId64 "d%" PRId64 "h", d, h % 24);
    else if (h < 24 * 365 * 2)
        snprintf(out, len, "%" PRId64 "d", d);
    else if (h < 24 * 365 * 8 && d % 365)
        snprintf(out, len, "%" PRId64 "y%" PRId64 "d", d / 365, d % 365);
    else
        snprintf(out, len, "%" PRId64 "y", d / 365);
}

/* Go's time.Parse(time.RFC3339), which the IAM Conditions module already
 * implements for CEL timestamps. */
int wisp_kube_time_parse(const char *s, int64_t *out)
{
    struct cond_ts ts;
    if (!s || wisp__cond_parse_timestamp(s, strlen(s), &ts) != 0)
        return -1;
    *out = ts.sec;
    return 0;
}

/* ---- pods ----------------------------------------------------------------- */

/* An init container that keeps running beside the others (a sidecar). */
static int restartable_init(const json_t *spec, const char *name)
{
    size_t i;
    const json_t *c;
    json_array_foreach(get(spec, "initContainers"), i, c) {
        if (!strcmp(str(c, "name"), name))
            return !strcmp(str(c, "restartPolicy"), "Always");
    }
    return 0;
}

static int has_condition(const json_t *status, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(get(status, "conditions"), i, c) {
        if (!strcmp(str(c, "type"), type) && !strcmp(str(c, "status"), "True"))
            return 1;
    }
    return 0;
}

/* restartCount is an int32 in the API; clamped so that a sum over many
 * containers cannot overflow. */
static json_int_t restart_count(const json_t *cs)
{
    json_int_t n = integer(cs, "restartCount");
    return n < 0 ? 0 : n > INT32_MAX ? INT32_MAX : n;
}

/* The later of *last and a container's last termination. */
static void note_restart(const json_t *cs, int64_t *last)
{
    int64_t t = timestamp(get(get(cs, "lastTerminationState"), "terminated"), "finishedAt");
    if (t > *last)
        *last = t;
}

/* "Init:..." while init container i of n holds the pod back; 0 when it is
 * done or a running sidecar (counted in *ready). */
static int init_reason(const json_t *spec, const json_t *cs, size_t i, size_t n, int *ready,
                       char *reason, size_t len)
{
    const json_t *state = get(cs, "state");
    const json_t *term = get(state, "terminated");
    const json_t *wait = get(state, "waiting");
    if (json_is_object(term) && integer(term, "exitCode") == 0)
        return 0;
    if (restartable_init(spec, str(cs, "name")) && is_true(cs, "started")) {
        *ready += is_true(cs, "ready");
        return 0;
    }
    if (json_is_object(term)) {
        if (*str(term, "reason"))
            snprintf(reason, len, "Init:%s", str(term, "reason"));
        else if (integer(term, "signal"))
            snprintf(reason, len, "Init:Signal:%" JSON_INTEGER_FORMAT, integer(term, "signal"));
        else
            snprintf(reason, len, "Init:ExitCode:%" JSON_INTEGER_FORMAT, integer(term, "exitCode"));
    } else if (json_is_object(wait) && *str(wait, "reason") &&
               strcmp(str(wait, "reason"), "PodInitializing") != 0) {
        snprintf(reason, len, "Init:%s", str(wait, "reason"));
    } else {
        snprintf(reason, len, "Init:%zu/%zu", i, n);
    }
    return 1;
}

static json_t *pod_cells(const json_t *pod, int64_t now)
{
    const json_t *spec = get(pod, "spec"), *status = get(pod, "status");
    const json_t *inits = get(spec, "initContainers");
    const char *phase = str(status, "phase");
    char reason[256], buf[64], restarts_s[96], ready_s[48], gates[48];
    size_t i;
    const json_t *c;
    json_int_t restarts = 0, sidecar_restarts = 0;
    int total = (int)json_array_size(get(spec, "containers")), ready = 0, initializing = 0;
    int64_t last = NO_TIME, sidecar_last = NO_TIME;

    snprintf(reason, sizeof(reason), "%s", *str(status, "reason") ? str(status, "reason") : phase);
    json_array_foreach(get(status, "conditions"), i, c) {
        if (!strcmp(str(c, "type"), "PodScheduled") &&
            !strcmp(str(c, "reason"), "SchedulingGated"))
            snprintf(reason, sizeof(reason), "SchedulingGated");
    }
    json_array_foreach(inits, i, c) {
        if (!strcmp(str(c, "restartPolicy"), "Always"))
            total++;
    }

    json_array_foreach(get(status, "initContainerStatuses"), i, c) {
        restarts += restart_count(c);
        note_restart(c, &last);
        if (restartable_init(spec, str(c, "name"))) {
            sidecar_restarts += restart_count(c);
            note_restart(c, &sidecar_last);
        }
        initializing = init_reason(spec, c, i, json_array_size(inits), &ready, reason,
                                   sizeof(reason));
        if (initializing)
            break;
    }

    if (!initializing || has_condition(status, "Initialized")) {
        const json_t *statuses = get(status, "containerStatuses");
        int running = 0;
        restarts = sidecar_restarts;
        last = sidecar_last;
        /* Backwards, so the first container's state is the one shown. */
        for (i = json_array_size(statuses); i-- > 0;) {
            c = json_array_get(statuses, i);
            const json_t *state = get(c, "state");
            const json_t *term = get(state, "terminated"), *wait = get(state, "waiting");
            restarts += restart_count(c);
            note_restart(c, &last);
            if (json_is_object(wait) && *str(wait, "reason"))
                snprintf(reason, sizeof(reason), "%s", str(wait, "reason"));
            else if (json_is_object(term) && *str(term, "reason"))
                snprintf(reason, sizeof(reason), "%s", str(term, "reason"));
            else if (json_is_object(term) && integer(term, "signal"))
                snprintf(reason, sizeof(reason), "Signal:%" JSON_INTEGER_FORMAT,
                         integer(term, "signal"));
            else if (json_is_object(term))
                snprintf(reason, sizeof(reason), "ExitCode:%" JSON_INTEGER_FORMAT,
                         integer(term, "exitCode"));
            else if (is_true(c, "ready") && json_is_object(get(state, "running"))) {
                running = 1;
                ready++;
            }
        }
        if (!strcmp(reason, "Completed") && running)
            snprintf(reason, sizeof(reason), "%s",
                     has_condition(status, "Ready") ? "Running" : "NotReady");
    }

    if (json_is_string(get(get(pod, "metadata"), "deletionTimestamp"))) {
        if (!strcmp(str(status, "reason"), "NodeLost"))
            snprintf(reason, sizeof(reason), "Unknown");
        else if (strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0)
            snprintf(reason, sizeof(reason), "Terminating");
    }

    if (restarts != 0 && last != NO_TIME) {
        wisp_kube_human_duration(now - last, buf, sizeof(buf));
        snprintf(restarts_s, sizeof(restarts_s), "%" JSON_INTEGER_FORMAT " (%s ago)", restarts,
                 buf);
    } else {
        snprintf(restarts_s, sizeof(restarts_s), "%" JSON_INTEGER_FORMAT, restarts);
    }
    snprintf(ready_s, sizeof(ready_s), "%d/%d", ready, total);
    age(timestamp(get(pod, "metadata"), "creationTimestamp"), now, buf, sizeof(buf));

    /* kube-apiserver reads podIPs[0]; v1 objects that carry only podIP get
     * podIPs from it in conversion, so podIP is the fallback. */
    const char *ip = str(json_array_get(get(status, "podIPs"), 0), "ip");
    if (!*ip)
        ip = str(status, "podIP");
    const json_t *rg = get(spec, "readinessGates");
    if (json_array_size(rg)) {
        size_t n_true = 0, j;
        const json_t *g;
        json_array_foreach(rg, i, g) {
            json_array_foreach(get(status, "conditions"), j, c) {
                if (!strcmp(str(c, "type"), str(g, "conditionType"))) {
                    n_true += !strcmp(str(c, "status"), "True");
                    break;
                }
            }
        }
        snprintf(gates, sizeof(gates), "%zu/%zu", n_true, json_array_size(rg));
    } else {
        snprintf(gates, sizeof(gates), "<none>");
    }
    const char *node = str(spec, "nodeName"), *nominated = str(status, "nominatedNodeName");
    return json_pack("[s, s, s, s, s, s, s, s, s]", str(get(pod, "metadata"), "name"), ready_s,
                     reason, restarts_s, buf, *ip ? ip : "<none>", *node ? node : "<none>",
                     *nominated ? nominated : "<none>", gates);
}

/* The row condition kube-apiserver sets on finished pods. */
static json_t *pod_conditions(const json_t *pod)
{
    const char *phase = str(get(pod, "status"), "phase");
    int ok = !strcmp(phase, "Succeeded");
    if (!ok && strcmp(phase, "Failed") != 0)
        return NULL;
    return json_pack("[{s:s, s:s, s:s, s:s}]", "type", "Completed", "status", "True", "reason",
                     phase, "message",
                     ok ? "The pod has completed successfully." : "The pod failed.");
}

/* ---- other kinds ---------------------------------------------------------- */

static json_t *namespace_cells(const json_t *ns, int64_t now)
{
    char a[64];
    const json_t *meta = get(ns, "metadata");
    age(timestamp(meta, "creationTimestamp"), now, a, sizeof(a));
    return json_pack("[s, s, s]", str(meta, "name"), str(get(ns, "status"), "phase"), a);
}

static json_t *serviceaccount_cells(const json_t *sa, int64_t now)
{
    char a[64];
    const json_t *meta = get(sa, "metadata");
    age(timestamp(meta, "creationTimestamp"), now, a, sizeof(a));
    json_int_t secrets = (json_int_t)json_array_size(get(sa, "secrets"));
    return json_pack("[s, I, s]", str(meta, "name"), secrets, a);
}

/* The first address of type, or "<none>". */
static const char *node_address(const json_t *node, const char *type)
{
    size_t i;
    const json_t *a;
    json_array_foreach(get(get(node, "status"), "addresses"), i, a) {
        if (!strcmp(str(a, "type"), type))
            return str(a, "address");
    }
    return "<none>";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ROLES: node-role.kubernetes.io/ROLE labels and kubernetes.io/role=ROLE,
 * sorted and without duplicates; "<none>" when there are none. */
static void node_roles(const json_t *labels, char *out, size_t len)
{
    const char *roles[64];
    size_t n = 0, used = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k, v) {
        const char *role = NULL;
        if (!strncmp(k, "node-role.kubernetes.io/", 24) && k[24])
            role = k + 24;
        else if (!strcmp(k, "kubernetes.io/role") && json_string_value(v) && *json_string_value(v))
            role = json_string_value(v);
        if (role && n < sizeof(roles) / sizeof(roles[0]))
            roles[n++] = role;
    }
    qsort(roles, n, sizeof(roles[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(roles[i], roles[i - 1]))
            continue;
        int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", roles[i]);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    if (!used)
        snprintf(out, len, "<none>");
}

static json_t *node_cells(const json_t *node, int64_t now)
{
    char a[64], status[64] = "Unknown", roles[512];
    const json_t *meta = get(node, "metadata"), *info = get(get(node, "status"), "nodeInfo");
    size_t i;
    const json_t *c;
    json_array_foreach(get(get(node, "status"), "conditions"), i, c) {
        if (!strcmp(str(c, "type"), "Ready"))
            snprintf(status, sizeof(status), "%s",
                     !strcmp(str(c, "status"), "True") ? "Ready" : "NotReady");
    }
    if (is_true(get(node, "spec"), "unschedulable"))
        snprintf(status + strlen(status), sizeof(status) - strlen(status), ",SchedulingDisabled");
    node_roles(get(meta, "labels"), roles, sizeof(roles));
    age(timestamp(meta, "creationTimestamp"), now, a, sizeof(a));
    const char *os = str(info, "osImage"), *kernel = str(info, "kernelVersion");
    const char *runtime = str(info, "containerRuntimeVersion");
    return json_pack("[s, s, s, s, s, s, s, s, s, s]", str(meta, "name"), status, roles, a,
                     str(info, "kubeletVersion"), node_address(node, "InternalIP"),
                     node_address(node, "ExternalIP"), *os ? os : "<unknown>",
                     *kernel ? kernel : "<unknown>", *runtime ? runtime : "<unknown>");
}

/* kube-apiserver's default: the name and creationTimestamp as RFC 3339. */
static json_t *default_cells(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *meta = get(o, "metadata");
    int64_t t = timestamp(meta, "creationTimestamp");
    char when[32] = "0001-01-01T00:00:00Z";
    time_t tt = (time_t)t;
    struct tm tm;
    if (t != NO_TIME && gmtime_r(&tt, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("[s, s]", str(meta, "name"), when);
}

/* ---- the table ------------------------------------------------------------ */

struct printer {
    const char *resource, *kind;
    const struct column *columns;
    json_t *(*cells)(const json_t *obj, int64_t now);
};

static const struct printer printers[] = {
    {"pods", "Pod", pod_columns, pod_cells},
    {"namespaces", "Namespace", namespace_columns, namespace_cells},
    {"serviceaccounts", "ServiceAccount", serviceaccount_columns, serviceaccount_cells},
    {"nodes", "Node", node_columns, node_cells},
};
static const struct printer default_printer = {NULL, NULL, default_columns, default_cells};

static const struct printer *printer_for(const char *resource)
{
    for (size_t i = 0; i < sizeof(printers) / sizeof(printers[0]); i++) {
        if (resource && !strcmp(printers[i].resource, resource))
            return &printers[i];
    }
    return &default_printer;
}

int wisp_kube_include_parse(const char *value)
{
    if (!value || !*value || !strcmp(value, "Metadata"))
        return WISP_KUBE_INCLUDE_METADATA;
    if (!strcmp(value, "Object"))
        return WISP_KUBE_INCLUDE_OBJECT;
    if (!strcmp(value, "None"))
        return WISP_KUBE_INCLUDE_NONE;
    return -1;
}

static json_t *row_object(const struct printer *p, const json_t *obj, int include)
{
    if (include == WISP_KUBE_INCLUDE_NONE)
        return json_null();
    if (include == WISP_KUBE_INCLUDE_OBJECT) {
        json_t *o = json_deep_copy(obj);
        if (json_is_object(o) && p->kind && !json_object_get(o, "kind")) {
            json_object_set_new(o, "kind", json_string(p->kind));
            json_object_set_new(o, "apiVersion", json_string("v1"));
        }
        return o;
    }
    json_t *meta = get(obj, "metadata");
    return json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata",
                     json_is_object(meta) ? json_deep_copy(meta) : json_object());
}

static json_t *row(const struct printer *p, const json_t *obj, int64_t now, int include)
{
    json_t *r = json_pack("{s:o}", "cells", p->cells(obj, now));
    json_t *conds = p->cells == pod_cells ? pod_conditions(obj) : NULL;
    if (conds)
        json_object_set_new(r, "conditions", conds);
    json_object_set_new(r, "object", row_object(p, obj, include));
    return r;
}

static json_t *table(json_t *columns, json_t *rows, const char *rv)
{
    json_t *meta = json_object();
    if (rv)
        json_object_set_new(meta, "resourceVersion", json_string(rv));
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
                     "metadata", meta, "columnDefinitions", columns ? columns : json_null(),
                     "rows", rows);
}

json_t *wisp_kube_table(const char *resource, const json_t *items, int64_t now,
                        const char *resource_version, int include_object)
{
    const struct printer *p = printer_for(resource);
    json_t *rows = json_array();
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
        json_array_append_new(rows, row(p, it, now, include_object));
    return table(column_definitions(p->columns), rows, resource_version);
}

json_t *wisp_kube_table_event(const char *resource, const json_t *obj, int64_t now,
                              int include_object, int headers)
{
    const struct printer *p = printer_for(resource);
    const char *rv = json_string_value(get(get(obj, "metadata"), "resourceVersion"));
    return table(headers ? column_definitions(p->columns) : NULL,
                 json_pack("[o]", row(p, obj, now, include_object)), rv);
}
