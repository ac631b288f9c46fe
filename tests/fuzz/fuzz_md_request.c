/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes a whole metadata request without a socket (SECURITY.md §B18): the
 * raw bytes go through h2o's own parser (picohttpparser, the function
 * h2o's HTTP/1 reader calls), lib/http's strict re-read of the head, the
 * header rules wisp-metadata applies (wisp_md_req_headers), caller lookup
 * in a fixed pod table, and the surface. The first input byte picks the
 * peer address: a pod, a pod linked to a GSA, a hostNetwork pod's address,
 * or a stranger. Invariants: no crash or leak; only an identified pod gets
 * a token, and only its own; a hostNetwork pod's address is never a pod;
 * forwarding headers are 403 and a missing or repeated Metadata-Flavor
 * is never served. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http/head.h"
#include "wisp/metadata.h"

/* picohttpparser's interface, as built into Debian's libh2o (which ships
 * no header for it): one header field, and the request parser. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

#define MAX_HEADERS 100 /* h2o's H2O_MAX_HEADERS: the array it parses into */
#define HEAD_BYTES 8192 /* wisp-metadata's max_header_bytes */
#define HEAD_FIELDS 64  /* lib/http's default max_headers */

static const char *const peers[] = {"10.0.0.5", "10.0.0.6", "10.128.0.2", "10.0.0.99"};

static const char pods_json[] =
    "{\"items\":["
    "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"a\",\"uid\":\"uid-a\"},"
    "\"spec\":{\"serviceAccountName\":\"app\"},\"status\":{\"podIP\":\"10.0.0.5\","
    "\"phase\":\"Running\"}},"
    "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"l\",\"uid\":\"uid-l\"},"
    "\"spec\":{\"serviceAccountName\":\"linked\"},\"status\":{\"podIP\":\"10.0.0.6\","
    "\"phase\":\"Running\"}},"
    "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"h\",\"uid\":\"uid-h\"},"
    "\"spec\":{\"serviceAccountName\":\"linked\",\"hostNetwork\":true},"
    "\"status\":{\"podIP\":\"10.128.0.2\",\"phase\":\"Running\"}}]}";
static const char sas_json[] =
    "{\"items\":[{\"metadata\":{\"namespace\":\"ns\",\"name\":\"linked\",\"annotations\":"
    "{\"iam.gke.io/gcp-service-account\":\"g@p.iam.gserviceaccount.com\"}}}]}";

static const struct wisp_md_site site = {
    .project_id = "p", .project_number = "1", .cluster_name = "c",
    .cluster_location = "us-central1", .cluster_uid = "uid", .hostname = "h",
    .instance_id = "2", .zone = "us-central1-a"};

/* The token provider: "ya29.UID", so a body tells whose token it is. */
static void tok(void *ctx, const struct wisp_md_caller *caller, const struct wisp_md_tokreq *r,
                struct wisp_md_tok *out)
{
    (void)ctx;
    (void)r;
    if (caller->who != WISP_MD_POD)
        abort(); /* the surface asked for a token for no pod */
    size_t n = strlen(caller->pod->uid) + 6;
    out->value = malloc(n);
    snprintf(out->value, n, "ya29.%s", caller->pod->uid);
    out->exp = 2000000000LL;
}

struct hdrs {
    const struct phr_header *h;
    size_t n;
    char first[HEAD_BYTES + 1];
};

static size_t get(void *ctx, const char *name, const char **first)
{
    struct hdrs *h = ctx;
    size_t count = 0, len = strlen(name);
    *first = NULL;
    for (size_t i = 0; i < h->n; i++) {
        if (h->h[i].name_len != len || strncasecmp(h->h[i].name, name, len) != 0)
            continue;
        if (count++ == 0 && h->h[i].value_len < sizeof(h->first)) {
            memcpy(h->first, h->h[i].value, h->h[i].value_len);
            h->first[h->h[i].value_len] = '\0';
            *first = h->first;
        }
    }
    return count;
}

static struct wisp_md_pods *pods;

static void setup(void)
{
    json_t *p = json_loads(pods_json, 0, NULL), *s = json_loads(sas_json, 0, NULL);
    pods = wisp_md_pods_new(1, &(struct wisp_md_pods_hooks){0});
    if (!p || !s || wisp_md_pods_list(pods, 's', s, NULL) || wisp_md_pods_list(pods, 'p', p, NULL))
        abort();
    json_decref(p);
    json_decref(s);
}

/* A malloc'd copy of s[0..n) as a C string. */
static char *dup_n(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    memcpy(o, s, n);
    o[n] = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pods)
        setup();
    if (size < 1)
        return 0;
    const char *peer = peers[data[0] % 4];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    const char *method, *target;
    size_t method_len, target_len, n_headers = MAX_HEADERS;
    int minor;
    struct phr_header headers[MAX_HEADERS];
    if (phr_parse_request(buf, len, &method, &method_len, &target, &target_len, &minor, headers,
                          &n_headers, 0) <= 0)
        return 0; /* h2o answers 400 itself, or waits for more */
    struct wisp__http_head head;
    if (wisp__http_head_check(buf, len, HEAD_BYTES, HEAD_FIELDS, &head) != WISP__HEAD_OK)
        return 0; /* lib/http answers 400/414/431 and closes */
    if (target_len == 0 || target[0] != '/')
        return 0; /* lib/http: only origin-form */

    /* As lib/http builds struct wisp_http_req: path and query split at the
     * first '?', Host lowercased without its port. */
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    char *m = dup_n(method, method_len);
    char *path = dup_n(target, path_len);
    char *query = q ? dup_n(q + 1, target_len - path_len - 1) : dup_n("", 0);
    size_t host_len = head.host.p ? head.host.len : 0;
    if (host_len && head.host.p[0] != '[' && memchr(head.host.p, ':', host_len))
        host_len = (size_t)((const char *)memchr(head.host.p, ':', host_len) - head.host.p);
    char *host = dup_n(head.host.p ? head.host.p : "", host_len);
    for (char *c = host; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');

    struct wisp_md_req req = {.method = m, .host = host, .path = path, .query = query,
                              .now = 1700000000LL};
    static struct hdrs h;
    h.h = headers;
    h.n = n_headers;
    wisp_md_req_headers(&req, get, &h);

    const struct wisp_md_snap *snap = wisp_md_pods_enter(pods, 0);
    struct wisp_md_caller caller = {WISP_MD_UNKNOWN, NULL, peer};
    caller.who = wisp_md_snap_find(snap, peer, &caller.pod);
    if (strcmp(peer, "10.128.0.2") == 0 && caller.who != WISP_MD_UNKNOWN)
        abort(); /* a hostNetwork pod was indexed by the node's address */

    struct wisp_md_resp r;
    wisp_md_answer(&site, &req, &caller, tok, NULL, &r);
    if (req.forwarded && r.status != 403)
        abort(); /* the first rule: nothing else is looked at */
    if ((!req.flavor || req.flavor_repeated) && r.status < 400)
        abort(); /* refused (403, or 405/403 for method or Host first) */
    if (r.status != 403 && !r.flavor)
        abort(); /* only GKE's header-less 403 goes without Metadata-Flavor */
    const char *t = r.body ? strstr(r.body, "ya29.") : NULL;
    if (t && (caller.who != WISP_MD_POD || strncmp(t + 5, caller.pod->uid,
                                                     strlen(caller.pod->uid)) != 0))
        abort(); /* a token for someone other than the caller */
    if (r.status == 200 && r.body && strstr(r.body, "kube-env"))
        abort();
    wisp_md_resp_free(&r);
    wisp_md_pods_leave(pods, 0);
    free(m);
    free(path);
    free(query);
    free(host);
    return 0;
}
