/* SPDX-License-Identifier: Apache-2.0 */
/* PATCH semantics: RFC 7386's and RFC 6902's appendix examples, the
 * strategic merge patches kubectl sends (the recorded apply body among
 * them), directives, pointer edge cases, and the limits. Every case also
 * checks that the document passed in is left untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/kube_patch.h"

typedef json_t *(*patch_fn)(const json_t *, const json_t *, char *, size_t);

static json_t *js(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!v)
        fail_msg("bad JSON in a test case (%s): %s", e.text, s);
    return v;
}

/* Applies patch to doc with f and checks the result against want (JSON
 * text), or, when want is NULL, that f fails with a reason containing
 * errpart. Returns nothing; fails the test on a mismatch. */
static void expect(patch_fn f, const char *doc, const char *patch, const char *want,
                   const char *errpart)
{
    json_t *d = js(doc), *p = js(patch), *got;
    char *before = json_dumps(d, JSON_SORT_KEYS | JSON_ENCODE_ANY), *after, err[256] = "";
    got = f(d, p, err, sizeof(err));
    after = json_dumps(d, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (strcmp(before, after))
        fail_msg("the document changed: %s -> %s", before, after);
    if (want) {
        json_t *w = js(want);
        if (!got)
            fail_msg("patch %s failed: %s", patch, err);
        if (!json_equal(got, w)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("patch %s\n  got  %s\n  want %s", patch, g, want);
        }
        json_decref(w);
    } else {
        if (got) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("patch %s should fail, gave %s", patch, g);
        }
        if (!err[0] || strchr(err, '\n'))
            fail_msg("no one-line reason for %s", patch);
        if (errpart && !strstr(err, errpart))
            fail_msg("reason \"%s\" lacks \"%s\"", err, errpart);
    }
    json_decref(got);
    json_decref(d);
    json_decref(p);
    free(before);
    free(after);
}

#define MERGE(d, p, w) expect(wisp_kube_merge_patch, d, p, w, NULL)
#define SMP(d, p, w) expect(wisp_kube_strategic_patch, d, p, w, NULL)
#define SMP_ERR(d, p, e) expect(wisp_kube_strategic_patch, d, p, NULL, e)
#define JP(d, p, w) expect(wisp_kube_json_patch, d, p, w, NULL)
#define JP_ERR(d, p, e) expect(wisp_kube_json_patch, d, p, NULL, e)

/* Nonzero when any object in v has a key starting with '$'. */
static int has_directive(const json_t *v)
{
    const char *k;
    json_t *c;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_directive(json_array_get(v, i)))
                return 1;
        return 0;
    }
    json_object_foreach((json_t *)v, k, c)
        if (k[0] == '$' || has_directive(c))
            return 1;
    return 0;
}

/* ---- RFC 7386 ---- */

static void rfc7386_appendix_a(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
        /* Section 3's example. */
        {"{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
         "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
         "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{\"familyName\":"
         "null},\"tags\":[\"example\"]}",
         "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
         "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        MERGE(cases[i][0], cases[i][1], cases[i][2]);
}

/* kubectl annotate's body, on the ServiceAccount it read first. */
static void merge_kubectl_annotate(void **state)
{
    (void)state;
    MERGE("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"my-ksa\","
          "\"namespace\":\"my-ns\",\"uid\":\"322a7e0dc55b78bf66bed709bd8b7507\","
          "\"resourceVersion\":\"113\",\"creationTimestamp\":\"2026-11-28T09:19:17Z\"}}",
          "{\"metadata\":{\"annotations\":{\"iam.gke.io/gcp-service-account\":"
          "\"my-iam-sa@probe-project.iam.gserviceaccount.com\"}}}",
          "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"my-ksa\","
          "\"namespace\":\"my-ns\",\"uid\":\"322a7e0dc55b78bf66bed709bd8b7507\","
          "\"resourceVersion\":\"113\",\"creationTimestamp\":\"2026-11-28T09:19:17Z\","
          "\"annotations\":{\"iam.gke.io/gcp-service-account\":"
          "\"my-iam-sa@probe-project.iam.gserviceaccount.com\"}}}");
    /* kubectl annotate KEY- sends null. */
    MERGE("{\"metadata\":{\"annotations\":{\"a\":\"1\",\"b\":\"2\"}}}",
          "{\"metadata\":{\"annotations\":{\"a\":null}}}",
          "{\"metadata\":{\"annotations\":{\"b\":\"2\"}}}");
}

/* ---- RFC 6902 ---- */

static void rfc6902_appendix_a(void **state)
{
    (void)state;
    /* A.1 - A.16; A.9, A.12 and A.15 must fail. */
    JP("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
       "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    JP("{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
       "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    JP("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
       "{\"foo\":\"bar\"}");
    JP("{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
       "{\"foo\":[\"bar\",\"baz\"]}");
    JP("{\"baz\":\"qux\",\"foo\":\"bar\"}",
       "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
       "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    JP("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
       "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
       "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    JP("{\"foo\":[\"all\",\"grass\",\"cows\",\"eats\"]}",
       "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
       "{\"foo\":[\"all\",\"cows\",\"eats\",\"grass\"]}");
    JP("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
       "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
       "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
       "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    JP_ERR("{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
           "op 0 (test /baz): test failed");
    JP("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
       "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    JP("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
       "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    JP_ERR("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
           "op 0 (add /baz/bat)");
    JP("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
       "{\"/\":9,\"~1\":10}");
    JP_ERR("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
           "test failed");
    JP("{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
       "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
    /* A.13: a duplicated "op" is invalid JSON for a patch; the caller's
     * parser (JSON_REJECT_DUPLICATES) refuses it before we see it. */
    json_error_t e;
    assert_null(
        json_loads("[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]",
                   JSON_REJECT_DUPLICATES, &e));
}

static void json_patch_pointers(void **state)
{
    (void)state;
    const char *arr = "{\"a\":[1,2]}";
    JP(arr, "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":3}]", "{\"a\":[1,2,3]}");
    JP(arr, "[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0}]", "{\"a\":[0,1,2]}");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":3}]", "past the end");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":3}]", "not an array index");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/-1\",\"value\":3}]", "not an array index");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/+1\",\"value\":3}]", "not an array index");
    JP_ERR(arr, "[{\"op\":\"remove\",\"path\":\"/a/2\"}]", "past the end");
    JP_ERR(arr, "[{\"op\":\"replace\",\"path\":\"/a/-\",\"value\":3}]", "not an array index");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/99999999999999999999\",\"value\":3}]",
           "not an array index");
    JP(arr, "[{\"op\":\"replace\",\"path\":\"/a/1\",\"value\":9}]", "{\"a\":[1,9]}");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"a\",\"value\":3}]", "path does not start with /");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/~2\",\"value\":3}]", "path has a ~");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a~\",\"value\":3}]", "path has a ~");
    JP("{\"a/b\":1,\"m~n\":2}",
       "[{\"op\":\"remove\",\"path\":\"/a~1b\"},{\"op\":\"replace\",\"path\":\"/"
       "m~0n\",\"value\":3}]",
       "{\"m~n\":3}");
    /* "" is the whole document; the empty key is "/". */
    JP(arr, "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", "[1]");
    JP(arr, "[{\"op\":\"add\",\"path\":\"\",\"value\":{\"b\":1}}]", "{\"b\":1}");
    JP(arr, "[{\"op\":\"add\",\"path\":\"/\",\"value\":0}]", "{\"a\":[1,2],\"\":0}");
    JP_ERR(arr, "[{\"op\":\"remove\",\"path\":\"\"}]", "whole document");
    JP(arr, "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":[1.0,2]}}]", arr);
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/a/0/x\",\"value\":3}]", "not an object or array");
    JP_ERR(arr, "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":3}]", "no such member");
    JP_ERR(arr, "[{\"op\":\"remove\",\"path\":\"/b\"}]", "no such member");
    /* move and copy */
    JP(arr, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"a\":[1,2],\"b\":[1,2]}");
    JP(arr, "[{\"op\":\"copy\",\"from\":\"/a/0\",\"path\":\"/a/-\"}]", "{\"a\":[1,2,1]}");
    JP(arr, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", arr);
    JP(arr, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]", "[1,2]");
    JP_ERR(arr, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/0\"}]", "into itself");
    JP_ERR(arr, "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/b\"}]", "into itself");
    JP_ERR(arr, "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/b\"}]", "\"from\" does not exist");
    JP_ERR(arr, "[{\"op\":\"copy\",\"path\":\"/b\"}]", "missing \"from\"");
    JP_ERR(arr, "[{\"op\":\"add\",\"path\":\"/b\"}]", "missing \"value\"");
    JP(arr, "[{\"op\":\"add\",\"path\":\"/b\",\"value\":null}]", "{\"a\":[1,2],\"b\":null}");
    JP_ERR(arr, "[{\"op\":\"frob\",\"path\":\"/b\"}]", "unknown op");
    JP_ERR(arr, "[{\"path\":\"/b\"}]", "no \"op\"");
    JP_ERR(arr, "[{\"op\":\"remove\"}]", "missing \"path\"");
    JP_ERR(arr, "[7]", "op 0");
    JP_ERR(arr, "{\"op\":\"remove\",\"path\":\"/a\"}", "array of operations");
    /* All or nothing, and the reason names the failing op and its path. */
    JP_ERR(arr,
           "[{\"op\":\"add\",\"path\":\"/b\",\"value\":1},{\"op\":\"remove\",\"path\":\"/a/0\"},"
           "{\"op\":\"replace\",\"path\":\"/nope\",\"value\":2}]",
           "op 2 (replace /nope): no such member");
    /* A path with a newline still gives a one-line reason. */
    JP_ERR(arr, "[{\"op\":\"remove\",\"path\":\"/x\\ny\"}]", "op 0 (remove /x y)");
}

static char *repeat_ops(const char *op, size_t n)
{
    size_t len = strlen(op);
    char *s = malloc(n * (len + 1) + 3), *w = s;
    *w++ = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(w, op, len);
        w += len;
        *w++ = ',';
    }
    w[-1] = ']';
    *w = '\0';
    return s;
}

static char *nested(const char *open, const char *close, int depth)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc((size_t)depth * (lo + lc) + 2), *w = s;
    for (int i = 0; i < depth; i++, w += lo)
        memcpy(w, open, lo);
    *w++ = '1';
    for (int i = 0; i < depth; i++, w += lc)
        memcpy(w, close, lc);
    *w = '\0';
    return s;
}

static void limits(void **state)
{
    (void)state;
    char *ops =
        repeat_ops("{\"op\":\"test\",\"path\":\"/a\",\"value\":1}", WISP_KUBE_PATCH_MAX_OPS);
    JP("{\"a\":1}", ops, "{\"a\":1}");
    free(ops);
    ops = repeat_ops("{\"op\":\"test\",\"path\":\"/a\",\"value\":1}", WISP_KUBE_PATCH_MAX_OPS + 1);
    JP_ERR("{\"a\":1}", ops, "at most 10000 operations");
    free(ops);
    /* Copying the root into itself doubles it each time: refused once the
     * copies add up past the limit, long before memory runs out. */
    ops = repeat_ops("{\"op\":\"copy\",\"from\":\"\",\"path\":\"/-\"}", 40);
    JP_ERR("[1]", ops, "copies more values than the limit");
    free(ops);
    /* Each round of three moves nests the document one level deeper,
     * until the limit. */
    ops = repeat_ops("{\"op\":\"add\",\"path\":\"/b\",\"value\":{}},"
                     "{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b/a\"},"
                     "{\"op\":\"move\",\"from\":\"/b\",\"path\":\"/a\"}",
                     80);
    JP_ERR("{\"a\":{}}", ops, "deeper than the limit");
    free(ops);

    /* Patches nesting 64 levels pass, 65 do not, for all three. */
    char *ok = nested("{\"a\":", "}", WISP_KUBE_PATCH_MAX_DEPTH);
    char *deep = nested("{\"a\":", "}", WISP_KUBE_PATCH_MAX_DEPTH + 1);
    MERGE("{}", ok, ok);
    SMP("{}", ok, ok);
    expect(wisp_kube_merge_patch, "{}", deep, NULL, "deeper than 64");
    SMP_ERR("{}", deep, "deeper than 64");
    free(ok);
    free(deep);
    deep = nested("[", "]", WISP_KUBE_PATCH_MAX_DEPTH);
    size_t len = strlen(deep) + 64;
    char *op = malloc(len);
    snprintf(op, len, "[{\"op\":\"add\",\"path\":\"/x\",\"value\":%s}]", deep);
    JP_ERR("{}", op, "deeper than 64");
    free(op);
    free(deep);

    /* Strategic merge lists are bounded. */
    char *big = repeat_ops("\"f\"", WISP_KUBE_PATCH_MAX_LIST + 1);
    len = strlen(big) + 64;
    char *p = malloc(len);
    snprintf(p, len, "{\"metadata\":{\"finalizers\":%s}}", big);
    SMP_ERR("{\"metadata\":{\"finalizers\":[\"a\"]}}", p, "more than 4096 elements");
    free(p);
    free(big);
    /* Bad arguments. */
    char err[64];
    json_t *o = json_object();
    assert_null(wisp_kube_merge_patch(NULL, o, err, sizeof(err)));
    assert_null(wisp_kube_strategic_patch(o, NULL, NULL, 0));
    assert_null(wisp_kube_json_patch(o, NULL, err, 1));
    json_decref(o);
}

/* ---- strategic merge patch ---- */

/* The pod kubectl apply created (kubectl-apply.md) and the patch kubectl
 * apply sent after a label was added to the manifest
 * (kubectl-apply-changed.md), byte for byte. */
static const char apply_pod[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{\"kubectl.kuberne"
    "tes.io/last-applied-configuration\":\"{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Po"
    "d\\\",\\\"metadata\\\":{\\\"annotations\\\":{},\\\"name\\\":\\\"test-pod\\\",\\\"namespa"
    "ce\\\":\\\"my-ns\\\"},\\\"spec\\\":{\\\"containers\\\":[{\\\"command\\\":[\\\"sleep\\\","
    "\\\"infinity\\\"],\\\"image\\\":\\\"google/cloud-sdk:slim\\\",\\\"name\\\":\\\"test-pod\\\""
    ",\\\"resources\\\":{\\\"requests\\\":{\\\"cpu\\\":\\\"500m\\\",\\\"ephemeral-storage\\\""
    ":\\\"10Mi\\\",\\\"memory\\\":\\\"512Mi\\\"}}}],\\\"nodeSelector\\\":{\\\"iam.gke.io/gke-"
    "metadata-server-enabled\\\":\\\"true\\\"},\\\"serviceAccountName\\\":\\\"my-ksa\\\"}}\\n"
    "\"},\"name\":\"test-pod\",\"namespace\":\"my-ns\",\"uid\":\"4ff8d16a1cec6b09162ec5033dd0"
    "c9e2\",\"resourceVersion\":\"115\",\"creationTimestamp\":\"2026-11-28T09:19:19Z\"},\"spe"
    "c\":{\"containers\":[{\"command\":[\"sleep\",\"infinity\"],\"image\":\"google/cloud-sdk:"
    "slim\",\"name\":\"test-pod\",\"resources\":{\"requests\":{\"cpu\":\"500m\",\"ephemeral-s"
    "torage\":\"10Mi\",\"memory\":\"512Mi\"}}}],\"nodeSelector\":{\"iam.gke.io/gke-metadata-s"
    "erver-enabled\":\"true\"},\"serviceAccountName\":\"my-ksa\",\"nodeName\":\"gke-node-1\"}"
    ",\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"hostIP\":\"10.128.0.2\",\"st"
    "artTime\":\"2026-11-28T09:19:19Z\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True"
    "\"}],\"containerStatuses\":[{\"name\":\"test-pod\",\"ready\":true,\"restartCount\":0,\"i"
    "mage\":\"google/cloud-sdk:slim\",\"imageID\":\"\",\"started\":true,\"state\":{\"running\""
    ":{\"startedAt\":\"2026-11-28T09:19:19Z\"}}}]}}";
static const char apply_patch[] =
    "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{"
    "\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Pod\\\",\\\"metadata\\\":{\\\"annotations"
    "\\\":{},\\\"labels\\\":{\\\"app\\\":\\\"demo\\\"},\\\"name\\\":\\\"test-pod\\\",\\\"name"
    "space\\\":\\\"my-ns\\\"},\\\"spec\\\":{\\\"containers\\\":[{\\\"command\\\":[\\\"sleep\\\""
    ",\\\"infinity\\\"],\\\"image\\\":\\\"google/cloud-sdk:slim\\\",\\\"name\\\":\\\"test-pod"
    "\\\",\\\"resources\\\":{\\\"requests\\\":{\\\"cpu\\\":\\\"500m\\\",\\\"ephemeral-storage"
    "\\\":\\\"10Mi\\\",\\\"memory\\\":\\\"512Mi\\\"}}}],\\\"nodeSelector\\\":{\\\"iam.gke.io/"
    "gke-metadata-server-enabled\\\":\\\"true\\\"},\\\"serviceAccountName\\\":\\\"my-ksa\\\"}"
    "}\\n\"},\"labels\":{\"app\":\"demo\"}}}";

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

static void smp_kubectl_apply_changed(void **state)
{
    (void)state;
    json_t *pod = js(apply_pod), *patch = js(apply_patch), *want = json_deep_copy(pod), *got;
    json_t *md = json_object_get(want, "metadata");
    char err[256] = "";
    json_object_set(
        json_object_get(md, "annotations"), LAST_APPLIED,
        json_object_get(json_object_get(json_object_get(patch, "metadata"), "annotations"),
                        LAST_APPLIED));
    json_object_set_new(md, "labels", json_pack("{s:s}", "app", "demo"));
    got = wisp_kube_strategic_patch(pod, patch, err, sizeof(err));
    if (!got)
        fail_msg("%s", err);
    assert_true(json_equal(got, want));
    assert_non_null(
        strstr(json_string_value(json_object_get(
                   json_object_get(json_object_get(got, "metadata"), "annotations"), LAST_APPLIED)),
               "\"labels\":{\"app\":\"demo\"}"));
    json_decref(got);
    json_decref(want);
    json_decref(patch);
    json_decref(pod);
    /* What kubectl apply sends when the manifest changes an image: the
     * container list with $setElementOrder. */
    SMP("{\"spec\":{\"containers\":[{\"command\":[\"sleep\",\"infinity\"],\"image\":"
        "\"google/cloud-sdk:slim\",\"name\":\"test-pod\"}],\"serviceAccountName\":\"my-ksa\"}}",
        "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"test-pod\"}],\"containers\":"
        "[{\"image\":\"google/cloud-sdk:alpine\",\"name\":\"test-pod\"}]}}",
        "{\"spec\":{\"containers\":[{\"command\":[\"sleep\",\"infinity\"],\"image\":"
        "\"google/cloud-sdk:alpine\",\"name\":\"test-pod\"}],\"serviceAccountName\":\"my-ksa\"}}");
}

#define TWO_CONTAINERS                                                                             \
    "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\",\"args\":[\"x\"]},"              \
    "{\"name\":\"b\",\"image\":\"b:1\"}]}}"

static void smp_containers(void **state)
{
    (void)state;
    /* Change one, keep the other and the fields the patch does not name. */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:2\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:2\",\"args\":[\"x\"]},"
        "{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* Add one: it goes first, as in the Kubernetes docs' kubectl patch
     * example (patch-demo-ctr-2 lands before patch-demo-ctr). */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c:1\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"c:1\"},{\"name\":\"a\","
        "\"image\":\"a:1\",\"args\":[\"x\"]},{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* Named after an item it follows, a new item keeps that place. */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"c\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\",\"args\":[\"x\"]},"
        "{\"name\":\"c\"},{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* Delete one. */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"delete\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* All three at once. */
    SMP(TWO_CONTAINERS,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"delete\"},"
        "{\"name\":\"b\",\"image\":\"b:2\"},{\"name\":\"c\",\"image\":\"c:1\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"b:2\"},"
        "{\"name\":\"c\",\"image\":\"c:1\"}]}}");
    /* A null inside an element removes that field only. */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":null}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\"},"
        "{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    /* The same rules hold in a workload's pod template and for init
     * containers. */
    SMP("{\"spec\":{\"template\":{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"image\":\"i\"}]}}"
        "}}",
        "{\"spec\":{\"template\":{\"spec\":{\"initContainers\":[{\"name\":\"j\"}]}}}}",
        "{\"spec\":{\"template\":{\"spec\":{\"initContainers\":[{\"name\":\"j\"},"
        "{\"name\":\"i\",\"image\":\"i\"}]}}}}");
    /* An element without its merge key is an error; so is a list of
     * primitives where maps belong. */
    SMP_ERR(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
            "lacks merge key name");
    SMP_ERR(TWO_CONTAINERS, "{\"spec\":{\"containers\":[\"x\"]}}", "mixes element types");
    /* An empty list merges to no change, as in Kubernetes. */
    SMP(TWO_CONTAINERS, "{\"spec\":{\"containers\":[]}}", TWO_CONTAINERS);
    /* A field name that merely contains the path is not the path. */
    SMP("{\"spec.containers\":[{\"name\":\"a\"}]}", "{\"spec.containers\":[{\"name\":\"b\"}]}",
        "{\"spec.containers\":[{\"name\":\"b\"}]}");
}

static void smp_env_ports_mounts(void **state)
{
    (void)state;
    SMP("{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
        "{\"name\":\"B\",\"value\":\"2\"}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"B\",\"value\":\"3\"},"
        "{\"name\":\"C\",\"value\":\"4\"},{\"name\":\"A\",\"value\":null,\"valueFrom\":"
        "{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"B\",\"value\":\"3\"},"
        "{\"name\":\"C\",\"value\":\"4\"},{\"name\":\"A\",\"valueFrom\":{\"fieldRef\":"
        "{\"fieldPath\":\"metadata.name\"}}}]}]}}");
    SMP("{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,\"name\":"
        "\"http\"},{\"containerPort\":443}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,\"name\":"
        "\"web\"}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,\"name\":"
        "\"web\"},{\"containerPort\":443}]}]}}");
    SMP("{\"spec\":{\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/a\","
        "\"name\":\"v\"}]}],\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/a\","
        "\"readOnly\":true}]}],\"volumes\":[{\"name\":\"w\",\"emptyDir\":{}}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"volumeMounts\":[{\"mountPath\":\"/a\","
        "\"name\":\"v\",\"readOnly\":true}]}],\"volumes\":[{\"name\":\"w\",\"emptyDir\":{}},"
        "{\"name\":\"v\",\"emptyDir\":{}}]}}");
    /* Lists Kubernetes does not mark for merging replace. */
    SMP("{\"spec\":{\"tolerations\":[{\"key\":\"a\"},{\"key\":\"b\"}],\"containers\":[{\"name\":"
        "\"a\",\"command\":[\"x\",\"y\"]}]}}",
        "{\"spec\":{\"tolerations\":[{\"key\":\"c\"}],\"containers\":[{\"name\":\"a\",\"command\":"
        "[\"z\"]}]}}",
        "{\"spec\":{\"tolerations\":[{\"key\":\"c\"}],\"containers\":[{\"name\":\"a\",\"command\":"
        "[\"z\"]}]}}");
    /* Keys compare as decoded JSON numbers do: 80 matches 80.0. */
    SMP("{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80.0}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,"
        "\"protocol\":\"TCP\"}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,"
        "\"protocol\":\"TCP\"}]}]}}");
    SMP("{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
        "{\"type\":\"Initialized\",\"status\":\"True\"}]}}",
        "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
        "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
        "{\"type\":\"Initialized\",\"status\":\"True\"}]}}");
    /* Service ports merge by port, ServiceAccount secrets by name, owner
     * references by uid. */
    SMP("{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":8080}]}}",
        "{\"spec\":{\"ports\":[{\"port\":443,\"targetPort\":8443}]}}",
        "{\"spec\":{\"ports\":[{\"port\":443,\"targetPort\":8443},{\"port\":80,\"targetPort\":8080}"
        "]}}");
    SMP("{\"secrets\":[{\"name\":\"a\"}]}", "{\"secrets\":[{\"name\":\"b\"}]}",
        "{\"secrets\":[{\"name\":\"b\"},{\"name\":\"a\"}]}");
    SMP("{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"kind\":\"A\"},{\"uid\":\"2\","
        "\"kind\":"
        "\"B\"}]}}",
        "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"2\",\"controller\":true}]}}",
        "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"kind\":\"A\"},{\"uid\":\"2\","
        "\"kind\":"
        "\"B\",\"controller\":true}]}}");
}

#define ENV3                                                                                       \
    "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"A\"},{\"name\":\"B\"},"       \
    "{\"name\":\"C\"}]}]}}"

static void smp_set_element_order(void **state)
{
    (void)state;
    /* Reorder only. */
    SMP(ENV3,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$setElementOrder/env\":[{\"name\":\"C\"},"
        "{\"name\":\"A\"},{\"name\":\"B\"}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"C\"},{\"name\":\"A\"},"
        "{\"name\":\"B\"}]}]}}");
    /* Add D between B and A; C, which the order does not name, keeps its
     * place after the items it followed in the document. */
    SMP(ENV3,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$setElementOrder/env\":[{\"name\":\"B\"},"
        "{\"name\":\"D\"},{\"name\":\"A\"}],\"env\":[{\"name\":\"D\",\"value\":\"4\"}]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"B\"},{\"name\":\"D\","
        "\"value\":\"4\"},{\"name\":\"A\"},{\"name\":\"C\"}]}]}}");
    /* The order of a list of primitives. */
    SMP("{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
        "{\"metadata\":{\"$setElementOrder/"
        "finalizers\":[\"b\",\"c\",\"a\"],\"finalizers\":[\"c\"]}}",
        "{\"metadata\":{\"finalizers\":[\"b\",\"c\",\"a\"]}}");
    /* The patch list must follow the order it is given. */
    SMP_ERR(ENV3,
            "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$setElementOrder/env\":[{\"name\":\"A\"},"
            "{\"name\":\"B\"}],\"env\":[{\"name\":\"B\"},{\"name\":\"A\"}]}]}}",
            "does not match");
    SMP_ERR(
        ENV3,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$setElementOrder/env\":[{\"x\":\"A\"}]}]}}",
        "lacks merge key");
    SMP_ERR(ENV3, "{\"spec\":{\"$setElementOrder/containers\":{}}}", "bad $setElementOrder");
    SMP_ERR(ENV3, "{\"spec\":{\"$setElementOrder/\":[]}}", "bad $setElementOrder");
}

static void smp_primitive_lists(void **state)
{
    (void)state;
    const char *doc = "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}";
    SMP(doc, "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\",\"x\"]}}",
        "{\"metadata\":{\"finalizers\":[\"a\",\"c\"]}}");
    /* finalizers merge as a set; a new item the patch lists first goes
     * first, as Kubernetes orders it. */
    SMP(doc, "{\"metadata\":{\"finalizers\":[\"d\",\"a\"]}}",
        "{\"metadata\":{\"finalizers\":[\"d\",\"a\",\"b\",\"c\"]}}");
    SMP(doc,
        "{\"metadata\":{\"$deleteFromPrimitiveList/"
        "finalizers\":[\"a\",\"c\"],\"finalizers\":[\"e\"]}}",
        "{\"metadata\":{\"finalizers\":[\"e\",\"b\"]}}");
    SMP("{}", "{\"metadata\":{\"finalizers\":[\"a\",\"a\"]}}",
        "{\"metadata\":{\"finalizers\":[\"a\"]}}");
    SMP_ERR(doc, "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":\"a\"}}",
            "bad $deleteFromPrimitiveList");
    /* args is not a merge list: it replaces. */
    SMP("{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"1\",\"2\"]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"2\",\"3\"]}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"2\",\"3\"]}]}}");
}

static void smp_maps_and_directives(void **state)
{
    (void)state;
    const char *doc = "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"a\":\"1\",\"b\":\"2\"},"
                      "\"labels\":{\"x\":\"y\"}},\"spec\":{\"nodeSelector\":{\"k\":\"v\"}}}";
    /* null deletes an annotation; the rest merges. */
    SMP(doc, "{\"metadata\":{\"annotations\":{\"a\":null,\"c\":\"3\"}}}",
        "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"b\":\"2\",\"c\":\"3\"},"
        "\"labels\":{\"x\":\"y\"}},\"spec\":{\"nodeSelector\":{\"k\":\"v\"}}}");
    SMP(doc, "{\"metadata\":{\"labels\":null,\"annotations\":{\"z\":null}}}",
        "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"a\":\"1\",\"b\":\"2\"}},"
        "\"spec\":{\"nodeSelector\":{\"k\":\"v\"}}}");
    /* $patch in a map: replace, delete, merge (the default, spelled out). */
    SMP(doc, "{\"spec\":{\"nodeSelector\":{\"$patch\":\"replace\",\"n\":\"m\"}}}",
        "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"a\":\"1\",\"b\":\"2\"},"
        "\"labels\":{\"x\":\"y\"}},\"spec\":{\"nodeSelector\":{\"n\":\"m\"}}}");
    SMP(doc, "{\"metadata\":{\"annotations\":{\"$patch\":\"delete\"}}}",
        "{\"metadata\":{\"name\":\"p\",\"annotations\":{},\"labels\":{\"x\":\"y\"}},"
        "\"spec\":{\"nodeSelector\":{\"k\":\"v\"}}}");
    SMP(doc, "{\"spec\":{\"nodeSelector\":{\"$patch\":\"merge\",\"n\":\"m\"}}}",
        "{\"metadata\":{\"name\":\"p\",\"annotations\":{\"a\":\"1\",\"b\":\"2\"},"
        "\"labels\":{\"x\":\"y\"}},\"spec\":{\"nodeSelector\":{\"k\":\"v\",\"n\":\"m\"}}}");
    /* $patch: replace in a merge list replaces the whole list. */
    SMP(TWO_CONTAINERS,
        "{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},{\"name\":\"z\",\"image\":\"z\"}]}}",
        "{\"spec\":{\"containers\":[{\"name\":\"z\",\"image\":\"z\"}]}}");
    SMP("{\"spec\":{\"tolerations\":[{\"key\":\"a\"}]}}",
        "{\"spec\":{\"tolerations\":[{\"$patch\":\"replace\"},{\"key\":\"b\"}]}}",
        "{\"spec\":{\"tolerations\":[{\"key\":\"b\"}]}}");
    /* $retainKeys: a volume changing its source drops the old one. */
    SMP("{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}",
        "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"$retainKeys\":[\"hostPath\",\"name\"],"
        "\"hostPath\":{\"path\":\"/x\"}}]}}",
        "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"hostPath\":{\"path\":\"/x\"}}]}}");
    SMP_ERR("{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}",
            "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"$retainKeys\":[\"name\"],"
            "\"hostPath\":{\"path\":\"/x\"}}]}}",
            "$retainKeys does not list");
    SMP_ERR(doc, "{\"spec\":{\"$retainKeys\":\"x\"}}", "must be a list");
    /* Unknown directives are errors. */
    SMP_ERR(doc, "{\"spec\":{\"$frob\":1}}", "unknown directive $frob in spec");
    SMP_ERR(doc, "{\"metadata\":{\"$patch\":\"frob\"}}", "unknown $patch directive");
    SMP_ERR(doc, "{\"metadata\":{\"$patch\":1}}", "unknown $patch directive");
    SMP_ERR(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$patch\":\"frob\"}]}}",
            "unknown $patch directive in spec.containers");
    SMP_ERR(TWO_CONTAINERS, "{\"spec\":{\"containers\":[{\"$patch\":\"delete\"}]}}",
            "lacks merge key");
    SMP_ERR("{\"spec\":{\"tolerations\":[{\"key\":\"a\"}]}}",
            "{\"spec\":{\"tolerations\":[{\"key\":\"a\",\"$patch\":\"delete\"}]}}", "no merge key");
    /* Not objects. */
    SMP_ERR("{}", "[]", "must be JSON objects");
    SMP_ERR("[]", "{}", "must be JSON objects");
}

/* Directives aimed at fields the document lacks still never reach the
 * result. */
static void smp_no_directive_survives(void **state)
{
    (void)state;
    json_t *doc = js("{\"metadata\":{\"name\":\"p\"}}");
    json_t *patch =
        js("{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"a\":\"b\",\"c\":null},"
           "\"$deleteFromPrimitiveList/finalizers\":[\"x\"]},"
           "\"spec\":{\"initContainers\":[{\"name\":\"i\",\"$patch\":\"delete\"}],"
           "\"volumes\":[{\"name\":\"v\",\"$retainKeys\":[\"name\",\"emptyDir\"],\"emptyDir\":{}}],"
           "\"$setElementOrder/containers\":[{\"name\":\"c\"}],"
           "\"containers\":[{\"name\":\"c\",\"$setElementOrder/env\":[{\"name\":\"E\"}],"
           "\"env\":[{\"name\":\"E\",\"value\":null}]}],"
           "\"tolerations\":[{\"key\":\"k\",\"$patch\":\"merge\"}],"
           "\"affinity\":{\"$patch\":\"delete\"}}}");
    char err[256] = "";
    json_t *got = wisp_kube_strategic_patch(doc, patch, err, sizeof(err));
    if (!got)
        fail_msg("%s", err);
    assert_false(has_directive(got));
    json_t *want = js("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"b\"}},\"spec\":"
                      "{\"initContainers\":[],\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}],"
                      "\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"E\"}]}],"
                      "\"tolerations\":[{\"key\":\"k\"}],\"affinity\":{}}}");
    if (!json_equal(got, want))
        fail_msg("got %s", json_dumps(got, 0));
    json_decref(want);
    json_decref(got);
    json_decref(patch);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7386_appendix_a),
        cmocka_unit_test(merge_kubectl_annotate),
        cmocka_unit_test(rfc6902_appendix_a),
        cmocka_unit_test(json_patch_pointers),
        cmocka_unit_test(limits),
        cmocka_unit_test(smp_kubectl_apply_changed),
        cmocka_unit_test(smp_containers),
        cmocka_unit_test(smp_env_ports_mounts),
        cmocka_unit_test(smp_set_element_order),
        cmocka_unit_test(smp_primitive_lists),
        cmocka_unit_test(smp_maps_and_directives),
        cmocka_unit_test(smp_no_directive_survives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
