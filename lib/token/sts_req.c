/* SPDX-License-Identifier: Apache-2.0 */
/* STS request parsing (include/wisp/sts.h). */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/sts.h"
#include "wisp/url.h"

void wisp_sts_req_free(struct wisp_sts_req *r)
{
    char **s[] = {&r->grant_type, &r->audience,           &r->scope,   &r->requested_token_type,
                  &r->subject_token, &r->subject_token_type, &r->options, &r->pool,
                  &r->provider};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i] == &r->subject_token && r->subject_token)
            wisp_secret_free(r->subject_token, 0);
        else
            free(*s[i]);
        *s[i] = NULL;
    }
}

static enum wisp_err bad(const char **code, const char *c, char *why, size_t len, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));
static enum wisp_err bad(const char **code, const char *c, char *why, size_t len, const char *fmt,
                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    *code = c;
    return WISP_EINVAL;
}

static const struct {
    const char *snake, *camel;
    size_t off;
} fields[] = {
    {"grant_type", "grantType", offsetof(struct wisp_sts_req, grant_type)},
    {"audience", "audience", offsetof(struct wisp_sts_req, audience)},
    {"scope", "scope", offsetof(struct wisp_sts_req, scope)},
    {"requested_token_type", "requestedTokenType",
     offsetof(struct wisp_sts_req, requested_token_type)},
    {"subject_token", "subjectToken", offsetof(struct wisp_sts_req, subject_token)},
    {"subject_token_type", "subjectTokenType", offsetof(struct wisp_sts_req, subject_token_type)},
    {"options", "options", offsetof(struct wisp_sts_req, options)},
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static char **slot(struct wisp_sts_req *r, size_t i)
{
    return (char **)((char *)r + fields[i].off);
}

/* One pass over the pairs: each name is decoded once and matched against
 * the fields; a field given twice is refused rather than guessed at, and
 * names that are no field are ignored, as Google's endpoint does. */
static enum wisp_err parse_form(const char *body, size_t len, struct wisp_sts_req *r,
                                const char **code, char *why, size_t whylen)
{
    unsigned seen = 0; /* bit f: fields[f] was given */
    size_t i = 0;
    while (i < len) {
        const char *pair = body + i, *amp = memchr(pair, '&', len - i);
        size_t plen = amp ? (size_t)(amp - pair) : len - i;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;
        char *name = wisp_form_decode(pair, nlen);
        size_t f = 0;
        while (name && f < N_FIELDS && strcmp(name, fields[f].snake) != 0)
            f++;
        int known = name && f < N_FIELDS;
        free(name);
        if (known) {
            if (seen & (1u << f))
                return bad(code, "invalid_request", why, whylen, "The field %s is given twice.",
                           fields[f].snake);
            seen |= 1u << f;
            *slot(r, f) = eq ? wisp_form_decode(eq + 1, (size_t)(pair + plen - (eq + 1)))
                             : wisp_xstrdup("");
        }
        i += plen + 1;
    }
    return WISP_OK;
}

static enum wisp_err parse_json(const char *body, size_t len, struct wisp_sts_req *r,
                                const char **code, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return bad(code, "invalid_request", why, whylen, "The request body is not a JSON object.");
    }
    const char *key;
    json_t *v;
    enum wisp_err err = WISP_OK;
    json_object_foreach(o, key, v) {
        size_t i = 0;
        while (i < N_FIELDS && strcmp(key, fields[i].snake) != 0 &&
               strcmp(key, fields[i].camel) != 0)
            i++;
        if (i == N_FIELDS) {
            err = bad(code, "invalid_request", why, whylen, "Unknown field '%.64s'.", key);
            break;
        }
        if (!json_is_string(v) || *slot(r, i)) {
            err = bad(code, "invalid_request", why, whylen,
                      "The field %s must be given once, as a string.", fields[i].snake);
            break;
        }
        *slot(r, i) = wisp_xstrdup(json_string_value(v));
    }
    json_decref(o);
    return err;
}

/* identitynamespace:POOL:PROVIDER (GKE), or the workload-pool provider
 * name //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/P. */
static int split_audience(struct wisp_sts_req *r)
{
    const char *a = r->audience;
    static const char ns[] = "identitynamespace:";
    if (strncmp(a, ns, sizeof(ns) - 1) == 0) {
        const char *p = a + sizeof(ns) - 1;
        const char *colon = strchr(p, ':');
        if (!colon || colon == p || !colon[1])
            return 0;
        r->pool = wisp_xstrndup(p, (size_t)(colon - p));
        r->provider = wisp_xstrdup(colon + 1);
        return 1;
    }
    static const char pools[] = "/workloadIdentityPools/";
    const char *p = strstr(a, pools);
    if (strncmp(a, "//iam.googleapis.com/projects/", 30) != 0 || !p)
        return 0;
    p += sizeof(pools) - 1;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p)
        return 0;
    r->pool = wisp_xstrndup(p, (size_t)(slash - p));
    return 1;
}

enum wisp_err wisp_sts_req_parse(const char *body, size_t len, const char *content_type,
                                 struct wisp_sts_req *out, const char **code, char *why,
                                 size_t whylen)
{
    memset(out, 0, sizeof(*out));
    int json = content_type && strncmp(content_type, "application/json", 16) == 0;
    enum wisp_err err = json ? parse_json(body, len, out, code, why, whylen)
                             : parse_form(body, len, out, code, why, whylen);
    if (err)
        goto fail;
    if (!out->grant_type) {
        err = bad(code, "invalid_request", why, whylen, "Missing required field: grant_type.");
        goto fail;
    }
    if (strcmp(out->grant_type, WISP_STS_GRANT) != 0) {
        err = bad(code, "unsupported_grant_type", why, whylen,
                  "grant_type must be " WISP_STS_GRANT ".");
        goto fail;
    }
    if (!out->subject_token || !*out->subject_token) {
        err = bad(code, "invalid_request", why, whylen, "Missing required field: subject_token.");
        goto fail;
    }
    if (!out->subject_token_type || (strcmp(out->subject_token_type, WISP_STS_JWT) != 0 &&
                                     strcmp(out->subject_token_type, WISP_STS_ID_TOKEN) != 0)) {
        err = bad(code, "invalid_request", why, whylen,
                  "subject_token_type must be " WISP_STS_JWT " or " WISP_STS_ID_TOKEN ".");
        goto fail;
    }
    if (out->requested_token_type &&
        strcmp(out->requested_token_type, WISP_STS_ACCESS_TOKEN) != 0) {
        err = bad(code, "invalid_request", why, whylen,
                  "requested_token_type must be " WISP_STS_ACCESS_TOKEN ".");
        goto fail;
    }
    if (!out->scope || !*out->scope) {
        err = bad(code, "invalid_request", why, whylen, "Missing required field: scope.");
        goto fail;
    }
    if (out->options && strlen(out->options) > WISP_STS_MAX_OPTIONS) {
        err = bad(code, "invalid_request", why, whylen, "options is longer than %d characters.",
                  WISP_STS_MAX_OPTIONS);
        goto fail;
    }
    if (!out->audience || !split_audience(out)) {
        err = bad(code, "invalid_target", why, whylen,
                  "audience must be identitynamespace:POOL:PROVIDER or a workload identity "
                  "pool provider name.");
        goto fail;
    }
    return WISP_OK;
fail:
    wisp_sts_req_free(out);
    return err;
}
