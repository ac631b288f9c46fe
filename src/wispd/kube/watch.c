/* SPDX-License-Identifier: Apache-2.0 */
/* Watches: a chunked stream of {"type","object"} lines fed from the store's
 * change feed. Each tick of the stream reads the changes after the last
 * revision sent, so a watch sees every change in order, and a client that
 * reconnects with resourceVersion=R misses nothing after R (or gets 410
 * Expired once R has left the kept history). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/kube_meta.h"
#include "wisp/log.h"
#include "kube.h"

#define WATCH_BATCH 256          /* changes read per tick */
#define WATCH_DEFAULT_TIMEOUT 1800 /* seconds, as kube-apiserver's min-request-timeout */
#define BOOKMARK_EVERY 10        /* seconds of silence before a bookmark */

struct watch {
    const struct kube_res *res;
    char *prefix; /* store name prefix: "ISSUER " or "ISSUER NS " */
    struct kube_selector *sel;
    int64_t last; /* the revision the client has seen up to */
    int table;
    int table_headers_sent;
    int bookmarks;
    time_t last_write, deadline;
    struct wisp_http_stream *s;
};

static void emit(struct watch *w, const char *type, json_t *obj, int64_t rev)
{
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)rev);
    json_t *meta = json_object_get(obj, "metadata");
    if (meta)
        json_object_set_new(meta, "resourceVersion", json_string(rv));
    if (w->table && strcmp(type, "BOOKMARK") != 0 && strcmp(type, "ERROR") != 0) {
        /* Column definitions go with the first event only, as
         * kube-apiserver sends them. */
        json_t *t = wisp_kube_table_event(w->res->plural, obj, (int64_t)time(NULL),
                                          WISP_KUBE_INCLUDE_METADATA, !w->table_headers_sent);
        w->table_headers_sent = 1;
        json_decref(obj);
        obj = t;
    }
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", obj);
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    wisp_http_stream_write(w->s, line, strlen(line));
    wisp_http_stream_write(w->s, "\n", 1);
    free(line);
    w->last_write = time(NULL);
}

static void expired(struct watch *w)
{
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
                           "v1", "metadata", "status", "Failure", "message",
                           "too old resource version", "reason", "Expired", "code", 410);
    emit(w, "ERROR", st, w->last);
    wisp_http_stream_end(w->s);
}

static int on_change(const struct wisp_change *c, void *arg)
{
    struct watch *w = arg;
    json_t *o = json_loadb(c->body, c->body_len, 0, NULL);
    w->last = c->rev;
    if (!o)
        return 0;
    const char *type = c->deleted ? "DELETED"
                       : json_integer_value(json_object_get(o, KUBE_CREATED)) == c->rev
                           ? "ADDED"
                           : "MODIFIED";
    json_object_del(o, KUBE_CREATED);
    if (kube_selector_match(w->sel, o))
        emit(w, type, o, c->rev);
    else
        json_decref(o);
    return 0;
}

static void tick(struct wisp_http_stream *s, void *ctx)
{
    struct watch *w = ctx;
    struct wispd_thread *t = wisp_http_stream_thread_data(s);
    struct wisp_txn *txn = NULL;
    size_t n = 0;
    time_t now = time(NULL);

    if (now >= w->deadline) {
        wisp_http_stream_end(s);
        return;
    }
    /* A client that does not read gets no more until it catches up. */
    if (wisp_http_stream_pending(s) > (1u << 20))
        return;
    if (wisp_store_begin(t->store, 0, &txn) != WISP_OK)
        return;
    enum wisp_err err = WISP_OK;
    if (w->res->store_kind)
        err = wisp_store_changes(txn, w->res->store_kind, w->prefix, w->last, WATCH_BATCH,
                                 on_change, w, &n);
    if (err == WISP_EGONE) {
        expired(w);
    } else if (!err && n < WATCH_BATCH && w->bookmarks && now - w->last_write >= BOOKMARK_EVERY) {
        /* Nothing more to send: everything up to the store's revision is
         * seen, which is what a bookmark promises. */
        int64_t rev = 0;
        wisp_store_revision(txn, &rev);
        if (rev > w->last)
            w->last = rev;
        emit(w, "BOOKMARK",
             json_pack("{s:s, s:s, s:{s:{s:s}}}", "kind", w->res->kind, "apiVersion", "v1",
                       "metadata", "annotations", "k8s.io/initial-events-end", "true"),
             w->last);
    } else if (err) {
        wisp_log_warn("kube", "watch: store: %s", wisp_strerror(err));
    }
    wisp_store_rollback(txn);
}

static void closed(void *ctx)
{
    struct watch *w = ctx;
    kube_selector_free(w->sel);
    free(w->prefix);
    free(w);
}

static int initial_one(const struct wisp_doc *d, void *arg)
{
    struct watch *w = arg;
    json_t *o = json_loads(d->body, 0, NULL);
    if (!o)
        return 0;
    json_object_del(o, KUBE_CREATED);
    if (kube_selector_match(w->sel, o))
        emit(w, "ADDED", o, d->rev);
    else
        json_decref(o);
    return 0;
}

void kube_watch(struct kube_req *k, const struct kube_res *res, const char *ns,
                const char *field_selector, const char *label_selector)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    const char *rv = wisp_http_query(req, "resourceVersion");
    const char *to = wisp_http_query(req, "timeoutSeconds");
    const char *bm = wisp_http_query(req, "allowWatchBookmarks");
    const char *accept = wisp_http_header(req, "accept");
    struct watch *w = wisp_xcalloc(1, sizeof(*w));

    w->res = res;
    w->sel = kube_selector_parse(req, label_selector, field_selector);
    w->prefix = ns ? wisp_xasprintf("%s %s ", k->issuer, ns) : wisp_xasprintf("%s ", k->issuer);
    w->table = accept && strstr(accept, "as=Table") != NULL;
    w->bookmarks = bm && !strcmp(bm, "true");
    w->deadline = time(NULL) + (to && atoi(to) > 0 ? atoi(to) : WATCH_DEFAULT_TIMEOUT);
    if (!w->sel || wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        if (w->sel)
            kube_store_error(req, WISP_EIO);
        closed(w);
        return;
    }
    if (!kube_allowed(k, txn, res, "list", "watch", ns)) {
        wisp_store_rollback(txn);
        closed(w);
        return;
    }
    /* Without a resourceVersion (or with "0") the watch starts with the
     * current state as ADDED events, then follows changes from there. */
    int from_now = !rv || !*rv || !strcmp(rv, "0");
    if (!from_now)
        w->last = atoll(rv);
    w->s = wisp_http_stream_start(req, 200, "application/json", tick, closed, w);
    if (from_now) {
        wisp_store_revision(txn, &w->last);
        if (!res->store_kind) {
            json_t *nodes = kube_nodes(txn, k);
            size_t i;
            json_t *n;
            json_array_foreach(nodes, i, n) {
                if (kube_selector_match(w->sel, n))
                    emit(w, "ADDED", json_incref(n), w->last);
            }
            json_decref(nodes);
        } else {
            wisp_store_list(txn, res->store_kind, w->prefix, NULL, 0, initial_one, w, NULL);
        }
    }
    wisp_store_rollback(txn);
}
