/* SPDX-License-Identifier: Apache-2.0 */
/* OAuth 2.0 token endpoint for service-account keys (RFC 7523 JWT-bearer
 * grant): a client signs a JWT with its key; wisp checks it against the
 * public half it keeps and answers with a sealed access token. This is how
 * the real gcloud and Google's libraries keep their own credentials fresh.
 * Errors use RFC 6749's shape ({"error","error_description"}), as Google's
 * token endpoint does, not the google.rpc envelope. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/jose.h"
#include "wisp/log.h"
#include "wisp/url.h"
#include "../wispd.h"

#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define LEEWAY 60
#define DEFAULT_SCOPE "https://www.googleapis.com/auth/cloud-platform"

static void oauth_error(struct wisp_http_req *req, int code, const char *error, const char *desc)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    wisp_http_respond(req, code, "application/json; charset=utf-8", text, strlen(text));
    free(text);
}

/* The audiences a key's JWT may name: Google's token URLs, and this
 * endpoint as the client reached it (an overridden token_uri). */
static int audience_ok(struct wisp_http_req *req, const char *aud)
{
    static const char *const google[] = {"https://oauth2.googleapis.com/token",
                                         "https://www.googleapis.com/oauth2/v4/token",
                                         "https://accounts.google.com/o/oauth2/token", NULL};
    for (int i = 0; google[i]; i++) {
        if (strcmp(aud, google[i]) == 0)
            return 1;
    }
    const char *host = wisp_http_header(req, "host");
    if (!host)
        return 0;
    const char *p = strstr(aud, "://");
    if (!p || (strncmp(aud, "https://", 8) != 0 && strncmp(aud, "http://", 7) != 0))
        return 0;
    p += 3;
    size_t hl = strlen(host);
    return strncmp(p, host, hl) == 0 && p[hl] == '/';
}

static void token(struct wisp_http_req *req)
{
    char *grant = wisp_form_get(req->body, req->body_len, "grant_type");
    char *assertion = wisp_form_get(req->body, req->body_len, "assertion");
    json_t *hdr = NULL, *key = NULL, *claims = NULL;
    struct wisp_txn *txn = NULL;
    char *tok = NULL;
    if (!grant) {
        oauth_error(req, 400, "invalid_request", "Missing required parameter: grant_type");
        goto out;
    }
    if (strcmp(grant, JWT_BEARER) != 0) {
        oauth_error(req, 400, "unsupported_grant_type", "Invalid grant_type.");
        goto out;
    }
    if (!assertion || !*assertion) {
        oauth_error(req, 400, "invalid_request", "Missing required parameter: assertion");
        goto out;
    }
    hdr = wisp_jwt_peek_header(assertion);
    const char *kid = hdr ? json_string_value(json_object_get(hdr, "kid")) : NULL;
    if (!kid) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: the header names no key (kid).");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        oauth_error(req, 503, "temporarily_unavailable", "The token store is busy.");
        goto out;
    }
    if (wispd_get_json(txn, "sakey", kid, &key, NULL) != WISP_OK ||
        json_is_true(json_object_get(key, "disabled"))) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT Signature.");
        goto out;
    }
    const char *why;
    claims = wisp_jwt_verify_rs256(assertion,
                                   json_string_value(json_object_get(key, "publicKeyPem")), &why);
    if (!claims) {
        wisp_log_info("oauth2", "rejected assertion for key %.40s: %s", kid, why);
        oauth_error(req, 400, "invalid_grant", "Invalid JWT Signature.");
        goto out;
    }
    const char *email = json_string_value(json_object_get(key, "email"));
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *aud = json_string_value(json_object_get(claims, "aud"));
    json_t *iat = json_object_get(claims, "iat"), *exp = json_object_get(claims, "exp");
    int64_t now = (int64_t)time(NULL);
    if (!iss || strcmp(iss, email) != 0 || (sub && strcmp(sub, email) != 0)) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: iss must be the key's account.");
        goto out;
    }
    if (!aud || !audience_ok(req, aud)) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: the audience is not this token "
                                               "endpoint.");
        goto out;
    }
    if (!json_is_integer(iat) || !json_is_integer(exp)) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: iat and exp are required.");
        goto out;
    }
    int64_t i = json_integer_value(iat), e = json_integer_value(exp);
    if (e <= i || e - i > 3600) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token "
                                               "(60 minutes) and in a reasonable timeframe.");
        goto out;
    }
    if (i > now + LEEWAY || e < now - LEEWAY) {
        oauth_error(req, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token "
                                               "(60 minutes) and in a reasonable timeframe. "
                                               "Check your iat and exp values.");
        goto out;
    }
    json_t *sa = NULL;
    if (wispd_get_json(txn, "sa", email, &sa, NULL) != WISP_OK ||
        json_is_true(json_object_get(sa, "disabled"))) {
        json_decref(sa);
        oauth_error(req, 400, "invalid_grant", "Invalid grant: account not found");
        goto out;
    }
    json_decref(sa);
    const char *scope = json_string_value(json_object_get(claims, "scope"));
    struct wisp_token_claims tc = {
        .iat = now, .exp = now + WISP_TOKEN_DEFAULT_LIFETIME, .is_service_account = 1,
        .email = (char *)email, .scopes = (char *)(scope ? scope : DEFAULT_SCOPE)};
    tok = wisp_token_seal(wispd.keyring, &tc);
    if (!tok) {
        oauth_error(req, 500, "server_error", "No token key is configured.");
        goto out;
    }
    json_t *resp = json_pack("{s:s, s:i, s:s}", "access_token", tok, "expires_in",
                             WISP_TOKEN_DEFAULT_LIFETIME - 1, "token_type", "Bearer");
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    wisp_http_add_header(req, "Cache-Control", "no-store");
    wisp_http_respond(req, 200, "application/json; charset=utf-8", text, strlen(text));
    wisp_secret_free(text, 0);
out:
    if (tok)
        wisp_secret_free(tok, 0);
    json_decref(claims);
    json_decref(key);
    json_decref(hdr);
    wisp_store_rollback(txn);
    free(grant);
    if (assertion)
        wisp_secret_free(assertion, 0);
}

/* GET/POST /oauth2/v3/tokeninfo?access_token=…: what a token stands for. */
static void tokeninfo(struct wisp_http_req *req)
{
    const char *q = wisp_http_query(req, "access_token");
    char *form = q ? NULL : wisp_form_get(req->body, req->body_len, "access_token");
    const char *t = q ? q : form;
    struct wisp_token_claims c;
    const char *why = "missing access_token";
    if (!t || wisp_token_open(wispd.keyring, t, (int64_t)time(NULL), &c, &why) != WISP_OK) {
        oauth_error(req, 400, "invalid_token", "Invalid Value");
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    char *principal = wisp_token_principal(&c);
    json_t *o = json_pack("{s:s, s:I, s:s}", "scope", c.scopes ? c.scopes : "", "expires_in",
                          (json_int_t)(c.exp - now), "exp", "");
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)c.exp);
    json_object_set_new(o, "exp", json_string(exp));
    if (c.email) {
        json_object_set_new(o, "email", json_string(c.email));
        json_object_set_new(o, "email_verified", json_string("true"));
        json_object_set_new(o, "azp", json_string(c.email));
        json_object_set_new(o, "sub", json_string(c.email));
    } else {
        json_object_set_new(o, "sub", json_string(principal));
    }
    free(principal);
    wisp_token_claims_free(&c);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    wisp_http_respond(req, 200, "application/json; charset=utf-8", text, strlen(text));
    free(text);
out:
    if (form)
        wisp_secret_free(form, 0);
}

/* Public keys, as www.googleapis.com publishes them: the ID-token keys at
 * /oauth2/v1/certs (x509 map) and /oauth2/v3/certs (JWKS), and each service
 * account's system key at /service_accounts/v1/metadata/{x509,jwk}/EMAIL
 * (also the older /robot/v1/metadata/x509/EMAIL). No authentication. */
static int certs(struct wisp_http_req *req, const char *path)
{
    const char *kind = NULL, *name = NULL;
    int jwks = 0;
    if (strncmp(path, "/oauth2", 7) == 0)
        path += 7;
    if (strcmp(path, "/v1/certs") == 0 || strcmp(path, "/v3/certs") == 0) {
        kind = "googlekey";
        name = "accounts.google.com";
        jwks = path[2] == '3';
    } else if (strncmp(path, "/service_accounts/v1/metadata/x509/", 35) == 0) {
        kind = "sasyskey";
        name = path + 35;
    } else if (strncmp(path, "/robot/v1/metadata/x509/", 24) == 0) {
        kind = "sasyskey";
        name = path + 24;
    } else if (strncmp(path, "/service_accounts/v1/metadata/jwk/", 34) == 0) {
        kind = "sasyskey";
        name = path + 34;
        jwks = 1;
    } else {
        return 0;
    }
    struct wisp_txn *txn = NULL;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        wispd_store_error(req, WISP_EBUSY);
        return 1;
    }
    json_t *keys = wispd_public_keys(txn, kind, name, jwks);
    wisp_store_rollback(txn);
    if (!keys)
        keys = jwks ? json_pack("{s:[]}", "keys") : json_object();
    wisp_http_add_header(req, "Cache-Control", "public, max-age=3600");
    wisp_api_json(req, 200, keys);
    return 1;
}

/* OIDC discovery for https://accounts.google.com, the issuer of ID tokens. */
static void openid_configuration(struct wisp_http_req *req)
{
    wisp_api_json(req, 200,
                  json_pack("{s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s]}", "issuer",
                            "https://accounts.google.com", "jwks_uri",
                            "https://www.googleapis.com/oauth2/v3/certs", "token_endpoint",
                            "https://oauth2.googleapis.com/token", "id_token_signing_alg_values_"
                            "supported", "RS256", "response_types_supported", "id_token",
                            "subject_types_supported", "public", "claims_supported", "aud"));
}

void wispd_oauth2(struct wisp_http_req *req, const char *path)
{
    if (strcmp(req->method, "GET") == 0) {
        if (strcmp(path, "/.well-known/openid-configuration") == 0) {
            openid_configuration(req);
            return;
        }
        if (certs(req, path))
            return;
    }
    if ((strcmp(path, "/token") == 0 || strcmp(path, "/oauth2/v4/token") == 0) &&
        strcmp(req->method, "POST") == 0)
        token(req);
    else if (strcmp(path, "/tokeninfo") == 0 || strcmp(path, "/oauth2/v3/tokeninfo") == 0)
        tokeninfo(req);
    else
        oauth_error(req, 404, "invalid_request", "Unknown OAuth 2.0 endpoint.");
}
