/* SPDX-License-Identifier: Apache-2.0 */
/* TokenRequest (POST …/serviceaccounts/NAME/token): a KSA token signed by
 * the cluster's OIDC issuer, the token the metadata server exchanges at
 * STS. Bound to a pod, it is refused unless that pod exists with that UID
 * and runs as that ServiceAccount, and STS later checks both still exist. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/http.h"
#include "wisp/ksa.h"
#include "kube_obj.h"

#define MIN_EXPIRATION 600           /* seconds, as kube-apiserver */
#define MAX_EXPIRATION (48 * 3600 - 60) /* under STS's 48 h lifetime bound */
#define DEFAULT_EXPIRATION 3600

static const struct wisp_jfield bound_fields[] = {
    {"kind", WISP_J_STRING}, {"apiVersion", WISP_J_STRING}, {"name", WISP_J_STRING},
    {"uid", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield spec_fields[] = {
    {"audiences", WISP_J_ARRAY, WISP_J_STRING},
    {"expirationSeconds", WISP_J_INT},
    {"boundObjectRef", WISP_J_OBJECT, 0, bound_fields},
    {NULL}};
static const struct wisp_jfield meta_fields[] = {
    {"name", WISP_J_STRING}, {"namespace", WISP_J_STRING}, {"creationTimestamp", WISP_J_ANY},
    {NULL}};
static const struct wisp_jfield token_fields[] = {{"kind", WISP_J_STRING},
                                                  {"apiVersion", WISP_J_STRING},
                                                  {"metadata", WISP_J_OBJECT, 0, meta_fields},
                                                  {"spec", WISP_J_OBJECT, 0, spec_fields},
                                                  {"status", WISP_J_OBJECT},
                                                  {NULL}};

static void rfc3339(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kube_token_request(struct kube_req *k, const char *ns, const char *sa)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *body = NULL, *sadoc = NULL, *pod = NULL;
    char *kid = NULL, *pem = NULL, *jwt = NULL, why[256] = "";
    const struct kube_res *sares = kube_res_find("serviceaccounts");

    body = kube_read_body(req);
    if (!body)
        goto out;
    if (!json_is_object(body) || wisp_api_check(body, token_fields, "", why, sizeof(why)) != WISP_OK) {
        kube_status(req, 400, "BadRequest", NULL, NULL,
                    "TokenRequest in version \"v1\" cannot be handled: %s",
                    why[0] ? why : "the body is not a JSON object");
        goto out;
    }
    json_t *spec = json_object_get(body, "spec");
    json_t *auds = json_object_get(spec, "audiences");
    json_t *ttl = json_object_get(spec, "expirationSeconds");
    json_t *bound = json_object_get(spec, "boundObjectRef");
    json_int_t exp = ttl ? json_integer_value(ttl) : DEFAULT_EXPIRATION;
    if (exp < MIN_EXPIRATION) {
        kube_invalid(req, "TokenRequest", sa, "spec.expirationSeconds", "FieldValueInvalid",
                     "Invalid value: %lld: may not specify a duration less than 10 minutes",
                     (long long)exp);
        goto out;
    }
    if (exp > MAX_EXPIRATION)
        exp = MAX_EXPIRATION;
    if (json_array_size(auds) > 1 || (auds && !json_is_string(json_array_get(auds, 0)) &&
                                      json_array_size(auds) == 1)) {
        kube_invalid(req, "TokenRequest", sa, "spec.audiences", "FieldValueInvalid",
                     "Invalid value: wisp signs exactly one audience per token");
        goto out;
    }
    const char *aud = json_array_size(auds) ? json_string_value(json_array_get(auds, 0))
                                            : k->issuer;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        kube_store_error(req, WISP_EIO);
        goto out;
    }
    if (!kube_allowed(k, txn, sares, "createToken", "create", ns))
        goto out;
    enum wisp_err err = kube_load(txn, k, sares, ns, sa, &sadoc, NULL);
    if (err == WISP_ENOTFOUND) {
        kube_status(req, 404, "NotFound", sa, "serviceaccounts",
                    "serviceaccounts \"%s\" not found", sa);
        goto out;
    }
    struct wisp_ksa_claims c = {.iss = (char *)k->issuer, .aud = (char *)aud, .ns = (char *)ns,
                                .sa = (char *)sa};
    c.sa_uid = (char *)json_string_value(json_object_get(json_object_get(sadoc, "metadata"),
                                                         "uid"));
    if (bound) {
        const char *bkind = json_string_value(json_object_get(bound, "kind"));
        const char *bname = json_string_value(json_object_get(bound, "name"));
        const char *buid = json_string_value(json_object_get(bound, "uid"));
        if (!bkind || strcmp(bkind, "Pod") != 0 || !bname) {
            kube_invalid(req, "TokenRequest", sa, "spec.boundObjectRef.kind",
                         "FieldValueNotSupported",
                         "Unsupported value: \"%s\": wisp binds tokens to pods only",
                         bkind ? bkind : "");
            goto out;
        }
        err = kube_load(txn, k, kube_res_find("pods"), ns, bname, &pod, NULL);
        json_t *pm = json_object_get(pod, "metadata");
        const char *puid = json_string_value(json_object_get(pm, "uid"));
        const char *psa =
            json_string_value(json_object_get(json_object_get(pod, "spec"), "serviceAccountName"));
        if (err || (buid && strcmp(buid, puid) != 0)) {
            kube_status(req, 404, "NotFound", bname, "pods", "pods \"%s\" not found", bname);
            goto out;
        }
        if (!psa || strcmp(psa, sa) != 0) {
            kube_status(req, 400, "BadRequest", NULL, NULL,
                        "pod %s/%s runs as ServiceAccount %s, not %s; a token bound to it cannot "
                        "be issued for %s",
                        ns, bname, psa ? psa : "", sa, sa);
            goto out;
        }
        c.pod = (char *)bname;
        c.pod_uid = (char *)puid;
        c.node = (char *)json_string_value(json_object_get(json_object_get(pod, "spec"),
                                                           "nodeName"));
    }
    err = wispd_issuer_signing_key(txn, k->issuer, &kid, &pem);
    if (err) {
        kube_store_error(req, err);
        goto out;
    }
    time_t now = time(NULL);
    c.iat = c.nbf = (int64_t)now;
    c.exp = (int64_t)now + exp;
    jwt = wisp_ksa_sign(&c, kid, pem);
    if (!jwt) {
        kube_status(req, 500, "InternalError", NULL, NULL, "signing the token failed");
        goto out;
    }
    char expts[32], created[32];
    rfc3339(now + exp, expts, sizeof(expts));
    rfc3339(now, created, sizeof(created));
    json_t *answer = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:O, s:{s:s, s:s}}", "kind",
                               "TokenRequest", "apiVersion", "authentication.k8s.io/v1",
                               "metadata", "name", sa, "namespace", ns, "creationTimestamp",
                               created, "spec", spec, "status", "token", jwt,
                               "expirationTimestamp", expts);
    json_object_set_new(json_object_get(answer, "spec"), "expirationSeconds", json_integer(exp));
    json_object_set_new(json_object_get(answer, "spec"), "audiences", json_pack("[s]", aud));
    kube_send(req, 201, answer);
out:
    wisp_store_rollback(txn);
    json_decref(body);
    json_decref(sadoc);
    json_decref(pod);
    free(kid);
    if (pem)
        wisp_secret_free(pem, 0);
    if (jwt)
        wisp_secret_free(jwt, 0);
}
