/* SPDX-License-Identifier: Apache-2.0 */
/* WebSocket sessions (include/wisp/http.h): the opening handshake checked
 * and answered here, the connection taken over from h2o's HTTP/1 code with
 * h2o_http1_upgrade(), and wslay doing the framing on that socket; plus
 * plain descriptors served by the same worker loop, so that a relay (kubectl
 * exec to a node agent) pumps both sides without a thread. h2o's own
 * websocket glue is not used: it can neither pause reading nor bound what
 * it buffers, and a relay needs both. */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>
#include "http/internal.h"
#include <h2o/http1.h>
#include "wisp/alloc.h"
#include "wisp/log.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_MESSAGE (1u << 20)    /* largest message taken from a peer */
#define WS_OUT_HIGH (256u * 1024)    /* framed bytes buffered before wslay waits */
#define WS_CLOSE_WAIT_MS 5000        /* the peer's answer to our close frame */

/* Bytes for one socket: queued, and the one write h2o has in flight. */
struct outq {
    char *out, *inflight;
    size_t out_len, out_cap, inflight_len;
};

struct wisp_http_ws {
    struct wisp__http_worker *w;
    h2o_socket_t *sock; /* NULL until the 101 is written, and once over */
    wslay_event_context_ptr wslay;
    struct wisp_http_ws_ops ops;
    void *ctx;
    char proto[64];
    struct outq q; /* framed by wslay */
    h2o_timeout_entry_t close_entry; /* on w->stream_tick while closing */
    h2o_timeout_entry_t end_entry;   /* on the context's zero timeout once over */
    uint64_t close_deadline;
    uint16_t close_code;
    int paused, closing, close_queued, ending, pumping, again;
};

struct wisp_http_fd {
    h2o_socket_t *sock;
    struct wisp_http_fd_ops ops;
    void *ctx;
    struct outq q;
    int paused, eof, busy, closed;
};

static void outq_add(struct outq *q, const void *data, size_t n)
{
    if (q->out_len + n > q->out_cap) {
        q->out_cap = (q->out_len + n) * 2;
        q->out = wisp_xrealloc(q->out, q->out_cap);
    }
    memcpy(q->out + q->out_len, data, n);
    q->out_len += n;
}

/* Hands what is queued to the socket unless a write is in flight (h2o
 * allows one); the buffer stays ours until cb runs outq_done(). */
static void outq_flush(struct outq *q, h2o_socket_t *sock, h2o_socket_cb cb)
{
    if (!q->out_len || h2o_socket_is_writing(sock))
        return;
    h2o_iovec_t buf = h2o_iovec_init(q->out, q->out_len);
    q->inflight = q->out;
    q->inflight_len = q->out_len;
    q->out = NULL;
    q->out_len = q->out_cap = 0;
    h2o_socket_write(sock, &buf, 1, cb);
}

static void outq_done(struct outq *q)
{
    WISP_FREE(q->inflight);
    q->inflight_len = 0;
}

static void outq_free(struct outq *q)
{
    free(q->out);
    free(q->inflight);
}

static size_t outq_pending(const struct outq *q)
{
    return q->out_len + q->inflight_len;
}

/* ---- the handshake ----------------------------------------------------------- */

static int token_eq(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

/* 1 when the comma-separated list [p, p+n) holds want (case-sensitive:
 * subprotocol names are tokens compared exactly). */
static int list_has(const char *p, size_t n, const char *want, int icase)
{
    const char *end = p + n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - s);
        if (len && (icase ? token_eq(s, len, want)
                          : (strlen(want) == len && memcmp(s, want, len) == 0)))
            return 1;
    }
    return 0;
}

static int offered(h2o_req_t *h, const char *proto)
{
    for (size_t i = 0; i < h->headers.size; i++) {
        const h2o_header_t *e = h->headers.entries + i;
        if (token_eq(e->name->base, e->name->len, "sec-websocket-protocol") &&
            list_has(e->value.base, e->value.len, proto, 0))
            return 1;
    }
    return 0;
}

static const h2o_header_t *header(h2o_req_t *h, const char *name)
{
    for (size_t i = 0; i < h->headers.size; i++) {
        const h2o_header_t *e = h->headers.entries + i;
        if (token_eq(e->name->base, e->name->len, name))
            return e;
    }
    return NULL;
}

int wisp_http_ws_check(struct wisp_http_req *req, const char *const *protocols,
                       const char **chosen)
{
    struct wisp__http_state *st = req->impl;
    h2o_req_t *h = st->h2o;
    const h2o_header_t *key = header(h, "sec-websocket-key"),
                       *ver = header(h, "sec-websocket-version");
    unsigned char raw[20];

    if (chosen)
        *chosen = NULL;
    /* h2o sets upgrade only when Connection also names "upgrade". */
    if (strcmp(req->method, "GET") != 0 || !h->upgrade.base ||
        !list_has(h->upgrade.base, h->upgrade.len, "websocket", 1) || !ver ||
        !token_eq(ver->value.base, ver->value.len, "13") || !key || key->value.len != 24)
        return 0;
    /* the key is 16 random bytes in base64: 24 characters ending in "==" */
    if (EVP_DecodeBlock(raw, (const unsigned char *)key->value.base, 24) != 18 ||
        key->value.base[22] != '=' || key->value.base[23] != '=')
        return 0;
    if (!protocols)
        return 1;
    for (size_t i = 0; protocols[i]; i++) {
        if (offered(h, protocols[i])) {
            if (chosen)
                *chosen = protocols[i];
            return 1;
        }
    }
    return 0;
}

/* ---- the session ------------------------------------------------------------- */

static void ws_pump(struct wisp_http_ws *ws);

/* The connection is over. The end itself (socket closed, the owner told,
 * the session freed) runs from h2o's zero timeout, never inside a call
 * from the owner or inside wslay, so nobody's state vanishes under them. */
static void ws_fail(struct wisp_http_ws *ws)
{
    if (ws->ending)
        return;
    ws->ending = 1;
    if (ws->sock)
        h2o_socket_read_stop(ws->sock);
    if (h2o_timeout_is_linked(&ws->close_entry))
        h2o_timeout_unlink(&ws->close_entry);
    h2o_timeout_link(ws->w->loop, &ws->w->ctx.zero_timeout, &ws->end_entry);
}

static void ws_end(h2o_timeout_entry_t *entry)
{
    struct wisp_http_ws *ws = H2O_STRUCT_FROM_MEMBER(struct wisp_http_ws, end_entry, entry);
    if (h2o_timeout_is_linked(&ws->close_entry))
        h2o_timeout_unlink(&ws->close_entry);
    if (ws->sock)
        h2o_socket_close(ws->sock);
    ws->ops.on_closed(ws->ctx);
    wslay_event_context_free(ws->wslay);
    outq_free(&ws->q);
    free(ws);
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    struct wisp_http_ws *ws = user;
    h2o_buffer_t *in = ws->sock->input;
    (void)flags;
    if (ws->paused || ws->ending || in->size == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > in->size)
        len = in->size;
    memcpy(buf, in->bytes, len);
    h2o_buffer_consume(&ws->sock->input, len);
    return (ssize_t)len;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                          int flags, void *user)
{
    struct wisp_http_ws *ws = user;
    (void)flags;
    if (ws->q.out_len >= WS_OUT_HIGH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    outq_add(&ws->q, data, len);
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    struct wisp_http_ws *ws = user;
    (void)ctx;
    if (ws->ending || (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME))
        return;
    ws->ops.on_message(ws, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length,
                       ws->ctx);
}

static void ws_on_read(h2o_socket_t *sock, const char *err)
{
    struct wisp_http_ws *ws = sock->data;
    if (err)
        ws_fail(ws);
    else
        ws_pump(ws);
}

static void ws_on_write(h2o_socket_t *sock, const char *err)
{
    struct wisp_http_ws *ws = sock->data;
    outq_done(&ws->q);
    if (err) {
        ws_fail(ws);
        return;
    }
    ws_pump(ws);
    if (!ws->ending && ws->ops.on_drain)
        ws->ops.on_drain(ws, ws->ctx);
}

static void ws_flush(struct wisp_http_ws *ws)
{
    if (ws->sock)
        outq_flush(&ws->q, ws->sock, ws_on_write);
}

/* Moves everything that can move: input through wslay (and the owner's
 * on_message), wslay's output to the socket; then decides whether to read
 * and whether the session is over. A call made while one runs (from
 * on_message) only asks it for another round. */
static void ws_pump(struct wisp_http_ws *ws)
{
    if (ws->pumping) {
        ws->again = 1;
        return;
    }
    if (!ws->sock || ws->ending)
        return;
    ws->pumping = 1;
    do {
        ws->again = 0;
        if (!ws->paused && ws->sock->input->size && wslay_event_want_read(ws->wslay) &&
            wslay_event_recv(ws->wslay) != 0)
            goto fail;
        if (wslay_event_want_write(ws->wslay) && ws->q.out_len < WS_OUT_HIGH &&
            wslay_event_send(ws->wslay) != 0)
            goto fail;
        /* wslay sends control frames ahead of queued messages, and nothing
         * after a close: ours is queued once every message is framed. */
        if (ws->closing && !ws->close_queued &&
            wslay_event_get_queued_msg_count(ws->wslay) == 0) {
            ws->close_queued = 1;
            wslay_event_queue_close(ws->wslay, ws->close_code, NULL, 0);
            ws->close_deadline = h2o_now(ws->w->loop) + WS_CLOSE_WAIT_MS;
            h2o_timeout_link(ws->w->loop, &ws->w->stream_tick, &ws->close_entry);
            ws->again = 1;
        }
        ws_flush(ws);
    } while (ws->again && !ws->ending);
    if (!ws->ending) {
        int want_read = wslay_event_want_read(ws->wslay);
        if (want_read && !ws->paused) {
            h2o_socket_read_start(ws->sock, ws_on_read);
        } else {
            h2o_socket_read_stop(ws->sock);
            if (!want_read && !wslay_event_want_write(ws->wslay) && !ws->q.out_len &&
                !h2o_socket_is_writing(ws->sock))
                goto fail; /* both close frames are through: done */
        }
    }
    ws->pumping = 0;
    return;
fail:
    ws->pumping = 0;
    ws_fail(ws);
}

static void ws_on_upgraded(void *user, h2o_socket_t *sock, size_t reqsize)
{
    struct wisp_http_ws *ws = user;
    if (!sock) {
        ws_fail(ws);
        return;
    }
    ws->sock = sock;
    sock->data = ws;
    /* what follows the request head is already WebSocket data */
    h2o_buffer_consume(&sock->input, reqsize);
    ws_pump(ws);
}

static void ws_close_tick(h2o_timeout_entry_t *entry)
{
    struct wisp_http_ws *ws = H2O_STRUCT_FROM_MEMBER(struct wisp_http_ws, close_entry, entry);
    if (h2o_now(ws->w->loop) >= ws->close_deadline)
        ws_fail(ws);
    else
        h2o_timeout_link(ws->w->loop, &ws->w->stream_tick, &ws->close_entry);
}

struct wisp_http_ws *wisp_http_ws_accept(struct wisp_http_req *req, const char *const *protocols,
                                         const struct wisp_http_ws_ops *ops, void *ctx)
{
    struct wisp__http_state *st = req->impl;
    h2o_req_t *h = st->h2o;
    const char *chosen = NULL;
    unsigned char src[60], sha[SHA_DIGEST_LENGTH];
    char accept[32];

    if (st->responded) {
        wisp_log_err("http", "websocket accepted after a response to %s", req->path);
        return NULL;
    }
    if (!wisp_http_ws_check(req, protocols, &chosen)) {
        static const char body[] = "{\"error\":{\"code\":400,\"message\":\"A WebSocket upgrade "
                                   "is required.\",\"status\":\"INVALID_ARGUMENT\"}}";
        wisp_http_respond(req, 400, "application/json; charset=UTF-8", body, sizeof(body) - 1);
        return NULL;
    }
    const h2o_header_t *key = header(h, "sec-websocket-key");
    memcpy(src, key->value.base, 24);
    memcpy(src + 24, WS_GUID, 36);
    SHA1(src, sizeof(src), sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, sizeof(sha));

    struct wisp_http_ws *ws = wisp_xcalloc(1, sizeof(*ws));
    struct wslay_event_callbacks cb = {.recv_callback = ws_recv_cb,
                                       .send_callback = ws_send_cb,
                                       .on_msg_recv_callback = ws_msg_cb};
    ws->w = H2O_STRUCT_FROM_MEMBER(struct wisp__http_worker, ctx, h->conn->ctx);
    ws->ops = *ops;
    ws->ctx = ctx;
    ws->close_entry.cb = ws_close_tick;
    ws->end_entry.cb = ws_end;
    snprintf(ws->proto, sizeof(ws->proto), "%s", chosen ? chosen : "");
    if (wslay_event_context_server_init(&ws->wslay, &cb, ws) != 0) {
        wisp_log_err("http", "out of memory");
        abort(); /* as every allocation in wisp does */
    }
    wslay_event_config_set_max_recv_msg_length(ws->wslay, WS_MAX_MESSAGE);

    st->responded = 1;
    h->res.status = 101;
    h->res.reason = "Switching Protocols";
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL,
                          h2o_strdup(&h->pool, accept, strlen(accept)).base, strlen(accept));
    if (chosen)
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("sec-websocket-protocol"), 0,
                              NULL, h2o_strdup(&h->pool, chosen, strlen(chosen)).base,
                              strlen(chosen));
    h2o_http1_upgrade(h, NULL, 0, ws_on_upgraded, ws);
    return ws;
}

const char *wisp_http_ws_protocol(const struct wisp_http_ws *ws)
{
    return ws->proto;
}

void wisp_http_ws_send(struct wisp_http_ws *ws, int binary, const void *data, size_t len)
{
    struct wslay_event_msg m = {.opcode = binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
                                .msg = data, .msg_length = len};
    if (ws->ending || ws->closing)
        return;
    if (wslay_event_queue_msg(ws->wslay, &m) != 0)
        return; /* closing already (the peer's close frame arrived) */
    ws_pump(ws);
}

size_t wisp_http_ws_pending(const struct wisp_http_ws *ws)
{
    return wslay_event_get_queued_msg_length(ws->wslay) + outq_pending(&ws->q);
}

void wisp_http_ws_pause(struct wisp_http_ws *ws, int paused)
{
    if (ws->ending || ws->paused == !!paused)
        return;
    ws->paused = !!paused;
    ws_pump(ws);
}

void wisp_http_ws_close(struct wisp_http_ws *ws, unsigned code)
{
    if (ws->ending || ws->closing)
        return;
    ws->closing = 1;
    ws->close_code = (uint16_t)code;
    ws_pump(ws);
}

/* ---- descriptors on the worker loop -------------------------------------------- */

static void fd_free(struct wisp_http_fd *f)
{
    if (f->sock)
        h2o_socket_close(f->sock);
    outq_free(&f->q);
    free(f);
}

static void fd_on_read(h2o_socket_t *sock, const char *err)
{
    struct wisp_http_fd *f = sock->data;
    f->busy++;
    if (err) {
        f->eof = 1;
        h2o_socket_read_stop(sock);
        f->ops.on_data(f, NULL, 0, f->ctx);
    } else if (sock->input->size) {
        size_t n = sock->input->size;
        f->ops.on_data(f, sock->input->bytes, n, f->ctx);
        /* closing waits for this callback, so the buffer is still there */
        h2o_buffer_consume(&sock->input, n);
    }
    f->busy--;
    if (f->closed && !f->busy)
        fd_free(f);
}

static void fd_on_write(h2o_socket_t *sock, const char *err)
{
    struct wisp_http_fd *f = sock->data;
    outq_done(&f->q);
    if (err) {
        /* the peer is gone: drop what is queued; the read side reports it */
        f->q.out_len = 0;
        return;
    }
    outq_flush(&f->q, f->sock, fd_on_write);
    if (!outq_pending(&f->q) && f->ops.on_drain) {
        f->busy++;
        f->ops.on_drain(f, f->ctx);
        f->busy--;
        if (f->closed && !f->busy)
            fd_free(f);
    }
}

struct wisp_http_fd *wisp_http_ws_attach_fd(struct wisp_http_ws *ws, int fd,
                                            const struct wisp_http_fd_ops *ops, void *ctx)
{
    struct wisp_http_fd *f = wisp_xcalloc(1, sizeof(*f));
    f->ops = *ops;
    f->ctx = ctx;
    f->sock = h2o_evloop_socket_create(ws->w->loop, fd, 0);
    f->sock->data = f;
    h2o_socket_read_start(f->sock, fd_on_read);
    return f;
}

void wisp_http_fd_write(struct wisp_http_fd *f, const void *data, size_t len)
{
    if (f->closed || !len)
        return;
    outq_add(&f->q, data, len);
    outq_flush(&f->q, f->sock, fd_on_write);
}

size_t wisp_http_fd_pending(const struct wisp_http_fd *f)
{
    return outq_pending(&f->q);
}

void wisp_http_fd_pause(struct wisp_http_fd *f, int paused)
{
    if (f->closed || f->eof || f->paused == !!paused)
        return;
    f->paused = !!paused;
    if (paused)
        h2o_socket_read_stop(f->sock);
    else
        h2o_socket_read_start(f->sock, fd_on_read);
}

void wisp_http_fd_close(struct wisp_http_fd *f)
{
    if (!f || f->closed)
        return;
    f->closed = 1;
    if (!f->busy)
        fd_free(f);
}
