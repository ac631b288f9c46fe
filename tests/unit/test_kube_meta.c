/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes static surfaces (lib/kube/discovery.c, openapi.c,
 * table.c): discovery shapes and verbs, the Accept test for aggregated
 * discovery, the OpenAPI document kubectl apply and explain read, and the
 * Table cells kube-apiserver prints (READY/STATUS derivation, AGE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>
#include "wisp/kube_meta.h"

#define NOW 1800000000 /* 2027-01-15T08:00:00Z */

/* ---- helpers --------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad fixture: %s", e.text);
    return j;
}

static const char *sget(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

/* The element of array a whose member key is value. */
static json_t *find(const json_t *a, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        const char *s = json_string_value(json_object_get(e, key));
        if (s && !strcmp(s, value))
            return e;
    }
    fail_msg("no %s=%s", key, value);
    return NULL;
}

/* Array of strings joined by spaces, into buf. */
static const char *joined(const json_t *a, char *buf, size_t len)
{
    size_t i, used = 0;
    json_t *e;
    buf[0] = '\0';
    json_array_foreach(a, i, e)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " " : "",
                                 json_string_value(e));
    return buf;
}

/* An RFC 3339 time `ago` seconds before NOW. */
static const char *ago(int64_t seconds)
{
    static char buf[8][32];
    static int n;
    char *b = buf[n++ % 8];
    time_t t = (time_t)(NOW - seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

/* The cells of a one-object pod table; caller decrefs the table. */
static json_t *pod_table(json_t *pod, json_t **cells)
{
    json_t *items = json_pack("[o]", pod);
    json_t *t = wisp_kube_table("pods", items, NOW, "7", WISP_KUBE_INCLUDE_METADATA);
    json_decref(items);
    assert_non_null(t);
    *cells = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells");
    assert_int_equal(json_array_size(*cells), 9);
    return t;
}

static const char *cell(const json_t *cells, size_t i)
{
    return json_string_value(json_array_get(cells, i));
}

/* A pod created 10 minutes before NOW with one container per status given. */
static json_t *pod_with(const char *phase, const char *statuses)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
             "\"namespace\":\"ns\",\"resourceVersion\":\"9\",\"creationTimestamp\":\"%s\"},"
             "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]},"
             "\"status\":{\"phase\":\"%s\",\"containerStatuses\":[%s]}}",
             ago(600), phase, statuses);
    return parse(text);
}

/* ---- discovery ------------------------------------------------------------- */

static void version_picks_kubectl_132(void **state)
{
    (void)state;
    json_t *v = wisp_kube_version();
    assert_string_equal(sget(v, "major"), "1");
    assert_string_equal(sget(v, "minor"), "32");
    assert_true(!strncmp(sget(v, "gitVersion"), "v1.32.", 6));
    const char *keys[] = {"gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler",
                          "platform"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        sget(v, keys[i]);
    json_decref(v);
}

static void legacy_discovery(void **state)
{
    (void)state;
    json_t *v = wisp_kube_api_versions("127.0.0.1:16443");
    assert_string_equal(sget(v, "kind"), "APIVersions");
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "versions"), 0)),
                        "v1");
    json_t *cidr = json_array_get(json_object_get(v, "serverAddressByClientCIDRs"), 0);
    assert_string_equal(sget(cidr, "clientCIDR"), "0.0.0.0/0");
    assert_string_equal(sget(cidr, "serverAddress"), "127.0.0.1:16443");
    json_decref(v);
    v = wisp_kube_api_versions(NULL);
    assert_int_equal(json_array_size(json_object_get(v, "serverAddressByClientCIDRs")), 0);
    json_decref(v);

    json_t *g = wisp_kube_api_groups();
    assert_string_equal(sget(g, "kind"), "APIGroupList");
    assert_string_equal(sget(g, "apiVersion"), "v1");
    assert_true(json_is_array(json_object_get(g, "groups")));
    assert_int_equal(json_array_size(json_object_get(g, "groups")), 0);
    json_decref(g);
}

static void core_resource_list(void **state)
{
    (void)state;
    char buf[256];
    json_t *l = wisp_kube_core_resources();
    assert_string_equal(sget(l, "kind"), "APIResourceList");
    assert_string_equal(sget(l, "groupVersion"), "v1");
    json_t *rs = json_object_get(l, "resources");
    assert_int_equal(json_array_size(rs), 7);
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r) {
        sget(r, "name");
        sget(r, "singularName");
        sget(r, "kind");
        assert_true(json_is_boolean(json_object_get(r, "namespaced")));
        assert_true(json_array_size(json_object_get(r, "verbs")) > 0);
    }
    static const struct {
        const char *name, *singular, *kind, *verbs, *short_name;
        int namespaced;
    } want[] = {
        {"namespaces", "namespace", "Namespace", "create delete get list patch update watch",
         "ns", 0},
        {"serviceaccounts", "serviceaccount", "ServiceAccount",
         "create delete get list patch update watch", "sa", 1},
        {"pods", "pod", "Pod", "create delete get list patch update watch", "po", 1},
        {"nodes", "node", "Node", "get list patch watch", "no", 0},
    };
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        r = find(rs, "name", want[i].name);
        assert_string_equal(sget(r, "singularName"), want[i].singular);
        assert_string_equal(sget(r, "kind"), want[i].kind);
        assert_int_equal(json_is_true(json_object_get(r, "namespaced")), want[i].namespaced);
        assert_string_equal(joined(json_object_get(r, "verbs"), buf, sizeof(buf)),
                            want[i].verbs);
        assert_string_equal(joined(json_object_get(r, "shortNames"), buf, sizeof(buf)),
                            want[i].short_name);
        sget(r, "storageVersionHash");
    }
    assert_string_equal(joined(json_object_get(find(rs, "name", "pods"), "categories"), buf,
                               sizeof(buf)),
                        "all");
    r = find(rs, "name", "pods/exec");
    assert_string_equal(sget(r, "kind"), "PodExecOptions");
    assert_string_equal(sget(r, "singularName"), "");
    assert_string_equal(joined(json_object_get(r, "verbs"), buf, sizeof(buf)), "create get");
    r = find(rs, "name", "pods/status");
    assert_string_equal(sget(r, "kind"), "Pod");
    assert_string_equal(joined(json_object_get(r, "verbs"), buf, sizeof(buf)),
                        "get patch update");
    r = find(rs, "name", "serviceaccounts/token");
    assert_string_equal(sget(r, "group"), "authentication.k8s.io");
    assert_string_equal(sget(r, "version"), "v1");
    assert_string_equal(sget(r, "kind"), "TokenRequest");
    assert_string_equal(joined(json_object_get(r, "verbs"), buf, sizeof(buf)), "create");
    json_decref(l);
}

static void aggregated_discovery(void **state)
{
    (void)state;
    char buf[256];
    json_t *d = wisp_kube_discovery_v2(0);
    assert_string_equal(sget(d, "kind"), "APIGroupDiscoveryList");
    assert_string_equal(sget(d, "apiVersion"), "apidiscovery.k8s.io/v2");
    json_t *items = json_object_get(d, "items");
    assert_int_equal(json_array_size(items), 1);
    json_t *ver = json_array_get(json_object_get(json_array_get(items, 0), "versions"), 0);
    assert_string_equal(sget(ver, "version"), "v1");
    assert_string_equal(sget(ver, "freshness"), "Current");
    json_t *rs = json_object_get(ver, "resources");
    assert_int_equal(json_array_size(rs), 4);
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r) {
        /* client-go drops a resource without responseKind. */
        json_t *rk = json_object_get(r, "responseKind");
        sget(rk, "group");
        sget(rk, "version");
        sget(rk, "kind");
        sget(r, "singularResource");
        assert_non_null(strchr("NC", sget(r, "scope")[0]));
    }
    r = find(rs, "resource", "pods");
    assert_string_equal(sget(r, "scope"), "Namespaced");
    assert_string_equal(sget(json_object_get(r, "responseKind"), "kind"), "Pod");
    json_t *subs = json_object_get(r, "subresources");
    assert_int_equal(json_array_size(subs), 2);
    json_t *ex = find(subs, "subresource", "exec");
    assert_string_equal(sget(json_object_get(ex, "responseKind"), "kind"), "PodExecOptions");
    assert_string_equal(joined(json_object_get(ex, "verbs"), buf, sizeof(buf)), "create get");
    find(subs, "subresource", "status");
    r = find(rs, "resource", "namespaces");
    assert_string_equal(sget(r, "scope"), "Cluster");
    assert_null(json_object_get(r, "subresources"));
    r = find(rs, "resource", "serviceaccounts");
    json_t *tok = find(json_object_get(r, "subresources"), "subresource", "token");
    assert_string_equal(sget(json_object_get(tok, "responseKind"), "group"),
                        "authentication.k8s.io");
    assert_string_equal(sget(json_object_get(tok, "responseKind"), "kind"), "TokenRequest");
    json_decref(d);

    d = wisp_kube_discovery_v2(1);
    assert_string_equal(sget(d, "kind"), "APIGroupDiscoveryList");
    assert_int_equal(json_array_size(json_object_get(d, "items")), 0);
    json_decref(d);
}

static void accept_for_aggregated_discovery(void **state)
{
    (void)state;
    /* kubectl 1.30-1.33 */
    assert_true(wisp_kube_wants_discovery_v2(
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;"
        "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
    /* kubectl 1.27-1.29 ask for v2beta1 only. */
    assert_false(wisp_kube_wants_discovery_v2(
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json"));
    assert_true(wisp_kube_wants_discovery_v2(
        "application/json, Application/JSON ; as=APIGroupDiscoveryList ; v=v2 ; "
        "g=apidiscovery.k8s.io"));
    assert_false(wisp_kube_wants_discovery_v2("application/json, */*"));
    assert_false(wisp_kube_wants_discovery_v2(NULL));
    assert_false(wisp_kube_wants_discovery_v2(""));
    assert_false(wisp_kube_wants_discovery_v2(
        "application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"));
    assert_false(wisp_kube_wants_discovery_v2("application/json;g=apidiscovery.k8s.io;v=v2"));
    assert_false(wisp_kube_wants_discovery_v2(
        "application/json;g=apidiscovery.k8s.io;v=v22;as=APIGroupDiscoveryList"));
}

/* ---- OpenAPI ---------------------------------------------------------------- */

/* Every $ref under j names a schema in schemas. */
static void refs_resolve(const json_t *j, const json_t *schemas)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
            refs_resolve(e, schemas);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (!strcmp(k, "$ref")) {
            const char *ref = json_string_value(v);
            assert_non_null(ref);
            assert_true(!strncmp(ref, "#/components/schemas/", 21));
            if (!json_object_get(schemas, ref + 21))
                fail_msg("unresolved %s", ref);
        } else {
            refs_resolve(v, schemas);
        }
    }
}

static void openapi_for_apply_and_explain(void **state)
{
    (void)state;
    const char *h = wisp_kube_openapi_hash();
    assert_int_equal(strlen(h), 128);
    assert_int_equal(strspn(h, "0123456789ABCDEF"), 128);
    assert_ptr_equal(wisp_kube_openapi_hash(), h);

    json_t *idx = wisp_kube_openapi_index();
    const char *url = sget(json_object_get(json_object_get(idx, "paths"), "api/v1"),
                           "serverRelativeURL");
    assert_true(!strncmp(url, "/openapi/v3/api/v1?hash=", 24));
    assert_string_equal(url + 24, h);
    json_decref(idx);

    json_t *doc = wisp_kube_openapi_core();
    assert_string_equal(sget(doc, "openapi"), "3.0.0");
    json_t *paths = json_object_get(doc, "paths");
    static const struct {
        const char *path, *kind;
    } want[] = {
        {"/api/v1/namespaces/{namespace}/pods/{name}", "Pod"},
        {"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", "ServiceAccount"},
        {"/api/v1/namespaces/{name}", "Namespace"},
        {"/api/v1/nodes/{name}", "Node"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *op = json_object_get(json_object_get(paths, want[i].path), "patch");
        assert_non_null(op);
        json_t *gvk = json_object_get(op, "x-kubernetes-group-version-kind");
        assert_string_equal(sget(gvk, "group"), "");
        assert_string_equal(sget(gvk, "version"), "v1");
        assert_string_equal(sget(gvk, "kind"), want[i].kind);
        json_t *fv = find(json_object_get(op, "parameters"), "name", "fieldValidation");
        assert_string_equal(sget(fv, "in"), "query");
        /* No requestBody: kubectl then builds strategic patches from its
         * compiled-in types instead of this partial schema. */
        assert_null(json_object_get(op, "requestBody"));
    }
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    refs_resolve(doc, schemas);
    const char *kinds[] = {"Pod", "ServiceAccount", "Namespace", "Node"};
    for (size_t i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof(name), "io.k8s.api.core.v1.%s", kinds[i]);
        json_t *gvk = json_array_get(
            json_object_get(json_object_get(schemas, name), "x-kubernetes-group-version-kind"), 0);
        assert_string_equal(sget(gvk, "kind"), kinds[i]);
        assert_string_equal(sget(gvk, "version"), "v1");
    }
    static const struct {
        const char *schema, *prop, *key, *strategy;
    } merge[] = {
        {"io.k8s.api.core.v1.PodSpec", "containers", "name", "merge"},
        {"io.k8s.api.core.v1.PodSpec", "volumes", "name", "merge,retainKeys"},
        {"io.k8s.api.core.v1.Container", "env", "name", "merge"},
        {"io.k8s.api.core.v1.Container", "ports", "containerPort", "merge"},
        {"io.k8s.api.core.v1.Container", "volumeMounts", "mountPath", "merge"},
    };
    for (size_t i = 0; i < sizeof(merge) / sizeof(merge[0]); i++) {
        json_t *p = json_object_get(
            json_object_get(json_object_get(schemas, merge[i].schema), "properties"),
            merge[i].prop);
        assert_string_equal(sget(p, "x-kubernetes-patch-merge-key"), merge[i].key);
        assert_string_equal(sget(p, "x-kubernetes-patch-strategy"), merge[i].strategy);
    }
    json_t *spec = json_object_get(schemas, "io.k8s.api.core.v1.PodSpec");
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "required"), 0)),
                        "containers");
    json_decref(doc);
}

/* ---- AGE and time ------------------------------------------------------------- */

static void human_duration_boundaries(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        const char *want;
    } cases[] = {
        {-2, "<invalid>"},       {-1, "0s"},          {0, "0s"},
        {5, "5s"},               {119, "119s"},       {120, "2m"},
        {192, "3m12s"},          {599, "9m59s"},      {600, "10m"},
        {659, "10m"},            {10799, "179m"},     {10800, "3h"},
        {10860, "3h1m"},         {28799, "7h59m"},    {28800, "8h"},
        {172799, "47h"},         {172800, "2d"},      {176400, "2d1h"},
        {691199, "7d23h"},       {691200, "8d"},      {63071999, "729d"},
        {63072000, "2y"},        {63158400, "2y1d"},  {252201600, "7y364d"},
        {252288000, "8y"},       {3153600000, "100y"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wisp_kube_human_duration(cases[i].s, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
    wisp_kube_human_duration(192, buf, 3);
    assert_string_equal(buf, "3m");
}

static void time_parse(void **state)
{
    (void)state;
    int64_t t = 7;
    assert_int_equal(wisp_kube_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(wisp_kube_time_parse("2027-01-15T08:00:00Z", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(wisp_kube_time_parse("2027-01-15T08:00:00.123456Z", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(wisp_kube_time_parse("2027-01-15T17:30:00+09:30", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(wisp_kube_time_parse("2027-01-15T03:00:00-05:00", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(wisp_kube_time_parse("2024-02-29T00:00:00Z", &t), 0);
    assert_int_equal(t, 1709164800);
    assert_int_equal(wisp_kube_time_parse("2000-02-29T00:00:00Z", &t), 0);
    assert_int_equal(t, 951782400);
    const char *bad[] = {NULL,
                         "",
                         "garbage",
                         "2027-13-15T08:00:00Z",
                         "2027-01-32T08:00:00Z",
                         "2027-01-15 08:00:00Z",
                         "2027-01-15T24:00:00Z",
                         "2027-01-15T08:00:00",
                         "2027-01-15T08:00:00Zjunk",
                         "2027-01-15T08:00:00.Z",
                         "2027-01-15T08:00:00+0900",
                         "2027-01-15T08:00:00+09",
                         "2023-02-29T00:00:00Z",
                         "1900-02-29T00:00:00Z",
                         "2027-1-15T08:00:00Z"};
    t = 7;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wisp_kube_time_parse(bad[i], &t), -1);
    assert_int_equal(t, 7);
}

/* ---- Table -------------------------------------------------------------------- */

static void pod_columns_and_object(void **state)
{
    (void)state;
    json_t *cells;
    json_t *pod = pod_with("Running", "{\"name\":\"a\",\"ready\":true,\"restartCount\":0,"
                                      "\"state\":{\"running\":{}}}");
    json_object_set_new(json_object_get(pod, "status"), "podIP", json_string("10.0.0.5"));
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("n1"));
    json_t *t = pod_table(pod, &cells);
    assert_string_equal(sget(t, "kind"), "Table");
    assert_string_equal(sget(t, "apiVersion"), "meta.k8s.io/v1");
    assert_string_equal(sget(json_object_get(t, "metadata"), "resourceVersion"), "7");
    json_t *cols = json_object_get(t, "columnDefinitions");
    assert_int_equal(json_array_size(cols), 9);
    const char *names[] = {"Name", "Ready",          "Status",        "Restarts",
                           "Age",  "IP",             "Node",          "Nominated Node",
                           "Readiness Gates"};
    for (size_t i = 0; i < 9; i++) {
        json_t *c = json_array_get(cols, i);
        assert_string_equal(sget(c, "name"), names[i]);
        assert_string_equal(sget(c, "type"), "string");
        sget(c, "format");
        sget(c, "description");
        assert_int_equal(json_integer_value(json_object_get(c, "priority")), i >= 5);
    }
    assert_string_equal(sget(json_array_get(cols, 0), "format"), "name");
    const char *want[] = {"p", "1/1", "Running", "0", "10m", "10.0.0.5", "n1", "<none>", "<none>"};
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(cell(cells, i), want[i]);
    json_t *row = json_array_get(json_object_get(t, "rows"), 0);
    assert_null(json_object_get(row, "conditions"));
    json_t *obj = json_object_get(row, "object");
    assert_string_equal(sget(obj, "kind"), "PartialObjectMetadata");
    assert_string_equal(sget(obj, "apiVersion"), "meta.k8s.io/v1");
    assert_string_equal(sget(json_object_get(obj, "metadata"), "name"), "p");
    assert_null(json_object_get(obj, "spec"));
    json_decref(t);
}

static void pod_status_derivation(void **state)
{
    (void)state;
    static const struct {
        const char *phase, *statuses, *ready, *status, *restarts;
    } cases[] = {
        /* Pending, nothing reported yet */
        {"Pending", "", "0/1", "Pending", "0"},
        /* the kubelet pulling the image */
        {"Pending",
         "{\"name\":\"a\",\"ready\":false,\"restartCount\":0,"
         "\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}",
         "0/1", "ContainerCreating", "0"},
        /* running but not ready yet */
        {"Running",
         "{\"name\":\"a\",\"ready\":false,\"restartCount\":0,\"state\":{\"running\":{}}}", "0/1",
         "Running", "0"},
        {"Succeeded",
         "{\"name\":\"a\",\"ready\":false,\"restartCount\":0,"
         "\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}}",
         "0/1", "Completed", "0"},
        {"Failed",
         "{\"name\":\"a\",\"ready\":false,\"restartCount\":0,"
         "\"state\":{\"terminated\":{\"exitCode\":1,\"reason\":\"Error\"}}}",
         "0/1", "Error", "0"},
        /* terminated without a reason */
        {"Failed",
         "{\"name\":\"a\",\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":3}}}", "0/1",
         "ExitCode:3", "0"},
        {"Failed",
         "{\"name\":\"a\",\"restartCount\":0,"
         "\"state\":{\"terminated\":{\"exitCode\":137,\"signal\":9}}}",
         "0/1", "Signal:9", "0"},
        /* restarted: the last termination's age is shown */
        {"Running",
         "{\"name\":\"a\",\"ready\":true,\"restartCount\":2,\"state\":{\"running\":{}},"
         "\"lastTerminationState\":{\"terminated\":{\"exitCode\":1,"
         "\"finishedAt\":\"2027-01-15T07:55:00Z\"}}}",
         "1/1", "Running", "2 (5m ago)"},
        /* restarts without a known time */
        {"Running",
         "{\"name\":\"a\",\"ready\":true,\"restartCount\":4,\"state\":{\"running\":{}}}", "1/1",
         "Running", "4"},
        {"Running",
         "{\"name\":\"a\",\"ready\":false,\"restartCount\":5,"
         "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}",
         "0/1", "CrashLoopBackOff", "5"},
        /* a field of the wrong type reads as absent */
        {"Running", "{\"name\":\"a\",\"ready\":\"yes\",\"restartCount\":\"x\",\"state\":[]}",
         "0/1", "Running", "0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *cells;
        json_t *t = pod_table(pod_with(cases[i].phase, cases[i].statuses), &cells);
        assert_string_equal(cell(cells, 1), cases[i].ready);
        assert_string_equal(cell(cells, 2), cases[i].status);
        assert_string_equal(cell(cells, 3), cases[i].restarts);
        /* no IP, no node yet */
        assert_string_equal(cell(cells, 5), "<none>");
        assert_string_equal(cell(cells, 6), "<none>");
        json_decref(t);
    }
}

static void pod_finished_and_terminating(void **state)
{
    (void)state;
    json_t *cells;
    json_t *t = pod_table(pod_with("Succeeded", ""), &cells);
    json_t *cond = json_array_get(
        json_object_get(json_array_get(json_object_get(t, "rows"), 0), "conditions"), 0);
    assert_string_equal(sget(cond, "type"), "Completed");
    assert_string_equal(sget(cond, "status"), "True");
    assert_string_equal(sget(cond, "reason"), "Succeeded");
    assert_string_equal(sget(cond, "message"), "The pod has completed successfully.");
    json_decref(t);

    t = pod_table(pod_with("Failed", ""), &cells);
    cond = json_array_get(
        json_object_get(json_array_get(json_object_get(t, "rows"), 0), "conditions"), 0);
    assert_string_equal(sget(cond, "reason"), "Failed");
    assert_string_equal(sget(cond, "message"), "The pod failed.");
    json_decref(t);

    /* deletionTimestamp: Terminating, unless the pod already finished */
    json_t *pod = pod_with("Running", "{\"name\":\"a\",\"ready\":true,\"restartCount\":0,"
                                      "\"state\":{\"running\":{}}}");
    json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
                        json_string(ago(0)));
    t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 1), "1/1");
    assert_string_equal(cell(cells, 2), "Terminating");
    json_decref(t);
    pod = pod_with("Failed", "{\"name\":\"a\",\"restartCount\":0,"
                             "\"state\":{\"terminated\":{\"exitCode\":1,\"reason\":\"Error\"}}}");
    json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
                        json_string(ago(0)));
    t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 2), "Error");
    json_decref(t);
    pod = pod_with("Running", "");
    json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
                        json_string(ago(0)));
    json_object_set_new(json_object_get(pod, "status"), "reason", json_string("NodeLost"));
    t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 2), "Unknown");
    json_decref(t);
}

static void pod_multi_and_init_containers(void **state)
{
    (void)state;
    json_t *cells;
    /* Two containers, one done and one running: READY counts running ones,
     * and Completed turns back into Running (Ready condition) or NotReady. */
    json_t *pod = pod_with(
        "Running", "{\"name\":\"a\",\"ready\":true,\"restartCount\":1,\"state\":{\"running\":{}}},"
                   "{\"name\":\"b\",\"ready\":false,\"restartCount\":2,"
                   "\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}}");
    json_array_append_new(json_object_get(json_object_get(pod, "spec"), "containers"),
                          json_pack("{s:s, s:s}", "name", "b", "image", "i"));
    json_t *t = pod_table(json_incref(pod), &cells);
    assert_string_equal(cell(cells, 1), "1/2");
    assert_string_equal(cell(cells, 2), "NotReady");
    assert_string_equal(cell(cells, 3), "3");
    json_decref(t);
    json_object_set_new(json_object_get(pod, "status"), "conditions",
                        json_pack("[{s:s, s:s}]", "type", "Ready", "status", "True"));
    t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 2), "Running");
    json_decref(t);

    /* An init container still running holds the pod at Init:0/1. */
    pod = pod_with("Pending", "{\"name\":\"a\",\"ready\":false,\"restartCount\":0,"
                              "\"state\":{\"waiting\":{\"reason\":\"PodInitializing\"}}}");
    json_object_set_new(json_object_get(pod, "spec"), "initContainers",
                        json_pack("[{s:s, s:s}]", "name", "init", "image", "i"));
    json_object_set_new(json_object_get(pod, "status"), "initContainerStatuses",
                        json_pack("[{s:s, s:b, s:i, s:{s:{}}}]", "name", "init", "ready", 0,
                                  "restartCount", 0, "state", "running"));
    t = pod_table(json_incref(pod), &cells);
    assert_string_equal(cell(cells, 1), "0/1");
    assert_string_equal(cell(cells, 2), "Init:0/1");
    json_decref(t);
    /* ... an init container that failed shows its reason ... */
    json_object_set_new(json_array_get(json_object_get(json_object_get(pod, "status"),
                                                   "initContainerStatuses"),
                                   0),
                    "state", json_pack("{s:{s:i, s:s}}", "terminated", "exitCode", 1, "reason",
                                       "Error"));
    t = pod_table(json_incref(pod), &cells);
    assert_string_equal(cell(cells, 2), "Init:Error");
    json_decref(t);
    /* ... and a sidecar (restartPolicy Always) counts in READY once started. */
    json_object_set_new(json_array_get(json_object_get(json_object_get(pod, "spec"),
                                                       "initContainers"),
                                       0),
                        "restartPolicy", json_string("Always"));
    json_t *ics = json_array_get(json_object_get(json_object_get(pod, "status"),
                                                 "initContainerStatuses"),
                                 0);
    json_object_set_new(ics, "state", json_pack("{s:{}}", "running"));
    json_object_set_new(ics, "started", json_true());
    json_object_set_new(ics, "ready", json_true());
    t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 1), "1/2");
    assert_string_equal(cell(cells, 2), "PodInitializing");
    json_decref(t);
}

static void pod_wide_cells(void **state)
{
    (void)state;
    json_t *cells;
    json_t *pod = pod_with("Running", "");
    json_t *st = json_object_get(pod, "status");
    json_object_set_new(st, "podIP", json_string("10.0.0.9"));
    json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", "10.0.0.7"));
    json_object_set_new(st, "nominatedNodeName", json_string("n2"));
    json_object_set_new(st, "conditions",
                        json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "g1", "status", "True",
                                  "type", "g2", "status", "False"));
    json_object_set_new(json_object_get(pod, "spec"), "readinessGates",
                        json_pack("[{s:s}, {s:s}, {s:s}]", "conditionType", "g1",
                                  "conditionType", "g2", "conditionType", "g3"));
    json_t *t = pod_table(pod, &cells);
    assert_string_equal(cell(cells, 5), "10.0.0.7");
    assert_string_equal(cell(cells, 7), "n2");
    assert_string_equal(cell(cells, 8), "1/3");
    json_decref(t);
}

static void other_kinds(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof(text),
             "[{\"metadata\":{\"name\":\"my-ns\",\"creationTimestamp\":\"%s\"},"
             "\"status\":{\"phase\":\"Active\"}},{\"metadata\":{\"name\":\"old\"}}]",
             ago(3 * 86400));
    json_t *items = parse(text);
    json_t *t = wisp_kube_table("namespaces", items, NOW, NULL, WISP_KUBE_INCLUDE_METADATA);
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 3);
    assert_null(json_object_get(json_object_get(t, "metadata"), "resourceVersion"));
    json_t *rows = json_object_get(t, "rows");
    json_t *c = json_object_get(json_array_get(rows, 0), "cells");
    assert_string_equal(cell(c, 0), "my-ns");
    assert_string_equal(cell(c, 1), "Active");
    assert_string_equal(cell(c, 2), "3d");
    c = json_object_get(json_array_get(rows, 1), "cells");
    assert_string_equal(cell(c, 1), "");
    assert_string_equal(cell(c, 2), "<unknown>");
    json_decref(t);
    json_decref(items);

    snprintf(text, sizeof(text),
             "[{\"metadata\":{\"name\":\"my-ksa\",\"creationTimestamp\":\"%s\"},"
             "\"secrets\":[{\"name\":\"s1\"},{\"name\":\"s2\"}]},"
             "{\"metadata\":{\"name\":\"default\",\"creationTimestamp\":\"%s\"}}]",
             ago(65), ago(64));
    items = parse(text);
    t = wisp_kube_table("serviceaccounts", items, NOW, "3", WISP_KUBE_INCLUDE_METADATA);
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 3);
    rows = json_object_get(t, "rows");
    c = json_object_get(json_array_get(rows, 0), "cells");
    assert_string_equal(cell(c, 0), "my-ksa");
    assert_int_equal(json_integer_value(json_array_get(c, 1)), 2);
    assert_string_equal(cell(c, 2), "65s");
    c = json_object_get(json_array_get(rows, 1), "cells");
    assert_true(json_is_integer(json_array_get(c, 1)));
    assert_int_equal(json_integer_value(json_array_get(c, 1)), 0);
    json_decref(t);
    json_decref(items);

    /* kube-apiserver's default table for anything without a printer */
    items = parse("[{\"metadata\":{\"name\":\"x\","
                  "\"creationTimestamp\":\"2027-01-15T08:00:00Z\"}}]");
    t = wisp_kube_table("tokenreviews", items, NOW, "1", WISP_KUBE_INCLUDE_METADATA);
    json_t *cols = json_object_get(t, "columnDefinitions");
    assert_int_equal(json_array_size(cols), 2);
    assert_string_equal(sget(json_array_get(cols, 1), "name"), "Created At");
    assert_string_equal(sget(json_array_get(cols, 1), "type"), "date");
    c = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells");
    assert_string_equal(cell(c, 1), "2027-01-15T08:00:00Z");
    json_decref(t);
    json_decref(items);

    items = json_array();
    t = wisp_kube_table("pods", items, NOW, "1", WISP_KUBE_INCLUDE_METADATA);
    assert_true(json_is_array(json_object_get(t, "rows")));
    assert_int_equal(json_array_size(json_object_get(t, "rows")), 0);
    json_decref(t);
    json_decref(items);
}

static void node_cells(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof(text),
             "[{\"metadata\":{\"name\":\"n1\",\"creationTimestamp\":\"%s\",\"labels\":{"
             "\"node-role.kubernetes.io/worker\":\"\",\"kubernetes.io/role\":\"edge\","
             "\"node-role.kubernetes.io/control-plane\":\"\",\"node-role.kubernetes.io/\":\"\","
             "\"kubernetes.io/hostname\":\"n1\"}},"
             "\"spec\":{\"unschedulable\":true},"
             "\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
             "{\"type\":\"Ready\",\"status\":\"True\"}],"
             "\"addresses\":[{\"type\":\"Hostname\",\"address\":\"n1\"},"
             "{\"type\":\"InternalIP\",\"address\":\"10.128.0.2\"},"
             "{\"type\":\"ExternalIP\",\"address\":\"34.1.2.3\"}],"
             "\"nodeInfo\":{\"kubeletVersion\":\"v1.32.4-gke.1415000\",\"osImage\":\"COS\","
             "\"kernelVersion\":\"6.1\",\"containerRuntimeVersion\":\"containerd://1.7\"}}},"
             "{\"metadata\":{\"name\":\"n2\",\"creationTimestamp\":\"%s\"},"
             "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}]}},"
             "{\"metadata\":{\"name\":\"n3\"}}]",
             ago(5 * 3600), ago(90));
    json_t *items = parse(text);
    json_t *t = wisp_kube_table("nodes", items, NOW, "1", WISP_KUBE_INCLUDE_METADATA);
    json_t *cols = json_object_get(t, "columnDefinitions");
    assert_int_equal(json_array_size(cols), 10);
    const char *names[] = {"Name",        "Status",      "Roles",    "Age",
                           "Version",     "Internal-IP", "External-IP", "OS-Image",
                           "Kernel-Version", "Container-Runtime"};
    for (size_t i = 0; i < 10; i++) {
        assert_string_equal(sget(json_array_get(cols, i), "name"), names[i]);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(cols, i), "priority")),
                         i >= 5);
    }
    json_t *rows = json_object_get(t, "rows");
    const char *want[3][10] = {
        {"n1", "Ready,SchedulingDisabled", "control-plane,edge,worker", "5h",
         "v1.32.4-gke.1415000", "10.128.0.2", "34.1.2.3", "COS", "6.1", "containerd://1.7"},
        {"n2", "NotReady", "<none>", "90s", "", "<none>", "<none>", "<unknown>", "<unknown>",
         "<unknown>"},
        {"n3", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>",
         "<unknown>", "<unknown>"},
    };
    for (size_t r = 0; r < 3; r++) {
        json_t *c = json_object_get(json_array_get(rows, r), "cells");
        assert_int_equal(json_array_size(c), 10);
        for (size_t i = 0; i < 10; i++)
            assert_string_equal(cell(c, i), want[r][i]);
    }
    json_decref(t);
    json_decref(items);
}

static void include_object_and_events(void **state)
{
    (void)state;
    assert_int_equal(wisp_kube_include_parse(NULL), WISP_KUBE_INCLUDE_METADATA);
    assert_int_equal(wisp_kube_include_parse(""), WISP_KUBE_INCLUDE_METADATA);
    assert_int_equal(wisp_kube_include_parse("Metadata"), WISP_KUBE_INCLUDE_METADATA);
    assert_int_equal(wisp_kube_include_parse("Object"), WISP_KUBE_INCLUDE_OBJECT);
    assert_int_equal(wisp_kube_include_parse("None"), WISP_KUBE_INCLUDE_NONE);
    assert_int_equal(wisp_kube_include_parse("object"), -1);
    assert_int_equal(wisp_kube_include_parse("All"), -1);

    json_t *sa = parse("{\"metadata\":{\"name\":\"k\",\"namespace\":\"ns\",\"resourceVersion\":"
                       "\"42\",\"creationTimestamp\":\"2027-01-15T07:59:00Z\"}}");
    json_t *items = json_pack("[O]", sa);
    json_t *t = wisp_kube_table("serviceaccounts", items, NOW, "42", WISP_KUBE_INCLUDE_OBJECT);
    json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_string_equal(sget(obj, "kind"), "ServiceAccount");
    assert_string_equal(sget(obj, "apiVersion"), "v1");
    assert_string_equal(sget(json_object_get(obj, "metadata"), "namespace"), "ns");
    json_decref(t);
    t = wisp_kube_table("serviceaccounts", items, NOW, "42", WISP_KUBE_INCLUDE_NONE);
    json_t *row = json_array_get(json_object_get(t, "rows"), 0);
    assert_true(json_is_null(json_object_get(row, "object")));
    assert_int_equal(json_array_size(json_object_get(row, "cells")), 3);
    json_decref(t);
    json_decref(items);
    /* the input is borrowed and left alone */
    assert_null(json_object_get(sa, "kind"));

    t = wisp_kube_table_event("serviceaccounts", sa, NOW, WISP_KUBE_INCLUDE_METADATA, 1);
    assert_string_equal(sget(json_object_get(t, "metadata"), "resourceVersion"), "42");
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 3);
    assert_int_equal(json_array_size(json_object_get(t, "rows")), 1);
    row = json_array_get(json_object_get(t, "rows"), 0);
    assert_string_equal(cell(json_object_get(row, "cells"), 2), "60s");
    json_decref(t);
    t = wisp_kube_table_event("serviceaccounts", sa, NOW, WISP_KUBE_INCLUDE_METADATA, 0);
    assert_true(json_is_null(json_object_get(t, "columnDefinitions")));
    assert_int_equal(json_array_size(json_object_get(t, "rows")), 1);
    json_decref(t);
    json_decref(sa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_picks_kubectl_132),
        cmocka_unit_test(legacy_discovery),
        cmocka_unit_test(core_resource_list),
        cmocka_unit_test(aggregated_discovery),
        cmocka_unit_test(accept_for_aggregated_discovery),
        cmocka_unit_test(openapi_for_apply_and_explain),
        cmocka_unit_test(human_duration_boundaries),
        cmocka_unit_test(time_parse),
        cmocka_unit_test(pod_columns_and_object),
        cmocka_unit_test(pod_status_derivation),
        cmocka_unit_test(pod_finished_and_terminating),
        cmocka_unit_test(pod_multi_and_init_containers),
        cmocka_unit_test(pod_wide_cells),
        cmocka_unit_test(other_kinds),
        cmocka_unit_test(node_cells),
        cmocka_unit_test(include_object_and_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
