/* SPDX-License-Identifier: Apache-2.0 */
/* wisp-metadata's process-wide state, shared by its files: the options,
 * the node's facts, the pod table and the token cache. */
#ifndef WISP_METADATA_MD_H
#define WISP_METADATA_MD_H

#include <stdatomic.h>
#include <stdint.h>
#include "wisp/http.h"
#include "wisp/metadata.h"

struct md {
    /* Options (docs/internals/METADATA.md). */
    const char *kube_api, *kube_ca, *kube_token_file, *node;
    const char *sts, *iamcredentials, *google_ca;
    const char *issuer, *node_credentials, *token_uri;
    long long instance_created; /* GCE_METADATA: the node's creation, epoch seconds */
    unsigned threads;
    unsigned unknown_wait_ms; /* how long an unknown caller waits for the watch */
    unsigned rate_limit;      /* requests per second per address; 0: none */
    const char *pod_addresses; /* the node's holder record (WISP_NODE_ADDR_DIR), or NULL */
    const _Atomic uint64_t *pod_addresses_gen; /* its WISP_NODE_ADDR_GEN, mapped, or NULL */
    struct wisp_md_site site;
    /* Run time. */
    struct wisp_md_pods *pods;
    struct wisp_md_cache *cache;
    struct wisp_md_limiter *limiter; /* NULL: no rate limit */
    struct wisp_http_server *http;
    volatile int stopping;
    int waiters_max;
};

/* A worker's own state: its pod-table slot and its cache view. */
/* What the node's record said of an address, at which of its generations. */
struct md_holder {
    uint64_t gen;
    char ip[16], uid[48]; /* ip "" for an empty slot; uid "" for no holder */
};
#define MD_HOLDER_SLOTS 512 /* direct-mapped by the address; a /23 fits */

/* A worker's own state: its pod-table slot, its cache view, and what it
 * last read of the node's holder record. */
struct md_thread {
    unsigned slot;
    struct wisp_md_cache_view *view;
    struct md_holder holders[MD_HOLDER_SLOTS];
};

extern struct md md;

/* upstream.c: the token path (TokenRequest -> STS -> generateAccessToken /
 * generateIdToken, or the node's key and the JWT-bearer grant). */
void md_fetch(void *ctx, const struct wisp_md_key *k, struct wisp_md_tok *out);
/* A GET of the Kubernetes API (path with query) into *body (caller frees);
 * returns the HTTP status, or 0 when there was no answer. */
long md_kube_get(const char *path, char **body);
/* Streams a Kubernetes watch: calls line() for every line until the
 * server ends it or line() returns nonzero. Returns the HTTP status (0: no
 * answer). */
long md_kube_stream(const char *path, int (*line)(void *ctx, const char *s, size_t n), void *ctx);

/* watch.c: keeps md.pods current. */
int md_watch_start(void);
void md_watch_stop(void);

/* serve.c: the handler, and the prefetch of a new pod's default token. */
void md_serve(struct wisp_http_req *req, void *ctx);
void md_prefetch(const struct wisp_md_pod *p);

#endif
