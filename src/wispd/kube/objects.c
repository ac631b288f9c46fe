/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces, ServiceAccounts, pods and nodes: create, get, list (with
 * selectors, paging and Table output), update, patch and delete, with
 * resourceVersion as the store revision and optimistic concurrency on it.
 * Validation and defaults live in validate.c, scheduling in sched.c. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/kube_meta.h"
#include "wisp/kube_patch.h"
#include "wisp/kube_pb.h"
#include "wisp/log.h"
#include "kube.h"
#include "kube_obj.h"

#define LIST_MAX 500 /* items per list page when the client gives no limit */

char *kube_key(const char *issuer, const struct kube_res *res, const char *ns, const char *name)
{
    if (res->namespaced)
        return wisp_xasprintf("%s %s %s", issuer, ns, name ? name : "");
    return wisp_xasprintf("%s %s", issuer, name ? name : "");
}

void kube_now(char *out, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kube_uid(char out[37])
{
    unsigned char b[16];
    RAND_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static json_t *meta_of(json_t *o)
{
    json_t *m = json_object_get(o, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(o, "metadata", m);
    }
    return m;
}

static const char *meta_str(const json_t *o, const char *field)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), field));
}

/* ---- reading ---------------------------------------------------------------- */

/* Loads one stored object: WISP_OK and *out (stored form, with private
 * fields), or WISP_ENOTFOUND. */
enum wisp_err kube_load(struct wisp_txn *txn, const struct kube_req *k,
                        const struct kube_res *res, const char *ns, const char *name,
                        json_t **out, int64_t *rev)
{
    char *key = kube_key(k->issuer, res, ns, name);
    enum wisp_err err = wispd_get_json(txn, res->store_kind, key, out, rev);
    free(key);
    return err;
}

static void not_found(struct wisp_http_req *req, const struct kube_res *res, const char *name)
{
    kube_status(req, 404, "NotFound", name, res->plural, "%s \"%s\" not found", res->plural, name);
}

/* The revision an object carries is its document's. */
static void set_rv(json_t *o, int64_t rev)
{
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)rev);
    json_object_set_new(meta_of(o), "resourceVersion", json_string(rv));
}

struct list_ctx {
    struct kube_selector *sel;
    json_t *items;
    size_t limit;
    char *last; /* name of the last item taken */
    int more;
};

static int list_one(const struct wisp_doc *d, void *arg)
{
    struct list_ctx *l = arg;
    if (json_array_size(l->items) == l->limit) {
        l->more = 1;
        return 1;
    }
    json_t *o = json_loads(d->body, 0, NULL);
    if (!o)
        return 0;
    set_rv(o, d->rev);
    if (kube_selector_match(l->sel, o)) {
        json_array_append_new(l->items, kube_public(o));
        free(l->last);
        l->last = wisp_xstrdup(d->name);
    }
    json_decref(o);
    return 0;
}

static void list(struct kube_req *k, const struct kube_res *res, const char *ns)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    struct list_ctx l = {.items = json_array()};
    const char *lim = wisp_http_query(req, "limit"), *cont = wisp_http_query(req, "continue");
    int64_t rev = 0;
    char *prefix = NULL, *start = NULL;

    l.limit = lim && atoi(lim) > 0 ? (size_t)atoi(lim) : LIST_MAX;
    if (l.limit > LIST_MAX)
        l.limit = LIST_MAX;
    l.sel = kube_selector_parse(req, wisp_http_query(req, "labelSelector"),
                                wisp_http_query(req, "fieldSelector"));
    if (!l.sel)
        goto out;
    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        kube_store_error(req, WISP_EIO);
        goto out;
    }
    if (!kube_allowed(k, txn, res, "list", "list", ns))
        goto out;
    wisp_store_revision(txn, &rev);
    if (!res->store_kind) {
        json_t *nodes = kube_nodes(txn, k);
        size_t i;
        json_t *n;
        json_array_foreach(nodes, i, n) {
            if (kube_selector_match(l.sel, n))
                json_array_append(l.items, n);
        }
        json_decref(nodes);
    } else {
        prefix = ns ? kube_key(k->issuer, res, ns, NULL) : wisp_xasprintf("%s ", k->issuer);
        /* The continue token is the store name of the last item sent,
         * which only this cluster's prefix can follow. */
        if (cont && *cont)
            start = wisp_xasprintf("%s%s", prefix, cont);
        enum wisp_err err =
            wisp_store_list(txn, res->store_kind, prefix, start, 0, list_one, &l, NULL);
        if (err) {
            kube_store_error(req, err);
            goto out;
        }
    }
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rev);
    const char *accept = wisp_http_header(req, "accept");
    if (accept && strstr(accept, "as=Table")) {
        int inc = wisp_kube_include_parse(wisp_http_query(req, "includeObject"));
        if (inc < 0) {
            kube_status(req, 400, "BadRequest", NULL, NULL,
                        "Unable to convert to Table as requested: includeObject: Unsupported "
                        "value: supported values: \"Metadata\", \"None\", \"Object\"");
            goto out;
        }
        json_t *t = wisp_kube_table(res->plural, l.items, (int64_t)time(NULL), rvs, inc);
        if (l.more && l.last)
            json_object_set_new(json_object_get(t, "metadata"), "continue",
                                json_string(l.last + strlen(prefix)));
        kube_send(req, 200, t);
    } else {
        char kind[64];
        snprintf(kind, sizeof(kind), "%sList", res->kind);
        json_t *out = json_pack("{s:s, s:s, s:{s:s}, s:O}", "kind", kind, "apiVersion", "v1",
                                "metadata", "resourceVersion", rvs, "items", l.items);
        if (l.more && l.last)
            json_object_set_new(json_object_get(out, "metadata"), "continue",
                                json_string(l.last + strlen(prefix)));
        kube_send(req, 200, out);
    }
out:
    wisp_store_rollback(txn);
    kube_selector_free(l.sel);
    json_decref(l.items);
    free(l.last);
    free(prefix);
    free(start);
}

/* One object, or its one-row Table when kubectl asks for one (kubectl get
 * NAME). Takes o. */
static void send_one(struct wisp_http_req *req, const struct kube_res *res, json_t *o)
{
    const char *accept = wisp_http_header(req, "accept");
    if (accept && strstr(accept, "as=Table")) {
        int inc = wisp_kube_include_parse(wisp_http_query(req, "includeObject"));
        json_t *items = json_pack("[o]", o);
        json_t *t = wisp_kube_table(res->plural, items, (int64_t)time(NULL),
                                    meta_str(o, "resourceVersion"), inc < 0 ? 0 : inc);
        json_decref(items);
        kube_send(req, 200, t);
        return;
    }
    kube_send(req, 200, o);
}

static void get(struct kube_req *k, const struct kube_res *res, const char *ns, const char *name)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *o = NULL;
    int64_t rev = 0;

    if (wisp_store_begin(wispd_store(req), 0, &txn) != WISP_OK) {
        kube_store_error(req, WISP_EIO);
        return;
    }
    if (!kube_allowed(k, txn, res, "get", "get", ns))
        goto out;
    if (!res->store_kind) {
        json_t *nodes = kube_nodes(txn, k);
        size_t i;
        json_t *n;
        json_array_foreach(nodes, i, n) {
            if (!o && !strcmp(meta_str(n, "name"), name))
                o = json_incref(n);
        }
        json_decref(nodes);
        if (!o)
            not_found(req, res, name);
        else
            send_one(req, res, json_incref(o));
        goto out;
    }
    enum wisp_err err = kube_load(txn, k, res, ns, name, &o, &rev);
    if (err == WISP_ENOTFOUND) {
        not_found(req, res, name);
    } else if (err) {
        kube_store_error(req, err);
    } else {
        set_rv(o, rev);
        send_one(req, res, kube_public(o));
    }
out:
    json_decref(o);
    wisp_store_rollback(txn);
}

/* ---- writing ---------------------------------------------------------------- */

/* Loads the object a write is about; 0 after answering NotFound or a store
 * error. */
static int load_or_answer(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                          const char *ns, const char *name, json_t **cur, int64_t *rev)
{
    enum wisp_err err = kube_load(txn, k, res, ns, name, cur, rev);
    if (err == WISP_ENOTFOUND)
        not_found(k->req, res, name);
    else if (err)
        kube_store_error(k->req, err);
    return err == WISP_OK;
}

json_t *kube_read_body(struct wisp_http_req *req)
{
    const char *ct = wisp_http_header(req, "content-type");
    char why[256] = "";
    json_t *o = NULL;
    if (ct && !strncmp(ct, "application/vnd.kubernetes.protobuf", 35)) {
        if (wisp_kube_pb_to_json(req->body, req->body_len, &o, why, sizeof(why)) != WISP_OK) {
            kube_status(req, 400, "BadRequest", NULL, NULL, "the body of the request was in an "
                        "unknown format: %s", why);
            return NULL;
        }
        return o;
    }
    json_error_t je;
    o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        kube_status(req, 400, "BadRequest", NULL, NULL,
                    "the body of the request was in an unknown format: %s", je.text);
        return NULL;
    }
    return o;
}

/* Writes the stored form of o at expect_rev (0: must not exist) and
 * answers code with the public form. Takes o. */
static void commit_and_answer(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                              const char *ns, json_t *o, int64_t expect_rev, int code)
{
    const char *name = meta_str(o, "name");
    char *key = kube_key(k->issuer, res, ns, name);
    int64_t rev = 0;
    enum wisp_err err = wisp_store_write_rev(txn, &rev);
    /* The body carries its own resourceVersion. */
    if (!err) {
        set_rv(o, rev);
        if (expect_rev == 0)
            json_object_set_new(o, KUBE_CREATED, json_integer(rev));
        err = wispd_put_json(txn, res->store_kind, key, o, expect_rev, NULL);
    }
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    if (!err) /* watchers send it now, not at their next tick */
        wisp_http_streams_wake(k->req);
    if (err == WISP_EEXIST)
        kube_status(k->req, 409, "AlreadyExists", name, res->plural, "%s \"%s\" already exists",
                    res->plural, name);
    else if (err == WISP_EABORTED)
        kube_status(k->req, 409, "Conflict", name, res->plural,
                    "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    res->plural, name);
    else if (err)
        kube_store_error(k->req, err);
    else
        kube_send(k->req, code, kube_public(o));
    free(key);
    json_decref(o);
}

static int begin_write(struct kube_req *k, struct wisp_txn **txn)
{
    if (wisp_store_begin(wispd_store(k->req), 1, txn) != WISP_OK) {
        kube_store_error(k->req, WISP_EBUSY);
        return 0;
    }
    return 1;
}

static int dry_run(struct wisp_http_req *req)
{
    const char *d = wisp_http_query(req, "dryRun");
    return d && !strcmp(d, "All");
}

static void create(struct kube_req *k, const struct kube_res *res, const char *ns)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *o = kube_read_body(req);
    if (!o)
        return;
    if (!begin_write(k, &txn)) {
        json_decref(o);
        return;
    }
    if (!kube_allowed(k, txn, res, "create", "create", ns) ||
        !kube_validate_create(k, txn, res, ns, o))
        goto fail;
    if (dry_run(req)) {
        kube_send(req, 201, kube_public(o));
        goto fail;
    }
    if (!kube_after_create(k, txn, res, ns, o))
        goto fail;
    commit_and_answer(k, txn, res, ns, o, 0, 201);
    return;
fail:
    json_decref(o);
    wisp_store_rollback(txn);
}

/* PUT and PATCH end here: new replaces cur (both stored forms). */
static void replace(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                    const char *ns, const char *name, json_t *cur, int64_t rev, json_t *new,
                    const char *sub)
{
    const char *want = meta_str(new, "resourceVersion");
    char cur_rv[32];
    snprintf(cur_rv, sizeof(cur_rv), "%lld", (long long)rev);
    if (want && *want && strcmp(want, cur_rv) != 0) {
        kube_status(k->req, 409, "Conflict", name, res->plural,
                    "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    res->plural, name);
        goto fail;
    }
    if (!kube_validate_update(k, res, name, cur, new, sub))
        goto fail;
    if (dry_run(k->req)) {
        kube_send(k->req, 200, kube_public(new));
        goto fail;
    }
    json_decref(cur);
    commit_and_answer(k, txn, res, ns, new, rev, 200);
    return;
fail:
    json_decref(cur);
    json_decref(new);
    wisp_store_rollback(txn);
}

static const char *write_verb(const char *sub)
{
    return sub && !strcmp(sub, "status") ? "updateStatus" : "update";
}

static void update(struct kube_req *k, const struct kube_res *res, const char *ns,
                   const char *name, const char *sub, int patch)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *body = patch ? NULL : kube_read_body(req), *cur = NULL, *new = NULL;
    int64_t rev = 0;
    char why[256] = "";

    if (patch) {
        json_error_t je;
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!body) {
            kube_status(req, 400, "BadRequest", NULL, NULL, "error decoding patch: %s", je.text);
            return;
        }
    }
    if (!body || !begin_write(k, &txn))
        goto out;
    if (!kube_allowed(k, txn, res, write_verb(sub), patch ? "patch" : "update", ns))
        goto fail;
    if (!load_or_answer(k, txn, res, ns, name, &cur, &rev))
        goto fail;
    set_rv(cur, rev);
    if (!patch) {
        new = json_incref(body);
    } else {
        const char *ct = wisp_http_header(req, "content-type");
        json_t *pub = kube_public(cur);
        if (ct && !strncmp(ct, "application/merge-patch+json", 28))
            new = wisp_kube_merge_patch(pub, body, why, sizeof(why));
        else if (ct && !strncmp(ct, "application/strategic-merge-patch+json", 38))
            new = wisp_kube_strategic_patch(pub, body, why, sizeof(why));
        else if (ct && !strncmp(ct, "application/json-patch+json", 27))
            new = wisp_kube_json_patch(pub, body, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "unsupported patch type %s", ct ? ct : "(none)");
        json_decref(pub);
        if (!new) {
            kube_status(req, ct && strstr(ct, "patch") ? 422 : 415,
                        ct && strstr(ct, "patch") ? "Invalid" : "UnsupportedMediaType", name,
                        res->plural, "%s", why);
            goto fail;
        }
        /* A patch that names no resourceVersion does not compete with
         * other writers (kubectl's patches never do). */
        if (!json_object_get(json_object_get(body, "metadata"), "resourceVersion"))
            set_rv(new, rev);
    }
    json_object_set(new, KUBE_CREATED, json_object_get(cur, KUBE_CREATED));
    replace(k, txn, res, ns, name, cur, rev, new, sub);
    cur = new = NULL;
    goto out;
fail:
    wisp_store_rollback(txn);
out:
    json_decref(cur);
    json_decref(new);
    json_decref(body);
}

static void delete(struct kube_req *k, const struct kube_res *res, const char *ns,
                   const char *name)
{
    struct wisp_http_req *req = k->req;
    struct wisp_txn *txn = NULL;
    json_t *cur = NULL;
    int64_t rev = 0;

    if (!begin_write(k, &txn))
        return;
    if (!kube_allowed(k, txn, res, "delete", "delete", ns))
        goto fail;
    if (!load_or_answer(k, txn, res, ns, name, &cur, &rev))
        goto fail;
    if (dry_run(req)) {
        kube_send(req, 200, kube_public(cur));
        goto fail;
    }
    /* Namespaces take what is in them along; pods may only be marked
     * (graceful deletion) while a node runs them. */
    int marked = 0;
    enum wisp_err err = kube_before_delete(k, txn, res, ns, name, cur, &marked);
    if (!err && marked) {
        json_t *o = json_incref(cur);
        commit_and_answer(k, txn, res, ns, o, rev, 200);
        goto done;
    }
    char *key = kube_key(k->issuer, res, ns, name);
    if (!err)
        err = wisp_store_delete(txn, res->store_kind, key, rev);
    free(key);
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    if (err) {
        kube_store_error(req, err);
        goto done;
    }
    wisp_http_streams_wake(req);
    set_rv(cur, rev);
    kube_send(req, 200, kube_public(cur));
done:
    json_decref(cur);
    return;
fail:
    json_decref(cur);
    wisp_store_rollback(txn);
}

void kube_objects(struct kube_req *k, const struct kube_res *res, const char *ns,
                  const char *name, const char *sub)
{
    const char *m = k->req->method;
    const char *w = wisp_http_query(k->req, "watch");
    int watching = w && (!strcmp(w, "1") || !strcmp(w, "true"));

    if (sub && strcmp(sub, "status") != 0) {
        kube_status(k->req, 404, "NotFound", name, res->plural,
                    "the server could not find the requested resource (%s %s/%s)", m,
                    res->plural, sub);
        return;
    }
    if (!name && !strcmp(m, "GET") && watching) {
        kube_watch(k, res, ns, wisp_http_query(k->req, "fieldSelector"),
                   wisp_http_query(k->req, "labelSelector"));
    } else if (!name && !strcmp(m, "GET")) {
        list(k, res, ns);
    } else if (!name && !strcmp(m, "POST") && res->store_kind && (ns || !res->namespaced)) {
        create(k, res, ns);
    } else if (name && !strcmp(m, "GET")) {
        get(k, res, ns, name);
    } else if (name && !strcmp(m, "PUT") && res->store_kind) {
        update(k, res, ns, name, sub, 0);
    } else if (name && !strcmp(m, "PATCH") && res->store_kind) {
        update(k, res, ns, name, sub, 1);
    } else if (name && !sub && !strcmp(m, "DELETE") && res->store_kind) {
        delete(k, res, ns, name);
    } else {
        kube_status(k->req, 405, "MethodNotAllowed", name, res->plural,
                    "the server does not allow this method on the requested resource");
    }
}
