/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded cluster's machinery (wispd --nodes, which `wisp up --nodes`
 * passes): a supervisor thread that makes the node agents match the node
 * pools. Every second it reads the clusters and their pools and, for each
 * cluster, brings up its fabric namespace (`wisp-node fabric-up`) and a
 * wispd listener on the fabric's gateway address, where pods reach the
 * Google APIs over TLS; for each node it runs one `wisp-node run` and one
 * `wisp-metadata` listening on 169.254.169.254:80 inside the node's
 * namespace: the pods' KSA identities on GKE_METADATA pools, the node
 * pool's service account on GCE_METADATA ones (nodes_gce.c). Children that
 * die are restarted with backoff; nodes and clusters that go away are
 * stopped; stopping wispd stops everything and removes every namespace it
 * made. docs/internals/NODE.md, "The supervisor". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/ksa.h"
#include "wisp/log.h"
#include "wisp/node.h"
#include "nodes_int.h"
#include "wispd.h"

extern char **environ;

#define FABRIC_GATEWAY "100.64.0.1"  /* wisp-node's default fabric gateway */
#define KUBE_TOKEN_SECONDS (47 * 3600) /* under STS's and the API's 48 h bound */
#define BACKOFF_MAX 60                 /* seconds: the longest wait before a restart */
#define RAN_WELL 60                    /* seconds of running that reset the backoff */
#define STOP_WAIT 15                   /* seconds children get to exit on stop */

struct child {
    char *key; /* "node FABRIC NODE", "md-gke FABRIC NODE" or "md-gce FABRIC NODE" */
    pid_t pid; /* 0 while not running */
    time_t started, died;
    unsigned delay; /* seconds from died to the next start */
    int seen;       /* still desired in this pass */
    int unclean;    /* node agent: died, its namespaces may be left */
    int warned;     /* "pool FABRIC POOL" (never run): said its account is missing */
};

/* A pool key to mint once the pass's read transaction has ended. */
struct key_job {
    char *project_id, *project_number, *email, *path;
};

struct fabric {
    char *name;
    char *issuer;
    unsigned listener;
    int seen;
};

static struct {
    pthread_t thread;
    int running;
    volatile int stop;
    char bindir[PATH_MAX];
    char state_hash[7];
    struct child *kids;
    size_t n_kids;
    struct fabric *fabs;
    size_t n_fabs;
    struct key_job *jobs;
    size_t n_jobs;
    struct wisp_store *st;
} sup;

static void hash6(const char *s, char out[7])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    snprintf(out, 7, "%06x", h & 0xffffff);
}

/* Runs a helper to completion (fabric-up/-down, sweep). */
static int run_wait(char *const argv[])
{
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static pid_t spawn(char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = 0;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        pid = 0;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static struct child *child_get(const char *key)
{
    for (size_t i = 0; i < sup.n_kids; i++) {
        if (!strcmp(sup.kids[i].key, key))
            return &sup.kids[i];
    }
    sup.kids = wisp_xrealloc(sup.kids, (sup.n_kids + 1) * sizeof(*sup.kids));
    sup.kids[sup.n_kids] = (struct child){.key = wisp_xstrdup(key)};
    return &sup.kids[sup.n_kids++];
}

/* Whether k is down and its backoff has passed. */
static int child_due(const struct child *k)
{
    return !k->pid && time(NULL) - k->died >= (time_t)k->delay;
}

/* Notes that k is down from now: the next start waits 1 s, doubling up to
 * BACKOFF_MAX while it keeps dying young. */
static void child_down(struct child *k)
{
    time_t now = time(NULL);
    int young = k->started && now - k->started < RAN_WELL;
    k->delay = !young || !k->delay ? 1 : k->delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : k->delay * 2;
    k->pid = 0;
    k->died = now;
}

static void child_spawn(struct child *k, char *const argv[], const char *log_path)
{
    k->pid = spawn(argv, log_path);
    k->started = time(NULL);
    if (k->pid)
        wisp_log_info("nodes", "%s started (pid %d)", k->key, (int)k->pid);
    else
        child_down(k);
}

/* The " FABRIC NODE" part of a child's key. */
static const char *node_part(const char *key)
{
    return key + strcspn(key, " ");
}

/* How many metadata servers of k's node run; sends them sig unless 0. */
static size_t md_siblings(const struct child *k, int sig)
{
    size_t n = 0;
    for (size_t j = 0; j < sup.n_kids; j++) {
        if (sup.kids[j].pid && strncmp(sup.kids[j].key, "md-", 3) == 0 &&
            strcmp(node_part(sup.kids[j].key), node_part(k->key)) == 0) {
            n++;
            if (sig)
                kill(sup.kids[j].pid, sig);
        }
    }
    return n;
}

/* Reaps children that exited, says how, and schedules their restart. A
 * node agent that died takes its metadata server with it: the server's
 * listener holds the old node namespace, which the new agent recreates. */
static void reap(void)
{
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < sup.n_kids; i++) {
            struct child *k = &sup.kids[i];
            if (k->pid != pid)
                continue;
            child_down(k);
            char next[32] = ""; /* nothing to say of children stopped on purpose */
            if (k->seen && !sup.stop)
                snprintf(next, sizeof(next), "; restart in %u s", k->delay);
            if (WIFSIGNALED(status))
                wisp_log_warn("nodes", "%s (pid %d) killed by signal %d%s", k->key, (int)pid,
                              WTERMSIG(status), next);
            else
                wisp_log_warn("nodes", "%s (pid %d) exited with status %d%s", k->key, (int)pid,
                              WEXITSTATUS(status), next);
            if (strncmp(k->key, "node ", 5) != 0)
                continue;
            k->unclean = 1;
            md_siblings(k, SIGTERM);
        }
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Before a node agent that died is started again: whether its metadata
 * servers are gone (they pin the old namespace), and if so removes what it
 * left: the node's namespace, its pods' (their processes died with it) and
 * their files in dir/pods, so that the new agent starts them afresh. */
static int node_clean(struct child *k, const char *netns, const char *dir)
{
    if (md_siblings(k, 0))
        return 0;
    size_t n = strlen(netns);
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        /* The node's own, or one of its pods' (NODE-UID, a 36-byte UID). */
        if (strncmp(e->d_name, netns, n) != 0 ||
            (e->d_name[n] && (e->d_name[n] != '-' || strlen(e->d_name + n + 1) != 36)))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
        umount2(path, MNT_DETACH);
        unlink(path);
        wisp_log_info("nodes", "removed %s, left by %s", e->d_name, k->key);
    }
    if (d)
        closedir(d);
    char pods[PATH_MAX + 80];
    snprintf(pods, sizeof(pods), "%s/pods", dir);
    nftw(pods, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    k->unclean = 0;
    return 1;
}

/* Whether the file at path holds exactly text. */
static int same_text(const char *path, const char *text)
{
    size_t n = strlen(text);
    char *buf = wisp_xmalloc(n + 2);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, n + 1, f) : 0;
    if (f)
        fclose(f);
    int same = f && got == n && memcmp(buf, text, n) == 0;
    free(buf);
    return same;
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- one cluster ---------------------------------------------------------- */

struct cluster_info {
    const char *key; /* P/L/C */
    char *pid, *loc, *name;
    char *issuer;
    char fabric[32];
    char dir[PATH_MAX];
    json_t *doc;
};

/* Writes the cluster CA and a kube-system token for the node agents, a
 * fresh token when the old one is past half its life. */
static int cluster_files(struct wisp_txn *txn, struct cluster_info *c)
{
    char path[PATH_MAX + 32], tpath[PATH_MAX + 32];
    const char *ca = json_string_value(json_object_get(c->doc, "caCertPem"));
    snprintf(path, sizeof(path), "%s/cluster-ca.pem", c->dir);
    snprintf(tpath, sizeof(tpath), "%s/kube-token", c->dir);
    /* A cluster deleted and created again under the same name has the same
     * directory but a new CA and issuer key: both files are renewed. */
    if (!same_text(path, ca ? ca : "")) {
        if (!ca || wispd_write_file(path, ca, 0644))
            return -1;
        unlink(tpath);
    }
    struct stat sb;
    if (stat(tpath, &sb) == 0 && time(NULL) - sb.st_mtime < KUBE_TOKEN_SECONDS / 2)
        return 0;
    char *kid = NULL, *pem = NULL;
    if (wispd_issuer_signing_key(txn, c->issuer, &kid, &pem) != WISP_OK)
        return -1;
    time_t now = time(NULL);
    struct wisp_ksa_claims cl = {.iss = c->issuer, .aud = c->issuer, .ns = "kube-system",
                                 .sa = "wisp-node", .sa_uid = "wisp-node",
                                 .iat = (int64_t)now, .nbf = (int64_t)now,
                                 .exp = (int64_t)now + KUBE_TOKEN_SECONDS};
    char *jwt = wisp_ksa_sign(&cl, kid, pem);
    int rc = jwt ? wispd_write_file(tpath, jwt, 0600) : -1;
    if (jwt)
        wisp_secret_free(jwt, 0);
    wisp_secret_free(pem, 0);
    free(kid);
    return rc;
}

static struct fabric *fabric_ensure(struct cluster_info *c)
{
    for (size_t i = 0; i < sup.n_fabs; i++) {
        if (!strcmp(sup.fabs[i].name, c->fabric)) {
            sup.fabs[i].seen = 1;
            return &sup.fabs[i];
        }
    }
    char prog[PATH_MAX + 16];
    snprintf(prog, sizeof(prog), "%s/wisp-node", sup.bindir);
    char *up[] = {prog, "fabric-up", c->fabric, NULL};
    if (run_wait(up) != 0) {
        wisp_log_err("nodes", "fabric-up %s failed", c->fabric);
        return NULL;
    }
    /* Pods reach every Google API here, over TLS with wisp's CA. */
    char ns[300];
    snprintf(ns, sizeof(ns), "/run/netns/%s", c->fabric);
    struct wisp_http_listen_spec spec = {.addr = FABRIC_GATEWAY, .port = 443,
                                         .cert_pem = wispd.tls_cert_pem,
                                         .key_pem = wispd.tls_key_pem, .netns_path = ns};
    unsigned id = 0;
    if (wisp_http_listen(wispd.http, &spec, NULL, &id) != WISP_OK) {
        wisp_log_err("nodes", "cannot listen on the fabric of %s", c->key);
        return NULL;
    }
    sup.fabs = wisp_xrealloc(sup.fabs, (sup.n_fabs + 1) * sizeof(*sup.fabs));
    sup.fabs[sup.n_fabs] = (struct fabric){.name = wisp_xstrdup(c->fabric),
                                           .issuer = wisp_xstrdup(c->issuer), .listener = id,
                                           .seen = 1};
    wisp_log_info("nodes", "cluster %s: fabric %s up", c->key, c->fabric);
    return &sup.fabs[sup.n_fabs++];
}

/* What a node's metadata server is to serve: GKE_METADATA, or the pool's
 * account through its key file (key NULL while the key is not there). */
struct md_mode {
    int gce;
    const char *key;
    char scopes[2048]; /* the pool's oauthScopes, comma-joined; "" for none */
};

static void node_ensure(struct cluster_info *c, const json_t *node, const struct md_mode *mode,
                        const char *project_number)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *cidr = json_string_value(json_object_get(node, "podCIDR"));
    char key[400], log[PATH_MAX + 128], dir[PATH_MAX + 64], api[64], ca[PATH_MAX + 32],
        tok[PATH_MAX + 32], wca[PATH_MAX + 16], prog[PATH_MAX + 16], ns[400];
    int kport = (int)json_integer_value(json_object_get(c->doc, "kubePort"));
    snprintf(api, sizeof(api), "https://127.0.0.1:%d", kport);
    snprintf(ca, sizeof(ca), "%s/cluster-ca.pem", c->dir);
    snprintf(tok, sizeof(tok), "%s/kube-token", c->dir);
    snprintf(wca, sizeof(wca), "%s/ca.pem", wispd.state_dir);
    snprintf(dir, sizeof(dir), "%s/%s", c->dir, name);
    snprintf(ns, sizeof(ns), "/run/netns/%s-%s", c->fabric, name);
    mkdir(dir, 0700);

    snprintf(key, sizeof(key), "node %s %s", c->fabric, name);
    struct child *k = child_get(key);
    k->seen = 1;
    if (child_due(k) && (!k->unclean || node_clean(k, ns + strlen("/run/netns/"), dir))) {
        snprintf(prog, sizeof(prog), "%s/wisp-node", sup.bindir);
        snprintf(log, sizeof(log), "%s/wisp-node.log", dir);
        char *argv[] = {prog, "run", "--kube-api", api, "--kube-ca", ca, "--kube-token-file", tok,
                        "--node", (char *)name, "--pod-cidr", (char *)cidr, "--state", dir,
                        "--fabric", c->fabric, "--ca", wca, NULL};
        child_spawn(k, argv, log);
    }
    /* The metadata server listens inside the node's namespace, which the
     * node agent creates; a mode change replaces it (the old key is not
     * seen, so retire() stops it). */
    int agent_up = k->pid != 0;
    snprintf(key, sizeof(key), "%s %s %s", mode->gce ? "md-gce" : "md-gke", c->fabric, name);
    k = child_get(key);
    k->seen = 1;
    if (!agent_up || !child_due(k) || !file_exists(ns) || (mode->gce && !mode->key))
        return;
    char sts[64], iamc[64], token_uri[64];
    snprintf(sts, sizeof(sts), "https://127.0.0.1:%d/sts", wispd.https_port);
    snprintf(iamc, sizeof(iamc), "https://127.0.0.1:%d/iamcredentials", wispd.https_port);
    snprintf(token_uri, sizeof(token_uri), "https://127.0.0.1:%d/token", wispd.https_port);
    snprintf(prog, sizeof(prog), "%s/wisp-metadata", sup.bindir);
    snprintf(log, sizeof(log), "%s/wisp-metadata.log", dir);
    if (mode->gce) {
        /* wisp-metadata runs here, in the root namespace, and reaches
         * wisp's token endpoint on loopback. */
        char created[24];
        snprintf(created, sizeof(created), "%lld",
                 (long long)json_integer_value(json_object_get(node, "created")));
        char *argv[26] = {prog, "--mode", "GCE_METADATA", "--node-credentials",
                          (char *)mode->key, "--token-uri", token_uri, "--google-ca", wca,
                          "--node", (char *)name, "--netns", ns, "--project-id", c->pid,
                          "--project-number", (char *)project_number, "--cluster-name", c->name,
                          "--cluster-location", c->loc, "--instance-created", created};
        if (mode->scopes[0]) { /* 23 arguments above; the rest of argv is NULL */
            argv[23] = "--scopes";
            argv[24] = (char *)mode->scopes;
        }
        child_spawn(k, argv, log);
        return;
    }
    /* The agent's holder record keeps a lagging pod table from answering
     * a reused address with its last holder's identity. */
    char addrs[PATH_MAX + 80];
    snprintf(addrs, sizeof(addrs), "%s/" WISP_NODE_ADDR_DIR, dir);
    char *argv[] = {prog, "--kube-api", api, "--kube-ca", ca, "--kube-token-file", tok,
                    "--node", (char *)name, "--netns", ns, "--sts", sts, "--iamcredentials", iamc,
                    "--google-ca", wca, "--project-id", c->pid, "--project-number",
                    (char *)project_number, "--cluster-name", c->name, "--cluster-location",
                    c->loc, "--issuer", c->issuer, "--pod-addresses", addrs, NULL};
    child_spawn(k, argv, log);
}

/* A GCE_METADATA pool's node account and key file: *md->key is set when
 * the key is there; otherwise it is queued to be made after the pass. */
static void pool_identity(struct wisp_txn *txn, struct cluster_info *c, const json_t *np,
                          const char *number, char *path, size_t len, struct md_mode *md)
{
    const char *pool = json_string_value(json_object_get(np, "name"));
    char *email = wispd_nodes_gce_email(json_object_get(np, "config"), number);
    wispd_nodes_gce_key_path(c->dir, pool, path, len);
    switch (wispd_nodes_gce_key_check(txn, path, email, number)) {
    case WISPD_GCE_KEY_READY:
        md->key = path;
        break;
    case WISPD_GCE_KEY_MAKE:
        /* An old key stays in use until its replacement is written. */
        if (access(path, R_OK) == 0)
            md->key = path;
        sup.jobs = wisp_xrealloc(sup.jobs, (sup.n_jobs + 1) * sizeof(*sup.jobs));
        sup.jobs[sup.n_jobs++] = (struct key_job){wisp_xstrdup(c->pid), wisp_xstrdup(number),
                                                  email, wisp_xstrdup(path)};
        email = NULL;
        break;
    case WISPD_GCE_KEY_NO_ACCOUNT: {
        char key[300];
        snprintf(key, sizeof(key), "pool %s %s", c->fabric, pool);
        struct child *k = child_get(key); /* never started: only remembers the warning */
        k->seen = 1;
        if (!k->warned)
            wisp_log_err("nodes", "node pool %s of %s: service account %s does not exist or is "
                                  "disabled; its nodes serve no identity", pool, c->key, email);
        k->warned = 1;
        break;
    }
    }
    free(email);
}

/* The pool's oauthScopes as wisp-metadata's --scopes takes them; a list
 * too long for the buffer is not passed on (the default applies). */
static void pool_scopes(const json_t *list, struct md_mode *md)
{
    size_t i, o = 0;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;
        if (!n)
            continue;
        if (o + n + 2 > sizeof(md->scopes)) {
            o = 0;
            break;
        }
        if (o)
            md->scopes[o++] = ',';
        memcpy(md->scopes + o, s, n);
        o += n;
    }
    md->scopes[o] = '\0';
}

struct pass {
    struct wisp_txn *txn;
    json_t *clusters; /* [{key, doc}] */
};

static int collect(const struct wisp_doc *d, void *arg)
{
    json_t *doc = json_loads(d->body, 0, NULL);
    if (doc)
        json_array_append_new(arg, json_pack("{s:s, s:o}", "key", d->name, "doc", doc));
    return 0;
}

static void one_cluster(struct wisp_txn *txn, const char *ckey, json_t *doc)
{
    struct cluster_info c = {.key = ckey, .doc = doc};
    const char *s1 = strchr(ckey, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    json_t *pools = json_array(), *proj = NULL;
    if (!s2)
        return;
    c.pid = wisp_xstrndup(ckey, (size_t)(s1 - ckey));
    c.loc = wisp_xstrndup(s1 + 1, (size_t)(s2 - s1 - 1));
    c.name = wisp_xstrdup(s2 + 1);
    c.issuer = wispd_issuer_url(c.pid, c.loc, c.name);
    char h[7];
    hash6(c.issuer, h);
    snprintf(c.fabric, sizeof(c.fabric), "wisp-%s%s", sup.state_hash, h);
    snprintf(c.dir, sizeof(c.dir), "%s/nodes/%s", wispd.state_dir, c.fabric);
    mkdir(c.dir, 0700);
    char *prefix = wisp_xasprintf("%s/", ckey);
    if (cluster_files(txn, &c) != 0 || !fabric_ensure(&c) ||
        wisp_store_list(txn, "gkenodepool", prefix, NULL, 0, collect, pools, NULL) != WISP_OK ||
        wispd_get_json(txn, "project", c.pid, &proj, NULL) != WISP_OK)
        goto out;
    const char *number = json_string_value(json_object_get(proj, "projectNumber"));
    size_t i, j;
    json_t *p, *n;
    json_array_foreach(pools, i, p) {
        json_t *pd = json_object_get(p, "doc");
        json_t *np = json_object_get(pd, "nodePool");
        const char *mode = json_string_value(json_object_get(
            json_object_get(json_object_get(np, "config"), "workloadMetadataConfig"), "mode"));
        /* Without a mode (a cluster without a workload pool) the nodes serve
         * their own identity, as GKE's do. */
        struct md_mode md = {.gce = !mode || strcmp(mode, "GKE_METADATA") != 0};
        char keyfile[PATH_MAX + 64];
        if (md.gce && number) {
            pool_identity(txn, &c, np, number, keyfile, sizeof(keyfile), &md);
            pool_scopes(json_object_get(json_object_get(np, "config"), "oauthScopes"), &md);
        }
        json_array_foreach(json_object_get(pd, "nodes"), j, n)
            node_ensure(&c, n, &md, number);
    }
out:
    free(prefix);
    json_decref(pools);
    json_decref(proj);
    free(c.pid);
    free(c.loc);
    free(c.name);
    free(c.issuer);
}

/* The node keys of a cluster's GCE_METADATA pools, once its metadata
 * servers are gone. */
static void fabric_keys_drop(const char *fabric)
{
    char *dir = wisp_xasprintf("%s/nodes/%s", wispd.state_dir, fabric);
    wispd_nodes_gce_keys_drop(sup.st, dir);
    free(dir);
}

/* Stops children not desired any more, and fabrics whose cluster is gone
 * once their nodes have exited. */
static void retire(void)
{
    for (size_t i = 0; i < sup.n_kids; i++) {
        if (!sup.kids[i].seen && sup.kids[i].pid)
            kill(sup.kids[i].pid, SIGTERM);
    }
    for (size_t i = 0; i < sup.n_fabs;) {
        struct fabric *f = &sup.fabs[i];
        int busy = 0;
        for (size_t j = 0; j < sup.n_kids; j++)
            busy |= sup.kids[j].pid && strstr(sup.kids[j].key, f->name) != NULL;
        if (f->seen || busy) {
            i++;
            continue;
        }
        char prog[PATH_MAX + 16];
        snprintf(prog, sizeof(prog), "%s/wisp-node", sup.bindir);
        wisp_http_unlisten(wispd.http, f->listener);
        char *down[] = {prog, "fabric-down", f->name, NULL};
        run_wait(down);
        fabric_keys_drop(f->name);
        wisp_log_info("nodes", "fabric %s down", f->name);
        free(f->name);
        free(f->issuer);
        sup.fabs[i] = sup.fabs[--sup.n_fabs];
    }
}

/* STATE/run/nodes: the namespace prefix and every child's pid and key
 * ("pid 123 md-gke FABRIC NODE"), so that `wisp down` can clean up after a
 * wispd that did not stop cleanly, and tests can find a node's servers. */
static void record(void)
{
    char *path = wisp_xasprintf("%s/run/nodes", wispd.state_dir);
    char *text = wisp_xasprintf("prefix wisp-%s\n", sup.state_hash);
    for (size_t i = 0; i < sup.n_kids; i++) {
        if (sup.kids[i].pid) {
            char *more = wisp_xasprintf("%spid %d %s\n", text, (int)sup.kids[i].pid,
                                        sup.kids[i].key);
            free(text);
            text = more;
        }
    }
    wispd_write_file(path, text, 0644);
    free(text);
    free(path);
}

static void pass(void)
{
    struct wisp_txn *txn = NULL;
    json_t *clusters = json_array();
    reap(); /* while seen still says what the last pass wanted */
    for (size_t i = 0; i < sup.n_kids; i++)
        sup.kids[i].seen = 0;
    for (size_t i = 0; i < sup.n_fabs; i++)
        sup.fabs[i].seen = 0;
    if (wisp_store_begin(sup.st, 0, &txn) == WISP_OK &&
        wisp_store_list(txn, "gkecluster", "", NULL, 0, collect, clusters, NULL) == WISP_OK) {
        size_t i;
        json_t *c;
        json_array_foreach(clusters, i, c)
            one_cluster(txn, json_string_value(json_object_get(c, "key")),
                        json_object_get(c, "doc"));
        retire();
    }
    record();
    wisp_store_rollback(txn);
    json_decref(clusters);
    /* Keys are made with no transaction open: RSA generation is slow, and
     * the store handle takes one transaction at a time. */
    for (size_t i = 0; i < sup.n_jobs; i++) {
        struct key_job *j = &sup.jobs[i];
        wispd_nodes_gce_key_make(sup.st, j->project_id, j->project_number, j->email, j->path);
        free(j->project_id);
        free(j->project_number);
        free(j->email);
        free(j->path);
    }
    sup.n_jobs = 0;
}

static void *supervise(void *arg)
{
    (void)arg;
    while (!sup.stop) {
        pass();
        for (int i = 0; i < 10 && !sup.stop; i++)
            usleep(100000);
    }
    return NULL;
}

int wispd_nodes_start(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (geteuid() != 0) {
        wisp_log_err("nodes", "--nodes needs root (network namespaces); not starting nodes");
        return -1;
    }
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(sup.bindir, sizeof(sup.bindir), "%s", self);
    char real[PATH_MAX];
    hash6(realpath(wispd.state_dir, real) ? real : wispd.state_dir, sup.state_hash);
    char *dir = wisp_xasprintf("%s/nodes", wispd.state_dir);
    mkdir(dir, 0700);
    free(dir);
    if (wisp_store_open(wispd.store_url, &sup.st) != WISP_OK)
        return -1;
    if (pthread_create(&sup.thread, NULL, supervise, NULL) != 0) {
        wisp_store_close(sup.st);
        return -1;
    }
    sup.running = 1;
    wisp_log_info("nodes", "node supervisor started (namespaces wisp-%s*)", sup.state_hash);
    return 0;
}

void wispd_nodes_stop(void)
{
    if (!sup.running)
        return;
    sup.stop = 1;
    pthread_join(sup.thread, NULL);
    for (size_t i = 0; i < sup.n_kids; i++) {
        if (sup.kids[i].pid)
            kill(sup.kids[i].pid, SIGTERM);
    }
    /* Node agents give their pods their grace periods, then tear down. */
    for (time_t end = time(NULL) + STOP_WAIT;;) {
        reap();
        size_t alive = 0;
        for (size_t i = 0; i < sup.n_kids; i++)
            alive += sup.kids[i].pid != 0;
        if (!alive)
            break;
        if (time(NULL) >= end) {
            for (size_t i = 0; i < sup.n_kids; i++) {
                if (sup.kids[i].pid)
                    kill(sup.kids[i].pid, SIGKILL);
            }
            end = time(NULL) + 2;
        }
        usleep(100000);
    }
    char prog[PATH_MAX + 16], prefix[16];
    snprintf(prog, sizeof(prog), "%s/wisp-node", sup.bindir);
    for (size_t i = 0; i < sup.n_fabs; i++) {
        char *down[] = {prog, "fabric-down", sup.fabs[i].name, NULL};
        run_wait(down);
        fabric_keys_drop(sup.fabs[i].name);
        free(sup.fabs[i].name);
        free(sup.fabs[i].issuer);
    }
    /* Whatever a crashed agent left behind. */
    snprintf(prefix, sizeof(prefix), "wisp-%s", sup.state_hash);
    char *sweep[] = {prog, "sweep", prefix, NULL};
    run_wait(sweep);
    char *rec = wisp_xasprintf("%s/run/nodes", wispd.state_dir);
    unlink(rec);
    free(rec);
    for (size_t i = 0; i < sup.n_kids; i++)
        free(sup.kids[i].key);
    free(sup.kids);
    free(sup.fabs);
    free(sup.jobs);
    wisp_store_close(sup.st);
    sup.running = 0;
}
