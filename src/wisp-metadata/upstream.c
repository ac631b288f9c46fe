/* SPDX-License-Identifier: Apache-2.0 */
/* The token path, as GKE's metadata server walks it (ARCHITECTURE.md "The
 * identity path"): a KSA token from the cluster (TokenRequest, audience the
 * workload pool, bound to the pod), exchanged at STS for a federated token,
 * and with a linked GSA, generateAccessToken / generateIdToken with it. On a
 * GCE_METADATA node, the node's key signs a JWT-bearer grant instead.
 * Every call is one blocking libcurl request with a deadline. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/buf.h"
#include "wisp/jose.h"
#include "wisp/log.h"
#include "wisp/url.h"
#include "md.h"

#define SUB "upstream"
#define MAX_BODY (1u << 20)
#define TIMEOUT_MS 10000L

struct call {
    const char *url, *ca, *bearer, *ctype, *body, *header;
};

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    return wisp_buf_append(ud, p, sz * n) == WISP_OK ? sz * n : 0;
}

static CURL *easy(const char *url, const char *ca, struct curl_slist **h, const char *bearer)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (ca && ca[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (bearer) {
        char *hdr = wisp_xasprintf("Authorization: Bearer %s", bearer);
        *h = curl_slist_append(*h, hdr);
        wisp_secret_free(hdr, 0);
    }
    return c;
}

/* One request; the answer's body goes to out. Returns the HTTP status, or
 * 0 with why set when there was none. */
static long call(const struct call *k, struct wisp_buf *out, char *why, size_t whylen)
{
    struct curl_slist *h = NULL;
    CURL *c = easy(k->url, k->ca, &h, k->bearer);
    long code = 0;
    if (!c) {
        snprintf(why, whylen, "cannot start a request");
        return 0;
    }
    if (k->ctype) {
        char *ct = wisp_xasprintf("Content-Type: %s", k->ctype);
        h = curl_slist_append(h, ct);
        free(ct);
    }
    if (k->header)
        h = curl_slist_append(h, k->header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (k->body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, k->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(why, whylen, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

/* The bearer token for the Kubernetes API, read on every use so a rotated
 * (projected) token is picked up. Caller frees with wisp_secret_free(). */
static char *kube_token(void)
{
    if (!md.kube_token_file)
        return NULL;
    FILE *f = fopen(md.kube_token_file, "r");
    if (!f)
        return NULL;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    char *t = n ? wisp_xstrdup(buf) : NULL;
    memset(buf, 0, sizeof(buf));
    return t;
}

long md_kube_get(const char *path, char **body)
{
    struct wisp_buf out;
    char why[256];
    wisp_buf_init(&out, 64u << 20);
    char *url = wisp_xasprintf("%s%s", md.kube_api, path);
    char *tok = kube_token();
    struct call k = {.url = url, .ca = md.kube_ca, .bearer = tok};
    long code = call(&k, &out, why, sizeof(why));
    if (!code)
        wisp_log_warn(SUB, "GET %s: %s", path, why);
    *body = wisp_buf_steal(&out);
    if (!*body)
        *body = wisp_xstrdup("");
    if (tok)
        wisp_secret_free(tok, 0);
    free(url);
    return code;
}

struct stream {
    struct wisp_buf line;
    int (*fn)(void *ctx, const char *s, size_t n);
    void *ctx;
    int stop;
};

static size_t stream_write(char *p, size_t sz, size_t n, void *ud)
{
    struct stream *s = ud;
    size_t len = sz * n;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (wisp_buf_append(&s->line, p + i, 1) != WISP_OK)
                return 0; /* a line over the bound: end the watch */
            continue;
        }
        if (s->line.len && s->fn(s->ctx, s->line.data, s->line.len)) {
            s->stop = 1;
            return 0;
        }
        wisp_buf_reset(&s->line);
    }
    return md.stopping ? 0 : len;
}

static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return md.stopping;
}

long md_kube_stream(const char *path, int (*line)(void *ctx, const char *s, size_t n), void *ctx)
{
    struct curl_slist *h = NULL;
    char *url = wisp_xasprintf("%s%s", md.kube_api, path);
    char *tok = kube_token();
    CURL *c = easy(url, md.kube_ca, &h, tok);
    long code = 0;
    struct stream s = {.fn = line, .ctx = ctx};
    wisp_buf_init(&s.line, 8u << 20);
    if (c) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        /* A watch that says nothing for this long is dead (bookmarks come
         * every 10 s). */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
    }
    curl_slist_free_all(h);
    wisp_buf_free(&s.line);
    if (tok)
        wisp_secret_free(tok, 0);
    free(url);
    return code;
}

/* ---- the token path ---------------------------------------------------- */

static void fail(struct wisp_md_tok *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct wisp_md_tok *out, int status, const char *fmt, ...)
{
    va_list ap;
    out->status = status;
    va_start(ap, fmt);
    vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
    va_end(ap);
}

/* An upstream's error message: Google's envelope, RFC 6749, or a Status. */
static const char *error_text(json_t *j)
{
    json_t *e = json_object_get(j, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m)
        m = json_string_value(json_object_get(j, "error_description"));
    if (!m)
        m = json_string_value(json_object_get(j, "message"));
    if (!m)
        m = json_string_value(e);
    return m ? m : "no message";
}

static json_t *post_json(const struct call *k, long *code, char *why, size_t whylen)
{
    struct wisp_buf out;
    wisp_buf_init(&out, MAX_BODY);
    *code = call(k, &out, why, whylen);
    json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    wisp_buf_free(&out);
    return j;
}

/* Space-separated scopes from the canonical comma-joined form. */
static char *spaced(const char *scopes)
{
    char *s = wisp_xstrdup(scopes);
    for (char *p = s; *p; p++) {
        if (*p == ',')
            *p = ' ';
    }
    return s;
}

static char *ksa_token(const struct wisp_md_key *k, struct wisp_md_tok *out)
{
    char why[256];
    long code;
    char *path = wisp_xasprintf("%s/api/v1/namespaces/%s/serviceaccounts/%s/token", md.kube_api,
                                k->ns, k->ksa);
    char *tok = kube_token();
    json_t *req = json_pack("{s:{s:[s+], s:i, s:{s:s, s:s, s:s, s:s}}}", "spec", "audiences",
                            md.site.project_id, ".svc.id.goog", "expirationSeconds", 3600,
                            "boundObjectRef", "kind", "Pod", "apiVersion", "v1", "name", k->pod,
                            "uid", k->uid);
    char *body = json_dumps(req, JSON_COMPACT);
    struct call c = {.url = path, .ca = md.kube_ca, .bearer = tok, .ctype = "application/json",
                     .body = body};
    json_t *j = post_json(&c, &code, why, sizeof(why));
    char *ksa = NULL;
    const char *t = json_string_value(json_object_get(json_object_get(j, "status"), "token"));
    if (code == 201 || code == 200) {
        if (t)
            ksa = wisp_xstrdup(t);
        else
            fail(out, 500, "%s", "GKE Metadata Server encountered an error: TokenRequest "
                 "returned no token");
    } else if (code) {
        char m[300];
        snprintf(m, sizeof(m), "%ld %s", code, error_text(j));
        fail(out, code == 404 || code == 403 ? 403 : 503,
             "GKE Metadata Server encountered an error: the Kubernetes API refused a token for "
             "the pod's ServiceAccount %s", m);
    } else {
        fail(out, 503, "GKE Metadata Server encountered an error: the Kubernetes API is not "
                       "reachable: %s", why);
    }
    json_decref(j);
    json_decref(req);
    free(body);
    if (tok)
        wisp_secret_free(tok, 0);
    free(path);
    return ksa;
}

static char *sts_exchange(const char *ksa, const char *scopes, long long *exp,
                          struct wisp_md_tok *out)
{
    char why[256];
    long code;
    char *aud = wisp_xasprintf("identitynamespace:%s.svc.id.goog:%s", md.site.project_id,
                               md.issuer);
    char *sc = spaced(scopes);
    char *e_aud = wisp_url_escape(aud), *e_sc = wisp_url_escape(sc), *e_tok = wisp_url_escape(ksa);
    char *form = wisp_xasprintf(
        "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
        "&audience=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt"
        "&requested_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Aaccess_token"
        "&scope=%s&subject_token=%s",
        e_aud, e_sc, e_tok);
    char *url = wisp_xasprintf("%s/v1/token", md.sts);
    struct call c = {.url = url, .ca = md.google_ca, .ctype = "application/x-www-form-urlencoded",
                     .body = form};
    json_t *j = post_json(&c, &code, why, sizeof(why));
    char *fed = NULL;
    const char *t = json_string_value(json_object_get(j, "access_token"));
    json_int_t ein = json_integer_value(json_object_get(j, "expires_in"));
    if (code == 200 && t && ein > 0) {
        fed = wisp_xstrdup(t);
        *exp = (long long)time(NULL) + ein;
    } else if (code) {
        fail(out, code >= 500 ? 503 : 403,
             "GKE Metadata Server encountered an error: the Security Token Service refused the "
             "exchange: %s", error_text(j));
    } else {
        fail(out, 503, "GKE Metadata Server encountered an error: the Security Token Service is "
                       "not reachable: %s", why);
    }
    json_decref(j);
    wisp_secret_free(form, 0);
    wisp_secret_free(e_tok, 0);
    free(e_aud);
    free(e_sc);
    free(aud);
    free(sc);
    free(url);
    return fed;
}

/* RFC 3339 UTC ("2025-01-01T00:00:00Z", fractions ignored) to seconds. */
static long long rfc3339(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (long long)timegm(&tm);
}

/* exp of a compact JWT, unverified (it came from our own upstream). */
static long long jwt_exp(const char *jwt)
{
    const char *a = strchr(jwt, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!b)
        return 0;
    char *mid = wisp_xstrndup(a + 1, (size_t)(b - a - 1));
    size_t n;
    unsigned char *raw = wisp_b64url_decode(mid, &n);
    free(mid);
    json_t *claims = raw ? json_loadb((const char *)raw, n, 0, NULL) : NULL;
    long long exp = json_integer_value(json_object_get(claims, "exp"));
    json_decref(claims);
    free(raw);
    return exp;
}

static void iam_credentials(const struct wisp_md_key *k, const char *fed, struct wisp_md_tok *out)
{
    char why[256];
    long code;
    int id = k->kind == 'i';
    char *url = wisp_xasprintf("%s/v1/projects/-/serviceAccounts/%s:%s", md.iamcredentials,
                               k->gsa, id ? "generateIdToken" : "generateAccessToken");
    json_t *req;
    if (id) {
        const char *bar = strchr(k->what, '|');
        req = json_pack("{s:s, s:b}", "audience", bar ? bar + 1 : k->what, "includeEmail",
                        strncmp(k->what, "full|", 5) == 0);
    } else {
        req = json_pack("{s:[], s:s}", "scope", "lifetime", "3600s");
        char *sc = wisp_xstrdup(k->what);
        for (char *save = NULL, *s = strtok_r(sc, ",", &save); s; s = strtok_r(NULL, ",", &save))
            json_array_append_new(json_object_get(req, "scope"), json_string(s));
        free(sc);
    }
    char *body = json_dumps(req, JSON_COMPACT);
    char *quota = k->quota[0] ? wisp_xasprintf("x-goog-user-project: %s", k->quota) : NULL;
    struct call c = {.url = url, .ca = md.google_ca, .bearer = fed, .ctype = "application/json",
                     .body = body, .header = quota};
    json_t *j = post_json(&c, &code, why, sizeof(why));
    const char *t = json_string_value(json_object_get(j, id ? "token" : "accessToken"));
    if (code == 200 && t) {
        out->value = wisp_xstrdup(t);
        out->exp = id ? jwt_exp(t)
                      : rfc3339(json_string_value(json_object_get(j, "expireTime")));
    } else if (code) {
        char m[400];
        snprintf(m, sizeof(m), "%ld %s", code, error_text(j));
        fail(out, code >= 500 ? 503 : 403,
             "Unable to generate %s; IAM returned %s\nThis error could be caused by a missing "
             "IAM policy binding on the target IAM service account.\nFor more information, refer "
             "to the Workload Identity documentation:\n\thttps://cloud.google.com/"
             "kubernetes-engine/docs/how-to/workload-identity#authenticating_to",
             id ? "ID token" : "access token", m);
    } else {
        fail(out, 503, "GKE Metadata Server encountered an error: IAM Credentials is not "
                       "reachable: %s", why);
    }
    json_decref(j);
    json_decref(req);
    free(body);
    free(quota);
    free(url);
}

/* What Compute Engine's format=full ID tokens say of the instance. */
static json_t *instance_claims(void)
{
    const struct wisp_md_site *s = &md.site;
    return json_pack("{s:{s:I, s:s, s:s, s:s, s:I, s:s}}", "compute_engine",
                     "instance_creation_timestamp", (json_int_t)md.instance_created,
                     "instance_id", s->instance_id, "instance_name", md.node, "project_id",
                     s->project_id, "project_number",
                     (json_int_t)strtoll(s->project_number, NULL, 10), "zone", s->zone);
}

/* The node's own identity (GCE_METADATA): its key signs an RFC 7523
 * assertion for the key's token_uri, naming scopes for an access token or
 * a target_audience for an ID token, as Google's libraries do with a key
 * file. format=full adds the instance claims (google.compute_engine), which
 * wisp's token endpoint takes only from a node key. */
static void node_token(const struct wisp_md_key *k, struct wisp_md_tok *out)
{
    char why[256];
    long code;
    json_error_t je;
    json_t *key = json_load_file(md.node_credentials, 0, &je);
    const char *email = json_string_value(json_object_get(key, "client_email"));
    const char *pem = json_string_value(json_object_get(key, "private_key"));
    const char *kid = json_string_value(json_object_get(key, "private_key_id"));
    const char *uri = md.token_uri ? md.token_uri
                                   : json_string_value(json_object_get(key, "token_uri"));
    if (!email || !pem || !uri) {
        fail(out, 503, "GKE Metadata Server encountered an error: cannot read the node's key "
                       "%s", md.node_credentials ? md.node_credentials : "(none)");
        goto out;
    }
    long long now = (long long)time(NULL);
    int id = k->kind == 'i';
    const char *bar = strchr(k->what, '|');
    char *sc = id ? wisp_xstrdup(bar ? bar + 1 : k->what) : spaced(k->what);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email,
                               id ? "target_audience" : "scope", sc, "aud", uri, "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + 3600));
    free(sc);
    if (id && strncmp(k->what, "full|", 5) == 0)
        json_object_set_new(claims, "google", instance_claims());
    char *jwt = wisp_jwt_sign_rs256(claims, kid ? kid : "", pem);
    json_decref(claims);
    if (!jwt) {
        fail(out, 503, "%s", "GKE Metadata Server encountered an error: cannot sign with the "
             "node's key");
        goto out;
    }
    char *form = wisp_xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3A"
                                "jwt-bearer&assertion=%s", jwt);
    struct call c = {.url = uri, .ca = md.google_ca, .ctype = "application/x-www-form-urlencoded",
                     .body = form};
    json_t *j = post_json(&c, &code, why, sizeof(why));
    const char *t = json_string_value(json_object_get(j, id ? "id_token" : "access_token"));
    long long exp = !t ? 0 : id ? jwt_exp(t)
                                : now + json_integer_value(json_object_get(j, "expires_in"));
    if (code == 200 && t && exp > now) {
        out->value = wisp_xstrdup(t);
        out->exp = exp;
    } else {
        fail(out, code && code < 500 ? 403 : 503,
             "GKE Metadata Server encountered an error: the node's token was refused: %s",
             code ? error_text(j) : why);
    }
    json_decref(j);
    wisp_secret_free(form, 0);
    wisp_secret_free(jwt, 0);
out:
    json_decref(key);
}

void md_fetch(void *ctx, const struct wisp_md_key *k, struct wisp_md_tok *out)
{
    (void)ctx;
    if (md.site.gce_mode) {
        node_token(k, out);
        return;
    }
    char *ksa = ksa_token(k, out);
    if (!ksa)
        return;
    long long exp = 0;
    /* ID tokens and GSA tokens need only cloud-platform on the federated one. */
    const char *scopes = k->kind == 'a' && !k->gsa[0] ? k->what : WISP_MD_DEFAULT_SCOPE;
    char *fed = sts_exchange(ksa, scopes, &exp, out);
    wisp_secret_free(ksa, 0);
    if (!fed)
        return;
    if (k->gsa[0]) {
        iam_credentials(k, fed, out);
    } else if (k->kind == 'a') {
        out->value = fed;
        fed = NULL;
        out->exp = exp;
    } else {
        fail(out, 404, "%s", "no ID token without a linked service account");
    }
    if (fed)
        wisp_secret_free(fed, 0);
    wisp_log_info(SUB, "token for %s/%s (pod %s) %s", k->ns, k->ksa, k->pod,
                  out->value ? "issued" : out->msg);
}
