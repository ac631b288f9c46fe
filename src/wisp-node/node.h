/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by wisp-node's files: the Kubernetes API client (kube.c) and the
 * agent that turns the pods bound to this node into sandboxes (agent.c). */
#ifndef WISP_NODE_AGENT_H
#define WISP_NODE_AGENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include "wisp/buf.h"
#include "wisp/node.h"

struct kube {
    char *api;          /* https://127.0.0.1:PORT, no trailing slash */
    char *ca_file;
    char *token_file;
    CURL *easy;         /* for one-shot requests */
    CURLM *multi;       /* holds the watch */
    CURL *watch;        /* NULL when no watch is open */
    struct curl_slist *watch_hdrs;
    struct wisp_buf line; /* the watch's partial line */
    void (*on_event)(void *ctx, json_t *ev);
    void *ctx;
    long watch_status;
};

void kube_init(struct kube *k, const char *api, const char *ca, const char *token_file);
void kube_free(struct kube *k);
/* One request. Returns the HTTP status (0 on a transport error, with a
 * reason logged); the body, when out is not NULL, is parsed JSON or NULL. */
long kube_call(struct kube *k, const char *method, const char *path, const char *ctype,
               const char *body, json_t **out);
/* Opens a watch on path; each complete line is parsed and given to
 * on_event. */
int kube_watch_start(struct kube *k, const char *path);
/* Drives the watch; returns 1 while it is open, 0 once it has ended. */
int kube_watch_step(struct kube *k);
void kube_watch_stop(struct kube *k);

struct agent_config {
    const char *node, *pod_cidr, *node_ip, *state_dir, *fabric, *fabric_cidr, *netns;
    const char *ca_file;        /* wisp's CA for the pods' bundle */
    const char *kube_ca;        /* the cluster CA (also the pods' ca.crt) */
    const char *audience;       /* TokenRequest audience; NULL: the API's default (issuer) */
    unsigned token_seconds;     /* expirationSeconds of projected tokens */
    unsigned backoff_ms;        /* first restart delay */
    unsigned max_pods;
};

/* Runs until SIGTERM or SIGINT; returns the exit code. */
int agent_run(const struct agent_config *cfg, struct kube *k);

/* ---- exec (exec.c, docs/internals/EXEC.md) ---- */
/* Serves exec sessions on wisp_node_exec_socket_path(port of api, node)
 * from a thread of its own; 0, or -1 (logged) when the socket cannot be
 * made. exec_stop() ends every session and removes the socket. */
int exec_start(const char *api, const char *node);
void exec_stop(void);
/* The agent says which pods run here: pid is the pod's init; c are its
 * containers (their env and workingDir are copied). */
void exec_pod_add(const char *uid, const char *ns, const char *name, const char *hostname,
                  pid_t pid, const struct wisp_node_container *c, size_t n);
void exec_pod_remove(const char *uid);

#endif
