/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes protobuf bodies to JSON: the exact bytes kubectl 1.32 sent for
 * `create namespace` and `create serviceaccount`, a pod packed here with
 * protoc-c's generated code, and malformed bodies (every truncation, bad
 * magic, other kinds, wrong wire types, fields wisp does not decode, the
 * limits), which must fail with a reason and leave nothing allocated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "k8s.pb-c.h"
#include "wisp/kube_pb.h"

/* POST /api/v1/namespaces, kubectl-create-ns.md. */
static const uint8_t ns_body[] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
    0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1d, 0x0a, 0x15, 0x0a, 0x05, 0x6d,
    0x79, 0x2d, 0x6e, 0x73, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00,
    0x38, 0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00};

/* POST /api/v1/namespaces/my-ns/serviceaccounts, kubectl-create-sa.md. */
static const uint8_t sa_body[] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x14, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x0e, 0x53, 0x65, 0x72, 0x76,
    0x69, 0x63, 0x65, 0x41, 0x63, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x12, 0x1d, 0x0a, 0x1b, 0x0a, 0x06,
    0x6d, 0x79, 0x2d, 0x6b, 0x73, 0x61, 0x12, 0x00, 0x1a, 0x05, 0x6d, 0x79, 0x2d, 0x6e, 0x73, 0x22,
    0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x1a, 0x00, 0x22, 0x00};

/* kubectl create token app -n ns-a --audience=x --bound-object-kind=Pod
 * --bound-object-name=p1 --bound-object-uid=u-1 --duration=20m (kubectl
 * 1.32 -v=8 against wisp). */
static const uint8_t token_body[] = {
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x28, 0x0a, 0x18, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2e, 0x6b, 0x38, 0x73, 0x2e, 0x69, 0x6f, 0x2f, 0x76, 0x31,
    0x12, 0x0c, 0x54, 0x6f, 0x6b, 0x65, 0x6e, 0x52, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x12, 0x34,
    0x0a, 0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
    0x42, 0x00, 0x12, 0x1a, 0x0a, 0x01, 0x78, 0x1a, 0x12, 0x0a, 0x03, 0x50, 0x6f, 0x64, 0x12, 0x02,
    0x76, 0x31, 0x1a, 0x02, 0x70, 0x31, 0x22, 0x03, 0x75, 0x2d, 0x31, 0x20, 0xb0, 0x09, 0x1a, 0x04,
    0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00};

static json_t *js(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, &e);
    if (!v)
        fail_msg("bad JSON in a test case (%s): %s", e.text, s);
    return v;
}

/* Decodes body and checks the result equals want (JSON text). */
static void expect_json(const uint8_t *body, size_t len, const char *want)
{
    json_t *out = NULL, *w = js(want);
    char err[256] = "x";
    enum wisp_err rc = wisp_kube_pb_to_json(body, len, &out, err, sizeof(err));
    if (rc != WISP_OK)
        fail_msg("decoding failed (%d): %s", (int)rc, err);
    assert_string_equal(err, "");
    if (!json_equal(out, w)) {
        char *got = json_dumps(out, JSON_SORT_KEYS);
        fail_msg("got %s\nwant %s", got, want);
    }
    json_decref(out);
    json_decref(w);
}

/* Decodes body and checks it fails with rc and a reason containing part. */
static void expect_fail(const uint8_t *body, size_t len, enum wisp_err rc, const char *part)
{
    json_t *out = (json_t *)1;
    char err[256] = "";
    enum wisp_err got = wisp_kube_pb_to_json(body, len, &out, err, sizeof(err));
    assert_null(out);
    if (got != rc || !strstr(err, part))
        fail_msg("got %d \"%s\", want %d containing \"%s\"", (int)got, err, (int)rc, part);
}

/* "k8s\0" + Unknown{typeMeta{api, kind}, raw, "", ""}; caller frees. */
static uint8_t *envelope(const char *api, const char *kind, const uint8_t *raw, size_t rawlen,
                         size_t *len)
{
    struct Wisp__Kube__TypeMeta tm = WISP__KUBE__TYPE_META__INIT;
    struct Wisp__Kube__Unknown u = WISP__KUBE__UNKNOWN__INIT;
    tm.apiversion = (char *)api;
    tm.kind = (char *)kind;
    u.typemeta = &tm;
    u.has_raw = 1;
    u.raw.data = (uint8_t *)raw;
    u.raw.len = rawlen;
    u.contentencoding = (char *)"";
    u.contenttype = (char *)"";
    size_t n = wisp__kube__unknown__get_packed_size(&u);
    uint8_t *b = malloc(n + 4);
    assert_non_null(b);
    memcpy(b, "k8s", 4);
    assert_int_equal(wisp__kube__unknown__pack(&u, b + 4), n);
    *len = n + 4;
    return b;
}

/* ---- kubectl's bodies ----------------------------------------------------- */

static void kubectl_namespace(void **state)
{
    (void)state;
    /* Empty strings, generation 0 and the empty creationTimestamp are left
     * out; spec and status are structs, which Go's JSON always shows. */
    expect_json(ns_body, sizeof(ns_body),
                "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"my-ns\"},"
                "\"spec\":{},\"status\":{}}");
}

static void kubectl_serviceaccount(void **state)
{
    (void)state;
    expect_json(sa_body, sizeof(sa_body),
                "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                "\"metadata\":{\"name\":\"my-ksa\",\"namespace\":\"my-ns\"}}");
}

static void kubectl_token_request(void **state)
{
    (void)state;
    /* expirationSeconds is a pointer; audiences and boundObjectRef have no
     * omitempty but are only left out when not sent; status is the
     * server's. */
    expect_json(token_body, sizeof(token_body),
                "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
                "\"metadata\":{},\"spec\":{\"audiences\":[\"x\"],\"boundObjectRef\":"
                "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"name\":\"p1\",\"uid\":\"u-1\"},"
                "\"expirationSeconds\":1200},\"status\":{}}");
}

/* ---- a pod packed with the generated code ------------------------------------ */

/* A pod with labels, a node selector, a container with a command, a port,
 * env and resources, and the pointer fields set to their zero values. */
static uint8_t *pack_pod(size_t *len, int with_time)
{
    struct Wisp__Kube__ObjectMeta__LabelsEntry l1 = WISP__KUBE__OBJECT_META__LABELS_ENTRY__INIT,
                                               l2 = WISP__KUBE__OBJECT_META__LABELS_ENTRY__INIT;
    struct Wisp__Kube__ObjectMeta__LabelsEntry *labels[] = {&l1, &l2};
    struct Wisp__Kube__Time created = WISP__KUBE__TIME__INIT;
    struct Wisp__Kube__ObjectMeta meta = WISP__KUBE__OBJECT_META__INIT;
    l1.key = (char *)"app";
    l1.value = (char *)"web";
    l2.key = (char *)"tier";
    l2.value = (char *)"front";
    meta.name = (char *)"web";
    meta.generatename = (char *)"";
    meta.namespace_ = (char *)"";
    meta.has_generation = 1;
    meta.n_labels = 2;
    meta.labels = labels;
    if (with_time) {
        created.has_seconds = 1;
        created.seconds = 1795857557;
    }
    meta.creationtimestamp = &created;

    struct Wisp__Kube__Quantity cpu = WISP__KUBE__QUANTITY__INIT, mem = WISP__KUBE__QUANTITY__INIT;
    struct Wisp__Kube__ResourceRequirements__LimitsEntry lim =
        WISP__KUBE__RESOURCE_REQUIREMENTS__LIMITS_ENTRY__INIT;
    struct Wisp__Kube__ResourceRequirements__RequestsEntry req =
        WISP__KUBE__RESOURCE_REQUIREMENTS__REQUESTS_ENTRY__INIT;
    struct Wisp__Kube__ResourceRequirements__LimitsEntry *lims[] = {&lim};
    struct Wisp__Kube__ResourceRequirements__RequestsEntry *reqs[] = {&req};
    struct Wisp__Kube__ResourceRequirements res = WISP__KUBE__RESOURCE_REQUIREMENTS__INIT;
    cpu.string = (char *)"500m";
    mem.string = (char *)"64Mi";
    lim.key = (char *)"cpu";
    lim.value = &cpu;
    req.key = (char *)"memory";
    req.value = &mem;
    res.n_limits = 1;
    res.limits = lims;
    res.n_requests = 1;
    res.requests = reqs;

    struct Wisp__Kube__ContainerPort port = WISP__KUBE__CONTAINER_PORT__INIT;
    struct Wisp__Kube__ContainerPort *ports[] = {&port};
    port.has_hostport = 1;
    port.has_containerport = 1;
    port.containerport = 80;
    port.protocol = (char *)"TCP";
    struct Wisp__Kube__EnvVar env = WISP__KUBE__ENV_VAR__INIT;
    struct Wisp__Kube__EnvVar *envs[] = {&env};
    env.name = (char *)"A";
    env.value = (char *)"";
    char *command[] = {(char *)"sh", (char *)"-c", (char *)"sleep 1"};
    struct Wisp__Kube__Container c = WISP__KUBE__CONTAINER__INIT;
    struct Wisp__Kube__Container *cs[] = {&c};
    c.name = (char *)"app";
    c.image = (char *)"nginx:1.27";
    c.n_command = 3;
    c.command = command;
    c.n_ports = 1;
    c.ports = ports;
    c.n_env = 1;
    c.env = envs;
    c.resources = &res;
    c.terminationmessagepath = (char *)"";
    c.has_stdin = 1;
    c.stdin = 1;
    c.has_tty = 1;

    struct Wisp__Kube__PodSpec__NodeSelectorEntry sel =
        WISP__KUBE__POD_SPEC__NODE_SELECTOR_ENTRY__INIT;
    struct Wisp__Kube__PodSpec__NodeSelectorEntry *sels[] = {&sel};
    sel.key = (char *)"iam.gke.io/gke-metadata-server-enabled";
    sel.value = (char *)"true";
    struct Wisp__Kube__PodSpec spec = WISP__KUBE__POD_SPEC__INIT;
    spec.n_containers = 1;
    spec.containers = cs;
    spec.restartpolicy = (char *)"Never";
    spec.has_terminationgraceperiodseconds = 1;
    spec.n_nodeselector = 1;
    spec.nodeselector = sels;
    spec.serviceaccountname = (char *)"my-ksa";
    spec.has_hostnetwork = 1;
    spec.has_automountserviceaccounttoken = 1;

    struct Wisp__Kube__Pod pod = WISP__KUBE__POD__INIT;
    pod.metadata = &meta;
    pod.spec = &spec;
    size_t n = wisp__kube__pod__get_packed_size(&pod);
    uint8_t *raw = malloc(n);
    assert_non_null(raw);
    assert_int_equal(wisp__kube__pod__pack(&pod, raw), n);
    uint8_t *body = envelope("v1", "Pod", raw, n, len);
    free(raw);
    return body;
}

#define POD_SPEC_JSON                                                                              \
    "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.27\","                        \
    "\"command\":[\"sh\",\"-c\",\"sleep 1\"],\"ports\":[{\"containerPort\":80,\"protocol\":"     \
    "\"TCP\"}],\"env\":[{\"name\":\"A\"}],\"resources\":{\"limits\":{\"cpu\":\"500m\"},"         \
    "\"requests\":{\"memory\":\"64Mi\"}},\"stdin\":true}],\"restartPolicy\":\"Never\","          \
    "\"terminationGracePeriodSeconds\":0,\"nodeSelector\":{"                                       \
    "\"iam.gke.io/gke-metadata-server-enabled\":\"true\"},\"serviceAccountName\":\"my-ksa\","      \
    "\"automountServiceAccountToken\":false}"

static void pod_round_trip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *body = pack_pod(&len, 0);
    expect_json(body, len,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
                "\"labels\":{\"app\":\"web\",\"tier\":\"front\"}}," POD_SPEC_JSON "}");
    free(body);
    body = pack_pod(&len, 1);
    expect_json(body, len,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
                "\"creationTimestamp\":\"2026-11-28T09:19:17Z\","
                "\"labels\":{\"app\":\"web\",\"tier\":\"front\"}}," POD_SPEC_JSON "}");
    free(body);
}

/* A pod's status is the server's: whatever a client sends there is not
 * read, and a status field wisp does not declare is no error. */
static void pod_status_ignored(void **state)
{
    (void)state;
    /* spec{containers[{name "a"}]}, status{phase "Running", hostIP "x"} */
    static const uint8_t raw[] = {0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x61, 0x1a, 0x0c, 0x0a,
                                  0x07, 'R',  'u',  'n',  'n',  'i',  'n',  'g',  0x2a, 0x01,
                                  'x'};
    size_t len;
    uint8_t *body = envelope("v1", "Pod", raw, sizeof(raw), &len);
    expect_json(body, len,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"containers\":"
                "[{\"name\":\"a\"}]},\"status\":{}}");
    free(body);
}

/* ---- malformed and unsupported bodies ------------------------------------------ */

/* Every prefix of a body fails with a reason, except those that end where
 * an envelope field ends (ok[], 0-terminated): those are complete, shorter
 * messages. Nothing may crash or leak either way. */
static void every_truncation(const uint8_t *body, size_t len, const size_t *ok)
{
    for (size_t n = 0; n < len; n++) {
        json_t *out = NULL;
        char err[256] = "";
        enum wisp_err rc = wisp_kube_pb_to_json(body, n, &out, err, sizeof(err));
        int want_ok = 0;
        for (const size_t *p = ok; *p; p++)
            want_ok |= *p == n;
        if (want_ok) {
            if (rc != WISP_OK)
                fail_msg("prefix %zu should decode: %s", n, err);
            assert_non_null(json_object_get(out, "kind"));
            json_decref(out);
        } else {
            if (rc != WISP_EINVAL || out || !err[0])
                fail_msg("prefix %zu: rc %d, err \"%s\"", n, (int)rc, err);
        }
    }
}

static void truncated(void **state)
{
    (void)state;
    /* Ends of typeMeta, raw and contentEncoding. */
    static const size_t ns_ok[] = {21, 52, 54, 0}, sa_ok[] = {26, 57, 59, 0},
                        token_ok[] = {46, 100, 102, 0};
    every_truncation(ns_body, sizeof(ns_body), ns_ok);
    every_truncation(sa_body, sizeof(sa_body), sa_ok);
    every_truncation(token_body, sizeof(token_body), token_ok);
    size_t len;
    uint8_t *body = pack_pod(&len, 1);
    /* The pod's envelope: typeMeta (4 + 2 + 9 bytes) ends at 15, raw, "" and "". */
    size_t pod_ok[] = {15, len - 4, len - 2, 0};
    every_truncation(body, len, pod_ok);
    free(body);

    expect_fail(ns_body, 40, WISP_EINVAL,
                "truncated protobuf: runtime.Unknown field 2 (raw) needs 29 bytes, 17 remain");
    expect_fail(ns_body, 3, WISP_EINVAL, "must start with the 4 bytes");
}

static void nested_invalid(void **state)
{
    (void)state;
    uint8_t b[sizeof(ns_body)];
    /* metadata claims 28 bytes where the Namespace has 27 left. */
    memcpy(b, ns_body, sizeof(b));
    b[24] = 0x1c;
    expect_fail(b, sizeof(b), WISP_EINVAL,
                "truncated protobuf: Namespace field 1 (metadata) needs 28 bytes, 27 remain");
    /* metadata.generation (a varint) sent length-delimited. */
    memcpy(b, ns_body, sizeof(b));
    b[42] = 0x3a;
    expect_fail(b, sizeof(b), WISP_EINVAL,
                "Namespace.metadata field 7 (generation) has wire type 2, expected 0");
    /* A group (wire type 3) inside status. */
    memcpy(b, ns_body, sizeof(b));
    b[50] = 0x0b;
    expect_fail(b, sizeof(b), WISP_EINVAL, "Namespace.status field 1 (phase) has wire type 3");
}

static void bad_magic(void **state)
{
    (void)state;
    uint8_t b[sizeof(ns_body)];
    memcpy(b, ns_body, sizeof(b));
    b[3] = 0x01;
    expect_fail(b, sizeof(b), WISP_EINVAL, "must start with the 4 bytes \"k8s\\0\"");
    expect_fail((const uint8_t *)"{\"kind\":\"Namespace\"}", 20, WISP_EINVAL, "k8s");
    expect_fail(ns_body, 0, WISP_EINVAL, "k8s");
}

static void other_kinds(void **state)
{
    (void)state;
    size_t len;
    uint8_t *body = envelope("v1", "ConfigMap", (const uint8_t *)"", 0, &len);
    expect_fail(body, len, WISP_EINVAL, "protobuf bodies for ConfigMap are not supported; send JSON");
    free(body);
    body = envelope("apps/v1", "Deployment", (const uint8_t *)"", 0, &len);
    expect_fail(body, len, WISP_EINVAL,
                "protobuf bodies for apps/v1 Deployment are not supported; send JSON");
    free(body);
    body = envelope("v2", "Pod", (const uint8_t *)"", 0, &len);
    expect_fail(body, len, WISP_EINVAL, "protobuf bodies for v2 Pod are not supported");
    free(body);
    /* "k8s\0" and nothing: no typeMeta at all. */
    expect_fail(ns_body, 4, WISP_EINVAL, "protobuf bodies for (no apiVersion) (no kind)");
}

/* Fields proto/k8s.proto leaves out: zero values (which gogo-protobuf
 * sends for every non-pointer field) pass, anything else is refused by
 * field number rather than dropped. */
static void undeclared_fields(void **state)
{
    (void)state;
    /* spec{containers[{name "a", volumeMounts-slot 9 empty, 26 varint 0}]} */
    static const uint8_t zero[] = {0x12, 0x0a, 0x12, 0x08, 0x0a, 0x01, 0x61, 0x4a,
                                   0x00, 0xd0, 0x01, 0x00};
    /* spec{containers[{name "a", securityContext (15) {privileged (5) true}}]} */
    static const uint8_t set[] = {0x12, 0x09, 0x12, 0x07, 0x0a, 0x01, 0x61,
                                  0x7a, 0x02, 0x28, 0x01};
    /* spec{containers[{name "a", 26 varint 1}]} */
    static const uint8_t one[] = {0x12, 0x08, 0x12, 0x06, 0x0a, 0x01, 0x61, 0xd0, 0x01, 0x01};
    /* spec{containers[{name "a", 9 holding the one byte 0}]} */
    static const uint8_t nul[] = {0x12, 0x08, 0x12, 0x06, 0x0a, 0x01, 0x61, 0x4a, 0x01, 0x00};
    size_t len;
    uint8_t *body = envelope("v1", "Pod", zero, sizeof(zero), &len);
    expect_json(body, len,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"containers\":"
                "[{\"name\":\"a\"}]}}");
    free(body);
    body = envelope("v1", "Pod", set, sizeof(set), &len);
    expect_fail(body, len, WISP_EINVAL,
                "Pod.spec.containers[0] has protobuf field 15, which wisp does not decode");
    free(body);
    body = envelope("v1", "Pod", one, sizeof(one), &len);
    expect_fail(body, len, WISP_EINVAL, "Pod.spec.containers[0] has protobuf field 26");
    free(body);
    body = envelope("v1", "Pod", nul, sizeof(nul), &len);
    expect_fail(body, len, WISP_EINVAL, "Pod.spec.containers[0] has protobuf field 9");
    free(body);
}

static void bad_strings_and_times(void **state)
{
    (void)state;
    uint8_t b[sizeof(ns_body)];
    memcpy(b, ns_body, sizeof(b));
    b[27] = 0xff; /* "my-ns" → "\xffy-ns" */
    expect_fail(b, sizeof(b), WISP_EINVAL, "Namespace.metadata.name is not valid UTF-8");
    /* metadata{name "a", creationTimestamp{seconds 2^40}} */
    static const uint8_t far[] = {0x0a, 0x0c, 0x0a, 0x01, 0x61, 0x42, 0x07, 0x08,
                                  0x80, 0x80, 0x80, 0x80, 0x80, 0x20};
    /* metadata{name "a", creationTimestamp{nanos 5}}: the Unix epoch */
    static const uint8_t epoch[] = {0x0a, 0x07, 0x0a, 0x01, 0x61, 0x42, 0x02, 0x10, 0x05};
    size_t len;
    uint8_t *body = envelope("v1", "Namespace", far, sizeof(far), &len);
    expect_fail(body, len, WISP_EINVAL, "Namespace.metadata.creationTimestamp: time");
    free(body);
    body = envelope("v1", "Namespace", epoch, sizeof(epoch), &len);
    expect_json(body, len,
                "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\","
                "\"creationTimestamp\":\"1970-01-01T00:00:00Z\"}}");
    free(body);
}

static void limits(void **state)
{
    (void)state;
    size_t n = WISP_KUBE_PB_MAX_BODY + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    memcpy(big, "k8s", 4);
    expect_fail(big, n, WISP_ETOOBIG, "over the limit");
    /* One million empty containers: 2 MB on the wire, far more decoded. */
    size_t count = 1000000, spec_len = 2 * count, at = 0;
    uint8_t *raw = malloc(spec_len + 16);
    assert_non_null(raw);
    raw[at++] = 0x12;
    for (size_t v = spec_len; v; v >>= 7)
        raw[at++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    for (size_t i = 0; i < count; i++) {
        raw[at++] = 0x12;
        raw[at++] = 0x00;
    }
    size_t len;
    uint8_t *body = envelope("v1", "Pod", raw, at, &len);
    expect_fail(body, len, WISP_ETOOBIG, "memory");
    free(body);
    free(raw);
    free(big);
}

static void err_may_be_null(void **state)
{
    (void)state;
    json_t *out = NULL;
    assert_int_equal(wisp_kube_pb_to_json(ns_body, 10, &out, NULL, 0), WISP_EINVAL);
    assert_null(out);
    assert_int_equal(wisp_kube_pb_to_json(ns_body, sizeof(ns_body), &out, NULL, 0), WISP_OK);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kubectl_namespace),
        cmocka_unit_test(kubectl_serviceaccount),
        cmocka_unit_test(kubectl_token_request),
        cmocka_unit_test(pod_round_trip),
        cmocka_unit_test(pod_status_ignored),
        cmocka_unit_test(truncated),
        cmocka_unit_test(nested_invalid),
        cmocka_unit_test(bad_magic),
        cmocka_unit_test(other_kinds),
        cmocka_unit_test(undeclared_fields),
        cmocka_unit_test(bad_strings_and_times),
        cmocka_unit_test(limits),
        cmocka_unit_test(err_may_be_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
