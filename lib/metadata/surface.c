/* SPDX-License-Identifier: Apache-2.0 */
/* The metadata server's HTTP surface as a pure function: request and
 * identified caller in, status, headers and body out. The path is
 * canonicalised once (path.c) and looked up in a tree built for the caller,
 * so anything not in the tree — kube-env, instance/name, project/attributes,
 * legacy /0.1/ and /v1beta1/ — is 404 by construction (WIRE.md §1.5, §1.9). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/hash.h"
#include "wisp/metadata.h"
#include "wisp/url.h"

#define PREFIX "/computeMetadata/v1"
#define MAX_WAIT 60
#define TEXT "application/text"
#define JSON "application/json"
#define PLAIN "text/plain; charset=utf-8"
#define HTML "text/html; charset=UTF-8"
#define MAX_AUDIENCE 512

static const char not_found_page[] =
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    "  <title>Error 404 (Not Found)!!1</title>\n"
    "  <p><b>404.</b> <ins>That\xe2\x80\x99s an error.</ins>\n"
    "  <p>The requested URL was not found on this server.  "
    "<ins>That\xe2\x80\x99s all we know.</ins>\n";

/* Markers in the caller's tree: leaves computed on demand (never part of a
 * recursive answer) and the accounts of a caller we could not identify. */
static int is_computed(const json_t *v)
{
    return json_is_null(v);
}

static int is_unidentified(const json_t *v)
{
    return json_is_false(v);
}

static void set_body(struct wisp_md_resp *r, int status, const char *ctype, const char *body,
                     size_t len)
{
    free(r->body);
    r->status = status;
    r->ctype = ctype;
    r->body = wisp_xmalloc(len + 1);
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
}

static void set_text(struct wisp_md_resp *r, int status, const char *ctype, const char *text)
{
    set_body(r, status, ctype, text, strlen(text));
}

static void not_found(struct wisp_md_resp *r)
{
    set_text(r, 404, HTML, not_found_page);
}

static void bad_request(struct wisp_md_resp *r, const char *why)
{
    set_text(r, 400, PLAIN, why);
}

/* FNV-1a, 64 bits, as 16 lowercase hex digits: the ETag of a rendering. */
static void etag_of(const char *s, size_t n, char out[17])
{
    uint64_t h = wisp_fnv1a(WISP_FNV1A_BASIS, s, n);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

char *wisp_md_email(const struct wisp_md_site *site, const struct wisp_md_caller *caller)
{
    if (caller->who == WISP_MD_NODE)
        return wisp_xstrdup(site->node_sa ? site->node_sa : "default");
    if (caller->who != WISP_MD_POD)
        return NULL;
    const struct wisp_md_pod *p = caller->pod;
    if (p->gsa && p->gsa[0])
        return wisp_xstrdup(p->gsa);
    if (p->principal_as_email)
        return wisp_xasprintf("principal://iam.googleapis.com/projects/%s/locations/global/"
                              "workloadIdentityPools/%s.svc.id.goog/subject/ns/%s/sa/%s",
                              site->project_number, site->project_id, p->ns, p->ksa);
    return wisp_xasprintf("%s.svc.id.goog", site->project_id);
}

static json_t *number_or_string(const char *s)
{
    if (!s)
        return json_string("");
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return json_string(s);
    return json_integer(strtoll(s, NULL, 10));
}

static json_t *account(const struct wisp_md_site *s, const char *email)
{
    json_t *scopes = json_array();
    char *list = wisp_xstrdup(s->scopes ? s->scopes : WISP_MD_DEFAULT_SCOPE);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(scopes, json_string(t));
    free(list);
    return json_pack("{s:[s], s:s, s:o, s:n}", "aliases", "default", "email", email, "scopes",
                     scopes, "token");
}

/* The caller's view of /computeMetadata/v1/, keys in listing order. */
static json_t *build_tree(const struct wisp_md_site *s, const struct wisp_md_caller *caller)
{
    json_t *accts;
    char *email = wisp_md_email(s, caller);
    if (email) {
        accts = json_object();
        json_object_set_new(accts, "default", account(s, email));
        if (strcmp(email, "default") != 0)
            json_object_set_new(accts, email, account(s, email));
        free(email);
    } else {
        accts = json_false();
    }
    char zone[256];
    snprintf(zone, sizeof(zone), "projects/%s/zones/%s", s->project_number, s->zone);
    json_t *attrs = json_pack("{s:s, s:s, s:s}", "cluster-location", s->cluster_location,
                              "cluster-name", s->cluster_name, "cluster-uid", s->cluster_uid);
    json_t *instance = json_pack("{s:o, s:s, s:o, s:o, s:s}", "attributes", attrs, "hostname",
                                 s->hostname, "id", number_or_string(s->instance_id),
                                 "service-accounts", accts, "zone", zone);
    json_t *project = json_pack("{s:o, s:s}", "numeric-project-id",
                                number_or_string(s->project_number), "project-id", s->project_id);
    return json_pack("{s:o, s:o, s:{s:s}}", "instance", instance, "project", project, "universe",
                     "universe-domain", "googleapis.com");
}

/* Keys under these directories are data (attribute names, account emails)
 * and keep their spelling in recursive JSON; the others are schema and
 * become lowerCamel (WIRE.md §1.6). */
static int keys_are_data(const char *dirname)
{
    return dirname && (strcmp(dirname, "attributes") == 0 ||
                       strcmp(dirname, "service-accounts") == 0);
}

static char *camel(const char *k)
{
    char *out = wisp_xstrdup(k);
    size_t o = 0;
    for (size_t i = 0; k[i]; i++) {
        if (k[i] == '-' && k[i + 1]) {
            i++;
            out[o++] = (k[i] >= 'a' && k[i] <= 'z') ? (char)(k[i] - 32) : k[i];
        } else {
            out[o++] = k[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The recursive JSON of a subtree: computed leaves dropped, schema keys in
 * lowerCamel. NULL if it holds an unidentified caller's accounts. */
static json_t *recursive_json(const json_t *v, const char *name)
{
    if (is_unidentified(v))
        return NULL;
    if (!json_is_object(v))
        return json_deep_copy(v);
    json_t *out = json_object();
    const char *k;
    json_t *child;
    json_object_foreach((json_t *)v, k, child) {
        if (is_computed(child))
            continue;
        json_t *c = recursive_json(child, k);
        if (!c) {
            json_decref(out);
            return NULL;
        }
        if (keys_are_data(name)) {
            json_object_set_new(out, k, c);
        } else {
            char *ck = camel(k);
            json_object_set_new(out, ck, c);
            free(ck);
        }
    }
    return out;
}

static void leaf_text(struct wisp_buf *b, const json_t *v)
{
    if (json_is_string(v)) {
        wisp_buf_appends(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        wisp_buf_printf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            leaf_text(b, e);
            wisp_buf_appends(b, "\n");
        }
    }
}

/* ?alt=text on a recursive directory: one "path value" line per value. */
static void recursive_text(struct wisp_buf *b, const json_t *v, const char *path)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            if (is_computed(child))
                continue;
            char *sub = path[0] ? wisp_xasprintf("%s/%s", path, k) : wisp_xstrdup(k);
            recursive_text(b, child, sub);
            free(sub);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) recursive_text(b, e, path);
    } else {
        wisp_buf_printf(b, "%s ", path);
        leaf_text(b, v);
        wisp_buf_appends(b, "\n");
    }
}

static int truthy(const char *v)
{
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                 strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0);
}

/* Query parameters the surface reads, decoded once. */
struct query {
    char *recursive, *alt, *wait, *last_etag, *timeout, *scopes, *audience, *format;
};

static void query_parse(const char *q, struct query *out)
{
    size_t n = strlen(q);
    out->recursive = wisp_form_get(q, n, "recursive");
    out->alt = wisp_form_get(q, n, "alt");
    out->wait = wisp_form_get(q, n, "wait_for_change");
    out->last_etag = wisp_form_get(q, n, "last_etag");
    out->timeout = wisp_form_get(q, n, "timeout_sec");
    out->scopes = wisp_form_get(q, n, "scopes");
    out->audience = wisp_form_get(q, n, "audience");
    out->format = wisp_form_get(q, n, "format");
}

static void query_free(struct query *q)
{
    free(q->recursive);
    free(q->alt);
    free(q->wait);
    free(q->last_etag);
    free(q->timeout);
    free(q->scopes);
    free(q->audience);
    free(q->format);
}

/* Finds the child of dir that rest starts with. Keys may hold '/' (a
 * principal shown as the email): they match with their slashes collapsed,
 * as the path's were. *after points past the key (at '/' or NUL). */
static json_t *child_of(json_t *dir, const char *rest, const char **after)
{
    size_t seg = strcspn(rest, "/");
    char first[256];
    if (seg > 0 && seg < sizeof(first)) {
        memcpy(first, rest, seg);
        first[seg] = '\0';
        json_t *c = json_object_get(dir, first);
        if (c) {
            *after = rest + seg;
            return c;
        }
    }
    const char *k;
    json_t *c;
    json_object_foreach(dir, k, c) {
        if (!strchr(k, '/'))
            continue;
        char collapsed[1024];
        size_t o = 0;
        for (size_t i = 0; k[i] && o + 1 < sizeof(collapsed); i++) {
            if (k[i] == '/' && o > 0 && collapsed[o - 1] == '/')
                continue;
            collapsed[o++] = k[i];
        }
        collapsed[o] = '\0';
        size_t kl = strlen(collapsed);
        if (kl && strncmp(rest, collapsed, kl) == 0 && (rest[kl] == '/' || rest[kl] == '\0')) {
            *after = rest + kl;
            return c;
        }
    }
    return NULL;
}

static void unidentified(struct wisp_md_resp *r, const struct wisp_md_caller *caller)
{
    const char *why = caller->who == WISP_MD_AMBIGUOUS
                          ? "more than one pod on this node claims the caller's address; no "
                            "identity is served until that is resolved"
                      : caller->who == WISP_MD_ENDED
                          ? "the pod with the caller's address has finished"
                          : "no pod on this node is known to have the caller's address yet; "
                            "retry shortly";
    char *msg = wisp_xasprintf("GKE Metadata Server encountered an error: %s (%s)\n", why,
                               caller->peer_ip ? caller->peer_ip : "?");
    set_text(r, 503, PLAIN, msg);
    free(msg);
}

/* Asks the provider for a token; on failure answers with its status and
 * message and returns 0. */
static int ask_token(const struct wisp_md_caller *caller, const struct wisp_md_tokreq *tr,
                     wisp_md_token_fn tok, void *ctx, struct wisp_md_tok *t,
                     struct wisp_md_resp *r)
{
    memset(t, 0, sizeof(*t));
    tok(ctx, caller, tr, t);
    if (t->value)
        return 1;
    char *msg = wisp_xasprintf("%s\n", t->msg[0] ? t->msg : "Unable to generate a token");
    set_text(r, t->status >= 400 ? t->status : 500, PLAIN, msg);
    free(msg);
    return 0;
}

/* {"access_token":TOKEN,"expires_in":LEFT,"token_type":"Bearer"} as r's
 * 200 body, written in place: every cached token request comes here, and
 * formatting it through asprintf and then copying it cost about 5 % of the
 * server's CPU per request (bench/metadata). TOKEN needs no escaping (the
 * caller checked its characters). */
static void token_body(struct wisp_md_resp *r, const char *token, size_t len,
                       unsigned long long left)
{
    static const char head[] = "{\"access_token\":\"", mid[] = "\",\"expires_in\":",
                      tail[] = ",\"token_type\":\"Bearer\"}";
    char num[20]; /* 2^64 has 20 digits; written from the end */
    size_t n = 0;
    do {
        num[sizeof(num) - ++n] = (char)('0' + left % 10);
        left /= 10;
    } while (left);
    size_t total = sizeof(head) - 1 + len + sizeof(mid) - 1 + n + sizeof(tail) - 1;
    char *b = wisp_xmalloc(total + 1), *p = b;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    memcpy(p, token, len);
    p += len;
    memcpy(p, mid, sizeof(mid) - 1);
    p += sizeof(mid) - 1;
    memcpy(p, num + sizeof(num) - n, n);
    p += n;
    memcpy(p, tail, sizeof(tail));
    free(r->body);
    r->status = 200;
    r->ctype = JSON;
    r->body = b;
    r->len = total;
}

static void token_leaf(const struct wisp_md_site *site, const struct wisp_md_req *req,
                       const struct wisp_md_caller *caller, const struct query *q,
                       wisp_md_token_fn tok, void *ctx, struct wisp_md_resp *r)
{
    /* Without ?scopes= a token carries the account's own scopes. */
    char scopes[4096];
    const char *want = q->scopes && q->scopes[0] ? q->scopes : site->scopes;
    if (wisp_md_scopes_canon(want, scopes, sizeof(scopes)) != WISP_OK) {
        bad_request(r, "invalid scopes parameter\n");
        return;
    }
    struct wisp_md_tokreq tr = {.kind = 'a', .scopes = scopes};
    struct wisp_md_tok t;
    if (!ask_token(caller, &tr, tok, ctx, &t, r))
        return;
    long long left = t.exp - req->now;
    size_t len = strlen(t.value);
    if (left < 1 || strspn(t.value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_.~+/=") != len)
        set_text(r, 503, PLAIN, "GKE Metadata Server encountered an error: no usable token\n");
    else
        token_body(r, t.value, len, (unsigned long long)left);
    wisp_secret_free(t.value, 0);
}

static void identity_leaf(const struct wisp_md_site *site, const struct wisp_md_caller *caller,
                          const struct query *q, wisp_md_token_fn tok, void *ctx,
                          struct wisp_md_resp *r)
{
    const char *aud = q->audience;
    if (!aud || !aud[0]) {
        bad_request(r, "non-empty audience parameter required\n");
        return;
    }
    size_t al = strlen(aud);
    for (size_t i = 0; i < al; i++) {
        if ((unsigned char)aud[i] < 0x21 || aud[i] == 0x7f) {
            bad_request(r, "invalid audience parameter\n");
            return;
        }
    }
    if (al > MAX_AUDIENCE) {
        bad_request(r, "audience parameter too long\n");
        return;
    }
    int full = 0;
    if (q->format && strcmp(q->format, "full") == 0)
        full = 1;
    else if (q->format && strcmp(q->format, "standard") != 0) {
        bad_request(r, "format must be standard or full\n");
        return;
    }
    if (!site->gce_mode && caller->who == WISP_MD_POD &&
        !(caller->pod->gsa && caller->pod->gsa[0])) {
        char *msg = wisp_xasprintf(
            "Your Kubernetes service account (%s/%s) is not annotated with a target Google "
            "service account, which is a requirement for retrieving Identity Tokens using "
            "Workload Identity.\nPlease add the iam.gke.io/gcp-service-account=[GSA_NAME]@"
            "[PROJECT_ID] annotation to your Kubernetes service account.\nRefer to "
            "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity\n",
            caller->pod->ns, caller->pod->ksa);
        set_text(r, 404, PLAIN, msg);
        free(msg);
        return;
    }
    struct wisp_md_tokreq tr = {.kind = 'i', .audience = aud, .full = full};
    struct wisp_md_tok t;
    if (!ask_token(caller, &tr, tok, ctx, &t, r))
        return;
    set_text(r, 200, TEXT, t.value);
    wisp_secret_free(t.value, 0);
}

/* Renders node v (a directory or a value) per the query into r, with its
 * ETag; sets r->wait when the client asked to wait for a change. */
static void render(const struct wisp_md_caller *caller, json_t *v, const char *name,
                   const struct query *q, struct wisp_md_resp *r)
{
    int dir = json_is_object(v) || is_unidentified(v);
    int recursive = truthy(q->recursive);
    int wait = truthy(q->wait);
    struct wisp_buf def, alt;
    wisp_buf_init(&def, 1 << 20);
    wisp_buf_init(&alt, 1 << 20);
    int alt_json = 0, alt_text = 0;
    if (q->alt) {
        if (strcmp(q->alt, "json") == 0)
            alt_json = 1;
        else if (strcmp(q->alt, "text") == 0)
            alt_text = 1;
        else {
            bad_request(r, "Invalid value for alt: must be json or text\n");
            goto out;
        }
    }
    const char *ctype = TEXT;
    if (dir && !recursive) {
        if (q->alt) {
            bad_request(r, "Non-recursive directory listings do not support ?alt.\n");
            goto out;
        }
        if (wait) {
            bad_request(r, "Non-recursive directory listings do not support ?wait_for_change.\n");
            goto out;
        }
        if (is_unidentified(v)) {
            unidentified(r, caller);
            goto out;
        }
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) {
            if (!strcmp(k, "token") || !is_computed(c))
                wisp_buf_printf(&def, "%s%s\n", k, json_is_object(c) || is_unidentified(c) ? "/" : "");
        }
    } else if (dir) {
        json_t *j = recursive_json(v, name);
        if (!j) {
            unidentified(r, caller);
            goto out;
        }
        char *s = json_dumps(j, JSON_COMPACT);
        wisp_buf_appends(&def, s);
        free(s);
        json_decref(j);
        ctype = JSON;
        if (alt_text) {
            recursive_text(&alt, v, "");
            ctype = TEXT;
        }
    } else {
        leaf_text(&def, v);
        if (alt_json) {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            wisp_buf_appends(&alt, s);
            free(s);
            ctype = JSON;
        }
    }
    etag_of(def.data ? def.data : "", def.len, r->etag);
    if (alt.len || (alt_text && dir && recursive))
        set_body(r, 200, ctype, alt.data ? alt.data : "", alt.len);
    else
        set_body(r, 200, ctype, def.data ? def.data : "", def.len);
    if (wait && !(q->last_etag && strcmp(q->last_etag, r->etag) != 0)) {
        long t = q->timeout ? strtol(q->timeout, NULL, 10) : MAX_WAIT;
        r->wait = 1;
        r->wait_sec = t <= 0 ? 0 : t > MAX_WAIT ? MAX_WAIT : (unsigned)t;
    }
out:
    wisp_buf_free(&def);
    wisp_buf_free(&alt);
}

static void redirect(const struct wisp_md_req *req, const char *canon, struct wisp_md_resp *r)
{
    r->location = req->query[0] ? wisp_xasprintf("%s/?%s", canon, req->query)
                                : wisp_xasprintf("%s/", canon);
    char *body = wisp_xasprintf("%s/\n", canon);
    set_text(r, 301, "text/html", body);
    free(body);
}

static int host_ok(const struct wisp_md_site *site, const char *host)
{
    static const char *const names[] = {"metadata.google.internal", "metadata", "169.254.169.254"};
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == n && strncmp(names[i], host, n) == 0)
            return 1;
    }
    for (const char *const *h = site->extra_hosts; h && *h; h++) {
        if (strlen(*h) == n && strncmp(*h, host, n) == 0)
            return 1;
    }
    return 0;
}

/* Under /computeMetadata/v1: walk the caller's tree along rest. */
static void tree_answer(const struct wisp_md_site *site, const struct wisp_md_req *req,
                        const struct wisp_md_caller *caller, const char *canon, const char *rest,
                        const struct query *q, wisp_md_token_fn tok, void *ctx,
                        struct wisp_md_resp *r)
{
    /* The hot path, a token, skips building the tree: the same answer the
     * walk below would reach for …/service-accounts/{default|EMAIL}/token. */
    static const char sa[] = "instance/service-accounts/";
    size_t rl = strlen(rest);
    if ((caller->who == WISP_MD_POD || caller->who == WISP_MD_NODE) &&
        strncmp(rest, sa, sizeof(sa) - 1) == 0 && rl > sizeof(sa) + 6 &&
        strcmp(rest + rl - 6, "/token") == 0) {
        const char *acct = rest + sizeof(sa) - 1;
        size_t al = rl - 6 - (sizeof(sa) - 1);
        char *email = wisp_md_email(site, caller);
        int hit = (al == 7 && strncmp(acct, "default", 7) == 0) ||
                  (email && strlen(email) == al && strncmp(acct, email, al) == 0 &&
                   !memchr(acct, '/', al));
        free(email);
        if (hit) {
            token_leaf(site, req, caller, q, tok, ctx, r);
            return;
        }
    }
    json_t *root = build_tree(site, caller);
    json_t *v = root;
    char name[1024] = "", pname[1024] = "";
    int slash = rest[0] == '\0' || rest[strlen(rest) - 1] == '/';
    const char *p = rest;
    while (*p) {
        if (is_unidentified(v)) {
            unidentified(r, caller);
            goto out;
        }
        if (!json_is_object(v)) {
            not_found(r);
            goto out;
        }
        const char *after;
        json_t *c = child_of(v, p, &after);
        if (!c && strcmp(pname, "service-accounts") == 0 && strncmp(p, "identity", 8) == 0 &&
            (p[8] == '\0' || p[8] == '/')) {
            /* identity is served under an account but not listed (GKE). */
            if (p[8] == '/')
                not_found(r);
            else
                identity_leaf(site, caller, q, tok, ctx, r);
            goto out;
        }
        if (!c) {
            not_found(r);
            goto out;
        }
        snprintf(pname, sizeof(pname), "%s", name);
        snprintf(name, sizeof(name), "%.*s", (int)(after - p), p);
        v = c;
        p = after;
        while (*p == '/')
            p++;
    }
    int dir = json_is_object(v) || is_unidentified(v);
    if (dir && !slash) {
        redirect(req, canon, r);
        goto out;
    }
    if (!dir && slash) {
        not_found(r);
        goto out;
    }
    if (is_computed(v)) {
        if (caller->who != WISP_MD_POD && caller->who != WISP_MD_NODE) {
            unidentified(r, caller);
            goto out;
        }
        token_leaf(site, req, caller, q, tok, ctx, r);
        goto out;
    }
    render(caller, v, name, q, r);
out:
    json_decref(root);
}

/* Headers that name a client address other than the peer's. The caller is
 * only ever its TCP peer address, so a request that carries one of these
 * came through a proxy or is trying to pass as another pod: refused, as
 * GCE refuses X-Forwarded-For (SECURITY.md §A5). */
static const char *const forwarding[] = {
    "x-forwarded-for", "forwarded",        "x-real-ip",          "client-ip",
    "x-client-ip",     "true-client-ip",   "x-originating-ip",   "x-cluster-client-ip",
};

void wisp_md_req_headers(struct wisp_md_req *req, wisp_md_header_fn get, void *ctx)
{
    const char *first = NULL;
    req->flavor_repeated = get(ctx, "metadata-flavor", &first) > 1;
    req->flavor = first;
    req->forwarded = 0;
    for (size_t i = 0; i < sizeof(forwarding) / sizeof(forwarding[0]); i++) {
        if (get(ctx, forwarding[i], &first) > 0)
            req->forwarded = 1;
    }
}

void wisp_md_answer(const struct wisp_md_site *site, const struct wisp_md_req *req,
                    const struct wisp_md_caller *caller, wisp_md_token_fn tok, void *tok_ctx,
                    struct wisp_md_resp *r)
{
    char canon[1024];
    struct query q = {0};
    memset(r, 0, sizeof(*r));
    r->flavor = 1;
    if (req->forwarded) {
        set_text(r, 403, PLAIN,
                 "GKE Metadata Server encountered an error: requests with X-Forwarded-For or "
                 "another forwarding header are refused\n");
        r->nosniff = 1;
        return;
    }
    if (!host_ok(site, req->host)) {
        set_text(r, 403, PLAIN,
                 "GKE Metadata Server encountered an error: the Host header does not name the "
                 "metadata server\n");
        r->nosniff = 1;
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        set_text(r, 405, PLAIN, "Method Not Allowed\n");
        r->allow_get = 1;
        return;
    }
    /* Exactly one field, exactly "Google": a repeated field is refused
     * even when its first value is right, so that no front end and no
     * parser that keeps the last value can read the request differently. */
    if (!req->flavor || req->flavor_repeated || strcmp(req->flavor, "Google") != 0) {
        set_text(r, 403, PLAIN, WISP_MD_FLAVOR_403);
        r->flavor = 0;
        r->nosniff = 1;
        return;
    }
    if (wisp_md_path_canon(req->path, canon, sizeof(canon)) != WISP_OK) {
        not_found(r);
        return;
    }
    query_parse(req->query, &q);
    if (strcmp(canon, "/") == 0) {
        set_text(r, 200, TEXT, "computeMetadata/\n");
        etag_of(r->body, r->len, r->etag);
    } else if (strcmp(canon, "/computeMetadata") == 0 || strcmp(canon, PREFIX) == 0) {
        redirect(req, canon, r);
    } else if (strcmp(canon, "/computeMetadata/") == 0) {
        set_text(r, 200, TEXT, "v1/\n");
        etag_of(r->body, r->len, r->etag);
    } else if (strncmp(canon, PREFIX "/", sizeof(PREFIX)) == 0) {
        tree_answer(site, req, caller, canon, canon + sizeof(PREFIX), &q, tok, tok_ctx, r);
    } else {
        not_found(r);
    }
    query_free(&q);
}

void wisp_md_resp_free(struct wisp_md_resp *r)
{
    WISP_FREE(r->body);
    WISP_FREE(r->location);
}
