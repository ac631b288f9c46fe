/* SPDX-License-Identifier: Apache-2.0 */
/* STS request shapes: the encodings clients use, and the refusals of
 * SECURITY.md §C28 (wrong types, missing fields, duplicates, oversize). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdio.h>
#include "wisp/sts.h"

#define AUD "identitynamespace:p-1.svc.id.goog:https://container.googleapis.com/v1/projects/p-1/" \
            "locations/us-central1/clusters/c"
#define FORM_OK                                                                                    \
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"                         \
    "&audience=identitynamespace%3Ap-1.svc.id.goog%3Ahttps%3A%2F%2Fcontainer.googleapis.com%2Fv1" \
    "%2Fprojects%2Fp-1%2Flocations%2Fus-central1%2Fclusters%2Fc"                                   \
    "&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"                              \
    "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"                \
    "&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"

static enum wisp_err parse(const char *body, const char *ct, struct wisp_sts_req *r,
                           const char **code)
{
    char why[256];
    return wisp_sts_req_parse(body, strlen(body), ct, r, code, why, sizeof(why));
}

static void form_and_json(void **state)
{
    (void)state;
    struct wisp_sts_req r;
    const char *code;
    assert_int_equal(parse(FORM_OK, "application/x-www-form-urlencoded", &r, &code), WISP_OK);
    assert_string_equal(r.pool, "p-1.svc.id.goog");
    assert_string_equal(r.provider, "https://container.googleapis.com/v1/projects/p-1/locations/"
                                    "us-central1/clusters/c");
    assert_string_equal(r.subject_token, "a.b.c");
    wisp_sts_req_free(&r);
    const char *camel = "{\"grantType\":\"" WISP_STS_GRANT "\",\"audience\":\"" AUD
                        "\",\"scope\":\"s\",\"subjectToken\":\"x.y.z\",\"subjectTokenType\":\"" WISP_STS_JWT
                        "\"}";
    assert_int_equal(parse(camel, "application/json", &r, &code), WISP_OK);
    assert_string_equal(r.subject_token, "x.y.z");
    wisp_sts_req_free(&r);
    const char *snake = "{\"grant_type\":\"" WISP_STS_GRANT "\",\"audience\":\"//iam.googleapis.com/"
                        "projects/1/locations/global/workloadIdentityPools/p-1.svc.id.goog/providers/x"
                        "\",\"scope\":\"s\",\"subject_token\":\"x.y.z\",\"subject_token_type\":\"" WISP_STS_JWT
                        "\"}";
    assert_int_equal(parse(snake, "application/json; charset=utf-8", &r, &code), WISP_OK);
    assert_string_equal(r.pool, "p-1.svc.id.goog");
    assert_null(r.provider);
    wisp_sts_req_free(&r);
}

static void refusals(void **state)
{
    (void)state;
    struct wisp_sts_req r;
    const char *code;
    static const struct {
        const char *body, *ct, *code;
    } cases[] = {
        {"grant_type=client_credentials&subject_token=a", "", "unsupported_grant_type"},
        {"subject_token=a", "", "invalid_request"},
        {FORM_OK "&subject_token=b", "", "invalid_request"}, /* duplicated field */
        {FORM_OK "&subject%5Ftoken=b", "", "invalid_request"}, /* ... with its name encoded */
        {"subject_token=%zz&" FORM_OK, "", "invalid_request"}, /* ... first copy malformed */
        {"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a"
         "&subject_token_type=urn%3Aietf%3Aparams%3Aaws%3Atoken-type%3Aaws4_request&scope=s",
         "", "invalid_request"},
        {"{\"grantType\":1}", "application/json", "invalid_request"},
        {"{\"grantType\":\"a\",\"grantType\":\"b\"}", "application/json", "invalid_request"},
        {"{\"nope\":\"x\"}", "application/json", "invalid_request"},
        {"not json", "application/json", "invalid_request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (parse(cases[i].body, cases[i].ct, &r, &code) != WISP_EINVAL)
            fail_msg("accepted case %zu", i);
        assert_string_equal(code, cases[i].code);
    }
    /* Missing scope, wrong requested type, bad audience. */
    char body[8192];
    snprintf(body, sizeof(body), "%s", FORM_OK);
    char *scope = strstr(body, "&scope=");
    memcpy(scope, "&scopX=", 7);
    assert_int_equal(parse(body, "", &r, &code), WISP_EINVAL);
    snprintf(body, sizeof(body), "%s&options=%0*d", FORM_OK, 5000, 0);
    assert_int_equal(parse(body, "", &r, &code), WISP_EINVAL);
    snprintf(body, sizeof(body), "%s", FORM_OK);
    char *aud = strstr(body, "audience=");
    memcpy(aud + 9, "garbage%3", 9);
    assert_int_equal(parse(body, "", &r, &code), WISP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(form_and_json),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
