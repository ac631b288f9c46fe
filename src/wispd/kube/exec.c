/* SPDX-License-Identifier: Apache-2.0 */
/* pods/NAME/exec (docs/internals/EXEC.md): checks the caller's
 * container.pods.exec, the pod, its container and that it runs, connects to
 * the exec socket of the node agent that runs it and hands it the command;
 * then accepts kubectl's WebSocket (v5.channel.k8s.io, or v4) and relays
 * both ways on the worker loop: channel-prefixed messages to and from
 * length-prefixed records, until the node's final status, which is
 * forwarded before the close (1000). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/http.h"
#include "wisp/log.h"
#include "wisp/node.h"
#include "kube.h"
#include "kube_obj.h"

#define NODE_TIMEOUT_S 5          /* connect and answer from the node agent */
#define MAX_ANSWER 4096
#define RX_MAX (WISP_NODE_EXEC_RECORD_MAX + 5) /* one whole record; the node sends at most 32 KiB */
#define TOO_LARGE                                                                           \
    "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: a record " \
    "from the node agent is too large\",\"reason\":\"InternalError\",\"code\":500}"
#define HIGH_WATER (1u << 20)     /* bytes queued on one side before the other waits */
#define CH_STATUS 3

static const char *const protocols[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};

/* The subresource as IAM and the Forbidden message name it. */
static const struct kube_res exec_res = {"pods/exec", "PodExecOptions", NULL, 1,
                                         "container.pods"};

struct relay {
    struct wisp_http_ws *ws;
    struct wisp_http_fd *node;
    struct wisp_buf rx;  /* records from the node, not yet whole */
    int v5, status_sent;
};

/* ---- the relay ------------------------------------------------------------------ */

static void to_node(struct relay *r, unsigned char ch, const void *data, size_t len)
{
    unsigned char h[5];
    wisp_node_exec_record_head(h, ch, len);
    wisp_http_fd_write(r->node, h, 5);
    wisp_http_fd_write(r->node, data, len);
}

static void to_client(struct relay *r, unsigned char ch, const void *data, size_t len)
{
    char *m = wisp_xmalloc(len + 1);
    m[0] = (char)ch;
    memcpy(m + 1, data, len);
    wisp_http_ws_send(r->ws, 1, m, len + 1);
    free(m);
}

static void finish(struct relay *r, const char *status_json)
{
    if (r->status_sent)
        return;
    r->status_sent = 1;
    to_client(r, CH_STATUS, status_json, strlen(status_json));
    wisp_http_ws_close(r->ws, 1000);
}

static void on_client(struct wisp_http_ws *ws, int binary, const void *data, size_t len,
                      void *ctx)
{
    struct relay *r = ctx;
    const unsigned char *d = data;
    (void)binary;
    if (len == 0 || r->status_sent)
        return;
    /* stdin, resize, and (v5) the close of a stream; nothing else is the
     * client's to send */
    if (d[0] == 0 || d[0] == 4 || (d[0] == 255 && r->v5))
        to_node(r, d[0], d + 1, len - 1);
    if (wisp_http_fd_pending(r->node) > HIGH_WATER)
        wisp_http_ws_pause(ws, 1);
}

static void on_client_drain(struct wisp_http_ws *ws, void *ctx)
{
    struct relay *r = ctx;
    (void)ws;
    if (wisp_http_ws_pending(r->ws) < HIGH_WATER / 2)
        wisp_http_fd_pause(r->node, 0);
}

static void on_client_closed(void *ctx)
{
    struct relay *r = ctx;
    /* closing the socket tells the node agent to end the command */
    wisp_http_fd_close(r->node);
    wisp_buf_free(&r->rx);
    free(r);
}

/* Sends every whole record in r->rx on; keeps a partial one. */
static void parse_node(struct relay *r)
{
    size_t off = 0;
    while (!r->status_sent) {
        unsigned ch;
        const unsigned char *d;
        size_t n;
        long whole = wisp_node_exec_record_next(r->rx.data + off, r->rx.len - off, &ch, &d, &n);
        if (whole < 0) {
            finish(r, TOO_LARGE);
            return;
        }
        if (whole == 0)
            break;
        if (ch == 1 || ch == 2) {
            to_client(r, (unsigned char)ch, d, n);
        } else if (ch == CH_STATUS) {
            char *st = wisp_xstrndup((const char *)d, n);
            finish(r, st);
            free(st);
        }
        off += (size_t)whole;
    }
    memmove(r->rx.data, r->rx.data + off, r->rx.len - off);
    r->rx.len -= off;
}

static void on_node(struct wisp_http_fd *f, const void *data, size_t len, void *ctx)
{
    struct relay *r = ctx;
    const char *p = data;
    if (len == 0) {
        finish(r, "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: "
                  "error executing command in container: the node agent ended the session\","
                  "\"reason\":\"InternalError\",\"code\":500}");
        return;
    }
    /* One read may bring many records: take them in pieces that fit. */
    while (len && !r->status_sent) {
        size_t take = RX_MAX - r->rx.len < len ? RX_MAX - r->rx.len : len;
        if (take == 0) {
            finish(r, TOO_LARGE);
            return;
        }
        wisp_buf_append(&r->rx, p, take);
        p += take;
        len -= take;
        parse_node(r);
    }
    if (!r->status_sent && wisp_http_ws_pending(r->ws) > HIGH_WATER)
        wisp_http_fd_pause(f, 1);
}

static void on_node_drain(struct wisp_http_fd *f, void *ctx)
{
    struct relay *r = ctx;
    (void)f;
    wisp_http_ws_pause(r->ws, 0);
}

/* ---- the node agent ------------------------------------------------------------- */

/* Connects to the node's exec socket and sends the header; returns the fd,
 * or -1 after answering. */
static int node_connect(struct kube_req *k, const char *node, const char *hdr)
{
    int port = (int)json_integer_value(json_object_get(k->cluster_doc, "kubePort"));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = NODE_TIMEOUT_S};
    char path[sizeof(a.sun_path)];
    int fd = -1;

    if (wisp_node_exec_socket_path(port, node, path, sizeof(path)) != 0)
        goto unreachable;
    memcpy(a.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto unreachable;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto unreachable;
    size_t len = strlen(hdr);
    if (send(fd, hdr, len, MSG_NOSIGNAL) != (ssize_t)len)
        goto unreachable;
    return fd;
unreachable:
    kube_status(k->req, 500, "InternalError", NULL, NULL,
                "error dialing backend: the node agent of %s is not reachable: %s", node,
                strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Reads the node's answer line; 1 when it took the command, else 0 after
 * answering with what the node said. Read a byte at a time: what follows
 * the line belongs to the relay. */
static int node_answer(struct kube_req *k, int fd, const char *node)
{
    char line[MAX_ANSWER];
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        ssize_t r = recv(fd, line + n, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    json_t *a = json_loads(line, 0, NULL);
    int ok = json_is_true(json_object_get(a, "ok"));
    if (!ok && a) {
        int code = (int)json_integer_value(json_object_get(a, "code"));
        const char *reason = json_string_value(json_object_get(a, "reason"));
        const char *msg = json_string_value(json_object_get(a, "message"));
        kube_status(k->req, code >= 400 && code <= 599 ? code : 500,
                    reason ? reason : "InternalError", NULL, NULL, "%s",
                    msg ? msg : "the node refused the command");
    } else if (!ok) {
        kube_status(k->req, 500, "InternalError", NULL, NULL,
                    "error dialing backend: no answer from the node agent of %s", node);
    }
    json_decref(a);
    return ok;
}

/* ---- the request ---------------------------------------------------------------- */

static int is_true(struct wisp_http_req *req, const char *key)
{
    const char *v = wisp_http_query(req, key);
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* The command: every "command" query parameter, in order. */
static json_t *command_of(struct wisp_http_req *req)
{
    json_t *cmd = json_array();
    const char *q = req->query;
    while (*q && json_array_size(cmd) <= 256) {
        size_t len = strcspn(q, "&");
        if (len > 8 && !strncmp(q, "command=", 8)) {
            /* decode through the request API: a one-parameter query */
            char *one = wisp_xstrndup(q, len);
            const char *save = req->query;
            req->query = one;
            const char *v = wisp_http_query(req, "command");
            req->query = save;
            if (v)
                json_array_append_new(cmd, json_string(v));
            free(one);
        } else if (len == 8 && !strncmp(q, "command=", 8)) {
            json_array_append_new(cmd, json_string(""));
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return cmd;
}

/* The pod runs and has the container: 1, or 0 after answering. */
static int pod_ready(struct kube_req *k, const json_t *pod, const char *name,
                     const char **container)
{
    const json_t *spec = json_object_get(pod, "spec"), *cs = json_object_get(spec, "containers");
    const char *want = *container, *phase =
        json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    size_t i;
    const json_t *c;
    *container = NULL;
    json_array_foreach(cs, i, c) {
        const char *cn = json_string_value(json_object_get(c, "name"));
        if (cn && (!want || !want[0] || !strcmp(cn, want))) {
            *container = cn;
            break;
        }
    }
    if (!*container) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL, "container %s is not valid for pod %s",
                    want ? want : "", name);
        return 0;
    }
    if (!json_string_value(json_object_get(spec, "nodeName"))) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL,
                    "pod %s does not have a host assigned", name);
        return 0;
    }
    if (!phase || strcmp(phase, "Running") != 0) {
        kube_status(k->req, 400, "BadRequest", NULL, NULL,
                    "unable to upgrade connection: container not found (\"%s\"): pod is not "
                    "running (phase %s)",
                    *container, phase ? phase : "Pending");
        return 0;
    }
    return 1;
}

void kube_exec(struct kube_req *k, const char *ns, const char *name)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *pod = NULL, *cmd = NULL, *hdr = NULL;
    char *hdr_text = NULL;
    const char *container = wisp_http_query(req, "container");
    int fd = -1;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
        kube_status(req, 405, "MethodNotAllowed", name, "pods",
                    "the server does not allow this method on the requested resource");
        return;
    }
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        kube_store_error(req, WISP_EIO);
        return;
    }
    int allowed = kube_allowed(k, txn, &exec_res, "exec", "create", ns);
    enum wisp_err err = allowed ? kube_load(txn, k, kube_res_find("pods"), ns, name, &pod, NULL)
                                : WISP_OK;
    wisp_store_rollback(txn);
    if (!allowed)
        goto out;
    if (err == WISP_ENOTFOUND) {
        kube_status(req, 404, "NotFound", name, "pods", "pods \"%s\" not found", name);
        goto out;
    }
    if (err != WISP_OK) {
        kube_store_error(req, err);
        goto out;
    }
    if (!pod_ready(k, pod, name, &container))
        goto out;
    cmd = command_of(req);
    if (json_array_size(cmd) == 0 || json_array_size(cmd) > 256) {
        kube_status(req, 400, "BadRequest", NULL, NULL,
                    "you must specify at least 1 command (and at most 256 words)");
        goto out;
    }
    /* kube-apiserver's answer to an exec that is not a stream upgrade
     * (kubectl's SPDY fallback gets it too: wisp speaks WebSocket only) */
    if (!wisp_http_ws_check(req, protocols, NULL)) {
        kube_status(req, 400, "BadRequest", NULL, NULL, "Upgrade request required");
        goto out;
    }
    const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"),
                                                         "nodeName"));
    const json_t *meta = json_object_get(pod, "metadata");
    hdr = json_pack("{s:s, s:s, s:s?, s:s, s:O, s:b, s:b, s:b, s:b}", "namespace", ns, "pod", name,
                    "uid", json_string_value(json_object_get(meta, "uid")), "container",
                    container, "command", cmd, "stdin", is_true(req, "stdin"), "stdout",
                    is_true(req, "stdout"), "stderr", is_true(req, "stderr"), "tty",
                    is_true(req, "tty"));
    char *text = json_dumps(hdr, JSON_COMPACT);
    hdr_text = wisp_xasprintf("%s\n", text);
    free(text);
    fd = node_connect(k, node, hdr_text);
    if (fd < 0 || !node_answer(k, fd, node))
        goto out;

    static const struct wisp_http_ws_ops ws_ops = {
        .on_message = on_client, .on_drain = on_client_drain, .on_closed = on_client_closed};
    static const struct wisp_http_fd_ops fd_ops = {.on_data = on_node, .on_drain = on_node_drain};
    struct relay *r = wisp_xcalloc(1, sizeof(*r));
    wisp_buf_init(&r->rx, RX_MAX);
    r->ws = wisp_http_ws_accept(req, protocols, &ws_ops, r);
    if (!r->ws) {
        wisp_buf_free(&r->rx);
        free(r);
        goto out;
    }
    r->v5 = !strcmp(wisp_http_ws_protocol(r->ws), "v5.channel.k8s.io");
    r->node = wisp_http_ws_attach_fd(r->ws, fd, &fd_ops, r);
    fd = -1;
    wisp_log_info("kube", "exec in %s/%s (%s) by %s on %s", ns, name, container, k->user, node);
out:
    if (fd >= 0)
        close(fd);
    free(hdr_text);
    json_decref(hdr);
    json_decref(cmd);
    json_decref(pod);
}
