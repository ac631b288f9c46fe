/* SPDX-License-Identifier: Apache-2.0 */
/* The GKE metadata server's pure parts (lib/metadata/): the HTTP surface as a
 * function from a request and the identified caller to an answer, the pod
 * table of one node (IP -> pod, read without locks), and the token cache
 * (per pod UID, GSA and scopes; single-flight, background refresh). The
 * binary (src/wisp-metadata/) adds the sockets and the upstream calls. */
#ifndef WISP_METADATA_H
#define WISP_METADATA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

/* ---- the caller ---------------------------------------------------------- */

/* One pod as the metadata server sees it, joined with its ServiceAccount's
 * annotations. Immutable once published in a snapshot. */
struct wisp_md_pod {
    char *ns, *name, *uid, *ksa, *ip;
    char *gsa;      /* iam.gke.io/gcp-service-account, or NULL */
    char *quota;    /* iam.gke.io/credential-quota-project, or NULL */
    int principal_as_email; /* iam.gke.io/return-principal-id-as-email: "true" */
    int host_network;
    int terminal;   /* phase Succeeded or Failed: its sandbox is gone */
};

enum wisp_md_who {
    WISP_MD_POD,       /* a live pod of this node: its KSA's identity */
    WISP_MD_NODE,      /* GCE_METADATA node: the node's own identity */
    WISP_MD_UNKNOWN,   /* no pod of this node has the address (yet) */
    WISP_MD_AMBIGUOUS, /* two pods claim the address: fail closed */
    WISP_MD_ENDED,     /* the only pod with the address has finished */
};

struct wisp_md_caller {
    enum wisp_md_who who;
    const struct wisp_md_pod *pod; /* for WISP_MD_POD */
    const char *peer_ip;
};

/* ---- the surface --------------------------------------------------------- */

/* What is fixed for the process: project, cluster, node. */
struct wisp_md_site {
    const char *project_id, *project_number;
    const char *cluster_name, *cluster_location, *cluster_uid;
    const char *hostname;    /* instance/hostname */
    const char *instance_id; /* instance/id, digits */
    const char *zone;        /* e.g. us-central1-a */
    const char *node_sa;     /* GCE_METADATA: the node's service account email */
    const char *scopes;      /* the account's scopes, canonical; NULL: cloud-platform */
    const char *const *extra_hosts; /* Host names accepted besides the metadata names */
    int gce_mode;            /* GCE_METADATA instead of GKE_METADATA */
};

struct wisp_md_req {
    const char *method, *host, *path, *query; /* as lib/http gives them */
    const char *flavor; /* the Metadata-Flavor header's value, or NULL */
    int flavor_repeated; /* it carries more than one Metadata-Flavor field */
    int forwarded;      /* it carries a forwarding header (X-Forwarded-For, Forwarded, ...) */
    long long now;      /* wall-clock seconds */
};

/* A request's header fields as the server holds them: returns how many
 * fields are named name (lowercase, compared case-insensitively) and sets
 * *first to the first one's value, or NULL. */
typedef size_t (*wisp_md_header_fn)(void *ctx, const char *name, const char **first);

/* Fills req->flavor, flavor_repeated and forwarded through get: the one
 * place that knows which request headers the surface reads. */
void wisp_md_req_headers(struct wisp_md_req *req, wisp_md_header_fn get, void *ctx);

/* A token the surface asks for. kind 'a' access token (scopes: canonical,
 * comma-joined), 'i' ID token (audience, full). */
struct wisp_md_tokreq {
    char kind;
    const char *scopes;
    const char *audience;
    int full;
};

/* The answer of a token provider: value (malloc'd) and its wall-clock
 * expiry, or status (>= 400) and a message. */
struct wisp_md_tok {
    char *value;
    long long exp;
    int status;
    char msg[1024];
};

typedef void (*wisp_md_token_fn)(void *ctx, const struct wisp_md_caller *caller,
                                 const struct wisp_md_tokreq *r, struct wisp_md_tok *out);

struct wisp_md_resp {
    int status;
    const char *ctype; /* static */
    char *body;        /* malloc'd (free with wisp_md_resp_free) */
    size_t len;
    int flavor;        /* send Metadata-Flavor: Google */
    int nosniff;       /* send X-Content-Type-Options: nosniff */
    char etag[17];     /* "" for none */
    char *location;    /* 301: malloc'd */
    int allow_get;     /* 405: send Allow: GET */
    /* wait_for_change: the current answer is in the fields above; the caller
     * may wait up to wait_sec for a change, then ask again. */
    int wait;
    unsigned wait_sec;
};

void wisp_md_answer(const struct wisp_md_site *site, const struct wisp_md_req *req,
                    const struct wisp_md_caller *caller, wisp_md_token_fn tok, void *tok_ctx,
                    struct wisp_md_resp *out);
void wisp_md_resp_free(struct wisp_md_resp *r);

/* The email a caller's account shows: the GSA, the pool or the principal
 * (GKE), or the node's account (GCE). Caller frees. */
char *wisp_md_email(const struct wisp_md_site *site, const struct wisp_md_caller *caller);

/* Canonicalises a raw request path into out: percent-decoded once, slashes
 * collapsed, a trailing slash kept; "." and ".." segments, decoded bytes
 * that are controls, space, '/', '%', '?', '#' or '\\', and paths over
 * outlen or 32 segments are refused (WISP_EINVAL). */
enum wisp_err wisp_md_path_canon(const char *raw, char *out, size_t outlen);

/* Scopes from "?scopes=a,b" (commas or spaces) as a sorted, de-duplicated,
 * comma-joined list; NULL or "" gives the default (cloud-platform).
 * WISP_EINVAL for characters outside [A-Za-z0-9:/._-] or over 16 scopes. */
enum wisp_err wisp_md_scopes_canon(const char *in, char *out, size_t outlen);

#define WISP_MD_DEFAULT_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define WISP_MD_FLAVOR_403                                                                         \
    "GKE Metadata Server encountered an error: Missing required header \"Metadata-Flavor\": "     \
    "\"Google\"\n"

/* ---- the pod table ------------------------------------------------------- */

/* Written by the Kubernetes watches (one writer at a time, serialised
 * inside), read by the HTTP workers without locks: readers enter with their
 * slot, use the snapshot, and leave; old snapshots are freed once no reader
 * that could see them is inside (epoch-based reclamation). */
struct wisp_md_pods;
struct wisp_md_snap;

/* What the table tells the cache when it publishes a change. */
struct wisp_md_pods_hooks {
    void (*gone)(void *ctx, const char *uid);                /* pod deleted or finished */
    void (*identity)(void *ctx, const struct wisp_md_pod *p); /* new, or GSA/quota changed */
    void *ctx;
};

struct wisp_md_pods *wisp_md_pods_new(unsigned n_slots, const struct wisp_md_pods_hooks *hooks);
void wisp_md_pods_free(struct wisp_md_pods *p);

/* kind is 'p' (pods) or 's' (ServiceAccounts). A list replaces every object
 * of its kind; an event line is one watch event {"type","object"}. Both
 * publish at once. *rv gets the list's / event's resourceVersion (caller
 * frees; may be NULL). An event returns WISP_EGONE for an ERROR event with
 * code 410 (re-list), WISP_EINVAL for a line that is not an event. */
enum wisp_err wisp_md_pods_list(struct wisp_md_pods *p, char kind, const json_t *list, char **rv);
enum wisp_err wisp_md_pods_event(struct wisp_md_pods *p, char kind, const char *line, size_t len,
                                 char **rv);
/* Frees retired snapshots no reader can still see; the writer calls it
 * now and then (publishing does too). */
void wisp_md_pods_reclaim(struct wisp_md_pods *p);

const struct wisp_md_snap *wisp_md_pods_enter(struct wisp_md_pods *p, unsigned slot);
/* The newest snapshot, for a reader already inside. */
const struct wisp_md_snap *wisp_md_pods_current(struct wisp_md_pods *p);
void wisp_md_pods_leave(struct wisp_md_pods *p, unsigned slot);

/* Who has address ip in s. */
enum wisp_md_who wisp_md_snap_find(const struct wisp_md_snap *s, const char *ip,
                                   const struct wisp_md_pod **out);
uint64_t wisp_md_snap_gen(const struct wisp_md_snap *s);
size_t wisp_md_snap_count(const struct wisp_md_snap *s);

/* ---- the per-caller rate limit ------------------------------------------ */

/* A token bucket per source address, shared by every thread without a lock
 * (limit.c). rate: requests per second an address may make on average;
 * burst: how many it may make at once (0 counts as 1). rate 0 returns NULL,
 * a limiter that allows everything. Free with wisp_md_limiter_free(). */
struct wisp_md_limiter;
struct wisp_md_limiter *wisp_md_limiter_new(unsigned rate, unsigned burst);
void wisp_md_limiter_free(struct wisp_md_limiter *l);
/* Counts one request from ip at now_ns (a monotonic clock, nanoseconds):
 * 1 when it is within the limit, 0 when it should get 429. l may be NULL. */
int wisp_md_limiter_take(struct wisp_md_limiter *l, const char *ip, uint64_t now_ns);

/* ---- the token cache ----------------------------------------------------- */

/* What a token is for. Strings are borrowed; the cache copies them. */
struct wisp_md_key {
    const char *uid;   /* pod UID ("node" for the node's identity) */
    const char *ns, *pod, *ksa; /* for the upstream call */
    const char *gsa;   /* "" for none */
    const char *quota; /* "" for none */
    char kind;         /* 'a' access, 'i' identity */
    const char *what;  /* canonical scopes, or "full|AUDIENCE" / "std|AUDIENCE" */
    int keep;          /* refresh for as long as the pod lives, used or not */
};

/* The upstream call: blocking; fills out (value malloc'd, exp wall-clock)
 * or out->status and out->msg. */
typedef void (*wisp_md_fetch_fn)(void *ctx, const struct wisp_md_key *k, struct wisp_md_tok *out);

struct wisp_md_cache_config {
    wisp_md_fetch_fn fetch;
    void *ctx;
    long long (*now)(void *ctx); /* wall-clock seconds; NULL: time() */
    unsigned refresh_before;     /* refresh this long before expiry [600] */
    unsigned jitter;             /* plus up to this much earlier, at random [0] */
    unsigned retry_min, retry_max; /* back-off after a failed refresh [5, 60] */
    unsigned min_remaining;      /* never hand out a token with less left [10] */
    unsigned wait_ms;            /* how long a miss waits for a fetch in flight [30000] */
    unsigned max_entries;        /* beyond, fetch without caching [65536] */
    int refresher;               /* run a background refresh thread */
};

struct wisp_md_cache;
struct wisp_md_cache_view; /* one per reader thread: its lock-free copies */

struct wisp_md_cache *wisp_md_cache_new(const struct wisp_md_cache_config *cfg);
void wisp_md_cache_free(struct wisp_md_cache *c);
struct wisp_md_cache_view *wisp_md_cache_view_new(struct wisp_md_cache *c);
void wisp_md_cache_view_free(struct wisp_md_cache_view *v);

/* A token for k: from the view without a lock when fresh, else from the
 * shared table, else fetched (one fetch for concurrent identical misses).
 * On success out->value is the caller's. */
void wisp_md_cache_get(struct wisp_md_cache *c, struct wisp_md_cache_view *v,
                       const struct wisp_md_key *k, struct wisp_md_tok *out);
/* Starts a fetch in the background (pod created). */
void wisp_md_cache_prefetch(struct wisp_md_cache *c, const struct wisp_md_key *k);
/* Drops uid's entries; with gsa/quota not NULL, only those for another
 * GSA or quota project (the annotation changed). */
void wisp_md_cache_forget(struct wisp_md_cache *c, const char *uid, const char *gsa,
                          const char *quota);
/* Refreshes every entry that is due; returns how many it fetched. The
 * refresher thread calls this; tests call it directly. */
unsigned wisp_md_cache_run_due(struct wisp_md_cache *c);
/* Entries held. */
size_t wisp_md_cache_size(struct wisp_md_cache *c);

#endif
