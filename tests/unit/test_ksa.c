/* SPDX-License-Identifier: Apache-2.0 */
/* KSA token issuance and verification: the happy path, and every token
 * attack of SECURITY.md §C that a verifier alone decides (19-24, 26, 27). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/hmac.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"
#include "wisp/ksa.h"

#define ISS_A "https://container.googleapis.com/v1/projects/p-1/locations/us-central1/clusters/a"
#define ISS_B "https://container.googleapis.com/v1/projects/p-2/locations/us-central1/clusters/b"
#define POOL "p-1.svc.id.goog"
#define NOW 1800000000

static char *key_a, *key_b, *pub_a, *pub_b;
static struct wisp_ksa_key keys[2];

static int setup(void **state)
{
    (void)state;
    key_a = wisp_rsa_generate_pem();
    key_b = wisp_rsa_generate_pem();
    pub_a = wisp_rsa_public_pem(key_a);
    pub_b = wisp_rsa_public_pem(key_b);
    keys[0] = (struct wisp_ksa_key){"kid-a", ISS_A, pub_a};
    keys[1] = (struct wisp_ksa_key){"kid-b", ISS_B, pub_b};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wisp_secret_free(key_a, 0);
    wisp_secret_free(key_b, 0);
    free(pub_a);
    free(pub_b);
    return 0;
}

static struct wisp_ksa_claims good(void)
{
    struct wisp_ksa_claims c = {.iss = ISS_A, .aud = POOL, .iat = NOW - 10, .nbf = NOW - 10,
                                .exp = NOW + 3600, .ns = "ns-a", .sa = "app", .sa_uid = "sa-uid",
                                .pod = "pod-1", .pod_uid = "pod-uid", .node = "node-1",
                                .node_uid = "node-uid"};
    return c;
}

static enum wisp_err verify(const char *jwt, char *why)
{
    struct wisp_ksa_claims out;
    enum wisp_err err = wisp_ksa_verify(jwt, keys, 2, POOL, NOW, &out, why, 256);
    wisp_ksa_claims_free(&out);
    return err;
}

static void round_trip(void **state)
{
    (void)state;
    struct wisp_ksa_claims in = good(), out;
    char *jwt = wisp_ksa_sign(&in, "kid-a", key_a);
    char why[256];
    assert_int_equal(wisp_ksa_verify(jwt, keys, 2, POOL, NOW, &out, why, sizeof(why)), WISP_OK);
    assert_string_equal(out.ns, "ns-a");
    assert_string_equal(out.sa, "app");
    assert_string_equal(out.pod_uid, "pod-uid");
    assert_string_equal(out.iss, ISS_A);
    assert_non_null(out.jti);
    wisp_ksa_claims_free(&out);
    free(jwt);
}

/* A token with arbitrary claims and header fields, signed by key. */
static char *signed_with(json_t *claims, const char *kid, const char *key)
{
    char *jwt = wisp_jwt_sign_rs256(claims, kid, key);
    json_decref(claims);
    return jwt;
}

static json_t *claims_json(void)
{
    return json_pack("{s:[s], s:i, s:i, s:i, s:s, s:s, s:{s:s, s:{s:s, s:s}}}", "aud", POOL,
                     "iat", NOW - 10, "nbf", NOW - 10, "exp", NOW + 3600, "iss", ISS_A, "sub",
                     "system:serviceaccount:ns-a:app", "kubernetes.io", "namespace", "ns-a",
                     "serviceaccount", "name", "app", "uid", "u");
}

static char *forge(const char *header, const char *payload, const char *sig)
{
    char *h = wisp_b64url_encode((const unsigned char *)header, strlen(header));
    char *p = wisp_b64url_encode((const unsigned char *)payload, strlen(payload));
    char *out = wisp_xasprintf("%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return out;
}

static void refuses_bad_algorithms(void **state)
{
    (void)state;
    char why[256];
    json_t *c = claims_json();
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    static const char *const algs[] = {"none", "None", "NONE", "HS256", "RS384", "ES256", ""};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"kid-a\"}", algs[i]);
        char *t = forge(hdr, payload, "");
        assert_int_equal(verify(t, why), WISP_EUNAUTH);
        free(t);
    }
    /* Algorithm confusion: HS256 keyed with the issuer's public key PEM. */
    char *unsigned_part = forge("{\"alg\":\"HS256\",\"kid\":\"kid-a\"}", payload, "");
    unsigned_part[strlen(unsigned_part) - 1] = '\0';
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), pub_a, (int)strlen(pub_a), (unsigned char *)unsigned_part,
         strlen(unsigned_part), mac, &maclen);
    char *sig = wisp_b64url_encode(mac, maclen);
    char *t = wisp_xasprintf("%s.%s", unsigned_part, sig);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    free(sig);
    free(unsigned_part);
    free(payload);
}

static void refuses_header_keys_and_kid_abuse(void **state)
{
    (void)state;
    char why[256];
    /* Signed by a key wisp does not trust but naming a trusted kid: the
     * key always comes from the verifier's list, never the token. */
    char *attacker = wisp_rsa_generate_pem();
    char *t = signed_with(claims_json(), "kid-a", attacker);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    /* The same attacker token carrying its key in the header (jwk). */
    json_t *jwk = wisp_rsa_public_jwk(attacker, "kid-a");
    json_t *h = json_pack("{s:s, s:s, s:o}", "alg", "RS256", "kid", "kid-a", "jwk", jwk);
    char *hdr = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    json_t *c = claims_json();
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    t = forge(hdr, payload, "AAAA");
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    free(hdr);
    free(payload);
    wisp_secret_free(attacker, 0);
    static const char *const kids[] = {"../../dev/null", "' OR 1=1 --", "unknown", ""};
    for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
        t = signed_with(claims_json(), kids[i], key_a);
        assert_int_equal(verify(t, why), WISP_EUNAUTH);
        free(t);
    }
    char big[10001];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    t = signed_with(claims_json(), big, key_a);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
}

static void refuses_malformed(void **state)
{
    (void)state;
    char why[256];
    struct wisp_ksa_claims in = good();
    char *jwt = wisp_ksa_sign(&in, "kid-a", key_a);
    /* Truncated signature, two and four segments, empty. */
    char *t = wisp_xstrndup(jwt, strlen(jwt) - 10);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    t = wisp_xstrndup(jwt, (size_t)(strrchr(jwt, '.') - jwt));
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    t = wisp_xasprintf("%s.AAAA", jwt);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    assert_int_equal(verify("", why), WISP_EUNAUTH);
    /* Standard base64 characters in a base64url token. */
    t = wisp_xstrdup(jwt);
    char *sig = strrchr(t, '.') + 1;
    sig[0] = '+';
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    /* Duplicate keys in the header. */
    json_t *c = claims_json();
    char *payload = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    t = forge("{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"kid-a\"}", payload, "AAAA");
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    free(payload);
    free(jwt);
}

static void refuses_bad_claims(void **state)
{
    (void)state;
    char why[256];
    struct wisp_ksa_claims c;
    char *t;
#define REFUSED(mutation, expect_in_why)                                                           \
    do {                                                                                           \
        c = good();                                                                                \
        mutation;                                                                                  \
        t = wisp_ksa_sign(&c, "kid-a", key_a);                                                     \
        assert_int_equal(verify(t, why), WISP_EUNAUTH);                                            \
        if (!strstr(why, expect_in_why))                                                           \
            fail_msg("why '%s' lacks '%s'", why, expect_in_why);                                   \
        free(t);                                                                                   \
    } while (0)
    REFUSED(c.iss = ISS_B, "issuer");                     /* another cluster's URL, our key */
    REFUSED(c.aud = "p-2.svc.id.goog", "audience");       /* another pool */
    REFUSED(c.exp = NOW - 120, "expired");
    REFUSED((c.iat = NOW + 600, c.nbf = NOW + 600), "not valid yet");
    REFUSED(c.nbf = NOW + 600, "not valid yet");
    REFUSED((c.iat = NOW - 100, c.exp = NOW - 100 + 48 * 3600), "48 hours");
    REFUSED(c.ns = "a:b", "subject");
#undef REFUSED
    /* Within the leeway is fine. */
    c = good();
    c.iat = c.nbf = NOW + 30;
    t = wisp_ksa_sign(&c, "kid-a", key_a);
    assert_int_equal(verify(t, why), WISP_OK);
    free(t);
    /* A legacy secret-based token: no exp, no aud. */
    t = signed_with(json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "iss", ISS_A, "sub",
                              "system:serviceaccount:ns-a:app", "kubernetes.io", "namespace",
                              "ns-a", "serviceaccount", "name", "app"),
                    "kid-a", key_a);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    /* exp = 1e30 and a sub that disagrees with kubernetes.io. */
    json_t *cl = claims_json();
    json_object_set_new(cl, "exp", json_real(1e30));
    t = signed_with(cl, "kid-a", key_a);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    cl = claims_json();
    json_object_set_new(cl, "sub", json_string("system:serviceaccount:kube-system:admin"));
    t = signed_with(cl, "kid-a", key_a);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
}

static void cross_pool_replay(void **state)
{
    (void)state;
    char why[256];
    /* Cluster B's genuine token, presented for pool p-1: its aud names p-2. */
    struct wisp_ksa_claims c = good();
    c.iss = ISS_B;
    c.aud = "p-2.svc.id.goog";
    char *t = wisp_ksa_sign(&c, "kid-b", key_b);
    assert_int_equal(verify(t, why), WISP_EUNAUTH);
    free(t);
    /* ...and with only pool p-1's keys, B's key is unknown. */
    c.aud = POOL;
    t = wisp_ksa_sign(&c, "kid-b", key_b);
    struct wisp_ksa_claims out;
    assert_int_equal(wisp_ksa_verify(t, keys, 1, POOL, NOW, &out, why, sizeof(why)),
                     WISP_EUNAUTH);
    wisp_ksa_claims_free(&out);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(refuses_bad_algorithms),
        cmocka_unit_test(refuses_header_keys_and_kid_abuse),
        cmocka_unit_test(refuses_malformed),
        cmocka_unit_test(refuses_bad_claims),
        cmocka_unit_test(cross_pool_replay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
