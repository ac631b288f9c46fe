/* SPDX-License-Identifier: Apache-2.0 */
/* Each cluster's Kubernetes API endpoint: an HTTPS listener on loopback
 * whose certificate comes from the cluster's own CA (what
 * masterAuth.clusterCaCertificate publishes, so kubectl verifies it), tagged
 * with the cluster's issuer URL so requests reach src/wispd/kube/. kubectl
 * sends no SNI to an IP address, so clusters cannot share a port: each gets
 * its own, kept in the cluster document (kubePort) so the endpoint, and the
 * kubeconfigs that name it, survive restarts. */
#include <pthread.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/log.h"
#include "wisp/pki.h"
#include "kube_obj.h"

/* Open endpoints: issuer URL -> listener id. Guarded by mu: clusters are
 * created and deleted on any worker. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct endpoint {
    char *issuer;
    unsigned id;
} *eps;
static size_t n_eps;

static const char *const dns_names[] = {"kubernetes", "kubernetes.default",
                                        "kubernetes.default.svc",
                                        "kubernetes.default.svc.cluster.local", "localhost", NULL};
static const char *const ips[] = {"127.0.0.1", NULL};

enum wisp_err wispd_kube_open(const char *issuer, const char *ca_cert_pem, const char *ca_key_pem,
                              int port, int *port_out)
{
    char *cert = NULL, *key = NULL;
    unsigned id = 0;
    enum wisp_err err = wisp_pki_server_cert(ca_cert_pem, ca_key_pem, "kube-apiserver", dns_names,
                                             ips, &cert, &key);
    if (!err) {
        struct wisp_http_listen_spec spec = {.addr = "127.0.0.1", .port = port,
                                             .cert_pem = cert, .key_pem = key, .tag = issuer};
        err = wisp_http_listen(wispd.http, &spec, port_out, &id);
    }
    free(cert);
    if (key)
        wisp_secret_free(key, 0);
    if (err)
        return err;
    pthread_mutex_lock(&mu);
    eps = wisp_xrealloc(eps, (n_eps + 1) * sizeof(*eps));
    eps[n_eps++] = (struct endpoint){.issuer = wisp_xstrdup(issuer), .id = id};
    pthread_mutex_unlock(&mu);
    return WISP_OK;
}

void wispd_kube_close(const char *issuer)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_eps; i++) {
        if (strcmp(eps[i].issuer, issuer) != 0)
            continue;
        wisp_http_unlisten(wispd.http, eps[i].id);
        free(eps[i].issuer);
        eps[i] = eps[--n_eps];
        break;
    }
    pthread_mutex_unlock(&mu);
}

void wispd_kube_close_all(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_eps; i++)
        free(eps[i].issuer);
    free(eps);
    eps = NULL;
    n_eps = 0;
    pthread_mutex_unlock(&mu);
}

struct open_ctx {
    json_t *moved;   /* [[cluster key, new port]] for clusters whose port changed */
    json_t *issuers; /* every cluster's issuer URL, to seed */
    int failed;
};

static int open_one(const struct wisp_doc *d, void *arg)
{
    struct open_ctx *o = arg;
    json_t *doc = json_loads(d->body, 0, NULL);
    const char *p = d->name, *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!doc || !s2) {
        json_decref(doc);
        o->failed = 1;
        return 0;
    }
    char *pid = wisp_xstrndup(p, (size_t)(s1 - p));
    char *loc = wisp_xstrndup(s1 + 1, (size_t)(s2 - s1 - 1));
    char *url = wispd_issuer_url(pid, loc, s2 + 1);
    const char *ca = json_string_value(json_object_get(doc, "caCertPem"));
    const char *cakey = json_string_value(json_object_get(doc, "caKeyPem"));
    int want = (int)json_integer_value(json_object_get(doc, "kubePort")), got = 0;
    json_array_append_new(o->issuers, json_string(url));
    enum wisp_err err = ca && cakey ? wispd_kube_open(url, ca, cakey, want, &got) : WISP_EINVAL;
    if (err && want) {
        /* Someone else took the port while wispd was down: a new one,
         * and a warning, because kubeconfigs naming the old one break. */
        wisp_log_warn("kube", "cluster %s: port %d is taken; moving its endpoint", d->name, want);
        err = wispd_kube_open(url, ca, cakey, 0, &got);
    }
    if (err) {
        wisp_log_err("kube", "cluster %s: cannot open its endpoint: %s", d->name,
                     wisp_strerror(err));
        o->failed = 1;
    } else if (got != want) {
        json_array_append_new(o->moved, json_pack("[s, i]", d->name, got));
    }
    free(url);
    free(pid);
    free(loc);
    json_decref(doc);
    return 0;
}

int wispd_kube_open_all(struct wisp_store *st)
{
    struct open_ctx o = {.moved = json_array(), .issuers = json_array()};
    struct wisp_txn *txn = NULL;
    enum wisp_err err = wisp_store_begin(st, 1, &txn);
    if (!err)
        err = wisp_store_list(txn, "gkecluster", "", NULL, 0, open_one, &o, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(o.moved, i, m) {
        json_t *doc = NULL;
        const char *key = json_string_value(json_array_get(m, 0));
        if (!err)
            err = wispd_get_json(txn, "gkecluster", key, &doc, NULL);
        if (!err) {
            json_object_set(doc, "kubePort", json_array_get(m, 1));
            err = wispd_put_json(txn, "gkecluster", key, doc, -1, NULL);
        }
        json_decref(doc);
    }
    /* Clusters made before the Kubernetes API existed get their namespaces
     * now; for the others this finds them present. */
    json_array_foreach(o.issuers, i, m) {
        if (!err)
            err = kube_seed(txn, json_string_value(m));
    }
    err = err ? err : wisp_store_commit(txn);
    if (err)
        wisp_store_rollback(txn);
    json_decref(o.moved);
    json_decref(o.issuers);
    return err || o.failed ? -1 : 0;
}

enum wisp_err wispd_kube_seed(struct wisp_txn *txn, const char *issuer)
{
    return kube_seed(txn, issuer);
}
