/* SPDX-License-Identifier: Apache-2.0 */
/* RS256 JWS sign/verify through cjose, with keys decoded once and kept
 * (keycache.c). cjose takes the algorithm from the token's header, so wisp
 * checks "alg" itself first: without that, a token could pick a weaker or
 * keyless algorithm ("none", HS256 keyed with the public key). */
#include <cjose/cjose.h>
#include <openssl/core_names.h>
#include <string.h>
#include "jose/jose_int.h"
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"

#define MAX_JWT 16384

cjose_jwk_t *wisp__pem_to_jwk(const char *pem)
{
    EVP_PKEY *pkey = wisp__pem_to_pkey(pem);
    if (!pkey)
        return NULL;
    static const char *const names[] = {
        OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_N,        OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,  OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    unsigned char *v[8] = {0};
    size_t len[8] = {0};
    for (int i = 0; i < 8; i++)
        v[i] = wisp__rsa_param(pkey, names[i], &len[i]);
    EVP_PKEY_free(pkey);
    cjose_jwk_rsa_keyspec spec = {
        .e = v[0], .elen = len[0], .n = v[1], .nlen = len[1],
        .d = v[2], .dlen = v[2] ? len[2] : 0, .p = v[3], .plen = v[3] ? len[3] : 0,
        .q = v[4], .qlen = v[4] ? len[4] : 0, .dp = v[5], .dplen = v[5] ? len[5] : 0,
        .dq = v[6], .dqlen = v[6] ? len[6] : 0, .qi = v[7], .qilen = v[7] ? len[7] : 0};
    cjose_err cerr;
    cjose_jwk_t *jwk = (v[0] && v[1]) ? cjose_jwk_create_RSA_spec(&spec, &cerr) : NULL;
    for (int i = 0; i < 8; i++) {
        if (v[i])
            wisp_secret_free(v[i], len[i] ? len[i] : 1);
    }
    return jwk;
}

json_t *wisp_jwt_peek_header(const char *jwt)
{
    const char *dot = strchr(jwt, '.');
    if (!dot || (size_t)(dot - jwt) > MAX_JWT)
        return NULL;
    char *part = wisp_xstrndup(jwt, (size_t)(dot - jwt));
    size_t n;
    unsigned char *raw = wisp_b64url_decode(part, &n);
    free(part);
    if (!raw)
        return NULL;
    json_t *h = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (h && !json_is_object(h)) {
        json_decref(h);
        h = NULL;
    }
    return h;
}

/* The compact form, checked before cjose sees it: exactly three segments of
 * unpadded base64url, header and payload non-empty. cjose asserts (aborts
 * the process) on some malformed input, such as '=' inside a segment, so
 * nothing else may reach it. */
static int compact_ok(const char *jwt, size_t len)
{
    int dots = 0;
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        char c = jwt[i];
        if (c == '.') {
            if (seg == 0 && dots < 2)
                return 0;
            dots++;
            seg = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        seg++;
    }
    return dots == 2 && seg > 0;
}

json_t *wisp_jwt_verify_rs256(const char *jwt, const char *key_pem, const char **why)
{
    size_t len = strnlen(jwt, MAX_JWT + 1);
    if (len > MAX_JWT) {
        *why = "token too large";
        return NULL;
    }
    json_t *hdr = wisp_jwt_peek_header(jwt);
    const char *alg = hdr ? json_string_value(json_object_get(hdr, "alg")) : NULL;
    if (!hdr) {
        *why = "malformed header";
        return NULL;
    }
    if (!alg || strcmp(alg, "RS256") != 0) {
        json_decref(hdr);
        *why = "alg must be RS256";
        return NULL;
    }
    json_decref(hdr);
    if (!compact_ok(jwt, len)) {
        *why = "malformed token";
        return NULL;
    }
    cjose_err cerr;
    json_t *claims = NULL;
    cjose_jwk_t *jwk = NULL;
    cjose_jws_t *jws = cjose_jws_import(jwt, len, &cerr);
    if (!jws) {
        *why = "malformed token";
        goto out;
    }
    jwk = wisp__pem_to_jwk_cached(key_pem);
    if (!jwk) {
        *why = "unusable key";
        goto out;
    }
    if (!cjose_jws_verify(jws, jwk, &cerr)) {
        *why = "bad signature";
        goto out;
    }
    uint8_t *pt;
    size_t pt_len;
    if (!cjose_jws_get_plaintext(jws, &pt, &pt_len, &cerr)) {
        *why = "no payload";
        goto out;
    }
    claims = json_loadb((const char *)pt, pt_len, JSON_REJECT_DUPLICATES, NULL);
    if (claims && !json_is_object(claims)) {
        json_decref(claims);
        claims = NULL;
    }
    if (!claims)
        *why = "payload is not a JSON object";
out:
    if (jwk)
        wisp__jwk_release_cached(jwk);
    if (jws)
        cjose_jws_release(jws);
    return claims;
}

char *wisp_jwt_sign_rs256(const json_t *claims, const char *kid, const char *key_pem)
{
    cjose_err cerr;
    char *out = NULL;
    cjose_jws_t *jws = NULL;
    char *payload = json_dumps(claims, JSON_COMPACT);
    cjose_jwk_t *jwk = wisp__pem_to_jwk_cached(key_pem);
    cjose_header_t *hdr = cjose_header_new(&cerr);
    if (!payload || !jwk || !hdr)
        goto out;
    if (!cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &cerr) ||
        !cjose_header_set(hdr, "typ", "JWT", &cerr) ||
        (kid && !cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr)))
        goto out;
    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
    const char *ser;
    if (jws && cjose_jws_export(jws, &ser, &cerr))
        out = wisp_xstrdup(ser);
out:
    if (jws)
        cjose_jws_release(jws);
    if (hdr)
        cjose_header_release(hdr);
    if (jwk)
        wisp__jwk_release_cached(jwk);
    free(payload);
    return out;
}
