/* SPDX-License-Identifier: Apache-2.0 */
/* RS256 JWTs: sign and verify, and the refusals that matter: another key,
 * another algorithm (none, HS256), a tampered payload, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"

static char *key1, *key2;

static int setup(void **state)
{
    (void)state;
    key1 = wisp_rsa_generate_pem();
    key2 = wisp_rsa_generate_pem();
    return key1 && key2 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wisp_secret_free(key1, 0);
    wisp_secret_free(key2, 0);
    return 0;
}

static void sign_verify(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s, s:i}", "iss", "a@b.iam.gserviceaccount.com", "exp", 42);
    char *jwt = wisp_jwt_sign_rs256(claims, "kid-1", key1);
    assert_non_null(jwt);
    json_t *hdr = wisp_jwt_peek_header(jwt);
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
    json_decref(hdr);
    const char *why = NULL;
    char *pub = wisp_rsa_public_pem(key1);
    json_t *got = wisp_jwt_verify_rs256(jwt, pub, &why);
    assert_non_null(got);
    assert_true(json_equal(got, claims));
    json_decref(got);
    assert_null(wisp_jwt_verify_rs256(jwt, key2, &why));
    assert_string_equal(why, "bad signature");
    /* Flip one payload character: the signature no longer matches. */
    char *dot = strchr(jwt, '.') + 1;
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_null(wisp_jwt_verify_rs256(jwt, pub, &why));
    free(pub);
    free(jwt);
    json_decref(claims);
}

static char *forge(const char *header_json, const char *payload_json, const char *sig)
{
    char *h = wisp_b64url_encode((const unsigned char *)header_json, strlen(header_json));
    char *p = wisp_b64url_encode((const unsigned char *)payload_json, strlen(payload_json));
    char *out = wisp_xasprintf("%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return out;
}

static void refuses_other_algs(void **state)
{
    (void)state;
    const char *why;
    char *none = forge("{\"alg\":\"none\"}", "{\"iss\":\"x\"}", "");
    assert_null(wisp_jwt_verify_rs256(none, key1, &why));
    assert_string_equal(why, "alg must be RS256");
    char *hs = forge("{\"alg\":\"HS256\"}", "{\"iss\":\"x\"}", "c2ln");
    assert_null(wisp_jwt_verify_rs256(hs, key1, &why));
    char *embedded = forge("{\"alg\":\"RS256\",\"jwk\":{\"kty\":\"RSA\"}}", "{}", "c2ln");
    assert_null(wisp_jwt_verify_rs256(embedded, key1, &why));
    assert_null(wisp_jwt_verify_rs256("a.b", key1, &why));
    assert_null(wisp_jwt_verify_rs256("", key1, &why));
    assert_null(wisp_jwt_peek_header("%%%.x.y"));
    /* Found by fuzzing: cjose aborts on '=' inside a segment; such input
     * must be refused before it gets there. */
    assert_null(wisp_jwt_verify_rs256("eyJhbGciOiJSUzI1NiJ9.eyJzd=IiOiJzdHViIn0.c2ln", key1, &why));
    assert_null(wisp_jwt_verify_rs256("eyJhbGciOiJSUzI1NiJ9..c2ln", key1, &why));
    assert_null(wisp_jwt_verify_rs256("a.b.c.d", key1, &why));
    free(none);
    free(hs);
    free(embedded);
}

static void jwk_shape(void **state)
{
    (void)state;
    json_t *jwk = wisp_rsa_public_jwk(key1, "k");
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_null(json_object_get(jwk, "d"));
    json_decref(jwk);
    assert_null(wisp_rsa_public_pem("not a pem"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_verify),
        cmocka_unit_test(refuses_other_algs),
        cmocka_unit_test(jwk_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
