/* SPDX-License-Identifier: Apache-2.0 */
/* Request dispatch and the per-request API: the one h2o handler that checks
 * each request against wisp's limits, builds a struct wisp_http_req and
 * walks the route table, plus header/query lookup and the response path.
 * Everything a request allocates lives in h2o's request pool, so nothing
 * here is freed by hand. It does not parse bodies. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "http/internal.h"
#include "wisp/log.h"

static struct wisp__http_state *state_of(struct wisp_http_req *req)
{
    return req->impl;
}

static char *pool_strndup(h2o_req_t *h, const char *s, size_t n)
{
    char *p = h2o_mem_alloc_pool(&h->pool, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* ---- response ------------------------------------------------------------ */

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

static const char *reason_phrase(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].status == status)
            return reasons[i].reason;
    }
    return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

void wisp_http_respond(struct wisp_http_req *req, int status, const char *content_type,
                       const char *body, size_t len)
{
    struct wisp__http_state *st = state_of(req);
    h2o_req_t *h = st->h2o;

    if (st->responded) {
        wisp_log_err("http", "second response to %s %s dropped", req->method, req->path);
        return;
    }
    st->responded = 1;
    /* 1xx would desynchronise HTTP/1.1 framing (101 belongs to the upgrade
     * path, 100 to h2o), and codes outside 100-599 cannot be sent. */
    if (status < 200 || status > 599) {
        wisp_log_err("http", "invalid status %d for %s %s, sending 500", status, req->method,
                     req->path);
        status = 500;
        content_type = NULL;
        body = NULL;
        len = 0;
    }
    h->res.status = status;
    h->res.reason = reason_phrase(status);
    if (content_type && has_crlf(content_type)) {
        wisp_log_err("http", "Content-Type with CR/LF refused");
    } else if (content_type) {
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    }
    if (!body)
        body = "";
    /* 204 and 304 carry neither a body nor Content-Length (RFC 9110 §8.6). */
    if (status == 204 || status == 304) {
        h->res.content_length = SIZE_MAX;
        len = 0;
    } else {
        h->res.content_length = len;
    }
    /* h2o_send_inline copies the body into the request pool and hands
     * headers and body to one writev (or one TLS write). */
    h2o_send_inline(h, body, len);
}

/* Protocol-level errors raised here, before any handler: a Google-style
 * envelope, and the connection closed when the framing is in doubt. */
static void send_error(struct wisp__http_state *st, int code, const char *status, const char *msg,
                       int close_conn)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":%d,\"message\":\"%s\",\"status\":\"%s\"}}", code, msg,
                     status);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    if (close_conn)
        st->h2o->http1_is_persistent = 0;
    const char *const *eh = st->srv->cfg.error_headers;
    for (size_t i = 0; eh && eh[i] && eh[i + 1]; i += 2)
        wisp_http_add_header(&st->pub, eh[i], eh[i + 1]);
    wisp_http_respond(&st->pub, code, "application/json; charset=UTF-8", body, (size_t)n);
}

void wisp_http_add_header(struct wisp_http_req *req, const char *name, const char *value)
{
    struct wisp__http_state *st = state_of(req);
    h2o_req_t *h = st->h2o;
    size_t name_len = strlen(name);

    if (st->responded) {
        wisp_log_err("http", "header added after the response was sent");
        return;
    }
    if (name_len == 0 || has_crlf(name) || has_crlf(value)) {
        wisp_log_err("http", "response header with CR/LF refused");
        return;
    }
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == ':') {
            wisp_log_err("http", "response header with an invalid name refused");
            return;
        }
    }
    char *lc = pool_strndup(h, name, name_len);
    for (size_t i = 0; i < name_len; i++)
        lc[i] = lower(lc[i]);
    /* lib/http owns message framing: a second Content-Length or a
     * Transfer-Encoding from a handler would corrupt the response. */
    if (strcmp(lc, "content-length") == 0 || strcmp(lc, "transfer-encoding") == 0 ||
        strcmp(lc, "connection") == 0) {
        wisp_log_err("http", "response header %s is set by lib/http; refused", lc);
        return;
    }
    h2o_add_header_by_str(&h->pool, &h->res.headers, lc, name_len, 1,
                          pool_strndup(h, name, name_len), pool_strndup(h, value, strlen(value)),
                          strlen(value));
}

/* ---- request API --------------------------------------------------------- */

void *wisp_http_alloc(struct wisp_http_req *req, size_t n)
{
    return h2o_mem_alloc_pool(&state_of(req)->h2o->pool, n);
}

char *wisp_http_strdup(struct wisp_http_req *req, const char *s)
{
    return pool_strndup(state_of(req)->h2o, s, strlen(s));
}

static int name_eq(const char *a, const char *lc, size_t len)
{
    if (strlen(a) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (lower(a[i]) != lc[i])
            return 0;
    }
    return 1;
}

const char *wisp_http_header(struct wisp_http_req *req, const char *name)
{
    struct wisp__http_state *st = state_of(req);
    h2o_req_t *h = st->h2o;

    /* h2o lowercases every request header name. */
    for (size_t i = 0; i < h->headers.size; i++) {
        const h2o_header_t *e = h->headers.entries + i;
        if (name_eq(name, e->name->base, e->name->len))
            return pool_strndup(h, e->value.base, e->value.len);
    }
    /* h2o takes these five out of the header list while parsing; the head
     * scan kept where they were. */
    static const struct {
        const char *name;
        size_t off;
    } special[] = {
        {"host", offsetof(struct wisp__http_head, host)},
        {"content-length", offsetof(struct wisp__http_head, content_length)},
        {"transfer-encoding", offsetof(struct wisp__http_head, transfer_encoding)},
        {"expect", offsetof(struct wisp__http_head, expect)},
        {"upgrade", offsetof(struct wisp__http_head, upgrade)},
    };
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        if (name_eq(name, special[i].name, strlen(special[i].name))) {
            const struct wisp__http_span *v =
                (const void *)((const char *)&st->head + special[i].off);
            return v->p ? pool_strndup(h, v->p, v->len) : NULL;
        }
    }
    return NULL;
}

size_t wisp_http_header_count(struct wisp_http_req *req, const char *name)
{
    h2o_req_t *h = state_of(req)->h2o;
    size_t n = 0;

    for (size_t i = 0; i < h->headers.size; i++) {
        const h2o_header_t *e = h->headers.entries + i;
        if (name_eq(name, e->name->base, e->name->len))
            n++;
    }
    /* The five fields h2o takes out of the list occur at most once here:
     * the head scan refuses a second Host, Content-Length or
     * Transfer-Encoding and keeps the first Expect and Upgrade. */
    if (n == 0 && wisp_http_header(req, name))
        n = 1;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded src[0..n) into dst (n + 1
 * bytes). Returns the decoded length, or -1 for a malformed %-escape or a
 * decoded NUL, which callers treat as absent. */
static long form_decode(const char *src, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return (long)o;
}

const char *wisp_http_query(struct wisp_http_req *req, const char *key)
{
    h2o_req_t *h = state_of(req)->h2o;
    const char *q = req->query;
    size_t key_len = strlen(key);

    while (*q) {
        const char *amp = strchr(q, '&');
        size_t pair_len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', pair_len);
        size_t k_len = eq ? (size_t)(eq - q) : pair_len;

        char *k = h2o_mem_alloc_pool(&h->pool, k_len + 1);
        long kd = form_decode(q, k_len, k);
        if (kd >= 0 && (size_t)kd == key_len && memcmp(k, key, key_len) == 0) {
            const char *v = eq ? eq + 1 : q + pair_len;
            size_t v_len = eq ? pair_len - k_len - 1 : 0;
            char *out = h2o_mem_alloc_pool(&h->pool, v_len + 1);
            return form_decode(v, v_len, out) >= 0 ? out : NULL;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return NULL;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Host routing compares plain names: lowercase, port stripped. */
static const char *host_of(h2o_req_t *h, const struct wisp__http_span *host)
{
    if (!host->p)
        return "";
    size_t n = host->len;
    if (n && host->p[0] == '[') {
        const char *rb = memchr(host->p, ']', n);
        if (rb)
            n = (size_t)(rb - host->p) + 1;
    } else {
        const char *colon = memchr(host->p, ':', n);
        if (colon)
            n = (size_t)(colon - host->p);
    }
    char *s = pool_strndup(h, host->p, n);
    for (size_t i = 0; i < n; i++)
        s[i] = lower(s[i]);
    return s;
}

/* a.b.c.d into out (at least 16 bytes). inet_ntop formats IPv4 through
 * sprintf, which showed in the metadata server's profile: every request
 * there needs its caller's address as text (bench/metadata). */
static void ipv4_text(const unsigned char *a, char *out)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

static const char *peer_of(h2o_req_t *h)
{
    struct sockaddr_storage ss;
    char *out = h2o_mem_alloc_pool(&h->pool, INET6_ADDRSTRLEN);
    socklen_t sl = h->conn->callbacks->get_peername(h->conn, (struct sockaddr *)&ss);

    out[0] = '\0';
    if (sl == 0)
        return out;
    if (ss.ss_family == AF_INET) {
        ipv4_text((const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr, out);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; identity
         * by source address must see the same text either way. */
        if (IN6_IS_ADDR_V4MAPPED(a6))
            ipv4_text(&a6->s6_addr[12], out);
        else
            inet_ntop(AF_INET6, a6, out, INET6_ADDRSTRLEN);
    }
    return out;
}

static int host_matches(const struct wisp__http_route *r, const char *host, size_t host_len)
{
    if (!r->host_suffix)
        return 1;
    size_t n = r->host_suffix_len;
    if (host_len < n || strncasecmp(host + host_len - n, r->host_suffix, n) != 0)
        return 0;
    return host_len == n || host[host_len - n - 1] == '.';
}

static const struct wisp__http_route *route_for(const struct wisp_http_server *srv,
                                                const struct wisp_http_req *req)
{
    size_t host_len = strlen(req->host);
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct wisp__http_route *r = &srv->routes[i];
        if (!host_matches(r, req->host, host_len))
            continue;
        if (r->method && strcmp(r->method, req->method) != 0)
            continue;
        if (strncmp(req->path, r->prefix, r->prefix_len) != 0)
            continue;
        return r;
    }
    return NULL;
}

int wisp__http_on_req(h2o_handler_t *self, h2o_req_t *h)
{
    struct wisp_http_server *srv = ((struct wisp__http_glue *)self)->srv;
    struct wisp__http_worker *w =
        H2O_STRUCT_FROM_MEMBER(struct wisp__http_worker, ctx, h->conn->ctx);
    h2o_socket_t *sock = h->conn->callbacks->get_socket(h->conn);
    const struct wisp_http_limits *lim = &srv->cfg.limits;
    struct wisp__http_state *st = h2o_mem_alloc_pool(&h->pool, sizeof(*st));
    struct wisp_http_req *req = &st->pub;

    memset(st, 0, sizeof(*st));
    st->h2o = h;
    st->srv = srv;
    req->impl = st;
    req->thread_data = w->thread_data;
    req->tls = sock->ssl != NULL;
    req->listener_tag =
        H2O_STRUCT_FROM_MEMBER(struct wisp__http_listener, hosts, h->conn->hosts)->tag;
    req->method = pool_strndup(h, h->input.method.base, h->input.method.len);
    req->path = "";
    req->query = "";
    req->host = "";
    req->body = "";
    req->peer_ip = peer_of(h);

    /* Until the request completes, h2o keeps its head at the start of the
     * socket's (decrypted) input buffer: reread it strictly. */
    switch (wisp__http_head_check(sock->input->bytes, sock->input->size, lim->max_header_bytes,
                                  lim->max_headers, &st->head)) {
    case WISP__HEAD_OK:
        break;
    case WISP__HEAD_BAD:
        wisp_log_info("http", "400 from %s: %s", req->peer_ip, st->head.why);
        send_error(st, 400, "INVALID_ARGUMENT", "Malformed request.", 1);
        return 0;
    case WISP__HEAD_URI_TOO_LONG:
        wisp_log_info("http", "414 from %s: %s", req->peer_ip, st->head.why);
        send_error(st, 414, "INVALID_ARGUMENT", "Request line too long.", 1);
        return 0;
    case WISP__HEAD_TOO_BIG:
    case WISP__HEAD_TOO_MANY:
        wisp_log_info("http", "431 from %s: %s", req->peer_ip, st->head.why);
        send_error(st, 431, "INVALID_ARGUMENT", "Request header fields too large.", 1);
        return 0;
    }
    /* h2o's own cap is max_body + 1, so that a chunked body of exactly
     * max_body passes its check; the exact limit is enforced here. */
    if (h->entity.len > lim->max_body) {
        send_error(st, 413, "INVALID_ARGUMENT", "Request body too large.", 1);
        return 0;
    }

    const char *target = h->input.path.base;
    size_t target_len = h->input.path.len;
    size_t path_len = h->input.query_at != SIZE_MAX ? h->input.query_at : target_len;
    if (target_len == 0 || target[0] != '/') {
        /* Absolute-form and asterisk-form are for proxies and OPTIONS *. */
        send_error(st, 400, "INVALID_ARGUMENT", "Malformed request target.", 1);
        return 0;
    }
    req->path = pool_strndup(h, target, path_len);
    if (path_len < target_len)
        req->query = pool_strndup(h, target + path_len + 1, target_len - path_len - 1);
    req->host = host_of(h, &st->head.host);
    if (h->entity.base && h->entity.len) {
        /* Copied so that it is NUL-terminated like every other field. */
        req->body = pool_strndup(h, h->entity.base, h->entity.len);
        req->body_len = h->entity.len;
    }

    const struct wisp__http_route *r = route_for(srv, req);
    if (!r) {
        send_error(st, 404, "NOT_FOUND", "The requested URL was not found on this server.", 0);
        return 0;
    }
    r->fn(req, r->ctx);
    if (!st->responded) {
        wisp_log_err("http", "handler for %s %s returned without responding", req->method,
                     req->path);
        send_error(st, 500, "INTERNAL", "Internal error.", 1);
    }
    return 0;
}
