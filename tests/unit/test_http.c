/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/http: the strict head reader on its own, then a real server
 * on 127.0.0.1 (port 0) in a thread, driven with raw sockets (for the
 * malformed and smuggling inputs of SECURITY.md §B) and with libcurl (for
 * TLS with a pinned throwaway certificate). No timing assertions: socket
 * receive timeouts only keep a broken build from hanging. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/head.h"
#include "wisp/alloc.h"
#include "wisp/http.h"

/* ---- the head reader, without sockets ------------------------------------ */

static enum wisp__http_verdict check(const char *head, size_t max_bytes, size_t max_headers)
{
    struct wisp__http_head h;
    return wisp__http_head_check(head, strlen(head), max_bytes, max_headers, &h);
}

static void test_head_verdicts(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        enum wisp__http_verdict want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", WISP__HEAD_OK},
        {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", WISP__HEAD_OK},
        {"GET / HTTP/1.0\r\n\r\n", WISP__HEAD_OK},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", WISP__HEAD_OK},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", WISP__HEAD_OK},
        {"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX: \t v \t\r\n\r\n", WISP__HEAD_OK},
        /* framing: RFC 9112 §6.3 */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
         WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", WISP__HEAD_BAD},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
         WISP__HEAD_BAD},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", WISP__HEAD_BAD},
        /* syntax */
        {"GET / HTTP/1.1\nHost: a\n\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", WISP__HEAD_BAD},
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", WISP__HEAD_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\n", WISP__HEAD_BAD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum wisp__http_verdict got = check(cases[i].head, 16384, 64);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d want %d", i, got, cases[i].want);
    }
    /* NUL inside a value (strlen would stop there, so pass the length). */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    struct wisp__http_head h;
    assert_int_equal(wisp__http_head_check(nul, sizeof(nul) - 1, 16384, 64, &h), WISP__HEAD_BAD);
}

static void test_head_limits_and_fields(void **state)
{
    (void)state;
    const char *ok = "GET /x HTTP/1.1\r\nHost: Example.COM:8080\r\nA: 1\r\nB: 2\r\n\r\n";
    struct wisp__http_head h;
    assert_int_equal(wisp__http_head_check(ok, strlen(ok), 16384, 64, &h), WISP__HEAD_OK);
    assert_int_equal(h.len, strlen(ok));
    assert_int_equal(h.n_headers, 3);
    assert_int_equal(h.minor_version, 1);
    assert_int_equal(h.host.len, strlen("Example.COM:8080"));
    assert_memory_equal(h.host.p, "Example.COM:8080", h.host.len);
    assert_int_equal(check(ok, 16384, 2), WISP__HEAD_TOO_MANY);
    assert_int_equal(check(ok, 16384, 3), WISP__HEAD_OK);
    assert_int_equal(check(ok, 20, 64), WISP__HEAD_TOO_BIG);
    assert_int_equal(check(ok, 10, 64), WISP__HEAD_URI_TOO_LONG);
    assert_int_equal(check(ok, strlen(ok), 64), WISP__HEAD_OK);
}

/* ---- the test server ------------------------------------------------------ */

#define MAX_HEADER_BYTES 4096
#define MAX_HEADERS 20
#define MAX_BODY 1024
#define N_THREADS 2

static atomic_int threads_started, threads_stopped;

static void *on_thread_start(unsigned idx, void *user)
{
    (void)user;
    atomic_fetch_add(&threads_started, 1);
    return wisp_xasprintf("worker-%u", idx);
}

static void on_thread_stop(void *thread_data, void *user)
{
    (void)user;
    free(thread_data);
    atomic_fetch_add(&threads_stopped, 1);
}

static const char *nz(const char *s)
{
    return s ? s : "(null)";
}

static void respond_text(struct wisp_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_text(struct wisp_http_req *req, int status, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    wisp_http_respond(req, status, "text/plain", buf, (size_t)n);
}

static void h_info(struct wisp_http_req *req, void *ctx)
{
    respond_text(req, 200, "route=%s host=%s method=%s path=%s query=%s tls=%d peer=%s tag=%s",
                 (const char *)ctx, req->host, req->method, req->path, req->query, req->tls,
                 req->peer_ip, nz(req->listener_tag));
}

static void h_query(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    respond_text(req, 200, "x=[%s] y=[%s] key=[%s] flag=[%s] bad=[%s] mf=[%s] host=[%s] none=[%s]",
                 nz(wisp_http_query(req, "x")), nz(wisp_http_query(req, "y")),
                 nz(wisp_http_query(req, "key")), nz(wisp_http_query(req, "flag")),
                 nz(wisp_http_query(req, "bad")), nz(wisp_http_header(req, "METADATA-flavor")),
                 nz(wisp_http_header(req, "Host")), nz(wisp_http_header(req, "x-none")));
}

static void h_echo(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    wisp_http_respond(req, 200, "application/octet-stream", req->body, req->body_len);
}

static void h_crlf(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    wisp_http_add_header(req, "X-Bad", "a\r\nSet-Cookie: evil=1");
    wisp_http_add_header(req, "X-Bad-Lf", "a\nSet-Cookie: evil=2");
    wisp_http_add_header(req, "X-Evil\r\nSet-Cookie", "evil=3");
    wisp_http_add_header(req, "Content-Length", "99");
    wisp_http_add_header(req, "X-Good", "ok");
    wisp_http_respond(req, 200, "text/plain", "crlf", 4);
}

static void h_td(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    respond_text(req, 200, "%s", (const char *)req->thread_data);
}

static void h_noresp(struct wisp_http_req *req, void *ctx)
{
    (void)req;
    (void)ctx;
}

struct fixture {
    struct wisp_http_server *srv;
    pthread_t thread;
    enum wisp_err run_err;
    int port;
    int tls_port;
    char dir[64];
    char cert[128];
    char key[128];
    char pin[128]; /* "sha256//<base64 of the SPKI hash>" */
    char *cert_pem, *key_pem;
};

/* The whole of a small file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = wisp_xcalloc(1, 16384);
    assert_non_null(fp);
    size_t n = fread(buf, 1, 16383, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static enum wisp_err listen_at(struct wisp_http_server *srv, int port, const char *cert_pem,
                               const char *key_pem, const char *netns, const char *tag,
                               int *port_out, unsigned *id_out)
{
    struct wisp_http_listen_spec spec = {.addr = "127.0.0.1", .port = port,
                                         .cert_pem = cert_pem, .key_pem = key_pem,
                                         .netns_path = netns, .tag = tag};
    return wisp_http_listen(srv, &spec, port_out, id_out);
}

static void *run_thread(void *arg)
{
    struct fixture *f = arg;
    f->run_err = wisp_http_server_run(f->srv);
    return NULL;
}

/* A throwaway self-signed P-256 certificate for 127.0.0.1, written as PEM
 * files; also returns its public-key pin in curl's format. */
static void make_cert(struct fixture *f)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    unsigned char *der = NULL, md[32];
    unsigned int md_len = 0;
    int der_len;
    FILE *fp;

    assert_non_null(pkey);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);

    snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
    fp = fopen(f->cert, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, x);
    fclose(fp);
    fp = fopen(f->key, "w");
    assert_non_null(fp);
    PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    f->cert_pem = slurp(f->cert);
    f->key_pem = slurp(f->key);

    der_len = i2d_PUBKEY(pkey, &der);
    assert_true(der_len > 0);
    EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    strcpy(f->pin, "sha256//");
    EVP_EncodeBlock((unsigned char *)f->pin + 8, md, (int)md_len);

    X509_free(x);
    EVP_PKEY_free(pkey);
}

/* A stream that writes "start", then "tick N" on each of 3 ticks, then
 * ends; the count of closed streams shows closed() runs once each. */
static atomic_int streams_closed;

struct stream_ctx {
    int ticks;
    int limit;
};

static void st_tick(struct wisp_http_stream *s, void *ctx)
{
    struct stream_ctx *c = ctx;
    char line[32];
    int n = snprintf(line, sizeof(line), "tick %d\n", ++c->ticks);
    wisp_http_stream_write(s, line, (size_t)n);
    if (c->limit && c->ticks == c->limit)
        wisp_http_stream_end(s);
}

static void st_closed(void *ctx)
{
    free(ctx);
    atomic_fetch_add(&streams_closed, 1);
}

static void h_stream(struct wisp_http_req *req, void *ctx)
{
    struct stream_ctx *c = wisp_xcalloc(1, sizeof(*c));
    (void)ctx;
    c->limit = strcmp(req->query, "forever") == 0 ? 0 : 3;
    struct wisp_http_stream *s =
        wisp_http_stream_start(req, 200, "text/plain", st_tick, st_closed, c);
    assert_non_null(s);
    assert_ptr_equal(wisp_http_stream_thread_data(s), req->thread_data);
    wisp_http_stream_write(s, "start\n", 6);
}

/* ---- WebSocket handlers ---------------------------------------------------------- */

/* /ws: echoes every message; the text message "bye" starts the close
 * handshake with 1000. /ws-relay: a socketpair end is attached to the loop;
 * messages go into it, what the test writes to the other end (relay_peer)
 * comes back as binary messages, and its EOF closes the session. */
static atomic_int ws_closed;
static atomic_int relay_peer = -1;
static const char *const ws_protocols[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};

static void ws_echo_msg(struct wisp_http_ws *ws, int binary, const void *data, size_t len,
                        void *ctx)
{
    (void)ctx;
    if (!binary && len == 3 && memcmp(data, "bye", 3) == 0) {
        wisp_http_ws_close(ws, 1000);
        return;
    }
    wisp_http_ws_send(ws, binary, data, len);
}

static void ws_echo_closed(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&ws_closed, 1);
}

static void h_ws(struct wisp_http_req *req, void *ctx)
{
    static const struct wisp_http_ws_ops ops = {.on_message = ws_echo_msg,
                                                .on_closed = ws_echo_closed};
    (void)ctx;
    if (!wisp_http_ws_check(req, ws_protocols, NULL)) {
        respond_text(req, 200, "not a websocket");
        return;
    }
    struct wisp_http_ws *ws = wisp_http_ws_accept(req, ws_protocols, &ops, NULL);
    assert_non_null(ws);
    assert_string_equal(wisp_http_ws_protocol(ws), "v5.channel.k8s.io");
}

struct relay {
    struct wisp_http_ws *ws;
    struct wisp_http_fd *fd;
};

static void relay_msg(struct wisp_http_ws *ws, int binary, const void *data, size_t len,
                      void *ctx)
{
    struct relay *r = ctx;
    (void)ws;
    (void)binary;
    wisp_http_fd_write(r->fd, data, len);
}

static void relay_closed(void *ctx)
{
    struct relay *r = ctx;
    wisp_http_fd_close(r->fd);
    free(r);
    atomic_fetch_add(&ws_closed, 1);
}

static void relay_data(struct wisp_http_fd *f, const void *data, size_t len, void *ctx)
{
    struct relay *r = ctx;
    (void)f;
    if (len == 0)
        wisp_http_ws_close(r->ws, 1000);
    else
        wisp_http_ws_send(r->ws, 1, data, len);
}

static void h_ws_relay(struct wisp_http_req *req, void *ctx)
{
    static const struct wisp_http_ws_ops ops = {.on_message = relay_msg,
                                                .on_closed = relay_closed};
    static const struct wisp_http_fd_ops fops = {.on_data = relay_data};
    struct relay *r = wisp_xcalloc(1, sizeof(*r));
    int sp[2];
    (void)ctx;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    r->ws = wisp_http_ws_accept(req, NULL, &ops, r);
    if (!r->ws) {
        close(sp[0]);
        close(sp[1]);
        free(r);
        return;
    }
    r->fd = wisp_http_ws_attach_fd(r->ws, sp[0], &fops, r);
    atomic_store(&relay_peer, sp[1]);
}

static void add_routes(struct wisp_http_server *srv)
{
    wisp_http_route(srv, NULL, NULL, "/ws-relay", h_ws_relay, NULL);
    wisp_http_route(srv, NULL, NULL, "/ws", h_ws, NULL);
    wisp_http_route(srv, NULL, "GET", "/stream", h_stream, NULL);
    wisp_http_route(srv, "googleapis.com", NULL, "/storage/", h_info, "A");
    wisp_http_route(srv, "metadata.google.internal", "GET", "/computeMetadata/", h_query, NULL);
    wisp_http_route(srv, NULL, "POST", "/echo", h_echo, NULL);
    wisp_http_route(srv, NULL, NULL, "/crlf", h_crlf, NULL);
    wisp_http_route(srv, NULL, "GET", "/td", h_td, NULL);
    wisp_http_route(srv, NULL, NULL, "/first", h_info, "first");
    wisp_http_route(srv, NULL, NULL, "/first/deeper", h_info, "deeper");
    wisp_http_route(srv, NULL, NULL, "/noresp", h_noresp, NULL);
    wisp_http_route(srv, "Example.COM", NULL, "/case", h_info, "case");
    wisp_http_route(srv, NULL, NULL, "/any", h_info, "any");
}

static struct wisp_http_server *new_server(void)
{
    struct wisp_http_config cfg = {
        .limits = {.max_header_bytes = MAX_HEADER_BYTES,
                   .max_headers = MAX_HEADERS,
                   .max_body = MAX_BODY},
        .n_threads = N_THREADS,
        .stream_tick_ms = 20,
        .on_thread_start = on_thread_start,
        .on_thread_stop = on_thread_stop,
    };
    struct wisp_http_server *srv = wisp_http_server_new(&cfg);
    add_routes(srv);
    return srv;
}

static int group_setup(void **state)
{
    struct fixture *f = wisp_xcalloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/wisp-test-http-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    make_cert(f);
    atomic_store(&threads_started, 0);
    atomic_store(&threads_stopped, 0);
    f->srv = new_server();
    if (listen_at(f->srv, 0, NULL, NULL, NULL, NULL, &f->port, NULL) != WISP_OK)
        return -1;
    if (listen_at(f->srv, 0, f->cert_pem, f->key_pem, NULL, NULL, &f->tls_port, NULL) != WISP_OK)
        return -1;
    if (pthread_create(&f->thread, NULL, run_thread, f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    wisp_http_server_stop(f->srv);
    pthread_join(f->thread, NULL);
    wisp_http_server_free(f->srv);
    int ok = f->run_err == WISP_OK && atomic_load(&threads_started) == N_THREADS &&
             atomic_load(&threads_stopped) == N_THREADS;
    unlink(f->cert);
    unlink(f->key);
    free(f->cert_pem);
    free(f->key_pem);
    rmdir(f->dir);
    free(f);
    return ok ? 0 : -1;
}

/* ---- raw socket client ----------------------------------------------------- */

struct conn {
    int fd;
    char buf[1 << 16];
    size_t len;
};

struct resp {
    int status;
    char head[8192];
    char body[4096];
    size_t body_len;
};

static void conn_open(struct conn *c, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 30};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void conn_send(struct conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* the server may close early on purpose */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads more bytes; 0 on EOF or reset. */
static ssize_t conn_fill(struct conn *c)
{
    ssize_t r;
    do {
        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ECONNRESET)
        return 0;
    assert_true(r >= 0); /* a timeout here means the server hung */
    c->len += (size_t)r;
    return r;
}

/* Reads one response with a Content-Length body. Returns 0 when the
 * connection closed before a complete response. */
static int conn_read(struct conn *c, struct resp *r)
{
    char *end;
    memset(r, 0, sizeof(*r));
    for (;;) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end)
            break;
        if (conn_fill(c) == 0)
            return 0;
    }
    size_t head_len = (size_t)(end + 4 - c->buf);
    assert_true(head_len < sizeof(r->head));
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    const char *cl = strcasestr(r->head, "\r\ncontent-length:");
    size_t body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
    assert_true(body_len < sizeof(r->body));
    while (c->len < head_len + body_len) {
        if (conn_fill(c) == 0)
            return 0;
    }
    memcpy(r->body, c->buf + head_len, body_len);
    r->body_len = body_len;
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
    c->len -= head_len + body_len;
    return 1;
}

/* True when the server closed the connection with nothing more to say. */
static int conn_closed(struct conn *c)
{
    if (c->len)
        return 0;
    return conn_fill(c) == 0;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
}

/* One request on a fresh connection: returns the status, and whether the
 * server then closed the connection. */
static int raw(int port, const char *req, size_t len, struct resp *r, int *closed)
{
    struct conn *c = wisp_xmalloc(sizeof(*c));
    conn_open(c, port);
    conn_send(c, req, len);
    int got = conn_read(c, r);
    if (closed)
        *closed = got ? conn_closed(c) : 1;
    conn_close(c);
    free(c);
    return got ? r->status : -1;
}

static int raws(int port, const char *req, struct resp *r, int *closed)
{
    return raw(port, req, strlen(req), r, closed);
}

/* ---- routing and the request API ------------------------------------------ */

static void test_route_by_host_suffix(void **state)
{
    struct fixture *f = *state;
    struct resp r;

    assert_int_equal(raws(f->port,
                          "GET /storage/v1/b HTTP/1.1\r\nHost: storage.googleapis.com\r\n\r\n", &r,
                          NULL),
                     200);
    assert_non_null(
        strstr(r.body, "route=A host=storage.googleapis.com method=GET path=/storage/v1/b"));
    /* exact host, port stripped, case folded */
    assert_int_equal(
        raws(f->port, "GET /storage/x HTTP/1.1\r\nHost: GoogleAPIs.COM:443\r\n\r\n", &r, NULL),
        200);
    assert_non_null(strstr(r.body, "route=A host=googleapis.com "));
    /* a suffix that is not at a label boundary does not match */
    assert_int_equal(
        raws(f->port, "GET /storage/x HTTP/1.1\r\nHost: evilgoogleapis.com\r\n\r\n", &r, NULL),
        404);
    /* the route's own suffix is matched case-insensitively */
    assert_int_equal(raws(f->port, "GET /case HTTP/1.1\r\nHost: www.example.com\r\n\r\n", &r, NULL),
                     200);
    assert_non_null(strstr(r.body, "route=case host=www.example.com"));
    /* IPv6 literal host keeps its brackets, loses its port */
    assert_int_equal(raws(f->port, "GET /any HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &r, NULL), 200);
    assert_non_null(strstr(r.body, "host=[::1] "));
    /* HTTP/1.0 without Host: host is "" */
    assert_int_equal(raws(f->port, "GET /any HTTP/1.0\r\n\r\n", &r, NULL), 200);
    assert_non_null(strstr(r.body, "host= method=GET"));
    assert_non_null(strstr(r.body, "peer=127.0.0.1"));
}

/* The caller's address as text, whatever the width of its octets: the
 * metadata server identifies pods by it. Every 127/8 address is local, so
 * the client binds each source before connecting. */
static void test_peer_address(void **state)
{
    struct fixture *f = *state;
    static const char *const from[] = {"127.0.0.1", "127.10.200.3", "127.255.99.100",
                                       "127.1.0.250"};
    for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
        struct conn *c = wisp_xmalloc(sizeof(*c));
        struct resp r;
        char want[64];
        assert_int_equal(inet_pton(AF_INET, from[i], &src.sin_addr), 1);
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->len = 0;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c->fd >= 0);
        assert_int_equal(bind(c->fd, (struct sockaddr *)&src, sizeof(src)), 0);
        assert_int_equal(connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
        conn_send(c, "GET /any HTTP/1.1\r\nHost: a\r\n\r\n", 30);
        assert_true(conn_read(c, &r));
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), " peer=%s tag=", from[i]);
        assert_non_null(strstr(r.body, want));
        conn_close(c);
        free(c);
    }
}

static void test_route_method_and_prefix(void **state)
{
    struct fixture *f = *state;
    struct resp r;

    /* method mismatch falls through every route */
    assert_int_equal(raws(f->port,
                          "POST /computeMetadata/v1/ HTTP/1.1\r\nHost: "
                          "metadata.google.internal\r\nContent-Length: 0\r\n\r\n",
                          &r, NULL),
                     404);
    /* first match wins */
    assert_int_equal(raws(f->port, "GET /first/deeper HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 200);
    assert_non_null(strstr(r.body, "route=first "));
    /* the path excludes the query */
    assert_int_equal(raws(f->port, "GET /first?a=b HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 200);
    assert_non_null(strstr(r.body, "path=/first query=a=b "));
}

static void test_not_found_json(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;
    static const char req[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";

    conn_open(c, f->port);
    /* twice on one connection: a 404 keeps the connection */
    for (int round = 0; round < 2; round++) {
        conn_send(c, req, sizeof(req) - 1);
        assert_int_equal(conn_read(c, &r), 1);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.body, "{\"error\":{\"code\":404,\"message\":\"The requested URL "
                                    "was not found on this server.\",\"status\":\"NOT_FOUND\"}}");
        assert_non_null(strcasestr(r.head, "\r\ncontent-type: application/json"));
        assert_non_null(strcasestr(r.head, "\r\nconnection: keep-alive\r\n"));
    }
    conn_close(c);
    free(c);
}

static void test_query_and_headers(void **state)
{
    struct fixture *f = *state;
    struct resp r;

    assert_int_equal(
        raws(f->port,
             "GET /computeMetadata/v1/?x=a%20b+c&y=%00z&k%65y=v%26w&flag&bad=%zz HTTP/1.1\r\n"
             "Host: metadata.google.internal\r\nMetadata-Flavor: Google\r\n\r\n",
             &r, NULL),
        200);
    assert_string_equal(r.body, "x=[a b c] y=[(null)] key=[v&w] flag=[] bad=[(null)] mf=[Google] "
                                "host=[metadata.google.internal] none=[(null)]");
}

static void test_body_echo_and_keepalive(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;
    char req[2048], body[MAX_BODY];

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)(i * 7); /* includes NUL bytes */
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", sizeof(body));
    conn_open(c, f->port);
    /* exactly max_body, twice on one connection */
    for (int round = 0; round < 2; round++) {
        conn_send(c, req, (size_t)n);
        conn_send(c, body, sizeof(body));
        assert_int_equal(conn_read(c, &r), 1);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, sizeof(body));
        assert_memory_equal(r.body, body, sizeof(body));
    }
    /* chunked, exactly max_body */
    n = snprintf(req, sizeof(req),
                 "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                 sizeof(body));
    conn_send(c, req, (size_t)n);
    conn_send(c, body, sizeof(body));
    conn_send(c, "\r\n0\r\n\r\n", 7);
    assert_int_equal(conn_read(c, &r), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof(body));
    assert_memory_equal(r.body, body, sizeof(body));
    conn_close(c);
    free(c);
}

static void test_thread_data_and_noresp(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    int closed = 0;

    assert_int_equal(raws(f->port, "GET /td HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 200);
    assert_true(strcmp(r.body, "worker-0") == 0 || strcmp(r.body, "worker-1") == 0);
    /* a handler that forgets to respond yields a 500, not a hang */
    assert_int_equal(raws(f->port, "GET /noresp HTTP/1.1\r\nHost: x\r\n\r\n", &r, &closed), 500);
    assert_true(closed);
}

static void test_crlf_in_response_header_refused(void **state)
{
    struct fixture *f = *state;
    struct resp r;

    assert_int_equal(raws(f->port, "GET /crlf HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 200);
    assert_null(strcasestr(r.head, "set-cookie"));
    assert_null(strcasestr(r.head, "x-bad"));
    assert_null(strcasestr(r.head, "x-evil"));
    assert_non_null(strstr(r.head, "\r\nX-Good: ok\r\n"));
    assert_null(strstr(r.head, "99"));
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "crlf", 4);
}

/* ---- limits ------------------------------------------------------------------ */

static void test_oversize_header(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    int closed = 0;
    char *req = wisp_xmalloc(MAX_HEADER_BYTES + 256);
    char pad[MAX_HEADER_BYTES + 1];

    memset(pad, 'a', MAX_HEADER_BYTES);
    pad[MAX_HEADER_BYTES] = '\0';
    snprintf(req, MAX_HEADER_BYTES + 256, "GET /any HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
    assert_int_equal(raws(f->port, req, &r, &closed), 431);
    assert_non_null(strstr(r.body, "\"code\":431"));
    assert_true(closed);
    /* a request line over the limit on its own is 414 */
    snprintf(req, MAX_HEADER_BYTES + 256, "GET /any?%s HTTP/1.1\r\nHost: x\r\n\r\n", pad);
    assert_int_equal(raws(f->port, req, &r, &closed), 414);
    assert_true(closed);
    free(req);
}

static void test_too_many_headers(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    int closed = 0;
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET /any HTTP/1.1\r\nHost: x\r\n");

    for (int i = 0; i < MAX_HEADERS; i++) /* Host + MAX_HEADERS = one too many */
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    assert_int_equal(raws(f->port, req, &r, &closed), 431);
    assert_true(closed);

    /* Past h2o's own array of 100 fields, h2o answers 400 itself. */
    n = (size_t)snprintf(req, sizeof(req), "GET /any HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    assert_int_equal(raws(f->port, req, &r, &closed), 400);
    assert_true(closed);
}

static void test_oversize_body(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    int closed = 0;
    char req[4096];

    /* Content-Length past max_body + 1 is refused by h2o before reading. */
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
             MAX_BODY + 2);
    assert_int_equal(raws(f->port, req, &r, &closed), 413);
    assert_true(closed);
    /* max_body + 1 passes h2o and is refused by wisp. */
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", MAX_BODY + 1);
    memset(req + n, 'b', MAX_BODY + 1);
    assert_int_equal(raw(f->port, req, (size_t)n + MAX_BODY + 1, &r, &closed), 413);
    assert_non_null(strstr(r.body, "\"code\":413"));
    assert_true(closed);
    /* chunked past the limit */
    n = snprintf(req, sizeof(req),
                 "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                 MAX_BODY + 10);
    memset(req + n, 'c', MAX_BODY + 10);
    n += MAX_BODY + 10;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n0\r\n\r\n");
    assert_int_equal(raw(f->port, req, (size_t)n, &r, &closed), 413);
    assert_true(closed);
}

/* ---- request smuggling (SECURITY.md §B14) ---------------------------------- */

static void expect_400_close(int port, const char *req)
{
    struct resp r;
    int closed = 0;
    int status = raws(port, req, &r, &closed);
    if (status != 400 || !closed)
        fail_msg("status %d closed %d for: %s", status, closed, req);
}

static void test_framing_rejected(void **state)
{
    struct fixture *f = *state;
    static const char *const reqs[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
        "5\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nabcde",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\n",
        "GET /any HTTP/1.1\nHost: x\n\n",
        "GET /any HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
        "GET /any HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET /any HTTP/1.1\r\n\r\n",
        "GET http://x/any HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        expect_400_close(f->port, reqs[i]);
}

static void test_smuggled_request_not_served(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;
    /* h2o alone would read 5 body bytes by the first Content-Length and then
     * serve the hidden GET as a second request. */
    static const char req[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
        "helloGET /td HTTP/1.1\r\nHost: x\r\n\r\n";

    conn_open(c, f->port);
    conn_send(c, req, sizeof(req) - 1);
    assert_int_equal(conn_read(c, &r), 1);
    assert_int_equal(r.status, 400);
    assert_true(conn_closed(c));
    conn_close(c);
    free(c);
}

/* ---- TLS --------------------------------------------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *user)
{
    struct wisp_buf_lite {
        char data[4096];
        size_t len;
    } *b = user;
    size_t add = size * n;
    if (b->len + add >= sizeof(b->data))
        return 0;
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static CURLcode curl_tls_get(struct fixture *f, int port, const char *pin, long *status,
                             long *version, char *body, size_t body_cap)
{
    struct {
        char data[4096];
        size_t len;
    } b = {.len = 0};
    char url[128];
    CURL *h = curl_easy_init();
    CURLcode rc;

    assert_non_null(h);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/any?tls", port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, f->cert);
    curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Offer h2: the server must still choose http/1.1 through ALPN. */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, version);
    curl_easy_cleanup(h);
    snprintf(body, body_cap, "%s", b.data);
    return rc;
}

static void test_tls_listener(void **state)
{
    struct fixture *f = *state;
    long status = 0, version = 0;
    char body[4096];

    assert_int_equal(curl_tls_get(f, f->tls_port, f->pin, &status, &version, body, sizeof(body)), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(version, CURL_HTTP_VERSION_1_1);
    assert_non_null(strstr(body, "route=any host=127.0.0.1 method=GET path=/any query=tls tls=1"));

    /* The pin is really checked: another key's hash fails. */
    const char *wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(curl_tls_get(f, f->tls_port, wrong, &status, &version, body, sizeof(body)),
                     CURLE_SSL_PINNEDPUBKEYNOTMATCH);

    /* Plain HTTP on the TLS port is not served. */
    struct resp r;
    assert_int_equal(raws(f->tls_port, "GET /any HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), -1);
}

/* A listener opened while the server runs is served at once, with its tag;
 * after unlisten nobody accepts on it. */
static void test_listen_while_running(void **state)
{
    struct fixture *f = *state;
    long status = 0, version = 0;
    char body[4096];
    int port = 0;
    unsigned id = 0;

    assert_int_equal(listen_at(f->srv, 0, f->cert_pem, f->key_pem, NULL, "cluster-a", &port, &id),
                     WISP_OK);
    assert_true(port > 0 && id > 0);
    for (int i = 0; i < 4; i++) { /* every worker serves it */
        assert_int_equal(curl_tls_get(f, port, f->pin, &status, &version, body, sizeof(body)),
                         CURLE_OK);
        assert_int_equal(status, 200);
        assert_non_null(strstr(body, "tls=1"));
        assert_non_null(strstr(body, "tag=cluster-a"));
    }
    /* The listeners opened before run() keep no tag. */
    assert_int_equal(curl_tls_get(f, f->tls_port, f->pin, &status, &version, body, sizeof(body)),
                     CURLE_OK);
    assert_non_null(strstr(body, "tag=(null)"));

    wisp_http_unlisten(f->srv, id);
    wisp_http_unlisten(f->srv, id);    /* twice is harmless */
    wisp_http_unlisten(f->srv, 99999); /* so is an unknown id */
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        refused = connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno == ECONNREFUSED;
        close(fd);
        if (!refused)
            usleep(10000);
    }
    assert_true(refused);
    /* The others still serve. */
    assert_int_equal(curl_tls_get(f, f->tls_port, f->pin, &status, &version, body, sizeof(body)),
                     CURLE_OK);
}

/* A streamed body arrives whole and in order, chunked; a client that goes
 * away ends its stream (closed() runs) without disturbing the server. */
static void test_stream(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    int before = atomic_load(&streams_closed);
    const char *rq = "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    /* Read to EOF: the raw bytes hold the head and the chunks in order. */
    conn_open(c, f->port);
    conn_send(c, rq, strlen(rq));
    while (conn_fill(c) > 0)
        ;
    c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
    assert_non_null(strstr(c->buf, "HTTP/1.1 200"));
    assert_non_null(strcasestr(c->buf, "transfer-encoding: chunked"));
    const char *t0 = strstr(c->buf, "start\n"), *t1 = strstr(c->buf, "tick 1\n"),
               *t3 = strstr(c->buf, "tick 3\n");
    assert_true(t0 && t1 && t3 && t0 < t1 && t1 < t3);
    assert_null(strstr(c->buf, "tick 4"));
    assert_non_null(strstr(t3, "\r\n0\r\n\r\n")); /* the last chunk */
    conn_close(c);
    for (int i = 0; i < 200 && atomic_load(&streams_closed) == before; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&streams_closed), before + 1);

    /* A client that disconnects mid-stream: the next write fails and the
     * stream closes. */
    rq = "GET /stream?forever HTTP/1.1\r\nHost: x\r\n\r\n";
    conn_open(c, f->port);
    conn_send(c, rq, strlen(rq));
    assert_true(conn_fill(c) > 0);
    conn_close(c);
    free(c);
    for (int i = 0; i < 400 && atomic_load(&streams_closed) == before + 1; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&streams_closed), before + 2);
}

/* ---- WebSocket -------------------------------------------------------------------- */

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455's example: accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo= */

static int ws_open(struct conn *c, int port, const char *path, const char *protocols,
                   struct resp *r)
{
    char rq[512];
    snprintf(rq, sizeof(rq),
             "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " WS_KEY "\r\n%s%s%s\r\n",
             path, protocols ? "Sec-WebSocket-Protocol: " : "", protocols ? protocols : "",
             protocols ? "\r\n" : "");
    conn_open(c, port);
    conn_send(c, rq, strlen(rq));
    assert_int_equal(conn_read(c, r), 1);
    return r->status;
}

/* A client frame: FIN, opcode, masked as RFC 6455 requires of clients. */
static void ws_frame(struct conn *c, int opcode, const void *data, size_t len)
{
    unsigned char f[16 + 70000];
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = 0;
    assert_true(len < 70000);
    f[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[n++] = (unsigned char)(0x80 | len);
    } else {
        f[n++] = 0x80 | 126;
        f[n++] = (unsigned char)(len >> 8);
        f[n++] = (unsigned char)len;
    }
    memcpy(f + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        f[n + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    conn_send(c, (const char *)f, n + len);
}

/* Reads one unmasked server frame; returns its opcode, or -1 on EOF. */
static int ws_read(struct conn *c, char *out, size_t cap, size_t *len)
{
    for (;;) {
        const unsigned char *b = (const unsigned char *)c->buf;
        if (c->len >= 2) {
            size_t hl = 2, pl = b[1] & 0x7f;
            assert_int_equal(b[1] & 0x80, 0); /* servers never mask */
            if (pl == 126) {
                hl = 4;
                pl = c->len >= 4 ? ((size_t)b[2] << 8 | b[3]) : 0;
            }
            assert_true(pl != 127);
            if (c->len >= hl && c->len >= hl + pl) {
                int op = b[0] & 0x0f;
                assert_true(pl <= cap);
                memcpy(out, c->buf + hl, pl);
                *len = pl;
                memmove(c->buf, c->buf + hl + pl, c->len - hl - pl);
                c->len -= hl + pl;
                return op;
            }
        }
        if (conn_fill(c) == 0)
            return -1;
    }
}

static void wait_ws_closed(int want)
{
    for (int i = 0; i < 400 && atomic_load(&ws_closed) < want; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&ws_closed), want);
}

/* The handshake as kubectl sends it: 101 with the accept key and the
 * subprotocol echoed (kubectl falls back to SPDY without it); a binary
 * frame echoed; a ping answered; our close answered and the socket closed;
 * the session's on_closed runs once. */
static void test_ws_echo_and_close(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;
    char buf[70000];
    size_t len;
    int before = atomic_load(&ws_closed);

    assert_int_equal(ws_open(c, f->port, "/ws", "v5.channel.k8s.io", &r), 101);
    assert_non_null(strcasestr(r.head, "\r\nupgrade: websocket\r\n"));
    assert_non_null(strcasestr(r.head, "\r\nconnection: upgrade\r\n"));
    assert_non_null(strcasestr(r.head, "\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strcasestr(r.head, "\r\nsec-websocket-protocol: v5.channel.k8s.io\r\n"));
    assert_null(strcasestr(r.head, "content-length"));

    ws_frame(c, 2, "\x00hi\n", 4);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 2);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "\x00hi\n", 4);

    /* a message past 125 and 65535 is framed with the longer lengths */
    memset(buf, 'x', 60000);
    ws_frame(c, 2, buf, 60000);
    memset(buf, 0, 60000);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 2);
    assert_int_equal(len, 60000);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(buf[59999], 'x');

    ws_frame(c, 9, "p", 1); /* ping */
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 10);
    assert_int_equal(len, 1);

    ws_frame(c, 8, "\x03\xe8", 2); /* close 1000 */
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 8);
    assert_true(len >= 2);
    assert_int_equal(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 1000);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), -1); /* then EOF */
    conn_close(c);
    wait_ws_closed(before + 1);

    /* the server starts the close: its frame comes after the queued ones */
    assert_int_equal(ws_open(c, f->port, "/ws", "v4.channel.k8s.io, v5.channel.k8s.io", &r),
                     101);
    assert_non_null(strcasestr(r.head, "\r\nsec-websocket-protocol: v5.channel.k8s.io\r\n"));
    /* 2.4 MB of echoes are still queued when "bye" arrives: every one
     * must go out before the close frame (wslay would send it first) */
    memset(buf, 'y', 60000);
    for (int i = 0; i < 40; i++)
        ws_frame(c, 2, buf, 60000);
    ws_frame(c, 1, "one", 3);
    ws_frame(c, 1, "bye", 3);
    for (int i = 0; i < 40; i++) {
        buf[0] = 0;
        assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 2);
        assert_int_equal(len, 60000);
        assert_int_equal(buf[0], 'y');
    }
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 1);
    assert_memory_equal(buf, "one", 3);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 8);
    assert_int_equal(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 1000);
    ws_frame(c, 8, "\x03\xe8", 2);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), -1);
    conn_close(c);
    wait_ws_closed(before + 2);

    /* a client that just vanishes ends the session too */
    assert_int_equal(ws_open(c, f->port, "/ws", "v5.channel.k8s.io", &r), 101);
    conn_close(c);
    wait_ws_closed(before + 3);
    free(c);
}

/* Not an upgrade, or no acceptable subprotocol: an ordinary answer, and
 * the connection stays an HTTP one. */
static void test_ws_refused(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;

    assert_int_equal(raws(f->port, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 200);
    assert_string_equal(r.body, "not a websocket");
    assert_int_equal(ws_open(c, f->port, "/ws", "v3.channel.k8s.io", &r), 200);
    conn_close(c);
    assert_int_equal(ws_open(c, f->port, "/ws", NULL, &r), 200);
    conn_close(c);
    /* a bad key, and a wrong version */
    assert_int_equal(raws(f->port,
                          "GET /ws-relay HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: short\r\n\r\n",
                          &r, NULL),
                     400);
    assert_int_equal(raws(f->port,
                          "GET /ws-relay HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
                          "Sec-WebSocket-Key: " WS_KEY "\r\n\r\n",
                          &r, NULL),
                     400);
    /* keep-alive survives a plain request to a WebSocket route */
    conn_open(c, f->port);
    conn_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 58);
    assert_int_equal(conn_read(c, &r), 1);
    assert_int_equal(conn_read(c, &r), 1);
    assert_string_equal(r.body, "not a websocket");
    conn_close(c);
    free(c);
}

/* A descriptor on the worker loop: messages reach it, what it yields comes
 * back as messages, and its EOF closes the session with 1000. */
static void test_ws_relay_fd(void **state)
{
    struct fixture *f = *state;
    struct conn *c = wisp_xmalloc(sizeof(*c));
    struct resp r;
    char buf[70000];
    size_t len;
    int before = atomic_load(&ws_closed), peer;

    atomic_store(&relay_peer, -1);
    assert_int_equal(ws_open(c, f->port, "/ws-relay", NULL, &r), 101);
    assert_null(strcasestr(r.head, "sec-websocket-protocol"));
    for (int i = 0; i < 400 && atomic_load(&relay_peer) < 0; i++)
        usleep(5000);
    peer = atomic_load(&relay_peer);
    assert_true(peer >= 0);
    ws_frame(c, 2, "to the node", 11);
    ssize_t got = 0;
    while (got < 11) {
        ssize_t n = read(peer, buf + got, sizeof(buf) - (size_t)got);
        assert_true(n > 0);
        got += n;
    }
    assert_memory_equal(buf, "to the node", 11);
    assert_int_equal(write(peer, "from the node", 13), 13);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 2);
    assert_int_equal(len, 13);
    assert_memory_equal(buf, "from the node", 13);
    close(peer); /* EOF: the server closes with 1000 */
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), 8);
    assert_int_equal(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 1000);
    ws_frame(c, 8, "\x03\xe8", 2);
    assert_int_equal(ws_read(c, buf, sizeof(buf), &len), -1);
    conn_close(c);
    wait_ws_closed(before + 1);
    free(c);
}

/* ---- server lifecycle ---------------------------------------------------------- */

static void test_stop_with_idle_connections(void **state)
{
    (void)state;
    struct fixture f2 = {0};
    struct conn *idle = wisp_xmalloc(sizeof(*idle));
    struct conn *silent = wisp_xmalloc(sizeof(*silent));
    struct resp r;
    static const char req[] = "GET /any HTTP/1.1\r\nHost: x\r\n\r\n";

    f2.srv = wisp_http_server_new(NULL);
    wisp_http_route(f2.srv, NULL, NULL, "/", h_info, "any");
    assert_int_equal(listen_at(f2.srv, 0, NULL, NULL, NULL, NULL, &f2.port, NULL), WISP_OK);
    assert_int_equal(pthread_create(&f2.thread, NULL, run_thread, &f2), 0);

    conn_open(idle, f2.port);
    conn_send(idle, req, sizeof(req) - 1);
    assert_int_equal(conn_read(idle, &r), 1);
    assert_int_equal(r.status, 200);
    conn_open(silent, f2.port);

    /* stop() must return run() although both connections stay open. */
    wisp_http_server_stop(f2.srv);
    pthread_join(f2.thread, NULL);
    assert_int_equal(f2.run_err, WISP_OK);
    assert_true(conn_closed(idle));
    conn_close(idle);
    conn_close(silent);
    wisp_http_server_free(f2.srv);
    free(idle);
    free(silent);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

static void test_stop_before_run_and_errors(void **state)
{
    (void)state;
    int fds_before = count_fds();
    struct wisp_http_server *srv = wisp_http_server_new(NULL);
    int port = 0;

    /* no listener yet */
    assert_int_equal(wisp_http_server_run(srv), WISP_EINVAL);
    wisp_http_server_free(srv);

    srv = wisp_http_server_new(NULL);
    struct wisp_http_listen_spec bad_addr = {.addr = "not-an-ip"};
    assert_int_equal(wisp_http_listen(srv, &bad_addr, &port, NULL), WISP_EINVAL);
    assert_int_equal(listen_at(srv, 0, "not a pem", NULL, NULL, NULL, &port, NULL), WISP_EINVAL);
    assert_int_equal(listen_at(srv, 0, "not a pem", "nor this", NULL, NULL, &port, NULL),
                     WISP_EINVAL);
    assert_int_equal(listen_at(srv, 0, NULL, NULL, "/nonexistent/netns", NULL, &port, NULL),
                     WISP_EIO);
    assert_int_equal(listen_at(srv, 0, NULL, NULL, NULL, NULL, &port, NULL), WISP_OK);
    assert_true(port > 0);
    /* The port is taken: a second bind of it fails, SO_REUSEPORT or not. */
    int port2 = 0;
    assert_int_equal(listen_at(srv, port, NULL, NULL, NULL, NULL, &port2, NULL), WISP_EIO);
    wisp_http_server_stop(srv);
    assert_int_equal(wisp_http_server_run(srv), WISP_OK);
    assert_int_equal(wisp_http_server_run(srv), WISP_EINVAL); /* runs once */
    wisp_http_server_free(srv);
    /* every socket, eventfd, pipe and epoll fd is closed again */
    assert_int_equal(count_fds(), fds_before);
}

/* ---- network namespaces (root only) ------------------------------------------- */

static char netns_name[64];

static int netns_teardown(void **state)
{
    (void)state;
    char cmd[128];
    if (netns_name[0]) {
        snprintf(cmd, sizeof(cmd), "ip netns delete %s 2>/dev/null", netns_name);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not delete netns %s\n", netns_name);
        netns_name[0] = '\0';
    }
    return 0;
}

struct ns_client {
    char path[128];
    int port;
    int status;
    struct resp r;
};

static void *ns_client_main(void *arg)
{
    struct ns_client *nc = arg;
    int fd = open(nc->path, O_RDONLY | O_CLOEXEC);
    nc->status = -2;
    /* Only this thread enters the namespace; it dies with the thread. */
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
        return NULL;
    close(fd);
    struct conn *c = wisp_xmalloc(sizeof(*c));
    conn_open(c, nc->port);
    static const char req[] = "GET /any HTTP/1.1\r\nHost: x\r\n\r\n";
    conn_send(c, req, sizeof(req) - 1);
    nc->status = conn_read(c, &nc->r) ? nc->r.status : -1;
    conn_close(c);
    free(c);
    return NULL;
}

static ino_t my_netns_ino(void)
{
    struct stat st;
    assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
    return st.st_ino;
}

static void test_listen_in_netns(void **state)
{
    (void)state;
    char cmd[256];
    struct fixture f2 = {0};
    struct ns_client *nc = wisp_xcalloc(1, sizeof(*nc));
    pthread_t t;

    if (geteuid() != 0) {
        free(nc);
        skip();
    }
    snprintf(netns_name, sizeof(netns_name), "wisp-test-http-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null && ip -n %s link set lo up", netns_name,
             netns_name);
    if (system(cmd) != 0) {
        free(nc);
        skip(); /* no netns support here; teardown still removes a half-made one */
    }
    snprintf(nc->path, sizeof(nc->path), "/run/netns/%s", netns_name);

    ino_t before = my_netns_ino();
    f2.srv = wisp_http_server_new(NULL);
    wisp_http_route(f2.srv, NULL, NULL, "/", h_info, "ns");
    assert_int_equal(listen_at(f2.srv, 0, NULL, NULL, nc->path, NULL, &f2.port, NULL), WISP_OK);
    assert_true(my_netns_ino() == before); /* back home */
    assert_int_equal(pthread_create(&f2.thread, NULL, run_thread, &f2), 0);

    nc->port = f2.port;
    assert_int_equal(pthread_create(&t, NULL, ns_client_main, nc), 0);
    pthread_join(t, NULL);

    wisp_http_server_stop(f2.srv);
    pthread_join(f2.thread, NULL);
    wisp_http_server_free(f2.srv);
    int status = nc->status;
    char body[sizeof(nc->r.body)];
    memcpy(body, nc->r.body, sizeof(body));
    free(nc);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "route=ns "));
    assert_non_null(strstr(body, "peer=127.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_head_verdicts),
        cmocka_unit_test(test_head_limits_and_fields),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(test_route_by_host_suffix),
        cmocka_unit_test(test_peer_address),
        cmocka_unit_test(test_route_method_and_prefix),
        cmocka_unit_test(test_not_found_json),
        cmocka_unit_test(test_query_and_headers),
        cmocka_unit_test(test_body_echo_and_keepalive),
        cmocka_unit_test(test_thread_data_and_noresp),
        cmocka_unit_test(test_crlf_in_response_header_refused),
        cmocka_unit_test(test_oversize_header),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_oversize_body),
        cmocka_unit_test(test_framing_rejected),
        cmocka_unit_test(test_smuggled_request_not_served),
        cmocka_unit_test(test_tls_listener),
        cmocka_unit_test(test_listen_while_running),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_ws_echo_and_close),
        cmocka_unit_test(test_ws_refused),
        cmocka_unit_test(test_ws_relay_fd),
    };
    const struct CMUnitTest lifecycle[] = {
        cmocka_unit_test(test_stop_with_idle_connections),
        cmocka_unit_test(test_stop_before_run_and_errors),
        cmocka_unit_test_teardown(test_listen_in_netns, netns_teardown),
    };
    int failed = 0;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed += cmocka_run_group_tests_name("http_head", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("http_served", served, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("http_lifecycle", lifecycle, NULL, NULL);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
