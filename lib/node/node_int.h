/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of lib/node shared by its files: entering network namespaces,
 * pinning them under /run/netns, and the few rtnetlink requests the layout
 * needs (veth pairs, addresses, routes, link state). */
#ifndef WISP_NODE_INT_H
#define WISP_NODE_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_NETNS_DIR "/run/netns"

/* Moves the calling thread into the namespace at path; returns a descriptor
 * of the namespace it left (for ns_leave) or -1 with errno. */
int node_ns_enter(const char *path);
/* Returns the thread to saved and closes it; aborts if that fails, since
 * carrying on would put later sockets and links on the wrong network. */
void node_ns_leave(int saved);

/* Creates /run/netns/NAME holding a fresh network namespace with lo up.
 * Returns 0, or -errno (EEXIST when the name is taken). */
int node_netns_create(const char *name);
/* Unpins and removes /run/netns/NAME; the namespace dies with its last user. */
void node_netns_delete(const char *name);
int node_netns_exists(const char *name);

/* Writes value to a /proc/sys file as seen from the current namespace. */
int node_sysctl(const char *path, const char *value);

/* rtnetlink on a socket opened in the current namespace of the thread.
 * Every function returns 0 or -errno. */
int nl_open(void);
int nl_link_up(int fd, const char *ifname);
/* Creates veth ifname here and its peer peer_name inside peer_netns_fd. */
int nl_veth_create(int fd, const char *ifname, const char *peer_name, int peer_netns_fd);
int nl_link_delete(int fd, const char *ifname);
int nl_addr_add(int fd, const char *ifname, uint32_t ip, unsigned prefix);
/* dst/prefix via gw (0: a link route) out of ifname; onlink for a gateway
 * outside the link's subnets. */
int nl_route_add(int fd, uint32_t dst, unsigned prefix, uint32_t gw, const char *ifname,
                 int onlink);

/* A wait status as Kubernetes reports it: the exit code, or 128 + the
 * signal (pod.c, exec.c). */
int node_exit_code(int st);

/* ---- shared between net.c and pod.c ---- */

struct wisp_node_pod;

struct wisp_node {
    char *fabric, *name, *netns, *netns_path;   /* from malloc() */
    char *state_dir, *ca_file, *host_bundle;    /* from malloc(); ca_file may be NULL */
    char *addr_dir;                             /* STATE/addresses; from malloc() */
    _Atomic uint64_t *addr_gen;                 /* its WISP_NODE_ADDR_GEN, mapped; or NULL */
    int bundle_written;                         /* STATE/ca-certificates.crt (pod.c) */
    uint32_t fabric_net, fabric_gw, ip;         /* host byte order */
    unsigned fabric_prefix;
    uint32_t pod_net, pod_gw;                   /* pod range and its .1 (on the node's lo) */
    unsigned pod_prefix;
    char ip_s[16], gw_s[16];
    char fab_if[16];                            /* the node's veth end in the fabric */
    unsigned char *used;                        /* IPAM: one byte per host offset */
    uint32_t n_hosts, next, in_use;
    struct wisp_node_pod *pods;                 /* live pods, for wisp_node_down */
};

/* IPAM: returns a free host offset (2..n_hosts-2), round robin so that a
 * released address is the last to be handed out again, or 0 when full;
 * records pod uid as its holder in STATE/addresses/IP (wisp_node_holder),
 * until node_ip_release. */
uint32_t node_ip_alloc(struct wisp_node *n, const char *uid);
void node_ip_release(struct wisp_node *n, uint32_t off);
/* Removes a pod from the node's list (pod.c calls it on destroy). */
void node_pod_unlink(struct wisp_node *n, struct wisp_node_pod *p);
void node_pod_link(struct wisp_node *n, struct wisp_node_pod *p);
struct wisp_node_pod *node_pod_next(struct wisp_node_pod *p);

#endif
