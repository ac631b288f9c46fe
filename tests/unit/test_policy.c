/* SPDX-License-Identifier: Apache-2.0 */
/* Allow policies: what setIamPolicy accepts and how it is stored, version
 * rules, etags, the built-in roles, and the basic authorization decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/iam.h"

#define KSA "principal://iam.googleapis.com/projects/123456789012/locations/global/" \
            "workloadIdentityPools/p-1.svc.id.goog/subject/ns/ns-a/sa/app"

static json_t *norm(const char *text, char *msg)
{
    json_t *in = json_loads(text, 0, NULL);
    assert_non_null(in);
    json_t *out = wisp_iam_policy_normalize(in, msg, 512);
    json_decref(in);
    return out;
}

static void normalize(void **state)
{
    (void)state;
    char msg[512];
    json_t *p = norm("{\"version\":1,\"etag\":\"ACAB\",\"bindings\":["
                     "{\"role\":\"roles/viewer\",\"members\":[\"user:A@Example.com\"]},"
                     "{\"role\":\"roles/viewer\",\"members\":[\"user:a@example.com\",\"" KSA "\"]}"
                     "]}", msg);
    assert_non_null(p);
    json_t *b = json_object_get(p, "bindings");
    assert_int_equal(json_array_size(b), 1); /* same role merged */
    json_t *members = json_object_get(json_array_get(b, 0), "members");
    assert_int_equal(json_array_size(members), 2); /* duplicate (case) removed */
    assert_null(json_object_get(p, "etag"));
    assert_null(json_object_get(p, "version"));
    json_decref(p);
}

static void rejects(void **state)
{
    (void)state;
    char msg[512];
    static const char *const bad[] = {
        "{\"version\":2}",
        "{\"version\":-1}",
        "{\"bindings\":[{\"role\":\"roles/nope\",\"members\":[\"user:a@b.com\"]}]}",
        "{\"bindings\":[{\"role\":\"roles/viewer\",\"members\":[]}]}",
        "{\"bindings\":[{\"role\":\"roles/viewer\",\"members\":[\"foo:bar\"]}]}",
        "{\"bindings\":[{\"members\":[\"user:a@b.com\"]}]}",
        /* a condition needs version 3, a title and an expression */
        "{\"version\":1,\"bindings\":[{\"role\":\"roles/storage.objectViewer\","
        "\"members\":[\"user:a@b.com\"],\"condition\":{\"title\":\"t\",\"expression\":\"true\"}}]}",
        "{\"version\":3,\"bindings\":[{\"role\":\"roles/storage.objectViewer\","
        "\"members\":[\"user:a@b.com\"],\"condition\":{\"expression\":\"true\"}}]}",
        "{\"version\":3,\"bindings\":[{\"role\":\"roles/owner\","
        "\"members\":[\"user:a@b.com\"],\"condition\":{\"title\":\"t\",\"expression\":\"true\"}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *p = norm(bad[i], msg);
        if (p)
            fail_msg("accepted: %s", bad[i]);
        assert_true(strlen(msg) > 0);
    }
    json_t *p = norm("{\"bindings\":[{\"role\":\"roles/viewer\",\"members\":[\"foo:bar\"]}]}",
                     msg);
    assert_null(p);
    assert_non_null(strstr(msg, "foo:bar")); /* the message quotes the member */
}

static void render_versions(void **state)
{
    (void)state;
    char msg[512];
    json_t *out;
    assert_int_equal(wisp_iam_policy_render(NULL, 0, 3, &out, msg, sizeof(msg)), WISP_OK);
    assert_string_equal(json_string_value(json_object_get(out, "etag")), "ACAB");
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
    json_decref(out);

    json_t *cond = norm("{\"version\":3,\"bindings\":[{\"role\":\"roles/storage.objectViewer\","
                        "\"members\":[\"user:a@b.com\"],\"condition\":{\"title\":\"t\","
                        "\"expression\":\"request.time < timestamp('2030-01-01T00:00:00Z')\"}}]}",
                        msg);
    assert_non_null(cond);
    assert_int_equal(wisp_iam_policy_render(cond, 7, 3, &out, msg, sizeof(msg)), WISP_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 3);
    json_decref(out);
    assert_int_equal(wisp_iam_policy_render(cond, 7, 1, &out, msg, sizeof(msg)), WISP_EINVAL);
    assert_int_equal(wisp_iam_policy_render(cond, 7, 2, &out, msg, sizeof(msg)), WISP_EINVAL);
    json_decref(cond);
}

static void etags(void **state)
{
    (void)state;
    int64_t rev;
    for (int64_t r = 0; r < 100000; r = r * 3 + 1) {
        char *e = wisp_iam_etag_make(r);
        assert_int_equal(wisp_iam_etag_parse(e, &rev), WISP_OK);
        assert_int_equal(rev, r);
        free(e);
    }
    assert_int_equal(wisp_iam_etag_parse("BwYAAAAAAAA=x", &rev), WISP_EINVAL);
    assert_int_equal(wisp_iam_etag_parse("QndZMTA0", &rev), WISP_EINVAL);
}

static void roles(void **state)
{
    (void)state;
    static const char *const required[] = {
        "roles/owner", "roles/editor", "roles/viewer", "roles/container.clusterViewer",
        "roles/container.viewer", "roles/container.developer", "roles/container.admin",
        "roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser",
        "roles/storage.objectAdmin", "roles/storage.admin", "roles/iam.workloadIdentityUser",
        "roles/iam.serviceAccountTokenCreator", "roles/iam.serviceAccountOpenIdTokenCreator",
        "roles/iam.serviceAccountUser", "roles/iam.serviceAccountAdmin",
        "roles/artifactregistry.reader", "roles/artifactregistry.writer",
        "roles/artifactregistry.admin", "roles/serviceusage.serviceUsageConsumer",
        "roles/resourcemanager.projectIamAdmin"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!wisp_iam_role_get(required[i]))
            fail_msg("missing role %s", required[i]);
    }
    assert_true(wisp_iam_role_grants("roles/container.clusterViewer", "container.clusters.list"));
    assert_false(wisp_iam_role_grants("roles/container.clusterViewer", "container.pods.create"));
    assert_true(wisp_iam_role_grants("roles/iam.workloadIdentityUser",
                                     "iam.serviceAccounts.getAccessToken"));
    assert_true(wisp_iam_role_grants("roles/owner", "resourcemanager.projects.setIamPolicy"));
    assert_false(wisp_iam_role_grants("roles/editor", "resourcemanager.projects.setIamPolicy"));
    assert_true(wisp_iam_permission_known("storage.objects.list"));
    assert_false(wisp_iam_permission_known("storage.objects.teleport"));
}

static void authorize(void **state)
{
    (void)state;
    char msg[512], why[256];
    json_t *p = norm("{\"bindings\":[{\"role\":\"roles/container.clusterViewer\",\"members\":[\""
                     KSA "\"]},{\"role\":\"roles/owner\",\"members\":[\"serviceAccount:o@p-1.iam."
                     "gserviceaccount.com\"]}]}", msg);
    assert_non_null(p);
    const json_t *pols[] = {NULL, p};
    struct wisp_iam_target t = {"projects/p-1", pols, 2, NULL};
    struct wisp_caller ksa = {.project_number = "123456789012", .pool = "p-1.svc.id.goog",
                              .ns = "ns-a", .ksa = "app", .ksa_uid = "u"};
    struct wisp_caller other = ksa;
    other.ns = "ns-b";
    struct wisp_caller owner = {.email = "o@p-1.iam.gserviceaccount.com",
                                .is_service_account = 1};
    assert_true(wisp_authorize(&ksa, "container.clusters.list", &t, why, sizeof(why)));
    assert_non_null(strstr(why, "roles/container.clusterViewer"));
    assert_false(wisp_authorize(&ksa, "container.pods.create", &t, why, sizeof(why)));
    assert_false(wisp_authorize(&other, "container.clusters.list", &t, why, sizeof(why)));
    assert_true(wisp_authorize(&owner, "resourcemanager.projects.setIamPolicy", &t, NULL, 0));
    json_decref(p);
}

static void conditions(void **state)
{
    (void)state;
    char msg[512];
    json_t *p = norm("{\"version\":3,\"bindings\":["
                     "{\"role\":\"roles/storage.objectViewer\",\"members\":[\"user:a@b.com\"],"
                     "\"condition\":{\"title\":\"only b1\",\"expression\":"
                     "\"resource.name.startsWith('projects/_/buckets/b1')\"}},"
                     "{\"role\":\"roles/storage.objectCreator\",\"members\":[\"user:a@b.com\"],"
                     "\"condition\":{\"title\":\"expired\",\"expression\":"
                     "\"request.time < timestamp('2020-01-01T00:00:00Z')\"}}]}", msg);
    assert_non_null(p);
    const json_t *pols[] = {p};
    struct wisp_caller a = {.email = "a@b.com"};
    struct wisp_cond_env b1 = {"projects/_/buckets/b1", "storage.googleapis.com/Bucket",
                               "storage.googleapis.com", 1800000000000LL};
    struct wisp_cond_env b2 = b1;
    b2.resource_name = "projects/_/buckets/b2";
    struct wisp_cond_env noname = b1;
    noname.resource_name = NULL;
    struct wisp_iam_target t = {"b", pols, 1, &b1};
    assert_true(wisp_authorize(&a, "storage.objects.list", &t, NULL, 0));
    t.env = &b2; /* condition false */
    assert_false(wisp_authorize(&a, "storage.objects.list", &t, NULL, 0));
    t.env = &noname; /* condition cannot be evaluated: errors deny */
    assert_false(wisp_authorize(&a, "storage.objects.list", &t, NULL, 0));
    t.env = NULL;
    assert_false(wisp_authorize(&a, "storage.objects.list", &t, NULL, 0));
    t.env = &b1; /* the time condition is in the past */
    assert_false(wisp_authorize(&a, "storage.objects.create", &t, NULL, 0));
    json_decref(p);
    /* A condition that does not parse is refused when the policy is set. */
    p = norm("{\"version\":3,\"bindings\":[{\"role\":\"roles/storage.objectViewer\","
             "\"members\":[\"user:a@b.com\"],\"condition\":{\"title\":\"t\","
             "\"expression\":\"resource.nmae == 'x'\"}}]}", msg);
    assert_null(p);
    assert_non_null(strstr(msg, "Invalid condition"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize), cmocka_unit_test(rejects), cmocka_unit_test(render_versions),
        cmocka_unit_test(etags),     cmocka_unit_test(roles),   cmocka_unit_test(authorize),
        cmocka_unit_test(conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
