/* SPDX-License-Identifier: Apache-2.0 */
/* /version and API discovery for the core group, legacy (APIVersions,
 * APIGroupList, APIResourceList) and aggregated (apidiscovery.k8s.io/v2),
 * built from one table of the resources wisp serves so the two shapes
 * cannot disagree. Named groups are not served, so /apis is empty. */
#include <string.h>
#include <strings.h>
#include "wisp/kube_meta.h"

/* One resource or subresource of the core group. Verbs are space-separated
 * and sorted, as kube-apiserver lists them. */
struct res_def {
    const char *name;        /* "pods", or "pods/exec" for a subresource */
    const char *singular;    /* "" for subresources, as kube-apiserver */
    const char *kind;
    int namespaced;
    const char *verbs;
    const char *short_name;  /* NULL: none */
    const char *category;    /* NULL: none */
    const char *group, *version; /* a subresource of another group's kind */
    const char *svh;         /* storageVersionHash of kube-apiserver 1.32 */
};

/* In name order, as /api/v1 lists them. Only the verbs wisp serves. */
static const struct res_def resources[] = {
    {"namespaces", "namespace", "Namespace", 0, "create delete get list patch update watch", "ns",
     NULL, NULL, NULL, "Q3oi5N2YM8M="},
    {"nodes", "node", "Node", 0, "get list patch watch", "no", NULL, NULL, NULL, "XwShjMxG9Fs="},
    {"pods", "pod", "Pod", 1, "create delete get list patch update watch", "po", "all", NULL, NULL,
     "xPOwRZ+Yhw8="},
    {"pods/exec", "", "PodExecOptions", 1, "create get", NULL, NULL, NULL, NULL, NULL},
    {"pods/status", "", "Pod", 1, "get patch update", NULL, NULL, NULL, NULL, NULL},
    {"serviceaccounts", "serviceaccount", "ServiceAccount", 1,
     "create delete get list patch update watch", "sa", NULL, NULL, NULL, "pbx9ZvyFpBE="},
    {"serviceaccounts/token", "", "TokenRequest", 1, "create", NULL, NULL,
     "authentication.k8s.io", "v1", NULL},
};
#define N_RESOURCES (sizeof(resources) / sizeof(resources[0]))

json_t *wisp_kube_version(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", WISP_KUBE_MAJOR,
                     "minor", WISP_KUBE_MINOR, "gitVersion", WISP_KUBE_GIT_VERSION, "gitCommit",
                     "4cb5f07bd1f9ae2f4b8f17a2b67aa5bee0a3a0a4", "gitTreeState", "clean",
                     "buildDate", "2025-04-23T09:26:40Z", "goVersion", "go1.23.6 X:boringcrypto",
                     "compiler", "gc", "platform", "linux/amd64");
}

json_t *wisp_kube_api_versions(const char *server_address)
{
    json_t *cidrs = json_array();
    if (server_address)
        json_array_append_new(cidrs, json_pack("{s:s, s:s}", "clientCIDR", "0.0.0.0/0",
                                               "serverAddress", server_address));
    return json_pack("{s:s, s:[s], s:o}", "kind", "APIVersions", "versions", "v1",
                     "serverAddressByClientCIDRs", cidrs);
}

json_t *wisp_kube_api_groups(void)
{
    return json_pack("{s:s, s:s, s:[]}", "kind", "APIGroupList", "apiVersion", "v1", "groups");
}

/* [p, end) without surrounding blanks equals want (case-insensitive when
 * fold). */
static int token_is(const char *p, const char *end, const char *want, int fold)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    return n == strlen(want) && (fold ? strncasecmp(p, want, n) : strncmp(p, want, n)) == 0;
}

/* One media range, [p, end): application/json;g=apidiscovery.k8s.io;v=v2;
 * as=APIGroupDiscoveryList in any parameter order. */
static int range_is_v2(const char *p, const char *end)
{
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi || !token_is(p, semi, "application/json", 1))
        return 0;
    int g = 0, v = 0, as = 0;
    for (p = semi + 1; p < end;) {
        const char *next = memchr(p, ';', (size_t)(end - p));
        if (!next)
            next = end;
        const char *eq = memchr(p, '=', (size_t)(next - p));
        if (eq) {
            if (token_is(p, eq, "g", 1))
                g = token_is(eq + 1, next, "apidiscovery.k8s.io", 0);
            else if (token_is(p, eq, "v", 1))
                v = token_is(eq + 1, next, "v2", 0);
            else if (token_is(p, eq, "as", 1))
                as = token_is(eq + 1, next, "APIGroupDiscoveryList", 0);
        }
        p = next + 1;
    }
    return g && v && as;
}

int wisp_kube_wants_discovery_v2(const char *accept)
{
    if (!accept)
        return 0;
    const char *p = accept, *end = accept + strlen(accept);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            comma = end;
        if (range_is_v2(p, comma))
            return 1;
        p = comma + 1;
    }
    return 0;
}

json_t *wisp__kube_words(const char *words)
{
    json_t *a = json_array();
    const char *p = words;
    while (*p) {
        size_t n = strcspn(p, " ");
        json_array_append_new(a, json_stringn(p, n));
        p += n;
        p += strspn(p, " ");
    }
    return a;
}

/* shortNames and categories, present only when the resource has them. */
static void add_names(json_t *o, const struct res_def *r)
{
    if (r->short_name)
        json_object_set_new(o, "shortNames", json_pack("[s]", r->short_name));
    if (r->category)
        json_object_set_new(o, "categories", json_pack("[s]", r->category));
}

static json_t *legacy_resource(const struct res_def *r)
{
    json_t *o = json_pack("{s:s, s:s, s:b}", "name", r->name, "singularName", r->singular,
                          "namespaced", r->namespaced);
    if (r->group) {
        json_object_set_new(o, "group", json_string(r->group));
        json_object_set_new(o, "version", json_string(r->version));
    }
    json_object_set_new(o, "kind", json_string(r->kind));
    json_object_set_new(o, "verbs", wisp__kube_words(r->verbs));
    add_names(o, r);
    if (r->svh)
        json_object_set_new(o, "storageVersionHash", json_string(r->svh));
    return o;
}

json_t *wisp_kube_core_resources(void)
{
    json_t *list = json_array();
    for (size_t i = 0; i < N_RESOURCES; i++)
        json_array_append_new(list, legacy_resource(&resources[i]));
    return json_pack("{s:s, s:s, s:o}", "kind", "APIResourceList", "groupVersion", "v1",
                     "resources", list);
}

/* A responseKind. The core group's own kinds carry an empty group and
 * version, as kube-apiserver writes them; client-go fills in the group
 * version it found them under. */
static json_t *response_kind(const struct res_def *r)
{
    return json_pack("{s:s, s:s, s:s}", "group", r->group ? r->group : "", "version",
                     r->version ? r->version : "", "kind", r->kind);
}

/* The v2 entry of top-level resource r, with the subresources that follow
 * it in the table nested under it. */
static json_t *v2_resource(const struct res_def *r)
{
    size_t plen = strlen(r->name);
    json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:o}", "resource", r->name, "responseKind",
                          response_kind(r), "scope", r->namespaced ? "Namespaced" : "Cluster",
                          "singularResource", r->singular, "verbs", wisp__kube_words(r->verbs));
    add_names(o, r);
    json_t *subs = json_array();
    for (const struct res_def *s = r + 1; s < resources + N_RESOURCES; s++) {
        if (strncmp(s->name, r->name, plen) != 0 || s->name[plen] != '/')
            break;
        json_t *verbs = wisp__kube_words(s->verbs);
        json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource",
                                              s->name + plen + 1, "responseKind",
                                              response_kind(s), "verbs", verbs));
    }
    if (json_array_size(subs))
        json_object_set_new(o, "subresources", subs);
    else
        json_decref(subs);
    return o;
}

json_t *wisp_kube_discovery_v2(int apis)
{
    json_t *items = json_array();
    if (!apis) {
        json_t *list = json_array();
        for (size_t i = 0; i < N_RESOURCES; i++) {
            if (!strchr(resources[i].name, '/'))
                json_array_append_new(list, v2_resource(&resources[i]));
        }
        json_array_append_new(
            items, json_pack("{s:{s:n}, s:[{s:s, s:o, s:s}]}", "metadata", "creationTimestamp",
                             "versions", "version", "v1", "resources", list, "freshness",
                             "Current"));
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     "apidiscovery.k8s.io/v2", "metadata", "items", items);
}
