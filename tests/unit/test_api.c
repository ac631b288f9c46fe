/* SPDX-License-Identifier: Apache-2.0 */
/* Google API conventions without a socket: status tables, strict body
 * schemas, `fields` selectors, page tokens, base64, form decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "wisp/url.h"

static void status_tables(void **state)
{
    (void)state;
    assert_string_equal(wisp_api_status_for(400), "INVALID_ARGUMENT");
    assert_string_equal(wisp_api_status_for(401), "UNAUTHENTICATED");
    assert_string_equal(wisp_api_status_for(403), "PERMISSION_DENIED");
    assert_string_equal(wisp_api_status_for(404), "NOT_FOUND");
    assert_string_equal(wisp_api_status_for(409), "ABORTED");
    assert_string_equal(wisp_api_status_for(429), "RESOURCE_EXHAUSTED");
    assert_string_equal(wisp_api_status_for(503), "UNAVAILABLE");
    assert_int_equal(wisp_api_code_for(WISP_EABORTED), 409);
    assert_string_equal(wisp_api_status_for_err(WISP_EABORTED), "ABORTED");
    assert_string_equal(wisp_api_status_for_err(WISP_EEXIST), "ALREADY_EXISTS");
    assert_int_equal(wisp_api_code_for(WISP_EUNAUTH), 401);
}

static const struct wisp_jfield inner[] = {{"title", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield schema[] = {
    {"version", WISP_J_INT},
    {"items", WISP_J_ARRAY, WISP_J_OBJECT, inner},
    {"cond", WISP_J_OBJECT, 0, inner},
    {"flag", WISP_J_BOOL},
    {NULL}};

static int check(const char *text, char *msg)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    int rc = wisp_api_check(v, schema, "", msg, 256);
    json_decref(v);
    return rc;
}

static void strict_bodies(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(check("{\"version\":3,\"items\":[{\"title\":\"a\"}],\"flag\":true}", msg),
                     WISP_OK);
    assert_int_equal(check("{\"version\":\"3\"}", msg), WISP_OK); /* proto3 int as string */
    assert_int_equal(check("{\"version\":null}", msg), WISP_OK);
    assert_int_equal(check("{\"verison\":3}", msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "Unknown name \"verison\""));
    assert_int_equal(check("{\"cond\":{\"titel\":\"x\"}}", msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "at 'cond'"));
    assert_int_equal(check("{\"items\":[{\"title\":1}]}", msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "items[0].title"));
    assert_int_equal(check("{\"version\":\"x3\"}", msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "TYPE_INT32"));
    assert_int_equal(check("{\"items\":{}}", msg), WISP_EINVAL);
    assert_int_equal(check("{\"flag\":\"true\"}", msg), WISP_EINVAL);
}

static void fields(void **state)
{
    (void)state;
    json_t *o = json_loads("{\"bindings\":[{\"role\":\"r\",\"members\":[\"m\"]}],\"etag\":\"e\","
                           "\"version\":1,\"kind\":\"k\"}", 0, NULL);
    assert_int_equal(wisp_api_fields_apply(o, "bindings,etag"), WISP_OK);
    assert_non_null(json_object_get(o, "bindings"));
    assert_non_null(json_object_get(o, "etag"));
    assert_null(json_object_get(o, "version"));
    assert_null(json_object_get(o, "kind"));
    json_decref(o);

    o = json_loads("{\"items\":[{\"name\":\"a\",\"id\":1,\"x\":2}],\"nextPageToken\":\"t\","
                   "\"kind\":\"k\"}", 0, NULL);
    assert_int_equal(wisp_api_fields_apply(o, "items(name,id),nextPageToken"), WISP_OK);
    json_t *item = json_array_get(json_object_get(o, "items"), 0);
    assert_non_null(json_object_get(item, "name"));
    assert_null(json_object_get(item, "x"));
    assert_null(json_object_get(o, "kind"));
    json_decref(o);

    o = json_loads("{\"a\":{\"b\":1,\"c\":2}}", 0, NULL);
    assert_int_equal(wisp_api_fields_apply(o, "a/b"), WISP_OK);
    assert_null(json_object_get(json_object_get(o, "a"), "c"));
    assert_int_equal(wisp_api_fields_apply(o, "a("), WISP_EINVAL);
    assert_int_equal(wisp_api_fields_apply(o, ",,"), WISP_EINVAL);
    assert_int_equal(wisp_api_fields_apply(o, "a)"), WISP_EINVAL);
    json_decref(o);
}

static void paging(void **state)
{
    (void)state;
    char *t = wisp_api_page_token_make("projects/p-1");
    char *back = wisp_api_page_token_parse(t);
    assert_string_equal(back, "projects/p-1");
    free(t);
    free(back);
    back = wisp_api_page_token_parse(NULL);
    assert_string_equal(back, "");
    free(back);
    assert_null(wisp_api_page_token_parse("!!"));
    assert_null(wisp_api_page_token_parse("AA")); /* decodes to a NUL byte */
    assert_int_equal(wisp_api_page_size(NULL, 50, 100), 50);
    assert_int_equal(wisp_api_page_size("500", 50, 100), 100);
    assert_int_equal(wisp_api_page_size("7", 50, 100), 7);
    assert_int_equal(wisp_api_page_size("-1", 50, 100), -1);
    assert_int_equal(wisp_api_page_size("7x", 50, 100), -1);
}

static void base64(void **state)
{
    (void)state;
    size_t n;
    char *e = wisp_b64url_encode((const unsigned char *)"\xfb\xff", 2);
    assert_string_equal(e, "-_8");
    unsigned char *d = wisp_b64url_decode(e, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "\xfb\xff", 2);
    free(d);
    free(e);
    e = wisp_b64_encode((const unsigned char *)"hello", 5);
    assert_string_equal(e, "aGVsbG8=");
    d = wisp_b64_decode(e, &n);
    assert_int_equal(n, 5);
    free(d);
    free(e);
    assert_null(wisp_b64url_decode("ab+c", &n));
    assert_null(wisp_b64_decode("ab-c", &n));
    assert_null(wisp_b64_decode("a", &n));
}

static void form(void **state)
{
    (void)state;
    const char *f = "grant_type=urn%3Aietf%3Aparams&assertion=a.b.c&x=1+2&empty=&flag";
    char *v = wisp_form_get(f, strlen(f), "grant_type");
    assert_string_equal(v, "urn:ietf:params");
    free(v);
    v = wisp_form_get(f, strlen(f), "x");
    assert_string_equal(v, "1 2");
    free(v);
    v = wisp_form_get(f, strlen(f), "empty");
    assert_string_equal(v, "");
    free(v);
    v = wisp_form_get(f, strlen(f), "flag");
    assert_string_equal(v, "");
    free(v);
    assert_null(wisp_form_get(f, strlen(f), "missing"));
    assert_null(wisp_form_get("a=%00", 5, "a"));
    assert_null(wisp_form_get("a=%zz", 5, "a"));
    assert_null(wisp_form_get("a=%4", 4, "a"));
    v = wisp_url_escape("a b/c");
    assert_string_equal(v, "a%20b%2Fc");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_tables), cmocka_unit_test(strict_bodies),
        cmocka_unit_test(fields),        cmocka_unit_test(paging),
        cmocka_unit_test(base64),        cmocka_unit_test(form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
