/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to lib/http: the server, worker and request structures shared by
 * server.c (listeners, threads, shutdown) and req.c (dispatch and the
 * request API). Nothing outside lib/http includes this or h2o. */
#ifndef WISP_HTTP_INTERNAL_H
#define WISP_HTTP_INTERNAL_H

/* Debian's libh2o-evloop is h2o built on its own epoll loop, but its .pc
 * file does not say so; without this h2o.h expects libuv. */
#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <pthread.h>
#include "http/head.h"
#include "wisp/http.h"

/* h2o's own hard ceilings (picohttpparser's header array, its read cap):
 * past them h2o answers 400 itself, before wisp sees anything. */
#define WISP__HTTP_H2O_MAX_HEADERS ((size_t)H2O_MAX_HEADERS)
#define WISP__HTTP_H2O_MAX_REQLEN ((size_t)H2O_MAX_REQLEN)

struct wisp__http_route {
    const char *host_suffix; /* borrowed; NULL for any host */
    size_t host_suffix_len;
    const char *method; /* borrowed; NULL for any method */
    const char *prefix; /* borrowed */
    size_t prefix_len;
    wisp_http_handler fn;
    void *ctx;
};

/* A listener, allocated once and freed with the server, because accepted
 * connections keep pointers into it. hosts is the NULL-terminated host list
 * h2o copies into each accepted connection (conn->hosts): pointing every
 * listener's list at the same one hostconf but from a different array is
 * how a request finds the listener it came through. */
struct wisp__http_listener {
    h2o_hostconf_t *hosts[2];
    unsigned id;
    char *tag;  /* owned; NULL for none */
    int *fds;   /* n_fds listening sockets (one per worker with SO_REUSEPORT); -1 once a worker
                   owns one */
    size_t n_fds;
    SSL_CTX *ssl_ctx; /* NULL for plain HTTP; owned */
    int closed;       /* wisp_http_unlisten() was called */
};

/* One listener as seen by one worker, allocated on its own because
 * accept_ctx must outlive every connection accepted through it (h2o keeps a
 * pointer); freed when the worker exits. */
struct wisp__http_lsock {
    h2o_linklist_t link; /* in worker->lsocks */
    struct wisp__http_worker *w;
    struct wisp__http_listener *l;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock; /* NULL once closed */
};

/* A message to a running worker: start or stop accepting on a listener.
 * The sender allocates it and the worker frees it. */
struct wisp__http_ctl_msg {
    h2o_multithread_message_t super;
    struct wisp__http_listener *l;
    int close;
};

/* An accepted socket, tracked so that shutdown can find idle connections:
 * h2o 2.2.5 has no API to close its HTTP/1 connections. */
struct wisp__http_conn {
    h2o_linklist_t link;
    h2o_socket_t *sock;
    struct wisp__http_worker *w;
    int shut; /* shutdown(2) already issued */
};

struct wisp__http_worker {
    struct wisp_http_server *srv;
    unsigned idx;
    pthread_t thread;
    int started;
    h2o_evloop_t *loop;
    h2o_context_t ctx;               /* must stay addressable: req.c finds the worker from it */
    h2o_linklist_t lsocks;           /* struct wisp__http_lsock */
    h2o_multithread_receiver_t ctl;  /* listener messages (struct wisp__http_ctl_msg) */
    int ctl_ready;                   /* ctl may receive; guarded by srv->mu */
    h2o_socket_t *stop_sock;         /* our dup of the server's eventfd */
    h2o_linklist_t conns;            /* struct wisp__http_conn */
    h2o_timeout_t stream_tick;       /* every stream's tick (stream.c) */
    h2o_timeout_t stream_now;        /* ticks brought forward by a wake (stream.c) */
    h2o_linklist_t streams;          /* open streams, ended when the server stops */
    int wake_fd;                     /* eventfd: any thread writes, this worker reads */
    h2o_socket_t *wake_sock;         /* our dup of wake_fd */
    void *thread_data;               /* from cfg.on_thread_start */
    int stopping;                    /* only touched by this worker */
};

/* h2o handler glue: h2o_create_handler() allocates this and h2o owns it. */
struct wisp__http_glue {
    h2o_handler_t super;
    struct wisp_http_server *srv;
};

struct wisp_http_server {
    struct wisp_http_config cfg; /* with defaults applied */
    h2o_globalconf_t gconf;
    struct wisp__http_route *routes;
    size_t n_routes, cap_routes;
    /* Listeners may be added while workers run: the array and each worker's
     * ctl_ready are guarded by mu. */
    pthread_mutex_t mu;
    struct wisp__http_listener **listeners;
    size_t n_listeners;
    unsigned next_id;
    struct wisp__http_worker *workers; /* cfg.n_threads, during run() */
    int stop_fd; /* eventfd written by stop(); never read, so it stays readable */
    int ran;     /* run() has been called */
};

/* Per-request state, allocated in the h2o request pool. pub.impl points
 * back here. */
struct wisp__http_state {
    struct wisp_http_req pub;
    h2o_req_t *h2o;
    struct wisp_http_server *srv; /* for the config's error_headers */
    struct wisp__http_head head;
    int responded;
};

/* Ends every open stream of w (stream.c): the server is stopping. */
void wisp__http_streams_end(struct wisp__http_worker *w);
/* Brings every open stream's tick of w forward to now (stream.c). */
void wisp__http_streams_now(struct wisp__http_worker *w);

/* The h2o on_req callback for the single "/" path (req.c). */
int wisp__http_on_req(h2o_handler_t *self, h2o_req_t *req);

#endif
