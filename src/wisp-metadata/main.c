/* SPDX-License-Identifier: Apache-2.0 */
/* wisp-metadata: the GKE metadata server of one node. It watches its node's
 * pods through the Kubernetes API, identifies callers by source address,
 * and serves the metadata surface with tokens from the cluster, STS and IAM
 * Credentials (docs/internals/METADATA.md). The same binary runs inside
 * wisp's embedded clusters and, from deploy/, on a real cluster. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "wisp/node.h"
#include "wisp/opts.h"
#include "md.h"

struct md md;

/* The options, in one table: parsing and --help both read it. */
static struct wisp_opt opts[] = {
    {"kube-api", "URL", "the cluster's Kubernetes API", NULL, NULL},
    {"kube-ca", "FILE", "CA bundle for the Kubernetes API", NULL, NULL},
    {"kube-token-file", "FILE", "bearer token for the Kubernetes API, re-read on every use",
     NULL, NULL},
    {"node", "NAME", "this node's name (pods are watched with spec.nodeName=NAME)", NULL, NULL},
    {"listen", "ADDR:PORT", "where to answer", "169.254.169.254:80", NULL},
    {"netns", "PATH", "network namespace to listen in (the node's, e.g. /run/netns/NAME)", NULL,
     NULL},
    {"sts", "URL", "Security Token Service base URL", "https://sts.googleapis.com", NULL},
    {"iamcredentials", "URL", "IAM Service Account Credentials base URL",
     "https://iamcredentials.googleapis.com", NULL},
    {"google-ca", "FILE", "CA bundle for STS, IAM Credentials and the token URI", NULL, NULL},
    {"project-id", "ID", "the cluster's project", NULL, NULL},
    {"project-number", "N", "its number", NULL, NULL},
    {"cluster-name", "NAME", "instance/attributes/cluster-name", NULL, NULL},
    {"cluster-location", "LOC", "instance/attributes/cluster-location", NULL, NULL},
    {"cluster-uid", "UID", "instance/attributes/cluster-uid", "", NULL},
    {"issuer", "URL", "the cluster's OIDC issuer (STS audience provider) [derived]", NULL, NULL},
    {"zone", "ZONE", "the node's zone [the location, or LOCATION-a for a region]", NULL, NULL},
    {"hostname", "NAME", "instance/hostname [NODE.ZONE.c.PROJECT.internal]", NULL, NULL},
    {"instance-id", "N", "instance/id [derived from the node name]", NULL, NULL},
    {"mode", "MODE", "GKE_METADATA (pods' KSA identities) or GCE_METADATA (the node's)",
     "GKE_METADATA", NULL},
    {"node-credentials", "FILE", "GCE_METADATA: the node service account's key file", NULL,
     NULL},
    {"token-uri", "URL", "GCE_METADATA: where to redeem the node's grant [the key's token_uri]",
     NULL, NULL},
    {"instance-created", "EPOCH", "GCE_METADATA: when the node was made (format=full ID tokens)",
     "0", NULL},
    {"scopes", "LIST", "the account's scopes, comma-separated (GCE_METADATA: the pool's "
     "oauthScopes) [cloud-platform]", NULL, NULL},
    {"threads", "N", "worker threads", "2", NULL},
    {"unknown-wait-ms", "MS", "how long an unknown caller waits for the pod watch", "500", NULL},
    {"rate-limit", "N",
     "requests per second each caller address may make (burst: N at once); 0 for no limit "
     "[50000 per worker thread]",
     NULL, NULL},
    {"pod-addresses", "DIR", "the node agent's record of each address's pod (a file per address "
     "holding the pod's UID): a caller it does not match is not yet known", NULL, NULL},
    {"log-level", "LEVEL", "err, warn, info or debug", "info", NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char *opt(const char *name)
{
    return wisp_opts_get(opts, N_OPTS, name);
}

static int parse_args(int argc, char **argv)
{
    return wisp_opts_parse(opts, N_OPTS, argc, argv,
                           "wisp-metadata [options]\n\nThe GKE metadata server of one node.");
}

/* The node's holder-record generation (WISP_NODE_ADDR_GEN), mapped read
 * only; NULL (every check reads the record) if the node has not made it. */
static const _Atomic uint64_t *holder_gen_map(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" WISP_NODE_ADDR_GEN, dir);
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    void *m = MAP_FAILED;
    errno = ENOENT;
    /* A short file would fault on the first load (SIGBUS), not fail here. */
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(uint64_t))
        m = mmap(NULL, sizeof(uint64_t), PROT_READ, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED) {
        wisp_log_warn("main", "%s: %s; the holder record is read on every request", path,
                      strerror(errno));
        return NULL;
    }
    return m;
}

static int need(const char *name)
{
    if (opt(name) && opt(name)[0])
        return 0;
    fprintf(stderr, "wisp-metadata: --%s is required\n", name);
    return -1;
}

static struct wisp_http_server *server;

static void on_signal(int sig)
{
    (void)sig;
    wisp_http_server_stop(server);
}

static void *thread_start(unsigned idx, void *user)
{
    (void)user;
    struct md_thread *t = wisp_xcalloc(1, sizeof(*t));
    t->slot = idx;
    t->view = wisp_md_cache_view_new(md.cache);
    return t;
}

static void thread_stop(void *data, void *user)
{
    (void)user;
    struct md_thread *t = data;
    wisp_md_cache_view_free(t->view);
    free(t);
}

static void on_gone(void *ctx, const char *uid)
{
    (void)ctx;
    wisp_md_cache_forget(md.cache, uid, NULL, NULL);
}

static void on_identity(void *ctx, const struct wisp_md_pod *p)
{
    (void)ctx;
    wisp_md_cache_forget(md.cache, p->uid, p->gsa ? p->gsa : "", p->quota ? p->quota : "");
    md_prefetch(p);
}

/* The node's account email, from its key file (GCE_METADATA). */
static char *key_email(const char *file)
{
    json_t *k = json_load_file(file, 0, NULL);
    const char *e = json_string_value(json_object_get(k, "client_email"));
    char *out = e ? wisp_xstrdup(e) : NULL;
    json_decref(k);
    return out;
}

/* Fills md.site and the upstream settings from the options; -1 on a bad
 * or missing one (after saying which). */
static int configure(char **owned, size_t *n_owned, char *addr, size_t addrlen, int *port)
{
    const char *listen = opt("listen");
    const char *colon = strrchr(listen, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || *end || p < 0 || p > 65535 || (size_t)(colon - listen) >= addrlen) {
        fprintf(stderr, "wisp-metadata: --listen: expected ADDR:PORT\n");
        return -1;
    }
    snprintf(addr, addrlen, "%.*s", (int)(colon - listen), listen);
    if (addr[0] == '[') { /* [v6]:port */
        memmove(addr, addr + 1, strlen(addr));
        addr[strcspn(addr, "]")] = '\0';
    }
    *port = (int)p;
    const char *mode = opt("mode");
    md.site.gce_mode = strcmp(mode, "GCE_METADATA") == 0;
    if (!md.site.gce_mode && strcmp(mode, "GKE_METADATA") != 0) {
        fprintf(stderr, "wisp-metadata: --mode: expected GKE_METADATA or GCE_METADATA\n");
        return -1;
    }
    if (need("project-id") || need("project-number") || need("cluster-name") ||
        need("cluster-location") || need("node"))
        return -1;
    if (!md.site.gce_mode && need("kube-api"))
        return -1;
    if (md.site.gce_mode && need("node-credentials"))
        return -1;
    md.kube_api = opt("kube-api");
    md.kube_ca = opt("kube-ca");
    md.kube_token_file = opt("kube-token-file");
    md.node = opt("node");
    md.sts = opt("sts");
    md.iamcredentials = opt("iamcredentials");
    md.google_ca = opt("google-ca");
    md.node_credentials = opt("node-credentials");
    md.token_uri = opt("token-uri");
    md.instance_created = atoll(opt("instance-created"));
    md.threads = (unsigned)atoi(opt("threads"));
    if (md.threads < 1 || md.threads > 64) {
        fprintf(stderr, "wisp-metadata: --threads: expected 1 to 64\n");
        return -1;
    }
    md.unknown_wait_ms = (unsigned)atoi(opt("unknown-wait-ms"));
    /* The default sits above what one pod can get from the workers (a
     * cached token from one pod at 64 connections: about 30k/s per worker),
     * so only a flood is refused and no benchmark is; it scales with the
     * workers for the same reason. */
    const char *rl = opt("rate-limit");
    char *rl_end = NULL;
    long rate = rl ? strtol(rl, &rl_end, 10) : 50000L * (long)md.threads;
    if (rl && (!rl[0] || *rl_end || rate < 0 || rate > 100000000L)) {
        fprintf(stderr, "wisp-metadata: --rate-limit: expected 0 to 100000000\n");
        return -1;
    }
    md.rate_limit = (unsigned)rate;
    md.pod_addresses = opt("pod-addresses");
    if (md.pod_addresses)
        md.pod_addresses_gen = holder_gen_map(md.pod_addresses);
    md.waiters_max = (int)md.threads - 1; /* one worker always answers at once */
    struct wisp_md_site *s = &md.site;
    s->project_id = opt("project-id");
    s->project_number = opt("project-number");
    s->cluster_name = opt("cluster-name");
    s->cluster_location = opt("cluster-location");
    s->cluster_uid = opt("cluster-uid");
    /* A region (one hyphen: us-central1) puts the node in its zone "a". */
    const char *loc = s->cluster_location;
    const char *dash = strchr(loc, '-');
    char *zone = opt("zone") ? wisp_xstrdup(opt("zone"))
                 : dash && strchr(dash + 1, '-') ? wisp_xstrdup(loc)
                                                 : wisp_xasprintf("%s-a", loc);
    owned[(*n_owned)++] = zone;
    s->zone = zone;
    char *host = opt("hostname") ? wisp_xstrdup(opt("hostname"))
                                 : wisp_xasprintf("%s.%s.c.%s.internal", md.node, zone,
                                                  s->project_id);
    owned[(*n_owned)++] = host;
    s->hostname = host;
    unsigned long long h = 1469598103934665603ULL;
    for (const char *c = md.node; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    char *id = opt("instance-id") ? wisp_xstrdup(opt("instance-id"))
                                  : wisp_xasprintf("%llu", h % 9000000000000000000ULL +
                                                               1000000000000000000ULL);
    owned[(*n_owned)++] = id;
    s->instance_id = id;
    char *issuer = opt("issuer") ? wisp_xstrdup(opt("issuer"))
                                 : wisp_xasprintf("https://container.googleapis.com/v1/projects/"
                                                  "%s/locations/%s/clusters/%s",
                                                  s->project_id, loc, s->cluster_name);
    owned[(*n_owned)++] = issuer;
    md.issuer = issuer;
    if (opt("scopes")) {
        char canon[4096];
        if (wisp_md_scopes_canon(opt("scopes"), canon, sizeof(canon)) != WISP_OK) {
            fprintf(stderr, "wisp-metadata: --scopes: not a list of scope URLs\n");
            return -1;
        }
        s->scopes = owned[(*n_owned)++] = wisp_xstrdup(canon);
    }
    if (md.site.gce_mode) {
        char *email = key_email(md.node_credentials);
        if (!email) {
            fprintf(stderr, "wisp-metadata: --node-credentials: no client_email in %s\n",
                    md.node_credentials);
            return -1;
        }
        owned[(*n_owned)++] = email;
        s->node_sa = email;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char addr[128];
    int port = 0, rc = 111;
    char *owned[8];
    size_t n_owned = 0;
    const char *hosts[2] = {addr, NULL};
    if (parse_args(argc, argv))
        return 100;
    if (wisp_log_set_level(opt("log-level"))) {
        fprintf(stderr, "wisp-metadata: --log-level: expected err, warn, info or debug\n");
        return 100;
    }
    if (configure(owned, &n_owned, addr, sizeof(addr), &port)) {
        rc = 100;
        goto out;
    }
    md.site.extra_hosts = hosts;
    /* One malloc arena, not one per thread: glibc would give each of our
     * six threads its own, and each keeps its own free memory; the
     * refresher's libcurl/OpenSSL churn alone left ~1 MiB free but resident
     * in its arena. Shared, the watcher's and refresher's frees are reused
     * by everyone: 1.8 MiB less at 1,000 pods (bench/metadata/rss.sh). Only
     * the workers' hot path allocates often, and glibc's per-thread cache
     * serves its small blocks without the arena's lock. */
    mallopt(M_ARENA_MAX, 1);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct wisp_md_cache_config cc = {.fetch = md_fetch, .refresh_before = 600, .jitter = 120,
                                      .retry_min = 5, .retry_max = 60, .min_remaining = 10,
                                      .wait_ms = 30000, .refresher = 1};
    md.cache = wisp_md_cache_new(&cc);
    struct wisp_md_pods_hooks hooks = {on_gone, on_identity, NULL};
    md.pods = wisp_md_pods_new(md.threads, &hooks);
    md.limiter = wisp_md_limiter_new(md.rate_limit, md.rate_limit);
    static const char *const error_headers[] = {"Metadata-Flavor", "Google", NULL};
    struct wisp_http_config cfg = {.limits = {.max_body = 4096, .max_header_bytes = 8192},
                                   .n_threads = md.threads,
                                   .on_thread_start = thread_start,
                                   .on_thread_stop = thread_stop,
                                   .error_headers = error_headers};
    server = wisp_http_server_new(&cfg);
    md.http = server;
    wisp_http_route(server, NULL, NULL, "/", md_serve, NULL);
    struct wisp_http_listen_spec spec = {.addr = addr, .port = port, .netns_path = opt("netns")};
    int bound = 0;
    enum wisp_err err = wisp_http_listen(server, &spec, &bound, NULL);
    if (err) {
        wisp_log_err("wisp-metadata", "cannot listen on %s: %s", opt("listen"),
                     wisp_strerror(err));
        goto out;
    }
    if (!md.site.gce_mode && md_watch_start()) {
        wisp_log_err("wisp-metadata", "cannot start the pod watch");
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    wisp_log_info("wisp-metadata", "serving %s for node %s on %s:%d", opt("mode"), md.node, addr,
                  bound);
    rc = wisp_http_server_run(server) == WISP_OK ? 0 : 111;
    wisp_log_info("wisp-metadata", "stopped");
out:
    md_watch_stop();
    if (server)
        wisp_http_server_free(server);
    wisp_md_cache_free(md.cache);
    wisp_md_pods_free(md.pods);
    wisp_md_limiter_free(md.limiter);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    curl_global_cleanup();
    return rc;
}
