/* SPDX-License-Identifier: Apache-2.0 */
/* The cold-path driver of bench/tokens (b): THREADS loops, each over two
 * keep-alive libcurl handles (the cluster's Kubernetes API over HTTPS, and
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
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/jose.h"

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

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct wisp_buf *b = arg;
    return wisp_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

/* What every loop is told: where wispd and the cluster are, and who asks. */
struct target {
    const char *base, *owner_token, *gsa;
    const char *kube_api, *kube_ca, *ns, *ksa, *pool, *issuer;
};

/* One loop's connections (wispd, and the cluster's Kubernetes API) and
 * scratch space. */
struct worker {
    CURL *curl, *kube;
    struct wisp_buf body;
    char err[CURL_ERROR_SIZE];
    const struct target *t;
};

/* POSTs body (content type ctype) to base + path on handle c with bearer
 * (may be NULL) and returns the parsed JSON answer of a 200 or 201, or NULL
 * (reported on stderr). Caller decrefs. */
static json_t *post(struct worker *w, CURL *c, const char *base, const char *path,
                    const char *ctype, const char *body, const char *bearer)
{
    char url[1024], auth[4200], ct[128];
    CURLcode cc;
    struct curl_slist *h = NULL;
    json_t *out = NULL;
    long code = 0;
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    if (bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, auth);
    }
    wisp_buf_reset(&w->body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if ((cc = curl_easy_perform(c)) != CURLE_OK) {
        fprintf(stderr, "cold: %s: %s\n", path, w->err[0] ? w->err : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200 || code == 201)
        out = json_loadb(w->body.data, w->body.len, 0, NULL);
    if (!out)
        fprintf(stderr, "cold: %s: HTTP %ld: %.300s\n", path, code,
                w->body.len ? w->body.data : "");
out:
    curl_slist_free_all(h);
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
    json_t *o = post(w, w->kube, t->kube_api, path, "application/json", body, t->owner_token);
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
    char *aud_esc = curl_easy_escape(w->curl, aud, 0);
    char *tok_esc = curl_easy_escape(w->curl, p->ksa_token, 0);
    char *form = NULL;
    int rc = 1;
    if (!aud_esc || !tok_esc)
        goto out;
    form = wisp_xasprintf(
        "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
        "&audience=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt"
        "&requested_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Aaccess_token"
        "&scope=https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fcloud-platform&subject_token=%s",
        aud_esc, tok_esc);
    rc = take(post(w, w->curl, t->base, "/sts/v1/token", "application/x-www-form-urlencoded",
                   form, NULL),
              "access_token", &p->federated);
out:
    free(form);
    curl_free(aud_esc);
    curl_free(tok_esc);
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
    return take(post(w, w->curl, w->t->base, path, "application/json",
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

/* A keep-alive handle for one protocol whose answers go to w->body. */
static CURL *handle(struct worker *w, const char *protocol)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "cold: curl_easy_init failed\n");
        exit(1);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &w->body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocol);
    /* Loopback only: no proxy from the environment. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    return c;
}

/* t == NULL: only the wispd handle (cold token). */
static void worker_init(struct worker *w, const struct target *t)
{
    memset(w, 0, sizeof(*w));
    w->t = t;
    wisp_buf_init(&w->body, MAX_BODY);
    w->curl = handle(w, "http");
    if (t) {
        w->kube = handle(w, "https");
        /* The cluster's own CA, as get-credentials writes it. */
        curl_easy_setopt(w->kube, CURLOPT_CAINFO, t->kube_ca);
    }
}

static void worker_free(struct worker *w)
{
    curl_easy_cleanup(w->curl);
    if (w->kube)
        curl_easy_cleanup(w->kube);
    wisp_buf_free(&w->body);
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
    worker_init(&runs[0].w, &t);
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
        if (i > 0)
            worker_init(&runs[i].w, &t);
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
        if (runs[i].w.curl)
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
    worker_init(&w, NULL);
    if (!email || !kid || !pem || !aud) {
        fprintf(stderr, "cold: %s is not a service-account key file\n", argv[2]);
        goto out;
    }
    long long now = (long long)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email, "scope", SCOPE, "aud",
                               aud, "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    jwt = wisp_jwt_sign_rs256(claims, kid, pem);
    json_decref(claims);
    esc = jwt ? curl_easy_escape(w.curl, jwt, 0) : NULL;
    if (!esc)
        goto out;
    form = wisp_xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                          "&assertion=%s", esc);
    if (take(post(&w, w.curl, argv[3], "/token", "application/x-www-form-urlencoded", form, NULL), "access_token",
             &tok) == 0) {
        printf("%s\n", tok);
        rc = 0;
    }
out:
    curl_free(esc);
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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        rc = cmd_token(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc, argv);
    else
        fprintf(stderr, "usage: cold token KEY_FILE BASE_URL | cold run BASE_URL OWNER_TOKEN "
                        "GSA_EMAIL SECONDS THREADS\n");
    curl_global_cleanup();
    return rc;
}
