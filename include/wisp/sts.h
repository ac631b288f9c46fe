/* SPDX-License-Identifier: Apache-2.0 */
/* STS token-exchange requests (RFC 8693) as Google's STS accepts them:
 * form-encoded with snake_case names (google-auth libraries) or JSON with
 * lowerCamel or snake_case names (generated clients). Pure parsing and
 * shape checks; the token itself is verified elsewhere (wisp/ksa.h). */
#ifndef WISP_STS_H
#define WISP_STS_H

#include <stddef.h>
#include "wisp/err.h"

#define WISP_STS_GRANT "urn:ietf:params:oauth:grant-type:token-exchange"
#define WISP_STS_JWT "urn:ietf:params:oauth:token-type:jwt"
#define WISP_STS_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define WISP_STS_ACCESS_TOKEN "urn:ietf:params:oauth:token-type:access_token"
#define WISP_STS_MAX_OPTIONS 4096

/* Every field owned (free with wisp_sts_req_free); NULL when absent. */
struct wisp_sts_req {
    char *grant_type, *audience, *scope, *requested_token_type;
    char *subject_token, *subject_token_type, *options;
    char *pool;     /* from audience identitynamespace:POOL:PROVIDER or the
                     * workload-pool provider name */
    char *provider; /* identitynamespace form: the cluster issuer URL */
};
void wisp_sts_req_free(struct wisp_sts_req *r);

/* Parses and checks a request body. content_type decides the encoding
 * (JSON when it starts with application/json, else form). On error returns
 * WISP_EINVAL with an RFC 6749 error code in *code ("invalid_request",
 * "unsupported_grant_type", "invalid_target") and a reason in why. */
enum wisp_err wisp_sts_req_parse(const char *body, size_t len, const char *content_type,
                                 struct wisp_sts_req *out, const char **code, char *why,
                                 size_t whylen);

#endif
