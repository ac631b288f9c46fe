/* SPDX-License-Identifier: Apache-2.0 */
/* The request handler: identifies the caller by its source address in the
 * current pod snapshot (never by anything it sends), asks the surface for
 * the answer, re-checks that the address still belongs to the same pod
 * before replying (SECURITY.md §A1), and serves wait_for_change with a
 * bounded number of bounded waits. Each address is held to its rate limit
 * before anything else is done for it. */
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/hash.h"
#include "wisp/log.h"
#include "md.h"

#define STEP_MS 20

static atomic_int waiting;

/* The cache key of a caller's token. */
static void key_of(const struct wisp_md_caller *c, char kind, const char *what,
                   struct wisp_md_key *k)
{
    memset(k, 0, sizeof(*k));
    if (c->who == WISP_MD_NODE) {
        k->uid = "node";
        k->ns = k->pod = k->ksa = k->quota = "";
        k->gsa = md.site.node_sa ? md.site.node_sa : "";
    } else {
        k->uid = c->pod->uid;
        k->ns = c->pod->ns;
        k->pod = c->pod->name;
        k->ksa = c->pod->ksa;
        k->gsa = c->pod->gsa ? c->pod->gsa : "";
        k->quota = c->pod->quota ? c->pod->quota : "";
    }
    k->kind = kind;
    k->what = what;
    k->keep = kind == 'a' && strcmp(what, WISP_MD_DEFAULT_SCOPE) == 0;
}

void md_prefetch(const struct wisp_md_pod *p)
{
    struct wisp_md_caller c = {WISP_MD_POD, p, p->ip};
    struct wisp_md_key k;
    key_of(&c, 'a', WISP_MD_DEFAULT_SCOPE, &k);
    wisp_md_cache_prefetch(md.cache, &k);
}

static void token(void *ctx, const struct wisp_md_caller *caller, const struct wisp_md_tokreq *r,
                  struct wisp_md_tok *out)
{
    struct md_thread *t = ctx;
    struct wisp_md_key k;
    /* Access tokens are keyed by their scopes as they are (borrowed). */
    char *what = r->kind == 'a' ? NULL
                                : wisp_xasprintf("%s|%s", r->full ? "full" : "std", r->audience);
    key_of(caller, r->kind, what ? what : r->scopes, &k);
    wisp_md_cache_get(md.cache, t->view, &k, out);
    free(what);
}

/* The UID in the node's record for address ip into got ("" if none). */
static void record_read(const char *ip, char *got, size_t len)
{
    char path[PATH_MAX];
    got[0] = '\0';
    if (strchr(ip, '/'))
        return;
    snprintf(path, sizeof(path), "%s/%s", md.pod_addresses, ip);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, got, len - 1);
    close(fd);
    got[n > 0 ? n : 0] = '\0';
}

/* Whether the node's own record says pod uid holds address ip now. The
 * pod table follows the API and may lag behind the node: an address can
 * already belong to a new pod (of another identity) while the table still
 * shows the last holder. The node writes the record before a pod can send
 * from an address, removes it after it no longer can, and raises the
 * record's generation after each change; so what this worker read of an
 * address stands while the generation does, and the cached path makes no
 * system call (reading the file on every request doubled its CPU). The
 * generation is loaded before the file is read: a change in between only
 * makes the next request read it again. */
static int node_says(struct md_thread *t, const char *ip, const char *uid)
{
    struct md_holder *h = NULL;
    uint64_t gen = 0;
    if (md.pod_addresses_gen && strlen(ip) < sizeof(h->ip)) {
        h = &t->holders[wisp_fnv1a_str(ip) % MD_HOLDER_SLOTS];
        gen = atomic_load_explicit(md.pod_addresses_gen, memory_order_acquire);
        if (h->gen == gen && strcmp(h->ip, ip) == 0)
            return h->uid[0] && strcmp(h->uid, uid) == 0;
    }
    char got[64];
    record_read(ip, got, sizeof(got));
    if (h && strlen(got) < sizeof(h->uid)) {
        strcpy(h->ip, ip);
        strcpy(h->uid, got);
        h->gen = gen;
    }
    return got[0] && strcmp(got, uid) == 0;
}

/* Who is at the caller's address in snapshot s. A pod the node's record
 * does not confirm is not yet known: the caller waits for the watch, as a
 * new pod does, and is never given the table's stale identity (§A1).
 * Returns 1 in that case (the table is behind the node), else 0. */
static int identify(struct md_thread *t, const struct wisp_md_snap *s, const char *ip,
                    struct wisp_md_caller *c)
{
    c->peer_ip = ip;
    c->pod = NULL;
    if (md.site.gce_mode) {
        c->who = WISP_MD_NODE;
        return 0;
    }
    c->who = wisp_md_snap_find(s, ip, &c->pod);
    if (c->who == WISP_MD_POD && md.pod_addresses && !node_says(t, ip, c->pod->uid)) {
        c->who = WISP_MD_UNKNOWN;
        c->pod = NULL;
        return 1;
    }
    return 0;
}

static int same_pod(const struct wisp_md_caller *a, const struct wisp_md_caller *b)
{
    return a->who == b->who && (a->who != WISP_MD_POD || strcmp(a->pod->uid, b->pod->uid) == 0);
}

static void respond(struct wisp_http_req *req, struct wisp_md_resp *r)
{
    if (r->flavor)
        wisp_http_add_header(req, "Metadata-Flavor", "Google");
    wisp_http_add_header(req, "Server",
                         md.site.gce_mode ? "Metadata Server for VM" : "GKE Metadata Server");
    if (r->etag[0])
        wisp_http_add_header(req, "ETag", r->etag);
    if (r->location)
        wisp_http_add_header(req, "Location", r->location);
    if (r->allow_get)
        wisp_http_add_header(req, "Allow", "GET");
    if (r->nosniff)
        wisp_http_add_header(req, "X-Content-Type-Options", "nosniff");
    wisp_http_respond(req, r->status, r->ctype, r->body, r->len);
}

/* Replaces r with a plain-text answer of this file's own making. */
static void plain(struct wisp_md_resp *r, int status, const char *text)
{
    wisp_md_resp_free(r);
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->flavor = 1;
    r->ctype = "text/plain; charset=utf-8";
    r->body = wisp_xstrdup(text);
    r->len = strlen(r->body);
}

static size_t header_of(void *ctx, const char *name, const char **first)
{
    struct wisp_http_req *req = ctx;
    *first = wisp_http_header(req, name);
    return *first ? wisp_http_header_count(req, name) : 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Over the caller's rate limit (SECURITY.md §B15): 429 before any other
 * work, as GCE's metadata server answers a caller that sends too fast. */
static int throttled(struct wisp_http_req *req)
{
    if (wisp_md_limiter_take(md.limiter, req->peer_ip, now_ns()))
        return 0;
    struct wisp_md_resp r = {0};
    plain(&r, 429, "GKE Metadata Server encountered an error: too many requests from this "
                   "address; retry later\n");
    wisp_http_add_header(req, "Retry-After", "1");
    respond(req, &r);
    wisp_md_resp_free(&r);
    return 1;
}

void md_serve(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    struct md_thread *t = req->thread_data;
    struct wisp_md_req r = {
        .method = req->method,
        .host = req->host,
        .path = req->path,
        .query = req->query,
    };
    struct wisp_md_caller caller;
    struct wisp_md_resp resp;
    if (throttled(req))
        return;
    wisp_md_req_headers(&r, header_of, req);
    const struct wisp_md_snap *s = wisp_md_pods_enter(md.pods, t->slot);
    if (identify(t, s, req->peer_ip, &caller))
        wisp_log_info("serve", "%s: the pod table is behind the node (another pod has the "
                               "address now); waiting for the watch",
                      req->peer_ip);
    /* A new pod's first request may beat the watch: wait for it briefly
     * rather than answer "unknown" (SECURITY.md §A3); never longer. A
     * request refused whoever sends it is answered at once. */
    int refused = r.forwarded || r.flavor_repeated || !r.flavor || strcmp(r.flavor, "Google");
    if (caller.who == WISP_MD_UNKNOWN && !refused && strstr(req->path, "service-accounts")) {
        uint64_t gen = wisp_md_snap_gen(s);
        /* The watch usually delivers within a few ms of the pod's start:
         * look again after 1 ms, doubling up to STEP_MS, so the race costs
         * a new pod about what it lasts and a stranger few wake-ups. */
        unsigned step = 1;
        for (unsigned ms = 0; ms < md.unknown_wait_ms && caller.who == WISP_MD_UNKNOWN;
             ms += step, step = step * 2 > STEP_MS ? STEP_MS : step * 2) {
            wisp_md_pods_leave(md.pods, t->slot);
            usleep(step * 1000);
            s = wisp_md_pods_enter(md.pods, t->slot);
            if (wisp_md_snap_gen(s) != gen) {
                gen = wisp_md_snap_gen(s);
                identify(t, s, req->peer_ip, &caller);
            }
        }
    }
    r.now = (long long)time(NULL);
    wisp_md_answer(&md.site, &r, &caller, token, t, &resp);
    struct wisp_md_caller again;
    identify(t, wisp_md_pods_current(md.pods), req->peer_ip, &again);
    if (!same_pod(&caller, &again)) {
        plain(&resp, 503, "GKE Metadata Server encountered an error: the caller's address "
                          "changed hands during the request; retry\n");
    } else if (resp.wait && resp.wait_sec &&
               atomic_fetch_add(&waiting, 1) < md.waiters_max) {
        /* Long poll: the answer can change only with the pod table. */
        char etag[17];
        memcpy(etag, resp.etag, sizeof(etag));
        uint64_t gen = wisp_md_snap_gen(wisp_md_pods_current(md.pods));
        for (unsigned ms = 0; ms < resp.wait_sec * 1000u && !md.stopping; ms += 100) {
            wisp_md_pods_leave(md.pods, t->slot);
            usleep(100000);
            s = wisp_md_pods_enter(md.pods, t->slot);
            if (wisp_md_snap_gen(s) == gen)
                continue;
            gen = wisp_md_snap_gen(s);
            identify(t, s, req->peer_ip, &caller);
            struct wisp_md_resp next;
            r.now = (long long)time(NULL);
            wisp_md_answer(&md.site, &r, &caller, token, t, &next);
            if (next.status != 200 || strcmp(next.etag, etag) != 0) {
                wisp_md_resp_free(&resp);
                resp = next;
                break;
            }
            wisp_md_resp_free(&next);
        }
        atomic_fetch_sub(&waiting, 1);
    } else if (resp.wait && resp.wait_sec) {
        atomic_fetch_sub(&waiting, 1);
    }
    respond(req, &resp);
    wisp_md_resp_free(&resp);
    wisp_md_pods_leave(md.pods, t->slot);
}
