/* SPDX-License-Identifier: Apache-2.0 */
/* Pod sandboxes in real Linux namespaces (docs/internals/NODE.md): a fabric
 * network namespace per cluster, a node namespace per node joined to it by a
 * veth, and per pod a network namespace behind its node plus mount, UTS and
 * PID namespaces in which the containers' commands run from the host
 * filesystem. Nothing is ever created in the caller's own network namespace:
 * every link is made from inside the namespace that owns it. Root only. */
#ifndef WISP_NODE_H
#define WISP_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "wisp/err.h"

/* The default fabric: 100.64.0.0/16. The fabric namespace owns .0.1 (where
 * wispd listens for pods and nodes); node i is 100.64.(1+i/256).(i%256). */
#define WISP_NODE_FABRIC_CIDR "100.64.0.0/16"

/* Under a node's state directory: a file per pod address in use, named by
 * the address and holding the UID of the pod that has it, from before the
 * pod can send from it until after it no longer can. wisp-metadata
 * (--pod-addresses) checks callers against it (docs/internals/NODE.md). */
#define WISP_NODE_ADDR_DIR "addresses"
/* In that directory: 8 bytes, a counter the node raises (atomically, in a
 * shared mapping) after every change to a record, so a reader can keep
 * what it read until the counter moves instead of reading the file again
 * on every request. */
#define WISP_NODE_ADDR_GEN ".generation"

/* An IPv4 network, host byte order. */
struct wisp_node_cidr {
    uint32_t net;
    unsigned prefix;
};
/* Parses "a.b.c.d/n" (host bits must be zero). Returns 0 or -1. */
int wisp_node_cidr_parse(const char *s, struct wisp_node_cidr *out);
/* Writes a dotted quad (16 bytes suffice). */
void wisp_node_ip_str(uint32_t ip, char out[16]);
/* The fabric address of a node whose pod range is pod_cidr: fabric .0.1 is
 * the gateway, nodes follow from the pod range's 9 bits above its /24 (the
 * index GKE.md gives each node). Returns 0 when the fabric is too small. */
uint32_t wisp_node_default_ip(const struct wisp_node_cidr *fabric,
                              const struct wisp_node_cidr *pod_cidr);

/* The fabric: network namespace `name` (pinned at /run/netns/NAME) with the
 * gateway (first address of cidr) on its loopback and forwarding on.
 * Idempotent: an existing fabric is kept. why gets a one-line reason. */
enum wisp_err wisp_node_fabric_up(const char *name, const char *cidr, char *why, size_t whylen);
/* Removes the fabric namespace (its links go with it). Missing is fine. */
void wisp_node_fabric_down(const char *name);

/* Removes every pinned network namespace whose name starts with prefix
 * (after a crash); returns how many. prefix must start with "wisp-". */
int wisp_node_sweep(const char *prefix);

struct wisp_node_config {
    const char *fabric;       /* fabric namespace name */
    const char *fabric_cidr;  /* NULL: WISP_NODE_FABRIC_CIDR */
    const char *name;         /* the node's name (Kubernetes Node) */
    const char *netns;        /* the node's namespace; NULL: FABRIC-NAME */
    const char *pod_cidr;     /* the node's pod range, /16../30 */
    const char *node_ip;      /* NULL: wisp_node_default_ip */
    const char *state_dir;    /* per-node files (pods/UID/…); created */
    const char *ca_file;      /* wisp's CA, added to pods' CA bundle; may be NULL */
    const char *host_bundle;  /* NULL: /etc/ssl/certs/ca-certificates.crt */
};

struct wisp_node;

/* Creates the node namespace, its veth to the fabric, addresses, routes,
 * 169.254.169.254/32 on its loopback. On failure nothing is left behind. */
enum wisp_err wisp_node_up(const struct wisp_node_config *cfg, struct wisp_node **out, char *why,
                           size_t whylen);
/* Kills every pod still running (SIGKILL), removes their namespaces and
 * files, then the node's veth, fabric routes and namespace; frees n. */
void wisp_node_down(struct wisp_node *n);
const char *wisp_node_netns_path(const struct wisp_node *n); /* /run/netns/NAME */
const char *wisp_node_ip(const struct wisp_node *n);
const char *wisp_node_gateway(const struct wisp_node *n);    /* the fabric's .1 */
/* Addresses in use in the pod range. */
unsigned wisp_node_ips_in_use(const struct wisp_node *n);

enum wisp_node_restart { WISP_NODE_RESTART_ALWAYS, WISP_NODE_RESTART_ON_FAILURE,
                         WISP_NODE_RESTART_NEVER };

struct wisp_node_container {
    const char *name;
    char *const *argv;       /* command + args, NULL-terminated, at least one */
    char *const *env;        /* "K=V", NULL-terminated; may be NULL */
    const char *workdir;     /* NULL: "/" */
};

struct wisp_node_pod_spec {
    const char *uid, *ns, *name;
    const char *hostname;    /* NULL: name (cut to 63) */
    const struct wisp_node_container *containers;
    size_t n_containers;     /* 1..16 */
    enum wisp_node_restart restart;
    unsigned backoff_ms;     /* first restart delay, doubling to 300 s; 0: 10 s */
    const char *token;       /* sa/token before any container starts; may be NULL */
    const char *ca_crt;      /* sa/ca.crt (the cluster CA); may be NULL */
    int hold;                /* 1: the init builds its namespaces, then waits for
                              * wisp_node_pod_release() before any container starts */
};

struct wisp_node_pod;

/* Builds the sandbox and starts the containers: directory
 * STATE/pods/UID (hosts, resolv.conf, hostname, CA bundle, HOME, sa/, one
 * log per container), network namespace with eth0 and an address from the
 * pod range, then a PID-1 init in fresh PID, mount and UTS namespaces that
 * runs the containers. Errors leave nothing behind. */
enum wisp_err wisp_node_pod_start(struct wisp_node *n, const struct wisp_node_pod_spec *spec,
                                  struct wisp_node_pod **out, char *why, size_t whylen);
const char *wisp_node_pod_ip(const struct wisp_node_pod *p);
const char *wisp_node_pod_netns_path(const struct wisp_node_pod *p);
const char *wisp_node_pod_dir(const struct wisp_node_pod *p);
pid_t wisp_node_pod_pid(const struct wisp_node_pod *p); /* the init, 0 once reaped */
/* Path of container i's log (stdout and stderr). */
const char *wisp_node_pod_log(const struct wisp_node_pod *p, size_t i);

/* A held pod (spec.hold): starts its containers. Signalling, stopping or
 * destroying a held pod ends its init before any container runs. */
enum wisp_err wisp_node_pod_release(struct wisp_node_pod *p);
/* 1 while a held pod has not been released. */
int wisp_node_pod_held(const struct wisp_node_pod *p);

/* Atomically replaces sa/FILE (token, ca.crt, namespace) with data. */
enum wisp_err wisp_node_pod_write_sa(struct wisp_node_pod *p, const char *file, const char *data,
                                     size_t len);

/* What the init reports about a container. */
enum wisp_node_event_kind { WISP_NODE_EV_STARTED = 1, WISP_NODE_EV_EXITED = 2 };
struct wisp_node_event {
    int32_t kind;
    int32_t container;       /* index into spec.containers */
    int32_t status;          /* EXITED: exit code, or 128+signal */
    int32_t will_restart;    /* EXITED: 1 if the init restarts it after backoff */
    int64_t at_ms;           /* wall clock, ms since the epoch */
};
/* A descriptor that is readable when events (or the init's end) arrive. */
int wisp_node_pod_event_fd(const struct wisp_node_pod *p);
/* 1: *ev filled; 0: nothing now; -1: the init is gone and all was read. */
int wisp_node_pod_next_event(struct wisp_node_pod *p, struct wisp_node_event *ev);

/* Sends sig to the init, which passes SIGTERM on to every container's
 * process group and stops restarting them. */
void wisp_node_pod_signal(struct wisp_node_pod *p, int sig);
/* Reaps the init if it has exited (block: wait for it). Returns 1 once
 * reaped (then *status is its exit code), else 0. */
int wisp_node_pod_reap(struct wisp_node_pod *p, int block, int *status);
/* SIGTERM, up to grace_ms for the init to end, SIGKILL, reap. */
void wisp_node_pod_stop(struct wisp_node_pod *p, unsigned grace_ms);
/* Once the init is reaped: removes the pod's network namespace and veth
 * and releases its address, keeping its files (logs) until destroy. */
void wisp_node_pod_release_net(struct wisp_node_pod *p);
/* Stops the pod (SIGKILL if still running), removes its network
 * namespace, veth, route and files, releases its address, frees p. */
void wisp_node_pod_destroy(struct wisp_node_pod *p);

/* A container's environment as its processes get it: PATH, HOME=/root,
 * HOSTNAME, then its own "K=V" entries. NULL-terminated, from malloc();
 * free with wisp_node_env_free(). */
char **wisp_node_container_env(const struct wisp_node_container *c, const char *hostname);
void wisp_node_env_free(char **env);

/* ---- exec (lib/node/exec.c, docs/internals/EXEC.md) ---- */

/* Where the node agent of node `node`, attached to the Kubernetes API on
 * 127.0.0.1:api_port, serves exec: /run/wisp/exec/PORT-NODE.sock (NODE
 * hashed when the path would not fit a socket address). wispd derives the
 * same path from the cluster's port. Returns 0, or -1 when out is too
 * small. */
int wisp_node_exec_socket_path(int api_port, const char *node, char *out, size_t len);
#define WISP_NODE_EXEC_DIR "/run/wisp/exec"

/* The relay's records, both ways (after the header line):
 * [u8 channel][u32 big-endian payload length][payload].
 * wisp_node_exec_record_head writes the 5-byte head of a payload of len.
 * wisp_node_exec_record_next reads the record at the start of buf[0..len):
 * returns its whole size (5 + payload) with *ch, *payload and *plen set;
 * 0 when buf does not yet hold all of it; -1 when the head declares more
 * than WISP_NODE_EXEC_RECORD_MAX payload bytes (the peer is broken: drop
 * the session rather than buffer it). */
#define WISP_NODE_EXEC_RECORD_MAX (1u << 20)
void wisp_node_exec_record_head(unsigned char h[5], unsigned ch, size_t len);
long wisp_node_exec_record_next(const void *buf, size_t len, unsigned *ch,
                                const unsigned char **payload, size_t *plen);

/* One command to run inside a pod. */
struct wisp_node_exec_spec {
    int pidfd;               /* a pidfd of the pod's init: its namespaces are entered */
    char *const *argv;       /* NULL-terminated, at least one */
    char *const *env;
    const char *workdir;     /* NULL: "/" */
    int tty;                 /* stdin_fd is a pty slave, made the controlling terminal */
    int stdin_fd, stdout_fd, stderr_fd; /* the command's 0, 1, 2 (open descriptors) */
};
/* Starts the command in the pod's network, UTS, IPC, PID and mount
 * namespaces, in a new session, through a helper process whose exit status
 * becomes the command's (exit code, or 128 + signal). Returns the helper's
 * pid once the command was exec'd; SIGKILL to the helper kills the command
 * too. On failure returns -1 with *err an errno value and why the reason
 * ("exec: \"x\": executable file not found in $PATH"); *err is ESRCH when
 * the pod's init is gone. */
pid_t wisp_node_exec_start(const struct wisp_node_exec_spec *s, int *err, char *why,
                           size_t whylen);

#endif
