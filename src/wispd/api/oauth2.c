/* SPDX-License-Identifier: Apache-2.0 */
/* OAuth 2.0 token endpoint for service-account keys (RFC 7523 JWT-bearer
 * grant): a client signs a JWT with its key; wisp checks it against the
 * public half it keeps and answers with a sealed access token. This is how
 * the real gcloud and Google's libraries keep their own credentials fresh.
 * Also tokeninfo, token revocation (RFC 7009), and whether a token opened
 * elsewhere may still be used. Errors use RFC 6749's shape
 * ({"error","error_description"}), as Google's token endpoint does, not the
 * google.rpc envelope. */
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

/* Checks a JWT signed with a user-managed key (txn open): for the token
 * endpoint (bearer 0) its audience must be this endpoint; used directly as
 * a bearer token (bearer 1, as google-auth does for some APIs) it names the
 * API as audience or carries scopes instead. Returns NULL with *claims_out
 * (caller decrefs) and *email_out (borrowed from it) set, or the reason as
 * Google words it. */
static const char *check_assertion(struct wisp_http_req *req, struct wisp_txn *txn,
                                   const char *jwt, int bearer, json_t **claims_out,
                                   const char **email_out)
{
    json_t *hdr = wisp_jwt_peek_header(jwt), *key = NULL, *claims = NULL, *sa = NULL;
    const char *kid = hdr ? json_string_value(json_object_get(hdr, "kid")) : NULL;
    const char *bad = NULL, *why;
    if (!kid) {
        bad = "Invalid JWT: the header names no key (kid).";
        goto out;
    }
    if (wispd_get_json(txn, "sakey", kid, &key, NULL) != WISP_OK ||
        json_is_true(json_object_get(key, "disabled")) ||
        !(claims = wisp_jwt_verify_rs256(
              jwt, json_string_value(json_object_get(key, "publicKeyPem")), &why))) {
        wisp_log_info("oauth2", "rejected JWT for key %.40s", kid);
        bad = "Invalid JWT Signature.";
        goto out;
    }
    const char *email = json_string_value(json_object_get(key, "email"));
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *aud = json_string_value(json_object_get(claims, "aud"));
    json_t *iat = json_object_get(claims, "iat"), *exp = json_object_get(claims, "exp");
    int64_t now = (int64_t)time(NULL);
    int aud_ok = bearer ? (aud ? strncmp(aud, "https://", 8) == 0 && !audience_ok(req, aud)
                               : json_is_string(json_object_get(claims, "scope")))
                        : aud && audience_ok(req, aud);
    int64_t i = json_integer_value(iat), e = json_integer_value(exp);
    if (!email || !iss || strcmp(iss, email) != 0 || (sub && strcmp(sub, email) != 0))
        bad = "Invalid JWT: iss must be the key's account.";
    else if (!aud_ok)
        bad = bearer ? "Invalid JWT: it names neither an API audience nor scopes."
                     : "Invalid JWT: the audience is not this token endpoint.";
    else if (!json_is_integer(iat) || !json_is_integer(exp))
        bad = "Invalid JWT: iat and exp are required.";
    else if (e <= i || e - i > 3600)
        bad = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
              "timeframe.";
    else if (i > now + LEEWAY || e < now - LEEWAY)
        bad = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
              "timeframe. Check your iat and exp values.";
    else if (wispd_get_json(txn, "sa", email, &sa, NULL) != WISP_OK ||
             json_is_true(json_object_get(sa, "disabled")))
        bad = "Invalid grant: account not found";
    if (!bad) {
        /* The email lives on in claims, which the caller keeps. */
        json_object_set(claims, "wisp:email", json_object_get(key, "email"));
        if (json_is_true(json_object_get(key, "nodeKey")))
            json_object_set_new(claims, "wisp:nodeKey", json_true());
        *email_out = json_string_value(json_object_get(claims, "wisp:email"));
        *claims_out = json_incref(claims);
    }
out:
    json_decref(sa);
    json_decref(claims);
    json_decref(key);
    json_decref(hdr);
    return bad;
}

/* A grant whose JWT names a target_audience asks for an ID token of the
 * key's account instead of an access token: {"id_token": JWT}, as Google's
 * token endpoint answers. Only a node key (one wisp made for a
 * GCE_METADATA node's metadata server, which alone holds it) may add the
 * instance claims of format=full ({"google": {"compute_engine": …}}), as
 * only the VM itself can on Google. Ends txn, since signing reads the key
 * itself. */
static void id_token(struct wisp_http_req *req, struct wisp_txn *txn, const json_t *claims)
{
    json_t *sa = NULL;
    const char *email = json_string_value(json_object_get(claims, "wisp:email"));
    const char *aud = json_string_value(json_object_get(claims, "target_audience"));
    json_t *google = json_object_get(claims, "google");
    if (!json_is_true(json_object_get(claims, "wisp:nodeKey")) ||
        !json_is_object(json_object_get(google, "compute_engine")))
        google = NULL;
    enum wisp_err err = wispd_get_json(txn, "sa", email, &sa, NULL);
    wisp_store_rollback(txn);
    char *jwt = err ? NULL : wispd_sa_id_token(wispd_store(req), sa, aud, 1, google, &err);
    json_decref(sa);
    if (!jwt) {
        oauth_error(req, 503, "temporarily_unavailable", "Could not sign the ID token.");
        return;
    }
    json_t *resp = json_pack("{s:s}", "id_token", jwt);
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    wisp_http_add_header(req, "Cache-Control", "no-store");
    wisp_http_respond(req, 200, "application/json; charset=utf-8", text, strlen(text));
    free(text);
    free(jwt);
}

static void token(struct wisp_http_req *req)
{
    char *grant = wisp_form_get(req->body, req->body_len, "grant_type");
    char *assertion = wisp_form_get(req->body, req->body_len, "assertion");
    json_t *claims = NULL;
    struct wisp_txn *txn = NULL;
    char *tok = NULL;
    const char *email = NULL, *bad;
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
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        oauth_error(req, 503, "temporarily_unavailable", "The token store is busy.");
        goto out;
    }
    if ((bad = check_assertion(req, txn, assertion, 0, &claims, &email))) {
        oauth_error(req, 400, "invalid_grant", bad);
        goto out;
    }
    if (json_is_string(json_object_get(claims, "target_audience"))) {
        id_token(req, txn, claims);
        txn = NULL;
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
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
    wisp_store_rollback(txn);
    free(grant);
    if (assertion)
        wisp_secret_free(assertion, 0);
}

enum wisp_err wispd_self_signed_open(struct wisp_http_req *req, const char *jwt,
                                     struct wisp_token_claims *out, const char **why)
{
    struct wisp_txn *txn = NULL;
    json_t *claims = NULL;
    const char *email = NULL;
    memset(out, 0, sizeof(*out));
    *why = "the store is busy";
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK)
        return WISP_EUNAUTH;
    *why = check_assertion(req, txn, jwt, 1, &claims, &email);
    wisp_store_rollback(txn);
    if (*why)
        return WISP_EUNAUTH;
    const char *scope = json_string_value(json_object_get(claims, "scope"));
    out->iat = json_integer_value(json_object_get(claims, "iat"));
    out->exp = json_integer_value(json_object_get(claims, "exp"));
    out->is_service_account = 1;
    out->email = wisp_xstrdup(email);
    out->scopes = wisp_xstrdup(scope ? scope : DEFAULT_SCOPE);
    json_decref(claims);
    return WISP_OK;
}

int wispd_token_live(struct wisp_http_req *req, const struct wisp_token_claims *c,
                     const char **why)
{
    if (wispd_token_revoked(c->jti)) {
        *why = "revoked";
        return 0;
    }
    if (!wispd.strict_revocation || !c->chain)
        return 1;
    /* Strict: the grant the token was minted under must still hold, an
     * authorization decision like any other. */
    struct wisp_txn *txn = NULL;
    int holds = -1;
    if (wisp_store_begin(wispd_store(req), 0, &txn) == WISP_OK)
        holds = wispd_delegation_holds(txn, c->chain, c->email);
    wisp_store_rollback(txn);
    *why = holds < 0 ? "the store is busy" : "the grant it was minted under was removed";
    return holds == 1;
}

/* Opens the token named by parameter key (query or form body): WISP_OK and
 * *c filled (caller frees), or the OAuth error answered. */
static int open_param(struct wisp_http_req *req, const char *key, struct wisp_token_claims *c,
                      const char *bad)
{
    const char *q = wisp_http_query(req, key);
    char *form = q ? NULL : wisp_form_get(req->body, req->body_len, key);
    const char *t = q ? q : form;
    const char *why = "missing";
    int ok = 0;
    if (!t) {
        oauth_error(req, 400, "invalid_request", bad);
    } else if (wisp_token_open(wispd.keyring, t, (int64_t)time(NULL), c, &why) != WISP_OK) {
        oauth_error(req, 400, "invalid_token", bad);
    } else if (!wispd_token_live(req, c, &why)) {
        wisp_token_claims_free(c);
        oauth_error(req, 400, "invalid_token", bad);
    } else {
        ok = 1;
    }
    if (form)
        wisp_secret_free(form, 0);
    return ok;
}

/* POST /revoke (oauth2.googleapis.com), /o/oauth2/revoke (accounts.google.com),
 * token=… in the form or the query: the access token no longer works, on
 * any later call. Possession of the token is the authority, as on Google. */
static void revoke(struct wisp_http_req *req)
{
    struct wisp_token_claims c;
    if (!open_param(req, "token", &c, "Token expired or revoked"))
        return;
    if (!c.jti[0]) {
        /* Sealed before tokens had ids: it expires within the hour. */
        oauth_error(req, 400, "invalid_token", "Token expired or revoked");
    } else if (wispd_token_revoke(wispd_store(req), c.jti, c.exp) != WISP_OK) {
        oauth_error(req, 503, "temporarily_unavailable", "The token store is busy.");
    } else {
        wisp_log_info("oauth2", "token %.8s… of %s revoked", c.jti,
                      c.email ? c.email : c.ksa ? c.ksa : "?");
        wisp_http_respond(req, 200, "application/json; charset=utf-8", "{}", 2);
    }
    wisp_token_claims_free(&c);
}

/* GET/POST /oauth2/v3/tokeninfo?access_token=…: what a token stands for. */
static void tokeninfo(struct wisp_http_req *req)
{
    struct wisp_token_claims c;
    if (!open_param(req, "access_token", &c, "Invalid Value"))
        return;
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
    else if (strcmp(path, "/revoke") == 0 || strcmp(path, "/o/oauth2/revoke") == 0)
        revoke(req); /* Google takes GET ?token= as well as the form */
    else
        oauth_error(req, 404, "invalid_request", "Unknown OAuth 2.0 endpoint.");
}
