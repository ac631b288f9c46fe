/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes ServiceAccount tokens (include/wisp/ksa.h). */
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wisp/ksa.h"

void wisp_ksa_claims_free(struct wisp_ksa_claims *c)
{
    char **s[] = {&c->iss,     &c->aud,  &c->ns,       &c->sa, &c->sa_uid, &c->pod,
                  &c->pod_uid, &c->node, &c->node_uid, &c->jti};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        WISP_FREE(*s[i]);
}

static json_t *name_uid(const char *name, const char *uid)
{
    return json_pack("{s:s, s:s}", "name", name ? name : "", "uid", uid ? uid : "");
}

char *wisp_ksa_sign(const struct wisp_ksa_claims *c, const char *kid, const char *key_pem)
{
    char jti[37];
    unsigned char r[16];
    RAND_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(jti, sizeof(jti),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    char *sub = wisp_xasprintf("system:serviceaccount:%s:%s", c->ns, c->sa);
    json_t *k8s = json_pack("{s:s, s:o}", "namespace", c->ns, "serviceaccount",
                            name_uid(c->sa, c->sa_uid));
    if (c->pod)
        json_object_set_new(k8s, "pod", name_uid(c->pod, c->pod_uid));
    if (c->node)
        json_object_set_new(k8s, "node", name_uid(c->node, c->node_uid));
    json_t *claims = json_pack("{s:[s], s:I, s:I, s:I, s:s, s:s, s:s, s:o}", "aud", c->aud,
                               "exp", (json_int_t)c->exp, "iat", (json_int_t)c->iat, "nbf",
                               (json_int_t)c->nbf, "iss", c->iss, "jti", c->jti ? c->jti : jti,
                               "sub", sub, "kubernetes.io", k8s);
    free(sub);
    char *jwt = wisp_jwt_sign_rs256(claims, kid, key_pem);
    json_decref(claims);
    return jwt;
}

static enum wisp_err refuse(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum wisp_err refuse(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return WISP_EUNAUTH;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A strict integer NumericDate: JSON integer, positive, below year 10000. */
static int num_date(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return 0;
    json_int_t n = json_integer_value(v);
    if (n <= 0 || n > 253402300799LL)
        return 0;
    *out = (int64_t)n;
    return 1;
}

static int aud_has(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a) {
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return 1;
    }
    return 0;
}

enum wisp_err wisp_ksa_verify(const char *jwt, const struct wisp_ksa_key *keys, size_t n_keys,
                              const char *audience, int64_t now, struct wisp_ksa_claims *out,
                              char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    json_t *hdr = wisp_jwt_peek_header(jwt), *claims = NULL;
    enum wisp_err err = WISP_EUNAUTH;
    if (!hdr) {
        refuse(why, whylen, "the token is not a JWT");
        goto out;
    }
    const char *kid = str(hdr, "kid");
    if (!kid || !*kid) {
        refuse(why, whylen, "the token header has no kid");
        goto out;
    }
    const struct wisp_ksa_key *key = NULL;
    for (size_t i = 0; i < n_keys; i++) {
        if (strcmp(keys[i].kid, kid) == 0)
            key = &keys[i];
    }
    if (!key) {
        /* The kid is only ever a lookup key; it is not echoed back, since
         * it is attacker-chosen text. */
        refuse(why, whylen, "the token is signed by a key of no cluster in this pool");
        goto out;
    }
    const char *reason;
    claims = wisp_jwt_verify_rs256(jwt, key->public_pem, &reason);
    if (!claims) {
        refuse(why, whylen, "the token signature is invalid (%s)", reason);
        goto out;
    }
    const char *iss = str(claims, "iss");
    if (!iss || strcmp(iss, key->issuer) != 0) {
        refuse(why, whylen, "the token issuer is not the cluster that owns its key");
        goto out;
    }
    if (!aud_has(json_object_get(claims, "aud"), audience)) {
        refuse(why, whylen, "the token audience does not include %s", audience);
        goto out;
    }
    int64_t iat, exp, nbf;
    if (!num_date(claims, "iat", &iat) || !num_date(claims, "exp", &exp)) {
        refuse(why, whylen, "the token needs integer iat and exp claims");
        goto out;
    }
    if (!num_date(claims, "nbf", &nbf))
        nbf = iat;
    if (iat > now + WISP_KSA_LEEWAY || nbf > now + WISP_KSA_LEEWAY) {
        refuse(why, whylen, "the token is not valid yet (iat/nbf in the future)");
        goto out;
    }
    if (exp + WISP_KSA_LEEWAY <= now) {
        refuse(why, whylen, "the token has expired");
        goto out;
    }
    if (exp <= iat || exp - iat >= WISP_KSA_MAX_LIFETIME) {
        refuse(why, whylen, "the token lifetime must be positive and under 48 hours");
        goto out;
    }
    const json_t *k8s = json_object_get(claims, "kubernetes.io");
    const json_t *sa = json_object_get(k8s, "serviceaccount");
    const char *ns = str(k8s, "namespace"), *sa_name = str(sa, "name");
    const char *sub = str(claims, "sub");
    if (!ns || !sa_name || !*ns || !*sa_name || !sub) {
        refuse(why, whylen, "the token lacks its kubernetes.io service account claims");
        goto out;
    }
    char *want = wisp_xasprintf("system:serviceaccount:%s:%s", ns, sa_name);
    int sub_ok = strcmp(sub, want) == 0;
    free(want);
    if (!sub_ok || strchr(ns, ':') || strchr(sa_name, ':')) {
        refuse(why, whylen, "the token subject is not system:serviceaccount:NAMESPACE:NAME");
        goto out;
    }
    const json_t *pod = json_object_get(k8s, "pod"), *node = json_object_get(k8s, "node");
    out->iss = wisp_xstrdup(iss);
    out->aud = wisp_xstrdup(audience);
    out->iat = iat;
    out->nbf = nbf;
    out->exp = exp;
    out->ns = wisp_xstrdup(ns);
    out->sa = wisp_xstrdup(sa_name);
    out->sa_uid = str(sa, "uid") ? wisp_xstrdup(str(sa, "uid")) : NULL;
    out->pod = str(pod, "name") ? wisp_xstrdup(str(pod, "name")) : NULL;
    out->pod_uid = str(pod, "uid") ? wisp_xstrdup(str(pod, "uid")) : NULL;
    out->node = str(node, "name") ? wisp_xstrdup(str(node, "name")) : NULL;
    out->node_uid = str(node, "uid") ? wisp_xstrdup(str(node, "uid")) : NULL;
    out->jti = str(claims, "jti") ? wisp_xstrdup(str(claims, "jti")) : NULL;
    err = WISP_OK;
out:
    json_decref(claims);
    json_decref(hdr);
    return err;
}
