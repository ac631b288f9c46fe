/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the IAM API (src/wispd/api/iam_util.c, compiled in
 * here): account and role ID syntax, path decoding, which members the
 * reverse index tracks, rewriting a deleted account's member, custom-role
 * validation and rendering; and the decision honouring custom roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "../../src/wispd/api/iam_util.c"

#define SA "serviceAccount:app-sa@p-1.iam.gserviceaccount.com"
#define DEAD "deleted:serviceAccount:app-sa@p-1.iam.gserviceaccount.com?uid=100000000000000000007"

static void ids(void **state)
{
    (void)state;
    assert_true(wispd_iam_account_id_valid("iam-sa-name"));
    assert_true(wispd_iam_account_id_valid("a12345"));
    assert_true(wispd_iam_account_id_valid("abcdefghijabcdefghijabcdefghij")); /* 30 */
    assert_false(wispd_iam_account_id_valid("abcdefghijabcdefghijabcdefghijk")); /* 31 */
    assert_false(wispd_iam_account_id_valid("abcde"));
    assert_false(wispd_iam_account_id_valid("1abcdef"));
    assert_false(wispd_iam_account_id_valid("abcdef-"));
    assert_false(wispd_iam_account_id_valid("Abcdef"));
    assert_false(wispd_iam_account_id_valid("abc_def"));
    assert_false(wispd_iam_account_id_valid(""));
    assert_true(wispd_iam_role_id_valid("myRole"));
    assert_true(wispd_iam_role_id_valid("a.b_C9"));
    assert_false(wispd_iam_role_id_valid("ab"));
    assert_false(wispd_iam_role_id_valid("my-role"));
    assert_false(wispd_iam_role_id_valid("my/role"));
    assert_true(wispd_iam_all_digits("100000000000000000002"));
    assert_false(wispd_iam_all_digits(""));
    assert_false(wispd_iam_all_digits("12a"));
}

static void path_decode(void **state)
{
    (void)state;
    char *s = wispd_iam_path_decode("a%40b.c", 7);
    assert_string_equal(s, "a@b.c");
    free(s);
    s = wispd_iam_path_decode("abc:verb", 3);
    assert_string_equal(s, "abc");
    free(s);
    assert_null(wispd_iam_path_decode("a%4", 3));
    assert_null(wispd_iam_path_decode("a%zz", 4));
    assert_null(wispd_iam_path_decode("a%00b", 5));
    assert_null(wispd_iam_path_decode("%", 1));
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("bad test JSON: %s", e.text);
    return v;
}

static void indexed_members(void **state)
{
    (void)state;
    json_t *p = load("{\"bindings\":[{\"role\":\"roles/viewer\",\"members\":["
                     "\"serviceAccount:App-SA@p-1.iam.gserviceaccount.com\","
                     "\"serviceAccount:p-1.svc.id.goog[ns/ksa]\",\"user:u@example.com\","
                     "\"" DEAD "\",\"not a member\"]}]}");
    json_t *set = wispd_iam_indexed_members(p);
    assert_int_equal(json_object_size(set), 2);
    assert_non_null(json_object_get(set, SA)); /* canonical: lowercased */
    assert_non_null(json_object_get(set, DEAD));
    json_decref(set);
    set = wispd_iam_indexed_members(NULL);
    assert_int_equal(json_object_size(set), 0);
    json_decref(set);
    json_decref(p);
}

/* Member i of binding b of policy p. */
static const char *member_at(const json_t *p, size_t b, size_t i)
{
    const json_t *binding = json_array_get(json_object_get(p, "bindings"), b);
    return json_string_value(json_array_get(json_object_get(binding, "members"), i));
}

static void replace_member(void **state)
{
    (void)state;
    json_t *p = load("{\"bindings\":["
                     "{\"role\":\"roles/viewer\",\"members\":[\"user:u@example.com\",\"" SA "\"]},"
                     "{\"role\":\"roles/storage.objectViewer\",\"members\":[\"" SA "\",\"" DEAD
                     "\"],\"condition\":{\"title\":\"t\",\"expression\":\"request.time < "
                     "timestamp('2030-01-01T00:00:00Z')\"}},"
                     "{\"role\":\"roles/editor\",\"members\":[\"user:v@example.com\"]}],"
                     "\"auditConfigs\":[{\"service\":\"allServices\"}]}");
    int changed = 0;
    json_t *q = wispd_iam_policy_replace_member(p, SA, DEAD, &changed);
    assert_true(changed);
    json_t *b = json_object_get(q, "bindings");
    assert_int_equal(json_array_size(b), 3);
    assert_int_equal(json_array_size(json_object_get(json_array_get(b, 0), "members")), 2);
    assert_string_equal(member_at(q, 0, 0), "user:u@example.com");
    assert_string_equal(member_at(q, 0, 1), DEAD);
    /* Merged with the member already there; the condition is untouched. */
    json_t *b1 = json_array_get(b, 1);
    assert_int_equal(json_array_size(json_object_get(b1, "members")), 1);
    assert_true(json_equal(json_object_get(b1, "condition"),
                           json_object_get(json_array_get(json_object_get(p, "bindings"), 1),
                                           "condition")));
    assert_non_null(json_object_get(q, "auditConfigs"));
    /* The original is not modified. */
    assert_string_equal(member_at(p, 0, 1), SA);
    /* And back: the deleted member becomes the account again. */
    int again = 0;
    json_t *r = wispd_iam_policy_replace_member(q, DEAD, SA, &again);
    assert_true(again);
    assert_string_equal(member_at(r, 0, 1), SA);
    /* Nothing to replace: unchanged. */
    int none = 1;
    json_t *s = wispd_iam_policy_replace_member(p, "serviceAccount:x-y-z@p.iam.gserviceaccount.com",
                                                DEAD, &none);
    assert_false(none);
    assert_true(json_equal(s, p));
    json_decref(s);
    json_decref(r);
    json_decref(q);
    json_decref(p);
}

static void role_permissions(void **state)
{
    (void)state;
    char msg[256];
    json_t *in = load("[\"storage.objects.list\",\"storage.objects.get\","
                      "\"storage.objects.list\"]");
    json_t *out = wispd_iam_role_permissions(in, msg, sizeof(msg));
    assert_non_null(out);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "storage.objects.get");
    json_decref(out);
    json_decref(in);
    in = load("[\"storage.objects.list\",\"storage.objects.teleport\"]");
    assert_null(wispd_iam_role_permissions(in, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "storage.objects.teleport"));
    json_decref(in);
    in = load("[\"storage.*\"]");
    assert_null(wispd_iam_role_permissions(in, msg, sizeof(msg)));
    json_decref(in);
    in = json_array();
    for (int i = 0; i <= WISPD_ROLE_MAX_PERMISSIONS; i++)
        json_array_append_new(in, json_string("storage.objects.list"));
    assert_null(wispd_iam_role_permissions(in, msg, sizeof(msg)));
    json_decref(in);
    out = wispd_iam_role_permissions(NULL, msg, sizeof(msg));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_true(wispd_iam_role_stage_valid("GA"));
    assert_true(wispd_iam_role_stage_valid("DISABLED"));
    assert_false(wispd_iam_role_stage_valid("ga"));
    json_t *known = wispd_iam_known_permissions();
    assert_true(json_array_size(known) > 10);
    for (size_t i = 1; i < json_array_size(known); i++)
        assert_true(strcmp(json_string_value(json_array_get(known, i - 1)),
                           json_string_value(json_array_get(known, i))) < 0);
    json_decref(known);
}

static void role_render(void **state)
{
    (void)state;
    json_t *stored = load("{\"name\":\"projects/p/roles/r\",\"title\":\"t\",\"stage\":\"GA\","
                          "\"includedPermissions\":[\"storage.objects.list\"],\"deleted\":true,"
                          "\"deleteTime\":1}");
    json_t *full = wispd_iam_role_render(stored, 5, 1);
    assert_non_null(json_object_get(full, "includedPermissions"));
    assert_true(json_is_true(json_object_get(full, "deleted")));
    assert_null(json_object_get(full, "deleteTime"));
    assert_string_equal(json_string_value(json_object_get(full, "etag")), "BwAAAAAAAAU=");
    json_t *basic = wispd_iam_role_render(stored, 5, 0);
    assert_null(json_object_get(basic, "includedPermissions"));
    json_t *pre = wispd_iam_role_render(wisp_iam_role_get("roles/viewer"), 0, 0);
    assert_string_equal(json_string_value(json_object_get(pre, "etag")), "AA==");
    assert_null(json_object_get(pre, "includedPermissions"));
    assert_null(json_object_get(pre, "deleted"));
    json_decref(pre);
    json_decref(basic);
    json_decref(full);
    json_decref(stored);
}

static void authorize_custom(void **state)
{
    (void)state;
    json_t *pol = load("{\"bindings\":[{\"role\":\"projects/p-1/roles/lister\",\"members\":[\"" SA
                       "\"]},{\"role\":\"projects/p-1/roles/gone\",\"members\":[\"" SA "\"]}]}");
    json_t *roles = load("{\"projects/p-1/roles/lister\":{\"stage\":\"GA\",\"includedPermissions\":"
                         "[\"storage.objects.list\"]},"
                         "\"projects/p-1/roles/gone\":{\"deleted\":true,\"includedPermissions\":"
                         "[\"storage.objects.delete\"]}}");
    const json_t *chain[1] = {pol};
    struct wisp_caller who = {.email = "app-sa@p-1.iam.gserviceaccount.com",
                              .is_service_account = 1};
    struct wisp_iam_target t = {.resource = "projects/p-1", .policies = chain, .n_policies = 1};
    /* Without the role documents, a custom role grants nothing. */
    assert_false(wisp_authorize(&who, "storage.objects.list", &t, NULL, 0));
    t.custom_roles = roles;
    assert_true(wisp_authorize(&who, "storage.objects.list", &t, NULL, 0));
    assert_false(wisp_authorize(&who, "storage.objects.get", &t, NULL, 0));
    /* Deleted: its bindings stay but grant nothing. */
    assert_false(wisp_authorize(&who, "storage.objects.delete", &t, NULL, 0));
    /* Disabled: the same. */
    json_object_set_new(json_object_get(roles, "projects/p-1/roles/lister"), "stage",
                        json_string("DISABLED"));
    assert_false(wisp_authorize(&who, "storage.objects.list", &t, NULL, 0));
    /* Another principal is not granted by the custom role. */
    json_object_set_new(json_object_get(roles, "projects/p-1/roles/lister"), "stage",
                        json_string("GA"));
    struct wisp_caller other = {.email = "other@p-1.iam.gserviceaccount.com",
                                .is_service_account = 1};
    assert_false(wisp_authorize(&other, "storage.objects.list", &t, NULL, 0));
    /* The indexed decision resolves custom roles the same way. */
    struct wisp_iam_index *ix = wisp_iam_index_build(pol);
    const struct wisp_iam_index *ixs[1] = {ix};
    t.indexes = ixs;
    assert_true(wisp_authorize(&who, "storage.objects.list", &t, NULL, 0));
    assert_false(wisp_authorize(&who, "storage.objects.delete", &t, NULL, 0));
    wisp_iam_index_free(ix);
    json_decref(roles);
    json_decref(pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids),
        cmocka_unit_test(path_decode),
        cmocka_unit_test(indexed_members),
        cmocka_unit_test(replace_member),
        cmocka_unit_test(role_permissions),
        cmocka_unit_test(role_render),
        cmocka_unit_test(authorize_custom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
