/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed access tokens: round trip, expiry, tampering, unknown and rotated
 * keys, and that nothing readable leaks into the token text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/token.h"

static const unsigned char K1[WISP_TOKEN_KEY_LEN] = {1, 2, 3};
static const unsigned char K2[WISP_TOKEN_KEY_LEN] = {9, 8, 7};

static struct wisp_token_claims fed(void)
{
    struct wisp_token_claims c = {
        .iat = 1000, .exp = 4600, .project_number = "123456789012",
        .pool = "p.svc.id.goog", .ns = "ns-a", .ksa = "app", .ksa_uid = "u-1",
        .cluster = "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c",
        .scopes = "https://www.googleapis.com/auth/cloud-platform", .quota_project = "q"};
    return c;
}

static void round_trip(void **state)
{
    (void)state;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    wisp_token_keyring_add(kr, 1, K1);
    struct wisp_token_claims in = fed(), out;
    char *tok = wisp_token_seal(kr, &in);
    assert_non_null(tok);
    assert_int_equal(strncmp(tok, "ya29.", 5), 0);
    assert_null(strstr(tok, "ns-a"));
    const char *why;
    assert_int_equal(wisp_token_open(kr, tok, 2000, &out, &why), WISP_OK);
    assert_string_equal(out.ns, "ns-a");
    assert_string_equal(out.ksa, "app");
    assert_string_equal(out.quota_project, "q");
    assert_null(out.email);
    assert_int_equal(out.exp, 4600);
    char *p = wisp_token_principal(&out);
    assert_string_equal(p, "principal://iam.googleapis.com/projects/123456789012/locations/"
                           "global/workloadIdentityPools/p.svc.id.goog/subject/ns/ns-a/sa/app");
    free(p);
    wisp_token_claims_free(&out);
    wisp_secret_free(tok, 0);
    wisp_token_keyring_free(kr);
}

static void expired_and_tampered(void **state)
{
    (void)state;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    wisp_token_keyring_add(kr, 1, K1);
    struct wisp_token_claims in = {.iat = 1, .exp = 100, .email = "a@b.com",
                                   .is_service_account = 1}, out;
    char *tok = wisp_token_seal(kr, &in);
    const char *why;
    assert_int_equal(wisp_token_open(kr, tok, 100, &out, &why), WISP_EUNAUTH);
    assert_string_equal(why, "expired");
    size_t n = strlen(tok);
    for (size_t i = 8; i < n; i += 7) {
        char saved = tok[i];
        tok[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(wisp_token_open(kr, tok, 50, &out, &why), WISP_EUNAUTH);
        tok[i] = saved;
    }
    assert_int_equal(wisp_token_open(kr, tok, 50, &out, &why), WISP_OK);
    assert_string_equal(out.email, "a@b.com");
    assert_true(out.is_service_account);
    wisp_token_claims_free(&out);
    assert_int_equal(wisp_token_open(kr, "ya29.w1.", 50, &out, &why), WISP_EUNAUTH);
    assert_int_equal(wisp_token_open(kr, "garbage", 50, &out, &why), WISP_EUNAUTH);
    assert_int_equal(wisp_token_open(kr, "ya29.w1.!!!!", 50, &out, &why), WISP_EUNAUTH);
    wisp_secret_free(tok, 0);
    wisp_token_keyring_free(kr);
}

static void rotation(void **state)
{
    (void)state;
    struct wisp_token_keyring *old = wisp_token_keyring_new(), *both = wisp_token_keyring_new(),
                              *other = wisp_token_keyring_new();
    wisp_token_keyring_add(old, 1, K1);
    wisp_token_keyring_add(both, 2, K2);
    wisp_token_keyring_add(both, 1, K1);
    wisp_token_keyring_add(other, 1, K2);
    struct wisp_token_claims in = fed(), out;
    char *t_old = wisp_token_seal(old, &in);
    char *t_new = wisp_token_seal(both, &in);
    const char *why;
    /* A token sealed before rotation still opens after it. */
    assert_int_equal(wisp_token_open(both, t_old, 2000, &out, &why), WISP_OK);
    wisp_token_claims_free(&out);
    /* The newest key seals: the old ring does not know it. */
    assert_int_equal(wisp_token_open(old, t_new, 2000, &out, &why), WISP_EUNAUTH);
    assert_string_equal(why, "unknown key");
    /* Same kid, other key material: the seal does not verify. */
    assert_int_equal(wisp_token_open(other, t_old, 2000, &out, &why), WISP_EUNAUTH);
    assert_string_equal(why, "bad seal");
    wisp_secret_free(t_old, 0);
    wisp_secret_free(t_new, 0);
    wisp_token_keyring_free(old);
    wisp_token_keyring_free(both);
    wisp_token_keyring_free(other);
}

static void empty_ring(void **state)
{
    (void)state;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    struct wisp_token_claims in = fed();
    assert_null(wisp_token_seal(kr, &in));
    wisp_token_keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(expired_and_tampered),
        cmocka_unit_test(rotation),
        cmocka_unit_test(empty_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
