/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed access tokens: round trip, expiry, tampering, unknown and rotated
 * keys, token ids and delegation chains, keys that seal from a time on, the
 * rotation schedule, and that nothing readable leaks into the token text. */
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

static void jti_and_chain(void **state)
{
    (void)state;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    wisp_token_keyring_add(kr, 1, K1);
    struct wisp_token_claims in = {.iat = 1, .exp = 100, .email = "g@p.iam.gserviceaccount.com",
                                   .is_service_account = 1,
                                   .chain = "[{\"caller\":{\"email\":\"a@b.com\"}}]"},
                             a, b;
    char *t1 = wisp_token_seal(kr, &in), *t2 = wisp_token_seal(kr, &in);
    const char *why;
    assert_int_equal(wisp_token_open(kr, t1, 50, &a, &why), WISP_OK);
    assert_int_equal(wisp_token_open(kr, t2, 50, &b, &why), WISP_OK);
    /* Every token gets its own id; the chain travels sealed. */
    assert_int_equal(strlen(a.jti), 2 * WISP_TOKEN_JTI_LEN);
    assert_string_not_equal(a.jti, b.jti);
    assert_string_equal(a.chain, in.chain);
    assert_null(strstr(t1, "a@b.com"));
    /* A given id is kept. */
    memcpy(in.jti, a.jti, sizeof(in.jti));
    in.chain = NULL;
    char *t3 = wisp_token_seal(kr, &in);
    struct wisp_token_claims c;
    assert_int_equal(wisp_token_open(kr, t3, 50, &c, &why), WISP_OK);
    assert_string_equal(c.jti, a.jti);
    assert_null(c.chain);
    /* A malformed given id seals nothing. */
    strcpy(in.jti, "not-hex");
    assert_null(wisp_token_seal(kr, &in));
    wisp_token_claims_free(&a);
    wisp_token_claims_free(&b);
    wisp_token_claims_free(&c);
    wisp_secret_free(t1, 0);
    wisp_secret_free(t2, 0);
    wisp_secret_free(t3, 0);
    wisp_token_keyring_free(kr);
}

static uint32_t kid_of(const char *tok)
{
    /* base64url of the first 3 bytes is the first 4 characters; the kid is
     * small, so its top byte is 0 and the next two say it. */
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = tok + 8;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 6) | (uint32_t)(strchr(a, p[i]) - a);
    return v; /* kid >> 8 */
}

static void scheduled_keys(void **state)
{
    (void)state;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    struct wisp_token_key keys[2] = {{.kid = 1 << 8, .not_before = 0},
                                     {.kid = 2 << 8, .not_before = 500}};
    memcpy(keys[0].key, K1, sizeof(K1));
    memcpy(keys[1].key, K2, sizeof(K2));
    wisp_token_keyring_replace(kr, keys, 2);
    assert_int_equal(wisp_token_keyring_size(kr), 2);
    struct wisp_token_claims in = fed(), out;
    in.iat = 400;
    char *before = wisp_token_seal(kr, &in);
    in.iat = 500;
    char *after = wisp_token_seal(kr, &in);
    /* The new key is loaded before it seals, so every replica can open its
     * tokens by the time it does. */
    assert_int_equal(kid_of(before), 1);
    assert_int_equal(kid_of(after), 2);
    /* Dropping the old key cuts off only the tokens it sealed. */
    wisp_token_keyring_replace(kr, keys + 1, 1);
    const char *why;
    assert_int_equal(wisp_token_open(kr, after, 600, &out, &why), WISP_OK);
    wisp_token_claims_free(&out);
    assert_int_equal(wisp_token_open(kr, before, 600, &out, &why), WISP_EUNAUTH);
    assert_string_equal(why, "unknown key");
    /* Only keys in the future: the earliest to come seals. */
    keys[1].not_before = 10000;
    wisp_token_keyring_replace(kr, keys + 1, 1);
    char *early = wisp_token_seal(kr, &in);
    assert_int_equal(kid_of(early), 2);
    wisp_token_keyring_replace(kr, NULL, 0);
    assert_null(wisp_token_seal(kr, &in));
    wisp_secret_free(before, 0);
    wisp_secret_free(after, 0);
    wisp_secret_free(early, 0);
    wisp_token_keyring_free(kr);
}

static void rotation_plan(void **state)
{
    (void)state;
    const int64_t day = 86400, keep = WISP_TOKEN_MAX_LIFETIME + WISP_TOKEN_LEEWAY;
    int make_new = -1, drop[3];
    /* No keys: make one. */
    wisp_token_rotation_plan(NULL, 0, 1000, day, &make_new, drop);
    assert_int_equal(make_new, 1);
    struct wisp_token_key_age k[3] = {{1, 0, 0}, {2, day, day + 5}, {3, 2 * day, 2 * day + 5}};
    /* One key, not yet due. */
    wisp_token_rotation_plan(k, 1, day - 1, day, &make_new, drop);
    assert_int_equal(make_new, 0);
    assert_int_equal(drop[0], 0);
    /* Due: a new one; the only key is never dropped. */
    wisp_token_rotation_plan(k, 1, 5 * day, day, &make_new, drop);
    assert_int_equal(make_new, 1);
    assert_int_equal(drop[0], 0);
    /* Key 2 is loaded but does not seal yet: key 1 stays. */
    wisp_token_rotation_plan(k, 2, day + 1, day, &make_new, drop);
    assert_int_equal(make_new, 0);
    assert_int_equal(drop[0] + drop[1], 0);
    /* Key 2 has sealed for less than a token's lifetime: key 1 stays. */
    wisp_token_rotation_plan(k, 2, day + 5 + keep - 1, day, &make_new, drop);
    assert_int_equal(drop[0], 0);
    /* ... and once every token key 1 sealed has expired, it goes. */
    wisp_token_rotation_plan(k, 2, day + 5 + keep, day, &make_new, drop);
    assert_int_equal(drop[0], 1);
    assert_int_equal(drop[1], 0);
    /* In any order: 1 and 2 retired, 3 seals. */
    struct wisp_token_key_age r[3] = {k[2], k[0], k[1]};
    wisp_token_rotation_plan(r, 3, 2 * day + 5 + keep, day, &make_new, drop);
    assert_int_equal(drop[0], 0);
    assert_int_equal(drop[1], 1);
    assert_int_equal(drop[2], 1);
    assert_int_equal(make_new, 0);
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
        cmocka_unit_test(jti_and_chain),
        cmocka_unit_test(scheduled_keys),
        cmocka_unit_test(rotation_plan),
        cmocka_unit_test(empty_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
