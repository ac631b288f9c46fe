/* SPDX-License-Identifier: Apache-2.0 */
/* The cold-path driver of bench/tokens (b): THREADS loops, each over two
 * keep-alive connections (the cluster's Kubernetes API over HTTPS, and
 * wispd on loopback HTTP), run the legs of a pod's first token (legs[]
 * below) back to back for SECONDS, and it prints the throughput and the
 * latency of whole paths and of each leg. Also fetches the owner's access
 * token from a Google key file (the JWT-bearer grant, as gcloud does).
 * Usage: cold token KEY_FILE BASE_URL
 *        cold run BASE_URL OWNER_TOKEN GSA_EMAIL SECONDS THREADS
 *                 KUBE_API KUBE_CA NAMESPACE KSA POOL ISSUER
 * "run" prints tab-separated lines:
 *   path\tTHREADS\tok\terrors\twall_s\tpaths_per_s\tp50_us\tp99_us
 *   leg\tTHREADS\tNAME\tp50_us\tp99_us */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/jose.h"
#include "wisp/url.h"

#define MAX_THREADS 64
#define MAX_BODY (64 * 1024)
#define SCOPE "https://www.googleapis.com/auth/cloud-platform"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A growing array of latencies in µs. */
struct samples {
    double *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, double us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = wisp_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = us;
}

/* What every loop is told: where wispd and the cluster are, and who asks. */
struct target {
    const char *base, *owner_token, *gsa;
    const char *kube_api, *kube_ca, *ns, *ksa, *pool, *issuer;
};

/* The driver must cost little CPU: it shares the two cores with wispd, and
 * every microsecond it spends is one wispd cannot. So it is not libcurl
 * (its poll loop cost about a third of a signature per request here) but a
 * blocking keep-alive connection per server: one write per request, reads
 * until h2o's own response parser (picohttpparser, exported by libh2o)
 * says the answer is whole. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);

struct conn {
    char host[256];
    int port, tls, fd;
    SSL_CTX *ctx; /* TLS only */
    SSL *ssl;
};

/* Parses http[s]://HOST:PORT (the bench's URLs always name the port). */
static int conn_init(struct conn *c, const char *url, const char *ca)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->tls = strncmp(url, "https://", 8) == 0;
    if (sscanf(url + (c->tls ? 8 : 7), "%255[^:]:%d", c->host, &c->port) != 2) {
        fprintf(stderr, "cold: %s: expected SCHEME://HOST:PORT\n", url);
        return -1;
    }
    if (c->tls) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx || SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
            return -1;
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(c->ctx), c->host);
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static int conn_open(struct conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    int one = 1;
    if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1)
        return -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!c->tls)
        return 0;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1) {
        fprintf(stderr, "cold: TLS to %s:%d failed\n", c->host, c->port);
        return -1;
    }
    return 0;
}

static void conn_free(struct conn *c)
{
    conn_close(c);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
}

static int conn_write(struct conn *c, const char *p, size_t n)
{
    while (n) {
        long k = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static long conn_read(struct conn *c, char *p, size_t n)
{
    return c->ssl ? SSL_read(c->ssl, p, (int)n) : recv(c->fd, p, n, 0);
}

/* One loop's connections (wispd, and the cluster's Kubernetes API) and
 * scratch space for an answer. */
struct worker {
    struct conn wispd, kube;
    struct wisp_buf req;
    char *in;
    size_t in_len;
    const struct target *t;
};

/* Sends the request in w->req on c and reads the answer into w->in; its
 * status, or 0 (reported on stderr). The body starts at *body_off. */
static int exchange(struct worker *w, struct conn *c, size_t *body_off)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        /* A connection the server closed is noticed here; open it again. */
        if ((c->fd < 0 && conn_open(c) != 0) || conn_write(c, w->req.data, w->req.len) != 0) {
            conn_close(c);
            continue;
        }
        size_t have = 0, cl = 0, hlen = 0;
        int status = 0;
        for (;;) {
            long k = conn_read(c, w->in + have, MAX_BODY - have);
            if (k <= 0)
                break;
            have += (size_t)k;
            if (!hlen) {
                struct phr_header h[32];
                size_t nh = 32, ml;
                int minor, r;
                const char *msg;
                r = phr_parse_response(w->in, have, &minor, &status, &msg, &ml, h, &nh, 0);
                if (r == -1)
                    break;
                if (r == -2)
                    continue;
                hlen = (size_t)r;
                for (size_t i = 0; i < nh; i++) {
                    if (h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0)
                        cl = strtoul(h[i].value, NULL, 10);
                }
            }
            if (have >= hlen + cl) {
                w->in[hlen + cl] = '\0';
                w->in_len = cl;
                *body_off = hlen;
                return status;
            }
        }
        conn_close(c);
        if (have)
            break; /* a broken answer, not a stale connection */
    }
    fprintf(stderr, "cold: no whole answer from %s:%d\n", c->host, c->port);
    return 0;
}

/* POSTs body (content type ctype) to path on c with bearer (may be NULL)
 * and returns the parsed JSON answer of a 200 or 201, or NULL (reported on
 * stderr). Caller decrefs. */
static json_t *post(struct worker *w, struct conn *c, const char *path, const char *ctype,
                    const char *body, const char *bearer)
{
    size_t off = 0;
    wisp_buf_reset(&w->req);
    wisp_buf_printf(&w->req,
                    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n",
                    path, c->host, c->port, ctype, strlen(body));
    if (bearer)
        wisp_buf_printf(&w->req, "Authorization: Bearer %s\r\n", bearer);
    wisp_buf_printf(&w->req, "\r\n%s", body);
    int code = exchange(w, c, &off);
    json_t *out = code == 200 || code == 201 ? json_loadb(w->in + off, w->in_len, 0, NULL) : NULL;
    if (!out && code)
        fprintf(stderr, "cold: %s: HTTP %d: %.300s\n", path, code, w->in + off);
    return out;
}

/* What one cold path carries from leg to leg. */
struct path_state {
    char *ksa_token;  /* the Kubernetes ServiceAccount token */
    char *federated;  /* STS's federated access token */
    char *access;     /* the GSA's access token: the path's result */
};

static void path_state_free(struct path_state *p)
{
    free(p->ksa_token);
    free(p->federated);
    free(p->access);
    memset(p, 0, sizeof(*p));
}

/* Takes string field key of a JSON answer into *out; 0 on success. */
static int take(json_t *o, const char *key, char **out)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v)
        *out = wisp_xstrdup(v);
    json_decref(o);
    return v ? 0 : 1;
}

/* Leg 1: TokenRequest for the KSA with the pool as audience, as the GKE
 * metadata server asks for it; one RSA-2048 signature by the cluster's
 * issuer key. */
static int leg_token_request(struct worker *w, struct path_state *p)
{
    const struct target *t = w->t;
    char path[512], body[512];
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", t->ns,
             t->ksa);
    snprintf(body, sizeof(body), "{\"spec\":{\"audiences\":[\"%s\"]}}", t->pool);
    json_t *o = post(w, &w->kube, path, "application/json", body, t->owner_token);
    json_t *tok = json_object_get(json_object_get(o, "status"), "token");
    int rc = 1;
    if (json_is_string(tok)) {
        p->ksa_token = wisp_xstrdup(json_string_value(tok));
        rc = 0;
    } else if (o) {
        fprintf(stderr, "cold: TokenRequest: no status.token\n");
    }
    json_decref(o);
    return rc;
}

/* Leg 2: STS exchanges the KSA token for a federated access token; one
 * RS256 verify of the cluster's signature and one seal. */
static int leg_sts(struct worker *w, struct path_state *p)
{
    const struct target *t = w->t;
    char *aud = wisp_xasprintf("identitynamespace:%s:%s", t->pool, t->issuer);
    char *aud_esc = wisp_url_escape(aud);
    char *tok_esc = wisp_url_escape(p->ksa_token);
    char *form = wisp_xasprintf(
        "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
        "&audience=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt"
        "&requested_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Aaccess_token"
        "&scope=https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fcloud-platform&subject_token=%s",
        aud_esc, tok_esc);
    int rc = take(post(w, &w->wispd, "/sts/v1/token", "application/x-www-form-urlencoded", form,
                       NULL),
                  "access_token", &p->federated);
    free(form);
    free(aud_esc);
    free(tok_esc);
    free(aud);
    return rc;
}

/* Leg 3: the GSA's access token, asked for with the federated token (the
 * KSA's principal holds roles/iam.workloadIdentityUser on the GSA). */
static int leg_generate(struct worker *w, struct path_state *p)
{
    char path[512];
    snprintf(path, sizeof(path),
             "/iamcredentials/v1/projects/-/serviceAccounts/%s:generateAccessToken", w->t->gsa);
    return take(post(w, &w->wispd, path, "application/json",
                     "{\"scope\":[\"" SCOPE "\"]}", p->federated),
                "accessToken", &p->access);
}

/* The legs of one cold path, in order; each uses what the one before set. */
static const struct {
    const char *name;
    int (*fn)(struct worker *, struct path_state *);
} legs[] = {
    {"TokenRequest", leg_token_request},
    {"STS token exchange", leg_sts},
    {"generateAccessToken", leg_generate},
};
#define N_LEGS (sizeof(legs) / sizeof(legs[0]))

struct run {
    struct worker w;
    double until_us;
    long ok, errors;
    struct samples path, leg[N_LEGS];
};

static void *loop(void *arg)
{
    struct run *r = arg;
    while (now_us() < r->until_us) {
        struct path_state p = {0};
        double t0 = now_us(), t = t0;
        int bad = 0;
        double leg_us[N_LEGS];
        for (size_t i = 0; i < N_LEGS && !bad; i++) {
            bad = legs[i].fn(&r->w, &p);
            double t1 = now_us();
            leg_us[i] = t1 - t;
            t = t1;
        }
        path_state_free(&p);
        if (bad) {
            /* Stop this loop after a few failures rather than measure an
             * error path. */
            if (++r->errors >= 5)
                break;
            continue;
        }
        r->ok++;
        samples_add(&r->path, t - t0);
        for (size_t i = 0; i < N_LEGS; i++)
            samples_add(&r->leg[i], leg_us[i]);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of runs' samples chosen by pick; sorts a copy. */
static double quantile(struct run *runs, int n, struct samples *(*pick)(struct run *, size_t),
                       size_t k, double q)
{
    struct samples all = {0};
    for (int i = 0; i < n; i++) {
        struct samples *s = pick(&runs[i], k);
        for (size_t j = 0; j < s->n; j++)
            samples_add(&all, s->v[j]);
    }
    double v = 0;
    if (all.n) {
        qsort(all.v, all.n, sizeof(*all.v), cmp_double);
        size_t idx = (size_t)(q * (double)(all.n - 1) + 0.5);
        v = all.v[idx];
    }
    free(all.v);
    return v;
}

static struct samples *pick_path(struct run *r, size_t k)
{
    (void)k;
    return &r->path;
}

static struct samples *pick_leg(struct run *r, size_t k)
{
    return &r->leg[k];
}

/* t->kube_api NULL: only the wispd connection (cold token). */
static int worker_init(struct worker *w, const struct target *t)
{
    memset(w, 0, sizeof(*w));
    w->t = t;
    wisp_buf_init(&w->req, MAX_BODY);
    w->in = wisp_xmalloc(MAX_BODY + 1);
    w->kube.fd = -1;
    /* The cluster's own CA, as get-credentials writes it. */
    if (conn_init(&w->wispd, t->base, NULL) != 0 ||
        (t->kube_api && conn_init(&w->kube, t->kube_api, t->kube_ca) != 0)) {
        fprintf(stderr, "cold: cannot set up the connections\n");
        return -1;
    }
    return 0;
}

static void worker_free(struct worker *w)
{
    conn_free(&w->wispd);
    conn_free(&w->kube);
    wisp_buf_free(&w->req);
    free(w->in);
}

static int cmd_run(int argc, char **argv)
{
    if (argc != 13) {
        fprintf(stderr, "usage: cold run BASE_URL OWNER_TOKEN GSA_EMAIL SECONDS THREADS "
                        "KUBE_API KUBE_CA NAMESPACE KSA POOL ISSUER\n");
        return 100;
    }
    const struct target t = {
        .base = argv[2], .owner_token = argv[3], .gsa = argv[4], .kube_api = argv[7],
        .kube_ca = argv[8], .ns = argv[9], .ksa = argv[10], .pool = argv[11], .issuer = argv[12],
    };
    double seconds = atof(argv[5]);
    int n = atoi(argv[6]);
    if (seconds <= 0 || n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "cold: bad SECONDS or THREADS\n");
        return 100;
    }
    struct run *runs = wisp_xcalloc((size_t)n, sizeof(*runs));
    pthread_t tid[MAX_THREADS];
    int rc = 0;
    /* One warm path first, outside the clock: it opens a TLS session to
     * the cluster and lets wispd do its first-use work (keys decoded and
     * cached) off the clock. */
    rc = worker_init(&runs[0].w, &t);
    struct path_state warm = {0};
    for (size_t i = 0; i < N_LEGS && !rc; i++)
        rc = legs[i].fn(&runs[0].w, &warm);
    path_state_free(&warm);
    if (rc) {
        fprintf(stderr, "cold: the warm-up path failed\n");
        goto out;
    }
    double start = now_us(), until = start + seconds * 1e6;
    for (int i = 0; i < n; i++) {
        if (i > 0 && worker_init(&runs[i].w, &t) != 0)
            exit(1);
        runs[i].until_us = until;
        pthread_create(&tid[i], NULL, loop, &runs[i]);
    }
    long ok = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        ok += runs[i].ok;
        errors += runs[i].errors;
    }
    double wall = (now_us() - start) / 1e6;
    printf("path\t%d\t%ld\t%ld\t%.3f\t%.1f\t%.0f\t%.0f\n", n, ok, errors, wall,
           (double)ok / wall, quantile(runs, n, pick_path, 0, 0.5),
           quantile(runs, n, pick_path, 0, 0.99));
    for (size_t k = 0; k < N_LEGS; k++)
        printf("leg\t%d\t%s\t%.0f\t%.0f\n", n, legs[k].name,
               quantile(runs, n, pick_leg, k, 0.5), quantile(runs, n, pick_leg, k, 0.99));
    rc = errors ? 1 : 0;
out:
    for (int i = 0; i < n; i++) {
        if (runs[i].w.in)
            worker_free(&runs[i].w);
        free(runs[i].path.v);
        for (size_t k = 0; k < N_LEGS; k++)
            free(runs[i].leg[k].v);
    }
    free(runs);
    return rc;
}

/* The owner's access token: a JWT signed with the key file's private key,
 * exchanged at BASE/token (RFC 7523), as gcloud refreshes its own. */
static int cmd_token(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cold token KEY_FILE BASE_URL\n");
        return 100;
    }
    json_error_t jerr;
    json_t *key = json_load_file(argv[2], 0, &jerr);
    const char *email = json_string_value(json_object_get(key, "client_email"));
    const char *kid = json_string_value(json_object_get(key, "private_key_id"));
    const char *pem = json_string_value(json_object_get(key, "private_key"));
    const char *aud = json_string_value(json_object_get(key, "token_uri"));
    int rc = 1;
    char *jwt = NULL, *form = NULL, *esc = NULL, *tok = NULL;
    struct worker w;
    struct target t = {.base = argv[3]};
    if (worker_init(&w, &t) != 0 || !email || !kid || !pem || !aud) {
        fprintf(stderr, "cold: %s is not a service-account key file\n", argv[2]);
        goto out;
    }
    long long now = (long long)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email, "scope", SCOPE, "aud",
                               aud, "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    jwt = wisp_jwt_sign_rs256(claims, kid, pem);
    json_decref(claims);
    esc = jwt ? wisp_url_escape(jwt) : NULL;
    if (!esc)
        goto out;
    form = wisp_xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                          "&assertion=%s", esc);
    if (take(post(&w, &w.wispd, "/token", "application/x-www-form-urlencoded", form, NULL),
             "access_token", &tok) == 0) {
        printf("%s\n", tok);
        rc = 0;
    }
out:
    free(esc);
    free(form);
    free(jwt);
    free(tok);
    worker_free(&w);
    json_decref(key);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 100;
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        rc = cmd_token(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc, argv);
    else
        fprintf(stderr, "usage: cold token KEY_FILE BASE_URL | cold run BASE_URL OWNER_TOKEN "
                        "GSA_EMAIL SECONDS THREADS\n");
    return rc;
}
