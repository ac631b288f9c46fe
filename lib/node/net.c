/* SPDX-License-Identifier: Apache-2.0 */
/* The routed layout of fabric and node namespaces (docs/internals/NODE.md):
 * the fabric owns the gateway on its loopback and routes each node's /32 and
 * pod range to that node's veth; a node owns its fabric /32, 169.254.169.254
 * and its pod gateway, and forwards between pods and the fabric. Also the
 * node's pod-address allocator. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "node/node_int.h"
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "wisp/node.h"

#define METADATA_IP 0xa9fea9feu /* 169.254.169.254 */

int wisp_node_cidr_parse(const char *s, struct wisp_node_cidr *out)
{
    unsigned a, b, c, d, p;
    char tail;
    if (!s || sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &c, &d, &p, &tail) != 5)
        return -1;
    if (a > 255 || b > 255 || c > 255 || d > 255 || p > 32)
        return -1;
    uint32_t ip = a << 24 | b << 16 | c << 8 | d;
    uint32_t mask = p ? ~0u << (32 - p) : 0;
    if (ip & ~mask)
        return -1;
    out->net = ip;
    out->prefix = p;
    return 0;
}

void wisp_node_ip_str(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
}

static int parse_ip(const char *s, uint32_t *out)
{
    char buf[24];
    struct wisp_node_cidr c;
    snprintf(buf, sizeof(buf), "%s/32", s);
    if (wisp_node_cidr_parse(buf, &c) != 0)
        return -1;
    *out = c.net;
    return 0;
}

uint32_t wisp_node_default_ip(const struct wisp_node_cidr *fabric,
                              const struct wisp_node_cidr *pod_cidr)
{
    uint32_t index = (pod_cidr->net >> 8) & 0x1ff;
    uint64_t size = 1ull << (32 - fabric->prefix);
    if (fabric->prefix > 22 || 256u + index >= size - 1)
        return 0;
    return fabric->net + 256u + index;
}

/* why = "WHAT OBJ: strerror(err)"; err may be negative. */
static void say(char *why, size_t whylen, const char *what, const char *obj, int err)
{
    snprintf(why, whylen, "%s %s: %s", what, obj, strerror(err < 0 ? -err : err));
}

/* ---- fabric --------------------------------------------------------------------- */

enum wisp_err wisp_node_fabric_up(const char *name, const char *cidr, char *why, size_t whylen)
{
    struct wisp_node_cidr c;
    char path[256];
    int rc, saved, nl = -1;

    if (wisp_node_cidr_parse(cidr ? cidr : WISP_NODE_FABRIC_CIDR, &c) != 0 || c.prefix > 24) {
        snprintf(why, whylen, "fabric range must be an IPv4 network of /24 or larger");
        return WISP_EINVAL;
    }
    rc = node_netns_create(name);
    if (rc == -EEXIST)
        return WISP_OK;
    if (rc != 0) {
        say(why, whylen, "creating network namespace", name, rc);
        return WISP_EIO;
    }
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", name);
    saved = node_ns_enter(path);
    if (saved < 0) {
        rc = -errno;
        goto out;
    }
    nl = nl_open();
    rc = nl < 0 ? nl : nl_addr_add(nl, "lo", c.net + 1, 32);
    if (rc == 0)
        rc = node_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    if (nl >= 0)
        close(nl);
    node_ns_leave(saved);
out:
    if (rc != 0) {
        say(why, whylen, "setting up fabric", name, rc);
        node_netns_delete(name);
        return WISP_EIO;
    }
    return WISP_OK;
}

void wisp_node_fabric_down(const char *name)
{
    node_netns_delete(name);
}

int wisp_node_sweep(const char *prefix)
{
    DIR *d;
    struct dirent *e;
    int n = 0;
    if (strncmp(prefix, "wisp-", 5) != 0)
        return 0;
    d = opendir(NODE_NETNS_DIR);
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            node_netns_delete(e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* ---- IPAM ----------------------------------------------------------------------- */

/* The holder record: STATE/addresses/IP holds the UID of the pod that has
 * the address, written before the pod exists and removed only after its
 * veth is gone, so it is never behind the kernel. The metadata server
 * checks its pod table against it (--pod-addresses): a table that lags
 * behind the node (an address already given to a pod of another identity
 * while the watch still shows the last holder) must not answer with the
 * last holder's identity. CNI's host-local IPAM keeps its leases the same
 * way, a file per address. */
static void holder_path(const struct wisp_node *n, uint32_t off, char *out, size_t len)
{
    char ip[16];
    wisp_node_ip_str(n->pod_net + off, ip);
    snprintf(out, len, "%s/%s", n->addr_dir, ip);
}

/* Written whole or not at all (rename), so a reader never sees half a UID. */
static int holder_write(const struct wisp_node *n, uint32_t off, const char *uid)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    holder_path(n, off, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(uid);
    int rc = write(fd, uid, len) == (ssize_t)len ? 0 : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* After every change to a record, and before the pod it concerns can send
 * a packet: readers that see the counter unchanged may trust what they
 * read before. */
static void holders_changed(const struct wisp_node *n)
{
    if (n->addr_gen)
        atomic_fetch_add_explicit(n->addr_gen, 1, memory_order_release);
}

/* The counter's file, mapped. It is never removed while the state lives
 * (the reset keeps dot files), so a reader's mapping stays the node's. */
static int holders_gen_map(struct wisp_node *n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" WISP_NODE_ADDR_GEN, n->addr_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    void *m = MAP_FAILED;
    if (ftruncate(fd, sizeof(uint64_t)) == 0)
        m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int rc = m == MAP_FAILED ? -errno : 0;
    close(fd);
    if (rc == 0)
        n->addr_gen = m;
    return rc;
}

/* Empties (or makes) the record: a new agent starts with no pods. */
static int holders_reset(struct wisp_node *n)
{
    if (mkdir(n->addr_dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    int rc = holders_gen_map(n);
    if (rc != 0)
        return rc;
    DIR *d = opendir(n->addr_dir);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    holders_changed(n);
    return 0;
}

uint32_t node_ip_alloc(struct wisp_node *n, const char *uid)
{
    /* Offsets 0 (network), 1 (the node's gateway) and n_hosts-1 (broadcast)
     * are never given to pods. */
    uint32_t count = n->n_hosts - 3;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t off = 2 + (n->next - 2 + i) % count;
        if (n->used[off])
            continue;
        int rc = holder_write(n, off, uid);
        if (rc != 0) {
            /* Without its record the metadata server would refuse the pod
             * anyway; not starting it says why. */
            wisp_log_err("node", "recording the holder of an address: %s", strerror(-rc));
            return 0;
        }
        holders_changed(n);
        n->used[off] = 1;
        n->in_use++;
        n->next = off + 1;
        return off;
    }
    return 0;
}

void node_ip_release(struct wisp_node *n, uint32_t off)
{
    if (off >= 2 && off < n->n_hosts - 1 && n->used[off]) {
        char path[PATH_MAX];
        holder_path(n, off, path, sizeof(path));
        unlink(path);
        holders_changed(n);
        n->used[off] = 0;
        n->in_use--;
    }
}

unsigned wisp_node_ips_in_use(const struct wisp_node *n)
{
    return n->in_use;
}

/* ---- node ----------------------------------------------------------------------- */

static void node_free(struct wisp_node *n)
{
    free(n->fabric);
    free(n->name);
    free(n->netns);
    free(n->netns_path);
    free(n->state_dir);
    free(n->addr_dir);
    if (n->addr_gen)
        munmap((void *)n->addr_gen, sizeof(uint64_t));
    free(n->ca_file);
    free(n->host_bundle);
    free(n->used);
    free(n);
}

static int mkdir_p(const char *path)
{
    char buf[512];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The fabric side: the node's veth end, its /32 and its pod range. */
static int fabric_attach(struct wisp_node *n, int node_fd)
{
    char path[256];
    int saved, nl, rc;
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", n->fabric);
    saved = node_ns_enter(path);
    if (saved < 0)
        return -errno;
    nl = nl_open();
    rc = nl < 0 ? nl : nl_veth_create(nl, n->fab_if, "eth0", node_fd);
    if (rc == 0)
        rc = nl_link_up(nl, n->fab_if);
    if (rc == 0)
        rc = nl_route_add(nl, n->ip, 32, 0, n->fab_if, 0);
    if (rc == 0)
        rc = nl_route_add(nl, n->pod_net, n->pod_prefix, n->ip, n->fab_if, 1);
    if (nl >= 0)
        close(nl);
    node_ns_leave(saved);
    return rc;
}

/* Deleting the fabric end deletes the pair, and the kernel drops every
 * route through it. */
static void fabric_detach(struct wisp_node *n)
{
    char path[256];
    int saved, nl;
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", n->fabric);
    saved = node_ns_enter(path);
    if (saved < 0)
        return;
    nl = nl_open();
    if (nl >= 0) {
        int rc = nl_link_delete(nl, n->fab_if);
        if (rc != 0 && rc != -ENODEV)
            wisp_log_warn("node", "deleting %s in %s: %s", n->fab_if, n->fabric, strerror(-rc));
        close(nl);
    }
    node_ns_leave(saved);
}

static int node_inside(struct wisp_node *n)
{
    int saved, nl, rc;
    saved = node_ns_enter(n->netns_path);
    if (saved < 0)
        return -errno;
    nl = nl_open();
    rc = nl < 0 ? nl : nl_link_up(nl, "eth0");
    if (rc == 0)
        rc = nl_addr_add(nl, "eth0", n->ip, 32);
    if (rc == 0)
        rc = nl_route_add(nl, n->fabric_gw, 32, 0, "eth0", 0);
    if (rc == 0)
        rc = nl_route_add(nl, 0, 0, n->fabric_gw, "eth0", 1);
    if (rc == 0)
        rc = nl_addr_add(nl, "lo", METADATA_IP, 32);
    if (rc == 0)
        rc = nl_addr_add(nl, "lo", n->pod_gw, 32);
    if (rc == 0)
        rc = node_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    if (nl >= 0)
        close(nl);
    node_ns_leave(saved);
    return rc;
}

enum wisp_err wisp_node_up(const struct wisp_node_config *cfg, struct wisp_node **out, char *why,
                           size_t whylen)
{
    struct wisp_node *n = wisp_xcalloc(1, sizeof(*n));
    struct wisp_node_cidr fab, pod;
    enum wisp_err err = WISP_EIO;
    int rc, node_fd = -1, created = 0, attached = 0;

    *out = NULL;
    if (!cfg->fabric || !cfg->name || !cfg->state_dir ||
        wisp_node_cidr_parse(cfg->fabric_cidr ? cfg->fabric_cidr : WISP_NODE_FABRIC_CIDR,
                             &fab) != 0 ||
        fab.prefix > 24 || wisp_node_cidr_parse(cfg->pod_cidr, &pod) != 0 || pod.prefix < 16 ||
        pod.prefix > 30) {
        snprintf(why, whylen, "need a fabric, a name, a state directory, a fabric range of /24 "
                              "or larger and a pod range from /16 to /30");
        err = WISP_EINVAL;
        goto out;
    }
    n->fabric = wisp_xstrdup(cfg->fabric);
    n->name = wisp_xstrdup(cfg->name);
    n->netns = cfg->netns ? wisp_xstrdup(cfg->netns)
                          : wisp_xasprintf("%s-%s", cfg->fabric, cfg->name);
    n->netns_path = wisp_xasprintf(NODE_NETNS_DIR "/%s", n->netns);
    n->state_dir = wisp_xstrdup(cfg->state_dir);
    n->addr_dir = wisp_xasprintf("%s/" WISP_NODE_ADDR_DIR, cfg->state_dir);
    n->ca_file = cfg->ca_file ? wisp_xstrdup(cfg->ca_file) : NULL;
    n->host_bundle = wisp_xstrdup(cfg->host_bundle ? cfg->host_bundle
                                                   : "/etc/ssl/certs/ca-certificates.crt");
    n->fabric_net = fab.net;
    n->fabric_prefix = fab.prefix;
    n->fabric_gw = fab.net + 1;
    n->pod_net = pod.net;
    n->pod_prefix = pod.prefix;
    n->pod_gw = pod.net + 1;
    n->n_hosts = 1u << (32 - pod.prefix);
    n->used = wisp_xcalloc(n->n_hosts, 1);
    n->next = 2;
    if (cfg->node_ip) {
        if (parse_ip(cfg->node_ip, &n->ip) != 0) {
            snprintf(why, whylen, "node address %s is not an IPv4 address", cfg->node_ip);
            err = WISP_EINVAL;
            goto out;
        }
    } else {
        n->ip = wisp_node_default_ip(&fab, &pod);
    }
    if (n->ip == 0 || (n->ip & ~0u << (32 - fab.prefix)) != fab.net || n->ip == n->fabric_gw) {
        snprintf(why, whylen, "the node's fabric address is not a host of the fabric range");
        err = WISP_EINVAL;
        goto out;
    }
    wisp_node_ip_str(n->ip, n->ip_s);
    wisp_node_ip_str(n->fabric_gw, n->gw_s);
    snprintf(n->fab_if, sizeof(n->fab_if), "n%x", n->ip - fab.net);

    if (!node_netns_exists(n->fabric)) {
        snprintf(why, whylen, "fabric namespace %s does not exist (wisp-node fabric-up)",
                 n->fabric);
        err = WISP_EPRECOND;
        goto out;
    }
    rc = mkdir_p(n->state_dir);
    if (rc != 0) {
        say(why, whylen, "creating", n->state_dir, rc);
        goto out;
    }
    rc = holders_reset(n);
    if (rc != 0) {
        say(why, whylen, "emptying", n->addr_dir, rc);
        goto out;
    }
    rc = node_netns_create(n->netns);
    if (rc != 0) {
        say(why, whylen, "creating network namespace", n->netns, rc);
        err = rc == -EEXIST ? WISP_EEXIST : WISP_EIO;
        goto out;
    }
    created = 1;
    node_fd = open(n->netns_path, O_RDONLY | O_CLOEXEC);
    if (node_fd < 0) {
        say(why, whylen, "opening", n->netns_path, errno);
        goto out;
    }
    rc = fabric_attach(n, node_fd);
    attached = 1; /* a half-made link is removed by detach too */
    if (rc != 0) {
        say(why, whylen, "attaching to the fabric: node", n->netns, rc);
        goto out;
    }
    rc = node_inside(n);
    if (rc != 0) {
        say(why, whylen, "setting up node namespace", n->netns, rc);
        goto out;
    }
    *out = n;
    n = NULL;
    err = WISP_OK;
out:
    if (node_fd >= 0)
        close(node_fd);
    if (n) {
        if (attached)
            fabric_detach(n);
        if (created)
            node_netns_delete(n->netns);
        node_free(n);
    }
    return err;
}

void wisp_node_down(struct wisp_node *n)
{
    if (!n)
        return;
    while (n->pods)
        wisp_node_pod_destroy(n->pods);
    fabric_detach(n);
    node_netns_delete(n->netns);
    node_free(n);
}

const char *wisp_node_netns_path(const struct wisp_node *n)
{
    return n->netns_path;
}

const char *wisp_node_ip(const struct wisp_node *n)
{
    return n->ip_s;
}

const char *wisp_node_gateway(const struct wisp_node *n)
{
    return n->gw_s;
}
