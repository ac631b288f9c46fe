/* SPDX-License-Identifier: Apache-2.0 */
/* The server around h2o 2.2.5 (libh2o-evloop): listeners (plain or TLS,
 * optionally created inside another network namespace), worker threads that
 * each run their own h2o event loop over every listener, and a shutdown
 * that a signal handler can trigger. Request handling lives in req.c; this
 * file never looks inside a request. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "http/internal.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

/* Each worker gets its own SO_REUSEPORT socket per listener, so the kernel
 * spreads new connections over the workers and no two loops wake for the
 * same one. With 0, every worker polls one shared socket instead. Kept as a
 * switch because bench/http measures both (docs/deps/h2o.md). */
#ifndef WISP_HTTP_REUSEPORT
#define WISP_HTTP_REUSEPORT 1
#endif

#define DEFAULT_MAX_HEADER_BYTES 16384
#define DEFAULT_MAX_HEADERS 64
#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define DEFAULT_IDLE_MS 30000
#define DEFAULT_THREADS 2
#define DEFAULT_STREAM_TICK_MS 100
#define MAX_THREADS 256
/* Connections accepted per wakeup of one listener, so one busy listener
 * cannot starve the loop's other sockets. */
#define ACCEPT_BATCH 16

/* ---- server lifecycle ---------------------------------------------------- */

static void apply_defaults(struct wisp_http_config *c)
{
    struct wisp_http_limits *l = &c->limits;
    if (!l->max_header_bytes)
        l->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!l->max_headers)
        l->max_headers = DEFAULT_MAX_HEADERS;
    if (!l->max_body)
        l->max_body = DEFAULT_MAX_BODY;
    if (!l->idle_timeout_ms)
        l->idle_timeout_ms = DEFAULT_IDLE_MS;
    if (!c->n_threads)
        c->n_threads = DEFAULT_THREADS;
    if (!c->stream_tick_ms)
        c->stream_tick_ms = DEFAULT_STREAM_TICK_MS;
    if (c->n_threads > MAX_THREADS)
        c->n_threads = MAX_THREADS;
    /* Past these h2o itself answers 400 before wisp runs, so larger
     * settings could never take effect. */
    if (l->max_headers > WISP__HTTP_H2O_MAX_HEADERS) {
        wisp_log_warn("http", "max_headers %zu above h2o's %zu; clamped", l->max_headers,
                      WISP__HTTP_H2O_MAX_HEADERS);
        l->max_headers = WISP__HTTP_H2O_MAX_HEADERS;
    }
    if (l->max_header_bytes > WISP__HTTP_H2O_MAX_REQLEN) {
        wisp_log_warn("http", "max_header_bytes %zu above h2o's %zu; clamped", l->max_header_bytes,
                      WISP__HTTP_H2O_MAX_REQLEN);
        l->max_header_bytes = WISP__HTTP_H2O_MAX_REQLEN;
    }
    if (l->max_body > SIZE_MAX / 2)
        l->max_body = SIZE_MAX / 2;
}

struct wisp_http_server *wisp_http_server_new(const struct wisp_http_config *cfg)
{
    struct wisp_http_server *srv = wisp_xcalloc(1, sizeof(*srv));
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    struct wisp__http_glue *glue;

    if (cfg)
        srv->cfg = *cfg;
    apply_defaults(&srv->cfg);
    pthread_mutex_init(&srv->mu, NULL);

    srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv->stop_fd < 0) {
        wisp_log_err("http", "eventfd: %s", strerror(errno));
        abort(); /* same policy as OOM: nothing sensible to return */
    }

    h2o_config_init(&srv->gconf);
    /* No Server header unless a handler sets one. */
    srv->gconf.server_name = h2o_iovec_init(H2O_STRLIT(""));
    /* One more than the limit: h2o's chunked reader refuses a body equal to
     * its limit, wisp's contract allows max_body exactly (req.c checks). */
    srv->gconf.max_request_entity_size = srv->cfg.limits.max_body + 1;
    srv->gconf.http1.req_timeout = srv->cfg.limits.idle_timeout_ms;
    srv->gconf.handshake_timeout = srv->cfg.limits.idle_timeout_ms;
    /* HTTP/1.1 only: no h2c upgrade, no "PRI *" preface. */
    srv->gconf.http1.upgrade_to_http2 = 0;

    /* One host and one path: wisp routes by itself (req.c), so h2o's host
     * and path matching must send everything to the same handler. */
    hostconf = h2o_config_register_host(&srv->gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    glue = (struct wisp__http_glue *)h2o_create_handler(pathconf, sizeof(*glue));
    glue->srv = srv;
    glue->super.on_req = wisp__http_on_req;
    glue = (struct wisp__http_glue *)h2o_create_handler(&hostconf->fallback_path, sizeof(*glue));
    glue->srv = srv;
    glue->super.on_req = wisp__http_on_req;
    return srv;
}

void wisp_http_server_free(struct wisp_http_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct wisp__http_listener *l = srv->listeners[i];
        for (size_t j = 0; j < l->n_fds; j++) {
            if (l->fds[j] >= 0)
                close(l->fds[j]);
        }
        free(l->fds);
        free(l->tag);
        if (l->ssl_ctx)
            SSL_CTX_free(l->ssl_ctx);
        free(l);
    }
    free(srv->listeners);
    free(srv->routes);
    for (unsigned i = 0; srv->workers && i < srv->cfg.n_threads; i++)
        close(srv->workers[i].wake_fd);
    free(srv->workers);
    h2o_config_dispose(&srv->gconf);
    pthread_mutex_destroy(&srv->mu);
    close(srv->stop_fd);
    free(srv);
}

void wisp_http_route(struct wisp_http_server *srv, const char *host_suffix, const char *method,
                     const char *prefix, wisp_http_handler fn, void *ctx)
{
    if (srv->n_routes == srv->cap_routes) {
        srv->cap_routes = srv->cap_routes ? srv->cap_routes * 2 : 16;
        srv->routes = wisp_xrealloc(srv->routes, srv->cap_routes * sizeof(*srv->routes));
    }
    struct wisp__http_route *r = &srv->routes[srv->n_routes++];
    r->host_suffix = host_suffix;
    r->host_suffix_len = host_suffix ? strlen(host_suffix) : 0;
    r->method = method;
    r->prefix = prefix ? prefix : "/";
    r->prefix_len = strlen(r->prefix);
    r->fn = fn;
    r->ctx = ctx;
}

/* ---- listeners ------------------------------------------------------------ */

static void log_ssl_error(const char *what, const char *detail)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    wisp_log_err("http", "%s%s: %s", what, detail, buf);
}

/* ALPN offers http/1.1 only: h2o's HTTP/2 is off, and Go clients (kubectl)
 * must not try h2 (their exec/upgrade path needs HTTP/1.1 anyway). */
static const h2o_iovec_t alpn_http11[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

/* Loads the chain (leaf first) and key from PEM text. */
static int tls_load_pem(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    int ok = 0;

    if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
        log_ssl_error("loading certificate", "");
        goto out;
    }
    for (X509 *ca; (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL;) {
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            log_ssl_error("loading certificate chain", "");
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    bio = BIO_new_mem_buf(key_pem, -1);
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!pkey || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
        log_ssl_error("loading key", "");
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl_error("key does not match certificate", "");
        goto out;
    }
    ok = 1;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return ok;
}

static SSL_CTX *tls_ctx_new(const char *cert_pem, const char *key_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_ssl_error("SSL_CTX_new", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!tls_load_pem(ctx, cert_pem, key_pem)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, alpn_http11);
    return ctx;
}

static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sl = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sl = sizeof(*a6);
        return 0;
    }
    return -1;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Creates n listening sockets on the same address. The first may pick the
 * port (port 0); the others join it through SO_REUSEPORT, which Linux only
 * allows to sockets of the same effective UID. */
static enum wisp_err open_sockets(struct sockaddr_storage *ss, socklen_t sl, int *fds, size_t n,
                                  int *port_out)
{
    int on = 1;

    /* SO_REUSEPORT would let this server silently share a port that another
     * process of the same UID (a second wispd) already listens on. Probe
     * with a plain bind first so a busy port fails as EADDRINUSE. */
    if (WISP_HTTP_REUSEPORT && sockaddr_port(ss) != 0) {
        int probe = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = probe < 0 ? -1 : 0;
        if (rc == 0) {
            setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
            rc = bind(probe, (struct sockaddr *)ss, sl);
        }
        if (rc != 0) {
            wisp_log_err("http", "bind port %d: %s", sockaddr_port(ss), strerror(errno));
            if (probe >= 0)
                close(probe);
            return WISP_EIO;
        }
        close(probe);
    }
    for (size_t i = 0; i < n; i++) {
        int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            wisp_log_err("http", "socket: %s", strerror(errno));
            return WISP_EIO;
        }
        fds[i] = fd;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        /* Accepted sockets inherit it (on_accept): responses and stream
         * chunks go out at once, never held back by Nagle's algorithm. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
            wisp_log_err("http", "TCP_NODELAY: %s", strerror(errno));
            return WISP_EIO;
        }
        if (WISP_HTTP_REUSEPORT && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
            wisp_log_err("http", "SO_REUSEPORT: %s", strerror(errno));
            return WISP_EIO;
        }
        if (bind(fd, (struct sockaddr *)ss, sl) != 0) {
            wisp_log_err("http", "bind port %d: %s", sockaddr_port(ss), strerror(errno));
            return WISP_EIO;
        }
        if (listen(fd, H2O_SOMAXCONN) != 0) {
            wisp_log_err("http", "listen: %s", strerror(errno));
            return WISP_EIO;
        }
        if (i == 0) {
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
                wisp_log_err("http", "getsockname: %s", strerror(errno));
                return WISP_EIO;
            }
            /* The rest must bind the port the kernel chose. */
            if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *)ss)->sin_port = ((struct sockaddr_in *)&got)->sin_port;
            else
                ((struct sockaddr_in6 *)ss)->sin6_port = ((struct sockaddr_in6 *)&got)->sin6_port;
            *port_out = sockaddr_port(&got);
        }
    }
    return WISP_OK;
}

static int open_ns_self(void)
{
    /* The calling thread's own namespace, which may differ from the
     * process's if some other code moved this thread. */
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd;
}

static void lsock_start(struct wisp__http_worker *w, struct wisp__http_listener *l);
static void ctl_send(struct wisp_http_server *srv, struct wisp__http_listener *l, int close_it);

enum wisp_err wisp_http_listen(struct wisp_http_server *srv,
                               const struct wisp_http_listen_spec *spec, int *port_out,
                               unsigned *id_out)
{
    enum wisp_err err = WISP_OK;
    struct sockaddr_storage ss;
    socklen_t sl;
    size_t n_fds = WISP_HTTP_REUSEPORT ? srv->cfg.n_threads : 1;
    int *fds = NULL;
    SSL_CTX *ssl_ctx = NULL;
    int ns_orig = -1, ns_target = -1, in_target = 0, bound_port = 0;
    const char *netns_path = spec->netns_path;

    if (!spec->addr || spec->port < 0 || spec->port > 65535 || !spec->cert_pem != !spec->key_pem) {
        wisp_log_err("http", "wisp_http_listen: invalid arguments");
        err = WISP_EINVAL;
        goto out;
    }
    if (parse_addr(spec->addr, spec->port, &ss, &sl) != 0) {
        wisp_log_err("http", "listen address %s is not a numeric IP address", spec->addr);
        err = WISP_EINVAL;
        goto out;
    }
    if (spec->cert_pem) {
        ssl_ctx = tls_ctx_new(spec->cert_pem, spec->key_pem);
        if (!ssl_ctx) {
            err = WISP_EINVAL;
            goto out;
        }
    }
    fds = wisp_xmalloc(n_fds * sizeof(*fds));
    for (size_t i = 0; i < n_fds; i++)
        fds[i] = -1;

    if (netns_path) {
        ns_orig = open_ns_self();
        ns_target = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (ns_orig < 0 || ns_target < 0) {
            wisp_log_err("http", "opening network namespace %s: %s", netns_path, strerror(errno));
            err = WISP_EIO;
            goto out;
        }
        if (setns(ns_target, CLONE_NEWNET) != 0) {
            wisp_log_err("http", "setns %s: %s", netns_path, strerror(errno));
            err = WISP_EIO;
            goto out;
        }
        in_target = 1;
    }

    /* A socket belongs to the namespace it was created in, whichever thread
     * later accepts on it. */
    err = open_sockets(&ss, sl, fds, n_fds, &bound_port);

out:
    if (in_target && setns(ns_orig, CLONE_NEWNET) != 0) {
        /* Carrying on in the wrong namespace would put later sockets (and
         * any outbound connection from this thread) on the wrong network. */
        wisp_log_err("http", "cannot return from network namespace %s: %s", netns_path,
                     strerror(errno));
        abort();
    }
    if (ns_orig >= 0)
        close(ns_orig);
    if (ns_target >= 0)
        close(ns_target);
    if (err) {
        for (size_t i = 0; fds && i < n_fds; i++) {
            if (fds[i] >= 0)
                close(fds[i]);
        }
        free(fds);
        if (ssl_ctx)
            SSL_CTX_free(ssl_ctx);
        return err;
    }

    struct wisp__http_listener *l = wisp_xcalloc(1, sizeof(*l));
    l->hosts[0] = srv->gconf.hosts[0];
    l->tag = spec->tag ? wisp_xstrdup(spec->tag) : NULL;
    l->fds = fds;
    l->n_fds = n_fds;
    l->ssl_ctx = ssl_ctx;
    pthread_mutex_lock(&srv->mu);
    l->id = ++srv->next_id;
    srv->listeners =
        wisp_xrealloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*srv->listeners));
    srv->listeners[srv->n_listeners++] = l;
    ctl_send(srv, l, 0);
    pthread_mutex_unlock(&srv->mu);
    if (port_out)
        *port_out = bound_port;
    if (id_out)
        *id_out = l->id;
    wisp_log_info("http", "listening on %s port %d%s%s%s%s%s", spec->addr, bound_port,
                  ssl_ctx ? " (TLS)" : "", netns_path ? " in " : "", netns_path ? netns_path : "",
                  l->tag ? " for " : "", l->tag ? l->tag : "");
    return WISP_OK;
}

void wisp_http_unlisten(struct wisp_http_server *srv, unsigned id)
{
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct wisp__http_listener *l = srv->listeners[i];
        if (l->id != id || l->closed)
            continue;
        l->closed = 1;
        /* Sockets no worker has taken (or, unshared, the original of the
         * workers' duplicates) are closed here; the workers close theirs. */
        for (size_t j = 0; j < l->n_fds; j++) {
            if (l->fds[j] >= 0) {
                close(l->fds[j]);
                l->fds[j] = -1;
            }
        }
        ctl_send(srv, l, 1);
        wisp_log_info("http", "stopped listening%s%s", l->tag ? " for " : "",
                      l->tag ? l->tag : "");
    }
    pthread_mutex_unlock(&srv->mu);
}

/* Tells every worker that can receive messages to start or stop accepting
 * on l. Workers not ready yet see l when they start. Called with srv->mu. */
static void ctl_send(struct wisp_http_server *srv, struct wisp__http_listener *l, int close_it)
{
    for (unsigned i = 0; srv->workers && i < srv->cfg.n_threads; i++) {
        struct wisp__http_worker *w = &srv->workers[i];
        if (!w->ctl_ready)
            continue;
        struct wisp__http_ctl_msg *m = wisp_xcalloc(1, sizeof(*m));
        m->l = l;
        m->close = close_it;
        h2o_multithread_send_message(&w->ctl, &m->super);
    }
}

/* ---- workers ------------------------------------------------------------- */

static void on_conn_close(void *data)
{
    struct wisp__http_conn *c = data;
    h2o_linklist_unlink(&c->link);
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct wisp__http_lsock *ls = listener->data;

    if (err)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        /* Not h2o_evloop_socket_accept(): it passes no address to accept4,
         * so every connection paid a getpeername(2) later, and a
         * setsockopt(TCP_NODELAY) that the listener's own setting (which
         * Linux copies to each accepted socket) makes unnecessary. A new
         * connection per request is common for metadata clients, and each
         * system call is a measurable share of its cost (bench/metadata). */
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(h2o_socket_get_fd(listener), (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break; /* EAGAIN, or another worker won the race */
        h2o_socket_t *sock =
            h2o_evloop_socket_create(ls->w->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
        h2o_socket_setpeername(sock, (struct sockaddr *)&peer, peer_len);
        struct wisp__http_conn *c = wisp_xcalloc(1, sizeof(*c));
        c->sock = sock;
        c->w = ls->w;
        h2o_linklist_insert(&ls->w->conns, &c->link);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&ls->accept_ctx, sock);
    }
}

/* Another thread committed something streams follow: drain the eventfd
 * (its counter coalesces any number of wakes) and run the ticks now. */
static void on_wake(h2o_socket_t *sock, const char *err)
{
    struct wisp__http_worker *w = sock->data;
    uint64_t n;
    (void)err;
    if (read(w->wake_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
        wisp__http_streams_now(w);
}

void wisp_http_streams_wake(struct wisp_http_req *req)
{
    struct wisp__http_state *st = req->impl;
    struct wisp__http_worker *self =
        H2O_STRUCT_FROM_MEMBER(struct wisp__http_worker, ctx, st->h2o->conn->ctx);
    struct wisp_http_server *srv = self->srv;
    uint64_t one = 1;
    for (unsigned i = 0; i < srv->cfg.n_threads; i++) {
        ssize_t n = write(srv->workers[i].wake_fd, &one, sizeof(one));
        (void)n; /* full counter or a stopped worker: nothing to wake */
    }
}

static void on_stop(h2o_socket_t *sock, const char *err)
{
    struct wisp__http_worker *w = sock->data;
    (void)err;
    /* The eventfd is never read, so it stays readable for every worker;
     * stop polling it here or this loop would spin. */
    h2o_socket_read_stop(sock);
    w->stopping = 1;
}

/* A connection is idle when no response is being written and no request
 * bytes are buffered: between keep-alive requests, or before the first. */
static int conn_idle(h2o_socket_t *sock)
{
    return !h2o_socket_is_writing(sock) && sock->input->size == 0;
}

/* Stops accepting, lets responses in progress finish, and closes idle
 * connections. h2o 2.2.5 offers no way to close an HTTP/1 connection from
 * outside, so shutdown(2) makes the socket report EOF/EPIPE and h2o closes
 * it on its own path. Connections still busy after the idle timeout are cut
 * the same way. */
static void worker_drain(struct wisp__http_worker *w)
{
    uint64_t deadline;

    for (h2o_linklist_t *n = w->lsocks.next; n != &w->lsocks; n = n->next) {
        struct wisp__http_lsock *ls = H2O_STRUCT_FROM_MEMBER(struct wisp__http_lsock, link, n);
        if (ls->sock) {
            h2o_socket_close(ls->sock);
            ls->sock = NULL;
        }
    }
    /* A stream (a watch) would otherwise keep its connection busy for as
     * long as it lasts: end each, so its response completes and closes. */
    wisp__http_streams_end(w);
    /* Responses sent from now on carry Connection: close. Not through
     * h2o_context_request_shutdown(): its HTTP/2 half arms a one-second
     * timer that would outlive the context although HTTP/2 is off. */
    w->ctx.shutdown_requested = 1;
    deadline = h2o_now(w->loop) + w->srv->cfg.limits.idle_timeout_ms;
    while (!h2o_linklist_is_empty(&w->conns)) {
        int late = h2o_now(w->loop) >= deadline;
        for (h2o_linklist_t *n = w->conns.next; n != &w->conns; n = n->next) {
            struct wisp__http_conn *c = H2O_STRUCT_FROM_MEMBER(struct wisp__http_conn, link, n);
            if (!c->shut && (late || conn_idle(c->sock))) {
                shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
                c->shut = 1;
            }
        }
        if (h2o_evloop_run(w->loop, 50) != 0 && errno != EINTR)
            break;
    }
}

/* h2o 2.2.5's h2o_evloop_destroy() frees the loop but not its epoll fd.
 * The fd sits right after h2o_evloop_t in h2o's private epoll loop struct;
 * read it from there, and only trust it if /proc says it is an epoll. */
struct wisp__h2o_epoll_loop {
    h2o_evloop_t super;
    int ep;
};

static int evloop_epoll_fd(h2o_evloop_t *loop)
{
    char path[64], target[64];
    int fd = ((struct wisp__h2o_epoll_loop *)loop)->ep;
    ssize_t n;

    if (fd < 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return -1;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventpoll]") == 0 ? fd : -1;
}

/* h2o 2.2.x keeps per-thread caches that nothing releases when a thread
 * exits: up to 16 request-pool chunks (a static __thread list in
 * memory.c) and the socket buffers recycled by h2o_socket_buffer_prototype.
 * A daemon's workers live as long as the process, but a server that is
 * started and stopped (tests, reloads) would leak them per thread, and
 * LeakSanitizer rightly says so. Empty both before the worker returns. */
#define H2O_MEMPOOL_RECYCLE_MAX 16 /* mempool_allocator = {16} in h2o 2.2.5 */

struct wisp__h2o_pool_chunk {
    struct wisp__h2o_pool_chunk *next; /* first member of h2o's private chunk struct */
};

static void drain_h2o_thread_caches(void)
{
    h2o_mem_recycle_t *bufs = &h2o_socket_buffer_prototype.allocator;
    h2o_mem_pool_t pool;

    while (bufs->cnt)
        free(h2o_mem_alloc_recycle(bufs, 1));

    /* The pool-chunk list is static, so take every cached chunk out through
     * a pool (4 allocations of 1008 bytes fill one 4 KiB chunk; 1008 stays
     * under h2o's direct-allocation threshold), then free the chunks
     * instead of returning them with h2o_mem_clear_pool(). */
    h2o_mem_init_pool(&pool);
    for (int i = 0; i < H2O_MEMPOOL_RECYCLE_MAX * 4; i++)
        h2o_mem_alloc_pool(&pool, 1008);
    for (struct wisp__h2o_pool_chunk *c = (void *)pool.chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
}

/* Starts accepting on l in worker w. Called on w's thread with srv->mu
 * held, so that no other worker takes the same socket. */
static void lsock_start(struct wisp__http_worker *w, struct wisp__http_listener *l)
{
    struct wisp__http_lsock *ls = wisp_xcalloc(1, sizeof(*ls));
    int fd;

    if (l->n_fds > 1) {
        /* SO_REUSEPORT: this worker's own socket; h2o closes it. */
        fd = l->fds[w->idx];
        l->fds[w->idx] = -1;
    } else {
        fd = l->fds[0] >= 0 ? fcntl(l->fds[0], F_DUPFD_CLOEXEC, 0) : -1;
    }
    ls->w = w;
    ls->l = l;
    ls->accept_ctx.ctx = &w->ctx;
    ls->accept_ctx.hosts = l->hosts;
    ls->accept_ctx.ssl_ctx = l->ssl_ctx;
    h2o_linklist_insert(&w->lsocks, &ls->link);
    if (fd < 0) {
        wisp_log_err("http", "worker %u: no socket for listener %u", w->idx, l->id);
        return;
    }
    ls->sock = h2o_evloop_socket_create(w->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ls->sock->data = ls;
    h2o_socket_read_start(ls->sock, on_accept);
}

/* Listener messages from wisp_http_listen() / wisp_http_unlisten(). */
static void on_ctl(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct wisp__http_worker *w = H2O_STRUCT_FROM_MEMBER(struct wisp__http_worker, ctl, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        struct wisp__http_ctl_msg *m =
            H2O_STRUCT_FROM_MEMBER(struct wisp__http_ctl_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (!m->close) {
            pthread_mutex_lock(&w->srv->mu);
            if (!m->l->closed)
                lsock_start(w, m->l);
            pthread_mutex_unlock(&w->srv->mu);
        } else {
            for (h2o_linklist_t *n = w->lsocks.next; n != &w->lsocks; n = n->next) {
                struct wisp__http_lsock *ls =
                    H2O_STRUCT_FROM_MEMBER(struct wisp__http_lsock, link, n);
                if (ls->l == m->l && ls->sock) {
                    h2o_socket_close(ls->sock);
                    ls->sock = NULL;
                }
            }
        }
        free(m);
    }
}

static void *worker_main(void *arg)
{
    struct wisp__http_worker *w = arg;
    struct wisp_http_server *srv = w->srv;
    h2o_multithread_queue_t *queue;
    int epfd;

    if (srv->cfg.on_thread_start)
        w->thread_data = srv->cfg.on_thread_start(w->idx, srv->cfg.user);

    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &srv->gconf);
    h2o_linklist_init_anchor(&w->conns);
    h2o_timeout_init(w->loop, &w->stream_tick, srv->cfg.stream_tick_ms);
    h2o_timeout_init(w->loop, &w->stream_now, 0);
    h2o_linklist_init_anchor(&w->streams);

    h2o_linklist_init_anchor(&w->lsocks);
    h2o_multithread_register_receiver(w->ctx.queue, &w->ctl, on_ctl);
    /* Listeners that exist now are taken here; later ones arrive as
     * messages, which wisp_http_listen() sends once ctl_ready is set. */
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < srv->n_listeners; i++) {
        if (!srv->listeners[i]->closed)
            lsock_start(w, srv->listeners[i]);
    }
    w->ctl_ready = 1;
    pthread_mutex_unlock(&srv->mu);

    w->stop_sock = h2o_evloop_socket_create(w->loop, fcntl(srv->stop_fd, F_DUPFD_CLOEXEC, 0),
                                            H2O_SOCKET_FLAG_DONT_READ);
    w->stop_sock->data = w;
    h2o_socket_read_start(w->stop_sock, on_stop);
    /* h2o closes what it is given; wake_fd stays open for writers until
     * the server is freed. */
    w->wake_sock = h2o_evloop_socket_create(w->loop, fcntl(w->wake_fd, F_DUPFD_CLOEXEC, 0),
                                            H2O_SOCKET_FLAG_DONT_READ);
    w->wake_sock->data = w;
    h2o_socket_read_start(w->wake_sock, on_wake);

    while (!w->stopping) {
        if (h2o_evloop_run(w->loop, INT32_MAX) != 0 && errno != EINTR) {
            wisp_log_err("http", "worker %u: event loop: %s", w->idx, strerror(errno));
            break;
        }
    }

    /* No messages after this; those already queued are handled first, as
     * h2o insists that a receiver leaves with an empty queue. */
    pthread_mutex_lock(&srv->mu);
    w->ctl_ready = 0;
    pthread_mutex_unlock(&srv->mu);
    while (!h2o_linklist_is_empty(&w->ctl._messages))
        h2o_evloop_run(w->loop, 0);
    worker_drain(w);
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->ctl);
    /* Every stream ended with its connection, so no tick is linked. */
    h2o_timeout_dispose(w->loop, &w->stream_tick);
    h2o_timeout_dispose(w->loop, &w->stream_now);
    h2o_socket_close(w->stop_sock);
    h2o_socket_close(w->wake_sock);
    queue = w->ctx.queue;
    h2o_context_dispose(&w->ctx);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR <= 2
    /* 2.2.x's h2o_multithread_destroy_queue() closes the queue's pipe but
     * never frees the queue (fixed in 2.3). */
    free(queue);
#endif
    (void)queue;
    epfd = evloop_epoll_fd(w->loop);
    h2o_evloop_destroy(w->loop);
    if (epfd >= 0)
        close(epfd);
    while (!h2o_linklist_is_empty(&w->lsocks)) {
        struct wisp__http_lsock *ls =
            H2O_STRUCT_FROM_MEMBER(struct wisp__http_lsock, link, w->lsocks.next);
        h2o_linklist_unlink(&ls->link);
        free(ls);
    }

    if (srv->cfg.on_thread_stop)
        srv->cfg.on_thread_stop(w->thread_data, srv->cfg.user);
    drain_h2o_thread_caches();
    return NULL;
}

/* Workers take no asynchronous signals: they go to the caller's threads,
 * where a handler may call wisp_http_server_stop(). SIGPIPE in particular
 * stays blocked, so a write to a vanished peer fails with EPIPE instead of
 * killing the process. Fault signals are left alone. */
static void worker_sigmask(sigset_t *set)
{
    sigfillset(set);
    sigdelset(set, SIGSEGV);
    sigdelset(set, SIGBUS);
    sigdelset(set, SIGFPE);
    sigdelset(set, SIGILL);
    sigdelset(set, SIGTRAP);
    sigdelset(set, SIGABRT);
    sigdelset(set, SIGSYS);
}

enum wisp_err wisp_http_server_run(struct wisp_http_server *srv)
{
    enum wisp_err err = WISP_OK;
    sigset_t block, old;

    if (srv->ran || srv->n_listeners == 0) {
        wisp_log_err("http", "wisp_http_server_run: %s", srv->ran ? "already ran" : "no listeners");
        return WISP_EINVAL;
    }
    srv->ran = 1;
    srv->workers = wisp_xcalloc(srv->cfg.n_threads, sizeof(*srv->workers));
    /* Every wake fd exists before any worker runs a handler that may
     * write to all of them. */
    for (unsigned i = 0; i < srv->cfg.n_threads; i++) {
        srv->workers[i].wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->workers[i].wake_fd < 0) {
            wisp_log_err("http", "eventfd: %s", strerror(errno));
            for (unsigned j = 0; j < i; j++)
                close(srv->workers[j].wake_fd);
            WISP_FREE(srv->workers);
            return WISP_EIO;
        }
    }

    /* Threads inherit the creator's mask. */
    worker_sigmask(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; i < srv->cfg.n_threads; i++) {
        struct wisp__http_worker *w = &srv->workers[i];
        w->srv = srv;
        w->idx = i;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            wisp_log_err("http", "pthread_create: %s", strerror(rc));
            err = WISP_EIO;
            wisp_http_server_stop(srv);
            break;
        }
        w->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    for (unsigned i = 0; i < srv->cfg.n_threads; i++) {
        if (srv->workers[i].started)
            pthread_join(srv->workers[i].thread, NULL);
    }
    return err;
}

void wisp_http_server_stop(struct wisp_http_server *srv)
{
    /* Only write(2) on an eventfd: async-signal-safe, errno preserved. */
    int saved = errno;
    uint64_t one = 1;
    ssize_t n = write(srv->stop_fd, &one, sizeof(one));
    (void)n;
    errno = saved;
}
