/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP server wisp's daemons are built on: listeners (plain or TLS, in
 * the current network namespace or another one), hard limits, worker
 * threads, and a route table matched by Host suffix, method and path
 * prefix. lib/http/ is the only code that includes the HTTP library (h2o);
 * handlers see only the types below. Handlers run on a worker thread and
 * answer synchronously, exactly once, with wisp_http_respond(). */
#ifndef WISP_HTTP_H
#define WISP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

struct wisp_http_server;

/* One request. Every pointer is request-scoped: valid until the handler has
 * called wisp_http_respond() and returned. Strings are NUL-terminated. */
struct wisp_http_req {
    const char *method;    /* "GET", "POST", ... */
    const char *host;      /* Host/authority, lowercased, port stripped; "" if absent */
    const char *path;      /* raw (undecoded) path, without the query; starts with '/' */
    const char *query;     /* raw query string without '?'; "" if none */
    const char *body;      /* request body (may contain NUL bytes); "" if none */
    size_t body_len;
    const char *peer_ip;   /* source address as text ("127.0.0.1", "198.18.0.5") */
    int tls;               /* 1 when the request arrived over TLS */
    const char *listener_tag; /* the tag of the listener it arrived on; NULL for none */
    void *thread_data;     /* what on_thread_start returned for this worker */
    void *impl;            /* private to lib/http */
};

/* A handler answers the request with wisp_http_respond() before it returns.
 * ctx is the route's ctx. */
typedef void (*wisp_http_handler)(struct wisp_http_req *req, void *ctx);

/* Case-insensitive header lookup. Returns a request-scoped copy of the first
 * value, or NULL. */
const char *wisp_http_header(struct wisp_http_req *req, const char *name);

/* How many fields named name (case-insensitive) the request carries: a
 * rule about a header can so refuse it when it is repeated. */
size_t wisp_http_header_count(struct wisp_http_req *req, const char *name);

/* Returns the percent-decoded value of query parameter key ("+" decodes to
 * a space), request-scoped, or NULL when absent. A value that decodes to
 * bytes containing NUL is treated as absent. */
const char *wisp_http_query(struct wisp_http_req *req, const char *key);

/* Request-scoped allocation (freed when the request completes). Never NULL. */
void *wisp_http_alloc(struct wisp_http_req *req, size_t n);
char *wisp_http_strdup(struct wisp_http_req *req, const char *s);

/* Adds a response header; name and value are copied. Values containing CR or
 * LF are refused (the header is dropped and an error is logged) so no caller
 * can split a response. Call before wisp_http_respond(). */
void wisp_http_add_header(struct wisp_http_req *req, const char *name, const char *value);

/* Sends the response: status, Content-Type (NULL for none), body (copied).
 * Headers and body go out in one write. Call exactly once per request. */
void wisp_http_respond(struct wisp_http_req *req, int status, const char *content_type,
                       const char *body, size_t len);

/* Streaming responses, for long-lived answers such as Kubernetes watches.
 * wisp_http_stream_start() replaces wisp_http_respond(): it sends the status
 * and headers (the body is chunked) and returns a stream that outlives the
 * handler. From then on, every call about the stream happens on the
 * request's worker thread: tick(s, ctx) runs every stream_tick_ms, and may write
 * or end; closed(ctx) runs exactly once when the stream is over for any
 * reason (ended, client gone, server stopping), after which s is invalid —
 * the owner frees ctx there. Writes are buffered while the client is slow,
 * so a tick must bound what it writes. */
struct wisp_http_stream;
typedef void (*wisp_http_stream_tick)(struct wisp_http_stream *s, void *ctx);
typedef void (*wisp_http_stream_closed)(void *ctx);

struct wisp_http_stream *wisp_http_stream_start(struct wisp_http_req *req, int status,
                                                const char *content_type,
                                                wisp_http_stream_tick tick,
                                                wisp_http_stream_closed closed, void *ctx);
/* Queues data (copied) for the client. */
void wisp_http_stream_write(struct wisp_http_stream *s, const void *data, size_t len);
/* Bytes queued and not yet handed to the socket. */
size_t wisp_http_stream_pending(const struct wisp_http_stream *s);
/* Finishes the response once the queued data is sent. s may be freed
 * before this returns: do not use it afterwards. */
void wisp_http_stream_end(struct wisp_http_stream *s);
/* The worker's thread_data, as req->thread_data was. */
void *wisp_http_stream_thread_data(const struct wisp_http_stream *s);
/* Runs every open stream's tick at once, on every worker of req's server,
 * instead of at its next stream_tick_ms: call it after committing a write
 * that streams follow (a watch), so they send it now. From a handler. */
void wisp_http_streams_wake(struct wisp_http_req *req);

/* Limits, enforced before a handler runs. Zero fields take the defaults in
 * brackets. Over-limit requests get 413/414/431/400 and, where HTTP/1.1 framing
 * is in doubt, the connection is closed. */
struct wisp_http_limits {
    size_t max_header_bytes;  /* request line + headers [16384] */
    size_t max_headers;       /* header count [64] */
    size_t max_body;          /* body bytes [8 MiB] */
    unsigned idle_timeout_ms; /* idle keep-alive / slow request [30000] */
};

struct wisp_http_config {
    struct wisp_http_limits limits;
    unsigned n_threads; /* worker threads, each with its own event loop [2] */
    unsigned stream_tick_ms; /* how often streams' tick runs [100] */
    /* Called once on each worker thread before it serves; its result becomes
     * req->thread_data there. May be NULL. */
    void *(*on_thread_start)(unsigned idx, void *user);
    void (*on_thread_stop)(void *thread_data, void *user);
    void *user;
    /* Name, value, name, value, ..., NULL: headers added to the answers
     * lib/http makes itself (framing errors, limits, no route), so that a
     * server whose clients expect a header on every answer (the metadata
     * server's Metadata-Flavor) gets it there too. Borrowed; may be NULL. */
    const char *const *error_headers;
};

/* Creates a server. Caller frees with wisp_http_server_free(). Never NULL. */
struct wisp_http_server *wisp_http_server_new(const struct wisp_http_config *cfg);
void wisp_http_server_free(struct wisp_http_server *srv);

/* Adds a route; routes are tried in the order added, first match wins.
 * host_suffix: NULL matches any host; "googleapis.com" matches that host and
 * any "*.googleapis.com". method: NULL for any. prefix: path prefix ("/" for
 * all). Strings are borrowed and must outlive the server. Requests matching
 * no route get 404 with a Google-style error body. */
void wisp_http_route(struct wisp_http_server *srv, const char *host_suffix, const char *method,
                     const char *prefix, wisp_http_handler fn, void *ctx);

/* A listener: a numeric IP address and port (0 picks a free one), plain
 * HTTP or TLS (OpenSSL, ALPN http/1.1) with the certificate chain (leaf
 * first) and key given as PEM text. netns_path, when not NULL, names a
 * network namespace (e.g. /run/netns/X) in which the socket is created; the
 * calling thread returns to its own namespace before listen returns. tag,
 * when not NULL, is copied and shown to handlers as req->listener_tag: one
 * server can so serve several endpoints (one per cluster) on one route
 * table. */
struct wisp_http_listen_spec {
    const char *addr;
    int port;
    const char *cert_pem;
    const char *key_pem;
    const char *netns_path;
    const char *tag;
};

/* Opens a listener, before wisp_http_server_run() or while the server runs
 * (from any thread, a handler included): running workers start accepting on
 * it shortly after this returns, and connections that arrive sooner wait in
 * the kernel's backlog. *port_out gets the bound port and *id_out the
 * listener's id for wisp_http_unlisten(); both may be NULL. */
enum wisp_err wisp_http_listen(struct wisp_http_server *srv,
                               const struct wisp_http_listen_spec *spec, int *port_out,
                               unsigned *id_out);

/* Stops accepting on listener id and closes its sockets. Connections it
 * already accepted are served to their end. Unknown ids are ignored. */
void wisp_http_unlisten(struct wisp_http_server *srv, unsigned id);

/* Serves until wisp_http_server_stop(). Blocks the calling thread; starts
 * cfg.n_threads workers which share the listeners. */
enum wisp_err wisp_http_server_run(struct wisp_http_server *srv);

/* Asks run() to return after in-flight requests finish. Async-signal-safe. */
void wisp_http_server_stop(struct wisp_http_server *srv);

/* WebSocket (RFC 6455), for long-lived two-way sessions such as kubectl
 * exec. wisp_http_ws_check() tells whether req is a valid opening
 * handshake (GET, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version 13, a 16-byte key) offering one of protocols (a
 * NULL-terminated list in the server's order of preference; NULL accepts a
 * request that offers none); *chosen (may be NULL) gets the protocol, or
 * NULL. It answers nothing. wisp_http_ws_accept() replaces
 * wisp_http_respond(): it answers 101 with Sec-WebSocket-Protocol echoing
 * the chosen one and returns the session, or, when the check fails,
 * answers 400 and returns NULL. Framing is wslay's. From then on every call
 * about the session happens on the request's worker thread: on_message
 * gets each whole text or binary message (control frames are handled
 * here), on_drain (may be NULL) runs after queued output was handed to the
 * socket, and on_closed(ctx) runs exactly once when the connection is over
 * for any reason (close handshake done, peer gone, server stopping), after
 * which ws is invalid. Calls from inside the callbacks are allowed. */
struct wisp_http_ws;
struct wisp_http_ws_ops {
    void (*on_message)(struct wisp_http_ws *ws, int binary, const void *data, size_t len,
                       void *ctx);
    void (*on_drain)(struct wisp_http_ws *ws, void *ctx);
    void (*on_closed)(void *ctx);
};

int wisp_http_ws_check(struct wisp_http_req *req, const char *const *protocols,
                       const char **chosen);
struct wisp_http_ws *wisp_http_ws_accept(struct wisp_http_req *req, const char *const *protocols,
                                         const struct wisp_http_ws_ops *ops, void *ctx);
/* The negotiated subprotocol ("" for none). */
const char *wisp_http_ws_protocol(const struct wisp_http_ws *ws);
/* Queues one message (copied): binary or text. Ignored once closing. */
void wisp_http_ws_send(struct wisp_http_ws *ws, int binary, const void *data, size_t len);
/* Output bytes queued and not yet handed to the socket. */
size_t wisp_http_ws_pending(const struct wisp_http_ws *ws);
/* Stops (1) or resumes (0) reading from the peer: back-pressure. */
void wisp_http_ws_pause(struct wisp_http_ws *ws, int paused);
/* Starts the close handshake with code (1000: normal) after the queued
 * messages; the connection ends when the peer answers, or 5 s after that
 * frame went out. */
void wisp_http_ws_close(struct wisp_http_ws *ws, unsigned code);

/* A descriptor (a connected stream socket) served by the same worker loop
 * as a WebSocket session, so a relay needs no thread of its own. The fd is
 * made non-blocking and owned from then on. on_data gets what was read;
 * len 0 means end of file or an error: nothing more will come. on_drain
 * (may be NULL) runs when everything written was handed to the kernel.
 * wisp_http_fd_close() closes it (no callback runs after); the owner must
 * call it, at the latest from the session's on_closed. */
struct wisp_http_fd;
struct wisp_http_fd_ops {
    void (*on_data)(struct wisp_http_fd *f, const void *data, size_t len, void *ctx);
    void (*on_drain)(struct wisp_http_fd *f, void *ctx);
};
struct wisp_http_fd *wisp_http_ws_attach_fd(struct wisp_http_ws *ws, int fd,
                                            const struct wisp_http_fd_ops *ops, void *ctx);
/* Queues data (copied). */
void wisp_http_fd_write(struct wisp_http_fd *f, const void *data, size_t len);
size_t wisp_http_fd_pending(const struct wisp_http_fd *f);
void wisp_http_fd_pause(struct wisp_http_fd *f, int paused);
void wisp_http_fd_close(struct wisp_http_fd *f);

#endif
